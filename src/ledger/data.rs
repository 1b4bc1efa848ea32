//! Named JSON documents of a job (`job_data`, schema version 2): what the job logic needs to
//! resume after a crash beyond the resource rows — its working document (targets as discovered,
//! which snapshot holds which volume, which scanner scans which devices) and its HMAC key.
//! A put replaces the document in one transaction, so a reader sees the old or the new one whole.
//! A large document can be stored as a head and parts (`job_data_parts`, schema version 4): a put
//! then writes the head and only the parts given.

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
        self.put_job_data_parts(job, name, &text, &[], false)
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

    /// Stores the head of document `name` (as [`Self::put_job_data`], already encoded as JSON)
    /// and the given parts (key, JSON), in one transaction; with `replace`, parts not given are
    /// removed first.
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownJob`], or SQLite fails (a part that is not JSON included).
    pub fn put_job_data_parts(
        &mut self,
        job: &JobId,
        name: &'static str,
        head: &str,
        parts: &[(String, String)],
        replace: bool,
    ) -> Result<()> {
        let now = self.now();
        let tx = self.write(|| format!("job {job}: writing {name}"))?;
        super::jobs::require_job(&tx, job)?;
        tx.execute(
            "INSERT INTO job_data (job_id, name, value, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (job_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![job.as_str(), name, head, now],
        )
        .context(|| format!("job {job}: writing {name}"))?;
        if replace {
            tx.execute("DELETE FROM job_data_parts WHERE job_id = ?1 AND name = ?2", params![job.as_str(), name])
                .context(|| format!("job {job}: replacing the parts of {name}"))?;
        }
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO job_data_parts (job_id, name, part, value, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (job_id, name, part) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .context(|| format!("job {job}: writing the parts of {name}"))?;
            for (part, value) in parts {
                stmt.execute(params![job.as_str(), name, part, value, now])
                    .context(|| format!("job {job}: writing {name} part {part}"))?;
            }
        }
        tx.commit().context(|| format!("job {job}: committing {name}"))
    }

    /// The parts of document `name` (key, JSON), by key; empty if it has none.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn job_data_parts(&self, job: &JobId, name: &'static str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT part, value FROM job_data_parts WHERE job_id = ?1 AND name = ?2 ORDER BY part")
            .context(|| format!("job {job}: reading the parts of {name}"))?;
        let rows = stmt
            .query_map(params![job.as_str(), name], |r| Ok((r.get(0)?, r.get(1)?)))
            .context(|| format!("job {job}: reading the parts of {name}"))?;
        rows.collect::<std::result::Result<Vec<_>, _>>().context(|| format!("job {job}: reading the parts of {name}"))
    }

    /// Erases the job's document `name` and its parts (a no-op if there is none), then
    /// checkpoints and truncates the WAL: with `secure_delete` on, the bytes are gone from the
    /// database file and its WAL, not merely unlinked. A checkpoint another connection's reader
    /// blocks is left to SQLite's next one (the row is erased from the database either way).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn erase_job_data(&mut self, job: &JobId, name: &'static str) -> Result<()> {
        let tx = self.write(|| format!("job {job}: erasing {name}"))?;
        tx.execute("DELETE FROM job_data_parts WHERE job_id = ?1 AND name = ?2", params![job.as_str(), name])
            .context(|| format!("job {job}: erasing the parts of {name}"))?;
        tx.execute("DELETE FROM job_data WHERE job_id = ?1 AND name = ?2", params![job.as_str(), name])
            .context(|| format!("job {job}: erasing {name}"))?;
        tx.commit().context(|| format!("job {job}: committing the erasure of {name}"))?;
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .context(|| format!("job {job}: checkpointing after erasing {name}"))?;
        if busy != 0 {
            tracing::debug!(%job, what = name, "WAL checkpoint blocked by a reader; SQLite finishes it later");
        }
        Ok(())
    }
}
