//! What the ledger tells the auditor, read once at the start: every job with its state, every
//! resource row by (kind, Region, id), the grants by grant id, and the live rows by Region and
//! kind (for the id-filtered Describes). Reading it all up front means a ledger damaged in one row
//! fails the whole read, not some classifications and not others: the audit then classifies every
//! resource from its tags alone and says so ([`LedgerState::Unavailable`]).
//!
//! [`open_ledger`] opens a data directory's ledger for an audit without creating one: a missing
//! file is reported, not made.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;

use crate::cloud::{GrantId, JobId, KmsKeyId, Region};
use crate::ledger::{
    self, DeleteOutcome, JobRecord, Ledger, LedgerError, ResourceId, ResourceKind, ResourceRecord, ResourceState,
};

/// The data directory's ledger, or why there is none to use. Never creates a ledger: an audit run
/// on a machine that never scanned must not leave an empty one behind that hides the problem.
#[must_use]
pub fn open_ledger(data_dir: &Path) -> (Option<Ledger>, Option<String>) {
    let path = data_dir.join(ledger::FILE_NAME);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return (None, Some(format!("the ledger {} is not a file", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (None, Some(format!("there is no ledger at {}", path.display())));
        }
        Err(e) => return (None, Some(format!("cannot read the ledger {}: {e}", path.display()))),
    }
    match Ledger::open(data_dir) {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(format!("the ledger {} cannot be used: {e}", path.display()))),
    }
}

/// How the audit reaches the ledger: not at all, directly, or behind a mutex shared with other
/// tasks (the daemon). A shared ledger is locked only for the initial read and for each
/// deletion record, never across a cloud call, so the audit's future stays `Send` and other tasks
/// keep writing while it waits on AWS.
#[derive(Debug)]
pub enum Access<'a> {
    None,
    Direct(&'a mut Ledger),
    Shared(&'a Mutex<Ledger>),
}

impl Access<'_> {
    /// Run `f` on the ledger, if there is one.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut Ledger) -> R) -> Option<R> {
        match self {
            Access::None => None,
            Access::Direct(l) => Some(f(l)),
            Access::Shared(m) => Some(f(&mut m.lock().unwrap_or_else(PoisonError::into_inner))),
        }
    }

    /// Record that a resource is gone (see [`Ledger::record_deleted`]); `None` without a ledger.
    pub fn record_deleted(&mut self, region: &Region, id: &ResourceId) -> Option<Result<DeleteOutcome, LedgerError>> {
        self.with(|l| l.record_deleted(region, id))
    }
}

/// How a job looks to the auditor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// In a non-terminal state, and the caller says its process is alive: the job's own teardown
    /// removes what it made, whatever its `agentless:expires-at` says.
    Alive(ledger::JobState),
    /// In a non-terminal state (the caller cannot tell whether its process is alive).
    Running(ledger::JobState),
    /// In a non-terminal state, but the caller says its process is gone.
    Dead(ledger::JobState),
    /// `Done`, `Failed` or `Cancelled`.
    Finished(ledger::JobState),
    /// The ledger does not know it.
    Unknown,
    /// There is no usable ledger.
    NoLedger,
}

/// The ledger, read.
#[derive(Debug, Clone, Default)]
pub struct LedgerView {
    jobs: HashMap<JobId, JobRecord>,
    resources: HashMap<(ResourceKind, Region, String), ResourceRecord>,
    grants: HashMap<GrantId, ResourceRecord>,
    live: BTreeMap<(Region, ResourceKind), Vec<ResourceId>>,
    grant_keys: BTreeSet<(Region, KmsKeyId)>,
}

/// The ledger as the audit can use it.
#[derive(Debug, Clone)]
pub enum LedgerState {
    Loaded(LedgerView),
    /// Missing, unreadable or damaged: why.
    Unavailable(String),
}

impl LedgerState {
    /// Read everything the audit needs from `ledger`.
    #[must_use]
    pub fn load(ledger: &Ledger) -> LedgerState {
        match LedgerView::read(ledger) {
            Ok(v) => LedgerState::Loaded(v),
            Err(e) => LedgerState::Unavailable(format!("the ledger cannot be read: {e}")),
        }
    }

    /// Why the ledger is not used, if it is not.
    #[must_use]
    pub fn note(&self) -> Option<&str> {
        match self {
            LedgerState::Loaded(_) => None,
            LedgerState::Unavailable(why) => Some(why),
        }
    }

    #[must_use]
    pub fn view(&self) -> Option<&LedgerView> {
        match self {
            LedgerState::Loaded(v) => Some(v),
            LedgerState::Unavailable(_) => None,
        }
    }

    /// The job's status; `alive` is asked about non-terminal jobs.
    #[must_use]
    pub fn job_status(&self, job: &JobId, alive: Option<&super::JobLiveness>) -> JobStatus {
        let Some(v) = self.view() else { return JobStatus::NoLedger };
        let Some(record) = v.jobs.get(job) else { return JobStatus::Unknown };
        if record.state.is_terminal() {
            JobStatus::Finished(record.state)
        } else {
            match alive.map(|f| f.as_ref()(record)) {
                Some(true) => JobStatus::Alive(record.state),
                Some(false) => JobStatus::Dead(record.state),
                None => JobStatus::Running(record.state),
            }
        }
    }

    /// The ledger's row of a resource (for a grant, by grant id whatever form its key was stored in).
    #[must_use]
    pub fn resource(&self, region: &Region, id: &ResourceId) -> Option<&ResourceRecord> {
        let v = self.view()?;
        if let ResourceId::KmsGrant { grant, .. } = id {
            return v.grants.get(grant);
        }
        v.resources.get(&(id.kind(), region.clone(), id.to_stored()))
    }

    /// The job's record.
    #[must_use]
    pub fn job(&self, job: &JobId) -> Option<&JobRecord> {
        self.view()?.jobs.get(job)
    }

    /// When the ledger first knew of the resource, else of its job.
    #[must_use]
    pub fn created_at(&self, region: &Region, id: &ResourceId, job: Option<&JobId>) -> Option<Timestamp> {
        self.resource(region, id).map(|r| r.created_at).or_else(|| job.and_then(|j| self.job(j)).map(|j| j.created_at))
    }

    /// The ids of the live (created, not deleted) rows of a kind in a Region.
    #[must_use]
    pub fn live(&self, region: &Region, kind: ResourceKind) -> &[ResourceId] {
        self.view().and_then(|v| v.live.get(&(region.clone(), kind))).map_or(&[], Vec::as_slice)
    }

    /// The keys of the ledger's grant rows (any state) in a Region.
    #[must_use]
    pub fn grant_keys(&self, region: &Region) -> Vec<KmsKeyId> {
        self.view()
            .map(|v| v.grant_keys.iter().filter(|(r, _)| r == region).map(|(_, k)| k.clone()).collect())
            .unwrap_or_default()
    }
}

impl LedgerView {
    fn read(ledger: &Ledger) -> Result<LedgerView, LedgerError> {
        let mut v = LedgerView::default();
        for job in ledger.jobs()? {
            v.jobs.insert(job.id.clone(), job);
        }
        for kind in ResourceKind::ALL {
            for row in ledger.all_resources_of_kind(kind, None)? {
                let Some(id) = row.id.clone() else { continue };
                if row.state == ResourceState::Created {
                    v.live.entry((row.region.clone(), kind)).or_default().push(id.clone());
                }
                if let ResourceId::KmsGrant { key, grant } = &id {
                    v.grant_keys.insert((row.region.clone(), key.clone()));
                    v.grants.insert(grant.clone(), row.clone());
                }
                v.resources.insert((kind, row.region.clone(), id.to_stored()), row);
            }
        }
        Ok(v)
    }
}
