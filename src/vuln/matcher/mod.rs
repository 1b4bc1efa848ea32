//! Matching stored inventories against advisories: for each package set (package database) of an
//! `inventory.json`, which ecosystem it belongs to ([`ecosystem`]), which name and version each
//! package is looked up under ([`rules`]), whether that version lies in an advisory's ranges
//! ([`range`]), and how the result reads ([`severity`], [`crate::vuln::findings`]).
//!
//! Matching is a lookup by (ecosystem, package name) per package, through the [`AdvisorySource`]
//! trait (the advisory database, or [`MemorySource`] in memory). A [`Matcher`] caches the records
//! per (ecosystem, package) and the verdict per (ecosystem, package, version) across the
//! inventories it matches, so a fleet whose instances share packages costs one evaluation per
//! distinct package version. The caches are bounded ([`MAX_CACHED_PACKAGES`],
//! [`MAX_CACHED_VERDICTS`]).

pub mod ecosystem;
pub mod inventory;
pub mod range;
pub mod rules;
pub mod severity;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use crate::vuln::findings::{
    Coverage, CoverageStatus, Finding, Installed, OsSummary, Severity, SourceAge, Status, VulnReport,
};
use crate::vuln::osv;
use crate::vuln::version::Scheme;

use ecosystem::{AppEcosystem, NotAssessed, OsTarget, PackageFormat};
use inventory::{InventoryDoc, PackageDoc};
use range::Verdict;
use rules::MatchKey;

/// An advisory source failed (the database could not be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("advisory source: {0}")]
pub struct SourceError(pub String);

/// One imported source's data for one ecosystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSummary {
    /// The source's name (`almalinux-osv`, `alpine-secdb`...).
    pub name: String,
    /// Its records of the ecosystem.
    pub records: u64,
    /// When it was imported (RFC 3339).
    pub imported_at: Option<String>,
    /// The newest `modified` among its records (RFC 3339).
    pub newest_modified: Option<String>,
}

/// Where advisories come from: the advisory database, or records held in memory.
pub trait AdvisorySource {
    /// The records naming `package` in `ecosystem` (the exact OSV ecosystem string), each with
    /// only the `affected` entries of that package.
    ///
    /// # Errors
    ///
    /// The source cannot be read.
    fn records_for(&self, ecosystem: &str, package: &str) -> Result<Vec<osv::Record>, SourceError>;

    /// The imported sources holding records of `ecosystem` (empty: the ecosystem is not covered).
    ///
    /// # Errors
    ///
    /// The source cannot be read.
    fn sources_for(&self, ecosystem: &str) -> Result<Vec<SourceSummary>, SourceError>;
}

/// Advisory records held in memory, indexed by (ecosystem, package) as the database indexes them.
#[derive(Debug, Default)]
pub struct MemorySource {
    by_package: HashMap<(String, String), Vec<osv::Record>>,
    /// Per ecosystem, the sources holding it.
    sources: BTreeMap<String, Vec<SourceSummary>>,
}

impl MemorySource {
    #[must_use]
    pub fn new() -> MemorySource {
        MemorySource::default()
    }

    /// Add the records of one source, imported at `imported_at` (RFC 3339).
    pub fn add_source(
        &mut self,
        name: &str,
        imported_at: Option<&str>,
        records: impl IntoIterator<Item = osv::Record>,
    ) {
        let mut per_eco: BTreeMap<String, SourceSummary> = BTreeMap::new();
        for record in records {
            let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
            for affected in &record.affected {
                let Some(package) = &affected.package else { continue };
                let key = (package.ecosystem.clone(), package.name.clone());
                if !seen.insert(key.clone()) {
                    continue;
                }
                let mut copy = record.clone();
                copy.affected = record
                    .affected
                    .iter()
                    .filter(|a| {
                        a.package.as_ref().is_some_and(|p| p.ecosystem == package.ecosystem && p.name == package.name)
                    })
                    .cloned()
                    .collect();
                self.by_package.entry(key).or_default().push(copy);
            }
            let ecosystems: BTreeSet<&str> =
                record.affected.iter().filter_map(|a| a.package.as_ref().map(|p| p.ecosystem.as_str())).collect();
            for eco in ecosystems {
                let s = per_eco.entry(eco.to_owned()).or_insert_with(|| SourceSummary {
                    name: name.to_owned(),
                    records: 0,
                    imported_at: imported_at.map(str::to_owned),
                    newest_modified: None,
                });
                s.records += 1;
                if s.newest_modified.as_deref().is_none_or(|m| newer(&record.modified, m)) {
                    s.newest_modified = Some(record.modified.clone());
                }
            }
        }
        for (eco, summary) in per_eco {
            self.sources.entry(eco).or_default().push(summary);
        }
    }
}

/// `a` is a later RFC 3339 time than `b` (by parsed time; by string when either does not parse).
fn newer(a: &str, b: &str) -> bool {
    match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

impl AdvisorySource for MemorySource {
    fn records_for(&self, ecosystem: &str, package: &str) -> Result<Vec<osv::Record>, SourceError> {
        Ok(self.by_package.get(&(ecosystem.to_owned(), package.to_owned())).cloned().unwrap_or_default())
    }

    fn sources_for(&self, ecosystem: &str) -> Result<Vec<SourceSummary>, SourceError> {
        Ok(self.sources.get(ecosystem).cloned().unwrap_or_default())
    }
}

impl AdvisorySource for crate::vuln::db::AdvisoryDb {
    fn records_for(&self, ecosystem: &str, package: &str) -> Result<Vec<osv::Record>, SourceError> {
        crate::vuln::db::AdvisoryDb::records_for(self, ecosystem, package).map_err(|e| SourceError(e.to_string()))
    }

    fn sources_for(&self, ecosystem: &str) -> Result<Vec<SourceSummary>, SourceError> {
        let sources = self.sources().map_err(|e| SourceError(e.to_string()))?;
        Ok(sources
            .into_iter()
            .filter_map(|s| {
                let records = s.ecosystems.iter().find(|(eco, _)| eco == ecosystem).map(|(_, n)| *n)?;
                Some(SourceSummary {
                    name: s.name,
                    records,
                    imported_at: Some(s.imported_at),
                    newest_modified: s.newest_modified,
                })
            })
            .collect())
    }
}

/// How matching treats its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOptions {
    /// Advisory data imported longer ago than this many days is stale: the package sets it would
    /// assess are reported "not assessed". Distributions publish fixes daily; a month without an
    /// update misses a month of them.
    pub max_source_age_days: i64,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions { max_source_age_days: 30 }
    }
}

/// Most (ecosystem, package) record lists cached by a [`Matcher`]. A large fleet has ~20,000
/// distinct OS package names per ecosystem; each cached list holds the matching fields of its
/// records only (no `details`, no references), a few hundred bytes per record, so the bound keeps
/// the cache within tens of MiB. Past it the cache is emptied and refilled.
pub const MAX_CACHED_PACKAGES: usize = 100_000;

/// Most (ecosystem, package, version) verdicts cached by a [`Matcher`] (about 200 bytes each: at
/// most ~50 MiB). 10,000 instances × 500 packages share far fewer distinct versions than that.
pub const MAX_CACHED_VERDICTS: usize = 250_000;

/// A record reduced to what matching and findings use.
#[derive(Debug)]
struct Prepared {
    id: String,
    cves: Vec<String>,
    aliases: Vec<String>,
    summary: Option<String>,
    published: Option<String>,
    modified: String,
    /// Publication (or, without it, last modification) time, parsed once.
    when: Option<jiff::Timestamp>,
    entries: Vec<Entry>,
}

/// One `affected` entry of a prepared record.
#[derive(Debug)]
struct Entry {
    affected: osv::Affected,
    severity: Option<Severity>,
    low_urgency: bool,
}

/// A record found to affect a version.
#[derive(Debug, Clone)]
struct Hit {
    record: Rc<Prepared>,
    entry: usize,
    fixed: Option<String>,
}

impl Hit {
    fn entry(&self) -> Option<&Entry> {
        self.record.entries.get(self.entry)
    }
}

/// The verdict for one (ecosystem, package, version).
#[derive(Debug, Default)]
struct Evaluated {
    hits: Vec<Hit>,
    /// Ids of every record listing the package in the ecosystem (affected or not).
    listed: HashSet<String>,
    /// Records that could not be evaluated, as notes.
    errors: Vec<String>,
}

#[derive(Debug, Default)]
struct Cache {
    records: HashMap<(String, String), Rc<Vec<Rc<Prepared>>>>,
    /// Keyed by `ecosystem NUL package NUL version` (one allocation per lookup).
    verdicts: HashMap<String, Rc<Evaluated>>,
    sources: HashMap<String, Rc<Result<Vec<SourceSummary>, SourceError>>>,
    labels: HashMap<String, String>,
}

/// Matches inventories against an advisory source, caching across inventories.
///
/// Not shared between threads (the caches are in a `RefCell`): one matcher per worker.
pub struct Matcher<'a> {
    source: &'a dyn AdvisorySource,
    options: MatchOptions,
    cache: RefCell<Cache>,
}

impl std::fmt::Debug for Matcher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.cache.borrow();
        f.debug_struct("Matcher")
            .field("options", &self.options)
            .field("cached_packages", &cache.records.len())
            .field("cached_verdicts", &cache.verdicts.len())
            .finish_non_exhaustive()
    }
}

/// Match one inventory (a one-off [`Matcher`]; use one matcher for many inventories to share its
/// caches).
#[must_use]
pub fn match_inventory(inv: &InventoryDoc, source: &dyn AdvisorySource, now: jiff::Timestamp) -> VulnReport {
    Matcher::new(source, MatchOptions::default()).match_inventory(inv, now)
}

/// What a package set is matched against.
enum SetTarget {
    Os(OsTarget),
    App(&'static AppEcosystem),
}

/// Installed packages grouped under one lookup key.
#[derive(Debug, Default)]
struct Group {
    kernel: bool,
    installed: Vec<Installed>,
}

/// A hit with what it means here.
struct Matched {
    hit: Hit,
    ecosystem: String,
    fixed: Option<String>,
    paid_fix: bool,
}

impl<'a> Matcher<'a> {
    #[must_use]
    pub fn new(source: &'a dyn AdvisorySource, options: MatchOptions) -> Matcher<'a> {
        Matcher { source, options, cache: RefCell::new(Cache::default()) }
    }

    /// Match one inventory at time `now`.
    #[must_use]
    pub fn match_inventory(&self, inv: &InventoryDoc, now: jiff::Timestamp) -> VulnReport {
        let os_summary = inv.os.as_ref().map(|os| OsSummary { id: os.id.clone(), version_id: os.version_id.clone() });
        let mut report = VulnReport::new(os_summary, now.to_string());
        let os_target = inv.os.as_ref().map(|os| ecosystem::os_target(&os.id, os.version_id.as_deref()));

        let mut sets: BTreeMap<&str, Vec<&PackageDoc>> = BTreeMap::new();
        for p in &inv.packages {
            sets.entry(p.db_path.as_str()).or_default().push(p);
        }
        // Every database the agent read, then any package set the databases list does not name.
        let mut listed: Vec<(String, String, Option<String>)> =
            inv.databases.iter().map(|d| (d.format.clone(), d.path.clone(), d.error.clone())).collect();
        for (path, pkgs) in &sets {
            if !inv.databases.iter().any(|d| d.path == *path) {
                let format = pkgs.first().map(|p| p.db.clone()).unwrap_or_default();
                listed.push((format, (*path).to_owned(), None));
            }
        }
        for (format, path, error) in listed {
            let pkgs = sets.get(path.as_str()).map(Vec::as_slice).unwrap_or_default();
            let coverage = self.match_set(&mut report, &format, &path, error, pkgs, os_target.as_ref(), now);
            report.coverage.push(coverage);
        }
        report.finish();
        report
    }

    /// Match one package set and say what was done with it.
    #[allow(clippy::too_many_arguments)]
    fn match_set(
        &self,
        report: &mut VulnReport,
        format: &str,
        path: &str,
        inventory_error: Option<String>,
        pkgs: &[&PackageDoc],
        os_target: Option<&Result<OsTarget, NotAssessed>>,
        now: jiff::Timestamp,
    ) -> Coverage {
        let mut coverage = Coverage {
            format: format.to_owned(),
            path: path.to_owned(),
            packages: pkgs.len(),
            status: CoverageStatus::NotAssessed,
            reason: None,
            ecosystems: Vec::new(),
            sources: Vec::new(),
            packages_failed: 0,
            inventory_error,
        };
        let target = match set_target(format, pkgs, os_target) {
            Ok(t) => t,
            Err(reason) => {
                coverage.reason = Some(reason);
                return coverage;
            }
        };
        let (free, paid): (Vec<String>, Option<String>) = match &target {
            SetTarget::Os(t) => (t.ecosystems.clone(), t.paid.clone()),
            SetTarget::App(app) => (vec![app.ecosystem.to_owned()], None),
        };
        // Which streams have data, and how old it is.
        let mut covered_any = false;
        let mut fresh_any = false;
        let mut stale_notes = Vec::new();
        for eco in free.iter().chain(paid.iter()) {
            coverage.ecosystems.push(eco.clone());
            match self.sources(eco).as_ref() {
                Err(e) => report.note_error(format!("{path}: {eco}: {e}")),
                Ok(list) => {
                    for s in list.iter().filter(|s| s.records > 0) {
                        covered_any = true;
                        let age_days = s.imported_at.as_deref().and_then(|t| days_between(t, now));
                        if age_days.is_none_or(|d| d <= self.options.max_source_age_days) {
                            fresh_any = true;
                        } else {
                            stale_notes.push(format!(
                                "{} ({eco}) was imported {} days ago",
                                s.name,
                                age_days.unwrap_or_default()
                            ));
                        }
                        coverage.sources.push(SourceAge {
                            name: s.name.clone(),
                            ecosystem: eco.clone(),
                            records: s.records,
                            imported_at: s.imported_at.clone(),
                            newest_modified: s.newest_modified.clone(),
                            age_days,
                        });
                    }
                }
            }
        }
        if !covered_any {
            coverage.reason = Some(format!(
                "the advisory database holds no records for {} (import that source first)",
                coverage.ecosystems.join(" or ")
            ));
            return coverage;
        }
        if !fresh_any {
            coverage.reason = Some(format!(
                "stale advisory data: {}; more than {} days",
                stale_notes.join(", "),
                self.options.max_source_age_days
            ));
            return coverage;
        }
        coverage.status = CoverageStatus::Assessed;

        // Group the packages under their lookup keys.
        let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
        for p in pkgs {
            let key = match &target {
                SetTarget::Os(t) => rules::match_key(t.distro, p),
                SetTarget::App(app) => {
                    MatchKey { name: (app.normalise)(&p.name), version: p.full_version(), kernel: false }
                }
            };
            let group = groups.entry((key.name, key.version)).or_default();
            group.kernel |= key.kernel;
            group.installed.push(Installed { name: p.name.clone(), version: p.full_version(), arch: p.arch.clone() });
        }
        let scheme = match &target {
            SetTarget::Os(t) => t.scheme,
            SetTarget::App(app) => app.scheme,
        };
        for ((name, version), mut group) in groups {
            group.installed.sort();
            group.installed.dedup();
            match self.match_group(&free, paid.as_deref(), scheme, &name, &version) {
                Ok((matched, errors)) => {
                    if !errors.is_empty() {
                        coverage.packages_failed += group.installed.len();
                    }
                    for e in errors {
                        report.note_error(format!("{path}: {e}"));
                    }
                    let findings = self.findings(matched, scheme, &name, &version, &group, now);
                    report.findings.extend(findings);
                }
                Err(e) => {
                    coverage.packages_failed += group.installed.len();
                    report.note_error(format!("{path}: {name} {version}: {e}"));
                }
            }
        }
        coverage
    }

    /// The hits for one lookup key across the free streams and the paid one, and the evaluation
    /// errors met.
    fn match_group(
        &self,
        free: &[String],
        paid: Option<&str>,
        scheme: Scheme,
        name: &str,
        version: &str,
    ) -> Result<(Vec<Matched>, Vec<String>), SourceError> {
        let mut errors = Vec::new();
        let mut free_evals = Vec::new();
        for eco in free {
            let ev = self.evaluate(eco, scheme, name, version)?;
            errors.extend(ev.errors.iter().cloned());
            free_evals.push((eco.as_str(), ev));
        }
        let paid_eval = match paid {
            Some(eco) => {
                let ev = self.evaluate(eco, scheme, name, version)?;
                errors.extend(ev.errors.iter().cloned());
                Some((eco, ev))
            }
            None => None,
        };
        let mut out: Vec<Matched> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (eco, ev) in &free_evals {
            for hit in &ev.hits {
                if !seen.insert(hit.record.id.clone()) {
                    continue;
                }
                let mut m = Matched {
                    hit: hit.clone(),
                    ecosystem: (*eco).to_owned(),
                    fixed: hit.fixed.clone(),
                    paid_fix: false,
                };
                if let Some((paid_eco, pev)) = &paid_eval
                    && pev.listed.contains(&hit.record.id)
                {
                    match pev.hits.iter().find(|p| p.record.id == hit.record.id) {
                        // The paid stream lists the package and says this version is not
                        // affected: its fix (an `+esm` version) is installed.
                        None => continue,
                        Some(p) if hit.fixed.is_none() && p.fixed.is_some() => {
                            m.ecosystem = (*paid_eco).to_owned();
                            m.fixed = p.fixed.clone();
                            m.paid_fix = true;
                        }
                        Some(_) => {}
                    }
                }
                out.push(m);
            }
        }
        if let Some((paid_eco, pev)) = &paid_eval {
            let free_listed = |id: &str| free_evals.iter().any(|(_, ev)| ev.listed.contains(id));
            for hit in &pev.hits {
                // Already reported from the free stream, or the free stream says not affected.
                if seen.contains(&hit.record.id) || free_listed(&hit.record.id) {
                    continue;
                }
                seen.insert(hit.record.id.clone());
                out.push(Matched {
                    hit: hit.clone(),
                    ecosystem: (*paid_eco).to_owned(),
                    fixed: hit.fixed.clone(),
                    paid_fix: hit.fixed.is_some(),
                });
            }
        }
        Ok((out, errors))
    }

    /// Findings of one group, with advisories whose CVEs are all covered by the group's other
    /// findings folded into them (a DSA beside its per-CVE records; docs/references.md).
    fn findings(
        &self,
        matched: Vec<Matched>,
        scheme: Scheme,
        name: &str,
        version: &str,
        group: &Group,
        now: jiff::Timestamp,
    ) -> Vec<Finding> {
        let mut findings: Vec<Finding> = matched
            .into_iter()
            .map(|m| {
                let entry = m.hit.entry();
                let low = entry.is_some_and(|e| e.low_urgency);
                let status = if low {
                    Status::LowUrgency
                } else if m.paid_fix {
                    Status::FixInPaidStream
                } else if m.fixed.is_some() {
                    Status::Fixed
                } else {
                    Status::Unfixed
                };
                let r = &m.hit.record;
                Finding {
                    id: r.id.clone(),
                    cves: r.cves.clone(),
                    aliases: r.aliases.clone(),
                    also: Vec::new(),
                    source: self.source_label(&m.ecosystem),
                    ecosystem: m.ecosystem,
                    package: name.to_owned(),
                    version: version.to_owned(),
                    installed: group.installed.clone(),
                    fixed_version: m.fixed,
                    status,
                    severity: entry.and_then(|e| e.severity.clone()),
                    summary: r.summary.clone(),
                    published: r.published.clone(),
                    modified: r.modified.clone(),
                    age_days: r.when.map(|t| now.duration_since(t).as_secs().div_euclid(SECONDS_PER_DAY)),
                    kernel: group.kernel,
                }
            })
            .collect();
        // Keep per-CVE records first (the fewest CVEs), then the lowest fix, then the id: of two
        // errata fixing one CVE, the first fix is the one reported.
        let mut seen_cves: HashMap<&str, usize> = HashMap::new();
        for c in findings.iter().flat_map(|f| &f.cves) {
            *seen_cves.entry(c.as_str()).or_default() += 1;
        }
        let overlapping: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.cves.iter().any(|c| seen_cves.get(c.as_str()).is_some_and(|n| *n > 1)))
            .collect();
        let rank = fix_ranks(&overlapping, scheme);
        let key = |f: &Finding| {
            let n = if f.cves.is_empty() { usize::MAX } else { f.cves.len() };
            let r = f.fixed_version.as_ref().and_then(|v| rank.get(v)).copied().unwrap_or(usize::MAX);
            (n, r, f.id.clone())
        };
        findings.sort_by_cached_key(key);
        let mut kept: Vec<Finding> = Vec::with_capacity(findings.len());
        let mut holder: HashMap<String, usize> = HashMap::new();
        for f in findings {
            let new_cve = f.cves.iter().any(|c| !holder.contains_key(c));
            if f.cves.is_empty() || new_cve {
                let at = kept.len();
                for c in &f.cves {
                    holder.entry(c.clone()).or_insert(at);
                }
                kept.push(f);
            } else if let Some(target) = f.cves.first().and_then(|c| holder.get(c)).and_then(|i| kept.get_mut(*i)) {
                target.also.push(f.id);
            }
        }
        for f in &mut kept {
            f.also.sort();
        }
        kept
    }

    /// The names of the sources holding `ecosystem` (cached).
    fn source_label(&self, ecosystem: &str) -> String {
        if let Some(label) = self.cache.borrow().labels.get(ecosystem) {
            return label.clone();
        }
        let label = match self.sources(ecosystem).as_ref() {
            Ok(list) => {
                let names: BTreeSet<&str> = list.iter().map(|s| s.name.as_str()).collect();
                names.into_iter().collect::<Vec<_>>().join(", ")
            }
            Err(_) => String::new(),
        };
        self.cache.borrow_mut().labels.insert(ecosystem.to_owned(), label.clone());
        label
    }

    /// The sources of an ecosystem (cached).
    fn sources(&self, ecosystem: &str) -> Rc<Result<Vec<SourceSummary>, SourceError>> {
        if let Some(hit) = self.cache.borrow().sources.get(ecosystem) {
            return Rc::clone(hit);
        }
        let got = Rc::new(self.source.sources_for(ecosystem));
        self.cache.borrow_mut().sources.insert(ecosystem.to_owned(), Rc::clone(&got));
        got
    }

    /// The prepared records of (ecosystem, package) (cached).
    fn records(&self, ecosystem: &str, package: &str) -> Result<Rc<Vec<Rc<Prepared>>>, SourceError> {
        let key = (ecosystem.to_owned(), package.to_owned());
        if let Some(hit) = self.cache.borrow().records.get(&key) {
            return Ok(Rc::clone(hit));
        }
        let records = self.source.records_for(ecosystem, package)?;
        let prepared: Rc<Vec<Rc<Prepared>>> = Rc::new(
            records
                .iter()
                .filter(|r| r.withdrawn.is_none() && rules::is_security_advisory(&r.id))
                .map(|r| Rc::new(prepare(r, ecosystem, package)))
                .filter(|p| !p.entries.is_empty())
                .collect(),
        );
        let mut cache = self.cache.borrow_mut();
        if cache.records.len() >= MAX_CACHED_PACKAGES {
            cache.records.clear();
        }
        cache.records.insert(key, Rc::clone(&prepared));
        Ok(prepared)
    }

    /// The verdict for (ecosystem, package, version) (cached).
    fn evaluate(
        &self,
        ecosystem: &str,
        scheme: Scheme,
        package: &str,
        version: &str,
    ) -> Result<Rc<Evaluated>, SourceError> {
        let key = format!("{ecosystem}\0{package}\0{version}");
        if let Some(hit) = self.cache.borrow().verdicts.get(&key) {
            return Ok(Rc::clone(hit));
        }
        let records = self.records(ecosystem, package)?;
        let mut ev = Evaluated::default();
        for record in records.iter() {
            ev.listed.insert(record.id.clone());
            // Every entry of the package counts: the version must leave all that hold it.
            let mut verdict = Verdict::NotAffected;
            let mut first = None;
            for (i, entry) in record.entries.iter().enumerate() {
                let step = range::evaluate(&entry.affected, version, scheme).and_then(|v| {
                    if v.is_affected() {
                        first.get_or_insert(i);
                    }
                    range::merge(verdict.clone(), v, scheme)
                });
                match step {
                    Ok(merged) => verdict = merged,
                    Err(e) => ev.errors.push(format!("{} ({ecosystem} {package} {version}): {e}", record.id)),
                }
            }
            if let (Verdict::Affected { fixed, .. }, Some(entry)) = (verdict, first) {
                ev.hits.push(Hit { record: Rc::clone(record), entry, fixed });
            }
        }
        let ev = Rc::new(ev);
        let mut cache = self.cache.borrow_mut();
        if cache.verdicts.len() >= MAX_CACHED_VERDICTS {
            cache.verdicts.clear();
        }
        cache.verdicts.insert(key, Rc::clone(&ev));
        Ok(ev)
    }
}

/// What a package set is matched against, or why it is not.
fn set_target(
    format: &str,
    pkgs: &[&PackageDoc],
    os_target: Option<&Result<OsTarget, NotAssessed>>,
) -> Result<SetTarget, String> {
    let pkg_eco = pkgs.first().map(|p| p.ecosystem.as_str());
    let os_format = format_of_db(format).or_else(|| pkg_eco.and_then(PackageFormat::parse));
    if let Some(fmt) = os_format {
        return match os_target {
            None => Err("no OS was detected on the volume: the packages' release is unknown".to_owned()),
            Some(Err(e)) => Err(e.0.clone()),
            Some(Ok(t)) if t.format != fmt => Err(format!(
                "a {} package database on a root whose packages are {}: no advisory stream covers it",
                fmt.as_str(),
                t.format.as_str()
            )),
            Some(Ok(t)) => Ok(SetTarget::Os(t.clone())),
        };
    }
    match pkg_eco {
        Some(eco) => match ecosystem::app_ecosystem(eco) {
            Some(app) => Ok(SetTarget::App(app)),
            None => Err(format!("no advisory ecosystem is known for {eco} packages")),
        },
        None => Err(format!("no advisory ecosystem is known for a {format} database")),
    }
}

/// The OS package format of an inventory database format (`scanner_ami::inventory::DbFormat`).
fn format_of_db(format: &str) -> Option<PackageFormat> {
    if format.starts_with("dpkg-") {
        Some(PackageFormat::Deb)
    } else if format.starts_with("rpm-") {
        Some(PackageFormat::Rpm)
    } else if format.starts_with("apk-") {
        Some(PackageFormat::Apk)
    } else {
        None
    }
}

/// Reduce a record to the entries of (ecosystem, package) and what findings need.
fn prepare(record: &osv::Record, ecosystem: &str, package: &str) -> Prepared {
    let is_cve = |s: &String| s.starts_with("CVE-");
    let mut cves: Vec<String> = std::iter::once(&record.id)
        .chain(&record.aliases)
        .chain(&record.upstream)
        .chain(&record.related)
        .filter(|s| is_cve(s))
        .cloned()
        .collect();
    cves.sort();
    cves.dedup();
    let mut aliases: Vec<String> =
        record.aliases.iter().chain(&record.upstream).filter(|s| !is_cve(s)).cloned().collect();
    aliases.sort();
    aliases.dedup();
    let entries = record
        .affected
        .iter()
        .filter(|a| a.package.as_ref().is_some_and(|p| p.ecosystem == ecosystem && p.name == package))
        .map(|a| Entry {
            affected: osv::Affected {
                package: None,
                ranges: a.ranges.clone(),
                versions: a.versions.clone(),
                ecosystem_specific: None,
                database_specific: None,
                severity: Vec::new(),
            },
            severity: severity::severity(record, a),
            low_urgency: severity::is_low_urgency(record, a),
        })
        .collect();
    Prepared {
        id: record.id.clone(),
        cves,
        aliases,
        summary: record.summary.clone(),
        published: record.published.clone(),
        modified: record.modified.clone(),
        when: record.published.as_deref().unwrap_or(&record.modified).parse().ok(),
        entries,
    }
}

/// The rank of each fixed version of `findings` (those sharing a CVE), in the scheme's order (a stable insertion
/// sort, which cannot panic whatever the comparator answers; one it cannot order ranks as equal).
fn fix_ranks(findings: &[&Finding], scheme: Scheme) -> HashMap<String, usize> {
    let mut sorted: Vec<&str> = Vec::new();
    for v in findings.iter().filter_map(|f| f.fixed_version.as_deref()) {
        if sorted.contains(&v) {
            continue;
        }
        let mut at = sorted.len();
        while at > 0
            && sorted.get(at - 1).is_some_and(|prev| {
                crate::vuln::version::compare(scheme, prev, v).is_ok_and(|o| o == std::cmp::Ordering::Greater)
            })
        {
            at -= 1;
        }
        sorted.insert(at, v);
    }
    sorted.into_iter().enumerate().map(|(i, v)| (v.to_owned(), i)).collect()
}

/// Whole days from the RFC 3339 time `from` to `now` (`None` when it does not parse).
fn days_between(from: &str, now: jiff::Timestamp) -> Option<i64> {
    let from: jiff::Timestamp = from.parse().ok()?;
    Some(now.duration_since(from).as_secs().div_euclid(SECONDS_PER_DAY))
}

const SECONDS_PER_DAY: i64 = 86_400;

#[cfg(test)]
mod tests;
