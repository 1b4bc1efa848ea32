//! The orchestrator: end to end on the simulated account with the demo fleet and real
//! `scanner-agent` processes, crash safety at every state, the collector's refusals, and a run on
//! the virtual clock with the guard's trace checked against the custom policy alone.

mod collector;
mod crash;
mod e2e;
mod moto;
mod virtual_time;
mod vulns;

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn agentless() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agentless"))
}

/// The `scanner-agent` binary built beside this test's `agentless` (`cargo test --workspace`
/// builds it for the guest agent's own tests).
pub fn scanner_agent() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_agentless")).with_file_name("scanner-agent");
    assert!(p.is_file(), "{} is missing: build the workspace first (cargo build --workspace)", p.display());
    p
}

pub fn demo_fleet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sim/demo-fleet.toml")
}

/// Every volume of every target of a job summary (`--format json`).
pub fn summary_volumes(summary: &serde_json::Value) -> Vec<&serde_json::Value> {
    summary["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .flat_map(|t| t["volumes"].as_array().into_iter().flatten())
        .collect()
}

/// `agentless <args> --cloud sim --data-dir <dir> --agent-binary <scanner-agent>`.
pub fn sim_command(sub: &[&str], data_dir: &Path) -> Command {
    let mut c = agentless();
    c.args(sub).arg("--cloud").arg("sim").arg("--data-dir").arg(data_dir).arg("--agent-binary").arg(scanner_agent());
    c.env_remove("AGENTLESS_DATA_DIR").env("AGENTLESS_LOG", "warn");
    c
}

/// What we left in the simulated account `sim`, in every Region: resources named with our prefixes
/// (terminated instances and the scanner image excepted) and our KMS grants.
pub fn sim_leftovers(sim: &agentless::cloud::sim::SimCloud) -> Vec<String> {
    crate::util::ours_left(sim, None, crate::util::named_ours_not_image)
}

/// [`sim_leftovers`] of the simulated account of `data_dir` (the demo fleet's).
pub fn leftovers(data_dir: &Path) -> Vec<String> {
    use agentless::cloud::sim::{Fleet, SimCloud};
    let fleet = Fleet::load(&demo_fleet()).expect("fleet");
    sim_leftovers(&SimCloud::open(data_dir, &fleet).expect("open sim"))
}
