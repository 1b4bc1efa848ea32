//! Package URLs (purl spec, github.com/package-url/purl-spec) for OS packages, following the
//! conventions in docs/references.md, "Package URLs": `pkg:deb/<distro-id>/<name>@<version>`,
//! `pkg:rpm/<distro-id>/<name>@<version>-<release>`, `pkg:apk/<distro-id>/<name>@<version>`, with
//! the qualifiers `arch`, `epoch`, `upstream` and `distro` (sorted by key, as the spec requires).

use crate::apps::AppEcosystem;
use crate::inventory::{Ecosystem, Package};
use crate::os::OsInfo;

/// Percent-encode everything but the purl spec's unreserved characters (`A-Z a-z 0-9 . - _ ~`).
#[must_use]
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The purl namespace for an OS: its os-release ID, with `rhel` -> `redhat` and `opensuse-*` ->
/// `opensuse` (Syft's convention).
#[must_use]
pub fn namespace(os: &OsInfo) -> String {
    match os.id.as_str() {
        "rhel" => "redhat".to_owned(),
        id if id.starts_with("opensuse") => "opensuse".to_owned(),
        id => id.to_owned(),
    }
}

/// Build the purl of `pkg` on `os` (without OS, no namespace and no `distro=`).
#[must_use]
pub fn for_package(pkg: &Package, os: Option<&OsInfo>) -> String {
    let ty = match pkg.ecosystem {
        Ecosystem::Deb => "deb",
        Ecosystem::Rpm => "rpm",
        Ecosystem::Apk => "apk",
    };
    let version = match (&pkg.ecosystem, &pkg.release) {
        (Ecosystem::Apk, _) | (_, None) => pkg.version.clone(),
        (_, Some(rel)) => format!("{}-{}", pkg.version, rel),
    };
    let mut quals: Vec<(&str, String)> = Vec::new();
    if let Some(arch) = &pkg.arch {
        quals.push(("arch", arch.clone()));
    }
    if let Some(os) = os {
        quals.push(("distro", os.distro()));
    }
    if let Some(e) = pkg.epoch {
        quals.push(("epoch", e.to_string()));
    }
    let upstream = match pkg.ecosystem {
        Ecosystem::Rpm => pkg.source_rpm.clone(),
        Ecosystem::Deb => pkg.source_name.as_ref().and_then(|src| {
            let own = pkg.full_version();
            match pkg.source_version.as_deref() {
                Some(sv) if sv != own => Some(format!("{src}@{sv}")),
                _ if src != &pkg.name => Some(src.clone()),
                _ => None,
            }
        }),
        Ecosystem::Apk => pkg.source_name.clone().filter(|s| s != &pkg.name),
    };
    if let Some(u) = upstream.filter(|u| !u.is_empty()) {
        quals.push(("upstream", u));
    }
    quals.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = format!("pkg:{ty}/");
    if let Some(os) = os {
        s.push_str(&encode(&namespace(os)));
        s.push('/');
    }
    s.push_str(&encode(&pkg.name));
    s.push('@');
    s.push_str(&encode(&version));
    for (i, (k, v)) in quals.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&encode(v));
    }
    s
}

/// Build the purl of an application package from its name as the ecosystem spells it
/// ([`crate::apps::AppPackage::name`]): the namespace is split off the name per the purl
/// specification's type rules, each segment percent-encoded; no `@` when the version is empty.
///
/// - `golang`: the module path up to its last `/` is the namespace (`github.com/cli/cli/v2` ->
///   `pkg:golang/github.com/cli/cli/v2@...`, namespace `github.com/cli/cli`, name `v2`);
/// - `maven`: `group:artifact` -> `pkg:maven/group/artifact`;
/// - `npm`: `@scope/name` -> `pkg:npm/%40scope/name`; names are lowercased;
/// - `composer`: `vendor/name`, lowercased;
/// - `pypi`: normalised per PEP 503 (lowercase, runs of `-_.` -> `-`), which includes the spec's rule;
/// - `cargo`, `gem`, `nuget`: the name as is (NuGet ids keep their case);
/// - `kernel`: `pkg:generic/linux-kernel@<release>`.
#[must_use]
pub fn for_app(ecosystem: AppEcosystem, name: &str, version: &str) -> String {
    let (namespace, name): (Option<&str>, String) = match ecosystem {
        AppEcosystem::Golang => match name.rsplit_once('/') {
            Some((ns, n)) => (Some(ns), n.to_owned()),
            None => (None, name.to_owned()),
        },
        AppEcosystem::Maven => match name.split_once(':') {
            Some((g, a)) => (Some(g), a.to_owned()),
            None => (None, name.to_owned()),
        },
        AppEcosystem::Npm => match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, n)) => {
                return with_version("npm", Some(&format!("@{}", scope.to_lowercase())), &n.to_lowercase(), version);
            }
            None => (None, name.to_lowercase()),
        },
        AppEcosystem::Composer => {
            let lower = name.to_lowercase();
            return match lower.split_once('/') {
                Some((v, n)) => with_version("composer", Some(v), n, version),
                None => with_version("composer", None, &lower, version),
            };
        }
        AppEcosystem::Pypi => (None, crate::apps::python::normalize_name(name)),
        AppEcosystem::Cargo | AppEcosystem::Gem | AppEcosystem::Nuget => (None, name.to_owned()),
        AppEcosystem::Kernel => (None, "linux-kernel".to_owned()),
    };
    with_version(ecosystem.purl_type(), namespace, &name, version)
}

fn with_version(ty: &str, namespace: Option<&str>, name: &str, version: &str) -> String {
    let mut s = format!("pkg:{ty}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        for seg in ns.split('/').filter(|seg| !seg.is_empty()) {
            s.push_str(&encode(seg));
            s.push('/');
        }
    }
    s.push_str(&encode(name));
    if !version.is_empty() {
        s.push('@');
        s.push_str(&encode(version));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::DbFormat;
    use crate::os::Family;

    fn os(id: &str, v: &str) -> OsInfo {
        OsInfo {
            id: id.into(),
            family: Family::Other,
            version_id: Some(v.into()),
            version_codename: None,
            name: None,
            pretty_name: None,
            id_like: vec![],
            source: String::new(),
        }
    }

    #[test]
    fn deb_with_epoch_and_source_version() {
        let mut p = Package::new(Ecosystem::Deb, "passwd", "4.5", DbFormat::DpkgStatus, "/s");
        p.epoch = Some(1);
        p.release = Some("1ubuntu1".into());
        p.arch = Some("amd64".into());
        p.source_name = Some("shadow".into());
        p.source_version = Some("1:4.5-1ubuntu1".into());
        assert_eq!(
            for_package(&p, Some(&os("ubuntu", "18.04"))),
            "pkg:deb/ubuntu/passwd@4.5-1ubuntu1?arch=amd64&distro=ubuntu-18.04&epoch=1&upstream=shadow"
        );
        p.source_version = Some("1:4.5-2".into());
        assert!(for_package(&p, None).ends_with("upstream=shadow%401%3A4.5-2"));
    }

    #[test]
    fn rpm_matches_syft_form() {
        let mut p = Package::new(Ecosystem::Rpm, "dive", "0.9.2", DbFormat::RpmBdb, "/p");
        p.release = Some("1".into());
        p.arch = Some("x86_64".into());
        p.source_rpm = Some("dive-0.9.2-1.src.rpm".into());
        // The exact purl of syft's parse_rpm_db_test.go for this package without a distro.
        assert_eq!(for_package(&p, None), "pkg:rpm/dive@0.9.2-1?arch=x86_64&upstream=dive-0.9.2-1.src.rpm");
        assert_eq!(
            for_package(&p, Some(&os("rhel", "9.3"))),
            "pkg:rpm/redhat/dive@0.9.2-1?arch=x86_64&distro=rhel-9.3&upstream=dive-0.9.2-1.src.rpm"
        );
    }

    #[test]
    fn apk_and_encoding() {
        let mut p = Package::new(Ecosystem::Apk, "busybox", "1.35.0-r17", DbFormat::ApkInstalled, "/i");
        p.arch = Some("x86_64".into());
        p.source_name = Some("busybox".into());
        assert_eq!(
            for_package(&p, Some(&os("alpine", "3.16.3"))),
            "pkg:apk/alpine/busybox@1.35.0-r17?arch=x86_64&distro=alpine-3.16.3"
        );
        assert_eq!(encode("a+b c/é"), "a%2Bb%20c%2F%C3%A9");
    }

    #[test]
    fn application_purls() {
        use AppEcosystem as E;
        // Forms of the purl specification's test suite and of Trivy's and Syft's fixtures.
        assert_eq!(for_app(E::Golang, "github.com/cli/cli/v2", "v2.63.0"), "pkg:golang/github.com/cli/cli/v2@v2.63.0");
        assert_eq!(for_app(E::Golang, "stdlib", "v1.22.1"), "pkg:golang/stdlib@v1.22.1");
        assert_eq!(
            for_app(E::Golang, "github.com/a/b", "v0.0.0-2020+incompatible"),
            "pkg:golang/github.com/a/b@v0.0.0-2020%2Bincompatible"
        );
        assert_eq!(
            for_app(E::Maven, "org.apache.xmlgraphics:batik-anim", "1.9.1"),
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1"
        );
        assert_eq!(for_app(E::Npm, "@Angular/Animation", "12.3.1"), "pkg:npm/%40angular/animation@12.3.1");
        assert_eq!(for_app(E::Npm, "foobar", "12.3.1"), "pkg:npm/foobar@12.3.1");
        assert_eq!(for_app(E::Pypi, "Django_package", "1.11.1"), "pkg:pypi/django-package@1.11.1");
        assert_eq!(for_app(E::Pypi, "zope.interface", "6.0"), "pkg:pypi/zope-interface@6.0");
        assert_eq!(for_app(E::Pypi, "A__B-.c", "1"), "pkg:pypi/a-b-c@1");
        assert_eq!(for_app(E::Composer, "Laravel/Laravel", "5.5.0"), "pkg:composer/laravel/laravel@5.5.0");
        assert_eq!(for_app(E::Gem, "ruby-advisory-db-check", "0.12.4"), "pkg:gem/ruby-advisory-db-check@0.12.4");
        assert_eq!(
            for_app(E::Nuget, "EnterpriseLibrary.Common", "6.0.1304"),
            "pkg:nuget/EnterpriseLibrary.Common@6.0.1304"
        );
        assert_eq!(for_app(E::Cargo, "rand", "0.7.2"), "pkg:cargo/rand@0.7.2");
        assert_eq!(for_app(E::Cargo, "rand", ""), "pkg:cargo/rand");
        assert_eq!(for_app(E::Kernel, "6.1.0-18-amd64", "6.1.0-18-amd64"), "pkg:generic/linux-kernel@6.1.0-18-amd64");
    }
}
