//! A job's targets: each instance with its own status and error (a scanner that does not report
//! fails its targets, not the job).
//!
//! The ledger does not police the order of target statuses: the job logic owns that; the ledger
//! only keeps what it was told, durably.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::{Connection, params};
use serde_json::json;

use super::error::{LedgerError, Result, SqlContext};
use super::events::{self, EventKind};
use super::{Ledger, parse_column, timestamp};
use crate::cloud::ids::{InstanceId, JobId};

/// Where one target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetStatus {
    /// Not started.
    Pending,
    /// Its snapshots are complete.
    Snapshotted,
    /// A scanner has its snapshots.
    Scanning,
    /// Its results are stored.
    Scanned,
    /// It could not be scanned (see its error).
    Failed,
    /// Left out on purpose (e.g. no volume to scan).
    Skipped,
}

impl TargetStatus {
    const ALL: [TargetStatus; 6] = [
        TargetStatus::Pending,
        TargetStatus::Snapshotted,
        TargetStatus::Scanning,
        TargetStatus::Scanned,
        TargetStatus::Failed,
        TargetStatus::Skipped,
    ];

    /// The name stored in the ledger.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Pending => "pending",
            TargetStatus::Snapshotted => "snapshotted",
            TargetStatus::Scanning => "scanning",
            TargetStatus::Scanned => "scanned",
            TargetStatus::Failed => "failed",
            TargetStatus::Skipped => "skipped",
        }
    }

    /// `Scanned`, `Failed` and `Skipped`: nothing more will happen to the target.
    #[must_use]
    pub fn is_final(self) -> bool {
        match self {
            TargetStatus::Scanned | TargetStatus::Failed | TargetStatus::Skipped => true,
            TargetStatus::Pending | TargetStatus::Snapshotted | TargetStatus::Scanning => false,
        }
    }
}

impl fmt::Display for TargetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<TargetStatus, String> {
        TargetStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("\"{}\" is not a target status", s.chars().take(80).collect::<String>()))
    }
}

/// One target, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    pub job: JobId,
    pub instance: InstanceId,
    pub status: TargetStatus,
    pub error: Option<String>,
    pub updated_at: Timestamp,
}

/// Inserts targets in `Pending` inside the caller's transaction; ones already there are kept as
/// they are. Returns how many were new.
pub(super) fn insert(conn: &Connection, job: &JobId, targets: &[InstanceId], now: i64) -> Result<usize> {
    let mut added = 0;
    for instance in targets {
        added += conn
            .execute(
                "INSERT OR IGNORE INTO targets (job_id, instance_id, status, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![job.as_str(), instance.as_str(), TargetStatus::Pending.as_str(), now],
            )
            .context(|| format!("job {job}: adding target {instance}"))?;
    }
    Ok(added)
}

impl Ledger {
    /// Adds targets (found by discovery) in `Pending`; ones already there are unchanged. Returns
    /// how many were new.
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownJob`], or SQLite fails.
    pub fn add_targets(&mut self, job: &JobId, targets: &[InstanceId]) -> Result<usize> {
        let now = self.now();
        let tx = self.write(|| format!("job {job}: adding targets"))?;
        super::jobs::require_job(&tx, job)?;
        let added = insert(&tx, job, targets, now)?;
        events::append(&tx, job, now, EventKind::TargetsAdded, &json!({ "instances": targets, "new": added }))?;
        tx.commit().context(|| format!("job {job}: committing new targets"))?;
        Ok(added)
    }

    /// Sets a target's status and error (`None` clears it).
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownTarget`] / [`LedgerError::UnknownJob`], or SQLite fails.
    pub fn set_target_status(
        &mut self,
        job: &JobId,
        instance: &InstanceId,
        status: TargetStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let now = self.now();
        let tx = self.write(|| format!("job {job}: target {instance}"))?;
        super::jobs::require_job(&tx, job)?;
        let changed = tx
            .execute(
                "UPDATE targets SET status = ?3, error = ?4, updated_at = ?5 WHERE job_id = ?1 AND instance_id = ?2",
                params![job.as_str(), instance.as_str(), status.as_str(), error, now],
            )
            .context(|| format!("job {job}: setting target {instance} to {status}"))?;
        if changed == 0 {
            return Err(LedgerError::UnknownTarget { job: job.clone(), instance: instance.clone() });
        }
        let detail = json!({ "instance": instance, "status": status.as_str(), "error": error });
        events::append(&tx, job, now, EventKind::TargetStatus, &detail)?;
        tx.commit().context(|| format!("job {job}: committing target {instance}"))
    }

    /// The job's targets, by instance id.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn targets(&self, job: &JobId) -> Result<Vec<TargetRecord>> {
        let context = || format!("job {job}: reading targets");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT instance_id, status, error, updated_at FROM targets WHERE job_id = ?1 ORDER BY instance_id",
            )
            .context(context)?;
        let raws = stmt
            .query_map([job.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .context(context)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context(context)?;
        raws.into_iter()
            .map(|(instance, status, error, updated_at)| {
                let row = format!("{job}/{instance}");
                Ok(TargetRecord {
                    job: job.clone(),
                    instance: parse_column("targets", &row, "instance_id", &instance)?,
                    status: parse_column("targets", &row, "status", &status)?,
                    error,
                    updated_at: timestamp("targets", &row, "updated_at", updated_at)?,
                })
            })
            .collect()
    }
}
