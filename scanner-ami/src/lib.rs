//! The scanner image's guest agent.
//!
//! It reads a raw disk (image file or block device) strictly read-only and in userspace:
//! partition tables ([`disk`]), filesystems ([`fs`]), the OS release ([`os`]) and the OS package
//! databases ([`inventory`]), and reports them as a versioned inventory JSON ([`report`]) and a
//! CycloneDX 1.6 SBOM ([`sbom`]). Every byte of the disk is treated as hostile: all sizes are
//! bounded ([`limits`]) and a damaged part is reported as an error while the scan goes on.
//!
//! On a scanner instance, the `run` mode ([`agent`]) reads the job manifest ([`job`]) from
//! IMDSv2, scans every attached device and uploads the signed result bundle ([`bundle`]).

pub mod agent;
pub mod apps;
pub mod baseline;
pub mod bundle;
pub mod disk;
pub mod fs;
pub mod instance;
pub mod inventory;
pub mod job;
pub mod limits;
pub mod os;
pub mod purl;
pub mod report;
pub mod sbom;
pub mod scan;
