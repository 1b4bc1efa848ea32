//! The ledger's one error type: every variant names the job, intent or resource it is about.

use std::path::PathBuf;

use super::IntentId;
use super::resource::{ResourceId, ResourceKind, ResourceState};
use super::state::JobState;
use crate::cloud::ids::{InstanceId, JobId, Region};

/// What went wrong in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    /// The database could not be opened or configured.
    #[error("cannot open the ledger {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    /// The file is a ledger of a later version of agentless.
    #[error(
        "the ledger {path} has schema version {found}, newer than the {supported} this agentless knows; \
         use a newer agentless or another data directory"
    )]
    NewerSchema { path: PathBuf, found: i64, supported: i64 },
    /// WAL journaling could not be turned on (the file system may not support shared memory).
    #[error("the ledger {path} could not be switched to WAL journaling (journal_mode is \"{mode}\")")]
    NotWal { path: PathBuf, mode: String },
    /// A statement failed. `context` says what the ledger was doing, for which job or resource.
    #[error("ledger: {context}: {source}")]
    Sql { context: String, source: rusqlite::Error },
    /// A job with this id is already in the ledger.
    #[error("job {job} is already in the ledger")]
    JobExists { job: JobId },
    /// No job with this id is in the ledger.
    #[error("job {job} is not in the ledger")]
    UnknownJob { job: JobId },
    /// A transition [`can_transition`](super::can_transition) forbids.
    #[error("job {job}: the transition {from} -> {to} is not allowed")]
    Transition { job: JobId, from: JobState, to: JobState },
    /// A target that is not part of the job.
    #[error("job {job}: instance {instance} is not one of its targets")]
    UnknownTarget { job: JobId, instance: InstanceId },
    /// No intent with this id is in the ledger.
    #[error("intent {intent} is not in the ledger")]
    UnknownIntent { intent: IntentId },
    /// The id given for an intent is of another kind.
    #[error("job {job}: intent {intent} is for a {expected}, but {id} is a {}", id.kind())]
    KindMismatch { job: JobId, intent: IntentId, expected: ResourceKind, id: Box<ResourceId> },
    /// The intent is no longer waiting for its id.
    #[error("job {job}: intent {intent} is already {state}{}; cannot record {id}",
        existing.as_ref().map(|e| format!(" as {e}")).unwrap_or_default())]
    IntentResolved {
        job: JobId,
        intent: IntentId,
        state: ResourceState,
        existing: Option<Box<ResourceId>>,
        id: Box<ResourceId>,
    },
    /// The intent is no longer waiting for its id (and no id was offered).
    #[error("job {job}: intent {intent} is already {state}")]
    IntentNotPending { job: JobId, intent: IntentId, state: ResourceState },
    /// The resource is already recorded, for this or another intent.
    #[error("{kind} {id} in {region} is already recorded for job {job} (intent {intent})")]
    ResourceExists { kind: ResourceKind, id: Box<ResourceId>, region: Region, job: JobId, intent: IntentId },
    /// The client token is already used by another intent.
    #[error("client token \"{token}\" is already used by intent {intent} of job {job}")]
    TokenExists { token: String, job: JobId, intent: IntentId },
    /// A value read from the database is not what this version writes: the file was damaged or
    /// edited by hand.
    #[error("the ledger is damaged: {table} row {row}, column {column}: {reason}")]
    Corrupt { table: &'static str, row: String, column: &'static str, reason: String },
    /// Tags or event details could not be turned into JSON.
    #[error("job {job}: cannot encode {what} as JSON: {source}")]
    Json { job: JobId, what: &'static str, source: serde_json::Error },
}

/// Result of a ledger operation.
pub type Result<T> = std::result::Result<T, LedgerError>;

/// Adds what the ledger was doing to a SQLite error.
pub(super) trait SqlContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SqlContext<T> for std::result::Result<T, rusqlite::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| LedgerError::Sql { context: context(), source })
    }
}
