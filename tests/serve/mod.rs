//! The scheduled-scan daemon: when schedules fire (time zones, DST, missed runs, no
//! overlap) on tokio's paused clock, the HTTP API (authentication, jobs, metrics), the dispatcher
//! never exceeding a quota (randomized, and with concurrent jobs on the simulated account), and
//! the `agentless serve` binary scanning the demo fleet on schedule, killed and restarted
//! mid-scan, ending with every job finished and nothing left, and stopped by SIGTERM/SIGINT in each
//! shutdown mode; and `agentless serve` with `cloud = "aws"` against moto, scanning on demand with
//! real agents.

mod api;
mod daemon;
mod dispatch;
mod events;
mod moto;
mod schedule;
mod select;
mod shutdown;
mod vulns;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: status, headers (lower-case names), body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), bounded in time; panics
/// on a connection error.
pub async fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Response {
    try_http(addr, method, path, token, body).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// The daemons that serve TLS, by address, with their certificate's SHA-256: [`try_http`] speaks
/// HTTPS to them, trusting that certificate alone (the scanners' pinned verifier,
/// `scanner_ami::agent::pin`).
static TLS_PINS: std::sync::Mutex<Vec<(SocketAddr, String)>> = std::sync::Mutex::new(Vec::new());

/// Speak HTTPS to `addr` from now on, trusting the certificate whose SHA-256 is `pin`.
pub fn use_tls(addr: SocketAddr, pin: &str) {
    TLS_PINS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((addr, pin.to_owned()));
}

fn tls_pin(addr: SocketAddr) -> Option<String> {
    let pins = TLS_PINS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    pins.iter().rev().find(|(a, _)| *a == addr).map(|(_, p)| p.clone())
}

/// [`http`], with the connection error returned. HTTPS to the addresses given to [`use_tls`].
pub async fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<Response> {
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let mut s: Box<dyn Stream> = match tls_pin(addr) {
            Some(pin) => {
                let (config, _) = scanner_ami::agent::pin::client_config(&pin).map_err(std::io::Error::other)?;
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                Box::new(tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?)
            }
            None => Box::new(tcp),
        };
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() || method == "POST" || method == "PUT" {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(std::time::Duration::from_secs(30), fut).await.map_err(std::io::Error::other)??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {text}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response { status, headers, body: body.to_owned() })
}

/// A connection, plain or TLS.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for S {}

/// A loopback port free now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The API token of the `agentless serve` processes the tests start.
pub const SERVE_TOKEN: &str = "daemon-test-token-0123456789";

/// Write `dir/agentless.toml` for `agentless serve` on the simulated demo fleet with the real
/// `scanner-agent`: the API on `addr` with [`SERVE_TOKEN`], one account `demo` in `regions` (a TOML
/// array), then `tables` (TOML text). Returns its path.
pub fn write_sim_config(dir: &Path, addr: SocketAddr, regions: &str, tables: &str) -> std::path::PathBuf {
    let config = dir.join("agentless.toml");
    let text = format!(
        r#"
[sim]
fleet = "{fleet}"
agent_binary = "{agent}"

[server]
listen = "{addr}"
token = "{SERVE_TOKEN}"

[[accounts]]
name = "demo"
id = "111122223333"
regions = {regions}
{tables}"#,
        fleet = crate::job::demo_fleet().display(),
        agent = crate::job::scanner_agent().display(),
    );
    std::fs::write(&config, text).expect("config");
    config
}

/// `agentless serve --config <config> --data-dir <data>`, its stderr (the log) to `log`.
pub fn start(config: &Path, data: &Path, log: &Path) -> Child {
    serve_command(config, data, log).spawn().expect("start agentless serve")
}

/// The command [`start`] runs (to add to its environment first).
pub fn serve_command(config: &Path, data: &Path, log: &Path) -> Command {
    let err = std::fs::File::create(log).expect("log file");
    let mut c = Command::new(env!("CARGO_BIN_EXE_agentless"));
    c.args(["serve", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("AGENTLESS_LOG", "info")
        .env_remove("AGENTLESS_DATA_DIR")
        .env_remove("AGENTLESS_API_TOKEN")
        .stdout(Stdio::null())
        .stderr(err);
    c
}

pub fn log_of(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Poll `f` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T>(what: &str, limit: Duration, log: &Path, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}; daemon log:\n{}", log_of(log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /v1/jobs` of a daemon started by [`start`] (`None` while it does not answer).
pub async fn jobs(addr: SocketAddr) -> Option<Vec<serde_json::Value>> {
    let r = try_http(addr, "GET", "/v1/jobs", Some(SERVE_TOKEN), None).await.ok()?;
    (r.status == 200).then(|| r.json()["jobs"].as_array().cloned().unwrap_or_default())
}

/// `kill <signal> <child>`.
pub fn kill(child: &mut Child, signal: &str) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

/// The API token of the daemons [`sim_daemon`] starts in this process.
pub const IN_PROCESS_TOKEN: &str = "test-token-0123456789";

/// The configuration of a daemon [`sim_daemon`] starts: its API on a free loopback port with
/// [`IN_PROCESS_TOKEN`], one account `demo` (111122223333) in `regions` (a TOML array), then
/// `tables` (TOML text).
pub fn in_process_config(regions: &str, tables: &str) -> agentless::schedule::config::Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntoken = \"{IN_PROCESS_TOKEN}\"\n[[accounts]]\nname = \"demo\"\nid = \"111122223333\"\nregions = {regions}\n{tables}"
    );
    agentless::schedule::config::Config::parse(&text, Path::new("test.toml")).expect("config")
}

/// A daemon on the simulated account `world`, in this process (the agent's code in process, the
/// clock tokio's), started with `guard` as its one account's principal in `regions`. The
/// hypervisor runs as long as the value.
pub struct SimDaemon {
    pub daemon: std::sync::Arc<agentless::schedule::daemon::Daemon<agentless::cloud::sim::SimCloud>>,
    pub ledger: std::sync::Arc<std::sync::Mutex<agentless::ledger::Ledger>>,
    _hypervisor: agentless::cloud::sim::hypervisor::Hypervisor,
}

pub fn sim_daemon(
    world: &agentless::cloud::sim::SimCloud,
    guard: agentless::cloud::Guard<agentless::cloud::sim::SimCloud>,
    config: agentless::schedule::config::Config,
    dir: &Path,
    regions: Vec<agentless::cloud::Region>,
    metrics: std::sync::Arc<agentless::api::metrics::Metrics>,
) -> SimDaemon {
    use std::sync::Arc;

    use agentless::cloud::sim::hypervisor::{AgentRunner, Hypervisor};
    use agentless::schedule::daemon::{Account, Daemon, Parts};

    let collector = agentless::collector::Collector::new(dir, scanner_ami::bundle::BundleLimits::default());
    let hypervisor =
        Hypervisor::start(world.clone(), AgentRunner::InProcess { sink: Arc::new(collector.clone()) }, dir.join("hv"));
    let clock = agentless::schedule::timer::tokio_clock("2026-05-10T00:00:00Z".parse().expect("ts"));
    let ledger = crate::util::shared(crate::util::open_ledger(dir).with_clock(Arc::clone(&clock)));
    let account = world.account().clone();
    let daemon = Daemon::new(Parts {
        collector_cert_sha256: None,
        config,
        data_dir: dir.to_path_buf(),
        ledger: Arc::clone(&ledger),
        collector,
        accounts: vec![Account {
            name: "demo".into(),
            caller_arn: crate::util::scanner_user_arn(&account),
            id: account,
            guard: Arc::new(guard),
            regions,
        }],
        now_ms: crate::util::sim_now_ms(world),
        clock,
        collector_url: "http://127.0.0.1:9".into(),
        sim: true,
        metrics,
    });
    daemon.start().expect("start");
    SimDaemon { daemon, ledger, _hypervisor: hypervisor }
}
