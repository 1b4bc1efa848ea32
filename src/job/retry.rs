//! Retrying the calls that AWS asks us to retry (DESIGN.md, "A scan job"): throttling, transient
//! server errors, `DependencyViolation` and `IncorrectState` while something else finishes, with
//! jittered exponential backoff on the tokio clock (`backon`). The AWS SDK already retries single
//! calls a few times; these loops sit at the job level, around whole operations (a delete that
//! must wait for an instance to terminate), and give up after a bounded time.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::cloud::{CloudError, ErrorKind};

/// First wait: EC2's guidance for `RequestLimitExceeded` is to back off starting around a second
/// (EC2 API Reference, "Query API request rate").
pub const MIN_DELAY: Duration = Duration::from_secs(1);
/// Longest single wait: the refill of an empty 100-token bucket at 5/s is 20 s (orchestrator
/// anchors 4.1), so 30 s always finds tokens again.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// Attempts before giving up: with the delays above, about 10 minutes — longer than an instance
/// takes to terminate and release its ENIs (minutes), short enough that a stuck job ends.
pub const MAX_ATTEMPTS: usize = 25;

/// Which errors a loop retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttling and transient errors only (creates: a lost response must be looked up by tag
    /// before trying again, which the caller does).
    Transient,
    /// Also `DependencyViolation` and `IncorrectState` (deletes waiting for dependents to go).
    Teardown,
}

impl Retry {
    fn wants(self, kind: ErrorKind) -> bool {
        match kind {
            ErrorKind::Throttled | ErrorKind::Transient => true,
            ErrorKind::DependencyViolation | ErrorKind::IncorrectState => self == Retry::Teardown,
            ErrorKind::SnapshotRatePerVolume
            | ErrorKind::NotFound
            | ErrorKind::QuotaExceeded
            | ErrorKind::AccessDenied
            | ErrorKind::PolicyDenied
            | ErrorKind::Other => false,
        }
    }
}

/// The backoff used by [`retry`].
#[must_use]
pub fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_max_times(MAX_ATTEMPTS)
        .with_jitter()
}

/// Run `f` until it succeeds, fails with an error `policy` does not retry, or the attempts run out.
///
/// # Errors
///
/// The last error.
pub async fn retry<T, F, Fut>(policy: Retry, what: &str, f: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    f.retry(backoff())
        .sleep(tokio::time::sleep)
        .when(|e: &CloudError| policy.wants(e.kind()))
        .notify(|e: &CloudError, d: Duration| {
            tracing::info!(what, kind = e.kind().as_str(), error = %e, retry_in_ms = d.as_millis() as u64, "retrying");
        })
        .await
}
