//! Building a new advisory database file beside the one in use, and swapping it in.
//!
//! [`Writer::begin`] takes the import lock (`vulndb.sqlite.lock`, one import at a time), creates
//! `vulndb.sqlite.new` and copies into it every source of the current database that this import
//! does not replace. The import then adds its sources and records; [`Writer::commit`] makes the
//! file durable and renames it over `vulndb.sqlite`. Dropping a writer without committing deletes
//! the new file: the database in use never changes on failure.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{SourceInfo, schema};
use crate::vuln::osv;

/// What went wrong while building or installing the new file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the import lock {path}: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
    #[error("another import is running on {path} (its lock {lock} is held)")]
    Busy { path: PathBuf, lock: PathBuf },
    #[error("building the new advisory database {path}: {context}: {source}")]
    Sql { path: PathBuf, context: String, source: rusqlite::Error },
    #[error("installing the new advisory database as {path}: {source}")]
    Install { path: PathBuf, source: std::io::Error },
    #[error("record {id}: `modified` {value:?} is not an RFC 3339 time")]
    Modified { id: String, value: String },
    #[error("record {id} could not be serialised: {source}")]
    Serialise { id: String, source: serde_json::Error },
}

/// What happened to a record added to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new id in this source.
    New,
    /// The source already had this id: the copy with the newest `modified` is kept (the first one
    /// seen on a tie).
    Duplicate,
}

/// The counts of a source, written when it is finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts {
    pub withdrawn: u64,
    pub duplicates: u64,
}

/// A source being written (its SHA-256 is known only at the end, see [`Writer::finish_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMeta {
    pub name: String,
    pub kind: String,
    pub origin: String,
}

/// The id of a source row in the new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceId(i64);

/// A new database file under construction.
#[derive(Debug)]
pub struct Writer {
    conn: Connection,
    new_path: PathBuf,
    final_path: PathBuf,
    /// Held (locked) for the writer's life; the lock is released when the file is closed.
    _lock: File,
    imported_at: String,
    /// Sources copied from the database in use.
    kept: Vec<String>,
    /// Set when the database in use was unreadable or of another schema version, so nothing of it
    /// was kept.
    dropped_old: bool,
    /// Set once the new file is renamed into place (then Drop leaves it).
    installed: bool,
}

impl Writer {
    /// Start a new database for `final_path`, keeping the current sources whose names are not in
    /// `replaced`. `imported_at` is stamped on the sources added.
    ///
    /// # Errors
    ///
    /// The data directory cannot be created, another import holds the lock, or SQLite fails.
    pub fn begin(final_path: &Path, replaced: &[String], imported_at: jiff::Timestamp) -> Result<Self, WriteError> {
        let dir = final_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| WriteError::DataDir { path: dir.to_path_buf(), source })?;
        let lock_path = sibling(final_path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| WriteError::Lock { path: lock_path.clone(), source })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(WriteError::Busy { path: final_path.to_path_buf(), lock: lock_path });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(WriteError::Lock { path: lock_path, source }),
        }
        // A file left by an import that crashed: we hold the lock, so nobody else is writing it.
        let new_path = sibling(final_path, ".new");
        let _ = std::fs::remove_file(&new_path);
        let sql = |context: &str| {
            let path = new_path.clone();
            let context = context.to_string();
            move |source| WriteError::Sql { path, context, source }
        };
        let conn = Connection::open(&new_path).map_err(sql("creating the file"))?;
        let mut writer = Self {
            conn,
            new_path: new_path.clone(),
            final_path: final_path.to_path_buf(),
            _lock: lock,
            // Whole seconds, like the publishers' `modified`.
            imported_at: jiff::Timestamp::from_second(imported_at.as_second()).unwrap_or(imported_at).to_string(),
            kept: Vec::new(),
            dropped_old: false,
            installed: false,
        };
        // The file is private until the rename: a crash leaves garbage we delete next time, so
        // no journal and no syncs while building; `commit` syncs once at the end.
        writer
            .conn
            .execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON;")
            .map_err(sql("configuring"))?;
        schema::create(&writer.conn).map_err(sql("creating the tables"))?;
        // ATTACH is refused inside a transaction: attach the database in use first.
        let mut attached = false;
        if final_path.exists() {
            let old = final_path.to_string_lossy().into_owned();
            // A file SQLite cannot attach is not carried over (see `carry_over`).
            attached = writer.conn.execute("ATTACH DATABASE ?1 AS old", [&old]).is_ok();
            writer.dropped_old = !attached;
        }
        writer.conn.execute_batch("BEGIN").map_err(sql("starting the transaction"))?;
        if attached {
            writer.carry_over(replaced)?;
        }
        Ok(writer)
    }

    fn conn(&self) -> &Connection {
        &self.conn
    }

    fn sql(&self, context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> WriteError {
        let path = self.new_path.clone();
        let context = context.into();
        move |source| WriteError::Sql { path, context, source }
    }

    /// Copy the sources of the database in use that are not replaced.
    fn carry_over(&mut self, replaced: &[String]) -> Result<(), WriteError> {
        let conn = self.conn();
        // A file that is not a database of ours (damaged, or of another version) is not carried
        // over: the import rebuilds the database from what it is given.
        let version: Option<i64> = conn.query_row("PRAGMA old.user_version", [], |row| row.get(0)).ok();
        if version != Some(schema::VERSION) {
            self.dropped_old = true;
        } else {
            let sources = schema::read_sources_in(conn, "old").map_err(self.sql("reading the sources in use"))?;
            let mut kept = Vec::new();
            for (id, info) in sources {
                if replaced.contains(&info.name) {
                    continue;
                }
                for table in ["sources", "records", "source_ecosystems"] {
                    let column = if table == "sources" { "id" } else { "source" };
                    conn.execute(
                        &format!("INSERT INTO main.{table} SELECT * FROM old.{table} WHERE {column} = ?1"),
                        [id],
                    )
                    .map_err(self.sql(format!("copying {table} of source {}", info.name)))?;
                }
                for table in ["affected", "aliases"] {
                    conn.execute(
                        &format!(
                            "INSERT INTO main.{table} SELECT * FROM old.{table} \
                             WHERE record IN (SELECT id FROM old.records WHERE source = ?1)"
                        ),
                        [id],
                    )
                    .map_err(self.sql(format!("copying {table} of source {}", info.name)))?;
                }
                kept.push(info.name);
            }
            self.kept = kept;
        }
        // The attachment ends with the connection (DETACH is refused inside the transaction).
        Ok(())
    }

    /// Names of the sources kept from the database in use.
    #[must_use]
    pub fn kept(&self) -> &[String] {
        &self.kept
    }

    /// True when the database in use was unreadable or of another schema version, so none of its
    /// sources was kept.
    #[must_use]
    pub fn dropped_old(&self) -> bool {
        self.dropped_old
    }

    /// Add a source (its counts are written by [`Writer::finish_source`]).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn add_source(&mut self, meta: &SourceMeta) -> Result<SourceId, WriteError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO sources (name, kind, origin, sha256, imported_at, records, withdrawn, duplicates) \
             VALUES (?1, ?2, ?3, '', ?4, 0, 0, 0)",
            params![meta.name, meta.kind, meta.origin, self.imported_at],
        )
        .map_err(self.sql(format!("adding source {}", meta.name)))?;
        Ok(SourceId(conn.last_insert_rowid()))
    }

    /// Add one record (not withdrawn, validated) to a source.
    ///
    /// # Errors
    ///
    /// `modified` is not a time, or SQLite fails.
    pub fn add_record(&mut self, source: SourceId, record: &osv::Record) -> Result<Added, WriteError> {
        let modified = record
            .modified_time()
            .ok_or_else(|| WriteError::Modified { id: record.id.clone(), value: record.modified.clone() })?
            .as_second();
        let json =
            serde_json::to_string(record).map_err(|source| WriteError::Serialise { id: record.id.clone(), source })?;
        let conn = self.conn();
        let what = || format!("storing record {}", record.id);
        let existing: Option<(i64, i64)> = conn
            .prepare_cached("SELECT id, modified_unix FROM records WHERE source = ?1 AND advisory = ?2")
            .and_then(|mut s| {
                s.query_row(params![source.0, record.id], |row| Ok((row.get(0)?, row.get(1)?))).optional()
            })
            .map_err(self.sql(what()))?;
        let row = match existing {
            None => {
                conn.prepare_cached(
                    "INSERT INTO records (source, advisory, modified, modified_unix, json) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| s.execute(params![source.0, record.id, record.modified, modified, json]))
                .map_err(self.sql(what()))?;
                conn.last_insert_rowid()
            }
            Some((_, old)) if old >= modified => return Ok(Added::Duplicate),
            Some((row, _)) => {
                conn.execute(
                    "UPDATE records SET modified = ?2, modified_unix = ?3, json = ?4 WHERE id = ?1",
                    params![row, record.modified, modified, json],
                )
                .and_then(|_| conn.execute("DELETE FROM affected WHERE record = ?1", [row]))
                .and_then(|_| conn.execute("DELETE FROM aliases WHERE record = ?1", [row]))
                .map_err(self.sql(what()))?;
                self.index(row, record).map_err(self.sql(what()))?;
                return Ok(Added::Duplicate);
            }
        };
        self.index(row, record).map_err(self.sql(what()))?;
        Ok(Added::New)
    }

    fn index(&self, row: i64, record: &osv::Record) -> rusqlite::Result<()> {
        let conn = self.conn();
        let mut affected =
            conn.prepare_cached("INSERT OR IGNORE INTO affected (ecosystem, package, record) VALUES (?1, ?2, ?3)")?;
        for package in record.affected.iter().filter_map(|a| a.package.as_ref()) {
            affected.execute(params![package.ecosystem, package.name, row])?;
        }
        let mut alias =
            conn.prepare_cached("INSERT OR IGNORE INTO aliases (alias, record, relation) VALUES (?1, ?2, ?3)")?;
        let relations = [("alias", &record.aliases), ("related", &record.related), ("upstream", &record.upstream)];
        for (relation, ids) in relations {
            for id in ids {
                alias.execute(params![id, row, relation])?;
            }
        }
        Ok(())
    }

    /// Write a source's SHA-256 and counts: records and the newest `modified` from its rows,
    /// records per ecosystem from the index.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn finish_source(&mut self, source: SourceId, sha256: &str, counts: SourceCounts) -> Result<(), WriteError> {
        let conn = self.conn();
        let what = || "counting the source's records".to_string();
        let withdrawn = i64::try_from(counts.withdrawn).unwrap_or(i64::MAX);
        let duplicates = i64::try_from(counts.duplicates).unwrap_or(i64::MAX);
        conn.execute(
            "UPDATE sources SET records = (SELECT COUNT(*) FROM records WHERE source = ?1), \
             withdrawn = ?2, duplicates = ?3, sha256 = ?4, \
             newest_modified = (SELECT modified FROM records WHERE source = ?1 ORDER BY modified_unix DESC LIMIT 1) \
             WHERE id = ?1",
            params![source.0, withdrawn, duplicates, sha256],
        )
        .map_err(self.sql(what()))?;
        conn.execute(
            "INSERT INTO source_ecosystems (source, ecosystem, records) \
             SELECT ?1, a.ecosystem, COUNT(DISTINCT a.record) FROM affected a JOIN records r ON r.id = a.record \
             WHERE r.source = ?1 GROUP BY a.ecosystem",
            [source.0],
        )
        .map_err(self.sql(what()))?;
        Ok(())
    }

    /// The sources of the new file so far.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn sources(&self) -> Result<Vec<SourceInfo>, WriteError> {
        schema::read_sources(self.conn()).map_err(self.sql("reading the sources"))
    }

    /// Commit, make the new file durable and rename it over the database in use. Returns the
    /// size of the installed file.
    ///
    /// # Errors
    ///
    /// SQLite fails, or the file cannot be synced or renamed (the database in use is unchanged).
    pub fn commit(mut self) -> Result<u64, WriteError> {
        self.conn.execute_batch("COMMIT; PRAGMA optimize;").map_err(self.sql("committing"))?;
        let install = |source| WriteError::Install { path: self.final_path.clone(), source };
        let file = File::open(&self.new_path).map_err(install)?;
        file.sync_all().map_err(install)?;
        let size = file.metadata().map_err(install)?.len();
        drop(file);
        std::fs::rename(&self.new_path, &self.final_path).map_err(install)?;
        self.installed = true;
        // The rename is durable once the directory is synced.
        if let Some(dir) = self.final_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(install)?;
        }
        Ok(size)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Not installed: delete the new file (its connection closes after this, which is
        // harmless on POSIX systems: the file's space is freed then).
        if !self.installed {
            let _ = std::fs::remove_file(&self.new_path);
        }
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}
