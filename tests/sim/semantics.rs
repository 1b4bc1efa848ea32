//! What the simulated account does that moto does not (docs/references.md): IAM conditions evaluated on
//! the sim's own state, dependency order on teardown, snapshot and instance latencies on the
//! virtual clock, DeleteOnTermination, ClientToken idempotency (and `IdempotentParameterMismatch`),
//! KMS grants and key policies for volumes under a customer managed key, paging, persistence
//! across processes, and the fleet file.

use std::path::Path;
use std::time::Duration;

use agentless::cloud::ops::*;
use agentless::cloud::sim::compute::{KMS_LAUNCH_FAILURE_CODE, KMS_LAUNCH_FAILURE_MESSAGE};
use agentless::cloud::sim::limits::Throttling;
use agentless::cloud::sim::state::{Life, SnapState};
use agentless::cloud::sim::{Fleet, FleetError, SimCloud, SimError};
use agentless::cloud::tags::{self, Role};
use agentless::cloud::{ErrorKind, Guard, InstanceId, KmsKeyId, SnapshotId, Tags, VolumeId};

use super::{
    ALLOW_ALL, SimFixture, account, customer, fleet, guard_over, policies, scanner_launch, snap_tags, snapshot_ours,
    subnet_a, volume_of,
};
use crate::conformance::{ScanNetwork, east, job, ours, scan_network, some_image, wait_instance};

fn customer_tags() -> Tags {
    Tags::new().with("Name", "customer-backup").expect("tag")
}

/// The sim enforces its own policies with the real tags of its state: behind a guard that allows
/// everything and is told the snapshot is ours, DeleteSnapshot of a snapshot whose Name is
/// `customer-backup` is still refused, as AWS would (moto deletes it).
#[tokio::test(start_paused = true)]
async fn the_sim_denies_on_its_own_state_behind_a_permissive_guard() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    // The sim's principal has the bundled policy; the guard allows everything.
    let permissive = guard_over(&sim, vec![agentless::policy::Policy::parse("allow-all", ALLOW_ALL).expect("p")]);
    let instance = sim.setup(|s| s.instance(&customer("customer-prod-db", &[8]))).expect("instance");
    let volume = volume_of(&sim, &instance, 0);
    let backup = permissive
        .create_snapshot(
            &east(),
            &CreateSnapshotInput {
                volume: Tagged::new(volume.clone(), Tags::new()),
                description: "the customer's own backup".into(),
                tags: customer_tags(),
            },
        )
        .await
        .expect("CreateSnapshot is unconditional in the policy")
        .snapshot_id;
    // The caller claims it is ours; the guard believes it.
    let forged = Tagged::new(backup.clone(), snap_tags(&instance, &volume));
    let err =
        permissive.delete_snapshot(&east(), &DeleteSnapshotInput { snapshot: forged }).await.expect_err("AWS denies");
    assert_eq!((err.kind(), err.code()), (ErrorKind::AccessDenied, Some("UnauthorizedOperation")), "{err}");
    assert!(err.message().contains("ec2:DeleteSnapshot"), "{err}");
    assert!(err.message().contains("customer-backup"), "names the failed condition: {err}");
    assert_eq!(err.ids(), [backup.to_string()]);
    assert!(sim.inspect(|w| w.accounts[&account()].regions[&east()].snapshots.contains_key(&backup)));

    // The same call on a snapshot really tagged ours goes through.
    let mine = snapshot_ours(&permissive, &instance, &volume, "agentless").await;
    permissive
        .delete_snapshot(&east(), &DeleteSnapshotInput { snapshot: Tagged::new(mine, snap_tags(&instance, &volume)) })
        .await
        .expect("ours is deletable");

    // TerminateInstances of the customer's server: denied too (moto terminates it).
    let err = permissive
        .terminate_instances(
            &east(),
            &TerminateInstancesInput { instances: vec![Tagged::new(instance.clone(), ours(Role::SCANNER))] },
        )
        .await
        .expect_err("denied");
    assert_eq!(err.code(), Some("UnauthorizedOperation"), "{err}");
    // A principal without DescribeInstances at all.
    let none = sim.with_policies(vec![agentless::policy::Policy::parse(
        "describe-nothing",
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:ListGrants", "Resource": "*"}]}"#,
    )
    .expect("p")]);
    let g = guard_over(&none, policies(&[]));
    let err = g.describe_instances(&east(), &DescribeInput::default()).await.expect_err("no statement");
    assert_eq!(err.kind(), ErrorKind::AccessDenied, "{err}");
}

/// A job's network, then every delete in the wrong order (refused as AWS refuses),
/// then the right order (docs/job.md, "Teardown").
#[tokio::test(start_paused = true)]
async fn teardown_dependency_order() {
    let fx = SimFixture::new();
    let g = guard_over(&fx.sim, policies(&[]));
    let r = east();
    let ScanNetwork { vpc, subnet, igw, sg, endpoint } = scan_network(&g, ours, "scan").await;
    let image = some_image(&fx, &g, &r).await;
    let scanner = g
        .run_scanner(
            &r,
            &RunScannerInput {
                image: Tagged::new(image.id, image.tags),
                root: None,
                instance_type: "m5.xlarge".into(),
                subnet: subnet.clone(),
                security_groups: vec![sg.clone()],
                volumes: Vec::new(),
                user_data_base64: String::new(),
                client_token: "dep-order".into(),
                instance_tags: ours(Role::SCANNER),
                volume_tags: ours(Role::SCANNER),
                network_interface_tags: ours(Role::SCANNER),
            },
        )
        .await
        .expect("scanner")
        .instance_id;

    let dv = |e: agentless::cloud::CloudError| {
        assert_eq!((e.kind(), e.code()), (ErrorKind::DependencyViolation, Some("DependencyViolation")), "{e}");
        e.message().to_owned()
    };
    // The VPC names its first dependency in AWS's order: subnets, security groups, gateway, endpoints.
    let m = dv(g.delete_vpc(&r, &DeleteVpcInput { vpc: vpc.clone() }).await.expect_err("subnets"));
    assert!(m.contains("subnets"), "{m}");
    dv(g.delete_subnet(&r, &DeleteSubnetInput { subnet: subnet.clone() }).await.expect_err("instance + endpoint ENIs"));
    dv(g.delete_security_group(&r, &DeleteSecurityGroupInput { group: sg.clone() }).await.expect_err("in use"));
    dv(g.delete_internet_gateway(&r, &DeleteInternetGatewayInput { internet_gateway: igw.clone() })
        .await
        .expect_err("attached"));

    // The right order.
    let scanner_t = Tagged::new(scanner.clone(), ours(Role::SCANNER));
    g.terminate_instances(&r, &TerminateInstancesInput { instances: vec![scanner_t] }).await.expect("terminate");
    // Shutting down still holds the subnet.
    dv(g.delete_subnet(&r, &DeleteSubnetInput { subnet: subnet.clone() }).await.expect_err("shutting-down"));
    wait_instance(&g, &r, &scanner, InstanceState::Terminated).await;
    // The endpoint's ENI still holds subnet and group.
    dv(g.delete_subnet(&r, &DeleteSubnetInput { subnet: subnet.clone() }).await.expect_err("endpoint ENI"));
    let out =
        g.delete_vpc_endpoints(&r, &DeleteVpcEndpointsInput { endpoints: vec![endpoint] }).await.expect("endpoints");
    assert!(out.unsuccessful.is_empty());
    g.delete_security_group(&r, &DeleteSecurityGroupInput { group: sg }).await.expect("sg");
    g.delete_subnet(&r, &DeleteSubnetInput { subnet }).await.expect("subnet");
    let m = dv(g.delete_vpc(&r, &DeleteVpcInput { vpc: vpc.clone() }).await.expect_err("gateway attached"));
    assert!(m.contains("internet gateway"), "{m}");
    g.detach_internet_gateway(&r, &DetachInternetGatewayInput { internet_gateway: igw.clone(), vpc: vpc.clone() })
        .await
        .expect("detach");
    let err = g
        .detach_internet_gateway(&r, &DetachInternetGatewayInput { internet_gateway: igw.clone(), vpc: vpc.clone() })
        .await
        .expect_err("already detached");
    assert_eq!((err.kind(), err.code()), (ErrorKind::IncorrectState, Some("Gateway.NotAttached")));
    g.delete_internet_gateway(&r, &DeleteInternetGatewayInput { internet_gateway: igw }).await.expect("igw");
    g.delete_vpc(&r, &DeleteVpcInput { vpc: vpc.clone() }).await.expect("vpc");
    let err = g.delete_vpc(&r, &DeleteVpcInput { vpc }).await.expect_err("gone");
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some("InvalidVpcID.NotFound")));
}

/// `pending -> completed` after a time proportional to the used size, with progress, instantly
/// under the paused clock.
#[tokio::test(start_paused = true)]
async fn snapshot_latency_follows_used_size_on_the_virtual_clock() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard_over(&sim, policies(&[]));
    // 40 GiB, half used by default: 10 s + 20 GiB × 6 s = 130 s (sim::limits).
    let instance = sim.setup(|s| s.instance(&customer("customer-db", &[40]))).expect("instance");
    let volume = volume_of(&sim, &instance, 0);
    let started = tokio::time::Instant::now();
    let snap = snapshot_ours(&g, &instance, &volume, "latency").await;
    let g = &g;
    let state = |id: SnapshotId| async move {
        let p = g
            .describe_snapshots(
                &east(),
                &DescribeSnapshotsInput { owner: account(), describe: DescribeInput::ids(vec![id]) },
            )
            .await
            .expect("describe");
        (p.items[0].state.clone(), p.items[0].progress.clone())
    };
    assert_eq!(state(snap.clone()).await, (SnapshotState::Pending, "0%".to_owned()));
    tokio::time::advance(Duration::from_secs(65)).await;
    assert_eq!(state(snap.clone()).await, (SnapshotState::Pending, "50%".to_owned()));
    tokio::time::advance(Duration::from_secs(64)).await;
    assert_eq!(state(snap.clone()).await.0, SnapshotState::Pending);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(state(snap.clone()).await, (SnapshotState::Completed, "100%".to_owned()));
    assert_eq!(started.elapsed(), Duration::from_secs(130), "virtual time only");
}

/// A scanner boots (`pending -> running`), terminates (`shutting-down -> terminated`), and its
/// DeleteOnTermination volumes and ENI go with it; a repeat of the launch with the same
/// ClientToken returns the same instance (moto launches a second one).
#[tokio::test(start_paused = true)]
async fn scanner_lifecycle_and_delete_on_termination() {
    let fx = SimFixture::new();
    let g = guard_over(&fx.sim, policies(&[]));
    let instance = fx.sim.setup(|s| s.instance(&customer("customer-web", &[8, 20]))).expect("instance");
    let data = volume_of(&fx.sim, &instance, 1);
    let snap = snapshot_ours(&g, &instance, &data, "scan").await;
    let subnet = subnet_a(&fx.sim);
    let image = some_image(&fx, &g, &east()).await;
    let mut input = RunScannerInput {
        image: Tagged::new(image.id, image.tags),
        root: None,
        instance_type: "m5.xlarge".into(),
        subnet: Tagged::new(subnet, ours(Role::SUBNET)),
        security_groups: Vec::new(),
        volumes: vec![ScannerVolume {
            device_name: "/dev/sdf".into(),
            snapshot: Tagged::new(snap.clone(), snap_tags(&instance, &data)),
            kms_key: None,
        }],
        user_data_base64: String::new(),
        client_token: "lifecycle-1".into(),
        instance_tags: ours(Role::SCANNER),
        volume_tags: ours(Role::SCANNER),
        network_interface_tags: ours(Role::SCANNER),
    };
    // A volume from a pending snapshot: IncorrectState.
    let err = g.run_scanner(&east(), &input).await.expect_err("pending snapshot");
    assert_eq!((err.kind(), err.code()), (ErrorKind::IncorrectState, Some("IncorrectState")), "{err}");
    tokio::time::advance(Duration::from_secs(300)).await;
    let launched = g.run_scanner(&east(), &input).await.expect("launch");
    let again = g.run_scanner(&east(), &input).await.expect("same token");
    assert_eq!(again, launched, "ClientToken idempotency");
    input.client_token = "lifecycle-2".into();
    let other = g.run_scanner(&east(), &input).await.expect("new token");
    assert_ne!(other.instance_id, launched.instance_id);

    let describe = |id: InstanceId| {
        let g = &g;
        async move { g.describe_instances(&east(), &DescribeInput::ids(vec![id])).await.expect("DI").items.remove(0) }
    };
    let info = describe(launched.instance_id.clone()).await;
    assert_eq!(info.state, InstanceState::Pending);
    let volumes: Vec<VolumeId> = info.volumes.iter().map(|v| v.volume_id.clone()).collect();
    assert_eq!(volumes.len(), 2, "root + data");
    assert!(info.volumes.iter().all(|v| v.delete_on_termination));
    let err = g
        .stop_instances(
            &east(),
            &StopInstancesInput { instances: vec![Tagged::new(launched.instance_id.clone(), ours(Role::SCANNER))] },
        )
        .await
        .expect_err("pending cannot stop");
    assert_eq!(err.code(), Some("IncorrectInstanceState"));
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(describe(launched.instance_id.clone()).await.state, InstanceState::Running);
    let changes = g
        .terminate_instances(
            &east(),
            &TerminateInstancesInput {
                instances: vec![Tagged::new(launched.instance_id.clone(), ours(Role::SCANNER))],
            },
        )
        .await
        .expect("terminate");
    assert_eq!(
        (changes[0].previous.clone(), changes[0].current.clone()),
        (InstanceState::Running, InstanceState::ShuttingDown)
    );
    let vols = g.describe_volumes(&east(), &DescribeInput::ids(volumes.clone())).await.expect("still there");
    assert_eq!(vols.items.len(), 2);
    tokio::time::advance(Duration::from_secs(45)).await;
    assert_eq!(describe(launched.instance_id.clone()).await.state, InstanceState::Terminated);
    let err = g.describe_volumes(&east(), &DescribeInput::ids(volumes)).await.expect_err("deleted on termination");
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some("InvalidVolume.NotFound")));
    assert!(fx.sim.inspect(|w| {
        !w.accounts[&account()].regions[&east()].network_interfaces.contains_key(&launched.network_interfaces[0])
    }));
    // The customer's volumes are untouched, and terminated instances leave Describe after an hour.
    assert!(fx.sim.inspect(|w| w.accounts[&account()].regions[&east()].volumes.contains_key(&data)));
    tokio::time::advance(Duration::from_secs(3600)).await;
    let err = g.describe_instances(&east(), &DescribeInput::ids(vec![launched.instance_id])).await.expect_err("gone");
    assert_eq!(err.code(), Some("InvalidInstanceID.NotFound"));
}

#[tokio::test(start_paused = true)]
async fn describe_pages_and_filters() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    for i in 0..12 {
        sim.setup(|s| s.instance(&customer(&format!("customer-{i:02}"), &[8]))).expect("instance");
    }
    let g = guard_over(&sim, policies(&[]));
    let mut input = DescribeInput {
        filters: vec![Filter::tag("Name", ["customer-*"])],
        max_results: Some(5),
        ..DescribeInput::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = g.describe_instances(&east(), &input).await.expect("page");
        assert!(page.items.len() <= 5);
        seen.extend(page.items.into_iter().map(|i| i.id));
        match page.next_token {
            Some(t) => input.next_token = Some(t),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12);
    let odd = g
        .describe_instances(&east(), &DescribeInput::filters(vec![Filter::tag("Name", ["customer-?1"])]))
        .await
        .expect("? wildcard");
    assert_eq!(odd.items.len(), 2, "customer-01, customer-11");
    let err = g
        .describe_instances(&east(), &DescribeInput::filters(vec![Filter::new("no-such-filter", ["x"])]))
        .await
        .expect_err("unknown filter");
    assert_eq!(err.code(), Some("InvalidParameterValue"));
    let err = g.describe_instances(&east(), &DescribeInput { max_results: Some(2), ..DescribeInput::default() }).await;
    assert_eq!(err.expect_err("MaxResults < 5").code(), Some("InvalidParameterValue"));
}

/// A copy under a key that does not exist in the destination ends in `error` (moto accepts
/// it).
#[tokio::test(start_paused = true)]
async fn copy_under_a_missing_key_ends_in_error() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let p = policies(&[crate::conformance::GAP_FILLER]);
    let sim = sim.with_policies(p.clone());
    let g = guard_over(&sim, p);
    let instance = sim.setup(|s| s.instance(&customer("customer-db", &[8]))).expect("instance");
    let volume = volume_of(&sim, &instance, 0);
    let snap = snapshot_ours(&g, &instance, &volume, "").await;
    tokio::time::advance(Duration::from_secs(120)).await;
    let west = crate::conformance::west();
    let missing = format!("arn:aws:kms:us-west-2:{}:key/1234abcd-12ab-34cd-56ef-1234567890ab", account());
    let copy = g
        .copy_snapshot(
            &west,
            &CopySnapshotInput {
                source_region: east(),
                source: Tagged::new(snap, snap_tags(&instance, &volume)),
                source_kms_key: None,
                encrypted: true,
                kms_key_id: Some(missing.parse().expect("arn")),
                description: String::new(),
                tags: snap_tags(&instance, &volume),
            },
        )
        .await
        .expect("accepted")
        .snapshot_id;
    let state = sim.inspect(|w| w.accounts[&account()].regions[&west].snapshots[&copy].state);
    assert_eq!(state, SnapState::Error);
}

/// Two `open`s of one data directory see one account; a process that goes away leaves its
/// resources behind, and a running one sees another's changes.
#[tokio::test(start_paused = true)]
async fn persistence_across_opens_of_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = SimCloud::open(dir.path(), &fleet()).expect("open");
    let g1 = guard_over(&first, policies(&[]));
    let vpc = g1
        .create_vpc(&east(), &CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: ours(Role::VPC) })
        .await
        .expect("vpc")
        .vpc_id;
    // A second process (another open of the same directory, with a fleet it ignores: the state
    // is already there).
    let other_fleet = Fleet { seed: 99, ..fleet() };
    let second = SimCloud::open(dir.path(), &other_fleet).expect("reopen");
    let g2 = guard_over(&second, policies(&[]));
    let seen = g2.describe_vpcs(&east(), &DescribeInput::ids(vec![vpc.clone()])).await.expect("same account");
    assert_eq!(seen.items[0].tags, ours(Role::VPC));
    // The second changes it; the first sees that on its next call.
    g2.delete_vpc(&east(), &DeleteVpcInput { vpc: Tagged::new(vpc.clone(), ours(Role::VPC)) }).await.expect("delete");
    let err = g1.describe_vpcs(&east(), &DescribeInput::ids(vec![vpc])).await.expect_err("deleted by the other");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // "Killed": dropped without any teardown; a third open still has what it left.
    let igw =
        g1.create_internet_gateway(&east(), &CreateInternetGatewayInput { tags: ours(Role::INTERNET_GATEWAY) }).await;
    let igw = igw.expect("igw").internet_gateway_id;
    drop((g1, first, g2, second));
    let third = SimCloud::open(dir.path(), &fleet()).expect("third");
    assert!(third.inspect(|w| w.accounts[&account()].regions[&east()].internet_gateways.contains_key(&igw)));
    assert!(dir.path().join("sim-state.json").is_file());
}

#[test]
fn the_demo_fleet_loads_and_builds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sim/demo-fleet.toml");
    let fleet = Fleet::load(&path).expect("demo fleet");
    let sim = SimCloud::in_memory(&fleet).expect("build");
    let backed = sim.inspect(|w| {
        w.accounts
            .values()
            .flat_map(|a| a.regions.values())
            .flat_map(|r| r.volumes.values())
            .filter_map(|v| v.backing.clone())
            .collect::<Vec<_>>()
    });
    // Ten image-backed volumes (tests/sim/demo.rs checks each), decompressed into the default
    // cache of an in-memory world.
    assert_eq!(backed.len(), 10, "{backed:?}");
    assert!(backed.iter().all(|p| p.is_absolute() && p.is_file()), "{backed:?}");
    assert!(backed.iter().any(|p| p.ends_with("demo/demo-disk.img")), "{backed:?}");
    let encrypted = sim.inspect(|w| {
        w.accounts
            .values()
            .flat_map(|a| a.regions.values())
            .flat_map(|r| r.volumes.values())
            .filter(|v| v.encrypted)
            .count()
    });
    assert!(encrypted >= 1);
}

#[test]
fn fleet_errors_name_the_key() {
    let err =
        Fleet::parse("seed = 1\n[[accounts]]\nid = \"111122223333\"\nregions = [\"us-east-1\"]\ncolour = \"red\"\n")
            .expect_err("unknown key");
    let text = err.to_string();
    assert!(text.contains("colour") && text.contains("line 5"), "{text}");
    let err = Fleet::parse("[[accounts]]\nid = \"1111\"\nregions = [\"us-east-1\"]\n").expect_err("bad account");
    assert!(err.to_string().contains("12 digits"), "{err}");
    let err = Fleet::parse("[quotas]\nvpcs_per_regoin = 3\n").expect_err("typo in quotas");
    assert!(err.to_string().contains("vpcs_per_regoin"), "{err}");
    let fleet = Fleet::parse(
        "[[accounts]]\nid = \"111122223333\"\nregions = [\"us-east-1\"]\n[[accounts.instances]]\nregion = \"us-east-1\"\n\
         [[accounts.instances.volumes]]\nsize_gib = 8\nencrypted = true\nkms_key = \"nope\"\n",
    )
    .expect("parses");
    match SimCloud::in_memory(&fleet).expect_err("unknown key name") {
        SimError::Fleet(FleetError::Invalid { key, message }) => {
            assert_eq!(key, "accounts[0].instances[0].volumes[0].kms_key");
            assert!(message.contains("nope"), "{message}");
        }
        other => panic!("{other}"),
    }
    let fleet = Fleet::parse("throttling = \"off\"\n[[accounts]]\nid = \"111122223333\"\nregions = [\"eu-west-3\"]\n")
        .expect("throttling off");
    assert_eq!(fleet.throttling, Throttling::Off);
}

/// A scanner launch from `snapshots` (device, snapshot, its key if customer managed).
async fn scanner(
    fx: &SimFixture,
    g: &Guard<SimCloud>,
    token: &str,
    snapshots: &[(&str, &Tagged<SnapshotId>, Option<KmsKeyId>)],
) -> RunScannerInput {
    let volumes = snapshots
        .iter()
        .map(|(device, snap, key)| ScannerVolume {
            device_name: (*device).to_owned(),
            snapshot: (*snap).clone(),
            kms_key: key.clone(),
        })
        .collect();
    scanner_launch(fx, g, token, volumes).await
}

/// The instance's life and state reason, as the world has them.
fn life(sim: &SimCloud, id: &InstanceId) -> (Life, Option<(String, String)>) {
    sim.inspect(|w| {
        let i = &w.accounts[&account()].regions[&east()].instances[id];
        (i.life, i.state_reason.clone())
    })
}

const CMK_FLEET: &str = r#"
[[accounts]]
id = "444455556666"
regions = ["us-east-1", "us-west-2"]
[[accounts.keys]]
name = "db"
region = "us-east-1"
[[accounts.instances]]
region = "us-east-1"
tags = { Name = "customer-db" }
[[accounts.instances.volumes]]
size_gib = 8
[[accounts.instances.volumes]]
size_gib = 20
encrypted = true
kms_key = "db"
[[accounts.instances.volumes]]
size_gib = 20
encrypted = true
kms_key = "db"
"#;

/// A volume from a snapshot under a customer managed key: EC2 sends GenerateDataKeyWithoutPlaintext
/// and CreateGrant with the caller's credentials, in an encryption context naming the volume being
/// created (policies/README.md, "What EC2 asks of KMS for our volumes", facts 1, 3, INFERENCE (a),
/// (c)). A grant to the caller constrained to the snapshot's source volume (the job's) therefore
/// does not cover them; a key policy naming the caller as a key user does. Refused, RunInstances
/// succeeds and the launch fails: `terminated`, state reason `Client.InternalError` (INFERENCE (e)).
#[tokio::test(start_paused = true)]
async fn a_grant_on_the_source_volume_does_not_make_the_scanner_volume_but_the_key_policy_does() {
    let sim = SimCloud::in_memory(&Fleet::parse(CMK_FLEET).expect("fleet")).expect("sim");
    let fx = SimFixture { sim: sim.clone() };
    // The sim's principal has the bundled policy, which lacks kms:GenerateDataKeyWithoutPlaintext
    // (policies/README.md, Gaps); the guard lets everything through to it.
    let g = guard_over(&sim, vec![agentless::policy::Policy::parse("allow-all", ALLOW_ALL).expect("p")]);
    let (instance, vols, key) = sim.inspect(|w| {
        let r = &w.accounts[&account()].regions[&east()];
        let (id, i) = r.instances.iter().next().expect("the customer instance");
        let vols: Vec<VolumeId> = i.attachments.iter().map(|a| a.volume_id.clone()).collect();
        let key = r.volumes[&vols[1]].kms_key_id.clone().expect("under the key");
        (id.clone(), vols, key)
    });
    let (a, b) = (vols[1].clone(), vols[2].clone());
    let mut snaps = Vec::new();
    for v in [&a, &b] {
        let id = snapshot_ours(&g, &instance, v, "cmk").await;
        snaps.push(Tagged::new(id, snap_tags(&instance, v)));
    }
    tokio::time::advance(Duration::from_secs(300)).await;
    let caller = format!("arn:aws:iam::{}:user/{}", account(), super::USER);
    let grant = |grantee: &str, ebs: &VolumeId| CreateGrantInput {
        key: key.clone(),
        grantee_principal: grantee.to_owned(),
        operations: vec![
            GrantOperation::Decrypt,
            GrantOperation::DescribeKey,
            GrantOperation::CreateGrant,
            GrantOperation::GenerateDataKeyWithoutPlaintext,
        ],
        ebs_id: EbsId::Volume(ebs.clone()),
        name: tags::grant_name(&job()),
    };
    let launch = |token: &'static str| {
        let (fx, g, snap, key) = (&fx, &g, &snaps[0], key.clone());
        async move {
            let input = scanner(fx, g, token, &[("/dev/sdf", snap, Some(key))]).await;
            g.run_scanner(&east(), &input).await.expect("RunInstances itself succeeds").instance_id
        }
    };
    let boot = Duration::from_secs(31);

    // No grant: the launch fails.
    let denied = launch("cmk-no-grant").await;
    let (state, reason) = life(&sim, &denied);
    assert!(matches!(state, Life::ShuttingDown { .. }), "{state:?}");
    tokio::time::advance(boot).await;
    let (state, reason_after) = life(&sim, &denied);
    assert!(matches!(state, Life::Terminated { .. }), "{state:?}");
    let want = Some((KMS_LAUNCH_FAILURE_CODE.to_owned(), KMS_LAUNCH_FAILURE_MESSAGE.to_owned()));
    assert_eq!((reason.clone(), reason_after), (want.clone(), want.clone()));
    wait_instance(&g, &east(), &denied, InstanceState::Terminated).await;

    // Grants that do not match: for the other volume, or to another principal.
    g.create_grant(&east(), &grant(&caller, &b)).await.expect("grant for volume b");
    // (The guard grants only the caller: a grant to another principal is not ours to make.)
    let refused = g.create_grant(&east(), &grant(&format!("arn:aws:iam::{}:role/other", account()), &a)).await;
    assert!(refused.is_err(), "the guard granted another principal");
    let other = launch("cmk-other-grants").await;
    tokio::time::advance(boot).await;
    assert_eq!(life(&sim, &other).1, want, "a grant for another volume does not count");

    // The grant for the snapshot's source volume, to the caller (what the job makes): EC2's
    // requests name the new volume, which the constraint does not, so the launch still fails.
    g.create_grant(&east(), &grant(&caller, &a)).await.expect("grant for volume a");
    let granted = launch("cmk-granted").await;
    tokio::time::advance(boot).await;
    assert_eq!(life(&sim, &granted).1, want, "a grant constrained to the source volume does not cover the new one");

    // The customer names our principal as a key user in the key policy: the scanner boots,
    // whatever the IAM policy lacks.
    sim.setup(|s| {
        s.allow_caller_use(&key, true);
        Ok(())
    })
    .expect("setup");
    let allowed = launch("cmk-key-user").await;
    assert!(matches!(life(&sim, &allowed).0, Life::Pending { .. }));
    tokio::time::advance(boot).await;
    assert_eq!(life(&sim, &allowed), (Life::Running, None));
}

/// The fleet file sets the key-user statement of a key's policy (`allow_caller_use`).
#[test]
fn the_fleet_names_the_caller_as_a_key_user() {
    let fleet = Fleet::parse(&CMK_FLEET.replace(
        "region = \"us-east-1\"\n[[accounts.instances]]",
        "region = \"us-east-1\"\nallow_caller_use = true\n[[accounts.instances]]",
    ))
    .expect("fleet");
    let sim = SimCloud::in_memory(&fleet).expect("sim");
    assert_eq!(
        sim.inspect(|w| (w.settings.keys_allowing_caller_use.len(), w.settings.keys_allowing_account_use.len())),
        (1, 0)
    );
}

/// Without a grant, a key policy that defers to IAM lets the identity policies decide: the
/// bundled policy alone cannot (no `kms:GenerateDataKeyWithoutPlaintext`), with the missing
/// statement it can.
#[tokio::test(start_paused = true)]
async fn a_key_policy_that_defers_to_iam_needs_the_iam_permissions() {
    let fleet = Fleet::parse(&CMK_FLEET.replace(
        "region = \"us-east-1\"\n[[accounts.instances]]",
        "region = \"us-east-1\"\nallow_account_use = true\n[[accounts.instances]]",
    ))
    .expect("fleet");
    let sim = SimCloud::in_memory(&fleet).expect("sim");
    assert_eq!(sim.inspect(|w| w.settings.keys_allowing_account_use.len()), 1, "the fleet sets it");
    let fx = SimFixture { sim: sim.clone() };
    let g = guard_over(&sim, vec![agentless::policy::Policy::parse("allow-all", ALLOW_ALL).expect("p")]);
    let (instance, volume, key) = sim.inspect(|w| {
        let r = &w.accounts[&account()].regions[&east()];
        let (id, i) = r.instances.iter().next().expect("instance");
        let v = i.attachments[1].volume_id.clone();
        (id.clone(), v.clone(), r.volumes[&v].kms_key_id.clone().expect("key"))
    });
    let snap = snapshot_ours(&g, &instance, &volume, "").await;
    let snap = Tagged::new(snap, snap_tags(&instance, &volume));
    tokio::time::advance(Duration::from_secs(300)).await;
    let input = scanner(&fx, &g, "policy-1", &[("/dev/sdf", &snap, Some(key.clone()))]).await;
    let denied = g.run_scanner(&east(), &input).await.expect("call succeeds").instance_id;
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(matches!(life(&sim, &denied).0, Life::Terminated { .. }));

    let filled = sim.with_policies(policies(&[crate::conformance::GAP_FILLER]));
    let g2 = guard_over(&filled, vec![agentless::policy::Policy::parse("allow-all", ALLOW_ALL).expect("p")]);
    let input = RunScannerInput { client_token: "policy-2".into(), ..input };
    let allowed = g2.run_scanner(&east(), &input).await.expect("launch").instance_id;
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(life(&sim, &allowed), (Life::Running, None));
    // The customer takes the delegation back: only grants again.
    sim.setup(|s| {
        s.allow_account_use(&key, false);
        Ok(())
    })
    .expect("setup");
    let input = RunScannerInput { client_token: "policy-3".into(), ..input };
    let again = g2.run_scanner(&east(), &input).await.expect("launch").instance_id;
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(matches!(life(&sim, &again).0, Life::Terminated { .. }));
}

/// A repeat of a launch with the same ClientToken and other parameters is refused (EC2 API
/// Reference, "Ensuring idempotency"); with the same parameters it returns the first launch.
#[tokio::test(start_paused = true)]
async fn a_client_token_reused_with_other_parameters_is_a_mismatch() {
    let fx = SimFixture::new();
    let g = guard_over(&fx.sim, policies(&[]));
    let instance = fx.sim.setup(|s| s.instance(&customer("customer-web", &[8, 20]))).expect("instance");
    let data = volume_of(&fx.sim, &instance, 1);
    let mut snaps = Vec::new();
    for _ in 0..2 {
        let id = snapshot_ours(&g, &instance, &data, "idempotency").await;
        snaps.push(Tagged::new(id, snap_tags(&instance, &data)));
    }
    tokio::time::advance(Duration::from_secs(300)).await;
    let input = scanner(&fx, &g, "idem-1", &[("/dev/sdf", &snaps[0], None)]).await;
    let first = g.run_scanner(&east(), &input).await.expect("launch");
    assert_eq!(g.run_scanner(&east(), &input).await.expect("same request"), first);
    let variants = [
        RunScannerInput { instance_type: "m5.large".into(), ..input.clone() },
        RunScannerInput { user_data_base64: "Zm9v".into(), ..input.clone() },
        scanner(&fx, &g, "idem-1", &[("/dev/sdf", &snaps[1], None)]).await,
        scanner(&fx, &g, "idem-1", &[("/dev/sdf", &snaps[0], None), ("/dev/sdg", &snaps[1], None)]).await,
    ];
    for v in &variants {
        // RunInstances' token bucket refills 2 per second (docs/references.md).
        tokio::time::advance(Duration::from_secs(1)).await;
        let err = g.run_scanner(&east(), v).await.expect_err("other parameters");
        assert_eq!((err.kind(), err.code()), (ErrorKind::Other, Some("IdempotentParameterMismatch")), "{err}");
        assert_eq!(err.ids(), [first.instance_id.to_string()]);
    }
    let count = fx.sim.inspect(|w| {
        w.accounts[&account()].regions[&east()].instances.values().filter(|i| i.client_token.is_some()).count()
    });
    assert_eq!(count, 1, "no second scanner");
}

/// An image whose own root mapping keeps the root volume (`DeleteOnTermination=false`, as the
/// simulated scanner image is registered): a launch without a root mapping leaves the root behind
/// after termination, which the policy (no `ec2:DeleteVolume`) could never remove; the root
/// mapping the job sends (`ScannerRoot`) makes it go with the instance; a size under the image's is
/// refused as EC2 refuses it.
#[tokio::test(start_paused = true)]
async fn the_root_mapping_overrides_an_image_that_keeps_its_root() {
    let fx = SimFixture::new();
    let g = guard_over(&fx.sim, policies(&[]));
    fx.sim.install_scanner_image(&[east()]).expect("scanner image");
    let page = g
        .describe_images(
            &east(),
            &DescribeImagesInput {
                owners: vec!["self".into()],
                describe: DescribeInput::filters(vec![Filter::new("tag-key", [tags::IMAGE_VERSION])]),
            },
        )
        .await
        .expect("DescribeImages");
    let image = page.items.into_iter().find(|i| i.tags.get(tags::IMAGE_VERSION).is_some()).expect("the scanner image");
    assert_eq!((image.root_device_name.as_deref(), image.root_size_gib), (Some("/dev/xvda"), Some(8)));
    let input = |token: &str, root: Option<ScannerRoot>| RunScannerInput {
        image: Tagged::new(image.id.clone(), image.tags.clone()),
        root,
        instance_type: "m5.xlarge".into(),
        subnet: Tagged::new(subnet_a(&fx.sim), ours(Role::SUBNET)),
        security_groups: Vec::new(),
        volumes: Vec::new(),
        user_data_base64: String::new(),
        client_token: token.into(),
        instance_tags: ours(Role::SCANNER),
        volume_tags: ours(Role::SCANNER),
        network_interface_tags: ours(Role::SCANNER),
    };
    let mapped = || Some(ScannerRoot { device_name: "/dev/xvda".into(), size_gib: Some(8) });

    let small = Some(ScannerRoot { device_name: "/dev/xvda".into(), size_gib: Some(4) });
    let err = g.run_scanner(&east(), &input("small", small)).await.expect_err("smaller than the snapshot");
    assert_eq!(err.code(), Some("InvalidBlockDeviceMapping"), "{err}");

    let mut roots = Vec::new();
    for (token, root) in [("unmapped", None), ("mapped", mapped())] {
        let launched = g.run_scanner(&east(), &input(token, root)).await.expect("launch");
        roots.push(volume_of(&fx.sim, &launched.instance_id, 0));
        tokio::time::advance(Duration::from_secs(60)).await;
        g.terminate_instances(
            &east(),
            &TerminateInstancesInput {
                instances: vec![Tagged::new(launched.instance_id.clone(), ours(Role::SCANNER))],
            },
        )
        .await
        .expect("terminate");
        tokio::time::advance(Duration::from_secs(120)).await;
    }
    let alive = |v: &VolumeId| fx.sim.inspect(|w| w.accounts[&account()].regions[&east()].volumes.contains_key(v));
    assert!(alive(&roots[0]), "without a root mapping the image's DeleteOnTermination=false keeps {}", roots[0]);
    assert!(!alive(&roots[1]), "the root mapping's DeleteOnTermination=true removes {}", roots[1]);
}
