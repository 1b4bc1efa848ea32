//! EBS snapshots: `CreateSnapshots`, `CreateSnapshot`, `DescribeSnapshots`, `CopySnapshot`,
//! `ModifySnapshotAttribute`, `DeleteSnapshot`.
//!
//! - A snapshot starts `pending` and completes after [`Latencies::snapshot_ms`] of the volume's
//!   used size (docs/references.md, "Snapshot creation time"); its progress grows linearly meanwhile.
//! - Quotas (docs/references.md): at most 100 pending per Region (`PendingSnapshotLimitExceeded`,
//!   EC2 error codes), 5 pending per volume (`SnapshotCreationPerVolumeRateExceeded`), 20 pending
//!   copies per destination Region (`ResourceLimitExceeded`: "you might have too many snapshot
//!   copies in progress", EC2 error codes). A pending copy also counts as a pending snapshot
//!   (INFERENCE). `CreateSnapshots` is all or nothing.
//! - `CopySnapshot` needs a `completed` source (`IncorrectState` otherwise). A copy under a key
//!   that does not exist in the destination Region is accepted and ends in `error` (unlike moto; AWS
//!   "fails the copy or marks it error"; the sim marks it). Copies report no volume id.
//! - `DescribeSnapshots` with the `owner-id` of another account lists that account's snapshots
//!   shared with the caller (`createVolumePermission`).
//!
//! [`Latencies::snapshot_ms`]: super::limits::Latencies::snapshot_ms

use crate::cloud::Call;
use crate::cloud::error::CloudError;
use crate::cloud::ids::{KmsKeyId, SnapshotId, VolumeId};
use crate::cloud::ops::*;
use crate::cloud::tags::Tags;

use super::Ctx;
use super::authorize::real;
use super::consistency::{remove, view_of};
use super::describe::{Describable, describe_with};
use super::state::{Life, Manager, SnapState, Snapshot, Volume};

/// A snapshot with the timeline's now, for its progress.
struct SnapAt<'a>(&'a Snapshot, u64);

impl SnapAt<'_> {
    fn state(&self) -> SnapshotState {
        match self.0.state {
            SnapState::Pending => SnapshotState::Pending,
            SnapState::Completed => SnapshotState::Completed,
            SnapState::Error => SnapshotState::Error,
        }
    }

    fn progress(&self) -> String {
        let s = self.0;
        match s.state {
            SnapState::Completed => "100%".into(),
            SnapState::Error => "0%".into(),
            SnapState::Pending => {
                let total = s.complete_ms.saturating_sub(s.started_ms).max(1);
                let done = self.1.saturating_sub(s.started_ms).min(total);
                format!("{}%", (done.saturating_mul(100) / total).min(99))
            }
        }
    }
}

impl Describable for SnapAt<'_> {
    fn tags(&self) -> &Tags {
        &self.0.tags
    }

    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        let s = self.0;
        let one = |v: &str| Some(vec![v.to_owned()]);
        match name {
            "snapshot-id" => one(id),
            "status" => one(match s.state {
                SnapState::Pending => "pending",
                SnapState::Completed => "completed",
                SnapState::Error => "error",
            }),
            "volume-id" => Some(s.volume_id.iter().map(|v| v.to_string()).collect()),
            "owner-id" => one(s.owner.as_str()),
            "encrypted" => one(&s.encrypted.to_string()),
            "description" => one(&s.description),
            "progress" => one(&self.progress()),
            "volume-size" => one(&s.volume_size_gib.to_string()),
            _ => None,
        }
    }
}

/// Refuse `new` more pending snapshots of `volumes` (and `copies` copies) over the quotas.
fn check_quotas(ctx: &mut Ctx<'_>, volumes: &[VolumeId], copies: usize) -> Result<(), CloudError> {
    let q = ctx.world.settings.quotas.clone();
    let r = ctx.reg()?;
    let (pending, pending_copies) = r.pending_snapshots();
    let per_volume: Vec<(VolumeId, usize)> = volumes.iter().map(|v| (v.clone(), r.pending_snapshots_of(v))).collect();
    let limit = |q: u32| usize::try_from(q).unwrap_or(usize::MAX);
    if pending + volumes.len() + copies > limit(q.pending_snapshots_per_region) {
        return Err(ctx.err(
            "PendingSnapshotLimitExceeded",
            format!(
                "The maximum of {} pending snapshots in this Region has been reached ({pending} pending).",
                q.pending_snapshots_per_region
            ),
            Vec::new(),
        ));
    }
    if let Some((v, _)) = per_volume.iter().find(|(_, n)| *n >= limit(q.concurrent_snapshots_per_volume)) {
        return Err(ctx.err(
            "SnapshotCreationPerVolumeRateExceeded",
            "The maximum per volume CreateSnapshot request rate has been exceeded. Use an increasing or variable \
             sleep interval between requests.",
            vec![v.to_string()],
        ));
    }
    if copies > 0 && pending_copies + copies > limit(q.concurrent_copies_per_region) {
        return Err(ctx.err(
            "ResourceLimitExceeded",
            format!(
                "Too many snapshot copies in progress: {pending_copies} of {} in this Region.",
                q.concurrent_copies_per_region
            ),
            Vec::new(),
        ));
    }
    Ok(())
}

/// A new pending snapshot of `v`.
fn snapshot_of(ctx: &Ctx<'_>, v: &VolumeId, vol: &Volume, description: &str, tags: &Tags) -> Snapshot {
    let latency = ctx.world.settings.latencies.snapshot_ms(vol.used_gib);
    Snapshot {
        volume_id: Some(v.clone()),
        volume_size_gib: vol.size_gib,
        used_gib: vol.used_gib,
        state: SnapState::Pending,
        started_ms: ctx.now_ms,
        complete_ms: ctx.now_ms.saturating_add(latency),
        encrypted: vol.encrypted,
        kms_key_id: vol.kms_key_id.clone(),
        owner: ctx.account.clone(),
        description: description.to_owned(),
        copy: false,
        shared_with: Default::default(),
        backing: vol.backing.clone(),
        tags: tags.clone(),
        fails: false,
    }
}

pub fn create_snapshots(ctx: &mut Ctx<'_>, input: &CreateSnapshotsInput) -> Result<CreateSnapshotsOutput, CloudError> {
    let r = ctx.reg()?;
    let Some(instance) = r.instances.get(&input.instance.id).cloned() else {
        return Err(ctx.not_found("InvalidInstanceID.NotFound", "instance ID", input.instance.id.as_str()));
    };
    if matches!(instance.life, Life::Terminated { .. } | Life::ShuttingDown { .. }) {
        return Err(ctx.err(
            "IncorrectState",
            format!("Instance {} is terminated or shutting down", input.instance.id),
            vec![input.instance.id.to_string()],
        ));
    }
    let mut volumes = Vec::new();
    for a in &instance.attachments {
        if input.exclude_boot_volume && instance.root_device_name.as_deref() == Some(a.device_name.as_str()) {
            continue;
        }
        if let Some(v) = ctx.reg()?.volumes.get(&a.volume_id) {
            volumes.push((a.volume_id.clone(), v.clone()));
        }
    }
    let checked = CreateSnapshotsInput {
        instance: real(&input.instance.id, &instance.tags),
        volumes: volumes.iter().map(|(id, v)| real(id, &v.tags)).collect(),
        ..input.clone()
    };
    ctx.authorize(Call::CreateSnapshots(&checked))?;
    let ids: Vec<VolumeId> = volumes.iter().map(|(id, _)| id.clone()).collect();
    check_quotas(ctx, &ids, 0)?;
    let mut out = Vec::new();
    for (vid, vol) in &volumes {
        let sid: SnapshotId = ctx.new_id("snap")?;
        let snap =
            Snapshot { fails: ctx.snapshot_fails(), ..snapshot_of(ctx, vid, vol, &input.description, &input.tags) };
        ctx.reg()?.snapshots.insert(sid.clone(), snap);
        out.push(SnapshotStarted { snapshot_id: sid, volume_id: vid.clone() });
    }
    ctx.dirty = true;
    Ok(CreateSnapshotsOutput { snapshots: out })
}

pub fn create_snapshot(ctx: &mut Ctx<'_>, input: &CreateSnapshotInput) -> Result<CreateSnapshotOutput, CloudError> {
    let Some(vol) = ctx.reg()?.volumes.get(&input.volume.id).cloned() else {
        return Err(ctx.not_found("InvalidVolume.NotFound", "volume", input.volume.id.as_str()));
    };
    let checked = CreateSnapshotInput { volume: real(&input.volume.id, &vol.tags), ..input.clone() };
    ctx.authorize(Call::CreateSnapshot(&checked))?;
    check_quotas(ctx, std::slice::from_ref(&input.volume.id), 0)?;
    let sid: SnapshotId = ctx.new_id("snap")?;
    let snap = Snapshot {
        fails: ctx.snapshot_fails(),
        ..snapshot_of(ctx, &input.volume.id, &vol, &input.description, &input.tags)
    };
    ctx.reg()?.snapshots.insert(sid.clone(), snap);
    ctx.dirty = true;
    Ok(CreateSnapshotOutput { snapshot_id: sid })
}

pub fn describe_snapshots(ctx: &mut Ctx<'_>, input: &DescribeSnapshotsInput) -> Result<Page<SnapshotInfo>, CloudError> {
    ctx.authorize(Call::DescribeSnapshots(input))?;
    let (me, region, now) = (ctx.account.clone(), ctx.region.clone(), ctx.now_ms);
    let (_, lag_ms) = ctx.lag();
    let owner_region = ctx.world.accounts.get(&input.owner).and_then(|a| a.regions.get(&region));
    let snapshots = view_of(owner_region, |r| &r.snapshots, now, lag_ms).into_iter();
    let visible = |s: &Snapshot| s.owner == me || s.shared_with.contains(&me);
    let out = describe_with(
        &input.describe,
        snapshots,
        |s| visible(s).then_some(SnapAt(s, now)),
        |id, s| SnapshotInfo {
            id: id.clone(),
            volume_id: s.0.volume_id.clone(),
            state: s.state(),
            progress: s.progress(),
            encrypted: s.0.encrypted,
            kms_key_id: s.0.kms_key_id.clone(),
            owner: s.0.owner.clone(),
            tags: s.0.tags.clone(),
        },
    );
    out.map_err(|e| ctx.describe_err(e, "InvalidSnapshot.NotFound"))
}

pub fn copy_snapshot(ctx: &mut Ctx<'_>, input: &CopySnapshotInput) -> Result<CopySnapshotOutput, CloudError> {
    let src_region = ctx.reg_of(&input.source_region)?;
    let source = src_region.snapshots.get(&input.source.id).cloned();
    let Some(source) = source else {
        return Err(ctx.not_found("InvalidSnapshot.NotFound", "snapshot", input.source.id.as_str()));
    };
    let source_kms_key = match &source.kms_key_id {
        Some(k) => match ctx.reg_of(&input.source_region)?.key(k).map(|k| k.manager) {
            Some(Manager::Customer) => Some(k.clone()),
            Some(Manager::Aws) | None => None,
        },
        None => None,
    };
    let encrypted = input.encrypted || source.encrypted;
    let checked =
        CopySnapshotInput { source: real(&input.source.id, &source.tags), source_kms_key, encrypted, ..input.clone() };
    ctx.authorize(Call::CopySnapshot(&checked))?;
    if source.state != SnapState::Completed {
        return Err(ctx.err(
            "IncorrectState",
            format!("Snapshot {} is not completed; only completed snapshots can be copied", input.source.id),
            vec![input.source.id.to_string()],
        ));
    }
    check_quotas(ctx, &[], 1)?;
    let r = ctx.reg()?;
    // The destination key: the one asked for (error state if it does not exist there), else the
    // Region's aws/ebs key for an encrypted copy.
    let (kms_key_id, key_ok): (Option<KmsKeyId>, bool) = match (&input.kms_key_id, encrypted) {
        (Some(k), _) => (Some(k.clone()), r.key(k).is_some()),
        (None, true) => {
            let default = r.default_ebs_key().map(|(_, k)| k.arn.clone()).and_then(|a| a.parse().ok());
            (default, true)
        }
        (None, false) => (None, true),
    };
    let latency = ctx.world.settings.latencies.snapshot_ms(source.used_gib);
    let copy = Snapshot {
        volume_id: None,
        state: if key_ok { SnapState::Pending } else { SnapState::Error },
        started_ms: ctx.now_ms,
        complete_ms: ctx.now_ms.saturating_add(latency),
        encrypted,
        kms_key_id,
        owner: ctx.account.clone(),
        description: input.description.clone(),
        copy: true,
        shared_with: Default::default(),
        tags: input.tags.clone(),
        fails: key_ok && ctx.snapshot_fails(),
        ..source
    };
    let id: SnapshotId = ctx.new_id("snap")?;
    ctx.reg()?.snapshots.insert(id.clone(), copy);
    ctx.dirty = true;
    Ok(CopySnapshotOutput { snapshot_id: id })
}

pub fn modify_snapshot_attribute(ctx: &mut Ctx<'_>, input: &ModifySnapshotAttributeInput) -> Result<Empty, CloudError> {
    let Some(tags) = ctx.reg()?.snapshots.get(&input.snapshot.id).map(|s| s.tags.clone()) else {
        return Err(ctx.not_found("InvalidSnapshot.NotFound", "snapshot", input.snapshot.id.as_str()));
    };
    let checked = ModifySnapshotAttributeInput { snapshot: real(&input.snapshot.id, &tags), ..input.clone() };
    ctx.authorize(Call::ModifySnapshotAttribute(&checked))?;
    if let Some(s) = ctx.reg()?.snapshots.get_mut(&input.snapshot.id) {
        match input.change {
            PermissionChange::Add => {
                s.shared_with.insert(input.account.clone());
            }
            PermissionChange::Remove => {
                s.shared_with.remove(&input.account);
            }
        }
    }
    ctx.dirty = true;
    Ok(Empty)
}

pub fn delete_snapshot(ctx: &mut Ctx<'_>, input: &DeleteSnapshotInput) -> Result<Empty, CloudError> {
    let Some(tags) = ctx.reg()?.snapshots.get(&input.snapshot.id).map(|s| s.tags.clone()) else {
        return Err(ctx.not_found("InvalidSnapshot.NotFound", "snapshot", input.snapshot.id.as_str()));
    };
    ctx.authorize(Call::DeleteSnapshot(&DeleteSnapshotInput { snapshot: real(&input.snapshot.id, &tags) }))?;
    let (now_ms, lag_ms) = ctx.lag();
    remove(ctx.reg()?, |r| &mut r.snapshots, &input.snapshot.id, now_ms, lag_ms);
    ctx.dirty = true;
    Ok(Empty)
}
