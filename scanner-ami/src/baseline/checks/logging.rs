//! Logging: rsyslog installed, enabled and creating log files 0640 or stricter; journald
//! compressing and persisting its journal; and the permissions of the files under `/var/log`
//! (CIS Ubuntu 4.2, RHEL 9 4.2). Decided from `/etc/rsyslog.conf` (with `$IncludeConfig` and
//! `include()`), `journald.conf` and its drop-ins, and a bounded listing of `/var/log`.

use super::services::{Eval, Presence, any_enabled, cis, presence, template};
use crate::baseline::ctx::glob;
use crate::baseline::parse::fstab::{IniSet, load_ini};
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity};
use crate::fs::{FileKind, join};
use crate::os::Family;

const ALL: &[Family] = &[];

const RSYSLOG_CONF: &str = "/etc/rsyslog.conf";

/// rsyslog's file creation mode when `$FileCreateMode` is not set (rsyslog omfile docs).
const RSYSLOG_DEFAULT_MODE: u32 = 0o644;

/// Most rsyslog files followed through includes, and the deepest include nesting.
const MAX_RSYSLOG_FILES: usize = 64;
const MAX_INCLUDE_DEPTH: usize = 8;

/// Most entries listed under /var/log. A busy server keeps a few hundred log files; the bound
/// keeps a log directory with millions of files from costing more than a bounded listing.
const MAX_VAR_LOG_ENTRIES: usize = 10_000;
/// Deepest directory level under /var/log examined (real layouts are 3 deep at most).
const MAX_VAR_LOG_DEPTH: usize = 8;
/// Most offending log files listed.
const MAX_LISTED: usize = 50;

/// Log files that are group-writable by design (login accounting written through the `utmp`
/// group; CIS Ubuntu 22.04 lists them as exceptions).
const UTMP_FILES: [&str; 3] = ["lastlog", "wtmp", "btmp"];

fn rsyslog_present(ctx: &Ctx<'_>) -> Presence {
    presence(ctx, &["rsyslog"], &["/usr/sbin/rsyslogd", RSYSLOG_CONF])
}

fn rsyslog_installed(ctx: &Ctx<'_>) -> Outcome {
    match rsyslog_present(ctx) {
        Presence::Installed(ev) => Outcome::pass(ev),
        Presence::Absent(mut ev) => {
            for e in &mut ev {
                e.expected = Some("rsyslog installed".to_owned());
            }
            Outcome::fail(ev)
        }
    }
}

fn rsyslog_enabled(ctx: &Ctx<'_>) -> Outcome {
    if let Presence::Absent(_) = rsyslog_present(ctx) {
        return Outcome::na("rsyslog is not installed (see log.rsyslog_installed)");
    }
    match any_enabled(ctx, &["rsyslog.service"]) {
        Ok((Some(_), ev)) => Outcome::pass(ev),
        Ok((None, mut ev)) => {
            ev.push(Evidence::note("rsyslog.service is not wanted by any target").expected("rsyslog.service enabled"));
            Outcome::fail(ev)
        }
        Err(e) => Outcome::error(e),
    }
}

/// The include target of an rsyslog line, if it is an include.
fn rsyslog_include(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix("$IncludeConfig") {
        return Some(rest.trim().to_owned());
    }
    let rest = line.strip_prefix("include(")?;
    let pos = rest.find("file=\"")?;
    let val = rest.get(pos + 6..)?;
    Some(val.split('"').next().unwrap_or_default().to_owned())
}

/// The `FileCreateMode` of a RainerScript `module(load="builtin:omfile" FileCreateMode="0640")`.
fn omfile_mode(line: &str) -> Option<String> {
    if !line.contains("builtin:omfile") {
        return None;
    }
    let pos = line.find("FileCreateMode=\"")?;
    let val = line.get(pos + 16..)?;
    Some(val.split('"').next().unwrap_or_default().to_owned())
}

fn file_create_mode(ctx: &Ctx<'_>) -> Outcome {
    if let Presence::Absent(_) = rsyslog_present(ctx) {
        return Outcome::na("rsyslog is not installed (see log.rsyslog_installed)");
    }
    // Depth-first through includes, in document order.
    struct Frame {
        file: String,
        lines: Vec<String>,
        next: usize,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    match ctx.read_text(RSYSLOG_CONF) {
        Ok(Some(t)) => {
            stack.push(Frame { file: RSYSLOG_CONF.to_owned(), lines: t.lines().map(str::to_owned).collect(), next: 0 })
        }
        Ok(None) => {
            return Outcome::fail(vec![Evidence::file(RSYSLOG_CONF).found("absent").expected("$FileCreateMode 0640")]);
        }
        Err(e) => return Outcome::error(e),
    }
    seen.push(RSYSLOG_CONF.to_owned());
    let mut last: Option<(String, usize, String)> = None;
    while let Some(top) = stack.last_mut() {
        let Some(raw) = top.lines.get(top.next).cloned() else {
            stack.pop();
            continue;
        };
        top.next += 1;
        let (file, n) = (top.file.clone(), top.next);
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(v) = line.strip_prefix("$FileCreateMode") {
            last = Some((file, n, v.trim().to_owned()));
            continue;
        }
        if let Some(v) = omfile_mode(line) {
            last = Some((file, n, v));
            continue;
        }
        let Some(pattern) = rsyslog_include(line) else { continue };
        if stack.len() >= MAX_INCLUDE_DEPTH {
            return Outcome::error(format!("{file}:{n}: includes nested deeper than {MAX_INCLUDE_DEPTH}"));
        }
        let matches = match glob(ctx, &pattern, MAX_RSYSLOG_FILES) {
            Ok(m) => m,
            Err(e) => return Outcome::error(e),
        };
        // Push in reverse so the first match is processed first.
        for m in matches.into_iter().rev() {
            if seen.contains(&m) {
                continue;
            }
            if seen.len() >= MAX_RSYSLOG_FILES {
                return Outcome::error(format!("more than {MAX_RSYSLOG_FILES} rsyslog configuration files"));
            }
            seen.push(m.clone());
            match ctx.read_text(&m) {
                Ok(Some(t)) => stack.push(Frame { file: m, lines: t.lines().map(str::to_owned).collect(), next: 0 }),
                Ok(None) => {}
                Err(e) => return Outcome::error(e),
            }
        }
    }
    match last {
        Some((file, line, value)) => {
            let mode = u32::from_str_radix(value.trim_start_matches("0o"), 8);
            let ev =
                Evidence::file(file).line(line).found(format!("FileCreateMode {value}")).expected("0640 or stricter");
            match mode {
                Ok(m) => Outcome::check(m & !0o640 == 0, vec![ev]),
                Err(_) => Outcome::fail(vec![ev.with_note("not an octal mode".to_owned())]),
            }
        }
        None => Outcome::fail(vec![
            Evidence::note(format!(
                "no $FileCreateMode in {}; rsyslog's default {RSYSLOG_DEFAULT_MODE:04o} applies",
                seen.join(", ")
            ))
            .expected("$FileCreateMode 0640"),
        ]),
    }
}

fn journald(ctx: &Ctx<'_>) -> IniSet {
    load_ini(
        ctx,
        &["/etc/systemd/journald.conf", "/usr/lib/systemd/journald.conf"],
        &["/etc/systemd/journald.conf.d", "/run/systemd/journald.conf.d", "/usr/lib/systemd/journald.conf.d"],
    )
}

fn journald_setting(ctx: &Ctx<'_>, key: &str, expected: &str, default_note: &str) -> Outcome {
    let set = journald(ctx);
    if let Some(e) = set.errors.first() {
        return Outcome::error(e.clone());
    }
    let want = format!("{key}={expected}");
    match set.get("Journal", key) {
        Some(e) => Outcome::check(
            e.value.eq_ignore_ascii_case(expected),
            vec![Evidence::file(e.file.clone()).line(e.line).found(format!("{key}={}", e.value)).expected(want)],
        ),
        None => Outcome::fail(vec![
            Evidence::note(format!(
                "{key} not set in [Journal] of {}; {default_note}",
                if set.files.is_empty() { "/etc/systemd/journald.conf".to_owned() } else { set.files.join(", ") }
            ))
            .expected(want),
        ]),
    }
}

fn journald_compress(ctx: &Ctx<'_>) -> Outcome {
    journald_setting(
        ctx,
        "Compress",
        "yes",
        "systemd's compiled-in default (yes) applies, but CIS and SSG want it set explicitly",
    )
}

fn journald_storage(ctx: &Ctx<'_>) -> Outcome {
    let persistent_dir = matches!(ctx.stat("/var/log/journal"), Ok(Some(m)) if m.kind == FileKind::Dir);
    let note = if persistent_dir {
        "the default Storage=auto persists because /var/log/journal exists, but CIS and SSG want it set explicitly"
    } else {
        "the default Storage=auto keeps the journal in memory only (/var/log/journal does not exist)"
    };
    journald_setting(ctx, "Storage", "persistent", note)
}

fn var_log_permissions(ctx: &Ctx<'_>) -> Outcome {
    let mut stack = vec![("/var/log".to_owned(), 0usize)];
    let mut seen = 0usize;
    let mut bad = Vec::new();
    let mut bad_total = 0usize;
    let mut files = 0usize;
    let mut incomplete = None;
    while let Some((dir, depth)) = stack.pop() {
        let entries = match ctx.list_dir(&dir) {
            Ok(v) => v,
            Err(e) => {
                incomplete = Some(e);
                continue;
            }
        };
        for e in entries {
            seen += 1;
            if seen > MAX_VAR_LOG_ENTRIES {
                incomplete = Some(format!("more than {MAX_VAR_LOG_ENTRIES} entries under /var/log"));
                break;
            }
            let path = join(&dir, &e.name);
            match e.kind {
                FileKind::Dir if depth + 1 < MAX_VAR_LOG_DEPTH => stack.push((path, depth + 1)),
                FileKind::File => {
                    let base = e.name.split('.').next().unwrap_or_default();
                    let m = match ctx.lstat(&path) {
                        Ok(Some(m)) => m,
                        Ok(None) => continue,
                        Err(err) => {
                            incomplete = Some(err);
                            continue;
                        }
                    };
                    files += 1;
                    let allowed = if UTMP_FILES.contains(&base) { 0o664 } else { 0o640 };
                    if m.mode & !allowed != 0 {
                        bad_total += 1;
                        if bad.len() < MAX_LISTED {
                            bad.push(
                                Evidence::file(path).found(format!("{:04o}", m.mode)).expected(format!(
                                    "{allowed:04o} or stricter (no group write, no access for others)"
                                )),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if bad_total > bad.len() {
        bad.push(Evidence::note(format!("{bad_total} files found; the first {MAX_LISTED} are listed")));
    }
    if bad_total > 0 {
        return Outcome::fail(bad);
    }
    if let Some(why) = incomplete {
        return Outcome::error(format!("/var/log could not be listed completely: {why}"));
    }
    Outcome::pass(vec![
        Evidence::file("/var/log").found(format!("{files} files, none group-writable or accessible by others")),
    ])
}

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    let list: [(Rule, Eval); 6] = [
        (
            template(
                "log.rsyslog_installed",
                Some("package_rsyslog_installed"),
                cis(Some("4.2.1.1"), Some("4.2.1.1")),
                "Ensure rsyslog is installed",
                Severity::Medium,
                "rsyslog writes system messages to files and can forward them off the host.",
                "`apt install rsyslog` / `dnf install rsyslog`.",
                ALL,
            ),
            rsyslog_installed,
        ),
        (
            template(
                "log.rsyslog_enabled",
                Some("service_rsyslog_enabled"),
                cis(Some("4.2.1.2"), Some("4.2.1.2")),
                "Ensure rsyslog is enabled at boot",
                Severity::Medium,
                "An installed rsyslog records nothing unless it starts at boot.",
                "`systemctl enable rsyslog`.",
                ALL,
            ),
            rsyslog_enabled,
        ),
        (
            template(
                "log.rsyslog_file_create_mode",
                Some("rsyslog_files_permissions"),
                cis(None, Some("4.2.1.4")),
                "Ensure rsyslog creates log files 0640 or stricter",
                Severity::Medium,
                "Logs can hold sensitive data; files rsyslog creates must not be readable by every user.",
                "Add `$FileCreateMode 0640` near the top of /etc/rsyslog.conf (or a file in /etc/rsyslog.d/).",
                ALL,
            ),
            file_create_mode,
        ),
        (
            template(
                "log.journald_compress",
                Some("journald_compress"),
                cis(None, Some("4.2.2.3")),
                "Ensure journald compresses large journal files",
                Severity::Medium,
                "Compression keeps large journals from filling the disk and losing records.",
                "Set `Compress=yes` under [Journal] in /etc/systemd/journald.conf (or a drop-in in /etc/systemd/journald.conf.d/).",
                ALL,
            ),
            journald_compress,
        ),
        (
            template(
                "log.journald_storage",
                Some("journald_storage"),
                cis(None, Some("4.2.2.4")),
                "Ensure journald writes the journal to persistent storage",
                Severity::Medium,
                "A volatile journal is lost at reboot, with the evidence it held.",
                "Set `Storage=persistent` under [Journal] in /etc/systemd/journald.conf.",
                ALL,
            ),
            journald_storage,
        ),
        (
            template(
                "log.var_log_permissions",
                Some("permissions_local_var_log"),
                cis(None, Some("4.2.3")),
                "Ensure log files under /var/log are not group-writable or accessible by others",
                Severity::Medium,
                "Readable logs leak information; writable logs can be falsified.",
                "`find /var/log -type f -exec chmod g-wx,o-rwx {} +` (lastlog, wtmp and btmp may stay 0664 for the utmp group).",
                ALL,
            ),
            var_log_permissions,
        ),
    ];
    list.into_iter().map(|(r, eval)| Rule { eval, ..r }).collect()
}
