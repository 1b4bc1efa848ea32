//! The ledger's schema and its migrations, versioned by SQLite's `user_version` header field.
//!
//! `MIGRATIONS[n]` takes a database from version `n` to `n + 1`; a fresh file is version 0. A file
//! with a version above [`SCHEMA_VERSION`] was written by a later agentless and is refused rather
//! than read with a guess at its meaning.
//!
//! # Version 1
//!
//! - `jobs`: one row per job; `state` is a [`JobState`](super::JobState) name, `error` the last
//!   error recorded for the job.
//! - `targets`: one row per (job, instance) with its own status and error.
//! - `resources`: one row per create, in creation order (`id`, the [`IntentId`](super::IntentId)).
//!   `state` is `intent` (written before the create call, `resource_id` NULL), `created` (id known)
//!   or `deleted` (gone, or never created; `resource_id` NULL in the latter case). An id is recorded
//!   once per (kind, region), a client token once.
//! - `events`: the job's log, `detail` a JSON value.
//!
//! # Version 2
//!
//! - `job_data`: named JSON documents of a job (`name` unique per job): the job's working document
//!   (discovered targets, snapshot and scanner maps) that resume reads, and its HMAC key. The file
//!   is created with mode 0600 for that reason ([`super::Ledger::open`]).
//!
//! # Version 3
//!
//! - `schedules`: each schedule of the daemon's configuration, by name, with the time the daemon
//!   first saw it (`added_at`: a new schedule has no missed run before it).
//! - `runs`: one row per run of a schedule (or on-demand scan) the daemon started: `due_at` the
//!   cron time it is for, `kind` `scheduled`, `missed` (run on start for a time the daemon was
//!   down) or `on-demand`, `finished_at` set when every job of the run is over. One run per
//!   (schedule, due time).
//! - `run_jobs`: the jobs of each run.
//!
//! # Version 4
//!
//! - `job_data_parts`: a `job_data` document stored in parts (one row per part, `part` its key),
//!   so a change to one part rewrites one small row instead of the whole document: the job's
//!   working document keeps one part per target (`t:<instance>`) and per scanner (`s:<index>`).
//!
//! # Version 5
//!
//! The CloudTrail pipeline (docs/trail.md):
//! - `trail_objects`: each log object read from the trail bucket, by (bucket, key, ETag), with
//!   how many times its notification was delivered and what reading it gave; an object is
//!   processed once, whatever the number of deliveries.
//! - `event_scans`: instances an event asked to scan, one row per (account, Region, instance),
//!   coalescing every event until the row is due and taken.
//! - `our_calls`: the calls our principal sent to AWS (operation, Region, time, the ids named),
//!   matched against CloudTrail's records of our principal; `seen` counts the records matched.
//! - `trail_alerts`: a call of our principal we did not make, or a call on our resources by
//!   another principal, one row per CloudTrail event id.
//!
//! Times are milliseconds since the Unix epoch (UTC). Tables are `STRICT` (a wrongly typed value is
//! refused on write).

use rusqlite::{Connection, TransactionBehavior};

use super::error::{Result, SqlContext};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 5;

const V1: &str = "
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY NOT NULL,
    account     TEXT NOT NULL,
    region      TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    error       TEXT
) STRICT;
CREATE INDEX jobs_by_state ON jobs (state);

CREATE TABLE targets (
    job_id      TEXT NOT NULL REFERENCES jobs (id),
    instance_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (job_id, instance_id)
) STRICT;

CREATE TABLE resources (
    id           INTEGER PRIMARY KEY,
    job_id       TEXT NOT NULL REFERENCES jobs (id),
    kind         TEXT NOT NULL,
    region       TEXT NOT NULL,
    resource_id  TEXT,
    client_token TEXT,
    tags         TEXT NOT NULL CHECK (json_valid(tags)),
    state        TEXT NOT NULL CHECK (state IN ('intent', 'created', 'deleted')),
    created_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    CHECK ((state = 'intent') = (resource_id IS NULL) OR state = 'deleted'),
    CHECK ((state = 'deleted') = (deleted_at IS NOT NULL))
) STRICT;
CREATE INDEX resources_by_job ON resources (job_id, state);
CREATE INDEX resources_by_kind ON resources (kind, region);
CREATE UNIQUE INDEX resources_by_id ON resources (kind, region, resource_id) WHERE resource_id IS NOT NULL;
CREATE UNIQUE INDEX resources_by_token ON resources (client_token) WHERE client_token IS NOT NULL;

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs (id),
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL CHECK (json_valid(detail))
) STRICT;
CREATE INDEX events_by_job ON events (job_id, id);
";

const V2: &str = "
CREATE TABLE job_data (
    job_id      TEXT NOT NULL REFERENCES jobs (id),
    name        TEXT NOT NULL,
    value       TEXT NOT NULL CHECK (json_valid(value)),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
) STRICT;
";

const V3: &str = "
CREATE TABLE schedules (
    name        TEXT PRIMARY KEY NOT NULL,
    added_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    schedule    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('scheduled', 'missed', 'on-demand')),
    due_at      INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;
CREATE UNIQUE INDEX runs_by_due ON runs (schedule, due_at);
CREATE INDEX runs_unfinished ON runs (finished_at) WHERE finished_at IS NULL;

CREATE TABLE run_jobs (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    job_id      TEXT NOT NULL REFERENCES jobs (id),
    PRIMARY KEY (run_id, job_id)
) STRICT;
CREATE INDEX run_jobs_by_job ON run_jobs (job_id);
CREATE INDEX targets_by_instance ON targets (instance_id, status);
";

const V4: &str = "
CREATE TABLE job_data_parts (
    job_id      TEXT NOT NULL REFERENCES jobs (id),
    name        TEXT NOT NULL,
    part        TEXT NOT NULL,
    value       TEXT NOT NULL CHECK (json_valid(value)),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (job_id, name, part)
) STRICT;
";

const V5: &str = "
CREATE TABLE trail_objects (
    bucket        TEXT NOT NULL,
    key           TEXT NOT NULL,
    etag          TEXT NOT NULL,
    account       TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    deliveries    INTEGER NOT NULL,
    processed_at  INTEGER,
    outcome       TEXT,
    records       INTEGER,
    PRIMARY KEY (bucket, key, etag)
) STRICT;

CREATE TABLE event_scans (
    account        TEXT NOT NULL,
    region         TEXT NOT NULL,
    instance_id    TEXT NOT NULL,
    first_event_at INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    events         INTEGER NOT NULL,
    reasons        TEXT NOT NULL,
    PRIMARY KEY (account, region, instance_id)
) STRICT;
CREATE INDEX event_scans_by_due ON event_scans (due_at);

CREATE TABLE our_calls (
    id       INTEGER PRIMARY KEY,
    account  TEXT NOT NULL,
    region   TEXT NOT NULL,
    op       TEXT NOT NULL,
    at       INTEGER NOT NULL,
    ids      TEXT NOT NULL,
    seen     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX our_calls_by_op ON our_calls (account, op, at);

CREATE TABLE trail_alerts (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    account     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    raised_at   INTEGER NOT NULL,
    event_time  INTEGER NOT NULL,
    region      TEXT NOT NULL,
    event_name  TEXT NOT NULL,
    principal   TEXT,
    source_ip   TEXT,
    user_agent  TEXT,
    resources   TEXT NOT NULL CHECK (json_valid(resources)),
    detail      TEXT NOT NULL
) STRICT;
";

/// `MIGRATIONS[n]` upgrades version `n` to `n + 1`.
const MIGRATIONS: [&str; 5] = [V1, V2, V3, V4, V5];

/// The version found in the file, before any migration.
pub(super) fn version(conn: &Connection) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0)).context(|| "reading user_version".into())
}

/// Brings the schema to [`SCHEMA_VERSION`]. Returns `Err(found)` for a newer file.
///
/// The check and the upgrade run in one `IMMEDIATE` transaction, so two processes opening a fresh
/// file at once migrate it once.
pub(super) fn migrate(conn: &mut Connection) -> Result<std::result::Result<(), i64>> {
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).context(|| "starting the migration".into())?;
    let found = version(&tx)?;
    if found > SCHEMA_VERSION {
        return Ok(Err(found));
    }
    // `found` is in 0..=SCHEMA_VERSION here (a negative user_version is also "older").
    for (from, sql) in MIGRATIONS.iter().enumerate() {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        if from < found {
            continue;
        }
        tx.execute_batch(sql).context(|| format!("migrating the schema from version {from}"))?;
        tx.pragma_update(None, "user_version", from + 1).context(|| "writing user_version".into())?;
    }
    tx.commit().context(|| "committing the migration".into())?;
    Ok(Ok(()))
}
