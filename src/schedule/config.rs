//! The daemon's configuration file (TOML; `scripts/deploy/agentless.toml` is the annotated
//! sample): the backend, the accounts and Regions to scan, the schedules with their target
//! selectors, the scanner's instance type and AMI per Region, the shared limits, the HTTP server
//! (collector and API, its bearer token), result retention, the leak-audit schedule and what to do
//! on shutdown.
//!
//! # Guarantees
//!
//! - Every table refuses keys it does not know: the error names the key and its line and column
//!   (a misspelt `exclude_tag` must not silently scan what it meant to exclude).
//! - Values are checked while parsing, so a bad cron expression, time zone, duration, Region or
//!   address is reported at its line too. Cross-references (a schedule naming an account that does
//!   not exist, two schedules with one name) are checked after parsing and name the entry.
//! - The API token may come from the file or, better, from the environment variable named by
//!   `server.token_env` (default `AGENTLESS_API_TOKEN`); it is never printed (`Debug` redacts it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use crate::events::config::{TrailConfig, TrailReaderConfig};

use super::cron::{self, CronSchedule};
use crate::cloud::ids::{AccountId, ImageId, Region};

/// The environment variable the API token is read from unless `server.token_env` names another.
pub const DEFAULT_TOKEN_ENV: &str = "AGENTLESS_API_TOKEN";

/// The shortest API token accepted: 16 bytes (128 bits) of a random token written as hex or
/// base64 is at least 22 characters; 16 keeps an accidental `"changeme"` out.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Which backend the daemon scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CloudKind {
    /// The simulated account of the data directory.
    #[default]
    Sim,
    /// AWS with the standard credential chain, a profile or an assumed role per account.
    Aws,
}

/// What a run missed while the daemon was down does on start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MissedRuns {
    /// Run it once (however many due times passed), at start.
    #[default]
    RunOnce,
    /// Wait for the next due time.
    Skip,
}

/// What SIGTERM / SIGINT does to jobs in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownMode {
    /// Let them go on until the deadline; what is unfinished then resumes on the next start.
    #[default]
    Finish,
    /// Cancel them at once: each tears down (ends `Cancelled`) within the deadline.
    TearDown,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub cloud: CloudKind,
    /// Ledger, results, job locks (and the simulated account); `--data-dir` overrides it.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub sim: SimConfig,
    pub server: ServerConfig,
    pub accounts: Vec<AccountConfig>,
    #[serde(default)]
    pub schedules: Vec<ScheduleConfig>,
    #[serde(default)]
    pub scanner: ScannerConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub vulndb: Option<VulndbConfig>,
    /// How the accounts' CloudTrail pipelines are read (`[accounts.trail]` says where they are).
    #[serde(default)]
    pub trail: TrailReaderConfig,
    /// Scans caused by CloudTrail events (needs an account with a pipeline).
    #[serde(default)]
    pub events: Option<EventsConfig>,
}

/// `[events]`: scans of instances that CloudTrail shows changed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Wait this long after an instance's first event before scanning it, folding every further
    /// event on it into the one scan [default: 2m].
    #[serde(default = "default_event_delay", deserialize_with = "de_duration")]
    pub delay: Duration,
    /// At most this many event scans per account per hour; the rest wait [default: 60].
    #[serde(default = "default_event_budget")]
    pub budget_per_hour: u32,
    /// Which instances events may scan (`tags`: a `CreateTags` that gives an instance these tags
    /// scans it; `exclude_tags`: never scanned). `instances` and `states` are not used here.
    #[serde(default)]
    pub targets: TargetSelector,
}

/// 2 minutes: a launch is followed within a minute or two by its volumes' attachments and tags
/// (our choice: one scan of the settled instance).
fn default_event_delay() -> Duration {
    Duration::from_secs(120)
}

/// 60 an hour: one scanner job per minute at most per account (our choice; schedules keep their
/// job slots).
fn default_event_budget() -> u32 {
    60
}

/// `[sim]`: the simulated account (with `cloud = "sim"`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// The fleet file the data directory's account is created from the first time [default: the
    /// bundled demo fleet]. Relative to the configuration file.
    pub fleet: Option<PathBuf>,
    /// The `scanner-agent` binary the simulated hypervisor runs [default: next to `agentless`,
    /// else the agent's code in process].
    pub agent_binary: Option<PathBuf>,
}

/// `[server]`: the HTTP server (collector uploads and the API on one listener).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the collector and the API listen.
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// The URL scanners upload to (an address they can reach) [default, sim only:
    /// `http://<listen>`]. `http://` or `https://` and a host: the agent refuses anything else,
    /// so every scanner of every job would fail.
    #[serde(default, deserialize_with = "de_opt_url")]
    pub collector_url: Option<String>,
    /// The API's bearer token (prefer `token_env`).
    #[serde(default)]
    pub token: Option<String>,
    /// The environment variable holding the token [default: `AGENTLESS_API_TOKEN`].
    #[serde(default)]
    pub token_env: Option<String>,
    /// AWS's RSA-2048 instance identity certificates, one `<region>.pem` per Region (required
    /// with `cloud = "aws"`; the collector refuses bundles whose identity document does not verify).
    #[serde(default)]
    pub identity_certs: Option<PathBuf>,
    /// Serve TLS even where plain HTTP is allowed (the simulated account on loopback). TLS is
    /// always served with an `https://` collector URL or a certificate.
    #[serde(default)]
    pub tls: bool,
    /// The listener's certificate chain (PEM, leaf first) [default: a self-signed certificate
    /// generated once into `<data_dir>/tls/`]. With `tls_key`.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// INSECURE: allow a plain `http://` collector URL with `cloud = "aws"`, or plain HTTP on a
    /// non-loopback `listen`: bundles and the API token then cross the network in clear.
    #[serde(default)]
    pub insecure_plaintext_collector: bool,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("collector_url", &self.collector_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_env", &self.token_env)
            .field("identity_certs", &self.identity_certs)
            .field("tls", &self.tls)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("insecure_plaintext_collector", &self.insecure_plaintext_collector)
            .finish()
    }
}

/// `[[accounts]]`: one AWS account (one principal).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// How schedules and the API name the account.
    pub name: String,
    /// The account id: the credentials must belong to it (required with `cloud = "sim"`, where it
    /// picks the simulated account).
    #[serde(default)]
    pub id: Option<AccountId>,
    /// A named profile of `~/.aws/config`.
    #[serde(default)]
    pub profile: Option<String>,
    /// A role to assume in the account with the base credentials.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id the role's trust policy requires.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Send every call to this endpoint (e.g. a test server).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// The Regions to scan (with `cloud = "aws"`, each must be enabled for the account: checked
    /// at start).
    pub regions: Vec<Region>,
    /// The account's CloudTrail → S3 → SQS pipeline.
    #[serde(default)]
    pub trail: Option<TrailConfig>,
}

/// `[[schedules]]`: scans that run on a cron schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub name: String,
    /// Five fields (minute hour day-of-month month day-of-week) or six with seconds first.
    #[serde(deserialize_with = "de_cron")]
    pub cron: String,
    /// IANA time zone the expression is read in [default: UTC].
    #[serde(default = "utc", deserialize_with = "de_time_zone")]
    pub timezone: String,
    /// The accounts (by name) [default: all].
    #[serde(default)]
    pub accounts: Vec<String>,
    /// The Regions [default: each account's]; a Region an account does not list is skipped for it.
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub targets: TargetSelector,
    /// Overrides `daemon.missed_runs` for this schedule.
    #[serde(default)]
    pub missed_runs: Option<MissedRuns>,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// Which instances a run scans: the job floor's selector (the API's `POST /v1/scans` body and
/// the events pipeline use it too), re-exported here where the configuration names it.
pub use crate::job::targets::{InstanceStateName, TargetSelector};

/// `[scanner]`: how scanners are launched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerConfig {
    /// Instance type [default: m5.xlarge].
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// Data volumes per scanner [default: 26].
    #[serde(default = "default_max_devices")]
    pub max_devices: usize,
    /// Evaluate the baseline rules.
    #[serde(default = "yes")]
    pub baseline: bool,
    /// Resources carry `agentless:expires-at` = start + ttl [default: 6h].
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub ttl: Option<Duration>,
    /// Between two polls of snapshot, instance and bundle states [default: 5s on AWS, 500ms sim].
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub poll: Option<Duration>,
    /// A snapshot still pending this long after its creation fails its volume [default: 6h,
    /// the job runner's]. Counted per snapshot, so it need not cover a whole Region's snapshots.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub snapshot_timeout: Option<Duration>,
    /// The scanner AMI by its exact name, owned by the account, in every Region without an `ami`
    /// or `image_name` of its own [default: our tagged image, see `ScannerImage::Version`].
    #[serde(default)]
    pub image_name: Option<String>,
    /// Per Region: the AMI and instance type there.
    #[serde(default)]
    pub regions: BTreeMap<Region, ScannerRegionConfig>,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            instance_type: default_instance_type(),
            max_devices: default_max_devices(),
            baseline: true,
            ttl: None,
            poll: None,
            snapshot_timeout: None,
            image_name: None,
            regions: BTreeMap::new(),
        }
    }
}

fn default_instance_type() -> String {
    crate::job::DEFAULT_INSTANCE_TYPE.to_owned()
}

fn default_max_devices() -> usize {
    crate::job::DEFAULT_MAX_DEVICES
}

fn yes() -> bool {
    true
}

/// `[scanner.regions.<region>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerRegionConfig {
    /// The scanner AMI pinned by id [default: `image_name`, then our image tagged
    /// `agentless:image-version=<version>` and named by our prefix].
    #[serde(default)]
    pub ami: Option<ImageId>,
    /// The scanner AMI by its exact name in this Region (not with `ami`).
    #[serde(default)]
    pub image_name: Option<String>,
    #[serde(default)]
    pub instance_type: Option<String>,
}

/// `[limits]`: the shared budgets per (account, Region) and the job slots.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Jobs driven at once, all accounts together.
    #[serde(default = "default_max_jobs")]
    pub max_concurrent_jobs: usize,
    /// Pending snapshots per (account, Region).
    #[serde(default = "default_pending")]
    pub pending_snapshots: usize,
    /// Pending snapshots per volume.
    #[serde(default = "default_per_volume")]
    pub snapshots_per_volume: usize,
    /// Concurrent snapshot copies per (account, Region).
    #[serde(default = "default_copies")]
    pub concurrent_copies: usize,
    /// VPCs our jobs may hold per (account, Region).
    #[serde(default = "default_vpcs")]
    pub vpcs: usize,
    /// Internet gateways our jobs may hold per (account, Region).
    #[serde(default = "default_vpcs")]
    pub internet_gateways: usize,
    /// On-Demand vCPUs our scanners may hold per (account, Region) [default: not limited].
    #[serde(default)]
    pub vcpus: Option<u32>,
    /// Bundle uploads the collector receives at once; more are answered 503 with `Retry-After`
    /// [default: `collector::UploadLimits::default()`, 16].
    #[serde(default)]
    pub collector_uploads: Option<usize>,
    /// Bytes of bundle uploads (declared `Content-Length`s) in flight at once; more are answered
    /// 429 with `Retry-After` [default: 512 MiB].
    #[serde(default)]
    pub collector_bytes_in_flight: Option<u64>,
}

impl LimitsConfig {
    /// The collector's upload limits: the defaults with what this section sets.
    #[must_use]
    pub fn upload_limits(&self) -> crate::collector::UploadLimits {
        let mut l = crate::collector::UploadLimits::default();
        if let Some(n) = self.collector_uploads {
            l.max_concurrent = n.max(1);
        }
        if let Some(b) = self.collector_bytes_in_flight {
            l.max_bytes_in_flight = b;
        }
        l
    }
}

/// Jobs at once: every (account, Region) of a mid-size organisation (3 accounts x 4 Regions)
/// plus on-demand scans; each job is a handful of tasks and polls, so the process is not the
/// bottleneck (our choice).
fn default_max_jobs() -> usize {
    16
}
/// AWS's 100 pending snapshots per Region (quota `L-94D7AB7D`, docs/references.md) less
/// the 10 the job runner leaves for the customer's own backups ([`crate::job::MAX_PENDING_SNAPSHOTS`]).
fn default_pending() -> usize {
    crate::job::MAX_PENDING_SNAPSHOTS
}
/// AWS: 5 concurrent snapshots per volume (docs/references.md, "EBS snapshot quotas").
fn default_per_volume() -> usize {
    crate::cloud::facts::limits::CONCURRENT_SNAPSHOTS_PER_VOLUME as usize
}
/// AWS: 20 concurrent snapshot copies per destination Region (docs/references.md, "EBS snapshot quotas").
fn default_copies() -> usize {
    crate::cloud::facts::limits::CONCURRENT_COPIES_PER_REGION as usize
}
/// AWS: 5 VPCs and 5 internet gateways per Region (quota `L-F678F1CE`, docs/references.md),
/// one of which is the default VPC with its gateway in most accounts.
fn default_vpcs() -> usize {
    crate::cloud::facts::limits::VPCS_PER_REGION as usize - 1
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_concurrent_jobs: default_max_jobs(),
            pending_snapshots: default_pending(),
            snapshots_per_volume: default_per_volume(),
            concurrent_copies: default_copies(),
            vpcs: default_vpcs(),
            internet_gateways: default_vpcs(),
            vcpus: None,
            collector_uploads: None,
            collector_bytes_in_flight: None,
        }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delete the stored results of jobs finished longer ago than this [default: keep them].
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub results: Option<Duration>,
}

/// `[audit]`: the leak auditor on a schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(deserialize_with = "de_cron")]
    pub cron: String,
    #[serde(default = "utc", deserialize_with = "de_time_zone")]
    pub timezone: String,
    /// Delete what is leaked (otherwise only count and log it).
    #[serde(default)]
    pub delete: bool,
    /// Never treat a resource younger than this as leaked [default: 1h].
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub grace: Option<Duration>,
}

/// `[vulndb]`: the advisory database updated on a schedule, then the stored results rescanned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VulndbConfig {
    /// When to update (a cron expression).
    #[serde(deserialize_with = "de_cron")]
    pub update: String,
    #[serde(default = "utc", deserialize_with = "de_time_zone")]
    pub timezone: String,
    /// OSV ecosystems to download [default: AlmaLinux, Alpine, Debian, Rocky Linux, Ubuntu].
    #[serde(default)]
    pub ecosystems: Vec<String>,
    /// Where the archives are: `<base_url>/<ecosystem>/all.zip` [default: osv.dev's bucket].
    #[serde(default, deserialize_with = "de_opt_url")]
    pub base_url: Option<String>,
    /// Rescan each instance's newest stored results after an update [default: true].
    #[serde(default = "yes")]
    pub rescan: bool,
}

impl VulndbConfig {
    /// The ecosystems to download.
    #[must_use]
    pub fn ecosystems(&self) -> Vec<String> {
        if self.ecosystems.is_empty() {
            crate::vuln::db::update::DEFAULT_ECOSYSTEMS.iter().map(|e| (*e).to_owned()).collect()
        } else {
            self.ecosystems.clone()
        }
    }

    /// The archives' base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        self.base_url.as_deref().unwrap_or(crate::vuln::db::update::DEFAULT_BASE_URL)
    }
}

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    #[serde(default)]
    pub missed_runs: MissedRuns,
    #[serde(default)]
    pub shutdown: ShutdownMode,
    /// How long SIGTERM waits for jobs in flight [default: 10m].
    #[serde(default = "default_deadline", deserialize_with = "de_duration")]
    pub shutdown_deadline: Duration,
}

/// Ten minutes: a teardown's retries give up after about that long ([`crate::cloud::retry`]), and
/// systemd's stop timeout in `scripts/deploy/agentless.service` is set just above it.
fn default_deadline() -> Duration {
    Duration::from_secs(600)
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            missed_runs: MissedRuns::default(),
            shutdown: ShutdownMode::default(),
            shutdown_deadline: default_deadline(),
        }
    }
}

fn de_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|e| serde::de::Error::custom(format!("\"{s}\" is not an address (e.g. 127.0.0.1:8443): {e}")))
}

fn de_opt_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let host = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !h.starts_with(':') && !h.chars().any(char::is_whitespace) => Ok(Some(s)),
        _ => Err(serde::de::Error::custom(format!(
            "\"{s}\" is not an http:// or https:// URL with a host (e.g. https://collector.example.internal)"
        ))),
    }
}

fn de_cron<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    cron::parse_expression(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn de_time_zone<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    cron::time_zone(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn parse_duration<E: serde::de::Error>(s: &str) -> Result<Duration, E> {
    let d = crate::audit::parse_duration(s).map_err(E::custom)?;
    d.try_into().map_err(|e| E::custom(format!("\"{s}\": {e}")))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map(Some)
}

/// Line and column (1-based) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Config {
    /// Read and check the file at `path` (relative paths in it are taken from its directory).
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not valid TOML for this format, or fails a check.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut config = Config::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(f) = &config.sim.fleet
            && f.is_relative()
        {
            config.sim.fleet = Some(base.join(f));
        }
        if let Some(d) = &config.data_dir
            && d.is_relative()
        {
            config.data_dir = Some(base.join(d));
        }
        Ok(config)
    }

    /// Parse and check `text` (`path` only names it in errors).
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_column(text, s.start));
            ConfigError::Syntax { path: path.to_owned(), line, column, message: e.message().trim().to_owned() }
        })?;
        config.check().map_err(|message| ConfigError::Invalid { path: path.to_owned(), message })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.accounts.is_empty() {
            return Err("no [[accounts]]: name at least one account to scan".into());
        }
        let mut names = BTreeSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            if !names.insert(a.name.as_str()) {
                return Err(format!("accounts[{i}]: a second account named \"{}\"", a.name));
            }
            if let Some(id) = &a.id
                && let Some(other) = self.accounts[..i].iter().find(|b| b.id.as_ref() == Some(id))
            {
                return Err(format!(
                    "accounts[{i}] (\"{}\"): account {id} is already listed as \"{}\": list it once, with all its Regions",
                    a.name, other.name
                ));
            }
            if a.regions.is_empty() {
                return Err(format!("accounts[{i}] (\"{}\"): regions is empty", a.name));
            }
            if self.cloud == CloudKind::Sim && a.id.is_none() {
                return Err(format!("accounts[{i}] (\"{}\"): id is required with cloud = \"sim\"", a.name));
            }
            if a.external_id.is_some() && a.role_arn.is_none() {
                return Err(format!("accounts[{i}] (\"{}\"): external_id without role_arn", a.name));
            }
        }
        let mut schedules = BTreeSet::new();
        for (i, s) in self.schedules.iter().enumerate() {
            if s.name.is_empty() || s.name == ON_DEMAND || s.name == crate::events::EVENTS {
                return Err(format!("schedules[{i}]: the name \"{}\" is reserved or empty", s.name));
            }
            if !schedules.insert(s.name.as_str()) {
                return Err(format!("schedules[{i}]: a second schedule named \"{}\"", s.name));
            }
            for a in &s.accounts {
                if !names.contains(a.as_str()) {
                    return Err(format!("schedules[{i}] (\"{}\"): no account named \"{a}\"", s.name));
                }
            }
        }
        if self.limits.max_concurrent_jobs == 0 {
            return Err("limits.max_concurrent_jobs must be at least 1".into());
        }
        let l = &self.limits;
        for (key, v) in [
            ("pending_snapshots", l.pending_snapshots),
            ("snapshots_per_volume", l.snapshots_per_volume),
            ("concurrent_copies", l.concurrent_copies),
            ("vpcs", l.vpcs),
            ("internet_gateways", l.internet_gateways),
        ] {
            if v == 0 {
                return Err(format!("limits.{key} must be at least 1 (a job needs one)"));
            }
        }
        if self.scanner.max_devices == 0 {
            return Err("scanner.max_devices must be at least 1".into());
        }
        if self.scanner.image_name.as_deref() == Some("") {
            return Err("scanner.image_name is empty".into());
        }
        for (region, r) in &self.scanner.regions {
            if r.ami.is_some() && r.image_name.is_some() {
                return Err(format!("scanner.regions.{region}: give ami or image_name, not both"));
            }
            if r.image_name.as_deref() == Some("") {
                return Err(format!("scanner.regions.{region}.image_name is empty"));
            }
        }
        if let Some(v) = &self.vulndb {
            for e in &v.ecosystems {
                if crate::vuln::osv::known_ecosystem(e).is_none() || e.contains(':') {
                    return Err(format!(
                        "vulndb.ecosystems: \"{e}\" is not an OSV ecosystem archive name (e.g. \"Alpine\", \"Debian\", \"Rocky Linux\")"
                    ));
                }
            }
        }
        if !(1..=crate::cloud::ops::SQS_MAX_MESSAGES).contains(&self.trail.batch) {
            return Err(format!("trail.batch must be 1 to {}", crate::cloud::ops::SQS_MAX_MESSAGES));
        }
        if self.trail.wait_seconds > crate::cloud::ops::SQS_MAX_WAIT_SECONDS {
            return Err(format!("trail.wait_seconds must be 0 to {}", crate::cloud::ops::SQS_MAX_WAIT_SECONDS));
        }
        for (i, a) in self.accounts.iter().enumerate() {
            if let Some(t) = &a.trail {
                if t.queue.is_empty() || t.bucket.is_empty() {
                    return Err(format!(
                        "accounts[{i}] (\"{}\"): trail.queue and trail.bucket must not be empty",
                        a.name
                    ));
                }
                if !a.regions.contains(&t.region) {
                    return Err(format!(
                        "accounts[{i}] (\"{}\"): trail.region {} is not one of the account's regions",
                        a.name, t.region
                    ));
                }
            }
        }
        if self.events.is_some() && self.accounts.iter().all(|a| a.trail.is_none()) {
            return Err("[events] needs an account with a [accounts.trail] pipeline to read events from".into());
        }
        if self.events.as_ref().is_some_and(|e| e.budget_per_hour == 0) {
            return Err("events.budget_per_hour must be at least 1".into());
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err("server.tls_cert and server.tls_key go together: give both or neither".into());
        }
        if let Some(t) = &self.server.token
            && t.len() < MIN_TOKEN_LEN
        {
            return Err(format!("server.token is shorter than {MIN_TOKEN_LEN} characters"));
        }
        Ok(())
    }

    /// The schedules with their cron expressions compiled.
    ///
    /// # Errors
    ///
    /// Never for a checked configuration (expressions and zones were checked while parsing).
    pub fn cron_schedules(&self) -> Result<Vec<(ScheduleConfig, CronSchedule)>, cron::CronError> {
        self.schedules.iter().map(|s| Ok((s.clone(), CronSchedule::new(&s.cron, &s.timezone)?))).collect()
    }

    /// The API token: `server.token`, else the environment variable (`server.token_env`).
    #[must_use]
    pub fn api_token(&self) -> Option<String> {
        if let Some(t) = &self.server.token {
            return Some(t.clone());
        }
        let var = self.server.token_env.as_deref().unwrap_or(DEFAULT_TOKEN_ENV);
        std::env::var(var).ok().filter(|t| !t.is_empty())
    }

    /// The account named `name`.
    #[must_use]
    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

/// The schedule name of runs asked through the API.
pub const ON_DEMAND: &str = "on-demand";

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:0"

[[accounts]]
name = "demo"
id = "111122223333"
regions = ["us-east-1"]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn minimal_config_gets_the_defaults() {
        let c = parse(MINIMAL).expect("parse");
        assert_eq!(c.cloud, CloudKind::Sim);
        assert_eq!(c.limits.pending_snapshots, 90);
        assert_eq!(c.limits.vpcs, 4);
        assert_eq!(c.daemon.missed_runs, MissedRuns::RunOnce);
        assert_eq!(c.scanner.instance_type, "m5.xlarge");
        assert!(c.schedules.is_empty());
    }

    #[test]
    fn scanner_images_by_name_or_id_per_region() {
        let text = format!(
            "{MINIMAL}\n[scanner]\nimage_name = \"my-scanner\"\n[scanner.regions.eu-west-1]\nami = \"ami-0123456789abcdef0\"\n"
        );
        let c = parse(&text).expect("parse");
        assert_eq!(c.scanner.image_name.as_deref(), Some("my-scanner"));
        let eu: Region = "eu-west-1".parse().expect("region");
        assert_eq!(c.scanner.regions[&eu].ami.as_ref().map(ImageId::as_str), Some("ami-0123456789abcdef0"));
        let text =
            format!("{MINIMAL}\n[scanner.regions.eu-west-1]\nami = \"ami-0123456789abcdef0\"\nimage_name = \"x\"\n");
        let msg = parse(&text).expect_err("both").to_string();
        assert!(msg.contains("scanner.regions.eu-west-1: give ami or image_name, not both"), "{msg}");
        let msg = parse(&format!("{MINIMAL}\n[scanner]\nimage_name = \"\"\n")).expect_err("empty").to_string();
        assert!(msg.contains("scanner.image_name is empty"), "{msg}");
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_line() {
        let text = format!(
            "{MINIMAL}\n[[schedules]]\nname = \"n\"\ncron = \"0 2 * * *\"\n[schedules.targets]\nexclude_tag = {{ a = \"b\" }}\n"
        );
        let e = parse(&text).expect_err("unknown key");
        let msg = e.to_string();
        assert!(msg.contains("exclude_tag"), "{msg}");
        assert!(msg.starts_with("test.toml:14:"), "{msg}");
    }

    #[test]
    fn bad_values_are_reported_at_their_line() {
        let text = format!("{MINIMAL}\n[[schedules]]\nname = \"n\"\ncron = \"0 25 * * *\"\n");
        let msg = parse(&text).expect_err("hour 25").to_string();
        assert!(msg.starts_with("test.toml:12:") && msg.contains("0 25 * * *"), "{msg}");
        let text =
            format!("{MINIMAL}\n[[schedules]]\nname = \"n\"\ncron = \"0 2 * * *\"\ntimezone = \"Europe/Pariss\"\n");
        let msg = parse(&text).expect_err("zone").to_string();
        assert!(msg.starts_with("test.toml:13:") && msg.contains("Europe/Pariss"), "{msg}");
        let text = format!("{MINIMAL}\n[retention]\nresults = \"forever\"\n");
        let msg = parse(&text).expect_err("duration").to_string();
        assert!(msg.starts_with("test.toml:11:"), "{msg}");
    }

    #[test]
    fn the_shipped_configurations_parse() {
        let sample = Config::parse(include_str!("../../scripts/deploy/agentless.toml"), Path::new("agentless.toml"))
            .expect("scripts/deploy/agentless.toml");
        assert_eq!(sample.cloud, CloudKind::Aws);
        assert_eq!(sample.schedules.len(), 2);
        assert_eq!(sample.schedules[0].targets.states(), [InstanceStateName::Running, InstanceStateName::Stopped]);
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/serve/demo.toml");
        let demo = Config::load(&demo).expect("tests/data/serve/demo.toml");
        assert!(demo.sim.fleet.as_ref().is_some_and(|f| f.is_file()), "{:?}", demo.sim.fleet);
        // Both read a CloudTrail pipeline and scan on events.
        for c in [&sample, &demo] {
            let trail = c.accounts[0].trail.as_ref().expect("a pipeline");
            assert_eq!((trail.queue.as_str(), trail.region.as_str()), ("aliyun-sasc-log-queue", "us-east-1"));
            assert!(c.events.is_some());
        }
        assert_eq!(sample.trail.max_object_bytes, 64 << 20);
        assert_eq!(sample.events.as_ref().map(|e| e.targets.tags.len()), Some(1));
        assert_eq!(demo.events.as_ref().map(|e| e.delay), Some(std::time::Duration::from_secs(30)));
    }

    #[test]
    fn the_pipeline_sections_are_checked() {
        let with = |tables: &str| parse(&format!("{MINIMAL}\n{tables}\n"));
        let msg = with("[events]\ndelay = \"1m\"").expect_err("events without a pipeline").to_string();
        assert!(msg.contains("[events] needs an account with a [accounts.trail] pipeline"), "{msg}");
        let msg = with("[trail]\nbatch = 11").expect_err("batch").to_string();
        assert!(msg.contains("trail.batch must be 1 to 10"), "{msg}");
        let msg = with("[trail]\nwait_seconds = 21").expect_err("wait").to_string();
        assert!(msg.contains("trail.wait_seconds must be 0 to 20"), "{msg}");
    }

    #[test]
    fn vulndb_section_is_checked_like_the_others() {
        let ok = format!(
            "{MINIMAL}\n[vulndb]\nupdate = \"0 4 * * *\"\necosystems = [\"Alpine\", \"Rocky Linux\"]\nbase_url = \"http://127.0.0.1:9/osv\"\n"
        );
        let c = parse(&ok).expect("parse").vulndb.expect("[vulndb]");
        assert_eq!(c.ecosystems(), ["Alpine", "Rocky Linux"]);
        assert_eq!(c.base_url(), "http://127.0.0.1:9/osv");
        assert!(c.rescan);
        let defaults = parse(&format!("{MINIMAL}\n[vulndb]\nupdate = \"0 4 * * *\"\n")).expect("parse");
        let d = defaults.vulndb.expect("[vulndb]");
        assert_eq!(d.ecosystems(), ["AlmaLinux", "Alpine", "Debian", "Rocky Linux", "Ubuntu"]);
        assert_eq!(d.base_url(), crate::vuln::db::update::DEFAULT_BASE_URL);
        // Line 12: the unknown key.
        let unknown = format!("{MINIMAL}\n[vulndb]\nupdate = \"0 4 * * *\"\necosystem = [\"Alpine\"]\n");
        let msg = parse(&unknown).expect_err("unknown key").to_string();
        assert!(msg.starts_with("test.toml:12:") && msg.contains("ecosystem"), "{msg}");
        let bad_cron = format!("{MINIMAL}\n[vulndb]\nupdate = \"0 4 * *\"\n");
        let msg = parse(&bad_cron).expect_err("four fields").to_string();
        assert!(msg.starts_with("test.toml:11:"), "{msg}");
        let bad_eco = format!("{MINIMAL}\n[vulndb]\nupdate = \"0 4 * * *\"\necosystems = [\"Alpine:v3.4\"]\n");
        let msg = parse(&bad_eco).expect_err("a release, not an archive").to_string();
        assert!(msg.contains("Alpine:v3.4"), "{msg}");
    }

    #[test]
    fn an_account_listed_twice_is_refused() {
        let text =
            format!("{MINIMAL}\n[[accounts]]\nname = \"again\"\nid = \"111122223333\"\nregions = [\"eu-west-1\"]\n");
        let msg = parse(&text).expect_err("the same id twice").to_string();
        assert!(msg.contains("account 111122223333 is already listed as \"demo\""), "{msg}");
        let text =
            format!("{MINIMAL}\n[[accounts]]\nname = \"other\"\nid = \"444455556666\"\nregions = [\"eu-west-1\"]\n");
        assert_eq!(parse(&text).expect("two accounts").accounts.len(), 2);
    }

    #[test]
    fn a_collector_url_the_agent_would_refuse_is_reported_at_its_line() {
        let with = |url: &str| {
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ncollector_url = \"{url}\"\n{}",
                MINIMAL.replace("[server]\nlisten = \"127.0.0.1:0\"\n", "")
            )
        };
        for bad in ["10.0.0.5:8443", "ftp://collector", "http://", "https:///v1", "http://:8443", "collector.example"] {
            let msg = parse(&with(bad)).expect_err(bad).to_string();
            assert!(msg.starts_with("test.toml:3:") && msg.contains(bad), "{bad}: {msg}");
        }
        for good in ["http://127.0.0.1:8443", "https://collector.example.internal/", "http://[::1]:8443"] {
            let c = parse(&with(good)).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(c.server.collector_url.as_deref(), Some(good));
        }
    }

    #[test]
    fn cross_references_are_checked() {
        let text = format!("{MINIMAL}\n[[schedules]]\nname = \"n\"\ncron = \"0 2 * * *\"\naccounts = [\"prod\"]\n");
        let msg = parse(&text).expect_err("unknown account").to_string();
        assert!(msg.contains("no account named \"prod\""), "{msg}");
    }
}
