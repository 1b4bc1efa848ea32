//! The audit's output: a table grouped by job and Region, or JSON, and the exit status a cron job
//! alerts on (0 nothing leaked remains, 1 leaks remain — reported or not deletable —, 2 the audit
//! is incomplete or failed).
//!
//! Names and tags come from the account and may hold anything; the table replaces control
//! characters (ANSI escapes included) before printing them. JSON escapes them itself.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{Value, json};

use super::classify::human;
use super::{AuditReport, Class, Found};
use crate::ledger::ResourceId;

/// Nothing leaked remains.
pub const EXIT_CLEAN: u8 = 0;
/// Leaks remain: reported (dry run), not deletable (stuck), or their deletion failed.
pub const EXIT_LEAKS: u8 = 1;
/// The audit is incomplete (a Region skipped, a listing failed) or could not run.
pub const EXIT_ERROR: u8 = 2;

/// The exit status of a report (see the module documentation); incompleteness wins over leaks.
#[must_use]
pub fn exit_code(r: &AuditReport) -> u8 {
    if r.incomplete() {
        EXIT_ERROR
    } else if r.leaks_remaining() > 0 {
        EXIT_LEAKS
    } else {
        EXIT_CLEAN
    }
}

/// `s` with control characters replaced, cut to `max` characters.
fn clean(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// The id for the table: a grant as `<key id>#<first 16 of the grant id>…` (the JSON has it whole).
fn short_id(id: &ResourceId) -> String {
    match id {
        ResourceId::KmsGrant { key, grant } => {
            let g = grant.as_str();
            let cut: String = g.chars().take(16).collect();
            let more = if g.chars().count() > 16 { "…" } else { "" };
            format!("{}#{cut}{more}", key.key_id())
        }
        ResourceId::Snapshot(_)
        | ResourceId::Volume(_)
        | ResourceId::Instance(_)
        | ResourceId::Vpc(_)
        | ResourceId::Subnet(_)
        | ResourceId::InternetGateway(_)
        | ResourceId::RouteTable(_)
        | ResourceId::SecurityGroup(_)
        | ResourceId::VpcEndpoint(_)
        | ResourceId::NetworkInterface(_)
        | ResourceId::Image(_) => id.to_string(),
    }
}

/// What happened or would happen to a resource.
fn outcome(f: &Found, delete: bool, include_foreign: bool) -> &'static str {
    match (f.class, f.deleted, &f.error) {
        (_, true, _) => "deleted",
        (Class::Leaked | Class::Foreign, false, Some(_)) => "FAILED",
        (Class::Leaked, false, None) if delete => "left",
        (Class::Leaked, false, None) => "would delete",
        (Class::Foreign, false, None) if include_foreign && !delete => "would delete",
        (Class::Foreign, false, None) => "kept",
        (Class::Active, false, _) => "kept",
        (Class::Stuck, false, _) => "NEEDS A PERSON",
    }
}

/// Counts by class, and what remains.
fn summary(r: &AuditReport) -> String {
    let count = |c: Class| r.of_class(c).count();
    let deleted = r.resources.iter().filter(|f| f.deleted).count();
    format!(
        "{} found: {} active, {} leaked, {} foreign, {} stuck; {} deleted; leaks remaining: {}",
        r.resources.len(),
        count(Class::Active),
        count(Class::Leaked),
        count(Class::Foreign),
        count(Class::Stuck),
        deleted,
        r.leaks_remaining()
    )
}

/// The table (see the module documentation).
///
/// # Errors
///
/// Writing to `out` fails.
pub fn write_table(r: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    let regions: Vec<&str> = r.regions_audited.iter().map(|x| x.as_str()).collect();
    writeln!(
        out,
        "agentless audit of account {} at {}: {} (grace {}, {}{})",
        r.account,
        r.now,
        if regions.is_empty() { "no Region".to_owned() } else { regions.join(", ") },
        human(r.grace),
        if r.delete { "delete" } else { "dry run" },
        if r.include_foreign { ", include foreign" } else { "" },
    )?;
    if let Some(note) = &r.ledger_note {
        writeln!(out, "ledger: {}", clean(note, 400))?;
    }
    for s in &r.regions_skipped {
        writeln!(out, "SKIPPED {}: {}", s.region, clean(&s.reason.to_string(), 400))?;
    }
    for e in &r.listing_errors {
        writeln!(out, "INCOMPLETE: {}", clean(e, 400))?;
    }
    for w in &r.warnings {
        writeln!(out, "warning: {}", clean(w, 400))?;
    }
    let mut groups: BTreeMap<(Option<String>, String), Vec<&Found>> = BTreeMap::new();
    for f in &r.resources {
        let job = f.job.as_ref().map(ToString::to_string);
        groups.entry((job, f.region.to_string())).or_default().push(f);
    }
    // Jobs in order, resources without a job last.
    let mut keys: Vec<&(Option<String>, String)> = groups.keys().collect();
    keys.sort_by_key(|(job, region)| (job.is_none(), job.clone(), region.clone()));
    for key in keys {
        let (job, region) = key;
        let rows = &groups[key];
        writeln!(out)?;
        match job {
            Some(j) => {
                let state = rows
                    .iter()
                    .find_map(|f| f.job_state)
                    .map_or_else(|| "not in the ledger".to_owned(), |s| format!("{s} in the ledger"));
                writeln!(out, "job {j} ({state}) in {region}")?;
            }
            None => writeln!(out, "no job in {region}")?,
        }
        let header = ["CLASS", "KIND", "ID", "NAME", "STATE", "RESULT"];
        let cells: Vec<[String; 6]> = rows
            .iter()
            .map(|f| {
                [
                    f.class.to_string(),
                    f.kind.to_string(),
                    short_id(&f.id),
                    f.name.as_deref().map_or_else(|| "-".to_owned(), |n| clean(n, 60)),
                    f.state.as_deref().map_or_else(|| "-".to_owned(), |s| clean(s, 20)),
                    outcome(f, r.delete, r.include_foreign).to_owned(),
                ]
            })
            .collect();
        let mut width = header.map(str::len);
        for row in &cells {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: [&str; 6]| {
            let mut s = String::from(" ");
            for (i, c) in cols.iter().enumerate() {
                if i + 1 == cols.len() {
                    s.push(' ');
                    s.push_str(c);
                } else {
                    s.push_str(&format!(" {c:<w$}", w = width[i]));
                }
            }
            s
        };
        writeln!(out, "{}", line(header))?;
        for (f, row) in rows.iter().zip(&cells) {
            writeln!(out, "{}", line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]]))?;
            writeln!(out, "      why: {}", clean(&f.reason, 600))?;
            if let Some(e) = &f.error {
                writeln!(out, "      error: {}", clean(e, 600))?;
            }
            if let Some(a) = &f.action_needed {
                writeln!(out, "      to do: {}", clean(a, 800))?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", summary(r))?;
    writeln!(out, "exit status {}", exit_code(r))
}

/// One resource as JSON.
fn found_json(f: &Found) -> Value {
    let tags: serde_json::Map<String, Value> =
        f.tags.iter().map(|t| (t.key.clone(), Value::String(t.value.clone()))).collect();
    json!({
        "kind": f.kind.as_str(),
        "region": f.region,
        "id": f.id.to_stored(),
        "name": f.name,
        "job": f.job,
        "job_state": f.job_state.map(|s| s.as_str()),
        "expires_at": f.expires_at.map(|t| t.to_string()),
        "state": f.state,
        "class": f.class,
        "reason": f.reason,
        "action_needed": f.action_needed,
        "deleted": f.deleted,
        "error": f.error,
        "tags": tags,
    })
}

/// The report as JSON.
#[must_use]
pub fn to_json(r: &AuditReport) -> Value {
    let count = |c: Class| r.of_class(c).count();
    json!({
        "account": r.account,
        "now": r.now.to_string(),
        "grace_seconds": r.grace.as_secs(),
        "mode": if r.delete { "delete" } else { "dry-run" },
        "include_foreign": r.include_foreign,
        "regions_audited": r.regions_audited,
        "regions_skipped": r.regions_skipped.iter().map(|s| json!({
            "region": s.region,
            "reason": s.reason.to_string(),
        })).collect::<Vec<_>>(),
        "ledger": { "used": r.ledger_note.is_none(), "note": r.ledger_note },
        "listing_errors": r.listing_errors,
        "warnings": r.warnings,
        "resources": r.resources.iter().map(found_json).collect::<Vec<_>>(),
        "summary": {
            "active": count(Class::Active),
            "leaked": count(Class::Leaked),
            "foreign": count(Class::Foreign),
            "stuck": count(Class::Stuck),
            "deleted": r.resources.iter().filter(|f| f.deleted).count(),
            "leaks_remaining": r.leaks_remaining(),
        },
        "exit_code": exit_code(r),
    })
}

/// The report as pretty JSON and a newline.
///
/// # Errors
///
/// Writing to `out` fails.
pub fn write_json(r: &AuditReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_json(r)).map_err(io::Error::other)?;
    writeln!(out)
}
