//! What happens with time alone: snapshots go `pending -> completed`, instances `pending ->
//! running`, `stopping -> stopped`, `shutting-down -> terminated` (then leave Describe results
//! after about an hour), applied lazily before every call from the deadlines the state stores.
//!
//! Injected faults ([`super::faults`]) end here: a failing snapshot goes `error` instead of
//! `completed`, a `never-boots` instance goes from `pending` straight to `terminated` with its state
//! reason. The eventual-consistency records past the lag are forgotten ([`super::consistency`]).
//!
//! Termination releases what the instance held (EC2 User Guide, "Terminate instances"): volumes
//! with `DeleteOnTermination` are deleted, the others detached (`available`), and the instance's
//! network interfaces deleted.
//!
//! # The index
//!
//! So that a call costs what it touches, not the size of the world, each Region keeps an [`Index`]
//! next to its state ([`RegionState::index`]): derived data, never saved, rebuilt from the state
//! whenever it is missing: a world just built, loaded or reloaded from the data directory, or
//! changed by [`super::SimCloud::setup`], which drops the index of each Region it changes (of
//! every Region when it hands out the whole world: [`invalidate`]). It holds
//!
//! - the **due queue**: `(due ms, item)` for every snapshot still `pending` (due at its
//!   `complete_ms`) and every instance in a timed state (`pending`, `stopping`, `shutting-down`:
//!   their `until_ms`; `terminated`: when it leaves Describe). [`advance`] pops only the entries
//!   due, so it costs the changes it applies. An entry can be stale (an instance terminated while
//!   `pending` keeps its boot entry): popping one re-reads the item and applies whatever is due for
//!   it *now*, exactly the change the old full scan applied, so a stale entry is harmless;
//! - the **pending snapshots** with their volume and whether they are copies (the quotas of
//!   [`super::snapshots`]), the **client tokens** of `RunInstances` (idempotency) and the
//!   **running scanners** (instances with user data, for the hypervisor).
//!
//! Whatever changes an indexed item outside this module says so: the call path re-indexes what a
//! call touched ([`touched`]: the ids it minted and the ids its input names), the hypervisor's
//! power-off re-indexes its instance ([`reindex_instance`]). In debug builds every [`advance`] checks
//! the index of a small Region against a rebuilt one ([`check`]), so a new operation that forgets
//! to re-index fails the tests instead of leaving a snapshot pending forever.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::faults::{InstanceFault, LAUNCH_FAILURE_CODE, LAUNCH_FAILURE_MESSAGE};
use super::limits::Latencies;
use super::state::{Life, RegionState, SnapState, World};
use crate::cloud::Call;
use crate::cloud::ids::{AccountId, InstanceId, Region, SnapshotId, VolumeId};

/// An item of the due queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Due {
    Snapshot(SnapshotId),
    Instance(InstanceId),
}

/// One Region's derived index (module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    due: BTreeSet<(u64, Due)>,
    /// Pending snapshots: (volume, is a copy).
    pending: BTreeMap<SnapshotId, (Option<VolumeId>, bool)>,
    pending_copies: usize,
    pending_per_volume: HashMap<VolumeId, usize>,
    /// `ClientToken` → the instance launched with it (the first by id, as a scan finds it).
    client_tokens: HashMap<String, InstanceId>,
    /// `running` instances with user data (scanners the hypervisor boots).
    running_scanners: BTreeSet<InstanceId>,
}

impl Index {
    /// (pending snapshots, of which copies).
    #[must_use]
    pub fn pending(&self) -> (usize, usize) {
        (self.pending.len(), self.pending_copies)
    }

    /// Pending snapshots of `volume`.
    #[must_use]
    pub fn pending_of(&self, volume: &VolumeId) -> usize {
        self.pending_per_volume.get(volume).copied().unwrap_or(0)
    }

    /// The instance launched with `token`, if it still exists.
    #[must_use]
    pub fn client_token(&self, token: &str) -> Option<&InstanceId> {
        self.client_tokens.get(token)
    }

    /// The running scanners.
    pub fn running_scanners(&self) -> impl Iterator<Item = &InstanceId> {
        self.running_scanners.iter()
    }

    fn forget_pending(&mut self, id: &SnapshotId) {
        let Some((volume, copy)) = self.pending.remove(id) else { return };
        if copy {
            self.pending_copies = self.pending_copies.saturating_sub(1);
        }
        if let Some(v) = volume
            && let Some(n) = self.pending_per_volume.get_mut(&v)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pending_per_volume.remove(&v);
            }
        }
    }
}

/// When an instance's current state ends by itself, if it does.
fn instance_due(life: Life, lat: &Latencies) -> Option<u64> {
    match life {
        Life::Pending { until_ms } | Life::Stopping { until_ms } | Life::ShuttingDown { until_ms } => Some(until_ms),
        Life::Terminated { at_ms } => Some(at_ms.saturating_add(lat.terminated_visible_ms)),
        Life::Running | Life::Stopped => None,
    }
}

/// Bring the index's view of snapshot `id` up to date with the state (it may be new, changed,
/// or gone). No-op while the Region has no index.
fn sync_snapshot(r: &mut RegionState, id: &SnapshotId) {
    let now = r
        .snapshots
        .get(id)
        .filter(|s| s.state == SnapState::Pending)
        .map(|s| (s.volume_id.clone(), s.copy, s.complete_ms));
    let Some(ix) = r.index.as_deref_mut() else { return };
    ix.forget_pending(id);
    if let Some((volume, copy, due)) = now {
        if copy {
            ix.pending_copies += 1;
        }
        if let Some(v) = &volume {
            *ix.pending_per_volume.entry(v.clone()).or_insert(0) += 1;
        }
        ix.pending.insert(id.clone(), (volume, copy));
        ix.due.insert((due, Due::Snapshot(id.clone())));
    }
}

/// The same for instance `id`. A removed instance must be forgotten with [`remove_instance`],
/// which knows its client token.
fn sync_instance(r: &mut RegionState, id: &InstanceId, lat: &Latencies) {
    let Some(ix) = r.index.as_deref_mut() else { return };
    let Some(i) = r.instances.get(id) else {
        ix.running_scanners.remove(id);
        return;
    };
    if let Some(token) = &i.client_token {
        ix.client_tokens.entry(token.clone()).or_insert_with(|| id.clone());
    }
    if i.life == Life::Running && i.user_data_base64.is_some() {
        ix.running_scanners.insert(id.clone());
    } else {
        ix.running_scanners.remove(id);
    }
    if let Some(due) = instance_due(i.life, lat) {
        ix.due.insert((due, Due::Instance(id.clone())));
    }
}

fn remove_instance(r: &mut RegionState, id: &InstanceId) {
    let Some(i) = r.instances.remove(id) else { return };
    let Some(ix) = r.index.as_deref_mut() else { return };
    ix.running_scanners.remove(id);
    if let Some(token) = i.client_token
        && ix.client_tokens.get(&token) == Some(id)
    {
        ix.client_tokens.remove(&token);
        // Another instance with the same token (only a setup can make one) takes its place.
        let next = r.instances.iter().find(|(_, o)| o.client_token.as_deref() == Some(token.as_str()));
        if let Some((other, _)) = next {
            ix.client_tokens.insert(token, other.clone());
        }
    }
}

/// The index of `r` built from its state.
#[must_use]
pub fn build(r: &RegionState, lat: &Latencies) -> Index {
    let mut ix = Index::default();
    for (id, s) in &r.snapshots {
        if s.state == SnapState::Pending {
            if s.copy {
                ix.pending_copies += 1;
            }
            if let Some(v) = &s.volume_id {
                *ix.pending_per_volume.entry(v.clone()).or_insert(0) += 1;
            }
            ix.pending.insert(id.clone(), (s.volume_id.clone(), s.copy));
            ix.due.insert((s.complete_ms, Due::Snapshot(id.clone())));
        }
    }
    for (id, i) in &r.instances {
        if let Some(token) = &i.client_token {
            ix.client_tokens.entry(token.clone()).or_insert_with(|| id.clone());
        }
        if i.life == Life::Running && i.user_data_base64.is_some() {
            ix.running_scanners.insert(id.clone());
        }
        if let Some(due) = instance_due(i.life, lat) {
            ix.due.insert((due, Due::Instance(id.clone())));
        }
    }
    ix
}

/// Whether the index of `r` agrees with its state: everything a rebuilt index holds, the current
/// one holds (the due queue may hold more: stale entries). `Ok` for a Region without an index.
pub fn check(r: &RegionState, lat: &Latencies) -> Result<(), String> {
    let Some(ix) = r.index.as_deref() else { return Ok(()) };
    let fresh = build(r, lat);
    if let Some(missing) = fresh.due.iter().find(|e| !ix.due.contains(e)) {
        return Err(format!("due queue lacks {missing:?}"));
    }
    if (&fresh.pending, fresh.pending_copies, &fresh.pending_per_volume)
        != (&ix.pending, ix.pending_copies, &ix.pending_per_volume)
    {
        return Err(format!("pending snapshots {:?}, the state has {:?}", ix.pending, fresh.pending));
    }
    if fresh.client_tokens != ix.client_tokens {
        return Err(format!("client tokens {:?}, the state has {:?}", ix.client_tokens, fresh.client_tokens));
    }
    if fresh.running_scanners != ix.running_scanners {
        return Err(format!("running scanners {:?}, the state has {:?}", ix.running_scanners, fresh.running_scanners));
    }
    Ok(())
}

/// Drop every Region's index (after a change the index did not see); rebuilt on next use.
pub fn invalidate(world: &mut World) {
    for account in world.accounts.values_mut() {
        for region in account.regions.values_mut() {
            region.index = None;
        }
    }
}

/// Regions up to this many instances and snapshots have their index checked in debug builds at
/// every [`advance`] (our choice: the test worlds, not the benchmarks).
pub const DEBUG_CHECK_MAX_ITEMS: usize = 500;

/// Apply every change due at `now_ms`. True if anything changed.
pub fn advance(world: &mut World, now_ms: u64) -> bool {
    let World { accounts, settings, .. } = world;
    let lat = &settings.latencies;
    for r in accounts.values_mut().flat_map(|a| a.regions.values_mut()) {
        if r.index.is_none() {
            r.index = Some(Box::new(build(r, lat)));
        }
    }
    #[cfg(debug_assertions)]
    debug_check(world);
    let World { accounts, settings, .. } = world;
    let lat = &settings.latencies;
    let mut changed = false;
    for r in accounts.values_mut().flat_map(|a| a.regions.values_mut()) {
        changed |= advance_region(r, now_ms, lat);
    }
    // CloudTrail's deliveries that fell due ([`super::trail`]).
    changed |= super::trail::deliver(world, now_ms);
    changed
}

/// Panic if a small Region's index disagrees with its state (module documentation).
#[cfg(debug_assertions)]
fn debug_check(world: &World) {
    for (account, a) in &world.accounts {
        for (region, r) in &a.regions {
            if r.instances.len() + r.snapshots.len() > DEBUG_CHECK_MAX_ITEMS {
                continue;
            }
            if let Err(e) = check(r, &world.settings.latencies) {
                panic!("the simulated Region {account}/{region} changed without re-indexing: {e}");
            }
        }
    }
}

fn advance_region(r: &mut RegionState, now_ms: u64, lat: &Latencies) -> bool {
    let mut changed = false;
    while let Some(ix) = r.index.as_deref_mut()
        && ix.due.first().is_some_and(|(due, _)| *due <= now_ms)
        && let Some((_, item)) = ix.due.pop_first()
    {
        changed |= match item {
            Due::Snapshot(id) => settle_snapshot(r, &id, now_ms),
            Due::Instance(id) => settle_instance(r, &id, now_ms, lat),
        };
    }
    changed |= r.recent.prune(now_ms, lat.describe_lag_ms);
    changed
}

/// Complete (or fail) snapshot `id` if it is pending and due.
fn settle_snapshot(r: &mut RegionState, id: &SnapshotId, now_ms: u64) -> bool {
    let mut changed = false;
    if let Some(s) = r.snapshots.get_mut(id)
        && s.state == SnapState::Pending
        && now_ms >= s.complete_ms
    {
        s.state = if s.fails { SnapState::Error } else { SnapState::Completed };
        changed = true;
    }
    sync_snapshot(r, id);
    changed
}

/// Apply instance `id`'s due state change, release what it held if it terminated, and remove it
/// once its terminated hour is over.
fn settle_instance(r: &mut RegionState, id: &InstanceId, now_ms: u64, lat: &Latencies) -> bool {
    let Some(i) = r.instances.get_mut(id) else {
        sync_instance(r, id, lat);
        return false;
    };
    let mut changed = false;
    let mut terminated = false;
    let next = match i.life {
        Life::Pending { until_ms } if now_ms >= until_ms && i.fault == Some(InstanceFault::NeverBoots) => {
            i.state_reason = Some((LAUNCH_FAILURE_CODE.into(), LAUNCH_FAILURE_MESSAGE.into()));
            terminated = true;
            Some(Life::Terminated { at_ms: until_ms })
        }
        Life::Pending { until_ms } if now_ms >= until_ms => Some(Life::Running),
        Life::Stopping { until_ms } if now_ms >= until_ms => Some(Life::Stopped),
        Life::ShuttingDown { until_ms } if now_ms >= until_ms => {
            terminated = true;
            Some(Life::Terminated { at_ms: until_ms })
        }
        Life::Pending { .. }
        | Life::Stopping { .. }
        | Life::ShuttingDown { .. }
        | Life::Running
        | Life::Stopped
        | Life::Terminated { .. } => None,
    };
    if let Some(life) = next {
        i.life = life;
        changed = true;
    }
    let gone = match i.life {
        Life::Terminated { at_ms } => now_ms >= at_ms.saturating_add(lat.terminated_visible_ms),
        Life::Pending { .. } | Life::Running | Life::Stopping { .. } | Life::Stopped | Life::ShuttingDown { .. } => {
            false
        }
    };
    if terminated {
        release(r, id);
    }
    if gone {
        remove_instance(r, id);
        changed = true;
    } else {
        sync_instance(r, id, lat);
    }
    changed
}

/// Re-index what `call` may have changed in `account`'s `region`: the instances and snapshots
/// it created (`minted`, [`super::state::Prng::take_minted`]) and those its input names whose
/// timed state it can change. Every operation is listed, so a new one needs a decision here.
pub fn touched(world: &mut World, account: &AccountId, region: &Region, call: Call<'_>, minted: &[String]) {
    let World { accounts, settings, .. } = world;
    let lat = &settings.latencies;
    let Some(r) = accounts.get_mut(account).and_then(|a| a.regions.get_mut(region)) else { return };
    if r.index.is_none() {
        return;
    }
    for id in minted {
        if let Ok(i) = id.parse::<InstanceId>() {
            sync_instance(r, &i, lat);
        } else if let Ok(s) = id.parse::<SnapshotId>() {
            sync_snapshot(r, &s);
        }
    }
    match call {
        Call::TerminateInstances(i) => {
            for t in &i.instances {
                sync_instance(r, &t.id, lat);
            }
        }
        Call::StopInstances(i) => {
            for t in &i.instances {
                sync_instance(r, &t.id, lat);
            }
        }
        Call::DeleteSnapshot(i) => sync_snapshot(r, &i.snapshot.id),
        // Creates (their ids are minted), reads, and changes to what the index does not hold.
        Call::DescribeRegions(_)
        | Call::DescribeAvailabilityZones(_)
        | Call::DescribeInstanceTypeOfferings(_)
        | Call::GetCallerIdentity(_)
        | Call::GetUser(_)
        | Call::DescribeInstances(_)
        | Call::DescribeVolumes(_)
        | Call::CreateSnapshots(_)
        | Call::CreateSnapshot(_)
        | Call::DescribeSnapshots(_)
        | Call::CopySnapshot(_)
        | Call::ModifySnapshotAttribute(_)
        | Call::CreateVpc(_)
        | Call::CreateSubnet(_)
        | Call::ModifySubnetAttribute(_)
        | Call::CreateInternetGateway(_)
        | Call::AttachInternetGateway(_)
        | Call::DetachInternetGateway(_)
        | Call::DescribeRouteTables(_)
        | Call::CreateRoute(_)
        | Call::CreateSecurityGroup(_)
        | Call::AuthorizeSecurityGroupEgress(_)
        | Call::CreateVpcEndpoint(_)
        | Call::DescribeVpcs(_)
        | Call::DescribeSubnets(_)
        | Call::DescribeSecurityGroups(_)
        | Call::DescribeInternetGateways(_)
        | Call::DescribeVpcEndpoints(_)
        | Call::RunInstances(_)
        | Call::DescribeImages(_)
        | Call::CopyImage(_)
        | Call::DeleteVpcEndpoints(_)
        | Call::DeleteSecurityGroup(_)
        | Call::DeleteSubnet(_)
        | Call::DeleteInternetGateway(_)
        | Call::DeleteVpc(_)
        | Call::DescribeKey(_)
        | Call::CreateGrant(_)
        | Call::GetQueueUrl(_)
        | Call::ReceiveMessage(_)
        | Call::GetObject(_)
        | Call::ListGrants(_)
        | Call::RevokeGrant(_) => {}
    }
}

/// Re-index instance `id` of `account`'s `region` after a change outside the API (the
/// hypervisor's power-off).
pub fn reindex_instance(world: &mut World, account: &AccountId, region: &Region, id: &InstanceId) {
    let World { accounts, settings, .. } = world;
    if let Some(r) = accounts.get_mut(account).and_then(|a| a.regions.get_mut(region)) {
        sync_instance(r, id, &settings.latencies);
    }
}

/// Free what a terminated instance held.
fn release(r: &mut RegionState, id: &InstanceId) {
    let Some(instance) = r.instances.get_mut(id) else { return };
    let attachments = std::mem::take(&mut instance.attachments);
    let enis = std::mem::take(&mut instance.network_interfaces);
    for a in attachments {
        if a.delete_on_termination {
            r.volumes.remove(&a.volume_id);
        } else if let Some(v) = r.volumes.get_mut(&a.volume_id) {
            v.attached = None;
        }
    }
    for e in enis {
        r.network_interfaces.remove(&e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::sim::fleet::Fleet;
    use crate::cloud::sim::state::{Attachment, Instance, Prng, ShutdownBehavior, Snapshot, Volume};
    use crate::cloud::tags::Tags;

    /// The full scan `advance` did before the index, kept as the reference.
    fn advance_by_scan(world: &mut World, now_ms: u64) -> bool {
        let lat = world.settings.latencies.clone();
        let mut changed = false;
        for r in world.accounts.values_mut().flat_map(|a| a.regions.values_mut()) {
            for s in r.snapshots.values_mut() {
                if s.state == SnapState::Pending && now_ms >= s.complete_ms {
                    s.state = if s.fails { SnapState::Error } else { SnapState::Completed };
                    changed = true;
                }
            }
            let mut terminated = Vec::new();
            for (id, i) in &mut r.instances {
                let next = match i.life {
                    Life::Pending { until_ms } if now_ms >= until_ms && i.fault == Some(InstanceFault::NeverBoots) => {
                        i.state_reason = Some((LAUNCH_FAILURE_CODE.into(), LAUNCH_FAILURE_MESSAGE.into()));
                        terminated.push(id.clone());
                        Some(Life::Terminated { at_ms: until_ms })
                    }
                    Life::Pending { until_ms } if now_ms >= until_ms => Some(Life::Running),
                    Life::Stopping { until_ms } if now_ms >= until_ms => Some(Life::Stopped),
                    Life::ShuttingDown { until_ms } if now_ms >= until_ms => {
                        terminated.push(id.clone());
                        Some(Life::Terminated { at_ms: until_ms })
                    }
                    _ => None,
                };
                if let Some(life) = next {
                    i.life = life;
                    changed = true;
                }
            }
            for id in terminated {
                release(r, &id);
            }
            let before = r.instances.len();
            r.instances.retain(|_, i| match i.life {
                Life::Terminated { at_ms } => now_ms < at_ms.saturating_add(lat.terminated_visible_ms),
                _ => true,
            });
            changed |= r.recent.prune(now_ms, lat.describe_lag_ms);
            changed |= r.instances.len() != before;
        }
        changed
    }

    fn region(w: &mut World) -> &mut RegionState {
        w.accounts.values_mut().flat_map(|a| a.regions.values_mut()).next().expect("a region")
    }

    fn snapshot(p: &mut Prng, now: u64, volumes: &[VolumeId]) -> Snapshot {
        let volume = volumes[(p.next_u64() % volumes.len() as u64) as usize].clone();
        Snapshot {
            volume_id: Some(volume),
            volume_size_gib: 8,
            used_gib: 4,
            state: if p.next_u64().is_multiple_of(5) { SnapState::Completed } else { SnapState::Pending },
            started_ms: now,
            complete_ms: now + p.next_u64() % 600_000,
            encrypted: false,
            kms_key_id: None,
            owner: "111122223333".parse().expect("account"),
            description: String::new(),
            copy: p.next_u64().is_multiple_of(4),
            shared_with: Default::default(),
            backing: None,
            tags: Tags::new(),
            fails: p.next_u64().is_multiple_of(7),
        }
    }

    fn instance(p: &mut Prng, now: u64, volume: VolumeId) -> Instance {
        let until_ms = now + p.next_u64() % 120_000;
        let life = match p.next_u64() % 6 {
            0 => Life::Pending { until_ms },
            1 => Life::Running,
            2 => Life::Stopping { until_ms },
            3 => Life::Stopped,
            4 => Life::ShuttingDown { until_ms },
            _ => Life::Terminated { at_ms: now.saturating_sub(p.next_u64() % 4_000_000) },
        };
        Instance {
            instance_type: "m5.xlarge".into(),
            availability_zone: "us-east-1a".into(),
            subnet: None,
            vpc: None,
            security_groups: Vec::new(),
            image: None,
            root_device_name: Some("/dev/xvda".into()),
            attachments: vec![Attachment {
                device_name: "/dev/xvda".into(),
                volume_id: volume,
                delete_on_termination: p.next_u64().is_multiple_of(2),
            }],
            network_interfaces: Vec::new(),
            life,
            launched_ms: now,
            public_ip: false,
            user_data_base64: p.next_u64().is_multiple_of(2).then(String::new),
            http_tokens_required: true,
            shutdown_behavior: ShutdownBehavior::Terminate,
            // Unique, as RunInstances keeps them (a repeat returns the first launch).
            client_token: p.next_u64().is_multiple_of(2).then(|| format!("token-{}", p.next_u64())),
            tags: Tags::new(),
            fault: p.next_u64().is_multiple_of(5).then_some(InstanceFault::NeverBoots),
            state_reason: None,
        }
    }

    fn volume() -> Volume {
        Volume {
            size_gib: 8,
            used_gib: 4,
            volume_type: "gp3".into(),
            availability_zone: "us-east-1a".into(),
            encrypted: false,
            kms_key_id: None,
            snapshot_id: None,
            attached: None,
            backing: None,
            tags: Tags::new(),
        }
    }

    /// Random creates, terminations, stops and deletes between random advances of the clock: the
    /// indexed world and the fully scanned one stay identical, and the index stays true to its
    /// world.
    #[test]
    fn the_index_applies_what_the_full_scan_applied() {
        let account = "111122223333".parse().expect("account");
        let fleet = Fleet::empty(account, vec!["us-east-1".parse().expect("region")]);
        for seed in 0..8 {
            let mut indexed = fleet.build().expect("world");
            let mut scanned = indexed.clone();
            let lat = indexed.settings.latencies.clone();
            let mut p = Prng::new(seed);
            let mut now = 1_000_000;
            let volumes: Vec<VolumeId> = (0..6).map(|_| p.ec2_id("vol").parse().expect("id")).collect();
            advance(&mut indexed, now);
            advance_by_scan(&mut scanned, now);
            for step in 0..200 {
                match p.next_u64() % 6 {
                    0 | 1 => {
                        let id: SnapshotId = p.ec2_id("snap").parse().expect("id");
                        let s = snapshot(&mut p, now, &volumes);
                        for w in [&mut indexed, &mut scanned] {
                            let r = region(w);
                            r.snapshots.insert(id.clone(), s.clone());
                            sync_snapshot(r, &id);
                        }
                    }
                    2 => {
                        let id: InstanceId = p.ec2_id("i").parse().expect("id");
                        let vol: VolumeId = p.ec2_id("vol").parse().expect("id");
                        let i = instance(&mut p, now, vol.clone());
                        for w in [&mut indexed, &mut scanned] {
                            let r = region(w);
                            r.volumes.insert(vol.clone(), volume());
                            r.instances.insert(id.clone(), i.clone());
                            sync_instance(r, &id, &lat);
                        }
                    }
                    3 => {
                        // Terminate (or stop) one instance, as the API does.
                        let pick = p.next_u64();
                        let stop = pick.is_multiple_of(3);
                        for w in [&mut indexed, &mut scanned] {
                            let r = region(w);
                            let Some(id) =
                                r.instances.keys().nth((pick % 97) as usize % r.instances.len().max(1)).cloned()
                            else {
                                continue;
                            };
                            if let Some(i) = r.instances.get_mut(&id) {
                                i.life = match (i.life, stop) {
                                    (Life::Running, true) => Life::Stopping { until_ms: now + lat.instance_stop_ms },
                                    (Life::Terminated { .. } | Life::ShuttingDown { .. }, _) | (_, true) => i.life,
                                    (_, false) => Life::ShuttingDown { until_ms: now + lat.instance_shutdown_ms },
                                };
                            }
                            sync_instance(r, &id, &lat);
                        }
                    }
                    4 => {
                        let pick = p.next_u64();
                        for w in [&mut indexed, &mut scanned] {
                            let r = region(w);
                            let n = r.snapshots.len().max(1);
                            let Some(id) = r.snapshots.keys().nth((pick % n as u64) as usize).cloned() else {
                                continue;
                            };
                            r.snapshots.remove(&id);
                            sync_snapshot(r, &id);
                        }
                    }
                    _ => {
                        // Mostly short steps, sometimes half an hour (terminated instances leave).
                        now += if p.next_u64().is_multiple_of(8) { 1_800_000 } else { p.next_u64() % 200_000 };
                        let a = advance(&mut indexed, now);
                        let b = advance_by_scan(&mut scanned, now);
                        assert_eq!(a, b, "seed {seed} step {step}: changed");
                        assert_eq!(
                            serde_json::to_value(&indexed).expect("json"),
                            serde_json::to_value(&scanned).expect("json"),
                            "seed {seed} step {step}"
                        );
                    }
                }
                let r = region(&mut indexed);
                assert!(r.index.is_some());
                if let Err(e) = check(r, &lat) {
                    panic!("seed {seed} step {step}: {e}");
                }
                let ix = r.index.as_deref().expect("index");
                assert_eq!(ix.pending(), {
                    let r = region(&mut scanned);
                    r.index = None;
                    r.pending_snapshots()
                });
            }
        }
    }

    /// A reloaded world (no index) gets one on the next advance, equal to the one it had.
    #[test]
    fn a_loaded_world_rebuilds_its_index() {
        let account = "111122223333".parse().expect("account");
        let mut w = Fleet::empty(account, vec!["us-east-1".parse().expect("region")]).build().expect("world");
        let mut p = Prng::new(3);
        let volumes: Vec<VolumeId> = (0..3).map(|_| p.ec2_id("vol").parse().expect("id")).collect();
        advance(&mut w, 0);
        for _ in 0..20 {
            let id: SnapshotId = p.ec2_id("snap").parse().expect("id");
            let s = snapshot(&mut p, 10, &volumes);
            let r = region(&mut w);
            r.snapshots.insert(id.clone(), s);
            sync_snapshot(r, &id);
        }
        let before = region(&mut w).index.clone();
        let mut loaded: World = serde_json::from_value(serde_json::to_value(&w).expect("json")).expect("world");
        assert!(region(&mut loaded).index.is_none(), "the index is not saved");
        advance(&mut loaded, 10);
        assert_eq!(region(&mut loaded).index, before);
    }
}
