//! Alpine secdb YAML (`v3.4/main.yaml`, ...) converted to OSV records.
//!
//! A secdb file is one release's repository (`distroversion: v3.4`, `reponame: main`) and lists,
//! per package, `secfixes`: each fixed version `V` with the identifiers it fixes. The package
//! is the origin (source) package of the APKBUILD the list comes from (alpine-secdb `Makefile`
//! and `secfixes.lua`: the `# secfixes:` comment block of each `aports/<repo>/<pkg>/APKBUILD`).
//!
//! Conversion, per source: one record per identifier, id `ALPINE-<identifier>` (osv.dev's form
//! for its own Alpine records) with the identifier as alias; for each (release, package) that
//! lists it an `affected` entry of ecosystem `Alpine:<distroversion>` with the range
//! `introduced: "0"`, `fixed: V`. Facts of the data:
//! - a fix version `0` means the package was never affected (the APKBUILD reference's convention
//!   for CVEs that do not apply to Alpine's build; the archived `v3.8/main.yaml` marks Berkeley
//!   DB's Oracle-only CVEs this way under the comment "whitelist issues"): no range is made, the
//!   entry is counted as not affected;
//! - entries are not always one clean identifier: `CVE-2019-5060 TALOS-2019-0844` (two ids),
//!   `CVE-2017-16808 (AoE)` (a remark), `CVE-????-?????  XSA-295` (a placeholder), `CVE_2019-2426`
//!   and `CVE 2018-16859` (typos). The first identifier is the record's, the others aliases;
//!   placeholders and remarks are dropped; an entry with no identifier at all is reported, not
//!   imported;
//! - secdb has no dates: a record's `modified` is the newest modification time of the files
//!   that list it (when the file was written, i.e. fetched, stands for the snapshot's age);
//! - a package may have `secfixes` without entries (`heimdal 7.4.0-r0:` in v3.6) and a file may
//!   have no packages (`v3.3/community.yaml`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::limits::MAX_SECDB_BYTES;
use crate::vuln::osv;

/// Longest identifier token kept (real ones are under 30 characters).
const MAX_IDENTIFIER_LEN: usize = 128;

/// Why a secdb file is refused.
#[derive(Debug, thiserror::Error)]
pub enum SecDbError {
    #[error("{label}: {size} bytes, over the {MAX_SECDB_BYTES}-byte limit of a secdb file")]
    TooLarge { label: String, size: u64 },
    #[error("{label}: not Alpine secdb YAML: {source}")]
    Yaml { label: String, source: serde_norway::Error },
    #[error("{label}: distroversion {value:?} is not an Alpine release branch like \"v3.19\"")]
    Release { label: String, value: String },
    #[error("{label}: a package has an unusable name {name:?}")]
    PackageName { label: String, name: String },
    #[error("{label}: package {package}: fix version {version:?} does not start with a digit")]
    Version { label: String, package: String, version: String },
}

#[derive(Debug, Deserialize)]
struct File {
    distroversion: String,
    #[serde(default)]
    reponame: Option<String>,
    #[serde(default)]
    packages: Option<Vec<PackageEntry>>,
}

#[derive(Debug, Deserialize)]
struct PackageEntry {
    pkg: Pkg,
}

#[derive(Debug, Deserialize)]
struct Pkg {
    name: String,
    #[serde(default)]
    secfixes: Option<BTreeMap<String, Option<Vec<String>>>>,
}

/// The records of the secdb files of one source, merged by identifier.
#[derive(Debug, Default)]
pub struct SecDbRecords {
    records: BTreeMap<String, osv::Record>,
    /// Identifiers listed under the fix version `0` (never affected).
    pub not_affected: u64,
    /// Entries without any identifier, as `file: package version: entry`.
    pub unrecognised: Vec<String>,
}

impl SecDbRecords {
    /// Convert one secdb file. `modified` (RFC 3339) stamps its records: secdb has no dates, so
    /// the caller gives the file's modification time.
    ///
    /// # Errors
    ///
    /// The file is too large, not secdb YAML, or names an invalid release, package or version.
    pub fn add_file(&mut self, label: &str, bytes: &[u8], modified: &str) -> Result<(), SecDbError> {
        if bytes.len() as u64 > MAX_SECDB_BYTES {
            return Err(SecDbError::TooLarge { label: label.into(), size: bytes.len() as u64 });
        }
        let file: File =
            serde_norway::from_slice(bytes).map_err(|source| SecDbError::Yaml { label: label.into(), source })?;
        if !is_release(&file.distroversion) {
            return Err(SecDbError::Release { label: label.into(), value: file.distroversion });
        }
        let ecosystem = format!("Alpine:{}", file.distroversion);
        let repo = file.reponame.unwrap_or_default();
        for entry in file.packages.unwrap_or_default() {
            let package = entry.pkg.name;
            if package.is_empty()
                || package.len() > MAX_IDENTIFIER_LEN
                || package.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(SecDbError::PackageName { label: label.into(), name: package });
            }
            for (version, ids) in entry.pkg.secfixes.unwrap_or_default() {
                if !version.starts_with(|c: char| c.is_ascii_digit()) || version.len() > MAX_IDENTIFIER_LEN {
                    return Err(SecDbError::Version { label: label.into(), package, version });
                }
                for raw in ids.unwrap_or_default() {
                    let mut found = identifiers(&raw);
                    if found.is_empty() {
                        self.unrecognised.push(format!("{label}: {package} {version}: {raw:?}"));
                        continue;
                    }
                    if version == "0" {
                        self.not_affected += 1;
                        continue;
                    }
                    let primary = found.remove(0);
                    self.add_fix(&primary, &found, &ecosystem, &package, &version, &repo, modified);
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn add_fix(
        &mut self,
        primary: &str,
        others: &[String],
        ecosystem: &str,
        package: &str,
        fixed: &str,
        repo: &str,
        modified: &str,
    ) {
        let record = self.records.entry(primary.to_string()).or_insert_with(|| osv::Record {
            id: format!("ALPINE-{primary}"),
            modified: modified.to_string(),
            published: None,
            withdrawn: None,
            aliases: vec![primary.to_string()],
            related: Vec::new(),
            upstream: Vec::new(),
            summary: None,
            details: None,
            severity: Vec::new(),
            affected: Vec::new(),
            references: Vec::new(),
            database_specific: None,
        });
        for other in others {
            if !record.aliases.contains(other) {
                record.aliases.push(other.clone());
            }
        }
        // RFC 3339 strings of one writer (ours, in UTC) order as text.
        if modified > record.modified.as_str() {
            record.modified = modified.to_string();
        }
        let range = osv::Range {
            kind: osv::RangeKind::Ecosystem,
            events: vec![osv::Event::Introduced("0".into()), osv::Event::Fixed(fixed.into())],
            repo: None,
            database_specific: None,
        };
        let existing = record
            .affected
            .iter_mut()
            .find(|a| a.package.as_ref().is_some_and(|p| p.ecosystem == ecosystem && p.name == package));
        match existing {
            Some(affected) => {
                if !affected.ranges.contains(&range) {
                    affected.ranges.push(range);
                }
            }
            None => record.affected.push(osv::Affected {
                package: Some(osv::Package { ecosystem: ecosystem.to_string(), name: package.to_string(), purl: None }),
                ranges: vec![range],
                versions: Vec::new(),
                ecosystem_specific: None,
                database_specific: Some(serde_json::json!({ "secdb_repo": repo })),
                severity: Vec::new(),
            }),
        }
    }

    /// The records, by identifier.
    pub fn into_records(self) -> impl Iterator<Item = osv::Record> {
        self.records.into_values()
    }

    /// How many records so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True before any record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// `v<major>.<minor>`, the form OSV's Alpine ecosystem requires.
fn is_release(value: &str) -> bool {
    let Some(rest) = value.strip_prefix('v') else { return false };
    let mut parts = rest.split('.');
    let number =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()));
    number(parts.next()) && number(parts.next()) && parts.next().is_none()
}

/// The identifiers of a secdb entry, in order (see the module documentation).
#[must_use]
pub fn identifiers(entry: &str) -> Vec<String> {
    let tokens: Vec<&str> = entry.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&token) = tokens.get(i) {
        i += 1;
        if token.starts_with('(') {
            break;
        }
        let candidate = if token.eq_ignore_ascii_case("CVE")
            && let Some(next) = tokens.get(i).filter(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        {
            i += 1;
            format!("CVE-{next}")
        } else if let Some(rest) = token.strip_prefix("CVE_") {
            format!("CVE-{rest}")
        } else {
            token.trim_end_matches([',', ';']).to_string()
        };
        if is_identifier(&candidate) && !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// A letter-led prefix, a dash, then letters, digits and `._:-` (`CVE-2016-9587`, `XSA-207`,
/// `wnpa-sec-2017-21`, `ZBX-11023`, `GHSA-xxxx-xxxx-xxxx`).
fn is_identifier(token: &str) -> bool {
    let Some((prefix, rest)) = token.split_once('-') else { return false };
    token.len() <= MAX_IDENTIFIER_LEN
        && prefix.starts_with(|c: char| c.is_ascii_alphabetic())
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        && rest.bytes().any(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_give_their_identifiers() {
        let cases: [(&str, &[&str]); 9] = [
            ("CVE-2016-9587", &["CVE-2016-9587"]),
            ("  CVE-2016-6263", &["CVE-2016-6263"]),
            ("CVE-2019-5060 TALOS-2019-0844", &["CVE-2019-5060", "TALOS-2019-0844"]),
            ("CVE-2017-16808 (AoE)", &["CVE-2017-16808"]),
            ("CVE-????-?????  XSA-295", &["XSA-295"]),
            ("CVE_2019-2426", &["CVE-2019-2426"]),
            ("CVE 2018-16859", &["CVE-2018-16859"]),
            ("wnpa-sec-2017-21", &["wnpa-sec-2017-21"]),
            ("see the upstream announcement", &[]),
        ];
        for (entry, want) in cases {
            assert_eq!(identifiers(entry), want, "{entry:?}");
        }
    }

    #[test]
    fn releases_need_the_v_form() {
        assert!(is_release("v3.4") && is_release("v3.19"));
        assert!(!is_release("3.4") && !is_release("edge") && !is_release("v3") && !is_release("v3.4.1"));
    }

    #[test]
    fn a_small_file_converts() {
        let yaml = br#"---
distroversion: v3.8
reponame: main
packages:
  - pkg:
      name: db
      secfixes:
        "0":
        - CVE-2016-0682
  - pkg:
      name: bind
      secfixes:
        9.10.6_p1-r0:
          - CVE-2017-3145
        1.10:
          - CVE-2017-3142 TALOS-1
  - pkg:
      name: heimdal
      secfixes:
        7.4.0-r0:
"#;
        let mut records = SecDbRecords::default();
        records.add_file("t.yaml", yaml, "2020-01-01T00:00:00Z").expect("converts");
        assert_eq!(records.not_affected, 1);
        let all: Vec<osv::Record> = records.into_records().collect();
        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["ALPINE-CVE-2017-3142", "ALPINE-CVE-2017-3145"]);
        let first = all.first().expect("one");
        assert_eq!(first.aliases, ["CVE-2017-3142", "TALOS-1"]);
        let affected = first.affected.first().expect("affected");
        let package = affected.package.as_ref().expect("package");
        assert_eq!((package.ecosystem.as_str(), package.name.as_str()), ("Alpine:v3.8", "bind"));
        // `1.10` stays the string it is in the file (not the float 1.1).
        let range = affected.ranges.first().expect("range");
        assert_eq!(range.events, [osv::Event::Introduced("0".into()), osv::Event::Fixed("1.10".into())]);
        for record in &all {
            assert_eq!(record.validate(), Ok(()));
        }
    }

    #[test]
    fn bad_files_are_refused() {
        let mut records = SecDbRecords::default();
        assert!(matches!(records.add_file("a", b"{not yaml", "2020-01-01T00:00:00Z"), Err(SecDbError::Yaml { .. })));
        let wrong = b"distroversion: edge\npackages:\n";
        assert!(matches!(records.add_file("b", wrong, "2020-01-01T00:00:00Z"), Err(SecDbError::Release { .. })));
    }
}
