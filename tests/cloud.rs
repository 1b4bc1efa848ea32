//! The cloud seam: ids, error classification, the authorization mapping of single calls, and the
//! policy guard (refusals and their text, the trace, the rules stricter than the policy).

use agentless::cloud::authz::{self, AuthzRequest, Origin, Scope};
use agentless::cloud::dry_run::{DryRun, now};
use agentless::cloud::ops::*;
use agentless::cloud::tags::{self, Role, SnapshotSource};
use agentless::cloud::{
    AccountId, Call, ErrorKind, Guard, GuardPolicy, GuardRules, InstanceId, KmsKeyId, Region, SnapshotId, Tags, VpcId,
    classify,
};
use agentless::policy::{DenyReason, Policy, Request, agentless_scan_policy};

fn account() -> AccountId {
    "111122223333".parse().expect("account")
}

fn region() -> Region {
    "us-east-1".parse().expect("region")
}

fn scope() -> Scope {
    Scope { caller_user: Some("agentless-scanner".into()), ..Scope::new(account()) }
}

fn job() -> agentless::cloud::JobId {
    "20260315-7k2q".parse().expect("job")
}

fn expires() -> jiff::Timestamp {
    "2026-03-16T12:00:00Z".parse().expect("ts")
}

fn guard_with(policies: Vec<Policy>, rules: GuardRules) -> Guard<DryRun> {
    Guard::new(
        DryRun::new(account(), "arn:aws:iam::111122223333:user/agentless-scanner"),
        GuardPolicy::new(policies, scope(), rules),
    )
}

fn guard() -> Guard<DryRun> {
    guard_with(vec![agentless_scan_policy().expect("policy")], GuardRules::default())
}

fn snapshot(name: Option<&str>, with_job: bool) -> Tagged<SnapshotId> {
    let mut t = Tags::new();
    if let Some(n) = name {
        t.insert("Name", n).expect("tag");
    }
    if with_job {
        t.insert(tags::JOB, "20260301-a1b2").expect("tag");
    }
    Tagged::new("snap-0123456789abcdef0".parse().expect("snap"), t)
}

#[test]
fn ids_parse_and_refuse() {
    assert!("i-0123456789abcdef0".parse::<InstanceId>().is_ok());
    assert!("i-01234567".parse::<InstanceId>().is_ok());
    for bad in ["i-0123", "i-0123456789ABCDEF0", "vol-0123456789abcdef0", " i-01234567", "i-01234567 "] {
        assert!(bad.parse::<InstanceId>().is_err(), "{bad:?}");
    }
    assert!("vpc-0a1b2c3d".parse::<VpcId>().is_ok());
    assert!("us-gov-west-1".parse::<Region>().is_ok());
    assert!("us-east-1a".parse::<Region>().is_err());
    assert!("1111222233334".parse::<AccountId>().is_err());
    assert!("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".parse::<KmsKeyId>().is_ok());
    let e = "snap-xyz".parse::<SnapshotId>().expect_err("bad");
    assert_eq!(e.kind, "snapshot id");
}

#[test]
fn error_codes_classify() {
    assert_eq!(classify("RequestLimitExceeded", Some(503)), ErrorKind::Throttled);
    assert_eq!(classify("InvalidSnapshot.NotFound", Some(400)), ErrorKind::NotFound);
    assert_eq!(classify("DependencyViolation", Some(400)), ErrorKind::DependencyViolation);
    assert_eq!(classify("IncorrectInstanceState", Some(400)), ErrorKind::IncorrectState);
    assert_eq!(classify("SnapshotCreationPerVolumeRateExceeded", Some(400)), ErrorKind::SnapshotRatePerVolume);
    assert_eq!(classify("VpcLimitExceeded", Some(400)), ErrorKind::QuotaExceeded);
    assert_eq!(classify("UnauthorizedOperation", Some(403)), ErrorKind::AccessDenied);
    assert_eq!(classify("AccessDeniedException", Some(400)), ErrorKind::AccessDenied);
    assert_eq!(classify("InternalError", Some(500)), ErrorKind::Transient);
    assert_eq!(classify("Whatever", Some(503)), ErrorKind::Transient);
    assert_eq!(classify("InvalidParameterValue", Some(400)), ErrorKind::Other);
}

#[test]
fn authz_of_run_instances_covers_every_resource_type() {
    let tsc = tags::resource_tags(&job(), Some(Role::SCANNER), expires());
    let ours = tags::resource_tags(&job(), Some(Role::SUBNET), expires());
    let key: KmsKeyId = "1234abcd-12ab-34cd-56ef-1234567890ab".parse().expect("key");
    let input = RunScannerInput {
        image: Tagged::new("ami-0123456789abcdef0".parse().expect("ami"), Tags::new()),
        root: None,
        instance_type: "m5.xlarge".into(),
        subnet: Tagged::new("subnet-0123456789abcdef0".parse().expect("subnet"), ours.clone()),
        security_groups: vec![Tagged::new("sg-0123456789abcdef0".parse().expect("sg"), ours.clone())],
        volumes: vec![ScannerVolume {
            device_name: "/dev/sdf".into(),
            snapshot: snapshot(Some("SAS_Agentless-x"), true),
            kms_key: Some(key),
        }],
        user_data_base64: String::new(),
        client_token: "t".into(),
        instance_tags: tsc.clone(),
        volume_tags: tsc.clone(),
        network_interface_tags: tsc,
    };
    let reqs = authz::requests(&scope(), &region(), Call::RunInstances(&input)).expect("requests");
    let line = |r: &AuthzRequest| format!("{} {} {}", r.origin.as_str(), r.request.action(), r.request.resource());
    let lines: Vec<String> = reqs.iter().map(line).collect();
    assert_eq!(
        lines,
        [
            "call ec2:RunInstances arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0",
            "call ec2:RunInstances arn:aws:ec2:us-east-1:111122223333:instance/*",
            "tag-on-create ec2:CreateTags arn:aws:ec2:us-east-1:111122223333:instance/*",
            "call ec2:RunInstances arn:aws:ec2:us-east-1:111122223333:volume/*",
            "tag-on-create ec2:CreateTags arn:aws:ec2:us-east-1:111122223333:volume/*",
            "call ec2:RunInstances arn:aws:ec2:us-east-1:111122223333:network-interface/*",
            "tag-on-create ec2:CreateTags arn:aws:ec2:us-east-1:111122223333:network-interface/*",
            "call ec2:RunInstances arn:aws:ec2:us-east-1:111122223333:subnet/subnet-0123456789abcdef0",
            "call ec2:RunInstances arn:aws:ec2:us-east-1:111122223333:security-group/sg-0123456789abcdef0",
            "call ec2:RunInstances arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0",
            "on-behalf kms:DescribeKey arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "on-behalf kms:GenerateDataKeyWithoutPlaintext arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "on-behalf kms:CreateGrant arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            // No Decrypt with our credentials: EC2's infrastructure role decrypts at attach under
            // the grant it creates (KMS Developer Guide, "Amazon EC2 example two").
        ]
    );
    // Tag-on-create carries ec2:CreateAction, the requested tags and their keys.
    let c = reqs[2].request.context();
    assert_eq!(c.get("ec2:CreateAction"), Some(&["RunInstances".to_owned()][..]));
    assert_eq!(c.get("aws:TagKeys").map(<[String]>::len), Some(3));
    assert!(c.get("aws:RequestTag/Name").is_some_and(|v| v[0].starts_with("alibaba-cloud-security-scan-")));
    // The subnet is authorized with its current tags; the grant EC2 makes is for an AWS resource.
    assert!(reqs[7].request.context().get("ec2:ResourceTag/agentless:job").is_some());
    assert_eq!(reqs[12].request.context().get("kms:GrantIsForAWSResource"), Some(&["true".to_owned()][..]));
    assert_eq!(reqs[12].request.context().get("kms:ViaService"), Some(&["ec2.us-east-1.amazonaws.com".to_owned()][..]));
}

#[test]
fn authz_of_create_grant_and_caller_identity() {
    let input = CreateGrantInput {
        key: "1234abcd-12ab-34cd-56ef-1234567890ab".parse().expect("key"),
        grantee_principal: "arn:aws:iam::111122223333:user/agentless-scanner".into(),
        operations: vec![GrantOperation::Decrypt, GrantOperation::CreateGrant],
        ebs_id: EbsId::Volume("vol-0123456789abcdef0".parse().expect("vol")),
        name: tags::grant_name(&job()),
    };
    let reqs = authz::requests(&scope(), &region(), Call::CreateGrant(&input)).expect("requests");
    assert_eq!(reqs.len(), 1);
    let c = reqs[0].request.context();
    assert_eq!(c.get("kms:GrantOperations"), Some(&["Decrypt".to_owned(), "CreateGrant".to_owned()][..]));
    assert_eq!(c.get("kms:EncryptionContext:aws:ebs:id"), Some(&["vol-0123456789abcdef0".to_owned()][..]));
    assert_eq!(c.get("kms:GrantIsForAWSResource"), Some(&["false".to_owned()][..]));
    assert_eq!(c.get("kms:GrantConstraintType"), Some(&["EncryptionContextSubset".to_owned()][..]));
    assert!(authz::requests(&scope(), &region(), Call::GetCallerIdentity(&Empty)).expect("none").is_empty());
    let no_user = Scope::new(account());
    assert!(authz::requests(&no_user, &region(), Call::GetUser(&GetUserInput::default())).is_err());
}

#[test]
fn guard_refuses_deleting_customer_backup() {
    let g = guard();
    let input = DeleteSnapshotInput { snapshot: snapshot(Some("customer-backup"), false) };
    let err = now(g.delete_snapshot(&region(), &input)).expect("ready").expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::PolicyDenied);
    assert_eq!(
        err.to_string(),
        "DeleteSnapshot in us-east-1 refused by the policy guard: ec2:DeleteSnapshot on \
         arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0: snapshot snap-0123456789abcdef0 is not ours: its Name \
         \"customer-backup\" does not start with \"SAS_Agentless\" [snap-0123456789abcdef0]"
    );
    let denial = err.denial().expect("denial");
    assert_eq!(denial.action, "ec2:DeleteSnapshot");
    assert_eq!(denial.resource, "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0");
    assert_eq!(err.ids(), ["snap-0123456789abcdef0"]);
    // The policy would refuse it too: the trace has the evaluator's condition failure.
    let trace = g.trace();
    assert_eq!(trace.len(), 1);
    assert!(!trace[0].allowed);
    assert_eq!(trace[0].requests[0].decision.deny_reason(), Some(DenyReason::ConditionFailed));
    assert!(g.backend().calls().is_empty(), "a refused call reached the backend");

    // Untagged: refused. Our prefix but no agentless:job: refused, unless --include-foreign.
    let untagged = DeleteSnapshotInput { snapshot: snapshot(None, false) };
    let e = now(g.delete_snapshot(&region(), &untagged)).expect("ready").expect_err("refused");
    assert!(e.to_string().contains("is not ours: it has no Name tag"), "{e}");
    let foreign = DeleteSnapshotInput { snapshot: snapshot(Some("SAS_Agentless-other-tool"), false) };
    let e = now(g.delete_snapshot(&region(), &foreign)).expect("ready").expect_err("refused");
    assert!(e.to_string().contains("has no agentless:job tag"), "{e}");
    let lenient = guard_with(vec![agentless_scan_policy().expect("policy")], GuardRules { include_foreign: true });
    assert!(now(lenient.delete_snapshot(&region(), &foreign)).expect("ready").is_ok());
    // Ours: allowed by Statement[1] and sent.
    let mine = DeleteSnapshotInput { snapshot: snapshot(Some("SAS_Agentless-20260301-a1b2-vol-1"), true) };
    assert!(now(g.delete_snapshot(&region(), &mine)).expect("ready").is_ok());
    assert_eq!(g.backend().calls().len(), 1);
}

#[test]
fn guard_refusal_names_the_evaluator_reason() {
    // A policy stricter than ours: the guard's rules pass, the evaluator refuses, and the error
    // carries its text.
    let strict = Policy::parse(
        "strict.json",
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DeleteVpc", "Resource": "*",
            "Condition": {"StringEquals": {"ec2:ResourceTag/agentless:job": "20260315-7k2q"}}}]}"#,
    )
    .expect("policy");
    let g = guard_with(vec![strict], GuardRules::default());
    let vpc = Tagged::new(
        "vpc-0123456789abcdef0".parse().expect("vpc"),
        tags::resource_tags(&"20260301-a1b2".parse().expect("job"), Some(Role::VPC), expires()),
    );
    let err = now(g.delete_vpc(&region(), &DeleteVpcInput { vpc })).expect("ready").expect_err("refused");
    assert_eq!(
        err.to_string(),
        "DeleteVpc in us-east-1 refused by the policy guard: ec2:DeleteVpc on \
         arn:aws:ec2:us-east-1:111122223333:vpc/vpc-0123456789abcdef0: implicitly denied: strict.json Statement[0] \
         matches the action and resource, but its condition StringEquals ec2:ResourceTag/agentless:job \
         \"20260315-7k2q\" is false for the request value \"20260301-a1b2\" [vpc-0123456789abcdef0]"
    );
    assert_eq!(err.denial().and_then(|d| d.deny_reason), Some(DenyReason::ConditionFailed));
    // An action no statement names.
    let err = now(g.describe_regions(&region(), &Empty)).expect("ready").expect_err("refused");
    assert!(
        err.to_string().ends_with("ec2:DescribeRegions on *: implicitly denied: no statement allows this action"),
        "{err}"
    );
}

#[test]
fn guard_trace_records_every_call() {
    let g = guard();
    let tvpc = tags::resource_tags(&job(), Some(Role::VPC), expires());
    let out = now(g.create_vpc(&region(), &CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: tvpc.clone() }))
        .expect("ready")
        .expect("allowed");
    let foreign_vpc = Tagged::new(out.vpc_id.clone(), Tags::from_pairs([("Name", "prod-vpc")]).expect("tags"));
    let sg = CreateSecurityGroupInput {
        vpc: foreign_vpc,
        group_name: "x".into(),
        description: "x".into(),
        tags: tags::resource_tags(&job(), Some(Role::SECURITY_GROUP), expires()),
    };
    let err = now(g.create_security_group(&region(), &sg)).expect("ready").expect_err("not our VPC");
    assert!(err.to_string().contains("VPC vpc-00000000000000001 is not ours: its Name \"prod-vpc\""), "{err}");
    now(g.get_caller_identity(&region(), &Empty)).expect("ready").expect("allowed");

    let trace = g.trace();
    let summary: Vec<(&str, bool, usize)> = trace.iter().map(|t| (t.op, t.allowed, t.requests.len())).collect();
    assert_eq!(summary, [("CreateVpc", true, 2), ("CreateSecurityGroup", false, 3), ("GetCallerIdentity", true, 0)]);
    let create = &trace[0];
    assert_eq!(create.requests[0].origin, Origin::Caller);
    assert_eq!(create.requests[0].request.resource(), "arn:aws:ec2:us-east-1:111122223333:vpc/*");
    assert_eq!(create.requests[1].origin, Origin::TagOnCreate);
    assert_eq!(create.requests[1].request.action(), "ec2:CreateTags");
    assert!(create.requests.iter().all(|e| e.decision.is_allowed()));
    assert_eq!(trace[1].violations.len(), 1);
    let sent: Vec<&str> = g.backend().calls().iter().map(|(op, _)| *op).collect();
    assert_eq!(sent, ["CreateVpc", "GetCallerIdentity"]);
    assert_eq!(g.take_trace().len(), 3);
    assert!(g.trace().is_empty());
}

#[test]
fn create_tags_outside_a_create_is_refused() {
    let policy = GuardPolicy::new(vec![agentless_scan_policy().expect("policy")], scope(), GuardRules::default());
    let arn = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0";
    let bare = Request::new("ec2:CreateTags", arn).expect("request").with("aws:RequestTag/Name", "SAS_Agentless-x");
    let entry = policy.evaluate_requests(
        "CreateTags",
        &region(),
        vec![AuthzRequest { request: bare.clone(), origin: Origin::Caller }],
    );
    // The policy allows it (Statement[2], unconditioned); the guard does not.
    assert!(entry.requests[0].decision.is_allowed());
    assert!(!entry.allowed);
    let denial = entry.refusal().expect("refused");
    assert!(
        denial.reason.starts_with("the guard allows ec2:CreateTags only as part of a create call"),
        "{}",
        denial.reason
    );
    assert_eq!(denial.deny_reason, None);
    // Inside a create it is fine.
    let in_create = bare.with("ec2:CreateAction", "CreateSnapshot");
    let entry = policy.evaluate_requests(
        "CreateSnapshot",
        &region(),
        vec![AuthzRequest { request: in_create, origin: Origin::TagOnCreate }],
    );
    assert!(entry.allowed);
}

#[test]
fn guard_confines_grant_revocation_and_snapshot_copies_to_ours() {
    let g = guard();
    let key: KmsKeyId = "1234abcd-12ab-34cd-56ef-1234567890ab".parse().expect("key");
    let grant = "a".repeat(64).parse().expect("grant");
    let revoke = RevokeGrantInput { key: key.clone(), grant_id: grant, grant_name: Some("backup-service".into()) };
    let err = now(g.revoke_grant(&region(), &revoke)).expect("ready").expect_err("not ours");
    assert!(
        err.to_string().contains("its name \"backup-service\" does not start with \"alibaba-cloud-security-scan\""),
        "{err}"
    );

    let i: InstanceId = "i-0123456789abcdef0".parse().expect("i");
    let v = "vol-0123456789abcdef0".parse().expect("vol");
    let copy = |source: Tagged<SnapshotId>| CopySnapshotInput {
        source_region: "eu-west-1".parse().expect("region"),
        source,
        source_kms_key: None,
        encrypted: false,
        kms_key_id: None,
        description: String::new(),
        tags: tags::snapshot_tags(&job(), SnapshotSource::Volume { instance: &i, volume: &v }, expires()),
    };
    let err = now(g.copy_snapshot(&region(), &copy(snapshot(Some("customer-backup"), false)))).expect("ready");
    assert!(err.is_err());
    let ok = now(g.copy_snapshot(&region(), &copy(snapshot(Some("SAS_Agentless-x"), true)))).expect("ready");
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn an_empty_tag_set_never_reaches_a_create_call() {
    let g = guard();
    // CreateVpc is unconditioned in the custom policy: only the guard stands between an untagged
    // (hence unattributable, undeletable under the policy) VPC and the account.
    let err = now(g.create_vpc(&region(), &CreateVpcInput { cidr_block: "10.77.0.0/16".into(), tags: Tags::new() }))
        .expect("ready")
        .expect_err("an untagged VPC is refused");
    assert_eq!(err.kind(), ErrorKind::PolicyDenied, "{err}");
    assert!(err.to_string().contains("empty tag set"), "{err}");
    assert_eq!(
        err.guard_violation(),
        Some(&agentless::cloud::GuardViolation::EmptyTags {
            operation: "CreateVpc",
            region: region(),
            resource_type: "VPC"
        })
    );
    // A scanner whose volumes would carry no tags is refused too, although its instance's are set.
    let tsc = tags::resource_tags(&job(), Some(Role::SCANNER), expires());
    let ours = tags::resource_tags(&job(), Some(Role::SUBNET), expires());
    let input = RunScannerInput {
        image: Tagged::new("ami-0123456789abcdef0".parse().expect("ami"), Tags::new()),
        root: None,
        instance_type: "m5.xlarge".into(),
        subnet: Tagged::new("subnet-0123456789abcdef0".parse().expect("subnet"), ours.clone()),
        security_groups: vec![Tagged::new("sg-0123456789abcdef0".parse().expect("sg"), ours)],
        volumes: Vec::new(),
        user_data_base64: String::new(),
        client_token: "t".into(),
        instance_tags: tsc.clone(),
        volume_tags: Tags::new(),
        network_interface_tags: tsc,
    };
    let err = now(g.run_scanner(&region(), &input)).expect("ready").expect_err("untagged volumes are refused");
    assert_eq!(err.kind(), ErrorKind::PolicyDenied, "{err}");
    assert!(err.to_string().contains("volume"), "{err}");
    // Nothing reached the backend; the refusals are in the trace.
    assert!(g.backend().calls().is_empty(), "{:?}", g.backend().calls());
    assert_eq!(g.trace().iter().filter(|t| !t.allowed).count(), 2);
}

/// Rule 4: `kms:CreateGrant` is unconditioned in the custom policy; the guard lets through only
/// the grant the job makes (to the caller, EBS's operations, our name).
#[test]
fn guard_confines_kms_grants() {
    let g = guard();
    let key: KmsKeyId =
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".parse().expect("key");
    let ours = CreateGrantInput {
        key: key.clone(),
        grantee_principal: "arn:aws:iam::111122223333:user/agentless-scanner".into(),
        operations: agentless::cloud::guard::OUR_GRANT_OPERATIONS.to_vec(),
        ebs_id: EbsId::Volume("vol-0123456789abcdef0".parse().expect("vol")),
        name: tags::grant_name(&job()),
    };
    assert!(now(g.create_grant(&region(), &ours)).expect("ready").is_ok(), "the job's own grant");
    let refused = |input: &CreateGrantInput| {
        let e = now(g.create_grant(&region(), input)).expect("ready").expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::PolicyDenied, "{e}");
        e.to_string()
    };
    // To another principal, even of our account.
    let other = CreateGrantInput { grantee_principal: "arn:aws:iam::111122223333:role/admin".into(), ..ours.clone() };
    assert!(refused(&other).contains("arn:aws:iam::111122223333:role/admin is not the caller"));
    let foreign = CreateGrantInput { grantee_principal: "arn:aws:iam::999999999999:root".into(), ..ours.clone() };
    assert!(refused(&foreign).contains("is not the caller"));
    // Operations EBS does not need.
    let wider =
        CreateGrantInput { operations: vec![GrantOperation::Decrypt, GrantOperation::ReEncryptTo], ..ours.clone() };
    assert!(refused(&wider).contains("not ReEncryptTo"), "{}", refused(&wider));
    // Not our name.
    let named = CreateGrantInput { name: "backup-restore".into(), ..ours.clone() };
    assert!(refused(&named).contains("not \"backup-restore\""));
    assert_eq!(g.backend().calls().len(), 1, "only the job's grant was sent");

    // Role credentials: the scope has no user name; the grantee must be a principal of the account.
    let role_scope = Scope::new(account());
    let rg = Guard::new(
        DryRun::new(account(), "arn:aws:sts::111122223333:assumed-role/Scanner/s1"),
        GuardPolicy::new(vec![agentless_scan_policy().expect("policy")], role_scope, GuardRules::default()),
    );
    let session = CreateGrantInput {
        grantee_principal: "arn:aws:sts::111122223333:assumed-role/Scanner/s1".into(),
        ..ours.clone()
    };
    assert!(now(rg.create_grant(&region(), &session)).expect("ready").is_ok());
    assert!(now(rg.create_grant(&region(), &foreign)).expect("ready").is_err());
}

/// Rule 5: `ec2:CopyImage` is unconditioned in the custom policy; the guard copies only our
/// scanner image, named and tagged on create as `scanner-ami/image/register.sh` tags it.
#[test]
fn guard_confines_image_copies() {
    let g = guard();
    let ours = tags::image_tags(Role::new("1-4-0").expect("role"));
    let copy = CopyImageInput {
        source_region: "ap-southeast-1".parse().expect("region"),
        source: Tagged::new("ami-0a1b2c3d4e5f60501".parse().expect("ami"), ours.clone()),
        name: tags::image_name("1-4-0"),
        description: "agentless scanner image 1.4.0".into(),
        encrypted: false,
        kms_key_id: None,
        tags: ours.clone(),
    };
    assert!(now(g.copy_image(&region(), &copy)).expect("ready").is_ok(), "our scanner image");
    let refused = |input: &CopyImageInput| {
        let e = now(g.copy_image(&region(), input)).expect("ready").expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::PolicyDenied, "{e}");
        e.to_string()
    };
    // Someone else's image (a customer's golden AMI, untagged or tagged otherwise).
    let mut golden = Tags::new();
    golden.insert("Name", "prod-golden-ami").expect("tag");
    let theirs = CopyImageInput { source: Tagged::new(copy.source.id.clone(), golden), ..copy.clone() };
    assert!(refused(&theirs).contains("copies only our scanner image"), "{}", refused(&theirs));
    // Another name for the copy.
    let renamed = CopyImageInput { name: "my-copy".into(), ..copy.clone() };
    assert!(refused(&renamed).contains("must be named"), "{}", refused(&renamed));
    // Not tagged as the tag contract says (no version tag; another Name).
    let mut bare = Tags::new();
    bare.insert("Name", "alibaba-cloud-security-scan-image-1-4-0").expect("tag");
    let untagged = CopyImageInput { tags: bare, ..copy.clone() };
    assert!(refused(&untagged).contains("agentless:image-version"), "{}", refused(&untagged));
    let mut wrong = ours.clone();
    wrong.insert("Name", "alibaba-cloud-security-scan-image-9").expect("tag");
    let misnamed = CopyImageInput { tags: wrong, ..copy.clone() };
    assert!(refused(&misnamed).contains("Name tag must be"), "{}", refused(&misnamed));
    assert_eq!(g.backend().calls().len(), 1, "only our image's copy was sent");
}
