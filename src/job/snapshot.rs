//! `Snapshotting`: one `CreateSnapshots` per target instance (crash-consistent across its volumes)
//! when every volume of it is to be scanned, else one `CreateSnapshot` per volume; tagged in the
//! create call (docs/tags.md); within the Region's pending-snapshot budget
//! ([`super::MAX_PENDING_SNAPSHOTS`]) and the per-volume rate (wait [`super::PER_VOLUME_RATE_WAIT`]
//! on `SnapshotCreationPerVolumeRateExceeded`); then completion polled in batches.
//!
//! Intents: one row per volume before the call (the call has no `ClientToken`); after a crash or a
//! lost response, the snapshots are looked up by `agentless:job` + `agentless:source-instance`
//! (or `-volume`) tags before anything is created again.

use std::collections::BTreeMap;

use super::JobError;
use super::runner::Job;
use crate::cloud::ops::{
    CreateSnapshotInput, CreateSnapshotsInput, DescribeInput, DescribeSnapshotsInput, Filter, SnapshotInfo,
    SnapshotState, Tagged,
};
use crate::cloud::retry::{Retry, backoff, retry};
use crate::cloud::tags::{self, SnapshotSource};
use crate::cloud::{Cloud, CloudError, ErrorKind, InstanceId, SnapshotId, VolumeId};
use crate::ledger::{IntentId, ResourceId, ResourceKind, TargetStatus};

/// Snapshot ids per DescribeSnapshots poll.
const IDS_PER_POLL: usize = 200;

/// Attempts of a snapshot create that fails with a transient error (5xx, timeout, lost response)
/// and whose snapshots are then not found by tag. The AWS SDK's standard retry mode already makes
/// 3 attempts of one call; these rounds around it (each after a backoff delay and a lookup by tag,
/// as the call has no `ClientToken`) keep one bad minute of the API from failing a target. A
/// lookup that misses a snapshot still hidden by eventual consistency makes a second snapshot of
/// the volume: the job uses one, the teardown's sweep by the job tag deletes both.
const SNAPSHOT_CREATE_ATTEMPTS: usize = 4;

impl<C: Cloud> Job<'_, C> {
    fn expires(&self) -> jiff::Timestamp {
        self.doc.expires_at.parse().unwrap_or(jiff::Timestamp::MAX)
    }

    /// Our snapshots matching `filters` (plus the job tag), all pages.
    pub(super) async fn find_snapshots(&self, mut filters: Vec<Filter>) -> Result<Vec<SnapshotInfo>, CloudError> {
        filters.push(Filter::tag(tags::JOB, [self.id.as_str()]));
        let mut input =
            DescribeSnapshotsInput { owner: self.r.account.clone(), describe: DescribeInput::filters(filters) };
        let mut out = Vec::new();
        loop {
            let page =
                retry(Retry::Transient, "DescribeSnapshots", || self.r.guard.describe_snapshots(&self.region, &input))
                    .await?;
            out.extend(page.items);
            match page.next_token {
                Some(t) => input.describe.next_token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Adopt snapshots found by tag for volumes of `instance` that have an open intent; close the
    /// intents of the others. Returns how many were adopted.
    async fn resolve_snapshot_intents(&mut self, instance: &InstanceId) -> Result<usize, JobError> {
        let open: Vec<(VolumeId, i64)> = self
            .doc
            .targets()
            .get(instance)
            .map(|t| {
                t.volumes
                    .iter()
                    .filter(|v| v.snapshot.is_none())
                    .filter_map(|v| v.snapshot_intent.map(|i| (v.volume.clone(), i)))
                    .collect()
            })
            .unwrap_or_default();
        if open.is_empty() {
            return Ok(0);
        }
        let found = self
            .find_snapshots(vec![Filter::tag(tags::SOURCE_INSTANCE, [instance.as_str()])])
            .await
            .map_err(self.cerr("looking up snapshots by tag"))?;
        let mut adopted = 0;
        for (volume, intent) in open {
            let hit = found.iter().find(|s| s.volume_id.as_ref() == Some(&volume) && s.state != SnapshotState::Error);
            let intent_id = IntentId::from_raw(intent);
            match hit {
                Some(s) => {
                    self.r
                        .lock()
                        .record_created(intent_id, &ResourceId::Snapshot(s.id.clone()))
                        .map_err(self.lerr())?;
                    let now = self.now_ms();
                    if let Some(v) = self.doc.volume_mut(instance, &volume) {
                        v.snapshot = Some(s.id.clone());
                        v.snapshot_tags = Some(s.tags.clone());
                        v.snapshot_started_ms = Some(now);
                    }
                    adopted += 1;
                }
                None => {
                    self.r.lock().record_not_created(intent_id).map_err(self.lerr())?;
                    if let Some(v) = self.doc.volume_mut(instance, &volume) {
                        v.snapshot_intent = None;
                    }
                }
            }
        }
        self.save()?;
        Ok(adopted)
    }

    /// Wait until `volumes` may be snapshotted: within the job's own limit, and the dispatcher's
    /// shared budget when there is one ([`super::budget`]); polling our own snapshots meanwhile
    /// is what frees our share. `false`: cancelled while waiting.
    async fn wait_for_snapshot_slots(&mut self, volumes: &[VolumeId], started: i64) -> Result<bool, JobError> {
        loop {
            let pending = self.pending_snapshots();
            let own_limit = pending + volumes.len() > super::MAX_PENDING_SNAPSHOTS && pending > 0;
            let shared = |b: &std::sync::Arc<dyn super::Budget>| {
                b.take_snapshots(&self.id, &self.r.account, &self.region, volumes)
            };
            if !own_limit && self.r.budget.as_ref().is_none_or(shared) {
                return Ok(true);
            }
            // With a shared budget, poll even with nothing pending: the poll tells the budget
            // what the job really holds (a create that failed after its slots were taken holds
            // them until then).
            if pending > 0 || self.r.budget.is_some() {
                self.poll_snapshots(started).await?;
            }
            if self.sleep(self.r.settings.poll).await {
                return Ok(false);
            }
        }
    }

    fn pending_snapshots(&self) -> usize {
        self.doc.volumes().filter(|(_, v)| v.in_play() && v.snapshot.is_some() && !v.snapshot_ready).count()
    }

    /// `Snapshotting`.
    pub(super) async fn snapshot(&mut self) -> Result<(), JobError> {
        let mut instances: Vec<InstanceId> =
            self.doc.targets().iter().filter(|(_, t)| t.error.is_none()).map(|(i, _)| i.clone()).collect();
        // Largest volumes first: a snapshot's time grows with the data it copies, so starting the
        // longest ones first keeps the last to finish short (longest-processing-time-first
        // scheduling; the size is the best estimate known before the snapshot).
        let largest =
            |i: &InstanceId| self.doc.targets().get(i).and_then(|t| t.volumes.iter().map(|v| v.size_gib).max());
        instances.sort_by_key(|i| std::cmp::Reverse(largest(i)));
        for instance in &instances {
            self.resolve_snapshot_intents(instance).await?;
        }
        let started = self.now_ms();
        for instance in &instances {
            if self.cancelled() {
                return Ok(());
            }
            let Some(t) = self.doc.targets().get(instance) else { continue };
            let wanted: Vec<VolumeId> =
                t.volumes.iter().filter(|v| v.in_play() && v.snapshot.is_none()).map(|v| v.volume.clone()).collect();
            if wanted.is_empty() {
                continue;
            }
            // One CreateSnapshots for the whole instance (crash-consistent across its volumes)
            // when every volume is scanned and the shared budget can ever grant that many at
            // once; else one CreateSnapshot per volume.
            let fits = self.r.budget.as_ref().is_none_or(|b| wanted.len() <= b.max_snapshots_at_once());
            let whole = t.volumes.iter().all(|v| v.in_play()) && fits;
            let batches: Vec<Vec<VolumeId>> =
                if whole { vec![wanted] } else { wanted.into_iter().map(|v| vec![v]).collect() };
            for batch in batches {
                if !self.wait_for_snapshot_slots(&batch, started).await? {
                    return Ok(());
                }
                if whole {
                    self.create_snapshots(instance, &batch).await?;
                } else {
                    for v in &batch {
                        self.create_snapshot(instance, v).await?;
                    }
                }
            }
        }
        loop {
            self.poll_snapshots(started).await?;
            let total = self.doc.volumes().filter(|(_, v)| v.snapshot.is_some()).count();
            let pending = self.pending_snapshots();
            self.r.progress.step(&self.id, "snapshots", total - pending, total);
            if pending == 0 || self.cancelled() {
                break;
            }
            if self.sleep(self.r.settings.poll).await {
                break;
            }
        }
        for instance in &instances {
            let Some(t) = self.doc.targets().get(instance) else { continue };
            if t.volumes.iter().any(|v| v.in_play() && v.snapshot_ready) {
                self.set_target(instance, TargetStatus::Snapshotted, None);
            } else {
                let why = t
                    .volumes
                    .iter()
                    .filter_map(|v| v.error.as_deref().or(v.unscannable.as_deref()))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.set_target(instance, TargetStatus::Failed, Some(&why));
                if let Some(t) = self.doc.target_mut(instance) {
                    t.error = Some(why);
                }
            }
        }
        self.save()
    }

    /// Mark every in-play volume of `instance` in `volumes` failed.
    fn fail_volumes(&mut self, instance: &InstanceId, volumes: &[VolumeId], why: &str) {
        for v in volumes {
            if let Some(d) = self.doc.volume_mut(instance, v) {
                d.error = Some(why.to_owned());
            }
        }
    }

    /// The volumes of `instance` among `volumes` still in play without a snapshot.
    fn without_snapshot(&self, instance: &InstanceId, volumes: &[VolumeId]) -> Vec<VolumeId> {
        self.doc
            .targets()
            .get(instance)
            .map(|t| {
                t.volumes
                    .iter()
                    .filter(|v| volumes.contains(&v.volume) && v.in_play() && v.snapshot.is_none())
                    .map(|v| v.volume.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// After a transient failure of a snapshot create (a 5xx or timeout, or a lost response
    /// whose call was applied): wait a backoff delay (Describe lags behind creates), adopt what
    /// the call made by its tags, and say which volumes are still without a snapshot and whether
    /// to create those again (`None`: no attempt left, or cancelled).
    async fn after_transient(
        &mut self,
        instance: &InstanceId,
        volumes: &[VolumeId],
        delays: &mut impl Iterator<Item = std::time::Duration>,
    ) -> Result<(Vec<VolumeId>, bool), JobError> {
        let again = match delays.next() {
            Some(d) => !self.sleep(d).await,
            None => false,
        };
        self.resolve_snapshot_intents(instance).await?;
        Ok((self.without_snapshot(instance, volumes), again))
    }

    async fn create_snapshots(&mut self, instance: &InstanceId, volumes: &[VolumeId]) -> Result<(), JobError> {
        let mut volumes = volumes.to_vec();
        let mut delays = backon::BackoffBuilder::build(backoff()).take(SNAPSHOT_CREATE_ATTEMPTS - 1);
        loop {
            let Some(t) = self.doc.targets().get(instance) else { return Ok(()) };
            let tags = tags::snapshot_tags(&self.id, SnapshotSource::Instance { instance }, self.expires());
            let input = CreateSnapshotsInput {
                instance: Tagged::new(instance.clone(), t.tags.clone()),
                volumes: t.volumes.iter().map(|v| Tagged::new(v.volume.clone(), v.tags.clone())).collect(),
                exclude_boot_volume: false,
                description: format!("agentless scan {} of {instance}", self.id),
                tags: tags.clone(),
            };
            let mut intents = BTreeMap::new();
            for v in &volumes {
                let i = self
                    .r
                    .lock()
                    .record_intent(&self.id, ResourceKind::Snapshot, &self.region, None, &tags)
                    .map_err(self.lerr())?;
                intents.insert(v.clone(), i);
                if let Some(d) = self.doc.volume_mut(instance, v) {
                    d.snapshot_intent = Some(i.get());
                }
            }
            self.save()?;
            let out = self.call_snapshot_create(|| self.r.guard.create_snapshots(&self.region, &input)).await;
            match out {
                Ok(out) => {
                    for s in out.snapshots {
                        if let Some(i) = intents.get(&s.volume_id) {
                            self.r
                                .lock()
                                .record_created(*i, &ResourceId::Snapshot(s.snapshot_id.clone()))
                                .map_err(self.lerr())?;
                        }
                        let now = self.now_ms();
                        if let Some(d) = self.doc.volume_mut(instance, &s.volume_id) {
                            d.snapshot = Some(s.snapshot_id);
                            d.snapshot_tags = Some(tags.clone());
                            d.snapshot_started_ms = Some(now);
                        }
                    }
                    return self.save();
                }
                Err(e) if e.kind() == ErrorKind::Transient => {
                    // Maybe applied: look by tag (what is not found stays an open intent that the
                    // poll loop and the teardown sweep settle), then create the rest again.
                    let (left, again) = self.after_transient(instance, &volumes, &mut delays).await?;
                    if left.is_empty() {
                        return self.save();
                    }
                    if again {
                        tracing::info!(%instance, error = %e, "snapshot create failed; trying again");
                        volumes = left;
                        continue;
                    }
                    self.fail_volumes(instance, &left, &format!("CreateSnapshots failed: {e}"));
                    return self.save();
                }
                Err(e) => {
                    for i in intents.values() {
                        self.r.lock().record_not_created(*i).map_err(self.lerr())?;
                    }
                    tracing::warn!(%instance, error = %e, "snapshot failed");
                    self.fail_volumes(instance, &volumes, &format!("CreateSnapshots failed: {e}"));
                    return self.save();
                }
            }
        }
    }

    async fn create_snapshot(&mut self, instance: &InstanceId, volume: &VolumeId) -> Result<(), JobError> {
        let one = std::slice::from_ref(volume);
        let mut delays = backon::BackoffBuilder::build(backoff()).take(SNAPSHOT_CREATE_ATTEMPTS - 1);
        loop {
            let Some(v) = self.doc.targets().get(instance).and_then(|t| t.volumes.iter().find(|v| &v.volume == volume))
            else {
                return Ok(());
            };
            let tags = tags::snapshot_tags(&self.id, SnapshotSource::Volume { instance, volume }, self.expires());
            let input = CreateSnapshotInput {
                volume: Tagged::new(volume.clone(), v.tags.clone()),
                description: format!("agentless scan {} of {instance} {volume}", self.id),
                tags: tags.clone(),
            };
            let intent = self
                .r
                .lock()
                .record_intent(&self.id, ResourceKind::Snapshot, &self.region, None, &tags)
                .map_err(self.lerr())?;
            if let Some(d) = self.doc.volume_mut(instance, volume) {
                d.snapshot_intent = Some(intent.get());
            }
            self.save()?;
            match self.call_snapshot_create(|| self.r.guard.create_snapshot(&self.region, &input)).await {
                Ok(out) => {
                    self.r
                        .lock()
                        .record_created(intent, &ResourceId::Snapshot(out.snapshot_id.clone()))
                        .map_err(self.lerr())?;
                    let now = self.now_ms();
                    if let Some(d) = self.doc.volume_mut(instance, volume) {
                        d.snapshot = Some(out.snapshot_id);
                        d.snapshot_tags = Some(tags);
                        d.snapshot_started_ms = Some(now);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Transient => {
                    let (left, again) = self.after_transient(instance, one, &mut delays).await?;
                    if !left.is_empty() {
                        if again {
                            tracing::info!(%instance, %volume, error = %e, "snapshot create failed; trying again");
                            continue;
                        }
                        self.fail_volumes(instance, one, &format!("CreateSnapshot failed: {e}"));
                    }
                }
                Err(e) => {
                    self.r.lock().record_not_created(intent).map_err(self.lerr())?;
                    self.fail_volumes(instance, one, &format!("CreateSnapshot failed: {e}"));
                }
            }
            return self.save();
        }
    }

    /// A snapshot create with its retries: throttling (backoff), the per-volume rate (15 s), and
    /// nothing else (a transient error may have been applied: the caller looks by tag).
    async fn call_snapshot_create<T, F, Fut>(&self, mut f: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        let mut delays = backon::BackoffBuilder::build(backoff());
        loop {
            let e = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let wait = match e.kind() {
                ErrorKind::Throttled => delays.next(),
                ErrorKind::SnapshotRatePerVolume => delays.next().map(|_| super::PER_VOLUME_RATE_WAIT),
                ErrorKind::Transient
                | ErrorKind::NotFound
                | ErrorKind::DependencyViolation
                | ErrorKind::IncorrectState
                | ErrorKind::QuotaExceeded
                | ErrorKind::AccessDenied
                | ErrorKind::PolicyDenied
                | ErrorKind::Other => None,
            };
            match wait {
                Some(d) => {
                    if self.sleep(d).await {
                        return Err(e);
                    }
                }
                None => return Err(e),
            }
        }
    }

    /// One poll of every pending snapshot of the job.
    async fn poll_snapshots(&mut self, started_ms: i64) -> Result<(), JobError> {
        let pending: Vec<(InstanceId, VolumeId, SnapshotId)> = self
            .doc
            .volumes()
            .filter(|(_, v)| v.in_play() && !v.snapshot_ready)
            .filter_map(|(i, v)| v.snapshot.clone().map(|s| (i.clone(), v.volume.clone(), s)))
            .collect();
        let now = self.now_ms();
        let timeout_ms = i64::try_from(self.r.settings.snapshot_timeout.as_millis()).unwrap_or(i64::MAX);
        for chunk in pending.chunks(IDS_PER_POLL) {
            let ids: Vec<SnapshotId> = chunk.iter().map(|(_, _, s)| s.clone()).collect();
            let input = DescribeSnapshotsInput { owner: self.r.account.clone(), describe: DescribeInput::ids(ids) };
            let page = match retry(Retry::Transient, "DescribeSnapshots", || {
                self.r.guard.describe_snapshots(&self.region, &input)
            })
            .await
            {
                Ok(p) => p,
                // A snapshot Describe does not know yet (eventual consistency): next poll.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(self.cerr("polling snapshots")(e)),
            };
            let states: BTreeMap<SnapshotId, SnapshotInfo> =
                page.items.into_iter().map(|s| (s.id.clone(), s)).collect();
            for (instance, volume, snap) in chunk {
                let Some(started) = self
                    .doc
                    .targets()
                    .get(instance)
                    .and_then(|t| t.volumes.iter().find(|v| &v.volume == volume))
                    .map(|v| v.snapshot_started_ms.unwrap_or(started_ms))
                else {
                    continue;
                };
                let timed_out = now.saturating_sub(started) > timeout_ms;
                let change = match states.get(snap).map(|s| &s.state) {
                    Some(SnapshotState::Completed) => Some(None),
                    Some(SnapshotState::Error) => Some(Some(format!("snapshot {snap} ended in state error"))),
                    Some(
                        SnapshotState::Pending
                        | SnapshotState::Recoverable
                        | SnapshotState::Recovering
                        | SnapshotState::Unknown(_),
                    )
                    | None => timed_out.then(|| {
                        Some(format!(
                            "snapshot {snap} still pending {} s after its creation",
                            self.r.settings.snapshot_timeout.as_secs()
                        ))
                    }),
                };
                // Only a change touches the document (a save writes the targets touched).
                if let Some(change) = change
                    && let Some(d) = self.doc.volume_mut(instance, volume)
                {
                    match change {
                        None => d.snapshot_ready = true,
                        Some(error) => d.error = Some(error),
                    }
                }
            }
        }
        if let Some(b) = &self.r.budget {
            let still: Vec<VolumeId> = self
                .doc
                .volumes()
                .filter(|(_, v)| v.in_play() && v.snapshot.is_some() && !v.snapshot_ready)
                .map(|(_, v)| v.volume.clone())
                .collect();
            b.pending_snapshots(&self.id, &self.r.account, &self.region, &still);
        }
        self.save()
    }
}
