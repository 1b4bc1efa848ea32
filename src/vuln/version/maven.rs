//! Maven version ordering, as Maven's `ComparableVersion` (maven-artifact 3.8) orders versions.
//!
//! The lower-cased version is cut into items: `.` separates items of one list, `-` starts a
//! nested list, and a change between digits and letters starts a nested list too (`1.0.0.x1`
//! reads as `1-x-1`, like `1.0.0-x1`). An empty item is `0`. Numbers compare as numbers
//! (leading zeros ignored); words are qualifiers: `alpha` < `beta` < `milestone` < `rc` = `cr` <
//! `snapshot` < (release: `""` = `ga` = `final` = `release`) < `sp` < any other word, others in
//! ASCII order; a single `a`, `b` or `m` directly followed by a digit means `alpha`, `beta`,
//! `milestone`. A number is newer than a list, which is newer than a word. After parsing, each
//! list drops its trailing release-equivalent items (`0`, `""`, empty lists), so `1.0` = `1` =
//! `1-ga`. Lists compare item by item; a missing item compares as the release (a list against a
//! missing item: its first item that differs from the release decides).
//!
//! Maven accepts every string; we reject the empty one and one nested deeper than
//! [`MAX_DEPTH`] lists.

use std::cmp::Ordering;

use super::{Scheme, VersionError};

/// Known qualifiers in their order; the empty string is the release.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
/// Index of the release in [`QUALIFIERS`].
const RELEASE: usize = 5;

/// Deepest list nesting accepted (each `-` and each digit/letter change opens a list). Real
/// versions nest a handful of levels (`1.0-alpha-1-SNAPSHOT` has four); the bound keeps the
/// recursive comparison's stack use small whatever the input.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Digits without leading zeros (empty = 0).
    Int(Vec<u8>),
    /// A qualifier after alias resolution.
    Str(String),
    List(Vec<Item>),
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Int(d) => d.is_empty(),
            Item::Str(s) => s.is_empty(),
            Item::List(l) => l.is_empty(),
        }
    }
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    for v in [a, b] {
        if v.is_empty() {
            return Err(VersionError::new(Scheme::Maven, v, "version string is empty"));
        }
    }
    let ia = parse(a).map_err(|reason| VersionError::new(Scheme::Maven, a, reason))?;
    let ib = parse(b).map_err(|reason| VersionError::new(Scheme::Maven, b, reason))?;
    Ok(cmp_list(&ia, Some(&ib)))
}

fn number(digits: &str) -> Item {
    Item::Int(digits.trim_start_matches('0').as_bytes().to_vec())
}

fn word(text: &str, followed_by_digit: bool) -> Item {
    let text = match text {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Str(text.to_owned())
}

fn item(is_digit: bool, text: &str) -> Item {
    if is_digit { number(text) } else { word(text, false) }
}

/// Parse into nested lists. The lists under construction form a path from the root: `path`
/// holds the open lists, the last one receiving items; closing them folds each into its parent.
fn parse(version: &str) -> Result<Vec<Item>, &'static str> {
    let v = version.to_lowercase();
    let mut path: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    for (i, c) in v.char_indices() {
        if path.len() > MAX_DEPTH {
            return Err("lists nested too deeply");
        }
        let text = v.get(start..i).unwrap_or_default();
        match c {
            '.' | '-' => {
                let it = if text.is_empty() { Item::Int(Vec::new()) } else { item(is_digit, text) };
                push(&mut path, it);
                start = i + 1;
                if c == '-' {
                    path.push(Vec::new());
                }
            }
            _ if c.is_ascii_digit() => {
                if !is_digit && !text.is_empty() {
                    // `.X1` is read as `-X1`: the word opens a list of its own.
                    if path.last().is_some_and(|l| !l.is_empty()) {
                        path.push(Vec::new());
                    }
                    push(&mut path, word(text, true));
                    start = i;
                    path.push(Vec::new());
                }
                is_digit = true;
            }
            _ => {
                if is_digit && !text.is_empty() {
                    push(&mut path, number(text));
                    start = i;
                    path.push(Vec::new());
                }
                is_digit = false;
            }
        }
    }
    let text = v.get(start..).unwrap_or_default();
    if !text.is_empty() {
        push(&mut path, item(is_digit, text));
    }
    // Close the open lists, innermost first, normalising each.
    let mut done = path.pop().unwrap_or_default();
    normalize(&mut done);
    while let Some(mut parent) = path.pop() {
        parent.push(Item::List(done));
        normalize(&mut parent);
        done = parent;
    }
    Ok(done)
}

fn push(path: &mut [Vec<Item>], it: Item) {
    if let Some(list) = path.last_mut() {
        list.push(it);
    }
}

/// Drop trailing release-equivalent items, looking through trailing non-empty lists: an item
/// before a list is dropped too when it is null (`1.0.0-1` drops the zeros).
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        let Some(last) = list.get(i) else { break };
        if last.is_null() {
            list.remove(i);
        } else if !matches!(last, Item::List(_)) {
            break;
        }
    }
}

fn qualifier_rank(q: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), q),
    }
}

/// Compare an item with another or with "nothing" (`None`: the missing item of a shorter list).
fn cmp_item(a: &Item, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (Item::Int(x), None) => {
            if x.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Item::Int(x), Some(Item::Int(y))) => super::cmp_digits(x, y),
        (Item::Int(_), Some(_)) => Ordering::Greater,
        (Item::Str(s), None) => qualifier_rank(s).cmp(&(RELEASE, "")),
        (Item::Str(_), Some(Item::Int(_) | Item::List(_))) => Ordering::Less,
        (Item::Str(s), Some(Item::Str(t))) => qualifier_rank(s).cmp(&qualifier_rank(t)),
        (Item::List(l), None) => {
            l.iter().map(|x| cmp_item(x, None)).find(|o| *o != Ordering::Equal).unwrap_or(Ordering::Equal)
        }
        (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
        (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
        (Item::List(l), Some(Item::List(m))) => cmp_list(l, Some(m)),
    }
}

fn cmp_list(a: &[Item], b: Option<&[Item]>) -> Ordering {
    let b = b.unwrap_or_default();
    for i in 0..a.len().max(b.len()) {
        let ord = match (a.get(i), b.get(i)) {
            (Some(x), y) => cmp_item(x, y),
            (None, Some(y)) => cmp_item(y, None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}
