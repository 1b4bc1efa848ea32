//! The simulated account's quotas and token buckets (docs/references.md),
//! the attachment limit of each instance type and the On-Demand vCPU quota: each is reached
//! exactly at its number, with AWS's error code and the seam's error kind.

use std::time::Duration;

use agentless::cloud::ops::*;
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::tags::{self, Role, SnapshotSource};
use agentless::cloud::{ErrorKind, Guard, InstanceId, SnapshotId, VolumeId};

use super::{SimFixture, account, customer, fleet, guard_over, policies, snap_tags};
use crate::conformance::{east, expires, job, ours, wait_snapshots};

fn guard(sim: &SimCloud) -> Guard<SimCloud> {
    guard_over(sim, policies(&[]))
}

/// A customer instance with `n` volumes: (instance, its volumes).
fn instance_with_volumes(sim: &SimCloud, n: usize) -> (InstanceId, Vec<VolumeId>) {
    let sizes = vec![8; n];
    let id = sim.setup(|s| s.instance(&customer("customer-fleet", &sizes))).expect("instance");
    let vols = sim.inspect(|w| {
        w.accounts[&account()].regions[&east()].instances[&id].attachments.iter().map(|a| a.volume_id.clone()).collect()
    });
    (id, vols)
}

async fn snapshot(
    g: &Guard<SimCloud>,
    instance: &InstanceId,
    volume: &VolumeId,
) -> Result<SnapshotId, agentless::cloud::CloudError> {
    g.create_snapshot(
        &east(),
        &CreateSnapshotInput {
            volume: Tagged::new(volume.clone(), agentless::cloud::Tags::new()),
            description: "quota".into(),
            tags: snap_tags(instance, volume),
        },
    )
    .await
    .map(|o| o.snapshot_id)
}

#[tokio::test(start_paused = true)]
async fn pending_snapshots_per_region_and_per_volume() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim);
    let (instance, vols) = instance_with_volumes(&sim, 21);
    // 5 per volume on 20 volumes: 100 pending, the Region's quota (L-94D7AB7D).
    for v in &vols[..20] {
        for _ in 0..5 {
            snapshot(&g, &instance, v).await.expect("under the quotas");
        }
    }
    // The CreateSnapshot bucket (100, refill 5/s) is empty now: wait one (virtual) second.
    let err = snapshot(&g, &instance, &vols[20]).await.expect_err("bucket empty");
    assert_eq!((err.kind(), err.code()), (ErrorKind::Throttled, Some("RequestLimitExceeded")), "{err}");
    tokio::time::advance(Duration::from_secs(1)).await;
    let err = snapshot(&g, &instance, &vols[20]).await.expect_err("101st pending");
    assert_eq!((err.kind(), err.code()), (ErrorKind::QuotaExceeded, Some("PendingSnapshotLimitExceeded")), "{err}");
    // The 6th of one volume, once the Region has room again (all complete after their latency).
    tokio::time::advance(Duration::from_secs(600)).await;
    for _ in 0..5 {
        snapshot(&g, &instance, &vols[20]).await.expect("5 per volume");
    }
    let err = snapshot(&g, &instance, &vols[20]).await.expect_err("6th on one volume");
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::SnapshotRatePerVolume, Some("SnapshotCreationPerVolumeRateExceeded")),
        "{err}"
    );
    assert_eq!(err.ids(), [vols[20].to_string()]);
}

#[tokio::test(start_paused = true)]
async fn twenty_concurrent_copies_per_destination_region() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim);
    let (instance, vols) = instance_with_volumes(&sim, 1);
    let source = snapshot(&g, &instance, &vols[0]).await.expect("snapshot");
    wait_snapshots(&g, &east(), &account(), std::slice::from_ref(&source)).await;
    let copy = CopySnapshotInput {
        source_region: east(),
        source: Tagged::new(source.clone(), snap_tags(&instance, &vols[0])),
        source_kms_key: None,
        encrypted: false,
        kms_key_id: None,
        description: "copy".into(),
        tags: snap_tags(&instance, &vols[0]),
    };
    for _ in 0..20 {
        g.copy_snapshot(&east(), &copy).await.expect("20 copies in flight");
    }
    let err = g.copy_snapshot(&east(), &copy).await.expect_err("21st copy");
    assert_eq!((err.kind(), err.code()), (ErrorKind::QuotaExceeded, Some("ResourceLimitExceeded")), "{err}");
}

#[tokio::test(start_paused = true)]
async fn vpcs_and_internet_gateways_per_region() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim);
    // The default VPC and its gateway count (docs/references.md, "VPC quotas").
    let vpcs = g.describe_vpcs(&east(), &DescribeInput::default()).await.expect("DescribeVpcs").items.len();
    let igws = g.describe_internet_gateways(&east(), &DescribeInput::default()).await.expect("DIGW").items.len();
    assert_eq!((vpcs, igws), (1, 1));
    let vpc = CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: ours(Role::VPC) };
    let igw = CreateInternetGatewayInput { tags: ours(Role::INTERNET_GATEWAY) };
    for _ in 1..5 {
        g.create_vpc(&east(), &vpc).await.expect("up to 5 VPCs");
        g.create_internet_gateway(&east(), &igw).await.expect("up to 5 gateways");
    }
    let err = g.create_vpc(&east(), &vpc).await.expect_err("6th VPC");
    assert_eq!((err.kind(), err.code()), (ErrorKind::QuotaExceeded, Some("VpcLimitExceeded")), "{err}");
    let err = g.create_internet_gateway(&east(), &igw).await.expect_err("6th gateway");
    assert_eq!((err.kind(), err.code()), (ErrorKind::QuotaExceeded, Some("InternetGatewayLimitExceeded")), "{err}");
    // Quotas are per Region.
    g.create_vpc(&crate::conformance::west(), &vpc).await.expect("another Region");
}

#[tokio::test(start_paused = true)]
async fn attachments_per_instance() {
    let fx = SimFixture::new();
    let g = guard(&fx.sim);
    let image = crate::conformance::some_image(&fx, &g, &east()).await;
    let subnet =
        fx.sim.inspect(|w| w.accounts[&account()].regions[&east()].subnets.keys().next().cloned()).expect("subnet");
    let snap: SnapshotId = "snap-0123456789abcdef0".parse().expect("snap");
    let snap_tags = tags::snapshot_tags(
        &job(),
        SnapshotSource::Instance { instance: &"i-0123456789abcdef0".parse().expect("i") },
        expires(),
    );
    // 1 root + 27 data volumes + 1 ENI = 29 > the 28 Nitro attachments (docs/references.md).
    let volumes = (0..27)
        .map(|i| ScannerVolume {
            device_name: format!("/dev/sd{i}"),
            snapshot: Tagged::new(snap.clone(), snap_tags.clone()),
            kms_key: None,
        })
        .collect();
    let input = RunScannerInput {
        image: Tagged::new(image.id, image.tags),
        root: None,
        instance_type: "m5.xlarge".into(),
        subnet: Tagged::new(subnet, ours(Role::SUBNET)),
        security_groups: Vec::new(),
        volumes,
        user_data_base64: String::new(),
        client_token: "attachments".into(),
        instance_tags: ours(Role::SCANNER),
        volume_tags: ours(Role::SCANNER),
        network_interface_tags: ours(Role::SCANNER),
    };
    let err = g.run_scanner(&east(), &input).await.expect_err("too many attachments");
    assert_eq!((err.kind(), err.code()), (ErrorKind::QuotaExceeded, Some("AttachmentLimitExceeded")), "{err}");
}

#[tokio::test(start_paused = true)]
async fn token_buckets_empty_then_refill_on_the_virtual_clock() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim);
    let filtered = DescribeInput::filters(vec![Filter::new("is-default", ["true"])]);
    // Non-mutating: 100 tokens, 20 per second (docs/references.md).
    for i in 0..100 {
        g.describe_vpcs(&east(), &filtered).await.unwrap_or_else(|e| panic!("call {i}: {e}"));
    }
    let err = g.describe_vpcs(&east(), &filtered).await.expect_err("101st in the same instant");
    assert_eq!((err.kind(), err.code()), (ErrorKind::Throttled, Some("RequestLimitExceeded")), "{err}");
    // Buckets are per action: another Describe still goes through.
    g.describe_subnets(&east(), &DescribeInput::default()).await.expect("own bucket");
    // Half a second refills 10 tokens.
    tokio::time::advance(Duration::from_millis(500)).await;
    for _ in 0..10 {
        g.describe_vpcs(&east(), &filtered).await.expect("refilled");
    }
    assert!(g.describe_vpcs(&east(), &filtered).await.is_err(), "only 10 refilled");
    // Unfiltered, unpaginated DescribeInstances: the 50-token bucket.
    for _ in 0..50 {
        g.describe_instances(&east(), &DescribeInput::default()).await.expect("unfiltered");
    }
    let err = g.describe_instances(&east(), &DescribeInput::default()).await.expect_err("51st unfiltered");
    assert_eq!(err.kind(), ErrorKind::Throttled);
    // VPC endpoints: 4, refilling 0.3/s — the tightest (the 5th create is throttled before
    // anything else is looked at).
    let vpc = g
        .create_vpc(&east(), &CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: ours(Role::VPC) })
        .await
        .expect("vpc")
        .vpc_id;
    let tables = g
        .describe_route_tables(&east(), &DescribeInput::filters(vec![Filter::new("vpc-id", [vpc.as_str()])]))
        .await
        .expect("route tables");
    let endpoint = CreateVpcEndpointInput {
        vpc: Tagged::new(vpc, ours(Role::VPC)),
        service_name: "com.amazonaws.us-east-1.s3".into(),
        kind: EndpointKind::Gateway { route_tables: vec![Tagged::new(tables.items[0].id.clone(), Default::default())] },
        tags: ours(Role::VPC_ENDPOINT),
    };
    for _ in 0..4 {
        g.create_vpc_endpoint(&east(), &endpoint).await.expect("4 endpoints");
    }
    assert_eq!(
        g.create_vpc_endpoint(&east(), &endpoint).await.map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::Throttled)
    );
    tokio::time::advance(Duration::from_millis(3400)).await;
    g.create_vpc_endpoint(&east(), &endpoint).await.expect("one token after 3.4 s at 0.3/s");
}

/// A scanner launch of `instance_type` with `data` data volumes from a snapshot that does not
/// exist: the limits are checked before the snapshots, so a launch within them fails with
/// `InvalidSnapshot.NotFound` instead (none when `data` is 0).
async fn launch_of(
    fx: &SimFixture,
    g: &Guard<SimCloud>,
    instance_type: &str,
    data: usize,
    token: &str,
) -> RunScannerInput {
    let image = crate::conformance::some_image(fx, g, &east()).await;
    let subnet =
        fx.sim.inspect(|w| w.accounts[&account()].regions[&east()].subnets.keys().next().cloned()).expect("subnet");
    let snap: SnapshotId = "snap-0123456789abcdef0".parse().expect("snap");
    let snap_tags = tags::snapshot_tags(
        &job(),
        SnapshotSource::Instance { instance: &"i-0123456789abcdef0".parse().expect("i") },
        expires(),
    );
    RunScannerInput {
        image: Tagged::new(image.id, image.tags),
        root: None,
        instance_type: instance_type.into(),
        subnet: Tagged::new(subnet, ours(Role::SUBNET)),
        security_groups: Vec::new(),
        volumes: (0..data)
            .map(|i| ScannerVolume {
                device_name: format!("/dev/sd{i}"),
                snapshot: Tagged::new(snap.clone(), snap_tags.clone()),
                kms_key: None,
            })
            .collect(),
        user_data_base64: String::new(),
        client_token: token.into(),
        instance_tags: ours(Role::SCANNER),
        volume_tags: ours(Role::SCANNER),
        network_interface_tags: ours(Role::SCANNER),
    }
}

/// Shared limit (m5: 28 attachments for volumes and interfaces) and dedicated limit (m7i.large:
/// 32 EBS volumes, interfaces apart), EC2 User Guide "Amazon EBS volume limits for Amazon EC2
/// instances"; an instance type the sim does not know is refused.
#[tokio::test(start_paused = true)]
async fn attachment_limits_follow_the_instance_type() {
    let fx = SimFixture::new();
    let g = guard(&fx.sim);
    let cases = [("m5.xlarge", 26, false), ("m5.xlarge", 27, true), ("m7i.large", 31, false), ("m7i.large", 32, true)];
    for (i, (instance_type, data, exceeds)) in cases.into_iter().enumerate() {
        let input = launch_of(&fx, &g, instance_type, data, &format!("limits-{i}")).await;
        let err = g.run_scanner(&east(), &input).await.expect_err("over the limit or a missing snapshot");
        let want = if exceeds {
            (ErrorKind::QuotaExceeded, Some("AttachmentLimitExceeded"))
        } else {
            (ErrorKind::NotFound, Some("InvalidSnapshot.NotFound"))
        };
        assert_eq!((err.kind(), err.code()), want, "{instance_type} with {data} data volumes: {err}");
    }
    let input = launch_of(&fx, &g, "m5.metal", 1, "limits-metal").await;
    let err = g.run_scanner(&east(), &input).await.expect_err("unknown type");
    assert_eq!((err.kind(), err.code()), (ErrorKind::Other, Some("InvalidParameterValue")), "{err}");
}

/// The Region's running On-Demand vCPUs (the customer's instances included) against the quota
/// the fleet sets: `VcpuLimitExceeded` (EC2 error codes), freed by terminations, per Region.
#[tokio::test(start_paused = true)]
async fn vcpu_quota_per_region() {
    let fleet = Fleet::parse(
        "[quotas]\nvcpus_per_region = 8\n[[accounts]]\nid = \"444455556666\"\nregions = [\"us-east-1\", \"us-west-2\"]\n\
         [[accounts.instances]]\nregion = \"us-east-1\"\ninstance_type = \"t3.micro\"\n\
         [[accounts.instances.volumes]]\nsize_gib = 8\n\
         [[accounts.instances]]\nregion = \"us-east-1\"\ninstance_type = \"m5.2xlarge\"\nstate = \"stopped\"\n",
    )
    .expect("fleet");
    let fx = SimFixture { sim: SimCloud::in_memory(&fleet).expect("sim") };
    let g = guard(&fx.sim);
    // 2 (the running t3.micro; the stopped m5.2xlarge holds none) + 4 = 6 <= 8.
    let first = g.run_scanner(&east(), &launch_of(&fx, &g, "m5.xlarge", 0, "vcpu-1").await).await.expect("fits");
    let second = launch_of(&fx, &g, "m5.xlarge", 0, "vcpu-2").await;
    let err = g.run_scanner(&east(), &second).await.expect_err("6 + 4 > 8");
    assert_eq!((err.kind(), err.code()), (ErrorKind::QuotaExceeded, Some("VcpuLimitExceeded")), "{err}");
    assert!(err.message().contains("vCPU limit of 8"), "{err}");
    // A smaller type fits; the other bucket (P) is not counted.
    g.run_scanner(&east(), &launch_of(&fx, &g, "m5.large", 0, "vcpu-3").await).await.expect("6 + 2 = 8");
    g.run_scanner(&east(), &launch_of(&fx, &g, "p5.48xlarge", 0, "vcpu-4").await).await.expect("not Standard");
    // Terminating the first frees its 4 vCPUs.
    g.terminate_instances(
        &east(),
        &TerminateInstancesInput { instances: vec![Tagged::new(first.instance_id, ours(Role::SCANNER))] },
    )
    .await
    .expect("terminate");
    g.run_scanner(&east(), &second).await.expect("freed");
}
