//! The orchestrator as a library on the simulated account under tokio's paused clock (virtual
//! time, the mode of fleet runs and chaos tests), the hypervisor running the agent's code in
//! process: the job ends `Done`, nothing is left, and the guard's trace — every call the job made
//! — was allowed by `policies/agentless-scan.json` alone. Then the same with faults injected from
//! a seed (throttling, 5xx, lost responses).

use std::sync::Arc;

use agentless::cloud::Region;
use agentless::cloud::pacer::Pacer;
use agentless::cloud::sim::faults::{Faults, Rates};
use agentless::cloud::sim::hypervisor::{AgentRunner, Hypervisor};
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::collector::Collector;
use agentless::job::runner::LogProgress;
use agentless::job::{JobSettings, Runner, ScannerImage, Selector};
use agentless::ledger::{JobState, Ledger};

use super::{demo_fleet, sim_leftovers};
use crate::util::{open_ledger, policy_guard, shared, sim_runner};

struct Setup {
    sim: SimCloud,
    runner: Runner<SimCloud>,
    _hypervisor: Hypervisor,
    _dir: tempfile::TempDir,
}

fn setup(faults: Option<Faults>) -> Setup {
    let fleet = Fleet::load(&demo_fleet()).expect("fleet");
    setup_with(&fleet, faults, JobSettings::new(ScannerImage::Version(agentless::cloud::tags::image_version())), None)
}

fn setup_with(
    fleet: &Fleet,
    faults: Option<Faults>,
    settings: JobSettings,
    budget: Option<Arc<dyn agentless::job::Budget>>,
) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimCloud::in_memory(fleet).expect("sim");
    if let Some(f) = faults {
        sim.set_faults(f).expect("faults");
    }
    let region: Region = "us-east-1".parse().expect("region");
    sim.install_scanner_image(std::slice::from_ref(&region)).expect("image");
    let guard = Arc::new(policy_guard(&sim).with_pacer(Arc::new(Pacer::new())));
    let collector = Collector::new(dir.path(), scanner_ami::bundle::BundleLimits::default());
    // As `--cloud sim` does: every bundle must carry an identity document signed by the simulated
    // account's test CA for the instance, account and Region the ledger recorded.
    let ca = agentless::cloud::sim::hypervisor::sim_identity_ca().expect("sim CA");
    collector.set_identity_trust(Some(agentless::collector::IdentityTrust::test_ca(ca).expect("trust")));
    let hypervisor = Hypervisor::start(
        sim.clone(),
        AgentRunner::InProcess { sink: Arc::new(collector.clone()) },
        dir.path().join("hv"),
    );
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    std::mem::forget(_tx);
    let ledger = shared(open_ledger(dir.path()));
    let runner = sim_runner(&sim, guard, ledger, collector, settings, Arc::new(LogProgress), cancel);
    let runner = match budget {
        Some(b) => runner.with_budget(b),
        None => runner,
    };
    Setup { sim, runner, _hypervisor: hypervisor, _dir: dir }
}

#[tokio::test(start_paused = true)]
async fn a_job_on_virtual_time_stays_within_the_custom_policy() {
    let s = setup(None);
    let region: Region = "us-east-1".parse().expect("region");
    let job = s.runner.create(&region, Selector::All, "http://127.0.0.1:9").expect("create");
    let started = tokio::time::Instant::now();
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert_eq!(outcome.state, JobState::Done, "{:?}", outcome.doc.failure);
    let scanned = outcome.doc.volumes().filter(|(_, v)| v.scanned).count();
    assert_eq!(scanned, 6, "{:#?}", outcome.doc);
    // Virtual time: minutes of simulated snapshot and boot latency passed.
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    let trace = s.runner.guard().trace();
    assert!(!trace.is_empty());
    assert!(trace.iter().all(|t| t.allowed), "refused: {:?}", trace.iter().filter(|t| !t.allowed).collect::<Vec<_>>());
    let policies = s.runner.guard().policy().policies();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].name(), "agentless-scan.json");
    for op in [
        "CreateSnapshots",
        "CreateGrant",
        "CreateVpc",
        "RunInstances",
        "TerminateInstances",
        "DeleteVpc",
        "DeleteSnapshot",
        "RevokeGrant",
    ] {
        assert!(trace.iter().any(|t| t.op == op), "{op} not in the trace");
    }
    assert_eq!(sim_leftovers(&s.sim), Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn faults_from_a_seed_do_not_leak_or_lose_results() {
    for seed in [3, 17, 2026] {
        let faults = Faults {
            seed,
            rates: Rates { throttle: 0.05, internal_error: 0.03, unavailable: 0.02, timeout: 0.0, lost_response: 0.03 },
            ..Faults::default()
        };
        let s = setup(Some(faults));
        let region: Region = "us-east-1".parse().expect("region");
        let job = s.runner.create(&region, Selector::All, "http://127.0.0.1:9").expect("create");
        let outcome = s.runner.drive(&job).await.expect("drive");
        let injected = s.sim.fault_log().len();
        assert!(injected > 0, "seed {seed}: no fault injected");
        assert!(matches!(outcome.state, JobState::Done | JobState::Failed), "seed {seed}: {:?}", outcome.state);
        assert_eq!(
            sim_leftovers(&s.sim),
            Vec::<String>::new(),
            "seed {seed}: leaked ({injected} faults): {:?}",
            outcome.doc.leaked
        );
        assert!(s.runner.guard().trace().iter().all(|t| t.allowed), "seed {seed}");
        // Every volume either has a result or says why not.
        for (i, v) in outcome.doc.volumes() {
            assert!(v.scanned || v.error.is_some() || v.unscannable.is_some(), "seed {seed}: {i} {v:?}");
        }
    }
}

/// The snapshot timeout counts from each snapshot's creation, not from the start of the step: with
/// a shared budget of one pending snapshot, four 100 s snapshots take over 400 s one after the
/// other, and none of them times out at 150 s; a snapshot that really takes longer than 150 s
/// does, alone, and says so. An instance with more volumes than the budget can ever grant at once
/// is snapshotted one volume at a time (it used to wait for ever).
#[tokio::test(start_paused = true)]
async fn the_snapshot_timeout_counts_from_each_snapshots_creation() {
    use agentless::schedule::{Dispatcher, Limits};
    let volume = |used: u32| format!("[[accounts.instances.volumes]]\nsize_gib = 500\nused_gib = {used}\n");
    let instance = |name: &str, used: u32| {
        format!(
            "[[accounts.instances]]\nregion = \"us-east-1\"\nzone = \"a\"\ninstance_type = \"t3.small\"\ntags = {{ Name = \"{name}\" }}\n{}",
            volume(used)
        )
    };
    // 100 s per snapshot (base), plus 1 s per used GiB: "slow" takes 100 + 200 s.
    let mut text = String::from(
        "seed = 7\n[latencies]\nsnapshot_base_ms = 100000\nsnapshot_ms_per_used_gib = 1000\ninstance_boot_ms = 5000\n\
         [[accounts]]\nid = \"111122223333\"\nuser = \"agentless-scanner\"\nregions = [\"us-east-1\"]\n",
    );
    for n in 0..4 {
        text.push_str(&instance(&format!("quick-{n}"), 0));
    }
    text.push_str(&instance("slow", 200));
    text.push_str(&instance("three-volumes", 0));
    text.push_str(&volume(0));
    text.push_str(&volume(0));
    let fleet = Fleet::parse(&text).expect("fleet");
    let mut settings = JobSettings::new(ScannerImage::Version(agentless::cloud::tags::image_version()));
    settings.snapshot_timeout = std::time::Duration::from_secs(150);
    let budget = Arc::new(Dispatcher::new(Limits {
        pending_snapshots: 1,
        snapshots_per_volume: 5,
        concurrent_copies: 20,
        networks: 4,
        vcpus: None,
    }));
    let s = setup_with(&fleet, None, settings, Some(budget));
    let region: Region = "us-east-1".parse().expect("region");
    let job = s.runner.create(&region, Selector::All, "http://127.0.0.1:9").expect("create");
    let started = tokio::time::Instant::now();
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert!(started.elapsed() >= std::time::Duration::from_secs(500), "{:?}", started.elapsed());
    let mut quick = 0;
    for (i, t) in outcome.doc.targets() {
        for v in &t.volumes {
            if t.tags.name() == Some("slow") {
                let e = v.error.as_deref().unwrap_or_default();
                assert!(e.contains("still pending 150 s after its creation"), "{i}: {v:?}");
                assert!(!v.scanned);
            } else {
                assert!(v.scanned && v.error.is_none(), "{i}: {v:?}");
                quick += 1;
            }
        }
    }
    assert_eq!(quick, 4 + 3);
    let singles = s.runner.guard().trace().iter().filter(|t| t.op == "CreateSnapshot").count();
    assert_eq!(singles, 3, "the three-volume instance, one volume at a time");
    assert_eq!(sim_leftovers(&s.sim), Vec::<String>::new());
}

/// A finished job's HMAC key is erased from the ledger: not in the database file nor its WAL.
#[tokio::test(start_paused = true)]
async fn a_finished_jobs_key_is_erased_from_the_ledger_file() {
    let s = setup(None);
    let region: Region = "us-east-1".parse().expect("region");
    let job = s.runner.create(&region, Selector::All, "http://127.0.0.1:9").expect("create");
    let key: String = Ledger::open(s._dir.path())
        .expect("second connection")
        .job_data(&job, agentless::job::doc::KEY)
        .expect("read")
        .expect("the key is stored while the job runs");
    assert_eq!(key.len(), 64);
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert_eq!(outcome.state, JobState::Done, "{:?}", outcome.doc.failure);
    let stored: Option<String> =
        Ledger::open(s._dir.path()).expect("connection").job_data(&job, agentless::job::doc::KEY).expect("read");
    assert_eq!(stored, None, "the key of a finished job is still in the ledger");
    // Not merely unlinked from the table: absent from the bytes of the file and its siblings.
    for entry in std::fs::read_dir(s._dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.starts_with(agentless::ledger::FILE_NAME) {
            let bytes = std::fs::read(&path).expect("read");
            let found = bytes.windows(key.len()).any(|w| w == key.as_bytes());
            assert!(!found, "the key is still in the bytes of {name}");
        }
    }
}

/// A copy of the installed scanner image under `id` named `name` (same tags): what any principal
/// allowed `ec2:CreateTags` (unconditioned in the policy) can make of an image of its own.
fn add_image(sim: &SimCloud, id: &str, name: &str) -> agentless::cloud::ImageId {
    let id: agentless::cloud::ImageId = id.parse().expect("ami");
    let account = sim.account().clone();
    let region: Region = "us-east-1".parse().expect("region");
    let new = id.clone();
    sim.setup(move |s| {
        let world = s.world();
        let r = world.accounts.get_mut(&account).and_then(|a| a.regions.get_mut(&region)).expect("region");
        let mut image = r
            .images
            .values()
            .find(|i| i.tags.get("agentless:image-version").is_some())
            .cloned()
            .expect("the scanner image");
        image.name = name.to_owned();
        r.images.insert(new, image);
        Ok(())
    })
    .expect("setup");
    id
}

fn launched_images(sim: &SimCloud) -> Vec<String> {
    sim.inspect(|w| {
        w.accounts
            .values()
            .flat_map(|a| a.regions.values())
            .flat_map(|r| r.instances.values())
            .filter_map(|i| i.image.as_ref().map(ToString::to_string))
            .collect()
    })
}

/// Chosen by tag, two candidates is one too many: the job refuses, naming both, and launches
/// nothing.
#[tokio::test(start_paused = true)]
async fn two_tagged_scanner_images_are_refused_naming_both() {
    let s = setup(None);
    let ours = s.sim.inspect(|w| {
        w.accounts
            .values()
            .flat_map(|a| a.regions.values())
            .flat_map(|r| r.images.iter())
            .find(|(_, i)| i.tags.get("agentless:image-version").is_some())
            .map(|(id, _)| id.clone())
    });
    let ours = ours.expect("installed image");
    let name = format!("alibaba-cloud-security-scan-image-{}-20260101-000000", agentless::cloud::tags::image_version());
    let other = add_image(&s.sim, "ami-0feedfacecafe0001", &name);
    let region: Region = "us-east-1".parse().expect("region");
    let job = s.runner.create(&region, Selector::All, "http://127.0.0.1:9").expect("create");
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert_eq!(outcome.state, JobState::Failed);
    let failure = outcome.doc.failure.clone().unwrap_or_default();
    assert!(failure.contains(ours.as_str()) && failure.contains(other.as_str()), "{failure}");
    assert!(launched_images(&s.sim).is_empty(), "{:?}", launched_images(&s.sim));
    assert_eq!(sim_leftovers(&s.sim), Vec::<String>::new());
}

/// Chosen by tag, an image whose AMI name lacks our prefix is not a candidate: the tag alone
/// (anyone may set it) does not nominate an image.
#[tokio::test(start_paused = true)]
async fn a_tagged_image_without_our_name_prefix_is_not_a_scanner_image() {
    let fleet = Fleet::load(&demo_fleet()).expect("fleet");
    let s = setup_with(&fleet, None, JobSettings::new(ScannerImage::Version("9-9-9".into())), None);
    let version_tagged = s.sim.setup(|st| {
        let world = st.world();
        let mut n = 0;
        for r in world.accounts.values_mut().flat_map(|a| a.regions.values_mut()) {
            for i in r.images.values_mut() {
                if i.tags.get("agentless:image-version").is_some() {
                    i.tags.insert("agentless:image-version", "9-9-9").expect("tag");
                    i.name = "someone-elses-image".into();
                    n += 1;
                }
            }
        }
        Ok(n)
    });
    assert_eq!(version_tagged.expect("setup"), 1);
    let region: Region = "us-east-1".parse().expect("region");
    let job = s.runner.create(&region, Selector::All, "http://127.0.0.1:9").expect("create");
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert_eq!(outcome.state, JobState::Failed);
    let failure = outcome.doc.failure.clone().unwrap_or_default();
    assert!(failure.contains("someone-elses-image"), "{failure}");
    assert!(launched_images(&s.sim).is_empty());
}

/// Pinned per Region: the job in us-east-1 boots the AMI pinned for us-east-1 (an untagged,
/// foreign-named image the user chose), and a map without us-east-1 is refused before anything is
/// launched, naming what was pinned, rather than falling back to a tag search.
#[tokio::test(start_paused = true)]
async fn a_per_region_pin_boots_that_regions_image_and_refuses_a_region_without_one() {
    let fleet = Fleet::load(&demo_fleet()).expect("fleet");
    let pinned: agentless::cloud::ImageId = "ami-0feedfacecafe0002".parse().expect("ami");
    let west: Region = "us-west-2".parse().expect("region");
    let east: Region = "us-east-1".parse().expect("region");

    let only_west = std::collections::BTreeMap::from([(west.clone(), pinned.clone())]);
    let s = setup_with(&fleet, None, JobSettings::new(ScannerImage::ByRegion(only_west)), None);
    add_image(&s.sim, pinned.as_str(), "my-hardened-scanner");
    let job = s.runner.create(&east, Selector::All, "http://127.0.0.1:9").expect("create");
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert_eq!(outcome.state, JobState::Failed);
    let failure = outcome.doc.failure.clone().unwrap_or_default();
    assert!(failure.contains("no scanner image pinned for us-east-1") && failure.contains("us-west-2="), "{failure}");
    assert!(launched_images(&s.sim).is_empty());
    assert_eq!(sim_leftovers(&s.sim), Vec::<String>::new());

    let both = std::collections::BTreeMap::from([
        (west, "ami-0feedfacecafe0003".parse().expect("ami")),
        (east.clone(), pinned.clone()),
    ]);
    let s = setup_with(&fleet, None, JobSettings::new(ScannerImage::ByRegion(both)), None);
    add_image(&s.sim, pinned.as_str(), "my-hardened-scanner");
    let job = s.runner.create(&east, Selector::All, "http://127.0.0.1:9").expect("create");
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert_eq!(outcome.state, JobState::Done, "{:?}", outcome.doc.failure);
    let launched = launched_images(&s.sim);
    assert!(!launched.is_empty() && launched.iter().all(|i| i == pinned.as_str()), "{launched:?}");
    assert_eq!(sim_leftovers(&s.sim), Vec::<String>::new());
}

/// By exact name: the user's name selects that image whatever its tags; a name no image of the
/// account carries fails the job naming it, and nothing is launched.
#[tokio::test(start_paused = true)]
async fn an_image_chosen_by_exact_name_is_that_image_and_an_unknown_name_is_refused() {
    let fleet = Fleet::load(&demo_fleet()).expect("fleet");
    let east: Region = "us-east-1".parse().expect("region");
    let id: agentless::cloud::ImageId = "ami-0feedfacecafe0004".parse().expect("ami");

    let s = setup_with(&fleet, None, JobSettings::new(ScannerImage::Name("my-hardened-scanner-2".into())), None);
    add_image(&s.sim, id.as_str(), "my-hardened-scanner");
    let job = s.runner.create(&east, Selector::All, "http://127.0.0.1:9").expect("create");
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert_eq!(outcome.state, JobState::Failed);
    let failure = outcome.doc.failure.clone().unwrap_or_default();
    assert!(failure.contains("no scanner image named \"my-hardened-scanner-2\""), "{failure}");
    assert!(launched_images(&s.sim).is_empty());

    let s = setup_with(&fleet, None, JobSettings::new(ScannerImage::Name("my-hardened-scanner".into())), None);
    add_image(&s.sim, id.as_str(), "my-hardened-scanner");
    let job = s.runner.create(&east, Selector::All, "http://127.0.0.1:9").expect("create");
    let outcome = s.runner.drive(&job).await.expect("drive");
    assert_eq!(outcome.state, JobState::Done, "{:?}", outcome.doc.failure);
    let launched = launched_images(&s.sim);
    assert!(!launched.is_empty() && launched.iter().all(|i| i == id.as_str()), "{launched:?}");
    assert_eq!(sim_leftovers(&s.sim), Vec::<String>::new());
}
