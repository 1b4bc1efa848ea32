//! The primary superblock (`struct xfs_dsb`, `xfs_format.h`) and the geometry derived from it:
//! allocation-group addressing of filesystem blocks and inode numbers.

use super::util::{XErr, be, verify_cksum};

pub(crate) const XFS_SB_MAGIC: u32 = 0x5846_5342; // "XFSB"
/// Offset of `sb_crc` in the superblock.
const SB_CRC_OFF: usize = 224;

// sb_versionnum bits.
const VERSION_NUMBITS: u16 = 0x000f;
const VERSION_NLINKBIT: u16 = 0x0020;
const VERSION_DIRV2BIT: u16 = 0x2000;
const VERSION_BORGBIT: u16 = 0x4000; // ASCII case-insensitive names
const VERSION_MOREBITSBIT: u16 = 0x8000;

// sb_features2 bits a v4 filesystem may carry (the kernel's XFS_SB_VERSION2_OKBITS).
const VERSION2_LAZYSBCOUNT: u32 = 0x0002;
const VERSION2_ATTR2: u32 = 0x0008;
const VERSION2_PROJID32: u32 = 0x0080;
const VERSION2_FTYPE: u32 = 0x0200;
const VERSION2_OKBITS: u32 = VERSION2_LAZYSBCOUNT | VERSION2_ATTR2 | VERSION2_PROJID32 | VERSION2_FTYPE;

// v5 incompatible features.
const INCOMPAT_FTYPE: u32 = 1 << 0;
const INCOMPAT_SPINODES: u32 = 1 << 1;
const INCOMPAT_META_UUID: u32 = 1 << 2;
const INCOMPAT_BIGTIME: u32 = 1 << 3;
const INCOMPAT_NEEDSREPAIR: u32 = 1 << 4;
const INCOMPAT_NREXT64: u32 = 1 << 5;
const INCOMPAT_EXCHRANGE: u32 = 1 << 6;
const INCOMPAT_PARENT: u32 = 1 << 7;
const INCOMPAT_METADIR: u32 = 1 << 8;
const INCOMPAT_ZONED: u32 = 1 << 9;
/// Incompatible features that do not change how files, directories and symlinks are read:
/// sparse inode chunks (allocation only), a separate metadata UUID (checked where stamped),
/// big timestamps and 64-bit extent counters (decoded), exchange-range (a log item type) and
/// parent pointers (extended attributes, which we do not read).
const INCOMPAT_READABLE: u32 = INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NREXT64
    | INCOMPAT_EXCHRANGE
    | INCOMPAT_PARENT;

/// Geometry and features of one filesystem, checked once at load.
#[derive(Debug, Clone)]
pub(crate) struct Geo {
    /// Version 5 (CRC-protected metadata) rather than 4.
    pub v5: bool,
    pub blocksize: u32,
    pub blocklog: u32,
    pub sectsize: u32,
    pub inodesize: u32,
    pub inopblog: u32,
    pub agblocks: u32,
    pub agblklog: u32,
    pub agcount: u32,
    pub dblocks: u64,
    /// log2 of filesystem blocks per directory block.
    pub dirblklog: u32,
    pub rootino: u64,
    /// Directory entries carry a file type byte.
    pub ftype: bool,
    /// Inodes may use 64-bit extent counters.
    pub nrext64: bool,
    /// v4 without NLINKBIT: version 1 inodes are allowed.
    pub v1_inodes: bool,
    pub uuid: [u8; 16],
    /// UUID stamped into v5 metadata (`sb_meta_uuid` with the meta_uuid feature, else `sb_uuid`).
    pub meta_uuid: [u8; 16],
    pub label: String,
}

fn is_pow2_in(v: u64, lo: u64, hi: u64) -> bool {
    v.is_power_of_two() && (lo..=hi).contains(&v)
}

impl Geo {
    /// Parse and check the primary superblock `sb` (its first `sectsize` bytes at least) of a
    /// filesystem on a device of `dev_len` bytes. The error is the reason the filesystem is
    /// refused.
    pub fn parse(sb: &[u8], dev_len: u64) -> Result<Geo, String> {
        let short = || "superblock truncated".to_owned();
        let u8f = |o| be::u8(sb, o).ok_or_else(short);
        let u16f = |o| be::u16(sb, o).ok_or_else(short);
        let u32f = |o| be::u32(sb, o).ok_or_else(short);
        let u64f = |o| be::u64(sb, o).ok_or_else(short);

        if u32f(0)? != XFS_SB_MAGIC {
            return Err("no XFS superblock magic (XFSB)".into());
        }
        let versionnum = u16f(100)?;
        let version = versionnum & VERSION_NUMBITS;
        let v5 = match version {
            4 => false,
            5 => true,
            v => return Err(format!("superblock version {v} is not supported (only v4 and v5)")),
        };
        let sectsize = u32::from(u16f(102)?);
        if !is_pow2_in(u64::from(sectsize), 512, 32768) || u32::from(u8f(121)?) != sectsize.trailing_zeros() {
            return Err(format!("sector size {sectsize} is invalid (512..32768, a power of two)"));
        }
        if sb.len() < sectsize as usize {
            return Err(short());
        }
        if v5 {
            let sector = sb.get(..sectsize as usize).ok_or_else(short)?;
            if let Err((stored, computed)) = verify_cksum(sector, SB_CRC_OFF) {
                return Err(format!("superblock CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"));
            }
        }
        let blocksize = u32f(4)?;
        let blocklog = u32::from(u8f(120)?);
        if !is_pow2_in(u64::from(blocksize), 512, 65536) || blocksize.trailing_zeros() != blocklog {
            return Err(format!("block size {blocksize} is invalid (512..65536, a power of two)"));
        }
        if v5 && blocksize < 1024 {
            return Err(format!("block size {blocksize} is below the v5 minimum of 1024"));
        }
        if blocksize < sectsize {
            return Err(format!("block size {blocksize} is smaller than the sector size {sectsize}"));
        }
        let inodesize = u32::from(u16f(104)?);
        let inodelog = u32::from(u8f(122)?);
        if !is_pow2_in(u64::from(inodesize), 256, 2048) || inodesize.trailing_zeros() != inodelog {
            return Err(format!("inode size {inodesize} is invalid (256..2048, a power of two)"));
        }
        if inodesize > blocksize {
            return Err(format!("inode size {inodesize} exceeds the block size {blocksize}"));
        }
        let inopblock = u32::from(u16f(106)?);
        let inopblog = u32::from(u8f(123)?);
        if inopblock != blocksize / inodesize || inopblog != blocklog - inodelog {
            return Err(format!(
                "inodes per block {inopblock} (log {inopblog}) disagree with the block and inode sizes"
            ));
        }
        let agblocks = u32f(84)?;
        let agcount = u32f(88)?;
        let agblklog = u32::from(u8f(124)?);
        if !(64..=(1 << 31)).contains(&agblocks) {
            return Err(format!("allocation group size {agblocks} blocks is invalid"));
        }
        if agcount == 0 {
            return Err("allocation group count is 0".into());
        }
        // agblklog = ceil(log2(agblocks)).
        let want_log = u64::from(agblocks).next_power_of_two().trailing_zeros();
        if agblklog != want_log {
            return Err(format!("AG block log {agblklog} does not match {agblocks} blocks per AG (want {want_log})"));
        }
        if agblklog + inopblog > 32 {
            return Err(format!("AG inode number bits ({agblklog} + {inopblog}) exceed 32"));
        }
        let dblocks = u64f(8)?;
        let full = u64::from(agblocks) * u64::from(agcount);
        if dblocks > full || dblocks <= full - u64::from(agblocks) {
            return Err(format!("{dblocks} data blocks do not fit {agcount} AGs of {agblocks} blocks"));
        }
        let fs_bytes = dblocks.checked_mul(u64::from(blocksize)).ok_or("filesystem size overflows")?;
        if fs_bytes > dev_len {
            return Err(format!("the filesystem is {fs_bytes} bytes but its partition is only {dev_len} bytes"));
        }
        if u64f(16)? != 0 || u64f(24)? != 0 {
            return Err("a realtime device is configured (realtime files are not supported)".into());
        }
        if u64f(48)? == 0 {
            return Err("the log is on an external device (not supported)".into());
        }
        if u8f(126)? != 0 {
            return Err("mkfs did not finish (sb_inprogress is set)".into());
        }
        let dirblklog = u32::from(u8f(192)?);
        if blocklog + dirblklog > 16 {
            return Err(format!("directory block size 2^{} exceeds 64 KiB", blocklog + dirblklog));
        }
        if versionnum & VERSION_BORGBIT != 0 {
            return Err("ASCII case-insensitive names (ascii-ci) are not supported".into());
        }
        let mut v1_inodes = false;
        let (ftype, nrext64, meta_uuid_on);
        if v5 {
            let incompat = u32f(216)?;
            let named = [
                (INCOMPAT_NEEDSREPAIR, "needsrepair (xfs_repair must run first)"),
                (INCOMPAT_METADIR, "metadir (metadata directory tree)"),
                (INCOMPAT_ZONED, "zoned (realtime zoned allocator)"),
            ];
            for (bit, name) in named {
                if incompat & bit != 0 {
                    return Err(format!("incompatible feature {name} is not supported"));
                }
            }
            let unknown = incompat & !INCOMPAT_READABLE;
            if unknown != 0 {
                return Err(format!("unknown incompatible feature bits {unknown:#x}"));
            }
            ftype = incompat & INCOMPAT_FTYPE != 0;
            nrext64 = incompat & INCOMPAT_NREXT64 != 0;
            meta_uuid_on = incompat & INCOMPAT_META_UUID != 0;
        } else {
            if versionnum & VERSION_DIRV2BIT == 0 {
                return Err("version 1 directories (pre-2003 v4 filesystems) are not supported".into());
            }
            v1_inodes = versionnum & VERSION_NLINKBIT == 0;
            let features2 = if versionnum & VERSION_MOREBITSBIT != 0 { u32f(200)? | u32f(204)? } else { 0 };
            let unknown = features2 & !VERSION2_OKBITS;
            if unknown != 0 {
                return Err(format!("unknown v4 feature bits {unknown:#x} in sb_features2"));
            }
            ftype = features2 & VERSION2_FTYPE != 0;
            nrext64 = false;
            meta_uuid_on = false;
        }
        let uuid: [u8; 16] = be::bytes(sb, 32, 16).and_then(|b| b.try_into().ok()).ok_or_else(short)?;
        let meta_uuid =
            if meta_uuid_on { be::bytes(sb, 248, 16).and_then(|b| b.try_into().ok()).ok_or_else(short)? } else { uuid };
        let label_raw = be::bytes(sb, 108, 12).ok_or_else(short)?;
        let end = label_raw.iter().position(|&b| b == 0).unwrap_or(label_raw.len());
        let label = String::from_utf8_lossy(label_raw.get(..end).unwrap_or_default()).into_owned();
        let mut geo = Geo {
            v5,
            blocksize,
            blocklog,
            sectsize,
            inodesize,
            inopblog,
            agblocks,
            agblklog,
            agcount,
            dblocks,
            dirblklog,
            rootino: 0,
            ftype,
            nrext64,
            v1_inodes,
            uuid,
            meta_uuid,
            label,
        };
        let rootino = u64f(56)?;
        geo.ino_to_byte(rootino).map_err(|e| match e {
            XErr::Corrupt(r) | XErr::Io(r) => format!("root inode: {r}"),
            XErr::TooManyEntries => "root inode".to_owned(),
        })?;
        geo.rootino = rootino;
        Ok(geo)
    }

    /// Bytes per directory block.
    pub fn dirblksize(&self) -> u32 {
        self.blocksize << self.dirblklog
    }

    /// Blocks in allocation group `agno` (the last one may be short).
    fn ag_len(&self, agno: u64) -> u64 {
        let start = agno * u64::from(self.agblocks);
        (self.dblocks - start.min(self.dblocks)).min(u64::from(self.agblocks))
    }

    /// Byte offset of `count` blocks from filesystem block number `fsb` (AG-encoded:
    /// `agno << agblklog | agbno`), checked to lie inside one AG of the filesystem.
    pub fn fsb_to_byte(&self, fsb: u64, count: u64) -> Result<u64, XErr> {
        let agno = fsb >> self.agblklog;
        let agbno = fsb & ((1u64 << self.agblklog) - 1);
        if agno >= u64::from(self.agcount) {
            return Err(XErr::corrupt(format!(
                "block {fsb:#x} is in AG {agno}, past the last AG ({})",
                self.agcount - 1
            )));
        }
        let end = agbno.checked_add(count);
        if count == 0 || end.is_none_or(|e| e > self.ag_len(agno)) {
            return Err(XErr::corrupt(format!(
                "blocks {agbno}+{count} of AG {agno} lie past its end ({} blocks): past the end of the filesystem",
                self.ag_len(agno)
            )));
        }
        Ok((agno * u64::from(self.agblocks) + agbno) << self.blocklog)
    }

    /// Byte offset of inode `ino` (`agno | agbno | index-in-block`), checked.
    pub fn ino_to_byte(&self, ino: u64) -> Result<u64, XErr> {
        let agino_log = self.agblklog + self.inopblog;
        let agno = ino >> agino_log;
        let agino = ino & ((1u64 << agino_log) - 1);
        let agbno = agino >> self.inopblog;
        let index = agino & ((1u64 << self.inopblog) - 1);
        if agno >= u64::from(self.agcount) || agbno >= self.ag_len(agno) {
            return Err(XErr::corrupt(format!(
                "inode number {ino} lies outside the filesystem (AG {agno}, block {agbno})"
            )));
        }
        let block = (agno * u64::from(self.agblocks) + agbno) << self.blocklog;
        Ok(block + index * u64::from(self.inodesize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v4 superblock (no CRC) of 4 KiB blocks, 512-byte sectors and 256-byte inodes.
    fn v4_sb(agblocks: u32, agcount: u32, dblocks: u64) -> Vec<u8> {
        let mut sb = vec![0u8; 512];
        let mut put = |off: usize, b: &[u8]| sb[off..off + b.len()].copy_from_slice(b);
        put(0, &XFS_SB_MAGIC.to_be_bytes());
        put(4, &4096u32.to_be_bytes());
        put(8, &dblocks.to_be_bytes());
        put(48, &(u64::from(agblocks) / 2).to_be_bytes()); // logstart
        put(56, &128u64.to_be_bytes()); // rootino
        put(84, &agblocks.to_be_bytes());
        put(88, &agcount.to_be_bytes());
        put(100, &(4 | VERSION_NLINKBIT | VERSION_DIRV2BIT).to_be_bytes());
        put(102, &512u16.to_be_bytes());
        put(104, &256u16.to_be_bytes());
        put(106, &16u16.to_be_bytes());
        put(120, &[12, 9, 8, 4, u64::from(agblocks).next_power_of_two().trailing_zeros() as u8]);
        sb
    }

    #[test]
    fn blocks_and_inodes_map_through_the_ag_encoding_not_linearly() {
        // The survey's reproduction of xfs-core's bug: agblocks 19200 (agblklog 15), a file at
        // fsb 32792 = AG 1 block 24 lives at (19200 + 24) * 4096, not at 32792 * 4096.
        let geo = Geo::parse(&v4_sb(19200, 4, 4 * 19200), 1 << 40).expect("valid");
        assert_eq!(geo.agblklog, 15);
        assert_eq!(geo.fsb_to_byte(32792, 1).ok(), Some((19200 + 24) * 4096));
        assert_eq!(geo.fsb_to_byte(24, 1).ok(), Some(24 * 4096));
        // Block 19200 of AG 0 does not exist (AG 0 ends at 19199).
        assert!(geo.fsb_to_byte(19200, 1).is_err());
        assert!(geo.fsb_to_byte(19199, 2).is_err(), "an extent may not cross the end of its AG");
        assert!(geo.fsb_to_byte(4 << 15, 1).is_err(), "AG 4 of 4");
        // Inode (AG 2, block 100, slot 5): 16 inodes per block, agino bits 15 + 4.
        let ino = (2u64 << 19) | (100 << 4) | 5;
        assert_eq!(geo.ino_to_byte(ino).ok(), Some((2 * 19200 + 100) * 4096 + 5 * 256));
        assert!(geo.ino_to_byte(4u64 << 19).is_err());
    }

    #[test]
    fn the_last_ag_may_be_short() {
        let geo = Geo::parse(&v4_sb(19200, 4, 3 * 19200 + 100), 1 << 40).expect("valid");
        assert!(geo.fsb_to_byte((3 << 15) | 99, 1).is_ok());
        assert!(geo.fsb_to_byte((3 << 15) | 100, 1).is_err());
        assert!(Geo::parse(&v4_sb(19200, 4, 3 * 19200), 1 << 40).is_err(), "an empty last AG");
        assert!(Geo::parse(&v4_sb(19200, 4, 4 * 19200), 4 * 19200 * 4096 - 1).is_err(), "device too small");
    }
}
