//! The physical log: reading its basic blocks (wrapping at its end), log record headers
//! (`xlog_rec_header`, their CRC and the cycle numbers stamped over the record body), and finding
//! the head and the tail.
//!
//! The log is circular. Every basic block written in a pass over it starts with that pass's cycle
//! number (a record header holds it at offset 4, after the magic; a body block holds it in its
//! first 4 bytes, whose real contents are saved in the record header). The head is where the
//! cycle number drops; up to 8 log buffers may have been in flight at a crash, so the blocks just
//! before the head are checked for holes and the head is moved back to the last complete record.
//! The tail is named by the last record (`h_tail_lsn`). A last record that is an unmount record
//! means a clean log: nothing to replay.

use std::cell::RefCell;

use super::{BBSIZE, LogError, LogGeo, be, corrupt};
use crate::disk::BlockSource;
use crate::fs::xfs::util::crc32c;

/// `XLOG_HEADER_MAGIC_NUM`.
pub(super) const REC_MAGIC: u32 = 0xFEED_BABE;
/// Body bytes whose cycle numbers one header sector holds (`XLOG_HEADER_CYCLE_SIZE`).
const HEADER_CYCLE_SIZE: u32 = 32 * 1024;
/// Cycle-number slots per header sector (`XLOG_HEADER_CYCLE_SIZE / BBSIZE`).
const CYCLE_SLOTS: usize = 64;
/// Largest log record (`XLOG_MAX_RECORD_BSIZE`, the largest log buffer).
const MAX_RECORD_BYTES: u32 = 256 * 1024;
/// Basic blocks that may have been in flight at a crash: 8 log buffers of the largest size
/// (`XLOG_MAX_ICLOGS << XLOG_MAX_RECORD_BSHIFT`). The kernel checks this window for holes.
const INFLIGHT_BBS: u64 = 8 * (MAX_RECORD_BYTES as u64) / BBSIZE as u64;
/// Log buffers that may have been in flight at a crash (`XLOG_MAX_ICLOGS`): the torn-write check
/// looks at this many records before the head.
const MAX_ICLOGS: usize = 8;
/// Basic blocks read at once when scanning the log for cycle numbers or headers (1 MiB).
const SCAN_CHUNK_BBS: u64 = 2048;
/// `XLOG_UNMOUNT_TRANS` in an operation header's flags.
pub(super) const OP_UNMOUNT: u8 = 0x20;
/// Size of the record header the CRC covers on x86-64 (`sizeof(struct xlog_rec_header)`, padded)
/// and on i386 (`offsetofend(h_size)`); the kernel accepts either.
const REC_CRC_SIZES: [usize; 2] = [328, 324];
/// Bytes of an extended header the CRC covers (`xh_cycle` and `xh_cycle_data`).
const EXT_CRC_SIZE: usize = 4 + 4 * CYCLE_SLOTS;
/// `XLOG_FMT_LINUX_LE` / `XLOG_FMT_LINUX_BE`: the byte order of the logged items.
const FMT_LINUX_LE: u32 = 1;
const FMT_LINUX_BE: u32 = 2;

/// The log region of the device, in basic blocks, with a one-chunk cache for scans.
#[derive(Debug)]
pub(super) struct LogDev<'a> {
    dev: &'a dyn BlockSource,
    pub(super) geo: &'a LogGeo,
    cache: RefCell<Option<(u64, Vec<u8>)>>,
}

/// The part of the log to replay: records from `tail` up to `head` (basic blocks in the log).
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) head: u64,
    pub(super) tail: u64,
    /// `h_size` of the last record: bounds how far the tail may have been overwritten.
    pub(super) hsize: u32,
}

impl<'a> LogDev<'a> {
    pub(super) fn new(dev: &'a dyn BlockSource, geo: &'a LogGeo) -> Self {
        LogDev { dev, geo, cache: RefCell::new(None) }
    }

    pub(super) fn bbs(&self) -> u64 {
        self.geo.log_bbs
    }

    /// `bb + n` modulo the log size.
    pub(super) fn wrap(&self, bb: u64, n: u64) -> u64 {
        (bb % self.bbs() + n % self.bbs()) % self.bbs()
    }

    fn read_raw(&self, bb: u64, count: u64, out: &mut [u8]) -> Result<(), LogError> {
        debug_assert_eq!(out.len() as u64, count * BBSIZE as u64);
        let off = self.geo.log_start + bb * BBSIZE as u64;
        self.dev.read_exact_at(off, out).map_err(|e| LogError::Io(format!("log block {bb} (+{count}): {e}")))
    }

    /// `count` basic blocks from `bb`, wrapping at the end of the log.
    pub(super) fn read(&self, bb: u64, count: u64) -> Result<Vec<u8>, LogError> {
        let n = self.bbs();
        if bb >= n || count > n {
            return Err(corrupt(format!("log read of {count} blocks at {bb} outside the {n}-block log")));
        }
        let len = usize::try_from(count * BBSIZE as u64).map_err(|_| corrupt("log read too large"))?;
        let mut out = vec![0u8; len];
        let first = count.min(n - bb);
        let (a, b) = out.split_at_mut(usize::try_from(first * BBSIZE as u64).unwrap_or(0));
        self.read_raw(bb, first, a)?;
        if count > first {
            self.read_raw(0, count - first, b)?;
        }
        Ok(out)
    }

    /// One basic block of a scan over `lo..hi` through the scan cache; a miss loads the chunk
    /// ending at `bb` when scanning `backward`, else the chunk from `bb`, never past the range.
    fn scan_bb(&self, bb: u64, (lo, hi): (u64, u64), backward: bool) -> Result<[u8; BBSIZE], LogError> {
        let mut cache = self.cache.borrow_mut();
        let hit = |c: &Option<(u64, Vec<u8>)>| -> Option<[u8; BBSIZE]> {
            let (first, data) = c.as_ref()?;
            let idx = usize::try_from(bb.checked_sub(*first)?).ok()?;
            data.get(idx * BBSIZE..(idx + 1) * BBSIZE)?.try_into().ok()
        };
        if let Some(b) = hit(&cache) {
            return Ok(b);
        }
        let hi = hi.min(self.bbs());
        let (lo, hi) = if backward {
            ((bb + 1).saturating_sub(SCAN_CHUNK_BBS).max(lo), bb + 1)
        } else {
            (bb, (bb + SCAN_CHUNK_BBS).min(hi))
        };
        if lo >= hi {
            return Err(corrupt(format!("log block {bb} outside the scanned range")));
        }
        let mut data = vec![0u8; usize::try_from((hi - lo) * BBSIZE as u64).unwrap_or(0)];
        self.read_raw(lo, hi - lo, &mut data)?;
        *cache = Some((lo, data));
        hit(&cache).ok_or_else(|| corrupt(format!("log block {bb} outside the log")))
    }

    /// Cycle number of one block read alone (the binary search).
    fn cycle_at(&self, bb: u64) -> Result<u32, LogError> {
        let mut b = [0u8; BBSIZE];
        self.read_raw(bb, 1, &mut b)?;
        Ok(cycle_of(&b))
    }
}

/// The cycle number a basic block was written in.
fn cycle_of(b: &[u8]) -> u32 {
    match be::u32(b, 0) {
        Some(REC_MAGIC) => be::u32(b, 4).unwrap_or(0),
        Some(c) => c,
        None => 0,
    }
}

/// A parsed log record header (`xlog_rec_header`, big-endian).
#[derive(Debug, Clone)]
pub(super) struct RecHeader {
    pub(super) len: u32,
    pub(super) lsn: u64,
    pub(super) tail_lsn: u64,
    crc: u32,
    pub(super) num_logops: u32,
    pub(super) size: u32,
    /// Header sectors: the header and its extended headers (`xlog_logrec_hblks`).
    pub(super) hblks: u64,
    /// The first header sector.
    raw: [u8; BBSIZE],
}

impl RecHeader {
    /// Parse and check a header sector found at log block `blk`.
    pub(super) fn parse(b: &[u8], blk: u64, geo: &LogGeo) -> Result<RecHeader, LogError> {
        let bad = |why: String| corrupt(format!("log record header at block {blk}: {why}"));
        let raw: [u8; BBSIZE] = b.get(..BBSIZE).and_then(|s| s.try_into().ok()).ok_or_else(|| bad("short".into()))?;
        let f32 = |off| be::u32(&raw, off).unwrap_or(0);
        let f64 = |off| be::u64(&raw, off).unwrap_or(0);
        if f32(0) != REC_MAGIC {
            return Err(bad("no magic".into()));
        }
        let version = f32(8);
        if version == 0 || version & !3 != 0 {
            return Err(bad(format!("version {version:#x}")));
        }
        let len = f32(12);
        let size = f32(320);
        // Version 1 records are at most 32 KiB and carry no size.
        let bufsize = if geo.logv2 && version & 2 != 0 { size.max(HEADER_CYCLE_SIZE) } else { HEADER_CYCLE_SIZE };
        if bufsize > MAX_RECORD_BYTES {
            return Err(bad(format!("record size {size} over {MAX_RECORD_BYTES}")));
        }
        if len == 0 || len > bufsize {
            return Err(bad(format!("length {len} (record size {bufsize})")));
        }
        let hblks = if geo.logv2 && version & 2 != 0 && size > HEADER_CYCLE_SIZE {
            u64::from(size.div_ceil(HEADER_CYCLE_SIZE))
        } else {
            1
        };
        let uuid = be::bytes(&raw, 304, 16).unwrap_or_default();
        if uuid != geo.uuid && uuid.iter().any(|&x| x != 0) {
            return Err(bad("the filesystem UUID does not match the superblock's".into()));
        }
        let crc = u32::from_le_bytes(raw.get(32..36).and_then(|s| s.try_into().ok()).unwrap_or_default());
        Ok(RecHeader { len, lsn: f64(16), tail_lsn: f64(24), crc, num_logops: f32(40), size, hblks, raw })
    }

    /// Basic blocks of the body.
    pub(super) fn body_bbs(&self) -> u64 {
        u64::from(self.len).div_ceil(BBSIZE as u64)
    }

    /// The logged items must be in our (little-endian) byte order.
    pub(super) fn check_format(&self, blk: u64) -> Result<(), LogError> {
        match be::u32(&self.raw, 300) {
            Some(FMT_LINUX_LE) => Ok(()),
            Some(FMT_LINUX_BE) => Err(LogError::Unsupported("the log was written by a big-endian host".into())),
            f => Err(corrupt(format!("log record at block {blk}: unknown format {f:?}"))),
        }
    }

    /// True when the record carries no CRC (kernels before 3.10 wrote none; mkfs writes none).
    pub(super) fn crc_absent(&self) -> bool {
        self.crc == 0
    }

    /// True when the stored CRC matches the header sectors `hdr` (all `hblks` of them) and the
    /// packed body `body` (as on disk, cycle numbers not yet restored).
    pub(super) fn crc_matches(&self, hdr: &[u8], body: &[u8]) -> bool {
        let xheads = usize::try_from(self.len.div_ceil(HEADER_CYCLE_SIZE)).unwrap_or(1);
        for size in REC_CRC_SIZES {
            let mut all = Vec::with_capacity(size + xheads * EXT_CRC_SIZE + body.len());
            all.extend_from_slice(self.raw.get(..size).unwrap_or_default());
            if let Some(c) = all.get_mut(32..36) {
                c.fill(0);
            }
            for i in 1..xheads {
                all.extend_from_slice(hdr.get(i * BBSIZE..i * BBSIZE + EXT_CRC_SIZE).unwrap_or_default());
            }
            all.extend_from_slice(body.get(..self.len as usize).unwrap_or_default());
            if crc32c(&all) == self.crc {
                return true;
            }
        }
        false
    }

    /// Put back the first 4 bytes of every body sector, saved in the header's `h_cycle_data`
    /// and, past 32 KiB, in the extended headers (`hdr` holds all header sectors).
    pub(super) fn unpack(&self, hdr: &[u8], body: &mut [u8]) -> Result<(), LogError> {
        let n = usize::try_from(self.body_bbs()).unwrap_or(0);
        for i in 0..n {
            let (j, k) = (i / CYCLE_SLOTS, i % CYCLE_SLOTS);
            let src = if j == 0 { 44 + 4 * k } else { j * BBSIZE + 4 + 4 * k };
            let saved = hdr.get(src..src + 4).ok_or_else(|| corrupt("log record: cycle data past its headers"))?;
            if let Some(dst) = body.get_mut(i * BBSIZE..i * BBSIZE + 4) {
                dst.copy_from_slice(saved);
            }
        }
        Ok(())
    }
}

/// Block number part of an LSN (`BLOCK_LSN`).
pub(super) fn lsn_block(lsn: u64) -> u64 {
    lsn & 0xffff_ffff
}

/// Find the head and tail of the log: `None` when there is nothing to replay (a clean or zeroed
/// log).
pub(super) fn find_span(log: &LogDev) -> Result<Option<Span>, LogError> {
    let Some(head) = find_head(log)? else { return Ok(None) };
    let Some((rblk, rhead)) = seek_back(log, head, head, 1)?.pop() else {
        return Err(corrupt("no log record header before the head"));
    };
    let mut span = Span { head, tail: tail_of(log, &rhead)?, hsize: rhead.size };
    if is_unmount(log, head, rblk, &rhead)? {
        return Ok(None);
    }
    // Torn writes: CRC-check the last records (up to as many as could be in flight); the head
    // moves back to the first bad one, and the tail to the one the last good record names.
    let recent = seek_back(log, head, span.tail, MAX_ICLOGS)?;
    let mut first_bad = None;
    for (blk, hdr) in recent.iter().rev() {
        if !record_crc_ok(log, *blk, hdr)? {
            first_bad = Some(*blk);
            break;
        }
    }
    if let Some(bad) = first_bad {
        let Some((rblk, rhead)) = seek_back(log, bad, span.tail, 1)?.pop() else {
            return Err(corrupt(format!("torn log record at block {bad} and no good record before it")));
        };
        span = Span { head: bad, tail: tail_of(log, &rhead)?, hsize: rhead.size };
        if span.head == span.tail || is_unmount(log, span.head, rblk, &rhead)? {
            return Ok(None);
        }
    }
    Ok(Some(span))
}

fn tail_of(log: &LogDev, rhead: &RecHeader) -> Result<u64, LogError> {
    let tail = lsn_block(rhead.tail_lsn);
    if tail >= log.bbs() {
        return Err(corrupt(format!("log tail block {tail} outside the {}-block log", log.bbs())));
    }
    Ok(tail)
}

/// CRC check of the whole record whose header is at `blk` (a record without CRC passes, as in
/// the kernel's torn-write check).
fn record_crc_ok(log: &LogDev, blk: u64, rhead: &RecHeader) -> Result<bool, LogError> {
    let hdr = log.read(blk, rhead.hblks)?;
    let body = log.read(log.wrap(blk, rhead.hblks), rhead.body_bbs())?;
    Ok(rhead.crc_absent() || rhead.crc_matches(&hdr, &body))
}

/// True when the record at `rblk` is an unmount record ending at `head`: the log is clean.
fn is_unmount(log: &LogDev, head: u64, rblk: u64, rhead: &RecHeader) -> Result<bool, LogError> {
    let after = log.wrap(rblk, rhead.hblks + rhead.body_bbs());
    if after != head || rhead.num_logops != 1 {
        return Ok(false);
    }
    let data = log.read(log.wrap(rblk, rhead.hblks), 1)?;
    // The op header's flags byte (offset 9) is past the 4 bytes replaced by the cycle number.
    Ok(data.get(9).is_some_and(|f| f & OP_UNMOUNT != 0))
}

/// Basic block where the next record would be written, or `None` for a zeroed log.
fn find_head(log: &LogDev) -> Result<Option<u64>, LogError> {
    let n = log.bbs();
    let first_cycle = log.cycle_at(0)?;
    if first_cycle == 0 {
        // Never written (xfsprogs zeroes logs it makes clean this way too).
        return Ok(None);
    }
    let last_cycle = log.cycle_at(n - 1)?;
    let (mut head, stop) = if first_cycle == last_cycle {
        // The whole log is in the last cycle: the head is at the end, unless a hole still holds
        // the previous cycle.
        (n, last_cycle.wrapping_sub(1))
    } else {
        // Binary search for the first block of the old cycle.
        let (mut lo, mut hi) = (0u64, n - 1);
        let mut mid = (lo + hi) / 2;
        while mid != lo && mid != hi {
            if log.cycle_at(mid)? == last_cycle {
                hi = mid;
            } else {
                lo = mid;
            }
            mid = (lo + hi) / 2;
        }
        (hi, last_cycle)
    };
    // Blocks written out of order just before the head: the first one still in the old cycle is
    // the real head.
    let scan = INFLIGHT_BBS.min(n);
    if head >= scan {
        if let Some(b) = first_with_cycle(log, head - scan, head, stop)? {
            head = b;
        }
    } else if let Some(b) = first_with_cycle(log, n - (scan - head), n, stop.wrapping_sub(1))? {
        head = b;
    } else if let Some(b) = first_with_cycle(log, 0, head, stop)? {
        head = b;
    }
    // The head must not be inside a record: back it up to the start of an incomplete last one.
    let rec_bbs = u64::from(if log.geo.logv2 { MAX_RECORD_BYTES } else { HEADER_CYCLE_SIZE }) / BBSIZE as u64;
    let rec_bbs = rec_bbs.min(n);
    if head >= rec_bbs {
        if !verify_record_end(log, head - rec_bbs, &mut head, 0)? {
            return Err(corrupt(format!("no log record header in the {rec_bbs} blocks before the head")));
        }
    } else if !verify_record_end(log, 0, &mut head, 0)? {
        let mut end = n;
        if !verify_record_end(log, n - (rec_bbs - head), &mut end, head)? {
            return Err(corrupt(format!("no log record header in the {rec_bbs} blocks before the head")));
        }
        if end != n {
            head = end;
        }
    }
    Ok(Some(if head == n { 0 } else { head }))
}

/// First block in `lo..hi` whose cycle number is `cycle`.
fn first_with_cycle(log: &LogDev, lo: u64, hi: u64, cycle: u32) -> Result<Option<u64>, LogError> {
    for bb in lo..hi {
        if cycle_of(&log.scan_bb(bb, (lo, hi), false)?) == cycle {
            return Ok(Some(bb));
        }
    }
    Ok(None)
}

/// Find the last record header in `start..*last`; if that record does not end exactly at `*last`
/// (plus `extra` blocks already known past a wrap), move `*last` back to it. False when no header
/// is found.
fn verify_record_end(log: &LogDev, start: u64, last: &mut u64, extra: u64) -> Result<bool, LogError> {
    for i in (start..*last).rev() {
        let b = log.scan_bb(i, (start, *last), true)?;
        if be::u32(&b, 0) == Some(REC_MAGIC) {
            let h = RecHeader::parse(&b, i, log.geo)?;
            if *last - i + extra != h.body_bbs() + h.hblks {
                *last = i;
            }
            return Ok(true);
        }
    }
    Ok(false)
}

/// Up to `count` record headers found searching backward from `head` (exclusive), not past
/// `tail` (when the tail is known, i.e. differs from the head, and lies behind the head; with a
/// wrapped log the search continues from the end of the log down to the tail). Nearest first.
pub(super) fn seek_back(log: &LogDev, head: u64, tail: u64, count: usize) -> Result<Vec<(u64, RecHeader)>, LogError> {
    let mut out = Vec::new();
    let end = if head > tail { tail } else { 0 };
    for i in (end..head).rev() {
        let b = log.scan_bb(i, (end, head), true)?;
        if be::u32(&b, 0) == Some(REC_MAGIC) {
            out.push((i, RecHeader::parse(&b, i, log.geo)?));
            if out.len() == count {
                return Ok(out);
            }
        }
    }
    if tail >= head {
        for i in (tail..log.bbs()).rev() {
            let b = log.scan_bb(i, (tail, log.bbs()), true)?;
            if be::u32(&b, 0) == Some(REC_MAGIC) {
                out.push((i, RecHeader::parse(&b, i, log.geo)?));
                if out.len() == count {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// The first record header at or after `from`, searching forward toward `head`.
pub(super) fn seek_forward(log: &LogDev, from: u64, head: u64) -> Result<Option<u64>, LogError> {
    let mut bb = from;
    let mut steps = 0;
    while bb != head && steps < log.bbs() {
        let b = log.scan_bb(bb, (bb, if bb < head { head } else { log.bbs() }), false)?;
        if be::u32(&b, 0) == Some(REC_MAGIC) {
            return Ok(Some(bb));
        }
        bb = log.wrap(bb, 1);
        steps += 1;
    }
    Ok(None)
}
