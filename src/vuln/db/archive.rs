//! Bounded reading of OSV `all.zip` archives: each entry's bytes, in archive order, without ever
//! extracting anything to disk.
//!
//! Checks, in order:
//! 1. the end of central directory record (PKWARE APPNOTE 6.3.10 §4.3.16, and the ZIP64 record
//!    of §4.3.14 when the classic fields are saturated) is read first, so an archive claiming
//!    more than [`MAX_ENTRIES`] entries or a central directory over [`MAX_CENTRAL_DIRECTORY_BYTES`]
//!    is refused before the zip library reads its directory into memory;
//! 2. every entry name is checked before any data is read: an absolute name, a `..` component,
//!    a backslash, a drive letter or a NUL byte refuses the whole archive (the archive was made
//!    to escape a directory somewhere, so none of it is trusted);
//! 3. each entry's declared size, its ratio to its compressed size, and then the bytes actually
//!    decompressed are held to [`MAX_RECORD_BYTES`], [`MAX_COMPRESSION_RATIO`] and, summed over
//!    the archive, [`MAX_ARCHIVE_UNCOMPRESSED_BYTES`]: a decompression bomb stops after at most
//!    one entry cap's worth of output, whatever its headers say.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::limits::{
    MAX_ARCHIVE_UNCOMPRESSED_BYTES, MAX_COMPRESSION_RATIO, MAX_ENTRIES, MAX_RECORD_BYTES, RATIO_MIN_BYTES,
};

/// Largest central directory accepted. An OSV entry's directory record is 46 bytes plus a name
/// of about 30 (`ALSA-2023:0946.json`, `DEBIAN-CVE-2024-12345.json`): [`MAX_ENTRIES`] of them
/// take under 64 MiB; 128 MiB bounds the memory the zip library spends on the directory.
pub const MAX_CENTRAL_DIRECTORY_BYTES: u64 = 128 * 1024 * 1024;

/// The end of central directory record: signature, 18 fixed bytes, a comment of up to 65,535
/// bytes (APPNOTE §4.3.16), so it starts within the last 22 + 65,535 bytes.
const EOCD_LEN: usize = 22;
const EOCD_SEARCH: u64 = EOCD_LEN as u64 + 65_535;
const EOCD_SIG: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
/// ZIP64 end of central directory locator (§4.3.15), 20 bytes right before the EOCD.
const ZIP64_LOCATOR_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
const ZIP64_LOCATOR_LEN: usize = 20;
/// ZIP64 end of central directory record (§4.3.14): entries at 32, directory size at 40.
const ZIP64_EOCD_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
const ZIP64_EOCD_LEN: usize = 56;

/// Why an archive is refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a zip archive (no end of central directory record)")]
    NotZip { path: PathBuf },
    #[error("{path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path}: {entries} entries, over the limit of {MAX_ENTRIES}")]
    TooManyEntries { path: PathBuf, entries: u64 },
    #[error("{path}: central directory of {bytes} bytes, over the limit of {MAX_CENTRAL_DIRECTORY_BYTES}")]
    DirectoryTooLarge { path: PathBuf, bytes: u64 },
    #[error("{path}: entry {name:?} {reason}: refusing the whole archive")]
    UnsafeName { path: PathBuf, name: String, reason: &'static str },
    #[error("{path}: entry {name:?} is a symbolic link: refusing the whole archive")]
    Symlink { path: PathBuf, name: String },
    #[error(
        "{path}: entry {name:?} decompresses to {size} bytes or more, over the {MAX_RECORD_BYTES}-byte limit of one record"
    )]
    EntryTooLarge { path: PathBuf, name: String, size: u64 },
    #[error(
        "{path}: entry {name:?} expands {ratio}:1 ({size} bytes from {compressed}), over the {MAX_COMPRESSION_RATIO}:1 \
         limit: a decompression bomb"
    )]
    Ratio { path: PathBuf, name: String, size: u64, compressed: u64, ratio: u64 },
    #[error("{path}: the entries decompress to more than {MAX_ARCHIVE_UNCOMPRESSED_BYTES} bytes in total")]
    TotalTooLarge { path: PathBuf },
    #[error("{path}: entry {name:?}: {source}")]
    Entry { path: PathBuf, name: String, source: zip::result::ZipError },
    #[error("{path}: entry {name:?}: {source}")]
    EntryRead { path: PathBuf, name: String, source: std::io::Error },
}

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name in the archive.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// An archive being read, entry by entry.
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    zip: zip::ZipArchive<File>,
    next: usize,
    total: u64,
    /// Entries that are not `.json` files (directories excepted), skipped.
    pub skipped: Vec<String>,
}

impl Archive {
    /// Open an archive and check its directory and every entry name.
    ///
    /// # Errors
    ///
    /// The file is not a readable zip archive, has too many entries or too large a directory, or
    /// an entry name is unsafe or a symbolic link.
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        let io = |source| ArchiveError::Io { path: path.to_path_buf(), source };
        let mut file = File::open(path).map_err(io)?;
        let (entries, directory) = end_of_central_directory(&mut file, path)?;
        if entries > MAX_ENTRIES as u64 {
            return Err(ArchiveError::TooManyEntries { path: path.to_path_buf(), entries });
        }
        if directory > MAX_CENTRAL_DIRECTORY_BYTES {
            return Err(ArchiveError::DirectoryTooLarge { path: path.to_path_buf(), bytes: directory });
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let zip = zip::ZipArchive::new(file)
            .map_err(|e| ArchiveError::Malformed { path: path.to_path_buf(), reason: e.to_string() })?;
        if zip.len() > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries { path: path.to_path_buf(), entries: zip.len() as u64 });
        }
        let mut skipped = Vec::new();
        for index in 0..zip.len() {
            let entry = zip
                .by_index_data(index)
                .map_err(|e| ArchiveError::Malformed { path: path.to_path_buf(), reason: e.to_string() })?;
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            if let Some(reason) = unsafe_name(&name) {
                return Err(ArchiveError::UnsafeName { path: path.to_path_buf(), name, reason });
            }
            if entry.is_symlink() {
                return Err(ArchiveError::Symlink { path: path.to_path_buf(), name });
            }
            if !entry.is_dir() && !name.ends_with(".json") {
                skipped.push(name);
            }
        }
        Ok(Self { path: path.to_path_buf(), zip, next: 0, total: 0, skipped })
    }

    /// The number of entries (directories and skipped files included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.zip.len()
    }

    /// True for an archive without entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.zip.len() == 0
    }

    /// The next `.json` entry, or `None` after the last.
    ///
    /// # Errors
    ///
    /// The entry is over a size or ratio limit, the archive's total is over its limit, or the
    /// entry cannot be decompressed (unsupported method, encryption, damaged data).
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ArchiveError> {
        while self.next < self.zip.len() {
            let index = self.next;
            self.next += 1;
            let path = self.path.clone();
            let mut file = self.zip.by_index(index).map_err(|source| ArchiveError::Entry {
                path: path.clone(),
                name: format!("#{index}"),
                source,
            })?;
            let name = String::from_utf8_lossy(file.name_raw()).into_owned();
            if file.is_dir() || !name.ends_with(".json") {
                continue;
            }
            let declared = file.size();
            let compressed = file.compressed_size();
            if declared > MAX_RECORD_BYTES {
                return Err(ArchiveError::EntryTooLarge { path, name, size: declared });
            }
            check_ratio(&path, &name, declared, compressed)?;
            // The headers may lie: read one byte past the cap to know it was passed.
            let mut bytes = Vec::new();
            file.by_ref()
                .take(MAX_RECORD_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| ArchiveError::EntryRead { path: path.clone(), name: name.clone(), source })?;
            let size = bytes.len() as u64;
            if size > MAX_RECORD_BYTES {
                return Err(ArchiveError::EntryTooLarge { path, name, size });
            }
            check_ratio(&path, &name, size, compressed)?;
            self.total = self.total.saturating_add(size);
            if self.total > MAX_ARCHIVE_UNCOMPRESSED_BYTES {
                return Err(ArchiveError::TotalTooLarge { path });
            }
            return Ok(Some(Entry { name, bytes }));
        }
        Ok(None)
    }
}

fn check_ratio(path: &Path, name: &str, size: u64, compressed: u64) -> Result<(), ArchiveError> {
    if size < RATIO_MIN_BYTES {
        return Ok(());
    }
    let ratio = size / compressed.max(1);
    if ratio > MAX_COMPRESSION_RATIO {
        return Err(ArchiveError::Ratio { path: path.to_path_buf(), name: name.to_string(), size, compressed, ratio });
    }
    Ok(())
}

/// Why an entry name could escape a directory it were extracted to, if it could.
#[must_use]
pub fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("has an empty name");
    }
    if name.contains('\0') {
        return Some("has a NUL byte in its name");
    }
    if name.contains('\\') {
        return Some("has a backslash in its name (a Windows path separator)");
    }
    if name.starts_with('/') {
        return Some("has an absolute name");
    }
    let bytes = name.as_bytes();
    if bytes.get(1) == Some(&b':') && bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return Some("starts with a drive letter");
    }
    if name.split('/').any(|component| component == "..") {
        return Some("has a `..` component (path traversal)");
    }
    None
}

/// The entry count and central directory size from the end of central directory record (ZIP64's
/// when the classic fields are saturated).
fn end_of_central_directory(file: &mut File, path: &Path) -> Result<(u64, u64), ArchiveError> {
    let io = |source| ArchiveError::Io { path: path.to_path_buf(), source };
    let len = file.metadata().map_err(io)?.len();
    let tail_len = len.min(EOCD_SEARCH);
    file.seek(SeekFrom::Start(len - tail_len)).map_err(io)?;
    let mut tail = Vec::new();
    file.by_ref().take(tail_len).read_to_end(&mut tail).map_err(io)?;
    // The last signature whose comment length reaches exactly the end of the file; else the last
    // signature at all (some writers pad after the comment).
    let candidates: Vec<usize> = (0..tail.len().saturating_sub(EOCD_LEN - 1))
        .rev()
        .filter(|&at| tail.get(at..at + 4) == Some(&EOCD_SIG[..]))
        .collect();
    let exact = candidates
        .iter()
        .copied()
        .find(|&at| le16(&tail, at + 20).is_some_and(|comment| at + EOCD_LEN + usize::from(comment) == tail.len()));
    let at = exact.or_else(|| candidates.first().copied()).ok_or_else(|| ArchiveError::NotZip { path: path.into() })?;
    let short = || ArchiveError::NotZip { path: path.to_path_buf() };
    let entries = le16(&tail, at + 10).ok_or_else(short)?;
    let directory = le32(&tail, at + 12).ok_or_else(short)?;
    if entries != u16::MAX && directory != u32::MAX {
        return Ok((u64::from(entries), u64::from(directory)));
    }
    // ZIP64: the locator sits right before the EOCD and points at the ZIP64 record.
    let malformed = |reason: &str| ArchiveError::Malformed { path: path.to_path_buf(), reason: reason.into() };
    let locator = at.checked_sub(ZIP64_LOCATOR_LEN).ok_or_else(|| malformed("ZIP64 locator missing"))?;
    if tail.get(locator..locator + 4) != Some(&ZIP64_LOCATOR_SIG[..]) {
        return Err(malformed("the end of central directory is saturated but has no ZIP64 locator"));
    }
    let record_at = le64(&tail, locator + 8).ok_or_else(|| malformed("ZIP64 locator truncated"))?;
    if record_at.saturating_add(ZIP64_EOCD_LEN as u64) > len {
        return Err(malformed("the ZIP64 locator points past the end of the file"));
    }
    file.seek(SeekFrom::Start(record_at)).map_err(io)?;
    let mut record = [0u8; ZIP64_EOCD_LEN];
    file.read_exact(&mut record).map_err(io)?;
    if record.get(..4) != Some(&ZIP64_EOCD_SIG[..]) {
        return Err(malformed("no ZIP64 end of central directory record where the locator points"));
    }
    let entries = le64(&record, 32).ok_or_else(|| malformed("ZIP64 record truncated"))?;
    let directory = le64(&record, 40).ok_or_else(|| malformed("ZIP64 record truncated"))?;
    Ok((entries, directory))
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_recognised() {
        for name in ["../x.json", "a/../../x.json", "/etc/passwd", "a\\..\\x", "C:x.json", "a\0b", "", "a/.."] {
            assert!(unsafe_name(name).is_some(), "{name:?}");
        }
        for name in ["ALSA-2023:0946.json", "a/b/c.json", "a..b.json", "..a.json", "x/.../y.json"] {
            assert_eq!(unsafe_name(name), None, "{name:?}");
        }
    }
}
