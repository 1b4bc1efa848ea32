//! Bad input: a customer resource named with our prefix (foreign, never
//! deleted without `--include-foreign`), throttling during the listing (retried; a listing that
//! stays throttled skips the Region and deletes nothing there), a Region that is not enabled, and
//! a ledger that is missing or damaged (the audit works from tags alone and says so).

use std::collections::BTreeMap;
use std::time::Duration;

use agentless::audit::{self, AuditOptions, Class, EXIT_CLEAN, EXIT_ERROR, SkipReason};
use agentless::cloud::Region;
use agentless::cloud::ops::*;
use agentless::cloud::sim::SimCloud;
use agentless::cloud::sim::faults::{Fault, Faults, Rates};
use agentless::cloud::tags::{self, Role};
use agentless::ledger::{self, JobState, ResourceId};
use jiff::SignedDuration;

use super::*;
use crate::conformance::{east, west};
use crate::sim::{account, customer, fleet};

const HOUR: Duration = Duration::from_secs(3600);

fn destructive(op: &str) -> bool {
    op.starts_with("Delete") || op == "TerminateInstances" || op == "RevokeGrant" || op == "DetachInternetGateway"
}

#[tokio::test(start_paused = true)]
async fn a_customer_resource_named_like_ours_is_foreign_and_kept() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let server = sim.setup(|s| s.instance(&customer("alibaba-cloud-security-scan-prod", &[8]))).expect("instance");
    let g = guard(&sim, false);
    let mut ledger = memory_ledger(&sim);
    pass(2 * HOUR).await;

    let r = run(&g, Some(&mut ledger), &opts(&sim, true)).await;
    assert_classes(&r, &[(server.as_str(), Class::Foreign)]);
    assert_eq!(r.resources.len(), 1, "its root volume has no tags: not ours, not listed");
    assert!(!g.trace().iter().any(|t| destructive(t.op)), "nothing was deleted");
    assert_eq!(r.exit_code(), EXIT_CLEAN, "foreign is not a leak");
    let running = sim.inspect(|w| {
        w.accounts[&account()].regions[&east()].instances[&server].life == agentless::cloud::sim::state::Life::Running
    });
    assert!(running);

    // --include-foreign without a guard that allows it: the guard refuses, and says how.
    let opts_foreign = AuditOptions { include_foreign: true, ..opts(&sim, true) };
    let r = run(&g, Some(&mut ledger), &opts_foreign).await;
    let f = entry(&r, server.as_str());
    assert!(!f.deleted && f.error.as_deref().is_some_and(|e| e.contains("refused by the policy guard")), "{f:#?}");
    assert!(f.action_needed.as_deref().is_some_and(|a| a.contains("--include-foreign")), "{f:#?}");

    // With both, it goes.
    let g = guard(&sim, true);
    let r = run(&g, Some(&mut ledger), &opts_foreign).await;
    assert!(entry(&r, server.as_str()).deleted);
    assert_eq!(r.exit_code(), EXIT_CLEAN);
}

#[tokio::test(start_paused = true)]
async fn throttling_during_the_listing_is_retried() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim, false);
    let mut ledger = memory_ledger(&sim);
    let left =
        leave_job(&sim, &g, Some(&mut ledger), &job_id("throttled"), sim_now(&sim) + SignedDuration::from_hours(1))
            .await;
    drive(&mut ledger, &left.job, JobState::Failed);
    pass(2 * HOUR).await;
    sim.set_faults(Faults::scheduled(
        9,
        [
            ("DescribeRegions", 1, Fault::Throttle),
            ("DescribeInstances", 1, Fault::Throttle),
            ("DescribeSnapshots", 2, Fault::Throttle),
            ("DescribeVpcs", 1, Fault::Throttle),
            ("DescribeVpcs", 2, Fault::Throttle),
            ("DescribeVpcs", 3, Fault::InternalError),
            ("ListGrants", 1, Fault::Throttle),
            ("DeleteSubnet", 1, Fault::Throttle),
        ],
    ))
    .expect("faults");

    let r = audit::audit(&g, Some(&mut ledger), None, &[], &opts(&sim, true)).await.expect("audit");
    assert_eq!(sim.fault_log().len(), 8, "{:?}", sim.fault_log());
    assert!(!r.incomplete(), "{:?} {:?}", r.regions_skipped, r.listing_errors);
    assert_eq!(r.regions_audited, vec![east(), west()]);
    for id in left.ids() {
        assert!(entry(&r, &id).deleted, "{id}");
    }
    assert_eq!(r.exit_code(), EXIT_CLEAN);
    assert!(ours_left(&sim).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_listing_that_stays_throttled_skips_the_region_and_deletes_nothing_there() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim, false);
    let left = leave_job(&sim, &g, None, &job_id("unknown-job"), sim_now(&sim) + SignedDuration::from_hours(1)).await;
    pass(3 * HOUR).await;
    sim.set_faults(Faults {
        actions: BTreeMap::from([("DescribeSubnets".to_owned(), Rates { throttle: 1.0, ..Rates::default() })]),
        ..Faults::default()
    })
    .expect("faults");
    g.take_trace();
    let r = audit::audit(&g, None, None, &[east()], &opts(&sim, true)).await.expect("audit");
    assert_eq!(r.regions_skipped.len(), 1, "{:?}", r.regions_skipped);
    let skipped = &r.regions_skipped[0];
    assert_eq!(skipped.region, east());
    assert!(
        matches!(&skipped.reason, SkipReason::ListingFailed(e) if e.contains("DescribeSubnets") && e.contains("RequestLimitExceeded")),
        "{:?}",
        skipped.reason
    );
    assert!(r.resources.is_empty());
    assert!(!g.trace().iter().any(|t| destructive(t.op)), "nothing deleted in a Region listed in part");
    assert_eq!(r.exit_code(), EXIT_ERROR);
    assert!(ours_left(&sim).len() >= left.ids().len() - 1);
}

#[tokio::test(start_paused = true)]
async fn a_region_that_is_not_enabled_is_skipped_and_reported() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim, false);
    let frankfurt: Region = "eu-central-1".parse().expect("region");
    let r = audit::audit(&g, None, Some("none here".into()), &[east(), frankfurt.clone()], &opts(&sim, false))
        .await
        .expect("audit");
    assert_eq!(r.regions_audited, vec![east()]);
    assert_eq!(r.regions_skipped.len(), 1);
    assert_eq!(r.regions_skipped[0].region, frankfurt);
    assert!(
        matches!(&r.regions_skipped[0].reason, SkipReason::NotEnabled(why) if why.contains("not among the account's enabled Regions")),
        "{:?}",
        r.regions_skipped
    );
    assert_eq!(r.exit_code(), EXIT_ERROR, "the audit asked for could not be done");

    // Only a Region that is not enabled: DescribeRegions fails there too; the Region is still
    // tried, and reported.
    let r = audit::audit(&g, None, None, std::slice::from_ref(&frankfurt), &opts(&sim, false)).await.expect("audit");
    assert!(r.regions_audited.is_empty());
    assert!(r.warnings.iter().any(|w| w.contains("could not list the account's Regions")), "{:?}", r.warnings);
    assert!(
        matches!(&r.regions_skipped[0].reason, SkipReason::NotEnabled(why) if why.contains("OptInRequired")),
        "{:?}",
        r.regions_skipped
    );
    assert_eq!(r.exit_code(), EXIT_ERROR);
}

#[tokio::test(start_paused = true)]
async fn without_a_ledger_the_audit_works_from_tags_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let (none, note) = audit::open_ledger(dir.path());
    assert!(none.is_none());
    let note = note.expect("why");
    assert!(note.contains("there is no ledger at") && note.contains(ledger::FILE_NAME), "{note}");
    assert!(!dir.path().join(ledger::FILE_NAME).exists(), "the audit does not create a ledger");

    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim, false);
    let start = sim_now(&sim);
    let expired = leave_job(&sim, &g, None, &job_id("expired"), start + SignedDuration::from_hours(1)).await;
    let t = tags::resource_tags(&job_id("not-yet"), Some(Role::VPC), start + SignedDuration::from_hours(10));
    let fresh = g.create_vpc(&east(), &CreateVpcInput { cidr_block: "10.9.0.0/16".into(), tags: t }).await;
    let fresh = fresh.expect("vpc").vpc_id;
    pass(Duration::from_secs(90 * 60)).await;

    // Expired 30 minutes ago: not yet older than the grace period (its age is at least that).
    let r = audit::audit(&g, None, Some(note.clone()), &[east()], &opts(&sim, false)).await.expect("audit");
    assert!(r.ledger_note.as_deref().is_some_and(|n| n.contains(&note) && n.contains("from tags alone")));
    assert_classes(&r, &[(expired.vpc.as_str(), Class::Active), (fresh.as_str(), Class::Active)]);
    let why = &entry(&r, expired.vpc.as_str()).reason;
    assert!(why.contains("(no ledger to ask)") && why.contains("expired 3") && why.contains("grace"), "{why}");
    assert!(entry(&r, fresh.as_str()).reason.contains("no ledger to ask"));

    pass(HOUR).await;
    let r = audit::audit(&g, None, Some(note.clone()), &[east()], &opts(&sim, true)).await.expect("audit");
    // Without the ledger, grants are found only on the keys of the snapshots listed; this
    // snapshot is unencrypted and the grant is on another key, so it is not found.
    for id in expired.ids().iter().filter(|id| **id != expired.grant.to_string()) {
        let f = entry(&r, id);
        assert!(f.class == Class::Leaked && f.deleted, "{f:#?}");
    }
    assert_classes(&r, &[(fresh.as_str(), Class::Active)]);
    assert!(r.resources.iter().all(|f| f.kind != agentless::ledger::ResourceKind::KmsGrant));
    assert_eq!(r.exit_code(), EXIT_CLEAN);
}

#[tokio::test(start_paused = true)]
async fn a_damaged_ledger_is_set_aside_and_said_so() {
    // Not a database at all.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join(ledger::FILE_NAME), b"this is not an SQLite file, not even close....")
        .expect("write");
    let (none, note) = audit::open_ledger(dir.path());
    assert!(none.is_none());
    assert!(note.as_deref().is_some_and(|n| n.contains("cannot be used")), "{note:?}");

    // A ledger whose rows were edited: it opens, but cannot be read; the job it would have said
    // is Done is judged from its tags instead.
    let dir = tempfile::tempdir().expect("dir");
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim, false);
    let job = job_id("damaged");
    let vpc = {
        let mut l = on_sim_clock(&sim, open_ledger(dir.path()));
        l.create_job(&job, &account(), &east(), &[]).expect("job");
        let t = tags::resource_tags(&job, Some(Role::VPC), sim_now(&sim) + SignedDuration::from_hours(10));
        let vpc = g.create_vpc(&east(), &CreateVpcInput { cidr_block: "10.9.0.0/16".into(), tags: t.clone() }).await;
        let vpc = vpc.expect("vpc").vpc_id;
        record(&mut l, &job, &east(), ResourceId::Vpc(vpc.clone()), &t);
        drive(&mut l, &job, JobState::Done);
        vpc
    };
    let raw = rusqlite::Connection::open(dir.path().join(ledger::FILE_NAME)).expect("raw");
    raw.execute("UPDATE jobs SET state = 'Exploded'", []).expect("damage");
    drop(raw);
    pass(2 * HOUR).await;
    let (mut l, problem) = audit::open_ledger(dir.path());
    assert!(problem.is_none(), "it opens");
    let r = audit::audit(&g, l.as_mut(), None, &[east()], &opts(&sim, true)).await.expect("audit");
    let note = r.ledger_note.as_deref().expect("said so");
    assert!(note.contains("damaged") && note.contains("Exploded") && note.contains("from tags alone"), "{note}");
    let f = entry(&r, vpc.as_str());
    assert_eq!(f.class, Class::Active, "no ledger to say the job is over, and not expired: kept");
    assert!(!f.deleted);
}

/// An error of the guard is not a leak of ours: a Region the credentials cannot describe.
#[tokio::test(start_paused = true)]
async fn a_denied_listing_is_an_error_not_a_clean_audit() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let policy = agentless::policy::Policy::parse(
        "describe-regions-only",
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeRegions", "Resource": "*"}]}"#,
    )
    .expect("policy");
    let g = sim_guard_with(&sim, vec![policy], GuardRules::default());
    let r = audit::audit(&g, None, None, &[east()], &opts(&sim, false)).await.expect("audit");
    assert!(
        matches!(&r.regions_skipped[0].reason, SkipReason::ListingFailed(e) if e.contains("refused by the policy guard")),
        "{:?}",
        r.regions_skipped
    );
    assert_eq!(r.exit_code(), EXIT_ERROR);
}
