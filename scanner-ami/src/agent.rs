//! The scanner image's `run` mode (docs/bundle.md, "The agent's `run` mode"): read the job manifest from
//! IMDSv2 user data ([`imds`]), find each attached device of the manifest ([`devices`]), scan it
//! ([`crate::scan::scan_image`]), write the result bundle ([`crate::bundle`]), upload it with
//! retries ([`upload`]) and power the scanner off, which terminates it
//! (`InstanceInitiatedShutdownBehavior = terminate`), whatever happened before.
//!
//! On the scanner image, the scan starts only once [`egress`] rules are in place: `run` with
//! [`RunConfig::require_egress`] refuses to scan without the record `scanner-agent egress apply`
//! (root, before `run`) wrote for the manifest's collector.
//!
//! [`scan_devices`] is the part without I/O beyond the disks: the simulated account's hypervisor
//! calls it in-process to produce a bundle without IMDS or HTTP. [`ScanOutputs`] renders one
//! scan's three JSON files; `scanner-agent scan` prints the same documents.
//!
//! The per-job HMAC key is never logged (`HmacKey`'s `Debug` redacts it); logs go to stderr
//! through `tracing` (the systemd journal on a scanner).

pub mod devices;
pub mod egress;
pub mod imds;
pub mod pin;
mod retry;
pub mod upload;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;

pub use devices::{DeviceError, resolve_device};
pub use egress::EgressError;
pub use imds::{Imds, ImdsData, ImdsError};
pub use upload::{UploadError, UploadPolicy, UploadReceipt, bundle_url, upload};

use crate::bundle::{BUNDLE_FORMAT, BundleError, BundleManifest, DeviceEntry, DeviceStatus, VolumeFiles, write_bundle};
use crate::job::{DeviceTarget, JobManifest, MAX_USER_DATA_BYTES, ManifestError};
use crate::report::Report;
use crate::sbom;
use crate::scan::{self, ScanOptions};

/// Exit status of `run`: the bundle was uploaded and every device scanned completely.
pub const EXIT_OK: u8 = 0;
/// Exit status of `run`: the bundle was uploaded, but a device is partial, failed or missing.
pub const EXIT_INCOMPLETE: u8 = 1;
/// Exit status of `run`: no manifest could be read, or the bundle could not be written or uploaded.
pub const EXIT_FATAL: u8 = 2;

/// The instance metadata service's IPv4 address (EC2 User Guide, "Access instance metadata").
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// How long `run` waits for IMDS: the network is up within seconds of boot; two minutes bounds a
/// scanner whose metadata never comes (it then powers off instead of idling until the deadline).
pub const DEFAULT_IMDS_BUDGET: Duration = Duration::from_secs(120);

/// Upload attempts: with the default backoff (1 s doubling to 60 s) ten attempts span about five
/// minutes, enough to ride out a collector restart; the job deadline cuts it shorter anyway.
pub const DEFAULT_UPLOAD_ATTEMPTS: u32 = 10;

/// One upload attempt, connect to answer: a bundle is a few MiB inside one VPC (at most
/// [`crate::bundle::BundleLimits`]' 256 MiB, which takes well under two minutes at EBS-era
/// network speeds).
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Devices scanned at once. Volumes restored from snapshots load lazily (each first read of a
/// block is fetched from S3: EC2 User Guide, "Initialize Amazon EBS volumes"), so a scan is
/// latency-bound and overlapping a few hides it; four bounds the memory of concurrent scans.
const MAX_SCAN_THREADS: usize = 4;

/// How a `partial` device's error summary is cut.
const MAX_ERROR_SUMMARY_CHARS: usize = 500;

/// What to do when `run` is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerOff {
    /// Run this command (program and arguments).
    Command(Vec<String>),
    /// Stay up (tests, manual runs).
    None,
}

impl Default for PowerOff {
    /// `systemctl poweroff`: a clean shutdown, which EC2 turns into termination.
    fn default() -> Self {
        PowerOff::Command(vec!["systemctl".into(), "poweroff".into()])
    }
}

/// Settings of [`run`].
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// IMDS base URL ([`DEFAULT_IMDS_ENDPOINT`]); tests serve their own.
    pub imds_endpoint: String,
    /// Read the manifest from this file instead of IMDS (tests, manual runs).
    pub manifest_file: Option<PathBuf>,
    /// The manifest's device names (`/dev/sdf`) are looked up under this directory (`/`).
    pub dev_root: PathBuf,
    /// Also write the bundle here, as `<job>-<scanner>.tar`.
    pub out_dir: Option<PathBuf>,
    pub poweroff: PowerOff,
    /// How long to keep retrying IMDS.
    pub imds_budget: Duration,
    /// Upload attempts in all.
    pub max_upload_attempts: u32,
    /// One upload attempt.
    pub upload_timeout: Duration,
    /// First retry delay (IMDS and upload), doubled per retry with jitter.
    pub initial_backoff: Duration,
    /// Cap of the upload retry delay.
    pub max_backoff: Duration,
    /// Refuse to scan unless this record of `scanner-agent egress apply` names the manifest's
    /// collector ([`egress::check_state`]). The image's unit sets it; runs outside the image (the
    /// simulated hypervisor, tests, manual runs) leave it `None` and change no firewall.
    pub require_egress: Option<PathBuf>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            imds_endpoint: DEFAULT_IMDS_ENDPOINT.into(),
            manifest_file: None,
            dev_root: PathBuf::from("/"),
            out_dir: None,
            poweroff: PowerOff::default(),
            imds_budget: DEFAULT_IMDS_BUDGET,
            max_upload_attempts: DEFAULT_UPLOAD_ATTEMPTS,
            upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            require_egress: None,
        }
    }
}

/// Why `run` could not deliver a bundle.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot read the job manifest from IMDS: {0}")]
    Imds(#[from] ImdsError),
    #[error("cannot read the job manifest file {path}: {source}")]
    ManifestFile { path: String, source: std::io::Error },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot write the result bundle: {0}")]
    Bundle(#[from] BundleError),
    #[error("cannot write the bundle to {path}: {source}")]
    OutDir { path: String, source: std::io::Error },
    #[error("bundle not delivered: {0}")]
    Upload(#[from] UploadError),
    #[error("egress is not enforced, so nothing was scanned: {0}")]
    Egress(#[from] EgressError),
}

/// What [`run`] did.
#[derive(Debug)]
pub struct RunOutcome {
    /// [`EXIT_OK`], [`EXIT_INCOMPLETE`] or [`EXIT_FATAL`].
    pub exit_code: u8,
    /// The bundle's manifest, when one was written.
    pub bundle: Option<BundleManifest>,
    /// The accepted upload.
    pub receipt: Option<UploadReceipt>,
    /// What went wrong, if anything did beyond the devices' own statuses.
    pub errors: Vec<AgentError>,
}

/// The three JSON documents of one scan, as `scanner-agent scan` prints them and the bundle
/// carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutputs {
    /// The inventory report (`--format json`, `inventory.json`).
    pub inventory: String,
    /// The CycloneDX SBOM (`--format cyclonedx`, `sbom.cdx.json`).
    pub sbom: String,
    /// The baseline findings (`--format baseline`, `baseline.json`), when they were evaluated.
    pub baseline: Option<String>,
}

impl ScanOutputs {
    /// Render `report`; `target` names the scanned thing in the SBOM's metadata.
    ///
    /// # Errors
    ///
    /// Serialisation failed (not expected for these plain data types).
    pub fn render(report: &Report, target: &str) -> Result<ScanOutputs, serde_json::Error> {
        let mut bom = sbom::build(report.os.as_ref(), &report.packages, target);
        if let Some(apps) = &report.applications {
            sbom::add_applications(&mut bom, &apps.packages);
        }
        Ok(ScanOutputs {
            inventory: serde_json::to_string_pretty(report)?,
            sbom: serde_json::to_string_pretty(&bom)?,
            baseline: report.baseline.as_ref().map(serde_json::to_string_pretty).transpose()?,
        })
    }

    /// The bundle's files; `baseline.json` is `null` when the baseline was not evaluated.
    #[must_use]
    pub fn into_volume_files(self) -> VolumeFiles {
        VolumeFiles {
            inventory: self.inventory.into_bytes(),
            sbom: self.sbom.into_bytes(),
            baseline: self.baseline.unwrap_or_else(|| "null".into()).into_bytes(),
        }
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A `failed` bundle entry for `target`, nothing scanned yet.
fn failed_entry(target: &DeviceTarget, error: Option<String>) -> DeviceEntry {
    DeviceEntry {
        device_name: target.device_name.clone(),
        resolved_path: None,
        instance_id: target.instance_id.clone(),
        volume_id: target.volume_id.clone(),
        snapshot_id: target.snapshot_id.clone(),
        status: DeviceStatus::Failed,
        error,
        os: None,
        packages: 0,
        app_packages: std::collections::BTreeMap::new(),
        baseline_failed: 0,
        synthetic: false,
    }
}

/// Scan the devices of one target instance together (its root and the filesystems the root mounts
/// from its other volumes, LVM volume groups across them): an entry, and files when scanned, per
/// device, in the order given.
#[must_use]
pub fn scan_instance_devices(
    targets: &[&DeviceTarget],
    dev_root: &Path,
    baseline: bool,
) -> Vec<(DeviceEntry, Option<VolumeFiles>)> {
    let mut out: Vec<(DeviceEntry, Option<VolumeFiles>)> =
        targets.iter().map(|t| (failed_entry(t, None), None)).collect();
    let mut paths = Vec::new();
    let mut scanned_slots = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let Some((entry, _)) = out.get_mut(i) else { continue };
        match resolve_device(dev_root, &target.device_name) {
            Ok(p) => {
                entry.resolved_path = Some(p.display().to_string());
                paths.push(p);
                scanned_slots.push(i);
            }
            Err(e) => {
                entry.status = if matches!(e, DeviceError::NotFound { .. }) {
                    DeviceStatus::Missing
                } else {
                    DeviceStatus::Failed
                };
                tracing::warn!(device = %target.device_name, volume = %target.volume_id, error = %e, "device not scanned");
                entry.error = Some(e.to_string());
            }
        }
    }
    if paths.is_empty() {
        return out;
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let reports = match scan::scan_images(&refs, ScanOptions { baseline, no_apps: false }) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(instance = %targets.first().map_or("", |t| t.instance_id.as_str()), error = %e, "devices unreadable");
            for &i in &scanned_slots {
                if let Some((entry, _)) = out.get_mut(i) {
                    entry.error = Some(e.to_string());
                }
            }
            return out;
        }
    };
    for (&i, report) in scanned_slots.iter().zip(&reports) {
        let (Some((entry, files)), Some(target)) = (out.get_mut(i), targets.get(i)) else { continue };
        let outputs = match ScanOutputs::render(report, &format!("{}/{}", target.instance_id, target.volume_id)) {
            Ok(o) => o,
            Err(e) => {
                entry.error = Some(format!("cannot serialise the scan results: {e}"));
                continue;
            }
        };
        entry.os = report.os.as_ref().map(|o| o.pretty_name.clone().unwrap_or_else(|| o.id.clone()));
        entry.packages = report.packages.len();
        entry.app_packages = crate::apps::count_by_ecosystem(report.applications.as_ref());
        entry.baseline_failed = report.baseline.as_ref().map_or(0, |b| b.summary.fail);
        if report.is_complete() {
            entry.status = DeviceStatus::Complete;
        } else {
            entry.status = DeviceStatus::Partial;
            let first = report.errors.first().map_or("", String::as_str);
            let summary = format!("{} error(s); first: {first}", report.errors.len());
            entry.error = Some(summary.chars().take(MAX_ERROR_SUMMARY_CHARS).collect());
        }
        tracing::info!(
            device = %target.device_name,
            volume = %target.volume_id,
            status = entry.status.as_str(),
            packages = entry.packages,
            assembled_into = report.assembled_into.as_deref().unwrap_or(""),
            "device scanned"
        );
        *files = Some(outputs.into_volume_files());
    }
    out
}

/// Scan every device of `manifest` (the devices of one target instance together, a few instances
/// at a time) and assemble the bundle's manifest and files, ready for [`write_bundle`]. An
/// instance whose scan panics has its devices reported `failed`; the others are unaffected.
#[must_use]
pub fn scan_devices(
    manifest: &JobManifest,
    dev_root: &Path,
    scanner_instance: Option<String>,
) -> (BundleManifest, BTreeMap<usize, VolumeFiles>) {
    let started_at = now_rfc3339();
    let n = manifest.devices.len();
    // The devices of one target instance are scanned together; instances in parallel.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, d) in manifest.devices.iter().enumerate() {
        let same = groups
            .iter_mut()
            .find(|g| g.first().and_then(|&j| manifest.devices.get(j)).is_some_and(|f| f.instance_id == d.instance_id));
        match same {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, MAX_SCAN_THREADS)
        .min(groups.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<(DeviceEntry, Option<VolumeFiles>)>> = vec![None; n];
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let g = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(group) = groups.get(g) else { break };
                        let targets: Vec<&DeviceTarget> =
                            group.iter().filter_map(|&i| manifest.devices.get(i)).collect();
                        let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            scan_instance_devices(&targets, dev_root, manifest.baseline)
                        }));
                        match scanned {
                            Ok(entries) => done.extend(group.iter().copied().zip(entries.into_iter().map(Some))),
                            Err(_) => done.extend(group.iter().map(|&i| (i, None))),
                        }
                    }
                    done
                })
            })
            .collect();
        for w in workers {
            for (i, r) in w.join().unwrap_or_default() {
                if let Some(slot) = results.get_mut(i) {
                    *slot = r;
                }
            }
        }
    });
    let mut devices = Vec::with_capacity(n);
    let mut volumes = BTreeMap::new();
    for (i, (target, result)) in manifest.devices.iter().zip(results).enumerate() {
        let (entry, files) = result.unwrap_or_else(|| {
            tracing::error!(device = %target.device_name, "the scan of this device crashed");
            (failed_entry(target, Some("the scanner crashed on this device (a bug: please report it)".into())), None)
        });
        if let Some(f) = files {
            volumes.insert(i, f);
        }
        devices.push(entry);
    }
    let bundle = BundleManifest {
        format: BUNDLE_FORMAT.into(),
        job: manifest.job.clone(),
        scanner: manifest.scanner.clone(),
        scanner_instance,
        agent_version: format!("scanner-agent {}", env!("CARGO_PKG_VERSION")),
        started_at,
        finished_at: now_rfc3339(),
        devices,
        errors: Vec::new(),
    };
    (bundle, volumes)
}

/// The job manifest's bytes from user data. IMDS returns user data already decoded from the
/// base64 `RunInstances` takes, so it is the JSON itself; user data that is base64 of the JSON
/// (encoded once more by a caller) is decoded as a courtesy. Anything else is returned as is, for
/// the JSON parser to refuse.
#[must_use]
pub fn decode_user_data(raw: &[u8]) -> Cow<'_, [u8]> {
    let trimmed = raw.trim_ascii();
    if trimmed.first() == Some(&b'{') {
        return Cow::Borrowed(raw);
    }
    let compact: Vec<u8> = trimmed.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(&compact) {
        Ok(decoded) if decoded.trim_ascii().first() == Some(&b'{') => Cow::Owned(decoded),
        _ => Cow::Borrowed(raw),
    }
}

/// What the scanner learns before it scans.
#[derive(Debug, Clone)]
pub struct ManifestRead {
    pub manifest: JobManifest,
    /// The scanner's instance id (IMDS only).
    pub instance_id: Option<String>,
    /// Its `rsa2048` instance identity signature (IMDS only), sent with the upload.
    pub identity: Option<String>,
}

/// The job manifest (from the file, or IMDS), the scanner's instance id and its identity
/// signature (IMDS only).
///
/// # Errors
///
/// The file or IMDS could not be read, or the manifest is refused by [`JobManifest::parse`].
pub fn read_manifest(config: &RunConfig) -> Result<ManifestRead, AgentError> {
    let (raw, instance_id, identity) = match &config.manifest_file {
        Some(path) => {
            let file_err = |source| AgentError::ManifestFile { path: path.display().to_string(), source };
            let mut bytes = Vec::new();
            // Base64 makes 4 bytes of 3; one byte more than that lets the parser report "too large".
            let limit = u64::try_from(MAX_USER_DATA_BYTES * 2 + 1).unwrap_or(u64::MAX);
            std::fs::File::open(path).map_err(file_err)?.take(limit).read_to_end(&mut bytes).map_err(file_err)?;
            (bytes, None, None)
        }
        None => {
            let data = Imds::new(&config.imds_endpoint)?.fetch(config.imds_budget, config.initial_backoff)?;
            (data.user_data, data.instance_id, data.identity)
        }
    };
    let manifest = JobManifest::parse(&decode_user_data(&raw))?;
    Ok(ManifestRead { manifest, instance_id, identity })
}

/// Write `bundle` to `<dir>/<job>-<scanner>.tar` (through a temporary file and a rename).
fn write_out(dir: &Path, manifest: &JobManifest, bundle: &[u8]) -> Result<PathBuf, AgentError> {
    let path = dir.join(format!("{}-{}.tar", manifest.job, manifest.scanner));
    let err = |source| AgentError::OutDir { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{}-{}.tar.tmp", manifest.job, manifest.scanner));
    std::fs::write(&tmp, bundle).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

fn power_off(p: &PowerOff) {
    let PowerOff::Command(argv) = p else {
        tracing::info!("not powering off (asked not to)");
        return;
    };
    let Some((program, args)) = argv.split_first() else {
        tracing::error!("empty power-off command; staying up");
        return;
    };
    tracing::info!(command = ?argv, "powering off");
    match std::process::Command::new(program).args(args).status() {
        Ok(s) if s.success() => {}
        Ok(s) => tracing::error!(command = ?argv, status = %s, "the power-off command failed"),
        Err(e) => tracing::error!(command = ?argv, error = %e, "cannot run the power-off command"),
    }
}

/// The job's deadline as a time.
fn deadline(manifest: &JobManifest) -> SystemTime {
    match u64::try_from(manifest.deadline_unix) {
        Ok(secs) => SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

fn run_inner(config: &RunConfig, outcome: &mut RunOutcome) {
    let ManifestRead { manifest, instance_id, identity } = match read_manifest(config) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "no job manifest; nothing to scan");
            outcome.errors.push(e);
            return;
        }
    };
    tracing::info!(
        job = %manifest.job,
        scanner = %manifest.scanner,
        devices = manifest.devices.len(),
        baseline = manifest.baseline,
        collector = %manifest.collector_url,
        "job manifest read"
    );
    if let Some(path) = &config.require_egress {
        match egress::check_state(path, &manifest) {
            Ok(state) => tracing::info!(
                table = %state.table,
                collector = ?state.plan.collector,
                dns = ?state.plan.dns,
                "egress rules in place"
            ),
            Err(e) => {
                tracing::error!(error = %e, "egress is not enforced; not scanning");
                outcome.errors.push(e.into());
                return;
            }
        }
    }
    let (bundle_manifest, volumes) = scan_devices(&manifest, &config.dev_root, instance_id);
    let all_complete = bundle_manifest.devices.iter().all(|d| d.status == DeviceStatus::Complete);
    let body = match write_bundle(&bundle_manifest, &volumes) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot write the result bundle");
            outcome.errors.push(e.into());
            return;
        }
    };
    outcome.bundle = Some(bundle_manifest);
    let mut out_failed = false;
    if let Some(dir) = &config.out_dir {
        match write_out(dir, &manifest, &body) {
            Ok(path) => tracing::info!(path = %path.display(), "bundle written"),
            Err(e) => {
                tracing::error!(error = %e, "cannot write the bundle to the output directory");
                outcome.errors.push(e);
                out_failed = true;
            }
        }
    }
    let policy = UploadPolicy {
        max_attempts: config.max_upload_attempts,
        attempt_timeout: config.upload_timeout,
        initial_backoff: config.initial_backoff,
        max_backoff: config.max_backoff,
        deadline: deadline(&manifest),
    };
    match upload(&manifest, &body, identity.as_deref(), &policy) {
        Ok(receipt) => {
            outcome.receipt = Some(receipt);
            outcome.exit_code = if all_complete && !out_failed { EXIT_OK } else { EXIT_INCOMPLETE };
        }
        Err(e) => {
            tracing::error!(error = %e, "bundle not delivered");
            outcome.errors.push(e.into());
        }
    }
}

/// The `run` mode: manifest, scan, bundle, upload, power off (always, unless
/// [`PowerOff::None`]). The outcome's exit code is [`EXIT_OK`] when the bundle was uploaded and
/// every device is complete, [`EXIT_INCOMPLETE`] when it was uploaded but a device is not
/// complete (or `out_dir` could not be written), [`EXIT_FATAL`] otherwise.
#[must_use]
pub fn run(config: &RunConfig) -> RunOutcome {
    let mut outcome = RunOutcome { exit_code: EXIT_FATAL, bundle: None, receipt: None, errors: Vec::new() };
    run_inner(config, &mut outcome);
    power_off(&config.poweroff);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_json_or_its_base64() {
        let json = br#"{"version":1}"#;
        assert_eq!(&*decode_user_data(json), json);
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        assert_eq!(&*decode_user_data(format!("{b64}\n").as_bytes()), json);
        assert_eq!(&*decode_user_data(b"not json"), b"not json");
    }

    #[test]
    fn deadline_before_the_epoch_is_the_epoch() {
        let mut m: JobManifest = serde_json::from_value(serde_json::json!({
            "version": 1, "job": "j", "scanner": "s0", "collector_url": "http://127.0.0.1:1",
            "hmac_key": "00".repeat(32), "baseline": false, "deadline_unix": 10, "devices": []
        }))
        .expect("manifest");
        assert_eq!(deadline(&m), SystemTime::UNIX_EPOCH + Duration::from_secs(10));
        m.deadline_unix = -5;
        assert_eq!(deadline(&m), SystemTime::UNIX_EPOCH);
    }
}
