//! The CloudTrail → S3 → SQS pipeline of the simulated account (docs/trail.md): what a
//! management-events trail records of the calls the sim serves, how CloudTrail delivers it as
//! gzip log files into a bucket, and the S3 event notifications on the queue the daemon reads,
//! with `sqs:GetQueueUrl`, `sqs:ReceiveMessage` and `s3:GetObject` over them.
//!
//! This module owns:
//!
//! - **The records** ([`record_call`], [`Event`]): one CloudTrail record per call the sim serves,
//!   success or AWS error (CloudTrail User Guide, "CloudTrail record contents"), with the
//!   caller's identity (ARN, a stable fake access key), the client's source IP and user agent
//!   ([`Client`]), the call's main inputs in CloudTrail's `requestParameters` shapes and the ids
//!   it created in `responseElements`. The SQS and S3 data calls are not recorded: a
//!   management-events trail does not log data events. A call that timed out (an injected
//!   `timeout`) is not recorded either (our choice: the request is taken as never having reached
//!   AWS). Records are kept only for an account with a pipeline, of the pipeline's Region (the
//!   onboarding's trail is single-Region); IAM's are logged in `us-east-1`, as AWS logs global
//!   services' events there.
//! - **Delivery** ([`deliver`], run by [`super::lifecycle::advance`] before every call): records
//!   once the oldest pending record is older than the delivery delay, every pending record (a
//!   few minutes of events, as CloudTrail batches them) becomes up to `files_per_delivery` gzip log files
//!   (`{"Records":[...]}`) under CloudTrail's key layout, each announced by one S3 event
//!   notification on the queue (S3 User Guide, "Event message structure"), after S3's test event.
//!   Chaos knobs: `duplicate_every` and `reorder` ([`PipelineConfig`]).
//! - **The queue and the bucket**: messages are never deleted (the reader has no
//!   `sqs:DeleteMessage`): each comes back after its visibility timeout until the retention
//!   period drops it; objects older than the retention are dropped too, which keeps the bucket
//!   bounded.
//!
//! Everything is plain data saved with the world ([`super::state::Account::pipeline`]).

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Ctx;
use super::state::{Prng, World};
use crate::cloud::Call;
use crate::cloud::error::CloudError;
use crate::cloud::ids::{AccountId, Region};
use crate::cloud::ops::*;

mod shapes;

pub use shapes::{ResponseElements, request_parameters, tag_specifications};

/// `eventVersion` of the records (CloudTrail User Guide, "CloudTrail record contents": 1.08 is the
/// version of current management events; 1.09+ only add fields).
pub const EVENT_VERSION: &str = "1.08";
/// The source IP of a default handle: an address of RFC 5737's TEST-NET-2 (our choice).
pub const DEFAULT_SOURCE_IP: &str = "198.51.100.10";
/// The user agent of a default handle: what our SDK sends (`app/agentless`, src/cloud/aws).
pub const DEFAULT_USER_AGENT: &str = "aws-sdk-rust/1.3 os/linux lang/rust/1.95 app/agentless";
/// The customer's administrator whose changes [`super::fleet::Setup::launch`] records (our choice).
pub const ADMIN_USER: &str = "ops-admin";
/// The administrator's source IP: RFC 5737's TEST-NET-3 (our choice).
pub const ADMIN_SOURCE_IP: &str = "203.0.113.20";
/// The user agent CloudTrail records for calls made from the EC2 console (CloudTrail User Guide,
/// "CloudTrail record contents", `userAgent`: `console.ec2.amazonaws.com`).
pub const ADMIN_USER_AGENT: &str = "console.ec2.amazonaws.com";
/// CloudTrail "typically delivers logs within an average of about 5 minutes of an API call"
/// (CloudTrail User Guide, "How CloudTrail works").
pub const DELIVERY_DELAY_MS: u64 = 5 * 60 * 1000;
/// Log files per delivery at most (our choice: CloudTrail writes several files per Region and
/// period, each of a subset of the records).
pub const FILES_PER_DELIVERY: u32 = 3;
/// SQS's default visibility timeout, 30 seconds (SQS Developer Guide, "Visibility timeout").
pub const VISIBILITY_TIMEOUT_MS: u64 = 30_000;
/// SQS's default message retention period, 4 days (SQS API Reference, `MessageRetentionPeriod`).
pub const RETENTION_MS: u64 = 4 * 24 * 3600 * 1000;
/// SQS's bounds: visibility timeout 0 to 12 hours, retention 60 seconds to 14 days (SQS API
/// Reference, `SetQueueAttributes`).
const MAX_VISIBILITY_TIMEOUT_MS: u64 = 12 * 3600 * 1000;
const MIN_RETENTION_MS: u64 = 60_000;
const MAX_RETENTION_MS: u64 = 14 * 24 * 3600 * 1000;
/// Where CloudTrail logs the events of global services such as IAM (CloudTrail User Guide,
/// "Global service events").
const GLOBAL_EVENTS_REGION: &str = "us-east-1";
/// The `configurationId` of the bucket's notification (our choice; the user names it in the
/// onboarding).
const NOTIFICATION_ID: &str = "agentless-trail-notification";

/// The client a handle's calls come from, as CloudTrail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub source_ip: String,
    pub user_agent: String,
}

impl Default for Client {
    fn default() -> Client {
        Client { source_ip: DEFAULT_SOURCE_IP.into(), user_agent: DEFAULT_USER_AGENT.into() }
    }
}

/// Who made a call: the account's IAM user and the client.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub account: &'a AccountId,
    pub user: &'a str,
    pub source_ip: &'a str,
    pub user_agent: &'a str,
}

/// An account's pipeline: the trail's Region, the bucket, the queue, and how delivery behaves.
/// The fleet file's `[accounts.pipeline]` (durations in ms, as everywhere in the fleet file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The trail's Region (single-Region), also the queue's.
    pub region: Region,
    pub bucket: String,
    /// The queue's name.
    pub queue: String,
    /// How old a record is when it is delivered ([`DELIVERY_DELAY_MS`]).
    #[serde(default = "default_delivery_delay_ms")]
    pub delivery_delay_ms: u64,
    /// Log files per delivery at most ([`FILES_PER_DELIVERY`]).
    #[serde(default = "default_files_per_delivery")]
    pub files_per_delivery: u32,
    /// The queue's visibility timeout ([`VISIBILITY_TIMEOUT_MS`]).
    #[serde(default = "default_visibility_timeout_ms")]
    pub visibility_timeout_ms: u64,
    /// The queue's retention period, also the bucket's lifecycle ([`RETENTION_MS`]).
    #[serde(default = "default_retention_ms")]
    pub retention_ms: u64,
    /// Enqueue every n-th notification twice (0: never).
    #[serde(default)]
    pub duplicate_every: u32,
    /// Enqueue each delivery's notifications in reverse order.
    #[serde(default)]
    pub reorder: bool,
}

fn default_delivery_delay_ms() -> u64 {
    DELIVERY_DELAY_MS
}

fn default_files_per_delivery() -> u32 {
    FILES_PER_DELIVERY
}

fn default_visibility_timeout_ms() -> u64 {
    VISIBILITY_TIMEOUT_MS
}

fn default_retention_ms() -> u64 {
    RETENTION_MS
}

impl PipelineConfig {
    /// A pipeline with AWS's defaults.
    #[must_use]
    pub fn new(region: Region, bucket: &str, queue: &str) -> PipelineConfig {
        PipelineConfig {
            region,
            bucket: bucket.to_owned(),
            queue: queue.to_owned(),
            delivery_delay_ms: DELIVERY_DELAY_MS,
            files_per_delivery: FILES_PER_DELIVERY,
            visibility_timeout_ms: VISIBILITY_TIMEOUT_MS,
            retention_ms: RETENTION_MS,
            duplicate_every: 0,
            reorder: false,
        }
    }

    /// The queue's URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
    #[must_use]
    pub fn queue_url(&self, account: &AccountId) -> String {
        format!("https://sqs.{}.amazonaws.com/{account}/{}", self.region, self.queue)
    }

    /// The queue's ARN.
    #[must_use]
    pub fn queue_arn(&self, account: &AccountId) -> String {
        format!("arn:aws:sqs:{}:{account}:{}", self.region, self.queue)
    }

    /// Why this configuration is impossible on AWS, if it is: (key, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        // S3 bucket naming rules (S3 User Guide, "General purpose bucket naming rules").
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
            && b.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && b.bytes().last().is_some_and(|c| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(("bucket", format!("\"{b}\" is not a valid S3 bucket name")));
        }
        // SQS queue names: 1 to 80 letters, digits, `-` and `_` (SQS API Reference, `CreateQueue`).
        let q = &self.queue;
        if q.is_empty() || q.len() > 80 || !q.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            return Err(("queue", format!("\"{q}\" is not a valid SQS queue name")));
        }
        if self.files_per_delivery == 0 {
            return Err(("files_per_delivery", "must be at least 1".into()));
        }
        if self.visibility_timeout_ms > MAX_VISIBILITY_TIMEOUT_MS {
            return Err(("visibility_timeout_ms", format!("SQS allows at most {MAX_VISIBILITY_TIMEOUT_MS} ms")));
        }
        if !(MIN_RETENTION_MS..=MAX_RETENTION_MS).contains(&self.retention_ms) {
            return Err((
                "retention_ms",
                format!("SQS allows {MIN_RETENTION_MS} to {MAX_RETENTION_MS} ms (60 seconds to 14 days)"),
            ));
        }
        Ok(())
    }
}

/// A record not yet delivered, with when it happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRecord {
    pub at_ms: u64,
    pub record: Value,
}

/// One object of the bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Object {
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
    /// 32 hex digits ([`etag`]).
    pub etag: String,
    pub created_ms: u64,
}

/// One message of the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub sent_ms: u64,
    /// Hidden until then (received within the visibility timeout).
    pub visible_ms: u64,
    pub receive_count: u32,
}

/// An account's pipeline and everything in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub config: PipelineConfig,
    /// S3's test event was enqueued (at the first delivery after the pipeline was set up).
    pub test_event_sent: bool,
    /// Records not yet delivered, oldest first.
    pub pending: Vec<PendingRecord>,
    /// The bucket, by key.
    pub objects: BTreeMap<String, Object>,
    /// The queue, in the order messages were sent.
    pub queue: Vec<Message>,
    /// Notifications sent so far (`duplicate_every`, the sequencer).
    pub notifications: u64,
}

impl Pipeline {
    #[must_use]
    pub fn new(config: PipelineConfig) -> Pipeline {
        Pipeline {
            config,
            test_event_sent: false,
            pending: Vec::new(),
            objects: BTreeMap::new(),
            queue: Vec::new(),
            notifications: 0,
        }
    }

    fn enqueue(&mut self, prng: &mut Prng, body: String, now_ms: u64) {
        self.queue.push(Message { id: prng.uuid(), body, sent_ms: now_ms, visible_ms: now_ms, receive_count: 0 });
    }

    /// Apply what is due at `now_ms`: the test event, expiry, and the delivery of records older
    /// than the delay. Whether anything changed.
    fn deliver(&mut self, account: &AccountId, prng: &mut Prng, now_ms: u64) -> bool {
        let mut changed = false;
        if !self.test_event_sent {
            let body = test_event(&self.config.bucket, prng, now_ms);
            self.enqueue(prng, body, now_ms);
            self.test_event_sent = true;
            changed = true;
        }
        let retention = self.config.retention_ms;
        let (objects, messages) = (self.objects.len(), self.queue.len());
        self.objects.retain(|_, o| o.created_ms.saturating_add(retention) > now_ms);
        self.queue.retain(|m| m.sent_ms.saturating_add(retention) > now_ms);
        changed |= objects != self.objects.len() || messages != self.queue.len();
        let delay = self.config.delivery_delay_ms;
        if !self.pending.iter().any(|r| r.at_ms.saturating_add(delay) <= now_ms) {
            return changed;
        }
        // Like CloudTrail, which writes a Region's events of the last few minutes in one delivery
        // (about every 5 minutes, CloudTrail FAQ): once the oldest pending record is due, every
        // pending record goes, not one file per call.
        let mut due = std::mem::take(&mut self.pending);
        due.sort_by_key(|r| r.at_ms);
        let files = usize::try_from(self.config.files_per_delivery).unwrap_or(1).clamp(1, due.len().max(1));
        let per_file = due.len().div_ceil(files);
        let mut notes = Vec::new();
        let mut unwritten = Vec::new();
        for chunk in due.chunks(per_file.max(1)) {
            let records: Vec<&Value> = chunk.iter().map(|r| &r.record).collect();
            let body = match serde_json::to_vec(&json!({ "Records": records })).map(|j| gzip(&j)) {
                Ok(Ok(b)) => b,
                // Not expected (writing to memory); the records stay pending rather than be lost.
                _ => {
                    unwritten.extend_from_slice(chunk);
                    continue;
                }
            };
            let key = log_key(account, &self.config.region, prng, now_ms);
            let object = Object { etag: etag(&body), created_ms: now_ms, body };
            self.notifications += 1;
            notes.push(notification(&self.config, &key, &object, self.notifications, prng, now_ms));
            self.objects.insert(key, object);
        }
        unwritten.append(&mut self.pending);
        self.pending = unwritten;
        if self.config.reorder {
            notes.reverse();
        }
        for (n, body) in notes {
            let twice = self.config.duplicate_every > 0 && n % u64::from(self.config.duplicate_every) == 0;
            if twice {
                self.enqueue(prng, body.clone(), now_ms);
            }
            self.enqueue(prng, body, now_ms);
        }
        true
    }

    /// Up to `max` visible messages, oldest first, each hidden for `visibility_ms` afterwards.
    fn receive(&mut self, now_ms: u64, max: usize, visibility_ms: u64) -> Vec<QueueMessage> {
        let mut out = Vec::new();
        for m in self.queue.iter_mut().filter(|m| m.visible_ms <= now_ms).take(max) {
            m.visible_ms = now_ms.saturating_add(visibility_ms);
            m.receive_count = m.receive_count.saturating_add(1);
            out.push(QueueMessage {
                message_id: m.id.clone(),
                body: m.body.clone(),
                receive_count: Some(m.receive_count),
                sent_at_ms: Some(m.sent_ms),
            });
        }
        out
    }

    /// When something may next become receivable: a hidden message visible again, a record
    /// falling due, the test event.
    fn next_wake(&self, now_ms: u64) -> Option<u64> {
        let visible = self.queue.iter().map(|m| m.visible_ms).filter(|v| *v > now_ms).min();
        let due = self.pending.iter().map(|r| r.at_ms.saturating_add(self.config.delivery_delay_ms)).min();
        let test = (!self.test_event_sent).then_some(now_ms);
        [visible, due, test].into_iter().flatten().min()
    }
}

/// Deliver what is due in every account's pipeline (module documentation). Whether anything
/// changed.
pub fn deliver(world: &mut World, now_ms: u64) -> bool {
    let World { accounts, prng, .. } = world;
    let mut changed = false;
    for (account, a) in accounts.iter_mut() {
        if let Some(p) = a.pipeline.as_mut() {
            changed |= p.deliver(account, prng, now_ms);
        }
    }
    changed
}

/// When the queue `name` of `owner` in `region` may next have something to receive.
#[must_use]
pub fn next_wake(world: &World, owner: &AccountId, region: &Region, name: &str, now_ms: u64) -> Option<u64> {
    let p = world.accounts.get(owner)?.pipeline.as_ref()?;
    (p.config.region == *region && p.config.queue == name).then(|| p.next_wake(now_ms)).flatten()
}

/// The pipeline whose queue is `name` in `region` of `owner`.
fn queue_mut<'w>(world: &'w mut World, owner: &str, region: &Region, name: &str) -> Option<&'w mut Pipeline> {
    let owner: AccountId = owner.parse().ok()?;
    let p = world.accounts.get_mut(&owner)?.pipeline.as_mut()?;
    (p.config.region == *region && p.config.queue == name).then_some(p)
}

/// Receive from the queue `url` in `region` without a call (a long poll's later attempts, after
/// the call itself was authorized): `None` if there is no such queue.
pub fn receive_now(
    world: &mut World,
    region: &Region,
    input: &ReceiveMessageInput,
    now_ms: u64,
) -> Option<Vec<QueueMessage>> {
    let (owner, name) = input.queue.account_and_name()?;
    let (owner, name) = (owner.to_owned(), name.to_owned());
    let p = queue_mut(world, &owner, region, &name)?;
    let visibility = input.visibility_timeout.map_or(p.config.visibility_timeout_ms, |s| u64::from(s) * 1000);
    let max = usize::from(input.max_messages.clamp(1, SQS_MAX_MESSAGES));
    Some(p.receive(now_ms, max, visibility))
}

fn no_queue(ctx: &Ctx<'_>, queue: &str) -> CloudError {
    ctx.err("QueueDoesNotExist", format!("The specified queue {queue} does not exist."), vec![queue.to_owned()])
}

pub fn get_queue_url(ctx: &mut Ctx<'_>, input: &GetQueueUrlInput) -> Result<QueueUrl, CloudError> {
    ctx.authorize(Call::GetQueueUrl(input))?;
    let owner = input.owner.clone().unwrap_or_else(|| ctx.account.clone());
    let url = ctx
        .world
        .accounts
        .get(&owner)
        .and_then(|a| a.pipeline.as_ref())
        .filter(|p| p.config.region == ctx.region && p.config.queue == input.queue_name)
        .map(|p| p.config.queue_url(&owner));
    url.map(|url| QueueUrl { url }).ok_or_else(|| no_queue(ctx, &input.queue_name))
}

pub fn receive_message(ctx: &mut Ctx<'_>, input: &ReceiveMessageInput) -> Result<Vec<QueueMessage>, CloudError> {
    ctx.authorize(Call::ReceiveMessage(input))?;
    let (now_ms, region) = (ctx.now_ms, ctx.region.clone());
    let out = receive_now(ctx.world, &region, input, now_ms).ok_or_else(|| no_queue(ctx, &input.queue.url))?;
    ctx.dirty |= !out.is_empty();
    Ok(out)
}

pub fn get_object(ctx: &mut Ctx<'_>, input: &GetObjectInput) -> Result<ObjectBody, CloudError> {
    // Bucket names are global: whichever account's pipeline holds it.
    let exists =
        ctx.world.accounts.values().any(|a| a.pipeline.as_ref().is_some_and(|p| p.config.bucket == input.bucket));
    if !exists {
        return Err(ctx.err(
            "NoSuchBucket",
            format!("The specified bucket {} does not exist.", input.bucket),
            vec![input.bucket.clone()],
        ));
    }
    ctx.authorize(Call::GetObject(input))?;
    let object = ctx
        .world
        .accounts
        .values()
        .filter_map(|a| a.pipeline.as_ref())
        .find(|p| p.config.bucket == input.bucket)
        .and_then(|p| p.objects.get(&input.key));
    let Some(object) = object else {
        let at = format!("s3://{}/{}", input.bucket, input.key);
        return Err(ctx.err("NoSuchKey", "The specified key does not exist.", vec![at]));
    };
    let size = object.body.len() as u64;
    if size > input.max_bytes {
        return Err(input.too_large(ctx.op, ctx.region.clone(), size));
    }
    Ok(ObjectBody { bytes: object.body.clone(), etag: Some(object.etag.clone()) })
}

// ------------------------------------------------------------------------------------ recording

/// One event to record, with its caller given apart ([`Who`]).
#[derive(Debug, Clone)]
pub struct Event {
    /// `ec2.amazonaws.com`...
    pub source: &'static str,
    pub name: String,
    /// `awsRegion`.
    pub region: String,
    pub at_ms: u64,
    pub request_parameters: Value,
    pub response_elements: Value,
    /// (`errorCode`, `errorMessage`).
    pub error: Option<(String, String)>,
    /// `requestID`; `None`: drawn.
    pub request_id: Option<String>,
    pub read_only: bool,
}

/// Whether `account` has a pipeline whose trail logs `region`.
fn trail_logs(world: &World, account: &AccountId, region: &str) -> bool {
    world.accounts.get(account).and_then(|a| a.pipeline.as_ref()).is_some_and(|p| p.config.region.as_str() == region)
}

/// Keep `event` by `who` for delivery if `who`'s account has a trail in its Region. Whether it
/// was kept.
pub fn push(world: &mut World, who: Who<'_>, event: Event) -> bool {
    if !trail_logs(world, who.account, &event.region) {
        return false;
    }
    let event_id = world.prng.uuid();
    let request_id = match event.request_id {
        Some(r) => r,
        None => world.prng.uuid(),
    };
    let mut record = json!({
        "eventVersion": EVENT_VERSION,
        "userIdentity": {
            "type": "IAMUser",
            "principalId": super::identity::user_id(who.account.as_str(), who.user),
            "arn": format!("arn:aws:iam::{}:user/{}", who.account, who.user),
            "accountId": who.account.as_str(),
            "accessKeyId": access_key_id(who.account.as_str(), who.user),
            "userName": who.user,
        },
        "eventTime": rfc3339(event.at_ms, false),
        "eventSource": event.source,
        "eventName": event.name,
        "awsRegion": event.region,
        "sourceIPAddress": who.source_ip,
        "userAgent": who.user_agent,
        "requestParameters": event.request_parameters,
        "responseElements": event.response_elements,
        "requestID": request_id,
        "eventID": event_id,
        "readOnly": event.read_only,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": who.account.as_str(),
        "eventCategory": "Management",
    });
    if let (Some((code, message)), Some(map)) = (event.error, record.as_object_mut()) {
        map.insert("errorCode".into(), Value::String(code));
        map.insert("errorMessage".into(), Value::String(message));
    }
    let Some(p) = world.accounts.get_mut(who.account).and_then(|a| a.pipeline.as_mut()) else { return false };
    p.pending.push(PendingRecord { at_ms: event.at_ms, record });
    true
}

/// Whether `account`'s trail logs `call` made in `region` (a management event of the trail's
/// Region).
#[must_use]
pub fn logs(world: &World, account: &AccountId, call: Call<'_>, region: &Region) -> bool {
    match event_source(call) {
        Some(IAM) => trail_logs(world, account, GLOBAL_EVENTS_REGION),
        Some(_) => trail_logs(world, account, region.as_str()),
        None => false,
    }
}

/// Record one call the sim served (module documentation): `outcome` is its `responseElements`
/// or its AWS error. Whether a record was kept.
pub fn record_call(
    world: &mut World,
    who: Who<'_>,
    call: Call<'_>,
    region: &Region,
    at_ms: u64,
    request_id: &str,
    outcome: Result<Value, &CloudError>,
) -> bool {
    let source = match event_source(call) {
        Some(s) => s,
        None => return false,
    };
    let region = if source == IAM { GLOBAL_EVENTS_REGION } else { region.as_str() };
    // The common case (no trail here) costs no JSON.
    if !trail_logs(world, who.account, region) {
        return false;
    }
    let (response_elements, error) = match outcome {
        Ok(v) => (v, None),
        Err(e) => {
            let Some(code) = e.code() else { return false };
            (Value::Null, Some((error_code(source, code), e.message().to_owned())))
        }
    };
    let event = Event {
        source,
        name: call.name().to_owned(),
        region: region.to_owned(),
        at_ms,
        request_parameters: request_parameters(call),
        response_elements,
        error,
        request_id: Some(request_id.to_owned()),
        read_only: read_only(call.name()),
    };
    push(world, who, event)
}

const EC2: &str = "ec2.amazonaws.com";
const KMS: &str = "kms.amazonaws.com";
const STS: &str = "sts.amazonaws.com";
const IAM: &str = "iam.amazonaws.com";

/// The `eventSource` of a call; `None` for the data events a management trail does not log.
fn event_source(call: Call<'_>) -> Option<&'static str> {
    match call {
        Call::GetQueueUrl(_) | Call::ReceiveMessage(_) | Call::GetObject(_) => None,
        Call::DescribeKey(_) | Call::CreateGrant(_) | Call::ListGrants(_) | Call::RevokeGrant(_) => Some(KMS),
        Call::GetCallerIdentity(_) => Some(STS),
        Call::GetUser(_) => Some(IAM),
        _ => Some(EC2),
    }
}

/// The `eventSource` of an event recorded by name ([`super::fleet::Setup::record`]).
#[must_use]
pub fn source_of_name(name: &str) -> &'static str {
    const KMS_NAMES: [&str; 12] = [
        "CreateGrant",
        "RevokeGrant",
        "RetireGrant",
        "ListGrants",
        "DescribeKey",
        "CreateKey",
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ScheduleKeyDeletion",
        "PutKeyPolicy",
    ];
    const STS_NAMES: [&str; 3] = ["GetCallerIdentity", "AssumeRole", "GetSessionToken"];
    if KMS_NAMES.contains(&name) {
        KMS
    } else if STS_NAMES.contains(&name) {
        STS
    } else if name.ends_with("User")
        || name.ends_with("AccessKey")
        || name.contains("Policy")
        || name.ends_with("Role")
        || (name.ends_with("Group") && !["Security", "Placement", "Launch"].iter().any(|w| name.contains(w)))
    {
        IAM
    } else {
        EC2
    }
}

/// `readOnly`: reads are `Describe*`, `Get*`, `List*` (CloudTrail's classification of these APIs).
fn read_only(name: &str) -> bool {
    ["Describe", "Get", "List"].iter().any(|p| name.starts_with(p))
}

/// CloudTrail prefixes EC2 error codes with `Client.` or `Server.` (e.g.
/// `Client.UnauthorizedOperation`); the other services' codes are as the API returns them.
fn error_code(source: &str, code: &str) -> String {
    if source != EC2 || code.starts_with("Client.") || code.starts_with("Server.") {
        return code.to_owned();
    }
    let server = matches!(code, "InternalError" | "Unavailable" | "ServiceUnavailable" | "InternalFailure");
    format!("{}.{code}", if server { "Server" } else { "Client" })
}

/// A stable fake access key id `AKIA` + 16 characters for an account's user.
#[must_use]
pub fn access_key_id(account: &str, user: &str) -> String {
    // Access key ids use upper-case letters and the digits 2 to 7 (base32's alphabet).
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h: u64 = 0x84222325cbf29ce4;
    for b in account.bytes().chain([0]).chain(user.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut s = String::from("AKIA");
    for i in 0..16 {
        let v = (h.rotate_left(i * 5) ^ h >> 7) & 31;
        s.push(char::from(ALPHABET[usize::try_from(v).unwrap_or(0)]));
    }
    s
}

/// RFC 3339 UTC of timeline ms: seconds (`2026-12-07T18:43:57Z`, CloudTrail's `eventTime`) or
/// milliseconds (`...57.123Z`, S3 notifications' `eventTime`).
#[must_use]
pub fn rfc3339(ms: u64, millis: bool) -> String {
    let ts = jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX);
    let format = if millis { "%Y-%m-%dT%H:%M:%S%.3fZ" } else { "%Y-%m-%dT%H:%M:%SZ" };
    ts.strftime(format).to_string()
}

// -------------------------------------------------------------------------------------- delivery

/// gzip of `bytes`.
fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes)?;
    e.finish()
}

/// The ETag of an object: 32 hex digits of a digest of its bytes (S3's is the MD5 of a
/// single-part upload; SHA-256 truncated to the same length here, as no MD5 is in the tree).
#[must_use]
pub fn etag(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// `n` random letters and digits.
fn alnum(prng: &mut Prng, n: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n).map(|_| char::from(ALPHABET[usize::try_from(prng.next_u64() % 62).unwrap_or(0)])).collect()
}

/// A log file's key (CloudTrail User Guide, "Finding your CloudTrail log files"):
/// `AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 alnum>.json.gz`.
fn log_key(account: &AccountId, region: &Region, prng: &mut Prng, now_ms: u64) -> String {
    let ts =
        jiff::Timestamp::from_millisecond(i64::try_from(now_ms).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX);
    let day = ts.strftime("%Y/%m/%d");
    let stamp = ts.strftime("%Y%m%dT%H%MZ");
    let unique = alnum(prng, 16);
    format!("AWSLogs/{account}/CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz")
}

/// An object key as S3 puts it in event notifications: URL-encoded, a space as `+` (S3 User
/// Guide, "Event message structure": "The s3 key provides information about the bucket and
/// object involved in the event. The object key name value is URL encoded.").
#[must_use]
pub fn url_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// S3's test event, sent when a notification configuration is set (S3 User Guide, "Event
/// message structure").
fn test_event(bucket: &str, prng: &mut Prng, now_ms: u64) -> String {
    json!({
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": rfc3339(now_ms, true),
        "Bucket": bucket,
        "RequestId": prng.hex(16).to_uppercase(),
        "HostId": alnum(prng, 76),
    })
    .to_string()
}

/// The `ObjectCreated:Put` notification of a new log file: (its number, the message body).
fn notification(
    config: &PipelineConfig,
    key: &str,
    object: &Object,
    n: u64,
    prng: &mut Prng,
    now_ms: u64,
) -> (u64, String) {
    let body = json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": config.region.as_str(),
            "eventTime": rfc3339(now_ms, true),
            "eventName": "ObjectCreated:Put",
            // CloudTrail writes with its service-linked delivery role (our choice of id).
            "userIdentity": { "principalId": "AWS:AROAEXAMPLECLOUDTRAIL:regionalDeliverySession" },
            "requestParameters": { "sourceIPAddress": "cloudtrail.amazonaws.com" },
            "responseElements": {
                "x-amz-request-id": prng.hex(16).to_uppercase(),
                "x-amz-id-2": alnum(prng, 56),
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": NOTIFICATION_ID,
                "bucket": {
                    "name": config.bucket,
                    "ownerIdentity": { "principalId": "A3NL1KOZZKExample" },
                    "arn": format!("arn:aws:s3:::{}", config.bucket),
                },
                "object": {
                    "key": url_encode_key(key),
                    "size": object.body.len(),
                    "eTag": object.etag,
                    // Increasing with each event of the bucket, as S3's hexadecimal sequencer.
                    "sequencer": format!("{n:018X}"),
                },
            },
        }]
    });
    (n, body.to_string())
}

/// Bytes as base64 in the saved world.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_encoded_as_s3_does() {
        assert_eq!(url_encode_key("AWSLogs/1/a b+c=d.json.gz"), "AWSLogs/1/a+b%2Bc%3Dd.json.gz");
    }

    #[test]
    fn access_keys_are_stable_and_shaped() {
        let k = access_key_id("111122223333", "agentless-scanner");
        assert_eq!(k, access_key_id("111122223333", "agentless-scanner"));
        assert_ne!(k, access_key_id("111122223333", "ops-admin"));
        assert_eq!(k.len(), 20);
        assert!(k.starts_with("AKIA") && k.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()), "{k}");
    }

    #[test]
    fn event_times_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_000, false), "1970-01-01T00:00:01Z");
        assert_eq!(rfc3339(1_234, true), "1970-01-01T00:00:01.234Z");
    }

    #[test]
    fn ec2_error_codes_get_their_prefix() {
        assert_eq!(error_code(EC2, "UnauthorizedOperation"), "Client.UnauthorizedOperation");
        assert_eq!(error_code(EC2, "InternalError"), "Server.InternalError");
        assert_eq!(error_code(KMS, "AccessDeniedException"), "AccessDeniedException");
    }
}
