//! One SQS message body from the trail bucket's event notifications: the S3 event notification
//! (S3 User Guide, "Event message structure"), raw or wrapped in an SNS envelope (S3 → SNS → SQS
//! fan-out, SNS Developer Guide "Parsing message formats": `{"Type":"Notification","Message":
//! "<the S3 notification as a string>",...}`), or the `s3:TestEvent` S3 sends when the
//! notification is configured.
//!
//! Owns: which objects the message announces ([`LogObject`], keys URL-decoded), whether an object
//! is a CloudTrail log file ([`LogObject::is_log_file`]), and the refusal of any message naming a
//! bucket other than the trail's: a queue that receives another bucket's events is misconfigured
//! or fed by someone else, and none of its records are trusted.

use serde_json::{Map, Value};

use super::record::{kind_of, quote};

/// SQS's maximum message size (256 KiB, SQS developer guide "Quotas").
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Our choice: records per message. S3 sends one record per notification (S3 User Guide, "Event
/// message structure"); 100 leaves room for anything that batches without letting a message fan
/// out into thousands of downloads.
pub const MAX_RECORDS: usize = 100;
/// The longest object key S3 allows: 1,024 bytes of UTF-8 (S3 User Guide, "Naming Amazon S3
/// objects").
pub const MAX_KEY_BYTES: usize = 1024;
/// Our choice: object keys named in an error message describing what was found.
const MAX_KEYS_DESCRIBED: usize = 8;

/// One object the notification announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogObject {
    /// `s3.bucket.name` (always the trail bucket: others are refused).
    pub bucket: String,
    /// The object key, URL-decoded (S3 notifications form-encode keys: '+' is a space, %XX bytes).
    pub key: String,
    /// `s3.object.size` in bytes.
    pub size: Option<u64>,
    /// `s3.object.eTag`.
    pub etag: Option<String>,
    /// `s3.object.sequencer`: orders events on one key (hex, compare after padding).
    pub sequencer: Option<String>,
    /// The record's `eventTime`.
    pub event_time: Option<jiff::Timestamp>,
    /// The record's `awsRegion` (the bucket's Region).
    pub region: Option<String>,
}

impl LogObject {
    /// A CloudTrail log file (`AWSLogs/.../CloudTrail/...json.gz`), not a digest
    /// (`CloudTrail-Digest/`) or an insight file or anything else.
    ///
    /// The key shape (CloudTrail User Guide, "Finding your CloudTrail log files"):
    /// `[prefix/]AWSLogs/[o-org-id/]<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/<file>` where
    /// the file is `<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz` (the same
    /// account and Region as its folders). Digests live
    /// under `CloudTrail-Digest/`, Insights events under `CloudTrail-Insight/`.
    #[must_use]
    pub fn is_log_file(&self) -> bool {
        let parts: Vec<&str> = self.key.split('/').collect();
        let Some(logs) = parts.iter().position(|p| *p == "AWSLogs") else { return false };
        let rest = parts.get(logs + 1..).unwrap_or_default();
        // The account, or the organization id then the account, before `CloudTrail`.
        let (account, after_account) = match rest {
            [account, "CloudTrail", tail @ ..] if is_account(account) => (account, tail),
            [org, account, "CloudTrail", tail @ ..] if org.starts_with("o-") && is_account(account) => (account, tail),
            _ => return false,
        };
        let [region, year, month, day, file] = after_account else { return false };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        !region.is_empty()
            && digits(year, 4)
            && digits(month, 2)
            && digits(day, 2)
            && file.strip_prefix(*account).is_some_and(|f| f.starts_with(&format!("_CloudTrail_{region}_")))
            && file.ends_with(".json.gz")
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// What one message means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `{"Service":"Amazon S3","Event":"s3:TestEvent",...}` that S3 sends when the notification is set up.
    Test {
        /// Its `Bucket` (when present it is the trail bucket: others are refused).
        bucket: Option<String>,
    },
    /// `ObjectCreated:*` records (other event names, e.g. ObjectRemoved, are left out).
    Objects(Vec<LogObject>),
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// Larger than SQS can deliver: not from SQS.
    #[error("the message is {bytes} bytes, over SQS's maximum of {max}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// [`MAX_MESSAGE_BYTES`].
        max: usize,
    },
    /// Not JSON (the body, or the SNS envelope's `Message`).
    #[error("{what} is not JSON: {source}")]
    NotJson {
        /// "the message" or "the SNS envelope's Message".
        what: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// JSON, but not an S3 event notification nor an SNS envelope of one.
    #[error("the message is not an S3 event notification: found {found}")]
    NotS3Notification {
        /// What was found instead.
        found: String,
    },
    /// More records than [`MAX_RECORDS`].
    #[error("the message has {count} records, over our cap of {max}")]
    TooManyRecords {
        /// How many.
        count: usize,
        /// [`MAX_RECORDS`].
        max: usize,
    },
    /// A record (or the test event) naming another bucket than the trail's: the whole message is
    /// refused.
    #[error("the message names bucket \"{found}\", not the trail bucket \"{expected}\"")]
    OtherBucket {
        /// The trail bucket the pipeline is configured with.
        expected: String,
        /// The bucket the message names (or its bucket ARN), cut to 80 characters.
        found: String,
    },
    /// A field absent, of the wrong type, or with a bad value.
    #[error("record {index}: {field} {reason}")]
    BadField {
        /// The record's index in `Records`.
        index: usize,
        /// The field's path, e.g. `s3.object.key`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Parse one message body; `bucket` is the trail bucket the pipeline is configured with: any record
/// naming another bucket refuses the whole message.
pub fn parse(body: &str, bucket: &str) -> Result<Notification, NotificationError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(NotificationError::TooLarge { bytes: body.len(), max: MAX_MESSAGE_BYTES });
    }
    let value: Value =
        serde_json::from_str(body).map_err(|source| NotificationError::NotJson { what: "the message", source })?;
    let Value::Object(mut map) = value else {
        return Err(not_s3(format!("{} at the top level", kind_of(&value))));
    };
    if map.get("Type").is_some() && map.get("Records").is_none() {
        map = unwrap_sns(&map)?;
    }
    parse_s3(&map, bucket)
}

/// The S3 notification inside an SNS envelope (one level only: an envelope in an envelope is
/// refused).
fn unwrap_sns(envelope: &Map<String, Value>) -> Result<Map<String, Value>, NotificationError> {
    match envelope.get("Type") {
        Some(Value::String(t)) if t == "Notification" => {}
        Some(Value::String(t)) => return Err(not_s3(format!("an SNS message of Type \"{}\"", quote(t)))),
        Some(other) => return Err(not_s3(format!("an object whose Type is {}", kind_of(other)))),
        None => return Err(not_s3("an SNS envelope without Type".to_owned())),
    }
    let Some(Value::String(message)) = envelope.get("Message") else {
        return Err(not_s3("an SNS envelope without a string Message".to_owned()));
    };
    let inner: Value = serde_json::from_str(message)
        .map_err(|source| NotificationError::NotJson { what: "the SNS envelope's Message", source })?;
    match inner {
        Value::Object(m) if m.get("Type").is_none() || m.get("Records").is_some() => Ok(m),
        Value::Object(_) => Err(not_s3("an SNS envelope inside an SNS envelope".to_owned())),
        other => Err(not_s3(format!("an SNS envelope whose Message is {}", kind_of(&other)))),
    }
}

fn parse_s3(map: &Map<String, Value>, bucket: &str) -> Result<Notification, NotificationError> {
    if map.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let test_bucket = match map.get("Bucket") {
            None | Some(Value::Null) => None,
            Some(Value::String(b)) => Some(b.clone()),
            Some(other) => {
                return Err(NotificationError::BadField {
                    index: 0,
                    field: "Bucket",
                    reason: format!("is {}, not a string", kind_of(other)),
                });
            }
        };
        if let Some(b) = &test_bucket {
            check_bucket(b, bucket)?;
        }
        return Ok(Notification::Test { bucket: test_bucket });
    }
    let records = match map.get("Records") {
        Some(Value::Array(records)) => records,
        Some(other) => return Err(not_s3(format!("Records is {}, not an array", kind_of(other)))),
        None => return Err(not_s3(describe_keys(map))),
    };
    if records.len() > MAX_RECORDS {
        return Err(NotificationError::TooManyRecords { count: records.len(), max: MAX_RECORDS });
    }
    let mut objects = Vec::new();
    for (index, record) in records.iter().enumerate() {
        if let Some(object) = parse_record(index, record, bucket)? {
            objects.push(object);
        }
    }
    Ok(Notification::Objects(objects))
}

/// One record: checked (source, bucket) whatever its event; `Some` for `ObjectCreated:*`.
fn parse_record(index: usize, record: &Value, bucket: &str) -> Result<Option<LogObject>, NotificationError> {
    let bad = |field: &'static str, reason: String| NotificationError::BadField { index, field, reason };
    let Value::Object(record) = record else {
        return Err(bad("(the record)", format!("is {}, not an object", kind_of(record))));
    };
    match record.get("eventSource") {
        Some(Value::String(s)) if s == "aws:s3" => {}
        Some(Value::String(s)) => return Err(not_s3(format!("a record with eventSource \"{}\"", quote(s)))),
        Some(other) => return Err(bad("eventSource", format!("is {}, not a string", kind_of(other)))),
        None => return Err(not_s3(format!("a record without eventSource: {}", describe_keys(record)))),
    }
    let s3 = record.get("s3");
    let bucket_value = s3.and_then(|s| s.get("bucket"));
    let name = string_at(bucket_value.and_then(|b| b.get("name")))
        .map_err(|reason| bad("s3.bucket.name", reason))?
        .ok_or_else(|| bad("s3.bucket.name", "is absent".to_owned()))?;
    check_bucket(name, bucket)?;
    if let Some(arn) = string_at(bucket_value.and_then(|b| b.get("arn"))).map_err(|r| bad("s3.bucket.arn", r))? {
        let named = arn.strip_prefix("arn:").and_then(|a| a.split_once(":s3:::")).map(|(_partition, b)| b);
        if named != Some(bucket) {
            return Err(NotificationError::OtherBucket { expected: bucket.to_owned(), found: quote(arn) });
        }
    }
    let event_name = string_at(record.get("eventName"))
        .map_err(|r| bad("eventName", r))?
        .ok_or_else(|| bad("eventName", "is absent".to_owned()))?;
    if !event_name.starts_with("ObjectCreated:") {
        return Ok(None);
    }
    let object = s3.and_then(|s| s.get("object"));
    let raw_key = string_at(object.and_then(|o| o.get("key")))
        .map_err(|r| bad("s3.object.key", r))?
        .ok_or_else(|| bad("s3.object.key", "is absent".to_owned()))?;
    let key = form_decode(raw_key).map_err(|r| bad("s3.object.key", r))?;
    let size = match object.and_then(|o| o.get("size")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| bad("s3.object.size", format!("is {}, not a size", kind_of(v))))?),
    };
    let event_time = match string_at(record.get("eventTime")).map_err(|r| bad("eventTime", r))? {
        None => None,
        Some(t) => Some(
            t.parse::<jiff::Timestamp>()
                .map_err(|e| bad("eventTime", format!("\"{}\" is not an RFC 3339 time: {e}", quote(t))))?,
        ),
    };
    Ok(Some(LogObject {
        bucket: name.to_owned(),
        key,
        size,
        etag: string_at(object.and_then(|o| o.get("eTag"))).map_err(|r| bad("s3.object.eTag", r))?.map(str::to_owned),
        sequencer: string_at(object.and_then(|o| o.get("sequencer")))
            .map_err(|r| bad("s3.object.sequencer", r))?
            .map(str::to_owned),
        event_time,
        region: string_at(record.get("awsRegion")).map_err(|r| bad("awsRegion", r))?.map(str::to_owned),
    }))
}

fn check_bucket(found: &str, expected: &str) -> Result<(), NotificationError> {
    if found == expected {
        Ok(())
    } else {
        Err(NotificationError::OtherBucket { expected: expected.to_owned(), found: quote(found) })
    }
}

/// A string field: `Ok(None)` when absent or null, `Err` when of another type.
fn string_at(v: Option<&Value>) -> Result<Option<&str>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("is {}, not a string", kind_of(other))),
    }
}

/// Decode an `application/x-www-form-urlencoded` key as S3 notifications write them: `+` is a
/// space, `%XX` a byte; the bytes must be UTF-8 and at most [`MAX_KEY_BYTES`].
fn form_decode(raw: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(raw.len().min(MAX_KEY_BYTES));
    let mut input = raw.bytes();
    while let Some(b) = input.next() {
        let decoded = match b {
            b'+' => b' ',
            b'%' => {
                let hi = input.next().and_then(hex_value);
                let lo = input.next().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => hi * 16 + lo,
                    _ => return Err(format!("\"{}\" has a % not followed by two hex digits", quote(raw))),
                }
            }
            other => other,
        };
        if bytes.len() >= MAX_KEY_BYTES {
            return Err(format!("is over S3's {MAX_KEY_BYTES} bytes once decoded"));
        }
        bytes.push(decoded);
    }
    String::from_utf8(bytes).map_err(|_| format!("\"{}\" does not decode to UTF-8", quote(raw)))
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn not_s3(found: String) -> NotificationError {
    NotificationError::NotS3Notification { found }
}

/// "an object with keys ..." (the first few, quoted and cut).
fn describe_keys(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return "an empty object".to_owned();
    }
    let mut keys: Vec<String> = map.keys().take(MAX_KEYS_DESCRIBED).map(|k| format!("\"{}\"", quote(k))).collect();
    if map.len() > MAX_KEYS_DESCRIBED {
        keys.push(format!("and {} more", map.len() - MAX_KEYS_DESCRIBED));
    }
    format!("an object with keys {}", keys.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%2Fc%20d").expect("decoded"), "a b/c d");
        assert_eq!(form_decode("caf%C3%A9").expect("decoded"), "café");
        assert_eq!(form_decode("%2b").expect("decoded"), "+");
        assert!(form_decode("50%").is_err());
        assert!(form_decode("%4").is_err());
        assert!(form_decode("%zz").is_err());
        assert!(form_decode("%FF").is_err(), "not UTF-8");
        assert!(form_decode(&"a".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(form_decode(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(form_decode(&"%41".repeat(MAX_KEY_BYTES + 1)).is_err());
    }

    fn object(key: &str) -> LogObject {
        LogObject {
            bucket: "b".to_owned(),
            key: key.to_owned(),
            size: None,
            etag: None,
            sequencer: None,
            event_time: None,
            region: None,
        }
    }

    #[test]
    fn log_file_keys() {
        for ok in [
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/07/111122223333_CloudTrail_us-east-1_20261207T1000Z_a1b2c3d4e5f6g7h8.json.gz",
            "my/prefix/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/12/07/111122223333_CloudTrail_eu-west-1_20261207T1005Z_x.json.gz",
            "AWSLogs/o-exampleorgid/111122223333/CloudTrail/us-east-1/2026/12/07/111122223333_CloudTrail_us-east-1_20261207T1000Z_x.json.gz",
        ] {
            assert!(object(ok).is_log_file(), "{ok}");
        }
        for bad in [
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/12/07/111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20261207T100000Z.json.gz",
            "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/12/07/111122223333_CloudTrail-Insight_us-east-1_20261207T1000Z_x.json.gz",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/07/111122223333_CloudTrail_us-east-1_20261207T1000Z_x.json",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/111122223333_CloudTrail_us-east-1_20261207T1000Z_x.json.gz",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/07/extra/111122223333_CloudTrail_x.json.gz",
            "AWSLogs/1111/CloudTrail/us-east-1/2026/12/07/1111_CloudTrail_us-east-1_20261207T1000Z_x.json.gz",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/07/ConfigWritabilityCheckFile",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/07/444455556666_CloudTrail_us-east-1_20261207T1000Z_x.json.gz",
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/07/111122223333_CloudTrail_eu-west-1_20261207T1000Z_x.json.gz",
            "",
            "AWSLogs",
        ] {
            assert!(!object(bad).is_log_file(), "{bad}");
        }
    }
}
