//! RPM version ordering: `[epoch:]version[-release]` compared as rpm compares package labels.
//!
//! Splitting follows rpm's EVR parser: the epoch is a run of leading digits ended by `:` (`:`
//! alone means epoch 0; text before a `:` that is not all digits stays in the version), the
//! release is what follows the last `-`. An absent epoch is 0. An absent release sorts before
//! any release (rpm's label comparison; `1.0` < `1.0-1`).
//!
//! Each part is compared with rpmvercmp: both strings are cut into alphanumeric segments (other
//! characters only separate, so `2_0` = `2.0`); `~` sorts before everything, the end of the
//! string included; `^` sorts after the end of the string but before any further segment; a
//! numeric segment is newer than an alphabetic one; numbers compare without their leading
//! zeros; letters compare as bytes; if every segment matched, the string with segments left
//! over is newer.

use std::cmp::Ordering;

use super::{Scheme, VersionError};

struct Evr<'a> {
    epoch: &'a [u8],
    version: &'a [u8],
    release: Option<&'a [u8]>,
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let ea = parse(a).map_err(|reason| VersionError::new(Scheme::Rpm, a, reason))?;
    let eb = parse(b).map_err(|reason| VersionError::new(Scheme::Rpm, b, reason))?;
    let release = match (ea.release, eb.release) {
        (Some(ra), Some(rb)) => rpmvercmp(ra, rb),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    };
    Ok(rpmvercmp(ea.epoch, eb.epoch).then_with(|| rpmvercmp(ea.version, eb.version)).then(release))
}

fn parse(s: &str) -> Result<Evr<'_>, &'static str> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err("version string is empty");
    }
    // rpm works on C strings: a NUL would silently cut the version.
    if bytes.contains(&0) {
        return Err("NUL byte in version");
    }
    let digits = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
    let (epoch, rest): (&[u8], &[u8]) = match bytes.get(digits) {
        Some(b':') => {
            let epoch = bytes.get(..digits).unwrap_or_default();
            let rest = bytes.get(digits + 1..).unwrap_or_default();
            (if epoch.is_empty() { b"0" } else { epoch }, rest)
        }
        _ => (b"0", bytes),
    };
    let (version, release) = match rest.iter().rposition(|&c| c == b'-') {
        Some(hyphen) => {
            let (v, r) = rest.split_at(hyphen);
            (v, Some(r.get(1..).unwrap_or_default()))
        }
        None => (rest, None),
    };
    Ok(Evr { epoch, version, release })
}

/// rpm's segment comparison of two version (or release, or epoch) strings.
pub(super) fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let is_sep = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    let (mut i, mut j) = (0, 0);
    loop {
        i += a.get(i..).unwrap_or_default().iter().take_while(|c| is_sep(c)).count();
        j += b.get(j..).unwrap_or_default().iter().take_while(|c| is_sep(c)).count();
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca.is_none() && cb.is_none() {
            return Ordering::Equal;
        }
        // `~` sorts before everything, the end of the string included.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // `^` sorts after the end of the string, before anything else.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first_a), Some(_)) = (ca, cb) else {
            // One string ended: the one with a segment left is newer.
            return if ca.is_none() { Ordering::Less } else { Ordering::Greater };
        };
        // The segment type is that of `a`'s next character.
        let numeric = first_a.is_ascii_digit();
        let in_segment = |c: &u8| if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() };
        let la = a.get(i..).unwrap_or_default().iter().take_while(|c| in_segment(c)).count();
        let lb = b.get(j..).unwrap_or_default().iter().take_while(|c| in_segment(c)).count();
        if lb == 0 {
            // Segments of different types: numeric is newer than alphabetic.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let sa = a.get(i..i + la).unwrap_or_default();
        let sb = b.get(j..j + lb).unwrap_or_default();
        let ord = if numeric { super::cmp_digits(sa, sb) } else { sa.cmp(sb) };
        if ord != Ordering::Equal {
            return ord;
        }
        i += la;
        j += lb;
    }
}
