//! The one error type of the cloud seam, [`CloudError`], and the classification of AWS error codes
//! into the [`ErrorKind`]s the job logic acts on (retry, treat as done, wait, give up).
//!
//! Codes come from the EC2 API Reference ("Error codes for the Amazon EC2 API"), the KMS API
//! Reference (each operation's "Errors"), the IAM and STS API References ("Common Errors"), and the
//! throttling page of the EC2 API ("Request throttling": `RequestLimitExceeded`).

use std::fmt;

use super::ids::Region;
use crate::policy::DenyReason;

/// What the job logic can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The API's token bucket is empty (`RequestLimitExceeded`, `Throttling*`): wait and retry,
    /// without counting a failure.
    Throttled,
    /// The resource does not exist (`Invalid*.NotFound`, KMS `NotFoundException`, IAM
    /// `NoSuchEntity`): for a delete, the work is done.
    NotFound,
    /// Something still depends on the resource (`DependencyViolation`): delete that first, or wait.
    DependencyViolation,
    /// The resource is not in a state that allows the call (`IncorrectState`,
    /// `IncorrectInstanceState`, KMS `KMSInvalidStateException`, `Gateway.NotAttached`): wait or
    /// re-read it.
    IncorrectState,
    /// Five snapshots of this volume are already in progress
    /// (`SnapshotCreationPerVolumeRateExceeded`): wait at least 15 seconds (EC2 error codes page).
    SnapshotRatePerVolume,
    /// An account quota is reached (`*LimitExceeded`, KMS `LimitExceededException`): wait for our
    /// own resources to go, or stop.
    QuotaExceeded,
    /// AWS refused the credentials' permissions (`UnauthorizedOperation`, `AccessDenied*`,
    /// `AuthFailure`).
    AccessDenied,
    /// Our policy guard refused the call before it was sent ([`CloudError::denial`] says why).
    PolicyDenied,
    /// A server-side or network failure (HTTP 5xx, `InternalError`, `ServiceUnavailable`,
    /// `Unavailable`, KMS `KMSInternalException`/`DependencyTimeoutException`,
    /// `InsufficientInstanceCapacity`, timeouts): retry later.
    Transient,
    /// Anything else (validation errors, malformed ids...): a bug or bad input; do not retry.
    Other,
}

impl ErrorKind {
    /// `throttled`, `not_found`, ... for logs and machine-readable output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::NotFound => "not_found",
            ErrorKind::DependencyViolation => "dependency_violation",
            ErrorKind::IncorrectState => "incorrect_state",
            ErrorKind::SnapshotRatePerVolume => "snapshot_rate_per_volume",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::PolicyDenied => "policy_denied",
            ErrorKind::Transient => "transient",
            ErrorKind::Other => "other",
        }
    }

    /// Worth retrying the same call later.
    #[must_use]
    pub fn is_retryable(self) -> bool {
        match self {
            ErrorKind::Throttled
            | ErrorKind::DependencyViolation
            | ErrorKind::IncorrectState
            | ErrorKind::SnapshotRatePerVolume
            | ErrorKind::Transient => true,
            ErrorKind::NotFound
            | ErrorKind::QuotaExceeded
            | ErrorKind::AccessDenied
            | ErrorKind::PolicyDenied
            | ErrorKind::Other => false,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Map an AWS error code (and the HTTP status, when there is one) to an [`ErrorKind`]. The code
/// decides when it is known; the status only for unknown codes (5xx transient, 429 throttled).
#[must_use]
pub fn classify(code: &str, http_status: Option<u16>) -> ErrorKind {
    // Throttling first: `RequestLimitExceeded` also ends in "LimitExceeded".
    if code == "RequestLimitExceeded"
        || code.starts_with("Throttling")
        || code == "TooManyRequestsException"
        || code == "RequestThrottled"
    {
        return ErrorKind::Throttled;
    }
    if code == "SnapshotCreationPerVolumeRateExceeded" {
        return ErrorKind::SnapshotRatePerVolume;
    }
    if (code.starts_with("Invalid") && code.ends_with(".NotFound"))
        || code == "NotFoundException"
        || code == "NoSuchEntity"
        // S3 (`NoSuchKey`, `NoSuchBucket`) and SQS (`AWS.SimpleQueueService.NonExistentQueue`
        // in the query protocol, `QueueDoesNotExist` in JSON).
        || code == "NoSuchKey"
        || code == "NoSuchBucket"
        || code == "QueueDoesNotExist"
        || code == "AWS.SimpleQueueService.NonExistentQueue"
    {
        return ErrorKind::NotFound;
    }
    match code {
        "DependencyViolation" => return ErrorKind::DependencyViolation,
        // Gateway.NotAttached: DetachInternetGateway of a gateway that is already detached; the
        // teardown treats it as done, like a NotFound on a delete.
        "IncorrectState" | "IncorrectInstanceState" | "KMSInvalidStateException" | "Gateway.NotAttached" => {
            return ErrorKind::IncorrectState;
        }
        "UnauthorizedOperation" | "AuthFailure" => return ErrorKind::AccessDenied,
        "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Unavailable"
        | "KMSInternalException"
        | "DependencyTimeoutException"
        | "ServiceUnavailableException"
        | "ServiceFailure" => {
            return ErrorKind::Transient;
        }
        // EC2 error codes page: "wait a few minutes and retry", or another Availability Zone.
        "InsufficientInstanceCapacity" => return ErrorKind::Transient,
        _ => {}
    }
    if code.starts_with("AccessDenied") {
        return ErrorKind::AccessDenied;
    }
    if code.ends_with("LimitExceeded") || code == "LimitExceededException" {
        return ErrorKind::QuotaExceeded;
    }
    match http_status {
        Some(429) => ErrorKind::Throttled,
        Some(s) if (500..=599).contains(&s) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

/// Why the policy guard refused a call: the request that failed and the evaluator's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDenial {
    /// The IAM action, e.g. `ec2:DeleteSnapshot`.
    pub action: String,
    /// The resource ARN (or `*`).
    pub resource: String,
    /// The evaluator's decision text (`implicitly denied: ...`), or the guard rule that refused.
    pub reason: String,
    /// The evaluator's deny kind; `None` when a guard rule (stricter than the policy) refused.
    pub deny_reason: Option<DenyReason>,
}

/// An error from a cloud call: its kind, the AWS error code and message, the request id, the
/// Region and the ids involved.
/// Boxed: a `Result<T, CloudError>` stays one pointer wide on the error side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudError(Box<Detail>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Detail {
    kind: ErrorKind,
    operation: &'static str,
    region: Option<Region>,
    code: Option<String>,
    message: String,
    request_id: Option<String>,
    ids: Vec<String>,
    denial: Option<PolicyDenial>,
    violation: Option<super::guard::GuardViolation>,
}

impl CloudError {
    /// An error response from AWS, classified by [`classify`].
    #[must_use]
    pub fn aws(
        operation: &'static str,
        region: Option<Region>,
        code: impl Into<String>,
        message: impl Into<String>,
        http_status: Option<u16>,
        request_id: Option<String>,
        ids: Vec<String>,
    ) -> CloudError {
        let code = code.into();
        CloudError(Box::new(Detail {
            kind: classify(&code, http_status),
            operation,
            region,
            code: Some(code),
            message: message.into(),
            request_id,
            ids,
            denial: None,
            violation: None,
        }))
    }

    /// An error without an AWS error code (a timeout, a connection failure, a malformed response):
    /// `kind` says what it is, usually [`ErrorKind::Transient`] or [`ErrorKind::Other`].
    #[must_use]
    pub fn local(
        operation: &'static str,
        region: Option<Region>,
        kind: ErrorKind,
        message: impl Into<String>,
        ids: Vec<String>,
    ) -> CloudError {
        CloudError(Box::new(Detail {
            kind,
            operation,
            region,
            code: None,
            message: message.into(),
            request_id: None,
            ids,
            denial: None,
            violation: None,
        }))
    }

    /// The guard refused the call; it was never sent.
    #[must_use]
    pub fn policy_denied(
        operation: &'static str,
        region: Region,
        ids: Vec<String>,
        denial: PolicyDenial,
    ) -> CloudError {
        CloudError(Box::new(Detail {
            kind: ErrorKind::PolicyDenied,
            operation,
            region: Some(region),
            code: None,
            message: format!("{} on {}: {}", denial.action, denial.resource, denial.reason),
            request_id: None,
            ids,
            denial: Some(denial),
            violation: None,
        }))
    }

    /// The same refusal, saying which typed guard rule refused it.
    #[must_use]
    pub fn with_guard_violation(mut self, violation: super::guard::GuardViolation) -> CloudError {
        self.0.violation = Some(violation);
        self
    }

    /// For a refusal by one of the guard's own typed rules: which.
    #[must_use]
    pub fn guard_violation(&self) -> Option<&super::guard::GuardViolation> {
        self.0.violation.as_ref()
    }

    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The API operation, e.g. `DeleteVpc`.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.0.operation
    }

    #[must_use]
    pub fn region(&self) -> Option<&Region> {
        self.0.region.as_ref()
    }

    /// The AWS error code, e.g. `DependencyViolation`.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    #[must_use]
    pub fn message(&self) -> &str {
        &self.0.message
    }

    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// The ids the call was about.
    #[must_use]
    pub fn ids(&self) -> &[String] {
        &self.0.ids
    }

    /// For [`ErrorKind::PolicyDenied`]: what was refused and why.
    #[must_use]
    pub fn denial(&self) -> Option<&PolicyDenial> {
        self.0.denial.as_ref()
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.operation)?;
        if let Some(r) = &self.0.region {
            write!(f, " in {r}")?;
        }
        if self.0.kind == ErrorKind::PolicyDenied {
            write!(f, " refused by the policy guard: {}", self.0.message)?;
        } else {
            write!(f, " failed ({})", self.0.kind)?;
            if let Some(c) = &self.0.code {
                write!(f, ": {c}")?;
            }
            if !self.0.message.is_empty() {
                write!(f, ": {}", self.0.message)?;
            }
        }
        if !self.0.ids.is_empty() {
            write!(f, " [{}]", self.0.ids.join(", "))?;
        }
        if let Some(id) = &self.0.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for CloudError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let cases: &[(&str, Option<u16>, ErrorKind)] = &[
            ("RequestLimitExceeded", Some(503), ErrorKind::Throttled),
            ("ThrottlingException", Some(400), ErrorKind::Throttled),
            ("Throttling", None, ErrorKind::Throttled),
            ("InvalidSnapshot.NotFound", Some(400), ErrorKind::NotFound),
            ("InvalidVpcID.NotFound", None, ErrorKind::NotFound),
            ("InvalidInstanceID.NotFound", None, ErrorKind::NotFound),
            ("InvalidGroup.NotFound", None, ErrorKind::NotFound),
            ("NotFoundException", None, ErrorKind::NotFound),
            ("NoSuchEntity", None, ErrorKind::NotFound),
            ("InvalidSnapshotID.Malformed", None, ErrorKind::Other),
            ("DependencyViolation", Some(400), ErrorKind::DependencyViolation),
            ("IncorrectState", None, ErrorKind::IncorrectState),
            ("IncorrectInstanceState", None, ErrorKind::IncorrectState),
            ("KMSInvalidStateException", None, ErrorKind::IncorrectState),
            ("SnapshotCreationPerVolumeRateExceeded", None, ErrorKind::SnapshotRatePerVolume),
            ("VpcLimitExceeded", None, ErrorKind::QuotaExceeded),
            ("InternetGatewayLimitExceeded", None, ErrorKind::QuotaExceeded),
            ("SnapshotLimitExceeded", None, ErrorKind::QuotaExceeded),
            ("InstanceLimitExceeded", None, ErrorKind::QuotaExceeded),
            ("LimitExceededException", None, ErrorKind::QuotaExceeded),
            ("UnauthorizedOperation", Some(403), ErrorKind::AccessDenied),
            ("AccessDenied", Some(403), ErrorKind::AccessDenied),
            ("AccessDeniedException", Some(400), ErrorKind::AccessDenied),
            ("InternalError", Some(500), ErrorKind::Transient),
            ("Unavailable", Some(503), ErrorKind::Transient),
            ("SomethingNew", Some(502), ErrorKind::Transient),
            ("SomethingNew", Some(429), ErrorKind::Throttled),
            ("SomethingNew", Some(400), ErrorKind::Other),
            ("InvalidParameterValue", None, ErrorKind::Other),
        ];
        for (code, status, want) in cases {
            assert_eq!(classify(code, *status), *want, "{code} {status:?}");
        }
    }

    #[test]
    fn display_carries_ids_region_and_request_id() {
        let region: Region = "us-east-1".parse().expect("region");
        let e = CloudError::aws(
            "DeleteVpc",
            Some(region),
            "DependencyViolation",
            "The vpc 'vpc-0a1b2c3d' has dependencies and cannot be deleted.",
            Some(400),
            Some("7f1c2d3e-0000-4000-8000-000000000000".into()),
            vec!["vpc-0a1b2c3d".into()],
        );
        assert_eq!(e.kind(), ErrorKind::DependencyViolation);
        assert!(e.kind().is_retryable());
        assert_eq!(
            e.to_string(),
            "DeleteVpc in us-east-1 failed (dependency_violation): DependencyViolation: The vpc 'vpc-0a1b2c3d' has \
             dependencies and cannot be deleted. [vpc-0a1b2c3d] (request id 7f1c2d3e-0000-4000-8000-000000000000)"
        );
    }
}
