//! The collector (docs/bundle.md, "The collector's checks"): receives each scanner's result bundle on
//! `PUT /v1/jobs/<job>/bundles/<scanner>` ([`server`]), checks it and stores the results per
//! target in the data directory ([`store`]).
//!
//! Every scanner has its own key ([`HmacKey::for_scanner`] of the job's key, derived again here
//! when the scanner is registered): a scanner can sign only its own bundle, and the key is
//! revoked ([`Collector::forget_scanner`]) once the scanner's results are collected or it failed.
//!
//! Checks, in order, first those the headers allow ([`Collector::authorize`], before a byte of the
//! body is read): the job and scanner are ones we launched (registered by the job runner before
//! the scanner starts); a `Content-Length` within [`BundleLimits`]; `X-Agentless-Auth` is
//! [`scanner_ami::bundle::upload_token`] of that length and of `X-Agentless-Signature` under the
//! scanner's key. Then [`Collector::admit`] holds the upload to [`UploadLimits`] (concurrent
//! uploads, bytes in flight). The server streams the body to a temporary file while computing its
//! HMAC ([`scanner_ami::bundle::BodyMac`]); only then is the file read ([`Collector::ingest_file`]):
//! the archive passes [`scanner_ami::bundle::read_bundle`] (no absolute paths, `..`, links,
//! duplicates, unknown entries or format versions, truncation); its manifest names the same job
//! and scanner as the path and exactly the devices that scanner was given. Files are written
//! under paths built from the *registered* target and volume ids, never from names in the archive.
//!
//! When the collector is given an [`IdentityTrust`] ([`Collector::set_identity_trust`]: AWS's
//! per-Region certificates on `--cloud aws`, the simulated account's test CA on `--cloud sim`),
//! every upload must also carry the scanner's AWS-signed instance identity document
//! (`X-Agentless-Identity`, [`identity`]), verified with the certificate of the Region the ledger
//! recorded for the scanner, naming the instance id, account and Region the ledger recorded for it
//! ([`Collector::scanner_launched`]); otherwise 401, counted. An upload that arrives before the
//! launch is recorded is answered 503 (the agent retries). Without a trust, the document is not
//! checked (the collector logs that at start).
//!
//! A second upload of a bundle already stored is acknowledged and ignored, so an agent that
//! retries after a lost response cannot duplicate a result. Refusals are counted by reason
//! ([`Collector::refusals`], the daemon's `agentless_collector_refusals_total`).

pub mod identity;
pub mod server;
pub mod store;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use scanner_ami::bundle::{BundleError, BundleLimits, read_bundle, verify, verify_upload_token};
use scanner_ami::job::{DeviceTarget, HmacKey};

pub use identity::{ExpectedIdentity, IdentityError, IdentityTrust};

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
    #[error("missing X-Agentless-Auth header")]
    MissingAuth,
    #[error("bad X-Agentless-Auth for job {job} scanner {scanner}: not signed with this scanner's key")]
    BadAuth { job: String, scanner: String },
    #[error("no Content-Length: the body's size must be declared (and authenticated) up front")]
    LengthRequired,
    #[error("job {job} scanner {scanner}: instance identity refused: {source}")]
    Identity { job: String, scanner: String, source: IdentityError },
    #[error("job {job} scanner {scanner}: its launch is not recorded yet; retry later")]
    IdentityPending { job: String, scanner: String },
    #[error("bad bundle signature for job {job} scanner {scanner}")]
    BadSignature { job: String, scanner: String },
    #[error("{in_flight} uploads in progress, the limit is {limit}; retry later")]
    Busy { in_flight: usize, limit: usize },
    #[error("{in_flight} bytes of uploads in flight, {size} more would exceed the limit of {limit}; retry later")]
    OverBudget { in_flight: u64, size: u64, limit: u64 },
    #[error("the body was not received within {0:?}")]
    Timeout(Duration),
    #[error("the body is {got} bytes, not the {declared} its Content-Length declared")]
    LengthMismatch { declared: u64, got: u64 },
    #[error("receiving the body of job {job} scanner {scanner}: {reason}")]
    Receive { job: String, scanner: String, reason: String },
    #[error("bundle of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("bad bundle from job {job} scanner {scanner}: {source}")]
    Bundle { job: String, scanner: String, source: BundleError },
    #[error("bundle from job {job} scanner {scanner} does not match what it was sent to do: {reason}")]
    Mismatch { job: String, scanner: String, reason: String },
    #[error("storing results of job {job} scanner {scanner} under {path}: {source}")]
    Store { job: String, scanner: String, path: PathBuf, source: std::io::Error },
}

impl IngestError {
    /// The reason label a refusal is counted under (`agentless_collector_refusals_total`).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::UnknownJob(_) => "unknown_job",
            IngestError::UnknownScanner { .. } => "unknown_scanner",
            IngestError::MissingSignature | IngestError::MissingAuth | IngestError::BadAuth { .. } => "unauthenticated",
            IngestError::LengthRequired => "length_required",
            IngestError::BadSignature { .. } => "bad_signature",
            IngestError::Identity { source, .. } => source.reason(),
            IngestError::IdentityPending { .. } => "identity_pending",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::Busy { .. } => "busy",
            IngestError::OverBudget { .. } => "bytes_in_flight",
            IngestError::Timeout(_) => "timeout",
            IngestError::LengthMismatch { .. } | IngestError::Receive { .. } => "receive",
            IngestError::Bundle { source, .. } if source.is_too_large() => "too_large",
            IngestError::Bundle { .. } => "bad_bundle",
            IngestError::Mismatch { .. } => "mismatch",
            IngestError::Store { .. } => "store",
        }
    }
}

/// Bounds on the uploads in progress at once (the collector listens where scanners with public
/// addresses can reach it: anyone can open connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Uploads received at once (past the header checks); more are answered 503.
    pub max_concurrent: usize,
    /// Sum of the declared `Content-Length` of the uploads in progress; one that would pass it is
    /// answered 429. Bounds the temporary files, and the memory of bundles being parsed.
    pub max_bytes_in_flight: u64,
    /// Time to receive one body (a slow sender holds a slot no longer); 408 beyond.
    pub body_timeout: Duration,
    /// The `Retry-After` of a 503 or 429.
    pub retry_after: Duration,
}

impl Default for UploadLimits {
    /// 16 uploads and 512 MiB (two bodies of the 256 MiB [`BundleLimits`] maximum) at once: a
    /// bundle is a few MiB (an SBOM of a large server), so 16 keep a job's scanners finishing
    /// together moving while the rest wait `Retry-After`; 10 minutes per body is 256 MiB at
    /// ~3.5 Mbit/s, far below the in-VPC or Internet rates scanners upload at; 5 s between tries
    /// spreads a job's scanners without delaying them much (the agent adds its own jittered
    /// backoff, capped at its maximum).
    fn default() -> Self {
        UploadLimits {
            max_concurrent: 16,
            max_bytes_in_flight: 512 * 1024 * 1024,
            body_timeout: Duration::from_secs(600),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// A registered scanner whose upload passed the header checks ([`Collector::authorize`]).
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The scanner's key: verifies the body's signature.
    pub key: HmacKey,
    /// The declared (and authenticated) body size.
    pub length: u64,
    /// `X-Agentless-Signature`, to verify once the body is in.
    pub signature: String,
    /// Its bundle is stored already: nothing needs to be read.
    pub already_stored: bool,
    devices: Vec<DeviceTarget>,
}

/// One admitted upload's share of [`UploadLimits`]; released when dropped.
#[derive(Debug)]
pub struct Admission {
    _permit: tokio::sync::OwnedSemaphorePermit,
    bytes: u64,
    inner: Arc<Inner>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.inner.bytes_in_flight.fetch_sub(self.bytes, Ordering::AcqRel);
    }
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
struct ScannerEntry {
    /// [`HmacKey::for_scanner`] of the job's key.
    key: HmacKey,
    devices: Vec<DeviceTarget>,
    /// What the ledger recorded once it was launched ([`Collector::scanner_launched`]).
    identity: Option<ExpectedIdentity>,
}

#[derive(Debug)]
struct JobEntry {
    key: HmacKey,
    scanners: HashMap<String, ScannerEntry>,
}

#[derive(Debug)]
struct Inner {
    jobs: Mutex<HashMap<String, JobEntry>>,
    store: ResultStore,
    limits: BundleLimits,
    uploads: UploadLimits,
    slots: Arc<tokio::sync::Semaphore>,
    bytes_in_flight: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    arrived: tokio::sync::Notify,
    identity: std::sync::RwLock<Option<Arc<IdentityTrust>>>,
}

/// The collector's state; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Collector {
    inner: Arc<Inner>,
}

impl Collector {
    /// A collector storing results under `<data_dir>/results`, with the default [`UploadLimits`].
    #[must_use]
    pub fn new(data_dir: &Path, limits: BundleLimits) -> Collector {
        Collector::with_limits(data_dir, limits, UploadLimits::default())
    }

    /// A collector storing results under `<data_dir>/results` (uploads in progress under
    /// `<data_dir>/incoming`).
    #[must_use]
    pub fn with_limits(data_dir: &Path, limits: BundleLimits, uploads: UploadLimits) -> Collector {
        Collector {
            inner: Arc::new(Inner {
                jobs: Mutex::new(HashMap::new()),
                store: ResultStore::new(data_dir),
                limits,
                uploads,
                slots: Arc::new(tokio::sync::Semaphore::new(uploads.max_concurrent)),
                bytes_in_flight: AtomicU64::new(0),
                refusals: Mutex::new(BTreeMap::new()),
                arrived: tokio::sync::Notify::new(),
                identity: std::sync::RwLock::new(None),
            }),
        }
    }

    /// Require every upload to carry an instance identity document verified with `trust`
    /// (`None`: not checked, said in a warning).
    pub fn set_identity_trust(&self, trust: Option<IdentityTrust>) {
        if trust.is_none() {
            tracing::warn!("the collector does not check the scanners' instance identity documents");
        }
        *self.inner.identity.write().unwrap_or_else(PoisonError::into_inner) = trust.map(Arc::new);
    }

    /// The identity trust, if any.
    #[must_use]
    pub fn identity_trust(&self) -> Option<Arc<IdentityTrust>> {
        self.inner.identity.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The upload limits.
    #[must_use]
    pub fn upload_limits(&self) -> UploadLimits {
        self.inner.uploads
    }

    /// Where uploads are received: `<data_dir>/incoming`.
    #[must_use]
    pub fn incoming_dir(&self) -> PathBuf {
        self.inner.store.data_dir().join("incoming")
    }

    /// Refused uploads so far, by [`IngestError::reason`].
    #[must_use]
    pub fn refusals(&self) -> BTreeMap<&'static str, u64> {
        self.inner.refusals.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Count a refusal (and pass it on).
    pub fn refused(&self, e: IngestError) -> IngestError {
        *self.inner.refusals.lock().unwrap_or_else(PoisonError::into_inner).entry(e.reason()).or_default() += 1;
        e
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

    /// Expect bundles of `job`, each signed with its scanner's key derived from `key`.
    pub fn register_job(&self, job: &str, key: HmacKey) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let entry =
            jobs.entry(job.to_owned()).or_insert_with(|| JobEntry { key: key.clone(), scanners: HashMap::new() });
        entry.key = key;
    }

    /// Expect a bundle from `scanner` of `job` covering exactly `devices`, signed with
    /// [`HmacKey::for_scanner`] of the job's key. Call before launching it.
    pub fn register_scanner(&self, job: &str, scanner: &str, devices: Vec<DeviceTarget>) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = jobs.get_mut(job) {
            let key = entry.key.for_scanner(job, scanner);
            let identity = entry.scanners.get(scanner).and_then(|s| s.identity.clone());
            entry.scanners.insert(scanner.to_owned(), ScannerEntry { key, devices, identity });
        }
    }

    /// Record what the ledger recorded for `scanner` of `job` once launched: its instance
    /// identity document must name this instance, account and Region.
    pub fn scanner_launched(&self, job: &str, scanner: &str, identity: ExpectedIdentity) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = jobs.get_mut(job).and_then(|e| e.scanners.get_mut(scanner)) {
            s.identity = Some(identity);
        }
    }

    /// With an identity trust configured: `header` (`X-Agentless-Identity`) is the scanner's
    /// instance identity, signed for the Region and naming the instance and account the ledger
    /// recorded. Not counted: the caller counts with [`Collector::refused`].
    ///
    /// # Errors
    ///
    /// [`IngestError::Identity`] (401), [`IngestError::IdentityPending`] (503, the launch is not
    /// recorded yet), or the scanner is unknown.
    pub fn check_identity(&self, job: &str, scanner: &str, header: Option<&str>) -> Result<(), IngestError> {
        let Some(trust) = self.identity_trust() else { return Ok(()) };
        let expected = self.with_scanner(job, scanner, |s| s.identity.clone())?;
        let Some(expected) = expected else {
            return Err(IngestError::IdentityPending { job: job.to_owned(), scanner: scanner.to_owned() });
        };
        let doc = trust.verify(header, &expected).map_err(|source| IngestError::Identity {
            job: job.to_owned(),
            scanner: scanner.to_owned(),
            source,
        })?;
        tracing::debug!(%job, %scanner, instance = %doc.instance_id, "instance identity verified");
        Ok(())
    }

    /// Revoke `scanner`'s key: its uploads are refused from now on (404), whatever they carry.
    /// Called once its results are collected or it failed.
    pub fn forget_scanner(&self, job: &str, scanner: &str) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = jobs.get_mut(job) {
            entry.scanners.remove(scanner);
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

    fn scanner(&self, job: &str, scanner: &str) -> Result<(HmacKey, Vec<DeviceTarget>), IngestError> {
        self.with_scanner(job, scanner, |s| (s.key.clone(), s.devices.clone()))
    }

    /// `f` of a registered scanner of `job` (404 errors when either is unknown).
    fn with_scanner<T>(&self, job: &str, scanner: &str, f: impl FnOnce(&ScannerEntry) -> T) -> Result<T, IngestError> {
        let jobs = self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = jobs.get(job).ok_or_else(|| IngestError::UnknownJob(job.to_owned()))?;
        let s = entry
            .scanners
            .get(scanner)
            .ok_or_else(|| IngestError::UnknownScanner { job: job.to_owned(), scanner: scanner.to_owned() })?;
        Ok(f(s))
    }

    /// The checks the headers allow, before any byte of the body is read: the job and scanner
    /// are registered, the declared `length` is within the limit, and `token`
    /// (`X-Agentless-Auth`) is [`scanner_ami::bundle::upload_token`] of `length` and `signature`
    /// under the scanner's key. Not counted: the caller counts with [`Collector::refused`].
    ///
    /// # Errors
    ///
    /// [`IngestError::UnknownJob`], [`IngestError::UnknownScanner`],
    /// [`IngestError::LengthRequired`], [`IngestError::TooLarge`],
    /// [`IngestError::MissingSignature`], [`IngestError::MissingAuth`], [`IngestError::BadAuth`].
    pub fn authorize(
        &self,
        job: &str,
        scanner: &str,
        length: Option<u64>,
        signature: Option<&str>,
        token: Option<&str>,
    ) -> Result<Authorized, IngestError> {
        let (key, devices) = self.scanner(job, scanner)?;
        let length = length.ok_or(IngestError::LengthRequired)?;
        let limit = self.inner.limits.max_body_bytes;
        if length > limit {
            return Err(IngestError::TooLarge { size: length, limit });
        }
        let signature = signature.ok_or(IngestError::MissingSignature)?;
        let token = token.ok_or(IngestError::MissingAuth)?;
        if !verify_upload_token(&key, length, signature, token) {
            return Err(IngestError::BadAuth { job: job.to_owned(), scanner: scanner.to_owned() });
        }
        let already_stored = self.inner.store.scanner_reported(job, scanner);
        Ok(Authorized { key, length, signature: signature.to_owned(), already_stored, devices })
    }

    /// Take a share of the [`UploadLimits`] for an upload of `length` bytes, without waiting.
    ///
    /// # Errors
    ///
    /// [`IngestError::Busy`] (all slots taken: 503) or [`IngestError::OverBudget`] (the bytes in
    /// flight would pass the limit: 429).
    pub fn admit(&self, length: u64) -> Result<Admission, IngestError> {
        let limits = self.inner.uploads;
        let Ok(permit) = Arc::clone(&self.inner.slots).try_acquire_owned() else {
            return Err(IngestError::Busy { in_flight: limits.max_concurrent, limit: limits.max_concurrent });
        };
        let bytes = &self.inner.bytes_in_flight;
        let mut current = bytes.load(Ordering::Acquire);
        loop {
            let next = current.saturating_add(length);
            if next > limits.max_bytes_in_flight {
                return Err(IngestError::OverBudget {
                    in_flight: current,
                    size: length,
                    limit: limits.max_bytes_in_flight,
                });
            }
            match bytes.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        Ok(Admission { _permit: permit, bytes: length, inner: Arc::clone(&self.inner) })
    }

    /// Check and store an upload received into `path` whose body signature was verified while
    /// it was received ([`Authorized::signature`]). Blocking (reads, parses, fsyncs). The file is
    /// read only after its size is checked against the limit; the caller removes it.
    ///
    /// # Errors
    ///
    /// See [`IngestError`]; nothing is stored on error.
    pub fn ingest_file(
        &self,
        job: &str,
        scanner: &str,
        authorized: &Authorized,
        path: &Path,
    ) -> Result<Ingested, IngestError> {
        let receive = |e: std::io::Error| IngestError::Receive {
            job: job.to_owned(),
            scanner: scanner.to_owned(),
            reason: e.to_string(),
        };
        let size = std::fs::metadata(path).map_err(receive)?.len();
        if size != authorized.length {
            return Err(IngestError::LengthMismatch { declared: authorized.length, got: size });
        }
        if size > self.inner.limits.max_body_bytes {
            return Err(IngestError::TooLarge { size, limit: self.inner.limits.max_body_bytes });
        }
        let body = std::fs::read(path).map_err(receive)?;
        self.check_and_store(job, scanner, &authorized.devices, &body)
    }

    /// Check and store one upload held in memory (the simulated account's in-process delivery).
    ///
    /// # Errors
    ///
    /// See [`IngestError`]; nothing is stored on error.
    pub fn ingest(
        &self,
        job: &str,
        scanner: &str,
        signature: Option<&str>,
        identity: Option<&str>,
        body: &[u8],
    ) -> Result<Ingested, IngestError> {
        let (key, devices) = self.scanner(job, scanner)?;
        let size = u64::try_from(body.len()).unwrap_or(u64::MAX);
        if size > self.inner.limits.max_body_bytes {
            return Err(IngestError::TooLarge { size, limit: self.inner.limits.max_body_bytes });
        }
        let signature = signature.ok_or(IngestError::MissingSignature)?;
        if !verify(&key, body, signature) {
            return Err(IngestError::BadSignature { job: job.to_owned(), scanner: scanner.to_owned() });
        }
        self.check_identity(job, scanner, identity)?;
        self.check_and_store(job, scanner, &devices, body)
    }

    /// The checks of an authenticated body, and storing it.
    fn check_and_store(
        &self,
        job: &str,
        scanner: &str,
        devices: &[DeviceTarget],
        body: &[u8],
    ) -> Result<Ingested, IngestError> {
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
        for (i, (got, want)) in bundle.manifest.devices.iter().zip(devices).enumerate() {
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
        let out = self.inner.store.store_bundle(job, scanner, devices, &bundle).map_err(|(path, source)| {
            IngestError::Store { job: job.to_owned(), scanner: scanner.to_owned(), path, source }
        })?;
        self.inner.arrived.notify_waiters();
        Ok(out)
    }
}
