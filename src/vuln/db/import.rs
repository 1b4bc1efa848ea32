//! Importing advisory sources into a new database file: OSV `all.zip` archives, directories of
//! OSV JSON (walked recursively), single OSV JSON files, and Alpine secdb YAML files or
//! directories of them.
//!
//! One import is all or nothing: every input is read and every record checked into a new file
//! ([`super::writer`]); any failure — an unreadable input, a refused archive, a record that is
//! not valid OSV — drops the new file, names what failed, and leaves the database in use as it
//! was. Sources already in the database and not named again are kept; a source imported again
//! (same name) is replaced whole.
//!
//! A source's name is the canonical path imported (or what `--name` says; `update` names its
//! sources `osv.dev:<ecosystem>`), so importing the same path again refreshes it.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::archive::{Archive, ArchiveError};
use super::limits::{
    MAX_DIR_DEPTH, MAX_ENTRIES, MAX_RECORD_BYTES, MAX_REPORTED_ERRORS, MAX_SECDB_BYTES, MAX_TEXT_BYTES,
};
use super::secdb::{SecDbError, SecDbRecords};
use super::writer::{Added, SourceCounts, SourceId, SourceMeta, WriteError, Writer};
use crate::vuln::osv;

/// What a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An OSV `all.zip` archive.
    OsvArchive,
    /// One OSV JSON file.
    OsvFile,
    /// A directory of OSV JSON files.
    OsvDirectory,
    /// One Alpine secdb YAML file.
    SecDbFile,
    /// A directory of Alpine secdb YAML files.
    SecDbDirectory,
    /// A directory with both.
    MixedDirectory,
}

impl SourceKind {
    /// The name stored in the database and shown by `vulndb status`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OsvArchive => "osv-zip",
            Self::OsvFile => "osv-json",
            Self::OsvDirectory => "osv-dir",
            Self::SecDbFile => "alpine-secdb",
            Self::SecDbDirectory => "alpine-secdb-dir",
            Self::MixedDirectory => "osv+secdb-dir",
        }
    }
}

/// One thing to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// The source's name [default: the canonical path].
    pub name: Option<String>,
    /// Where the file came from, when not from its path (the URL of a download).
    pub origin: Option<String>,
}

impl Input {
    /// An input named after its path.
    #[must_use]
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), name: None, origin: None }
    }
}

/// What an import did, per source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceReport {
    pub name: String,
    pub kind: &'static str,
    pub origin: String,
    pub sha256: String,
    /// Files (or archive entries) read.
    pub files: u64,
    /// Records stored (after deduplication).
    pub records: u64,
    pub withdrawn: u64,
    pub duplicates: u64,
    /// Files that are neither OSV JSON nor secdb YAML (README, LICENSE...), not read.
    pub skipped: Vec<String>,
    /// Secdb identifiers fixed in version `0` (never affected).
    pub not_affected: u64,
    /// Secdb entries without an identifier.
    pub unrecognised: Vec<String>,
}

/// A successful import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub sources: Vec<SourceReport>,
    /// Sources of the previous database carried over unchanged.
    pub kept: Vec<String>,
    /// True when the previous database was unreadable or of another schema version and was not
    /// carried over.
    pub dropped_old: bool,
    /// Size of the installed database file.
    pub db_bytes: u64,
}

/// Why an import failed (the database in use is unchanged).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: {size} bytes or more, over the {limit}-byte limit")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error("{path}: more than {MAX_ENTRIES} files")]
    TooManyFiles { path: PathBuf },
    #[error("{path}: nested deeper than {MAX_DIR_DEPTH} directories")]
    TooDeep { path: PathBuf },
    #[error("two inputs are named {name:?}: give each a different --name")]
    SameName { name: String },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    SecDb(#[from] SecDbError),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Records that are not valid OSV: the first [`MAX_REPORTED_ERRORS`] are listed.
    #[error("{failed} record(s) refused:{}", listing(.errors, .failed))]
    Records { failed: u64, errors: Vec<String> },
}

/// The errors named, one per line, and how many more there were.
fn listing(errors: &[String], failed: &u64) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str("\n  ");
        out.push_str(e);
    }
    let more = failed.saturating_sub(errors.len() as u64);
    if more > 0 {
        let _ = write!(out, "\n  ... and {more} more");
    }
    out
}

/// Import `inputs` into a new database and install it as `db_path`, keeping the sources of the
/// current database that are not imported again.
///
/// # Errors
///
/// Any input fails to import (see [`ImportError`]); nothing is installed then.
pub fn import(db_path: &Path, inputs: &[Input], now: jiff::Timestamp) -> Result<ImportReport, ImportError> {
    let mut named = Vec::with_capacity(inputs.len());
    for input in inputs {
        let name = match &input.name {
            Some(name) => name.clone(),
            None => std::fs::canonicalize(&input.path)
                .map_err(|source| ImportError::Io { path: input.path.clone(), source })?
                .to_string_lossy()
                .into_owned(),
        };
        if named.iter().any(|(n, _)| *n == name) {
            return Err(ImportError::SameName { name });
        }
        named.push((name, input));
    }
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let mut writer = Writer::begin(db_path, &names, now)?;
    let mut problems = Problems::default();
    let mut reports = Vec::with_capacity(named.len());
    for (name, input) in named {
        reports.push(import_source(&mut writer, name, input, &mut problems)?);
    }
    if problems.failed > 0 {
        return Err(ImportError::Records { failed: problems.failed, errors: problems.errors });
    }
    let kept = writer.kept().to_vec();
    let dropped_old = writer.dropped_old();
    let db_bytes = writer.commit()?;
    Ok(ImportReport { sources: reports, kept, dropped_old, db_bytes })
}

/// Refused records, the first few named.
#[derive(Debug, Default)]
struct Problems {
    failed: u64,
    errors: Vec<String>,
}

impl Problems {
    fn add(&mut self, message: String) {
        self.failed += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(message);
        }
    }
}

/// A source being imported: its id in the new file and its counts.
struct Sink<'w> {
    writer: &'w mut Writer,
    id: SourceId,
    report: SourceReport,
    counts: SourceCounts,
    secdb: SecDbRecords,
}

impl Sink<'_> {
    /// Check and store one OSV JSON document.
    fn json(&mut self, label: &str, bytes: &[u8], problems: &mut Problems) -> Result<(), ImportError> {
        self.report.files += 1;
        let record = match parse_record(label, bytes) {
            Ok(record) => record,
            Err(message) => {
                problems.add(message);
                return Ok(());
            }
        };
        if record.withdrawn.is_some() {
            self.counts.withdrawn += 1;
            return Ok(());
        }
        if self.writer.add_record(self.id, &record)? == Added::Duplicate {
            self.counts.duplicates += 1;
        }
        Ok(())
    }

    /// Convert one secdb file (its records are stored when the source ends).
    fn yaml(&mut self, label: &str, bytes: &[u8], modified: &str) -> Result<(), ImportError> {
        self.report.files += 1;
        self.secdb.add_file(label, bytes, modified)?;
        Ok(())
    }

    fn finish(mut self, sha256: String, problems: &mut Problems) -> Result<SourceReport, ImportError> {
        let secdb = std::mem::take(&mut self.secdb);
        self.report.not_affected = secdb.not_affected;
        self.report.unrecognised.clone_from(&secdb.unrecognised);
        for record in secdb.into_records() {
            match record.validate() {
                Ok(()) => {
                    if self.writer.add_record(self.id, &record)? == Added::Duplicate {
                        self.counts.duplicates += 1;
                    }
                }
                Err(e) => problems.add(format!("{}: {e}", self.report.name)),
            }
        }
        self.writer.finish_source(self.id, &sha256, self.counts)?;
        let stored = self.writer.sources()?.into_iter().find(|s| s.name == self.report.name);
        self.report.records = stored.map_or(0, |s| s.records);
        self.report.withdrawn = self.counts.withdrawn;
        self.report.duplicates = self.counts.duplicates;
        self.report.sha256 = sha256;
        Ok(self.report)
    }
}

/// Parse and check one OSV record; the message names `label`.
fn parse_record(label: &str, bytes: &[u8]) -> Result<osv::Record, String> {
    let record: osv::Record =
        serde_json::from_slice(bytes).map_err(|e| format!("{label}: not a valid OSV record: {e}"))?;
    record.validate().map_err(|e| format!("{label}: {e}"))?;
    let text = record.summary.as_ref().map_or(0, String::len) + record.details.as_ref().map_or(0, String::len);
    if text > MAX_TEXT_BYTES {
        return Err(format!(
            "{label}: {}: summary and details are {text} bytes, over the {MAX_TEXT_BYTES}-byte limit",
            record.id
        ));
    }
    Ok(record)
}

fn import_source(
    writer: &mut Writer,
    name: String,
    input: &Input,
    problems: &mut Problems,
) -> Result<SourceReport, ImportError> {
    let path = &input.path;
    let io = |source| ImportError::Io { path: path.clone(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    let origin = input.origin.clone().unwrap_or_else(|| name_of(path));
    if meta.is_dir() {
        let files = walk(path)?;
        let has_json = files.iter().any(|f| f.kind == FileKind::Json);
        let has_yaml = files.iter().any(|f| f.kind == FileKind::Yaml);
        let kind = match (has_json, has_yaml) {
            (true, true) => SourceKind::MixedDirectory,
            (false, true) => SourceKind::SecDbDirectory,
            _ => SourceKind::OsvDirectory,
        };
        let mut sink = begin(writer, &name, kind, &origin)?;
        let mut listing = Sha256::new();
        for file in files {
            let label = file.path.display().to_string();
            let relative = file.path.strip_prefix(path).unwrap_or(&file.path).to_string_lossy().into_owned();
            match file.kind {
                FileKind::Other => {
                    sink.report.skipped.push(relative);
                    continue;
                }
                FileKind::Json => {
                    let bytes = read_bounded(&file.path, MAX_RECORD_BYTES)?;
                    hash_line(&mut listing, &relative, &bytes);
                    sink.json(&label, &bytes, problems)?;
                }
                FileKind::Yaml => {
                    let bytes = read_bounded(&file.path, MAX_SECDB_BYTES)?;
                    hash_line(&mut listing, &relative, &bytes);
                    let modified = mtime(&file.path)?;
                    sink.yaml(&label, &bytes, &modified)?;
                }
            }
        }
        return sink.finish(hex(&listing.finalize()), problems);
    }
    match file_kind(path, &meta) {
        FileKind::Json => {
            let bytes = read_bounded(path, MAX_RECORD_BYTES)?;
            let mut sink = begin(writer, &name, SourceKind::OsvFile, &origin)?;
            sink.json(&path.display().to_string(), &bytes, problems)?;
            sink.finish(hex(&Sha256::digest(&bytes)), problems)
        }
        FileKind::Yaml => {
            let bytes = read_bounded(path, MAX_SECDB_BYTES)?;
            let modified = mtime(path)?;
            let mut sink = begin(writer, &name, SourceKind::SecDbFile, &origin)?;
            sink.yaml(&path.display().to_string(), &bytes, &modified)?;
            sink.finish(hex(&Sha256::digest(&bytes)), problems)
        }
        FileKind::Other if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip")) || is_zip(path)? => {
            let mut archive = Archive::open(path)?;
            let mut sink = begin(writer, &name, SourceKind::OsvArchive, &origin)?;
            sink.report.skipped = std::mem::take(&mut archive.skipped);
            while let Some(entry) = archive.next_entry()? {
                let label = format!("{}:{}", path.display(), entry.name);
                sink.json(&label, &entry.bytes, problems)?;
            }
            sink.finish(sha256_file(path)?, problems)
        }
        FileKind::Other => Err(ImportError::Unsupported {
            path: path.clone(),
            reason: "not a zip archive, an OSV .json file, secdb .yaml or a directory".into(),
        }),
    }
}

fn begin<'w>(writer: &'w mut Writer, name: &str, kind: SourceKind, origin: &str) -> Result<Sink<'w>, ImportError> {
    let id = writer.add_source(&SourceMeta { name: name.into(), kind: kind.as_str().into(), origin: origin.into() })?;
    Ok(Sink {
        writer,
        id,
        report: SourceReport {
            name: name.into(),
            kind: kind.as_str(),
            origin: origin.into(),
            ..SourceReport::default()
        },
        counts: SourceCounts::default(),
        secdb: SecDbRecords::default(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Json,
    Yaml,
    Other,
}

#[derive(Debug)]
struct Found {
    path: PathBuf,
    kind: FileKind,
}

fn file_kind(path: &Path, meta: &std::fs::Metadata) -> FileKind {
    if !meta.is_file() {
        return FileKind::Other;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => FileKind::Json,
        Some("yaml" | "yml") => FileKind::Yaml,
        _ => FileKind::Other,
    }
}

/// Every regular file under `root`, sorted by path; symbolic links are not followed (listed as
/// skipped files).
fn walk(root: &Path) -> Result<Vec<Found>, ImportError> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if depth > MAX_DIR_DEPTH {
            return Err(ImportError::TooDeep { path: dir });
        }
        let entries = std::fs::read_dir(&dir).map_err(|source| ImportError::Io { path: dir.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| ImportError::Io { path: dir.clone(), source })?;
            let path = entry.path();
            let meta =
                std::fs::symlink_metadata(&path).map_err(|source| ImportError::Io { path: path.clone(), source })?;
            if meta.is_dir() {
                stack.push((path, depth + 1));
                continue;
            }
            if out.len() >= MAX_ENTRIES {
                return Err(ImportError::TooManyFiles { path: root.to_path_buf() });
            }
            let kind = file_kind(&path, &meta);
            out.push(Found { path, kind });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A file's bytes, refused past `limit` (read one byte more to know).
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ImportError> {
    let file = std::fs::File::open(path).map_err(|source| ImportError::Io { path: path.to_path_buf(), source })?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ImportError::Io { path: path.to_path_buf(), source })?;
    if bytes.len() as u64 > limit {
        return Err(ImportError::TooLarge { path: path.to_path_buf(), size: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

fn is_zip(path: &Path) -> Result<bool, ImportError> {
    let mut magic = [0u8; 4];
    let file = std::fs::File::open(path).map_err(|source| ImportError::Io { path: path.to_path_buf(), source })?;
    let n = file.take(4).read(&mut magic).map_err(|source| ImportError::Io { path: path.to_path_buf(), source })?;
    // A local file header, or the end record of an empty archive.
    Ok(n == 4 && (magic == [0x50, 0x4b, 0x03, 0x04] || magic == [0x50, 0x4b, 0x05, 0x06]))
}

/// SHA-256 of a whole file, streamed.
///
/// # Errors
///
/// The file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String, ImportError> {
    let io = |source| ImportError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(&hasher.finalize()))
}

/// One line of a directory's digest: the relative path, NUL, the file's SHA-256, newline.
fn hash_line(listing: &mut Sha256, relative: &str, bytes: &[u8]) {
    listing.update(relative.as_bytes());
    listing.update([0u8]);
    listing.update(hex(&Sha256::digest(bytes)).as_bytes());
    listing.update(b"\n");
}

/// Lower-case hexadecimal.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A file's modification time as RFC 3339 (UTC).
fn mtime(path: &Path) -> Result<String, ImportError> {
    let io = |source| ImportError::Io { path: path.to_path_buf(), source };
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).map_err(io)?;
    let invalid = |e: jiff::Error| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()));
    // Whole seconds: the secdb converter orders these strings as text.
    let time = jiff::Timestamp::try_from(modified).and_then(|t| jiff::Timestamp::from_second(t.as_second()));
    Ok(time.map_err(invalid)?.to_string())
}

/// The canonical path when it resolves, else the path as given.
fn name_of(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).to_string_lossy().into_owned()
}
