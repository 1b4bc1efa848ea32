//! The collector over HTTP: a good bundle is stored (a second upload is acknowledged, not stored
//! twice), and each malformed or unauthorised upload of a table is refused with its status.

use std::collections::BTreeMap;
use std::path::Path;

use agentless::collector::Collector;
use agentless::collector::server::Server;
use scanner_ami::bundle::{
    BUNDLE_FORMAT, BundleLimits, BundleManifest, DeviceEntry, DeviceStatus, VolumeFiles, sign, write_bundle,
};
use scanner_ami::job::{DeviceTarget, HmacKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JOB: &str = "20261129-c011ec70";

fn target() -> DeviceTarget {
    DeviceTarget {
        device_name: "/dev/sdf".into(),
        instance_id: "i-0123456789abcdef0".into(),
        volume_id: "vol-0123456789abcdef0".into(),
        snapshot_id: "snap-0123456789abcdef0".into(),
    }
}

fn files() -> VolumeFiles {
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/demo/demo-disk.img");
    let report =
        scanner_ami::scan::scan_image(&image, scanner_ami::scan::ScanOptions { baseline: false, ..Default::default() })
            .expect("scan");
    scanner_ami::agent::ScanOutputs::render(&report, "test").expect("render").into_volume_files()
}

fn manifest(format: &str) -> BundleManifest {
    let t = target();
    BundleManifest {
        format: format.into(),
        job: JOB.into(),
        scanner: "s0".into(),
        scanner_instance: None,
        agent_version: "test".into(),
        started_at: "2026-11-29T00:00:00Z".into(),
        finished_at: "2026-11-29T00:00:01Z".into(),
        devices: vec![DeviceEntry {
            device_name: t.device_name,
            resolved_path: None,
            instance_id: t.instance_id,
            volume_id: t.volume_id,
            snapshot_id: t.snapshot_id,
            status: DeviceStatus::Complete,
            error: None,
            os: Some("Ubuntu".into()),
            packages: 90,
            app_packages: Default::default(),
            baseline_failed: 0,
            synthetic: false,
        }],
        errors: Vec::new(),
    }
}

/// One ustar header + data, padded; `claimed` overrides the size field.
fn entry(name: &str, kind: u8, data: &[u8], claimed: Option<u64>) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    let size = claimed.unwrap_or(data.len() as u64);
    // 11 octal digits and a NUL, or 12 digits for sizes of 8 GiB and more (POSIX ustar).
    let digits = if size < 1 << 33 { format!("{size:011o}\0") } else { format!("{size:012o}") };
    h[124..136].copy_from_slice(digits.as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    if kind == b'2' {
        h[157..163].copy_from_slice(b"/etc/x");
    }
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn manifest_json(format: &str) -> Vec<u8> {
    serde_json::to_vec(&manifest(format)).expect("json")
}

/// `PUT` over a raw socket; the status code.
async fn put(
    addr: std::net::SocketAddr,
    path: &str,
    sig: Option<&str>,
    body: &[u8],
    content_length: Option<u64>,
) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-tar\r\nConnection: close\r\nContent-Length: {}\r\n",
        content_length.unwrap_or(body.len() as u64)
    );
    if let Some(sig) = sig {
        head.push_str(&format!("X-Agentless-Signature: {sig}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.expect("write head");
    let _ = s.write_all(body).await;
    let mut resp = Vec::new();
    // The status line is all we need; a server that keeps the connection open must not hang us.
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !resp.windows(2).any(|w| w == b"\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => resp.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no response to PUT {path}");
    let text = String::from_utf8_lossy(&resp);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn collector_stores_good_bundles_once_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = Collector::new(dir.path(), BundleLimits::default());
    let key = HmacKey::generate();
    collector.register_job(JOB, key.clone());
    collector.register_scanner(JOB, "s0", vec![target()]);
    let server = Server::start(collector.clone(), ([127, 0, 0, 1], 0).into()).await.expect("server");
    let path = format!("/v1/jobs/{JOB}/bundles/s0");
    let f = files();
    let good = write_bundle(&manifest(BUNDLE_FORMAT), &BTreeMap::from([(0, f.clone())])).expect("bundle");

    let m = manifest_json(BUNDLE_FORMAT);
    let inv = f.inventory.clone();
    let bad: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "tar slip",
            archive(&[entry("manifest.json", b'0', &m, None), entry("../../etc/passwd", b'0', b"x", None)]),
            400,
        ),
        (
            "absolute path",
            archive(&[entry("manifest.json", b'0', &m, None), entry("/etc/passwd", b'0', b"x", None)]),
            400,
        ),
        (
            "symlink",
            archive(&[entry("manifest.json", b'0', &m, None), entry("v0/inventory.json", b'2', b"", None)]),
            400,
        ),
        (
            "10 GB claimed entry size",
            archive(&[entry("manifest.json", b'0', &m, None), entry("v0/inventory.json", b'0', b"{}", Some(10 << 30))]),
            413,
        ),
        ("truncated", good[..good.len() / 2].to_vec(), 400),
        (
            "duplicate entry",
            archive(&[
                entry("manifest.json", b'0', &m, None),
                entry("v0/inventory.json", b'0', &inv, None),
                entry("v0/inventory.json", b'0', &inv, None),
            ]),
            400,
        ),
        (
            "wrong format version",
            archive(&[entry("manifest.json", b'0', &manifest_json("agentless.bundle/v9"), None)]),
            400,
        ),
        ("not a tar", b"this is not an archive".to_vec(), 400),
    ];
    for (what, body, want) in &bad {
        eprintln!("case: {what}");
        let sig = sign(&key, body);
        assert_eq!(put(server.addr, &path, Some(&sig), body, None).await, *want, "{what}");
    }
    // Authentication and routing.
    assert_eq!(
        put(server.addr, &path, Some(&sign(&HmacKey::generate(), &good)), &good, None).await,
        401,
        "bad signature"
    );
    assert_eq!(put(server.addr, &path, None, &good, None).await, 401, "no signature");
    let other = format!("/v1/jobs/{JOB}/bundles/s9");
    assert_eq!(put(server.addr, &other, Some(&sign(&key, &good)), &good, None).await, 404, "unknown scanner");
    assert_eq!(put(server.addr, "/v1/jobs/20261129-00000000/bundles/s0", Some("sha256=00"), &good, None).await, 404);
    // A 10 GB Content-Length is refused before the body is read.
    assert_eq!(put(server.addr, &path, Some(&sign(&key, &good)), b"", Some(10 << 30)).await, 413, "10 GB body");
    // Nothing stored so far.
    assert!(!collector.store().scanner_reported(JOB, "s0"));
    assert!(collector.store().volume(JOB, "i-0123456789abcdef0", "vol-0123456789abcdef0").is_none());

    // The good bundle: stored; a retry is acknowledged without a second copy.
    assert_eq!(put(server.addr, &path, Some(&sign(&key, &good)), &good, None).await, 200);
    assert!(collector.store().scanner_reported(JOB, "s0"));
    let stored = collector.store().volume(JOB, "i-0123456789abcdef0", "vol-0123456789abcdef0").expect("stored");
    assert_eq!(stored.entry.packages, 90);
    assert_eq!(std::fs::read(stored.dir.join("inventory.json")).expect("inventory"), f.inventory);
    assert_eq!(put(server.addr, &path, Some(&sign(&key, &good)), &good, None).await, 200);
    let files: Vec<_> = std::fs::read_dir(&stored.dir).expect("dir").collect();
    assert_eq!(files.len(), 4, "inventory, sbom, baseline, device: no duplicates or temporaries");
}

#[tokio::test]
async fn a_bundle_for_other_devices_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = Collector::new(dir.path(), BundleLimits::default());
    let key = HmacKey::generate();
    collector.register_job(JOB, key.clone());
    let mut other = target();
    other.volume_id = "vol-0fedcba9876543210".into();
    collector.register_scanner(JOB, "s0", vec![other]);
    let good = write_bundle(&manifest(BUNDLE_FORMAT), &BTreeMap::from([(0, files())])).expect("bundle");
    let err = collector.ingest(JOB, "s0", Some(&sign(&key, &good)), &good).expect_err("mismatch");
    assert!(err.to_string().contains("does not match"), "{err}");
}
