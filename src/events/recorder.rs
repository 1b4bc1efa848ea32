//! The guard's call recorder for the cross-check: each call our principal sends in the trail's
//! Region (or to a global service) is written to the ledger with its time and the resource ids it
//! names, before it is sent. CloudTrail's records of our principal are matched against these rows
//! ([`crate::ledger::Ledger::trail_processed`]).

use std::sync::{Arc, Mutex, PoisonError};

use crate::cloud::ids::{AccountId, Region};
use crate::cloud::{Call, CallRecorder};
use crate::job::runner::NowMs;
use crate::ledger::Ledger;
use crate::trail::record::ids_in_text;

/// Calls a management-events trail never logs (SQS and S3 data events): not recorded.
const NOT_LOGGED: [&str; 3] = ["GetQueueUrl", "ReceiveMessage", "GetObject"];

/// Calls to global services, logged whatever Region the client names: recorded in every Region.
const GLOBAL: [&str; 2] = ["GetUser", "GetCallerIdentity"];

/// Whether a call of `op` in `region` is one the trail of `trail_region` logs.
#[must_use]
pub fn logged(op: &str, region: &Region, trail_region: &Region) -> bool {
    !NOT_LOGGED.contains(&op) && (region == trail_region || GLOBAL.contains(&op))
}

/// A recorder writing `account`'s calls to `ledger`, stamped by `now_ms`.
#[must_use]
pub fn recorder(ledger: Arc<Mutex<Ledger>>, account: AccountId, trail_region: Region, now_ms: NowMs) -> CallRecorder {
    Arc::new(move |region: &Region, call: Call<'_>| {
        let op = call.name();
        if !logged(op, region, &trail_region) {
            return;
        }
        let ids: Vec<String> = ids_in_text(&format!("{call:?}")).into_iter().collect();
        let at = now_ms();
        let mut l = ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = l.record_our_call(&account, region, op, at, &ids) {
            // The cross-check then alerts on our own call: say why here.
            tracing::warn!(%account, %region, op, error = %e, "cannot record our call for the CloudTrail cross-check");
        }
    })
}
