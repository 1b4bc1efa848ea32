//! What AWS authorizes for each operation of the cloud seam: the IAM request(s) — action, resource
//! ARN, context keys — that one call of [`crate::cloud::Cloud`] turns into. The policy guard
//! (`cloud::guard`) evaluates exactly these before sending a call, and `agentless policy check`
//! evaluates them for a whole call plan.
//!
//! # Sources
//!
//! - Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2"
//!   (<https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html>):
//!   the resource types of each action, e.g. `RunInstances` on image, instance, network-interface,
//!   security-group, subnet, volume (required) and snapshot (when a block device names one);
//!   `CreateSnapshots` on instance, snapshot and volume; `Describe*` without resource types (`*`).
//! - Same reference for AWS KMS (`list_awskeymanagementservice.html`): every key operation on
//!   `arn:aws:kms:<region>:<account>:key/<id>`; and for IAM: `GetUser` on
//!   `arn:aws:iam::<account>:user/<name>`.
//! - EC2 User Guide, "Grant permission to tag resources during creation"
//!   (`supported-iam-actions-tagging.html`) and "Example policies for working with the AWS CLI or
//!   an AWS SDK" (`ExamplePolicies_EC2.html`): a create call with `TagSpecifications` is also
//!   authorized as `ec2:CreateTags` on each new resource, with `ec2:CreateAction` = the create
//!   API's name; `aws:RequestTag/<key>` and `aws:TagKeys` describe the requested tags; the new
//!   resource's ARN ends in `/*` (e.g. `arn:aws:ec2:us-east-1::snapshot/*`); snapshots and images
//!   have owner-less ARNs (`arn:aws:ec2:<region>::snapshot/<id>`, `...::image/<id>`).
//! - EBS User Guide, "Amazon EBS encryption": "How EBS encryption works when the snapshot is
//!   encrypted" (EC2 sends `GenerateDataKeyWithoutPlaintext`, then `CreateGrant`, to KMS when it
//!   creates a volume from an encrypted snapshot) and "Permissions for IAM users" (`kms:CreateGrant`,
//!   `kms:Decrypt`, `kms:DescribeKey`, `kms:GenerateDataKeyWithoutPlainText`, `kms:ReEncrypt` are
//!   needed to use EBS encryption with a customer managed key).
//! - KMS Developer Guide, "AWS KMS condition keys" (`conditions-kms.html`): `kms:GrantOperations`,
//!   `kms:GranteePrincipal`, `kms:GrantConstraintType`, `kms:EncryptionContext:<key>` and
//!   `kms:EncryptionContextKeys` on `CreateGrant` (they read the grant's constraint),
//!   `kms:GrantIsForAWSResource` (true only when an AWS service creates the grant for us),
//!   `kms:ViaService`, `kms:CallerAccount`.
//! - STS API Reference, `GetCallerIdentity`: "No permissions are required to perform this
//!   operation" — it yields no request.
//!
//! # Inferences
//!
//! Marked `INFERENCE` where they are made. The main ones: (1) the KMS requests EC2/EBS make with
//! our credentials ([`Origin::OnBehalf`]) for volumes created from, and copies of, snapshots under
//! a customer managed key: AWS documents the list of needed actions and the flow for a new
//! volume, not a per-API list, so each mapping below follows that flow (policies/README.md, "What
//! EC2 asks of KMS for our volumes", which separates the documented facts from inferences (a)-(e));
//! (2) `CopySnapshot` and `CopyImage` are authorized on the source as well as the new resource
//! (newer IAM behaviour; older EC2 examples say the source is not checked); (3) `CreateRoute` is
//! authorized on the route table only, not on the gateway it points to.
//!
//! The tags in each request are the ones the call carries (`Tagged::tags`: the caller's knowledge
//! of the resource, from the ledger or a Describe); `ec2:ResourceTag/<key>` and the equivalent
//! global `aws:ResourceTag/<key>` are both set.

use crate::cloud::Call;
use crate::cloud::ids::{AccountId, KmsKeyId, Region};
use crate::cloud::ops::{EndpointKind, PermissionChange};
use crate::cloud::tags::Tags;
use crate::policy::context::{Request, RequestError};

/// Where the requests of a call are evaluated: the partition and account of the principal, and
/// its IAM user name (for `GetUser` without a name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `aws` (or `aws-cn`, `aws-us-gov`).
    pub partition: String,
    pub account: AccountId,
    /// The calling IAM user's name, from `GetCallerIdentity`; `None` for role credentials.
    pub caller_user: Option<String>,
}

impl Scope {
    /// The `aws` partition.
    #[must_use]
    pub fn new(account: AccountId) -> Scope {
        Scope { partition: "aws".to_owned(), account, caller_user: None }
    }

    /// The caller's IAM user ARN (`arn:<partition>:iam::<account>:user/<name>`), when it is a user.
    #[must_use]
    pub fn caller_user_arn(&self) -> Option<String> {
        self.caller_user.as_ref().map(|u| format!("arn:{}:iam::{}:user/{u}", self.partition, self.account))
    }

    /// Whether `arn` is a principal of this account: an IAM user or role, or an STS session of
    /// one (`arn:<partition>:iam::<account>:...`, `arn:<partition>:sts::<account>:assumed-role/...`).
    #[must_use]
    pub fn is_account_principal(&self, arn: &str) -> bool {
        let iam = format!("arn:{}:iam::{}:", self.partition, self.account);
        let sts = format!("arn:{}:sts::{}:assumed-role/", self.partition, self.account);
        arn.starts_with(&iam) || arn.starts_with(&sts)
    }
}

/// Who sends the request to AWS's authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The API call itself.
    Caller,
    /// The implicit `ec2:CreateTags` of a create call's `TagSpecifications`.
    TagOnCreate,
    /// A KMS call EC2/EBS makes with our credentials while doing the call (forward access; the
    /// request carries `kms:ViaService`).
    OnBehalf,
}

impl Origin {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Caller => "call",
            Origin::TagOnCreate => "tag-on-create",
            Origin::OnBehalf => "on-behalf",
        }
    }
}

/// One request AWS authorizes for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzRequest {
    pub request: Request,
    pub origin: Origin,
}

/// Why the requests of a call could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("GetUser without a user name needs the caller's IAM user name (AWS refuses it for role credentials)")]
    NoUser,
    #[error("queue URL \"{0}\" does not end in /<12-digit account>/<queue name>: cannot name the queue's ARN")]
    QueueUrl(String),
}

/// The requests AWS authorizes for `call` in `region`.
pub fn requests(scope: &Scope, region: &Region, call: Call<'_>) -> Result<Vec<AuthzRequest>, AuthzError> {
    let mut b = Builder { scope, region, out: Vec::new() };
    match call {
        Call::DescribeRegions(_) => b.anywhere("ec2:DescribeRegions")?,
        Call::DescribeAvailabilityZones(_) => b.anywhere("ec2:DescribeAvailabilityZones")?,
        Call::DescribeInstanceTypeOfferings(_) => b.anywhere("ec2:DescribeInstanceTypeOfferings")?,
        Call::GetCallerIdentity(_) => {}
        Call::GetUser(i) => {
            let name = i.user_name.as_deref().or(scope.caller_user.as_deref()).ok_or(AuthzError::NoUser)?;
            let arn = format!("arn:{}:iam::{}:user/{name}", scope.partition, scope.account);
            b.push(Origin::Caller, Request::new("iam:GetUser", arn)?);
        }
        Call::DescribeInstances(_) => b.anywhere("ec2:DescribeInstances")?,
        Call::DescribeVolumes(_) => b.anywhere("ec2:DescribeVolumes")?,
        Call::CreateSnapshots(i) => {
            const A: &str = "ec2:CreateSnapshots";
            b.existing(A, b.ec2("instance", i.instance.id.as_str()), &i.instance.tags)?;
            for v in &i.volumes {
                b.existing(A, b.ec2("volume", v.id.as_str()), &v.tags)?;
            }
            b.create(A, "CreateSnapshots", b.ownerless(region, "snapshot", "*"), &i.tags)?;
        }
        Call::CreateSnapshot(i) => {
            const A: &str = "ec2:CreateSnapshot";
            b.existing(A, b.ec2("volume", i.volume.id.as_str()), &i.volume.tags)?;
            b.create(A, "CreateSnapshot", b.ownerless(region, "snapshot", "*"), &i.tags)?;
        }
        Call::DescribeSnapshots(_) => b.anywhere("ec2:DescribeSnapshots")?,
        Call::CopySnapshot(i) => {
            const A: &str = "ec2:CopySnapshot";
            b.create(A, "CopySnapshot", b.ownerless(region, "snapshot", "*"), &i.tags)?;
            // INFERENCE (2): the source snapshot is authorized too, in its own Region.
            b.existing(A, b.ownerless(&i.source_region, "snapshot", i.source.id.as_str()), &i.source.tags)?;
            // INFERENCE (1): re-encryption. From the source key (if customer managed) to the
            // destination key; a new data key under the destination key, and EBS's grant on it.
            if let Some(source_key) = &i.source_kms_key {
                b.on_behalf("kms:ReEncryptFrom", source_key, &i.source_region)?;
            }
            if let (true, Some(dest_key)) = (i.encrypted, &i.kms_key_id) {
                if i.source_kms_key.is_some() {
                    b.on_behalf("kms:ReEncryptTo", dest_key, region)?;
                }
                b.new_volume_key(dest_key, region)?;
            }
        }
        Call::ModifySnapshotAttribute(i) => {
            let arn = b.ownerless(region, "snapshot", i.snapshot.id.as_str());
            let key = match i.change {
                PermissionChange::Add => "ec2:Add/userId",
                PermissionChange::Remove => "ec2:Remove/userId",
            };
            let r = resource_tags(Request::new("ec2:ModifySnapshotAttribute", arn)?, &i.snapshot.tags)
                .with(key, i.account.as_str())
                .with("ec2:Attribute", "createVolumePermission");
            b.push(Origin::Caller, r);
        }
        Call::DeleteSnapshot(i) => {
            b.existing(
                "ec2:DeleteSnapshot",
                b.ownerless(region, "snapshot", i.snapshot.id.as_str()),
                &i.snapshot.tags,
            )?;
        }
        Call::CreateVpc(i) => b.create("ec2:CreateVpc", "CreateVpc", b.ec2("vpc", "*"), &i.tags)?,
        Call::CreateSubnet(i) => {
            b.create("ec2:CreateSubnet", "CreateSubnet", b.ec2("subnet", "*"), &i.tags)?;
            b.existing("ec2:CreateSubnet", b.ec2("vpc", i.vpc.id.as_str()), &i.vpc.tags)?;
        }
        Call::ModifySubnetAttribute(i) => {
            b.existing("ec2:ModifySubnetAttribute", b.ec2("subnet", i.subnet.id.as_str()), &i.subnet.tags)?;
        }
        Call::CreateInternetGateway(i) => {
            b.create("ec2:CreateInternetGateway", "CreateInternetGateway", b.ec2("internet-gateway", "*"), &i.tags)?;
        }
        Call::AttachInternetGateway(i) => {
            const A: &str = "ec2:AttachInternetGateway";
            b.existing(A, b.ec2("internet-gateway", i.internet_gateway.id.as_str()), &i.internet_gateway.tags)?;
            b.existing(A, b.ec2("vpc", i.vpc.id.as_str()), &i.vpc.tags)?;
        }
        Call::DetachInternetGateway(i) => {
            const A: &str = "ec2:DetachInternetGateway";
            b.existing(A, b.ec2("internet-gateway", i.internet_gateway.id.as_str()), &i.internet_gateway.tags)?;
            b.existing(A, b.ec2("vpc", i.vpc.id.as_str()), &i.vpc.tags)?;
        }
        Call::DescribeRouteTables(_) => b.anywhere("ec2:DescribeRouteTables")?,
        Call::CreateRoute(i) => {
            // INFERENCE (3): on the route table only.
            b.existing("ec2:CreateRoute", b.ec2("route-table", i.route_table.id.as_str()), &i.route_table.tags)?;
        }
        Call::CreateSecurityGroup(i) => {
            b.create("ec2:CreateSecurityGroup", "CreateSecurityGroup", b.ec2("security-group", "*"), &i.tags)?;
            b.existing("ec2:CreateSecurityGroup", b.ec2("vpc", i.vpc.id.as_str()), &i.vpc.tags)?;
        }
        Call::AuthorizeSecurityGroupEgress(i) => {
            b.existing(
                "ec2:AuthorizeSecurityGroupEgress",
                b.ec2("security-group", i.group.id.as_str()),
                &i.group.tags,
            )?;
        }
        Call::CreateVpcEndpoint(i) => {
            const A: &str = "ec2:CreateVpcEndpoint";
            b.create(A, "CreateVpcEndpoint", b.ec2("vpc-endpoint", "*"), &i.tags)?;
            b.existing(A, b.ec2("vpc", i.vpc.id.as_str()), &i.vpc.tags)?;
            match &i.kind {
                EndpointKind::Interface { subnets, security_groups } => {
                    for s in subnets {
                        b.existing(A, b.ec2("subnet", s.id.as_str()), &s.tags)?;
                    }
                    for g in security_groups {
                        b.existing(A, b.ec2("security-group", g.id.as_str()), &g.tags)?;
                    }
                }
                EndpointKind::Gateway { route_tables } => {
                    for r in route_tables {
                        b.existing(A, b.ec2("route-table", r.id.as_str()), &r.tags)?;
                    }
                }
            }
        }
        Call::DescribeVpcs(_) => b.anywhere("ec2:DescribeVpcs")?,
        Call::DescribeSubnets(_) => b.anywhere("ec2:DescribeSubnets")?,
        Call::DescribeSecurityGroups(_) => b.anywhere("ec2:DescribeSecurityGroups")?,
        Call::DescribeInternetGateways(_) => b.anywhere("ec2:DescribeInternetGateways")?,
        Call::DescribeVpcEndpoints(_) => b.anywhere("ec2:DescribeVpcEndpoints")?,
        Call::RunInstances(i) => {
            const A: &str = "ec2:RunInstances";
            b.existing(A, b.ownerless(region, "image", i.image.id.as_str()), &i.image.tags)?;
            b.create(A, "RunInstances", b.ec2("instance", "*"), &i.instance_tags)?;
            b.create(A, "RunInstances", b.ec2("volume", "*"), &i.volume_tags)?;
            b.create(A, "RunInstances", b.ec2("network-interface", "*"), &i.network_interface_tags)?;
            b.existing(A, b.ec2("subnet", i.subnet.id.as_str()), &i.subnet.tags)?;
            for g in &i.security_groups {
                b.existing(A, b.ec2("security-group", g.id.as_str()), &g.tags)?;
            }
            // Per customer managed key (once per key, as IAM sees the same request for each volume).
            let mut keys: Vec<&KmsKeyId> = Vec::new();
            for v in &i.volumes {
                b.existing(A, b.ownerless(region, "snapshot", v.snapshot.id.as_str()), &v.snapshot.tags)?;
                if let Some(k) = &v.kms_key
                    && !keys.contains(&k)
                {
                    keys.push(k);
                }
            }
            // A volume from a snapshot under a customer managed key, same key: EC2 sends
            // GenerateDataKeyWithoutPlaintext and CreateGrant with our credentials; the Decrypt at
            // attach is made by EC2's infrastructure role under that grant, not by us
            // (policies/README.md, "What EC2 asks of KMS for our volumes", facts 1 and 3,
            // INFERENCE (a), (b)). No grant of ours covers them: their encryption context names
            // the new volume (INFERENCE (c)).
            for k in keys {
                b.new_volume_key(k, region)?;
            }
        }
        Call::DescribeImages(_) => b.anywhere("ec2:DescribeImages")?,
        Call::CopyImage(i) => {
            const A: &str = "ec2:CopyImage";
            b.create(A, "CopyImage", b.ownerless(region, "image", "*"), &i.tags)?;
            // CopyImage's TagSpecifications also tag the new image's snapshots.
            b.tag_on_create("CopyImage", b.ownerless(region, "snapshot", "*"), &i.tags)?;
            // INFERENCE (2): the source image too.
            b.existing(A, b.ownerless(&i.source_region, "image", i.source.id.as_str()), &i.source.tags)?;
            if let (true, Some(k)) = (i.encrypted, &i.kms_key_id) {
                b.new_volume_key(k, region)?;
            }
        }
        Call::TerminateInstances(i) => {
            for x in &i.instances {
                b.existing("ec2:TerminateInstances", b.ec2("instance", x.id.as_str()), &x.tags)?;
            }
        }
        Call::StopInstances(i) => {
            for x in &i.instances {
                b.existing("ec2:StopInstances", b.ec2("instance", x.id.as_str()), &x.tags)?;
            }
        }
        Call::DeleteVpcEndpoints(i) => {
            for e in &i.endpoints {
                b.existing("ec2:DeleteVpcEndpoints", b.ec2("vpc-endpoint", e.id.as_str()), &e.tags)?;
            }
        }
        Call::DeleteSecurityGroup(i) => {
            b.existing("ec2:DeleteSecurityGroup", b.ec2("security-group", i.group.id.as_str()), &i.group.tags)?;
        }
        Call::DeleteSubnet(i) => {
            b.existing("ec2:DeleteSubnet", b.ec2("subnet", i.subnet.id.as_str()), &i.subnet.tags)?
        }
        Call::DeleteInternetGateway(i) => {
            let arn = b.ec2("internet-gateway", i.internet_gateway.id.as_str());
            b.existing("ec2:DeleteInternetGateway", arn, &i.internet_gateway.tags)?;
        }
        Call::DeleteVpc(i) => b.existing("ec2:DeleteVpc", b.ec2("vpc", i.vpc.id.as_str()), &i.vpc.tags)?,
        Call::DescribeKey(i) => b.push(Origin::Caller, b.kms("kms:DescribeKey", &i.key, region)?),
        Call::CreateGrant(i) => {
            let mut r = b
                .kms("kms:CreateGrant", &i.key, region)?
                .with("kms:GranteePrincipal", i.grantee_principal.as_str())
                .with("kms:GrantIsForAWSResource", "false")
                .with("kms:GrantConstraintType", "EncryptionContextSubset")
                .with("kms:EncryptionContext:aws:ebs:id", i.ebs_id.as_str())
                .with("kms:EncryptionContextKeys", "aws:ebs:id");
            r.context_mut().set("kms:GrantOperations", i.operations.iter().map(|o| o.as_str()));
            b.push(Origin::Caller, r);
        }
        Call::ListGrants(i) => b.push(Origin::Caller, b.kms("kms:ListGrants", &i.key, region)?),
        Call::RevokeGrant(i) => b.push(Origin::Caller, b.kms("kms:RevokeGrant", &i.key, region)?),
        Call::GetQueueUrl(i) => {
            let owner = i.owner.as_ref().unwrap_or(&scope.account);
            let arn = format!("arn:{}:sqs:{region}:{owner}:{}", scope.partition, i.queue_name);
            b.push(Origin::Caller, Request::new("sqs:GetQueueUrl", arn)?);
        }
        Call::ReceiveMessage(i) => {
            let (owner, name) = i.queue.account_and_name().ok_or_else(|| AuthzError::QueueUrl(i.queue.url.clone()))?;
            let arn = format!("arn:{}:sqs:{region}:{owner}:{name}", scope.partition);
            b.push(Origin::Caller, Request::new("sqs:ReceiveMessage", arn)?);
        }
        // S3 object ARNs carry neither Region nor account (Service Authorization Reference,
        // "Actions, resources, and condition keys for Amazon S3": `arn:${Partition}:s3:::${BucketName}/${ObjectName}`).
        Call::GetObject(i) => {
            let arn = format!("arn:{}:s3:::{}/{}", scope.partition, i.bucket, i.key);
            b.push(Origin::Caller, Request::new("s3:GetObject", arn)?);
        }
    }
    Ok(b.out)
}

/// `ec2:ResourceTag/<key>` and `aws:ResourceTag/<key>` for every tag.
fn resource_tags(mut r: Request, tags: &Tags) -> Request {
    for t in tags.iter() {
        r = r
            .with(format!("ec2:ResourceTag/{}", t.key), t.value.as_str())
            .with(format!("aws:ResourceTag/{}", t.key), t.value.as_str());
    }
    r
}

/// `aws:RequestTag/<key>` for every tag and `aws:TagKeys` for all keys.
fn request_tags(mut r: Request, tags: &Tags) -> Request {
    for t in tags.iter() {
        r = r.with(format!("aws:RequestTag/{}", t.key), t.value.as_str());
    }
    r.context_mut().set("aws:TagKeys", tags.keys());
    r
}

struct Builder<'a> {
    scope: &'a Scope,
    region: &'a Region,
    out: Vec<AuthzRequest>,
}

impl Builder<'_> {
    fn push(&mut self, origin: Origin, request: Request) {
        self.out.push(AuthzRequest { request, origin });
    }

    /// An action without resource-level permissions (`Describe*`): resource `*`.
    fn anywhere(&mut self, action: &str) -> Result<(), AuthzError> {
        self.push(Origin::Caller, Request::new(action, "*")?);
        Ok(())
    }

    /// `arn:<p>:ec2:<region>:<account>:<kind>/<id>` in the call's Region.
    fn ec2(&self, kind: &str, id: &str) -> String {
        format!("arn:{}:ec2:{}:{}:{kind}/{id}", self.scope.partition, self.region, self.scope.account)
    }

    /// `arn:<p>:ec2:<region>::<kind>/<id>`: snapshots and images have no account in their ARN.
    fn ownerless(&self, region: &Region, kind: &str, id: &str) -> String {
        format!("arn:{}:ec2:{region}::{kind}/{id}", self.scope.partition)
    }

    /// A request on an existing resource, with its tags as `ec2:ResourceTag/<key>`.
    fn existing(&mut self, action: &str, arn: String, tags: &Tags) -> Result<(), AuthzError> {
        self.push(Origin::Caller, resource_tags(Request::new(action, arn)?, tags));
        Ok(())
    }

    /// The create action on the new resource (`aws:RequestTag`, `aws:TagKeys`), and its implicit
    /// `ec2:CreateTags`.
    fn create(&mut self, action: &str, create_action: &str, arn: String, tags: &Tags) -> Result<(), AuthzError> {
        self.push(Origin::Caller, request_tags(Request::new(action, arn.as_str())?, tags));
        self.tag_on_create(create_action, arn, tags)
    }

    /// `ec2:CreateTags` on a new resource with `ec2:CreateAction`; only when there are tags
    /// ("The CreateTags action is only evaluated if tags are specified", EC2 example policies).
    fn tag_on_create(&mut self, create_action: &str, arn: String, tags: &Tags) -> Result<(), AuthzError> {
        if !tags.is_empty() {
            let r = request_tags(Request::new("ec2:CreateTags", arn)?, tags).with("ec2:CreateAction", create_action);
            self.push(Origin::TagOnCreate, r);
        }
        Ok(())
    }

    /// A KMS request on `key` (its ARN in `region` unless the id is an ARN).
    fn kms(&self, action: &str, key: &KmsKeyId, region: &Region) -> Result<Request, AuthzError> {
        let arn = key.arn(&self.scope.partition, region, &self.scope.account);
        Ok(Request::new(action, arn)?.with("kms:CallerAccount", self.scope.account.as_str()))
    }

    /// A KMS request EC2 makes with our credentials.
    fn on_behalf(&mut self, action: &str, key: &KmsKeyId, region: &Region) -> Result<(), AuthzError> {
        let r = self.kms(action, key, region)?.with("kms:ViaService", format!("ec2.{region}.amazonaws.com"));
        self.push(Origin::OnBehalf, r);
        Ok(())
    }

    /// What creating an EBS volume or snapshot under `key` asks of KMS with our credentials
    /// (policies/README.md, "What EC2 asks of KMS for our volumes": facts 1, 3, 4; INFERENCE (a),
    /// (b)): the key checked, a data key generated, and a grant EC2 creates for its infrastructure
    /// principal (`kms:GrantIsForAWSResource`).
    fn new_volume_key(&mut self, key: &KmsKeyId, region: &Region) -> Result<(), AuthzError> {
        self.on_behalf("kms:DescribeKey", key, region)?;
        self.on_behalf("kms:GenerateDataKeyWithoutPlaintext", key, region)?;
        let grant = self
            .kms("kms:CreateGrant", key, region)?
            .with("kms:ViaService", format!("ec2.{region}.amazonaws.com"))
            .with("kms:GrantIsForAWSResource", "true");
        self.push(Origin::OnBehalf, grant);
        Ok(())
    }
}
