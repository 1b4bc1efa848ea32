//! One disk scan, end to end: partition table, per-partition probe, the root filesystem (the one
//! holding an os-release or equivalent), OS detection and the package inventory, assembled into a
//! [`Report`]. Failures of one partition or one database are recorded in the report and never stop
//! the scan; only a disk that cannot be opened at all is an error.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::baseline;
use crate::disk::probe::{self, Content};
use crate::disk::{BlockSource, Disk, DiskError, table};
use crate::fs::RootFs;
use crate::fs::dir::DirFs;
use crate::fs::ext4::Ext4Fs;
use crate::inventory;
use crate::os;
use crate::report::{Agent, PartStatus, Partition, Report, SCHEMA, Source, Stats};

/// What a scan computes besides the inventory.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Also evaluate the baseline (CIS-style) rules on the root filesystem. It walks the whole
    /// root filesystem, so it reads far more of the disk than the inventory alone.
    pub baseline: bool,
}

/// Errors that stop a scan before it starts.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("--root {path}: {reason}")]
    Root { path: String, reason: String },
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Why a partition with this content is not read.
fn not_read_reason(c: Content) -> (PartStatus, String) {
    match c {
        Content::Xfs => {
            (PartStatus::Unsupported, "XFS: no userspace reader yet; the partition is listed but not scanned".into())
        }
        Content::Btrfs => {
            (PartStatus::Unsupported, "btrfs: no userspace reader yet; the partition is listed but not scanned".into())
        }
        Content::Lvm2Pv => {
            (PartStatus::Unsupported, "LVM2 physical volume: logical volumes are not assembled yet; not scanned".into())
        }
        Content::Luks => (PartStatus::Unsupported, "LUKS-encrypted volume: cannot be read without its key".into()),
        Content::Ntfs => (PartStatus::Unsupported, "NTFS: Windows volumes are not inventoried".into()),
        Content::Squashfs | Content::Iso9660 => {
            (PartStatus::Unsupported, format!("{}: no reader; not scanned", c.name()))
        }
        Content::Vfat => (PartStatus::Skipped, "vfat (EFI/boot): holds no OS packages; not read".into()),
        Content::Swap => (PartStatus::Skipped, "swap space: no files".into()),
        Content::Empty => (PartStatus::Skipped, "no filesystem: the first 64 KiB are zero".into()),
        Content::Unknown => (PartStatus::Skipped, "no known filesystem signature".into()),
        Content::Ext2 | Content::Ext3 | Content::Ext4 => (PartStatus::Read, String::new()),
    }
}

/// Scan a raw image file or block device.
pub fn scan_image(path: &Path, opts: ScanOptions) -> Result<Report, ScanError> {
    let started = Instant::now();
    let disk = Disk::open(path)?;
    let stats = disk.stats();
    let size = disk.len();
    let mut report =
        scan_source(Arc::new(disk), Source::Image { path: path.display().to_string(), size }, started, opts);
    report.stats.bytes_read = Some(stats.bytes());
    report.stats.read_calls = Some(stats.calls());
    Ok(report)
}

/// Scan any block source (an opened disk, or an in-memory image for tests and fuzzing).
#[must_use]
pub fn scan_source(disk: Arc<dyn BlockSource>, source: Source, started: Instant, opts: ScanOptions) -> Report {
    let (table_info, parts) = table::read(Arc::clone(&disk));
    tracing::info!(scheme = ?table_info.scheme, partitions = parts.len(), "partition table read");

    let mut partitions = Vec::new();
    let mut errors = Vec::new();
    let mut root: Option<(u32, Ext4Fs, os::OsInfo)> = None;
    for part in parts {
        let mut out = Partition {
            index: part.index,
            start: part.start,
            size: part.size,
            table_type: part.table_type.clone(),
            type_name: part.type_name,
            name: part.name.clone(),
            filesystem: None,
            status: PartStatus::Error,
            reason: None,
            os: None,
        };
        let region = match part.region {
            Ok(r) => r,
            Err(e) => {
                out.reason = Some(e);
                partitions.push(out);
                continue;
            }
        };
        let probed = probe::probe(&region);
        let content = probed.content;
        out.filesystem = Some(probed);
        if !content.is_ext() {
            let (status, reason) = not_read_reason(content);
            out.status = status;
            out.reason = Some(reason);
            partitions.push(out);
            continue;
        }
        match Ext4Fs::load(region) {
            Ok(fs) => {
                out.status = PartStatus::Read;
                if let Some(found) = os::detect(&fs) {
                    out.os = Some(found.clone());
                    if root.is_none() {
                        out.status = PartStatus::Root;
                        root = Some((part.index, fs, found));
                    }
                }
            }
            Err(e) => {
                out.status = PartStatus::Error;
                out.reason = Some(format!("{} filesystem unreadable: {e}", content.name()));
            }
        }
        partitions.push(out);
    }
    for p in &partitions {
        if p.status == PartStatus::Error {
            errors.push(format!("partition {}: {}", p.index, p.reason.as_deref().unwrap_or("unreadable")));
        }
    }
    let (root_partition, os_info, inv, baseline) = match root {
        Some((idx, fs, found)) => {
            let inv = inventory::collect(&fs);
            let baseline = opts.baseline.then(|| baseline::evaluate(&fs, Some(&found), &inv.packages));
            (Some(idx), Some(found), inv, baseline)
        }
        None => {
            errors.push("no partition holds a readable OS root (no os-release or release file found)".into());
            (None, None, inventory::Inventory::default(), None)
        }
    };
    errors.extend(inv.errors());
    Report {
        schema: SCHEMA,
        agent: Agent::current(),
        scanned_at: now(),
        source,
        partition_table: Some(table_info),
        partitions,
        root_partition,
        os: os_info,
        databases: inv.databases,
        packages: inv.packages,
        errors,
        baseline,
        stats: Stats {
            bytes_read: None,
            read_calls: None,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
    }
}

/// Scan an unpacked or mounted directory tree as a root filesystem.
pub fn scan_root(path: &Path, opts: ScanOptions) -> Result<Report, ScanError> {
    let started = Instant::now();
    let fs =
        DirFs::new(path).map_err(|e| ScanError::Root { path: path.display().to_string(), reason: e.to_string() })?;
    Ok(scan_rootfs(&fs, Source::Root { path: path.display().to_string() }, started, opts))
}

/// Scan any [`RootFs`] as the root filesystem.
#[must_use]
pub fn scan_rootfs(fs: &dyn RootFs, source: Source, started: Instant, opts: ScanOptions) -> Report {
    let os_info = os::detect(fs);
    let inv = inventory::collect(fs);
    let baseline = opts.baseline.then(|| baseline::evaluate(fs, os_info.as_ref(), &inv.packages));
    let mut errors = Vec::new();
    if os_info.is_none() {
        errors.push("no os-release or release file found in the root".into());
    }
    errors.extend(inv.errors());
    Report {
        schema: SCHEMA,
        agent: Agent::current(),
        scanned_at: now(),
        source,
        partition_table: None,
        partitions: Vec::new(),
        root_partition: None,
        os: os_info,
        databases: inv.databases,
        packages: inv.packages,
        errors,
        baseline,
        stats: Stats {
            bytes_read: None,
            read_calls: None,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
    }
}
