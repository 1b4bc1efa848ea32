//! On-disk inodes (`struct xfs_dinode`): versions 1 and 2 (a 100-byte core) and 3 (a 176-byte
//! core with a CRC), the data fork's format and extent count, owners, mode, size and mtime.

use super::sb::Geo;
use super::util::{XErr, be, verify_cksum};

const DINODE_MAGIC: u16 = 0x494e; // "IN"
/// Offset of `di_crc` in a v3 inode.
const DINODE_CRC_OFF: usize = 100;

// Data fork formats (`enum xfs_dinode_fmt`).
pub(crate) const FMT_DEV: u8 = 0;
pub(crate) const FMT_LOCAL: u8 = 1;
pub(crate) const FMT_EXTENTS: u8 = 2;
pub(crate) const FMT_BTREE: u8 = 3;

// di_flags2 bits.
const DIFLAG2_BIGTIME: u64 = 1 << 3;
const DIFLAG2_NREXT64: u64 = 1 << 4;

// File types (`S_IFMT`).
pub(crate) const S_IFMT: u16 = 0o170000;
pub(crate) const S_IFREG: u16 = 0o100000;
pub(crate) const S_IFDIR: u16 = 0o040000;
pub(crate) const S_IFLNK: u16 = 0o120000;
const S_IFCHR: u16 = 0o020000;
const S_IFBLK: u16 = 0o060000;
const S_IFIFO: u16 = 0o010000;
const S_IFSOCK: u16 = 0o140000;

/// A timestamp as seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XfsTime {
    pub secs: i64,
    pub nsecs: u32,
}

/// One inode, checked, with its data fork bytes.
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    pub ino: u64,
    pub mode: u16,
    pub format: u8,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    /// Extents in the data fork (for the extents and btree formats).
    pub nextents: u64,
    pub mtime: XfsTime,
    /// The data fork (the literal area up to the attribute fork).
    pub fork: Vec<u8>,
}

impl Inode {
    pub fn kind_bits(&self) -> u16 {
        self.mode & S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.kind_bits() == S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.kind_bits() == S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.kind_bits() == S_IFLNK
    }

    /// Parse and check inode `ino` from its `inodesize` bytes.
    pub fn parse(geo: &Geo, ino: u64, raw: &[u8]) -> Result<Inode, XErr> {
        let bad = |why: String| XErr::corrupt(format!("inode {ino}: {why}"));
        let short = || bad("truncated".into());
        if raw.len() != geo.inodesize as usize {
            return Err(short());
        }
        let magic = be::u16(raw, 0).ok_or_else(short)?;
        if magic != DINODE_MAGIC {
            return Err(bad(format!("bad magic {magic:#06x} (not an inode)")));
        }
        let version = be::u8(raw, 4).ok_or_else(short)?;
        let core = match (version, geo.v5) {
            (3, true) => 176,
            (2, false) => 100,
            (1, false) if geo.v1_inodes => 100,
            (v, _) => {
                return Err(bad(format!(
                    "inode version {v} is invalid on a v{} filesystem",
                    if geo.v5 { 5 } else { 4 }
                )));
            }
        };
        if version == 3 {
            if let Err((stored, computed)) = verify_cksum(raw, DINODE_CRC_OFF) {
                return Err(bad(format!("CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")));
            }
            let self_ino = be::u64(raw, 152).ok_or_else(short)?;
            if self_ino != ino {
                return Err(bad(format!("records inode number {self_ino} (misplaced inode)")));
            }
            if be::bytes(raw, 160, 16) != Some(&geo.meta_uuid[..]) {
                return Err(bad("UUID does not match the filesystem's".into()));
            }
        }
        let mode = be::u16(raw, 2).ok_or_else(short)?;
        let format = be::u8(raw, 5).ok_or_else(short)?;
        let nlink = if version == 1 {
            u32::from(be::u16(raw, 6).ok_or_else(short)?)
        } else {
            be::u32(raw, 16).ok_or_else(short)?
        };
        let uid = be::u32(raw, 8).ok_or_else(short)?;
        let gid = be::u32(raw, 12).ok_or_else(short)?;
        let size = be::u64(raw, 56).ok_or_else(short)?;
        if size > i64::MAX as u64 {
            return Err(bad(format!("size {size} is negative")));
        }
        let flags2 = if version == 3 { be::u64(raw, 120).ok_or_else(short)? } else { 0 };
        let nextents = if flags2 & DIFLAG2_NREXT64 != 0 {
            if !geo.nrext64 {
                return Err(bad("64-bit extent counter on a filesystem without nrext64".into()));
            }
            be::u64(raw, 24).ok_or_else(short)?
        } else {
            u64::from(be::u32(raw, 76).ok_or_else(short)?)
        };
        let mtime = decode_time(be::u64(raw, 40).ok_or_else(short)?, flags2 & DIFLAG2_BIGTIME != 0);
        let forkoff = usize::from(be::u8(raw, 82).ok_or_else(short)?) * 8;
        let literal = raw.len() - core;
        let fork_len = if forkoff == 0 { literal } else { forkoff };
        if fork_len > literal {
            return Err(bad(format!("attribute fork offset {forkoff} lies past the literal area ({literal} bytes)")));
        }
        let fork = raw.get(core..core + fork_len).ok_or_else(short)?.to_vec();
        let kind = mode & S_IFMT;
        match kind {
            0 => return Err(bad("mode 0: the inode is free (unallocated)".into())),
            S_IFREG | S_IFDIR | S_IFLNK => {
                if !matches!(format, FMT_LOCAL | FMT_EXTENTS | FMT_BTREE) {
                    return Err(bad(format!("data fork format {format} is invalid for mode {mode:o}")));
                }
            }
            S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => {
                if format != FMT_DEV {
                    return Err(bad(format!("data fork format {format} is invalid for a device or FIFO")));
                }
            }
            _ => return Err(bad(format!("unknown file type in mode {mode:o}"))),
        }
        match format {
            FMT_LOCAL if size > fork_len as u64 => {
                return Err(bad(format!("inline data of {size} bytes exceeds the {fork_len}-byte data fork")));
            }
            FMT_EXTENTS if nextents.checked_mul(16).is_none_or(|n| n > fork_len as u64) => {
                return Err(bad(format!("{nextents} extents do not fit the {fork_len}-byte data fork")));
            }
            _ => {}
        }
        Ok(Inode { ino, mode, format, uid, gid, nlink, size, nextents, mtime, fork })
    }
}

/// Decode an on-disk timestamp: classic (signed 32-bit seconds, 32-bit nanoseconds) or bigtime
/// (unsigned 64-bit nanoseconds since 1901-12-13T20:45:52Z, `XFS_BIGTIME_EPOCH_OFFSET`).
fn decode_time(raw: u64, bigtime: bool) -> XfsTime {
    if bigtime {
        let ns = 1_000_000_000u64;
        let secs = i64::try_from(raw / ns).unwrap_or(i64::MAX) - (1i64 << 31);
        XfsTime { secs, nsecs: u32::try_from(raw % ns).unwrap_or(0) }
    } else {
        let secs = i64::from((raw >> 32) as u32 as i32);
        XfsTime { secs, nsecs: (raw & 0xffff_ffff) as u32 }
    }
}
