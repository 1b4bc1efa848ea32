//! The `agentless` command line: help, the local `scan-image` command on the bundled demo disk,
//! and exit code 2 for usage and setup errors.

use std::path::Path;
use std::process::Command;

fn agentless() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agentless"))
}

fn demo_disk() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/demo/demo-disk.img")
}

#[test]
fn help_names_every_subcommand() {
    let out = agentless().arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["scan-image", "scan", "serve", "audit"] {
        assert!(text.contains(cmd), "--help lacks {cmd}: {text}");
    }
}

#[test]
fn scan_image_reads_the_bundled_demo_disk() {
    let out = agentless().arg("scan-image").arg(demo_disk()).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("os: ubuntu-18.04\n"), "{text}");
    assert!(text.contains("passwd\t1:4.5-1ubuntu1\tamd64"), "{text}");
    assert!(text.trim_end().ends_with("90 packages"), "{text}");

    let out = agentless().arg("scan-image").arg("--json").arg(demo_disk()).output().expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["root_partition"], 2);
    assert_eq!(v["partitions"][0]["filesystem"]["type"], "vfat");
}

#[test]
fn missing_image_and_usage_errors_exit_2() {
    let out = agentless().arg("scan-image").arg("/nonexistent.img").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent.img read-only"));
    // `serve` needs its configuration; a missing file is a setup error naming it.
    let out = agentless().arg("serve").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
    let out = agentless().args(["serve", "--config", "/nonexistent/agentless.toml"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/agentless.toml"));
    // `scan` without a target selection is a usage error naming the choices.
    let out = agentless().arg("scan").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--all") && err.contains("--instance") && err.contains("--tag"), "{err}");
}

/// `--cloud aws` never trusts identity documents by default: without AWS's certificates
/// (`--identity-certs`) the command refuses to start (before any AWS call), and a directory with
/// no `<region>.pem` is refused too.
#[test]
fn scan_on_aws_needs_identity_certificates() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = |cmd: &mut Command| {
        cmd.args(["scan", "--cloud", "aws", "--all", "--collector-url", "http://127.0.0.1:9", "--listen"])
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("AGENTLESS_IDENTITY_CERTS");
    };
    let mut cmd = agentless();
    base(&mut cmd);
    let out = cmd.output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--identity-certs"), "{stderr}");

    let empty = dir.path().join("certs");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let mut cmd = agentless();
    base(&mut cmd);
    let out = cmd.arg("--identity-certs").arg(&empty).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no `<region>.pem` certificate"), "{stderr}");
}
