//! The CloudTrail → S3 → SQS pipeline of the simulated account (`agentless::cloud::sim::trail`), read
//! the way the daemon's reader reads it: `GetQueueUrl`, long-polled `ReceiveMessage` (no delete),
//! `GetObject` of each notified log file, gunzip, `Records`. On the paused tokio clock, so the
//! delivery delay, visibility timeouts and retention pass instantly.

use std::io::Read;
use std::time::Duration;

use agentless::cloud::ops::*;
use agentless::cloud::sim::state::World;
use agentless::cloud::sim::trail::{self, PipelineConfig};
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::tags::{self, SnapshotSource};
use agentless::cloud::{ErrorKind, Guard, InstanceId, Region, Tags, VolumeId};
use agentless::policy::{Policy, agentless_scan_policy, trail_reader_policy};
use serde_json::{Value, json};

use super::{ACCOUNT, ALLOW_ALL, USER, account, customer, fleet, guard_over};
use crate::conformance::{east, expires, job};

const BUCKET: &str = "aws-cloudtrail-logs-444455556666-agentless";
const QUEUE: &str = "aliyun-sasc-log-queue";
/// Above any log file of these tests.
const CAP: u64 = 1 << 20;

fn queue_arn() -> String {
    format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{QUEUE}")
}

/// The custom policy and the pipeline's reader policy: what the onboarding attaches.
fn reader_policies() -> Vec<Policy> {
    vec![agentless_scan_policy().expect("policy"), trail_reader_policy(&queue_arn(), BUCKET).expect("reader")]
}

/// A world with a pipeline in us-east-1 configured by `tweak` (AWS's defaults otherwise), and
/// the default principal behind a guard with the same policies.
fn piped(tweak: impl FnOnce(&mut PipelineConfig)) -> (SimCloud, Guard<SimCloud>) {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let mut config = PipelineConfig::new(east(), BUCKET, QUEUE);
    tweak(&mut config);
    sim.setup(|s| s.pipeline(&account(), config)).expect("pipeline");
    let guard = guard_over(&sim, reader_policies());
    (sim, guard)
}

async fn queue_url(guard: &Guard<SimCloud>) -> QueueUrl {
    guard
        .get_queue_url(&east(), &GetQueueUrlInput { queue_name: QUEUE.into(), owner: None })
        .await
        .expect("GetQueueUrl")
}

async fn receive(guard: &Guard<SimCloud>, max: u8, wait_seconds: u8) -> Vec<QueueMessage> {
    let queue = queue_url(guard).await;
    guard
        .receive_message(
            &east(),
            &ReceiveMessageInput { queue, max_messages: max, wait_seconds, visibility_timeout: None },
        )
        .await
        .expect("ReceiveMessage")
}

fn body(m: &QueueMessage) -> Value {
    serde_json::from_str(&m.body).expect("a JSON message body")
}

fn is_test_event(m: &QueueMessage) -> bool {
    body(m)["Event"] == "s3:TestEvent"
}

/// The S3 notification's object (`Records[0].s3.object`).
fn s3_object(m: &QueueMessage) -> Value {
    let b = body(m);
    assert_eq!(b["Records"][0]["eventSource"], "aws:s3", "{b}");
    assert_eq!(b["Records"][0]["eventName"], "ObjectCreated:Put", "{b}");
    assert_eq!(b["Records"][0]["s3"]["bucket"]["name"], BUCKET, "{b}");
    assert_eq!(b["Records"][0]["s3"]["bucket"]["arn"], format!("arn:aws:s3:::{BUCKET}"), "{b}");
    b["Records"][0]["s3"]["object"].clone()
}

/// S3's URL-encoded key, decoded (`+` is a space).
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 key")
}

async fn fetch(guard: &Guard<SimCloud>, key: &str, max_bytes: u64) -> Result<ObjectBody, agentless::cloud::CloudError> {
    guard.get_object(&east(), &GetObjectInput { bucket: BUCKET.into(), key: key.into(), max_bytes }).await
}

fn gunzip(bytes: &[u8]) -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).expect("a gzip log file");
    serde_json::from_str(&text).expect("a JSON log file")
}

/// Every CloudTrail record of the notifications now visible, in notification order.
async fn records(guard: &Guard<SimCloud>) -> Vec<Value> {
    let mut out = Vec::new();
    for m in receive(guard, 10, 0).await.iter().filter(|m| !is_test_event(m)) {
        let key = url_decode(s3_object(m)["key"].as_str().expect("key"));
        let file = gunzip(&fetch(guard, &key, CAP).await.expect("GetObject").bytes);
        out.extend(file["Records"].as_array().expect("Records").iter().cloned());
    }
    out
}

fn the<'a>(records: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = records.iter().filter(|r| r["eventName"] == name).collect();
    assert_eq!(found.len(), 1, "one {name} in {records:#?}");
    found[0]
}

fn root_volume(sim: &SimCloud, instance: &InstanceId) -> VolumeId {
    sim.inspect(|w| w.accounts[&account()].regions[&east()].instances[instance].attachments[0].volume_id.clone())
}

fn objects(sim: &SimCloud) -> usize {
    sim.inspect(|w: &World| w.accounts[&account()].pipeline.as_ref().map_or(0, |p| p.objects.len()))
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Our principal's identity, client and the call's Region, as CloudTrail records them.
fn assert_ours(r: &Value, source_ip: &str, user_agent: &str) {
    assert_eq!(r["eventVersion"], "1.08");
    assert_eq!(r["userIdentity"]["type"], "IAMUser");
    assert_eq!(r["userIdentity"]["arn"], format!("arn:aws:iam::{ACCOUNT}:user/{USER}"));
    assert_eq!(r["userIdentity"]["accountId"], ACCOUNT);
    assert_eq!(r["userIdentity"]["userName"], USER);
    assert_eq!(r["userIdentity"]["accessKeyId"], trail::access_key_id(ACCOUNT, USER));
    assert!(r["userIdentity"]["accessKeyId"].as_str().is_some_and(|k| k.starts_with("AKIA") && k.len() == 20), "{r}");
    assert!(r["userIdentity"]["principalId"].as_str().is_some_and(|p| p.starts_with("AIDA")), "{r}");
    assert_eq!(r["sourceIPAddress"], source_ip);
    assert_eq!(r["userAgent"], user_agent);
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(r["eventSource"], "ec2.amazonaws.com");
    assert_eq!(r["eventType"], "AwsApiCall");
    assert_eq!(r["managementEvent"], true);
    assert_eq!(r["recipientAccountId"], ACCOUNT);
    let time = r["eventTime"].as_str().expect("eventTime");
    assert!(time.parse::<jiff::Timestamp>().is_ok() && time.ends_with('Z') && time.len() == 20, "{time}");
    let id = r["eventID"].as_str().expect("eventID");
    assert_eq!(id.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
    assert!(r.get("errorCode").is_none(), "{r}");
}

/// A guard-driven DescribeInstances and CreateSnapshot are delivered after the delay (not
/// before) as records of our ARN, access key, IP and user agent, with the ids they named and
/// created.
#[tokio::test(start_paused = true)]
async fn our_calls_are_delivered_after_the_delay_with_our_identity_and_ids() {
    let (sim, guard) = piped(|_| {});
    let instance = sim.setup(|s| s.instance(&customer("web-1", &[8]))).expect("instance");
    let volume = root_volume(&sim, &instance);
    let start = sim.now_ms();
    guard.describe_instances(&east(), &DescribeInput::ids(vec![instance.clone()])).await.expect("describe");
    let snap_tags =
        tags::snapshot_tags(&job(), SnapshotSource::Volume { instance: &instance, volume: &volume }, expires());
    let snapshot = guard
        .create_snapshot(
            &east(),
            &CreateSnapshotInput {
                volume: Tagged::new(volume.clone(), Tags::new()),
                description: "agentless".into(),
                tags: snap_tags.clone(),
            },
        )
        .await
        .expect("CreateSnapshot")
        .snapshot_id;

    // Within the delay: S3's test event only, nothing in the bucket.
    sleep_ms(trail::DELIVERY_DELAY_MS - 1_000).await;
    let early = receive(&guard, 10, 0).await;
    assert_eq!(early.len(), 1, "{early:?}");
    assert!(is_test_event(&early[0]), "{early:?}");
    assert_eq!(body(&early[0])["Bucket"], BUCKET);
    assert_eq!(objects(&sim), 0);

    sleep_ms(2_000).await;
    let records = records(&guard).await;
    // The GetQueueUrl/ReceiveMessage/GetObject of the reader are data events: not recorded.
    let names: Vec<&str> = records.iter().filter_map(|r| r["eventName"].as_str()).collect();
    assert_eq!(names, ["DescribeInstances", "CreateSnapshot"], "{records:#?}");

    let describe = the(&records, "DescribeInstances");
    assert_ours(describe, trail::DEFAULT_SOURCE_IP, trail::DEFAULT_USER_AGENT);
    assert_eq!(describe["userAgent"], "aws-sdk-rust/1.3 os/linux lang/rust/1.95 app/agentless");
    assert_eq!(describe["sourceIPAddress"], "198.51.100.10");
    assert_eq!(describe["requestParameters"]["instancesSet"]["items"][0]["instanceId"], instance.as_str());
    assert_eq!(describe["responseElements"], Value::Null);
    assert_eq!(describe["readOnly"], true);
    let at = describe["eventTime"].as_str().expect("time").parse::<jiff::Timestamp>().expect("time");
    assert_eq!(at.as_second(), i64::try_from(start / 1000).expect("secs"));

    let create = the(&records, "CreateSnapshot");
    assert_ours(create, trail::DEFAULT_SOURCE_IP, trail::DEFAULT_USER_AGENT);
    assert_eq!(create["readOnly"], false);
    assert_eq!(create["requestParameters"]["volumeId"], volume.as_str());
    assert_eq!(create["responseElements"]["snapshotId"], snapshot.as_str());
    let spec = &create["requestParameters"]["tagSpecificationSet"]["items"][0];
    assert_eq!(spec["resourceType"], "snapshot");
    let name = snap_tags.name().expect("Name");
    assert!(spec["tags"].as_array().expect("tags").contains(&json!({ "key": "Name", "value": name })), "{spec}");
    assert_ne!(describe["eventID"], create["eventID"]);
}

/// An AWS error is recorded with CloudTrail's code (EC2's `Client.` prefix) and message.
#[tokio::test(start_paused = true)]
async fn a_refused_call_is_recorded_with_its_error() {
    let (sim, _) = piped(|c| c.delivery_delay_ms = 60_000);
    let permissive = guard_over(&sim, vec![Policy::parse("allow-all", ALLOW_ALL).expect("p")]);
    let instance = sim.setup(|s| s.instance(&customer("customer-db", &[8]))).expect("instance");
    let volume = root_volume(&sim, &instance);
    let backup = permissive
        .create_snapshot(
            &east(),
            &CreateSnapshotInput {
                volume: Tagged::new(volume.clone(), Tags::new()),
                description: "the customer's own backup".into(),
                tags: Tags::new().with("Name", "customer-backup").expect("tag"),
            },
        )
        .await
        .expect("CreateSnapshot")
        .snapshot_id;
    // The guard is told it is ours; the sim knows better.
    let forged =
        tags::snapshot_tags(&job(), SnapshotSource::Volume { instance: &instance, volume: &volume }, expires());
    let err = permissive
        .delete_snapshot(&east(), &DeleteSnapshotInput { snapshot: Tagged::new(backup.clone(), forged) })
        .await
        .expect_err("not ours");
    assert_eq!(err.code(), Some("UnauthorizedOperation"), "{err}");
    sleep_ms(61_000).await;
    let guard = guard_over(&sim, reader_policies());
    let records = records(&guard).await;
    let r = the(&records, "DeleteSnapshot");
    assert_eq!(r["errorCode"], "Client.UnauthorizedOperation");
    assert_eq!(r["errorMessage"], err.message());
    assert_eq!(r["requestParameters"]["snapshotId"], backup.as_str());
    assert_eq!(r["responseElements"], Value::Null);
    assert_eq!(the(&records, "CreateSnapshot")["responseElements"]["snapshotId"], backup.as_str());
    assert_eq!(r["requestID"], err.request_id().expect("request id"));
}

/// Our credentials from another client (a leaked key): same ARN and key, the other IP and agent.
#[tokio::test(start_paused = true)]
async fn another_client_with_our_credentials_is_recorded_as_such() {
    let (sim, guard) = piped(|c| c.delivery_delay_ms = 60_000);
    let thief = guard_over(&sim.with_client("192.0.2.66", "curl/8.5.0"), reader_policies());
    thief.describe_instances(&east(), &DescribeInput::default()).await.expect("describe");
    sleep_ms(61_000).await;
    let records = records(&guard).await;
    assert_ours(the(&records, "DescribeInstances"), "192.0.2.66", "curl/8.5.0");
}

/// `Setup::launch` is a RunInstances of ops-admin from the console, with the new id and tags.
#[tokio::test(start_paused = true)]
async fn a_customer_launch_is_a_run_instances_by_the_admin() {
    let (sim, guard) = piped(|c| c.delivery_delay_ms = 60_000);
    let id = sim.setup(|s| s.launch(&customer("web-9", &[8]))).expect("launch");
    assert!(sim.inspect(|w| w.accounts[&account()].regions[&east()].instances.contains_key(&id)));
    sim.setup(|s| {
        s.record(
            &east(),
            "ModifySnapshotAttribute",
            "backup-bot",
            json!({ "snapshotId": "snap-0123456789abcdef0", "createVolumePermission": { "add": { "items": [{ "userId": "999988887777" }] } } }),
            json!({ "_return": true }),
        )
    })
    .expect("record");
    sleep_ms(61_000).await;
    let records = records(&guard).await;
    let run = the(&records, "RunInstances");
    assert_eq!(run["userIdentity"]["arn"], format!("arn:aws:iam::{ACCOUNT}:user/ops-admin"));
    assert_eq!(run["userIdentity"]["userName"], "ops-admin");
    assert_eq!(run["userIdentity"]["accessKeyId"], trail::access_key_id(ACCOUNT, "ops-admin"));
    assert_ne!(run["userIdentity"]["accessKeyId"], trail::access_key_id(ACCOUNT, USER));
    assert_eq!(run["sourceIPAddress"], "203.0.113.20");
    assert_eq!(run["userAgent"], "console.ec2.amazonaws.com");
    assert_eq!(run["eventSource"], "ec2.amazonaws.com");
    assert_eq!(run["awsRegion"], "us-east-1");
    assert_eq!(run["readOnly"], false);
    assert_eq!(run["responseElements"]["instancesSet"]["items"][0]["instanceId"], id.as_str());
    let spec = &run["requestParameters"]["tagSpecificationSet"]["items"][0];
    assert_eq!(spec["resourceType"], "instance");
    assert_eq!(spec["tags"], json!([{ "key": "Name", "value": "web-9" }]));
    let modify = the(&records, "ModifySnapshotAttribute");
    assert_eq!(modify["userIdentity"]["arn"], format!("arn:aws:iam::{ACCOUNT}:user/backup-bot"));
    assert_eq!(modify["requestParameters"]["snapshotId"], "snap-0123456789abcdef0");
}

/// No delete: a received message comes back after the visibility timeout with its receive count
/// grown, the long poll waits for it on the clock, and the retention period drops it.
#[tokio::test(start_paused = true)]
async fn the_queue_redelivers_after_the_visibility_timeout_until_retention() {
    let (sim, guard) = piped(|c| c.retention_ms = 120_000);
    let first = receive(&guard, 10, 0).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, Some(1));
    let sent = first[0].sent_at_ms.expect("SentTimestamp");
    assert!(receive(&guard, 10, 0).await.is_empty(), "hidden for the visibility timeout");

    // A long poll of 20 s ends empty: the message is hidden for 30 s.
    let t0 = sim.now_ms();
    assert!(receive(&guard, 10, 20).await.is_empty());
    assert_eq!(sim.now_ms() - t0, 20_000);
    // The next one returns it as soon as it is visible again, 10 s later.
    let again = receive(&guard, 10, 20).await;
    assert_eq!(sim.now_ms() - t0, 30_000);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].body, first[0].body);
    assert_eq!(again[0].receive_count, Some(2));
    assert_eq!(again[0].sent_at_ms, Some(sent));

    sleep_ms(120_000).await;
    assert!(receive(&guard, 10, 0).await.is_empty(), "dropped after the retention period");
    assert!(sim.inspect(|w| w.accounts[&account()].pipeline.as_ref().is_some_and(|p| p.queue.is_empty())));
}

/// A long poll wakes for a delivery that falls due while it waits.
#[tokio::test(start_paused = true)]
async fn a_long_poll_returns_the_delivery_that_falls_due() {
    let (sim, guard) = piped(|c| c.delivery_delay_ms = 10_000);
    assert!(is_test_event(&receive(&guard, 10, 0).await[0]));
    guard.describe_vpcs(&east(), &DescribeInput::default()).await.expect("describe");
    let t0 = sim.now_ms();
    let got = receive(&guard, 10, 20).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!is_test_event(&got[0]));
    // The GetQueueUrl of `receive` is not recorded, nor is ReceiveMessage: only DescribeVpcs.
    let waited = sim.now_ms() - t0;
    assert!((9_000..=10_000).contains(&waited), "{waited}");
}

/// `duplicate_every = 2` enqueues the second notification twice; `reorder` enqueues a
/// delivery's notifications newest file first.
#[tokio::test(start_paused = true)]
async fn duplicates_and_reordering_do_what_they_say() {
    let (sim, guard) = piped(|c| {
        c.delivery_delay_ms = 60_000;
        c.duplicate_every = 2;
        c.reorder = true;
    });
    assert!(is_test_event(&receive(&guard, 10, 0).await[0]));
    for name in ["StartInstances", "CreateTags", "AttachVolume"] {
        sim.setup(|s| s.record(&east(), name, "ops-admin", json!({}), Value::Null)).expect("record");
        sleep_ms(1_000).await;
    }
    sleep_ms(60_000).await;
    // The test event is visible again too (30 s visibility): left aside.
    let got: Vec<QueueMessage> = receive(&guard, 10, 0).await.into_iter().filter(|m| !is_test_event(m)).collect();
    let sequencers: Vec<String> =
        got.iter().map(|m| s3_object(m)["sequencer"].as_str().expect("sequencer").to_owned()).collect();
    assert_eq!(got.len(), 4, "{sequencers:?}");
    // Three files (one record each), newest first, the second twice.
    let mut names = Vec::new();
    for m in &got {
        let key = url_decode(s3_object(m)["key"].as_str().expect("key"));
        let file = gunzip(&fetch(&guard, &key, CAP).await.expect("object").bytes);
        let recs = file["Records"].as_array().expect("Records");
        assert_eq!(recs.len(), 1);
        names.push(recs[0]["eventName"].as_str().expect("name").to_owned());
    }
    assert_eq!(names, ["AttachVolume", "CreateTags", "CreateTags", "StartInstances"]);
    assert_eq!(sequencers[1], sequencers[2]);
    assert!(sequencers[0] > sequencers[1] && sequencers[2] > sequencers[3], "{sequencers:?}");
    assert_eq!(got[1].body, got[2].body);
    assert_ne!(got[1].message_id, got[2].message_id);
    assert_eq!(objects(&sim), 3);
}

/// The notification's key decodes to the stored object's key, in CloudTrail's layout, with its
/// size and ETag; GetObject refuses an object over its cap without its bytes.
#[tokio::test(start_paused = true)]
async fn notifications_name_the_stored_object_and_get_object_keeps_its_cap() {
    let (sim, guard) = piped(|c| c.delivery_delay_ms = 60_000);
    guard.describe_vpcs(&east(), &DescribeInput::default()).await.expect("describe");
    sleep_ms(61_000).await;
    let got: Vec<QueueMessage> = receive(&guard, 10, 0).await.into_iter().filter(|m| !is_test_event(m)).collect();
    assert_eq!(got.len(), 1);
    let object = s3_object(&got[0]);
    let key = url_decode(object["key"].as_str().expect("key"));
    let stored: Vec<String> =
        sim.inspect(|w| w.accounts[&account()].pipeline.as_ref().expect("pipeline").objects.keys().cloned().collect());
    assert_eq!(stored, std::slice::from_ref(&key));
    let prefix = format!("AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/");
    let rest = key.strip_prefix(&prefix).expect("CloudTrail's prefix");
    let parts: Vec<&str> = rest.split('/').collect();
    assert_eq!(parts.len(), 4, "{key}");
    assert!(parts[..3].iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())), "{key}");
    let file = parts[3].strip_suffix(".json.gz").expect(".json.gz");
    let fields: Vec<&str> = file.split('_').collect();
    assert_eq!(fields[..3], [ACCOUNT, "CloudTrail", "us-east-1"], "{key}");
    assert_eq!(fields[3].len(), "20261207T1843Z".len(), "{key}");
    assert_eq!(&fields[3][..8], format!("{}{}{}", parts[0], parts[1], parts[2]), "{key}");
    assert!(fields[4].len() == 16 && fields[4].bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");

    let size = object["size"].as_u64().expect("size");
    let full = fetch(&guard, &key, size).await.expect("at the cap");
    assert_eq!(full.bytes.len() as u64, size);
    let etag = full.etag.expect("ETag");
    assert!(etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()), "{etag}");
    assert_eq!(object["eTag"], etag.as_str());
    assert_eq!(gunzip(&full.bytes)["Records"][0]["eventName"], "DescribeVpcs");

    let err = fetch(&guard, &key, size - 1).await.expect_err("over the cap");
    assert_eq!(err.code(), Some(OBJECT_TOO_LARGE));
    assert!(err.message().contains(&format!("{size} bytes")), "{err}");
    let err = fetch(&guard, &format!("{prefix}missing.json.gz"), CAP).await.expect_err("no such key");
    assert_eq!((err.code(), err.kind()), (Some("NoSuchKey"), ErrorKind::NotFound), "{err}");
    // Behind a permissive guard (ours refuses any other bucket), the sim answers.
    let permissive = guard_over(&sim, vec![Policy::parse("allow-all", ALLOW_ALL).expect("p")]);
    let err = permissive
        .get_object(
            &east(),
            &GetObjectInput { bucket: "no-such-bucket".into(), key: "AWSLogs/x".into(), max_bytes: CAP },
        )
        .await
        .expect_err("no such bucket");
    assert_eq!(err.code(), Some("NoSuchBucket"), "{err}");
}

/// Without the reader policy, the principal is refused the queue and the bucket.
#[tokio::test(start_paused = true)]
async fn without_the_reader_policy_the_pipeline_is_access_denied() {
    let (sim, guard) = piped(|c| c.delivery_delay_ms = 60_000);
    guard.describe_vpcs(&east(), &DescribeInput::default()).await.expect("describe");
    sleep_ms(61_000).await;
    let url = queue_url(&guard).await;
    let key = sim.inspect(|w| {
        w.accounts[&account()].pipeline.as_ref().expect("pipeline").objects.keys().next().cloned().expect("a log file")
    });
    let custom_only = sim.with_policies(vec![agentless_scan_policy().expect("policy")]);
    let permissive = guard_over(&custom_only, vec![Policy::parse("allow-all", ALLOW_ALL).expect("p")]);
    let denied = |e: agentless::cloud::CloudError| {
        assert_eq!((e.kind(), e.code()), (ErrorKind::AccessDenied, Some("AccessDenied")), "{e}");
    };
    denied(
        permissive
            .get_queue_url(&east(), &GetQueueUrlInput { queue_name: QUEUE.into(), owner: None })
            .await
            .expect_err("GetQueueUrl"),
    );
    denied(
        permissive
            .receive_message(
                &east(),
                &ReceiveMessageInput { queue: url, max_messages: 10, wait_seconds: 0, visibility_timeout: None },
            )
            .await
            .expect_err("ReceiveMessage"),
    );
    denied(
        permissive
            .get_object(&east(), &GetObjectInput { bucket: BUCKET.into(), key, max_bytes: CAP })
            .await
            .expect_err("GetObject"),
    );
}

/// A fleet file's `[accounts.pipeline]`, in a data directory: the pipeline, its pending records,
/// bucket and queue survive a save and reload by another handle.
#[tokio::test(start_paused = true)]
async fn a_pipeline_survives_a_save_and_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        r#"
        [[accounts]]
        id = "{ACCOUNT}"
        regions = ["us-east-1"]
        [accounts.pipeline]
        region = "us-east-1"
        bucket = "{BUCKET}"
        queue = "{QUEUE}"
        delivery_delay_ms = 60000
        visibility_timeout_ms = 10000
        duplicate_every = 3
        "#
    );
    let fleet = Fleet::parse(&text).expect("fleet");
    let p = fleet.accounts[0].pipeline.clone().expect("pipeline");
    assert_eq!(
        (p.files_per_delivery, p.retention_ms, p.reorder, p.visibility_timeout_ms),
        (3, 4 * 24 * 3600 * 1000, false, 10_000)
    );
    let sim = SimCloud::open(dir.path(), &fleet).expect("open");
    let guard = guard_over(&sim, reader_policies());
    guard.describe_vpcs(&east(), &DescribeInput::default()).await.expect("describe");
    sleep_ms(61_000).await;
    let before = receive(&guard, 10, 0).await;
    assert_eq!(before.len(), 2, "the test event and one log file: {before:?}");
    // One more record, still pending.
    guard.describe_subnets(&east(), &DescribeInput::default()).await.expect("describe");
    let saved = sim.inspect(|w| serde_json::to_value(&w.accounts[&account()].pipeline).expect("json"));
    drop((guard, sim));

    let reopened = SimCloud::open(dir.path(), &fleet).expect("reopen");
    let loaded = reopened.inspect(|w| serde_json::to_value(&w.accounts[&account()].pipeline).expect("json"));
    assert_eq!(loaded, saved);
    assert_eq!(loaded["pending"].as_array().expect("pending").len(), 1);
    assert_eq!(loaded["config"]["duplicate_every"], 3);
    let guard = guard_over(&reopened, reader_policies());
    sleep_ms(10_000).await;
    let again = receive(&guard, 10, 0).await;
    assert_eq!(
        again.iter().map(|m| m.message_id.clone()).collect::<Vec<_>>(),
        before.iter().map(|m| m.message_id.clone()).collect::<Vec<_>>()
    );
    assert!(again.iter().all(|m| m.receive_count == Some(2)), "{again:?}");
    sleep_ms(60_000).await;
    // Every log file comes back (no delete), the new one after the first.
    let names: Vec<String> =
        records(&guard).await.iter().filter_map(|r| r["eventName"].as_str().map(str::to_owned)).collect();
    assert_eq!(names, ["DescribeVpcs", "DescribeSubnets"]);
}

/// The demo fleet's pipeline: the first account's first Region, a one-minute delay.
#[test]
fn the_demo_fleet_has_a_pipeline() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sim/demo-fleet.toml");
    let fleet = Fleet::load(&path).expect("demo fleet");
    let a = &fleet.accounts[0];
    let p = a.pipeline.as_ref().expect("pipeline");
    assert_eq!(p.region, a.regions[0]);
    assert_eq!(p.region, "us-east-1".parse::<Region>().expect("region"));
    assert_eq!(p.bucket, format!("aws-cloudtrail-logs-{}-agentless", a.id));
    assert_eq!(p.queue, "aliyun-sasc-log-queue");
    assert_eq!(p.delivery_delay_ms, 60_000);
    assert_eq!(p.check(), Ok(()));
}

/// Injected faults as CloudTrail would see them: a throttled call is recorded with its error, a
/// lost response as the success AWS logged, a timed-out call not at all (taken as never having
/// reached AWS).
#[tokio::test(start_paused = true)]
async fn injected_faults_are_recorded_as_aws_would_log_them() {
    use agentless::cloud::sim::faults::{Fault, Faults};
    let (sim, guard) = piped(|c| c.delivery_delay_ms = 60_000);
    sim.set_faults(Faults::scheduled(
        1,
        [
            ("DescribeInstances", 1, Fault::Throttle),
            ("DescribeVpcs", 1, Fault::Timeout),
            ("CreateVpc", 1, Fault::LostResponse),
        ],
    ))
    .expect("faults");
    let err = guard.describe_instances(&east(), &DescribeInput::default()).await.expect_err("throttled");
    assert_eq!(err.code(), Some("RequestLimitExceeded"));
    guard.describe_vpcs(&east(), &DescribeInput::default()).await.expect_err("timed out");
    let vpc_tags = crate::conformance::ours(tags::Role::VPC);
    guard
        .create_vpc(&east(), &CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: vpc_tags })
        .await
        .expect_err("the response is lost");
    let vpc = sim.inspect(|w| {
        w.accounts[&account()].regions[&east()].vpcs.iter().find(|(_, v)| !v.is_default).map(|(id, _)| id.clone())
    });
    let vpc = vpc.expect("the VPC was created");
    sleep_ms(61_000).await;
    let records = records(&guard).await;
    let names: Vec<&str> = records.iter().filter_map(|r| r["eventName"].as_str()).collect();
    assert_eq!(names, ["DescribeInstances", "CreateVpc"], "{records:#?}");
    assert_eq!(records[0]["errorCode"], "Client.RequestLimitExceeded");
    assert!(records[1].get("errorCode").is_none());
    assert_eq!(records[1]["responseElements"]["vpc"]["vpcId"], vpc.as_str());
    assert_eq!(records[1]["requestParameters"]["cidrBlock"], "10.77.0.0/16");
    assert_eq!(records[1]["requestParameters"]["tagSpecificationSet"]["items"][0]["resourceType"], "vpc");
}
