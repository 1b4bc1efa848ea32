//! The scheduled-scan daemon behind `agentless serve`: which scans run when (cron schedules in a
//! time zone), how its jobs share each account's quotas and the process's job slots, and the
//! daemon's life (jobs resumed on start, the scheduled audit, retention, the graceful stop). Its
//! HTTP API is [`crate::api`]; docs/architecture.md ("The three uses") has the overview.
//!
//! One concept per file: [`config`] (the daemon's TOML configuration: accounts, schedules,
//! selectors, limits, retention, audit; unknown keys refused with their line), [`cron`] (cron
//! expressions in a time zone, with croner's DST rules), [`timer`] (when each schedule fires:
//! due times, the missed-run rule on start, no overlapping runs of one schedule, all on an
//! injectable clock so tests run on tokio's paused time), and [`dispatch`] (the quota-aware
//! dispatcher: per (account, Region) budgets handed out fairly between jobs, and the fair queue
//! of job slots between accounts and schedules), and [`daemon`] (the daemon's core, generic over
//! the backend: runs, resumed jobs, the scheduled audit, retention, the graceful stop).

pub mod config;
pub mod cron;
pub mod daemon;
pub mod dispatch;
pub mod timer;

pub use config::{Config, ConfigError};
pub use cron::{CronError, CronSchedule};
pub use dispatch::{Dispatcher, Limits};
