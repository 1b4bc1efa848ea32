//! The result of matching one volume's inventory against the advisory database: the findings,
//! what was and was not assessed (and why), and the versioned `vulns.json` document that carries
//! them.
//!
//! Schema `agentless.vulns/v1`. Additive changes keep the version; renaming or removing a field,
//! or changing its meaning, bumps it.
//!
//! Coverage is explicit: every package set the agent read (each package database) appears in
//! [`VulnReport::coverage`], either assessed against named ecosystems and advisory sources of a
//! stated age, or not assessed with the reason. A report never implies "no vulnerabilities" for a
//! package set nobody looked at: [`VulnReport::assessed`] is false when nothing was assessed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema identifier written in every `vulns.json`.
pub const SCHEMA: &str = "agentless.vulns/v1";

/// File name of the report beside `inventory.json` in a volume's result directory.
pub const FILE_NAME: &str = "vulns.json";

/// What a finding means for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A fixed version is published in the free stream: upgrading fixes it.
    Fixed,
    /// Affected and no fix is published (yet, or ever).
    Unfixed,
    /// The only fix is in a paid stream (Ubuntu Pro / ESM) the host may not be entitled to.
    FixInPaidStream,
    /// The distribution rates it as not worth fixing (Debian "unimportant", Ubuntu "negligible").
    /// Kept in the JSON, hidden from the default views.
    LowUrgency,
}

impl Status {
    /// Shown by default (everything but [`Status::LowUrgency`]).
    #[must_use]
    pub fn visible_by_default(self) -> bool {
        self != Status::LowUrgency
    }

    /// The JSON spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fixed => "fixed",
            Status::Unfixed => "unfixed",
            Status::FixInPaidStream => "fix-in-paid-stream",
            Status::LowUrgency => "low-urgency",
        }
    }
}

/// A qualitative severity, CVSS's scale (with `unknown` when no rating was published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeverityLabel {
    Unknown,
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityLabel {
    /// The JSON spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLabel::Unknown => "unknown",
            SeverityLabel::None => "none",
            SeverityLabel::Low => "low",
            SeverityLabel::Medium => "medium",
            SeverityLabel::High => "high",
            SeverityLabel::Critical => "critical",
        }
    }

    /// CVSS v3/v4's qualitative rating of a base score (FIRST CVSS v3.1 specification §5).
    #[must_use]
    pub fn from_cvss3_score(score: f64) -> SeverityLabel {
        if score <= 0.0 {
            SeverityLabel::None
        } else if score < 4.0 {
            SeverityLabel::Low
        } else if score < 7.0 {
            SeverityLabel::Medium
        } else if score < 9.0 {
            SeverityLabel::High
        } else {
            SeverityLabel::Critical
        }
    }

    /// NVD's rating of a CVSS v2 base score (v2 defines no qualitative scale of its own):
    /// low 0.0-3.9, medium 4.0-6.9, high 7.0-10.0.
    #[must_use]
    pub fn from_cvss2_score(score: f64) -> SeverityLabel {
        if score < 4.0 {
            SeverityLabel::Low
        } else if score < 7.0 {
            SeverityLabel::Medium
        } else {
            SeverityLabel::High
        }
    }
}

/// Where a severity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeverityOrigin {
    /// Computed from a CVSS v3.x base vector.
    CvssV3,
    /// Computed from a CVSS v2 base vector.
    CvssV2,
    /// The distribution's own rating: Ubuntu priority, Debian urgency, the Red Hat-style
    /// `Important:` prefix of an erratum's summary, or a database's `severity` field.
    Vendor,
    /// A CVSS v4 vector was published but no rating: v4 scores are not computed here.
    CvssV4Unscored,
}

/// A finding's severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Severity {
    pub label: SeverityLabel,
    /// The CVSS base score, when computed from a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The CVSS vector, when one was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
    pub origin: SeverityOrigin,
    /// The vendor's own word, when the label came from it (`Important`, `negligible`, `unimportant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
}

/// One installed package a finding is about (for Debian and Ubuntu, every binary package built
/// from the affected source package; for kernels, every package of that kernel version).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    /// The version as the ecosystem's tools print it (`[epoch:]version[-release]`).
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

/// One advisory affecting one installed package (source package, for Debian, Ubuntu and Alpine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The advisory's identifier (`ALSA-2023:0946`, `DSA-5532-1`, `CVE-2016-9587`...).
    pub id: String,
    /// The CVE identifiers it covers (from `aliases`, `upstream` and `related`), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    /// The record's other aliases (non-CVE), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Other advisories for the same package whose CVEs are all covered by this and the package's
    /// other findings (a DSA and its per-CVE records), folded in here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    /// The OSV ecosystem of the matching entry (`Debian:12`, `Ubuntu:Pro:18.04:LTS`...).
    pub ecosystem: String,
    /// The package name the advisory names: the source package for Debian, Ubuntu and Alpine
    /// (`postgresql-common`, `linux`), the binary package for the RPM family.
    pub package: String,
    /// The version compared with the advisory (the source version for Debian and Ubuntu).
    pub version: String,
    /// The installed packages this finding covers.
    pub installed: Vec<Installed>,
    /// The first fixed version above the installed one (in the paid stream for
    /// [`Status::FixInPaidStream`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The advisory source(s) the record was imported from.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    pub modified: String,
    /// Whole days from publication (or, without it, the last modification) to the match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i64>,
    /// The package is a kernel: several may be installed and only the running one matters.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kernel: bool,
}

/// Whether a package set was assessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoverageStatus {
    Assessed,
    NotAssessed,
}

/// One advisory source behind an assessment, and how old its data is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceAge {
    pub name: String,
    pub ecosystem: String,
    pub records: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_at: Option<String>,
    /// The newest `modified` time among its records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_modified: Option<String>,
    /// Whole days from the import to the match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i64>,
}

/// What was done with one package set (one package database the agent read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// The database's format as the inventory names it (`dpkg-status`, `rpm-sqlite`, `apk-installed`).
    pub format: String,
    /// Its path inside the scanned filesystem.
    pub path: String,
    /// Packages the inventory lists from it.
    pub packages: usize,
    pub status: CoverageStatus,
    /// Why it was not assessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The ecosystems it was matched against (free stream first, then the paid one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecosystems: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceAge>,
    /// Packages whose lookup or comparison failed (each one is in [`VulnReport::errors`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub packages_failed: usize,
    /// The agent could read the database only partly: the assessment covers what it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The scanned OS, as the inventory names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsSummary {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// Counts over the findings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Findings shown by default (all but low urgency).
    pub visible: usize,
    /// Low-urgency findings, kept in the JSON and hidden by default.
    pub hidden_low_urgency: usize,
    /// Per status (`fixed`, `unfixed`...), all findings.
    pub by_status: BTreeMap<String, usize>,
    /// Per severity label, visible findings only.
    pub by_severity: BTreeMap<String, usize>,
}

/// `vulns.json`: one volume's vulnerability report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnReport {
    pub schema: String,
    /// When the match ran (RFC 3339).
    pub generated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsSummary>,
    /// At least one package set was assessed. False means the findings list says nothing about
    /// the volume's exposure.
    pub assessed: bool,
    pub coverage: Vec<Coverage>,
    pub counts: Counts,
    pub findings: Vec<Finding>,
    /// Problems met while matching (a package or record that could not be evaluated), at most
    /// [`MAX_ERROR_NOTES`]; `errors_total` has the exact count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors_total: usize,
}

/// Most error notes kept in one report: a damaged database could otherwise produce one per
/// package and record (the inventory's own skip-note bound, `scanner_ami::inventory::MAX_SKIP_NOTES`,
/// is the same figure).
pub const MAX_ERROR_NOTES: usize = 100;

impl VulnReport {
    /// An empty report for `os`, generated at `generated_at`.
    #[must_use]
    pub fn new(os: Option<OsSummary>, generated_at: String) -> VulnReport {
        VulnReport {
            schema: SCHEMA.to_owned(),
            generated_at,
            os,
            assessed: false,
            coverage: Vec::new(),
            counts: Counts::default(),
            findings: Vec::new(),
            errors: Vec::new(),
            errors_total: 0,
        }
    }

    /// Record a problem, keeping at most [`MAX_ERROR_NOTES`] notes (the total stays exact).
    pub fn note_error(&mut self, note: String) {
        self.errors_total = self.errors_total.saturating_add(1);
        if self.errors.len() < MAX_ERROR_NOTES {
            self.errors.push(note);
        }
    }

    /// Sort the findings (package, then id) and recompute [`VulnReport::counts`] and
    /// [`VulnReport::assessed`].
    pub fn finish(&mut self) {
        self.findings.sort_by(|a, b| {
            (a.package.as_str(), a.version.as_str(), a.id.as_str()).cmp(&(
                b.package.as_str(),
                b.version.as_str(),
                b.id.as_str(),
            ))
        });
        self.assessed = self.coverage.iter().any(|c| c.status == CoverageStatus::Assessed);
        let mut counts = Counts::default();
        for f in &self.findings {
            *counts.by_status.entry(f.status.as_str().to_owned()).or_default() += 1;
            if f.status.visible_by_default() {
                counts.visible += 1;
                let label = f.severity.as_ref().map_or(SeverityLabel::Unknown, |s| s.label);
                *counts.by_severity.entry(label.as_str().to_owned()).or_default() += 1;
            } else {
                counts.hidden_low_urgency += 1;
            }
        }
        self.counts = counts;
    }

    /// The findings shown by default (low urgency hidden).
    pub fn visible(&self) -> impl Iterator<Item = &Finding> + '_ {
        self.findings.iter().filter(|f| f.status.visible_by_default())
    }

    /// Parse a `vulns.json`, refusing another schema.
    ///
    /// # Errors
    ///
    /// Not JSON of this shape, or another schema identifier.
    pub fn from_json(bytes: &[u8]) -> Result<VulnReport, ReportError> {
        let report: VulnReport = serde_json::from_slice(bytes).map_err(ReportError::Json)?;
        if report.schema != SCHEMA {
            return Err(ReportError::Schema(report.schema));
        }
        Ok(report)
    }
}

/// A `vulns.json` that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("vulns.json is not valid: {0}")]
    Json(serde_json::Error),
    #[error("vulns.json has schema {0:?}, expected {SCHEMA:?}")]
    Schema(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, status: Status, label: Option<SeverityLabel>) -> Finding {
        Finding {
            id: id.to_owned(),
            cves: vec![],
            aliases: vec![],
            also: vec![],
            ecosystem: "Debian:12".into(),
            package: "openssl".into(),
            version: "3.0.11-1~deb12u1".into(),
            installed: vec![Installed { name: "libssl3".into(), version: "3.0.11-1~deb12u1".into(), arch: None }],
            fixed_version: None,
            status,
            severity: label.map(|label| Severity {
                label,
                score: None,
                vector: None,
                origin: SeverityOrigin::Vendor,
                vendor: None,
            }),
            summary: None,
            source: "debian".into(),
            published: None,
            modified: "2024-01-01T00:00:00Z".into(),
            age_days: None,
            kernel: false,
        }
    }

    #[test]
    fn counts_hide_low_urgency_but_keep_it() {
        let mut r = VulnReport::new(None, "2024-01-02T00:00:00Z".into());
        r.findings.push(finding("B", Status::LowUrgency, Some(SeverityLabel::Low)));
        r.findings.push(finding("A", Status::Fixed, Some(SeverityLabel::High)));
        r.findings.push(finding("C", Status::FixInPaidStream, None));
        r.finish();
        assert!(!r.assessed, "no coverage entry: nothing assessed");
        assert_eq!(r.findings.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["A", "B", "C"]);
        assert_eq!(r.counts.visible, 2);
        assert_eq!(r.counts.hidden_low_urgency, 1);
        assert_eq!(r.counts.by_status.get("low-urgency"), Some(&1));
        assert_eq!(r.counts.by_status.get("fix-in-paid-stream"), Some(&1));
        assert_eq!(r.counts.by_severity.get("high"), Some(&1));
        assert_eq!(r.counts.by_severity.get("unknown"), Some(&1));
        assert_eq!(r.counts.by_severity.get("low"), None, "hidden findings are not in the severity counts");
        assert_eq!(r.visible().count(), 2);
    }

    #[test]
    fn json_round_trip_and_spellings() {
        let mut r = VulnReport::new(
            Some(OsSummary { id: "debian".into(), version_id: Some("12".into()) }),
            "2024-01-02T00:00:00Z".into(),
        );
        r.coverage.push(Coverage {
            format: "dpkg-status".into(),
            path: "/var/lib/dpkg/status".into(),
            packages: 3,
            status: CoverageStatus::NotAssessed,
            reason: Some("no records".into()),
            ecosystems: vec![],
            sources: vec![],
            packages_failed: 0,
            inventory_error: None,
        });
        r.findings.push(finding("DSA-1", Status::FixInPaidStream, Some(SeverityLabel::Critical)));
        r.finish();
        let json = serde_json::to_value(&r).expect("serialise");
        assert_eq!(json["schema"], "agentless.vulns/v1");
        assert_eq!(json["coverage"][0]["status"], "not-assessed");
        assert_eq!(json["findings"][0]["status"], "fix-in-paid-stream");
        assert_eq!(json["findings"][0]["severity"]["label"], "critical");
        assert!(json["findings"][0].get("kernel").is_none(), "false flags are omitted");
        let back = VulnReport::from_json(&serde_json::to_vec(&r).expect("bytes")).expect("parse");
        assert_eq!(back, r);
        let mut other = json.clone();
        other["schema"] = "agentless.vulns/v9".into();
        assert!(matches!(
            VulnReport::from_json(&serde_json::to_vec(&other).expect("bytes")),
            Err(ReportError::Schema(s)) if s == "agentless.vulns/v9"
        ));
    }

    #[test]
    fn error_notes_are_bounded() {
        let mut r = VulnReport::new(None, String::new());
        for i in 0..(MAX_ERROR_NOTES + 5) {
            r.note_error(format!("e{i}"));
        }
        assert_eq!(r.errors.len(), MAX_ERROR_NOTES);
        assert_eq!(r.errors_total, MAX_ERROR_NOTES + 5);
    }

    #[test]
    fn cvss_labels_follow_the_specification_boundaries() {
        let l = SeverityLabel::from_cvss3_score;
        assert_eq!(
            [l(0.0), l(0.1), l(3.9), l(4.0), l(6.9), l(7.0), l(8.9), l(9.0), l(10.0)],
            [
                SeverityLabel::None,
                SeverityLabel::Low,
                SeverityLabel::Low,
                SeverityLabel::Medium,
                SeverityLabel::Medium,
                SeverityLabel::High,
                SeverityLabel::High,
                SeverityLabel::Critical,
                SeverityLabel::Critical
            ]
        );
        let l2 = SeverityLabel::from_cvss2_score;
        assert_eq!(
            [l2(3.9), l2(4.0), l2(7.0), l2(10.0)],
            [SeverityLabel::Low, SeverityLabel::Medium, SeverityLabel::High, SeverityLabel::High]
        );
    }
}
