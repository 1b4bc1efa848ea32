//! The job's working document, persisted in the ledger (`job_data` "doc") after every change the
//! steps make: what discovery found (targets, their volumes and keys), which snapshot holds which
//! volume, the ephemeral network's ids, and which scanner scans which devices. Resume reads it
//! back; the ledger's resource rows remain the record of what exists, this is the mapping between
//! them that the rows do not carry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cloud::ids::{
    GrantId, ImageId, InstanceId, InternetGatewayId, KmsKeyId, RouteTableId, SecurityGroupId, SnapshotId, SubnetId,
    VolumeId, VpcEndpointId, VpcId,
};
use crate::cloud::tags::Tags;

/// The ledger `job_data` name of the document.
pub const DOC: &str = "doc";
/// The ledger `job_data` name of the job's HMAC key (kept apart so the document can be shown).
pub const KEY: &str = "hmac-key";

/// Which instances a job scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selector {
    /// Every running instance of the Region (our scanners excluded).
    All,
    /// These instances, whatever their state.
    Instances(Vec<InstanceId>),
    /// Running instances carrying all these tags.
    Tags(Vec<(String, String)>),
}

/// One volume of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeDoc {
    pub volume: VolumeId,
    /// The volume's tags as described (the guard authorizes the snapshot call with them).
    pub tags: Tags,
    /// The target's device name (`/dev/xvda`).
    pub device: String,
    pub size_gib: u32,
    pub encrypted: bool,
    pub kms_key: Option<KmsKeyId>,
    /// The key is customer managed (needs our grant).
    pub customer_key: bool,
    /// Why this volume cannot be scanned (set at discovery), e.g. a policy gap.
    pub unscannable: Option<String>,
    /// The snapshot intent's ledger row, written before the create call.
    pub snapshot_intent: Option<i64>,
    pub snapshot: Option<SnapshotId>,
    /// The snapshot's tags as created (the guard authorizes deletes with them).
    pub snapshot_tags: Option<Tags>,
    /// `completed` reached.
    pub snapshot_ready: bool,
    pub grant: Option<GrantId>,
    /// The scanner (name) that scans it.
    pub scanner: Option<String>,
    /// Results stored by the collector for it.
    pub scanned: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl VolumeDoc {
    /// Still on its way to a result.
    #[must_use]
    pub fn in_play(&self) -> bool {
        self.unscannable.is_none() && self.error.is_none()
    }
}

/// One target instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDoc {
    pub tags: Tags,
    pub availability_zone: String,
    pub state: String,
    pub volumes: Vec<VolumeDoc>,
    /// Why the whole target failed (not found, no volume...).
    pub error: Option<String>,
}

/// The ephemeral network, filled in as it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDoc {
    pub availability_zone: Option<String>,
    pub vpc: Option<VpcId>,
    pub subnet: Option<SubnetId>,
    pub subnet_public_ips: bool,
    pub internet_gateway: Option<InternetGatewayId>,
    pub gateway_attached: bool,
    pub route_table: Option<RouteTableId>,
    pub route: bool,
    pub security_group: Option<SecurityGroupId>,
    pub egress: bool,
    pub endpoint: Option<VpcEndpointId>,
}

/// One scanner instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerDoc {
    /// `s0`, `s1`... (the bundle upload path's last part).
    pub name: String,
    pub client_token: String,
    /// (device name, target instance, volume) in manifest order.
    pub devices: Vec<(String, InstanceId, VolumeId)>,
    pub instance: Option<InstanceId>,
    /// Unix ms when it was launched (its deadline counts from there).
    pub launched_ms: Option<i64>,
    /// The upload deadline written in its manifest (Unix s), fixed and saved before its first
    /// launch attempt: a retried or resumed launch must send the same user data with the same
    /// `ClientToken`, or EC2 refuses it (`IdempotentParameterMismatch`) while the first launch's
    /// instance runs on. Absent in documents written before it existed.
    #[serde(default)]
    pub deadline_unix: Option<i64>,
    /// The bundle arrived.
    pub reported: bool,
    /// Why it produced nothing, if so.
    pub error: Option<String>,
}

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDoc {
    pub selector: Selector,
    /// RFC 3339: every resource's `agentless:expires-at`.
    pub expires_at: String,
    /// The collector URL handed to scanners.
    pub collector_url: String,
    pub baseline: bool,
    pub targets: BTreeMap<InstanceId, TargetDoc>,
    pub network: NetworkDoc,
    pub image: Option<ImageId>,
    pub scanners: Vec<ScannerDoc>,
    /// Why the job failed (it then tears down and ends `Failed`).
    pub failure: Option<String>,
    /// Cancelled by the user (it then tears down and ends `Cancelled`).
    pub cancelled: bool,
    /// What the teardown could not remove (left for the auditor).
    pub leaked: Vec<String>,
}

impl JobDoc {
    /// Every volume, with its target.
    pub fn volumes(&self) -> impl Iterator<Item = (&InstanceId, &VolumeDoc)> {
        self.targets.iter().flat_map(|(i, t)| t.volumes.iter().map(move |v| (i, v)))
    }

    /// The volume `volume` of `instance`.
    pub fn volume_mut(&mut self, instance: &InstanceId, volume: &VolumeId) -> Option<&mut VolumeDoc> {
        self.targets.get_mut(instance)?.volumes.iter_mut().find(|v| &v.volume == volume)
    }
}
