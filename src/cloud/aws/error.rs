//! From the SDK's errors to [`CloudError`]: the AWS error code (`ProvideErrorMetadata::code`), the
//! message, the HTTP status of the raw response, the request id (the `x-amzn-requestid` header, or
//! the `<RequestID>` element EC2 puts in its XML error body), the Region and the ids involved,
//! classified by [`classify`](crate::cloud::classify).
//!
//! The SDK's standard retry mode has already retried throttling and transient errors when one of
//! these errors reaches us: a `RequestLimitExceeded` here means the attempts are used up, and it
//! becomes [`ErrorKind::Throttled`] for the job logic's own pacing (no second retry loop here).

use aws_sdk_ec2::config::http::HttpResponse as Response;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;

use crate::cloud::error::{CloudError, ErrorKind};
use crate::cloud::guard::Authorized;

/// What an error response without a parseable AWS error code means, by HTTP status (moto answers
/// some failures with an HTML page or, on JSON services, an XML body the SDK cannot parse).
fn kind_of_status(status: Option<u16>) -> ErrorKind {
    match status {
        Some(429) => ErrorKind::Throttled,
        Some(401 | 403) => ErrorKind::AccessDenied,
        Some(s) if (500..=599).contains(&s) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

/// The `<RequestID>` (EC2 errors) or `<RequestId>` (query-protocol errors) element of an XML body.
fn request_id_in_body(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    ["<RequestID>", "<RequestId>", "<requestId>"].iter().find_map(|open| {
        let start = text.find(open)? + open.len();
        let len = text[start..].find('<')?;
        let id = text[start..start + len].trim();
        (!id.is_empty()).then(|| id.to_owned())
    })
}

fn request_id(raw: &Response) -> Option<String> {
    raw.request_id().map(str::to_owned).or_else(|| raw.body().bytes().and_then(request_id_in_body))
}

/// Map one SDK error of the call `auth` authorized, about `ids`.
pub(super) fn map<E>(auth: &Authorized, ids: Vec<String>, err: SdkError<E, Response>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let operation = auth.operation();
    let region = Some(auth.region().clone());
    match &err {
        SdkError::ServiceError(ctx) => {
            let raw = ctx.raw();
            let status = Some(raw.status().as_u16());
            let request_id = request_id(raw);
            match ctx.err().code() {
                Some(code) => CloudError::aws(
                    operation,
                    region,
                    code,
                    ctx.err().message().unwrap_or_default(),
                    status,
                    request_id,
                    ids,
                ),
                None => CloudError::local(
                    operation,
                    region,
                    kind_of_status(status),
                    format!("HTTP {} without an AWS error code: {}", raw.status(), DisplayErrorContext(&err)),
                    ids,
                ),
            }
        }
        // A response the SDK could not read at all (e.g. an HTML error page).
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status();
            CloudError::local(
                operation,
                region,
                kind_of_status(Some(status.as_u16())),
                format!("unreadable HTTP {status} response: {}", DisplayErrorContext(&err)),
                ids,
            )
        }
        SdkError::TimeoutError(_) => CloudError::local(
            operation,
            region,
            ErrorKind::Transient,
            format!("timed out: {}", DisplayErrorContext(&err)),
            ids,
        ),
        SdkError::DispatchFailure(d) => {
            // A connection refused/reset or a timeout is worth retrying later; a request the
            // connector refused to send (`is_user`, e.g. a bad endpoint URL) is not.
            let kind = if d.is_user() { ErrorKind::Other } else { ErrorKind::Transient };
            CloudError::local(operation, region, kind, format!("not sent: {}", DisplayErrorContext(&err)), ids)
        }
        SdkError::ConstructionFailure(_) => CloudError::local(
            operation,
            region,
            ErrorKind::Other,
            format!("request not built: {}", DisplayErrorContext(&err)),
            ids,
        ),
        _ => CloudError::local(operation, region, ErrorKind::Other, DisplayErrorContext(&err).to_string(), ids),
    }
}

/// A response that lacks a field we need or carries a malformed id.
pub(super) fn malformed(auth: &Authorized, what: impl std::fmt::Display) -> CloudError {
    CloudError::local(
        auth.operation(),
        Some(auth.region().clone()),
        ErrorKind::Other,
        format!("unexpected response: {what}"),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_from_ec2_error_body() {
        let body = b"<Response><Errors><Error><Code>X</Code></Error></Errors><RequestID>abc-1</RequestID></Response>";
        assert_eq!(request_id_in_body(body).as_deref(), Some("abc-1"));
        assert_eq!(request_id_in_body(b"<html>oops</html>"), None);
        assert_eq!(request_id_in_body(b"<RequestId>  </RequestId>"), None);
    }

    #[test]
    fn status_without_code() {
        assert_eq!(kind_of_status(Some(503)), ErrorKind::Transient);
        assert_eq!(kind_of_status(Some(429)), ErrorKind::Throttled);
        assert_eq!(kind_of_status(Some(403)), ErrorKind::AccessDenied);
        assert_eq!(kind_of_status(Some(400)), ErrorKind::Other);
        assert_eq!(kind_of_status(None), ErrorKind::Other);
    }
}
