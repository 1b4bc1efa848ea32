//! The policy guard: [`Guard<C>`] wraps any [`Cloud`] backend, evaluates each call's IAM requests
//! ([`crate::cloud::authz`]) against the configured identity policies before sending it, refuses
//! a denied call with [`ErrorKind::PolicyDenied`](super::ErrorKind::PolicyDenied) naming the action,
//! the resource and why, and records every evaluated call in a trace.
//!
//! # Stricter than the policy
//!
//! The custom policy allows writes it cannot confine (`policies/README.md`, "What the tag
//! conditions do not protect against"). The guard adds its own rules ([`GuardRules`]):
//!
//! 1. `ec2:CreateTags` only inside a create call (`ec2:CreateAction` present). The trait has no
//!    tagging operation at all; this rule also stops a request built any other way.
//! 2. Anything that changes or deletes an existing resource — deletes, terminate/stop, detach or
//!    attach a gateway, routes, egress rules, subnet attributes, snapshot permissions, copies of a
//!    snapshot, resources a new subnet/security group/endpoint/scanner goes into, and KMS grant
//!    revocation — only on resources that are ours: `Name` starting with our prefix for that kind
//!    (`SAS_Agentless` for snapshots, `alibaba-cloud-security-scan` for the rest and for grant
//!    names) **and** an `agentless:job` tag. The second half can be switched off
//!    ([`GuardRules::include_foreign`], for a later `audit --include-foreign`); the first cannot.
//!    Reading anything and snapshotting the targets are, of course, allowed.
//! 3. No create call with an empty tag set for anything it creates ([`GuardViolation::EmptyTags`]):
//!    every create in the custom policy is unconditioned, and an untagged resource could never be
//!    told ours by the auditor nor deleted under the policy's `Name` conditions.
//! 4. `kms:CreateGrant` (unconditioned in the policy: any grantee, any operation, on any key whose
//!    key policy defers to IAM) only as the job makes it (`confinement_violations`): the grantee
//!    is the caller (its user ARN when the scope knows it, else a principal of its account),
//!    the operations are among [`OUR_GRANT_OPERATIONS`], the name is ours
//!    (`alibaba-cloud-security-scan-<job>`). The `aws:ebs:id` constraint is always there (the
//!    seam's `CreateGrantInput` cannot omit it); which volume it names is the job's to choose.
//! 5. `ec2:CopyImage` (unconditioned) only of our scanner image (`confinement_violations`): the
//!    source carries our image tags (`Name = alibaba-cloud-security-scan-image-<version>`,
//!    `agentless:image-version = <version>`, as `scanner-ami/image/register.sh` tags it), the copy
//!    is named and tagged on create the same way (`tags::image_tags`, `tags::is_image_name`).
//!
//! # Only way in
//!
//! [`Authorized`] has private fields, so only this module can make one; every [`Cloud`] method
//! requires one. Job code therefore reaches a backend through [`Guard`] or not at all.

use std::sync::{Mutex, PoisonError};

use super::error::{CloudError, PolicyDenial};
use super::ids::Region;
use super::ops::{CopyImageInput, CreateGrantInput, EndpointKind, GrantOperation};
use super::tags::{self, IMAGE_VERSION, JOB, RESOURCE_NAME_PREFIX, SNAPSHOT_NAME_PREFIX, Tags};
use super::{Call, Cloud};
use crate::cloud::authz::{self, AuthzRequest, Origin, Scope};
use crate::policy::{Decision, Policy, Request, evaluate};

/// A guard rule (stricter than the policy) a call breaks, typed; [`CloudError::guard_violation`]
/// carries it on the refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardViolation {
    /// Rule 3: a create call whose tag set for `resource_type` is empty.
    #[error(
        "{operation} in {region}: empty tag set for the new {resource_type}: every resource we create carries our \
         Name and {JOB} tags (an untagged one could not be attributed to a job nor deleted under the policy)"
    )]
    EmptyTags { operation: &'static str, region: Region, resource_type: &'static str },
}

/// Rule 3 for `call`: one violation per created resource type whose tag set is empty.
fn empty_tag_sets(region: &Region, call: Call<'_>) -> Vec<GuardViolation> {
    let sets: Vec<(&'static str, &Tags)> = match call {
        Call::CreateSnapshots(i) => vec![("snapshot", &i.tags)],
        Call::CreateSnapshot(i) => vec![("snapshot", &i.tags)],
        Call::CopySnapshot(i) => vec![("snapshot", &i.tags)],
        Call::CopyImage(i) => vec![("image", &i.tags)],
        Call::CreateVpc(i) => vec![("VPC", &i.tags)],
        Call::CreateSubnet(i) => vec![("subnet", &i.tags)],
        Call::CreateInternetGateway(i) => vec![("internet gateway", &i.tags)],
        Call::CreateSecurityGroup(i) => vec![("security group", &i.tags)],
        Call::CreateVpcEndpoint(i) => vec![("VPC endpoint", &i.tags)],
        Call::RunInstances(i) => vec![
            ("instance", &i.instance_tags),
            ("volume", &i.volume_tags),
            ("network interface", &i.network_interface_tags),
        ],
        // Reads, changes and deletes create nothing; a KMS grant has a name, not tags.
        Call::DescribeRegions(_)
        | Call::DescribeAvailabilityZones(_)
        | Call::DescribeInstanceTypeOfferings(_)
        | Call::GetCallerIdentity(_)
        | Call::GetUser(_)
        | Call::DescribeInstances(_)
        | Call::DescribeVolumes(_)
        | Call::DescribeSnapshots(_)
        | Call::DescribeRouteTables(_)
        | Call::DescribeVpcs(_)
        | Call::DescribeSubnets(_)
        | Call::DescribeSecurityGroups(_)
        | Call::DescribeInternetGateways(_)
        | Call::DescribeVpcEndpoints(_)
        | Call::DescribeImages(_)
        | Call::DescribeKey(_)
        | Call::ListGrants(_)
        | Call::CreateGrant(_)
        | Call::GetQueueUrl(_)
        | Call::ReceiveMessage(_)
        | Call::GetObject(_)
        | Call::ModifySnapshotAttribute(_)
        | Call::DeleteSnapshot(_)
        | Call::ModifySubnetAttribute(_)
        | Call::AttachInternetGateway(_)
        | Call::DetachInternetGateway(_)
        | Call::CreateRoute(_)
        | Call::AuthorizeSecurityGroupEgress(_)
        | Call::TerminateInstances(_)
        | Call::StopInstances(_)
        | Call::DeleteVpcEndpoints(_)
        | Call::DeleteSecurityGroup(_)
        | Call::DeleteSubnet(_)
        | Call::DeleteInternetGateway(_)
        | Call::DeleteVpc(_)
        | Call::RevokeGrant(_) => Vec::new(),
    };
    sets.into_iter()
        .filter(|(_, t)| t.is_empty())
        .map(|(resource_type, _)| GuardViolation::EmptyTags {
            operation: call.name(),
            region: region.clone(),
            resource_type,
        })
        .collect()
}

/// Proof that the guard authorized one call; the only way to call a [`Cloud`] method.
#[derive(Debug)]
pub struct Authorized {
    operation: &'static str,
    region: Region,
}

impl Authorized {
    /// The Region the call was authorized for: the backend must send it there.
    #[must_use]
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The API operation authorized.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.operation
    }
}

/// The guard's own rules (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardRules {
    /// Let changes and deletes through on resources with our `Name` prefix that lack our
    /// `agentless:job` tag (created by another tool using the same names). Off by default.
    pub include_foreign: bool,
}

/// One evaluated request of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    pub request: Request,
    pub origin: Origin,
    pub decision: Decision,
    /// A guard rule that refuses this request although the policy may allow it.
    pub violation: Option<String>,
}

impl Evaluated {
    /// Allowed by the policies and by the guard's rules, or left to a key policy
    /// ([`Evaluated::key_policy_decides`]).
    #[must_use]
    pub fn allowed(&self) -> bool {
        (self.decision.is_allowed() || self.key_policy_decides()) && self.violation.is_none()
    }

    /// A KMS request EC2 makes with our credentials that the identity policies do not allow but
    /// do not deny either: the key's own policy may still allow it (a key policy that names our
    /// principal as a key user), and nothing we may read tells (`kms:GetKeyPolicy` is not in the
    /// custom policy). The guard lets the call go and AWS decides; a refusal fails the launch,
    /// not the call (`policies/README.md`, "Gaps" 2 and "What EC2 asks of KMS for our volumes").
    /// An explicit deny is final, as in AWS's evaluation logic.
    #[must_use]
    pub fn key_policy_decides(&self) -> bool {
        self.origin == Origin::OnBehalf
            && self.violation.is_none()
            && self.request.action().get(..4).is_some_and(|p| p.eq_ignore_ascii_case("kms:"))
            && matches!(self.decision, Decision::ImplicitDeny { .. })
    }

    /// Why it is refused: the guard rule, else the evaluator's decision.
    #[must_use]
    pub fn reason(&self) -> String {
        match &self.violation {
            Some(v) => v.clone(),
            None => self.decision.to_string(),
        }
    }
}

/// One call as the guard saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// The API operation, e.g. `DeleteSnapshot`.
    pub op: &'static str,
    pub region: Region,
    /// Every request the call needs, each with its decision.
    pub requests: Vec<Evaluated>,
    /// Guard rules the call as a whole breaks (resources that are not ours, unbuildable requests).
    pub violations: Vec<String>,
    /// Sent to the backend (every request allowed, no violation).
    pub allowed: bool,
}

impl TraceEntry {
    /// The first refused request, if any.
    #[must_use]
    pub fn first_refused(&self) -> Option<&Evaluated> {
        self.requests.iter().find(|e| !e.allowed())
    }

    /// The error a refused call gets: the first violation or refused request, with the action,
    /// resource and reason.
    #[must_use]
    pub fn refusal(&self) -> Option<PolicyDenial> {
        if self.allowed {
            return None;
        }
        if let Some(v) = self.violations.first() {
            let (action, resource) = self
                .requests
                .iter()
                .find(|e| e.origin == Origin::Caller)
                .map(|e| (e.request.action().to_owned(), e.request.resource().to_owned()))
                .unwrap_or_else(|| (self.op.to_owned(), "*".to_owned()));
            return Some(PolicyDenial { action, resource, reason: v.clone(), deny_reason: None });
        }
        self.first_refused().map(|e| PolicyDenial {
            action: e.request.action().to_owned(),
            resource: e.request.resource().to_owned(),
            reason: e.reason(),
            deny_reason: if e.violation.is_some() { None } else { e.decision.deny_reason() },
        })
    }
}

/// The decision half of the guard: policies, the principal's scope, the rules. `agentless policy
/// check` uses it directly on a call plan; [`Guard`] uses it on every call.
#[derive(Debug, Clone)]
pub struct GuardPolicy {
    policies: Vec<Policy>,
    scope: Scope,
    rules: GuardRules,
}

impl GuardPolicy {
    #[must_use]
    pub fn new(policies: Vec<Policy>, scope: Scope, rules: GuardRules) -> GuardPolicy {
        GuardPolicy { policies, scope, rules }
    }

    #[must_use]
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    #[must_use]
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Evaluate one call: its requests against the policies, and the guard's rules.
    #[must_use]
    pub fn evaluate(&self, region: &Region, call: Call<'_>) -> TraceEntry {
        let mut violations: Vec<String> = empty_tag_sets(region, call).iter().map(ToString::to_string).collect();
        violations.extend(ownership_violations(call, self.rules));
        violations.extend(confinement_violations(&self.scope, call));
        let requests = match authz::requests(&self.scope, region, call) {
            Ok(r) => r,
            Err(e) => {
                violations.push(format!("cannot build the authorization requests: {e}"));
                Vec::new()
            }
        };
        self.entry(call.name(), region, requests, violations)
    }

    /// Evaluate requests built elsewhere as one call named `op` (for requests no operation of the
    /// seam produces, e.g. a bare `ec2:CreateTags`: the guard refuses them too).
    #[must_use]
    pub fn evaluate_requests(&self, op: &'static str, region: &Region, requests: Vec<AuthzRequest>) -> TraceEntry {
        self.entry(op, region, requests, Vec::new())
    }

    fn entry(
        &self,
        op: &'static str,
        region: &Region,
        requests: Vec<AuthzRequest>,
        violations: Vec<String>,
    ) -> TraceEntry {
        let requests: Vec<Evaluated> = requests
            .into_iter()
            .map(|r| Evaluated {
                decision: evaluate(&self.policies, &r.request),
                violation: request_violation(&r.request),
                request: r.request,
                origin: r.origin,
            })
            .collect();
        let allowed = violations.is_empty() && requests.iter().all(Evaluated::allowed);
        TraceEntry { op, region: region.clone(), requests, violations, allowed }
    }
}

/// Rule 1: `ec2:CreateTags` only inside a create call.
fn request_violation(r: &Request) -> Option<String> {
    let is_create_tags = r.action().eq_ignore_ascii_case("ec2:CreateTags");
    (is_create_tags && r.context().get("ec2:CreateAction").is_none()).then(|| {
        "the guard allows ec2:CreateTags only as part of a create call (ec2:CreateAction): \
         tagging an existing resource could make it deletable under the policy"
            .to_owned()
    })
}

/// A resource the call changes or deletes, which must be ours (rule 2).
enum Mine<'a> {
    Tagged { kind: &'static str, id: &'a str, tags: &'a Tags, prefix: &'static str },
    Grant { id: &'a str, name: Option<&'a str> },
}

impl Mine<'_> {
    fn check(&self, rules: GuardRules) -> Option<String> {
        match self {
            Mine::Tagged { kind, id, tags, prefix } => match tags.name() {
                None => Some(format!("{kind} {id} is not ours: it has no Name tag (ours start with \"{prefix}\")")),
                Some(n) if !n.starts_with(prefix) => {
                    Some(format!("{kind} {id} is not ours: its Name \"{n}\" does not start with \"{prefix}\""))
                }
                Some(n) if tags.get(JOB).is_none() && !rules.include_foreign => Some(format!(
                    "{kind} {id} (Name \"{n}\") has no {JOB} tag: created by another tool with our name prefix? \
                     (allowed only with --include-foreign)"
                )),
                Some(_) => None,
            },
            Mine::Grant { id, name } => match name {
                Some(n) if n.starts_with(RESOURCE_NAME_PREFIX) => None,
                Some(n) => Some(format!(
                    "KMS grant {id} is not ours: its name \"{n}\" does not start with \"{RESOURCE_NAME_PREFIX}\""
                )),
                None => Some(format!(
                    "KMS grant {id} is not ours: it has no name (ours are named \"{RESOURCE_NAME_PREFIX}-<job>\")"
                )),
            },
        }
    }
}

fn snap<'a>(id: &'a str, tags: &'a Tags) -> Mine<'a> {
    Mine::Tagged { kind: "snapshot", id, tags, prefix: SNAPSHOT_NAME_PREFIX }
}

fn res<'a>(kind: &'static str, id: &'a str, tags: &'a Tags) -> Mine<'a> {
    Mine::Tagged { kind, id, tags, prefix: RESOURCE_NAME_PREFIX }
}

/// Rule 2 for `call`.
fn ownership_violations(call: Call<'_>, rules: GuardRules) -> Vec<String> {
    let mine: Vec<Mine<'_>> = match call {
        // Reads, and the calls that only create (the creates' tags are checked by the policy's
        // own tag conditions at delete time; what they create is ours by construction).
        Call::DescribeRegions(_)
        | Call::DescribeAvailabilityZones(_)
        | Call::DescribeInstanceTypeOfferings(_)
        | Call::GetCallerIdentity(_)
        | Call::GetUser(_)
        | Call::DescribeInstances(_)
        | Call::DescribeVolumes(_)
        | Call::DescribeSnapshots(_)
        | Call::DescribeRouteTables(_)
        | Call::DescribeVpcs(_)
        | Call::DescribeSubnets(_)
        | Call::DescribeSecurityGroups(_)
        | Call::DescribeInternetGateways(_)
        | Call::DescribeVpcEndpoints(_)
        | Call::DescribeImages(_)
        | Call::DescribeKey(_)
        | Call::ListGrants(_)
        | Call::CreateVpc(_)
        | Call::CreateInternetGateway(_)
        | Call::CreateGrant(_) => Vec::new(),
        // The pipeline's queue and the trail bucket are the account's, read only.
        Call::GetQueueUrl(_) | Call::ReceiveMessage(_) | Call::GetObject(_) => Vec::new(),
        // Snapshotting the targets is the point: their instances and volumes are not ours.
        Call::CreateSnapshots(_) | Call::CreateSnapshot(_) => Vec::new(),
        // The scanner AMI is the publisher's.
        Call::CopyImage(_) => Vec::new(),
        Call::CopySnapshot(i) => vec![snap(i.source.id.as_str(), &i.source.tags)],
        Call::ModifySnapshotAttribute(i) => vec![snap(i.snapshot.id.as_str(), &i.snapshot.tags)],
        Call::DeleteSnapshot(i) => vec![snap(i.snapshot.id.as_str(), &i.snapshot.tags)],
        Call::CreateSubnet(i) => vec![res("VPC", i.vpc.id.as_str(), &i.vpc.tags)],
        Call::ModifySubnetAttribute(i) => vec![res("subnet", i.subnet.id.as_str(), &i.subnet.tags)],
        Call::AttachInternetGateway(i) => vec![
            res("internet gateway", i.internet_gateway.id.as_str(), &i.internet_gateway.tags),
            res("VPC", i.vpc.id.as_str(), &i.vpc.tags),
        ],
        Call::DetachInternetGateway(i) => vec![
            res("internet gateway", i.internet_gateway.id.as_str(), &i.internet_gateway.tags),
            res("VPC", i.vpc.id.as_str(), &i.vpc.tags),
        ],
        // The main route table is created by AWS with the VPC and carries no tags: the VPC must
        // be ours.
        Call::CreateRoute(i) => vec![res("VPC", i.vpc.id.as_str(), &i.vpc.tags)],
        Call::CreateSecurityGroup(i) => vec![res("VPC", i.vpc.id.as_str(), &i.vpc.tags)],
        Call::AuthorizeSecurityGroupEgress(i) => vec![res("security group", i.group.id.as_str(), &i.group.tags)],
        Call::CreateVpcEndpoint(i) => {
            let mut v = vec![res("VPC", i.vpc.id.as_str(), &i.vpc.tags)];
            match &i.kind {
                EndpointKind::Interface { subnets, security_groups } => {
                    v.extend(subnets.iter().map(|s| res("subnet", s.id.as_str(), &s.tags)));
                    v.extend(security_groups.iter().map(|g| res("security group", g.id.as_str(), &g.tags)));
                }
                // The main route table carries no tags; the VPC check above covers it.
                EndpointKind::Gateway { .. } => {}
            }
            v
        }
        Call::RunInstances(i) => {
            let mut v = vec![res("subnet", i.subnet.id.as_str(), &i.subnet.tags)];
            v.extend(i.security_groups.iter().map(|g| res("security group", g.id.as_str(), &g.tags)));
            v.extend(i.volumes.iter().map(|x| snap(x.snapshot.id.as_str(), &x.snapshot.tags)));
            v
        }
        Call::TerminateInstances(i) => i.instances.iter().map(|x| res("instance", x.id.as_str(), &x.tags)).collect(),
        Call::StopInstances(i) => i.instances.iter().map(|x| res("instance", x.id.as_str(), &x.tags)).collect(),
        Call::DeleteVpcEndpoints(i) => {
            i.endpoints.iter().map(|x| res("VPC endpoint", x.id.as_str(), &x.tags)).collect()
        }
        Call::DeleteSecurityGroup(i) => vec![res("security group", i.group.id.as_str(), &i.group.tags)],
        Call::DeleteSubnet(i) => vec![res("subnet", i.subnet.id.as_str(), &i.subnet.tags)],
        Call::DeleteInternetGateway(i) => {
            vec![res("internet gateway", i.internet_gateway.id.as_str(), &i.internet_gateway.tags)]
        }
        Call::DeleteVpc(i) => vec![res("VPC", i.vpc.id.as_str(), &i.vpc.tags)],
        Call::RevokeGrant(i) => vec![Mine::Grant { id: i.grant_id.as_str(), name: i.grant_name.as_deref() }],
    };
    mine.iter().filter_map(|m| m.check(rules)).collect()
}

/// The operations a KMS grant of ours may allow: those AWS lists as needed to use a customer
/// managed key for EBS (`kms:CreateGrant`, `kms:Decrypt`, `kms:DescribeKey`,
/// `kms:GenerateDataKeyWithoutPlainText`, `kms:ReEncrypt`: EBS User Guide, "Requirements for
/// Amazon EBS encryption", "Permissions for users"; `policies/README.md`, "What EC2 asks of KMS
/// for our volumes", fact 4), `ReEncrypt` as its source half only (the key is the snapshot's).
pub const OUR_GRANT_OPERATIONS: [GrantOperation; 5] = [
    GrantOperation::Decrypt,
    GrantOperation::DescribeKey,
    GrantOperation::CreateGrant,
    GrantOperation::GenerateDataKeyWithoutPlaintext,
    GrantOperation::ReEncryptFrom,
];

/// Rules 4 and 5 for `call`.
fn confinement_violations(scope: &Scope, call: Call<'_>) -> Vec<String> {
    match call {
        Call::CreateGrant(i) => grant_violations(scope, i),
        Call::CopyImage(i) => copy_image_violations(i),
        _ => Vec::new(),
    }
}

/// Rule 4.
fn grant_violations(scope: &Scope, i: &CreateGrantInput) -> Vec<String> {
    let mut v = Vec::new();
    let grantee = i.grantee_principal.as_str();
    let is_caller = match scope.caller_user_arn() {
        Some(me) => grantee == me,
        None => scope.is_account_principal(grantee),
    };
    if !is_caller {
        v.push(format!(
            "a KMS grant of ours is for the caller only; {grantee} is not the caller{}",
            scope.caller_user_arn().map(|me| format!(" ({me})")).unwrap_or_default()
        ));
    }
    let extra: Vec<&str> =
        i.operations.iter().filter(|o| !OUR_GRANT_OPERATIONS.contains(o)).map(|o| o.as_str()).collect();
    if !extra.is_empty() {
        v.push(format!(
            "a KMS grant of ours allows only the operations EBS needs ({}); not {}",
            OUR_GRANT_OPERATIONS.map(GrantOperation::as_str).join(", "),
            extra.join(", ")
        ));
    }
    if i.operations.is_empty() {
        v.push("a KMS grant of ours names its operations; this one names none".to_owned());
    }
    if !i.name.starts_with(&format!("{RESOURCE_NAME_PREFIX}-")) {
        v.push(format!("a KMS grant of ours is named \"{RESOURCE_NAME_PREFIX}-<job>\"; not \"{}\"", i.name));
    }
    v
}

/// Rule 5.
fn copy_image_violations(i: &CopyImageInput) -> Vec<String> {
    let mut v = Vec::new();
    let Some(version) = i.tags.get(IMAGE_VERSION) else {
        return vec![format!(
            "CopyImage copies only our scanner image, tagged on create with {IMAGE_VERSION}; the copy's tags lack it"
        )];
    };
    let want = tags::image_name(version);
    if i.tags.name() != Some(want.as_str()) {
        v.push(format!("the copied image's Name tag must be \"{want}\", not {:?}", i.tags.name()));
    }
    if !tags::is_image_name(&i.name, version) {
        v.push(format!("the copied image must be named \"{want}[-<suffix>]\", not \"{}\"", i.name));
    }
    let source_ours = i.source.tags.name() == Some(want.as_str()) && i.source.tags.get(IMAGE_VERSION) == Some(version);
    if !source_ours {
        v.push(format!(
            "CopyImage copies only our scanner image: the source {} is not tagged Name = \"{want}\" and {IMAGE_VERSION} = \"{version}\"",
            i.source.id
        ));
    }
    v
}

/// Told the outcome of every call the guard handled (the daemon's metrics: calls by action and
/// outcome, throttling): the operation name, its Region, and `Ok` or the error (a refusal by the
/// guard included).
pub type CallObserver = std::sync::Arc<dyn Fn(&'static str, &Region, Result<(), &CloudError>) + Send + Sync>;

/// Told each call the guard allowed, just before it is sent: the CloudTrail cross-check records
/// what our principal sends here, to tell its own calls from someone else's in the trail.
pub type CallRecorder = std::sync::Arc<dyn Fn(&Region, Call<'_>) + Send + Sync>;

/// Any backend, behind the policy guard. Its methods (generated in `cloud/mod.rs`, one per
/// operation) authorize, record and forward.
pub struct Guard<C: Cloud> {
    inner: C,
    policy: GuardPolicy,
    trace: Mutex<Vec<TraceEntry>>,
    /// Record the trace (off in the daemon, which runs for months: its metrics count calls).
    keep_trace: bool,
    pacer: Option<std::sync::Arc<super::pacer::Pacer>>,
    observer: Option<CallObserver>,
    recorder: std::sync::OnceLock<CallRecorder>,
}

impl<C: Cloud + std::fmt::Debug> std::fmt::Debug for Guard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("keep_trace", &self.keep_trace)
            .field("pacer", &self.pacer)
            .finish_non_exhaustive()
    }
}

impl<C: Cloud> Guard<C> {
    #[must_use]
    pub fn new(inner: C, policy: GuardPolicy) -> Guard<C> {
        Guard {
            inner,
            policy,
            trace: Mutex::new(Vec::new()),
            keep_trace: true,
            pacer: None,
            observer: None,
            recorder: std::sync::OnceLock::new(),
        }
    }

    /// Do not keep the trace of calls ([`Guard::trace`] stays empty): for a long-running process.
    #[must_use]
    pub fn without_trace(mut self) -> Guard<C> {
        self.keep_trace = false;
        self
    }

    /// Tell `observer` the outcome of every call.
    #[must_use]
    pub fn with_observer(mut self, observer: CallObserver) -> Guard<C> {
        self.observer = Some(observer);
        self
    }

    /// Tell `recorder` every allowed call before it is sent, from now on. A guard has one
    /// recorder for its life: `false` (and nothing changed) if it already has one.
    pub fn set_recorder(&self, recorder: CallRecorder) -> bool {
        self.recorder.set(recorder).is_ok()
    }

    /// Report an allowed call to the recorder (no-op without one).
    pub(super) fn record_call(&self, region: &Region, call: Call<'_>) {
        if let Some(r) = self.recorder.get() {
            r(region, call);
        }
    }

    /// Report a call's outcome to the observer (no-op without one).
    pub(super) fn observe(&self, op: &'static str, region: &Region, outcome: Result<(), &CloudError>) {
        if let Some(o) = &self.observer {
            o(op, region, outcome);
        }
    }

    /// The client-side token buckets, if any.
    #[must_use]
    pub fn pacer(&self) -> Option<&std::sync::Arc<super::pacer::Pacer>> {
        self.pacer.as_ref()
    }

    /// Pace every allowed call through these client-side token buckets before it is sent
    /// ([`super::pacer`]).
    #[must_use]
    pub fn with_pacer(mut self, pacer: std::sync::Arc<super::pacer::Pacer>) -> Guard<C> {
        self.pacer = Some(pacer);
        self
    }

    /// Wait for the call's client-side tokens (no-op without a pacer).
    pub(super) async fn pace(&self, region: &Region, call: Call<'_>) {
        if let Some(p) = &self.pacer {
            p.pace(region, call).await;
        }
    }

    #[must_use]
    pub fn policy(&self) -> &GuardPolicy {
        &self.policy
    }

    /// Every call evaluated so far, allowed or refused, in order.
    #[must_use]
    pub fn trace(&self) -> Vec<TraceEntry> {
        self.trace.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The trace so far, leaving it empty.
    pub fn take_trace(&self) -> Vec<TraceEntry> {
        std::mem::take(&mut *self.trace.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Evaluate and record `call`; the token for the backend if it is allowed.
    pub(super) fn authorize(&self, region: &Region, call: Call<'_>) -> Result<Authorized, CloudError> {
        let entry = self.policy.evaluate(region, call);
        let refusal = entry.refusal();
        let ids = refusal
            .iter()
            .filter_map(|d| d.resource.rsplit_once('/').map(|(_, id)| id.to_owned()))
            .filter(|id| id != "*")
            .collect();
        if self.keep_trace {
            self.trace.lock().unwrap_or_else(PoisonError::into_inner).push(entry);
        }
        match refusal {
            Some(denial) => {
                let err = CloudError::policy_denied(call.name(), region.clone(), ids, denial);
                Err(match empty_tag_sets(region, call).into_iter().next() {
                    Some(v) => err.with_guard_violation(v),
                    None => err,
                })
            }
            None => Ok(Authorized { operation: call.name(), region: region.clone() }),
        }
    }

    /// The backend, for reading its own state (e.g. what a dry run received). Safe to hand out:
    /// without an [`Authorized`] token none of its [`Cloud`] methods can be called.
    #[must_use]
    pub fn backend(&self) -> &C {
        &self.inner
    }
}
