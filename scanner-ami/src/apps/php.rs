//! PHP Composer packages: `vendor/composer/installed.json`, v1 (a bare array) and v2
//! (`{"packages": [...]}`).
//!
//! This module owns the reading of one `installed.json` into [`AppPackage`]s.
//!
//! - Each entry needs a string `name` (`vendor/name`) and `version`; entries without them, or
//!   that are not objects, are skipped (as Trivy and Syft do); a wrong-typed `name` or `version`
//!   fails the file.
//! - The version is kept **as written**, a leading `v` included: Trivy's expected result for its
//!   own fixture is `pear/pear_exception` `v1.0.2` (`version_normalized` `1.0.2.0` is not used),
//!   and Syft reports the same string.
//! - Licence: the `license` array (or a lone string) joined with `, `; Composer documents an array
//!   as "the user can choose", which `, ` leaves to the reader rather than claiming an SPDX `OR`.
//! - `depends_on`: the purls of the entries of `require` that are themselves installed in the same
//!   file (Trivy's `dependsOn`); platform requirements (`php`, `ext-*`) are not packages and never
//!   match.

use std::collections::BTreeMap;

use serde_json::Value;

use super::node::{field, kind, licenses, parse_json};
use super::{AppEcosystem, AppError, AppPackage, AppRole};
use crate::limits::MAX_PACKAGES_PER_DB;
use crate::purl;

/// Largest `installed.json` read.
pub const MAX_INSTALLED_JSON_BYTES: u64 = 32 * 1024 * 1024;

/// The packages listed in the `installed.json` text at `location`.
///
/// # Errors
///
/// Not JSON of either layout.
pub fn parse_installed_json(bytes: &[u8], location: &str) -> Result<Vec<AppPackage>, AppError> {
    let doc = parse_json(bytes, location)?;
    let entries = match &doc {
        Value::Array(entries) => entries,
        Value::Object(o) => match o.get("packages") {
            Some(Value::Array(entries)) => entries,
            Some(other) => {
                return Err(AppError::new(location, format!("`packages` is {}, not an array", kind(other))));
            }
            None => return Err(AppError::new(location, "an object without `packages`: not a Composer installed.json")),
        },
        other => return Err(AppError::new(location, format!("installed.json is {}", kind(other)))),
    };
    let mut found: Vec<(AppPackage, Vec<String>)> = Vec::new();
    for entry in entries.iter().take(MAX_PACKAGES_PER_DB) {
        let Value::Object(obj) = entry else { continue };
        let (Some(name), Some(version)) =
            (field(obj.get("name"), "name", location)?, field(obj.get("version"), "version", location)?)
        else {
            continue;
        };
        let purl = purl::for_app(AppEcosystem::Composer, &name, &version);
        let mut pkg = AppPackage::new(AppEcosystem::Composer, &name, &version, purl, AppRole::Library, location);
        pkg.license = obj.get("license").and_then(licenses);
        let requires = match obj.get("require") {
            Some(Value::Object(req)) => req.keys().map(|k| k.to_lowercase()).collect(),
            _ => Vec::new(),
        };
        found.push((pkg, requires));
    }
    let by_name: BTreeMap<String, String> =
        found.iter().map(|(p, _)| (p.name.to_lowercase(), p.purl.clone())).collect();
    Ok(found
        .into_iter()
        .map(|(mut pkg, requires)| {
            let mut deps: Vec<String> = requires.iter().filter_map(|r| by_name.get(r).cloned()).collect();
            deps.sort();
            deps.dedup();
            pkg.depends_on = deps;
            pkg
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<AppPackage>, AppError> {
        parse_installed_json(text.as_bytes(), "/srv/app/vendor/composer/installed.json")
    }

    #[test]
    fn v1_and_v2_layouts() {
        let entries = r#"[{"name":"Monolog/Monolog","version":"v2.9.1","license":["MIT"],"require":{"php":">=7.2","psr/log":"^1"}},
                          {"name":"psr/log","version":"1.1.4","license":"MIT"},
                          {"name":"no/version"}, 7, null]"#;
        for text in [entries.to_owned(), format!(r#"{{"packages":{entries},"dev":true}}"#)] {
            let got = parse(&text).expect("ok");
            assert_eq!(got.len(), 2);
            assert_eq!((got[0].name.as_str(), got[0].version.as_str()), ("Monolog/Monolog", "v2.9.1"));
            assert_eq!(got[0].purl, "pkg:composer/monolog/monolog@v2.9.1");
            assert_eq!(got[0].depends_on, vec!["pkg:composer/psr/log@1.1.4".to_owned()]);
            assert_eq!((got[1].license.as_deref(), got[1].role), (Some("MIT"), AppRole::Library));
            assert!(got[1].depends_on.is_empty());
        }
    }

    #[test]
    fn licence_list_joined() {
        let got =
            parse(r#"[{"name":"a/b","version":"1","license":["LGPL-2.1-only","GPL-3.0-or-later"]}]"#).expect("ok");
        assert_eq!(got[0].license.as_deref(), Some("LGPL-2.1-only, GPL-3.0-or-later"));
    }

    #[test]
    fn not_installed_json() {
        assert!(parse(r#"{"name":"a/b"}"#).is_err());
        assert!(parse(r#"{"packages":{"a":1}}"#).is_err());
        assert!(parse(r#""x""#).is_err());
        assert!(parse(r#"[{"name":"a/b","version":{"v":1}}]"#).is_err());
        assert_eq!(parse("[]").expect("ok"), vec![]);
        let deep = format!(r#"{{"packages":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).expect_err("deep").reason.contains("recursion limit"));
    }

    #[test]
    fn control_characters_are_stripped() {
        let got =
            parse(r#"[{"name":"a/b\u001b]0;pwned\u0007","version":"1\r\n","license":["MIT\u001b"]}]"#).expect("ok");
        assert_eq!((got[0].name.as_str(), got[0].version.as_str()), ("a/b]0;pwned", "1"));
        assert_eq!(got[0].license.as_deref(), Some("MIT"));
    }
}
