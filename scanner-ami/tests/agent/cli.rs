//! The `scanner-agent` command line: formats, `--out`, exit codes and the CycloneDX schema.

use std::process::Command;

use crate::util::{gpt_efi_ext4, project_root, run, ubuntu_tree};

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanner-agent"))
}

#[test]
fn json_table_and_out_dir() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), tree.path(), 512);
    let out = work.path().join("out");
    let json = run(agent().arg("scan").arg("--image").arg(&img).arg("--format").arg("json").arg("--out").arg(&out));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["schema"], "agentless.inventory/v1");
    assert_eq!(v["packages"].as_array().map(Vec::len), Some(90));
    assert_eq!(v["root_partition"], 2);
    assert!(v["stats"]["bytes_read"].as_u64().is_some_and(|b| b > 0));
    let passwd = v["packages"].as_array().and_then(|a| a.iter().find(|p| p["name"] == "passwd")).expect("passwd");
    assert_eq!((passwd["epoch"].as_u64(), passwd["version"].as_str()), (Some(1), Some("4.5")));
    assert!(out.join("inventory.json").is_file() && out.join("sbom.cdx.json").is_file());

    let table = run(agent().arg("scan").arg("--image").arg(&img));
    assert!(table.contains("os: Ubuntu 18.04.1 LTS (ubuntu-18.04)"), "{table}");
    assert!(table.contains("90 packages"), "{table}");
}

#[test]
fn cyclonedx_output_has_purls_and_versions() {
    let tree = ubuntu_tree();
    let cdx = run(agent().arg("scan").arg("--root").arg(tree.path()).arg("--format").arg("cyclonedx"));
    let v: serde_json::Value = serde_json::from_str(&cdx).expect("json");
    assert_eq!(v["specVersion"], "1.6");
    let comps = v["components"].as_array().expect("components");
    assert_eq!(comps.iter().filter(|c| c["type"] == "library").count(), 90);
    assert_eq!(comps.iter().filter(|c| c["type"] == "operating-system").count(), 1);
    let passwd = comps.iter().find(|c| c["name"] == "passwd").expect("passwd");
    assert_eq!(passwd["version"], "1:4.5-1ubuntu1");
    assert_eq!(
        passwd["purl"],
        "pkg:deb/ubuntu/passwd@4.5-1ubuntu1?arch=amd64&distro=ubuntu-18.04&epoch=1&upstream=shadow"
    );
    assert_eq!(v["dependencies"][0]["dependsOn"].as_array().map(Vec::len), Some(90));
}

#[test]
#[ignore = "needs the Python venv of scripts/setup-test-env.sh (AGENTLESS_PYTHON)"]
fn cyclonedx_validates_against_the_official_1_6_schema() {
    let python = std::env::var("AGENTLESS_PYTHON")
        .expect("AGENTLESS_PYTHON must point at the venv python (scripts/setup-test-env.sh)");
    let work = tempfile::tempdir().expect("tmp");
    let mut files = Vec::new();
    let trees = [
        ("deb", ubuntu_tree()),
        ("rpm", {
            let t = crate::util::Tree::new();
            t.os_release("mariner", "2.0", "CBL-Mariner")
                .copy("var/lib/rpm/rpmdb.sqlite", "go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite");
            t
        }),
        ("apk", {
            let t = crate::util::Tree::new();
            t.put("etc/alpine-release", b"3.4.6\n").copy("lib/apk/db/installed", "trivy/apk/installed");
            t
        }),
        // Application components (Go, Rust, Java, Python, Node, Ruby, PHP, .NET, a kernel) and
        // the dependencies that tie them to their binaries and archives.
        ("apps", crate::apps::app_tree()),
    ];
    for (name, tree) in &trees {
        let cdx = run(agent().arg("scan").arg("--root").arg(tree.path()).arg("--format").arg("cyclonedx"));
        let f = work.path().join(format!("{name}.cdx.json"));
        std::fs::write(&f, cdx).expect("write");
        files.push(f);
    }
    let out = run(Command::new(python).arg(project_root().join("scripts/validate-cyclonedx.py")).args(&files));
    assert_eq!(out.matches("valid").count(), 4, "{out}");
}

#[test]
fn exit_codes_mean_something() {
    let status = agent().arg("scan").arg("--image").arg("/nonexistent/disk.img").status().expect("run");
    assert_eq!(status.code(), Some(2));
    let status = agent().arg("scan").status().expect("run");
    assert_eq!(status.code(), Some(2), "missing target is a usage error");
    let work = tempfile::tempdir().expect("tmp");
    let empty = crate::util::blank_image(work.path(), "empty.img", 4);
    let out = agent().arg("scan").arg("--image").arg(&empty).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "no OS found is a partial result");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no partition holds a readable OS root"));
}

#[test]
fn baseline_format_table_summary_and_out_file() {
    let tree = ubuntu_tree();
    tree.put("etc/ssh/sshd_config", b"PermitRootLogin yes\n");
    let json = run(agent().arg("scan").arg("--root").arg(tree.path()).arg("--format").arg("baseline"));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["format"], 1);
    assert_eq!(v["os"]["id"], "ubuntu");
    let findings = v["findings"].as_array().expect("findings");
    assert!(findings.len() >= 45, "{} rules", findings.len());
    let root_login = findings.iter().find(|f| f["id"] == "ssh.permit_root_login").expect("rule");
    assert_eq!(root_login["ssg_id"], "sshd_disable_root_login");
    assert_eq!(root_login["status"], "fail");
    assert_eq!(root_login["evidence"][0]["line"], 1);
    for f in findings {
        for key in ["id", "title", "severity", "status", "evidence"] {
            assert!(!f[key].is_null(), "{key} missing in {f}");
        }
    }

    let work = tempfile::tempdir().expect("tmp");
    let out = work.path().join("out");
    let table = run(agent().arg("scan").arg("--root").arg(tree.path()).arg("--baseline").arg("--out").arg(&out));
    assert!(
        table.contains("baseline: ") && table.contains(" pass, ") && table.contains("ssh.permit_root_login"),
        "{table}"
    );
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("baseline.json")).expect("baseline.json"))
            .expect("json");
    assert_eq!(b["findings"].as_array().map(Vec::len), Some(findings.len()));
}
