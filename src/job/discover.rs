//! `Discovering`: find the target instances (`--instance`, `--tag`, `--all` running), their volumes
//! and the keys those are encrypted with; decide up front which volumes cannot be scanned under the
//! policy (a customer managed key the policy does not let EBS use for the scanner: policies/
//! README.md, "Gaps"), so no snapshot is taken for nothing.

use std::collections::{BTreeMap, HashMap};

use super::JobError;
use super::doc::{Selector, TargetDoc, VolumeDoc};
use super::runner::Job;
use crate::cloud::ops::{
    CreateGrantInput, DescribeInput, DescribeKeyInput, EbsId, Filter, InstanceInfo, InstanceState, KeyManager,
    RunScannerInput, ScannerVolume, Tagged, VolumeInfo,
};
use crate::cloud::tags::{self, Tags};
use crate::cloud::{Call, Cloud, ErrorKind, InstanceId, KmsKeyId, VolumeId};
use crate::ledger::TargetStatus;

/// DescribeVolumes / DescribeInstances ids per call (EC2 accepts up to 1,000 ids; 200 keeps
/// responses small and under the one-page default).
const IDS_PER_CALL: usize = 200;

/// Ours: a scanner or anything else we tagged (never a target).
fn is_ours(tags: &Tags) -> bool {
    tags.get(tags::JOB).is_some()
        || tags
            .name()
            .is_some_and(|n| n.starts_with(tags::RESOURCE_NAME_PREFIX) || n.starts_with(tags::SNAPSHOT_NAME_PREFIX))
}

fn state_name(s: &InstanceState) -> String {
    match s {
        InstanceState::Pending => "pending".into(),
        InstanceState::Running => "running".into(),
        InstanceState::ShuttingDown => "shutting-down".into(),
        InstanceState::Terminated => "terminated".into(),
        InstanceState::Stopping => "stopping".into(),
        InstanceState::Stopped => "stopped".into(),
        InstanceState::Unknown(s) => s.clone(),
    }
}

impl<C: Cloud> Job<'_, C> {
    async fn describe_instances(&self, input: DescribeInput<InstanceId>) -> Result<Vec<InstanceInfo>, JobError> {
        let mut out = Vec::new();
        let mut input = input;
        loop {
            let page = crate::cloud::retry::retry(crate::cloud::retry::Retry::Transient, "DescribeInstances", || {
                self.r.guard.describe_instances(&self.region, &input)
            })
            .await
            .map_err(self.cerr("describing the target instances"))?;
            out.extend(page.items);
            match page.next_token {
                Some(t) => input.next_token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// `Discovering`.
    pub(super) async fn discover(&mut self) -> Result<(), JobError> {
        let running = Filter::new("instance-state-name", ["running"]);
        let mut missing: Vec<InstanceId> = Vec::new();
        let instances = match self.doc.selector.clone() {
            Selector::All => self.describe_instances(DescribeInput::filters(vec![running])).await?,
            Selector::Tags(kv) => {
                let mut filters: Vec<Filter> = kv.iter().map(|(k, v)| Filter::tag(k, [v.as_str()])).collect();
                filters.push(running);
                self.describe_instances(DescribeInput::filters(filters)).await?
            }
            Selector::Instances(ids) => {
                let mut found = Vec::new();
                for chunk in ids.chunks(IDS_PER_CALL) {
                    match self.describe_instances(DescribeInput::ids(chunk.to_vec())).await {
                        Ok(v) => found.extend(v),
                        // One unknown id fails the whole call: ask one by one to tell which.
                        Err(JobError::Cloud { source, .. }) if source.kind() == ErrorKind::NotFound => {
                            for id in chunk {
                                match self.describe_instances(DescribeInput::ids(vec![id.clone()])).await {
                                    Ok(v) => found.extend(v),
                                    Err(JobError::Cloud { source, .. }) if source.kind() == ErrorKind::NotFound => {
                                        missing.push(id.clone());
                                    }
                                    Err(e) => return Err(e),
                                }
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                found
            }
        };
        let mut ours = 0usize;
        let instances: Vec<InstanceInfo> = instances
            .into_iter()
            .filter(|i| {
                let mine = is_ours(&i.tags);
                ours += usize::from(mine);
                !mine
            })
            .collect();
        if ours > 0 {
            tracing::info!(skipped = ours, "skipped our own scanner instances");
        }
        // Volumes.
        let volume_ids: Vec<VolumeId> =
            instances.iter().flat_map(|i| i.volumes.iter().map(|v| v.volume_id.clone())).collect();
        let mut volumes: HashMap<VolumeId, VolumeInfo> = HashMap::new();
        for chunk in volume_ids.chunks(IDS_PER_CALL) {
            let mut input = DescribeInput::ids(chunk.to_vec());
            loop {
                let page = crate::cloud::retry::retry(crate::cloud::retry::Retry::Transient, "DescribeVolumes", || {
                    self.r.guard.describe_volumes(&self.region, &input)
                })
                .await
                .map_err(self.cerr("describing the target volumes"))?;
                volumes.extend(page.items.into_iter().map(|v| (v.id.clone(), v)));
                match page.next_token {
                    Some(t) => input.next_token = Some(t),
                    None => break,
                }
            }
        }
        // Keys.
        let mut managers: BTreeMap<KmsKeyId, Result<KeyManager, String>> = BTreeMap::new();
        for key in volumes.values().filter_map(|v| v.kms_key_id.clone()) {
            if managers.contains_key(&key) {
                continue;
            }
            let input = DescribeKeyInput { key: key.clone() };
            let got = crate::cloud::retry::retry(crate::cloud::retry::Retry::Transient, "DescribeKey", || {
                self.r.guard.describe_key(&self.region, &input)
            })
            .await;
            managers.insert(key, got.map(|k| k.manager).map_err(|e| e.to_string()));
        }
        let mut targets = BTreeMap::new();
        for i in &instances {
            let mut vols = Vec::new();
            for a in &i.volumes {
                let Some(v) = volumes.get(&a.volume_id) else {
                    continue;
                };
                let (customer_key, mut unscannable) = match &v.kms_key_id {
                    None => (false, None),
                    Some(k) => match managers.get(k) {
                        Some(Ok(KeyManager::Customer)) => (true, self.policy_gap(k)),
                        Some(Ok(KeyManager::Aws)) | None => (false, None),
                        Some(Err(e)) => (true, Some(format!("cannot describe its KMS key {k}: {e}"))),
                    },
                };
                if v.size_gib == 0 {
                    unscannable = Some("volume size 0".into());
                }
                vols.push(VolumeDoc {
                    volume: v.id.clone(),
                    tags: v.tags.clone(),
                    device: a.device_name.clone(),
                    size_gib: v.size_gib,
                    encrypted: v.encrypted,
                    kms_key: v.kms_key_id.clone(),
                    customer_key,
                    unscannable,
                    snapshot_intent: None,
                    snapshot: None,
                    snapshot_tags: None,
                    snapshot_started_ms: None,
                    snapshot_ready: false,
                    grant: None,
                    scanner: None,
                    scanned: false,
                    error: None,
                });
            }
            let state = state_name(&i.state);
            let error = match i.state {
                InstanceState::Terminated | InstanceState::ShuttingDown => Some(format!("instance is {state}")),
                InstanceState::Pending
                | InstanceState::Running
                | InstanceState::Stopping
                | InstanceState::Stopped
                | InstanceState::Unknown(_) => {
                    if vols.is_empty() {
                        Some("instance has no EBS volume".to_owned())
                    } else if vols.iter().all(|v| v.unscannable.is_some()) {
                        Some(format!(
                            "no volume can be scanned: {}",
                            vols.iter().filter_map(|v| v.unscannable.as_deref()).collect::<Vec<_>>().join("; ")
                        ))
                    } else {
                        None
                    }
                }
            };
            targets.insert(
                i.id.clone(),
                TargetDoc {
                    tags: i.tags.clone(),
                    availability_zone: i.availability_zone.clone(),
                    state,
                    volumes: vols,
                    error,
                },
            );
        }
        for id in &missing {
            targets.insert(
                id.clone(),
                TargetDoc {
                    tags: Tags::new(),
                    availability_zone: String::new(),
                    state: "not found".into(),
                    volumes: Vec::new(),
                    error: Some("instance not found in this Region".into()),
                },
            );
        }
        let ids: Vec<InstanceId> = targets.keys().cloned().collect();
        self.r.lock().add_targets(&self.id, &ids).map_err(self.lerr())?;
        for (id, t) in &targets {
            if let Some(e) = &t.error {
                self.set_target(id, TargetStatus::Failed, Some(e));
            }
        }
        self.r.progress.step(&self.id, "targets", targets.len(), targets.len());
        tracing::info!(targets = targets.len(), volumes = volume_ids.len(), "discovered");
        self.doc.set_targets(targets);
        self.save()
    }

    /// Would the guard let us grant ourselves the use of customer managed key `key` for one
    /// volume, and then send a scanner launch from a snapshot under it? The reason it would not,
    /// if so. KMS requests the IAM policy does not allow are not a refusal: the key policy decides
    /// them at launch (`Evaluated::key_policy_decides`; a refusal then fails the scanner).
    fn policy_gap(&self, key: &KmsKeyId) -> Option<String> {
        let grant = CreateGrantInput {
            key: key.clone(),
            grantee_principal: self.r.caller_arn.clone(),
            operations: super::share::GRANT_OPERATIONS.to_vec(),
            ebs_id: EbsId::Volume("vol-00000000".parse().ok()?),
            name: tags::grant_name(&self.id),
        };
        let probe = probe_launch(key)?;
        let refusal = [
            self.r.guard.policy().evaluate(&self.region, Call::CreateGrant(&grant)),
            self.r.guard.policy().evaluate(&self.region, Call::RunInstances(&probe)),
        ]
        .into_iter()
        .find_map(|entry| entry.refusal().map(|d| (entry.op, d)));
        refusal.map(|(op, d)| {
            format!(
                "encrypted with customer managed key {key}, which the IAM policy does not let us use for a scanner volume ({op}: {} on {}: {}); see policies/README.md, \"Gaps\"",
                d.action, d.resource, d.reason
            )
        })
    }
}

/// A `RunInstances` of one scanner with one volume under `key`, for asking the policy.
fn probe_launch(key: &KmsKeyId) -> Option<RunScannerInput> {
    let job: crate::cloud::JobId = "probe".parse().ok()?;
    let t = tags::resource_tags(&job, Some(tags::Role::SCANNER), jiff::Timestamp::UNIX_EPOCH);
    let snap_tags = tags::snapshot_tags(
        &job,
        tags::SnapshotSource::Volume { instance: &"i-00000000".parse().ok()?, volume: &"vol-00000000".parse().ok()? },
        jiff::Timestamp::UNIX_EPOCH,
    );
    Some(RunScannerInput {
        image: Tagged::new("ami-00000000".parse().ok()?, Tags::new()),
        root: None,
        instance_type: super::DEFAULT_INSTANCE_TYPE.to_owned(),
        subnet: Tagged::new("subnet-00000000".parse().ok()?, t.clone()),
        security_groups: vec![Tagged::new("sg-00000000".parse().ok()?, t.clone())],
        volumes: vec![ScannerVolume {
            device_name: "/dev/sdf".into(),
            snapshot: Tagged::new("snap-00000000".parse().ok()?, snap_tags),
            kms_key: Some(key.clone()),
        }],
        user_data_base64: String::new(),
        client_token: "probe".into(),
        instance_tags: t.clone(),
        volume_tags: t.clone(),
        network_interface_tags: t,
    })
}
