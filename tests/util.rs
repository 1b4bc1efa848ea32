//! The test rig every suite of this binary shares (as ripgrep's `tests/util.rs`): the bundled
//! policy and the guard with it, the simulated account's clock and a ledger stamping with it, a
//! runner on the simulated account, the count of what we left in the simulated account, and the
//! moto customer fleet the job and daemon suites scan. Each setup is written here once; the
//! suites keep only what is their own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use agentless::cloud::sim::SimCloud;
use agentless::cloud::sim::state::{Life, RegionState};
use agentless::cloud::tags::RESOURCE_NAME_PREFIX;
use agentless::cloud::{Guard, GuardPolicy, GuardRules, ImageId, InstanceId, Region, Tags};
use agentless::collector::Collector;
use agentless::job::runner::NowMs;
use agentless::job::{JobSettings, Progress, Runner};
use agentless::ledger::Ledger;
use agentless::policy::{Policy, agentless_scan_policy};
use aws_sdk_ec2::types as ec2t;

use crate::conformance::{OUR_PREFIXES, east};
use crate::moto::Moto;
use crate::moto::hypervisor::{CustomerVolume, TestHypervisor, amazon_image, create_fleet, leftovers, name_tag};

/// Run `agentless <args>` to its end: exit code, stdout, stderr.
pub fn run_agentless(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentless")).args(args).output().expect("run agentless");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// The policy and the guard.

/// The bundled custom policy (`policies/agentless-scan.json`).
pub fn scan_policy() -> Policy {
    agentless_scan_policy().expect("policy")
}

/// The bundled policy and `extra` JSON policies (named `extra-<i>`).
pub fn policies(extra: &[&str]) -> Vec<Policy> {
    let mut p = vec![scan_policy()];
    p.extend(extra.iter().enumerate().map(|(i, t)| Policy::parse(format!("extra-{i}"), t).expect("extra policy")));
    p
}

/// `sim` behind a guard with `policies` and `rules`, scoped to the sim's account and user.
pub fn sim_guard_with(sim: &SimCloud, policies: Vec<Policy>, rules: GuardRules) -> Guard<SimCloud> {
    Guard::new(sim.clone(), GuardPolicy::new(policies, sim.scope(), rules))
}

/// `sim` behind a guard with the bundled custom policy alone (default rules), as the
/// orchestrator runs it: the guard whose trace shows every call the policy would refuse.
pub fn policy_guard(sim: &SimCloud) -> Guard<SimCloud> {
    sim_guard_with(sim, vec![scan_policy()], GuardRules::default())
}

// ---------------------------------------------------------------------------------------------
// The simulated account's clock and the ledger.

/// Now on the simulated account's timeline.
pub fn sim_now(sim: &SimCloud) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(i64::try_from(sim.now_ms()).expect("ms")).expect("timestamp")
}

/// The simulated account's clock in milliseconds, as a runner or daemon takes it.
pub fn sim_now_ms(sim: &SimCloud) -> NowMs {
    let s = sim.clone();
    Arc::new(move || i64::try_from(s.now_ms()).unwrap_or(i64::MAX))
}

/// The ledger of the data directory `dir` (created if missing).
pub fn open_ledger(dir: &Path) -> Ledger {
    Ledger::open(dir).expect("ledger")
}

/// `ledger` stamping its rows with the simulated account's clock.
pub fn on_sim_clock(sim: &SimCloud, ledger: Ledger) -> Ledger {
    let s = sim.clone();
    ledger.with_clock(Arc::new(move || sim_now(&s)))
}

/// A ledger handle to share with a runner or a daemon.
pub fn shared(ledger: Ledger) -> Arc<Mutex<Ledger>> {
    Arc::new(Mutex::new(ledger))
}

/// The caller ARN of the orchestrator's IAM user in `account` (the fleet files' default user).
pub fn scanner_user_arn(account: &agentless::cloud::AccountId) -> String {
    format!("arn:aws:iam::{account}:user/agentless-scanner")
}

/// A runner on the simulated account: its account, the scanner user's ARN and its clock.
pub fn sim_runner(
    sim: &SimCloud,
    guard: Arc<Guard<SimCloud>>,
    ledger: Arc<Mutex<Ledger>>,
    collector: Collector,
    settings: JobSettings,
    progress: Arc<dyn Progress>,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Runner<SimCloud> {
    let account = sim.account().clone();
    let arn = scanner_user_arn(&account);
    Runner::new(guard, ledger, collector, settings, account, arn, progress, sim_now_ms(sim), cancel)
}

// ---------------------------------------------------------------------------------------------
// What we left in the simulated account.

/// Named with one of our prefixes (`SAS_Agentless…`, `alibaba-cloud-security-scan…`).
pub fn named_ours(t: &Tags) -> bool {
    t.name().is_some_and(|n| OUR_PREFIXES.iter().any(|p| n.starts_with(p)))
}

/// [`named_ours`], our scanner image (tagged `agentless:image-version`) excepted.
pub fn named_ours_not_image(t: &Tags) -> bool {
    named_ours(t) && t.get("agentless:image-version").is_none()
}

/// Named with our prefixes or tagged with our job tag (a Name removed by hand), our scanner image
/// excepted.
pub fn made_by_a_job(t: &Tags) -> bool {
    (named_ours(t) || t.get("agentless:job").is_some()) && t.get("agentless:image-version").is_none()
}

/// The resources of `sim` that `ours` takes for ours and that still exist — in `region`, or in
/// every Region of every account: instances (terminated ones excepted), volumes, snapshots, VPCs,
/// subnets, security groups, internet gateways, VPC endpoints, network interfaces, and the KMS
/// grants named with our prefix. Each as `<kind> <id>` (`instance`, `volume`, `snapshot`, `vpc`,
/// `subnet`, `sg`, `igw`, `vpce`, `eni`, `grant`), the order the account keeps them in.
pub fn ours_left(sim: &SimCloud, region: Option<&Region>, ours: fn(&Tags) -> bool) -> Vec<String> {
    sim.inspect(|w| {
        let mut out = Vec::new();
        for a in w.accounts.values() {
            for (name, r) in &a.regions {
                if region.is_none_or(|want| want == name) {
                    ours_in(r, ours, &mut out);
                }
            }
        }
        out
    })
}

fn ours_in(r: &RegionState, ours: fn(&Tags) -> bool, out: &mut Vec<String>) {
    for (id, i) in &r.instances {
        if ours(&i.tags) && !matches!(i.life, Life::Terminated { .. }) {
            out.push(format!("instance {id}"));
        }
    }
    out.extend(r.volumes.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| format!("volume {id}")));
    out.extend(r.snapshots.iter().filter(|(_, s)| ours(&s.tags)).map(|(id, _)| format!("snapshot {id}")));
    out.extend(r.vpcs.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| format!("vpc {id}")));
    out.extend(r.subnets.iter().filter(|(_, s)| ours(&s.tags)).map(|(id, _)| format!("subnet {id}")));
    out.extend(r.security_groups.iter().filter(|(_, g)| ours(&g.tags)).map(|(id, _)| format!("sg {id}")));
    out.extend(r.internet_gateways.iter().filter(|(_, g)| ours(&g.tags)).map(|(id, _)| format!("igw {id}")));
    out.extend(r.vpc_endpoints.iter().filter(|(_, e)| ours(&e.tags)).map(|(id, _)| format!("vpce {id}")));
    out.extend(r.network_interfaces.iter().filter(|(_, e)| ours(&e.tags)).map(|(id, _)| format!("eni {id}")));
    for k in r.keys.values() {
        out.extend(
            k.grants
                .iter()
                .filter(|g| g.name.as_deref().is_some_and(|n| n.starts_with(RESOURCE_NAME_PREFIX)))
                .map(|g| format!("grant {}", g.id)),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP.

/// The head of one HTTP request read from `sock`: up to its blank line, or what came before the
/// peer closed (the tests' one-shot archive servers answer from it).
pub async fn request_head(sock: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&request).into_owned()
}

// ---------------------------------------------------------------------------------------------
// moto.

/// A fresh moto server in us-east-1 with the customer fleet of `tests/moto/hypervisor.rs` (three
/// instances, six volumes, each standing for a demo disk image unpacked into `images_dir`) and a
/// temporary directory for the test.
pub struct MotoFleet {
    pub moto: Moto,
    pub region: Region,
    pub ec2: aws_sdk_ec2::Client,
    pub dir: tempfile::TempDir,
    /// The Amazon image the fleet was launched from.
    pub base: ImageId,
    pub fleet: Vec<CustomerVolume>,
    /// The fleet's instance ids.
    pub customer_instances: BTreeSet<String>,
}

/// Start moto and make the customer fleet in it (with the raw SDK, as the customer would).
pub async fn moto_fleet() -> MotoFleet {
    let moto = Moto::start().await;
    let region = east();
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk(&region).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let images_dir = dir.path().join("images");
    std::fs::create_dir_all(&images_dir).expect("images dir");
    let base = amazon_image(&ec2).await;
    let fleet = create_fleet(&ec2, &base, &images_dir).await;
    assert_eq!(fleet.len(), 6);
    let customer_instances = fleet.iter().map(|v| v.instance.clone()).collect();
    MotoFleet { moto, region, ec2, dir, base, fleet, customer_instances }
}

impl MotoFleet {
    /// The test hypervisor over the fleet's volumes and their images (work directory `hv`).
    pub fn hypervisor(&self) -> TestHypervisor {
        TestHypervisor::start(
            self.ec2.clone(),
            self.fleet.iter().map(|v| (v.volume.clone(), v.image.clone())).collect(),
            self.dir.path().join("hv"),
        )
    }

    /// A directory `identity-certs` holding the hypervisor's test CA as `<region>.pem`, the way
    /// AWS's certificates are given to the collector.
    pub fn identity_certs(&self, hypervisor: &TestHypervisor) -> PathBuf {
        let certs = self.dir.path().join("identity-certs");
        std::fs::create_dir_all(&certs).expect("certs dir");
        std::fs::write(certs.join(format!("{}.pem", self.region)), hypervisor.ca.certificate_pem()).expect("cert");
        certs
    }
}

/// Nothing with our Name prefixes left in moto, and the customer's `fleet` untouched: its
/// instances running, its volumes all there.
pub async fn assert_moto_left_clean(ec2: &aws_sdk_ec2::Client, fleet: &[CustomerVolume]) {
    assert_eq!(leftovers(ec2).await, Vec::<String>::new());
    let ids: Vec<String> = fleet.iter().map(|v| v.instance.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let out = ec2.describe_instances().set_instance_ids(Some(ids)).send().await.expect("customer instances");
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        assert_eq!(i.state().and_then(|s| s.name()), Some(&ec2t::InstanceStateName::Running), "{:?}", i.instance_id());
    }
    let vols: Vec<String> = fleet.iter().map(|v| v.volume.clone()).collect();
    let out = ec2.describe_volumes().set_volume_ids(Some(vols)).send().await.expect("customer volumes");
    assert_eq!(out.volumes().len(), fleet.len());
}

/// One t3.micro from `image` named `name` in moto, launched with the raw SDK (the customer's hand).
pub async fn moto_instance(ec2: &aws_sdk_ec2::Client, image: &ImageId, name: &str) -> InstanceId {
    let out = ec2
        .run_instances()
        .image_id(image.as_str())
        .instance_type(ec2t::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(name_tag(ec2t::ResourceType::Instance, name))
        .send()
        .await
        .unwrap_or_else(|e| panic!("RunInstances {name}: {e}"));
    out.instances()[0].instance_id().expect("id").parse().expect("instance id")
}

/// The customer's production server in moto: [`moto_instance`] `customer-prod-db`.
pub async fn moto_customer_instance(ec2: &aws_sdk_ec2::Client, image: &ImageId) -> InstanceId {
    moto_instance(ec2, image, "customer-prod-db").await
}
