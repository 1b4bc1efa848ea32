//! Applying committed transactions to an in-memory copy of the changed sectors.
//!
//! Items are applied as the kernel's recovery does (`xfs_log_recover.c`, `xfs_buf_item_recover.c`,
//! `xfs_inode_item_recover.c`): buffers (dirty 128-byte chunks, cancelled buffers skipped, inode
//! unlinked-list updates), inodes (the logged core, in host order, converted to the big-endian
//! on-disk inode; data and attribute forks) and inode-chunk creation. Intents whose effect a read
//! does not see (freeing extents, reverse-map and reference-count updates, attributes) are passed
//! over; an unfinished block-mapping or mapping-exchange intent would change a file's mapping, so
//! it is refused. Quota items are passed over: quota files are not part of the namespace.
//!
//! On v5, metadata whose on-disk LSN is not older than the transaction is left alone, and
//! replayed metadata gets the transaction's LSN and a new CRC, as the kernel's write verifiers do
//! when it writes the recovered buffers back (once per LSN, after all transactions with that LSN).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::trans::{Item, Pass};
use super::{BBSIZE, LogError, LogGeo, MAX_BUF_BBS, MAX_CANCELLED, MAX_OVERLAY_SECTORS, Overlay, be, corrupt, host};
use crate::disk::BlockSource;
use crate::fs::xfs::util::crc32c;

/// Log item types (`XFS_LI_*`).
const LI_EFI: u16 = 0x1236;
const LI_EFD: u16 = 0x1237;
const LI_INODE: u16 = 0x123b;
const LI_BUF: u16 = 0x123c;
const LI_DQUOT: u16 = 0x123d;
const LI_QUOTAOFF: u16 = 0x123e;
const LI_ICREATE: u16 = 0x123f;
const LI_RUI: u16 = 0x1240;
const LI_RUD: u16 = 0x1241;
const LI_CUI: u16 = 0x1242;
const LI_CUD: u16 = 0x1243;
const LI_BUI: u16 = 0x1244;
const LI_BUD: u16 = 0x1245;
const LI_ATTRI: u16 = 0x1246;
const LI_ATTRD: u16 = 0x1247;
const LI_XMI: u16 = 0x1248;
const LI_XMD: u16 = 0x1249;
/// Realtime variants of the free-extent, reverse-map and refcount intents and their done items.
const LI_RT_FIRST: u16 = 0x124a;
const LI_RT_LAST: u16 = 0x124f;

/// Buffer format flags (`XFS_BLF_*`).
const BLF_INODE_BUF: u16 = 0x1;
const BLF_CANCEL: u16 = 0x2;
const BLF_DQUOT_BUFS: u16 = 0x4 | 0x8 | 0x10;
/// The buffer type lives in the top five bits of the flags (`XFS_BLFT_SHIFT`).
const BLFT_SHIFT: u16 = 11;
/// Logged buffer chunk (`XFS_BLF_CHUNK`): one bit of the dirty map.
const BLF_CHUNK: usize = 128;

/// Inode log format fields (`XFS_ILOG_*`).
const ILOG_CORE: u32 = 0x001;
const ILOG_DDATA: u32 = 0x002;
const ILOG_DEXT: u32 = 0x004;
const ILOG_DBROOT: u32 = 0x008;
const ILOG_DEV: u32 = 0x010;
const ILOG_ADATA: u32 = 0x040;
const ILOG_AEXT: u32 = 0x080;
const ILOG_ABROOT: u32 = 0x100;
const ILOG_DOWNER: u32 = 0x200;
const ILOG_AOWNER: u32 = 0x400;
const ILOG_DFORK: u32 = ILOG_DDATA | ILOG_DEXT | ILOG_DBROOT;
const ILOG_AFORK: u32 = ILOG_ADATA | ILOG_AEXT | ILOG_ABROOT;

/// `XFS_DINODE_MAGIC` ("IN").
const DINODE_MAGIC: u16 = 0x494e;
/// On-disk inode core sizes: v3 (with CRC, LSN, UUID) and v1/v2.
const DINODE_V3_SIZE: usize = 176;
const DINODE_V2_SIZE: usize = 100;
/// The logged core of a v2 inode stops before `di_next_unlinked`.
const LOG_DINODE_V2_SIZE: usize = 96;
/// Offsets in the inode core.
const DI_FLUSHITER: usize = 30;
const DI_FORKOFF: usize = 82;
const DI_NEXT_UNLINKED: usize = 96;
const DI_CRC: usize = 100;
const DI_LSN: usize = 112;
const DI_FLAGS2: usize = 120;
/// `XFS_DIFLAG2_BIGTIME` and `XFS_DIFLAG2_NREXT64` in `di_flags2`.
const DIFLAG2_BIGTIME: u64 = 0x8;
const DIFLAG2_NREXT64: u64 = 0x10;
/// `DI_MAX_FLUSH`: v2 flush counters wrap here.
const DI_MAX_FLUSH: u16 = 0xffff;
/// Inodes per allocation chunk (`XFS_INODES_PER_CHUNK`): an inode-create item initialises at
/// most this many.
const INODES_PER_CHUNK: u32 = 64;
/// `NULLAGINO`: end of an unlinked list.
const NULLAGINO: u32 = 0xffff_ffff;

/// Metadata magic numbers.
const MAGIC_SB: u32 = 0x5846_5342; // XFSB
const MAGIC_AGF: u32 = 0x5841_4746; // XAGF
const MAGIC_AGFL: u32 = 0x5841_464c; // XAFL
const MAGIC_AGI: u32 = 0x5841_4749; // XAGI
const MAGIC_SYMLINK: u32 = 0x5853_4c4d; // XSLM
const MAGIC_ATTR_RMT: u32 = 0x5841_524d; // XARM
const MAGIC_BMAP_V3: u32 = 0x424d_4133; // BMA3
const DIR3_HDR_MAGICS: [u32; 3] = [0x5844_4233, 0x5844_4433, 0x5844_4633]; // XDB3 XDD3 XDF3
/// Short-form B+tree blocks with CRC: free space by block and size, inodes, free inodes, reverse
/// map, reference counts.
const SHORT_BTREE_MAGICS: [u32; 6] = [0x4142_3342, 0x4142_3343, 0x4941_4233, 0x4649_4233, 0x524d_4233, 0x5233_4643];
/// DA-blkinfo blocks with CRC: leaf1, leafn, DA node, attribute leaf (16-bit magic at offset 8).
const DA3_MAGICS: [u16; 4] = [0x3df1, 0x3dff, 0x3ebe, 0x3bee];

/// How a replayed v5 buffer gets its LSN and CRC when written back.
#[derive(Debug, Clone, Copy)]
enum Stamp {
    /// One header: LSN and CRC fields at these offsets, CRC over the whole buffer.
    Whole { lsn_off: usize, crc_off: usize },
    /// Remote attribute value blocks: a CRC per filesystem block, LSN left alone.
    AttrRmt,
}

/// A parsed buffer log format (`xfs_buf_log_format`, host order).
#[derive(Debug)]
struct BufFmt {
    flags: u16,
    /// Length in basic blocks.
    len: u64,
    /// Start, in basic blocks from the start of the filesystem.
    blkno: u64,
    map: Vec<u32>,
}

impl BufFmt {
    fn parse(r: &[u8]) -> Result<BufFmt, LogError> {
        let bad = || corrupt("buffer item format truncated");
        let flags = host::u16(r, 4).ok_or_else(bad)?;
        let len = u64::from(host::u16(r, 6).ok_or_else(bad)?);
        let blkno = host::u64(r, 8).ok_or_else(bad)?;
        let map_size = usize::try_from(host::u32(r, 16).ok_or_else(bad)?).unwrap_or(0);
        let words = map_size.min(r.len().saturating_sub(20) / 4);
        let map = (0..words).filter_map(|i| host::u32(r, 20 + 4 * i)).collect();
        Ok(BufFmt { flags, len, blkno, map })
    }

    fn bit(&self, i: usize) -> bool {
        self.map.get(i / 32).is_some_and(|w| w & (1 << (i % 32)) != 0)
    }

    /// The logged regions: (byte offset in the buffer, bytes), pairing each run of dirty chunks
    /// with the next region of the item (trimmed to the region, as a run may be split in two).
    fn runs<'i>(&self, item: &'i Item) -> Result<Vec<(usize, &'i [u8])>, LogError> {
        let nbits = self.map.len() * 32;
        let mut out = Vec::new();
        let (mut bit, mut region) = (0usize, 1usize);
        while bit < nbits {
            if !self.bit(bit) {
                bit += 1;
                continue;
            }
            let mut run = 1;
            while bit + run < nbits && self.bit(bit + run) {
                run += 1;
            }
            let data = item.regions.get(region).ok_or_else(|| {
                corrupt(format!("buffer item at block {}: fewer regions than dirty chunk runs", self.blkno))
            })?;
            let run = run.min(data.len() / BLF_CHUNK);
            if run == 0 {
                return Err(corrupt(format!("buffer item at block {}: empty region", self.blkno)));
            }
            out.push((bit * BLF_CHUNK, data.get(..run * BLF_CHUNK).unwrap_or_default()));
            region += 1;
            bit += run;
        }
        Ok(out)
    }
}

/// The replay state: the changed sectors and what recovery remembers between items.
#[derive(Debug)]
pub(super) struct Replayer<'a> {
    dev: &'a dyn BlockSource,
    geo: &'a LogGeo,
    ov: Overlay,
    /// Cancelled buffers (start, length in basic blocks) with the number of cancels not yet met.
    cancels: HashMap<(u64, u64), u32>,
    /// v5 buffers replayed under the current LSN, to stamp when the LSN changes.
    stamps: BTreeMap<(u64, u64), Stamp>,
    stamp_lsn: u64,
    /// Block-mapping and mapping-exchange intents (type, id) not yet marked done.
    intents: HashSet<(u16, u64)>,
}

impl<'a> Replayer<'a> {
    pub(super) fn new(dev: &'a dyn BlockSource, geo: &'a LogGeo) -> Self {
        Replayer {
            dev,
            geo,
            ov: Overlay::default(),
            cancels: HashMap::new(),
            stamps: BTreeMap::new(),
            stamp_lsn: 0,
            intents: HashSet::new(),
        }
    }

    /// Start (or restart) a pass.
    pub(super) fn begin_pass(&mut self, pass: Pass) {
        if pass == Pass::Cancel {
            self.cancels.clear();
        }
    }

    /// The overlay once every transaction is applied.
    pub(super) fn finish(mut self) -> Result<Overlay, LogError> {
        self.flush_stamps()?;
        if let Some((kind, id)) = self.intents.iter().next() {
            let what = if *kind == LI_BUI { "block-mapping intent (BUI)" } else { "mapping-exchange intent (XMI)" };
            return Err(LogError::Unsupported(format!(
                "{} unfinished intent(s), e.g. {what} {id:#x}: replaying it changes a file's block mapping",
                self.intents.len()
            )));
        }
        Ok(self.ov)
    }

    // --- the working copy ---------------------------------------------------------------------

    fn check_range(&self, off: u64, len: usize, what: &str) -> Result<(), LogError> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.geo.dev_len => Ok(()),
            _ => Err(corrupt(format!("{what}: {len} bytes at byte {off} lie past the end of the filesystem"))),
        }
    }

    /// Bytes as replay left them.
    fn read(&self, off: u64, len: usize, what: &str) -> Result<Vec<u8>, LogError> {
        self.check_range(off, len, what)?;
        let mut buf = vec![0u8; len];
        self.dev.read_exact_at(off, &mut buf).map_err(|e| LogError::Io(format!("{what}: {e}")))?;
        self.ov.patch(off, &mut buf);
        Ok(buf)
    }

    /// Store new bytes: the sectors they touch go to the overlay.
    fn write(&mut self, off: u64, data: &[u8], what: &str) -> Result<(), LogError> {
        if data.is_empty() {
            return Ok(());
        }
        let first = off / BBSIZE as u64;
        let last = (off + data.len() as u64).div_ceil(BBSIZE as u64);
        let span = usize::try_from((last - first) * BBSIZE as u64).map_err(|_| corrupt("write too large"))?;
        let mut secs = self.read(first * BBSIZE as u64, span, what)?;
        let rel = usize::try_from(off - first * BBSIZE as u64).unwrap_or(0);
        if let Some(dst) = secs.get_mut(rel..rel + data.len()) {
            dst.copy_from_slice(data);
        }
        for (i, chunk) in secs.chunks_exact(BBSIZE).enumerate() {
            let mut s = [0u8; BBSIZE];
            s.copy_from_slice(chunk);
            self.ov.insert(first + i as u64, s);
        }
        if self.ov.len() > MAX_OVERLAY_SECTORS {
            return Err(LogError::Unsupported(format!(
                "replay changes more than {} MiB of metadata",
                MAX_OVERLAY_SECTORS * BBSIZE / (1024 * 1024)
            )));
        }
        Ok(())
    }

    // --- cancelled buffers --------------------------------------------------------------------

    fn is_cancelled(&self, blkno: u64, len: u64) -> bool {
        self.cancels.contains_key(&(blkno, len))
    }

    /// A cancel met in pass 2: the buffer's earlier changes stay cancelled until the last one.
    fn put_cancelled(&mut self, blkno: u64, len: u64) {
        if let Some(n) = self.cancels.get_mut(&(blkno, len)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.cancels.remove(&(blkno, len));
            }
        }
    }

    // --- transactions -------------------------------------------------------------------------

    /// Apply (pass 2) or scan for cancels (pass 1) one committed transaction.
    pub(super) fn commit(&mut self, items: Vec<Item>, lsn: u64, pass: Pass) -> Result<(), LogError> {
        let items: Vec<Item> = items.into_iter().filter(|i| !i.regions.is_empty()).collect();
        if pass == Pass::Cancel {
            for item in &items {
                if item.kind() == Some(LI_BUF) {
                    let f = BufFmt::parse(item.regions.first().map_or(&[][..], Vec::as_slice))?;
                    if f.flags & BLF_CANCEL != 0 {
                        if self.cancels.len() >= MAX_CANCELLED {
                            return Err(LogError::Unsupported(format!("more than {MAX_CANCELLED} cancelled buffers")));
                        }
                        *self.cancels.entry((f.blkno, f.len)).or_insert(0) += 1;
                    }
                }
            }
            return Ok(());
        }
        // Buffers replayed under the previous LSN are written back (stamped) first.
        if lsn != self.stamp_lsn {
            self.flush_stamps()?;
            self.stamp_lsn = lsn;
        }
        for item in reorder(items)? {
            self.apply(&item, lsn)?;
        }
        Ok(())
    }

    fn apply(&mut self, item: &Item, lsn: u64) -> Result<(), LogError> {
        let r0 = item.regions.first().map_or(&[][..], Vec::as_slice);
        match item.kind().unwrap_or(0) {
            LI_BUF => self.apply_buf(item, lsn),
            LI_INODE => self.apply_inode(item, lsn),
            LI_ICREATE => self.apply_icreate(r0),
            LI_BUI | LI_XMI => {
                let id = host::u64(r0, 8).ok_or_else(|| corrupt("intent item truncated"))?;
                if self.intents.len() >= MAX_CANCELLED {
                    return Err(LogError::Unsupported("too many open intents".into()));
                }
                self.intents.insert((item.kind().unwrap_or(0), id));
                Ok(())
            }
            kind @ (LI_BUD | LI_XMD) => {
                let id = host::u64(r0, 8).ok_or_else(|| corrupt("intent-done item truncated"))?;
                self.intents.remove(&(if kind == LI_BUD { LI_BUI } else { LI_XMI }, id));
                Ok(())
            }
            // Free-space, reverse-map, refcount and attribute intents, quotas: nothing a read of
            // the namespace or of file contents sees.
            _ => Ok(()),
        }
    }

    // --- buffers ------------------------------------------------------------------------------

    fn apply_buf(&mut self, item: &Item, lsn: u64) -> Result<(), LogError> {
        let f = BufFmt::parse(item.regions.first().map_or(&[][..], Vec::as_slice))?;
        if f.flags & BLF_CANCEL != 0 {
            self.put_cancelled(f.blkno, f.len);
            return Ok(());
        }
        if self.is_cancelled(f.blkno, f.len) || f.flags & BLF_DQUOT_BUFS != 0 {
            return Ok(());
        }
        let what = format!("buffer at block {}", f.blkno);
        if f.len == 0 || f.len > MAX_BUF_BBS {
            return Err(corrupt(format!("{what}: length {} basic blocks", f.len)));
        }
        let off = f.blkno.checked_mul(BBSIZE as u64).ok_or_else(|| corrupt(format!("{what}: address")))?;
        let mut buf = self.read(off, (f.len as usize) * BBSIZE, &what)?;
        if self.geo.v5
            && let Some(on_disk) = self.buf_lsn(&buf)
            && on_disk != 0
            && on_disk != u64::MAX
            && on_disk >= lsn
        {
            return Ok(());
        }
        let runs = f.runs(item)?;
        if f.flags & BLF_INODE_BUF != 0 {
            return self.inode_buffer(off, &mut buf, &runs, &what);
        }
        for (at, data) in &runs {
            let dst =
                buf.get_mut(*at..at + data.len()).ok_or_else(|| corrupt(format!("{what}: chunk past its end")))?;
            dst.copy_from_slice(data);
        }
        for (at, data) in &runs {
            self.write(off + *at as u64, buf.get(*at..at + data.len()).unwrap_or_default(), &what)?;
        }
        if self.geo.v5
            && let Some(stamp) = stamp_kind(f.flags >> BLFT_SHIFT, &buf)
        {
            self.stamps.insert((f.blkno, f.len), stamp);
        }
        Ok(())
    }

    /// An inode buffer logged for unlinked-list changes: only the `di_next_unlinked` fields in the
    /// logged chunks are copied, and the changed inodes get a new CRC.
    fn inode_buffer(&mut self, off: u64, buf: &mut [u8], runs: &[(usize, &[u8])], what: &str) -> Result<(), LogError> {
        let isize = self.geo.inodesize as usize;
        for i in 0..buf.len() / isize {
            let field = i * isize + DI_NEXT_UNLINKED;
            let Some((at, data)) = runs.iter().find(|(at, d)| *at <= field && field + 4 <= at + d.len()) else {
                continue;
            };
            let logged = data.get(field - at..field - at + 4).unwrap_or_default();
            if logged == [0, 0, 0, 0] {
                return Err(corrupt(format!("{what}: logged unlinked pointer of inode {i} is zero")));
            }
            if let Some(dst) = buf.get_mut(field..field + 4) {
                dst.copy_from_slice(logged);
            }
            let inode = buf.get_mut(i * isize..(i + 1) * isize).unwrap_or_default();
            dinode_crc(inode);
            self.write(off + (i * isize) as u64, inode, what)?;
        }
        Ok(())
    }

    /// The LSN a v5 buffer was last written with, when its magic is known and its UUID is ours
    /// (`xlog_recover_get_buf_lsn`); `None` replays it unconditionally.
    fn buf_lsn(&self, b: &[u8]) -> Option<u64> {
        let m32 = be::u32(b, 0)?;
        let (lsn_off, uuid_off) = if SHORT_BTREE_MAGICS.contains(&m32) {
            (24, 32)
        } else if DIR3_HDR_MAGICS.contains(&m32) {
            (16, 24)
        } else {
            match m32 {
                MAGIC_BMAP_V3 => (32, 40),
                MAGIC_AGF => (208, 64),
                MAGIC_AGFL => (24, 8),
                MAGIC_AGI => (320, 296),
                MAGIC_SYMLINK => (48, 16),
                MAGIC_SB => (240, if self.geo.meta_uuid == self.geo.uuid { 32 } else { 248 }),
                _ if DA3_MAGICS.contains(&be::u16(b, 8)?) => (24, 32),
                _ => return None,
            }
        };
        if be::bytes(b, uuid_off, 16)? != self.geo.meta_uuid {
            return None;
        }
        be::u64(b, lsn_off)
    }

    /// Stamp the buffers replayed under the current LSN, as their write verifiers would.
    fn flush_stamps(&mut self) -> Result<(), LogError> {
        let lsn = self.stamp_lsn;
        for ((blkno, len), stamp) in std::mem::take(&mut self.stamps) {
            let off = blkno * BBSIZE as u64;
            let what = format!("buffer at block {blkno}");
            let mut buf = self.read(off, (len as usize) * BBSIZE, &what)?;
            match stamp {
                Stamp::Whole { lsn_off, crc_off } => {
                    if let Some(dst) = buf.get_mut(lsn_off..lsn_off + 8) {
                        dst.copy_from_slice(&lsn.to_be_bytes());
                    }
                    set_crc(&mut buf, crc_off);
                    let (lo, hi) = (lsn_off.min(crc_off), (lsn_off + 8).max(crc_off + 4));
                    self.write(off + lo as u64, buf.get(lo..hi).unwrap_or_default(), &what)?;
                }
                Stamp::AttrRmt => {
                    let bs = 1usize << self.geo.blocklog;
                    for (i, blk) in buf.chunks_mut(bs).enumerate() {
                        if be::u32(blk, 0) == Some(MAGIC_ATTR_RMT) {
                            set_crc(blk, 12);
                            self.write(off + (i * bs) as u64 + 12, blk.get(12..16).unwrap_or_default(), &what)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    // --- inodes -------------------------------------------------------------------------------

    fn apply_inode(&mut self, item: &Item, lsn: u64) -> Result<(), LogError> {
        let r0 = item.regions.first().map_or(&[][..], Vec::as_slice);
        // The 64-bit layout has a pad word after the sizes; the 32-bit one does not.
        let pad = match r0.len() {
            56 => 4,
            52 => 0,
            n => return Err(corrupt(format!("inode item format of {n} bytes"))),
        };
        let nregions = host::u16(r0, 2).unwrap_or(0);
        let fields = host::u32(r0, 4).unwrap_or(0);
        let ino = host::u64(r0, 12 + pad).unwrap_or(0);
        let rdev = host::u32(r0, 20 + pad).unwrap_or(0);
        let blkno = host::u64(r0, 36 + pad).unwrap_or(0);
        let len = u64::from(host::u32(r0, 44 + pad).unwrap_or(0));
        let boffset = u64::from(host::u32(r0, 48 + pad).unwrap_or(0));
        let what = format!("inode {ino}");
        if self.is_cancelled(blkno, len) {
            return Ok(());
        }
        let isize = self.geo.inodesize as usize;
        if fields & ILOG_CORE == 0 || boffset + isize as u64 > len * BBSIZE as u64 {
            return Err(corrupt(format!("{what}: logged at offset {boffset} of a {len}-block buffer")));
        }
        let off = blkno
            .checked_mul(BBSIZE as u64)
            .and_then(|o| o.checked_add(boffset))
            .ok_or_else(|| corrupt(format!("{what}: address")))?;
        let mut dip = self.read(off, isize, &what)?;
        if be::u16(&dip, 0) != Some(DINODE_MAGIC) {
            return Err(corrupt(format!("{what}: the block it is logged at holds no inode")));
        }
        let ld = item.regions.get(1).ok_or_else(|| corrupt(format!("{what}: no logged core")))?;
        if host::u16(ld, 0) != Some(DINODE_MAGIC) {
            return Err(corrupt(format!("{what}: logged core has no inode magic")));
        }
        if fields & (ILOG_DOWNER | ILOG_AOWNER) != 0 && host::u16(ld, 2).unwrap_or(0) != 0 {
            return Err(LogError::Unsupported(format!("{what}: block-map owner change (extent swap)")));
        }
        if dip.get(4).is_some_and(|&v| v >= 3) {
            let on_disk = be::u64(&dip, DI_LSN).unwrap_or(0);
            if on_disk != 0 && on_disk != u64::MAX && on_disk > lsn {
                return Ok(());
            }
        }
        if !self.geo.v5 {
            let (logged, disk) = (host::u16(ld, DI_FLUSHITER).unwrap_or(0), be::u16(&dip, DI_FLUSHITER).unwrap_or(0));
            if logged < disk && !(disk == DI_MAX_FLUSH && logged < DI_MAX_FLUSH >> 1) {
                return Ok(());
            }
        }
        let need = if self.geo.v5 { DINODE_V3_SIZE } else { LOG_DINODE_V2_SIZE };
        if ld.len() < need || ld.len() > DINODE_V3_SIZE {
            return Err(corrupt(format!("{what}: logged core of {} bytes", ld.len())));
        }
        log_dinode_to_disk(ld, &mut dip, lsn);
        let core = if dip.get(4).is_some_and(|&v| v >= 3) { DINODE_V3_SIZE } else { DINODE_V2_SIZE };
        let litino = isize.saturating_sub(if self.geo.v5 { DINODE_V3_SIZE } else { DINODE_V2_SIZE });
        let forkoff = usize::from(dip.get(DI_FORKOFF).copied().unwrap_or(0)) * 8;
        if forkoff > litino {
            return Err(corrupt(format!("{what}: attribute fork offset {forkoff} past the inode")));
        }
        let (dsize, asize) = if forkoff != 0 { (forkoff, litino - forkoff) } else { (litino, 0) };
        if fields & ILOG_DEV != 0
            && let Some(dst) = dip.get_mut(core..core + 4)
        {
            dst.copy_from_slice(&rdev.to_be_bytes());
        }
        if nregions > 2 {
            let region = |i: usize| item.regions.get(i).ok_or_else(|| corrupt(format!("{what}: fork region missing")));
            let dfork = dip.get_mut(core..core + dsize).ok_or_else(|| corrupt(format!("{what}: data fork")))?;
            match fields & ILOG_DFORK {
                0 => {}
                ILOG_DDATA | ILOG_DEXT => copy_fork(region(2)?, dfork, &what)?,
                ILOG_DBROOT => bmbt_to_bmdr(region(2)?, dfork, self.geo.v5, &what)?,
                _ => return Err(corrupt(format!("{what}: data fork flags {fields:#x}"))),
            }
            if fields & ILOG_AFORK != 0 {
                let src = region(if fields & ILOG_DFORK != 0 { 3 } else { 2 })?;
                let afork = dip
                    .get_mut(core + forkoff..core + forkoff + asize)
                    .filter(|_| forkoff != 0)
                    .ok_or_else(|| corrupt(format!("{what}: attribute fork logged without one")))?;
                match fields & ILOG_AFORK {
                    ILOG_ADATA | ILOG_AEXT => copy_fork(src, afork, &what)?,
                    ILOG_ABROOT => bmbt_to_bmdr(src, afork, self.geo.v5, &what)?,
                    _ => return Err(corrupt(format!("{what}: attribute fork flags {fields:#x}"))),
                }
            }
        }
        dinode_crc(&mut dip);
        self.write(off, &dip, &what)
    }

    /// Inode-chunk creation (`xfs_icreate_log`, big-endian fields): every inode of the chunk's
    /// clusters is initialised free, as `xfs_ialloc_inode_init` does.
    fn apply_icreate(&mut self, r: &[u8]) -> Result<(), LogError> {
        let f = |off| be::u32(r, off).ok_or_else(|| corrupt("inode-create item truncated"));
        let (agno, agbno, count, isize, length, generation) = (f(4)?, f(8)?, f(12)?, f(16)?, f(20)?, f(24)?);
        let geo = self.geo;
        let what = format!("inode chunk at AG {agno} block {agbno}");
        if agno >= geo.agcount
            || isize != geo.inodesize
            || count == 0
            || count > INODES_PER_CHUNK
            || length == 0
            || u64::from(agbno) + u64::from(length) > u64::from(geo.agblocks)
            || u64::from(count) * u64::from(isize) != u64::from(length) << geo.blocklog
        {
            return Err(corrupt(format!("{what}: {count} inodes in {length} blocks of {isize}-byte inodes")));
        }
        let bpc = geo.blocks_per_cluster;
        let nbufs = length / bpc;
        let cluster_bbs = u64::from(bpc) << (geo.blocklog - 9);
        let cluster_byte = |j: u32| geo.agb_to_byte(u64::from(agno), u64::from(agbno) + u64::from(j * bpc));
        // Chunks freed later in the log cancel their cluster buffers: then nothing to initialise.
        for j in 0..nbufs {
            let b = cluster_byte(j).ok_or_else(|| corrupt(format!("{what}: address")))?;
            if self.is_cancelled(b / BBSIZE as u64, cluster_bbs) {
                return Ok(());
            }
        }
        let per_cluster = (bpc as usize) << geo.inopblog;
        let isz = geo.inodesize as usize;
        let version = if geo.v5 { 3 } else { 2 };
        let mut ino = (u64::from(agno) << (geo.agblklog + geo.inopblog)) | (u64::from(agbno) << geo.inopblog);
        for j in 0..nbufs {
            let b = cluster_byte(j).ok_or_else(|| corrupt(format!("{what}: address")))?;
            let mut buf = vec![0u8; per_cluster * isz];
            for inode in buf.chunks_exact_mut(isz) {
                put(inode, 0, &DINODE_MAGIC.to_be_bytes());
                put(inode, 4, &[version]);
                put(inode, 92, &generation.to_be_bytes());
                put(inode, DI_NEXT_UNLINKED, &NULLAGINO.to_be_bytes());
                if version == 3 {
                    put(inode, 152, &ino.to_be_bytes());
                    put(inode, 160, &geo.meta_uuid);
                    dinode_crc(inode);
                }
                ino += 1;
            }
            self.write(b, &buf, &what)?;
        }
        Ok(())
    }
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(off..off + v.len()) {
        dst.copy_from_slice(v);
    }
}

/// CRC32C of `buf` with its 4-byte CRC field at `crc_off` taken as zero, stored little-endian.
fn set_crc(buf: &mut [u8], crc_off: usize) {
    if buf.len() < crc_off + 4 {
        return;
    }
    put(buf, crc_off, &[0; 4]);
    let crc = crc32c(buf);
    put(buf, crc_off, &crc.to_le_bytes());
}

/// New CRC of a v3 inode (v1/v2 inodes have none).
fn dinode_crc(inode: &mut [u8]) {
    if inode.get(4).is_some_and(|&v| v >= 3) {
        set_crc(inode, DI_CRC);
    }
}

/// Which verifier stamps a replayed buffer of log buffer type `blft` with these contents.
fn stamp_kind(blft: u16, b: &[u8]) -> Option<Stamp> {
    let m32 = be::u32(b, 0)?;
    let whole = |lsn_off, crc_off| Some(Stamp::Whole { lsn_off, crc_off });
    match blft {
        // XFS_BLFT_BTREE_BUF
        4 if SHORT_BTREE_MAGICS.contains(&m32) => whole(24, 52),
        4 if m32 == MAGIC_BMAP_V3 => whole(32, 64),
        5 if m32 == MAGIC_AGF => whole(208, 216),
        6 if m32 == MAGIC_AGFL => whole(24, 32),
        7 if m32 == MAGIC_AGI => whole(320, 312),
        9 if m32 == MAGIC_SYMLINK => whole(48, 12),
        // Directory block, data and free blocks.
        10..=12 if DIR3_HDR_MAGICS.contains(&m32) => whole(16, 4),
        // Leaf1, leafn, DA node and attribute leaf blocks.
        13..=16 if DA3_MAGICS.contains(&be::u16(b, 8)?) => whole(24, 12),
        17 => Some(Stamp::AttrRmt),
        18 if m32 == MAGIC_SB => whole(240, 224),
        _ => None,
    }
}

/// Put the kernel's own item order on a transaction (`xlog_recover_reorder_trans`): inode-chunk
/// creations, then buffers, then other items, then inode unlinked-list buffers, then cancels.
fn reorder(items: Vec<Item>) -> Result<Vec<Item>, LogError> {
    let (mut bufs, mut others, mut ibufs, mut cancels) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut creates = Vec::new();
    for item in items {
        match item.kind().unwrap_or(0) {
            LI_ICREATE => creates.insert(0, item),
            LI_BUF => {
                let flags = item.regions.first().and_then(|r| host::u16(r, 4)).unwrap_or(0);
                if flags & BLF_CANCEL != 0 {
                    cancels.push(item);
                } else if flags & BLF_INODE_BUF != 0 {
                    ibufs.push(item);
                } else {
                    bufs.push(item);
                }
            }
            LI_INODE | LI_DQUOT | LI_QUOTAOFF | LI_EFI | LI_EFD | LI_RUI | LI_RUD | LI_CUI | LI_CUD | LI_BUI
            | LI_BUD | LI_ATTRI | LI_ATTRD | LI_XMI | LI_XMD => others.push(item),
            k if (LI_RT_FIRST..=LI_RT_LAST).contains(&k) => others.push(item),
            k => return Err(LogError::Unsupported(format!("log item of unknown type {k:#x}"))),
        }
    }
    creates.extend(bufs);
    creates.extend(others);
    creates.extend(ibufs);
    creates.extend(cancels);
    Ok(creates)
}

/// Copy a logged local or extent-list fork into the inode's fork area.
fn copy_fork(src: &[u8], dst: &mut [u8], what: &str) -> Result<(), LogError> {
    let room = dst.len();
    let d = dst
        .get_mut(..src.len())
        .ok_or_else(|| corrupt(format!("{what}: logged fork of {} bytes over the {room}-byte fork", src.len())))?;
    d.copy_from_slice(src);
    Ok(())
}

/// Convert a logged block-map B+tree root (an in-memory long-form block: header, keys, then
/// pointers after room for `maxrecs` keys) to the on-disk root (`xfs_bmdr_block`: level, count,
/// keys, pointers after room for the fork's `maxrecs`).
fn bmbt_to_bmdr(src: &[u8], dst: &mut [u8], v5: bool, what: &str) -> Result<(), LogError> {
    let hdr = if v5 { 72 } else { 24 };
    let bad = || corrupt(format!("{what}: logged block-map root does not fit"));
    let numrecs = usize::from(be::u16(src, 6).ok_or_else(bad)?);
    let src_max = src.len().saturating_sub(hdr) / 16;
    let dst_max = dst.len().saturating_sub(4) / 16;
    if numrecs > src_max || numrecs > dst_max {
        return Err(bad());
    }
    let level_count = src.get(4..8).ok_or_else(bad)?.to_vec();
    put(dst, 0, &level_count);
    let keys = src.get(hdr..hdr + numrecs * 8).ok_or_else(bad)?.to_vec();
    put(dst, 4, &keys);
    let p = hdr + src_max * 8;
    let ptrs = src.get(p..p + numrecs * 8).ok_or_else(bad)?.to_vec();
    put(dst, 4 + dst_max * 8, &ptrs);
    Ok(())
}

/// Convert a logged inode core (`xfs_log_dinode`, host order) into the on-disk inode (big-endian),
/// as `xfs_log_dinode_to_disk` does: `di_next_unlinked` keeps its on-disk value, v3 inodes get the
/// transaction's LSN, v2 flush counters restart at zero.
fn log_dinode_to_disk(ld: &[u8], dip: &mut [u8], lsn: u64) {
    let h16 = |o| host::u16(ld, o).unwrap_or(0);
    let h32 = |o| host::u32(ld, o).unwrap_or(0);
    let h64 = |o| host::u64(ld, o).unwrap_or(0);
    let version = ld.get(4).copied().unwrap_or(0);
    let flags2 = if version >= 3 { h64(DI_FLAGS2) } else { 0 };
    let bigtime = flags2 & DIFLAG2_BIGTIME != 0;
    let ts = |dip: &mut [u8], o: usize| {
        if bigtime {
            put(dip, o, &h64(o).to_be_bytes());
        } else {
            put(dip, o, &h32(o).to_be_bytes());
            put(dip, o + 4, &h32(o + 4).to_be_bytes());
        }
    };
    put(dip, 0, &h16(0).to_be_bytes());
    put(dip, 2, &h16(2).to_be_bytes());
    put(dip, 4, ld.get(4..6).unwrap_or(&[0, 0]));
    put(dip, 6, &[0, 0]);
    for o in [8, 12, 16] {
        put(dip, o, &h32(o).to_be_bytes());
    }
    put(dip, 20, &h16(20).to_be_bytes());
    put(dip, 22, &h16(22).to_be_bytes());
    for o in [32, 40, 48] {
        ts(dip, o);
    }
    put(dip, 56, &h64(56).to_be_bytes());
    put(dip, 64, &h64(64).to_be_bytes());
    put(dip, 72, &h32(72).to_be_bytes());
    put(dip, 82, ld.get(82..84).unwrap_or(&[0, 0]));
    put(dip, 84, &h32(84).to_be_bytes());
    put(dip, 88, &h16(88).to_be_bytes());
    put(dip, 90, &h16(90).to_be_bytes());
    put(dip, 92, &h32(92).to_be_bytes());
    if version == 3 {
        put(dip, 104, &h64(104).to_be_bytes());
        ts(dip, 144);
        put(dip, DI_FLAGS2, &flags2.to_be_bytes());
        put(dip, 128, &h32(128).to_be_bytes());
        put(dip, 152, &h64(152).to_be_bytes());
        put(dip, DI_LSN, &lsn.to_be_bytes());
        put(dip, 132, &[0; 12]);
        put(dip, 160, ld.get(160..176).unwrap_or(&[0; 16]));
        put(dip, 24, &[0; 8]);
    } else {
        // Recovery restarts the flush counter (`ldip->di_flushiter = 0`).
        put(dip, 24, &[0; 6]);
        put(dip, DI_FLUSHITER, &[0, 0]);
    }
    if version >= 3 && flags2 & DIFLAG2_NREXT64 != 0 {
        put(dip, 24, &h64(24).to_be_bytes());
        put(dip, 76, &h32(76).to_be_bytes());
        put(dip, 80, &h16(80).to_be_bytes());
    } else {
        put(dip, 76, &h32(76).to_be_bytes());
        put(dip, 80, &h16(80).to_be_bytes());
    }
}
