//! The daemon's core, generic over the backend (`agentless serve` builds it on the simulated
//! account or AWS in [`crate::cli`]): one runner per (account, Region) sharing the dispatcher and
//! the job slots; runs started by the [`super::timer`] or the API; jobs resumed on start; the
//! scheduled leak audit; result retention; the scheduled advisory database update (`[vulndb]`:
//! download, then rescan each instance's newest results); and the graceful stop.
//!
//! # Lifecycle
//!
//! 1. [`Daemon::start`]: runs whose jobs are all over (or that never got a job: a crash between
//!    recording the run and creating its jobs) are marked finished; every unfinished job of a
//!    configured account is resumed (what it already holds in the cloud is first recorded in the
//!    dispatcher, [`super::dispatch::Dispatcher::adopt`]); then missed runs are caught up
//!    ([`super::timer::Timer::catch_up`]) and the timer, audit and retention loops start.
//! 2. A run: its jobs are created (one per account and Region; selectors that a job's own
//!    discovery cannot express — other states, exclusions, explicit ids — are resolved to instance
//!    ids first with one filtered `DescribeInstances`), linked to the run, and each waits for a job
//!    slot ([`super::dispatch::JobSlots`]) before it is driven. When the last job of a run ends,
//!    the run is finished.
//! 3. [`Daemon::stop`]: no new run starts and no queued job starts; with `shutdown = "tear-down"`
//!    the jobs in flight are cancelled (they tear down and end `Cancelled`); the daemon waits for
//!    them up to the deadline. What is still unfinished then (and every queued job) stays in the
//!    ledger and resumes on the next start.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;

use super::config::{Config, ON_DEMAND, ShutdownMode, TargetSelector};
use super::cron::CronSchedule;
use super::dispatch::{Dispatcher, JobSlots, Limits, SlotKey};
use super::timer::{Launcher, Skip, TimedSchedule, Timer};
use crate::api::metrics::{Gauges, Metrics, VulnGauges};
use crate::api::{ApiState, OnDemand, ScanAccepted, ScanRefused, ScanRequest};
use crate::audit::list::ID_FILTER_CHUNK;
use crate::audit::{AuditOptions, Class};
use crate::cloud::ids::{AccountId, InstanceId, JobId, Region};
use crate::cloud::ops::{DescribeInput, Filter};
use crate::cloud::retry::{Retry, retry};
use crate::cloud::tags;
use crate::cloud::{Cloud, CloudError, Guard};
use crate::collector::Collector;
use crate::job::runner::{LogProgress, NowMs};
use crate::job::{JobSettings, Runner, ScannerImage, Selector};
use crate::ledger::{Clock, JobRecord, Ledger, LedgerError, RunId, RunKind, RunRecord};

/// How often stored results are checked against `retention.results` (our choice: retention is
/// counted in days).
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

pub use events::{EVENT_BATCH, EVENT_TICK, EVENT_TICK_MIN, EVENT_TICK_SIM};

mod events;

/// The schedule name slots are keyed by for jobs resumed without a run.
pub const RESUMED: &str = "resumed";

/// The simulated account's default poll interval: its demo latencies are a few seconds
/// (as `agentless scan`).
pub const SIM_POLL: Duration = Duration::from_millis(500);
/// AWS: the EC2 API Reference recommends polling describe calls no faster than a few seconds
/// (as [`JobSettings::new`]).
pub const AWS_POLL: Duration = Duration::from_secs(5);

/// One account the daemon scans: its principal behind the guard.
pub struct Account<C: Cloud> {
    pub name: String,
    pub id: AccountId,
    pub guard: Arc<Guard<C>>,
    /// The principal's ARN (grantee of KMS grants).
    pub caller_arn: String,
    pub regions: Vec<Region>,
}

impl<C: Cloud> std::fmt::Debug for Account<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("name", &self.name).field("id", &self.id).finish_non_exhaustive()
    }
}

/// What the daemon is built from.
pub struct Parts<C: Cloud> {
    pub config: Config,
    pub data_dir: PathBuf,
    pub ledger: Arc<Mutex<Ledger>>,
    pub collector: Collector,
    pub accounts: Vec<Account<C>>,
    /// The jobs' clock (the simulated account's timeline under the sim).
    pub now_ms: NowMs,
    /// The schedules' clock.
    pub clock: Clock,
    /// The URL scanners upload to.
    pub collector_url: String,
    /// The SHA-256 of the certificate the listener serves (pinned in `https://` jobs' manifests);
    /// `None` for plain HTTP.
    pub collector_cert_sha256: Option<String>,
    /// The simulated account (shorter default poll).
    pub sim: bool,
    pub metrics: Arc<Metrics>,
}

impl<C: Cloud> std::fmt::Debug for Parts<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("data_dir", &self.data_dir)
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Timer(#[from] super::timer::TimerError),
    #[error(transparent)]
    Cron(#[from] super::cron::CronError),
}

/// Why [`Daemon::stop`] stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopEnd {
    /// No job was in flight any more (every one finished, or was torn down).
    Idle,
    /// The deadline passed with jobs still in flight.
    DeadlinePassed,
    /// The caller abandoned the wait (a second signal) with jobs still in flight.
    Abandoned,
}

/// How a stop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub end: StopEnd,
    /// Jobs still driving when the wait ended (0 with [`StopEnd::Idle`]).
    pub in_flight: usize,
    /// The configured accounts' jobs still unfinished in the ledger (in flight when the wait ended,
    /// or queued and never started): they resume on the next start. `Err`: the ledger could not
    /// be read.
    pub unfinished: Result<Vec<JobRecord>, String>,
}

/// One runner per (account index, Region), made when first needed.
type Runners<C> = HashMap<(usize, Region), Arc<Runner<C>>>;

/// The daemon.
pub struct Daemon<C: Cloud + 'static> {
    config: Config,
    data_dir: PathBuf,
    ledger: Arc<Mutex<Ledger>>,
    collector: Collector,
    accounts: Vec<Account<C>>,
    runners: Mutex<Runners<C>>,
    dispatcher: Arc<Dispatcher>,
    slots: JobSlots,
    metrics: Arc<Metrics>,
    now_ms: NowMs,
    clock: Clock,
    collector_url: String,
    collector_cert_sha256: Option<String>,
    sim: bool,
    stop_tx: tokio::sync::watch::Sender<bool>,
    cancel_tx: tokio::sync::watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
    /// Jobs queued or driven by this process (the auditor counts their resources as active).
    known: Arc<Mutex<HashSet<JobId>>>,
    /// Job tasks alive (queued or driving), and those driving.
    tasks: AtomicUsize,
    driving: AtomicUsize,
    idle: tokio::sync::Notify,
    /// The vulnerability gauges, recomputed after each job, rescan and database update.
    vulns: Arc<Mutex<Option<VulnGauges>>>,
    /// Event scans started per account in the last hour (the jobs' clock, ms): `[events]`'s budget.
    event_starts: Mutex<HashMap<AccountId, std::collections::VecDeque<i64>>>,
}

impl<C: Cloud + 'static> std::fmt::Debug for Daemon<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("data_dir", &self.data_dir)
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

/// Decrements the task count on drop (also when the task is aborted).
struct TaskGuard<'a> {
    count: &'a AtomicUsize,
    idle: &'a tokio::sync::Notify,
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
        self.idle.notify_waiters();
    }
}

fn is_ours(t: &crate::cloud::Tags) -> bool {
    t.get(tags::JOB).is_some()
        || t.name()
            .is_some_and(|n| n.starts_with(tags::RESOURCE_NAME_PREFIX) || n.starts_with(tags::SNAPSHOT_NAME_PREFIX))
}

impl<C: Cloud + 'static> Daemon<C> {
    /// The daemon over `parts` (nothing runs until [`Daemon::start`]).
    #[must_use]
    pub fn new(parts: Parts<C>) -> Arc<Daemon<C>> {
        let limits = Limits::from(&parts.config.limits);
        let slots = JobSlots::new(parts.config.limits.max_concurrent_jobs);
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        let (cancel_tx, _) = tokio::sync::watch::channel(false);
        Arc::new(Daemon {
            dispatcher: Arc::new(Dispatcher::new(limits)),
            slots,
            config: parts.config,
            data_dir: parts.data_dir,
            ledger: parts.ledger,
            collector: parts.collector,
            accounts: parts.accounts,
            runners: Mutex::new(HashMap::new()),
            metrics: parts.metrics,
            now_ms: parts.now_ms,
            clock: parts.clock,
            collector_url: parts.collector_url,
            collector_cert_sha256: parts.collector_cert_sha256,
            sim: parts.sim,
            stop_tx,
            cancel_tx,
            stopping: Arc::new(AtomicBool::new(false)),
            known: Arc::new(Mutex::new(HashSet::new())),
            tasks: AtomicUsize::new(0),
            driving: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            vulns: Arc::new(Mutex::new(None)),
            event_starts: Mutex::new(HashMap::new()),
        })
    }

    /// The dispatcher (tests and metrics).
    #[must_use]
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// The metrics.
    #[must_use]
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The accounts.
    #[must_use]
    pub fn accounts(&self) -> &[Account<C>] {
        &self.accounts
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How jobs in `region` run.
    #[must_use]
    pub fn settings_for(&self, region: &Region) -> JobSettings {
        let scanner = &self.config.scanner;
        let r = scanner.regions.get(region);
        let image =
            match (r.and_then(|r| r.ami.clone()), r.and_then(|r| r.image_name.clone()), scanner.image_name.clone()) {
                (Some(ami), _, _) => ScannerImage::Id(ami),
                (None, Some(name), _) | (None, None, Some(name)) => ScannerImage::Name(name),
                (None, None, None) => ScannerImage::Version(crate::cloud::tags::image_version()),
            };
        let mut s = JobSettings::new(image);
        s.instance_type = r.and_then(|r| r.instance_type.clone()).unwrap_or_else(|| scanner.instance_type.clone());
        s.max_devices = scanner.max_devices;
        s.baseline = scanner.baseline;
        if let Some(ttl) = scanner.ttl.and_then(|d| jiff::SignedDuration::try_from(d).ok()) {
            s.ttl = ttl;
        }
        s.poll = scanner.poll.unwrap_or(if self.sim { SIM_POLL } else { AWS_POLL });
        if let Some(t) = scanner.snapshot_timeout {
            // Per snapshot, from its creation (the runner's default otherwise).
            s.snapshot_timeout = t;
        }
        s.collector_cert_sha256.clone_from(&self.collector_cert_sha256);
        s
    }

    fn runner(&self, account: usize, region: &Region) -> Option<Arc<Runner<C>>> {
        let a = self.accounts.get(account)?;
        let mut runners = self.runners.lock().unwrap_or_else(PoisonError::into_inner);
        let r = runners.entry((account, region.clone())).or_insert_with(|| {
            Arc::new(
                Runner::new(
                    Arc::clone(&a.guard),
                    Arc::clone(&self.ledger),
                    self.collector.clone(),
                    self.settings_for(region),
                    a.id.clone(),
                    a.caller_arn.clone(),
                    Arc::new(LogProgress),
                    Arc::clone(&self.now_ms),
                    self.cancel_tx.subscribe(),
                )
                .with_lock_dir(self.data_dir.clone())
                .with_budget(Arc::clone(&self.dispatcher) as Arc<dyn crate::job::Budget>),
            )
        });
        Some(Arc::clone(r))
    }

    /// The scrape-time gauges.
    #[must_use]
    pub fn gauges(&self) -> Gauges {
        let l = self.ledger();
        Gauges {
            jobs: l.job_counts().unwrap_or_default(),
            targets: l.target_counts().unwrap_or_default(),
            resources: l.live_resource_counts().unwrap_or_default(),
            budgets: self
                .dispatcher
                .all_usage()
                .into_iter()
                .map(|(a, r, u)| (a.to_string(), r.to_string(), u))
                .collect(),
            job_slots_in_use: self.slots.in_use(),
            job_slots_waiting: self.slots.waiting(),
            jobs_in_flight: self.driving.load(Ordering::SeqCst),
            vulns: self.vulns.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            // Filled in by the API router, which holds the collector.
            collector_refusals: Vec::new(),
        }
    }

    /// The API's state (the handlers read the ledger, the results and the metrics, and start
    /// on-demand scans here).
    #[must_use]
    pub fn api_state(self: &Arc<Self>, token: &str) -> ApiState {
        let me = Arc::clone(self);
        ApiState {
            ledger: Arc::clone(&self.ledger),
            store: self.collector.store().clone(),
            metrics: Arc::clone(&self.metrics),
            gauges: Arc::new(move || me.gauges()),
            scans: Arc::new(ScanStarter(Arc::clone(self))),
            token: Arc::from(token),
            stopping: Arc::clone(&self.stopping),
        }
    }

    /// Jobs queued or driving in this process now.
    #[must_use]
    pub fn active_jobs(&self) -> usize {
        self.tasks.load(Ordering::SeqCst)
    }

    /// Finish runs whose jobs are all over; resume unfinished jobs; catch up missed runs; start the
    /// timer, audit and retention loops.
    ///
    /// # Errors
    ///
    /// The ledger fails.
    pub fn start(self: &Arc<Self>) -> Result<(), DaemonError> {
        let runs = self.ledger().unfinished_runs()?;
        for run in runs {
            self.finish_run_if_over(run.id);
        }
        let resumed = self.resume_unfinished()?;
        if resumed > 0 {
            tracing::info!(jobs = resumed, "resuming unfinished jobs");
        }
        let schedules: Vec<TimedSchedule> = self
            .config
            .cron_schedules()?
            .into_iter()
            .map(|(s, cron)| TimedSchedule {
                missed: s.missed_runs.unwrap_or(self.config.daemon.missed_runs),
                name: s.name,
                cron,
            })
            .collect();
        let timer = Timer::new(schedules, Arc::clone(&self.ledger), Arc::clone(&self.clock));
        let launcher = RunStarter(Arc::clone(self));
        timer.catch_up(&launcher)?;
        let stop = self.stop_tx.subscribe();
        tokio::spawn(async move {
            if let Err(e) = timer.run(&launcher, stop).await {
                tracing::error!(error = %e, "the schedule timer stopped");
            }
        });
        if let Some(audit) = self.config.audit.clone() {
            let cron = CronSchedule::new(&audit.cron, &audit.timezone)?;
            let me = Arc::clone(self);
            tokio::spawn(async move { me.audit_loop(cron, audit).await });
        }
        if let Some(keep) = self.config.retention.results {
            let me = Arc::clone(self);
            tokio::spawn(async move { me.retention_loop(keep).await });
        }
        if let Some(cfg) = self.config.vulndb.clone() {
            let cron = CronSchedule::new(&cfg.update, &cfg.timezone)?;
            let me = Arc::clone(self);
            tokio::spawn(async move { me.vulndb_loop(cron, cfg).await });
        }
        let me = Arc::clone(self);
        tokio::spawn(async move { me.refresh_vulns().await });
        self.start_pipelines();
        Ok(())
    }

    /// Recompute the vulnerability gauges from the stored results and the database (blocking
    /// reads, off the async threads).
    pub async fn refresh_vulns(&self) {
        let store = self.collector.store().clone();
        let data_dir = self.data_dir.clone();
        let computed = tokio::task::spawn_blocking(move || {
            let fleet = crate::vuln::fleet::fleet_counts(&crate::vuln::fleet::latest_volumes(&store));
            let ts = |s: &str| s.parse::<Timestamp>().ok();
            let sources = crate::vuln::db::AdvisoryDb::open(&crate::vuln::db::path_in(&data_dir))
                .and_then(|db| db.sources())
                .map(|list| {
                    list.into_iter()
                        .map(|s| {
                            let newest = s.newest_modified.as_deref().and_then(ts);
                            (s.name, ts(&s.imported_at), newest)
                        })
                        .collect()
                })
                .unwrap_or_default();
            VulnGauges { fleet, sources }
        })
        .await;
        match computed {
            Ok(g) => *self.vulns.lock().unwrap_or_else(PoisonError::into_inner) = Some(g),
            Err(e) => tracing::warn!(error = %e, "computing the vulnerability metrics"),
        }
    }

    async fn vulndb_loop(self: Arc<Self>, cron: CronSchedule, cfg: super::config::VulndbConfig) {
        let mut stop = self.stop_tx.subscribe();
        loop {
            let now = (self.clock)();
            let Some(next) = cron.next_after(now) else { return };
            tokio::select! {
                () = tokio::time::sleep(now.duration_until(next).unsigned_abs()) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            self.update_vulndb_once(&cfg).await;
        }
    }

    /// One scheduled database update: download and import the configured ecosystems (atomically:
    /// a failure keeps the previous database), then rescan each instance's newest stored results
    /// and refresh the metrics. Returns whether the update succeeded.
    pub async fn update_vulndb_once(&self, cfg: &super::config::VulndbConfig) -> bool {
        let data_dir = self.data_dir.clone();
        let base = cfg.base_url().to_owned();
        let ecosystems = cfg.ecosystems();
        // The download's progress sink is not `Send`: the update runs on a blocking thread with a
        // runtime of its own (its import is blocking SQLite work anyway).
        let updated = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            let db_path = crate::vuln::db::path_in(&data_dir);
            rt.block_on(crate::vuln::db::update::update(
                &db_path,
                &data_dir,
                &base,
                &ecosystems,
                &mut crate::vuln::db::update::Quiet,
            ))
            .map(|(downloads, _)| downloads.len())
            .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let ok = match updated {
            Ok(n) => {
                tracing::info!(archives = n, "advisory database updated");
                self.metrics.record_vulndb_update("ok");
                if cfg.rescan {
                    self.rescan_latest().await;
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "advisory database update failed; the previous database stays in use");
                self.metrics.record_vulndb_update("failed");
                false
            }
        };
        self.refresh_vulns().await;
        ok
    }

    /// Match each instance's newest stored results against the current database again.
    pub async fn rescan_latest(&self) {
        let store = self.collector.store().clone();
        let data_dir = self.data_dir.clone();
        let done = tokio::task::spawn_blocking(move || {
            let dirs: Vec<PathBuf> = crate::vuln::fleet::latest_volumes(&store).into_iter().map(|v| v.dir).collect();
            crate::vuln::assess::Assessor::open(&data_dir).assess_dirs(&dirs, Timestamp::now())
        })
        .await;
        match done {
            Ok(summary) => {
                let (yes, no) = summary.assessed_and_not();
                tracing::info!(
                    assessed = yes,
                    not_assessed = no,
                    errors = summary.errors.len(),
                    "rescanned stored results"
                );
                for e in &summary.errors {
                    tracing::warn!(error = %e, "rescan");
                }
            }
            Err(e) => tracing::error!(error = %e, "the rescan task failed"),
        }
    }

    fn resume_unfinished(self: &Arc<Self>) -> Result<usize, LedgerError> {
        let jobs = self.ledger().unfinished_jobs()?;
        let mut n = 0;
        for j in jobs {
            let Some(idx) = self.accounts.iter().position(|a| a.id == j.account) else {
                tracing::warn!(job = %j.id, account = %j.account, "unfinished job of an account not in the configuration: left alone");
                continue;
            };
            let (doc, run) = {
                let l = self.ledger();
                let doc: Option<crate::job::JobDoc> = crate::job::doc::load(&l, &j.id)?;
                (doc, l.run_of_job(&j.id)?)
            };
            if let Some(doc) = doc {
                let instance_type = self.settings_for(&j.region).instance_type;
                self.dispatcher.adopt(&j.id, &j.account, &j.region, &doc, &instance_type);
            }
            let schedule = run.as_ref().map_or_else(|| RESUMED.to_owned(), |(_, s)| s.clone());
            tracing::info!(job = %j.id, region = %j.region, state = j.state.as_str(), "resuming job");
            self.spawn_drive(j.id.clone(), idx, j.region.clone(), schedule, run.map(|(id, _)| id));
            n += 1;
        }
        Ok(n)
    }

    /// Queue `job` for a slot, then drive it.
    fn spawn_drive(self: &Arc<Self>, job: JobId, account: usize, region: Region, schedule: String, run: Option<RunId>) {
        let me = Arc::clone(self);
        self.tasks.fetch_add(1, Ordering::SeqCst);
        self.known.lock().unwrap_or_else(PoisonError::into_inner).insert(job.clone());
        tokio::spawn(async move {
            let _task = TaskGuard { count: &me.tasks, idle: &me.idle };
            let account_name = me.accounts.get(account).map(|a| a.name.clone()).unwrap_or_default();
            let _slot = me.slots.acquire(SlotKey { account: account_name, schedule }).await;
            if me.stopping.load(Ordering::SeqCst) {
                // Stop starting work: the job stays as it is in the ledger and resumes next start.
                return;
            }
            let Some(runner) = me.runner(account, &region) else { return };
            me.driving.fetch_add(1, Ordering::SeqCst);
            let outcome = runner.drive(&job).await;
            me.driving.fetch_sub(1, Ordering::SeqCst);
            match outcome {
                Ok(o) => {
                    let secs = me.ledger().job(&job).ok().flatten().map_or(0.0, |r: JobRecord| {
                        (r.updated_at.as_millisecond() - r.created_at.as_millisecond()) as f64 / 1000.0
                    });
                    me.metrics.record_job(o.state.as_str(), secs.max(0.0));
                    tracing::info!(job = %job, state = o.state.as_str(), seconds = secs, "job over");
                    me.refresh_vulns().await;
                }
                Err(e) => {
                    tracing::error!(job = %job, error = %e, "job stopped without finishing; it resumes on the next start")
                }
            }
            me.known.lock().unwrap_or_else(PoisonError::into_inner).remove(&job);
            if let Some(run) = run {
                me.finish_run_if_over(run);
            }
        });
    }

    /// Mark `run` finished if every one of its jobs is over.
    fn finish_run_if_over(&self, run: RunId) {
        let mut l = self.ledger();
        let over = match l.run_jobs(run) {
            Ok(jobs) => jobs.iter().all(|j| l.job_state(j).ok().flatten().is_none_or(|s| s.is_terminal())),
            Err(e) => {
                tracing::warn!(%run, error = %e, "cannot read the run's jobs");
                false
            }
        };
        if over && let Err(e) = l.finish_run(run) {
            tracing::warn!(%run, error = %e, "cannot mark the run finished");
        }
    }

    /// The instances `sel` picks in `region` of account `idx` (when a job's discovery cannot
    /// express it): one filtered, paginated `DescribeInstances` (one per [`ID_FILTER_CHUNK`]
    /// named instances).
    ///
    /// Named instances go in an `instance-id` filter, not in `InstanceIds`: EC2 fails the whole
    /// call with `InvalidInstanceID.NotFound` if one id of `InstanceIds` is unknown in the Region
    /// (terminated and gone, a typo, or an instance of another Region, which every Region but its
    /// own is asked about), and the Region would get no job; a filter value just matches nothing.
    async fn resolve(&self, idx: usize, region: &Region, sel: &TargetSelector) -> Result<Vec<InstanceId>, CloudError> {
        let Some(a) = self.accounts.get(idx) else { return Ok(Vec::new()) };
        let mut filters = vec![Filter::new("instance-state-name", sel.states().iter().map(|s| s.as_str()))];
        filters.extend(sel.tags.iter().map(|(k, v)| Filter::tag(k, [v.as_str()])));
        let named: Vec<Option<&[InstanceId]>> = if sel.instances.is_empty() {
            vec![None]
        } else {
            sel.instances.chunks(ID_FILTER_CHUNK).map(Some).collect()
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for ids in named {
            let mut filters = filters.clone();
            if let Some(ids) = ids {
                filters.push(Filter::new("instance-id", ids.iter().map(InstanceId::as_str)));
            }
            let mut input = DescribeInput::filters(filters);
            loop {
                let page =
                    retry(Retry::Transient, "DescribeInstances", || a.guard.describe_instances(region, &input)).await?;
                for i in page.items {
                    let excluded = sel.exclude_tags.iter().any(|(k, v)| i.tags.get(k) == Some(v.as_str()));
                    if !excluded && !is_ours(&i.tags) && seen.insert(i.id.clone()) {
                        out.push(i.id);
                    }
                }
                match page.next_token {
                    Some(t) => input.next_token = Some(t),
                    None => break,
                }
            }
        }
        if !sel.instances.is_empty() {
            tracing::info!(account = %a.name, %region, named = sel.instances.len(), selected = out.len(), "named instances in this Region (in the selected states, not excluded)");
        }
        Ok(out)
    }

    /// Create the jobs of `run` (accounts by name, empty = all; Regions, empty = each account's),
    /// link them to the run and queue them. Returns the jobs.
    async fn create_jobs(
        self: &Arc<Self>,
        run: RunId,
        schedule: &str,
        accounts: &[String],
        regions: &[Region],
        targets: &TargetSelector,
    ) -> Vec<JobId> {
        let mut created = Vec::new();
        for (idx, a) in self.accounts.iter().enumerate() {
            if !accounts.is_empty() && !accounts.contains(&a.name) {
                continue;
            }
            for region in a.regions.iter().filter(|r| regions.is_empty() || regions.contains(r)) {
                let selector = if targets.is_plain() {
                    if targets.tags.is_empty() {
                        Selector::All
                    } else {
                        Selector::Tags(targets.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    }
                } else {
                    match self.resolve(idx, region, targets).await {
                        Ok(ids) => Selector::Instances(ids),
                        Err(e) => {
                            tracing::error!(%run, account = %a.name, %region, error = %e, "cannot select the targets; no job for this Region");
                            continue;
                        }
                    }
                };
                if self.stopping.load(Ordering::SeqCst) {
                    tracing::info!(%run, account = %a.name, %region, "stopping: no job created");
                    continue;
                }
                let Some(runner) = self.runner(idx, region) else { continue };
                let job = match runner.create(region, selector, &self.collector_url) {
                    Ok(j) => j,
                    Err(e) => {
                        tracing::error!(%run, account = %a.name, %region, error = %e, "cannot record the job");
                        continue;
                    }
                };
                if let Err(e) = self.ledger().link_run_job(run, &job) {
                    tracing::error!(%run, %job, error = %e, "cannot link the job to its run");
                }
                created.push((job, idx, region.clone()));
            }
        }
        let jobs: Vec<JobId> = created.iter().map(|(j, _, _)| j.clone()).collect();
        if created.is_empty() {
            self.finish_run_if_over(run);
        }
        for (job, idx, region) in created {
            self.spawn_drive(job, idx, region, schedule.to_owned(), Some(run));
        }
        jobs
    }

    /// Start the jobs of a run the timer recorded.
    fn start_run(self: &Arc<Self>, run: &RunRecord) {
        self.metrics.record_run(&run.schedule, run.kind.as_str());
        let Some(s) = self.config.schedules.iter().find(|s| s.name == run.schedule).cloned() else {
            tracing::error!(run = %run.id, schedule = %run.schedule, "run of an unknown schedule");
            self.finish_run_if_over(run.id);
            return;
        };
        let me = Arc::clone(self);
        let id = run.id;
        tokio::spawn(async move {
            me.create_jobs(id, &s.name, &s.accounts, &s.regions, &s.targets).await;
        });
    }

    /// An on-demand scan: a run of the `on-demand` schedule, its jobs created before this returns.
    async fn scan_now(self: &Arc<Self>, req: ScanRequest) -> Result<ScanAccepted, ScanRefused> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(ScanRefused::Unavailable("the daemon is shutting down".into()));
        }
        for a in &req.accounts {
            if !self.accounts.iter().any(|x| &x.name == a) {
                return Err(ScanRefused::BadRequest(format!("no account named \"{a}\"")));
            }
        }
        // One run per request: the due time is the request time, made unique per millisecond.
        let mut due = (self.clock)();
        let run = loop {
            match self.ledger().create_run(ON_DEMAND, RunKind::OnDemand, due) {
                Ok(Some(r)) => break r,
                Ok(None) => due = due.checked_add(jiff::SignedDuration::from_millis(1)).unwrap_or(due),
                Err(e) => return Err(ScanRefused::Internal(e.to_string())),
            }
        };
        self.metrics.record_run(ON_DEMAND, RunKind::OnDemand.as_str());
        let jobs = self.create_jobs(run, ON_DEMAND, &req.accounts, &req.regions, &req.targets).await;
        Ok(ScanAccepted { run: run.get(), jobs })
    }

    async fn audit_loop(self: Arc<Self>, cron: CronSchedule, cfg: super::config::AuditConfig) {
        let mut stop = self.stop_tx.subscribe();
        loop {
            let now = (self.clock)();
            let Some(next) = cron.next_after(now) else { return };
            tokio::select! {
                () = tokio::time::sleep(now.duration_until(next).unsigned_abs()) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            self.audit_once(&cfg).await;
        }
    }

    /// One pass of the leak auditor over every account (metrics: leaks found and deleted).
    pub async fn audit_once(&self, cfg: &super::config::AuditConfig) {
        let grace =
            cfg.grace.and_then(|g| jiff::SignedDuration::try_from(g).ok()).unwrap_or(crate::audit::DEFAULT_GRACE);
        for a in &self.accounts {
            let now = Timestamp::from_millisecond((self.now_ms)()).unwrap_or_else(|_| Timestamp::now());
            let known = Arc::clone(&self.known);
            let dir = self.data_dir.clone();
            let alive: crate::audit::JobLiveness = Arc::new(move |j: &JobRecord| {
                known.lock().unwrap_or_else(PoisonError::into_inner).contains(&j.id)
                    || crate::job::lock::is_held(&dir, j.id.as_str())
            });
            let opts = AuditOptions { grace, delete: cfg.delete, job_is_alive: Some(alive), ..AuditOptions::new(now) };
            match crate::audit::audit_shared(&a.guard, &self.ledger, &a.regions, &opts).await {
                Ok(report) => {
                    let found =
                        report.resources.iter().filter(|f| matches!(f.class, Class::Leaked | Class::Stuck)).count();
                    let deleted = report.resources.iter().filter(|f| f.deleted).count();
                    let outcome = if report.incomplete() { "incomplete" } else { "complete" };
                    tracing::info!(account = %a.name, found, deleted, outcome, "audit");
                    self.metrics.record_audit(found as u64, deleted as u64, outcome);
                }
                Err(e) => {
                    tracing::error!(account = %a.name, error = %e, "audit failed");
                    self.metrics.record_audit(0, 0, "failed");
                }
            }
        }
    }

    async fn retention_loop(self: Arc<Self>, keep: Duration) {
        let mut stop = self.stop_tx.subscribe();
        loop {
            self.apply_retention(keep).await;
            tokio::select! {
                () = tokio::time::sleep(RETENTION_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Delete the stored results of jobs over for longer than `keep` (the ledger rows stay).
    pub async fn apply_retention(&self, keep: Duration) {
        let Ok(keep) = jiff::SignedDuration::try_from(keep) else { return };
        let now = (self.clock)();
        let old: Vec<JobId> = match self.ledger().jobs() {
            Ok(jobs) => jobs
                .into_iter()
                .filter(|j| j.state.is_terminal() && j.updated_at.checked_add(keep).is_ok_and(|t| t < now))
                .map(|j| j.id)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "retention: cannot read the jobs");
                return;
            }
        };
        let root = self.collector.store().root().to_path_buf();
        let removed = tokio::task::spawn_blocking(move || {
            let mut n = 0;
            for job in old {
                // Job ids are validated ids: a safe path component.
                let dir = root.join(job.as_str());
                if dir.is_dir() && std::fs::remove_dir_all(&dir).is_ok() {
                    n += 1;
                }
            }
            n
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            tracing::info!(jobs = removed, "retention: removed stored results");
        }
    }

    /// Stop: no new run or job starts; with [`ShutdownMode::TearDown`] jobs in flight are
    /// cancelled; wait for them up to `deadline` or until `abandon` resolves (a second signal).
    /// Jobs still running when this returns go on until the runtime drops them; what they hold
    /// stays recorded in the ledger, and they resume on the next start.
    pub async fn stop(
        &self,
        mode: ShutdownMode,
        deadline: Duration,
        abandon: impl std::future::Future<Output = ()>,
    ) -> Stopped {
        self.stopping.store(true, Ordering::SeqCst);
        // `send_replace`, not `send`: the value must stick even with no receiver at this instant
        // (a runner made after this, for a job that passed its stop check just before, subscribes
        // later and must see the cancellation).
        self.stop_tx.send_replace(true);
        match mode {
            ShutdownMode::TearDown => {
                self.cancel_tx.send_replace(true);
            }
            ShutdownMode::Finish => {}
        }
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.tasks.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let end = tokio::select! {
            () = wait => StopEnd::Idle,
            () = tokio::time::sleep(deadline) => StopEnd::DeadlinePassed,
            () = abandon => StopEnd::Abandoned,
        };
        let in_flight = self.driving.load(Ordering::SeqCst);
        let unfinished = self
            .ledger()
            .unfinished_jobs()
            .map(|jobs| jobs.into_iter().filter(|j| self.accounts.iter().any(|a| a.id == j.account)).collect())
            .map_err(|e| e.to_string());
        Stopped { end, in_flight, unfinished }
    }

    /// Jobs driving now (not counting those waiting for a slot).
    #[must_use]
    pub fn driving_jobs(&self) -> usize {
        self.driving.load(Ordering::SeqCst)
    }

    /// Per schedule: its runs in the ledger (tests and the API).
    ///
    /// # Errors
    ///
    /// The ledger fails.
    pub fn runs(&self) -> Result<BTreeMap<String, Vec<RunRecord>>, LedgerError> {
        let l = self.ledger();
        let mut out = BTreeMap::new();
        for s in self.config.schedules.iter().map(|s| s.name.as_str()).chain([ON_DEMAND]) {
            out.insert(s.to_owned(), l.runs_of(s)?);
        }
        Ok(out)
    }
}

/// The timer's launcher: starts a run's jobs on the daemon.
struct RunStarter<C: Cloud + 'static>(Arc<Daemon<C>>);

impl<C: Cloud + 'static> Launcher for RunStarter<C> {
    fn start(&self, run: &RunRecord) {
        self.0.start_run(run);
    }
    fn skipped(&self, schedule: &str, _due: Timestamp, why: Skip) {
        self.0.metrics.record_skip(schedule, why.as_str());
    }
}

/// The API's on-demand scans.
struct ScanStarter<C: Cloud + 'static>(Arc<Daemon<C>>);

impl<C: Cloud + 'static> OnDemand for ScanStarter<C> {
    fn scan(
        &self,
        req: ScanRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ScanAccepted, ScanRefused>> + Send + '_>> {
        Box::pin(self.0.scan_now(req))
    }
}
