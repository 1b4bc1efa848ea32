//! A bounded, read-only zip reader over [`FileRead`]: what the Java reader ([`super::java`]) needs
//! to list a `.jar`/`.war`/`.ear` and read a few of its members, and nothing more.
//!
//! This module owns the zip format handling: finding the end-of-central-directory record (and the
//! zip64 locator and record), reading the central directory within caps, checking each member's
//! local header, and inflating stored and deflate members through a hard output limit. Every byte
//! of the archive is hostile:
//!
//! - only the tail (for the end record), the central directory and the members asked for are read;
//! - declared sizes are never trusted for allocation: inflate output is bounded by the caller's
//!   `max` and by an [`InflateBudget`] shared by a whole archive tree (a 42.zip-style recursive bomb
//!   exhausts the budget, not the memory);
//! - members whose data ranges overlap (the "better zip bomb" layout, where many central entries
//!   reuse one compressed stream) make the archive an error;
//! - other compression methods, encryption and damaged members are per-member errors.
//!
//! Data prepended to the archive (a launcher script before a Spring Boot jar, a self-extractor) is
//! handled as `archive/zip` and `java.util.zip` do: offsets are taken relative to where the central
//! directory really is.

use std::fmt;

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::fs::FileRead;

/// Size of the end-of-central-directory record without its comment (APPNOTE 4.3.16).
const EOCD_LEN: usize = 22;
/// Longest archive comment: its length is a 16-bit field (APPNOTE 4.3.16), so the end record lies
/// in the last 65,535 + 22 bytes.
const MAX_COMMENT: usize = 0xffff;
/// The first, cheap look for the end record: comments are rare and short, so the last KiB holds
/// it in nearly every archive; only if it does not is the whole 64 KiB window read.
const SHORT_TAIL: usize = 1024;
/// Size of the zip64 end-of-central-directory locator (APPNOTE 4.3.15).
const ZIP64_LOCATOR_LEN: usize = 20;
/// Size of the fixed part of the zip64 end-of-central-directory record (APPNOTE 4.3.14).
const ZIP64_EOCD_LEN: usize = 56;
/// Size of the fixed part of a central directory header (APPNOTE 4.3.12).
const CENTRAL_LEN: usize = 46;
/// Size of the fixed part of a local file header (APPNOTE 4.3.7).
const LOCAL_LEN: usize = 30;

const SIG_EOCD: u32 = 0x0605_4b50;
const SIG_ZIP64_LOCATOR: u32 = 0x0706_4b50;
const SIG_ZIP64_EOCD: u32 = 0x0606_4b50;
const SIG_CENTRAL: u32 = 0x0201_4b50;
const SIG_LOCAL: u32 = 0x0403_4b50;

/// Most central directory entries read from one archive: a bound of docs/references.md
/// ("Application inventory bounds"); the largest real jars (fat Spring Boot jars, IDE plugin bundles)
/// hold some tens of thousands of entries.
pub const MAX_ENTRIES: u64 = 100_000;
/// Largest central directory read into memory: 100,000 entries of 46 bytes with names averaging
/// a little under 300 bytes.
pub const MAX_CENTRAL_DIR: u64 = 32 * 1024 * 1024;
/// Longest member name kept (Linux `PATH_MAX`); longer names are counted in
/// [`ZipArchive::skipped_names`] and their members are not offered.
pub const MAX_NAME_LEN: usize = 4096;
/// Compressed bytes read from the file per step while inflating (one EBS-friendly read size).
const INPUT_CHUNK: usize = 64 * 1024;
/// Inflate output produced per step, before it is checked against the limits.
const OUTPUT_CHUNK: usize = 64 * 1024;

/// Why an archive or one of its members cannot be read. The archive's path is added by the caller
/// (the reader only sees a [`FileRead`]); member errors name the member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    #[error("not a zip archive: no end-of-central-directory record in the last {searched} bytes")]
    NoEndRecord { searched: u64 },
    #[error("corrupt zip: {0}")]
    Corrupt(String),
    #[error("central directory of {size} bytes exceeds the {limit}-byte limit")]
    CentralDirTooLarge { size: u64, limit: u64 },
    #[error("archive declares {count} entries, more than the {limit} read")]
    TooManyEntries { count: u64, limit: u64 },
    #[error("members {first:?} and {second:?} have overlapping data (overlapping-entry zip bomb)")]
    Overlap { first: String, second: String },
    #[error("{member}: {reason}")]
    Member { member: String, reason: String },
    #[error("{member}: more than {limit} bytes once inflated")]
    MemberTooLarge { member: String, limit: u64 },
    #[error("{member}: the archive's inflate budget is spent ({limit} bytes in all)")]
    BudgetSpent { member: String, limit: u64 },
    #[error("read error: {0}")]
    Io(String),
}

fn corrupt(reason: impl Into<String>) -> ZipError {
    ZipError::Corrupt(reason.into())
}

fn io(e: &crate::fs::FsError) -> ZipError {
    ZipError::Io(e.to_string())
}

/// Total inflated bytes allowed for one archive on disk, shared by its nested archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InflateBudget {
    total: u64,
    left: u64,
}

impl InflateBudget {
    #[must_use]
    pub fn new(total: u64) -> Self {
        InflateBudget { total, left: total }
    }
    /// Bytes still allowed.
    #[must_use]
    pub fn left(&self) -> u64 {
        self.left
    }
    /// Bytes inflated so far.
    #[must_use]
    pub fn used(&self) -> u64 {
        self.total - self.left
    }
}

/// One member as the central directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// The member name: UTF-8 as stored (flag bit 11, or any valid UTF-8), otherwise decoded
    /// lossily (CP437 names are ASCII in practice for the paths this reader looks for).
    pub name: String,
    /// Compression method (0 stored, 8 deflate).
    pub method: u16,
    pub flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Offset of the local header, relative to the start of the file (base offset applied).
    local_offset: u64,
    /// Where the next member (or the central directory) begins: this member's data must end here.
    region_end: u64,
}

impl ZipEntry {
    /// True for a directory entry (name ending in `/`).
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// The central directory of one archive.
pub struct ZipArchive {
    entries: Vec<ZipEntry>,
    skipped_names: u64,
}

impl fmt::Debug for ZipArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZipArchive({} entries)", self.entries.len())
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

fn read_vec(file: &mut dyn FileRead, offset: u64, len: u64) -> Result<Vec<u8>, ZipError> {
    let n = usize::try_from(len).map_err(|_| corrupt("length does not fit in memory"))?;
    let end = offset.checked_add(len).ok_or_else(|| corrupt("offset overflow"))?;
    if end > file.len() {
        return Err(corrupt(format!("{len} bytes at offset {offset} run past the end of the file ({})", file.len())));
    }
    let mut buf = vec![0u8; n];
    file.read_exact_at(offset, &mut buf).map_err(|e| io(&e))?;
    Ok(buf)
}

/// The last end-record signature in `tail` whose comment fits in the rest of `tail` (a comment may
/// itself contain the signature bytes; the last one is what readers use).
fn last_end_record(tail: &[u8]) -> Option<usize> {
    let mut at = tail.len().checked_sub(EOCD_LEN)?;
    loop {
        if u32_at(tail, at) == Some(SIG_EOCD) {
            let comment = u16_at(tail, at + 20).map_or(usize::MAX, usize::from);
            if at.checked_add(EOCD_LEN + comment).is_some_and(|end| end <= tail.len()) {
                return Some(at);
            }
        }
        at = at.checked_sub(1)?;
    }
}

/// Where the central directory is, as the end records state it.
struct EndRecord {
    /// Offset of the end record the directory must end at (zip64 record if any, else EOCD).
    dir_end: u64,
    count: u64,
    size: u64,
    offset: u64,
}

fn find_end(file: &mut dyn FileRead) -> Result<EndRecord, ZipError> {
    let len = file.len();
    // Most archives have no comment: look in the last KiB first, then in the whole window.
    let mut found = None;
    for window in [EOCD_LEN + SHORT_TAIL, EOCD_LEN + MAX_COMMENT] {
        let tail_len = len.min(window as u64);
        let tail_start = len - tail_len;
        let tail = read_vec(file, tail_start, tail_len)?;
        // Found too near the window's start, the zip64 locator before it would be cut off.
        if let Some(at) = last_end_record(&tail).filter(|&at| at >= ZIP64_LOCATOR_LEN || tail_start == 0) {
            found = Some((tail, tail_start, at));
            break;
        }
        if tail_len == len {
            break;
        }
    }
    let searched = len.min((EOCD_LEN + MAX_COMMENT) as u64);
    let (tail, tail_start, eocd) = found.ok_or(ZipError::NoEndRecord { searched })?;
    let field16 = |o: usize| u16_at(&tail, eocd + o).map_or(0, u64::from);
    let field32 = |o: usize| u32_at(&tail, eocd + o).map_or(0, u64::from);
    let (disk, cd_disk) = (field16(4), field16(6));
    let mut rec =
        EndRecord { dir_end: tail_start + eocd as u64, count: field16(10), size: field32(12), offset: field32(16) };
    let zip64 = rec.count == 0xffff || rec.size == 0xffff_ffff || rec.offset == 0xffff_ffff;
    // The zip64 locator sits just before the end record.
    if let Some(loc) = eocd.checked_sub(ZIP64_LOCATOR_LEN).filter(|&l| u32_at(&tail, l) == Some(SIG_ZIP64_LOCATOR)) {
        let rec64_at = u64_at(&tail, loc + 8).ok_or_else(|| corrupt("short zip64 locator"))?;
        // The locator's offset is absolute unless data was prepended; the record sits right before
        // the locator in either case, which is where we look first.
        let locator_abs = tail_start + loc as u64;
        let expected =
            locator_abs.checked_sub(ZIP64_EOCD_LEN as u64).ok_or_else(|| corrupt("zip64 locator at start"))?;
        let at_expected = read_vec(file, expected, ZIP64_EOCD_LEN as u64)?;
        let (rec_pos, r) = if u32_at(&at_expected, 0) == Some(SIG_ZIP64_EOCD) {
            (expected, at_expected)
        } else {
            let r = read_vec(file, rec64_at, ZIP64_EOCD_LEN as u64)?;
            if u32_at(&r, 0) != Some(SIG_ZIP64_EOCD) {
                return Err(corrupt("zip64 locator does not point at a zip64 end record"));
            }
            (rec64_at, r)
        };
        let get = |o| u64_at(&r, o).ok_or_else(|| corrupt("short zip64 end record"));
        rec = EndRecord { dir_end: rec_pos, count: get(32)?, size: get(40)?, offset: get(48)? };
    } else if zip64 && (rec.size == 0xffff_ffff || rec.offset == 0xffff_ffff) {
        return Err(corrupt("end record needs zip64 but has no zip64 locator"));
    }
    if disk != 0 || cd_disk != 0 {
        return Err(corrupt("multi-disk archives are not supported"));
    }
    Ok(rec)
}

impl ZipArchive {
    /// Read the end records and the central directory of `file`.
    ///
    /// # Errors
    ///
    /// Not a zip, a cap exceeded (entries, central directory size), offsets outside the file,
    /// overlapping members, or a read error.
    pub fn open(file: &mut dyn FileRead) -> Result<ZipArchive, ZipError> {
        let end = find_end(file)?;
        if end.count > MAX_ENTRIES {
            return Err(ZipError::TooManyEntries { count: end.count, limit: MAX_ENTRIES });
        }
        if end.size > MAX_CENTRAL_DIR {
            return Err(ZipError::CentralDirTooLarge { size: end.size, limit: MAX_CENTRAL_DIR });
        }
        // Bytes prepended to the archive shift every offset by `base`.
        let declared_end =
            end.offset.checked_add(end.size).ok_or_else(|| corrupt("central directory offset overflow"))?;
        let base = end.dir_end.checked_sub(declared_end).ok_or_else(|| {
            corrupt(format!(
                "central directory ({} bytes at {}) runs past its end record at {}",
                end.size, end.offset, end.dir_end
            ))
        })?;
        let mut cd_start = base + end.offset;
        let mut base = base;
        if base != 0 && end.count > 0 {
            // archive/zip's rule: if the shifted offset is not a central header, try unshifted.
            let mut sig = [0u8; 4];
            let shifted_ok = file.read_exact_at(cd_start, &mut sig).is_ok() && u32::from_le_bytes(sig) == SIG_CENTRAL;
            if !shifted_ok {
                base = 0;
                cd_start = end.offset;
            }
        }
        let cd = read_vec(file, cd_start, end.size)?;
        let mut entries =
            Vec::with_capacity(usize::try_from(end.count.min(end.size / CENTRAL_LEN as u64)).unwrap_or(0));
        let mut skipped_names = 0u64;
        let mut at = 0usize;
        for i in 0..end.count {
            let short = || corrupt(format!("central directory entry {i} truncated"));
            if u32_at(&cd, at) != Some(SIG_CENTRAL) {
                return Err(corrupt(format!("central directory entry {i} has no signature")));
            }
            let h = cd.get(at..at + CENTRAL_LEN).ok_or_else(short)?;
            let f16 = |o| u16_at(h, o).unwrap_or(0);
            let f32 = |o| u32_at(h, o).unwrap_or(0);
            let (flags, method, crc32) = (f16(8), f16(10), f32(16));
            let (mut csize, mut usize_, mut local) = (u64::from(f32(20)), u64::from(f32(24)), u64::from(f32(42)));
            let (name_len, extra_len, comment_len) = (usize::from(f16(28)), usize::from(f16(30)), usize::from(f16(32)));
            let name_at = at + CENTRAL_LEN;
            let name_raw = cd.get(name_at..name_at + name_len).ok_or_else(short)?;
            let extra = cd.get(name_at + name_len..name_at + name_len + extra_len).ok_or_else(short)?;
            at = name_at + name_len + extra_len + comment_len;
            if at > cd.len() {
                return Err(short());
            }
            // Zip64 extended information: present fields follow in this order, only for those
            // whose 32-bit field is saturated (APPNOTE 4.5.3).
            if usize_ == 0xffff_ffff || csize == 0xffff_ffff || local == 0xffff_ffff {
                let mut x = 0usize;
                let mut found = None;
                while x + 4 <= extra.len() {
                    let id = u16_at(extra, x).unwrap_or(0);
                    let len = usize::from(u16_at(extra, x + 2).unwrap_or(0));
                    let body = extra.get(x + 4..x + 4 + len).ok_or_else(short)?;
                    if id == 1 {
                        found = Some(body);
                        break;
                    }
                    x += 4 + len;
                }
                let body = found.ok_or_else(|| corrupt(format!("entry {i}: saturated sizes without zip64 data")))?;
                let mut o = 0;
                for field in [&mut usize_, &mut csize, &mut local] {
                    if *field == 0xffff_ffff {
                        *field = u64_at(body, o).ok_or_else(|| corrupt(format!("entry {i}: short zip64 data")))?;
                        o += 8;
                    }
                }
            }
            if name_len > MAX_NAME_LEN {
                skipped_names += 1;
                continue;
            }
            let name = match std::str::from_utf8(name_raw) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(name_raw).into_owned(),
            };
            let local_offset = base.checked_add(local).ok_or_else(|| corrupt(format!("entry {i}: offset overflow")))?;
            entries.push(ZipEntry {
                name,
                method,
                flags,
                crc32,
                compressed_size: csize,
                uncompressed_size: usize_,
                local_offset,
                region_end: cd_start,
            });
        }
        check_layout(&mut entries, cd_start)?;
        Ok(ZipArchive { entries, skipped_names })
    }

    /// The members, in central directory order.
    #[must_use]
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// Members not offered because their names are longer than [`MAX_NAME_LEN`].
    #[must_use]
    pub fn skipped_names(&self) -> u64 {
        self.skipped_names
    }

    /// The whole content of `entry`, at most `max` bytes (more is an error), counted against
    /// `budget`; CRC-32 and size are checked against the central directory.
    ///
    /// # Errors
    ///
    /// A per-member error: unsupported method or encryption, bad local header, data outside its
    /// region, corrupt deflate stream, CRC or size mismatch, over `max`, budget spent, read error.
    pub fn read_member(
        &self,
        file: &mut dyn FileRead,
        entry: &ZipEntry,
        max: u64,
        budget: &mut InflateBudget,
    ) -> Result<Vec<u8>, ZipError> {
        let (out, complete) = extract(file, entry, max, budget, false)?;
        if !complete {
            return Err(ZipError::MemberTooLarge { member: entry.name.clone(), limit: max });
        }
        Ok(out)
    }

    /// The first `max` bytes of `entry` (all of it if shorter) and whether that is the whole
    /// member; CRC-32 is checked only when the whole member was read.
    ///
    /// # Errors
    ///
    /// As [`ZipArchive::read_member`], except that a longer member is not an error.
    pub fn read_member_prefix(
        &self,
        file: &mut dyn FileRead,
        entry: &ZipEntry,
        max: u64,
        budget: &mut InflateBudget,
    ) -> Result<(Vec<u8>, bool), ZipError> {
        extract(file, entry, max, budget, true)
    }
}

/// Every member's local header must lie in the file before the central directory, and no two
/// members' spans (local header, name and compressed data) may overlap; each entry learns where
/// the next member starts, which bounds its data once the local header's own lengths are known.
fn check_layout(entries: &mut [ZipEntry], cd_start: u64) -> Result<(), ZipError> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries.get(i).map_or(0, |e| e.local_offset));
    let mut prev: Option<(usize, u64)> = None;
    for &i in &order {
        let Some(e) = entries.get(i) else { continue };
        let (offset, name) = (e.local_offset, e.name.clone());
        let min_end = e
            .local_offset
            .checked_add(LOCAL_LEN as u64 + e.name.len() as u64)
            .and_then(|v| v.checked_add(e.compressed_size))
            .ok_or_else(|| corrupt(format!("{}: size overflow", e.name)))?;
        if min_end > cd_start {
            return Err(corrupt(format!(
                "{}: data ({} bytes at {}) runs past the central directory at {cd_start}",
                e.name, e.compressed_size, e.local_offset
            )));
        }
        if let Some((p, p_end)) = prev {
            if offset < p_end {
                let first = entries.get(p).map(|x| x.name.clone()).unwrap_or_default();
                return Err(ZipError::Overlap { first, second: name });
            }
            if let Some(pe) = entries.get_mut(p) {
                pe.region_end = offset;
            }
        }
        prev = Some((i, min_end));
    }
    Ok(())
}

fn member_err(entry: &ZipEntry, reason: impl Into<String>) -> ZipError {
    ZipError::Member { member: entry.name.clone(), reason: reason.into() }
}

/// Read (inflate) at most `max` bytes of `entry`: the bytes and whether they are the whole member.
/// With `prefix_ok` false, more than `max` bytes stops early and is reported as incomplete.
fn extract(
    file: &mut dyn FileRead,
    entry: &ZipEntry,
    max: u64,
    budget: &mut InflateBudget,
    prefix_ok: bool,
) -> Result<(Vec<u8>, bool), ZipError> {
    if entry.flags & 1 != 0 {
        return Err(member_err(entry, "encrypted member"));
    }
    if entry.method != 0 && entry.method != 8 {
        return Err(member_err(entry, format!("compression method {} not supported", entry.method)));
    }
    if !prefix_ok && entry.uncompressed_size > max {
        return Err(ZipError::MemberTooLarge { member: entry.name.clone(), limit: max });
    }
    let mut local = [0u8; LOCAL_LEN];
    file.read_exact_at(entry.local_offset, &mut local).map_err(|e| member_err(entry, format!("local header: {e}")))?;
    if u32_at(&local, 0) != Some(SIG_LOCAL) {
        return Err(member_err(entry, "no local header signature"));
    }
    let skip = u64::from(u16_at(&local, 26).unwrap_or(0)) + u64::from(u16_at(&local, 28).unwrap_or(0));
    let data_start = entry.local_offset + LOCAL_LEN as u64 + skip;
    let data_end = data_start.checked_add(entry.compressed_size).ok_or_else(|| member_err(entry, "size overflow"))?;
    if data_end > entry.region_end {
        return Err(member_err(entry, "data runs into the next member (overlapping entries)"));
    }
    // The cap for this call: the caller's limit, then the budget left for the archive tree.
    let budget_bound = budget.left < max;
    let cap = max.min(budget.left);
    let mut out: Vec<u8> =
        Vec::with_capacity(usize::try_from(entry.uncompressed_size.min(cap).min(1 << 20)).unwrap_or(0));
    let mut complete = false;
    if entry.method == 0 {
        if entry.compressed_size != entry.uncompressed_size {
            return Err(member_err(entry, "stored member with different compressed and uncompressed sizes"));
        }
        let want = entry.compressed_size.min(cap);
        out = read_vec(file, data_start, want).map_err(|e| member_err(entry, e.to_string()))?;
        complete = want == entry.compressed_size;
    } else {
        let mut state = InflateState::new_boxed(DataFormat::Raw);
        let mut input = vec![0u8; INPUT_CHUNK];
        let mut chunk = vec![0u8; OUTPUT_CHUNK];
        let (mut in_pos, mut in_len) = (0usize, 0usize);
        let mut next = data_start;
        loop {
            if in_pos == in_len && next < data_end {
                let n = usize::try_from((data_end - next).min(INPUT_CHUNK as u64)).unwrap_or(INPUT_CHUNK);
                let buf = input.get_mut(..n).ok_or_else(|| member_err(entry, "input chunk"))?;
                file.read_exact_at(next, buf).map_err(|e| member_err(entry, format!("read: {e}")))?;
                next += n as u64;
                (in_pos, in_len) = (0, n);
            }
            // `Finish` on a first call would demand the whole output fit in `chunk`: always stream.
            let avail = input.get(in_pos..in_len).unwrap_or(&[]);
            let r = inflate(&mut state, avail, &mut chunk, MZFlush::None);
            in_pos += r.bytes_consumed;
            let produced = chunk.get(..r.bytes_written).unwrap_or(&[]);
            let room = usize::try_from(cap - out.len() as u64).unwrap_or(usize::MAX);
            if produced.len() > room {
                out.extend_from_slice(produced.get(..room).unwrap_or(&[]));
                break;
            }
            out.extend_from_slice(produced);
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    complete = true;
                    break;
                }
                Ok(_) | Err(MZError::Buf) => {
                    if r.bytes_consumed == 0 && r.bytes_written == 0 && in_pos == in_len && next == data_end {
                        return Err(member_err(entry, "deflate stream truncated"));
                    }
                    if r.bytes_consumed == 0 && r.bytes_written == 0 && in_pos < in_len {
                        return Err(member_err(entry, "deflate stream makes no progress"));
                    }
                }
                Err(e) => return Err(member_err(entry, format!("corrupt deflate stream ({e:?})"))),
            }
        }
    }
    budget.left -= out.len() as u64;
    if !complete {
        if budget_bound {
            return Err(ZipError::BudgetSpent { member: entry.name.clone(), limit: budget.total });
        }
        if !prefix_ok {
            return Err(ZipError::MemberTooLarge { member: entry.name.clone(), limit: max });
        }
        return Ok((out, false));
    }
    if out.len() as u64 != entry.uncompressed_size {
        return Err(member_err(
            entry,
            format!("inflated to {} bytes, central directory says {}", out.len(), entry.uncompressed_size),
        ));
    }
    if crc32fast::hash(&out) != entry.crc32 {
        return Err(member_err(entry, "CRC-32 mismatch"));
    }
    Ok((out, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFile;

    /// A minimal zip writer: (name, content, deflate?) in order.
    fn build(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let (mut out, mut cd) = (Vec::new(), Vec::new());
        for (name, data, deflate) in members {
            let body = if *deflate { miniz_oxide::deflate::compress_to_vec(data, 6) } else { data.to_vec() };
            let (method, crc) = (if *deflate { 8u16 } else { 0 }, crc32fast::hash(data));
            let offset = out.len() as u32;
            let mut common = Vec::new();
            common.extend_from_slice(&20u16.to_le_bytes());
            common.extend_from_slice(&0u16.to_le_bytes());
            common.extend_from_slice(&method.to_le_bytes());
            common.extend_from_slice(&[0; 4]);
            common.extend_from_slice(&crc.to_le_bytes());
            common.extend_from_slice(&(body.len() as u32).to_le_bytes());
            common.extend_from_slice(&(data.len() as u32).to_le_bytes());
            common.extend_from_slice(&(name.len() as u16).to_le_bytes());
            common.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&SIG_LOCAL.to_le_bytes());
            out.extend_from_slice(&common);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&body);
            cd.extend_from_slice(&SIG_CENTRAL.to_le_bytes());
            cd.extend_from_slice(&20u16.to_le_bytes());
            cd.extend_from_slice(&common);
            cd.extend_from_slice(&[0; 10]);
            cd.extend_from_slice(&offset.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let cd_at = out.len() as u32;
        out.extend_from_slice(&cd);
        out.extend_from_slice(&SIG_EOCD.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let n = (members.len() as u16).to_le_bytes();
        out.extend_from_slice(&n);
        out.extend_from_slice(&n);
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_at.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn open(bytes: Vec<u8>) -> (MemFile, Result<ZipArchive, ZipError>) {
        let mut f = MemFile(bytes);
        let z = ZipArchive::open(&mut f);
        (f, z)
    }

    #[test]
    fn stored_and_deflated_members_round_trip() {
        let big = b"abcabcabc".repeat(10_000);
        let (mut f, z) = open(build(&[("a/", b"", false), ("a/s.txt", b"stored", false), ("a/d.bin", &big, true)]));
        let z = z.expect("opens");
        let names: Vec<&str> = z.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a/", "a/s.txt", "a/d.bin"]);
        assert!(z.entries()[0].is_dir());
        let mut budget = InflateBudget::new(1 << 20);
        assert_eq!(z.read_member(&mut f, &z.entries()[1], 100, &mut budget).as_deref(), Ok(&b"stored"[..]));
        let d = z.read_member(&mut f, &z.entries()[2], 1 << 20, &mut budget).expect("inflates");
        assert!(d == big, "{} bytes inflated", d.len());
        assert_eq!(budget.used(), 6 + 90_000);
        // Over the caller's limit: an error, or the prefix when asked for one.
        assert!(matches!(
            z.read_member(&mut f, &z.entries()[2], 1000, &mut budget),
            Err(ZipError::MemberTooLarge { .. })
        ));
        let (p, complete) = z.read_member_prefix(&mut f, &z.entries()[2], 1000, &mut budget).expect("prefix");
        assert_eq!((p.len(), complete, &p[..6]), (1000, false, &b"abcabc"[..]));
    }

    #[test]
    fn lying_declared_size_is_caught_by_the_hard_limit() {
        let data = vec![0u8; 5_000_000];
        let mut zip = build(&[("bomb.txt", &data, true)]);
        // Declared uncompressed size 10 in both headers: the inflate limit stops at `max`.
        let cd = zip.len() - 22 - (46 + 8);
        zip[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
        zip[22..26].copy_from_slice(&10u32.to_le_bytes());
        let (mut f, z) = open(zip);
        let z = z.expect("opens");
        let mut budget = InflateBudget::new(u64::MAX);
        let r = z.read_member(&mut f, &z.entries()[0], 64 * 1024, &mut budget);
        assert!(matches!(r, Err(ZipError::MemberTooLarge { limit: 65536, .. })), "{r:?}");
        assert!(budget.used() <= 64 * 1024 + OUTPUT_CHUNK as u64, "{}", budget.used());
        // Under a big enough limit, the size mismatch itself is the error.
        let r = z.read_member(&mut f, &z.entries()[0], 10_000_000, &mut budget);
        assert!(
            matches!(&r, Err(ZipError::Member { reason, .. }) if reason.contains("central directory says 10")),
            "{r:?}"
        );
    }

    #[test]
    fn budget_is_shared_and_spent() {
        let data = vec![7u8; 300_000];
        let (mut f, z) = open(build(&[("a", &data, true), ("b", &data, true)]));
        let z = z.expect("opens");
        let mut budget = InflateBudget::new(400_000);
        assert!(z.read_member(&mut f, &z.entries()[0], 1 << 20, &mut budget).is_ok());
        let r = z.read_member(&mut f, &z.entries()[1], 1 << 20, &mut budget);
        assert!(matches!(r, Err(ZipError::BudgetSpent { limit: 400_000, .. })), "{r:?}");
        assert_eq!(budget.left(), 0);
    }

    #[test]
    fn crc_mismatch_and_unsupported_method_are_member_errors() {
        let mut zip = build(&[("a", b"hello", false), ("b", b"x", false)]);
        zip[30 + 1] = b'E'; // "hello" -> "hEllo"
        let cd_b = zip.len() - 22 - (46 + 1);
        zip[cd_b + 10] = 12; // bzip2
        let (mut f, z) = open(zip);
        let z = z.expect("opens");
        let mut budget = InflateBudget::new(1 << 20);
        let r = z.read_member(&mut f, &z.entries()[0], 100, &mut budget);
        assert!(matches!(&r, Err(ZipError::Member { reason, .. }) if reason == "CRC-32 mismatch"), "{r:?}");
        let r = z.read_member(&mut f, &z.entries()[1], 100, &mut budget);
        assert!(matches!(&r, Err(ZipError::Member { reason, .. }) if reason.contains("method 12")), "{r:?}");
    }

    #[test]
    fn overlapping_entries_are_refused() {
        let mut zip = build(&[("a", b"aaaaaaaa", false), ("b", b"bbbbbbbb", false)]);
        // Point b's central entry at a's local header: both share one data range.
        let cd_b = zip.len() - 22 - (46 + 1);
        zip[cd_b + 42..cd_b + 46].copy_from_slice(&0u32.to_le_bytes());
        let r = open(zip).1;
        assert!(matches!(&r, Err(ZipError::Overlap { first, second }) if first == "a" && second == "b"), "{r:?}");
    }

    #[test]
    fn prepended_data_shifts_offsets() {
        let mut zip = b"#!/bin/sh\nexec java -jar \"$0\"\n".to_vec();
        zip.extend(build(&[("m", b"content", true)]));
        let (mut f, z) = open(zip);
        let z = z.expect("opens");
        let mut budget = InflateBudget::new(1 << 20);
        assert_eq!(z.read_member(&mut f, &z.entries()[0], 100, &mut budget).as_deref(), Ok(&b"content"[..]));
    }

    #[test]
    fn not_a_zip_and_truncations() {
        assert!(matches!(open(vec![0u8; 100]).1, Err(ZipError::NoEndRecord { searched: 100 })));
        assert!(matches!(open(Vec::new()).1, Err(ZipError::NoEndRecord { .. })));
        let zip = build(&[("a", b"hello", false)]);
        // Cut the front: the central directory now claims offsets before its own position.
        assert!(matches!(open(zip[10..].to_vec()).1, Err(ZipError::Corrupt(_))));
        for cut in 0..zip.len() {
            let _ = open(zip[..cut].to_vec());
        }
    }
}
