//! Assessing stored results: for each scanned volume's `inventory.json` in the
//! result store, match it against the data directory's advisory database and write `vulns.json`
//! beside it with its CycloneDX VEX (`vex.cdx.json`, linked to the volume's `sbom.cdx.json`), atomically. Used after a job's collection, by `agentless vulns rescan` and by the
//! daemon after a scheduled database update.
//!
//! One [`Assessor`] holds the database (or why there is none) and one [`Matcher`] per call of
//! [`Assessor::assess_dirs`], so the matcher's caches serve every volume of a job. Everything here
//! blocks (SQLite, files): async callers run it under `spawn_blocking`.
//!
//! Coverage stays honest when there is no usable database: every package set is reported "not
//! assessed" with the reason (missing, unreadable, empty), never as zero findings.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::db::{self, AdvisoryDb};
use super::findings::{self, CoverageStatus, VulnReport};
use super::matcher::inventory::InventoryDoc;
use super::matcher::{MatchOptions, Matcher, MemorySource};

/// Largest `inventory.json` read for matching: the collector's own per-file bound on what an agent
/// uploads (`scanner_ami::bundle::BundleLimits::default().max_file_bytes`) is the same order; an
/// inventory of 10,000 packages is a few MiB.
pub const MAX_INVENTORY_BYTES: u64 = 64 * 1024 * 1024;

/// Largest `vulns.json` read back for summaries and queries: a report of a large host with
/// thousands of findings is a few MiB (same bound as the API's inline result files).
pub const MAX_VULNS_BYTES: u64 = 64 * 1024 * 1024;

/// Why a volume could not be assessed at all, as a bounded label (Prometheus label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotAssessedKind {
    /// No `vulndb.sqlite` in the data directory.
    NoDatabase,
    /// The database file exists but cannot be read (damaged, other schema version).
    DatabaseError,
    /// The database holds no source at all.
    EmptyDatabase,
    /// The database holds data for the OS, but it is older than the matcher accepts.
    Stale,
    /// No advisory source for this OS (not imported, or none published).
    NoSource,
    /// The volume has no package database (a data volume).
    NoPackages,
}

impl NotAssessedKind {
    /// The label spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NotAssessedKind::NoDatabase => "no-database",
            NotAssessedKind::DatabaseError => "database-error",
            NotAssessedKind::EmptyDatabase => "empty-database",
            NotAssessedKind::Stale => "stale",
            NotAssessedKind::NoSource => "no-source",
            NotAssessedKind::NoPackages => "no-packages",
        }
    }
}

/// What one volume's `vulns.json` says, in a line: the counts, or why it was not assessed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnCounts {
    /// At least one package set was assessed.
    pub assessed: bool,
    /// Findings shown by default (low urgency hidden).
    pub findings: usize,
    /// Per severity label (`critical`, `high`, ...), visible findings.
    pub by_severity: BTreeMap<String, usize>,
    /// Per status (`fixed`, `unfixed`, ...), all findings.
    pub by_status: BTreeMap<String, usize>,
    pub hidden_low_urgency: usize,
    /// When not assessed: the kind of reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_assessed: Option<NotAssessedKind>,
    /// When not assessed: the reason, as the report words it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl VulnCounts {
    /// The counts of a report.
    #[must_use]
    pub fn of(report: &VulnReport) -> VulnCounts {
        let (not_assessed, reason) = if report.assessed {
            (None, None)
        } else {
            let (kind, reason) = not_assessed_reason(report);
            (Some(kind), Some(reason))
        };
        VulnCounts {
            assessed: report.assessed,
            findings: report.counts.visible,
            by_severity: report.counts.by_severity.clone(),
            by_status: report.counts.by_status.clone(),
            hidden_low_urgency: report.counts.hidden_low_urgency,
            not_assessed,
            reason,
        }
    }

    /// One table cell: `3C 10H 20M 1L 2U` (critical, high, medium, low, unknown/none; zero counts
    /// left out), `0` when assessed with no finding, `-` for a volume without packages (nothing
    /// to assess), `not assessed: <why>` otherwise.
    #[must_use]
    pub fn cell(&self) -> String {
        if self.not_assessed == Some(NotAssessedKind::NoPackages) {
            return "-".to_owned();
        }
        if !self.assessed {
            return format!("not assessed: {}", self.reason.as_deref().unwrap_or("no package set was assessed"));
        }
        let n = |k: &str| self.by_severity.get(k).copied().unwrap_or(0);
        let parts: Vec<String> = [
            ("C", n("critical")),
            ("H", n("high")),
            ("M", n("medium")),
            ("L", n("low")),
            ("U", n("unknown") + n("none")),
        ]
        .iter()
        .filter(|(_, c)| *c > 0)
        .map(|(l, c)| format!("{c}{l}"))
        .collect();
        if parts.is_empty() { "0".to_owned() } else { parts.join(" ") }
    }
}

/// The kind and wording of why nothing in `report` was assessed.
fn not_assessed_reason(report: &VulnReport) -> (NotAssessedKind, String) {
    let os = report.os.as_ref().map_or_else(
        || "this volume".to_owned(),
        |o| format!("{}{}", o.id, o.version_id.as_deref().map(|v| format!(" {v}")).unwrap_or_default()),
    );
    let Some(first) = report.coverage.first() else {
        return (NotAssessedKind::NoPackages, "no package database on this volume".into());
    };
    if let Some(kind) = report.coverage.iter().find_map(|c| db_problem_kind(c.reason.as_deref())) {
        return (kind, first.reason.clone().unwrap_or_default());
    }
    // The matcher lists a source's age before refusing it as stale; a set without any source
    // listed had no data at all.
    if report.coverage.iter().any(|c| c.status == CoverageStatus::NotAssessed && !c.sources.is_empty()) {
        let reason = report.coverage.iter().find(|c| !c.sources.is_empty()).and_then(|c| c.reason.clone());
        return (NotAssessedKind::Stale, reason.unwrap_or_else(|| "stale advisory data".into()));
    }
    (NotAssessedKind::NoSource, format!("no advisory source for {os}"))
}

/// Prefix of the coverage reasons written when the database itself is unusable.
const NO_DB_PREFIX: &str = "no advisory database";
const DB_ERROR_PREFIX: &str = "the advisory database cannot be read";
const EMPTY_DB_PREFIX: &str = "the advisory database is empty";

fn db_problem_kind(reason: Option<&str>) -> Option<NotAssessedKind> {
    let r = reason?;
    if r.starts_with(NO_DB_PREFIX) {
        Some(NotAssessedKind::NoDatabase)
    } else if r.starts_with(DB_ERROR_PREFIX) {
        Some(NotAssessedKind::DatabaseError)
    } else if r.starts_with(EMPTY_DB_PREFIX) {
        Some(NotAssessedKind::EmptyDatabase)
    } else {
        None
    }
}

/// The advisory database of a data directory, or why it cannot be used.
#[derive(Debug)]
pub struct Assessor {
    db: Result<AdvisoryDb, String>,
    options: MatchOptions,
}

/// What one volume's assessment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessed {
    /// The volume's result directory.
    pub dir: PathBuf,
    pub counts: VulnCounts,
}

/// Why a volume's `vulns.json` could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AssessError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {size} bytes, over the {limit}-byte limit")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error("{path}: {source}")]
    Inventory { path: PathBuf, source: super::matcher::inventory::InventoryError },
    #[error("{path}: cannot serialise the report: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path}: no VEX document for this SBOM: {reason}")]
    Vex { path: PathBuf, reason: String },
}

/// The outcome of assessing several volumes.
#[derive(Debug, Default)]
pub struct AssessSummary {
    pub assessed: Vec<Assessed>,
    /// Volume directories without an `inventory.json` (not scanned): nothing written.
    pub skipped: usize,
    pub errors: Vec<AssessError>,
}

impl AssessSummary {
    /// Findings (visible) over all volumes, by severity.
    #[must_use]
    pub fn by_severity(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for a in &self.assessed {
            for (k, n) in &a.counts.by_severity {
                *out.entry(k.clone()).or_default() += n;
            }
        }
        out
    }

    /// Volumes assessed, and volumes not assessed.
    #[must_use]
    pub fn assessed_and_not(&self) -> (usize, usize) {
        let yes = self.assessed.iter().filter(|a| a.counts.assessed).count();
        (yes, self.assessed.len() - yes)
    }
}

impl Assessor {
    /// The database of `data_dir` (`vulndb.sqlite`), if usable, matched with default options.
    #[must_use]
    pub fn open(data_dir: &Path) -> Assessor {
        Assessor::open_with(data_dir, MatchOptions::default())
    }

    /// As [`Assessor::open`], with `options`.
    #[must_use]
    pub fn open_with(data_dir: &Path, options: MatchOptions) -> Assessor {
        let path = db::path_in(data_dir);
        let db = match AdvisoryDb::open(&path) {
            Ok(d) => match d.sources() {
                Ok(s) if s.iter().all(|s| s.records == 0) => Err(format!(
                    "{EMPTY_DB_PREFIX} ({}): import advisories with `agentless vulndb import` or `update`",
                    path.display()
                )),
                Ok(_) => Ok(d),
                Err(e) => Err(format!("{DB_ERROR_PREFIX}: {e}")),
            },
            Err(db::DbError::Missing { .. }) => Err(format!(
                "{NO_DB_PREFIX} at {}: import one with `agentless vulndb import` or `agentless vulndb update`",
                path.display()
            )),
            Err(e) => Err(format!("{DB_ERROR_PREFIX}: {e}")),
        };
        Assessor { db, options }
    }

    /// Why the database cannot be used, if it cannot.
    #[must_use]
    pub fn unusable(&self) -> Option<&str> {
        self.db.as_ref().err().map(String::as_str)
    }

    /// Match `inv` with `matcher` (or, without a database, report every set not assessed).
    fn report(&self, matcher: Option<&Matcher<'_>>, inv: &InventoryDoc, now: jiff::Timestamp) -> VulnReport {
        match (matcher, &self.db) {
            (Some(m), Ok(_)) => m.match_inventory(inv, now),
            (_, Err(why)) => {
                // Matching against nothing lists every package set with the ecosystems it would
                // need; the database's own problem is the reason for those the OS maps.
                let empty = MemorySource::new();
                let mut report = Matcher::new(&empty, self.options).match_inventory(inv, now);
                for c in &mut report.coverage {
                    if !c.ecosystems.is_empty() {
                        c.reason = Some(why.clone());
                    }
                }
                report
            }
            (None, Ok(db)) => Matcher::new(db, self.options).match_inventory(inv, now),
        }
    }

    /// Assess each volume directory (those holding an `inventory.json`) with one matcher, and
    /// write its `vulns.json`. `now` is the match time (RFC 3339 in the reports).
    #[must_use]
    pub fn assess_dirs(&self, dirs: &[PathBuf], now: jiff::Timestamp) -> AssessSummary {
        let matcher = self.db.as_ref().ok().map(|db| Matcher::new(db, self.options));
        let mut out = AssessSummary::default();
        for dir in dirs {
            match self.assess_one(matcher.as_ref(), dir, now) {
                Ok(Some(a)) => out.assessed.push(a),
                Ok(None) => out.skipped += 1,
                Err(e) => out.errors.push(e),
            }
        }
        out
    }

    fn assess_one(
        &self,
        matcher: Option<&Matcher<'_>>,
        dir: &Path,
        now: jiff::Timestamp,
    ) -> Result<Option<Assessed>, AssessError> {
        let inv_path = dir.join("inventory.json");
        let Some(bytes) = read_bounded(&inv_path, MAX_INVENTORY_BYTES)? else { return Ok(None) };
        let inv =
            InventoryDoc::from_json(&bytes).map_err(|source| AssessError::Inventory { path: inv_path, source })?;
        let report = self.report(matcher, &inv, now);
        let out = dir.join(findings::FILE_NAME);
        let json =
            serde_json::to_vec_pretty(&report).map_err(|source| AssessError::Json { path: out.clone(), source })?;
        write_atomic(&out, &json)?;
        // The CycloneDX VEX beside it, pointing at the volume's own SBOM (rebuilt on every
        // assessment: its links carry the SBOM's serial number).
        let sbom_path = dir.join("sbom.cdx.json");
        if let Some(sbom_bytes) = read_bounded(&sbom_path, MAX_INVENTORY_BYTES)? {
            let sbom: serde_json::Value = serde_json::from_slice(&sbom_bytes)
                .map_err(|e| AssessError::Vex { path: sbom_path.clone(), reason: format!("not JSON: {e}") })?;
            let vex = super::vex::vex_document(&report, &sbom)
                .map_err(|e| AssessError::Vex { path: sbom_path.clone(), reason: e.to_string() })?;
            let vex_path = dir.join(super::vex::FILE_NAME);
            let vex_json = serde_json::to_vec_pretty(&vex)
                .map_err(|source| AssessError::Json { path: vex_path.clone(), source })?;
            write_atomic(&vex_path, &vex_json)?;
        }
        Ok(Some(Assessed { dir: dir.to_path_buf(), counts: VulnCounts::of(&report) }))
    }
}

/// The file's bytes, `None` if it does not exist.
fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, AssessError> {
    let io = |source| AssessError::Io { path: path.to_path_buf(), source };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if meta.len() > limit {
        return Err(AssessError::TooLarge { path: path.to_path_buf(), size: meta.len(), limit });
    }
    std::fs::read(path).map(Some).map_err(io)
}

/// Write `bytes` to `path` through a temporary file of the same directory and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AssessError> {
    let io = |source| AssessError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A volume's stored `vulns.json`, if present and readable.
#[must_use]
pub fn read_report(volume_dir: &Path) -> Option<VulnReport> {
    let bytes = read_bounded(&volume_dir.join(findings::FILE_NAME), MAX_VULNS_BYTES).ok()??;
    VulnReport::from_json(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vuln::findings::{Coverage, OsSummary};

    fn coverage(status: CoverageStatus, reason: Option<&str>, with_source: bool) -> Coverage {
        Coverage {
            format: "apk-installed".into(),
            path: "/lib/apk/db/installed".into(),
            packages: 3,
            status,
            reason: reason.map(str::to_owned),
            ecosystems: vec!["Alpine:v3.4".into()],
            sources: if with_source {
                vec![findings::SourceAge {
                    name: "s".into(),
                    ecosystem: "Alpine:v3.4".into(),
                    records: 1,
                    imported_at: None,
                    newest_modified: None,
                    age_days: Some(90),
                }]
            } else {
                vec![]
            },
            packages_failed: 0,
            inventory_error: None,
        }
    }

    fn report(cov: Vec<Coverage>) -> VulnReport {
        let mut r = VulnReport::new(
            Some(OsSummary { id: "alpine".into(), version_id: Some("3.4.6".into()) }),
            "2026-01-01T00:00:00Z".into(),
        );
        r.coverage = cov;
        r.finish();
        r
    }

    #[test]
    fn reasons_are_classified() {
        let none = report(vec![]);
        assert_eq!(VulnCounts::of(&none).not_assessed, Some(NotAssessedKind::NoPackages));
        let no_db = report(vec![coverage(CoverageStatus::NotAssessed, Some("no advisory database at /x"), false)]);
        assert_eq!(VulnCounts::of(&no_db).not_assessed, Some(NotAssessedKind::NoDatabase));
        let stale = report(vec![coverage(CoverageStatus::NotAssessed, Some("stale advisory data: s"), true)]);
        assert_eq!(VulnCounts::of(&stale).not_assessed, Some(NotAssessedKind::Stale));
        let no_src = report(vec![coverage(CoverageStatus::NotAssessed, Some("holds no records"), false)]);
        let c = VulnCounts::of(&no_src);
        assert_eq!(c.not_assessed, Some(NotAssessedKind::NoSource));
        assert_eq!(c.cell(), "not assessed: no advisory source for alpine 3.4.6");
        let ok = report(vec![coverage(CoverageStatus::Assessed, None, true)]);
        let c = VulnCounts::of(&ok);
        assert_eq!((c.assessed, c.not_assessed, c.cell()), (true, None, "0".to_owned()));
    }

    #[test]
    fn cell_lists_severities_in_order() {
        let c = VulnCounts {
            assessed: true,
            findings: 6,
            by_severity: BTreeMap::from([("high".into(), 2), ("critical".into(), 1), ("unknown".into(), 3)]),
            ..VulnCounts::default()
        };
        assert_eq!(c.cell(), "1C 2H 3U");
    }
}
