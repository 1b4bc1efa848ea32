//! The call plan of a scan job and of the leak auditor, as data, and `policy check`: every call
//! evaluated through the guard's decision logic ([`GuardPolicy::evaluate`], the same function
//! [`crate::cloud::Guard`] runs before each call).
//!
//! The example plan ([`example_plan`]) has realistic ids and the tags of docs/tags.md:
//!
//! - start: `GetCallerIdentity`, `GetUser`, `DescribeRegions`;
//! - three targets: `i-...0001` (one unencrypted volume) and `i-...0002` (an unencrypted root and a
//!   data volume under a customer managed KMS key) in us-east-1, the scanner Region; `i-...0003` in
//!   eu-west-1 with a volume under a customer managed key there;
//! - discovering, snapshotting (`CreateSnapshots` per us-east-1 instance, `CreateSnapshot` in
//!   eu-west-1), polling `DescribeSnapshots`;
//! - sharing: `DescribeKey`, `CreateGrant` (constraint `aws:ebs:id` = the *volume* id) for each
//!   customer managed key, a cross-Region `CopySnapshot` of the eu-west-1 snapshot re-encrypting it
//!   under a us-east-1 key (and a grant on that key for the copy);
//! - the ephemeral network: VPC, subnet (+ public IPs on launch), internet gateway + attach, the
//!   main route table's default route, security group + egress rule, an S3 gateway endpoint;
//! - the scanner AMI: `DescribeImages`, `CopyImage` from the publishing Region when absent;
//! - two scanners: one for the unencrypted snapshots, one for those under customer managed keys
//!   (so a KMS failure cannot sink the others), then polling;
//! - teardown in dependency order: terminate, wait, VPC endpoint, security group, subnet, detach +
//!   delete the gateway, VPC, snapshots (both Regions), revoke grants;
//! - the leak auditor: paginated Describes with `Name`-prefix filters in both Regions,
//!   `ListGrants`, and the deletes of an earlier job's leaked resources.
//!
//! # What the plan does not call
//!
//! - `ec2:DescribeInstanceTypes` (the design reads the scanner's attachment limit from it; the
//!   policy lacks it): the plan uses [`SCANNER_MAX_DATA_VOLUMES`] for [`SCANNER_INSTANCE_TYPE`]
//!   instead, a built-in value.
//! - The policy actions in [`UNUSED_ACTIONS`].
//!
//! # Calls the key policy decides
//!
//! Creating a volume from a snapshot under a customer managed key, and re-encrypting a copy, make
//! EC2 call `kms:GenerateDataKeyWithoutPlaintext` with our credentials (EBS User Guide, "How EBS
//! encryption works"); the policy has only `kms:GenerateDataKey`. Whether KMS allows it then
//! depends on the key's own policy, which we cannot read (`policies/README.md`, "Gaps" 2, "What
//! EC2 asks of KMS for our volumes"): allowed if it names our principal as a key user, denied if
//! it only defers to IAM. Calls whose only refused requests are such on-behalf KMS requests are
//! reported as `KEY-POLICY` ([`Verdict::KeyPolicy`]), not hidden and not `ALLOW`; `policy check
//! --strict` fails on them. An explicit deny is `DENY`.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use crate::cloud::Op;
use crate::cloud::authz::{Origin, Scope};
use crate::cloud::guard::{GuardPolicy, GuardRules, TraceEntry};
use crate::cloud::ids::{
    AccountId, GrantId, IdError, ImageId, InstanceId, InternetGatewayId, JobId, KmsKeyId, Region, RouteTableId,
    SecurityGroupId, SnapshotId, SubnetId, VolumeId, VpcEndpointId, VpcId,
};
use crate::cloud::ops::*;
use crate::cloud::tags::{self, Role, SnapshotSource, Tags};
use crate::policy::{Decision, Policy};

/// The scanner instance type of the plan: a Nitro type with the shared attachment limit.
pub const SCANNER_INSTANCE_TYPE: &str = "m5.xlarge";

/// Data volumes one scanner takes, instead of reading `DescribeInstanceTypes` (not in the policy):
/// Nitro instances with the shared limit have 28 attachments for ENIs, EBS volumes and NVMe
/// instance store (EC2 User Guide, "Amazon EBS volume limits for Amazon EC2 instances"); minus
/// one ENI and the root volume leaves 26, the number Prisma Cloud uses per scanner
/// (docs/references.md, "Volume attachments per instance"). Types with a dedicated EBS limit allow
/// more; this is the conservative value for all.
pub const SCANNER_MAX_DATA_VOLUMES: usize = 26;

/// Actions of the custom policy that no call of the plan needs (each documented in
/// `policies/README.md`): removing any of them leaves `policy check` green, which the tests prove.
pub const UNUSED_ACTIONS: &[&str] = &[
    "ec2:StopInstances",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateImage",
    "ec2:ModifyImageAttribute",
    "ec2:ModifySnapshotAttribute",
    "ec2:DescribeImageAttribute",
    "ec2:ModifyVpcEndpoint",
    "kms:GenerateDataKey",
    // The `Decrypt` of a scanner volume's data key at attach is made by EC2's infrastructure role
    // under the grant EC2 creates, not with our credentials (KMS Developer Guide, "Amazon EC2
    // example two"; policies/README.md, "What EC2 asks of KMS for our volumes", fact 3).
    "kms:Decrypt",
    // Asked by EC2 with our credentials only for the re-encrypting cross-Region copy (INFERENCE
    // (d)), which the key policy decides anyway (the copy also needs
    // kms:GenerateDataKeyWithoutPlaintext, which the policy lacks): no call that the IAM policy
    // alone decides needs it.
    "kms:ReEncrypt*",
];

/// Where in the workflow a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Start,
    Discovering,
    Snapshotting,
    Sharing,
    Networking,
    Launching,
    Scanning,
    TearingDown,
    AuditListing,
    AuditDeleting,
    /// Reading the CloudTrail pipeline (the queue and the trail bucket's log files).
    Pipeline,
}

impl Phase {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Start => "scan: start",
            Phase::Discovering => "scan: discovering",
            Phase::Snapshotting => "scan: snapshotting",
            Phase::Sharing => "scan: sharing",
            Phase::Networking => "scan: networking",
            Phase::Launching => "scan: launching",
            Phase::Scanning => "scan: scanning",
            Phase::TearingDown => "scan: tearing down",
            Phase::AuditListing => "audit: listing",
            Phase::AuditDeleting => "audit: deleting leaks",
            Phase::Pipeline => "events: reading the CloudTrail pipeline",
        }
    }
}

/// One planned call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStep {
    pub phase: Phase,
    pub region: Region,
    pub op: Op,
}

/// A call plan and the principal it runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub account: AccountId,
    /// The IAM user the calls are made as (for `GetUser` and the grants' grantee).
    pub user: String,
    pub job: JobId,
    pub steps: Vec<PlanStep>,
}

impl Plan {
    /// The authorization scope of the plan's principal.
    #[must_use]
    pub fn scope(&self) -> Scope {
        Scope { caller_user: Some(self.user.clone()), ..Scope::new(self.account.clone()) }
    }

    /// `arn:aws:iam::<account>:user/<user>`.
    #[must_use]
    pub fn caller_arn(&self) -> String {
        format!("arn:aws:iam::{}:user/{}", self.account, self.user)
    }
}

fn id<T: FromStr<Err = IdError>>(s: &str) -> Result<T, IdError> {
    s.parse()
}

/// A Describe of our resources by filters, one page of up to 1000.
fn paged<Id>(filters: Vec<Filter>, token: Option<&str>) -> DescribeInput<Id> {
    DescribeInput { filters, next_token: token.map(str::to_owned), max_results: Some(1000), ..DescribeInput::default() }
}

fn tagged<Id>(id: Id, tags: &Tags) -> Tagged<Id> {
    Tagged::new(id, tags.clone())
}

/// Customer tags of a target (not ours: the guard never lets us change these).
fn customer(name: &str) -> Tags {
    let mut t = Tags::new();
    // Known-good constant keys and short values: insert cannot fail; an error would only drop it.
    let _ = t.insert("Name", name);
    let _ = t.insert("env", "prod");
    t
}

/// The example plan of one scan job and one audit (see the module documentation).
pub fn example_plan() -> Result<Plan, IdError> {
    use Op as O;
    use Phase as P;
    let account: AccountId = id("111122223333")?;
    let user = "agentless-scanner".to_owned();
    let caller_arn = format!("arn:aws:iam::{account}:user/{user}");
    let job: JobId = id("20260315-7k2q")?;
    let old_job: JobId = id("20260301-a1b2")?;
    let expires: jiff::Timestamp = "2026-03-16T12:00:00Z".parse().map_err(|_| IdError {
        kind: "timestamp",
        value: "2026-03-16T12:00:00Z".into(),
        expected: "RFC 3339",
    })?;
    let old_expires: jiff::Timestamp = expires
        .checked_sub(jiff::SignedDuration::from_hours(14 * 24))
        .map_err(|_| IdError { kind: "timestamp", value: "2026-03-02T12:00:00Z".into(), expected: "RFC 3339" })?;
    let use1: Region = id("us-east-1")?;
    let euw1: Region = id("eu-west-1")?;
    let apse1: Region = id("ap-southeast-1")?;

    // Targets.
    let i1: InstanceId = id("i-0a1b2c3d4e5f60001")?;
    let i2: InstanceId = id("i-0a1b2c3d4e5f60002")?;
    let i3: InstanceId = id("i-0a1b2c3d4e5f60003")?;
    let v11: VolumeId = id("vol-0a1b2c3d4e5f60011")?;
    let v21: VolumeId = id("vol-0a1b2c3d4e5f60021")?;
    let v22: VolumeId = id("vol-0a1b2c3d4e5f60022")?;
    let v31: VolumeId = id("vol-0a1b2c3d4e5f60031")?;
    let (t1, t2) = (customer("web-1"), customer("db-1"));
    let (tv11, tv21, tv22, tv31) =
        (customer("web-1-root"), customer("db-1-root"), customer("db-1-data"), customer("eu-app-1-root"));
    // Customer managed keys: the db data volume's, the eu volume's, and the scanner Region's key for copies.
    let k_db: KmsKeyId = id("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")?;
    let k_eu: KmsKeyId = id("arn:aws:kms:eu-west-1:111122223333:key/5678abcd-56ab-78cd-90ef-5678901234cd")?;
    let k_copy: KmsKeyId = id("arn:aws:kms:us-east-1:111122223333:key/9abcdef0-9abc-4def-8abc-9abcdef01234")?;

    // Our snapshots (ids as the create calls return them).
    let s1: SnapshotId = id("snap-0a1b2c3d4e5f60101")?;
    let s21: SnapshotId = id("snap-0a1b2c3d4e5f60201")?;
    let s22: SnapshotId = id("snap-0a1b2c3d4e5f60202")?;
    let s31: SnapshotId = id("snap-0a1b2c3d4e5f60301")?;
    let s31_copy: SnapshotId = id("snap-0a1b2c3d4e5f60302")?;
    let ts1 = tags::snapshot_tags(&job, SnapshotSource::Instance { instance: &i1 }, expires);
    let ts2 = tags::snapshot_tags(&job, SnapshotSource::Instance { instance: &i2 }, expires);
    let ts31 = tags::snapshot_tags(&job, SnapshotSource::Volume { instance: &i3, volume: &v31 }, expires);

    // The ephemeral network.
    let vpc: VpcId = id("vpc-0a1b2c3d4e5f60401")?;
    let subnet: SubnetId = id("subnet-0a1b2c3d4e5f60402")?;
    let igw: InternetGatewayId = id("igw-0a1b2c3d4e5f60403")?;
    let rtb: RouteTableId = id("rtb-0a1b2c3d4e5f60404")?;
    let sg: SecurityGroupId = id("sg-0a1b2c3d4e5f60405")?;
    let vpce: VpcEndpointId = id("vpce-0a1b2c3d4e5f60406")?;
    let tvpc = tags::resource_tags(&job, Some(Role::VPC), expires);
    let tsubnet = tags::resource_tags(&job, Some(Role::SUBNET), expires);
    let tigw = tags::resource_tags(&job, Some(Role::INTERNET_GATEWAY), expires);
    let tsg = tags::resource_tags(&job, Some(Role::SECURITY_GROUP), expires);
    let tvpce = tags::resource_tags(&job, Some(Role::VPC_ENDPOINT), expires);
    let tscanner = tags::resource_tags(&job, Some(Role::SCANNER), expires);

    // The scanner AMI.
    let ami_pub: ImageId = id("ami-0a1b2c3d4e5f60501")?;
    let ami: ImageId = id("ami-0a1b2c3d4e5f60502")?;
    let version =
        Role::new("1-4-0").ok_or(IdError { kind: "image version", value: "1-4-0".into(), expected: "a-z0-9-" })?;
    let tami = tags::image_tags(version);
    let scanner1: InstanceId = id("i-0a1b2c3d4e5f60601")?;
    let scanner2: InstanceId = id("i-0a1b2c3d4e5f60602")?;

    // Grants.
    let g_db: GrantId = id(&format!("{:0>64}", "a1"))?;
    let g_eu: GrantId = id(&format!("{:0>64}", "a2"))?;
    let g_copy: GrantId = id(&format!("{:0>64}", "a3"))?;
    let grant_name = tags::grant_name(&job);
    // The job's grants: the operations the guard allows in a grant of ours.
    let grant_ops = crate::cloud::guard::OUR_GRANT_OPERATIONS.to_vec();

    let mut steps: Vec<PlanStep> = Vec::new();
    let mut add = |phase: Phase, region: &Region, op: Op| steps.push(PlanStep { phase, region: region.clone(), op });

    // ---------------------------------------------------------------- start
    add(P::Start, &use1, O::GetCallerIdentity(Empty));
    add(P::Start, &use1, O::GetUser(GetUserInput { user_name: None }));
    add(P::Start, &use1, O::DescribeRegions(Empty));

    // ---------------------------------------------------------------- discovering
    add(P::Discovering, &use1, O::DescribeInstances(DescribeInput::ids(vec![i1.clone(), i2.clone()])));
    add(P::Discovering, &use1, O::DescribeVolumes(DescribeInput::ids(vec![v11.clone(), v21.clone(), v22.clone()])));
    add(P::Discovering, &euw1, O::DescribeInstances(DescribeInput::ids(vec![i3.clone()])));
    add(P::Discovering, &euw1, O::DescribeVolumes(DescribeInput::ids(vec![v31.clone()])));

    // ---------------------------------------------------------------- snapshotting
    add(
        P::Snapshotting,
        &use1,
        O::CreateSnapshots(CreateSnapshotsInput {
            instance: tagged(i1.clone(), &t1),
            volumes: vec![tagged(v11.clone(), &tv11)],
            exclude_boot_volume: false,
            description: format!("agentless scan {job} of {i1}"),
            tags: ts1.clone(),
        }),
    );
    add(
        P::Snapshotting,
        &use1,
        O::CreateSnapshots(CreateSnapshotsInput {
            instance: tagged(i2.clone(), &t2),
            volumes: vec![tagged(v21.clone(), &tv21), tagged(v22.clone(), &tv22)],
            exclude_boot_volume: false,
            description: format!("agentless scan {job} of {i2}"),
            tags: ts2.clone(),
        }),
    );
    add(
        P::Snapshotting,
        &euw1,
        O::CreateSnapshot(CreateSnapshotInput {
            volume: tagged(v31.clone(), &tv31),
            description: format!("agentless scan {job} of {i3} {v31}"),
            tags: ts31.clone(),
        }),
    );
    let poll_snapshots = |ids: Vec<SnapshotId>| {
        O::DescribeSnapshots(DescribeSnapshotsInput { owner: account.clone(), describe: DescribeInput::ids(ids) })
    };
    add(P::Snapshotting, &use1, poll_snapshots(vec![s1.clone(), s21.clone(), s22.clone()]));
    add(P::Snapshotting, &euw1, poll_snapshots(vec![s31.clone()]));

    // ---------------------------------------------------------------- sharing
    add(P::Sharing, &use1, O::DescribeKey(DescribeKeyInput { key: k_db.clone() }));
    add(
        P::Sharing,
        &use1,
        O::CreateGrant(CreateGrantInput {
            key: k_db.clone(),
            grantee_principal: caller_arn.clone(),
            operations: grant_ops.clone(),
            ebs_id: EbsId::Volume(v22.clone()),
            name: grant_name.clone(),
        }),
    );
    add(P::Sharing, &euw1, O::DescribeKey(DescribeKeyInput { key: k_eu.clone() }));
    add(
        P::Sharing,
        &euw1,
        O::CreateGrant(CreateGrantInput {
            key: k_eu.clone(),
            grantee_principal: caller_arn.clone(),
            operations: grant_ops.clone(),
            ebs_id: EbsId::Volume(v31.clone()),
            name: grant_name.clone(),
        }),
    );
    add(P::Sharing, &use1, O::DescribeKey(DescribeKeyInput { key: k_copy.clone() }));
    add(
        P::Sharing,
        &use1,
        O::CopySnapshot(CopySnapshotInput {
            source_region: euw1.clone(),
            source: tagged(s31.clone(), &ts31),
            source_kms_key: Some(k_eu.clone()),
            encrypted: true,
            kms_key_id: Some(k_copy.clone()),
            description: format!("agentless scan {job}: copy of {s31} from {euw1}"),
            tags: ts31.clone(),
        }),
    );
    add(
        P::Sharing,
        &use1,
        O::CreateGrant(CreateGrantInput {
            key: k_copy.clone(),
            grantee_principal: caller_arn.clone(),
            operations: grant_ops.clone(),
            ebs_id: EbsId::Snapshot(s31_copy.clone()),
            name: grant_name.clone(),
        }),
    );
    add(P::Sharing, &use1, poll_snapshots(vec![s31_copy.clone()]));

    // ---------------------------------------------------------------- networking
    add(P::Networking, &use1, O::DescribeAvailabilityZones(Empty));
    add(
        P::Networking,
        &use1,
        O::DescribeInstanceTypeOfferings(DescribeInstanceTypeOfferingsInput {
            instance_types: vec![SCANNER_INSTANCE_TYPE.to_owned()],
        }),
    );
    add(P::Networking, &use1, O::CreateVpc(CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: tvpc.clone() }));
    add(P::Networking, &use1, O::DescribeVpcs(DescribeInput::ids(vec![vpc.clone()])));
    add(
        P::Networking,
        &use1,
        O::CreateSubnet(CreateSubnetInput {
            vpc: tagged(vpc.clone(), &tvpc),
            cidr_block: "10.77.0.0/20".into(),
            availability_zone: "us-east-1a".into(),
            tags: tsubnet.clone(),
        }),
    );
    add(
        P::Networking,
        &use1,
        O::ModifySubnetAttribute(ModifySubnetAttributeInput {
            subnet: tagged(subnet.clone(), &tsubnet),
            map_public_ip_on_launch: true,
        }),
    );
    add(P::Networking, &use1, O::CreateInternetGateway(CreateInternetGatewayInput { tags: tigw.clone() }));
    add(
        P::Networking,
        &use1,
        O::AttachInternetGateway(AttachInternetGatewayInput {
            internet_gateway: tagged(igw.clone(), &tigw),
            vpc: tagged(vpc.clone(), &tvpc),
        }),
    );
    add(
        P::Networking,
        &use1,
        O::DescribeRouteTables(DescribeInput::filters(vec![
            Filter::new("vpc-id", [vpc.as_str()]),
            Filter::new("association.main", ["true"]),
        ])),
    );
    add(
        P::Networking,
        &use1,
        O::CreateRoute(CreateRouteInput {
            route_table: Tagged::new(rtb.clone(), Tags::new()),
            vpc: tagged(vpc.clone(), &tvpc),
            destination_cidr: "0.0.0.0/0".into(),
            gateway: igw.clone(),
        }),
    );
    add(
        P::Networking,
        &use1,
        O::CreateSecurityGroup(CreateSecurityGroupInput {
            vpc: tagged(vpc.clone(), &tvpc),
            group_name: tags::resource_name(&job, Some(Role::SECURITY_GROUP)),
            description: "agentless scanners: no ingress".into(),
            tags: tsg.clone(),
        }),
    );
    add(
        P::Networking,
        &use1,
        O::AuthorizeSecurityGroupEgress(AuthorizeSecurityGroupEgressInput {
            group: tagged(sg.clone(), &tsg),
            rules: vec![EgressRule { protocol: "tcp".into(), from_port: 443, to_port: 443, cidr: "0.0.0.0/0".into() }],
        }),
    );
    add(
        P::Networking,
        &use1,
        O::CreateVpcEndpoint(CreateVpcEndpointInput {
            vpc: tagged(vpc.clone(), &tvpc),
            service_name: "com.amazonaws.us-east-1.s3".into(),
            kind: EndpointKind::Gateway { route_tables: vec![Tagged::new(rtb.clone(), Tags::new())] },
            tags: tvpce.clone(),
        }),
    );
    add(P::Networking, &use1, O::DescribeVpcEndpoints(DescribeInput::ids(vec![vpce.clone()])));

    // ---------------------------------------------------------------- launching
    let images = |describe: DescribeInput<ImageId>| {
        O::DescribeImages(DescribeImagesInput { owners: vec!["self".into()], describe })
    };
    add(P::Launching, &use1, images(DescribeInput::filters(vec![Filter::tag(tags::IMAGE_VERSION, ["1-4-0"])])));
    add(
        P::Launching,
        &use1,
        O::CopyImage(CopyImageInput {
            source_region: apse1.clone(),
            // The published image carries our image tags (scanner-ami/image/register.sh).
            source: Tagged::new(ami_pub.clone(), tami.clone()),
            name: tags::image_name(version.as_str()),
            description: "agentless scanner image 1.4.0".into(),
            encrypted: false,
            kms_key_id: None,
            tags: tami.clone(),
        }),
    );
    add(P::Launching, &use1, images(DescribeInput::ids(vec![ami.clone()])));
    let scanner = |n: u32, volumes: Vec<ScannerVolume>| {
        O::RunInstances(RunScannerInput {
            image: tagged(ami.clone(), &tami),
            root: None,
            instance_type: SCANNER_INSTANCE_TYPE.into(),
            subnet: tagged(subnet.clone(), &tsubnet),
            security_groups: vec![tagged(sg.clone(), &tsg)],
            volumes,
            user_data_base64: "eyJmb3JtYXQiOjEsImpvYiI6IjIwMjYwMzE1LTdrMnEiLCJjb2xsZWN0b3IiOiJodHRwczovL2NvbGxlY3Rvci5leGFtcGxlOjg0NDMiLCJkZXZpY2VzIjp7Ii9kZXYvc2RmIjoiaS0wYTFiMmMzZDRlNWY2MDAwMS92b2wtMGExYjJjM2Q0ZTVmNjAwMTEifX0=".into(),
            client_token: format!("{job}-scanner-{n}"),
            instance_tags: tscanner.clone(),
            volume_tags: tscanner.clone(),
            network_interface_tags: tscanner.clone(),
        })
    };
    let vol = |dev: &str, s: &SnapshotId, t: &Tags, key: Option<&KmsKeyId>| ScannerVolume {
        device_name: dev.into(),
        snapshot: tagged(s.clone(), t),
        kms_key: key.cloned(),
    };
    add(P::Launching, &use1, scanner(1, vec![vol("/dev/sdf", &s1, &ts1, None), vol("/dev/sdg", &s21, &ts2, None)]));
    add(
        P::Launching,
        &use1,
        scanner(2, vec![vol("/dev/sdf", &s22, &ts2, Some(&k_db)), vol("/dev/sdg", &s31_copy, &ts31, Some(&k_copy))]),
    );
    add(P::Scanning, &use1, O::DescribeInstances(DescribeInput::ids(vec![scanner1.clone(), scanner2.clone()])));

    // ---------------------------------------------------------------- teardown
    let scanners = vec![tagged(scanner1.clone(), &tscanner), tagged(scanner2.clone(), &tscanner)];
    add(P::TearingDown, &use1, O::TerminateInstances(TerminateInstancesInput { instances: scanners }));
    add(P::TearingDown, &use1, O::DescribeInstances(DescribeInput::ids(vec![scanner1.clone(), scanner2.clone()])));
    teardown_network(&mut add, &use1, (&vpc, &tvpc), (&subnet, &tsubnet), (&igw, &tigw), (&sg, &tsg), (&vpce, &tvpce));
    for (s, t) in [(&s1, &ts1), (&s21, &ts2), (&s22, &ts2), (&s31_copy, &ts31)] {
        add(P::TearingDown, &use1, O::DeleteSnapshot(DeleteSnapshotInput { snapshot: tagged(s.clone(), t) }));
    }
    add(P::TearingDown, &euw1, O::DeleteSnapshot(DeleteSnapshotInput { snapshot: tagged(s31.clone(), &ts31) }));
    for (region, key, grant) in [(&use1, &k_db, &g_db), (&euw1, &k_eu, &g_eu), (&use1, &k_copy, &g_copy)] {
        add(
            P::TearingDown,
            region,
            O::RevokeGrant(RevokeGrantInput {
                key: key.clone(),
                grant_id: grant.clone(),
                grant_name: Some(grant_name.clone()),
            }),
        );
    }

    // ---------------------------------------------------------------- audit
    let ours = |prefix: &str| vec![Filter::tag(tags::NAME, [format!("{prefix}*")])];
    let res_prefix = tags::RESOURCE_NAME_PREFIX;
    let mut instance_filters = ours(res_prefix);
    instance_filters.push(Filter::new("instance-state-name", ["pending", "running", "stopping", "stopped"]));
    for token in [None, Some("eyJ2IjoxLCJjIjoiaW5zdGFuY2VzIn0")] {
        add(P::AuditListing, &use1, O::DescribeInstances(paged(instance_filters.clone(), token)));
    }
    add(P::AuditListing, &use1, O::DescribeVolumes(paged(ours(res_prefix), None)));
    for token in [None, Some("eyJ2IjoxLCJjIjoic25hcHNob3RzIn0")] {
        add(
            P::AuditListing,
            &use1,
            O::DescribeSnapshots(DescribeSnapshotsInput {
                owner: account.clone(),
                describe: paged(ours(tags::SNAPSHOT_NAME_PREFIX), token),
            }),
        );
    }
    add(P::AuditListing, &use1, O::DescribeVpcEndpoints(paged(ours(res_prefix), None)));
    add(P::AuditListing, &use1, O::DescribeSecurityGroups(paged(ours(res_prefix), None)));
    add(P::AuditListing, &use1, O::DescribeSubnets(paged(ours(res_prefix), None)));
    add(P::AuditListing, &use1, O::DescribeInternetGateways(paged(ours(res_prefix), None)));
    add(P::AuditListing, &use1, O::DescribeVpcs(paged(ours(res_prefix), None)));
    add(P::AuditListing, &use1, O::ListGrants(ListGrantsInput { key: k_db.clone(), marker: None }));
    add(
        P::AuditListing,
        &euw1,
        O::DescribeSnapshots(DescribeSnapshotsInput {
            owner: account.clone(),
            describe: paged(ours(tags::SNAPSHOT_NAME_PREFIX), None),
        }),
    );
    // An earlier job's leftovers, found above (tagged agentless:job=<old job>, expired).
    let old = |role| tags::resource_tags(&old_job, Some(role), old_expires);
    let leaked_i: InstanceId = id("i-0a1b2c3d4e5f60701")?;
    let leaked_vpc: VpcId = id("vpc-0a1b2c3d4e5f60701")?;
    let leaked_subnet: SubnetId = id("subnet-0a1b2c3d4e5f60702")?;
    let leaked_igw: InternetGatewayId = id("igw-0a1b2c3d4e5f60703")?;
    let leaked_sg: SecurityGroupId = id("sg-0a1b2c3d4e5f60705")?;
    let leaked_vpce: VpcEndpointId = id("vpce-0a1b2c3d4e5f60706")?;
    let leaked_snap: SnapshotId = id("snap-0a1b2c3d4e5f607a1")?;
    let leaked_snap_eu: SnapshotId = id("snap-0a1b2c3d4e5f607b1")?;
    let leaked_grant: GrantId = id(&format!("{:0>64}", "b1"))?;
    let tleaked_snap = tags::snapshot_tags(&old_job, SnapshotSource::Instance { instance: &i1 }, old_expires);
    let tleaked_snap_eu =
        tags::snapshot_tags(&old_job, SnapshotSource::Volume { instance: &i3, volume: &v31 }, old_expires);
    add(
        P::AuditDeleting,
        &use1,
        O::TerminateInstances(TerminateInstancesInput { instances: vec![Tagged::new(leaked_i, old(Role::SCANNER))] }),
    );
    let (tv, ts, ti, tg, te) = (
        old(Role::VPC),
        old(Role::SUBNET),
        old(Role::INTERNET_GATEWAY),
        old(Role::SECURITY_GROUP),
        old(Role::VPC_ENDPOINT),
    );
    teardown_network_phase(
        &mut add,
        P::AuditDeleting,
        &use1,
        (&leaked_vpc, &tv),
        (&leaked_subnet, &ts),
        (&leaked_igw, &ti),
        (&leaked_sg, &tg),
        (&leaked_vpce, &te),
    );
    add(
        P::AuditDeleting,
        &use1,
        O::DeleteSnapshot(DeleteSnapshotInput { snapshot: Tagged::new(leaked_snap, tleaked_snap) }),
    );
    add(
        P::AuditDeleting,
        &euw1,
        O::DeleteSnapshot(DeleteSnapshotInput { snapshot: Tagged::new(leaked_snap_eu, tleaked_snap_eu) }),
    );
    add(
        P::AuditDeleting,
        &use1,
        O::RevokeGrant(RevokeGrantInput {
            key: k_db,
            grant_id: leaked_grant,
            grant_name: Some(tags::grant_name(&old_job)),
        }),
    );

    Ok(Plan { account, user, job, steps })
}

type Res<'a, Id> = (&'a Id, &'a Tags);

fn t<Id: Clone>((id, tags): Res<'_, Id>) -> Tagged<Id> {
    Tagged::new(id.clone(), tags.clone())
}

/// The network teardown of the scan job, in dependency order.
fn teardown_network(
    add: &mut impl FnMut(Phase, &Region, Op),
    region: &Region,
    vpc: Res<'_, VpcId>,
    subnet: Res<'_, SubnetId>,
    igw: Res<'_, InternetGatewayId>,
    sg: Res<'_, SecurityGroupId>,
    vpce: Res<'_, VpcEndpointId>,
) {
    teardown_network_phase(add, Phase::TearingDown, region, vpc, subnet, igw, sg, vpce);
}

/// VPC endpoint, security group, subnet, detach + delete the gateway, VPC (docs/job.md, "Teardown").
#[allow(clippy::too_many_arguments)]
fn teardown_network_phase(
    add: &mut impl FnMut(Phase, &Region, Op),
    phase: Phase,
    region: &Region,
    vpc: Res<'_, VpcId>,
    subnet: Res<'_, SubnetId>,
    igw: Res<'_, InternetGatewayId>,
    sg: Res<'_, SecurityGroupId>,
    vpce: Res<'_, VpcEndpointId>,
) {
    add(phase, region, Op::DeleteVpcEndpoints(DeleteVpcEndpointsInput { endpoints: vec![t(vpce)] }));
    add(phase, region, Op::DeleteSecurityGroup(DeleteSecurityGroupInput { group: t(sg) }));
    add(phase, region, Op::DeleteSubnet(DeleteSubnetInput { subnet: t(subnet) }));
    add(phase, region, Op::DetachInternetGateway(DetachInternetGatewayInput { internet_gateway: t(igw), vpc: t(vpc) }));
    add(phase, region, Op::DeleteInternetGateway(DeleteInternetGatewayInput { internet_gateway: t(igw) }));
    add(phase, region, Op::DeleteVpc(DeleteVpcInput { vpc: t(vpc) }));
}

/// The pipeline reader's calls for the queue `queue_arn` (`arn:aws:sqs:<region>:<account>:<name>`)
/// and the trail bucket `bucket`: `GetQueueUrl`, `ReceiveMessage`, and `GetObject` of a log file
/// of `plan`'s account in the queue's Region. `None` if `queue_arn` is not a queue ARN.
#[must_use]
pub fn pipeline_steps(plan: &Plan, queue_arn: &str, bucket: &str) -> Option<Vec<PlanStep>> {
    let mut parts = queue_arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("sqs"), Some(region), Some(owner), Some(name)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let region: Region = region.parse().ok()?;
    let owner: AccountId = owner.parse().ok()?;
    let queue = QueueUrl { url: format!("https://sqs.{region}.amazonaws.com/{owner}/{name}") };
    let key = format!(
        "AWSLogs/{a}/CloudTrail/{region}/2026/03/15/{a}_CloudTrail_{region}_20260315T1200Z_0123456789abcdef.json.gz",
        a = plan.account
    );
    let step = |op| PlanStep { phase: Phase::Pipeline, region: region.clone(), op };
    Some(vec![
        step(Op::GetQueueUrl(GetQueueUrlInput { queue_name: name.to_owned(), owner: Some(owner.clone()) })),
        step(Op::ReceiveMessage(ReceiveMessageInput {
            queue,
            max_messages: crate::cloud::ops::SQS_MAX_MESSAGES,
            wait_seconds: crate::cloud::ops::SQS_MAX_WAIT_SECONDS,
            visibility_timeout: None,
        })),
        step(Op::GetObject(GetObjectInput { bucket: bucket.to_owned(), key, max_bytes: 64 << 20 })),
    ])
}

/// The statement a denied pipeline call needs (the reader policy's, filled in), as JSON.
#[must_use]
pub fn pipeline_statement(op: &Op, queue_arn: &str, bucket: &str) -> Option<String> {
    match op {
        Op::GetQueueUrl(_) | Op::ReceiveMessage(_) => Some(format!(
            "{{\"Effect\": \"Allow\", \"Action\": [\"sqs:GetQueueUrl\", \"sqs:ReceiveMessage\"], \"Resource\": \"{queue_arn}\"}}"
        )),
        Op::GetObject(_) => Some(format!(
            "{{\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::{bucket}/AWSLogs/*\"}}"
        )),
        _ => None,
    }
}

/// The outcome of one planned call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Every request allowed, no guard rule broken.
    Allow,
    /// Allowed but for KMS requests EC2 makes with our credentials that the identity policies do
    /// not allow: the key policy decides ([`crate::cloud::guard::Evaluated::key_policy_decides`]).
    /// Reported, not fatal unless `--strict`.
    KeyPolicy,
    /// Refused.
    Deny,
}

impl Verdict {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "ALLOW",
            Verdict::KeyPolicy => "KEY-POLICY",
            Verdict::Deny => "DENY",
        }
    }
}

/// One planned call with the guard's evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCall {
    pub step: PlanStep,
    pub entry: TraceEntry,
    pub verdict: Verdict,
}

impl CheckedCall {
    /// The request the summary line shows: the first refused one (the first the key policy
    /// decides for [`Verdict::KeyPolicy`]), else the call's own request.
    fn shown(&self) -> Option<&crate::cloud::guard::Evaluated> {
        let r = &self.entry.requests;
        match self.verdict {
            Verdict::Allow => r.iter().find(|e| e.origin == Origin::Caller).or_else(|| r.first()),
            Verdict::KeyPolicy => r.iter().find(|e| e.key_policy_decides()),
            Verdict::Deny => r.iter().find(|e| !e.allowed()),
        }
    }

    /// `VERDICT op action resource (statement or reason)`, plus the number of requests.
    #[must_use]
    pub fn line(&self) -> String {
        let op = self.entry.op;
        let v = self.verdict.as_str();
        let n = self.entry.requests.len();
        let more = if n > 1 { format!(" [{n} requests]") } else { String::new() };
        if let (Verdict::Deny, Some(violation)) = (self.verdict, self.entry.violations.first()) {
            return format!("{v} {op} ({violation}){more}");
        }
        match self.shown() {
            None => format!("{v} {op} - - (no authorization: AWS requires no permission for this call)"),
            Some(e) => {
                let why = match (&e.decision, self.verdict) {
                    (Decision::Allow { statement }, Verdict::Allow) => statement.to_string(),
                    (_, Verdict::KeyPolicy) => format!(
                        "{}; the key policy decides: allowed if it names this principal as a key user, denied if it \
                         only lets IAM policies decide",
                        e.reason()
                    ),
                    _ => e.reason(),
                };
                format!("{v} {op} {} {} ({why}){more}", e.request.action(), e.request.resource())
            }
        }
    }
}

/// The result of checking a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub calls: Vec<CheckedCall>,
}

impl CheckReport {
    /// Calls refused for reasons other than known gaps.
    pub fn denied(&self) -> impl Iterator<Item = &CheckedCall> {
        self.calls.iter().filter(|c| c.verdict == Verdict::Deny)
    }

    /// Calls whose KMS requests on our behalf the key policy decides.
    pub fn key_policy(&self) -> impl Iterator<Item = &CheckedCall> {
        self.calls.iter().filter(|c| c.verdict == Verdict::KeyPolicy)
    }

    /// Every request allowed by the policies, as (action, resource) pairs: what a reduced policy
    /// may no longer allow.
    #[must_use]
    pub fn allowed_requests(&self) -> Vec<(String, String)> {
        self.calls
            .iter()
            .flat_map(|c| c.entry.requests.iter())
            .filter(|e| e.decision.is_allowed() && e.violation.is_none())
            .map(|e| (e.request.action().to_owned(), e.request.resource().to_owned()))
            .collect()
    }

    /// The whole report: a `#` header per phase and Region, one line per call (with `verbose`,
    /// every request under it), and a summary.
    #[must_use]
    pub fn render(&self, verbose: bool) -> String {
        let mut out = String::new();
        let mut last: Option<(Phase, &Region)> = None;
        for c in &self.calls {
            let here = (c.step.phase, &c.step.region);
            if last != Some(here) {
                let _ = writeln!(out, "# {} ({})", c.step.phase.as_str(), c.step.region);
                last = Some(here);
            }
            let _ = writeln!(out, "{}", c.line());
            if verbose {
                for e in &c.entry.requests {
                    let v = match (e.allowed(), e.key_policy_decides()) {
                        (_, true) => "key",
                        (true, false) => "allow",
                        (false, false) => "deny",
                    };
                    let _ = writeln!(
                        out,
                        "    {v:<5} {:<13} {} {} ({})",
                        e.origin.as_str(),
                        e.request.action(),
                        e.request.resource(),
                        e.reason()
                    );
                }
            }
        }
        let _ = writeln!(out, "{self}");
        out
    }
}

impl fmt::Display for CheckReport {
    /// `N calls, M requests: A allowed, K up to the key policy, D denied`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests: usize = self.calls.iter().map(|c| c.entry.requests.len()).sum();
        let count = |v| self.calls.iter().filter(|c| c.verdict == v).count();
        write!(
            f,
            "{} calls, {requests} requests: {} allowed, {} up to the key policy, {} denied",
            self.calls.len(),
            count(Verdict::Allow),
            count(Verdict::KeyPolicy),
            count(Verdict::Deny)
        )
    }
}

/// Evaluate every call of `plan` with `policies` through the guard's logic.
#[must_use]
pub fn check(policies: Vec<Policy>, plan: &Plan, rules: GuardRules) -> CheckReport {
    let guard = GuardPolicy::new(policies, plan.scope(), rules);
    let calls = plan
        .steps
        .iter()
        .map(|step| {
            let entry = guard.evaluate(&step.region, step.op.call());
            let verdict = verdict(&entry);
            CheckedCall { step: step.clone(), entry, verdict }
        })
        .collect();
    CheckReport { calls }
}

/// [`Verdict`] of one evaluated call.
#[must_use]
pub fn verdict(entry: &TraceEntry) -> Verdict {
    if !entry.allowed {
        Verdict::Deny
    } else if entry.requests.iter().any(crate::cloud::guard::Evaluated::key_policy_decides) {
        Verdict::KeyPolicy
    } else {
        Verdict::Allow
    }
}
