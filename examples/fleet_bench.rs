//! Fleet benchmark of the daemon (issue 9, item 6): the scheduled-scan daemon's real job runner,
//! dispatcher and ledger scanning a synthetic fleet on the simulated account, on tokio's paused
//! clock, with AWS's default quotas, token buckets and latencies.
//!
//! ```text
//! cargo run --release --example fleet_bench -- --instances 10000
//! ```
//!
//! The fleet: `--instances` instances over `--accounts` accounts x `--regions` Regions, 1 to 4
//! volumes each (a root of 8 to 32 GiB, data volumes of 20 to 500 GiB, half used: the fleet
//! default), no disk images (the hypervisor's stand-in agent "scans" them instantly). One
//! on-demand scan of everything, through the daemon, so one job per (account, Region), all at
//! once, sharing the dispatcher's budgets; each account's jobs share its client-side token
//! buckets.
//!
//! # The lower bound
//!
//! Per (account, Region), every volume's snapshot must be pending for `d = 10 s + 6 s x used GiB`
//! (the sim's AWS-like latency, `sim::limits`), with at most 100 pending at once (the quota); so
//! the snapshots alone take at least `max(sum(d) / 100, max(d))`. After the last snapshot
//! completes, its scanner must boot (30 s) and, once it has scanned, shut down (45 s) before the
//! scan is over. The token buckets bound the calls too: `CreateSnapshots` (one per instance),
//! `DeleteSnapshot` (one per volume) at 5 per second after a burst of 100, `RunInstances` (one per
//! scanner of 26 volumes) at 2 per second after 5. The bound of a Region is the largest of
//! these; the makespan's bound is the largest over the (account, Region)s, which run in parallel
//! (quotas and buckets are per account and Region). The same bound with 90 pending snapshots (the
//! 10 the daemon leaves for the customer's own backups) is printed too.
//!
//! It prints the virtual makespan against the bound, AWS calls per scanned volume, scanner
//! instance-seconds per volume, throttling and quota errors seen, and the process's wall time,
//! CPU time and peak RSS.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentless::api::metrics::Metrics;
use agentless::cloud::pacer::Pacer;
use agentless::cloud::sim::fleet::SYNTHETIC_REGIONS;
use agentless::cloud::sim::hypervisor::{AgentRunner, Hypervisor};
use agentless::cloud::sim::limits::Latencies;
use agentless::cloud::sim::state::Life;
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::{Guard, GuardPolicy, GuardRules};
use agentless::collector::Collector;
use agentless::ledger::{JobState, Ledger};
use agentless::schedule::config::Config;
use agentless::schedule::daemon::{Account, Daemon, Parts};
use clap::Parser;

type BoxError = Box<dyn Error + Send + Sync>;

/// AWS: 100 pending snapshots per account and Region (orchestrator-anchors 4.2).
const AWS_PENDING: f64 = 100.0;
/// Volumes per scanner (the daemon's default, `job::DEFAULT_MAX_DEVICES`).
const PER_SCANNER: usize = 26;
/// Token buckets (orchestrator-anchors 4.1): burst and refill per second.
const SNAPSHOT_BUCKET: (f64, f64) = (100.0, 5.0);
const RUN_INSTANCES_BUCKET: (f64, f64) = (5.0, 2.0);
/// Linux's USER_HZ: the unit of utime and stime in /proc/self/stat (proc(5)).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Parser)]
#[command(about = "Scan a synthetic fleet with the daemon on the simulated account and the virtual clock")]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Regions per account (at most 8).
    #[arg(long, default_value_t = 4)]
    regions: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The jobs' poll interval in seconds (the daemon's AWS default: 5).
    #[arg(long, default_value_t = 5)]
    poll_secs: u64,
    /// Where the ledger and results go [default: a temporary directory in /dev/shm when there is
    /// one (the benchmark measures orchestration, not the disk's fsync), else the system's].
    #[arg(long)]
    tmp: Option<std::path::PathBuf>,
}

fn fleet(args: &Args) -> Result<Fleet, BoxError> {
    let fleet = Fleet::synthetic(args.instances, args.accounts, args.regions, args.seed)?;
    // Terminated scanners stay visible for a day (AWS: about an hour) so their lifetimes can be
    // read at the end; nothing else changes.
    let latencies = Latencies { terminated_visible_ms: 86_400_000, ..Latencies::default() };
    Ok(Fleet { latencies, ..fleet })
}

/// The lower bound of one (account, Region) in seconds, with `pending` snapshots at once.
fn region_bound(latencies: &Latencies, used: &[u32], instances: usize, pending: f64) -> f64 {
    let d: Vec<f64> = used.iter().map(|u| latencies.snapshot_ms(*u) as f64 / 1000.0).collect();
    let sum: f64 = d.iter().sum();
    let longest = d.iter().copied().fold(0.0, f64::max);
    let snapshots = (sum / pending).max(longest);
    let after = (latencies.instance_boot_ms + latencies.instance_shutdown_ms) as f64 / 1000.0;
    let tokens = |calls: f64, (burst, rate): (f64, f64)| ((calls - burst) / rate).max(0.0);
    let scanners = used.len().div_ceil(PER_SCANNER) as f64;
    (snapshots + after)
        .max(tokens(instances as f64, SNAPSHOT_BUCKET))
        .max(tokens(used.len() as f64, SNAPSHOT_BUCKET))
        .max(tokens(scanners, RUN_INSTANCES_BUCKET))
}

/// Peak RSS (VmHWM) in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of this process, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of proc(5); `rest` starts at field 3.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_SECOND)
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    if args.regions == 0 || args.regions > SYNTHETIC_REGIONS.len() || args.accounts == 0 {
        return Err("--regions must be 1 to 8 and --accounts at least 1".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<(), BoxError> {
    let wall = Instant::now();
    let fleet = fleet(&args)?;
    let latencies = fleet.latencies.clone();
    // The bound, from the fleet as built (used GiB as the sim fills it in).
    let world = SimCloud::in_memory(&fleet)?;
    let mut bounds: Vec<(String, f64, f64, usize)> = Vec::new();
    let mut total_volumes = 0;
    for a in &fleet.accounts {
        let sim = world.as_account(&a.id)?;
        for region in &a.regions {
            let (used, instances) = sim.inspect(|w| {
                let r = w.accounts.get(&a.id).and_then(|x| x.regions.get(region));
                let used: Vec<u32> = r.map(|r| r.volumes.values().map(|v| v.used_gib).collect()).unwrap_or_default();
                let instances = r.map_or(0, |r| r.instances.len());
                (used, instances)
            });
            total_volumes += used.len();
            bounds.push((
                format!("{} {region}", a.id),
                region_bound(&latencies, &used, instances, AWS_PENDING),
                region_bound(&latencies, &used, instances, agentless::job::MAX_PENDING_SNAPSHOTS as f64),
                used.len(),
            ));
        }
    }
    let shm = std::path::Path::new("/dev/shm");
    let dir = match &args.tmp {
        Some(t) => tempfile::tempdir_in(t)?,
        None if shm.is_dir() => tempfile::tempdir_in(shm)?,
        None => tempfile::tempdir()?,
    };
    eprintln!("fleet_bench: data in {}", dir.path().display());
    let mut config_text = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\ntoken = \"bench-token-0123456789\"\n[limits]\nmax_concurrent_jobs = 64\n",
    );
    config_text.push_str(&format!("[scanner]\npoll = \"{}s\"\n", args.poll_secs));
    let regions: Vec<String> = SYNTHETIC_REGIONS.iter().take(args.regions).map(|r| format!("\"{r}\"")).collect();
    for (i, a) in fleet.accounts.iter().enumerate() {
        config_text.push_str(&format!(
            "[[accounts]]\nname = \"a{i}\"\nid = \"{}\"\nregions = [{}]\n",
            a.id,
            regions.join(", ")
        ));
    }
    let config = Config::parse(&config_text, std::path::Path::new("bench.toml"))?;
    let metrics = Arc::new(Metrics::new());
    let collector = Collector::new(dir.path(), scanner_ami::bundle::BundleLimits::default());
    let _hv = Hypervisor::start(
        world.clone(),
        AgentRunner::InProcess { sink: Arc::new(collector.clone()) },
        dir.path().join("hv"),
    );
    let mut accounts = Vec::new();
    for (i, a) in fleet.accounts.iter().enumerate() {
        let sim = world.as_account(&a.id)?;
        sim.install_scanner_image(&a.regions)?;
        let policy =
            GuardPolicy::new(vec![agentless::policy::agentless_scan_policy()?], sim.scope(), GuardRules::default());
        let guard = Guard::new(sim, policy)
            .with_pacer(Arc::new(Pacer::new()))
            .without_trace()
            .with_observer(metrics.observer());
        accounts.push(Account {
            name: format!("a{i}"),
            id: a.id.clone(),
            guard: Arc::new(guard),
            caller_arn: format!("arn:aws:iam::{}:user/agentless-scanner", a.id),
            regions: a.regions.clone(),
        });
    }
    let clock = agentless::schedule::timer::tokio_clock(jiff::Timestamp::now());
    let ledger = Arc::new(Mutex::new(Ledger::open(dir.path())?.with_clock(Arc::clone(&clock))));
    let w = world.clone();
    let daemon = Daemon::new(Parts {
        collector_cert_sha256: None,
        config,
        data_dir: dir.path().to_path_buf(),
        ledger: Arc::clone(&ledger),
        collector,
        accounts,
        now_ms: Arc::new(move || i64::try_from(w.now_ms()).unwrap_or(i64::MAX)),
        clock,
        collector_url: "http://127.0.0.1:9".into(),
        sim: true,
        metrics: Arc::clone(&metrics),
    });
    daemon.start()?;
    let started = tokio::time::Instant::now();
    let accepted =
        daemon.api_state("bench-token-0123456789").scans.scan(agentless::api::ScanRequest::default()).await?;
    eprintln!("fleet_bench: {} jobs started", accepted.jobs.len());
    let mut last_report = Duration::ZERO;
    while daemon.active_jobs() > 0 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if started.elapsed() >= last_report + Duration::from_secs(1800) {
            last_report = started.elapsed();
            let l = ledger.lock().map_err(|_| "ledger lock poisoned")?;
            let states: BTreeMap<String, u64> = l.job_counts()?.into_iter().collect();
            let pending: usize = daemon.dispatcher().all_usage().iter().map(|(_, _, u)| u.pending_snapshots).sum();
            eprintln!(
                "fleet_bench: {:.1} h virtual, {:.0} s wall: jobs {states:?}, {pending} snapshots pending",
                last_report.as_secs_f64() / 3600.0,
                wall.elapsed().as_secs_f64()
            );
            if started.elapsed() > Duration::from_secs(48 * 3600) {
                return Err("no end after 48 virtual hours: stuck".into());
            }
        }
    }
    let makespan = started.elapsed().as_secs_f64();

    // Results.
    let (mut scanned, mut done) = (0usize, 0usize);
    {
        let l = ledger.lock().map_err(|_| "ledger lock poisoned")?;
        for job in &accepted.jobs {
            if l.job_state(job)? == Some(JobState::Done) {
                done += 1;
            }
            let doc: Option<agentless::job::JobDoc> = agentless::job::doc::load(&l, job)?;
            scanned += doc.map_or(0, |d| d.volumes().filter(|(_, v)| v.scanned).count());
        }
    }
    let now = world.now_ms();
    let mut scanner_ms: HashMap<String, u64> = HashMap::new();
    world.inspect(|w| {
        for a in w.accounts.values() {
            for r in a.regions.values() {
                for (id, i) in &r.instances {
                    let ours = i.tags.get(agentless::cloud::tags::JOB).is_some();
                    if !ours {
                        continue;
                    }
                    let end = match i.life {
                        Life::Terminated { at_ms } => at_ms,
                        Life::Pending { .. }
                        | Life::Running
                        | Life::Stopping { .. }
                        | Life::Stopped
                        | Life::ShuttingDown { .. } => now,
                    };
                    scanner_ms.insert(id.to_string(), end.saturating_sub(i.launched_ms));
                }
            }
        }
    });
    let calls = metrics.calls();
    let total_calls: u64 = calls.values().sum();
    let errors = |o: &str| calls.iter().filter(|((_, x), _)| *x == o).map(|(_, n)| n).sum::<u64>();
    let (bound_name, bound, _, _) = bounds.iter().max_by(|a, b| a.1.total_cmp(&b.1)).cloned().unwrap_or_default();
    let bound90 = bounds.iter().map(|b| b.2).fold(0.0, f64::max);
    let scanner_secs: f64 = scanner_ms.values().sum::<u64>() as f64 / 1000.0;
    let per = |x: f64| if scanned > 0 { x / scanned as f64 } else { f64::NAN };

    println!(
        "fleet_bench: {} instances, {total_volumes} volumes, {} accounts x {} Regions",
        args.instances, args.accounts, args.regions
    );
    println!("  jobs                       {} ({done} Done)", accepted.jobs.len());
    println!("  volumes scanned            {scanned} of {total_volumes}");
    println!("  makespan (virtual)         {makespan:.0} s ({:.2} h)", makespan / 3600.0);
    println!("  lower bound                {bound:.0} s ({bound_name}; 100 pending snapshots)");
    println!("  makespan / bound           {:.3}", makespan / bound);
    println!("  bound with 90 pending      {bound90:.0} s; makespan / it {:.3}", makespan / bound90);
    println!("  AWS calls                  {total_calls} ({:.2} per scanned volume)", per(total_calls as f64));
    println!(
        "  scanners                   {} ({:.1} instance-seconds per volume)",
        scanner_ms.len(),
        per(scanner_secs)
    );
    println!(
        "  errors seen by jobs        throttled {}, quota_exceeded {}, snapshot_rate_per_volume {}, transient {}",
        errors("throttled"),
        errors("quota_exceeded"),
        errors("snapshot_rate_per_volume"),
        errors("transient")
    );
    println!("  wall time                  {:.1} s", wall.elapsed().as_secs_f64());
    match cpu_seconds() {
        Some(c) => println!("  CPU time                   {c:.1} s"),
        None => println!("  CPU time                   unknown"),
    }
    match peak_rss_kib() {
        Some(k) => println!("  peak RSS (VmHWM)           {} MiB", k / 1024),
        None => println!("  peak RSS (VmHWM)           unknown"),
    }
    let mut per_action: Vec<(&str, u64)> = Vec::new();
    for ((action, _), n) in &calls {
        match per_action.iter_mut().find(|(a, _)| a == action) {
            Some((_, m)) => *m += n,
            None => per_action.push((action, *n)),
        }
    }
    per_action.sort_by_key(|x| std::cmp::Reverse(x.1));
    println!("  calls by action            {per_action:?}");
    Ok(())
}
