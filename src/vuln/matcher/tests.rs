//! Unit tests of the matcher over an in-memory source: package identity, streams, statuses,
//! coverage, deduplication and caching.

use std::cell::Cell;

use super::inventory::{DatabaseDoc, OsDoc};
use super::*;

const NOW: &str = "2024-06-01T00:00:00Z";
const IMPORTED: &str = "2024-05-30T00:00:00Z";

fn now() -> jiff::Timestamp {
    NOW.parse().expect("timestamp")
}

fn record(id: &str, eco: &str, pkg: &str, events: serde_json::Value, extra: serde_json::Value) -> osv::Record {
    let mut json = serde_json::json!({
        "id": id,
        "modified": "2024-01-02T00:00:00Z",
        "published": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": eco, "name": pkg}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
    });
    if let (Some(obj), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json).expect("record")
}

fn fixed(v: &str) -> serde_json::Value {
    serde_json::json!([{"introduced": "0"}, {"fixed": v}])
}

fn unfixed() -> serde_json::Value {
    serde_json::json!([{"introduced": "0"}])
}

fn none() -> serde_json::Value {
    serde_json::json!({})
}

fn source(name: &str, records: Vec<osv::Record>) -> MemorySource {
    let mut s = MemorySource::new();
    s.add_source(name, Some(IMPORTED), records);
    s
}

fn inventory(id: &str, version: Option<&str>, db: (&str, &str), packages: Vec<PackageDoc>) -> InventoryDoc {
    InventoryDoc {
        schema: Some(inventory::INVENTORY_SCHEMA.into()),
        os: Some(OsDoc { id: id.into(), version_id: version.map(str::to_owned), ..OsDoc::default() }),
        databases: vec![DatabaseDoc { format: db.0.into(), path: db.1.into(), packages: packages.len(), error: None }],
        packages,
    }
}

const DPKG: (&str, &str) = ("dpkg-status", "/var/lib/dpkg/status");

/// A dpkg package the way the agent records it (upstream/revision split, source defaulting to itself).
fn deb(name: &str, upstream: &str, revision: &str, source: Option<(&str, &str)>) -> PackageDoc {
    let mut p = PackageDoc::new("deb", name, upstream, DPKG.0, DPKG.1);
    p.release = Some(revision.to_owned());
    let full = format!("{upstream}-{revision}");
    let (sn, sv) = source.unwrap_or((name, full.as_str()));
    p.source_name = Some(sn.to_owned());
    p.source_version = Some(sv.to_owned());
    p
}

fn ids(r: &VulnReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.id.as_str()).collect()
}

#[test]
fn debian_source_package_and_source_version() {
    // postgresql-client 15+248+deb12u2 is built from postgresql-common 248+deb12u2.
    let src = source(
        "debian-osv",
        vec![
            record(
                "DSA-9001-1",
                "Debian:12",
                "postgresql-common",
                fixed("248+deb12u3"),
                serde_json::json!({"aliases": ["CVE-2024-1"]}),
            ),
            // The binary's own name is never what Debian advisories use.
            record("DSA-9002-1", "Debian:12", "postgresql-client", fixed("16"), none()),
        ],
    );
    let pkg =
        |src_version: &str| deb("postgresql-client", "15+248+deb12u2", "x", Some(("postgresql-common", src_version)));
    let r = match_inventory(&inventory("debian", Some("12"), DPKG, vec![pkg("248+deb12u2")]), &src, now());
    assert_eq!(ids(&r), ["DSA-9001-1"]);
    let f = r.findings.first().expect("finding");
    assert_eq!((f.package.as_str(), f.version.as_str()), ("postgresql-common", "248+deb12u2"));
    assert_eq!(f.installed.first().map(|i| i.name.as_str()), Some("postgresql-client"));
    assert_eq!((f.status, f.fixed_version.as_deref()), (Status::Fixed, Some("248+deb12u3")));
    assert_eq!(f.cves, ["CVE-2024-1"]);
    assert_eq!(f.ecosystem, "Debian:12");
    assert_eq!(f.source, "debian-osv");
    assert_eq!(f.age_days, Some(152), "2024-01-01 to 2024-06-01");
    // At the fixed source version: nothing.
    let r = match_inventory(&inventory("debian", Some("12"), DPKG, vec![pkg("248+deb12u3")]), &src, now());
    assert!(r.findings.is_empty(), "{:?}", ids(&r));
    assert!(r.assessed);
}

#[test]
fn another_release_never_matches() {
    let src = source("debian-osv", vec![record("DSA-1-1", "Debian:11", "openssl", fixed("9"), none())]);
    let inv = inventory("debian", Some("12"), DPKG, vec![deb("openssl", "3.0.11", "1~deb12u2", None)]);
    let r = match_inventory(&inv, &src, now());
    assert!(r.findings.is_empty());
    // And the Debian 12 set is not assessed at all: there is nothing for Debian:12.
    let c = r.coverage.first().expect("coverage");
    assert_eq!(c.status, CoverageStatus::NotAssessed);
    assert!(c.reason.as_deref().is_some_and(|why| why.contains("Debian:12")), "{c:?}");
    assert!(!r.assessed);
}

#[test]
fn debian_kernel_image_is_matched_as_linux() {
    let src = source("debian-osv", vec![record("DSA-5532-1", "Debian:12", "linux", fixed("6.1.64-1"), none())]);
    let image = deb("linux-image-6.1.0-13-amd64", "6.1.55", "1", Some(("linux-signed-amd64", "6.1.55+1")));
    let libc = deb("linux-libc-dev", "6.1.55", "1", Some(("linux", "6.1.55-1")));
    let r = match_inventory(&inventory("debian", Some("12"), DPKG, vec![image, libc]), &src, now());
    assert_eq!(ids(&r), ["DSA-5532-1"], "one finding for both binaries of linux 6.1.55-1");
    let f = r.findings.first().expect("finding");
    assert_eq!((f.package.as_str(), f.version.as_str(), f.kernel), ("linux", "6.1.55-1", true));
    let names: Vec<&str> = f.installed.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["linux-image-6.1.0-13-amd64", "linux-libc-dev"]);
}

#[test]
fn ubuntu_pro_stream() {
    let both = |id: &str, free: serde_json::Value, paid: serde_json::Value| -> osv::Record {
        serde_json::from_value(serde_json::json!({
            "id": id, "modified": "2024-01-02T00:00:00Z",
            "affected": [
                {"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "nodejs"}, "ranges": [{"type": "ECOSYSTEM", "events": free}]},
                {"package": {"ecosystem": "Ubuntu:Pro:22.04:LTS", "name": "nodejs"}, "ranges": [{"type": "ECOSYSTEM", "events": paid}]},
            ]
        }))
        .expect("record")
    };
    let src = source(
        "ubuntu-osv",
        vec![
            // No fix in the free stream, one in Pro.
            both("UBUNTU-CVE-2024-1", unfixed(), fixed("12.22.9~dfsg-1ubuntu3.4+esm1")),
            // Fixed in both: the free fix is the one to report.
            both("UBUNTU-CVE-2024-2", fixed("12.22.9~dfsg-1ubuntu3.5"), fixed("12.22.9~dfsg-1ubuntu3.5")),
            // Unfixed everywhere.
            both("UBUNTU-CVE-2024-3", unfixed(), unfixed()),
            // Only in the Pro stream.
            record(
                "UBUNTU-CVE-2024-4",
                "Ubuntu:Pro:22.04:LTS",
                "nodejs",
                fixed("12.22.9~dfsg-1ubuntu3.4+esm2"),
                none(),
            ),
        ],
    );
    let node = |rev: &str| deb("nodejs", "12.22.9~dfsg", rev, None);
    let r = match_inventory(&inventory("ubuntu", Some("22.04"), DPKG, vec![node("1ubuntu3.4")]), &src, now());
    let got: Vec<(&str, Status, Option<&str>, &str)> = r
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.status, f.fixed_version.as_deref(), f.ecosystem.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "UBUNTU-CVE-2024-1",
                Status::FixInPaidStream,
                Some("12.22.9~dfsg-1ubuntu3.4+esm1"),
                "Ubuntu:Pro:22.04:LTS"
            ),
            ("UBUNTU-CVE-2024-2", Status::Fixed, Some("12.22.9~dfsg-1ubuntu3.5"), "Ubuntu:22.04:LTS"),
            ("UBUNTU-CVE-2024-3", Status::Unfixed, None, "Ubuntu:22.04:LTS"),
            (
                "UBUNTU-CVE-2024-4",
                Status::FixInPaidStream,
                Some("12.22.9~dfsg-1ubuntu3.4+esm2"),
                "Ubuntu:Pro:22.04:LTS"
            ),
        ]
    );
    let c = r.coverage.first().expect("coverage");
    assert_eq!(c.ecosystems, ["Ubuntu:22.04:LTS", "Ubuntu:Pro:22.04:LTS"]);
    // The ESM build is installed: Pro says it is fixed, so the free stream's "unfixed" does not count.
    let r = match_inventory(&inventory("ubuntu", Some("22.04"), DPKG, vec![node("1ubuntu3.4+esm2")]), &src, now());
    let got: Vec<&str> = ids(&r);
    assert_eq!(got, ["UBUNTU-CVE-2024-2", "UBUNTU-CVE-2024-3"]);
}

#[test]
fn unimportant_is_low_urgency_and_hidden_by_default() {
    let src = source(
        "debian-osv",
        vec![
            record("DEBIAN-CVE-2024-7", "Debian:12", "glibc", unfixed(), none()),
            serde_json::from_value(serde_json::json!({
                "id": "DEBIAN-CVE-2010-4756", "modified": "2024-01-02T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                              "ecosystem_specific": {"urgency": "unimportant"}}]
            }))
            .expect("record"),
        ],
    );
    let libc = deb("libc6", "2.36", "9+deb12u4", Some(("glibc", "2.36-9+deb12u4")));
    let r = match_inventory(&inventory("debian", Some("12"), DPKG, vec![libc]), &src, now());
    assert_eq!(ids(&r), ["DEBIAN-CVE-2010-4756", "DEBIAN-CVE-2024-7"]);
    let statuses: Vec<Status> = r.findings.iter().map(|f| f.status).collect();
    assert_eq!(statuses, [Status::LowUrgency, Status::Unfixed]);
    assert_eq!(r.visible().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["DEBIAN-CVE-2024-7"]);
    assert_eq!((r.counts.visible, r.counts.hidden_low_urgency), (1, 1));
}

#[test]
fn advisory_and_per_cve_records_are_folded() {
    let src = source(
        "debian-osv",
        vec![
            record(
                "DSA-5000-1",
                "Debian:12",
                "openssl",
                fixed("3.0.13-1~deb12u1"),
                serde_json::json!({"aliases": ["CVE-2024-1", "CVE-2024-2"]}),
            ),
            record(
                "DEBIAN-CVE-2024-1",
                "Debian:12",
                "openssl",
                fixed("3.0.13-1~deb12u1"),
                serde_json::json!({"upstream": ["CVE-2024-1"]}),
            ),
            record(
                "DEBIAN-CVE-2024-2",
                "Debian:12",
                "openssl",
                fixed("3.0.13-1~deb12u1"),
                serde_json::json!({"upstream": ["CVE-2024-2"]}),
            ),
            // A DSA with a CVE of its own stays.
            record(
                "DSA-5001-1",
                "Debian:12",
                "openssl",
                fixed("3.0.13-1~deb12u1"),
                serde_json::json!({"aliases": ["CVE-2024-2", "CVE-2024-3"]}),
            ),
        ],
    );
    let inv = inventory(
        "debian",
        Some("12"),
        DPKG,
        vec![deb("libssl3", "3.0.11", "1~deb12u2", Some(("openssl", "3.0.11-1~deb12u2")))],
    );
    let r = match_inventory(&inv, &src, now());
    assert_eq!(ids(&r), ["DEBIAN-CVE-2024-1", "DEBIAN-CVE-2024-2", "DSA-5001-1"]);
    let first = r.findings.first().expect("finding");
    assert_eq!(first.also, ["DSA-5000-1"]);
}

#[test]
fn withdrawn_and_bug_fix_errata_are_ignored() {
    let src = source(
        "almalinux-osv",
        vec![
            record(
                "ALSA-2024:1",
                "AlmaLinux:9",
                "bash",
                fixed("5.1.8-9.el9"),
                serde_json::json!({"withdrawn": "2024-02-01T00:00:00Z"}),
            ),
            record("ALBA-2024:2", "AlmaLinux:9", "bash", fixed("5.1.8-9.el9"), none()),
            record("ALSA-2024:3", "AlmaLinux:9", "bash", fixed("5.1.8-9.el9"), none()),
        ],
    );
    let mut bash = PackageDoc::new("rpm", "bash", "5.1.8", "rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite");
    bash.release = Some("6.el9_1".into());
    let r = match_inventory(
        &inventory("almalinux", Some("9.3"), ("rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite"), vec![bash]),
        &src,
        now(),
    );
    assert_eq!(ids(&r), ["ALSA-2024:3"]);
}

#[test]
fn coverage_says_why_a_set_was_not_assessed() {
    let src = source("almalinux-osv", vec![record("ALSA-1", "AlmaLinux:9", "bash", fixed("9"), none())]);
    let rpm = ("rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite");
    let bash = PackageDoc::new("rpm", "bash", "5.1.8", rpm.0, rpm.1);
    let reason = |inv: &InventoryDoc, src: &dyn AdvisorySource, at: jiff::Timestamp| -> String {
        let r = Matcher::new(src, MatchOptions::default()).match_inventory(inv, at);
        assert!(r.findings.is_empty());
        assert!(!r.assessed);
        let c = r.coverage.first().expect("coverage");
        assert_eq!((c.status, c.packages), (CoverageStatus::NotAssessed, 1));
        c.reason.clone().unwrap_or_default()
    };
    // No OSV data exists for Amazon Linux.
    let why = reason(&inventory("amzn", Some("2023"), rpm, vec![bash.clone()]), &src, now());
    assert!(why.contains("Amazon Linux"), "{why}");
    // An empty database.
    let why = reason(&inventory("almalinux", Some("9.3"), rpm, vec![bash.clone()]), &MemorySource::new(), now());
    assert!(why.contains("no records for AlmaLinux:9"), "{why}");
    // Stale data: imported 2024-05-30, matched 40 days later.
    let late: jiff::Timestamp = "2024-07-09T00:00:00Z".parse().expect("ts");
    let why = reason(&inventory("almalinux", Some("9.3"), rpm, vec![bash.clone()]), &src, late);
    assert!(why.contains("stale") && why.contains("40 days"), "{why}");
    // No OS found.
    let mut no_os = inventory("almalinux", Some("9.3"), rpm, vec![bash.clone()]);
    no_os.os = None;
    let why = reason(&no_os, &src, now());
    assert!(why.contains("no OS"), "{why}");
    // An rpm database on a Debian root.
    let why = reason(&inventory("debian", Some("12"), rpm, vec![bash]), &src, now());
    assert!(why.contains("rpm package database"), "{why}");
}

#[test]
fn assessed_coverage_names_sources_and_their_age() {
    let src = source("almalinux-osv", vec![record("ALSA-1", "AlmaLinux:9", "bash", fixed("9"), none())]);
    let rpm = ("rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite");
    let mut inv = inventory("almalinux", Some("9.3"), rpm, vec![PackageDoc::new("rpm", "bash", "5.1.8", rpm.0, rpm.1)]);
    inv.databases.push(DatabaseDoc {
        format: "dpkg-status".into(),
        path: "/var/lib/dpkg/status".into(),
        packages: 0,
        error: Some("truncated".into()),
    });
    let r = match_inventory(&inv, &src, now());
    assert!(r.assessed);
    let c = r.coverage.first().expect("rpm set");
    assert_eq!(c.status, CoverageStatus::Assessed);
    assert_eq!(
        c.sources,
        [SourceAge {
            name: "almalinux-osv".into(),
            ecosystem: "AlmaLinux:9".into(),
            records: 1,
            imported_at: Some(IMPORTED.into()),
            newest_modified: Some("2024-01-02T00:00:00Z".into()),
            age_days: Some(2),
        }]
    );
    let d = r.coverage.get(1).expect("dpkg set");
    assert_eq!(d.status, CoverageStatus::NotAssessed);
    assert_eq!(d.inventory_error.as_deref(), Some("truncated"));
}

#[test]
fn a_range_that_cannot_be_evaluated_is_an_error_not_a_silence() {
    let events: Vec<serde_json::Value> =
        std::iter::repeat_n(serde_json::json!({"introduced": "1"}), range::MAX_EVENTS_PER_RANGE + 1).collect();
    let src = source(
        "x",
        vec![
            record("ALSA-BIG", "AlmaLinux:9", "bash", serde_json::Value::Array(events), none()),
            record("ALSA-OK", "AlmaLinux:9", "bash", fixed("9"), none()),
        ],
    );
    let rpm = ("rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite");
    let r = match_inventory(
        &inventory("almalinux", Some("9.3"), rpm, vec![PackageDoc::new("rpm", "bash", "5.1.8", rpm.0, rpm.1)]),
        &src,
        now(),
    );
    assert_eq!(ids(&r), ["ALSA-OK"], "the other record still matches");
    assert_eq!(r.errors_total, 1);
    assert!(r.errors.first().is_some_and(|e| e.contains("ALSA-BIG")), "{:?}", r.errors);
    assert_eq!(r.coverage.first().map(|c| c.packages_failed), Some(1));
}

/// Counts lookups, to show the matcher's caches at work.
struct Counting<'a> {
    inner: &'a MemorySource,
    records: Cell<usize>,
}

impl AdvisorySource for Counting<'_> {
    fn records_for(&self, ecosystem: &str, package: &str) -> Result<Vec<osv::Record>, SourceError> {
        self.records.set(self.records.get() + 1);
        self.inner.records_for(ecosystem, package)
    }
    fn sources_for(&self, ecosystem: &str) -> Result<Vec<SourceSummary>, SourceError> {
        self.inner.sources_for(ecosystem)
    }
}

#[test]
fn records_are_looked_up_once_per_package_across_inventories() {
    let mem = source("debian-osv", vec![record("DSA-1-1", "Debian:12", "openssl", fixed("3.0.13-1~deb12u1"), none())]);
    let counting = Counting { inner: &mem, records: Cell::new(0) };
    let matcher = Matcher::new(&counting, MatchOptions::default());
    for rev in ["1~deb12u1", "1~deb12u2", "1~deb12u1"] {
        let inv = inventory(
            "debian",
            Some("12"),
            DPKG,
            vec![
                deb("libssl3", "3.0.11", rev, Some(("openssl", &format!("3.0.11-{rev}")))),
                deb("openssl", "3.0.11", rev, None),
                deb("bash", "5.2.15", "2+b2", None),
            ],
        );
        let r = matcher.match_inventory(&inv, now());
        assert_eq!(ids(&r), ["DSA-1-1"]);
        assert_eq!(r.findings.first().map(|f| f.installed.len()), Some(2), "libssl3 and openssl share the source");
    }
    assert_eq!(counting.records.get(), 2, "openssl and bash, once each");
}

/// Peak resident memory of this process, in KiB (`VmHWM` of /proc/self/status).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The fleet-scale figure of the design: 10,000 instances × 500 packages against
/// 100,000 records within 60 s on 2 cores and < 500 MiB. Synthetic: 20,000 source packages with 5
/// records each; each instance installs 500 of the 2,000 most common ones, each at one of 3
/// versions. Run it with `--ignored`; `AGENTLESS_FLEET_INSTANCES` scales it (10,000 by default).
#[test]
#[ignore = "benchmark: minutes in a debug build"]
fn fleet_scale_matching() {
    const NAMES: usize = 20_000;
    const RECORDS_PER_NAME: usize = 5;
    const COMMON: usize = 2_000;
    const PER_INSTANCE: usize = 500;
    let instances: usize =
        std::env::var("AGENTLESS_FLEET_INSTANCES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let started = std::time::Instant::now();
    let mut records = Vec::with_capacity(NAMES * RECORDS_PER_NAME);
    for n in 0..NAMES {
        for r in 0..RECORDS_PER_NAME {
            records.push(record(
                &format!("DSA-{n}-{r}"),
                "Debian:12",
                &format!("pkg{n}"),
                fixed(&format!("1.{}-1", r * 2)),
                serde_json::json!({"aliases": [format!("CVE-2024-{n}{r}")], "summary": "synthetic"}),
            ));
        }
    }
    let src = source("synthetic", records);
    let loaded = started.elapsed();
    let matcher = Matcher::new(&src, MatchOptions::default());
    let started = std::time::Instant::now();
    let mut findings = 0usize;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        // xorshift64: a fixed, dependency-free sequence.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..instances {
        let mut packages = Vec::with_capacity(PER_INSTANCE);
        for _ in 0..PER_INSTANCE {
            let n = usize::try_from(next() % COMMON as u64).unwrap_or(0);
            let v = next() % 3;
            packages.push(deb(
                &format!("bin{n}"),
                &format!("1.{v}"),
                "1",
                Some((&format!("pkg{n}"), &format!("1.{v}-1"))),
            ));
        }
        let r = matcher.match_inventory(&inventory("debian", Some("12"), DPKG, packages), now());
        findings += r.findings.len();
    }
    let matched = started.elapsed();
    eprintln!(
        "fleet: {instances} instances x {PER_INSTANCE} packages, {} records: load {loaded:?}, match {matched:?}, {findings} findings, peak RSS {:?} KiB, {matcher:?}",
        NAMES * RECORDS_PER_NAME,
        peak_rss_kib()
    );
    assert!(findings > 0);
}
