//! Fleet benchmark of the simulated account (issue 6: "a benchmark command drives 10,000 synthetic
//! instances through snapshot, launch and teardown calls of the `Cloud` trait with AWS-like
//! latencies and the virtual clock in under a minute of wall time").
//!
//! ```text
//! cargo run --release --example sim_fleet_bench -- --instances 10000
//! ```
//!
//! It builds a synthetic fleet (no disk images: `--accounts` accounts of `--regions` Regions, the
//! instances spread evenly, 1 to 4 volumes each), then, for every (account, Region) at once, drives
//! each instance through a [`Guard`] with the bundled custom policy and a client-side [`Pacer`]:
//! discovery (`DescribeInstances` pages), an ephemeral network (VPC, subnet, internet gateway,
//! route, security group), `CreateSnapshots` per instance under the 100-pending-per-Region quota,
//! `DescribeSnapshots` polls, `RunInstances` of `m5.xlarge` scanners with up to
//! [`VOLUMES_PER_SCANNER`] snapshots each, `TerminateInstances` once they run, `DeleteSnapshot` of
//! every snapshot once its scanner is terminated, and the network's teardown. The sim keeps its
//! default AWS latencies and token buckets ([`agentless::cloud::sim::limits`]) and runs on tokio's
//! paused clock, so the waits are virtual.
//!
//! It prints the wall time, the virtual makespan, the calls per operation (from the guards'
//! traces, drained as it goes), the throttling errors seen and the peak RSS (`VmHWM`).

use std::collections::{BTreeMap, VecDeque};
use std::error::Error;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentless::cloud::ops::*;
use agentless::cloud::pacer::Pacer;
use agentless::cloud::sim::fleet::SYNTHETIC_REGIONS;
use agentless::cloud::sim::state::Life;
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::tags::{self, Role, SnapshotSource, Tags};
use agentless::cloud::{
    AccountId, CloudError, ErrorKind, Guard, GuardPolicy, GuardRules, ImageId, InstanceId, JobId, Region, SnapshotId,
};
use agentless::policy::agentless_scan_policy;
use clap::Parser;
use tokio::sync::mpsc;

type BoxError = Box<dyn Error + Send + Sync>;

/// Data volumes per scanner: an `m5.xlarge` has the shared Nitro limit of 28 attachments, minus
/// its root volume and its network interface (`sim::limits::ATTACHMENTS_PER_INSTANCE`).
const VOLUMES_PER_SCANNER: usize = 26;
/// Pending snapshots per account and Region (`sim::limits::PENDING_SNAPSHOTS_PER_REGION`).
const PENDING_LIMIT: usize = 100;
/// The scanner's instance type (the job's, `cloud::plan::SCANNER_INSTANCE_TYPE`).
const SCANNER_TYPE: &str = "m5.xlarge";
/// How often the bench polls snapshots and instances: the AWS SDK waiters' delay
/// (`snapshot_completed`, `instance_running`: 15 s).
const POLL: Duration = Duration::from_secs(15);
/// Ids per Describe and per `TerminateInstances` call (our choice: well under AWS's limits).
const IDS_PER_CALL: usize = 100;
/// How often (virtual) the guards' traces are drained into the counts, bounding their memory.
const DRAIN_EVERY: Duration = Duration::from_secs(60);
/// First wait after a throttling or transient error; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

#[derive(Debug, Parser)]
#[command(about = "Drive a synthetic fleet through the simulated account's Cloud trait on the virtual clock")]
struct Args {
    /// Customer instances in the fleet.
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// Accounts (the instances are spread over accounts x Regions).
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Regions per account (at most 8).
    #[arg(long, default_value_t = 4)]
    regions: usize,
    /// Seed of the fleet's sizes and of the sim's ids.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// What the run saw.
#[derive(Debug, Default)]
struct Stats {
    calls: BTreeMap<&'static str, u64>,
    refused: u64,
    throttled: u64,
    transient: u64,
    snapshots: u64,
    failed_snapshots: u64,
    scanners: u64,
}

fn bump<T>(stats: &Mutex<Stats>, f: impl FnOnce(&mut Stats) -> T) -> T {
    f(&mut stats.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Await a guard call, waiting and retrying on throttling and transient errors (counted).
macro_rules! call {
    ($stats:expr, $e:expr) => {{
        let mut wait = FIRST_BACKOFF;
        loop {
            match $e.await {
                Ok(v) => break Ok::<_, CloudError>(v),
                Err(e) if matches!(e.kind(), ErrorKind::Throttled | ErrorKind::Transient) => {
                    bump(
                        $stats,
                        |s| if e.kind() == ErrorKind::Throttled { s.throttled += 1 } else { s.transient += 1 },
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

/// The synthetic fleet: instance `n` goes to account `n % accounts`, Region `(n / accounts) %
/// regions`; 1 to 4 volumes, a root of 8 to 32 GiB and data volumes of 20 to 500 GiB, half used
/// (the fleet default), so snapshots take from about 30 s to 25 minutes.
fn fleet(args: &Args) -> Result<Fleet, BoxError> {
    Ok(Fleet::synthetic(args.instances, args.accounts, args.regions, args.seed)?)
}

/// Data volume device names: `/dev/sdf`-`/dev/sdz`, then `/dev/sdb`-`/dev/sde`, then `/dev/sdaa`.
fn device_name(n: usize) -> String {
    const FIRST: &[u8] = b"fghijklmnopqrstuvwxyzbcde";
    match FIRST.get(n) {
        Some(c) => format!("/dev/sd{}", char::from(*c)),
        None => format!("/dev/sda{}", char::from(b'a' + (n - FIRST.len()) as u8 % 26)),
    }
}

/// One (account, Region): the job's calls for its instances.
struct RegionRun {
    guard: Arc<Guard<SimCloud>>,
    account: AccountId,
    region: Region,
    job: JobId,
    expires: jiff::Timestamp,
    stats: Arc<Mutex<Stats>>,
}

/// A scanner launched, with the snapshots it holds.
struct Scanner {
    id: InstanceId,
    snapshots: Vec<Tagged<SnapshotId>>,
}

impl RegionRun {
    fn ours(&self, role: Role<'_>) -> Tags {
        tags::resource_tags(&self.job, Some(role), self.expires)
    }

    async fn run(self) -> Result<(), BoxError> {
        let (g, r, st) = (&*self.guard, &self.region, &*self.stats);
        // Discovery: every running instance, a page of 1,000 at a time.
        let mut targets: Vec<(InstanceId, Tags, usize)> = Vec::new();
        let mut token = None;
        loop {
            let input = DescribeInput {
                filters: vec![Filter::new("instance-state-name", ["running"])],
                next_token: token.take(),
                max_results: Some(1000),
                ..DescribeInput::default()
            };
            let page = call!(st, g.describe_instances(r, &input))?;
            targets.extend(page.items.into_iter().map(|i| (i.id, i.tags, i.volumes.len())));
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let images = DescribeImagesInput {
            owners: vec!["amazon".into()],
            describe: DescribeInput::filters(vec![Filter::new("architecture", ["x86_64"])]),
        };
        let image = call!(st, g.describe_images(r, &images))?.items.into_iter().next().ok_or("no Amazon image")?;
        let image = Tagged::new(image.id, image.tags);
        let net = self.network().await?;

        // Snapshots are deleted by their own task, as scanners terminate (DeleteSnapshot has its
        // own token bucket).
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Tagged<SnapshotId>>>();
        let deleter = {
            let (guard, region, stats) = (Arc::clone(&self.guard), r.clone(), Arc::clone(&self.stats));
            tokio::spawn(async move {
                while let Some(batch) = rx.recv().await {
                    for snapshot in batch {
                        let input = DeleteSnapshotInput { snapshot };
                        call!(&stats, guard.delete_snapshot(&region, &input))?;
                    }
                }
                Ok::<_, CloudError>(())
            })
        };

        let mut next = 0;
        let mut pending: BTreeMap<SnapshotId, Tags> = BTreeMap::new();
        let mut ready: VecDeque<Tagged<SnapshotId>> = VecDeque::new();
        let mut booting: Vec<Scanner> = Vec::new();
        let mut stopping: Vec<Scanner> = Vec::new();
        let mut launched = 0usize;
        loop {
            while let Some((id, itags, vols)) = targets.get(next)
                && pending.len() + vols <= PENDING_LIMIT
            {
                let stags = tags::snapshot_tags(&self.job, SnapshotSource::Instance { instance: id }, self.expires);
                let input = CreateSnapshotsInput {
                    instance: Tagged::new(id.clone(), itags.clone()),
                    volumes: Vec::new(),
                    exclude_boot_volume: false,
                    description: "agentless scan".into(),
                    tags: stags.clone(),
                };
                let out = call!(st, g.create_snapshots(r, &input))?;
                bump(st, |s| s.snapshots += out.snapshots.len() as u64);
                pending.extend(out.snapshots.into_iter().map(|s| (s.snapshot_id, stags.clone())));
                next += 1;
            }
            let all_taken = next == targets.len() && pending.is_empty();
            while ready.len() >= VOLUMES_PER_SCANNER || (all_taken && !ready.is_empty()) {
                let take = ready.len().min(VOLUMES_PER_SCANNER);
                let snapshots: Vec<Tagged<SnapshotId>> = ready.drain(..take).collect();
                let scanner = self.launch(&image, &net, &snapshots, launched).await?;
                launched += 1;
                booting.push(Scanner { id: scanner, snapshots });
            }
            if all_taken && ready.is_empty() && booting.is_empty() && stopping.is_empty() {
                break;
            }
            tokio::time::sleep(POLL).await;

            let ids: Vec<SnapshotId> = pending.keys().cloned().collect();
            for chunk in ids.chunks(IDS_PER_CALL) {
                let input = DescribeSnapshotsInput {
                    owner: self.account.clone(),
                    describe: DescribeInput::ids(chunk.to_vec()),
                };
                for s in call!(st, g.describe_snapshots(r, &input))?.items {
                    match s.state {
                        SnapshotState::Completed => {
                            if let Some(t) = pending.remove(&s.id) {
                                ready.push_back(Tagged::new(s.id, t));
                            }
                        }
                        SnapshotState::Error => {
                            bump(st, |s| s.failed_snapshots += 1);
                            if let Some(t) = pending.remove(&s.id) {
                                let _ = tx.send(vec![Tagged::new(s.id, t)]);
                            }
                        }
                        // Pending (the sim has no other state).
                        _ => {}
                    }
                }
            }
            let running = self.in_state(&booting, InstanceState::Running).await?;
            let (up, still): (Vec<Scanner>, Vec<Scanner>) = booting.drain(..).partition(|s| running.contains(&s.id));
            booting = still;
            let scanner_tags = self.ours(Role::SCANNER);
            for chunk in up.chunks(IDS_PER_CALL) {
                let input = TerminateInstancesInput {
                    instances: chunk.iter().map(|s| Tagged::new(s.id.clone(), scanner_tags.clone())).collect(),
                };
                call!(st, g.terminate_instances(r, &input))?;
            }
            stopping.extend(up);
            let gone = self.in_state(&stopping, InstanceState::Terminated).await?;
            let (done, still): (Vec<Scanner>, Vec<Scanner>) = stopping.drain(..).partition(|s| gone.contains(&s.id));
            stopping = still;
            for s in done {
                let _ = tx.send(s.snapshots);
            }
        }
        drop(tx);
        deleter.await??;
        self.teardown(net).await?;
        bump(st, |s| s.scanners += launched as u64);
        Ok(())
    }

    /// The ids of `scanners` now in `state`.
    async fn in_state(&self, scanners: &[Scanner], state: InstanceState) -> Result<Vec<InstanceId>, BoxError> {
        let mut out = Vec::new();
        for chunk in scanners.chunks(IDS_PER_CALL) {
            let input = DescribeInput::ids(chunk.iter().map(|s| s.id.clone()).collect());
            let page = call!(&*self.stats, self.guard.describe_instances(&self.region, &input))?;
            out.extend(page.items.into_iter().filter(|i| i.state == state).map(|i| i.id));
        }
        Ok(out)
    }

    async fn launch(
        &self,
        image: &Tagged<ImageId>,
        net: &Network,
        snapshots: &[Tagged<SnapshotId>],
        n: usize,
    ) -> Result<InstanceId, BoxError> {
        let t = self.ours(Role::SCANNER);
        let input = RunScannerInput {
            image: image.clone(),
            root: None,
            instance_type: SCANNER_TYPE.into(),
            subnet: net.subnet.clone(),
            security_groups: vec![net.sg.clone()],
            volumes: snapshots
                .iter()
                .enumerate()
                .map(|(k, s)| ScannerVolume { device_name: device_name(k), snapshot: s.clone(), kms_key: None })
                .collect(),
            user_data_base64: "eyJiZW5jaCI6dHJ1ZX0=".into(),
            client_token: format!("{}-{}-scanner-{n}", self.job, self.region),
            instance_tags: t.clone(),
            volume_tags: t.clone(),
            network_interface_tags: t,
        };
        Ok(call!(&*self.stats, self.guard.run_scanner(&self.region, &input))?.instance_id)
    }

    async fn network(&self) -> Result<Network, BoxError> {
        let (g, r, st) = (&*self.guard, &self.region, &*self.stats);
        let vpc_tags = self.ours(Role::VPC);
        let vpc =
            call!(st, g.create_vpc(r, &CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: vpc_tags.clone() }))?
                .vpc_id;
        let vpc = Tagged::new(vpc, vpc_tags);
        let input = CreateSubnetInput {
            vpc: vpc.clone(),
            cidr_block: "10.77.0.0/20".into(),
            availability_zone: format!("{r}a"),
            tags: self.ours(Role::SUBNET),
        };
        let subnet = Tagged::new(call!(st, g.create_subnet(r, &input))?.subnet_id, self.ours(Role::SUBNET));
        let igw_tags = self.ours(Role::INTERNET_GATEWAY);
        let igw = call!(st, g.create_internet_gateway(r, &CreateInternetGatewayInput { tags: igw_tags.clone() }))?;
        let igw = Tagged::new(igw.internet_gateway_id, igw_tags);
        let attach = AttachInternetGatewayInput { internet_gateway: igw.clone(), vpc: vpc.clone() };
        call!(st, g.attach_internet_gateway(r, &attach))?;
        let main = DescribeInput::filters(vec![
            Filter::new("vpc-id", [vpc.id.as_str()]),
            Filter::new("association.main", ["true"]),
        ]);
        let table =
            call!(st, g.describe_route_tables(r, &main))?.items.into_iter().next().ok_or("no main route table")?;
        let route = CreateRouteInput {
            route_table: Tagged::new(table.id, table.tags),
            vpc: vpc.clone(),
            destination_cidr: "0.0.0.0/0".into(),
            gateway: igw.id.clone(),
        };
        call!(st, g.create_route(r, &route))?;
        let sg_input = CreateSecurityGroupInput {
            vpc: vpc.clone(),
            group_name: tags::resource_name(&self.job, Some(Role::SECURITY_GROUP)),
            description: "agentless scanners: no ingress".into(),
            tags: self.ours(Role::SECURITY_GROUP),
        };
        let sg =
            Tagged::new(call!(st, g.create_security_group(r, &sg_input))?.group_id, self.ours(Role::SECURITY_GROUP));
        Ok(Network { vpc, subnet, igw, sg })
    }

    async fn teardown(&self, net: Network) -> Result<(), BoxError> {
        let (g, r, st) = (&*self.guard, &self.region, &*self.stats);
        let sg = DeleteSecurityGroupInput { group: net.sg };
        call!(st, g.delete_security_group(r, &sg))?;
        let subnet = DeleteSubnetInput { subnet: net.subnet };
        call!(st, g.delete_subnet(r, &subnet))?;
        let detach = DetachInternetGatewayInput { internet_gateway: net.igw.clone(), vpc: net.vpc.clone() };
        call!(st, g.detach_internet_gateway(r, &detach))?;
        let igw = DeleteInternetGatewayInput { internet_gateway: net.igw };
        call!(st, g.delete_internet_gateway(r, &igw))?;
        let vpc = DeleteVpcInput { vpc: net.vpc };
        call!(st, g.delete_vpc(r, &vpc))?;
        Ok(())
    }
}

/// The ephemeral network of one (account, Region).
struct Network {
    vpc: Tagged<agentless::cloud::VpcId>,
    subnet: Tagged<agentless::cloud::SubnetId>,
    igw: Tagged<agentless::cloud::InternetGatewayId>,
    sg: Tagged<agentless::cloud::SecurityGroupId>,
}

/// Count the guards' traces into `stats`, emptying them.
fn drain(guards: &[Arc<Guard<SimCloud>>], stats: &Mutex<Stats>) {
    for g in guards {
        let trace = g.take_trace();
        bump(stats, |s| {
            for e in trace {
                *s.calls.entry(e.op).or_insert(0) += 1;
                s.refused += u64::from(!e.allowed);
            }
        });
    }
}

/// Peak resident set size of this process (`VmHWM` of `/proc/self/status`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the fleet's accounts still hold of the job: snapshots, non-terminated scanners, VPCs
/// other than the default ones.
fn leftovers(sim: &SimCloud) -> (usize, usize, usize) {
    sim.inspect(|w| {
        let mut out = (0, 0, 0);
        for a in w.accounts.values() {
            for r in a.regions.values() {
                out.0 += r.snapshots.len();
                out.1 += r
                    .instances
                    .values()
                    .filter(|i| i.user_data_base64.is_some() && !matches!(i.life, Life::Terminated { .. }))
                    .count();
                out.2 += r.vpcs.values().filter(|v| !v.is_default).count();
            }
        }
        out
    })
}

fn hms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    if args.regions == 0 || args.regions > SYNTHETIC_REGIONS.len() || args.accounts == 0 {
        return Err(format!("--regions must be 1 to {} and --accounts at least 1", SYNTHETIC_REGIONS.len()).into());
    }
    let wall = std::time::Instant::now();
    let fleet = fleet(&args)?;
    let volumes: usize = fleet.accounts.iter().flat_map(|a| &a.instances).map(|i| i.volumes.len()).sum();
    let sim = SimCloud::in_memory(&fleet)?;
    let built = wall.elapsed();
    let start_ms = sim.now_ms();
    let policy = agentless_scan_policy()?;
    let job: JobId = "20260315-bench".parse()?;
    let expires: jiff::Timestamp = "2030-01-01T00:00:00Z".parse()?;
    let stats = Arc::new(Mutex::new(Stats::default()));

    let mut guards = Vec::new();
    let mut runs = tokio::task::JoinSet::new();
    for a in &fleet.accounts {
        let principal = sim.as_account(&a.id)?;
        let policy = GuardPolicy::new(vec![policy.clone()], principal.scope(), GuardRules::default());
        let guard = Arc::new(Guard::new(principal, policy).with_pacer(Arc::new(Pacer::new())));
        guards.push(Arc::clone(&guard));
        for region in &a.regions {
            let run = RegionRun {
                guard: Arc::clone(&guard),
                account: a.id.clone(),
                region: region.clone(),
                job: job.clone(),
                expires,
                stats: Arc::clone(&stats),
            };
            runs.spawn(run.run());
        }
    }
    let drainer = {
        let (guards, stats) = (guards.clone(), Arc::clone(&stats));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(DRAIN_EVERY).await;
                drain(&guards, &stats);
            }
        })
    };
    let mut makespan_ms = 0;
    while let Some(done) = runs.join_next().await {
        done??;
        makespan_ms = sim.now_ms().saturating_sub(start_ms);
    }
    drainer.abort();
    drain(&guards, &stats);
    let wall = wall.elapsed();
    let left = leftovers(&sim);

    let s = bump(&stats, std::mem::take);
    let total: u64 = s.calls.values().sum();
    println!(
        "sim_fleet_bench: {} instances, {volumes} volumes, {} accounts x {} Regions",
        args.instances, args.accounts, args.regions
    );
    println!("  wall time          {:.2} s (fleet built in {:.2} s)", wall.as_secs_f64(), built.as_secs_f64());
    println!("  virtual makespan   {} ({} s)", hms(makespan_ms), makespan_ms / 1000);
    println!("  snapshots          {} ({} failed), scanners {}", s.snapshots, s.failed_snapshots, s.scanners);
    println!(
        "  calls              {total} ({:.0} per wall second), {} refused by the guard",
        total as f64 / wall.as_secs_f64().max(1e-9),
        s.refused
    );
    for (op, n) in &s.calls {
        println!("    {op:<28} {n}");
    }
    println!("  throttling errors  {} (transient {})", s.throttled, s.transient);
    match peak_rss_kib() {
        Some(k) => println!("  peak RSS (VmHWM)   {} MiB", k / 1024),
        None => println!("  peak RSS (VmHWM)   unknown (no /proc/self/status)"),
    }
    println!("  left over          {} snapshots, {} live scanners, {} job VPCs", left.0, left.1, left.2);
    if left != (0, 0, 0) || s.refused > 0 {
        return Err("the run left resources behind or the guard refused calls".into());
    }
    Ok(())
}
