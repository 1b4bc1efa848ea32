//! In-memory replay of a dirty XFS log, never writing to the device.
//!
//! An EBS snapshot is crash-consistent, so its XFS log routinely holds committed transactions that
//! were never written to their home blocks. [`recover`] does what the kernel does at mount: find
//! the log's head and tail ([`locate`]), walk the records between them, assemble transactions
//! from their operations ([`trans`]) and apply the committed ones in log order ([`replay`]). The
//! result is an [`Overlay`] of 512-byte sectors with their final contents; the reader patches
//! every read through it.
//!
//! Written from the on-disk format ("XFS Algorithms & Data Structures", chapter "Journaling
//! Log"; Linux `fs/xfs/libxfs/xfs_log_format.h`, with `xfs_log_recover.c` as the description of
//! the kernel's behaviour). The log is big-endian in its record and operation headers, but the
//! logged items are in the writing host's byte order: little-endian here, and a log written by a
//! big-endian host is refused.

mod locate;
mod replay;
mod trans;

use std::collections::BTreeMap;

use super::util::be;
use crate::disk::BlockSource;

/// XFS's basic block: the log addresses everything in 512-byte units (`BBSIZE`).
pub const BBSIZE: usize = 512;

/// Most sectors replay may change (64 MiB of sector contents). A checkpoint is pushed when its
/// changes reach 1/8 of the log and the log must be written back before it fills, so the metadata
/// waiting in a log is a fraction of its size; mkfs.xfs makes 64 MiB logs for most root volumes
/// (10 MiB for small ones). Beyond this the replay is refused rather than using unbounded memory.
const MAX_OVERLAY_SECTORS: usize = 131_072;

/// Most bytes held for transactions not yet committed (all open transactions together). A CIL
/// checkpoint, the unit XFS commits since delayed logging, is at most 1/4 of the log (its hard
/// limit is twice the 1/8 push threshold); 64 MiB covers that for 256 MiB logs.
const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// Most transactions open at once. Delayed logging writes one transaction per checkpoint with at
/// most 8 in flight (`XLOG_MAX_ICLOGS`); older kernels logged every transaction separately, but
/// concurrency stayed in the hundreds. Garbage cannot open more than this.
const MAX_OPEN_TRANS: usize = 4096;

/// Most entries of the cancelled-buffer table (buffers freed while their changes were still in the
/// log). Each costs at least a 12-byte op header and a 24-byte format in the log, so a 64 MiB log
/// holds under 2 million; this bound keeps the table under ~30 MiB.
const MAX_CANCELLED: usize = 1 << 20;

/// Largest log XFS makes (`XFS_MAX_LOG_BYTES`, 2 GiB): bounds the time of a replay, which reads
/// the part to replay twice.
const MAX_LOG_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Largest single logged region: a whole 64 KiB buffer or a 64 KiB attribute value
/// (`XATTR_SIZE_MAX`), with room for a format header.
const MAX_REGION_BYTES: usize = 64 * 1024 + 4096;

/// Largest buffer a buffer item may describe: the 64 KiB maximum directory block
/// (`XFS_MAX_BLOCKSIZE`), in basic blocks.
const MAX_BUF_BBS: u64 = 128;

/// Sectors (512-byte basic blocks, numbered from the start of the filesystem) whose contents
/// replay changed, with their new contents.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    sectors: BTreeMap<u64, Box<[u8; BBSIZE]>>,
}

impl Overlay {
    /// True when replay changed nothing (a clean log).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sectors.is_empty()
    }

    /// Number of sectors replay changed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sectors.len()
    }

    /// Replace the parts of `buf` (read from the device at byte `offset`) that replay changed.
    pub fn patch(&self, offset: u64, buf: &mut [u8]) {
        if self.sectors.is_empty() || buf.is_empty() {
            return;
        }
        let first = offset / BBSIZE as u64;
        let end = offset.saturating_add(buf.len() as u64);
        let last = end.div_ceil(BBSIZE as u64);
        for (&bb, data) in self.sectors.range(first..last) {
            let sec_start = bb * BBSIZE as u64;
            let lo = sec_start.max(offset);
            let hi = (sec_start + BBSIZE as u64).min(end);
            if lo >= hi {
                continue;
            }
            let (Ok(dst_lo), Ok(dst_hi), Ok(src_lo), Ok(src_hi)) = (
                usize::try_from(lo - offset),
                usize::try_from(hi - offset),
                usize::try_from(lo - sec_start),
                usize::try_from(hi - sec_start),
            ) else {
                continue;
            };
            if let (Some(dst), Some(src)) = (buf.get_mut(dst_lo..dst_hi), data.get(src_lo..src_hi)) {
                dst.copy_from_slice(src);
            }
        }
    }

    /// Record the new contents of sector `bb`.
    pub fn insert(&mut self, bb: u64, data: [u8; BBSIZE]) {
        self.sectors.insert(bb, Box::new(data));
    }
}

/// Why a log could not be replayed: the filesystem is then not read (reading it without its
/// committed changes would show stale metadata).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("XFS log unreadable: {0}")]
    Io(String),
    #[error("XFS log corrupt: {0}")]
    Corrupt(String),
    #[error("XFS log needs replay that is not supported: {0}")]
    Unsupported(String),
}

fn corrupt(s: impl Into<String>) -> LogError {
    LogError::Corrupt(s.into())
}

/// Little-endian readers for the logged items, which are in the (little-endian) writer's order.
mod host {
    pub fn u16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
    }
    pub fn u32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
    }
    pub fn u64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_le_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
    }
}

/// What replay needs of the superblock (`xfs_dsb`, big-endian).
#[derive(Debug, Clone)]
pub(crate) struct LogGeo {
    /// Version 5: CRCs, LSN-ordered metadata, v3 inodes.
    v5: bool,
    /// Version 2 log records (variable size, extended headers).
    logv2: bool,
    blocklog: u32,
    agblocks: u32,
    agblklog: u32,
    agcount: u32,
    inodesize: u32,
    inopblog: u32,
    /// Byte offset of the log in the filesystem.
    log_start: u64,
    /// Size of the log in basic blocks.
    log_bbs: u64,
    uuid: [u8; 16],
    /// The UUID stamped in v5 metadata (`sb_meta_uuid` with the META_UUID feature, else `sb_uuid`).
    meta_uuid: [u8; 16],
    /// Filesystem blocks per inode cluster buffer (inode-create replay).
    blocks_per_cluster: u32,
    /// Size of the filesystem in bytes (the device).
    dev_len: u64,
}

/// `XFS_SB_VERSION_LOGV2BIT` of `sb_versionnum`.
const SB_VERSION_LOGV2: u16 = 0x0400;
/// `XFS_SB_FEAT_INCOMPAT_META_UUID`.
const INCOMPAT_META_UUID: u32 = 0x4;
/// `XFS_INODE_BIG_CLUSTER_SIZE`: the inode cluster size before v5 scaling.
const INODE_BIG_CLUSTER_SIZE: u32 = 8192;

impl LogGeo {
    fn parse(sb: &[u8], dev_len: u64) -> Result<LogGeo, LogError> {
        let f = |what: &str| corrupt(format!("superblock field {what} unreadable"));
        let blocksize = be::u32(sb, 4).ok_or_else(|| f("blocksize"))?;
        let logstart = be::u64(sb, 48).ok_or_else(|| f("logstart"))?;
        let agblocks = be::u32(sb, 84).ok_or_else(|| f("agblocks"))?;
        let agcount = be::u32(sb, 88).ok_or_else(|| f("agcount"))?;
        let logblocks = be::u32(sb, 96).ok_or_else(|| f("logblocks"))?;
        let versionnum = be::u16(sb, 100).ok_or_else(|| f("versionnum"))?;
        let inodesize = u32::from(be::u16(sb, 104).ok_or_else(|| f("inodesize"))?);
        let blocklog = u32::from(be::u8(sb, 120).ok_or_else(|| f("blocklog"))?);
        let inodelog = u32::from(be::u8(sb, 122).ok_or_else(|| f("inodelog"))?);
        let inopblog = u32::from(be::u8(sb, 123).ok_or_else(|| f("inopblog"))?);
        let agblklog = u32::from(be::u8(sb, 124).ok_or_else(|| f("agblklog"))?);
        let inoalignmt = be::u32(sb, 180).ok_or_else(|| f("inoalignmt"))?;
        let v5 = versionnum & 0xf == 5;
        let incompat = if v5 { be::u32(sb, 216).ok_or_else(|| f("features_incompat"))? } else { 0 };
        let uuid: [u8; 16] = be::bytes(sb, 32, 16).and_then(|b| b.try_into().ok()).ok_or_else(|| f("uuid"))?;
        let meta_uuid: [u8; 16] = if incompat & INCOMPAT_META_UUID != 0 {
            be::bytes(sb, 248, 16).and_then(|b| b.try_into().ok()).ok_or_else(|| f("meta_uuid"))?
        } else {
            uuid
        };
        if !(9..=16).contains(&blocklog) || blocksize != 1 << blocklog {
            return Err(corrupt(format!("block size {blocksize} (log {blocklog}) is invalid")));
        }
        if !(8..=11).contains(&inodelog) || inodesize != 1 << inodelog || inopblog != blocklog - inodelog.min(blocklog)
        {
            return Err(corrupt(format!("inode size {inodesize} is invalid for {blocksize}-byte blocks")));
        }
        if agblocks == 0 || agblklog > 31 || u64::from(agblocks) > 1u64 << agblklog || agcount == 0 {
            return Err(corrupt(format!("AG geometry {agcount} x {agblocks} blocks (agblklog {agblklog}) is invalid")));
        }
        if logstart == 0 {
            return Err(LogError::Unsupported("the log is on an external device".into()));
        }
        let geo0 = LogGeo {
            v5,
            logv2: v5 || versionnum & SB_VERSION_LOGV2 != 0,
            blocklog,
            agblocks,
            agblklog,
            agcount,
            inodesize,
            inopblog,
            log_start: 0,
            log_bbs: u64::from(logblocks) << (blocklog - 9),
            uuid,
            meta_uuid,
            blocks_per_cluster: 1,
            dev_len,
        };
        let log_start = geo0.fsb_to_byte(logstart).ok_or_else(|| corrupt(format!("log start block {logstart}")))?;
        let log_end = log_start.checked_add(geo0.log_bbs << 9);
        if geo0.log_bbs << 9 > MAX_LOG_BYTES {
            return Err(corrupt(format!("log of {logblocks} blocks is larger than XFS's 2 GiB maximum")));
        }
        if logblocks < 2 || log_end.is_none_or(|e| e > dev_len) {
            return Err(corrupt(format!("log of {logblocks} blocks at block {logstart} lies outside the filesystem")));
        }
        // Inode cluster size (`xfs_ialloc_setup_geometry`): 8 KiB, scaled with the inode size on
        // v5 when the inode chunk alignment allows it.
        let mut cluster = INODE_BIG_CLUSTER_SIZE;
        if v5 {
            let scaled = cluster * (inodesize / 256);
            if inoalignmt >= scaled >> blocklog {
                cluster = scaled;
            }
        }
        let blocks_per_cluster = (cluster >> blocklog).max(1);
        Ok(LogGeo { log_start, blocks_per_cluster, ..geo0 })
    }

    /// Byte offset of AG block `agbno` of AG `agno`.
    fn agb_to_byte(&self, agno: u64, agbno: u64) -> Option<u64> {
        agno.checked_mul(u64::from(self.agblocks))?.checked_add(agbno)?.checked_mul(1 << self.blocklog)
    }

    /// Byte offset of filesystem block `fsb` (AG-encoded: `agno << agblklog | agbno`).
    fn fsb_to_byte(&self, fsb: u64) -> Option<u64> {
        let agno = fsb >> self.agblklog;
        let agbno = fsb & ((1u64 << self.agblklog) - 1);
        if agno >= u64::from(self.agcount) || agbno >= u64::from(self.agblocks) {
            return None;
        }
        self.agb_to_byte(agno, agbno)
    }
}

/// Replay the log of the filesystem on `dev` (the whole filesystem; `sb` is its primary
/// superblock sector, already checked by the caller) into an overlay.
///
/// A clean log gives an empty overlay for about 20 reads: a binary search for the head and the
/// 2 MiB before it, where writes in flight at a crash could have left holes.
pub fn recover(dev: &dyn BlockSource, sb: &[u8]) -> Result<Overlay, LogError> {
    let geo = LogGeo::parse(sb, dev.len())?;
    let log = locate::LogDev::new(dev, &geo);
    let Some(span) = locate::find_span(&log)? else {
        return Ok(Overlay::default());
    };
    let mut rep = replay::Replayer::new(dev, &geo);
    // Pass 1 checks every record's CRC and builds the table of cancelled buffers; it may move the
    // tail past records overwritten by a write that was cut short.
    let span = trans::run_pass(&log, span, &mut rep, trans::Pass::Cancel)?;
    trans::run_pass(&log, span, &mut rep, trans::Pass::Replay)?;
    rep.finish()
}
