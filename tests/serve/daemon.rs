//! The daemon end to end: `agentless serve` started on the simulated account with the demo
//! fleet scans it on schedule, serves the results and metrics, is killed (SIGKILL) mid-scan and
//! restarted, and ends with every job finished and no resource left.
//!
//! The schedules are one-shot cron expressions (seconds, minute, hour, day, month) computed from
//! the test's start: `first` is due 6 s in, while the daemon runs; `second` is due while the
//! daemon is dead, so the restart runs it once as a missed run. Then nothing is due for a year,
//! and SIGTERM finds no work to start.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use agentless::ledger::{JobState, Ledger, RunKind};

use super::{SERVE_TOKEN as TOKEN, free_port, http, jobs, kill, log_of, start, try_http, wait_for, write_sim_config};
use crate::job::leftovers;

/// A one-shot cron expression (with seconds) for `t`, in UTC.
fn at(t: jiff::Timestamp) -> String {
    let z = t.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} {} {} {} *", z.second(), z.minute(), z.hour(), z.day(), z.month())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_scan_resumes_and_ends_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // Whole seconds: what the cron expressions can say.
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
    let first = now + jiff::SignedDuration::from_secs(6);
    let second = now + jiff::SignedDuration::from_secs(24);
    let config = write_sim_config(
        dir.path(),
        addr,
        r#"["us-east-1", "us-west-2"]"#,
        &format!(
            r#"
[[schedules]]
name = "first"
cron = "{first_cron}"
timezone = "UTC"

[[schedules]]
name = "second"
cron = "{second_cron}"
timezone = "UTC"
regions = ["us-east-1"]
[schedules.targets]
tags = {{ env = "prod" }}

[audit]
cron = "*/10 * * * * *"
delete = true
grace = "0"

[daemon]
missed_runs = "run-once"
shutdown_deadline = "90s"
"#,
            first_cron = at(first),
            second_cron = at(second),
        ),
    );
    let started = Instant::now();
    let log1 = dir.path().join("serve-1.log");
    let mut daemon = start(&config, &data, &log1);

    // Up, and refusing requests without the token.
    wait_for("the API", Duration::from_secs(60), &log1, async || {
        try_http(addr, "GET", "/healthz", None, None).await.ok()
    })
    .await;
    assert_eq!(http(addr, "GET", "/v1/jobs", None, None).await.status, 401);

    // The first schedule fires at its time; kill the daemon while its us-east-1 job is mid-scan.
    // Scanning: its scanners are running (booting takes 2 s in the demo fleet), its snapshots,
    // network and grants exist.
    let mid = [JobState::Launching, JobState::Scanning];
    let victim = wait_for("a job mid-scan", Duration::from_secs(60), &log1, async || {
        let jobs = jobs(addr).await?;
        jobs.iter().find(|j| j["region"] == "us-east-1" && mid.iter().any(|s| j["state"] == s.as_str())).map(|j| {
            (j["id"].as_str().unwrap_or_default().to_owned(), j["state"].as_str().unwrap_or_default().to_owned())
        })
    })
    .await;
    let killed_after = started.elapsed();
    kill(&mut daemon, "-KILL");
    let status = daemon.wait().expect("wait");
    assert_eq!(status.signal(), Some(9));
    let fired_at = jiff::Timestamp::now();
    assert!(fired_at >= first, "the first schedule fired before its time");
    {
        let l = Ledger::open(&data).expect("ledger");
        let state = l.job(&victim.0.parse().expect("job id")).expect("job").expect("known").state;
        assert!(!state.is_terminal(), "the job was killed mid-scan ({} seen, {state} in the ledger)", victim.1);
    }

    // Dead while the second schedule is due.
    while jiff::Timestamp::now() < second + jiff::SignedDuration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log2 = dir.path().join("serve-2.log");
    let restarted_after = started.elapsed();
    let mut daemon = start(&config, &data, &log2);
    let all_done = wait_for("every job to finish", Duration::from_secs(180), &log2, async || {
        let jobs = jobs(addr).await?;
        let second_ran = jobs.iter().any(|j| j["schedule"] == "second");
        (second_ran && jobs.iter().all(|j| j["state"] == "Done")).then_some(jobs)
    })
    .await;
    assert!(all_done.iter().any(|j| j["id"] == victim.0.as_str()), "{all_done:?}");
    let done_after = started.elapsed();

    // The results of the demo web server are served.
    let l = Ledger::open(&data).expect("ledger");
    let victim_id = victim.0.parse().expect("job id");
    let web = l.targets(&victim_id).expect("targets").into_iter().map(|t| t.instance).next().expect("a target");
    drop(l);
    let r = http(addr, "GET", &format!("/v1/instances/{web}/latest"), Some(TOKEN), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let latest = r.json();
    let volumes = latest["volumes"].as_array().expect("volumes");
    assert!(!volumes.is_empty(), "{latest}");
    assert!(
        volumes.iter().any(|v| v["sbom"]["components"].as_array().is_some_and(|c| !c.is_empty())),
        "an SBOM with components: {latest}"
    );
    let m = http(addr, "GET", "/metrics", Some(TOKEN), None).await;
    assert_eq!(m.status, 200);
    for want in [
        "agentless_jobs{state=\"Done\"} ",
        "agentless_targets_scanned_total ",
        "agentless_aws_calls_total{action=\"CreateSnapshots\",outcome=\"ok\"} ",
    ] {
        assert!(m.body.contains(want), "metrics lack {want:?}:\n{}", m.body);
    }
    assert!(m.body.contains("agentless_runs_total{schedule=\"second\",kind=\"missed\"} 1"), "{}", m.body);
    assert!(m.body.contains("agentless_aws_throttles_total 0"), "{}", m.body);

    // SIGTERM: nothing in flight, so it stops at once.
    kill(&mut daemon, "-TERM");
    let exited = Instant::now();
    let status = daemon.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{}", log_of(&log2));
    let stop_took = exited.elapsed();
    assert!(stop_took < Duration::from_secs(60));
    assert!(log_of(&log2).contains("every job is finished"), "{}", log_of(&log2));

    // Every job finished, every run finished, nothing of ours left in the account or the ledger.
    let l = Ledger::open(&data).expect("ledger");
    let all = l.jobs().expect("jobs");
    assert!(all.len() >= 3, "{all:?}");
    for j in &all {
        assert_eq!(j.state, JobState::Done, "{}: {:?}", j.id, j.error);
        assert!(l.live_resources(&j.id).expect("live").is_empty(), "{}", j.id);
        assert!(l.unresolved_intents(&j.id).expect("intents").is_empty(), "{}", j.id);
    }
    let firsts = l.runs_of("first").expect("runs");
    let seconds = l.runs_of("second").expect("runs");
    assert_eq!(firsts.len(), 1, "{firsts:?}");
    assert_eq!((seconds.len(), seconds[0].kind), (1, RunKind::Missed), "{seconds:?}");
    assert!(firsts.iter().chain(&seconds).all(|r| r.finished_at.is_some()));
    drop(l);
    assert_eq!(leftovers(&data), Vec::<String>::new());
    let calls: u64 = m
        .body
        .lines()
        .filter(|l| l.starts_with("agentless_aws_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    eprintln!(
        "serve: job {} killed in {} at {:.1} s; restarted at {:.1} s; every job Done at {:.1} s ({} jobs, {} AWS calls after the restart); SIGTERM exit in {:.2} s",
        victim.0,
        victim.1,
        killed_after.as_secs_f64(),
        restarted_after.as_secs_f64(),
        done_after.as_secs_f64(),
        all.len(),
        calls,
        stop_took.as_secs_f64()
    );
}
