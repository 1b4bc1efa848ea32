//! Scan jobs (docs/job.md): one job per (account, Region), driven through
//! `Planned -> Discovering -> Snapshotting -> Sharing -> Networking -> Launching -> Scanning ->
//! Collecting -> TearingDown -> Done | Failed | Cancelled`, each transition committed to the
//! ledger before the next AWS call, every create preceded by an intent row, every call through
//! the policy guard.
//!
//! One concept per file: [`doc`] (the job's persisted working document), [`runner`] (the state
//! loop, crash hook, failure and cancellation handling), the steps [`discover`], [`snapshot`],
//! [`share`], [`network`], [`launch`], [`scan`] (waiting for bundles and collecting), [`teardown`],
//! and [`retry`] (jittered backoff) and [`track`] (the intent protocol around a create call).
//! [`budget`] is the hook through which the daemon's dispatcher shares quotas between jobs;
//! [`targets`] says which instances a run scans (the selector of schedules, on-demand scans and
//! event scans).

pub mod budget;
pub mod discover;
pub mod doc;
pub mod launch;
pub mod lock;
pub mod network;
pub mod runner;
pub mod scan;
pub mod share;
pub mod snapshot;
pub mod targets;
pub mod teardown;
pub mod track;

use std::time::Duration;

use crate::cloud::CloudError;
use crate::cloud::ids::{ImageId, JobId, Region};
use crate::ledger::{JobState, LedgerError};

pub use budget::Budget;
pub use doc::{JobDoc, Selector};
pub use runner::{JobOutcome, Progress, Runner};

/// Scanner instance type: general purpose, 4 vCPUs, on the shared Nitro attachment limit, offered
/// in every commercial Region (the plan's [`crate::cloud::plan::SCANNER_INSTANCE_TYPE`]).
pub const DEFAULT_INSTANCE_TYPE: &str = crate::cloud::plan::SCANNER_INSTANCE_TYPE;

/// Data volumes per scanner: 28 shared Nitro attachments minus the root volume and the ENI
/// (EC2 User Guide, "Amazon EBS volume limits for Amazon EC2 instances"; Prisma Cloud uses 26).
pub const DEFAULT_MAX_DEVICES: usize = crate::cloud::plan::SCANNER_MAX_DATA_VOLUMES;

/// Wait after `SnapshotCreationPerVolumeRateExceeded`: "wait at least 15 seconds" (EC2 API
/// Reference, error codes).
pub const PER_VOLUME_RATE_WAIT: Duration = Duration::from_secs(15);

/// Pending snapshots the job allows itself per Region: AWS allows 100 concurrent per Region
/// (docs/references.md, "EBS snapshot quotas"); 10 are left for the customer's own backups and other jobs.
pub const MAX_PENDING_SNAPSHOTS: usize = 90;

/// How the scanner AMI is found in the job's Region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerImage {
    /// This AMI (any owner: the user chose it). An AMI id belongs to one Region: a job in
    /// another Region finds no such image and fails with [`ScannerImageError::Unusable`].
    Id(ImageId),
    /// One AMI per Region (`--scanner-ami REGION=AMI`, `scanner.regions.<Region>.ami`); a Region
    /// with none is refused ([`ScannerImageError::NotPinned`]) rather than falling back to a tag
    /// search the user opted out of.
    ByRegion(std::collections::BTreeMap<Region, ImageId>),
    /// The image owned by this account with exactly this AMI name, chosen by the user (as an SSM
    /// parameter would name it): exactly one, available, else [`ScannerImageError`]. AMI names are
    /// unique per account and Region (EC2 User Guide, "Create an AMI": "must be unique").
    Name(String),
    /// Our own image: owned by this account, tagged `agentless:image-version=<version>` **and**
    /// with an AMI name [`crate::cloud::tags::is_image_name`] accepts (built from
    /// `scanner-ami/image`); exactly one such image, else [`ScannerImageError`].
    Version(String),
}

/// Why no scanner image can be used in a Region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScannerImageError {
    #[error(
        "no scanner image in {region}: none owned by this account is tagged {tag}={version} and named \
         {name}[-...]{rejected}; build one (scanner-ami/image/README.md), or pin one: `--scanner-ami` (scan), \
         `scanner.regions.<Region>.ami` (serve)"
    )]
    NotFound { region: Region, version: String, tag: &'static str, name: String, rejected: String },
    #[error(
        "{} scanner images in {region} are tagged {tag}={version} and named {name}[-...]: {candidates}; \
         refusing to guess which receives customer disks: deregister the extra ones, or pin one by id",
        .count
    )]
    Ambiguous { region: Region, version: String, tag: &'static str, name: String, count: usize, candidates: String },
    #[error("the scanner image {image} in {region}: {why}")]
    Unusable { region: Region, image: ImageId, why: String },
    #[error(
        "no scanner image pinned for {region} (pinned: {pinned}); an AMI id belongs to one Region: \
         give `--scanner-ami {region}=ami-...` (scan) or `scanner.regions.{region}.ami` (serve)"
    )]
    NotPinned { region: Region, pinned: String },
    #[error(
        "no scanner image named {name:?} owned by this account in {region}{other}; check the name, \
         or pin the image by id"
    )]
    NameNotFound { region: Region, name: String, other: String },
}

/// What a job does and how patiently.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub instance_type: String,
    pub max_devices: usize,
    pub image: ScannerImage,
    /// Evaluate the baseline rules too.
    pub baseline: bool,
    /// Resources carry `agentless:expires-at` = start + ttl; the auditor removes them after it.
    pub ttl: jiff::SignedDuration,
    /// Between two polls of snapshot, instance and bundle states.
    pub poll: Duration,
    /// A snapshot still pending this long after its creation fails its volume (counted per
    /// snapshot: a Region's snapshots are created over hours at the pending-snapshot quota).
    pub snapshot_timeout: Duration,
    /// A scanner that has not reported this long after its launch fails its volumes.
    pub scan_timeout: Duration,
    /// CIDR of the job's VPC and of its one subnet.
    pub vpc_cidr: String,
    pub subnet_cidr: String,
    /// Create a gateway VPC endpoint for this service (e.g. `com.amazonaws.us-east-1.s3`).
    pub vpc_endpoint: Option<String>,
    /// Debug hook: SIGKILL the process when the job has done the work of this state (before the
    /// transition out of it is recorded), to test crash safety.
    pub crash_at: Option<JobState>,
    /// The SHA-256 (hex) of the certificate the collector serves, pinned in the manifest of every
    /// scanner whose job's collector URL is `https://` (`scanner_ami::agent::pin`). `None` with a
    /// plain `http://` collector; an `https://` job without it cannot launch scanners.
    pub collector_cert_sha256: Option<String>,
}

impl JobSettings {
    /// Defaults for a Region, scanning with `image`.
    #[must_use]
    pub fn new(image: ScannerImage) -> JobSettings {
        JobSettings {
            instance_type: DEFAULT_INSTANCE_TYPE.to_owned(),
            max_devices: DEFAULT_MAX_DEVICES,
            image,
            baseline: true,
            // Six hours: longer than any scan of a Region (minutes to an hour), short enough that a
            // leak is found the same day by a scheduled audit.
            ttl: jiff::SignedDuration::from_hours(6),
            // EC2 API Reference recommends polling describe calls no faster than a few seconds.
            poll: Duration::from_secs(5),
            // Snapshot latency is minutes per 100 GiB changed (docs/references.md); 2 h
            // covers a full first snapshot of a multi-TiB volume.
            // AWS: the first snapshot of a large volume "can take several hours"; Datadog's 15 min
            // is hit in practice (elastic/cloudbeat issue #958; docs/references.md).
            snapshot_timeout: Duration::from_secs(6 * 3600),
            // Boot (~1 min) + reading a large disk's package databases (seconds to minutes).
            scan_timeout: Duration::from_secs(30 * 60),
            vpc_cidr: "10.77.0.0/16".to_owned(),
            subnet_cidr: "10.77.0.0/20".to_owned(),
            vpc_endpoint: None,
            crash_at: None,
            collector_cert_sha256: None,
        }
    }
}

/// Why a job could not go on (it then tears down), or could not even be torn down.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job {job}: ledger: {source}")]
    Ledger { job: JobId, source: LedgerError },
    #[error("job {job} in {region}: {step}: {source}")]
    Cloud { job: JobId, region: Region, step: &'static str, source: CloudError },
    #[error("job {job} in {region}: {message}")]
    Setup { job: JobId, region: Region, message: String },
    #[error("job {job}: {source}")]
    Image { job: JobId, source: Box<ScannerImageError> },
    #[error("job {0} is not in the ledger")]
    UnknownJob(JobId),
    #[error(transparent)]
    Id(#[from] crate::cloud::IdError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
}
