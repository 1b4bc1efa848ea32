//! The daemon's schedule runs (schema version 3): which schedules exist and since when, each run
//! started for a schedule's due time (or on demand) and the jobs it created, and when it ended.
//! `agentless serve` reads them on start to tell a missed run (a due time with no run) and a run
//! still going (no second run of a schedule while one is unfinished).
//!
//! Also the aggregate reads the daemon's metrics and API need (jobs by state, targets by status,
//! live resources by kind, the newest scan of an instance), each one SQL query.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::error::{Result, SqlContext};
use super::{Ledger, parse_column, timestamp};
use crate::cloud::ids::{InstanceId, JobId};

/// A run's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct RunId(i64);

impl RunId {
    /// The row id.
    #[must_use]
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run-{}", self.0)
    }
}

/// Why a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// At its due time.
    Scheduled,
    /// On start, for a due time that passed while the daemon was down.
    Missed,
    /// Asked through the API (`POST /v1/scans`).
    OnDemand,
}

impl RunKind {
    /// The name stored in the ledger.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Scheduled => "scheduled",
            RunKind::Missed => "missed",
            RunKind::OnDemand => "on-demand",
        }
    }
}

impl FromStr for RunKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<RunKind, String> {
        [RunKind::Scheduled, RunKind::Missed, RunKind::OnDemand]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("\"{}\" is not a run kind", s.chars().take(40).collect::<String>()))
    }
}

/// One run, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: RunId,
    /// The schedule's name (`on-demand` for API scans).
    pub schedule: String,
    pub kind: RunKind,
    /// The cron time the run is for (the request time for an on-demand run).
    pub due_at: Timestamp,
    pub started_at: Timestamp,
    /// Every job of the run is over.
    pub finished_at: Option<Timestamp>,
}

const RUN_COLUMNS: &str = "id, schedule, kind, due_at, started_at, finished_at";

type RawRun = (i64, String, String, i64, i64, Option<i64>);

fn raw_run(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

fn run_record((id, schedule, kind, due_at, started_at, finished_at): RawRun) -> Result<RunRecord> {
    let t = "runs";
    let row = id.to_string();
    Ok(RunRecord {
        id: RunId(id),
        kind: parse_column(t, &row, "kind", &kind)?,
        due_at: timestamp(t, &row, "due_at", due_at)?,
        started_at: timestamp(t, &row, "started_at", started_at)?,
        finished_at: finished_at.map(|f| timestamp(t, &row, "finished_at", f)).transpose()?,
        schedule,
    })
}

impl Ledger {
    /// When the schedule `name` was first seen, recording `now` if it is new.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn ensure_schedule(&mut self, name: &str, now: Timestamp) -> Result<Timestamp> {
        let tx = self.write(|| format!("schedule {name}: recording it"))?;
        tx.execute(
            "INSERT INTO schedules (name, added_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name, now.as_millisecond()],
        )
        .context(|| format!("schedule {name}: recording it"))?;
        let at: i64 = tx
            .query_row("SELECT added_at FROM schedules WHERE name = ?1", [name], |r| r.get(0))
            .context(|| format!("schedule {name}: reading it"))?;
        tx.commit().context(|| format!("schedule {name}: committing it"))?;
        timestamp("schedules", name, "added_at", at)
    }

    /// Record a run of `schedule` for `due_at`; `None` if one was already recorded for that time.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn create_run(&mut self, schedule: &str, kind: RunKind, due_at: Timestamp) -> Result<Option<RunId>> {
        let now = self.now();
        let tx = self.write(|| format!("schedule {schedule}: recording a run"))?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM runs WHERE schedule = ?1 AND due_at = ?2",
                params![schedule, due_at.as_millisecond()],
                |r| r.get(0),
            )
            .optional()
            .context(|| format!("schedule {schedule}: looking for a run"))?;
        if exists.is_some() {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO runs (schedule, kind, due_at, started_at) VALUES (?1, ?2, ?3, ?4)",
            params![schedule, kind.as_str(), due_at.as_millisecond(), now],
        )
        .context(|| format!("schedule {schedule}: recording a run"))?;
        let id = tx.last_insert_rowid();
        tx.commit().context(|| format!("schedule {schedule}: committing a run"))?;
        Ok(Some(RunId(id)))
    }

    /// Add `job` to `run`.
    ///
    /// # Errors
    ///
    /// SQLite fails (e.g. an unknown job).
    pub fn link_run_job(&mut self, run: RunId, job: &JobId) -> Result<()> {
        let tx = self.write(|| format!("{run}: adding job {job}"))?;
        tx.execute(
            "INSERT INTO run_jobs (run_id, job_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![run.0, job.as_str()],
        )
        .context(|| format!("{run}: adding job {job}"))?;
        tx.commit().context(|| format!("{run}: committing job {job}"))
    }

    /// Mark `run` over (idempotent: the first time is kept).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn finish_run(&mut self, run: RunId) -> Result<()> {
        let now = self.now();
        let tx = self.write(|| format!("{run}: finishing it"))?;
        tx.execute("UPDATE runs SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL", params![run.0, now])
            .context(|| format!("{run}: finishing it"))?;
        tx.commit().context(|| format!("{run}: committing its end"))
    }

    fn query_runs(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<RunRecord>> {
        let context = || "reading the runs".to_owned();
        let mut stmt = self.conn.prepare(sql).context(context)?;
        let raws =
            stmt.query_map(args, raw_run).context(context)?.collect::<rusqlite::Result<Vec<_>>>().context(context)?;
        raws.into_iter().map(run_record).collect()
    }

    /// The runs not finished, oldest first.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a row is damaged.
    pub fn unfinished_runs(&self) -> Result<Vec<RunRecord>> {
        self.query_runs(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE finished_at IS NULL ORDER BY id"), &[])
    }

    /// The run of `schedule` with the latest due time.
    ///
    /// # Errors
    ///
    /// As [`Ledger::unfinished_runs`].
    pub fn last_run(&self, schedule: &str) -> Result<Option<RunRecord>> {
        let runs = self.query_runs(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE schedule = ?1 ORDER BY due_at DESC, id DESC LIMIT 1"),
            &[&schedule],
        )?;
        Ok(runs.into_iter().next())
    }

    /// Every run of `schedule`, oldest due time first.
    ///
    /// # Errors
    ///
    /// As [`Ledger::unfinished_runs`].
    pub fn runs_of(&self, schedule: &str) -> Result<Vec<RunRecord>> {
        self.query_runs(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE schedule = ?1 ORDER BY due_at, id"),
            &[&schedule],
        )
    }

    /// The jobs of `run`.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a job id is damaged.
    pub fn run_jobs(&self, run: RunId) -> Result<Vec<JobId>> {
        let context = || format!("{run}: reading its jobs");
        let mut stmt =
            self.conn.prepare("SELECT job_id FROM run_jobs WHERE run_id = ?1 ORDER BY job_id").context(context)?;
        let ids = stmt
            .query_map([run.0], |r| r.get::<_, String>(0))
            .context(context)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context(context)?;
        ids.iter().map(|id| parse_column("run_jobs", id, "job_id", id)).collect()
    }

    /// The run `job` belongs to and its schedule, if any.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn run_of_job(&self, job: &JobId) -> Result<Option<(RunId, String)>> {
        self.conn
            .query_row(
                "SELECT r.id, r.schedule FROM run_jobs j JOIN runs r ON r.id = j.run_id WHERE j.job_id = ?1",
                [job.as_str()],
                |r| Ok((RunId(r.get(0)?), r.get(1)?)),
            )
            .optional()
            .context(|| format!("job {job}: reading its run"))
    }

    fn counts(&self, sql: &str, what: &str) -> Result<Vec<(String, u64)>> {
        let context = || format!("counting {what}");
        let mut stmt = self.conn.prepare(sql).context(context)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .context(context)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context(context)?;
        Ok(rows.into_iter().map(|(k, n)| (k, u64::try_from(n).unwrap_or(0))).collect())
    }

    /// How many jobs are in each state (states with none are absent).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn job_counts(&self) -> Result<Vec<(String, u64)>> {
        self.counts("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state", "jobs by state")
    }

    /// How many targets (of every job) have each status.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn target_counts(&self) -> Result<Vec<(String, u64)>> {
        self.counts("SELECT status, count(*) FROM targets GROUP BY status ORDER BY status", "targets by status")
    }

    /// How many resources of each kind are recorded and not deleted (intents included).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn live_resource_counts(&self) -> Result<Vec<(String, u64)>> {
        self.counts(
            "SELECT kind, count(*) FROM resources WHERE state != 'deleted' GROUP BY kind ORDER BY kind",
            "live resources by kind",
        )
    }

    /// The jobs that scanned `instance`, newest first, with when the target was last updated.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a row is damaged.
    pub fn scans_of_instance(&self, instance: &InstanceId) -> Result<Vec<(JobId, Timestamp)>> {
        let context = || format!("instance {instance}: reading its scans");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT job_id, updated_at FROM targets WHERE instance_id = ?1 AND status = 'scanned' \
                 ORDER BY updated_at DESC, job_id DESC",
            )
            .context(context)?;
        let rows = stmt
            .query_map([instance.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .context(context)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context(context)?;
        rows.into_iter()
            .map(|(job, at)| {
                Ok((parse_column("targets", &job, "job_id", &job)?, timestamp("targets", &job, "updated_at", at)?))
            })
            .collect()
    }
}
