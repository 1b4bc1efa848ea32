//! Semantic Versioning 2.0.0 precedence (semver.org §11), as npm, Cargo and Go modules use it.
//!
//! `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, numbers without leading zeros. An optional `v`
//! prefix is accepted (Go writes `v1.2.3`, OSV's Go ecosystem `1.2.3`). Build metadata is
//! checked and then ignored, which is also how Go treats `+incompatible`. A pre-release sorts
//! before its release; pre-release identifiers compare one by one: numeric ones as numbers,
//! below alphanumeric ones, which compare in ASCII order; a shorter list that is a prefix of a
//! longer one sorts first.
//!
//! Go pseudo-versions (`v0.0.0-20191109021931-daa7c04131f5`, `vX.Y.(Z+1)-0.yyyymmddhhmmss-hash`,
//! `vX.Y.Z-pre.0.yyyymmddhhmmss-hash`) are ordinary SemVer pre-releases and order by these rules,
//! as the go command orders them.

use std::cmp::Ordering;

use super::{Scheme, VersionError};

struct SemVer<'a> {
    major: &'a [u8],
    minor: &'a [u8],
    patch: &'a [u8],
    pre: Vec<&'a [u8]>,
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let va = parse(a).map_err(|reason| VersionError::new(Scheme::Semver, a, reason))?;
    let vb = parse(b).map_err(|reason| VersionError::new(Scheme::Semver, b, reason))?;
    Ok(super::cmp_digits(va.major, vb.major)
        .then_with(|| super::cmp_digits(va.minor, vb.minor))
        .then_with(|| super::cmp_digits(va.patch, vb.patch))
        .then_with(|| cmp_pre(&va.pre, &vb.pre)))
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// A numeric identifier: `0` or digits without a leading zero.
fn numeric<'a>(s: &'a [u8], what: &'static str) -> Result<&'a [u8], &'static str> {
    match s {
        [] => Err(what),
        [b'0', _, ..] => Err("a number has a leading zero"),
        _ if s.iter().all(u8::is_ascii_digit) => Ok(s),
        _ => Err(what),
    }
}

fn parse(s: &str) -> Result<SemVer<'_>, &'static str> {
    let bytes = s.as_bytes();
    let bytes = bytes.strip_prefix(b"v").unwrap_or(bytes);
    if bytes.is_empty() {
        return Err("version string is empty");
    }
    let (rest, build) = match bytes.iter().position(|&c| c == b'+') {
        Some(plus) => {
            let (r, b) = bytes.split_at(plus);
            (r, Some(b.get(1..).unwrap_or_default()))
        }
        None => (bytes, None),
    };
    if let Some(build) = build {
        for id in build.split(|&c| c == b'.') {
            if id.is_empty() || !id.iter().all(|&c| is_ident_char(c)) {
                return Err("invalid build metadata");
            }
        }
    }
    let (core, pre) = match rest.iter().position(|&c| c == b'-') {
        Some(dash) => {
            let (c, p) = rest.split_at(dash);
            (c, Some(p.get(1..).unwrap_or_default()))
        }
        None => (rest, None),
    };
    let mut parts = core.split(|&c| c == b'.');
    let major = numeric(parts.next().unwrap_or_default(), "MAJOR.MINOR.PATCH expected")?;
    let minor = numeric(parts.next().unwrap_or_default(), "MAJOR.MINOR.PATCH expected")?;
    let patch = numeric(parts.next().unwrap_or_default(), "MAJOR.MINOR.PATCH expected")?;
    if parts.next().is_some() {
        return Err("more than MAJOR.MINOR.PATCH");
    }
    let mut ids = Vec::new();
    if let Some(pre) = pre {
        for id in pre.split(|&c| c == b'.') {
            if id.is_empty() || !id.iter().all(|&c| is_ident_char(c)) {
                return Err("invalid pre-release identifier");
            }
            if id.iter().all(u8::is_ascii_digit) {
                numeric(id, "invalid pre-release identifier")?;
            }
            ids.push(id);
        }
    }
    Ok(SemVer { major, minor, patch, pre: ids })
}

fn cmp_pre(a: &[&[u8]], b: &[&[u8]]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    for (x, y) in a.iter().zip(b) {
        let xn = x.iter().all(u8::is_ascii_digit);
        let yn = y.iter().all(u8::is_ascii_digit);
        let ord = match (xn, yn) {
            (true, true) => super::cmp_digits(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}
