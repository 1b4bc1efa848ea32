//! Auditing: auditd installed and enabled, `audit=1` and `audit_backlog_limit` on the kernel
//! command line (CIS Ubuntu 4.1.1, RHEL 9 4.1.1), auditd.conf retention settings (4.1.2), and the
//! audit rules loaded at boot, grouped as CIS groups them (CIS Ubuntu 4.1.3-4.1.17, RHEL 9
//! 4.1.3.x). SSG splits most groups into one rule per syscall or file; each group below names the
//! SSG rule closest to it and lists the others it also covers.
//!
//! Syscall rules are required for both `b64` and `b32` on 64-bit images (the 32-bit syscall table
//! is reachable there too), as CIS and SSG require.

use super::services::{Eval, Presence, any_enabled, bind, cis, names_for, presence, template};
use crate::baseline::ctx::glob;
use crate::baseline::parse::audit::{self, Kind, Rule as AuditRule, Rules, setting};
use crate::baseline::parse::sysctl::drop_ins;
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity};
use crate::os::Family;

const ALL: &[Family] = &[];

/// The auditd packages: Debian's daemon package, Red Hat's.
const AUDITD_DEBIAN: &[&str] = &["auditd"];
const AUDITD_RHEL: &[&str] = &["audit"];
const AUDITD_PROBES: &[&str] = &["/usr/sbin/auditd", "/sbin/auditd", "/etc/audit/auditd.conf"];

/// The lowest `audit_backlog_limit` accepted (CIS: 8192 or larger).
const MIN_BACKLOG: u64 = 8192;

/// The first uid of regular users (`UID_MIN` of login.defs on every supported family); rules may
/// use a lower bound, which audits more.
const UID_MIN: u64 = 1000;

fn auditd_present(ctx: &Ctx<'_>) -> Presence {
    presence(ctx, &names_for(ctx, AUDITD_DEBIAN, AUDITD_RHEL), AUDITD_PROBES)
}

/// `NotApplicable` when auditd is not installed.
fn needs_auditd(ctx: &Ctx<'_>) -> Option<Outcome> {
    match auditd_present(ctx) {
        Presence::Installed(_) => None,
        Presence::Absent(_) => Some(Outcome::na("auditd is not installed (see audit.installed)")),
    }
}

fn installed(ctx: &Ctx<'_>) -> Outcome {
    match auditd_present(ctx) {
        Presence::Installed(ev) => Outcome::pass(ev),
        Presence::Absent(mut ev) => {
            for e in &mut ev {
                e.expected = Some("auditd installed (Debian: auditd, RHEL: audit)".to_owned());
            }
            Outcome::fail(ev)
        }
    }
}

fn enabled(ctx: &Ctx<'_>) -> Outcome {
    if let Some(o) = needs_auditd(ctx) {
        return o;
    }
    match any_enabled(ctx, &["auditd.service"]) {
        Ok((Some(_), ev)) => Outcome::pass(ev),
        Ok((None, mut ev)) => {
            if ev.is_empty() {
                ev.push(Evidence::note("auditd.service has no unit file or *.wants/ symlink"));
            }
            for e in &mut ev {
                e.expected = Some("auditd.service enabled (e.g. multi-user.target.wants/auditd.service)".to_owned());
            }
            Outcome::fail(ev)
        }
        Err(e) => Outcome::error(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel command line.

/// One place the kernel command line is configured, with its arguments.
#[derive(Debug, Clone)]
struct Cmdline {
    file: String,
    line: usize,
    what: String,
    args: Vec<String>,
}

fn shell_value(raw: &str) -> String {
    raw.trim().trim_matches(|c| c == '"' || c == '\'').to_owned()
}

/// `GRUB_CMDLINE_LINUX` after /etc/default/grub and /etc/default/grub.d/*.cfg (in that order,
/// later assignments win, `$GRUB_CMDLINE_LINUX` expands to the previous value).
fn default_grub(ctx: &Ctx<'_>) -> Result<Option<Cmdline>, String> {
    let set = drop_ins(ctx, &["/etc/default/grub.d"], ".cfg");
    if let Some(e) = set.errors.first() {
        return Err(e.clone());
    }
    let mut files = vec!["/etc/default/grub".to_owned()];
    files.extend(set.files);
    let mut cur: Option<Cmdline> = None;
    for f in files {
        let Some(text) = ctx.read_text(&f)? else { continue };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let Some(v) = line.strip_prefix("GRUB_CMDLINE_LINUX=") else { continue };
            let prev = cur.as_ref().map(|c| c.args.join(" ")).unwrap_or_default();
            let v = shell_value(v).replace("${GRUB_CMDLINE_LINUX}", &prev).replace("$GRUB_CMDLINE_LINUX", &prev);
            cur = Some(Cmdline {
                file: f.clone(),
                line: i + 1,
                what: "GRUB_CMDLINE_LINUX".to_owned(),
                args: v.split_whitespace().map(str::to_owned).collect(),
            });
        }
    }
    Ok(cur)
}

/// The kernel command lines the boot loader will use: `linux` lines of grub.cfg and `options`
/// lines of Boot Loader Specification entries (`$kernelopts` expanded from grubenv).
fn boot_entries(ctx: &Ctx<'_>) -> Result<Vec<Cmdline>, String> {
    let mut out = Vec::new();
    for cfg in ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"] {
        let Some(text) = ctx.read_text(cfg)? else { continue };
        for (i, raw) in text.lines().enumerate() {
            let mut w = raw.split_whitespace();
            if matches!(w.next(), Some("linux" | "linux16" | "linuxefi")) {
                // memtest86+ entries boot a memory tester, not Linux.
                if w.next().is_some_and(|k| k.contains("memtest")) {
                    continue;
                }
                out.push(Cmdline {
                    file: cfg.to_owned(),
                    line: i + 1,
                    what: "linux".to_owned(),
                    args: w.map(str::to_owned).collect(),
                });
            }
        }
    }
    let kernelopts = ctx
        .read_text("/boot/grub2/grubenv")?
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("kernelopts=").map(str::to_owned)))
        .unwrap_or_default();
    for f in glob(ctx, "/boot/loader/entries/*.conf", 256)? {
        let Some(text) = ctx.read_text(&f)? else { continue };
        for (i, raw) in text.lines().enumerate() {
            if let Some(opts) = raw.trim().strip_prefix("options") {
                let opts = opts.replace("$kernelopts", &kernelopts);
                out.push(Cmdline {
                    file: f.clone(),
                    line: i + 1,
                    what: "options".to_owned(),
                    args: opts.split_whitespace().map(str::to_owned).collect(),
                });
            }
        }
    }
    Ok(out)
}

/// Check that every kernel command line sets `name` to a value accepted by `ok`.
fn kernel_arg(ctx: &Ctx<'_>, name: &str, want: &str, ok: fn(&str) -> bool) -> Outcome {
    let entries = match boot_entries(ctx) {
        Ok(v) => v,
        Err(e) => return Outcome::error(e),
    };
    let default = match default_grub(ctx) {
        Ok(v) => v,
        Err(e) => return Outcome::error(e),
    };
    if entries.is_empty() && default.is_none() {
        return Outcome::na(
            "no GRUB configuration (grub.cfg, /boot/loader/entries, /etc/default/grub) in the image: the kernel command \
             line is not visible offline",
        );
    }
    let value = |c: &Cmdline| {
        c.args.iter().rev().find_map(|a| a.strip_prefix(name).and_then(|v| v.strip_prefix('='))).map(str::to_owned)
    };
    let mut ev = Vec::new();
    let mut pass = true;
    let mut judge = |c: &Cmdline, ev: &mut Vec<Evidence>| {
        let v = value(c);
        let good = v.as_deref().is_some_and(ok);
        pass &= good;
        let found = match v {
            Some(v) => format!("{} … {name}={v}", c.what),
            None => format!("{} without {name}=", c.what),
        };
        ev.push(Evidence::file(c.file.clone()).line(c.line).found(found).expected(want.to_owned()));
    };
    match &default {
        Some(c) => judge(c, &mut ev),
        None => ev.push(Evidence::file("/etc/default/grub").found("absent").with_note(
            "only the generated boot entries are checked; regenerating them may drop the argument".to_owned(),
        )),
    }
    let bad_entries: Vec<&Cmdline> = entries.iter().filter(|c| !value(c).as_deref().is_some_and(ok)).collect();
    match bad_entries.first() {
        Some(c) => {
            judge(c, &mut ev);
            if bad_entries.len() > 1 {
                ev.push(Evidence::note(format!("{} boot entries lack it in all", bad_entries.len())));
            }
        }
        None => {
            if let Some(c) = entries.first() {
                judge(c, &mut ev);
                ev.push(Evidence::note(format!("all {} boot entries have it", entries.len())));
            }
        }
    }
    Outcome::check(pass, ev)
}

fn audit_arg(ctx: &Ctx<'_>) -> Outcome {
    kernel_arg(ctx, "audit", "audit=1", |v| v == "1")
}

fn backlog_arg(ctx: &Ctx<'_>) -> Outcome {
    kernel_arg(ctx, "audit_backlog_limit", "audit_backlog_limit=8192 or larger", |v| {
        v.parse::<u64>().is_ok_and(|n| n >= MIN_BACKLOG)
    })
}

// ---------------------------------------------------------------------------------------------
// auditd.conf.

#[derive(Debug)]
struct ConfKey {
    rule: Rule,
    key: &'static str,
    /// Accepted values (case-insensitive); empty = any positive integer.
    accepted: &'static [&'static str],
    /// auditd's built-in default, for the evidence when the key is absent.
    default: &'static str,
}

fn conf_key(ctx: &Ctx<'_>, k: &ConfKey) -> Outcome {
    if let Some(o) = needs_auditd(ctx) {
        return o;
    }
    let conf = audit::load_conf(ctx);
    let settings = match conf.as_ref() {
        Err(e) => return Outcome::error(e.clone()),
        Ok(None) => {
            return Outcome::fail(vec![
                Evidence::file(audit::AUDITD_CONF)
                    .found("absent")
                    .with_note(format!("auditd's built-in {} ({}) applies", k.key, k.default)),
            ]);
        }
        Ok(Some(s)) => s,
    };
    let want = if k.accepted.is_empty() {
        format!("{} = <size in MB, per site policy>", k.key)
    } else {
        format!("{} = {}", k.key, k.accepted.join(" or "))
    };
    match setting(settings, k.key) {
        None => Outcome::fail(vec![
            Evidence::file(audit::AUDITD_CONF)
                .found(format!("{} not set", k.key))
                .expected(want)
                .with_note(format!("auditd's built-in default ({}) applies", k.default)),
        ]),
        Some(s) => {
            let ok = if k.accepted.is_empty() {
                s.value.parse::<u64>().is_ok_and(|n| n > 0)
            } else {
                k.accepted.iter().any(|a| a.eq_ignore_ascii_case(&s.value))
            };
            Outcome::check(
                ok,
                vec![
                    Evidence::file(audit::AUDITD_CONF)
                        .line(s.line)
                        .found(format!("{} = {}", k.key, s.value))
                        .expected(want),
                ],
            )
        }
    }
}

macro_rules! conf_item {
    ($name:ident, $id:literal, $ssg:literal, $u:expr, $r:expr, $key:literal, $accepted:expr, $default:literal,
     $title:literal, $why:literal, $fix:literal) => {
        static $name: ConfKey = ConfKey {
            rule: template($id, Some($ssg), cis($u, $r), $title, Severity::Medium, $why, $fix, ALL),
            key: $key,
            accepted: $accepted,
            default: $default,
        };
    };
}

conf_item!(
    MAX_LOG_FILE,
    "audit.max_log_file",
    "auditd_data_retention_max_log_file",
    Some("4.1.2.1"),
    Some("4.1.2.1"),
    "max_log_file",
    &[],
    "8 MB",
    "Ensure the audit log file size is configured",
    "The size at which auditd rotates its log must be set deliberately so the retained trail matches site policy.",
    "Set `max_log_file = <MB>` in /etc/audit/auditd.conf."
);
conf_item!(
    MAX_LOG_FILE_ACTION,
    "audit.max_log_file_action",
    "auditd_data_retention_max_log_file_action",
    Some("4.1.2.2"),
    Some("4.1.2.2"),
    "max_log_file_action",
    &["keep_logs"],
    "ROTATE",
    "Ensure audit logs are not automatically deleted",
    "With ROTATE auditd deletes the oldest logs; keep_logs rotates without ever deleting audit records.",
    "Set `max_log_file_action = keep_logs` in /etc/audit/auditd.conf."
);
conf_item!(
    SPACE_LEFT_ACTION,
    "audit.space_left_action",
    "auditd_data_retention_space_left_action",
    Some("4.1.2.3"),
    Some("4.1.2.3"),
    "space_left_action",
    &["email"],
    "SYSLOG",
    "Ensure auditd emails when audit disk space runs low",
    "Administrators must learn that the audit partition is filling up before records are lost.",
    "Set `space_left_action = email` in /etc/audit/auditd.conf."
);
conf_item!(
    ACTION_MAIL_ACCT,
    "audit.action_mail_acct",
    "auditd_data_retention_action_mail_acct",
    Some("4.1.2.3"),
    Some("4.1.2.3"),
    "action_mail_acct",
    &["root"],
    "root",
    "Ensure auditd mails its warnings to root",
    "The low-space warning must reach an account that is read.",
    "Set `action_mail_acct = root` in /etc/audit/auditd.conf."
);
conf_item!(
    ADMIN_SPACE_LEFT_ACTION,
    "audit.admin_space_left_action",
    "auditd_data_retention_admin_space_left_action",
    Some("4.1.2.3"),
    Some("4.1.2.3"),
    "admin_space_left_action",
    &["halt"],
    "SUSPEND",
    "Ensure the system halts when audit disk space is exhausted",
    "When the audit trail cannot be written, halting keeps the system from running unaudited.",
    "Set `admin_space_left_action = halt` in /etc/audit/auditd.conf."
);

// ---------------------------------------------------------------------------------------------
// Audit rules.

/// Which extra `-F`/`-C` conditions a syscall rule must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    None,
    /// `-F auid>=1000 -F auid!=unset`: only actions of logged-in users.
    Auid,
    /// [`Filter::Auid`] and `-F exit=<errno>` (e.g. `-EACCES`).
    AuidExit(&'static str),
    /// `-C euid!=uid` (or `uid!=euid`): a program running as another user.
    EuidNotUid,
}

impl Filter {
    fn text(self) -> String {
        match self {
            Filter::None => String::new(),
            Filter::Auid => format!(" -F auid>={UID_MIN} -F auid!=unset"),
            Filter::AuidExit(e) => format!(" -F exit={e} -F auid>={UID_MIN} -F auid!=unset"),
            Filter::EuidNotUid => " -C euid!=uid -F auid!=unset".to_owned(),
        }
    }

    fn accepts(self, r: &AuditRule) -> bool {
        let fields = match &r.kind {
            Kind::Syscall { fields, .. } => fields.as_slice(),
            _ => return false,
        };
        let auid = || {
            let lower = fields
                .iter()
                .any(|f| f.name == "auid" && f.op == ">=" && f.value.parse::<u64>().is_ok_and(|n| n <= UID_MIN));
            let set = fields
                .iter()
                .any(|f| f.name == "auid" && f.op == "!=" && matches!(f.value.as_str(), "unset" | "-1" | "4294967295"));
            lower && set
        };
        match self {
            Filter::None => true,
            Filter::Auid => auid(),
            Filter::AuidExit(errno) => {
                let num = match errno {
                    "-EACCES" => "-13",
                    "-EPERM" => "-1",
                    other => other,
                };
                auid() && fields.iter().any(|f| f.name == "exit" && f.op == "=" && (f.value == errno || f.value == num))
            }
            Filter::EuidNotUid => r.comparisons().iter().any(|c| {
                c.op == "!=" && ((c.name == "euid" && c.value == "uid") || (c.name == "uid" && c.value == "euid"))
            }),
        }
    }
}

/// The syscall architectures the image needs rules for: `b32` alone on a 32-bit image (all
/// packages 32-bit), both otherwise.
fn archs(ctx: &Ctx<'_>) -> &'static [&'static str] {
    const B64: [&str; 6] = ["amd64", "x86_64", "arm64", "aarch64", "ppc64el", "s390x"];
    let has = |set: &[&str]| ctx.packages.iter().any(|p| p.arch.as_deref().is_some_and(|a| set.contains(&a)));
    if !ctx.no_inventory() && !has(&B64) && has(&["i386", "i686", "armhf", "armel", "armv7hl"]) {
        &["b32"]
    } else {
        &["b64", "b32"]
    }
}

fn norm_path(p: &str) -> &str {
    if p.len() > 1 { p.trim_end_matches('/') } else { p }
}

/// Accumulates what a group of audit rules requires and what was found.
struct Need<'a> {
    rules: &'a Rules,
    ok: bool,
    found: Vec<Evidence>,
    missing: Vec<Evidence>,
}

impl<'a> Need<'a> {
    fn new(rules: &'a Rules) -> Self {
        Need { rules, ok: true, found: Vec::new(), missing: Vec::new() }
    }

    fn cite(&mut self, r: &AuditRule) {
        let ev = Evidence::file(r.file.clone()).line(r.line).found(r.text.clone());
        if !self.found.contains(&ev) {
            self.found.push(ev);
        }
    }

    /// The rule watching `path` for all of `perms`: `-w path -p perms`, or the syscall form
    /// `-a always,exit -F path=path -F perm=perms`.
    fn find_watch(&self, path: &str, perms: &str) -> Option<&'a AuditRule> {
        let covers = |have: &str| perms.chars().all(|c| have.contains(c));
        self.rules.rules.iter().find(|r| match &r.kind {
            Kind::Watch { path: p, perms: have } => norm_path(p) == norm_path(path) && covers(have),
            Kind::Syscall { fields, .. } if r.is_always_exit() => {
                fields.iter().any(|f| {
                    (f.name == "path" || f.name == "dir") && f.op == "=" && norm_path(&f.value) == norm_path(path)
                }) && fields.iter().any(|f| f.name == "perm" && covers(&f.value))
            }
            _ => false,
        })
    }

    fn watch(&mut self, path: &str, perms: &str) {
        match self.find_watch(path, perms) {
            Some(r) => self.cite(r),
            None => {
                self.ok = false;
                self.missing
                    .push(Evidence::note(format!("no watch on {path}")).expected(format!("-w {path} -p {perms}")));
            }
        }
    }

    /// One of `paths` watched.
    fn any_watch(&mut self, paths: &[&str], perms: &str) {
        match paths.iter().find_map(|p| self.find_watch(p, perms)) {
            Some(r) => self.cite(r),
            None => {
                self.ok = false;
                self.missing.push(
                    Evidence::note(format!("no watch on any of {}", paths.join(", ")))
                        .expected(format!("-w {} -p {perms}", paths.first().copied().unwrap_or_default())),
                );
            }
        }
    }

    /// Every syscall of `names` audited on every arch of `archs` by an `always,exit` rule that
    /// passes `filter`. A rule without `-F arch=` counts for the native `b64`.
    fn syscalls(&mut self, archs: &[&str], names: &[&str], filter: Filter) {
        for arch in archs {
            let mut missing = Vec::new();
            for name in names {
                let hit = self.rules.rules.iter().find(|r| {
                    r.is_always_exit()
                        && r.arch().map_or(*arch == "b64", |a| a == *arch)
                        && r.syscalls().iter().any(|s| s == name || s == "all")
                        && filter.accepts(r)
                });
                match hit {
                    Some(r) => self.cite(r),
                    None => missing.push(*name),
                }
            }
            if !missing.is_empty() {
                self.ok = false;
                self.missing.push(
                    Evidence::note(format!(
                        "{arch}: {} not audited{}",
                        missing.join(", "),
                        if filter == Filter::None { String::new() } else { " with the required filters".to_owned() }
                    ))
                    .expected(format!(
                        "-a always,exit -F arch={arch} -S {}{}",
                        missing.join(","),
                        filter.text()
                    )),
                );
            }
        }
    }

    fn outcome(self) -> Outcome {
        let Need { ok, mut found, missing, .. } = self;
        let mut ev = missing;
        ev.append(&mut found);
        Outcome::check(ok, ev)
    }
}

/// A group of audit rules: the rule template and the function that states what it needs.
#[derive(Debug)]
struct Group {
    rule: Rule,
    need: fn(&Ctx<'_>, &mut Need<'_>),
}

fn group(ctx: &Ctx<'_>, g: &Group) -> Outcome {
    if let Some(o) = needs_auditd(ctx) {
        return o;
    }
    let rules = audit::load_rules(ctx);
    if !rules.errors.is_empty() {
        return Outcome::error(format!("audit rules unreadable: {}", rules.errors.join("; ")));
    }
    let mut need = Need::new(&rules);
    (g.need)(ctx, &mut need);
    let mut o = need.outcome();
    o.evidence.push(Evidence::note(format!("rules read from {}", rules.source)));
    o
}

fn time_change(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    let archs = archs(ctx);
    n.syscalls(archs, &["adjtimex", "settimeofday", "clock_settime"], Filter::None);
    if archs.contains(&"b32") {
        n.syscalls(&["b32"], &["stime"], Filter::None);
    }
    n.watch("/etc/localtime", "wa");
}

fn identity(_: &Ctx<'_>, n: &mut Need<'_>) {
    for p in ["/etc/group", "/etc/passwd", "/etc/gshadow", "/etc/shadow", "/etc/security/opasswd"] {
        n.watch(p, "wa");
    }
}

fn system_locale(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    n.syscalls(archs(ctx), &["sethostname", "setdomainname"], Filter::None);
    for p in ["/etc/issue", "/etc/issue.net", "/etc/hosts"] {
        n.watch(p, "wa");
    }
    match ctx.family() {
        Family::Debian => n.watch("/etc/network", "wa"),
        Family::Rhel => n.watch("/etc/sysconfig/network", "wa"),
        _ => n.any_watch(&["/etc/network", "/etc/sysconfig/network"], "wa"),
    }
}

fn mac_policy(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    match ctx.family() {
        Family::Rhel => n.watch("/etc/selinux", "wa"),
        Family::Debian => {
            n.watch("/etc/apparmor", "wa");
            n.watch("/etc/apparmor.d", "wa");
        }
        _ => n.any_watch(&["/etc/apparmor.d", "/etc/selinux"], "wa"),
    }
}

fn logins(_: &Ctx<'_>, n: &mut Need<'_>) {
    n.watch("/var/log/lastlog", "wa");
    n.any_watch(&["/var/run/faillock", "/run/faillock", "/var/log/faillog", "/var/log/tallylog"], "wa");
}

fn session(_: &Ctx<'_>, n: &mut Need<'_>) {
    n.any_watch(&["/var/run/utmp", "/run/utmp"], "wa");
    n.watch("/var/log/wtmp", "wa");
    n.watch("/var/log/btmp", "wa");
}

fn perm_mod(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    n.syscalls(
        archs(ctx),
        &[
            "chmod",
            "fchmod",
            "fchmodat",
            "chown",
            "fchown",
            "fchownat",
            "lchown",
            "setxattr",
            "lsetxattr",
            "fsetxattr",
            "removexattr",
            "lremovexattr",
            "fremovexattr",
        ],
        Filter::Auid,
    );
}

fn access(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    let calls = ["creat", "open", "openat", "truncate", "ftruncate"];
    n.syscalls(archs(ctx), &calls, Filter::AuidExit("-EACCES"));
    n.syscalls(archs(ctx), &calls, Filter::AuidExit("-EPERM"));
}

fn mounts(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    n.syscalls(archs(ctx), &["mount"], Filter::Auid);
}

fn delete(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    n.syscalls(archs(ctx), &["unlink", "unlinkat", "rename", "renameat"], Filter::Auid);
}

fn scope(_: &Ctx<'_>, n: &mut Need<'_>) {
    n.watch("/etc/sudoers", "wa");
    n.watch("/etc/sudoers.d", "wa");
}

fn user_emulation(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    n.syscalls(archs(ctx), &["execve"], Filter::EuidNotUid);
}

fn modules(_: &Ctx<'_>, n: &mut Need<'_>) {
    n.syscalls(&["b64"], &["init_module", "finit_module", "delete_module"], Filter::None);
    // Module tools: kmod itself, or the insmod/rmmod/modprobe links.
    if n.find_watch("/usr/bin/kmod", "x").or_else(|| n.find_watch("/bin/kmod", "x")).is_some() {
        n.any_watch(&["/usr/bin/kmod", "/bin/kmod"], "x");
    } else {
        for tool in ["/sbin/insmod", "/sbin/rmmod", "/sbin/modprobe"] {
            let alt = tool.replacen("/sbin/", "/usr/sbin/", 1);
            n.any_watch(&[tool, alt.as_str()], "x");
        }
    }
}

fn immutable(_: &Ctx<'_>, n: &mut Need<'_>) {
    let last = n.rules.rules.iter().rev().find(|r| matches!(&r.kind, Kind::Control { flag, .. } if flag == "-e"));
    match last {
        Some(r) if matches!(&r.kind, Kind::Control { value, .. } if value == "2") => n.cite(r),
        Some(r) => {
            n.ok = false;
            n.missing.push(
                Evidence::file(r.file.clone()).line(r.line).found(r.text.clone()).expected("-e 2 as the last -e"),
            );
        }
        None => {
            n.ok = false;
            n.missing.push(Evidence::note("no -e control line").expected("-e 2 at the end of the rules"));
        }
    }
}

/// The sudo log file from `Defaults logfile=` in /etc/sudoers and /etc/sudoers.d.
fn sudo_logfile(ctx: &Ctx<'_>) -> Result<Option<(String, usize, String)>, String> {
    let mut files = vec!["/etc/sudoers".to_owned()];
    // sudo's @includedir skips names containing `.` or ending in `~`.
    for e in ctx.list_dir("/etc/sudoers.d")? {
        if !e.name.contains('.') && !e.name.ends_with('~') {
            files.push(format!("/etc/sudoers.d/{}", e.name));
        }
    }
    let mut found = None;
    for f in files {
        let Some(text) = ctx.read_text(&f)? else { continue };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if !line.starts_with("Defaults") {
                continue;
            }
            if let Some(pos) = line.find("logfile") {
                let rest = line.get(pos + "logfile".len()..).unwrap_or_default().trim_start();
                if let Some(v) = rest.strip_prefix('=') {
                    let v = v.trim_start();
                    let v = match v.strip_prefix('"') {
                        Some(q) => q.split('"').next().unwrap_or_default(),
                        None => v.split([',', ' ', '\t']).next().unwrap_or_default(),
                    };
                    if !v.is_empty() {
                        found = Some((f.clone(), i + 1, v.to_owned()));
                    }
                }
            }
        }
    }
    Ok(found)
}

fn sudo_log(ctx: &Ctx<'_>, n: &mut Need<'_>) {
    match sudo_logfile(ctx) {
        Ok(Some((f, l, path))) => {
            n.found.push(Evidence::file(f).line(l).found(format!("Defaults logfile={path}")));
            n.watch(&path, "wa");
        }
        Ok(None) => {
            n.ok = false;
            n.missing.push(
                Evidence::note(
                    "no `Defaults logfile=` in /etc/sudoers or /etc/sudoers.d: there is no sudo log to watch",
                )
                .expected("Defaults logfile=\"/var/log/sudo.log\" and -w /var/log/sudo.log -p wa"),
            );
        }
        Err(e) => {
            n.ok = false;
            n.missing.push(Evidence::note(format!("sudoers unreadable: {e}")));
        }
    }
}

fn sudo_log_group(ctx: &Ctx<'_>, g: &Group) -> Outcome {
    let sudo = presence(ctx, &["sudo", "sudo-ldap"], &["/usr/bin/sudo"]);
    if let Presence::Absent(_) = sudo {
        return Outcome::na("sudo is not installed");
    }
    group(ctx, g)
}

macro_rules! group_item {
    ($name:ident, $id:literal, $ssg:literal, $u:expr, $r:expr, $need:ident, $title:literal, $why:literal,
     $fix:literal) => {
        static $name: Group = Group {
            rule: template($id, Some($ssg), cis($u, $r), $title, Severity::Medium, $why, $fix, ALL),
            need: $need,
        };
    };
}

group_item!(
    TIME_CHANGE,
    "audit.time_change",
    "audit_rules_time_adjtimex",
    Some("4.1.3"),
    Some("4.1.3.4"),
    time_change,
    "Ensure changes to date and time are audited",
    "Clock changes can hide the order of events. Also covers SSG audit_rules_time_settimeofday, _clock_settime, _stime, _watch_localtime.",
    "In /etc/audit/rules.d/50-time-change.rules: `-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change`, `-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime,stime -k time-change`, `-w /etc/localtime -p wa -k time-change`; then `augenrules --load`."
);
group_item!(
    IDENTITY,
    "audit.identity",
    "audit_rules_usergroup_modification_passwd",
    Some("4.1.4"),
    Some("4.1.3.8"),
    identity,
    "Ensure changes to users and groups are audited",
    "Account changes are how persistence is gained. Also covers SSG audit_rules_usergroup_modification_group, _gshadow, _shadow, _opasswd.",
    "In /etc/audit/rules.d/50-identity.rules: `-w /etc/group -p wa -k identity` and the same for /etc/passwd, /etc/gshadow, /etc/shadow, /etc/security/opasswd."
);
group_item!(
    SYSTEM_LOCALE,
    "audit.system_locale",
    "audit_rules_networkconfig_modification",
    Some("4.1.5"),
    Some("4.1.3.5"),
    system_locale,
    "Ensure changes to the network environment are audited",
    "Host name, domain and network configuration changes can redirect traffic or mislead users.",
    "`-a always,exit -F arch=b64 -S sethostname,setdomainname -k system-locale` (and arch=b32), `-w /etc/issue -p wa`, `-w /etc/issue.net -p wa`, `-w /etc/hosts -p wa`, `-w /etc/network -p wa` (RHEL: /etc/sysconfig/network)."
);
group_item!(
    MAC_POLICY,
    "audit.mac_policy",
    "audit_rules_mac_modification",
    None,
    Some("4.1.3.14"),
    mac_policy,
    "Ensure changes to the mandatory access control policy are audited",
    "Weakening AppArmor or SELinux policy is a step to undetected access.",
    "Debian/Ubuntu: `-w /etc/apparmor/ -p wa -k MAC-policy` and `-w /etc/apparmor.d/ -p wa -k MAC-policy`; RHEL: `-w /etc/selinux/ -p wa -k MAC-policy`."
);
group_item!(
    LOGINS,
    "audit.logins",
    "audit_rules_login_events_lastlog",
    Some("4.1.7"),
    Some("4.1.3.12"),
    logins,
    "Ensure login and logout events are audited",
    "Login records show brute-force attempts and unusual access. Also covers SSG audit_rules_login_events_faillock, _faillog, _tallylog.",
    "`-w /var/log/lastlog -p wa -k logins` and `-w /var/run/faillock -p wa -k logins`."
);
group_item!(
    SESSION,
    "audit.session",
    "audit_rules_session_events",
    Some("4.1.8"),
    Some("4.1.3.11"),
    session,
    "Ensure session initiation is audited",
    "utmp/wtmp/btmp record who is and was logged in; tampering with them hides sessions.",
    "`-w /var/run/utmp -p wa -k session`, `-w /var/log/wtmp -p wa -k logins`, `-w /var/log/btmp -p wa -k logins`."
);
group_item!(
    PERM_MOD,
    "audit.perm_mod",
    "audit_rules_dac_modification_chmod",
    Some("4.1.9"),
    Some("4.1.3.9"),
    perm_mod,
    "Ensure discretionary access control changes are audited",
    "Permission and ownership changes by users can expose files. Also covers SSG audit_rules_dac_modification_fchmod, _fchmodat, _chown, _fchown, _fchownat, _lchown, _setxattr, _lsetxattr, _fsetxattr, _removexattr, _lremovexattr, _fremovexattr.",
    "`-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod`, the same for chown,fchown,fchownat,lchown and for setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr, and all again with arch=b32."
);
group_item!(
    ACCESS,
    "audit.access",
    "audit_rules_unsuccessful_file_modification_open",
    Some("4.1.10"),
    Some("4.1.3.7"),
    access,
    "Ensure unsuccessful file access attempts are audited",
    "Denied opens reveal users probing for files they should not read. Also covers SSG audit_rules_unsuccessful_file_modification_creat, _openat, _truncate, _ftruncate.",
    "`-a always,exit -F arch=b64 -S creat,open,openat,truncate,ftruncate -F exit=-EACCES -F auid>=1000 -F auid!=unset -k access`, the same with -EPERM, and both again with arch=b32."
);
group_item!(
    MOUNTS,
    "audit.mounts",
    "audit_rules_media_export",
    None,
    Some("4.1.3.10"),
    mounts,
    "Ensure successful file system mounts are audited",
    "Mounting media by users is a way to export data or import tools.",
    "`-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=unset -k mounts` and the same with arch=b32."
);
group_item!(
    DELETE,
    "audit.delete",
    "audit_rules_file_deletion_events_unlink",
    Some("4.1.13"),
    Some("4.1.3.13"),
    delete,
    "Ensure file deletion by users is audited",
    "Deletions and renames by users can destroy evidence. Also covers SSG audit_rules_file_deletion_events_unlinkat, _rename, _renameat.",
    "`-a always,exit -F arch=b64 -S unlink,unlinkat,rename,renameat -F auid>=1000 -F auid!=unset -k delete` and the same with arch=b32."
);
group_item!(
    SCOPE,
    "audit.sudoers",
    "audit_rules_sysadmin_actions",
    Some("4.1.14"),
    Some("4.1.3.1"),
    scope,
    "Ensure changes to sudoers are audited",
    "Changes to who may act as root must be recorded.",
    "`-w /etc/sudoers -p wa -k scope` and `-w /etc/sudoers.d -p wa -k scope`."
);
group_item!(
    SUDO_LOG,
    "audit.sudo_log",
    "audit_sudo_log_events",
    None,
    Some("4.1.3.3"),
    sudo_log,
    "Ensure changes to the sudo log file are audited",
    "The sudo log records privileged commands; edits to it hide them.",
    "Set `Defaults logfile=\"/var/log/sudo.log\"` in sudoers and add `-w /var/log/sudo.log -p wa -k sudo_log_file`."
);
group_item!(
    USER_EMULATION,
    "audit.user_emulation",
    "audit_rules_suid_privilege_function",
    Some("4.1.15"),
    Some("4.1.3.2"),
    user_emulation,
    "Ensure actions as another user are audited",
    "Programs run as another user (sudo, su, set-user-ID) are the privileged actions that matter most.",
    "`-a always,exit -F arch=b64 -C euid!=uid -F auid!=unset -S execve -k user_emulation` and the same with arch=b32."
);
group_item!(
    MODULES,
    "audit.modules",
    "audit_rules_kernel_module_loading_init",
    Some("4.1.16"),
    Some("4.1.3.19"),
    modules,
    "Ensure kernel module loading and unloading is audited",
    "A loaded module runs with full kernel privileges. Also covers SSG audit_rules_kernel_module_loading_delete, audit_rules_privileged_commands_insmod, _rmmod, _modprobe.",
    "`-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules` and `-a always,exit -F path=/usr/bin/kmod -F perm=x -F auid>=1000 -F auid!=unset -k kernel_modules` (or `-w /sbin/insmod -p x`, rmmod, modprobe)."
);
group_item!(
    IMMUTABLE,
    "audit.immutable",
    "audit_rules_immutable",
    Some("4.1.17"),
    Some("4.1.3.20"),
    immutable,
    "Ensure the audit configuration is immutable",
    "With `-e 2` the rules cannot be changed until reboot, so an intruder cannot silently switch auditing off.",
    "Put `-e 2` as the last line of /etc/audit/rules.d/99-finalize.rules."
);

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    let simple: [(Rule, Eval); 4] = [
        (
            template(
                "audit.installed",
                Some("package_audit_installed"),
                cis(Some("4.1.1.1"), Some("4.1.1.1")),
                "Ensure auditd is installed",
                Severity::Medium,
                "auditd records security-relevant kernel events to disk.",
                "`apt install auditd audispd-plugins` (Debian/Ubuntu) or `dnf install audit` (RHEL).",
                ALL,
            ),
            installed,
        ),
        (
            template(
                "audit.enabled",
                Some("service_auditd_enabled"),
                cis(Some("4.1.1.2"), Some("4.1.1.4")),
                "Ensure auditd is enabled at boot",
                Severity::Medium,
                "An installed auditd records nothing unless it starts at boot.",
                "`systemctl enable auditd` (creates /etc/systemd/system/multi-user.target.wants/auditd.service).",
                ALL,
            ),
            enabled,
        ),
        (
            template(
                "audit.boot_audit_arg",
                Some("grub2_audit_argument"),
                cis(Some("4.1.1.3"), Some("4.1.1.2")),
                "Ensure processes started before auditd are audited (audit=1)",
                Severity::Low,
                "Without audit=1 on the kernel command line, processes started before auditd are never auditable.",
                "Add `audit=1` to GRUB_CMDLINE_LINUX in /etc/default/grub and run `update-grub` / `grub2-mkconfig -o /boot/grub2/grub.cfg` (RHEL: `grubby --update-kernel ALL --args audit=1`).",
                ALL,
            ),
            audit_arg,
        ),
        (
            template(
                "audit.backlog_limit",
                Some("grub2_audit_backlog_limit_argument"),
                cis(Some("4.1.1.4"), Some("4.1.1.3")),
                "Ensure audit_backlog_limit is sufficient (8192 or more)",
                Severity::Low,
                "Events before auditd starts are queued in a backlog (64 by default); when it overflows they are lost.",
                "Add `audit_backlog_limit=8192` to GRUB_CMDLINE_LINUX in /etc/default/grub and regenerate grub.cfg.",
                ALL,
            ),
            backlog_arg,
        ),
    ];
    let mut v: Vec<Rule> = simple.into_iter().map(|(r, eval)| Rule { eval, ..r }).collect();
    v.extend(bind!(conf_key; MAX_LOG_FILE, MAX_LOG_FILE_ACTION, SPACE_LEFT_ACTION, ACTION_MAIL_ACCT,
        ADMIN_SPACE_LEFT_ACTION));
    v.extend(bind!(group; TIME_CHANGE, IDENTITY, SYSTEM_LOCALE, MAC_POLICY, LOGINS, SESSION, PERM_MOD, ACCESS, MOUNTS,
        DELETE, SCOPE, USER_EMULATION, MODULES, IMMUTABLE));
    v.extend(bind!(sudo_log_group; SUDO_LOG));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::parse::audit::parse_rules;

    fn need(text: &str) -> Rules {
        Rules { rules: parse_rules(text, "/etc/audit/rules.d/t.rules"), ..Rules::default() }
    }

    #[test]
    fn syscalls_need_every_arch_and_filters() {
        let r = need(
            "-a always,exit -F arch=b64 -S chmod -S fchmod -F auid>=1000 -F auid!=unset\n-a always,exit -F arch=b32 -S chmod,fchmod -F auid>=1000\n",
        );
        let mut n = Need::new(&r);
        n.syscalls(&["b64"], &["chmod", "fchmod"], Filter::Auid);
        assert!(n.ok);
        n.syscalls(&["b32"], &["chmod"], Filter::Auid);
        assert!(!n.ok, "b32 rule lacks auid!=unset");
    }

    #[test]
    fn watches_in_both_forms() {
        let r = need("-w /etc/sudoers.d/ -p wa\n-a always,exit -F path=/usr/bin/kmod -F perm=x -F auid>=1000\n");
        let n = Need::new(&r);
        assert!(n.find_watch("/etc/sudoers.d", "wa").is_some());
        assert!(n.find_watch("/etc/sudoers.d", "rwa").is_none());
        assert!(n.find_watch("/usr/bin/kmod", "x").is_some());
    }

    #[test]
    fn errno_filters() {
        let r = need("-a always,exit -F arch=b64 -S open -F exit=-13 -F auid>=500 -F auid!=-1\n");
        let mut n = Need::new(&r);
        n.syscalls(&["b64"], &["open"], Filter::AuidExit("-EACCES"));
        assert!(n.ok);
        n.syscalls(&["b64"], &["open"], Filter::AuidExit("-EPERM"));
        assert!(!n.ok);
    }
}
