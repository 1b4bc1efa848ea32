//! Retrying the calls that AWS asks us to retry (DESIGN.md, "A scan job"): throttling, transient
//! server errors, `DependencyViolation` and `IncorrectState` while something else finishes, with
//! jittered exponential backoff on the tokio clock (`backon`). The AWS SDK already retries single
//! calls a few times; these loops sit at the job level, around whole operations (a delete that
//! must wait for an instance to terminate), and give up after a bounded time.
//!
//! Eventual consistency: a call naming an id the job has just created may fail `NotFound` while
//! the id propagates ("Eventual consistency in the Amazon EC2 API", EC2 Developer Guide: "you will
//! get an error responding that the resource does not exist"; retry "starting with a couple of
//! seconds of wait time"). [`Retry::Fresh`] retries `NotFound` [`NOT_YET_VISIBLE_RETRIES`] times
//! for such calls (the SDK never retries it).

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
/// `NotFound` retries of a call naming an id the job just created ([`Retry::Fresh`]): with the
/// delays above (1 s doubling, jittered) five retries wait 31 s to a minute, well past the "couple
/// of seconds" AWS advises to start with; an id still unknown after that is really gone.
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
    /// resource the job has just created, whose id may not have propagated yet.
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
    let mut not_found = 0usize;
    f.retry(backoff())
        .sleep(tokio::time::sleep)
        .when(move |e: &CloudError| {
            if e.kind() == ErrorKind::NotFound {
                not_found += 1;
                if not_found > NOT_YET_VISIBLE_RETRIES {
                    return false;
                }
            }
            policy.wants(e.kind())
        })
        .notify(|e: &CloudError, d: Duration| {
            tracing::info!(what, kind = e.kind().as_str(), error = %e, retry_in_ms = d.as_millis() as u64, "retrying");
        })
        .await
}
