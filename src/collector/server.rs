//! The collector's HTTP endpoint (axum): `PUT /v1/jobs/{job}/bundles/{scanner}` with the bundle
//! as the body, a `Content-Length`, `X-Agentless-Signature` and `X-Agentless-Auth` (docs/bundle.md,
//! "Signature and credential headers").
//!
//! Everything the headers allow is checked before a byte of the body is read
//! ([`Collector::authorize`]): an unknown job or scanner is refused 404, a missing
//! `Content-Length` 411, a declared size over the limit 413, a missing or wrong credential 401, a
//! missing, unverifiable or mismatched instance identity document 401 (503 while the scanner's
//! launch is not recorded yet; [`Collector::check_identity`]).
//! An already stored bundle is acknowledged (200) without reading its body. Then the upload needs
//! a share of the [`super::UploadLimits`] ([`Collector::admit`]): 503 when all upload slots are
//! taken, 429 when its size would pass the bytes in flight, both with `Retry-After`. The body is
//! streamed to a temporary file (mode 0600) under `<data_dir>/incoming` while its HMAC is
//! computed, within a time limit (408), and the file is removed whatever the outcome. A body whose
//! signature does not verify is 401; then the bundle's own checks: 400 a bad bundle, 413 too
//! large, 500 the results could not be stored (the agent retries). Every refusal is counted
//! ([`Collector::refusals`]).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use http_body_util::BodyExt;
use scanner_ami::bundle::BodyMac;
use tokio::io::AsyncWriteExt;

use super::{Authorized, Collector, IngestError, Ingested};

/// The signature header (docs/bundle.md, "Signature and credential headers").
pub const SIGNATURE_HEADER: &str = "x-agentless-signature";

/// The header-only credential ([`scanner_ami::bundle::upload_token`]).
pub const AUTH_HEADER: &str = "x-agentless-auth";

/// The scanner's instance identity ([`scanner_ami::bundle::IDENTITY_HEADER`], [`super::identity`]).
pub const IDENTITY_HEADER: &str = "x-agentless-identity";

fn status(e: &IngestError) -> StatusCode {
    match e {
        IngestError::UnknownJob(_) | IngestError::UnknownScanner { .. } => StatusCode::NOT_FOUND,
        IngestError::MissingSignature
        | IngestError::MissingAuth
        | IngestError::BadAuth { .. }
        | IngestError::BadSignature { .. }
        | IngestError::Identity { .. } => StatusCode::UNAUTHORIZED,
        IngestError::IdentityPending { .. } => StatusCode::SERVICE_UNAVAILABLE,
        IngestError::LengthRequired => StatusCode::LENGTH_REQUIRED,
        IngestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        IngestError::Bundle { source, .. } if source.is_too_large() => StatusCode::PAYLOAD_TOO_LARGE,
        IngestError::Bundle { .. }
        | IngestError::Mismatch { .. }
        | IngestError::LengthMismatch { .. }
        | IngestError::Receive { .. } => StatusCode::BAD_REQUEST,
        IngestError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        IngestError::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
        IngestError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        IngestError::Store { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The answer to a refused upload (counted), with `Retry-After` on 503 and 429.
fn refuse(collector: &Collector, job: &str, scanner: &str, e: IngestError) -> Response {
    let e = collector.refused(e);
    let code = status(&e);
    tracing::warn!(%job, %scanner, reason = e.reason(), error = %e, "bundle refused");
    let mut resp = (code, format!("{e}\n")).into_response();
    if matches!(code, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) {
        let secs = collector.upload_limits().retry_after.as_secs().max(1);
        resp.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Create the temporary file of an upload: `<data_dir>/incoming/upload-*`, the directory 0700,
/// the file 0600 (`tempfile`'s default on Unix), removed when dropped.
fn create_incoming(collector: &Collector) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = collector.incoming_dir();
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let tmp = tempfile::Builder::new().prefix("upload-").tempfile_in(&dir)?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(tmp)
}

/// Stream `body` into `file`, computing its MAC under the scanner's key; at most `length` bytes.
async fn receive(
    body: Body,
    file: &mut tokio::fs::File,
    authorized: &Authorized,
    job: &str,
    scanner: &str,
) -> Result<(), IngestError> {
    let failed = |reason: String| IngestError::Receive { job: job.to_owned(), scanner: scanner.to_owned(), reason };
    let mut mac = BodyMac::new(&authorized.key);
    let mut got = 0u64;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| failed(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        got = got.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        if got > authorized.length {
            return Err(IngestError::LengthMismatch { declared: authorized.length, got });
        }
        mac.update(&data);
        file.write_all(&data).await.map_err(|e| failed(e.to_string()))?;
    }
    if got != authorized.length {
        return Err(IngestError::LengthMismatch { declared: authorized.length, got });
    }
    file.flush().await.map_err(|e| failed(e.to_string()))?;
    if !mac.verify(&authorized.signature) {
        return Err(IngestError::BadSignature { job: job.to_owned(), scanner: scanner.to_owned() });
    }
    Ok(())
}

async fn upload(
    State(collector): State<Collector>,
    Path((job, scanner)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let declared = header(axum::http::header::CONTENT_LENGTH.as_str()).and_then(|v| v.trim().parse::<u64>().ok());
    // Headers only: nothing of the body has been read.
    let authorized = match collector.authorize(&job, &scanner, declared, header(SIGNATURE_HEADER), header(AUTH_HEADER))
    {
        Ok(a) => a,
        Err(e) => return refuse(&collector, &job, &scanner, e),
    };
    // The instance identity, still before the body (after the key: an unauthenticated caller
    // costs no RSA verification).
    if let Err(e) = collector.check_identity(&job, &scanner, header(IDENTITY_HEADER)) {
        return refuse(&collector, &job, &scanner, e);
    }
    if authorized.already_stored {
        tracing::info!(%job, %scanner, "bundle already stored; duplicate upload ignored unread");
        return (StatusCode::OK, "already stored\n").into_response();
    }
    let admission = match collector.admit(authorized.length) {
        Ok(a) => a,
        Err(e) => return refuse(&collector, &job, &scanner, e),
    };
    let c = collector.clone();
    let tmp = match tokio::task::spawn_blocking(move || create_incoming(&c)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            let e = IngestError::Store {
                job: job.clone(),
                scanner: scanner.clone(),
                path: collector.incoming_dir(),
                source: e,
            };
            return refuse(&collector, &job, &scanner, e);
        }
        Err(e) => {
            tracing::error!(%job, %scanner, error = %e, "creating an upload file panicked");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    };
    let mut file = match tmp.reopen() {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => {
            let e = IngestError::Store {
                job: job.clone(),
                scanner: scanner.clone(),
                path: tmp.path().to_path_buf(),
                source: e,
            };
            return refuse(&collector, &job, &scanner, e);
        }
    };
    let limit = collector.upload_limits().body_timeout;
    let received = match tokio::time::timeout(limit, receive(body, &mut file, &authorized, &job, &scanner)).await {
        Ok(r) => r,
        Err(_) => Err(IngestError::Timeout(limit)),
    };
    drop(file);
    if let Err(e) = received {
        // `tmp` is dropped on return: the file is removed.
        return refuse(&collector, &job, &scanner, e);
    }
    let c = collector.clone();
    let (j, s) = (job.clone(), scanner.clone());
    // Parsing and fsyncing a bundle is blocking work; the admission is held until it is done.
    let outcome = tokio::task::spawn_blocking(move || {
        let r = c.ingest_file(&j, &s, &authorized, tmp.path());
        drop(tmp);
        drop(admission);
        r
    })
    .await;
    match outcome {
        Ok(Ok(Ingested::Stored)) => {
            tracing::info!(%job, %scanner, "bundle stored");
            (StatusCode::OK, "stored\n").into_response()
        }
        Ok(Ok(Ingested::Duplicate)) => {
            tracing::info!(%job, %scanner, "bundle already stored; duplicate upload ignored");
            (StatusCode::OK, "already stored\n").into_response()
        }
        Ok(Err(e)) => refuse(&collector, &job, &scanner, e),
        Err(e) => {
            tracing::error!(%job, %scanner, error = %e, "bundle check panicked");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

/// The collector's routes.
pub fn router(collector: Collector) -> Router {
    Router::new()
        .route("/v1/jobs/{job}/bundles/{scanner}", put(upload))
        // The handler enforces the collector's own limits (axum's default of 2 MB would be lower).
        .layer(DefaultBodyLimit::disable())
        .with_state(collector)
}

/// A running collector server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    /// The fingerprint of the certificate it serves; `None` for plain HTTP.
    pin: Option<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Bind `addr` (port 0: any free port) and serve `collector` on it in the background.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn start(collector: Collector, addr: SocketAddr) -> std::io::Result<Server> {
        Server::start_with(collector, addr, None).await
    }

    /// [`Server::start`], over TLS with `tls` if given.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn start_with(
        collector: Collector,
        addr: SocketAddr,
        tls: Option<&super::tls::TlsIdentity>,
    ) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = router(collector);
        let config = tls.map(super::tls::TlsIdentity::server_config);
        let task = tokio::spawn(async move {
            if let Err(e) = super::tls::serve(listener, app, config).await {
                tracing::error!(error = %e, "collector server stopped");
            }
        });
        let pin = tls.map(|t| t.fingerprint().to_owned());
        tracing::info!(%addr, tls = pin.is_some(), "collector listening");
        Ok(Server { addr, pin, task })
    }

    /// `https://<addr>` with TLS, else `http://<addr>`.
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.pin.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The SHA-256 of the certificate served (what manifests pin); `None` for plain HTTP.
    #[must_use]
    pub fn cert_sha256(&self) -> Option<&str> {
        self.pin.as_deref()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
