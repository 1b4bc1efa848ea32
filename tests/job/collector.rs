//! The collector over HTTP: a good bundle is stored (a second upload is acknowledged, not stored
//! twice), each malformed or unauthorised upload of a table is refused with its status, a
//! sibling scanner's key is refused and counted, and a load of forged 256 MiB uploads beside
//! good ones is refused before the bodies are read, within a bound on the collector's memory.
//! Over TLS, the agent uploads to the pinned certificate only.

use std::collections::BTreeMap;
use std::path::Path;

use agentless::collector::Collector;
use agentless::collector::server::Server;
use scanner_ami::bundle::{
    BUNDLE_FORMAT, BundleLimits, BundleManifest, DeviceEntry, DeviceStatus, VolumeFiles, sign, upload_token,
    write_bundle,
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

/// `PUT` over a raw socket, signed with `key` (signature and auth headers); the status code.
async fn put(
    addr: std::net::SocketAddr,
    path: &str,
    key: Option<&HmacKey>,
    body: &[u8],
    content_length: Option<u64>,
) -> u16 {
    put_with(addr, path, key, body, content_length, &[]).await
}

/// [`put`] with `extra` headers.
async fn put_with(
    addr: std::net::SocketAddr,
    path: &str,
    key: Option<&HmacKey>,
    body: &[u8],
    content_length: Option<u64>,
    extra: &[(&str, &str)],
) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let length = content_length.unwrap_or(body.len() as u64);
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-tar\r\nConnection: close\r\nContent-Length: {length}\r\n",
    );
    if let Some(key) = key {
        let sig = sign(key, body);
        head.push_str(&format!("X-Agentless-Signature: {sig}\r\n"));
        head.push_str(&format!("X-Agentless-Auth: {}\r\n", upload_token(key, length, &sig)));
    }
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
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
    let job_key = HmacKey::generate();
    collector.register_job(JOB, job_key.clone());
    collector.register_scanner(JOB, "s0", vec![target()]);
    let key = job_key.for_scanner(JOB, "s0");
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
        assert_eq!(put(server.addr, &path, Some(&key), body, None).await, *want, "{what}");
    }
    // Authentication and routing.
    assert_eq!(put(server.addr, &path, Some(&HmacKey::generate()), &good, None).await, 401, "bad signature");
    assert_eq!(put(server.addr, &path, Some(&job_key), &good, None).await, 401, "the job's key is not the scanner's");
    assert_eq!(put(server.addr, &path, None, &good, None).await, 401, "no signature");
    let other = format!("/v1/jobs/{JOB}/bundles/s9");
    assert_eq!(put(server.addr, &other, Some(&key), &good, None).await, 404, "unknown scanner");
    assert_eq!(put(server.addr, "/v1/jobs/20261129-00000000/bundles/s0", Some(&key), &good, None).await, 404);
    // A 10 GB Content-Length is refused before the body is read.
    assert_eq!(put(server.addr, &path, Some(&key), b"", Some(10 << 30)).await, 413, "10 GB body");
    // Nothing stored so far.
    assert!(!collector.store().scanner_reported(JOB, "s0"));
    assert!(collector.store().volume(JOB, "i-0123456789abcdef0", "vol-0123456789abcdef0").is_none());

    // The good bundle: stored; a retry is acknowledged without a second copy.
    assert_eq!(put(server.addr, &path, Some(&key), &good, None).await, 200);
    assert!(collector.store().scanner_reported(JOB, "s0"));
    let stored = collector.store().volume(JOB, "i-0123456789abcdef0", "vol-0123456789abcdef0").expect("stored");
    assert_eq!(stored.entry.packages, 90);
    assert_eq!(std::fs::read(stored.dir.join("inventory.json")).expect("inventory"), f.inventory);
    assert_eq!(put(server.addr, &path, Some(&key), &good, None).await, 200);
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
    let err = collector
        .ingest(JOB, "s0", Some(&sign(&key.for_scanner(JOB, "s0"), &good)), None, &good)
        .expect_err("mismatch");
    assert!(err.to_string().contains("does not match"), "{err}");
}

/// A manifest of scanner `scanner` over `target`.
fn manifest_for(scanner: &str, target: &DeviceTarget) -> BundleManifest {
    let mut m = manifest(BUNDLE_FORMAT);
    m.scanner = scanner.into();
    m.devices[0].instance_id.clone_from(&target.instance_id);
    m.devices[0].volume_id.clone_from(&target.volume_id);
    m
}

#[tokio::test]
async fn a_bundle_signed_with_a_sibling_scanners_key_is_refused_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = Collector::new(dir.path(), BundleLimits::default());
    let job_key = HmacKey::generate();
    collector.register_job(JOB, job_key.clone());
    let mut t1 = target();
    t1.volume_id = "vol-0000000000000000b".into();
    collector.register_scanner(JOB, "s0", vec![target()]);
    collector.register_scanner(JOB, "s1", vec![t1.clone()]);
    let server = Server::start(collector.clone(), ([127, 0, 0, 1], 0).into()).await.expect("server");
    let body = write_bundle(&manifest_for("s1", &t1), &BTreeMap::from([(0, files())])).expect("bundle");
    let path = format!("/v1/jobs/{JOB}/bundles/s1");

    // Scanner s0 (compromised: it holds its own key) forges s1's bundle.
    let s0_key = job_key.for_scanner(JOB, "s0");
    assert_eq!(put(server.addr, &path, Some(&s0_key), &body, None).await, 401, "s0's key for s1's bundle");
    // In process too (the simulated account's delivery).
    let err = collector.ingest(JOB, "s1", Some(&sign(&s0_key, &body)), None, &body).expect_err("sibling key");
    assert!(matches!(err, agentless::collector::IngestError::BadSignature { .. }), "{err}");
    assert_eq!(collector.refusals().get("unauthenticated"), Some(&1), "{:?}", collector.refusals());
    assert!(!collector.store().scanner_reported(JOB, "s1"));

    // Its own key works; once collected its key is revoked.
    let s1_key = job_key.for_scanner(JOB, "s1");
    assert_eq!(put(server.addr, &path, Some(&s1_key), &body, None).await, 200);
    assert!(collector.store().scanner_reported(JOB, "s1"));
    collector.forget_scanner(JOB, "s1");
    assert_eq!(put(server.addr, &path, Some(&s1_key), &body, None).await, 404, "revoked");
    assert_eq!(collector.refusals().get("unknown_scanner"), Some(&1));
}

/// The load test's collector runs in a process of its own so that its peak RSS (`VmHWM`) is its
/// own: the test binary re-runs itself with only [`collector_load_child`] and this variable set
/// to the data directory (empty or unset: that test does nothing).
const LOAD_CHILD_ENV: &str = "AGENTLESS_TEST_COLLECTOR_CHILD";
/// The job key the child registers (hex), and the number of scanners.
const LOAD_KEY_ENV: &str = "AGENTLESS_TEST_COLLECTOR_KEY";
const GOOD_UPLOADS: usize = 50;
const BAD_UPLOADS: usize = 200;
/// What every forged upload claims: the collector's whole body limit (BundleLimits::default()).
const CLAIMED: u64 = 256 * 1024 * 1024;
/// The bound on the collector's peak RSS the issue asks for.
const MAX_PEAK_RSS_KIB: u64 = 128 * 1024;

fn load_target(i: usize) -> DeviceTarget {
    let mut t = target();
    t.volume_id = format!("vol-{i:017x}");
    t
}

/// `VmHWM` of this process, in KiB (Linux `/proc/self/status`).
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The child half of [`forged_uploads_are_refused_unread_and_good_ones_stored_once`]: serve a
/// collector, print its address, wait for stdin to close, print its refusals and peak RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_load_child() {
    let Some(dir) = std::env::var_os(LOAD_CHILD_ENV).filter(|d| !d.is_empty()) else { return };
    let key = HmacKey::from_hex(&std::env::var(LOAD_KEY_ENV).expect("key")).expect("key");
    let uploads =
        agentless::collector::UploadLimits { retry_after: std::time::Duration::from_secs(1), ..Default::default() };
    let collector = Collector::with_limits(Path::new(&dir), BundleLimits::default(), uploads);
    collector.register_job(JOB, key);
    for i in 0..GOOD_UPLOADS {
        collector.register_scanner(JOB, &format!("s{i}"), vec![load_target(i)]);
    }
    let server = Server::start(collector.clone(), ([127, 0, 0, 1], 0).into()).await.expect("server");
    // On a line of its own: the test harness has printed the test's name without a newline.
    println!("\nADDR {}", server.addr);
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await;
    let refusals = serde_json::to_string(&collector.refusals()).expect("json");
    println!("\nREFUSALS {refusals}");
    println!("\nVMHWM {}", vm_hwm_kib());
}

/// A forged upload: headers claiming [`CLAIMED`] bytes, signed with a key that is not the
/// scanner's; the body is never sent (the collector must answer without it). The status code.
async fn forged(addr: std::net::SocketAddr, scanner: usize) -> u16 {
    let wrong = HmacKey::generate();
    let sig = format!("sha256={}", "ab".repeat(32));
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "PUT /v1/jobs/{JOB}/bundles/s{scanner} HTTP/1.1\r\nHost: collector\r\nContent-Type: application/x-tar\r\n\
         Content-Length: {CLAIMED}\r\nX-Agentless-Signature: {sig}\r\nX-Agentless-Auth: {}\r\n\r\n",
        upload_token(&wrong, CLAIMED, &sig)
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    let mut resp = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !resp.windows(2).any(|w| w == b"\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => resp.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return 0; // no answer without the body
    }
    String::from_utf8_lossy(&resp).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_uploads_are_refused_unread_and_good_ones_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job_key = HmacKey::generate();
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "job::collector::collector_load_child", "--nocapture", "--test-threads=1"])
        .env(LOAD_CHILD_ENV, dir.path())
        .env(LOAD_KEY_ENV, job_key.expose_hex())
        .env("RUST_LOG", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the collector child");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout);
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() {
        line.clear();
        let n = tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line).await.expect("child output");
        assert!(n > 0, "the collector child ended before listening");
        addr = line.split("ADDR ").nth(1).map(|a| a.trim().parse::<std::net::SocketAddr>().expect("addr"));
    }
    let addr = addr.expect("addr");
    let url = format!("http://{addr}");

    // The good bundles, signed by the agent's own upload code with each scanner's key.
    let f = files();
    let started = std::time::Instant::now();
    let mut good = Vec::new();
    for i in 0..GOOD_UPLOADS {
        let scanner = format!("s{i}");
        let body =
            write_bundle(&manifest_for(&scanner, &load_target(i)), &BTreeMap::from([(0, f.clone())])).expect("bundle");
        let key = job_key.for_scanner(JOB, &scanner);
        let url = format!("{url}/v1/jobs/{JOB}/bundles/{scanner}");
        good.push(tokio::task::spawn_blocking(move || {
            let policy = scanner_ami::agent::upload::UploadPolicy {
                max_attempts: 30,
                attempt_timeout: std::time::Duration::from_secs(60),
                initial_backoff: std::time::Duration::from_millis(100),
                max_backoff: std::time::Duration::from_secs(2),
                deadline: std::time::SystemTime::now() + std::time::Duration::from_secs(300),
            };
            scanner_ami::agent::upload::upload_to(&url, &key, None, &body, None, &policy)
        }));
    }
    let bad: Vec<_> = (0..BAD_UPLOADS).map(|i| tokio::spawn(forged(addr, i % GOOD_UPLOADS))).collect();
    let mut bad_status = BTreeMap::new();
    for b in bad {
        *bad_status.entry(b.await.expect("forged upload")).or_insert(0usize) += 1;
    }
    let mut receipts = Vec::new();
    for g in good {
        receipts.push(g.await.expect("good upload").expect("accepted"));
    }
    let wall = started.elapsed();
    drop(child.stdin.take());
    let mut rest = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut lines, &mut rest).await.expect("child output");
    let status = child.wait().await.expect("child");
    assert!(status.success(), "collector child failed: {rest}");
    let value = |tag: &str| {
        rest.lines()
            .find_map(|l| l.split(tag).nth(1))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{tag}: {rest}"))
    };
    let peak_kib: u64 = value("VMHWM ").parse().expect("VmHWM");
    let refusals: BTreeMap<String, u64> = serde_json::from_str(&value("REFUSALS ")).expect("refusals");
    let attempts: u32 = receipts.iter().map(|r| r.attempts).sum();
    eprintln!(
        "collector load: {BAD_UPLOADS} forged uploads claiming {CLAIMED} bytes -> {bad_status:?}; {GOOD_UPLOADS} good \
         uploads stored in {attempts} attempts; refusals {refusals:?}; collector peak RSS (VmHWM) {} KiB; wall {:.2?}",
        peak_kib, wall
    );
    assert_eq!(bad_status, BTreeMap::from([(401u16, BAD_UPLOADS)]), "every forged upload refused 401");
    assert_eq!(refusals.get("unauthenticated"), Some(&(BAD_UPLOADS as u64)), "{refusals:?}");
    assert!(receipts.iter().all(|r| r.status == 200));
    let store = agentless::collector::ResultStore::new(dir.path());
    for i in 0..GOOD_UPLOADS {
        assert!(store.scanner_reported(JOB, &format!("s{i}")), "s{i} stored");
        let files =
            std::fs::read_dir(store.volume_dir(JOB, "i-0123456789abcdef0", &load_target(i).volume_id).expect("dir"))
                .expect("volume dir")
                .count();
        assert_eq!(files, 4, "s{i}: stored once, no temporaries");
    }
    assert_eq!(store.all_volumes().len(), GOOD_UPLOADS, "one volume per good upload");
    let incoming: Vec<_> = std::fs::read_dir(dir.path().join("incoming")).map(|d| d.collect()).unwrap_or_default();
    assert!(incoming.is_empty(), "no upload file left behind: {incoming:?}");
    assert!(peak_kib < MAX_PEAK_RSS_KIB, "collector peak RSS {peak_kib} KiB over {MAX_PEAK_RSS_KIB} KiB");
}

/// Issue 15, item 2: with an identity trust, every upload must carry the scanner's instance
/// identity signature (`X-Agentless-Identity`, sent by the agent's own upload code), signed by a
/// trusted key for the Region the ledger recorded and naming the recorded instance, account and
/// Region. Each refusal is 401 (the agent does not retry it) and counted by reason; an upload
/// before the launch is recorded is 503 (retried).
#[tokio::test]
async fn collector_refuses_bundles_whose_identity_document_does_not_match_the_ledger() {
    use agentless::collector::identity::TestCa;
    use agentless::collector::{ExpectedIdentity, IdentityTrust};
    use scanner_ami::agent::upload::{UploadPolicy, upload_to};

    let dir = tempfile::tempdir().expect("tempdir");
    let collector = Collector::new(dir.path(), BundleLimits::default());
    let ca = TestCa::generate().expect("test CA");
    collector.set_identity_trust(Some(IdentityTrust::test_ca(&ca).expect("trust")));
    let job_key = HmacKey::generate();
    collector.register_job(JOB, job_key.clone());
    collector.register_scanner(JOB, "s0", vec![target()]);
    let key = job_key.for_scanner(JOB, "s0");
    let server = Server::start(collector.clone(), ([127, 0, 0, 1], 0).into()).await.expect("server");
    let body = write_bundle(&manifest(BUNDLE_FORMAT), &BTreeMap::from([(0, files())])).expect("bundle");
    let (instance, account, region) = ("i-0aaaaaaaaaaaaaaa1", "123456789012", "us-east-1");
    let sign_doc = |ca: &TestCa, i: &str, a: &str, r: &str| ca.sign(&TestCa::document(i, a, r)).expect("sign");

    let path = format!("/v1/jobs/{JOB}/bundles/s0");
    let put_identity = |identity: Option<String>| {
        let (path, key, body) = (path.clone(), key.clone(), body.clone());
        let addr = server.addr;
        async move {
            let extra: Vec<(&str, &str)> = identity.iter().map(|i| ("X-Agentless-Identity", i.as_str())).collect();
            put_with(addr, &path, Some(&key), &body, None, &extra).await
        }
    };

    // Before the launch is recorded: 503 (the agent retries).
    assert_eq!(put_identity(Some(sign_doc(&ca, instance, account, region))).await, 503);
    collector.scanner_launched(
        JOB,
        "s0",
        ExpectedIdentity { instance_id: instance.into(), account_id: account.into(), region: region.into() },
    );

    let stranger = TestCa::generate().expect("another CA");
    let mut tampered =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sign_doc(&ca, instance, account, region))
            .expect("b64");
    let at = tampered.windows(instance.len()).position(|w| w == instance.as_bytes()).expect("instance id in it");
    tampered[at + instance.len() - 1] = b'2';
    let tampered = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &tampered);
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no identity document", None, "identity_missing"),
        ("another instance", Some(sign_doc(&ca, "i-0bbbbbbbbbbbbbbb2", account, region)), "identity_mismatch"),
        ("another account", Some(sign_doc(&ca, instance, "210987654321", region)), "identity_mismatch"),
        ("another Region", Some(sign_doc(&ca, instance, account, "eu-west-1")), "identity_mismatch"),
        ("signed by another key", Some(sign_doc(&stranger, instance, account, region)), "identity_bad_signature"),
        ("tampered after signing", Some(tampered), "identity_bad_signature"),
        ("not PKCS#7", Some("bm90IGEgc2lnbmF0dXJl".into()), "identity_malformed"),
    ];
    for (what, identity, _) in &cases {
        assert_eq!(put_identity(identity.clone()).await, 401, "{what}");
    }
    assert!(!collector.store().scanner_reported(JOB, "s0"), "nothing stored");
    let mut want: BTreeMap<&str, u64> = BTreeMap::from([("identity_pending", 1)]);
    for (_, _, reason) in &cases {
        *want.entry(reason).or_default() += 1;
    }
    assert_eq!(collector.refusals(), want);

    // The right document, signed by the trusted CA, sent by the agent's own upload code: stored.
    let (identity, url) = (sign_doc(&ca, instance, account, region), format!("{}{path}", server.url()));
    let receipt = tokio::task::spawn_blocking(move || {
        let policy = UploadPolicy {
            max_attempts: 1,
            attempt_timeout: std::time::Duration::from_secs(30),
            initial_backoff: std::time::Duration::from_millis(10),
            max_backoff: std::time::Duration::from_millis(20),
            deadline: std::time::SystemTime::now() + std::time::Duration::from_secs(60),
        };
        upload_to(&url, &key, None, &body, Some(&identity), &policy)
    })
    .await
    .expect("join")
    .expect("accepted");
    assert_eq!(receipt.status, 200);
    assert!(collector.store().scanner_reported(JOB, "s0"));
    assert_eq!(collector.refusals(), want, "the accepted upload is not a refusal");
}

/// The collector over TLS (issue 15): the agent's upload code reaches it with the certificate's
/// pin and the bundle is stored; with another pin the agent refuses the collector before sending a
/// byte; a plain HTTP client gets no answer from the TLS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_arrives_over_tls_only_at_the_pinned_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = Collector::new(dir.path(), BundleLimits::default());
    let job_key = HmacKey::generate();
    collector.register_job(JOB, job_key.clone());
    collector.register_scanner(JOB, "s0", vec![target()]);
    let identity =
        agentless::collector::tls::TlsIdentity::self_signed(dir.path(), &["127.0.0.1".into()]).expect("identity");
    let server =
        Server::start_with(collector.clone(), ([127, 0, 0, 1], 0).into(), Some(&identity)).await.expect("server");
    assert_eq!(server.url(), format!("https://{}", server.addr));
    assert_eq!(server.cert_sha256(), Some(identity.fingerprint()));
    let body = write_bundle(&manifest_for("s0", &target()), &BTreeMap::from([(0, files())])).expect("bundle");
    let url = format!("{}/v1/jobs/{JOB}/bundles/s0", server.url());
    let key = job_key.for_scanner(JOB, "s0");
    let upload = move |pin: String| {
        let (url, key, body) = (url.clone(), key.clone(), body.clone());
        tokio::task::spawn_blocking(move || {
            let policy = scanner_ami::agent::upload::UploadPolicy {
                max_attempts: 3,
                attempt_timeout: std::time::Duration::from_secs(30),
                initial_backoff: std::time::Duration::from_millis(50),
                max_backoff: std::time::Duration::from_millis(100),
                deadline: std::time::SystemTime::now() + std::time::Duration::from_secs(60),
            };
            scanner_ami::agent::upload::upload_to(&url, &key, Some(&pin), &body, None, &policy)
        })
    };

    let wrong = "00".repeat(32);
    let e = upload(wrong.clone()).await.expect("task").expect_err("another pin");
    assert_eq!(
        e,
        scanner_ami::agent::UploadError::WrongCertificate(scanner_ami::agent::pin::PinMismatch {
            expected: wrong,
            got: identity.fingerprint().to_owned(),
        })
    );
    assert!(!collector.store().scanner_reported(JOB, "s0"), "nothing sent to a certificate not pinned");

    // Plain HTTP to the TLS port: no HTTP answer.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), s.read_to_end(&mut raw)).await;
    assert!(!raw.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&raw));

    let receipt = upload(identity.fingerprint().to_owned()).await.expect("task").expect("the pinned certificate");
    assert_eq!((receipt.status, receipt.attempts), (200, 1));
    assert!(collector.store().scanner_reported(JOB, "s0"));
    let stored = collector.store().volume(JOB, &target().instance_id, &target().volume_id).expect("stored");
    assert_eq!(stored.entry.packages, 90);
}
