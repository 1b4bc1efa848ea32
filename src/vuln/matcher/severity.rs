//! A finding's severity from what the record publishes: a CVSS v3.x or v2 base vector (scored
//! here with the FIRST specifications' base equations), else the vendor's own rating (Ubuntu
//! priority, Debian urgency, a database's `severity` field, the `Important:` prefix Red Hat-style
//! errata put in their summary). CVSS v4 vectors are kept but not scored: v4's score comes from
//! a published lookup table of macro vectors rather than an equation.
//!
//! Also here: whether the distribution rates the issue as not worth fixing (Debian
//! "unimportant", Ubuntu "negligible"), which makes a finding low-urgency.

use serde_json::Value;

use crate::vuln::findings::{Severity, SeverityLabel, SeverityOrigin};
use crate::vuln::osv;

/// The severity of an `affected` entry of `record` (the entry's own severity list wins over the
/// record's, as the schema says the two are never both set).
#[must_use]
pub fn severity(record: &osv::Record, affected: &osv::Affected) -> Option<Severity> {
    let list = if affected.severity.is_empty() { &record.severity } else { &affected.severity };
    let vendor = vendor_rating(record, affected);
    let cvss = |kind: &str| list.iter().find(|s| s.kind == kind).map(|s| s.score.trim());
    if let Some(vector) = cvss("CVSS_V3")
        && let Some(score) = cvss3_base_score(vector)
    {
        return Some(Severity {
            label: SeverityLabel::from_cvss3_score(score),
            score: Some(score),
            vector: Some(vector.to_owned()),
            origin: SeverityOrigin::CvssV3,
            vendor: vendor.map(|(word, _)| word),
        });
    }
    if let Some(vector) = cvss("CVSS_V2")
        && let Some(score) = cvss2_base_score(vector)
    {
        return Some(Severity {
            label: SeverityLabel::from_cvss2_score(score),
            score: Some(score),
            vector: Some(vector.to_owned()),
            origin: SeverityOrigin::CvssV2,
            vendor: vendor.map(|(word, _)| word),
        });
    }
    match (vendor, cvss("CVSS_V4")) {
        (Some((word, label)), v4) => Some(Severity {
            label,
            score: None,
            vector: v4.map(str::to_owned),
            origin: SeverityOrigin::Vendor,
            vendor: Some(word),
        }),
        (None, Some(v4)) => Some(Severity {
            label: SeverityLabel::Unknown,
            score: None,
            vector: Some(v4.to_owned()),
            origin: SeverityOrigin::CvssV4Unscored,
            vendor: None,
        }),
        (None, None) => None,
    }
}

/// The distribution rates the issue as not worth fixing: Debian's `urgency: unimportant`, Ubuntu's
/// `negligible` priority (both hidden by default in osv-scanner, `vulnerability_result.go`).
#[must_use]
pub fn is_low_urgency(record: &osv::Record, affected: &osv::Affected) -> bool {
    let spec = affected.ecosystem_specific.as_ref();
    let urgency = spec.and_then(|s| s.get("urgency")).and_then(Value::as_str).map(str::to_ascii_lowercase);
    if urgency.as_deref().is_some_and(|u| u.trim_end_matches('*').trim() == "unimportant") {
        return true;
    }
    let priority = spec.and_then(|s| s.get("ubuntu_priority")).and_then(Value::as_str);
    let ubuntu_severity =
        record.severity.iter().chain(&affected.severity).find(|s| s.kind == "Ubuntu").map(|s| s.score.as_str());
    priority.or(ubuntu_severity).is_some_and(|p| p.eq_ignore_ascii_case("negligible"))
}

/// The vendor's own word and the label it maps to.
fn vendor_rating(record: &osv::Record, affected: &osv::Affected) -> Option<(String, SeverityLabel)> {
    let spec = affected.ecosystem_specific.as_ref();
    let ubuntu = spec.and_then(|s| s.get("ubuntu_priority")).and_then(Value::as_str).map(str::to_owned).or_else(|| {
        record.severity.iter().chain(&affected.severity).find(|s| s.kind == "Ubuntu").map(|s| s.score.clone())
    });
    let debian = spec.and_then(|s| s.get("urgency")).and_then(Value::as_str).map(str::to_owned);
    let database =
        [affected.database_specific.as_ref(), affected.ecosystem_specific.as_ref(), record.database_specific.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|v| v.get("severity").and_then(Value::as_str).map(str::to_owned));
    let summary = record.summary.as_deref().and_then(|s| s.split_once(':')).map(|(word, _)| word.trim().to_owned());
    [ubuntu, debian, database, summary].into_iter().flatten().find_map(|word| label_of_word(&word).map(|l| (word, l)))
}

/// The label of a vendor's word (case-insensitive; Debian's `low**` marks are ignored).
fn label_of_word(word: &str) -> Option<SeverityLabel> {
    let w = word.trim().trim_end_matches('*').to_ascii_lowercase();
    Some(match w.as_str() {
        "negligible" | "unimportant" | "low" => SeverityLabel::Low,
        "medium" | "moderate" => SeverityLabel::Medium,
        "high" | "important" => SeverityLabel::High,
        "critical" => SeverityLabel::Critical,
        "none" => SeverityLabel::None,
        _ => return None,
    })
}

/// The metrics of a CVSS vector (`KEY:VALUE/KEY:VALUE`), the `CVSS:3.x` prefix excluded. `None`
/// when a part is not `KEY:VALUE` or a key repeats.
fn metrics(vector: &str) -> Option<Vec<(&str, &str)>> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for part in vector.split('/') {
        let (k, v) = part.split_once(':')?;
        if k == "CVSS" {
            continue;
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return None;
        }
        out.push((k, v));
    }
    Some(out)
}

/// The CVSS v3.0 / v3.1 base score of a vector (`CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`),
/// by the v3.1 specification's equations (§7.1) and `Roundup` (Appendix A); `None` when a base
/// metric is missing or has an unknown value.
#[must_use]
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    if !vector.starts_with("CVSS:3.") {
        return None;
    }
    let m = metrics(vector)?;
    let get = |k: &str| m.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let scope_changed = match get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av: f64 = match get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac: f64 = match get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr: f64 = match (get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui: f64 = match get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match get(k)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02_f64).powi(15) } else { 6.42 * iss };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed { 1.08 * (impact + exploitability) } else { impact + exploitability };
    Some(roundup(raw.min(10.0)))
}

/// CVSS v3.1 `Roundup`: the smallest one-decimal number at or above the input, computed on
/// integers so that 4.000000000000001 gives 4.0 and not 4.1 (specification Appendix A).
fn roundup(x: f64) -> f64 {
    let int_input = (x * 100_000.0).round();
    if int_input % 10_000.0 == 0.0 { int_input / 100_000.0 } else { ((int_input / 10_000.0).floor() + 1.0) / 10.0 }
}

/// The CVSS v2 base score of a vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`), by the v2 guide's base
/// equation (§3.2.1); `None` when a base metric is missing or unknown.
#[must_use]
pub fn cvss2_base_score(vector: &str) -> Option<f64> {
    let m = metrics(vector.trim_start_matches("(").trim_end_matches(")"))?;
    let get = |k: &str| m.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let av: f64 = match get("AV")? {
        "L" => 0.395,
        "A" => 0.646,
        "N" => 1.0,
        _ => return None,
    };
    let ac: f64 = match get("AC")? {
        "H" => 0.35,
        "M" => 0.61,
        "L" => 0.71,
        _ => return None,
    };
    let au: f64 = match get("Au")? {
        "M" => 0.45,
        "S" => 0.56,
        "N" => 0.704,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match get(k)? {
            "N" => Some(0.0),
            "P" => Some(0.275),
            "C" => Some(0.660),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let impact = 10.41 * (1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a));
    let exploitability = 20.0 * av * ac * au;
    let f: f64 = if impact == 0.0 { 0.0 } else { 1.176 };
    let score = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f;
    Some((score * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss3_scores_match_published_nvd_scores() {
        // Scores as NVD publishes them for these CVEs' v3.1 vectors.
        for (vector, want) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8), // CVE-2021-44228's base metrics without S:C
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0), // CVE-2021-44228
            ("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H", 5.5), // CVE-2024-0727 (Ubuntu record)
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.8), // the schema's GHSA example
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5), // CVE-2023-0286-style DoS
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4), // stored XSS, scope changed
            ("CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ] {
            assert_eq!(cvss3_base_score(vector), Some(want), "{vector}");
        }
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H"), None, "A missing");
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), None);
        assert_eq!(cvss3_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P"), None, "a v2 vector");
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), None, "repeated key");
    }

    #[test]
    fn cvss3_roundup_avoids_floating_point_surprises() {
        assert_eq!(roundup(4.000_000_000_000_001), 4.0);
        assert_eq!(roundup(4.02), 4.1);
        assert_eq!(roundup(4.0), 4.0);
    }

    #[test]
    fn cvss2_scores_match_published_nvd_scores() {
        for (vector, want) in [
            ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
            ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0),
            ("AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3),
            ("AV:L/AC:L/Au:N/C:P/I:N/A:N", 2.1),
            ("AV:N/AC:L/Au:N/C:N/I:N/A:N", 0.0),
        ] {
            assert_eq!(cvss2_base_score(vector), Some(want), "{vector}");
        }
        assert_eq!(cvss2_base_score("AV:N/AC:L/Au:N/C:P/I:P"), None);
    }

    fn record(json: serde_json::Value) -> (osv::Record, osv::Affected) {
        let r: osv::Record = serde_json::from_value(json).expect("record");
        let a = r.affected.first().cloned().expect("affected");
        (r, a)
    }

    #[test]
    fn severity_prefers_cvss_then_the_vendor() {
        let (r, a) = record(serde_json::json!({
            "id": "CVE-2024-0727", "modified": "2024-08-23T16:30:37Z",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H"}],
            "affected": [{"package": {"ecosystem": "Ubuntu:20.04:LTS", "name": "openssl"},
                          "ecosystem_specific": {"ubuntu_priority": "low"}}]
        }));
        let s = severity(&r, &a).expect("severity");
        assert_eq!((s.label, s.score, s.origin), (SeverityLabel::Medium, Some(5.5), SeverityOrigin::CvssV3));
        assert_eq!(s.vendor.as_deref(), Some("low"));
        assert!(!is_low_urgency(&r, &a));

        let (r, a) = record(serde_json::json!({
            "id": "ALSA-2023:0946", "modified": "2023-02-28T19:45:58Z",
            "summary": "Moderate: openssl security and bug fix update",
            "affected": [{"package": {"ecosystem": "AlmaLinux:9", "name": "openssl"}}]
        }));
        let s = severity(&r, &a).expect("severity");
        assert_eq!(
            (s.label, s.origin, s.vendor.as_deref()),
            (SeverityLabel::Medium, SeverityOrigin::Vendor, Some("Moderate"))
        );

        let (r, a) = record(serde_json::json!({
            "id": "GHSA-x", "modified": "2021-03-08T16:02:43Z",
            "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N"}],
            "affected": [{"package": {"ecosystem": "npm", "name": "x"}}],
            "database_specific": {"severity": "MODERATE"}
        }));
        let s = severity(&r, &a).expect("severity");
        assert_eq!((s.label, s.origin), (SeverityLabel::Medium, SeverityOrigin::Vendor));
        assert!(s.vector.as_deref().is_some_and(|v| v.starts_with("CVSS:4.0")));

        let (r, a) = record(serde_json::json!({
            "id": "X", "modified": "2021-03-08T16:02:43Z",
            "affected": [{"package": {"ecosystem": "npm", "name": "x"}}]
        }));
        assert_eq!(severity(&r, &a), None);
    }

    #[test]
    fn low_urgency_from_debian_and_ubuntu_ratings() {
        let (r, a) = record(serde_json::json!({
            "id": "DEBIAN-CVE-2023-1", "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                          "ecosystem_specific": {"urgency": "unimportant"}}]
        }));
        assert!(is_low_urgency(&r, &a));
        assert_eq!(severity(&r, &a).map(|s| s.label), Some(SeverityLabel::Low));
        let (r, a) = record(serde_json::json!({
            "id": "UBUNTU-CVE-2023-1", "modified": "2024-01-01T00:00:00Z",
            "severity": [{"type": "Ubuntu", "score": "negligible"}],
            "affected": [{"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "glibc"}}]
        }));
        assert!(is_low_urgency(&r, &a));
        let (r, a) = record(serde_json::json!({
            "id": "DEBIAN-CVE-2023-2", "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                          "ecosystem_specific": {"urgency": "low"}}]
        }));
        assert!(!is_low_urgency(&r, &a));
    }
}
