//! XFS (v4 and v5) read in userspace, read-only: superblock and allocation-group geometry,
//! inodes, data forks, directories and symlinks, with a dirty log replayed in memory ([`log`]).
//!
//! Written from the on-disk format ("XFS Algorithms & Data Structures"; Linux
//! `fs/xfs/libxfs/xfs_format.h`, `xfs_da_format.h`). Everything is big-endian on disk; v5
//! metadata (superblock, inodes, block-map blocks, directory blocks, remote symlink blocks) is
//! checked against its CRC32C, and a mismatch is an error for the path that reached that object,
//! not for the whole filesystem.
//!
//! Filesystem blocks and inode numbers are AG-encoded: `agno = fsb >> agblklog`,
//! `agbno = fsb & mask`, byte = `(agno * agblocks + agbno) * blocksize` (never linear, since
//! `agblocks` is rarely a power of two). Every read goes through the log [`log::Overlay`].
//!
//! Only what a path needs is read: one inode is `inodesize` bytes, file data is read by extent,
//! directory lookups use the hash index. Small bounded caches keep recently used inodes and
//! checked metadata blocks.

mod bmap;
mod dir;
mod inode;
pub mod log;
mod sb;
mod util;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

pub use inode::XfsTime;

use self::bmap::Mapper;
use self::inode::{FMT_LOCAL, Inode};
use self::sb::Geo;
use self::util::{OrCorrupt, XErr, be, verify_cksum};
use super::walk::{MAX_PATH_LEN, MAX_SYMLINKS};
use super::{DirEntry, FileKind, FileRead, FsError, Meta, RootFs};
use crate::disk::{BlockSource, Region};
use crate::limits::{XFS_INODE_CACHE_ENTRIES, XFS_META_CACHE_BYTES};

/// Longest symlink target XFS stores (`XFS_SYMLINK_MAXLEN`).
const SYMLINK_MAXLEN: u64 = 1024;
const SYMLINK_MAGIC: u32 = 0x5853_4c4d; // "XSLM"
const SYMLINK_HDR_LEN: usize = 56;
const SYMLINK_CRC_OFF: usize = 12;

/// Which checked structure a cached block holds (the same bytes read as another structure are
/// checked again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CacheKind {
    Bmbt,
    DirData,
    DirDa,
}

/// A small least-recently-used map bounded by a total cost; when full it drops the oldest
/// quarter at once (amortised O(1) per insert).
#[derive(Debug)]
struct Lru<K, V> {
    map: HashMap<K, (V, u64, usize)>,
    tick: u64,
    cost: usize,
    max_cost: usize,
}

impl<K: Eq + Hash + Copy, V: Clone> Lru<K, V> {
    fn new(max_cost: usize) -> Self {
        Lru { map: HashMap::new(), tick: 0, cost: 0, max_cost }
    }
    fn get(&mut self, k: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(k).map(|(v, t, _)| {
            *t = tick;
            v.clone()
        })
    }
    fn put(&mut self, k: K, v: V, cost: usize) {
        if cost > self.max_cost / 4 {
            return;
        }
        self.tick += 1;
        if let Some((_, _, old)) = self.map.insert(k, (v, self.tick, cost)) {
            self.cost -= old;
        }
        self.cost += cost;
        if self.cost > self.max_cost {
            let mut ticks: Vec<u64> = self.map.values().map(|(_, t, _)| *t).collect();
            let q = ticks.len() / 4;
            let (_, cut, _) = ticks.select_nth_unstable(q);
            let cut = *cut;
            let mut freed = 0;
            self.map.retain(|_, (_, t, c)| {
                let keep = *t > cut;
                if !keep {
                    freed += *c;
                }
                keep
            });
            self.cost -= freed;
        }
    }
}

/// Checked metadata blocks by (structure, inode or byte address, block).
type MetaCache = Lru<(CacheKind, u64, u64), Arc<Vec<u8>>>;

/// The shared reading machinery (the filesystem minus its public face).
#[derive(Debug)]
pub(crate) struct Inner {
    dev: Region,
    overlay: log::Overlay,
    pub(crate) geo: Geo,
    meta: Mutex<MetaCache>,
    inodes: Mutex<Lru<u64, Arc<Inode>>>,
}

impl Inner {
    /// Read `buf.len()` bytes at byte `off` of the filesystem, patched by the log overlay.
    pub(crate) fn read_into(&self, off: u64, buf: &mut [u8]) -> Result<(), XErr> {
        self.dev.read_exact_at(off, buf).map_err(|e| XErr::Io(format!("read of {} bytes at {off}: {e}", buf.len())))?;
        self.overlay.patch(off, buf);
        Ok(())
    }

    pub(crate) fn read_vec(&self, off: u64, len: usize) -> Result<Vec<u8>, XErr> {
        let mut buf = vec![0u8; len];
        self.read_into(off, &mut buf)?;
        Ok(buf)
    }

    /// A checked metadata block from the cache, or `load` it (read and check) and keep it.
    pub(crate) fn cached(
        &self,
        kind: CacheKind,
        a: u64,
        b: u64,
        load: impl FnOnce() -> Result<Vec<u8>, XErr>,
    ) -> Result<Arc<Vec<u8>>, XErr> {
        let key = (kind, a, b);
        if let Some(v) = self.meta.lock().ok().and_then(|mut m| m.get(&key)) {
            return Ok(v);
        }
        let v = Arc::new(load()?);
        if let Ok(mut m) = self.meta.lock() {
            m.put(key, Arc::clone(&v), v.len() + 64);
        }
        Ok(v)
    }

    /// Inode `ino`, checked.
    pub(crate) fn inode(&self, ino: u64) -> Result<Arc<Inode>, XErr> {
        if let Some(i) = self.inodes.lock().ok().and_then(|mut m| m.get(&ino)) {
            return Ok(i);
        }
        let byte = self.geo.ino_to_byte(ino)?;
        let raw =
            self.read_vec(byte, self.geo.inodesize as usize).map_err(|e| bmap::prefix(e, &format!("inode {ino}")))?;
        let inode = Arc::new(Inode::parse(&self.geo, ino, &raw)?);
        if let Ok(mut m) = self.inodes.lock() {
            m.put(ino, Arc::clone(&inode), 1);
        }
        Ok(inode)
    }

    /// Target of a symlink inode: inline, or in remote blocks (v5: each mapping starts with an
    /// `XSLM` header carrying offset, length, owner and a CRC over the mapping's blocks).
    fn symlink_target(&self, inode: &Inode) -> Result<Vec<u8>, XErr> {
        let ino = inode.ino;
        let bad = |why: String| XErr::corrupt(format!("symlink inode {ino}: {why}"));
        if inode.size == 0 || inode.size > SYMLINK_MAXLEN {
            return Err(bad(format!("target length {} is invalid (1..{SYMLINK_MAXLEN})", inode.size)));
        }
        let len = inode.size as usize;
        if inode.format == FMT_LOCAL {
            return Ok(inode
                .fork
                .get(..len)
                .or_bad(|| format!("symlink inode {ino}: inline target truncated"))?
                .to_vec());
        }
        let geo = &self.geo;
        let hdr = if geo.v5 { SYMLINK_HDR_LEN } else { 0 };
        let per_block = geo.blocksize as usize - hdr;
        let blocks = len.div_ceil(per_block) as u64;
        let mut mapper = Mapper::new(self, inode)?;
        let mut out = Vec::with_capacity(len);
        let mut lblk = 0u64;
        while lblk < blocks {
            let e = mapper.find(lblk)?.filter(|e| e.off <= lblk && !e.unwritten);
            let Some(e) = e else { return Err(bad(format!("remote block {lblk} is not mapped"))) };
            let n = (e.end() - lblk).min(blocks - lblk);
            let byte = geo
                .fsb_to_byte(e.start + (lblk - e.off), n)
                .map_err(|er| bmap::prefix(er, &format!("symlink inode {ino}")))?;
            let buf = self.read_vec(byte, (n as usize) << geo.blocklog)?;
            let want = (buf.len() - hdr).min(len - out.len());
            if geo.v5 {
                if be::u32(&buf, 0) != Some(SYMLINK_MAGIC) {
                    return Err(bad(format!("remote block {lblk}: bad magic")));
                }
                if let Err((s, c)) = verify_cksum(&buf, SYMLINK_CRC_OFF) {
                    return Err(bad(format!(
                        "remote block {lblk}: CRC mismatch (stored {s:#010x}, computed {c:#010x})"
                    )));
                }
                let (off, bytes) = (be::u32(&buf, 4), be::u32(&buf, 8));
                if off != Some(out.len() as u32) || bytes != Some(want as u32) {
                    return Err(bad(format!("remote block {lblk}: header offset/length do not match")));
                }
                if be::u64(&buf, 32) != Some(ino) || be::u64(&buf, 40) != Some(byte >> 9) {
                    return Err(bad(format!("remote block {lblk}: header owner or address do not match")));
                }
                if be::bytes(&buf, 16, 16) != Some(&geo.meta_uuid[..]) {
                    return Err(bad(format!("remote block {lblk}: UUID does not match the filesystem's")));
                }
            }
            out.extend_from_slice(buf.get(hdr..hdr + want).or_bad(|| format!("symlink inode {ino}: truncated"))?);
            lblk += n;
        }
        if out.len() != len {
            return Err(bad(format!("remote blocks hold {} of {len} bytes", out.len())));
        }
        Ok(out)
    }
}

/// An XFS filesystem on a disk region.
pub struct XfsFs {
    inner: Inner,
}

impl std::fmt::Debug for XfsFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XfsFs(v{}, {} AGs)", if self.inner.geo.v5 { 5 } else { 4 }, self.inner.geo.agcount)
    }
}

/// The geometry of a loaded filesystem, as its superblock states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XfsGeometry {
    /// Superblock version: 4, or 5 (CRC-protected metadata).
    pub version: u8,
    pub block_size: u32,
    pub sector_size: u32,
    pub inode_size: u32,
    pub ag_count: u32,
    pub ag_blocks: u32,
    pub data_blocks: u64,
    pub dir_block_size: u32,
    /// Directory entries record the file type.
    pub ftype: bool,
}

/// Extra per-inode facts beyond [`Meta`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XfsStat {
    pub ino: u64,
    pub nlink: u32,
    pub mtime: XfsTime,
}

fn at(path: &str) -> impl Fn(XErr) -> FsError + '_ {
    move |e| match e {
        XErr::Corrupt(reason) => FsError::Corrupt { path: path.to_owned(), reason },
        XErr::Io(reason) => FsError::Io { path: path.to_owned(), reason },
        XErr::TooManyEntries => {
            FsError::TooManyEntries { path: path.to_owned(), limit: crate::limits::MAX_DIR_ENTRIES }
        }
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

fn kind_of(mode: u16) -> FileKind {
    match mode & inode::S_IFMT {
        inode::S_IFREG => FileKind::File,
        inode::S_IFDIR => FileKind::Dir,
        inode::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

fn meta_of(i: &Inode) -> Meta {
    Meta { kind: kind_of(i.mode), len: i.size, mode: u32::from(i.mode) & 0o7777, uid: i.uid, gid: i.gid }
}

impl XfsFs {
    /// Read and check the superblock, replay the log in memory, and check the root directory.
    pub fn load(region: Region) -> Result<XfsFs, FsError> {
        let root = || "/".to_owned();
        let refuse = |reason: String| FsError::Corrupt { path: root(), reason: format!("XFS superblock: {reason}") };
        let mut head = [0u8; 512];
        region
            .read_exact_at(0, &mut head)
            .map_err(|e| FsError::Io { path: root(), reason: format!("XFS superblock: {e}") })?;
        if be::u32(&head, 0) != Some(sb::XFS_SB_MAGIC) {
            return Err(refuse("no XFS superblock magic (XFSB)".into()));
        }
        let sectsize = be::u16(&head, 102).map_or(0, usize::from);
        if !(512..=32768).contains(&sectsize) || !sectsize.is_power_of_two() {
            return Err(refuse(format!("sector size {sectsize} is invalid (512..32768, a power of two)")));
        }
        let mut sector = vec![0u8; sectsize];
        region
            .read_exact_at(0, &mut sector)
            .map_err(|e| FsError::Io { path: root(), reason: format!("XFS superblock: {e}") })?;
        Geo::parse(&sector, region.len()).map_err(refuse)?;
        let overlay = log::recover(&region, &sector).map_err(|e| match e {
            log::LogError::Io(_) => FsError::Io { path: root(), reason: e.to_string() },
            _ => FsError::Corrupt { path: root(), reason: e.to_string() },
        })?;
        // Replay may have changed the superblock itself.
        overlay.patch(0, &mut sector);
        let geo = Geo::parse(&sector, region.len()).map_err(refuse)?;
        let inner = Inner {
            dev: region,
            overlay,
            geo,
            meta: Mutex::new(Lru::new(XFS_META_CACHE_BYTES)),
            inodes: Mutex::new(Lru::new(XFS_INODE_CACHE_ENTRIES)),
        };
        let rootino = inner.geo.rootino;
        let r = inner.inode(rootino).map_err(at("/"))?;
        if !r.is_dir() {
            return Err(FsError::Corrupt { path: root(), reason: format!("root inode {rootino} is not a directory") });
        }
        Ok(XfsFs { inner })
    }

    /// The filesystem UUID (`sb_uuid`).
    #[must_use]
    pub fn uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_bytes(self.inner.geo.uuid)
    }

    /// The filesystem label (`sb_fname`), empty if none.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.inner.geo.label
    }

    /// Block, sector and inode sizes, AG layout.
    #[must_use]
    pub fn geometry(&self) -> XfsGeometry {
        let g = &self.inner.geo;
        XfsGeometry {
            version: if g.v5 { 5 } else { 4 },
            block_size: g.blocksize,
            sector_size: g.sectsize,
            inode_size: g.inodesize,
            ag_count: g.agcount,
            ag_blocks: g.agblocks,
            data_blocks: g.dblocks,
            dir_block_size: g.dirblksize(),
            ftype: g.ftype,
        }
    }

    /// Inode number, link count and modification time of `path` (a final symlink not followed).
    pub fn stat(&self, path: &str) -> Result<XfsStat, FsError> {
        let i = self.resolve(path, false)?;
        Ok(XfsStat { ino: i.ino, nlink: i.nlink, mtime: i.mtime })
    }

    /// Resolve `path` inside the filesystem: absolute symlinks restart at the root, `..` never
    /// climbs above it, at most [`MAX_SYMLINKS`] links and [`MAX_PATH_LEN`]-byte paths. With
    /// `follow_last` false a final symlink is returned itself.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Arc<Inode>, FsError> {
        let fs = &self.inner;
        let err = at(path);
        let rootino = fs.geo.rootino;
        let mut pending: Vec<String> = split(path).into_iter().rev().collect();
        let mut stack: Vec<u64> = Vec::new();
        let mut links = 0usize;
        let mut cur = fs.inode(rootino).map_err(&err)?;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    stack.pop();
                    cur = fs.inode(stack.last().copied().unwrap_or(rootino)).map_err(&err)?;
                    continue;
                }
                _ => {}
            }
            if !cur.is_dir() {
                return Err(FsError::NotADir { path: path.to_owned() });
            }
            let Some((child, _)) = fs.dir_lookup(&cur, c.as_bytes()).map_err(&err)? else {
                return Err(FsError::NotFound { path: path.to_owned() });
            };
            let node = fs.inode(child).map_err(&err)?;
            let is_last = pending.is_empty();
            if node.is_symlink() && (!is_last || follow_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FsError::SymlinkLoop { path: path.to_owned() });
                }
                let target = fs.symlink_target(&node).map_err(&err)?;
                let target = String::from_utf8_lossy(&target).into_owned();
                if target.starts_with('/') {
                    stack.clear();
                }
                let rest_len: usize = pending.iter().map(|s| s.len() + 1).sum();
                if target.len() + rest_len > MAX_PATH_LEN {
                    return Err(FsError::SymlinkLoop { path: path.to_owned() });
                }
                pending.extend(split(&target).into_iter().rev());
                cur = fs.inode(stack.last().copied().unwrap_or(rootino)).map_err(&err)?;
            } else {
                if !is_last && !node.is_dir() {
                    return Err(FsError::NotADir { path: path.to_owned() });
                }
                stack.push(child);
                cur = node;
            }
        }
        Ok(cur)
    }
}

impl RootFs for XfsFs {
    fn kind(&self) -> &'static str {
        "xfs"
    }
    fn metadata(&self, path: &str) -> Result<Meta, FsError> {
        self.resolve(path, true).map(|i| meta_of(&i))
    }
    fn symlink_metadata(&self, path: &str) -> Result<Meta, FsError> {
        self.resolve(path, false).map(|i| meta_of(&i))
    }
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let dir = self.resolve(path, true)?;
        if !dir.is_dir() {
            return Err(FsError::NotADir { path: path.to_owned() });
        }
        let fs = &self.inner;
        let raw = fs.dir_list(&dir).map_err(at(path))?;
        let mut out = Vec::with_capacity(raw.len());
        for e in raw {
            let Ok(name) = String::from_utf8(e.name) else { continue };
            let kind = match (fs.geo.ftype, e.ftype) {
                (true, 1) => FileKind::File,
                (true, 2) => FileKind::Dir,
                (true, 7) => FileKind::Symlink,
                (true, 3..=6) => FileKind::Other,
                _ => fs.inode(e.ino).map(|i| kind_of(i.mode)).unwrap_or(FileKind::Other),
            };
            out.push(DirEntry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let node = self.resolve(path, false)?;
        if !node.is_symlink() {
            return Err(FsError::Corrupt { path: path.to_owned(), reason: "not a symlink".into() });
        }
        let target = self.inner.symlink_target(&node).map_err(at(path))?;
        Ok(String::from_utf8_lossy(&target).into_owned())
    }
    fn open(&self, path: &str) -> Result<Box<dyn FileRead + '_>, FsError> {
        let inode = self.resolve(path, true)?;
        if !inode.is_reg() {
            return Err(FsError::NotAFile { path: path.to_owned() });
        }
        let mapper = Mapper::new(&self.inner, &inode).map_err(at(path))?;
        Ok(Box::new(XfsFile { fs: &self.inner, inode, mapper, path: path.to_owned() }))
    }
}

/// One open regular file: reads by extent, holes and unwritten extents as zeros.
struct XfsFile<'a> {
    fs: &'a Inner,
    inode: Arc<Inode>,
    mapper: Mapper<'a>,
    path: String,
}

impl XfsFile<'_> {
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), XErr> {
        if self.inode.format == FMT_LOCAL {
            let start = usize::try_from(offset).map_err(|_| XErr::corrupt("offset"))?;
            let src = self
                .inode
                .fork
                .get(start..start + buf.len())
                .or_bad(|| format!("inode {}: inline data truncated", self.inode.ino))?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        let geo = &self.fs.geo;
        let bs = u64::from(geo.blocksize);
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let lblk = pos >> geo.blocklog;
            let rest = buf.get_mut(done..).unwrap_or_default();
            let ext = self.mapper.find(lblk)?;
            let n = match ext {
                Some(e) if e.off <= lblk => {
                    // Extents may lie far past the file's end (2^54 blocks of 64 KiB overflow
                    // a byte count): saturate.
                    let in_ext = e.end().saturating_mul(bs) - pos;
                    let n = usize::try_from(in_ext.min(rest.len() as u64)).unwrap_or(rest.len());
                    let dst = rest.get_mut(..n).unwrap_or_default();
                    if e.unwritten {
                        dst.fill(0);
                    } else {
                        let first = e.start + (lblk - e.off);
                        let blocks = (pos % bs + n as u64).div_ceil(bs);
                        let byte = geo
                            .fsb_to_byte(first, blocks)
                            .map_err(|er| bmap::prefix(er, &format!("inode {} extent", self.inode.ino)))?;
                        self.fs.read_into(byte + pos % bs, dst)?;
                    }
                    n
                }
                // A hole: up to the next extent, or to the end of the file.
                other => {
                    let hole_end = other.map_or(u64::MAX, |e| e.off.saturating_mul(bs));
                    let n = usize::try_from((hole_end - pos).min(rest.len() as u64)).unwrap_or(rest.len());
                    rest.get_mut(..n).unwrap_or_default().fill(0);
                    n
                }
            };
            if n == 0 {
                return Err(XErr::corrupt(format!("inode {}: no progress mapping block {lblk}", self.inode.ino)));
            }
            done += n;
        }
        Ok(())
    }
}

impl FileRead for XfsFile<'_> {
    fn len(&self) -> u64 {
        self.inode.size
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.inode.size) {
            return Err(FsError::Io {
                path: self.path.clone(),
                reason: format!("read of {} bytes at {offset} past the end ({} bytes)", buf.len(), self.inode.size),
            });
        }
        let path = self.path.clone();
        self.read(offset, buf).map_err(at(&path))
    }
}
