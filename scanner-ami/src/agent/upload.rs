//! The bundle upload: `PUT <collector>/v1/jobs/<job>/bundles/<scanner>` with the signed body
//! (docs/bundle.md) and its header-only credential `X-Agentless-Auth`
//! ([`crate::bundle::upload_token`]) and, when IMDS gave one, the scanner's instance identity
//! signature ([`crate::bundle::IDENTITY_HEADER`]), retried until it is accepted, refused for good, or the job's
//! deadline passes.
//!
//! An `https://` collector URL needs the manifest's certificate pin ([`super::pin`]): the upload
//! then trusts that certificate alone. A certificate other than the pinned one is refused for good
//! (not retried), and so is an `https://` URL without a pin or a pin with an `http://` URL.
//!
//! Retried: connection and timeout errors, HTTP 5xx and 429 (honouring a `Retry-After` in
//! seconds, within the backoff cap: the collector answers 503 or 429 with one when it is at its
//! concurrent-upload or bytes-in-flight limit). Not retried: any other status outside 2xx, since the
//! collector has decided (bad signature, unknown job, bundle refused); the first 200 characters of
//! its answer are logged. At least one attempt is always made, even past the deadline (the
//! scanner's clock may lag right after boot); retries stop at the deadline.

use std::sync::PoisonError;
use std::time::{Duration, SystemTime};

use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Connector, TcpConnector};

use super::pin::{PinMismatch, PinnedTlsConnector, Refusals};
use super::retry::Backoff;
use crate::bundle::{
    AUTH_HEADER, CONTENT_TYPE, IDENTITY_HEADER, MAX_IDENTITY_HEADER_BYTES, SIGNATURE_HEADER, sign, upload_token,
};
use crate::job::{HmacKey, JobManifest};

/// How much of a refusing collector's answer is read and logged.
const ERROR_BODY_CHARS: usize = 200;

/// Bytes read of the collector's answer (only its start is logged).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// How the upload is retried.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Attempts in all (at least 1).
    pub max_attempts: u32,
    /// One attempt, connection to answer.
    pub attempt_timeout: Duration,
    /// First backoff step (doubled per retry, with jitter).
    pub initial_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// No retry starts after this instant (the job manifest's `deadline_unix`).
    pub deadline: SystemTime,
}

/// An accepted upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadReceipt {
    pub status: u16,
    pub attempts: u32,
}

/// Why the bundle was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("the collector refused the bundle with HTTP {status} after {attempts} attempt(s): {body}")]
    Refused { status: u16, attempts: u32, body: String },
    #[error("gave up after {attempts} attempt(s) ({why}); last error: {last}")]
    GaveUp { attempts: u32, why: &'static str, last: String },
    #[error("{0}")]
    WrongCertificate(PinMismatch),
    #[error("the collector URL {url:?} is https:// but no certificate is pinned: nothing to verify it with")]
    NoPin { url: String },
    #[error("a certificate pin is given for the plain http:// collector URL {url:?}: refusing to upload in clear")]
    PinWithoutTls { url: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// `<collector_url>/v1/jobs/<job>/bundles/<scanner>`. The job and scanner names are path-safe
/// (checked by [`JobManifest::check`]), so nothing needs escaping.
#[must_use]
pub fn bundle_url(manifest: &JobManifest) -> String {
    format!("{}/v1/jobs/{}/bundles/{}", manifest.collector_url.trim_end_matches('/'), manifest.job, manifest.scanner)
}

/// Control characters out of text from the network before it is logged.
fn printable(s: &str, max: usize) -> String {
    s.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// One attempt's outcome.
enum Outcome {
    Accepted(u16),
    Refused(u16, String),
    /// Retryable, with the server's `Retry-After` if it gave one.
    Retry(String, Option<Duration>),
}

/// The headers of one upload.
struct Credentials<'a> {
    signature: &'a str,
    token: &'a str,
    identity: Option<&'a str>,
}

fn attempt(agent: &ureq::Agent, url: &str, creds: &Credentials<'_>, body: &[u8], timeout: Duration) -> Outcome {
    let mut req = agent
        .put(url)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .header("Content-Type", CONTENT_TYPE)
        .header(SIGNATURE_HEADER, creds.signature)
        .header(AUTH_HEADER, creds.token);
    if let Some(identity) = creds.identity {
        req = req.header(IDENTITY_HEADER, identity);
    }
    let sent = req.send(body);
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(e.to_string(), None),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let answer = resp.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_string().unwrap_or_default();
    let answer = printable(&answer, ERROR_BODY_CHARS);
    match status {
        200..=299 => Outcome::Accepted(status),
        429 | 500..=599 => Outcome::Retry(format!("HTTP {status}: {answer}"), retry_after),
        _ => Outcome::Refused(status, answer),
    }
}

/// Upload `body` for `manifest`'s job and scanner, signed with its key, with its instance
/// `identity` signature if it has one.
///
/// # Errors
///
/// See [`UploadError`].
pub fn upload(
    manifest: &JobManifest,
    body: &[u8],
    identity: Option<&str>,
    policy: &UploadPolicy,
) -> Result<UploadReceipt, UploadError> {
    upload_to(
        &bundle_url(manifest),
        &manifest.hmac_key,
        manifest.collector_cert_sha256.as_deref(),
        body,
        identity,
        policy,
    )
}

/// [`upload`] to an explicit URL; `pin` is the collector certificate's SHA-256 (hex), required
/// with an `https://` URL and refused with `http://`. An `identity` over
/// [`MAX_IDENTITY_HEADER_BYTES`] is not sent (the collector would refuse it as malformed; without
/// it, as missing: the log says which).
///
/// # Errors
///
/// See [`UploadError`].
pub fn upload_to(
    url: &str,
    key: &HmacKey,
    pin: Option<&str>,
    body: &[u8],
    identity: Option<&str>,
    policy: &UploadPolicy,
) -> Result<UploadReceipt, UploadError> {
    let signature = sign(key, body);
    let token = upload_token(key, u64::try_from(body.len()).unwrap_or(u64::MAX), &signature);
    let identity = identity.filter(|i| {
        let fits = i.len() <= MAX_IDENTITY_HEADER_BYTES;
        if !fits {
            tracing::warn!(
                bytes = i.len(),
                limit = MAX_IDENTITY_HEADER_BYTES,
                "the identity signature is too large to send"
            );
        }
        fits
    });
    let creds = Credentials { signature: &signature, token: &token, identity };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // The collector is reached directly (in the job's VPC, or over loopback in the simulated
        // account); a bundle is never sent through an environment proxy nor redirected elsewhere.
        .proxy(None)
        .max_redirects(0)
        .user_agent(concat!("scanner-agent/", env!("CARGO_PKG_VERSION")))
        .build();
    let https = url.starts_with("https://");
    let (agent, refusals): (ureq::Agent, Option<Refusals>) = match (https, pin) {
        (true, Some(pin)) => {
            let tls = PinnedTlsConnector::new(pin).map_err(|e| UploadError::Tls(e.to_string()))?;
            let refusals = tls.refusals();
            let connector = ().chain(TcpConnector::default()).chain(tls);
            (ureq::Agent::with_parts(config, connector, DefaultResolver::default()), Some(refusals))
        }
        (true, None) => return Err(UploadError::NoPin { url: url.to_owned() }),
        (false, Some(_)) => return Err(UploadError::PinWithoutTls { url: url.to_owned() }),
        (false, None) => (config.into(), None),
    };
    let max_attempts = policy.max_attempts.max(1);
    let mut backoff = Backoff::new(policy.initial_backoff, policy.max_backoff);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (last, retry_after) = match attempt(&agent, url, &creds, body, policy.attempt_timeout) {
            Outcome::Accepted(status) => {
                tracing::info!(url, status, attempts, bytes = body.len(), "bundle uploaded");
                return Ok(UploadReceipt { status, attempts });
            }
            Outcome::Refused(status, answer) => {
                tracing::error!(url, status, answer = %answer, "the collector refused the bundle; not retrying");
                return Err(UploadError::Refused { status, attempts, body: answer });
            }
            Outcome::Retry(last, retry_after) => {
                let refused = refusals.as_ref().and_then(|r| r.lock().unwrap_or_else(PoisonError::into_inner).take());
                if let Some(mismatch) = refused {
                    tracing::error!(url, error = %mismatch, "the collector's certificate is not the pinned one; not retrying");
                    return Err(UploadError::WrongCertificate(mismatch));
                }
                (last, retry_after)
            }
        };
        if attempts >= max_attempts {
            return Err(UploadError::GaveUp { attempts, why: "attempts exhausted", last });
        }
        let mut delay = backoff.next_delay();
        if let Some(ra) = retry_after {
            delay = delay.max(ra.min(policy.max_backoff));
        }
        let remaining = policy.deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        if delay >= remaining {
            return Err(UploadError::GaveUp { attempts, why: "the job's deadline would pass", last });
        }
        tracing::warn!(url, attempt = attempts, error = %last, ?delay, "bundle upload failed; retrying");
        std::thread::sleep(delay);
    }
}
