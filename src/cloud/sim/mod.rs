//! The simulated AWS account: the embedded default backend (docs/cloud-seam.md,
//! "The simulated account"). [`SimCloud`] implements [`Cloud`] in process with what AWS does to this job
//! and moto does not (docs/references.md, "moto versus AWS"):
//!
//! - **IAM**: every call is authorized by the policy evaluator against the principal's policies,
//!   with the requests [`crate::cloud::authz`] maps the call to — but built from the sim's own
//!   state (a resource's real tags as `ec2:ResourceTag/*`, a snapshot's real key), never from what
//!   the caller claims. Denied: `UnauthorizedOperation` (KMS `AccessDeniedException`, IAM
//!   `AccessDenied`), [`ErrorKind::AccessDenied`]. So the sim
//!   refuses what AWS would even behind a permissive guard ([`authorize`]).
//! - **Tag-on-create**: the create's tags are stored with the resource in the same call.
//! - **Dependencies** on deletes in AWS's order, `Invalid*.NotFound`, `IncorrectState`
//!   ([`network`], [`compute`], [`snapshots`]).
//! - **Time**: snapshot latency from the used size, instance boot and shutdown, on a timeline that
//!   follows tokio's clock ([`clock`], [`lifecycle`]), virtual when the clock is paused.
//! - **Quotas and token buckets** of docs/references.md ([`limits`], [`throttle`]).
//! - **Faults** from a seed: throttling beyond the buckets, 5xx, timeouts on the tokio clock,
//!   lost responses, snapshots that end in `error`, scanners that never boot or never report
//!   ([`faults`]).
//! - **Eventual consistency**: Describe lags behind creates and deletes by a configurable time
//!   ([`consistency`]).
//! - **CloudTrail**: every call served is a CloudTrail record of the principal (and of the
//!   handle's client, [`SimCloud::with_client`]); an account with a pipeline gets them delivered
//!   as gzip log files into a bucket, announced on an SQS queue the reader long-polls
//!   (`GetQueueUrl`, `ReceiveMessage`, `GetObject`: [`trail`]).
//! - **Persistence**: with a data directory the world is saved after every change and reloaded
//!   when another process changed it ([`store`]); a killed process leaves its resources behind.
//!   An in-memory world is never written.
//! - **Scale**: a call costs what it touches, not the size of the world: due state changes come
//!   from a per-Region index of deadlines, pending snapshots, client tokens and running scanners
//!   (derived, rebuilt on load: [`lifecycle`], "The index"), and a Describe by ids looks each id
//!   up ([`consistency::View`]). `examples/sim_fleet_bench.rs` drives a 10,000-instance fleet
//!   through the seam on the virtual clock.
//!
//! What the orchestrator's commands ask of the account outside the API (register our scanner
//! image as building it would, count what of ours is left) are methods of [`SimCloud`] in
//! [`ours`], so no caller walks the world's internals.
//!
//! The world is described by a fleet file ([`fleet`]). Several handles ([`SimCloud::with_policies`],
//! [`SimCloud::as_account`]) share one world: other principals, or the customer's own actions
//! ([`SimCloud::setup`]) that no policy governs.
//!
//! Interior mutability is one `std::sync::Mutex`, never held across an `.await` (no method
//! awaits while holding it: every operation runs synchronously under the lock).

pub mod authorize;
pub mod clock;
pub mod compute;
pub mod consistency;
pub mod describe;
pub mod faults;
pub mod fleet;
pub mod hypervisor;
pub mod identity;
pub mod kms;
pub mod lifecycle;
pub mod limits;
pub mod network;
pub mod ours;
pub mod prng;
pub mod snapshots;
pub mod state;
pub mod store;
pub mod throttle;
pub mod trail;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::error::{CloudError, ErrorKind};
use super::guard::Authorized;
use super::ids::{AccountId, IdError, Region};
use super::ops::*;
use super::{Call, Cloud};
use crate::cloud::authz::Scope;
use crate::policy::{Policy, PolicyError, agentless_scan_policy};

pub use fleet::{Fleet, FleetError};
pub use state::World;

use describe::DescribeError;
use state::RegionState;
use store::Store;
use throttle::Buckets;

/// Why the simulated account could not be set up, loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a simulated account state: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: state format version {found}, this build reads version {expected}")]
    Version { path: PathBuf, found: u32, expected: u32 },
    #[error("account {0} is not in the simulated world")]
    UnknownAccount(AccountId),
    #[error("region {region} is not enabled in simulated account {account}")]
    UnknownRegion { account: AccountId, region: Region },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Faults(#[from] faults::FaultsError),
    #[error("version {0} is not a valid image tag value")]
    ImageVersion(String),
}

/// The world, the token buckets and the fault stream, under one lock.
#[derive(Debug)]
struct Inner {
    world: World,
    buckets: Buckets,
    faults: faults::Engine,
    store: Option<Store>,
    /// The default principal's policies with a pipeline's reader policy, by queue ARN and bucket
    /// (built once per pipeline, not per call).
    readers: std::collections::HashMap<(String, String), Arc<Vec<Policy>>>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    clock: clock::Clock,
    requests: AtomicU64,
}

/// A principal of the simulated world: an account's IAM user with its identity policies, and a
/// handle on the shared world. Cheap to clone; clones share the world.
#[derive(Debug, Clone)]
pub struct SimCloud {
    shared: Arc<Shared>,
    account: AccountId,
    policies: Arc<Vec<Policy>>,
    /// The principal of [`SimCloud::in_memory`]/[`SimCloud::open`] (not [`SimCloud::with_policies`]):
    /// it also has the reader policy of its account's pipeline, as the onboarding's step 4 attaches.
    default_principal: bool,
    /// Where its calls come from, for the trail ([`SimCloud::with_client`]).
    client: Arc<trail::Client>,
}

impl SimCloud {
    /// A world built from `fleet`, in memory only. The principal is the first account's user
    /// with the bundled custom policy (`policies/agentless-scan.json`).
    pub fn in_memory(fleet: &Fleet) -> Result<SimCloud, SimError> {
        SimCloud::with_world(fleet.build()?, None)
    }

    /// The world of `data_dir` if it has one (built by an earlier process), else a new one from
    /// `fleet`, saved there. Either way saved after every change.
    pub fn open(data_dir: &Path, fleet: &Fleet) -> Result<SimCloud, SimError> {
        let mut store = Store::new(data_dir)?;
        let world = match store.load()? {
            Some(w) => w,
            None => {
                let w = fleet.build_in(Some(data_dir))?;
                store.save(&w)?;
                w
            }
        };
        SimCloud::with_world(world, Some(store))
    }

    fn with_world(world: World, store: Option<Store>) -> Result<SimCloud, SimError> {
        let account = world.accounts.keys().next().cloned().ok_or(FleetError::NoAccount)?;
        let clock = clock::Clock::resume(world.clock_ms);
        let engine = faults::Engine::new(world.settings.faults.seed);
        let shared = Shared {
            inner: Mutex::new(Inner {
                world,
                buckets: Buckets::default(),
                faults: engine,
                store,
                readers: std::collections::HashMap::new(),
            }),
            clock,
            requests: AtomicU64::new(1),
        };
        Ok(SimCloud {
            shared: Arc::new(shared),
            account,
            policies: Arc::new(vec![agentless_scan_policy()?]),
            default_principal: true,
            client: Arc::new(trail::Client::default()),
        })
    }

    /// The same world, as a principal with exactly these identity policies (no reader policy
    /// added for a pipeline).
    #[must_use]
    pub fn with_policies(&self, policies: Vec<Policy>) -> SimCloud {
        SimCloud { policies: Arc::new(policies), default_principal: false, ..self.clone() }
    }

    /// The same world, principal and policies, calling from another client: the source IP and
    /// user agent CloudTrail records ([`trail`]), e.g. our credentials used from elsewhere.
    #[must_use]
    pub fn with_client(&self, source_ip: &str, user_agent: &str) -> SimCloud {
        let client = trail::Client { source_ip: source_ip.to_owned(), user_agent: user_agent.to_owned() };
        SimCloud { client: Arc::new(client), ..self.clone() }
    }

    /// The same world and policies, as the user of another account of it.
    pub fn as_account(&self, account: &AccountId) -> Result<SimCloud, SimError> {
        if !self.lock().world.accounts.contains_key(account) {
            return Err(SimError::UnknownAccount(account.clone()));
        }
        Ok(SimCloud { account: account.clone(), ..self.clone() })
    }

    #[must_use]
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    #[must_use]
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policies a call is authorized with: the handle's, plus the reader policy of the
    /// account's pipeline for the default principal.
    fn effective_policies(&self, inner: &mut Inner) -> Arc<Vec<Policy>> {
        if !self.default_principal {
            return Arc::clone(&self.policies);
        }
        let Some(p) = inner.world.accounts.get(&self.account).and_then(|a| a.pipeline.as_ref()) else {
            return Arc::clone(&self.policies);
        };
        let key = (p.config.queue_arn(&self.account), p.config.bucket.clone());
        if let Some(found) = inner.readers.get(&key) {
            return Arc::clone(found);
        }
        let mut all = self.policies.to_vec();
        // A pipeline's names passed `PipelineConfig::check`, so the template fills in.
        if let Ok(reader) = crate::policy::trail_reader_policy(&key.0, &key.1) {
            all.push(reader);
        }
        let all = Arc::new(all);
        inner.readers.insert(key, Arc::clone(&all));
        all
    }

    /// The principal's scope, for a [`GuardPolicy`](super::GuardPolicy) in front of this backend.
    #[must_use]
    pub fn scope(&self) -> Scope {
        let user = self.lock().world.accounts.get(&self.account).map(|a| a.user.clone());
        Scope { caller_user: user, ..Scope::new(self.account.clone()) }
    }

    /// Now on the simulation's timeline (ms).
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read the world as it is now (due state changes applied): for tests, the leak auditor's
    /// checks and anything the seam does not return.
    pub fn inspect<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        let mut inner = self.lock();
        let now = self.now_ms();
        lifecycle::advance(&mut inner.world, now);
        f(&inner.world)
    }

    /// Change the world outside IAM and the API: what the customer does in their own account
    /// (launch an instance, create a key...). Saved afterwards.
    pub fn setup<R>(&self, f: impl FnOnce(&mut fleet::Setup<'_>) -> Result<R, SimError>) -> Result<R, SimError> {
        let mut inner = self.lock();
        let now = self.now_ms();
        let inner = &mut *inner;
        if let Some(store) = &mut inner.store {
            store.refresh(&mut inner.world)?;
        }
        lifecycle::advance(&mut inner.world, now);
        let mut setup = fleet::Setup::new(&mut inner.world, now);
        let out = f(&mut setup);
        // Given the world itself, the customer may have changed anything: every index is rebuilt
        // on next use (the other changes drop their Region's, `fleet::Setup`).
        if setup.raw() {
            lifecycle::invalidate(&mut inner.world);
        }
        let out = out?;
        inner.world.clock_ms = now;
        if let Some(store) = &mut inner.store {
            store.save(&inner.world)?;
        }
        Ok(out)
    }

    /// Replace the fault configuration (saved with the world) and restart the fault stream from
    /// its seed, with call counts at zero and an empty log.
    pub fn set_faults(&self, faults: faults::Faults) -> Result<(), SimError> {
        faults.check()?;
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.faults = faults::Engine::new(faults.seed);
        inner.world.settings.faults = faults;
        if let Some(store) = &mut inner.store {
            store.save(&inner.world)?;
        }
        Ok(())
    }

    /// Every fault injected since the world was opened or [`SimCloud::set_faults`] was called.
    #[must_use]
    pub fn fault_log(&self) -> Vec<faults::Injected> {
        self.lock().faults.log().to_vec()
    }

    /// Run one call ([`SimCloud::call_now`]); a `timeout` fault then hangs on the tokio clock,
    /// with no lock held, before its error is returned.
    async fn call<T: trail::ResponseElements>(
        &self,
        auth: &Authorized,
        call: Call<'_>,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        let (out, hang) = self.call_now(auth, call, f);
        if let Some(d) = hang {
            tokio::time::sleep(d).await;
        }
        out
    }

    /// Run one call: reload if another process changed the state, apply due changes, decide the
    /// call's faults, take the tokens, hide what is within the consistency lag, run `f` on the
    /// state, record what it created, save if anything changed. Also returns how long the caller
    /// must hang first (a `timeout` fault).
    fn call_now<T: trail::ResponseElements>(
        &self,
        auth: &Authorized,
        call: Call<'_>,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, CloudError>,
    ) -> (Result<T, CloudError>, Option<std::time::Duration>) {
        match self.call_locked(auth, call, f) {
            Ok(out) => (Ok(out), None),
            Err(Failure::Now(e)) => (Err(e), None),
            Err(Failure::After(e, d)) => (Err(e), Some(d)),
        }
    }

    fn call_locked<T: trail::ResponseElements>(
        &self,
        auth: &Authorized,
        call: Call<'_>,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, CloudError>,
    ) -> Result<T, Failure> {
        let request_id = format!("sim-{:08}", self.shared.requests.fetch_add(1, Ordering::Relaxed));
        let region = auth.region().clone();
        let op = call.name();
        let fail =
            |kind: ErrorKind, message: String| CloudError::local(op, Some(region.clone()), kind, message, Vec::new());
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(store) = &mut inner.store {
            store.refresh(&mut inner.world).map_err(|e| fail(ErrorKind::Other, e.to_string()))?;
        }
        let now_ms = self.now_ms();
        let mut dirty = lifecycle::advance(&mut inner.world, now_ms);
        let decision = inner.faults.decide(&inner.world.settings.faults, op);
        let timeout = inner.world.settings.faults.timeout();
        let policies = self.effective_policies(inner);
        let mut call_dirty = false;
        let out: Result<T, Failure> = 'call: {
            let mut ctx = Ctx {
                world: &mut inner.world,
                account: self.account.clone(),
                region: region.clone(),
                op,
                now_ms,
                policies: &policies,
                request_id: request_id.clone(),
                dirty: false,
                faults: &mut inner.faults,
                decision,
            };
            let enabled = ctx.world.accounts.get(&self.account).is_some_and(|a| a.regions.contains_key(&region));
            if !enabled {
                break 'call Err(ctx
                    .err(
                        "OptInRequired",
                        format!(
                            "The Region {region} is not enabled for account {} in the simulated world.",
                            self.account
                        ),
                        Vec::new(),
                    )
                    .into());
            }
            let injected = match decision.call {
                Some(faults::Fault::Throttle) => {
                    Some(ctx.err("RequestLimitExceeded", "Request limit exceeded (injected fault).", Vec::new()).into())
                }
                Some(faults::Fault::InternalError) => Some(
                    ctx.status_err("InternalError", "An internal error has occurred (injected fault).", 500).into(),
                ),
                Some(faults::Fault::Unavailable) => Some(
                    ctx.status_err(
                        "Unavailable",
                        "The service is unavailable. Please try again shortly (injected fault).",
                        503,
                    )
                    .into(),
                ),
                Some(faults::Fault::Timeout) => Some(Failure::After(
                    fail(
                        ErrorKind::Transient,
                        format!(
                            "no response within {} ms: the request timed out (injected fault)",
                            timeout.as_millis()
                        ),
                    ),
                    timeout,
                )),
                Some(
                    faults::Fault::LostResponse
                    | faults::Fault::SnapshotError
                    | faults::Fault::NeverBoots
                    | faults::Fault::NeverReports,
                )
                | None => None,
            };
            if let Some(failure) = injected {
                break 'call Err(failure);
            }
            if ctx.world.settings.throttling == limits::Throttling::Aws
                && let Err(bucket) = inner.buckets.take(&self.account, &region, call, now_ms)
            {
                break 'call Err(ctx
                    .err("RequestLimitExceeded", format!("Request limit exceeded ({bucket} bucket)."), Vec::new())
                    .into());
            }
            let (_, lag_ms) = ctx.lag();
            if lag_ms > 0
                && let Some(e) = ctx.hidden_reference(call)
            {
                break 'call Err(e.into());
            }
            ctx.world.prng.take_minted();
            let out = f(&mut ctx);
            let minted = ctx.world.prng.take_minted();
            lifecycle::touched(ctx.world, &self.account, &region, call, &minted);
            if lag_ms > 0 && out.is_ok() && !minted.is_empty() {
                match ctx.reg() {
                    Ok(r) => r.recent.created(minted, now_ms),
                    Err(e) => break 'call Err(Failure::Now(e)),
                }
            }
            call_dirty = ctx.dirty;
            out.map_err(Failure::Now)
        };
        dirty |= call_dirty;
        // The trail's record of the call, whatever its outcome (a timeout excepted: [`trail`]);
        // nothing is built unless the account's trail logs the call.
        let outcome = match &out {
            _ if !trail::logs(&inner.world, &self.account, call, &region) => None,
            Ok(t) => Some(Ok(t.response_elements(call))),
            Err(Failure::Now(e)) => Some(Err(e)),
            Err(Failure::After(..)) => None,
        };
        if let Some(outcome) = outcome {
            let user = inner.world.accounts.get(&self.account).map(|a| a.user.clone()).unwrap_or_default();
            let who = trail::Who {
                account: &self.account,
                user: &user,
                source_ip: &self.client.source_ip,
                user_agent: &self.client.user_agent,
            };
            dirty |= trail::record_call(&mut inner.world, who, call, &region, now_ms, &request_id, outcome);
        }
        inner.world.clock_ms = now_ms;
        if dirty && let Some(store) = &mut inner.store {
            store.save(&inner.world).map_err(|e| fail(ErrorKind::Transient, e.to_string()))?;
        }
        match (out, decision.call) {
            (Ok(_), Some(faults::Fault::LostResponse)) => Err(fail(
                ErrorKind::Transient,
                "the connection closed before the response arrived; the request may have been applied (injected \
                 fault)"
                    .into(),
            )
            .into()),
            (out, _) => out,
        }
    }
}

impl SimCloud {
    /// When the queue of `input` may next have something to receive.
    fn next_wake(&self, region: &Region, input: &ReceiveMessageInput, now_ms: u64) -> Option<u64> {
        let (owner, name) = input.queue.account_and_name()?;
        let owner: AccountId = owner.parse().ok()?;
        let inner = self.lock();
        trail::next_wake(&inner.world, &owner, region, name, now_ms)
    }

    /// A long poll's later look at the queue (the call was authorized by its first look): reload,
    /// apply what is due, receive, save.
    fn poll_queue(&self, region: &Region, input: &ReceiveMessageInput) -> Result<Vec<QueueMessage>, CloudError> {
        let op = "ReceiveMessage";
        let fail = |kind: ErrorKind, message: String| {
            CloudError::local(op, Some(region.clone()), kind, message, vec![input.queue.url.clone()])
        };
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(store) = &mut inner.store {
            store.refresh(&mut inner.world).map_err(|e| fail(ErrorKind::Other, e.to_string()))?;
        }
        let now_ms = self.now_ms();
        let mut dirty = lifecycle::advance(&mut inner.world, now_ms);
        let Some(got) = trail::receive_now(&mut inner.world, region, input, now_ms) else {
            return Err(CloudError::aws(
                op,
                Some(region.clone()),
                "QueueDoesNotExist",
                format!("The specified queue {} does not exist.", input.queue.url),
                Some(400),
                None,
                vec![input.queue.url.clone()],
            ));
        };
        dirty |= !got.is_empty();
        inner.world.clock_ms = now_ms;
        if dirty && let Some(store) = &mut inner.store {
            store.save(&inner.world).map_err(|e| fail(ErrorKind::Transient, e.to_string()))?;
        }
        Ok(got)
    }
}

/// How a call failed: now, or after hanging (a timeout).
enum Failure {
    Now(CloudError),
    After(CloudError, std::time::Duration),
}

impl From<CloudError> for Failure {
    fn from(e: CloudError) -> Failure {
        Failure::Now(e)
    }
}

/// One call's view of the world.
pub struct Ctx<'a> {
    pub world: &'a mut World,
    pub account: AccountId,
    /// The call's Region.
    pub region: Region,
    pub op: &'static str,
    pub now_ms: u64,
    policies: &'a [Policy],
    request_id: String,
    /// Set by an operation that changed the state (then it is saved).
    pub dirty: bool,
    faults: &'a mut faults::Engine,
    decision: faults::Decision,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("op", &self.op).field("region", &self.region).finish_non_exhaustive()
    }
}

impl Ctx<'_> {
    /// An AWS error response of this call.
    #[must_use]
    pub fn err(&self, code: &str, message: impl Into<String>, ids: Vec<String>) -> CloudError {
        CloudError::aws(
            self.op,
            Some(self.region.clone()),
            code,
            message,
            Some(400),
            Some(self.request_id.clone()),
            ids,
        )
    }

    /// A server-side error response of this call with its HTTP status (5xx).
    #[must_use]
    pub fn status_err(&self, code: &str, message: &str, status: u16) -> CloudError {
        CloudError::aws(
            self.op,
            Some(self.region.clone()),
            code,
            message,
            Some(status),
            Some(self.request_id.clone()),
            Vec::new(),
        )
    }

    /// (now, the consistency lag) in ms.
    #[must_use]
    pub fn lag(&self) -> (u64, u64) {
        (self.now_ms, self.world.settings.latencies.describe_lag_ms)
    }

    /// Whether a snapshot this call creates ends in `error` (an injected fault).
    pub fn snapshot_fails(&mut self) -> bool {
        self.faults.snapshot_error(&self.world.settings.faults, &self.decision, self.op)
    }

    /// The injected fault of an instance this call launches.
    pub fn instance_fault(&mut self) -> Option<faults::InstanceFault> {
        self.faults.instance_fault(&self.world.settings.faults, &self.decision, self.op)
    }

    /// `Invalid*.NotFound` if `call` names by id a resource created within the consistency lag
    /// (in any Region of the account: a copy's source).
    fn hidden_reference(&self, call: Call<'_>) -> Option<CloudError> {
        let (now_ms, lag_ms) = self.lag();
        let requests = crate::cloud::authz::requests(&self.scope(), &self.region, call).ok()?;
        let regions = self.world.accounts.get(&self.account)?;
        for r in requests {
            let Some((_, id)) = r.request.resource().rsplit_once('/') else { continue };
            let hidden = regions.regions.values().any(|reg| reg.recent.hidden(id, now_ms, lag_ms));
            if let (true, Some(code)) = (hidden, consistency::not_found_code(id)) {
                return Some(self.err(code, format!("The ID '{id}' does not exist"), vec![id.to_owned()]));
            }
        }
        None
    }

    /// `Invalid<Kind>.NotFound` for one id, with EC2's message.
    #[must_use]
    pub fn not_found(&self, code: &str, what: &str, id: &str) -> CloudError {
        self.err(code, format!("The {what} '{id}' does not exist"), vec![id.to_owned()])
    }

    /// A Describe failure as the API reports it; `code` is the kind's NotFound code.
    #[must_use]
    pub fn describe_err(&self, e: DescribeError, code: &str) -> CloudError {
        match e {
            DescribeError::NotFound(ids) => self.err(code, format!("The ID(s) '{}' do not exist", ids.join(", ")), ids),
            DescribeError::UnknownFilter(f) => {
                self.err("InvalidParameterValue", format!("The filter '{f}' is invalid"), Vec::new())
            }
            DescribeError::MaxResults(m) => self.err(
                "InvalidParameterValue",
                format!("Value ( {m} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."),
                Vec::new(),
            ),
            DescribeError::Token(t) => {
                self.err("InvalidPaginationToken", format!("Invalid pagination token: {t}"), Vec::new())
            }
        }
    }

    /// The call's Region of the principal's account.
    pub fn reg(&mut self) -> Result<&mut RegionState, CloudError> {
        let region = self.region.clone();
        self.reg_of(&region)
    }

    /// Another Region of the principal's account (a copy's source).
    pub fn reg_of(&mut self, region: &Region) -> Result<&mut RegionState, CloudError> {
        let (op, account, request_id) = (self.op, self.account.clone(), self.request_id.clone());
        self.world.accounts.get_mut(&account).and_then(|a| a.regions.get_mut(region)).ok_or_else(|| {
            CloudError::aws(
                op,
                Some(region.clone()),
                "OptInRequired",
                format!("The Region {region} is not enabled for account {account} in the simulated world."),
                Some(400),
                Some(request_id),
                Vec::new(),
            )
        })
    }

    /// The call's Region and the id generator, borrowed together.
    pub fn reg_and_prng(&mut self) -> Result<(&mut RegionState, &mut state::Prng), CloudError> {
        let (op, region, request_id) = (self.op, self.region.clone(), self.request_id.clone());
        let World { accounts, prng, .. } = &mut *self.world;
        match accounts.get_mut(&self.account).and_then(|a| a.regions.get_mut(&region)) {
            Some(r) => Ok((r, prng)),
            None => Err(CloudError::aws(
                op,
                Some(region.clone()),
                "OptInRequired",
                format!("The Region {region} is not enabled in the simulated world."),
                Some(400),
                Some(request_id),
                Vec::new(),
            )),
        }
    }

    /// A fresh id `<prefix>-<17 hex>`.
    pub fn new_id<T: FromStr<Err = IdError>>(&mut self, prefix: &str) -> Result<T, CloudError> {
        let id = self.world.prng.ec2_id(prefix);
        id.parse().map_err(|e: IdError| self.err("InternalError", e.to_string(), Vec::new()))
    }

    /// The principal's identity policies.
    #[must_use]
    pub fn policies(&self) -> &[Policy] {
        self.policies
    }

    /// The IAM user of the principal.
    #[must_use]
    pub fn user(&self) -> String {
        self.world.accounts.get(&self.account).map(|a| a.user.clone()).unwrap_or_default()
    }
}

/// Run `f` as one call of `self` (the body of every `Cloud` method).
macro_rules! sim_call {
    ($self:ident, $auth:ident, $api:ident, $input:ident, $f:expr) => {
        $self.call(&$auth, Call::$api($input), |ctx| $f(ctx, $input)).await
    };
}

impl Cloud for SimCloud {
    async fn describe_regions(&self, auth: Authorized, input: &Empty) -> Result<Vec<RegionInfo>, CloudError> {
        sim_call!(self, auth, DescribeRegions, input, identity::describe_regions)
    }

    async fn describe_availability_zones(
        &self,
        auth: Authorized,
        input: &Empty,
    ) -> Result<Vec<AvailabilityZoneInfo>, CloudError> {
        sim_call!(self, auth, DescribeAvailabilityZones, input, identity::describe_availability_zones)
    }

    async fn describe_instance_type_offerings(
        &self,
        auth: Authorized,
        input: &DescribeInstanceTypeOfferingsInput,
    ) -> Result<Vec<InstanceTypeOffering>, CloudError> {
        sim_call!(self, auth, DescribeInstanceTypeOfferings, input, identity::describe_instance_type_offerings)
    }

    async fn get_caller_identity(&self, auth: Authorized, input: &Empty) -> Result<CallerIdentity, CloudError> {
        sim_call!(self, auth, GetCallerIdentity, input, identity::get_caller_identity)
    }

    async fn get_user(&self, auth: Authorized, input: &GetUserInput) -> Result<UserInfo, CloudError> {
        sim_call!(self, auth, GetUser, input, identity::get_user)
    }

    async fn describe_instances(
        &self,
        auth: Authorized,
        input: &DescribeInput<super::InstanceId>,
    ) -> Result<Page<InstanceInfo>, CloudError> {
        sim_call!(self, auth, DescribeInstances, input, compute::describe_instances)
    }

    async fn describe_volumes(
        &self,
        auth: Authorized,
        input: &DescribeInput<super::VolumeId>,
    ) -> Result<Page<VolumeInfo>, CloudError> {
        sim_call!(self, auth, DescribeVolumes, input, compute::describe_volumes)
    }

    async fn create_snapshots(
        &self,
        auth: Authorized,
        input: &CreateSnapshotsInput,
    ) -> Result<CreateSnapshotsOutput, CloudError> {
        sim_call!(self, auth, CreateSnapshots, input, snapshots::create_snapshots)
    }

    async fn create_snapshot(
        &self,
        auth: Authorized,
        input: &CreateSnapshotInput,
    ) -> Result<CreateSnapshotOutput, CloudError> {
        sim_call!(self, auth, CreateSnapshot, input, snapshots::create_snapshot)
    }

    async fn describe_snapshots(
        &self,
        auth: Authorized,
        input: &DescribeSnapshotsInput,
    ) -> Result<Page<SnapshotInfo>, CloudError> {
        sim_call!(self, auth, DescribeSnapshots, input, snapshots::describe_snapshots)
    }

    async fn copy_snapshot(
        &self,
        auth: Authorized,
        input: &CopySnapshotInput,
    ) -> Result<CopySnapshotOutput, CloudError> {
        sim_call!(self, auth, CopySnapshot, input, snapshots::copy_snapshot)
    }

    async fn modify_snapshot_attribute(
        &self,
        auth: Authorized,
        input: &ModifySnapshotAttributeInput,
    ) -> Result<Empty, CloudError> {
        sim_call!(self, auth, ModifySnapshotAttribute, input, snapshots::modify_snapshot_attribute)
    }

    async fn delete_snapshot(&self, auth: Authorized, input: &DeleteSnapshotInput) -> Result<Empty, CloudError> {
        sim_call!(self, auth, DeleteSnapshot, input, snapshots::delete_snapshot)
    }

    async fn create_vpc(&self, auth: Authorized, input: &CreateVpcInput) -> Result<CreateVpcOutput, CloudError> {
        sim_call!(self, auth, CreateVpc, input, network::create_vpc)
    }

    async fn create_subnet(
        &self,
        auth: Authorized,
        input: &CreateSubnetInput,
    ) -> Result<CreateSubnetOutput, CloudError> {
        sim_call!(self, auth, CreateSubnet, input, network::create_subnet)
    }

    async fn modify_subnet_attribute(
        &self,
        auth: Authorized,
        input: &ModifySubnetAttributeInput,
    ) -> Result<Empty, CloudError> {
        sim_call!(self, auth, ModifySubnetAttribute, input, network::modify_subnet_attribute)
    }

    async fn create_internet_gateway(
        &self,
        auth: Authorized,
        input: &CreateInternetGatewayInput,
    ) -> Result<CreateInternetGatewayOutput, CloudError> {
        sim_call!(self, auth, CreateInternetGateway, input, network::create_internet_gateway)
    }

    async fn attach_internet_gateway(
        &self,
        auth: Authorized,
        input: &AttachInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        sim_call!(self, auth, AttachInternetGateway, input, network::attach_internet_gateway)
    }

    async fn detach_internet_gateway(
        &self,
        auth: Authorized,
        input: &DetachInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        sim_call!(self, auth, DetachInternetGateway, input, network::detach_internet_gateway)
    }

    async fn describe_route_tables(
        &self,
        auth: Authorized,
        input: &DescribeInput<super::RouteTableId>,
    ) -> Result<Page<RouteTableInfo>, CloudError> {
        sim_call!(self, auth, DescribeRouteTables, input, network::describe_route_tables)
    }

    async fn create_route(&self, auth: Authorized, input: &CreateRouteInput) -> Result<Empty, CloudError> {
        sim_call!(self, auth, CreateRoute, input, network::create_route)
    }

    async fn create_security_group(
        &self,
        auth: Authorized,
        input: &CreateSecurityGroupInput,
    ) -> Result<CreateSecurityGroupOutput, CloudError> {
        sim_call!(self, auth, CreateSecurityGroup, input, network::create_security_group)
    }

    async fn authorize_security_group_egress(
        &self,
        auth: Authorized,
        input: &AuthorizeSecurityGroupEgressInput,
    ) -> Result<Empty, CloudError> {
        sim_call!(self, auth, AuthorizeSecurityGroupEgress, input, network::authorize_security_group_egress)
    }

    async fn create_vpc_endpoint(
        &self,
        auth: Authorized,
        input: &CreateVpcEndpointInput,
    ) -> Result<CreateVpcEndpointOutput, CloudError> {
        sim_call!(self, auth, CreateVpcEndpoint, input, network::create_vpc_endpoint)
    }

    async fn describe_vpcs(
        &self,
        auth: Authorized,
        input: &DescribeInput<super::VpcId>,
    ) -> Result<Page<VpcInfo>, CloudError> {
        sim_call!(self, auth, DescribeVpcs, input, network::describe_vpcs)
    }

    async fn describe_subnets(
        &self,
        auth: Authorized,
        input: &DescribeInput<super::SubnetId>,
    ) -> Result<Page<SubnetInfo>, CloudError> {
        sim_call!(self, auth, DescribeSubnets, input, network::describe_subnets)
    }

    async fn describe_security_groups(
        &self,
        auth: Authorized,
        input: &DescribeInput<super::SecurityGroupId>,
    ) -> Result<Page<SecurityGroupInfo>, CloudError> {
        sim_call!(self, auth, DescribeSecurityGroups, input, network::describe_security_groups)
    }

    async fn describe_internet_gateways(
        &self,
        auth: Authorized,
        input: &DescribeInput<super::InternetGatewayId>,
    ) -> Result<Page<InternetGatewayInfo>, CloudError> {
        sim_call!(self, auth, DescribeInternetGateways, input, network::describe_internet_gateways)
    }

    async fn describe_vpc_endpoints(
        &self,
        auth: Authorized,
        input: &DescribeInput<super::VpcEndpointId>,
    ) -> Result<Page<VpcEndpointInfo>, CloudError> {
        sim_call!(self, auth, DescribeVpcEndpoints, input, network::describe_vpc_endpoints)
    }

    async fn run_scanner(&self, auth: Authorized, input: &RunScannerInput) -> Result<RunScannerOutput, CloudError> {
        sim_call!(self, auth, RunInstances, input, compute::run_scanner)
    }

    async fn describe_images(
        &self,
        auth: Authorized,
        input: &DescribeImagesInput,
    ) -> Result<Page<ImageInfo>, CloudError> {
        sim_call!(self, auth, DescribeImages, input, compute::describe_images)
    }

    async fn copy_image(&self, auth: Authorized, input: &CopyImageInput) -> Result<CopyImageOutput, CloudError> {
        sim_call!(self, auth, CopyImage, input, compute::copy_image)
    }

    async fn terminate_instances(
        &self,
        auth: Authorized,
        input: &TerminateInstancesInput,
    ) -> Result<Vec<InstanceStateChange>, CloudError> {
        sim_call!(self, auth, TerminateInstances, input, compute::terminate_instances)
    }

    async fn stop_instances(
        &self,
        auth: Authorized,
        input: &StopInstancesInput,
    ) -> Result<Vec<InstanceStateChange>, CloudError> {
        sim_call!(self, auth, StopInstances, input, compute::stop_instances)
    }

    async fn delete_vpc_endpoints(
        &self,
        auth: Authorized,
        input: &DeleteVpcEndpointsInput,
    ) -> Result<DeleteVpcEndpointsOutput, CloudError> {
        sim_call!(self, auth, DeleteVpcEndpoints, input, network::delete_vpc_endpoints)
    }

    async fn delete_security_group(
        &self,
        auth: Authorized,
        input: &DeleteSecurityGroupInput,
    ) -> Result<Empty, CloudError> {
        sim_call!(self, auth, DeleteSecurityGroup, input, network::delete_security_group)
    }

    async fn delete_subnet(&self, auth: Authorized, input: &DeleteSubnetInput) -> Result<Empty, CloudError> {
        sim_call!(self, auth, DeleteSubnet, input, network::delete_subnet)
    }

    async fn delete_internet_gateway(
        &self,
        auth: Authorized,
        input: &DeleteInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        sim_call!(self, auth, DeleteInternetGateway, input, network::delete_internet_gateway)
    }

    async fn delete_vpc(&self, auth: Authorized, input: &DeleteVpcInput) -> Result<Empty, CloudError> {
        sim_call!(self, auth, DeleteVpc, input, network::delete_vpc)
    }

    async fn describe_key(&self, auth: Authorized, input: &DescribeKeyInput) -> Result<KeyInfo, CloudError> {
        sim_call!(self, auth, DescribeKey, input, kms::describe_key)
    }

    async fn create_grant(&self, auth: Authorized, input: &CreateGrantInput) -> Result<CreateGrantOutput, CloudError> {
        sim_call!(self, auth, CreateGrant, input, kms::create_grant)
    }

    async fn list_grants(&self, auth: Authorized, input: &ListGrantsInput) -> Result<Page<GrantInfo>, CloudError> {
        sim_call!(self, auth, ListGrants, input, kms::list_grants)
    }

    async fn revoke_grant(&self, auth: Authorized, input: &RevokeGrantInput) -> Result<Empty, CloudError> {
        sim_call!(self, auth, RevokeGrant, input, kms::revoke_grant)
    }

    async fn get_queue_url(&self, auth: Authorized, input: &GetQueueUrlInput) -> Result<QueueUrl, CloudError> {
        sim_call!(self, auth, GetQueueUrl, input, trail::get_queue_url)
    }

    /// One call (authorized, throttled, faulted like any); then, while nothing is received and
    /// the long poll's wait is not over, sleep on the tokio clock (no lock held) until a message
    /// may become visible or deliverable, and look again.
    async fn receive_message(
        &self,
        auth: Authorized,
        input: &ReceiveMessageInput,
    ) -> Result<Vec<QueueMessage>, CloudError> {
        let wait_ms = u64::from(input.wait_seconds.min(SQS_MAX_WAIT_SECONDS)) * 1000;
        let deadline = self.now_ms().saturating_add(wait_ms);
        let region = auth.region().clone();
        let first = sim_call!(self, auth, ReceiveMessage, input, trail::receive_message)?;
        if !first.is_empty() || wait_ms == 0 {
            return Ok(first);
        }
        loop {
            let now = self.now_ms();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake = self.next_wake(&region, input, now).unwrap_or(deadline).clamp(now + 1, deadline);
            tokio::time::sleep(std::time::Duration::from_millis(wake - now)).await;
            let got = self.poll_queue(&region, input)?;
            if !got.is_empty() {
                return Ok(got);
            }
        }
    }

    async fn get_object(&self, auth: Authorized, input: &GetObjectInput) -> Result<ObjectBody, CloudError> {
        sim_call!(self, auth, GetObject, input, trail::get_object)
    }
}
