//! Vulnerability findings (issue 18): an offline advisory database, exact version comparison per
//! ecosystem ([`version`]), matching of stored inventories against advisories, and the per-volume
//! results.

pub mod db;
pub mod findings;
pub mod matcher;
pub mod osv;
pub mod version;
pub mod vex;
