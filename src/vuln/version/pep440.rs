//! Python version ordering (PEP 440, "Version scheme", with its normalisation rules).
//!
//! `[v][N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, case-insensitive, with the spellings PEP 440
//! normalises: `alpha`/`beta`/`c`/`pre`/`preview` for `a`/`b`/`rc`/`rc`/`rc`, `rev`/`r` and a bare
//! `-N` for `post`, `-`, `_` or `.` (or nothing) between the parts, a missing number meaning 0
//! (`1.0RC1` = `1.0rc1`, `1.0-1` = `1.0.post1`, `1.0a` = `1.0a0`), surrounding white space.
//!
//! Order: epoch, then the release with trailing zeros ignored (`1.0` = `1.0.0`), then
//! `.devN` of a plain release < pre-releases < the release < post-releases, a `.devN` sorting
//! before the same version without it; then the local label (`1.0` < `1.0+anything`), compared
//! segment by segment, numeric segments as numbers and above alphanumeric ones, which compare
//! as lower-case strings, a shorter label that is a prefix of a longer one first.

use std::cmp::Ordering;

use super::{Scheme, VersionError};

/// A parsed version; numbers are digit strings (compared without leading zeros, unbounded).
struct Pep440<'a> {
    epoch: &'a [u8],
    release: Vec<&'a [u8]>,
    /// Pre-release phase (0 = a, 1 = b, 2 = rc) and number.
    pre: Option<(u8, &'a [u8])>,
    post: Option<&'a [u8]>,
    dev: Option<&'a [u8]>,
    local: Vec<&'a [u8]>,
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let la = a.to_ascii_lowercase();
    let lb = b.to_ascii_lowercase();
    let va = parse(&la).map_err(|reason| VersionError::new(Scheme::Pep440, a, reason))?;
    let vb = parse(&lb).map_err(|reason| VersionError::new(Scheme::Pep440, b, reason))?;
    Ok(cmp(&va, &vb))
}

fn is_sep(c: u8) -> bool {
    matches!(c, b'-' | b'_' | b'.')
}

/// PEP 440 allows leading and trailing white space (Python's `\s`; ASCII here).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat_sep(&mut self) -> bool {
        if self.peek().is_some_and(is_sep) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> Option<&'a [u8]> {
        let rest = self.s.get(self.pos..).unwrap_or_default();
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        self.pos += n;
        rest.get(..n)
    }

    /// Consume the first of `words` the text continues with (callers list longer words first).
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let rest = self.s.get(self.pos..).unwrap_or_default();
        let i = words.iter().position(|w| rest.starts_with(w.as_bytes()))?;
        self.pos += words.get(i).map_or(0, |w| w.len());
        Some(i)
    }

    /// `[sep] word [sep] [number]` for one of `words`; the position is restored if absent. The
    /// number defaults to 0.
    fn tagged(&mut self, words: &[&str]) -> Option<(usize, &'a [u8])> {
        let start = self.pos;
        self.eat_sep();
        let Some(i) = self.word(words) else {
            self.pos = start;
            return None;
        };
        let before_sep = self.pos;
        let sep = self.eat_sep();
        let n = match self.digits() {
            Some(n) => n,
            None => {
                // A separator with no number after it belongs to the tag (PEP 440 allows
                // `1.0a.`); leave it consumed only if nothing else could use it.
                if sep && self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.pos = before_sep;
                }
                b"0"
            }
        };
        Some((i, n))
    }
}

fn parse(s: &str) -> Result<Pep440<'_>, &'static str> {
    let bytes = s.as_bytes();
    let start = bytes.iter().take_while(|&&c| is_space(c)).count();
    let end = bytes.len() - bytes.iter().rev().take_while(|&&c| is_space(c)).count();
    let core = bytes.get(start..end.max(start)).unwrap_or_default();
    let mut c = Cursor { s: core, pos: 0 };
    if c.peek() == Some(b'v') {
        c.pos += 1;
    }

    // Epoch: digits then `!`.
    let mut epoch: &[u8] = b"0";
    let save = c.pos;
    if let Some(n) = c.digits() {
        if c.peek() == Some(b'!') {
            c.pos += 1;
            epoch = n;
        } else {
            c.pos = save;
        }
    }

    // Release: N(.N)*
    let mut release = vec![c.digits().ok_or("no release number")?];
    loop {
        let save = c.pos;
        if c.peek() == Some(b'.') {
            c.pos += 1;
            if let Some(n) = c.digits() {
                release.push(n);
                continue;
            }
        }
        c.pos = save;
        break;
    }

    let pre = c.tagged(&["preview", "alpha", "beta", "pre", "rc", "a", "b", "c"]).map(|(i, n)| {
        (
            match i {
                1 | 5 => 0,
                2 | 6 => 1,
                _ => 2,
            },
            n,
        )
    });

    // Post-release: `-N`, or `[sep](post|rev|r)[sep][N]`.
    let mut post = None;
    let save = c.pos;
    if c.peek() == Some(b'-') {
        c.pos += 1;
        match c.digits() {
            Some(n) => post = Some(n),
            None => c.pos = save,
        }
    }
    if post.is_none() {
        post = c.tagged(&["post", "rev", "r"]).map(|(_, n)| n);
    }

    let dev = c.tagged(&["dev"]).map(|(_, n)| n);

    let mut local = Vec::new();
    if c.peek() == Some(b'+') {
        c.pos += 1;
        let label = core.get(c.pos..).unwrap_or_default();
        for seg in label.split(|&ch| is_sep(ch)) {
            if seg.is_empty() || !seg.iter().all(u8::is_ascii_alphanumeric) {
                return Err("invalid local version label");
            }
            local.push(seg);
        }
        c.pos = core.len();
    }

    if c.pos != core.len() {
        return Err("not a PEP 440 version");
    }
    Ok(Pep440 { epoch, release, pre, post, dev, local })
}

fn cmp_release(a: &[&[u8]], b: &[&[u8]]) -> Ordering {
    let zero: &[u8] = b"0";
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(zero);
        let y = b.get(i).copied().unwrap_or(zero);
        let ord = super::cmp_digits(x, y);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// A sort key part with the infinities PEP 440's ordering needs.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Bound<T> {
    NegInf,
    Val(T),
    PosInf,
}

struct Num<'a>(&'a [u8]);

impl PartialEq for Num<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Num<'_> {}
impl PartialOrd for Num<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Num<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        super::cmp_digits(self.0, other.0)
    }
}

fn pre_key<'a>(v: &Pep440<'a>) -> Bound<(u8, Num<'a>)> {
    match (v.pre, v.post, v.dev) {
        // A plain `.devN` release sorts before its pre-releases.
        (None, None, Some(_)) => Bound::NegInf,
        (None, _, _) => Bound::PosInf,
        (Some((phase, n)), _, _) => Bound::Val((phase, Num(n))),
    }
}

fn post_key<'a>(v: &Pep440<'a>) -> Bound<Num<'a>> {
    v.post.map_or(Bound::NegInf, |n| Bound::Val(Num(n)))
}

fn dev_key<'a>(v: &Pep440<'a>) -> Bound<Num<'a>> {
    v.dev.map_or(Bound::PosInf, |n| Bound::Val(Num(n)))
}

fn cmp(a: &Pep440<'_>, b: &Pep440<'_>) -> Ordering {
    Num(a.epoch)
        .cmp(&Num(b.epoch))
        .then_with(|| cmp_release(&a.release, &b.release))
        .then_with(|| pre_key(a).cmp(&pre_key(b)))
        .then_with(|| post_key(a).cmp(&post_key(b)))
        .then_with(|| dev_key(a).cmp(&dev_key(b)))
        .then_with(|| cmp_local(&a.local, &b.local))
}

fn cmp_local(a: &[&[u8]], b: &[&[u8]]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    for (x, y) in a.iter().zip(b) {
        let xn = x.iter().all(u8::is_ascii_digit);
        let yn = y.iter().all(u8::is_ascii_digit);
        let ord = match (xn, yn) {
            (true, true) => super::cmp_digits(x, y),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}
