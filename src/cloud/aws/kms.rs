//! The KMS operations of the AWS backend: `DescribeKey`, `CreateGrant` (grantee, operations, the
//! `aws:ebs:id` encryption-context constraint, name), `ListGrants` (one page by `Marker`),
//! `RevokeGrant`.

use aws_sdk_kms::Client;
use aws_sdk_kms::types::{GrantConstraints, KeyManagerType};

use super::error::{malformed, map};
use crate::cloud::error::CloudError;
use crate::cloud::guard::Authorized;
use crate::cloud::ids::{GrantId, IdError, KmsKeyId};
use crate::cloud::ops::*;

/// The encryption-context key EBS sets on every KMS call for a volume or snapshot (EBS User
/// Guide, "Encryption context").
pub const EBS_ID_CONTEXT_KEY: &str = "aws:ebs:id";

fn key_ids(input_key: &KmsKeyId) -> Vec<String> {
    vec![input_key.to_string()]
}

pub(super) async fn describe_key(
    c: &Client,
    auth: &Authorized,
    input: &DescribeKeyInput,
) -> Result<KeyInfo, CloudError> {
    let out =
        c.describe_key().key_id(input.key.as_str()).send().await.map_err(|e| map(auth, key_ids(&input.key), e))?;
    let meta = out.key_metadata().ok_or_else(|| malformed(auth, "no KeyMetadata"))?;
    let manager = match meta.key_manager() {
        Some(KeyManagerType::Aws) => KeyManager::Aws,
        Some(KeyManagerType::Customer) => KeyManager::Customer,
        Some(other) => return Err(malformed(auth, format_args!("unknown KeyManager {}", other.as_str()))),
        None => return Err(malformed(auth, "no KeyManager")),
    };
    Ok(KeyInfo {
        arn: meta.arn().unwrap_or_default().to_owned(),
        key_id: meta.key_id().parse().map_err(|e: IdError| malformed(auth, format_args!("KeyId: {e}")))?,
        manager,
        state: meta.key_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
    })
}

pub(super) async fn create_grant(
    c: &Client,
    auth: &Authorized,
    input: &CreateGrantInput,
) -> Result<CreateGrantOutput, CloudError> {
    let operations = input.operations.iter().map(|o| aws_sdk_kms::types::GrantOperation::from(o.as_str())).collect();
    let out = c
        .create_grant()
        .key_id(input.key.as_str())
        .grantee_principal(&input.grantee_principal)
        .set_operations(Some(operations))
        .constraints(
            GrantConstraints::builder().encryption_context_subset(EBS_ID_CONTEXT_KEY, input.ebs_id.as_str()).build(),
        )
        .name(&input.name)
        .send()
        .await
        .map_err(|e| map(auth, vec![input.key.to_string(), input.ebs_id.as_str().to_owned()], e))?;
    let grant_id: GrantId = out
        .grant_id()
        .ok_or_else(|| malformed(auth, "no GrantId"))?
        .parse()
        .map_err(|e: IdError| malformed(auth, format_args!("GrantId: {e}")))?;
    Ok(CreateGrantOutput { grant_id, grant_token: out.grant_token().unwrap_or_default().to_owned() })
}

pub(super) async fn list_grants(
    c: &Client,
    auth: &Authorized,
    input: &ListGrantsInput,
) -> Result<Page<GrantInfo>, CloudError> {
    let out = c
        .list_grants()
        .key_id(input.key.as_str())
        .set_marker(input.marker.clone())
        .send()
        .await
        .map_err(|e| map(auth, key_ids(&input.key), e))?;
    let items = out
        .grants()
        .iter()
        .map(|g| {
            Ok(GrantInfo {
                grant_id: g
                    .grant_id()
                    .ok_or_else(|| malformed(auth, "no GrantId"))?
                    .parse()
                    .map_err(|e: IdError| malformed(auth, format_args!("GrantId: {e}")))?,
                name: g.name().filter(|n| !n.is_empty()).map(str::to_owned),
                grantee_principal: g.grantee_principal().unwrap_or_default().to_owned(),
                operations: g.operations().iter().map(|o| o.as_str().to_owned()).collect(),
                ebs_id: g.constraints().and_then(|c| {
                    let pick = |m: Option<&std::collections::HashMap<String, String>>| {
                        m.and_then(|m| m.get(EBS_ID_CONTEXT_KEY)).cloned()
                    };
                    pick(c.encryption_context_subset()).or_else(|| pick(c.encryption_context_equals()))
                }),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    let next_token = if out.truncated() { out.next_marker().map(str::to_owned) } else { None };
    Ok(Page { items, next_token })
}

pub(super) async fn revoke_grant(c: &Client, auth: &Authorized, input: &RevokeGrantInput) -> Result<Empty, CloudError> {
    c.revoke_grant()
        .key_id(input.key.as_str())
        .grant_id(input.grant_id.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.key.to_string(), input.grant_id.to_string()], e))?;
    Ok(Empty)
}
