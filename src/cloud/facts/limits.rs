//! AWS's quotas, attachment limits and instance-type vCPUs, and the latencies of its asynchronous
//! work, each with its source: what the dispatcher's budgets, the daemon's configuration defaults
//! and the simulated account (whose fleet file may override them, [`crate::cloud::sim::limits`])
//! read.
//!
//! Sources: the AWS pages condensed in docs/references.md (EBS quotas with their quota codes, VPC
//! quotas, EBS volume limits, EC2 API throttling). Where AWS publishes no number (how long a
//! snapshot or a boot takes), the value is marked INFERENCE and chosen to be of the order those
//! pages and other scanners report.
//!
//! Instance types ([`InstanceTypeSpec`]): how many vCPUs a type has (the On-Demand vCPU quota,
//! `VcpuLimitExceeded`) and whether its EBS attachment limit is shared with the network
//! interfaces or dedicated (`AttachmentLimitExceeded`), from a small built-in table
//! ([`INSTANCE_TYPES`]) and the naming rule for the types it lacks ([`spec_from_name`]):
//! [`instance_type`].

use serde::{Deserialize, Serialize};

/// Pending snapshots per account and Region: 100, not adjustable (quota `L-94D7AB7D`,
/// docs/references.md, "EBS snapshot quotas").
pub const PENDING_SNAPSHOTS_PER_REGION: u32 = 100;
/// Concurrent snapshots per gp2/gp3/io1/io2/standard volume: 5, not adjustable; the error is
/// `SnapshotCreationPerVolumeRateExceeded` (docs/references.md).
pub const CONCURRENT_SNAPSHOTS_PER_VOLUME: u32 = 5;
/// Concurrent snapshot copies per destination Region: 20, raised only through AWS Support
/// (docs/references.md, "EBS snapshot quotas").
pub const CONCURRENT_COPIES_PER_REGION: u32 = 20;
/// VPCs per Region: 5 (quota `L-F678F1CE`); the default VPC counts (docs/references.md).
pub const VPCS_PER_REGION: u32 = 5;
/// Internet gateways per Region: 5, tied to the VPC quota (docs/references.md, "VPC quotas").
pub const INTERNET_GATEWAYS_PER_REGION: u32 = 5;
/// Attachments per Nitro instance, shared between ENIs, EBS volumes and NVMe instance store:
/// "Most Nitro instances support a maximum of 28 attachments" (EC2 User Guide, "Amazon EBS volume
/// limits"; docs/references.md). Types with a dedicated EBS limit: [`spec_from_name`].
pub const ATTACHMENTS_PER_INSTANCE: u32 = 28;
/// Running On-Demand vCPUs per Region (the Standard A, C, D, H, I, M, R, T, Z instance bucket,
/// quota `L-1216C47A`, error `VcpuLimitExceeded`): `None`, not enforced. AWS's applied value
/// differs from one account to the next (it grows with use and by request; INFERENCE: no single
/// default is right), and a large simulated fleet of running customer instances would exhaust
/// any fixed one. A fleet sets `[quotas] vcpus_per_region` to study the limit.
pub const VCPUS_PER_REGION: Option<u32> = None;

/// INFERENCE: AWS publishes no snapshot rate. The EBS User Guide says a large first snapshot "can
/// take several hours"; Datadog's 15-minute pending timeout is hit in practice (docs/references.md); 6 s per
/// used GiB (about 170 MiB/s) puts a 150 GiB-used volume right at 15 minutes.
pub const SNAPSHOT_MS_PER_USED_GIB: u64 = 6_000;
/// INFERENCE: a floor for an (almost) empty volume; snapshots are never instant on AWS.
pub const SNAPSHOT_BASE_MS: u64 = 10_000;
/// INFERENCE: `pending -> running` of an instance, the order of a Nitro boot seen in practice.
pub const INSTANCE_BOOT_MS: u64 = 30_000;
/// INFERENCE: `shutting-down -> terminated`.
pub const INSTANCE_SHUTDOWN_MS: u64 = 45_000;
/// INFERENCE: `stopping -> stopped`.
pub const INSTANCE_STOP_MS: u64 = 30_000;
/// Terminated instances "remain visible ... for approximately one hour" (EC2 User Guide,
/// "Terminate Amazon EC2 instances").
pub const TERMINATED_VISIBLE_MS: u64 = 3_600_000;

/// What we model of an instance type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeSpec {
    /// vCPUs (what the On-Demand vCPU quota counts).
    pub vcpus: u32,
    /// The EBS volume limit of a type with a dedicated limit (root volume included, network
    /// interfaces not counted); `None`: the shared limit ([`ATTACHMENTS_PER_INSTANCE`], or a fleet's
    /// `attachments_per_instance` in the simulated account).
    #[serde(default)]
    pub dedicated_ebs_attachments: Option<u32>,
}

impl InstanceTypeSpec {
    /// Whether `volumes` EBS volumes (root included) and `interfaces` network interfaces fit,
    /// with `shared` the shared limit: the limit that was exceeded, if one was.
    #[must_use]
    pub fn exceeded(&self, volumes: u32, interfaces: u32, shared: u32) -> Option<u32> {
        match self.dedicated_ebs_attachments {
            Some(limit) => (volumes > limit).then_some(limit),
            None => (volumes.saturating_add(interfaces) > shared).then_some(shared),
        }
    }

    /// Whether the type counts against the Standard On-Demand bucket (A, C, D, H, I, M, R, T,
    /// Z families, quota `L-1216C47A`), the only vCPU bucket the simulated account enforces.
    #[must_use]
    pub fn standard_bucket(instance_type: &str) -> bool {
        instance_type.chars().next().is_some_and(|c| "acdhimrtz".contains(c.to_ascii_lowercase()))
    }
}

/// The built-in instance types: (name, vCPUs, dedicated EBS limit). vCPUs from the EC2 instance
/// type pages (General purpose, Compute optimized, Memory optimized: "Instance specifications");
/// the dedicated limits from the EC2 User Guide, "Amazon EBS volume limits for Amazon EC2
/// instances" (M7i, C7i, R7i...: 32 volumes from medium to 12xlarge). The types of the demo
/// fleet, the scanner's (`m5.xlarge`, [`crate::cloud::plan::SCANNER_INSTANCE_TYPE`]) and a few
/// common ones; others follow [`spec_from_name`].
pub const INSTANCE_TYPES: &[(&str, u32, Option<u32>)] = &[
    ("t3.nano", 2, None),
    ("t3.micro", 2, None),
    ("t3.small", 2, None),
    ("t3.medium", 2, None),
    ("t3.large", 2, None),
    ("t3.xlarge", 4, None),
    ("t3.2xlarge", 8, None),
    ("m5.large", 2, None),
    ("m5.xlarge", 4, None),
    ("m5.2xlarge", 8, None),
    ("m5.4xlarge", 16, None),
    ("m6i.large", 2, None),
    ("m6i.xlarge", 4, None),
    ("m6i.2xlarge", 8, None),
    ("c5.large", 2, None),
    ("c5.xlarge", 4, None),
    ("c6i.large", 2, None),
    ("c6i.xlarge", 4, None),
    ("r5.large", 2, None),
    ("r6i.large", 2, None),
    ("r6i.xlarge", 4, None),
    ("m7i.large", 2, Some(32)),
    ("m7i.xlarge", 4, Some(32)),
    ("m7i.2xlarge", 8, Some(32)),
    ("c7i.large", 2, Some(32)),
    ("c7i.xlarge", 4, Some(32)),
    ("r7i.large", 2, Some(32)),
    ("r7i.xlarge", 4, Some(32)),
];

/// The built-in table's entry for `instance_type` ([`INSTANCE_TYPES`]).
#[must_use]
pub fn builtin(instance_type: &str) -> Option<InstanceTypeSpec> {
    INSTANCE_TYPES
        .iter()
        .find(|(name, _, _)| *name == instance_type)
        .map(|&(_, vcpus, dedicated)| InstanceTypeSpec { vcpus, dedicated_ebs_attachments: dedicated })
}

/// Families with a dedicated EBS volume limit (EC2 User Guide, "Amazon EBS volume limits for
/// Amazon EC2 instances", "Dedicated EBS volume limit").
const DEDICATED_FAMILIES: &[&str] = &[
    "m7a", "m7i", "m7i-flex", "m8g", "c7a", "c7i", "c7i-flex", "c8g", "r7a", "r7i", "r7iz", "r8g", "x8g", "i7ie",
    "i8g", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "trn2", "hpc7a",
];

/// The dedicated EBS limit of a size (same page: 32 from medium to 12xlarge, 48 for 16xlarge, 64
/// for 24xlarge, 88 for 32xlarge, 128 for 48xlarge).
fn dedicated_ebs_limit(multiple: u32) -> u32 {
    match multiple {
        0..=12 => 32,
        13..=16 => 48,
        17..=24 => 64,
        25..=32 => 88,
        _ => 128,
    }
}

/// INFERENCE from AWS's naming convention (EC2 User Guide, "Amazon EC2 instance type naming
/// conventions"), for types the table lacks: `<family>.<size>` where `large` has 2 vCPUs,
/// `xlarge` 4 and `<n>xlarge` 4n; `nano` to `medium` have 2 in the burstable `t` families and 1
/// otherwise. `metal` sizes and malformed names give `None`.
#[must_use]
pub fn spec_from_name(instance_type: &str) -> Option<InstanceTypeSpec> {
    let (family, size) = instance_type.split_once('.')?;
    if family.is_empty() || !family.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let burstable = family.starts_with('t');
    let (vcpus, multiple) = match size {
        "nano" | "micro" | "small" | "medium" => (if burstable { 2 } else { 1 }, 0),
        "large" => (2, 0),
        "xlarge" => (4, 1),
        _ => {
            let n: u32 = size.strip_suffix("xlarge")?.parse().ok()?;
            (n.checked_mul(4)?, n)
        }
    };
    let dedicated = DEDICATED_FAMILIES.contains(&family).then(|| dedicated_ebs_limit(multiple));
    Some(InstanceTypeSpec { vcpus, dedicated_ebs_attachments: dedicated })
}

/// What we know of `instance_type` without a fleet's overrides: the built-in table, else the
/// naming rule; `None` for a name we cannot read.
#[must_use]
pub fn instance_type(instance_type: &str) -> Option<InstanceTypeSpec> {
    builtin(instance_type).or_else(|| spec_from_name(instance_type))
}
