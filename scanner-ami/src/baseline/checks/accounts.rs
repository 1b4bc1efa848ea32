//! Account rules: password aging defaults in `/etc/login.defs` and `/etc/default/useradd` and
//! their application to existing accounts, system-account shells, root's group, the default
//! umask and shell timeout, the permissions of the account databases, their consistency, root's
//! PATH, and interactive users' home directories and dot files (CIS Ubuntu 22.04 5.4/6.1/6.2,
//! RHEL 9 5.6/6.1/6.2).
//!
//! Ownership is always resolved against the image's own `/etc/passwd` and `/etc/group`
//! ([`accounts::load`]). Also holds the file-permission helpers the SSH and sudo rules share.
//!
//! "Now" for the last-password-change rule is the scanner's clock (`SystemTime::now`): dates in
//! `/etc/shadow` are absolute days since 1970, so comparing them with the current date needs no
//! state of the scanning host beyond the calendar.

use super::{BASE, cis};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::baseline::parse::accounts::{self, Accounts, Db, Shadow, User};
use crate::baseline::parse::logindefs::{self, LOGIN_DEFS, USERADD};
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity, ctx};
use crate::fs::{FileKind, Meta};
use crate::os::Family;

/// Most failing items listed in one finding; the number of the rest is given in a note. Enough to
/// show every offender on a real system while bounding baseline.json on a crafted one.
pub(crate) const MAX_EVIDENCE: usize = 50;

/// Most interactive users whose home directories are examined (each costs a directory listing);
/// real systems have a few, directory-backed ones do not list their users in /etc/passwd.
pub(crate) const MAX_HOMES: usize = 10_000;

/// Most line numbers listed for one duplicated name or id.
const MAX_LISTED_LINES: usize = 10;

/// Most directory entries examined across all home directories by the dot-file rule: a crafted
/// image could point thousands of accounts at directories of 100,000 entries each.
const MAX_HOME_ENTRIES: usize = 1_000_000;

/// The `nobody` account's conventional uid (never an interactive user; SSG excludes it too).
const NOBODY_UID: u32 = 65_534;

/// Most `/etc/profile.d/*.sh` files read for the umask and TMOUT rules: distributions ship a few
/// dozen at most; bounds reads on a crafted directory.
const MAX_PROFILE_D: usize = 1_000;

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by checks::ssh and checks::sudo).

/// `0644`-style rendering of permission bits.
#[must_use]
pub(crate) fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// True if `mode` grants nothing beyond `max` (set-id and sticky bits included).
#[must_use]
pub(crate) fn within(mode: u32, max: u32) -> bool {
    mode & 0o7777 & !max == 0
}

/// Keep at most [`MAX_EVIDENCE`] items, noting how many were left out.
#[must_use]
pub(crate) fn capped(mut ev: Vec<Evidence>) -> Vec<Evidence> {
    if ev.len() > MAX_EVIDENCE {
        let more = ev.len() - MAX_EVIDENCE;
        ev.truncate(MAX_EVIDENCE);
        ev.push(Evidence::note(format!("… and {more} more")));
    }
    ev
}

/// What a file's owner, group and mode must be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileSpec {
    /// Most permissive mode allowed.
    pub max_mode: u32,
    /// Acceptable group names (gid 0 counts as `root`).
    pub groups: &'static [&'static str],
}

/// Which attribute a rule checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    Mode,
    Owner,
    Group,
}

/// Decide one attribute of `path` whose metadata is `meta`: `(compliant, evidence)`, or the
/// reason the group database needed to name the group cannot be read.
pub(crate) fn check_attr(
    ctx: &Ctx<'_>,
    path: &str,
    meta: &Meta,
    attr: Attr,
    spec: FileSpec,
) -> Result<(bool, Evidence), String> {
    let acc = accounts::load(ctx);
    let ev = Evidence::file(path);
    Ok(match attr {
        Attr::Mode => (
            within(meta.mode, spec.max_mode),
            ev.found(octal(meta.mode)).expected(format!("{} or stricter", octal(spec.max_mode))),
        ),
        Attr::Owner => {
            (meta.uid == 0, ev.found(format!("owner {}", acc.user_label(meta.uid))).expected("owner root(0)"))
        }
        Attr::Group => {
            let name = if meta.gid == 0 {
                Some("root".to_owned())
            } else {
                if let Some(e) = &acc.group.error {
                    return Err(format!("cannot name group {} of {path}: {e}", meta.gid));
                }
                acc.group_by_gid(meta.gid).map(|g| g.name.clone())
            };
            let ok = name.as_deref().is_some_and(|n| spec.groups.contains(&n));
            (
                ok,
                ev.found(format!("group {}", acc.group_label(meta.gid)))
                    .expected(format!("group {}", spec.groups.join(" or "))),
            )
        }
    })
}

/// A whole single-file attribute rule: notapplicable when the file does not exist.
pub(crate) fn file_attr(ctx: &Ctx<'_>, path: &str, attr: Attr, spec: FileSpec) -> Outcome {
    let meta = match ctx.stat(path) {
        Err(e) => return Outcome::error(e),
        Ok(None) => return Outcome::na(format!("{path} does not exist")),
        Ok(Some(m)) => m,
    };
    match check_attr(ctx, path, &meta, attr, spec) {
        Ok((ok, ev)) => Outcome::check(ok, vec![ev]),
        Err(e) => Outcome::error(e),
    }
}

/// The world-readable databases: `0644 root:root`.
fn public_spec(_: &Ctx<'_>) -> FileSpec {
    FileSpec { max_mode: 0o644, groups: &["root"] }
}

/// The shadow databases: `0000 root:root` on the RHEL family (its `shadow-utils` ships them so and
/// CIS RHEL 9 6.1.5-6.1.8 asks for it), `0640 root:shadow` elsewhere (Debian's `passwd` package,
/// SUSE, Alpine; CIS Ubuntu 22.04 6.1.3/6.1.4/6.1.7/6.1.9 accept group root or shadow).
fn shadow_spec(ctx: &Ctx<'_>) -> FileSpec {
    if ctx.family() == Family::Rhel {
        FileSpec { max_mode: 0, groups: &["root"] }
    } else {
        FileSpec { max_mode: 0o640, groups: &["root", "shadow"] }
    }
}

// ---------------------------------------------------------------------------------------------
// Account database access.

fn db_usable<T>(db: &Db<T>, path: &str) -> Result<(), String> {
    if let Some(e) = &db.error {
        return Err(e.clone());
    }
    if !db.present {
        return Err(format!("{path} does not exist"));
    }
    if db.malformed.len() > db.records.len() {
        let (line, why) = db.malformed.first().cloned().unwrap_or_default();
        return Err(format!(
            "{path}: {} of {} lines are not {path} records (line {line}: {why})",
            db.malformed.len(),
            db.malformed.len() + db.records.len()
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Passwd,
    Shadow,
    Group,
}

/// The account databases, or an `error` outcome naming the one that cannot be used.
fn need(ctx: &Ctx<'_>, which: &[Which]) -> Result<Rc<Accounts>, Outcome> {
    let acc = accounts::load(ctx);
    for w in which {
        let r = match w {
            Which::Passwd => db_usable(&acc.passwd, "/etc/passwd"),
            Which::Shadow => db_usable(&acc.shadow, "/etc/shadow"),
            Which::Group => db_usable(&acc.group, "/etc/group"),
        };
        r.map_err(Outcome::error)?;
    }
    Ok(acc)
}

/// Malformed lines of a database as evidence notes (they are skipped, as glibc skips them).
fn malformed<T>(db: &Db<T>, path: &str) -> Vec<Evidence> {
    db.malformed
        .iter()
        .map(|(line, why)| Evidence::file(path).line(*line).with_note(format!("malformed line skipped: {why}")))
        .collect()
}

/// True for shells that refuse logins (`nologin`, `false`).
#[must_use]
pub(crate) fn is_nologin(shell: &str) -> bool {
    let base = shell.trim().rsplit('/').next().unwrap_or("");
    base == "nologin" || base == "false"
}

/// `UID_MIN` and the evidence of where it came from.
fn uid_min(ctx: &Ctx<'_>) -> (u32, String) {
    let defs = logindefs::load(ctx);
    let v = defs.uid_min();
    let from = match defs.get("UID_MIN") {
        Ok(Some(s)) if s.int().is_some() => format!("UID_MIN {v} ({}:{})", s.file, s.line),
        _ => format!("UID_MIN {v} (shadow-utils default)"),
    };
    (v, from)
}

/// Interactive users as SSG defines them: uid ≥ UID_MIN, not `nobody`, with a login shell.
fn interactive(acc: &Accounts, uid_min: u32) -> Vec<&User> {
    acc.passwd.records.iter().filter(|u| u.uid >= uid_min && u.uid != NOBODY_UID && !is_nologin(&u.shell)).collect()
}

/// Today as days since 1970-01-01 (the unit of `/etc/shadow` dates), from the scanner's clock.
fn today() -> i64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(i64::MAX)
}

/// True when the shadow hash field holds a usable password (not empty, not locked `!`/`*`).
fn has_password(s: &Shadow) -> bool {
    !s.hash.is_empty() && !s.hash.starts_with('!') && !s.hash.starts_with('*')
}

// ---------------------------------------------------------------------------------------------
// login.defs and useradd defaults.

fn defs_setting(ctx: &Ctx<'_>, file: &str, key: &str, expected: &str, default: &str, ok: fn(i64) -> bool) -> Outcome {
    let defs = logindefs::load(ctx);
    let got = if file == USERADD { defs.useradd(key) } else { defs.get(key) };
    match got {
        Err(e) => Outcome::error(e),
        Ok(Some(s)) => {
            let ev = Evidence::file(&s.file).line(s.line).found(format!("{key} {}", s.value)).expected(expected);
            match s.int() {
                Some(v) => Outcome::check(ok(v), vec![ev]),
                None => Outcome::fail(vec![ev.with_note("not a number")]),
            }
        }
        Ok(None) => Outcome::fail(vec![
            Evidence::file(file)
                .found(format!("{key} not set"))
                .expected(expected)
                .with_note(format!("the default applies: {default}")),
        ]),
    }
}

fn pass_max_days(ctx: &Ctx<'_>) -> Outcome {
    defs_setting(ctx, LOGIN_DEFS, "PASS_MAX_DAYS", "PASS_MAX_DAYS 1..=365", "99999 (never expires)", |v| {
        (1..=365).contains(&v)
    })
}

fn pass_min_days(ctx: &Ctx<'_>) -> Outcome {
    defs_setting(ctx, LOGIN_DEFS, "PASS_MIN_DAYS", "PASS_MIN_DAYS >= 1", "0", |v| v >= 1)
}

fn pass_warn_age(ctx: &Ctx<'_>) -> Outcome {
    defs_setting(ctx, LOGIN_DEFS, "PASS_WARN_AGE", "PASS_WARN_AGE >= 7", "no warning", |v| v >= 7)
}

fn inactive(ctx: &Ctx<'_>) -> Outcome {
    defs_setting(ctx, USERADD, "INACTIVE", "INACTIVE 0..=30", "-1 (never locked)", |v| (0..=30).contains(&v))
}

fn encrypt_method(ctx: &Ctx<'_>) -> Outcome {
    let expected = "ENCRYPT_METHOD SHA512 or YESCRYPT";
    match logindefs::load(ctx).get("ENCRYPT_METHOD") {
        Err(e) => Outcome::error(e),
        Ok(Some(s)) => {
            let ok = s.value.eq_ignore_ascii_case("SHA512") || s.value.eq_ignore_ascii_case("YESCRYPT");
            Outcome::check(
                ok,
                vec![
                    Evidence::file(&s.file)
                        .line(s.line)
                        .found(format!("ENCRYPT_METHOD {}", s.value))
                        .expected(expected),
                ],
            )
        }
        Ok(None) => Outcome::fail(vec![
            Evidence::file(LOGIN_DEFS)
                .found("ENCRYPT_METHOD not set")
                .expected(expected)
                .with_note("shadow-utils then falls back to MD5_CRYPT_ENAB or DES"),
        ]),
    }
}

/// Existing accounts with a password: each must satisfy `ok` on its shadow field.
fn existing(
    ctx: &Ctx<'_>,
    field: &str,
    expected: &str,
    get: fn(&Shadow) -> Option<i64>,
    ok: fn(i64) -> bool,
) -> Outcome {
    let acc = match need(ctx, &[Which::Shadow]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let mut bad = Vec::new();
    let mut checked = 0usize;
    for s in acc.shadow.records.iter().filter(|s| has_password(s)) {
        checked += 1;
        let v = get(s);
        if !v.is_some_and(ok) {
            let shown = v.map_or_else(|| "empty".to_owned(), |v| v.to_string());
            bad.push(
                Evidence::file("/etc/shadow")
                    .line(s.line)
                    .found(format!("{}: {field} {shown}", s.name))
                    .expected(expected),
            );
        }
    }
    if checked == 0 {
        Outcome::na("no account in /etc/shadow has a password (all locked or without one)")
    } else if bad.is_empty() {
        Outcome::pass(vec![
            Evidence::file("/etc/shadow").with_note(format!("{checked} accounts with a password checked")),
        ])
    } else {
        Outcome::fail(capped(bad))
    }
}

fn existing_max_days(ctx: &Ctx<'_>) -> Outcome {
    existing(ctx, "max days", "1..=365", |s| s.max_days, |v| (1..=365).contains(&v))
}

fn existing_min_days(ctx: &Ctx<'_>) -> Outcome {
    existing(ctx, "min days", ">= 1", |s| s.min_days, |v| v >= 1)
}

fn existing_warn_days(ctx: &Ctx<'_>) -> Outcome {
    existing(ctx, "warn days", ">= 7", |s| s.warn_days, |v| v >= 7)
}

fn existing_inactive(ctx: &Ctx<'_>) -> Outcome {
    existing(ctx, "inactive days", "0..=30", |s| s.inactive_days, |v| (0..=30).contains(&v))
}

fn last_change_in_past(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Shadow]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let now = today();
    let bad: Vec<Evidence> = acc
        .shadow
        .records
        .iter()
        .filter(|s| s.last_change.is_some_and(|d| d > now))
        .map(|s| {
            Evidence::file("/etc/shadow")
                .line(s.line)
                .found(format!("{}: last change day {}", s.name, s.last_change.unwrap_or_default()))
                .expected(format!("<= {now} (today)"))
        })
        .collect();
    if bad.is_empty() {
        Outcome::pass(vec![
            Evidence::file("/etc/shadow").with_note(format!("no last-change date after day {now} (today)")),
        ])
    } else {
        Outcome::fail(capped(bad))
    }
}

// ---------------------------------------------------------------------------------------------
// System accounts, root, umask, TMOUT.

/// Accounts exempt from the nologin rule: they exist to run one command (CIS, SSG).
const SHELL_EXEMPT: &[&str] = &["root", "sync", "shutdown", "halt", "nfsnobody"];

fn system_accounts_nologin(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Passwd]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let (min, from) = uid_min(ctx);
    let bad: Vec<Evidence> = acc
        .passwd
        .records
        .iter()
        .filter(|u| (u.uid < min || u.uid == NOBODY_UID || u.uid == 65_535) && !SHELL_EXEMPT.contains(&u.name.as_str()))
        .filter(|u| !is_nologin(&u.shell))
        .map(|u| {
            let shell = if u.shell.is_empty() { "(empty: /bin/sh)" } else { u.shell.as_str() };
            Evidence::file("/etc/passwd")
                .line(u.line)
                .found(format!("{} (uid {}): {shell}", u.name, u.uid))
                .expected("/usr/sbin/nologin or /bin/false")
        })
        .collect();
    let mut ev = capped(bad);
    ev.push(Evidence::note(from));
    Outcome::check(ev.len() == 1, ev)
}

fn root_gid_zero(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Passwd]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    match acc.user("root") {
        Some(u) => Outcome::check(
            u.gid == 0,
            vec![Evidence::file("/etc/passwd").line(u.line).found(format!("root gid {}", u.gid)).expected("gid 0")],
        ),
        None => Outcome::fail(vec![Evidence::file("/etc/passwd").found("no root account").expected("root with gid 0")]),
    }
}

/// A umask value (octal or `u=rwx,g=rx,o=` symbolic) as the mask it sets.
#[must_use]
pub(crate) fn parse_umask(v: &str) -> Option<u32> {
    if !v.is_empty() && v.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return u32::from_str_radix(v, 8).ok().filter(|m| *m <= 0o777);
    }
    // Symbolic: each `who=perms` clause sets the permitted bits; the mask is their complement.
    let mut allowed: u32 = 0o777;
    for clause in v.split(',') {
        let (who, perms) = clause.split_once('=')?;
        let mut bits = 0;
        for p in perms.chars() {
            bits |= match p {
                'r' => 4,
                'w' => 2,
                'x' => 1,
                _ => return None,
            };
        }
        let whos: Vec<u32> = match who {
            "a" | "" => vec![6, 3, 0],
            w => w
                .chars()
                .map(|c| match c {
                    'u' => Some(6),
                    'g' => Some(3),
                    'o' => Some(0),
                    _ => None,
                })
                .collect::<Option<Vec<u32>>>()?,
        };
        for shift in whos {
            allowed = (allowed & !(7 << shift)) | (bits << shift);
        }
    }
    Some(!allowed & 0o777)
}

/// True if `mask` is at least as restrictive as 027.
fn umask_ok(mask: u32) -> bool {
    mask & 0o027 == 0o027
}

fn umask_login_defs(ctx: &Ctx<'_>) -> Outcome {
    let expected = "UMASK 027 or more restrictive";
    match logindefs::load(ctx).get("UMASK") {
        Err(e) => Outcome::error(e),
        Ok(Some(s)) => {
            let ev = Evidence::file(&s.file).line(s.line).found(format!("UMASK {}", s.value)).expected(expected);
            match s.int().and_then(|v| u32::try_from(v).ok()) {
                Some(m) => Outcome::check(umask_ok(m), vec![ev]),
                None => Outcome::fail(vec![ev.with_note("not an octal number")]),
            }
        }
        Ok(None) => Outcome::fail(vec![
            Evidence::file(LOGIN_DEFS).found("UMASK not set").expected(expected).with_note("the default 022 applies"),
        ]),
    }
}

/// Commands of a shell line split at `;`, `&&`, `||`, `|` (comments removed): enough to find
/// `umask`, `TMOUT=`, `readonly`, `export` without a shell interpreter.
fn shell_commands(line: &str) -> Vec<Vec<String>> {
    let code = match line.find(" #").or_else(|| line.trim_start().starts_with('#').then_some(0)) {
        Some(p) => line.get(..p).unwrap_or(""),
        None => line,
    };
    code.split([';', '&', '|'])
        .map(|c| {
            c.split_whitespace()
                .skip_while(|w| matches!(*w, "then" | "else" | "do" | "{" | "(" | "elif" | "if" | "!"))
                .map(|w| w.trim_matches(['"', '\'', ')', '(']).to_owned())
                .collect::<Vec<String>>()
        })
        .filter(|c| !c.is_empty())
        .collect()
}

/// The shell startup files read by login shells: `/etc/profile` and `/etc/profile.d/*.sh`.
fn profile_files(ctx: &Ctx<'_>) -> Result<Vec<String>, String> {
    let mut v = vec!["/etc/profile".to_owned()];
    v.extend(ctx::glob(ctx, "/etc/profile.d/*.sh", MAX_PROFILE_D)?);
    Ok(v)
}

/// The interactive bash startup file of the family (`/etc/bash.bashrc` on Debian and SUSE,
/// `/etc/bashrc` on RHEL).
const BASHRC: &[&str] = &["/etc/bash.bashrc", "/etc/bashrc"];

/// Every `umask` value set in `files`: `(file, line, value)`.
fn umask_lines(ctx: &Ctx<'_>, files: &[String]) -> Result<Vec<(String, usize, String)>, String> {
    let mut out = Vec::new();
    for f in files {
        let Some(text) = ctx.read_text(f)? else { continue };
        for (i, line) in text.lines().enumerate() {
            for cmd in shell_commands(line) {
                if cmd.first().map(String::as_str) == Some("umask")
                    && let Some(v) = cmd.iter().skip(1).find(|a| !a.starts_with('-'))
                {
                    out.push((f.clone(), i + 1, v.clone()));
                }
            }
        }
    }
    Ok(out)
}

fn umask_files(ctx: &Ctx<'_>, files: Result<Vec<String>, String>) -> Outcome {
    let files = match files {
        Ok(f) => f,
        Err(e) => return Outcome::error(e),
    };
    let lines = match umask_lines(ctx, &files) {
        Ok(l) => l,
        Err(e) => return Outcome::error(e),
    };
    if lines.is_empty() {
        return Outcome::fail(vec![
            Evidence::note(format!("no umask command in {}", files.join(", ")))
                .expected("umask 027 or more restrictive"),
        ]);
    }
    let mut ok = true;
    let ev = lines
        .into_iter()
        .map(|(f, n, v)| {
            let good = parse_umask(&v).is_some_and(umask_ok);
            ok &= good;
            Evidence::file(f).line(n).found(format!("umask {v}")).expected("027 or more restrictive")
        })
        .collect();
    Outcome::check(ok, capped(ev))
}

fn umask_profile(ctx: &Ctx<'_>) -> Outcome {
    umask_files(ctx, profile_files(ctx))
}

fn umask_bashrc(ctx: &Ctx<'_>) -> Outcome {
    let present: Vec<String> =
        BASHRC.iter().filter(|p| matches!(ctx.stat(p), Ok(Some(_)))).map(|p| (*p).to_owned()).collect();
    if present.is_empty() {
        return Outcome::na("neither /etc/bash.bashrc nor /etc/bashrc exists");
    }
    umask_files(ctx, Ok(present))
}

/// Longest accepted TMOUT (CIS: 900 seconds or less).
const MAX_TMOUT: i64 = 900;

fn tmout(ctx: &Ctx<'_>) -> Outcome {
    let mut files = match profile_files(ctx) {
        Ok(f) => f,
        Err(e) => return Outcome::error(e),
    };
    files.extend(BASHRC.iter().map(|s| (*s).to_owned()));
    let (mut values, mut readonly, mut exported) = (Vec::new(), false, false);
    for f in &files {
        let text = match ctx.read_text(f) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => return Outcome::error(e),
        };
        for (i, line) in text.lines().enumerate() {
            for cmd in shell_commands(line) {
                let head = cmd.first().map_or("", String::as_str);
                let declares_ro = head == "readonly"
                    || (matches!(head, "declare" | "typeset")
                        && cmd.iter().any(|a| a.starts_with('-') && a.contains('r')));
                let declares_x = head == "export"
                    || (matches!(head, "declare" | "typeset")
                        && cmd.iter().any(|a| a.starts_with('-') && a.contains('x')));
                for w in &cmd {
                    let name = w.split('=').next().unwrap_or("");
                    if name != "TMOUT" {
                        continue;
                    }
                    readonly |= declares_ro;
                    exported |= declares_x;
                    if let Some(v) = w.strip_prefix("TMOUT=") {
                        values.push((f.clone(), i + 1, v.to_owned()));
                    }
                }
            }
        }
    }
    if values.is_empty() {
        return Outcome::fail(vec![
            Evidence::note(format!("TMOUT is not set in {}", files.join(", ")))
                .expected("TMOUT=1..900, readonly, exported"),
        ]);
    }
    let mut ok = readonly && exported;
    let mut ev: Vec<Evidence> = values
        .into_iter()
        .map(|(f, n, v)| {
            ok &= v.parse::<i64>().is_ok_and(|t| (1..=MAX_TMOUT).contains(&t));
            Evidence::file(f).line(n).found(format!("TMOUT={v}")).expected("1..=900")
        })
        .collect();
    if !readonly {
        ev.push(Evidence::note("TMOUT is not made readonly (readonly TMOUT / declare -r)"));
    }
    if !exported {
        ev.push(Evidence::note("TMOUT is not exported (export TMOUT)"));
    }
    Outcome::check(ok, capped(ev))
}

// ---------------------------------------------------------------------------------------------
// Consistency of the databases.

fn all_shadowed(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Passwd]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let bad: Vec<Evidence> = acc
        .passwd
        .records
        .iter()
        .filter(|u| u.password != "x")
        .map(|u| {
            let shown = if u.password.is_empty() { "(empty)" } else { "(a hash or marker)" };
            Evidence::file("/etc/passwd")
                .line(u.line)
                .found(format!("{}: password field {shown}", u.name))
                .expected("x")
        })
        .collect();
    let mut ev = capped(bad);
    let ok = ev.is_empty();
    ev.extend(malformed(&acc.passwd, "/etc/passwd"));
    Outcome::check(ok, ev)
}

fn no_empty_passwords(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Shadow]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let bad: Vec<Evidence> = acc
        .shadow
        .records
        .iter()
        .filter(|s| s.hash.is_empty())
        .map(|s| {
            Evidence::file("/etc/shadow")
                .line(s.line)
                .found(format!("{}: empty password field", s.name))
                .expected("a hash, or ! / * (locked)")
        })
        .collect();
    Outcome::check(bad.is_empty(), capped(bad))
}

fn passwd_gids_exist(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Passwd, Which::Group]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let gids: BTreeSet<u32> = acc.group.records.iter().map(|g| g.gid).collect();
    let bad: Vec<Evidence> = acc
        .passwd
        .records
        .iter()
        .filter(|u| !gids.contains(&u.gid))
        .map(|u| {
            Evidence::file("/etc/passwd")
                .line(u.line)
                .found(format!("{}: gid {}", u.name, u.gid))
                .expected("a gid defined in /etc/group")
        })
        .collect();
    Outcome::check(bad.is_empty(), capped(bad))
}

fn shadow_group_empty(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Passwd, Which::Group]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let Some(g) = acc.group("shadow") else {
        return Outcome::na("the image has no shadow group");
    };
    let mut bad = Vec::new();
    if !g.members.is_empty() {
        bad.push(
            Evidence::file("/etc/group")
                .line(g.line)
                .found(format!("shadow members: {}", g.members.join(",")))
                .expected("no members"),
        );
    }
    for u in acc.passwd.records.iter().filter(|u| u.gid == g.gid) {
        bad.push(
            Evidence::file("/etc/passwd")
                .line(u.line)
                .found(format!("{}: primary group shadow ({})", u.name, g.gid))
                .expected("no user with primary group shadow"),
        );
    }
    if bad.is_empty() {
        Outcome::pass(vec![
            Evidence::file("/etc/group").line(g.line).found("shadow group has no members").expected("no members"),
        ])
    } else {
        Outcome::fail(capped(bad))
    }
}

/// Duplicates among `(key, path, line)` items.
fn duplicates<K: Ord + std::fmt::Display>(
    items: impl Iterator<Item = (K, usize)>,
    path: &str,
    what: &str,
) -> Vec<Evidence> {
    let mut seen: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for (k, line) in items {
        seen.entry(k).or_default().push(line);
    }
    seen.into_iter()
        .filter(|(_, lines)| lines.len() > 1)
        .map(|(k, lines)| {
            let mut shown = lines.iter().take(MAX_LISTED_LINES).map(ToString::to_string).collect::<Vec<_>>().join(", ");
            if lines.len() > MAX_LISTED_LINES {
                shown.push_str(&format!(" … ({} in all)", lines.len()));
            }
            Evidence::file(path)
                .line(lines.first().copied().unwrap_or_default())
                .found(format!("{what} {k} on lines {shown}"))
                .expected(format!("unique {what}"))
        })
        .collect()
}

fn unique_uids(ctx: &Ctx<'_>) -> Outcome {
    match need(ctx, &[Which::Passwd]) {
        Ok(acc) => {
            let bad = duplicates(acc.passwd.records.iter().map(|u| (u.uid, u.line)), "/etc/passwd", "uid");
            Outcome::check(bad.is_empty(), capped(bad))
        }
        Err(o) => o,
    }
}

fn unique_gids(ctx: &Ctx<'_>) -> Outcome {
    match need(ctx, &[Which::Group]) {
        Ok(acc) => {
            let bad = duplicates(acc.group.records.iter().map(|g| (g.gid, g.line)), "/etc/group", "gid");
            Outcome::check(bad.is_empty(), capped(bad))
        }
        Err(o) => o,
    }
}

fn unique_user_names(ctx: &Ctx<'_>) -> Outcome {
    match need(ctx, &[Which::Passwd]) {
        Ok(acc) => {
            let bad =
                duplicates(acc.passwd.records.iter().map(|u| (u.name.clone(), u.line)), "/etc/passwd", "user name");
            Outcome::check(bad.is_empty(), capped(bad))
        }
        Err(o) => o,
    }
}

fn unique_group_names(ctx: &Ctx<'_>) -> Outcome {
    match need(ctx, &[Which::Group]) {
        Ok(acc) => {
            let bad =
                duplicates(acc.group.records.iter().map(|g| (g.name.clone(), g.line)), "/etc/group", "group name");
            Outcome::check(bad.is_empty(), capped(bad))
        }
        Err(o) => o,
    }
}

fn only_root_uid_zero(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Passwd]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let bad: Vec<Evidence> = acc
        .passwd
        .records
        .iter()
        .filter(|u| u.uid == 0 && u.name != "root")
        .map(|u| {
            Evidence::file("/etc/passwd")
                .line(u.line)
                .found(format!("{}: uid 0", u.name))
                .expected("only root has uid 0")
        })
        .collect();
    Outcome::check(bad.is_empty(), capped(bad))
}

// ---------------------------------------------------------------------------------------------
// Root's PATH.

/// `PATH=` assignments in a shell file: `(line, value)`.
fn path_assignments(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for cmd in shell_commands(line) {
            for w in &cmd {
                if let Some(v) = w.strip_prefix("PATH=") {
                    out.push((i + 1, v.trim_matches(['"', '\'']).to_owned()));
                }
            }
        }
    }
    out
}

fn root_path(ctx: &Ctx<'_>) -> Outcome {
    let acc = accounts::load(ctx);
    let home = acc.user("root").map_or("/root", |u| u.home.as_str()).trim_end_matches('/').to_owned();
    let home = if home.is_empty() { "/".to_owned() } else { home };
    let mut sources: Vec<(String, usize, String)> = Vec::new();
    let files = [
        format!("{home}/.bash_profile"),
        format!("{home}/.bash_login"),
        format!("{home}/.profile"),
        format!("{home}/.bashrc"),
        "/etc/environment".to_owned(),
        "/etc/profile".to_owned(),
    ];
    for f in &files {
        match ctx.read_text(f) {
            Ok(Some(t)) => sources.extend(path_assignments(&t).into_iter().map(|(n, v)| (f.clone(), n, v))),
            Ok(None) => {}
            Err(e) => return Outcome::error(e),
        }
    }
    // login(1) and su(1) set root's PATH from ENV_SUPATH.
    match logindefs::load(ctx).get("ENV_SUPATH") {
        Ok(Some(s)) => {
            sources.push((s.file.clone(), s.line, s.value.strip_prefix("PATH=").unwrap_or(&s.value).to_owned()))
        }
        Ok(None) => {}
        Err(e) => return Outcome::error(e),
    }
    if sources.is_empty() {
        return Outcome::pass(vec![Evidence::note(format!(
            "no PATH assignment in {} or ENV_SUPATH in {LOGIN_DEFS}",
            files.join(", ")
        ))]);
    }
    let mut bad = Vec::new();
    let mut notes = Vec::new();
    let mut checked = BTreeSet::new();
    for (file, line, value) in &sources {
        for entry in value.split(':') {
            let at = || Evidence::file(file.clone()).line(*line);
            if entry == "$PATH" || entry == "${PATH}" {
                continue;
            }
            let problem = if entry.is_empty() {
                Some("empty entry (means the current directory)".to_owned())
            } else if entry == "." {
                Some("`.` (the current directory)".to_owned())
            } else if entry.starts_with('$') {
                notes.push(at().found(entry.to_owned()).with_note("variable not expanded; not checked"));
                None
            } else if !entry.starts_with('/') && !entry.starts_with("~/") {
                Some(format!("relative directory {entry}"))
            } else {
                let dir = match entry.strip_prefix("~/") {
                    Some(r) => format!("{home}/{r}"),
                    None => entry.to_owned(),
                };
                if !checked.insert(dir.clone()) {
                    continue;
                }
                match ctx.stat(&dir) {
                    Err(e) => return Outcome::error(e),
                    Ok(None) => {
                        notes.push(at().found(dir).with_note("does not exist"));
                        None
                    }
                    Ok(Some(m)) if m.kind != FileKind::Dir => Some(format!("{dir} is not a directory")),
                    Ok(Some(m)) if m.mode & 0o022 != 0 => {
                        Some(format!("{dir} is group/world-writable ({})", octal(m.mode)))
                    }
                    Ok(Some(m)) if m.uid != 0 => Some(format!("{dir} is owned by {}", acc.user_label(m.uid))),
                    Ok(Some(_)) => None,
                }
            };
            if let Some(p) = problem {
                bad.push(
                    at().found(format!("PATH={value}"))
                        .with_note(p)
                        .expected("absolute root-owned directories, not group/world-writable"),
                );
            }
        }
    }
    let ok = bad.is_empty();
    let mut ev = if ok {
        sources.iter().map(|(f, n, v)| Evidence::file(f.clone()).line(*n).found(format!("PATH={v}"))).collect()
    } else {
        bad
    };
    ev.extend(notes);
    Outcome::check(ok, capped(ev))
}

// ---------------------------------------------------------------------------------------------
// Home directories and dot files.

/// Interactive users (bounded) with the evidence note naming UID_MIN; `Err` when passwd is unusable.
fn homes(ctx: &Ctx<'_>) -> Result<(Rc<Accounts>, Vec<User>, Evidence), Outcome> {
    let acc = need(ctx, &[Which::Passwd])?;
    let (min, from) = uid_min(ctx);
    let users: Vec<User> = interactive(&acc, min).into_iter().take(MAX_HOMES).cloned().collect();
    let total = interactive(&acc, min).len();
    let mut note = format!("{} interactive users (uid >= UID_MIN with a login shell); {from}", users.len());
    if total > users.len() {
        note.push_str(&format!("; only the first {MAX_HOMES} of {total} examined"));
    }
    Ok((acc, users, Evidence::note(note)))
}

fn home_check(ctx: &Ctx<'_>, check: fn(&Accounts, &User, &Meta) -> Option<Evidence>) -> Outcome {
    let (acc, users, note) = match homes(ctx) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let mut bad = Vec::new();
    for u in &users {
        match ctx.stat(&u.home) {
            Err(e) => return Outcome::error(e),
            // A missing home is the subject of home_dirs_exist.
            Ok(None) => {}
            Ok(Some(m)) => bad.extend(check(&acc, u, &m)),
        }
    }
    let ok = bad.is_empty();
    let mut ev = capped(bad);
    ev.push(note);
    Outcome::check(ok, ev)
}

fn home_dirs_exist(ctx: &Ctx<'_>) -> Outcome {
    let (_, users, note) = match homes(ctx) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let mut bad = Vec::new();
    for u in &users {
        match ctx.stat(&u.home) {
            Err(e) => return Outcome::error(e),
            Ok(Some(m)) if m.kind == FileKind::Dir => {}
            Ok(other) => bad.push(
                Evidence::file("/etc/passwd")
                    .line(u.line)
                    .found(format!(
                        "{}: {} {}",
                        u.name,
                        u.home,
                        if other.is_some() { "is not a directory" } else { "does not exist" }
                    ))
                    .expected("an existing home directory"),
            ),
        }
    }
    let ok = bad.is_empty();
    let mut ev = capped(bad);
    ev.push(note);
    Outcome::check(ok, ev)
}

fn home_dirs_owned(ctx: &Ctx<'_>) -> Outcome {
    home_check(ctx, |acc, u, m| {
        (m.uid != u.uid).then(|| {
            Evidence::file(u.home.clone())
                .found(format!("owner {}", acc.user_label(m.uid)))
                .expected(format!("owner {}({})", u.name, u.uid))
        })
    })
}

fn home_dirs_permissions(ctx: &Ctx<'_>) -> Outcome {
    home_check(ctx, |_, u, m| {
        (!within(m.mode, 0o750))
            .then(|| Evidence::file(u.home.clone()).found(octal(m.mode)).expected("0750 or stricter"))
    })
}

fn dot_files_not_writable(ctx: &Ctx<'_>) -> Outcome {
    let (_, users, note) = match homes(ctx) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let mut bad = Vec::new();
    let mut seen = BTreeSet::new();
    let mut budget = MAX_HOME_ENTRIES;
    for u in &users {
        if !seen.insert(u.home.clone()) {
            continue;
        }
        let entries = match ctx.list_dir(&u.home) {
            Ok(e) => e,
            Err(e) => return Outcome::error(e),
        };
        budget = match budget.checked_sub(entries.len()) {
            Some(b) => b,
            None => {
                return Outcome::error(format!(
                    "home directories hold more than {MAX_HOME_ENTRIES} entries; not examined"
                ));
            }
        };
        for e in entries.into_iter().filter(|e| e.name.starts_with('.') && e.kind == FileKind::File) {
            let path = crate::fs::join(&u.home, &e.name);
            match ctx.lstat(&path) {
                Err(err) => return Outcome::error(err),
                Ok(Some(m)) if m.mode & 0o022 != 0 => {
                    bad.push(Evidence::file(path).found(octal(m.mode)).expected("not group- or world-writable"));
                }
                Ok(_) => {}
            }
        }
    }
    let ok = bad.is_empty();
    let mut ev = capped(bad);
    ev.push(note);
    Outcome::check(ok, ev)
}

/// Fail when any interactive user's (or root's) home holds `name`; `extra` are system-wide files
/// with the same effect.
fn no_home_file(ctx: &Ctx<'_>, name: &str, extra: &[&str]) -> Outcome {
    let (acc, mut users, note) = match homes(ctx) {
        Ok(v) => v,
        Err(o) => return o,
    };
    if let Some(root) = acc.user("root") {
        users.insert(0, root.clone());
    }
    let mut paths: Vec<String> = users.iter().map(|u| crate::fs::join(&u.home, name)).collect();
    paths.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut bad = Vec::new();
    let mut seen = BTreeSet::new();
    for p in paths {
        if !seen.insert(p.clone()) {
            continue;
        }
        match ctx.lstat(&p) {
            Err(e) => return Outcome::error(e),
            Ok(Some(m)) => bad.push(
                Evidence::file(p)
                    .found(format!("exists ({:?}, {})", m.kind, octal(m.mode)).to_lowercase())
                    .expected("absent"),
            ),
            Ok(None) => {}
        }
    }
    let ok = bad.is_empty();
    let mut ev = capped(bad);
    ev.push(note);
    Outcome::check(ok, ev)
}

fn no_netrc(ctx: &Ctx<'_>) -> Outcome {
    no_home_file(ctx, ".netrc", &[])
}

fn no_rhosts(ctx: &Ctx<'_>) -> Outcome {
    no_home_file(ctx, ".rhosts", &["/etc/hosts.equiv", "/etc/shosts.equiv"])
}

fn no_forward(ctx: &Ctx<'_>) -> Outcome {
    no_home_file(ctx, ".forward", &[])
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

/// A rule on one attribute of one account database file.
macro_rules! file_rule {
    ($id:literal, $ssg:literal, $u:literal, $r:literal, $path:literal, $attr:ident, $spec:ident, $title:literal, $fix:literal) => {{
        fn eval(ctx: &Ctx<'_>) -> Outcome {
            file_attr(ctx, $path, Attr::$attr, $spec(ctx))
        }
        Rule {
            id: $id,
            ssg_id: Some($ssg),
            cis: cis(Some($u), Some($r)),
            title: $title,
            rationale: concat!(
                $path,
                " holds account data: write access lets a user create or alter accounts, read access to the ",
                "shadow files exposes password hashes to offline cracking."
            ),
            remediation: $fix,
            eval,
            ..BASE
        }
    }};
}

const AGING: &str = "Password aging limits how long a stolen or cracked password stays useful.";

/// The rules of this area.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            id: "accounts.pass_max_days",
            ssg_id: Some("accounts_maximum_age_login_defs"),
            cis: cis(Some("5.4.1.1"), Some("5.6.1.1")),
            title: "Password expiration is 365 days or less (login.defs PASS_MAX_DAYS)",
            rationale: AGING,
            remediation: "Set `PASS_MAX_DAYS 365` (or less) in /etc/login.defs.",
            eval: pass_max_days,
            ..BASE
        },
        Rule {
            id: "accounts.pass_min_days",
            ssg_id: Some("accounts_minimum_age_login_defs"),
            cis: cis(Some("5.4.1.2"), Some("5.6.1.2")),
            title: "Minimum days between password changes is 1 or more (login.defs PASS_MIN_DAYS)",
            rationale: "A minimum age stops users cycling through passwords to reuse an old one.",
            remediation: "Set `PASS_MIN_DAYS 1` in /etc/login.defs.",
            eval: pass_min_days,
            ..BASE
        },
        Rule {
            id: "accounts.pass_warn_age",
            ssg_id: Some("accounts_password_warn_age_login_defs"),
            cis: cis(Some("5.4.1.3"), Some("5.6.1.3")),
            title: "Password expiration warning is 7 days or more (login.defs PASS_WARN_AGE)",
            rationale: "Users warned ahead of expiry choose a new password deliberately.",
            remediation: "Set `PASS_WARN_AGE 7` in /etc/login.defs.",
            eval: pass_warn_age,
            ..BASE
        },
        Rule {
            id: "accounts.inactive",
            ssg_id: Some("account_disable_post_pw_expiration"),
            cis: cis(Some("5.4.1.4"), Some("5.6.1.4")),
            title: "Accounts are locked 30 days or less after password expiry (useradd INACTIVE)",
            rationale: "Accounts unused after their password expired are disabled before they can be abused.",
            remediation: "Set `INACTIVE=30` in /etc/default/useradd (`useradd -D -f 30`).",
            eval: inactive,
            ..BASE
        },
        Rule {
            id: "accounts.encrypt_method",
            ssg_id: Some("set_password_hashing_algorithm_logindefs"),
            cis: cis(None, Some("5.5.4")),
            title: "login.defs hashes new passwords with SHA-512 or yescrypt (ENCRYPT_METHOD)",
            rationale: "Weak hashes (DES, MD5) make stolen shadow files quick to crack.",
            remediation: "Set `ENCRYPT_METHOD SHA512` (or `YESCRYPT`) in /etc/login.defs.",
            eval: encrypt_method,
            ..BASE
        },
        Rule {
            id: "accounts.existing_max_days",
            ssg_id: Some("accounts_password_set_max_life_existing"),
            cis: cis(Some("5.4.1.1"), Some("5.6.1.1")),
            title: "Existing accounts with a password expire within 365 days (shadow field 5)",
            rationale: AGING,
            remediation: "For each account listed, run `chage --maxdays 365 <user>`.",
            eval: existing_max_days,
            ..BASE
        },
        Rule {
            id: "accounts.existing_min_days",
            ssg_id: Some("accounts_password_set_min_life_existing"),
            cis: cis(Some("5.4.1.2"), Some("5.6.1.2")),
            title: "Existing accounts with a password have a minimum password age of 1 day or more",
            rationale: "A minimum age stops users cycling through passwords to reuse an old one.",
            remediation: "For each account listed, run `chage --mindays 1 <user>`.",
            eval: existing_min_days,
            ..BASE
        },
        Rule {
            id: "accounts.existing_warn_age",
            ssg_id: Some("accounts_password_set_warn_age_existing"),
            cis: cis(None, Some("5.6.1.3")),
            title: "Existing accounts with a password are warned 7 days or more before expiry",
            rationale: "Users warned ahead of expiry choose a new password deliberately.",
            remediation: "For each account listed, run `chage --warndays 7 <user>`.",
            eval: existing_warn_days,
            ..BASE
        },
        Rule {
            id: "accounts.existing_inactive",
            ssg_id: Some("accounts_set_post_pw_existing"),
            cis: cis(None, Some("5.6.1.4")),
            title: "Existing accounts with a password are locked 30 days or less after expiry",
            rationale: "Accounts unused after their password expired are disabled before they can be abused.",
            remediation: "For each account listed, run `chage --inactive 30 <user>`.",
            eval: existing_inactive,
            ..BASE
        },
        Rule {
            id: "accounts.last_change_in_past",
            ssg_id: Some("accounts_password_last_change_is_in_past"),
            cis: cis(None, Some("5.6.1.5")),
            title: "No account's last password change date is in the future",
            rationale: "A future change date defeats password expiry for that account.",
            remediation: "For each account listed, set a real date (`chage --lastday $(date +%F) <user>`) or force a change (`passwd -e <user>`).",
            eval: last_change_in_past,
            ..BASE
        },
        Rule {
            id: "accounts.system_accounts_nologin",
            ssg_id: Some("no_shelllogin_for_systemaccounts"),
            cis: cis(Some("5.4.2"), Some("5.6.2")),
            title: "System accounts (uid < UID_MIN) have no login shell",
            rationale: "Service accounts are not meant for interactive use; a shell makes them a way in.",
            remediation: "For each account listed, run `usermod -s /usr/sbin/nologin <user>` (RHEL: /sbin/nologin).",
            eval: system_accounts_nologin,
            ..BASE
        },
        Rule {
            id: "accounts.root_gid_zero",
            ssg_id: Some("accounts_root_gid_zero"),
            cis: cis(None, Some("5.6.4")),
            title: "root's primary group is GID 0",
            severity: Severity::High,
            rationale: "Files root creates would otherwise be group-owned by, and accessible to, a non-root group.",
            remediation: "Run `usermod -g 0 root`.",
            eval: root_gid_zero,
            ..BASE
        },
        Rule {
            id: "accounts.umask_login_defs",
            ssg_id: Some("accounts_umask_etc_login_defs"),
            cis: cis(Some("5.4.4"), Some("5.6.5")),
            title: "Default umask in login.defs is 027 or more restrictive",
            rationale: "A permissive default umask makes users' new files readable or writable by others.",
            remediation: "Set `UMASK 027` in /etc/login.defs.",
            eval: umask_login_defs,
            ..BASE
        },
        Rule {
            id: "accounts.umask_profile",
            ssg_id: Some("accounts_umask_etc_profile"),
            cis: cis(Some("5.4.4"), Some("5.6.5")),
            title: "Login shells set a umask of 027 or more restrictive (/etc/profile, /etc/profile.d/*.sh)",
            rationale: "A permissive default umask makes users' new files readable or writable by others.",
            remediation: "Add `umask 027` to /etc/profile or a file in /etc/profile.d/ and remove less restrictive umask lines.",
            eval: umask_profile,
            ..BASE
        },
        Rule {
            id: "accounts.umask_bashrc",
            ssg_id: Some("accounts_umask_etc_bashrc"),
            cis: cis(Some("5.4.4"), Some("5.6.5")),
            title: "bash sets a umask of 027 or more restrictive (/etc/bash.bashrc or /etc/bashrc)",
            rationale: "A permissive default umask makes users' new files readable or writable by others.",
            remediation: "Set `umask 027` in /etc/bash.bashrc (Debian/SUSE) or /etc/bashrc (RHEL) and remove less restrictive umask lines.",
            eval: umask_bashrc,
            ..BASE
        },
        Rule {
            id: "accounts.tmout",
            ssg_id: Some("accounts_tmout"),
            cis: cis(Some("5.4.5"), Some("5.6.3")),
            title: "Shell timeout TMOUT is 900 seconds or less, readonly and exported",
            rationale: "Idle shells left open are an easy way into a logged-in account.",
            remediation: "Add `TMOUT=900`, `readonly TMOUT` and `export TMOUT` to a file in /etc/profile.d/ (e.g. /etc/profile.d/tmout.sh).",
            eval: tmout,
            ..BASE
        },
        file_rule!(
            "accounts.etc_passwd_permissions",
            "file_permissions_etc_passwd",
            "6.1.2",
            "6.1.1",
            "/etc/passwd",
            Mode,
            public_spec,
            "/etc/passwd is mode 0644 or stricter",
            "Run `chmod 0644 /etc/passwd`."
        ),
        file_rule!(
            "accounts.etc_passwd_owner",
            "file_owner_etc_passwd",
            "6.1.2",
            "6.1.1",
            "/etc/passwd",
            Owner,
            public_spec,
            "/etc/passwd is owned by root",
            "Run `chown root /etc/passwd`."
        ),
        file_rule!(
            "accounts.etc_passwd_group",
            "file_groupowner_etc_passwd",
            "6.1.2",
            "6.1.1",
            "/etc/passwd",
            Group,
            public_spec,
            "/etc/passwd is group-owned by root",
            "Run `chgrp root /etc/passwd`."
        ),
        file_rule!(
            "accounts.etc_passwd_backup_permissions",
            "file_permissions_backup_etc_passwd",
            "6.1.6",
            "6.1.2",
            "/etc/passwd-",
            Mode,
            public_spec,
            "/etc/passwd- is mode 0644 or stricter",
            "Run `chmod 0644 /etc/passwd-`."
        ),
        file_rule!(
            "accounts.etc_passwd_backup_owner",
            "file_owner_backup_etc_passwd",
            "6.1.6",
            "6.1.2",
            "/etc/passwd-",
            Owner,
            public_spec,
            "/etc/passwd- is owned by root",
            "Run `chown root /etc/passwd-`."
        ),
        file_rule!(
            "accounts.etc_passwd_backup_group",
            "file_groupowner_backup_etc_passwd",
            "6.1.6",
            "6.1.2",
            "/etc/passwd-",
            Group,
            public_spec,
            "/etc/passwd- is group-owned by root",
            "Run `chgrp root /etc/passwd-`."
        ),
        file_rule!(
            "accounts.etc_group_permissions",
            "file_permissions_etc_group",
            "6.1.5",
            "6.1.3",
            "/etc/group",
            Mode,
            public_spec,
            "/etc/group is mode 0644 or stricter",
            "Run `chmod 0644 /etc/group`."
        ),
        file_rule!(
            "accounts.etc_group_owner",
            "file_owner_etc_group",
            "6.1.5",
            "6.1.3",
            "/etc/group",
            Owner,
            public_spec,
            "/etc/group is owned by root",
            "Run `chown root /etc/group`."
        ),
        file_rule!(
            "accounts.etc_group_group",
            "file_groupowner_etc_group",
            "6.1.5",
            "6.1.3",
            "/etc/group",
            Group,
            public_spec,
            "/etc/group is group-owned by root",
            "Run `chgrp root /etc/group`."
        ),
        file_rule!(
            "accounts.etc_group_backup_permissions",
            "file_permissions_backup_etc_group",
            "6.1.8",
            "6.1.4",
            "/etc/group-",
            Mode,
            public_spec,
            "/etc/group- is mode 0644 or stricter",
            "Run `chmod 0644 /etc/group-`."
        ),
        file_rule!(
            "accounts.etc_group_backup_owner",
            "file_owner_backup_etc_group",
            "6.1.8",
            "6.1.4",
            "/etc/group-",
            Owner,
            public_spec,
            "/etc/group- is owned by root",
            "Run `chown root /etc/group-`."
        ),
        file_rule!(
            "accounts.etc_group_backup_group",
            "file_groupowner_backup_etc_group",
            "6.1.8",
            "6.1.4",
            "/etc/group-",
            Group,
            public_spec,
            "/etc/group- is group-owned by root",
            "Run `chgrp root /etc/group-`."
        ),
        file_rule!(
            "accounts.etc_shadow_permissions",
            "file_permissions_etc_shadow",
            "6.1.4",
            "6.1.5",
            "/etc/shadow",
            Mode,
            shadow_spec,
            "/etc/shadow is mode 0640 or stricter (0000 on RHEL)",
            "Run `chmod 0640 /etc/shadow` (RHEL family: `chmod 0000 /etc/shadow`)."
        ),
        file_rule!(
            "accounts.etc_shadow_owner",
            "file_owner_etc_shadow",
            "6.1.4",
            "6.1.5",
            "/etc/shadow",
            Owner,
            shadow_spec,
            "/etc/shadow is owned by root",
            "Run `chown root /etc/shadow`."
        ),
        file_rule!(
            "accounts.etc_shadow_group",
            "file_groupowner_etc_shadow",
            "6.1.4",
            "6.1.5",
            "/etc/shadow",
            Group,
            shadow_spec,
            "/etc/shadow is group-owned by root or shadow (root on RHEL)",
            "Run `chgrp shadow /etc/shadow` (RHEL family: `chgrp root /etc/shadow`)."
        ),
        file_rule!(
            "accounts.etc_shadow_backup_permissions",
            "file_permissions_backup_etc_shadow",
            "6.1.7",
            "6.1.6",
            "/etc/shadow-",
            Mode,
            shadow_spec,
            "/etc/shadow- is mode 0640 or stricter (0000 on RHEL)",
            "Run `chmod 0640 /etc/shadow-` (RHEL family: `chmod 0000 /etc/shadow-`)."
        ),
        file_rule!(
            "accounts.etc_shadow_backup_owner",
            "file_owner_backup_etc_shadow",
            "6.1.7",
            "6.1.6",
            "/etc/shadow-",
            Owner,
            shadow_spec,
            "/etc/shadow- is owned by root",
            "Run `chown root /etc/shadow-`."
        ),
        file_rule!(
            "accounts.etc_shadow_backup_group",
            "file_groupowner_backup_etc_shadow",
            "6.1.7",
            "6.1.6",
            "/etc/shadow-",
            Group,
            shadow_spec,
            "/etc/shadow- is group-owned by root or shadow (root on RHEL)",
            "Run `chgrp shadow /etc/shadow-` (RHEL family: `chgrp root /etc/shadow-`)."
        ),
        file_rule!(
            "accounts.etc_gshadow_permissions",
            "file_permissions_etc_gshadow",
            "6.1.9",
            "6.1.7",
            "/etc/gshadow",
            Mode,
            shadow_spec,
            "/etc/gshadow is mode 0640 or stricter (0000 on RHEL)",
            "Run `chmod 0640 /etc/gshadow` (RHEL family: `chmod 0000 /etc/gshadow`)."
        ),
        file_rule!(
            "accounts.etc_gshadow_owner",
            "file_owner_etc_gshadow",
            "6.1.9",
            "6.1.7",
            "/etc/gshadow",
            Owner,
            shadow_spec,
            "/etc/gshadow is owned by root",
            "Run `chown root /etc/gshadow`."
        ),
        file_rule!(
            "accounts.etc_gshadow_group",
            "file_groupowner_etc_gshadow",
            "6.1.9",
            "6.1.7",
            "/etc/gshadow",
            Group,
            shadow_spec,
            "/etc/gshadow is group-owned by root or shadow (root on RHEL)",
            "Run `chgrp shadow /etc/gshadow` (RHEL family: `chgrp root /etc/gshadow`)."
        ),
        file_rule!(
            "accounts.etc_gshadow_backup_permissions",
            "file_permissions_backup_etc_gshadow",
            "6.1.3",
            "6.1.8",
            "/etc/gshadow-",
            Mode,
            shadow_spec,
            "/etc/gshadow- is mode 0640 or stricter (0000 on RHEL)",
            "Run `chmod 0640 /etc/gshadow-` (RHEL family: `chmod 0000 /etc/gshadow-`)."
        ),
        file_rule!(
            "accounts.etc_gshadow_backup_owner",
            "file_owner_backup_etc_gshadow",
            "6.1.3",
            "6.1.8",
            "/etc/gshadow-",
            Owner,
            shadow_spec,
            "/etc/gshadow- is owned by root",
            "Run `chown root /etc/gshadow-`."
        ),
        file_rule!(
            "accounts.etc_gshadow_backup_group",
            "file_groupowner_backup_etc_gshadow",
            "6.1.3",
            "6.1.8",
            "/etc/gshadow-",
            Group,
            shadow_spec,
            "/etc/gshadow- is group-owned by root or shadow (root on RHEL)",
            "Run `chgrp shadow /etc/gshadow-` (RHEL family: `chgrp root /etc/gshadow-`)."
        ),
        Rule {
            id: "accounts.all_shadowed",
            ssg_id: Some("accounts_password_all_shadowed"),
            cis: cis(None, Some("6.2.1")),
            title: "Every account in /etc/passwd uses a shadowed password (x)",
            rationale: "/etc/passwd is world-readable: a hash there can be cracked offline by any user.",
            remediation: "Run `pwconv` to move passwords to /etc/shadow, then check the accounts listed.",
            eval: all_shadowed,
            ..BASE
        },
        Rule {
            id: "accounts.no_empty_passwords",
            ssg_id: Some("no_empty_passwords_etc_shadow"),
            cis: cis(None, Some("6.2.2")),
            title: "No account in /etc/shadow has an empty password field",
            severity: Severity::High,
            rationale: "An empty password field lets anyone log in to that account without a password.",
            remediation: "For each account listed, lock it (`passwd -l <user>`) or set a password.",
            eval: no_empty_passwords,
            ..BASE
        },
        Rule {
            id: "accounts.passwd_gids_exist",
            ssg_id: Some("gid_passwd_group_same"),
            cis: cis(None, Some("6.2.3")),
            title: "Every primary GID in /etc/passwd is defined in /etc/group",
            severity: Severity::Low,
            rationale: "A group created later with that GID would silently gain access to the users' files.",
            remediation: "Create the missing groups (`groupadd -g <gid> <name>`) or change the users' primary group.",
            eval: passwd_gids_exist,
            ..BASE
        },
        Rule {
            id: "accounts.shadow_group_empty",
            ssg_id: Some("ensure_shadow_group_empty"),
            title: "The shadow group has no members",
            rationale: "Members of the shadow group can read /etc/shadow and crack password hashes offline.",
            remediation: "Remove all members from the shadow group in /etc/group (`gpasswd -M '' shadow`) and change the primary group of users whose primary group is shadow.",
            eval: shadow_group_empty,
            ..BASE
        },
        Rule {
            id: "accounts.unique_uids",
            ssg_id: Some("account_unique_id"),
            cis: cis(Some("6.2.13"), Some("6.2.4")),
            title: "No two accounts share a UID",
            rationale: "Accounts sharing a UID share all files and privileges and cannot be told apart in logs.",
            remediation: "Give each account listed a unique UID (`usermod -u`) and fix file ownership.",
            eval: unique_uids,
            ..BASE
        },
        Rule {
            id: "accounts.unique_gids",
            ssg_id: Some("group_unique_id"),
            cis: cis(None, Some("6.2.5")),
            title: "No two groups share a GID",
            rationale: "Groups sharing a GID share all group permissions.",
            remediation: "Give each group listed a unique GID (`groupmod -g`) and fix file group ownership.",
            eval: unique_gids,
            ..BASE
        },
        Rule {
            id: "accounts.unique_user_names",
            ssg_id: Some("account_unique_name"),
            cis: cis(None, Some("6.2.6")),
            title: "No two accounts share a user name",
            rationale: "Duplicate names make it ambiguous which account a login or a file belongs to.",
            remediation: "Rename or remove the duplicate entries in /etc/passwd (`vipw`).",
            eval: unique_user_names,
            ..BASE
        },
        Rule {
            id: "accounts.unique_group_names",
            ssg_id: Some("group_unique_name"),
            cis: cis(None, Some("6.2.7")),
            title: "No two groups share a group name",
            rationale: "Duplicate names make it ambiguous which group a permission refers to.",
            remediation: "Rename or remove the duplicate entries in /etc/group (`vigr`).",
            eval: unique_group_names,
            ..BASE
        },
        Rule {
            id: "accounts.only_root_uid_zero",
            ssg_id: Some("accounts_no_uid_except_zero"),
            cis: cis(Some("6.2.2"), Some("6.2.9")),
            title: "root is the only account with UID 0",
            severity: Severity::High,
            rationale: "Any UID 0 account has full control of the system; extra ones are backdoors.",
            remediation: "Remove the accounts listed or give them a non-zero UID (`usermod -u`).",
            eval: only_root_uid_zero,
            ..BASE
        },
        Rule {
            id: "accounts.root_path",
            ssg_id: Some("accounts_root_path_dirs_no_write"),
            cis: cis(Some("6.2.3"), Some("6.2.8")),
            title: "root's PATH has no empty, relative, `.`, group/world-writable or non-root-owned entries",
            rationale: "A writable or relative directory in root's PATH lets a user plant a program root will run.",
            remediation: "Fix the PATH= lines listed (root's ~/.profile, ~/.bashrc, /etc/environment, /etc/profile, login.defs ENV_SUPATH) and `chmod go-w` / `chown root` the directories listed.",
            eval: root_path,
            ..BASE
        },
        Rule {
            id: "accounts.home_dirs_exist",
            ssg_id: Some("accounts_user_interactive_home_directory_exists"),
            cis: cis(Some("6.2.4"), Some("6.2.10")),
            title: "Interactive users' home directories exist",
            rationale: "A user without a home directory logs in to / and may write files where others can read them.",
            remediation: "Create the missing home directories (`mkhomedir_helper <user>`) or fix the home field in /etc/passwd.",
            eval: home_dirs_exist,
            ..BASE
        },
        Rule {
            id: "accounts.home_dirs_owned",
            ssg_id: Some("file_ownership_home_directories"),
            cis: cis(Some("6.2.6"), Some("6.2.11")),
            title: "Interactive users own their home directories",
            rationale: "Another owner of a home directory controls the user's startup files.",
            remediation: "Run `chown <user> <home>` for each directory listed.",
            eval: home_dirs_owned,
            ..BASE
        },
        Rule {
            id: "accounts.home_dirs_permissions",
            ssg_id: Some("file_permissions_home_directories"),
            cis: cis(Some("6.2.5"), Some("6.2.12")),
            title: "Interactive users' home directories are mode 0750 or stricter",
            rationale: "Group-writable or world-accessible home directories expose or let others alter users' files.",
            remediation: "Run `chmod 0750 <home>` (or stricter) for each directory listed.",
            eval: home_dirs_permissions,
            ..BASE
        },
        Rule {
            id: "accounts.dot_files_not_writable",
            ssg_id: Some("file_permission_user_init_files"),
            cis: cis(Some("6.2.7"), Some("6.2.16")),
            title: "Interactive users' dot files are not group- or world-writable",
            rationale: "Startup files writable by others let them run commands as the user at the next login.",
            remediation: "Run `chmod go-w <file>` for each file listed.",
            eval: dot_files_not_writable,
            ..BASE
        },
        Rule {
            id: "accounts.no_netrc",
            ssg_id: Some("no_netrc_files"),
            cis: cis(Some("6.2.9"), Some("6.2.13")),
            title: "No user has a .netrc file",
            rationale: ".netrc files hold FTP and other passwords in clear text.",
            remediation: "Remove the .netrc files listed.",
            eval: no_netrc,
            ..BASE
        },
        Rule {
            id: "accounts.no_forward",
            ssg_id: Some("no_forward_files"),
            cis: cis(None, Some("6.2.14")),
            title: "No user has a .forward file",
            rationale: ".forward files can pipe mail to programs and leak mail off the system.",
            remediation: "Remove the .forward files listed.",
            eval: no_forward,
            ..BASE
        },
        Rule {
            id: "accounts.no_rhosts",
            ssg_id: Some("no_rsh_trust_files"),
            cis: cis(Some("6.2.11"), Some("6.2.15")),
            title: "No .rhosts files or /etc/hosts.equiv (rsh trust)",
            severity: Severity::High,
            rationale: "rsh trust files allow passwordless logins from other hosts.",
            remediation: "Remove the files listed.",
            eval: no_rhosts,
            ..BASE
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_values() {
        assert_eq!(parse_umask("027"), Some(0o027));
        assert_eq!(parse_umask("0077"), Some(0o077));
        assert_eq!(parse_umask("u=rwx,g=rx,o="), Some(0o027));
        assert_eq!(parse_umask("u=rwx,g=,o="), Some(0o077));
        assert_eq!(parse_umask("a=rx"), Some(0o222));
        assert_eq!(parse_umask("u=rwz"), None);
        assert_eq!(parse_umask("9"), None);
        assert!(umask_ok(0o027) && umask_ok(0o077) && !umask_ok(0o022) && !umask_ok(0o007));
    }

    #[test]
    fn shell_scanning() {
        let c = shell_commands("if [ $UID -gt 199 ]; then umask 002; else umask 022; fi # x");
        assert!(c.iter().any(|c| c == &["umask", "002"]));
        assert!(c.iter().any(|c| c == &["umask", "022"]));
        assert!(shell_commands("# umask 000").is_empty());
        assert_eq!(path_assignments("export PATH=\"/usr/bin:/bin\"\nMANPATH=/x\n"), [(1, "/usr/bin:/bin".to_owned())]);
        assert!(
            is_nologin("/usr/sbin/nologin") && is_nologin("/bin/false") && !is_nologin("/bin/bash") && !is_nologin("")
        );
        assert!(within(0o640, 0o644) && !within(0o4644, 0o644) && !within(0o646, 0o644));
    }
}
