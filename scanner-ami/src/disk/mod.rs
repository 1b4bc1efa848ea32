//! Raw disks, opened read-only: the [`BlockSource`] abstraction (an image file or block device,
//! and bounded [`Region`]s of it), the partition-table readers ([`gpt`], [`mbr`]), the
//! filesystem-magic prober ([`probe`]) and LVM2 logical volumes ([`lvm`]).
//!
//! Every read is bounds-checked against the source's length and counted in [`ReadStats`], so a
//! scan can report exactly how many bytes of the disk it touched.

pub mod gpt;
pub mod lvm;
pub mod mbr;
pub mod probe;
pub mod table;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of what was read from the underlying disk.
#[derive(Debug, Default)]
pub struct ReadStats {
    bytes: AtomicU64,
    calls: AtomicU64,
}

impl ReadStats {
    /// Bytes read from the disk so far.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    /// Read calls issued so far.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
    fn record(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

/// Random read-only access to a disk or a part of one.
pub trait BlockSource: Send + Sync + std::fmt::Debug {
    /// Size in bytes.
    fn len(&self) -> u64;
    /// True when the source has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` from `offset`; an error if the source ends first.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// An image file or block device opened read-only.
#[derive(Debug)]
pub struct Disk {
    file: File,
    len: u64,
    path: PathBuf,
    stats: Arc<ReadStats>,
}

/// Errors opening a disk.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("cannot open {path} read-only: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot determine the size of {path}: {source}")]
    Size { path: PathBuf, source: io::Error },
    #[error("{path} is not a regular file or block device")]
    NotADisk { path: PathBuf },
}

impl Disk {
    /// Open `path` (a regular file or a block device) read-only.
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        use std::io::Seek;
        use std::os::unix::fs::FileTypeExt;
        let mut file = File::open(path).map_err(|source| DiskError::Open { path: path.to_owned(), source })?;
        let meta = file.metadata().map_err(|source| DiskError::Size { path: path.to_owned(), source })?;
        let ft = meta.file_type();
        let len = if ft.is_file() {
            meta.len()
        } else if ft.is_block_device() {
            // A block device's st_size is 0; its size is where SEEK_END lands.
            file.seek(io::SeekFrom::End(0)).map_err(|source| DiskError::Size { path: path.to_owned(), source })?
        } else {
            return Err(DiskError::NotADisk { path: path.to_owned() });
        };
        Ok(Disk { file, len, path: path.to_owned(), stats: Arc::new(ReadStats::default()) })
    }

    /// The path the disk was opened from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shared read counters of this disk.
    #[must_use]
    pub fn stats(&self) -> Arc<ReadStats> {
        Arc::clone(&self.stats)
    }
}

impl BlockSource for Disk {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(self.len, offset, buf.len())?;
        self.stats.record(buf.len());
        self.file.read_exact_at(buf, offset)
    }
}

/// An in-memory disk, for tests and fuzzing.
#[derive(Debug, Default)]
pub struct MemDisk(pub Vec<u8>);

impl BlockSource for MemDisk {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(self.len(), offset, buf.len())?;
        let start = usize::try_from(offset).map_err(|_| out_of_range(offset, buf.len(), self.len()))?;
        let end = start + buf.len();
        let src = self.0.get(start..end).ok_or_else(|| out_of_range(offset, buf.len(), self.len()))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn out_of_range(offset: u64, n: usize, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("read of {n} bytes at offset {offset} past the end ({len} bytes)"),
    )
}

fn check_bounds(len: u64, offset: u64, n: usize) -> io::Result<()> {
    match offset.checked_add(n as u64) {
        Some(end) if end <= len => Ok(()),
        _ => Err(out_of_range(offset, n, len)),
    }
}

/// A bounded window `[start, start + len)` of another source (a partition, or a logical volume).
#[derive(Debug, Clone)]
pub struct Region {
    src: Arc<dyn BlockSource>,
    start: u64,
    len: u64,
}

impl Region {
    /// A window of `src`; fails if it does not lie inside `src`.
    pub fn new(src: Arc<dyn BlockSource>, start: u64, len: u64) -> io::Result<Self> {
        match start.checked_add(len) {
            Some(end) if end <= src.len() => Ok(Region { src, start, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("region {start}+{len} lies past the end of the disk ({} bytes)", src.len()),
            )),
        }
    }

    /// The whole of `src`.
    #[must_use]
    pub fn whole(src: Arc<dyn BlockSource>) -> Self {
        let len = src.len();
        Region { src, start: 0, len }
    }

    /// Byte offset of the window in the underlying source.
    #[must_use]
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Read up to `n` bytes at `offset`, shortened at the end of the region (for probing).
    #[must_use]
    pub fn read_prefix(&self, offset: u64, n: usize) -> Option<Vec<u8>> {
        let avail = self.len.checked_sub(offset)?;
        let n = usize::try_from(avail.min(n as u64)).ok()?;
        let mut buf = vec![0; n];
        self.read_exact_at(offset, &mut buf).ok()?;
        Some(buf)
    }
}

impl BlockSource for Region {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_bounds(self.len, offset, buf.len())?;
        let abs = self.start.checked_add(offset).ok_or_else(|| out_of_range(offset, buf.len(), self.len))?;
        self.src.read_exact_at(abs, buf)
    }
}

/// Little-endian field readers over a byte slice that return `None` instead of panicking.
pub(crate) mod le {
    pub fn u16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
    }
    pub fn u32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
    }
    pub fn u64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_le_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
    }
    pub fn bytes(b: &[u8], off: usize, n: usize) -> Option<&[u8]> {
        b.get(off..off.checked_add(n)?)
    }
}
