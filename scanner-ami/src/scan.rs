//! A scan, end to end: one disk or one instance's disks ([`crate::instance`]: partition tables,
//! probes, LVM, the root filesystem and the filesystems it mounts), or a directory tree; OS
//! detection and the package inventory, assembled into a [`Report`]. Failures of one partition or one database are recorded in the report and never stop
//! the scan; only a disk that cannot be opened at all is an error.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::apps;
use crate::baseline;
use crate::disk::{BlockSource, Disk, DiskError};
use crate::fs::RootFs;
use crate::fs::dir::DirFs;
use crate::instance::{self, DiskInput};
use crate::inventory;
use crate::os;
use crate::report::{Agent, Report, SCHEMA, Source, Stats};

/// What a scan computes besides the inventory.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Also evaluate the baseline (CIS-style) rules on the root filesystem. It walks the whole
    /// root filesystem, so it reads far more of the disk than the inventory alone.
    pub baseline: bool,
    /// Leave out the application inventory ([`crate::apps`]): OS packages only.
    pub no_apps: bool,
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

/// Scan a raw image file or block device.
pub fn scan_image(path: &Path, opts: ScanOptions) -> Result<Report, ScanError> {
    let mut reports = scan_images(&[path], opts)?;
    reports.pop().ok_or_else(|| ScanError::Root { path: path.display().to_string(), reason: "nothing scanned".into() })
}

/// Scan the disks of one instance together (raw image files or block devices): one report per
/// disk, in the order given. Filesystems that the root mounts from another of the disks (a `/var`
/// logical volume, a `/home` partition) are assembled into the root before the inventory.
pub fn scan_images(paths: &[&Path], opts: ScanOptions) -> Result<Vec<Report>, ScanError> {
    let started = Instant::now();
    let mut disks = Vec::new();
    let mut stats = Vec::new();
    for path in paths {
        let disk = Disk::open(path)?;
        stats.push(disk.stats());
        let size = disk.len();
        disks.push(DiskInput {
            name: path.display().to_string(),
            source: Arc::new(disk),
            report_source: Source::Image { path: path.display().to_string(), size },
        });
    }
    let mut reports = instance::scan_instance(disks, started, opts);
    for (report, stats) in reports.iter_mut().zip(&stats) {
        report.stats.bytes_read = Some(stats.bytes());
        report.stats.read_calls = Some(stats.calls());
    }
    Ok(reports)
}

/// Scan any block source (an opened disk, or an in-memory image for tests and fuzzing) as an
/// instance with this one disk.
#[must_use]
pub fn scan_source(disk: Arc<dyn BlockSource>, source: Source, started: Instant, opts: ScanOptions) -> Report {
    let name = match &source {
        Source::Image { path, .. } | Source::Root { path } => path.clone(),
    };
    let mut reports =
        instance::scan_instance(vec![DiskInput { name, source: disk, report_source: source.clone() }], started, opts);
    reports.pop().unwrap_or_else(|| empty_report(source, started))
}

fn empty_report(source: Source, started: Instant) -> Report {
    Report {
        schema: SCHEMA,
        agent: Agent::current(),
        scanned_at: now(),
        source,
        partition_table: None,
        partitions: Vec::new(),
        root_partition: None,
        root_volume: None,
        assembled_into: None,
        logical_volumes: Vec::new(),
        mounts: Vec::new(),
        os: None,
        databases: Vec::new(),
        packages: Vec::new(),
        applications: None,
        errors: vec!["nothing scanned".into()],
        baseline: None,
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
    let applications = (!opts.no_apps).then(|| apps::collect(fs));
    let baseline = opts.baseline.then(|| baseline::evaluate(fs, os_info.as_ref(), &inv.packages));
    let mut errors = Vec::new();
    if os_info.is_none() {
        errors.push("no os-release or release file found in the root".into());
    }
    errors.extend(inv.errors());
    errors.extend(apps::incomplete(applications.as_ref()));
    Report {
        schema: SCHEMA,
        agent: Agent::current(),
        scanned_at: now(),
        source,
        partition_table: None,
        partitions: Vec::new(),
        root_partition: None,
        root_volume: None,
        assembled_into: None,
        logical_volumes: Vec::new(),
        mounts: Vec::new(),
        os: os_info,
        databases: inv.databases,
        packages: inv.packages,
        applications,
        errors,
        baseline,
        stats: Stats {
            bytes_read: None,
            read_calls: None,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
    }
}
