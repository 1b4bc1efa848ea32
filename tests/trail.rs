//! The CloudTrail readers (`agentless::trail`): S3 event notifications (raw, in an SNS envelope,
//! the test event), CloudTrail log files (gzip of `{"Records":[...]}`), records and the scan
//! triggers they give, on hand-written fixtures in the documented formats (`tests/data/trail/`),
//! and hostile inputs: gzip bombs, corrupt and truncated gzip, bad JSON, bad records, too many
//! records, deep nesting, another bucket, oversize messages.

use std::io::Write;
use std::path::Path;

use agentless::trail::log::{self, LogError, LogLimits};
use agentless::trail::notification::{self, LogObject, MAX_MESSAGE_BYTES, Notification, NotificationError};
use agentless::trail::record::Record;
use agentless::trail::triggers::{Trigger, TriggerKind, triggers};
use serde_json::{Value, json};

const BUCKET: &str = "acme-trail-logs";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/trail").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip write");
    enc.finish().expect("gzip finish")
}

fn time(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

fn strings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn ec2_log() -> log::LogFile {
    log::read(&gzip(fixture("ec2-log.json").as_bytes()), &LogLimits::default()).expect("the EC2 log reads")
}

fn objects(n: Notification) -> Vec<LogObject> {
    match n {
        Notification::Objects(objects) => objects,
        other => panic!("expected objects, got {other:?}"),
    }
}

/// A minimal valid record, as JSON.
fn record_json(id: &str) -> Value {
    json!({
        "eventVersion": "1.09", "eventID": id, "eventTime": "2026-12-07T11:00:00Z",
        "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": "us-east-1",
        "readOnly": true, "eventType": "AwsApiCall"
    })
}

fn log_of(records: &[Value]) -> Vec<u8> {
    gzip(json!({ "Records": records }).to_string().as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Notifications

#[test]
fn s3_notification_gives_created_objects_with_decoded_keys() {
    let objects = objects(notification::parse(&fixture("s3-notification.json"), BUCKET).expect("parses"));
    assert_eq!(objects.len(), 2, "ObjectRemoved:Delete is left out");
    let log = &objects[0];
    assert_eq!(log.bucket, BUCKET);
    assert_eq!(
        log.key,
        "org logs/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/07/111122223333_CloudTrail_eu-west-1_20261207T1015Z_Ab1Cd2Ef3Gh4Ij5K.json.gz"
    );
    assert_eq!(log.size, Some(2874));
    assert_eq!(log.etag.as_deref(), Some("0123456789abcdef0123456789abcdef"));
    assert_eq!(log.sequencer.as_deref(), Some("0067543A1B2C3D4E5F"));
    assert_eq!(log.event_time, Some(time("2026-12-07T10:15:03.123Z")));
    assert_eq!(log.region.as_deref(), Some("eu-west-1"));
    assert!(log.is_log_file());
    let digest = &objects[1];
    assert!(digest.key.contains("/CloudTrail-Digest/"));
    assert_eq!(digest.size, Some(812));
    assert!(!digest.is_log_file(), "a digest file is not a log file");
}

#[test]
fn sns_envelope_is_unwrapped() {
    let objects = objects(notification::parse(&fixture("sns-envelope.json"), BUCKET).expect("parses"));
    assert_eq!(objects.len(), 1);
    assert_eq!(
        objects[0].key,
        "AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/12/07/111122223333_CloudTrail_us-east-1_20261207T1020Z_Zz9Yy8Xx7Ww6Vv5U.json.gz"
    );
    assert_eq!(objects[0].size, Some(1_048_576));
    assert_eq!(objects[0].event_time, Some(time("2026-12-07T10:20:00Z")));
    assert!(objects[0].is_log_file(), "an organization trail's key");
}

#[test]
fn s3_test_event_raw_and_in_sns() {
    let raw = fixture("s3-test-event.json");
    assert_eq!(
        notification::parse(&raw, BUCKET).expect("parses"),
        Notification::Test { bucket: Some(BUCKET.to_owned()) }
    );
    let wrapped = json!({"Type": "Notification", "MessageId": "m1", "Message": raw.trim()}).to_string();
    assert_eq!(
        notification::parse(&wrapped, BUCKET).expect("parses"),
        Notification::Test { bucket: Some(BUCKET.to_owned()) }
    );
    let no_bucket = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-07T09:00:02.089Z"}"#;
    assert_eq!(notification::parse(no_bucket, BUCKET).expect("parses"), Notification::Test { bucket: None });
}

#[test]
fn url_encoded_key_is_decoded() {
    let body =
        fixture("s3-notification.json").replace("org+logs/AWSLogs", "my%20trail+%28eu%29%2Fsub/caf%C3%A9/AWSLogs");
    let objects = objects(notification::parse(&body, BUCKET).expect("parses"));
    assert!(
        objects[0].key.starts_with("my trail (eu)/sub/café/AWSLogs/111122223333/CloudTrail/"),
        "{}",
        objects[0].key
    );
    assert!(objects[0].is_log_file());
    let bad = fixture("s3-notification.json").replace("org+logs/AWSLogs", "50%/AWSLogs");
    let e = notification::parse(&bad, BUCKET).expect_err("bad escape");
    assert!(matches!(e, NotificationError::BadField { index: 0, field: "s3.object.key", .. }), "{e}");
}

#[test]
fn another_bucket_refuses_the_whole_message() {
    // The third record (an ObjectRemoved, otherwise left out) names another bucket.
    let body = fixture("s3-notification.json").replacen(
        r#""bucket": {"name": "acme-trail-logs", "arn": "arn:aws:s3:::acme-trail-logs"},
        "object": {"key": "old"#,
        r#""bucket": {"name": "evil-bucket", "arn": "arn:aws:s3:::evil-bucket"},
        "object": {"key": "old"#,
        1,
    );
    assert!(body.contains("evil-bucket"), "the fixture was edited");
    let e = notification::parse(&body, BUCKET).expect_err("another bucket");
    match &e {
        NotificationError::OtherBucket { expected, found } => {
            assert_eq!(expected, BUCKET);
            assert_eq!(found, "evil-bucket");
        }
        other => panic!("{other:?}"),
    }
    let message = e.to_string();
    assert!(message.contains("evil-bucket") && message.contains(BUCKET), "{message}");

    // The right name with another bucket's ARN.
    let body = fixture("s3-notification.json").replacen(
        "arn:aws:s3:::acme-trail-logs",
        "arn:aws:s3:::acme-trail-logs-copy",
        1,
    );
    let e = notification::parse(&body, BUCKET).expect_err("another ARN");
    assert!(
        matches!(&e, NotificationError::OtherBucket { found, .. } if found == "arn:aws:s3:::acme-trail-logs-copy"),
        "{e}"
    );

    // The test event of another bucket.
    let e = notification::parse(&fixture("s3-test-event.json"), "other-trail").expect_err("another bucket");
    assert!(
        matches!(&e, NotificationError::OtherBucket { expected, found } if expected == "other-trail" && found == BUCKET),
        "{e}"
    );
}

#[test]
fn oversize_message_is_refused() {
    let event = fixture("s3-test-event.json");
    let padded = format!("{}{}", event.trim(), " ".repeat(MAX_MESSAGE_BYTES - event.trim().len()));
    assert_eq!(padded.len(), MAX_MESSAGE_BYTES);
    assert!(notification::parse(&padded, BUCKET).is_ok(), "exactly the maximum is accepted");
    let over = format!("{padded} ");
    let e = notification::parse(&over, BUCKET).expect_err("over the maximum");
    assert!(
        matches!(e, NotificationError::TooLarge { bytes, max } if bytes == MAX_MESSAGE_BYTES + 1 && max == MAX_MESSAGE_BYTES),
        "{e}"
    );
}

#[test]
fn not_a_notification_says_what_was_found() {
    let e = notification::parse("hello", BUCKET).expect_err("not JSON");
    assert!(matches!(e, NotificationError::NotJson { what: "the message", .. }), "{e}");

    let e = notification::parse(r#"{"foo": 1, "bar": [2]}"#, BUCKET).expect_err("not S3");
    let message = e.to_string();
    assert!(matches!(e, NotificationError::NotS3Notification { .. }), "{e}");
    assert!(message.contains("\"foo\"") && message.contains("\"bar\""), "{message}");

    let e = notification::parse("[1, 2]", BUCKET).expect_err("an array");
    assert!(e.to_string().contains("an array at the top level"), "{e}");

    let e = notification::parse(r#"{"Records": {"a": 1}}"#, BUCKET).expect_err("Records not an array");
    assert!(e.to_string().contains("Records is an object"), "{e}");

    let confirmation =
        json!({"Type": "SubscriptionConfirmation", "Message": "You have chosen to subscribe", "Token": "t"});
    let e = notification::parse(&confirmation.to_string(), BUCKET).expect_err("not a notification");
    assert!(e.to_string().contains("SNS message of Type \"SubscriptionConfirmation\""), "{e}");

    let envelope = json!({"Type": "Notification", "Message": "not { json"});
    let e = notification::parse(&envelope.to_string(), BUCKET).expect_err("Message not JSON");
    assert!(matches!(e, NotificationError::NotJson { what: "the SNS envelope's Message", .. }), "{e}");

    let inner = json!({"Type": "Notification", "Message": fixture("s3-test-event.json")}).to_string();
    let twice = json!({"Type": "Notification", "Message": inner});
    let e = notification::parse(&twice.to_string(), BUCKET).expect_err("an envelope in an envelope");
    assert!(e.to_string().contains("SNS envelope inside an SNS envelope"), "{e}");

    let sqs = fixture("s3-notification.json").replace("\"aws:s3\"", "\"aws:sqs\"");
    let e = notification::parse(&sqs, BUCKET).expect_err("not from S3");
    assert!(e.to_string().contains("eventSource \"aws:sqs\""), "{e}");
}

#[test]
fn bad_fields_and_too_many_records() {
    let body = fixture("s3-notification.json").replace("\"size\": 2874", "\"size\": \"big\"");
    let e = notification::parse(&body, BUCKET).expect_err("bad size");
    assert!(matches!(e, NotificationError::BadField { index: 0, field: "s3.object.size", .. }), "{e}");

    let body = fixture("s3-notification.json").replace("2026-12-07T10:15:04.000Z", "yesterday");
    let e = notification::parse(&body, BUCKET).expect_err("bad time");
    assert!(matches!(e, NotificationError::BadField { index: 1, field: "eventTime", .. }), "{e}");

    let body = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]});
    let e = notification::parse(&body.to_string(), BUCKET).expect_err("no bucket");
    assert!(matches!(e, NotificationError::BadField { index: 0, field: "s3.bucket.name", .. }), "{e}");

    let one: Value =
        serde_json::from_str::<Value>(&fixture("s3-notification.json")).expect("json")["Records"][0].clone();
    let many = json!({ "Records": vec![one.clone(); notification::MAX_RECORDS + 1] });
    let e = notification::parse(&many.to_string(), BUCKET).expect_err("too many");
    assert!(matches!(e, NotificationError::TooManyRecords { count: 101, max: 100 }), "{e}");
    let cap = json!({ "Records": vec![one; notification::MAX_RECORDS] });
    assert_eq!(objects(notification::parse(&cap.to_string(), BUCKET).expect("at the cap")).len(), 100);

    let empty = notification::parse(r#"{"Records": []}"#, BUCKET).expect("no records");
    assert_eq!(empty, Notification::Objects(Vec::new()));
}

// ---------------------------------------------------------------------------------------------
// Log files and records

#[test]
fn ec2_log_reads_every_record_with_its_fields() {
    let file = ec2_log();
    assert_eq!(file.records.len(), 12);
    assert_eq!(file.skipped, 0);
    assert!(file.skip_reasons.is_empty());

    let run = &file.records[0];
    assert_eq!(run.event_id, "0f3c2a1b-1111-4e4e-8a8a-000000000001");
    assert_eq!(run.event_time, time("2026-12-07T10:00:00Z"));
    assert_eq!(run.event_source, "ec2.amazonaws.com");
    assert_eq!(run.event_name, "RunInstances");
    assert_eq!(run.region, "eu-west-1");
    assert_eq!(run.source_ip.as_deref(), Some("198.51.100.7"));
    assert!(run.user_agent.as_deref().is_some_and(|a| a.starts_with("aws-cli/2.15.0")));
    assert_eq!(run.identity.kind.as_deref(), Some("IAMUser"));
    assert_eq!(run.identity.arn.as_deref(), Some("arn:aws:iam::111122223333:user/alice"));
    assert_eq!(run.identity.account_id.as_deref(), Some("111122223333"));
    assert_eq!(run.identity.access_key_id.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
    assert_eq!(run.identity.principal_id.as_deref(), Some("AIDAJ45Q7YFFAREXAMPLE"));
    assert_eq!(run.identity.session_issuer_arn, None);
    assert_eq!(run.read_only, Some(false));
    assert_eq!(run.error_code, None);
    assert_eq!(run.event_type.as_deref(), Some("AwsApiCall"));
    assert_eq!(run.recipient_account_id.as_deref(), Some("111122223333"));
    assert_eq!(run.request_parameters["instanceType"], "t3.micro");
    assert_eq!(
        run.resource_ids().into_iter().collect::<Vec<_>>(),
        [
            "ami-0abcdef1234567890",
            "eni-0123456789abcdef0",
            "i-0a1b2c3d4e5f60718",
            "i-0fedcba9876543210",
            "sg-0123456789abcdef0",
            "subnet-0123456789abcdef0",
            "vpc-0123456789abcdef0",
        ],
        "r-0123456789abcdef0 (a reservation) is not collected"
    );
    assert_eq!(run.tags(), strings(&[("Name", "web-1"), ("env", "prod"), ("env", "prod")]));
    assert!(run.is_by("arn:aws:iam::111122223333:user/alice"));
    assert!(!run.is_by("arn:aws:iam::111122223333:user/bob"));

    let failed = &file.records[9];
    assert_eq!(failed.error_code.as_deref(), Some("Client.UnauthorizedOperation"));
    assert_eq!(failed.response_elements, Value::Null);
    assert_eq!(failed.identity.arn.as_deref(), Some("arn:aws:iam::111122223333:user/mallory"));

    let service = &file.records[11];
    assert_eq!(service.event_source, "sts.amazonaws.com");
    assert_eq!(service.identity.kind.as_deref(), Some("AWSService"));
    assert_eq!(service.identity.invoked_by.as_deref(), Some("autoscaling.amazonaws.com"));
    assert_eq!(service.identity.arn, None);
    assert_eq!(service.read_only, Some(true));
}

#[test]
fn create_snapshot_by_an_assumed_role_is_by_the_role() {
    let file = ec2_log();
    let snap = &file.records[8];
    assert_eq!(snap.event_name, "CreateSnapshot");
    assert_eq!(snap.identity.kind.as_deref(), Some("AssumedRole"));
    assert_eq!(
        snap.identity.session_issuer_arn.as_deref(),
        Some("arn:aws:iam::111122223333:role/agentless-orchestrator")
    );
    assert!(snap.is_by("arn:aws:iam::111122223333:role/agentless-orchestrator"), "the session issuer");
    assert!(snap.is_by("arn:aws:sts::111122223333:assumed-role/agentless-orchestrator/agentless"), "the session");
    assert!(!snap.is_by("arn:aws:iam::111122223333:role/ops"));
    assert!(!snap.is_by(""));
    assert_eq!(
        snap.resource_ids().into_iter().collect::<Vec<_>>(),
        ["snap-0aaaaaaaaaaaaaaa1", "vol-0a1b2c3d4e5f60718"]
    );
    assert_eq!(
        snap.tags(),
        strings(&[
            ("Name", "SAS_Agentless-job-7-vol-0a1b2c3d4e5f60718"),
            ("agentless:job", "job-7"),
            ("agentless:source-volume", "vol-0a1b2c3d4e5f60718"),
        ])
    );
    assert!(triggers(snap).is_empty());

    // An IAM user whose arn happens to equal a role's is matched by arn only; a non-assumed-role
    // identity's session issuer is not looked at.
    let mut user = snap.clone();
    user.identity.kind = Some("IAMUser".to_owned());
    user.identity.arn = Some("arn:aws:iam::111122223333:user/carol".to_owned());
    assert!(!user.is_by("arn:aws:iam::111122223333:role/agentless-orchestrator"));
}

#[test]
fn record_from_value_matches_the_log_reader() {
    let all: Value = serde_json::from_str(&fixture("ec2-log.json")).expect("json");
    let records = all["Records"].as_array().expect("records");
    let file = ec2_log();
    for (value, read) in records.iter().zip(&file.records) {
        assert_eq!(&Record::from_value(value).expect("record"), read);
    }
}

#[test]
fn triggers_from_the_ec2_log() {
    let file = ec2_log();
    let all: Vec<Trigger> = file.records.iter().flat_map(triggers).collect();
    let t = |id: &str, kind, at: &str, tags: &[(&str, &str)]| Trigger {
        instance: id.parse().expect("instance id"),
        kind,
        event_time: time(at),
        region: "eu-west-1".to_owned(),
        tags: strings(tags),
    };
    assert_eq!(
        all,
        [
            t("i-0a1b2c3d4e5f60718", TriggerKind::Launched, "2026-12-07T10:00:00Z", &[]),
            t("i-0fedcba9876543210", TriggerKind::Launched, "2026-12-07T10:00:00Z", &[]),
            // Our own scanner's RunInstances (record 1) gives nothing.
            // StartInstances: the duplicate and the malformed id are dropped.
            t("i-1a2b3c4d", TriggerKind::Started, "2026-12-07T10:05:00Z", &[]),
            t("i-0123456789abcdef0", TriggerKind::Started, "2026-12-07T10:05:00Z", &[]),
            t("i-0a1b2c3d4e5f60718", TriggerKind::VolumeAttached, "2026-12-07T10:06:15Z", &[]),
            t("i-0fedcba9876543210", TriggerKind::UserDataChanged, "2026-12-07T10:07:00Z", &[]),
            // ModifyInstanceAttribute of instanceType gives nothing; CreateTags on a volume id
            // and on a snapshot give nothing.
            t(
                "i-0a1b2c3d4e5f60718",
                TriggerKind::Tagged,
                "2026-12-07T10:08:00Z",
                &[("scan", "yes"), ("team", "payments")]
            ),
            // CreateSnapshot, the failed RunInstances, CreateVolume, sts AssumeRole: nothing.
        ]
    );
    let names: Vec<&str> = [
        TriggerKind::Launched,
        TriggerKind::Started,
        TriggerKind::VolumeAttached,
        TriggerKind::UserDataChanged,
        TriggerKind::Tagged,
    ]
    .into_iter()
    .map(TriggerKind::as_str)
    .collect();
    assert_eq!(names, ["launched", "started", "volume_attached", "user_data_changed", "tagged"]);
}

#[test]
fn failed_and_foreign_calls_trigger_nothing() {
    let file = ec2_log();
    // A RunInstances that would trigger, but with an errorCode.
    let mut failed = file.records[0].clone();
    failed.error_code = Some("Server.InsufficientInstanceCapacity".to_owned());
    assert!(triggers(&failed).is_empty());
    // The same call from another service's event source.
    let mut foreign = file.records[0].clone();
    foreign.event_source = "ec2-instance-connect.amazonaws.com".to_owned();
    assert!(triggers(&foreign).is_empty());
    // A ModifyInstanceAttribute with userData null is not a change of user data.
    let mut null_user_data = file.records[4].clone();
    null_user_data.request_parameters["userData"] = Value::Null;
    assert!(triggers(&null_user_data).is_empty());
    // Our own tags set with CreateTags give nothing either.
    let mut ours = file.records[6].clone();
    ours.request_parameters["tagSet"]["items"][0] = json!({"key": "agentless:job", "value": "job-7"});
    assert!(triggers(&ours).is_empty());
    let mut named = file.records[0].clone();
    named.request_parameters["tagSpecificationSet"]["items"][0]["tags"][0]["value"] = json!("SAS_Agentless-x");
    assert!(triggers(&named).is_empty(), "a Name with our snapshot prefix");
}

#[test]
fn concatenated_gzip_members_are_one_file() {
    let text = fixture("ec2-log.json");
    let (head, tail) = text.split_at(text.len() / 2);
    let mut bytes = gzip(head.as_bytes());
    bytes.extend(gzip(tail.as_bytes()));
    let file = log::read(&bytes, &LogLimits::default()).expect("two members");
    assert_eq!(file.records.len(), 12);
    assert_eq!(file.records[11].event_name, "AssumeRole");
}

#[test]
fn bad_records_are_skipped_counted_and_the_good_kept() {
    let mut no_id = record_json("x");
    no_id.as_object_mut().expect("object").remove("eventID");
    let mut time_number = record_json("e-time-number");
    time_number["eventTime"] = json!(1_796_637_600);
    let mut time_text = record_json("e-time-text");
    time_text["eventTime"] = json!("07/12/2026 10:00");
    let mut name_null = record_json("e-name-null");
    name_null["eventName"] = Value::Null;
    let mut optional_wrong = record_json("e-optional-wrong");
    optional_wrong["readOnly"] = json!("true");
    optional_wrong["sourceIPAddress"] = json!(17);
    optional_wrong["userIdentity"] = json!("root");
    let records = [
        record_json("e-first"),
        no_id,
        time_number,
        json!(5),
        time_text,
        name_null,
        json!("a string"),
        optional_wrong,
        record_json("e-last"),
    ];
    let file = log::read(&log_of(&records), &LogLimits::default()).expect("reads");
    let ids: Vec<&str> = file.records.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["e-first", "e-optional-wrong", "e-last"]);
    assert_eq!(file.skipped, 6);
    assert_eq!(file.skip_reasons.len(), 6);
    assert_eq!(file.skip_reasons[0], "record 1: eventID is absent");
    assert_eq!(file.skip_reasons[1], "record 2: eventTime is a number, not a string");
    assert_eq!(file.skip_reasons[2], "record 3: not a JSON object but a number");
    assert!(
        file.skip_reasons[3].starts_with("record 4: eventTime \"07/12/2026 10:00\" is not an RFC 3339 time"),
        "{}",
        file.skip_reasons[3]
    );
    assert_eq!(file.skip_reasons[4], "record 5: eventName is null, not a string");
    assert_eq!(file.skip_reasons[5], "record 6: not a JSON object but a string");
    let lenient = &file.records[1];
    assert_eq!((lenient.read_only, lenient.source_ip.as_deref()), (None, None));
    assert_eq!(lenient.identity, agentless::trail::record::Identity::default());

    // The reasons are capped, the count is not.
    let many: Vec<Value> = (0..50).map(|_| json!({})).chain([record_json("e-kept")]).collect();
    let file = log::read(&log_of(&many), &LogLimits::default()).expect("reads");
    assert_eq!(file.skipped, 50);
    assert_eq!(file.skip_reasons.len(), log::MAX_SKIP_REASONS);
    assert_eq!(file.records.len(), 1);
}

#[test]
fn gzip_bomb_is_refused_at_the_decompressed_cap() {
    // 50 MB of spaces inside a valid document: JSON whitespace, so only the cap can stop it. It
    // compresses to about 50 KB.
    let mut text = b"{\"Records\":[".to_vec();
    text.resize(50_000_000, b' ');
    text.extend_from_slice(b"]}");
    let bomb = gzip(&text);
    drop(text);
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    let limits = LogLimits { max_decompressed: 1024 * 1024, ..LogLimits::default() };
    let e = log::read(&bomb, &limits).expect_err("a bomb");
    assert!(matches!(e, LogError::DecompressedTooLarge { max: 1_048_576 }), "{e}");

    // 50 MB of zeros: not JSON from the first byte, refused without inflating the rest.
    let zeros = gzip(&vec![0u8; 50_000_000]);
    let e = log::read(&zeros, &limits).expect_err("zeros");
    assert!(matches!(e, LogError::NotJson(_)), "{e}");
}

#[test]
fn corrupt_truncated_and_not_gzip() {
    let good = gzip(fixture("ec2-log.json").as_bytes());

    let truncated = &good[..good.len() / 2];
    let e = log::read(truncated, &LogLimits::default()).expect_err("truncated");
    assert!(matches!(e, LogError::CorruptGzip(_)), "{e}");

    let no_trailer = &good[..good.len() - 8];
    let e = log::read(no_trailer, &LogLimits::default()).expect_err("no CRC and size");
    assert!(matches!(e, LogError::CorruptGzip(_)), "{e}");

    let mut bad_crc = good.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0xff;
    let e = log::read(&bad_crc, &LogLimits::default()).expect_err("bad CRC");
    assert!(matches!(e, LogError::CorruptGzip(_)), "{e}");

    let mut bad_method = good.clone();
    bad_method[2] = 9; // CM: only 8 (deflate) is defined (RFC 1952 §2.3.1)
    let e = log::read(&bad_method, &LogLimits::default()).expect_err("bad header");
    assert!(matches!(e, LogError::CorruptGzip(_)), "{e}");

    let e = log::read(fixture("ec2-log.json").as_bytes(), &LogLimits::default()).expect_err("plain JSON");
    assert!(matches!(&e, LogError::NotGzip { start } if start == b"{\"Re"), "{e}");
    let e = log::read(b"", &LogLimits::default()).expect_err("empty");
    assert!(matches!(&e, LogError::NotGzip { start } if start.is_empty()), "{e}");

    let limits = LogLimits { max_compressed: 100, ..LogLimits::default() };
    let e = log::read(&good, &limits).expect_err("compressed too large");
    assert!(matches!(e, LogError::CompressedTooLarge { max: 100, .. }), "{e}");
}

#[test]
fn malformed_json_and_not_records() {
    let read = |text: &str| log::read(&gzip(text.as_bytes()), &LogLimits::default());
    for text in ["{\"Records\": [", "{Records: []}", "", "{\"Records\": [{\"eventID\": \"x\",}]}"] {
        let e = read(text).expect_err(text);
        assert!(matches!(e, LogError::NotJson(_)), "{text}: {e}");
    }
    for text in ["{\"Records\": 5}", "[]", "{}", "{\"records\": []}", "\"Records\"", "{\"Records\": {\"0\": {}}}"] {
        let e = read(text).expect_err(text);
        assert!(matches!(e, LogError::NotRecords(_)), "{text}: {e}");
    }
    let e = read("{\"Records\": 5}").expect_err("5");
    assert!(e.to_string().contains("an array of CloudTrail records"), "{e}");
}

#[test]
fn too_many_records() {
    let records: Vec<Value> = (0..4).map(|i| record_json(&format!("e-{i}"))).collect();
    let limits = LogLimits { max_records: 3, ..LogLimits::default() };
    let e = log::read(&log_of(&records), &limits).expect_err("4 records");
    assert!(matches!(e, LogError::TooManyRecords { max: 3 }), "{e}");
    let file = log::read(&log_of(&records[..3]), &limits).expect("3 records");
    assert_eq!(file.records.len(), 3);
    // Skipped records count against the cap too.
    let bad: Vec<Value> = (0..4).map(|_| json!(null)).collect();
    let e = log::read(&log_of(&bad), &limits).expect_err("4 elements");
    assert!(matches!(e, LogError::TooManyRecords { max: 3 }), "{e}");
}

#[test]
fn deep_nesting_is_bounded() {
    // 100,000 levels of arrays in requestParameters: serde_json's recursion limit refuses the file
    // (no stack overflow).
    let depth = 100_000;
    let text = format!(
        r#"{{"Records":[{{"eventID":"e","eventTime":"2026-12-07T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"eu-west-1","requestParameters":{}{}}}]}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let e = log::read(&gzip(text.as_bytes()), &LogLimits::default()).expect_err("too deep");
    assert!(matches!(e, LogError::NotJson(_)), "{e}");
    assert!(e.to_string().contains("recursion limit"), "{e}");

    // 100 levels (within the limit): read; the id walk does not look past its own depth cap.
    let mut nested = json!({"instanceId": "i-0deadbeefdeadbeef"});
    for _ in 0..100 {
        nested = json!({ "a": nested });
    }
    let mut record = record_json("e-nested");
    record["requestParameters"] = json!({"volumeId": "vol-0a1b2c3d", "deep": nested});
    let file = log::read(&log_of(&[record]), &LogLimits::default()).expect("reads");
    assert_eq!(file.records.len(), 1);
    assert_eq!(file.records[0].resource_ids().into_iter().collect::<Vec<_>>(), ["vol-0a1b2c3d"]);
}

#[test]
fn resource_ids_and_tags_of_hostile_shapes() {
    let mut record = record_json("e-shapes");
    record["requestParameters"] = json!({
        "tagSpecificationSet": {"items": [
            {"tags": [{"key": "a", "value": "1"}, {"key": 5, "value": "x"}, {"value": "no key"}, {"key": "empty"}]},
            {"tags": "not a list"},
            "not an object"
        ]},
        "tagSet": {"items": {"key": "not a list"}},
        "ids": ["i-0123abcd", "I-0123ABCD", "i-0123abcd ", "vpce-0123456789abcdef0", 17, null, "igw-0123abcd", "rtb-0123abcd", "i-0123abcd"]
    });
    record["responseElements"] = json!({"subnetId": "subnet-0123abcd", "keyName": "sg-0123abcd"});
    let r = Record::from_value(&record).expect("record");
    assert_eq!(r.tags(), strings(&[("a", "1"), ("empty", "")]));
    assert_eq!(
        r.resource_ids().into_iter().collect::<Vec<_>>(),
        ["i-0123abcd", "igw-0123abcd", "rtb-0123abcd", "sg-0123abcd", "subnet-0123abcd", "vpce-0123456789abcdef0"]
    );
}

// ---------------------------------------------------------------------------------------------
// No panic on any input

/// xorshift64: a fixed, dependency-free sequence of mutations.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).expect("fits")).expect("fits")
    }
    /// Flip, overwrite, delete or duplicate a few bytes.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len());
            match self.below(4) {
                0 if at < out.len() => out[at] ^= 1 << self.below(8),
                1 if at < out.len() => out[at] = b"{}[]\",:0\\%+ \x00\xff"[self.below(14)],
                2 if at < out.len() => {
                    out.remove(at);
                }
                _ => {
                    let end = (at + self.below(32)).min(out.len());
                    let copy = out[at..end].to_vec();
                    out.splice(at..at, copy);
                }
            }
        }
        out
    }
}

#[test]
fn mutated_inputs_never_panic() {
    let mut m = Mutator(0x9e37_79b9_7f4a_7c15);
    let bodies = [fixture("s3-notification.json"), fixture("sns-envelope.json"), fixture("s3-test-event.json")];
    let mut parsed = 0;
    for round in 0..3_000 {
        let body = m.mutate(bodies[round % bodies.len()].as_bytes());
        let text = String::from_utf8_lossy(&body);
        if let Ok(n) = notification::parse(&text, BUCKET) {
            parsed += 1;
            if let Notification::Objects(objects) = n {
                for o in objects {
                    let _ = o.is_log_file();
                }
            }
        }
    }
    // Both outcomes are exercised.
    assert!((100..2_900).contains(&parsed), "{parsed} of 3000 mutated messages parsed");
    let text = fixture("ec2-log.json");
    let compressed = gzip(text.as_bytes());
    let limits = LogLimits { max_decompressed: 64 * 1024, ..LogLimits::default() };
    let (mut read_json, mut read_gzip) = (0, 0);
    for round in 0..600 {
        // Mutate the JSON (then gzip it) or the gzip bytes themselves.
        let bytes = if round % 2 == 0 { gzip(&m.mutate(text.as_bytes())) } else { m.mutate(&compressed) };
        if let Ok(file) = log::read(&bytes, &limits) {
            if round % 2 == 0 {
                read_json += 1;
            } else {
                read_gzip += 1;
            }
            for r in &file.records {
                let _ = (r.resource_ids(), r.tags(), r.is_by("arn:aws:iam::111122223333:user/alice"), triggers(r));
            }
        }
    }
    eprintln!("mutated log files read: {read_json} of 300 (JSON mutated), {read_gzip} of 300 (gzip mutated)");
    assert!(read_json > 0, "some mutated JSON still reads");
}
