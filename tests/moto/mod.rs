//! A `moto` server for one test: `python -m moto.server -H 127.0.0.1 -p <free port>` from
//! `$AGENTLESS_PYTHON` (default `.venv/bin/python`, set up by `scripts/setup-test-env.sh`), in
//! its own process group (start it as `python -m moto.server`, not through a shim),
//! killed on drop. Each test gets its own fresh server, so tests running in parallel never see
//! each other's resources. Credentials are static test ones (`testing`); nothing here can reach
//! AWS. [`hypervisor`]: a customer fleet and a test hypervisor that boots our scanners with the
//! real `scanner-agent`.

pub mod hypervisor;

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use agentless::cloud::authz::Scope;
use agentless::cloud::aws::{AwsCloud, AwsConfig, StaticCredentials};
use agentless::cloud::{AccountId, Guard, GuardPolicy, GuardRules, Region};

/// How long moto may take to import and listen (about 2 s here; CI machines are slower).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// moto's fixed account (`MOTO_ACCOUNT_ID` default) and the user static credentials map to
/// (`GetCallerIdentity` → `arn:aws:sts::123456789012:user/moto`).
pub const ACCOUNT: &str = "123456789012";
pub const CALLER_USER: &str = "moto";

pub fn python() -> PathBuf {
    match std::env::var_os("AGENTLESS_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// One running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub url: String,
    _log: tempfile::NamedTempFile,
    /// Released when the server is dropped (after it is killed: fields drop after `Drop::drop`).
    _serial: tokio::sync::OwnedMutexGuard<()>,
}

/// Serialises the moto tests (held for a server's lifetime).
static SERIAL: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();

impl Moto {
    /// Start a fresh server and wait until it accepts connections.
    pub async fn start() -> Moto {
        // One moto server at a time: parallel servers on a loaded 2-core machine raced for ports
        // and once refused a connection mid-test (seen in a full run); the suite takes seconds.
        let serial = SERIAL.get_or_init(|| Arc::new(tokio::sync::Mutex::new(()))).clone().lock_owned().await;
        let python = python();
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log"))
            .stderr(log.reopen().expect("log"))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto with {} ({e}): run scripts/setup-test-env.sh (it installs moto[server] into \
                     .venv) or set AGENTLESS_PYTHON",
                    python.display()
                )
            });
        let mut moto = Moto { child, url: format!("http://127.0.0.1:{port}"), _log: log, _serial: serial };
        let start = Instant::now();
        loop {
            if let Some(status) = moto.child.try_wait().expect("wait") {
                let log = std::fs::read_to_string(moto._log.path()).unwrap_or_default();
                panic!(
                    "moto exited with {status} before listening ({} -m moto.server; is moto[server] installed? run \
                     scripts/setup-test-env.sh):\n{log}",
                    python.display()
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            assert!(start.elapsed() < START_TIMEOUT, "moto did not listen on {port} within {START_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The backend configuration: this server, static test credentials, quick retries.
    pub fn config(&self, region: &Region) -> AwsConfig {
        AwsConfig {
            regions: vec![region.clone()],
            endpoint_url: Some(self.url.clone()),
            credentials: Some(StaticCredentials {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
                session_token: None,
            }),
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            ..AwsConfig::default()
        }
    }

    /// `AwsCloud` behind the guard with the bundled policy, as the orchestrator runs it, and
    /// supplementary policies (JSON documents) next to it.
    pub async fn guard_with(&self, region: &Region, extra: &[&str]) -> Guard<AwsCloud> {
        let account: AccountId = ACCOUNT.parse().expect("account");
        let scope = Scope { caller_user: Some(CALLER_USER.into()), ..Scope::new(account) };
        let policy = GuardPolicy::new(crate::util::policies(extra), scope, GuardRules::default());
        Guard::new(AwsCloud::new(&self.config(region)).await.expect("aws config"), policy)
    }

    /// The shared SDK configuration of a raw client (test setup: the "customer's" resources, and
    /// checks the seam does not offer).
    pub async fn sdk(&self, region: &Region) -> aws_config::SdkConfig {
        self.config(region).load().await.expect("sdk config")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // The whole process group (moto may start helper threads or processes), then the child.
        let _ =
            Command::new("kill").args(["-TERM", "--", &format!("-{}", self.child.id())]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
