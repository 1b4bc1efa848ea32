//! The `agentless` command line: global options and one module per subcommand.

mod audit;
pub mod common;
mod jobs;
mod policy;
mod scan;
mod scan_image;
mod serve;
mod vulndb;
mod vulns;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status when the command cannot even start (usage or setup error).
const EXIT_SETUP: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "agentless",
    version,
    about = "Scan EC2 instances for installed software and configuration weaknesses without installing anything on them",
    long_about = "Scan EC2 instances for installed software and configuration weaknesses without installing anything on them.\n\n\
        agentless snapshots each target's volumes, attaches them to short-lived scanner instances in an \
        ephemeral VPC, collects each scanner's inventory, SBOM and baseline findings, and tears everything \
        down using only the tag-conditioned permissions of its custom IAM policy.\n\n\
        Start with `agentless scan --all`: it runs on a simulated AWS account (no account needed)."
)]
pub struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing directive). Logs go to stderr.
    #[arg(long, global = true, default_value = "warn", env = "AGENTLESS_LOG")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan a local disk image with the guest agent's reader (no cloud calls).
    ScanImage(scan_image::ScanImageArgs),
    /// Scan EC2 instances: snapshot, scan on ephemeral scanners, tear down.
    ///
    /// One job per Region: discover the targets and their volumes, snapshot them, share them with
    /// the scanners (KMS grants), build an ephemeral VPC, launch scanners from the scanner image
    /// with the snapshots attached, collect their signed result bundles, and tear everything down
    /// with the custom policy's tag-conditioned permissions. Every call is checked against that
    /// policy first. With --cloud sim (the default) the simulated AWS account of the data
    /// directory is used (created from the demo fleet the first time).
    ///
    /// Exit status: 0 every target scanned, 1 some target not (see the table), 2 usage or setup error.
    Scan(Box<scan::ScanArgs>),
    /// The ledger's jobs: list, show, resume after a crash.
    Jobs(Box<jobs::JobsArgs>),
    /// Run the scheduled-scan daemon: scans on cron schedules, an HTTP API and metrics.
    ///
    /// Reads a TOML configuration (accounts, Regions, schedules with time zones and target
    /// selectors, limits, the listen address and the URL scanners upload to, retention, the audit
    /// schedule; scripts/deploy/agentless.toml is an annotated sample). Jobs of all schedules share
    /// each account's quotas through one dispatcher. The API (bearer token from server.token or
    /// $AGENTLESS_API_TOKEN) serves /v1/jobs, /v1/jobs/{id}, /v1/instances/{id}/latest,
    /// /v1/vulns?cve=|package=, POST /v1/scans, /healthz and /metrics next to the collector. With a
    /// [vulndb] section the advisory database is updated on its cron schedule and the stored
    /// results are matched again. SIGTERM/SIGINT: stop starting
    /// work, finish or tear down what is in flight within the deadline, exit; unfinished jobs
    /// resume on the next start.
    ///
    /// Exit status: 0 after a stop, 2 on a configuration or setup error.
    Serve(Box<serve::ServeArgs>),
    /// Find (and with --delete remove) resources our scans left behind.
    ///
    /// Lists, in every Region asked (every enabled one by default), the snapshots, volumes,
    /// instances, VPCs, subnets, gateways, security groups, endpoints and KMS grants named with our
    /// prefixes, and classifies each: active (its job is running), leaked (its job is over, failed,
    /// unknown, or past agentless:expires-at, and older than --grace), foreign (our prefix without
    /// our job tag: reported, never deleted without --include-foreign) or stuck (ours but no longer
    /// deletable under the policy: what a person must do is printed). Without --delete it only
    /// reports.
    ///
    /// Exit status: 0 nothing leaked remains, 1 leaks remain, 2 error or an incomplete listing.
    Audit(Box<audit::AuditCommand>),
    /// IAM policy tools: `explain` decides one request, `check` the full call plan of a scan and an audit.
    Policy(policy::PolicyArgs),
    /// The offline advisory database: `import` OSV archives, OSV JSON and Alpine secdb, `update` from osv.dev, `status`.
    ///
    /// The database is vulndb.sqlite in the data directory; the vulnerability matcher reads it.
    /// Exit status: 0 ok, 1 import failed (previous database kept) or status stale/missing, 2 usage.
    Vulndb(vulndb::VulndbArgs),
    /// Vulnerability results: `rescan` stored inventories after a database update, `show` what is vulnerable where.
    ///
    /// Reads and writes only the data directory (no cloud call). `rescan --all` or `--job J`
    /// rewrites each volume's vulns.json against the current vulndb.sqlite; `show INSTANCE`,
    /// `show --cve CVE-...` and `show --package NAME` answer from each instance's newest result.
    Vulns(vulns::VulnsArgs),
}

/// Run a parsed command line.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    match cli.command {
        Command::ScanImage(args) => scan_image::run(&args),
        Command::Policy(args) => policy::run(&args),
        Command::Vulndb(args) => vulndb::run(&args),
        Command::Vulns(args) => vulns::run(&args),
        Command::Scan(args) => runtime(|| scan::run(*args)),
        Command::Jobs(args) => runtime(|| jobs::run(*args)),
        Command::Audit(args) => runtime(|| audit::command(*args)),
        Command::Serve(args) => runtime(|| serve::run(*args)),
    }
}

/// Run an async command on a multi-threaded tokio runtime.
/// How long the exit waits for blocking tasks still running (our choice: long enough for a
/// ledger write to finish, short enough that a second Ctrl-C feels immediate).
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(2);

fn runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => {
            let code = rt.block_on(f());
            // Do not wait on blocking tasks still running (an in-process agent scanning a disk
            // after a second Ctrl-C): what they did is recorded, what they do now is abandoned.
            rt.shutdown_timeout(RUNTIME_SHUTDOWN);
            code
        }
        Err(e) => {
            eprintln!("agentless: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}
