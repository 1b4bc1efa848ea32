//! Reader of rpm's SQLite database `rpmdb.sqlite` (Fedora 33+, RHEL 9+, Amazon Linux 2023,
//! CBL-Mariner/Azure Linux): yields the header blob of every row of `Packages(hnum INTEGER
//! PRIMARY KEY, blob BLOB)` in `hnum` order.
//!
//! The file may live inside a disk image, so it is never opened by path: it is copied (at most
//! [`limits::MAX_RPM_SQLITE_BYTES`]) straight from [`FileRead`] into an SQLite in-memory database
//! with `sqlite3_deserialize`, read-only. The database is hostile input, so the connection runs
//! with `SQLITE_DBCONFIG_DEFENSIVE`, `trusted_schema` off, triggers and views disabled,
//! `query_only` and `cell_size_check` on, and `Packages` must be a plain table whose columns are
//! not generated.
//!
//! WAL: rpm puts its database in WAL mode. Only the main file is read: rows still in an
//! un-checkpointed `rpmdb.sqlite-wal` (a transaction that was running when the disk was
//! snapshotted) are not seen, and [`wal_note`] records that in `skipped` when a non-empty WAL file
//! exists. The copy's header is switched from WAL to rollback-journal mode (bytes 18 and 19
//! set from 2 to 1) because an in-memory database cannot open a WAL (SQLite fails with "unable to
//! open database file" on the WAL-mode fixture otherwise); the pages themselves are unchanged.

use std::io::Read;

use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, MAIN_DB};

use super::{BlobSink, Collector};
use crate::fs::{FileRead, FsError, RootFs};
use crate::inventory::{DbFormat, DbRead};
use crate::limits;

/// First 16 bytes of every SQLite 3 database file (sqlite.org/fileformat.html, section 1.3.1).
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Size of the SQLite database header (fileformat.html 1.3).
const SQLITE_HEADER_BYTES: u64 = 100;
/// Header offsets of the file format write/read versions: 1 = legacy journal, 2 = WAL
/// (fileformat.html 1.3.4).
const FORMAT_VERSION_OFFSETS: [u64; 2] = [18, 19];
const FORMAT_WAL: u8 = 2;
const FORMAT_LEGACY: u8 = 1;
/// Largest chunk copied from the file per read call.
const COPY_CHUNK: usize = 1 << 20;

/// Why an `rpmdb.sqlite` could not be read (or only partly).
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error(transparent)]
    Io(#[from] FsError),
    #[error("{size} bytes exceeds the {limit}-byte limit for an rpm sqlite database")]
    TooLarge { size: u64, limit: u64 },
    #[error("not an SQLite 3 database")]
    NotSqlite,
    #[error("no plain table named Packages ({0})")]
    NoTable(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Streams a [`FileRead`] into `sqlite3_deserialize`'s buffer, switching a WAL-mode header to
/// rollback-journal mode on the way.
struct Copier<'a> {
    file: &'a mut dyn FileRead,
    pos: u64,
}

impl Read for Copier<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.file.len().saturating_sub(self.pos);
        let n = buf.len().min(COPY_CHUNK).min(usize::try_from(left).unwrap_or(usize::MAX));
        let Some(chunk) = buf.get_mut(..n) else { return Ok(0) };
        if n == 0 {
            return Ok(0);
        }
        self.file.read_exact_at(self.pos, chunk).map_err(|e| std::io::Error::other(e.to_string()))?;
        for at in FORMAT_VERSION_OFFSETS {
            if let Some(rel) = at.checked_sub(self.pos).and_then(|r| usize::try_from(r).ok())
                && let Some(b) = chunk.get_mut(rel)
                && *b == FORMAT_WAL
            {
                *b = FORMAT_LEGACY;
            }
        }
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

/// Open the database in `file` as a read-only, hardened in-memory connection.
fn open(file: &mut dyn FileRead) -> Result<Connection, SqliteError> {
    let size = file.len();
    let limit = limits::MAX_RPM_SQLITE_BYTES;
    if size > limit {
        return Err(SqliteError::TooLarge { size, limit });
    }
    if size < SQLITE_HEADER_BYTES {
        return Err(SqliteError::NotSqlite);
    }
    let mut magic = [0u8; 16];
    file.read_exact_at(0, &mut magic)?;
    if &magic != SQLITE_MAGIC {
        return Err(SqliteError::NotSqlite);
    }
    let len = usize::try_from(size).map_err(|_| SqliteError::TooLarge { size, limit })?;
    let mut conn = Connection::open_in_memory()?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_WRITABLE_SCHEMA, false)?;
    conn.deserialize_read_exact(MAIN_DB, Copier { file, pos: 0 }, len, true)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "cell_size_check", true)?;
    Ok(conn)
}

/// Check that `Packages` is an ordinary table with stored `hnum` and `blob` columns.
fn check_schema(conn: &Connection) -> Result<(), SqliteError> {
    let mut stmt = conn.prepare("SELECT type, sql FROM main.sqlite_master WHERE name = 'Packages'")?;
    let mut rows = stmt.query([])?;
    let row = rows.next()?.ok_or_else(|| SqliteError::NoTable("no such object".to_owned()))?;
    let kind: String = row.get(0)?;
    let sql: Option<String> = row.get(1)?;
    let is_plain = sql
        .as_deref()
        .is_some_and(|s| s.trim_start().get(..12).is_some_and(|p| p.eq_ignore_ascii_case("CREATE TABLE")));
    if kind != "table" || !is_plain {
        return Err(SqliteError::NoTable(format!("Packages is a {kind}, not a plain table")));
    }
    drop(rows);
    let mut stmt = conn.prepare("SELECT name, hidden FROM pragma_table_xinfo('Packages')")?;
    let mut rows = stmt.query([])?;
    let mut found = 0;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let hidden: i64 = row.get(1)?;
        if name.eq_ignore_ascii_case("hnum") || name.eq_ignore_ascii_case("blob") {
            if hidden != 0 {
                return Err(SqliteError::NoTable(format!("column {name} is generated or hidden")));
            }
            found += 1;
        }
    }
    if found != 2 {
        return Err(SqliteError::NoTable("columns hnum and blob not found".to_owned()));
    }
    Ok(())
}

/// Hand the blob of every `Packages` row to `sink`, in `hnum` order. Rows whose blob is not a
/// BLOB are reported through [`BlobSink::skip`]; an `Err` means the database could not be read
/// or failed part way (rows found before are already delivered).
pub fn read_blobs(file: &mut dyn FileRead, sink: &mut dyn BlobSink) -> Result<(), SqliteError> {
    let conn = open(file)?;
    check_schema(&conn)?;
    let mut stmt = conn.prepare("SELECT hnum, blob FROM main.Packages ORDER BY hnum")?;
    let mut rows = stmt.query([])?;
    let mut n: u64 = 0;
    while let Some(row) = rows.next()? {
        n = n.saturating_add(1);
        let record = match row.get_ref(0)? {
            ValueRef::Integer(h) => format!("hnum {h}"),
            _ => format!("row {n}"),
        };
        match row.get_ref(1)? {
            ValueRef::Blob(b) if b.len() <= limits::MAX_RPM_HEADER_BYTES => {
                if sink.blob(&record, b).is_break() {
                    return Ok(());
                }
            }
            ValueRef::Blob(b) => sink.skip(format!("{record}: blob of {} bytes exceeds the header limit", b.len())),
            other => sink.skip(format!("{record}: blob column holds {:?}, not a blob", other.data_type())),
        }
    }
    Ok(())
}

/// The `skipped` note for a database at `path` with a non-empty `-wal` file next to it.
#[must_use]
pub fn wal_note(fs: &dyn RootFs, path: &str) -> Option<String> {
    let wal = format!("{path}-wal");
    match fs.metadata(&wal) {
        Ok(m) if m.len > 0 => Some(format!(
            "{wal}: {} bytes of write-ahead log not read; changes not yet checkpointed into the \
             main file (a transaction running when the disk was captured) are missing",
            m.len
        )),
        _ => None,
    }
}

/// Read the packages of the `rpmdb.sqlite` database in `file` (found at `path`).
pub fn read(file: &mut dyn FileRead, path: &str) -> DbRead {
    Collector::collect(DbFormat::RpmSqlite, path, |c| read_blobs(file, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFile;
    use crate::inventory::rpm::header::tests::xorshift;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const PATH: &str = "/var/lib/rpm/rpmdb.sqlite";
    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/go-rpmdb/cbl-mariner-2.0-sqlite");

    fn fixture() -> std::io::Result<Vec<u8>> {
        std::fs::read(format!("{DIR}/rpmdb.sqlite"))
    }

    #[test]
    fn mariner_fixture_matches_oracle() -> TestResult {
        let read = read(&mut MemFile(fixture()?), PATH);
        assert_eq!(read.error, None);
        assert!(read.skipped.is_empty(), "{:?}", read.skipped);
        let expected: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{DIR}/expected.json"))?)?;
        let want = expected["packages_oracle"].as_array().ok_or("no packages_oracle")?;
        assert_eq!(want.len(), 129);
        assert_eq!(read.packages.len(), 129);
        for (got, want) in read.packages.iter().zip(want) {
            let s = |k: &str| want[k].as_str().map(str::to_owned);
            assert_eq!(Some(got.name.clone()), s("name"));
            assert_eq!(Some(got.version.clone()), s("version"), "{}", got.name);
            assert_eq!(got.release, s("release"), "{}", got.name);
            assert_eq!(got.epoch.map(u64::from), want["epoch"].as_u64(), "{}", got.name);
            assert_eq!(got.arch, s("arch"), "{}", got.name);
            assert_eq!(got.source_rpm, s("sourceRpm"), "{}", got.name);
            assert_eq!(got.installed_size, want["size"].as_u64(), "{}", got.name);
            assert_eq!(got.license, s("license"), "{}", got.name);
            assert_eq!(got.vendor, s("vendor"), "{}", got.name);
            assert_eq!(got.db, DbFormat::RpmSqlite);
        }
        // The same list, from rpm's own `rpm -qa` output.
        let tsv = std::fs::read_to_string(format!("{DIR}/rpm-qa.oracle.tsv"))?;
        let lines: Vec<&str> = tsv.lines().collect();
        assert_eq!(lines.len(), read.packages.len());
        for (line, p) in lines.iter().zip(&read.packages) {
            let cols: Vec<&str> = line.split('\t').collect();
            let epoch = p.epoch.map_or("(none)".to_owned(), |e| e.to_string());
            assert_eq!(
                cols.get(..5),
                Some(
                    &[
                        p.name.as_str(),
                        epoch.as_str(),
                        &p.version,
                        p.release.as_deref().unwrap_or(""),
                        p.arch.as_deref().unwrap_or("")
                    ][..]
                )
            );
        }
        let epoch1: Vec<&str> = read.packages.iter().filter(|p| p.epoch == Some(1)).map(|p| p.name.as_str()).collect();
        assert_eq!(epoch1, ["ca-certificates-tools", "ca-certificates-shared", "ca-certificates-base"]);

        let t = &expected["test_asserted"];
        let curl = read.packages.iter().find(|p| p.name == "curl").ok_or("no curl")?;
        assert_eq!(Some(curl.version.as_str()), t["version"].as_str());
        assert_eq!(curl.release.as_deref(), t["release"].as_str());
        assert_eq!(curl.arch.as_deref(), t["arch"].as_str());
        assert_eq!(curl.installed_size, t["size"].as_u64());
        assert_eq!(curl.source_rpm.as_deref(), t["sourceRpm"].as_str());
        assert_eq!(curl.license.as_deref(), t["license"].as_str());
        assert_eq!(curl.vendor.as_deref(), t["vendor"].as_str());
        assert_eq!(curl.source_name.as_deref(), Some("curl"));
        assert_eq!(curl.source_version.as_deref(), Some("7.76.0-6.cm2"));
        Ok(())
    }

    #[test]
    fn wal_header_is_switched_in_the_copy_only() -> TestResult {
        let bytes = fixture()?;
        assert_eq!(bytes.get(18..20), Some(&[2u8, 2][..]), "the fixture is a WAL-mode database");
        let mut file = MemFile(bytes);
        let mut out = Vec::new();
        Copier { file: &mut file, pos: 0 }.read_to_end(&mut out)?;
        assert_eq!(out.get(18..20), Some(&[1u8, 1][..]));
        assert_eq!(out.len(), file.0.len());
        assert_eq!(file.0.get(18..20), Some(&[2u8, 2][..]));
        Ok(())
    }

    /// A database built here (in a temp file, then read back through `MemFile`).
    fn build(sql: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("db.sqlite");
        let conn = Connection::open(&path)?;
        conn.execute_batch(sql)?;
        drop(conn);
        Ok(std::fs::read(&path)?)
    }

    #[test]
    fn hostile_schemas_are_refused() -> TestResult {
        let header = crate::inventory::rpm::header::tests::sample().build();
        let hex: String = header.iter().map(|b| format!("{b:02x}")).collect();
        let cases = [
            ("CREATE VIEW Packages AS SELECT 1 AS hnum, x'00' AS blob;".to_owned(), "Packages"),
            (
                "CREATE TABLE Packages(hnum INTEGER PRIMARY KEY, blob BLOB AS (zeroblob(100000000)));\
                 INSERT INTO Packages(hnum) VALUES (1);"
                    .to_owned(),
                "generated",
            ),
            ("CREATE TABLE Other(hnum INTEGER PRIMARY KEY, blob BLOB);".to_owned(), "no such object"),
            ("CREATE TABLE Packages(a, b);".to_owned(), "not found"),
            (
                format!(
                    "CREATE TABLE Packages(hnum INTEGER PRIMARY KEY, blob BLOB); INSERT INTO Packages VALUES (1, x'{hex}'), (2, 'text'), (3, x'00');"
                ),
                "",
            ),
        ];
        for (sql, want) in cases {
            let r = read(&mut MemFile(build(&sql)?), PATH);
            if want.is_empty() {
                assert_eq!(r.error, None, "{sql}");
                assert_eq!(r.packages.len(), 1);
                assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
            } else {
                assert!(r.error.as_deref().is_some_and(|e| e.contains(want)), "{sql}: {r:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn truncated_and_random_files() -> TestResult {
        let full = fixture()?;
        for cut in [0usize, 16, 99, 100, 4096, 8192, 100_000, full.len() / 2, full.len() - 4096] {
            let r = read(&mut MemFile(full.get(..cut).ok_or("cut")?.to_vec()), PATH);
            assert!(r.packages.len() < 129 || r.error.is_some() || !r.skipped.is_empty(), "cut {cut}");
        }
        let r = read(&mut MemFile(full.get(..8192).ok_or("cut")?.to_vec()), PATH);
        assert!(r.error.is_some(), "{r:?}");
        let mut rng = 0xdead_beef_cafe_f00du64;
        for _ in 0..30 {
            let mut b = full.clone();
            for _ in 0..20 {
                let pos = (xorshift(&mut rng) % b.len() as u64) as usize;
                if let Some(x) = b.get_mut(pos) {
                    *x = (xorshift(&mut rng) & 0xff) as u8;
                }
            }
            let r = read(&mut MemFile(b), PATH);
            assert!(r.packages.len() <= 129);
        }
        let mut b: Vec<u8> = (0..50_000).map(|_| (xorshift(&mut rng) & 0xff) as u8).collect();
        b[..16].copy_from_slice(SQLITE_MAGIC);
        assert!(read(&mut MemFile(b), PATH).error.is_some());
        Ok(())
    }
}
