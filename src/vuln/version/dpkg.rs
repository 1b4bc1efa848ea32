//! Debian version ordering, as `dpkg --compare-versions` does it (deb-version(7)).
//!
//! A version is `[epoch:]upstream[-revision]`: the epoch is the number before the first `:`, the
//! revision is what follows the last `-` (absent means `0`). Epochs compare as numbers; upstream
//! and revision compare by alternating runs: a non-digit run compares character by character
//! with `~` before everything (even the end of the string), then the end, then letters, then all
//! other characters in ASCII order; a digit run compares as a number.
//!
//! Validity follows dpkg's own parser: the strings on which `dpkg --compare-versions` errors or
//! warns (empty, embedded spaces, a bad epoch, an empty revision, an upstream that does not start
//! with a digit, a character outside `[A-Za-z0-9.+~-:]` in the upstream or `[A-Za-z0-9.+~]` in
//! the revision) are rejected.

use std::cmp::Ordering;

use super::{Scheme, VersionError};

/// dpkg stores the epoch in an `int` and rejects values above `INT_MAX`.
const MAX_EPOCH: u64 = i32::MAX as u64;

struct DebVersion<'a> {
    epoch: u64,
    upstream: &'a [u8],
    revision: &'a [u8],
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let va = parse(a).map_err(|reason| VersionError::new(Scheme::Dpkg, a, reason))?;
    let vb = parse(b).map_err(|reason| VersionError::new(Scheme::Dpkg, b, reason))?;
    Ok(va
        .epoch
        .cmp(&vb.epoch)
        .then_with(|| cmp_part(va.upstream, vb.upstream))
        .then_with(|| cmp_part(va.revision, vb.revision)))
}

/// dpkg's `c_isblank`: space and tab, the only white space its parser skips (a newline is an
/// invalid character like any other).
fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t')
}

fn parse(s: &str) -> Result<DebVersion<'_>, &'static str> {
    let bytes = s.as_bytes();
    // Leading blanks are skipped; the version ends at the first blank, after which only blanks
    // may follow.
    let start = bytes.iter().take_while(|&&c| is_blank(c)).count();
    let rest = bytes.get(start..).unwrap_or_default();
    if rest.is_empty() {
        return Err("version string is empty");
    }
    let len = rest.iter().take_while(|&&c| !is_blank(c)).count();
    let (token, tail) = rest.split_at(len);
    if !tail.iter().all(|&c| is_blank(c)) {
        return Err("version string has embedded spaces");
    }

    let (epoch, after_epoch) = match token.iter().position(|&c| c == b':') {
        Some(colon) => {
            let (epoch_text, after) = token.split_at(colon);
            let after = after.get(1..).unwrap_or_default();
            let epoch = parse_epoch(epoch_text)?;
            if after.is_empty() {
                return Err("nothing after colon in version number");
            }
            (epoch, after)
        }
        None => (0, token),
    };

    let (upstream, revision) = match after_epoch.iter().rposition(|&c| c == b'-') {
        Some(hyphen) => {
            let (up, rev) = after_epoch.split_at(hyphen);
            let rev = rev.get(1..).unwrap_or_default();
            if rev.is_empty() {
                return Err("revision number is empty");
            }
            (up, rev)
        }
        None => (after_epoch, &b""[..]),
    };

    match upstream.first() {
        None => return Err("version number is empty"),
        Some(c) if !c.is_ascii_digit() => return Err("version number does not start with digit"),
        Some(_) => {}
    }
    if !upstream.iter().all(|&c| c.is_ascii_alphanumeric() || b".-+~:".contains(&c)) {
        return Err("invalid character in version number");
    }
    if !revision.iter().all(|&c| c.is_ascii_alphanumeric() || b".+~".contains(&c)) {
        return Err("invalid character in revision number");
    }
    Ok(DebVersion { epoch, upstream, revision })
}

/// The epoch as dpkg reads it with `strtol`: an optional sign then decimal digits, the whole text
/// before the colon. `-0` is zero and accepted, as dpkg does.
fn parse_epoch(text: &[u8]) -> Result<u64, &'static str> {
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    let ndigits = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if ndigits == 0 {
        return Err("epoch in version is empty");
    }
    if ndigits != digits.len() {
        return Err("epoch in version is not number");
    }
    let mut value: u64 = 0;
    let mut too_big = false;
    for &c in digits {
        value = value.saturating_mul(10).saturating_add(u64::from(c - b'0'));
        if value > MAX_EPOCH {
            too_big = true;
        }
    }
    if negative && value != 0 {
        return Err("epoch in version is negative");
    }
    if too_big {
        return Err("epoch in version is too big");
    }
    Ok(value)
}

/// Weight of one character of a non-digit run: `~` sorts first, then the end of the run, then
/// letters, then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's comparison of an upstream version or a revision.
fn cmp_part(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix, character by character.
        loop {
            let ca = a.get(i).copied().filter(|c| !c.is_ascii_digit());
            let cb = b.get(j).copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            i += 1;
            j += 1;
        }
        // Digit run, as a number.
        let da = a.get(i..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.get(j..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
        let na = a.get(i..i + da).unwrap_or_default();
        let nb = b.get(j..j + db).unwrap_or_default();
        let ord = super::cmp_digits(na, nb);
        if ord != Ordering::Equal {
            return ord;
        }
        i += da;
        j += db;
    }
    Ordering::Equal
}
