//! `agentless policy`: IAM policy tools. `explain` evaluates one request against one or more
//! identity policies and prints the decision with the statement that decided it (exit 0 allow,
//! 1 deny, 2 usage or parse error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::policy::{Policy, Request, evaluate};

const EXIT_ALLOW: u8 = 0;
const EXIT_DENY: u8 = 1;
const EXIT_ERROR: u8 = 2;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide one request (action, resource, context) against identity policies, as IAM would.
    ///
    /// Prints the decision and the deciding statement; for a deny, why: no statement allows the
    /// action, the resource does not match, or which condition failed with which key and values.
    /// Exit status: 0 allow, 1 deny, 2 usage or policy error.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// An identity policy JSON file; repeat for several policies attached to the same principal.
    #[arg(long = "policy", value_name = "FILE", required = true)]
    pub policies: Vec<PathBuf>,
    /// The action, e.g. ec2:DeleteSnapshot.
    #[arg(long, value_name = "SERVICE:ACTION")]
    pub action: String,
    /// The resource ARN, or * for actions without resource-level permissions.
    #[arg(long, value_name = "ARN")]
    pub resource: String,
    /// A request context value, e.g. ec2:ResourceTag/Name=SAS_Agentless-job-1. Repeat a key to give
    /// it several values (aws:TagKeys=Name --context aws:TagKeys=agentless:job). Keys are
    /// case-insensitive.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_context)]
    pub context: Vec<(String, String)>,
}

fn parse_context(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE with a non-empty KEY, found \"{}\"", s.escape_debug())),
    }
}

/// Run a `policy` subcommand.
pub fn run(args: &PolicyArgs) -> ExitCode {
    match &args.command {
        PolicyCommand::Explain(a) => explain(a),
    }
}

fn explain(args: &ExplainArgs) -> ExitCode {
    let mut policies = Vec::with_capacity(args.policies.len());
    for path in &args.policies {
        match Policy::load(path) {
            Ok(p) => {
                if p.exceeds_aws_size_quota() {
                    eprintln!(
                        "agentless: warning: {} has {} characters besides white space; AWS refuses managed policies over {}",
                        path.display(),
                        p.source_chars().unwrap_or_default(),
                        crate::policy::AWS_MANAGED_POLICY_MAX_CHARS
                    );
                }
                policies.push(p);
            }
            Err(e) => {
                eprintln!("agentless: error: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
    let mut request = match Request::new(args.action.as_str(), args.resource.as_str()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agentless: error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    for (k, v) in &args.context {
        request.context_mut().insert(k.as_str(), v.as_str());
    }
    let decision = evaluate(&policies, &request);
    let verdict = if decision.is_allowed() { "ALLOW" } else { "DENY" };
    println!("{verdict} {request}");
    println!("  {decision:#}");
    if let Some(reason) = decision.deny_reason() {
        println!("  reason: {}", reason.as_str());
    }
    ExitCode::from(if decision.is_allowed() { EXIT_ALLOW } else { EXIT_DENY })
}
