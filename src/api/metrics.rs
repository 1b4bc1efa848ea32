//! The daemon's metrics and their Prometheus text exposition (format 0.0.4, "Exposition
//! formats" in the Prometheus documentation), written by hand: a few counters, gauges and one
//! histogram do not need a metrics crate.
//!
//! Counters live here and are bumped by the daemon (AWS calls by action and outcome through the
//! guard's observer, throttling errors, runs, leaks, scan durations); the gauges that describe
//! the ledger (jobs by state, targets by status, live resources by kind) and the dispatcher are
//! read at scrape time and passed in as a [`Gauges`] snapshot, so they are never stale.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cloud::{CallObserver, CloudError, ErrorKind, Region};

/// Upper bounds of the scan-duration histogram, in seconds: a demo job takes seconds, a Region of
/// a large account an hour or more (snapshots of large volumes take minutes to hours,
/// docs/references.md, "Snapshot creation time").
pub const DURATION_BUCKETS: [f64; 10] = [10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14_400.0, 43_200.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters of the daemon (shared; cheap to clone through `Arc`).
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    throttles: AtomicU64,
    leaks_found: AtomicU64,
    leaks_deleted: AtomicU64,
    audits: Mutex<BTreeMap<&'static str, u64>>,
    runs: Mutex<BTreeMap<(String, &'static str), u64>>,
    skipped: Mutex<BTreeMap<(String, &'static str), u64>>,
    durations: Mutex<BTreeMap<&'static str, Histogram>>,
    vulndb_updates: Mutex<BTreeMap<&'static str, u64>>,
    /// The CloudTrail pipeline's counters: (metric, label value) → count.
    trail: Mutex<BTreeMap<(&'static str, String), u64>>,
    event_lag: Mutex<Histogram>,
}

/// Upper bounds of the event-scan lag histogram, in seconds (event time to job created): the
/// delivery delay of CloudTrail (about 5 minutes, CloudTrail User Guide "How CloudTrail works")
/// plus the coalescing delay sets its floor.
pub const LAG_BUCKETS: [f64; 10] = [60.0, 120.0, 300.0, 420.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0];

/// The CloudTrail pipeline's counters, each with one label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailCounter {
    /// Queue messages by outcome (`objects`, `test_event`, `unparsable`, `refused`).
    Messages,
    /// Log objects by outcome (`read`, `duplicate`, `refused_size`, `unreadable`, `not_found`, ...).
    Objects,
    /// Records read, by `ours`, `service` (AWS on our behalf), `foreign`.
    Records,
    /// Scan triggers read, by kind (`launched`, `started`, ...).
    Events,
    /// Event scans by outcome (`queued`, `coalesced`, `started`, `deferred_budget`, `dropped`).
    EventScans,
    /// Alerts raised, by kind (`unrecognized-call`, `foreign-call`).
    Alerts,
    /// Calls of ours CloudTrail never showed within `trail.unseen_after` (label `all`).
    UnseenCalls,
}

impl TrailCounter {
    fn metric(self) -> (&'static str, &'static str, &'static str) {
        match self {
            TrailCounter::Messages => ("agentless_trail_messages_total", "outcome", "Queue messages read, by outcome."),
            TrailCounter::Objects => ("agentless_trail_objects_total", "outcome", "Log objects, by outcome."),
            TrailCounter::Records => {
                ("agentless_trail_records_total", "principal", "CloudTrail records read, by whose.")
            }
            TrailCounter::Events => ("agentless_trail_events_total", "kind", "Events that ask for a scan, by kind."),
            TrailCounter::EventScans => ("agentless_event_scans_total", "outcome", "Event-driven scans, by outcome."),
            TrailCounter::Alerts => ("agentless_trail_alerts_total", "kind", "Cross-check alerts raised, by kind."),
            TrailCounter::UnseenCalls => (
                "agentless_trail_unseen_calls_total",
                "scope",
                "Calls of ours that CloudTrail never showed (counted, not alerted).",
            ),
        }
    }

    const ALL: [TrailCounter; 7] = [
        TrailCounter::Messages,
        TrailCounter::Objects,
        TrailCounter::Records,
        TrailCounter::Events,
        TrailCounter::EventScans,
        TrailCounter::Alerts,
        TrailCounter::UnseenCalls,
    ];
}

/// The vulnerability side of the gauges: counts over each instance's newest stored results and
/// the advisory database's sources (read after each job, rescan and database update, not at
/// scrape time: reading every `vulns.json` of a large fleet takes seconds).
#[derive(Debug, Clone, Default)]
pub struct VulnGauges {
    pub fleet: crate::vuln::fleet::FleetCounts,
    /// The database's sources: (name, imported at, newest record `modified`). Empty: no database.
    pub sources: Vec<(String, Option<jiff::Timestamp>, Option<jiff::Timestamp>)>,
}

/// What one (account, Region) has handed out, as the dispatcher reports it
/// (`schedule::dispatch::Dispatcher::usage`; the type lives here, with its lowest user, so the API
/// does not import the scheduler).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub pending_snapshots: usize,
    /// The most pending snapshots held on one volume.
    pub max_per_volume: usize,
    pub copies: usize,
    pub networks: usize,
    pub vcpus: u32,
    /// Jobs told to wait, since the start.
    pub refusals: u64,
}

/// What the ledger and the dispatcher say at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// (state, count).
    pub jobs: Vec<(String, u64)>,
    /// (status, count).
    pub targets: Vec<(String, u64)>,
    /// (kind, count) of resources recorded and not deleted.
    pub resources: Vec<(String, u64)>,
    /// Per (account, Region).
    pub budgets: Vec<(String, String, Usage)>,
    pub job_slots_in_use: usize,
    pub job_slots_waiting: usize,
    /// Jobs being driven by this process now.
    pub jobs_in_flight: usize,
    /// Vulnerability counts, once computed.
    pub vulns: Option<VulnGauges>,
    /// Uploads the collector refused since the daemon started, by reason
    /// ([`crate::collector::IngestError::reason`]).
    pub collector_refusals: Vec<(String, u64)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A label value escaped for the text format (backslash, double quote, line feed).
#[must_use]
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl Metrics {
    #[must_use]
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Count one AWS call's outcome.
    pub fn record_call(&self, action: &'static str, outcome: Result<(), &CloudError>) {
        let label = match outcome {
            Ok(()) => "ok",
            Err(e) => {
                if e.kind() == ErrorKind::Throttled {
                    self.throttles.fetch_add(1, Ordering::Relaxed);
                }
                e.kind().as_str()
            }
        };
        *lock(&self.calls).entry((action, label)).or_default() += 1;
    }

    /// The guard observer that feeds [`Metrics::record_call`].
    #[must_use]
    pub fn observer(self: &Arc<Self>) -> CallObserver {
        let m = Arc::clone(self);
        Arc::new(move |action: &'static str, _region: &Region, outcome: Result<(), &CloudError>| {
            m.record_call(action, outcome);
        })
    }

    /// Calls so far by (action, outcome).
    #[must_use]
    pub fn calls(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        lock(&self.calls).clone()
    }

    /// Throttling errors seen (all accounts).
    #[must_use]
    pub fn throttles(&self) -> u64 {
        self.throttles.load(Ordering::Relaxed)
    }

    /// Calls seen with this outcome label (`ok`, `throttled`, `quota_exceeded`...), all actions.
    #[must_use]
    pub fn calls_with_outcome(&self, outcome: &str) -> u64 {
        lock(&self.calls).iter().filter(|((_, o), _)| *o == outcome).map(|(_, n)| n).sum()
    }

    /// One audit pass: how many leaks it found and deleted, and whether it completed.
    pub fn record_audit(&self, found: u64, deleted: u64, outcome: &'static str) {
        self.leaks_found.fetch_add(found, Ordering::Relaxed);
        self.leaks_deleted.fetch_add(deleted, Ordering::Relaxed);
        *lock(&self.audits).entry(outcome).or_default() += 1;
    }

    /// A run started.
    pub fn record_run(&self, schedule: &str, kind: &'static str) {
        *lock(&self.runs).entry((schedule.to_owned(), kind)).or_default() += 1;
    }

    /// A due time did not start a run.
    pub fn record_skip(&self, schedule: &str, why: &'static str) {
        *lock(&self.skipped).entry((schedule.to_owned(), why)).or_default() += 1;
    }

    /// A scheduled advisory database update ended (`ok` or `failed`).
    pub fn record_vulndb_update(&self, outcome: &'static str) {
        *lock(&self.vulndb_updates).entry(outcome).or_default() += 1;
    }

    /// Add `n` to a pipeline counter.
    pub fn record_trail(&self, counter: TrailCounter, label: &str, n: u64) {
        if n > 0 {
            *lock(&self.trail).entry((counter.metric().0, label.to_owned())).or_default() += n;
        }
    }

    /// A pipeline counter's value.
    #[must_use]
    pub fn trail(&self, counter: TrailCounter, label: &str) -> u64 {
        lock(&self.trail).get(&(counter.metric().0, label.to_owned())).copied().unwrap_or(0)
    }

    /// An event scan started `seconds` after its first event.
    pub fn record_event_lag(&self, seconds: f64) {
        let mut h = lock(&self.event_lag);
        for (i, le) in LAG_BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// (count, sum of seconds) of the event-scan lags.
    #[must_use]
    pub fn event_lag(&self) -> (u64, f64) {
        let h = lock(&self.event_lag);
        (h.count, h.sum)
    }

    /// A job ended in `state` after `seconds`.
    pub fn record_job(&self, state: &'static str, seconds: f64) {
        let mut d = lock(&self.durations);
        let h = d.entry(state).or_default();
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The exposition of everything, with the scrape-time `gauges`.
    #[must_use]
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        header(&mut out, "agentless_up", "gauge", "1 while the daemon runs.");
        let _ = writeln!(out, "agentless_up 1");
        header(&mut out, "agentless_build_info", "gauge", "The agentless version.");
        let _ = writeln!(out, "agentless_build_info{{version=\"{}\"}} 1", escape(env!("CARGO_PKG_VERSION")));

        header(&mut out, "agentless_jobs", "gauge", "Jobs in the ledger by state.");
        for (state, n) in &gauges.jobs {
            let _ = writeln!(out, "agentless_jobs{{state=\"{}\"}} {n}", escape(state));
        }
        header(&mut out, "agentless_jobs_in_flight", "gauge", "Jobs this process is driving now.");
        let _ = writeln!(out, "agentless_jobs_in_flight {}", gauges.jobs_in_flight);
        header(&mut out, "agentless_job_slots_in_use", "gauge", "Job slots (limits.max_concurrent_jobs) in use.");
        let _ = writeln!(out, "agentless_job_slots_in_use {}", gauges.job_slots_in_use);
        header(&mut out, "agentless_job_slots_waiting", "gauge", "Jobs waiting for a job slot.");
        let _ = writeln!(out, "agentless_job_slots_waiting {}", gauges.job_slots_waiting);

        header(&mut out, "agentless_targets", "gauge", "Targets of all jobs by status (scanned, failed, ...).");
        for (status, n) in &gauges.targets {
            let _ = writeln!(out, "agentless_targets{{status=\"{}\"}} {n}", escape(status));
        }
        header(&mut out, "agentless_targets_scanned_total", "counter", "Targets whose results are stored.");
        let count = |s: &str| gauges.targets.iter().filter(|(k, _)| k == s).map(|(_, n)| n).sum::<u64>();
        let _ = writeln!(out, "agentless_targets_scanned_total {}", count("scanned"));
        header(&mut out, "agentless_targets_failed_total", "counter", "Targets that could not be scanned.");
        let _ = writeln!(out, "agentless_targets_failed_total {}", count("failed"));

        header(
            &mut out,
            "agentless_aws_calls_total",
            "counter",
            "AWS calls by action and outcome (ok or the error kind).",
        );
        for ((action, outcome), n) in lock(&self.calls).iter() {
            let _ = writeln!(out, "agentless_aws_calls_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}");
        }
        header(&mut out, "agentless_aws_throttles_total", "counter", "Throttling errors returned by AWS.");
        let _ = writeln!(out, "agentless_aws_throttles_total {}", self.throttles());

        header(
            &mut out,
            "agentless_resources_alive",
            "gauge",
            "Resources our jobs created and have not deleted, by kind.",
        );
        for (kind, n) in &gauges.resources {
            let _ = writeln!(out, "agentless_resources_alive{{kind=\"{}\"}} {n}", escape(kind));
        }

        header(&mut out, "agentless_leaks_found_total", "counter", "Leaked resources found by the scheduled audit.");
        let _ = writeln!(out, "agentless_leaks_found_total {}", self.leaks_found.load(Ordering::Relaxed));
        header(&mut out, "agentless_leaks_deleted_total", "counter", "Leaked resources the scheduled audit deleted.");
        let _ = writeln!(out, "agentless_leaks_deleted_total {}", self.leaks_deleted.load(Ordering::Relaxed));
        header(&mut out, "agentless_audits_total", "counter", "Scheduled audit passes by outcome.");
        for (outcome, n) in lock(&self.audits).iter() {
            let _ = writeln!(out, "agentless_audits_total{{outcome=\"{outcome}\"}} {n}");
        }

        header(&mut out, "agentless_runs_total", "counter", "Runs started, by schedule and kind.");
        for ((schedule, kind), n) in lock(&self.runs).iter() {
            let _ = writeln!(out, "agentless_runs_total{{schedule=\"{}\",kind=\"{kind}\"}} {n}", escape(schedule));
        }
        header(
            &mut out,
            "agentless_runs_skipped_total",
            "counter",
            "Due times that started no run, by schedule and reason.",
        );
        for ((schedule, why), n) in lock(&self.skipped).iter() {
            let _ =
                writeln!(out, "agentless_runs_skipped_total{{schedule=\"{}\",reason=\"{why}\"}} {n}", escape(schedule));
        }

        let labels =
            |account: &str, region: &str| format!("account=\"{}\",region=\"{}\"", escape(account), escape(region));
        header(
            &mut out,
            "agentless_budget_in_use",
            "gauge",
            "What the dispatcher has handed out, per account, Region and budget.",
        );
        for (account, region, u) in &gauges.budgets {
            let l = labels(account, region);
            for (budget, v) in [
                ("pending_snapshots", u.pending_snapshots as u64),
                ("max_per_volume", u.max_per_volume as u64),
                ("copies", u.copies as u64),
                ("networks", u.networks as u64),
                ("vcpus", u64::from(u.vcpus)),
            ] {
                let _ = writeln!(out, "agentless_budget_in_use{{{l},budget=\"{budget}\"}} {v}");
            }
        }
        header(&mut out, "agentless_budget_refusals_total", "counter", "Times a job was told to wait for a budget.");
        for (account, region, u) in &gauges.budgets {
            let _ = writeln!(out, "agentless_budget_refusals_total{{{}}} {}", labels(account, region), u.refusals);
        }

        header(
            &mut out,
            "agentless_collector_refusals_total",
            "counter",
            "Bundle uploads the collector refused, by reason (unauthenticated, bad_signature, busy, ...).",
        );
        for (reason, n) in &gauges.collector_refusals {
            let _ = writeln!(out, "agentless_collector_refusals_total{{reason=\"{}\"}} {n}", escape(reason));
        }

        {
            let trail = lock(&self.trail);
            for c in TrailCounter::ALL {
                let (name, label, help) = c.metric();
                header(&mut out, name, "counter", help);
                for ((_, value), n) in trail.iter().filter(|((m, _), _)| *m == name) {
                    let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(value));
                }
            }
        }
        header(
            &mut out,
            "agentless_event_scan_lag_seconds",
            "histogram",
            "From an event's CloudTrail time to its scan's job, in seconds.",
        );
        {
            let h = lock(&self.event_lag);
            for (le, n) in LAG_BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(out, "agentless_event_scan_lag_seconds_bucket{{le=\"{le}\"}} {n}");
            }
            let _ = writeln!(out, "agentless_event_scan_lag_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "agentless_event_scan_lag_seconds_sum {}", h.sum);
            let _ = writeln!(out, "agentless_event_scan_lag_seconds_count {}", h.count);
        }

        header(&mut out, "agentless_scan_duration_seconds", "histogram", "Duration of finished jobs, by end state.");
        for (state, h) in lock(&self.durations).iter() {
            for (le, n) in DURATION_BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(out, "agentless_scan_duration_seconds_bucket{{state=\"{state}\",le=\"{le}\"}} {n}");
            }
            let _ =
                writeln!(out, "agentless_scan_duration_seconds_bucket{{state=\"{state}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "agentless_scan_duration_seconds_sum{{state=\"{state}\"}} {}", h.sum);
            let _ = writeln!(out, "agentless_scan_duration_seconds_count{{state=\"{state}\"}} {}", h.count);
        }
        self.render_vulns(&mut out, gauges.vulns.as_ref());
        out
    }

    fn render_vulns(&self, out: &mut String, vulns: Option<&VulnGauges>) {
        header(out, "agentless_vulndb_updates_total", "counter", "Scheduled advisory database updates by outcome.");
        for (outcome, n) in lock(&self.vulndb_updates).iter() {
            let _ = writeln!(out, "agentless_vulndb_updates_total{{outcome=\"{outcome}\"}} {n}");
        }
        let Some(v) = vulns else { return };
        header(
            out,
            "agentless_vuln_findings",
            "gauge",
            "Vulnerability findings (low urgency hidden) of each instance's newest results, by severity and status.",
        );
        for ((severity, status), n) in &v.fleet.findings {
            let _ = writeln!(
                out,
                "agentless_vuln_findings{{severity=\"{}\",status=\"{}\"}} {n}",
                escape(severity),
                escape(status)
            );
        }
        header(
            out,
            "agentless_vuln_volumes_assessed",
            "gauge",
            "Volumes whose packages were matched against advisories.",
        );
        let _ = writeln!(out, "agentless_vuln_volumes_assessed {}", v.fleet.volumes_assessed);
        header(out, "agentless_vuln_volumes_not_assessed", "gauge", "Volumes not assessed, by reason.");
        for (reason, n) in &v.fleet.not_assessed {
            let _ = writeln!(out, "agentless_vuln_volumes_not_assessed{{reason=\"{}\"}} {n}", reason.as_str());
        }
        let now = jiff::Timestamp::now();
        let age = |t: &jiff::Timestamp| now.duration_since(*t).as_secs().max(0);
        header(
            out,
            "agentless_vulndb_age_seconds",
            "gauge",
            "Seconds since the advisory database was last imported or updated (absent: no database).",
        );
        if let Some(newest) = v.sources.iter().filter_map(|(_, i, _)| i.as_ref()).max() {
            let _ = writeln!(out, "agentless_vulndb_age_seconds {}", age(newest));
        }
        header(
            out,
            "agentless_vulndb_source_data_age_seconds",
            "gauge",
            "Seconds since the newest record of each advisory source was modified.",
        );
        for (name, _, newest) in &v.sources {
            if let Some(t) = newest {
                let _ =
                    writeln!(out, "agentless_vulndb_source_data_age_seconds{{source=\"{}\"}} {}", escape(name), age(t));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vulnerability_gauges_are_exported() {
        use crate::vuln::assess::NotAssessedKind;
        let m = Metrics::new();
        m.record_vulndb_update("failed");
        let mut fleet = crate::vuln::fleet::FleetCounts::default();
        fleet.findings.insert(("high".into(), "fixed".into()), 3);
        fleet.volumes_assessed = 2;
        fleet.not_assessed.insert(NotAssessedKind::NoSource, 4);
        let hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let g = Gauges {
            vulns: Some(VulnGauges { fleet, sources: vec![("a\"b".into(), Some(hour_ago), Some(hour_ago))] }),
            ..Gauges::default()
        };
        let text = m.render(&g);
        assert!(text.contains("agentless_vulndb_updates_total{outcome=\"failed\"} 1\n"), "{text}");
        assert!(text.contains("agentless_vuln_findings{severity=\"high\",status=\"fixed\"} 3\n"), "{text}");
        assert!(text.contains("agentless_vuln_volumes_assessed 2\n"), "{text}");
        assert!(text.contains("agentless_vuln_volumes_not_assessed{reason=\"no-source\"} 4\n"), "{text}");
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("agentless_vulndb_age_seconds "))
            .and_then(|v| v.parse::<i64>().ok())
            .expect("age");
        assert!((3600..3700).contains(&age), "{age}");
        assert!(text.contains("agentless_vulndb_source_data_age_seconds{source=\"a\\\"b\"} "), "{text}");
        // Without computed gauges only the counter is there.
        let bare = m.render(&Gauges::default());
        assert!(!bare.contains("agentless_vuln_findings"), "{bare}");
    }

    #[test]
    fn exposition_has_types_and_escaped_labels() {
        let m = Metrics::new();
        m.record_run("night\"ly", "scheduled");
        m.record_job("Done", 42.0);
        let text = m.render(&Gauges {
            jobs: vec![("Done".into(), 3)],
            collector_refusals: vec![("unauthenticated".into(), 2)],
            ..Gauges::default()
        });
        assert!(text.contains("agentless_collector_refusals_total{reason=\"unauthenticated\"} 2\n"), "{text}");
        assert!(text.contains("# TYPE agentless_jobs gauge\nagentless_jobs{state=\"Done\"} 3\n"), "{text}");
        assert!(text.contains("agentless_runs_total{schedule=\"night\\\"ly\",kind=\"scheduled\"} 1"), "{text}");
        assert!(text.contains("agentless_scan_duration_seconds_bucket{state=\"Done\",le=\"30\"} 0"), "{text}");
        assert!(text.contains("agentless_scan_duration_seconds_bucket{state=\"Done\",le=\"60\"} 1"), "{text}");
        assert!(text.contains("agentless_scan_duration_seconds_count{state=\"Done\"} 1"), "{text}");
        // Every sample line's metric has a TYPE line before it.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let base = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {base} ")), "{line}");
        }
    }
}
