//! `agentless scan`: run scan jobs (one per Region) on the simulated account or AWS, print the
//! results, exit 0 when every target was scanned in full, 1 when some were not, 2 on a usage or
//! setup error. Shared with `agentless jobs resume` ([`Engine`]).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::common::{self, CloudArgs, CloudKind, Opened, SetupError};
use crate::cloud::sim::SimCloud;
use crate::cloud::sim::hypervisor::{AgentRunner, Hypervisor};
use crate::cloud::tags;
use crate::cloud::{Cloud, InstanceId, JobId, Region};
use crate::collector::Collector;
use crate::collector::server::Server;
use crate::job::runner::{NowMs, wall_clock};
use crate::job::{JobError, JobOutcome, JobSettings, Progress, Runner, ScannerImage, Selector};
use crate::ledger::{JobState, Ledger};
use crate::report::Summary;

pub(super) const EXIT_OK: u8 = 0;
pub(super) const EXIT_INCOMPLETE: u8 = 1;
pub(super) const EXIT_ERROR: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per volume: OS, packages, baseline failures, status.
    Table,
    /// The summary as JSON.
    Json,
}

/// Options of how jobs run (shared by `scan` and `jobs resume`).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Write `<instance>/sbom.cdx.json`, `inventory.json`, `baseline.json` (and per volume under
    /// `<instance>/<volume>/`) and `summary.json` into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Address the collector listens on [default: 127.0.0.1:0 with --cloud sim; 0.0.0.0:8443 with aws].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// URL scanners upload to (required with --cloud aws: an address scanners can reach).
    /// `https://`: the collector serves TLS and every scanner's manifest pins its certificate's
    /// SHA-256. `http://` is refused with --cloud aws (see --insecure-plaintext-collector).
    #[arg(long, value_name = "URL")]
    pub collector_url: Option<String>,
    /// AWS's RSA-2048 instance identity certificates, one `<region>.pem` per Region (required with
    /// --cloud aws; see src/collector/aws-identity-certs/README.md). Every bundle must carry its
    /// scanner's identity document signed with its Region's certificate.
    #[arg(long, value_name = "DIR", env = "AGENTLESS_IDENTITY_CERTS")]
    pub identity_certs: Option<PathBuf>,
    /// The scanner AMI, pinned: `REGION=AMI` once per Region scanned (an AMI id belongs to one
    /// Region), or a bare `AMI` when one Region is scanned [default: the one image of this account
    /// tagged agentless:image-version=<this version> and named alibaba-cloud-security-scan-image-<version>].
    #[arg(long, value_name = "[REGION=]AMI", value_parser = parse_pinned_ami, conflicts_with = "scanner_image_name")]
    pub scanner_ami: Vec<PinnedAmi>,
    /// The scanner AMI by its exact name, owned by this account (the same name in every Region).
    #[arg(long, value_name = "NAME")]
    pub scanner_image_name: Option<String>,
    /// Serve the collector over TLS even where plain HTTP is allowed (--cloud sim on loopback):
    /// with --tls-cert's certificate, else the data directory's self-signed one.
    #[arg(long)]
    pub tls: bool,
    /// The collector's TLS certificate chain (PEM, leaf first) [default: a self-signed ECDSA
    /// certificate generated once into <data-dir>/tls/ and reused]. Scanners pin the leaf.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// INSECURE: allow a plain http:// collector URL with --cloud aws, or plain HTTP on a
    /// non-loopback address: scanners' bundles then cross the network unencrypted.
    #[arg(long)]
    pub insecure_plaintext_collector: bool,
    /// Scanner instance type.
    #[arg(long, default_value = crate::job::DEFAULT_INSTANCE_TYPE)]
    pub instance_type: String,
    /// Skip the baseline (CIS-style) checks.
    #[arg(long)]
    pub no_baseline: bool,
    /// With --cloud sim: the scanner-agent binary the simulated hypervisor runs [default:
    /// scanner-agent next to this program if it exists, else the agent's code in process].
    #[arg(long, value_name = "PATH", env = "AGENTLESS_SCANNER_AGENT")]
    pub agent_binary: Option<PathBuf>,
    /// Between two polls of snapshots, instances and bundles, in milliseconds [default: 5000 on
    /// AWS, 500 on the simulated account, whose demo latencies are seconds].
    #[arg(long, value_name = "MS")]
    pub poll_ms: Option<u64>,
    /// Debug: SIGKILL this process once the job has done the work of STATE (crash-safety tests).
    #[arg(long, value_name = "STATE", hide = true)]
    pub crash_at: Option<JobState>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("targets").required(true).multiple(false).args(["all", "instance", "tag"])))]
pub struct ScanArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Scan every running instance of each Region (our own scanners excluded).
    #[arg(long)]
    pub all: bool,
    /// Scan this instance (repeat for several).
    #[arg(long, value_name = "ID")]
    pub instance: Vec<InstanceId>,
    /// Scan running instances with this tag (KEY=VALUE; repeat: all must match).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tag: Vec<(String, String)>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// One `--scanner-ami` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedAmi {
    pub region: Option<Region>,
    pub image: crate::cloud::ImageId,
}

fn parse_pinned_ami(s: &str) -> Result<PinnedAmi, String> {
    let (region, image) = match s.split_once('=') {
        Some((r, i)) => (Some(r.parse::<Region>().map_err(|e| format!("{r:?}: {e}"))?), i),
        None => (None, s),
    };
    let image = image.parse().map_err(|e| format!("{image:?}: {e}"))?;
    Ok(PinnedAmi { region, image })
}

/// The scanner image for jobs in `regions`: a bare AMI id with one Region only, `REGION=AMI` for
/// each Region, or an image name.
pub fn scanner_image(run: &RunArgs, regions: &[Region]) -> Result<ScannerImage, String> {
    if let Some(name) = &run.scanner_image_name {
        if name.is_empty() {
            return Err("--scanner-image-name is empty".into());
        }
        return Ok(ScannerImage::Name(name.clone()));
    }
    let (bare, by_region): (Vec<&PinnedAmi>, Vec<&PinnedAmi>) =
        run.scanner_ami.iter().partition(|p| p.region.is_none());
    match (bare.as_slice(), by_region.is_empty()) {
        ([], true) => Ok(ScannerImage::Version(tags::image_version())),
        ([one], true) => match regions {
            [_] => Ok(ScannerImage::Id(one.image.clone())),
            _ => Err(format!(
                "--scanner-ami {} names no Region, and {} Regions are scanned ({}): an AMI id belongs to \
                 one Region; give --scanner-ami REGION=AMI for each",
                one.image,
                regions.len(),
                regions.iter().map(Region::as_str).collect::<Vec<_>>().join(", ")
            )),
        },
        ([], false) => {
            let mut map = std::collections::BTreeMap::new();
            for p in by_region {
                let Some(region) = &p.region else { continue };
                if let Some(before) = map.insert(region.clone(), p.image.clone()) {
                    return Err(format!("--scanner-ami pins {region} twice ({before} and {})", p.image));
                }
            }
            if let Some(missing) = regions.iter().find(|r| !map.contains_key(*r)) {
                return Err(format!("--scanner-ami pins no image for {missing}, which is scanned"));
            }
            Ok(ScannerImage::ByRegion(map))
        }
        _ => Err("--scanner-ami: give either one bare AMI or REGION=AMI values, not both or several bare ones".into()),
    }
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    if k.is_empty() {
        return Err("the tag key is empty".into());
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Progress on stderr: a spinner per job on a terminal, a line per state change otherwise.
pub(super) struct CliProgress {
    bars: Option<(indicatif::MultiProgress, Mutex<HashMap<String, indicatif::ProgressBar>>)>,
    regions: Mutex<HashMap<String, String>>,
}

impl CliProgress {
    pub(super) fn new() -> CliProgress {
        let bars =
            std::io::stderr().is_terminal().then(|| (indicatif::MultiProgress::new(), Mutex::new(HashMap::new())));
        CliProgress { bars, regions: Mutex::new(HashMap::new()) }
    }

    pub(super) fn set_region(&self, job: &JobId, region: &str) {
        self.regions.lock().unwrap_or_else(PoisonError::into_inner).insert(job.to_string(), region.to_owned());
    }

    fn bar(&self, job: &JobId) -> Option<indicatif::ProgressBar> {
        let (multi, bars) = self.bars.as_ref()?;
        let mut bars = bars.lock().unwrap_or_else(PoisonError::into_inner);
        Some(
            bars.entry(job.to_string())
                .or_insert_with(|| {
                    let b = multi.add(indicatif::ProgressBar::new_spinner());
                    b.enable_steady_tick(std::time::Duration::from_millis(120));
                    b
                })
                .clone(),
        )
    }

    fn label(&self, job: &JobId) -> String {
        let regions = self.regions.lock().unwrap_or_else(PoisonError::into_inner);
        format!("{job} {}", regions.get(job.as_str()).map_or("", String::as_str))
    }
}

impl Progress for CliProgress {
    fn state(&self, job: &JobId, state: JobState) {
        match self.bar(job) {
            Some(b) => {
                b.set_message(format!("{}: {}", self.label(job), state.as_str()));
                if state.is_terminal() {
                    b.finish();
                }
            }
            None => eprintln!("agentless: job {}: {}", self.label(job), state.as_str()),
        }
    }

    fn step(&self, job: &JobId, what: &str, done: usize, total: usize) {
        match self.bar(job) {
            Some(b) => b.set_message(format!("{}: {what} {done}/{total}", self.label(job))),
            None => {
                if done == total {
                    eprintln!("agentless: job {}: {what} {done}/{total}", self.label(job));
                }
            }
        }
    }
}

/// Whose signatures the collector accepts on instance identity documents: on `--cloud sim` the
/// simulated account's test CA (logged as a warning), on `--cloud aws` the certificates of
/// `certs` (required: there is no default, see src/collector/aws-identity-certs/README.md).
///
/// # Errors
///
/// `--cloud aws` without `certs`, or they do not load.
pub(crate) fn identity_trust(
    cloud: CloudKind,
    certs: Option<&std::path::Path>,
) -> Result<crate::collector::IdentityTrust, SetupError> {
    use crate::collector::IdentityTrust;
    match (cloud, certs) {
        (CloudKind::Sim, _) => {
            let ca = crate::cloud::sim::hypervisor::sim_identity_ca()
                .ok_or_else(|| SetupError::Message("cannot generate the simulated account's identity CA".into()))?;
            IdentityTrust::test_ca(ca).map_err(|e| SetupError::Message(e.to_string()))
        }
        (CloudKind::Aws, Some(dir)) => IdentityTrust::from_dir(dir).map_err(|e| SetupError::Message(e.to_string())),
        (CloudKind::Aws, None) => Err(SetupError::Message(
            "--cloud aws needs --identity-certs DIR (or AGENTLESS_IDENTITY_CERTS; `identity_certs` in serve's \
             [server]): AWS's RSA-2048 instance identity certificates as <region>.pem, copied from the EC2 \
             User Guide page \"AWS public certificates for instance identity document signatures\" \
             (see src/collector/aws-identity-certs/README.md)"
                .into(),
        )),
    }
}

/// Everything a run of jobs needs beside the backend.
pub(super) struct Engine {
    pub data_dir: PathBuf,
    pub ledger: Arc<Mutex<Ledger>>,
    pub collector: Collector,
    pub server: Server,
    pub hypervisor: Option<Hypervisor>,
    pub now_ms: NowMs,
    pub cancel: tokio::sync::watch::Receiver<bool>,
    pub started: Instant,
    pub sim: bool,
}

impl Engine {
    pub(super) async fn start(cloud: &CloudArgs, run: &RunArgs) -> Result<Engine, SetupError> {
        let data_dir = cloud.data_dir();
        let ledger = common::open_ledger(&data_dir)?;
        // Scanners of unfinished jobs upload to the URL in their manifest: listen there again (and
        // over TLS if that URL is https://; the stored certificate is the one they pinned).
        let earlier = earlier_collector(&ledger);
        let collector = Collector::new(&data_dir, scanner_ami::bundle::BundleLimits::default());
        let listen = match (run.listen, cloud.cloud, earlier) {
            (Some(a), _, _) => a,
            (None, CloudKind::Sim, Some((a, _))) => a,
            (None, CloudKind::Sim, None) => SocketAddr::from(([127, 0, 0, 1], 0)),
            (None, CloudKind::Aws, _) => SocketAddr::from(([0, 0, 0, 0], 8443)),
        };
        let options = crate::collector::tls::TlsOptions {
            cert: run.tls_cert.clone(),
            key: run.tls_key.clone(),
            tls: run.tls || earlier.is_some_and(|(_, https)| https),
            insecure_plaintext: run.insecure_plaintext_collector,
        };
        let aws = cloud.cloud == CloudKind::Aws;
        let identity = crate::collector::tls::plan(&options, aws, run.collector_url.as_deref(), listen, &data_dir)?;
        // After the transport's checks (a plain http:// URL on AWS is refused first, naming its flag).
        collector.set_identity_trust(Some(identity_trust(cloud.cloud, run.identity_certs.as_deref())?));
        let server = Server::start_with(collector.clone(), listen, identity.as_ref())
            .await
            .map_err(|e| SetupError::Message(format!("the collector cannot listen on {listen}: {e}")))?;
        if let Some(id) = &identity {
            eprintln!(
                "agentless: the collector serves TLS; scanners pin its certificate, SHA-256 {}",
                id.fingerprint()
            );
        }
        let (tx, cancel) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "agentless: interrupted: stopping new work and tearing down (interrupt again to abandon; `agentless jobs resume` finishes later)"
                );
                let _ = tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("agentless: abandoned; run `agentless jobs resume` to finish the teardown");
                    std::process::exit(i32::from(EXIT_ERROR));
                }
            }
        });
        Ok(Engine {
            data_dir,
            ledger,
            collector,
            server,
            hypervisor: None,
            now_ms: wall_clock(),
            cancel,
            started: Instant::now(),
            sim: cloud.cloud == CloudKind::Sim,
        })
    }

    /// Prepare the simulated account: our scanner image, the hypervisor, its clock.
    pub(super) fn attach_sim(&mut self, opened: &Opened<SimCloud>, run: &RunArgs) -> Result<String, SetupError> {
        let sim = opened.guard.backend().clone();
        sim.install_scanner_image(&opened.regions)?;
        let binary = run.agent_binary.clone().or_else(|| {
            let exe = std::env::current_exe().ok()?;
            let sibling = exe.parent()?.join("scanner-agent");
            sibling.is_file().then_some(sibling)
        });
        let (runner, label) = match binary {
            Some(b) => {
                let label = format!("scanner-agent process {}", b.display());
                (AgentRunner::Process { binary: b }, label)
            }
            None => (
                AgentRunner::InProcess { sink: Arc::new(self.collector.clone()) },
                "scanner-agent code in process (build the scanner-agent binary to run it as a process)".to_owned(),
            ),
        };
        let s = sim.clone();
        self.now_ms = Arc::new(move || i64::try_from(s.now_ms()).unwrap_or(i64::MAX));
        self.hypervisor = Some(Hypervisor::start(sim, runner, self.data_dir.join("hypervisor")));
        Ok(label)
    }

    pub(super) fn settings(&self, run: &RunArgs, image: ScannerImage) -> JobSettings {
        let mut s = JobSettings::new(image);
        s.instance_type = run.instance_type.clone();
        s.baseline = !run.no_baseline;
        s.crash_at = run.crash_at;
        s.collector_cert_sha256 = self.server.cert_sha256().map(str::to_owned);
        let poll_ms = run.poll_ms.unwrap_or(if self.sim { SIM_POLL_MS } else { 5000 });
        s.poll = std::time::Duration::from_millis(poll_ms.max(10));
        s
    }

    pub(super) fn runner<C: Cloud>(
        &self,
        opened: &Opened<C>,
        settings: JobSettings,
        progress: Arc<dyn Progress>,
    ) -> Runner<C> {
        Runner::new(
            Arc::clone(&opened.guard),
            Arc::clone(&self.ledger),
            self.collector.clone(),
            settings,
            opened.account.clone(),
            opened.caller_arn.clone(),
            progress,
            Arc::clone(&self.now_ms),
            self.cancel.clone(),
        )
        .with_lock_dir(self.data_dir.clone())
    }
}

/// The simulated account's default poll interval: its demo latencies are a few seconds.
const SIM_POLL_MS: u64 = 500;

/// The loopback address an unfinished job's scanners upload to, if any, and whether over TLS.
fn earlier_collector(ledger: &Arc<Mutex<Ledger>>) -> Option<(SocketAddr, bool)> {
    let l = ledger.lock().unwrap_or_else(PoisonError::into_inner);
    let jobs = l.unfinished_jobs().ok()?;
    jobs.iter().find_map(|j| {
        let doc: crate::job::JobDoc = crate::job::doc::load(&l, &j.id).ok()??;
        let url = doc.collector_url.as_str();
        let (rest, https) = match url.strip_prefix("https://") {
            Some(r) => (r, true),
            None => (url.strip_prefix("http://")?, false),
        };
        let addr: SocketAddr = rest.parse().ok()?;
        addr.ip().is_loopback().then_some((addr, https))
    })
}

/// Drive these jobs concurrently.
pub(super) async fn drive_all<C: Cloud + 'static>(
    runner: Arc<Runner<C>>,
    jobs: Vec<JobId>,
) -> Vec<Result<JobOutcome, JobError>> {
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        let r = Arc::clone(&runner);
        set.spawn(async move { r.drive(&job).await });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok(r) => out.push(r),
            Err(e) => tracing::error!(error = %e, "a job task panicked"),
        }
    }
    out
}

/// Print the outcome; the exit status.
pub(super) fn report<C: Cloud>(
    engine: &Engine,
    run: &RunArgs,
    results: Vec<Result<JobOutcome, JobError>>,
    guard: &crate::cloud::Guard<C>,
    leftovers: Option<usize>,
    agent: Option<&str>,
) -> ExitCode {
    let mut errors = Vec::new();
    let mut outcomes = Vec::new();
    for r in results {
        match r {
            Ok(o) => outcomes.push(o),
            Err(e) => errors.push(e.to_string()),
        }
    }
    outcomes.sort_by(|a, b| a.region.as_str().cmp(b.region.as_str()));
    let summary = Summary::gather(&outcomes, engine.collector.store());
    let mut stdout = std::io::stdout().lock();
    let printed = match run.format {
        Format::Table => summary.render_table(&mut stdout),
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &summary).map_err(std::io::Error::other).and_then(|()| {
                use std::io::Write;
                writeln!(stdout)
            })
        }
    };
    if let Err(e) = printed {
        eprintln!("agentless: cannot write the results: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    if let Some(dir) = &run.out
        && let Err(e) = summary.write_out_dir(engine.collector.store(), dir)
    {
        eprintln!("agentless: cannot write results into {}: {e}", dir.display());
        return ExitCode::from(EXIT_ERROR);
    }
    let trace = guard.trace();
    let refused = trace.iter().filter(|t| !t.allowed).count();
    let volumes = summary.volumes_scanned();
    let per_volume = if volumes > 0 { format!("{:.1}", trace.len() as f64 / volumes as f64) } else { "-".into() };
    eprintln!(
        "agentless: {} AWS calls ({refused} refused by the policy guard), {volumes} volumes scanned ({per_volume} calls per volume), {:.1} s",
        trace.len(),
        engine.started.elapsed().as_secs_f64()
    );
    if let Some(a) = agent {
        eprintln!("agentless: simulated account; scanners ran the {a}");
    }
    if let Some(n) = leftovers {
        eprintln!("agentless: resources with our name prefixes left in the simulated account: {n}");
    }
    for e in &errors {
        eprintln!("agentless: {e}");
    }
    if !errors.is_empty() {
        return ExitCode::from(EXIT_ERROR);
    }
    if summary.all_scanned() { ExitCode::from(EXIT_OK) } else { ExitCode::from(EXIT_INCOMPLETE) }
}

async fn scan_on<C: Cloud + 'static>(
    engine: &Engine,
    opened: &Opened<C>,
    args: &ScanArgs,
    selector: Selector,
    url: &str,
) -> Result<Vec<Result<JobOutcome, JobError>>, SetupError> {
    let image = scanner_image(&args.run, &opened.regions).map_err(SetupError::Message)?;
    let progress = Arc::new(CliProgress::new());
    let runner =
        Arc::new(engine.runner(opened, engine.settings(&args.run, image), progress.clone() as Arc<dyn Progress>));
    let mut jobs = Vec::new();
    for region in &opened.regions {
        let job = runner.create(region, selector.clone(), url).map_err(|e| SetupError::Message(e.to_string()))?;
        progress.set_region(&job, region.as_str());
        jobs.push(job);
    }
    Ok(drive_all(runner, jobs).await)
}

/// Run `agentless scan`.
pub async fn run(args: ScanArgs) -> ExitCode {
    let selector = if args.all {
        Selector::All
    } else if !args.instance.is_empty() {
        Selector::Instances(args.instance.clone())
    } else {
        Selector::Tags(args.tag.clone())
    };
    if args.cloud.cloud == CloudKind::Aws && args.run.collector_url.is_none() {
        eprintln!("agentless: --cloud aws needs --collector-url: an address the scanners can reach this collector at");
        return ExitCode::from(EXIT_ERROR);
    }
    let mut engine = match Engine::start(&args.cloud, &args.run).await {
        Ok(e) => e,
        Err(e) => return setup_failed(&e),
    };
    match args.cloud.cloud {
        CloudKind::Sim => {
            let opened = match common::open_sim(&args.cloud).await {
                Ok(o) => o,
                Err(e) => return setup_failed(&e),
            };
            sim_demo_advisories(&engine.data_dir).await;
            let agent = match engine.attach_sim(&opened, &args.run) {
                Ok(a) => a,
                Err(e) => return setup_failed(&e),
            };
            let url = args.run.collector_url.clone().unwrap_or_else(|| engine.server.url());
            let results = match scan_on(&engine, &opened, &args, selector, &url).await {
                Ok(r) => r,
                Err(e) => return setup_failed(&e),
            };
            let left = opened.guard.backend().our_leftovers();
            report(&engine, &args.run, results, &opened.guard, Some(left), Some(&agent))
        }
        CloudKind::Aws => {
            let Some(url) = args.run.collector_url.clone() else {
                eprintln!(
                    "agentless: --cloud aws needs --collector-url: an address the scanners can reach this collector at"
                );
                return ExitCode::from(EXIT_ERROR);
            };
            let opened = match common::open_aws(&args.cloud).await {
                Ok(o) => o,
                Err(e) => return setup_failed(&e),
            };
            let results = match scan_on(&engine, &opened, &args, selector, &url).await {
                Ok(r) => r,
                Err(e) => return setup_failed(&e),
            };
            report(&engine, &args.run, results, &opened.guard, None, None)
        }
    }
}

/// The simulated account's data directory gets the bundled demo advisories when it has no
/// advisory database ([`crate::vuln::demo`]); never called for AWS.
pub(super) async fn sim_demo_advisories(data_dir: &std::path::Path) {
    let dir = data_dir.to_path_buf();
    let done =
        tokio::task::spawn_blocking(move || crate::vuln::demo::ensure_demo_advisories(&dir, jiff::Timestamp::now()))
            .await;
    match done {
        Ok(Ok(true)) => eprintln!(
            "agentless: simulated account: no advisory database yet; imported the {} into {}",
            crate::vuln::demo::SOURCE_NAME,
            crate::vuln::db::path_in(data_dir).display()
        ),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => eprintln!("agentless: warning: {e}; vulnerabilities will be reported not assessed"),
        Err(e) => eprintln!("agentless: warning: importing the demo advisories: {e}"),
    }
}

pub(super) fn setup_failed(e: &SetupError) -> ExitCode {
    eprintln!("agentless: {e}");
    ExitCode::from(EXIT_ERROR)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn run(args: &[&str]) -> RunArgs {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).expect("parse").run
    }

    fn regions(r: &[&str]) -> Vec<Region> {
        r.iter().map(|r| r.parse().expect("region")).collect()
    }

    #[test]
    fn scanner_ami_values_pin_one_image_per_region() {
        let two = regions(&["us-east-1", "eu-west-1"]);
        assert_eq!(scanner_image(&run(&[]), &two), Ok(ScannerImage::Version(tags::image_version())));
        let bare = run(&["--scanner-ami", "ami-0123456789abcdef0"]);
        assert_eq!(
            scanner_image(&bare, &regions(&["us-east-1"])),
            Ok(ScannerImage::Id("ami-0123456789abcdef0".parse().expect("ami")))
        );
        let err = scanner_image(&bare, &two).expect_err("bare id over two Regions");
        assert!(err.contains("an AMI id belongs to one Region") && err.contains("us-east-1, eu-west-1"), "{err}");

        let pinned = run(&[
            "--scanner-ami",
            "us-east-1=ami-0123456789abcdef0",
            "--scanner-ami",
            "eu-west-1=ami-0fedcba9876543210",
        ]);
        let Ok(ScannerImage::ByRegion(map)) = scanner_image(&pinned, &two) else { panic!("by Region") };
        assert_eq!(map.len(), 2);
        assert_eq!(map[&two[1]].as_str(), "ami-0fedcba9876543210");
        let err = scanner_image(&pinned, &regions(&["us-east-1", "eu-west-1", "ap-south-1"])).expect_err("one missing");
        assert!(err.contains("no image for ap-south-1"), "{err}");
        let twice = run(&[
            "--scanner-ami",
            "us-east-1=ami-0123456789abcdef0",
            "--scanner-ami",
            "us-east-1=ami-0fedcba9876543210",
        ]);
        assert!(scanner_image(&twice, &two).expect_err("twice").contains("pins us-east-1 twice"));
        let mixed =
            run(&["--scanner-ami", "ami-0123456789abcdef0", "--scanner-ami", "us-east-1=ami-0fedcba9876543210"]);
        assert!(scanner_image(&mixed, &two).is_err());

        assert!(T::try_parse_from(["t", "--scanner-ami", "us-east-1=not-an-ami"]).is_err());
        assert!(T::try_parse_from(["t", "--scanner-ami", "nowhere=ami-0123456789abcdef0"]).is_err());
        assert!(
            T::try_parse_from(["t", "--scanner-ami", "ami-0123456789abcdef0", "--scanner-image-name", "x"]).is_err()
        );
        assert_eq!(
            scanner_image(&run(&["--scanner-image-name", "my-scanner"]), &two),
            Ok(ScannerImage::Name("my-scanner".into()))
        );
    }
}
