//! Which OSV ecosystem a package set is matched against, and with which version ordering.
//!
//! Operating-system packages: the scanned root's os-release `ID` and `VERSION_ID` select the
//! ecosystem, using OSV's spellings (`ossf/osv-schema` `ecosystems.json`, docs/references.md,
//! "OSV advisory data"): `debian` 12 → `Debian:12`, `ubuntu` 22.04 → `Ubuntu:22.04:LTS` (its Ubuntu Pro / ESM stream
//! `Ubuntu:Pro:22.04:LTS` beside it), `alpine` 3.4.6 → `Alpine:v3.4`, `almalinux` 9.3 →
//! `AlmaLinux:9`, `rocky` 9.3 → `Rocky Linux:9`, `rhel` 9.3 → the `Red Hat:enterprise_linux:9::baseos`
//! and `::appstream` streams. Distributions without advisories in OSV (Amazon Linux, Oracle Linux,
//! CBL-Mariner, CentOS, Fedora...) are "not assessed", with the reason.
//!
//! Application packages (Go, crates.io, PyPI, npm, Maven): one row of [`APP_ECOSYSTEMS`] each
//! (the inventory's purl type, the OSV ecosystem, the ordering, the name normalisation).

use crate::vuln::version::Scheme;

/// The distribution, for the package-identity rules that differ between them (kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distro {
    Debian,
    Ubuntu,
    Alpine,
    /// AlmaLinux, Rocky Linux, RHEL: binary package names, full epoch:version-release.
    RpmFamily,
}

/// The package format a target assesses (the inventory's `ecosystem` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageFormat {
    Deb,
    Rpm,
    Apk,
}

impl PackageFormat {
    /// The inventory's spelling (`scanner_ami::inventory::Ecosystem`, serialised lower case).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PackageFormat::Deb => "deb",
            PackageFormat::Rpm => "rpm",
            PackageFormat::Apk => "apk",
        }
    }

    /// Parse the inventory's spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<PackageFormat> {
        match s {
            "deb" => Some(PackageFormat::Deb),
            "rpm" => Some(PackageFormat::Rpm),
            "apk" => Some(PackageFormat::Apk),
            _ => None,
        }
    }
}

/// What an OS's packages are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsTarget {
    pub distro: Distro,
    pub format: PackageFormat,
    /// The free streams (one for all but RHEL, whose BaseOS and AppStream are separate).
    pub ecosystems: Vec<String>,
    /// The paid stream beside them (Ubuntu Pro for an LTS release).
    pub paid: Option<String>,
    pub scheme: Scheme,
}

/// Why an OS is not assessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAssessed(pub String);

/// The ecosystem and ordering for a scanned OS (`id` and `version_id` as in os-release).
///
/// # Errors
///
/// The OS has no advisory ecosystem in OSV, or its version cannot name a release of one.
pub fn os_target(id: &str, version_id: Option<&str>) -> Result<OsTarget, NotAssessed> {
    let version = version_id.map(str::trim).filter(|v| !v.is_empty());
    let need_version = || {
        version.ok_or_else(|| NotAssessed(format!("os-release ID {id:?} without VERSION_ID: the release is unknown")))
    };
    let target = |distro, format, ecosystem: String, paid, scheme| OsTarget {
        distro,
        format,
        ecosystems: vec![ecosystem],
        paid,
        scheme,
    };
    match id {
        "debian" => {
            let v = need_version()?;
            let major = numeric_major(v)
                .ok_or_else(|| NotAssessed(format!("Debian VERSION_ID {v:?} is not a numbered release")))?;
            Ok(target(Distro::Debian, PackageFormat::Deb, format!("Debian:{major}"), None, Scheme::Dpkg))
        }
        "ubuntu" => {
            let v = need_version()?;
            let (yy, mm) = v
                .split_once('.')
                .filter(|(a, b)| is_digits(a) && is_digits(b))
                .ok_or_else(|| NotAssessed(format!("Ubuntu VERSION_ID {v:?} is not YY.MM")))?;
            // LTS releases are the April releases of even years (wiki.ubuntu.com/Releases); only
            // they have an LTS suffix and an Ubuntu Pro (ESM) stream.
            let lts = mm == "04" && yy.parse::<u32>().is_ok_and(|y| y % 2 == 0);
            if lts {
                Ok(target(
                    Distro::Ubuntu,
                    PackageFormat::Deb,
                    format!("Ubuntu:{yy}.{mm}:LTS"),
                    Some(format!("Ubuntu:Pro:{yy}.{mm}:LTS")),
                    Scheme::Dpkg,
                ))
            } else {
                Ok(target(Distro::Ubuntu, PackageFormat::Deb, format!("Ubuntu:{yy}.{mm}"), None, Scheme::Dpkg))
            }
        }
        "alpine" => {
            let v = need_version()?;
            let mut parts = v.split('.');
            let major = parts.next().filter(|p| is_digits(p));
            // 3.19.1 → v3.19; a pre-release `3.20.0_alpha20240329` (edge) still names its branch.
            let minor = parts.next().map(|p| p.split('_').next().unwrap_or(p)).filter(|p| is_digits(p));
            match (major, minor) {
                (Some(major), Some(minor)) => Ok(target(
                    Distro::Alpine,
                    PackageFormat::Apk,
                    format!("Alpine:v{major}.{minor}"),
                    None,
                    Scheme::Apk,
                )),
                _ => Err(NotAssessed(format!("Alpine VERSION_ID {v:?} is not MAJOR.MINOR[.PATCH]"))),
            }
        }
        "almalinux" | "rocky" => {
            let v = need_version()?;
            let major =
                numeric_major(v).ok_or_else(|| NotAssessed(format!("{id} VERSION_ID {v:?} has no major release")))?;
            let base = if id == "almalinux" { "AlmaLinux" } else { "Rocky Linux" };
            Ok(target(Distro::RpmFamily, PackageFormat::Rpm, format!("{base}:{major}"), None, Scheme::Rpm))
        }
        "rhel" => {
            let v = need_version()?;
            let major =
                numeric_major(v).ok_or_else(|| NotAssessed(format!("rhel VERSION_ID {v:?} has no major release")))?;
            // Red Hat's OSV ecosystems are CPEs of product streams; a plain RHEL install takes its
            // packages from BaseOS and AppStream.
            Ok(OsTarget {
                distro: Distro::RpmFamily,
                format: PackageFormat::Rpm,
                ecosystems: vec![
                    format!("Red Hat:enterprise_linux:{major}::baseos"),
                    format!("Red Hat:enterprise_linux:{major}::appstream"),
                ],
                paid: None,
                scheme: Scheme::Rpm,
            })
        }
        "amzn" => Err(NotAssessed(
            "Amazon Linux: OSV publishes no Amazon Linux advisories (ALAS); no other source is imported".into(),
        )),
        "ol" => Err(NotAssessed(
            "Oracle Linux: OSV publishes no Oracle Linux advisories (ELSA); no other source is imported".into(),
        )),
        "mariner" | "azurelinux" => Err(NotAssessed(
            "CBL-Mariner / Azure Linux: no advisory ecosystem is mapped for it (its advisories are OVAL)".into(),
        )),
        "centos" => Err(NotAssessed("CentOS: OSV has no CentOS ecosystem".into())),
        "fedora" => Err(NotAssessed("Fedora: OSV has no Fedora ecosystem".into())),
        "sles" | "sled" | "sle-micro" | "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => Err(NotAssessed(
            "SUSE / openSUSE: their OSV ecosystems (named after PRETTY_NAME, source RPMs with binaries lists) are not mapped yet".into(),
        )),
        other => Err(NotAssessed(format!("no advisory ecosystem is known for os-release ID {other:?}"))),
    }
}

/// One application ecosystem: adding one is one row here (and its comparator in `version`).
#[derive(Debug, Clone, Copy)]
pub struct AppEcosystem {
    /// The inventory's package `ecosystem` (its purl type).
    pub purl_type: &'static str,
    /// The OSV ecosystem.
    pub ecosystem: &'static str,
    pub scheme: Scheme,
    /// The package name as OSV records spell it.
    pub normalise: fn(&str) -> String,
}

/// The application ecosystems matched (purl types: github.com/package-url/purl-spec `PURL-TYPES.rst`).
pub const APP_ECOSYSTEMS: &[AppEcosystem] = &[
    AppEcosystem { purl_type: "golang", ecosystem: "Go", scheme: Scheme::Semver, normalise: as_is },
    AppEcosystem { purl_type: "cargo", ecosystem: "crates.io", scheme: Scheme::Semver, normalise: as_is },
    AppEcosystem { purl_type: "pypi", ecosystem: "PyPI", scheme: Scheme::Pep440, normalise: pep503 },
    AppEcosystem { purl_type: "npm", ecosystem: "npm", scheme: Scheme::Semver, normalise: as_is },
    AppEcosystem { purl_type: "maven", ecosystem: "Maven", scheme: Scheme::Maven, normalise: maven },
];

/// The application ecosystem of an inventory package type.
#[must_use]
pub fn app_ecosystem(purl_type: &str) -> Option<&'static AppEcosystem> {
    APP_ECOSYSTEMS.iter().find(|row| row.purl_type == purl_type)
}

fn as_is(name: &str) -> String {
    name.to_owned()
}

/// PEP 503 normalisation, which OSV's PyPI names use (the agent's own: its purls carry the same).
fn pep503(name: &str) -> String {
    scanner_ami::apps::python::normalize_name(name)
}

/// OSV's Maven names are `groupId:artifactId`; a purl-style `group/artifact` is converted.
fn maven(name: &str) -> String {
    match name.rsplit_once('/') {
        Some((group, artifact)) if !name.contains(':') => format!("{}:{artifact}", group.replace('/', ".")),
        _ => name.to_owned(),
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `9.3` → `9`, `12` → `12`; `None` when the first component is not a number.
fn numeric_major(v: &str) -> Option<&str> {
    v.split('.').next().filter(|m| is_digits(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecosystems(id: &str, v: Option<&str>) -> (Vec<String>, Option<String>) {
        let t = os_target(id, v).expect("assessed");
        (t.ecosystems, t.paid)
    }

    #[test]
    fn os_release_to_osv_spellings() {
        assert_eq!(ecosystems("debian", Some("12")), (vec!["Debian:12".to_owned()], None));
        assert_eq!(ecosystems("debian", Some("11")), (vec!["Debian:11".to_owned()], None));
        assert_eq!(
            ecosystems("ubuntu", Some("22.04")),
            (vec!["Ubuntu:22.04:LTS".to_owned()], Some("Ubuntu:Pro:22.04:LTS".to_owned()))
        );
        assert_eq!(
            ecosystems("ubuntu", Some("18.04")),
            (vec!["Ubuntu:18.04:LTS".to_owned()], Some("Ubuntu:Pro:18.04:LTS".to_owned()))
        );
        assert_eq!(ecosystems("ubuntu", Some("23.10")), (vec!["Ubuntu:23.10".to_owned()], None));
        assert_eq!(ecosystems("ubuntu", Some("21.04")), (vec!["Ubuntu:21.04".to_owned()], None), "odd year: not LTS");
        assert_eq!(ecosystems("alpine", Some("3.4.6")), (vec!["Alpine:v3.4".to_owned()], None));
        assert_eq!(ecosystems("alpine", Some("3.19.1")), (vec!["Alpine:v3.19".to_owned()], None));
        assert_eq!(ecosystems("alpine", Some("3.20.0_alpha20240329")), (vec!["Alpine:v3.20".to_owned()], None));
        assert_eq!(ecosystems("almalinux", Some("9.3")), (vec!["AlmaLinux:9".to_owned()], None));
        assert_eq!(ecosystems("almalinux", Some("8.10")), (vec!["AlmaLinux:8".to_owned()], None));
        assert_eq!(ecosystems("rocky", Some("9.3")), (vec!["Rocky Linux:9".to_owned()], None));
        assert_eq!(
            ecosystems("rhel", Some("9.3")).0,
            ["Red Hat:enterprise_linux:9::baseos", "Red Hat:enterprise_linux:9::appstream"]
        );
        let alma = os_target("almalinux", Some("9.3")).expect("alma");
        assert_eq!((alma.distro, alma.format, alma.scheme), (Distro::RpmFamily, PackageFormat::Rpm, Scheme::Rpm));
        let alpine = os_target("alpine", Some("3.4.6")).expect("alpine");
        assert_eq!((alpine.format, alpine.scheme), (PackageFormat::Apk, Scheme::Apk));
    }

    #[test]
    fn distributions_without_osv_data_say_why() {
        for (id, v, word) in [
            ("amzn", Some("2023"), "Amazon Linux"),
            ("amzn", Some("2"), "Amazon Linux"),
            ("ol", Some("9.3"), "Oracle Linux"),
            ("mariner", Some("2.0"), "CBL-Mariner"),
            ("centos", Some("7"), "CentOS"),
            ("arch", None, "\"arch\""),
            ("debian", None, "without VERSION_ID"),
            ("debian", Some("trixie/sid"), "not a numbered release"),
            ("ubuntu", Some("22"), "not YY.MM"),
            ("alpine", Some("edge"), "MAJOR.MINOR"),
        ] {
            let err = os_target(id, v).expect_err(id);
            assert!(err.0.contains(word), "{id} {v:?}: {err}");
        }
    }

    #[test]
    fn schemes_agree_with_the_version_module() {
        for (id, v) in [
            ("debian", "12"),
            ("ubuntu", "22.04"),
            ("alpine", "3.4.6"),
            ("almalinux", "9.3"),
            ("rocky", "9"),
            ("rhel", "9.3"),
        ] {
            let t = os_target(id, Some(v)).expect(id);
            for eco in t.ecosystems.iter().chain(t.paid.iter()) {
                assert_eq!(Scheme::for_ecosystem(eco), Some(t.scheme), "{eco}");
            }
        }
        for row in APP_ECOSYSTEMS {
            assert_eq!(Scheme::for_ecosystem(row.ecosystem), Some(row.scheme), "{}", row.ecosystem);
        }
    }

    #[test]
    fn application_names_are_normalised_as_osv_spells_them() {
        let py = app_ecosystem("pypi").expect("pypi");
        assert_eq!((py.normalise)("Django_REST.framework"), "django-rest-framework");
        assert_eq!((py.normalise)("zope..interface"), "zope-interface");
        let mvn = app_ecosystem("maven").expect("maven");
        assert_eq!((mvn.normalise)("org.apache.logging.log4j/log4j-core"), "org.apache.logging.log4j:log4j-core");
        assert_eq!((mvn.normalise)("org.apache.logging.log4j:log4j-core"), "org.apache.logging.log4j:log4j-core");
        let go = app_ecosystem("golang").expect("go");
        assert_eq!((go.ecosystem, (go.normalise)("golang.org/x/net")), ("Go", "golang.org/x/net".to_owned()));
        assert!(app_ecosystem("deb").is_none());
    }
}
