//! The scanner's egress enforcement through the `scanner-agent` binary, on the host: `egress
//! apply` with a stand-in `nft` (a shell script that records its input or fails; the host's
//! firewall is never touched), `run --require-egress` refusing to scan without the record, and
//! `egress report`. The rules themselves meet the kernel in the scanner image's QEMU boot test
//! (scanner_image.rs) and in a throwaway network namespace there.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use scanner_ami::agent::egress::{self, EgressState};
use scanner_ami::agent::{self, AgentError, EXIT_FATAL, EXIT_OK, PowerOff, RunConfig};
use scanner_ami::job::JobManifest;

use crate::run_mode::{fake_collector, job};

/// An executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A stand-in `nft` that records its arguments and standard input in `dir` and succeeds.
fn recording_nft(dir: &Path) -> PathBuf {
    script(dir, "nft", &format!("echo \"$*\" > {0}/nft.args\ncat > {0}/nft.stdin", dir.display()))
}

fn agent_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scanner-agent"));
    c.args(args).stdin(Stdio::null()).env_remove("SCANNER_AGENT_LOG");
    c
}

fn output(mut c: Command) -> Output {
    c.output().expect("scanner-agent")
}

fn write_manifest(dir: &Path, m: &JobManifest) -> PathBuf {
    let path = dir.join("job.json");
    std::fs::write(&path, m.to_json().expect("json")).expect("write manifest");
    path
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn apply_loads_the_rendered_rules_and_records_them_then_run_scans() {
    let dir = tempfile::tempdir().expect("tmp");
    let collector = fake_collector(&[]);
    let m = job(&collector.url(), vec![]);
    let manifest = write_manifest(dir.path(), &m);
    let nft = recording_nft(dir.path());
    let state = dir.path().join("egress.json");

    let out =
        output(agent_cmd(&["egress", "apply", "--manifest", s(&manifest), "--nft", s(&nft), "--state", s(&state)]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("egress rules applied"), "{stderr}");
    // nft read the whole rule set from standard input: exactly what `render` makes of the plan.
    assert_eq!(std::fs::read_to_string(dir.path().join("nft.args")).expect("args").trim(), "-f -");
    let loaded = std::fs::read_to_string(dir.path().join("nft.stdin")).expect("stdin");
    let port = collector.url().rsplit(':').next().expect("port").to_owned();
    let recorded: EgressState = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("state json");
    assert_eq!(recorded.table, "agentless_egress");
    assert_eq!(recorded.plan.collector_url, m.collector_url);
    assert_eq!(recorded.plan.collector, [format!("127.0.0.1:{port}").parse().expect("addr")]);
    assert!(recorded.plan.dns.is_empty());
    assert_eq!(loaded, egress::render(&recorded.plan));
    assert!(loaded.contains(&format!("\t\tip daddr 127.0.0.1 tcp dport {port} accept\n")), "{loaded}");
    // Readable by the unit's unprivileged user, whatever the umask.
    let mode = std::fs::metadata(&state).expect("state").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // `run` with the record: scans (no devices here) and uploads.
    let out = output(agent_cmd(&["run", "--manifest", s(&manifest), "--no-poweroff", "--require-egress", s(&state)]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(EXIT_OK)), "{stderr}");
    assert!(stderr.contains("egress rules in place"), "{stderr}");
    assert_eq!(collector.requests().len(), 1, "{stderr}");
}

#[test]
fn apply_fails_closed_when_nft_refuses_and_run_then_scans_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let collector = fake_collector(&[]);
    let m = job(&collector.url(), vec![crate::run_mode::target("/dev/sdf", 1)]);
    let manifest = write_manifest(dir.path(), &m);
    let nft = script(
        dir.path(),
        "nft",
        "cat > /dev/null\necho 'Error: Could not process rule: Operation not permitted' >&2\nexit 1",
    );
    let state = dir.path().join("egress.json");
    // A record of an earlier run must not survive a failed apply.
    std::fs::write(&state, b"stale").expect("write");

    let out =
        output(agent_cmd(&["egress", "apply", "--manifest", s(&manifest), "--nft", s(&nft), "--state", s(&state)]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(EXIT_FATAL)), "{stderr}");
    assert!(stderr.contains("egress rules not applied; nothing may be scanned"), "{stderr}");
    assert!(stderr.contains("Operation not permitted"), "nft's own reason is shown: {stderr}");
    assert!(!state.exists(), "no record without rules");

    // nft missing altogether: the same.
    let missing = dir.path().join("no-such-nft");
    let out =
        output(agent_cmd(&["egress", "apply", "--manifest", s(&manifest), "--nft", s(&missing), "--state", s(&state)]));
    assert_eq!(out.status.code(), Some(i32::from(EXIT_FATAL)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!state.exists());

    // `run` refuses: exit 2, says why, reads no device, uploads nothing.
    let out = output(agent_cmd(&["run", "--manifest", s(&manifest), "--no-poweroff", "--require-egress", s(&state)]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(EXIT_FATAL)), "{stderr}");
    assert!(stderr.contains("egress is not enforced, so nothing was scanned"), "{stderr}");
    assert!(!stderr.contains("device not scanned") && !stderr.contains("device scanned"), "{stderr}");
    assert!(collector.requests().is_empty(), "nothing uploaded");
}

#[test]
fn run_refuses_a_record_for_another_collector_and_runs_without_the_flag() {
    let dir = tempfile::tempdir().expect("tmp");
    let collector = fake_collector(&[]);
    let m = job(&collector.url(), vec![]);
    let manifest = write_manifest(dir.path(), &m);
    let state = dir.path().join("egress.json");
    // The record of another job's collector.
    let other = job("http://10.0.0.9:8443", vec![]);
    let other_manifest = dir.path().join("other");
    std::fs::create_dir(&other_manifest).expect("mkdir");
    let other_manifest = write_manifest(&other_manifest, &other);
    let nft = recording_nft(dir.path());
    let out = output(agent_cmd(&[
        "egress",
        "apply",
        "--manifest",
        s(&other_manifest),
        "--nft",
        s(&nft),
        "--state",
        s(&state),
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let config = RunConfig {
        manifest_file: Some(manifest.clone()),
        poweroff: PowerOff::None,
        require_egress: Some(state.clone()),
        ..RunConfig::default()
    };
    let outcome = agent::run(&config);
    assert_eq!(outcome.exit_code, EXIT_FATAL);
    assert!(outcome.bundle.is_none());
    match outcome.errors.as_slice() {
        [AgentError::Egress(e)] => {
            let text = e.to_string();
            assert!(text.contains("10.0.0.9:8443") && text.contains(&m.collector_url), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(collector.requests().is_empty());

    // Without --require-egress (tests, the simulated hypervisor): no check, no firewall change.
    let outcome = agent::run(&RunConfig { require_egress: None, ..config });
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.exit_code, EXIT_OK);
    assert_eq!(collector.requests().len(), 1);
}

#[test]
fn report_prints_the_drop_counter() {
    let dir = tempfile::tempdir().expect("tmp");
    let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"counter": {"family": "inet", "name": "dropped", "table": "agentless_egress", "handle": 1, "packets": 7, "bytes": 420}}]}"#;
    let nft = script(dir.path(), "nft", &format!("echo \"$*\" > {}/nft.args\necho '{json}'", dir.path().display()));
    let out = output(agent_cmd(&["egress", "report", "--nft", s(&nft)]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "egress: 7 outbound packets (420 bytes) dropped\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("nft.args")).expect("args").trim(),
        "-j list counter inet agentless_egress dropped"
    );
    // No table (the rules were never applied): an error, exit 2.
    let nft = script(dir.path(), "nft-none", "echo 'Error: No such file or directory' >&2\nexit 1");
    let out = output(agent_cmd(&["egress", "report", "--nft", s(&nft)]));
    assert_eq!(out.status.code(), Some(i32::from(EXIT_FATAL)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the egress drop counter"));
}
