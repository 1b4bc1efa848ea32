//! KMS keys and grants: `DescribeKey` (by key id or ARN; `NotFoundException` otherwise),
//! `CreateGrant` (idempotent like AWS: the same name, grantee, operations and constraint return
//! the existing grant, which moto does not do), `ListGrants` (pages of 50, KMS's
//! default `Limit`), `RevokeGrant`.
//!
//! Keys are Regional: each Region has its AWS managed `aws/ebs` key and the customer keys of the
//! fleet file or of [`super::fleet::Setup::key`].
//!
//! # Who may use a customer managed key ([`on_behalf`])
//!
//! What EC2 asks of KMS when it creates a scanner volume from a snapshot under a customer managed
//! key follows `policies/README.md`, "What EC2 asks of KMS for our volumes" (facts 1-5, inferences
//! (a)-(e)): `GenerateDataKeyWithoutPlaintext` and `CreateGrant` (for EC2's infrastructure
//! principal) with the caller's credentials (facts 1, 3; INFERENCE (a)), `DescribeKey` too
//! (INFERENCE (b)); the `Decrypt` at attach is EC2's own, under that grant (fact 3), so the sim
//! does not ask it of the caller. KMS authorizes each of the caller's requests as it authorizes
//! any (KMS Developer Guide, "Authentication and access control for AWS KMS", "Grants in AWS
//! KMS"), in this order in the sim:
//!
//! - a grant to the caller's ARN whose operations include it and whose `EncryptionContextSubset`
//!   constraint (`aws:ebs:id`) is in the request's context. The context of these requests names
//!   the volume being created (INFERENCE (c)), which no grant made before the launch can name: so a
//!   grant constrained to the snapshot's source volume (the job's) does **not** cover them; only
//!   an unconstrained one would. KMS ignores constraints for `DescribeKey` ("Grant constraints").
//! - the key policy naming the caller as a key user (fleet `allow_caller_use = true`);
//! - the caller's IAM policies, for managing the key (`DescribeKey`) always (as the onboarding asks
//!   customers to allow), for using it only when the key policy defers to them (fleet
//!   `allow_account_use = true`, AWS's default "Enable IAM User Permissions").

use crate::cloud::Call;
use crate::cloud::error::CloudError;
use crate::cloud::ids::{GrantId, KmsKeyId};
use crate::cloud::ops::*;

use super::Ctx;
use super::describe::page;
use super::state::{Grant, Key, Manager};

/// `ListGrants`' default and maximum `Limit` (KMS API Reference).
const GRANTS_PER_PAGE: u32 = 50;

fn key(ctx: &mut Ctx<'_>, id: &KmsKeyId) -> Result<Key, CloudError> {
    let k = ctx.reg()?.key(id).cloned();
    k.ok_or_else(|| ctx.err("NotFoundException", format!("Key '{id}' does not exist"), vec![id.to_string()]))
}

pub fn describe_key(ctx: &mut Ctx<'_>, input: &DescribeKeyInput) -> Result<KeyInfo, CloudError> {
    let k = key(ctx, &input.key)?;
    ctx.authorize(Call::DescribeKey(input))?;
    let key_id: KmsKeyId = input
        .key
        .key_id()
        .parse()
        .map_err(|e: crate::cloud::IdError| ctx.err("InternalError", e.to_string(), vec![input.key.to_string()]))?;
    Ok(KeyInfo {
        arn: k.arn.clone(),
        key_id,
        manager: match k.manager {
            Manager::Aws => KeyManager::Aws,
            Manager::Customer => KeyManager::Customer,
        },
        state: "Enabled".into(),
    })
}

pub fn create_grant(ctx: &mut Ctx<'_>, input: &CreateGrantInput) -> Result<CreateGrantOutput, CloudError> {
    let k = key(ctx, &input.key)?;
    ctx.authorize(Call::CreateGrant(input))?;
    let same = k.grants.iter().find(|g| {
        g.name.as_deref() == Some(input.name.as_str())
            && g.grantee_principal == input.grantee_principal
            && g.operations == input.operations
            && g.ebs_id.as_deref() == Some(input.ebs_id.as_str())
    });
    if let Some(g) = same {
        return Ok(CreateGrantOutput { grant_id: g.id.clone(), grant_token: g.token.clone() });
    }
    let hex = ctx.world.prng.hex(64);
    let grant_id: GrantId =
        hex.parse().map_err(|e: crate::cloud::IdError| ctx.err("InternalError", e.to_string(), Vec::new()))?;
    let token = format!("sim-grant-token-{}", ctx.world.prng.hex(32));
    let grant = Grant {
        id: grant_id.clone(),
        token: token.clone(),
        name: Some(input.name.clone()),
        grantee_principal: input.grantee_principal.clone(),
        operations: input.operations.clone(),
        ebs_id: Some(input.ebs_id.as_str().to_owned()),
    };
    let key_id = input.key.key_id().to_owned();
    if let Some(k) = ctx.reg()?.keys.get_mut(&key_id) {
        k.grants.push(grant);
    }
    ctx.dirty = true;
    Ok(CreateGrantOutput { grant_id, grant_token: token })
}

pub fn list_grants(ctx: &mut Ctx<'_>, input: &ListGrantsInput) -> Result<Page<GrantInfo>, CloudError> {
    let k = key(ctx, &input.key)?;
    ctx.authorize(Call::ListGrants(input))?;
    let items = k
        .grants
        .iter()
        .map(|g| GrantInfo {
            grant_id: g.id.clone(),
            name: g.name.clone(),
            grantee_principal: g.grantee_principal.clone(),
            operations: g.operations.iter().map(|o| o.as_str().to_owned()).collect(),
            ebs_id: g.ebs_id.clone(),
        })
        .collect();
    page(items, Some(GRANTS_PER_PAGE), input.marker.as_deref())
        .map_err(|_| ctx.err("InvalidMarkerException", "The marker is not valid", Vec::new()))
}

pub fn revoke_grant(ctx: &mut Ctx<'_>, input: &RevokeGrantInput) -> Result<Empty, CloudError> {
    let k = key(ctx, &input.key)?;
    ctx.authorize(Call::RevokeGrant(input))?;
    if !k.grants.iter().any(|g| g.id == input.grant_id) {
        return Err(ctx.err(
            "NotFoundException",
            format!("Grant ID {} not found", input.grant_id),
            vec![input.grant_id.to_string()],
        ));
    }
    let key_id = input.key.key_id().to_owned();
    if let Some(k) = ctx.reg()?.keys.get_mut(&key_id) {
        k.grants.retain(|g| g.id != input.grant_id);
    }
    ctx.dirty = true;
    Ok(Empty)
}

/// The grant operation an on-behalf KMS action (`kms:Decrypt`...) needs.
fn grant_operation(action: &str) -> Option<GrantOperation> {
    let name = action.strip_prefix("kms:").unwrap_or(action);
    [
        GrantOperation::Decrypt,
        GrantOperation::DescribeKey,
        GrantOperation::CreateGrant,
        GrantOperation::GenerateDataKeyWithoutPlaintext,
        GrantOperation::ReEncryptFrom,
        GrantOperation::ReEncryptTo,
    ]
    .into_iter()
    .find(|o| o.as_str().eq_ignore_ascii_case(name))
}

/// The key-policy statements of a customer managed key the sim models (module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyPolicy {
    /// "Enable IAM User Permissions": the account's IAM policies decide on using the key.
    pub defers_to_iam: bool,
    /// "Allow use of the key" naming the caller: KMS allows its use whatever IAM says.
    pub names_caller: bool,
}

/// Whether KMS allows `action` (`kms:GenerateDataKeyWithoutPlaintext`...) on `key`, requested
/// by EC2 with the credentials of `caller_arn` for a volume it is creating (so under an
/// `aws:ebs:id` context no earlier grant constraint names: module documentation, INFERENCE (c)):
/// the grant or policy that allows it, or why nothing does. `iam_allowed` is the identity
/// policies' verdict on the request.
pub fn on_behalf(
    key: &Key,
    policy: KeyPolicy,
    caller_arn: &str,
    action: &str,
    iam_allowed: bool,
) -> Result<String, String> {
    if key.manager == Manager::Aws {
        // AWS managed keys: usable by every principal of the account through the AWS service.
        return Ok("AWS managed key".into());
    }
    let op = grant_operation(action);
    // An `aws:ebs:id` constraint names an existing volume or snapshot, never the new volume.
    let grant = key.grants.iter().find(|g| {
        g.grantee_principal == caller_arn
            && op.is_some_and(|o| g.operations.contains(&o))
            && (op == Some(GrantOperation::DescribeKey) || g.ebs_id.is_none())
    });
    if let Some(g) = grant {
        return Ok(format!("grant {}", g.id));
    }
    if policy.names_caller {
        return Ok("key policy (key user)".into());
    }
    let context = "aws:ebs:id = the volume being created";
    let management = action.eq_ignore_ascii_case("kms:DescribeKey");
    match (management || policy.defers_to_iam, iam_allowed) {
        (true, true) => Ok("key policy and IAM policy".into()),
        (true, false) => Err(format!(
            "{caller_arn} has no grant for {action} with {context} on {} and its IAM policies do not allow it",
            key.arn
        )),
        (false, _) => Err(format!(
            "{caller_arn} has no grant for {action} with {context} on {}, whose key policy neither names it nor lets IAM policies use the key",
            key.arn
        )),
    }
}
