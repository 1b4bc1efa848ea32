//! An AlmaLinux 9 root whose rpm database is built in the test by rpm itself: tiny noarch
//! packages named and versioned as real AlmaLinux 9 builds (`openssl` and `openssl-libs` from the
//! `openssl` source rpm, epoch 1), made with `rpmbuild` and installed `--justdb` into an sqlite
//! rpmdb under a root with AlmaLinux 9.1's os-release. The agent scans the root, the matcher
//! matches it against the AlmaLinux OSV snapshot (`tests/data/vuln/almalinux-osv`), and
//! ALSA-2023:0946 (openssl, fixed in 1:3.0.1-47.el9_1) is reported at 1:3.0.1-46.el9_0, the build
//! before the fix, and not at 1:3.0.1-47.el9_1; every finding left at the fixed build has a fixed
//! version that rpm itself orders above the installed one.

use std::path::{Path, PathBuf};
use std::process::Command;

use agentless::vuln::db::AdvisoryDb;
use agentless::vuln::db::import::{Input, import};
use agentless::vuln::findings::{Status, VulnReport};
use agentless::vuln::matcher::inventory::InventoryDoc;
use agentless::vuln::matcher::{MatchOptions, Matcher};

const ADVISORY: &str = "ALSA-2023:0946";
const BEFORE: &str = "46.el9_0";
const FIXED: &str = "47.el9_1";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup-test-env.sh installs rpm)"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The spec of AlmaLinux 9's openssl at `release`, reduced to its two runtime packages (no
/// files: only the database records matter).
const SPEC: &str = "Name: openssl
Epoch: 1
Version: 3.0.1
Release: %{rel}
Summary: stand-in for AlmaLinux 9 openssl
License: ASL 2.0
BuildArch: noarch
%description
Stand-in for AlmaLinux 9 openssl (database record only).
%package libs
Summary: stand-in for AlmaLinux 9 openssl-libs
%description libs
Stand-in for AlmaLinux 9 openssl-libs (database record only).
%files
%files libs
";

const OS_RELEASE: &str = r#"NAME="AlmaLinux"
VERSION="9.1 (Lime Lynx)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.1"
PLATFORM_ID="platform:el9"
PRETTY_NAME="AlmaLinux 9.1 (Lime Lynx)"
"#;

/// A root with AlmaLinux 9.1's os-release and an sqlite rpmdb holding openssl and openssl-libs
/// 1:3.0.1-`release`, installed by rpm from packages rpmbuild made.
fn almalinux_root(work: &Path, release: &str) -> PathBuf {
    let top = work.join(format!("rpmbuild-{release}"));
    let spec = work.join("openssl.spec");
    std::fs::write(&spec, SPEC).expect("spec");
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("rel {release}"))
        .arg(&spec));
    let rpms: Vec<PathBuf> = ["openssl", "openssl-libs"]
        .iter()
        .map(|n| top.join(format!("RPMS/noarch/{n}-3.0.1-{release}.noarch.rpm")))
        .collect();
    let root = work.join(format!("root-{release}"));
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::write(root.join("etc/os-release"), OS_RELEASE).expect("os-release");
    run(Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
        .args(["--justdb", "--nodeps", "--noscripts", "--notriggers", "-i"])
        .args(&rpms));
    assert!(root.join("var/lib/rpm/rpmdb.sqlite").is_file(), "rpm wrote no sqlite database");
    root
}

/// `NAME EPOCH:VERSION-RELEASE` of every package in the root's database, by rpm itself.
fn rpm_query(root: &Path) -> Vec<String> {
    let out = run(Command::new("rpm").arg("--root").arg(root).args([
        "--dbpath",
        "/var/lib/rpm",
        "-qa",
        "--qf",
        "%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE}\\n",
    ]));
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// `rpm.vercmp(a, b)` by rpm itself.
fn rpm_vercmp(a: &str, b: &str) -> i32 {
    run(Command::new("rpm").arg("--eval").arg(format!("%{{lua: io.write(rpm.vercmp([[{a}]], [[{b}]]))}}")))
        .trim()
        .parse()
        .expect("integer")
}

/// Scan `root` with the agent and match it against `db`; returns the inventory too.
fn scan_and_match(root: &Path, db: &AdvisoryDb) -> (InventoryDoc, scanner_ami::report::Report, VulnReport) {
    let scanned = scanner_ami::scan::scan_root(root, scanner_ami::scan::ScanOptions::default()).expect("scan");
    let inv = InventoryDoc::from_json(&serde_json::to_vec(&scanned).expect("inventory.json")).expect("inventory");
    let report =
        Matcher::new(db, MatchOptions::default()).match_inventory(&inv, "2026-12-08T00:00:00Z".parse().expect("now"));
    assert!(report.assessed, "{:?}", report.coverage);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    (inv, scanned, report)
}

fn reports(report: &VulnReport, package: &str, id: &str) -> bool {
    report.findings.iter().any(|f| f.package == package && (f.id == id || f.also.iter().any(|a| a == id)))
}

#[test]
fn almalinux9_rpmdb_built_by_rpm_is_reported_before_the_fix_and_not_at_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let before = almalinux_root(tmp.path(), BEFORE);
    let fixed = almalinux_root(tmp.path(), FIXED);

    let status = Command::new("tar")
        .arg("-xJf")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vuln/almalinux-osv/advisories.tar.xz"))
        .arg("-C")
        .arg(tmp.path())
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    let db_path = tmp.path().join("advisories.sqlite");
    let input =
        Input { path: tmp.path().join("advisories/almalinux9"), name: Some("almalinux-osv".into()), origin: None };
    import(&db_path, &[input], "2026-12-07T00:00:00Z".parse().expect("time")).expect("import");
    let db = AdvisoryDb::open(&db_path).expect("open");

    // The root before the fix: the agent reads what rpm wrote, and the advisory is reported for
    // both packages, fixed in the build after.
    let (inv, scanned, report) = scan_and_match(&before, &db);
    let ours: Vec<String> = {
        let mut v: Vec<String> = inv
            .packages
            .iter()
            .map(|p| {
                format!("{} {}:{}-{}", p.name, p.epoch.unwrap_or(0), p.version, p.release.as_deref().unwrap_or(""))
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(ours, rpm_query(&before));
    assert_eq!(ours, [format!("openssl 1:3.0.1-{BEFORE}"), format!("openssl-libs 1:3.0.1-{BEFORE}")]);
    assert_eq!(report.coverage.first().map(|c| c.ecosystems.clone()), Some(vec!["AlmaLinux:9".to_owned()]));
    for package in ["openssl", "openssl-libs"] {
        let f = report
            .findings
            .iter()
            .find(|f| f.package == package && f.id == ADVISORY)
            .unwrap_or_else(|| panic!("{ADVISORY} not reported for {package} 1:3.0.1-{BEFORE}"));
        assert_eq!(f.version, format!("1:3.0.1-{BEFORE}"));
        assert_eq!(f.fixed_version.as_deref(), Some("1:3.0.1-47.el9_1"));
        assert_eq!(f.status, Status::Fixed);
        assert_eq!(f.installed.first().and_then(|i| i.arch.as_deref()), Some("noarch"));
        assert!(rpm_vercmp(&f.version, "1:3.0.1-47.el9_1") < 0, "rpm orders the installed build below the fix");
    }

    // Its VEX names the SBOM's openssl-libs component for the advisory's CVEs, with the fix.
    let sbom =
        serde_json::to_value(scanner_ami::sbom::build(scanned.os.as_ref(), &scanned.packages, "alma9")).expect("sbom");
    let vex = agentless::vuln::vex::vex_document(&report, &sbom).expect("vex");
    let libs_ref = sbom["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "openssl-libs"))
        .and_then(|c| c["bom-ref"].as_str())
        .expect("openssl-libs in the SBOM")
        .to_owned();
    let alsa = report.findings.iter().find(|f| f.package == "openssl-libs" && f.id == ADVISORY).expect("finding");
    assert!(!alsa.cves.is_empty());
    for cve in &alsa.cves {
        let entry = vex["vulnerabilities"]
            .as_array()
            .and_then(|a| {
                a.iter().find(|v| {
                    v["id"] == cve.as_str() && v["bom-ref"].as_str().is_some_and(|r| r.ends_with("/openssl-libs"))
                })
            })
            .unwrap_or_else(|| panic!("{cve} of openssl-libs not in the VEX"));
        let link = entry["affects"][0]["ref"].as_str().expect("ref");
        assert!(link.ends_with(&format!("#{}", scanner_ami::purl::encode(&libs_ref))), "{link}");
        assert_eq!(entry["analysis"]["state"], "exploitable");
        assert_eq!(entry["recommendation"], "Upgrade openssl-libs to 1:3.0.1-47.el9_1 or later");
    }

    // The root at the fix: not reported; whatever else is (later advisories), rpm agrees the
    // installed build is below its fix.
    let (inv, _, report) = scan_and_match(&fixed, &db);
    assert_eq!(inv.packages.len(), 2);
    for package in ["openssl", "openssl-libs"] {
        assert!(!reports(&report, package, ADVISORY), "{ADVISORY} reported for {package} at its fixed build");
    }
    for f in &report.findings {
        let fix = f.fixed_version.as_deref().expect("AlmaLinux records carry fixes");
        assert!(rpm_vercmp(&f.version, fix) < 0, "{}: {} is not below {fix} for rpm", f.id, f.version);
    }
}
