//! The daemon's HTTP API, served on the collector's listener: the collector's
//! bundle upload route ([`crate::collector::server::router`], authenticated by each scanner's
//! own HMAC key, its refusals counted in `/metrics`) merged with
//!
//! | route | what |
//! |---|---|
//! | `GET /healthz` | liveness, no authentication |
//! | `GET /metrics` | Prometheus text format ([`metrics`]) |
//! | `GET /v1/jobs` | jobs, newest first; `?state=`, `?schedule=`, `?limit=` (default 100) |
//! | `GET /v1/jobs/{id}` | one job: state, run, targets, resources, failure |
//! | `GET /v1/instances/{id}/latest` | the newest stored SBOM, inventory, baseline and vulnerability report (`vulns`) of an instance, per volume |
//! | `GET /v1/vulns?cve=ID` or `?package=NAME` | which instances and volumes are affected, from each instance's newest results ([`crate::vuln::fleet`]); `&all=true` includes low-urgency findings |
//! | `POST /v1/scans` | an on-demand scan through the daemon (JSON body, see [`ScanRequest`]) |
//!
//! Everything but `/healthz` and the upload needs `Authorization: Bearer <token>` (the token of
//! the configuration or its environment variable), compared in constant time; a missing or wrong
//! token is `401` with `WWW-Authenticate: Bearer`. Errors are JSON `{"error": "..."}`.

pub mod metrics;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cloud::ids::{InstanceId, JobId, Region};
use crate::collector::{Collector, ResultStore};
use crate::job::targets::TargetSelector;
use crate::ledger::{JobRecord, JobState, Ledger};
use metrics::{Gauges, Metrics};

/// Jobs listed when no `limit` is given: a few days of a daemon scanning a dozen (account,
/// Region)s a few times a day (our choice; `?limit=` asks for more).
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// Largest result file returned inline by `/v1/instances/{id}/latest`: the collector's own cap on
/// one volume's files is larger, but an SBOM of a big image is a few MiB (our choice).
pub const MAX_RESULT_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// `POST /v1/scans`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// Account names [default: all].
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Regions [default: each account's].
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub targets: TargetSelector,
}

/// An accepted on-demand scan.
#[derive(Debug, Clone, Serialize)]
pub struct ScanAccepted {
    pub run: i64,
    pub jobs: Vec<JobId>,
}

/// Why an on-demand scan was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScanRefused {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// What starts on-demand scans (the daemon).
pub trait OnDemand: Send + Sync {
    fn scan(&self, req: ScanRequest) -> Pin<Box<dyn Future<Output = Result<ScanAccepted, ScanRefused>> + Send + '_>>;
}

/// Everything the handlers read.
#[derive(Clone)]
pub struct ApiState {
    pub ledger: Arc<Mutex<Ledger>>,
    pub store: ResultStore,
    pub metrics: Arc<Metrics>,
    pub gauges: Arc<dyn Fn() -> Gauges + Send + Sync>,
    pub scans: Arc<dyn OnDemand>,
    pub token: Arc<str>,
    /// Set once SIGTERM arrived.
    pub stopping: Arc<AtomicBool>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").field("store", &self.store).finish_non_exhaustive()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Byte strings equal, in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), state.token.as_bytes()) => next.run(request).await,
        Some(_) | None => {
            let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

async fn healthz(State(state): State<ApiState>) -> Response {
    let stopping = state.stopping.load(Ordering::Relaxed);
    axum::Json(json!({ "status": "ok", "stopping": stopping })).into_response()
}

async fn metrics_text(State(state): State<ApiState>) -> Response {
    let text = state.metrics.render(&(state.gauges)());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

fn lock(state: &ApiState) -> std::sync::MutexGuard<'_, Ledger> {
    state.ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

fn job_json(j: &JobRecord, run: Option<&(crate::ledger::RunId, String)>) -> Value {
    json!({
        "id": j.id,
        "account": j.account,
        "region": j.region,
        "state": j.state.as_str(),
        "created_at": j.created_at.to_string(),
        "updated_at": j.updated_at.to_string(),
        "error": j.error,
        "run": run.map(|(id, _)| id.get()),
        "schedule": run.map(|(_, s)| s.clone()),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    schedule: Option<String>,
    limit: Option<usize>,
}

async fn list_jobs(State(state): State<ApiState>, Query(q): Query<ListQuery>) -> Response {
    let wanted: Option<JobState> = match q.state.as_deref().map(str::parse) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    let l = lock(&state);
    let mut jobs = match l.jobs() {
        Ok(j) => j,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    jobs.reverse();
    let mut out = Vec::new();
    for j in jobs.iter().filter(|j| wanted.is_none_or(|s| j.state == s)) {
        let run = l.run_of_job(&j.id).ok().flatten();
        if let Some(s) = &q.schedule
            && run.as_ref().is_none_or(|(_, name)| name != s)
        {
            continue;
        }
        out.push(job_json(j, run.as_ref()));
        if out.len() >= limit {
            break;
        }
    }
    axum::Json(json!({ "jobs": out })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    limit: Option<usize>,
}

/// The CloudTrail cross-check's alerts, newest first: calls of our principal we did not make,
/// and calls by others on our resources.
async fn alerts(State(state): State<ApiState>, Query(q): Query<AlertQuery>) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    let l = lock(&state);
    match l.trail_alerts(limit) {
        Ok(a) => axum::Json(json!({ "alerts": a })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn show_job(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<JobId>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("\"{}\" is not a job id", id.chars().take(64).collect::<String>()),
        );
    };
    let l = lock(&state);
    let job = match l.job(&id) {
        Ok(Some(j)) => j,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no job {id}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let run = l.run_of_job(&id).ok().flatten();
    let mut v = job_json(&job, run.as_ref());
    let targets: Vec<Value> = l
        .targets(&id)
        .unwrap_or_default()
        .into_iter()
        .map(|t| json!({ "instance": t.instance, "status": t.status.as_str(), "error": t.error }))
        .collect();
    let resources = l.resources(&id).unwrap_or_default();
    let live = resources.iter().filter(|r| r.state != crate::ledger::ResourceState::Deleted).count();
    let doc: Option<crate::job::JobDoc> = crate::job::doc::load(&l, &id).ok().flatten();
    if let Value::Object(m) = &mut v {
        m.insert("targets".into(), Value::Array(targets));
        m.insert("resources".into(), json!({ "total": resources.len(), "live": live }));
        m.insert("failure".into(), json!(doc.as_ref().and_then(|d| d.failure.clone())));
        m.insert("not_removed".into(), json!(doc.as_ref().map(|d| d.leaked.clone()).unwrap_or_default()));
    }
    axum::Json(v).into_response()
}

/// One stored JSON file, or `null` if missing, too large or not JSON.
fn read_json(path: &std::path::Path) -> Value {
    let Ok(meta) = std::fs::metadata(path) else { return Value::Null };
    if meta.len() > MAX_RESULT_FILE_BYTES {
        return json!({ "error": format!("{} bytes: too large to return inline", meta.len()) });
    }
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null)
}

/// The volumes stored for `instance` by `job`, each with its files.
fn stored_volumes(store: &ResultStore, job: &JobId, instance: &InstanceId) -> Vec<Value> {
    // Both ids were parsed, so they are safe path components.
    let dir = store.root().join(job.as_str()).join(instance.as_str());
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut names: Vec<String> =
        entries.filter_map(Result::ok).filter_map(|e| e.file_name().to_str().map(str::to_owned)).collect();
    names.sort();
    let mut out = Vec::new();
    for volume in names {
        let Some(v) = store.volume(job.as_str(), instance.as_str(), &volume) else { continue };
        out.push(json!({
            "volume": volume,
            "device": serde_json::to_value(&v.entry).unwrap_or(Value::Null),
            "inventory": read_json(&v.dir.join("inventory.json")),
            "sbom": read_json(&v.dir.join("sbom.cdx.json")),
            "baseline": read_json(&v.dir.join("baseline.json")),
            "vulns": read_json(&v.dir.join(crate::vuln::findings::FILE_NAME)),
        }));
    }
    out
}

async fn latest(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let Ok(instance) = id.parse::<InstanceId>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("\"{}\" is not an instance id", id.chars().take(64).collect::<String>()),
        );
    };
    let scans = match lock(&state).scans_of_instance(&instance) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        scans.into_iter().find_map(|(job, at)| {
            let volumes = stored_volumes(&store, &job, &instance);
            (!volumes.is_empty())
                .then(|| json!({ "instance": instance, "job": job, "scanned_at": at.to_string(), "volumes": volumes }))
        })
    })
    .await;
    match found {
        Ok(Some(v)) => axum::Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no stored scan of instance {id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the results: {e}")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VulnQuery {
    cve: Option<String>,
    package: Option<String>,
    #[serde(default)]
    all: bool,
}

/// Longest query value accepted (a CVE id or package name is far shorter; our choice).
const MAX_QUERY_VALUE: usize = 256;

async fn vulns(State(state): State<ApiState>, Query(q): Query<VulnQuery>) -> Response {
    let query = match (q.cve, q.package) {
        (Some(c), None) if !c.is_empty() && c.len() <= MAX_QUERY_VALUE => crate::vuln::fleet::Query::Id(c),
        (None, Some(p)) if !p.is_empty() && p.len() <= MAX_QUERY_VALUE => crate::vuln::fleet::Query::Package(p),
        _ => return error(StatusCode::BAD_REQUEST, "give exactly one of cve= or package= (1 to 256 characters)"),
    };
    let store = state.store.clone();
    let all = q.all;
    let answer = tokio::task::spawn_blocking(move || {
        let volumes = crate::vuln::fleet::latest_volumes(&store);
        crate::vuln::fleet::query(&volumes, &query, all)
    })
    .await;
    match answer {
        Ok(a) => {
            let instances: std::collections::BTreeSet<&str> = a.affected.iter().map(|v| v.instance.as_str()).collect();
            let not_assessed: Vec<Value> =
                a.not_assessed.iter().map(|(i, v, why)| json!({ "instance": i, "volume": v, "reason": why })).collect();
            axum::Json(json!({
                "instances": instances,
                "affected": a.affected,
                "not_assessed": not_assessed,
                "volumes_examined": a.volumes_examined,
            }))
            .into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the results: {e}")),
    }
}

async fn scan(State(state): State<ApiState>, body: axum::body::Bytes) -> Response {
    if state.stopping.load(Ordering::Relaxed) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is shutting down");
    }
    let req: ScanRequest = if body.is_empty() {
        ScanRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad scan request: {e}")),
        }
    };
    match state.scans.scan(req).await {
        Ok(a) => (StatusCode::ACCEPTED, axum::Json(a)).into_response(),
        Err(e @ ScanRefused::BadRequest(_)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ ScanRefused::Unavailable(_)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e @ ScanRefused::Internal(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The API routes merged with the collector's upload route.
pub fn router(mut state: ApiState, collector: Collector) -> Router {
    // The collector's refusal counters join the scrape-time gauges.
    let gauges = Arc::clone(&state.gauges);
    let c = collector.clone();
    state.gauges = Arc::new(move || {
        let mut g = gauges();
        g.collector_refusals = c.refusals().into_iter().map(|(reason, n)| (reason.to_owned(), n)).collect();
        g
    });
    let authed = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(show_job))
        .route("/v1/instances/{id}/latest", get(latest))
        .route("/v1/vulns", get(vulns))
        .route("/v1/alerts", get(alerts))
        .route("/v1/scans", post(scan))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
        .merge(authed)
        .merge(crate::collector::server::router(collector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
