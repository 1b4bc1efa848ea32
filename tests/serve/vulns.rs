//! Vulnerability results through `agentless serve` on the simulated account:
//! an on-demand scan of the demo fleet's us-east-1 writes `vulns.json` (matched against the
//! bundled Alpine v3.4 snapshot the sim imports on first use); `/v1/instances/{id}/latest`
//! carries it, `/v1/vulns?cve=` and `?package=` answer which instances are affected, `/metrics`
//! has the findings by severity and status, the volumes not assessed by reason and the database's
//! age. Then the scheduled `[vulndb]` update downloads an OSV archive from a local HTTP server
//! (refused until the test opens it, so the first scheduled attempts fail and keep the database),
//! imports it and rescans the stored results: the new advisory shows in the API and the metrics.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{SERVE_TOKEN as TOKEN, free_port, http, jobs, kill, log_of, start, wait_for, write_sim_config};
use crate::util::request_head;

/// An OSV archive with one advisory of ours for the demo Alpine's musl.
fn alpine_zip() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let json = serde_json::json!({
        "id": "TEST-2099-0002", "modified": "2099-01-01T00:00:00Z", "aliases": ["CVE-2099-0002"],
        "affected": [{"package": {"ecosystem": "Alpine:v3.4", "name": "musl"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0-r0"}]}]}]
    });
    w.start_file("TEST-2099-0002.json", options).expect("start");
    w.write_all(json.to_string().as_bytes()).expect("write");
    w.finish().expect("finish").into_inner()
}

/// Serves `body` at `/Alpine/all.zip` once `open` is set (404 before), counting requests.
async fn archive_server(body: Vec<u8>, open: Arc<AtomicBool>, hits: Arc<std::sync::atomic::AtomicUsize>) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let request = request_head(&mut sock).await;
            hits.fetch_add(1, Ordering::SeqCst);
            let ok = request.starts_with("GET /Alpine/all.zip ");
            let response = if ok && open.load(Ordering::SeqCst) {
                let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                    .into_bytes();
                r.extend_from_slice(&body);
                r
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            };
            let _ = sock.write_all(&response).await;
            let _ = sock.shutdown().await;
        }
    });
    url
}

/// The value of the metric line starting with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reports_vulnerabilities_and_updates_the_database_on_schedule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let open = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let base = archive_server(alpine_zip(), Arc::clone(&open), Arc::clone(&hits)).await;
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let config = write_sim_config(
        dir.path(),
        addr,
        r#"["us-east-1"]"#,
        &format!(
            r#"
[vulndb]
update = "*/2 * * * * *"
ecosystems = ["Alpine"]
base_url = "{base}"
"#
        ),
    );
    let log = dir.path().join("serve.log");
    let mut daemon = start(&config, &data, &log);
    wait_for("the API", Duration::from_secs(60), &log, async || jobs(addr).await).await;
    let r = http(addr, "POST", "/v1/scans", Some(TOKEN), Some(r#"{"regions":["us-east-1"]}"#)).await;
    assert_eq!(r.status, 202, "{r:?}");
    wait_for("the scan to finish", Duration::from_secs(120), &log, async || {
        let jobs = jobs(addr).await?;
        (!jobs.is_empty() && jobs.iter().all(|j| j["state"] == "Done")).then_some(())
    })
    .await;

    // The daemon's scheduled updates have been refused so far: the bundled demo data is in use.
    let m = wait_for("a failed scheduled update", Duration::from_secs(30), &log, async || {
        let m = http(addr, "GET", "/metrics", Some(TOKEN), None).await.body;
        metric(&m, "agentless_vulndb_updates_total{outcome=\"failed\"}").is_some().then_some(m)
    })
    .await;
    assert!(hits.load(Ordering::SeqCst) > 0);
    assert_eq!(metric(&m, "agentless_vulndb_updates_total{outcome=\"ok\"}"), None, "{m}");

    // demo-app-1's latest results carry its vulns.json.
    let app = alpine_instance(addr).await;
    let latest = http(addr, "GET", &format!("/v1/instances/{app}/latest"), Some(TOKEN), None).await.json();
    let root = latest["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["vulns"]["assessed"] == true)
        .cloned()
        .unwrap_or_else(|| panic!("an assessed volume: {latest}"));
    let findings = root["vulns"]["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 32, "{}", root["vulns"]);
    let cve = findings.iter().find_map(|f| f["cves"][0].as_str()).expect("a CVE").to_owned();

    // The fleet queries.
    let by_cve = http(addr, "GET", &format!("/v1/vulns?cve={cve}"), Some(TOKEN), None).await;
    assert_eq!(by_cve.status, 200, "{by_cve:?}");
    let by_cve = by_cve.json();
    assert_eq!(by_cve["instances"], serde_json::json!([app]), "{by_cve}");
    let reasons: Vec<&str> =
        by_cve["not_assessed"].as_array().expect("not_assessed").iter().filter_map(|n| n["reason"].as_str()).collect();
    assert!(reasons.contains(&"no advisory source for ubuntu 18.04"), "{by_cve}");
    let by_pkg = http(addr, "GET", "/v1/vulns?package=openssl", Some(TOKEN), None).await.json();
    assert_eq!(by_pkg["instances"], serde_json::json!([app]), "{by_pkg}");
    let hits_openssl = by_pkg["affected"][0]["findings"].as_array().map_or(0, Vec::len);
    assert_eq!(hits_openssl, 23, "openssl's findings in the demo root: {by_pkg}");
    assert_eq!(http(addr, "GET", "/v1/vulns", Some(TOKEN), None).await.status, 400);
    assert_eq!(http(addr, "GET", "/v1/vulns?cve=CVE-2016-0001", None, None).await.status, 401);

    // The metrics.
    assert_eq!(metric(&m, "agentless_vuln_findings{severity=\"unknown\",status=\"fixed\"}"), Some(32.0), "{m}");
    assert_eq!(metric(&m, "agentless_vuln_volumes_assessed "), Some(1.0), "{m}");
    assert_eq!(metric(&m, "agentless_vuln_volumes_not_assessed{reason=\"no-source\"}"), Some(2.0), "{m}");
    let age = metric(&m, "agentless_vulndb_age_seconds ").unwrap_or_else(|| panic!("database age: {m}"));
    assert!((0.0..600.0).contains(&age), "imported when the daemon started: {age}");
    assert!(m.contains("agentless_vulndb_source_data_age_seconds{source=\"bundled demo snapshot"), "{m}");

    // Open the archive: the next scheduled update imports it and rescans the stored results.
    open.store(true, Ordering::SeqCst);
    let m = wait_for("a successful scheduled update and rescan", Duration::from_secs(60), &log, async || {
        let m = http(addr, "GET", "/metrics", Some(TOKEN), None).await.body;
        (metric(&m, "agentless_vuln_findings{severity=\"unknown\",status=\"fixed\"}") == Some(33.0)).then_some(m)
    })
    .await;
    assert!(metric(&m, "agentless_vulndb_updates_total{outcome=\"ok\"}").is_some_and(|n| n >= 1.0), "{m}");
    assert!(m.contains("agentless_vulndb_source_data_age_seconds{source=\"osv.dev:Alpine\"}"), "{m}");
    let ours = http(addr, "GET", "/v1/vulns?cve=CVE-2099-0002", Some(TOKEN), None).await.json();
    assert_eq!(ours["instances"], serde_json::json!([app]), "{ours}");
    assert_eq!(ours["affected"][0]["findings"][0]["id"], "TEST-2099-0002", "{ours}");
    assert_eq!(ours["affected"][0]["findings"][0]["fixed_version"], "99.0-r0", "{ours}");
    let latest = http(addr, "GET", &format!("/v1/instances/{app}/latest"), Some(TOKEN), None).await.json();
    let n: usize = latest["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .map(|v| v["vulns"]["findings"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(n, 33, "{latest}");

    kill(&mut daemon, "-TERM");
    let status = daemon.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{}", log_of(&log));
}

/// The demo instance whose stored root is Alpine (demo-app-1), found through the API.
async fn alpine_instance(addr: std::net::SocketAddr) -> String {
    let jobs = jobs(addr).await.expect("jobs");
    for j in &jobs {
        let id = j["id"].as_str().expect("id");
        let detail = http(addr, "GET", &format!("/v1/jobs/{id}"), Some(TOKEN), None).await.json();
        for t in detail["targets"].as_array().into_iter().flatten() {
            let instance = t["instance"].as_str().expect("instance");
            let latest = http(addr, "GET", &format!("/v1/instances/{instance}/latest"), Some(TOKEN), None).await.json();
            let alpine = latest["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["device"]["os"].as_str().is_some_and(|o| o.contains("Alpine")));
            if alpine {
                return instance.to_owned();
            }
        }
    }
    panic!("no Alpine instance in {jobs:?}")
}
