//! The job's event log: one row per change the ledger records (written in the same transaction as
//! the change) plus free notes from the job logic, each with a JSON detail.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::{Connection, params};

use super::error::{LedgerError, Result, SqlContext};
use super::{Ledger, parse_column, timestamp};
use crate::cloud::ids::JobId;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The job was recorded (`detail`: account, region, targets).
    JobCreated,
    /// The job changed state (`from`, `to`).
    Transition,
    /// An error was recorded on the job (`message`).
    JobError,
    /// Targets were added (`instances`).
    TargetsAdded,
    /// A target's status changed (`instance`, `status`, `error`).
    TargetStatus,
    /// An intent was written before a create call (`intent`, `kind`, `region`, `client_token`).
    Intent,
    /// A resource's id was recorded (`intent`, `id`).
    Created,
    /// An intent's create is known not to have happened (`intent`).
    NotCreated,
    /// A resource was deleted (`intent`, `id`).
    Deleted,
    /// A note from the job logic (`message` and whatever detail it gave).
    Note,
}

impl EventKind {
    const ALL: [EventKind; 10] = [
        EventKind::JobCreated,
        EventKind::Transition,
        EventKind::JobError,
        EventKind::TargetsAdded,
        EventKind::TargetStatus,
        EventKind::Intent,
        EventKind::Created,
        EventKind::NotCreated,
        EventKind::Deleted,
        EventKind::Note,
    ];

    /// The name stored in the ledger.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::JobCreated => "job-created",
            EventKind::Transition => "transition",
            EventKind::JobError => "job-error",
            EventKind::TargetsAdded => "targets-added",
            EventKind::TargetStatus => "target-status",
            EventKind::Intent => "intent",
            EventKind::Created => "created",
            EventKind::NotCreated => "not-created",
            EventKind::Deleted => "deleted",
            EventKind::Note => "note",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<EventKind, String> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("\"{}\" is not an event kind", s.chars().take(80).collect::<String>()))
    }
}

/// One event, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Position in the whole log (increasing).
    pub seq: i64,
    pub job: JobId,
    pub at: Timestamp,
    pub kind: EventKind,
    pub detail: serde_json::Value,
}

/// Appends an event inside the caller's transaction.
pub(super) fn append(
    conn: &Connection,
    job: &JobId,
    at: i64,
    kind: EventKind,
    detail: &serde_json::Value,
) -> Result<()> {
    conn.execute(
        "INSERT INTO events (job_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        params![job.as_str(), at, kind.as_str(), detail.to_string()],
    )
    .context(|| format!("job {job}: recording a {kind} event"))?;
    Ok(())
}

impl Ledger {
    /// Adds a note to the job's log.
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownJob`], or SQLite fails.
    pub fn note(&mut self, job: &JobId, message: &str, detail: serde_json::Value) -> Result<()> {
        let at = self.now();
        let tx = self.write(|| format!("job {job}: adding a note"))?;
        super::jobs::require_job(&tx, job)?;
        append(&tx, job, at, EventKind::Note, &serde_json::json!({ "message": message, "detail": detail }))?;
        tx.commit().context(|| format!("job {job}: committing a note"))
    }

    /// The job's events, oldest first.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged ([`LedgerError::Corrupt`]).
    pub fn events(&self, job: &JobId) -> Result<Vec<EventRecord>> {
        let context = || format!("job {job}: reading events");
        let mut stmt = self
            .conn
            .prepare("SELECT id, at, kind, detail FROM events WHERE job_id = ?1 ORDER BY id")
            .context(context)?;
        let rows = stmt
            .query_map([job.as_str()], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?))
            })
            .context(context)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .context(context)?;
        rows.into_iter()
            .map(|(seq, at, kind, detail)| {
                let row = seq.to_string();
                Ok(EventRecord {
                    seq,
                    job: job.clone(),
                    at: timestamp("events", &row, "at", at)?,
                    kind: parse_column("events", &row, "kind", &kind)?,
                    detail: serde_json::from_str(&detail).map_err(|e| LedgerError::Corrupt {
                        table: "events",
                        row,
                        column: "detail",
                        reason: e.to_string(),
                    })?,
                })
            })
            .collect()
    }
}
