//! The CloudTrail → S3 → SQS pipeline of the simulated account (to be filled in: the trail, the
//! bucket, the notification and the queue). Until a pipeline is configured, its queue and bucket
//! do not exist: `QueueDoesNotExist`, `NoSuchBucket`.

use super::Ctx;
use crate::cloud::error::CloudError;
use crate::cloud::ops::*;

pub fn get_queue_url(ctx: &mut Ctx<'_>, input: &GetQueueUrlInput) -> Result<QueueUrl, CloudError> {
    Err(ctx.err("QueueDoesNotExist", format!("The specified queue {} does not exist.", input.queue_name), Vec::new()))
}

pub fn receive_message(ctx: &mut Ctx<'_>, input: &ReceiveMessageInput) -> Result<Vec<QueueMessage>, CloudError> {
    Err(ctx.err("QueueDoesNotExist", format!("The specified queue {} does not exist.", input.queue.url), Vec::new()))
}

pub fn get_object(ctx: &mut Ctx<'_>, input: &GetObjectInput) -> Result<ObjectBody, CloudError> {
    Err(ctx.err("NoSuchBucket", format!("The specified bucket {} does not exist.", input.bucket), Vec::new()))
}
