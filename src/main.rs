//! `agentless`: the orchestrator's command line. See `agentless --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = agentless::cli::Cli::parse();
    agentless::cli::run(cli)
}
