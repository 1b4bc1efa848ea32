//! Walking the records from tail to head and assembling transactions from their operations.
//!
//! Each record body is a sequence of operations (`xlog_op_header`: tid, length, client, flags,
//! big-endian) whose payloads are regions. A transaction opens with a START operation, its first
//! region is the transaction header (`xfs_trans_header`), then come items: an item's first region
//! is its format structure, whose second 16-bit field counts the item's regions. A region cut by
//! the end of a record continues in the next one (`WAS_CONT`). Transactions interleave by tid and
//! are applied at their COMMIT operation, in log order.

use std::collections::HashMap;

use super::locate::{self, LogDev, RecHeader, Span};
use super::replay::Replayer;
use super::{LogError, MAX_OPEN_TRANS, MAX_PENDING_BYTES, MAX_REGION_BYTES, be, corrupt, host};

/// `XFS_TRANSACTION` and `XFS_LOG`: the two clients that write operations.
const CLIENT_TRANS: u8 = 0x69;
const CLIENT_LOG: u8 = 0xaa;
/// Operation flags (`XLOG_*_TRANS`).
const OP_START: u8 = 0x01;
const OP_COMMIT: u8 = 0x02;
const OP_CONTINUE: u8 = 0x04;
const OP_WAS_CONT: u8 = 0x08;
const OP_END: u8 = 0x10;
/// `XFS_TRANS_HEADER_MAGIC` ("TRAN", host order).
const TRANS_MAGIC: u32 = 0x5452_414e;
/// Size of `xfs_trans_header`.
const TRANS_HEADER_LEN: usize = 16;
/// Most regions in one item (`XLOG_MAX_REGIONS_IN_ITEM`: a 64 KiB buffer of 128-byte chunks,
/// every other one dirty, plus the format).
const MAX_REGIONS: usize = 65536 / 128 / 2 + 1;
/// Bookkeeping cost charged per region on top of its bytes, for the pending-bytes bound.
const REGION_OVERHEAD: usize = 48;
/// Most times pass 1 moves the tail past a record a cut-short write overwrote (the kernel retries
/// while the bad record is within 8 log buffers of the head).
const MAX_TAIL_MOVES: usize = 64;

/// The two passes over the log, as in the kernel: cancelled buffers must be known before any
/// buffer is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// Check the records' CRCs and collect the cancelled buffers.
    Cancel,
    /// Apply the committed transactions.
    Replay,
}

/// One logged item: its regions, the first being the item's format structure.
#[derive(Debug, Default)]
pub(super) struct Item {
    /// Regions the format announced.
    total: usize,
    /// Regions received (in pass 1 only the format's bytes are kept).
    count: usize,
    pub(super) regions: Vec<Vec<u8>>,
}

impl Item {
    /// The item type (`XFS_LI_*`): the first 16-bit field of every format structure.
    pub(super) fn kind(&self) -> Option<u16> {
        host::u16(self.regions.first()?, 0)
    }
}

/// A transaction being assembled.
#[derive(Debug)]
struct Trans {
    /// LSN of the record holding its START: the LSN its changes are ordered by.
    lsn: u64,
    header_len: usize,
    items: Vec<Item>,
    bytes: usize,
}

/// Open transactions of one pass.
#[derive(Debug)]
struct Assembler {
    pass: Pass,
    open: HashMap<u32, Trans>,
    pending: usize,
}

impl Assembler {
    fn charge(&mut self, t_bytes: &mut usize, n: usize) -> Result<(), LogError> {
        let n = n + REGION_OVERHEAD;
        *t_bytes += n;
        self.pending += n;
        if self.pending > MAX_PENDING_BYTES {
            return Err(LogError::Unsupported(format!(
                "uncommitted transactions over {} MiB",
                MAX_PENDING_BYTES / (1024 * 1024)
            )));
        }
        Ok(())
    }

    /// Process the operations of one record (body already unpacked).
    fn record(&mut self, h: &RecHeader, blk: u64, body: &[u8], rep: &mut Replayer) -> Result<(), LogError> {
        let end = usize::try_from(h.len).unwrap_or(0).min(body.len());
        let mut pos = 0usize;
        let mut left = h.num_logops;
        while pos < end && left > 0 {
            let bad = |why: String| corrupt(format!("log record at block {blk}, offset {pos}: {why}"));
            let oh = body.get(pos..pos + 12).filter(|_| pos + 12 <= end).ok_or_else(|| bad("op header cut".into()))?;
            let tid = be::u32(oh, 0).unwrap_or(0);
            let len = usize::try_from(be::u32(oh, 4).unwrap_or(0)).unwrap_or(usize::MAX);
            let (client, flags) = (oh.get(8).copied().unwrap_or(0), oh.get(9).copied().unwrap_or(0));
            if client != CLIENT_TRANS && client != CLIENT_LOG {
                return Err(bad(format!("unknown client {client:#x}")));
            }
            let data_at = pos + 12;
            let data = data_at
                .checked_add(len)
                .filter(|&e| e <= end)
                .and_then(|e| body.get(data_at..e))
                .ok_or_else(|| bad(format!("op of {len} bytes runs past the record")))?;
            self.op(tid, flags, data, h.lsn, rep).map_err(|e| match e {
                LogError::Corrupt(m) => corrupt(format!("log record at block {blk}: {m}")),
                other => other,
            })?;
            pos = data_at + len;
            left -= 1;
        }
        Ok(())
    }

    fn op(&mut self, tid: u32, flags: u8, data: &[u8], lsn: u64, rep: &mut Replayer) -> Result<(), LogError> {
        if !self.open.contains_key(&tid) {
            // Operations of a transaction that started before the tail are skipped.
            if flags & OP_START != 0 {
                if self.open.len() >= MAX_OPEN_TRANS {
                    return Err(corrupt(format!("more than {MAX_OPEN_TRANS} open transactions")));
                }
                self.open.insert(tid, Trans { lsn, header_len: 0, items: Vec::new(), bytes: 0 });
            }
            return Ok(());
        }
        let mut f = flags & !OP_END;
        if f & OP_WAS_CONT != 0 {
            f &= !OP_CONTINUE;
        }
        match f {
            0 | OP_CONTINUE => self.add(tid, data),
            OP_WAS_CONT => self.add_cont(tid, data),
            OP_COMMIT => {
                if let Some(t) = self.open.remove(&tid) {
                    self.pending -= t.bytes;
                    rep.commit(t.items, t.lsn, self.pass)?;
                }
                Ok(())
            }
            // An unmount record inside the replayed span: nothing to apply.
            locate::OP_UNMOUNT => {
                if let Some(t) = self.open.remove(&tid) {
                    self.pending -= t.bytes;
                }
                Ok(())
            }
            _ => Err(corrupt(format!("transaction {tid:#x}: bad op flags {flags:#x}"))),
        }
    }

    /// A new region of transaction `tid`.
    fn add(&mut self, tid: u32, data: &[u8]) -> Result<(), LogError> {
        if data.is_empty() {
            return Ok(());
        }
        let keep_all = self.pass == Pass::Replay;
        let Some(mut t) = self.open.remove(&tid) else { return Ok(()) };
        let r = self.add_to(&mut t, tid, data, keep_all);
        self.open.insert(tid, t);
        r
    }

    fn add_to(&mut self, t: &mut Trans, tid: u32, data: &[u8], keep_all: bool) -> Result<(), LogError> {
        if t.header_len == 0 && t.items.is_empty() {
            if host::u32(data, 0) != Some(TRANS_MAGIC) || data.len() > TRANS_HEADER_LEN {
                return Err(corrupt(format!("transaction {tid:#x}: bad transaction header")));
            }
            t.header_len = data.len();
            t.items.push(Item::default());
            return Ok(());
        }
        if t.items.last().is_none_or(|i| i.total != 0 && i.count == i.total) {
            t.items.push(Item::default());
        }
        let mut bytes = t.bytes;
        let keep = keep_all || t.items.last().is_some_and(|i| i.total == 0);
        self.charge(&mut bytes, if keep { data.len() } else { 0 })?;
        t.bytes = bytes;
        let Some(item) = t.items.last_mut() else { return Ok(()) };
        if item.total == 0 {
            let total = host::u16(data, 2).map_or(0, usize::from);
            if total == 0 || total > MAX_REGIONS {
                return Err(corrupt(format!("transaction {tid:#x}: item announces {total} regions")));
            }
            item.total = total;
        }
        if data.len() > MAX_REGION_BYTES {
            return Err(corrupt(format!("transaction {tid:#x}: region of {} bytes", data.len())));
        }
        if item.count >= item.total {
            return Err(corrupt(format!("transaction {tid:#x}: item has more than {} regions", item.total)));
        }
        item.regions.push(if keep { data.to_vec() } else { Vec::new() });
        item.count += 1;
        Ok(())
    }

    /// The rest of the last region of transaction `tid`, cut by the end of the previous record.
    fn add_cont(&mut self, tid: u32, data: &[u8]) -> Result<(), LogError> {
        let keep_all = self.pass == Pass::Replay;
        let Some(mut t) = self.open.remove(&tid) else { return Ok(()) };
        let r = (|| {
            let Some(item) = t.items.last() else {
                return Err(corrupt(format!("transaction {tid:#x}: continuation with nothing to continue")));
            };
            if item.count == 0 {
                // The transaction header itself was cut.
                if t.header_len + data.len() > TRANS_HEADER_LEN {
                    return Err(corrupt(format!("transaction {tid:#x}: transaction header too long")));
                }
                t.header_len += data.len();
                return Ok(());
            }
            let keep = keep_all || item.count == 1;
            let mut bytes = t.bytes;
            self.charge(&mut bytes, if keep { data.len() } else { 0 })?;
            t.bytes = bytes;
            if keep && let Some(last) = t.items.last_mut().and_then(|i| i.regions.last_mut()) {
                if last.len() + data.len() > MAX_REGION_BYTES {
                    return Err(corrupt(format!("transaction {tid:#x}: region over {MAX_REGION_BYTES} bytes")));
                }
                last.extend_from_slice(data);
            }
            Ok(())
        })();
        self.open.insert(tid, t);
        r
    }
}

/// Walk the records of `span` in order through `rep`. Returns the span actually used: pass 1
/// moves the tail forward past records near the head's end of the log that fail their CRC (a
/// write cut short can overwrite the oldest records), as the kernel does.
pub(super) fn run_pass(log: &LogDev, mut span: Span, rep: &mut Replayer, pass: Pass) -> Result<Span, LogError> {
    let n = log.bbs();
    let mut moves = 0;
    'restart: loop {
        if pass == Pass::Cancel {
            // The tail must name a record header.
            match locate::seek_forward(log, span.tail, span.head)? {
                Some(t) => span.tail = t,
                None => return Ok(Span { tail: span.head, ..span }),
            }
        }
        rep.begin_pass(pass);
        let total = (span.head + n - span.tail) % n;
        let mut asm = Assembler { pass, open: HashMap::new(), pending: 0 };
        let (mut blk, mut done) = (span.tail, 0u64);
        while done < total {
            let first = log.read(blk, 1)?;
            let h = RecHeader::parse(&first, blk, log.geo)?;
            h.check_format(blk)?;
            let hdr = if h.hblks > 1 { log.read(blk, h.hblks)? } else { first };
            let rec_bbs = h.hblks + h.body_bbs();
            if done + rec_bbs > total {
                return Err(corrupt(format!("log record at block {blk} runs past the head ({})", span.head)));
            }
            let mut body = log.read(log.wrap(blk, h.hblks), h.body_bbs())?;
            if pass == Pass::Cancel {
                let matches = h.crc_matches(&hdr, &body);
                if !h.crc_absent() && !matches {
                    let from_head = (blk + n - span.head) % n;
                    let window = 8 * u64::from(span.hsize.max(32 * 1024)) / super::BBSIZE as u64;
                    if from_head <= window && moves < MAX_TAIL_MOVES {
                        moves += 1;
                        match locate::seek_forward(log, log.wrap(blk, 1), span.head)? {
                            Some(t) => span.tail = t,
                            None => return Ok(Span { tail: span.head, ..span }),
                        }
                        continue 'restart;
                    }
                }
                if log.geo.v5 && !matches {
                    return Err(corrupt(format!("log record at block {blk} fails its CRC")));
                }
            }
            h.unpack(&hdr, &mut body)?;
            asm.record(&h, blk, &body, rep)?;
            blk = log.wrap(blk, rec_bbs);
            done += rec_bbs;
        }
        return Ok(span);
    }
}
