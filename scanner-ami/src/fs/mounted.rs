//! One instance's filesystems assembled as the instance mounts them: a root [`RootFs`] with other
//! filesystems mounted at their mount points (`/var` from an LVM logical volume, `/home` from a
//! btrfs subvolume, ...), seen as one tree.
//!
//! Paths are resolved here, component by component, so that a symlink on one filesystem that
//! points into another (`/etc/alternatives/x -> /var/lib/x`, `/var/run -> /run`) lands where it
//! lands on the instance ([`super::walk`]: absolute targets restart at the assembled root, `..`
//! never climbs above it, 40 links and 4096 bytes at most). Each filesystem is then asked for
//! a path that holds no symlink but possibly the last component. Resolved directories are cached,
//! so a walk of the whole tree costs one lookup per entry.

use std::collections::HashMap;
use std::sync::Mutex;

use super::walk::{self, Step, split};
use super::{DirEntry, FileKind, FileRead, FsError, Meta, RootFs};

/// Resolved directories kept: a full baseline walk of a large root touches ~10k directories; past
/// this the cache is simply cleared (it is only a speed-up).
const MAX_CACHED_DIRS: usize = 65_536;

/// A filesystem mounted at `target` (normalised: absolute, no trailing `/`).
pub struct Mount {
    pub target: String,
    pub fs: Box<dyn RootFs>,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mount({} on {})", self.fs.kind(), self.target)
    }
}

/// A root filesystem with others mounted into it.
pub struct MountedFs {
    root: Box<dyn RootFs>,
    /// Sorted by descending target length, so the first prefix match is the innermost mount.
    mounts: Vec<Mount>,
    /// Symlink-free directory path (as components joined with `/`) -> (filesystem, inner path).
    dirs: Mutex<HashMap<String, (usize, String)>>,
}

impl std::fmt::Debug for MountedFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountedFs").field("root", &self.root.kind()).field("mounts", &self.mounts).finish()
    }
}

impl MountedFs {
    /// Assemble `root` with `mounts` (a later mount on the same target hides an earlier one, as on
    /// Linux).
    #[must_use]
    pub fn new(root: Box<dyn RootFs>, mounts: Vec<Mount>) -> Self {
        let mut deduped: Vec<Mount> = Vec::new();
        for m in mounts {
            let target = format!("/{}", split(&m.target).join("/"));
            deduped.retain(|d| d.target != target);
            deduped.push(Mount { target, fs: m.fs });
        }
        deduped.sort_by(|a, b| b.target.len().cmp(&a.target.len()).then_with(|| a.target.cmp(&b.target)));
        MountedFs { root, mounts: deduped, dirs: Mutex::new(HashMap::new()) }
    }

    /// The mount points, innermost first.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.mounts.iter().map(|m| m.target.as_str())
    }

    /// The filesystem holding the symlink-free absolute path `comps`, and the path inside it.
    fn locate(&self, comps: &[String]) -> (usize, String) {
        let full = format!("/{}", comps.join("/"));
        for (i, m) in self.mounts.iter().enumerate() {
            if full == m.target {
                return (i + 1, "/".to_owned());
            }
            if let Some(rest) = full.strip_prefix(&m.target)
                && rest.starts_with('/')
            {
                return (i + 1, rest.to_owned());
            }
        }
        (0, full)
    }

    fn fs(&self, i: usize) -> &dyn RootFs {
        match i.checked_sub(1).and_then(|j| self.mounts.get(j)) {
            Some(m) => m.fs.as_ref(),
            None => self.root.as_ref(),
        }
    }

    fn cached(&self, key: &str) -> Option<(usize, String)> {
        self.dirs.lock().ok().and_then(|d| d.get(key).cloned())
    }

    fn remember(&self, key: String, value: (usize, String)) {
        if let Ok(mut d) = self.dirs.lock() {
            if d.len() >= MAX_CACHED_DIRS {
                d.clear();
            }
            d.insert(key, value);
        }
    }

    /// Resolve `path` to (filesystem, symlink-free inner path); with `follow_last` false a final
    /// symlink is not followed.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<(usize, String), FsError> {
        let lstat = |comps: &[String], is_last: bool| {
            let key = comps.join("/");
            // A directory already resolved: no lookup needed.
            if !is_last && self.cached(&key).is_some() {
                return Ok(Step::Dir);
            }
            let (fs_idx, inner) = self.locate(comps);
            let meta = self.fs(fs_idx).symlink_metadata(&inner).map_err(|e| rename(e, path))?;
            Ok(match meta.kind {
                FileKind::Symlink => Step::Symlink,
                FileKind::Dir => {
                    if !is_last {
                        self.remember(key, (fs_idx, inner));
                    }
                    Step::Dir
                }
                FileKind::File | FileKind::Other => Step::Leaf,
            })
        };
        let readlink = |comps: &[String]| {
            let (fs_idx, inner) = self.locate(comps);
            self.fs(fs_idx).read_link(&inner).map_err(|e| rename(e, path))
        };
        walk::resolve(path, follow_last, lstat, readlink).map(|comps| self.locate(&comps))
    }
}

/// Errors of the underlying filesystem name its inner path; callers asked for `path`.
fn rename(e: FsError, path: &str) -> FsError {
    let path = path.to_owned();
    match e {
        FsError::NotFound { .. } => FsError::NotFound { path },
        FsError::NotAFile { .. } => FsError::NotAFile { path },
        FsError::NotADir { .. } => FsError::NotADir { path },
        FsError::TooLarge { size, limit, .. } => FsError::TooLarge { path, size, limit },
        FsError::SymlinkLoop { .. } => FsError::SymlinkLoop { path },
        FsError::TooManyEntries { limit, .. } => FsError::TooManyEntries { path, limit },
        FsError::Corrupt { reason, .. } => FsError::Corrupt { path, reason },
        FsError::Io { reason, .. } => FsError::Io { path, reason },
    }
}

impl RootFs for MountedFs {
    fn kind(&self) -> &'static str {
        "mounted"
    }
    fn metadata(&self, path: &str) -> Result<Meta, FsError> {
        let (i, inner) = self.resolve(path, true)?;
        self.fs(i).symlink_metadata(&inner).map_err(|e| rename(e, path))
    }
    fn symlink_metadata(&self, path: &str) -> Result<Meta, FsError> {
        let (i, inner) = self.resolve(path, false)?;
        self.fs(i).symlink_metadata(&inner).map_err(|e| rename(e, path))
    }
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let (i, inner) = self.resolve(path, true)?;
        self.fs(i).read_dir(&inner).map_err(|e| rename(e, path))
    }
    fn read_link(&self, path: &str) -> Result<String, FsError> {
        let (i, inner) = self.resolve(path, false)?;
        self.fs(i).read_link(&inner).map_err(|e| rename(e, path))
    }
    fn open(&self, path: &str) -> Result<Box<dyn FileRead + '_>, FsError> {
        let (i, inner) = self.resolve(path, true)?;
        self.fs(i).open(&inner).map_err(|e| rename(e, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::dir::DirFs;

    fn tree(files: &[(&str, &str)], links: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        for (p, body) in files {
            let host = d.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(host.parent().expect("parent")).expect("mkdir");
            std::fs::write(host, body).expect("write");
        }
        for (p, target) in links {
            let host = d.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(host.parent().expect("parent")).expect("mkdir");
            std::os::unix::fs::symlink(target, host).expect("symlink");
        }
        d
    }

    fn read(fs: &dyn RootFs, p: &str) -> String {
        String::from_utf8(crate::fs::read_file(fs, p, 1024).expect("read")).expect("utf8")
    }

    #[test]
    fn mounts_shadow_the_root_and_symlinks_cross_them() {
        let root = tree(
            &[("/etc/os-release", "ID=x\n"), ("/var/hidden", "under the mount point")],
            &[("/etc/link", "/var/lib/db"), ("/etc/rel", "../var/log/../lib/db"), ("/var2", "var")],
        );
        let var = tree(&[("/lib/db", "var's db"), ("/log/deep/x", "log")], &[("/lib/up", "../../etc/os-release")]);
        let log = tree(&[("/deep/x", "the log fs")], &[]);
        let fs = MountedFs::new(
            Box::new(DirFs::new(root.path()).expect("root")),
            vec![
                Mount { target: "/var/".into(), fs: Box::new(DirFs::new(var.path()).expect("var")) },
                Mount { target: "/var/log".into(), fs: Box::new(DirFs::new(log.path()).expect("log")) },
            ],
        );
        assert_eq!(read(&fs, "/etc/os-release"), "ID=x\n");
        assert_eq!(read(&fs, "/var/lib/db"), "var's db");
        assert_eq!(read(&fs, "/etc/link"), "var's db", "absolute symlink into a mount");
        assert_eq!(read(&fs, "/etc/rel"), "var's db", "relative symlink with .. across a mount");
        assert_eq!(read(&fs, "/var2/lib/db"), "var's db", "symlinked directory leading into a mount");
        assert_eq!(read(&fs, "/var/log/deep/x"), "the log fs", "the innermost mount wins");
        assert_eq!(read(&fs, "/var/lib/up"), "ID=x\n", "a relative link climbs out of the mount");
        assert!(fs.metadata("/var/hidden").expect_err("shadowed").is_not_found());
        let names: Vec<String> = fs.read_dir("/var").expect("dir").into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["lib", "log"]);
        assert_eq!(fs.symlink_metadata("/etc/link").expect("lstat").kind, FileKind::Symlink);
        assert_eq!(fs.read_link("/etc/link").expect("readlink"), "/var/lib/db");
        assert!(matches!(fs.metadata("/etc/os-release/x"), Err(FsError::NotADir { .. })));
    }

    #[test]
    fn symlink_loops_across_mounts_are_bounded() {
        let root = tree(&[], &[("/a", "/m/b")]);
        let m = tree(&[], &[("/b", "/a")]);
        let fs = MountedFs::new(
            Box::new(DirFs::new(root.path()).expect("root")),
            vec![Mount { target: "/m".into(), fs: Box::new(DirFs::new(m.path()).expect("m")) }],
        );
        assert!(matches!(fs.metadata("/a"), Err(FsError::SymlinkLoop { .. })));
    }
}
