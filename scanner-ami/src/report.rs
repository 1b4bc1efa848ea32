//! The inventory report: the versioned JSON document `scanner-agent scan --format json` prints and
//! the result bundle carries as `inventory.json`.
//!
//! Schema `agentless.inventory/v1`. Additive changes keep the version; renaming or removing a
//! field, or changing its meaning, bumps it.

use serde::Serialize;

use crate::apps::Applications;
use crate::baseline::Baseline;
use crate::disk::probe::Probe;
use crate::disk::table::TableInfo;
use crate::inventory::{DbResult, Package};
use crate::os::OsInfo;

/// The schema identifier written in every report.
pub const SCHEMA: &str = "agentless.inventory/v1";

/// What was scanned.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// A raw image file or block device.
    Image { path: String, size: u64 },
    /// A directory tree (`--root`).
    Root { path: String },
}

/// What became of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartStatus {
    /// Read; holds the OS and was inventoried.
    Root,
    /// Read; no OS on it (e.g. /boot).
    Read,
    /// Part of the instance's root: mounted into it as its fstab says, or an LVM2 physical volume
    /// of an assembled volume group.
    Assembled,
    /// A filesystem or volume type without a reader here.
    Unsupported,
    /// Nothing to read (swap, empty, unknown signature, EFI/vfat).
    Skipped,
    /// Reading failed.
    Error,
}

/// One partition of the disk (index 0 = the whole disk, when it has no partition table).
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub index: u32,
    pub start: u64,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<Probe>,
    pub status: PartStatus,
    /// Why a partition is unsupported, skipped or in error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The OS found on this partition, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<OsInfo>,
}

/// One LVM2 logical volume of the instance (listed on the disk of its volume group's first PV).
#[derive(Debug, Clone, Serialize)]
pub struct LogicalVolumeInfo {
    pub vg: String,
    pub name: String,
    pub uuid: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<Probe>,
    pub status: PartStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<OsInfo>,
}

/// What became of one filesystem the instance mounts at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountStatus {
    /// Found among the attached disks and mounted into the scanned root.
    Assembled,
    /// Its source is not among the attached disks (or cannot be told apart from another).
    Missing,
    /// Found, but its filesystem has no reader here.
    Unsupported,
    /// Found, but unreadable.
    Error,
    /// Not a disk filesystem (swap, tmpfs, network, bind, noauto).
    Skipped,
}

/// One fstab line or mount unit of the instance's root.
#[derive(Debug, Clone, Serialize)]
pub struct MountInfo {
    /// The mount point.
    pub target: String,
    /// The source as written (`UUID=...`, `/dev/mapper/vg-var`).
    pub spec: String,
    pub fstype: String,
    /// `/etc/fstab:12` or the unit file.
    pub origin: String,
    pub status: MountStatus,
    /// The volume it was found on (`/dev/sdg partition 1`, `LV vg0/var`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Counters of the scan.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Bytes read from the image or device (absent for `--root`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_calls: Option<u64>,
    pub duration_ms: u64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub agent: Agent,
    pub scanned_at: String,
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_table: Option<TableInfo>,
    pub partitions: Vec<Partition>,
    /// Index of the partition that holds the OS (`null` when none was found, or the root is a
    /// logical volume).
    pub root_partition: Option<u32>,
    /// The volume that holds the OS (`/dev/sdf partition 2`, `LV vg0/root`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_volume: Option<String>,
    /// When this disk's filesystems belong to an instance root on another disk: that root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assembled_into: Option<String>,
    /// LVM2 logical volumes listed on this disk.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logical_volumes: Vec<LogicalVolumeInfo>,
    /// The root's fstab entries and mount units, and what became of each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountInfo>,
    pub os: Option<OsInfo>,
    pub databases: Vec<DbResult>,
    pub packages: Vec<Package>,
    /// Application packages (Go and Rust binaries, Python, Java, Node, Ruby, PHP, .NET) and the
    /// installed kernels of the OS root; absent when no root was found or they were not asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applications: Option<Applications>,
    /// Problems that make the result incomplete.
    pub errors: Vec<String>,
    pub stats: Stats,
    /// The baseline findings, when asked for; written separately as `baseline.json`.
    #[serde(skip)]
    pub baseline: Option<Baseline>,
}

/// The agent that wrote the report.
#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub name: &'static str,
    pub version: &'static str,
}

impl Agent {
    /// This build of the agent.
    #[must_use]
    pub fn current() -> Self {
        Agent { name: "scanner-agent", version: env!("CARGO_PKG_VERSION") }
    }
}

impl Report {
    /// The scanned image, device or directory.
    #[must_use]
    pub fn source_name(&self) -> String {
        match &self.source {
            Source::Image { path, .. } | Source::Root { path } => path.clone(),
        }
    }

    /// True if the scan is complete: an OS root was found and every database read cleanly.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }
}
