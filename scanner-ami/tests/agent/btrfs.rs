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
use std::time::Instant;

use scanner_ami::disk::{Disk, MemDisk, Region};
use scanner_ami::fs::btrfs::{self, BtrfsFs, Subvol};
use scanner_ami::fs::dir::DirFs;
use scanner_ami::fs::{FsError, RootFs};
use scanner_ami::report::{Report, Source};
use scanner_ami::scan::{ScanOptions, scan_rootfs};

use crate::difftree::{Entry, LoopMount, assert_same, walk_dir, walk_rootfs};
use crate::util::{Tree, dpkg_oracle, fixtures, ours as package_set, rpm_oracle, run, sh, tree_size};

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

/// A loop device on an image file, detached on drop.
struct LoopDev(String);

impl LoopDev {
    fn new(img: &Path) -> Self {
        LoopDev(run(Command::new("losetup").arg("-f").arg("--show").arg(img)).trim().to_owned())
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
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
    let started = Instant::now();
    let kernel = {
        let m = LoopMount::new(img, "btrfs", 0, opts);
        walk_dir(&m.path())
    };
    let kernel_time = started.elapsed();
    let started = Instant::now();
    let fs = load(img, subvol);
    let ours = walk_rootfs(&fs);
    let our_time = started.elapsed();
    assert_same(&kernel, &ours, what);
    eprintln!(
        "{what}: {} entries, zero differences (walks: kernel {kernel_time:.1?}, ours {our_time:.1?})",
        kernel.len()
    );
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
    // `..` under a file: ENOTDIR for the kernel (DirFs would climb back out).
    let e = std::fs::metadata(m.path().join("etc/small/..")).expect_err("ENOTDIR");
    assert_eq!(e.raw_os_error(), Some(20));
    assert!(matches!(fs.metadata("/etc/small/.."), Err(FsError::NotADir { .. })));
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

/// `mkfs.btrfs --rootdir ROOT` into an image twice the tree's size (at least [`IMAGE_MIB`]).
fn mkfs_rootdir(dir: &Path, name: &str, root: &Path) -> PathBuf {
    let img = dir.join(name);
    let mib = ((tree_size(root) * 2) >> 20).max(IMAGE_MIB);
    std::fs::File::create(&img).expect("image").set_len(mib << 20).expect("size");
    run(Command::new("mkfs.btrfs").arg("-q").arg("--rootdir").arg(root).arg(&img));
    img
}

/// The whole scan (OS detection, every package database) on our view of the default subvolume.
fn scan_btrfs(img: &Path) -> Report {
    let fs = load(img, Subvol::Default);
    let size = std::fs::metadata(img).expect("image").len();
    scan_rootfs(&fs, Source::Image { path: img.display().to_string(), size }, Instant::now(), ScanOptions::default())
}

/// SUSE keeps the rpm database at `/usr/lib/sysimage/rpm` (with `/var/lib/rpm` a symlink to it):
/// the SQLite fixture there, on btrfs, gives exactly the fixture's packages and `rpm -qa`'s.
#[test]
fn rpm_sqlite_at_the_suse_path_on_btrfs_equals_the_fixture() {
    let t = Tree::new();
    t.os_release("sles", "16.0", "SUSE Linux Enterprise Server 16.0")
        .copy("usr/lib/sysimage/rpm/rpmdb.sqlite", "go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite")
        .symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm");
    let work = tempfile::tempdir().expect("tmp");
    let img = mkfs_rootdir(work.path(), "rpm.img", t.path());
    compare(&img, "", Subvol::Default, "rpm tree (mkfs --rootdir)");
    let r = scan_btrfs(&img);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let text = std::fs::read_to_string(fixtures().join("go-rpmdb/cbl-mariner-2.0-sqlite/expected.json")).expect("json");
    let want: serde_json::Value = serde_json::from_str(&text).expect("json");
    let want: std::collections::BTreeSet<String> = want["packages_oracle"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| {
            let epoch = p["epoch"].as_u64().map(|e| format!("{e}:")).unwrap_or_default();
            let (name, version, release) = (
                p["name"].as_str().unwrap_or(""),
                p["version"].as_str().unwrap_or(""),
                p["release"].as_str().unwrap_or(""),
            );
            format!("{name}={epoch}{version}-{release}")
        })
        .collect();
    assert_eq!(want.len(), 129);
    assert_eq!(package_set(&r.packages), want);
    assert_eq!(package_set(&r.packages), rpm_oracle(&t.path().join("usr/lib/sysimage/rpm")));
    assert_eq!(r.databases.len(), 1, "the /var/lib/rpm symlink names the same database: {:?}", r.databases);
}

/// The Debian debootstrap root on btrfs: the kernel's tree and ours are identical, and the scan
/// finds exactly `dpkg-query`'s packages.
#[test]
#[ignore = "needs the debootstrap tree of scripts/setup-test-env.sh (AGENTLESS_DEBOOTSTRAP_ROOT)"]
fn debootstrap_root_on_btrfs_matches_kernel_and_dpkg_query() {
    let root = std::env::var("AGENTLESS_DEBOOTSTRAP_ROOT")
        .expect("AGENTLESS_DEBOOTSTRAP_ROOT must name the debootstrap tree (scripts/setup-test-env.sh)");
    let root = Path::new(&root);
    let work = tempfile::tempdir().expect("tmp");
    let img = mkfs_rootdir(work.path(), "debian.img", root);
    let started = Instant::now();
    let (n, _) = compare(&img, "", Subvol::Default, "debootstrap bookworm (mkfs --rootdir)");
    eprintln!("debootstrap walk (kernel + ours): {n} entries in {:?}", started.elapsed());
    let r = scan_btrfs(&img);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.os.as_ref().map(|o| o.distro()), Some("debian-12".into()));
    let oracle = dpkg_oracle(root);
    assert!(oracle.len() > 80, "debootstrap tree looks incomplete: {} packages", oracle.len());
    assert_eq!(package_set(&r.packages), oracle);
}

// ------------------------------------------------------------------------------------------
// Hostile images: a kernel-written image copied, then patched at the byte level. Tree blocks
// are re-checksummed after a patch so the damage reaches the parsers behind the CRC check.

/// Offsets in the superblock (`struct btrfs_super_block`, btrfs on-disk format).
const SB: u64 = 0x10000;
const SB_CHUNK_ROOT: u64 = 0x58;
const SB_NODESIZE: u64 = 0x94;
const SB_SYS_ARRAY_SIZE: u64 = 0xa0;
const SB_LABEL: u64 = 0x12b;
const SB_SYS_ARRAY: u64 = 0x32b;
/// Tree block header: fsid at 32, bytenr 48, owner 88, nritems 96, level 100; items follow.
const HDR: usize = 101;
/// Leaf item: key (objectid 8, type 1, offset 8), data offset 4, data size 4.
const ITEM: usize = 25;
const CHUNK_ITEM_KEY: u8 = 228;
const EXTENT_DATA_KEY: u8 = 108;
const BLOCK_GROUP_DATA: u64 = 1;

/// lambutter's reader over a plain file (no superblock copy hidden), to show what the crate
/// alone does.
struct FileBlocks(std::fs::File);

impl lambutter::BlockRead for FileBlocks {
    type Error = std::io::Error;
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
    }
}

fn crc32c(data: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(data)
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// One chunk: logical start, length, type bits and the physical offset of each copy.
#[derive(Debug, Clone)]
struct Chunk {
    logical: u64,
    length: u64,
    ty: u64,
    stripes: Vec<u64>,
}

/// A copy of an image file, read and patched in place.
struct Patch {
    path: PathBuf,
    file: std::fs::File,
    nodesize: usize,
    chunks: Vec<Chunk>,
}

fn parse_chunk(data: &[u8], logical: u64) -> Chunk {
    let n = usize::from(u16::from_le_bytes(data[44..46].try_into().expect("2")));
    Chunk {
        logical,
        length: le64(data, 0),
        ty: le64(data, 24),
        stripes: (0..n).map(|i| le64(data, 48 + i * 32 + 8)).collect(),
    }
}

impl Patch {
    /// Copy `img` to `name` beside it and map its chunks (system array, then the chunk tree's
    /// root leaf: enough for the small images here).
    fn new(img: &Path, name: &str) -> Self {
        let path = img.with_file_name(name);
        run(Command::new("cp").arg("--sparse=always").arg(img).arg(&path));
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("open copy");
        let mut p = Patch { path, file, nodesize: 0, chunks: Vec::new() };
        let sb = p.read(SB, 4096);
        p.nodesize = le32(&sb, SB_NODESIZE as usize) as usize;
        let size = le32(&sb, SB_SYS_ARRAY_SIZE as usize) as usize;
        let array = &sb[SB_SYS_ARRAY as usize..SB_SYS_ARRAY as usize + size];
        let mut at = 0;
        while at < array.len() {
            let logical = le64(array, at + 9);
            let chunk = parse_chunk(&array[at + 17..], logical);
            at += 17 + 48 + 32 * chunk.stripes.len();
            p.chunks.push(chunk);
        }
        let root = p.block(le64(&sb, SB_CHUNK_ROOT as usize));
        assert_eq!(root[100], 0, "chunk root is not a leaf: image larger than these tests expect");
        for (key, data) in items(&root) {
            if key.1 == CHUNK_ITEM_KEY && !p.chunks.iter().any(|c| c.logical == key.2) {
                p.chunks.push(parse_chunk(data, key.2));
            }
        }
        p
    }

    fn read(&self, off: u64, n: usize) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let mut b = vec![0; n];
        self.file.read_exact_at(&mut b, off).expect("read copy");
        b
    }

    fn write(&self, off: u64, b: &[u8]) {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(b, off).expect("write copy");
    }

    fn copies(&self, logical: u64) -> Vec<u64> {
        let c = self
            .chunks
            .iter()
            .find(|c| c.logical <= logical && logical < c.logical + c.length)
            .unwrap_or_else(|| panic!("logical {logical:#x} in no chunk"));
        c.stripes.iter().map(|s| s + (logical - c.logical)).collect()
    }

    fn block(&self, logical: u64) -> Vec<u8> {
        self.read(self.copies(logical)[0], self.nodesize)
    }

    /// Change the tree block at `logical` in every copy and fix its checksum.
    fn patch_block(&self, logical: u64, f: impl Fn(&mut Vec<u8>)) {
        let mut b = self.block(logical);
        f(&mut b);
        let csum = crc32c(&b[32..]);
        b[..4].copy_from_slice(&csum.to_le_bytes());
        for phys in self.copies(logical) {
            self.write(phys, &b);
        }
    }

    /// Logical addresses of the valid leaves of tree `owner` (current and stale copies alike).
    fn leaves(&self, owner: u64) -> Vec<u64> {
        let fsid = self.read(SB + 32, 16);
        let mut out = Vec::new();
        for c in self.chunks.iter().filter(|c| c.ty & BLOCK_GROUP_DATA == 0) {
            for logical in (c.logical..c.logical + c.length).step_by(self.nodesize) {
                let b = self.block(logical);
                if b[32..48] == fsid[..]
                    && le64(&b, 48) == logical
                    && le64(&b, 88) == owner
                    && b[100] == 0
                    && crc32c(&b[32..]) == le32(&b, 0)
                {
                    out.push(logical);
                }
            }
        }
        out
    }

    fn region(&self) -> Region {
        region(&self.path)
    }
}

/// A key: (objectid, type, offset).
type Key = (u64, u8, u64);

/// The key and data of each item of a leaf.
fn items(leaf: &[u8]) -> Vec<(Key, &[u8])> {
    let n = le32(leaf, 96) as usize;
    (0..n)
        .map(|i| {
            let at = HDR + i * ITEM;
            let key = (le64(leaf, at), leaf[at + 8], le64(leaf, at + 9));
            let (off, size) = (le32(leaf, at + 17) as usize, le32(leaf, at + 21) as usize);
            (key, &leaf[HDR + off..HDR + off + size])
        })
        .collect()
}

/// Offset in the leaf of the data of item `i`.
fn item_data_at(leaf: &[u8], i: usize) -> usize {
    HDR + le32(leaf, HDR + i * ITEM + 17) as usize
}

/// A small zlib image: a compressible file (compressed extents), an incompressible one (plain
/// extents), a small inline file.
fn hostile_base(dir: &Path) -> PathBuf {
    let img = mkfs(dir, "base.img", &[]);
    let m = RwMount::new(&img, "compress=zlib");
    m.sh("set +o pipefail\nmkdir etc\nprintf 'ID=test\\n' > etc/os-release\nyes compressible | head -c 1M > comp\nhead -c 300000 /dev/urandom > rand\necho inline > small\n");
    drop(m);
    img
}

fn err_of<T: std::fmt::Debug>(r: Result<T, FsError>) -> String {
    let e = r.expect_err("the damage must be reported").to_string();
    eprintln!("hostile: {e}");
    e
}

#[test]
fn hostile_images_give_clear_errors() {
    let work = tempfile::tempdir().expect("tmp");
    let base = hostile_base(work.path());
    let fs = load(&base, Subvol::Default);
    let good = scanner_ami::fs::read_file(&fs, "/comp", 2 << 20).expect("comp");
    assert_eq!(good.len(), 1 << 20);

    // Bad primary superblock CRC: the kernel refuses to mount; so do we, although the copy at
    // 64 MiB is intact (lambutter alone would fall back to it).
    let p = Patch::new(&base, "badsb.img");
    p.write(SB + SB_LABEL, b"tampered");
    assert_eq!(p.read((64 << 20) + 0x40, 8), b"_BHRfS_M".to_vec(), "the 64 MiB copy is there");
    let mnt = tempfile::tempdir().expect("mnt");
    let kernel = Command::new("mount").args(["-t", "btrfs", "-o", "ro,loop"]).arg(&p.path).arg(mnt.path()).output();
    if kernel.as_ref().is_ok_and(|o| o.status.success()) {
        let _ = Command::new("umount").arg(mnt.path()).status();
        panic!("the kernel mounted a superblock with a bad checksum");
    }
    let e = err_of(btrfs::load(p.region(), Subvol::Default));
    assert!(e.contains("superblock checksum mismatch"), "{e}");
    let raw = lambutter::Btrfs::open(FileBlocks(std::fs::File::open(&p.path).expect("open")), IMAGE_MIB << 20);
    assert!(raw.is_ok(), "lambutter on its own falls back to the 64 MiB copy (why BtrfsFs hides it)");

    // Chunk tree loop: the chunk root made an interior node whose only child is itself.
    let p = Patch::new(&base, "chunkloop.img");
    let sb = p.read(SB, 4096);
    let chunk_root = le64(&sb, SB_CHUNK_ROOT as usize);
    p.patch_block(chunk_root, |b| {
        let first_key = b[HDR..HDR + 17].to_vec();
        let generation = le64(b, 80);
        b[96..100].copy_from_slice(&1u32.to_le_bytes());
        b[100] = 1;
        b[HDR..HDR + 17].copy_from_slice(&first_key);
        b[HDR + 17..HDR + 25].copy_from_slice(&chunk_root.to_le_bytes());
        b[HDR + 25..HDR + 33].copy_from_slice(&generation.to_le_bytes());
    });
    let started = Instant::now();
    let e = err_of(btrfs::load(p.region(), Subvol::Default));
    assert!(e.contains("b-tree") && e.contains("infinite_recursion"), "{e}");
    assert!(started.elapsed().as_secs() < 5, "a loop must end fast");

    // Corrupt chunk items in the chunk tree: a stripe count running past the item, and a length
    // that wraps the address space.
    for (name, patch) in [
        (
            "stripes",
            Box::new(|d: &mut [u8]| d[44..46].copy_from_slice(&0xffffu16.to_le_bytes())) as Box<dyn Fn(&mut [u8])>,
        ),
        ("length", Box::new(|d: &mut [u8]| d[0..8].copy_from_slice(&u64::MAX.to_le_bytes()))),
    ] {
        let p = Patch::new(&base, &format!("chunk-{name}.img"));
        let root = p.block(chunk_root);
        let idx = items(&root).iter().rposition(|(k, _)| k.1 == CHUNK_ITEM_KEY).expect("a chunk item");
        let at = item_data_at(&root, idx);
        p.patch_block(chunk_root, |b| patch(&mut b[at..]));
        let e = err_of(btrfs::load(p.region(), Subvol::Default));
        assert!(e.contains("chunk_item_truncated") || e.contains("chunk_overflow"), "{name}: {e}");
    }

    // Data chunk moved past the end of the device: metadata still loads, inline data still reads,
    // the extents fail with the device's own message; the rest of the tree is still walkable.
    let p = Patch::new(&base, "pastend.img");
    let root = p.block(chunk_root);
    let data_chunks: Vec<usize> = items(&root)
        .iter()
        .enumerate()
        .filter(|(_, (k, d))| k.1 == CHUNK_ITEM_KEY && parse_chunk(d, k.2).ty & BLOCK_GROUP_DATA != 0)
        .map(|(i, _)| item_data_at(&root, i) + 48 + 8)
        .collect();
    assert!(!data_chunks.is_empty());
    let dev_len = std::fs::metadata(&p.path).expect("len").len();
    p.patch_block(chunk_root, |b| {
        for &at in &data_chunks {
            b[at..at + 8].copy_from_slice(&(dev_len - 4096).to_le_bytes());
        }
    });
    let fs = btrfs::load(p.region(), Subvol::Default).expect("metadata is intact");
    let e = err_of(scanner_ami::fs::read_file(&fs, "/rand", 1 << 20));
    assert!(e.contains("/rand") && e.contains("past the end"), "{e}");
    assert_eq!(scanner_ami::fs::read_file(&fs, "/small", 100).expect("inline"), b"inline\n");
    assert_eq!(fs.read_dir("/").expect("root").len(), 4);

    // Decompression bomb: a compressed extent of /comp replaced by a zlib stream of 20 MiB of
    // zeros, claiming 1 TiB decompressed: refused at the crate's 16 MiB plaintext cap.
    let p = Patch::new(&base, "bomb.img");
    let bomb =
        sh("python3 -c 'import sys, zlib; sys.stdout.buffer.write(zlib.compress(bytes(20 << 20), 9).hex().encode())'");
    let bomb: Vec<u8> =
        (0..bomb.len() / 2).map(|i| u8::from_str_radix(&bomb[2 * i..2 * i + 2], 16).expect("hex")).collect();
    let comp_ino = {
        let m = LoopMount::new(&base, "btrfs", 0, "");
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(m.path().join("comp")).expect("stat"))
    };
    let mut patched = 0;
    for leaf in p.leaves(5) {
        let b = p.block(leaf);
        for (i, (key, d)) in items(&b).iter().enumerate() {
            // file extent: generation 8, ram_bytes 8, compression 1, encryption 1, other 2,
            // type 1, then disk_bytenr 8, disk_num_bytes 8, offset 8, num_bytes 8.
            if key.0 == comp_ino && key.1 == EXTENT_DATA_KEY && key.2 == 0 && d[16] == 1 && d[20] == 1 {
                let disk_bytenr = le64(d, 21);
                let disk_len = (bomb.len() as u64).div_ceil(4096) * 4096;
                for phys in p.copies(disk_bytenr) {
                    p.write(phys, &bomb);
                }
                let at = item_data_at(&b, i);
                p.patch_block(leaf, |b| {
                    b[at + 8..at + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
                    b[at + 29..at + 37].copy_from_slice(&disk_len.to_le_bytes());
                });
                patched += 1;
            }
        }
    }
    assert!(patched > 0, "no compressed extent of /comp found");
    let fs = btrfs::load(p.region(), Subvol::Default).expect("metadata is intact");
    let e = err_of(scanner_ami::fs::read_file(&fs, "/comp", 2 << 20));
    assert!(e.contains("/comp") && e.contains("comp_zlib"), "{e}");
    assert_eq!(scanner_ami::fs::read_file(&fs, "/small", 100).expect("inline"), b"inline\n");
}

/// RAID0 data (a single-device RAID0 the kernel reads, and a two-device one) is refused with
/// a clear reason while the metadata (DUP, RAID1) and inline files still read; RAID1 data across
/// two devices reads from either device alone.
#[test]
fn raid_profiles_read_or_refused_clearly() {
    let work = tempfile::tempdir().expect("tmp");
    // mkfs.btrfs 6.2 wants 165 MiB a device for these profiles.
    let img = |name: &str| {
        let p = work.path().join(name);
        std::fs::File::create(&p).expect("image").set_len(256 << 20).expect("size");
        p
    };
    let single = img("raid0-single.img");
    run(Command::new("mkfs.btrfs").args(["-q", "-d", "raid0", "-m", "dup"]).arg(&single));
    {
        let m = RwMount::new(&single, "");
        m.sh("echo hi > small\nhead -c 1M /dev/urandom > big\n");
    }
    let chunks = run(Command::new("btrfs").args(["inspect-internal", "dump-tree", "-t", "chunk"]).arg(&single));
    assert!(chunks.contains("DATA|RAID0"), "{chunks}");
    let fs = load(&single, Subvol::Default);
    assert_eq!(scanner_ami::fs::read_file(&fs, "/small", 100).expect("inline"), b"hi\n");
    let e = err_of(scanner_ami::fs::read_file(&fs, "/big", 2 << 20));
    assert!(e.contains("/big") && e.contains("btrfs RAID0 data profile: not supported"), "{e}");
    // The kernel reads it (a one-stripe RAID0 is laid out linearly): this is the crate's limit.
    let m = LoopMount::new(&single, "btrfs", 0, "");
    assert_eq!(std::fs::metadata(m.path().join("big")).expect("big").len(), 1 << 20);
    drop(m);

    // Two devices, written by the kernel: the second is attached to a loop device and named to
    // the mount with `device=`.
    let two_devices = |profile: &str| {
        let (a, b) = (img(&format!("{profile}-a.img")), img(&format!("{profile}-b.img")));
        run(Command::new("mkfs.btrfs").args(["-q", "-d", profile, "-m", "raid1"]).arg(&a).arg(&b));
        let lo = LoopDev::new(&b);
        {
            let m = RwMount::new(&a, &format!("device={}", lo.0));
            m.sh("mkdir -p usr/lib etc\nhead -c 300000 /dev/zero | tr '\\0' '\\7' > usr/lib/data\necho small > etc/small\n");
        }
        (a, b)
    };
    let (a, b) = two_devices("raid1");
    for dev in [&a, &b] {
        let fs = load(dev, Subvol::Default);
        assert_eq!(scanner_ami::fs::read_file(&fs, "/usr/lib/data", 1 << 20).expect("data"), vec![7u8; 300_000]);
        assert_eq!(scanner_ami::fs::read_file(&fs, "/etc/small", 100).expect("small"), b"small\n");
    }
    let (a, _b) = two_devices("raid0");
    let fs = load(&a, Subvol::Default);
    let e = err_of(scanner_ami::fs::read_file(&fs, "/usr/lib/data", 1 << 20));
    assert!(e.contains("btrfs RAID0 data profile: not supported"), "{e}");
    assert_eq!(scanner_ami::fs::read_file(&fs, "/etc/small", 100).expect("inline"), b"small\n");
}

/// An image taken while mounted, after an fsync but before the transaction commit (what a
/// crash-consistent EBS snapshot can hold): the superblock names a log tree. The kernel refuses
/// it on read-only media unless told `rescue=nologreplay`; our view is exactly that committed
/// state, and `log_tree_pending` says changes are missing (the fsync'ed file a read-write mount
/// would replay).
#[test]
fn unreplayed_log_tree_reads_as_the_committed_state_and_is_flagged() {
    let work = tempfile::tempdir().expect("tmp");
    let img = mkfs(work.path(), "live.img", &[]);
    let copy = work.path().join("snapshot.img");
    {
        let m = RwMount::new(&img, "commit=300");
        m.sh("mkdir etc && echo committed > etc/a && sync\necho fsynced > etc/logged-only\ndd if=etc/logged-only of=etc/logged bs=4k conv=fsync status=none\n");
        run(Command::new("cp").arg("--sparse=always").arg(&img).arg(&copy));
    }
    let sb = run(Command::new("btrfs").args(["inspect-internal", "dump-super"]).arg(&copy));
    assert!(
        sb.lines().any(|l| l.starts_with("log_root") && !l.trim_end().ends_with(" 0") && !l.contains("transid")),
        "{sb}"
    );
    let (n, ours) = compare(&copy, "rescue=nologreplay", Subvol::Default, "log tree not replayed (rescue=nologreplay)");
    // Equal to the kernel's view (`compare`). Whether the fsync'ed file is in the committed
    // state depends on whether a transaction committed before the copy (on a loaded machine one
    // did, once in CI): the log tree is there either way, so only the committed file is asserted.
    assert!(n >= 2 && ours.contains_key("/etc/a"), "{ours:?}");
    if ours.contains_key("/etc/logged") {
        eprintln!("a transaction committed /etc/logged before the copy; the log tree is still pending");
    }
    assert!(load(&copy, Subvol::Default).log_tree_pending());
    assert!(!load(&img, Subvol::Default).log_tree_pending(), "a cleanly unmounted image has no log tree");
    // What is missed: a read-write mount replays the log and shows the fsync'ed file.
    let m = RwMount::new(&copy, "");
    assert!(m.path().join("etc/logged").exists());
}

/// A deterministic stand-in for the fuzz target in every test run: a small kernel-format image
/// (mkfs `--mixed`), one of its tree blocks changed at random bytes and re-checksummed (so the
/// damage reaches the parsers), then loaded and walked (bounded). No panic, whatever the bytes.
#[test]
fn mutated_tree_blocks_never_panic() {
    let t = Tree::new();
    t.os_release("sles", "16.0", "SUSE").symlink("etc/link", "os-release").symlink("lib", "usr/lib");
    for i in 0..200 {
        t.put(&format!("usr/lib/pkg/f{i}"), format!("file {i}\n").repeat(i).as_bytes());
    }
    let work = tempfile::tempdir().expect("tmp");
    let img = work.path().join("mixed.img");
    std::fs::File::create(&img).expect("image").set_len(16 << 20).expect("size");
    run(Command::new("mkfs.btrfs").args(["-q", "--mixed", "--rootdir"]).arg(t.path()).arg(&img));
    let image = std::fs::read(&img).expect("read image");
    let nodesize = le32(&image, (SB + SB_NODESIZE) as usize) as usize;
    let fsid = image[SB as usize + 32..SB as usize + 48].to_vec();
    let blocks: Vec<usize> = (0..image.len() / nodesize)
        .map(|i| i * nodesize)
        .filter(|&at| {
            let b = &image[at..at + nodesize];
            b[32..48] == fsid[..] && crc32c(&b[32..]) == le32(b, 0)
        })
        .collect();
    assert!(blocks.len() > 5, "{} tree blocks", blocks.len());
    let baseline =
        walk_rootfs(&btrfs::load(Region::whole(Arc::new(MemDisk(image.clone()))), Subvol::Default).expect("load"));
    assert!(baseline.len() > 200);

    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut loaded, mut walked) = (0, 0);
    // 100 rounds of at most 120 paths: ~10 s in a debug build (lambutter checks the CRC of
    // every tree block it reads, slow unoptimised).
    for round in 0..100 {
        let mut d = image.clone();
        let at = blocks[(next() as usize) % blocks.len()];
        for _ in 0..1 + next() % 4 {
            let off = at + 32 + (next() as usize) % (nodesize - 32);
            d[off] = next() as u8;
        }
        let csum = crc32c(&d[at + 32..at + nodesize]);
        d[at..at + 4].copy_from_slice(&csum.to_le_bytes());
        let r = std::panic::catch_unwind(|| {
            let Ok(fs) = btrfs::load(Region::whole(Arc::new(MemDisk(d))), Subvol::Default) else { return (0, 0) };
            let mut stack = vec!["/".to_owned()];
            let mut visits = 0;
            while let Some(p) = stack.pop() {
                visits += 1;
                if visits > 120 {
                    break;
                }
                let _ = fs.metadata(&p);
                if let Ok(entries) = fs.read_dir(&p) {
                    stack.extend(entries.iter().map(|e| scanner_ami::fs::join(&p, &e.name)));
                }
                let _ = scanner_ami::fs::read_file(&fs, &p, 64 << 10);
                let _ = fs.read_link(&p);
            }
            (1, visits)
        });
        let (l, v) = r.unwrap_or_else(|_| panic!("round {round}: panic on block {at:#x} mutated"));
        loaded += l;
        walked += v;
    }
    eprintln!("mutations: 100 images, {loaded} loaded, {walked} paths visited");
    assert!(loaded > 50, "mutations rarely got past load: {loaded}");
}
