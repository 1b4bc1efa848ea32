//! The conformance suite of the cloud seam, one suite for every backend: each scenario is an
//! async function over a [`Fixture`] (the backend behind the guard with the bundled policy, and
//! the "customer's" own setup and the checks the seam does not offer, which each backend does its
//! own way: the raw SDK against moto, direct state access on the simulated account). `tests/aws.rs`
//! runs them against moto, `tests/sim` against the simulated account.
//!
//! Where moto differs from AWS (docs/references.md, "moto versus AWS") the scenario accepts both (a
//! snapshot `pending` or already `completed`, and waits), and the comment says where the AWS
//! behaviour is tested instead.

use std::time::Duration;

use agentless::cloud::ops::*;
use agentless::cloud::tags::{self, RESOURCE_NAME_PREFIX, Role, SNAPSHOT_NAME_PREFIX, SnapshotSource};
use agentless::cloud::{
    AccountId, Cloud, ErrorKind, Guard, ImageId, InstanceId, InternetGatewayId, JobId, KmsKeyId, Region,
    SecurityGroupId, SnapshotId, SubnetId, Tags, VolumeId, VpcEndpointId, VpcId,
};

/// The statement `policies/README.md` ("Gaps" 2) says the custom policy lacks for customer
/// managed keys.
pub const GAP_FILLER: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Action": "kms:GenerateDataKeyWithoutPlaintext", "Resource": "*"}]}"#;

/// The Name prefixes of everything we create, for the leak checks.
pub const OUR_PREFIXES: [&str; 2] = [RESOURCE_NAME_PREFIX, SNAPSHOT_NAME_PREFIX];

/// How often the waits poll, and how long they wait at most (virtual time on the sim).
const POLL: Duration = Duration::from_secs(5);
const WAIT_POLLS: usize = 720;

/// What the scenario reads of a scanner outside the seam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerSettings {
    pub imds_v2_required: bool,
    pub shutdown_behavior: String,
    pub user_data: Option<String>,
    pub network_interfaces: usize,
}

/// One backend under test, with the customer's side of the account.
#[allow(async_fn_in_trait)]
pub trait Fixture {
    type Backend: Cloud;

    /// The account the backend's credentials belong to.
    fn account(&self) -> AccountId;
    /// The IAM user name of those credentials.
    fn caller_user(&self) -> String;
    /// The backend behind the guard with the bundled policy and `extra` policies (JSON); the
    /// simulated account also enforces them itself.
    async fn guard_with(&self, region: &Region, extra: &[&str]) -> Guard<Self::Backend>;
    /// The same with the bundled policy alone.
    async fn guard(&self, region: &Region) -> Guard<Self::Backend> {
        self.guard_with(region, &[]).await
    }
    /// A public Amazon x86_64 image of `region`.
    async fn amazon_image(&self, region: &Region) -> ImageId;
    /// The customer's instance in us-east-1 (an 8 GiB root volume, `Name=customer-prod-db`).
    async fn customer_instance(&self, image: &ImageId) -> InstanceId;
    /// A customer managed KMS key in `region`: its ARN.
    async fn customer_key(&self, region: &Region) -> KmsKeyId;
    /// Everything in `region` still carrying one of our Name prefixes (terminated instances and
    /// deleted endpoints excluded).
    async fn leftovers(&self, region: &Region) -> Vec<String>;
    /// The accounts with `createVolumePermission` on a snapshot.
    async fn snapshot_permissions(&self, region: &Region, snapshot: &SnapshotId) -> Vec<String>;
    /// The `aws:ebs:id` constraint of the key's first grant.
    async fn grant_ebs_id(&self, region: &Region, key: &KmsKeyId) -> Option<String>;
    /// How a scanner was launched.
    async fn scanner_settings(&self, region: &Region, instance: &InstanceId) -> ScannerSettings;
}

pub fn east() -> Region {
    "us-east-1".parse().expect("region")
}

pub fn west() -> Region {
    "us-west-2".parse().expect("region")
}

pub fn job() -> JobId {
    "20260315-7k2q".parse().expect("job")
}

pub fn expires() -> jiff::Timestamp {
    "2026-03-16T12:00:00Z".parse().expect("ts")
}

pub fn ours(role: Role<'_>) -> Tags {
    tags::resource_tags(&job(), Some(role), expires())
}

/// A VPC (10.77.0.0/16) and its subnet (10.77.1.0/24 in us-east-1a) made through `g` in
/// us-east-1, each tagged in its create call with `tags(role)`.
pub async fn vpc_with_subnet<C: Cloud>(
    g: &Guard<C>,
    tags: impl Fn(Role<'_>) -> Tags,
) -> (Tagged<VpcId>, Tagged<SubnetId>) {
    let vpc = g.create_vpc(&east(), &CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: tags(Role::VPC) }).await;
    let vpc = Tagged::new(vpc.expect("CreateVpc").vpc_id, tags(Role::VPC));
    let subnet = g
        .create_subnet(
            &east(),
            &CreateSubnetInput {
                vpc: vpc.clone(),
                cidr_block: "10.77.1.0/24".into(),
                availability_zone: "us-east-1a".into(),
                tags: tags(Role::SUBNET),
            },
        )
        .await
        .expect("CreateSubnet")
        .subnet_id;
    (vpc, Tagged::new(subnet, tags(Role::SUBNET)))
}

/// A job's scan network in us-east-1.
#[derive(Debug, Clone)]
pub struct ScanNetwork {
    pub vpc: Tagged<VpcId>,
    pub subnet: Tagged<SubnetId>,
    /// Attached to the VPC.
    pub igw: Tagged<InternetGatewayId>,
    pub sg: Tagged<SecurityGroupId>,
    /// An interface endpoint for EBS in the subnet, with the security group.
    pub endpoint: Tagged<VpcEndpointId>,
}

/// Make a scan network in us-east-1 through `g` the way a job does (VPC 10.77.0.0/16, subnet
/// 10.77.1.0/24 in us-east-1a, internet gateway attached, security group `sg_name`, EBS
/// interface endpoint), each resource tagged in its create call with `tags(role)`.
pub async fn scan_network<C: Cloud>(g: &Guard<C>, tags: impl Fn(Role<'_>) -> Tags, sg_name: &str) -> ScanNetwork {
    let r = east();
    let (vpc, subnet) = vpc_with_subnet(g, &tags).await;
    let igw = g.create_internet_gateway(&r, &CreateInternetGatewayInput { tags: tags(Role::INTERNET_GATEWAY) }).await;
    let igw = Tagged::new(igw.expect("igw").internet_gateway_id, tags(Role::INTERNET_GATEWAY));
    g.attach_internet_gateway(&r, &AttachInternetGatewayInput { internet_gateway: igw.clone(), vpc: vpc.clone() })
        .await
        .expect("attach");
    let sg = g
        .create_security_group(
            &r,
            &CreateSecurityGroupInput {
                vpc: vpc.clone(),
                group_name: sg_name.into(),
                description: "scanners".into(),
                tags: tags(Role::SECURITY_GROUP),
            },
        )
        .await
        .expect("sg")
        .group_id;
    let sg = Tagged::new(sg, tags(Role::SECURITY_GROUP));
    let endpoint = g
        .create_vpc_endpoint(
            &r,
            &CreateVpcEndpointInput {
                vpc: vpc.clone(),
                service_name: "com.amazonaws.us-east-1.ebs".into(),
                kind: EndpointKind::Interface { subnets: vec![subnet.clone()], security_groups: vec![sg.clone()] },
                tags: tags(Role::VPC_ENDPOINT),
            },
        )
        .await
        .expect("endpoint")
        .vpc_endpoint_id;
    let endpoint = Tagged::new(endpoint, tags(Role::VPC_ENDPOINT));
    ScanNetwork { vpc, subnet, igw, sg, endpoint }
}

/// The fixture's Amazon AMI, described through the seam.
pub async fn some_image<F: Fixture>(fx: &F, guard: &Guard<F::Backend>, region: &Region) -> ImageInfo {
    let id = fx.amazon_image(region).await;
    let page = guard
        .describe_images(
            region,
            &DescribeImagesInput {
                owners: vec!["amazon".into()],
                describe: DescribeInput {
                    ids: vec![id],
                    filters: vec![Filter::new("architecture", ["x86_64"])],
                    ..DescribeInput::default()
                },
            },
        )
        .await
        .expect("DescribeImages");
    page.items.into_iter().next().expect("the AMI")
}

/// Poll until every snapshot is `completed` (at once on moto).
pub async fn wait_snapshots<C: Cloud>(guard: &Guard<C>, region: &Region, owner: &AccountId, ids: &[SnapshotId]) {
    for _ in 0..WAIT_POLLS {
        let page = guard
            .describe_snapshots(
                region,
                &DescribeSnapshotsInput { owner: owner.clone(), describe: DescribeInput::ids(ids.to_vec()) },
            )
            .await
            .expect("DescribeSnapshots");
        if page.items.iter().all(|s| s.state == SnapshotState::Completed) {
            return;
        }
        assert!(page.items.iter().all(|s| s.state == SnapshotState::Pending), "{:?}", page.items);
        tokio::time::sleep(POLL).await;
    }
    panic!("snapshots {ids:?} still pending");
}

/// Poll until the instance is in `want`.
pub async fn wait_instance<C: Cloud>(guard: &Guard<C>, region: &Region, id: &InstanceId, want: InstanceState) {
    for _ in 0..WAIT_POLLS {
        let page = guard.describe_instances(region, &DescribeInput::ids(vec![id.clone()])).await.expect("DI");
        if page.items.first().map(|i| &i.state) == Some(&want) {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("instance {id} never reached {want:?}");
}

pub async fn identity_and_discovery<F: Fixture>(fx: &F) {
    let guard = fx.guard(&east()).await;
    let me = guard.get_caller_identity(&east(), &Empty).await.expect("GetCallerIdentity");
    assert_eq!(me.account, fx.account());
    assert!(me.arn.ends_with(&format!(":user/{}", fx.caller_user())), "{}", me.arn);
    let user = guard.get_user(&east(), &GetUserInput::default()).await.expect("GetUser");
    assert!(!user.user_name.is_empty() && user.arn.starts_with("arn:aws:iam::"), "{user:?}");

    let regions = guard.describe_regions(&east(), &Empty).await.expect("DescribeRegions");
    assert!(regions.iter().any(|r| r.region == west()), "{} regions", regions.len());
    let zones = guard.describe_availability_zones(&east(), &Empty).await.expect("DescribeAvailabilityZones");
    assert!(zones.iter().any(|z| z.name == "us-east-1a" && z.state == "available" && !z.zone_id.is_empty()));
    let offerings = guard
        .describe_instance_type_offerings(
            &east(),
            &DescribeInstanceTypeOfferingsInput { instance_types: vec!["m5.xlarge".into()] },
        )
        .await
        .expect("DescribeInstanceTypeOfferings");
    assert!(!offerings.is_empty() && offerings.iter().all(|o| o.instance_type == "m5.xlarge"));
    assert!(offerings.iter().all(|o| o.availability_zone.starts_with("us-east-1")));

    let image = some_image(fx, &guard, &east()).await;
    assert_eq!(image.state, "available");
    let instance = fx.customer_instance(&image.id).await;
    let page = guard.describe_instances(&east(), &DescribeInput::ids(vec![instance.clone()])).await.expect("DI");
    let info = &page.items[0];
    assert_eq!((info.id.clone(), info.state.clone()), (instance.clone(), InstanceState::Running));
    assert_eq!(info.tags.name(), Some("customer-prod-db"));
    let root = info.volumes.first().expect("the customer instance has a root volume");
    let vols = guard.describe_volumes(&east(), &DescribeInput::ids(vec![root.volume_id.clone()])).await.expect("DV");
    assert_eq!(vols.items[0].attachments, vec![(instance.clone(), root.device_name.clone())]);
    // Filters and pagination tokens go through. moto never returns a NextToken (docs/references.md);
    // paging over several pages is tested on the simulated account (tests/sim).
    let by_filter = guard
        .describe_instances(
            &east(),
            &DescribeInput {
                filters: vec![Filter::tag("Name", ["customer-*"])],
                max_results: Some(5),
                ..DescribeInput::default()
            },
        )
        .await
        .expect("DI filter");
    assert_eq!(by_filter.items.len(), 1);
}

pub async fn error_kinds<F: Fixture>(fx: &F) {
    let guard = fx.guard(&east()).await;
    // DeleteVpc with a subnet: DependencyViolation (moto checks subnets; it does not check IGWs,
    // security groups or endpoints, docs/references.md — the simulated account does: tests/sim).
    let (vpc, subnet) = vpc_with_subnet(&guard, ours).await;
    let err = guard.delete_vpc(&east(), &DeleteVpcInput { vpc: vpc.clone() }).await.expect_err("DependencyViolation");
    assert_eq!(err.kind(), ErrorKind::DependencyViolation, "{err}");
    assert_eq!(err.code(), Some("DependencyViolation"));
    assert_eq!(err.region(), Some(&east()));
    assert_eq!(err.ids(), [vpc.id.to_string()]);
    assert_eq!(err.operation(), "DeleteVpc");
    guard.delete_subnet(&east(), &DeleteSubnetInput { subnet }).await.expect("DS");
    guard.delete_vpc(&east(), &DeleteVpcInput { vpc }).await.expect("DeleteVpc after its subnet");

    // Unknown snapshot: InvalidSnapshot.NotFound on DeleteSnapshot and DescribeSnapshots.
    let unknown: SnapshotId = "snap-0123456789abcdef0".parse().expect("snap");
    let snap_tags = tags::snapshot_tags(
        &job(),
        SnapshotSource::Volume {
            instance: &"i-0123456789abcdef0".parse().expect("i"),
            volume: &"vol-0123456789abcdef0".parse().expect("vol"),
        },
        expires(),
    );
    let err = guard
        .delete_snapshot(&east(), &DeleteSnapshotInput { snapshot: Tagged::new(unknown.clone(), snap_tags) })
        .await
        .expect_err("NotFound");
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some("InvalidSnapshot.NotFound")), "{err}");
    assert_eq!(err.ids(), [unknown.to_string()]);
    let err = guard
        .describe_snapshots(
            &east(),
            &DescribeSnapshotsInput { owner: fx.account(), describe: DescribeInput::ids(vec![unknown.clone()]) },
        )
        .await
        .expect_err("NotFound");
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some("InvalidSnapshot.NotFound")), "{err}");

    // KMS: an unknown key is a NotFoundException (JSON protocol).
    let key: KmsKeyId = "1234abcd-12ab-34cd-56ef-1234567890ab".parse().expect("key");
    let err = guard.describe_key(&east(), &DescribeKeyInput { key: key.clone() }).await.expect_err("NotFound");
    assert_eq!((err.kind(), err.code()), (ErrorKind::NotFound, Some("NotFoundException")), "{err}");
    assert_eq!(err.ids(), [key.to_string()]);

    // A customer's snapshot: moto would delete it (it ignores IAM Conditions, docs/references.md); our
    // guard refuses before sending. AWS's own refusal (UnauthorizedOperation) is tested on the
    // simulated account behind a permissive guard (tests/sim).
    let mut customer = Tags::new();
    customer.insert("Name", "customer-backup").expect("tag");
    let err = guard
        .delete_snapshot(&east(), &DeleteSnapshotInput { snapshot: Tagged::new(unknown, customer) })
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::PolicyDenied, "{err}");
}

/// One job: snapshot a customer's instance, share, copy cross-Region with a customer key, build the
/// network, launch a scanner from the snapshots, then tear everything down in dependency order.
pub async fn one_job_create_then_teardown_leaves_nothing<F: Fixture>(fx: &F) {
    let guard = fx.guard(&east()).await;
    let image = some_image(fx, &guard, &east()).await;
    let instance = fx.customer_instance(&image.id).await;
    let described = guard.describe_instances(&east(), &DescribeInput::ids(vec![instance.clone()])).await.expect("DI");
    let target = described.items.into_iter().next().expect("instance");
    let volume: VolumeId = target.volumes[0].volume_id.clone();
    let vol_info = guard.describe_volumes(&east(), &DescribeInput::ids(vec![volume.clone()])).await.expect("DV");
    let vol_tagged = Tagged::new(volume.clone(), vol_info.items[0].tags.clone());

    // ---- snapshots (CreateSnapshots for the instance, CreateSnapshot for one volume)
    let inst_tags = tags::snapshot_tags(&job(), SnapshotSource::Instance { instance: &instance }, expires());
    let multi = guard
        .create_snapshots(
            &east(),
            &CreateSnapshotsInput {
                instance: Tagged::new(instance.clone(), target.tags.clone()),
                volumes: vec![vol_tagged.clone()],
                // moto excludes only a device equal to root_device_name (docs/references.md).
                exclude_boot_volume: false,
                description: "agentless scan".into(),
                tags: inst_tags.clone(),
            },
        )
        .await
        .expect("CreateSnapshots");
    assert_eq!(multi.snapshots.len(), 1);
    assert_eq!(multi.snapshots[0].volume_id, volume);
    let vol_tags =
        tags::snapshot_tags(&job(), SnapshotSource::Volume { instance: &instance, volume: &volume }, expires());
    let single = guard
        .create_snapshot(
            &east(),
            &CreateSnapshotInput { volume: vol_tagged, description: "agentless scan".into(), tags: vol_tags.clone() },
        )
        .await
        .expect("CreateSnapshot")
        .snapshot_id;
    let snaps = guard
        .describe_snapshots(
            &east(),
            &DescribeSnapshotsInput {
                owner: fx.account(),
                describe: DescribeInput::ids(vec![multi.snapshots[0].snapshot_id.clone(), single.clone()]),
            },
        )
        .await
        .expect("DescribeSnapshots");
    assert_eq!(snaps.items.len(), 2);
    for s in &snaps.items {
        let want = if s.id == single { &vol_tags } else { &inst_tags };
        assert_eq!(&s.tags, want, "tags of {}", s.id);
        assert_eq!(s.owner, fx.account());
        // moto: `completed`/100% at once (docs/references.md); AWS and the sim: `pending` first.
        assert!(matches!(s.state, SnapshotState::Pending | SnapshotState::Completed), "{:?}", s.state);
    }
    // The owner-id filter alone lists ours and none of the preloaded AMIs' snapshots (moto
    // ignores OwnerIds=self, docs/references.md).
    let mine = guard
        .describe_snapshots(
            &east(),
            &DescribeSnapshotsInput { owner: fx.account(), describe: DescribeInput::default() },
        )
        .await
        .expect("DescribeSnapshots owner");
    assert!(mine.items.iter().all(|s| s.owner == fx.account()), "{} snapshots", mine.items.len());
    assert!(mine.items.iter().any(|s| s.id == single));
    wait_snapshots(&guard, &east(), &fx.account(), &[single.clone(), multi.snapshots[0].snapshot_id.clone()]).await;
    let single = Tagged::new(single, vol_tags.clone());
    let multi_snap = Tagged::new(multi.snapshots[0].snapshot_id.clone(), inst_tags);

    // ---- sharing
    let other: AccountId = "111122223333".parse().expect("account");
    for change in [PermissionChange::Add, PermissionChange::Remove] {
        guard
            .modify_snapshot_attribute(
                &east(),
                &ModifySnapshotAttributeInput { snapshot: single.clone(), change, account: other.clone() },
            )
            .await
            .expect("ModifySnapshotAttribute");
        let users = fx.snapshot_permissions(&east(), &single.id).await;
        assert_eq!(users.is_empty(), change == PermissionChange::Remove, "{change:?}: {users:?}");
    }

    // ---- KMS: the customer's key, our grant
    let key = fx.customer_key(&east()).await;
    let key_info = guard.describe_key(&east(), &DescribeKeyInput { key: key.clone() }).await.expect("DescribeKey");
    assert_eq!((key_info.manager, key_info.state.as_str()), (KeyManager::Customer, "Enabled"));
    assert_eq!(key_info.arn, key.as_str());
    let grant_name = tags::grant_name(&job());
    let grant = guard
        .create_grant(
            &east(),
            &CreateGrantInput {
                key: key.clone(),
                grantee_principal: format!("arn:aws:iam::{}:user/{}", fx.account(), fx.caller_user()),
                operations: vec![GrantOperation::Decrypt, GrantOperation::CreateGrant, GrantOperation::DescribeKey],
                ebs_id: EbsId::Volume(volume.clone()),
                name: grant_name.clone(),
            },
        )
        .await
        .expect("CreateGrant");
    let grants = guard.list_grants(&east(), &ListGrantsInput { key: key.clone(), marker: None }).await.expect("LG");
    let listed = grants.items.iter().find(|g| g.grant_id == grant.grant_id).expect("our grant listed");
    assert_eq!(listed.name.as_deref(), Some(grant_name.as_str()));
    assert_eq!(listed.operations, ["Decrypt", "CreateGrant", "DescribeKey"]);
    // The constraint round trip: ListGrants returns it (what the job's resume matches on), and
    // read outside the seam too.
    assert_eq!(listed.ebs_id.as_deref(), Some(volume.as_str()));
    assert_eq!(fx.grant_ebs_id(&east(), &key).await.as_deref(), Some(volume.as_str()));
    // moto does not enforce grants or their constraints (docs/references.md, KMS); the simulated
    // account does, at RunInstances (tests/sim).

    // ---- cross-Region copy, encrypted under a key of the destination Region. With the bundled
    // policy alone it is up to the key policy: EBS would call kms:GenerateDataKeyWithoutPlaintext
    // with our credentials, which the policy does not grant (policies/README.md, "Gaps" 2), so the
    // guard sends it and AWS decides.
    let west_key = fx.customer_key(&west()).await;
    let copy_tags = vol_tags.clone();
    let copy_input = CopySnapshotInput {
        source_region: east(),
        source: single.clone(),
        source_kms_key: None,
        encrypted: true,
        kms_key_id: Some(west_key.clone()),
        description: "agentless copy".into(),
        tags: copy_tags.clone(),
    };
    let entry = guard.policy().evaluate(&west(), agentless::cloud::Call::CopySnapshot(&copy_input));
    assert!(entry.allowed, "the guard leaves it to the key policy: {entry:?}");
    let left: Vec<&str> =
        entry.requests.iter().filter(|e| e.key_policy_decides()).map(|e| e.request.action()).collect();
    assert_eq!(left, ["kms:GenerateDataKeyWithoutPlaintext"]);
    // The wire call itself, with the gap filled by a supplementary policy (the remedy the README
    // describes).
    let filled = fx.guard_with(&west(), &[GAP_FILLER]).await;
    let copy = filled.copy_snapshot(&west(), &copy_input).await.expect("CopySnapshot").snapshot_id;
    let copied = guard
        .describe_snapshots(
            &west(),
            &DescribeSnapshotsInput { owner: fx.account(), describe: DescribeInput::ids(vec![copy.clone()]) },
        )
        .await
        .expect("DescribeSnapshots west");
    assert_eq!(copied.items[0].tags, copy_tags);
    assert!(copied.items[0].encrypted);
    assert_eq!(copied.items[0].kms_key_id.as_ref(), Some(&west_key));
    // moto accepts a copy under a key that does not exist (docs/references.md): AWS's failure of such a
    // copy is tested on the simulated account (tests/sim).

    // ---- network
    let (vpc, subnet) = vpc_with_subnet(&guard, ours).await;
    let (vpc_id, subnet_id) = (vpc.id.clone(), subnet.id.clone());
    guard
        .modify_subnet_attribute(
            &east(),
            &ModifySubnetAttributeInput { subnet: subnet.clone(), map_public_ip_on_launch: true },
        )
        .await
        .expect("ModifySubnetAttribute");
    let igw_id = guard
        .create_internet_gateway(&east(), &CreateInternetGatewayInput { tags: ours(Role::INTERNET_GATEWAY) })
        .await
        .expect("CreateInternetGateway")
        .internet_gateway_id;
    let igw = Tagged::new(igw_id.clone(), ours(Role::INTERNET_GATEWAY));
    guard
        .attach_internet_gateway(
            &east(),
            &AttachInternetGatewayInput { internet_gateway: igw.clone(), vpc: vpc.clone() },
        )
        .await
        .expect("AttachInternetGateway");
    let tables = guard
        .describe_route_tables(
            &east(),
            &DescribeInput::filters(vec![
                Filter::new("vpc-id", [vpc_id.as_str()]),
                Filter::new("association.main", ["true"]),
            ]),
        )
        .await
        .expect("DescribeRouteTables");
    let main = tables.items.iter().find(|t| t.main).expect("main route table");
    assert_eq!(main.vpc_id, vpc_id);
    let main = Tagged::new(main.id.clone(), main.tags.clone());
    guard
        .create_route(
            &east(),
            &CreateRouteInput {
                route_table: main.clone(),
                vpc: vpc.clone(),
                destination_cidr: "0.0.0.0/0".into(),
                gateway: igw_id.clone(),
            },
        )
        .await
        .expect("CreateRoute");
    let sg_name = tags::resource_name(&job(), Some(Role::SECURITY_GROUP));
    let sg_id = guard
        .create_security_group(
            &east(),
            &CreateSecurityGroupInput {
                vpc: vpc.clone(),
                group_name: sg_name.clone(),
                description: "agentless scanners: no ingress".into(),
                tags: ours(Role::SECURITY_GROUP),
            },
        )
        .await
        .expect("CreateSecurityGroup")
        .group_id;
    let sg = Tagged::new(sg_id.clone(), ours(Role::SECURITY_GROUP));
    guard
        .authorize_security_group_egress(
            &east(),
            &AuthorizeSecurityGroupEgressInput {
                group: sg.clone(),
                rules: vec![EgressRule {
                    protocol: "tcp".into(),
                    from_port: 443,
                    to_port: 443,
                    cidr: "10.0.0.0/8".into(),
                }],
            },
        )
        .await
        .expect("AuthorizeSecurityGroupEgress");
    let gateway_ep = guard
        .create_vpc_endpoint(
            &east(),
            &CreateVpcEndpointInput {
                vpc: vpc.clone(),
                service_name: "com.amazonaws.us-east-1.s3".into(),
                kind: EndpointKind::Gateway { route_tables: vec![main.clone()] },
                tags: ours(Role::VPC_ENDPOINT),
            },
        )
        .await
        .expect("CreateVpcEndpoint gateway")
        .vpc_endpoint_id;
    let iface_tags = ours(Role::new("vpce-ebs").expect("role"));
    let iface_ep = guard
        .create_vpc_endpoint(
            &east(),
            &CreateVpcEndpointInput {
                vpc: vpc.clone(),
                service_name: "com.amazonaws.us-east-1.ebs".into(),
                kind: EndpointKind::Interface { subnets: vec![subnet.clone()], security_groups: vec![sg.clone()] },
                tags: iface_tags.clone(),
            },
        )
        .await
        .expect("CreateVpcEndpoint interface")
        .vpc_endpoint_id;

    // Every create's tags, read back.
    let vpcs = guard.describe_vpcs(&east(), &DescribeInput::ids(vec![vpc_id.clone()])).await.expect("DescribeVpcs");
    assert_eq!((vpcs.items[0].tags.clone(), vpcs.items[0].cidr_block.as_str()), (ours(Role::VPC), "10.77.0.0/16"));
    let subnets = guard.describe_subnets(&east(), &DescribeInput::ids(vec![subnet_id.clone()])).await.expect("DS");
    assert_eq!(subnets.items[0].tags, ours(Role::SUBNET));
    assert_eq!(
        (subnets.items[0].vpc_id.clone(), subnets.items[0].availability_zone.as_str()),
        (vpc_id.clone(), "us-east-1a")
    );
    let sgs = guard.describe_security_groups(&east(), &DescribeInput::ids(vec![sg_id.clone()])).await.expect("DSG");
    assert_eq!((sgs.items[0].tags.clone(), sgs.items[0].group_name.clone()), (ours(Role::SECURITY_GROUP), sg_name));
    assert_eq!(sgs.items[0].vpc_id.as_ref(), Some(&vpc_id));
    let igws =
        guard.describe_internet_gateways(&east(), &DescribeInput::ids(vec![igw_id.clone()])).await.expect("DIGW");
    assert_eq!(
        (igws.items[0].tags.clone(), igws.items[0].attached_vpcs.clone()),
        (ours(Role::INTERNET_GATEWAY), vec![vpc_id.clone()])
    );
    let eps = guard
        .describe_vpc_endpoints(&east(), &DescribeInput::ids(vec![gateway_ep.clone(), iface_ep.clone()]))
        .await
        .expect("DescribeVpcEndpoints");
    assert_eq!(eps.items.len(), 2);
    for e in &eps.items {
        let want = if e.id == gateway_ep { ours(Role::VPC_ENDPOINT) } else { iface_tags.clone() };
        assert_eq!((&e.tags, &e.vpc_id), (&want, &vpc_id));
    }

    // ---- the scanner
    let scanner_tags = ours(Role::SCANNER);
    let launched = guard
        .run_scanner(
            &east(),
            &RunScannerInput {
                image: Tagged::new(image.id.clone(), image.tags.clone()),
                root: None,
                instance_type: "m5.xlarge".into(),
                subnet: subnet.clone(),
                security_groups: vec![sg.clone()],
                volumes: vec![
                    ScannerVolume { device_name: "/dev/sdf".into(), snapshot: single.clone(), kms_key: None },
                    ScannerVolume { device_name: "/dev/sdg".into(), snapshot: multi_snap.clone(), kms_key: None },
                ],
                user_data_base64: "eyJqb2IiOiIyMDI2MDMxNS03azJxIn0=".into(),
                client_token: "20260315-7k2q-scanner-0".into(),
                instance_tags: scanner_tags.clone(),
                volume_tags: scanner_tags.clone(),
                network_interface_tags: scanner_tags.clone(),
            },
        )
        .await
        .expect("RunInstances");
    let scanner = guard
        .describe_instances(&east(), &DescribeInput::ids(vec![launched.instance_id.clone()]))
        .await
        .expect("DI scanner")
        .items
        .remove(0);
    assert_eq!(scanner.tags, scanner_tags);
    // The data volumes (AWS and the sim also create the image's root volume; moto, given a block
    // device mapping, only the listed devices: docs/references.md).
    let devices: Vec<(&str, bool)> = scanner
        .volumes
        .iter()
        .filter(|v| scanner.root_device_name.as_deref() != Some(v.device_name.as_str()))
        .map(|v| (v.device_name.as_str(), v.delete_on_termination))
        .collect();
    assert_eq!(devices, [("/dev/sdf", true), ("/dev/sdg", true)]);
    let scanner_vols = guard
        .describe_volumes(&east(), &DescribeInput::ids(scanner.volumes.iter().map(|v| v.volume_id.clone()).collect()))
        .await
        .expect("DV scanner");
    for v in &scanner_vols.items {
        assert_eq!((&v.tags, v.volume_type.as_str()), (&scanner_tags, "gp3"), "volume {}", v.id);
    }
    // IMDSv2, shutdown behaviour and user data, read outside the seam.
    let settings = fx.scanner_settings(&east(), &launched.instance_id).await;
    assert!(settings.imds_v2_required, "{settings:?}");
    assert_eq!(settings.shutdown_behavior, "terminate");
    assert_eq!(settings.user_data.as_deref(), Some("eyJqb2IiOiIyMDI2MDMxNS03azJxIn0="));
    // Network interface tags: moto's RunInstances applies instance and volume
    // TagSpecifications (docs/references.md); the ENI's is checked if moto reports it, and on the simulated
    // account in tests/sim. ClientToken idempotency (a repeat returning the same instance) is not
    // implemented by moto: tested on the simulated account.
    assert!(!launched.network_interfaces.is_empty() || settings.network_interfaces == 0);
    // A scanner is stopped or terminated once it runs (AWS: `pending` first; moto: at once).
    wait_instance(&guard, &east(), &launched.instance_id, InstanceState::Running).await;

    // ---- teardown, in dependency order
    let scanner_t = Tagged::new(launched.instance_id.clone(), scanner_tags.clone());
    let stopped = guard
        .stop_instances(&east(), &StopInstancesInput { instances: vec![scanner_t.clone()] })
        .await
        .expect("StopInstances");
    assert_eq!(stopped[0].instance_id, launched.instance_id);
    let terminated = guard
        .terminate_instances(&east(), &TerminateInstancesInput { instances: vec![scanner_t] })
        .await
        .expect("TerminateInstances");
    assert_eq!(terminated[0].instance_id, launched.instance_id);
    // moto: `terminated` at once and the scanner's DeleteOnTermination volumes are gone (docs/references.md);
    // AWS and the sim: `shutting-down` first, and the subnet and security group stay in use until
    // the instance is terminated.
    wait_instance(&guard, &east(), &launched.instance_id, InstanceState::Terminated).await;
    let deleted = guard
        .delete_vpc_endpoints(
            &east(),
            &DeleteVpcEndpointsInput {
                endpoints: vec![Tagged::new(gateway_ep, ours(Role::VPC_ENDPOINT)), Tagged::new(iface_ep, iface_tags)],
            },
        )
        .await
        .expect("DeleteVpcEndpoints");
    assert!(deleted.unsuccessful.is_empty(), "{:?}", deleted.unsuccessful);
    guard.delete_security_group(&east(), &DeleteSecurityGroupInput { group: sg }).await.expect("DeleteSecurityGroup");
    guard.delete_subnet(&east(), &DeleteSubnetInput { subnet }).await.expect("DeleteSubnet");
    guard
        .detach_internet_gateway(
            &east(),
            &DetachInternetGatewayInput { internet_gateway: igw.clone(), vpc: vpc.clone() },
        )
        .await
        .expect("DetachInternetGateway");
    guard.delete_internet_gateway(&east(), &DeleteInternetGatewayInput { internet_gateway: igw }).await.expect("DIGW");
    guard.delete_vpc(&east(), &DeleteVpcInput { vpc }).await.expect("DeleteVpc");
    for s in [single, multi_snap] {
        guard.delete_snapshot(&east(), &DeleteSnapshotInput { snapshot: s }).await.expect("DeleteSnapshot");
    }
    guard
        .delete_snapshot(&west(), &DeleteSnapshotInput { snapshot: Tagged::new(copy, copy_tags) })
        .await
        .expect("DeleteSnapshot copy");
    guard
        .revoke_grant(
            &east(),
            &RevokeGrantInput {
                key: key.clone(),
                grant_id: grant.grant_id.clone(),
                grant_name: Some(grant_name.clone()),
            },
        )
        .await
        .expect("RevokeGrant");

    for region in [east(), west()] {
        let left = fx.leftovers(&region).await;
        assert!(left.is_empty(), "left in {region}: {left:?}");
    }
    let grants = guard.list_grants(&east(), &ListGrantsInput { key, marker: None }).await.expect("ListGrants");
    assert!(grants.items.iter().all(|g| g.name.as_deref() != Some(grant_name.as_str())), "{:?}", grants.items);
}

pub async fn copy_image_into_another_region<F: Fixture>(fx: &F) {
    let guard = fx.guard(&west()).await;
    let source = some_image(fx, &guard, &east()).await;
    let ours = tags::image_tags(Role::new("1").expect("role"));
    let input = CopyImageInput {
        source_region: east(),
        source: Tagged::new(source.id.clone(), source.tags.clone()),
        name: tags::image_name("1"),
        description: "scanner image".into(),
        encrypted: false,
        kms_key_id: None,
        tags: ours.clone(),
    };
    // The guard copies only our scanner image: the fixture's Amazon image, as it is, is refused.
    let refused = guard.copy_image(&west(), &input).await.expect_err("not our image");
    assert_eq!(refused.kind(), agentless::cloud::ErrorKind::PolicyDenied, "{refused}");
    assert!(refused.to_string().contains("copies only our scanner image"), "{refused}");
    // It stands in for the published scanner image, which carries our image tags
    // (scanner-ami/image/register.sh); the guard judges by the tags the caller knows.
    let input = CopyImageInput { source: Tagged::new(source.id.clone(), ours), ..input };
    let copied = guard.copy_image(&west(), &input).await.expect("CopyImage").image_id;
    let page = guard
        .describe_images(
            &west(),
            &DescribeImagesInput { owners: vec!["self".into()], describe: DescribeInput::ids(vec![copied.clone()]) },
        )
        .await
        .expect("DescribeImages");
    assert_eq!(page.items[0].id, copied);
    assert_eq!(page.items[0].name, tags::image_name("1"));
    // moto's CopyImage drops Encrypted, KmsKeyId and TagSpecifications (docs/references.md): the copy's
    // tags are checked on the simulated account (tests/sim).
}
