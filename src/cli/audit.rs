//! `agentless audit`: find, and with `--delete` remove, the resources our scans leaked.
//! The backend flags (`--cloud`, `--fleet`, `--data-dir`, `--region`, `--profile`,
//! `--endpoint-url`) are the shared ones of `cli::common`; this file has the audit's own, and
//! [`run`] turns a backend, a ledger and them into a report on `out` and an exit status:
//! 0 nothing leaked remains, 1 leaks remain (reported or not deletable), 2 error.
//!
//! The guard handed to [`run`] must be built with `GuardRules { include_foreign:
//! args.include_foreign }` for `--include-foreign` to delete anything.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use jiff::{SignedDuration, Timestamp};

use crate::audit::{self, AuditError, AuditOptions, EXIT_ERROR, parse_duration};
use crate::cloud::{AccountId, Cloud, Guard, Region};
use crate::ledger::Ledger;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table grouped by job and Region.
    Table,
    /// One JSON document.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Never treat a resource younger than this as leaked (e.g. 30m, 2h, 1d).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_grace)]
    pub grace: SignedDuration,
    /// Delete the leaked resources (default: report only).
    #[arg(long)]
    pub delete: bool,
    /// With --delete, also delete resources named with our prefix that lack our agentless:job tag
    /// (made by another tool or person with the same names).
    #[arg(long)]
    pub include_foreign: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Refuse to run unless the credentials belong to this account (repeat for several allowed).
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: Vec<AccountId>,
}

fn parse_grace(s: &str) -> Result<SignedDuration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Run the audit and print its report on `out`.
///
/// `now` is the clock the jobs' `agentless:expires-at` tags were written with (the wall clock,
/// or the simulated account's timeline). `ledger_problem` says why `ledger` is `None` (see
/// [`audit::open_ledger`]). An empty `regions` audits every enabled Region.
#[allow(clippy::too_many_arguments)]
pub async fn run<C: Cloud>(
    guard: &Guard<C>,
    ledger: Option<&mut Ledger>,
    ledger_problem: Option<String>,
    regions: &[Region],
    args: &AuditArgs,
    now: Timestamp,
    job_is_alive: Option<audit::JobLiveness>,
    out: &mut dyn Write,
) -> ExitCode {
    let actual = &guard.policy().scope().account;
    if !args.account.is_empty() && !args.account.contains(actual) {
        let e = AuditError::WrongAccount { expected: args.account.clone(), actual: actual.clone() };
        return fail(&e, args.format, out);
    }
    let opts = AuditOptions {
        grace: args.grace,
        delete: args.delete,
        include_foreign: args.include_foreign,
        job_is_alive,
        ..AuditOptions::new(now)
    };
    let report = match audit::audit(guard, ledger, ledger_problem, regions, &opts).await {
        Ok(r) => r,
        Err(e) => return fail(&e, args.format, out),
    };
    let written = match args.format {
        Format::Table => audit::report::write_table(&report, out),
        Format::Json => audit::report::write_json(&report, out),
    };
    if let Err(e) = written {
        eprintln!("agentless audit: cannot write the report: {e}");
        return ExitCode::from(EXIT_ERROR);
    }
    ExitCode::from(report.exit_code())
}

fn fail(e: &AuditError, format: Format, out: &mut dyn Write) -> ExitCode {
    eprintln!("agentless audit: {e}");
    if format == Format::Json {
        let doc = serde_json::json!({ "error": e.to_string(), "exit_code": EXIT_ERROR });
        // The error already went to stderr; a closed stdout changes nothing about the status.
        let _ = writeln!(out, "{doc}");
    }
    ExitCode::from(EXIT_ERROR)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cloud::ops::CreateVpcInput;
    use crate::cloud::sim::{Fleet, SimCloud};
    use crate::cloud::tags::{self, Role};
    use crate::cloud::{GuardPolicy, GuardRules};

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        audit: AuditArgs,
    }

    fn parse(args: &[&str]) -> Result<AuditArgs, clap::Error> {
        Cmd::try_parse_from(std::iter::once("audit").chain(args.iter().copied())).map(|c| c.audit)
    }

    #[test]
    fn flags() {
        let a = parse(&[]).expect("defaults");
        assert_eq!(
            (a.grace, a.delete, a.include_foreign, a.format),
            (SignedDuration::from_hours(1), false, false, Format::Table)
        );
        let a = parse(&[
            "--grace",
            "30m",
            "--delete",
            "--include-foreign",
            "--format",
            "json",
            "--account",
            "111122223333",
        ])
        .expect("all");
        assert_eq!(
            (a.grace, a.delete, a.include_foreign, a.format),
            (SignedDuration::from_mins(30), true, true, Format::Json)
        );
        assert_eq!(a.account, vec!["111122223333".parse::<AccountId>().expect("account")]);
        let e = parse(&["--grace=-1h"]).expect_err("negative");
        assert!(e.to_string().contains("negative"), "{e}");
        assert!(parse(&["--account", "12"]).is_err());
    }

    fn sim() -> (SimCloud, Guard<SimCloud>, Region) {
        let region: Region = "us-east-1".parse().expect("region");
        let sim = SimCloud::in_memory(&Fleet::empty("111122223333".parse().expect("account"), vec![region.clone()]))
            .expect("sim");
        let policy = GuardPolicy::new(sim.policies().to_vec(), sim.scope(), GuardRules::default());
        (sim.clone(), Guard::new(sim, policy), region)
    }

    #[tokio::test(start_paused = true)]
    async fn run_deletes_and_exits_0_then_refuses_another_account() {
        let (sim, guard, region) = sim();
        let job = "expired-job".parse().expect("job");
        let now = Timestamp::from_millisecond(i64::try_from(sim.now_ms()).expect("ms")).expect("now");
        let t = tags::resource_tags(&job, Some(Role::VPC), now - SignedDuration::from_hours(3));
        guard.create_vpc(&region, &CreateVpcInput { cidr_block: "10.7.0.0/16".into(), tags: t }).await.expect("vpc");

        let args = parse(&["--delete"]).expect("args");
        let mut out = Vec::new();
        let code = run(&guard, None, Some("no ledger here".into()), &[], &args, now, None, &mut out).await;
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(code, ExitCode::from(0), "{text}");
        assert!(text.contains("ledger: no ledger here; classifying from tags alone"), "{text}");
        assert!(
            text.contains("job expired-job (not in the ledger) in us-east-1") && text.contains("deleted"),
            "{text}"
        );

        let args = parse(&["--format", "json", "--account", "999999999999"]).expect("args");
        let mut out = Vec::new();
        let code = run(&guard, None, None, &[], &args, now, None, &mut out).await;
        assert_eq!(code, ExitCode::from(2));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert!(v["error"].as_str().is_some_and(|e| e.contains("not 999999999999")), "{v}");
    }
}

/// `agentless audit` with its backend options.
#[derive(Debug, clap::Args)]
pub struct AuditCommand {
    #[command(flatten)]
    pub cloud: super::common::CloudArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
}

/// Open the backend and the ledger, and run the audit.
pub async fn command(a: AuditCommand) -> ExitCode {
    use super::common::{self, CloudKind};
    let data_dir = a.cloud.data_dir();
    let (mut ledger, problem) = audit::open_ledger(&data_dir);
    let rules = crate::cloud::GuardRules { include_foreign: a.audit.include_foreign };
    let dir = data_dir.clone();
    let alive: audit::JobLiveness =
        std::sync::Arc::new(move |j: &crate::ledger::JobRecord| crate::job::lock::is_held(&dir, j.id.as_str()));
    let mut stdout = std::io::stdout();
    match a.cloud.cloud {
        CloudKind::Sim => {
            let opened = match common::open_sim_with(&a.cloud, rules).await {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("agentless audit: {e}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            let now = Timestamp::from_millisecond(i64::try_from(opened.guard.backend().now_ms()).unwrap_or(i64::MAX))
                .unwrap_or_else(|_| Timestamp::now());
            run(&opened.guard, ledger.as_mut(), problem, &a.cloud.regions, &a.audit, now, Some(alive), &mut stdout)
                .await
        }
        CloudKind::Aws => {
            let opened = match common::open_aws_with(&a.cloud, rules).await {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("agentless audit: {e}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            run(
                &opened.guard,
                ledger.as_mut(),
                problem,
                &a.cloud.regions,
                &a.audit,
                Timestamp::now(),
                Some(alive),
                &mut stdout,
            )
            .await
        }
    }
}
