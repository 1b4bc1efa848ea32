//! In-memory replay of dirty XFS logs, with the kernel as the oracle.
//!
//! Dirty logs are made by the kernel: `mkfs.xfs`, a read-write loop mount, some work, then
//! `xfs_io -x -c 'shutdown -f'` (the log is flushed, the metadata is not written back) and an
//! unmount. The oracle is the kernel's own recovery: a copy of the image mounted read-write (which
//! replays the log) and unmounted. Our replay on the untouched original must give the same bytes
//! for every sector outside the log (the superblock's free-space counters and LSN aside, which the
//! kernel recomputes at mount) and, read through our XFS reader, the same tree.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use scanner_ami::disk::{BlockSource, Disk, MemDisk, Region};
use scanner_ami::fs::xfs::XfsFs;
use scanner_ami::fs::xfs::log::{self, LogError, Overlay};

use crate::difftree::{LoopMount, assert_same, walk_dir, walk_rootfs};
use crate::util::{blank_image, run, sh};

/// A filesystem image left with a dirty log, in its own temporary directory.
struct Dirty {
    dir: tempfile::TempDir,
    img: PathBuf,
}

impl Dirty {
    /// `mkfs.xfs MKFS` on a `mib` MiB image, mount it read-write, run `script` in it (`$M` is the
    /// mount point), then shut the filesystem down with its log flushed and unmount it.
    fn make(mib: u64, mkfs: &str, script: &str) -> Dirty {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = blank_image(dir.path(), "dirty.img", mib);
        sh(&format!("mkfs.xfs -q -f {mkfs} '{}'", img.display()));
        let m = dir.path().join("m");
        std::fs::create_dir(&m).expect("mount point");
        sh(&format!(
            "M='{m}'; mount -o loop '{img}' \"$M\"; trap 'cd /; umount \"$M\" || umount -l \"$M\"' EXIT; cd \"$M\"\n\
             {script}\n\
             cd /; xfs_io -x -c 'shutdown -f' \"$M\"",
            m = m.display(),
            img = img.display()
        ));
        Dirty { dir, img }
    }

    /// A copy of the image as it is now.
    fn copy(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        run(Command::new("cp").arg("--sparse=always").arg(&self.img).arg(&p));
        p
    }

    /// A copy the kernel recovered: mounted read-write (log replayed) and unmounted.
    fn kernel_recovered(&self) -> PathBuf {
        let p = self.copy("kernel.img");
        let m = self.dir.path().join("km");
        std::fs::create_dir_all(&m).expect("mount point");
        sh(&format!("mount -o loop '{}' '{}' && umount '{}'", p.display(), m.display(), m.display()));
        p
    }
}

/// Byte range of the log inside the image, from `xfs_db` (the oracle of the geometry).
fn log_range(img: &Path) -> (u64, u64) {
    let out = run(Command::new("xfs_db").arg("-r").args(["-c", "sb", "-c", "p"]).arg(img));
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("xfs_db: no {name}"))
            .trim()
            .parse()
            .expect("number")
    };
    let (bs, agblocks, agblklog) = (field("blocksize"), field("agblocks"), field("agblklog"));
    let logstart = field("logstart");
    let byte = ((logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1))) * bs;
    (byte, byte + field("logblocks") * bs)
}

fn superblock(img: &Path) -> Vec<u8> {
    let mut sb = vec![0u8; 512];
    std::fs::File::open(img).expect("image").read_exact_at(&mut sb, 0).expect("superblock");
    sb
}

/// Our replay of the log of `img`, with the disk's read counters.
fn replay(img: &Path) -> (Result<Overlay, LogError>, u64, u64) {
    let disk = Disk::open(img).expect("open image");
    let stats = disk.stats();
    let sb = superblock(img);
    let r = log::recover(&disk, &sb);
    (r, stats.calls(), stats.bytes())
}

/// Superblock bytes the kernel recomputes or restamps at mount and unmount: the inode and
/// free-space counters (`sb_icount`..`sb_frextents`), the CRC and the LSN.
fn sb_volatile(i: usize) -> bool {
    (128..160).contains(&i) || (224..228).contains(&i) || (240..248).contains(&i)
}

/// Compare, sector by sector, the original image patched by `ov` with the kernel's recovery of
/// it, outside the log. Returns (sectors the kernel changed, sectors we changed); panics listing
/// the sectors that differ.
fn same_bytes_as_kernel(orig: &Path, kernel: &Path, ov: &Overlay) -> (usize, usize) {
    let (log_lo, log_hi) = log_range(orig);
    let (mut a, mut b) = (std::fs::File::open(orig).expect("orig"), std::fs::File::open(kernel).expect("kernel"));
    let len = a.metadata().expect("len").len();
    let mut off = 0u64;
    let (mut bufa, mut bufb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let (mut kernel_changed, mut bad) = (0usize, Vec::new());
    while off < len {
        let n = (len - off).min(bufa.len() as u64) as usize;
        a.read_exact(&mut bufa[..n]).expect("read orig");
        b.read_exact(&mut bufb[..n]).expect("read kernel");
        let before = bufa[..n].to_vec();
        ov.patch(off, &mut bufa[..n]);
        for s in 0..n / 512 {
            let at = off + (s * 512) as u64;
            if (log_lo..log_hi).contains(&at) {
                continue;
            }
            let (ours, theirs, old) = (&bufa[s * 512..][..512], &bufb[s * 512..][..512], &before[s * 512..][..512]);
            let differs = |x: &[u8], y: &[u8]| (0..512).any(|i| x[i] != y[i] && !(at == 0 && sb_volatile(i)));
            if differs(old, theirs) {
                kernel_changed += 1;
            }
            if differs(ours, theirs) {
                bad.push(at / 512);
            }
        }
        off += n as u64;
    }
    assert!(
        bad.is_empty(),
        "{} sector(s) differ from the kernel's recovery (of {kernel_changed} it changed, {} we changed); first: {:?}",
        bad.len(),
        ov.len(),
        &bad[..bad.len().min(20)]
    );
    (kernel_changed, ov.len())
}

/// The whole differential on one dirty image: the log is really dirty (the tree without recovery
/// differs from the recovered one), our replay changes the same sectors as the kernel's, and our
/// reader shows the kernel's recovered tree. Returns (kernel-changed sectors, our sectors, entries).
fn check_dirty(d: &Dirty, what: &str) -> (usize, usize, usize) {
    let kernel = d.kernel_recovered();
    let (ov, calls, bytes) = replay(&d.img);
    let ov = ov.unwrap_or_else(|e| panic!("{what}: replay failed: {e}"));
    assert!(!ov.is_empty(), "{what}: the log replayed to nothing");
    let (kernel_changed, ours) = same_bytes_as_kernel(&d.img, &kernel, &ov);
    assert!(kernel_changed > 0, "{what}: the kernel's recovery changed nothing: the log was not dirty");

    let recovered = LoopMount::new(&kernel, "xfs", 0, "");
    let kernel_tree = walk_dir(&recovered.path());
    let stale = LoopMount::new(&d.img, "xfs", 0, "norecovery,nouuid");
    let stale_tree = walk_dir(&stale.path());
    assert_ne!(stale_tree, kernel_tree, "{what}: without recovery the tree is the same: the log was not dirty");
    drop(stale);

    let fs = XfsFs::load(Region::whole(Arc::new(Disk::open(&d.img).expect("open")))).expect("load");
    let ours_tree = walk_rootfs(&fs);
    assert_same(&kernel_tree, &ours_tree, what);
    eprintln!(
        "{what}: kernel changed {kernel_changed} sectors outside the log, we replayed {ours} sectors \
         ({calls} reads, {bytes} bytes); {} entries compared",
        kernel_tree.len()
    );
    (kernel_changed, ours, kernel_tree.len())
}

/// Work that leaves committed metadata in the log: files, directories, inline and remote
/// symlinks, owners and modes, deletions and renames, part of it synced.
const WORK: &str = r#"
mkdir -p d1/d2 d3
for i in $(seq 1 60); do echo "file $i" > d1/f$i; done
ln -s /etc/passwd d1/short-link
ln -s "$(printf 'x%.0s' $(seq 1 700))" d1/long-link
dd if=/dev/urandom of=d3/big bs=64k count=20 status=none
sync
for i in $(seq 1 40); do echo "second $i" > d1/d2/g$i; done
chown 1000:1001 d1/f1 d1/d2
chmod 4755 d1/f2
chmod 1777 d3
rm d1/f3 d1/f5
mv d1/f4 d1/d2/moved
mkdir d1/d2/d4
echo tail > d1/d2/d4/last
"#;

#[test]
fn xfs_log_v5_replay_matches_the_kernel() {
    let d = Dirty::make(320, "", WORK);
    check_dirty(&d, "v5 dirty log");
}
