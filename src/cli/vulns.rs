//! `agentless vulns`: the vulnerability results of the data directory, without any cloud call.
//! `rescan` re-matches stored inventories against the current advisory database (after `vulndb
//! update` or `import`) and rewrites each volume's `vulns.json` atomically; `show` answers what is
//! vulnerable where: one instance's findings, or the instances a CVE or a package affects, from
//! each instance's newest stored result.
//!
//! Exit status: `rescan` 0 every volume was rewritten, 1 some could not be, 2 usage; `show` 0
//! answered, 1 nothing stored to answer from, 2 usage.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use super::common::default_data_dir;
use crate::collector::ResultStore;
use crate::vuln::assess::Assessor;
use crate::vuln::fleet::{self, Query};

const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_SETUP: u8 = 2;

#[derive(Debug, Args)]
pub struct VulnsArgs {
    /// The data directory holding the results and vulndb.sqlite
    /// [default: $AGENTLESS_DATA_DIR, else $XDG_STATE_HOME/agentless, else ~/.local/state/agentless].
    #[arg(long, value_name = "DIR", env = "AGENTLESS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: VulnsCommand,
}

#[derive(Debug, Subcommand)]
pub enum VulnsCommand {
    /// Match stored inventories against the advisory database again and rewrite their vulns.json.
    ///
    /// Reads only the data directory: no cloud call. One matcher serves all the volumes, so
    /// packages shared across the fleet are evaluated once.
    Rescan(RescanArgs),
    /// What is vulnerable where: an instance's findings, or the instances affected by a CVE or a
    /// package, from each instance's newest stored result.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(false).args(["all", "job"])))]
pub struct RescanArgs {
    /// Every stored volume of every job.
    #[arg(long)]
    pub all: bool,
    /// The stored volumes of this job (repeat for several).
    #[arg(long, value_name = "JOB")]
    pub job: Vec<crate::cloud::JobId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("query").required(true).multiple(false).args(["instance", "cve", "package"])))]
pub struct ShowArgs {
    /// The findings of this instance.
    #[arg(value_name = "INSTANCE")]
    pub instance: Option<crate::cloud::InstanceId>,
    /// The instances and volumes affected by this CVE (or advisory id, or alias).
    #[arg(long, value_name = "ID")]
    pub cve: Option<String>,
    /// The instances and volumes with findings about this package (source or installed name).
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
    /// Include low-urgency findings (hidden by default).
    #[arg(long)]
    pub all_findings: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Run `agentless vulns`.
#[must_use]
pub fn run(args: &VulnsArgs) -> ExitCode {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let store = ResultStore::new(&data_dir);
    let mut out = std::io::stdout().lock();
    let done = match &args.command {
        VulnsCommand::Rescan(r) => rescan(&store, r, &mut out),
        VulnsCommand::Show(s) => show(&store, s, &mut out),
    };
    match done {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("agentless: cannot write the output: {e}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}

fn rescan(store: &ResultStore, args: &RescanArgs, out: &mut dyn Write) -> std::io::Result<u8> {
    let volumes = if args.all {
        store.all_volumes()
    } else {
        args.job.iter().flat_map(|j| store.job_volumes(j.as_str())).collect()
    };
    if volumes.is_empty() {
        eprintln!("agentless: no stored results to rescan under {}", store.root().display());
        return Ok(EXIT_FAILED);
    }
    let assessor = Assessor::open(store.data_dir());
    if let Some(why) = assessor.unusable() {
        eprintln!("agentless: {why}: every volume is reported not assessed");
    }
    let dirs: Vec<PathBuf> = volumes.iter().map(|(_, _, _, d)| d.clone()).collect();
    let started = std::time::Instant::now();
    let summary = assessor.assess_dirs(&dirs, jiff::Timestamp::now());
    for a in &summary.assessed {
        let rel = a.dir.strip_prefix(store.root()).unwrap_or(&a.dir);
        writeln!(out, "{:<60} {}", rel.display(), a.counts.cell())?;
    }
    let (yes, no) = summary.assessed_and_not();
    let sev = summary.by_severity();
    let n = |k: &str| sev.get(k).copied().unwrap_or(0);
    writeln!(
        out,
        "rescanned {} volume(s) in {:.1} s: {yes} assessed, {no} not assessed, {} without an inventory; findings: {} critical, {} high, {} medium, {} low, {} unknown",
        summary.assessed.len(),
        started.elapsed().as_secs_f64(),
        summary.skipped,
        n("critical"),
        n("high"),
        n("medium"),
        n("low"),
        n("unknown") + n("none"),
    )?;
    for e in &summary.errors {
        eprintln!("agentless: {e}");
    }
    Ok(if summary.errors.is_empty() { EXIT_OK } else { EXIT_FAILED })
}

fn show(store: &ResultStore, args: &ShowArgs, out: &mut dyn Write) -> std::io::Result<u8> {
    let q = match (&args.instance, &args.cve, &args.package) {
        (Some(i), _, _) => Query::Instance(i.to_string()),
        (_, Some(c), _) => Query::Id(c.clone()),
        (_, _, Some(p)) => Query::Package(p.clone()),
        (None, None, None) => return Ok(EXIT_SETUP),
    };
    let volumes = fleet::latest_volumes(store);
    if volumes.is_empty() {
        eprintln!("agentless: no stored results under {}", store.root().display());
        return Ok(EXIT_FAILED);
    }
    let answer = fleet::query(&volumes, &q, args.all_findings);
    if let Query::Instance(i) = &q
        && answer.affected.is_empty()
        && answer.not_assessed.is_empty()
    {
        eprintln!("agentless: no stored result of instance {i}");
        return Ok(EXIT_FAILED);
    }
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &answer).map_err(std::io::Error::other)?;
            writeln!(out)?;
        }
        Format::Table => {
            writeln!(
                out,
                "{:<20} {:<22} {:<16} {:<20} {:<22} {:<28} {:<9} {:<18} FIXED",
                "INSTANCE", "VOLUME", "OS", "ID", "CVE", "PACKAGE", "SEVERITY", "STATUS"
            )?;
            for v in &answer.affected {
                for f in &v.findings {
                    writeln!(
                        out,
                        "{:<20} {:<22} {:<16} {:<20} {:<22} {:<28} {:<9} {:<18} {}",
                        v.instance,
                        v.volume,
                        v.os.as_deref().unwrap_or("-"),
                        f.id,
                        f.cves.first().map_or("-", String::as_str),
                        format!("{} {}", f.package, f.version),
                        f.severity,
                        f.status,
                        f.fixed_version.as_deref().unwrap_or("-")
                    )?;
                }
            }
            for (i, v, why) in &answer.not_assessed {
                writeln!(out, "{i:<20} {v:<22} not assessed: {why}")?;
            }
            let instances: std::collections::BTreeSet<&str> =
                answer.affected.iter().filter(|v| !v.findings.is_empty()).map(|v| v.instance.as_str()).collect();
            let findings: usize = answer.affected.iter().map(|v| v.findings.len()).sum();
            writeln!(
                out,
                "{findings} finding(s) on {} instance(s); {} volume(s) examined, {} not assessed",
                instances.len(),
                answer.volumes_examined,
                answer.not_assessed.len()
            )?;
        }
    }
    Ok(EXIT_OK)
}
