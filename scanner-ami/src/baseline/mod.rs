//! Baseline (CIS-style) configuration checks decided from the files of a scanned root alone.
//!
//! A [`Rule`] is a check with stable identifiers (ours, the SCAP Security Guide rule id, CIS
//! section references for Ubuntu 22.04 and RHEL 9), its text, and an evaluation function that
//! reads the scanned filesystem through [`Ctx`] and returns an [`Outcome`]: `pass`, `fail`,
//! `notapplicable` or `error`, always with the evidence (file, line, value found, value expected).
//!
//! Nothing of the scanner's own system is consulted: no running kernel, no `sshd -T`, no host
//! files; parsers live in [`parse`], checks grouped by area in [`checks`].

pub mod checks;
pub mod ctx;
pub mod parse;

use serde::Serialize;

pub use ctx::Ctx;

use crate::fs::RootFs;
use crate::inventory::Package;
use crate::os::{Family, OsInfo};

/// The `format` field of baseline.json; bumped on incompatible changes.
pub const FORMAT: u32 = 1;

/// A check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The check does not apply here (distro family, package not installed).
    #[serde(rename = "notapplicable")]
    NotApplicable,
    /// The files needed could not be read or parsed; the reason says why.
    Error,
}

/// Severity as SCAP Security Guide rates the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One piece of evidence: where a value was found (or looked for), what it was, what was expected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Evidence {
    /// Evidence about `file`.
    #[must_use]
    pub fn file(file: impl Into<String>) -> Self {
        Evidence { file: Some(file.into()), ..Evidence::default() }
    }
    /// Evidence that is only a note.
    #[must_use]
    pub fn note(note: impl Into<String>) -> Self {
        Evidence { note: Some(note.into()), ..Evidence::default() }
    }
    #[must_use]
    pub fn line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }
    #[must_use]
    pub fn found(mut self, v: impl Into<String>) -> Self {
        self.found = Some(v.into());
        self
    }
    #[must_use]
    pub fn expected(mut self, v: impl Into<String>) -> Self {
        self.expected = Some(v.into());
        self
    }
    #[must_use]
    pub fn with_note(mut self, v: impl Into<String>) -> Self {
        self.note = Some(v.into());
        self
    }
}

/// What a rule's evaluation returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    /// Why (required for notapplicable and error; a one-line summary otherwise).
    pub reason: Option<String>,
    pub evidence: Vec<Evidence>,
}

impl Outcome {
    #[must_use]
    pub fn pass(evidence: Vec<Evidence>) -> Self {
        Outcome { status: Status::Pass, reason: None, evidence }
    }
    #[must_use]
    pub fn fail(evidence: Vec<Evidence>) -> Self {
        Outcome { status: Status::Fail, reason: None, evidence }
    }
    /// Pass when `ok`, fail otherwise.
    #[must_use]
    pub fn check(ok: bool, evidence: Vec<Evidence>) -> Self {
        if ok { Self::pass(evidence) } else { Self::fail(evidence) }
    }
    #[must_use]
    pub fn na(reason: impl Into<String>) -> Self {
        Outcome { status: Status::NotApplicable, reason: Some(reason.into()), evidence: Vec::new() }
    }
    #[must_use]
    pub fn error(reason: impl Into<String>) -> Self {
        Outcome { status: Status::Error, reason: Some(reason.into()), evidence: Vec::new() }
    }
    #[must_use]
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// CIS benchmark section references.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CisRefs {
    /// CIS Ubuntu Linux 22.04 LTS Benchmark (the numbering SSG 0.1.65 references).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ubuntu2204: Option<&'static str>,
    /// CIS Red Hat Enterprise Linux 9 Benchmark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rhel9: Option<&'static str>,
}

/// A check.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Our stable id, `<area>.<what>` (e.g. `ssh.permit_root_login`); never reused.
    pub id: &'static str,
    /// The SCAP Security Guide rule id, where one exists.
    pub ssg_id: Option<&'static str>,
    pub cis: CisRefs,
    pub title: &'static str,
    pub severity: Severity,
    pub rationale: &'static str,
    pub remediation: &'static str,
    /// Distro families the rule applies to; empty = every Linux family.
    pub families: &'static [Family],
    pub eval: fn(&Ctx<'_>) -> Outcome,
}

/// One rule's result, as written to baseline.json.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssg_id: Option<&'static str>,
    pub cis: CisRefs,
    pub title: &'static str,
    pub severity: Severity,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub evidence: Vec<Evidence>,
    pub rationale: &'static str,
    pub remediation: &'static str,
}

/// Counts by status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub notapplicable: usize,
    pub error: usize,
}

/// The baseline of one root filesystem (`baseline.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub format: u32,
    pub os: Option<OsInfo>,
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub stats: ctx::Stats,
}

/// Every rule, in report order.
#[must_use]
pub fn rules() -> Vec<Rule> {
    checks::all()
}

/// Evaluate every rule on `fs`.
#[must_use]
pub fn evaluate(fs: &dyn RootFs, os: Option<&OsInfo>, packages: &[Package]) -> Baseline {
    let ctx = Ctx::new(fs, os, packages);
    let mut findings = Vec::new();
    let mut summary = Summary::default();
    for rule in rules() {
        let applies = rule.families.is_empty() || os.is_some_and(|o| rule.families.contains(&o.family));
        let outcome = if applies {
            (rule.eval)(&ctx)
        } else {
            Outcome::na(format!(
                "applies to {} only; this OS is {}",
                rule.families.iter().map(|f| format!("{f:?}").to_lowercase()).collect::<Vec<_>>().join("/"),
                os.map_or_else(|| "unknown".to_owned(), |o| format!("{} ({:?})", o.id, o.family).to_lowercase())
            ))
        };
        match outcome.status {
            Status::Pass => summary.pass += 1,
            Status::Fail => summary.fail += 1,
            Status::NotApplicable => summary.notapplicable += 1,
            Status::Error => summary.error += 1,
        }
        findings.push(Finding {
            id: rule.id,
            ssg_id: rule.ssg_id,
            cis: rule.cis,
            title: rule.title,
            severity: rule.severity,
            status: outcome.status,
            reason: outcome.reason,
            evidence: outcome.evidence,
            rationale: rule.rationale,
            remediation: rule.remediation,
        });
    }
    Baseline { format: FORMAT, os: os.cloned(), summary, findings, stats: ctx.stats() }
}
