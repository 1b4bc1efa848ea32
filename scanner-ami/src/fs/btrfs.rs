//! btrfs read in userspace through `lambutter`: one subvolume (the default one, as a plain mount
//! shows it, or one named by path or id) seen as a [`RootFs`]. Nested subvolumes appear as
//! directories with their own contents, as the kernel shows them.
//!
//! What this module adds on top of the crate:
//! - path resolution: lambutter looks names up literally (no symlinks, `..` is a name), so paths
//!   are resolved here component by component inside the subvolume (40 links, 4096 bytes, `..`
//!   never above the root), as [`super::dir`] does on a directory tree;
//! - the superblock the kernel would use: only the primary copy (64 KiB) is shown to the crate,
//!   which otherwise takes the newest valid one of the four copies and so would read a filesystem
//!   whose primary superblock the kernel refuses (`btrfs_read_dev_super` reads copy 0 only);
//! - a `Mutex` around the crate's `&mut self` reader, since [`RootFs`] is shared across threads;
//! - errors mapped to [`FsError`] with the path and a clear reason (unsupported RAID profiles,
//!   checksum failures, reads past the device).
//!
//! Not done (limits of the crate, reported to the caller): the log tree (fsync'ed changes not yet
//! committed) is not replayed: [`BtrfsFs::log_tree_pending`] tells when one is present; data
//! checksums are not verified; RAID0/10/5/6 chunks are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use lambutter::{BlockRead, Btrfs, Error as BtrfsError, Inode, Metadata, Path, SuperblockReason};

use super::walk::{MAX_PATH_LEN, MAX_SYMLINKS};
use super::{DirEntry, FileKind, FileRead, FsError, Meta, RootFs};
use crate::disk::{BlockSource, Region};
use crate::limits::MAX_DIR_ENTRIES;

/// Most paths and inodes remembered by one filesystem (each map is emptied when it reaches this):
/// lambutter has no block cache and resolves every path from the subvolume root, so a tree walk
/// would otherwise descend the tree once per component of every path. About 100 bytes an entry,
/// so under 7 MiB a map; 64 Ki entries hold the directories and recent listings of a whole root.
const MAX_CACHED: usize = 64 * 1024;

/// Byte offset of the primary superblock (the only copy the kernel mounts from).
const PRIMARY_SUPERBLOCK: u64 = 64 * 1024;
/// The superblock copies after the primary (btrfs on-disk format: 64 MiB, 256 GiB, 1 PiB), hidden
/// from the crate so that it decides from the primary alone, like the kernel.
const MIRROR_SUPERBLOCKS: [u64; 3] = [64 << 20, 256 << 30, 1 << 50];
/// Size of a superblock copy.
const SUPERBLOCK_SIZE: usize = 4096;
/// Offset of `log_root` (u64, little-endian) inside the superblock (`struct btrfs_super_block`:
/// csum 32, fsid 16, bytenr 8, flags 8, magic 8, generation 8, root 8, chunk_root 8, log_root).
const LOG_ROOT_OFFSET: u64 = 0x60;

/// Which subvolume to present as `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subvol {
    /// The default subvolume (`btrfs subvolume set-default`), what a plain mount shows.
    Default,
    /// A subvolume by its path from the top level, as `mount -o subvol=PATH`.
    Path(String),
    /// A subvolume by id (5 is the top level), as `mount -o subvolid=ID`.
    Id(u64),
}

/// The text of the last failed device read: the crate erases reader errors to a token and an
/// offset, and keeps the reader, so the adapter records it here for the error message.
type LastError = Arc<Mutex<Option<String>>>;

/// Adapts a disk [`Region`] to lambutter's reader trait.
#[derive(Debug)]
struct RegionReader {
    region: Region,
    last_error: LastError,
}

impl BlockRead for RegionReader {
    type Error = std::io::Error;

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let res = if buf.len() == SUPERBLOCK_SIZE && MIRROR_SUPERBLOCKS.contains(&offset) {
            Err(std::io::Error::other("superblock copy not used: the kernel mounts from the primary only"))
        } else {
            self.region.read_exact_at(offset, buf)
        };
        if let Err(e) = &res
            && let Ok(mut last) = self.last_error.lock()
        {
            *last = Some(e.to_string());
        }
        res
    }
}

/// Take the last recorded read failure.
fn take_last(last: &LastError) -> Option<String> {
    last.lock().ok().and_then(|mut l| l.take())
}

/// A path resolved inside the subvolume: its symlink-free spelling (what the crate looks up
/// literally), the inode and its metadata.
struct Resolved {
    canon: String,
    inode: Inode,
    meta: Metadata,
}

/// The crate's filesystem and what has been looked up in it already (the image never changes
/// under a scan, so nothing goes stale).
struct Inner {
    fs: Btrfs<RegionReader>,
    /// Symlink-free absolute path -> inode, from lookups and directory listings.
    paths: HashMap<String, Inode>,
    /// (subvolume, inode number) -> metadata.
    metas: HashMap<(u64, u64), Metadata>,
}

impl Inner {
    /// The crate's literal lookup of an absolute path without `.`, `..` or symlinks.
    fn lookup(&mut self, canon: &str) -> Result<Inode, BtrfsError> {
        if let Some(inode) = self.paths.get(canon) {
            return Ok(*inode);
        }
        let inode = self.fs.resolve(Path::from(canon))?;
        self.remember(canon.to_owned(), inode);
        Ok(inode)
    }

    fn remember(&mut self, canon: String, inode: Inode) {
        if self.paths.len() >= MAX_CACHED {
            self.paths.clear();
        }
        self.paths.insert(canon, inode);
    }

    fn metadata(&mut self, inode: &Inode) -> Result<Metadata, BtrfsError> {
        let key = (inode.subvolume(), inode.objectid());
        if let Some(m) = self.metas.get(&key) {
            return Ok(*m);
        }
        let m = self.fs.metadata(inode)?;
        if self.metas.len() >= MAX_CACHED {
            self.metas.clear();
        }
        self.metas.insert(key, m);
        Ok(m)
    }
}

/// A btrfs subvolume on a disk region.
pub struct BtrfsFs {
    fs: Mutex<Inner>,
    last_error: LastError,
    subvol_id: u64,
    log_pending: bool,
}

impl std::fmt::Debug for BtrfsFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtrfsFs").field("subvol_id", &self.subvol_id).finish_non_exhaustive()
    }
}

/// Where an error arose, for the wording of unsupported profiles.
#[derive(Clone, Copy)]
enum Ctx {
    /// Superblock, chunk, root and directory trees.
    Metadata,
    /// File contents.
    Data,
}

/// Load the filesystem on `region` and open `subvol` as its root.
pub fn load(region: Region, subvol: Subvol) -> Result<BtrfsFs, FsError> {
    BtrfsFs::load(region, subvol)
}

impl BtrfsFs {
    /// Read the primary superblock and the chunk tree, then open `subvol`.
    pub fn load(region: Region, subvol: Subvol) -> Result<Self, FsError> {
        let size = region.len();
        let log_pending = {
            let mut b = [0u8; 8];
            region.read_exact_at(PRIMARY_SUPERBLOCK + LOG_ROOT_OFFSET, &mut b).is_ok() && u64::from_le_bytes(b) != 0
        };
        let last_error = LastError::default();
        let reader = RegionReader { region, last_error: Arc::clone(&last_error) };
        let (fs, what) = match &subvol {
            Subvol::Default => (Btrfs::open(reader, size), "/".to_owned()),
            Subvol::Id(id) => (Btrfs::open_subvol_id(reader, size, *id), format!("subvolid={id}")),
            Subvol::Path(p) => {
                let abs = if p.starts_with('/') { p.clone() } else { format!("/{p}") };
                let path = Path::new(abs.as_bytes()).ok_or_else(|| FsError::NotFound { path: abs.clone() })?;
                (Btrfs::open_subvol_path(reader, size, path), format!("subvol={p}"))
            }
        };
        let fs = fs.map_err(|e| map_err(&what, e, take_last(&last_error), Ctx::Metadata))?;
        let subvol_id = fs.subvolume();
        if log_pending {
            tracing::warn!(
                subvol_id,
                "btrfs log tree present (fsync'ed changes not yet committed): not replayed, the committed state is read"
            );
        }
        let inner = Inner { fs, paths: HashMap::new(), metas: HashMap::new() };
        Ok(BtrfsFs { fs: Mutex::new(inner), last_error, subvol_id, log_pending })
    }

    /// Id of the subvolume presented as `/` (5 is the top level).
    #[must_use]
    pub fn subvolume_id(&self) -> u64 {
        self.subvol_id
    }

    /// True when the superblock names a log tree: changes fsync'ed after the last transaction
    /// commit that the kernel would replay at a read-write mount and this reader does not see.
    #[must_use]
    pub fn log_tree_pending(&self) -> bool {
        self.log_pending
    }

    fn lock(&self, path: &str) -> Result<MutexGuard<'_, Inner>, FsError> {
        self.fs.lock().map_err(|_| FsError::Io {
            path: path.to_owned(),
            reason: "btrfs reader poisoned by an earlier panic".into(),
        })
    }

    /// Map a crate error met while working on `path`.
    fn err(&self, path: &str, e: BtrfsError, ctx: Ctx) -> FsError {
        map_err(path, e, take_last(&self.last_error), ctx)
    }

    /// Resolve `path` inside the subvolume; with `follow_last` false a final symlink is not
    /// followed.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Resolved, FsError> {
        let mut guard = self.lock(path)?;
        let fs = &mut *guard;
        let err = |e| self.err(path, e, Ctx::Metadata);

        // Fast path: a path without `..` that the crate resolves literally went through
        // directories only (the crate's lookup of a name under a symlink or file finds nothing,
        // since only directories have directory items).
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        if !comps.contains(&"..") {
            let canon = canonical(&comps);
            match fs.lookup(&canon) {
                Ok(inode) => {
                    let meta = fs.metadata(&inode).map_err(err)?;
                    if !(follow_last && meta.is_symlink()) {
                        return Ok(Resolved { canon, inode, meta });
                    }
                }
                Err(BtrfsError::NotFound) => {}
                Err(e) => return Err(err(e)),
            }
        }

        // Component by component, expanding symlinks.
        let mut pending: Vec<String> = comps.iter().rev().map(|s| (*s).to_owned()).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut links = 0usize;
        let root = fs.lookup("/").map_err(err)?;
        let mut current = Resolved { canon: "/".to_owned(), inode: root, meta: fs.metadata(&root).map_err(err)? };
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    // `file/..` is ENOTDIR for the kernel, as is any name under a file.
                    if !current.meta.is_dir() {
                        return Err(FsError::NotADir { path: path.to_owned() });
                    }
                    resolved.pop();
                    let canon = canonical(&resolved);
                    let inode = fs.lookup(&canon).map_err(err)?;
                    current = Resolved { meta: fs.metadata(&inode).map_err(err)?, canon, inode };
                    continue;
                }
                _ => {}
            }
            if !current.meta.is_dir() {
                return Err(FsError::NotADir { path: path.to_owned() });
            }
            resolved.push(c);
            let canon = canonical(&resolved);
            let inode = fs.lookup(&canon).map_err(err)?;
            let meta = fs.metadata(&inode).map_err(err)?;
            let is_last = pending.is_empty();
            if meta.is_symlink() && (!is_last || follow_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FsError::SymlinkLoop { path: path.to_owned() });
                }
                let target = fs.fs.read_link(Path::from(canon.as_str())).map_err(err)?;
                let target = String::from_utf8_lossy(&target).into_owned();
                let rest_len: usize = pending.iter().map(|s| s.len() + 1).sum();
                if target.len().saturating_add(rest_len) > MAX_PATH_LEN {
                    return Err(FsError::SymlinkLoop { path: path.to_owned() });
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').filter(|s| !s.is_empty()).rev().map(str::to_owned));
                // The symlink's parent is a directory (it was looked up in it).
                let parent = canonical(&resolved);
                let inode = fs.lookup(&parent).map_err(err)?;
                current = Resolved { meta: fs.metadata(&inode).map_err(err)?, canon: parent, inode };
            } else {
                current = Resolved { canon, inode, meta };
            }
        }
        Ok(current)
    }
}

/// `/a/b` from components (`/` for none).
fn canonical<S: AsRef<str>>(comps: &[S]) -> String {
    let mut s = String::with_capacity(comps.iter().map(|c| c.as_ref().len() + 1).sum::<usize>().max(1));
    for c in comps {
        s.push('/');
        s.push_str(c.as_ref());
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

fn profile_name(token: &str) -> &str {
    match token {
        "prof_raid0" => "RAID0",
        "prof_raid10" => "RAID10",
        "prof_raid5" => "RAID5",
        "prof_raid6" => "RAID6",
        "prof_other_device" => "a chunk with no copy on this device (multi-device filesystem)",
        "prof_no_stripes" => "a chunk with no stripes",
        _ => "an unknown",
    }
}

fn map_err(path: &str, e: BtrfsError, reader_error: Option<String>, ctx: Ctx) -> FsError {
    let path = path.to_owned();
    let corrupt = |reason: String| FsError::Corrupt { path: path.clone(), reason };
    match e {
        BtrfsError::NotFound => FsError::NotFound { path },
        BtrfsError::NotARegularFile => FsError::NotAFile { path },
        BtrfsError::NotASymlink => corrupt("btrfs: expected a symlink".into()),
        BtrfsError::NotASubvolume => corrupt("btrfs: not a subvolume root (a subvol= mount refuses it too)".into()),
        BtrfsError::Io { token, offset } => {
            let detail = reader_error.map(|r| format!(": {r}")).unwrap_or_default();
            let what = match token {
                "extent_read" => "file extent",
                "tree_block_read" => "tree block",
                other => other,
            };
            FsError::Io { path, reason: format!("btrfs {what} read at device offset {offset} failed{detail}") }
        }
        BtrfsError::BadSuperblock(SuperblockReason::BadCsum) => {
            corrupt("btrfs primary superblock checksum mismatch (the kernel refuses to mount it too)".into())
        }
        BtrfsError::BadSuperblock(r) => corrupt(format!("btrfs primary superblock unusable: {r:?}")),
        BtrfsError::UnsupportedFeature(t) => corrupt(format!("btrfs feature {t}: not supported")),
        BtrfsError::UnsupportedProfile(t) => {
            let kind = match ctx {
                Ctx::Metadata => "metadata",
                Ctx::Data => "data",
            };
            match t {
                "prof_raid0" | "prof_raid10" | "prof_raid5" | "prof_raid6" => {
                    corrupt(format!("btrfs {} {kind} profile: not supported", profile_name(t)))
                }
                other => corrupt(format!("btrfs {kind}: {} profile: not supported", profile_name(other))),
            }
        }
        BtrfsError::UnsupportedChecksum(t) => corrupt(format!("btrfs checksum type {t}: not supported")),
        BtrfsError::CsumMismatch { logical } => corrupt(format!("btrfs tree block at {logical:#x}: checksum mismatch")),
        BtrfsError::CorruptBtree { token, logical } => corrupt(format!("btrfs b-tree at {logical:#x}: {token}")),
        BtrfsError::BadCompression { algorithm } => corrupt(format!("btrfs compressed extent: {algorithm}")),
        BtrfsError::OutOfMemory { token } => corrupt(format!("btrfs: allocation refused ({token})")),
    }
}

fn kind_of_meta(m: &Metadata) -> FileKind {
    if m.is_file() {
        FileKind::File
    } else if m.is_dir() {
        FileKind::Dir
    } else if m.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    }
}

/// Directory entry type bytes (`BTRFS_FT_*`): 1 regular file, 2 directory, 7 symlink.
fn kind_of_byte(b: u8) -> FileKind {
    match b {
        1 => FileKind::File,
        2 => FileKind::Dir,
        7 => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

fn meta_of(m: &Metadata) -> Meta {
    Meta { kind: kind_of_meta(m), len: m.size, mode: m.mode & 0o7777, uid: m.uid, gid: m.gid }
}

/// One open regular file: reads stream through the crate's `read_file_at`, which decodes only
/// the extents overlapping the request (at most one compressed extent, <= 16 MiB, in memory).
struct BtrfsFile<'a> {
    fs: &'a BtrfsFs,
    inode: Inode,
    len: u64,
    path: String,
}

impl FileRead for BtrfsFile<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(FsError::Io {
                path: self.path.clone(),
                reason: format!("read of {} bytes at {offset} past the end ({} bytes)", buf.len(), self.len),
            });
        }
        let mut fs = self.fs.lock(&self.path)?;
        let mut done = 0usize;
        while done < buf.len() {
            let rest = buf.get_mut(done..).unwrap_or_default();
            let at = offset + done as u64;
            let n = fs.fs.read_file_at(&self.inode, at, rest).map_err(|e| self.fs.err(&self.path, e, Ctx::Data))?;
            if n == 0 {
                return Err(FsError::Corrupt {
                    path: self.path.clone(),
                    reason: "file data ends before its size".into(),
                });
            }
            done += n;
        }
        Ok(())
    }
}

impl RootFs for BtrfsFs {
    fn kind(&self) -> &'static str {
        "btrfs"
    }
    fn metadata(&self, path: &str) -> Result<Meta, FsError> {
        self.resolve(path, true).map(|r| meta_of(&r.meta))
    }
    fn symlink_metadata(&self, path: &str) -> Result<Meta, FsError> {
        self.resolve(path, false).map(|r| meta_of(&r.meta))
    }
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let dir = self.resolve(path, true)?;
        if !dir.meta.is_dir() {
            return Err(FsError::NotADir { path: path.to_owned() });
        }
        let mut fs = self.lock(path)?;
        // The crate lists the whole directory before the count can be checked: its memory is
        // proportional to the directory's own on-disk items (about 80 bytes per entry of at
        // least 56 on disk), so bounded by the metadata the image holds.
        // The crate lists by path, looked up literally: the symlink-free spelling.
        let entries = fs.fs.read_dir(Path::from(dir.canon.as_str())).map_err(|e| self.err(path, e, Ctx::Metadata))?;
        if entries.len() > MAX_DIR_ENTRIES {
            return Err(FsError::TooManyEntries { path: path.to_owned(), limit: MAX_DIR_ENTRIES });
        }
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let Ok(name) = String::from_utf8(e.name) else { continue };
            if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                continue;
            }
            // Callers look the entries up next (a walk, a package reader's listing).
            fs.remember(super::join(&dir.canon, &name), e.inode);
            out.push(DirEntry { name, kind: kind_of_byte(e.kind_byte) });
        }
        drop(fs);
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let link = self.resolve(path, false)?;
        if !link.meta.is_symlink() {
            return Err(FsError::Io { path: path.to_owned(), reason: "not a symlink".into() });
        }
        let mut fs = self.lock(path)?;
        let target = fs.fs.read_link(Path::from(link.canon.as_str())).map_err(|e| self.err(path, e, Ctx::Metadata))?;
        Ok(String::from_utf8_lossy(&target).into_owned())
    }
    fn open(&self, path: &str) -> Result<Box<dyn FileRead + '_>, FsError> {
        let file = self.resolve(path, true)?;
        if !file.meta.is_file() {
            return Err(FsError::NotAFile { path: path.to_owned() });
        }
        Ok(Box::new(BtrfsFile { fs: self, inode: file.inode, len: file.meta.size, path: path.to_owned() }))
    }
}
