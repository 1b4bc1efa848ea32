//! The job's working document, persisted in the ledger (`job_data` "doc" and its parts in
//! `job_data_parts`, [`save`] / [`load`]) after every change the steps make: what discovery found (targets, their volumes and keys), which snapshot holds which
//! volume, the ephemeral network's ids, and which scanner scans which devices. Resume reads it
//! back; the ledger's resource rows remain the record of what exists, this is the mapping between
//! them that the rows do not carry.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cloud::ids::JobId;
use crate::cloud::ids::{
    GrantId, ImageId, InstanceId, InternetGatewayId, KmsKeyId, RouteTableId, SecurityGroupId, SnapshotId, SubnetId,
    VolumeId, VpcEndpointId, VpcId,
};
use crate::cloud::tags::Tags;
use crate::ledger::{Ledger, LedgerError};

/// The ledger `job_data` name of the document.
pub const DOC: &str = "doc";
/// The ledger `job_data` name of the job's HMAC key (kept apart so the document can be shown).
pub const KEY: &str = "hmac-key";

/// Which instances a job scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selector {
    /// Every running instance of the Region (our scanners excluded).
    All,
    /// These instances, whatever their state.
    Instances(Vec<InstanceId>),
    /// Running instances carrying all these tags.
    Tags(Vec<(String, String)>),
}

/// One volume of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeDoc {
    pub volume: VolumeId,
    /// The volume's tags as described (the guard authorizes the snapshot call with them).
    pub tags: Tags,
    /// The target's device name (`/dev/xvda`).
    pub device: String,
    pub size_gib: u32,
    pub encrypted: bool,
    pub kms_key: Option<KmsKeyId>,
    /// The key is customer managed (needs our grant).
    pub customer_key: bool,
    /// Why this volume cannot be scanned (set at discovery), e.g. a policy gap.
    pub unscannable: Option<String>,
    /// The snapshot intent's ledger row, written before the create call.
    pub snapshot_intent: Option<i64>,
    pub snapshot: Option<SnapshotId>,
    /// The snapshot's tags as created (the guard authorizes deletes with them).
    pub snapshot_tags: Option<Tags>,
    /// Unix ms when the job learnt the snapshot's id (its create returned, or it was adopted on
    /// resume): the snapshot timeout counts from here. Absent in documents written before it
    /// existed (the timeout then counts from the start of the step).
    #[serde(default)]
    pub snapshot_started_ms: Option<i64>,
    /// `completed` reached.
    pub snapshot_ready: bool,
    pub grant: Option<GrantId>,
    /// The scanner (name) that scans it.
    pub scanner: Option<String>,
    /// Results stored by the collector for it.
    pub scanned: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl VolumeDoc {
    /// Still on its way to a result.
    #[must_use]
    pub fn in_play(&self) -> bool {
        self.unscannable.is_none() && self.error.is_none()
    }
}

/// One target instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetDoc {
    pub tags: Tags,
    pub availability_zone: String,
    pub state: String,
    pub volumes: Vec<VolumeDoc>,
    /// Why the whole target failed (not found, no volume...).
    pub error: Option<String>,
}

/// The ephemeral network, filled in as it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDoc {
    pub availability_zone: Option<String>,
    pub vpc: Option<VpcId>,
    pub subnet: Option<SubnetId>,
    pub subnet_public_ips: bool,
    pub internet_gateway: Option<InternetGatewayId>,
    pub gateway_attached: bool,
    pub route_table: Option<RouteTableId>,
    pub route: bool,
    pub security_group: Option<SecurityGroupId>,
    pub egress: bool,
    pub endpoint: Option<VpcEndpointId>,
}

/// One scanner instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerDoc {
    /// `s0`, `s1`... (the bundle upload path's last part).
    pub name: String,
    pub client_token: String,
    /// (device name, target instance, volume) in manifest order.
    pub devices: Vec<(String, InstanceId, VolumeId)>,
    pub instance: Option<InstanceId>,
    /// Unix ms when it was launched (its deadline counts from there).
    pub launched_ms: Option<i64>,
    /// The upload deadline written in its manifest (Unix s), fixed and saved before its first
    /// launch attempt: a retried or resumed launch must send the same user data with the same
    /// `ClientToken`, or EC2 refuses it (`IdempotentParameterMismatch`) while the first launch's
    /// instance runs on. Absent in documents written before it existed.
    #[serde(default)]
    pub deadline_unix: Option<i64>,
    /// The bundle arrived.
    pub reported: bool,
    /// Why it produced nothing, if so.
    pub error: Option<String>,
}

/// The whole document.
///
/// Targets and scanners are private: every change goes through an accessor that records what
/// changed, so [`save`] writes only those parts (one ledger row per target and per scanner) and
/// the head. A job of thousands of volumes changes one volume at a time; rewriting the whole
/// document on every change made the daemon's CPU time quadratic in the job's size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobDoc {
    pub selector: Selector,
    /// RFC 3339: every resource's `agentless:expires-at`.
    pub expires_at: String,
    /// The collector URL handed to scanners.
    pub collector_url: String,
    pub baseline: bool,
    /// Stored as parts since schema version 4; inline in documents written before.
    #[serde(default)]
    targets: BTreeMap<InstanceId, TargetDoc>,
    pub network: NetworkDoc,
    pub image: Option<ImageId>,
    /// The image's root device (`DescribeImages` RootDeviceName), mapped `DeleteOnTermination`.
    #[serde(default)]
    pub image_root_device: Option<String>,
    /// The image's root size (`DescribeImages`), restated in the mapping (see `ScannerRoot`).
    #[serde(default)]
    pub image_root_size_gib: Option<i32>,
    /// Stored as parts since schema version 4; inline in documents written before.
    #[serde(default)]
    scanners: Vec<ScannerDoc>,
    /// Why the job failed (it then tears down and ends `Failed`).
    pub failure: Option<String>,
    /// Cancelled by the user (it then tears down and ends `Cancelled`).
    pub cancelled: bool,
    /// What the teardown could not remove (left for the auditor).
    pub leaked: Vec<String>,
    /// What changed since the last [`save`].
    #[serde(skip)]
    dirty: Dirty,
}

/// Documents are equal when their contents are (what is not yet saved does not matter).
impl PartialEq for JobDoc {
    fn eq(&self, other: &JobDoc) -> bool {
        self.selector == other.selector
            && self.expires_at == other.expires_at
            && self.collector_url == other.collector_url
            && self.baseline == other.baseline
            && self.targets == other.targets
            && self.network == other.network
            && self.image == other.image
            && self.scanners == other.scanners
            && self.failure == other.failure
            && self.cancelled == other.cancelled
            && self.leaked == other.leaked
    }
}

impl Eq for JobDoc {}

/// The parts of a [`JobDoc`] changed since it was last saved.
#[derive(Debug, Clone, Default)]
struct Dirty {
    /// Every part (and parts no longer in the document removed).
    all: bool,
    targets: BTreeSet<InstanceId>,
    scanners: BTreeSet<usize>,
}

impl Dirty {
    fn merge(&mut self, other: Dirty) {
        self.all |= other.all;
        self.targets.extend(other.targets);
        self.scanners.extend(other.scanners);
    }
}

impl JobDoc {
    /// A new job's document: no target, network or scanner yet.
    #[must_use]
    pub fn new(selector: Selector, expires_at: String, collector_url: String, baseline: bool) -> JobDoc {
        JobDoc {
            selector,
            expires_at,
            collector_url,
            baseline,
            targets: BTreeMap::new(),
            network: NetworkDoc::default(),
            image: None,
            image_root_device: None,
            image_root_size_gib: None,
            scanners: Vec::new(),
            failure: None,
            cancelled: false,
            leaked: Vec::new(),
            dirty: Dirty { all: true, ..Dirty::default() },
        }
    }

    /// The targets, by instance.
    #[must_use]
    pub fn targets(&self) -> &BTreeMap<InstanceId, TargetDoc> {
        &self.targets
    }

    /// Replace every target (discovery).
    pub fn set_targets(&mut self, targets: BTreeMap<InstanceId, TargetDoc>) {
        self.targets = targets;
        self.dirty.all = true;
    }

    /// The target `instance`, to change.
    pub fn target_mut(&mut self, instance: &InstanceId) -> Option<&mut TargetDoc> {
        let t = self.targets.get_mut(instance)?;
        self.dirty.targets.insert(instance.clone());
        Some(t)
    }

    /// Every volume, with its target.
    pub fn volumes(&self) -> impl Iterator<Item = (&InstanceId, &VolumeDoc)> {
        self.targets.iter().flat_map(|(i, t)| t.volumes.iter().map(move |v| (i, v)))
    }

    /// The volume `volume` of `instance`, to change.
    pub fn volume_mut(&mut self, instance: &InstanceId, volume: &VolumeId) -> Option<&mut VolumeDoc> {
        self.target_mut(instance)?.volumes.iter_mut().find(|v| &v.volume == volume)
    }

    /// The scanners, in launch-plan order.
    #[must_use]
    pub fn scanners(&self) -> &[ScannerDoc] {
        &self.scanners
    }

    /// Add a scanner to the plan.
    pub fn push_scanner(&mut self, scanner: ScannerDoc) {
        self.dirty.scanners.insert(self.scanners.len());
        self.scanners.push(scanner);
    }

    /// The scanner at `idx`, to change.
    pub fn scanner_mut(&mut self, idx: usize) -> Option<&mut ScannerDoc> {
        let s = self.scanners.get_mut(idx)?;
        self.dirty.scanners.insert(idx);
        Some(s)
    }
}

/// A part's key: `t:<instance>` or `s:<index>` (zero-padded, so keys sort in plan order).
fn target_key(instance: &InstanceId) -> String {
    format!("t:{instance}")
}

fn scanner_key(idx: usize) -> String {
    format!("s:{idx:06}")
}

/// Persist what changed in `doc` since it was loaded or last saved: its head (everything but the
/// targets and scanners) and the changed parts, in one transaction. On error nothing is written
/// and the changes stay recorded for the next save.
///
/// # Errors
///
/// A part cannot be encoded, or the ledger fails.
pub fn save(ledger: &mut Ledger, job: &JobId, doc: &mut JobDoc) -> Result<(), LedgerError> {
    let dirty = std::mem::take(&mut doc.dirty);
    let result = write(ledger, job, doc, &dirty);
    if result.is_err() {
        doc.dirty.merge(dirty);
    }
    result
}

fn write(ledger: &mut Ledger, job: &JobId, doc: &mut JobDoc, dirty: &Dirty) -> Result<(), LedgerError> {
    let json = |what: &'static str| move |source| LedgerError::Json { job: job.clone(), what, source };
    let mut parts = Vec::new();
    if dirty.all {
        for (i, t) in &doc.targets {
            parts.push((target_key(i), serde_json::to_string(t).map_err(json("a target"))?));
        }
        for (idx, s) in doc.scanners.iter().enumerate() {
            parts.push((scanner_key(idx), serde_json::to_string(s).map_err(json("a scanner"))?));
        }
    } else {
        for i in &dirty.targets {
            if let Some(t) = doc.targets.get(i) {
                parts.push((target_key(i), serde_json::to_string(t).map_err(json("a target"))?));
            }
        }
        for &idx in &dirty.scanners {
            if let Some(s) = doc.scanners.get(idx) {
                parts.push((scanner_key(idx), serde_json::to_string(s).map_err(json("a scanner"))?));
            }
        }
    }
    // The head without its parts (moving the collections out and back is O(1)).
    let targets = std::mem::take(&mut doc.targets);
    let scanners = std::mem::take(&mut doc.scanners);
    let head = serde_json::to_string(&*doc);
    doc.targets = targets;
    doc.scanners = scanners;
    let head = head.map_err(json("the working document"))?;
    ledger.put_job_data_parts(job, DOC, &head, &parts, dirty.all)
}

/// The job's working document, `None` if never stored. Reads documents of either layout (parts
/// since schema version 4, everything inline before).
///
/// # Errors
///
/// The ledger fails or a stored part does not have the expected shape.
pub fn load(ledger: &Ledger, job: &JobId) -> Result<Option<JobDoc>, LedgerError> {
    let Some(mut doc) = ledger.job_data::<JobDoc>(job, DOC)? else { return Ok(None) };
    let parts = ledger.job_data_parts(job, DOC)?;
    if parts.is_empty() {
        // Written inline (or nothing discovered yet): the next save writes the parts.
        doc.dirty.all = true;
        return Ok(Some(doc));
    }
    let corrupt = |part: &str, reason: String| LedgerError::Corrupt {
        table: "job_data_parts",
        row: format!("{job}/{DOC}/{part}"),
        column: "value",
        reason,
    };
    let mut scanners = BTreeMap::new();
    for (key, value) in parts {
        if let Some(instance) = key.strip_prefix("t:") {
            let id: InstanceId = instance.parse().map_err(|e: crate::cloud::IdError| corrupt(&key, e.to_string()))?;
            let t: TargetDoc = serde_json::from_str(&value).map_err(|e| corrupt(&key, e.to_string()))?;
            doc.targets.insert(id, t);
        } else if let Some(idx) = key.strip_prefix("s:") {
            let idx: usize = idx.parse().map_err(|e: std::num::ParseIntError| corrupt(&key, e.to_string()))?;
            let s: ScannerDoc = serde_json::from_str(&value).map_err(|e| corrupt(&key, e.to_string()))?;
            scanners.insert(idx, s);
        } else {
            return Err(corrupt(&key, "unknown part".into()));
        }
    }
    if scanners.keys().enumerate().any(|(n, idx)| n != *idx) {
        return Err(corrupt("s:*", "scanner parts are not numbered 0, 1, 2...".into()));
    }
    if !scanners.is_empty() {
        doc.scanners = scanners.into_values().collect();
    }
    Ok(Some(doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ids::{AccountId, Region};

    fn id<T: std::str::FromStr>(s: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        s.parse().expect("id")
    }

    fn volume(n: u32) -> VolumeDoc {
        VolumeDoc {
            volume: id(&format!("vol-{n:017x}")),
            tags: Tags::new(),
            device: "/dev/xvda".into(),
            size_gib: 8 + n,
            encrypted: false,
            kms_key: None,
            customer_key: false,
            unscannable: None,
            snapshot_intent: None,
            snapshot: None,
            snapshot_tags: None,
            snapshot_started_ms: None,
            snapshot_ready: false,
            grant: None,
            scanner: None,
            scanned: false,
            error: None,
        }
    }

    fn instance(n: u32) -> InstanceId {
        id(&format!("i-{n:017x}"))
    }

    fn targets(n: u32) -> BTreeMap<InstanceId, TargetDoc> {
        (0..n)
            .map(|k| {
                let t = TargetDoc {
                    tags: Tags::new(),
                    availability_zone: "us-east-1a".into(),
                    state: "running".into(),
                    volumes: vec![volume(2 * k), volume(2 * k + 1)],
                    error: None,
                };
                (instance(k), t)
            })
            .collect()
    }

    fn scanner(n: usize) -> ScannerDoc {
        ScannerDoc {
            name: format!("s{n}"),
            client_token: format!("tok-s{n}"),
            devices: vec![("/dev/sdf".into(), instance(0), volume(0).volume)],
            instance: None,
            launched_ms: None,
            deadline_unix: None,
            reported: false,
            error: None,
        }
    }

    fn ledger_with_job() -> (Ledger, JobId) {
        let mut l = Ledger::open_in_memory().expect("ledger");
        let job: JobId = id("20261129-0badcafe");
        let account: AccountId = id("111122223333");
        let region: Region = id("us-east-1");
        l.create_job(&job, &account, &region, &[]).expect("job");
        (l, job)
    }

    fn new_doc() -> JobDoc {
        JobDoc::new(Selector::All, "2026-11-30T00:00:00Z".into(), "https://collector".into(), true)
    }

    #[test]
    fn round_trip_in_parts() {
        let (mut l, job) = ledger_with_job();
        let mut doc = new_doc();
        save(&mut l, &job, &mut doc).expect("save");
        assert_eq!(load(&l, &job).expect("load").expect("doc"), doc);
        doc.set_targets(targets(3));
        for n in 0..12 {
            doc.push_scanner(scanner(n));
        }
        save(&mut l, &job, &mut doc).expect("save");
        let back = load(&l, &job).expect("load").expect("doc");
        assert_eq!(back, doc);
        assert_eq!(back.scanners().len(), 12);
        assert_eq!(back.scanners()[11].name, "s11", "scanners keep their plan order past 10");
        // The head does not carry the parts.
        let head: serde_json::Value = l.job_data(&job, DOC).expect("head").expect("stored");
        assert_eq!(head["targets"], serde_json::json!({}));
        assert_eq!(head["scanners"], serde_json::json!([]));
        assert_eq!(l.job_data_parts(&job, DOC).expect("parts").len(), 3 + 12);
    }

    #[test]
    fn a_save_writes_only_the_changed_parts() {
        let (mut l, job) = ledger_with_job();
        let mut doc = new_doc();
        doc.set_targets(targets(3));
        doc.push_scanner(scanner(0));
        doc.push_scanner(scanner(1));
        save(&mut l, &job, &mut doc).expect("save");
        let mut doc = load(&l, &job).expect("load").expect("doc");

        // Behind the document's back, mark target 2 and scanner 0 in the ledger: a save that
        // rewrote them would erase the marks.
        let mut marked = doc.targets()[&instance(2)].clone();
        marked.error = Some("marker".into());
        let mut marked_scanner = scanner(0);
        marked_scanner.error = Some("marker".into());
        let parts = vec![
            (target_key(&instance(2)), serde_json::to_string(&marked).expect("json")),
            (scanner_key(0), serde_json::to_string(&marked_scanner).expect("json")),
        ];
        let head = l.job_data::<serde_json::Value>(&job, DOC).expect("head").expect("stored").to_string();
        l.put_job_data_parts(&job, DOC, &head, &parts, false).expect("mark");

        // Change one volume of target 1 and scanner 1, and the head.
        let v = volume(2).volume;
        doc.volume_mut(&instance(1), &v).expect("volume").snapshot_ready = true;
        doc.scanner_mut(1).expect("scanner").reported = true;
        doc.failure = Some("head changed".into());
        save(&mut l, &job, &mut doc).expect("save");

        let back = load(&l, &job).expect("load").expect("doc");
        assert!(back.volumes().any(|(i, d)| i == &instance(1) && d.volume == v && d.snapshot_ready));
        assert!(back.scanners()[1].reported);
        assert_eq!(back.failure.as_deref(), Some("head changed"));
        assert_eq!(back.targets()[&instance(2)].error.as_deref(), Some("marker"), "target 2 was rewritten");
        assert_eq!(back.scanners()[0].error.as_deref(), Some("marker"), "scanner 0 was rewritten");
        // A second save with nothing changed writes no part.
        save(&mut l, &job, &mut doc).expect("save");
        let again = load(&l, &job).expect("load").expect("doc");
        assert_eq!(again.targets()[&instance(2)].error.as_deref(), Some("marker"));
    }

    #[test]
    fn a_failed_save_keeps_its_changes_for_the_next() {
        let (mut l, job) = ledger_with_job();
        let mut doc = new_doc();
        doc.set_targets(targets(2));
        save(&mut l, &job, &mut doc).expect("save");
        let mut doc = load(&l, &job).expect("load").expect("doc");
        let v = volume(0).volume;
        doc.volume_mut(&instance(0), &v).expect("volume").scanned = true;
        let unknown: JobId = id("20261129-00000000");
        assert!(matches!(save(&mut l, &unknown, &mut doc), Err(LedgerError::UnknownJob { .. })));
        save(&mut l, &job, &mut doc).expect("save");
        let back = load(&l, &job).expect("load").expect("doc");
        assert!(back.volumes().any(|(_, d)| d.volume == v && d.scanned), "the change was lost");
    }

    #[test]
    fn documents_written_inline_before_version_4_still_load() {
        let (mut l, job) = ledger_with_job();
        let mut doc = new_doc();
        doc.set_targets(targets(2));
        doc.push_scanner(scanner(0));
        // The old layout: one document with everything inline.
        let mut inline = serde_json::to_value(&doc).expect("json");
        assert_eq!(inline["targets"].as_object().map(serde_json::Map::len), Some(2));
        inline["network"]["vpc"] = serde_json::json!("vpc-0123456789abcdef0");
        l.put_job_data(&job, DOC, &inline).expect("inline");
        let mut back = load(&l, &job).expect("load").expect("doc");
        assert_eq!(back.targets(), doc.targets());
        assert_eq!(back.scanners(), doc.scanners());
        assert_eq!(back.network.vpc.as_ref().map(ToString::to_string).as_deref(), Some("vpc-0123456789abcdef0"));
        // The next save moves it to parts.
        save(&mut l, &job, &mut back).expect("save");
        assert_eq!(l.job_data_parts(&job, DOC).expect("parts").len(), 3);
        assert_eq!(load(&l, &job).expect("load").expect("doc"), back);
    }

    #[test]
    fn corrupt_parts_are_errors() {
        for (key, value) in [
            ("t:i-0123456789abcdef0", r#"{"not":"a target"}"#),
            ("t:not-an-instance", "{}"),
            ("s:x", "{}"),
            ("q:1", "{}"),
        ] {
            let (mut l, job) = ledger_with_job();
            let mut doc = new_doc();
            save(&mut l, &job, &mut doc).expect("save");
            let head = l.job_data::<serde_json::Value>(&job, DOC).expect("head").expect("stored").to_string();
            l.put_job_data_parts(&job, DOC, &head, &[(key.to_owned(), value.to_owned())], false).expect("write");
            let e = load(&l, &job).expect_err(key);
            assert!(matches!(&e, LedgerError::Corrupt { table: "job_data_parts", .. }), "{key}: {e}");
        }
        // A gap in the scanners' numbering.
        let (mut l, job) = ledger_with_job();
        let mut doc = new_doc();
        save(&mut l, &job, &mut doc).expect("save");
        let head = l.job_data::<serde_json::Value>(&job, DOC).expect("head").expect("stored").to_string();
        let s = serde_json::to_string(&scanner(1)).expect("json");
        l.put_job_data_parts(&job, DOC, &head, &[(scanner_key(1), s)], false).expect("write");
        assert!(matches!(load(&l, &job), Err(LedgerError::Corrupt { .. })));
    }
}
