//! IMDSv2: the job manifest (user data), the scanner's own instance id and its AWS-signed
//! instance identity (`dynamic/instance-identity/rsa2048`, forwarded to the collector), read from the
//! instance metadata service with a session token (EC2 User Guide, "Use the Instance Metadata
//! Service to access instance metadata": `PUT /latest/api/token` with
//! `X-aws-ec2-metadata-token-ttl-seconds`, then `GET`s with `X-aws-ec2-metadata-token`).
//!
//! Scanners are launched with IMDSv2 required (docs/job.md, "The scanner launch"), so a token-less read
//! would be refused; this client never tries one. At boot the network may not be up yet: the
//! reads are retried with backoff for a bounded time.

use std::time::{Duration, Instant};

use super::retry::Backoff;

/// Token lifetime asked for: 6 hours, the maximum IMDS grants (21600 s); the agent's whole run
/// fits in it.
const TOKEN_TTL_SECONDS: &str = "21600";

/// The IMDSv2 token is a short opaque string (56 characters today); anything larger than this is
/// not a token.
const MAX_TOKEN_BYTES: u64 = 4096;

/// User data is at most 16 KiB after base64 decoding (see [`crate::job::MAX_USER_DATA_BYTES`]);
/// a read is cut a little above so an oversized one is reported as such by the parser.
const MAX_USER_DATA_READ: u64 = 2 * crate::job::MAX_USER_DATA_BYTES as u64 + 1;

/// An instance id is `i-` and 17 hex digits.
const MAX_INSTANCE_ID_BYTES: u64 = 64;

/// The `rsa2048` signature is a PKCS#7 of about 1.5 KiB of base64 (see
/// [`crate::bundle::MAX_IDENTITY_HEADER_BYTES`], the most the collector accepts); read up to that.
const MAX_IDENTITY_BYTES: u64 = crate::bundle::MAX_IDENTITY_HEADER_BYTES as u64;

/// One IMDS request: the service answers in milliseconds on a running instance; the timeout
/// only matters while the network comes up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the manifest could not be read from IMDS.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    #[error("IMDS endpoint {0:?} is not an http:// URL")]
    BadEndpoint(String),
    #[error("IMDS has no user data for this instance (404): the scanner was launched without a job manifest")]
    NoUserData,
    #[error("IMDS refused {what} with HTTP {status}")]
    Refused { what: &'static str, status: u16 },
    #[error("IMDS did not answer within {waited:?} ({attempts} attempts); last error: {last}")]
    GaveUp { waited: Duration, attempts: u32, last: String },
}

/// What IMDS told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsData {
    /// The user data, as IMDS returns it (already decoded from the base64 of `RunInstances`).
    pub user_data: Vec<u8>,
    /// `meta-data/instance-id`, when it could be read.
    pub instance_id: Option<String>,
    /// `dynamic/instance-identity/rsa2048` with whitespace removed (the [`IDENTITY_HEADER`]
    /// value), when it could be read and is base64.
    ///
    /// [`IDENTITY_HEADER`]: crate::bundle::IDENTITY_HEADER
    pub identity: Option<String>,
}

/// The `rsa2048` body as the header value: base64 characters only (IMDS breaks its lines).
fn identity_value(body: &[u8]) -> Option<String> {
    let s: String = std::str::from_utf8(body).ok()?.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    (!s.is_empty() && s.chars().all(base64)).then_some(s)
}

/// A failed attempt: worth retrying, or final.
enum Attempt {
    Retry(String),
    Fatal(ImdsError),
}

/// An IMDSv2 client for one endpoint (`http://169.254.169.254` on EC2).
#[derive(Debug)]
pub struct Imds {
    base: String,
    agent: ureq::Agent,
}

impl Imds {
    /// A client of `endpoint` (no trailing path).
    ///
    /// # Errors
    ///
    /// The endpoint is not an `http://` URL (IMDS has no TLS).
    pub fn new(endpoint: &str) -> Result<Imds, ImdsError> {
        if !endpoint.starts_with("http://") {
            return Err(ImdsError::BadEndpoint(endpoint.to_owned()));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // IMDS is link-local: never through a proxy from the environment, never redirected.
            .proxy(None)
            .max_redirects(0)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("scanner-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Imds { base: endpoint.trim_end_matches('/').to_owned(), agent })
    }

    fn token(&self) -> Result<String, Attempt> {
        let url = format!("{}/latest/api/token", self.base);
        let mut resp = self
            .agent
            .put(&url)
            .header("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS)
            .send_empty()
            .map_err(|e| Attempt::Retry(format!("PUT {url}: {e}")))?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            // Throttled or not ready.
            429 | 500..=599 => return Err(Attempt::Retry(format!("PUT {url}: HTTP {status}"))),
            // 403: IMDS is disabled for the instance; 400: the request was refused as malformed.
            _ => return Err(Attempt::Fatal(ImdsError::Refused { what: "the session token", status })),
        }
        let token = resp
            .body_mut()
            .with_config()
            .limit(MAX_TOKEN_BYTES)
            .read_to_string()
            .map_err(|e| Attempt::Retry(format!("PUT {url}: reading the token: {e}")))?;
        let token = token.trim().to_owned();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Attempt::Retry(format!("PUT {url}: the token is empty or not printable")));
        }
        Ok(token)
    }

    /// `GET /latest/<path>`: `Ok(None)` on 404.
    fn get(&self, path: &str, token: &str, limit: u64) -> Result<Option<Vec<u8>>, Attempt> {
        let url = format!("{}/latest/{path}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .header("X-aws-ec2-metadata-token", token)
            .call()
            .map_err(|e| Attempt::Retry(format!("GET {url}: {e}")))?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            404 => return Ok(None),
            // 401: the token expired or was not accepted: a new one is fetched on the next attempt.
            401 | 429 | 500..=599 => return Err(Attempt::Retry(format!("GET {url}: HTTP {status}"))),
            _ => return Err(Attempt::Fatal(ImdsError::Refused { what: "a metadata read", status })),
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| Attempt::Retry(format!("GET {url}: reading the body: {e}")))?;
        Ok(Some(body))
    }

    fn attempt(&self) -> Result<ImdsData, Attempt> {
        let token = self.token()?;
        let user_data =
            self.get("user-data", &token, MAX_USER_DATA_READ)?.ok_or(Attempt::Fatal(ImdsError::NoUserData))?;
        let instance_id = match self.get("meta-data/instance-id", &token, MAX_INSTANCE_ID_BYTES) {
            Ok(Some(body)) => String::from_utf8(body)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| s.starts_with("i-") && crate::job::is_path_safe_name(s)),
            Ok(None) | Err(_) => None,
        };
        if instance_id.is_none() {
            tracing::warn!("IMDS gave no usable instance id; the bundle will not name the scanner instance");
        }
        let identity = match self.get("dynamic/instance-identity/rsa2048", &token, MAX_IDENTITY_BYTES) {
            Ok(Some(body)) => identity_value(&body),
            Ok(None) | Err(_) => None,
        };
        if identity.is_none() {
            tracing::warn!(
                "IMDS gave no usable instance identity signature; a collector that checks it will refuse the bundle"
            );
        }
        Ok(ImdsData { user_data, instance_id, identity })
    }

    /// Read the user data, instance id and identity signature, retrying transient failures (connection errors, 5xx,
    /// 429, an expired token) with backoff for at most `budget`.
    ///
    /// # Errors
    ///
    /// IMDS refused the request for good (no user data, IMDS disabled) or did not answer in time.
    pub fn fetch(&self, budget: Duration, initial_backoff: Duration) -> Result<ImdsData, ImdsError> {
        let started = Instant::now();
        let mut backoff = Backoff::new(initial_backoff, Duration::from_secs(10));
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.attempt() {
                Ok(data) => {
                    tracing::info!(attempts, bytes = data.user_data.len(), "read the job manifest from IMDS");
                    return Ok(data);
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(last)) => {
                    let delay = backoff.next_delay();
                    let waited = started.elapsed();
                    if waited + delay > budget {
                        return Err(ImdsError::GaveUp { waited, attempts, last });
                    }
                    tracing::info!(attempt = attempts, error = %last, ?delay, "IMDS not ready; retrying");
                    std::thread::sleep(delay);
                }
            }
        }
    }
}
