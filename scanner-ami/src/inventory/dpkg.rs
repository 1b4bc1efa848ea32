//! dpkg databases: `var/lib/dpkg/status` and the distroless `var/lib/dpkg/status.d/*` files
//! (one or more control stanzas per file; `*.md5sums` companions skipped).
//!
//! A stanza counts as installed unless its `Status:` wants it deinstalled or purged, or says it is
//! `not-installed` or `config-files` (what `dpkg-query` shows as `rc`/`pn`). Stanzas without a
//! `Status:` (distroless) are installed. A stanza without `Package:` or `Version:` is skipped with a
//! note, as Trivy does.

use super::{DbFormat, DbRead, Ecosystem, Package};
use crate::fs::{FileKind, RootFs, join, read_text};
use crate::limits::{MAX_PACKAGES_PER_DB, MAX_TEXT_DB_BYTES};

/// The main database.
pub const STATUS: &str = "/var/lib/dpkg/status";
/// The distroless per-package directory.
pub const STATUS_D: &str = "/var/lib/dpkg/status.d";

/// Read every dpkg database on `fs`.
pub fn read_all(fs: &dyn RootFs) -> Vec<(DbFormat, String, DbRead)> {
    let mut out = Vec::new();
    if crate::fs::is_file(fs, STATUS) {
        let read = match read_text(fs, STATUS, MAX_TEXT_DB_BYTES) {
            Ok(text) => parse_status(&text, DbFormat::DpkgStatus, STATUS),
            Err(e) => DbRead { error: Some(e.to_string()), ..DbRead::default() },
        };
        out.push((DbFormat::DpkgStatus, STATUS.to_owned(), read));
    }
    match fs.read_dir(STATUS_D) {
        Ok(entries) => {
            let mut read = DbRead::default();
            for e in entries {
                if e.name.ends_with(".md5sums") || e.kind == FileKind::Dir {
                    continue;
                }
                let path = join(STATUS_D, &e.name);
                match read_text(fs, &path, MAX_TEXT_DB_BYTES) {
                    Ok(text) => {
                        let one = parse_status(&text, DbFormat::DpkgStatusD, &path);
                        read.packages.extend(one.packages);
                        for s in one.skipped {
                            read.skip(s);
                        }
                        if let Some(err) = one.error {
                            read.skip(format!("{path}: {err}"));
                        }
                    }
                    Err(err) => read.skip(format!("{path}: {err}")),
                }
                if read.packages.len() > MAX_PACKAGES_PER_DB {
                    read.error = Some(format!("more than {MAX_PACKAGES_PER_DB} packages; the rest are ignored"));
                    read.packages.truncate(MAX_PACKAGES_PER_DB);
                    break;
                }
            }
            out.push((DbFormat::DpkgStatusD, STATUS_D.to_owned(), read));
        }
        Err(e) if e.is_not_found() || matches!(e, crate::fs::FsError::NotADir { .. }) => {}
        Err(e) => out.push((
            DbFormat::DpkgStatusD,
            STATUS_D.to_owned(),
            DbRead { error: Some(e.to_string()), ..DbRead::default() },
        )),
    }
    out
}

/// One control stanza: its first line number, its (field, value) pairs with field names as
/// written, and the number of the first malformed line (neither `Field: value` nor a continuation).
type Stanza<'a> = (usize, Vec<(&'a str, String)>, Option<usize>);

fn stanzas(text: &str) -> impl Iterator<Item = Stanza<'_>> {
    let mut lines = text.lines().enumerate().peekable();
    std::iter::from_fn(move || {
        // Skip blank lines between stanzas.
        while lines.peek().is_some_and(|(_, l)| l.trim().is_empty()) {
            lines.next();
        }
        let (first_line, _) = *lines.peek()?;
        let mut fields: Vec<(&str, String)> = Vec::new();
        let mut malformed = None;
        while let Some(&(n, line)) = lines.peek() {
            if line.trim().is_empty() {
                break;
            }
            lines.next();
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some((_, v)) = fields.last_mut() {
                    v.push('\n');
                    v.push_str(line.trim());
                }
                continue;
            }
            match line.split_once(':') {
                Some((k, v)) if !k.trim().is_empty() && !k.contains(char::is_whitespace) => {
                    fields.push((k.trim(), v.trim().to_owned()));
                }
                _ => {
                    malformed.get_or_insert(n + 1);
                }
            }
        }
        Some((first_line + 1, fields, malformed))
    })
}

/// Split a Debian version `[epoch:]upstream[-revision]`.
#[must_use]
pub fn split_version(v: &str) -> (Option<u32>, String, Option<String>) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e.parse().ok(), rest),
        _ => (None, v),
    };
    match rest.rsplit_once('-') {
        Some((up, rev)) if !up.is_empty() && !rev.is_empty() => (epoch, up.to_owned(), Some(rev.to_owned())),
        _ => (epoch, rest.to_owned(), None),
    }
}

/// Parse `Installed-Size`: an integer in KiB (dpkg); a `KB`/`MB`/`GB` suffix is taken as decimal
/// units (seen in hand-written distroless files).
fn installed_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v.get(..digits_end)?.parse().ok()?;
    match v.get(digits_end..)?.trim().to_ascii_uppercase().as_str() {
        "" => n.checked_mul(1024),
        "KB" => n.checked_mul(1000),
        "MB" => n.checked_mul(1_000_000),
        "GB" => n.checked_mul(1_000_000_000),
        _ => None,
    }
}

/// Whether a `Status:` value means the package's files are on disk.
fn is_installed(status: &str) -> bool {
    let words: Vec<&str> = status.split_whitespace().collect();
    let want = words.first().copied().unwrap_or("");
    let state = words.get(2).copied().unwrap_or("");
    !matches!(want, "deinstall" | "purge") && !matches!(state, "not-installed" | "config-files")
}

/// Parse a dpkg status (or status.d) file.
#[must_use]
pub fn parse_status(text: &str, format: DbFormat, path: &str) -> DbRead {
    let mut read = DbRead::default();
    for (line, fields, malformed) in stanzas(text) {
        if let Some(bad) = malformed {
            read.skip(format!(
                "{path}:{line}: stanza skipped: line {bad} is neither `Field: value` nor a continuation"
            ));
            continue;
        }
        let get = |k: &str| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
        let Some(name) = get("Package").filter(|n| !n.is_empty()) else {
            read.skip(format!("{path}:{line}: stanza without a Package field"));
            continue;
        };
        if let Some(status) = get("Status")
            && !is_installed(status)
        {
            read.skip(format!("{path}:{line}: {name}: not installed (Status: {status})"));
            continue;
        }
        let Some(version) = get("Version").filter(|v| !v.is_empty()) else {
            read.skip(format!("{path}:{line}: {name}: no Version field"));
            continue;
        };
        if read.packages.len() >= MAX_PACKAGES_PER_DB {
            read.error = Some(format!("more than {MAX_PACKAGES_PER_DB} packages; the rest are ignored"));
            break;
        }
        let (epoch, upstream, revision) = split_version(version);
        let mut p = Package::new(Ecosystem::Deb, name, &upstream, format, path);
        p.epoch = epoch;
        p.release = revision;
        p.arch = get("Architecture").filter(|a| !a.is_empty()).map(str::to_owned);
        p.maintainer = get("Maintainer").filter(|a| !a.is_empty()).map(str::to_owned);
        p.installed_size = get("Installed-Size").and_then(installed_size);
        // "Source: name" or "Source: name (version)"; both default to the binary package's own.
        let (src_name, src_version) = match get("Source").filter(|s| !s.is_empty()) {
            Some(s) => match s.split_once('(') {
                Some((n, v)) => (n.trim().to_owned(), v.trim_end_matches(')').trim().to_owned()),
                None => (s.trim().to_owned(), version.to_owned()),
            },
            None => (name.to_owned(), version.to_owned()),
        };
        p.source_name = Some(src_name);
        p.source_version = Some(src_version);
        read.packages.push(p);
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_split() {
        assert_eq!(split_version("1:4.5-1ubuntu1"), (Some(1), "4.5".into(), Some("1ubuntu1".into())));
        assert_eq!(split_version("2.27-3ubuntu1"), (None, "2.27".into(), Some("3ubuntu1".into())));
        assert_eq!(split_version("1.0"), (None, "1.0".into(), None));
        assert_eq!(split_version("1:2.0-rc1-3"), (Some(1), "2.0-rc1".into(), Some("3".into())));
        assert_eq!(split_version("x:1"), (None, "x:1".into(), None));
    }

    #[test]
    fn sizes() {
        assert_eq!(installed_size("4064"), Some(4064 * 1024));
        assert_eq!(installed_size("4KB"), Some(4000));
        assert_eq!(installed_size("lots"), None);
        assert_eq!(installed_size("99999999999999999999"), None);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "\n\n\n",
            ":::\n::",
            "Package:\n",
            " continuation first\nPackage: a\nVersion: 1",
            "Package: a\nStatus:\nVersion: 1:",
        ] {
            let _ = parse_status(text, DbFormat::DpkgStatus, "/x");
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let base = b"Package: a\nStatus: install ok installed\nVersion: 1:2-3\nSource: b (4)\n\n".repeat(4);
        for _ in 0..2000 {
            let mut t = base.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = usize::try_from(seed % t.len() as u64).unwrap_or(0);
                t[i] = (seed >> 32) as u8;
            }
            let _ = parse_status(&String::from_utf8_lossy(&t), DbFormat::DpkgStatus, "/x");
        }
    }
}
