//! `scanner-agent run` end to end, in-process and through the binary: a fake IMDSv2 and a fake
//! collector on loopback ports (plain `std::net` servers in threads), a fake `/dev` whose `sdf`
//! is the demo disk image.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use scanner_ami::agent::{
    self, AgentError, DeviceError, EXIT_FATAL, EXIT_INCOMPLETE, EXIT_OK, Imds, ImdsError, PowerOff, RunConfig,
    UploadError,
};
use scanner_ami::bundle::{BundleLimits, DeviceStatus, read_bundle, verify};
use scanner_ami::job::{DeviceTarget, HmacKey, JOB_MANIFEST_VERSION, JobManifest};
use scanner_ami::scan::{ScanOptions, scan_image};

use crate::util::project_root;

/// One request as a fake server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A response: status, extra headers, body.
pub(crate) type Response = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// A tiny HTTP/1.1 server: one connection at a time, `Connection: close` on every answer.
pub(crate) struct Server {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    pub(crate) fn start(handler: impl Fn(&Request) -> Response + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Some(req) = read_request(&stream) {
                    let (status, headers, body) = handler(&req);
                    seen.lock().expect("log").push(req);
                    let _ = write_response(stream, status, &headers, &body);
                }
            }
        });
        Server { addr, log }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body })
}

fn write_response(mut stream: TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

const TOKEN: &str = "AQAEAFakeImdsV2Token_000000000000000000000000000000==";
const SCANNER_INSTANCE: &str = "i-0feedfacecafe0001";

/// What the fake IMDS serves as `dynamic/instance-identity/rsa2048`: base64 broken into lines, as
/// IMDS serves it. Opaque here (the fake collector verifies nothing); the collector's verification
/// of real PKCS#7 signatures is tested in the orchestrator's tests, where the simulated account's
/// and moto's IMDS sign with a test CA.
const IDENTITY_RSA2048: &str =
    "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwGggCSABIIB\nfakeFakeFake+/==";

/// A fake IMDSv2: the token needs the TTL header; reads without the token are refused (401), as
/// with `HttpTokens=required`. The first `not_ready` requests get 503 (IMDS at boot).
pub(crate) fn fake_imds(user_data: Vec<u8>, not_ready: usize) -> Server {
    let count = Mutex::new(0usize);
    Server::start(move |req| {
        let mut n = count.lock().expect("count");
        *n += 1;
        if *n <= not_ready {
            return (503, vec![], b"not ready".to_vec());
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("PUT", "/latest/api/token") => match req.header("X-aws-ec2-metadata-token-ttl-seconds") {
                Some(ttl) if ttl.parse::<u32>().is_ok_and(|t| (1..=21600).contains(&t)) => {
                    (200, vec![], TOKEN.as_bytes().to_vec())
                }
                _ => (400, vec![], b"missing ttl".to_vec()),
            },
            ("GET", path) if req.header("X-aws-ec2-metadata-token") != Some(TOKEN) => {
                (401, vec![], format!("{path}: token required").into_bytes())
            }
            ("GET", "/latest/user-data") => (200, vec![], user_data.clone()),
            ("GET", "/latest/meta-data/instance-id") => (200, vec![], SCANNER_INSTANCE.as_bytes().to_vec()),
            ("GET", "/latest/dynamic/instance-identity/rsa2048") => (200, vec![], IDENTITY_RSA2048.as_bytes().to_vec()),
            _ => (404, vec![], vec![]),
        }
    })
}

/// A fake collector answering the scripted statuses in order, then 200.
pub(crate) fn fake_collector(script: &[u16]) -> Server {
    let script = Mutex::new(script.iter().copied().collect::<VecDeque<u16>>());
    Server::start(move |_req| {
        let status = script.lock().expect("script").pop_front().unwrap_or(200);
        (status, vec![], format!("status {status} from the fake collector").into_bytes())
    })
}

pub(crate) fn demo_image() -> PathBuf {
    project_root().join("tests/data/demo/demo-disk.img").canonicalize().expect("tests/data/demo/demo-disk.img")
}

/// A fake root whose `dev/<name>` links to the demo image, for each name.
fn dev_root(names: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(root.path().join("dev")).expect("mkdir dev");
    for name in names {
        std::os::unix::fs::symlink(demo_image(), root.path().join("dev").join(name)).expect("symlink");
    }
    root
}

pub(crate) fn target(device_name: &str, n: u32) -> DeviceTarget {
    DeviceTarget {
        device_name: device_name.into(),
        instance_id: format!("i-0000000000000000{n}"),
        volume_id: format!("vol-0000000000000000{n}"),
        snapshot_id: format!("snap-0000000000000000{n}"),
    }
}

fn in_an_hour() -> i64 {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_secs();
    i64::try_from(now).expect("i64") + 3600
}

pub(crate) fn job(collector: &str, devices: Vec<DeviceTarget>) -> JobManifest {
    let m = JobManifest {
        version: JOB_MANIFEST_VERSION,
        job: "j-20261129-run".into(),
        scanner: "s0".into(),
        collector_url: collector.into(),
        collector_cert_sha256: None,
        hmac_key: HmacKey::generate(),
        baseline: true,
        deadline_unix: in_an_hour(),
        devices,
    };
    m.check().expect("valid test manifest");
    m
}

/// Fast retries for tests.
fn config(imds: &str, dev_root: &Path) -> RunConfig {
    RunConfig {
        imds_endpoint: imds.into(),
        dev_root: dev_root.to_path_buf(),
        poweroff: PowerOff::None,
        imds_budget: Duration::from_secs(20),
        max_upload_attempts: 5,
        upload_timeout: Duration::from_secs(20),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RunConfig::default()
    }
}

#[test]
fn run_reads_imds_scans_uploads_a_signed_bundle() {
    let collector = fake_collector(&[]);
    let manifest = job(&collector.url(), vec![target("/dev/sdf", 1), target("/dev/sdg", 2)]);
    let imds = fake_imds(manifest.to_json().expect("json"), 0);
    let root = dev_root(&["sdf"]);

    let outcome = agent::run(&config(&imds.url(), root.path()));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.exit_code, EXIT_INCOMPLETE, "one device is missing");
    assert_eq!(outcome.receipt.map(|r| r.attempts), Some(1));

    // IMDSv2: a token with a TTL first, then only token-bearing reads.
    let imds_log = imds.requests();
    assert_eq!(imds_log[0].method, "PUT");
    assert_eq!(imds_log[0].header("X-aws-ec2-metadata-token-ttl-seconds"), Some("21600"));
    assert!(imds_log.iter().filter(|r| r.method == "GET").all(|r| r.header("X-aws-ec2-metadata-token") == Some(TOKEN)));
    assert!(imds_log.iter().any(|r| r.path == "/latest/user-data"));

    let uploads = collector.requests();
    assert_eq!(uploads.len(), 1);
    let up = &uploads[0];
    assert_eq!((up.method.as_str(), up.path.as_str()), ("PUT", "/v1/jobs/j-20261129-run/bundles/s0"));
    assert_eq!(up.header("Content-Type"), Some("application/x-tar"));
    let signature = up.header("X-Agentless-Signature").expect("signature header");
    assert!(verify(&manifest.hmac_key, &up.body, signature), "signature verifies under the scanner's key");
    assert!(!verify(&HmacKey::generate(), &up.body, signature));
    // The instance identity signature, forwarded from IMDS without its line breaks.
    assert_eq!(
        up.header("X-Agentless-Identity"),
        Some(IDENTITY_RSA2048.replace('\n', "").as_str()),
        "the identity signature is sent"
    );
    assert!(imds_log.iter().any(|r| r.path == "/latest/dynamic/instance-identity/rsa2048"));
    // The header-only credential: checkable before the body is read.
    let token = up.header("X-Agentless-Auth").expect("auth header");
    let length = u64::try_from(up.body.len()).expect("length");
    assert!(scanner_ami::bundle::verify_upload_token(&manifest.hmac_key, length, signature, token));
    assert!(!scanner_ami::bundle::verify_upload_token(&HmacKey::generate(), length, signature, token));

    let bundle = read_bundle(&up.body, &BundleLimits::default()).expect("the collector's reader accepts it");
    let expected = scan_image(&demo_image(), ScanOptions::default()).expect("scan the demo image");
    let m = &bundle.manifest;
    assert_eq!((m.job.as_str(), m.scanner.as_str()), ("j-20261129-run", "s0"));
    assert_eq!(m.scanner_instance.as_deref(), Some(SCANNER_INSTANCE));
    assert_eq!(m.devices.len(), 2);
    let d0 = &m.devices[0];
    assert_eq!(d0.status, DeviceStatus::Complete, "{d0:?}");
    assert_eq!(d0.os.as_deref(), Some("Ubuntu 18.04.1 LTS"));
    assert_eq!(d0.packages, expected.packages.len());
    assert_eq!(d0.packages, 90);
    assert_eq!(d0.volume_id, "vol-00000000000000001");
    assert_eq!(d0.resolved_path.as_deref(), Some(demo_image().to_str().expect("utf-8")));
    let d1 = &m.devices[1];
    assert_eq!(d1.status, DeviceStatus::Missing);
    assert!(d1.error.as_deref().is_some_and(|e| e.contains("sdg")), "{d1:?}");
    assert_eq!(bundle.volumes.keys().copied().collect::<Vec<_>>(), [0]);

    let files = &bundle.volumes[&0];
    let inv: serde_json::Value = serde_json::from_slice(&files.inventory).expect("inventory");
    assert_eq!(inv["packages"].as_array().map(Vec::len), Some(90));
    let sbom: serde_json::Value = serde_json::from_slice(&files.sbom).expect("sbom");
    assert_eq!(sbom["metadata"]["component"]["name"], "i-00000000000000001/vol-00000000000000001");
    let baseline: serde_json::Value = serde_json::from_slice(&files.baseline).expect("baseline");
    assert_eq!(baseline["summary"]["fail"].as_u64(), Some(d0.baseline_failed as u64));
    assert!(baseline["findings"].as_array().is_some_and(|f| !f.is_empty()));
}

#[test]
fn xvd_alias_imds_at_boot_and_a_complete_run() {
    let collector = fake_collector(&[]);
    let mut manifest = job(&collector.url(), vec![target("/dev/sdf", 1)]);
    manifest.baseline = false;
    // IMDS answers 503 to the first three requests, as while it comes up.
    let imds = fake_imds(manifest.to_json().expect("json"), 3);
    let root = dev_root(&["xvdf"]);

    let outcome = agent::run(&config(&imds.url(), root.path()));
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.exit_code, EXIT_OK);
    let bundle = read_bundle(&collector.requests()[0].body, &BundleLimits::default()).expect("bundle");
    assert_eq!(bundle.manifest.devices[0].status, DeviceStatus::Complete);
    assert_eq!(bundle.volumes[&0].baseline, b"null", "no baseline asked for");
}

#[test]
fn imds_refusing_the_token_is_fatal_and_the_scanner_still_powers_off() {
    let imds = Server::start(|_| (403, vec![], b"IMDS disabled".to_vec()));
    let work = tempfile::tempdir().expect("tmp");
    let marker = work.path().join("powered-off");
    let mut cfg = config(&imds.url(), work.path());
    cfg.poweroff = PowerOff::Command(vec!["touch".into(), marker.display().to_string()]);
    let outcome = agent::run(&cfg);
    assert_eq!(outcome.exit_code, EXIT_FATAL);
    assert!(
        matches!(outcome.errors.as_slice(), [AgentError::Imds(ImdsError::Refused { status: 403, .. })]),
        "{:?}",
        outcome.errors
    );
    assert_eq!(imds.requests().len(), 1, "a refused token is not retried");
    assert!(marker.exists(), "the power-off command ran");
}

#[test]
fn imds_client_requires_no_token_less_fallback_and_reports_missing_user_data() {
    let imds = Server::start(|req| match (req.method.as_str(), req.header("X-aws-ec2-metadata-token")) {
        ("PUT", _) => (200, vec![], TOKEN.as_bytes().to_vec()),
        (_, Some(TOKEN)) => (404, vec![], vec![]),
        _ => (401, vec![], vec![]),
    });
    let err = Imds::new(&imds.url())
        .expect("client")
        .fetch(Duration::from_secs(5), Duration::from_millis(10))
        .expect_err("no user data");
    assert!(matches!(err, ImdsError::NoUserData), "{err:?}");
    assert!(imds.requests().iter().all(|r| r.method == "PUT" || r.header("X-aws-ec2-metadata-token") == Some(TOKEN)));
    assert!(matches!(Imds::new("https://169.254.169.254"), Err(ImdsError::BadEndpoint(_))));
}

#[test]
fn imds_that_never_answers_gives_up_within_its_budget() {
    let imds = Server::start(|_| (500, vec![], vec![]));
    let started = std::time::Instant::now();
    let err = Imds::new(&imds.url())
        .expect("client")
        .fetch(Duration::from_millis(300), Duration::from_millis(20))
        .expect_err("gives up");
    assert!(matches!(err, ImdsError::GaveUp { attempts, .. } if attempts >= 2), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A manifest with no devices: the bundle is just `manifest.json` (no scan, so these are quick).
fn empty_job(collector: &Server) -> (JobManifest, tempfile::TempDir) {
    let m = job(&collector.url(), vec![]);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("job.json");
    std::fs::write(&path, m.to_json().expect("json")).expect("write manifest");
    (m, dir)
}

fn file_config(dir: &Path) -> RunConfig {
    let mut cfg = config("http://127.0.0.1:9", dir);
    cfg.manifest_file = Some(dir.join("job.json"));
    cfg
}

#[test]
fn collector_5xx_is_retried_until_accepted() {
    let collector = fake_collector(&[500, 503, 429]);
    let (m, dir) = empty_job(&collector);
    let outcome = agent::run(&file_config(dir.path()));
    assert_eq!(outcome.exit_code, EXIT_OK, "{:?}", outcome.errors);
    assert_eq!(outcome.receipt.map(|r| r.attempts), Some(4));
    let reqs = collector.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs.iter().all(
        |r| r.body == reqs[0].body && r.header("X-Agentless-Signature") == reqs[0].header("X-Agentless-Signature")
    ));
    assert!(verify(&m.hmac_key, &reqs[3].body, reqs[3].header("X-Agentless-Signature").expect("sig")));
}

#[test]
fn collector_403_is_not_retried_and_the_scanner_still_powers_off() {
    let collector = fake_collector(&[403]);
    let (_m, dir) = empty_job(&collector);
    let marker = dir.path().join("powered-off");
    let mut cfg = file_config(dir.path());
    cfg.poweroff = PowerOff::Command(vec!["touch".into(), marker.display().to_string()]);
    let outcome = agent::run(&cfg);
    assert_eq!(outcome.exit_code, EXIT_FATAL);
    assert_eq!(collector.requests().len(), 1, "a 4xx answer is final");
    assert!(
        matches!(
            outcome.errors.as_slice(),
            [AgentError::Upload(UploadError::Refused { status: 403, attempts: 1, body })] if body.contains("status 403")
        ),
        "{:?}",
        outcome.errors
    );
    assert!(marker.exists(), "the power-off command ran");
}

#[test]
fn retries_stop_at_the_job_deadline() {
    let collector = fake_collector(&[503; 50]);
    let mut m = job(&collector.url(), vec![]);
    m.deadline_unix = in_an_hour() - 3600 + 1;
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("job.json"), m.to_json().expect("json")).expect("write");
    let mut cfg = file_config(dir.path());
    cfg.max_upload_attempts = 50;
    cfg.initial_backoff = Duration::from_secs(4);
    cfg.max_backoff = Duration::from_secs(4);
    let outcome = agent::run(&cfg);
    assert_eq!(outcome.exit_code, EXIT_FATAL);
    assert!(
        matches!(outcome.errors.as_slice(), [AgentError::Upload(UploadError::GaveUp { attempts: 1, .. })]),
        "{:?}",
        outcome.errors
    );
}

#[test]
fn resolve_device_tries_the_name_then_its_alias() {
    let root = dev_root(&["xvdg", "sdh"]);
    let dev = root.path().join("dev");
    std::fs::create_dir(dev.join("sdj")).expect("mkdir");
    std::os::unix::fs::symlink("/nonexistent/disk", dev.join("sdk")).expect("symlink");
    let img = demo_image();
    assert_eq!(agent::resolve_device(root.path(), "/dev/sdg"), Ok(img.clone()), "sd -> xvd alias");
    assert_eq!(agent::resolve_device(root.path(), "/dev/xvdh"), Ok(img.clone()), "xvd -> sd alias");
    assert_eq!(agent::resolve_device(root.path(), "/dev/sdh"), Ok(img));
    assert!(matches!(agent::resolve_device(root.path(), "/dev/sdi"), Err(DeviceError::NotFound { .. })));
    assert!(matches!(
        agent::resolve_device(root.path(), "/dev/sdj"),
        Err(DeviceError::NotADisk { kind: "directory", .. })
    ));
    assert!(matches!(agent::resolve_device(root.path(), "/dev/sdk"), Err(DeviceError::NotFound { .. })), "dangling");
    for bad in ["/dev/../etc/passwd", "sdf", "/dev/disk/by-id/x", "/dev/"] {
        assert!(matches!(agent::resolve_device(root.path(), bad), Err(DeviceError::BadName(_))), "{bad}");
    }
    let nul = Path::new("/dev/null");
    if nul.exists() {
        assert!(matches!(
            agent::resolve_device(Path::new("/"), "/dev/null"),
            Err(DeviceError::NotADisk { kind: "character device", .. })
        ));
    }
}

#[test]
fn cli_run_with_a_manifest_file() {
    let collector = fake_collector(&[]);
    let manifest = job(&collector.url(), vec![target("/dev/sdf", 1)]);
    let work = tempfile::tempdir().expect("tmp");
    let path = work.path().join("job.json");
    std::fs::write(&path, manifest.to_json().expect("json")).expect("write");
    let root = dev_root(&["sdf"]);
    let out_dir = work.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_scanner-agent"))
        .args(["run", "--log-level", "debug", "--no-poweroff", "--imds-endpoint", "http://127.0.0.1:9"])
        .arg("--manifest")
        .arg(&path)
        .arg("--dev-root")
        .arg(root.path())
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run scanner-agent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(EXIT_OK)), "{stderr}");
    assert!(!stderr.contains(manifest.hmac_key.expose_hex()), "the HMAC key is never logged");
    assert!(stderr.contains("bundle uploaded"), "{stderr}");
    let reqs = collector.requests();
    assert_eq!(reqs.len(), 1);
    let written = std::fs::read(out_dir.join("j-20261129-run-s0.tar")).expect("--out bundle");
    assert_eq!(written, reqs[0].body, "--out holds the uploaded bundle");
    let bundle = read_bundle(&written, &BundleLimits::default()).expect("bundle");
    assert_eq!(bundle.manifest.scanner_instance, None, "no IMDS with --manifest");
    assert_eq!(bundle.manifest.devices[0].packages, 90);

    // A manifest that does not parse: exit 2, nothing uploaded.
    std::fs::write(&path, b"{\"version\": 1}").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_scanner-agent"))
        .args(["run", "--no-poweroff", "--manifest"])
        .arg(&path)
        .output()
        .expect("run scanner-agent");
    assert_eq!(out.status.code(), Some(i32::from(EXIT_FATAL)));
    assert!(String::from_utf8_lossy(&out.stderr).contains("job manifest"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(collector.requests().len(), 1);
}

#[test]
fn cli_poweroff_command_takes_the_rest_of_the_line() {
    let work = tempfile::tempdir().expect("tmp");
    let marker = work.path().join("off");
    let out = Command::new(env!("CARGO_BIN_EXE_scanner-agent"))
        .args(["run", "--manifest", "/nonexistent/job.json", "--poweroff-command", "sh", "-c"])
        .arg(format!("echo -n bye > '{}'", marker.display()))
        .output()
        .expect("run scanner-agent");
    assert_eq!(out.status.code(), Some(i32::from(EXIT_FATAL)));
    assert_eq!(std::fs::read_to_string(&marker).expect("power-off command ran"), "bye");
    let out = Command::new(env!("CARGO_BIN_EXE_scanner-agent"))
        .args(["run", "--no-poweroff", "--poweroff-command", "true"])
        .output()
        .expect("run scanner-agent");
    assert_eq!(out.status.code(), Some(2), "clap refuses the conflicting flags");
}
