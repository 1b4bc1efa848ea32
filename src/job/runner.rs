//! The state loop of one job: reads the state the ledger holds, runs that state's step, records
//! the transition, and so on to a terminal state. A step that fails records the error and sends
//! the job to `TearingDown`; teardown always runs, then the job ends `Done`, `Failed` (a step
//! failed or something could not be removed) or `Cancelled`. Resume is the same loop started on a
//! job the ledger holds in a non-terminal state: every step is written to pick up half-done work
//! (intents without ids are looked up by client token or `agentless:job` tag).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use scanner_ami::job::HmacKey;

use super::doc::{self, JobDoc, Selector};
use super::{JobError, JobSettings};
use crate::cloud::ids::{AccountId, JobId, Region};
use crate::cloud::{Cloud, CloudError, Guard};
use crate::collector::Collector;
use crate::ledger::{JobState, Ledger, LedgerError, TargetStatus};

/// Where a job's progress is shown (progress bars, log lines, the daemon's metrics).
pub trait Progress: Send + Sync {
    /// The job entered `state`.
    fn state(&self, job: &JobId, state: JobState);
    /// Work within the state: `done` of `total` (snapshots completed, scanners reported...).
    fn step(&self, job: &JobId, what: &str, done: usize, total: usize);
}

/// Progress that only logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogProgress;

impl Progress for LogProgress {
    fn state(&self, job: &JobId, state: JobState) {
        tracing::info!(%job, state = state.as_str(), "job state");
    }
    fn step(&self, job: &JobId, what: &str, done: usize, total: usize) {
        tracing::info!(%job, what, done, total, "job progress");
    }
}

/// Milliseconds since the Unix epoch on the clock the job's deadlines use (the simulated
/// account's timeline under the sim, the wall clock otherwise).
pub type NowMs = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
#[must_use]
pub fn wall_clock() -> NowMs {
    Arc::new(|| jiff::Timestamp::now().as_millisecond())
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub job: JobId,
    pub region: Region,
    pub state: JobState,
    pub doc: JobDoc,
}

/// Runs jobs for one principal (account) through its guard.
pub struct Runner<C: Cloud> {
    pub(super) guard: Arc<Guard<C>>,
    pub(super) ledger: Arc<Mutex<Ledger>>,
    pub(super) collector: Collector,
    pub(super) settings: JobSettings,
    pub(super) account: AccountId,
    /// The principal's ARN (the grantee of our KMS grants).
    pub(super) caller_arn: String,
    pub(super) progress: Arc<dyn Progress>,
    pub(super) now_ms: NowMs,
    pub(super) cancel: tokio::sync::watch::Receiver<bool>,
    /// Where job locks live (the data directory); `None`: no locking (in-memory tests).
    pub(super) lock_dir: Option<std::path::PathBuf>,
    /// Quotas shared with other jobs (the daemon's dispatcher); `None`: the job's own limits only.
    pub(super) budget: Option<Arc<dyn super::Budget>>,
}

impl<C: Cloud> std::fmt::Debug for Runner<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("account", &self.account).finish_non_exhaustive()
    }
}

/// One job being driven: the runner, its id and Region, its document and key.
pub(super) struct Job<'r, C: Cloud> {
    pub r: &'r Runner<C>,
    pub id: JobId,
    pub region: Region,
    pub doc: JobDoc,
    pub key: HmacKey,
}

impl<C: Cloud> Runner<C> {
    /// A runner. `cancel` turning true asks every job to stop starting work and tear down.
    #[allow(clippy::too_many_arguments)]
    #[must_use]
    pub fn new(
        guard: Arc<Guard<C>>,
        ledger: Arc<Mutex<Ledger>>,
        collector: Collector,
        settings: JobSettings,
        account: AccountId,
        caller_arn: String,
        progress: Arc<dyn Progress>,
        now_ms: NowMs,
        cancel: tokio::sync::watch::Receiver<bool>,
    ) -> Runner<C> {
        Runner {
            guard,
            ledger,
            collector,
            settings,
            account,
            caller_arn,
            progress,
            now_ms,
            cancel,
            lock_dir: None,
            budget: None,
        }
    }

    /// Share quotas with the other jobs of the process through `budget` ([`super::budget`]).
    #[must_use]
    pub fn with_budget(mut self, budget: Arc<dyn super::Budget>) -> Runner<C> {
        self.budget = Some(budget);
        self
    }

    /// The settings jobs run with.
    #[must_use]
    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    /// Hold `<dir>/locks/<job>.lock` while driving a job ([`super::lock`]).
    #[must_use]
    pub fn with_lock_dir(mut self, dir: std::path::PathBuf) -> Runner<C> {
        self.lock_dir = Some(dir);
        self
    }

    /// The guard (its trace shows every call).
    #[must_use]
    pub fn guard(&self) -> &Guard<C> {
        &self.guard
    }

    /// Record a new job for `region` and `selector` in the ledger (state `Planned`).
    ///
    /// # Errors
    ///
    /// The ledger refuses the write.
    pub fn create(&self, region: &Region, selector: Selector, collector_url: &str) -> Result<JobId, JobError> {
        let job = new_job_id((self.now_ms)())?;
        let expires = jiff::Timestamp::from_millisecond((self.now_ms)())
            .ok()
            .and_then(|t| t.checked_add(self.settings.ttl).ok())
            .unwrap_or(jiff::Timestamp::MAX);
        let explicit = match &selector {
            Selector::Instances(ids) => ids.clone(),
            Selector::All | Selector::Tags(_) => Vec::new(),
        };
        let mut doc = JobDoc::new(selector, expires.to_string(), collector_url.to_owned(), self.settings.baseline);
        let key = HmacKey::generate();
        let mut l = self.lock();
        let err = |source| JobError::Ledger { job: job.clone(), source };
        l.create_job(&job, &self.account, region, &explicit).map_err(err)?;
        l.put_job_data(&job, doc::KEY, &key).map_err(err)?;
        doc::save(&mut l, &job, &mut doc).map_err(err)?;
        Ok(job)
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drive `job` from the state the ledger holds to a terminal state.
    ///
    /// # Errors
    ///
    /// The ledger fails (the job stays where it was, to be resumed).
    pub async fn drive(&self, job: &JobId) -> Result<JobOutcome, JobError> {
        let _lock = match &self.lock_dir {
            Some(dir) => Some(super::lock::acquire(dir, job.as_str())?),
            None => None,
        };
        let (record, doc, key) = {
            let l = self.lock();
            let err = |source| JobError::Ledger { job: job.clone(), source };
            let record = l.job(job).map_err(err)?.ok_or_else(|| JobError::UnknownJob(job.clone()))?;
            let doc: Option<JobDoc> = doc::load(&l, job).map_err(err)?;
            let key: Option<HmacKey> = l.job_data(job, doc::KEY).map_err(err)?;
            (record, doc, key)
        };
        // A finished job's key is erased (it needs none): give the outcome from its document.
        if record.state.is_terminal()
            && let Some(doc) = &doc
        {
            self.lock()
                .erase_job_data(job, doc::KEY)
                .map_err(|source| JobError::Ledger { job: job.clone(), source })?;
            return Ok(JobOutcome {
                job: job.clone(),
                region: record.region.clone(),
                state: record.state,
                doc: doc.clone(),
            });
        }
        let (Some(doc), Some(key)) = (doc, key) else {
            return Err(JobError::Setup {
                job: job.clone(),
                region: record.region.clone(),
                message: "the ledger has no working document or key for this job (written by another version?)".into(),
            });
        };
        let mut j = Job { r: self, id: job.clone(), region: record.region.clone(), doc, key };
        j.register_with_collector();
        // Every log line of the job, down to a teardown retry, says which job, account and Region
        // it is about.
        let span = tracing::info_span!("job", job = %job, account = %self.account, region = %record.region);
        let outcome = tracing::Instrument::instrument(j.run(), span).await;
        self.collector.forget_job(job.as_str());
        if let Some(b) = &self.budget {
            b.release_all(job);
        }
        outcome
    }
}

/// `YYYYMMDD-` + 8 random hex digits: sortable by day, unique enough per account (32 bits per day).
fn new_job_id(now_ms: i64) -> Result<JobId, crate::cloud::IdError> {
    let day = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.strftime("%Y%m%d").to_string())
        .unwrap_or_else(|_| "00000000".into());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    let id = format!("{day}-{}", &rand[..8]);
    id.parse()
}

impl<C: Cloud> Job<'_, C> {
    pub(super) fn lerr(&self) -> impl Fn(LedgerError) -> JobError + '_ {
        |source| JobError::Ledger { job: self.id.clone(), source }
    }

    pub(super) fn cerr(&self, step: &'static str) -> impl Fn(CloudError) -> JobError + '_ {
        move |source| JobError::Cloud { job: self.id.clone(), region: self.region.clone(), step, source }
    }

    /// Persist the working document.
    pub(super) fn save(&mut self) -> Result<(), JobError> {
        let mut l = self.r.lock();
        doc::save(&mut l, &self.id, &mut self.doc).map_err(|source| JobError::Ledger { job: self.id.clone(), source })
    }

    pub(super) fn set_target(&self, instance: &crate::cloud::InstanceId, status: TargetStatus, error: Option<&str>) {
        if let Err(e) = self.r.lock().set_target_status(&self.id, instance, status, error) {
            tracing::warn!(%instance, error = %e, "could not record target status");
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        (self.r.now_ms)()
    }

    /// The user asked to stop.
    pub(super) fn cancelled(&self) -> bool {
        *self.r.cancel.borrow()
    }

    /// Sleep, or return early (true) when cancelled.
    pub(super) async fn sleep(&self, d: Duration) -> bool {
        let mut cancel = self.r.cancel.clone();
        if *cancel.borrow() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => false,
            r = cancel.changed() => r.is_ok() && *cancel.borrow(),
        }
    }

    fn register_with_collector(&self) {
        self.r.collector.register_job(self.id.as_str(), self.key.clone());
        for s in self.doc.scanners() {
            self.r.collector.register_scanner(self.id.as_str(), &s.name, self.device_targets(s));
            if let Some(instance) = &s.instance {
                self.r.collector.scanner_launched(self.id.as_str(), &s.name, self.expected_identity(instance));
            }
        }
    }

    /// What a scanner's instance identity document must say: the instance the ledger recorded
    /// for it, the job's account and Region.
    pub(super) fn expected_identity(
        &self,
        instance: &crate::cloud::ids::InstanceId,
    ) -> crate::collector::ExpectedIdentity {
        crate::collector::ExpectedIdentity {
            instance_id: instance.to_string(),
            account_id: self.r.account.to_string(),
            region: self.region.to_string(),
        }
    }

    fn state(&self) -> Result<JobState, JobError> {
        self.r.lock().job_state(&self.id).map_err(self.lerr())?.ok_or_else(|| JobError::UnknownJob(self.id.clone()))
    }

    fn transition(&self, to: JobState) -> Result<(), JobError> {
        self.r.lock().transition(&self.id, to).map_err(self.lerr())?;
        self.r.progress.state(&self.id, to);
        Ok(())
    }

    /// The `--crash-at` debug hook: die like `kill -9` would, with nothing flushed or cleaned.
    pub(super) fn crash_point(&self, state: JobState) {
        if self.r.settings.crash_at == Some(state) {
            tracing::error!(state = state.as_str(), "--crash-at: killing this process with SIGKILL");
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
            // `kill` unavailable: still end without running destructors or cleanup.
            std::process::abort();
        }
    }

    /// Record why the job fails; it tears down next.
    fn fail(&mut self, e: &JobError) -> Result<(), JobError> {
        let msg = e.to_string();
        tracing::error!(error = %msg, "job step failed; tearing down");
        self.doc.failure = Some(msg.clone());
        self.save()?;
        self.r.lock().record_job_error(&self.id, &msg).map_err(self.lerr())
    }

    async fn run(&mut self) -> Result<JobOutcome, JobError> {
        self.r.progress.state(&self.id, self.state()?);
        loop {
            let state = self.state()?;
            if self.cancelled() && !self.doc.cancelled && !state.is_terminal() && state != JobState::TearingDown {
                self.doc.cancelled = true;
                self.save()?;
                self.transition(JobState::TearingDown)?;
                continue;
            }
            let step = match state {
                JobState::Planned => Ok(()),
                JobState::Discovering => self.discover().await,
                JobState::Snapshotting => self.snapshot().await,
                JobState::Sharing => self.share().await,
                JobState::Networking => self.network().await,
                JobState::Launching => self.launch().await,
                JobState::Scanning => self.wait_for_bundles().await,
                JobState::Collecting => self.collect().await,
                JobState::TearingDown => {
                    self.teardown().await?;
                    let end = if self.doc.cancelled {
                        JobState::Cancelled
                    } else if self.doc.failure.is_some() || !self.doc.leaked.is_empty() {
                        JobState::Failed
                    } else {
                        JobState::Done
                    };
                    self.transition(end)?;
                    continue;
                }
                JobState::Done | JobState::Failed | JobState::Cancelled => {
                    // The scanners are gone and no bundle is accepted any more: the key that
                    // signed them has no use left, and would only let its holder forge results.
                    self.r.lock().erase_job_data(&self.id, doc::KEY).map_err(self.lerr())?;
                    return Ok(JobOutcome {
                        job: self.id.clone(),
                        region: self.region.clone(),
                        state,
                        doc: self.doc.clone(),
                    });
                }
            };
            match step {
                Ok(()) => {
                    self.crash_point(state);
                    let next = if self.nothing_left_to_do(state) { Some(JobState::TearingDown) } else { state.next() };
                    if let Some(next) = next {
                        self.transition(next)?;
                    }
                }
                Err(e @ JobError::Ledger { .. }) => return Err(e),
                Err(e) => {
                    self.fail(&e)?;
                    self.transition(JobState::TearingDown)?;
                }
            }
        }
    }

    /// After discovery or snapshotting, a job whose every volume already failed skips to teardown.
    fn nothing_left_to_do(&self, state: JobState) -> bool {
        let early = match state {
            JobState::Discovering | JobState::Snapshotting | JobState::Sharing => true,
            JobState::Planned
            | JobState::Networking
            | JobState::Launching
            | JobState::Scanning
            | JobState::Collecting
            | JobState::TearingDown
            | JobState::Done
            | JobState::Failed
            | JobState::Cancelled => false,
        };
        early && !self.doc.volumes().any(|(_, v)| v.in_play())
    }
}
