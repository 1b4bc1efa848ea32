//! `agentless serve --config FILE [--data-dir DIR]`: the scheduled-scan daemon. Reads
//! the configuration ([`crate::schedule::config`]), opens one principal per account (the
//! simulated account's, or AWS through a profile or an assumed role, each checked against its
//! configured id, and its configured Regions against those the account has), binds the collector
//! and the API on one listener ([`crate::api`]), starts the daemon ([`crate::schedule::daemon`])
//! and waits for SIGTERM or SIGINT.
//!
//! # TLS
//!
//! The listener serves TLS ([`crate::collector::tls`]) whenever the collector URL is `https://`,
//! `server.tls` is set or a certificate is given (`server.tls_cert`/`server.tls_key`; else the
//! data directory's self-signed one), so the API and its bearer token are HTTPS too. Plain HTTP is
//! refused with `cloud = "aws"` and an `http://` collector URL, and on a non-loopback `listen`,
//! unless `server.insecure_plaintext_collector` (or `--insecure-plaintext-collector`) allows it,
//! with a warning on every start. The simulated account on loopback keeps plain HTTP by default.
//!
//! # Stopping
//!
//! On the first SIGTERM or SIGINT no run, job or on-demand scan starts any more (the API answers
//! `503` to `POST /v1/scans`; queued jobs stay queued); with `daemon.shutdown = "finish"` (the
//! default) the jobs in flight go on, with `"tear-down"` they are cancelled and tear down (each
//! ends `Cancelled`). The daemon waits for them up to `daemon.shutdown_deadline` (default 10 min):
//! a second SIGTERM or SIGINT stops the wait at once. Whatever is unfinished then (in flight at
//! the deadline or the second signal, or queued) stays in the ledger with what it holds in the
//! cloud, and resumes on the next start (or with `agentless jobs resume`). The last log line says
//! which: `agentless: stopped in …; every job is finished`, or `agentless: stopped in …: <why>;
//! N unfinished jobs left to resume on the next start: <job> (<Region>, <state>), …`.
//!
//! # Exit status
//!
//! - 0: stopped on a signal, the ledger consistent: every job finished, or the unfinished ones
//!   (deadline passed, second signal, queued) are recorded and resume on the next start. Either
//!   way a clean stop (systemd's `Restart=on-failure` does not restart it; the log tells which).
//! - 1: stopped on a signal, but the ledger could not be read at the end: what is unfinished is
//!   unknown (whatever it is still resumes on the next start).
//! - 2: the configuration or the setup is wrong, or the daemon could not start (the ledger failed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::common::{self, SetupError, guard_for};
use super::scan::{EXIT_ERROR, EXIT_INCOMPLETE};
use crate::api::metrics::Metrics;
use crate::cloud::authz::Scope;
use crate::cloud::aws::{AssumeRole, AwsCloud, AwsConfig};
use crate::cloud::ops::Empty;
use crate::cloud::sim::hypervisor::{AgentRunner, Hypervisor};
use crate::cloud::sim::{Fleet, SimCloud};
use crate::cloud::{AccountId, Cloud, GuardRules};
use crate::collector::Collector;
use crate::collector::tls::{self, TlsIdentity, TlsOptions};
use crate::schedule::config::{CloudKind, Config, MIN_TOKEN_LEN, ShutdownMode};
use crate::schedule::daemon::{Account, Daemon, Parts, StopEnd, Stopped};
use crate::schedule::timer::wall_clock;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; the annotated sample is scripts/deploy/agentless.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where the ledger, results and job locks (and the simulated account) live [default: the
    /// configuration's data_dir, else $AGENTLESS_DATA_DIR, else $XDG_STATE_HOME/agentless, else
    /// ~/.local/state/agentless].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// INSECURE: allow plain HTTP where it is refused (an http:// collector URL with cloud =
    /// "aws", a non-loopback listen address): bundles and the API token cross the network in
    /// clear. Same as server.insecure_plaintext_collector = true.
    #[arg(long)]
    pub insecure_plaintext_collector: bool,
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("agentless: {e}");
    ExitCode::from(EXIT_ERROR)
}

/// The same default as the other commands (`--data-dir`, `AGENTLESS_DATA_DIR`, XDG).
fn default_data_dir() -> PathBuf {
    common::CloudArgs {
        cloud: common::CloudKind::Sim,
        fleet: None,
        data_dir: std::env::var_os("AGENTLESS_DATA_DIR").filter(|s| !s.is_empty()).map(PathBuf::from),
        regions: Vec::new(),
        profile: None,
        endpoint_url: None,
    }
    .data_dir()
}

/// Run `agentless serve`.
pub async fn run(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let Some(token) = config.api_token() else {
        let var = config.server.token_env.as_deref().unwrap_or(crate::schedule::config::DEFAULT_TOKEN_ENV);
        return fail(&format!("no API token: set {var} (or server.token in the configuration)"));
    };
    if token.len() < MIN_TOKEN_LEN {
        return fail(&format!("the API token is shorter than {MIN_TOKEN_LEN} characters"));
    }
    let data_dir = args.data_dir.clone().or_else(|| config.data_dir.clone()).unwrap_or_else(default_data_dir);
    let aws = config.cloud == CloudKind::Aws;
    if aws && config.server.collector_url.is_none() {
        return fail(
            &"cloud = \"aws\" needs server.collector_url: an address the scanners can reach this collector at",
        );
    }
    let options = TlsOptions {
        cert: config.server.tls_cert.clone(),
        key: config.server.tls_key.clone(),
        tls: config.server.tls,
        insecure_plaintext: config.server.insecure_plaintext_collector || args.insecure_plaintext_collector,
    };
    let tls = match tls::plan(&options, aws, config.server.collector_url.as_deref(), config.server.listen, &data_dir) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let ledger = match common::open_ledger(&data_dir) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let collector =
        Collector::with_limits(&data_dir, scanner_ami::bundle::BundleLimits::default(), config.limits.upload_limits());
    let cloud = match config.cloud {
        CloudKind::Sim => common::CloudKind::Sim,
        CloudKind::Aws => common::CloudKind::Aws,
    };
    match super::scan::identity_trust(cloud, config.server.identity_certs.as_deref()) {
        Ok(trust) => collector.set_identity_trust(Some(trust)),
        Err(e) => return fail(&e),
    }
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => return fail(&format!("cannot listen on {}: {e}", config.server.listen)),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(&format!("cannot read the listening address: {e}")),
    };
    let metrics = Arc::new(Metrics::new());
    let env = Env { config, data_dir, ledger, collector, listener, addr, metrics, token, tls };
    match env.config.cloud {
        CloudKind::Sim => serve_sim(env).await,
        CloudKind::Aws => serve_aws(env).await,
    }
}

/// What both backends share.
struct Env {
    config: Config,
    data_dir: PathBuf,
    ledger: Arc<std::sync::Mutex<crate::ledger::Ledger>>,
    collector: Collector,
    listener: tokio::net::TcpListener,
    addr: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    token: String,
    /// The listener's TLS identity; `None`: plain HTTP.
    tls: Option<TlsIdentity>,
}

impl Env {
    /// `https` when the listener serves TLS, else `http`.
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

async fn serve_sim(env: Env) -> ExitCode {
    let fleet_path = env.config.sim.fleet.clone().unwrap_or_else(|| PathBuf::from(common::DEMO_FLEET));
    let world = match Fleet::load(&fleet_path).map_err(SetupError::from).and_then(|fleet| {
        std::fs::create_dir_all(&env.data_dir).map_err(|e| {
            SetupError::Message(format!("cannot create the data directory {}: {e}", env.data_dir.display()))
        })?;
        Ok(SimCloud::open(&env.data_dir, &fleet)?)
    }) {
        Ok(w) => w,
        Err(e) => return fail(&e),
    };
    super::scan::sim_demo_advisories(&env.data_dir).await;
    let mut accounts = Vec::new();
    for a in &env.config.accounts {
        let Some(id) = a.id.clone() else {
            return fail(&format!("account \"{}\" has no id (required with cloud = \"sim\")", a.name));
        };
        let sim = match world.as_account(&id) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        let missing: Vec<String> = sim.inspect(|w| {
            let known = w.accounts.get(&id).map(|x| x.regions.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
            a.regions.iter().filter(|r| !known.contains(r)).map(ToString::to_string).collect()
        });
        if !missing.is_empty() {
            return fail(&format!(
                "account \"{}\": Regions not in the simulated account: {}",
                a.name,
                missing.join(", ")
            ));
        }
        if let Err(e) = sim.install_scanner_image(&a.regions) {
            return fail(&e);
        }
        let scope = sim.scope();
        let user = scope.caller_user.clone().unwrap_or_else(|| "agentless-scanner".into());
        let caller_arn = format!("arn:aws:iam::{id}:user/{user}");
        let guard = match common::guard_with_trail(sim, scope, GuardRules::default(), a.trail.as_ref()) {
            Ok(g) => g.without_trace().with_observer(env.metrics.observer()),
            Err(e) => return fail(&e),
        };
        accounts.push(Account {
            name: a.name.clone(),
            id,
            guard: Arc::new(guard),
            caller_arn,
            regions: a.regions.clone(),
        });
    }
    let binary = env.config.sim.agent_binary.clone().or_else(|| {
        let exe = std::env::current_exe().ok()?;
        let sibling = exe.parent()?.join("scanner-agent");
        sibling.is_file().then_some(sibling)
    });
    let runner = match binary {
        Some(binary) => AgentRunner::Process { binary },
        None => AgentRunner::InProcess { sink: Arc::new(env.collector.clone()) },
    };
    let _hypervisor = Hypervisor::start(world.clone(), runner, env.data_dir.join("hypervisor"));
    let collector_url =
        env.config.server.collector_url.clone().unwrap_or_else(|| format!("{}://{}", env.scheme(), env.addr));
    let w = world.clone();
    let now_ms: crate::job::runner::NowMs = Arc::new(move || i64::try_from(w.now_ms()).unwrap_or(i64::MAX));
    serve(env, accounts, now_ms, collector_url, true).await
}

/// The calls the start-up probe sent (Region, operation, time in ms, ids), recorded in the ledger
/// once the account is known, for the CloudTrail cross-check.
type ProbeCalls = Arc<std::sync::Mutex<Vec<(crate::cloud::Region, &'static str, i64, Vec<String>)>>>;

async fn open_aws_account(
    a: &crate::schedule::config::AccountConfig,
) -> Result<(AwsCloud, Scope, String, ProbeCalls), SetupError> {
    let config = AwsConfig {
        profile: a.profile.clone(),
        regions: a.regions.clone(),
        endpoint_url: a.endpoint_url.clone(),
        assume_role: a.role_arn.clone().map(|role_arn| AssumeRole {
            role_arn,
            external_id: a.external_id.clone(),
            session_name: None,
        }),
        ..AwsConfig::default()
    };
    let home = a
        .regions
        .first()
        .cloned()
        .ok_or_else(|| SetupError::Message(format!("account \"{}\" has no Region", a.name)))?;
    let aws = AwsCloud::new(&config)
        .await
        .map_err(|e| SetupError::Message(format!("account \"{}\": AWS configuration: {e}", a.name)))?;
    // GetCallerIdentity needs no permission; ask it through a guard with a provisional scope.
    let provisional: AccountId = "000000000000".parse().map_err(|e| SetupError::Message(format!("{e}")))?;
    let probe = guard_for(aws, Scope::new(provisional), GuardRules::default())?;
    let probe_calls: ProbeCalls = Arc::default();
    let sink = Arc::clone(&probe_calls);
    probe.set_recorder(Arc::new(move |region: &crate::cloud::Region, call: crate::cloud::Call<'_>| {
        let ids = crate::trail::record::ids_in_text(&format!("{call:?}")).into_iter().collect();
        let at = jiff::Timestamp::now().as_millisecond();
        sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((region.clone(), call.name(), at, ids));
    }));
    let who = probe.get_caller_identity(&home, &Empty).await?;
    if let Some(id) = &a.id
        && *id != who.account
    {
        return Err(SetupError::Message(format!(
            "account \"{}\": the credentials belong to account {}, not {id}",
            a.name, who.account
        )));
    }
    // Every configured Region must be enabled for the account: a misspelt Region, or one the
    // account has not opted in to, would otherwise fail each of its jobs, run after run (the
    // simulated account's Regions are checked the same way in `serve_sim`).
    let enabled: Vec<crate::cloud::Region> = probe
        .describe_regions(&home, &Empty)
        .await
        .map_err(|e| SetupError::Message(format!("account \"{}\": cannot list its Regions: {e}", a.name)))?
        .into_iter()
        .filter(|r| r.opt_in_status != "not-opted-in")
        .map(|r| r.region)
        .collect();
    let missing: Vec<String> = a.regions.iter().filter(|r| !enabled.contains(r)).map(ToString::to_string).collect();
    if !missing.is_empty() {
        return Err(SetupError::Message(format!(
            "account \"{}\": Regions not enabled for account {}: {} (a misspelt Region, or one the account has not \
             opted in to)",
            a.name,
            who.account,
            missing.join(", ")
        )));
    }
    let user = who.arn.rsplit_once(":user/").map(|(_, u)| u.to_owned());
    let scope = Scope { caller_user: user, ..Scope::new(who.account.clone()) };
    let aws = AwsCloud::new(&config)
        .await
        .map_err(|e| SetupError::Message(format!("account \"{}\": AWS configuration: {e}", a.name)))?;
    Ok((aws, scope, who.arn, probe_calls))
}

async fn serve_aws(env: Env) -> ExitCode {
    let Some(collector_url) = env.config.server.collector_url.clone() else {
        return fail(
            &"cloud = \"aws\" needs server.collector_url: an address the scanners can reach this collector at",
        );
    };
    let mut accounts = Vec::new();
    for a in &env.config.accounts {
        let (aws, scope, caller_arn, probe_calls) = match open_aws_account(a).await {
            Ok(x) => x,
            Err(e) => return fail(&e),
        };
        let id = scope.account.clone();
        if let Some(trail) = a.trail.as_ref().filter(|_| env.config.trail.crosscheck) {
            let calls = std::mem::take(&mut *probe_calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            let mut l = env.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (region, op, at, ids) in calls {
                if crate::events::recorder::logged(op, &region, &trail.region)
                    && let Err(e) = l.record_our_call(&id, &region, op, at, &ids)
                {
                    tracing::warn!(account = %a.name, op, error = %e, "cannot record a start-up call for the CloudTrail cross-check");
                }
            }
        }
        let guard = match common::guard_with_trail(aws, scope, GuardRules::default(), a.trail.as_ref()) {
            Ok(g) => g.without_trace().with_observer(env.metrics.observer()),
            Err(e) => return fail(&e),
        };
        accounts.push(Account {
            name: a.name.clone(),
            id,
            guard: Arc::new(guard),
            caller_arn,
            regions: a.regions.clone(),
        });
    }
    serve(env, accounts, crate::job::runner::wall_clock(), collector_url, false).await
}

async fn serve<C: Cloud + 'static>(
    env: Env,
    accounts: Vec<Account<C>>,
    now_ms: crate::job::runner::NowMs,
    collector_url: String,
    sim: bool,
) -> ExitCode {
    // One principal, one set of token buckets and one ledger view per AWS account: two entries
    // for the same account would split its buckets (and throttle) and scan its instances twice.
    for (i, a) in accounts.iter().enumerate() {
        if let Some(b) = accounts[..i].iter().find(|b| b.id == a.id) {
            return fail(&format!(
                "accounts \"{}\" and \"{}\" are the same AWS account {}: list it once (with all its Regions)",
                b.name, a.name, a.id
            ));
        }
    }
    let mode = env.config.daemon.shutdown;
    let deadline = env.config.daemon.shutdown_deadline;
    let scheme = env.scheme();
    let Env { config, data_dir, ledger, collector, listener, addr, metrics, token, tls } = env;
    let collector_cert_sha256 = tls.as_ref().map(|t| t.fingerprint().to_owned());
    let daemon = Daemon::new(Parts {
        collector_cert_sha256: collector_cert_sha256.clone(),
        config,
        data_dir,
        ledger,
        collector: collector.clone(),
        accounts,
        now_ms,
        clock: wall_clock(),
        collector_url: collector_url.clone(),
        sim,
        metrics,
    });
    let app = crate::api::router(daemon.api_state(&token), collector);
    let tls_config = tls.as_ref().map(TlsIdentity::server_config);
    let _server = ServerTask(tokio::spawn(async move {
        if let Err(e) = tls::serve(listener, app, tls_config).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    }));
    // Both streams from now on: a signal is never lost between the first and the second wait.
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => return fail(&format!("cannot watch SIGTERM and SIGINT: {e}")),
    };
    if let Err(e) = daemon.start() {
        return fail(&e);
    }
    tracing::info!(%addr, collector_url = %collector_url, "agentless serve: listening");
    eprintln!("agentless: serving on {scheme}://{addr} (scanners upload to {collector_url})");
    if let Some(pin) = &collector_cert_sha256 {
        eprintln!("agentless: TLS certificate SHA-256 {pin} (pinned in every scanner's manifest)");
    }
    let first = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    let stopping_at = std::time::Instant::now();
    let in_flight = daemon.driving_jobs();
    let what = match mode {
        ShutdownMode::Finish => "letting the jobs in flight finish",
        ShutdownMode::TearDown => "tearing down the jobs in flight",
    };
    eprintln!(
        "agentless: {first}: stopping: no new work; {what} ({in_flight} now), for up to {deadline:?} \
         (signal again to exit now; what is unfinished resumes on the next start)"
    );
    let again = async {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        eprintln!("agentless: {which} again: exiting now");
    };
    let stopped = daemon.stop(mode, deadline, again).await;
    let (line, code) = stop_report(&stopped, deadline, stopping_at.elapsed());
    eprintln!("{line}");
    code
}

/// The last log line of a stop, and the exit status.
fn stop_report(stopped: &Stopped, deadline: Duration, took: Duration) -> (String, ExitCode) {
    let took = format!("{:.1} s", took.as_secs_f64());
    let unfinished = match &stopped.unfinished {
        Ok(u) => u,
        Err(e) => {
            return (
                format!(
                    "agentless: stopped in {took}, but the ledger cannot be read ({e}): unfinished jobs are \
                     unknown (`agentless jobs list`); they resume on the next start"
                ),
                ExitCode::from(EXIT_INCOMPLETE),
            );
        }
    };
    if unfinished.is_empty() {
        return (format!("agentless: stopped in {took}; every job is finished"), ExitCode::SUCCESS);
    }
    let n = stopped.in_flight;
    let why = match stopped.end {
        StopEnd::Idle => "the jobs in flight are over".to_owned(),
        StopEnd::DeadlinePassed => {
            format!("the shutdown deadline ({deadline:?}) passed with {n} {} in flight", jobs(n))
        }
        StopEnd::Abandoned => format!("second signal: {n} {} in flight abandoned", jobs(n)),
    };
    const LISTED: usize = 10;
    let mut list: Vec<String> =
        unfinished.iter().take(LISTED).map(|j| format!("{} ({}, {})", j.id, j.region, j.state)).collect();
    if unfinished.len() > LISTED {
        list.push(format!("and {} more", unfinished.len() - LISTED));
    }
    let line = format!(
        "agentless: stopped in {took}: {why}; {} unfinished {} left to resume on the next start (their cloud \
         resources stay until then; `agentless jobs resume` also finishes them): {}",
        unfinished.len(),
        jobs(unfinished.len()),
        list.join(", ")
    );
    (line, ExitCode::SUCCESS)
}

fn jobs(n: usize) -> &'static str {
    if n == 1 { "job" } else { "jobs" }
}

/// The HTTP server's task, aborted when the daemon returns.
struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
