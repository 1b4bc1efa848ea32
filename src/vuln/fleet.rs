//! Fleet questions over the stored results: which instances and volumes a CVE or a package
//! affects, per instance's newest stored result; and the fleet-wide counts the daemon's metrics
//! export. Read from the `vulns.json` files of the result store, nothing else.
//!
//! An instance's newest result is that of the job whose stored volume results (`device.json`,
//! written when the scanner's bundle was stored) are the most recent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::assess::{NotAssessedKind, VulnCounts, read_report};
use super::findings::{Finding, SeverityLabel};
use crate::collector::ResultStore;

/// One stored volume: its job, instance, volume id and directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRef {
    pub job: String,
    pub instance: String,
    pub volume: String,
    pub dir: PathBuf,
}

/// Every stored volume of each instance's newest job, sorted by instance and volume.
#[must_use]
pub fn latest_volumes(store: &ResultStore) -> Vec<VolumeRef> {
    // instance -> (newest stored time, job)
    let mut newest: BTreeMap<String, (std::time::SystemTime, String)> = BTreeMap::new();
    let all = store.all_volumes();
    for (job, instance, _, dir) in &all {
        let Ok(at) = std::fs::metadata(dir.join("device.json")).and_then(|m| m.modified()) else { continue };
        let keep = newest.get(instance).is_none_or(|(t, j)| (at, job) > (*t, j));
        if keep {
            newest.insert(instance.clone(), (at, job.clone()));
        }
    }
    all.into_iter()
        .filter(|(job, instance, _, _)| newest.get(instance).is_some_and(|(_, j)| j == job))
        .map(|(job, instance, volume, dir)| VolumeRef { job, instance, volume, dir })
        .collect()
}

/// A fleet query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Findings naming this id: the advisory id, one of its CVEs or aliases (case-insensitive).
    Id(String),
    /// Findings about this package: the advisory's package name or an installed package's name.
    Package(String),
    /// Every finding of this instance.
    Instance(String),
}

impl Query {
    fn matches(&self, instance: &str, f: &Finding) -> bool {
        match self {
            Query::Id(id) => {
                f.id.eq_ignore_ascii_case(id)
                    || f.cves.iter().any(|c| c.eq_ignore_ascii_case(id))
                    || f.aliases.iter().any(|c| c.eq_ignore_ascii_case(id))
                    || f.also.iter().any(|c| c.eq_ignore_ascii_case(id))
            }
            Query::Package(name) => f.package == *name || f.installed.iter().any(|i| i.name == *name),
            Query::Instance(i) => i == instance,
        }
    }
}

/// One finding as a fleet answer shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    pub cves: Vec<String>,
    pub package: String,
    pub version: String,
    /// Installed package names.
    pub installed: Vec<String>,
    pub fixed_version: Option<String>,
    pub status: String,
    pub severity: String,
}

/// One affected volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AffectedVolume {
    pub instance: String,
    pub job: String,
    pub volume: String,
    pub os: Option<String>,
    pub findings: Vec<Hit>,
}

/// A fleet answer: the affected volumes, and the volumes that could not answer (not assessed, or
/// no `vulns.json`): an instance absent from both was assessed and is not affected.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Answer {
    pub affected: Vec<AffectedVolume>,
    /// (instance, volume, reason).
    pub not_assessed: Vec<(String, String, String)>,
    /// Volumes whose report was read.
    pub volumes_examined: usize,
}

/// Answer `query` over `volumes`. Low-urgency findings are included only with `all`.
#[must_use]
pub fn query(volumes: &[VolumeRef], q: &Query, all: bool) -> Answer {
    let mut answer = Answer::default();
    for v in volumes {
        if let Query::Instance(i) = q
            && *i != v.instance
        {
            continue;
        }
        let Some(report) = read_report(&v.dir) else {
            if v.dir.join("inventory.json").is_file() {
                answer.not_assessed.push((v.instance.clone(), v.volume.clone(), "no vulns.json yet".into()));
            }
            continue;
        };
        answer.volumes_examined += 1;
        if !report.assessed {
            let c = VulnCounts::of(&report);
            // A volume without packages (a data volume) has nothing to answer for.
            if c.not_assessed != Some(NotAssessedKind::NoPackages) {
                answer.not_assessed.push((v.instance.clone(), v.volume.clone(), c.reason.unwrap_or_default()));
            }
            continue;
        }
        let findings: Vec<Hit> = report
            .findings
            .iter()
            .filter(|f| all || f.status.visible_by_default())
            .filter(|f| q.matches(&v.instance, f))
            .map(|f| Hit {
                id: f.id.clone(),
                cves: f.cves.clone(),
                package: f.package.clone(),
                version: f.version.clone(),
                installed: f.installed.iter().map(|i| i.name.clone()).collect(),
                fixed_version: f.fixed_version.clone(),
                status: f.status.as_str().to_owned(),
                severity: f.severity.as_ref().map_or(SeverityLabel::Unknown, |s| s.label).as_str().to_owned(),
            })
            .collect();
        if !findings.is_empty() || matches!(q, Query::Instance(_)) {
            answer.affected.push(AffectedVolume {
                instance: v.instance.clone(),
                job: v.job.clone(),
                volume: v.volume.clone(),
                os: report.os.as_ref().map(|o| {
                    format!("{}{}", o.id, o.version_id.as_deref().map(|x| format!(" {x}")).unwrap_or_default())
                }),
                findings,
            });
        }
    }
    answer
}

/// Fleet-wide counts over each instance's newest results (the daemon's metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetCounts {
    /// Visible findings by (severity, status).
    pub findings: BTreeMap<(String, String), u64>,
    pub volumes_assessed: u64,
    /// Volumes not assessed, by reason kind.
    pub not_assessed: BTreeMap<NotAssessedKind, u64>,
}

/// Count the findings of `volumes`.
#[must_use]
pub fn fleet_counts(volumes: &[VolumeRef]) -> FleetCounts {
    let mut out = FleetCounts::default();
    for v in volumes {
        let Some(report) = read_report(&v.dir) else { continue };
        if !report.assessed {
            let kind = VulnCounts::of(&report).not_assessed.unwrap_or(NotAssessedKind::NoSource);
            *out.not_assessed.entry(kind).or_default() += 1;
            continue;
        }
        out.volumes_assessed += 1;
        for f in report.visible() {
            let sev = f.severity.as_ref().map_or(SeverityLabel::Unknown, |s| s.label).as_str().to_owned();
            *out.findings.entry((sev, f.status.as_str().to_owned())).or_default() += 1;
        }
    }
    out
}
