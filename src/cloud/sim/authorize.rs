//! IAM in the simulated account: a call is allowed only if every request AWS would authorize for
//! it ([`crate::cloud::authz::requests`]) is allowed by the principal's policies
//! ([`crate::policy::evaluate`]).
//!
//! The operations pass the call rebuilt from the sim's own state — each [`Tagged`] resource with
//! its real tags, each snapshot's real key — so conditions on `ec2:ResourceTag/*` see what AWS
//! would see, whatever the caller believes (a guard fed stale or forged tags cannot widen what
//! the sim allows). Resources are looked up first: an unknown id is `Invalid*.NotFound`, not a
//! denial (INFERENCE: AWS does not document the order; this is the order moto and the teardown's
//! "NotFound means done" rule assume).
//!
//! Errors: EC2 `UnauthorizedOperation`, KMS `AccessDeniedException`, IAM `AccessDenied`, each
//! with AWS's message shape ("User: ... is not authorized to perform: ... on resource: ...") and
//! the evaluator's reason.
//!
//! The KMS requests EC2 makes with the caller's credentials while it creates volumes
//! ([`Origin::OnBehalf`]) are not the caller's own: [`Ctx::authorize_caller`] checks only the
//! caller's requests and hands those back with IAM's verdict, for the operation to settle with
//! the key's policy and grants ([`super::kms::on_behalf`]). `RunInstances` does (a refused one
//! fails the launch, not the call); the other operations use [`Ctx::authorize`], which refuses
//! the call for any denied request.

use crate::cloud::Call;
use crate::cloud::authz::{self, Origin, Scope};
use crate::cloud::error::CloudError;
use crate::cloud::ops::Tagged;
use crate::cloud::tags::Tags;
use crate::policy::evaluate;

use super::Ctx;

/// The error code of a denied `op`.
fn denied_code(call: Call<'_>) -> &'static str {
    match call {
        Call::DescribeKey(_) | Call::CreateGrant(_) | Call::ListGrants(_) | Call::RevokeGrant(_) => {
            "AccessDeniedException"
        }
        Call::GetUser(_) => "AccessDenied",
        // SQS and S3 both answer `AccessDenied` (SQS's JSON protocol: `AccessDenied`; S3: 403 `AccessDenied`).
        Call::GetQueueUrl(_) | Call::ReceiveMessage(_) | Call::GetObject(_) => "AccessDenied",
        Call::GetCallerIdentity(_)
        | Call::DescribeRegions(_)
        | Call::DescribeAvailabilityZones(_)
        | Call::DescribeInstanceTypeOfferings(_)
        | Call::DescribeInstances(_)
        | Call::DescribeVolumes(_)
        | Call::CreateSnapshots(_)
        | Call::CreateSnapshot(_)
        | Call::DescribeSnapshots(_)
        | Call::CopySnapshot(_)
        | Call::ModifySnapshotAttribute(_)
        | Call::DeleteSnapshot(_)
        | Call::CreateVpc(_)
        | Call::CreateSubnet(_)
        | Call::ModifySubnetAttribute(_)
        | Call::CreateInternetGateway(_)
        | Call::AttachInternetGateway(_)
        | Call::DetachInternetGateway(_)
        | Call::DescribeRouteTables(_)
        | Call::CreateRoute(_)
        | Call::CreateSecurityGroup(_)
        | Call::AuthorizeSecurityGroupEgress(_)
        | Call::CreateVpcEndpoint(_)
        | Call::DescribeVpcs(_)
        | Call::DescribeSubnets(_)
        | Call::DescribeSecurityGroups(_)
        | Call::DescribeInternetGateways(_)
        | Call::DescribeVpcEndpoints(_)
        | Call::RunInstances(_)
        | Call::DescribeImages(_)
        | Call::CopyImage(_)
        | Call::TerminateInstances(_)
        | Call::StopInstances(_)
        | Call::DeleteVpcEndpoints(_)
        | Call::DeleteSecurityGroup(_)
        | Call::DeleteSubnet(_)
        | Call::DeleteInternetGateway(_)
        | Call::DeleteVpc(_) => "UnauthorizedOperation",
    }
}

impl Ctx<'_> {
    /// The principal's scope (partition, account, user).
    #[must_use]
    pub fn scope(&self) -> Scope {
        Scope { caller_user: Some(self.user()), ..Scope::new(self.account.clone()) }
    }

    /// The principal's ARN (`arn:aws:iam::<account>:user/<name>`, as `GetCallerIdentity` says).
    #[must_use]
    pub fn caller_arn(&self) -> String {
        let scope = self.scope();
        format!("arn:{}:iam::{}:user/{}", scope.partition, scope.account, self.user())
    }

    /// Authorize `call`, which must carry the sim's real view of every resource it names.
    pub fn authorize(&self, call: Call<'_>) -> Result<(), CloudError> {
        self.check(call, false).map(|_| ())
    }

    /// Authorize the caller's own requests of `call` (a denied one refuses the call); return the
    /// requests made on its behalf, each with the identity policies' verdict.
    pub fn authorize_caller(&self, call: Call<'_>) -> Result<Vec<OnBehalf>, CloudError> {
        self.check(call, true)
    }

    fn check(&self, call: Call<'_>, defer_on_behalf: bool) -> Result<Vec<OnBehalf>, CloudError> {
        let scope = self.scope();
        let requests = authz::requests(&scope, &self.region, call)
            .map_err(|e| self.err("InvalidParameterValue", e.to_string(), Vec::new()))?;
        let mut deferred = Vec::new();
        for r in requests {
            let decision = evaluate(self.policies(), &r.request);
            if defer_on_behalf && r.origin == Origin::OnBehalf {
                deferred.push(OnBehalf {
                    action: r.request.action().to_owned(),
                    resource: r.request.resource().to_owned(),
                    iam_allowed: decision.is_allowed(),
                });
                continue;
            }
            if !decision.is_allowed() {
                let user_arn = self.caller_arn();
                let resource = r.request.resource().to_owned();
                let id = resource.rsplit_once('/').map(|(_, id)| id.to_owned()).filter(|id| id != "*");
                return Err(self.err(
                    denied_code(call),
                    format!(
                        "You are not authorized to perform this operation. User: {user_arn} is not authorized to \
                         perform: {} on resource: {resource} ({} request; {decision})",
                        r.request.action(),
                        r.origin.as_str(),
                    ),
                    id.into_iter().collect(),
                ));
            }
        }
        Ok(deferred)
    }
}

/// A request made on the caller's behalf (a KMS call of EC2), with IAM's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBehalf {
    /// `kms:Decrypt`, `kms:GenerateDataKeyWithoutPlaintext`...
    pub action: String,
    /// The key's ARN.
    pub resource: String,
    /// Whether the caller's identity policies allow it.
    pub iam_allowed: bool,
}

/// `id` with the sim's tags for it.
#[must_use]
pub fn real<Id: Clone>(id: &Id, tags: &Tags) -> Tagged<Id> {
    Tagged::new(id.clone(), tags.clone())
}
