//! Jobs: creating one, moving it through its states ([`can_transition`]), recording its error,
//! and the lookups `agentless jobs`, resume and the auditor need.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::error::{LedgerError, Result, SqlContext};
use super::events::{self, EventKind};
use super::state::{JobState, can_transition};
use super::{Ledger, parse_column, timestamp};
use crate::cloud::ids::{AccountId, InstanceId, JobId, Region};

/// One job, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: JobId,
    pub account: AccountId,
    pub region: Region,
    pub state: JobState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The last error recorded with [`Ledger::record_job_error`].
    pub error: Option<String>,
}

const JOB_COLUMNS: &str = "id, account, region, state, created_at, updated_at, error";

type RawJob = (String, String, String, String, i64, i64, Option<String>);

fn raw_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn job_record((id, account, region, state, created_at, updated_at, error): RawJob) -> Result<JobRecord> {
    let t = "jobs";
    Ok(JobRecord {
        account: parse_column(t, &id, "account", &account)?,
        region: parse_column(t, &id, "region", &region)?,
        state: parse_column(t, &id, "state", &state)?,
        created_at: timestamp(t, &id, "created_at", created_at)?,
        updated_at: timestamp(t, &id, "updated_at", updated_at)?,
        error,
        id: parse_column(t, &id, "id", &id)?,
    })
}

/// The job's state, or [`LedgerError::UnknownJob`].
pub(super) fn require_job(conn: &Connection, job: &JobId) -> Result<JobState> {
    read_state(conn, job)?.ok_or_else(|| LedgerError::UnknownJob { job: job.clone() })
}

fn read_state(conn: &Connection, job: &JobId) -> Result<Option<JobState>> {
    let state: Option<String> = conn
        .query_row("SELECT state FROM jobs WHERE id = ?1", [job.as_str()], |row| row.get(0))
        .optional()
        .context(|| format!("job {job}: reading its state"))?;
    state.map(|s| parse_column("jobs", job.as_str(), "state", &s)).transpose()
}

impl Ledger {
    /// Records a new job in state `Planned` with its first targets (more may come from discovery:
    /// [`Ledger::add_targets`]).
    ///
    /// # Errors
    ///
    /// [`LedgerError::JobExists`], or SQLite fails.
    pub fn create_job(
        &mut self,
        job: &JobId,
        account: &AccountId,
        region: &Region,
        targets: &[InstanceId],
    ) -> Result<JobRecord> {
        let now = self.now();
        let tx = self.write(|| format!("job {job}: creating it"))?;
        if read_state(&tx, job)?.is_some() {
            return Err(LedgerError::JobExists { job: job.clone() });
        }
        tx.execute(
            "INSERT INTO jobs (id, account, region, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![job.as_str(), account.as_str(), region.as_str(), JobState::Planned.as_str(), now],
        )
        .context(|| format!("job {job}: creating it"))?;
        super::targets::insert(&tx, job, targets, now)?;
        let detail = json!({ "account": account, "region": region, "targets": targets });
        events::append(&tx, job, now, EventKind::JobCreated, &detail)?;
        tx.commit().context(|| format!("job {job}: committing its creation"))?;
        self.job(job)?.ok_or_else(|| LedgerError::UnknownJob { job: job.clone() })
    }

    /// Moves the job to `to` if [`can_transition`] allows it, and records the event, in one
    /// transaction committed before this returns.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Transition`] (nothing is written), [`LedgerError::UnknownJob`], or SQLite
    /// fails.
    pub fn transition(&mut self, job: &JobId, to: JobState) -> Result<()> {
        let now = self.now();
        let tx = self.write(|| format!("job {job}: transition to {to}"))?;
        let from = require_job(&tx, job)?;
        if !can_transition(from, to) {
            return Err(LedgerError::Transition { job: job.clone(), from, to });
        }
        tx.execute(
            "UPDATE jobs SET state = ?2, updated_at = ?3 WHERE id = ?1",
            params![job.as_str(), to.as_str(), now],
        )
        .context(|| format!("job {job}: transition {from} -> {to}"))?;
        events::append(&tx, job, now, EventKind::Transition, &json!({ "from": from.as_str(), "to": to.as_str() }))?;
        tx.commit().context(|| format!("job {job}: committing the transition {from} -> {to}"))
    }

    /// Records an error on the job (kept in `jobs.error` and the log; the state does not change:
    /// the job logic decides to tear down).
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownJob`], or SQLite fails.
    pub fn record_job_error(&mut self, job: &JobId, message: &str) -> Result<()> {
        let now = self.now();
        let tx = self.write(|| format!("job {job}: recording an error"))?;
        require_job(&tx, job)?;
        tx.execute("UPDATE jobs SET error = ?2, updated_at = ?3 WHERE id = ?1", params![job.as_str(), message, now])
            .context(|| format!("job {job}: recording an error"))?;
        events::append(&tx, job, now, EventKind::JobError, &json!({ "message": message }))?;
        tx.commit().context(|| format!("job {job}: committing an error"))
    }

    /// The job's state, `None` if the ledger does not know the job.
    ///
    /// # Errors
    ///
    /// SQLite fails, or the stored state is not one this version knows ([`LedgerError::Corrupt`]).
    pub fn job_state(&self, job: &JobId) -> Result<Option<JobState>> {
        read_state(&self.conn, job)
    }

    /// The job, `None` if unknown.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn job(&self, job: &JobId) -> Result<Option<JobRecord>> {
        let raw = self
            .conn
            .query_row(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"), [job.as_str()], raw_job)
            .optional()
            .context(|| format!("job {job}: reading it"))?;
        raw.map(job_record).transpose()
    }

    /// Every job, oldest first.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        let context = || "reading the jobs".to_owned();
        let mut stmt =
            self.conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at, id")).context(context)?;
        let raws =
            stmt.query_map([], raw_job).context(context)?.collect::<rusqlite::Result<Vec<_>>>().context(context)?;
        raws.into_iter().map(job_record).collect()
    }

    /// The jobs in `state`, oldest first.
    ///
    /// # Errors
    ///
    /// As [`Ledger::jobs`].
    pub fn jobs_by_state(&self, state: JobState) -> Result<Vec<JobRecord>> {
        let context = || format!("reading the jobs in state {state}");
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = ?1 ORDER BY created_at, id"))
            .context(context)?;
        let raws = stmt
            .query_map([state.as_str()], raw_job)
            .context(context)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context(context)?;
        raws.into_iter().map(job_record).collect()
    }

    /// The jobs not in a terminal state, oldest first: what a resume picks up.
    ///
    /// # Errors
    ///
    /// As [`Ledger::jobs`]; a job whose state is damaged is an error, not skipped (a resume must
    /// not silently leave a job's resources behind).
    pub fn unfinished_jobs(&self) -> Result<Vec<JobRecord>> {
        Ok(self.jobs()?.into_iter().filter(|job| !job.state.is_terminal()).collect())
    }
}
