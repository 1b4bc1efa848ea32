//! In-memory replay of a dirty XFS log (interface placeholder, replaced by the real recovery).
//!
//! An EBS snapshot is crash-consistent, so its XFS log routinely holds committed transactions that
//! were never written to their home blocks. [`recover`] finds the log's head and tail and replays
//! the committed changes into an [`Overlay`] of 512-byte sectors; the reader patches every read
//! through it. Nothing is ever written to the device.

use std::collections::BTreeMap;

use crate::disk::BlockSource;

/// XFS's basic block: the log addresses everything in 512-byte units (`BBSIZE`).
pub const BBSIZE: usize = 512;

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

/// Replay the log of the filesystem on `dev` (the whole filesystem; `sb` is its primary
/// superblock sector, already checked by the caller) into an overlay.
///
/// Placeholder: assumes a clean log. Replaced by the real recovery.
pub fn recover(_dev: &dyn BlockSource, _sb: &[u8]) -> Result<Overlay, LogError> {
    Ok(Overlay::default())
}
