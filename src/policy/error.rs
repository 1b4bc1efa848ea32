//! Errors from reading a policy document. Each names what is wrong and where; none is a panic.

use std::path::PathBuf;

use super::condition::ConditionError;

/// The largest policy accepted, in bytes: 1 MiB.
///
/// AWS's own limits are far smaller (IAM quotas: a managed policy is at most 6,144 characters not
/// counting white space; inline policies 2,048 for a user, 5,120 for a group, 10,240 for a role).
/// We accept pretty-printed and hand-edited documents well beyond that, and refuse anything
/// bigger *before* reading or parsing it, so that a stray 10 MB file costs neither memory nor time.
/// [`AWS_MANAGED_POLICY_MAX_CHARS`] is there to warn about documents AWS itself would refuse.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// AWS's size quota for a customer managed policy: 6,144 characters, white space not counted
/// (IAM User Guide, "IAM and AWS STS quotas").
pub const AWS_MANAGED_POLICY_MAX_CHARS: usize = 6144;

/// Why a policy could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy template: {0}")]
    Template(String),
    #[error("cannot read policy file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "policy is {size} bytes or more; the limit is {limit} bytes (AWS itself allows 6,144 characters for a managed policy)"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("policy is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("policy is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("unsupported policy Version {found}: expected \"2012-10-17\" or \"2008-10-17\"")]
    Version { found: String },
    #[error("{path} {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {source}")]
    Operator {
        path: String,
        #[source]
        source: ConditionError,
    },
    #[error("{path}: {source}")]
    Condition {
        path: String,
        #[source]
        source: ConditionError,
    },
    #[error(
        "{path}: \"{value}\" uses a policy variable (${{...}}); policy variables are not supported by this evaluator (write the value out, or use Version 2008-10-17 where AWS takes ${{...}} literally)"
    )]
    Variable { path: String, value: String },
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<PolicyError>,
    },
}

impl PolicyError {
    /// The innermost error (inside [`PolicyError::InFile`]).
    #[must_use]
    pub fn root(&self) -> &PolicyError {
        match self {
            PolicyError::InFile { source, .. } => source.root(),
            other => other,
        }
    }
}
