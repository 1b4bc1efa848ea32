//! Named JSON documents of a job (`job_data`, schema version 2): what the job logic needs to
//! resume after a crash beyond the resource rows — its working document (targets as discovered,
//! which snapshot holds which volume, which scanner scans which devices) and its HMAC key.
//! A put replaces the document in one transaction, so a reader sees the old or the new one whole.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Ledger;
use super::error::{LedgerError, Result, SqlContext};
use crate::cloud::ids::JobId;

impl Ledger {
    /// Stores `value` as the job's document `name`, replacing an earlier one.
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownJob`], [`LedgerError::Json`], or SQLite fails.
    pub fn put_job_data<T: Serialize>(&mut self, job: &JobId, name: &'static str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|source| LedgerError::Json {
            job: job.clone(),
            what: name,
            source,
        })?;
        let now = self.now();
        let tx = self.write(|| format!("job {job}: writing {name}"))?;
        super::jobs::require_job(&tx, job)?;
        tx.execute(
            "INSERT INTO job_data (job_id, name, value, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (job_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![job.as_str(), name, text, now],
        )
        .context(|| format!("job {job}: writing {name}"))?;
        tx.commit().context(|| format!("job {job}: committing {name}"))
    }

    /// The job's document `name`, `None` if never stored.
    ///
    /// # Errors
    ///
    /// SQLite fails, or the stored JSON does not have the expected shape ([`LedgerError::Corrupt`]).
    pub fn job_data<T: DeserializeOwned>(&self, job: &JobId, name: &'static str) -> Result<Option<T>> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT value FROM job_data WHERE job_id = ?1 AND name = ?2", params![job.as_str(), name], |r| {
                r.get(0)
            })
            .optional()
            .context(|| format!("job {job}: reading {name}"))?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| LedgerError::Corrupt {
                table: "job_data",
                row: format!("{job}/{name}"),
                column: "value",
                reason: e.to_string(),
            })
        })
        .transpose()
    }
}
