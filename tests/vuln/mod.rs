//! Vulnerability findings (issue 18): the advisory database (`db`, with the hand-made archives of
//! `craft`), matching inventories against it (`matching`).

mod craft;
mod db;
mod fleet_bench;
mod matching;
