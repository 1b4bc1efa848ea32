//! A directory tree on the scanner's own filesystem (an unpacked image or a kernel read-only
//! mount) seen as a scanned root: every path is resolved component by component *inside* the
//! root, absolute symlinks restart at the root and `..` never climbs above it, so no path of the
//! scanned tree can reach the scanner's own files. Files are opened with `O_NOFOLLOW |
//! O_NONBLOCK`, so a FIFO planted in the tree cannot hang the scan.

use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::walk::{self, Step};
use super::{DirEntry, FileKind, FileRead, FsError, Meta, RootFs};
use crate::limits::MAX_DIR_ENTRIES;

/// A scanned root that is a directory of the scanner's filesystem.
#[derive(Debug, Clone)]
pub struct DirFs {
    root: PathBuf,
}

impl DirFs {
    /// Use `root` as the scanned filesystem's `/`.
    pub fn new(root: &Path) -> Result<Self, FsError> {
        let meta = fs::metadata(root).map_err(|e| io_err(&root.display().to_string(), &e))?;
        if !meta.is_dir() {
            return Err(FsError::NotADir { path: root.display().to_string() });
        }
        Ok(DirFs { root: root.to_owned() })
    }

    fn host(&self, comps: &[String]) -> PathBuf {
        let mut p = self.root.clone();
        for c in comps {
            p.push(c);
        }
        p
    }

    /// Resolve `path` inside the root; returns the host path of the result. With `follow_last`
    /// false a final symlink is not followed.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<PathBuf, FsError> {
        let lstat = |comps: &[String], _last: bool| match fs::symlink_metadata(self.host(comps)) {
            Ok(m) if m.file_type().is_symlink() => Ok(Step::Symlink),
            Ok(m) if m.is_dir() => Ok(Step::Dir),
            Ok(_) => Ok(Step::Leaf),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FsError::NotFound { path: path.to_owned() }),
            Err(e) => Err(io_err(path, &e)),
        };
        let readlink = |comps: &[String]| {
            fs::read_link(self.host(comps)).map(|t| t.to_string_lossy().into_owned()).map_err(|e| io_err(path, &e))
        };
        walk::resolve(path, follow_last, lstat, readlink).map(|comps| self.host(&comps))
    }
}

fn io_err(path: &str, e: &std::io::Error) -> FsError {
    if e.kind() == std::io::ErrorKind::NotFound {
        FsError::NotFound { path: path.to_owned() }
    } else {
        FsError::Io { path: path.to_owned(), reason: e.to_string() }
    }
}

fn meta_of(m: &fs::Metadata) -> Meta {
    let ft = m.file_type();
    let kind = if ft.is_file() {
        FileKind::File
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    };
    Meta { kind, len: m.len(), mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid() }
}

struct HostFile {
    file: File,
    len: u64,
    path: String,
}

impl FileRead for HostFile {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        if offset.checked_add(buf.len() as u64).is_none_or(|e| e > self.len) {
            return Err(FsError::Io {
                path: self.path.clone(),
                reason: format!("read of {} bytes at {offset} past the end ({} bytes)", buf.len(), self.len),
            });
        }
        self.file.read_exact_at(buf, offset).map_err(|e| io_err(&self.path, &e))
    }
}

impl RootFs for DirFs {
    fn kind(&self) -> &'static str {
        "dir"
    }
    fn metadata(&self, path: &str) -> Result<Meta, FsError> {
        let host = self.resolve(path, true)?;
        fs::symlink_metadata(host).map(|m| meta_of(&m)).map_err(|e| io_err(path, &e))
    }
    fn symlink_metadata(&self, path: &str) -> Result<Meta, FsError> {
        let host = self.resolve(path, false)?;
        fs::symlink_metadata(host).map(|m| meta_of(&m)).map_err(|e| io_err(path, &e))
    }
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let host = self.resolve(path, true)?;
        let iter = fs::read_dir(&host).map_err(|e| io_err(path, &e))?;
        let mut out = Vec::new();
        for entry in iter {
            let entry = entry.map_err(|e| io_err(path, &e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if out.len() >= MAX_DIR_ENTRIES {
                return Err(FsError::TooManyEntries { path: path.to_owned(), limit: MAX_DIR_ENTRIES });
            }
            let kind = match entry.file_type() {
                Ok(t) if t.is_file() => FileKind::File,
                Ok(t) if t.is_dir() => FileKind::Dir,
                Ok(t) if t.is_symlink() => FileKind::Symlink,
                _ => FileKind::Other,
            };
            out.push(DirEntry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let host = self.resolve(path, false)?;
        fs::read_link(host).map(|t| t.to_string_lossy().into_owned()).map_err(|e| io_err(path, &e))
    }
    fn open(&self, path: &str) -> Result<Box<dyn FileRead + '_>, FsError> {
        let host = self.resolve(path, true)?;
        // The path is fully resolved already; O_NOFOLLOW refuses a symlink swapped in since.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NOFOLLOW | O_NONBLOCK)
            .open(&host)
            .map_err(|e| io_err(path, &e))?;
        let meta = file.metadata().map_err(|e| io_err(path, &e))?;
        if !meta.is_file() {
            return Err(FsError::NotAFile { path: path.to_owned() });
        }
        Ok(Box::new(HostFile { file, len: meta.len(), path: path.to_owned() }))
    }
}

// Flag values from the Linux UAPI headers (asm-generic/fcntl.h; x86-64 uses the generic values,
// arm64 differs only for O_NOFOLLOW/O_DIRECTORY, see arch/arm64/include/uapi/asm/fcntl.h).
#[cfg(target_arch = "aarch64")]
const O_NOFOLLOW: i32 = 0o100000;
#[cfg(not(target_arch = "aarch64"))]
const O_NOFOLLOW: i32 = 0o400000;
const O_NONBLOCK: i32 = 0o4000;
