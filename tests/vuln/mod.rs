//! Vulnerability findings: the advisory database (`db`, with the hand-made archives of
//! `craft`), matching inventories against it (`matching`; `rpmdb`: an AlmaLinux 9 rpm database
//! built by rpm in the test), the CycloneDX VEX of the findings against the SBOM (`vex`).

mod craft;
mod db;
mod fleet_bench;
mod matching;
mod rpmdb;
mod vex;
