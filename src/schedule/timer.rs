//! When schedules fire: each schedule's next due time from its cron expression
//! in its time zone; at a due time a run is recorded in the ledger (`runs`, schema version 3) and
//! handed to a [`Launcher`], which creates and drives its jobs.
//!
//! # Rules
//!
//! - **No overlap**: a schedule whose last run is not finished does not start another; the due
//!   time is skipped (logged, counted), and the schedule fires again at its next due time after.
//! - **Missed runs**: on start, a schedule whose latest due time before now has no run (the daemon
//!   was down, or busy past it) runs once at start if its `missed_runs` is `run-once` (however
//!   many due times passed), and otherwise waits for its next due time. A schedule seen for the
//!   first time has missed nothing (`schedules.added_at`).
//! - One run per (schedule, due time): a restart at the same due time does not start it twice.
//! - Late wake-ups (a suspended host) fire once for the latest due time passed, not once per due
//!   time.
//!
//! Time comes from a [`Clock`] (wall clock in the daemon; tokio's paused clock plus a base in the
//! tests, where sleeping until a due time takes no real time).

use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;

use super::config::MissedRuns;
use super::cron::CronSchedule;
use crate::ledger::{Clock, Ledger, LedgerError, RunKind, RunRecord};

/// A clock that reads `base` plus the time elapsed on tokio's clock since now: virtual under a
/// paused runtime.
#[must_use]
pub fn tokio_clock(base: Timestamp) -> Clock {
    let origin = tokio::time::Instant::now();
    Arc::new(move || {
        let elapsed = jiff::SignedDuration::try_from(origin.elapsed()).unwrap_or(jiff::SignedDuration::MAX);
        base.checked_add(elapsed).unwrap_or(Timestamp::MAX)
    })
}

/// The wall clock.
#[must_use]
pub fn wall_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// One schedule as the timer sees it.
#[derive(Debug, Clone)]
pub struct TimedSchedule {
    pub name: String,
    pub cron: CronSchedule,
    pub missed: MissedRuns,
}

/// Why a due time did not start a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The schedule's previous run is still going.
    Overlap,
    /// A run for this due time was already recorded.
    AlreadyRun,
    /// Missed while the daemon was down, and `missed_runs = "skip"`.
    MissedSkipped,
}

impl Skip {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Overlap => "overlap",
            Skip::AlreadyRun => "already-run",
            Skip::MissedSkipped => "missed",
        }
    }
}

/// What starts the jobs of a run.
pub trait Launcher: Send + Sync {
    /// `run` was just recorded: create and start its jobs (without blocking: spawn).
    fn start(&self, run: &RunRecord);
    /// A due time of `schedule` did not start a run.
    fn skipped(&self, schedule: &str, due: Timestamp, why: Skip);
}

/// Why the timer stopped.
#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The timer of a set of schedules.
pub struct Timer {
    schedules: Vec<TimedSchedule>,
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").field("schedules", &self.schedules).finish_non_exhaustive()
    }
}

impl Timer {
    #[must_use]
    pub fn new(schedules: Vec<TimedSchedule>, ledger: Arc<Mutex<Ledger>>, clock: Clock) -> Timer {
        Timer { schedules, ledger, clock }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `schedule` has a run not finished.
    fn running(&self, schedule: &str) -> Result<bool, LedgerError> {
        Ok(self.ledger().unfinished_runs()?.iter().any(|r| r.schedule == schedule))
    }

    /// Record and start a run of `s` for `due`, unless the rules say no.
    fn fire(
        &self,
        s: &TimedSchedule,
        due: Timestamp,
        kind: RunKind,
        launcher: &dyn Launcher,
    ) -> Result<(), LedgerError> {
        if self.running(&s.name)? {
            tracing::warn!(schedule = %s.name, due = %s.cron.local(due), "previous run still going; this due time is skipped");
            launcher.skipped(&s.name, due, Skip::Overlap);
            return Ok(());
        }
        let run = self.ledger().create_run(&s.name, kind, due)?;
        let Some(id) = run else {
            launcher.skipped(&s.name, due, Skip::AlreadyRun);
            return Ok(());
        };
        let record = RunRecord {
            id,
            schedule: s.name.clone(),
            kind,
            due_at: due,
            started_at: (self.clock)(),
            finished_at: None,
        };
        tracing::info!(schedule = %s.name, run = %id, kind = kind.as_str(), due = %s.cron.local(due), "run starts");
        launcher.start(&record);
        Ok(())
    }

    /// On start: record new schedules, and run once what was missed (per the schedule's rule).
    ///
    /// # Errors
    ///
    /// The ledger fails.
    pub fn catch_up(&self, launcher: &dyn Launcher) -> Result<(), TimerError> {
        let now = (self.clock)();
        for s in &self.schedules {
            let added = self.ledger().ensure_schedule(&s.name, now)?;
            let last = self.ledger().last_run(&s.name)?.map(|r| r.due_at);
            let since = last.map_or(added, |l| l.max(added));
            let Some(prev) = s.cron.last_at_or_before(now) else { continue };
            if prev <= since {
                continue;
            }
            match s.missed {
                MissedRuns::RunOnce => {
                    tracing::info!(schedule = %s.name, missed = %s.cron.local(prev), "a due time passed while the daemon was down: running it once now");
                    self.fire(s, prev, RunKind::Missed, launcher)?;
                }
                MissedRuns::Skip => {
                    tracing::info!(schedule = %s.name, missed = %s.cron.local(prev), "a due time passed while the daemon was down: skipped (missed_runs = \"skip\")");
                    launcher.skipped(&s.name, prev, Skip::MissedSkipped);
                }
            }
        }
        Ok(())
    }

    /// Fire each schedule at its due times until `stop` turns true.
    ///
    /// # Errors
    ///
    /// The ledger fails.
    pub async fn run(
        &self,
        launcher: &dyn Launcher,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), TimerError> {
        let start = (self.clock)();
        let mut next: Vec<Option<Timestamp>> = self.schedules.iter().map(|s| s.cron.next_after(start)).collect();
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let Some(due) = next.iter().flatten().min().copied() else {
                // Nothing will ever be due: wait for the stop.
                let _ = stop.changed().await;
                return Ok(());
            };
            let now = (self.clock)();
            if due > now {
                let wait = now.duration_until(due).unsigned_abs();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    r = stop.changed() => {
                        if r.is_err() || *stop.borrow() {
                            return Ok(());
                        }
                    }
                }
                continue;
            }
            for (s, n) in self.schedules.iter().zip(next.iter_mut()) {
                let Some(d) = *n else { continue };
                if d > now {
                    continue;
                }
                self.fire(s, d, RunKind::Scheduled, launcher)?;
                *n = s.cron.next_after(d.max(now));
            }
        }
    }
}
