//! A cron expression in a time zone: when a schedule is due.
//!
//! Parsed by `croner` (POSIX five fields, an optional leading seconds field, `L`, `W`, `#`,
//! nicknames such as `@daily`) and evaluated on jiff's zoned times in the schedule's IANA time
//! zone, with croner's Open Cron Pattern Specification rules at DST changes: a fixed time that
//! falls in a spring-forward gap runs right after the gap, once; a fixed time in a fall-back
//! overlap runs once, at its first occurrence; wildcard and step fields run for each wall-clock
//! match (so none in the gap, both passes of the repeated hour).

use std::fmt;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Why a schedule's time could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error("\"{expr}\" is not a cron expression: {source}")]
    Expression { expr: String, source: croner::errors::CronError },
    #[error("\"{name}\" is not a time zone (an IANA name such as UTC or Europe/Paris): {source}")]
    TimeZone { name: String, source: jiff::Error },
}

/// A cron expression and the time zone it is read in.
#[derive(Clone)]
pub struct CronSchedule {
    expr: String,
    cron: Cron,
    tz_name: String,
    tz: TimeZone,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule").field("expr", &self.expr).field("tz", &self.tz_name).finish()
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" ({})", self.expr, self.tz_name)
    }
}

/// Parse a cron expression alone (5 fields, or 6 with seconds first).
///
/// # Errors
///
/// [`CronError::Expression`].
pub fn parse_expression(expr: &str) -> Result<Cron, CronError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|source| CronError::Expression { expr: expr.to_owned(), source })
}

/// Look a time zone up by IANA name (jiff's bundled database).
///
/// # Errors
///
/// [`CronError::TimeZone`].
pub fn time_zone(name: &str) -> Result<TimeZone, CronError> {
    TimeZone::get(name).map_err(|source| CronError::TimeZone { name: name.to_owned(), source })
}

impl CronSchedule {
    /// `expr` read in the time zone `tz` (e.g. `"0 2 * * *"` in `"Europe/Paris"`).
    ///
    /// # Errors
    ///
    /// The expression or the time zone is not valid.
    pub fn new(expr: &str, tz: &str) -> Result<CronSchedule, CronError> {
        Ok(CronSchedule {
            cron: parse_expression(expr)?,
            expr: expr.to_owned(),
            tz: time_zone(tz)?,
            tz_name: tz.to_owned(),
        })
    }

    /// The expression as written.
    #[must_use]
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The time zone's name.
    #[must_use]
    pub fn time_zone_name(&self) -> &str {
        &self.tz_name
    }

    /// The first due time strictly after `t`; `None` if there is none (an expression that never
    /// matches again, e.g. a past year).
    #[must_use]
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let z = t.to_zoned(self.tz.clone());
        self.cron.find_next_occurrence(&z, false).ok().map(|z| z.timestamp())
    }

    /// The last due time at or before `t`, if any.
    #[must_use]
    pub fn last_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let z = t.to_zoned(self.tz.clone());
        self.cron.find_previous_occurrence(&z, true).ok().map(|z| z.timestamp())
    }

    /// `t` on this schedule's wall clock (for logs and tests).
    #[must_use]
    pub fn local(&self, t: Timestamp) -> jiff::Zoned {
        t.to_zoned(self.tz.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn next_and_last_in_a_time_zone() {
        let c = CronSchedule::new("0 2 * * *", "Europe/Paris").expect("cron");
        // 2026-01-10 is winter: Paris is UTC+1, so 02:00 local is 01:00Z.
        assert_eq!(c.next_after(ts("2026-01-10T00:00:00Z")), Some(ts("2026-01-10T01:00:00Z")));
        assert_eq!(c.next_after(ts("2026-01-10T01:00:00Z")), Some(ts("2026-01-11T01:00:00Z")));
        assert_eq!(c.last_at_or_before(ts("2026-01-10T01:00:00Z")), Some(ts("2026-01-10T01:00:00Z")));
        assert_eq!(c.last_at_or_before(ts("2026-01-10T00:59:59Z")), Some(ts("2026-01-09T01:00:00Z")));
        let secs = CronSchedule::new("*/10 * * * * *", "UTC").expect("cron with seconds");
        assert_eq!(secs.next_after(ts("2026-01-10T00:00:01Z")), Some(ts("2026-01-10T00:00:10Z")));
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        let e = CronSchedule::new("61 * * * *", "UTC").expect_err("minute 61");
        assert!(e.to_string().contains("\"61 * * * *\""), "{e}");
        let e = CronSchedule::new("0 2 * * *", "Mars/Olympus").expect_err("zone");
        assert!(e.to_string().contains("Mars/Olympus"), "{e}");
    }
}
