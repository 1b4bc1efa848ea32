//! The scanner image's guest agent.
//!
//! It reads a raw disk (image file or block device) strictly read-only and in userspace:
//! partition tables ([`disk`]), filesystems ([`fs`]), the OS release ([`os`]) and the OS package
//! databases ([`inventory`]), and reports them as a versioned inventory JSON ([`report`]) and a
//! CycloneDX 1.6 SBOM ([`sbom`]). Every byte of the disk is treated as hostile: all sizes are
//! bounded ([`limits`]) and a damaged part is reported as an error while the scan goes on.

pub mod baseline;
pub mod disk;
pub mod fs;
pub mod inventory;
pub mod limits;
pub mod os;
pub mod purl;
pub mod report;
pub mod sbom;
pub mod scan;
