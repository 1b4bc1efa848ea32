//! Alpine version ordering, as apk-tools orders package versions (`apk version -t`).
//!
//! Grammar (apk-package(5)): `number{.number}...{letter}{_suffix{number}}...{~hash}{-r#}`: digits
//! separated by `.`, at most one lower-case letter, any number of suffixes from `alpha`, `beta`,
//! `pre`, `rc`, `cvs`, `svn`, `git`, `hg`, `p`, each with an optional number, an optional
//! lower-case hexadecimal commit hash after `~`, an optional `-r` revision number. A string that
//! does not follow it is rejected (`apk version -t` would still print an answer for it, but
//! apk refuses such a version in a package).
//!
//! Comparison walks both token lists together. Numbers compare as numbers, except that a
//! non-first number starting with `0` on either side makes both compare as strings (so `1.010` <
//! `1.09`, as in Gentoo's rule); the letter compares by character; suffixes compare in the order
//! `_alpha` < `_beta` < `_pre` < `_rc` < (none) < `_cvs` < `_svn` < `_git` < `_hg` < `_p`;
//! hashes compare as strings. When one version runs out of tokens first, a pre-release suffix on
//! the other side makes that side older; otherwise the token kinds decide, in the order above
//! (a longer version is newer: `1.0` < `1.0.1` < `1.0.1a` and `1.0` < `1.0-r1`).

use std::cmp::Ordering;

use super::{Scheme, VersionError};

/// Kinds of token, in the order apk ranks them when the two versions diverge in shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
}

/// Suffixes in their sort order; `None` stands for "no suffix" between pre- and post-releases.
const SUFFIXES: [&str; 10] = ["alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p"];
/// Index in [`SUFFIXES`] of "no suffix": lower ones are pre-releases.
const SUFFIX_NONE: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    /// The token's text (digits, the letter, the suffix name, the hash).
    text: &'a [u8],
    /// The number of a digit token (apk keeps it in 64 bits, wrapping on overflow).
    number: u64,
    /// Index in [`SUFFIXES`] of a suffix token.
    suffix: usize,
}

struct Tokens<'a> {
    rest: &'a [u8],
    prev: Option<Kind>,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        Tokens { rest: s.as_bytes(), prev: None }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.rest.iter().take_while(|&&c| f(c)).count();
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        taken
    }

    fn digits(&mut self, kind: Kind) -> Result<Token<'a>, &'static str> {
        let text = self.take_while(|c| c.is_ascii_digit());
        if text.is_empty() {
            return Err("a number is missing");
        }
        let number = text.iter().fold(0u64, |n, &c| n.wrapping_mul(10).wrapping_add(u64::from(c.wrapping_sub(b'0'))));
        Ok(Token { kind, text, number, suffix: 0 })
    }

    /// The next token, `End` once the string is consumed.
    fn next_token(&mut self) -> Result<Token<'a>, &'static str> {
        let Some(prev) = self.prev else {
            let t = self.digits(Kind::InitialDigit).map_err(|_| "does not start with a digit")?;
            self.prev = Some(t.kind);
            return Ok(t);
        };
        let Some(&c) = self.rest.first() else {
            return Ok(Token { kind: Kind::End, text: b"", number: 0, suffix: 0 });
        };
        let token = match c {
            b'a'..=b'z' => {
                if prev > Kind::Digit {
                    return Err("a letter after a letter or suffix");
                }
                let text = self.rest.get(..1).unwrap_or_default();
                self.rest = self.rest.get(1..).unwrap_or_default();
                Token { kind: Kind::Letter, text, number: 0, suffix: 0 }
            }
            b'.' | b'0'..=b'9' => {
                if c == b'.' {
                    if prev > Kind::Digit {
                        return Err("a `.` after a letter or suffix");
                    }
                    self.rest = self.rest.get(1..).unwrap_or_default();
                }
                let kind = match prev {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => return Err("a number in the wrong place"),
                };
                self.digits(kind)?
            }
            b'_' => {
                if prev > Kind::SuffixNo {
                    return Err("a suffix after the hash or revision");
                }
                self.rest = self.rest.get(1..).unwrap_or_default();
                let text = self.take_while(|c| c.is_ascii_lowercase());
                let suffix =
                    SUFFIXES.iter().position(|s| !s.is_empty() && s.as_bytes() == text).ok_or("unknown suffix")?;
                Token { kind: Kind::Suffix, text, number: 0, suffix }
            }
            b'~' => {
                if prev >= Kind::CommitHash {
                    return Err("a `~hash` after the hash or revision");
                }
                self.rest = self.rest.get(1..).unwrap_or_default();
                let text = self.take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
                if text.is_empty() {
                    return Err("an empty `~hash`");
                }
                Token { kind: Kind::CommitHash, text, number: 0, suffix: 0 }
            }
            b'-' => {
                if prev >= Kind::RevisionNo {
                    return Err("a second revision");
                }
                if self.rest.get(1) != Some(&b'r') {
                    return Err("a `-` not followed by `r`");
                }
                self.rest = self.rest.get(2..).unwrap_or_default();
                self.digits(Kind::RevisionNo).map_err(|_| "a `-r` without a number")?
            }
            _ => return Err("a character apk does not accept"),
        };
        self.prev = Some(token.kind);
        Ok(token)
    }
}

/// Reject what apk's validator rejects, with the reason.
fn validate(s: &str) -> Result<(), VersionError> {
    let mut tokens = Tokens::new(s);
    loop {
        match tokens.next_token() {
            Ok(t) if t.kind == Kind::End => return Ok(()),
            Ok(_) => {}
            Err(reason) => return Err(VersionError::new(Scheme::Apk, s, reason)),
        }
    }
}

fn cmp_tokens(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        Kind::Digit if a.text.first() == Some(&b'0') || b.text.first() == Some(&b'0') => a.text.cmp(b.text),
        Kind::InitialDigit | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => a.number.cmp(&b.number),
        Kind::Letter => a.text.cmp(b.text),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        Kind::CommitHash | Kind::End => a.text.cmp(b.text),
    }
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    validate(a)?;
    validate(b)?;
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    let err = |s: &str, reason| VersionError::new(Scheme::Apk, s, reason);
    loop {
        let x = ta.next_token().map_err(|r| err(a, r))?;
        let y = tb.next_token().map_err(|r| err(b, r))?;
        if x.kind != y.kind {
            // Same values so far, different shapes from here on.
            if x.kind == Kind::Suffix && x.suffix < SUFFIX_NONE {
                return Ok(Ordering::Less);
            }
            if y.kind == Kind::Suffix && y.suffix < SUFFIX_NONE {
                return Ok(Ordering::Greater);
            }
            // The kind ranked later is the one that ran out first: older.
            return Ok(y.kind.cmp(&x.kind));
        }
        if x.kind == Kind::End {
            return Ok(Ordering::Equal);
        }
        let ord = cmp_tokens(&x, &y);
        if ord != Ordering::Equal {
            return Ok(ord);
        }
    }
}
