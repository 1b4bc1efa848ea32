//! The plan proof: the full call plan of a scan and an audit passes with the custom policy, every
//! statement and every action of it is needed except the documented unused ones, and
//! `agentless policy check` exits accordingly. Also the IAM principal templates in `policies/`:
//! the CloudFormation template (cfn-lint, needs the venv) and the Terraform module (parsed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentless::cloud::dry_run::{DryRun, now};
use agentless::cloud::plan::{self, CheckReport, UNUSED_ACTIONS, Verdict};
use agentless::cloud::{Guard, GuardPolicy, GuardRules};
use agentless::policy::matcher::action_matches;
use agentless::policy::{ActionSpec, Policy, agentless_scan_policy};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn custom() -> Policy {
    agentless_scan_policy().expect("the bundled policy parses")
}

fn check(policy: Policy) -> CheckReport {
    plan::check(vec![policy], &plan::example_plan().expect("plan"), GuardRules::default())
}

#[test]
fn the_full_plan_passes_with_the_custom_policy() {
    let report = check(custom());
    let denied: Vec<String> = report.denied().map(|c| c.line()).collect();
    assert!(denied.is_empty(), "{}", denied.join("\n"));
    // The customer managed key path is up to the key policy, not allowed: the re-encrypting copy
    // and the scanner launch from snapshots under customer managed keys both need EC2 to call
    // kms:GenerateDataKeyWithoutPlaintext with our credentials, which the policy lacks and the
    // job's grant (constrained to the source volume) does not cover (policies/README.md, Gaps 2).
    let key_policy: Vec<(&str, &str)> = report.key_policy().map(|c| (c.entry.op, c.step.region.as_str())).collect();
    assert_eq!(key_policy, [("CopySnapshot", "us-east-1"), ("RunInstances", "us-east-1")]);
    for g in report.key_policy() {
        let left: BTreeSet<&str> =
            g.entry.requests.iter().filter(|e| e.key_policy_decides()).map(|e| e.request.action()).collect();
        assert_eq!(left, BTreeSet::from(["kms:GenerateDataKeyWithoutPlaintext"]), "{}", g.line());
        assert!(g.line().contains("the key policy decides"), "{}", g.line());
    }
    // No Decrypt with our credentials: EC2's infrastructure role decrypts at attach (fact 3).
    let launches = report.calls.iter().filter(|c| c.entry.op == "RunInstances");
    assert!(launches.flat_map(|c| &c.entry.requests).all(|e| e.request.action() != "kms:Decrypt"));
    assert_eq!(report.to_string(), "78 calls, 135 requests: 76 allowed, 2 up to the key policy, 0 denied");

    // The plan covers every operation of the seam but two (not used by a single-account scan).
    let used: BTreeSet<&str> = report.calls.iter().map(|c| c.entry.op).collect();
    for op in ["CreateSnapshots", "CreateSnapshot", "CopySnapshot", "CreateGrant", "RevokeGrant", "ListGrants"] {
        assert!(used.contains(op), "{op}");
    }
    assert!(!used.contains("StopInstances") && !used.contains("ModifySnapshotAttribute"));
    assert_eq!(used.len(), 41, "{used:?}");

    // The teardown is in dependency order.
    let teardown: Vec<&str> = report
        .calls
        .iter()
        .filter(|c| c.step.phase == plan::Phase::TearingDown)
        .map(|c| c.entry.op)
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Vec::new(), |mut v, op| {
            if v.last() != Some(&op) {
                v.push(op);
            }
            v
        });
    assert_eq!(
        teardown,
        [
            "TerminateInstances",
            "DescribeInstances",
            "DeleteVpcEndpoints",
            "DeleteSecurityGroup",
            "DeleteSubnet",
            "DetachInternetGateway",
            "DeleteInternetGateway",
            "DeleteVpc",
            "DeleteSnapshot",
            "RevokeGrant"
        ]
    );
}

/// Calls that are refused with `reduced` but were not with the full policy.
fn newly_refused(full: &CheckReport, reduced: &CheckReport) -> Vec<String> {
    full.calls.iter().zip(&reduced.calls).filter(|(f, r)| f.verdict != r.verdict).map(|(_, r)| r.line()).collect()
}

#[test]
fn every_statement_is_needed() {
    let full = check(custom());
    let policy = custom();
    for i in 0..policy.document().statements.len() {
        let reduced = policy.without_statement(i).expect("statement");
        let report = check(reduced);
        let denied: Vec<String> = report.denied().map(|c| c.line()).collect();
        assert!(!denied.is_empty(), "Statement[{i}] removed and still nothing denied");
        assert_eq!(newly_refused(&full, &report).len(), denied.len());
    }
    // What each statement alone carries, named.
    let first = |i| check(policy.without_statement(i).expect("statement")).denied().next().map(|c| c.line());
    assert!(
        first(0).is_some_and(|l| l.starts_with("DENY TerminateInstances ec2:TerminateInstances")),
        "{:?}",
        first(0)
    );
    assert!(first(1).is_some_and(|l| l.starts_with("DENY DeleteSnapshot ec2:DeleteSnapshot")), "{:?}", first(1));
    assert!(first(2).is_some_and(|l| l.starts_with("DENY GetUser iam:GetUser")), "{:?}", first(2));
}

#[test]
fn every_action_is_needed_except_the_documented_unused_ones() {
    let full = check(custom());
    let policy = custom();
    let mut unused = BTreeSet::new();
    for (i, s) in policy.document().statements.iter().enumerate() {
        let ActionSpec::Action(actions) = &s.action else { panic!("Statement[{i}] uses NotAction") };
        for (j, action) in actions.iter().enumerate() {
            let reduced = policy.without_action(i, j).or_else(|| policy.without_statement(i)).expect("reducible");
            let report = check(reduced);
            let refused = newly_refused(&full, &report);
            let denied: Vec<_> = report.denied().collect();
            if denied.is_empty() {
                assert!(refused.is_empty(), "{action}: {refused:?}");
                unused.insert(action.clone());
                continue;
            }
            // The failing call names the removed action (the request it no longer allows).
            let named = denied.iter().any(|c| {
                c.entry
                    .requests
                    .iter()
                    .filter(|e| !e.allowed())
                    .any(|e| action_matches(action, e.request.action()) && c.line().contains(e.request.action()))
            });
            assert!(named, "{action} removed: no denied call names it:\n{}", refused.join("\n"));
        }
    }
    let documented: BTreeSet<String> = UNUSED_ACTIONS.iter().map(|a| (*a).to_owned()).collect();
    assert_eq!(unused, documented, "the actions the plan does not need");
    assert_eq!(unused.len(), 10);

    // policies/README.md says so, each on a line marking it unused.
    let readme = std::fs::read_to_string(repo().join("policies/README.md")).expect("README");
    for a in UNUSED_ACTIONS {
        let short = a.split_once(':').map_or(*a, |(_, n)| n);
        assert!(
            readme.lines().any(|l| l.contains(short) && l.contains("not used")),
            "policies/README.md does not mark {a} as not used"
        );
    }
}

#[test]
fn the_guard_wrapper_and_policy_check_decide_alike() {
    // Replay the whole plan through Guard<DryRun>: the trace equals the check, and refused calls
    // never reach the backend.
    let plan = plan::example_plan().expect("plan");
    let report = check(custom());
    let guard = Guard::new(
        DryRun::new(plan.account.clone(), plan.caller_arn()),
        GuardPolicy::new(vec![custom()], plan.scope(), GuardRules::default()),
    );
    for step in &plan.steps {
        let out = now(step.op.run(&guard, &step.region)).expect("the dry run never waits");
        if let Err(e) = out {
            assert_eq!(e.kind(), agentless::cloud::ErrorKind::PolicyDenied, "{e}");
        }
    }
    let trace = guard.trace();
    assert_eq!(trace.len(), report.calls.len());
    for (t, c) in trace.iter().zip(&report.calls) {
        assert_eq!(t, &c.entry);
        assert_eq!(t.allowed, c.verdict != Verdict::Deny);
    }
    let sent = guard.backend().calls();
    assert_eq!(sent.len(), report.calls.iter().filter(|c| c.verdict != Verdict::Deny).count());
    // The calls the key policy decides are sent: AWS, not the guard, can tell.
    assert!(sent.iter().any(|(op, _)| *op == "CopySnapshot"), "the copy was not sent");
}

fn policy_check(args: &[&str]) -> (Option<i32>, String, String) {
    crate::util::run_agentless(&[&["policy", "check"], args].concat())
}

#[test]
fn policy_check_exit_codes() {
    // 0 with the bundled policy (default) and with the file.
    let (code, out, err) = policy_check(&[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ALLOW DeleteSnapshot ec2:DeleteSnapshot arn:aws:ec2:us-east-1::snapshot/snap-0a1b2c3d4e5f60101 (agentless-scan.json Statement[1])"), "{out}");
    assert!(out.contains("KEY-POLICY CopySnapshot kms:GenerateDataKeyWithoutPlaintext"), "{out}");
    assert!(
        out.contains(
            "KEY-POLICY RunInstances kms:GenerateDataKeyWithoutPlaintext arn:aws:kms:us-east-1:111122223333:key/"
        ),
        "the scanner launch from snapshots under customer managed keys is up to the key policy: {out}"
    );
    assert!(
        out.contains("allowed if it names this principal as a key user, denied if it only lets IAM policies decide")
    );
    assert!(out.trim_end().ends_with("78 calls, 135 requests: 76 allowed, 2 up to the key policy, 0 denied"), "{out}");
    assert!(err.contains("2 call(s) need KMS permissions the policy lacks"), "{err}");
    let file = repo().join("policies/agentless-scan.json");
    let (code, out, _) = policy_check(&["--policy", file.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{out}");
    // --strict fails on the known gaps.
    let (code, _, err) = policy_check(&["--strict"]);
    assert_eq!(code, Some(1), "{err}");
    // --verbose lists every request.
    let (_, out, _) = policy_check(&["--verbose"]);
    assert!(out.contains("    allow tag-on-create ec2:CreateTags arn:aws:ec2:us-east-1:111122223333:vpc/*"), "{out}");
    assert!(out.contains("    key   on-behalf     kms:GenerateDataKeyWithoutPlaintext"), "{out}");

    // 1 with a statement removed, naming the call.
    let dir = tempfile::tempdir().expect("tempdir");
    let reduced = custom().without_statement(1).expect("statement 1");
    let path = dir.path().join("no-snapshot-deletes.json");
    std::fs::write(&path, reduced.document().to_json().to_string()).expect("write");
    let (code, out, err) = policy_check(&["--policy", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("DENY DeleteSnapshot ec2:DeleteSnapshot arn:aws:ec2:us-east-1::snapshot/snap-0a1b2c3d4e5f60101"),
        "{out}"
    );
    assert!(err.contains("7 call(s) denied; the first: DeleteSnapshot in us-east-1 (scan: tearing down)"), "{err}");

    // 2 on a parse error.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"Version\": \"2012-10-17\", \"Statement\": [").expect("write");
    let (code, _, err) = policy_check(&["--policy", bad.to_str().expect("utf-8")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not valid JSON"), "{err}");
}

// ------------------------------------------------------------------ the IAM principal templates

fn venv_bin(name: &str) -> PathBuf {
    match std::env::var_os("AGENTLESS_PYTHON") {
        Some(py) => PathBuf::from(py).with_file_name(name),
        None => repo().join(".venv/bin").join(name),
    }
}

#[test]
#[ignore = "needs the venv (scripts/setup-test-env.sh)"]
fn cloudformation_template_passes_cfn_lint_and_carries_the_policies() {
    let template = repo().join("policies/cloudformation.yaml");
    let out = Command::new(venv_bin("cfn-lint")).arg(&template).output().expect("run cfn-lint from the venv");
    assert!(
        out.status.success(),
        "cfn-lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The policy document in the template is agentless-scan.json, and the managed policy ARNs are
    // those of managed-policies.json (read with cfn-lint's own YAML loader, which knows !Ref & co).
    let script = r#"
import json, sys
from cfnlint.decode import decode
tpl, errs = decode(sys.argv[1])
assert not errs, errs
res = tpl["Resources"]
print(json.dumps({
  "policy": res["AgentlessScanPolicy"]["Properties"]["PolicyDocument"],
  "user_arns": [x["Fn::If"][1]["Fn::Sub"] for x in res["User"]["Properties"]["ManagedPolicyArns"]],
  "role_arns": [x["Fn::If"][1]["Fn::Sub"] for x in res["Role"]["Properties"]["ManagedPolicyArns"]],
  "external_id": res["Role"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"],
  "reader": res["TrailReaderPolicy"]["Properties"]["PolicyDocument"],
  "reader_condition": res["TrailReaderPolicy"]["Condition"],
}))
"#;
    let out = Command::new(venv_bin("python")).arg("-c").arg(script).arg(&template).output().expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let bundled: serde_json::Value =
        serde_json::from_str(agentless::policy::AGENTLESS_SCAN_POLICY_JSON).expect("bundled policy");
    assert_eq!(v["policy"], bundled);
    let managed = managed_arns();
    for key in ["user_arns", "role_arns"] {
        let arns: Vec<String> = v[key]
            .as_array()
            .expect("list")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().replace("${AWS::Partition}", "aws"))
            .collect();
        assert_eq!(arns, managed, "{key}");
    }
    assert_eq!(v["external_id"], serde_json::json!({"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}));
    // The pipeline reader's policy is the bundled template with the two parameters in it.
    let mut template: serde_json::Value =
        serde_json::from_str(agentless::policy::TRAIL_READER_POLICY_TEMPLATE).expect("reader template");
    template["Statement"][0]["Resource"] = serde_json::json!({"Ref": "TrailQueueArn"});
    template["Statement"][1]["Resource"] =
        serde_json::json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${TrailBucket}/AWSLogs/*"});
    assert_eq!(v["reader"], template);
    assert_eq!(v["reader_condition"], "AttachTrailReader");
}

fn managed_arns() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("policies/managed-policies.json")).expect("read");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v.as_array().expect("list").iter().map(|m| m["arn"].as_str().unwrap_or_default().to_owned()).collect()
}

fn parse_tf(name: &str) -> hcl::Body {
    let text = std::fs::read_to_string(repo().join("policies/terraform").join(name)).expect("read .tf");
    hcl::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `(identifier, labels, body)` of every top-level block.
fn blocks(body: &hcl::Body) -> Vec<(String, Vec<String>, hcl::Body)> {
    body.blocks()
        .map(|b| {
            (b.identifier().to_owned(), b.labels().iter().map(|l| l.as_str().to_owned()).collect(), b.body().clone())
        })
        .collect()
}

fn attr(body: &hcl::Body, key: &str) -> Option<String> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr().to_string())
}

#[test]
fn terraform_module_creates_the_principal_with_the_bundled_policy() {
    let main = parse_tf("main.tf");
    let vars = parse_tf("variables.tf");
    let outputs = parse_tf("outputs.tf");
    let resources: Vec<(String, String, hcl::Body)> = blocks(&main)
        .into_iter()
        .filter(|(id, ..)| id == "resource")
        .map(|(_, labels, body)| (labels.join("."), labels.concat(), body))
        .collect();
    let names: Vec<&str> = resources.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "aws_iam_policy.agentless_scan",
            "aws_iam_user.this",
            "aws_iam_user_policy_attachment.agentless_scan",
            "aws_iam_user_policy_attachment.managed",
            "aws_iam_role.this",
            "aws_iam_role_policy_attachment.agentless_scan",
            "aws_iam_role_policy_attachment.managed",
            "aws_iam_policy.trail_reader",
            "aws_iam_user_policy_attachment.trail_reader",
            "aws_iam_role_policy_attachment.trail_reader",
        ]
    );
    let body = |name: &str| resources.iter().find(|(n, ..)| n == name).map(|(_, _, b)| b.clone()).expect("resource");
    // The pipeline reader's policy: the bundled template, its two placeholders filled in, only
    // when both values are given.
    let reader = attr(&body("aws_iam_policy.trail_reader"), "policy").expect("policy attribute");
    assert!(reader.contains("${path.module}/../agentless-trail-reader.json"), "{reader}");
    assert!(reader.contains("var.trail_queue_arn") && reader.contains("var.trail_bucket"), "{reader}");
    for placeholder in ["QueueArn", "TrailBucket"] {
        assert!(reader.contains(&format!("$${{{placeholder}}}")), "{placeholder}: {reader}");
        assert!(agentless::policy::TRAIL_READER_POLICY_TEMPLATE.contains(&format!("${{{placeholder}}}")));
    }
    let count = attr(&body("aws_iam_policy.trail_reader"), "count").expect("count");
    assert!(count.contains("local.trail_reader"), "{count}");

    // The policy is the bundled file, read by path relative to the module.
    let policy = attr(&body("aws_iam_policy.agentless_scan"), "policy").expect("policy attribute");
    assert!(policy.starts_with("file(") && policy.contains("${path.module}/../agentless-scan.json"), "{policy}");
    let referenced = repo().join("policies/terraform").join("../agentless-scan.json");
    assert_eq!(
        std::fs::canonicalize(referenced).expect("the referenced file exists"),
        std::fs::canonicalize(repo().join("policies/agentless-scan.json")).expect("bundled")
    );
    // Both principals get the custom policy and the managed ones (from managed-policies.json).
    for p in ["user", "role"] {
        let a = attr(&body(&format!("aws_iam_{p}_policy_attachment.agentless_scan")), "policy_arn").expect("arn");
        assert_eq!(a, "aws_iam_policy.agentless_scan.arn");
        let m = attr(&body(&format!("aws_iam_{p}_policy_attachment.managed")), "for_each").expect("for_each");
        assert!(m.contains("local.managed_policy_arns"), "{m}");
    }
    let locals = blocks(&main).into_iter().find(|(id, ..)| id == "locals").map(|(.., b)| b).expect("locals");
    let managed = attr(&locals, "managed_policies").expect("managed_policies");
    assert!(managed.contains("jsondecode(file(\"${path.module}/../managed-policies.json\"))"), "{managed}");
    assert_eq!(managed_arns().len(), 3);
    // The role requires the external id.
    let trust = attr(&body("aws_iam_role.this"), "assume_role_policy").expect("trust policy");
    assert!(trust.contains("sts:ExternalId") && trust.contains("var.external_id"), "{trust}");

    // Every var.* used is declared, and the outputs exist.
    let declared: BTreeSet<String> =
        blocks(&vars).into_iter().filter(|(id, ..)| id == "variable").map(|(_, l, _)| l.concat()).collect();
    let text = std::fs::read_to_string(repo().join("policies/terraform/main.tf")).expect("read");
    for used in text
        .split("var.")
        .skip(1)
        .map(|s| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
    {
        assert!(declared.contains(&used), "var.{used} is not declared");
    }
    let outs: Vec<String> =
        blocks(&outputs).into_iter().filter(|(id, ..)| id == "output").map(|(_, l, _)| l.concat()).collect();
    assert_eq!(outs, ["policy_arn", "user_arn", "role_arn", "managed_policy_arns"]);
}
