//! The collector (DESIGN.md, "The result bundle"): receives each scanner's result bundle on
//! `PUT /v1/jobs/<job>/bundles/<scanner>` ([`server`]), checks it ([`Collector::ingest`]) and stores
//! the results per target in the data directory ([`store`]).
//!
//! Checks, in order: the job and scanner are ones we launched (registered by the job runner
//! before the scanner starts); `X-Agentless-Signature` is the HMAC-SHA256 of the body under the
//! job's key; the body is within [`BundleLimits`]; the archive passes
//! [`scanner_ami::bundle::read_bundle`] (no absolute paths, `..`, links, duplicates, unknown
//! entries or format versions, truncation); its manifest names the same job and scanner as the
//! path and exactly the devices that scanner was given. Files are written under paths built from
//! the *registered* target and volume ids, never from names in the archive.
//!
//! A second upload of a bundle already stored is acknowledged and ignored, so an agent that
//! retries after a lost response cannot duplicate a result.

pub mod server;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use scanner_ami::bundle::{BundleError, BundleLimits, read_bundle, verify};
use scanner_ami::job::{DeviceTarget, HmacKey};

pub use store::{ResultStore, StoredVolume};

/// Why an upload was refused (each maps to an HTTP status in [`server`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("job {0} is not a job this collector is waiting for")]
    UnknownJob(String),
    #[error("scanner {scanner} is not a scanner of job {job}")]
    UnknownScanner { job: String, scanner: String },
    #[error("missing X-Agentless-Signature header")]
    MissingSignature,
    #[error("bad bundle signature for job {job} scanner {scanner}")]
    BadSignature { job: String, scanner: String },
    #[error("bundle of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("bad bundle from job {job} scanner {scanner}: {source}")]
    Bundle { job: String, scanner: String, source: BundleError },
    #[error("bundle from job {job} scanner {scanner} does not match what it was sent to do: {reason}")]
    Mismatch { job: String, scanner: String, reason: String },
    #[error("storing results of job {job} scanner {scanner} under {path}: {source}")]
    Store { job: String, scanner: String, path: PathBuf, source: std::io::Error },
}

/// What an accepted upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored now.
    Stored,
    /// Already stored by an earlier upload; nothing written.
    Duplicate,
}

#[derive(Debug)]
struct JobEntry {
    key: HmacKey,
    scanners: HashMap<String, Vec<DeviceTarget>>,
}

#[derive(Debug)]
struct Inner {
    jobs: Mutex<HashMap<String, JobEntry>>,
    store: ResultStore,
    limits: BundleLimits,
    arrived: tokio::sync::Notify,
}

/// The collector's state; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Collector {
    inner: Arc<Inner>,
}

impl Collector {
    /// A collector storing results under `<data_dir>/results`.
    #[must_use]
    pub fn new(data_dir: &Path, limits: BundleLimits) -> Collector {
        Collector {
            inner: Arc::new(Inner {
                jobs: Mutex::new(HashMap::new()),
                store: ResultStore::new(data_dir),
                limits,
                arrived: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The result store.
    #[must_use]
    pub fn store(&self) -> &ResultStore {
        &self.inner.store
    }

    /// The limits uploads are held to.
    #[must_use]
    pub fn limits(&self) -> BundleLimits {
        self.inner.limits
    }

    /// Expect bundles of `job`, signed with `key`.
    pub fn register_job(&self, job: &str, key: HmacKey) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let entry =
            jobs.entry(job.to_owned()).or_insert_with(|| JobEntry { key: key.clone(), scanners: HashMap::new() });
        entry.key = key;
    }

    /// Expect a bundle from `scanner` of `job` covering exactly `devices`. Call before launching it.
    pub fn register_scanner(&self, job: &str, scanner: &str, devices: Vec<DeviceTarget>) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = jobs.get_mut(job) {
            entry.scanners.insert(scanner.to_owned(), devices);
        }
    }

    /// Stop accepting bundles of `job`.
    pub fn forget_job(&self, job: &str) {
        self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner).remove(job);
    }

    /// Wait until a bundle arrives (any job), or a spurious wake-up: callers re-check.
    pub async fn arrived(&self) {
        self.inner.arrived.notified().await;
    }

    /// Check and store one upload.
    ///
    /// # Errors
    ///
    /// See [`IngestError`]; nothing is stored on error.
    pub fn ingest(
        &self,
        job: &str,
        scanner: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Ingested, IngestError> {
        let (key, devices) = {
            let jobs = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = jobs.get(job).ok_or_else(|| IngestError::UnknownJob(job.to_owned()))?;
            let devices = entry
                .scanners
                .get(scanner)
                .cloned()
                .ok_or_else(|| IngestError::UnknownScanner { job: job.to_owned(), scanner: scanner.to_owned() })?;
            (entry.key.clone(), devices)
        };
        let size = u64::try_from(body.len()).unwrap_or(u64::MAX);
        if size > self.inner.limits.max_body_bytes {
            return Err(IngestError::TooLarge { size, limit: self.inner.limits.max_body_bytes });
        }
        let signature = signature.ok_or(IngestError::MissingSignature)?;
        if !verify(&key, body, signature) {
            return Err(IngestError::BadSignature { job: job.to_owned(), scanner: scanner.to_owned() });
        }
        let bundle = read_bundle(body, &self.inner.limits).map_err(|source| IngestError::Bundle {
            job: job.to_owned(),
            scanner: scanner.to_owned(),
            source,
        })?;
        let mismatch =
            |reason: String| IngestError::Mismatch { job: job.to_owned(), scanner: scanner.to_owned(), reason };
        if bundle.manifest.job != job || bundle.manifest.scanner != scanner {
            return Err(mismatch(format!(
                "manifest names job {} scanner {}",
                bundle.manifest.job, bundle.manifest.scanner
            )));
        }
        if bundle.manifest.devices.len() != devices.len() {
            return Err(mismatch(format!(
                "{} devices in the bundle, {} given to the scanner",
                bundle.manifest.devices.len(),
                devices.len()
            )));
        }
        for (i, (got, want)) in bundle.manifest.devices.iter().zip(&devices).enumerate() {
            let same = got.device_name == want.device_name
                && got.instance_id == want.instance_id
                && got.volume_id == want.volume_id
                && got.snapshot_id == want.snapshot_id;
            if !same {
                return Err(mismatch(format!(
                    "device {i} is {} {} {} in the bundle, {} {} {} was given",
                    got.device_name, got.instance_id, got.volume_id, want.device_name, want.instance_id, want.volume_id
                )));
            }
        }
        let out = self.inner.store.store_bundle(job, scanner, &devices, &bundle).map_err(|(path, source)| {
            IngestError::Store { job: job.to_owned(), scanner: scanner.to_owned(), path, source }
        })?;
        self.inner.arrived.notify_waiters();
        Ok(out)
    }
}

/// The in-process delivery of the simulated account's hypervisor (no socket: works under a
/// paused clock) goes through the same checks as an HTTP upload.
impl crate::cloud::sim::hypervisor::BundleSink for Collector {
    fn deliver(&self, job: &str, scanner: &str, signature: &str, body: &[u8]) -> Result<(), String> {
        self.ingest(job, scanner, Some(signature), body).map(|_| ()).map_err(|e| e.to_string())
    }
}
