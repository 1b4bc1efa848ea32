//! Who the credentials are: STS `GetCallerIdentity` (needs no permission) and IAM `GetUser`.

use super::error::{malformed, map};
use crate::cloud::error::CloudError;
use crate::cloud::guard::Authorized;
use crate::cloud::ids::IdError;
use crate::cloud::ops::*;

pub(super) async fn get_caller_identity(
    c: &aws_sdk_sts::Client,
    auth: &Authorized,
) -> Result<CallerIdentity, CloudError> {
    let out = c.get_caller_identity().send().await.map_err(|e| map(auth, Vec::new(), e))?;
    Ok(CallerIdentity {
        account: out
            .account()
            .ok_or_else(|| malformed(auth, "no Account"))?
            .parse()
            .map_err(|e: IdError| malformed(auth, format_args!("Account: {e}")))?,
        arn: out.arn().unwrap_or_default().to_owned(),
        user_id: out.user_id().unwrap_or_default().to_owned(),
    })
}

pub(super) async fn get_user(
    c: &aws_sdk_iam::Client,
    auth: &Authorized,
    input: &GetUserInput,
) -> Result<UserInfo, CloudError> {
    let out = c
        .get_user()
        .set_user_name(input.user_name.clone())
        .send()
        .await
        .map_err(|e| map(auth, input.user_name.iter().cloned().collect(), e))?;
    let user = out.user().ok_or_else(|| malformed(auth, "no User"))?;
    Ok(UserInfo {
        user_name: user.user_name().to_owned(),
        arn: user.arn().to_owned(),
        user_id: user.user_id().to_owned(),
    })
}
