//! The request and response types of every operation of the cloud seam, in domain terms (newtype
//! ids, [`Tags`], enums), with no SDK type in sight.
//!
//! Conventions:
//! - A create takes the tags of what it creates ([`Tags`], applied by `TagSpecifications` in the
//!   same call; docs/tags.md).
//! - A call on an existing resource takes it as [`Tagged`]: the id with the tags the caller knows
//!   (from the ledger or a Describe). The policy guard authorizes with those tags, exactly as AWS
//!   authorizes with the resource's real tags (`ec2:ResourceTag/<key>`), and refuses to change or
//!   delete anything that is not ours.
//! - Describes take ids and/or filters and a pagination token; their results carry tags.

use std::fmt;

use super::ids::{
    AccountId, GrantId, ImageId, InstanceId, InternetGatewayId, KmsKeyId, NetworkInterfaceId, Region, RouteTableId,
    SecurityGroupId, SnapshotId, SubnetId, VolumeId, VpcEndpointId, VpcId,
};
use super::tags::Tags;

/// An existing resource with the tags the caller knows it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged<Id> {
    pub id: Id,
    pub tags: Tags,
}

impl<Id> Tagged<Id> {
    #[must_use]
    pub fn new(id: Id, tags: Tags) -> Tagged<Id> {
        Tagged { id, tags }
    }
}

/// An EC2 Describe filter (`Name`, `Values`), e.g. `tag:Name` = `alibaba-cloud-security-scan*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

impl Filter {
    #[must_use]
    pub fn new(name: impl Into<String>, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
        Filter { name: name.into(), values: values.into_iter().map(Into::into).collect() }
    }

    /// `tag:<key>` = values (EC2 filters take `*` and `?` wildcards in values).
    #[must_use]
    pub fn tag(key: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
        Filter::new(format!("tag:{key}"), values)
    }
}

/// A Describe/List request: ids and/or filters, and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeInput<Id> {
    pub ids: Vec<Id>,
    pub filters: Vec<Filter>,
    /// The token of the previous page; `None` for the first page.
    pub next_token: Option<String>,
    /// Page size (EC2 allows 5 to 1000 where paginated); `None` for the API's default.
    pub max_results: Option<u32>,
}

impl<Id> Default for DescribeInput<Id> {
    fn default() -> Self {
        DescribeInput { ids: Vec::new(), filters: Vec::new(), next_token: None, max_results: None }
    }
}

impl<Id> DescribeInput<Id> {
    #[must_use]
    pub fn ids(ids: Vec<Id>) -> DescribeInput<Id> {
        DescribeInput { ids, ..DescribeInput::default() }
    }

    #[must_use]
    pub fn filters(filters: Vec<Filter>) -> DescribeInput<Id> {
        DescribeInput { filters, ..DescribeInput::default() }
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `next_token` for the next page; `None` on the last page.
    pub next_token: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page { items: Vec::new(), next_token: None }
    }
}

/// Nothing to ask or nothing returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Empty;

// ------------------------------------------------------------------------------------------ start

pub type DescribeRegionsInput = Empty;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    pub region: Region,
    /// `opt-in-not-required`, `opted-in` or `not-opted-in`.
    pub opt_in_status: String,
}

pub type DescribeAvailabilityZonesInput = Empty;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityZoneInfo {
    /// `us-east-1a`.
    pub name: String,
    /// `use1-az4`: the same physical zone in every account.
    pub zone_id: String,
    /// `available`, `impaired`...
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeInstanceTypeOfferingsInput {
    /// Instance types to look for, e.g. `m5.xlarge`; offered per Availability Zone.
    pub instance_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeOffering {
    pub instance_type: String,
    pub availability_zone: String,
}

/// `sts:GetCallerIdentity` (no input).
pub type GetCallerIdentityInput = Empty;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: AccountId,
    /// `arn:aws:iam::111122223333:user/name` or an assumed-role session ARN.
    pub arn: String,
    pub user_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetUserInput {
    /// `None`: the calling IAM user (AWS refuses that for role credentials).
    pub user_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub user_name: String,
    pub arn: String,
    pub user_id: String,
}

// ------------------------------------------------------------------------------------ discovering

/// EC2 instance states (EC2 API Reference, `InstanceState`). `Unknown` keeps a name AWS may add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedVolume {
    /// `/dev/xvda`, `/dev/sdf`...
    pub device_name: String,
    pub volume_id: VolumeId,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: InstanceId,
    pub state: InstanceState,
    pub instance_type: String,
    pub availability_zone: String,
    pub root_device_name: Option<String>,
    pub volumes: Vec<AttachedVolume>,
    pub network_interfaces: Vec<NetworkInterfaceId>,
    pub tags: Tags,
}

/// EBS volume states (EC2 API Reference, `VolumeState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeState {
    Creating,
    Available,
    InUse,
    Deleting,
    Deleted,
    Error,
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub id: VolumeId,
    pub state: VolumeState,
    pub size_gib: u32,
    /// `gp3`, `gp2`, `io2`, `st1`...
    pub volume_type: String,
    pub availability_zone: String,
    pub encrypted: bool,
    /// The key ARN for an encrypted volume.
    pub kms_key_id: Option<KmsKeyId>,
    pub attachments: Vec<(InstanceId, String)>,
    pub tags: Tags,
}

// ----------------------------------------------------------------------------------- snapshotting

/// `CreateSnapshots`: crash-consistent snapshots of every volume of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSnapshotsInput {
    /// The target instance (its tags as described).
    pub instance: Tagged<InstanceId>,
    /// The volumes that will be snapshotted (as described), for the authorization of each.
    pub volumes: Vec<Tagged<VolumeId>>,
    pub exclude_boot_volume: bool,
    pub description: String,
    /// Applied to every snapshot created (one `TagSpecifications` for all of them).
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStarted {
    pub snapshot_id: SnapshotId,
    pub volume_id: VolumeId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSnapshotsOutput {
    pub snapshots: Vec<SnapshotStarted>,
}

/// `CreateSnapshot`: one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSnapshotInput {
    pub volume: Tagged<VolumeId>,
    pub description: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSnapshotOutput {
    pub snapshot_id: SnapshotId,
}

/// `DescribeSnapshots`, always restricted to snapshots owned by `owner` (the `owner-id` filter:
/// moto ignores `OwnerIds=self`, docs/references.md), batched by id where ids are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeSnapshotsInput {
    pub owner: AccountId,
    pub describe: DescribeInput<SnapshotId>,
}

/// EBS snapshot states (EC2 API Reference, `SnapshotState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotState {
    Pending,
    Completed,
    Error,
    Recoverable,
    Recovering,
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: SnapshotId,
    pub volume_id: Option<VolumeId>,
    pub state: SnapshotState,
    /// `"42%"` as AWS reports it.
    pub progress: String,
    pub encrypted: bool,
    pub kms_key_id: Option<KmsKeyId>,
    pub owner: AccountId,
    pub tags: Tags,
}

// ---------------------------------------------------------------------------------------- sharing

/// `CopySnapshot`, sent to the destination Region (the call's Region) with `SourceRegion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySnapshotInput {
    pub source_region: Region,
    pub source: Tagged<SnapshotId>,
    /// The source snapshot's key, if it is encrypted under a customer managed key (for the KMS
    /// calls EBS makes on our behalf).
    pub source_kms_key: Option<KmsKeyId>,
    /// Encrypt the copy (always true for an encrypted source).
    pub encrypted: bool,
    /// The destination key; `None` for the Region's default EBS key.
    pub kms_key_id: Option<KmsKeyId>,
    pub description: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySnapshotOutput {
    pub snapshot_id: SnapshotId,
}

/// `ModifySnapshotAttribute` on `createVolumePermission`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifySnapshotAttributeInput {
    pub snapshot: Tagged<SnapshotId>,
    pub change: PermissionChange,
    pub account: AccountId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionChange {
    Add,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteSnapshotInput {
    pub snapshot: Tagged<SnapshotId>,
}

// ------------------------------------------------------------------------------------- networking

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateVpcInput {
    /// e.g. `10.77.0.0/16`.
    pub cidr_block: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateVpcOutput {
    pub vpc_id: VpcId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSubnetInput {
    pub vpc: Tagged<VpcId>,
    pub cidr_block: String,
    pub availability_zone: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSubnetOutput {
    pub subnet_id: SubnetId,
}

/// `ModifySubnetAttribute` `MapPublicIpOnLaunch` (the only attribute the job sets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifySubnetAttributeInput {
    pub subnet: Tagged<SubnetId>,
    pub map_public_ip_on_launch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateInternetGatewayInput {
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateInternetGatewayOutput {
    pub internet_gateway_id: InternetGatewayId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachInternetGatewayInput {
    pub internet_gateway: Tagged<InternetGatewayId>,
    pub vpc: Tagged<VpcId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachInternetGatewayInput {
    pub internet_gateway: Tagged<InternetGatewayId>,
    pub vpc: Tagged<VpcId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTableInfo {
    pub id: RouteTableId,
    pub vpc_id: VpcId,
    /// The VPC's main route table (created with the VPC, so never tagged in a create call).
    pub main: bool,
    pub tags: Tags,
}

/// `CreateRoute` to an internet gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRouteInput {
    pub route_table: Tagged<RouteTableId>,
    /// The VPC the route table belongs to: the guard checks that it is ours (the main route table
    /// itself carries no tags).
    pub vpc: Tagged<VpcId>,
    /// e.g. `0.0.0.0/0`.
    pub destination_cidr: String,
    pub gateway: InternetGatewayId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSecurityGroupInput {
    pub vpc: Tagged<VpcId>,
    /// `GroupName` (must not start with `sg-`); we use the resource name.
    pub group_name: String,
    pub description: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSecurityGroupOutput {
    pub group_id: SecurityGroupId,
}

/// One egress rule: protocol (`tcp`, `udp`, `-1`), port range and IPv4 CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    pub protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub cidr: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeSecurityGroupEgressInput {
    pub group: Tagged<SecurityGroupId>,
    pub rules: Vec<EgressRule>,
}

/// The kind of VPC endpoint and what it attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointKind {
    /// An interface endpoint: ENIs in these subnets, behind these security groups.
    Interface { subnets: Vec<Tagged<SubnetId>>, security_groups: Vec<Tagged<SecurityGroupId>> },
    /// A gateway endpoint (S3, DynamoDB): routes in these route tables.
    Gateway { route_tables: Vec<Tagged<RouteTableId>> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateVpcEndpointInput {
    pub vpc: Tagged<VpcId>,
    /// e.g. `com.amazonaws.us-east-1.s3`.
    pub service_name: String,
    pub kind: EndpointKind,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateVpcEndpointOutput {
    pub vpc_endpoint_id: VpcEndpointId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcInfo {
    pub id: VpcId,
    /// `pending` or `available`.
    pub state: String,
    pub cidr_block: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetInfo {
    pub id: SubnetId,
    pub vpc_id: VpcId,
    pub availability_zone: String,
    pub state: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroupInfo {
    pub id: SecurityGroupId,
    pub vpc_id: Option<VpcId>,
    pub group_name: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternetGatewayInfo {
    pub id: InternetGatewayId,
    pub attached_vpcs: Vec<VpcId>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcEndpointInfo {
    pub id: VpcEndpointId,
    pub vpc_id: VpcId,
    /// `pendingAcceptance`, `pending`, `available`, `deleting`, `deleted`...
    pub state: String,
    pub service_name: String,
    pub tags: Tags,
}

// -------------------------------------------------------------------------------------- launching

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeImagesInput {
    /// `self`, an account id or `amazon`.
    pub owners: Vec<String>,
    pub describe: DescribeInput<ImageId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: ImageId,
    pub name: String,
    /// `pending`, `available`, `failed`...
    pub state: String,
    pub owner: AccountId,
    pub root_device_name: Option<String>,
    /// The size of the root device's EBS mapping (`BlockDeviceMappings[].Ebs.VolumeSize`).
    pub root_size_gib: Option<i32>,
    pub tags: Tags,
}

/// `CopyImage` into the call's Region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyImageInput {
    pub source_region: Region,
    pub source: Tagged<ImageId>,
    pub name: String,
    pub description: String,
    pub encrypted: bool,
    pub kms_key_id: Option<KmsKeyId>,
    /// Applied to the new image and its new snapshots.
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyImageOutput {
    pub image_id: ImageId,
}

/// One of our snapshots to attach to a scanner as an EBS volume (gp3, `DeleteOnTermination`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerVolume {
    /// `/dev/sdf` ... as the block device mapping names it.
    pub device_name: String,
    pub snapshot: Tagged<SnapshotId>,
    /// The snapshot's key when it is encrypted under a customer managed key: EC2 then calls KMS
    /// on our behalf while creating the volume (policies/README.md, "What EC2 asks of KMS for our
    /// volumes").
    pub kms_key: Option<KmsKeyId>,
}

/// The scanner image's root device as `RunInstances` maps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerRoot {
    /// `DescribeImages` RootDeviceName.
    pub device_name: String,
    /// The AMI's own root size, restated: AWS accepts a root mapping with `DeleteOnTermination`
    /// alone, moto requires a size or a snapshot id in every EBS mapping, and the AMI's size is
    /// valid for both (EC2 API Reference, `EbsBlockDevice.VolumeSize`: at least the snapshot's).
    /// `None`: not sent.
    pub size_gib: Option<i32>,
}

/// `RunInstances` of one scanner, with fixed settings the backend must apply: IMDSv2 required
/// (`HttpTokens=required`), `InstanceInitiatedShutdownBehavior=terminate`, every data volume gp3
/// with `DeleteOnTermination`, no key pair, no instance profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunScannerInput {
    pub image: Tagged<ImageId>,
    /// The image's root device: mapped with `DeleteOnTermination=true` whatever the AMI says (the
    /// policy has no `ec2:DeleteVolume`, so a root volume kept on termination could never be
    /// removed by us). `None`: the AMI's mapping.
    pub root: Option<ScannerRoot>,
    pub instance_type: String,
    pub subnet: Tagged<SubnetId>,
    pub security_groups: Vec<Tagged<SecurityGroupId>>,
    pub volumes: Vec<ScannerVolume>,
    /// The job manifest, base64 (RunInstances `UserData`).
    pub user_data_base64: String,
    /// Idempotency token, kept in the ledger's intent row before the call.
    pub client_token: String,
    pub instance_tags: Tags,
    pub volume_tags: Tags,
    pub network_interface_tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunScannerOutput {
    pub instance_id: InstanceId,
    pub network_interfaces: Vec<NetworkInterfaceId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminateInstancesInput {
    pub instances: Vec<Tagged<InstanceId>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopInstancesInput {
    pub instances: Vec<Tagged<InstanceId>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStateChange {
    pub instance_id: InstanceId,
    pub previous: InstanceState,
    pub current: InstanceState,
}

// --------------------------------------------------------------------------------------- teardown

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteVpcEndpointsInput {
    pub endpoints: Vec<Tagged<VpcEndpointId>>,
}

/// Endpoints AWS could not delete (`Unsuccessful` in the response), with the error code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteVpcEndpointsOutput {
    pub unsuccessful: Vec<(VpcEndpointId, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteSecurityGroupInput {
    pub group: Tagged<SecurityGroupId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteSubnetInput {
    pub subnet: Tagged<SubnetId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteInternetGatewayInput {
    pub internet_gateway: Tagged<InternetGatewayId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteVpcInput {
    pub vpc: Tagged<VpcId>,
}

// -------------------------------------------------------------------------------------------- KMS

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeKeyInput {
    pub key: KmsKeyId,
}

/// Who manages a KMS key (`KeyManager`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyManager {
    /// `AWS`: e.g. `aws/ebs`; its key policy already lets EBS use it for the account.
    Aws,
    /// `CUSTOMER`: needs our grants.
    Customer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub arn: String,
    pub key_id: KmsKeyId,
    pub manager: KeyManager,
    /// `Enabled`, `Disabled`, `PendingDeletion`...
    pub state: String,
}

/// KMS grant operations the job grants (a subset of KMS's `GrantOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantOperation {
    Decrypt,
    DescribeKey,
    CreateGrant,
    GenerateDataKeyWithoutPlaintext,
    ReEncryptFrom,
    ReEncryptTo,
}

impl GrantOperation {
    /// The name as KMS spells it (and as `kms:GrantOperations` carries it).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GrantOperation::Decrypt => "Decrypt",
            GrantOperation::DescribeKey => "DescribeKey",
            GrantOperation::CreateGrant => "CreateGrant",
            GrantOperation::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            GrantOperation::ReEncryptFrom => "ReEncryptFrom",
            GrantOperation::ReEncryptTo => "ReEncryptTo",
        }
    }
}

impl fmt::Display for GrantOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The EBS id an `aws:ebs:id` encryption-context constraint names. For the snapshot of a
/// `CreateSnapshot(s)` it is the *volume* id (docs/references.md, "Other AWS facts").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EbsId {
    Volume(VolumeId),
    Snapshot(SnapshotId),
}

impl EbsId {
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            EbsId::Volume(v) => v.as_str(),
            EbsId::Snapshot(s) => s.as_str(),
        }
    }
}

/// `CreateGrant` with an `EncryptionContextSubset` constraint `aws:ebs:id = <ebs id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateGrantInput {
    pub key: KmsKeyId,
    /// The grantee principal ARN.
    pub grantee_principal: String,
    pub operations: Vec<GrantOperation>,
    pub ebs_id: EbsId,
    /// `alibaba-cloud-security-scan-<job>`.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateGrantOutput {
    pub grant_id: GrantId,
    pub grant_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGrantsInput {
    pub key: KmsKeyId,
    /// `Marker` of the previous page.
    pub marker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantInfo {
    pub grant_id: GrantId,
    pub name: Option<String>,
    pub grantee_principal: String,
    pub operations: Vec<String>,
    /// The `aws:ebs:id` of the grant's encryption-context constraint (`EncryptionContextSubset`
    /// or `EncryptionContextEquals`; KMS API Reference, `GrantConstraints`), if it has one: the
    /// volume (or snapshot) the grant is for.
    pub ebs_id: Option<String>,
}

/// `RevokeGrant`, with the grant's name as the caller knows it (the guard revokes only ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeGrantInput {
    pub key: KmsKeyId,
    pub grant_id: GrantId,
    pub grant_name: Option<String>,
}

// --------------------------------------------------------------- the CloudTrail → S3 → SQS pipeline

/// SQS `ReceiveMessage` takes at most 10 messages per call (`MaxNumberOfMessages`, 1 to 10; SQS
/// API Reference).
pub const SQS_MAX_MESSAGES: u8 = 10;
/// SQS long polling waits at most 20 seconds (`WaitTimeSeconds`, 0 to 20; SQS API Reference).
pub const SQS_MAX_WAIT_SECONDS: u8 = 20;

/// `sqs:GetQueueUrl` of a queue by name in the call's Region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetQueueUrlInput {
    pub queue_name: String,
    /// The account that owns the queue (`QueueOwnerAWSAccountId`); `None`: the caller's.
    pub owner: Option<AccountId>,
}

/// A queue's URL, `https://sqs.<region>.amazonaws.com/<account>/<name>` (or an endpoint's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl {
    pub url: String,
}

impl QueueUrl {
    /// The owner account and queue name: the URL's last two path segments (the form SQS gives
    /// every queue URL; a custom endpoint keeps it).
    #[must_use]
    pub fn account_and_name(&self) -> Option<(&str, &str)> {
        let path = self.url.split_once("://").map_or(self.url.as_str(), |(_, rest)| rest);
        let mut parts = path.trim_end_matches('/').rsplit('/');
        let name = parts.next().filter(|n| !n.is_empty())?;
        let account = parts.next().filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))?;
        Some((account, name))
    }
}

/// `sqs:ReceiveMessage`: long-poll one batch. Without `sqs:DeleteMessage` (the onboarding grants
/// none), every message comes back after its visibility timeout until the queue's retention
/// period drops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveMessageInput {
    pub queue: QueueUrl,
    /// 1 to [`SQS_MAX_MESSAGES`].
    pub max_messages: u8,
    /// 0 to [`SQS_MAX_WAIT_SECONDS`].
    pub wait_seconds: u8,
    /// Seconds a received message stays hidden; `None`: the queue's setting.
    pub visibility_timeout: Option<u32>,
}

/// One message of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    /// `ApproximateReceiveCount` (1 on the first delivery), when SQS says it.
    pub receive_count: Option<u32>,
    /// `SentTimestamp` (Unix milliseconds), when SQS says it.
    pub sent_at_ms: Option<u64>,
}

/// `s3:GetObject` of one object, refused unread when it is larger than `max_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetObjectInput {
    pub bucket: String,
    pub key: String,
    /// The size cap: an object whose `Content-Length` exceeds it is refused before its body is
    /// read ([`ErrorKind::Other`](crate::cloud::ErrorKind::Other), `ObjectTooLarge`).
    pub max_bytes: u64,
}

impl GetObjectInput {
    /// The refusal of this object at `size` bytes, over [`GetObjectInput::max_bytes`]: code
    /// [`OBJECT_TOO_LARGE`], the object's `s3://` address as its id.
    #[must_use]
    pub fn too_large(&self, operation: &'static str, region: Region, size: u64) -> crate::cloud::CloudError {
        let at = format!("s3://{}/{}", self.bucket, self.key);
        crate::cloud::CloudError::aws(
            operation,
            Some(region),
            OBJECT_TOO_LARGE,
            format!("{at} is {size} bytes, over the cap of {} bytes: not read", self.max_bytes),
            None,
            None,
            vec![at],
        )
    }
}

/// An object's bytes and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectBody {
    pub bytes: Vec<u8>,
    /// The `ETag` S3 returned (quotes removed).
    pub etag: Option<String>,
}

/// The error code an over-cap object is refused with (ours; S3 has none).
pub const OBJECT_TOO_LARGE: &str = "ObjectTooLarge";
