//! Crash safety: the process is SIGKILLed (`--crash-at STATE`) after the work of each state in
//! turn, then `agentless jobs resume` finishes the job: it ends `Done`, nothing of ours is left in
//! the simulated account, and every scannable volume has exactly one result.

use std::os::unix::process::ExitStatusExt;

use agentless::ledger::JobState;

use super::{leftovers, sim_command, summary_volumes};

fn crash_then_resume(state: JobState) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let out = sim_command(&["scan", "--all", "--region", "us-east-1", "--crash-at", state.as_str()], data)
        .output()
        .expect("run");
    assert_eq!(out.status.signal(), Some(9), "{state:?}: not killed: {}", String::from_utf8_lossy(&out.stderr));
    let ledger = agentless::ledger::Ledger::open(data).expect("ledger");
    let jobs = ledger.jobs().expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, state, "the ledger holds the state the process died in");
    let job = jobs[0].id.clone();
    drop(ledger);

    let out = sim_command(&["jobs", "resume", "--format", "json"], data).output().expect("resume");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{state:?}: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["jobs"][0]["state"], "Done", "{state:?}: {summary}");
    let volumes = summary_volumes(&summary);
    let scanned = volumes.iter().filter(|v| v["status"] == "scanned" || v["status"] == "partial").count();
    assert_eq!(scanned, 6, "{state:?}: every volume has its result: {summary}");
    assert_eq!(leftovers(data), Vec::<String>::new(), "{state:?}: {stderr}");
    // Exactly one stored result per scanned volume, one scanner marker.
    let results = data.join("results").join(job.as_str());
    let mut device_files = 0;
    for instance in std::fs::read_dir(&results).expect("results") {
        let instance = instance.expect("entry").path();
        if instance.file_name().is_some_and(|n| n == "scanners") {
            assert_eq!(std::fs::read_dir(&instance).expect("scanners").count(), 1, "{state:?}");
            continue;
        }
        for volume in std::fs::read_dir(&instance).expect("volumes") {
            assert!(volume.expect("volume").path().join("device.json").is_file());
            device_files += 1;
        }
    }
    assert_eq!(device_files, 6, "{state:?}");
    let ledger = agentless::ledger::Ledger::open(data).expect("ledger");
    assert!(ledger.live_resources(&job).expect("live").is_empty(), "{state:?}: ledger rows left live");
    assert!(ledger.unresolved_intents(&job).expect("intents").is_empty(), "{state:?}");
}

#[test]
fn sigkill_at_each_state_then_resume_finishes_clean() {
    for state in [
        JobState::Discovering,
        JobState::Snapshotting,
        JobState::Sharing,
        JobState::Networking,
        JobState::Launching,
        JobState::Scanning,
        JobState::Collecting,
        JobState::TearingDown,
    ] {
        crash_then_resume(state);
    }
}
