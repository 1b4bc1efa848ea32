//! Data fork mapping: file block → filesystem block, through the extent list held in the inode
//! or through the block-mapping B+tree (BMBT: root in the inode, `BMAP`/`BMA3` blocks below).
//!
//! Each lookup descends from the root, checking at every block the magic, the level (exactly
//! one less than its parent's, so a child pointing back at an ancestor is refused), the record
//! count, key order and, on v5, the CRC, owner inode, UUID and self-address. The last leaf read is
//! kept, so sequential reads descend once per leaf.

use super::inode::{FMT_BTREE, FMT_EXTENTS, Inode};
use super::util::{OrCorrupt, XErr, be, verify_cksum};
use super::{CacheKind, Inner};
use crate::limits::MAX_XFS_BTREE_LEVELS;

const BMAP_MAGIC: u32 = 0x424d_4150; // "BMAP"
const BMAP_CRC_MAGIC: u32 = 0x424d_4133; // "BMA3"
/// Long-format btree block header: v4 24 bytes, v5 72 bytes (CRC at 64).
const LBLOCK_LEN: usize = 24;
const LBLOCK_CRC_LEN: usize = 72;
const LBLOCK_CRC_OFF: usize = 64;
/// File offsets are 54-bit.
const MAX_FILEOFF: u64 = (1 << 54) - 1;

/// One mapping: `len` file blocks from `off` live at filesystem block `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub off: u64,
    pub start: u64,
    pub len: u64,
    /// Preallocated, never written: reads as zeros.
    pub unwritten: bool,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.off + self.len
    }
}

/// Unpack a 128-bit `xfs_bmbt_rec`: flag:1, startoff:54, startblock:52, blockcount:21.
fn unpack(rec: &[u8]) -> Option<Extent> {
    let l0 = be::u64(rec, 0)?;
    let l1 = be::u64(rec, 8)?;
    Some(Extent {
        unwritten: l0 >> 63 != 0,
        off: (l0 & ((1 << 63) - 1)) >> 9,
        start: ((l0 & 0x1ff) << 43) | (l1 >> 21),
        len: l1 & 0x1f_ffff,
    })
}

/// Parse `n` packed records from `b`, checking each is non-empty and that they are sorted and
/// disjoint (and, with `lo`/`hi`, inside the key range the parent gave them).
fn parse_records(b: &[u8], n: usize, lo: u64, hi: u64, what: &dyn Fn() -> String) -> Result<Vec<Extent>, XErr> {
    let mut out = Vec::with_capacity(n);
    let mut prev_end = lo;
    for i in 0..n {
        let e = be::bytes(b, i * 16, 16).and_then(unpack).or_bad(|| format!("{}: record {i} truncated", what()))?;
        if e.len == 0 {
            return Err(XErr::corrupt(format!("{}: extent {i} has no blocks", what())));
        }
        if e.off < prev_end || e.end() > MAX_FILEOFF || e.end() > hi {
            return Err(XErr::corrupt(format!(
                "{}: extent {i} (file block {}+{}) is out of order or overlaps",
                what(),
                e.off,
                e.len
            )));
        }
        prev_end = e.end();
        out.push(e);
    }
    Ok(out)
}

/// First extent ending after `lblk` in a sorted list.
fn find_in(list: &[Extent], lblk: u64) -> Option<Extent> {
    let i = list.partition_point(|e| e.end() <= lblk);
    list.get(i).copied()
}

/// A B+tree node's keys and child pointers.
#[derive(Debug, Clone)]
struct Node {
    level: u16,
    keys: Vec<u64>,
    ptrs: Vec<u64>,
}

#[derive(Debug, Clone)]
enum Map {
    /// Extent list (extents format), or nothing (local/device formats).
    List(Vec<Extent>),
    Tree(Node),
}

/// The leaf last read: its extents cover file blocks in `[lo, hi)`.
#[derive(Debug, Clone)]
struct Leaf {
    lo: u64,
    hi: u64,
    recs: Vec<Extent>,
}

/// Maps file blocks of one inode's data fork.
#[derive(Debug)]
pub(crate) struct Mapper<'a> {
    fs: &'a Inner,
    ino: u64,
    map: Map,
    leaf: Option<Leaf>,
}

impl<'a> Mapper<'a> {
    pub fn new(fs: &'a Inner, inode: &Inode) -> Result<Self, XErr> {
        let ino = inode.ino;
        let map = match inode.format {
            FMT_EXTENTS => {
                let n =
                    usize::try_from(inode.nextents).map_err(|_| XErr::corrupt(format!("inode {ino}: extent count")))?;
                Map::List(parse_records(&inode.fork, n, 0, MAX_FILEOFF, &|| format!("inode {ino} extent list"))?)
            }
            FMT_BTREE => Map::Tree(root_node(inode)?),
            _ => Map::List(Vec::new()),
        };
        Ok(Mapper { fs, ino, map, leaf: None })
    }

    /// The first extent that ends after file block `lblk` (it may start after `lblk`: the blocks
    /// before it are a hole), or `None` past the last extent.
    pub fn find(&mut self, lblk: u64) -> Result<Option<Extent>, XErr> {
        let root = match &self.map {
            Map::List(list) => return Ok(find_in(list, lblk)),
            Map::Tree(root) => root.clone(),
        };
        if let Some(leaf) = &self.leaf
            && (leaf.lo..leaf.hi).contains(&lblk)
            && let Some(e) = find_in(&leaf.recs, lblk)
        {
            return Ok(Some(e));
        }
        let mut target = lblk;
        // Each retry moves to a strictly larger key, and each leaf holds at least one extent
        // at or after its key, so one retry suffices on a well-formed tree; bound it anyway.
        for _ in 0..4 {
            let leaf = self.descend(&root, target)?;
            let found = find_in(&leaf.recs, target);
            let next = leaf.hi;
            self.leaf = Some(leaf);
            if found.is_some() {
                return Ok(found);
            }
            if next == u64::MAX || next <= target {
                return Ok(None);
            }
            target = next;
        }
        Err(XErr::corrupt(format!("inode {}: block map leaves hold no extents past their keys", self.ino)))
    }

    /// Walk from the root to the leaf whose key range holds `lblk`.
    fn descend(&self, root: &Node, lblk: u64) -> Result<Leaf, XErr> {
        let geo = &self.fs.geo;
        let ino = self.ino;
        let mut node = root.clone();
        let (mut lo, mut hi) = (0u64, u64::MAX);
        loop {
            // Child i covers keys[i] .. keys[i+1].
            let i = node.keys.partition_point(|&k| k <= lblk).saturating_sub(1);
            let key = node.keys.get(i).copied().or_bad(|| format!("inode {ino}: empty block map node"))?;
            lo = lo.max(key);
            if let Some(&next) = node.keys.get(i + 1) {
                hi = hi.min(next);
            }
            let ptr = node.ptrs.get(i).copied().or_bad(|| format!("inode {ino}: block map pointer missing"))?;
            let want_level = node.level - 1;
            let what = move || format!("inode {ino}: block map block {ptr:#x} (level {want_level})");
            let byte = geo.fsb_to_byte(ptr, 1).map_err(|e| prefix(e, &what()))?;
            let block = self.fs.cached(CacheKind::Bmbt, byte, ino, || {
                let block = self.fs.read_vec(byte, geo.blocksize as usize).map_err(|e| prefix(e, &what()))?;
                let magic = be::u32(&block, 0).or_bad(what)?;
                let want_magic = if geo.v5 { BMAP_CRC_MAGIC } else { BMAP_MAGIC };
                if magic != want_magic {
                    return Err(XErr::corrupt(format!("{}: bad magic {magic:#010x}", what())));
                }
                if geo.v5 {
                    if let Err((s, c)) = verify_cksum(&block, LBLOCK_CRC_OFF) {
                        return Err(XErr::corrupt(format!(
                            "{}: CRC mismatch (stored {s:#010x}, computed {c:#010x})",
                            what()
                        )));
                    }
                    if be::u64(&block, 24) != Some(byte >> 9) {
                        return Err(XErr::corrupt(format!("{}: records a different block address", what())));
                    }
                    if be::u64(&block, 56) != Some(ino) {
                        return Err(XErr::corrupt(format!("{}: belongs to another inode", what())));
                    }
                    if be::bytes(&block, 40, 16) != Some(&geo.meta_uuid[..]) {
                        return Err(XErr::corrupt(format!("{}: UUID does not match the filesystem's", what())));
                    }
                }
                Ok(block)
            })?;
            let hdr = if geo.v5 { LBLOCK_CRC_LEN } else { LBLOCK_LEN };
            let level = be::u16(&block, 4).or_bad(what)?;
            if level != want_level {
                return Err(XErr::corrupt(format!("{}: has level {level} (a loop or a misdirected pointer)", what())));
            }
            let numrecs = usize::from(be::u16(&block, 6).or_bad(what)?);
            let body = block.get(hdr..).or_bad(what)?;
            let maxrecs = body.len() / 16;
            if numrecs == 0 || numrecs > maxrecs {
                return Err(XErr::corrupt(format!("{}: {numrecs} records (1..{maxrecs} allowed)", what())));
            }
            if level == 0 {
                let recs = parse_records(body, numrecs, lo, hi, &what)?;
                if recs.first().is_some_and(|e| e.off < key) {
                    return Err(XErr::corrupt(format!("{}: first extent lies before its key", what())));
                }
                return Ok(Leaf { lo, hi, recs });
            }
            node = parse_node(body, level, numrecs, maxrecs, &what)?;
            if node.keys.first().is_some_and(|&k| k < key) {
                return Err(XErr::corrupt(format!("{}: first key lies before its parent's key", what())));
            }
        }
    }
}

pub(crate) fn prefix(e: XErr, what: &str) -> XErr {
    match e {
        XErr::Corrupt(r) => XErr::Corrupt(format!("{what}: {r}")),
        XErr::Io(r) => XErr::Io(format!("{what}: {r}")),
        other => other,
    }
}

/// Keys then pointers, each array sized for `maxrecs` entries.
fn parse_node(body: &[u8], level: u16, n: usize, maxrecs: usize, what: &dyn Fn() -> String) -> Result<Node, XErr> {
    if level as usize > MAX_XFS_BTREE_LEVELS {
        return Err(XErr::corrupt(format!("{}: level {level} exceeds {MAX_XFS_BTREE_LEVELS}", what())));
    }
    let mut keys = Vec::with_capacity(n);
    let mut ptrs = Vec::with_capacity(n);
    for i in 0..n {
        let k = be::u64(body, i * 8).or_bad(|| format!("{}: key {i} truncated", what()))?;
        let p = be::u64(body, (maxrecs + i) * 8).or_bad(|| format!("{}: pointer {i} truncated", what()))?;
        if keys.last().is_some_and(|&last| k <= last) {
            return Err(XErr::corrupt(format!("{}: keys out of order at {i}", what())));
        }
        keys.push(k);
        ptrs.push(p);
    }
    Ok(Node { level, keys, ptrs })
}

/// The BMBT root held in the inode's data fork (`struct xfs_bmdr_block`: level, numrecs, then
/// keys and pointers sized for the fork).
fn root_node(inode: &Inode) -> Result<Node, XErr> {
    let ino = inode.ino;
    let what = || format!("inode {ino}: block map root");
    let level = be::u16(&inode.fork, 0).or_bad(what)?;
    let numrecs = usize::from(be::u16(&inode.fork, 2).or_bad(what)?);
    let body = inode.fork.get(4..).or_bad(what)?;
    let maxrecs = body.len() / 16;
    if level == 0 {
        return Err(XErr::corrupt(format!("{}: level 0 in btree format", what())));
    }
    if numrecs == 0 || numrecs > maxrecs {
        return Err(XErr::corrupt(format!("{}: {numrecs} records (1..{maxrecs} allowed)", what())));
    }
    parse_node(body, level, numrecs, maxrecs, &what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(e: Extent) -> [u8; 16] {
        let l0 = (u64::from(e.unwritten) << 63) | (e.off << 9) | (e.start >> 43);
        let l1 = ((e.start & ((1 << 43) - 1)) << 21) | e.len;
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&l0.to_be_bytes());
        b[8..].copy_from_slice(&l1.to_be_bytes());
        b
    }

    #[test]
    fn records_round_trip_at_the_field_limits() {
        for e in [
            Extent { off: 0, start: 1052, len: 2, unwritten: false },
            Extent { off: (1 << 54) - 2, start: (1 << 52) - 1, len: 1, unwritten: true },
            Extent { off: 12345, start: (1 << 43) + 7, len: (1 << 21) - 1, unwritten: false },
        ] {
            assert_eq!(unpack(&pack(e)), Some(e));
        }
    }

    #[test]
    fn record_lists_must_be_sorted_disjoint_and_non_empty() {
        let what = || "test".to_owned();
        let mk = |v: &[Extent]| v.iter().flat_map(|e| pack(*e)).collect::<Vec<u8>>();
        let a = Extent { off: 0, start: 10, len: 4, unwritten: false };
        let b = Extent { off: 4, start: 100, len: 1, unwritten: false };
        assert_eq!(parse_records(&mk(&[a, b]), 2, 0, MAX_FILEOFF, &what).map(|v| v.len()).ok(), Some(2));
        assert!(parse_records(&mk(&[b, a]), 2, 0, MAX_FILEOFF, &what).is_err(), "out of order");
        let overlap = Extent { off: 3, ..b };
        assert!(parse_records(&mk(&[a, overlap]), 2, 0, MAX_FILEOFF, &what).is_err(), "overlap");
        let empty = Extent { len: 0, ..b };
        assert!(parse_records(&mk(&[a, empty]), 2, 0, MAX_FILEOFF, &what).is_err(), "empty");
        assert!(parse_records(&mk(&[a]), 2, 0, MAX_FILEOFF, &what).is_err(), "count past the data");
        assert!(parse_records(&mk(&[a, b]), 2, 1, MAX_FILEOFF, &what).is_err(), "before the parent's key");
        assert!(parse_records(&mk(&[a, b]), 2, 0, 4, &what).is_err(), "past the next key");
        assert_eq!(find_in(&[a, b], 0), Some(a));
        assert_eq!(find_in(&[a, b], 4), Some(b));
        assert_eq!(find_in(&[a, b], 5), None);
        let c = Extent { off: 10, ..b };
        assert_eq!(find_in(&[a, c], 6), Some(c), "a hole, then the next extent");
    }
}
