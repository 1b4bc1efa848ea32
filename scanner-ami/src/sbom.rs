//! CycloneDX 1.6 JSON output (https://cyclonedx.org/docs/1.6/json/): the scanned volume as the
//! `application` root component (the type Trivy gives a root filesystem it scans, and one Trivy
//! and Grype accept), the scanned OS as an `operating-system` component named as Trivy names OS
//! families, every OS package as a `library` component with its purl, and dependencies tying the
//! root to the OS and the OS to its packages. Written with our own serde structs; the schema
//! conformance is checked by a test against the official 1.6 JSON schema, and the consumers by
//! tests running `trivy sbom` on it.
//!
//! Each package component's `bom-ref` is its purl, which is stable across scans of the same
//! content; the same purl listed again (a second package database, or a duplicate record) gets
//! [`duplicate_ref`] instead, so every `bom-ref` is unique. A VEX document points at these refs
//! (`agentless::vuln::vex`).
//!
//! The source package is carried twice: in the purl's `upstream=` qualifier (Syft's and Grype's
//! convention) and in the `aquasecurity:trivy:Src*` properties Trivy reads (name, version,
//! release and epoch as its own analysers split them), so that both match Debian and Ubuntu
//! advisories keyed by source package.

use serde::Serialize;

use crate::apps::{AppEcosystem, AppPackage, AppRole};
use crate::inventory::{Ecosystem, Package};
use crate::os::OsInfo;
use crate::purl;

/// The `bom-ref` of the root component (the scanned volume).
pub const TARGET_REF: &str = "target";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    pub bom_format: &'static str,
    pub spec_version: &'static str,
    pub serial_number: String,
    pub version: u32,
    pub metadata: Metadata,
    pub components: Vec<Component>,
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Serialize)]
pub struct Metadata {
    pub timestamp: String,
    pub tools: Tools,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<Component>,
}

#[derive(Debug, Serialize)]
pub struct Tools {
    pub components: Vec<Component>,
}

#[derive(Debug, Serialize, Clone)]
pub struct Component {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `excluded` for what is not part of the shipped program (a Rust build-time dependency).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

#[derive(Debug, Serialize, Clone)]
pub struct LicenseChoice {
    pub license: License,
}

/// Licence strings from package databases are rarely valid SPDX expressions, so they go in
/// `name`, never `id`/`expression`.
#[derive(Debug, Serialize, Clone)]
pub struct License {
    pub name: String,
}

#[derive(Debug, Serialize, Clone)]
pub struct Property {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    #[serde(rename = "ref")]
    pub reference: String,
    pub depends_on: Vec<String>,
}

/// A package's licence as stated (not an SPDX expression: `name`, never `id`).
fn licenses(license: Option<&str>) -> Vec<LicenseChoice> {
    license
        .filter(|l| !l.is_empty())
        .map(|l| LicenseChoice { license: License { name: l.to_owned() } })
        .into_iter()
        .collect()
}

fn prop(name: &str, value: impl Into<String>) -> Property {
    Property { name: format!("agentless:{name}"), value: value.into() }
}

/// A property in Trivy's namespace (`aquasecurity:trivy:`, read back by `trivy sbom`).
fn trivy_prop(name: &str, value: impl Into<String>) -> Property {
    Property { name: format!("aquasecurity:trivy:{name}"), value: value.into() }
}

/// The OS component's name: Trivy's OS family name for the os-release `ID` (Trivy's
/// `fanal/types` OS constants, which its `trivy sbom` reads back as the family that selects the
/// advisory source), or the `ID` itself for the families Trivy spells the same or does not know.
#[must_use]
pub fn os_component_name(os_release_id: &str) -> &str {
    match os_release_id {
        "almalinux" => "alma",
        "amzn" => "amazon",
        "mariner" => "cbl-mariner",
        "rhel" => "redhat",
        "ol" => "oracle",
        "sles" | "sled" => "suse linux enterprise server",
        "opensuse-leap" => "opensuse.leap",
        "opensuse-tumbleweed" => "opensuse.tumbleweed",
        id => id,
    }
}

/// The `bom-ref` of a package whose purl is already taken by an earlier component: the database
/// it was read from, then the purl (not starting with `pkg:`, so no consumer mistakes it for a
/// purl), then `#n` for the n-th duplicate within one database.
#[must_use]
pub fn duplicate_ref(db_path: &str, purl: &str, n: usize) -> String {
    if n <= 1 { format!("{db_path}:{purl}") } else { format!("{db_path}:{purl}#{n}") }
}

/// Trivy's source-package properties for `p`: `SrcName`, `SrcVersion`, `SrcRelease`, `SrcEpoch`,
/// split as Trivy's own dpkg, rpm and apk analysers split them (dpkg: the `Source:` version's
/// epoch, upstream and revision; rpm: the source rpm's version and release, the binary's epoch;
/// apk: the origin, with the package's own version). Nothing without a source name (Trivy then
/// takes the binary's own name and version).
fn trivy_source_props(p: &Package) -> Vec<Property> {
    let Some(name) = p.source_name.as_deref().filter(|n| !n.is_empty()) else { return vec![] };
    let mut out = vec![trivy_prop("SrcName", name)];
    let (epoch, version, release) = match p.ecosystem {
        Ecosystem::Deb => {
            let full = p.source_version.clone().unwrap_or_else(|| p.full_version());
            crate::inventory::dpkg::split_version(&full)
        }
        Ecosystem::Rpm => match p.source_version.as_deref().and_then(|v| v.rsplit_once('-')) {
            Some((v, r)) => (p.epoch, v.to_owned(), Some(r.to_owned())),
            None => (p.epoch, p.version.clone(), p.release.clone()),
        },
        Ecosystem::Apk => (None, p.source_version.clone().unwrap_or_else(|| p.version.clone()), None),
    };
    out.push(trivy_prop("SrcVersion", version));
    if let Some(r) = release.filter(|r| !r.is_empty()) {
        out.push(trivy_prop("SrcRelease", r));
    }
    if let Some(e) = epoch.filter(|e| *e > 0) {
        out.push(trivy_prop("SrcEpoch", e.to_string()));
    }
    out
}

/// Build the SBOM of one root filesystem.
#[must_use]
pub fn build(os: Option<&OsInfo>, packages: &[Package], target_name: &str) -> Bom {
    let now = jiff::Timestamp::now();
    let timestamp = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut refs = std::collections::HashSet::new();
    let mut components = Vec::new();
    refs.insert(TARGET_REF.to_owned());
    let os_ref = os.map(|o| format!("os:{}", o.distro()));
    if let (Some(o), Some(r)) = (os, &os_ref) {
        refs.insert(r.clone());
        components.push(Component {
            kind: "operating-system",
            bom_ref: Some(r.clone()),
            group: None,
            name: os_component_name(&o.id).to_owned(),
            version: o.version_id.clone(),
            description: o.pretty_name.clone(),
            scope: None,
            purl: None,
            licenses: vec![],
            properties: vec![
                prop("os:id", o.id.clone()),
                prop("os:family", format!("{:?}", o.family).to_lowercase()),
                prop("os:source", o.source.clone()),
            ],
        });
    }
    let mut pkg_refs = Vec::new();
    for p in packages {
        let purl = purl::for_package(p, os);
        let mut bom_ref = purl.clone();
        let mut n = 0;
        while !refs.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = duplicate_ref(&p.db_path, &purl, n);
        }
        pkg_refs.push(bom_ref.clone());
        let mut properties = trivy_source_props(p);
        properties.push(prop("package:db", p.db_path.clone()));
        if let Some(s) = &p.source_name {
            properties.push(prop("package:source-name", s.clone()));
        }
        if let Some(s) = &p.source_version {
            properties.push(prop("package:source-version", s.clone()));
        }
        if let Some(s) = &p.source_rpm {
            properties.push(prop("package:source-rpm", s.clone()));
        }
        if let Some(s) = p.installed_size {
            properties.push(prop("package:installed-size", s.to_string()));
        }
        if let Some(s) = &p.vendor {
            properties.push(prop("package:vendor", s.clone()));
        }
        components.push(Component {
            kind: "library",
            bom_ref: Some(bom_ref),
            group: None,
            name: p.name.clone(),
            version: Some(p.full_version()),
            description: None,
            scope: None,
            purl: Some(purl),
            licenses: licenses(p.license.as_deref()),
            properties,
        });
    }
    // Without an OS the packages hang off the root: Trivy ignores OS packages of an SBOM with no
    // OS component either way, but the graph stays complete.
    let dependencies = match os_ref {
        Some(r) => vec![
            Dependency { reference: r.clone(), depends_on: pkg_refs },
            Dependency { reference: TARGET_REF.to_owned(), depends_on: vec![r] },
        ],
        None => vec![Dependency { reference: TARGET_REF.to_owned(), depends_on: pkg_refs }],
    };
    Bom {
        schema: "http://cyclonedx.org/schema/bom-1.6.schema.json",
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        version: 1,
        metadata: Metadata {
            timestamp,
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    bom_ref: None,
                    group: Some("agentless".into()),
                    name: "scanner-agent".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    description: None,
                    scope: None,
                    purl: None,
                    licenses: vec![],
                    properties: vec![],
                }],
            },
            component: Some(Component {
                kind: "application",
                bom_ref: Some(TARGET_REF.into()),
                group: None,
                name: target_name.to_owned(),
                version: None,
                description: None,
                scope: None,
                purl: None,
                licenses: vec![],
                properties: vec![],
            }),
        },
        components,
        dependencies,
    }
}

/// Trivy's package type for an application package (`aquasecurity:trivy:PkgType`, the analyser
/// names of Trivy's post-build analysers), so that `trivy sbom` treats it as it treats its own.
fn trivy_pkg_type(p: &AppPackage) -> Option<&'static str> {
    Some(match p.ecosystem {
        AppEcosystem::Golang => "gobinary",
        AppEcosystem::Cargo => "rustbinary",
        AppEcosystem::Pypi => "python-pkg",
        AppEcosystem::Maven => "jar",
        AppEcosystem::Npm => "node-pkg",
        AppEcosystem::Gem => "gemspec",
        AppEcosystem::Composer => "composer-vendor",
        AppEcosystem::Nuget => "dotnet-core",
        AppEcosystem::Kernel => return None,
    })
}

/// Add the application packages to `bom`: every package is a component (`application` for a
/// program's own identity, `library` otherwise, a build-time crate with scope `excluded`); the
/// packages found in one file hang off that file's application when it has one (through its
/// stated dependencies, or all of them), and everything else off the scanned volume's root.
pub fn add_applications(bom: &mut Bom, apps: &[AppPackage]) {
    let mut refs: std::collections::HashSet<String> = bom.components.iter().filter_map(|c| c.bom_ref.clone()).collect();
    refs.insert(TARGET_REF.to_owned());
    let mut app_refs: Vec<String> = Vec::with_capacity(apps.len());
    for p in apps {
        let mut bom_ref = p.purl.clone();
        let mut n = 0;
        while !refs.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = duplicate_ref(&p.location, &p.purl, n);
        }
        app_refs.push(bom_ref.clone());
        let mut properties = vec![prop("package:location", p.location.clone()), prop("app:role", role_name(p.role))];
        properties.push(trivy_prop("FilePath", p.location.trim_start_matches('/')));
        if let Some(t) = trivy_pkg_type(p) {
            properties.push(trivy_prop("PkgType", t));
        }
        for (k, v) in &p.properties {
            properties.push(prop(&format!("app:{k}"), v.clone()));
        }
        let (group, name) = match (p.ecosystem, p.name.split_once(':')) {
            (AppEcosystem::Maven, Some((g, a))) => (Some(g.to_owned()), a.to_owned()),
            _ => (None, p.name.clone()),
        };
        bom.components.push(Component {
            kind: if p.role == AppRole::Application { "application" } else { "library" },
            bom_ref: Some(bom_ref),
            group,
            name,
            version: (!p.version.is_empty()).then(|| p.version.clone()),
            description: None,
            scope: (p.role == AppRole::BuildDependency).then_some("excluded"),
            purl: Some(p.purl.clone()),
            licenses: licenses(p.license.as_deref()),
            properties,
        });
    }
    // Per location: the application's edges to the packages of the same file.
    let mut hung: Vec<bool> = vec![false; apps.len()];
    let mut deps: Vec<Dependency> = Vec::new();
    for (i, p) in apps.iter().enumerate() {
        if p.role != AppRole::Application {
            continue;
        }
        let same_file: Vec<usize> =
            (0..apps.len()).filter(|&j| j != i && apps.get(j).is_some_and(|q| q.location == p.location)).collect();
        let mut depends_on = Vec::new();
        for j in same_file {
            let (Some(q), Some(r)) = (apps.get(j), app_refs.get(j)) else { continue };
            if p.depends_on.is_empty() || p.depends_on.contains(&q.purl) {
                depends_on.push(r.clone());
                if let Some(h) = hung.get_mut(j) {
                    *h = true;
                }
            }
        }
        if let Some(r) = app_refs.get(i) {
            deps.push(Dependency { reference: r.clone(), depends_on });
        }
    }
    // Edges stated between libraries of one file (a crate's own dependencies).
    for (i, p) in apps.iter().enumerate() {
        if p.role == AppRole::Application || p.depends_on.is_empty() {
            continue;
        }
        let depends_on: Vec<String> = apps
            .iter()
            .enumerate()
            .filter(|(j, q)| *j != i && q.location == p.location && p.depends_on.contains(&q.purl))
            .filter_map(|(j, _)| app_refs.get(j).cloned())
            .collect();
        if let Some(r) = app_refs.get(i) {
            deps.push(Dependency { reference: r.clone(), depends_on });
        }
    }
    let top: Vec<String> = app_refs.iter().zip(&hung).filter(|(_, h)| !**h).map(|(r, _)| r.clone()).collect();
    if let Some(root) = bom.dependencies.iter_mut().find(|d| d.reference == TARGET_REF) {
        root.depends_on.extend(top);
    } else {
        bom.dependencies.push(Dependency { reference: TARGET_REF.to_owned(), depends_on: top });
    }
    bom.dependencies.extend(deps);
}

fn role_name(role: AppRole) -> &'static str {
    match role {
        AppRole::Application => "application",
        AppRole::Library => "library",
        AppRole::Stdlib => "stdlib",
        AppRole::BuildDependency => "build-dependency",
        AppRole::Kernel => "kernel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::DbFormat;
    use crate::os::Family;

    fn deb(name: &str, version: &str, db: &str) -> Package {
        let mut p = Package::new(Ecosystem::Deb, name, version, DbFormat::DpkgStatus, db);
        p.arch = Some("amd64".into());
        p
    }

    fn props(c: &Component) -> Vec<(&str, &str)> {
        c.properties.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect()
    }

    #[test]
    fn bom_refs_are_unique_and_stable() {
        let os = OsInfo {
            id: "debian".into(),
            family: Family::Debian,
            version_id: Some("12".into()),
            version_codename: None,
            name: None,
            pretty_name: None,
            id_like: vec![],
            source: "/etc/os-release".into(),
        };
        let pkgs = [
            deb("zlib1g", "1.2.13", "/var/lib/dpkg/status"),
            deb("zlib1g", "1.2.13", "/var/lib/dpkg/status.d/zlib1g"),
            deb("zlib1g", "1.2.13", "/var/lib/dpkg/status.d/zlib1g"),
        ];
        let refs = |bom: &Bom| -> Vec<String> { bom.components.iter().filter_map(|c| c.bom_ref.clone()).collect() };
        let a = build(Some(&os), &pkgs, "t");
        let purl = "pkg:deb/debian/zlib1g@1.2.13?arch=amd64&distro=debian-12";
        assert_eq!(
            refs(&a),
            [
                "os:debian-12".to_owned(),
                purl.to_owned(),
                format!("/var/lib/dpkg/status.d/zlib1g:{purl}"),
                format!("/var/lib/dpkg/status.d/zlib1g:{purl}#2"),
            ]
        );
        assert_eq!(refs(&build(Some(&os), &pkgs, "t")), refs(&a), "the same inventory gives the same refs");
        assert_eq!(a.components.first().map(|c| c.name.as_str()), Some("debian"));
        assert_eq!(a.metadata.component.as_ref().map(|c| c.kind), Some("application"));
        assert_eq!(a.dependencies.len(), 2);
    }

    #[test]
    fn trivy_source_properties_per_ecosystem() {
        let mut p = deb("libgcc1", "8-20180414", "/s");
        p.epoch = Some(1);
        p.release = Some("1ubuntu2".into());
        p.source_name = Some("gcc-8".into());
        p.source_version = Some("8-20180414-1ubuntu2".into());
        let bom = build(None, std::slice::from_ref(&p), "t");
        let c = bom.components.first().expect("component");
        assert_eq!(
            props(c)[..3],
            [
                ("aquasecurity:trivy:SrcName", "gcc-8"),
                ("aquasecurity:trivy:SrcVersion", "8-20180414"),
                ("aquasecurity:trivy:SrcRelease", "1ubuntu2")
            ]
        );
        assert!(!props(c).iter().any(|(k, _)| *k == "aquasecurity:trivy:SrcEpoch"), "the source has no epoch");

        let mut r = Package::new(Ecosystem::Rpm, "openssl-libs", "3.0.1", DbFormat::RpmSqlite, "/r");
        r.epoch = Some(1);
        r.release = Some("46.el9_0".into());
        r.source_name = Some("openssl".into());
        r.source_version = Some("3.0.1-46.el9_0".into());
        let bom = build(None, std::slice::from_ref(&r), "t");
        let c = bom.components.first().expect("component");
        assert_eq!(
            props(c)[..4],
            [
                ("aquasecurity:trivy:SrcName", "openssl"),
                ("aquasecurity:trivy:SrcVersion", "3.0.1"),
                ("aquasecurity:trivy:SrcRelease", "46.el9_0"),
                ("aquasecurity:trivy:SrcEpoch", "1")
            ]
        );

        let mut k = Package::new(Ecosystem::Apk, "libcrypto1.0", "1.0.2h-r1", DbFormat::ApkInstalled, "/a");
        k.source_name = Some("openssl".into());
        let bom = build(None, std::slice::from_ref(&k), "t");
        let c = bom.components.first().expect("component");
        assert_eq!(
            props(c)[..2],
            [("aquasecurity:trivy:SrcName", "openssl"), ("aquasecurity:trivy:SrcVersion", "1.0.2h-r1")]
        );
        assert_eq!(os_component_name("almalinux"), "alma");
        assert_eq!(os_component_name("rhel"), "redhat");
        assert_eq!(os_component_name("ubuntu"), "ubuntu");
    }
}
