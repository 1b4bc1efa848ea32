//! The OSV schema 1.6 (<https://ossf.github.io/osv-schema/>) as serde types: what an advisory
//! record says, read from publishers' JSON and stored as JSON in the advisory database.
//!
//! Deserialisation is strict where matching depends on it and lenient elsewhere:
//! - a range event must carry exactly one of `introduced`, `fixed`, `last_affected` or `limit`
//!   (the schema's `oneOf`); an event naming two (`{"introduced": "0", "fixed": "1.2"}`) is an
//!   error rather than a guess at which one the publisher meant;
//! - a range `type` outside `ECOSYSTEM`, `SEMVER` and `GIT` is an error;
//! - fields this module does not model (`credits`, `schema_version`, ...) are ignored, and list
//!   fields a publisher writes as `null` read as empty.
//!
//! Semantic checks that need more than one field (ecosystem names, identifiers) are in
//! [`Record::validate`].

use serde::{Deserialize, Deserializer, Serialize};

/// One advisory (an OSV "vulnerability" object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The publisher's identifier (`ALSA-2023:0946`, `CVE-2024-0727`, `GHSA-...`).
    pub id: String,
    /// RFC 3339 time of the last change.
    pub modified: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Set when the publisher retracted the record: it must not be matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// Other identifiers of the same vulnerability.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Identifiers of closely related vulnerabilities (AlmaLinux puts the CVEs of an erratum here).
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// Identifiers this record was derived from (schema 1.7's `upstream`; read when present).
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub affected: Vec<Affected>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// A package (or a repository, for `GIT` ranges without a package) and the versions of it affected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Enumerated affected versions (some publishers list other releases' versions here: prefer
    /// the ranges, docs/references.md, "Matching pitfalls").
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Publisher-specific data (Debian `urgency`, Ubuntu `binaries`, SUSE `binaries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_specific: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
    /// Per-package severity (schema 1.5+); never set together with the record's `severity`.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
}

/// A package in an ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Package {
    /// OSV ecosystem string: `Debian:12`, `Ubuntu:22.04:LTS`, `AlmaLinux:9`, `Alpine:v3.19`, `PyPI`...
    pub ecosystem: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

/// A range of affected versions, as an ordered list of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: RangeKind,
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<Event>,
    /// The repository of a `GIT` range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_specific: Option<serde_json::Value>,
}

/// How a range's versions are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    /// The ecosystem's own ordering (dpkg, rpm, apk, PEP 440, ...).
    Ecosystem,
    /// SemVer 2.0 ordering.
    Semver,
    /// Commit hashes of `repo`; not comparable to package versions.
    Git,
}

/// One event of a range. Serialised as a one-key object, as in OSV: `{"fixed": "1.2-3"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// Versions from this one on are affected (`"0"`: from the start).
    Introduced(String),
    /// Versions from this one on are not affected.
    Fixed(String),
    /// The last affected version (versions after it are not).
    LastAffected(String),
    /// An upper bound on the range (for `GIT` ranges: the branch tip considered).
    Limit(String),
}

impl Event {
    /// The event's key in OSV JSON.
    #[must_use]
    pub fn key(&self) -> &'static str {
        match self {
            Self::Introduced(_) => "introduced",
            Self::Fixed(_) => "fixed",
            Self::LastAffected(_) => "last_affected",
            Self::Limit(_) => "limit",
        }
    }

    /// The version (or commit) the event names.
    #[must_use]
    pub fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.key(), self.version())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> serde::de::Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an OSV range event: an object with exactly one of introduced, fixed, last_affected, limit")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        use serde::de::Error;
        let mut event: Option<Event> = None;
        while let Some(key) = map.next_key::<String>()? {
            let make: fn(String) -> Event = match key.as_str() {
                "introduced" => Event::Introduced,
                "fixed" => Event::Fixed,
                "last_affected" => Event::LastAffected,
                "limit" => Event::Limit,
                other => {
                    return Err(A::Error::custom(format!(
                        "unknown range event key {other:?} (expected introduced, fixed, last_affected or limit)"
                    )));
                }
            };
            let value: String = map.next_value()?;
            if let Some(first) = &event {
                return Err(A::Error::custom(format!(
                    "a range event has both {:?} and {key:?}: each event must have exactly one",
                    first.key()
                )));
            }
            event = Some(make(value));
        }
        event.ok_or_else(|| {
            A::Error::custom("an empty range event (expected one of introduced, fixed, last_affected, limit)")
        })
    }
}

/// A severity score (`CVSS_V3` vector, `Ubuntu` priority, ...). The type is kept as a string: a
/// new scoring type must not make a whole record unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

/// A link about the advisory (`ADVISORY`, `FIX`, `WEB`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

/// Ecosystem names (the part before the first `:`) of `ecosystems.json` in `ossf/osv-schema`,
/// with the later additions osv.dev publishes (Azure Linux, BellSoft, Echo, MinimOS, openEuler...).
/// An advisory naming another ecosystem is refused: a typo (`Alma Linux`) would otherwise import
/// records that no inventory ever matches.
pub const KNOWN_ECOSYSTEMS: &[&str] = &[
    "AlmaLinux",
    "Alpaquita",
    "Alpine",
    "Android",
    "Azure Linux",
    "BellSoft Hardened Containers",
    "Bioconductor",
    "Bitnami",
    "Chainguard",
    "CleanStart",
    "ConanCenter",
    "CRAN",
    "crates.io",
    "Debian",
    "Docker Hardened Images",
    "Echo",
    "FreeBSD",
    "GHC",
    "GIT",
    "GitHub Actions",
    "Go",
    "Hackage",
    "Hex",
    "Julia",
    "Kubernetes",
    "Linux",
    "Mageia",
    "Maven",
    "MinimOS",
    "npm",
    "NuGet",
    "opam",
    "openEuler",
    "openSUSE",
    "OSS-Fuzz",
    "Packagist",
    "Photon OS",
    "Pub",
    "PyPI",
    "Red Hat",
    "Rocky Linux",
    "RubyGems",
    "SUSE",
    "SwiftURL",
    "Ubuntu",
    "VSCode",
    "Wolfi",
];

/// Longest identifier accepted (OSV ids are short: `GHSA-xxxx-xxxx-xxxx`, `ALSA-2023:0946`,
/// `UBUNTU-CVE-2024-12345`; 256 leaves room while keeping file names and log lines sane).
pub const MAX_ID_LEN: usize = 256;

/// A record that parses but breaks a rule of the schema matching depends on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the record has an empty or over-long id (at most {MAX_ID_LEN} bytes, no control characters)")]
    BadId,
    #[error("{id}: `modified` {value:?} is not an RFC 3339 time")]
    BadModified { id: String, value: String },
    #[error("{id}: unknown ecosystem {ecosystem:?} (not in the OSV schema's list)")]
    UnknownEcosystem { id: String, ecosystem: String },
    #[error("{id}: an affected package has an empty name (ecosystem {ecosystem:?})")]
    EmptyPackageName { id: String, ecosystem: String },
    #[error("{id}: a {kind:?} range of {package:?} has no `introduced` event")]
    NoIntroduced { id: String, package: String, kind: RangeKind },
    #[error("{id}: a range of {package:?} has both `fixed` and `last_affected` events")]
    FixedAndLastAffected { id: String, package: String },
    #[error("{id}: a GIT range of {package:?} has no `repo`")]
    GitWithoutRepo { id: String, package: String },
}

/// The ecosystem's name without its release (`Debian:12` → `Debian`, `Ubuntu:Pro:18.04:LTS` →
/// `Ubuntu`), when it is one OSV knows.
#[must_use]
pub fn known_ecosystem(ecosystem: &str) -> Option<&'static str> {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    KNOWN_ECOSYSTEMS.iter().copied().find(|known| *known == base)
}

impl Record {
    /// `modified` as a time, when it is RFC 3339 (the schema's `date-time` format).
    #[must_use]
    pub fn modified_time(&self) -> Option<jiff::Timestamp> {
        self.modified.parse().ok()
    }

    /// Check the schema rules the parser alone does not enforce: a usable id, known
    /// ecosystems, named packages, an RFC 3339 `modified`, and for each range an `introduced` event, never both `fixed`
    /// and `last_affected`, and a `repo` for `GIT` ranges (schema 1.6 `allOf` rules).
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.id.is_empty() || self.id.len() > MAX_ID_LEN || self.id.chars().any(char::is_control) {
            return Err(RecordError::BadId);
        }
        let id = || self.id.clone();
        if self.modified_time().is_none() {
            return Err(RecordError::BadModified { id: id(), value: self.modified.chars().take(64).collect() });
        }
        for affected in &self.affected {
            let package_name = match &affected.package {
                Some(package) => {
                    if known_ecosystem(&package.ecosystem).is_none() {
                        return Err(RecordError::UnknownEcosystem { id: id(), ecosystem: package.ecosystem.clone() });
                    }
                    if package.name.is_empty() {
                        return Err(RecordError::EmptyPackageName { id: id(), ecosystem: package.ecosystem.clone() });
                    }
                    package.name.clone()
                }
                None => String::new(),
            };
            for range in &affected.ranges {
                let package = || package_name.clone();
                if !range.events.iter().any(|e| matches!(e, Event::Introduced(_))) {
                    return Err(RecordError::NoIntroduced { id: id(), package: package(), kind: range.kind });
                }
                let fixed = range.events.iter().any(|e| matches!(e, Event::Fixed(_)));
                let last = range.events.iter().any(|e| matches!(e, Event::LastAffected(_)));
                if fixed && last {
                    return Err(RecordError::FixedAndLastAffected { id: id(), package: package() });
                }
                if range.kind == RangeKind::Git && range.repo.as_deref().is_none_or(str::is_empty) {
                    return Err(RecordError::GitWithoutRepo { id: id(), package: package() });
                }
            }
        }
        Ok(())
    }
}

/// `null` reads as the type's default (publishers write `"aliases": null`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn almalinux_record_round_trips() {
        let json = r#"{
          "id": "ALSA-2023:0946",
          "summary": "Important: openssl security and bug fix update",
          "affected": [{
            "package": {"ecosystem": "AlmaLinux:9", "name": "openssl-libs"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.1-47.el9_1"}]}]
          }],
          "related": ["CVE-2022-4203", "CVE-2022-4304"],
          "aliases": null,
          "published": "2023-02-28T00:00:00Z",
          "modified": "2023-03-01T00:00:00Z",
          "references": [{"type": "ADVISORY", "url": "https://errata.almalinux.org/9/ALSA-2023-0946.html"}],
          "credits": [{"name": "someone"}]
        }"#;
        let record: Record = serde_json::from_str(json).expect("valid record");
        assert_eq!(record.id, "ALSA-2023:0946");
        assert!(record.aliases.is_empty());
        assert_eq!(record.related, ["CVE-2022-4203", "CVE-2022-4304"]);
        let affected = record.affected.first().expect("one affected");
        let package = affected.package.as_ref().expect("package");
        assert_eq!((package.ecosystem.as_str(), package.name.as_str()), ("AlmaLinux:9", "openssl-libs"));
        let range = affected.ranges.first().expect("range");
        assert_eq!(range.kind, RangeKind::Ecosystem);
        assert_eq!(range.events, [Event::Introduced("0".into()), Event::Fixed("1:3.0.1-47.el9_1".into())]);
        let again: Record = serde_json::from_str(&serde_json::to_string(&record).expect("serialise")).expect("reparse");
        assert_eq!(again, record);
    }

    #[test]
    fn event_with_two_keys_is_refused() {
        let err = serde_json::from_str::<Event>(r#"{"introduced": "0", "fixed": "1.2"}"#).expect_err("two keys");
        assert!(err.to_string().contains(r#"both "introduced" and "fixed""#), "{err}");
        let err = serde_json::from_value::<Event>(serde_json::json!({"fixed": "1", "limit": "2"})).expect_err("two");
        assert!(err.to_string().contains("exactly one"), "{err}");
    }

    #[test]
    fn empty_or_unknown_events_and_range_types_are_refused() {
        assert!(serde_json::from_str::<Event>("{}").is_err());
        let err = serde_json::from_str::<Event>(r#"{"patched": "1"}"#).expect_err("unknown key");
        assert!(err.to_string().contains("patched"), "{err}");
        assert!(serde_json::from_str::<Event>(r#"{"fixed": 3}"#).is_err());
        assert!(serde_json::from_str::<Range>(r#"{"type": "RPM", "events": []}"#).is_err());
    }

    #[test]
    fn validation_checks_ecosystems_and_ranges() {
        let record = |ecosystem: &str, events: serde_json::Value| -> Record {
            serde_json::from_value(serde_json::json!({
                "id": "X-1", "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": ecosystem, "name": "p"},
                              "ranges": [{"type": "ECOSYSTEM", "events": events}]}]
            }))
            .expect("parses")
        };
        let ok = serde_json::json!([{"introduced": "0"}, {"fixed": "1"}]);
        for eco in ["AlmaLinux:9", "Alpine:v3.4", "Ubuntu:Pro:18.04:LTS", "Debian", "crates.io", "Red Hat:rhel:9"] {
            assert_eq!(record(eco, ok.clone()).validate(), Ok(()), "{eco}");
        }
        for eco in ["Alma Linux:9", "almalinux:9", "", "Fedora:40"] {
            assert!(matches!(record(eco, ok.clone()).validate(), Err(RecordError::UnknownEcosystem { .. })), "{eco}");
        }
        let no_intro = record("Debian:12", serde_json::json!([{"fixed": "1"}]));
        assert!(matches!(no_intro.validate(), Err(RecordError::NoIntroduced { .. })));
        let both =
            record("Debian:12", serde_json::json!([{"introduced": "0"}, {"fixed": "1"}, {"last_affected": "2"}]));
        assert!(matches!(both.validate(), Err(RecordError::FixedAndLastAffected { .. })));
    }

    #[test]
    fn events_serialise_as_one_key_objects() {
        let json = serde_json::to_string(&Event::LastAffected("2.0".into())).expect("serialise");
        assert_eq!(json, r#"{"last_affected":"2.0"}"#);
    }
}
