//! Which CloudTrail records mean "this instance changed: scan it", and which instance.
//!
//! Only successful (no `errorCode`) calls to `ec2.amazonaws.com` count. The fields read are those
//! of the EC2 Query API as CloudTrail records them (lists are `{"items":[...]}`):
//!
//! | event | kind | instance ids from |
//! |---|---|---|
//! | RunInstances | [`TriggerKind::Launched`] | `responseElements.instancesSet.items[].instanceId` |
//! | StartInstances | [`TriggerKind::Started`] | `requestParameters.instancesSet.items[].instanceId` |
//! | AttachVolume | [`TriggerKind::VolumeAttached`] | `requestParameters.instanceId` |
//! | ModifyInstanceAttribute with `userData` | [`TriggerKind::UserDataChanged`] | `requestParameters.instanceId` |
//! | CreateTags | [`TriggerKind::Tagged`] | `requestParameters.resourcesSet.items[].resourceId` (instances only) |
//!
//! CreateVolume gives nothing by itself: a new volume matters once attached, which is its own
//! AttachVolume event. Instances launched from an AMI made by CreateImage are RunInstances too.
//!
//! Our own scanners never trigger scans: a RunInstances or CreateTags whose tags carry our names
//! (`Name` starting with [`tags::RESOURCE_NAME_PREFIX`] or [`tags::SNAPSHOT_NAME_PREFIX`]) or our
//! [`tags::JOB`] key gives nothing.

use std::collections::BTreeSet;

use serde_json::Value;

use super::record::{Record, items};
use crate::cloud::ids::InstanceId;
use crate::cloud::tags;

/// The CloudTrail `eventSource` of EC2 calls.
const EC2_SOURCE: &str = "ec2.amazonaws.com";
/// Our choice: elements read from one list of one record (RunInstances launches at most the
/// account's vCPU quota of instances in one call; thousands would be exceptional).
const MAX_ITEMS: usize = 10_000;

/// Why an instance should be scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TriggerKind {
    /// RunInstances: a new instance.
    Launched,
    /// StartInstances: a stopped instance running again.
    Started,
    /// AttachVolume: a volume, maybe with new software, attached to the instance.
    VolumeAttached,
    /// ModifyInstanceAttribute of `userData`: what runs at the next boot changed.
    UserDataChanged,
    /// CreateTags on the instance: it may have entered a selector's tags.
    Tagged,
}

impl TriggerKind {
    /// The kind's name in logs and the API: `launched`, `started`, `volume_attached`,
    /// `user_data_changed`, `tagged`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Launched => "launched",
            TriggerKind::Started => "started",
            TriggerKind::VolumeAttached => "volume_attached",
            TriggerKind::UserDataChanged => "user_data_changed",
            TriggerKind::Tagged => "tagged",
        }
    }
}

/// One instance to scan, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The instance.
    pub instance: InstanceId,
    /// What happened to it.
    pub kind: TriggerKind,
    /// The record's `eventTime`.
    pub event_time: jiff::Timestamp,
    /// The record's `awsRegion`.
    pub region: String,
    /// For `Tagged`: the tags the call set (so the daemon can tell whether the instance entered a
    /// selector's tags). Empty otherwise.
    pub tags: Vec<(String, String)>,
}

/// The triggers of one record (see the module doc). Ids that do not parse as [`InstanceId`] are
/// dropped; duplicates within a record are dropped; the order is the record's.
#[must_use]
pub fn triggers(r: &Record) -> Vec<Trigger> {
    if r.event_source != EC2_SOURCE || r.error_code.is_some() {
        return Vec::new();
    }
    let request = &r.request_parameters;
    let (kind, ids): (TriggerKind, Vec<&Value>) = match r.event_name.as_str() {
        "RunInstances" => {
            if is_ours(&r.tags()) {
                return Vec::new();
            }
            let listed = items(r.response_elements.get("instancesSet")).take(MAX_ITEMS);
            (TriggerKind::Launched, listed.filter_map(|i| i.get("instanceId")).collect())
        }
        "StartInstances" => {
            let listed = items(request.get("instancesSet")).take(MAX_ITEMS);
            (TriggerKind::Started, listed.filter_map(|i| i.get("instanceId")).collect())
        }
        "AttachVolume" => (TriggerKind::VolumeAttached, request.get("instanceId").into_iter().collect()),
        "ModifyInstanceAttribute" if request.get("userData").is_some_and(|u| !u.is_null()) => {
            (TriggerKind::UserDataChanged, request.get("instanceId").into_iter().collect())
        }
        "CreateTags" => {
            let listed = items(request.get("resourcesSet")).take(MAX_ITEMS);
            (TriggerKind::Tagged, listed.filter_map(|i| i.get("resourceId")).collect())
        }
        _ => return Vec::new(),
    };
    let set_tags = if kind == TriggerKind::Tagged { r.tags() } else { Vec::new() };
    if kind == TriggerKind::Tagged && is_ours(&set_tags) {
        return Vec::new();
    }
    let mut seen = BTreeSet::new();
    ids.into_iter()
        .filter_map(|v| v.as_str()?.parse::<InstanceId>().ok())
        .filter(|id| seen.insert(id.clone()))
        .map(|instance| Trigger {
            instance,
            kind,
            event_time: r.event_time,
            region: r.region.clone(),
            tags: set_tags.clone(),
        })
        .collect()
}

/// Whether tags carry our names: a `Name` with one of our prefixes, or our job key.
fn is_ours(set: &[(String, String)]) -> bool {
    set.iter().any(|(key, value)| {
        key == tags::JOB
            || (key == tags::NAME
                && (value.starts_with(tags::RESOURCE_NAME_PREFIX) || value.starts_with(tags::SNAPSHOT_NAME_PREFIX)))
    })
}
