//! `scanner-agent`: the guest agent of the scanner image. See `scanner-agent --help`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use scanner_ami::baseline::Status;
use scanner_ami::report::Report;
use scanner_ami::{sbom, scan};

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
    about = "Read a disk read-only, without mounting it, and inventory its OS and OS packages",
    long_about = "Read a disk read-only, without mounting it, and inventory its OS and OS packages.\n\n\
        The disk (a raw image file or a block device) is parsed in userspace: GPT or MBR partition \
        tables, ext2/3/4 filesystems (journal replayed in memory, nothing written), os-release, and the \
        dpkg, rpm (BerkeleyDB, NDB, SQLite, distroless manifest) and apk databases. Every byte is treated \
        as hostile: damaged parts are reported and the scan goes on.\n\n\
        Exit status: 0 complete, 1 scanned with errors (the report lists them), 2 nothing scanned.",
    after_help = "Examples:\n  scanner-agent scan --image disk.img\n  scanner-agent scan --device /dev/nvme1n1 --format cyclonedx > sbom.cdx.json\n  scanner-agent scan --root /mnt/snapshot --format json --out results/"
)]
struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing directive). Logs go to stderr.
    #[arg(long, global = true, default_value = "warn", env = "SCANNER_AGENT_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan one disk or root tree and print its inventory.
    Scan(ScanArgs),
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
    /// A raw disk image file (read-only).
    #[arg(long, value_name = "PATH")]
    image: Option<PathBuf>,
    /// A block device, e.g. /dev/nvme1n1 (read-only).
    #[arg(long, value_name = "PATH")]
    device: Option<PathBuf>,
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
    /// Also write inventory.json, sbom.cdx.json (and baseline.json with --baseline) into DIR
    /// (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    match cli.command {
        Command::Scan(args) => match run_scan(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("scanner-agent: error: {e}");
                ExitCode::from(EXIT_FATAL)
            }
        },
    }
}

fn run_scan(args: &ScanArgs) -> Result<u8, String> {
    let opts = scan::ScanOptions { baseline: args.baseline || matches!(args.format, Format::Baseline) };
    let (report, target) = if let Some(dir) = &args.root {
        (scan::scan_root(dir, opts).map_err(|e| e.to_string())?, dir.display().to_string())
    } else if let Some(img) = args.image.as_ref().or(args.device.as_ref()) {
        (scan::scan_image(img, opts).map_err(|e| e.to_string())?, img.display().to_string())
    } else {
        return Err("one of --image, --device or --root is required".into());
    };
    let bom = sbom::build(report.os.as_ref(), &report.packages, &target);
    let inventory_json =
        serde_json::to_string_pretty(&report).map_err(|e| format!("cannot serialise the report: {e}"))?;
    let bom_json = serde_json::to_string_pretty(&bom).map_err(|e| format!("cannot serialise the SBOM: {e}"))?;
    let baseline_json = match &report.baseline {
        Some(b) => Some(serde_json::to_string_pretty(b).map_err(|e| format!("cannot serialise the baseline: {e}"))?),
        None => None,
    };
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
