//! The CloudTrail pipeline's operations of the AWS backend: `sqs:GetQueueUrl`,
//! `sqs:ReceiveMessage` (with `ApproximateReceiveCount` and `SentTimestamp`) and `s3:GetObject`,
//! which refuses an object above its cap from the response's `Content-Length` before reading the
//! body, and stops reading at the cap whatever the header said.

use aws_sdk_sqs::types::MessageSystemAttributeName;

use super::error::{malformed, map};
use crate::cloud::error::{CloudError, ErrorKind};
use crate::cloud::guard::Authorized;
use crate::cloud::ops::*;

pub(super) async fn get_queue_url(
    c: &aws_sdk_sqs::Client,
    auth: &Authorized,
    input: &GetQueueUrlInput,
) -> Result<QueueUrl, CloudError> {
    let out = c
        .get_queue_url()
        .queue_name(&input.queue_name)
        .set_queue_owner_aws_account_id(input.owner.as_ref().map(ToString::to_string))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.queue_name.clone()], e))?;
    let url = out.queue_url().ok_or_else(|| malformed(auth, "no QueueUrl"))?;
    Ok(QueueUrl { url: url.to_owned() })
}

pub(super) async fn receive_message(
    c: &aws_sdk_sqs::Client,
    auth: &Authorized,
    input: &ReceiveMessageInput,
) -> Result<Vec<QueueMessage>, CloudError> {
    let out = c
        .receive_message()
        .queue_url(&input.queue.url)
        .max_number_of_messages(i32::from(input.max_messages.clamp(1, SQS_MAX_MESSAGES)))
        .wait_time_seconds(i32::from(input.wait_seconds.min(SQS_MAX_WAIT_SECONDS)))
        .set_visibility_timeout(input.visibility_timeout.map(|v| i32::try_from(v).unwrap_or(i32::MAX)))
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .map_err(|e| map(auth, vec![input.queue.url.clone()], e))?;
    Ok(out
        .messages()
        .iter()
        .map(|m| {
            let attr = |name: MessageSystemAttributeName| m.attributes().and_then(|a| a.get(&name));
            QueueMessage {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount).and_then(|v| v.parse().ok()),
                sent_at_ms: attr(MessageSystemAttributeName::SentTimestamp).and_then(|v| v.parse().ok()),
            }
        })
        .collect())
}

pub(super) async fn get_object(
    c: &aws_sdk_s3::Client,
    auth: &Authorized,
    input: &GetObjectInput,
) -> Result<ObjectBody, CloudError> {
    let out = c
        .get_object()
        .bucket(&input.bucket)
        .key(&input.key)
        .send()
        .await
        .map_err(|e| map(auth, vec![format!("s3://{}/{}", input.bucket, input.key)], e))?;
    if let Some(len) = out.content_length().and_then(|l| u64::try_from(l).ok())
        && len > input.max_bytes
    {
        // Dropping the body closes the connection unread.
        return Err(input.too_large(auth.operation(), auth.region().clone(), len));
    }
    let etag = out.e_tag().map(|e| e.trim_matches('"').to_owned());
    let mut body = out.body;
    let mut bytes = Vec::new();
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > input.max_bytes {
                    return Err(input.too_large(auth.operation(), auth.region().clone(), bytes.len() as u64));
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(CloudError::local(
                    auth.operation(),
                    Some(auth.region().clone()),
                    ErrorKind::Transient,
                    format!("reading s3://{}/{}: {e}", input.bucket, input.key),
                    vec![format!("s3://{}/{}", input.bucket, input.key)],
                ));
            }
        }
    }
    Ok(ObjectBody { bytes, etag })
}
