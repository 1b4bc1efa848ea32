//! Node packages: every `package.json` with a name and a version.
//!
//! This module owns the reading of one `package.json` into an [`AppPackage`] (the walker decides
//! which files are package roots), and the JSON helpers the other JSON readers ([`super::php`],
//! [`super::dotnet`]) share: parsing with serde_json's recursion limit (128 nested arrays or
//! objects, an error rather than a stack overflow on hostile nesting) after a linear pre-count
//! that bounds the parsed tree ([`MAX_JSON_VALUES`]), licence fields, bounded strings.
//!
//! - `name` and `version` must both be non-empty strings, else no package (Trivy and Syft skip
//!   such files too); a `name` or `version` of another JSON type is an error for the file.
//! - Licence: `license` as a string, an object's `type`, or (invalid, but published) an array of
//!   either; else the legacy `licenses` array of `{type}` objects or strings. Several are joined
//!   with `, ` (a list, not an SPDX expression). A licence field of any other type is ignored.
//! - Scoped names keep their `@scope/`; the purl encodes it as `%40scope`
//!   ([`crate::purl::for_app`]).

use serde_json::Value;

use super::{AppEcosystem, AppError, AppPackage, AppRole, clean};
use crate::purl;

/// Largest `package.json` read.
pub const MAX_PACKAGE_JSON_BYTES: u64 = 4 * 1024 * 1024;

/// Longest name or version accepted from a JSON manifest, in bytes. npm caps names at 214
/// characters (`validate-npm-package-name`); Composer, NuGet and semver versions are far shorter
/// than this. A longer field is a hostile file.
pub const MAX_FIELD_BYTES: usize = 1024;

/// Most licences kept from one list (real manifests name one to three).
pub const MAX_LICENSES: usize = 16;

/// Longest licence string kept, in bytes (SPDX expressions on npm are under 200 bytes).
pub const MAX_LICENSE_BYTES: usize = 1024;

/// The package described by `package.json` text at `location`; `None` without name or version.
///
/// # Errors
///
/// Not JSON, or not an object.
pub fn parse_package_json(bytes: &[u8], location: &str) -> Result<Option<AppPackage>, AppError> {
    let doc = parse_json(bytes, location)?;
    let Value::Object(obj) = &doc else {
        return Err(AppError::new(location, format!("package.json is {}, not an object", kind(&doc))));
    };
    let (Some(name), Some(version)) =
        (field(obj.get("name"), "name", location)?, field(obj.get("version"), "version", location)?)
    else {
        return Ok(None);
    };
    let purl = purl::for_app(AppEcosystem::Npm, &name, &version);
    let mut pkg = AppPackage::new(AppEcosystem::Npm, &name, &version, purl, AppRole::Library, location);
    pkg.license = obj.get("license").and_then(licenses).or_else(|| obj.get("licenses").and_then(licenses));
    Ok(Some(pkg))
}

/// Most JSON values (and object keys) parsed from one file. A parsed value costs 32 bytes and more
/// (object entries about 100), while `[],` is 3 bytes of text: 32 MiB of empty arrays would take
/// over 350 MiB parsed. Large real files stay far below this: a Laravel `installed.json` of 150
/// packages holds ~20,000 values, a big ASP.NET `deps.json` ~50,000. 500,000 bounds the parsed
/// tree to ~50 MiB.
pub const MAX_JSON_VALUES: usize = 500_000;

/// Parse JSON text (a UTF-8 byte order mark allowed, as Windows editors write one) with
/// serde_json's recursion limit, after checking that it holds at most [`MAX_JSON_VALUES`] values.
///
/// # Errors
///
/// Not JSON, nested deeper than serde_json's limit of 128, or too many values.
pub(super) fn parse_json(bytes: &[u8], location: &str) -> Result<Value, AppError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let values = value_count_bound(bytes);
    if values > MAX_JSON_VALUES {
        return Err(AppError::new(location, format!("more than {MAX_JSON_VALUES} JSON values ({values})")));
    }
    serde_json::from_slice(bytes).map_err(|e| AppError::new(location, format!("not JSON: {e}")))
}

/// An upper bound on the values and keys of JSON text: one plus each `[`, `{`, `,` and `:` outside
/// strings (one linear pass, no allocation).
fn value_count_bound(bytes: &[u8]) -> usize {
    let (mut count, mut in_string, mut escaped) = (1usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' | b',' | b':' => count = count.saturating_add(1),
                _ => {}
            }
        }
    }
    count
}

/// The JSON type of `v`, for error messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A name or version field: `None` when absent, null or empty (after control characters are
/// stripped and whitespace trimmed).
///
/// # Errors
///
/// The field has another JSON type, or is longer than [`MAX_FIELD_BYTES`].
pub(super) fn field(v: Option<&Value>, what: &str, location: &str) -> Result<Option<String>, AppError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_FIELD_BYTES => {
            Err(AppError::new(location, format!("`{what}` is longer than {MAX_FIELD_BYTES} bytes")))
        }
        Some(Value::String(s)) => Ok(Some(clean(s.trim())).filter(|s| !s.is_empty())),
        Some(other) => Err(AppError::new(location, format!("`{what}` is {}, not a string", kind(other)))),
    }
}

/// Licence names from a licence field: a string, an object's `type` (or `name`), or an array of
/// those; cleaned, bounded, joined with `, `. `None` when it names none.
pub(super) fn licenses(v: &Value) -> Option<String> {
    let one = |v: &Value| -> Option<String> {
        let s = match v {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o.get("type").or_else(|| o.get("name")).and_then(Value::as_str)?,
            _ => return None,
        };
        let s = clean(s.trim());
        let mut end = s.len().min(MAX_LICENSE_BYTES);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Some(s.get(..end).unwrap_or_default().to_owned()).filter(|s| !s.is_empty())
    };
    let names: Vec<String> = match v {
        Value::Array(items) => items.iter().filter_map(one).take(MAX_LICENSES).collect(),
        other => one(other).into_iter().collect(),
    };
    (!names.is_empty()).then(|| names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<AppPackage>, AppError> {
        parse_package_json(text.as_bytes(), "/app/node_modules/x/package.json")
    }

    #[test]
    fn plain_and_scoped() {
        let p = parse(r#"{"name":"lodash","version":"4.17.21","license":"MIT"}"#).expect("ok").expect("pkg");
        assert_eq!(
            (p.name.as_str(), p.version.as_str(), p.purl.as_str()),
            ("lodash", "4.17.21", "pkg:npm/lodash@4.17.21")
        );
        assert_eq!((p.license.as_deref(), p.role), (Some("MIT"), AppRole::Library));
        let p = parse("\u{feff}{\"name\":\"@Types/Node\",\"version\":\"20.1.0\"}").expect("ok").expect("pkg");
        assert_eq!(p.name, "@Types/Node");
        assert_eq!(p.purl, "pkg:npm/%40types/node@20.1.0");
        assert_eq!(p.license, None);
    }

    #[test]
    fn licence_forms() {
        let lic = |extra: &str| {
            parse(&format!(r#"{{"name":"a","version":"1.0.0",{extra}}}"#)).expect("ok").expect("pkg").license
        };
        assert_eq!(lic(r#""license":{"type":"ISC","url":"http://x"}"#).as_deref(), Some("ISC"));
        assert_eq!(lic(r#""licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]"#).as_deref(), Some("MIT, Apache-2.0"));
        assert_eq!(lic(r#""license":["BSD-3-Clause","GPL-2.0"]"#).as_deref(), Some("BSD-3-Clause, GPL-2.0"));
        assert_eq!(lic(r#""license":"","licenses":["WTFPL"]"#).as_deref(), Some("WTFPL"));
        assert_eq!(lic(r#""license":42"#), None);
        assert_eq!(lic(r#""license":{"type":7}"#), None);
    }

    #[test]
    fn missing_and_wrong_types() {
        assert_eq!(parse(r#"{"name":"a"}"#).expect("ok"), None);
        assert_eq!(parse(r#"{"version":"1.0.0"}"#).expect("ok"), None);
        assert_eq!(parse(r#"{"name":"","version":"1"}"#).expect("ok"), None);
        assert_eq!(parse(r#"{"name":null,"version":"1"}"#).expect("ok"), None);
        let e = parse(r#"{"name":["a"],"version":"1"}"#).expect_err("array name");
        assert!(e.reason.contains("`name` is an array"), "{e}");
        assert!(parse(r#"{"name":"a","version":1.5}"#).is_err());
        assert!(parse("[]").is_err());
        assert!(parse("not json").is_err());
        assert!(parse(&format!(r#"{{"name":"{}","version":"1"}}"#, "a".repeat(MAX_FIELD_BYTES + 1))).is_err());
    }

    #[test]
    fn control_characters_are_stripped() {
        let p = parse(r#"{"name":"ev\u001b[31mil","version":"1.0\u0007","license":"MIT\u009b"}"#)
            .expect("ok")
            .expect("pkg");
        assert_eq!((p.name.as_str(), p.version.as_str(), p.license.as_deref()), ("ev[31mil", "1.0", Some("MIT")));
        assert_eq!(p.purl, "pkg:npm/ev%5B31mil@1.0");
    }

    #[test]
    fn too_many_values_is_an_error_before_parsing() {
        assert_eq!(value_count_bound(br#"{"a":[1,2],"b":"[,{:\"x"}"#), 7);
        let wide = format!("[{}[]]", "[],".repeat(MAX_JSON_VALUES));
        let e = parse(&wide).expect_err("too many");
        assert!(e.reason.contains("more than 500000 JSON values"), "{e}");
        let fine = format!(r#"{{"name":"a","version":"1","files":[{}1]}}"#, "1,".repeat(MAX_JSON_VALUES / 2));
        assert!(parse(&fine).expect("ok").is_some());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&deep).expect_err("too deep");
        assert!(e.reason.contains("recursion limit"), "{e}");
        let deep = format!(r#"{{"name":"a","version":"1","x":{}1{}}}"#, "{\"a\":".repeat(100_000), "}".repeat(100_000));
        assert!(parse(&deep).expect_err("too deep").reason.contains("recursion limit"));
    }
}
