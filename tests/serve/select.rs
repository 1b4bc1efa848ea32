//! The daemon's target selectors that a job's own discovery cannot express (explicit instances,
//! other states, exclusions) are resolved to instance ids per (account, Region) before the job is
//! created. An explicit list naming an instance the Region does not have (terminated and gone, a
//! typo, or one of another Region) must not cost the Region its scan: found first against moto
//! (`tests/serve/moto.rs`), where `InvalidInstanceID.NotFound` for one id of the list failed the
//! whole `DescribeInstances` and no job was created, on the simulated account here (it answers as
//! EC2 does).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use super::{IN_PROCESS_TOKEN, in_process_config, sim_daemon};
use crate::util::policy_guard;
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::{AccountId, Region};
use agentless::ledger::{JobState, TargetStatus};

/// Two running instances in us-east-1, one in us-west-2, one synthetic volume each.
const FLEET: &str = r#"
seed = 7
[latencies]
snapshot_base_ms = 2000
snapshot_ms_per_used_gib = 100
instance_boot_ms = 3000
instance_shutdown_ms = 2000
[[accounts]]
id = "111122223333"
user = "agentless-scanner"
regions = ["us-east-1", "us-west-2"]
[[accounts.instances]]
region = "us-east-1"
instance_type = "t3.small"
tags = { Name = "east-0" }
[[accounts.instances.volumes]]
size_gib = 8
used_gib = 2
[[accounts.instances]]
region = "us-east-1"
instance_type = "t3.small"
tags = { Name = "east-1" }
[[accounts.instances.volumes]]
size_gib = 8
used_gib = 2
[[accounts.instances]]
region = "us-west-2"
instance_type = "t3.small"
tags = { Name = "west-0" }
[[accounts.instances.volumes]]
size_gib = 8
used_gib = 2
"#;

/// The daemon's tables after [`in_process_config`]'s.
const CONFIG: &str = r#"
[scanner]
poll = "1s"
"#;

/// An instance id no account has (the shape of a terminated instance EC2 no longer lists).
const GONE: &str = "i-0123456789abcdef0";

#[tokio::test(start_paused = true)]
async fn an_explicit_instance_list_with_an_unknown_id_still_scans_the_others_in_each_region() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = Fleet::parse(FLEET).expect("fleet");
    let world = SimCloud::in_memory(&fleet).expect("sim");
    let config = in_process_config(r#"["us-east-1", "us-west-2"]"#, CONFIG);
    let account: AccountId = "111122223333".parse().expect("account");
    let east: Region = "us-east-1".parse().expect("region");
    let west: Region = "us-west-2".parse().expect("region");
    let regions = vec![east.clone(), west.clone()];
    world.install_scanner_image(&regions).expect("image");
    // Name -> (Region, id).
    let ids: BTreeMap<String, (Region, String)> = world.inspect(|w| {
        let mut out = BTreeMap::new();
        for (region, r) in &w.accounts[&account].regions {
            for (id, i) in &r.instances {
                if let Some(name) = i.tags.name() {
                    out.insert(name.to_owned(), (region.clone(), id.to_string()));
                }
            }
        }
        out
    });
    let guard = policy_guard(&world).without_trace();
    let running = sim_daemon(
        &world,
        guard,
        config,
        dir.path(),
        regions.clone(),
        Arc::new(agentless::api::metrics::Metrics::new()),
    );
    let (daemon, ledger) = (&running.daemon, &running.ledger);
    let api = daemon.api_state(IN_PROCESS_TOKEN);

    // east-0 (us-east-1), west-0 (us-west-2) and an id neither Region has.
    let named = [ids["east-0"].1.as_str(), ids["west-0"].1.as_str(), GONE];
    let req: agentless::api::ScanRequest =
        serde_json::from_value(serde_json::json!({ "targets": { "instances": named } })).expect("request");
    let accepted = api.scans.scan(req).await.expect("scan");
    assert_eq!(accepted.jobs.len(), 2, "one job per Region: {accepted:?}");

    let started = tokio::time::Instant::now();
    while daemon.active_jobs() > 0 {
        assert!(started.elapsed() < Duration::from_secs(3600), "jobs still running after an hour of virtual time");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let l = ledger.lock().expect("lock");
    let mut scanned: BTreeMap<Region, BTreeSet<String>> = BTreeMap::new();
    for job in &accepted.jobs {
        let record = l.job(job).expect("job").expect("known");
        assert_eq!(record.state, JobState::Done, "{job}: {:?}", record.error);
        for t in l.targets(job).expect("targets") {
            assert_eq!(t.status, TargetStatus::Scanned, "{job} {}: {:?}", t.instance, t.error);
            scanned.entry(record.region.clone()).or_default().insert(t.instance.to_string());
        }
    }
    let want: BTreeMap<Region, BTreeSet<String>> =
        [(east, BTreeSet::from([ids["east-0"].1.clone()])), (west, BTreeSet::from([ids["west-0"].1.clone()]))]
            .into_iter()
            .collect();
    assert_eq!(scanned, want, "east-1 is not named; {GONE} is nowhere");
}
