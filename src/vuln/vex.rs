//! CycloneDX 1.6 VEX (https://cyclonedx.org/capabilities/vex/): one volume's findings
//! (`vulns.json`, [`VulnReport`]) as a standalone document whose `vulnerabilities[].affects[]`
//! point into that volume's SBOM.
//!
//! Each reference is a BOM-Link (CycloneDX 1.6 `bomLinkElementType`:
//! `urn:cdx:<SBOM serial>/<SBOM version>#<percent-encoded bom-ref>`), the form a VEX kept apart
//! from its SBOM uses and the one `trivy sbom --vex` resolves. The component is found in the
//! SBOM by the installed package's name, version and architecture, so the link names exactly the
//! `bom-ref` the SBOM gave it (`scanner_ami::sbom`: the purl, or a unique variant of it); every
//! component with that identity is listed (a package read from two databases).
//!
//! One vulnerability entry per (vulnerability id, ecosystem, advisory package): the id is each
//! CVE the finding covers (what Trivy, Grype and Dependency-Track key on), or the advisory's own
//! id when it names no CVE; the advisory and its aliases are `references`. The analysis states
//! what a version match can state: `exploitable` (the installed version is in an affected range;
//! the response and `recommendation` name the fixed version when one exists), or `in_triage`
//! where the match alone cannot decide (a low-urgency finding the distribution does not plan to
//! fix; a kernel package, of which only the running one is exposed).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::findings::{Finding, Severity, SeverityOrigin, Status, VulnReport};

/// File name of the VEX document beside `vulns.json` in a volume's result directory.
pub const FILE_NAME: &str = "vex.cdx.json";

/// Why no VEX document can point into this SBOM.
#[derive(Debug, thiserror::Error)]
pub enum VexError {
    #[error("the SBOM is not a CycloneDX document (bomFormat {0:?})")]
    NotCycloneDx(String),
    #[error("the SBOM has no usable serialNumber ({0:?}): a BOM-Link needs the SBOM's urn:uuid")]
    Serial(String),
    #[error("the SBOM has no usable version ({0}): a BOM-Link needs a version of 1 or more")]
    Version(String),
}

/// The SBOM's identity in a BOM-Link: serial UUID (lower case, hyphenated) and version.
struct SbomId {
    serial: String,
    version: u64,
}

impl SbomId {
    fn of(sbom: &Value) -> Result<SbomId, VexError> {
        let format = sbom.get("bomFormat").and_then(Value::as_str).unwrap_or_default();
        if format != "CycloneDX" {
            return Err(VexError::NotCycloneDx(format.to_owned()));
        }
        let raw = sbom.get("serialNumber").and_then(Value::as_str).unwrap_or_default();
        let serial = raw
            .strip_prefix("urn:uuid:")
            .and_then(|u| uuid::Uuid::parse_str(u).ok())
            .ok_or_else(|| VexError::Serial(raw.to_owned()))?;
        let version = match sbom.get("version") {
            Some(v) => v.as_u64().filter(|n| *n >= 1).ok_or_else(|| VexError::Version(v.to_string()))?,
            None => 1, // the CycloneDX default
        };
        Ok(SbomId { serial: serial.hyphenated().to_string(), version })
    }

    /// The BOM-Link of `bom_ref`: percent-encoded as cyclonedx-go's `BOMLink.String` does, so that
    /// its `ParseBOMLink` gives the `bom-ref` back byte for byte.
    fn link(&self, bom_ref: &str) -> String {
        format!("urn:cdx:{}/{}#{}", self.serial, self.version, scanner_ami::purl::encode(bom_ref))
    }
}

/// (name, version) -> [(arch, bom-ref)] of an SBOM's package components.
type ComponentIndex<'a> = HashMap<(&'a str, &'a str), Vec<(Option<&'a str>, &'a str)>>;

/// The SBOM's package components by (name, version): each one's architecture (the purl's `arch`
/// qualifier) and `bom-ref`. Linear in the SBOM, whose size the result bundle already bounds
/// (`scanner_ami::bundle`: 64 MiB per entry).
fn component_index(sbom: &Value) -> ComponentIndex<'_> {
    let mut index = ComponentIndex::new();
    for c in sbom.get("components").and_then(Value::as_array).into_iter().flatten() {
        let (Some(name), Some(version), Some(bom_ref)) = (
            c.get("name").and_then(Value::as_str),
            c.get("version").and_then(Value::as_str),
            c.get("bom-ref").and_then(Value::as_str),
        ) else {
            continue;
        };
        let arch = c.get("purl").and_then(Value::as_str).and_then(purl_arch);
        index.entry((name, version)).or_default().push((arch, bom_ref));
    }
    index
}

/// The `arch` qualifier of a purl, as written (architectures are purl-unreserved characters).
fn purl_arch(purl: &str) -> Option<&str> {
    let (_, query) = purl.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|kv| kv.strip_prefix("arch="))
}

/// An RFC 3339 time as CycloneDX's `date-time` wants it, or nothing when it does not parse.
fn timestamp(s: Option<&str>) -> Option<String> {
    let t: jiff::Timestamp = s?.parse().ok()?;
    Some(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// CycloneDX's rating of a finding's severity.
fn rating(s: &Severity, source: &str) -> Value {
    let method = match s.origin {
        SeverityOrigin::CvssV3 if s.vector.as_deref().is_some_and(|v| v.starts_with("CVSS:3.1/")) => "CVSSv31",
        SeverityOrigin::CvssV3 => "CVSSv3",
        SeverityOrigin::CvssV2 => "CVSSv2",
        SeverityOrigin::CvssV4Unscored => "CVSSv4",
        SeverityOrigin::Vendor => "other",
    };
    let mut r = json!({ "source": { "name": source }, "severity": s.label.as_str(), "method": method });
    if let Some(score) = s.score.filter(|x| x.is_finite()) {
        r["score"] = json!(score);
    }
    if let Some(v) = &s.vector {
        r["vector"] = json!(v);
    }
    if let Some(word) = &s.vendor {
        r["justification"] = json!(format!("the distribution rates it {word}"));
    }
    r
}

/// The analysis, response and recommendation a version match supports.
fn analysis(f: &Finding) -> (Value, Option<String>) {
    let fixed = f.fixed_version.as_deref();
    let (state, detail, recommendation) = match (f.status, f.kernel) {
        (Status::LowUrgency, _) => (
            "in_triage",
            "the installed version is affected; the distribution rates it low urgency and may not fix it".to_owned(),
            fixed.map(|v| format!("Upgrade {} to {v} or later", f.package)),
        ),
        (_, true) => (
            "in_triage",
            "an installed kernel package is affected; only the kernel the instance runs is exposed".to_owned(),
            fixed.map(|v| format!("Boot a kernel of {} {v} or later", f.package)),
        ),
        (Status::Fixed, false) => (
            "exploitable",
            format!("the installed version {} is in an affected range", f.version),
            fixed.map(|v| format!("Upgrade {} to {v} or later", f.package)),
        ),
        (Status::FixInPaidStream, false) => (
            "exploitable",
            format!("the installed version {} is in an affected range; the fix is in a paid stream", f.version),
            fixed.map(|v| format!("Upgrade {} to {v} or later from the paid stream ({})", f.package, f.ecosystem)),
        ),
        (Status::Unfixed, false) => (
            "exploitable",
            format!("the installed version {} is in an affected range; no fix is published", f.version),
            Some(format!("No fixed version of {} is published yet", f.package)),
        ),
    };
    let mut a = json!({ "state": state, "detail": detail });
    if fixed.is_some() && matches!(f.status, Status::Fixed | Status::FixInPaidStream) {
        a["response"] = json!(["update"]);
    }
    (a, recommendation)
}

/// One vulnerability entry in the making.
struct Entry {
    value: Value,
    refs: Vec<String>,
    references: Vec<String>,
}

/// The CycloneDX 1.6 VEX document of `report`, its `affects` pointing into `sbom` (the same
/// volume's SBOM, as `scanner_ami::sbom` writes it). Installed packages the SBOM does not list
/// keep their entry, without `affects`, with `agentless:installed` naming them.
///
/// # Errors
///
/// The SBOM is not CycloneDX or lacks the serial number or version a BOM-Link needs.
pub fn vex_document(report: &VulnReport, sbom: &Value) -> Result<Value, VexError> {
    let id = SbomId::of(sbom)?;
    let index = component_index(sbom);
    let mut entries: BTreeMap<(String, String, String), Entry> = BTreeMap::new();
    for f in &report.findings {
        let mut refs = Vec::new();
        let mut missing = Vec::new();
        for i in &f.installed {
            let found: Vec<&str> = index
                .get(&(i.name.as_str(), i.version.as_str()))
                .into_iter()
                .flatten()
                .filter(|(arch, _)| i.arch.is_none() || arch.is_none() || *arch == i.arch.as_deref())
                .map(|(_, r)| *r)
                .collect();
            if found.is_empty() {
                missing.push(format!("{}@{}", i.name, i.version));
            }
            refs.extend(found.into_iter().map(|r| id.link(r)));
        }
        let ids: Vec<&str> =
            if f.cves.is_empty() { vec![f.id.as_str()] } else { f.cves.iter().map(String::as_str).collect() };
        let advisories: Vec<&String> = std::iter::once(&f.id).chain(&f.also).chain(&f.aliases).collect();
        for vid in ids {
            let references = advisories.iter().filter(|r| r.as_str() != vid).map(|r| (*r).clone());
            let key = (vid.to_owned(), f.ecosystem.clone(), f.package.clone());
            if let Some(e) = entries.get_mut(&key) {
                // The same CVE through another advisory of the same package: one entry, both named.
                e.references.extend(references);
                e.refs.extend(refs.iter().cloned());
                continue;
            }
            let value = entry(f, vid, &missing);
            entries.insert(key, Entry { value, refs: refs.clone(), references: references.collect() });
        }
    }
    let vulnerabilities: Vec<Value> = entries
        .into_values()
        .map(|mut e| {
            e.refs.sort();
            e.refs.dedup();
            e.references.sort();
            e.references.dedup();
            if !e.refs.is_empty() {
                e.value["affects"] = e.refs.iter().map(|r| json!({ "ref": r })).collect();
            }
            if !e.references.is_empty() {
                let source = e.value["source"].clone();
                e.value["references"] = e.references.iter().map(|r| json!({ "id": r, "source": source })).collect();
            }
            e.value
        })
        .collect();
    let mut metadata = json!({
        "tools": { "components": [{
            "type": "application",
            "group": "agentless",
            "name": "agentless",
            "version": env!("CARGO_PKG_VERSION"),
        }]},
    });
    if let Some(t) = timestamp(Some(&report.generated_at)) {
        metadata["timestamp"] = json!(t);
    }
    if let Some(c) = sbom.get("metadata").and_then(|m| m.get("component")) {
        metadata["component"] = c.clone();
    }
    Ok(json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "version": 1,
        "metadata": metadata,
        "vulnerabilities": vulnerabilities,
    }))
}

/// The entry of vulnerability `vid` of finding `f`, without `affects` and `references`.
fn entry(f: &Finding, vid: &str, missing: &[String]) -> Value {
    let (analysis, recommendation) = analysis(f);
    let mut v = json!({
        "bom-ref": format!("{vid}/{}/{}", f.ecosystem, f.package),
        "id": vid,
        "source": { "name": f.source },
        "analysis": analysis,
    });
    if let Some(s) = &f.severity {
        v["ratings"] = json!([rating(s, &f.source)]);
    }
    if let Some(d) = f.summary.as_deref().filter(|d| !d.is_empty()) {
        v["description"] = json!(d);
    }
    if let Some(t) = timestamp(f.published.as_deref()) {
        v["published"] = json!(t);
    }
    if let Some(t) = timestamp(Some(&f.modified)) {
        v["updated"] = json!(t);
    }
    if let Some(r) = recommendation {
        v["recommendation"] = json!(r);
    }
    let mut props = vec![
        json!({ "name": "agentless:advisory", "value": f.id }),
        json!({ "name": "agentless:status", "value": f.status.as_str() }),
        json!({ "name": "agentless:ecosystem", "value": f.ecosystem }),
        json!({ "name": "agentless:package", "value": f.package }),
        json!({ "name": "agentless:version", "value": f.version }),
    ];
    if let Some(fixed) = &f.fixed_version {
        props.push(json!({ "name": "agentless:fixed-version", "value": fixed }));
    }
    props.extend(missing.iter().map(|m| json!({ "name": "agentless:installed", "value": m })));
    v["properties"] = Value::Array(props);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vuln::findings::{Installed, SeverityLabel};

    fn sbom() -> Value {
        json!({
            "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "serialNumber": "urn:uuid:3E671687-395B-41F5-A30F-A58921A69B79",
            "metadata": { "component": { "type": "application", "bom-ref": "target", "name": "vol" } },
            "components": [
                { "type": "operating-system", "bom-ref": "os:almalinux-9.1", "name": "alma", "version": "9.1" },
                { "type": "library", "name": "openssl-libs", "version": "1:3.0.1-46.el9_0",
                  "bom-ref": "pkg:rpm/almalinux/openssl-libs@3.0.1-46.el9_0?arch=x86_64&epoch=1",
                  "purl": "pkg:rpm/almalinux/openssl-libs@3.0.1-46.el9_0?arch=x86_64&epoch=1" },
                { "type": "library", "name": "openssl-libs", "version": "1:3.0.1-46.el9_0",
                  "bom-ref": "/other/db:pkg:rpm/almalinux/openssl-libs@3.0.1-46.el9_0?arch=i686&epoch=1",
                  "purl": "pkg:rpm/almalinux/openssl-libs@3.0.1-46.el9_0?arch=i686&epoch=1" },
            ],
        })
    }

    fn finding(status: Status) -> Finding {
        Finding {
            id: "ALSA-2023:0946".into(),
            cves: vec!["CVE-2022-4203".into(), "CVE-2022-4304".into()],
            aliases: vec![],
            also: vec![],
            ecosystem: "AlmaLinux:9".into(),
            package: "openssl-libs".into(),
            version: "1:3.0.1-46.el9_0".into(),
            installed: vec![
                Installed {
                    name: "openssl-libs".into(),
                    version: "1:3.0.1-46.el9_0".into(),
                    arch: Some("x86_64".into()),
                },
                Installed { name: "gone".into(), version: "1".into(), arch: None },
            ],
            fixed_version: Some("1:3.0.1-47.el9_1".into()),
            status,
            severity: Some(Severity {
                label: SeverityLabel::High,
                score: Some(7.5),
                vector: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N".into()),
                origin: SeverityOrigin::CvssV3,
                vendor: None,
            }),
            summary: Some("Important: openssl security update".into()),
            source: "almalinux-osv".into(),
            published: Some("2023-02-28T10:00:00+00:00".into()),
            modified: "2023-03-01T00:00:00Z".into(),
            age_days: None,
            kernel: false,
        }
    }

    #[test]
    fn links_point_at_the_sbom_refs_with_the_right_arch() {
        let mut r = VulnReport::new(None, "2026-12-08T00:00:00Z".into());
        r.findings.push(finding(Status::Fixed));
        let vex = vex_document(&r, &sbom()).expect("vex");
        let vulns = vex["vulnerabilities"].as_array().expect("vulnerabilities");
        assert_eq!(vulns.len(), 2, "one entry per CVE");
        let v = &vulns[0];
        assert_eq!(v["id"], "CVE-2022-4203");
        assert_eq!(
            v["affects"],
            json!([{ "ref": "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#pkg%3Arpm%2Falmalinux%2Fopenssl-libs%403.0.1-46.el9_0%3Farch%3Dx86_64%26epoch%3D1" }])
        );
        assert_eq!(
            v["analysis"],
            json!({ "state": "exploitable", "detail": "the installed version 1:3.0.1-46.el9_0 is in an affected range", "response": ["update"] })
        );
        assert_eq!(v["recommendation"], "Upgrade openssl-libs to 1:3.0.1-47.el9_1 or later");
        assert_eq!(v["references"], json!([{ "id": "ALSA-2023:0946", "source": { "name": "almalinux-osv" } }]));
        assert_eq!(v["ratings"][0]["method"], "CVSSv31");
        assert_eq!(v["published"], "2023-02-28T10:00:00Z");
        let props = v["properties"].as_array().expect("properties");
        assert!(props.contains(&json!({ "name": "agentless:installed", "value": "gone@1" })));
    }

    #[test]
    fn states_follow_the_status() {
        let state = |status: Status, kernel: bool| {
            let mut f = finding(status);
            f.kernel = kernel;
            analysis(&f).0["state"].as_str().map(str::to_owned)
        };
        assert_eq!(state(Status::Fixed, false).as_deref(), Some("exploitable"));
        assert_eq!(state(Status::Unfixed, false).as_deref(), Some("exploitable"));
        assert_eq!(state(Status::FixInPaidStream, false).as_deref(), Some("exploitable"));
        assert_eq!(state(Status::LowUrgency, false).as_deref(), Some("in_triage"));
        assert_eq!(state(Status::Fixed, true).as_deref(), Some("in_triage"));
        let mut f = finding(Status::Unfixed);
        f.fixed_version = None;
        let (a, rec) = analysis(&f);
        assert!(a.get("response").is_none());
        assert_eq!(rec.as_deref(), Some("No fixed version of openssl-libs is published yet"));
    }

    #[test]
    fn an_sbom_without_identity_is_refused() {
        let r = VulnReport::new(None, String::new());
        let mut s = sbom();
        s["serialNumber"] = json!("not-a-uuid");
        assert!(matches!(vex_document(&r, &s), Err(VexError::Serial(_))));
        s["serialNumber"] = json!("urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79");
        s["version"] = json!(0);
        assert!(matches!(vex_document(&r, &s), Err(VexError::Version(_))));
        assert!(matches!(vex_document(&r, &json!({ "spdxVersion": "SPDX-2.3" })), Err(VexError::NotCycloneDx(_))));
    }
}
