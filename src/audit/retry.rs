//! Jittered exponential backoff for the auditor's calls (DESIGN.md "A scan job": throttling,
//! `DependencyViolation` and eventual consistency are retried with `backon`). Sleeps are tokio's,
//! so on a paused clock (the simulated account in tests) they take no real time.
//!
//! The AWS backend's SDK retries throttling and 5xx itself; a call that still fails with them here
//! has exhausted the SDK's attempts, and one more, slower round is what lets an audit finish on a
//! busy account. `DependencyViolation` is never retried by the SDK: a teardown must wait for AWS
//! to release what still holds the resource (ENIs of a terminated instance or a deleted endpoint).

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::cloud::CloudError;

/// First delay. INFERENCE: about the time a throttled EC2 token bucket needs to refill one token
/// (5 per second for mutating calls, orchestrator-anchors 4.1), with room for jitter.
pub const MIN_DELAY: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// Attempts after the first. With [`MIN_DELAY`] doubling to [`MAX_DELAY`] this waits about 3 to
/// 6 minutes in all (jitter adds up to one delay each time), INFERENCE: the order of time AWS
/// takes to release a terminated instance's or a deleted interface endpoint's network interfaces.
pub const MAX_TIMES: usize = 10;

/// How to retry one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt (0: no retry).
    pub max_times: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { min_delay: MIN_DELAY, max_delay: MAX_DELAY, max_times: MAX_TIMES }
    }
}

impl RetryPolicy {
    fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_times)
    }
}

/// Run `f` until it succeeds, fails with an error that is not worth retrying
/// ([`ErrorKind::is_retryable`](crate::cloud::ErrorKind::is_retryable)), or runs out of attempts.
///
/// # Errors
///
/// The last error.
pub async fn call<T, F, Fut>(policy: &RetryPolicy, f: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    f.retry(policy.builder())
        .when(|e: &CloudError| e.kind().is_retryable())
        .notify(|e: &CloudError, after: Duration| tracing::debug!(error = %e, ?after, "retrying"))
        .await
}
