//! The hook through which a job shares its account's quotas with other jobs:
//! the daemon's dispatcher ([`crate::schedule::dispatch`]) implements [`Budget`]; a runner
//! without one (`agentless scan`, `jobs resume`) keeps to its own per-job limits only
//! ([`super::MAX_PENDING_SNAPSHOTS`], one VPC, whatever vCPUs RunInstances grants).
//!
//! Every method is non-blocking: `take_*` answers at once whether the job may go ahead, and the
//! job waits by its own poll loop (so it keeps polling its own snapshots and scanners, which is
//! what frees its share). Holdings are sets keyed by the job (volumes, scanner names), so telling
//! the budget the same thing twice changes nothing, and a resumed job that re-takes what it
//! already holds is not counted twice.

use crate::cloud::ids::{AccountId, JobId, Region, VolumeId};

/// Quotas shared between the jobs of one process, per (account, Region).
pub trait Budget: Send + Sync {
    /// Take one pending-snapshot slot and one per-volume slot for each of `volumes` (one create
    /// call's worth); `false`: not now, nothing taken.
    fn take_snapshots(&self, job: &JobId, account: &AccountId, region: &Region, volumes: &[VolumeId]) -> bool;
    /// The most volumes one [`Self::take_snapshots`] can ever be granted (the pending-snapshot
    /// budget): an instance with more volumes is snapshotted one volume at a time.
    fn max_snapshots_at_once(&self) -> usize {
        usize::MAX
    }
    /// The job's snapshots still pending are exactly `pending`: the slots of the others are free.
    fn pending_snapshots(&self, job: &JobId, account: &AccountId, region: &Region, pending: &[VolumeId]);
    /// Take one VPC and one internet gateway for the job's network; `false`: not now.
    fn take_network(&self, job: &JobId, account: &AccountId, region: &Region) -> bool;
    /// Take the vCPUs of one scanner of `instance_type` named `scanner`; `false`: not now.
    fn take_scanner(
        &self,
        job: &JobId,
        account: &AccountId,
        region: &Region,
        scanner: &str,
        instance_type: &str,
    ) -> bool;
    /// Of the job's scanners, only `alive` still hold vCPUs (the others stopped or terminated).
    fn scanners_alive(&self, job: &JobId, account: &AccountId, region: &Region, alive: &[String]);
    /// The job is over (or leaves this process): everything it held is free.
    fn release_all(&self, job: &JobId);
}
