//! The collector's HTTP endpoint (axum): `PUT /v1/jobs/{job}/bundles/{scanner}` with the bundle
//! as the body and `X-Agentless-Signature`. Status codes: 200 stored (or already stored), 400 a
//! bad bundle, 401 a missing or bad signature, 404 an unknown job or scanner, 413 too large,
//! 500 the results could not be stored (the agent retries). The body limit is enforced before the
//! body is read (a `Content-Length` over the limit is refused at once).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;

use super::{Collector, IngestError, Ingested};
use scanner_ami::bundle::BundleError;

/// The signature header (DESIGN.md, "The result bundle").
pub const SIGNATURE_HEADER: &str = "x-agentless-signature";

fn status(e: &IngestError) -> StatusCode {
    match e {
        IngestError::UnknownJob(_) | IngestError::UnknownScanner { .. } => StatusCode::NOT_FOUND,
        IngestError::MissingSignature | IngestError::BadSignature { .. } => StatusCode::UNAUTHORIZED,
        IngestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        IngestError::Bundle { source, .. } if is_size(source) => StatusCode::PAYLOAD_TOO_LARGE,
        IngestError::Bundle { .. } | IngestError::Mismatch { .. } => StatusCode::BAD_REQUEST,
        IngestError::Store { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn is_size(e: &BundleError) -> bool {
    e.is_too_large()
}

async fn upload(
    State(collector): State<Collector>,
    Path((job, scanner)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, String) {
    let limit = collector.limits().max_body_bytes;
    // A declared size over the limit is refused before a byte of the body is read.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit) {
        tracing::warn!(%job, %scanner, declared = n, limit, "bundle refused: declared size over the limit");
        return (StatusCode::PAYLOAD_TOO_LARGE, format!("body of {n} bytes exceeds the limit of {limit}\n"));
    }
    let body = match axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(%job, %scanner, error = %e, "bundle refused: body unreadable or over the limit");
            return (StatusCode::PAYLOAD_TOO_LARGE, format!("body unreadable or over {limit} bytes: {e}\n"));
        }
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let c = collector.clone();
    let (j, s) = (job.clone(), scanner.clone());
    // Parsing and fsyncing a bundle is blocking work.
    let outcome = tokio::task::spawn_blocking({
        let signature = signature.map(str::to_owned);
        move || c.ingest(&j, &s, signature.as_deref(), &body)
    })
    .await;
    match outcome {
        Ok(Ok(Ingested::Stored)) => {
            tracing::info!(%job, %scanner, "bundle stored");
            (StatusCode::OK, "stored\n".into())
        }
        Ok(Ok(Ingested::Duplicate)) => {
            tracing::info!(%job, %scanner, "bundle already stored; duplicate upload ignored");
            (StatusCode::OK, "already stored\n".into())
        }
        Ok(Err(e)) => {
            tracing::warn!(%job, %scanner, error = %e, "bundle refused");
            (status(&e), format!("{e}\n"))
        }
        Err(e) => {
            tracing::error!(%job, %scanner, error = %e, "bundle check panicked");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
        }
    }
}

/// The collector's routes.
pub fn router(collector: Collector) -> Router {
    Router::new()
        .route("/v1/jobs/{job}/bundles/{scanner}", put(upload))
        // The handler enforces the collector's own limit (axum's default of 2 MB would be lower).
        .layer(DefaultBodyLimit::disable())
        .with_state(collector)
}

/// A running collector server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Bind `addr` (port 0: any free port) and serve `collector` on it in the background.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn start(collector: Collector, addr: SocketAddr) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = router(collector);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "collector server stopped");
            }
        });
        tracing::info!(%addr, "collector listening");
        Ok(Server { addr, task })
    }

    /// `http://<addr>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
