//! .NET packages: the libraries of `*.deps.json`.
//!
//! This module owns the reading of one `*.deps.json` (the .NET host's dependency manifest) into
//! [`AppPackage`]s: each key `"Name/Version"` of the `libraries` object.
//!
//! - `type: "package"`: a NuGet package, role [`AppRole::Library`], `pkg:nuget/Name@Version`, the
//!   name's case kept (NuGet ids are case-insensitive; NuGet and Trivy show them as published).
//! - `type: "project"`: the application itself, role [`AppRole::Application`]. Trivy reports it
//!   (relationship `root`) and its expected result for its own fixture lists it, so we keep it;
//!   its purl is a NuGet purl like the packages'.
//! - Other types (`reference`, `runtimepack`, ...) are skipped: they are framework assemblies, not
//!   NuGet packages, and neither Trivy nor Syft reports them.
//! - A key without `/`, or with an empty name or version, is skipped.

use serde_json::Value;

use super::node::{kind, parse_json};
use super::{AppEcosystem, AppError, AppPackage, AppRole, clean};
use crate::limits::MAX_PACKAGES_PER_DB;
use crate::purl;

/// Largest `*.deps.json` read.
pub const MAX_DEPS_JSON_BYTES: u64 = 32 * 1024 * 1024;

/// The NuGet packages listed in the `*.deps.json` text at `location`.
///
/// # Errors
///
/// Not JSON of the deps.json shape.
pub fn parse_deps_json(bytes: &[u8], location: &str) -> Result<Vec<AppPackage>, AppError> {
    let doc = parse_json(bytes, location)?;
    let Value::Object(obj) = &doc else {
        return Err(AppError::new(location, format!("deps.json is {}, not an object", kind(&doc))));
    };
    let libraries = match obj.get("libraries") {
        Some(Value::Object(libs)) => libs,
        Some(other) => return Err(AppError::new(location, format!("`libraries` is {}, not an object", kind(other)))),
        None => return Err(AppError::new(location, "no `libraries` object: not a .NET deps.json")),
    };
    let mut out = Vec::new();
    for (key, lib) in libraries.iter().take(MAX_PACKAGES_PER_DB) {
        let role = match lib.get("type").and_then(Value::as_str) {
            Some("package") => AppRole::Library,
            Some("project") => AppRole::Application,
            _ => continue,
        };
        let Some((name, version)) = key.split_once('/') else { continue };
        let (name, version) = (clean(name.trim()), clean(version.trim()));
        if name.is_empty() || version.is_empty() || name.len() + version.len() > super::node::MAX_FIELD_BYTES {
            continue;
        }
        let purl = purl::for_app(AppEcosystem::Nuget, &name, &version);
        out.push(AppPackage::new(AppEcosystem::Nuget, &name, &version, purl, role, location));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<AppPackage>, AppError> {
        parse_deps_json(text.as_bytes(), "/opt/app/app.deps.json")
    }

    #[test]
    fn packages_and_project() {
        let got = parse(
            r#"{"libraries":{
                "Serilog/2.12.0":{"type":"package","sha512":"x"},
                "MyApp/1.0.0":{"type":"project"},
                "System.Runtime/4.0.0.0":{"type":"reference"},
                "NoVersion":{"type":"package"},
                "Bad/1.0":{"type":7},
                "Odd/":{"type":"package"}}}"#,
        )
        .expect("ok");
        let got: Vec<_> = got.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str(), p.role)).collect();
        assert_eq!(
            got,
            vec![
                ("MyApp", "1.0.0", "pkg:nuget/MyApp@1.0.0", AppRole::Application),
                ("Serilog", "2.12.0", "pkg:nuget/Serilog@2.12.0", AppRole::Library),
            ]
        );
    }

    #[test]
    fn not_deps_json() {
        assert!(parse("[]").is_err());
        assert!(parse(r#"{"targets":{}}"#).is_err());
        assert!(parse(r#"{"libraries":[]}"#).is_err());
        assert_eq!(parse(r#"{"libraries":{}}"#).expect("ok"), vec![]);
        let deep = format!(r#"{{"libraries":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).expect_err("deep").reason.contains("recursion limit"));
    }

    #[test]
    fn control_characters_are_stripped() {
        let got = parse(r#"{"libraries":{"Ev\u001b[1mil/1.0\u0000":{"type":"package"}}}"#).expect("ok");
        assert_eq!((got[0].name.as_str(), got[0].version.as_str()), ("Ev[1mil", "1.0"));
        assert_eq!(got[0].purl, "pkg:nuget/Ev%5B1mil@1.0");
    }
}
