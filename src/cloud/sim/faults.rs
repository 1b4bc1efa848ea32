//! Faults injected into the simulated account, reproducible from a seed: what AWS does to an
//! orchestrator on a bad day, on demand, so its retries, timeouts, intent recovery and teardown
//! can be tested.
//!
//! Configured by the fleet file's `[faults]` table or programmatically
//! ([`super::SimCloud::set_faults`]), as per-call probabilities and explicit schedules ("the 3rd
//! `CreateSnapshot` call"):
//!
//! ```toml
//! [faults]
//! seed = 42
//! rates = { internal_error = 0.01, throttle = 0.02 }   # every call
//! snapshot_error = 0.05                                  # every snapshot created
//! [faults.actions.RunInstances]                          # replaces `rates` for that action
//! timeout = 0.1
//! [[faults.schedule]]
//! action = "CreateSnapshots"
//! nth = 2                                                # the 2nd CreateSnapshots call
//! fault = "lost-response"
//! ```
//!
//! | fault | effect | seam error |
//! |---|---|---|
//! | `throttle` | refused before the token buckets (no token taken), nothing changes | `RequestLimitExceeded`, [`ErrorKind::Throttled`] |
//! | `internal-error` | refused, nothing changes | `InternalError` (HTTP 500), [`ErrorKind::Transient`] |
//! | `unavailable` | refused, nothing changes | `Unavailable` (HTTP 503), [`ErrorKind::Transient`] |
//! | `timeout` | the call hangs [`Faults::timeout_ms`] on the tokio clock, nothing changes | no code, [`ErrorKind::Transient`] |
//! | `lost-response` | the call **is applied** (and saved), the response never arrives | no code, [`ErrorKind::Transient`] |
//! | `snapshot-error` | the call succeeds; each snapshot it creates stays `pending` its normal time, then ends in `error` | — |
//! | `never-boots` | `RunInstances` succeeds; the instance stays `pending` [`Faults::stuck_pending_ms`], then goes `terminated` with state reason `Server.InternalError` | — |
//! | `never-reports` | `RunInstances` succeeds; the instance boots and runs but carries [`InstanceFault::NeverReports`] | — |
//!
//! A lost response whose call failed anyway returns that failure (nothing was applied). The
//! `lost-response` fault is what ClientToken and tag-based intent recovery exist for: the resource
//! exists, tagged, and the caller does not know its id.
//!
//! `never-reports` is a flag on the instance ([`super::state::Instance::fault`]) for the hypervisor,
//! which does not run the scanner agent for such an instance: it runs — never powering off,
//! never uploading a bundle — until terminated.
//!
//! Determinism: the [`Engine`] draws from its own splitmix64 stream ([`super::prng::Prng`],
//! seeded with [`Faults::seed`], separate from the id generator so turning faults on does not
//! change ids): one draw per call, whatever the rates, and one per snapshot or instance created.
//! The same seed, configuration and call sequence give the same faults; [`Engine::log`] lists
//! them. The engine lives in memory (like the token buckets): a new process restarts its stream
//! and call counts; the configuration is part of the saved world.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::prng::Prng;
use crate::cloud::ErrorKind;
use crate::cloud::aws::config::DEFAULT_ATTEMPT_TIMEOUT;

/// How long a `timeout` fault hangs by default: the AWS backend's attempt timeout
/// ([`DEFAULT_ATTEMPT_TIMEOUT`], 60 s), after which the SDK gives up on the attempt.
pub const TIMEOUT_MS: u64 = 60_000;
/// How long a `never-boots` instance stays `pending` before it is `terminated` by default.
/// INFERENCE: AWS publishes no figure; ten minutes is well past any normal boot (the sim's boot
/// takes [`super::limits::INSTANCE_BOOT_MS`]), so the orchestrator's own boot deadline fires first.
pub const STUCK_PENDING_MS: u64 = 600_000;
/// The state reason of an instance that failed to launch (EC2 User Guide, "Troubleshoot instance
/// launch issues", "Instance terminates immediately": `Server.InternalError: Internal error on
/// launch`).
pub const LAUNCH_FAILURE_CODE: &str = "Server.InternalError";
pub const LAUNCH_FAILURE_MESSAGE: &str = "Server.InternalError: Internal error on launch";

// The constant above must follow the AWS backend's.
const _: () = assert!(DEFAULT_ATTEMPT_TIMEOUT.as_millis() == TIMEOUT_MS as u128);

/// Every operation of the seam, as `Call::name` spells it (the names `[faults.actions]` and
/// `[[faults.schedule]]` take). A unit test checks it against the `operations!` table.
pub const ACTIONS: [&str; 46] = [
    "DescribeRegions",
    "DescribeAvailabilityZones",
    "DescribeInstanceTypeOfferings",
    "GetCallerIdentity",
    "GetUser",
    "DescribeInstances",
    "DescribeVolumes",
    "CreateSnapshots",
    "CreateSnapshot",
    "DescribeSnapshots",
    "CopySnapshot",
    "ModifySnapshotAttribute",
    "DeleteSnapshot",
    "CreateVpc",
    "CreateSubnet",
    "ModifySubnetAttribute",
    "CreateInternetGateway",
    "AttachInternetGateway",
    "DetachInternetGateway",
    "DescribeRouteTables",
    "CreateRoute",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupEgress",
    "CreateVpcEndpoint",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "DescribeInternetGateways",
    "DescribeVpcEndpoints",
    "RunInstances",
    "DescribeImages",
    "CopyImage",
    "TerminateInstances",
    "StopInstances",
    "DeleteVpcEndpoints",
    "DeleteSecurityGroup",
    "DeleteSubnet",
    "DeleteInternetGateway",
    "DeleteVpc",
    "DescribeKey",
    "CreateGrant",
    "ListGrants",
    "RevokeGrant",
    "GetQueueUrl",
    "ReceiveMessage",
    "GetObject",
];

/// Actions that create snapshots (where `snapshot-error` can be scheduled).
const SNAPSHOT_ACTIONS: [&str; 3] = ["CreateSnapshots", "CreateSnapshot", "CopySnapshot"];

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    Throttle,
    InternalError,
    Unavailable,
    Timeout,
    LostResponse,
    SnapshotError,
    NeverBoots,
    NeverReports,
}

impl Fault {
    /// The name the fleet file uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::InternalError => "internal-error",
            Fault::Unavailable => "unavailable",
            Fault::Timeout => "timeout",
            Fault::LostResponse => "lost-response",
            Fault::SnapshotError => "snapshot-error",
            Fault::NeverBoots => "never-boots",
            Fault::NeverReports => "never-reports",
        }
    }

    /// The seam's error kind of a call fault; `None` for the faults that do not fail the call.
    #[must_use]
    pub fn kind(self) -> Option<ErrorKind> {
        match self {
            Fault::Throttle => Some(ErrorKind::Throttled),
            Fault::InternalError | Fault::Unavailable | Fault::Timeout | Fault::LostResponse => {
                Some(ErrorKind::Transient)
            }
            Fault::SnapshotError | Fault::NeverBoots | Fault::NeverReports => None,
        }
    }
}

/// A fault on an instance launched by `RunInstances`, kept with the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceFault {
    /// Stays `pending`, then `terminated` with a state reason ([`LAUNCH_FAILURE_CODE`]).
    NeverBoots,
    /// Boots and runs; the hypervisor must not run the agent, so it never powers off and never
    /// reports (see the module documentation).
    NeverReports,
}

/// Probabilities (0 to 1) that one call fails with each call fault; at most one fault per call,
/// so their sum must not exceed 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rates {
    pub throttle: f64,
    pub internal_error: f64,
    pub unavailable: f64,
    pub timeout: f64,
    pub lost_response: f64,
}

impl Rates {
    fn pairs(&self) -> [(Fault, f64); 5] {
        [
            (Fault::Throttle, self.throttle),
            (Fault::InternalError, self.internal_error),
            (Fault::Unavailable, self.unavailable),
            (Fault::Timeout, self.timeout),
            (Fault::LostResponse, self.lost_response),
        ]
    }

    /// The fault a uniform draw `u` in [0, 1) falls on.
    fn pick(&self, u: f64) -> Option<Fault> {
        let mut edge = 0.0;
        for (fault, p) in self.pairs() {
            edge += p;
            if u < edge {
                return Some(fault);
            }
        }
        None
    }
}

/// "The `nth` call of `action` gets `fault`" (calls counted from 1, per action, by this process).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheduled {
    pub action: String,
    pub nth: u64,
    pub fault: Fault,
}

/// The fault configuration (`[faults]`); the default injects nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Seed of the fault stream.
    pub seed: u64,
    /// Call faults for every action...
    pub rates: Rates,
    /// ...except these, which have their own.
    pub actions: BTreeMap<String, Rates>,
    /// Probability that a snapshot (or copy) ends in `error`.
    pub snapshot_error: f64,
    /// Probability that a scanner instance never boots.
    pub never_boots: f64,
    /// Probability that a scanner instance boots but never reports.
    pub never_reports: f64,
    /// How long a `timeout` hangs (ms of the tokio clock).
    pub timeout_ms: u64,
    /// How long a `never-boots` instance stays `pending` (ms).
    pub stuck_pending_ms: u64,
    pub schedule: Vec<Scheduled>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 1,
            rates: Rates::default(),
            actions: BTreeMap::new(),
            snapshot_error: 0.0,
            never_boots: 0.0,
            never_reports: 0.0,
            timeout_ms: TIMEOUT_MS,
            stuck_pending_ms: STUCK_PENDING_MS,
            schedule: Vec::new(),
        }
    }
}

/// A fault configuration that cannot be used: the key (under `faults`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct FaultsError {
    pub key: String,
    pub message: String,
}

fn bad(key: impl Into<String>, message: impl Into<String>) -> FaultsError {
    FaultsError { key: key.into(), message: message.into() }
}

fn probability(key: String, p: f64) -> Result<(), FaultsError> {
    if (0.0..=1.0).contains(&p) { Ok(()) } else { Err(bad(key, format!("{p} is not a probability (0 to 1)"))) }
}

fn rates_ok(key: &str, r: &Rates) -> Result<(), FaultsError> {
    let mut sum = 0.0;
    for (fault, p) in r.pairs() {
        probability(format!("{key}.{}", fault.as_str().replace('-', "_")), p)?;
        sum += p;
    }
    if sum > 1.0 {
        return Err(bad(key, format!("the call fault probabilities add up to {sum}, more than 1")));
    }
    Ok(())
}

fn known(key: String, action: &str) -> Result<(), FaultsError> {
    if ACTIONS.contains(&action) {
        Ok(())
    } else {
        Err(bad(key, format!("\"{action}\" is not an operation of the seam (e.g. \"CreateSnapshots\")")))
    }
}

impl Faults {
    /// No faults but these scheduled ones (a test's usual configuration).
    #[must_use]
    pub fn scheduled(seed: u64, schedule: impl IntoIterator<Item = (&'static str, u64, Fault)>) -> Faults {
        let schedule =
            schedule.into_iter().map(|(action, nth, fault)| Scheduled { action: action.into(), nth, fault }).collect();
        Faults { seed, schedule, ..Faults::default() }
    }

    /// Whether anything can ever be injected (so the engine can be skipped).
    #[must_use]
    pub fn any(&self) -> bool {
        let rates = |r: &Rates| r.pairs().iter().any(|(_, p)| *p > 0.0);
        rates(&self.rates)
            || self.actions.values().any(rates)
            || self.snapshot_error > 0.0
            || self.never_boots > 0.0
            || self.never_reports > 0.0
            || !self.schedule.is_empty()
    }

    /// Refuse probabilities outside [0, 1], unknown actions, `nth = 0`, and resource faults
    /// scheduled on an action that creates no such resource.
    pub fn check(&self) -> Result<(), FaultsError> {
        rates_ok("faults.rates", &self.rates)?;
        for (action, r) in &self.actions {
            known(format!("faults.actions.{action}"), action)?;
            rates_ok(&format!("faults.actions.{action}"), r)?;
        }
        probability("faults.snapshot_error".into(), self.snapshot_error)?;
        probability("faults.never_boots".into(), self.never_boots)?;
        probability("faults.never_reports".into(), self.never_reports)?;
        for (i, s) in self.schedule.iter().enumerate() {
            let key = format!("faults.schedule[{i}]");
            known(format!("{key}.action"), &s.action)?;
            if s.nth == 0 {
                return Err(bad(format!("{key}.nth"), "calls are counted from 1"));
            }
            let fits = match s.fault {
                Fault::Throttle | Fault::InternalError | Fault::Unavailable | Fault::Timeout | Fault::LostResponse => {
                    true
                }
                Fault::SnapshotError => SNAPSHOT_ACTIONS.contains(&s.action.as_str()),
                Fault::NeverBoots | Fault::NeverReports => s.action == "RunInstances",
            };
            if !fits {
                return Err(bad(
                    format!("{key}.fault"),
                    format!("{} cannot happen to {} (it creates no such resource)", s.fault.as_str(), s.action),
                ));
            }
        }
        Ok(())
    }

    /// How long a timeout hangs.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// One injected fault: the process-wide call number (from 1), the action, which call of that
/// action it was, and the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub call: u64,
    pub action: &'static str,
    pub nth: u64,
    pub fault: Fault,
}

/// What the engine decided for one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// A fault of the call itself.
    pub call: Option<Fault>,
    /// Scheduled resource faults: every snapshot / the instance the call creates gets them.
    pub snapshot_error: bool,
    pub instance: Option<InstanceFault>,
    /// The call's numbers, for the log of resource faults drawn later.
    seq: u64,
    nth: u64,
}

/// The fault stream: its generator, call counts and the log (in memory).
#[derive(Debug)]
pub struct Engine {
    prng: Prng,
    seed: u64,
    calls: u64,
    per_action: BTreeMap<&'static str, u64>,
    log: Vec<Injected>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Faults::default().seed)
    }
}

/// A uniform draw in [0, 1) from the top 53 bits.
fn uniform(x: u64) -> f64 {
    const SCALE: f64 = (1u64 << 53) as f64;
    (x >> 11) as f64 / SCALE
}

impl Engine {
    #[must_use]
    pub fn new(seed: u64) -> Engine {
        Engine { prng: Prng::new(seed), seed, calls: 0, per_action: BTreeMap::new(), log: Vec::new() }
    }

    /// The seed the stream started from.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Every fault injected so far, in order.
    #[must_use]
    pub fn log(&self) -> &[Injected] {
        &self.log
    }

    /// Count one call of `action` and decide its faults.
    pub fn decide(&mut self, faults: &Faults, action: &'static str) -> Decision {
        self.calls += 1;
        let nth = {
            let n = self.per_action.entry(action).or_insert(0);
            *n += 1;
            *n
        };
        let mut d = Decision { seq: self.calls, nth, ..Decision::default() };
        if !faults.any() {
            return d;
        }
        let u = uniform(self.prng.next_u64());
        let rates = faults.actions.get(action).unwrap_or(&faults.rates);
        d.call = rates.pick(u);
        for s in faults.schedule.iter().filter(|s| s.action == action && s.nth == nth) {
            match s.fault {
                Fault::Throttle | Fault::InternalError | Fault::Unavailable | Fault::Timeout | Fault::LostResponse => {
                    d.call = Some(s.fault);
                }
                Fault::SnapshotError => d.snapshot_error = true,
                Fault::NeverBoots => d.instance = Some(InstanceFault::NeverBoots),
                Fault::NeverReports => d.instance = Some(InstanceFault::NeverReports),
            }
        }
        // Resource faults are logged when a resource gets them (a call may fail before it creates any).
        if let Some(fault) = d.call {
            self.log.push(Injected { call: d.seq, action, nth, fault });
        }
        d
    }

    /// Whether a snapshot created by the call `d` of `action` ends in `error` (one draw).
    pub fn snapshot_error(&mut self, faults: &Faults, d: &Decision, action: &'static str) -> bool {
        if !faults.any() {
            return false;
        }
        let u = uniform(self.prng.next_u64());
        let fails = d.snapshot_error || u < faults.snapshot_error;
        if fails {
            self.log.push(Injected { call: d.seq, action, nth: d.nth, fault: Fault::SnapshotError });
        }
        fails
    }

    /// The fault of an instance launched by the call `d` (one draw).
    pub fn instance_fault(&mut self, faults: &Faults, d: &Decision, action: &'static str) -> Option<InstanceFault> {
        if !faults.any() {
            return None;
        }
        let u = uniform(self.prng.next_u64());
        let fault = d.instance.or(if u < faults.never_boots {
            Some(InstanceFault::NeverBoots)
        } else if u < faults.never_boots + faults.never_reports {
            Some(InstanceFault::NeverReports)
        } else {
            None
        });
        if let Some(f) = fault {
            let fault = match f {
                InstanceFault::NeverBoots => Fault::NeverBoots,
                InstanceFault::NeverReports => Fault::NeverReports,
            };
            self.log.push(Injected { call: d.seq, action, nth: d.nth, fault });
        }
        fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_the_seams_operations() {
        let table = include_str!("../mod.rs");
        let declared: Vec<&str> = table
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let (api, rest) = l.split_once(" => ")?;
                (rest.contains('(') && api.chars().all(|c| c.is_ascii_alphanumeric())).then_some(api)
            })
            .collect();
        assert_eq!(declared, ACTIONS);
    }

    #[test]
    fn rates_pick_by_cumulative_probability() {
        let r = Rates { throttle: 0.25, internal_error: 0.25, ..Rates::default() };
        assert_eq!(r.pick(0.1), Some(Fault::Throttle));
        assert_eq!(r.pick(0.3), Some(Fault::InternalError));
        assert_eq!(r.pick(0.6), None);
        assert_eq!(Rates::default().pick(0.0), None);
    }

    #[test]
    fn check_names_the_key() {
        let mut f = Faults::default();
        f.rates.timeout = 1.5;
        assert_eq!(f.check().map_err(|e| e.key), Err("faults.rates.timeout".to_owned()));
        let f = Faults::scheduled(1, [("CreateVpc", 1, Fault::SnapshotError)]);
        assert_eq!(f.check().map_err(|e| e.key), Err("faults.schedule[0].fault".to_owned()));
        let f = Faults::scheduled(1, [("CreateVPC", 1, Fault::Timeout)]);
        assert_eq!(f.check().map_err(|e| e.key), Err("faults.schedule[0].action".to_owned()));
        let f = Faults::scheduled(1, [("RunInstances", 0, Fault::NeverBoots)]);
        assert_eq!(f.check().map_err(|e| e.key), Err("faults.schedule[0].nth".to_owned()));
        assert_eq!(Faults::scheduled(1, [("RunInstances", 1, Fault::NeverBoots)]).check(), Ok(()));
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let faults = Faults { seed: 9, rates: Rates { internal_error: 0.3, ..Rates::default() }, ..Faults::default() };
        let run = || {
            let mut e = Engine::new(faults.seed);
            (0..200).map(|_| e.decide(&faults, "DescribeVpcs").call).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let n = a.iter().flatten().count();
        assert!((30..90).contains(&n), "{n} of 200 at p = 0.3");
    }
}
