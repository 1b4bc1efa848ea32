//! Tags as data, and the tag contract between the orchestrator and the custom IAM policy
//! (docs/tags.md): what every resource we create is named and tagged with, in
//! its create call.
//!
//! The policy lets us delete only what is named with one of two prefixes
//! (`policies/agentless-scan.json`: Statement\[0\] `ec2:ResourceTag/Name` `alibaba-cloud-security-scan*`,
//! Statement\[1\] `SAS_Agentless*`). The guard (`cloud::guard`) is stricter: it also wants our
//! `agentless:job` tag before any delete or other change to an existing resource.
//!
//! One deviation from the original design (docs/tags.md), forced by the API: `CreateSnapshots` applies one
//! `TagSpecifications` to every snapshot of the instance, so a multi-volume snapshot cannot be
//! named per volume. Such snapshots are named `SAS_Agentless-<job>-<instance-id>` and carry
//! `agentless:source-instance` only ([`SnapshotSource::Instance`]); the volume of each is the
//! snapshot's own `VolumeId`. `CreateSnapshot` and `CopySnapshot` name per volume.

use std::fmt;

use super::ids::{InstanceId, JobId, VolumeId};

/// `Name` prefix of snapshots and their copies (policy Statement\[1\]: `SAS_Agentless*`).
pub const SNAPSHOT_NAME_PREFIX: &str = "SAS_Agentless";
/// `Name` prefix of every other resource we create (policy Statement\[0\]:
/// `alibaba-cloud-security-scan*`), and of our KMS grant names.
pub const RESOURCE_NAME_PREFIX: &str = "alibaba-cloud-security-scan";

/// The tag AWS and the policy read as the resource's name.
pub const NAME: &str = "Name";
/// Our job id; the guard wants it on anything it changes or deletes.
pub const JOB: &str = "agentless:job";
/// The volume a snapshot was taken of.
pub const SOURCE_VOLUME: &str = "agentless:source-volume";
/// The instance a snapshot was taken of.
pub const SOURCE_INSTANCE: &str = "agentless:source-instance";
/// When the leak auditor may delete the resource (RFC 3339, UTC).
pub const EXPIRES_AT: &str = "agentless:expires-at";
/// The scanner image version, on a copied scanner AMI.
pub const IMAGE_VERSION: &str = "agentless:image-version";

/// EC2 tag limits (EC2 User Guide, "Tag restrictions"): key 1-128 characters, value 0-256, and the
/// `aws:` prefix is reserved; 50 tags per resource.
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;
const MAX_TAGS: usize = 50;

/// One tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A tag EC2 would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("tag key \"{0}\" must be 1 to 128 characters")]
    KeyLength(String),
    #[error("tag key \"{0}\" uses the reserved aws: prefix")]
    ReservedKey(String),
    #[error("the value of tag \"{key}\" is {chars} characters; the limit is 256")]
    ValueLength { key: String, chars: usize },
    #[error("more than 50 tags")]
    TooMany,
}

/// An ordered set of tags: keys are unique (case-sensitive, as EC2 keys are), insertion order is
/// kept so that requests and traces read the same every time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// No tags.
    #[must_use]
    pub fn new() -> Tags {
        Tags::default()
    }

    /// Set `key` to `value` (replacing an existing value), checking EC2's limits.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Result<(), TagError> {
        let (key, value) = (key.into(), value.into());
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_KEY_CHARS {
            return Err(TagError::KeyLength(key));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(TagError::ReservedKey(key));
        }
        let chars = value.chars().count();
        if chars > MAX_VALUE_CHARS {
            return Err(TagError::ValueLength { key, chars });
        }
        if let Some(t) = self.0.iter_mut().find(|t| t.key == key) {
            t.value = value;
            return Ok(());
        }
        if self.0.len() == MAX_TAGS {
            return Err(TagError::TooMany);
        }
        self.0.push(Tag { key, value });
        Ok(())
    }

    /// Builder form of [`Tags::insert`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Result<Tags, TagError> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// Tags from pairs, each checked.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Tags, TagError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut tags = Tags::new();
        for (k, v) in pairs {
            tags.insert(k, v)?;
        }
        Ok(tags)
    }

    /// For the constructors below, whose keys are constants and whose values are built from
    /// validated ids (a [`JobId`] is at most 32 characters, an EC2 id at most 22, a role at most
    /// [`MAX_ROLE_CHARS`]), so no limit can be reached; a unit test checks every constructor
    /// against [`Tags::insert`].
    fn push_known(&mut self, key: &str, value: String) {
        self.0.retain(|t| t.key != key);
        self.0.push(Tag { key: key.to_owned(), value });
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }

    /// The `Name` tag.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.get(NAME)
    }

    /// Every tag, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    /// Every key, in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|t| t.key.as_str())
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Tags {
    /// `Name=x, agentless:job=y`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", t.key, t.value)?;
        }
        Ok(())
    }
}

/// What a snapshot was taken of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSource<'a> {
    /// One volume (`CreateSnapshot`, or a copy of such a snapshot): named after the volume.
    Volume { instance: &'a InstanceId, volume: &'a VolumeId },
    /// Every volume of an instance in one `CreateSnapshots` call: one tag set for all of them,
    /// so named after the instance.
    Instance { instance: &'a InstanceId },
}

/// `SAS_Agentless-<job>-<volume-id>` (docs/tags.md).
#[must_use]
pub fn snapshot_name(job: &JobId, volume: &VolumeId) -> String {
    format!("{SNAPSHOT_NAME_PREFIX}-{job}-{volume}")
}

/// `SAS_Agentless-<job>-<instance-id>`, for `CreateSnapshots` (see the module doc).
#[must_use]
pub fn instance_snapshot_name(job: &JobId, instance: &InstanceId) -> String {
    format!("{SNAPSHOT_NAME_PREFIX}-{job}-{instance}")
}

/// The longest role suffix [`resource_name`] takes.
pub const MAX_ROLE_CHARS: usize = 40;

/// A role suffix of a resource name: 1 to [`MAX_ROLE_CHARS`] of `a-z`, `0-9`, `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role<'a>(&'a str);

impl<'a> Role<'a> {
    /// `None` if `role` is empty, too long or has other characters.
    #[must_use]
    pub fn new(role: &'a str) -> Option<Role<'a>> {
        let ok = (1..=MAX_ROLE_CHARS).contains(&role.len())
            && role.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then_some(Role(role))
    }

    /// The VPC, subnet, gateway, security group, endpoint and scanner roles the job uses.
    pub const VPC: Role<'static> = Role("vpc");
    pub const SUBNET: Role<'static> = Role("subnet");
    pub const INTERNET_GATEWAY: Role<'static> = Role("igw");
    pub const SECURITY_GROUP: Role<'static> = Role("sg");
    pub const VPC_ENDPOINT: Role<'static> = Role("vpce");
    pub const SCANNER: Role<'static> = Role("scanner");

    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// `alibaba-cloud-security-scan-<job>[-<role>]` (docs/tags.md).
#[must_use]
pub fn resource_name(job: &JobId, role: Option<Role<'_>>) -> String {
    match role {
        Some(r) => format!("{RESOURCE_NAME_PREFIX}-{job}-{}", r.as_str()),
        None => format!("{RESOURCE_NAME_PREFIX}-{job}"),
    }
}

/// The KMS grant name: `alibaba-cloud-security-scan-<job>` (docs/tags.md).
#[must_use]
pub fn grant_name(job: &JobId) -> String {
    resource_name(job, None)
}

/// RFC 3339 in UTC, e.g. `2026-03-16T12:00:00Z`.
fn expiry(expires_at: jiff::Timestamp) -> String {
    expires_at.to_string()
}

/// The tags of a snapshot or a copy of one.
#[must_use]
pub fn snapshot_tags(job: &JobId, source: SnapshotSource<'_>, expires_at: jiff::Timestamp) -> Tags {
    let mut t = Tags::new();
    match source {
        SnapshotSource::Volume { instance, volume } => {
            t.push_known(NAME, snapshot_name(job, volume));
            t.push_known(JOB, job.to_string());
            t.push_known(SOURCE_VOLUME, volume.to_string());
            t.push_known(SOURCE_INSTANCE, instance.to_string());
        }
        SnapshotSource::Instance { instance } => {
            t.push_known(NAME, instance_snapshot_name(job, instance));
            t.push_known(JOB, job.to_string());
            t.push_known(SOURCE_INSTANCE, instance.to_string());
        }
    }
    t.push_known(EXPIRES_AT, expiry(expires_at));
    t
}

/// The tags of a VPC, subnet, internet gateway, security group, VPC endpoint, scanner instance,
/// its volumes and its network interface: `Name`, `agentless:job`, `agentless:expires-at`.
#[must_use]
pub fn resource_tags(job: &JobId, role: Option<Role<'_>>, expires_at: jiff::Timestamp) -> Tags {
    let mut t = Tags::new();
    t.push_known(NAME, resource_name(job, role));
    t.push_known(JOB, job.to_string());
    t.push_known(EXPIRES_AT, expiry(expires_at));
    t
}

/// The tags of a scanner AMI copied into a Region. It outlives the job that copied it (the policy
/// has no `ec2:DeregisterImage`, so it could not be removed anyway; later jobs reuse it), hence no
/// job and no expiry: `Name=alibaba-cloud-security-scan-image-<version>` (= [`image_name`]).
#[must_use]
pub fn image_tags(version: Role<'_>) -> Tags {
    let mut t = Tags::new();
    t.push_known(NAME, image_name(version.as_str()));
    t.push_known(IMAGE_VERSION, version.as_str().to_owned());
    t
}

/// `alibaba-cloud-security-scan-image-<version>`: the `Name` tag of our scanner image, and the
/// prefix of its AMI name (`scanner-ami/image/register.sh` registers `<this>-<UTC stamp>`). The AMI
/// name is set at registration and cannot be changed by `ec2:CreateTags`.
#[must_use]
pub fn image_name(version: &str) -> String {
    format!("{RESOURCE_NAME_PREFIX}-image-{version}")
}

/// This build's scanner image version tag value ([`IMAGE_VERSION`]): the crate version with dots
/// as dashes. The image a job looks for by default (`ScannerImage::Version`) and the one the
/// simulated account registers ([`super::sim::SimCloud::install_scanner_image`]).
#[must_use]
pub fn image_version() -> String {
    env!("CARGO_PKG_VERSION").replace('.', "-")
}

/// An AMI name [`image_name`] for `version` made: that name, or it followed by `-<suffix>`.
#[must_use]
pub fn is_image_name(name: &str, version: &str) -> bool {
    let want = image_name(version);
    name.strip_prefix(want.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobId {
        "20260315-7k2q".parse().expect("job")
    }

    fn ts() -> jiff::Timestamp {
        "2026-03-16T12:00:00Z".parse().expect("timestamp")
    }

    /// Every constructor's output passes the checked insert (so `push_known` is safe).
    fn assert_valid(tags: &Tags) {
        let again = Tags::from_pairs(tags.iter().map(|t| (t.key.clone(), t.value.clone()))).expect("valid");
        assert_eq!(&again, tags);
    }

    #[test]
    fn the_tag_contract() {
        let vol: VolumeId = "vol-0a1b2c3d4e5f60718".parse().expect("vol");
        let inst: InstanceId = "i-0123456789abcdef0".parse().expect("inst");
        assert_eq!(snapshot_name(&job(), &vol), "SAS_Agentless-20260315-7k2q-vol-0a1b2c3d4e5f60718");
        assert_eq!(resource_name(&job(), Some(Role::VPC)), "alibaba-cloud-security-scan-20260315-7k2q-vpc");
        assert_eq!(resource_name(&job(), None), "alibaba-cloud-security-scan-20260315-7k2q");
        assert_eq!(grant_name(&job()), "alibaba-cloud-security-scan-20260315-7k2q");

        let s = snapshot_tags(&job(), SnapshotSource::Volume { instance: &inst, volume: &vol }, ts());
        assert_eq!(
            s.to_string(),
            "Name=SAS_Agentless-20260315-7k2q-vol-0a1b2c3d4e5f60718, agentless:job=20260315-7k2q, \
             agentless:source-volume=vol-0a1b2c3d4e5f60718, agentless:source-instance=i-0123456789abcdef0, \
             agentless:expires-at=2026-03-16T12:00:00Z"
        );
        assert_valid(&s);
        let m = snapshot_tags(&job(), SnapshotSource::Instance { instance: &inst }, ts());
        assert_eq!(m.name(), Some("SAS_Agentless-20260315-7k2q-i-0123456789abcdef0"));
        assert_eq!(m.get(SOURCE_VOLUME), None);
        assert_valid(&m);
        let long_role = "r".repeat(MAX_ROLE_CHARS);
        let longest = Role::new(&long_role).expect("role");
        let r = resource_tags(&"a".repeat(32).parse().expect("job"), Some(longest), ts());
        assert_valid(&r);
        assert_eq!(r.keys().collect::<Vec<_>>(), [NAME, JOB, EXPIRES_AT]);
        assert_valid(&image_tags(longest));
        assert!(Role::new("").is_none() && Role::new("Scanner").is_none());
    }

    #[test]
    fn limits() {
        let mut t = Tags::new();
        assert!(matches!(t.insert("aws:x", "1"), Err(TagError::ReservedKey(_))));
        assert!(matches!(t.insert("", "1"), Err(TagError::KeyLength(_))));
        assert!(matches!(t.insert("k", "v".repeat(257)), Err(TagError::ValueLength { chars: 257, .. })));
        t.insert("k", "1").expect("insert");
        t.insert("k", "2").expect("replace");
        assert_eq!((t.len(), t.get("k")), (1, Some("2")));
        for i in 1..50 {
            t.insert(format!("k{i}"), "v").expect("insert");
        }
        assert_eq!(t.insert("one-too-many", "v"), Err(TagError::TooMany));
    }
}
