//! `scanner-agent`: the guest agent of the scanner image. See `scanner-agent --help`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use scanner_ami::agent::{self, PowerOff, RunConfig, ScanOutputs, egress};
use scanner_ami::baseline::Status;
use scanner_ami::report::Report;
use scanner_ami::scan;

/// Exit status: the scan ran and everything was read.
const EXIT_OK: u8 = 0;
/// Exit status: the scan ran but the result is incomplete (see the report's `errors`).
const EXIT_PARTIAL: u8 = 1;
/// Exit status: nothing could be scanned (bad arguments, unopenable disk, output not writable).
const EXIT_FATAL: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "scanner-agent",
    version,
    about = "Read a disk read-only, without mounting it, and inventory its OS, OS packages and applications",
    long_about = "Read a disk read-only, without mounting it, and inventory its OS, OS packages and applications.\n\n\
        The disk (a raw image file or a block device) is parsed in userspace: GPT or MBR partition \
        tables, ext2/3/4 filesystems (journal replayed in memory, nothing written), os-release, and the \
        dpkg, rpm (BerkeleyDB, NDB, SQLite, distroless manifest) and apk databases; then a bounded walk \
        finds applications: Go and Rust (cargo auditable) binaries, Python distributions, Java archives \
        (nested), Node, Ruby, PHP (Composer) and .NET packages, and the installed kernels. Every byte is treated \
        as hostile: damaged parts are reported and the scan goes on.\n\n\
        Exit status: 0 complete, 1 scanned with errors (the report lists them), 2 nothing scanned.",
    after_help = "Examples:\n  scanner-agent scan --image disk.img\n  scanner-agent scan --device /dev/nvme1n1 --format cyclonedx > sbom.cdx.json\n  scanner-agent scan --root /mnt/snapshot --format json --out results/\n  scanner-agent run    (on a scanner instance: the job comes from IMDSv2 user data)"
)]
struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing directive). Logs go to stderr.
    /// Default: warn for `scan`, info for `run`.
    #[arg(long, global = true, env = "SCANNER_AGENT_LOG")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan one disk or root tree and print its inventory.
    Scan(ScanArgs),
    /// The scanner image's mode: scan the job's attached devices, upload the result bundle, power off.
    #[command(
        long_about = "The scanner image's mode (started by systemd at boot).\n\n\
        1. Read the job manifest: from IMDSv2 user data (PUT /latest/api/token, then GET \
        /latest/user-data with the token; retried for up to two minutes while the network comes up), \
        or from --manifest FILE. With --require-egress FILE, stop here (exit 2) unless FILE, written by \
        `scanner-agent egress apply`, records egress rules for the manifest's collector.\n\
        2. Find each device of the manifest (/dev/sdf, its /dev/xvdf alias, or the udev symlink \
        amazon-ec2-utils makes to the NVMe device on Nitro) under --dev-root, and scan it read-only; \
        a device that is not there is reported as missing.\n\
        3. Write the result bundle (a tar: manifest.json, then vN/inventory.json, vN/sbom.cdx.json, \
        vN/baseline.json per scanned device), also into --out DIR if given.\n\
        4. PUT it to <collector>/v1/jobs/<job>/bundles/<scanner> signed with the job's HMAC key, \
        retrying connection errors, 5xx and 429 with backoff until the job's deadline.\n\
        5. Power off (systemctl poweroff, or --poweroff-command), even when a step failed, unless \
        --no-poweroff.\n\n\
        Exit status: 0 uploaded and every device complete, 1 uploaded but a device is partial, failed \
        or missing, 2 no manifest, or the bundle could not be written or uploaded.",
        after_help = "Examples:\n  scanner-agent run\n  scanner-agent run --manifest job.json --dev-root /tmp/fake-root --out results/ --no-poweroff"
    )]
    Run(RunArgs),
    /// Enforce the scanner's egress with nftables (root; the image's unit runs it before `run`).
    #[command(subcommand)]
    Egress(EgressCommand),
}

#[derive(Debug, Subcommand)]
enum EgressCommand {
    /// Allow outbound traffic only to the job's collector (and IMDS, Amazon Time Sync, DNS when
    /// the collector is named, DHCP, IPv6 neighbour discovery), drop and count the rest.
    #[command(
        long_about = "Allow outbound traffic only to the job's collector, drop and count the rest.\n\n\
        Reads the job manifest (IMDSv2 user data, or --manifest FILE), resolves the collector, and \
        loads an nftables table `inet agentless_egress` with `nft -f -`: its output chain accepts \
        loopback, replies, TCP to the collector's addresses and port, IMDS (169.254.169.254 and \
        fd00:ec2::254, TCP 80), the Amazon Time Sync Service (UDP 123), DHCP and IPv6 neighbour \
        discovery, DNS to the upstream resolvers only if the collector is a host name, and ends \
        with `counter name \"dropped\" drop`. Then it records what it applied in --state, which \
        `run --require-egress` checks. Needs CAP_NET_ADMIN.\n\n\
        Exit status: 0 applied, 2 not applied (nothing may be scanned).",
        after_help = "Examples:\n  scanner-agent egress apply\n  scanner-agent egress apply --manifest job.json --nft /usr/sbin/nft --state /run/egress.json"
    )]
    Apply(EgressApplyArgs),
    /// Log the count of dropped outbound packets (the image's unit runs it at the end).
    Report(EgressReportArgs),
}

#[derive(Debug, Args)]
struct EgressApplyArgs {
    /// Base URL of the instance metadata service.
    #[arg(long, value_name = "URL", default_value = agent::DEFAULT_IMDS_ENDPOINT)]
    imds_endpoint: String,
    /// Read the job manifest (JSON) from FILE instead of IMDS user data.
    #[arg(long = "manifest", value_name = "FILE")]
    manifest_file: Option<PathBuf>,
    /// The nft program.
    #[arg(long, value_name = "PATH", default_value = egress::DEFAULT_NFT)]
    nft: PathBuf,
    /// Record what was applied in FILE (for `run --require-egress FILE`).
    #[arg(long, value_name = "FILE", default_value = egress::DEFAULT_STATE_FILE)]
    state: PathBuf,
}

#[derive(Debug, Args)]
struct EgressReportArgs {
    /// The nft program.
    #[arg(long, value_name = "PATH", default_value = egress::DEFAULT_NFT)]
    nft: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Base URL of the instance metadata service.
    #[arg(long, value_name = "URL", default_value = agent::DEFAULT_IMDS_ENDPOINT)]
    imds_endpoint: String,
    /// Read the job manifest (JSON) from FILE instead of IMDS user data.
    #[arg(long = "manifest", value_name = "FILE")]
    manifest_file: Option<PathBuf>,
    /// Look the manifest's device names (/dev/sdf) up under DIR instead of /.
    #[arg(long, value_name = "DIR", default_value = "/")]
    dev_root: PathBuf,
    /// Also write the bundle into DIR as <job>-<scanner>.tar (created if missing).
    #[arg(long = "out", value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Do not power off at the end.
    #[arg(long, conflicts_with = "poweroff_command")]
    no_poweroff: bool,
    /// Power off with this command and its arguments instead of `systemctl poweroff` (takes the rest
    /// of the command line).
    #[arg(long, value_name = "CMD", num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    poweroff_command: Option<Vec<String>>,
    /// Scan only if FILE, written by `scanner-agent egress apply`, records egress rules for this
    /// job's collector; otherwise exit 2 without scanning or uploading. The scanner image's unit
    /// sets it; without it (tests, manual runs) no egress check is made.
    #[arg(long, value_name = "FILE")]
    require_egress: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// A human-readable summary and package table.
    Table,
    /// The inventory report (schema agentless.inventory/v1).
    Json,
    /// A CycloneDX 1.6 JSON SBOM of the root filesystem.
    Cyclonedx,
    /// The baseline (CIS-style) findings as JSON (implies --baseline).
    Baseline,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(false).args(["image", "device", "root"])))]
struct ScanArgs {
    /// A raw disk image file (read-only). Repeat for the disks of one instance: they are scanned
    /// together (LVM volume groups across them; the root's fstab mounts from any of them) and the
    /// report is the one of the disk that holds the OS root.
    #[arg(long, value_name = "PATH")]
    image: Vec<PathBuf>,
    /// A block device, e.g. /dev/nvme1n1 (read-only); repeatable like --image.
    #[arg(long, value_name = "PATH")]
    device: Vec<PathBuf>,
    /// An unpacked or mounted root tree; symlinks resolve inside it.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Also evaluate the baseline (CIS-style) configuration checks; the table then shows their
    /// summary and failures. Walks the whole root filesystem.
    #[arg(long)]
    baseline: bool,
    /// Leave out the application inventory (binaries, language packages, kernels): OS packages
    /// only, reading far less of the disk.
    #[arg(long)]
    no_apps: bool,
    /// Also write inventory.json, sbom.cdx.json (and baseline.json with --baseline) into DIR
    /// (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Scan(_) => "warn",
        Command::Run(_) | Command::Egress(_) => "info",
    };
    let level = cli.log_level.as_deref().unwrap_or(default_level);
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    match cli.command {
        Command::Scan(args) => match run_scan(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("scanner-agent: error: {e}");
                ExitCode::from(EXIT_FATAL)
            }
        },
        Command::Run(args) => ExitCode::from(run_agent(args)),
        Command::Egress(EgressCommand::Apply(args)) => ExitCode::from(egress_apply(args)),
        Command::Egress(EgressCommand::Report(args)) => ExitCode::from(egress_report(&args)),
    }
}

/// `egress apply`: fail closed, i.e. exit 2 (the unit then never starts `run`) on any error.
fn egress_apply(args: EgressApplyArgs) -> u8 {
    let config = RunConfig {
        imds_endpoint: args.imds_endpoint,
        manifest_file: args.manifest_file,
        poweroff: PowerOff::None,
        ..RunConfig::default()
    };
    let manifest = match agent::read_manifest(&config) {
        Ok(read) => read.manifest,
        Err(e) => {
            tracing::error!(error = %e, "no job manifest; egress rules not applied, nothing may be scanned");
            eprintln!("scanner-agent: error: {}", sanitize(&e.to_string()));
            return EXIT_FATAL;
        }
    };
    let enforce = egress::EnforceConfig { nft: args.nft, state_file: args.state };
    match egress::enforce(&manifest, &enforce) {
        Ok(plan) => {
            tracing::info!(
                table = egress::TABLE,
                collector = ?plan.collector,
                dns = ?plan.dns,
                state = %enforce.state_file.display(),
                "egress rules applied: outbound only to the collector, IMDS, Amazon Time Sync{}",
                if plan.dns.is_empty() { "" } else { " and DNS" }
            );
            EXIT_OK
        }
        Err(e) => {
            tracing::error!(error = %e, "egress rules not applied; nothing may be scanned");
            eprintln!("scanner-agent: error: {}", sanitize(&e.to_string()));
            EXIT_FATAL
        }
    }
}

/// `egress report`: the drop counter in the log.
fn egress_report(args: &EgressReportArgs) -> u8 {
    match egress::read_dropped(&args.nft) {
        Ok(d) => {
            tracing::info!(packets = d.packets, bytes = d.bytes, "egress: outbound packets dropped");
            println!("egress: {} outbound packets ({} bytes) dropped", d.packets, d.bytes);
            EXIT_OK
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the egress drop counter");
            eprintln!("scanner-agent: error: {}", sanitize(&e.to_string()));
            EXIT_FATAL
        }
    }
}

fn run_agent(args: RunArgs) -> u8 {
    let poweroff = if args.no_poweroff {
        PowerOff::None
    } else {
        args.poweroff_command.map_or_else(PowerOff::default, PowerOff::Command)
    };
    let config = RunConfig {
        imds_endpoint: args.imds_endpoint,
        manifest_file: args.manifest_file,
        dev_root: args.dev_root,
        out_dir: args.out_dir,
        poweroff,
        require_egress: args.require_egress,
        ..RunConfig::default()
    };
    let outcome = agent::run(&config);
    for e in &outcome.errors {
        eprintln!("scanner-agent: error: {}", sanitize(&e.to_string()));
    }
    outcome.exit_code
}

fn run_scan(args: &ScanArgs) -> Result<u8, String> {
    let opts =
        scan::ScanOptions { baseline: args.baseline || matches!(args.format, Format::Baseline), no_apps: args.no_apps };
    let (report, target) = if let Some(dir) = &args.root {
        (scan::scan_root(dir, opts).map_err(|e| e.to_string())?, dir.display().to_string())
    } else if !args.image.is_empty() || !args.device.is_empty() {
        let disks: Vec<&std::path::Path> = args.image.iter().chain(&args.device).map(PathBuf::as_path).collect();
        let reports = scan::scan_images(&disks, opts).map_err(|e| e.to_string())?;
        // The disk holding the OS root carries the instance's inventory; the others' problems are
        // still worth a warning.
        let pick = reports.iter().position(|r| r.os.is_some()).unwrap_or(0);
        let mut picked = None;
        for (i, r) in reports.into_iter().enumerate() {
            if i == pick {
                picked = Some(r);
            } else {
                for e in &r.errors {
                    eprintln!("scanner-agent: warning: {}: {}", r.source_name(), sanitize(e));
                }
            }
        }
        let report = picked.ok_or("no disk was scanned")?;
        let target = report.source_name();
        (report, target)
    } else {
        return Err("one of --image, --device or --root is required".into());
    };
    let ScanOutputs { inventory: inventory_json, sbom: bom_json, baseline: baseline_json } =
        ScanOutputs::render(&report, &target).map_err(|e| format!("cannot serialise the results: {e}"))?;
    if let Some(dir) = &args.out {
        let mut files = vec![("inventory.json", inventory_json.as_str()), ("sbom.cdx.json", bom_json.as_str())];
        if let Some(b) = &baseline_json {
            files.push(("baseline.json", b.as_str()));
        }
        write_out(dir, &files)?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match args.format {
        Format::Json => writeln!(out, "{inventory_json}"),
        Format::Cyclonedx => writeln!(out, "{bom_json}"),
        Format::Baseline => writeln!(out, "{}", baseline_json.as_deref().unwrap_or("null")),
        Format::Table => write!(out, "{}", table(&report)),
    };
    written.map_err(|e| format!("cannot write to stdout: {e}"))?;
    for e in &report.errors {
        eprintln!("scanner-agent: warning: {}", sanitize(e));
    }
    Ok(if report.is_complete() { EXIT_OK } else { EXIT_PARTIAL })
}

fn write_out(dir: &Path, files: &[(&str, &str)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for &(name, body) in files {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Replace control characters (a hostile package name could carry terminal escapes).
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect()
}

/// The application section of the table: one line per package, grouped by where it was found.
fn app_table(s: &mut String, apps: &scanner_ami::apps::Applications) {
    use std::fmt::Write as _;
    let w = apps.packages.iter().map(|p| p.name.len()).max().unwrap_or(4).clamp(4, 48);
    let _ = writeln!(s, "\n{:<9}  {:<w$}  {:<24}  LOCATION", "ECOSYSTEM", "NAME", "VERSION");
    let mut sorted: Vec<_> = apps.packages.iter().collect();
    sorted.sort_by(|a, b| (&a.location, a.role, &a.name).cmp(&(&b.location, b.role, &b.name)));
    for p in sorted {
        let eco =
            serde_json::to_value(p.ecosystem).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<9}  {:<w$}  {:<24}  {}",
            eco,
            sanitize(&p.name),
            sanitize(if p.version.is_empty() { "-" } else { &p.version }),
            sanitize(&p.location)
        );
    }
    let st = &apps.stats;
    let _ = writeln!(
        s,
        "\n{} application packages ({} entries walked, {} files read, {} bytes read{}{})",
        apps.packages.len(),
        st.entries,
        st.files_read,
        st.bytes_read,
        if st.os_owned_skipped > 0 {
            format!(", {} owned by OS packages left out", st.os_owned_skipped)
        } else {
            String::new()
        },
        if apps.error_count > 0 { format!(", {} files unreadable", apps.error_count) } else { String::new() }
    );
    for e in &apps.errors {
        let _ = writeln!(s, "  error: {}", sanitize(&e.to_string()));
    }
    for t in &st.truncated {
        let _ = writeln!(s, "  walk: {}", sanitize(t));
    }
}

fn table(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if let Some(t) = &r.partition_table {
        let _ = writeln!(
            s,
            "partition table: {:?}{}",
            t.scheme,
            t.header.map(|h| format!(" ({h:?} header)")).unwrap_or_default()
        );
        for w in &t.warnings {
            let _ = writeln!(s, "  warning: {}", sanitize(w));
        }
    }
    for p in &r.partitions {
        let fs = p.filesystem.as_ref().map_or("-", |f| f.content.name());
        let _ = writeln!(
            s,
            "  #{:<3} {:>12} bytes at {:<12} {:<8} {:<12}{}",
            p.index,
            p.size,
            p.start,
            fs,
            format!("{:?}", p.status).to_lowercase(),
            p.reason.as_deref().map(|r| format!(" {}", sanitize(r))).unwrap_or_default()
        );
    }
    for lv in &r.logical_volumes {
        let fs = lv.filesystem.as_ref().map_or("-", |f| f.content.name());
        let _ = writeln!(
            s,
            "  LV {}/{} {:>12} bytes {:<8} {:<12}{}",
            sanitize(&lv.vg),
            sanitize(&lv.name),
            lv.size,
            fs,
            format!("{:?}", lv.status).to_lowercase(),
            lv.reason.as_deref().map(|r| format!(" {}", sanitize(r))).unwrap_or_default()
        );
    }
    if let Some(v) = &r.root_volume {
        let _ = writeln!(s, "root: {}", sanitize(v));
    }
    for m in &r.mounts {
        let _ = writeln!(
            s,
            "  mount {:<16} {:<12} {}{}",
            sanitize(&m.target),
            format!("{:?}", m.status).to_lowercase(),
            sanitize(m.volume.as_deref().unwrap_or(&m.spec)),
            m.reason.as_deref().map(|r| format!(" ({})", sanitize(r))).unwrap_or_default()
        );
    }
    match &r.os {
        Some(os) => {
            let _ = writeln!(s, "os: {} ({})", sanitize(os.pretty_name.as_deref().unwrap_or(&os.id)), os.distro());
        }
        None => {
            let _ = writeln!(s, "os: not found");
        }
    }
    for db in &r.databases {
        let _ = writeln!(
            s,
            "database {}: {} packages{}{}",
            db.path,
            db.packages,
            if db.skipped.is_empty() { String::new() } else { format!(", {} records skipped", db.skipped.len()) },
            db.error.as_deref().map(|e| format!(", ERROR: {}", sanitize(e))).unwrap_or_default()
        );
    }
    let w = r.packages.iter().map(|p| p.name.len()).max().unwrap_or(4).clamp(4, 48);
    let _ = writeln!(s, "\n{:<w$}  {:<40}  {:<8}  DATABASE", "NAME", "VERSION", "ARCH");
    let mut sorted: Vec<_> = r.packages.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    for p in sorted {
        let _ = writeln!(
            s,
            "{:<w$}  {:<40}  {:<8}  {}",
            sanitize(&p.name),
            sanitize(&p.full_version()),
            sanitize(p.arch.as_deref().unwrap_or("-")),
            p.db_path
        );
    }
    let _ = writeln!(s, "\n{} packages", r.packages.len());
    if let Some(apps) = &r.applications {
        app_table(&mut s, apps);
    }
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            s,
            "\nbaseline: {} rules: {} pass, {} fail, {} notapplicable, {} error ({} files visited{})",
            b.findings.len(),
            b.summary.pass,
            b.summary.fail,
            b.summary.notapplicable,
            b.summary.error,
            b.stats.files_visited,
            if b.stats.walk_capped { ", walk capped" } else { "" }
        );
        for f in b.findings.iter().filter(|f| matches!(f.status, Status::Fail | Status::Error)) {
            let first = f.evidence.first();
            let detail = match (first.and_then(|e| e.file.as_deref()), first.and_then(|e| e.found.as_deref())) {
                (Some(file), Some(found)) => format!(" [{file}: {found}]"),
                (Some(file), None) => format!(" [{file}]"),
                _ => f.reason.as_deref().map(|r| format!(" [{r}]")).unwrap_or_default(),
            };
            let _ = writeln!(
                s,
                "  {:<5} {:<6} {:<40} {}{}",
                format!("{:?}", f.status).to_uppercase(),
                format!("{:?}", f.severity).to_lowercase(),
                f.id,
                sanitize(f.title),
                sanitize(&detail)
            );
        }
    }
    if let Some(b) = r.stats.bytes_read {
        let _ = writeln!(s, "read {b} bytes of the disk in {} ms", r.stats.duration_ms);
    }
    s
}
