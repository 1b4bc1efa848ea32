//! The leak auditor (docs/tags.md, docs/job.md): finds, in every Region asked,
//! every resource named with one of our prefixes (`SAS_Agentless`, `alibaba-cloud-security-scan`)
//! or carrying our `agentless:job` tag, tells whose it is and whether it should still exist, and —
//! with `delete` — removes the leaked ones in dependency order through the policy guard, recording
//! each deletion in the ledger. `agentless audit` ([`crate::cli`]) and the daemon call [`audit`].
//!
//! One concept per file: [`list`] (filtered, paginated Describe calls and `ListGrants`),
//! [`ledger_view`] (what the ledger says, read once), [`classify`] (active / leaked / foreign /
//! stuck), [`delete`] (the leaks to [`crate::teardown`]),
//! [`duration`] (`--grace`), [`report`] (table, JSON, exit status), [`error`].
//!
//! # What is listed
//!
//! Snapshots in any state (`pending` and `error` included) and their copies, volumes, instances
//! (not yet `terminated`), VPCs, subnets, internet gateways, security groups, VPC endpoints (not
//! yet `deleted`), and the KMS grants named with our prefix on the keys our jobs used (the keys of
//! the ledger's grant rows and of the snapshots found). Each EC2 kind is listed with two filtered,
//! paginated Describes — `tag:Name` = our prefixes, and `tag-key` = `agentless:job` (which finds
//! ours whose `Name` was removed) — plus, with a ledger, a Describe filtered on the ids of the
//! ledger's live rows (which finds ours stripped of every tag). Filtered and paginated Describes
//! draw on the larger token bucket (docs/references.md, "EC2 API throttling").
//!
//! **Network interfaces are not listed**: the seam has no `DescribeNetworkInterfaces` (nor does the
//! policy allow it, `policies/README.md` "Gaps"). Every ENI we create belongs to a scanner instance
//! or an interface endpoint and is deleted by AWS with its owner, so terminating the instances and
//! deleting the endpoints covers them; an ENI that lingers shows up as a `DependencyViolation` on
//! its subnet or security group, which is retried and then reported.
//!
//! # Classes
//!
//! - **active**: the job's process is alive (the caller says so through
//!   [`AuditOptions::job_is_alive`]), whatever the resource's `agentless:expires-at`: the job
//!   removes what it made, and deleting from under it would fail its scan; or the job is running
//!   in the ledger, its liveness unknown, and the resource is not past its expiry; or the resource is within the grace period; or its job is unknown and
//!   its expiry is still ahead (see "Age" below); or it backs the scanner image copy, which is
//!   kept on purpose (`agentless:image-version`, the policy has no `ec2:DeregisterImage`).
//! - **leaked**: its job is finished (`Done`, `Failed`, `Cancelled`), unknown to the ledger, or
//!   the resource is past its `agentless:expires-at` — and it is older than the grace period.
//! - **foreign**: our `Name` prefix but no `agentless:job` tag: made by another tool with the same
//!   names (Alibaba Cloud Security Center uses them) or by a customer. Reported, deleted only with
//!   `include_foreign` (the guard must then be built with [`GuardRules::include_foreign`]).
//! - **stuck**: ours, but the policy (or the guard) will not let us delete it: its `Name` no longer
//!   starts with the prefix of its kind, its `agentless:job` tag is gone, or it is a volume that
//!   outlived its instance (the policy has no `ec2:DeleteVolume`). The report says exactly what a
//!   person must do.
//!
//! # Age
//!
//! `SnapshotInfo` and the other Describe results of the seam carry no creation time, so the age of
//! a resource is a lower bound taken from, in order: the ledger's row for it (`created_at` of the
//! intent), the ledger's job (`created_at`), or, past its `agentless:expires-at`, the time since
//! it expired. Without any of these (no ledger record and an expiry still ahead) the age is
//! unknown and the resource is kept until its expiry; without a ledger record *and* without an
//! expiry tag (never written by this version) it is treated as older than any grace period.
//!
//! # Running jobs and dead processes
//!
//! "Running in the ledger" means a non-terminal state. A job whose process was killed stays in its
//! state until `agentless jobs resume` picks it up; its resources are `active` until their expiry.
//! [`AuditOptions::job_is_alive`] lets the caller (the orchestrator, which knows whether a job's
//! process holds its lock) say that such a job is dead, which makes its resources leaks.
//!
//! [`GuardRules::include_foreign`]: crate::cloud::GuardRules::include_foreign

pub mod classify;
pub mod delete;
pub mod duration;
pub mod error;
pub mod ledger_view;
pub mod list;
pub mod report;

use std::fmt;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::cloud::ops::Empty;
use crate::cloud::{AccountId, Cloud, Guard, JobId, Region, Tags};
use crate::ledger::{JobRecord, JobState, Ledger, ResourceId, ResourceKind};

pub use crate::cloud::retry::RetryPolicy;
pub use duration::{DurationError, parse_duration};
pub use error::AuditError;
pub use ledger_view::open_ledger;
pub use report::{EXIT_CLEAN, EXIT_ERROR, EXIT_LEAKS};

/// The default `--grace`. INFERENCE: long enough that a resource created a moment ago by a job this
/// ledger does not know (another host's ledger, an intent whose id is not recorded yet) is never
/// taken for a leak, short enough that an hourly cron run reports a leak within two hours.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_hours(1);

/// The Region `DescribeRegions` is sent to when no Region is asked for (any enabled Region
/// answers for the account; us-east-1 is enabled in every standard-partition account).
pub const DEFAULT_HOME_REGION: &str = "us-east-1";

/// Whether the process running a job is alive (see the module documentation). Called for jobs in
/// a non-terminal state only.
pub type JobLiveness = Arc<dyn Fn(&JobRecord) -> bool + Send + Sync>;

/// How to audit.
#[derive(Clone)]
pub struct AuditOptions {
    /// Resources younger than this are never leaks.
    pub grace: SignedDuration,
    /// Delete the leaked resources (otherwise a dry run: report only).
    pub delete: bool,
    /// Also delete `foreign` resources (with `delete`); the guard must allow it too.
    pub include_foreign: bool,
    /// Now, on the clock the jobs wrote `agentless:expires-at` and the ledger's times with.
    pub now: Timestamp,
    /// Backoff of Describe and delete calls (throttling, `DependencyViolation`, 5xx).
    pub retry: RetryPolicy,
    /// `None`: a job in a non-terminal state in the ledger is running.
    pub job_is_alive: Option<JobLiveness>,
}

impl AuditOptions {
    /// A dry run at `now` with the default grace period and retry policy.
    #[must_use]
    pub fn new(now: Timestamp) -> AuditOptions {
        AuditOptions {
            grace: DEFAULT_GRACE,
            delete: false,
            include_foreign: false,
            now,
            retry: RetryPolicy::default(),
            job_is_alive: None,
        }
    }
}

impl fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditOptions")
            .field("grace", &self.grace)
            .field("delete", &self.delete)
            .field("include_foreign", &self.include_foreign)
            .field("now", &self.now)
            .field("retry", &self.retry)
            .field("job_is_alive", &self.job_is_alive.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

/// What a found resource is (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Active,
    Leaked,
    Foreign,
    Stuck,
}

impl Class {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Active => "active",
            Class::Leaked => "leaked",
            Class::Foreign => "foreign",
            Class::Stuck => "stuck",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource the audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: ResourceKind,
    pub region: Region,
    pub id: ResourceId,
    /// The `Name` tag (a grant's name for a KMS grant).
    pub name: Option<String>,
    pub tags: Tags,
    /// The job: from `agentless:job` (a grant's name), else from the ledger.
    pub job: Option<JobId>,
    /// The job's state in the ledger.
    pub job_state: Option<JobState>,
    /// `agentless:expires-at`, if present and valid.
    pub expires_at: Option<Timestamp>,
    /// The resource's own state as AWS reports it (`pending`, `running`...), where it has one.
    pub state: Option<String>,
    pub class: Class,
    /// Why it is in its class.
    pub reason: String,
    /// For `stuck` (and a failed deletion): what a person must do.
    pub action_needed: Option<String>,
    /// Deleted by this audit (or found already gone while deleting).
    pub deleted: bool,
    /// The deletion failed: the last error.
    pub error: Option<String>,
}

impl Found {
    /// A leak that is still there: leaked or stuck, and not deleted.
    #[must_use]
    pub fn is_remaining_leak(&self) -> bool {
        match self.class {
            Class::Leaked | Class::Stuck => !self.deleted,
            Class::Active | Class::Foreign => false,
        }
    }
}

/// Why a Region was not audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Not enabled for the account (`DescribeRegions` does not list it, or the Region refused the
    /// call with `OptInRequired` / `AuthFailure`).
    NotEnabled(String),
    /// A listing call failed after its retries.
    ListingFailed(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotEnabled(why) => write!(f, "not enabled: {why}"),
            SkipReason::ListingFailed(why) => write!(f, "listing failed: {why}"),
        }
    }
}

/// A Region that was not audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRegion {
    pub region: Region,
    pub reason: SkipReason,
}

/// What an audit found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub account: AccountId,
    pub now: Timestamp,
    pub grace: SignedDuration,
    pub delete: bool,
    pub include_foreign: bool,
    pub regions_audited: Vec<Region>,
    pub regions_skipped: Vec<SkippedRegion>,
    /// Every resource found, grouped by Region, then in deletion order.
    pub resources: Vec<Found>,
    /// Set when the ledger could not be used: the audit then classified from tags alone.
    pub ledger_note: Option<String>,
    /// Parts of the listing that failed (e.g. the grants of one key): the audit is incomplete.
    pub listing_errors: Vec<String>,
    /// Anything else worth saying (a deletion that could not be recorded in the ledger...).
    pub warnings: Vec<String>,
}

impl AuditReport {
    /// Leaked or stuck resources still there.
    #[must_use]
    pub fn leaks_remaining(&self) -> usize {
        self.resources.iter().filter(|f| f.is_remaining_leak()).count()
    }

    /// A Region was skipped or part of a listing failed.
    #[must_use]
    pub fn incomplete(&self) -> bool {
        !self.regions_skipped.is_empty() || !self.listing_errors.is_empty()
    }

    /// The resources of one class.
    pub fn of_class(&self, class: Class) -> impl Iterator<Item = &Found> {
        self.resources.iter().filter(move |f| f.class == class)
    }

    /// 0 nothing leaked remains, 1 leaks remain (reported or not deletable), 2 the audit is
    /// incomplete (a Region or a listing failed): for a cron job to alert on.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        report::exit_code(self)
    }
}

/// Audit `regions` (every enabled Region when empty) of the guard's account.
///
/// `ledger`: the ledger to read jobs from and record deletions in; `None` (with
/// `ledger_problem` saying why, e.g. from [`open_ledger`]) classifies from tags alone. A ledger
/// shared with other tasks goes to [`audit_shared`] instead.
///
/// # Errors
///
/// Only when no Region can be audited at all: no Region was asked and `DescribeRegions` failed
/// ([`AuditError::Regions`]) or listed none. Failures in one Region or of one deletion are in the
/// report.
pub async fn audit<C: Cloud>(
    guard: &Guard<C>,
    ledger: Option<&mut Ledger>,
    ledger_problem: Option<String>,
    regions: &[Region],
    opts: &AuditOptions,
) -> Result<AuditReport, AuditError> {
    let access = match ledger {
        Some(l) => ledger_view::Access::Direct(l),
        None => ledger_view::Access::None,
    };
    audit_with(guard, access, ledger_problem, regions, opts).await
}

/// [`audit`] with a ledger shared behind a mutex (the daemon's): locked only to read it at the
/// start and to record each deletion, never across a cloud call.
///
/// # Errors
///
/// As [`audit`].
pub async fn audit_shared<C: Cloud>(
    guard: &Guard<C>,
    ledger: &Mutex<Ledger>,
    regions: &[Region],
    opts: &AuditOptions,
) -> Result<AuditReport, AuditError> {
    audit_with(guard, ledger_view::Access::Shared(ledger), None, regions, opts).await
}

async fn audit_with<C: Cloud>(
    guard: &Guard<C>,
    mut ledger: ledger_view::Access<'_>,
    ledger_problem: Option<String>,
    regions: &[Region],
    opts: &AuditOptions,
) -> Result<AuditReport, AuditError> {
    let account = guard.policy().scope().account.clone();
    let view = ledger.with(|l| ledger_view::LedgerState::load(l)).unwrap_or_else(|| {
        ledger_view::LedgerState::Unavailable(ledger_problem.unwrap_or_else(|| "no ledger was given".to_owned()))
    });
    let mut report = AuditReport {
        account: account.clone(),
        now: opts.now,
        grace: opts.grace,
        delete: opts.delete,
        include_foreign: opts.include_foreign,
        regions_audited: Vec::new(),
        regions_skipped: Vec::new(),
        resources: Vec::new(),
        ledger_note: view.note().map(|n| format!("{n}; classifying from tags alone")),
        listing_errors: Vec::new(),
        warnings: Vec::new(),
    };
    let (to_audit, skipped, warnings) = resolve_regions(guard, regions, &opts.retry).await?;
    report.regions_skipped.extend(skipped);
    report.warnings.extend(warnings);

    let mut listed = Vec::new();
    for region in &to_audit {
        match list::list_region(guard, region, &account, &view, &opts.retry).await {
            Ok(mut out) => {
                report.listing_errors.append(&mut out.errors);
                listed.append(&mut out.items);
                report.regions_audited.push(region.clone());
            }
            Err(e) => {
                let reason = if is_opt_in(&e) {
                    SkipReason::NotEnabled(format!(
                        "the Region refused the credentials (not enabled for the account, or the credentials are not \
                         valid there): {e}"
                    ))
                } else {
                    SkipReason::ListingFailed(e.to_string())
                };
                report.regions_skipped.push(SkippedRegion { region: region.clone(), reason });
            }
        }
    }
    let grants = list::list_grants(guard, &report.regions_audited, &listed, &view, &opts.retry).await;
    report.listing_errors.extend(grants.errors);
    listed.extend(grants.items);

    let mut items = classify::classify_all(listed, &view, opts);
    if opts.delete {
        for region in report.regions_audited.clone() {
            delete::delete_region(guard, &region, &mut items, &mut ledger, opts, &mut report.warnings).await;
        }
    }
    items.sort_by(|a, b| {
        (&a.found.region, delete::order(a.found.kind), a.found.id.to_stored()).cmp(&(
            &b.found.region,
            delete::order(b.found.kind),
            b.found.id.to_stored(),
        ))
    });
    report.resources = items.into_iter().map(|i| i.found).collect();
    Ok(report)
}

/// `OptInRequired` (a Region not enabled) or `AuthFailure` from a Region's endpoint.
fn is_opt_in(e: &crate::cloud::CloudError) -> bool {
    matches!(e.code(), Some("OptInRequired" | "AuthFailure"))
}

/// The Regions to audit, the asked ones that are not enabled, and warnings.
async fn resolve_regions<C: Cloud>(
    guard: &Guard<C>,
    asked: &[Region],
    retry: &RetryPolicy,
) -> Result<(Vec<Region>, Vec<SkippedRegion>, Vec<String>), AuditError> {
    let home: Vec<Region> = if asked.is_empty() {
        vec![DEFAULT_HOME_REGION.parse().map_err(AuditError::HomeRegion)?]
    } else {
        asked.to_vec()
    };
    let mut last_err = None;
    let mut enabled = None;
    for h in &home {
        match crate::cloud::retry::retry_with(retry, crate::cloud::retry::Retry::Teardown, "DescribeRegions", || {
            guard.describe_regions(h, &Empty)
        })
        .await
        {
            Ok(list) => {
                enabled = Some(list);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some(enabled) = enabled else {
        return match (asked.is_empty(), last_err) {
            (true, Some(source)) => Err(AuditError::Regions { source: Box::new(source) }),
            (true, None) => Err(AuditError::NoRegions),
            (false, e) => Ok((
                asked.to_vec(),
                Vec::new(),
                vec![format!(
                    "could not list the account's Regions ({}); auditing the Regions asked without checking them",
                    e.map(|e| e.to_string()).unwrap_or_default()
                )],
            )),
        };
    };
    let is_enabled = |status: &str| status != "not-opted-in";
    if asked.is_empty() {
        let regions: Vec<Region> =
            enabled.into_iter().filter(|r| is_enabled(&r.opt_in_status)).map(|r| r.region).collect();
        if regions.is_empty() {
            return Err(AuditError::NoRegions);
        }
        return Ok((regions, Vec::new(), Vec::new()));
    }
    let mut audit = Vec::new();
    let mut skipped = Vec::new();
    for r in asked {
        match enabled.iter().find(|i| &i.region == r) {
            Some(info) if is_enabled(&info.opt_in_status) => {
                if !audit.contains(r) {
                    audit.push(r.clone());
                }
            }
            Some(info) => skipped.push(SkippedRegion {
                region: r.clone(),
                reason: SkipReason::NotEnabled(format!(
                    "the account has not opted in to {r} (opt-in status {})",
                    info.opt_in_status
                )),
            }),
            None => skipped.push(SkippedRegion {
                region: r.clone(),
                reason: SkipReason::NotEnabled(format!("{r} is not among the account's enabled Regions")),
            }),
        }
    }
    Ok((audit, skipped, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::sim::{Fleet, SimCloud};
    use crate::cloud::{GuardPolicy, GuardRules};

    fn assert_send<T: Send>(_: &T) {}

    /// The daemon spawns audits on the runtime: the future must be `Send`.
    #[test]
    fn the_audit_future_is_send() {
        let sim = SimCloud::in_memory(&Fleet::empty(
            "111122223333".parse().expect("account"),
            vec!["us-east-1".parse().expect("region")],
        ))
        .expect("sim");
        let guard =
            Guard::new(sim.clone(), GuardPolicy::new(sim.policies().to_vec(), sim.scope(), GuardRules::default()));
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        let opts = AuditOptions::new(Timestamp::UNIX_EPOCH);
        let fut = audit(&guard, Some(&mut ledger), None, &[], &opts);
        assert_send(&fut);
        drop(fut);
        let shared = Mutex::new(ledger);
        let fut = audit_shared(&guard, &shared, &[], &opts);
        assert_send(&fut);
    }
}
