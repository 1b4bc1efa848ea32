//! btrfs through lambutter on an arbitrary in-memory image: load (default subvolume, then the top
//! level by id), then a bounded walk (directory listings, metadata, symlink targets and every
//! byte of up to a few files), as a scan would do.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use scanner_ami::disk::{MemDisk, Region};
use scanner_ami::fs::btrfs::{self, Subvol};
use scanner_ami::fs::{FileKind, RootFs};

/// Entries visited per image: enough to reach nested directories of a seed image, small enough
/// to keep an execution fast.
const MAX_VISITS: usize = 2_000;
/// Bytes read per file.
const MAX_READ: u64 = 1 << 20;

fn walk(fs: &dyn RootFs) {
    let mut stack = vec!["/".to_owned()];
    let mut visits = 0;
    while let Some(path) = stack.pop() {
        visits += 1;
        if visits > MAX_VISITS {
            return;
        }
        let _ = fs.metadata(&path);
        let Ok(meta) = fs.symlink_metadata(&path) else { continue };
        match meta.kind {
            FileKind::Dir => {
                if let Ok(entries) = fs.read_dir(&path) {
                    stack.extend(entries.iter().map(|e| scanner_ami::fs::join(&path, &e.name)));
                }
            }
            FileKind::File => {
                if let Ok(mut f) = fs.open(&path) {
                    let len = f.len().min(MAX_READ);
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut off = 0;
                    while off < len {
                        let n = (len - off).min(buf.len() as u64) as usize;
                        if f.read_exact_at(off, &mut buf[..n]).is_err() {
                            break;
                        }
                        off += n as u64;
                    }
                }
            }
            FileKind::Symlink => {
                let _ = fs.read_link(&path);
            }
            FileKind::Other => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let region = Region::whole(Arc::new(MemDisk(data.to_vec())));
    for subvol in [Subvol::Default, Subvol::Id(5)] {
        if let Ok(fs) = btrfs::load(region.clone(), subvol) {
            walk(&fs);
        }
    }
});
