//! The simulated account's EC2 API token buckets: the rates and per-call costs of
//! [`crate::cloud::facts::throttle`] (AWS's, with their sources), spent per (account, Region,
//! action); a request finding its bucket empty fails with `RequestLimitExceeded`. Refill follows
//! the simulation's timeline, so under a paused tokio clock an `advance` refills them.

use std::collections::HashMap;

use crate::cloud::Call;
use crate::cloud::facts::throttle::cost;
use crate::cloud::ids::{AccountId, Region};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// Every bucket in use (in memory only: a new process starts with full buckets).
#[derive(Debug, Default)]
pub struct Buckets {
    buckets: HashMap<(AccountId, Region, &'static str), Bucket>,
}

impl Buckets {
    /// Take the tokens `call` needs at `now_ms`; `Err(bucket name)` if one of its buckets has too
    /// few (then none is taken).
    pub fn take(
        &mut self,
        account: &AccountId,
        region: &Region,
        call: Call<'_>,
        now_ms: u64,
    ) -> Result<(), &'static str> {
        let cost = cost(call);
        let mut refilled = Vec::with_capacity(cost.len());
        for (name, rate, tokens) in &cost {
            let key = (account.clone(), region.clone(), *name);
            let b = self.buckets.get(&key).copied().unwrap_or(Bucket { tokens: rate.size, at_ms: now_ms });
            let elapsed_s = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
            let available = (b.tokens + elapsed_s * rate.per_second).min(rate.size);
            if available < *tokens {
                return Err(name);
            }
            refilled.push((key, available - tokens));
        }
        for (key, tokens) in refilled {
            self.buckets.insert(key, Bucket { tokens, at_ms: now_ms });
        }
        Ok(())
    }
}
