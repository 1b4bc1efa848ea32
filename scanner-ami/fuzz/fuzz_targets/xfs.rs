//! The XFS reader (`XfsFs::load` and a bounded walk: metadata, directories, symlinks, file data)
//! on arbitrary bytes.
//!
//! XFS needs at least a 300 MB device, far too big for a fuzz input, so the input is the
//! device's first bytes and the rest reads as zeros up to 1 GiB ([`ZeroTail`]). Seeds: the
//! first 256 KiB of a small populated image (AG 0 holds the superblock, the root inode chunk
//! and, for files created in the root directory, their blocks), v5 and v4 (`-m crc=0`: no
//! CRCs, so mutations reach deeper), e.g.
//! `truncate -s 320M i && mkfs.xfs -q -m crc=0 -p PROTO i && head -c 262144 i > corpus/xfs/v4`
//! (run with `-max_len=262144`).
#![no_main]
use std::io;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use scanner_ami::disk::{BlockSource, Region};
use scanner_ami::fs::xfs::XfsFs;
use scanner_ami::fs::{FileKind, RootFs, join};

/// The fuzz input, then zeros, as a 1 GiB device.
#[derive(Debug)]
struct ZeroTail(Vec<u8>);

const DEVICE_LEN: u64 = 1 << 30;

impl BlockSource for ZeroTail {
    fn len(&self) -> u64 {
        DEVICE_LEN
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= DEVICE_LEN);
        if end.is_none() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "past the end"));
        }
        buf.fill(0);
        if let Ok(start) = usize::try_from(offset)
            && let Some(src) = self.0.get(start..)
        {
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(fs) = XfsFs::load(Region::whole(Arc::new(ZeroTail(data.to_vec())))) else { return };
    let _ = (fs.uuid(), fs.label());
    let mut stack = vec!["/".to_owned()];
    let mut seen = 0usize;
    let mut buf = vec![0u8; 65536];
    while let Some(path) = stack.pop() {
        seen += 1;
        if seen > 2000 {
            break;
        }
        let _ = fs.metadata(&path);
        let Ok(meta) = fs.symlink_metadata(&path) else { continue };
        match meta.kind {
            FileKind::Dir => {
                if let Ok(entries) = fs.read_dir(&path) {
                    for e in entries.into_iter().take(200) {
                        stack.push(join(&path, &e.name));
                    }
                }
            }
            FileKind::File => {
                if let Ok(mut f) = fs.open(&path) {
                    let n = usize::try_from(f.len().min(buf.len() as u64)).unwrap_or(0);
                    let _ = f.read_exact_at(0, &mut buf[..n]);
                    if f.len() > 8192 {
                        let _ = f.read_exact_at(f.len() - 4096, &mut buf[..4096]);
                    }
                }
            }
            FileKind::Symlink => {
                let _ = fs.read_link(&path);
            }
            FileKind::Other => {}
        }
    }
    let _ = fs.stat("/no/such/../path");
});
