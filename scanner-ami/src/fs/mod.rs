//! The read-only filesystem seam: [`RootFs`] is what every package-database reader and the OS
//! detector see, whatever the backing store (an ext4 partition read in userspace, or a directory
//! tree for `--root`).
//!
//! Paths are absolute, `/`-separated and interpreted inside the scanned filesystem: symlinks are
//! resolved against the scanned root, never against the scanner's own disk.

pub mod btrfs;
pub mod dir;
pub mod ext4;
pub mod mounted;
pub mod walk;
pub mod xfs;

use std::fmt;

/// What kind of object a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// Metadata of one object in a scanned filesystem, with owner ids as stored in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileKind,
    pub len: u64,
    /// Permission bits and the set-id/sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One directory entry (names that are not UTF-8 are skipped and counted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: FileKind,
}

/// Errors of the filesystem layer; every one names the path inside the scanned filesystem.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: is a directory or special file, not a regular file")]
    NotAFile { path: String },
    #[error("{path}: not a directory")]
    NotADir { path: String },
    #[error("{path}: {size} bytes exceeds the {limit}-byte limit for this file")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: too many symlinks or path too long while resolving inside the scanned root")]
    SymlinkLoop { path: String },
    #[error("{path}: directory has more than {limit} entries")]
    TooManyEntries { path: String, limit: usize },
    #[error("{path}: filesystem corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{path}: read error: {reason}")]
    Io { path: String, reason: String },
}

impl FsError {
    /// True when the path simply does not exist (callers probe many optional paths).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::NotFound { .. })
    }
}

/// Random access to one open regular file.
pub trait FileRead {
    /// File size in bytes.
    fn len(&self) -> u64;
    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` from `offset`; fails if the file ends first.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FsError>;
}

/// A read-only view of one scanned filesystem.
pub trait RootFs {
    /// Short name of the backing store (`ext4`, `dir`), for reports.
    fn kind(&self) -> &'static str;
    /// Metadata of `path`, following symlinks inside the scanned filesystem.
    fn metadata(&self, path: &str) -> Result<Meta, FsError>;
    /// Metadata of `path` itself (a symlink is reported as a symlink).
    fn symlink_metadata(&self, path: &str) -> Result<Meta, FsError>;
    /// Entries of the directory `path` (symlinks followed to reach it), without `.` and `..`,
    /// sorted by name, at most [`crate::limits::MAX_DIR_ENTRIES`].
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError>;
    /// Target of the symlink `path`, as stored.
    fn read_link(&self, path: &str) -> Result<String, FsError>;
    /// Open the regular file `path` (symlinks followed inside the scanned filesystem).
    fn open(&self, path: &str) -> Result<Box<dyn FileRead + '_>, FsError>;
}

impl fmt::Debug for dyn RootFs + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootFs({})", self.kind())
    }
}

/// Read a whole regular file, refusing files over `limit` bytes before allocating anything.
pub fn read_file(fs: &dyn RootFs, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
    let mut file = fs.open(path)?;
    let size = file.len();
    if size > limit {
        return Err(FsError::TooLarge { path: path.to_owned(), size, limit });
    }
    let len = usize::try_from(size).map_err(|_| FsError::TooLarge { path: path.to_owned(), size, limit })?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(0, &mut buf)?;
    Ok(buf)
}

/// Read a whole text file (lossy UTF-8), refusing files over `limit` bytes.
pub fn read_text(fs: &dyn RootFs, path: &str, limit: u64) -> Result<String, FsError> {
    let bytes = read_file(fs, path, limit)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// True if `path` exists as a regular file (after following symlinks inside the filesystem).
#[must_use]
pub fn is_file(fs: &dyn RootFs, path: &str) -> bool {
    matches!(fs.metadata(path), Ok(m) if m.kind == FileKind::File)
}

/// Join a directory path and an entry name with exactly one `/`.
#[must_use]
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') { format!("{dir}{name}") } else { format!("{dir}/{name}") }
}

/// An in-memory file: used for tests, fuzzing, and data already bounded and read into memory.
#[derive(Debug, Clone, Default)]
pub struct MemFile(pub Vec<u8>);

impl FileRead for MemFile {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        let eof = || FsError::Io {
            path: "<memory>".to_owned(),
            reason: format!("read of {} bytes at {offset} past the end ({})", buf.len(), self.0.len()),
        };
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = self.0.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
