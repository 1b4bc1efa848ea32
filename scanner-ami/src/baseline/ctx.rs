//! The evaluation context every rule gets: bounded, read-only access to the scanned root, the
//! detected OS, the installed packages, and a memo so parsed files (sshd_config, the account
//! databases, sysctl settings, the filesystem walk) are parsed once per scan and shared by rules.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;

use crate::fs::{DirEntry, FsError, Meta, RootFs, read_file};
use crate::inventory::Package;
use crate::os::{Family, OsInfo};

/// Largest configuration file a rule reads. Real ones are a few KiB (sshd_config ~3 KiB, a large
/// sudoers ~50 KiB); 4 MiB bounds memory per file whatever the disk holds (a 1 GiB sshd_config
/// ends in `error`).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Largest account database (/etc/passwd, shadow, group, gshadow). 10^5 accounts of ~100 bytes
/// is 10 MiB; a passwd with 10^6 lines (~60 MiB) ends in `error`.
pub const MAX_ACCOUNT_DB_BYTES: u64 = 16 * 1024 * 1024;

/// Counters reported with the baseline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Files read whole by rules (each counted once per read).
    pub files_read: u64,
    /// Bytes of those files.
    pub bytes_read: u64,
    /// Entries visited by the filesystem walk.
    pub files_visited: u64,
    /// True if the walk stopped at its entry bound before covering the whole tree.
    pub walk_capped: bool,
}

/// The context of one baseline evaluation.
pub struct Ctx<'a> {
    pub fs: &'a dyn RootFs,
    pub os: Option<&'a OsInfo>,
    pub packages: &'a [Package],
    memo: RefCell<HashMap<&'static str, Rc<dyn Any>>>,
    files_read: Cell<u64>,
    bytes_read: Cell<u64>,
    files_visited: Cell<u64>,
    walk_capped: Cell<bool>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("os", &self.os).field("packages", &self.packages.len()).finish_non_exhaustive()
    }
}

/// Why a text file could not be used.
fn describe(path: &str, e: &FsError) -> String {
    match e {
        FsError::TooLarge { size, limit, .. } => {
            format!("{path}: {size} bytes, over the {limit}-byte limit for a config file")
        }
        other => other.to_string(),
    }
}

impl<'a> Ctx<'a> {
    #[must_use]
    pub fn new(fs: &'a dyn RootFs, os: Option<&'a OsInfo>, packages: &'a [Package]) -> Self {
        Ctx {
            fs,
            os,
            packages,
            memo: RefCell::new(HashMap::new()),
            files_read: Cell::new(0),
            bytes_read: Cell::new(0),
            files_visited: Cell::new(0),
            walk_capped: Cell::new(false),
        }
    }

    /// The detected OS family (`Other` when unknown).
    #[must_use]
    pub fn family(&self) -> Family {
        self.os.map_or(Family::Other, |o| o.family)
    }

    /// True if a package of this name is installed (any ecosystem, any arch).
    #[must_use]
    pub fn installed(&self, name: &str) -> bool {
        self.packages.iter().any(|p| p.name == name)
    }

    /// The first of `names` that is installed.
    #[must_use]
    pub fn any_installed<'n>(&self, names: &[&'n str]) -> Option<&'n str> {
        names.iter().copied().find(|n| self.installed(n))
    }

    /// True if the package inventory is empty (no database found): package-based applicability
    /// cannot be decided then.
    #[must_use]
    pub fn no_inventory(&self) -> bool {
        self.packages.is_empty()
    }

    /// Read a text configuration file: `Ok(None)` when absent, `Err(reason)` when too large,
    /// unreadable, or binary (text configs never hold NUL bytes).
    pub fn read_text(&self, path: &str) -> Result<Option<String>, String> {
        self.read_text_limit(path, MAX_CONFIG_BYTES)
    }

    /// [`Ctx::read_text`] with a custom size bound.
    pub fn read_text_limit(&self, path: &str, limit: u64) -> Result<Option<String>, String> {
        match read_file(self.fs, path, limit) {
            Ok(bytes) => {
                self.files_read.set(self.files_read.get() + 1);
                self.bytes_read.set(self.bytes_read.get() + bytes.len() as u64);
                if bytes.contains(&0) {
                    return Err(format!("{path}: binary data (NUL bytes) in a text file"));
                }
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(describe(path, &e)),
        }
    }

    /// Metadata following symlinks inside the root: `Ok(None)` when absent.
    pub fn stat(&self, path: &str) -> Result<Option<Meta>, String> {
        match self.fs.metadata(path) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Metadata of the path itself: `Ok(None)` when absent.
    pub fn lstat(&self, path: &str) -> Result<Option<Meta>, String> {
        match self.fs.symlink_metadata(path) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Entries of a directory: empty when it does not exist.
    pub fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, String> {
        match self.fs.read_dir(path) {
            Ok(v) => Ok(v),
            Err(e) if e.is_not_found() || matches!(e, FsError::NotADir { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Parse something once per evaluation and share it between rules.
    pub fn memo<T: 'static>(&self, key: &'static str, make: impl FnOnce(&Self) -> T) -> Rc<T> {
        if let Some(v) = self.memo.borrow().get(key).cloned()
            && let Ok(t) = v.downcast::<T>()
        {
            return t;
        }
        let value = Rc::new(make(self));
        self.memo.borrow_mut().insert(key, value.clone() as Rc<dyn Any>);
        value
    }

    /// Count entries visited by a filesystem walk.
    pub fn count_visited(&self, n: u64) {
        self.files_visited.set(self.files_visited.get() + n);
    }

    /// Record that a walk stopped at its bound.
    pub fn mark_walk_capped(&self) {
        self.walk_capped.set(true);
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            files_read: self.files_read.get(),
            bytes_read: self.bytes_read.get(),
            files_visited: self.files_visited.get(),
            walk_capped: self.walk_capped.get(),
        }
    }
}

/// Expand a glob with `*`, `?` and `[...]` in any component, resolved inside the scanned root,
/// sorted, at most `limit` matches (sshd `Include`, sudoers/PAM/sysctl directories).
pub fn glob(ctx: &Ctx<'_>, pattern: &str, limit: usize) -> Result<Vec<String>, String> {
    let mut current = vec![String::new()];
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for base in &current {
            if comp.contains(['*', '?', '[']) {
                let dir = if base.is_empty() { "/".to_owned() } else { base.clone() };
                for e in ctx.list_dir(&dir)? {
                    if e.name.starts_with('.') && !comp.starts_with('.') {
                        continue;
                    }
                    if wildmatch(comp, &e.name) {
                        next.push(format!("{base}/{}", e.name));
                    }
                }
            } else {
                let p = format!("{base}/{comp}");
                if last || matches!(ctx.stat(&p), Ok(Some(m)) if m.kind == crate::fs::FileKind::Dir) {
                    next.push(p);
                }
            }
            if next.len() > limit {
                return Err(format!("{pattern}: more than {limit} matches"));
            }
        }
        current = next;
    }
    current.retain(|p| matches!(ctx.stat(p), Ok(Some(_))));
    current.sort();
    Ok(current)
}

/// fnmatch-style matching of one path component: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
#[must_use]
pub fn wildmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking on the last `*` (linear in practice, no recursion).
    let (mut pi, mut ni) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some(pi);
                mark = ni;
                pi += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                ni += 1;
                continue;
            }
            Some('[') => {
                if let Some((matched, len)) = class(&p[pi..], n[ni])
                    && matched
                {
                    pi += len;
                    ni += 1;
                    continue;
                }
            }
            Some(&c) if c == n[ni] => {
                pi += 1;
                ni += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some(s) => {
                pi = s + 1;
                mark += 1;
                ni = mark;
            }
            None => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == '*')
}

/// Match `c` against the bracket class at the start of `p`; returns (matched, class length).
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while let Some(&pc) = p.get(i) {
        if pc == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-')
            && let Some(&hi) = p.get(i + 2)
            && hi != ']'
        {
            if pc <= c && c <= hi {
                matched = true;
            }
            i += 3;
            continue;
        }
        if pc == c {
            matched = true;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::wildmatch;

    #[test]
    fn wildmatch_basics() {
        assert!(wildmatch("*.conf", "50-cloud-init.conf"));
        assert!(!wildmatch("*.conf", "x.conf.bak"));
        assert!(wildmatch("ssh_host_*_key", "ssh_host_ed25519_key"));
        assert!(!wildmatch("ssh_host_*_key", "ssh_host_ed25519_key.pub"));
        assert!(wildmatch("[0-9]*", "10-x"));
        assert!(!wildmatch("[!0-9]*", "10-x"));
        assert!(wildmatch("a?c", "abc"));
        assert!(wildmatch("*", ""));
        assert!(!wildmatch("a[", "a["), "an unterminated class matches nothing");
    }
}
