//! `agentless jobs list|show|resume`: the ledger's jobs. `resume` drives every unfinished job of
//! the backend's account (or the ones named) from its last recorded state to the end — after a
//! crash, a kill or an abandoned interrupt — with the same engine as `scan`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::common::{self, CloudArgs, CloudKind, Opened, SetupError};
use super::scan::{CliProgress, EXIT_ERROR, EXIT_OK, Engine, RunArgs, drive_all, report, setup_failed};
use crate::cloud::{Cloud, JobId};
use crate::job::Progress;
use crate::job::doc;

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List the jobs of the ledger, newest first.
    List(ListArgs),
    /// Show one job: state, targets, resources, last events.
    Show(ShowArgs),
    /// Finish unfinished jobs (after a crash): each goes on from its last state, then tears down.
    Resume(Box<ResumeArgs>),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Where the ledger lives (see `agentless scan --help`).
    #[arg(long, value_name = "DIR", env = "AGENTLESS_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub job: JobId,
    #[arg(long, value_name = "DIR", env = "AGENTLESS_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Only these jobs [default: every unfinished job of the account].
    #[arg(long = "job", value_name = "ID")]
    pub jobs: Vec<JobId>,
    #[command(flatten)]
    pub run: RunArgs,
}

fn data_dir(d: &Option<std::path::PathBuf>) -> std::path::PathBuf {
    CloudArgs {
        cloud: CloudKind::Sim,
        fleet: None,
        data_dir: d.clone(),
        regions: Vec::new(),
        profile: None,
        endpoint_url: None,
    }
    .data_dir()
}

/// Run `agentless jobs`.
pub async fn run(args: JobsArgs) -> ExitCode {
    match args.command {
        JobsCommand::List(a) => list(&a),
        JobsCommand::Show(a) => show(&a),
        JobsCommand::Resume(a) => resume(*a).await,
    }
}

fn list(a: &ListArgs) -> ExitCode {
    let ledger = match crate::ledger::Ledger::open(&data_dir(&a.data_dir)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("agentless: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let jobs = match ledger.jobs() {
        Ok(j) => j,
        Err(e) => {
            eprintln!("agentless: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    println!(
        "{:<18} {:<13} {:<12} {:<12} {:<25} {:>7}  ERROR",
        "JOB", "ACCOUNT", "REGION", "STATE", "CREATED", "TARGETS"
    );
    let mut jobs = jobs;
    jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at));
    for j in jobs {
        let targets = ledger.targets(&j.id).map(|t| t.len()).unwrap_or(0);
        println!(
            "{:<18} {:<13} {:<12} {:<12} {:<25} {:>7}  {}",
            j.id.as_str(),
            j.account.as_str(),
            j.region.as_str(),
            j.state.as_str(),
            j.created_at.to_string(),
            targets,
            j.error.as_deref().unwrap_or("")
        );
    }
    ExitCode::from(EXIT_OK)
}

fn show(a: &ShowArgs) -> ExitCode {
    let ledger = match crate::ledger::Ledger::open(&data_dir(&a.data_dir)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("agentless: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let job = match ledger.job(&a.job) {
        Ok(Some(j)) => j,
        Ok(None) => {
            eprintln!("agentless: no job {} in the ledger", a.job);
            return ExitCode::from(EXIT_ERROR);
        }
        Err(e) => {
            eprintln!("agentless: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    println!("job {}  account {}  region {}  state {}", job.id, job.account, job.region, job.state.as_str());
    if let Some(e) = &job.error {
        println!("error: {e}");
    }
    println!("targets:");
    for t in ledger.targets(&a.job).unwrap_or_default() {
        println!("  {:<20} {:<12} {}", t.instance.as_str(), t.status.as_str(), t.error.as_deref().unwrap_or(""));
    }
    println!("resources (created / deleted):");
    for r in ledger.resources(&a.job).unwrap_or_default() {
        let id = r.id.as_ref().map_or_else(|| "(intent)".to_owned(), ToString::to_string);
        println!("  {:<15} {:<12} {:<40} {}", r.kind.as_str(), r.region.as_str(), id, r.state.as_str());
    }
    if let Ok(Some(doc)) = doc::load(&ledger, &a.job) {
        for l in &doc.leaked {
            println!("NOT REMOVED: {l}");
        }
    }
    ExitCode::from(EXIT_OK)
}

async fn resume_on<C: Cloud + 'static>(
    engine: &Engine,
    opened: &Opened<C>,
    a: &ResumeArgs,
) -> Result<Vec<Result<crate::job::JobOutcome, crate::job::JobError>>, SetupError> {
    let unfinished = {
        let l = engine.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        l.unfinished_jobs().unwrap_or_default()
    };
    let progress = Arc::new(CliProgress::new());
    let mut jobs = Vec::new();
    let mut regions = Vec::new();
    for j in unfinished {
        if j.account != opened.account || (!a.jobs.is_empty() && !a.jobs.contains(&j.id)) {
            continue;
        }
        progress.set_region(&j.id, j.region.as_str());
        eprintln!("agentless: resuming job {} in {} from {}", j.id, j.region, j.state.as_str());
        if !regions.contains(&j.region) {
            regions.push(j.region.clone());
        }
        jobs.push(j.id);
    }
    // A job that chose its image before keeps it (its document); this is for those that had not.
    let image = super::scan::scanner_image(&a.run, &regions).map_err(SetupError::Message)?;
    let runner = Arc::new(engine.runner(opened, engine.settings(&a.run, image), progress as Arc<dyn Progress>));
    Ok(drive_all(runner, jobs).await)
}

async fn resume(a: ResumeArgs) -> ExitCode {
    let mut engine = match Engine::start(&a.cloud, &a.run).await {
        Ok(e) => e,
        Err(e) => return setup_failed(&e),
    };
    match a.cloud.cloud {
        CloudKind::Sim => {
            let opened = match common::open_sim(&a.cloud).await {
                Ok(o) => o,
                Err(e) => return setup_failed(&e),
            };
            let agent = match engine.attach_sim(&opened, &a.run) {
                Ok(x) => x,
                Err(e) => return setup_failed(&e),
            };
            let results = match resume_on(&engine, &opened, &a).await {
                Ok(r) => r,
                Err(e) => return setup_failed(&e),
            };
            let left = opened.guard.backend().our_leftovers();
            report(&engine, &a.run, results, &opened.guard, Some(left), Some(&agent))
        }
        CloudKind::Aws => {
            let opened = match common::open_aws(&a.cloud).await {
                Ok(o) => o,
                Err(e) => return setup_failed(&e),
            };
            let results = match resume_on(&engine, &opened, &a).await {
                Ok(r) => r,
                Err(e) => return setup_failed(&e),
            };
            report(&engine, &a.run, results, &opened.guard, None, None)
        }
    }
}
