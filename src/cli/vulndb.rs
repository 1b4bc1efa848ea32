//! `agentless vulndb`: the offline advisory database of the data directory (`vulndb.sqlite`).
//! `import` reads OSV archives, OSV JSON directories and Alpine secdb YAML into a new database
//! and swaps it in only when everything imported; `update` downloads osv.dev's archives and
//! imports them the same way; `status` shows the sources, their counts per ecosystem and their
//! age. Exit status: 0 ok; 1 the import failed (the previous database is
//! still in use) or, for `status`, the database is missing, empty or stale; 2 usage or setup error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use jiff::Timestamp;

use super::common::default_data_dir;
use crate::vuln::db::import::{self, Input};
use crate::vuln::db::update::{self, Download, Progress};
use crate::vuln::db::{self, AdvisoryDb, DbError, SourceInfo};

const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_SETUP: u8 = 2;

/// Default age, in days, past which a source is stale. Five days is grype's default
/// `max-allowed-built-age` (120 h): distributions publish security fixes daily, so data older
/// than a few days misses fixes an administrator can already install, and a weekly cron
/// that fails once is noticed before the data is two weeks old.
pub const DEFAULT_STALE_DAYS: u32 = 5;

#[derive(Debug, Args)]
pub struct VulndbArgs {
    /// The data directory holding vulndb.sqlite
    /// [default: $AGENTLESS_DATA_DIR, else $XDG_STATE_HOME/agentless, else ~/.local/state/agentless].
    #[arg(long, value_name = "DIR", env = "AGENTLESS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: VulndbCommand,
}

#[derive(Debug, Subcommand)]
pub enum VulndbCommand {
    /// Import advisories from files or directories into the database.
    ///
    /// Each PATH is one source: an OSV all.zip archive (as osv.dev publishes per ecosystem at
    /// https://osv-vulnerabilities.storage.googleapis.com/<ecosystem>/all.zip), one OSV .json
    /// record, an Alpine secdb .yaml file, or a directory of them (walked recursively; other
    /// files are skipped and listed). A source is named after its canonical path (or --name):
    /// importing the same path again replaces it; other sources already in the database are
    /// kept.
    ///
    /// The import writes a new database file and renames it over the old one only when every
    /// source imported. It refuses, naming the file or archive entry: JSON that is not a valid
    /// OSV record, a range event with two keys (introduced and fixed), an unknown ecosystem, a
    /// record over 16 MiB or with over 1 MiB of summary and details, an archive entry whose name
    /// could escape a directory (../, absolute), an entry that decompresses past 16 MiB or more
    /// than 100:1, an archive of more than 500,000 entries or 8 GiB decompressed. Withdrawn
    /// records are counted and left out; an id seen twice in a source is stored once (newest
    /// `modified`).
    ///
    /// Exit status: 0 imported, 1 the import failed and the previous database is still in use,
    /// 2 usage error.
    Import(ImportArgs),
    /// Show the sources of the database, their records per ecosystem, and their age.
    ///
    /// For each source: kind, origin, SHA-256 of what was imported, when, records stored,
    /// withdrawn and duplicate records left out, records per ecosystem, and the newest
    /// `modified` of its records. A source is stale when its newest record is older than
    /// --stale-days (default 5, grype's default maximum database age: distributions publish
    /// fixes daily). The age is taken from the data, not from the import time, so importing an
    /// old snapshot today does not make it fresh; an archived feed (Alpine secdb v3.3-v3.11) is
    /// always stale.
    ///
    /// Exit status: 0 the database exists and no source is stale, 1 missing, empty or stale,
    /// 2 unreadable.
    Status(StatusArgs),
    /// Download osv.dev's archives of the configured ecosystems and import them.
    ///
    /// Each ecosystem's all.zip is fetched over HTTPS from --base-url into
    /// <data-dir>/vulndb-downloads/<ecosystem>/, with a progress bar on a terminal. An interrupted
    /// download resumes on the next run (HTTP Range, with If-Range so a changed archive starts
    /// over). OSV publishes no checksums: the size is checked against what the server announced,
    /// every entry's CRC-32 as it is imported, and the SHA-256 of each archive is recorded in its
    /// source (`status` shows it). The archives are then imported together as the sources
    /// osv.dev:<ecosystem>, atomically, like `import`.
    ///
    /// Exit status: 0 updated, 1 a download or the import failed (the previous database is still
    /// in use; finished downloads are kept), 2 usage error.
    Update(UpdateArgs),
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// An OSV ecosystem to download (repeat, or comma-separate)
    /// [default: AlmaLinux, Alpine, Debian, Rocky Linux, Ubuntu].
    #[arg(long = "ecosystem", value_name = "ECOSYSTEM", env = "AGENTLESS_VULNDB_ECOSYSTEMS", value_delimiter = ',')]
    pub ecosystems: Vec<String>,
    /// Where the archives are: <URL>/<ecosystem>/all.zip.
    #[arg(long, value_name = "URL", env = "AGENTLESS_VULNDB_BASE_URL", default_value = update::DEFAULT_BASE_URL)]
    pub base_url: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or directories to import (all.zip, .json, .yaml, or directories of them).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Name of the source (only with one PATH) [default: its canonical path].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// Output format of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table per source.
    Table,
    /// One JSON document.
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Days after which a source's newest record makes it stale.
    #[arg(long, value_name = "DAYS", env = "AGENTLESS_VULNDB_STALE_DAYS", default_value_t = DEFAULT_STALE_DAYS)]
    pub stale_days: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Run `agentless vulndb`.
#[must_use]
pub fn run(args: &VulndbArgs) -> ExitCode {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let mut out = std::io::stdout().lock();
    let code = match &args.command {
        VulndbCommand::Import(a) => import_command(&data_dir, a, &mut out),
        VulndbCommand::Status(a) => status_command(&data_dir, a, Timestamp::now(), &mut out),
        VulndbCommand::Update(a) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(update_command(&data_dir, a, &mut out)),
            Err(e) => {
                eprintln!("agentless vulndb update: cannot start the async runtime: {e}");
                EXIT_SETUP
            }
        },
    };
    ExitCode::from(code)
}

fn import_command(data_dir: &std::path::Path, args: &ImportArgs, out: &mut dyn Write) -> u8 {
    if args.name.is_some() && args.paths.len() != 1 {
        eprintln!("agentless vulndb import: --name names one source: give exactly one PATH");
        return EXIT_SETUP;
    }
    let inputs: Vec<Input> =
        args.paths.iter().map(|p| Input { path: p.clone(), name: args.name.clone(), origin: None }).collect();
    let path = db::path_in(data_dir);
    let started = std::time::Instant::now();
    match import::import(&path, &inputs, Timestamp::now()) {
        Ok(report) => {
            let _ = print_import(&report, &path, started.elapsed(), out);
            EXIT_OK
        }
        Err(e) => {
            eprintln!("agentless vulndb import: {e}");
            if path.exists() {
                eprintln!("agentless vulndb import: nothing imported; {} is unchanged", path.display());
            } else {
                eprintln!("agentless vulndb import: nothing imported; there is still no database");
            }
            EXIT_FAILED
        }
    }
}

async fn update_command(data_dir: &std::path::Path, args: &UpdateArgs, out: &mut dyn Write) -> u8 {
    let ecosystems: Vec<String> = if args.ecosystems.is_empty() {
        update::DEFAULT_ECOSYSTEMS.iter().map(|e| (*e).to_string()).collect()
    } else {
        args.ecosystems.iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect()
    };
    let path = db::path_in(data_dir);
    let mut progress = Bars::new();
    let started = std::time::Instant::now();
    match update::update(&path, data_dir, &args.base_url, &ecosystems, &mut progress).await {
        Ok((downloads, report)) => {
            for d in &downloads {
                let resumed =
                    if d.resumed_from > 0 { format!(", resumed at {}", d.resumed_from) } else { String::new() };
                let _ = writeln!(out, "downloaded {} ({} bytes{resumed}) sha256 {}", d.url, d.bytes, d.sha256);
            }
            let _ = print_import(&report, &path, started.elapsed(), out);
            EXIT_OK
        }
        Err(e @ update::UpdateError::UnknownEcosystem(_)) => {
            eprintln!("agentless vulndb update: {e}");
            EXIT_SETUP
        }
        Err(e) => {
            eprintln!("agentless vulndb update: {e}");
            eprintln!("agentless vulndb update: nothing imported; {} is unchanged", path.display());
            EXIT_FAILED
        }
    }
}

/// A progress bar per download on a terminal, a line per finished download otherwise.
struct Bars {
    terminal: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Bars {
    fn new() -> Self {
        use std::io::IsTerminal;
        Self { terminal: std::io::stderr().is_terminal(), bar: None }
    }
}

impl Progress for Bars {
    fn start(&mut self, ecosystem: &str, total: Option<u64>, resumed: u64) {
        if !self.terminal {
            return;
        }
        let bar = indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(ecosystem.to_string());
        bar.set_position(resumed);
        self.bar = Some(bar);
    }

    fn advance(&mut self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn finish(&mut self, download: &Download) {
        match self.bar.take() {
            Some(bar) => bar.finish(),
            None => eprintln!("downloaded {} ({} bytes)", download.url, download.bytes),
        }
    }
}

fn print_import(
    report: &import::ImportReport,
    path: &std::path::Path,
    elapsed: std::time::Duration,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for s in &report.sources {
        writeln!(out, "{} ({}): {} records from {} files", s.name, s.kind, s.records, s.files)?;
        if s.withdrawn > 0 || s.duplicates > 0 {
            writeln!(out, "  left out: {} withdrawn, {} duplicate ids", s.withdrawn, s.duplicates)?;
        }
        if s.not_affected > 0 {
            writeln!(out, "  {} secdb identifiers fixed in version 0 (never affected): not imported", s.not_affected)?;
        }
        if !s.unrecognised.is_empty() {
            writeln!(out, "  {} secdb entries without an identifier, not imported:", s.unrecognised.len())?;
            for u in s.unrecognised.iter().take(5) {
                writeln!(out, "    {u}")?;
            }
        }
        if !s.skipped.is_empty() {
            let shown: Vec<&str> = s.skipped.iter().take(5).map(String::as_str).collect();
            let more = s.skipped.len().saturating_sub(shown.len());
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            writeln!(out, "  skipped {} other files: {}{more}", s.skipped.len(), shown.join(", "))?;
        }
        writeln!(out, "  sha256 {}", s.sha256)?;
    }
    if !report.kept.is_empty() {
        writeln!(out, "kept {} other source(s): {}", report.kept.len(), report.kept.join(", "))?;
    }
    if report.dropped_old {
        writeln!(out, "the previous database was unreadable or of another schema version: its sources were not kept")?;
    }
    writeln!(out, "{} ({} bytes) installed in {:.1} s", path.display(), report.db_bytes, elapsed.as_secs_f64())
}

fn status_command(data_dir: &std::path::Path, args: &StatusArgs, now: Timestamp, out: &mut dyn Write) -> u8 {
    let path = db::path_in(data_dir);
    let db = match AdvisoryDb::open(&path) {
        Ok(db) => db,
        Err(e @ DbError::Missing { .. }) => {
            eprintln!("agentless vulndb status: {e}");
            return EXIT_FAILED;
        }
        Err(e) => {
            eprintln!("agentless vulndb status: {e}");
            return EXIT_SETUP;
        }
    };
    let sources = match db.sources() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("agentless vulndb status: {e}");
            return EXIT_SETUP;
        }
    };
    let statuses: Vec<Freshness> = sources.iter().map(|s| freshness(s, now, args.stale_days)).collect();
    let written = match args.format {
        Format::Json => {
            let doc = serde_json::json!({
                "database": path.display().to_string(),
                "stale_days": args.stale_days,
                "sources": sources.iter().zip(&statuses).map(|(s, f)| serde_json::json!({
                    "source": s,
                    "age_days": f.age_days,
                    "stale": f.stale,
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
        Format::Table => print_status(&path, &sources, &statuses, args.stale_days, out),
    };
    if let Err(e) = written {
        eprintln!("agentless vulndb status: {e}");
        return EXIT_SETUP;
    }
    if sources.is_empty() || statuses.iter().any(|f| f.stale) { EXIT_FAILED } else { EXIT_OK }
}

/// How old a source's data is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Freshness {
    /// Days since the newest `modified` of its records (`None` without records).
    age_days: Option<f64>,
    stale: bool,
}

fn freshness(source: &SourceInfo, now: Timestamp, stale_days: u32) -> Freshness {
    let newest = source.newest_modified.as_deref().and_then(|m| m.parse::<Timestamp>().ok());
    match newest {
        Some(t) => {
            let age_days = now.duration_since(t).as_secs_f64() / 86_400.0;
            Freshness { age_days: Some(age_days), stale: age_days > f64::from(stale_days) }
        }
        None => Freshness { age_days: None, stale: true },
    }
}

fn print_status(
    path: &std::path::Path,
    sources: &[SourceInfo],
    statuses: &[Freshness],
    stale_days: u32,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "{}: {} source(s)", path.display(), sources.len())?;
    for (s, f) in sources.iter().zip(statuses) {
        writeln!(out)?;
        writeln!(out, "{} ({})", s.name, s.kind)?;
        writeln!(out, "  origin      {}", s.origin)?;
        writeln!(out, "  sha256      {}", s.sha256)?;
        writeln!(out, "  imported    {}", s.imported_at)?;
        writeln!(
            out,
            "  records     {} ({} withdrawn and {} duplicates left out)",
            s.records, s.withdrawn, s.duplicates
        )?;
        let age = match f.age_days {
            Some(days) => format!("{days:.1} days old"),
            None => "no records".into(),
        };
        let verdict = if f.stale { format!("STALE (older than {stale_days} days)") } else { "fresh".into() };
        writeln!(out, "  newest      {} ({age}): {verdict}", s.newest_modified.as_deref().unwrap_or("-"))?;
        for (ecosystem, count) in &s.ecosystems {
            writeln!(out, "  {ecosystem:<24} {count:>8} records")?;
        }
    }
    Ok(())
}
