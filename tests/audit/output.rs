//! The report as a table grouped by job and Region, and as JSON; names from the account are
//! printed without their control characters.

use std::time::Duration;

use agentless::audit::report::{to_json, write_json, write_table};
use agentless::cloud::Tags;
use agentless::cloud::sim::SimCloud;
use agentless::ledger::JobState;
use jiff::SignedDuration;

use super::*;
use crate::conformance::east;
use crate::sim::{account, fleet};

#[tokio::test(start_paused = true)]
async fn table_and_json() {
    let sim = SimCloud::in_memory(&fleet()).expect("sim");
    let g = guard(&sim, false);
    let mut ledger = memory_ledger(&sim);
    let a =
        leave_job(&sim, &g, Some(&mut ledger), &job_id("job-a"), sim_now(&sim) + SignedDuration::from_hours(6)).await;
    drive(&mut ledger, &a.job, JobState::Done);
    // A foreign VPC whose name carries a terminal escape.
    let hostile = "alibaba-cloud-security-scan-\u{1b}[31mred\u{7}";
    sim.setup(|s| {
        let agentless::cloud::sim::state::World { accounts, prng, .. } = s.world();
        let r = accounts.get_mut(&account()).expect("account").regions.get_mut(&east()).expect("region");
        let tags = Tags::new().with("Name", hostile).expect("tag");
        agentless::cloud::sim::network::insert_vpc(r, prng, "10.50.0.0/16", false, tags).expect("vpc");
        Ok(())
    })
    .expect("setup");
    pass(Duration::from_secs(2 * 3600)).await;
    let r = run(&g, Some(&mut ledger), &opts(&sim, false)).await;

    let mut table = Vec::new();
    write_table(&r, &mut table).expect("table");
    let table = String::from_utf8(table).expect("utf-8");
    assert!(table.starts_with("agentless audit of account 444455556666 at "), "{table}");
    assert!(table.contains("(grace 1h, dry run)"), "{table}");
    assert!(table.contains("\njob job-a (Done in the ledger) in us-east-1\n"), "{table}");
    assert!(table.contains("\nno job in us-east-1\n"), "{table}");
    let header = table.lines().find(|l| l.contains("CLASS")).expect("header");
    for col in ["CLASS", "KIND", "ID", "NAME", "STATE", "RESULT"] {
        assert!(header.contains(col), "{header}");
    }
    let vpc_line = table.lines().find(|l| l.contains(a.vpc.as_str())).expect("the VPC's row");
    assert!(vpc_line.contains("leaked") && vpc_line.contains("vpc") && vpc_line.contains("would delete"), "{vpc_line}");
    assert!(table.contains("      why: job job-a is Done; created 2h"), "{table}");
    assert!(table.contains("foreign"), "{table}");
    assert!(!table.contains('\u{1b}') && !table.contains('\u{7}'), "control characters are replaced");
    assert!(table.contains("alibaba-cloud-security-scan-?[31mred?"), "{table}");
    assert!(
        table.contains("11 found: 0 active, 10 leaked, 1 foreign, 0 stuck; 0 deleted; leaks remaining: 10"),
        "{table}"
    );
    assert!(table.trim_end().ends_with("exit status 1"), "{table}");
    // The leaked group comes before the job-less one, and within a Region the deletion order.
    let pos = |s: &str| table.find(s).unwrap_or_else(|| panic!("{s} not in {table}"));
    assert!(pos("job job-a") < pos("no job in"));
    assert!(pos(a.instance.as_str()) < pos(a.endpoint.as_str()) && pos(a.vpc.as_str()) < pos(a.snapshot.as_str()));

    let mut json = Vec::new();
    write_json(&r, &mut json).expect("json");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert_eq!(v, to_json(&r));
    assert_eq!(v["account"], "444455556666");
    assert_eq!(v["mode"], "dry-run");
    assert_eq!(v["grace_seconds"], 3600);
    assert_eq!(v["ledger"]["used"], true);
    assert_eq!(v["summary"]["leaked"], 10);
    assert_eq!(v["summary"]["leaks_remaining"], 10);
    assert_eq!(v["exit_code"], 1);
    let resources = v["resources"].as_array().expect("resources");
    let vpc = resources.iter().find(|x| x["id"] == a.vpc.as_str()).expect("vpc");
    assert_eq!(vpc["class"], "leaked");
    assert_eq!(vpc["kind"], "vpc");
    assert_eq!(vpc["job"], "job-a");
    assert_eq!(vpc["job_state"], "Done");
    assert_eq!(vpc["tags"]["agentless:job"], "job-a");
    let foreign = resources.iter().find(|x| x["class"] == "foreign").expect("foreign");
    assert_eq!(foreign["name"], hostile, "JSON keeps the value, escaped");
    let grant = resources.iter().find(|x| x["kind"] == "kms-grant").expect("grant");
    assert_eq!(grant["id"], format!("{}#{}", a.key, a.grant));
}
