//! The result bundle as the collector sees it: signature, then `read_bundle` on hostile archives.
//!
//! The bad archives are built by hand from raw 512-byte ustar headers (with correct checksums
//! unless the case is about the checksum), since the `tar` crate refuses to write most of them.

use std::collections::BTreeMap;

use scanner_ami::bundle::{
    BUNDLE_FORMAT, Bundle, BundleError, BundleLimits, BundleManifest, DeviceEntry, DeviceStatus, VolumeFiles,
    read_bundle, sign, verify, write_bundle,
};
use scanner_ami::job::HmacKey;

/// What the collector does with an upload: signature first, then the archive.
#[derive(Debug)]
enum Refusal {
    BadSignature,
    Bundle(BundleError),
}

fn accept(key: &HmacKey, body: &[u8], signature: &str, limits: &BundleLimits) -> Result<Bundle, Refusal> {
    if !verify(key, body, signature) {
        return Err(Refusal::BadSignature);
    }
    read_bundle(body, limits).map_err(Refusal::Bundle)
}

fn device(status: DeviceStatus) -> DeviceEntry {
    DeviceEntry {
        device_name: "/dev/sdf".into(),
        resolved_path: None,
        instance_id: "i-0123456789abcdef0".into(),
        volume_id: "vol-0123456789abcdef0".into(),
        snapshot_id: "snap-0123456789abcdef0".into(),
        status,
        error: None,
        os: None,
        packages: 0,
        app_packages: Default::default(),
        baseline_failed: 0,
        synthetic: false,
    }
}

/// Device 0 complete, device 1 missing.
fn manifest() -> BundleManifest {
    BundleManifest {
        format: BUNDLE_FORMAT.into(),
        job: "j-test".into(),
        scanner: "s0".into(),
        scanner_instance: None,
        agent_version: "scanner-agent test".into(),
        started_at: "2026-11-29T00:00:00Z".into(),
        finished_at: "2026-11-29T00:00:01Z".into(),
        devices: vec![device(DeviceStatus::Complete), device(DeviceStatus::Missing)],
        errors: vec![],
    }
}

fn manifest_json(m: &BundleManifest) -> Vec<u8> {
    serde_json::to_vec(m).expect("manifest json")
}

const INVENTORY: &[u8] = br#"{"schema":"agentless.inventory/v1","packages":[]}"#;
const SBOM: &[u8] = br#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}"#;
const BASELINE: &[u8] = br#"{"format":1,"findings":[]}"#;

/// A raw entry: name bytes, type flag, claimed size (None: the data's length), data.
#[derive(Clone)]
struct Raw {
    name: Vec<u8>,
    flag: u8,
    claimed: Option<u64>,
    data: Vec<u8>,
    link: Vec<u8>,
    magic: &'static [u8; 8],
    bad_checksum: bool,
}

/// POSIX ustar magic and version.
const USTAR: &[u8; 8] = b"ustar\x0000";
/// GNU tar's magic (old GNU format).
const GNU: &[u8; 8] = b"ustar  \x00";

fn file(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        flag: b'0',
        claimed: None,
        data: data.to_vec(),
        link: vec![],
        magic: USTAR,
        bad_checksum: false,
    }
}

fn of_type(name: &str, flag: u8, link: &str) -> Raw {
    Raw { flag, link: link.as_bytes().to_vec(), ..file(name, b"") }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{v:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

fn header(e: &Raw) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..e.name.len()].copy_from_slice(&e.name);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    let size = e.claimed.unwrap_or(e.data.len() as u64);
    if size < 8u64.pow(11) {
        octal(&mut h[124..136], size);
    } else {
        // GNU base-256: 0x80, then the value big-endian in the remaining 11 bytes.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], 0);
    h[156] = e.flag;
    h[157..157 + e.link.len()].copy_from_slice(&e.link);
    h[257..265].copy_from_slice(e.magic);
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum::<u64>() + u64::from(e.bad_checksum);
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn archive(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&header(e));
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The entries of a good bundle.
fn good() -> Vec<Raw> {
    vec![
        file("manifest.json", &manifest_json(&manifest())),
        file("v0/inventory.json", INVENTORY),
        file("v0/sbom.cdx.json", SBOM),
        file("v0/baseline.json", BASELINE),
    ]
}

fn with_manifest(m: &BundleManifest) -> Vec<Raw> {
    let mut e = good();
    e[0] = file("manifest.json", &manifest_json(m));
    e
}

#[test]
fn hand_built_and_written_bundles_are_accepted() {
    let key = HmacKey::generate();
    let body = archive(&good());
    let bundle = accept(&key, &body, &sign(&key, &body), &BundleLimits::default()).expect("hand-built bundle");
    assert_eq!(bundle.manifest, manifest());
    assert_eq!(bundle.volumes[&0].sbom, SBOM);

    let files = VolumeFiles { inventory: INVENTORY.to_vec(), sbom: SBOM.to_vec(), baseline: b"null".to_vec() };
    let written = write_bundle(&manifest(), &BTreeMap::from([(0, files.clone())])).expect("write");
    let back = accept(&key, &written, &sign(&key, &written), &BundleLimits::default()).expect("written bundle");
    assert_eq!(back.volumes, BTreeMap::from([(0, files)]));
}

type Check = fn(&Refusal) -> bool;

#[test]
fn bad_bundles_are_refused_with_their_specific_error() {
    let key = HmacKey::generate();
    let other_key = HmacKey::generate();
    let limits = BundleLimits::default();
    let good_body = archive(&good());

    let mut cases: Vec<(&str, Vec<u8>, Option<String>, Check)> = Vec::new();
    let mut add = |name: &'static str, body: Vec<u8>, check: Check| cases.push((name, body, None, check));

    // Names.
    let mut e = good();
    e.push(file("../x", b"{}"));
    add("tar slip ../x", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::UnsafeName { .. })));
    let mut e = good();
    e.push(file("v0/../../etc/cron.d/x", b"{}"));
    add("tar slip inside a path", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::UnsafeName { .. })));
    let mut e = good();
    e.insert(1, file("/etc/passwd", b"{}"));
    add("absolute path", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::UnsafeName { .. })));
    let mut e = good();
    e[1].name = b"v0\\inventory.json".to_vec();
    add("backslash", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::UnsafeName { .. })));
    let mut e = good();
    e[1].name = b"v0/inventory.json\0../../x".to_vec();
    add("NUL inside the name field", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::UnsafeName { .. })));
    let mut e = good();
    e.push(file("v0/evil.sh", b"{}"));
    add("unknown entry name", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::UnknownEntry { .. })));
    let mut e = good();
    e[1].name = b"v00/inventory.json".to_vec();
    add("index with a leading zero", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::UnknownEntry { .. })));
    let mut e = good();
    e.push(file("v7/inventory.json", INVENTORY));
    add("device index out of range", archive(&e), |r| {
        matches!(r, Refusal::Bundle(BundleError::NoSuchDevice { index: 7, devices: 2, .. }))
    });

    // Entry types.
    let mut e = good();
    e[1] = of_type("v0/inventory.json", b'2', "/etc/shadow");
    add("symlink entry", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::NotRegularFile { .. })));
    let mut e = good();
    e[1] = of_type("v0/inventory.json", b'1', "manifest.json");
    add("hardlink entry", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::NotRegularFile { .. })));
    let mut e = good();
    e.insert(1, of_type("v0/", b'5', ""));
    add("directory entry", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::NotRegularFile { .. })));
    let mut e = good();
    e.insert(1, of_type("v0/dev", b'4', ""));
    add("block device entry", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::NotRegularFile { .. })));
    let mut e = good();
    e.insert(1, Raw { flag: b'x', ..file("PaxHeaders/inventory.json", b"30 path=../../../etc/passwd\n") });
    add("pax extended header", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::NotRegularFile { .. })));
    let mut e = good();
    e.insert(0, Raw { flag: b'L', ..file("././@LongLink", b"../../../../tmp/evil\0") });
    add("GNU long name", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::NotRegularFile { .. })));

    // Sizes: a header's claim is refused before anything is read or allocated.
    let mut e = good();
    e[1].claimed = Some(10_000_000_000);
    add("10 GB claimed size (base-256)", archive(&e), |r| {
        matches!(r, Refusal::Bundle(BundleError::EntryTooLarge { size: 10_000_000_000, .. }))
    });
    let mut e = good();
    e[1].claimed = Some(7 << 30);
    add("7 GiB claimed size (octal)", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::EntryTooLarge { .. })));
    let mut e = good();
    e[1].claimed = Some(1 << 20);
    add("claims more than the body holds", archive(&e), |r| {
        matches!(r, Refusal::Bundle(BundleError::Truncated { .. }))
    });

    // Structure.
    add("truncated inside an entry", good_body[..512 + 100].to_vec(), |r| {
        matches!(r, Refusal::Bundle(BundleError::Truncated { .. }))
    });
    add("end-of-archive marker missing", good_body[..good_body.len() - 1024].to_vec(), |r| {
        matches!(r, Refusal::Bundle(BundleError::Truncated { .. }))
    });
    add("only one end block", good_body[..good_body.len() - 512].to_vec(), |r| {
        matches!(r, Refusal::Bundle(BundleError::Truncated { .. }))
    });
    add("empty body", Vec::new(), |r| matches!(r, Refusal::Bundle(BundleError::Truncated { .. })));
    let mut body = good_body.clone();
    body.extend_from_slice(b"smuggled");
    add("data after the end marker", body, |r| matches!(r, Refusal::Bundle(BundleError::Malformed { .. })));
    let mut body = archive(&good()[..1]);
    body.truncate(body.len() - 1024);
    body.extend_from_slice(&[0u8; 512]);
    body.extend_from_slice(&archive(&good()[1..]));
    add("entries hidden after a zero block", body, |r| matches!(r, Refusal::Bundle(BundleError::Malformed { .. })));
    let mut e = good();
    e[1].bad_checksum = true;
    add("bad header checksum", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::Malformed { .. })));
    let mut e = good();
    e[1].magic = GNU;
    add("GNU magic", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::Malformed { .. })));
    let mut e = good();
    e.push(file("v0/inventory.json", INVENTORY));
    add("duplicate entry", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::DuplicateEntry { .. })));
    let mut e = good();
    e.push(e[0].clone());
    add("second manifest", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::DuplicateEntry { .. })));

    // The manifest.
    let mut m = manifest();
    m.format = "agentless.bundle/v2".into();
    add(
        "wrong format version",
        archive(&with_manifest(&m)),
        |r| matches!(r, Refusal::Bundle(BundleError::UnknownFormat { found }) if found == "agentless.bundle/v2"),
    );
    let mut v = serde_json::to_value(manifest()).expect("value");
    v["format"] = "agentless.bundle/v9".into();
    v["new_field_of_v9"] = true.into();
    let mut e = good();
    e[0] = file("manifest.json", &serde_json::to_vec(&v).expect("json"));
    add("unknown format with unknown fields", archive(&e), |r| {
        matches!(r, Refusal::Bundle(BundleError::UnknownFormat { .. }))
    });
    let mut e = good();
    e.swap(0, 1);
    add("manifest not first", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::ManifestNotFirst { .. })));
    add("no entries at all", vec![0u8; 1024], |r| matches!(r, Refusal::Bundle(BundleError::ManifestMissing)));
    let mut e = good();
    e[0] = file("manifest.json", b"{\"format\":");
    add("manifest not JSON", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::ManifestInvalid { .. })));
    let mut v = serde_json::to_value(manifest()).expect("value");
    v["extra"] = 1.into();
    let mut e = good();
    e[0] = file("manifest.json", &serde_json::to_vec(&v).expect("json"));
    add("manifest with an unknown field", archive(&e), |r| {
        matches!(r, Refusal::Bundle(BundleError::ManifestInvalid { .. }))
    });
    let mut m = manifest();
    m.scanner = "../../s0".into();
    add("scanner name not path-safe", archive(&with_manifest(&m)), |r| {
        matches!(r, Refusal::Bundle(BundleError::UnsafeManifestName { field: "scanner", .. }))
    });

    // Devices and their files.
    let mut e = good();
    e.remove(2);
    add(
        "complete device without its SBOM",
        archive(&e),
        |r| matches!(r, Refusal::Bundle(BundleError::MissingDeviceFile { name, .. }) if name == "v0/sbom.cdx.json"),
    );
    let mut m = manifest();
    m.devices[0].status = DeviceStatus::Partial;
    let mut e = with_manifest(&m);
    e.truncate(1);
    add("partial device without files", archive(&e), |r| {
        matches!(r, Refusal::Bundle(BundleError::MissingDeviceFile { .. }))
    });
    let mut e = good();
    e.push(file("v1/inventory.json", INVENTORY));
    add("files for a missing device", archive(&e), |r| {
        matches!(r, Refusal::Bundle(BundleError::UnexpectedDeviceFile { status: "missing", .. }))
    });

    // JSON.
    let mut e = good();
    e[1] = file("v0/inventory.json", b"{\"schema\": \"agentless.inventory/v1\", ");
    add("invalid JSON", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::InvalidJson { .. })));
    let mut e = good();
    e[3] = file("v0/baseline.json", b"{} trailing");
    add("baseline with trailing garbage", archive(&e), |r| {
        matches!(r, Refusal::Bundle(BundleError::InvalidJson { .. }))
    });
    let mut e = good();
    e[1] = file("v0/inventory.json", br#"{"schema":"agentless.inventory/v2"}"#);
    add("inventory of another schema", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::WrongContent { .. })));
    let mut e = good();
    e[1] = file("v0/inventory.json", b"[1, 2]");
    add("inventory not an object", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::WrongContent { .. })));
    let mut e = good();
    e[2] = file("v0/sbom.cdx.json", br#"{"spdxVersion":"SPDX-2.3","bomFormat":"SPDX"}"#);
    add("SBOM not CycloneDX", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::WrongContent { .. })));
    let mut e = good();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    e[3] = file("v0/baseline.json", deep.as_bytes());
    add("JSON nested 100000 deep", archive(&e), |r| matches!(r, Refusal::Bundle(BundleError::InvalidJson { .. })));

    // Signatures.
    cases.push(("signed with another job's key", good_body.clone(), Some(sign(&other_key, &good_body)), |r| {
        matches!(r, Refusal::BadSignature)
    }));
    let mut tampered = good_body.clone();
    tampered[600] ^= 1;
    cases.push(("body changed after signing", tampered, Some(sign(&key, &good_body)), |r| {
        matches!(r, Refusal::BadSignature)
    }));
    cases.push(("no signature scheme", good_body.clone(), Some(sign(&key, &good_body)[7..].to_owned()), |r| {
        matches!(r, Refusal::BadSignature)
    }));

    let mut failures = Vec::new();
    for (name, body, signature, check) in &cases {
        let signature = signature.clone().unwrap_or_else(|| sign(&key, body));
        match accept(&key, body, &signature, &limits) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(r) if check(&r) => {}
            Err(r) => failures.push(format!("{name}: wrong refusal {r:?}")),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn limits_on_body_and_entry_count() {
    let body = archive(&good());
    let small = BundleLimits { max_body_bytes: 1024, ..BundleLimits::default() };
    let e = read_bundle(&body, &small).expect_err("too large");
    assert!(matches!(e, BundleError::BodyTooLarge { .. }) && e.is_too_large(), "{e:?}");
    let few = BundleLimits { max_entries: 3, ..BundleLimits::default() };
    let e = read_bundle(&body, &few).expect_err("too many");
    assert!(matches!(e, BundleError::TooManyEntries { limit: 3 }) && e.is_too_large(), "{e:?}");
    let tight = BundleLimits { max_entry_bytes: 40, ..BundleLimits::default() };
    let e = read_bundle(&body, &tight).expect_err("entry too large");
    assert!(matches!(&e, BundleError::EntryTooLarge { name, .. } if name == "manifest.json"), "{e:?}");
    assert!(!BundleError::ManifestMissing.is_too_large());
}

#[test]
fn messages_name_the_entry_and_escape_it() {
    let mut e = good();
    e.push(file("v0/\u{1b}[2Jevil", b"{}"));
    let err = read_bundle(&archive(&e), &BundleLimits::default()).expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains("v0/\\u{1b}[2Jevil"), "{msg}");
    assert!(!msg.contains('\u{1b}'), "control characters are escaped: {msg}");

    let mut e = good();
    e[1] = of_type("v0/inventory.json", b'2', "/etc/shadow");
    let msg = read_bundle(&archive(&e), &BundleLimits::default()).expect_err("refused").to_string();
    assert!(msg.contains("v0/inventory.json") && msg.contains("symbolic link"), "{msg}");
}

#[test]
fn mangled_bundles_never_panic() {
    let files = VolumeFiles { inventory: INVENTORY.to_vec(), sbom: SBOM.to_vec(), baseline: BASELINE.to_vec() };
    let body = write_bundle(&manifest(), &BTreeMap::from([(0, files)])).expect("write");
    let limits = BundleLimits::default();
    for cut in 0..body.len() {
        if cut % 7 == 0 || cut % 512 < 2 {
            let _ = read_bundle(&body[..cut], &limits);
        }
    }
    for pos in 0..body.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = body.clone();
            b[pos] ^= bit;
            let _ = read_bundle(&b, &limits);
        }
    }
}
