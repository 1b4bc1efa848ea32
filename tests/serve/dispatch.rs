//! The dispatcher never hands out more than a budget: a randomized run of many jobs asking,
//! polling and releasing against small budgets; and four concurrent jobs of the daemon on a
//! simulated account whose quotas are set to those budgets, on the virtual clock, which all end
//! `Done` with every volume scanned and without one quota or throttling error from the account.

use std::sync::Arc;
use std::time::Duration;

use super::{IN_PROCESS_TOKEN, in_process_config, sim_daemon};
use crate::util::policy_guard;
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::{AccountId, JobId, Region, VolumeId};
use agentless::job::Budget;
use agentless::ledger::{JobState, TargetStatus};
use agentless::schedule::dispatch::{Dispatcher, Limits, vcpus_of};

/// xorshift64*: a seeded, dependency-free PRNG for the randomized test.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn randomized_requests_never_exceed_a_budget() {
    let limits =
        Limits { pending_snapshots: 10, snapshots_per_volume: 2, concurrent_copies: 3, networks: 2, vcpus: Some(12) };
    let accounts: Vec<AccountId> =
        ["111122223333", "444455556666"].iter().map(|a| a.parse().expect("account")).collect();
    let regions: Vec<Region> = ["us-east-1", "eu-west-1"].iter().map(|r| r.parse().expect("region")).collect();
    let volumes: Vec<VolumeId> = (0..12).map(|i| format!("vol-{i:08x}").parse().expect("volume")).collect();
    let types = ["m5.xlarge", "m5.large", "m5.2xlarge", "t3.micro"];
    for seed in [1_u64, 7, 2026, 0xdead_beef] {
        let d = Dispatcher::new(limits);
        let mut rng = Prng(seed);
        // 8 jobs, each pinned to one (account, Region), as jobs are.
        let jobs: Vec<(JobId, usize, usize)> =
            (0..8).map(|j| (format!("20260101-{j:08x}").parse().expect("job"), j % 2, (j / 2) % 2)).collect();
        let mut granted = 0u64;
        for step in 0..20_000 {
            let (job, a, r) = &jobs[rng.below(jobs.len())];
            let (account, region) = (&accounts[*a], &regions[*r]);
            match rng.below(9) {
                0 | 1 => {
                    let n = 1 + rng.below(4);
                    let want: Vec<VolumeId> = (0..n).map(|_| volumes[rng.below(volumes.len())].clone()).collect();
                    granted += u64::from(d.take_snapshots(job, account, region, &want));
                }
                2 => {
                    // Some of the job's snapshots complete.
                    let keep: Vec<VolumeId> = volumes.iter().filter(|_| rng.below(2) == 0).cloned().collect();
                    d.pending_snapshots(job, account, region, &keep);
                }
                3 => granted += u64::from(d.take_network(job, account, region)),
                4 | 5 => {
                    let name = format!("s{}", rng.below(6));
                    granted += u64::from(d.take_scanner(job, account, region, &name, types[rng.below(types.len())]));
                }
                6 => {
                    let alive: Vec<String> = (0..6).filter(|_| rng.below(2) == 0).map(|i| format!("s{i}")).collect();
                    d.scanners_alive(job, account, region, &alive);
                }
                7 => {
                    if rng.below(2) == 0 {
                        granted += u64::from(d.take_copies(job, account, region, 1 + rng.below(2)));
                    } else {
                        d.release_copies(job, account, region, 1);
                    }
                }
                _ => {
                    if rng.below(4) == 0 {
                        d.release_all(job);
                    }
                }
            }
            for account in &accounts {
                for region in &regions {
                    let u = d.usage(account, region);
                    let ctx = format!("seed {seed} step {step} {account} {region}: {u:?}");
                    assert!(u.pending_snapshots <= limits.pending_snapshots, "{ctx}");
                    assert!(u.max_per_volume <= limits.snapshots_per_volume, "{ctx}");
                    assert!(u.copies <= limits.concurrent_copies, "{ctx}");
                    assert!(u.networks <= limits.networks, "{ctx}");
                    assert!(u.vcpus <= limits.vcpus.unwrap_or(u32::MAX), "{ctx}");
                }
            }
        }
        assert!(granted > 1000, "seed {seed}: the budgets were handed out ({granted} grants)");
        for (job, _, _) in &jobs {
            d.release_all(job);
        }
        for account in &accounts {
            for region in &regions {
                let u = d.usage(account, region);
                assert_eq!((u.pending_snapshots, u.copies, u.networks, u.vcpus), (0, 0, 0, 0), "seed {seed}");
            }
        }
    }
    assert_eq!(vcpus_of("m5.2xlarge"), 8);
}

/// 16 instances with 2 synthetic volumes each, tagged team a or b; AWS-like shapes, demo-fast
/// latencies; quotas small enough that four concurrent jobs would break each of them.
const FLEET: &str = r#"
seed = 99
[latencies]
snapshot_base_ms = 4000
snapshot_ms_per_used_gib = 200
instance_boot_ms = 5000
instance_shutdown_ms = 3000
[quotas]
pending_snapshots_per_region = 12
concurrent_snapshots_per_volume = 2
vpcs_per_region = 3
internet_gateways_per_region = 3
# 16 customer t3.small hold 32; 12 are left for scanners (three m5.xlarge).
vcpus_per_region = 44
[[accounts]]
id = "111122223333"
user = "agentless-scanner"
regions = ["us-east-1"]
"#;

/// The daemon's tables after [`in_process_config`]'s.
const CONFIG: &str = r#"
[scanner]
# Small scanners: each job needs several, so vCPUs are contended.
max_devices = 4
poll = "2s"
[limits]
max_concurrent_jobs = 8
pending_snapshots = 12
snapshots_per_volume = 2
vpcs = 2
internet_gateways = 2
vcpus = 12
"#;

fn fleet() -> String {
    let mut f = FLEET.to_owned();
    for i in 0..16 {
        let team = if i % 2 == 0 { "a" } else { "b" };
        f.push_str(&format!(
            "[[accounts.instances]]\nregion = \"us-east-1\"\ninstance_type = \"t3.small\"\ntags = {{ Name = \"web-{i}\", team = \"{team}\" }}\n\
             [[accounts.instances.volumes]]\nsize_gib = 20\nused_gib = {}\n[[accounts.instances.volumes]]\nsize_gib = 100\nused_gib = {}\n",
            2 + i % 5,
            10 + i % 7
        ));
    }
    f
}

#[tokio::test(start_paused = true)]
async fn concurrent_jobs_on_the_sim_meet_no_quota_or_throttling_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = Fleet::parse(&fleet()).expect("fleet");
    let world = SimCloud::in_memory(&fleet).expect("sim");
    let config = in_process_config(r#"["us-east-1"]"#, CONFIG);
    let account: AccountId = "111122223333".parse().expect("account");
    let region: Region = "us-east-1".parse().expect("region");
    world.install_scanner_image(std::slice::from_ref(&region)).expect("image");
    let metrics = Arc::new(agentless::api::metrics::Metrics::new());
    let guard = policy_guard(&world)
        .with_pacer(Arc::new(agentless::cloud::pacer::Pacer::new()))
        .without_trace()
        .with_observer(metrics.observer());
    let running = sim_daemon(&world, guard, config, dir.path(), vec![region.clone()], Arc::clone(&metrics));
    let (daemon, ledger) = (&running.daemon, &running.ledger);
    let api = daemon.api_state(IN_PROCESS_TOKEN);
    // Four on-demand scans at once: team a, team b, and everything twice (so each volume is
    // wanted by up to three jobs at a time, past the per-volume limit of 2).
    let mut jobs = Vec::new();
    for targets in [r#"{"tags":{"team":"a"}}"#, r#"{"tags":{"team":"b"}}"#, "{}", "{}"] {
        let req: agentless::api::ScanRequest =
            serde_json::from_str(&format!(r#"{{"targets":{targets}}}"#)).expect("request");
        let accepted = api.scans.scan(req).await.expect("scan");
        assert_eq!(accepted.jobs.len(), 1);
        jobs.extend(accepted.jobs);
    }
    let limits = daemon.dispatcher().limits();
    let mut peak = agentless::schedule::dispatch::Usage::default();
    let started = tokio::time::Instant::now();
    while daemon.active_jobs() > 0 {
        assert!(started.elapsed() < Duration::from_secs(4 * 3600), "jobs still running after 4 virtual hours");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let u = daemon.dispatcher().usage(&account, &region);
        peak.pending_snapshots = peak.pending_snapshots.max(u.pending_snapshots);
        peak.max_per_volume = peak.max_per_volume.max(u.max_per_volume);
        peak.networks = peak.networks.max(u.networks);
        peak.vcpus = peak.vcpus.max(u.vcpus);
        peak.refusals = u.refusals;
    }
    {
        let l = ledger.lock().expect("lock");
        for job in &jobs {
            let record = l.job(job).expect("job").expect("known");
            assert_eq!(record.state, JobState::Done, "{job}: {:?}", record.error);
            for t in l.targets(job).expect("targets") {
                assert_eq!(t.status, TargetStatus::Scanned, "{job} {}: {:?}", t.instance, t.error);
            }
        }
        assert_eq!(l.targets(&jobs[2]).expect("targets").len(), 16);
    }
    for outcome in ["quota_exceeded", "throttled", "snapshot_rate_per_volume"] {
        assert_eq!(metrics.calls_with_outcome(outcome), 0, "{outcome}:\n{}", metrics.render(&daemon.gauges()));
    }
    assert_eq!(metrics.throttles(), 0);
    // The budgets bit (jobs were told to wait) and were never exceeded.
    assert!(peak.refusals > 0, "{peak:?}");
    assert!(peak.pending_snapshots <= limits.pending_snapshots, "{peak:?}");
    assert!(peak.max_per_volume <= limits.snapshots_per_volume, "{peak:?}");
    assert!(peak.networks <= limits.networks && peak.vcpus <= limits.vcpus.unwrap_or(u32::MAX), "{peak:?}");
    assert_eq!(peak.networks, 2, "two jobs held a network at once: {peak:?}");
    let runs = daemon.runs().expect("runs");
    assert!(runs["on-demand"].iter().all(|r| r.finished_at.is_some()), "{runs:?}");

    // The scheduled audit's pass finds nothing leaked (and deletes nothing).
    let audit = agentless::schedule::config::AuditConfig {
        cron: "0 * * * *".into(),
        timezone: "UTC".into(),
        delete: true,
        grace: Some(Duration::ZERO),
    };
    daemon.audit_once(&audit).await;
    let text = metrics.render(&daemon.gauges());
    for line in [
        "agentless_leaks_found_total 0",
        "agentless_leaks_deleted_total 0",
        "agentless_audits_total{outcome=\"complete\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
    }
    // Retention removes the stored results of finished jobs, not the ledger's record of them.
    let results = dir.path().join("results").join(jobs[0].as_str());
    assert!(results.is_dir());
    tokio::time::sleep(Duration::from_secs(2)).await;
    daemon.apply_retention(Duration::from_secs(1)).await;
    assert!(!results.exists(), "{} still there", results.display());
    assert!(ledger.lock().expect("lock").job(&jobs[0]).expect("job").is_some());
}
