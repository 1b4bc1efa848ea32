//! Eventual consistency of the EC2 API (AWS, "Eventual consistency in the Amazon EC2 API", EC2
//! Developer Guide): "if you run a command to modify or describe the resource that you just
//! created, its ID might not have propagated throughout the system, and you will get an error
//! responding that the resource does not exist".
//!
//! The sim models it with one lag, [`Latencies::describe_lag_ms`](super::limits::Latencies) on
//! the tokio clock (0 by default: strongly consistent, as the conformance suite expects):
//!
//! - a resource created by a call at `t` is missing from Describe results until `t + lag`, and a
//!   Describe, or any call, that names it by id fails with its kind's `Invalid*.NotFound`
//!   (`RunInstances` then `TerminateInstances` of the new id: the guide's own example);
//! - a resource deleted by a call at `t` is still listed by Describe until `t + lag`, as it was
//!   when deleted (a call naming it fails `NotFound`: it is gone).
//!
//! What a call created is what it minted ids for ([`super::state::Prng::take_minted`]), so every
//! create is covered without each operation recording it. Deletes record their resource where
//! they remove it ([`remove`]). Resources that time alone removes (volumes deleted on
//! termination, terminated instances after an hour) and KMS grants are not lagged.
//!
//! The AWS guide gives no figure; it advises retrying "starting with a couple of seconds of wait
//! time", so the example fleet file uses [`REALISTIC_LAG_MS`].

use std::collections::{BTreeMap, btree_map};
use std::iter::Peekable;

use serde::{Deserialize, Serialize};

use super::state::RegionState;

/// INFERENCE: a lag of the order AWS's advice implies ("a couple of seconds", above), for fleet
/// files that want realistic consistency.
pub const REALISTIC_LAG_MS: u64 = 2_000;

/// A Region's recent creates and deletes, while they are within the lag.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recent {
    /// Id → when it was created (ms).
    pub created: BTreeMap<String, u64>,
    /// Id → when it was deleted (ms).
    pub deleted: BTreeMap<String, u64>,
    /// The deleted resources, as they were (only the kinds Describe lists are kept).
    pub ghosts: Option<Box<RegionState>>,
}

impl Recent {
    /// Whether `id` was created less than `lag_ms` ago.
    #[must_use]
    pub fn hidden(&self, id: &str, now_ms: u64, lag_ms: u64) -> bool {
        self.created.get(id).is_some_and(|t| now_ms < t.saturating_add(lag_ms))
    }

    /// Whether `id` was deleted less than `lag_ms` ago.
    #[must_use]
    pub fn lingering(&self, id: &str, now_ms: u64, lag_ms: u64) -> bool {
        self.deleted.get(id).is_some_and(|t| now_ms < t.saturating_add(lag_ms))
    }

    /// Record `ids` created at `now_ms`.
    pub fn created(&mut self, ids: Vec<String>, now_ms: u64) {
        self.created.extend(ids.into_iter().map(|id| (id, now_ms)));
    }

    /// Forget what is past the lag. True if anything was forgotten.
    pub fn prune(&mut self, now_ms: u64, lag_ms: u64) -> bool {
        let before = (self.created.len(), self.deleted.len());
        self.created.retain(|_, t| now_ms < t.saturating_add(lag_ms));
        self.deleted.retain(|_, t| now_ms < t.saturating_add(lag_ms));
        if self.deleted.is_empty() {
            self.ghosts = None;
        } else if let Some(g) = &mut self.ghosts {
            let keep = |id: &str| self.deleted.contains_key(id);
            g.snapshots.retain(|id, _| keep(id.as_ref()));
            g.vpcs.retain(|id, _| keep(id.as_ref()));
            g.subnets.retain(|id, _| keep(id.as_ref()));
            g.route_tables.retain(|id, _| keep(id.as_ref()));
            g.internet_gateways.retain(|id, _| keep(id.as_ref()));
            g.security_groups.retain(|id, _| keep(id.as_ref()));
            g.vpc_endpoints.retain(|id, _| keep(id.as_ref()));
            g.network_interfaces.retain(|id, _| keep(id.as_ref()));
        }
        before != (self.created.len(), self.deleted.len())
    }
}

/// Which map of a Region a resource kind lives in.
pub type Pick<Id, T> = for<'r> fn(&'r RegionState) -> &'r BTreeMap<Id, T>;
/// The same, mutably.
pub type PickMut<Id, T> = for<'r> fn(&'r mut RegionState) -> &'r mut BTreeMap<Id, T>;

/// What Describe sees of one kind at `now_ms`: the live resources not created within the lag,
/// and those deleted within it, in id order ([`View`]).
#[must_use]
pub fn view<Id: Ord + AsRef<str>, T>(r: &RegionState, pick: Pick<Id, T>, now_ms: u64, lag_ms: u64) -> View<'_, Id, T> {
    view_of(Some(r), pick, now_ms, lag_ms)
}

/// [`view`] of a Region that may not exist (nothing to see then).
#[must_use]
pub fn view_of<Id: Ord + AsRef<str>, T>(
    r: Option<&RegionState>,
    pick: Pick<Id, T>,
    now_ms: u64,
    lag_ms: u64,
) -> View<'_, Id, T> {
    View { r, pick, now_ms, lag_ms }
}

/// What Describe sees of one kind of a Region: its items in id order ([`View::into_iter`]),
/// merging the live map (less what was created within the lag) and the ghosts (what was deleted
/// within it) lazily, with no copy; and a lookup by id ([`View::get`]) that costs a map lookup,
/// so a Describe by ids does not walk the Region.
pub struct View<'a, Id, T> {
    r: Option<&'a RegionState>,
    pick: Pick<Id, T>,
    now_ms: u64,
    lag_ms: u64,
}

impl<Id, T> std::fmt::Debug for View<'_, Id, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("now_ms", &self.now_ms).field("lag_ms", &self.lag_ms).finish_non_exhaustive()
    }
}

impl<'a, Id: Ord + AsRef<str>, T> View<'a, Id, T> {
    /// The resource `id` if Describe sees it.
    #[must_use]
    pub fn get(&self, id: &Id) -> Option<(&'a Id, &'a T)> {
        let r = self.r?;
        let (now, lag) = (self.now_ms, self.lag_ms);
        if let Some(kv) = (self.pick)(r).get_key_value(id)
            && !r.recent.hidden(id.as_ref(), now, lag)
        {
            return Some(kv);
        }
        let ghosts = r.recent.ghosts.as_deref()?;
        (self.pick)(ghosts).get_key_value(id).filter(|_| r.recent.lingering(id.as_ref(), now, lag))
    }
}

impl<'a, Id: Ord + AsRef<str> + 'a, T: 'a> IntoIterator for View<'a, Id, T> {
    type Item = (&'a Id, &'a T);
    type IntoIter = ViewIter<'a, Id, T>;

    fn into_iter(self) -> ViewIter<'a, Id, T> {
        let live = self.r.map(|r| (self.pick)(r).iter()).unwrap_or_default().peekable();
        let ghosts = self.r.and_then(|r| r.recent.ghosts.as_deref()).map(|g| (self.pick)(g).iter().peekable());
        ViewIter { view: self, live, ghosts }
    }
}

/// The iterator of a [`View`], which can still look ids up ([`ViewIter::get`]).
pub struct ViewIter<'a, Id: 'a, T: 'a> {
    view: View<'a, Id, T>,
    live: Peekable<btree_map::Iter<'a, Id, T>>,
    ghosts: Option<Peekable<btree_map::Iter<'a, Id, T>>>,
}

impl<Id, T> std::fmt::Debug for ViewIter<'_, Id, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewIter").field("view", &self.view).finish_non_exhaustive()
    }
}

impl<'a, Id: Ord + AsRef<str>, T> ViewIter<'a, Id, T> {
    /// [`View::get`].
    #[must_use]
    pub fn get(&self, id: &Id) -> Option<(&'a Id, &'a T)> {
        self.view.get(id)
    }
}

impl<'a, Id: Ord + AsRef<str>, T> Iterator for ViewIter<'a, Id, T> {
    type Item = (&'a Id, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        let recent = &self.view.r?.recent;
        let (now, lag) = (self.view.now_ms, self.view.lag_ms);
        loop {
            let ghost_first = match (self.live.peek(), self.ghosts.as_mut().and_then(Peekable::peek)) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                // Equal ids (never expected): the live one first, as a stable sort had it.
                (Some(l), Some(g)) => g.0 < l.0,
            };
            if ghost_first {
                let item = self.ghosts.as_mut()?.next()?;
                if recent.lingering(item.0.as_ref(), now, lag) {
                    return Some(item);
                }
            } else {
                let item = self.live.next()?;
                if !recent.hidden(item.0.as_ref(), now, lag) {
                    return Some(item);
                }
            }
        }
    }
}

/// Delete `id` from its map; with a lag, Describe keeps seeing it until `now_ms + lag_ms`.
pub fn remove<Id: Ord + Clone + AsRef<str>, T: Clone>(
    r: &mut RegionState,
    pick: PickMut<Id, T>,
    id: &Id,
    now_ms: u64,
    lag_ms: u64,
) -> Option<T> {
    let item = pick(r).remove(id)?;
    if lag_ms > 0 {
        r.recent.deleted.insert(id.as_ref().to_owned(), now_ms);
        let ghosts = r.recent.ghosts.get_or_insert_with(Box::default);
        pick(ghosts).insert(id.clone(), item.clone());
    }
    Some(item)
}

/// The `Invalid*.NotFound` code of an EC2 id, by its prefix; `None` for ids the lag does not hide.
#[must_use]
pub fn not_found_code(id: &str) -> Option<&'static str> {
    let (prefix, _) = id.split_once('-')?;
    Some(match prefix {
        "i" => "InvalidInstanceID.NotFound",
        "vol" => "InvalidVolume.NotFound",
        "snap" => "InvalidSnapshot.NotFound",
        "vpc" => "InvalidVpcID.NotFound",
        "subnet" => "InvalidSubnetID.NotFound",
        "sg" => "InvalidGroup.NotFound",
        "igw" => "InvalidInternetGatewayID.NotFound",
        "rtb" => "InvalidRouteTableID.NotFound",
        "vpce" => "InvalidVpcEndpointId.NotFound",
        "eni" => "InvalidNetworkInterfaceID.NotFound",
        "ami" => "InvalidAMIID.NotFound",
        _ => return None,
    })
}
