//! The simulated account's lifecycle index (`sim::lifecycle`, "The index"): derived, never saved,
//! rebuilt from the state when a process opens the data directory. Across such reloads, snapshots
//! still complete, and instances still boot, terminate and leave Describe, at the virtual
//! millisecond their deadlines say; the pending-snapshot quota and `ClientToken` idempotency read
//! the rebuilt index.

use std::path::Path;
use std::time::Duration;

use agentless::cloud::ops::*;
use agentless::cloud::sim::limits::Quotas;
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::tags::{self, Role, SnapshotSource};
use agentless::cloud::{ErrorKind, Guard, InstanceId, SnapshotId, SubnetId, Tags};

use super::{account, customer, fleet, guard_over, policies, volume_of};
use crate::conformance::{east, expires, job, ours};

fn open(dir: &Path, fleet: &Fleet) -> (SimCloud, Guard<SimCloud>) {
    let sim = SimCloud::open(dir, fleet).expect("open the data dir");
    let guard = guard_over(&sim, policies(&[]));
    (sim, guard)
}

/// End a "process": save the world at the current virtual time (a setup always saves), drop it,
/// and open the directory again, as the next process would.
fn reload(dir: &Path, fleet: &Fleet, sim: SimCloud, guard: Guard<SimCloud>) -> (SimCloud, Guard<SimCloud>) {
    let at = sim.now_ms();
    sim.setup(|_| Ok(())).expect("save");
    drop((guard, sim));
    let (sim, guard) = open(dir, fleet);
    // The virtual clock is ahead of the wall clock here, so the timeline resumes where it was.
    assert_eq!(sim.now_ms(), at, "the timeline resumes at the saved time");
    (sim, guard)
}

async fn snapshot_states(g: &Guard<SimCloud>, ids: &[&SnapshotId]) -> Vec<SnapshotState> {
    let input = DescribeSnapshotsInput {
        owner: account(),
        describe: DescribeInput::ids(ids.iter().map(|s| (*s).clone()).collect()),
    };
    let page = g.describe_snapshots(&east(), &input).await.expect("DescribeSnapshots");
    ids.iter().map(|id| page.items.iter().find(|s| s.id == **id).map(|s| s.state.clone()).expect("described")).collect()
}

async fn instance_state(g: &Guard<SimCloud>, id: &InstanceId) -> Result<InstanceState, ErrorKind> {
    match g.describe_instances(&east(), &DescribeInput::ids(vec![id.clone()])).await {
        Ok(mut page) => Ok(page.items.remove(0).state),
        Err(e) => Err(e.kind()),
    }
}

async fn snapshot_instance(g: &Guard<SimCloud>, instance: &InstanceId) -> Result<CreateSnapshotsOutput, ErrorKind> {
    let input = CreateSnapshotsInput {
        instance: Tagged::new(instance.clone(), Tags::new()),
        volumes: Vec::new(),
        exclude_boot_volume: false,
        description: "index".into(),
        tags: tags::snapshot_tags(&job(), SnapshotSource::Instance { instance }, expires()),
    };
    g.create_snapshots(&east(), &input).await.map_err(|e| e.kind())
}

async fn advance(secs: u64) {
    tokio::time::advance(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn due_times_quotas_and_client_tokens_survive_reloads_of_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let f = Fleet { quotas: Quotas { pending_snapshots_per_region: 3, ..Quotas::default() }, ..fleet() };
    let (sim, g) = open(dir, &f);
    // Half used by default: 40 GiB takes 10 s + 20 GiB × 6 s = 130 s, 20 GiB 70 s, 8 GiB 34 s
    // (sim::limits).
    let a = sim.setup(|s| s.instance(&customer("customer-a", &[40, 20]))).expect("instance a");
    let b = sim.setup(|s| s.instance(&customer("customer-b", &[8, 8]))).expect("instance b");
    let root = volume_of(&sim, &a, 0);
    let t0 = sim.now_ms();
    let started = snapshot_instance(&g, &a).await.expect("CreateSnapshots a").snapshots;
    let slow = started.iter().find(|s| s.volume_id == root).map(|s| s.snapshot_id.clone()).expect("root snapshot");
    let fast = started.iter().find(|s| s.volume_id != root).map(|s| s.snapshot_id.clone()).expect("data snapshot");

    advance(69).await;
    let (sim, g) = reload(dir, &f, sim, g);
    assert_eq!(sim.now_ms() - t0, 69_000);
    assert_eq!(snapshot_states(&g, &[&slow, &fast]).await, [SnapshotState::Pending, SnapshotState::Pending]);
    // The rebuilt index counts the two pending snapshots: b's two more exceed the quota of 3.
    assert_eq!(snapshot_instance(&g, &b).await.map(|_| ()), Err(ErrorKind::QuotaExceeded));
    advance(1).await;
    assert_eq!(snapshot_states(&g, &[&slow, &fast]).await, [SnapshotState::Pending, SnapshotState::Completed]);
    let of_b = snapshot_instance(&g, &b).await.expect("room for b's two now").snapshots;
    advance(59).await;
    let (sim, g) = reload(dir, &f, sim, g);
    assert_eq!(
        snapshot_states(&g, &[&slow, &of_b[0].snapshot_id]).await,
        [SnapshotState::Pending, SnapshotState::Completed]
    );
    advance(1).await;
    assert_eq!(snapshot_states(&g, &[&slow]).await, [SnapshotState::Completed]);

    // A scanner of a's two snapshots: boots in 30 s, across a reload.
    let snap_tags = tags::snapshot_tags(&job(), SnapshotSource::Instance { instance: &a }, expires());
    let input = scanner_input(&sim, &[&fast, &slow], &snap_tags);
    let launched = g.run_scanner(&east(), &input).await.expect("RunInstances");
    advance(10).await;
    let (sim, g) = reload(dir, &f, sim, g);
    let again = g.run_scanner(&east(), &input).await.expect("same ClientToken");
    assert_eq!(again, launched, "the rebuilt index finds the ClientToken");
    advance(19).await;
    assert_eq!(instance_state(&g, &launched.instance_id).await, Ok(InstanceState::Pending));
    advance(1).await;
    assert_eq!(instance_state(&g, &launched.instance_id).await, Ok(InstanceState::Running));

    // Terminated 45 s later, across a reload; its volumes go with it.
    let scanner = Tagged::new(launched.instance_id.clone(), ours(Role::SCANNER));
    g.terminate_instances(&east(), &TerminateInstancesInput { instances: vec![scanner] }).await.expect("terminate");
    let volumes: Vec<_> = sim.inspect(|w| {
        w.accounts[&account()].regions[&east()].instances[&launched.instance_id]
            .attachments
            .iter()
            .map(|v| v.volume_id.clone())
            .collect()
    });
    advance(44).await;
    let (sim, g) = reload(dir, &f, sim, g);
    assert_eq!(instance_state(&g, &launched.instance_id).await, Ok(InstanceState::ShuttingDown));
    advance(1).await;
    assert_eq!(instance_state(&g, &launched.instance_id).await, Ok(InstanceState::Terminated));
    let gone = g.describe_volumes(&east(), &DescribeInput::ids(volumes)).await.expect_err("deleted on termination");
    assert_eq!(gone.kind(), ErrorKind::NotFound);

    // Visible for an hour after it terminated, then gone; a reload half way.
    advance(1800).await;
    let (sim, g) = reload(dir, &f, sim, g);
    advance(1799).await;
    assert_eq!(instance_state(&g, &launched.instance_id).await, Ok(InstanceState::Terminated));
    advance(1).await;
    assert_eq!(instance_state(&g, &launched.instance_id).await, Err(ErrorKind::NotFound));
    drop((g, sim));
}

/// `RunInstances` of an `m5.xlarge` scanner in the default subnet of us-east-1a with these
/// snapshots of ours.
fn scanner_input(sim: &SimCloud, snapshots: &[&SnapshotId], snap_tags: &Tags) -> RunScannerInput {
    let (image, subnet): (Tagged<_>, SubnetId) = sim.inspect(|w| {
        let r = &w.accounts[&account()].regions[&east()];
        let (id, i) = r.images.iter().find(|(_, i)| i.architecture == "x86_64").expect("an Amazon image");
        let subnet = r.subnets.iter().find(|(_, s)| s.availability_zone == "us-east-1a").expect("default subnet");
        (Tagged::new(id.clone(), i.tags.clone()), subnet.0.clone())
    });
    let devices = ["/dev/sdf", "/dev/sdg"];
    RunScannerInput {
        image,
        root: None,
        instance_type: "m5.xlarge".into(),
        subnet: Tagged::new(subnet, ours(Role::SUBNET)),
        security_groups: Vec::new(),
        volumes: snapshots
            .iter()
            .zip(devices)
            .map(|(s, d)| ScannerVolume {
                device_name: d.into(),
                snapshot: Tagged::new((*s).clone(), snap_tags.clone()),
                kms_key: None,
            })
            .collect(),
        user_data_base64: String::new(),
        client_token: "index-reload-1".into(),
        instance_tags: ours(Role::SCANNER),
        volume_tags: ours(Role::SCANNER),
        network_interface_tags: ours(Role::SCANNER),
    }
}
