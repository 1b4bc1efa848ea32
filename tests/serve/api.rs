//! The HTTP API in process, on a loopback port: bearer-token authentication (everything but
//! `/healthz` and the collector's upload route), the job list and detail, an instance's latest
//! results, on-demand scans, and the metrics text.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use agentless::api::metrics::{Gauges, Metrics};
use agentless::api::{ApiState, OnDemand, ScanAccepted, ScanRefused, ScanRequest};
use agentless::cloud::{AccountId, InstanceId, JobId, Region};
use agentless::collector::{Collector, ResultStore};
use agentless::ledger::{JobState, Ledger, RunKind, TargetStatus};

use super::http;

const TOKEN: &str = "test-token-0123456789";

/// Accepts every scan as run 7 with no job, and remembers the requests.
#[derive(Default)]
struct FakeScans {
    asked: Mutex<Vec<ScanRequest>>,
}

impl OnDemand for FakeScans {
    fn scan(
        &self,
        req: ScanRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ScanAccepted, ScanRefused>> + Send + '_>> {
        Box::pin(async move {
            if req.accounts.iter().any(|a| a == "nope") {
                return Err(ScanRefused::BadRequest("no account named \"nope\"".into()));
            }
            self.asked.lock().expect("lock").push(req);
            Ok(ScanAccepted { run: 7, jobs: Vec::new() })
        })
    }
}

struct Served {
    addr: SocketAddr,
    scans: Arc<FakeScans>,
    _dir: tempfile::TempDir,
    job_done: JobId,
    job_running: JobId,
    instance: InstanceId,
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = Ledger::open(dir.path()).expect("ledger");
    let account: AccountId = "111122223333".parse().expect("account");
    let region: Region = "us-east-1".parse().expect("region");
    let instance: InstanceId = "i-0123456789abcdef0".parse().expect("instance");
    let job_done: JobId = "20260510-aaaaaaaa".parse().expect("job");
    let job_running: JobId = "20260510-bbbbbbbb".parse().expect("job");
    ledger.create_job(&job_done, &account, &region, std::slice::from_ref(&instance)).expect("job");
    for s in [JobState::Discovering, JobState::TearingDown, JobState::Done] {
        ledger.transition(&job_done, s).expect("transition");
    }
    ledger.set_target_status(&job_done, &instance, TargetStatus::Scanned, None).expect("target");
    ledger.create_job(&job_running, &account, &region, &[]).expect("job");
    ledger.transition(&job_running, JobState::Discovering).expect("transition");
    let run = ledger
        .create_run("nightly", RunKind::Scheduled, "2026-05-10T02:00:00Z".parse().expect("ts"))
        .expect("run")
        .expect("new");
    ledger.link_run_job(run, &job_done).expect("link");
    // What the collector stores for a scanned volume.
    let vol = dir.path().join("results").join(job_done.as_str()).join(instance.as_str()).join("vol-0123456789abcdef0");
    std::fs::create_dir_all(&vol).expect("mkdir");
    let entry = serde_json::json!({
        "device_name": "/dev/sdf", "resolved_path": null, "instance_id": instance, "volume_id": "vol-0123456789abcdef0",
        "snapshot_id": "snap-0123456789abcdef0", "status": "complete", "error": null, "os": "Ubuntu 18.04",
        "packages": 1, "baseline_failed": 0
    });
    std::fs::write(vol.join("device.json"), entry.to_string()).expect("write");
    std::fs::write(vol.join("sbom.cdx.json"), r#"{"bomFormat":"CycloneDX","components":[{"name":"passwd"}]}"#)
        .expect("w");
    std::fs::write(vol.join("inventory.json"), r#"{"packages":[{"name":"passwd"}]}"#).expect("write");
    std::fs::write(vol.join("baseline.json"), r#"{"results":[]}"#).expect("write");

    let metrics = Arc::new(Metrics::new());
    metrics.record_run("nightly", "scheduled");
    metrics.record_job("Done", 12.5);
    let ledger = Arc::new(Mutex::new(ledger));
    let l2 = Arc::clone(&ledger);
    let scans = Arc::new(FakeScans::default());
    let state = ApiState {
        ledger,
        store: ResultStore::new(dir.path()),
        metrics,
        gauges: Arc::new(move || {
            let l = l2.lock().expect("lock");
            Gauges {
                jobs: l.job_counts().expect("counts"),
                targets: l.target_counts().expect("counts"),
                resources: l.live_resource_counts().expect("counts"),
                ..Gauges::default()
            }
        }),
        scans: Arc::clone(&scans) as Arc<dyn OnDemand>,
        token: Arc::from(TOKEN),
        stopping: Arc::new(AtomicBool::new(false)),
    };
    let collector = Collector::new(dir.path(), scanner_ami::bundle::BundleLimits::default());
    let app = agentless::api::router(state, collector);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served { addr, scans, _dir: dir, job_done, job_running, instance }
}

#[tokio::test]
async fn everything_but_healthz_and_the_upload_needs_the_token() {
    let s = serve().await;
    let h = http(s.addr, "GET", "/healthz", None, None).await;
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.json()["status"], "ok");
    for (method, path) in [
        ("GET", "/v1/jobs"),
        ("GET", &*format!("/v1/jobs/{}", s.job_done)),
        ("GET", &*format!("/v1/instances/{}/latest", s.instance)),
        ("POST", "/v1/scans"),
        ("GET", "/metrics"),
    ] {
        for token in [None, Some("wrong-token-0123456789"), Some("")] {
            let r = http(s.addr, method, path, token, None).await;
            assert_eq!(r.status, 401, "{method} {path} with {token:?}: {r:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{method} {path}");
            assert!(r.json()["error"].as_str().is_some_and(|e| e.contains("token")), "{r:?}");
        }
    }
    // Another scheme is not a bearer token.
    let mut c = tokio::net::TcpStream::connect(s.addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    c.write_all(
        format!("GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {TOKEN}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write");
    let mut raw = String::new();
    c.read_to_string(&mut raw).await.expect("read");
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    // The upload route is the collector's: no bearer token, its own checks (unknown job: 404).
    let r = http(s.addr, "PUT", "/v1/jobs/20260510-cccccccc/bundles/s0", None, Some("x")).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert!(s.scans.asked.lock().expect("lock").is_empty(), "nothing got through");
}

#[tokio::test]
async fn jobs_are_listed_newest_first_and_filtered() {
    let s = serve().await;
    let r = http(s.addr, "GET", "/v1/jobs", Some(TOKEN), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let jobs = r.json()["jobs"].as_array().expect("jobs").clone();
    let ids: Vec<&str> = jobs.iter().filter_map(|j| j["id"].as_str()).collect();
    assert_eq!(ids, [s.job_running.as_str(), s.job_done.as_str()]);
    assert_eq!(jobs[1]["state"], "Done");
    assert_eq!(jobs[1]["schedule"], "nightly");
    assert_eq!(jobs[0]["schedule"], serde_json::Value::Null);

    let r = http(s.addr, "GET", "/v1/jobs?state=Done", Some(TOKEN), None).await;
    assert_eq!(r.json()["jobs"].as_array().map(Vec::len), Some(1));
    let r = http(s.addr, "GET", "/v1/jobs?schedule=nightly&limit=5", Some(TOKEN), None).await;
    assert_eq!(r.json()["jobs"][0]["id"], s.job_done.as_str());
    let r = http(s.addr, "GET", "/v1/jobs?state=Sleeping", Some(TOKEN), None).await;
    assert_eq!(r.status, 400, "{r:?}");

    let r = http(s.addr, "GET", &format!("/v1/jobs/{}", s.job_done), Some(TOKEN), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    assert_eq!(j["state"], "Done");
    assert_eq!(j["targets"][0]["instance"], s.instance.as_str());
    assert_eq!(j["targets"][0]["status"], "scanned");
    assert_eq!(http(s.addr, "GET", "/v1/jobs/20260510-dddddddd", Some(TOKEN), None).await.status, 404);
    assert_eq!(http(s.addr, "GET", "/v1/jobs/..%2Fetc", Some(TOKEN), None).await.status, 400);
}

#[tokio::test]
async fn the_latest_results_of_an_instance() {
    let s = serve().await;
    let r = http(s.addr, "GET", &format!("/v1/instances/{}/latest", s.instance), Some(TOKEN), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["job"], s.job_done.as_str());
    assert_eq!(v["volumes"][0]["volume"], "vol-0123456789abcdef0");
    assert_eq!(v["volumes"][0]["device"]["status"], "complete");
    assert_eq!(v["volumes"][0]["sbom"]["components"][0]["name"], "passwd");
    assert_eq!(v["volumes"][0]["inventory"]["packages"][0]["name"], "passwd");
    assert!(v["volumes"][0]["baseline"].is_object());
    let r = http(s.addr, "GET", "/v1/instances/i-0fedcba9876543210/latest", Some(TOKEN), None).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = http(s.addr, "GET", "/v1/instances/not-an-instance/latest", Some(TOKEN), None).await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn on_demand_scans_are_checked_and_accepted() {
    let s = serve().await;
    let body = r#"{"accounts":["demo"],"regions":["us-east-1"],"targets":{"tags":{"env":"prod"},"states":["running","stopped"],"exclude_tags":{"skip":"yes"}}}"#;
    let r = http(s.addr, "POST", "/v1/scans", Some(TOKEN), Some(body)).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json()["run"], 7);
    let asked = s.scans.asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].targets.exclude_tags.get("skip").map(String::as_str), Some("yes"));
    // Unknown keys and bad values are refused, naming them.
    let r = http(s.addr, "POST", "/v1/scans", Some(TOKEN), Some(r#"{"region":["us-east-1"]}"#)).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("region"), "{r:?}");
    let r = http(s.addr, "POST", "/v1/scans", Some(TOKEN), Some(r#"{"targets":{"states":["exploded"]}}"#)).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = http(s.addr, "POST", "/v1/scans", Some(TOKEN), Some(r#"{"accounts":["nope"]}"#)).await;
    assert_eq!(r.status, 400, "{r:?}");
    // An empty body scans everything.
    let r = http(s.addr, "POST", "/v1/scans", Some(TOKEN), None).await;
    assert_eq!(r.status, 202, "{r:?}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = serve().await;
    let r = http(s.addr, "GET", "/metrics", Some(TOKEN), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")), "{r:?}");
    for line in [
        "agentless_jobs{state=\"Done\"} 1",
        "agentless_jobs{state=\"Discovering\"} 1",
        "agentless_targets_scanned_total 1",
        "agentless_targets_failed_total 0",
        "agentless_runs_total{schedule=\"nightly\",kind=\"scheduled\"} 1",
        "agentless_scan_duration_seconds_count{state=\"Done\"} 1",
        "# TYPE agentless_aws_calls_total counter",
        "# TYPE agentless_scan_duration_seconds histogram",
        "agentless_leaks_found_total 0",
    ] {
        assert!(r.body.lines().any(|l| l == line), "missing {line:?} in:\n{}", r.body);
    }
}
