//! The graceful stop: `agentless serve` stopped by real signals while a job is mid-scan, in each
//! shutdown mode, on the simulated account with the demo fleet and scanner-agent processes.
//!
//! Every test starts the daemon with one account in us-east-1 (the demo web, database and app
//! servers: one job scans all three) and no schedule, starts an on-demand scan through the API
//! and signals the process once that job is in `Launching` or `Scanning` (its snapshots, network,
//! grants and scanners exist). The only timed assertions are "exits within the deadline + slack";
//! everything else is read from the exit status, the log and the ledger and simulated account the
//! daemon leaves in its data directory.
//!
//! 1. `tear-down`: the job is cancelled, tears down and ends `Cancelled`; exit 0; nothing left.
//! 2. `finish` (the default): the job finishes `Done` before the exit; a second job queued behind
//!    it (`max_concurrent_jobs = 1`) is not started, nor is a scan requested after the signal.
//! 3. `finish` with a 1 s deadline: exit 0 after the deadline with the job unfinished and the log
//!    saying so; the next start resumes it to `Done` with nothing left.
//! 4. `tear-down`, a second signal (SIGINT) while the job tears down: exit at once, the job left in
//!    `TearingDown`; the next start finishes its teardown (`Cancelled`, nothing left).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use agentless::cloud::ids::JobId;
use agentless::ledger::{JobState, Ledger, RunKind};

use super::{SERVE_TOKEN, free_port, http, jobs, kill, log_of, start, try_http, wait_for, write_sim_config};
use crate::job::leftovers;

/// Generous: the machine is shared (the daemon is up in about a second, a job mid-scan in ~5).
const UP: Duration = Duration::from_secs(60);
const MID_SCAN: Duration = Duration::from_secs(120);
/// Added to a deadline for the process to exit (the runtime's shutdown, a loaded machine).
const SLACK: Duration = Duration::from_secs(30);
const MID: [JobState; 2] = [JobState::Launching, JobState::Scanning];

/// A daemon process of a test; killed (SIGKILL) if the test fails with it still running.
struct Served {
    child: Child,
    log: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Served {
    fn log(&self) -> String {
        log_of(&self.log)
    }

    fn signal(&mut self, signal: &str) {
        kill(&mut self.child, signal);
    }

    /// Wait for the exit, at most `limit`; how long it took.
    async fn exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, started.elapsed());
            }
            assert!(started.elapsed() < limit, "the daemon did not exit within {limit:?}; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One test's directory, address and configuration.
struct Setup {
    dir: tempfile::TempDir,
    data: PathBuf,
    addr: SocketAddr,
    config: PathBuf,
}

impl Setup {
    /// `daemon` and `limits` are the bodies of those tables.
    fn new(daemon: &str, limits: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let config = write_sim_config(
            dir.path(),
            addr,
            r#"["us-east-1"]"#,
            &format!("\n[limits]\n{limits}\n\n[daemon]\n{daemon}\n"),
        );
        Setup { dir, data, addr, config }
    }

    /// Start `agentless serve` (log `serve-<n>.log`) and wait for its API.
    async fn start(&self, n: u32) -> Served {
        let log = self.dir.path().join(format!("serve-{n}.log"));
        let served = Served { child: start(&self.config, &self.data, &log), log };
        let addr = self.addr;
        wait_for("the API", UP, &served.log, async || try_http(addr, "GET", "/healthz", None, None).await.ok()).await;
        served
    }

    /// `POST /v1/scans` (every target of us-east-1): the one job created.
    /// [`Setup::start`] the first daemon, ask for a scan and wait until its job is mid-scan: the
    /// daemon, the job, the state seen, and when the daemon was started.
    async fn start_mid_scan(&self) -> (Served, JobId, String, Instant) {
        let started = Instant::now();
        let d = self.start(1).await;
        let job = self.scan().await;
        let seen = self.wait_state(&d, &job, &MID, MID_SCAN).await;
        (d, job, seen, started)
    }

    async fn scan(&self) -> JobId {
        let r = http(self.addr, "POST", "/v1/scans", Some(SERVE_TOKEN), Some("{}")).await;
        assert_eq!(r.status, 202, "{r:?}");
        let jobs = r.json()["jobs"].as_array().cloned().unwrap_or_default();
        assert_eq!(jobs.len(), 1, "{}", r.body);
        jobs[0].as_str().expect("a job id").parse().expect("job id")
    }

    /// The state of `job` through the API (`None` while the API does not answer).
    async fn state(&self, job: &JobId) -> Option<String> {
        let all = jobs(self.addr).await?;
        all.iter().find(|j| j["id"] == job.as_str()).and_then(|j| j["state"].as_str().map(str::to_owned))
    }

    /// Wait until `job` is in one of `states` (by the API); the state seen.
    async fn wait_state(&self, served: &Served, job: &JobId, states: &[JobState], limit: Duration) -> String {
        wait_for(&format!("job {job} in {states:?}"), limit, &served.log, async || {
            self.state(job).await.filter(|s| states.iter().any(|w| w.as_str() == s))
        })
        .await
    }

    /// Wait until the daemon logs `line`.
    async fn wait_log(&self, served: &Served, line: &str) {
        wait_for(&format!("{line:?} in the log"), UP, &served.log, async || served.log().contains(line).then_some(()))
            .await;
    }

    fn ledger(&self) -> Ledger {
        Ledger::open(&self.data).expect("ledger")
    }

    fn job_state(&self, job: &JobId) -> JobState {
        self.ledger().job(job).expect("job").expect("known").state
    }

    /// Every job over in `want`, holding nothing (ledger rows, intents), its run finished, and no
    /// resource of ours left in the simulated account.
    fn assert_clean(&self, want: &[(&JobId, JobState)]) {
        let l = self.ledger();
        for (job, state) in want {
            let j = l.job(job).expect("job").expect("known");
            assert_eq!(j.state, *state, "{job}: {:?}", j.error);
            assert!(l.live_resources(job).expect("live").is_empty(), "{job}: live resources");
            assert!(l.unresolved_intents(job).expect("intents").is_empty(), "{job}: unresolved intents");
            let (run, _) = l.run_of_job(job).expect("run").expect("a run");
            let finished = l.runs_of("on-demand").expect("runs").into_iter().find(|r| r.id == run).expect("the run");
            assert!(finished.finished_at.is_some(), "{job}: its run is unfinished: {finished:?}");
        }
        drop(l);
        assert_eq!(leftovers(&self.data), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_tear_down_cancels_the_job_in_flight_and_leaves_nothing() {
    let deadline = Duration::from_secs(120);
    let s = Setup::new(
        r#"shutdown = "tear-down"
shutdown_deadline = "120s""#,
        "",
    );
    let (mut d, job, seen, started) = s.start_mid_scan().await;
    let signalled_after = started.elapsed();
    d.signal("-TERM");
    let (status, took) = d.exit(deadline + SLACK).await;
    let log = d.log();
    assert_eq!(status.code(), Some(0), "{status:?}; log:\n{log}");
    assert!(log.contains("SIGTERM: stopping: no new work; tearing down the jobs in flight (1 now)"), "{log}");
    assert!(log.contains("every job is finished"), "{log}");
    s.assert_clean(&[(&job, JobState::Cancelled)]);
    eprintln!(
        "shutdown/tear-down: job {job} signalled in {seen} at {:.1} s; exit 0 in {:.2} s (deadline {deadline:?}); test {:.1} s",
        signalled_after.as_secs_f64(),
        took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_finish_lets_the_job_in_flight_finish_and_starts_nothing() {
    // `shutdown` unset: "finish" is the default.
    let deadline = Duration::from_secs(120);
    let s = Setup::new(r#"shutdown_deadline = "120s""#, "max_concurrent_jobs = 1");
    let (mut d, job, seen, started) = s.start_mid_scan().await;
    // A second scan now waits for the only job slot.
    let queued = s.scan().await;
    assert_eq!(s.state(&queued).await.as_deref(), Some("Planned"));
    let signalled_after = started.elapsed();
    d.signal("-TERM");
    s.wait_log(&d, "SIGTERM: stopping: no new work; letting the jobs in flight finish (1 now)").await;
    // Scans are refused while the job in flight finishes (it needs seconds more: its scanners
    // upload, then terminate).
    let refused = http(s.addr, "POST", "/v1/scans", Some(SERVE_TOKEN), Some("{}")).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    let (status, took) = d.exit(deadline + SLACK).await;
    let log = d.log();
    assert_eq!(status.code(), Some(0), "{status:?}; log:\n{log}");
    assert!(
        log.contains(&format!(
            "the jobs in flight are over; 1 unfinished job left to resume on the next start (their cloud resources \
             stay until then; `agentless jobs resume` also finishes them): {queued} (us-east-1, Planned)"
        )),
        "{log}"
    );

    // The job in flight finished; the queued one never started (and holds nothing); no third run.
    s.assert_clean(&[(&job, JobState::Done)]);
    let l = s.ledger();
    assert_eq!(l.jobs().expect("jobs").len(), 2);
    let q = l.job(&queued).expect("job").expect("known");
    assert_eq!((q.state, q.created_at), (JobState::Planned, q.updated_at), "{q:?}");
    assert!(l.live_resources(&queued).expect("live").is_empty());
    let runs = l.runs_of("on-demand").expect("runs");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.kind == RunKind::OnDemand));
    let (queued_run, _) = l.run_of_job(&queued).expect("run").expect("a run");
    assert!(runs.iter().any(|r| r.id == queued_run && r.finished_at.is_none()), "{runs:?}");
    eprintln!(
        "shutdown/finish: job {job} signalled in {seen} at {:.1} s; finished Done, exit 0 in {:.2} s (deadline {deadline:?}); test {:.1} s",
        signalled_after.as_secs_f64(),
        took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_shorter_than_the_job_exits_and_the_next_start_finishes_it() {
    let deadline = Duration::from_secs(1);
    let s = Setup::new(
        r#"shutdown = "finish"
shutdown_deadline = "1s""#,
        "",
    );
    let (mut d, job, seen, started) = s.start_mid_scan().await;
    let signalled_after = started.elapsed();
    d.signal("-TERM");
    let (status, took) = d.exit(deadline + SLACK).await;
    let log = d.log();
    assert_eq!(status.code(), Some(0), "{status:?}; log:\n{log}");
    assert!(
        log.contains(
            "the shutdown deadline (1s) passed with 1 job in flight; 1 unfinished job left to resume on the next start"
        ),
        "{log}"
    );
    assert!(log.contains(&format!("{job} (us-east-1, ")), "{log}");
    let left = s.job_state(&job);
    assert!(!left.is_terminal(), "the job was left unfinished ({left})");
    let last_line = log.lines().last().unwrap_or_default().to_owned();

    // The next start resumes it.
    let restarted = Instant::now();
    let mut d = s.start(2).await;
    s.wait_state(&d, &job, &[JobState::Done, JobState::Failed, JobState::Cancelled], MID_SCAN).await;
    let resumed_in = restarted.elapsed();
    assert!(d.log().contains("resuming job"), "{}", d.log());
    d.signal("-TERM");
    let (status, _) = d.exit(deadline + SLACK).await;
    assert_eq!(status.code(), Some(0), "{}", d.log());
    assert!(d.log().contains("every job is finished"), "{}", d.log());
    s.assert_clean(&[(&job, JobState::Done)]);
    eprintln!(
        "shutdown/deadline: job {job} signalled in {seen} at {:.1} s; exit 0 in {:.2} s (deadline {deadline:?}) leaving it {left}; \
         restart to Done in {:.1} s; test {:.1} s; last line: {last_line}",
        signalled_after.as_secs_f64(),
        took.as_secs_f64(),
        resumed_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_during_tear_down_exits_at_once_and_the_next_start_finishes_the_job() {
    // A long deadline: the exit must come from the second signal.
    let deadline = Duration::from_secs(600);
    let s = Setup::new(
        r#"shutdown = "tear-down"
shutdown_deadline = "10m""#,
        "",
    );
    let (mut d, job, seen, started) = s.start_mid_scan().await;
    d.signal("-TERM");
    // Tearing down takes seconds (the scanners' termination): signal again in the middle of it.
    s.wait_state(&d, &job, &[JobState::TearingDown], MID_SCAN).await;
    d.signal("-INT");
    // At once: the 10 min deadline plays no part (slack for a loaded machine only).
    let (status, took) = d.exit(SLACK).await;
    let log = d.log();
    assert_eq!(status.code(), Some(0), "{status:?}; log:\n{log}");
    assert!(log.contains("SIGINT again: exiting now"), "{log}");
    assert!(
        log.contains(&format!(
            "second signal: 1 job in flight abandoned; 1 unfinished job left to resume on the next start (their cloud \
             resources stay until then; `agentless jobs resume` also finishes them): {job} (us-east-1, TearingDown)"
        )),
        "{log}"
    );
    // It did not wait for the teardown.
    assert_eq!(s.job_state(&job), JobState::TearingDown);
    assert_ne!(leftovers(&s.data), Vec::<String>::new(), "the teardown was abandoned: something is left");

    // The next start finishes the teardown.
    let restarted = Instant::now();
    let mut d = s.start(2).await;
    s.wait_state(&d, &job, &[JobState::Done, JobState::Failed, JobState::Cancelled], MID_SCAN).await;
    let finished_in = restarted.elapsed();
    d.signal("-TERM");
    let (status, _) = d.exit(deadline + SLACK).await;
    assert_eq!(status.code(), Some(0), "{}", d.log());
    assert!(d.log().contains("every job is finished"), "{}", d.log());
    s.assert_clean(&[(&job, JobState::Cancelled)]);
    eprintln!(
        "shutdown/second signal: job {job} signalled in {seen}, SIGINT in TearingDown; exit 0 in {:.2} s after it; \
         restart to Cancelled in {:.1} s; test {:.1} s",
        took.as_secs_f64(),
        finished_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
