//! IAM identity-policy evaluation, and nothing of our operations: policy documents, conditions,
//! requests and decisions, plus the policy documents we ship (`policies/agentless-scan.json`, the
//! trail reader's). It is the engine behind the policy guard around every cloud call, the
//! simulated account's IAM, `agentless policy explain` and `agentless policy check`; it imports no
//! other module of the crate. What each of our calls is authorized as (`cloud::authz`) and the
//! call plan `policy check` evaluates (`cloud::plan`) live beside the guard in `cloud`; the
//! policy, the guard's own rules and the policy's gaps are described in docs/policy.md.
//!
//! ```
//! use agentless::policy::{Policy, Request, evaluate};
//!
//! let policy = agentless::policy::agentless_scan_policy()?;
//! let request = Request::new("ec2:DeleteSnapshot", "arn:aws:ec2:us-east-1:111122223333:snapshot/snap-1")?
//!     .with("ec2:ResourceTag/Name", "customer-backup");
//! let decision = evaluate(&[policy], &request);
//! assert!(!decision.is_allowed());
//! assert_eq!(decision.to_string(), "implicitly denied: agentless-scan.json Statement[1] matches the action and \
//!     resource, but its condition StringLike ec2:ResourceTag/Name \"SAS_Agentless*\" is false for the request \
//!     value \"customer-backup\"");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules, one concept each: [`document`] (the policy model and its strict reader), `json` (the
//! order-keeping, duplicate-refusing JSON tree under it), [`matcher`] (wildcards and case rules),
//! [`condition`] (operators), `scalar` and [`cidr`] (typed condition values), [`context`] (the
//! request), [`eval`] (the decision). The semantics chosen where AWS leaves room are written down
//! in those modules: absent keys and negated operators in [`condition`], key case in [`context`],
//! policy variables in [`document`].

pub mod cidr;
pub mod condition;
pub mod context;
pub mod document;
mod error;
pub mod eval;
mod json;
pub mod matcher;
mod scalar;

use std::io::Read;
use std::path::Path;

pub use condition::{Condition, ConditionFailure, Operator, OperatorKind, SetOperator};
pub use context::{Context, Request, RequestError};
pub use document::{ActionSpec, Effect, PolicyDocument, ResourceSpec, Statement, Version};
pub use error::{AWS_MANAGED_POLICY_MAX_CHARS, MAX_POLICY_BYTES, PolicyError};
pub use eval::{Decision, DenyReason, Miss, NearMiss, StatementRef, evaluate};

/// The custom policy of the onboarding document, verbatim (`policies/agentless-scan.json`).
pub const AGENTLESS_SCAN_POLICY_JSON: &str = include_str!("../../policies/agentless-scan.json");

/// The name [`agentless_scan_policy`] gives the custom policy.
pub const AGENTLESS_SCAN_POLICY_NAME: &str = "agentless-scan.json";

/// The embedded custom policy, parsed.
pub fn agentless_scan_policy() -> Result<Policy, PolicyError> {
    Policy::parse(AGENTLESS_SCAN_POLICY_NAME, AGENTLESS_SCAN_POLICY_JSON)
}

/// The CloudTrail pipeline's reader policy (`policies/agentless-trail-reader.json`): the
/// onboarding document's SQS statement (`sqs:GetQueueUrl`, `sqs:ReceiveMessage` on the queue) and
/// our narrow alternative to `ReadOnlyAccess` for the log files (`s3:GetObject` on the trail
/// bucket's `AWSLogs/` prefix), with `${QueueArn}` and `${TrailBucket}` to fill in.
pub const TRAIL_READER_POLICY_TEMPLATE: &str = include_str!("../../policies/agentless-trail-reader.json");

/// The name [`trail_reader_policy`] gives the reader policy.
pub const TRAIL_READER_POLICY_NAME: &str = "agentless-trail-reader.json";

/// The reader policy for one pipeline: `queue_arn` (`arn:aws:sqs:<region>:<account>:<name>`) and
/// the trail bucket's name, substituted into [`TRAIL_READER_POLICY_TEMPLATE`].
///
/// # Errors
///
/// A value that is not a plain ARN or bucket name (quotes, backslashes or control characters
/// would change the document), or the result does not parse.
pub fn trail_reader_policy(queue_arn: &str, bucket: &str) -> Result<Policy, PolicyError> {
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if !plain(queue_arn) || !plain(bucket) {
        return Err(PolicyError::Template(format!(
            "queue ARN {queue_arn:?} and bucket {bucket:?} must be non-empty printable ASCII without quotes or backslashes"
        )));
    }
    let text = TRAIL_READER_POLICY_TEMPLATE.replace("${QueueArn}", queue_arn).replace("${TrailBucket}", bucket);
    Policy::parse(TRAIL_READER_POLICY_NAME, &text)
}

/// A named, validated policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    name: String,
    document: PolicyDocument,
    /// Characters other than white space in the source text, the measure of AWS's size quota.
    source_chars: Option<usize>,
}

impl Policy {
    /// Parse policy text. `name` is how decisions refer to the policy (a file name, an ARN...).
    pub fn parse(name: impl Into<String>, text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { size: text.len(), limit: MAX_POLICY_BYTES });
        }
        let tree = json::parse(text).map_err(PolicyError::Json)?;
        let document = document::from_json(&tree)?;
        let source_chars = Some(text.chars().filter(|c| !c.is_whitespace()).count());
        Ok(Policy { name: name.into(), document, source_chars })
    }

    /// Parse policy bytes (size checked before anything else, then UTF-8).
    pub fn from_slice(name: impl Into<String>, bytes: &[u8]) -> Result<Policy, PolicyError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { size: bytes.len(), limit: MAX_POLICY_BYTES });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| PolicyError::NotUtf8 { offset: e.valid_up_to() })?;
        Policy::parse(name, text)
    }

    /// Read and parse a policy file, named by its path as given. At most [`MAX_POLICY_BYTES`] + 1
    /// bytes are read, so a huge file is refused without being loaded.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let in_file = |source| PolicyError::InFile { path: path.to_owned(), source: Box::new(source) };
        let io = |source| PolicyError::Io { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        let limit = u64::try_from(MAX_POLICY_BYTES).unwrap_or(u64::MAX).saturating_add(1);
        file.take(limit).read_to_end(&mut bytes).map_err(io)?;
        Policy::from_slice(path.display().to_string(), &bytes).map_err(in_file)
    }

    /// A policy from a document built in code. It is checked exactly as the reader checks a file
    /// (by reading back its JSON form), so errors carry the same paths.
    pub fn from_document(name: impl Into<String>, document: PolicyDocument) -> Result<Policy, PolicyError> {
        let name = name.into();
        Policy::parse(name.as_str(), &document.to_json().to_string())?;
        Ok(Policy { name, document, source_chars: None })
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// Non-white-space characters of the source text (what AWS's 6,144-character quota counts);
    /// `None` for a policy built in code.
    #[must_use]
    pub fn source_chars(&self) -> Option<usize> {
        self.source_chars
    }

    /// Would AWS refuse this as a managed policy for its size?
    #[must_use]
    pub fn exceeds_aws_size_quota(&self) -> bool {
        self.source_chars.is_some_and(|n| n > AWS_MANAGED_POLICY_MAX_CHARS)
    }

    /// The same policy without statement `index` (`None` if there is no such statement, or it is
    /// the only one). For proving that every statement is needed.
    #[must_use]
    pub fn without_statement(&self, index: usize) -> Option<Policy> {
        if index >= self.document.statements.len() || self.document.statements.len() == 1 {
            return None;
        }
        let mut p = self.clone();
        p.document.statements.remove(index);
        p.source_chars = None;
        Some(p)
    }

    /// The same policy without action entry `action` of statement `statement`'s `Action` list
    /// (`None` if there is no such entry, the element is `NotAction`, or it is the statement's only
    /// action: then remove the statement). For proving that every action is needed.
    #[must_use]
    pub fn without_action(&self, statement: usize, action: usize) -> Option<Policy> {
        let s = self.document.statements.get(statement)?;
        let ActionSpec::Action(actions) = &s.action else { return None };
        if action >= actions.len() || actions.len() == 1 {
            return None;
        }
        let mut p = self.clone();
        if let Some(ActionSpec::Action(a)) = p.document.statements.get_mut(statement).map(|s| &mut s.action) {
            a.remove(action);
        }
        p.source_chars = None;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_custom_policy_parses() {
        let p = agentless_scan_policy().expect("custom policy");
        let d = p.document();
        assert_eq!(d.version, Version::V2012_10_17);
        assert_eq!(d.statements.len(), 3);
        let counts: Vec<usize> = d
            .statements
            .iter()
            .map(|s| match &s.action {
                ActionSpec::Action(a) | ActionSpec::NotAction(a) => a.len(),
            })
            .collect();
        assert_eq!(counts, [7, 1, 43]);
        assert!(!p.exceeds_aws_size_quota(), "{:?}", p.source_chars());
    }

    #[test]
    fn to_json_round_trips() {
        let p = agentless_scan_policy().expect("custom policy");
        let text = p.document().to_json().to_string();
        let again = Policy::parse("again", &text).expect("reparse");
        assert_eq!(again.document(), p.document());
    }

    #[test]
    fn removing_statements_and_actions() {
        let p = agentless_scan_policy().expect("custom policy");
        assert_eq!(p.without_statement(1).map(|q| q.document().statements.len()), Some(2));
        assert!(p.without_statement(3).is_none());
        assert!(p.without_action(1, 0).is_none(), "the only action of a statement");
        let q = p.without_action(2, 0).expect("CopySnapshot removed");
        let ActionSpec::Action(a) = &q.document().statements[2].action else { panic!("Action") };
        assert_eq!(a.len(), 42);
        assert!(!a.iter().any(|a| a == "ec2:CopySnapshot"));
    }

    #[test]
    fn from_document_checks_patterns() {
        let mut d = agentless_scan_policy().expect("custom policy").document().clone();
        d.statements[0].action = ActionSpec::Action(vec!["DeleteVpc".into()]);
        let err = Policy::from_document("x", d).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("Statement[0].Action \"DeleteVpc\" is not an action"), "{err}");
    }
}

#[cfg(test)]
mod trail_reader_tests {
    use super::*;

    #[test]
    fn the_reader_policy_allows_the_queue_and_the_log_files_only() {
        let arn = "arn:aws:sqs:us-east-1:111122223333:aliyun-sasc-log-queue";
        let p = trail_reader_policy(arn, "aws-cloudtrail-logs-111122223333-abc").expect("the template parses");
        let allowed = |action: &str, resource: &str| {
            evaluate(std::slice::from_ref(&p), &Request::new(action, resource).expect("a valid request")).is_allowed()
        };
        assert!(allowed("sqs:ReceiveMessage", arn));
        assert!(allowed("sqs:GetQueueUrl", arn));
        assert!(!allowed("sqs:DeleteMessage", arn));
        assert!(!allowed("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:111122223333:other"));
        let log = "arn:aws:s3:::aws-cloudtrail-logs-111122223333-abc/AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/07/x.json.gz";
        assert!(allowed("s3:GetObject", log));
        assert!(!allowed("s3:GetObject", "arn:aws:s3:::aws-cloudtrail-logs-111122223333-abc/other/x"));
        assert!(!allowed("s3:GetObject", "arn:aws:s3:::another-bucket/AWSLogs/x"));
        assert!(!allowed("s3:PutObject", log));
    }

    #[test]
    fn values_that_would_change_the_document_are_refused() {
        assert!(matches!(trail_reader_policy("arn\",\"Effect\":\"Deny", "b"), Err(PolicyError::Template(_))));
        assert!(matches!(
            trail_reader_policy("arn:aws:sqs:us-east-1:111122223333:q", ""),
            Err(PolicyError::Template(_))
        ));
    }
}
