//! The one retry policy of our AWS calls (jobs, teardown and the leak auditor alike): throttling,
//! transient server errors, `DependencyViolation` and `IncorrectState` while something else
//! finishes, with jittered exponential backoff on the tokio clock (`backon`; on a paused clock, as
//! the simulated account's tests run, the waits take no real time). The AWS SDK already retries
//! single calls a few times; these loops sit above it, around whole operations (a delete that must
//! wait for an instance to terminate), and give up after a bounded time.
//!
//! Eventual consistency: a call naming an id just created may fail `NotFound` while the id
//! propagates ("Eventual consistency in the Amazon EC2 API", EC2 Developer Guide: "you will get an
//! error responding that the resource does not exist"; retry "starting with a couple of seconds of
//! wait time"). [`Retry::Fresh`] retries `NotFound` [`NOT_YET_VISIBLE_RETRIES`] times for such
//! calls (the SDK never retries it).

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::cloud::{CloudError, ErrorKind};

/// First wait: EC2's guidance for `RequestLimitExceeded` is to back off starting around a second
/// (EC2 API Reference, "Query API request rate").
pub const MIN_DELAY: Duration = Duration::from_secs(1);
/// Longest single wait: the refill of an empty 100-token bucket at 5/s is 20 s (EC2 API Reference,
/// "Request throttling": bucket sizes and refill rates), so 30 s always finds tokens again.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// Retries after the first attempt: with the delays above, about 10 minutes — longer than an
/// instance takes to terminate and release its network interfaces, or a deleted interface
/// endpoint its own (minutes), short enough that a stuck teardown ends and reports.
pub const MAX_ATTEMPTS: usize = 25;
/// `NotFound` retries of a call naming an id just created ([`Retry::Fresh`]): with the delays
/// above (1 s doubling, jittered) five retries wait 31 s to a minute, well past the "couple of
/// seconds" AWS advises to start with; an id still unknown after that is really gone.
pub const NOT_YET_VISIBLE_RETRIES: usize = 5;

/// Which errors a loop retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Throttling and transient errors only (creates: a lost response must be looked up by tag
    /// before trying again, which the caller does).
    Transient,
    /// Also `DependencyViolation` and `IncorrectState` (deletes waiting for dependents to go).
    Teardown,
    /// As `Transient`, and `NotFound` up to [`NOT_YET_VISIBLE_RETRIES`] times: the call names a
    /// resource just created, whose id may not have propagated yet.
    Fresh,
}

impl Retry {
    fn wants(self, kind: ErrorKind) -> bool {
        match kind {
            ErrorKind::Throttled | ErrorKind::Transient => true,
            ErrorKind::DependencyViolation | ErrorKind::IncorrectState => self == Retry::Teardown,
            ErrorKind::NotFound => self == Retry::Fresh,
            ErrorKind::SnapshotRatePerVolume
            | ErrorKind::QuotaExceeded
            | ErrorKind::AccessDenied
            | ErrorKind::PolicyDenied
            | ErrorKind::Other => false,
        }
    }
}

/// The shape of the backoff: the constants above unless a test or an operator shortens it (the
/// auditor's options carry one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt (0: no retry).
    pub max_times: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { min_delay: MIN_DELAY, max_delay: MAX_DELAY, max_times: MAX_ATTEMPTS }
    }
}

impl RetryPolicy {
    /// The jittered exponential backoff of this policy.
    #[must_use]
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_times)
            .with_jitter()
    }
}

/// The default backoff ([`RetryPolicy::default`]).
#[must_use]
pub fn backoff() -> ExponentialBuilder {
    RetryPolicy::default().backoff()
}

/// Run `f` until it succeeds, fails with an error `class` does not retry, or the attempts run out,
/// with the default policy.
///
/// # Errors
///
/// The last error.
pub async fn retry<T, F, Fut>(class: Retry, what: &str, f: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    retry_with(&RetryPolicy::default(), class, what, f).await
}

/// [`retry`] with the backoff of `policy`.
///
/// # Errors
///
/// The last error.
pub async fn retry_with<T, F, Fut>(policy: &RetryPolicy, class: Retry, what: &str, f: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut not_found = 0usize;
    f.retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(move |e: &CloudError| {
            if e.kind() == ErrorKind::NotFound {
                not_found += 1;
                if not_found > NOT_YET_VISIBLE_RETRIES {
                    return false;
                }
            }
            class.wants(e.kind())
        })
        .notify(|e: &CloudError, d: Duration| {
            tracing::info!(what, kind = e.kind().as_str(), error = %e, retry_in_ms = d.as_millis() as u64, "retrying");
        })
        .await
}
