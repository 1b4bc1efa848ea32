//! The intent protocol for every resource a job creates (docs/job.md, "Crash safety and resume"):
//!
//! 1. [`Ledger::record_intent`] before the create call: kind, Region, the `ClientToken` where the
//!    API has one, the tags the create call carries. It returns the [`IntentId`].
//! 2. [`Ledger::record_created`] with the id the call returned. If the process died in between,
//!    the resume finds the resource by its token or by its `agentless:job` tag
//!    ([`Ledger::unresolved_intents`]) and records it the same way — or records that it was never
//!    created ([`Ledger::record_not_created`]).
//! 3. [`Ledger::record_deleted`] once it is gone (teardown or auditor).
//!
//! # Guarantees
//!
//! - A resource id is recorded at most once per (kind, Region), a client token at most once: a
//!   resumed job cannot adopt the same resource twice.
//! - Recording the same id for the same intent again is a no-op, and recording a deletion again
//!   reports [`DeleteOutcome::AlreadyDeleted`]: both steps can be retried after a crash.
//! - [`Ledger::live_resources`] lists created, not deleted resources newest first: the reverse of
//!   creation order, which is dependency order for teardown (a scanner after the subnet it runs in,
//!   so it is terminated before the subnet is deleted).

use jiff::Timestamp;
use rusqlite::{Connection, params};
use serde_json::json;

use super::error::{LedgerError, Result, SqlContext};
use super::events::{self, EventKind};
use super::resource::{ResourceId, ResourceKind, ResourceState};
use super::{IntentId, Ledger, parse_column, timestamp};
use crate::cloud::ids::{JobId, Region};
use crate::cloud::tags::Tags;

/// One resource row, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    pub intent: IntentId,
    pub job: JobId,
    pub kind: ResourceKind,
    pub region: Region,
    /// `None` while an intent, and for an intent recorded as never created.
    pub id: Option<ResourceId>,
    pub client_token: Option<String>,
    /// The tags given to the create call.
    pub tags: Tags,
    pub state: ResourceState,
    /// When the intent was written.
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

/// What [`Ledger::record_deleted`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The row went from `created` to `deleted`.
    Recorded { job: JobId, intent: IntentId },
    /// It was already recorded as deleted.
    AlreadyDeleted { job: JobId, intent: IntentId },
    /// The ledger never knew the resource (the auditor deletes such leaks by their tags).
    NotInLedger,
}

const COLUMNS: &str = "id, job_id, kind, region, resource_id, client_token, tags, state, created_at, deleted_at";

struct Raw {
    id: i64,
    job: String,
    kind: String,
    region: String,
    resource_id: Option<String>,
    client_token: Option<String>,
    tags: String,
    state: String,
    created_at: i64,
    deleted_at: Option<i64>,
}

fn raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: row.get(0)?,
        job: row.get(1)?,
        kind: row.get(2)?,
        region: row.get(3)?,
        resource_id: row.get(4)?,
        client_token: row.get(5)?,
        tags: row.get(6)?,
        state: row.get(7)?,
        created_at: row.get(8)?,
        deleted_at: row.get(9)?,
    })
}

fn record(raw: Raw) -> Result<ResourceRecord> {
    let (t, row) = ("resources", raw.id.to_string());
    let kind: ResourceKind = parse_column(t, &row, "kind", &raw.kind)?;
    let id = raw
        .resource_id
        .as_deref()
        .map(|id| {
            ResourceId::parse(kind, id).map_err(|e| LedgerError::Corrupt {
                table: t,
                row: row.clone(),
                column: "resource_id",
                reason: e.to_string(),
            })
        })
        .transpose()?;
    Ok(ResourceRecord {
        intent: IntentId(raw.id),
        job: parse_column(t, &row, "job_id", &raw.job)?,
        kind,
        region: parse_column(t, &row, "region", &raw.region)?,
        id,
        client_token: raw.client_token,
        tags: serde_json::from_str(&raw.tags).map_err(|e| LedgerError::Corrupt {
            table: t,
            row: row.clone(),
            column: "tags",
            reason: e.to_string(),
        })?,
        state: parse_column(t, &row, "state", &raw.state)?,
        created_at: timestamp(t, &row, "created_at", raw.created_at)?,
        deleted_at: raw.deleted_at.map(|ms| timestamp(t, &row, "deleted_at", ms)).transpose()?,
    })
}

fn query(conn: &Connection, filter: &str, params: impl rusqlite::Params, what: &str) -> Result<Vec<ResourceRecord>> {
    let context = || what.to_owned();
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM resources {filter}")).context(context)?;
    let raws = stmt.query_map(params, raw).context(context)?.collect::<rusqlite::Result<Vec<_>>>().context(context)?;
    raws.into_iter().map(record).collect()
}

fn by_intent(conn: &Connection, intent: IntentId) -> Result<ResourceRecord> {
    query(conn, "WHERE id = ?1", [intent.0], &format!("reading intent {intent}"))?
        .pop()
        .ok_or(LedgerError::UnknownIntent { intent })
}

fn by_id(conn: &Connection, region: &Region, id: &ResourceId) -> Result<Option<ResourceRecord>> {
    Ok(query(
        conn,
        "WHERE kind = ?1 AND region = ?2 AND resource_id = ?3",
        params![id.kind().as_str(), region.as_str(), id.to_stored()],
        &format!("looking up {} {id} in {region}", id.kind()),
    )?
    .pop())
}

impl Ledger {
    /// Writes the intent to create a resource, before the create call.
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownJob`], [`LedgerError::TokenExists`], [`LedgerError::Json`], or
    /// SQLite fails.
    pub fn record_intent(
        &mut self,
        job: &JobId,
        kind: ResourceKind,
        region: &Region,
        client_token: Option<&str>,
        tags: &Tags,
    ) -> Result<IntentId> {
        let now = self.now();
        let tags_json = serde_json::to_string(tags).map_err(|source| LedgerError::Json {
            job: job.clone(),
            what: "tags",
            source,
        })?;
        let tx = self.write(|| format!("job {job}: recording a {kind} intent"))?;
        super::jobs::require_job(&tx, job)?;
        if let Some(token) = client_token
            && let Some(other) = query(&tx, "WHERE client_token = ?1", [token], "looking up a client token")?.pop()
        {
            return Err(LedgerError::TokenExists { token: token.to_owned(), job: other.job, intent: other.intent });
        }
        tx.execute(
            "INSERT INTO resources (job_id, kind, region, client_token, tags, state, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                job.as_str(),
                kind.as_str(),
                region.as_str(),
                client_token,
                tags_json,
                ResourceState::Intent.as_str(),
                now
            ],
        )
        .context(|| format!("job {job}: recording a {kind} intent"))?;
        let intent = IntentId(tx.last_insert_rowid());
        let detail =
            json!({ "intent": intent.0, "kind": kind.as_str(), "region": region, "client_token": client_token });
        events::append(&tx, job, now, EventKind::Intent, &detail)?;
        tx.commit().context(|| format!("job {job}: committing intent {intent}"))?;
        Ok(intent)
    }

    /// Records the id of the resource an intent created. Recording the same id again is a no-op.
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownIntent`], [`LedgerError::KindMismatch`], [`LedgerError::IntentResolved`]
    /// (another id, or the intent was closed), [`LedgerError::ResourceExists`] (the id belongs to
    /// another intent), or SQLite fails.
    pub fn record_created(&mut self, intent: IntentId, id: &ResourceId) -> Result<()> {
        let now = self.now();
        let tx = self.write(|| format!("recording {id} for intent {intent}"))?;
        let row = by_intent(&tx, intent)?;
        if row.kind != id.kind() {
            return Err(LedgerError::KindMismatch {
                job: row.job,
                intent,
                expected: row.kind,
                id: Box::new(id.clone()),
            });
        }
        match row.state {
            ResourceState::Intent => {}
            ResourceState::Created if row.id.as_ref() == Some(id) => return Ok(()),
            ResourceState::Created | ResourceState::Deleted => {
                return Err(LedgerError::IntentResolved {
                    job: row.job,
                    intent,
                    state: row.state,
                    existing: row.id.map(Box::new),
                    id: Box::new(id.clone()),
                });
            }
        }
        if let Some(other) = by_id(&tx, &row.region, id)? {
            return Err(LedgerError::ResourceExists {
                kind: row.kind,
                id: Box::new(id.clone()),
                region: row.region,
                job: other.job,
                intent: other.intent,
            });
        }
        tx.execute(
            "UPDATE resources SET state = ?2, resource_id = ?3 WHERE id = ?1",
            params![intent.0, ResourceState::Created.as_str(), id.to_stored()],
        )
        .context(|| format!("job {}: recording {id} for intent {intent}", row.job))?;
        events::append(&tx, &row.job, now, EventKind::Created, &json!({ "intent": intent.0, "id": id.to_stored() }))?;
        tx.commit().context(|| format!("job {}: committing {id}", row.job))
    }

    /// Closes an intent whose create call is known not to have created anything (it failed, and
    /// neither its token nor its tag finds a resource). Doing it again is a no-op.
    ///
    /// # Errors
    ///
    /// [`LedgerError::UnknownIntent`], [`LedgerError::IntentNotPending`] (it has an id: delete the
    /// resource instead), or SQLite fails.
    pub fn record_not_created(&mut self, intent: IntentId) -> Result<()> {
        let now = self.now();
        let tx = self.write(|| format!("closing intent {intent}"))?;
        let row = by_intent(&tx, intent)?;
        match (row.state, &row.id) {
            (ResourceState::Intent, _) => {}
            (ResourceState::Deleted, None) => return Ok(()),
            (ResourceState::Created | ResourceState::Deleted, _) => {
                return Err(LedgerError::IntentNotPending { job: row.job, intent, state: row.state });
            }
        }
        tx.execute(
            "UPDATE resources SET state = ?2, deleted_at = ?3 WHERE id = ?1",
            params![intent.0, ResourceState::Deleted.as_str(), now],
        )
        .context(|| format!("job {}: closing intent {intent}", row.job))?;
        events::append(&tx, &row.job, now, EventKind::NotCreated, &json!({ "intent": intent.0 }))?;
        tx.commit().context(|| format!("job {}: committing the close of intent {intent}", row.job))
    }

    /// Records that a resource is gone.
    ///
    /// # Errors
    ///
    /// SQLite fails, or the stored row is damaged.
    pub fn record_deleted(&mut self, region: &Region, id: &ResourceId) -> Result<DeleteOutcome> {
        let now = self.now();
        let tx = self.write(|| format!("recording the deletion of {id}"))?;
        let Some(row) = by_id(&tx, region, id)? else {
            return Ok(DeleteOutcome::NotInLedger);
        };
        match row.state {
            ResourceState::Deleted => return Ok(DeleteOutcome::AlreadyDeleted { job: row.job, intent: row.intent }),
            // An intent has no id, so `by_id` cannot return one; treat it like a created row.
            ResourceState::Intent | ResourceState::Created => {}
        }
        tx.execute(
            "UPDATE resources SET state = ?2, deleted_at = ?3 WHERE id = ?1",
            params![row.intent.0, ResourceState::Deleted.as_str(), now],
        )
        .context(|| format!("job {}: recording the deletion of {id}", row.job))?;
        let detail = json!({ "intent": row.intent.0, "id": id.to_stored() });
        events::append(&tx, &row.job, now, EventKind::Deleted, &detail)?;
        tx.commit().context(|| format!("job {}: committing the deletion of {id}", row.job))?;
        Ok(DeleteOutcome::Recorded { job: row.job, intent: row.intent })
    }

    /// The job's intents that have no id yet, oldest first: on restart, find each by its client
    /// token or by the `agentless:job` tag, then [`record_created`](Ledger::record_created) or
    /// [`record_not_created`](Ledger::record_not_created).
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn unresolved_intents(&self, job: &JobId) -> Result<Vec<ResourceRecord>> {
        query(
            &self.conn,
            "WHERE job_id = ?1 AND state = ?2 ORDER BY id",
            params![job.as_str(), ResourceState::Intent.as_str()],
            &format!("job {job}: reading unresolved intents"),
        )
    }

    /// The job's created and not yet deleted resources, newest first (teardown order).
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn live_resources(&self, job: &JobId) -> Result<Vec<ResourceRecord>> {
        query(
            &self.conn,
            "WHERE job_id = ?1 AND state = ?2 ORDER BY id DESC",
            params![job.as_str(), ResourceState::Created.as_str()],
            &format!("job {job}: reading live resources"),
        )
    }

    /// Every resource row of the job, in creation order.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn resources(&self, job: &JobId) -> Result<Vec<ResourceRecord>> {
        query(&self.conn, "WHERE job_id = ?1 ORDER BY id", [job.as_str()], &format!("job {job}: reading resources"))
    }

    /// The row of a resource by its id, `None` if the ledger never recorded it (the auditor's
    /// lookup: which job a resource found in the account belongs to).
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn resource(&self, region: &Region, id: &ResourceId) -> Result<Option<ResourceRecord>> {
        by_id(&self.conn, region, id)
    }

    /// The row of an intent by its client token.
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn resource_by_token(&self, client_token: &str) -> Result<Option<ResourceRecord>> {
        Ok(query(&self.conn, "WHERE client_token = ?1", [client_token], "looking up a client token")?.pop())
    }

    /// Every row of a kind, in every state, in creation order; in one Region or all (e.g. the KMS
    /// grants, whose keys the auditor lists grants on).
    ///
    /// # Errors
    ///
    /// SQLite fails, or a stored value is damaged.
    pub fn all_resources_of_kind(&self, kind: ResourceKind, region: Option<&Region>) -> Result<Vec<ResourceRecord>> {
        let what = format!("reading every {kind}");
        match region {
            Some(region) => query(
                &self.conn,
                "WHERE kind = ?1 AND region = ?2 ORDER BY id",
                params![kind.as_str(), region.as_str()],
                &what,
            ),
            None => query(&self.conn, "WHERE kind = ?1 ORDER BY id", [kind.as_str()], &what),
        }
    }
}
