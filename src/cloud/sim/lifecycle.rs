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

use super::faults::{InstanceFault, LAUNCH_FAILURE_CODE, LAUNCH_FAILURE_MESSAGE};
use super::limits::Latencies;
use super::state::{Life, RegionState, SnapState, World};

/// Apply every change due at `now_ms`. True if anything changed.
pub fn advance(world: &mut World, now_ms: u64) -> bool {
    let latencies = world.settings.latencies.clone();
    let mut changed = false;
    for account in world.accounts.values_mut() {
        for region in account.regions.values_mut() {
            changed |= advance_region(region, now_ms, &latencies);
        }
    }
    changed
}

fn advance_region(r: &mut RegionState, now_ms: u64, lat: &Latencies) -> bool {
    let mut changed = false;
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
    }
    for id in terminated {
        release(r, &id);
    }
    let before = r.instances.len();
    r.instances.retain(|_, i| match i.life {
        Life::Terminated { at_ms } => now_ms < at_ms.saturating_add(lat.terminated_visible_ms),
        Life::Pending { .. } | Life::Running | Life::Stopping { .. } | Life::Stopped | Life::ShuttingDown { .. } => {
            true
        }
    });
    changed |= r.recent.prune(now_ms, lat.describe_lag_ms);
    changed | (r.instances.len() != before)
}

/// Free what a terminated instance held.
fn release(r: &mut RegionState, id: &crate::cloud::ids::InstanceId) {
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
