//! One CloudTrail record (CloudTrail User Guide, "CloudTrail record contents"): the fields the
//! daemon reads, read leniently from one element of a log file's `Records` array, and what the
//! record says about EC2 resources (the ids it names, the tags it applies) and about who made the
//! call.
//!
//! Required fields (`eventID`, `eventTime`, `eventSource`, `eventName`, `awsRegion`) absent or of
//! the wrong type make the record unreadable (the caller skips it); optional fields of the wrong
//! type read as absent. `requestParameters` and `responseElements` are kept as JSON: their shape
//! depends on the API call (for EC2, the Query API's XML turned into JSON: lists are
//! `{"items":[...]}` objects, e.g. `instancesSet.items[].instanceId`).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Prefixes of the EC2 resource ids [`Record::resource_ids`] collects (EC2 User Guide, "Resource
/// IDs"; the same shapes as `crate::cloud::ids`).
const ID_PREFIXES: [&str; 11] = ["i", "vol", "snap", "ami", "vpc", "subnet", "sg", "igw", "vpce", "eni", "rtb"];

/// Our choice: nesting depth of the id walk. The deepest EC2 element we know is about 8 levels
/// (RunInstances `responseElements.instancesSet.items[].networkInterfaceSet.items[].groupSet
/// .items[].groupId`); deeper values are not looked into.
const MAX_WALK_DEPTH: usize = 32;
/// Our choice: JSON values the id walk visits per record (a RunInstances response for 100
/// instances is a few thousand).
const MAX_WALK_NODES: usize = 100_000;
/// Our choice: ids collected per record.
const MAX_IDS: usize = 10_000;
/// Our choice: tags read per record (EC2 allows 50 tags per resource, EC2 User Guide "Tag
/// restrictions", and a tag specification per resource type).
const MAX_TAGS: usize = 1_000;
/// Our choice: characters of a field's value quoted in a skip reason.
const MAX_QUOTED_CHARS: usize = 80;

/// Who made the call (`userIdentity`, CloudTrail User Guide "CloudTrail userIdentity element").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// `userIdentity.type`: IAMUser, AssumedRole, Root, AWSService...
    pub kind: Option<String>,
    /// `userIdentity.arn`.
    pub arn: Option<String>,
    /// `userIdentity.accountId`.
    pub account_id: Option<String>,
    /// `userIdentity.accessKeyId`.
    pub access_key_id: Option<String>,
    /// `userIdentity.principalId`.
    pub principal_id: Option<String>,
    /// `userIdentity.invokedBy` (the AWS service that made the call on the principal's behalf).
    pub invoked_by: Option<String>,
    /// `sessionContext.sessionIssuer.arn` for assumed roles.
    pub session_issuer_arn: Option<String>,
}

/// One CloudTrail record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `eventID` (required).
    pub event_id: String,
    /// `eventTime` (required, RFC 3339, e.g. `2026-12-07T10:00:00Z`).
    pub event_time: jiff::Timestamp,
    /// `eventSource` (required), e.g. `ec2.amazonaws.com`.
    pub event_source: String,
    /// `eventName` (required), e.g. `RunInstances`.
    pub event_name: String,
    /// `awsRegion` (required).
    pub region: String,
    /// `sourceIPAddress`.
    pub source_ip: Option<String>,
    /// `userAgent`.
    pub user_agent: Option<String>,
    /// `userIdentity` (absent: every field `None`).
    pub identity: Identity,
    /// `readOnly`.
    pub read_only: Option<bool>,
    /// `errorCode` (present when the call failed).
    pub error_code: Option<String>,
    /// `eventType` (AwsApiCall, AwsServiceEvent...).
    pub event_type: Option<String>,
    /// `recipientAccountId`.
    pub recipient_account_id: Option<String>,
    /// `requestParameters` (`Null` when absent).
    pub request_parameters: Value,
    /// `responseElements` (`Null` when absent).
    pub response_elements: Value,
}

impl Record {
    /// Lenient: required fields absent or of the wrong type → `Err(reason)`; optional fields of
    /// the wrong type → `None` (never a panic, never the whole file lost).
    pub fn from_value(v: &Value) -> Result<Record, String> {
        let Value::Object(map) = v else {
            return Err(format!("not a JSON object but {}", kind_of(v)));
        };
        Record::from_map(map.clone())
    }

    /// [`Record::from_value`] on an owned value (the log reader's path: nothing is copied).
    pub(crate) fn from_owned(v: Value) -> Result<Record, String> {
        match v {
            Value::Object(map) => Record::from_map(map),
            other => Err(format!("not a JSON object but {}", kind_of(&other))),
        }
    }

    fn from_map(mut map: Map<String, Value>) -> Result<Record, String> {
        let event_id = required(&map, "eventID")?;
        let time_text = required(&map, "eventTime")?;
        let event_time: jiff::Timestamp = time_text
            .parse()
            .map_err(|e| format!("eventTime \"{}\" is not an RFC 3339 time: {e}", quote(&time_text)))?;
        let event_source = required(&map, "eventSource")?;
        let event_name = required(&map, "eventName")?;
        let region = required(&map, "awsRegion")?;
        let identity = map.get("userIdentity").map(identity).unwrap_or_default();
        Ok(Record {
            event_id,
            event_time,
            event_source,
            event_name,
            region,
            source_ip: optional(&map, "sourceIPAddress"),
            user_agent: optional(&map, "userAgent"),
            identity,
            read_only: map.get("readOnly").and_then(Value::as_bool),
            error_code: optional(&map, "errorCode"),
            event_type: optional(&map, "eventType"),
            recipient_account_id: optional(&map, "recipientAccountId"),
            request_parameters: map.remove("requestParameters").unwrap_or(Value::Null),
            response_elements: map.remove("responseElements").unwrap_or(Value::Null),
        })
    }

    /// EC2 resource ids named anywhere in `requestParameters` and `responseElements` (string
    /// values, not keys): `i-`, `vol-`, `snap-`, `ami-`, `vpc-`, `subnet-`, `sg-`, `igw-`,
    /// `vpce-`, `eni-`, `rtb-` followed by 8 or 17 lower-case hex digits. The walk is bounded:
    /// values deeper than 32 levels are not looked into, and it stops after 100,000 values or
    /// 10,000 ids.
    #[must_use]
    pub fn resource_ids(&self) -> BTreeSet<String> {
        ids_in(vec![(&self.response_elements, 0), (&self.request_parameters, 0)])
    }

    /// The ids `requestParameters` names (not the ones the call created): what a call of ours
    /// that this record logs must have named too. Bounded as [`Record::resource_ids`].
    #[must_use]
    pub fn request_ids(&self) -> BTreeSet<String> {
        ids_in(vec![(&self.request_parameters, 0)])
    }

    /// Tags the call applies, as (key, value), in the record's order:
    /// `requestParameters.tagSpecificationSet.items[].tags[]` (RunInstances, CreateSnapshot,
    /// CreateVolume...) then `requestParameters.tagSet.items[]` (CreateTags). A tag without a
    /// string `key` is left out; one without a string `value` has the empty value. At most 1,000.
    #[must_use]
    pub fn tags(&self) -> Vec<(String, String)> {
        let mut tags = Vec::new();
        let specs = items(self.request_parameters.get("tagSpecificationSet"));
        let from_specs = specs.flat_map(|spec| spec.get("tags").and_then(Value::as_array).into_iter().flatten());
        let from_set = items(self.request_parameters.get("tagSet"));
        for tag in from_specs.chain(from_set) {
            if tags.len() >= MAX_TAGS {
                break;
            }
            if let Some(key) = tag.get("key").and_then(Value::as_str) {
                let value = tag.get("value").and_then(Value::as_str).unwrap_or_default();
                tags.push((key.to_owned(), value.to_owned()));
            }
        }
        tags
    }

    /// Whether the call is by `principal_arn`: `userIdentity.arn` equal, or, for an assumed role
    /// (`userIdentity.type` `AssumedRole`), the session issuer's (the role's) arn equal. An empty
    /// `principal_arn` matches nothing.
    #[must_use]
    pub fn is_by(&self, principal_arn: &str) -> bool {
        if principal_arn.is_empty() {
            return false;
        }
        let id = &self.identity;
        id.arn.as_deref() == Some(principal_arn)
            || (id.kind.as_deref() == Some("AssumedRole") && id.session_issuer_arn.as_deref() == Some(principal_arn))
    }
}

/// The resource ids among the string values under `stack` (bounded as [`Record::resource_ids`]).
fn ids_in(mut stack: Vec<(&Value, usize)>) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut visited = 0usize;
    while let Some((value, depth)) = stack.pop() {
        visited += 1;
        if visited > MAX_WALK_NODES || ids.len() >= MAX_IDS {
            break;
        }
        match value {
            Value::String(s) if is_resource_id(s) => {
                ids.insert(s.clone());
            }
            Value::Array(items) if depth < MAX_WALK_DEPTH => {
                stack.extend(items.iter().rev().map(|v| (v, depth + 1)));
            }
            Value::Object(fields) if depth < MAX_WALK_DEPTH => {
                stack.extend(fields.values().rev().map(|v| (v, depth + 1)));
            }
            _ => {}
        }
    }
    ids
}

/// The resource ids in free text (e.g. the debug form of a call): maximal runs of
/// `[A-Za-z0-9-]` that are ids.
#[must_use]
pub fn ids_in_text(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| is_resource_id(w))
        .map(str::to_owned)
        .collect()
}

/// The elements of an EC2 list (`{"items":[...]}`); nothing when `list` is absent or not one.
pub(crate) fn items(list: Option<&Value>) -> impl Iterator<Item = &Value> {
    list.and_then(|l| l.get("items")).and_then(Value::as_array).into_iter().flatten()
}

/// An EC2 resource id of one of [`ID_PREFIXES`]: prefix, `-`, 8 or 17 lower-case hex digits.
pub fn is_resource_id(s: &str) -> bool {
    let Some((prefix, hex)) = s.split_once('-') else { return false };
    ID_PREFIXES.contains(&prefix)
        && matches!(hex.len(), 8 | 17)
        && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn identity(v: &Value) -> Identity {
    let Value::Object(map) = v else { return Identity::default() };
    Identity {
        kind: optional(map, "type"),
        arn: optional(map, "arn"),
        account_id: optional(map, "accountId"),
        access_key_id: optional(map, "accessKeyId"),
        principal_id: optional(map, "principalId"),
        invoked_by: optional(map, "invokedBy"),
        session_issuer_arn: map
            .get("sessionContext")
            .and_then(|c| c.get("sessionIssuer"))
            .and_then(|i| i.get("arn"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn required(map: &Map<String, Value>, field: &str) -> Result<String, String> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("{field} is {}, not a string", kind_of(other))),
        None => Err(format!("{field} is absent")),
    }
}

fn optional(map: &Map<String, Value>, field: &str) -> Option<String> {
    map.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// What a JSON value is, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Input text cut for a message: at most [`MAX_QUOTED_CHARS`] characters, control characters
/// escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_QUOTED_CHARS).flat_map(char::escape_debug).collect();
    if s.chars().nth(MAX_QUOTED_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn minimal() -> Value {
        json!({
            "eventID": "e1", "eventTime": "2026-12-07T10:00:00Z", "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances", "awsRegion": "eu-west-1"
        })
    }

    #[test]
    fn minimal_record_has_null_parameters_and_no_identity() {
        let r = Record::from_value(&minimal()).expect("read");
        assert_eq!(r.event_time.to_string(), "2026-12-07T10:00:00Z");
        assert_eq!(r.identity, Identity::default());
        assert_eq!(r.request_parameters, Value::Null);
        assert!(r.resource_ids().is_empty());
        assert!(r.tags().is_empty());
        assert!(!r.is_by(""));
    }

    #[test]
    fn required_fields_give_reasons() {
        let mut v = minimal();
        v["eventTime"] = json!(12);
        assert_eq!(Record::from_value(&v).expect_err("refused"), "eventTime is a number, not a string");
        v["eventTime"] = json!("yesterday");
        assert!(
            Record::from_value(&v).expect_err("refused").starts_with("eventTime \"yesterday\" is not an RFC 3339 time")
        );
        let mut v = minimal();
        v.as_object_mut().expect("object").remove("awsRegion");
        assert_eq!(Record::from_value(&v).expect_err("refused"), "awsRegion is absent");
        assert_eq!(Record::from_value(&json!([1])).expect_err("refused"), "not a JSON object but an array");
    }

    #[test]
    fn optional_fields_of_the_wrong_type_are_absent() {
        let mut v = minimal();
        v["readOnly"] = json!("false");
        v["userAgent"] = json!(["x"]);
        v["userIdentity"] = json!({"type": 3, "arn": "arn:aws:iam::123456789012:user/a", "sessionContext": 1});
        let r = Record::from_value(&v).expect("read");
        assert_eq!(r.read_only, None);
        assert_eq!(r.user_agent, None);
        assert_eq!(r.identity.kind, None);
        assert_eq!(r.identity.arn.as_deref(), Some("arn:aws:iam::123456789012:user/a"));
        assert_eq!(r.identity.session_issuer_arn, None);
    }

    #[test]
    fn id_shapes() {
        for ok in ["i-0123abcd", "i-0123456789abcdef0", "vpce-0a1b2c3d", "rtb-0123456789abcdef0", "ami-deadbeef"] {
            assert!(is_resource_id(ok), "{ok}");
        }
        for bad in
            ["i-0123ABCD", "i-0123abc", "x-0123abcd", "i-0123abcdg", "i-", "sg", "i-0123456789abcdef", "é-0123abcd"]
        {
            assert!(!is_resource_id(bad), "{bad}");
        }
    }

    #[test]
    fn walk_is_bounded_in_depth() {
        let mut deep = json!("i-0123abcd");
        for _ in 0..40 {
            deep = json!({ "a": deep });
        }
        let mut v = minimal();
        v["requestParameters"] = json!({ "deep": deep, "shallow": "vol-0123abcd" });
        let r = Record::from_value(&v).expect("read");
        assert_eq!(r.resource_ids().into_iter().collect::<Vec<_>>(), ["vol-0123abcd"]);
    }

    #[test]
    fn quote_cuts_and_escapes() {
        assert_eq!(quote("a\nb"), "a\\nb");
        assert_eq!(quote(&"x".repeat(100)).chars().count(), MAX_QUOTED_CHARS + 1);
    }
}
