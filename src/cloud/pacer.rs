//! Client-side token buckets per (account, Region, action), which keep jobs under AWS's limits:
//! before a call is sent, the [`Pacer`] takes the tokens the
//! EC2 API would take for it ([`super::facts::throttle::cost`], the rates of docs/references.md,
//! "EC2 API throttling") and, when a bucket is short, waits on the tokio clock until it has refilled — so a job
//! slows itself down instead of meeting `RequestLimitExceeded`.
//!
//! One pacer per principal (account): the [`super::Guard`] of that principal holds it, and every
//! job of the process that uses the guard shares it. It assumes this process is the account's only
//! heavy caller; other callers still surface as throttling errors, which the job retries.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::Call;
use super::facts::throttle::{Rate, cost};
use super::ids::Region;

/// Spend at most this share of a bucket's refill rate, leaving headroom for the console, other
/// tools and the leak auditor running beside a job (our choice, not an AWS figure).
pub const SHARE_OF_REFILL: f64 = 0.9;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of one principal, by (Region, bucket name).
#[derive(Debug, Default)]
pub struct Pacer {
    buckets: Mutex<HashMap<(Region, &'static str), Bucket>>,
}

impl Pacer {
    #[must_use]
    pub fn new() -> Pacer {
        Pacer::default()
    }

    /// Wait until `call`'s tokens are available in `region`, then take them.
    pub async fn pace(&self, region: &Region, call: Call<'_>) {
        let cost = cost(call);
        if cost.is_empty() {
            return;
        }
        loop {
            let wait = self.try_take(region, &cost, Instant::now());
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Take the tokens now, or say how long to wait before trying again.
    fn try_take(&self, region: &Region, cost: &[(&'static str, Rate, f64)], now: Instant) -> Option<Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut longest = Duration::ZERO;
        let mut refilled = Vec::with_capacity(cost.len());
        for (name, rate, tokens) in cost {
            let per_second = rate.per_second * SHARE_OF_REFILL;
            let b = buckets.get(&(region.clone(), *name)).copied().unwrap_or(Bucket { tokens: rate.size, at: now });
            let available = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(rate.size);
            // A call costing more than the bucket holds (e.g. terminating 2,000 instances at once)
            // waits for a full bucket and then overdraws it, as AWS lets it.
            let need = tokens.min(rate.size);
            if available < need {
                let secs = (need - available) / per_second;
                longest = longest.max(Duration::from_secs_f64(secs.clamp(0.001, 3600.0)));
            }
            refilled.push(((region.clone(), *name), available - tokens));
        }
        if longest > Duration::ZERO {
            return Some(longest);
        }
        for (key, tokens) in refilled {
            buckets.insert(key, Bucket { tokens, at: now });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ops::{DescribeInput, RunScannerInput};

    #[tokio::test(start_paused = true)]
    async fn waits_for_refill_instead_of_overrunning() {
        let pacer = Pacer::new();
        let region: Region = "us-east-1".parse().expect("region");
        let input: DescribeInput<crate::cloud::VpcId> = DescribeInput::default();
        let start = Instant::now();
        // DescribeVpcs: 100 tokens, 20/s (x 0.9): 100 immediate calls, the 101st waits ~56 ms.
        for _ in 0..100 {
            pacer.pace(&region, Call::DescribeVpcs(&input)).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.pace(&region, Call::DescribeVpcs(&input)).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(55) && waited <= Duration::from_millis(60), "{waited:?}");
        // Another Region has its own buckets.
        let other: Region = "eu-west-1".parse().expect("region");
        let before = Instant::now();
        pacer.pace(&other, Call::DescribeVpcs(&input)).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
        let _ = std::mem::size_of::<RunScannerInput>();
    }
}
