//! KMS keys and grants: `DescribeKey` (by key id or ARN; `NotFoundException` otherwise),
//! `CreateGrant` (idempotent like AWS: the same name, grantee, operations and constraint return
//! the existing grant, which moto does not do, moto.md 1 KMS), `ListGrants` (pages of 50, KMS's
//! default `Limit`), `RevokeGrant`.
//!
//! Keys are Regional: each Region has its AWS managed `aws/ebs` key and the customer keys of the
//! fleet file or of [`super::fleet::Setup::key`].
//!
//! # Who may use a customer managed key ([`on_behalf`])
//!
//! When EC2 creates a volume from a snapshot under a customer managed key it calls KMS with the
//! caller's credentials (`kms:ViaService`, [`crate::policy::authz`]), and KMS authorizes those
//! requests as it authorizes any: by the key policy, by IAM policies if the key policy lets the
//! account's IAM policies decide, or by a grant (KMS Developer Guide, "Authentication and access
//! control for AWS KMS", "Grants in AWS KMS"). The sim's key policy of a customer key:
//!
//! - managing the key (`DescribeKey`, `CreateGrant` by the caller, `ListGrants`, `RevokeGrant`)
//!   is left to IAM, as the onboarding asks customers to allow it;
//! - using it (`Decrypt`, `GenerateDataKeyWithoutPlaintext`, `ReEncrypt*`, and the `CreateGrant`
//!   EC2 makes for the volume) is left to IAM only when the fleet says `allow_account_use = true`
//!   (AWS's default key policy, "Enable IAM User Permissions"); otherwise only a grant allows it.
//!
//! A grant allows an operation when its grantee is the caller's ARN, its operations include it,
//! and its `EncryptionContextSubset` constraint (`aws:ebs:id`) matches the context of the request:
//! for a volume created from a snapshot under the same key that is the id in the snapshot's
//! context, the *volume* the snapshot was taken of for a `CreateSnapshot(s)` snapshot, the
//! snapshot's own id for a copy (DESIGN.md; Datadog terraform module PR #139). KMS ignores the
//! constraint for `DescribeKey` ("Grant constraints": constraints apply only to operations that
//! take an encryption context).

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

/// Whether KMS allows `action` (`kms:Decrypt`...) on `key`, requested by EC2 with the credentials
/// of `caller_arn` under the encryption context `aws:ebs:id = ebs_id` (module documentation):
/// the grant or policy that allows it, or why nothing does. `iam_allowed` is the identity
/// policies' verdict on the request; `account_use` whether the key policy defers to them.
pub fn on_behalf(
    key: &Key,
    account_use: bool,
    caller_arn: &str,
    action: &str,
    ebs_id: &str,
    iam_allowed: bool,
) -> Result<String, String> {
    if key.manager == Manager::Aws {
        // AWS managed keys: usable by every principal of the account through the AWS service.
        return Ok("AWS managed key".into());
    }
    let op = grant_operation(action);
    let grant = key.grants.iter().find(|g| {
        g.grantee_principal == caller_arn
            && op.is_some_and(|o| g.operations.contains(&o))
            && (op == Some(GrantOperation::DescribeKey) || g.ebs_id.as_deref().is_none_or(|e| e == ebs_id))
    });
    if let Some(g) = grant {
        return Ok(format!("grant {}", g.id));
    }
    let management = action.eq_ignore_ascii_case("kms:DescribeKey");
    match (management || account_use, iam_allowed) {
        (true, true) => Ok("key policy and IAM policy".into()),
        (true, false) => {
            Err(format!("{caller_arn} has no grant for {action} on {} and its IAM policies do not allow it", key.arn))
        }
        (false, _) => Err(format!(
            "{caller_arn} has no grant for {action} with aws:ebs:id = {ebs_id} on {}, whose key policy does not let IAM policies use the key",
            key.arn
        )),
    }
}
