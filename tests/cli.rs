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
        cmd.args(["scan", "--cloud", "aws", "--all", "--collector-url", "https://127.0.0.1:9", "--listen"])
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

/// AWS credentials and endpoint that fail fast (nothing listens on port 1), so a run that gets
/// past the collector's checks ends at its first AWS call, with no real AWS reachable.
fn unreachable_aws(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_PROFILE")
}

/// `scan --cloud aws` with an `http://` collector URL (issue 15): refused, exit 2, naming the
/// flag, before listening or calling AWS; with `--insecure-plaintext-collector` it goes on (to
/// the unreachable endpoint) with a warning.
#[test]
fn scan_on_aws_refuses_a_plain_http_collector_unless_loudly_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = |extra: &[&str]| {
        let mut c = agentless();
        c.args(["scan", "--cloud", "aws", "--all", "--region", "us-east-1", "--listen", "127.0.0.1:0"])
            .args(["--collector-url", "http://10.0.0.5:8443", "--endpoint-url", "http://127.0.0.1:1"])
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra);
        unreachable_aws(&mut c);
        c.output().expect("run")
    };
    let out = args(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("refusing the plain http:// collector URL http://10.0.0.5:8443 with AWS"), "{err}");
    assert!(err.contains("--insecure-plaintext-collector"), "{err}");
    assert!(!err.contains("GetCallerIdentity") && !err.contains("127.0.0.1:1"), "no AWS call made: {err}");

    let out = args(&["--insecure-plaintext-collector"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("refusing the plain http://"), "{err}");
    assert!(err.contains("WARNING: INSECURE: serving plain HTTP"), "{err}");
    // It went on to AWS (unreachable here).
    assert_eq!(out.status.code(), Some(2), "{err}");
}

/// `serve` with `cloud = "aws"` and an `http://` collector URL: refused, exit 2; allowed by
/// `--insecure-plaintext-collector` or `server.insecure_plaintext_collector`, with a warning.
#[test]
fn serve_on_aws_refuses_a_plain_http_collector_unless_loudly_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |extra: &str| {
        let path = dir.path().join("agentless.toml");
        std::fs::write(
            &path,
            format!(
                r#"cloud = "aws"
[server]
listen = "127.0.0.1:0"
collector_url = "http://10.0.0.5:8443"
token = "0123456789abcdef0123456789abcdef"
{extra}
[[accounts]]
name = "a"
endpoint_url = "http://127.0.0.1:1"
regions = ["us-east-1"]
"#
            ),
        )
        .expect("config");
        path
    };
    let run = |path: &Path, flag: Option<&str>| {
        let mut c = agentless();
        c.arg("serve").arg("--config").arg(path).arg("--data-dir").arg(dir.path().join("data")).args(flag);
        unreachable_aws(&mut c);
        c.output().expect("run")
    };
    let out = run(&config(""), None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("refusing the plain http:// collector URL http://10.0.0.5:8443 with AWS"), "{err}");

    for (path, flag) in
        [(config(""), Some("--insecure-plaintext-collector")), (config("insecure_plaintext_collector = true"), None)]
    {
        let out = run(&path, flag);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("refusing the plain http://"), "{err}");
        assert!(err.contains("WARNING: INSECURE: serving plain HTTP"), "{err}");
        assert_eq!(out.status.code(), Some(2), "the unreachable account: {err}");
    }
}
