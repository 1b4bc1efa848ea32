//! One account's CloudTrail pipeline reader: long-poll the queue, read each notification, fetch
//! each new log object with its size cap, read its records, and hand what they mean
//! ([`super::analyze`]) to the ledger in one transaction per object.
//!
//! Without `sqs:DeleteMessage` (the onboarding grants none), every message comes back after the
//! queue's visibility timeout until its retention period (SQS default 4 days) drops it: the ledger
//! keeps each object (bucket, key, ETag) and it is read once, whatever the number of deliveries.
//! A delivery of an object already processed costs one `ReceiveMessage` share and one ledger read.
//!
//! What is recorded as processed (never fetched again): objects read, objects refused by size
//! (from the notification or `Content-Length`), objects that are gone (`NoSuchKey`), and objects
//! whose content is not a readable log file. What is not (read again on the next delivery):
//! access denied (a policy fix makes it readable) and transient failures.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::analyze::EventRules;
use super::analyze::{Context, analyze};
use super::config::{TrailConfig, TrailReaderConfig};
use crate::api::metrics::{Metrics, TrailCounter};
use crate::cloud::ids::{AccountId, Region};
use crate::cloud::ops::{
    GetObjectInput, GetQueueUrlInput, OBJECT_TOO_LARGE, QueueMessage, QueueUrl, ReceiveMessageInput,
};
use crate::cloud::retry::{Retry, retry};
use crate::cloud::{Cloud, CloudError, ErrorKind, Guard};
use crate::job::runner::NowMs;
use crate::ledger::Ledger;
use crate::ledger::trail::{Delivery, ObjectKey, ObjectRead};
use crate::trail::log::{LogLimits, read};
use crate::trail::notification::{LogObject, Notification, parse};

/// How long the reader waits after a failure it cannot retry at once (access denied, the queue
/// missing): long enough not to flood the logs, short enough that a fixed policy is picked up
/// soon (our choice).
pub const FAILURE_PAUSE: Duration = Duration::from_secs(60);

/// How often calls of ours that CloudTrail never showed are counted and forgotten (our choice).
pub const EXPIRE_EVERY: Duration = Duration::from_secs(300);

/// One account's pipeline and what reading it needs.
pub struct Pipeline<C: Cloud> {
    pub account_name: String,
    pub account: AccountId,
    /// Our principal's ARN.
    pub principal: String,
    /// The Regions the account is scanned in.
    pub regions: Vec<Region>,
    pub guard: Arc<Guard<C>>,
    pub trail: TrailConfig,
    pub reader: TrailReaderConfig,
    /// `[events]`; `None`: no event scans.
    pub events: Option<EventRules>,
    pub ledger: Arc<Mutex<Ledger>>,
    pub metrics: Arc<Metrics>,
    /// The jobs' clock (ms): the simulated account's timeline under the sim.
    pub now_ms: NowMs,
}

impl<C: Cloud> std::fmt::Debug for Pipeline<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("account", &self.account).field("trail", &self.trail).finish_non_exhaustive()
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    /// S3's test event.
    TestEvent,
    /// Its objects, each with what became of it.
    Objects(Vec<(String, ObjectOutcome)>),
    /// Not a notification we read (logged with why).
    Refused(String),
}

/// What became of one log object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Read now: records read, event scans added, alerts raised.
    Read { records: u64, scans: u64, alerts: u64 },
    /// Processed on an earlier delivery.
    Duplicate,
    /// Not a CloudTrail log file (a digest, an insight file...).
    NotLogFile,
    /// Recorded as processed without being read (too large, gone, not a log file's content).
    Refused(String),
    /// Not read now; read again on the next delivery.
    Retry(String),
}

impl ObjectOutcome {
    fn label(&self) -> &'static str {
        match self {
            ObjectOutcome::Read { .. } => "read",
            ObjectOutcome::Duplicate => "duplicate",
            ObjectOutcome::NotLogFile => "not_log_file",
            ObjectOutcome::Refused(_) => "refused",
            ObjectOutcome::Retry(_) => "retry",
        }
    }
}

impl<C: Cloud> Pipeline<C> {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn region(&self) -> &Region {
        &self.trail.region
    }

    /// The queue's URL (`sqs:GetQueueUrl`, transient failures retried).
    ///
    /// # Errors
    ///
    /// The queue does not exist, access is denied, or the retries ran out.
    pub async fn queue_url(&self) -> Result<QueueUrl, CloudError> {
        let input = GetQueueUrlInput { queue_name: self.trail.queue.clone(), owner: self.trail.queue_account.clone() };
        retry(Retry::Transient, "GetQueueUrl", || self.guard.get_queue_url(self.region(), &input)).await
    }

    /// Read the queue until `stop` turns true.
    pub async fn run(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let queue = loop {
            match self.queue_url().await {
                Ok(q) => break q,
                Err(e) => {
                    tracing::error!(account = %self.account_name, region = %self.region(), queue = %self.trail.queue,
                        error = %e, "cannot find the CloudTrail queue; retrying in a minute");
                    tokio::select! {
                        () = tokio::time::sleep(FAILURE_PAUSE) => {}
                        _ = stop.changed() => return,
                    }
                    if *stop.borrow() {
                        return;
                    }
                }
            }
        };
        tracing::info!(account = %self.account_name, region = %self.region(), queue = %queue.url,
            bucket = %self.trail.bucket, "reading the CloudTrail pipeline");
        let mut last_expiry = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            let batch = tokio::select! {
                b = self.receive(&queue) => b,
                _ = stop.changed() => return,
            };
            match batch {
                Ok(messages) => {
                    for m in &messages {
                        self.handle(m).await;
                    }
                }
                Err(e) => {
                    tracing::error!(account = %self.account_name, region = %self.region(), queue = %queue.url,
                        error = %e, "cannot read the CloudTrail queue; retrying in a minute");
                    tokio::select! {
                        () = tokio::time::sleep(FAILURE_PAUSE) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
            if last_expiry.elapsed() >= EXPIRE_EVERY {
                last_expiry = tokio::time::Instant::now();
                self.expire_calls();
            }
        }
    }

    /// One long-polled batch.
    ///
    /// # Errors
    ///
    /// `ReceiveMessage` failed after its retries.
    pub async fn receive(&self, queue: &QueueUrl) -> Result<Vec<QueueMessage>, CloudError> {
        let input = ReceiveMessageInput {
            queue: queue.clone(),
            max_messages: self.reader.batch,
            wait_seconds: self.reader.wait_seconds,
            visibility_timeout: self.reader.visibility_timeout.map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
        };
        retry(Retry::Transient, "ReceiveMessage", || self.guard.receive_message(self.region(), &input)).await
    }

    /// Count and forget our calls CloudTrail never showed.
    pub fn expire_calls(&self) {
        let before =
            (self.now_ms)().saturating_sub(i64::try_from(self.reader.unseen_after.as_millis()).unwrap_or(i64::MAX));
        match self.ledger().expire_our_calls(before) {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(account = %self.account_name, calls = n,
                        "calls of ours that CloudTrail never showed (counted, not alerted: a read-only trail or a delivery gap)");
                }
                self.metrics.record_trail(TrailCounter::UnseenCalls, "all", n);
            }
            Err(e) => tracing::warn!(account = %self.account_name, error = %e, "cannot expire our recorded calls"),
        }
    }

    /// Handle one message: parse it, then read each log object it names.
    pub async fn handle(&self, m: &QueueMessage) -> MessageOutcome {
        match parse(&m.body, &self.trail.bucket) {
            Ok(Notification::Test { .. }) => {
                self.metrics.record_trail(TrailCounter::Messages, "test_event", 1);
                tracing::info!(account = %self.account_name, message = %m.message_id, "S3 test event: the notification reaches the queue");
                MessageOutcome::TestEvent
            }
            Ok(Notification::Objects(objects)) => {
                self.metrics.record_trail(TrailCounter::Messages, "objects", 1);
                let mut out = Vec::new();
                for o in &objects {
                    let outcome = self.object(o).await;
                    self.metrics.record_trail(TrailCounter::Objects, outcome.label(), 1);
                    match &outcome {
                        ObjectOutcome::Refused(why) => tracing::warn!(account = %self.account_name,
                            bucket = %o.bucket, key = %o.key, why = %why, "log object recorded without being read"),
                        ObjectOutcome::Retry(why) => tracing::warn!(account = %self.account_name,
                            bucket = %o.bucket, key = %o.key, why = %why, "log object not read; it is read on its next delivery"),
                        ObjectOutcome::Read { .. } | ObjectOutcome::Duplicate | ObjectOutcome::NotLogFile => {}
                    }
                    out.push((o.key.clone(), outcome));
                }
                MessageOutcome::Objects(out)
            }
            Err(e) => {
                self.metrics.record_trail(TrailCounter::Messages, "refused", 1);
                tracing::warn!(account = %self.account_name, message = %m.message_id, error = %e,
                    "queue message skipped: not an S3 notification of the trail bucket");
                MessageOutcome::Refused(e.to_string())
            }
        }
    }

    /// Read one log object once.
    pub async fn object(&self, o: &LogObject) -> ObjectOutcome {
        if !o.is_log_file() {
            return ObjectOutcome::NotLogFile;
        }
        let key = ObjectKey { bucket: o.bucket.clone(), key: o.key.clone(), etag: o.etag.clone().unwrap_or_default() };
        match self.ledger().trail_delivery(&self.account, &key) {
            Ok(Delivery::Done) => return ObjectOutcome::Duplicate,
            Ok(Delivery::New) => {}
            Err(e) => return ObjectOutcome::Retry(format!("ledger: {e}")),
        }
        let cap = self.reader.max_object_bytes;
        if let Some(size) = o.size
            && size > cap
        {
            return self.refuse(&key, format!("{size} bytes by its notification, over trail.max_object_bytes = {cap}"));
        }
        let input = GetObjectInput { bucket: o.bucket.clone(), key: o.key.clone(), max_bytes: cap };
        let body = match retry(Retry::Transient, "GetObject", || self.guard.get_object(self.region(), &input)).await {
            Ok(b) => b,
            Err(e) if e.code() == Some(OBJECT_TOO_LARGE) => return self.refuse(&key, e.to_string()),
            Err(e) if e.kind() == ErrorKind::NotFound => return self.refuse(&key, format!("gone: {e}")),
            Err(e) if matches!(e.kind(), ErrorKind::AccessDenied | ErrorKind::PolicyDenied) => {
                return ObjectOutcome::Retry(format!(
                    "{e} (reading log files needs s3:GetObject on arn:aws:s3:::{}/AWSLogs/*: attach \
                     policies/agentless-trail-reader.json or ReadOnlyAccess; `agentless policy check` names it)",
                    o.bucket
                ));
            }
            Err(e) => return ObjectOutcome::Retry(e.to_string()),
        };
        let limits =
            LogLimits { max_compressed: cap, max_decompressed: self.reader.max_inflated_bytes, ..LogLimits::default() };
        let bytes = body.bytes;
        let parsed = tokio::task::spawn_blocking(move || read(&bytes, &limits)).await;
        let log = match parsed {
            Ok(Ok(log)) => log,
            Ok(Err(e)) => return self.refuse(&key, format!("not a readable log file: {e}")),
            Err(e) => return ObjectOutcome::Retry(format!("the reader task failed: {e}")),
        };
        if log.skipped > 0 {
            tracing::warn!(account = %self.account_name, key = %o.key, skipped = log.skipped,
                reasons = ?log.skip_reasons, "records left out of a log file");
        }
        let ctx = Context {
            account: &self.account,
            principal: &self.principal,
            regions: &self.regions,
            events: self.events.as_ref(),
            crosscheck: self.reader.crosscheck,
        };
        let findings = {
            let ledger = self.ledger();
            analyze(&ctx, &log.records, |region: &str, ids: &BTreeSet<String>| ledger.our_resource_ids(region, ids))
        };
        let findings = match findings {
            Ok(f) => f,
            Err(e) => return ObjectOutcome::Retry(format!("ledger: {e}")),
        };
        let window = i64::try_from(self.reader.match_window.as_millis()).unwrap_or(i64::MAX);
        let records = log.records.len() as u64;
        let read = ObjectRead {
            outcome: "read",
            records,
            scans: &findings.scans,
            ours: &findings.ours,
            alerts: &findings.alerts,
            window_ms: window,
        };
        let done = self.ledger().trail_processed(&key, &read);
        let done = match done {
            Ok(d) => d,
            Err(e) => return ObjectOutcome::Retry(format!("ledger: {e}")),
        };
        for (w, n) in &findings.whose {
            self.metrics.record_trail(TrailCounter::Records, w.as_str(), *n);
        }
        for (k, n) in &findings.triggers {
            self.metrics.record_trail(TrailCounter::Events, k.as_str(), *n);
        }
        self.metrics.record_trail(TrailCounter::EventScans, "queued", done.scans_added);
        self.metrics.record_trail(TrailCounter::EventScans, "coalesced", done.scans_coalesced);
        let raised: BTreeSet<&str> = done.raised.iter().map(String::as_str).collect();
        let all = findings.ours.iter().map(|o| &o.alert).chain(findings.alerts.iter());
        for a in all.filter(|a| raised.contains(a.event_id.as_str())) {
            self.metrics.record_trail(TrailCounter::Alerts, a.kind, 1);
            tracing::warn!(account = %self.account_name, alert = a.kind, event = %a.event_name, event_id = %a.event_id,
                region = %a.region, principal = ?a.principal, source_ip = ?a.source_ip, user_agent = ?a.user_agent,
                resources = ?a.resources, "{}", a.detail);
        }
        ObjectOutcome::Read { records, scans: done.scans_added, alerts: done.raised.len() as u64 }
    }

    /// Record `key` processed without reading it.
    fn refuse(&self, key: &ObjectKey, why: String) -> ObjectOutcome {
        let outcome = format!("refused: {why}");
        match self.ledger().trail_processed(key, &ObjectRead::refused(&outcome)) {
            Ok(_) => ObjectOutcome::Refused(why),
            Err(e) => ObjectOutcome::Retry(format!("{why}; and the ledger failed: {e}")),
        }
    }
}
