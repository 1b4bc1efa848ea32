//! The fleet-scale benchmark through the real path: 10,000 stored
//! inventories (500 packages each, files in a result store) matched against a 100,000-record
//! advisory database in SQLite ([`AdvisoryDb`]) by [`Assessor::assess_dirs`], which writes each
//! volume's `vulns.json` atomically, as `agentless vulns rescan --all` does. The matcher's own
//! in-memory benchmark is `fleet_scale_matching` in `src/vuln/matcher/tests.rs`.
//!
//! Ignored (minutes in a debug build). Run it in release under `/usr/bin/time -v` for the peak
//! memory:
//!
//! ```text
//! cargo test --release --test integration vuln::fleet_bench -- --ignored --nocapture
//! ```
//!
//! Measured (2026-12-07, release, the shared 2-core machine): database of 100,000 records built
//! in 2 s (62 MiB); 10,000 inventories (1,017 MiB of JSON) matched with `vulns.json` written
//! (fsync and rename each) in 42.5 s with one worker, 27.1 s with two; 365,255 findings; peak RSS
//! 58 MiB (one worker) and 86 MiB (two), of which 17 MiB before matching.
//!
//! `AGENTLESS_FLEET_INSTANCES` scales the fleet (10,000 by default) and
//! `AGENTLESS_FLEET_WORKERS` splits the volumes over that many threads, each with its own database
//! connection and matcher (1 by default).
//!
//! Synthetic data shaped like a Debian fleet: 20,000 source packages with 5 advisories each (fixed
//! at 1.0-1, 1.2-1, ..., 1.8-1, half with a CVSS v3 vector); each instance installs 500 binaries
//! drawn from the 2,000 most common sources, 98% at the current version 1.9-1 (not affected) and
//! 2% at an old one (1.0-1, 1.1-1 or 1.2-1: affected by 3 to 5 advisories), so a host has a few
//! dozen findings.

use std::path::PathBuf;

use agentless::vuln::assess::Assessor;
use agentless::vuln::db::writer::{SourceCounts, SourceMeta, Writer};
use agentless::vuln::matcher::inventory::{DatabaseDoc, InventoryDoc, OsDoc, PackageDoc};

const NAMES: usize = 20_000;
const RECORDS_PER_NAME: usize = 5;
const COMMON: u64 = 2_000;
const PER_INSTANCE: usize = 500;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn record(n: usize, r: usize) -> agentless::vuln::osv::Record {
    let mut v = serde_json::json!({
        "id": format!("DEBIAN-CVE-2024-{n:05}{r}"),
        "modified": "2026-12-01T00:00:00Z",
        "published": "2024-06-01T00:00:00Z",
        "aliases": [format!("CVE-2024-{n:05}{r}")],
        "summary": "synthetic advisory",
        "affected": [{
            "package": {"ecosystem": "Debian:12", "name": format!("pkg{n}")},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": format!("1.{}-1", r * 2)}]}]
        }]
    });
    if r.is_multiple_of(2) {
        v["severity"] =
            serde_json::json!([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]);
    }
    serde_json::from_value(v).expect("record")
}

#[test]
#[ignore = "benchmark: run in release with --ignored"]
fn fleet_scale_stored_results() {
    let instances: usize =
        std::env::var("AGENTLESS_FLEET_INSTANCES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let workers: usize = std::env::var("AGENTLESS_FLEET_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    let now = jiff::Timestamp::now();

    // The database, through the importer's writer (the same tables and indexes as an import).
    let started = std::time::Instant::now();
    let db_path = agentless::vuln::db::path_in(data);
    let mut w = Writer::begin(&db_path, &[], now).expect("writer");
    let source = w
        .add_source(&SourceMeta { name: "synthetic".into(), kind: "osv-dir".into(), origin: "bench".into() })
        .expect("source");
    for n in 0..NAMES {
        for r in 0..RECORDS_PER_NAME {
            w.add_record(source, &record(n, r)).expect("record");
        }
    }
    w.finish_source(source, "0", SourceCounts::default()).expect("finish");
    w.commit().expect("commit");
    let db_time = started.elapsed();
    let db_bytes = std::fs::metadata(&db_path).map(|m| m.len()).unwrap_or(0);

    // The stored inventories.
    let started = std::time::Instant::now();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut dirs: Vec<PathBuf> = Vec::with_capacity(instances);
    let mut inventory_bytes = 0u64;
    for i in 0..instances {
        let dir = data.join("results/20261207-bench000").join(format!("i-{i:017x}")).join(format!("vol-{i:017x}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut packages = Vec::with_capacity(PER_INSTANCE);
        for _ in 0..PER_INSTANCE {
            let n = next() % COMMON;
            let old = next().is_multiple_of(50);
            let v = if old { format!("1.{}", next() % 3) } else { "1.9".to_owned() };
            let mut p = PackageDoc::new("deb", &format!("bin{n}"), &v, "dpkg-status", "/var/lib/dpkg/status");
            p.release = Some("1".into());
            p.arch = Some("amd64".into());
            p.source_name = Some(format!("pkg{n}"));
            p.source_version = Some(format!("{v}-1"));
            packages.push(p);
        }
        let inv = InventoryDoc {
            schema: Some("agentless.inventory/v1".into()),
            os: Some(OsDoc { id: "debian".into(), version_id: Some("12".into()), ..OsDoc::default() }),
            databases: vec![DatabaseDoc {
                format: "dpkg-status".into(),
                path: "/var/lib/dpkg/status".into(),
                packages: PER_INSTANCE,
                error: None,
            }],
            packages,
        };
        let json = serde_json::to_vec(&inv).expect("json");
        inventory_bytes += json.len() as u64;
        std::fs::write(dir.join("inventory.json"), json).expect("write");
        std::fs::write(dir.join("device.json"), b"{}").expect("write");
        dirs.push(dir);
    }
    let gen_time = started.elapsed();
    let rss_before = peak_rss_kib();

    // The match: as `vulns rescan --all`, split over `workers` threads.
    let started = std::time::Instant::now();
    let chunk = dirs.len().div_ceil(workers);
    let results: Vec<(usize, usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = dirs
            .chunks(chunk.max(1))
            .map(|part| {
                s.spawn(move || {
                    let summary = Assessor::open(data).assess_dirs(part, now);
                    assert!(summary.errors.is_empty(), "{:?}", summary.errors.first());
                    let findings = summary.assessed.iter().map(|a| a.counts.findings).sum::<usize>();
                    let (yes, no) = summary.assessed_and_not();
                    (yes, no, findings)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let match_time = started.elapsed();
    let (assessed, not_assessed, findings) =
        results.iter().fold((0, 0, 0), |(a, b, c), (x, y, z)| (a + x, b + y, c + z));
    eprintln!(
        "fleet (stored): {instances} inventories x {PER_INSTANCE} packages ({:.0} MiB of inventory.json), {} records \
         ({:.0} MiB SQLite, built in {db_time:.1?}); generated in {gen_time:.1?}; matched and wrote vulns.json with \
         {workers} worker(s) in {match_time:.1?}: {assessed} assessed, {not_assessed} not, {findings} findings; \
         peak RSS before matching {rss_before:?} KiB, after {:?} KiB",
        inventory_bytes as f64 / 1_048_576.0,
        NAMES * RECORDS_PER_NAME,
        db_bytes as f64 / 1_048_576.0,
        peak_rss_kib()
    );
    assert_eq!((assessed, not_assessed), (instances, 0));
    assert!(findings > 0);
}
