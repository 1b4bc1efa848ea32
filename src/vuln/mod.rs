//! Vulnerability findings: an offline advisory database, exact version comparison per
//! ecosystem ([`version`]), matching of stored inventories against advisories, and the per-volume
//! results ([`assess`]: `vulns.json` beside each stored inventory; [`demo`]: the simulated account's
//! bundled advisory data; [`fleet`]: which instances a CVE or package affects).

pub mod assess;
pub mod db;
pub mod demo;
pub mod findings;
pub mod fleet;
pub mod matcher;
pub mod osv;
pub mod version;
pub mod vex;
