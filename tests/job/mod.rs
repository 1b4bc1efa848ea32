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

/// `agentless <args> --cloud sim --data-dir <dir> --agent-binary <scanner-agent>`.
pub fn sim_command(sub: &[&str], data_dir: &Path) -> Command {
    let mut c = agentless();
    c.args(sub).arg("--cloud").arg("sim").arg("--data-dir").arg(data_dir).arg("--agent-binary").arg(scanner_agent());
    c.env_remove("AGENTLESS_DATA_DIR").env("AGENTLESS_LOG", "warn");
    c
}

/// Resources whose Name carries our prefixes, still alive in the simulated account of `data_dir`.
pub fn leftovers(data_dir: &Path) -> Vec<String> {
    use agentless::cloud::sim::state::Life;
    use agentless::cloud::sim::{Fleet, SimCloud};
    let fleet = Fleet::load(&demo_fleet()).expect("fleet");
    let sim = SimCloud::open(data_dir, &fleet).expect("open sim");
    let ours = |t: &agentless::cloud::Tags| {
        t.name().is_some_and(|n| n.starts_with("SAS_Agentless") || n.starts_with("alibaba-cloud-security-scan"))
            && t.get("agentless:image-version").is_none()
    };
    sim.inspect(|w| {
        let mut out = Vec::new();
        for a in w.accounts.values() {
            for r in a.regions.values() {
                out.extend(
                    r.instances
                        .iter()
                        .filter(|(_, i)| ours(&i.tags) && !matches!(i.life, Life::Terminated { .. }))
                        .map(|(id, _)| id.to_string()),
                );
                out.extend(r.volumes.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| id.to_string()));
                out.extend(r.snapshots.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| id.to_string()));
                out.extend(r.vpcs.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| id.to_string()));
                out.extend(r.subnets.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| id.to_string()));
                out.extend(r.internet_gateways.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| id.to_string()));
                out.extend(r.security_groups.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| id.to_string()));
                out.extend(r.vpc_endpoints.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| id.to_string()));
                for k in r.keys.values() {
                    out.extend(
                        k.grants
                            .iter()
                            .filter(|g| g.name.as_deref().is_some_and(|n| n.starts_with("alibaba-cloud-security-scan")))
                            .map(|g| g.id.to_string()),
                    );
                }
            }
        }
        out
    })
}
