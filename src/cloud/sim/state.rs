//! The simulated world's state: accounts, each with its Regions, each with the resources the job
//! touches (instances, volumes, snapshots, VPCs, subnets, route tables, internet gateways,
//! security groups, VPC endpoints, network interfaces, images, KMS keys and their grants), tags on
//! all of them. Everything here is plain data, serialisable with serde, so the data directory can
//! hold it as JSON ([`super::store`]) and a second process sees the same account.
//!
//! Times are milliseconds on the simulation's timeline ([`super::clock`]); a resource whose state
//! changes with time stores when it changes, and [`super::lifecycle`] applies due changes before
//! every call.
//!
//! Ids are drawn from a seeded PRNG ([`Prng`], splitmix64) in the shapes AWS uses (EC2 User Guide,
//! "Resource IDs": a prefix and 17 lower-case hex digits; KMS key ids are UUIDs; grant ids 64 hex
//! digits as KMS returns them), so a fleet built from the same seed gets the same ids.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::faults::InstanceFault;
pub use super::prng::Prng;
use crate::cloud::ids::{
    AccountId, GrantId, ImageId, InstanceId, InternetGatewayId, KmsKeyId, NetworkInterfaceId, Region, RouteTableId,
    SecurityGroupId, SnapshotId, SubnetId, VolumeId, VpcEndpointId, VpcId,
};
use crate::cloud::ops::GrantOperation;
use crate::cloud::tags::Tags;

/// The whole simulated world: every account, the id generator and where the timeline was at the
/// last save.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Format version of this file.
    pub version: u32,
    pub prng: Prng,
    /// The timeline (ms) at the last save: a reopened world never goes back in time.
    pub clock_ms: u64,
    pub accounts: BTreeMap<AccountId, Account>,
    pub settings: super::limits::Settings,
}

/// The current [`World::version`].
pub const WORLD_VERSION: u32 = 1;

/// One AWS account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The IAM user the sim's principal is (`GetCallerIdentity`, `GetUser`).
    pub user: String,
    pub regions: BTreeMap<Region, RegionState>,
    /// The CloudTrail → S3 → SQS pipeline, if the account has one ([`super::trail`]). Absent in
    /// files of builds before it, which load unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<super::trail::Pipeline>,
}

/// One Region of an account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionState {
    /// Availability Zones: (name, zone id), e.g. (`us-east-1a`, `use1-az1`).
    pub zones: Vec<(String, String)>,
    pub instances: BTreeMap<InstanceId, Instance>,
    pub volumes: BTreeMap<VolumeId, Volume>,
    pub snapshots: BTreeMap<SnapshotId, Snapshot>,
    pub vpcs: BTreeMap<VpcId, Vpc>,
    pub subnets: BTreeMap<SubnetId, Subnet>,
    pub route_tables: BTreeMap<RouteTableId, RouteTable>,
    pub internet_gateways: BTreeMap<InternetGatewayId, InternetGateway>,
    pub security_groups: BTreeMap<SecurityGroupId, SecurityGroup>,
    pub vpc_endpoints: BTreeMap<VpcEndpointId, VpcEndpoint>,
    pub network_interfaces: BTreeMap<NetworkInterfaceId, NetworkInterface>,
    pub images: BTreeMap<ImageId, Image>,
    /// KMS keys by key id (the UUID).
    pub keys: BTreeMap<String, Key>,
    /// What Describe does not see yet, or still sees ([`super::consistency`]).
    #[serde(default)]
    pub recent: super::consistency::Recent,
    /// Due times, pending snapshots, client tokens, running scanners: derived from the rest,
    /// never saved, rebuilt when `None` ([`super::lifecycle`], "The index").
    #[serde(skip)]
    pub index: Option<Box<super::lifecycle::Index>>,
}

/// Where an instance is in its life (EC2 User Guide, "Instance state changes"). The timed states
/// carry when they end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Life {
    Pending {
        until_ms: u64,
    },
    Running,
    Stopping {
        until_ms: u64,
    },
    Stopped,
    ShuttingDown {
        until_ms: u64,
    },
    /// Terminated instances stay visible to Describe for a while (about an hour, EC2 User Guide
    /// "Terminate instances"), then disappear.
    Terminated {
        at_ms: u64,
    },
}

/// What an instance does when its OS shuts it down (`InstanceInitiatedShutdownBehavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownBehavior {
    Stop,
    Terminate,
}

/// One EBS volume attached to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub device_name: String,
    pub volume_id: VolumeId,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub instance_type: String,
    pub availability_zone: String,
    pub subnet: Option<SubnetId>,
    pub vpc: Option<VpcId>,
    pub security_groups: Vec<SecurityGroupId>,
    pub image: Option<ImageId>,
    pub root_device_name: Option<String>,
    pub attachments: Vec<Attachment>,
    pub network_interfaces: Vec<NetworkInterfaceId>,
    pub life: Life,
    pub launched_ms: u64,
    pub public_ip: bool,
    pub user_data_base64: Option<String>,
    /// IMDSv2 required (`HttpTokens=required`).
    pub http_tokens_required: bool,
    pub shutdown_behavior: ShutdownBehavior,
    pub client_token: Option<String>,
    pub tags: Tags,
    /// An injected fault ([`super::faults`]): `never-boots`, or `never-reports`, which the
    /// hypervisor reads (it must not run the agent for this instance).
    #[serde(default)]
    pub fault: Option<InstanceFault>,
    /// Why the instance changed state, as `StateReason` (code, message): set when a launch fails.
    #[serde(default)]
    pub state_reason: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub size_gib: u32,
    /// Used space: what a snapshot of it has to copy (the latency's input).
    pub used_gib: u32,
    pub volume_type: String,
    pub availability_zone: String,
    pub encrypted: bool,
    pub kms_key_id: Option<KmsKeyId>,
    pub snapshot_id: Option<SnapshotId>,
    /// The instance and device it is attached to.
    pub attached: Option<(InstanceId, String)>,
    /// The disk image file that holds its bytes (`None`: synthetic).
    pub backing: Option<PathBuf>,
    pub tags: Tags,
}

/// EBS snapshot states the sim produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapState {
    Pending,
    Completed,
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub volume_id: Option<VolumeId>,
    pub volume_size_gib: u32,
    pub used_gib: u32,
    pub state: SnapState,
    pub started_ms: u64,
    /// When `pending` becomes `completed`.
    pub complete_ms: u64,
    pub encrypted: bool,
    pub kms_key_id: Option<KmsKeyId>,
    pub owner: AccountId,
    pub description: String,
    /// A copy (`CopySnapshot`): counts against the concurrent copies of its Region while pending.
    pub copy: bool,
    /// Accounts with `createVolumePermission`.
    pub shared_with: BTreeSet<AccountId>,
    pub backing: Option<PathBuf>,
    pub tags: Tags,
    /// An injected `snapshot-error` ([`super::faults`]): at `complete_ms` it goes `error`, not
    /// `completed`.
    #[serde(default)]
    pub fails: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub cidr_block: String,
    pub is_default: bool,
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub vpc: VpcId,
    pub cidr_block: String,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    pub vpc: VpcId,
    pub main: bool,
    /// (destination CIDR, target: `local` or a gateway id).
    pub routes: Vec<(String, String)>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetGateway {
    pub attached: Option<VpcId>,
    pub tags: Tags,
}

/// One egress rule: protocol, port range, IPv4 CIDR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub cidr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroup {
    pub vpc: VpcId,
    pub group_name: String,
    pub description: String,
    /// The VPC's `default` group: created and deleted with the VPC, never by itself.
    pub is_default: bool,
    pub egress: Vec<Rule>,
    pub tags: Tags,
}

/// Interface or gateway endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointType {
    Interface,
    Gateway,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcEndpoint {
    pub vpc: VpcId,
    pub service_name: String,
    pub endpoint_type: EndpointType,
    pub subnets: Vec<SubnetId>,
    pub security_groups: Vec<SecurityGroupId>,
    pub route_tables: Vec<RouteTableId>,
    pub network_interfaces: Vec<NetworkInterfaceId>,
    pub tags: Tags,
}

/// What a network interface belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EniOwner {
    Instance(InstanceId),
    Endpoint(VpcEndpointId),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInterface {
    pub subnet: SubnetId,
    pub vpc: VpcId,
    pub owner: EniOwner,
    pub security_groups: Vec<SecurityGroupId>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub name: String,
    pub description: String,
    pub owner: AccountId,
    /// `amazon` for Amazon's public images.
    pub owner_alias: Option<String>,
    pub architecture: String,
    pub root_device_name: String,
    pub root_size_gib: u32,
    /// `DeleteOnTermination` of the image's own root mapping: what an instance launched without
    /// a root mapping of its own gets (true for images made by `CreateImage` from a default
    /// instance; an image registered with `false` keeps its instances' roots after termination).
    #[serde(default = "default_true")]
    pub root_delete_on_termination: bool,
    pub encrypted: bool,
    pub kms_key_id: Option<KmsKeyId>,
    /// `pending` until then, `available` after.
    pub available_ms: u64,
    pub tags: Tags,
}

/// Who manages a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    Aws,
    Customer,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub arn: String,
    pub manager: Manager,
    pub description: String,
    /// `alias/aws/ebs` for the Region's default EBS key; a name from the fleet file otherwise.
    pub alias: Option<String>,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub id: GrantId,
    pub token: String,
    pub name: Option<String>,
    pub grantee_principal: String,
    pub operations: Vec<GrantOperation>,
    /// The `aws:ebs:id` of the `EncryptionContextSubset` constraint.
    pub ebs_id: Option<String>,
}

impl Serialize for GrantOperation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GrantOperation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let all = [
            GrantOperation::Decrypt,
            GrantOperation::DescribeKey,
            GrantOperation::CreateGrant,
            GrantOperation::GenerateDataKeyWithoutPlaintext,
            GrantOperation::ReEncryptFrom,
            GrantOperation::ReEncryptTo,
        ];
        all.into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown grant operation \"{s}\"")))
    }
}

impl RegionState {
    /// Instances that are not terminated (they hold ENIs, volumes, security groups).
    pub fn live_instances(&self) -> impl Iterator<Item = (&InstanceId, &Instance)> {
        self.instances.iter().filter(|(_, i)| !matches!(i.life, Life::Terminated { .. }))
    }

    /// Snapshots still `pending`, and of those the copies.
    #[must_use]
    pub fn pending_snapshots(&self) -> (usize, usize) {
        if let Some(ix) = &self.index {
            return ix.pending();
        }
        let pending: Vec<&Snapshot> = self.snapshots.values().filter(|s| s.state == SnapState::Pending).collect();
        (pending.len(), pending.iter().filter(|s| s.copy).count())
    }

    /// Snapshots of `volume` still `pending`.
    #[must_use]
    pub fn pending_snapshots_of(&self, volume: &VolumeId) -> usize {
        if let Some(ix) = &self.index {
            return ix.pending_of(volume);
        }
        self.snapshots
            .values()
            .filter(|s| s.state == SnapState::Pending && s.volume_id.as_ref() == Some(volume))
            .count()
    }

    /// The instance launched with `ClientToken` `token` (the first by id).
    #[must_use]
    pub fn instance_by_client_token(&self, token: &str) -> Option<(&InstanceId, &Instance)> {
        if let Some(ix) = &self.index {
            return ix.client_token(token).and_then(|id| self.instances.get_key_value(id));
        }
        self.instances.iter().find(|(_, i)| i.client_token.as_deref() == Some(token))
    }

    /// Scanners (instances with user data) that are `running`, in id order.
    pub fn running_scanners(&self) -> Box<dyn Iterator<Item = (&InstanceId, &Instance)> + '_> {
        match &self.index {
            Some(ix) => Box::new(ix.running_scanners().filter_map(|id| self.instances.get_key_value(id))),
            None => {
                Box::new(self.instances.iter().filter(|(_, i)| i.life == Life::Running && i.user_data_base64.is_some()))
            }
        }
    }

    /// The key with this id or ARN.
    #[must_use]
    pub fn key(&self, key: &KmsKeyId) -> Option<&Key> {
        let k = self.keys.get(key.key_id())?;
        (!key.as_str().starts_with("arn:") || k.arn == key.as_str()).then_some(k)
    }

    /// The Region's `aws/ebs` key.
    #[must_use]
    pub fn default_ebs_key(&self) -> Option<(&String, &Key)> {
        self.keys.iter().find(|(_, k)| k.alias.as_deref() == Some(AWS_EBS_ALIAS))
    }
}

/// The alias of the Region's AWS managed EBS key.
pub const AWS_EBS_ALIAS: &str = "alias/aws/ebs";

fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_aws_shapes_and_repeat_with_the_seed() {
        let mut a = Prng::new(7);
        let mut b = Prng::new(7);
        let i = a.ec2_id("i");
        assert_eq!(i, b.ec2_id("i"));
        assert!(i.parse::<InstanceId>().is_ok(), "{i}");
        let k = a.uuid();
        assert!(k.parse::<KmsKeyId>().is_ok(), "{k}");
        assert!(a.hex(64).parse::<GrantId>().is_ok());
        assert_ne!(a.ec2_id("i"), i);
    }
}
