//! CycloneDX 1.6 JSON output (https://cyclonedx.org/docs/1.6/json/): the scanned OS as an
//! `operating-system` component, every OS package as a `library` component with its purl, and a
//! dependency entry tying the packages to the OS. Written with our own serde structs; the schema
//! conformance is checked by a test against the official 1.6 JSON schema.

use serde::Serialize;

use crate::inventory::Package;
use crate::os::OsInfo;
use crate::purl;

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

fn prop(name: &str, value: impl Into<String>) -> Property {
    Property { name: format!("agentless:{name}"), value: value.into() }
}

/// Build the SBOM of one root filesystem.
#[must_use]
pub fn build(os: Option<&OsInfo>, packages: &[Package], target_name: &str) -> Bom {
    let now = jiff::Timestamp::now();
    let timestamp = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut refs = std::collections::HashSet::new();
    let mut components = Vec::new();
    let os_ref = os.map(|o| format!("os:{}", o.distro()));
    if let (Some(o), Some(r)) = (os, &os_ref) {
        refs.insert(r.clone());
        components.push(Component {
            kind: "operating-system",
            bom_ref: Some(r.clone()),
            group: None,
            name: o.id.clone(),
            version: o.version_id.clone(),
            description: o.pretty_name.clone(),
            purl: None,
            licenses: vec![],
            properties: vec![
                prop("os:family", format!("{:?}", o.family).to_lowercase()),
                prop("os:source", o.source.clone()),
            ],
        });
    }
    let mut pkg_refs = Vec::new();
    for p in packages {
        let purl = purl::for_package(p, os);
        let mut bom_ref = purl.clone();
        let mut n = 1;
        while !refs.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = format!("{purl}#{n}");
        }
        pkg_refs.push(bom_ref.clone());
        let mut properties = vec![prop("package:db", p.db_path.clone())];
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
            purl: Some(purl),
            licenses: p
                .license
                .iter()
                .filter(|l| !l.is_empty())
                .map(|l| LicenseChoice { license: License { name: l.clone() } })
                .collect(),
            properties,
        });
    }
    let dependencies = match os_ref {
        Some(r) => vec![Dependency { reference: r, depends_on: pkg_refs }],
        None => vec![],
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
                    purl: None,
                    licenses: vec![],
                    properties: vec![],
                }],
            },
            component: Some(Component {
                kind: "device",
                bom_ref: Some("target".into()),
                group: None,
                name: target_name.to_owned(),
                version: None,
                description: None,
                purl: None,
                licenses: vec![],
                properties: vec![],
            }),
        },
        components,
        dependencies,
    }
}
