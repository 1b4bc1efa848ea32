//! The `agentless` command line: global options and one module per subcommand.

mod policy;
mod scan_image;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for a command that is not implemented yet in this build.
const EXIT_NOT_IMPLEMENTED: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "agentless",
    version,
    about = "Scan EC2 instances for installed software and configuration weaknesses without installing anything on them",
    long_about = "Scan EC2 instances for installed software and configuration weaknesses without installing anything on them.\n\n\
        agentless snapshots each target's volumes, attaches them to short-lived scanner instances in an \
        ephemeral VPC, collects each scanner's inventory, SBOM and baseline findings, and tears everything \
        down using only the tag-conditioned permissions of its custom IAM policy.\n\n\
        In this build the cloud orchestration is not implemented yet; `scan-image` runs the guest agent's \
        scan locally on a disk image."
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
    /// Scan EC2 instances (not implemented yet in this build).
    Scan,
    /// Run the scheduled-scan daemon (not implemented yet in this build).
    Serve,
    /// Find and remove leaked scan resources (not implemented yet in this build).
    Audit,
    /// IAM policy tools: `explain` decides one request, `check` the full call plan of a scan and an audit.
    Policy(policy::PolicyArgs),
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
        Command::Scan | Command::Serve | Command::Audit => {
            eprintln!("agentless: this command is not implemented yet in this build; see README.md for what exists");
            ExitCode::from(EXIT_NOT_IMPLEMENTED)
        }
    }
}
