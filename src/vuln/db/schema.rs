//! The advisory database's tables and schema version.
//!
//! A database file is always built whole by one import ([`super::writer`]), so there are no
//! migrations: a file of another version is refused by [`super::AdvisoryDb::open`] and the next
//! import rebuilds it from its inputs (the sources of an older file are not carried over).
//!
//! - `sources`: one row per imported source (name, kind, origin, SHA-256 of what was imported,
//!   import time, counts, newest `modified`).
//! - `records`: one row per (source, advisory id): `modified`, and the record as JSON.
//! - `affected`: (ecosystem, package, record), the index [`super::AdvisoryDb::records_for`] reads.
//! - `aliases`: (alias, record, relation) for the record's aliases, related and upstream ids.
//! - `source_ecosystems`: records per (source, ecosystem), for `vulndb status`.

use rusqlite::Connection;

use super::SourceInfo;

/// The schema version, stored in SQLite's `user_version`.
pub const VERSION: i64 = 1;

/// Create the tables in an empty database.
///
/// # Errors
///
/// A statement fails.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            origin TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            records INTEGER NOT NULL,
            withdrawn INTEGER NOT NULL,
            duplicates INTEGER NOT NULL,
            newest_modified TEXT
        );
        CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            source INTEGER NOT NULL REFERENCES sources(id),
            advisory TEXT NOT NULL,
            modified TEXT NOT NULL,
            modified_unix INTEGER NOT NULL,
            json TEXT NOT NULL,
            UNIQUE (source, advisory)
        );
        CREATE INDEX records_by_advisory ON records (advisory);
        CREATE TABLE affected (
            ecosystem TEXT NOT NULL,
            package TEXT NOT NULL,
            record INTEGER NOT NULL REFERENCES records(id),
            PRIMARY KEY (ecosystem, package, record)
        ) WITHOUT ROWID;
        CREATE INDEX affected_by_record ON affected (record);
        CREATE TABLE aliases (
            alias TEXT NOT NULL,
            record INTEGER NOT NULL REFERENCES records(id),
            relation TEXT NOT NULL,
            PRIMARY KEY (alias, record, relation)
        ) WITHOUT ROWID;
        CREATE INDEX aliases_by_record ON aliases (record);
        CREATE TABLE source_ecosystems (
            source INTEGER NOT NULL REFERENCES sources(id),
            ecosystem TEXT NOT NULL,
            records INTEGER NOT NULL,
            PRIMARY KEY (source, ecosystem)
        ) WITHOUT ROWID;",
    )?;
    conn.pragma_update(None, "user_version", VERSION)
}

/// The file's schema version (0 for a database without our tables).
///
/// # Errors
///
/// The file is not an SQLite database.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Every source with its per-ecosystem counts, by name. `schema` is `main` or an attached
/// database's name.
///
/// # Errors
///
/// A query fails.
pub fn read_sources_in(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<(i64, SourceInfo)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT id, name, kind, origin, sha256, imported_at, records, withdrawn, duplicates, newest_modified \
         FROM {schema}.sources ORDER BY name"
    ))?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            SourceInfo {
                name: row.get(1)?,
                kind: row.get(2)?,
                origin: row.get(3)?,
                sha256: row.get(4)?,
                imported_at: row.get(5)?,
                records: count(row, 6)?,
                withdrawn: count(row, 7)?,
                duplicates: count(row, 8)?,
                ecosystems: Vec::new(),
                newest_modified: row.get(9)?,
            },
        ))
    })?;
    let mut sources = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut eco = conn.prepare(&format!(
        "SELECT ecosystem, records FROM {schema}.source_ecosystems WHERE source = ?1 ORDER BY ecosystem"
    ))?;
    for (id, info) in &mut sources {
        info.ecosystems = eco
            .query_map([*id], |row| Ok((row.get::<_, String>(0)?, count(row, 1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(sources)
}

/// A count column (SQLite integers are signed; ours are never negative).
fn count(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(row.get::<_, i64>(index)?).unwrap_or(0))
}

/// Every source of the main database, by name.
///
/// # Errors
///
/// A query fails.
pub fn read_sources(conn: &Connection) -> rusqlite::Result<Vec<SourceInfo>> {
    Ok(read_sources_in(conn, "main")?.into_iter().map(|(_, info)| info).collect())
}
