//! Vulnerability findings end to end: the README's demo scan on the simulated
//! account imports the bundled Alpine v3.4 secdb, writes `vulns.json` beside every scanned
//! inventory, and reports findings for demo-app-1 (Alpine 3.4) equal to matching its stored
//! inventory against the v3.4 secdb directly, and "not assessed" with the reason for the OSes
//! without a source; in the table, the JSON summary, the `--out` files and `vulns show`. Then
//! `vulns rescan` against another database rewrites the results without any cloud call.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use agentless::vuln::db::AdvisoryDb;
use agentless::vuln::db::import::{Input, import};
use agentless::vuln::findings::VulnReport;
use agentless::vuln::matcher::inventory::InventoryDoc;
use agentless::vuln::matcher::{MatchOptions, Matcher};

use super::{agentless, sim_command};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vuln").join(rel)
}

/// (id, package, version, fixed, installed names) of a finding.
type Essential = (String, String, String, Option<String>, Vec<String>);

/// What must agree between two reports: the essentials of each finding.
fn essence(r: &VulnReport) -> BTreeSet<Essential> {
    r.findings
        .iter()
        .map(|f| {
            (
                f.id.clone(),
                f.package.clone(),
                f.version.clone(),
                f.fixed_version.clone(),
                f.installed.iter().map(|i| i.name.clone()).collect(),
            )
        })
        .collect()
}

/// Match a stored inventory against a fresh database of `inputs`, as the oracle.
fn direct(inventory: &Path, tmp: &Path, inputs: &[Input]) -> VulnReport {
    let db_path = tmp.join("oracle.sqlite");
    let _ = std::fs::remove_file(&db_path);
    import(&db_path, inputs, jiff::Timestamp::now()).expect("oracle import");
    let db = AdvisoryDb::open(&db_path).expect("oracle db");
    let inv = InventoryDoc::from_json(&std::fs::read(inventory).expect("inventory")).expect("parse inventory");
    Matcher::new(&db, MatchOptions::default()).match_inventory(&inv, jiff::Timestamp::now())
}

fn read_vulns(path: &Path) -> VulnReport {
    VulnReport::from_json(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("vulns")
}

/// The stored volume directory of (job, instance, volume).
fn stored(data: &Path, job: &str, instance: &str, volume: &str) -> PathBuf {
    data.join("results").join(job).join(instance).join(volume)
}

#[test]
fn demo_scan_reports_findings_for_alpine_and_not_assessed_for_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let out_dir = dir.path().join("out");
    let out = sim_command(&["scan", "--all", "--format", "json"], &data_dir)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("imported the bundled demo snapshot: Alpine secdb v3.4"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary json");

    let mut app_root = None;
    let mut not_assessed = Vec::new();
    for t in summary["targets"].as_array().expect("targets") {
        let job = t["job"].as_str().expect("job");
        let instance = t["instance"].as_str().expect("instance");
        for v in t["volumes"].as_array().expect("volumes") {
            let volume = v["volume"].as_str().expect("volume");
            if v["status"] == "unscannable" {
                assert!(v["vulns"].is_null(), "no result, no vulns.json: {v}");
                continue;
            }
            let vdir = stored(&data_dir, job, instance, volume);
            let report = read_vulns(&vdir.join("vulns.json"));
            // The JSON summary carries the counts of the stored report.
            assert_eq!(v["vulns"]["assessed"], report.assessed, "{v}");
            assert_eq!(v["vulns"]["findings"], report.counts.visible, "{v}");
            // --out carries the file per volume.
            let copied = read_vulns(&out_dir.join(instance).join(volume).join("vulns.json"));
            assert_eq!(copied, report);
            if v["os"].is_null() {
                assert_eq!(v["vulns"]["not_assessed"], "no-packages", "a data volume: {v}");
                continue;
            }
            if t["name"] == "demo-app-1" {
                app_root = Some((instance.to_owned(), vdir, report, v.clone()));
            } else {
                assert!(!report.assessed, "{}: {v}", t["name"]);
                assert!(report.findings.is_empty());
                assert_eq!(v["vulns"]["not_assessed"], "no-source", "{v}");
                let reason = v["vulns"]["reason"].as_str().expect("reason");
                assert!(reason.starts_with("no advisory source for "), "{reason}");
                assert!(report.coverage.iter().all(|c| c.reason.is_some()), "{:?}", report.coverage);
                not_assessed.push((t["name"].as_str().unwrap_or_default().to_owned(), reason.to_owned()));
            }
        }
    }
    let (app, app_dir, report, line) = app_root.expect("demo-app-1's root volume");
    assert!(report.assessed);
    // The oracle: the stored inventory matched directly against the committed v3.4 secdb.
    let oracle = direct(&app_dir.join("inventory.json"), dir.path(), &[Input::path(data("alpine-secdb/v3.4"))]);
    assert_eq!(oracle.findings.len(), 32, "the matcher's measured figure for the demo Alpine 3.4 root");
    assert_eq!(essence(&report), essence(&oracle));
    assert_eq!(report.counts, oracle.counts);
    let source = &report.coverage.first().expect("coverage").sources.first().expect("source").name;
    assert!(
        source.starts_with("bundled demo snapshot: Alpine secdb v3.4") && source.contains("2018-05-16"),
        "{source}"
    );
    assert_eq!(line["vulns"]["by_severity"]["unknown"], 32, "secdb publishes no severity: {line}");
    assert_eq!(summary["vulns"]["volumes_assessed"], 1, "{}", summary["vulns"]);
    assert_eq!(summary["vulns"]["volumes_not_assessed"], not_assessed.len(), "{}", summary["vulns"]);
    let names: BTreeSet<&str> = not_assessed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["demo-al-1", "demo-db-1", "demo-rhel8-1", "demo-sles-1", "demo-web-1"]),
        "{not_assessed:?}"
    );
    assert!(not_assessed.contains(&("demo-web-1".to_owned(), "no advisory source for ubuntu 18.04".to_owned())));
    // The instance's top-level --out copy is its OS volume's.
    assert_eq!(read_vulns(&out_dir.join(&app).join("vulns.json")), report);

    // `vulns show`: by CVE, by package, by instance, from the stored results only.
    let cve = report.findings.iter().find_map(|f| f.cves.first().cloned()).expect("a CVE");
    let show = agentless()
        .args(["vulns", "show", "--cve", &cve, "--format", "json", "--data-dir"])
        .arg(&data_dir)
        .env_remove("AGENTLESS_DATA_DIR")
        .output()
        .expect("show");
    assert_eq!(show.status.code(), Some(0), "{}", String::from_utf8_lossy(&show.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    let affected = answer["affected"].as_array().expect("affected");
    assert_eq!(affected.len(), 1, "{answer}");
    assert_eq!(affected[0]["instance"], app.as_str());
    assert!(
        affected[0]["findings"].as_array().is_some_and(|f| f
            .iter()
            .all(|f| f["cves"].as_array().is_some_and(|c| c.iter().any(|c| c == cve.as_str()))))
    );
    assert_eq!(answer["not_assessed"].as_array().map(Vec::len), Some(not_assessed.len()), "{answer}");
    let show = agentless()
        .args(["vulns", "show", "--package", "musl", "--data-dir"])
        .arg(&data_dir)
        .env_remove("AGENTLESS_DATA_DIR")
        .output()
        .expect("show");
    let text = String::from_utf8_lossy(&show.stdout);
    let musl = report.findings.iter().filter(|f| f.package == "musl").count();
    assert!(musl > 0);
    assert_eq!(text.lines().filter(|l| l.starts_with(&app) && l.contains("musl")).count(), musl, "{text}");
    let show = agentless()
        .args(["vulns", "show", &app, "--format", "json", "--data-dir"])
        .arg(&data_dir)
        .env_remove("AGENTLESS_DATA_DIR")
        .output()
        .expect("show");
    let answer: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    let total: usize = answer["affected"]
        .as_array()
        .expect("affected")
        .iter()
        .map(|v| v["findings"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(total, 32, "{answer}");
}

/// SHA-256 of a file, hex.
fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn rescan_after_another_database_rewrites_results_without_the_cloud() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let out = sim_command(&["scan", "--all"], &data_dir).output().expect("run");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // The table's VULNS column.
    let header = table.lines().next().expect("header");
    assert!(header.contains(" VULNS "), "{header}");
    let line = |name: &str| -> Vec<&str> { table.lines().filter(|l| l.contains(name)).collect() };
    assert!(line("demo-app-1").iter().any(|l| l.contains("Alpine Linux v3.4") && l.contains(" 32U ")), "{table}");
    assert!(
        line("demo-web-1").iter().any(|l| l.contains("not assessed: no advisory source for ubuntu 18.04")),
        "{table}"
    );
    assert!(line("demo-db-1").iter().any(|l| l.contains("not assessed: no advisory source for mariner")), "{table}");
    assert!(table.contains("vulnerabilities: 1 volume(s) assessed, 5 not assessed"), "{table}");

    // Another database: the v3.4 secdb again, plus one OSV record of our own for musl.
    std::fs::remove_file(data_dir.join("vulndb.sqlite")).expect("remove the demo database");
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(&extra).expect("mkdir");
    std::fs::write(
        extra.join("TEST-2099-0001.json"),
        serde_json::json!({
            "id": "TEST-2099-0001", "modified": "2099-01-01T00:00:00Z", "aliases": ["CVE-2099-0001"],
            "affected": [{"package": {"ecosystem": "Alpine:v3.4", "name": "musl"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0-r0"}]}]}]
        })
        .to_string(),
    )
    .expect("write record");
    let imported = agentless()
        .args(["vulndb", "import", "--data-dir"])
        .arg(&data_dir)
        .arg(data("alpine-secdb/v3.4"))
        .arg(&extra)
        .env_remove("AGENTLESS_DATA_DIR")
        .output()
        .expect("import");
    assert_eq!(imported.status.code(), Some(0), "{}", String::from_utf8_lossy(&imported.stderr));

    // No cloud: the simulated account's state is moved away (any cloud constructed would
    // recreate it) and the ledger must not change.
    let sim_state = data_dir.join("sim-state.json");
    assert!(sim_state.is_file());
    std::fs::rename(&sim_state, dir.path().join("sim-state.away")).expect("move the sim away");
    let ledger_before = sha256(&data_dir.join("ledger.sqlite3"));
    let results = data_dir.join("results");
    let app_vulns: Vec<PathBuf> = walk(&results).into_iter().filter(|p| p.ends_with("vulns.json")).collect();
    let before: Vec<VulnReport> = app_vulns.iter().map(|p| read_vulns(p)).collect();

    let rescan = agentless()
        .args(["vulns", "rescan", "--all", "--data-dir"])
        .arg(&data_dir)
        .env_remove("AGENTLESS_DATA_DIR")
        .output()
        .expect("rescan");
    let text = String::from_utf8_lossy(&rescan.stdout);
    assert_eq!(rescan.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&rescan.stderr));
    assert!(!sim_state.exists(), "rescan opened the simulated account");
    assert_eq!(sha256(&data_dir.join("ledger.sqlite3")), ledger_before, "rescan wrote the ledger");
    assert!(text.contains("rescanned 10 volume(s)") && text.contains(": 1 assessed, 9 not assessed"), "{text}");

    let after: Vec<VulnReport> = app_vulns.iter().map(|p| read_vulns(p)).collect();
    let mut changed = 0;
    for ((path, b), a) in app_vulns.iter().zip(&before).zip(&after) {
        if !b.assessed {
            assert_eq!(a.assessed, b.assessed, "{}", path.display());
            continue;
        }
        changed += 1;
        assert_eq!(a.findings.len(), b.findings.len() + 1, "{}", path.display());
        let ours = a.findings.iter().find(|f| f.id == "TEST-2099-0001").expect("the new record matched");
        assert_eq!((ours.package.as_str(), ours.fixed_version.as_deref()), ("musl", Some("99.0-r0")));
        let oracle = direct(
            &path.with_file_name("inventory.json"),
            dir.path(),
            &[Input::path(data("alpine-secdb/v3.4")), Input::path(&extra)],
        );
        assert_eq!(essence(a), essence(&oracle));
    }
    assert_eq!(changed, 1);
    let show = agentless()
        .args(["vulns", "show", "--cve", "cve-2099-0001", "--data-dir"])
        .arg(&data_dir)
        .env_remove("AGENTLESS_DATA_DIR")
        .output()
        .expect("show");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("TEST-2099-0001") && text.contains("1 finding(s) on 1 instance(s)"), "{text}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
