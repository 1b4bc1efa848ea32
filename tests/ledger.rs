//! The durable ledger: the transition rule over every pair of states, the
//! intent protocol, durability across a crash, WAL, schema versions, concurrent access, and damaged
//! files read back as errors, not panics.

use std::path::Path;
use std::time::Duration;

use agentless::cloud::tags::{self, Tags};
use agentless::cloud::{AccountId, InstanceId, JobId, Region};
use agentless::ledger::{
    DeleteOutcome, EventKind, JobState, Ledger, LedgerError, ResourceId, ResourceKind, ResourceState, TargetStatus,
    can_transition,
};

fn job(s: &str) -> JobId {
    s.parse().expect("job id")
}

fn account() -> AccountId {
    "111122223333".parse().expect("account")
}

fn region() -> Region {
    "us-east-1".parse().expect("region")
}

fn instance(n: u32) -> InstanceId {
    format!("i-{n:017x}").parse().expect("instance id")
}

fn id(kind: ResourceKind, n: u32) -> ResourceId {
    let prefix = match kind {
        ResourceKind::Snapshot => "snap",
        ResourceKind::Vpc => "vpc",
        ResourceKind::Subnet => "subnet",
        ResourceKind::Instance => "i",
        ResourceKind::SecurityGroup => "sg",
        ResourceKind::InternetGateway => "igw",
        other => panic!("no test id for {other}"),
    };
    ResourceId::parse(kind, &format!("{prefix}-{n:017x}")).expect("resource id")
}

fn job_tags(job: &JobId) -> Tags {
    Tags::from_pairs([(tags::NAME, format!("alibaba-cloud-security-scan-{job}")), (tags::JOB, job.to_string())])
        .expect("tags")
}

/// The path from `Planned` to `state` through allowed transitions.
fn path_to(state: JobState) -> Vec<JobState> {
    let mut path = Vec::new();
    let mut at = JobState::Planned;
    while at != state {
        let next = match at.next() {
            Some(next) => next,
            None => state, // TearingDown -> the terminal state asked for
        };
        path.push(next);
        at = next;
    }
    path
}

/// The rule, restated independently of `can_transition`: states by position on the forward path.
fn expected(from: JobState, to: JobState) -> bool {
    let pos = |s: JobState| JobState::ALL.iter().position(|x| *x == s).expect("listed");
    let tearing_down = pos(JobState::TearingDown);
    let (f, t) = (pos(from), pos(to));
    let early = f < tearing_down && (t == f + 1 || to == JobState::TearingDown);
    early || (f == tearing_down && t > f)
}

#[test]
fn transition_rule_over_every_pair() {
    let mut allowed = 0;
    for from in JobState::ALL {
        for to in JobState::ALL {
            assert_eq!(can_transition(from, to), expected(from, to), "{from} -> {to}");
            allowed += usize::from(can_transition(from, to));
        }
        assert_eq!(from.as_str().parse::<JobState>(), Ok(from));
    }
    // 8 forward steps (Collecting -> TearingDown among them), 7 more early teardowns, 3 ends.
    assert_eq!(allowed, 18);
    for terminal in [JobState::Done, JobState::Failed, JobState::Cancelled] {
        assert!(JobState::ALL.iter().all(|to| !can_transition(terminal, *to)), "{terminal} is final");
    }
}

#[test]
fn ledger_transition_checks_and_persists_every_pair() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    for (i, from) in JobState::ALL.into_iter().enumerate() {
        for (j, to) in JobState::ALL.into_iter().enumerate() {
            let job = job(&format!("j-{i}-{j}"));
            ledger.create_job(&job, &account(), &region(), &[]).expect("create");
            for step in path_to(from) {
                ledger.transition(&job, step).expect("path");
            }
            let events_before = ledger.events(&job).expect("events").len();
            let result = ledger.transition(&job, to);
            let events_after = ledger.events(&job).expect("events");
            if can_transition(from, to) {
                result.expect("allowed");
                assert_eq!(ledger.job_state(&job).expect("state"), Some(to));
                assert_eq!(events_after.len(), events_before + 1);
                let last = events_after.last().expect("an event");
                assert_eq!(last.kind, EventKind::Transition);
                assert_eq!(last.detail, serde_json::json!({ "from": from.as_str(), "to": to.as_str() }));
            } else {
                match result {
                    Err(LedgerError::Transition { job: j, from: f, to: t }) => {
                        assert_eq!((j, f, t), (job.clone(), from, to));
                    }
                    other => panic!("{from} -> {to}: {other:?}"),
                }
                assert_eq!(ledger.job_state(&job).expect("state"), Some(from), "nothing written");
                assert_eq!(events_after.len(), events_before, "no event");
            }
        }
    }
    let e = ledger.transition(&job("nope"), JobState::Discovering).expect_err("unknown job");
    assert_eq!(e.to_string(), "job nope is not in the ledger");
    let e = ledger.transition(&job("j-9-0"), JobState::Planned).expect_err("out of Done");
    assert_eq!(e.to_string(), "job j-9-0: the transition Done -> Planned is not allowed");
}

#[test]
fn survives_a_crash_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let j = job("20260315-crash");
    let (created, pending) = {
        let mut ledger = Ledger::open(&data).expect("open");
        ledger.create_job(&j, &account(), &region(), &[instance(1), instance(2)]).expect("create");
        ledger.transition(&j, JobState::Discovering).expect("t");
        ledger.transition(&j, JobState::Snapshotting).expect("t");
        let vpc = ledger.record_intent(&j, ResourceKind::Vpc, &region(), Some("tok-vpc"), &job_tags(&j)).expect("i");
        ledger.record_created(vpc, &id(ResourceKind::Vpc, 1)).expect("created");
        let snap = ledger.record_intent(&j, ResourceKind::Snapshot, &region(), None, &job_tags(&j)).expect("i");
        ledger.set_target_status(&j, &instance(1), TargetStatus::Snapshotted, None).expect("target");
        let other = job("20260315-done");
        ledger.create_job(&other, &account(), &region(), &[]).expect("create");
        ledger.transition(&other, JobState::TearingDown).expect("t");
        ledger.transition(&other, JobState::Cancelled).expect("t");
        // The crash: no close, no WAL checkpoint, no destructor.
        std::mem::forget(ledger);
        (vpc, snap)
    };
    assert!(data.join("ledger.sqlite3").exists());
    let ledger = Ledger::open(&data).expect("reopen");
    let unfinished = ledger.unfinished_jobs().expect("unfinished");
    assert_eq!(unfinished.len(), 1, "{unfinished:?}");
    assert_eq!(unfinished[0].id, j);
    assert_eq!(unfinished[0].state, JobState::Snapshotting);
    assert_eq!((&unfinished[0].account, &unfinished[0].region), (&account(), &region()));
    let unresolved = ledger.unresolved_intents(&j).expect("intents");
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0].intent, pending);
    assert_eq!(unresolved[0].kind, ResourceKind::Snapshot);
    assert_eq!(unresolved[0].id, None);
    assert_eq!(unresolved[0].tags, job_tags(&j), "the tag to find it by survives");
    let live = ledger.live_resources(&j).expect("live");
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].intent, live[0].id.clone()), (created, Some(id(ResourceKind::Vpc, 1))));
    assert_eq!(ledger.resource_by_token("tok-vpc").expect("token").map(|r| r.intent), Some(created));
    let targets = ledger.targets(&j).expect("targets");
    assert_eq!(
        targets.iter().map(|t| t.status).collect::<Vec<_>>(),
        [TargetStatus::Snapshotted, TargetStatus::Pending]
    );
    assert_eq!(ledger.jobs_by_state(JobState::Cancelled).expect("by state").len(), 1);
}

#[test]
fn intent_created_deleted_lifecycle() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let j = job("life");
    ledger.create_job(&j, &account(), &region(), &[]).expect("create");
    let sg = id(ResourceKind::SecurityGroup, 7);
    let intent =
        ledger.record_intent(&j, ResourceKind::SecurityGroup, &region(), Some("t-1"), &job_tags(&j)).expect("i");
    assert_eq!(ledger.unresolved_intents(&j).expect("u").len(), 1);
    assert!(ledger.live_resources(&j).expect("live").is_empty(), "an intent is not live");

    // Wrong kind, then the right id (twice: a retry after a crash is a no-op).
    let e = ledger.record_created(intent, &id(ResourceKind::Vpc, 7)).expect_err("kind");
    assert!(matches!(e, LedgerError::KindMismatch { .. }), "{e}");
    assert!(e.to_string().contains("is for a security-group"), "{e}");
    ledger.record_created(intent, &sg).expect("created");
    ledger.record_created(intent, &sg).expect("same id again");
    let e = ledger.record_created(intent, &id(ResourceKind::SecurityGroup, 8)).expect_err("other id");
    assert!(matches!(e, LedgerError::IntentResolved { .. }), "{e}");
    assert!(ledger.unresolved_intents(&j).expect("u").is_empty());

    // The same resource cannot be adopted by a second intent, nor a token reused.
    let second = ledger.record_intent(&j, ResourceKind::SecurityGroup, &region(), None, &Tags::new()).expect("i");
    let e = ledger.record_created(second, &sg).expect_err("duplicate");
    assert!(matches!(e, LedgerError::ResourceExists { intent: i, .. } if i == intent), "{e}");
    let e = ledger.record_intent(&j, ResourceKind::Vpc, &region(), Some("t-1"), &Tags::new()).expect_err("token");
    assert!(matches!(e, LedgerError::TokenExists { .. }), "{e}");
    ledger.record_not_created(second).expect("never created");
    ledger.record_not_created(second).expect("again");

    let live = ledger.live_resources(&j).expect("live");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].state, ResourceState::Created);
    assert_eq!(ledger.resource(&region(), &sg).expect("lookup").map(|r| r.job), Some(j.clone()));

    assert_eq!(
        ledger.record_deleted(&region(), &sg).expect("delete"),
        DeleteOutcome::Recorded { job: j.clone(), intent }
    );
    assert_eq!(
        ledger.record_deleted(&region(), &sg).expect("again"),
        DeleteOutcome::AlreadyDeleted { job: j.clone(), intent }
    );
    let other_region: Region = "eu-west-1".parse().expect("region");
    assert_eq!(ledger.record_deleted(&other_region, &sg).expect("unknown"), DeleteOutcome::NotInLedger);
    assert!(ledger.live_resources(&j).expect("live").is_empty());
    let e = ledger.record_created(intent, &sg).expect_err("deleted");
    assert!(matches!(e, LedgerError::IntentResolved { state: ResourceState::Deleted, .. }), "{e}");

    let all = ledger.all_resources_of_kind(ResourceKind::SecurityGroup, Some(&region())).expect("all");
    assert_eq!(all.iter().map(|r| r.state).collect::<Vec<_>>(), [ResourceState::Deleted, ResourceState::Deleted]);
    assert!(all[0].deleted_at.is_some());
    assert!(ledger.all_resources_of_kind(ResourceKind::SecurityGroup, Some(&other_region)).expect("none").is_empty());

    let kinds: Vec<EventKind> = ledger.events(&j).expect("events").into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::JobCreated,
            EventKind::Intent,
            EventKind::Created,
            EventKind::Intent,
            EventKind::NotCreated,
            EventKind::Deleted
        ]
    );
    let e = ledger.record_intent(&job("ghost"), ResourceKind::Vpc, &region(), None, &Tags::new()).expect_err("job");
    assert!(matches!(e, LedgerError::UnknownJob { .. }), "{e}");
}

#[test]
fn live_resources_come_back_in_reverse_creation_order() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let j = job("order");
    ledger.create_job(&j, &account(), &region(), &[]).expect("create");
    let order = [
        id(ResourceKind::Snapshot, 1),
        id(ResourceKind::Vpc, 2),
        id(ResourceKind::Subnet, 3),
        id(ResourceKind::InternetGateway, 4),
        id(ResourceKind::SecurityGroup, 5),
        id(ResourceKind::Instance, 6),
    ];
    for rid in &order {
        let intent = ledger.record_intent(&j, rid.kind(), &region(), None, &job_tags(&j)).expect("intent");
        ledger.record_created(intent, rid).expect("created");
    }
    ledger.record_deleted(&region(), &order[3]).expect("igw gone");
    let live: Vec<ResourceId> = ledger.live_resources(&j).expect("live").into_iter().filter_map(|r| r.id).collect();
    let mut expected: Vec<ResourceId> = order.iter().filter(|r| **r != order[3]).cloned().collect();
    expected.reverse();
    assert_eq!(live, expected);
}

#[test]
fn file_ledger_is_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(dir.path()).expect("open");
    assert_eq!(ledger.journal_mode().expect("mode"), "wal");
    assert_eq!(ledger.schema_version().expect("version"), agentless::ledger::schema::SCHEMA_VERSION);
    assert_eq!(ledger.path(), Some(dir.path().join("ledger.sqlite3").as_path()));
    // WAL is persistent: another connection sees it too.
    let raw = rusqlite::Connection::open(dir.path().join("ledger.sqlite3")).expect("raw");
    let mode: String = raw.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("mode");
    assert_eq!(mode, "wal");
}

fn raw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("ledger.sqlite3")).expect("raw connection")
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    use agentless::ledger::schema::SCHEMA_VERSION;
    let newer = SCHEMA_VERSION + 1;
    let dir = tempfile::tempdir().expect("tempdir");
    raw(dir.path()).pragma_update(None, "user_version", newer).expect("newer version");
    let e = Ledger::open(dir.path()).expect_err("newer");
    assert!(
        matches!(e, LedgerError::NewerSchema { found, supported, .. } if found == newer && supported == SCHEMA_VERSION),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains(&format!("schema version {newer}, newer than the {SCHEMA_VERSION} this agentless knows")),
        "{e}"
    );
    let version: i64 = raw(dir.path()).pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
    assert_eq!(version, newer);
    // And an existing file of this version is opened as is.
    let dir = tempfile::tempdir().expect("tempdir");
    Ledger::open(dir.path()).expect("create").create_job(&job("keep"), &account(), &region(), &[]).expect("job");
    assert_eq!(Ledger::open(dir.path()).expect("reopen").job_state(&job("keep")).expect("s"), Some(JobState::Planned));
}

#[test]
fn readers_go_on_while_a_writer_holds_the_lock_and_writers_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = job("busy");
    let mut writer = Ledger::open(dir.path()).expect("open");
    writer.create_job(&j, &account(), &region(), &[]).expect("create");
    let reader = Ledger::open(dir.path()).expect("reader");
    let mut impatient = Ledger::open(dir.path()).expect("impatient");
    impatient.set_busy_timeout(Duration::ZERO).expect("timeout");

    // Another process holds a write transaction with an uncommitted change.
    let holder = raw(dir.path());
    holder.execute_batch("BEGIN IMMEDIATE; UPDATE jobs SET error = 'uncommitted';").expect("lock");

    // Readers are not blocked, and see the last committed state.
    assert_eq!(reader.job_state(&j).expect("read"), Some(JobState::Planned));
    assert_eq!(reader.unfinished_jobs().expect("read")[0].error, None);

    // A writer with no patience gets a clear error, not a panic, and writes nothing.
    let e = impatient.transition(&j, JobState::Discovering).expect_err("locked");
    assert!(e.to_string().contains("database is locked"), "{e}");

    // A writer with the default busy timeout waits for the lock and then succeeds.
    let waiting = std::thread::spawn(move || writer.transition(&j, JobState::Discovering).map(|()| writer));
    std::thread::sleep(Duration::from_millis(300));
    holder.execute_batch("COMMIT").expect("commit");
    let writer = waiting.join().expect("thread").expect("transition after the wait");
    let job = writer.job(&job("busy")).expect("read").expect("job");
    assert_eq!(job.state, JobState::Discovering);
    assert_eq!(job.error.as_deref(), Some("uncommitted"), "the holder's change committed first");
}

#[test]
fn damaged_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = job("damaged");
    let mut ledger = Ledger::open(dir.path()).expect("open");
    ledger.create_job(&j, &account(), &region(), &[instance(1)]).expect("create");
    let intent = ledger.record_intent(&j, ResourceKind::Vpc, &region(), None, &Tags::new()).expect("intent");
    ledger.record_created(intent, &id(ResourceKind::Vpc, 1)).expect("created");

    let raw = raw(dir.path());
    raw.execute("UPDATE jobs SET state = 'Exploded'", []).expect("damage");
    let e = ledger.job_state(&j).expect_err("unknown state");
    assert!(matches!(e, LedgerError::Corrupt { table: "jobs", column: "state", .. }), "{e}");
    assert!(
        e.to_string()
            .contains("the ledger is damaged: jobs row damaged, column state: \"Exploded\" is not a job state"),
        "{e}"
    );
    assert!(ledger.unfinished_jobs().is_err(), "a resume does not skip a damaged job silently");
    assert!(ledger.transition(&j, JobState::TearingDown).is_err());

    raw.execute("UPDATE resources SET resource_id = 'vpc-nothex!'", []).expect("damage");
    let e = ledger.live_resources(&j).expect_err("bad id");
    assert!(e.to_string().contains("column resource_id"), "{e}");
    raw.execute("UPDATE targets SET status = 'meh'", []).expect("damage");
    assert!(ledger.targets(&j).expect_err("bad status").to_string().contains("\"meh\" is not a target status"));
    raw.execute("UPDATE events SET at = 9223372036854775807", []).expect("damage");
    assert!(ledger.events(&j).expect_err("bad time").to_string().contains("column at"));

    // Not a database at all.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ledger.sqlite3"), b"this is not an SQLite file, not even close......").expect("w");
    let e = Ledger::open(dir.path()).expect_err("garbage");
    assert!(e.to_string().contains("cannot open the ledger"), "{e}");
}

#[test]
fn targets_have_their_own_status() {
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let j = job("targets");
    ledger.create_job(&j, &account(), &region(), &[instance(1)]).expect("create");
    assert_eq!(ledger.add_targets(&j, &[instance(1), instance(2)]).expect("add"), 1);
    ledger.set_target_status(&j, &instance(2), TargetStatus::Failed, Some("scanner never reported")).expect("s");
    let e = ledger.set_target_status(&j, &instance(3), TargetStatus::Scanned, None).expect_err("not a target");
    assert_eq!(e.to_string(), format!("job targets: instance {} is not one of its targets", instance(3)));
    let targets = ledger.targets(&j).expect("targets");
    assert_eq!(targets[1].status, TargetStatus::Failed);
    assert_eq!(targets[1].error.as_deref(), Some("scanner never reported"));
    ledger.record_job_error(&j, "boom").expect("error");
    ledger.note(&j, "hello", serde_json::json!({ "n": 1 })).expect("note");
    assert_eq!(ledger.job(&j).expect("job").expect("some").error.as_deref(), Some("boom"));
    assert_eq!(ledger.events(&j).expect("events").last().map(|e| e.kind), Some(EventKind::Note));
}

/// Every `open`/`openat` in an strace log that creates (`O_CREAT`) a file whose name starts with
/// `ledger.sqlite3`: (file name, requested mode), the first per name only (the one that created it
/// in a fresh directory; later ones open an existing file and do not change its mode).
fn creating_opens(log: &str) -> Vec<(String, u32)> {
    let mut seen: Vec<(String, u32)> = Vec::new();
    for line in log.lines() {
        if !line.contains("O_CREAT") {
            continue;
        }
        let Some(start) = line.find('"') else { continue };
        let Some(len) = line[start + 1..].find('"') else { continue };
        let path = &line[start + 1..start + 1 + len];
        let name = Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !name.starts_with(agentless::ledger::FILE_NAME) || seen.iter().any(|(n, _)| n == name) {
            continue;
        }
        // `..., O_RDWR|O_CREAT|O_CLOEXEC, 0644) = 3`: the mode is the last argument, in octal.
        let Some(args) = line.rsplit_once(')').map(|(a, _)| a) else { continue };
        let mode = args.rsplit(", ").next().and_then(|m| u32::from_str_radix(m.trim(), 8).ok());
        seen.push((name.to_owned(), mode.unwrap_or(u32::MAX)));
    }
    seen
}

#[test]
fn ledger_files_are_created_owner_only_under_a_permissive_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("strace.log");
    let strace = std::process::Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success());
    // umask 000: whatever mode a file is created with is the mode it gets, so a file SQLite creates
    // (0644) would be world-readable until chmodded.
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg("umask 000; exec \"$@\"").arg("sh");
    if strace {
        c.args(["strace", "-f", "-qq", "-e", "trace=open,openat,creat", "-o"]).arg(&log);
    } else {
        eprintln!("strace not found: only the final modes are checked, not the modes files were created with");
    }
    c.arg(env!("CARGO_BIN_EXE_agentless")).args(["jobs", "list", "--data-dir"]).arg(&data);
    c.env_remove("AGENTLESS_DATA_DIR").env("AGENTLESS_LOG", "warn");
    let out = c.output().expect("run agentless");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for entry in std::fs::read_dir(&data).expect("data dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(agentless::ledger::FILE_NAME) {
            let mode = entry.metadata().expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
        }
    }
    if strace {
        let text = std::fs::read_to_string(&log).expect("strace log");
        let created = creating_opens(&text);
        // The database and, in WAL mode, its -wal and -shm siblings.
        for want in ["", "-wal", "-shm"] {
            let name = format!("{}{want}", agentless::ledger::FILE_NAME);
            let got = created.iter().find(|(n, _)| *n == name);
            assert_eq!(got.map(|(_, m)| *m), Some(0o600), "{name} created with {got:?}; all: {created:?}");
        }
    }
}
