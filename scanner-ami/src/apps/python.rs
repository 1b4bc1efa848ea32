//! Python distributions: `*.dist-info/METADATA`, `*.egg-info` (file, or directory with
//! `PKG-INFO`), `EGG-INFO/PKG-INFO`.
//!
//! This module owns the reading of one core-metadata text (PEP 241/314/345/566/643: RFC 822-style
//! headers) into an [`AppPackage`]; the walker finds the files and hands over their first bytes.
//!
//! - Headers end at the first empty line, or at the first line that is neither a header
//!   (`Field: value`) nor a continuation (starting with a space or tab): Python's `email` parser,
//!   which `importlib.metadata` and pip use, does the same. What follows is the description, never
//!   read (the distlib fixture has `Platform` and `Classifier` lines after a blank line: they are
//!   body, as for pip).
//! - When the input is a truncated prefix (exactly [`MAX_METADATA_PREFIX`] bytes), its last line
//!   may be cut off mid-value and is dropped.
//! - Name: the first `Name`, normalised per PEP 503 (runs of `-`, `_`, `.` become one `-`,
//!   lowercase), which is also the purl's name (Syft's purls do the same: `Foo_Bar` gives
//!   `pkg:pypi/foo-bar@1.0`). Version: the first `Version`, as written.
//! - Licence, first found of: `License-Expression` (PEP 639, preferred as `License` is
//!   deprecated); `License` unless empty or `UNKNOWN` (what distutils wrote for none), its first
//!   line only (some packages put the whole licence text there); else every `License :: ...`
//!   classifier's last ` :: ` segment (`License :: OSI Approved :: MIT License` gives
//!   `MIT License`), joined with `, ` — Trivy's rule; Syft reads no classifiers and would give no
//!   licence there. A bare `License :: OSI Approved` classifier names no licence and is skipped.

use super::{AppEcosystem, AppError, AppPackage, AppRole, clean};
use crate::purl;

/// Most bytes of a metadata file read: the headers come first and are a few KiB; the long
/// description after them is not needed.
pub const MAX_METADATA_PREFIX: u64 = 1024 * 1024;

/// Longest name or version accepted, in bytes. PyPI names in practice stay under 100 characters
/// and PEP 440 versions under 50; a longer field is a corrupt or hostile file.
pub const MAX_FIELD_BYTES: usize = 1024;

/// Longest licence kept, in bytes; a longer one is cut at a character boundary. `License-Expression`
/// values on PyPI are under 200 bytes; the first line of a `License` text is a title.
pub const MAX_LICENSE_BYTES: usize = 1024;

/// Most licence classifiers kept: real packages list one to three.
const MAX_LICENSE_CLASSIFIERS: usize = 16;

/// The distribution described by the core-metadata text `bytes` (the file's first bytes, at most
/// [`MAX_METADATA_PREFIX`]) found at `location`; `None` without a name or version.
///
/// # Errors
///
/// The text is not core metadata.
pub fn parse_metadata(bytes: &[u8], location: &str) -> Result<Option<AppPackage>, AppError> {
    let cap = usize::try_from(MAX_METADATA_PREFIX).unwrap_or(usize::MAX);
    let truncated = bytes.len() >= cap;
    let bytes = bytes.get(..cap).unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    let headers = headers(&text, truncated);
    if headers.is_empty() {
        return Err(AppError::new(location, "not core metadata: no `Field: value` header line"));
    }
    let first = |field: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)).map(|(_, v)| v.as_str());
    let name = clean(first("Name").unwrap_or_default().trim());
    let version = clean(first("Version").unwrap_or_default().trim());
    if name.is_empty() || version.is_empty() {
        return Ok(None);
    }
    if name.len() > MAX_FIELD_BYTES || version.len() > MAX_FIELD_BYTES {
        return Err(AppError::new(
            location,
            format!("name or version longer than {MAX_FIELD_BYTES} bytes: not real core metadata"),
        ));
    }
    let name = normalize_name(&name);
    let purl = purl::for_app(AppEcosystem::Pypi, &name, &version);
    let mut pkg = AppPackage::new(AppEcosystem::Pypi, &name, &version, purl, AppRole::Library, location);
    pkg.license = license(&headers);
    Ok(Some(pkg))
}

/// PEP 503 normalisation: every run of `-`, `_` and `.` becomes one `-`; lowercase.
#[must_use]
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            in_sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The header fields of `text` in order, continuation lines joined with `\n`; `truncated` drops
/// the last, possibly cut, line.
fn headers(text: &str, truncated: bool) -> Vec<(&str, String)> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if truncated {
        lines.pop();
    }
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line.trim());
                    continue;
                }
                None => break,
            }
        }
        match line.split_once(':') {
            // RFC 822 field names: printable ASCII but space and colon.
            Some((field, value)) if !field.is_empty() && field.bytes().all(|b| (33..=126).contains(&b)) => {
                out.push((field, value.trim().to_owned()));
            }
            _ => break,
        }
    }
    out
}

/// The licence per the rule in the module documentation, cleaned and bounded.
fn license(headers: &[(&str, String)]) -> Option<String> {
    let values = |field: &'static str| {
        headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(field)).map(|(_, v)| v.as_str())
    };
    let first_line = |v: &str| v.lines().next().unwrap_or_default().trim().to_owned();
    let found = values("License-Expression")
        .map(first_line)
        .find(|v| !v.is_empty())
        .or_else(|| values("License").map(first_line).find(|v| !v.is_empty() && !v.eq_ignore_ascii_case("UNKNOWN")))
        .or_else(|| {
            let names: Vec<&str> = values("Classifier")
                .filter_map(|c| c.strip_prefix("License ::"))
                .filter_map(|c| c.rsplit(" :: ").next())
                .map(str::trim)
                .filter(|n| !n.is_empty() && *n != "OSI Approved" && !n.starts_with("OSI Approved ::"))
                .take(MAX_LICENSE_CLASSIFIERS)
                .collect();
            (!names.is_empty()).then(|| names.join(", "))
        })?;
    let cleaned = clean(&found);
    Some(truncate(&cleaned, MAX_LICENSE_BYTES).to_owned()).filter(|l| !l.is_empty())
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<AppPackage> {
        parse_metadata(text.as_bytes(), "/site/x.dist-info/METADATA").expect("parses")
    }

    #[test]
    fn pep503_names() {
        assert_eq!(normalize_name("Foo_Bar"), "foo-bar");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("A-_.-B"), "a-b");
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
        let p = parse("Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\n").expect("pkg");
        assert_eq!((p.name.as_str(), p.version.as_str()), ("foo-bar", "1.0"));
        assert_eq!(p.purl, "pkg:pypi/foo-bar@1.0");
        assert_eq!(p.role, AppRole::Library);
        assert_eq!(p.location, "/site/x.dist-info/METADATA");
    }

    #[test]
    fn headers_end_at_blank_line_and_continuations_fold() {
        let p = parse(
            "Name: a\r\nVersion: 2.0rc1\r\nLicense: Copyright (c) X\r\n        All rights reserved.\r\n\r\nLicense-Expression: MIT\r\n",
        )
        .expect("pkg");
        assert_eq!(p.version, "2.0rc1");
        assert_eq!(p.license.as_deref(), Some("Copyright (c) X"), "first line; the expression is body");
        // A line that is no header ends the headers.
        assert_eq!(parse("Name: a\nnot a header\nVersion: 1\n"), None);
    }

    #[test]
    fn licence_precedence() {
        let lic = |t: &str| parse(&format!("Name: a\nVersion: 1\n{t}")).expect("pkg").license;
        assert_eq!(
            lic("License: MIT License\nLicense-Expression: Apache-2.0 OR MIT\n").as_deref(),
            Some("Apache-2.0 OR MIT")
        );
        assert_eq!(
            lic("License: UNKNOWN\nClassifier: License :: OSI Approved :: BSD License\nClassifier: License :: OSI Approved\nClassifier: License :: Public Domain\n")
                .as_deref(),
            Some("BSD License, Public Domain")
        );
        assert_eq!(lic("License: \nClassifier: Topic :: Utilities\n"), None);
        assert_eq!(lic("License: \u{1b}[31mEvil\u{7}\n").as_deref(), Some("[31mEvil"));
    }

    #[test]
    fn missing_fields_and_non_metadata() {
        assert_eq!(parse("Metadata-Version: 2.1\nName: a\n"), None);
        assert_eq!(parse("Name: a\nVersion:   \n"), None);
        assert!(parse_metadata(b"", "/m").is_err());
        assert!(parse_metadata(b"\x7fELF\x02\x01\x01\0\0\0", "/m").is_err());
        // `{"name"` is a valid RFC 822 field name (as for Python's parser): headers, no package.
        assert_eq!(parse_metadata(b"{\"name\": \"x\"}", "/m").expect("headers"), None);
    }

    #[test]
    fn control_characters_are_stripped() {
        let p = parse("Name: ev\u{1b}[2Jil\u{9b}\nVersion: 1.\u{0}0\n").expect("pkg");
        assert_eq!((p.name.as_str(), p.version.as_str()), ("ev[2jil", "1.0"));
        assert_eq!(p.purl, "pkg:pypi/ev%5B2jil@1.0");
    }

    #[test]
    fn truncated_prefix_is_bounded() {
        let cap = usize::try_from(MAX_METADATA_PREFIX).expect("fits");
        // The 1 MiB prefix of a 100 MB one-line file: no complete line, an error, not a 1 MiB name.
        let mut one_line = b"Name: ".to_vec();
        one_line.resize(cap, b'a');
        assert!(parse_metadata(&one_line, "/m").is_err());
        // Complete headers, then a line cut by the cap: the package, without the cut value.
        let mut long = b"Name: big\nVersion: 1\nLicense: ".to_vec();
        long.resize(cap, b'L');
        let p = parse_metadata(&long, "/m").expect("parses").expect("pkg");
        assert_eq!((p.name.as_str(), p.license), ("big", None));
        // Over-long fields on complete lines are refused.
        let text = format!("Name: {}\nVersion: 1\n", "n".repeat(MAX_FIELD_BYTES + 1));
        assert!(parse_metadata(text.as_bytes(), "/m").is_err());
        // A long licence line is cut.
        let text = format!("Name: a\nVersion: 1\nLicense: {}\n", "é".repeat(MAX_LICENSE_BYTES));
        let l = parse(&text).expect("pkg").license.expect("licence");
        assert!(l.len() <= MAX_LICENSE_BYTES && l.len() > MAX_LICENSE_BYTES - 2, "{}", l.len());
    }
}
