//! ext2/3/4 read in userspace through `ext4-view`: the journal is replayed in memory, nothing is
//! ever written, and symlinks resolve inside this filesystem (ext4-view stops after 40 links and
//! 4096-byte paths).

use ext4_view::{Ext4, Ext4Error, Ext4Read};

use super::{DirEntry, FileKind, FileRead, FsError, Meta, RootFs};
use crate::disk::{BlockSource, Region};
use crate::limits::MAX_DIR_ENTRIES;

/// Adapts a disk [`Region`] to ext4-view's reader trait.
struct RegionReader(Region);

impl Ext4Read for RegionReader {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.0.read_exact_at(start_byte, dst).map_err(Into::into)
    }
}

/// An ext2/3/4 filesystem on a disk region.
pub struct Ext4Fs {
    fs: Ext4,
}

impl std::fmt::Debug for Ext4Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ext4Fs")
    }
}

impl Ext4Fs {
    /// Load the superblock, group descriptors and journal (replayed in memory).
    pub fn load(region: Region) -> Result<Self, FsError> {
        let fs = Ext4::load(Box::new(RegionReader(region))).map_err(|e| map_err("/", e))?;
        Ok(Ext4Fs { fs })
    }
}

fn map_err(path: &str, e: Ext4Error) -> FsError {
    let path = path.to_owned();
    match e {
        Ext4Error::NotFound => FsError::NotFound { path },
        Ext4Error::NotADirectory => FsError::NotADir { path },
        Ext4Error::IsADirectory | Ext4Error::IsASpecialFile => FsError::NotAFile { path },
        Ext4Error::TooManySymlinks | Ext4Error::PathTooLong => FsError::SymlinkLoop { path },
        Ext4Error::Io(inner) => FsError::Io { path, reason: inner.to_string() },
        Ext4Error::Corrupt(c) => FsError::Corrupt { path, reason: c.to_string() },
        Ext4Error::Incompatible(i) => FsError::Corrupt { path, reason: format!("unsupported ext4 feature: {i}") },
        other => FsError::Io { path, reason: other.to_string() },
    }
}

fn kind_of(ft: ext4_view::FileType) -> FileKind {
    if ft.is_regular_file() {
        FileKind::File
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    }
}

fn meta_of(m: &ext4_view::Metadata) -> Meta {
    Meta { kind: kind_of(m.file_type()), len: m.len(), mode: u32::from(m.mode()) & 0o7777, uid: m.uid(), gid: m.gid() }
}

struct Ext4File {
    file: ext4_view::File,
    len: u64,
    path: String,
}

impl FileRead for Ext4File {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(FsError::Io {
                path: self.path.clone(),
                reason: format!("read of {} bytes at {offset} past the end ({} bytes)", buf.len(), self.len),
            });
        }
        self.file.seek_to(offset).map_err(|e| map_err(&self.path, e))?;
        let mut done = 0;
        while done < buf.len() {
            let rest = buf.get_mut(done..).unwrap_or_default();
            let n = self.file.read_bytes(rest).map_err(|e| map_err(&self.path, e))?;
            if n == 0 {
                return Err(FsError::Corrupt {
                    path: self.path.clone(),
                    reason: "file data ends before its size".into(),
                });
            }
            done += n;
        }
        Ok(())
    }
}

impl RootFs for Ext4Fs {
    fn kind(&self) -> &'static str {
        "ext4"
    }
    fn metadata(&self, path: &str) -> Result<Meta, FsError> {
        self.fs.metadata(path).map(|m| meta_of(&m)).map_err(|e| map_err(path, e))
    }
    fn symlink_metadata(&self, path: &str) -> Result<Meta, FsError> {
        self.fs.symlink_metadata(path).map(|m| meta_of(&m)).map_err(|e| map_err(path, e))
    }
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let iter = self.fs.read_dir(path).map_err(|e| map_err(path, e))?;
        let mut out = Vec::new();
        for entry in iter {
            let entry = entry.map_err(|e| map_err(path, e))?;
            let Ok(name) = entry.file_name().as_str().map(str::to_owned) else { continue };
            if name == "." || name == ".." {
                continue;
            }
            if out.len() >= MAX_DIR_ENTRIES {
                return Err(FsError::TooManyEntries { path: path.to_owned(), limit: MAX_DIR_ENTRIES });
            }
            let kind = entry.file_type().map(kind_of).unwrap_or(FileKind::Other);
            out.push(DirEntry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let target = self.fs.read_link(path).map_err(|e| map_err(path, e))?;
        Ok(String::from_utf8_lossy(target.as_ref()).into_owned())
    }
    fn open(&self, path: &str) -> Result<Box<dyn FileRead + '_>, FsError> {
        let file = self.fs.open(path).map_err(|e| map_err(path, e))?;
        let meta = meta_of(file.metadata());
        if meta.kind != FileKind::File {
            return Err(FsError::NotAFile { path: path.to_owned() });
        }
        Ok(Box::new(Ext4File { file, len: meta.len, path: path.to_owned() }))
    }
}
