//! Kernel parameters as persisted for boot: the `sysctl.d(5)` drop-in files of the scanned image
//! (`/etc/sysctl.d`, `/run/sysctl.d`, `/usr/local/lib/sysctl.d`, `/usr/lib/sysctl.d`,
//! `/lib/sysctl.d`, then `/etc/sysctl.conf`) resolved with `systemd-sysctl`'s precedence. The
//! running kernel's values (`/proc/sys`) are never consulted: offline, only what the image would
//! apply at boot is knowable.
//!
//! Also owns [`drop_ins`], the `conf.d` directory semantics shared by systemd and kmod (files
//! sorted by name across directories, a same-named file in a higher-priority directory masking
//! the others, a symlink to `/dev/null` masking without content), used by the modprobe parser.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::baseline::Ctx;
use crate::baseline::ctx::wildmatch;
use crate::fs::FileKind;

/// Most drop-in files read for one configuration set. Real systems have a few dozen
/// (Ubuntu 22.04: 11 sysctl.d files, 14 modprobe.d files); 512 bounds the work an image full of
/// planted files can cause, and the set ends in `error` beyond it.
pub const MAX_DROP_INS: usize = 512;

/// Most bytes read for one configuration set across all its files (each file is also bounded by
/// [`crate::baseline::ctx::MAX_CONFIG_BYTES`]); real sets are well under 100 KiB.
pub const MAX_SET_BYTES: u64 = 32 * 1024 * 1024;

/// The `sysctl.d` directories in `systemd-sysctl`'s priority order, highest first (sysctl.d(5):
/// `/etc` overrides `/run`, which overrides `/usr/local/lib` and `/usr/lib`; `/lib` is the
/// non-merged-/usr location Debian's procps also reads).
pub const SYSCTL_DIRS: [&str; 5] =
    ["/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"];

/// The legacy file, applied after every drop-in (procps `sysctl --system` reads it last; systemd
/// reads it through the `/etc/sysctl.d/99-sysctl.conf` symlink distributions ship).
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// The files of a drop-in set, in application order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropIns {
    /// Files to read, in application order (sorted by file name).
    pub files: Vec<String>,
    /// `(masked file, masked by)`: same-named files in lower-priority directories, and names
    /// masked by a symlink to `/dev/null`.
    pub masked: Vec<(String, String)>,
    /// Directories that could not be listed, with the reason.
    pub errors: Vec<String>,
}

/// What [`read_set`] read: the files parsed, the files that did not exist, and errors.
#[derive(Debug, Default)]
pub struct SetRead {
    pub read: Vec<String>,
    pub missing: Vec<String>,
    pub errors: Vec<String>,
}

/// Read a configuration set's `files` in order and hand each present one to `parse`, stopping with
/// an error once [`MAX_SET_BYTES`] have been read in total (`what` names the set in that error).
pub fn read_set(ctx: &Ctx<'_>, files: Vec<String>, what: &str, mut parse: impl FnMut(&str, &str)) -> SetRead {
    let mut out = SetRead::default();
    let mut bytes = 0u64;
    for f in files {
        match ctx.read_text(&f) {
            Ok(Some(text)) => {
                bytes += text.len() as u64;
                if bytes > MAX_SET_BYTES {
                    out.errors.push(format!("{what} over {MAX_SET_BYTES} bytes in total"));
                    break;
                }
                parse(&text, &f);
                out.read.push(f);
            }
            Ok(None) => out.missing.push(f),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// List the `*<suffix>` files of `dirs` (highest priority first) with `conf.d` semantics: sorted
/// by file name regardless of directory; a name present in a higher-priority directory masks the
/// same name elsewhere; a symlink to `/dev/null` masks the name and is not read; hidden files and
/// non-files are skipped.
pub fn drop_ins(ctx: &Ctx<'_>, dirs: &[&str], suffix: &str) -> DropIns {
    let mut out = DropIns::default();
    // name -> winning path (None when masked by /dev/null).
    let mut chosen: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut count = 0usize;
    for dir in dirs {
        let entries = match ctx.list_dir(dir) {
            Ok(v) => v,
            Err(e) => {
                out.errors.push(format!("{dir}: cannot list: {e}"));
                continue;
            }
        };
        for e in entries {
            if e.name.starts_with('.') || !e.name.ends_with(suffix) {
                continue;
            }
            if !matches!(e.kind, FileKind::File | FileKind::Symlink) {
                continue;
            }
            let path = format!("{dir}/{}", e.name);
            if let Some(winner) = chosen.get(&e.name) {
                let by = winner.clone().unwrap_or_else(|| "a /dev/null symlink".to_owned());
                out.masked.push((path, by));
                continue;
            }
            count += 1;
            if count > MAX_DROP_INS {
                out.errors.push(format!("more than {MAX_DROP_INS} *{suffix} files in {}", dirs.join(", ")));
                return out;
            }
            let null = e.kind == FileKind::Symlink && ctx.fs.read_link(&path).is_ok_and(|t| t == "/dev/null");
            if null {
                out.masked.push((path.clone(), "/dev/null".to_owned()));
                chosen.insert(e.name, None);
            } else {
                chosen.insert(e.name, Some(path));
            }
        }
    }
    out.files = chosen.into_values().flatten().collect();
    out
}

/// True if the symlink `path` points at `target` (an absolute path inside the scanned root),
/// resolving a relative link against the link's directory.
#[must_use]
pub fn links_to(ctx: &Ctx<'_>, path: &str, target: &str) -> bool {
    let Ok(link) = ctx.fs.read_link(path) else { return false };
    let base = path.rsplit_once('/').map_or("", |(d, _)| d);
    let joined = if link.starts_with('/') { link } else { format!("{base}/{link}") };
    let mut comps: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                comps.pop();
            }
            c => comps.push(c),
        }
    }
    format!("/{}", comps.join("/")) == target
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The key as written (without a leading `-`).
    pub key: String,
    /// The key as a `/proc/sys` relative path (`net/ipv4/ip_forward`): the canonical form.
    pub path: String,
    /// The value, surrounding whitespace removed.
    pub value: String,
    pub file: String,
    pub line: usize,
    /// `-key = value`: a failure to write is ignored.
    pub ignore_failure: bool,
    /// The key contains a glob (`*`, `?`, `[`) and applies to every matching parameter.
    pub glob: bool,
    /// `-key` alone: the key is excluded from glob matches and left at the kernel default.
    pub exclusion: bool,
}

/// The kernel parameters the image sets at boot.
#[derive(Debug, Clone, Default)]
pub struct Sysctl {
    /// Files read, in application order.
    pub files: Vec<String>,
    /// Every assignment, in application order.
    pub assignments: Vec<Assignment>,
    /// Masked drop-ins (see [`DropIns::masked`]).
    pub masked: Vec<(String, String)>,
    /// `(file, line, why)` for lines that are not assignments (ignored, as systemd-sysctl does).
    pub malformed: Vec<(String, usize, String)>,
    /// Files or directories that could not be read: any of them could hold any key.
    pub errors: Vec<String>,
    /// Files that are dangling symlinks (skipped).
    pub dangling: Vec<String>,
}

/// A sysctl key in `/proc/sys` path form. sysctl.d(5): either `/` or `.` separates components;
/// if the first separator is a `.`, dots and slashes are swapped (so `net.ipv4.conf.eth0/100.x`
/// names the interface `eth0.100`); if it is a `/`, the key is already a path.
#[must_use]
pub fn to_path(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes().get(i) == Some(&b'.') => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_owned(),
    }
}

fn is_glob(key: &str) -> bool {
    key.contains(['*', '?', '['])
}

/// Match a `/proc/sys` path against a glob path component by component (`*` never crosses `/`,
/// as with glob(3) on the `/proc/sys` tree).
#[must_use]
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let n: Vec<&str> = path.split('/').collect();
    p.len() == n.len() && p.iter().zip(&n).all(|(a, b)| wildmatch(a, b))
}

/// Parse one sysctl.d file. Lines starting with `#` or `;` and empty lines are comments; `key =
/// value` assigns; `-key = value` ignores write failures; `-key` alone excludes a key from globs.
pub fn parse(text: &str, file: &str, out: &mut Sysctl) {
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (line, None),
        };
        let (key, dash) = match key.strip_prefix('-') {
            Some(k) => (k.trim(), true),
            None => (key, false),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            out.malformed.push((file.to_owned(), n, "not a `key = value` assignment".to_owned()));
            continue;
        }
        let exclusion = value.is_none();
        if exclusion && !dash {
            out.malformed.push((file.to_owned(), n, "no `=` in line".to_owned()));
            continue;
        }
        out.assignments.push(Assignment {
            key: key.to_owned(),
            path: to_path(key),
            value: value.unwrap_or_default().to_owned(),
            file: file.to_owned(),
            line: n,
            ignore_failure: dash && !exclusion,
            glob: is_glob(key),
            exclusion,
        });
    }
}

impl Sysctl {
    /// The assignment that decides `key` at boot (`key` in dotted or path form): the last
    /// explicit assignment of the key; otherwise the glob assignment applied last among those
    /// matching it (explicit keys are never overridden by globs, systemd-sysctl). `None` when
    /// nothing sets it, or when the last explicit entry is a `-key` exclusion.
    #[must_use]
    pub fn effective(&self, key: &str) -> Option<&Assignment> {
        let path = to_path(key);
        if let Some(a) = self.assignments.iter().rev().find(|a| !a.glob && a.path == path) {
            return (!a.exclusion).then_some(a);
        }
        self.assignments.iter().rev().find(|a| a.glob && !a.exclusion && glob_matches(&a.path, &path))
    }

    /// Every assignment that matches `key` (explicitly or by glob), in application order.
    #[must_use]
    pub fn all(&self, key: &str) -> Vec<&Assignment> {
        let path = to_path(key);
        self.assignments.iter().filter(|a| if a.glob { glob_matches(&a.path, &path) } else { a.path == path }).collect()
    }
}

/// Read and parse the image's sysctl configuration once per evaluation.
pub fn load(ctx: &Ctx<'_>) -> Rc<Sysctl> {
    ctx.memo("sysctl", |ctx| {
        let set = drop_ins(ctx, &SYSCTL_DIRS, ".conf");
        let mut out = Sysctl { masked: set.masked, errors: set.errors, ..Sysctl::default() };
        let mut files = set.files;
        // /etc/sysctl.conf is read last; skip the drop-in symlinks that point at it so it is
        // neither read twice nor reported at the wrong position.
        files.retain(|f| !links_to(ctx, f, SYSCTL_CONF));
        files.push(SYSCTL_CONF.to_owned());
        let set = read_set(ctx, files, "sysctl configuration", |text, f| parse(text, f, &mut out));
        out.files.extend(set.read);
        out.dangling.extend(set.missing.into_iter().filter(|f| f != SYSCTL_CONF));
        out.errors.extend(set.errors);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Sysctl {
        let mut s = Sysctl::default();
        parse(text, "/etc/sysctl.d/t.conf", &mut s);
        s
    }

    #[test]
    fn keys_with_dots_or_slashes_are_equivalent() {
        assert_eq!(to_path("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
        assert_eq!(to_path("net/ipv4/ip_forward"), "net/ipv4/ip_forward");
        assert_eq!(to_path("net.ipv4.conf.eth0/100.rp_filter"), "net/ipv4/conf/eth0.100/rp_filter");
        assert_eq!(to_path("net/ipv4/conf/eth0.100/rp_filter"), "net/ipv4/conf/eth0.100/rp_filter");
        let s = parsed("net/ipv4/ip_forward = 1\n");
        assert_eq!(s.effective("net.ipv4.ip_forward").map(|a| a.value.as_str()), Some("1"));
    }

    #[test]
    fn comments_dashes_and_last_assignment() {
        let s = parsed("# c\n; c\n\nkernel.randomize_va_space=1\n-kernel.randomize_va_space = 2 \nbogus line\n");
        let a = s.effective("kernel.randomize_va_space").expect("set");
        assert_eq!((a.value.as_str(), a.line, a.ignore_failure), ("2", 5, true));
        assert_eq!(s.malformed.len(), 1);
        assert_eq!(s.all("kernel.randomize_va_space").len(), 2);
    }

    #[test]
    fn globs_yield_to_explicit_keys_and_exclusions() {
        let s = parsed(
            "net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\n",
        );
        // systemd's 50-default.conf: `all` is excluded from the glob, `default` is explicit.
        assert!(s.effective("net.ipv4.conf.all.rp_filter").is_none());
        assert_eq!(s.effective("net.ipv4.conf.default.rp_filter").map(|a| a.line), Some(1));
        assert_eq!(s.effective("net.ipv4.conf.eth0.rp_filter").map(|a| a.line), Some(2));
        let s = parsed("net.ipv4.conf.all.rp_filter = 1\nnet.ipv4.conf.*.rp_filter = 2\n");
        assert_eq!(s.effective("net.ipv4.conf.all.rp_filter").map(|a| a.value.as_str()), Some("1"));
        assert!(!glob_matches("net/*/rp_filter", "net/ipv4/conf/all/rp_filter"));
    }

    #[test]
    fn exclusion_after_assignment_unsets() {
        let s = parsed("fs.suid_dumpable = 0\n-fs.suid_dumpable\n");
        assert!(s.effective("fs.suid_dumpable").is_none());
        let s = parsed("-fs.suid_dumpable\nfs.suid_dumpable = 0\n");
        assert_eq!(s.effective("fs.suid_dumpable").map(|a| a.line), Some(2));
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        let s = parsed("=\n-\n==1\n- = 3\n\u{feff}x=1\n[*=1\n");
        assert!(s.effective("x").is_none() || s.effective("x").is_some());
        assert!(!s.malformed.is_empty());
    }
}
