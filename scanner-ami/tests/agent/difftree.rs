//! The kernel as the oracle of a filesystem reader: mount an image read-only through a loop
//! device ([`LoopMount`]), walk the mounted tree and our [`RootFs`] of the same image
//! ([`walk_dir`], [`walk_rootfs`]) and list every difference ([`diff`]) in path, kind, mode, uid,
//! gid, size, SHA-256 of the content and symlink target.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use scanner_ami::fs::{FileKind, RootFs};
use sha2::{Digest, Sha256};

/// An entry from a guest's `stat -c '%f|%u|%g|%s'` fields (mode in hex, uid, gid, size), its
/// content (hash, link target) not yet known; and its path from `find .` (`./x` is `/x`).
pub fn stat_entry(path: &str, f: &[&str]) -> (String, Entry) {
    assert_eq!(f.len(), 4, "stat fields {f:?}");
    let raw = u32::from_str_radix(f[0], 16).expect("mode");
    let kind = match raw & 0o170000 {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Dir,
        0o120000 => FileKind::Symlink,
        _ => FileKind::Other,
    };
    let size: u64 = f[3].parse().expect("size");
    let entry = Entry {
        kind,
        mode: raw & 0o7777,
        uid: f[1].parse().expect("uid"),
        gid: f[2].parse().expect("gid"),
        size: matches!(kind, FileKind::File | FileKind::Symlink).then_some(size),
        sha256: None,
        link: None,
    };
    (guest_path(path), entry)
}

/// A path of a guest's `find .` listing as the walks name it (`./x` is `/x`, `.` is `/`).
pub fn guest_path(p: &str) -> String {
    match p.trim_start_matches('.') {
        "" => "/".to_owned(),
        q => q.to_owned(),
    }
}

/// What both walks record of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: FileKind,
    /// `st_mode & 0o7777`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Size of regular files and symlinks (directories' sizes are a detail of each format).
    pub size: Option<u64>,
    /// SHA-256 of a regular file's content, hex.
    pub sha256: Option<String>,
    pub link: Option<String>,
}

impl Entry {
    /// The entry of what our reader's metadata says, its size and content not yet read.
    pub fn of(meta: &scanner_ami::fs::Meta) -> Entry {
        Entry { kind: meta.kind, mode: meta.mode, uid: meta.uid, gid: meta.gid, size: None, sha256: None, link: None }
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Walk our reader's view of the tree below `/` (the root itself included, as "/").
pub fn walk_rootfs(fs: &dyn RootFs) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(path) = stack.pop() {
        let meta =
            fs.symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: symlink_metadata({path}): {e}", fs.kind()));
        let mut entry = Entry::of(&meta);
        match meta.kind {
            FileKind::Dir => {
                for child in fs.read_dir(&path).unwrap_or_else(|e| panic!("{}: read_dir({path}): {e}", fs.kind())) {
                    stack.push(scanner_ami::fs::join(&path, &child.name));
                }
            }
            FileKind::File => {
                entry.size = Some(meta.len);
                let mut file = fs.open(&path).unwrap_or_else(|e| panic!("{}: open({path}): {e}", fs.kind()));
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut off = 0u64;
                while off < meta.len {
                    let n = usize::try_from((meta.len - off).min(buf.len() as u64)).expect("chunk");
                    file.read_exact_at(off, &mut buf[..n])
                        .unwrap_or_else(|e| panic!("{}: read {path} at {off}: {e}", fs.kind()));
                    hasher.update(&buf[..n]);
                    off += n as u64;
                }
                entry.sha256 = Some(hex(&hasher.finalize()));
            }
            FileKind::Symlink => {
                entry.size = Some(meta.len);
                entry.link =
                    Some(fs.read_link(&path).unwrap_or_else(|e| panic!("{}: read_link({path}): {e}", fs.kind())));
            }
            FileKind::Other => {}
        }
        out.insert(path, entry);
    }
    out
}

/// Walk a directory of this machine (a kernel mount) the same way.
pub fn walk_dir(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_owned(), "/".to_owned())];
    while let Some((host, path)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&host).unwrap_or_else(|e| panic!("lstat {}: {e}", host.display()));
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_file() {
            FileKind::File
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Other
        };
        let mut entry = Entry {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: None,
            sha256: None,
            link: None,
        };
        match kind {
            FileKind::Dir => {
                for child in std::fs::read_dir(&host).unwrap_or_else(|e| panic!("readdir {}: {e}", host.display())) {
                    let child = child.expect("dirent");
                    let name = child.file_name().to_string_lossy().into_owned();
                    stack.push((child.path(), scanner_ami::fs::join(&path, &name)));
                }
            }
            FileKind::File => {
                entry.size = Some(meta.len());
                let mut f = std::fs::File::open(&host).unwrap_or_else(|e| panic!("open {}: {e}", host.display()));
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = f.read(&mut buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
                entry.sha256 = Some(hex(&hasher.finalize()));
            }
            FileKind::Symlink => {
                entry.size = Some(meta.len());
                entry.link = Some(std::fs::read_link(&host).expect("readlink").to_string_lossy().into_owned());
            }
            FileKind::Other => {}
        }
        out.insert(path, entry);
    }
    out
}

/// Every difference between the kernel's view (`kernel`) and ours (`ours`), one line each.
pub fn diff(kernel: &BTreeMap<String, Entry>, ours: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, k) in kernel {
        match ours.get(path) {
            None => out.push(format!("{path}: missing from our reader ({:?})", k.kind)),
            Some(o) if o != k => out.push(format!("{path}: kernel {k:?} / ours {o:?}")),
            Some(_) => {}
        }
    }
    for path in ours.keys().filter(|p| !kernel.contains_key(*p)) {
        out.push(format!("{path}: only in our reader"));
    }
    out
}

/// Assert zero differences, printing the first ones.
pub fn assert_same(kernel: &BTreeMap<String, Entry>, ours: &BTreeMap<String, Entry>, what: &str) {
    let d = diff(kernel, ours);
    assert!(
        d.is_empty(),
        "{what}: {} difference(s) over {} kernel / {} our entries; first:\n{}",
        d.len(),
        kernel.len(),
        ours.len(),
        d.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(kernel.len() > 1, "{what}: the kernel's tree is empty: nothing was compared");
}

/// A read-only loop mount, unmounted on drop. Needs root (CI runs as root).
#[derive(Debug)]
pub struct LoopMount {
    pub dir: tempfile::TempDir,
}

impl LoopMount {
    /// `mount -t FSTYPE -o ro,loop,offset=OFFSET[,EXTRA] IMG DIR`.
    pub fn new(img: &Path, fstype: &str, offset: u64, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("mount point");
        let mut opts = format!("ro,loop,offset={offset}");
        if !extra.is_empty() {
            opts.push(',');
            opts.push_str(extra);
        }
        let out = Command::new("mount")
            .args(["-t", fstype, "-o", &opts])
            .arg(img)
            .arg(dir.path())
            .output()
            .expect("run mount (needs root)");
        assert!(
            out.status.success(),
            "mount -t {fstype} -o {opts} {} failed (root and loop devices needed): {}",
            img.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        LoopMount { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(self.dir.path()).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}
