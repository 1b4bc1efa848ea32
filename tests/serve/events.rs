//! The daemon on the simulated account's CloudTrail pipeline (issue 19), on the paused tokio
//! clock: the sim writes every call made against it into log files after its delivery delay,
//! notifies the queue of each, and redelivers every message after its visibility timeout (no
//! `DeleteMessage`), here also twice per notification (`duplicate_every = 1`) and in reverse order
//! within each delivery (`reorder = true`).
//!
//! - An instance launched while the daemon runs is scanned once, within the delay, though its
//!   log object is delivered at least four times; afterwards the daemon's own calls of the whole
//!   scan (snapshots, network, scanners, teardown) are all matched: no alert.
//! - A call made with our credentials from another client raises exactly one alert naming it.
//! - A burst of 1,000 events on 100 instances gives 100 scans, each instance once, the hourly
//!   budget deferring what is over it to the next hour.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::{in_process_config, sim_daemon};
use crate::util::{policies, scan_policy, sim_guard_with};
use agentless::api::metrics::{Metrics, TrailCounter};
use agentless::cloud::ops::{DescribeInput, Empty};
use agentless::cloud::sim::fleet::FleetInstance;
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::{AccountId, GuardRules, InstanceId, Region};
use agentless::ledger::{JobState, Ledger, TargetStatus};

const ACCOUNT: &str = "111122223333";
const BUCKET: &str = "aws-cloudtrail-logs-111122223333-agentless";
const QUEUE: &str = "aliyun-sasc-log-queue";

/// A running instance in us-east-1 and the pipeline there: a delivery a minute after the calls,
/// every notification enqueued twice, messages visible again 30 s after each receive.
fn fleet(instances: usize) -> String {
    let mut f = format!(
        r#"
seed = 19
[latencies]
snapshot_base_ms = 2000
snapshot_ms_per_used_gib = 100
instance_boot_ms = 3000
instance_shutdown_ms = 2000
[[accounts]]
id = "{ACCOUNT}"
user = "agentless-scanner"
regions = ["us-east-1"]
[accounts.pipeline]
region = "us-east-1"
bucket = "{BUCKET}"
queue = "{QUEUE}"
delivery_delay_ms = 60000
visibility_timeout_ms = 30000
duplicate_every = 1
reorder = true
"#
    );
    for n in 0..instances {
        f.push_str(&format!(
            "[[accounts.instances]]\nregion = \"us-east-1\"\ninstance_type = \"t3.small\"\ntags = {{ Name = \"old-{n}\" }}\n[[accounts.instances.volumes]]\nsize_gib = 8\nused_gib = 1\n"
        ));
    }
    f
}

/// The daemon's tables: the account's pipeline, a 20 s long poll, event scans 30 s after the
/// first event within `budget` an hour.
fn tables(budget: u32) -> String {
    format!(
        r#"
[accounts.trail]
region = "us-east-1"
queue = "{QUEUE}"
bucket = "{BUCKET}"

[scanner]
poll = "1s"

[trail]
wait_seconds = 20

[events]
delay = "30s"
budget_per_hour = {budget}
"#
    )
}

struct Setup {
    world: SimCloud,
    running: super::SimDaemon,
    metrics: Arc<Metrics>,
    east: Region,
    _dir: tempfile::TempDir,
}

fn start(instances: usize, budget: u32) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let world = SimCloud::in_memory(&Fleet::parse(&fleet(instances)).expect("fleet")).expect("sim");
    let east: Region = "us-east-1".parse().expect("region");
    world.install_scanner_image(std::slice::from_ref(&east)).expect("image");
    let account: AccountId = ACCOUNT.parse().expect("account");
    let queue_arn = format!("arn:aws:sqs:us-east-1:{account}:{QUEUE}");
    let reader = agentless::policy::trail_reader_policy(&queue_arn, BUCKET).expect("reader policy");
    let guard = sim_guard_with(&world, vec![scan_policy(), reader], GuardRules::default()).without_trace();
    let metrics = Arc::new(Metrics::new());
    let config = in_process_config(r#"["us-east-1"]"#, &tables(budget));
    let running = sim_daemon(&world, guard, config, dir.path(), vec![east.clone()], Arc::clone(&metrics));
    Setup { world, running, metrics, east, _dir: dir }
}

impl Setup {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.running.ledger.lock().expect("ledger")
    }

    /// Wait on the virtual clock until `f` holds (at most `limit`).
    async fn until(&self, what: &str, limit: Duration, mut f: impl FnMut(&Setup) -> bool) {
        let started = tokio::time::Instant::now();
        while !f(self) {
            assert!(started.elapsed() < limit, "{what}: not after {limit:?} of virtual time");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The instances of the jobs of the `events` schedule, each with how many times a job had it,
    /// and whether every such job is over.
    fn event_targets(&self) -> (BTreeMap<String, usize>, bool) {
        let l = self.ledger();
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        let mut over = true;
        for j in l.jobs().expect("jobs") {
            if l.run_of_job(&j.id).ok().flatten().is_none_or(|(_, s)| s != "events") {
                continue;
            }
            over &= j.state.is_terminal();
            for t in l.targets(&j.id).expect("targets") {
                *out.entry(t.instance.to_string()).or_default() += 1;
            }
        }
        (out, over)
    }
}

/// A customer's launch in us-east-1 with one volume.
fn launch(world: &SimCloud, name: &str) -> InstanceId {
    let spec: FleetInstance = toml::from_str(&format!(
        "region = \"us-east-1\"\ninstance_type = \"t3.small\"\ntags = {{ Name = \"{name}\" }}\n[[volumes]]\nsize_gib = 8\nused_gib = 1\n"
    ))
    .expect("instance spec");
    world.setup(|s| s.launch(&spec)).expect("launch")
}

#[tokio::test(start_paused = true)]
async fn an_instance_launched_while_the_daemon_runs_is_scanned_once_and_our_own_calls_raise_nothing() {
    let s = start(1, 60);
    let launched_at = s.world.now_ms();
    let new = launch(&s.world, "new-web");

    // Scanned: the delivery delay (1 min) plus the event delay (30 s) plus a receive and a tick.
    s.until("the event scan of the new instance", Duration::from_secs(600), |s| {
        let (targets, over) = s.event_targets();
        !targets.is_empty() && over
    })
    .await;
    let started = s.world.now_ms() - launched_at;
    let (targets, _) = s.event_targets();
    assert_eq!(targets, BTreeMap::from([(new.to_string(), 1)]), "the new instance, once");
    {
        let l = s.ledger();
        let jobs = l.jobs().expect("jobs");
        let job = jobs.iter().find(|j| l.run_of_job(&j.id).ok().flatten().is_some_and(|(_, n)| n == "events"));
        let job = job.expect("the events job");
        assert_eq!(job.state, JobState::Done, "{:?}", job.error);
        let t = l.targets(&job.id).expect("targets");
        assert_eq!(t[0].status, TargetStatus::Scanned, "{:?}", t[0].error);
    }
    assert!(started < 300_000, "scanned {started} ms after the launch");
    let (lags, lag_sum) = s.metrics.event_lag();
    assert_eq!(lags, 1);
    assert!((60.0..200.0).contains(&lag_sum), "lag from the event to the scan: {lag_sum} s");

    // The launch's log object keeps coming back (twice per notification, again after each
    // visibility timeout): read once, delivered at least four times, never scanned again.
    s.until("four deliveries of the log objects", Duration::from_secs(600), |s| {
        s.metrics.trail(TrailCounter::Objects, "duplicate") >= 3
    })
    .await;
    assert_eq!(s.event_targets().0, BTreeMap::from([(new.to_string(), 1)]));
    assert!(s.metrics.trail(TrailCounter::EventScans, "started") == 1);

    // Wait until the scan's own calls are delivered and read (teardown included): every record of
    // ours matched one of our calls, no alert.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let ours = s.metrics.trail(TrailCounter::Records, "ours");
    assert!(ours >= 30, "{ours} records of ours read");
    let alerts = s.ledger().trail_alerts(10).expect("alerts");
    assert!(alerts.is_empty(), "{alerts:#?}");
    assert_eq!(s.metrics.trail(TrailCounter::Alerts, "unrecognized-call"), 0);
    assert_eq!(s.metrics.trail(TrailCounter::Messages, "refused"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_call_with_our_credentials_from_another_client_raises_exactly_one_alert() {
    let s = start(1, 60);
    // Our access key, used from another address with another tool, outside the daemon.
    let leaked = s.world.with_client("203.0.113.66", "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64");
    let guard = sim_guard_with(&leaked, policies(&[]), GuardRules::default());
    guard.describe_vpcs(&s.east, &DescribeInput::default()).await.expect("describe");
    let regions = guard.describe_regions(&s.east, &Empty).await.expect("regions");
    assert!(!regions.is_empty());

    // Delivered after a minute, then again and again: two alerts, one per call, raised once.
    s.until("the alerts", Duration::from_secs(600), |s| s.metrics.trail(TrailCounter::Objects, "read") > 0).await;
    tokio::time::sleep(Duration::from_secs(240)).await;
    let alerts = s.ledger().trail_alerts(10).expect("alerts");
    let names: BTreeSet<&str> = alerts.iter().map(|a| a.event_name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["DescribeRegions", "DescribeVpcs"]), "{alerts:#?}");
    assert_eq!(alerts.len(), 2, "one alert per call: {alerts:#?}");
    for a in &alerts {
        assert_eq!(a.kind, "unrecognized-call");
        assert_eq!(a.principal.as_deref(), Some("arn:aws:iam::111122223333:user/agentless-scanner"));
        assert_eq!(a.source_ip.as_deref(), Some("203.0.113.66"));
        assert!(a.user_agent.as_deref().is_some_and(|u| u.starts_with("aws-cli/2.15.0")), "{a:?}");
        assert!(a.detail.contains("lacks our mark"), "{}", a.detail);
    }
    assert_eq!(s.metrics.trail(TrailCounter::Alerts, "unrecognized-call"), 2);
    assert!(s.metrics.trail(TrailCounter::Objects, "duplicate") > 0, "redelivered, and not alerted again");
    // No scan: reads trigger nothing.
    assert!(s.event_targets().0.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_1000_events_on_100_instances_gives_100_scans_within_the_budget() {
    let s = start(100, 60);
    let ids: Vec<String> = s.world.inspect(|w| {
        let account: AccountId = ACCOUNT.parse().expect("account");
        w.accounts[&account].regions.values().flat_map(|r| r.instances.keys().map(ToString::to_string)).collect()
    });
    assert_eq!(ids.len(), 100);
    // Ten events per instance, of every kind, by the customer's admin.
    let east = s.east.clone();
    s.world
        .setup(|setup| {
            for round in 0..10 {
                for id in &ids {
                    let items = serde_json::json!({"items": [{"instanceId": id}]});
                    match round % 3 {
                        0 => setup.record(&east, "StartInstances", "ops-admin", serde_json::json!({"instancesSet": items}), serde_json::json!({"instancesSet": items}))?,
                        1 => setup.record(&east, "AttachVolume", "ops-admin", serde_json::json!({"instanceId": id, "volumeId": "vol-0123456789abcdef0", "device": "/dev/sdg"}), serde_json::json!({"instanceId": id}))?,
                        _ => setup.record(&east, "ModifyInstanceAttribute", "ops-admin", serde_json::json!({"instanceId": id, "userData": "<sensitiveDataRemoved>"}), serde_json::json!({"_return": true}))?,
                    }
                }
            }
            Ok(())
        })
        .expect("events");

    // The first 60 start within the hour's budget; the other 40 wait for the next hour.
    s.until("the first event scans", Duration::from_secs(900), |s| s.event_targets().0.len() == 60).await;
    assert!(s.metrics.trail(TrailCounter::EventScans, "deferred_budget") >= 40);
    let events: u64 = ["started", "user_data_changed", "volume_attached"]
        .iter()
        .map(|k| s.metrics.trail(TrailCounter::Events, k))
        .sum();
    assert_eq!(events, 1000, "every event read once");
    assert_eq!(s.metrics.trail(TrailCounter::EventScans, "queued"), 100);
    assert_eq!(s.metrics.trail(TrailCounter::EventScans, "coalesced"), 900);
    s.until("all event scans over", Duration::from_secs(3 * 3600), |s| {
        let (t, over) = s.event_targets();
        t.len() == 100 && over
    })
    .await;
    let (targets, _) = s.event_targets();
    let want: BTreeMap<String, usize> = ids.iter().map(|i| (i.clone(), 1)).collect();
    assert_eq!(targets, want, "each instance scanned once");
    assert_eq!(s.ledger().pending_event_scans().expect("pending"), 0);
}

/// What the reader refuses before reading anything: a notification of another bucket, and a log
/// object of 1 GB by its notification's size (never fetched: the object does not even exist, and
/// a fetch would have said so); a digest file is not a log file. Each is recorded so no
/// redelivery reads it again.
#[tokio::test(start_paused = true)]
async fn hostile_notifications_are_refused_before_anything_is_read() {
    use agentless::cloud::ops::QueueMessage;
    use agentless::events::reader::{MessageOutcome, ObjectOutcome};

    let s = start(1, 60);
    let pipeline = s.running.daemon.pipelines().into_iter().next().expect("the account's pipeline");
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/07/111122223333_CloudTrail_us-east-1_20261207T1000Z_abcdefghijklmnop.json.gz";
    let message = |bucket: &str, key: &str, size: u64| {
        QueueMessage {
        message_id: "m-1".into(),
        body: serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-12-07T10:05:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                   "object": {"key": key, "size": size, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "00A1"}}
        }]})
        .to_string(),
        receive_count: Some(1),
        sent_at_ms: None,
    }
    };
    match pipeline.handle(&message("someone-elses-bucket", key, 100)).await {
        MessageOutcome::Refused(why) => {
            assert!(why.contains("someone-elses-bucket") && why.contains(BUCKET), "{why}")
        }
        other => panic!("another bucket's notification was read: {other:?}"),
    }
    let huge = message(BUCKET, key, 1 << 30);
    match pipeline.handle(&huge).await {
        MessageOutcome::Objects(o) => {
            assert_eq!(o.len(), 1);
            match &o[0].1 {
                ObjectOutcome::Refused(why) => {
                    assert!(why.contains("1073741824 bytes by its notification"), "{why}")
                }
                other => panic!("a 1 GB object was not refused by size: {other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // Delivered again: recorded, not looked at again.
    match pipeline.handle(&huge).await {
        MessageOutcome::Objects(o) => assert_eq!(o[0].1, ObjectOutcome::Duplicate),
        other => panic!("{other:?}"),
    }
    let digest = key.replace("/CloudTrail/", "/CloudTrail-Digest/");
    match pipeline.handle(&message(BUCKET, &digest, 100)).await {
        MessageOutcome::Objects(o) => assert_eq!(o[0].1, ObjectOutcome::NotLogFile),
        other => panic!("{other:?}"),
    }
    match pipeline.handle(&QueueMessage { body: "{\"Records\": [".into(), ..message(BUCKET, key, 1) }).await {
        MessageOutcome::Refused(why) => assert!(why.contains("JSON") || why.contains("json"), "{why}"),
        other => panic!("{other:?}"),
    }
}
