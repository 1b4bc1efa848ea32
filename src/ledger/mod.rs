//! The durable ledger of scan jobs (docs/job.md, "What is persisted"): an SQLite file in
//! the data directory holding every job and its state, its targets, every resource it creates
//! (intent first, id after, deletion last) and an event log. After a crash, `agentless jobs
//! resume` reads it to pick every unfinished job up from its last state, and the leak auditor
//! reads it to tell an active job's resources from leaked ones.
//!
//! One concept per file: [`state`] (job states and the transition rule), [`resource`] (kinds, typed
//! ids, the intent protocol's states), [`schema`] (tables and migrations), [`jobs`], [`targets`],
//! [`intents`] (the resource protocol), [`events`] and [`runs`] (the daemon's schedule runs, and
//! the counts its metrics and API read) (the `impl Ledger` blocks), [`error`].
//!
//! # Guarantees
//!
//! - Every write method commits before it returns, in one transaction together with its event: a
//!   transition that returned `Ok` survives a crash of the process (`synchronous = NORMAL` in WAL
//!   mode keeps it across a process crash; only a power loss may lose the last commits, and never
//!   corrupts the file — SQLite documentation, "PRAGMA synchronous").
//! - Write transactions are `IMMEDIATE`: they take the write lock up front, so a concurrent writer
//!   (a second `agentless` process, the auditor) waits up to the busy timeout instead of failing
//!   with `SQLITE_BUSY` half-way. Readers never wait for a writer (WAL).
//! - Values read back are parsed into the typed ids and states; a value this version does not
//!   understand is a [`LedgerError::Corrupt`] naming the table, row and column, never a panic.
//!
//! # Assumptions
//!
//! The data directory is on a local file system (WAL needs shared memory between the processes
//! that open the file; SQLite documentation, "Write-Ahead Logging", section "Disadvantages").

pub mod data;
pub mod error;
pub mod events;
pub mod intents;
pub mod jobs;
pub mod resource;
pub mod runs;
pub mod schema;
pub mod state;
pub mod targets;
pub mod trail;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use error::{LedgerError, Result};
pub use events::{EventKind, EventRecord};
pub use intents::{DeleteOutcome, ResourceRecord};
pub use jobs::JobRecord;
pub use resource::{ResourceId, ResourceKind, ResourceState};
pub use runs::{RunId, RunKind, RunRecord};
pub use state::{JobState, UnknownJobState, can_transition};
pub use targets::{TargetRecord, TargetStatus};

use error::SqlContext;

/// The ledger's file name in the data directory.
pub const FILE_NAME: &str = "ledger.sqlite3";

/// The ledger file's mode, and its siblings': owner read and write only (it holds the HMAC keys
/// of running jobs).
pub const FILE_MODE: u32 = 0o600;

/// How long a write waits for another connection's write transaction. Our own write transactions
/// are a handful of row writes (milliseconds); 5 s covers a burst of them from a concurrent
/// `agentless` process or the auditor many times over, and still fails visibly (as
/// [`LedgerError::Sql`] with "database is locked") if another process holds the file for good.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The id of a resource row: the intent written before the create call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IntentId(i64);

impl IntentId {
    /// The row id.
    #[must_use]
    pub fn get(self) -> i64 {
        self.0
    }

    /// The id of a row number kept elsewhere (e.g. in a job's document); the ledger checks it
    /// exists when it is used.
    #[must_use]
    pub fn from_raw(row: i64) -> IntentId {
        IntentId(row)
    }
}

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where the ledger's timestamps come from (the wall clock unless replaced, e.g. by the simulated
/// account's virtual clock).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The ledger: one SQLite connection. Write methods take `&mut self` (one transaction at a time per
/// connection, checked by the compiler); share it between tasks behind a mutex, or open one per
/// process.
pub struct Ledger {
    conn: Connection,
    path: Option<PathBuf>,
    clock: Clock,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens (creating if needed) `<data_dir>/ledger.sqlite3`, in WAL mode, and migrates its schema.
    ///
    /// # Errors
    ///
    /// The directory or file cannot be created or opened, WAL cannot be turned on, or the file has
    /// a newer schema ([`LedgerError::NewerSchema`]).
    pub fn open(data_dir: &Path) -> Result<Ledger> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| LedgerError::DataDir { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join(FILE_NAME);
        let open_err = |source| LedgerError::Open { path: path.clone(), source };
        // Owner-only from the first byte: the file holds each running job's HMAC key (`job_data`).
        // Created here with 0600 before SQLite opens it (SQLite would create it 0644 & ~umask);
        // SQLite gives its -wal, -shm and -journal siblings the database file's mode.
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let private = |source| LedgerError::DataDir { path: path.clone(), source };
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(FILE_MODE)
                .open(&path)
                .map_err(private)?;
            // A file an older version created (chmodded after the fact), and siblings left by it.
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let p = PathBuf::from(format!("{}{suffix}", path.display()));
                if p.exists() {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(FILE_MODE)).map_err(private)?;
                }
            }
        }
        let conn = Connection::open(&path).map_err(open_err)?;
        // The timeout first: switching to WAL itself needs the lock a concurrent opener may hold.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::NotWal { path, mode });
        }
        Ledger::configure(conn, Some(path))
    }

    /// A ledger in memory (tests; nothing survives the value).
    ///
    /// # Errors
    ///
    /// SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<Ledger> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| LedgerError::Open { path, source })?;
        Ledger::configure(conn, None)
    }

    fn configure(mut conn: Connection, path: Option<PathBuf>) -> Result<Ledger> {
        let shown = path.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
        let open_err = |source| LedgerError::Open { path: shown.clone(), source };
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        // Deleted rows (a finished job's HMAC key) are overwritten with zeros, not only unlinked
        // (SQLite documentation, "PRAGMA secure_delete").
        conn.pragma_update(None, "secure_delete", "ON").map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        if let Err(found) = schema::migrate(&mut conn)? {
            return Err(LedgerError::NewerSchema { path: shown, found, supported: schema::SCHEMA_VERSION });
        }
        Ok(Ledger { conn, path, clock: Arc::new(Timestamp::now) })
    }

    /// Replaces the clock that stamps rows and events.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Ledger {
        self.clock = clock;
        self
    }

    /// Changes how long a write waits for another connection's lock (default [`BUSY_TIMEOUT`]).
    ///
    /// # Errors
    ///
    /// SQLite refuses the setting.
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        self.conn.busy_timeout(timeout).context(|| "setting the busy timeout".into())
    }

    /// The file, `None` in memory.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open file.
    ///
    /// # Errors
    ///
    /// SQLite fails to read the header.
    pub fn schema_version(&self) -> Result<i64> {
        schema::version(&self.conn)
    }

    /// The journal mode SQLite reports (`wal` for a file ledger, `memory` in memory).
    ///
    /// # Errors
    ///
    /// SQLite fails to answer.
    pub fn journal_mode(&self) -> Result<String> {
        self.conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).context(|| "reading journal_mode".into())
    }

    /// Now, in the ledger's unit (ms since the Unix epoch).
    fn now(&self) -> i64 {
        (self.clock)().as_millisecond()
    }

    /// Starts a write transaction (see the module's guarantees).
    fn write(&mut self, what: impl FnOnce() -> String) -> Result<Transaction<'_>> {
        self.conn.transaction_with_behavior(TransactionBehavior::Immediate).context(what)
    }
}

/// A stored time back into a timestamp.
fn timestamp(table: &'static str, row: &str, column: &'static str, ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| LedgerError::Corrupt {
        table,
        row: row.to_owned(),
        column,
        reason: format!("{ms} is not a time in milliseconds since 1970: {e}"),
    })
}

/// A stored text parsed with `FromStr`, or a [`LedgerError::Corrupt`] naming where it came from.
fn parse_column<T>(table: &'static str, row: &str, column: &'static str, value: &str) -> Result<T>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    value.parse().map_err(|e: T::Err| LedgerError::Corrupt {
        table,
        row: row.to_owned(),
        column,
        reason: e.to_string(),
    })
}
