//! btrfs through `lambutter` ([`scanner_ami::fs::btrfs`]) against the kernel: images written by
//! the kernel itself through a read-write loop mount (subvolumes, each compression, inline
//! extents, holes and prealloc, owners, modes, symlinks), then mounted read-only and walked; our
//! reader must show the same tree, byte for byte. Also packages through the whole scan, and
//! hostile images (bad superblock, chunk-tree loop, corrupt chunk item, extent past the device,
//! a decompression bomb).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use scanner_ami::disk::{Disk, Region};
use scanner_ami::fs::btrfs::{self, BtrfsFs, Subvol};
use scanner_ami::fs::dir::DirFs;
use scanner_ami::fs::{FsError, RootFs};

use crate::difftree::{Entry, LoopMount, assert_same, walk_dir, walk_rootfs};
use crate::util::{run, sh};

/// Size of the test images: above mkfs.btrfs's minimum for a single device with DUP metadata
/// (about 114 MiB in btrfs-progs 6.2) and past the 64 MiB superblock copy. Sparse files.
const IMAGE_MIB: u64 = 160;

fn mkfs(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let img = dir.join(name);
    std::fs::File::create(&img).expect("image").set_len(IMAGE_MIB << 20).expect("size");
    run(Command::new("mkfs.btrfs").arg("-q").args(extra).arg(&img));
    img
}

/// A read-write loop mount used to build an image with the kernel; unmounted on drop.
struct RwMount {
    dir: tempfile::TempDir,
}

impl RwMount {
    fn new(img: &Path, opts: &str) -> Self {
        let dir = tempfile::tempdir().expect("mount point");
        let o = if opts.is_empty() { "loop".to_owned() } else { format!("loop,{opts}") };
        run(Command::new("mount").args(["-t", "btrfs", "-o", &o]).arg(img).arg(dir.path()));
        RwMount { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    /// Run a shell script with the mount as its working directory.
    fn sh(&self, script: &str) -> String {
        sh(&format!("cd '{}'\n{script}", self.path().display()))
    }
}

impl Drop for RwMount {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(self.dir.path()).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}

/// Everything a root tree of the matrix holds, written by the kernel in the current directory:
/// inline extents (small files, compressed or not), large compressible and incompressible files,
/// extents split by later overwrites, holes (NO_HOLES is the mkfs default), prealloc extents
/// (inside and beyond the file size), owners, modes, set-id bits, symlinks, a hard link, a FIFO,
/// a directory spanning many leaves and a 255-byte name.
const POPULATE: &str = r#"
set +o pipefail  # `yes | head` ends with SIGPIPE
mkdir -p etc usr/bin var/lib/dpkg tmp d/deep/er/est/dir many
printf 'ID=test\nVERSION_ID="1"\n' > etc/os-release
echo small > etc/small
head -c 2048 /dev/urandom > etc/rand2048
head -c 2049 /dev/urandom > etc/rand2049
head -c 3000 /dev/zero | tr '\0' a > etc/a3000
head -c 3000000 /dev/urandom > usr/bin/rand
yes 'a compressible line of text' | head -c 5000000 > usr/bin/comp
seq 1 300000 > var/seq
truncate -s 10M var/allhole
dd if=/dev/urandom of=var/sparse bs=4K count=2 seek=100 conv=notrunc status=none
truncate -s 2M var/sparse
fallocate -l 1M var/prealloc
fallocate -l 256K var/prealloc_part
printf written | dd of=var/prealloc_part bs=1 seek=70000 conv=notrunc status=none
printf abc > var/keepsize && fallocate --keep-size -o 4096 -l 1M var/keepsize
head -c 1M /dev/urandom > var/punched && fallocate -p -o 8192 -l 65536 var/punched
yes bookend | head -c 1M > var/bookend
sync
dd if=/dev/urandom of=var/bookend bs=4K seek=10 count=3 conv=notrunc status=none
yes middle | dd of=usr/bin/comp bs=4K seek=300 count=5 iflag=fullblock conv=notrunc status=none
sync
echo secret > etc/secret && chown 123:456 etc/secret && chmod 0600 etc/secret
chown 1000:1001 etc/small
chmod 4755 usr/bin/rand && chmod 2711 usr/bin/comp && chmod 1777 tmp && chmod 0750 d/deep
chown 0:42 d/deep
ln -s small etc/rel
ln -s /etc/small etc/abs
ln -s nowhere etc/dangling
ln -s bin usr/binlink
ln -s ../../../../../etc/small d/escape
ln -s loop2 loop1 && ln -s loop1 loop2
ln -s "$(printf 'x/%.0s' $(seq 1 500))end" etc/longlink
ln etc/os-release etc/hardlink
mkfifo etc/fifo
for i in $(seq 1 1500); do : > many/file-with-a-longish-name-$i; done
: > "d/$(head -c 255 /dev/zero | tr '\0' n)"
echo deep > d/deep/er/est/dir/leaf
"#;

/// The disk image as a whole region.
fn region(img: &Path) -> Region {
    Region::whole(Arc::new(Disk::open(img).expect("open image")))
}

fn load(img: &Path, subvol: Subvol) -> BtrfsFs {
    btrfs::load(region(img), subvol.clone()).unwrap_or_else(|e| panic!("load {} {subvol:?}: {e}", img.display()))
}

/// Kernel read-only mount with `opts` vs our reader at `subvol`: zero differences; the number of
/// entries compared.
fn compare(img: &Path, opts: &str, subvol: Subvol, what: &str) -> (usize, BTreeMap<String, Entry>) {
    let kernel = {
        let m = LoopMount::new(img, "btrfs", 0, opts);
        walk_dir(&m.path())
    };
    let fs = load(img, subvol);
    let ours = walk_rootfs(&fs);
    assert_same(&kernel, &ours, what);
    eprintln!("{what}: {} entries, zero differences", kernel.len());
    (kernel.len(), ours)
}

/// How many EXTENT_DATA items of the image use compression type `code` (1 zlib, 2 lzo, 3 zstd),
/// from btrfs-progs' own tree dump.
fn compressed_extents(img: &Path, code: u32) -> usize {
    let out = run(Command::new("btrfs").args(["inspect-internal", "dump-tree"]).arg(img));
    let needle = format!("compression {code} (");
    out.lines().filter(|l| l.contains(&needle)).count()
}

fn one_compression(name: &str, code: u32) {
    let work = tempfile::tempdir().expect("tmp");
    let img = mkfs(work.path(), "c.img", &[]);
    {
        let m = RwMount::new(&img, &format!("compress={name}"));
        m.sh(POPULATE);
    }
    let n = compressed_extents(&img, code);
    assert!(n > 10, "{name}: only {n} compressed extents written: the image does not test {name}");
    let (count, ours) = compare(&img, "", Subvol::Default, &format!("compress={name}"));
    assert!(count > 1500, "{count}");
    // The incompressible file was stored as is, the compressible one compressed (checked above);
    // both are in the walk.
    assert_eq!(ours.get("/usr/bin/rand").and_then(|e| e.size), Some(3_000_000));
    eprintln!("compress={name}: {n} compressed extents");
}

#[test]
fn zstd_image_matches_kernel() {
    one_compression("zstd", 3);
}

#[test]
fn zlib_image_matches_kernel() {
    one_compression("zlib", 1);
}

#[test]
fn lzo_image_matches_kernel() {
    one_compression("lzo", 2);
}

/// The uncompressed image: DUP metadata (mkfs's single-device default, asserted from the
/// superblock's system chunk array and the chunk tree), inline extents, holes, prealloc.
#[test]
fn uncompressed_dup_metadata_image_matches_kernel() {
    let work = tempfile::tempdir().expect("tmp");
    let img = mkfs(work.path(), "plain.img", &[]);
    let sb = run(Command::new("btrfs").args(["inspect-internal", "dump-super", "-f"]).arg(&img));
    assert!(sb.contains("type SYSTEM|DUP"), "mkfs did not make DUP system chunks:\n{sb}");
    let chunks = run(Command::new("btrfs").args(["inspect-internal", "dump-tree", "-t", "chunk"]).arg(&img));
    assert!(chunks.contains("METADATA|DUP"), "{chunks}");
    {
        let m = RwMount::new(&img, "");
        m.sh(POPULATE);
    }
    let fs_tree = run(Command::new("btrfs").args(["inspect-internal", "dump-tree", "-t", "fs"]).arg(&img));
    assert!(fs_tree.contains("inline extent data size"), "no inline extent written");
    assert!(fs_tree.contains("prealloc data disk byte"), "no prealloc extent written");
    assert!(compressed_extents(&img, 1) + compressed_extents(&img, 2) + compressed_extents(&img, 3) == 0);
    let (count, ours) = compare(&img, "", Subvol::Default, "uncompressed, DUP metadata");
    assert!(count > 1500, "{count}");
    let e = ours.get("/usr/bin/rand").expect("rand");
    assert_eq!((e.mode, e.uid, e.gid), (0o4755, 0, 0));
    let e = ours.get("/etc/secret").expect("secret");
    assert_eq!((e.mode, e.uid, e.gid), (0o600, 123, 456));
    assert_eq!(ours.get("/var/allhole").and_then(|e| e.size), Some(10 << 20));
    assert_eq!(ours.get("/var/keepsize").and_then(|e| e.size), Some(3), "prealloc beyond the size is not data");
}

/// A class of outcome, to compare our errors with the kernel's (through `DirFs` on its mount).
fn outcome<T>(r: &Result<T, FsError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(FsError::NotFound { .. }) => "not found".into(),
        Err(FsError::NotADir { .. }) => "not a dir".into(),
        // DirFs reports ENOTDIR from the host's readdir as an I/O error.
        Err(FsError::Io { reason, .. }) if reason.contains("os error 20") => "not a dir".into(),
        Err(FsError::NotAFile { .. }) => "not a file".into(),
        Err(FsError::SymlinkLoop { .. }) => "loop".into(),
        Err(e) => format!("other: {e}"),
    }
}

/// Paths through symlinks (relative, absolute, `..` after a symlink, escapes above the root, a
/// loop, a file used as a directory) resolve as the kernel's tree resolves them inside the root
/// (`DirFs` on the kernel mount: absolute links restart at the mounted root).
fn check_resolution(fs: &dyn RootFs, kernel: &DirFs, paths: &[&str]) {
    for p in paths {
        let (k, o) = (kernel.metadata(p), fs.metadata(p));
        assert_eq!(outcome(&k), outcome(&o), "metadata({p})");
        if let (Ok(k), Ok(o)) = (&k, &o) {
            assert_eq!(k, o, "metadata({p})");
        }
        let (k, o) = (kernel.symlink_metadata(p), fs.symlink_metadata(p));
        assert_eq!(outcome(&k), outcome(&o), "symlink_metadata({p})");
        if let (Ok(k), Ok(o)) = (&k, &o) {
            assert_eq!(k, o, "symlink_metadata({p})");
        }
        let (k, o) = (kernel.read_dir(p), fs.read_dir(p));
        assert_eq!(outcome(&k), outcome(&o), "read_dir({p})");
        if let (Ok(k), Ok(o)) = (&k, &o) {
            assert_eq!(k, o, "read_dir({p})");
        }
        let (k, o) = (scanner_ami::fs::read_file(kernel, p, 64 << 20), scanner_ami::fs::read_file(fs, p, 64 << 20));
        assert_eq!(outcome(&k), outcome(&o), "read_file({p})");
        if let (Ok(k), Ok(o)) = (&k, &o) {
            assert!(k == o, "read_file({p}): contents differ");
        }
    }
}

const TRICKY_PATHS: &[&str] = &[
    "/",
    "/etc/rel",
    "/etc/abs",
    "/etc/dangling",
    "/etc/longlink",
    "/usr/binlink",
    "/usr/binlink/rand",
    "/usr/binlink/../bin/comp",
    "/usr/binlink/..",
    "/d/escape",
    "/../../../etc/small",
    "/etc/../etc/./small",
    "/loop1",
    "/loop1/x",
    "/etc/small/x",
    "/etc/fifo",
    "/nonexistent/x",
    "//etc//os-release",
    "/many",
];

#[test]
fn symlinks_resolve_inside_the_root_like_the_kernel() {
    let work = tempfile::tempdir().expect("tmp");
    let img = mkfs(work.path(), "links.img", &[]);
    {
        let m = RwMount::new(&img, "");
        m.sh(POPULATE);
    }
    let m = LoopMount::new(&img, "btrfs", 0, "");
    let kernel = DirFs::new(&m.path()).expect("dirfs");
    let fs = load(&img, Subvol::Default);
    check_resolution(&fs, &kernel, TRICKY_PATHS);
    assert!(matches!(fs.metadata("/loop1"), Err(FsError::SymlinkLoop { .. })));
    let listed = fs.read_dir("/many").expect("many");
    assert_eq!(listed.len(), 1500);
    assert!(listed.windows(2).all(|w| w[0].name < w[1].name), "read_dir is sorted");
}

/// A SUSE-like layout written by the kernel (zstd): `@` the default subvolume holding the root,
/// `@/var` and `@/home` nested in it, `@/var/lib/machines` two levels down, a snapshot of `@`
/// nested at `@/.snapshots/1/snapshot` (its copies of the nested subvolumes are the kernel's empty
/// placeholder directories), `@home_sep` beside `@` at the top level.
const SUSE_LAYOUT: &str = r#"
set +o pipefail
btrfs subvolume create @ >/dev/null
mkdir -p @/etc @/usr/lib/sysimage/rpm @/.snapshots/1
printf 'ID="sles"\nVERSION_ID="16.0"\n' > @/etc/os-release
yes 'rpm database page' | head -c 3000000 > @/usr/lib/sysimage/rpm/rpmdb.sqlite
btrfs subvolume create @/var >/dev/null
mkdir -p @/var/lib/rpm @/var/log
echo log > @/var/log/messages
head -c 500000 /dev/urandom > @/var/log/random.log
btrfs subvolume create @/var/lib/machines >/dev/null
echo m > @/var/lib/machines/m
btrfs subvolume create @/home >/dev/null
mkdir -p @/home/user && echo hello > @/home/user/.profile && chown -R 1000:100 @/home/user
chmod 0711 @/home && chown 5:6 @/home
ln -s ../var/lib @/varlib
ln -s /var/lib/machines/m @/machine
btrfs subvolume snapshot @ @/.snapshots/1/snapshot >/dev/null
echo after-snapshot > @/etc/changed
btrfs subvolume create @home_sep >/dev/null
echo separate > @home_sep/file
btrfs subvolume set-default "$(btrfs subvolume list . | awk '$NF == "@" {print $2}')" .
"#;

#[test]
fn suse_like_default_and_nested_subvolumes_match_kernel() {
    let work = tempfile::tempdir().expect("tmp");
    let img = mkfs(work.path(), "suse.img", &[]);
    {
        let m = RwMount::new(&img, "compress=zstd");
        m.sh(SUSE_LAYOUT);
    }
    let default = run(Command::new("btrfs").args(["inspect-internal", "dump-tree", "-t", "root"]).arg(&img));
    assert!(default.contains("name: default"), "set-default left no `default` dir item:\n{default}");

    let (n, ours) = compare(&img, "", Subvol::Default, "default subvolume @");
    // The nested subvolumes show their own contents and root inodes; the snapshot's copies of
    // them are empty directories.
    assert!(ours.contains_key("/var/lib/machines/m") && ours.contains_key("/home/user/.profile"));
    assert_eq!(ours.get("/home").map(|e| (e.mode, e.uid, e.gid)), Some((0o711, 5, 6)));
    assert!(ours.contains_key("/.snapshots/1/snapshot/etc/os-release"));
    assert!(!ours.keys().any(|k| k.starts_with("/.snapshots/1/snapshot/var/")), "placeholder is empty");
    assert!(!ours.contains_key("/.snapshots/1/snapshot/etc/changed"));
    assert!(!ours.contains_key("/file"), "@home_sep is not under @");
    eprintln!("default @: {n} entries");

    let fs = load(&img, Subvol::Default);
    assert_ne!(fs.subvolume_id(), 5, "the default subvolume is @, not the top level");
    for (opts, subvol) in [
        ("subvol=@home_sep", Subvol::Path("@home_sep".into())),
        ("subvol=@/var", Subvol::Path("@/var".into())),
        ("subvol=/@/.snapshots/1/snapshot", Subvol::Path("/@/.snapshots/1/snapshot".into())),
        ("subvolid=5", Subvol::Id(5)),
        ("subvol=/", Subvol::Path("/".into())),
    ] {
        let (n, _) = compare(&img, opts, subvol, opts);
        assert!(n > 1, "{opts}");
    }
    let by_id = load(&img, Subvol::Id(fs.subvolume_id()));
    assert_same(&walk_rootfs(&fs), &walk_rootfs(&by_id), "subvolid of @ vs default");

    // A directory that is not a subvolume root: the kernel refuses the mount, so do we.
    let kernel = Command::new("mount")
        .args(["-t", "btrfs", "-o", "ro,loop,subvol=@/etc"])
        .arg(&img)
        .arg(work.path())
        .output()
        .expect("mount");
    if kernel.status.success() {
        let _ = Command::new("umount").arg(work.path()).status();
        panic!("the kernel mounted subvol=@/etc");
    }
    let e = btrfs::load(region(&img), Subvol::Path("@/etc".into())).expect_err("not a subvolume");
    assert!(e.to_string().contains("not a subvolume root"), "{e}");
    let e = btrfs::load(region(&img), Subvol::Path("@/nope".into())).expect_err("missing");
    assert!(e.is_not_found(), "{e}");
    let e = btrfs::load(region(&img), Subvol::Id(9999)).expect_err("missing id");
    assert!(e.is_not_found(), "{e}");

    // Resolution across subvolume boundaries: symlinks into nested subvolumes, `..` out of them.
    let m = LoopMount::new(&img, "btrfs", 0, "");
    let kernel = DirFs::new(&m.path()).expect("dirfs");
    check_resolution(
        &fs,
        &kernel,
        &[
            "/varlib",
            "/varlib/machines/m",
            "/machine",
            "/var/..",
            "/var/lib/machines/../../../etc/os-release",
            "/home/user/../../usr/lib/sysimage/rpm/rpmdb.sqlite",
            "/.snapshots/1/snapshot/var",
            "/.snapshots/1/snapshot/varlib/machines",
        ],
    );
}
