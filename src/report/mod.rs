//! What a scan run reports: per target and volume, the OS, package count, baseline failures,
//! vulnerability counts by severity (or why the volume was not assessed) and status, gathered from
//! the jobs' documents and the stored results ([`Summary`]); rendered as a table or JSON, and
//! copied into an output directory (`--out`): `<instance>/` holds the `sbom.cdx.json`,
//! `inventory.json`, `baseline.json` and `vulns.json` of the instance's OS volume (and
//! `<instance>/<volume>/` those of every volume), plus `summary.json` at the top.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::collector::ResultStore;
use crate::job::JobOutcome;
use crate::ledger::JobState;
use crate::vuln::assess::{VulnCounts, read_report};

/// One volume's line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VolumeLine {
    pub volume: String,
    pub device: String,
    pub size_gib: u32,
    pub encrypted: bool,
    pub os: Option<String>,
    pub packages: usize,
    /// Application packages by ecosystem (`golang`, `pypi`, `maven`, `kernel`...).
    pub app_packages: std::collections::BTreeMap<String, usize>,
    pub baseline_failed: usize,
    /// `scanned`, `partial`, `failed`, `unscannable`.
    pub status: String,
    pub error: Option<String>,
    /// A stand-in result of the simulated account (no disk bytes read).
    pub synthetic: bool,
    /// What the volume's `vulns.json` says (absent when it has none: not scanned, or matched by
    /// no version of agentless that writes it).
    pub vulns: Option<VulnCounts>,
}

/// One target's lines.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TargetLine {
    pub job: String,
    pub region: String,
    pub instance: String,
    pub name: Option<String>,
    /// `scanned` (every volume), `partial` (some), `failed`.
    pub status: String,
    pub error: Option<String>,
    pub volumes: Vec<VolumeLine>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub jobs: Vec<JobLine>,
    pub targets: Vec<TargetLine>,
    /// Over every volume of the run.
    pub vulns: VulnTotals,
}

/// Vulnerability counts over a run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct VulnTotals {
    /// Volumes whose packages were assessed (at least one package set).
    pub volumes_assessed: usize,
    /// Volumes with packages whose `vulns.json` says nothing was assessed.
    pub volumes_not_assessed: usize,
    /// Volumes without any package database (data volumes): nothing to assess.
    pub volumes_without_packages: usize,
    /// Visible findings by severity label, summed over the volumes.
    pub by_severity: std::collections::BTreeMap<String, usize>,
    /// All findings by status, summed over the volumes.
    pub by_status: std::collections::BTreeMap<String, usize>,
}

impl VulnTotals {
    fn add(&mut self, c: &VulnCounts) {
        if c.assessed {
            self.volumes_assessed += 1;
        } else if c.not_assessed == Some(crate::vuln::assess::NotAssessedKind::NoPackages) {
            self.volumes_without_packages += 1;
        } else {
            self.volumes_not_assessed += 1;
        }
        for (k, n) in &c.by_severity {
            *self.by_severity.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &c.by_status {
            *self.by_status.entry(k.clone()).or_default() += n;
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JobLine {
    pub job: String,
    pub region: String,
    pub state: String,
    pub failure: Option<String>,
    pub leaked: Vec<String>,
}

impl Summary {
    /// Gather the summary of `outcomes` from their documents and the result store.
    #[must_use]
    pub fn gather(outcomes: &[JobOutcome], store: &ResultStore) -> Summary {
        let mut jobs = Vec::new();
        let mut targets = Vec::new();
        for o in outcomes {
            jobs.push(JobLine {
                job: o.job.to_string(),
                region: o.region.to_string(),
                state: o.state.as_str().to_owned(),
                failure: o.doc.failure.clone(),
                leaked: o.doc.leaked.clone(),
            });
            for (instance, t) in o.doc.targets() {
                let mut volumes = Vec::new();
                for v in &t.volumes {
                    let stored = store.volume(o.job.as_str(), instance.as_str(), v.volume.as_str());
                    let (os, packages, app_packages, baseline_failed, synthetic, stored_status) = stored
                        .as_ref()
                        .map(|s| {
                            (
                                s.entry.os.clone(),
                                s.entry.packages,
                                s.entry.app_packages.clone(),
                                s.entry.baseline_failed,
                                s.entry.synthetic,
                                Some(s.entry.status),
                            )
                        })
                        .unwrap_or((None, 0, Default::default(), 0, false, None));
                    let status = if v.unscannable.is_some() {
                        "unscannable"
                    } else if v.scanned {
                        match stored_status {
                            Some(scanner_ami::bundle::DeviceStatus::Partial) => "partial",
                            Some(_) | None => "scanned",
                        }
                    } else {
                        "failed"
                    };
                    let error = v
                        .unscannable
                        .clone()
                        .or_else(|| v.error.clone())
                        .or_else(|| stored.as_ref().and_then(|s| s.entry.error.clone()));
                    volumes.push(VolumeLine {
                        volume: v.volume.to_string(),
                        device: v.device.clone(),
                        size_gib: v.size_gib,
                        encrypted: v.encrypted,
                        os,
                        packages,
                        app_packages,
                        baseline_failed,
                        status: status.to_owned(),
                        error,
                        synthetic,
                        vulns: stored.as_ref().and_then(|s| read_report(&s.dir)).map(|r| VulnCounts::of(&r)),
                    });
                }
                let scanned = volumes.iter().filter(|v| v.status == "scanned" || v.status == "partial").count();
                let status = if t.error.is_some() || scanned == 0 {
                    "failed"
                } else if scanned == volumes.len() {
                    "scanned"
                } else {
                    "partial"
                };
                targets.push(TargetLine {
                    job: o.job.to_string(),
                    region: o.region.to_string(),
                    instance: instance.to_string(),
                    name: t.tags.name().map(str::to_owned),
                    status: status.to_owned(),
                    error: t.error.clone(),
                    volumes,
                });
            }
        }
        let mut vulns = VulnTotals::default();
        for c in targets.iter().flat_map(|t| &t.volumes).filter_map(|v| v.vulns.as_ref()) {
            vulns.add(c);
        }
        Summary { jobs, targets, vulns }
    }

    /// Every target scanned in full (all its volumes), and every job ended `Done`.
    #[must_use]
    pub fn all_scanned(&self) -> bool {
        self.targets.iter().all(|t| t.status == "scanned")
            && self.jobs.iter().all(|j| j.state == JobState::Done.as_str())
    }

    /// Volumes with a result.
    #[must_use]
    pub fn volumes_scanned(&self) -> usize {
        self.targets.iter().flat_map(|t| &t.volumes).filter(|v| v.status == "scanned" || v.status == "partial").count()
    }

    /// The table: one line per volume.
    pub fn render_table(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{:<10} {:<20} {:<14} {:<22} {:<9} {:<30} {:>8} {:>5} {:>9}  {:<12}  STATUS",
            "REGION", "INSTANCE", "NAME", "VOLUME", "DEVICE", "OS", "PACKAGES", "APPS", "BASELINE", "VULNS"
        )?;
        for t in &self.targets {
            if t.volumes.is_empty() {
                writeln!(
                    out,
                    "{:<10} {:<20} {:<14} {:<22} {:<9} {:<30} {:>8} {:>5} {:>9}  {:<12}  failed: {}",
                    t.region,
                    t.instance,
                    clip(t.name.as_deref().unwrap_or("-"), 14),
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    t.error.as_deref().unwrap_or("")
                )?;
            }
            for v in &t.volumes {
                let status = match (&v.error, v.status.as_str()) {
                    (_, "scanned") if v.synthetic => "scanned (synthetic: no disk bytes)".to_owned(),
                    (_, "partial") if v.os.is_none() && v.packages == 0 => {
                        "scanned: no OS on this volume (a data volume?)".to_owned()
                    }
                    (_, "scanned") => "scanned".to_owned(),
                    (Some(e), s) => format!("{s}: {}", clip(e, 160)),
                    (None, s) => s.to_owned(),
                };
                let vulns = v.vulns.as_ref().map_or_else(|| "-".to_owned(), VulnCounts::cell);
                writeln!(
                    out,
                    "{:<10} {:<20} {:<14} {:<22} {:<9} {:<30} {:>8} {:>5} {:>9}  {:<12}  {}",
                    t.region,
                    t.instance,
                    clip(t.name.as_deref().unwrap_or("-"), 14),
                    v.volume,
                    v.device,
                    clip(v.os.as_deref().unwrap_or("-"), 30),
                    v.packages,
                    v.app_packages.values().sum::<usize>(),
                    format!("{} fail", v.baseline_failed),
                    vulns,
                    status
                )?;
            }
        }
        let mut apps: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for v in self.targets.iter().flat_map(|t| &t.volumes) {
            for (eco, n) in &v.app_packages {
                *apps.entry(eco.as_str()).or_insert(0) += n;
            }
        }
        if !apps.is_empty() {
            let parts: Vec<String> = apps.iter().map(|(e, n)| format!("{n} {e}")).collect();
            writeln!(out, "applications: {}", parts.join(", "))?;
        }
        let v = &self.vulns;
        if v.volumes_assessed + v.volumes_not_assessed + v.volumes_without_packages > 0 {
            let sev: Vec<String> = ["critical", "high", "medium", "low", "unknown"]
                .iter()
                .map(|k| format!("{} {k}", v.by_severity.get(*k).copied().unwrap_or(0)))
                .collect();
            writeln!(
                out,
                "vulnerabilities: {} volume(s) assessed, {} not assessed, {} without packages; findings: {}",
                v.volumes_assessed,
                v.volumes_not_assessed,
                v.volumes_without_packages,
                sev.join(", ")
            )?;
        }
        for j in &self.jobs {
            if let Some(f) = &j.failure {
                writeln!(out, "job {} ({}): {}: {f}", j.job, j.region, j.state)?;
            }
            for l in &j.leaked {
                writeln!(out, "job {} ({}): NOT REMOVED (left for `agentless audit`): {l}", j.job, j.region)?;
            }
        }
        Ok(())
    }

    /// Copy results into `dir` (see the module documentation).
    ///
    /// # Errors
    ///
    /// A file cannot be written.
    pub fn write_out_dir(&self, store: &ResultStore, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for t in &self.targets {
            let tdir = dir.join(&t.instance);
            let mut os_volume_done = false;
            for v in &t.volumes {
                let Some(stored) = store.volume(&t.job, &t.instance, &v.volume) else { continue };
                let vdir = tdir.join(&v.volume);
                std::fs::create_dir_all(&vdir)?;
                for f in [
                    "inventory.json",
                    "sbom.cdx.json",
                    "baseline.json",
                    crate::vuln::findings::FILE_NAME,
                    "device.json",
                ] {
                    let src = stored.dir.join(f);
                    if src.is_file() {
                        std::fs::copy(&src, vdir.join(f))?;
                        if !os_volume_done && v.os.is_some() && f != "device.json" {
                            std::fs::copy(&src, tdir.join(f))?;
                        }
                    }
                }
                os_volume_done |= v.os.is_some();
            }
        }
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("summary.json"), json)
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}
