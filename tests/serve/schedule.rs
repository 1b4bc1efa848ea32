//! When schedules fire, on tokio's paused clock (a virtual week takes milliseconds): due times in
//! a time zone, across a DST change (the spring-forward gap and the fall-back overlap), the
//! missed-run rule on start, and no second run of a schedule while the first is going.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentless::ledger::{Clock, Ledger, RunKind, RunRecord};
use agentless::schedule::config::MissedRuns;
use agentless::schedule::cron::CronSchedule;
use agentless::schedule::timer::{Launcher, Skip, TimedSchedule, Timer, tokio_clock};
use jiff::Timestamp;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// A run started: schedule, due time, kind, when it started.
type Fired = (String, Timestamp, RunKind, Timestamp);

/// Records what fired; finishes each run after `run_for` (never, with `None`).
#[derive(Clone)]
struct Recorder {
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
    fired: Arc<Mutex<Vec<Fired>>>,
    skipped: Arc<Mutex<Vec<(String, Timestamp, Skip)>>>,
    run_for: Option<Duration>,
}

impl Recorder {
    fn new(ledger: Arc<Mutex<Ledger>>, clock: Clock, run_for: Option<Duration>) -> Recorder {
        Recorder {
            ledger,
            clock,
            fired: Arc::new(Mutex::new(Vec::new())),
            skipped: Arc::new(Mutex::new(Vec::new())),
            run_for,
        }
    }

    fn fired(&self) -> Vec<Fired> {
        self.fired.lock().expect("lock").clone()
    }

    fn skipped(&self) -> Vec<(String, Timestamp, Skip)> {
        self.skipped.lock().expect("lock").clone()
    }
}

impl Launcher for Recorder {
    fn start(&self, run: &RunRecord) {
        self.fired.lock().expect("lock").push((run.schedule.clone(), run.due_at, run.kind, (self.clock)()));
        if let Some(d) = self.run_for {
            let (ledger, id) = (Arc::clone(&self.ledger), run.id);
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                ledger.lock().expect("lock").finish_run(id).expect("finish");
            });
        }
    }
    fn skipped(&self, schedule: &str, due: Timestamp, why: Skip) {
        self.skipped.lock().expect("lock").push((schedule.to_owned(), due, why));
    }
}

fn schedule(name: &str, cron: &str, tz: &str, missed: MissedRuns) -> TimedSchedule {
    TimedSchedule { name: name.into(), cron: CronSchedule::new(cron, tz).expect("cron"), missed }
}

fn ledger(clock: &Clock) -> Arc<Mutex<Ledger>> {
    Arc::new(Mutex::new(Ledger::open_in_memory().expect("ledger").with_clock(Arc::clone(clock))))
}

/// Run `timer` for `span` of virtual time.
async fn run_for(timer: Timer, launcher: Recorder, span: Duration) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { timer.run(&launcher, rx).await });
    tokio::time::sleep(span).await;
    tx.send(true).expect("stop");
    task.await.expect("join").expect("timer");
}

#[tokio::test(start_paused = true)]
async fn schedules_fire_at_their_local_times_across_the_us_dst_change() {
    // Friday 2026-03-06 00:00Z; US DST starts Sunday 2026-03-08 02:00 local.
    let clock = tokio_clock(ts("2026-03-06T00:00:00Z"));
    let l = ledger(&clock);
    let rec = Recorder::new(Arc::clone(&l), Arc::clone(&clock), Some(Duration::from_secs(60)));
    let timer = Timer::new(
        vec![
            schedule("paris-nightly", "0 2 * * *", "Europe/Paris", MissedRuns::RunOnce),
            schedule("ny-weekdays", "30 9 * * 1-5", "America/New_York", MissedRuns::RunOnce),
            schedule("ny-gap", "30 2 * * *", "America/New_York", MissedRuns::RunOnce),
        ],
        Arc::clone(&l),
        Arc::clone(&clock),
    );
    run_for(timer, rec.clone(), Duration::from_secs(4 * 86_400)).await;
    let by = |name: &str| -> Vec<Timestamp> { rec.fired().into_iter().filter(|f| f.0 == name).map(|f| f.1).collect() };
    // Paris is UTC+1 all along (its DST starts 2026-03-29).
    assert_eq!(
        by("paris-nightly"),
        [
            ts("2026-03-06T01:00:00Z"),
            ts("2026-03-07T01:00:00Z"),
            ts("2026-03-08T01:00:00Z"),
            ts("2026-03-09T01:00:00Z")
        ]
    );
    // 09:30 EST is 14:30Z; from Monday 09:30 EDT is 13:30Z; no run on the weekend.
    assert_eq!(by("ny-weekdays"), [ts("2026-03-06T14:30:00Z"), ts("2026-03-09T13:30:00Z")]);
    // 02:30 does not exist on 2026-03-08: the fixed-time job runs once, right after the gap
    // (03:00 EDT = 07:00Z); the other days at 02:30 local.
    assert_eq!(
        by("ny-gap"),
        [
            ts("2026-03-06T07:30:00Z"),
            ts("2026-03-07T07:30:00Z"),
            ts("2026-03-08T07:00:00Z"),
            ts("2026-03-09T06:30:00Z")
        ]
    );
    // Each fired at its due time on the (virtual) clock, not later.
    for (name, due, kind, at) in rec.fired() {
        assert_eq!(kind, RunKind::Scheduled, "{name}");
        assert!(
            at >= due && at.duration_since(due) < jiff::SignedDuration::from_secs(1),
            "{name}: due {due}, fired {at}"
        );
    }
    assert!(rec.skipped().is_empty(), "{:?}", rec.skipped());
}

#[tokio::test(start_paused = true)]
async fn a_fixed_time_in_the_repeated_hour_runs_once_and_a_wildcard_runs_in_both_passes() {
    // US DST ends Sunday 2026-11-01 02:00 EDT -> 01:00 EST: 01:00-01:59 happens twice.
    let clock = tokio_clock(ts("2026-11-01T04:00:00Z"));
    let l = ledger(&clock);
    let rec = Recorder::new(Arc::clone(&l), Arc::clone(&clock), Some(Duration::from_secs(1)));
    let timer = Timer::new(
        vec![
            schedule("fixed", "30 1 * * *", "America/New_York", MissedRuns::RunOnce),
            schedule("every-30-min", "*/30 1 * * *", "America/New_York", MissedRuns::RunOnce),
        ],
        Arc::clone(&l),
        Arc::clone(&clock),
    );
    run_for(timer, rec.clone(), Duration::from_secs(6 * 3600)).await;
    let by = |name: &str| -> Vec<Timestamp> { rec.fired().into_iter().filter(|f| f.0 == name).map(|f| f.1).collect() };
    // 01:30 EDT = 05:30Z only (not again at 01:30 EST = 06:30Z).
    assert_eq!(by("fixed"), [ts("2026-11-01T05:30:00Z")]);
    // 01:00 and 01:30 in both passes: EDT (05:00Z, 05:30Z) then EST (06:00Z, 06:30Z).
    assert_eq!(
        by("every-30-min"),
        [
            ts("2026-11-01T05:00:00Z"),
            ts("2026-11-01T05:30:00Z"),
            ts("2026-11-01T06:00:00Z"),
            ts("2026-11-01T06:30:00Z")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_missed_while_down_runs_once_on_start_unless_skipped() {
    let clock = tokio_clock(ts("2026-05-10T12:00:00Z"));
    let l = ledger(&clock);
    {
        let mut g = l.lock().expect("lock");
        // Both schedules were known since May 1st; their last runs were on May 5th.
        for name in ["hourly-once", "hourly-skip"] {
            g.ensure_schedule(name, ts("2026-05-01T00:00:00Z")).expect("schedule");
            let run = g.create_run(name, RunKind::Scheduled, ts("2026-05-05T10:00:00Z")).expect("run").expect("new");
            g.finish_run(run).expect("finish");
        }
    }
    let rec = Recorder::new(Arc::clone(&l), Arc::clone(&clock), Some(Duration::from_secs(60)));
    let timer = Timer::new(
        vec![
            schedule("hourly-once", "0 * * * *", "UTC", MissedRuns::RunOnce),
            schedule("hourly-skip", "0 * * * *", "UTC", MissedRuns::Skip),
            // Never seen before: nothing was missed.
            schedule("new", "0 * * * *", "UTC", MissedRuns::RunOnce),
        ],
        Arc::clone(&l),
        Arc::clone(&clock),
    );
    timer.catch_up(&rec).expect("catch up");
    // About 120 due times passed: one run, for the latest, marked missed.
    let fired = rec.fired();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (fired[0].0.as_str(), fired[0].1, fired[0].2),
        ("hourly-once", ts("2026-05-10T12:00:00Z"), RunKind::Missed)
    );
    assert_eq!(rec.skipped(), [("hourly-skip".to_owned(), ts("2026-05-10T12:00:00Z"), Skip::MissedSkipped)]);
    // A second start at the same time does not run it again.
    timer.catch_up(&rec).expect("catch up again");
    assert_eq!(rec.fired().len(), 1);
    // Then the timer goes on at the next due time (13:00), for all three.
    run_for(timer, rec.clone(), Duration::from_secs(3600 + 30)).await;
    let later: Vec<(String, Timestamp)> = rec.fired().into_iter().skip(1).map(|f| (f.0, f.1)).collect();
    assert_eq!(later.len(), 3, "{later:?}");
    assert!(later.iter().all(|(_, due)| *due == ts("2026-05-10T13:00:00Z")), "{later:?}");
}

#[tokio::test(start_paused = true)]
async fn a_schedule_never_overlaps_its_own_run() {
    let clock = tokio_clock(ts("2026-05-10T00:00:30Z"));
    let l = ledger(&clock);
    // Each run takes 150 s; the schedule is due every minute.
    let rec = Recorder::new(Arc::clone(&l), Arc::clone(&clock), Some(Duration::from_secs(150)));
    let timer = Timer::new(
        vec![schedule("every-minute", "* * * * *", "UTC", MissedRuns::RunOnce)],
        Arc::clone(&l),
        Arc::clone(&clock),
    );
    run_for(timer, rec.clone(), Duration::from_secs(10 * 60)).await;
    let minutes =
        |v: Vec<Timestamp>| -> Vec<i8> { v.iter().map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).minute()).collect() };
    // Run at :01 ends at :03:30, so :02 and :03 are skipped; :04 runs; and so on.
    assert_eq!(minutes(rec.fired().into_iter().map(|f| f.1).collect()), [1, 4, 7, 10]);
    let skipped = rec.skipped();
    assert!(skipped.iter().all(|s| s.2 == Skip::Overlap), "{skipped:?}");
    assert_eq!(minutes(skipped.into_iter().map(|s| s.1).collect()), [2, 3, 5, 6, 8, 9]);
    // In the ledger: the runs never overlap.
    let runs = l.lock().expect("lock").runs_of("every-minute").expect("runs");
    for w in runs.windows(2) {
        let end = w[0].finished_at.expect("finished");
        assert!(end <= w[1].started_at, "{:?} overlaps {:?}", w[0], w[1]);
    }
}
