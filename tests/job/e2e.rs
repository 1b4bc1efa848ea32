//! `agentless scan --cloud sim --all` on the demo fleet, with real `scanner-agent` processes
//! uploading signed bundles to the collector over loopback HTTP.

use std::collections::BTreeSet;
use std::path::Path;

use agentless::cloud::sim::{Fleet, SimCloud};
use rustls::pki_types::pem::PemObject;

use super::{demo_fleet, leftovers, sim_command, summary_volumes};

/// name=version[-release] of every package of an inventory JSON.
fn packages(inventory: &serde_json::Value) -> BTreeSet<String> {
    inventory["packages"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    format!(
                        "{}={}-{}",
                        p["name"].as_str().unwrap_or(""),
                        p["version"].as_str().unwrap_or(""),
                        p["release"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn demo_fleet_scans_end_to_end_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out_dir = dir.path().join("out");
    let out =
        sim_command(&["scan", "--all", "--format", "json"], &data).arg("--out").arg(&out_dir).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Every volume is scanned, the one under a customer managed key because its key policy names
    // our principal as a key user (the job's grant alone would not do: policies/README.md, Gaps 2).
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary json");
    let jobs = summary["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 2, "one job per Region of the demo fleet: {summary}");
    assert!(jobs.iter().all(|j| j["state"] == "Done"), "{summary}");
    let targets = summary["targets"].as_array().expect("targets");
    let names: BTreeSet<&str> = targets.iter().filter_map(|t| t["name"].as_str()).collect();
    let running = ["demo-al-1", "demo-app-1", "demo-db-1", "demo-rhel8-1", "demo-sles-1", "demo-web-1"];
    assert_eq!(names, BTreeSet::from(running), "running instances only");

    // Every scanned volume's packages equal what scanner-agent reads from its instance's images
    // directly, scanned together as the scanner does (a root's /var may be on another volume).
    let fleet = Fleet::load(&demo_fleet()).expect("fleet");
    let sim = SimCloud::open(&data, &fleet).expect("sim");
    let backing = |volume: &str| -> Option<std::path::PathBuf> {
        sim.inspect(|w| {
            w.accounts.values().flat_map(|a| a.regions.values()).find_map(|r| {
                r.volumes.iter().find(|(id, _)| id.as_str() == volume).and_then(|(_, v)| v.backing.clone())
            })
        })
    };
    let mut compared = 0;
    let mut unscannable = 0;
    for t in targets {
        let instance = t["instance"].as_str().expect("instance");
        let mut volumes = Vec::new();
        for v in t["volumes"].as_array().expect("volumes") {
            let volume = v["volume"].as_str().expect("volume");
            if v["status"] == "unscannable" {
                assert!(v["error"].as_str().unwrap_or("").contains("customer managed key"), "{v}");
                unscannable += 1;
                continue;
            }
            assert!(v["status"] == "scanned" || v["status"] == "partial", "{v}");
            volumes.push((v, backing(volume).expect("image-backed volume")));
        }
        let images: Vec<&Path> = volumes.iter().map(|(_, p)| p.as_path()).collect();
        let direct = scanner_ami::scan::scan_images(
            &images,
            scanner_ami::scan::ScanOptions { baseline: false, ..Default::default() },
        )
        .expect("scan");
        assert_eq!(direct.len(), volumes.len());
        for ((v, _), direct) in volumes.iter().zip(&direct) {
            let volume = v["volume"].as_str().expect("volume");
            let direct = packages(&serde_json::to_value(direct).expect("json"));
            let stored: serde_json::Value = serde_json::from_slice(
                &std::fs::read(out_dir.join(instance).join(volume).join("inventory.json")).expect("inventory.json"),
            )
            .expect("inventory");
            assert_eq!(packages(&stored), direct, "{instance} {volume}");
            assert_eq!(v["packages"].as_u64(), Some(direct.len() as u64));
            let sbom: serde_json::Value = serde_json::from_slice(
                &std::fs::read(out_dir.join(instance).join(volume).join("sbom.cdx.json")).expect("sbom"),
            )
            .expect("sbom json");
            assert_eq!(sbom["bomFormat"], "CycloneDX");
            assert!(out_dir.join(instance).join(volume).join("baseline.json").is_file());
            compared += 1;
        }
    }
    assert_eq!(unscannable, 0, "{summary}");
    assert_eq!(compared, 10, "{compared} volumes compared: {summary}");
    let target = |name: &str| targets.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("{name}"));
    let web = target("demo-web-1");
    assert_eq!(web["volumes"][0]["packages"], 90);
    assert!(web["volumes"][0]["baseline_failed"].as_u64().unwrap_or(0) > 0, "{web}");
    // The us-west-2 instances, each volume's count what its fixture holds (tests/data/demo/README.md):
    // go-rpmdb's CBL-Mariner 2.0 rpmdb.sqlite on XFS; the RHEL 8 Berkeley DB on the /var logical
    // volume of the second disk, counted for the root volume (the var volume has no OS of its
    // own); SUSE's NDB Packages.db in the btrfs snapper snapshot.
    let counts = |name: &str| -> Vec<(String, u64, String)> {
        let t = target(name);
        assert_eq!((t["region"].as_str(), t["status"].as_str()), (Some("us-west-2"), Some("scanned")), "{t}");
        t["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .map(|v| {
                (
                    v["device"].as_str().unwrap_or("").to_owned(),
                    v["packages"].as_u64().unwrap_or(u64::MAX),
                    v["os"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let al = counts("demo-al-1");
    assert_eq!((al.len(), al[0].1), (1, 129), "{al:?}");
    assert!(al[0].2.contains("Mariner"), "{al:?}");
    let rhel = counts("demo-rhel8-1");
    assert_eq!(rhel.len(), 2, "{rhel:?}");
    let (root, var) = (&rhel[0], &rhel[1]);
    assert_eq!((root.0.as_str(), root.1, var.0.as_str(), var.1), ("/dev/xvda", 1, "/dev/sdf", 0), "{rhel:?}");
    assert!(root.2.contains("Red Hat Enterprise Linux") && root.2.contains("8.8"), "{rhel:?}");
    let rhel_instance = target("demo-rhel8-1")["instance"].as_str().expect("instance").to_owned();
    let rhel_root = target("demo-rhel8-1")["volumes"][0]["volume"].as_str().expect("volume").to_owned();
    let stored: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out_dir.join(&rhel_instance).join(&rhel_root).join("inventory.json")).expect("inventory"),
    )
    .expect("inventory json");
    assert_eq!(packages(&stored), BTreeSet::from(["libuuid=2.32.1-42.el8_8".to_owned()]));
    let sles = counts("demo-sles-1");
    assert_eq!((sles.len(), sles[0].1), (1, 35), "{sles:?}");
    assert!(sles[0].2.contains("SUSE Linux Enterprise Server 15"), "{sles:?}");
    assert!(out_dir.join("summary.json").is_file());
    assert!(stderr.contains("(0 refused by the policy guard)"), "{stderr}");
    assert!(stderr.contains("left in the simulated account: 0"), "{stderr}");
    assert!(stderr.contains("scanner-agent process"), "the real agent binary ran: {stderr}");
    assert_eq!(leftovers(&data), Vec::<String>::new());
    assert_no_partial_files(&data.join("results"));
}

/// No temporary files left in the results (every write is atomic).
fn assert_no_partial_files(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("results dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            assert_no_partial_files(&p);
        } else {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(name.ends_with(".json"), "unexpected file {}", p.display());
        }
    }
}

#[test]
fn jobs_list_and_show_read_the_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out =
        sim_command(&["scan", "--tag", "Name=demo-web-1", "--region", "us-east-1"], dir.path()).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("demo-web-1") && table.contains("Ubuntu 18.04") && !table.contains("demo-db-1"), "{table}");
    let list = super::agentless().args(["jobs", "list", "--data-dir"]).arg(dir.path()).output().expect("list");
    let text = String::from_utf8_lossy(&list.stdout);
    let line = text.lines().nth(1).expect("a job line");
    assert!(line.contains("us-east-1") && line.contains("Done"), "{text}");
    let job = line.split_whitespace().next().expect("job id");
    let show = super::agentless().args(["jobs", "show", job, "--data-dir"]).arg(dir.path()).output().expect("show");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("state Done") && text.contains("scanned"), "{text}");
    for kind in ["snapshot", "vpc", "subnet", "internet-gateway", "security-group", "instance"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(kind) && l.trim_end().ends_with("deleted")),
            "{kind}: {text}"
        );
    }
}

/// The demo fleet with its customer managed key's policy deferring to IAM only (AWS's default)
/// instead of naming our principal: EC2's kms:GenerateDataKeyWithoutPlaintext for the scanner
/// volume is refused (the custom policy lacks it, the job's grant does not cover the new volume:
/// policies/README.md, "Gaps" 2), the scanner's launch ends, and the database volume's error says
/// why; the other volumes are scanned and nothing is left behind.
#[test]
fn a_key_policy_that_only_defers_to_iam_leaves_the_volume_unscanned_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/demo");
    let fleet = std::fs::read_to_string(demo_fleet())
        .expect("demo fleet")
        .replace("allow_caller_use = true", "allow_caller_use = false\nallow_account_use = true")
        .replace("allow_account_use = false\n", "")
        .replace("\"../demo/", &format!("\"{}/", demo_dir.display()));
    assert!(fleet.contains("allow_caller_use = false"), "the demo fleet names the caller");
    let fleet_path = dir.path().join("fleet.toml");
    std::fs::write(&fleet_path, fleet).expect("write fleet");
    let data = dir.path().join("data");
    let out = sim_command(&["scan", "--all", "--format", "json"], &data)
        .arg("--fleet")
        .arg(&fleet_path)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary json");
    let volumes = summary_volumes(&summary);
    let failed: Vec<&&serde_json::Value> =
        volumes.iter().filter(|v| v["status"] != "scanned" && v["status"] != "partial").collect();
    assert!(!failed.is_empty(), "the volume under the customer managed key was scanned: {summary}\n{stderr}");
    for v in &failed {
        let error = v["error"].as_str().unwrap_or("");
        assert!(error.contains("customer managed key"), "{v}");
        assert!(error.contains("key policy names arn:aws:iam::111122223333:user/agentless-scanner"), "{v}");
    }
    assert!(volumes.iter().any(|v| v["status"] == "scanned"), "nothing scanned: {summary}");
    assert!(leftovers(&data).is_empty(), "{:?}", leftovers(&data));
}

/// The simulated account over TLS (`--tls`, issue 15): the collector serves the data directory's
/// self-signed certificate, the real `scanner-agent` processes upload through the pinned TLS, and
/// the bundle arrives; a second run reuses the same certificate.
#[test]
fn the_sim_scans_over_tls_with_the_pinned_self_signed_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = || {
        let out = sim_command(&["scan", "--tag", "Name=demo-web-1", "--tls", "--format", "json"], &data)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary json");
        let targets = summary["targets"].as_array().expect("targets").clone();
        assert_eq!(targets.len(), 1, "{summary}");
        assert_eq!(targets[0]["name"], "demo-web-1", "{summary}");
        for v in targets[0]["volumes"].as_array().expect("volumes") {
            assert!(v["status"] == "scanned" || v["status"] == "partial", "the bundle arrived over TLS: {v}");
        }
        stderr
            .lines()
            .find_map(|l| l.split("scanners pin its certificate, SHA-256 ").nth(1))
            .unwrap_or_else(|| panic!("no pin in the log: {stderr}"))
            .trim()
            .to_owned()
    };
    let first = run();
    let cert = std::fs::read(data.join("tls").join("collector.crt")).expect("the stored certificate");
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&cert).expect("pem");
    assert_eq!(first, scanner_ami::agent::pin::fingerprint(der.as_ref()));
    assert_eq!(run(), first, "the second run serves the same certificate");
}
