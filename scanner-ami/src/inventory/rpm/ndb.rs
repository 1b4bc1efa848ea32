//! Reader of rpm's NDB `Packages.db` (SUSE: SLE 15, openSUSE): walks the slot table in slot
//! order and yields the header blob each used slot points to, after checking the blob's head,
//! tail and adler32 checksum.
//!
//! Layout (little-endian, checked against the SLE 15 BCI fixture with `xxd`):
//! - file header at 0: magic `RpmP`, version u32 (0), generation u32, slot page count u32,
//!   next package index u32; it takes the room of the first two slots;
//! - slot pages of 4096 bytes from offset 0, so the first slot is at byte 32; a slot is 16 bytes
//!   `{magic "Slot", pkgidx u32, blkoff u32, blkcnt u32}`, pkgidx 0 marking a free slot;
//! - a blob at `blkoff * 16`, `blkcnt * 16` bytes: head `{magic "BlbS", pkgidx u32,
//!   generation u32, bloblen u32}`, the header blob, zero padding, then a 12-byte tail
//!   `{adler32 u32, bloblen u32, magic "BlbE"}` ending exactly at the end of the blocks. The
//!   checksum covers everything from the head to the padding.
//!
//! Slot order is also pkgidx (installation) order in rpm-written files, and is the order
//! go-rpmdb lists; the fixture's expected list matches it exactly.

use super::{BlobSink, Collector};
use crate::fs::{FileRead, FsError};
use crate::inventory::{DbFormat, DbRead};
use crate::limits;

/// File header magic.
pub const NDB_MAGIC: [u8; 4] = *b"RpmP";
/// The only NDB format version rpm writes (`NDB_VERSION`).
const NDB_VERSION: u32 = 0;
const SLOT_MAGIC: [u8; 4] = *b"Slot";
const BLOB_HEAD_MAGIC: [u8; 4] = *b"BlbS";
const BLOB_TAIL_MAGIC: [u8; 4] = *b"BlbE";
/// Size of a slot page (rpm's NDB uses fixed 4 KiB slot pages).
const SLOT_PAGE_SIZE: usize = 4096;
/// Size of one slot entry.
const SLOT_SIZE: usize = 16;
/// First slot offset: the 20-byte file header is padded to two slot entries (verified on the
/// fixture: the first `Slot` magic is at byte 0x20).
const FIRST_SLOT: usize = 32;
/// Blob offsets and lengths are counted in 16-byte blocks.
const BLOCK_SIZE: u64 = 16;
/// Sizes of the blob head and tail.
const BLOB_HEAD: usize = 16;
const BLOB_TAIL: usize = 12;

/// Why an NDB file could not be read (or only partly).
#[derive(Debug, thiserror::Error)]
pub enum NdbError {
    #[error(transparent)]
    Io(#[from] FsError),
    #[error("file of {len} bytes is too small for an NDB header")]
    TooSmall { len: u64 },
    #[error("not an rpm NDB database (magic {magic:?})")]
    NotNdb { magic: [u8; 4] },
    #[error("unsupported NDB version {version}")]
    Version { version: u32 },
    #[error("header says 0 slot pages")]
    NoSlots,
    #[error("database is truncated: {pages} slot pages claimed, the file holds {in_file}")]
    Truncated { pages: u32, in_file: u64 },
}

fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

fn magic(b: &[u8], off: usize) -> Option<[u8; 4]> {
    b.get(off..off.checked_add(4)?)?.try_into().ok()
}

/// Adler-32 (RFC 1950 section 8.2): the checksum rpm stores in the blob tail.
fn adler32(data: &[u8]) -> u32 {
    /// Largest prime below 2^16 (RFC 1950).
    const MOD: u32 = 65521;
    /// Bytes that can be summed before `b` may overflow a u32 (zlib's `NMAX`).
    const NMAX: usize = 5552;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(NMAX) {
        for &x in chunk {
            a = a.wrapping_add(u32::from(x));
            b = b.wrapping_add(a);
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Read and check the blob of one slot; `Err` says why it is skipped.
fn read_blob(file: &mut dyn FileRead, pkgidx: u32, blkoff: u32, blkcnt: u32) -> Result<Vec<u8>, String> {
    let start = u64::from(blkoff) * BLOCK_SIZE;
    let len = u64::from(blkcnt) * BLOCK_SIZE;
    let end = start.checked_add(len).ok_or("blob bounds overflow")?;
    if end > file.len() {
        return Err(format!("blob at {start}..{end} lies past the end of the file ({} bytes)", file.len()));
    }
    let max = (limits::MAX_RPM_HEADER_BYTES + BLOB_HEAD + BLOB_TAIL) as u64 + BLOCK_SIZE;
    if len > max || len < (BLOB_HEAD + BLOB_TAIL) as u64 {
        return Err(format!("blob of {len} bytes is outside the accepted size range"));
    }
    let mut head = [0u8; BLOB_HEAD];
    file.read_exact_at(start, &mut head).map_err(|e| e.to_string())?;
    if magic(&head, 0) != Some(BLOB_HEAD_MAGIC) {
        return Err(format!("no blob magic at offset {start}"));
    }
    let owner = le_u32(&head, 4).unwrap_or(0);
    if owner != pkgidx {
        return Err(format!("blob at offset {start} belongs to package {owner}"));
    }
    let bloblen = le_u32(&head, 12).unwrap_or(0);
    let blob_len = usize::try_from(bloblen).map_err(|_| "blob length overflows")?;
    let need = blob_len.checked_add(BLOB_HEAD + BLOB_TAIL).ok_or("blob length overflows")?;
    // rpm allocates exactly ceil((head + blob + tail) / 16) blocks.
    if need.div_ceil(BLOCK_SIZE as usize) as u64 != u64::from(blkcnt) {
        return Err(format!("blob length {bloblen} does not match the slot's {blkcnt} blocks"));
    }
    let mut area = vec![0u8; usize::try_from(len).map_err(|_| "blob too large")?];
    file.read_exact_at(start, &mut area).map_err(|e| e.to_string())?;
    let tail_at = area.len() - BLOB_TAIL;
    let (body, tail) = area.split_at(tail_at);
    if magic(tail, 8) != Some(BLOB_TAIL_MAGIC) || le_u32(tail, 4) != Some(bloblen) {
        return Err(format!("blob at offset {start} has a bad tail"));
    }
    let stored = le_u32(tail, 0).unwrap_or(0);
    let computed = adler32(body);
    if stored != computed {
        return Err(format!("blob at offset {start}: checksum {stored:#010x} != computed {computed:#010x}"));
    }
    area.truncate(BLOB_HEAD + blob_len);
    area.drain(..BLOB_HEAD);
    Ok(area)
}

/// Walk the slot table of the NDB database in `file` and hand each used slot's header blob to
/// `sink`, in slot order. Bad slots and blobs are reported through [`BlobSink::skip`] and
/// iteration goes on; an `Err` means the file is not a readable NDB database or was cut short
/// (blobs found before are already delivered).
pub fn read_blobs(file: &mut dyn FileRead, sink: &mut dyn BlobSink) -> Result<(), NdbError> {
    let len = file.len();
    let mut page = vec![0u8; SLOT_PAGE_SIZE];
    if len < FIRST_SLOT as u64 {
        return Err(NdbError::TooSmall { len });
    }
    let header = page.get_mut(..FIRST_SLOT).ok_or(NdbError::TooSmall { len })?;
    file.read_exact_at(0, header)?;
    let found = magic(&page, 0).unwrap_or_default();
    if found != NDB_MAGIC {
        return Err(NdbError::NotNdb { magic: found });
    }
    let version = le_u32(&page, 4).unwrap_or(u32::MAX);
    if version != NDB_VERSION {
        return Err(NdbError::Version { version });
    }
    let slot_pages = le_u32(&page, 12).unwrap_or(0);
    if slot_pages == 0 {
        return Err(NdbError::NoSlots);
    }
    let in_file = len / SLOT_PAGE_SIZE as u64;
    let readable = u64::from(slot_pages).min(in_file);
    for pageno in 0..readable {
        let off = pageno * SLOT_PAGE_SIZE as u64;
        file.read_exact_at(off, &mut page)?;
        let first = if pageno == 0 { FIRST_SLOT } else { 0 };
        for at in (first..SLOT_PAGE_SIZE).step_by(SLOT_SIZE) {
            let slot = (off + at as u64 - FIRST_SLOT as u64) / SLOT_SIZE as u64;
            if magic(&page, at) != Some(SLOT_MAGIC) {
                sink.skip(format!("slot {slot}: bad slot magic"));
                continue;
            }
            let field = |n: usize| le_u32(&page, at + 4 * n).unwrap_or(0);
            let (pkgidx, blkoff, blkcnt) = (field(1), field(2), field(3));
            if pkgidx == 0 {
                continue;
            }
            let record = format!("slot {slot} (package {pkgidx})");
            match read_blob(file, pkgidx, blkoff, blkcnt) {
                Ok(blob) => {
                    if sink.blob(&record, &blob).is_break() {
                        return Ok(());
                    }
                }
                Err(why) => sink.skip(format!("{record}: {why}")),
            }
        }
    }
    if u64::from(slot_pages) > in_file {
        return Err(NdbError::Truncated { pages: slot_pages, in_file });
    }
    Ok(())
}

/// Read the packages of the NDB `Packages.db` database in `file` (found at `path`).
pub fn read(file: &mut dyn FileRead, path: &str) -> DbRead {
    Collector::collect(DbFormat::RpmNdb, path, |c| read_blobs(file, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFile;
    use crate::inventory::rpm::header::tests::xorshift;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const PATH: &str = "/usr/lib/sysimage/rpm/Packages.db";
    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/go-rpmdb/sle15-bci-ndb");

    fn fixture() -> std::io::Result<Vec<u8>> {
        std::fs::read(format!("{DIR}/Packages.db"))
    }

    #[test]
    fn adler32_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        let big = vec![0xffu8; 100_000];
        // Reference value computed with Python's zlib.adler32.
        assert_eq!(adler32(&big), 0x149a_302c);
    }

    #[test]
    fn sle15_fixture_matches_expected_json() -> TestResult {
        let read = read(&mut MemFile(fixture()?), PATH);
        assert_eq!(read.error, None);
        assert!(read.skipped.is_empty(), "{:?}", read.skipped);
        let expected: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{DIR}/expected.json"))?)?;
        let want = expected["packages"].as_array().ok_or("no packages")?;
        assert_eq!(expected["count"], 35);
        assert_eq!(read.packages.len(), want.len());
        for (got, want) in read.packages.iter().zip(want) {
            let s = |k: &str| want[k].as_str().map(str::to_owned);
            assert_eq!(Some(got.name.clone()), s("name"));
            assert_eq!(Some(got.version.clone()), s("version"));
            assert_eq!(got.release, s("release"), "{}", got.name);
            assert_eq!(got.epoch.map(u64::from), want["epoch"].as_u64(), "{}", got.name);
            assert_eq!(got.arch, s("arch"), "{}", got.name);
            assert_eq!(got.source_rpm, s("sourceRpm"), "{}", got.name);
            assert_eq!(got.installed_size, want["size"].as_u64(), "{}", got.name);
            assert_eq!(got.license, s("license"), "{}", got.name);
            assert_eq!(got.vendor, s("vendor").filter(|v| !v.is_empty()), "{}", got.name);
            assert_eq!(got.db, DbFormat::RpmNdb);
            assert_eq!(got.db_path, PATH);
        }
        let gcc = read.packages.iter().find(|p| p.name == "libgcc_s1").ok_or("no libgcc_s1")?;
        assert_eq!(gcc.source_name.as_deref(), Some("gcc11"));
        assert_eq!(gcc.source_version.as_deref(), Some("11.2.1+git610-1.3.9"));
        Ok(())
    }

    #[test]
    fn truncated_copies() -> TestResult {
        let full = fixture()?;
        for cut in [0usize, 10, 31, 32, 100, 4095, 4096, 5000, 100_000, full.len() / 2, full.len() - 1] {
            let r = read(&mut MemFile(full.get(..cut).ok_or("cut")?.to_vec()), PATH);
            assert!(r.packages.len() < 35, "cut {cut}");
            assert!(r.error.is_some() || !r.skipped.is_empty(), "cut {cut}: {r:?}");
        }
        Ok(())
    }

    fn patch_slot(b: &mut [u8], slot: usize, field: usize, v: u32) {
        let at = FIRST_SLOT + slot * SLOT_SIZE + 4 * field;
        if let Some(s) = b.get_mut(at..at + 4) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn slot_field(b: &[u8], slot: usize, field: usize) -> u32 {
        le_u32(b, FIRST_SLOT + slot * SLOT_SIZE + 4 * field).unwrap_or(0)
    }

    #[test]
    fn bad_slots_are_skipped_with_notes() -> TestResult {
        // Slot 0 points past EOF, slot 1 at the wrong package's blob, slot 2 has a bad magic,
        // slot 3's blob gets a flipped byte (checksum), slot 4's block count disagrees.
        let mut b = fixture()?;
        patch_slot(&mut b, 0, 2, 0x0fff_ffff);
        let slot2_blob =
            u32::from_le_bytes(b.get(FIRST_SLOT + 2 * 16 + 8..FIRST_SLOT + 2 * 16 + 12).ok_or("x")?.try_into()?);
        patch_slot(&mut b, 1, 2, slot2_blob);
        if let Some(m) = b.get_mut(FIRST_SLOT + 2 * SLOT_SIZE) {
            *m = b'X';
        }
        let slot3_blob =
            u32::from_le_bytes(b.get(FIRST_SLOT + 3 * 16 + 8..FIRST_SLOT + 3 * 16 + 12).ok_or("x")?.try_into()?);
        let flip = usize::try_from(slot3_blob)? * 16 + 100;
        if let Some(x) = b.get_mut(flip) {
            *x ^= 0x40;
        }
        let slot4_cnt = slot_field(&b, 4, 3);
        patch_slot(&mut b, 4, 3, slot4_cnt + 1);
        let r = read(&mut MemFile(b), PATH);
        assert_eq!(r.error, None);
        assert_eq!(r.packages.len(), 30);
        assert_eq!(r.skipped.len(), 5, "{:?}", r.skipped);
        assert!(r.skipped.first().is_some_and(|s| s.contains("past the end of the file")), "{:?}", r.skipped);
        assert!(r.skipped.get(1).is_some_and(|s| s.contains("belongs to package 3")));
        assert!(r.skipped.get(2).is_some_and(|s| s.contains("bad slot magic")));
        assert!(r.skipped.get(3).is_some_and(|s| s.contains("checksum")));
        assert!(r.skipped.get(4).is_some_and(|s| s.contains("does not match")));
        Ok(())
    }

    #[test]
    fn bad_file_headers() -> TestResult {
        let good = fixture()?;
        let mut b = good.clone();
        b[0] = b'X';
        assert!(read(&mut MemFile(b), PATH).error.is_some_and(|e| e.contains("not an rpm NDB")));
        let mut b = good.clone();
        b[4] = 1;
        assert!(read(&mut MemFile(b), PATH).error.is_some_and(|e| e.contains("version")));
        let mut b = good.clone();
        b[12..16].copy_from_slice(&0u32.to_le_bytes());
        assert!(read(&mut MemFile(b), PATH).error.is_some());
        let mut b = good;
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let r = read(&mut MemFile(b), PATH);
        assert!(r.error.is_some_and(|e| e.contains("truncated")));
        Ok(())
    }

    #[test]
    fn random_bytes_and_mutations_never_panic() -> TestResult {
        let mut rng = 0x1234_5678_9abc_def1u64;
        for n in 0..100usize {
            let len = (xorshift(&mut rng) % 20_000) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| (xorshift(&mut rng) & 0xff) as u8).collect();
            if n.is_multiple_of(2) && b.len() >= 16 {
                b[..4].copy_from_slice(&NDB_MAGIC);
                b[4..8].copy_from_slice(&[0; 4]);
                b[12..16].copy_from_slice(&1u32.to_le_bytes());
            }
            let _ = read(&mut MemFile(b), PATH);
        }
        let good = fixture()?;
        for _ in 0..120 {
            let mut b = good.clone();
            for _ in 0..(xorshift(&mut rng) % 3 + 1) {
                let pos = if xorshift(&mut rng).is_multiple_of(2) {
                    (xorshift(&mut rng) % 4096) as usize
                } else {
                    (xorshift(&mut rng) % good.len() as u64) as usize
                };
                if let Some(x) = b.get_mut(pos) {
                    *x = (xorshift(&mut rng) & 0xff) as u8;
                }
            }
            assert!(read(&mut MemFile(b), PATH).packages.len() <= 35);
        }
        Ok(())
    }
}
