//! KMS keys and grants: `DescribeKey` (by key id or ARN; `NotFoundException` otherwise),
//! `CreateGrant` (idempotent like AWS: the same name, grantee, operations and constraint return
//! the existing grant, which moto does not do, moto.md 1 KMS), `ListGrants` (pages of 50, KMS's
//! default `Limit`), `RevokeGrant`.
//!
//! Keys are Regional: each Region has its AWS managed `aws/ebs` key and the customer keys of the
//! fleet file or of [`super::fleet::Setup::key`].

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
