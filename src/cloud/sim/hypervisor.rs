//! The simulated account's hypervisor: when a scanner instance (one with user
//! data) reaches `running`, it "boots" it by running the guest agent on the disk images behind the
//! snapshots attached to it, with the job manifest from its user data; when the agent is done the
//! instance powers off, and with shutdown behaviour `terminate` becomes terminated — as on EC2.
//!
//! Two ways to run the agent:
//! - [`AgentRunner::Process`]: the real `scanner-agent run` binary as a child process. The
//!   hypervisor serves it an IMDSv2 on loopback (token, then user data and instance id) and a
//!   device directory in which `dev/sdf`... are symlinks to the backing images; the agent uploads
//!   its bundle to the collector URL of the manifest over loopback HTTP, exactly as in production.
//! - [`AgentRunner::InProcess`]: the agent's library ([`scanner_ami::agent::scan_devices`]) on a
//!   blocking thread, the signed bundle handed to a [`BundleSink`] (the collector) directly: no
//!   socket, so it works under tokio's paused clock, where fleet simulations and chaos tests run.
//!
//! A volume with no backing image (a synthetic volume of a large simulated fleet) gets the fast
//! stand-in: an empty but valid result whose bundle entry says `synthetic: true` and whose error
//! says no disk bytes were read — every output that shows it says so.
//!
//! Both sign the scanner's instance identity document (its instance id, account and Region) with
//! the simulated account's test CA ([`sim_identity_ca`]) in AWS's `rsa2048` PKCS#7 form: served by
//! the IMDS at `/latest/dynamic/instance-identity/{document,rsa2048}`, or handed to the sink with
//! the bundle. The collector of a `--cloud sim` run trusts that CA, loudly; never on AWS.
//!
//! An instance carrying the `never-reports` fault ([`super::faults`]) is left running, silent.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use scanner_ami::bundle::{DeviceStatus, VolumeFiles, sign, write_bundle};
use scanner_ami::job::JobManifest;

use super::SimCloud;
use super::faults::InstanceFault;
use super::lifecycle;
use super::state::{Life, ShutdownBehavior};
use crate::cloud::ids::{AccountId, InstanceId, Region};
use crate::collector::Collector;
use crate::collector::identity::TestCa;

/// How often the hypervisor looks for scanners that started (on the tokio clock).
pub const TICK: Duration = Duration::from_millis(250);

/// Where bundles go in [`AgentRunner::InProcess`] mode.
pub trait BundleSink: Send + Sync {
    /// Deliver one signed bundle with the scanner's `rsa2048` identity signature (as the
    /// `X-Agentless-Identity` header would carry it). `Err` is logged (the agent would retry; the
    /// stand-in does not).
    fn deliver(
        &self,
        job: &str,
        scanner: &str,
        signature: &str,
        identity: Option<&str>,
        body: &[u8],
    ) -> Result<(), String>;
}

/// The in-process delivery to the collector (no socket: works under a paused clock) goes through
/// the same checks as an HTTP upload ([`Collector::ingest`]). The impl lives here, with the trait,
/// so the collector knows nothing of the simulated account.
impl BundleSink for Collector {
    fn deliver(
        &self,
        job: &str,
        scanner: &str,
        signature: &str,
        identity: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        self.ingest(job, scanner, Some(signature), identity, body).map(|_| ()).map_err(|e| self.refused(e).to_string())
    }
}

/// The simulated account's identity-document CA: an RSA-2048 key generated once per process
/// (`None` if generation failed, which the hypervisor reports for each scanner).
#[must_use]
pub fn sim_identity_ca() -> Option<&'static TestCa> {
    static CA: OnceLock<Option<TestCa>> = OnceLock::new();
    CA.get_or_init(|| match TestCa::generate() {
        Ok(ca) => Some(ca),
        Err(e) => {
            tracing::error!(error = %e, "cannot generate the simulated account's identity CA");
            None
        }
    })
    .as_ref()
}

/// The `rsa2048` identity signature of `instance` in `account`/`region`, signed by the sim CA.
///
/// # Errors
///
/// No CA, or signing failed.
pub fn sim_identity(instance: &str, account: &str, region: &str) -> Result<(Vec<u8>, String), String> {
    let ca = sim_identity_ca().ok_or("the simulated account has no identity CA")?;
    let document = TestCa::document(instance, account, region);
    let rsa2048 = ca.sign(&document).map_err(|e| e.to_string())?;
    Ok((document, rsa2048))
}

/// How the hypervisor runs the agent.
#[derive(Clone)]
pub enum AgentRunner {
    /// Run this `scanner-agent` binary.
    Process { binary: PathBuf },
    /// Call the agent library and deliver to this sink.
    InProcess { sink: Arc<dyn BundleSink> },
}

impl std::fmt::Debug for AgentRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentRunner::Process { binary } => f.debug_struct("Process").field("binary", binary).finish(),
            AgentRunner::InProcess { .. } => f.write_str("InProcess"),
        }
    }
}

/// A running scanner as the hypervisor sees it.
#[derive(Debug, Clone)]
struct Booted {
    account: AccountId,
    region: Region,
    instance: InstanceId,
    user_data: Option<String>,
    fault: Option<InstanceFault>,
    /// (device name, backing image) of each attached volume.
    devices: Vec<(String, Option<PathBuf>)>,
}

/// What the hypervisor did, for tests and summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HypervisorStats {
    pub booted: usize,
    pub agent_runs: usize,
    pub synthetic_volumes: usize,
    pub never_reported: usize,
    pub failures: Vec<String>,
}

/// The background task; stops when dropped.
#[derive(Debug)]
pub struct Hypervisor {
    task: tokio::task::JoinHandle<()>,
    stats: Arc<Mutex<HypervisorStats>>,
}

impl Drop for Hypervisor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hypervisor {
    /// Watch `sim` and boot its scanners with `runner`; per-instance files go under `work_dir`.
    #[must_use]
    pub fn start(sim: SimCloud, runner: AgentRunner, work_dir: PathBuf) -> Hypervisor {
        let stats = Arc::new(Mutex::new(HypervisorStats::default()));
        let s = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            let mut seen: HashSet<InstanceId> = HashSet::new();
            loop {
                for b in sim.booted_scanners() {
                    if !seen.insert(b.instance.clone()) {
                        continue;
                    }
                    s.lock().unwrap_or_else(PoisonError::into_inner).booted += 1;
                    let (sim, runner, work_dir, stats) =
                        (sim.clone(), runner.clone(), work_dir.clone(), Arc::clone(&s));
                    tokio::spawn(async move { boot(sim, runner, work_dir, b, stats).await });
                }
                tokio::time::sleep(TICK).await;
            }
        });
        Hypervisor { task, stats }
    }

    #[must_use]
    pub fn stats(&self) -> HypervisorStats {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn note_failure(stats: &Mutex<HypervisorStats>, msg: String) {
    tracing::warn!(error = %msg, "hypervisor");
    stats.lock().unwrap_or_else(PoisonError::into_inner).failures.push(msg);
}

async fn boot(sim: SimCloud, runner: AgentRunner, work_dir: PathBuf, b: Booted, stats: Arc<Mutex<HypervisorStats>>) {
    if b.fault == Some(InstanceFault::NeverReports) {
        tracing::info!(instance = %b.instance, "never-reports fault: the scanner runs silent");
        stats.lock().unwrap_or_else(PoisonError::into_inner).never_reported += 1;
        return;
    }
    let manifest_bytes = b
        .user_data
        .as_deref()
        .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
        .unwrap_or_default();
    let dev_root = work_dir.join(b.instance.as_str());
    if let Err(e) = make_dev_root(&dev_root, &b.devices) {
        note_failure(&stats, format!("{}: preparing its devices: {e}", b.instance));
    }
    let synthetic: Vec<String> = b.devices.iter().filter(|(_, p)| p.is_none()).map(|(d, _)| d.clone()).collect();
    match runner {
        AgentRunner::Process { binary } => {
            run_process(&binary, &b, &manifest_bytes, &dev_root, &stats).await;
        }
        AgentRunner::InProcess { sink } => {
            let booted = b.clone();
            let st = Arc::clone(&stats);
            let dr = dev_root.clone();
            let done = tokio::task::spawn_blocking(move || {
                in_process(&manifest_bytes, &dr, &booted, &synthetic, sink.as_ref(), &st);
            })
            .await;
            if let Err(e) = done {
                note_failure(&stats, format!("{}: agent thread: {e}", b.instance));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dev_root);
    if let Err(e) = sim.power_off(&b.account, &b.region, &b.instance) {
        note_failure(&stats, format!("{}: powering off: {e}", b.instance));
    }
}

/// `<dev_root>/dev/<name>` → the backing image, for each backed device.
fn make_dev_root(dev_root: &Path, devices: &[(String, Option<PathBuf>)]) -> std::io::Result<()> {
    let dev = dev_root.join("dev");
    std::fs::create_dir_all(&dev)?;
    for (name, backing) in devices {
        let (Some(file), Some(image)) = (name.strip_prefix("/dev/"), backing) else { continue };
        if file.contains('/') || file.is_empty() {
            continue;
        }
        let link = dev.join(file);
        let _ = std::fs::remove_file(&link);
        let target = std::fs::canonicalize(image).unwrap_or_else(|_| image.clone());
        std::os::unix::fs::symlink(target, link)?;
    }
    Ok(())
}

async fn run_process(binary: &Path, b: &Booted, manifest: &[u8], dev_root: &Path, stats: &Mutex<HypervisorStats>) {
    let identity = match sim_identity(b.instance.as_str(), b.account.as_str(), b.region.as_str()) {
        Ok(i) => Some(i),
        Err(e) => {
            note_failure(stats, format!("{}: signing its identity document: {e}", b.instance));
            None
        }
    };
    let imds = match imds::Imds::start(manifest.to_vec(), b.instance.to_string(), identity).await {
        Ok(i) => i,
        Err(e) => {
            note_failure(stats, format!("{}: starting its IMDS: {e}", b.instance));
            return;
        }
    };
    stats.lock().unwrap_or_else(PoisonError::into_inner).agent_runs += 1;
    let status = tokio::process::Command::new(binary)
        .arg("run")
        .arg("--imds-endpoint")
        .arg(imds.url())
        .arg("--dev-root")
        .arg(dev_root)
        .arg("--no-poweroff")
        .env("SCANNER_AGENT_LOG", std::env::var("SCANNER_AGENT_LOG").unwrap_or_else(|_| "warn".into()))
        .kill_on_drop(true)
        // Its own process group: a Ctrl-C in the terminal goes to the orchestrator, which
        // decides (a real scanner would not see the operator's signals either).
        .process_group(0)
        .status()
        .await;
    match status {
        Ok(s) if s.success() || s.code() == Some(1) => {
            tracing::info!(instance = %b.instance, code = ?s.code(), "scanner-agent finished");
        }
        Ok(s) => note_failure(stats, format!("{}: scanner-agent exited with {s}", b.instance)),
        Err(e) => note_failure(stats, format!("{}: cannot run {}: {e}", b.instance, binary.display())),
    }
}

/// The stand-in's result for a volume with no disk image: an empty scan, labelled synthetic.
fn synthetic_files() -> Option<VolumeFiles> {
    static FILES: OnceLock<Option<VolumeFiles>> = OnceLock::new();
    FILES
        .get_or_init(|| {
            let empty = tempfile::tempdir().ok()?;
            let report = scanner_ami::scan::scan_root(
                empty.path(),
                scanner_ami::scan::ScanOptions { baseline: true, ..Default::default() },
            )
            .ok()?;
            let out = scanner_ami::agent::ScanOutputs::render(&report, "synthetic").ok()?;
            Some(out.into_volume_files())
        })
        .clone()
}

/// What the synthetic label says.
pub const SYNTHETIC_NOTE: &str =
    "synthetic volume of the simulated account: no disk image backs it, no bytes were read; stand-in result";

fn in_process(
    manifest: &[u8],
    dev_root: &Path,
    booted: &Booted,
    synthetic: &[String],
    sink: &dyn BundleSink,
    stats: &Mutex<HypervisorStats>,
) {
    let instance = &booted.instance;
    let manifest = match JobManifest::parse(manifest) {
        Ok(m) => m,
        Err(e) => {
            note_failure(stats, format!("{instance}: its user data is not a job manifest: {e}"));
            return;
        }
    };
    stats.lock().unwrap_or_else(PoisonError::into_inner).agent_runs += 1;
    let (mut bundle_manifest, mut volumes) =
        scanner_ami::agent::scan_devices(&manifest, dev_root, Some(instance.to_string()));
    let mut synthetic_count = 0;
    for (i, entry) in bundle_manifest.devices.iter_mut().enumerate() {
        if !synthetic.contains(&entry.device_name) {
            continue;
        }
        let Some(files) = synthetic_files() else { continue };
        entry.status = DeviceStatus::Complete;
        entry.synthetic = true;
        entry.resolved_path = None;
        entry.error = Some(SYNTHETIC_NOTE.into());
        entry.os = None;
        entry.packages = 0;
        entry.baseline_failed = 0;
        volumes.insert(i, files);
        synthetic_count += 1;
    }
    stats.lock().unwrap_or_else(PoisonError::into_inner).synthetic_volumes += synthetic_count;
    let body = match write_bundle(&bundle_manifest, &volumes) {
        Ok(b) => b,
        Err(e) => {
            note_failure(stats, format!("{instance}: writing its bundle: {e}"));
            return;
        }
    };
    let signature = sign(&manifest.hmac_key, &body);
    let identity = match sim_identity(instance.as_str(), booted.account.as_str(), booted.region.as_str()) {
        Ok((_, rsa2048)) => Some(rsa2048),
        Err(e) => {
            note_failure(stats, format!("{instance}: signing its identity document: {e}"));
            None
        }
    };
    if let Err(e) = sink.deliver(&manifest.job, &manifest.scanner, &signature, identity.as_deref(), &body) {
        note_failure(stats, format!("{instance}: bundle refused: {e}"));
    }
}

impl SimCloud {
    /// Scanner instances (with user data) that are `running` now.
    fn booted_scanners(&self) -> Vec<Booted> {
        let mut inner = self.lock();
        let now = self.now_ms();
        lifecycle::advance(&mut inner.world, now);
        let mut out = Vec::new();
        for (account, a) in &inner.world.accounts {
            for (region, r) in &a.regions {
                for (id, i) in r.running_scanners() {
                    if i.life != Life::Running || i.user_data_base64.is_none() {
                        continue;
                    }
                    let devices = i
                        .attachments
                        .iter()
                        .filter(|att| Some(&att.device_name) != i.root_device_name.as_ref())
                        .map(|att| {
                            (att.device_name.clone(), r.volumes.get(&att.volume_id).and_then(|v| v.backing.clone()))
                        })
                        .collect();
                    out.push(Booted {
                        account: account.clone(),
                        region: region.clone(),
                        instance: id.clone(),
                        user_data: i.user_data_base64.clone(),
                        fault: i.fault,
                        devices,
                    });
                }
            }
        }
        out
    }

    /// The instance's OS shut it down: `shutting-down` then `terminated` with shutdown behaviour
    /// `terminate`, `stopping` then `stopped` otherwise (EC2 User Guide, "Change instance initiated
    /// shutdown behavior"). Outside IAM: the guest does it, not an API call. Saved.
    ///
    /// # Errors
    ///
    /// The state cannot be saved.
    pub fn power_off(
        &self,
        account: &AccountId,
        region: &Region,
        instance: &InstanceId,
    ) -> Result<(), super::SimError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(store) = &mut inner.store {
            store.refresh(&mut inner.world)?;
        }
        let now = self.now_ms();
        lifecycle::advance(&mut inner.world, now);
        let lat = inner.world.settings.latencies.clone();
        let Some(i) = inner
            .world
            .accounts
            .get_mut(account)
            .and_then(|a| a.regions.get_mut(region))
            .and_then(|r| r.instances.get_mut(instance))
        else {
            return Ok(());
        };
        if i.life != Life::Running {
            return Ok(());
        }
        i.life = match i.shutdown_behavior {
            ShutdownBehavior::Terminate => {
                Life::ShuttingDown { until_ms: now.saturating_add(lat.instance_shutdown_ms) }
            }
            ShutdownBehavior::Stop => Life::Stopping { until_ms: now.saturating_add(lat.instance_stop_ms) },
        };
        lifecycle::reindex_instance(&mut inner.world, account, region, instance);
        inner.world.clock_ms = now;
        if let Some(store) = &mut inner.store {
            store.save(&inner.world)?;
        }
        Ok(())
    }
}

/// A minimal IMDSv2 for one instance (EC2 User Guide, "Use the Instance Metadata Service"):
/// `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` returns a token; `GET
/// /latest/user-data` and `GET /latest/meta-data/instance-id` require it in
/// `X-aws-ec2-metadata-token` (401 without).
mod imds {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, put};

    #[derive(Clone)]
    struct Data {
        token: String,
        user_data: Vec<u8>,
        instance_id: String,
        /// The identity document and its `rsa2048` signature (404 when absent).
        identity: Option<(Vec<u8>, String)>,
    }

    pub struct Imds {
        addr: SocketAddr,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Imds {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn authorized(d: &Data, h: &HeaderMap) -> bool {
        h.get("x-aws-ec2-metadata-token").and_then(|v| v.to_str().ok()) == Some(d.token.as_str())
    }

    impl Imds {
        pub async fn start(
            user_data: Vec<u8>,
            instance_id: String,
            identity: Option<(Vec<u8>, String)>,
        ) -> std::io::Result<Imds> {
            let data = Data { token: uuid::Uuid::new_v4().simple().to_string(), user_data, instance_id, identity };
            let app = Router::new()
                .route(
                    "/latest/api/token",
                    put(|State(d): State<Data>, h: HeaderMap| async move {
                        if h.get("x-aws-ec2-metadata-token-ttl-seconds").is_none() {
                            return (StatusCode::BAD_REQUEST, String::new());
                        }
                        (StatusCode::OK, d.token.clone())
                    }),
                )
                .route(
                    "/latest/user-data",
                    get(|State(d): State<Data>, h: HeaderMap| async move {
                        if authorized(&d, &h) {
                            (StatusCode::OK, d.user_data.clone())
                        } else {
                            (StatusCode::UNAUTHORIZED, Vec::new())
                        }
                    }),
                )
                .route(
                    "/latest/meta-data/instance-id",
                    get(|State(d): State<Data>, h: HeaderMap| async move {
                        if authorized(&d, &h) {
                            (StatusCode::OK, d.instance_id.clone())
                        } else {
                            (StatusCode::UNAUTHORIZED, String::new())
                        }
                    }),
                )
                .route(
                    "/latest/dynamic/instance-identity/document",
                    get(|State(d): State<Data>, h: HeaderMap| async move {
                        match (&d.identity, authorized(&d, &h)) {
                            (_, false) => (StatusCode::UNAUTHORIZED, Vec::new()),
                            (Some((doc, _)), true) => (StatusCode::OK, doc.clone()),
                            (None, true) => (StatusCode::NOT_FOUND, Vec::new()),
                        }
                    }),
                )
                .route(
                    "/latest/dynamic/instance-identity/rsa2048",
                    get(|State(d): State<Data>, h: HeaderMap| async move {
                        match (&d.identity, authorized(&d, &h)) {
                            (_, false) => (StatusCode::UNAUTHORIZED, String::new()),
                            (Some((_, sig)), true) => (StatusCode::OK, sig.clone()),
                            (None, true) => (StatusCode::NOT_FOUND, String::new()),
                        }
                    }),
                )
                .with_state(data);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
            let addr = listener.local_addr()?;
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Ok(Imds { addr, task })
        }

        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }
    }
}
