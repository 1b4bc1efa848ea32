//! Java archives (`.jar`, `.war`, `.ear`, `.par`) and the archives nested in them: which Maven
//! artifacts (`groupId:artifactId` and version) an archive holds, by Trivy's rules.
//!
//! This module owns the identification rules; the zip format is [`super::zip`]'s. For one archive:
//!
//! 1. every valid `META-INF/maven/**/pom.properties` (non-empty `groupId`, `artifactId`,
//!    `version`) is a package: a shaded jar gives several;
//! 2. the archive's own identity is the `pom.properties` whose artifactId and version equal those of
//!    the file name (`name-1.2.3.jar`, split at the last `-` followed by a digit, as Trivy's regex
//!    does); for a `.war`/`.ear` with no such match, a single `pom.properties` is its identity;
//! 3. with no identity yet, the MANIFEST main section gives one if it yields all three parts, with
//!    Trivy's precedence:
//!    - group: `Implementation-Vendor-Id`, else `Bundle-SymbolicName` up to its last `.` (OSGi
//!      directives after `;` removed first), else `Implementation-Vendor`, else
//!      `Specification-Vendor`;
//!    - artifact: `Implementation-Title`, else `Specification-Title`, else `Bundle-Name`;
//!    - version: `Implementation-Version`, else `Specification-Version`, else `Bundle-Version`;
//! 4. else the file name gives artifact and version, with no group (Trivy would ask Maven Central
//!    for the group, which an offline agent cannot; the package is kept with an unqualified purl).
//!
//! The identity carries the manifest's `Bundle-License` (parameters after `;` removed) and, for a
//! `.war`/`.ear`, the role [`AppRole::Application`]; everything else is a [`AppRole::Library`].
//! Nested archives (`WEB-INF/lib/*.jar`, `lib/*.jar`, a `.war` in an `.ear`: any member with an
//! archive name) are read into memory within caps and read the same way, to [`MAX_DEPTH`] levels,
//! located as `outer.war!/WEB-INF/lib/inner.jar`. Identical (name, version, location) are kept once.
//!
//! Deliberate differences from Trivy: only `pom.properties` under `META-INF/maven/` count (Trivy
//! takes that base name anywhere, including test resources); the manifest is read as the JAR
//! specification says (main section only, continuation lines joined, names case-insensitive) where
//! Trivy matches line prefixes over the whole file.

use std::collections::HashSet;

use super::zip::{InflateBudget, ZipArchive, ZipEntry, ZipError};
use super::{AppEcosystem, AppError, AppPackage, AppRole, clean};
use crate::fs::{FileRead, MemFile};

/// Nesting levels read below the archive on disk: an `.ear` holding a `.war` holding
/// `WEB-INF/lib/*.jar` is 2; 4 leaves room for a jar in such a jar (Spring Boot `BOOT-INF/lib`)
/// and stops `nested_at_100.jar`-style chains early (the reference notes suggest about 3).
pub const MAX_DEPTH: usize = 4;
/// Largest nested archive read into memory (docs/references.md, "Application inventory bounds":
/// 64 MiB per nested jar).
pub const MAX_NESTED: u64 = 64 * 1024 * 1024;
/// Most memory held at once by the nested archives being read (a chain of ancestors each holds its
/// buffer while its child is read): two full-size nested archives.
pub const MAX_RESIDENT: u64 = 2 * MAX_NESTED;
/// Inflated bytes allowed for one archive on disk and everything nested in it (reference: 512 MiB
/// per archive); a 42.zip-style recursive bomb spends this and stops.
pub const MAX_INFLATED: u64 = 512 * 1024 * 1024;
/// Largest `pom.properties` read (reference: 1 MiB per metadata entry; real ones are ~150 bytes).
pub const MAX_POM_PROPERTIES: u64 = 1024 * 1024;
/// Bytes of `META-INF/MANIFEST.MF` read: its main section comes first and is a few KiB; the rest
/// (per-entry sections, digests of signed jars) can be many MiB and is not needed.
pub const MAX_MANIFEST_PREFIX: u64 = 1024 * 1024;
/// Most `pom.properties` read from one archive (a shaded jar has some tens to hundreds).
pub const MAX_POMS: usize = 2_000;
/// Most per-member errors reported for one archive on disk (nested ones included); the rest are
/// counted in one final error.
pub const MAX_ERRORS_PER_ARCHIVE: usize = 50;

const ARCHIVE_EXTENSIONS: [&str; 4] = [".jar", ".war", ".ear", ".par"];

/// Whether a file name is a Java archive this reader opens.
#[must_use]
pub fn is_archive_name(name: &str) -> bool {
    ARCHIVE_EXTENSIONS.iter().any(|ext| ends_with_ignore_case(name, ext) && name.len() > ext.len())
}

fn ends_with_ignore_case(name: &str, suffix: &str) -> bool {
    name.len() >= suffix.len()
        && name.get(name.len() - suffix.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
}

/// The Maven packages of the archive `file` at `path` and of the archives nested in it. Damaged
/// members or nested archives are pushed to `errors` (as `outer!/member`) and the rest is read.
///
/// # Errors
///
/// The archive itself cannot be read at all (not a zip, a bound exceeded before anything was read).
pub fn read(file: &mut dyn FileRead, path: &str, errors: &mut Vec<AppError>) -> Result<Vec<AppPackage>, AppError> {
    let mut walk =
        Walk { budget: InflateBudget::new(MAX_INFLATED), packages: Vec::new(), errors: Vec::new(), dropped: 0 };
    walk.archive(file, path, 0, 0).map_err(|e| AppError::new(path, e.to_string()))?;
    let Walk { packages, errors: mine, dropped, .. } = walk;
    errors.extend(mine);
    if dropped > 0 {
        errors.push(AppError::new(path, format!("{dropped} more errors in this archive not listed")));
    }
    let mut seen = HashSet::new();
    Ok(packages.into_iter().filter(|p| seen.insert((p.name.clone(), p.version.clone(), p.location.clone()))).collect())
}

/// One Maven coordinate as read from metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Gav {
    group: String,
    artifact: String,
    version: String,
}

impl Gav {
    fn valid(&self) -> bool {
        !self.group.is_empty() && !self.artifact.is_empty() && !self.version.is_empty()
    }
}

/// State of one archive tree read.
struct Walk {
    budget: InflateBudget,
    packages: Vec<AppPackage>,
    errors: Vec<AppError>,
    dropped: u64,
}

impl Walk {
    fn error(&mut self, path: &str, reason: String) {
        if self.errors.len() < MAX_ERRORS_PER_ARCHIVE {
            self.errors.push(AppError::new(path, reason));
        } else {
            self.dropped += 1;
        }
    }

    /// Read the archive `file` at `location`, `depth` levels below the archive on disk, while its
    /// ancestors hold `resident` bytes in memory.
    fn archive(
        &mut self,
        file: &mut dyn FileRead,
        location: &str,
        depth: usize,
        resident: u64,
    ) -> Result<(), ZipError> {
        let zip = ZipArchive::open(file)?;
        let base = location.rsplit(['/', '!']).next().unwrap_or(location);
        let from_name = gav_from_file_name(base);
        let is_app = [".war", ".ear"].iter().any(|ext| ends_with_ignore_case(base, ext));
        let member = |e: &ZipEntry| format!("{location}!/{}", e.name);

        let mut poms: Vec<Gav> = Vec::new();
        let mut manifest: Option<Vec<(String, String)>> = None;
        let mut nested: Vec<&ZipEntry> = Vec::new();
        for entry in zip.entries() {
            if entry.is_dir() {
                continue;
            }
            if entry.name.starts_with("META-INF/maven/") && entry.name.ends_with("/pom.properties") {
                if poms.len() >= MAX_POMS {
                    self.error(&member(entry), format!("more than {MAX_POMS} pom.properties; rest skipped"));
                    continue;
                }
                match zip.read_member(file, entry, MAX_POM_PROPERTIES, &mut self.budget) {
                    Ok(bytes) => {
                        let gav = parse_pom_properties(&String::from_utf8_lossy(&bytes));
                        if gav.valid() {
                            poms.push(gav);
                        }
                    }
                    Err(e) => self.error(&member(entry), e.to_string()),
                }
            } else if entry.name.eq_ignore_ascii_case("META-INF/MANIFEST.MF") {
                match zip.read_member_prefix(file, entry, MAX_MANIFEST_PREFIX, &mut self.budget) {
                    Ok((bytes, complete)) => {
                        let text = String::from_utf8_lossy(&bytes);
                        match main_section(&text, complete) {
                            Some(attrs) => manifest = Some(attrs),
                            None => self.error(
                                &member(entry),
                                format!("main section longer than the {MAX_MANIFEST_PREFIX} bytes read"),
                            ),
                        }
                    }
                    Err(e) => self.error(&member(entry), e.to_string()),
                }
            } else if is_archive_name(&entry.name) {
                nested.push(entry);
            }
        }

        let manifest = manifest.unwrap_or_default();
        let license = attr(&manifest, "Bundle-License")
            .map(|l| l.split(';').next().unwrap_or(l).trim().to_owned())
            .filter(|l| !l.is_empty());
        let matched = from_name
            .as_ref()
            .and_then(|f| poms.iter().position(|p| p.artifact == f.artifact && p.version == f.version));
        let identity_pom = matched.or(if is_app && poms.len() == 1 { Some(0) } else { None });
        let role = if is_app { AppRole::Application } else { AppRole::Library };
        for (i, gav) in poms.iter().enumerate() {
            if identity_pom == Some(i) {
                self.push(gav, role, license.clone(), location);
            } else {
                self.push(gav, AppRole::Library, None, location);
            }
        }
        if identity_pom.is_none() {
            let from_manifest = gav_from_manifest(&manifest);
            if from_manifest.valid() {
                self.push(&from_manifest, role, license, location);
            } else if let Some(f) = from_name {
                self.push(&f, role, license, location);
            }
        }

        for entry in nested {
            let path = member(entry);
            if self.budget.left() == 0 {
                self.error(location, "inflate budget spent; remaining nested archives skipped".to_owned());
                break;
            }
            if depth + 1 > MAX_DEPTH {
                self.error(&path, format!("nested deeper than {MAX_DEPTH} archives; not read"));
                continue;
            }
            let room = MAX_RESIDENT.saturating_sub(resident).min(MAX_NESTED);
            let bytes = match zip.read_member(file, entry, room, &mut self.budget) {
                Ok(b) => b,
                Err(e) => {
                    self.error(&path, e.to_string());
                    continue;
                }
            };
            let held = bytes.len() as u64;
            let mut inner = MemFile(bytes);
            if let Err(e) = self.archive(&mut inner, &path, depth + 1, resident + held) {
                self.error(&path, e.to_string());
            }
        }
        Ok(())
    }

    fn push(&mut self, gav: &Gav, role: AppRole, license: Option<String>, location: &str) {
        let (group, artifact, version) = (clean(&gav.group), clean(&gav.artifact), clean(&gav.version));
        let name = if group.is_empty() { artifact } else { format!("{group}:{artifact}") };
        let purl = crate::purl::for_app(AppEcosystem::Maven, &name, &version);
        let mut p = AppPackage::new(AppEcosystem::Maven, &name, &version, purl, role, location);
        p.license = license.map(|l| clean(&l));
        self.packages.push(p);
    }
}

/// `groupId`, `artifactId`, `version` of a `pom.properties` (Java properties: `key=value` or
/// `key: value`, `#`/`!` comments, surrounding blanks trimmed).
fn parse_pom_properties(text: &str) -> Gav {
    let mut gav = Gav::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once(['=', ':']) else { continue };
        let v = v.trim().to_owned();
        match k.trim() {
            "groupId" => gav.group = v,
            "artifactId" => gav.artifact = v,
            "version" => gav.version = v,
            _ => {}
        }
    }
    gav
}

/// The attributes of a manifest's main section (up to the first blank line), continuation lines
/// (starting with one space) joined. `None` when the text read is not the whole member and holds
/// no blank line: the main section was cut.
fn main_section(text: &str, complete: bool) -> Option<Vec<(String, String)>> {
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut ended = false;
    for line in text.split("\r\n").flat_map(|l| l.split(['\n', '\r'])) {
        if line.is_empty() {
            ended = true;
            break;
        }
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some((_, v)) = attrs.last_mut() {
                v.push_str(rest);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            attrs.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if !complete && !ended {
        return None;
    }
    Some(attrs)
}

/// The last value of attribute `name` (case-insensitive), if non-empty.
fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// The identity a manifest main section gives (see the module documentation for the precedence).
fn gav_from_manifest(attrs: &[(String, String)]) -> Gav {
    let group = attr(attrs, "Implementation-Vendor-Id")
        .map(str::to_owned)
        .or_else(|| {
            attr(attrs, "Bundle-SymbolicName").map(|s| {
                let s = s.split(';').next().unwrap_or(s).trim();
                match s.rfind('.') {
                    Some(i) if i > 0 => s.get(..i).unwrap_or(s).to_owned(),
                    _ => s.to_owned(),
                }
            })
        })
        .or_else(|| attr(attrs, "Implementation-Vendor").map(str::to_owned))
        .or_else(|| attr(attrs, "Specification-Vendor").map(str::to_owned))
        .unwrap_or_default();
    let artifact = attr(attrs, "Implementation-Title")
        .or_else(|| attr(attrs, "Specification-Title"))
        .or_else(|| attr(attrs, "Bundle-Name"))
        .unwrap_or_default()
        .to_owned();
    let version = attr(attrs, "Implementation-Version")
        .or_else(|| attr(attrs, "Specification-Version"))
        .or_else(|| attr(attrs, "Bundle-Version"))
        .unwrap_or_default()
        .to_owned();
    Gav { group, artifact, version }
}

/// Artifact and version from an archive's file name `artifact-1.2.3.jar`: split at the last `-`
/// followed by a digit, the artifact made of `[A-Za-z0-9._-]` not ending in `-`, the version
/// without blanks (Trivy's file-name pattern, applied to all four extensions).
fn gav_from_file_name(name: &str) -> Option<Gav> {
    let ext = ARCHIVE_EXTENSIONS.iter().find(|ext| ends_with_ignore_case(name, ext))?;
    let stem = name.get(..name.len() - ext.len())?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    for (i, _) in stem.match_indices('-').collect::<Vec<_>>().into_iter().rev() {
        let (artifact, version) = (stem.get(..i)?, stem.get(i + 1..)?);
        if artifact.is_empty() || artifact.ends_with('-') || !artifact.chars().all(allowed) {
            continue;
        }
        if version.starts_with(|c: char| c.is_ascii_digit()) && !version.chars().any(char::is_whitespace) {
            return Some(Gav { group: String::new(), artifact: artifact.to_owned(), version: version.to_owned() });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_are_case_insensitive() {
        assert!(
            is_archive_name("a.jar")
                && is_archive_name("A.WAR")
                && is_archive_name("x.Ear")
                && is_archive_name("p.par")
        );
        assert!(
            !is_archive_name("a.zip")
                && !is_archive_name("jar")
                && !is_archive_name(".jar")
                && !is_archive_name("a.jar.sha1")
        );
    }

    #[test]
    fn file_name_split_at_last_dash_digit() {
        let g = |n| gav_from_file_name(n).map(|g| (g.artifact, g.version));
        assert_eq!(g("jackson-databind-2.9.10.6.jar"), Some(("jackson-databind".into(), "2.9.10.6".into())));
        assert_eq!(g("spring-core-5.3.4-SNAPSHOT.jar"), Some(("spring-core".into(), "5.3.4-SNAPSHOT".into())));
        assert_eq!(g("foo-1.0-2.0.JAR"), Some(("foo-1.0".into(), "2.0".into())));
        assert_eq!(g("maven.war"), None);
        assert_eq!(g("-1.0.jar"), None);
        assert_eq!(g("lib-x.jar"), None);
    }

    #[test]
    fn pom_properties_parsed_and_validated() {
        let g = parse_pom_properties("#c\ngroupId = org.x\r\nartifactId:a\nversion=1.0\n");
        assert_eq!(g, Gav { group: "org.x".into(), artifact: "a".into(), version: "1.0".into() });
        assert!(g.valid());
        assert!(!parse_pom_properties("groupId=x\nartifactId=a\n").valid());
    }

    #[test]
    fn manifest_precedence_and_continuations() {
        let text = "Manifest-Version: 1.0\r\nBundle-SymbolicName: org.acme.widget;singleton:=true\r\nSpecification-Title: Wid\r\n get\r\nBundle-Version: 2.0.0\r\nSpecification-Version: 2.0\r\n\r\nName: x\r\nImplementation-Version: 9\r\n";
        let attrs = main_section(text, true).unwrap_or_default();
        let g = gav_from_manifest(&attrs);
        assert_eq!(g, Gav { group: "org.acme".into(), artifact: "Widget".into(), version: "2.0".into() });
        let attrs = vec![
            ("Implementation-Vendor-Id".to_owned(), "com.v".to_owned()),
            ("Bundle-SymbolicName".to_owned(), "org.b.c".to_owned()),
            ("Implementation-Title".to_owned(), "t".to_owned()),
            ("Implementation-Version".to_owned(), "1".to_owned()),
        ];
        assert_eq!(gav_from_manifest(&attrs).group, "com.v");
        // A cut main section is reported, not half-parsed.
        assert_eq!(main_section("A: b\nC: d", false), None);
        assert!(main_section("A: b\n\nrest", false).is_some());
    }
}
