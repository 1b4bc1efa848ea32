//! The numbers the simulated account enforces: AWS's quotas, limits and latencies
//! ([`crate::cloud::facts::limits`], where each is defined with its source, re-exported here) as
//! the defaults of its [`Settings`]. The fleet file may override any of them (`[quotas]`,
//! `[latencies]`, `[instance_types]`); unset keys keep these defaults.
//!
//! These defaults are AWS's numbers: the benchmarks and the quota tests run with them. A fleet
//! meant for a demo on the real clock (`tests/data/sim/demo-fleet.toml`) shortens the latencies.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use crate::cloud::facts::limits::*;

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
            .or_else(|| crate::cloud::facts::limits::instance_type(instance_type))
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
