//! The quota-aware dispatcher shared by every job of the daemon.
//!
//! Per (account, Region) it holds the budgets AWS enforces per account and Region — pending
//! snapshots, pending snapshots per volume, concurrent snapshot copies, VPCs and internet
//! gateways, On-Demand vCPUs — and hands them to jobs through the runner's hook
//! ([`crate::job::Budget`]): a job asks before each snapshot create, before its VPC and before
//! each scanner, and is told no (it waits in its own poll loop, which keeps freeing its share)
//! rather than meeting `PendingSnapshotLimitExceeded`, `SnapshotCreationPerVolumeRateExceeded`,
//! `VpcLimitExceeded` or `VcpuLimitExceeded` from AWS. The EC2 token buckets are the other shared
//! budget: one [`crate::cloud::pacer::Pacer`] per account, shared by all its jobs through the
//! account's guard (the daemon builds one guard per account).
//!
//! # Fairness
//!
//! - Between accounts: budgets are per (account, Region), so one account's jobs never wait for
//!   another's; the only thing accounts share is the process's job slots, handed out round-robin
//!   by account and, within an account, by schedule ([`JobSlots`]).
//! - Between jobs (so between schedules and on-demand scans) of one (account, Region): when
//!   another job is waiting, a job that already holds something gets no more than its fair share
//!   (budget / jobs holding or waiting) of the pending-snapshot and vCPU budgets; a job holding
//!   nothing may always take what fits (so one instance with many volumes is never starved).
//!   Network slots go to the longest-waiting job first.
//!
//! # Guarantees
//!
//! What the dispatcher grants never exceeds a budget (checked by a randomized test), with one
//! exception: [`Dispatcher::adopt`] records what a resumed job already holds in the cloud, which
//! may exceed a budget that was lowered meanwhile; nothing more is granted until it is back under.
//! Holdings are sets per job, so a job repeating itself is not counted twice, and
//! [`crate::job::Budget::release_all`] at the end of every drive frees whatever was left.
//!
//! # Limits
//!
//! Only our own jobs are counted: the customer's own snapshots and instances are not read from
//! the account (hence the headroom in the defaults: 90 of the 100 pending snapshots, 4 of the 5
//! VPCs). A snapshot marked failed by a job (timed out) is released although AWS may still count
//! it pending. Copies: no job step copies a snapshot today (same-Region, same-account scanners,
//! `job::share`); the budget is here for the hub-account layout, taken with
//! [`Dispatcher::take_copies`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cloud::ids::{AccountId, JobId, Region, VolumeId};
use crate::job::JobDoc;
use crate::schedule::config::LimitsConfig;

/// vCPUs assumed for an instance type the sim's table and naming rule cannot read: those of the
/// default scanner type m5.xlarge (EC2 instance types, "General purpose").
pub const UNKNOWN_TYPE_VCPUS: u32 = 4;

/// The budgets of one (account, Region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub pending_snapshots: usize,
    pub snapshots_per_volume: usize,
    pub concurrent_copies: usize,
    /// VPCs and internet gateways (each job's network takes one of each).
    pub networks: usize,
    /// `None`: not limited.
    pub vcpus: Option<u32>,
}

impl From<&LimitsConfig> for Limits {
    fn from(c: &LimitsConfig) -> Limits {
        Limits {
            pending_snapshots: c.pending_snapshots,
            snapshots_per_volume: c.snapshots_per_volume,
            concurrent_copies: c.concurrent_copies,
            networks: c.vpcs.min(c.internet_gateways),
            vcpus: c.vcpus,
        }
    }
}

/// vCPUs of `instance_type`.
#[must_use]
pub fn vcpus_of(instance_type: &str) -> u32 {
    crate::cloud::facts::limits::instance_type(instance_type).map_or(UNKNOWN_TYPE_VCPUS, |s| s.vcpus)
}

/// What one (account, Region) has handed out: defined with the metrics that show it (the API
/// floor, below the scheduler), filled in here.
pub use crate::api::metrics::Usage;

#[derive(Debug, Default)]
struct Pool {
    snapshots: HashMap<JobId, HashSet<VolumeId>>,
    per_volume: HashMap<VolumeId, usize>,
    copies: HashMap<JobId, usize>,
    /// Job -> the order it was granted or first asked (for FIFO among waiters).
    networks: HashSet<JobId>,
    network_waiters: BTreeMap<u64, JobId>,
    scanners: HashMap<JobId, HashMap<String, u32>>,
    snapshot_waiters: HashSet<JobId>,
    vcpu_waiters: HashSet<JobId>,
    refusals: u64,
}

impl Pool {
    fn pending(&self) -> usize {
        self.snapshots.values().map(HashSet::len).sum()
    }

    fn vcpus(&self) -> u32 {
        self.scanners.values().flat_map(HashMap::values).sum()
    }

    fn usage(&self) -> Usage {
        Usage {
            pending_snapshots: self.pending(),
            max_per_volume: self.per_volume.values().copied().max().unwrap_or(0),
            copies: self.copies.values().sum(),
            networks: self.networks.len(),
            vcpus: self.vcpus(),
            refusals: self.refusals,
        }
    }

    fn forget(&mut self, job: &JobId) {
        if let Some(vols) = self.snapshots.remove(job) {
            for v in vols {
                self.drop_volume(&v);
            }
        }
        self.copies.remove(job);
        self.networks.remove(job);
        self.network_waiters.retain(|_, j| j != job);
        self.scanners.remove(job);
        self.snapshot_waiters.remove(job);
        self.vcpu_waiters.remove(job);
    }

    fn drop_volume(&mut self, v: &VolumeId) {
        if let Some(n) = self.per_volume.get_mut(v) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_volume.remove(v);
            }
        }
    }
}

/// Whether a job holding `held` may take `n` more of a budget of `budget` with `total` handed
/// out, when `claimants` jobs hold or want it and `others_wait` says another job is waiting.
fn fair(total: usize, held: usize, n: usize, budget: usize, claimants: usize, others_wait: bool) -> bool {
    if total + n > budget {
        return false;
    }
    if !others_wait || held == 0 {
        return true;
    }
    let share = budget.div_ceil(claimants.max(1));
    held + n <= share
}

/// The dispatcher: budgets per (account, Region).
#[derive(Debug)]
pub struct Dispatcher {
    limits: Limits,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pools: HashMap<(AccountId, Region), Pool>,
    /// Where each job holds or waits (for `release_all`).
    jobs: HashMap<JobId, (AccountId, Region)>,
    seq: u64,
}

impl Dispatcher {
    #[must_use]
    pub fn new(limits: Limits) -> Dispatcher {
        Dispatcher { limits, inner: Mutex::new(Inner::default()) }
    }

    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn with_pool<R>(
        &self,
        job: &JobId,
        account: &AccountId,
        region: &Region,
        f: impl FnOnce(&mut Pool, u64) -> R,
    ) -> R {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.seq += 1;
        let seq = inner.seq;
        inner.jobs.insert(job.clone(), (account.clone(), region.clone()));
        let pool = inner.pools.entry((account.clone(), region.clone())).or_default();
        f(pool, seq)
    }

    /// What (account, Region) has handed out now.
    #[must_use]
    pub fn usage(&self, account: &AccountId, region: &Region) -> Usage {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.pools.get(&(account.clone(), region.clone())).map(Pool::usage).unwrap_or_default()
    }

    /// Every (account, Region) with its usage (metrics).
    #[must_use]
    pub fn all_usage(&self) -> Vec<(AccountId, Region, Usage)> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = inner.pools.iter().map(|((a, r), p)| (a.clone(), r.clone(), p.usage())).collect();
        v.sort_by(|x, y| (x.0.as_str(), x.1.as_str()).cmp(&(y.0.as_str(), y.1.as_str())));
        v
    }

    /// Record what a job resumed from the ledger already holds in the cloud (from its working
    /// document): its pending snapshots, its network, its launched scanners that have not
    /// reported. Forced: see the module's guarantees.
    pub fn adopt(&self, job: &JobId, account: &AccountId, region: &Region, doc: &JobDoc, instance_type: &str) {
        let vcpus = vcpus_of(instance_type);
        self.with_pool(job, account, region, |p, _| {
            let pending: HashSet<VolumeId> = doc
                .volumes()
                .filter(|(_, v)| v.in_play() && v.snapshot.is_some() && !v.snapshot_ready)
                .map(|(_, v)| v.volume.clone())
                .collect();
            let held = p.snapshots.entry(job.clone()).or_default();
            let new: Vec<VolumeId> = pending.iter().filter(|v| !held.contains(*v)).cloned().collect();
            held.extend(new.iter().cloned());
            for v in new {
                *p.per_volume.entry(v).or_default() += 1;
            }
            if doc.network.vpc.is_some() || doc.network.internet_gateway.is_some() {
                p.networks.insert(job.clone());
            }
            let scanners = p.scanners.entry(job.clone()).or_default();
            for s in doc.scanners().iter().filter(|s| s.instance.is_some() && !s.reported && s.error.is_none()) {
                scanners.insert(s.name.clone(), vcpus);
            }
        });
    }

    /// Take `n` concurrent copy slots for `job`; `false`: not now.
    pub fn take_copies(&self, job: &JobId, account: &AccountId, region: &Region, n: usize) -> bool {
        let budget = self.limits.concurrent_copies;
        self.with_pool(job, account, region, |p, _| {
            let total: usize = p.copies.values().sum();
            if total + n > budget {
                p.refusals += 1;
                return false;
            }
            *p.copies.entry(job.clone()).or_default() += n;
            true
        })
    }

    /// `n` of the job's copies completed.
    pub fn release_copies(&self, job: &JobId, account: &AccountId, region: &Region, n: usize) {
        self.with_pool(job, account, region, |p, _| {
            if let Some(c) = p.copies.get_mut(job) {
                *c = c.saturating_sub(n);
            }
        });
    }
}

impl crate::job::Budget for Dispatcher {
    fn max_snapshots_at_once(&self) -> usize {
        self.limits.pending_snapshots
    }

    fn take_snapshots(&self, job: &JobId, account: &AccountId, region: &Region, volumes: &[VolumeId]) -> bool {
        let limits = self.limits;
        self.with_pool(job, account, region, |p, _| {
            let held = p.snapshots.get(job).map_or(0, HashSet::len);
            let mut new: Vec<&VolumeId> =
                volumes.iter().filter(|v| !p.snapshots.get(job).is_some_and(|h| h.contains(*v))).collect();
            new.sort();
            new.dedup();
            if new.is_empty() {
                return true;
            }
            let per_volume_ok =
                new.iter().all(|v| p.per_volume.get(*v).copied().unwrap_or(0) < limits.snapshots_per_volume);
            let mut claimants: HashSet<&JobId> =
                p.snapshots.iter().filter(|(_, h)| !h.is_empty()).map(|(j, _)| j).collect();
            claimants.extend(p.snapshot_waiters.iter());
            claimants.insert(job);
            let others_wait = p.snapshot_waiters.iter().any(|j| j != job);
            let ok = per_volume_ok
                && fair(p.pending(), held, new.len(), limits.pending_snapshots, claimants.len(), others_wait);
            if !ok {
                p.snapshot_waiters.insert(job.clone());
                p.refusals += 1;
                return false;
            }
            p.snapshot_waiters.remove(job);
            let new: Vec<VolumeId> = new.into_iter().cloned().collect();
            for v in &new {
                *p.per_volume.entry(v.clone()).or_default() += 1;
            }
            p.snapshots.entry(job.clone()).or_default().extend(new);
            true
        })
    }

    fn pending_snapshots(&self, job: &JobId, account: &AccountId, region: &Region, pending: &[VolumeId]) {
        self.with_pool(job, account, region, |p, _| {
            let keep: HashSet<&VolumeId> = pending.iter().collect();
            let Some(held) = p.snapshots.get_mut(job) else { return };
            let gone: Vec<VolumeId> = held.iter().filter(|v| !keep.contains(v)).cloned().collect();
            for v in &gone {
                held.remove(v);
            }
            for v in &gone {
                p.drop_volume(v);
            }
        });
    }

    fn take_network(&self, job: &JobId, account: &AccountId, region: &Region) -> bool {
        let budget = self.limits.networks;
        self.with_pool(job, account, region, |p, seq| {
            if p.networks.contains(job) {
                return true;
            }
            let my_seq = match p.network_waiters.iter().find(|(_, j)| *j == job) {
                Some((s, _)) => *s,
                None => {
                    p.network_waiters.insert(seq, job.clone());
                    seq
                }
            };
            let ahead = p.network_waiters.range(..my_seq).count();
            let free = budget.saturating_sub(p.networks.len());
            if free > ahead {
                p.network_waiters.remove(&my_seq);
                p.networks.insert(job.clone());
                true
            } else {
                p.refusals += 1;
                false
            }
        })
    }

    fn take_scanner(
        &self,
        job: &JobId,
        account: &AccountId,
        region: &Region,
        scanner: &str,
        instance_type: &str,
    ) -> bool {
        let want = vcpus_of(instance_type);
        let budget = self.limits.vcpus;
        self.with_pool(job, account, region, |p, _| {
            if p.scanners.get(job).is_some_and(|s| s.contains_key(scanner)) {
                return true;
            }
            if let Some(budget) = budget {
                let held: u32 = p.scanners.get(job).map_or(0, |s| s.values().sum());
                let mut claimants: HashSet<&JobId> =
                    p.scanners.iter().filter(|(_, s)| !s.is_empty()).map(|(j, _)| j).collect();
                claimants.extend(p.vcpu_waiters.iter());
                claimants.insert(job);
                let others_wait = p.vcpu_waiters.iter().any(|j| j != job);
                let ok = fair(
                    p.vcpus() as usize,
                    held as usize,
                    want as usize,
                    budget as usize,
                    claimants.len(),
                    others_wait,
                );
                if !ok {
                    p.vcpu_waiters.insert(job.clone());
                    p.refusals += 1;
                    return false;
                }
            }
            p.vcpu_waiters.remove(job);
            p.scanners.entry(job.clone()).or_default().insert(scanner.to_owned(), want);
            true
        })
    }

    fn scanners_alive(&self, job: &JobId, account: &AccountId, region: &Region, alive: &[String]) {
        self.with_pool(job, account, region, |p, _| {
            if let Some(s) = p.scanners.get_mut(job) {
                s.retain(|name, _| alive.contains(name));
            }
        });
    }

    fn release_all(&self, job: &JobId) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = inner.jobs.remove(job)
            && let Some(p) = inner.pools.get_mut(&key)
        {
            p.forget(job);
        }
    }
}

/// Who a job slot is for: round-robin first by account, then by schedule within the account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotKey {
    pub account: String,
    pub schedule: String,
}

#[derive(Debug, Default)]
struct SlotState {
    free: usize,
    /// Accounts in round-robin order, each with its schedules in round-robin order.
    accounts: VecDeque<String>,
    schedules: HashMap<String, VecDeque<String>>,
    waiting: HashMap<SlotKey, VecDeque<tokio::sync::oneshot::Sender<SlotPermit>>>,
}

/// The process's job slots (`limits.max_concurrent_jobs`), handed out fairly.
#[derive(Debug, Clone)]
pub struct JobSlots {
    state: Arc<Mutex<SlotState>>,
    total: usize,
}

/// A held job slot; released on drop (to the next waiter in round-robin order).
#[derive(Debug)]
pub struct SlotPermit {
    state: Option<Arc<Mutex<SlotState>>>,
}

impl JobSlots {
    #[must_use]
    pub fn new(n: usize) -> JobSlots {
        JobSlots { state: Arc::new(Mutex::new(SlotState { free: n, ..SlotState::default() })), total: n }
    }

    /// Slots in use now.
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.total - self.state.lock().unwrap_or_else(PoisonError::into_inner).free
    }

    /// Jobs waiting for a slot.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).waiting.values().map(VecDeque::len).sum()
    }

    /// Wait for a slot for `key`.
    pub async fn acquire(&self, key: SlotKey) -> SlotPermit {
        let rx = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let queued = s.waiting.values().any(|q| !q.is_empty());
            if s.free > 0 && !queued {
                s.free -= 1;
                return SlotPermit { state: Some(Arc::clone(&self.state)) };
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            if !s.accounts.contains(&key.account) {
                s.accounts.push_back(key.account.clone());
            }
            let scheds = s.schedules.entry(key.account.clone()).or_default();
            if !scheds.contains(&key.schedule) {
                scheds.push_back(key.schedule.clone());
            }
            s.waiting.entry(key).or_default().push_back(tx);
            rx
        };
        match rx.await {
            Ok(p) => p,
            // The sender side is only dropped with the slots themselves; no slot then.
            Err(_) => SlotPermit { state: None },
        }
    }
}

impl SlotState {
    /// The next waiter in round-robin order, removing empty queues.
    fn next_waiter(&mut self) -> Option<tokio::sync::oneshot::Sender<SlotPermit>> {
        for _ in 0..self.accounts.len() {
            let account = self.accounts.pop_front()?;
            let mut found = None;
            if let Some(scheds) = self.schedules.get_mut(&account) {
                for _ in 0..scheds.len() {
                    let Some(schedule) = scheds.pop_front() else { break };
                    let key = SlotKey { account: account.clone(), schedule: schedule.clone() };
                    let tx = self.waiting.get_mut(&key).and_then(VecDeque::pop_front);
                    if self.waiting.get(&key).is_some_and(|q| !q.is_empty()) {
                        scheds.push_back(schedule);
                    } else {
                        self.waiting.remove(&key);
                    }
                    if tx.is_some() {
                        found = tx;
                        break;
                    }
                }
            }
            if self.schedules.get(&account).is_some_and(|s| !s.is_empty()) {
                self.accounts.push_back(account);
            } else {
                self.schedules.remove(&account);
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else { return };
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match s.next_waiter() {
                Some(tx) => {
                    let permit = SlotPermit { state: Some(Arc::clone(&state)) };
                    match tx.send(permit) {
                        Ok(()) => return,
                        // The waiter went away: its permit comes back here, but without
                        // re-entering this drop (its state is taken first).
                        Err(mut p) => {
                            p.state = None;
                        }
                    }
                }
                None => {
                    s.free += 1;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Budget;

    fn ids() -> (AccountId, Region) {
        ("111122223333".parse().expect("account"), "us-east-1".parse().expect("region"))
    }

    fn job(n: u32) -> JobId {
        format!("20260101-{n:08x}").parse().expect("job")
    }

    fn vol(n: u32) -> VolumeId {
        format!("vol-{n:08x}").parse().expect("volume")
    }

    #[test]
    fn fair_share_when_another_job_waits() {
        let (a, r) = ids();
        let d = Dispatcher::new(Limits {
            pending_snapshots: 10,
            snapshots_per_volume: 5,
            concurrent_copies: 20,
            networks: 1,
            vcpus: Some(8),
        });
        let (j1, j2) = (job(1), job(2));
        for i in 0..6 {
            assert!(d.take_snapshots(&j1, &a, &r, &[vol(i)]));
        }
        // j2 asks for 5: only 4 are free.
        assert!(!d.take_snapshots(&j2, &a, &r, &[vol(10), vol(11), vol(12), vol(13), vol(14)]));
        // j1 frees two; j1 may not take more than its share (5) while j2 waits: it has 4, may take 1.
        d.pending_snapshots(&j1, &a, &r, &[vol(0), vol(1), vol(2), vol(3)]);
        assert!(!d.take_snapshots(&j1, &a, &r, &[vol(20), vol(21)]));
        assert!(d.take_snapshots(&j2, &a, &r, &[vol(10), vol(11), vol(12), vol(13), vol(14)]));
        assert_eq!(d.usage(&a, &r).pending_snapshots, 9);
        // Network: first come, first served; released with the job.
        assert!(d.take_network(&j1, &a, &r));
        assert!(!d.take_network(&j2, &a, &r));
        d.release_all(&j1);
        assert!(d.take_network(&j2, &a, &r));
        assert_eq!(d.usage(&a, &r).pending_snapshots, 5);
        // vCPUs: m5.xlarge has 4.
        assert!(d.take_scanner(&j2, &a, &r, "s0", "m5.xlarge"));
        assert!(d.take_scanner(&j2, &a, &r, "s1", "m5.xlarge"));
        assert!(!d.take_scanner(&j2, &a, &r, "s2", "m5.xlarge"));
        d.scanners_alive(&j2, &a, &r, &["s1".to_owned()]);
        assert!(d.take_scanner(&j2, &a, &r, "s2", "m5.xlarge"));
        assert_eq!(d.usage(&a, &r).vcpus, 8);
    }

    #[tokio::test]
    async fn job_slots_go_round_robin_between_accounts() {
        let slots = JobSlots::new(1);
        let first = slots.acquire(SlotKey { account: "a".into(), schedule: "s".into() }).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (account, n) in [("a", 0), ("a", 1), ("a", 2), ("b", 0)] {
            let (slots, tx) = (slots.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let p = slots.acquire(SlotKey { account: account.into(), schedule: "s".into() }).await;
                let _ = tx.send(format!("{account}{n}"));
                tokio::task::yield_now().await;
                drop(p);
            }));
            tokio::task::yield_now().await;
        }
        drop(first);
        for t in tasks {
            t.await.expect("task");
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some(s) = rx.recv().await {
            order.push(s);
        }
        assert_eq!(order, ["a0", "b0", "a1", "a2"]);
        assert_eq!(slots.in_use(), 0);
    }
}
