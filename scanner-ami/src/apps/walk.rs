//! The bounded application walk: visits every directory of a scanned root once, depth first in
//! name order, and classifies each entry from its name and its directory-entry kind alone —
//! no inode is read for a file whose name cannot matter.
//!
//! It never follows a symlink (only entries listed as directories are entered, and only entries
//! listed as regular files are offered), skips `/proc`, `/sys`, `/dev` and every `.git` (Trivy's
//! rootfs walk skips the same), and stops at the caps below; each cap reached is noted in
//! [`WalkStats::truncated`] and the walk goes on where it can.

use std::ops::ControlFlow;

use super::WalkStats;
use crate::fs::{FileKind, RootFs};

/// Deepest directory entered below the root. Real trees nest a few dozen levels at most (the
/// deepest `node_modules` chains seen by npm users are ~30); 64 bounds a crafted chain of nested
/// directories.
pub const MAX_DEPTH: usize = 64;

/// Longest path offered, in bytes: Linux's `PATH_MAX`.
pub const MAX_PATH_LEN: usize = 4096;

/// Most directory entries visited in one walk. A full server root holds about 400,000 (a
/// developer machine held 392,501 regular files, docs/references.md); five
/// times that bounds the time of a walk over a crafted filesystem.
pub const MAX_ENTRIES: u64 = 2_000_000;

/// Top-level directories never entered (virtual filesystems, empty on a disk at rest but never
/// package locations).
const SKIP_TOP: [&str; 3] = ["proc", "sys", "dev"];

/// Extensions of files that cannot be an executable we read (sources, text, data, images,
/// archives, compiled bytecode, kernel modules): no inode read for them.
const NOT_EXECUTABLE_EXT: [&str; 52] = [
    "a", "bmp", "bz2", "c", "cfg", "conf", "crt", "css", "csv", "db", "gif", "go", "gz", "h", "hpp", "html", "ico",
    "ini", "java", "jpeg", "jpg", "js", "json", "key", "ko", "lock", "log", "md", "mo", "o", "pem", "php", "pl", "pm",
    "png", "po", "py", "pyc", "pyi", "pyo", "rb", "rs", "rst", "svg", "toml", "ts", "txt", "xml", "xz", "yaml", "yml",
    "zst",
];

/// What a file may hold, judged from its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// Any other regular file: an executable if its mode has an execute bit.
    MaybeExecutable,
    /// `*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, `EGG-INFO/PKG-INFO`, a `*.egg-info` file.
    PythonMetadata,
    /// A `package.json` at a package root (directly in `node_modules`, or `@scope` below it, or
    /// outside any `node_modules`).
    PackageJson,
    /// `specifications/*.gemspec`.
    Gemspec,
    /// `vendor/composer/installed.json` (any `composer/installed.json`).
    ComposerInstalled,
    /// `*.deps.json`.
    DepsJson,
    /// `.jar`, `.war`, `.ear`, `.par`.
    JavaArchive,
}

/// Classify the regular file `name` in the directory `dir` (absolute, `/` for the root).
#[must_use]
pub fn classify(dir: &str, name: &str) -> Option<Candidate> {
    let parent = dir.rsplit('/').next().unwrap_or("");
    if (name == "METADATA" && parent.ends_with(".dist-info"))
        || (name == "PKG-INFO" && (parent.ends_with(".egg-info") || parent == "EGG-INFO"))
        || name.ends_with(".egg-info")
    {
        return Some(Candidate::PythonMetadata);
    }
    if name == "package.json" {
        return node_package_root(dir).then_some(Candidate::PackageJson);
    }
    if parent == "specifications" && name.ends_with(".gemspec") {
        return Some(Candidate::Gemspec);
    }
    if name == "installed.json" && parent == "composer" {
        return Some(Candidate::ComposerInstalled);
    }
    if name.ends_with(".deps.json") {
        return Some(Candidate::DepsJson);
    }
    if super::java::is_archive_name(name) {
        return Some(Candidate::JavaArchive);
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && NOT_EXECUTABLE_EXT.contains(&ext.to_ascii_lowercase().as_str()) => {
            None
        }
        _ => Some(Candidate::MaybeExecutable),
    }
}

/// True when `dir` is a package root for a `package.json`: outside any `node_modules`, or
/// directly below one (`node_modules/x`, `node_modules/@scope/x`). A `package.json` deeper in a
/// package (`node_modules/x/lib/package.json`, a helper's marker) is not a package.
fn node_package_root(dir: &str) -> bool {
    let comps: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    let Some(last_nm) = comps.iter().rposition(|c| *c == "node_modules") else {
        return true;
    };
    match &comps[last_nm + 1..] {
        [_name] => true,
        [scope, _name] => scope.starts_with('@'),
        _ => false,
    }
}

/// Join a directory and a name.
#[must_use]
pub fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

/// Walk `fs` from its root, calling `visit(path, candidate)` for every regular file that may
/// matter; `visit` returns `Break` to stop the whole walk (a byte budget spent).
pub fn walk(fs: &dyn RootFs, stats: &mut WalkStats, mut visit: impl FnMut(&str, Candidate) -> ControlFlow<()>) {
    // (directory path, depth)
    let mut stack: Vec<(String, usize)> = vec![("/".to_owned(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = match fs.read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                stats.truncated.push(format!("{dir}: not listed: {e}"));
                continue;
            }
        };
        stats.dirs += 1;
        let mut subdirs = Vec::new();
        for entry in entries {
            stats.entries += 1;
            if stats.entries > MAX_ENTRIES {
                stats.truncated.push(format!("walk stopped after {MAX_ENTRIES} directory entries"));
                return;
            }
            let path = join(&dir, &entry.name);
            if path.len() > MAX_PATH_LEN {
                stats.truncated.push(format!("{dir}: an entry's path exceeds {MAX_PATH_LEN} bytes; skipped"));
                continue;
            }
            match entry.kind {
                FileKind::Dir => {
                    if entry.name == ".git" || (depth == 0 && SKIP_TOP.contains(&entry.name.as_str())) {
                        continue;
                    }
                    if depth + 1 > MAX_DEPTH {
                        stats.truncated.push(format!("{path}: deeper than {MAX_DEPTH} levels; not entered"));
                        continue;
                    }
                    subdirs.push((path, depth + 1));
                }
                FileKind::File => {
                    if let Some(c) = classify(&dir, &entry.name)
                        && visit(&path, c).is_break()
                    {
                        return;
                    }
                }
                FileKind::Symlink | FileKind::Other => {}
            }
        }
        // Reverse so that the stack pops them in name order.
        stack.extend(subdirs.into_iter().rev());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_from_names_only() {
        use Candidate as C;
        assert_eq!(
            classify("/usr/lib/python3/site-packages/requests-2.31.0.dist-info", "METADATA"),
            Some(C::PythonMetadata)
        );
        assert_eq!(classify("/usr/lib/python3/x.egg-info", "PKG-INFO"), Some(C::PythonMetadata));
        assert_eq!(classify("/opt/app/EGG-INFO", "PKG-INFO"), Some(C::PythonMetadata));
        assert_eq!(classify("/usr/lib/python3", "distlib-0.3.1.egg-info"), Some(C::PythonMetadata));
        assert_eq!(classify("/srv/app", "package.json"), Some(C::PackageJson));
        assert_eq!(classify("/srv/app/node_modules/lodash", "package.json"), Some(C::PackageJson));
        assert_eq!(classify("/srv/app/node_modules/@babel/core", "package.json"), Some(C::PackageJson));
        assert_eq!(classify("/srv/app/node_modules/lodash/fp", "package.json"), None);
        assert_eq!(classify("/srv/app/node_modules/a/node_modules/b", "package.json"), Some(C::PackageJson));
        assert_eq!(classify("/usr/share/gems/specifications", "rake-13.0.gemspec"), Some(C::Gemspec));
        assert_eq!(classify("/var/www/vendor/composer", "installed.json"), Some(C::ComposerInstalled));
        assert_eq!(classify("/opt/svc", "svc.deps.json"), Some(C::DepsJson));
        assert_eq!(classify("/opt/svc", "svc.json"), None);
        assert_eq!(classify("/usr/lib/python3", "x.py"), None);
        assert_eq!(classify("/usr/bin", "docker"), Some(C::MaybeExecutable));
        assert_eq!(classify("/usr/lib", "libc.so.6"), Some(C::MaybeExecutable));
        assert_eq!(classify("/etc", ".bashrc"), Some(C::MaybeExecutable));
    }
}
