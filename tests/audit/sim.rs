//! The auditor on the simulated account: classification of every kind, deletion in dependency
//! order through the guard with every deletion in the ledger, the grace period and the expiry, and
//! a killed scan cleaned up from a reopened account and ledger.

use std::sync::Arc;
use std::time::Duration;

use agentless::audit::{self, AuditOptions, Class, EXIT_CLEAN, EXIT_LEAKS};
use agentless::cloud::ops::*;
use agentless::cloud::sim::SimCloud;
use agentless::cloud::tags::{self, Role, SnapshotSource};
use agentless::cloud::{Tags, VpcId};
use agentless::ledger::{JobState, Ledger, ResourceId, ResourceKind};
use jiff::SignedDuration;

use super::*;
use crate::conformance::east;
use crate::sim::{account, fleet};

const HOUR: Duration = Duration::from_secs(3600);

/// The account of the first two tests: job A (`Done`) left everything behind; job B is
/// `Scanning` with a VPC and a snapshot; a foreign VPC and snapshot carry our Name prefixes; two
/// more snapshots of A are stuck (one lost its Name, one every tag). Two hours later.
struct Scene {
    sim: SimCloud,
    g: agentless::cloud::Guard<SimCloud>,
    ledger: Ledger,
    a: Leftovers,
    b_vpc: VpcId,
    b_snapshot: String,
    foreign_vpc: String,
    foreign_snapshot: String,
    no_name: String,
    no_tags: String,
}

async fn scene() -> Scene {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim, false);
    let mut ledger = memory_ledger(&sim);
    let expires = sim_now(&sim) + SignedDuration::from_hours(6);
    let a = leave_job(&sim, &g, Some(&mut ledger), &job_id("job-a"), expires).await;
    drive(&mut ledger, &a.job, JobState::Done);

    // Job B, still scanning.
    let b = job_id("job-b");
    ledger.create_job(&b, &account(), &east(), &[]).expect("job b");
    drive(&mut ledger, &b, JobState::Scanning);
    let vt = tags::resource_tags(&b, Some(Role::VPC), expires);
    let b_vpc = g.create_vpc(&east(), &CreateVpcInput { cidr_block: "10.78.0.0/16".into(), tags: vt.clone() }).await;
    let b_vpc = b_vpc.expect("vpc").vpc_id;
    record(&mut ledger, &b, &east(), ResourceId::Vpc(b_vpc.clone()), &vt);
    let snap = |tags: Tags| {
        let g = &g;
        let volume = a_volume(&sim, &a);
        async move {
            g.create_snapshot(
                &east(),
                &CreateSnapshotInput { volume: Tagged::new(volume, Tags::new()), description: "x".into(), tags },
            )
            .await
            .expect("snapshot")
            .snapshot_id
        }
    };
    let vol = a_volume(&sim, &a);
    let st = |job| tags::snapshot_tags(job, SnapshotSource::Volume { instance: &a.instance, volume: &vol }, expires);
    let b_snapshot = snap(st(&b)).await;
    record(&mut ledger, &b, &east(), ResourceId::Snapshot(b_snapshot.clone()), &st(&b));

    // Foreign: our prefixes, no agentless:job (another tool, or a customer).
    let foreign_snapshot = snap(Tags::new().with("Name", "SAS_Agentless-made-by-another-tool").expect("tag")).await;
    let foreign_vpc = sim
        .setup(|s| {
            let w = s.world();
            let agentless::cloud::sim::state::World { accounts, prng, .. } = w;
            let r = accounts.get_mut(&account()).expect("account").regions.get_mut(&east()).expect("region");
            let tags = Tags::new().with("Name", "alibaba-cloud-security-scan-customer-prod").expect("tag");
            agentless::cloud::sim::network::insert_vpc(r, prng, "10.50.0.0/16", false, tags).map_err(|e| {
                agentless::cloud::sim::SimError::Fleet(agentless::cloud::sim::FleetError::Id {
                    key: "vpc".into(),
                    source: e,
                })
            })
        })
        .expect("foreign vpc");

    // Stuck: two more snapshots of job A; someone removes the Name of one and every tag of the other.
    let no_name = snap(st(&a.job)).await;
    record(&mut ledger, &a.job, &east(), ResourceId::Snapshot(no_name.clone()), &st(&a.job));
    let no_tags = snap(st(&a.job)).await;
    record(&mut ledger, &a.job, &east(), ResourceId::Snapshot(no_tags.clone()), &st(&a.job));
    retag(&sim, |r| {
        let s = r.snapshots.get_mut(&no_name).expect("snapshot");
        s.tags = without(&s.tags, "Name");
        r.snapshots.get_mut(&no_tags).expect("snapshot").tags = Tags::new();
    });

    pass(2 * HOUR).await;
    Scene {
        sim,
        g,
        ledger,
        a,
        b_vpc,
        b_snapshot: b_snapshot.to_string(),
        foreign_vpc: foreign_vpc.to_string(),
        foreign_snapshot: foreign_snapshot.to_string(),
        no_name: no_name.to_string(),
        no_tags: no_tags.to_string(),
    }
}

fn a_volume(sim: &SimCloud, a: &Leftovers) -> agentless::cloud::VolumeId {
    // The target's root volume (the customer instance the snapshot was taken of).
    sim.inspect(|w| {
        let r = &w.accounts[&account()].regions[&east()];
        r.snapshots[&a.snapshot].volume_id.clone().expect("source volume")
    })
}

#[tokio::test(start_paused = true)]
async fn dry_run_classifies_every_kind_and_changes_nothing() {
    let mut s = scene().await;
    let before = ours_left(&s.sim);
    s.g.take_trace();
    let r = run(&s.g, Some(&mut s.ledger), &opts(&s.sim, false)).await;

    let mut want: Vec<(String, Class)> = s.a.ids().into_iter().map(|id| (id, Class::Leaked)).collect();
    want.extend([
        (s.b_vpc.to_string(), Class::Active),
        (s.b_snapshot.clone(), Class::Active),
        (s.foreign_vpc.clone(), Class::Foreign),
        (s.foreign_snapshot.clone(), Class::Foreign),
        (s.no_name.clone(), Class::Stuck),
        (s.no_tags.clone(), Class::Stuck),
    ]);
    let want: Vec<(&str, Class)> = want.iter().map(|(i, c)| (i.as_str(), *c)).collect();
    assert_classes(&r, &want);
    assert_eq!(r.resources.len(), want.len(), "{:#?}", r.resources);

    // Why, in words.
    let vpc = entry(&r, s.a.vpc.as_str());
    assert_eq!(vpc.job.as_ref(), Some(&s.a.job));
    assert_eq!(vpc.job_state, Some(JobState::Done));
    assert!(vpc.reason.contains("job job-a is Done") && vpc.reason.contains("created 2h"), "{}", vpc.reason);
    assert!(entry(&r, s.b_vpc.as_str()).reason.contains("job job-b is Scanning"));
    let volume = entry(&r, s.a.scanner_volumes[1].as_str());
    assert!(volume.reason.contains("goes with instance"), "{}", volume.reason);
    let grant = entry(&r, s.a.grant.as_str());
    assert_eq!(
        (grant.kind, grant.name.as_deref()),
        (ResourceKind::KmsGrant, Some("alibaba-cloud-security-scan-job-a"))
    );
    let foreign = entry(&r, &s.foreign_vpc);
    assert!(foreign.reason.contains("--include-foreign") && foreign.action_needed.is_none(), "{foreign:#?}");
    let no_name = entry(&r, &s.no_name);
    let todo = no_name.action_needed.as_deref().expect("what to do");
    assert!(
        todo.contains(&format!(
            "aws ec2 create-tags --region us-east-1 --resources {} --tags Key=Name,Value=SAS_Agentless-job-a",
            s.no_name
        )) && todo.contains(&format!("aws ec2 delete-snapshot --region us-east-1 --snapshot-id {}", s.no_name)),
        "{todo}"
    );
    let no_tags = entry(&r, &s.no_tags);
    assert_eq!(no_tags.job.as_ref(), Some(&s.a.job), "found through the ledger");
    assert!(no_tags.action_needed.as_deref().is_some_and(|t| t.contains("Key=agentless:job,Value=job-a")));

    // A dry run: nothing deleted, and only reads were sent.
    assert!(r.resources.iter().all(|f| !f.deleted));
    assert_eq!((r.leaks_remaining(), r.exit_code()), (12, EXIT_LEAKS));
    for t in s.g.trace() {
        assert!(t.op.starts_with("Describe") || t.op == "ListGrants", "a dry run sent {} ({:?})", t.op, t.violations);
    }
    assert_eq!(ours_left(&s.sim), before, "nothing changed");
}

#[tokio::test(start_paused = true)]
async fn delete_removes_the_leaks_in_dependency_order_and_records_each() {
    let mut s = scene().await;
    s.g.take_trace();
    let r = run(&s.g, Some(&mut s.ledger), &opts(&s.sim, true)).await;

    for id in s.a.ids() {
        let f = entry(&r, &id);
        assert!(f.deleted && f.error.is_none(), "{f:#?}");
    }
    // Stuck resources are left for a person; active and foreign ones are not touched.
    for id in [&s.no_name, &s.no_tags] {
        assert!(!entry(&r, id).deleted);
    }
    assert_eq!((r.leaks_remaining(), r.exit_code()), (2, EXIT_LEAKS));

    // Dependency order, every call through the guard and allowed.
    let trace = s.g.trace();
    let first = |op: &str| trace.iter().position(|t| t.op == op).unwrap_or_else(|| panic!("no {op}"));
    let order = [
        "TerminateInstances",
        "DeleteVpcEndpoints",
        "DeleteSecurityGroup",
        "DeleteSubnet",
        "DetachInternetGateway",
        "DeleteInternetGateway",
        "DeleteVpc",
        "DeleteSnapshot",
        "RevokeGrant",
    ];
    for pair in order.windows(2) {
        assert!(first(pair[0]) < first(pair[1]), "{} before {}", pair[0], pair[1]);
    }
    assert!(trace.iter().all(|t| t.allowed), "{:?}", trace.iter().filter(|t| !t.allowed).collect::<Vec<_>>());

    // What is left in the account: B's, the foreign ones, the stuck ones; the grant is revoked.
    let mut left = ours_left(&s.sim);
    left.sort();
    let mut want = vec![
        format!("vpc {}", s.b_vpc),
        format!("snapshot {}", s.b_snapshot),
        format!("vpc {}", s.foreign_vpc),
        format!("snapshot {}", s.foreign_snapshot),
    ];
    want.sort();
    assert_eq!(left, want, "the stuck ones have no Name, so they are not counted here");
    let grants = s.sim.inspect(|w| w.accounts[&account()].regions[&east()].keys[s.a.key.key_id()].grants.len());
    assert_eq!(grants, 0);
    assert!(s.sim.inspect(|w| {
        let r = &w.accounts[&account()].regions[&east()];
        r.snapshots.contains_key(&s.no_name.parse().expect("id"))
            && r.snapshots.contains_key(&s.no_tags.parse().expect("id"))
    }));

    // The ledger: every deletion recorded; only the stuck snapshots are live for job A.
    let mut live_a = live(&s.ledger, &s.a.job);
    live_a.sort();
    let mut want = vec![(ResourceKind::Snapshot, s.no_name.clone()), (ResourceKind::Snapshot, s.no_tags.clone())];
    want.sort();
    assert_eq!(live_a, want);
    assert_eq!(live(&s.ledger, &job_id("job-b")).len(), 2, "the running job's resources are untouched");

    // Again: nothing more to delete, the same two stuck.
    let again = run(&s.g, Some(&mut s.ledger), &opts(&s.sim, true)).await;
    assert_eq!(again.of_class(Class::Leaked).count(), 0, "{:#?}", again.resources);
    assert_eq!(again.leaks_remaining(), 2);
}

/// Within the grace period a finished job's resources are kept; past its expiry a running job's
/// are leaks unless its process is known to be alive.
#[tokio::test(start_paused = true)]
async fn grace_period_and_expiry() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim, false);
    let mut ledger = memory_ledger(&sim);
    let done = job_id("done-just-now");
    ledger.create_job(&done, &account(), &east(), &[]).expect("job");
    let expires = sim_now(&sim) + SignedDuration::from_hours(3);
    let t = tags::resource_tags(&done, Some(Role::VPC), expires);
    let young = g.create_vpc(&east(), &CreateVpcInput { cidr_block: "10.1.0.0/16".into(), tags: t.clone() }).await;
    let young = young.expect("vpc").vpc_id;
    record(&mut ledger, &done, &east(), ResourceId::Vpc(young.clone()), &t);
    drive(&mut ledger, &done, JobState::Done);
    let running = job_id("still-running");
    ledger.create_job(&running, &account(), &east(), &[]).expect("job");
    drive(&mut ledger, &running, JobState::Launching);
    let t = tags::resource_tags(&running, Some(Role::VPC), expires);
    let late = g.create_vpc(&east(), &CreateVpcInput { cidr_block: "10.2.0.0/16".into(), tags: t.clone() }).await;
    let late = late.expect("vpc").vpc_id;
    record(&mut ledger, &running, &east(), ResourceId::Vpc(late.clone()), &t);

    pass(Duration::from_secs(600)).await;
    let r = run(&g, Some(&mut ledger), &opts(&sim, false)).await;
    assert_classes(&r, &[(young.as_str(), Class::Active), (late.as_str(), Class::Active)]);
    assert!(entry(&r, young.as_str()).reason.contains("within the grace period of 1h"), "{:#?}", r.resources);
    assert_eq!(r.exit_code(), EXIT_CLEAN);
    // --grace 5m.
    let r =
        run(&g, Some(&mut ledger), &AuditOptions { grace: SignedDuration::from_mins(5), ..opts(&sim, false) }).await;
    assert_classes(&r, &[(young.as_str(), Class::Leaked), (late.as_str(), Class::Active)]);

    // Three hours on: the running job's VPC is past its expiry. While its process is alive it is
    // never deleted (the job removes it; deleting from under it would fail its scan)...
    pass(3 * HOUR).await;
    let alive = AuditOptions { job_is_alive: Some(Arc::new(|_| true)), ..opts(&sim, true) };
    let r = run(&g, Some(&mut ledger), &alive).await;
    assert_classes(&r, &[(young.as_str(), Class::Leaked), (late.as_str(), Class::Active)]);
    assert!(entry(&r, late.as_str()).reason.contains("its process is alive, though past its"), "{:#?}", r.resources);
    assert!(entry(&r, young.as_str()).deleted && !entry(&r, late.as_str()).deleted);
    // ... and once its process is gone, or when the caller cannot tell, it is a leak.
    let r = run(&g, Some(&mut ledger), &opts(&sim, true)).await;
    assert_classes(&r, &[(late.as_str(), Class::Leaked)]);
    assert!(entry(&r, late.as_str()).reason.contains("still Launching in the ledger, but the resource is past its"));
    assert!(r.resources.iter().all(|f| f.deleted));
    assert_eq!(r.exit_code(), EXIT_CLEAN);
}

/// A scan killed mid-`Scanning` (SIGKILL: the process is gone, the account and the ledger stay in
/// the data directory): a new process opens both, and `audit --delete` leaves no resource of ours
/// and exits 0 — at once when the caller can tell the job's process is gone, otherwise once the
/// resources are past their expiry.
#[tokio::test(start_paused = true)]
async fn a_killed_scan_is_cleaned_up_from_the_reopened_account() {
    for know_dead in [true, false] {
        let dir = tempfile::tempdir().expect("dir");
        let expires;
        let left;
        {
            // The scan's process.
            let sim = SimCloud::open(dir.path(), &fleet()).expect("sim");
            let g = guard(&sim, false);
            let mut l = on_sim_clock(&sim, open_ledger(dir.path()));
            expires = sim_now(&sim) + SignedDuration::from_hours(4);
            left = leave_job(&sim, &g, Some(&mut l), &job_id("killed"), expires).await;
            drive(&mut l, &left.job, JobState::Scanning);
            // SIGKILL: nothing else runs.
        }
        // `agentless audit --cloud sim --delete` in a new process, two hours later.
        let sim = SimCloud::open(dir.path(), &fleet()).expect("reopened sim");
        pass(2 * HOUR).await;
        assert!(ours_left(&sim).len() >= left.ids().len() - 1, "the killed scan's resources are still there");
        let g = guard(&sim, false);
        let (ledger, problem) = audit::open_ledger(dir.path());
        let mut ledger = ledger.expect("the ledger is there");
        assert!(problem.is_none());
        let mut opts = opts(&sim, true);
        if know_dead {
            opts.job_is_alive = Some(Arc::new(|_| false));
        } else {
            let r = audit::audit(&g, Some(&mut ledger), None, &[], &opts).await.expect("audit");
            assert_eq!(r.of_class(Class::Active).count(), left.ids().len(), "the ledger says Scanning");
            assert_eq!(r.exit_code(), EXIT_CLEAN, "active is not a leak");
            pass(3 * HOUR).await;
            opts.now = sim_now(&sim);
        }
        // As the daemon would: the ledger shared behind a mutex.
        let shared = std::sync::Mutex::new(ledger);
        let r = audit::audit_shared(&g, &shared, &[], &opts).await.expect("audit");
        let ledger = shared.into_inner().expect("ledger");
        assert_eq!(r.regions_audited.len(), 2, "every enabled Region by default");
        let classes: Vec<(String, Class, &str)> =
            r.resources.iter().map(|f| (f.id.to_stored(), f.class, f.reason.as_str())).collect();
        assert_eq!(r.of_class(Class::Leaked).count(), left.ids().len(), "{classes:#?}");
        assert_eq!(r.exit_code(), EXIT_CLEAN, "{:#?}", r.resources);
        assert_eq!(ours_left(&sim), Vec::<String>::new());
        assert!(ledger.live_resources(&left.job).expect("live").is_empty());
        assert!(
            sim.inspect(|w| w.accounts[&account()].regions[&east()].keys[left.key.key_id()].grants.is_empty()),
            "the grant is revoked"
        );
        let _ = expires;
    }
}
