//! A generic reader for the many small `KEY VALUE` / `KEY=VALUE` configuration files: shadow-utils'
//! `/etc/login.defs` (`KEY VALUE`), `/etc/default/useradd` (`KEY=VALUE`), libpwquality's
//! `pwquality.conf`, `pam_faillock`'s `faillock.conf` and `pam_pwhistory`'s `pwhistory.conf`
//! (`key = value`, bare `flag` lines allowed).
//!
//! Each format differs in small ways (where a comment may start, whether quotes are stripped,
//! whether a key may appear without a value), so the caller picks a [`Syntax`]; the presets below
//! describe the files named above. Every [`Entry`] keeps its line number. Which occurrence of a
//! repeated key counts is the caller's decision: all the formats above are read top to bottom with
//! later lines overriding earlier ones ([`KvFile::last`]).

use crate::baseline::Ctx;

/// How keys and values are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sep {
    /// `KEY<whitespace>VALUE` (login.defs).
    Whitespace,
    /// `KEY=VALUE`, whitespace around `=` ignored (useradd defaults, pwquality.conf).
    Equals,
}

/// The dialect of one file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    pub sep: Sep,
    /// `#` anywhere ends the line (libpwquality and pam_faillock cut at the first `#`); otherwise
    /// only lines whose first non-blank character is `#` are comments (shadow-utils).
    pub inline_comments: bool,
    /// Strip one pair of surrounding double quotes from values (shadow-utils' `getdef` does).
    pub unquote: bool,
    /// Keep lines that have a key and no value (pam_faillock's `silent`, `even_deny_root`).
    pub bare_keys: bool,
}

/// `/etc/login.defs` as shadow-utils' `getdef.c` reads it: `NAME value`, whole-line comments,
/// surrounding double quotes removed.
pub const LOGIN_DEFS: Syntax = Syntax { sep: Sep::Whitespace, inline_comments: false, unquote: true, bare_keys: false };

/// `/etc/default/useradd` as `useradd` reads it: `NAME=value`, whole-line comments.
pub const DEFAULT_USERADD: Syntax =
    Syntax { sep: Sep::Equals, inline_comments: false, unquote: true, bare_keys: false };

/// `pwquality.conf(5)`, `faillock.conf(5)`, `pwhistory.conf(5)`: `name = value`, `#` starts a
/// comment anywhere, bare flag names allowed.
pub const SECURITY_CONF: Syntax = Syntax { sep: Sep::Equals, inline_comments: true, unquote: false, bare_keys: true };

/// One setting line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// The value with surrounding whitespace (and quotes, if the syntax says so) removed; empty
    /// for a bare key.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvFile {
    /// Path inside the scanned root.
    pub path: String,
    pub entries: Vec<Entry>,
}

impl KvFile {
    /// The last occurrence of `key` (exact, case-sensitive match), the one that takes effect in
    /// every format this module describes.
    #[must_use]
    pub fn last(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }

    /// The first occurrence of `key`.
    #[must_use]
    pub fn first(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Where a resolved setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    pub file: &'a str,
    pub entry: &'a Entry,
}

/// The effective value of `key` across `files` read in order, each later line overriding earlier
/// ones (pwquality.conf.d/*.conf then pwquality.conf, for example).
#[must_use]
pub fn last_of<'a>(files: &'a [KvFile], key: &str) -> Option<Found<'a>> {
    files.iter().rev().find_map(|f| f.last(key).map(|entry| Found { file: &f.path, entry }))
}

fn strip_quotes(v: &str) -> &str {
    v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v)
}

/// Parse `text` in the given dialect. Lines without a key, or without a value where the syntax
/// does not allow bare keys, are skipped (the programs reading these files ignore them too).
#[must_use]
pub fn parse(text: &str, syntax: Syntax) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let mut line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if syntax.inline_comments
            && let Some(pos) = line.find('#')
        {
            line = line.get(..pos).unwrap_or("").trim_end();
        }
        let (key, value) = match syntax.sep {
            Sep::Whitespace => match line.split_once(|c: char| c.is_ascii_whitespace()) {
                Some((k, v)) => (k, v.trim()),
                None => (line, ""),
            },
            Sep::Equals => match line.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (line, ""),
            },
        };
        if key.is_empty() || (value.is_empty() && !syntax.bare_keys) {
            continue;
        }
        let value = if syntax.unquote { strip_quotes(value) } else { value };
        out.push(Entry { key: key.to_owned(), value: value.to_owned(), line: i + 1 });
    }
    out
}

/// Read and parse `path` from the scanned root: `Ok(None)` when absent, `Err(reason)` when it
/// cannot be read (too large, binary, I/O error).
pub fn load(ctx: &Ctx<'_>, path: &str, syntax: Syntax) -> Result<Option<KvFile>, String> {
    Ok(ctx.read_text(path)?.map(|text| KvFile { path: path.to_owned(), entries: parse(&text, syntax) }))
}

/// Parse an integer the way C's `strtol(s, _, 0)` does, as shadow-utils' `getdef_num` and
/// `getdef_long` do: optional sign, `0x` hexadecimal, leading `0` octal, otherwise decimal. The
/// whole string must be a number.
#[must_use]
pub fn c_integer(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(digits.get(1..)?, 8).ok()?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_defs_dialect() {
        let e = parse(
            "# c\nPASS_MAX_DAYS\t99999\n  UMASK  027 \nENCRYPT_METHOD \"SHA512\"\nLONELY\nX 1 # not a comment\n",
            LOGIN_DEFS,
        );
        assert_eq!(e.len(), 4);
        assert_eq!((e[0].key.as_str(), e[0].value.as_str(), e[0].line), ("PASS_MAX_DAYS", "99999", 2));
        assert_eq!(e[1].value, "027");
        assert_eq!(e[2].value, "SHA512");
        assert_eq!(e[3].value, "1 # not a comment");
    }

    #[test]
    fn equals_dialects() {
        let e = parse("minlen = 14 # comment\n  dcredit=-1\n# minclass = 4\nsilent\n=orphan\n", SECURITY_CONF);
        assert_eq!(
            e.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect::<Vec<_>>(),
            [("minlen", "14"), ("dcredit", "-1"), ("silent", "")]
        );
        let u = parse("INACTIVE=30\nSHELL=/bin/sh\nEMPTY=\n", DEFAULT_USERADD);
        assert_eq!(u.len(), 2);
    }

    #[test]
    fn last_wins_across_files() {
        let a = KvFile { path: "/a".into(), entries: parse("minlen=8\nminlen=10\n", SECURITY_CONF) };
        let b = KvFile { path: "/b".into(), entries: parse("minlen=14\n", SECURITY_CONF) };
        assert_eq!(a.last("minlen").map(|e| e.line), Some(2));
        assert_eq!(a.first("minlen").map(|e| e.line), Some(1));
        let files = [a, b];
        let f = last_of(&files, "minlen");
        assert_eq!(f.map(|f| (f.file, f.entry.value.as_str())), Some(("/b", "14")));
        assert!(last_of(&files, "nope").is_none());
    }

    #[test]
    fn strtol_like_integers() {
        assert_eq!(c_integer("027"), Some(0o27));
        assert_eq!(c_integer("0x1F"), Some(31));
        assert_eq!(c_integer("-1"), Some(-1));
        assert_eq!(c_integer("99999"), Some(99999));
        assert_eq!(c_integer("0"), Some(0));
        assert_eq!(c_integer("09"), None);
        assert_eq!(c_integer("12abc"), None);
        assert_eq!(c_integer(""), None);
        assert_eq!(c_integer("99999999999999999999999"), None);
    }
}
