//! The offline advisory database: OSV records from OSV archives, directories of
//! OSV JSON and Alpine secdb YAML, in one SQLite file of the data directory (`vulndb.sqlite`),
//! indexed by (ecosystem, package name) so the matcher's question — which advisories name this
//! package of this release — is one indexed query.
//!
//! One concept per file: [`schema`] (tables and the schema version), [`writer`] (building a new
//! database file beside the one in use and swapping it in), [`archive`] (bounded reading of
//! `all.zip`), [`import`] (sources to records), [`secdb`] (Alpine secdb YAML to OSV), [`update`]
//! (downloading osv.dev's archives), [`limits`]. This file is the read side the matcher uses.
//!
//! # Guarantees
//!
//! - An import never changes the database in use: it writes a new file and renames it over the
//!   old one only when every input imported (rename is atomic on POSIX file systems). A reader
//!   that opened the old file keeps reading it until it reopens.
//! - Each stored record is the record as the publisher wrote it (fields of OSV 1.6, re-serialised)
//!   and knows its source. Within a source an id is stored once (the newest `modified`); withdrawn
//!   records are not stored.
//! - [`AdvisoryDb::records_for`] returns each advisory id once, with only the `affected` entries of
//!   the package asked.

pub mod archive;
pub mod import;
pub mod limits;
pub mod schema;
pub mod secdb;
pub mod update;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::osv;

/// The database's file name in the data directory.
pub const FILE_NAME: &str = "vulndb.sqlite";

/// The database file of a data directory.
#[must_use]
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// What went wrong reading the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No database file: nothing was imported yet.
    #[error("no advisory database at {path}: import one with `agentless vulndb import` or `agentless vulndb update`")]
    Missing { path: PathBuf },
    /// The file could not be opened as an SQLite database.
    #[error("cannot open the advisory database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    /// The file was built by another version of agentless.
    #[error(
        "the advisory database {path} has schema version {found}, this agentless reads version {supported}: \
         import the advisories again (`agentless vulndb import` or `update`)"
    )]
    Schema { path: PathBuf, found: i64, supported: i64 },
    /// A query failed.
    #[error("advisory database: {context}: {source}")]
    Sql { context: String, source: rusqlite::Error },
    /// A stored record does not parse (the file was changed outside agentless).
    #[error("advisory database: stored record {id} is damaged: {source}")]
    Corrupt { id: String, source: serde_json::Error },
}

trait SqlContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, DbError>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, DbError> {
        self.map_err(|source| DbError::Sql { context: what(), source })
    }
}

/// One imported source, as `vulndb status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceInfo {
    /// The source's name (`osv.dev:AlmaLinux`, or the path imported unless `--name` was given).
    pub name: String,
    /// What was imported: see [`import::SourceKind`].
    pub kind: String,
    /// Where it came from (a path or a URL).
    pub origin: String,
    /// SHA-256 of what was imported (of the file; for a directory, of its sorted file list with
    /// each file's SHA-256).
    pub sha256: String,
    /// When it was imported (RFC 3339, UTC).
    pub imported_at: String,
    /// Records stored.
    pub records: u64,
    /// Withdrawn records left out.
    pub withdrawn: u64,
    /// Records of an id already seen in the source (the newest `modified` was kept).
    pub duplicates: u64,
    /// Records per ecosystem (a record naming packages of two ecosystems counts in both).
    pub ecosystems: Vec<(String, u64)>,
    /// The newest `modified` of the source's records (RFC 3339), if it has any.
    pub newest_modified: Option<String>,
}

/// The advisory database, opened read-only.
#[derive(Debug)]
pub struct AdvisoryDb {
    conn: Connection,
    path: PathBuf,
}

impl AdvisoryDb {
    /// Open the database file read-only.
    ///
    /// # Errors
    ///
    /// The file does not exist, is not an SQLite database, or has another schema version.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        if !path.exists() {
            return Err(DbError::Missing { path: path.to_path_buf() });
        }
        let open_err = |source| DbError::Open { path: path.to_path_buf(), source };
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(open_err)?;
        let found = schema::version(&conn).map_err(open_err)?;
        if found != schema::VERSION {
            return Err(DbError::Schema { path: path.to_path_buf(), found, supported: schema::VERSION });
        }
        Ok(Self { conn, path: path.to_path_buf() })
    }

    /// The file this database was opened from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records affecting (ecosystem, package name), each with the `affected` entries for that
    /// package only. Names and ecosystems are compared exactly (`Debian` does not match
    /// `Debian:12`). When two sources hold the same id, the newest `modified` is returned (on a
    /// tie, the source imported last). Ordered by id.
    ///
    /// # Errors
    ///
    /// A query fails or a stored record is damaged.
    pub fn records_for(&self, ecosystem: &str, package: &str) -> Result<Vec<osv::Record>, DbError> {
        let what = || format!("reading the records of {ecosystem} {package}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.advisory, r.modified_unix, r.source, r.json FROM affected a \
                 JOIN records r ON r.id = a.record \
                 WHERE a.ecosystem = ?1 AND a.package = ?2",
            )
            .context(what)?;
        let rows = stmt
            .query_map((ecosystem, package), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?, row.get::<_, String>(3)?))
            })
            .context(what)?;
        // Newest copy of each id: (modified, source) decides.
        let mut newest: HashMap<String, (i64, i64, String)> = HashMap::new();
        for row in rows {
            let (id, modified, source, json) = row.context(what)?;
            let keep = newest.get(&id).is_none_or(|(m, s, _)| (modified, source) > (*m, *s));
            if keep {
                newest.insert(id, (modified, source, json));
            }
        }
        let mut out = Vec::with_capacity(newest.len());
        for (id, (_, _, json)) in newest {
            let mut record: osv::Record =
                serde_json::from_str(&json).map_err(|source| DbError::Corrupt { id: id.clone(), source })?;
            record
                .affected
                .retain(|a| a.package.as_ref().is_some_and(|p| p.ecosystem == ecosystem && p.name == package));
            out.push(record);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// True when the database holds any record of `ecosystem` (e.g. "AlmaLinux:9", "Alpine:v3.4").
    ///
    /// # Errors
    ///
    /// The query fails.
    pub fn covers(&self, ecosystem: &str) -> Result<bool, DbError> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM affected WHERE ecosystem = ?1)", [ecosystem], |row| row.get(0))
            .context(|| format!("checking whether {ecosystem} is covered"))
    }

    /// Sources imported, by name.
    ///
    /// # Errors
    ///
    /// A query fails.
    pub fn sources(&self) -> Result<Vec<SourceInfo>, DbError> {
        schema::read_sources(&self.conn).context(|| "reading the sources".into())
    }

    /// Advisory ids (of any source) that name `alias` as an alias, a related or an upstream id
    /// (`CVE-2023-0286` → `ALSA-2023:0946`), sorted and deduplicated.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub fn ids_for_alias(&self, alias: &str) -> Result<Vec<String>, DbError> {
        let what = || format!("looking up {alias}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT r.advisory FROM aliases a JOIN records r ON r.id = a.record \
                 WHERE a.alias = ?1 ORDER BY r.advisory",
            )
            .context(what)?;
        let ids = stmt.query_map([alias], |row| row.get(0)).context(what)?;
        ids.collect::<rusqlite::Result<Vec<String>>>().context(what)
    }

    /// The stored record `id` of the source imported last that holds it (all its `affected`
    /// entries), if any.
    ///
    /// # Errors
    ///
    /// The query fails or the record is damaged.
    pub fn record(&self, id: &str) -> Result<Option<osv::Record>, DbError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT json FROM records WHERE advisory = ?1 ORDER BY modified_unix DESC, source DESC LIMIT 1",
                [id],
                |row| row.get(0),
            )
            .optional()
            .context(|| format!("reading record {id}"))?;
        json.map(|j| serde_json::from_str(&j).map_err(|source| DbError::Corrupt { id: id.to_string(), source }))
            .transpose()
    }
}
