//! The numbers the simulated account enforces: AWS's quotas and the latencies of its asynchronous
//! work, each with its source. The fleet file may override any of them (`[quotas]`,
//! `[latencies]`); unset keys keep these defaults.
//!
//! Sources: `../shared/reference/orchestrator-anchors.md` section 4 ("AWS hard limits"), which
//! cites the AWS pages (EBS quotas with their quota codes, VPC quotas, EBS volume limits). Where
//! AWS publishes no number (how long a snapshot or a boot takes), the value is marked INFERENCE
//! and chosen to be of the order the anchors report.

use serde::{Deserialize, Serialize};

/// Pending snapshots per account and Region: 100, not adjustable (quota `L-94D7AB7D`,
/// orchestrator-anchors 4.2).
pub const PENDING_SNAPSHOTS_PER_REGION: u32 = 100;
/// Concurrent snapshots per gp2/gp3/io1/io2/standard volume: 5, not adjustable; the error is
/// `SnapshotCreationPerVolumeRateExceeded` (orchestrator-anchors 4.2).
pub const CONCURRENT_SNAPSHOTS_PER_VOLUME: u32 = 5;
/// Concurrent snapshot copies per destination Region: 20, raised only through AWS Support
/// (orchestrator-anchors 4.2 and 0.5).
pub const CONCURRENT_COPIES_PER_REGION: u32 = 20;
/// VPCs per Region: 5 (quota `L-F678F1CE`); the default VPC counts (orchestrator-anchors 4.5).
pub const VPCS_PER_REGION: u32 = 5;
/// Internet gateways per Region: 5, tied to the VPC quota (orchestrator-anchors 4.5).
pub const INTERNET_GATEWAYS_PER_REGION: u32 = 5;
/// Attachments per Nitro instance, shared between ENIs, EBS volumes and NVMe instance store:
/// "Most Nitro instances support a maximum of 28 attachments" (EC2 User Guide, "Amazon EBS volume
/// limits", orchestrator-anchors 4.4). Types with a dedicated EBS limit are not modelled yet.
pub const ATTACHMENTS_PER_INSTANCE: u32 = 28;

/// INFERENCE: AWS publishes no snapshot rate. The anchors (4.3) say a large first snapshot "can
/// take several hours" and that Datadog's 15-minute pending timeout is hit in practice; 6 s per
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
    pub attachments_per_instance: u32,
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
    /// The buckets of orchestrator-anchors 4.1.
    #[default]
    Aws,
    /// No throttling (e.g. to measure a fleet without the API's rate limits).
    Off,
}
