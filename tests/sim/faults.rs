//! Faults injected from a seed ([`agentless::cloud::sim::faults`]) and the eventual consistency of
//! Describe ([`agentless::cloud::sim::consistency`]): each fault observable with its error kind and
//! its effect on the state, the same seed giving the same faults, and the lag on the virtual clock.

use std::time::Duration;

use agentless::cloud::ops::*;
use agentless::cloud::sim::faults::{Fault, Faults, InstanceFault, LAUNCH_FAILURE_CODE, Rates};
use agentless::cloud::sim::state::Life;
use agentless::cloud::sim::{Fleet, FleetError, SimCloud, SimError};
use agentless::cloud::tags::{self, Role, SnapshotSource};
use agentless::cloud::{ErrorKind, Guard, InstanceId, Tags, VolumeId, VpcId};

use super::{SimFixture, account, customer, fleet, guard_over, policies, scanner_launch};
use crate::conformance::{east, expires, job, ours};

fn guard(sim: &SimCloud) -> Guard<SimCloud> {
    guard_over(sim, policies(&[]))
}

fn vpc_input() -> CreateVpcInput {
    CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: ours(Role::VPC) }
}

fn vpc_count(sim: &SimCloud) -> usize {
    sim.inspect(|w| w.accounts[&account()].regions[&east()].vpcs.len())
}

fn snapshot_input(sim: &SimCloud, instance: &InstanceId, i: usize) -> CreateSnapshotInput {
    let volume: VolumeId = sim.inspect(|w| {
        let attachments = &w.accounts[&account()].regions[&east()].instances[instance].attachments;
        attachments[i % attachments.len()].volume_id.clone()
    });
    CreateSnapshotInput {
        volume: Tagged::new(volume.clone(), Tags::new()),
        description: "faults".into(),
        tags: tags::snapshot_tags(&job(), SnapshotSource::Volume { instance, volume: &volume }, expires()),
    }
}

#[tokio::test(start_paused = true)]
async fn call_faults_fail_with_their_kind_and_change_nothing() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim);
    sim.set_faults(Faults::scheduled(
        3,
        [
            ("CreateVpc", 1, Fault::Throttle),
            ("CreateVpc", 2, Fault::InternalError),
            ("CreateVpc", 3, Fault::Unavailable),
            ("CreateVpc", 4, Fault::Timeout),
        ],
    ))
    .expect("faults");
    let want = [
        (ErrorKind::Throttled, Some("RequestLimitExceeded")),
        (ErrorKind::Transient, Some("InternalError")),
        (ErrorKind::Transient, Some("Unavailable")),
        (ErrorKind::Transient, None),
    ];
    for (i, want) in want.into_iter().enumerate() {
        let started = tokio::time::Instant::now();
        let err = g.create_vpc(&east(), &vpc_input()).await.expect_err("injected");
        assert_eq!((err.kind(), err.code()), want, "call {}: {err}", i + 1);
        // Only the timeout hangs, for the AWS backend's attempt timeout (on the virtual clock).
        let hung = if i == 3 { Duration::from_secs(60) } else { Duration::ZERO };
        assert_eq!(started.elapsed(), hung, "call {}", i + 1);
        assert_eq!(vpc_count(&sim), 1, "call {} changed nothing (the default VPC only)", i + 1);
    }
    g.create_vpc(&east(), &vpc_input()).await.expect("the 5th call goes through");
    assert_eq!(vpc_count(&sim), 2);
    let log: Vec<(u64, Fault)> = sim.fault_log().iter().map(|f| (f.nth, f.fault)).collect();
    assert_eq!(log, [(1, Fault::Throttle), (2, Fault::InternalError), (3, Fault::Unavailable), (4, Fault::Timeout)]);
    assert!(sim.fault_log().iter().all(|f| f.action == "CreateVpc"));
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_leaves_the_resource_created_and_found_by_its_tags() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim);
    sim.set_faults(Faults::scheduled(1, [("CreateVpc", 1, Fault::LostResponse)])).expect("faults");
    let err = g.create_vpc(&east(), &vpc_input()).await.expect_err("response lost");
    assert_eq!((err.kind(), err.code()), (ErrorKind::Transient, None), "{err}");
    // The VPC exists: the caller recovers its intent by the tags it created it with.
    let name = ours(Role::VPC).name().expect("Name tag").to_owned();
    let found = g
        .describe_vpcs(&east(), &DescribeInput::filters(vec![Filter::new("tag:Name", [name.as_str()])]))
        .await
        .expect("DescribeVpcs");
    assert_eq!(found.items.len(), 1, "{found:?}");
    assert_eq!(vpc_count(&sim), 2);
}

#[tokio::test(start_paused = true)]
async fn a_lost_run_instances_is_recovered_by_its_client_token() {
    let fx = SimFixture::new();
    let g = guard(&fx.sim);
    fx.sim.set_faults(Faults::scheduled(1, [("RunInstances", 1, Fault::LostResponse)])).expect("faults");
    let input = scanner_launch(&fx, &g, "intent-1", Vec::new()).await;
    let err = g.run_scanner(&east(), &input).await.expect_err("response lost");
    assert_eq!(err.kind(), ErrorKind::Transient);
    let by_token = g
        .describe_instances(&east(), &DescribeInput::filters(vec![Filter::new("client-token", ["intent-1"])]))
        .await
        .expect("DescribeInstances");
    assert_eq!(by_token.items.len(), 1, "launched despite the error");
    let retried = g.run_scanner(&east(), &input).await.expect("the retry");
    assert_eq!(retried.instance_id, by_token.items[0].id, "ClientToken: the retry returns the first launch");
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_fault_ends_in_error_after_its_latency() {
    let fx = SimFixture::new();
    let g = guard(&fx.sim);
    let instance = fx.sim.setup(|s| s.instance(&customer("customer-db", &[8, 20]))).expect("instance");
    fx.sim.set_faults(Faults::scheduled(1, [("CreateSnapshot", 1, Fault::SnapshotError)])).expect("faults");
    let bad = g.create_snapshot(&east(), &snapshot_input(&fx.sim, &instance, 0)).await.expect("accepted").snapshot_id;
    let good = g.create_snapshot(&east(), &snapshot_input(&fx.sim, &instance, 1)).await.expect("accepted").snapshot_id;
    let ids = vec![bad.clone(), good.clone()];
    let states = || {
        let (g, ids) = (&g, ids.clone());
        async move {
            let describe = DescribeSnapshotsInput { owner: account(), describe: DescribeInput::ids(ids) };
            let page = g.describe_snapshots(&east(), &describe).await.expect("DescribeSnapshots");
            page.items.into_iter().map(|s| (s.id, s.state)).collect::<Vec<_>>()
        }
    };
    let now = states().await;
    assert!(now.iter().all(|(_, s)| *s == SnapshotState::Pending), "{now:?}");
    tokio::time::advance(Duration::from_secs(600)).await;
    let later = states().await;
    assert!(later.contains(&(bad.clone(), SnapshotState::Error)), "{later:?}");
    assert!(later.contains(&(good.clone(), SnapshotState::Completed)), "{later:?}");
}

#[tokio::test(start_paused = true)]
async fn scanners_that_never_boot_or_never_report() {
    let fx = SimFixture::new();
    let g = guard(&fx.sim);
    fx.sim
        .set_faults(Faults::scheduled(
            1,
            [("RunInstances", 1, Fault::NeverBoots), ("RunInstances", 2, Fault::NeverReports)],
        ))
        .expect("faults");
    let stuck =
        g.run_scanner(&east(), &scanner_launch(&fx, &g, "boot-1", Vec::new()).await).await.expect("launch").instance_id;
    let mute =
        g.run_scanner(&east(), &scanner_launch(&fx, &g, "boot-2", Vec::new()).await).await.expect("launch").instance_id;
    let state = |id: &InstanceId| {
        let (g, id) = (&g, id.clone());
        async move { g.describe_instances(&east(), &DescribeInput::ids(vec![id])).await.expect("DI").items[0].state.clone() }
    };
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(state(&stuck).await, InstanceState::Pending, "still pending after a normal boot time");
    assert_eq!(state(&mute).await, InstanceState::Running);
    let root = fx.sim.inspect(|w| w.accounts[&account()].regions[&east()].instances[&stuck].attachments[0].clone());
    tokio::time::advance(Duration::from_secs(600)).await;
    assert_eq!(state(&stuck).await, InstanceState::Terminated);
    let (reason, life, root_left) = fx.sim.inspect(|w| {
        let r = &w.accounts[&account()].regions[&east()];
        let i = &r.instances[&stuck];
        (i.state_reason.clone(), i.life, r.volumes.contains_key(&root.volume_id))
    });
    assert_eq!(reason.map(|(code, _)| code), Some(LAUNCH_FAILURE_CODE.to_owned()));
    assert!(matches!(life, Life::Terminated { .. }));
    assert!(!root_left, "the failed launch released its DeleteOnTermination root volume");
    // The other one runs on, flagged for the hypervisor.
    assert_eq!(state(&mute).await, InstanceState::Running);
    let flag = fx.sim.inspect(|w| w.accounts[&account()].regions[&east()].instances[&mute].fault);
    assert_eq!(flag, Some(InstanceFault::NeverReports));
}

/// A fixed mix of calls under probabilistic faults: what each returned, and the fault log.
async fn chaos_run(seed: u64) -> (Vec<Result<(), ErrorKind>>, Vec<(u64, &'static str, Fault)>) {
    let fx = SimFixture::new();
    let g = guard(&fx.sim);
    let instance = fx.sim.setup(|s| s.instance(&customer("customer-chaos", &[8, 8, 8, 8]))).expect("instance");
    fx.sim
        .set_faults(Faults {
            seed,
            rates: Rates { throttle: 0.1, internal_error: 0.1, unavailable: 0.05, timeout: 0.05, lost_response: 0.1 },
            snapshot_error: 0.5,
            ..Faults::default()
        })
        .expect("faults");
    let mut outcomes = Vec::new();
    for i in 0..40 {
        let out = if i % 3 == 0 {
            g.create_snapshot(&east(), &snapshot_input(&fx.sim, &instance, i)).await.map(|_| ())
        } else {
            g.describe_vpcs(&east(), &DescribeInput::default()).await.map(|_| ())
        };
        outcomes.push(out.map_err(|e| e.kind()));
    }
    let log = fx.sim.fault_log().into_iter().map(|f| (f.call, f.action, f.fault)).collect();
    (outcomes, log)
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_faults() {
    let (outcomes, log) = chaos_run(2026).await;
    assert_eq!(chaos_run(2026).await, (outcomes.clone(), log.clone()));
    assert!(outcomes.iter().any(Result::is_err), "some faults at these rates");
    assert!(log.iter().any(|(_, _, f)| *f == Fault::SnapshotError), "{log:?}");
    let (_, other) = chaos_run(7).await;
    assert_ne!(other, log, "another seed, other faults");
}

#[tokio::test(start_paused = true)]
async fn the_fleet_file_configures_faults() {
    let text = format!(
        r#"
seed = 3
[faults]
seed = 11
rates = {{ internal_error = 0.0 }}
[[faults.schedule]]
action = "DescribeVpcs"
nth = 2
fault = "unavailable"
[[accounts]]
id = "{}"
regions = ["us-east-1"]
"#,
        account()
    );
    let sim = SimCloud::in_memory(&Fleet::parse(&text).expect("parse")).expect("sim");
    let g = guard(&sim);
    g.describe_vpcs(&east(), &DescribeInput::default()).await.expect("1st");
    let err = g.describe_vpcs(&east(), &DescribeInput::default()).await.expect_err("2nd");
    assert_eq!((err.kind(), err.code()), (ErrorKind::Transient, Some("Unavailable")));
    g.describe_vpcs(&east(), &DescribeInput::default()).await.expect("3rd");

    // Unknown keys are refused; bad values name their key.
    let unknown = text.replace("seed = 11", "sed = 11");
    assert!(matches!(Fleet::parse(&unknown), Err(FleetError::Parse { .. })));
    let bad = text.replace("\"DescribeVpcs\"", "\"DescribeVPCs\"");
    let err = SimCloud::in_memory(&Fleet::parse(&bad).expect("parse")).expect_err("unknown action");
    assert!(
        matches!(&err, SimError::Fleet(FleetError::Invalid { key, .. }) if key == "faults.schedule[0].action"),
        "{err}"
    );
    let bad = text.replace("internal_error = 0.0", "internal_error = 2.0");
    let err = SimCloud::in_memory(&Fleet::parse(&bad).expect("parse")).expect_err("not a probability");
    assert!(
        matches!(&err, SimError::Fleet(FleetError::Invalid { key, .. }) if key == "faults.rates.internal_error"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn describe_lags_behind_creates_and_deletes() {
    let mut f = fleet();
    f.latencies.describe_lag_ms = 2_000;
    let sim = SimCloud::in_memory(&f).expect("sim");
    let g = guard(&sim);
    let vpc: VpcId = g.create_vpc(&east(), &vpc_input()).await.expect("CreateVpc").vpc_id;
    // Not visible yet: by id, in a listing, or named by another call.
    let err = g.describe_vpcs(&east(), &DescribeInput::ids(vec![vpc.clone()])).await.expect_err("too soon");
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some("InvalidVpcID.NotFound")), "{err}");
    let all = g.describe_vpcs(&east(), &DescribeInput::default()).await.expect("DescribeVpcs");
    assert!(all.items.iter().all(|v| v.id != vpc));
    let subnet = CreateSubnetInput {
        vpc: Tagged::new(vpc.clone(), ours(Role::VPC)),
        cidr_block: "10.77.1.0/24".into(),
        availability_zone: "us-east-1a".into(),
        tags: ours(Role::SUBNET),
    };
    let err = g.create_subnet(&east(), &subnet).await.expect_err("VPC not propagated");
    assert_eq!(err.code(), Some("InvalidVpcID.NotFound"), "{err}");
    tokio::time::advance(Duration::from_millis(1_999)).await;
    assert!(g.describe_vpcs(&east(), &DescribeInput::ids(vec![vpc.clone()])).await.is_err(), "1 ms short");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(g.describe_vpcs(&east(), &DescribeInput::ids(vec![vpc.clone()])).await.expect("visible").items.len(), 1);
    let subnet = g.create_subnet(&east(), &subnet).await.expect("CreateSubnet").subnet_id;
    tokio::time::advance(Duration::from_secs(2)).await;

    // A delete lags too: Describe still lists the subnet, but it is gone for every other call.
    let del = DeleteSubnetInput { subnet: Tagged::new(subnet.clone(), ours(Role::SUBNET)) };
    g.delete_subnet(&east(), &del).await.expect("DeleteSubnet");
    let still = g.describe_subnets(&east(), &DescribeInput::ids(vec![subnet.clone()])).await.expect("lingers");
    assert_eq!(still.items.len(), 1);
    let err = g.delete_subnet(&east(), &del).await.expect_err("already deleted");
    assert_eq!(err.code(), Some("InvalidSubnetID.NotFound"));
    tokio::time::advance(Duration::from_secs(2)).await;
    let err = g.describe_subnets(&east(), &DescribeInput::ids(vec![subnet])).await.expect_err("gone");
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some("InvalidSubnetID.NotFound")));
    // Past the lag nothing is remembered.
    assert!(sim.inspect(|w| {
        let r = &w.accounts[&account()].regions[&east()].recent;
        r.created.is_empty() && r.deleted.is_empty() && r.ghosts.is_none()
    }));
}

#[tokio::test(start_paused = true)]
async fn a_new_instance_is_not_found_by_terminate_until_it_propagates() {
    let mut f = fleet();
    f.latencies.describe_lag_ms = 2_000;
    let fx = SimFixture { sim: SimCloud::in_memory(&f).expect("sim") };
    let g = guard(&fx.sim);
    let input = scanner_launch(&fx, &g, "ec-1", Vec::new()).await;
    let id = g.run_scanner(&east(), &input).await.expect("launch").instance_id;
    let terminate = TerminateInstancesInput { instances: vec![Tagged::new(id.clone(), ours(Role::SCANNER))] };
    // The EC2 guide's example: RunInstances, then at once a call with the new id.
    let err = g.terminate_instances(&east(), &terminate).await.expect_err("not propagated");
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some("InvalidInstanceID.NotFound")), "{err}");
    let life = fx.sim.inspect(|w| w.accounts[&account()].regions[&east()].instances[&id].life);
    assert!(matches!(life, Life::Pending { .. }), "the refused terminate did nothing: {life:?}");
    tokio::time::advance(Duration::from_secs(2)).await;
    g.terminate_instances(&east(), &terminate).await.expect("visible now");
}
