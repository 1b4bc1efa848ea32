//! The advisory database (`agentless vulndb`, `vuln::db`): the AlmaLinux OSV snapshot and Alpine
//! secdb import with counts checked against an independent reading of the same files, a zip of
//! the records imports the same as the directory, and hostile inputs are refused with the
//! previous database still answering.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentless::vuln::db::import::{ImportError, Input, import};
use agentless::vuln::db::{AdvisoryDb, FILE_NAME};
use agentless::vuln::osv::{Event, Record};

use super::craft::{RawEntry, deflated_zeros, inflate, write, zip, zip64_claiming};
use super::{almalinux, data};
use crate::util::request_head;

/// The JSON files under `dir`, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What an independent reading (serde_json::Value, not our types) says about a directory.
struct Census {
    files: usize,
    withdrawn: usize,
    /// Ids of records not withdrawn.
    ids: BTreeSet<String>,
    /// (ecosystem, package) → ids naming it, and the number of `affected` entries per id.
    packages: BTreeMap<(String, String), BTreeMap<String, usize>>,
    /// Ecosystem → ids.
    ecosystems: BTreeMap<String, BTreeSet<String>>,
}

fn census(dir: &Path) -> Census {
    let mut c =
        Census { files: 0, withdrawn: 0, ids: BTreeSet::new(), packages: BTreeMap::new(), ecosystems: BTreeMap::new() };
    for f in json_files(dir) {
        c.files += 1;
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("json");
        if v.get("withdrawn").is_some_and(|w| !w.is_null()) {
            c.withdrawn += 1;
            continue;
        }
        let id = v["id"].as_str().expect("id").to_string();
        c.ids.insert(id.clone());
        let mut per_package: BTreeMap<(String, String), usize> = BTreeMap::new();
        for a in v["affected"].as_array().expect("affected") {
            let eco = a["package"]["ecosystem"].as_str().expect("ecosystem").to_string();
            let name = a["package"]["name"].as_str().expect("name").to_string();
            c.ecosystems.entry(eco.clone()).or_default().insert(id.clone());
            *per_package.entry((eco, name)).or_default() += 1;
        }
        for (key, n) in per_package {
            c.packages.entry(key).or_default().insert(id.clone(), n);
        }
    }
    c
}

fn import_one(db: &Path, path: &Path) -> Result<agentless::vuln::db::import::ImportReport, ImportError> {
    import(db, &[Input::path(path)], jiff::Timestamp::now())
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn almalinux_directory_imports_every_record() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = almalinux(tmp.path());
    let c = census(&dir);
    assert_eq!(c.files, 5_680, "the snapshot's record files");
    let db_path = tmp.path().join(FILE_NAME);

    let started = std::time::Instant::now();
    let report = import_one(&db_path, &dir).expect("imports");
    let elapsed = started.elapsed();
    let size = std::fs::metadata(&db_path).expect("db").len();
    eprintln!("AlmaLinux: {} files imported in {:.2} s, database {} bytes", c.files, elapsed.as_secs_f64(), size);

    let source = report.sources.first().expect("one source");
    assert_eq!(source.files as usize, c.files);
    assert_eq!(source.withdrawn as usize, c.withdrawn);
    assert_eq!(source.records as usize, c.ids.len(), "one record per id");
    // Same ids in two release directories (ALSA-2024:8127 in almalinux8 and almalinux9).
    assert_eq!(source.duplicates as usize, c.files - c.withdrawn - c.ids.len());
    assert!(source.duplicates > 0);
    assert!(source.skipped.is_empty(), "{:?}", source.skipped);
    assert_eq!(report.db_bytes, size);

    let db = AdvisoryDb::open(&db_path).expect("open");
    let sources = db.sources().expect("sources");
    let info = sources.first().expect("source");
    assert_eq!(info.kind, "osv-dir");
    assert_eq!(info.sha256.len(), 64);
    let want: Vec<(String, u64)> = c.ecosystems.iter().map(|(e, ids)| (e.clone(), ids.len() as u64)).collect();
    assert_eq!(info.ecosystems, want);
    assert!(db.covers("AlmaLinux:9").expect("covers") && db.covers("AlmaLinux:10").expect("covers"));
    assert!(!db.covers("AlmaLinux:7").expect("covers") && !db.covers("AlmaLinux").expect("covers"));

    // openssl on AlmaLinux 9: the records whose `affected` names it, each with only its entries.
    let records = db.records_for("AlmaLinux:9", "openssl").expect("records");
    let want = c.packages.get(&("AlmaLinux:9".into(), "openssl".into())).expect("openssl in the census");
    assert_eq!(ids(&records), want.keys().map(String::as_str).collect::<Vec<_>>());
    assert!(records.len() >= 10, "{}", records.len());
    for r in &records {
        assert_eq!(r.affected.len(), *want.get(&r.id).expect("id"), "{}", r.id);
        for a in &r.affected {
            let p = a.package.as_ref().expect("package");
            assert_eq!((p.ecosystem.as_str(), p.name.as_str()), ("AlmaLinux:9", "openssl"), "{}", r.id);
        }
    }
    // A record naming two releases (ALSA-2024:8127, in both directories) answers for each with
    // that release's entries only.
    for (eco, pkg) in c.packages.keys().filter(|(_, p)| p == "openssl-libs") {
        let got = db.records_for(eco, pkg).expect("records");
        let want = c.packages.get(&(eco.clone(), pkg.clone())).expect("census");
        assert_eq!(got.len(), want.len(), "{eco} {pkg}");
    }
    // ALSA-2023:0946 (docs/references.md, "OSV advisory data"): openssl-libs fixed in 1:3.0.1-47.el9_1.
    let libs = db.records_for("AlmaLinux:9", "openssl-libs").expect("records");
    let alsa = libs.iter().find(|r| r.id == "ALSA-2023:0946").expect("ALSA-2023:0946");
    let events = &alsa.affected.first().expect("affected").ranges.first().expect("range").events;
    assert_eq!(events, &[Event::Introduced("0".into()), Event::Fixed("1:3.0.1-47.el9_1".into())]);
    assert!(alsa.related.iter().any(|r| r.starts_with("CVE-")), "{:?}", alsa.related);
    let cve = alsa.related.first().expect("related");
    assert!(db.ids_for_alias(cve).expect("alias").contains(&"ALSA-2023:0946".to_string()));
    assert!(db.records_for("AlmaLinux:9", "no-such-package").expect("records").is_empty());
}

#[test]
fn a_zip_of_the_almalinux_records_imports_the_same_as_the_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = almalinux(tmp.path());
    let archive = tmp.path().join("all.zip");
    {
        let file = std::fs::File::create(&archive).expect("create");
        let mut w = zip::ZipWriter::new(file);
        // Deflate at the fastest level: the reader's path is the same, the test quicker.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1));
        for f in json_files(&dir) {
            // The release directory too: the same id is in two of them (names must be unique).
            let name = f.strip_prefix(&dir).expect("under").to_string_lossy().into_owned();
            w.start_file(name, options).expect("start");
            w.write_all(&std::fs::read(&f).expect("read")).expect("write");
        }
        w.add_directory("empty/", options).expect("dir");
        w.start_file("README.md", options).expect("start");
        w.write_all(b"not a record").expect("write");
        w.finish().expect("finish");
    }
    let from_dir = tmp.path().join("dir.sqlite");
    let from_zip = tmp.path().join("zip.sqlite");
    let a = import_one(&from_dir, &dir).expect("directory");
    let b = import_one(&from_zip, &archive).expect("zip");
    let (a, b) = (a.sources.first().expect("source"), b.sources.first().expect("source"));
    assert_eq!(b.kind, "osv-zip");
    assert_eq!((a.files, a.records, a.withdrawn, a.duplicates), (b.files, b.records, b.withdrawn, b.duplicates));
    assert_eq!(b.skipped, ["README.md"]);

    let (da, db) = (AdvisoryDb::open(&from_dir).expect("open"), AdvisoryDb::open(&from_zip).expect("open"));
    let (sa, sb) = (da.sources().expect("sources"), db.sources().expect("sources"));
    let (sa, sb) = (sa.first().expect("source"), sb.first().expect("source"));
    assert_eq!((&sa.ecosystems, &sa.newest_modified), (&sb.ecosystems, &sb.newest_modified));
    let c = census(&dir);
    for (i, (eco, pkg)) in c.packages.keys().enumerate() {
        // Every 7th package, all three releases: enough to cover every record kind quickly.
        if i % 7 == 0 {
            assert_eq!(da.records_for(eco, pkg).expect("dir"), db.records_for(eco, pkg).expect("zip"), "{eco} {pkg}");
        }
    }
}

#[test]
fn alpine_secdb_v3_4_imports_as_osv_records() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db_path = tmp.path().join(FILE_NAME);
    let report = import_one(&db_path, &data("alpine-secdb/v3.4")).expect("imports");
    let source = report.sources.first().expect("source");
    assert_eq!(source.kind, "alpine-secdb-dir");
    assert_eq!(source.files, 2);
    // 681 distinct identifiers in main.yaml and community.yaml (PyYAML 6.0.3 over both files).
    assert_eq!(source.records, 681);
    assert!(source.unrecognised.is_empty(), "{:?}", source.unrecognised);

    let db = AdvisoryDb::open(&db_path).expect("open");
    assert!(db.covers("Alpine:v3.4").expect("covers"));
    assert!(!db.covers("Alpine:v3.5").expect("covers"));
    // v3.4/main.yaml, package bind:
    //   9.10.6_p1-r0: [CVE-2017-3145]   9.10.4_p8-r1: [CVE-2017-3142, CVE-2017-3143]
    //   9.10.4_p6-r0: [CVE-2017-3135]   9.10.4_p5-r0: [CVE-2016-9131, CVE-2016-9147, CVE-2016-9444]
    let bind = db.records_for("Alpine:v3.4", "bind").expect("bind");
    let fixed: BTreeMap<&str, Vec<&str>> = bind
        .iter()
        .map(|r| {
            let a = r.affected.first().expect("affected");
            let fixes = a
                .ranges
                .iter()
                .map(|range| match range.events.as_slice() {
                    [Event::Introduced(i), Event::Fixed(f)] if i == "0" => f.as_str(),
                    other => panic!("{}: unexpected events {other:?}", r.id),
                })
                .collect();
            (r.id.as_str(), fixes)
        })
        .collect();
    let want: BTreeMap<&str, Vec<&str>> = [
        ("ALPINE-CVE-2016-9131", vec!["9.10.4_p5-r0"]),
        ("ALPINE-CVE-2016-9147", vec!["9.10.4_p5-r0"]),
        ("ALPINE-CVE-2016-9444", vec!["9.10.4_p5-r0"]),
        ("ALPINE-CVE-2017-3135", vec!["9.10.4_p6-r0"]),
        ("ALPINE-CVE-2017-3142", vec!["9.10.4_p8-r1"]),
        ("ALPINE-CVE-2017-3143", vec!["9.10.4_p8-r1"]),
        ("ALPINE-CVE-2017-3145", vec!["9.10.6_p1-r0"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(fixed, want);
    for r in &bind {
        assert_eq!(r.aliases, [r.id.trim_start_matches("ALPINE-")]);
    }
    // openssl lists CVE-2017-3738 under both 1.0.2n-r0 and 1.0.2o-r0: one record, two ranges.
    let openssl = db.records_for("Alpine:v3.4", "openssl").expect("openssl");
    // 31 entries of 30 identifiers (PyYAML over the file).
    assert_eq!(openssl.len(), 30);
    let twice = openssl.iter().find(|r| r.id == "ALPINE-CVE-2017-3738").expect("CVE-2017-3738");
    let fixes: Vec<&str> = twice
        .affected
        .iter()
        .flat_map(|a| &a.ranges)
        .flat_map(|r| &r.events)
        .filter_map(|e| if let Event::Fixed(v) = e { Some(v.as_str()) } else { None })
        .collect();
    assert_eq!(fixes, ["1.0.2n-r0", "1.0.2o-r0"]);
}

#[test]
fn secdb_fix_version_zero_means_never_affected() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db_path = tmp.path().join(FILE_NAME);
    let report = import_one(&db_path, &data("alpine-secdb/v3.8/main.yaml")).expect("imports");
    let source = report.sources.first().expect("source");
    assert_eq!(source.kind, "alpine-secdb");
    // v3.8/main.yaml: db "0": [CVE-2016-0682, -0689, -0692, -0694, CVE-2016-3418].
    assert_eq!(source.not_affected, 5);
    let db = AdvisoryDb::open(&db_path).expect("open");
    assert!(db.records_for("Alpine:v3.8", "db").expect("db").is_empty());
    assert!(!db.records_for("Alpine:v3.8", "bind").expect("bind").is_empty());
}

/// A small database to attack: two records of one package.
fn previous_db(tmp: &Path) -> (PathBuf, Vec<Record>) {
    let dir = tmp.join("good");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (id, fixed) in [("TEST-1", "1.1-1"), ("TEST-2", "1.2-1")] {
        let json = serde_json::json!({
            "id": id, "modified": "2024-05-01T00:00:00Z", "related": ["CVE-2024-0001"],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "demo"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
        });
        write(&dir.join(format!("{id}.json")), json.to_string().as_bytes());
    }
    let db_path = tmp.join(FILE_NAME);
    import_one(&db_path, &dir).expect("the good import");
    let before = AdvisoryDb::open(&db_path).expect("open").records_for("Debian:12", "demo").expect("records");
    assert_eq!(ids(&before), ["TEST-1", "TEST-2"]);
    (db_path, before)
}

/// Import `path`, expect a refusal whose message contains every one of `needles`, and check the
/// previous database still answers as before and no new file is left behind.
fn refused(db_path: &Path, before: &[Record], path: &Path, needles: &[&str]) {
    let err = import_one(db_path, path).expect_err("must be refused");
    let message = err.to_string();
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    let after = AdvisoryDb::open(db_path).expect("open").records_for("Debian:12", "demo").expect("records");
    assert_eq!(after, before, "the previous database changed after: {message}");
    let leftovers: Vec<_> = std::fs::read_dir(db_path.parent().expect("dir"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".new"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn record_dir(tmp: &Path, name: &str, json: &str) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    write(&dir.join("a-good.json"), br#"{"id":"OK-1","modified":"2024-01-01T00:00:00Z"}"#);
    write(&dir.join(format!("{name}.json")), json.as_bytes());
    dir
}

#[test]
fn hostile_records_are_refused_and_the_previous_database_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (db_path, before) = previous_db(tmp.path());
    let t = tmp.path();

    let dir = record_dir(t, "malformed", r#"{"id": "BAD-1", "modified": "2024-01-01T00:00:00Z", "affected": [ "#);
    refused(&db_path, &before, &dir, &["malformed.json", "not a valid OSV record", "1 record(s) refused"]);

    let both = r#"{"id": "BAD-2", "modified": "2024-01-01T00:00:00Z", "affected": [{"package":
        {"ecosystem": "Debian:12", "name": "demo"}, "ranges": [{"type": "ECOSYSTEM",
        "events": [{"introduced": "0", "fixed": "1.0"}]}]}]}"#;
    let dir = record_dir(t, "both-keys", both);
    refused(&db_path, &before, &dir, &["both-keys.json", r#"both "introduced" and "fixed""#]);

    let unknown = r#"{"id": "BAD-3", "modified": "2024-01-01T00:00:00Z", "affected": [{"package":
        {"ecosystem": "Debain:12", "name": "demo"}, "ranges": [{"type": "ECOSYSTEM",
        "events": [{"introduced": "0"}]}]}]}"#;
    let dir = record_dir(t, "unknown-ecosystem", unknown);
    refused(&db_path, &before, &dir, &["unknown-ecosystem.json", "unknown ecosystem \"Debain:12\""]);

    // 2 MiB of details: under the record cap, over the text cap.
    let long =
        format!(r#"{{"id": "BAD-4", "modified": "2024-01-01T00:00:00Z", "details": "{}"}}"#, "x".repeat(2 << 20));
    let dir = record_dir(t, "long-details", &long);
    refused(&db_path, &before, &dir, &["long-details.json", "BAD-4", "over the 1048576-byte limit"]);

    // 100 MB of details: refused after reading the record cap, not 100 MB.
    let dir = t.join("huge");
    std::fs::create_dir_all(&dir).expect("mkdir");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("huge.json")).expect("create"));
        f.write_all(br#"{"id": "BAD-5", "modified": "2024-01-01T00:00:00Z", "details": ""#).expect("write");
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).expect("write");
        }
        f.write_all(b"\"}").expect("write");
    }
    refused(&db_path, &before, &dir, &["huge.json", "over the 16777216-byte limit"]);

    // Several bad files: all counted, each named.
    let dir = t.join("several");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for i in 0..25 {
        write(&dir.join(format!("bad-{i:02}.json")), b"not json");
    }
    refused(&db_path, &before, &dir, &["25 record(s) refused", "bad-00.json", "... and 5 more"]);
}

#[test]
fn hostile_archives_are_refused_and_the_previous_database_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (db_path, before) = previous_db(tmp.path());
    let t = tmp.path();
    let good = br#"{"id":"OK-1","modified":"2024-01-01T00:00:00Z"}"#.to_vec();
    let stored = |name: &str, data: &[u8]| RawEntry {
        name: name.into(),
        method: 0,
        data: data.to_vec(),
        declared_size: data.len() as u32,
        crc: crc32fast_hash(data),
    };

    for name in ["../evil.json", "a/../../evil.json", "/etc/evil.json", "..\\evil.json"] {
        let path = t.join("traversal.zip");
        write(&path, &zip(&[stored("OK-1.json", &good), stored(name, &good)]));
        refused(&db_path, &before, &path, &["traversal.zip", "refusing the whole archive"]);
    }

    // The 1 GiB of zeros, honestly declared.
    let zeros = deflated_zeros(1024);
    assert!(zeros.len() < 2 << 20, "{} bytes", zeros.len());
    let bomb = |declared: u32| RawEntry {
        name: "bomb.json".into(),
        method: 8,
        data: zeros.clone(),
        declared_size: declared,
        crc: 0,
    };
    let path = t.join("bomb.zip");
    write(&path, &zip(&[stored("OK-1.json", &good), bomb(1 << 30)]));
    refused(&db_path, &before, &path, &["bomb.zip", "bomb.json", "decompresses to 1073741824 bytes"]);
    // The same bomb declaring 100 bytes: stopped by what it really inflates to.
    write(&path, &zip(&[stored("OK-1.json", &good), bomb(100)]));
    let err = import_one(&db_path, &path).expect_err("refused").to_string();
    assert!(err.contains("bomb.json"), "{err}");
    refused(&db_path, &before, &path, &["bomb.zip"]);

    // Entries under the record cap that expand 1000:1 add up: the ratio stops the first.
    let small = deflated_zeros(8);
    let entry = RawEntry { name: "zeros.json".into(), method: 8, data: small, declared_size: 8 << 20, crc: 0 };
    write(&path, &zip(&[entry]));
    refused(&db_path, &before, &path, &["zeros.json", "limit: a decompression bomb"]);

    // A directory claiming a million entries (ZIP64): refused before it is read.
    let path = t.join("many.zip");
    write(&path, &zip64_claiming(1_000_000));
    refused(&db_path, &before, &path, &["many.zip", "1000000 entries, over the limit of 500000"]);

    // Not an archive at all.
    let path = t.join("garbage.zip");
    write(&path, b"PK\x03\x04 and then nothing that makes sense");
    refused(&db_path, &before, &path, &["garbage.zip"]);
}

#[test]
fn the_deflated_zeros_helper_inflates_to_what_it_says() {
    let data = deflated_zeros(4);
    let out = inflate(&data, 64 << 20);
    assert_eq!(out.len(), 4 << 20);
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn importing_again_replaces_a_source_and_keeps_the_others() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (db_path, _) = previous_db(tmp.path());
    let alpine = data("alpine-secdb/v3.4");
    let report = import_one(&db_path, &alpine).expect("alpine");
    assert_eq!(report.kept.len(), 1, "{:?}", report.kept);
    let db = AdvisoryDb::open(&db_path).expect("open");
    assert_eq!(db.sources().expect("sources").len(), 2);
    assert_eq!(db.records_for("Debian:12", "demo").expect("demo").len(), 2);
    drop(db);
    // The good directory again, now with one record: the source is replaced, Alpine kept.
    let good = tmp.path().join("good");
    std::fs::remove_file(good.join("TEST-2.json")).expect("rm");
    let report = import_one(&db_path, &good).expect("again");
    assert_eq!(report.kept.len(), 1);
    let db = AdvisoryDb::open(&db_path).expect("open");
    assert_eq!(ids(&db.records_for("Debian:12", "demo").expect("demo")), ["TEST-1"]);
    assert!(db.covers("Alpine:v3.4").expect("covers"));
}

#[test]
fn vulndb_command_imports_and_reports_status() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_agentless"))
            .arg("vulndb")
            .args(args)
            .arg("--data-dir")
            .arg(tmp.path())
            .env_remove("AGENTLESS_VULNDB_STALE_DAYS")
            .output()
            .expect("run")
    };
    let out = run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "no database yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no advisory database"));

    // secdb has no dates: its records carry the file's modification time, set to now here.
    let alpine = tmp.path().join("v3.4");
    std::fs::create_dir_all(&alpine).expect("mkdir");
    for name in ["main.yaml", "community.yaml"] {
        std::fs::copy(data("alpine-secdb/v3.4").join(name), alpine.join(name)).expect("copy");
        let f = std::fs::File::options().write(true).open(alpine.join(name)).expect("open");
        f.set_modified(std::time::SystemTime::now()).expect("touch");
    }
    let out = run(&["import", alpine.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("681 records from 2 files"));
    let out = run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));

    // OSV records last modified in 2024: stale by default, fresh with a wide enough window.
    let (old, _) = previous_db(&tmp.path().join("elsewhere"));
    drop(old);
    let good = tmp.path().join("elsewhere/good");
    let out = run(&["import", good.to_str().expect("utf-8"), "--name", "old-feed"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("old-feed (osv-dir)") && text.contains("STALE (older than 5 days)"), "{text}");
    assert!(text.contains("Alpine:v3.4") && text.contains("fresh"), "{text}");
    let out = run(&["status", "--stale-days", "100000", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let sources = v["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 2);
    assert!(sources.iter().any(|s| s["source"]["records"] == 681 && s["stale"] == false));

    // A failed import: exit 1, the database unchanged.
    let bad = tmp.path().join("bad.json");
    write(&bad, b"{");
    let out = run(&["import", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("is unchanged"), "{err}");
    let db = AdvisoryDb::open(&tmp.path().join(FILE_NAME)).expect("open");
    assert_eq!(db.sources().expect("sources").len(), 2);

    // Usage errors: exit 2.
    assert_eq!(run(&["import"]).status.code(), Some(2));
    assert_eq!(run(&["import", "--name", "x", "a", "b"]).status.code(), Some(2));
}

/// CRC-32 (IEEE) of `data`, bit by bit: the stored entries' checksum.
fn crc32fast_hash(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A one-file HTTP/1.1 server for `vulndb update`: serves `body` at `/AlmaLinux/all.zip` with an
/// ETag, honours `Range` when `If-Range` matches, and cuts the first response after `cut` bytes
/// (announcing the full length) when `cut` is set. Records each request's Range header.
struct Server {
    url: String,
    ranges: std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

async fn serve(body: Vec<u8>, cut: Option<usize>) -> Server {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let ranges = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ranges.clone();
    tokio::spawn(async move {
        let mut cut = cut;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let text = request_head(&mut sock).await;
            let header = |name: &str| {
                text.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
            };
            let range = header("range");
            seen.lock().expect("lock").push(range.clone());
            let path_ok = text.starts_with("GET /AlmaLinux/all.zip ");
            let start = match (&range, header("if-range")) {
                (Some(r), Some(tag)) if tag == "\"v1\"" => {
                    r.trim_start_matches("bytes=").trim_end_matches('-').parse::<usize>().ok()
                }
                _ => None,
            };
            let response = if !path_ok {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            } else if let Some(start) = start {
                let mut r = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\n\
                     ETag: \"v1\"\r\nConnection: close\r\n\r\n",
                    body.len() - 1,
                    body.len(),
                    body.len() - start
                )
                .into_bytes();
                r.extend_from_slice(&body[start..]);
                r
            } else {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                let send = cut.take().unwrap_or(body.len());
                r.extend_from_slice(&body[..send]);
                r
            };
            let _ = sock.write_all(&response).await;
            let _ = sock.shutdown().await;
        }
    });
    Server { url, ranges }
}

/// An OSV archive of `n` records of the package `demo` on AlmaLinux:9.
fn osv_zip(n: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for i in 0..n {
        let json = serde_json::json!({
            "id": format!("ALSA-2099:{i:04}"), "modified": "2099-01-01T00:00:00Z",
            "details": format!("record {i} {}", "padding ".repeat(i % 50)),
            "affected": [{"package": {"ecosystem": "AlmaLinux:9", "name": "demo"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": format!("1.{i}")}]}]}]
        });
        w.start_file(format!("ALSA-2099:{i:04}.json"), options).expect("start");
        w.write_all(json.to_string().as_bytes()).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_downloads_resumes_verifies_and_imports() {
    use agentless::vuln::db::update::{Quiet, UpdateError, update};
    let tmp = tempfile::tempdir().expect("tmp");
    let db_path = tmp.path().join(FILE_NAME);
    let body = osv_zip(200);
    let ecosystems = vec!["AlmaLinux".to_string()];

    // The first response is cut after 1,000 bytes: the update fails, nothing is imported, and
    // the bytes received are kept.
    let server = serve(body.clone(), Some(1_000)).await;
    let err = update(&db_path, tmp.path(), &server.url, &ecosystems, &mut Quiet).await.expect_err("cut");
    assert!(matches!(err, UpdateError::Http { .. } | UpdateError::Short { .. }), "{err}");
    assert!(!db_path.exists());
    let partial = tmp.path().join("vulndb-downloads/AlmaLinux/all.zip.partial");
    assert_eq!(std::fs::metadata(&partial).expect("partial").len(), 1_000);

    // The next run asks for the rest only, verifies the size and imports.
    let (downloads, report) =
        update(&db_path, tmp.path(), &server.url, &ecosystems, &mut Quiet).await.expect("resumed update");
    assert_eq!(server.ranges.lock().expect("lock").as_slice(), [None, Some("bytes=1000-".to_string())]);
    let d = downloads.first().expect("download");
    assert_eq!((d.resumed_from, d.bytes), (1_000, body.len() as u64));
    let want = {
        use sha2::Digest;
        agentless::vuln::db::import::hex(&sha2::Sha256::digest(&body))
    };
    assert_eq!(d.sha256, want);
    assert_eq!(std::fs::read(&d.path).expect("archive"), body);
    let source = report.sources.first().expect("source");
    assert_eq!((source.name.as_str(), source.records), ("osv.dev:AlmaLinux", 200));
    assert_eq!(source.origin, format!("{}/AlmaLinux/all.zip", server.url));
    let db = AdvisoryDb::open(&db_path).expect("open");
    assert_eq!(db.records_for("AlmaLinux:9", "demo").expect("records").len(), 200);
    let info = db.sources().expect("sources");
    assert_eq!(info.first().expect("source").sha256, want);

    // An ecosystem the server does not have: 404, the database unchanged.
    let err = update(&db_path, tmp.path(), &server.url, &["Alpine".to_string()], &mut Quiet).await.expect_err("404");
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(AdvisoryDb::open(&db_path).expect("open").records_for("AlmaLinux:9", "demo").expect("r").len(), 200);
    // An unknown ecosystem is refused before any request.
    let err = update(&db_path, tmp.path(), &server.url, &["Alma".to_string()], &mut Quiet).await.expect_err("unknown");
    assert!(matches!(err, UpdateError::UnknownEcosystem(_)), "{err}");
}
