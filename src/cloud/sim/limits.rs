//! The numbers the simulated account enforces: AWS's quotas and the latencies of its asynchronous
//! work, each with its source. The fleet file may override any of them (`[quotas]`,
//! `[latencies]`); unset keys keep these defaults.
//!
//! Sources: the AWS pages condensed in docs/references.md (EBS quotas with their quota codes, VPC
//! quotas, EBS volume limits, EC2 API throttling). Where AWS publishes no number (how long a
//! snapshot or a boot takes), the value is marked INFERENCE and chosen to be of the order those
//! pages and other scanners report.
//!
//! These defaults are AWS's numbers: the benchmarks and the quota tests run with them. A fleet
//! meant for a demo on the real clock (`tests/data/sim/demo-fleet.toml`) shortens the latencies.
//!
//! Instance types ([`InstanceTypeSpec`]): how many vCPUs a type has (the On-Demand vCPU quota,
//! `VcpuLimitExceeded`) and whether its EBS attachment limit is shared with the network
//! interfaces or dedicated (`AttachmentLimitExceeded`), from a small built-in table
//! ([`INSTANCE_TYPES`]), the naming rule for the types it lacks ([`spec_from_name`]) and the
//! fleet file's `[instance_types]` overrides.

use std::collections::{BTreeMap, BTreeSet};

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
/// How long Describe lags behind creates and deletes ([`super::consistency`]): 0, strongly
/// consistent, so tests that do not study the lag need not wait; fleet files that want AWS's
/// behaviour set it (e.g. [`super::consistency::REALISTIC_LAG_MS`]).
pub const DESCRIBE_LAG_MS: u64 = 0;

/// Quotas, latencies, whether the API token buckets apply, and the injected faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub quotas: Quotas,
    pub latencies: Latencies,
    /// The EC2 API token buckets ([`super::throttle`]); on by default.
    pub throttling: Throttling,
    /// None by default ([`super::faults`]).
    pub faults: super::faults::Faults,
    /// Instance types added to, or overriding, the built-in table ([`INSTANCE_TYPES`]).
    pub instance_types: BTreeMap<String, InstanceTypeSpec>,
    /// The customer managed keys (ARNs) whose key policy lets the account's IAM policies use them
    /// (fleet `allow_account_use = true`, [`super::kms`]); the other customer keys are usable for
    /// cryptography only through a grant. Kept here, with the world's other settings, because the
    /// key records of [`super::state`] have no field for it.
    pub keys_allowing_account_use: BTreeSet<String>,
    /// The customer managed keys (ARNs) whose key policy names the account's principals as key
    /// users (fleet `allow_caller_use = true`: AWS's console default "Allow use of the key"
    /// statement, which includes `kms:GenerateDataKey*`, `kms:Decrypt`, `kms:ReEncrypt*`,
    /// `kms:DescribeKey` and `kms:CreateGrant` for AWS resources): KMS allows them whatever the
    /// IAM policies say ([`super::kms`]).
    pub keys_allowing_caller_use: BTreeSet<String>,
}

impl Settings {
    /// What the sim knows of `instance_type`: the fleet's override, else the built-in table, else
    /// the naming rule; `None` for a name it cannot read.
    #[must_use]
    pub fn instance_type(&self, instance_type: &str) -> Option<InstanceTypeSpec> {
        self.instance_types
            .get(instance_type)
            .copied()
            .or_else(|| builtin(instance_type))
            .or_else(|| spec_from_name(instance_type))
    }
}

/// Per-Region quotas (see the constants for their sources).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    pub pending_snapshots_per_region: u32,
    pub concurrent_snapshots_per_volume: u32,
    pub concurrent_copies_per_region: u32,
    pub vpcs_per_region: u32,
    pub internet_gateways_per_region: u32,
    /// Attachments of a type with the shared (Nitro) limit: volumes, root included, plus ENIs.
    pub attachments_per_instance: u32,
    /// Running On-Demand vCPUs per Region ([`VCPUS_PER_REGION`]); unset: not enforced.
    pub vcpus_per_region: Option<u32>,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            pending_snapshots_per_region: PENDING_SNAPSHOTS_PER_REGION,
            concurrent_snapshots_per_volume: CONCURRENT_SNAPSHOTS_PER_VOLUME,
            concurrent_copies_per_region: CONCURRENT_COPIES_PER_REGION,
            vpcs_per_region: VPCS_PER_REGION,
            internet_gateways_per_region: INTERNET_GATEWAYS_PER_REGION,
            attachments_per_instance: ATTACHMENTS_PER_INSTANCE,
            vcpus_per_region: VCPUS_PER_REGION,
        }
    }
}

/// Latencies in milliseconds of the timeline (virtual under a paused tokio clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Latencies {
    pub snapshot_base_ms: u64,
    pub snapshot_ms_per_used_gib: u64,
    pub instance_boot_ms: u64,
    pub instance_shutdown_ms: u64,
    pub instance_stop_ms: u64,
    pub terminated_visible_ms: u64,
    /// Eventual consistency of Describe ([`super::consistency`]).
    pub describe_lag_ms: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            snapshot_base_ms: SNAPSHOT_BASE_MS,
            snapshot_ms_per_used_gib: SNAPSHOT_MS_PER_USED_GIB,
            instance_boot_ms: INSTANCE_BOOT_MS,
            instance_shutdown_ms: INSTANCE_SHUTDOWN_MS,
            instance_stop_ms: INSTANCE_STOP_MS,
            terminated_visible_ms: TERMINATED_VISIBLE_MS,
            describe_lag_ms: DESCRIBE_LAG_MS,
        }
    }
}

impl Latencies {
    /// How long a snapshot (or a copy) of `used_gib` stays `pending`.
    #[must_use]
    pub fn snapshot_ms(&self, used_gib: u32) -> u64 {
        self.snapshot_base_ms.saturating_add(self.snapshot_ms_per_used_gib.saturating_mul(u64::from(used_gib)))
    }
}

/// Whether the EC2 API token buckets throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Throttling {
    /// The buckets of docs/references.md, "EC2 API throttling".
    #[default]
    Aws,
    /// No throttling (e.g. to measure a fleet without the API's rate limits).
    Off,
}

/// What the sim models of an instance type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeSpec {
    /// vCPUs (what the On-Demand vCPU quota counts).
    pub vcpus: u32,
    /// The EBS volume limit of a type with a dedicated limit (root volume included, network
    /// interfaces not counted); `None`: the shared limit ([`Quotas::attachments_per_instance`]).
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
    /// Z families, quota `L-1216C47A`), the only vCPU bucket the sim enforces.
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

fn builtin(instance_type: &str) -> Option<InstanceTypeSpec> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_types_from_the_table_the_rule_and_the_fleet() {
        let mut s = Settings::default();
        assert_eq!(s.instance_type("m5.xlarge"), Some(InstanceTypeSpec { vcpus: 4, dedicated_ebs_attachments: None }));
        assert_eq!(s.instance_type("m7i.large").and_then(|t| t.dedicated_ebs_attachments), Some(32));
        assert_eq!(
            s.instance_type("m7i.48xlarge"),
            Some(InstanceTypeSpec { vcpus: 192, dedicated_ebs_attachments: Some(128) })
        );
        assert_eq!(s.instance_type("c6g.medium").map(|t| t.vcpus), Some(1));
        assert_eq!(s.instance_type("t4g.small").map(|t| t.vcpus), Some(2));
        for bad in ["m5", "m5.metal", "m5.hugexlarge", ".large", "m5.0x"] {
            assert_eq!(s.instance_type(bad), None, "{bad}");
        }
        s.instance_types.insert("m5.metal".into(), InstanceTypeSpec { vcpus: 96, dedicated_ebs_attachments: None });
        assert_eq!(s.instance_type("m5.metal").map(|t| t.vcpus), Some(96));
        let t = InstanceTypeSpec { vcpus: 2, dedicated_ebs_attachments: None };
        assert_eq!((t.exceeded(27, 1, 28), t.exceeded(28, 1, 28)), (None, Some(28)));
        let t = InstanceTypeSpec { vcpus: 2, dedicated_ebs_attachments: Some(32) };
        assert_eq!((t.exceeded(32, 1, 28), t.exceeded(33, 0, 28)), (None, Some(32)));
        assert!(InstanceTypeSpec::standard_bucket("m5.xlarge") && !InstanceTypeSpec::standard_bucket("p5.48xlarge"));
    }
}
