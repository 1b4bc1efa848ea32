//! Version ordering per packaging scheme, each written after the native tool's behaviour (dpkg,
//! rpm, apk) or the ecosystem's specification (SemVer and Go module versions, PEP 440, Maven).
//!
//! [`compare`] is the one entry point: it checks both strings against the scheme's grammar
//! (a string the scheme cannot order is a [`VersionError`], never a guess) and orders them. Every
//! comparator is linear in the length of its inputs, and inputs are bounded by
//! [`MAX_VERSION_LEN`]. Which scheme an OSV ecosystem uses is [`Scheme::for_ecosystem`].

mod apk;
mod dpkg;
mod maven;
mod pep440;
mod rpm;
mod semver;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;

/// Longest version string compared, in bytes. Real versions are short: the longest in the
/// AlmaLinux OSV snapshot and the Alpine secdb are under 100 bytes, Debian's under 150. No native
/// tool has a limit, so this only bounds the work one hostile string can cause (every comparator
/// is linear); 64 KiB is hundreds of times any real version.
pub const MAX_VERSION_LEN: usize = 64 * 1024;

/// A version ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Debian and Ubuntu (`dpkg --compare-versions`).
    Dpkg,
    /// The RPM family (rpm's `rpmvercmp` over epoch, version, release).
    Rpm,
    /// Alpine (`apk version -t`).
    Apk,
    /// Semantic Versioning 2.0 (npm, Cargo), with Go's `v` prefix and pseudo-versions.
    Semver,
    /// Python (PEP 440).
    Pep440,
    /// Maven (`ComparableVersion`).
    Maven,
}

impl Scheme {
    /// The scheme of an OSV ecosystem string (`Debian:12`, `AlmaLinux:9`, `Alpine:v3.19`, `Go`,
    /// `crates.io`, `npm`, `PyPI`, `Maven`...): the part before the first `:` names the
    /// ecosystem. `None` for an ecosystem none of our schemes orders.
    #[must_use]
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        match base {
            "Debian" | "Ubuntu" => Some(Scheme::Dpkg),
            "AlmaLinux" | "Rocky Linux" | "Red Hat" | "openSUSE" | "SUSE" | "Mageia" => Some(Scheme::Rpm),
            "Alpine" => Some(Scheme::Apk),
            "Go" | "crates.io" | "npm" => Some(Scheme::Semver),
            "PyPI" => Some(Scheme::Pep440),
            "Maven" => Some(Scheme::Maven),
            _ => None,
        }
    }
}

/// A version string that the scheme cannot order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scheme:?} version {version:?} is invalid: {reason}")]
pub struct VersionError {
    pub scheme: Scheme,
    pub version: String,
    pub reason: String,
}

/// Longest prefix of an invalid version kept in a [`VersionError`] (the reason says what is
/// wrong; a 64 KiB string copied into every error message would only flood logs).
const ERROR_VERSION_PREFIX: usize = 200;

impl VersionError {
    pub(crate) fn new(scheme: Scheme, version: &str, reason: impl Into<String>) -> Self {
        let mut end = version.len().min(ERROR_VERSION_PREFIX);
        while !version.is_char_boundary(end) {
            end -= 1;
        }
        let mut shown = version.get(..end).unwrap_or_default().to_owned();
        if end < version.len() {
            shown.push('…');
        }
        VersionError { scheme, version: shown, reason: reason.into() }
    }
}

/// Order two versions of one scheme.
///
/// # Errors
///
/// Either string is not a version of that scheme (or is longer than [`MAX_VERSION_LEN`]).
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    for v in [a, b] {
        if v.len() > MAX_VERSION_LEN {
            return Err(VersionError::new(
                scheme,
                v,
                format!("{} bytes long, more than the {MAX_VERSION_LEN} accepted", v.len()),
            ));
        }
    }
    match scheme {
        Scheme::Dpkg => dpkg::compare(a, b),
        Scheme::Rpm => rpm::compare(a, b),
        Scheme::Apk => apk::compare(a, b),
        Scheme::Semver => semver::compare(a, b),
        Scheme::Pep440 => pep440::compare(a, b),
        Scheme::Maven => maven::compare(a, b),
    }
}

/// Check that a string is a version of the scheme, without comparing it to anything.
///
/// # Errors
///
/// The string is not a version of that scheme.
pub fn validate(scheme: Scheme, v: &str) -> Result<(), VersionError> {
    compare(scheme, v, v).map(|_| ())
}

/// Compare two runs of ASCII digits as unbounded non-negative integers (leading zeros ignored),
/// so that no version number can overflow.
pub(crate) fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_leading_zeros(a);
    let b = strip_leading_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_leading_zeros(s: &[u8]) -> &[u8] {
    let zeros = s.iter().take_while(|&&c| c == b'0').count();
    s.get(zeros..).unwrap_or_default()
}
