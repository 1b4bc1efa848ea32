//! The IAM policy evaluator: the golden cases of `tests/data/policy/golden.json` (decisions and
//! refused documents), oversized and hostile input, the files in `policies/`, and
//! `agentless policy explain` exit codes.

use std::path::{Path, PathBuf};

use agentless::policy::{Context, MAX_POLICY_BYTES, Policy, PolicyError, Request, evaluate};
use serde_json::Value;

use crate::util::run_agentless;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy")
}

fn custom_policy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/agentless-scan.json")
}

fn golden() -> Value {
    let text = std::fs::read_to_string(data_dir().join("golden.json")).expect("read golden.json");
    serde_json::from_str(&text).expect("golden.json is JSON")
}

/// A case's policies: a string is a file under tests/data/policy/ (named by its file name), an
/// object is an inline document named `inline[i]`.
fn case_policies(list: &Value) -> Result<Vec<Policy>, String> {
    let mut out = Vec::new();
    for (i, p) in list.as_array().ok_or("policies is not an array")?.iter().enumerate() {
        let policy = match p {
            Value::String(file) => {
                let path = data_dir().join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                Policy::parse(name, &text)
            }
            doc => Policy::parse(format!("inline[{i}]"), &doc.to_string()),
        };
        out.push(policy.map_err(|e| format!("policy {i}: {e}"))?);
    }
    Ok(out)
}

fn case_context(value: Option<&Value>) -> Result<Context, String> {
    let mut context = Context::new();
    let Some(map) = value else { return Ok(context) };
    for (k, v) in map.as_object().ok_or("context is not an object")? {
        match v {
            Value::String(s) => context.insert(k.as_str(), s.as_str()),
            Value::Array(items) => {
                let values: Vec<String> = items.iter().filter_map(Value::as_str).map(str::to_owned).collect();
                if values.len() != items.len() {
                    return Err(format!("context {k}: values must be strings"));
                }
                // Several inserts so that keys differing only in case merge, as on a real resource.
                if values.is_empty() {
                    context.set(k.as_str(), values);
                } else {
                    for v in values {
                        context.insert(k.as_str(), v);
                    }
                }
            }
            _ => return Err(format!("context {k}: a string or an array of strings")),
        }
    }
    Ok(context)
}

fn run_case(case: &Value) -> Result<(), String> {
    let field = |k: &str| case.get(k).and_then(Value::as_str);
    let policies = case_policies(case.get("policies").ok_or("no policies")?)?;
    let request = Request::new(field("action").ok_or("no action")?, field("resource").ok_or("no resource")?)
        .map_err(|e| e.to_string())?
        .with_context(case_context(case.get("context"))?);
    let decision = evaluate(&policies, &request);
    let got = if decision.is_allowed() { "allow" } else { "deny" };
    let expect = field("expect").ok_or("no expect")?;
    if got != expect {
        return Err(format!("expected {expect}, got {got}: {decision:#}"));
    }
    let reason = decision.deny_reason().map(|r| r.as_str());
    if reason != field("reason") {
        return Err(format!("expected reason {:?}, got {reason:?}: {decision:#}", field("reason")));
    }
    if let Some(statement) = field("statement") {
        let got = decision.deciding_statement().map(ToString::to_string);
        if got.as_deref() != Some(statement) {
            return Err(format!("expected deciding statement {statement:?}, got {got:?}"));
        }
    }
    if let Some(key) = field("failed_key") {
        let got = decision.failed_condition().map(|c| c.key.clone());
        if got.as_deref() != Some(key) {
            return Err(format!("expected the failed condition on {key}, got {got:?}: {decision:#}"));
        }
    }
    Ok(())
}

#[test]
fn golden_decisions() {
    let golden = golden();
    let cases = golden["cases"].as_array().expect("cases");
    assert!(cases.len() >= 120, "only {} golden cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("(unnamed)");
        if let Err(e) = run_case(case) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} golden cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn golden_refusals() {
    let golden = golden();
    let errors = golden["errors"].as_array().expect("errors");
    let mut failures = Vec::new();
    for case in errors {
        let name = case["name"].as_str().unwrap_or("(unnamed)");
        let text = match (&case["policy_text"], &case["policy"]) {
            (Value::String(t), _) => t.clone(),
            (_, doc) => doc.to_string(),
        };
        let want = case["error_contains"].as_str().unwrap_or("");
        match Policy::parse("bad", &text) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) if !e.to_string().contains(want) => failures.push(format!("{name}: error {e:?} lacks {want:?}")),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_10_mb_policy_is_refused_before_parsing() {
    let filler = "x".repeat(10 * 1024 * 1024);
    let text = format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Sid": "{filler}", "Effect": "Allow", "Action": "*", "Resource": "*"}}}}"#
    );
    let err = Policy::parse("big", &text).expect_err("10 MB refused");
    assert!(matches!(err, PolicyError::TooLarge { limit: MAX_POLICY_BYTES, .. }), "{err:?}");
    assert!(err.to_string().contains("the limit is 1048576 bytes"), "{err}");
    // Just over the limit is refused too; the limit itself is not a JSON problem.
    let over = vec![b' '; MAX_POLICY_BYTES + 1];
    assert!(matches!(Policy::from_slice("over", &over), Err(PolicyError::TooLarge { .. })));

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.json");
    std::fs::write(&path, &text).expect("write");
    let err = Policy::load(&path).expect_err("file refused");
    assert!(matches!(err.root(), PolicyError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
}

#[test]
fn hostile_documents_give_errors_not_panics() {
    assert!(matches!(
        Policy::from_slice("bin", b"{\"Version\": \"\xff\xfe\"}"),
        Err(PolicyError::NotUtf8 { offset: 13 })
    ));
    let deep = format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {{"StringEquals": {{"k": {}"x"{}}}}}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(matches!(Policy::parse("deep", &deep), Err(PolicyError::Json(_))));
    // A pattern built to make naive backtracking explode.
    let pattern = "*a".repeat(200) + "b";
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"StringLike": {"ec2:ResourceTag/Name": pattern}}}});
    let policy = Policy::parse("glob", &doc.to_string()).expect("parse");
    let request =
        Request::new("ec2:DeleteVpc", "*").expect("request").with("ec2:ResourceTag/Name", "a".repeat(100_000));
    assert!(!evaluate(&[policy], &request).is_allowed());
}

#[test]
fn policies_directory() {
    // The custom policy file is the embedded one, and is the onboarding document's: three
    // statements, 7 + 1 + 43 actions, two tag conditions.
    let text = std::fs::read_to_string(custom_policy_path()).expect("read policies/agentless-scan.json");
    assert_eq!(text, agentless::policy::AGENTLESS_SCAN_POLICY_JSON);
    let v: Value = serde_json::from_str(&text).expect("JSON");
    let statements = v["Statement"].as_array().expect("statements");
    let sizes: Vec<usize> = statements.iter().map(|s| s["Action"].as_array().map_or(0, Vec::len)).collect();
    assert_eq!(sizes, [7, 1, 43]);
    assert_eq!(statements[0]["Condition"]["StringLike"]["ec2:ResourceTag/Name"], "alibaba-cloud-security-scan*");
    assert_eq!(statements[1]["Condition"]["StringLike"]["ec2:ResourceTag/Name"], "SAS_Agentless*");
    assert!(statements.iter().all(|s| s["Effect"] == "Allow" && s["Resource"] == "*"));

    let managed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/managed-policies.json"))
        .expect("read managed-policies.json");
    let managed: Value = serde_json::from_str(&managed).expect("JSON");
    let pairs: Vec<(String, String)> = managed
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| (m["feature"].as_str().unwrap_or("").to_owned(), m["arn"].as_str().unwrap_or("").to_owned()))
        .collect();
    let expected = [
        ("Host", "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess"),
        ("Host", "arn:aws:iam::aws:policy/IAMReadOnlyAccess"),
        ("CSPM", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
    ];
    assert_eq!(pairs, expected.map(|(f, a)| (f.to_owned(), a.to_owned())));
}

fn explain(args: &[&str]) -> (Option<i32>, String, String) {
    run_agentless(&[&["policy", "explain"], args].concat())
}

const SNAP: &str = "arn:aws:ec2:us-east-1:111122223333:snapshot/snap-0123456789abcdef0";

/// `policy explain` of the custom policy for `ec2:DeleteSnapshot` on [`SNAP`] named `name`.
fn explain_delete_snapshot(name: &str) -> (Option<i32>, String, String) {
    let custom = custom_policy_path();
    let context = format!("ec2:ResourceTag/Name={name}");
    let custom = custom.to_str().expect("utf-8 path");
    explain(&["--policy", custom, "--action", "ec2:DeleteSnapshot", "--resource", SNAP, "--context", &context])
}

#[test]
fn explain_exit_0_on_allow() {
    let (code, out, err) = explain_delete_snapshot("SAS_Agentless-job-1-vol-1");
    let custom = custom_policy_path();
    let custom = custom.to_str().expect("utf-8 path");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with(&format!("ALLOW ec2:DeleteSnapshot on {SNAP}\n")), "{out}");
    assert!(out.contains(&format!("allowed by {custom} Statement[1]")), "{out}");
}

#[test]
fn explain_exit_1_on_deny_with_the_reason() {
    let (code, out, _) = explain_delete_snapshot("customer-backup");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("DENY ec2:DeleteSnapshot"), "{out}");
    assert!(
        out.contains(
            "StringLike ec2:ResourceTag/Name \"SAS_Agentless*\" is false for the request value \"customer-backup\""
        ),
        "{out}"
    );
    assert!(out.contains("reason: condition_failed"), "{out}");

    // Deny overrides allow across two --policy files; a key given twice has two values.
    let custom = custom_policy_path();
    let custom = custom.to_str().expect("utf-8 path");
    let deny = data_dir().join("deny-snapshot-deletes.json");
    let (code, out, _) = explain(&[
        "--policy",
        custom,
        "--policy",
        deny.to_str().expect("utf-8 path"),
        "--action",
        "ec2:DeleteSnapshot",
        "--resource",
        SNAP,
        "--context",
        "ec2:ResourceTag/Name=SAS_Agentless-1",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("explicitly denied by") && out.contains("(Sid \"NoSnapshotDeletes\")"), "{out}");

    let grants = data_dir().join("kms-grants-for-ebs.json");
    let base = [
        "--policy",
        grants.to_str().expect("utf-8 path"),
        "--action",
        "kms:CreateGrant",
        "--resource",
        "arn:aws:kms:us-east-1:111122223333:key/k",
        "--context",
        "kms:GrantIsForAWSResource=true",
        "--context",
        "kms:EncryptionContext:aws:ebs:id=vol-1",
        "--context",
        "kms:GrantOperations=Decrypt",
    ];
    let (code, out, _) = explain(&base);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = explain(&[&base[..], &["--context", "kms:GrantOperations=RetireGrant"]].concat());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("[\"Decrypt\", \"RetireGrant\"]"), "{out}");

    let (code, out, _) = explain(&["--policy", custom, "--action", "ec2:DescribeInstanceTypes", "--resource", "*"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no statement allows this action"), "{out}");
}

#[test]
fn explain_exit_2_on_usage_and_parse_errors() {
    let custom = custom_policy_path();
    let custom = custom.to_str().expect("utf-8 path");
    // Missing file.
    let (code, _, err) = explain(&["--policy", "/nonexistent/p.json", "--action", "ec2:DeleteVpc", "--resource", "*"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot read policy file /nonexistent/p.json"), "{err}");
    // Not JSON, bad Version, unknown operator: the error names the file and the place.
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, text, want) in [
        ("not-json.json", "Statement: allow everything", "not valid JSON"),
        ("version.json", r#"{"Version": "2012-10-18", "Statement": []}"#, "unsupported policy Version \"2012-10-18\""),
        (
            "operator.json",
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringLikeIfExist": {"k": "v"}}}]}"#,
            "Statement[0].Condition.StringLikeIfExist: unknown condition operator",
        ),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("write");
        let (code, out, err) =
            explain(&["--policy", path.to_str().expect("utf-8"), "--action", "ec2:DeleteVpc", "--resource", "*"]);
        assert_eq!(code, Some(2), "{file}: {out}");
        assert!(err.contains(&path.display().to_string()) && err.contains(want), "{file}: {err}");
    }
    // 10 MB.
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 10 * 1024 * 1024]).expect("write");
    let (code, _, err) =
        explain(&["--policy", big.to_str().expect("utf-8"), "--action", "ec2:DeleteVpc", "--resource", "*"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("the limit is 1048576 bytes"), "{err}");
    // Usage errors: no --policy, a context without '=', a malformed action or resource.
    let (code, _, _) = explain(&["--action", "ec2:DeleteVpc", "--resource", "*"]);
    assert_eq!(code, Some(2));
    let (code, _, err) =
        explain(&["--policy", custom, "--action", "ec2:DeleteVpc", "--resource", "*", "--context", "novalue"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("expected KEY=VALUE"), "{err}");
    let (code, _, err) = explain(&["--policy", custom, "--action", "DeleteVpc", "--resource", "*"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not of the form service:ActionName"), "{err}");
    let (code, _, err) = explain(&["--policy", custom, "--action", "ec2:DeleteVpc", "--resource", "vpc-1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("must be an ARN"), "{err}");
}

/// `policy check --trail-queue --trail-bucket`: the pipeline reader's three calls under the custom
/// policy and the onboarding's SQS statement: the queue's two are allowed by that statement, the
/// log file's `s3:GetObject` is denied and named with the exact statement to add (exit 1); with the
/// bundled reader policy filled in, everything is allowed (exit 0).
#[test]
fn policy_check_names_the_pipeline_statement_a_principal_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = "arn:aws:sqs:us-east-1:111122223333:aliyun-sasc-log-queue";
    let bucket = "aws-cloudtrail-logs-111122223333-agentless";
    // The onboarding's step 4: SQS, GetQueueUrl and ReceiveMessage on the queue's ARN.
    let sqs = dir.path().join("sqs.json");
    std::fs::write(
        &sqs,
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:ReceiveMessage"], "Resource": "{queue}"}}]}}"#
        ),
    )
    .expect("write");
    let custom = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/agentless-scan.json");
    let sqs_path = sqs.to_str().expect("utf-8");
    let (code, out, err) = crate::util::run_agentless(&[
        "policy",
        "check",
        "--policy",
        custom,
        "--policy",
        sqs_path,
        "--trail-queue",
        queue,
        "--trail-bucket",
        bucket,
    ]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains(&format!("ALLOW GetQueueUrl sqs:GetQueueUrl {queue} ({sqs_path} Statement[0])")), "{out}");
    assert!(
        out.contains(&format!("ALLOW ReceiveMessage sqs:ReceiveMessage {queue} ({sqs_path} Statement[0])")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "DENY GetObject s3:GetObject arn:aws:s3:::{bucket}/AWSLogs/111122223333/CloudTrail/us-east-1/"
        )),
        "{out}"
    );
    assert!(
        err.contains(&format!(
            r#"needs this statement (policies/agentless-trail-reader.json; ReadOnlyAccess also grants s3:GetObject): {{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/AWSLogs/*"}}"#
        )),
        "{err}"
    );
    assert!(err.contains("1 call(s) denied; the first: GetObject in us-east-1"), "{err}");

    // The custom policy alone: the queue's calls are denied too, and the SQS statement is named.
    let (code, _, err) =
        crate::util::run_agentless(&["policy", "check", "--trail-queue", queue, "--trail-bucket", bucket]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            r#"{{"Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:ReceiveMessage"], "Resource": "{queue}"}}"#
        )),
        "{err}"
    );

    // The bundled reader policy, filled in: every call allowed.
    let reader = dir.path().join("reader.json");
    let text =
        agentless::policy::TRAIL_READER_POLICY_TEMPLATE.replace("${QueueArn}", queue).replace("${TrailBucket}", bucket);
    std::fs::write(&reader, text).expect("write");
    let (code, out, err) = crate::util::run_agentless(&[
        "policy",
        "check",
        "--policy",
        custom,
        "--policy",
        reader.to_str().expect("utf-8"),
        "--trail-queue",
        queue,
        "--trail-bucket",
        bucket,
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("ALLOW GetObject s3:GetObject"), "{out}");
    // A queue that is no ARN is a usage error.
    let (code, _, err) =
        crate::util::run_agentless(&["policy", "check", "--trail-queue", "queue", "--trail-bucket", bucket]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is not a queue ARN"), "{err}");
}
