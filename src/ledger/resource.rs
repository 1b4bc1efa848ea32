//! What the ledger knows about a resource a job creates: its kind, its typed id, and where it is
//! in the intent protocol (`intent -> created -> deleted`).
//!
//! A KMS grant is only addressable together with its key (`RevokeGrant` takes both), so its id is
//! the pair, stored as `<key>#<grant id>` (neither a key id, a key ARN nor a grant id contains
//! `#`).

use std::fmt;
use std::str::FromStr;

use crate::cloud::ids::{
    GrantId, IdError, ImageId, InstanceId, InternetGatewayId, KmsKeyId, NetworkInterfaceId, RouteTableId,
    SecurityGroupId, SnapshotId, SubnetId, VolumeId, VpcEndpointId, VpcId,
};

/// The kinds of resource a scan job creates (docs/tags.md, docs/job.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    /// A snapshot of a target volume, or a copy of one.
    Snapshot,
    /// A volume (a scanner's, when it does not go with its instance).
    Volume,
    /// A scanner instance.
    Instance,
    Vpc,
    Subnet,
    InternetGateway,
    RouteTable,
    SecurityGroup,
    VpcEndpoint,
    NetworkInterface,
    /// A copy of the scanner image.
    Image,
    /// A KMS grant for the scanner principal on a customer-managed key.
    KmsGrant,
}

impl ResourceKind {
    /// Every kind.
    pub const ALL: [ResourceKind; 12] = [
        ResourceKind::Snapshot,
        ResourceKind::Volume,
        ResourceKind::Instance,
        ResourceKind::Vpc,
        ResourceKind::Subnet,
        ResourceKind::InternetGateway,
        ResourceKind::RouteTable,
        ResourceKind::SecurityGroup,
        ResourceKind::VpcEndpoint,
        ResourceKind::NetworkInterface,
        ResourceKind::Image,
        ResourceKind::KmsGrant,
    ];

    /// The name stored in the ledger.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Snapshot => "snapshot",
            ResourceKind::Volume => "volume",
            ResourceKind::Instance => "instance",
            ResourceKind::Vpc => "vpc",
            ResourceKind::Subnet => "subnet",
            ResourceKind::InternetGateway => "internet-gateway",
            ResourceKind::RouteTable => "route-table",
            ResourceKind::SecurityGroup => "security-group",
            ResourceKind::VpcEndpoint => "vpc-endpoint",
            ResourceKind::NetworkInterface => "network-interface",
            ResourceKind::Image => "image",
            ResourceKind::KmsGrant => "kms-grant",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not the name of a resource kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a resource kind")]
pub struct UnknownResourceKind(pub String);

impl FromStr for ResourceKind {
    type Err = UnknownResourceKind;
    fn from_str(s: &str) -> Result<ResourceKind, UnknownResourceKind> {
        ResourceKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownResourceKind(s.chars().take(80).collect()))
    }
}

/// The id of a created resource, typed by kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceId {
    Snapshot(SnapshotId),
    Volume(VolumeId),
    Instance(InstanceId),
    Vpc(VpcId),
    Subnet(SubnetId),
    InternetGateway(InternetGatewayId),
    RouteTable(RouteTableId),
    SecurityGroup(SecurityGroupId),
    VpcEndpoint(VpcEndpointId),
    NetworkInterface(NetworkInterfaceId),
    Image(ImageId),
    /// A grant and the key it is on.
    KmsGrant {
        key: KmsKeyId,
        grant: GrantId,
    },
}

/// Separates the key from the grant id in a stored [`ResourceId::KmsGrant`].
const GRANT_SEPARATOR: char = '#';

impl ResourceId {
    /// The kind of resource this id names.
    #[must_use]
    pub fn kind(&self) -> ResourceKind {
        match self {
            ResourceId::Snapshot(_) => ResourceKind::Snapshot,
            ResourceId::Volume(_) => ResourceKind::Volume,
            ResourceId::Instance(_) => ResourceKind::Instance,
            ResourceId::Vpc(_) => ResourceKind::Vpc,
            ResourceId::Subnet(_) => ResourceKind::Subnet,
            ResourceId::InternetGateway(_) => ResourceKind::InternetGateway,
            ResourceId::RouteTable(_) => ResourceKind::RouteTable,
            ResourceId::SecurityGroup(_) => ResourceKind::SecurityGroup,
            ResourceId::VpcEndpoint(_) => ResourceKind::VpcEndpoint,
            ResourceId::NetworkInterface(_) => ResourceKind::NetworkInterface,
            ResourceId::Image(_) => ResourceKind::Image,
            ResourceId::KmsGrant { .. } => ResourceKind::KmsGrant,
        }
    }

    /// The id as stored in the ledger (the AWS id; `<key>#<grant>` for a grant).
    #[must_use]
    pub fn to_stored(&self) -> String {
        match self {
            ResourceId::Snapshot(id) => id.to_string(),
            ResourceId::Volume(id) => id.to_string(),
            ResourceId::Instance(id) => id.to_string(),
            ResourceId::Vpc(id) => id.to_string(),
            ResourceId::Subnet(id) => id.to_string(),
            ResourceId::InternetGateway(id) => id.to_string(),
            ResourceId::RouteTable(id) => id.to_string(),
            ResourceId::SecurityGroup(id) => id.to_string(),
            ResourceId::VpcEndpoint(id) => id.to_string(),
            ResourceId::NetworkInterface(id) => id.to_string(),
            ResourceId::Image(id) => id.to_string(),
            ResourceId::KmsGrant { key, grant } => format!("{key}{GRANT_SEPARATOR}{grant}"),
        }
    }

    /// Parses a stored id of the given kind.
    pub fn parse(kind: ResourceKind, s: &str) -> Result<ResourceId, IdError> {
        Ok(match kind {
            ResourceKind::Snapshot => ResourceId::Snapshot(s.parse()?),
            ResourceKind::Volume => ResourceId::Volume(s.parse()?),
            ResourceKind::Instance => ResourceId::Instance(s.parse()?),
            ResourceKind::Vpc => ResourceId::Vpc(s.parse()?),
            ResourceKind::Subnet => ResourceId::Subnet(s.parse()?),
            ResourceKind::InternetGateway => ResourceId::InternetGateway(s.parse()?),
            ResourceKind::RouteTable => ResourceId::RouteTable(s.parse()?),
            ResourceKind::SecurityGroup => ResourceId::SecurityGroup(s.parse()?),
            ResourceKind::VpcEndpoint => ResourceId::VpcEndpoint(s.parse()?),
            ResourceKind::NetworkInterface => ResourceId::NetworkInterface(s.parse()?),
            ResourceKind::Image => ResourceId::Image(s.parse()?),
            ResourceKind::KmsGrant => {
                let Some((key, grant)) = s.split_once(GRANT_SEPARATOR) else {
                    return Err(IdError {
                        kind: "KMS grant",
                        value: s.chars().take(80).collect(),
                        expected: "<key id or ARN>#<grant id>",
                    });
                };
                ResourceId::KmsGrant { key: key.parse()?, grant: grant.parse()? }
            }
        })
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}

/// Where a resource row is in the intent protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceState {
    /// Written before the create call; no id known yet.
    Intent,
    /// The create call returned (or the resource was found by token or tag): the id is known.
    Created,
    /// Gone: deleted, or never created (an intent whose create is known to have failed).
    Deleted,
}

impl ResourceState {
    /// The name stored in the ledger (the schema's `CHECK` lists these three).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Intent => "intent",
            ResourceState::Created => "created",
            ResourceState::Deleted => "deleted",
        }
    }
}

impl fmt::Display for ResourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not the name of a resource state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a resource state (intent, created or deleted)")]
pub struct UnknownResourceState(pub String);

impl FromStr for ResourceState {
    type Err = UnknownResourceState;
    fn from_str(s: &str) -> Result<ResourceState, UnknownResourceState> {
        [ResourceState::Intent, ResourceState::Created, ResourceState::Deleted]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownResourceState(s.chars().take(80).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_by_kind() {
        let grant = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab#abc123";
        for (kind, text) in [
            (ResourceKind::Snapshot, "snap-0123456789abcdef0"),
            (ResourceKind::Vpc, "vpc-0a1b2c3d"),
            (ResourceKind::KmsGrant, grant),
        ] {
            let id = ResourceId::parse(kind, text).expect("valid");
            assert_eq!(id.kind(), kind);
            assert_eq!(id.to_stored(), text);
        }
        assert!(ResourceId::parse(ResourceKind::Vpc, "subnet-0a1b2c3d").is_err());
        assert!(ResourceId::parse(ResourceKind::KmsGrant, "abc123").is_err());
        for kind in ResourceKind::ALL {
            assert_eq!(kind.as_str().parse::<ResourceKind>(), Ok(kind));
        }
    }
}
