//! Matching on real advisory data, against independent oracles:
//! - AlmaLinux 9: the AlmaLinux OSV snapshot imported into the advisory database, packages just
//!   before and exactly at real fixes; the expected set is computed from the raw JSON files with
//!   rpm's own comparator (`rpm.vercmp` through `rpm --eval`), not ours;
//! - Alpine 3.4: the demo Alpine root scanned by the agent, matched against the v3.4 secdb; the
//!   expected set is what Trivy 0.59.1 reported for the same root and secdb
//!   (`tests/data/vuln-match/alpine-3.4-trivy.tsv`, how it was made is written in its header).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentless::vuln::db::AdvisoryDb;
use agentless::vuln::db::import::{Input, import};
use agentless::vuln::findings::{CoverageStatus, Status, VulnReport};
use agentless::vuln::matcher::inventory::{DatabaseDoc, InventoryDoc, OsDoc, PackageDoc};
use agentless::vuln::matcher::{MatchOptions, Matcher};

use super::{almalinux, data};

/// The AlmaLinux OSV snapshot extracted into `tmp`; returns its `advisories/almalinux9` directory.
fn almalinux9(tmp: &Path) -> PathBuf {
    almalinux(tmp).join("almalinux9")
}

const IMPORT_TIME: &str = "2026-12-07T00:00:00Z";

/// Import `inputs` into a fresh database in `dir` and open it.
fn database(dir: &Path, inputs: &[(&str, PathBuf)]) -> AdvisoryDb {
    let db = dir.join("advisories.sqlite");
    let inputs: Vec<Input> = inputs
        .iter()
        .map(|(name, path)| Input { path: path.clone(), name: Some((*name).to_owned()), origin: None })
        .collect();
    import(&db, &inputs, IMPORT_TIME.parse().expect("time")).expect("import");
    AdvisoryDb::open(&db).expect("open")
}

const RPMDB: (&str, &str) = ("rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite");

fn rpm_pkg(name: &str, epoch: Option<u32>, version: &str, release: &str) -> PackageDoc {
    let mut p = PackageDoc::new("rpm", name, version, RPMDB.0, RPMDB.1);
    p.epoch = epoch;
    p.release = Some(release.to_owned());
    p.arch = Some("x86_64".into());
    p
}

/// `rpm.vercmp(a, b)` for each pair, by rpm itself (one process for all pairs).
fn rpm_vercmp(pairs: &[(String, String)]) -> Vec<i32> {
    let mut lua = String::from("%{lua: ");
    for (a, b) in pairs {
        lua.push_str(&format!("io.write(rpm.vercmp([[{a}]], [[{b}]]), ',') "));
    }
    lua.push('}');
    let out =
        Command::new("rpm").arg("--eval").arg(&lua).output().expect("rpm (scripts/setup-test-env.sh installs it)");
    assert!(out.status.success(), "rpm --eval: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let got: Vec<i32> = text.trim().split(',').filter(|s| !s.is_empty()).map(|s| s.parse().expect("integer")).collect();
    assert_eq!(got.len(), pairs.len(), "rpm printed {text:?}");
    got
}

/// Every (advisory id, fixed version) of the raw AlmaLinux 9 JSON files for `package`, security
/// advisories only (ALSA), read with serde_json alone.
fn raw_alma9_fixes(dir: &Path, package: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("alma9 dir") {
        let path = entry.expect("entry").path();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let id = json["id"].as_str().expect("id").to_owned();
        if !id.starts_with("ALSA-") {
            continue;
        }
        for affected in json["affected"].as_array().into_iter().flatten() {
            if affected["package"]["name"] != package || affected["package"]["ecosystem"] != "AlmaLinux:9" {
                continue;
            }
            for range in affected["ranges"].as_array().into_iter().flatten() {
                for event in range["events"].as_array().into_iter().flatten() {
                    if let Some(fixed) = event["fixed"].as_str() {
                        out.push((id.clone(), fixed.to_owned()));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

/// (advisory id, lookup name) of each finding and of the advisories folded into it (`also`: same
/// package, CVEs all covered by the package's other findings).
fn reported_ids(report: &VulnReport) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for f in &report.findings {
        for id in std::iter::once(&f.id).chain(&f.also) {
            out.insert((id.clone(), f.package.clone()));
        }
    }
    out
}

#[test]
fn almalinux9_before_and_at_real_fixes_as_rpm_orders_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let alma9 = almalinux9(tmp.path());
    let db = database(tmp.path(), &[("almalinux-osv", alma9.clone())]);
    // Just before and exactly at ALSA-2023:0946's fix (1:3.0.1-47.el9_1); an epoch-less
    // openssl-devel whose higher version does not outrank the fixes' epoch 1; a kernel build with
    // its split packages; bash at one of its fixed releases.
    let packages = vec![
        rpm_pkg("openssl-libs", Some(1), "3.0.1", "46.el9_0"),
        rpm_pkg("openssl", Some(1), "3.0.1", "47.el9_1"),
        rpm_pkg("openssl-devel", None, "3.0.9", "99.el9"),
        rpm_pkg("kernel", None, "5.14.0", "162.6.1.el9_1"),
        rpm_pkg("kernel-core", None, "5.14.0", "162.6.1.el9_1"),
        rpm_pkg("bash", None, "5.1.8", "6.el9_1"),
    ];
    let inv = InventoryDoc {
        schema: Some("agentless.inventory/v1".into()),
        os: Some(OsDoc { id: "almalinux".into(), version_id: Some("9.1".into()), ..OsDoc::default() }),
        databases: vec![DatabaseDoc {
            format: RPMDB.0.into(),
            path: RPMDB.1.into(),
            packages: packages.len(),
            error: None,
        }],
        packages: packages.clone(),
    };
    let now: jiff::Timestamp = "2026-12-08T00:00:00Z".parse().expect("now");
    let report = Matcher::new(&db, MatchOptions::default()).match_inventory(&inv, now);
    assert!(report.assessed, "{:?}", report.coverage);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let coverage = report.coverage.first().expect("coverage");
    assert_eq!(coverage.ecosystems, ["AlmaLinux:9"]);
    assert_eq!(coverage.sources.first().map(|s| (s.name.as_str(), s.age_days)), Some(("almalinux-osv", Some(1))));

    // The oracle: every ALSA fix of each lookup name, compared by rpm with the installed EVR.
    let mut pairs = Vec::new();
    let mut candidates = Vec::new();
    for p in &packages {
        let lookup = if p.name.starts_with("kernel") { "kernel" } else { p.name.as_str() };
        for (id, fixed) in raw_alma9_fixes(&alma9, lookup) {
            pairs.push((p.full_version(), fixed.clone()));
            candidates.push((id, lookup.to_owned(), fixed));
        }
    }
    let order = rpm_vercmp(&pairs);
    let expected: BTreeSet<(String, String, String)> =
        candidates.into_iter().zip(order).filter(|(_, cmp)| *cmp < 0).map(|(c, _)| c).collect();
    let expected_ids: BTreeSet<(String, String)> = expected.iter().map(|(id, p, _)| (id.clone(), p.clone())).collect();
    assert_eq!(reported_ids(&report), expected_ids);
    // And each finding's fix is its record's.
    for f in &report.findings {
        let fix = (f.id.clone(), f.package.clone(), f.fixed_version.clone().unwrap_or_default());
        assert!(expected.contains(&fix), "{fix:?}");
    }

    // The facts the oracle stands on, spelled out.
    let at = |name: &str, id: &str| {
        report.findings.iter().find(|f| f.package == name && (f.id == id || f.also.iter().any(|a| a == id)))
    };
    let f = at("openssl-libs", "ALSA-2023:0946").expect("1:3.0.1-46.el9_0 is before the fix");
    assert_eq!((f.fixed_version.as_deref(), f.status), (Some("1:3.0.1-47.el9_1"), Status::Fixed));
    assert_eq!(f.version, "1:3.0.1-46.el9_0");
    assert_eq!(f.cves.len(), 8, "{:?}", f.cves);
    assert!(at("openssl", "ALSA-2023:0946").is_none(), "1:3.0.1-47.el9_1 is the fix itself");
    assert!(at("openssl-devel", "ALSA-2023:0946").is_some(), "epoch 0 is below epoch 1 whatever the version");
    let kernel: Vec<_> = report.findings.iter().filter(|f| f.package == "kernel").collect();
    assert!(!kernel.is_empty());
    for f in &kernel {
        assert!(f.kernel);
        let names: Vec<&str> = f.installed.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["kernel", "kernel-core"]);
    }
    assert!(report.findings.iter().all(|f| !f.id.starts_with("ALBA-")), "bug-fix errata are not vulnerabilities");
}

/// Scan the demo Alpine 3.4 image with the agent and return its inventory as stored.
fn demo_alpine_inventory(dir: &Path) -> InventoryDoc {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/demo/demo-alpine.img.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("demo-alpine.img.gz"))
        .read_to_end(&mut raw)
        .expect("gunzip");
    let img = dir.join("demo-alpine.img");
    std::fs::write(&img, raw).expect("write image");
    let report = scanner_ami::scan::scan_image(&img, scanner_ami::scan::ScanOptions::default()).expect("scan");
    let json = serde_json::to_vec(&report).expect("inventory.json");
    InventoryDoc::from_json(&json).expect("parse inventory")
}

/// Trivy's findings: (binary package, installed version, CVE, fixed version).
fn trivy_alpine() -> BTreeSet<(String, String, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vuln-match/alpine-3.4-trivy.tsv");
    let text = std::fs::read_to_string(path).expect("trivy tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "{l}");
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned(), f[3].to_owned())
        })
        .collect()
}

#[test]
fn alpine_demo_root_against_the_v3_4_secdb_agrees_with_trivy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let inv = demo_alpine_inventory(tmp.path());
    let os = inv.os.as_ref().expect("os");
    assert_eq!((os.id.as_str(), os.version_id.as_deref()), ("alpine", Some("3.4.6")));
    assert_eq!(inv.packages.len(), 15);
    let db = database(tmp.path(), &[("alpine-secdb", data("alpine-secdb/v3.4"))]);
    let now: jiff::Timestamp = "2026-12-08T00:00:00Z".parse().expect("now");
    let report = Matcher::new(&db, MatchOptions::default()).match_inventory(&inv, now);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let coverage = report.coverage.first().expect("coverage");
    assert_eq!((coverage.status, coverage.packages), (CoverageStatus::Assessed, 15));
    assert_eq!(coverage.ecosystems, ["Alpine:v3.4"]);

    // Ours, one line per (installed binary, CVE), as Trivy reports them.
    let mut ours = BTreeSet::new();
    let mut per_source: BTreeMap<String, usize> = BTreeMap::new();
    for f in &report.findings {
        assert_eq!(f.status, Status::Fixed, "secdb lists fixes only: {}", f.id);
        *per_source.entry(f.package.clone()).or_default() += 1;
        for installed in &f.installed {
            for cve in &f.cves {
                ours.insert((
                    installed.name.clone(),
                    installed.version.clone(),
                    cve.clone(),
                    f.fixed_version.clone().unwrap_or_default(),
                ));
            }
        }
    }
    // Where the secdb lists a CVE under two fixes (openssl CVE-2017-3738: 1.0.2n-r0, then
    // 1.0.2o-r0), Trivy's database keeps one per (package, CVE), the last written; ours is the
    // higher, since a version is affected until it has left both ranges. They agree here.
    // Trivy keeps CVE identifiers only; a secdb entry of another kind would be ours alone.
    let without_cve: Vec<&str> = report.findings.iter().filter(|f| f.cves.is_empty()).map(|f| f.id.as_str()).collect();
    assert!(without_cve.is_empty(), "{without_cve:?}");
    let trivy = trivy_alpine();
    let only_ours: Vec<_> = ours.difference(&trivy).collect();
    let only_trivy: Vec<_> = trivy.difference(&ours).collect();
    assert!(only_ours.is_empty() && only_trivy.is_empty(), "only ours: {only_ours:#?}\nonly Trivy: {only_trivy:#?}");
    assert_eq!(trivy.len(), 57);
    // libcrypto1.0 and libssl1.0 come from one origin, openssl: one finding each CVE, both binaries.
    assert_eq!(
        per_source,
        BTreeMap::from([
            ("busybox".to_owned(), 3),
            ("musl".to_owned(), 2),
            ("openssl".to_owned(), 23),
            ("zlib".to_owned(), 4)
        ])
    );
}
