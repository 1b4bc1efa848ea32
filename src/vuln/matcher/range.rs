//! Whether one package version is affected by one OSV `affected` entry: the schema's evaluation
//! pseudocode (<https://ossf.github.io/osv-schema/#evaluation>), with one deliberate deviation.
//!
//! Per range: the version must be below some `limit` event (an implicit `limit: "*"` when there is
//! none); then the events are sorted by version (`introduced: "0"` lowest) and walked: an
//! `introduced` at or below the version makes it affected, a `fixed` at or below it makes it not
//! affected, a `last_affected` below it makes it not affected. `ECOSYSTEM` ranges use the
//! ecosystem's ordering, `SEMVER` ranges SemVer's; `GIT` ranges (commit hashes) cannot be compared
//! with an installed package's version and are ignored.
//!
//! The deviation: the enumerated `versions` list is used only when the entry has no comparable
//! (`ECOSYSTEM` or `SEMVER`) range. Debian and Ubuntu records list versions of other releases there
//! (osv.dev issues #4383, #5754; docs/references.md), so a version that the ranges say is
//! fixed would otherwise be reported because some other release once shipped it.

use std::cmp::Ordering;

use crate::vuln::osv::{Affected, Event, Range, RangeKind};
use crate::vuln::version::{self, Scheme, VersionError};

/// Most events evaluated in one range. Real ranges have 2-10 events (the largest Debian and Go
/// records stay under 100); the events are sorted by insertion (quadratic), so a crafted record
/// with millions of events is refused instead.
pub const MAX_EVENTS_PER_RANGE: usize = 1_000;

/// Most entries compared from one `versions` list (Ubuntu lists reach a few hundred; a crafted one
/// is cut off with an error rather than compared for minutes).
pub const MAX_VERSIONS_LISTED: usize = 10_000;

/// A range or version list that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("a range has {0} events (at most {MAX_EVENTS_PER_RANGE} are evaluated)")]
    TooManyEvents(usize),
    #[error("a versions list has {0} entries (at most {MAX_VERSIONS_LISTED} are compared)")]
    TooManyVersions(usize),
}

/// How an affected version was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Inside an `ECOSYSTEM` or `SEMVER` range.
    Range,
    /// Listed in `versions` (the entry has no comparable range).
    Versions,
}

/// The answer for one version against one `affected` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    NotAffected,
    Affected {
        /// The version that leaves every range holding this one: in each range the first `fixed`
        /// event above it, the highest of those over the ranges; `None` when a range has no fix.
        fixed: Option<String>,
        via: Via,
    },
}

impl Verdict {
    #[must_use]
    pub fn is_affected(&self) -> bool {
        matches!(self, Verdict::Affected { .. })
    }
}

/// Evaluate `version` against `affected`, ordering `ECOSYSTEM` ranges with `scheme`.
///
/// # Errors
///
/// A version (installed or in the record) the scheme cannot order, in the first range or list
/// that needs it; or a range or list over the size bounds.
pub fn evaluate(affected: &Affected, version: &str, scheme: Scheme) -> Result<Verdict, RangeError> {
    let mut comparable = affected.ranges.iter().filter(|r| r.kind != RangeKind::Git).peekable();
    if comparable.peek().is_none() {
        return in_versions(&affected.versions, version, scheme);
    }
    let mut verdict = Verdict::NotAffected;
    for range in comparable {
        let range_scheme = match range.kind {
            RangeKind::Semver => Scheme::Semver,
            RangeKind::Ecosystem | RangeKind::Git => scheme,
        };
        if let Some(fixed) = in_range(range, version, range_scheme)? {
            verdict = merge(verdict, Verdict::Affected { fixed, via: Via::Range }, range_scheme)?;
        }
    }
    Ok(verdict)
}

/// Two verdicts on one version (of two ranges, or two `affected` entries of one package): affected
/// when either is, and the fix is the higher of the two, since the version stays affected until
/// it has left every range that holds it; no fix when one of them has none. (Alpine's secdb lists
/// a CVE under two fixes when the first was incomplete: `openssl` `CVE-2017-3738` under
/// `1.0.2n-r0` and `1.0.2o-r0` in v3.4.)
///
/// # Errors
///
/// The two fixes cannot be ordered by `scheme`.
pub fn merge(a: Verdict, b: Verdict, scheme: Scheme) -> Result<Verdict, RangeError> {
    Ok(match (a, b) {
        (Verdict::NotAffected, other) | (other, Verdict::NotAffected) => other,
        (Verdict::Affected { fixed: Some(x), via }, Verdict::Affected { fixed: Some(y), .. }) => {
            let fixed = if version::compare(scheme, &y, &x)? == Ordering::Greater { y } else { x };
            Verdict::Affected { fixed: Some(fixed), via }
        }
        (Verdict::Affected { via, .. }, Verdict::Affected { .. }) => Verdict::Affected { fixed: None, via },
    })
}

/// `Some(fix)` when `version` lies in `range` (`fix` being the lowest `fixed` event above it).
///
/// # Errors
///
/// As [`evaluate`].
pub fn in_range(range: &Range, version: &str, scheme: Scheme) -> Result<Option<Option<String>>, RangeError> {
    if range.events.len() > MAX_EVENTS_PER_RANGE {
        return Err(RangeError::TooManyEvents(range.events.len()));
    }
    if !before_limits(range, version, scheme)? {
        return Ok(None);
    }
    let sorted = sort_events(&range.events, scheme)?;
    let mut vulnerable = false;
    for event in &sorted {
        match event {
            Event::Introduced(v) => {
                if is_zero(v) || version::compare(scheme, version, v)? != Ordering::Less {
                    vulnerable = true;
                }
            }
            Event::Fixed(v) => {
                if version::compare(scheme, version, v)? != Ordering::Less {
                    vulnerable = false;
                }
            }
            Event::LastAffected(v) => {
                if version::compare(scheme, version, v)? == Ordering::Greater {
                    vulnerable = false;
                }
            }
            Event::Limit(_) => {}
        }
    }
    if !vulnerable {
        return Ok(None);
    }
    for event in &sorted {
        if let Event::Fixed(v) = event
            && version::compare(scheme, version, v)? == Ordering::Less
        {
            return Ok(Some(Some(v.clone())));
        }
    }
    Ok(Some(None))
}

/// The schema's `BeforeLimits`: true without `limit` events, else when below one of them
/// (`"*"` is infinity).
fn before_limits(range: &Range, version: &str, scheme: Scheme) -> Result<bool, RangeError> {
    let mut any = false;
    for event in &range.events {
        if let Event::Limit(limit) = event {
            any = true;
            if limit == "*" || version::compare(scheme, version, limit)? == Ordering::Less {
                return Ok(true);
            }
        }
    }
    Ok(!any)
}

/// `introduced: "0"` sorts before every version.
fn is_zero(v: &str) -> bool {
    v == "0"
}

/// Order two events by version, `introduced: "0"` first.
fn cmp_events(a: &Event, b: &Event, scheme: Scheme) -> Result<Ordering, VersionError> {
    let zero = |e: &Event| matches!(e, Event::Introduced(v) if is_zero(v));
    match (zero(a), zero(b)) {
        (true, true) => Ok(Ordering::Equal),
        (true, false) => Ok(Ordering::Less),
        (false, true) => Ok(Ordering::Greater),
        (false, false) => version::compare(scheme, a.version(), b.version()),
    }
}

/// The non-limit events sorted by version. A stable insertion sort: it cannot panic whatever the
/// comparator answers (the standard sorts may, on an inconsistent order), and events of equal
/// versions keep the record's order.
fn sort_events(events: &[Event], scheme: Scheme) -> Result<Vec<&Event>, VersionError> {
    let mut sorted: Vec<&Event> = Vec::with_capacity(events.len());
    for event in events.iter().filter(|e| !matches!(e, Event::Limit(_))) {
        let mut at = sorted.len();
        while at > 0 {
            let Some(prev) = sorted.get(at - 1) else { break };
            if cmp_events(prev, event, scheme)? == Ordering::Greater {
                at -= 1;
            } else {
                break;
            }
        }
        sorted.insert(at, event);
    }
    Ok(sorted)
}

/// The `versions` list: affected when one entry equals `version` under the scheme (a string that
/// the scheme cannot read is compared byte for byte, since the list is not ordered).
fn in_versions(versions: &[String], version: &str, scheme: Scheme) -> Result<Verdict, RangeError> {
    if versions.len() > MAX_VERSIONS_LISTED {
        return Err(RangeError::TooManyVersions(versions.len()));
    }
    for listed in versions {
        let equal = match version::compare(scheme, version, listed) {
            Ok(order) => order == Ordering::Equal,
            Err(_) => listed == version,
        };
        if equal {
            return Ok(Verdict::Affected { fixed: None, via: Via::Versions });
        }
    }
    Ok(Verdict::NotAffected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(kind: RangeKind, events: &[(&str, &str)]) -> Range {
        Range {
            kind,
            events: events
                .iter()
                .map(|(k, v)| match *k {
                    "introduced" => Event::Introduced((*v).into()),
                    "fixed" => Event::Fixed((*v).into()),
                    "last_affected" => Event::LastAffected((*v).into()),
                    _ => Event::Limit((*v).into()),
                })
                .collect(),
            repo: None,
            database_specific: None,
        }
    }

    fn affected(ranges: Vec<Range>, versions: &[&str]) -> Affected {
        Affected {
            package: None,
            ranges,
            versions: versions.iter().map(|v| (*v).to_owned()).collect(),
            ecosystem_specific: None,
            database_specific: None,
            severity: vec![],
        }
    }

    /// The affected versions among `candidates`, and the fix each one is told about.
    fn verdicts(a: &Affected, scheme: Scheme, candidates: &[&str]) -> Vec<(String, Option<String>)> {
        candidates
            .iter()
            .filter_map(|v| match evaluate(a, v, scheme).expect("evaluates") {
                Verdict::Affected { fixed, .. } => Some(((*v).to_owned(), fixed)),
                Verdict::NotAffected => None,
            })
            .collect()
    }

    fn names(v: &[(String, Option<String>)]) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn spec_unfixed_example_affects_everything() {
        let a = affected(vec![range(RangeKind::Semver, &[("introduced", "0")])], &[]);
        let got = verdicts(&a, Scheme::Semver, &["0.0.1", "1.0.0", "99.0.0"]);
        assert_eq!(names(&got), ["0.0.1", "1.0.0", "99.0.0"]);
        assert!(got.iter().all(|(_, fix)| fix.is_none()), "no fixed event: unfixed");
    }

    #[test]
    fn spec_fixed_example_is_exclusive_of_the_fix() {
        let a = affected(vec![range(RangeKind::Semver, &[("introduced", "0"), ("fixed", "1.0.2")])], &[]);
        let got = verdicts(&a, Scheme::Semver, &["0.1.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0"]);
        assert_eq!(names(&got), ["0.1.0", "1.0.1"]);
        assert_eq!(got.first().and_then(|(_, f)| f.as_deref()), Some("1.0.2"));
    }

    #[test]
    fn spec_multiple_range_example_reports_the_fix_of_its_own_interval() {
        // [1.0.0, 1.0.2) and [3.0.0, 3.2.5), written out of order: the events are sorted first.
        let a = affected(
            vec![range(
                RangeKind::Semver,
                &[("introduced", "3.0.0"), ("fixed", "3.2.5"), ("introduced", "1.0.0"), ("fixed", "1.0.2")],
            )],
            &[],
        );
        let got =
            verdicts(&a, Scheme::Semver, &["0.9.0", "1.0.0", "1.0.1", "1.0.2", "2.5.0", "3.0.0", "3.2.4", "3.2.5"]);
        assert_eq!(
            got,
            [
                ("1.0.0".to_owned(), Some("1.0.2".to_owned())),
                ("1.0.1".to_owned(), Some("1.0.2".to_owned())),
                ("3.0.0".to_owned(), Some("3.2.5".to_owned())),
                ("3.2.4".to_owned(), Some("3.2.5".to_owned())),
            ]
        );
    }

    #[test]
    fn spec_last_affected_example_is_inclusive() {
        let a = affected(vec![range(RangeKind::Ecosystem, &[("introduced", "0"), ("last_affected", "2.1.214")])], &[]);
        let got = verdicts(&a, Scheme::Semver, &["2.1.213", "2.1.214", "2.1.215"]);
        assert_eq!(names(&got), ["2.1.213", "2.1.214"]);
        assert!(got.iter().all(|(_, fix)| fix.is_none()), "last_affected names no fix");
    }

    #[test]
    fn limit_bounds_the_range_and_star_is_infinity() {
        let a = affected(vec![range(RangeKind::Semver, &[("introduced", "1.0.0"), ("limit", "2.0.0")])], &[]);
        assert_eq!(
            names(&verdicts(&a, Scheme::Semver, &["0.9.0", "1.0.0", "1.9.9", "2.0.0", "3.0.0"])),
            ["1.0.0", "1.9.9"]
        );
        // Several limits: below any one of them is enough.
        let a = affected(
            vec![range(RangeKind::Semver, &[("introduced", "1.0.0"), ("limit", "1.5.0"), ("limit", "*")])],
            &[],
        );
        assert_eq!(names(&verdicts(&a, Scheme::Semver, &["1.0.0", "1.6.0", "9.0.0"])), ["1.0.0", "1.6.0", "9.0.0"]);
    }

    #[test]
    fn versions_only_when_no_comparable_range() {
        // No range: the list decides.
        let a = affected(vec![], &["1.0.0", "1.0.1"]);
        let got = verdicts(&a, Scheme::Semver, &["1.0.0", "1.0.1", "1.0.2"]);
        assert_eq!(names(&got), ["1.0.0", "1.0.1"]);
        assert!(matches!(evaluate(&a, "1.0.0", Scheme::Semver), Ok(Verdict::Affected { via: Via::Versions, .. })));
        // A GIT range is not comparable: the list still decides.
        let mut git = range(RangeKind::Git, &[("introduced", "0"), ("fixed", "abcdef")]);
        git.repo = Some("https://example.org/r".into());
        let a = affected(vec![git], &["1.0.0"]);
        assert_eq!(names(&verdicts(&a, Scheme::Semver, &["1.0.0", "2.0.0"])), ["1.0.0"]);
        // With an ECOSYSTEM range, a listed version the range calls fixed is not affected (Debian and
        // Ubuntu list other releases' versions).
        let a = affected(vec![range(RangeKind::Ecosystem, &[("introduced", "0"), ("fixed", "1.0.1")])], &["1.0.5"]);
        assert_eq!(names(&verdicts(&a, Scheme::Semver, &["1.0.0", "1.0.5"])), ["1.0.0"]);
    }

    #[test]
    fn introduced_zero_sorts_first_even_when_written_last() {
        let a = affected(vec![range(RangeKind::Ecosystem, &[("fixed", "1.2.0"), ("introduced", "0")])], &[]);
        assert_eq!(names(&verdicts(&a, Scheme::Semver, &["0.0.0", "1.1.9", "1.2.0"])), ["0.0.0", "1.1.9"]);
    }

    #[test]
    fn reintroduced_after_a_fix() {
        // Fixed in 1.2.0, reintroduced in 2.0.0, never fixed again.
        let a = affected(
            vec![range(RangeKind::Semver, &[("introduced", "0"), ("fixed", "1.2.0"), ("introduced", "2.0.0")])],
            &[],
        );
        let got = verdicts(&a, Scheme::Semver, &["1.0.0", "1.5.0", "2.0.0", "3.0.0"]);
        assert_eq!(
            got,
            [("1.0.0".to_owned(), Some("1.2.0".to_owned())), ("2.0.0".to_owned(), None), ("3.0.0".to_owned(), None)]
        );
    }

    #[test]
    fn any_of_several_ranges() {
        let a = affected(
            vec![
                range(RangeKind::Semver, &[("introduced", "1.0.0"), ("fixed", "1.1.0")]),
                range(RangeKind::Semver, &[("introduced", "2.0.0"), ("fixed", "2.1.0")]),
            ],
            &[],
        );
        assert_eq!(names(&verdicts(&a, Scheme::Semver, &["1.0.5", "1.5.0", "2.0.5", "2.1.0"])), ["1.0.5", "2.0.5"]);
    }

    #[test]
    fn overlapping_ranges_need_the_highest_fix() {
        let a = affected(
            vec![
                range(RangeKind::Ecosystem, &[("introduced", "0"), ("fixed", "1.0.2n-r0")]),
                range(RangeKind::Ecosystem, &[("introduced", "0"), ("fixed", "1.0.2o-r0")]),
            ],
            &[],
        );
        assert_eq!(
            evaluate(&a, "1.0.2h-r1", Scheme::Apk),
            Ok(Verdict::Affected { fixed: Some("1.0.2o-r0".into()), via: Via::Range })
        );
        assert_eq!(
            evaluate(&a, "1.0.2n-r0", Scheme::Apk),
            Ok(Verdict::Affected { fixed: Some("1.0.2o-r0".into()), via: Via::Range })
        );
        assert_eq!(evaluate(&a, "1.0.2o-r0", Scheme::Apk), Ok(Verdict::NotAffected));
        // One of them has no fix: nothing fixes the version.
        let a = affected(
            vec![
                range(RangeKind::Ecosystem, &[("introduced", "0"), ("fixed", "2.0")]),
                range(RangeKind::Ecosystem, &[("introduced", "1.0")]),
            ],
            &[],
        );
        assert_eq!(evaluate(&a, "1.5", Scheme::Dpkg), Ok(Verdict::Affected { fixed: None, via: Via::Range }));
        assert_eq!(
            evaluate(&a, "0.5", Scheme::Dpkg),
            Ok(Verdict::Affected { fixed: Some("2.0".into()), via: Via::Range })
        );
    }

    #[test]
    fn real_orderings_decide_epochs_and_suffixes() {
        // rpm: the epoch outranks any version.
        let a = affected(vec![range(RangeKind::Ecosystem, &[("introduced", "0"), ("fixed", "1:3.0.1-47.el9_1")])], &[]);
        assert!(evaluate(&a, "3.0.9-99.el9", Scheme::Rpm).expect("rpm").is_affected());
        assert!(evaluate(&a, "1:3.0.1-46.el9_0", Scheme::Rpm).expect("rpm").is_affected());
        assert!(!evaluate(&a, "1:3.0.1-47.el9_1", Scheme::Rpm).expect("rpm").is_affected());
        // dpkg: `~` sorts before the end of the string.
        let a = affected(vec![range(RangeKind::Ecosystem, &[("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")])], &[]);
        assert!(evaluate(&a, "3.0.11-1~deb12u1", Scheme::Dpkg).expect("dpkg").is_affected());
        assert!(!evaluate(&a, "3.0.11-1", Scheme::Dpkg).expect("dpkg").is_affected());
        // apk: `_p` is above the release, `-rN` last.
        let a = affected(vec![range(RangeKind::Ecosystem, &[("introduced", "0"), ("fixed", "9.10.6_p1-r0")])], &[]);
        assert!(evaluate(&a, "9.10.6-r9", Scheme::Apk).expect("apk").is_affected());
        assert!(!evaluate(&a, "9.10.6_p1-r0", Scheme::Apk).expect("apk").is_affected());
        // An installed version the scheme cannot read is an error, not a verdict.
        assert!(matches!(evaluate(&a, "not a version!", Scheme::Apk), Err(RangeError::Version(_))));
    }

    #[test]
    fn oversized_ranges_and_lists_are_refused() {
        let events: Vec<(&str, &str)> =
            std::iter::repeat_n(("introduced", "1.0.0"), MAX_EVENTS_PER_RANGE + 1).collect();
        let a = affected(vec![range(RangeKind::Semver, &events)], &[]);
        assert_eq!(evaluate(&a, "1.0.0", Scheme::Semver), Err(RangeError::TooManyEvents(MAX_EVENTS_PER_RANGE + 1)));
        let many: Vec<String> = (0..=MAX_VERSIONS_LISTED).map(|i| format!("{i}.0.0")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let a = affected(vec![], &refs);
        assert_eq!(evaluate(&a, "1.0.0", Scheme::Semver), Err(RangeError::TooManyVersions(MAX_VERSIONS_LISTED + 1)));
    }
}
