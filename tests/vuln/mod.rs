//! Vulnerability findings (issue 18): the advisory database (`db`, with the hand-made archives of
//! `craft`), matching inventories against it (`matching`), the CycloneDX VEX of the findings
//! against the SBOM (`vex`).

mod craft;
mod db;
mod matching;
mod vex;
