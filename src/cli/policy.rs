//! `agentless policy`: IAM policy tools. `explain` evaluates one request against one or more
//! identity policies and prints the decision with the statement that decided it (exit 0 allow,
//! 1 deny, 2 usage or parse error). `check` evaluates the full call plan of a scan job and of the
//! leak auditor through the policy guard's logic (exit 0 all allowed, 1 a call denied, 2 usage or
//! parse error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cloud::GuardRules;
use crate::cloud::plan::{self, Verdict};
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
    /// Evaluate every call of a scan job and of the leak auditor against identity policies.
    ///
    /// The built-in call plan (three targets, an unencrypted volume, volumes under customer
    /// managed KMS keys, a cross-Region copy, the ephemeral network, two scanners, teardown, and an
    /// audit deleting an earlier job's leaks) is evaluated through the policy guard's logic: every
    /// IAM request of every call, and the guard's own rules. One line per call:
    /// ALLOW|KEY-POLICY|DENY op action resource (statement or reason). KEY-POLICY marks a call
    /// whose KMS requests made by EC2 with our credentials the IAM policy does not allow: the
    /// customer managed key's own policy decides (policies/README.md, Gaps 2).
    /// Exit status: 0 no call denied (KEY-POLICY allowed unless --strict), 1 a call denied,
    /// 2 usage or policy error.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// An identity policy JSON file; repeat for several. Default: the bundled custom policy
    /// (policies/agentless-scan.json).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Print every request of every call under its line.
    #[arg(long, short)]
    pub verbose: bool,
    /// Exit 1 on KEY-POLICY calls too.
    #[arg(long)]
    pub strict: bool,
    /// Relax the guard's rule that a resource to change or delete carries our agentless:job tag.
    #[arg(long)]
    pub include_foreign: bool,
    /// Also check the CloudTrail pipeline reader's calls (`sqs:GetQueueUrl`, `sqs:ReceiveMessage`
    /// on this queue; `s3:GetObject` on the trail bucket's log files). A denied one is shown with
    /// the exact statement to add. Needs --trail-bucket.
    #[arg(long, value_name = "QUEUE-ARN", requires = "trail_bucket")]
    pub trail_queue: Option<String>,
    /// The trail's S3 bucket (with --trail-queue).
    #[arg(long, value_name = "BUCKET", requires = "trail_queue")]
    pub trail_bucket: Option<String>,
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
        PolicyCommand::Check(a) => check(a),
    }
}

/// Load policy files (warning about sizes AWS would refuse); the error is printed.
fn load_policies(paths: &[PathBuf]) -> Result<Vec<Policy>, ExitCode> {
    let mut policies = Vec::with_capacity(paths.len());
    for path in paths {
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
                return Err(ExitCode::from(EXIT_ERROR));
            }
        }
    }
    Ok(policies)
}

fn check(args: &CheckArgs) -> ExitCode {
    let policies = if args.policies.is_empty() {
        match crate::policy::agentless_scan_policy() {
            Ok(p) => vec![p],
            Err(e) => {
                eprintln!("agentless: error: the bundled policy: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    } else {
        match load_policies(&args.policies) {
            Ok(p) => p,
            Err(code) => return code,
        }
    };
    let mut plan = match plan::example_plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("agentless: error: the built-in call plan: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let trail = args.trail_queue.as_deref().zip(args.trail_bucket.as_deref());
    if let Some((queue, bucket)) = trail {
        match plan::pipeline_steps(&plan, queue, bucket) {
            Some(steps) => plan.steps.extend(steps),
            None => {
                eprintln!(
                    "agentless: error: --trail-queue {queue:?} is not a queue ARN (arn:aws:sqs:<region>:<account>:<name>)"
                );
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
    let report = plan::check(policies, &plan, GuardRules { include_foreign: args.include_foreign });
    print!("{}", report.render(args.verbose));
    let denied: Vec<_> = report.denied().collect();
    let key_policy = report.key_policy().count();
    if let Some((queue, bucket)) = trail {
        let mut shown = std::collections::BTreeSet::new();
        for d in &denied {
            if let Some(statement) = plan::pipeline_statement(&d.step.op, queue, bucket)
                && shown.insert(statement.clone())
            {
                eprintln!(
                    "agentless: the pipeline reader's {} needs this statement (policies/agentless-trail-reader.json; \
                     ReadOnlyAccess also grants s3:GetObject): {statement}",
                    d.entry.op
                );
            }
        }
    }
    if let Some(first) = denied.first() {
        eprintln!(
            "agentless: {} call(s) denied; the first: {} in {} ({}): {}",
            denied.len(),
            first.entry.op,
            first.step.region,
            first.step.phase.as_str(),
            first.line()
        );
        return ExitCode::from(EXIT_DENY);
    }
    if key_policy > 0 {
        eprintln!(
            "agentless: {key_policy} call(s) need KMS permissions the policy lacks: allowed only if the customer \
             managed key's policy names this principal as a key user (policies/README.md \"Gaps\" 2){}",
            if args.strict { "; failing because of --strict" } else { "" }
        );
        if args.strict {
            return ExitCode::from(EXIT_DENY);
        }
    }
    debug_assert!(report.calls.iter().all(|c| c.verdict != Verdict::Deny));
    ExitCode::from(EXIT_ALLOW)
}

fn explain(args: &ExplainArgs) -> ExitCode {
    let policies = match load_policies(&args.policies) {
        Ok(p) => p,
        Err(code) => return code,
    };
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
