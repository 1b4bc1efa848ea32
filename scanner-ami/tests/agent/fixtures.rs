//! Every fixture package database, placed at its real path in a root tree and scanned through the
//! full stack (`scan_root`): exactly the expected packages, field by field, counts included.

use scanner_ami::inventory::{DbFormat, Ecosystem};
use serde_json::Value;

use crate::util::{Tree, dpkg_oracle, fixtures, ours, rpm_oracle, scan_root, ubuntu_tree};

fn expected(rel: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(rel)).expect("expected.json");
    serde_json::from_str(&text).expect("json")
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

#[test]
fn dpkg_status_ubuntu_matches_trivy_expected_and_dpkg_query() {
    let tree = ubuntu_tree();
    let r = scan_root(tree.path());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.os.as_ref().map(|o| o.distro()), Some("ubuntu-18.04".into()));
    let want = expected("trivy/dpkg/expected.json");
    let want = want["packages"].as_array().expect("packages");
    assert_eq!(want.len(), 90);
    assert_eq!(r.packages.len(), 90, "git (deinstall ok config-files) must be skipped");
    let mut got = r.packages.clone();
    got.sort_by(|a, b| a.name.cmp(&b.name));
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.ecosystem, Ecosystem::Deb);
        assert_eq!(Some(g.name.clone()), s(&w["Name"]));
        assert_eq!(Some(g.version.clone()), s(&w["Version"]), "{}", g.name);
        assert_eq!(g.release, s(&w["Release"]), "{}", g.name);
        assert_eq!(g.epoch.map(u64::from), w["Epoch"].as_u64(), "{}", g.name);
        assert_eq!(g.arch, s(&w["Arch"]), "{}", g.name);
        assert_eq!(g.source_name, s(&w["SrcName"]), "{}", g.name);
        assert_eq!(g.maintainer, s(&w["Maintainer"]), "{}", g.name);
        let src_full = format!(
            "{}{}{}",
            w["SrcEpoch"].as_u64().map(|e| format!("{e}:")).unwrap_or_default(),
            w["SrcVersion"].as_str().unwrap_or_default(),
            w["SrcRelease"].as_str().map(|r| format!("-{r}")).unwrap_or_default()
        );
        assert_eq!(g.source_version.as_deref(), Some(src_full.as_str()), "{}", g.name);
        assert_eq!(format!("{}@{}", g.name, g.full_version()), w["ID"].as_str().unwrap_or_default());
    }
    assert_eq!(ours(&r.packages), dpkg_oracle(tree.path()));
    let db = &r.databases[0];
    assert_eq!((db.format, db.packages), (DbFormat::DpkgStatus, 90));
    assert!(db.skipped.iter().any(|n| n.contains("git") && n.contains("config-files")), "{:?}", db.skipped);
}

#[test]
fn dpkg_distroless_status_d_matches_syft_expected() {
    let t = Tree::new();
    t.os_release("debian", "10", "Debian GNU/Linux 10 (buster)");
    for f in ["single", "multiple", "deinstall", "corrupt"] {
        t.copy(&format!("var/lib/dpkg/status.d/{f}"), &format!("syft/debian/status.d/{f}"));
    }
    t.put("var/lib/dpkg/status.d/single.md5sums", b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/apt\n");
    let r = scan_root(t.path());
    type Row = (String, String, Option<String>, Option<String>, Option<u64>);
    let got: Vec<Row> = r
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.full_version(), p.source_name.clone(), p.arch.clone(), p.installed_size))
        .collect();
    // Directory order is sorted: deinstall, multiple, single (corrupt yields nothing).
    let kib = |n: u64| Some(n * 1024);
    assert_eq!(
        got,
        vec![
            (
                "linux-image-6.14.0-1012-aws".into(),
                "6.14.0-1012.12~24.04.1".into(),
                Some("linux-signed-aws-6.14".into()),
                Some("amd64".into()),
                kib(15221)
            ),
            ("tzdata".into(), "2020a-0+deb10u1".into(), Some("tzdata-dev".into()), Some("all".into()), kib(3036)),
            ("util-linux".into(), "2.33.1-0.1".into(), Some("util-linux".into()), Some("amd64".into()), kib(4327)),
            ("apt".into(), "1.8.2".into(), Some("apt-dev".into()), Some("amd64".into()), kib(4064)),
        ]
    );
    let db = r.databases.iter().find(|d| d.format == DbFormat::DpkgStatusD).expect("status.d db");
    let notes = db.skipped.join("\n");
    assert!(notes.contains("corrupt") && notes.contains("neither"), "{notes}");
    assert!(notes.contains("no-version: no Version field"), "{notes}");
    assert!(notes.contains("without a Package field"), "{notes}");
}

#[test]
fn dpkg_installed_size_with_unit() {
    let t = Tree::new();
    t.copy("var/lib/dpkg/status.d/apt", "syft/debian/status.d/installed-size-4KB");
    let r = scan_root(t.path());
    assert_eq!(r.packages.len(), 1);
    assert_eq!(r.packages[0].installed_size, Some(4000));
}

#[test]
fn apk_installed_matches_trivy_expected() {
    let t = Tree::new();
    t.put("etc/alpine-release", b"3.4.6\n").copy("lib/apk/db/installed", "trivy/apk/installed");
    // The newer location as a symlink to the same file must not double-count.
    t.symlink("usr/lib/apk/db/installed", "/lib/apk/db/installed");
    let r = scan_root(t.path());
    assert_eq!(r.os.as_ref().map(|o| o.distro()), Some("alpine-3.4.6".into()));
    let want = expected("trivy/apk/expected.json");
    let want = want["packages"].as_array().expect("packages");
    assert_eq!(r.packages.len(), 15);
    let got: Vec<String> = r.packages.iter().map(|p| format!("{}@{}", p.name, p.version)).collect();
    let exp: Vec<String> = want.iter().map(|w| w["ID"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(got, exp);
    assert_eq!(r.databases.len(), 1, "{:?}", r.databases);
}

#[test]
fn rpm_bdb_rhel8_matches_expected_and_rpm_oracle() {
    let t = Tree::new();
    t.os_release("rhel", "8.8", "Red Hat Enterprise Linux 8.8 (Ootpa)")
        .copy("var/lib/rpm/Packages", "go-rpmdb/libuuid-bdb/Packages");
    let r = scan_root(t.path());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.packages.len(), 1);
    let p = &r.packages[0];
    assert_eq!(
        (p.name.as_str(), p.version.as_str(), p.release.as_deref(), p.epoch),
        ("libuuid", "2.32.1", Some("42.el8_8"), None)
    );
    assert_eq!(p.arch.as_deref(), Some("x86_64"));
    assert_eq!(p.source_rpm.as_deref(), Some("util-linux-2.32.1-42.el8_8.src.rpm"));
    assert_eq!(p.license.as_deref(), Some("BSD"));
    assert_eq!(p.vendor.as_deref(), Some("Red Hat, Inc."));
    assert_eq!(p.installed_size, Some(35104));
    assert_eq!(p.db, DbFormat::RpmBdb);
    assert_eq!(ours(&r.packages), rpm_oracle(&t.path().join("var/lib/rpm")));
}

#[test]
fn rpm_sqlite_mariner_matches_rpm_oracle_exactly() {
    let t = Tree::new();
    t.os_release("mariner", "2.0", "CBL-Mariner/Linux")
        .copy("var/lib/rpm/rpmdb.sqlite", "go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite");
    let r = scan_root(t.path());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.packages.len(), 129);
    let want = expected("go-rpmdb/cbl-mariner-2.0-sqlite/expected.json");
    for (g, w) in r.packages.iter().zip(want["packages_oracle"].as_array().expect("list")) {
        assert_eq!(Some(g.name.clone()), s(&w["name"]));
        assert_eq!(Some(g.version.clone()), s(&w["version"]));
        assert_eq!(g.release, s(&w["release"]));
        assert_eq!(g.epoch.map(u64::from), w["epoch"].as_u64());
        assert_eq!(g.arch, s(&w["arch"]));
        assert_eq!(g.source_rpm, s(&w["sourceRpm"]));
        assert_eq!(g.installed_size, w["size"].as_u64());
        assert_eq!(g.license, s(&w["license"]));
    }
    let curl = r.packages.iter().find(|p| p.name == "curl").expect("curl");
    assert_eq!((curl.full_version().as_str(), curl.installed_size), ("7.76.0-6.cm2", Some(326_023)));
    assert_eq!(ours(&r.packages), rpm_oracle(&t.path().join("var/lib/rpm")));
}

#[test]
fn rpm_ndb_sle15_matches_expected_in_order() {
    let t = Tree::new();
    t.os_release("sles", "15.3", "SUSE Linux Enterprise Server 15 SP3")
        .copy("usr/lib/sysimage/rpm/Packages.db", "go-rpmdb/sle15-bci-ndb/Packages.db");
    let r = scan_root(t.path());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let want = expected("go-rpmdb/sle15-bci-ndb/expected.json");
    let want = want["packages"].as_array().expect("packages");
    assert_eq!(r.packages.len(), 35);
    for (g, w) in r.packages.iter().zip(want) {
        assert_eq!(Some(g.name.clone()), s(&w["name"]));
        assert_eq!(Some(g.version.clone()), s(&w["version"]));
        assert_eq!(g.release, s(&w["release"]));
        assert_eq!(g.epoch.map(u64::from), w["epoch"].as_u64());
        assert_eq!(g.arch, s(&w["arch"]));
        assert_eq!(g.source_rpm, s(&w["sourceRpm"]));
        assert_eq!(g.license, s(&w["license"]));
        assert_eq!(g.installed_size, w["size"].as_u64());
    }
}

#[test]
fn rpm_manifest_distroless() {
    let t = Tree::new();
    t.os_release("mariner", "2.0", "CBL-Mariner/Linux")
        .copy("var/lib/rpmmanifest/container-manifest-2", "syft/redhat/rpmmanifest/container-manifest-2");
    let r = scan_root(t.path());
    let text =
        std::fs::read_to_string(fixtures().join("syft/redhat/rpmmanifest/container-manifest-2")).expect("fixture");
    assert_eq!(r.packages.len(), text.lines().filter(|l| !l.trim().is_empty()).count());
    let first: Vec<String> = r
        .packages
        .iter()
        .take(4)
        .map(|p| format!("{} {} {}", p.name, p.full_version(), p.arch.as_deref().unwrap_or("-")))
        .collect();
    assert_eq!(
        first,
        [
            "mariner-release 2.0-12.cm2 noarch",
            "filesystem 1.1-9.cm2 x86_64",
            "glibc 2.35-2.cm2 x86_64",
            "openssl-libs 1.1.1k-15.cm2 x86_64"
        ]
    );
    assert_eq!(r.packages[0].db, DbFormat::RpmManifest);
}
