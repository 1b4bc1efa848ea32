//! PAM rules (CIS Ubuntu 22.04 5.3.x/5.6, RHEL 9 5.3.7/5.5.x): password quality (pam_pwquality
//! with `pwquality.conf`), lockout (pam_faillock with `faillock.conf`, or pam_tally2), password
//! history (pam_pwhistory with `pwhistory.conf`), the hash of new passwords (pam_unix), and `su`
//! restricted to an empty group (pam_wheel).
//!
//! The stacks examined are Debian's `common-password`/`common-auth` when they exist, otherwise
//! RHEL's `system-auth` and `password-auth`; each is resolved with its includes ([`pam`]). Module
//! arguments override the configuration files, as the modules themselves apply them. Rules are
//! `notapplicable` when the image has no PAM configuration at all (Alpine without linux-pam).

use super::{BASE, cis};
use crate::baseline::checks::accounts::capped;
use crate::baseline::parse::accounts as account_db;
use crate::baseline::parse::kv::{self, KvFile};
use crate::baseline::parse::logindefs;
use crate::baseline::parse::pam::{self, PamLine, Stack};
use crate::baseline::{Ctx, Evidence, Outcome, Rule, ctx};

/// libpwquality's main configuration file; `pwquality.conf.d/*.conf` is read before it.
const PWQUALITY_CONF: &str = "/etc/security/pwquality.conf";
/// pam_faillock's configuration file.
const FAILLOCK_CONF: &str = "/etc/security/faillock.conf";
/// pam_pwhistory's configuration file (Linux-PAM 1.5.0+).
const PWHISTORY_CONF: &str = "/etc/security/pwhistory.conf";

/// Most drop-in files read from `pwquality.conf.d`: real systems have none or one; bounds reads on a
/// crafted directory.
const MAX_DROP_INS: usize = 1_000;

/// Stack files by style: Debian/SUSE `common-*`, else RHEL/Arch `system-auth` + `password-auth`.
fn stack_names(kind: &str) -> (&'static [&'static str], &'static [&'static str]) {
    if kind == "password" {
        (&["common-password"], &["system-auth", "password-auth"])
    } else {
        (&["common-auth"], &["system-auth", "password-auth"])
    }
}

/// The resolved `kind` stacks of the image, or the outcome to return (notapplicable without PAM,
/// error when a stack cannot be resolved, fail when no stack file exists).
fn stacks(ctx: &Ctx<'_>, kind: &str) -> Result<Vec<(String, Stack)>, Outcome> {
    let has_pam = [pam::PAM_DIR, pam::VENDOR_DIR].iter().any(|d| matches!(ctx.stat(d), Ok(Some(_))));
    if !has_pam {
        return Err(Outcome::na(format!("no PAM configuration ({} does not exist)", pam::PAM_DIR)));
    }
    let (debian, rhel) = stack_names(kind);
    for names in [debian, rhel] {
        let mut out = Vec::new();
        for n in names {
            match pam::stack(ctx, n, kind) {
                Ok(Some(s)) => out.push(((*n).to_owned(), s)),
                Ok(None) => {}
                Err(e) => return Err(Outcome::error(e)),
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    let all: Vec<&str> = debian.iter().chain(rhel).copied().collect();
    Err(Outcome::fail(vec![
        Evidence::file(pam::PAM_DIR)
            .found(format!("none of {} exists", all.join(", ")))
            .expected(format!("a {kind} stack")),
    ]))
}

/// Evidence that `module` is missing from a stack.
fn missing(name: &str, stack: &Stack, module: &str, kind: &str) -> Evidence {
    Evidence::file(stack.files.first().cloned().unwrap_or_else(|| format!("{}/{name}", pam::PAM_DIR)))
        .found(format!("no {module}.so line in the {kind} stack ({})", stack.files.join(", ")))
        .expected(format!("{kind} ... {module}.so"))
}

/// pwquality.conf.d/*.conf (sorted) then pwquality.conf: the order libpwquality reads them, each
/// later value overriding earlier ones.
fn pwquality_files(ctx: &Ctx<'_>) -> Result<Vec<KvFile>, String> {
    let mut paths = ctx::glob(ctx, &format!("{PWQUALITY_CONF}.d/*.conf"), MAX_DROP_INS)?;
    paths.push(PWQUALITY_CONF.to_owned());
    let mut out = Vec::new();
    for p in paths {
        if let Some(f) = kv::load(ctx, &p, kv::SECURITY_CONF)? {
            out.push(f);
        }
    }
    Ok(out)
}

/// The value of `key` for the module on `line`: its argument, else the configuration files, else
/// `None` (the module's default); with the evidence of where it came from.
fn setting(line: &PamLine, files: &[KvFile], key: &str) -> Option<(String, Evidence)> {
    if let Some(v) = line.arg(key) {
        return Some((
            v.to_owned(),
            Evidence::file(line.file.clone())
                .line(line.line)
                .found(format!("{key}={v}"))
                .with_note("module argument (overrides the configuration file)"),
        ));
    }
    kv::last_of(files, key).map(|f| {
        (f.entry.value.clone(), Evidence::file(f.file).line(f.entry.line).found(format!("{key} = {}", f.entry.value)))
    })
}

fn int_setting(line: &PamLine, files: &[KvFile], key: &str, default: i64, module: &str) -> (Option<i64>, Evidence) {
    match setting(line, files, key) {
        Some((v, ev)) => (v.trim().parse().ok(), ev),
        None => (
            Some(default),
            Evidence::file(line.file.clone())
                .line(line.line)
                .found(format!("{key} not set"))
                .with_note(format!("{module} default {key}={default}")),
        ),
    }
}

/// Evaluate every line of `module` in the `kind` stacks with `judge`; fail when a stack lacks the
/// module.
fn per_module_line(
    ctx: &Ctx<'_>,
    kind: &str,
    module: &str,
    files: impl FnOnce(&Ctx<'_>) -> Result<Vec<KvFile>, String>,
    judge: impl Fn(&PamLine, &[KvFile]) -> (bool, Vec<Evidence>),
) -> Outcome {
    let stacks = match stacks(ctx, kind) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let files = match files(ctx) {
        Ok(f) => f,
        Err(e) => return Outcome::error(e),
    };
    let mut ok = true;
    let mut ev = Vec::new();
    for (name, stack) in &stacks {
        let lines: Vec<&PamLine> = stack.module(module).collect();
        if lines.is_empty() {
            ok = false;
            ev.push(missing(name, stack, module, kind));
        }
        for l in lines {
            let (good, e) = judge(l, &files);
            ok &= good;
            ev.push(Evidence::file(l.file.clone()).line(l.line).found(l.display()));
            ev.extend(e);
        }
    }
    Outcome::check(ok, capped(ev))
}

/// Smallest accepted pwquality minlen (CIS).
const MIN_LEN: i64 = 14;

fn pwquality_minlen(ctx: &Ctx<'_>) -> Outcome {
    per_module_line(ctx, "password", "pam_pwquality", pwquality_files, |l, files| {
        // libpwquality's default minlen is 8 (pwquality.conf(5)).
        let (v, ev) = int_setting(l, files, "minlen", 8, "libpwquality");
        (v.is_some_and(|v| v >= MIN_LEN), vec![ev.expected(format!("minlen >= {MIN_LEN}"))])
    })
}

fn pwquality_minclass(ctx: &Ctx<'_>) -> Outcome {
    per_module_line(ctx, "password", "pam_pwquality", pwquality_files, |l, files| {
        // libpwquality defaults: minclass 0, every credit 0.
        let (minclass, mut ev) = int_setting(l, files, "minclass", 0, "libpwquality");
        let mut evs = vec![ev.clone().expected("minclass 4, or dcredit/ucredit/lcredit/ocredit all <= -1")];
        if minclass.is_some_and(|v| v >= 4) {
            return (true, evs);
        }
        let mut all = true;
        for key in ["dcredit", "ucredit", "lcredit", "ocredit"] {
            let (v, e) = int_setting(l, files, key, 0, "libpwquality");
            all &= v.is_some_and(|v| v <= -1);
            ev = e.expected(format!("{key} <= -1"));
            evs.push(ev.clone());
        }
        (all, evs)
    })
}

fn faillock_files(ctx: &Ctx<'_>) -> Result<Vec<KvFile>, String> {
    Ok(kv::load(ctx, FAILLOCK_CONF, kv::SECURITY_CONF)?.into_iter().collect())
}

/// Most failed attempts before lockout (CIS: 5 or fewer; 0 disables locking).
const MAX_DENY: i64 = 5;

fn faillock_deny(ctx: &Ctx<'_>) -> Outcome {
    let stacks = match stacks(ctx, "auth") {
        Ok(s) => s,
        Err(o) => return o,
    };
    let files = match faillock_files(ctx) {
        Ok(f) => f,
        Err(e) => return Outcome::error(e),
    };
    let mut ok = true;
    let mut ev = Vec::new();
    for (name, stack) in &stacks {
        let lines: Vec<&PamLine> = stack.lines.iter().filter(|l| l.is("pam_faillock") || l.is("pam_tally2")).collect();
        if lines.is_empty() {
            ok = false;
            ev.push(missing(name, stack, "pam_faillock", "auth"));
        }
        for l in lines {
            ev.push(Evidence::file(l.file.clone()).line(l.line).found(l.display()));
            let expected = format!("deny 1..={MAX_DENY}");
            let (v, e) = if l.is("pam_faillock") {
                // pam_faillock's default deny is 3 (faillock.conf(5)).
                int_setting(l, &files, "deny", 3, "pam_faillock")
            } else {
                // pam_tally2 has no default: without deny= it never locks.
                match l.arg("deny") {
                    Some(v) => (v.parse().ok(), Evidence::file(l.file.clone()).line(l.line).found(format!("deny={v}"))),
                    None => (
                        None,
                        Evidence::file(l.file.clone())
                            .line(l.line)
                            .found("deny not set")
                            .with_note("pam_tally2 never locks without deny="),
                    ),
                }
            };
            ok &= v.is_some_and(|v| (1..=MAX_DENY).contains(&v));
            ev.push(e.expected(expected));
        }
    }
    Outcome::check(ok, capped(ev))
}

fn pwhistory_files(ctx: &Ctx<'_>) -> Result<Vec<KvFile>, String> {
    Ok(kv::load(ctx, PWHISTORY_CONF, kv::SECURITY_CONF)?.into_iter().collect())
}

/// Fewest remembered passwords (CIS).
const MIN_REMEMBER: i64 = 5;

fn pwhistory_remember(ctx: &Ctx<'_>) -> Outcome {
    per_module_line(ctx, "password", "pam_pwhistory", pwhistory_files, |l, files| {
        // pam_pwhistory's default remember is 10 (pam_pwhistory(8)).
        let (v, ev) = int_setting(l, files, "remember", 10, "pam_pwhistory");
        (v.is_some_and(|v| v >= MIN_REMEMBER), vec![ev.expected(format!("remember >= {MIN_REMEMBER}"))])
    })
}

/// pam_unix's hash selection options; the last one given wins (they share one control field).
const HASH_OPTIONS: &[&str] = &["md5", "bigcrypt", "sha256", "sha512", "blowfish", "gost_yescrypt", "yescrypt"];

fn password_hashing(ctx: &Ctx<'_>) -> Outcome {
    let defs = logindefs::load(ctx);
    per_module_line(
        ctx,
        "password",
        "pam_unix",
        |_| Ok(Vec::new()),
        |l, _| {
            let expected = "sha512 or yescrypt";
            match l.args.iter().rev().find(|a| HASH_OPTIONS.contains(&a.as_str())) {
                Some(h) => (
                    h == "sha512" || h == "yescrypt",
                    vec![Evidence::file(l.file.clone()).line(l.line).found(h.clone()).expected(expected)],
                ),
                None => match defs.get("ENCRYPT_METHOD") {
                    // Without an option pam_unix (Linux-PAM >= 1.4) hashes with login.defs' ENCRYPT_METHOD.
                    Ok(Some(s)) => {
                        let ok = s.value.eq_ignore_ascii_case("SHA512") || s.value.eq_ignore_ascii_case("YESCRYPT");
                        (
                            ok,
                            vec![
                                Evidence::file(s.file.clone())
                                    .line(s.line)
                                    .found(format!("ENCRYPT_METHOD {}", s.value))
                                    .expected(expected)
                                    .with_note("pam_unix has no hash option and uses login.defs ENCRYPT_METHOD"),
                            ],
                        )
                    }
                    _ => (
                        false,
                        vec![
                            Evidence::file(l.file.clone())
                                .line(l.line)
                                .found("no hash option and no ENCRYPT_METHOD in login.defs")
                                .expected(expected),
                        ],
                    ),
                },
            }
        },
    )
}

/// The `auth required|requisite pam_wheel.so use_uid` line of /etc/pam.d/su, or the outcome.
fn wheel_line(ctx: &Ctx<'_>) -> Result<PamLine, Outcome> {
    let file = match pam::file(ctx, "su") {
        Ok(Some(f)) => f,
        Ok(None) => return Err(Outcome::na(format!("{}/su does not exist (su is not installed)", pam::PAM_DIR))),
        Err(e) => return Err(Outcome::error(e)),
    };
    let line = file.items.iter().find_map(|i| match i {
        pam::Item::Line(l)
            if l.kind == "auth"
                && l.is("pam_wheel")
                && matches!(l.control.as_str(), "required" | "requisite")
                && l.flag("use_uid")
                // `deny` inverts the test: members are refused, everyone else may su.
                && !l.flag("deny") =>
        {
            Some(l.clone())
        }
        _ => None,
    });
    line.ok_or_else(|| {
        Outcome::fail(vec![
            Evidence::file(file.path.clone())
                .found("no `auth required pam_wheel.so use_uid` line")
                .expected("auth required pam_wheel.so use_uid group=<group>"),
        ])
    })
}

fn su_restricted(ctx: &Ctx<'_>) -> Outcome {
    match wheel_line(ctx) {
        Ok(l) => Outcome::pass(vec![
            Evidence::file(l.file.clone())
                .line(l.line)
                .found(l.display())
                .expected("auth required pam_wheel.so use_uid"),
        ]),
        Err(o) => o,
    }
}

fn su_group_empty(ctx: &Ctx<'_>) -> Outcome {
    let l = match wheel_line(ctx) {
        Ok(l) => l,
        Err(o) if o.status == crate::baseline::Status::Fail => {
            return Outcome::na("su is not restricted with pam_wheel (see pam.su_restricted)");
        }
        Err(o) => return o,
    };
    let acc = account_db::load(ctx);
    if let Some(e) = acc.group.error.as_ref().or(acc.passwd.error.as_ref()) {
        return Outcome::error(e.clone());
    }
    let line_ev = Evidence::file(l.file.clone()).line(l.line).found(l.display());
    // pam_wheel checks group= if given, else the "wheel" group, else the group with GID 0.
    let g = match l.arg("group") {
        Some(name) => acc.group(name),
        None => acc.group("wheel").or_else(|| acc.group_by_gid(0)),
    };
    let Some(g) = g else {
        let name = l.arg("group").unwrap_or("wheel");
        return Outcome::pass(vec![
            line_ev.with_note(format!("group {name} does not exist: pam_wheel lets nobody su")),
        ]);
    };
    let group = g.name.clone();
    let mut bad = Vec::new();
    if !g.members.is_empty() {
        bad.push(
            Evidence::file("/etc/group")
                .line(g.line)
                .found(format!("{group} members: {}", g.members.join(",")))
                .expected("no members"),
        );
    }
    for u in acc.passwd.records.iter().filter(|u| u.gid == g.gid) {
        bad.push(
            Evidence::file("/etc/passwd")
                .line(u.line)
                .found(format!("{}: primary group {group}", u.name))
                .expected("no members"),
        );
    }
    let ok = bad.is_empty();
    let mut ev = vec![line_ev];
    if ok {
        ev.push(
            Evidence::file("/etc/group").line(g.line).found(format!("{group} has no members")).expected("no members"),
        );
    }
    ev.extend(bad);
    Outcome::check(ok, capped(ev))
}

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            id: "pam.pwquality_minlen",
            ssg_id: Some("accounts_password_pam_minlen"),
            cis: cis(Some("5.3.1"), Some("5.5.1")),
            title: "pam_pwquality requires passwords of 14 characters or more",
            rationale: "Short passwords fall quickly to guessing and cracking.",
            remediation: "Add `password requisite pam_pwquality.so retry=3` to /etc/pam.d/common-password (RHEL: via authselect) and set `minlen = 14` in /etc/security/pwquality.conf (a minlen= argument on the pam_pwquality line overrides the file).",
            eval: pwquality_minlen,
            ..BASE
        },
        Rule {
            id: "pam.pwquality_minclass",
            ssg_id: Some("accounts_password_pam_minclass"),
            cis: cis(Some("5.3.1"), Some("5.5.1")),
            title: "pam_pwquality requires all four character classes (minclass 4 or every credit -1)",
            rationale: "Mixing character classes enlarges the space an attacker must search.",
            remediation: "Set `minclass = 4` (or `dcredit = -1`, `ucredit = -1`, `lcredit = -1`, `ocredit = -1`) in /etc/security/pwquality.conf.",
            eval: pwquality_minclass,
            ..BASE
        },
        Rule {
            id: "pam.faillock_deny",
            ssg_id: Some("accounts_passwords_pam_faillock_deny"),
            cis: cis(Some("5.3.2"), Some("5.5.2")),
            title: "Accounts are locked after 5 or fewer failed logins (pam_faillock / pam_tally2 deny)",
            rationale: "Locking after repeated failures stops online password guessing.",
            remediation: "Add pam_faillock.so (preauth and authfail) to /etc/pam.d/common-auth (RHEL: `authselect enable-feature with-faillock`) and set `deny = 5` (or less) in /etc/security/faillock.conf.",
            eval: faillock_deny,
            ..BASE
        },
        Rule {
            id: "pam.pwhistory_remember",
            ssg_id: Some("accounts_password_pam_pwhistory_remember"),
            cis: cis(Some("5.3.3"), Some("5.5.3")),
            title: "pam_pwhistory remembers 5 or more previous passwords",
            rationale: "Remembering old passwords stops users from cycling back to a compromised one.",
            remediation: "Add `password required pam_pwhistory.so remember=5 use_authtok` before pam_unix in /etc/pam.d/common-password (RHEL: system-auth and password-auth), or set `remember = 5` in /etc/security/pwhistory.conf.",
            eval: pwhistory_remember,
            ..BASE
        },
        Rule {
            id: "pam.password_hashing",
            ssg_id: Some("set_password_hashing_algorithm_systemauth"),
            cis: cis(Some("5.3.4"), Some("5.5.4")),
            title: "pam_unix hashes new passwords with SHA-512 or yescrypt",
            rationale: "Weak hashes (MD5, DES) make stolen shadow files quick to crack.",
            remediation: "Add `sha512` (or `yescrypt`) to the pam_unix.so password line in /etc/pam.d/common-password (RHEL: system-auth and password-auth).",
            eval: password_hashing,
            ..BASE
        },
        Rule {
            id: "pam.su_restricted",
            ssg_id: Some("use_pam_wheel_for_su"),
            cis: cis(Some("5.6"), Some("5.3.7")),
            title: "su is restricted to a group with pam_wheel (auth required pam_wheel.so use_uid)",
            rationale: "Restricting su pushes administrators to sudo, which is individually authorised and logged.",
            remediation: "Create an empty group (`groupadd sugroup`) and add `auth required pam_wheel.so use_uid group=sugroup` to /etc/pam.d/su.",
            eval: su_restricted,
            ..BASE
        },
        Rule {
            id: "pam.su_group_empty",
            ssg_id: Some("ensure_pam_wheel_group_empty"),
            cis: cis(Some("5.6"), Some("5.3.7")),
            title: "The group pam_wheel allows to use su has no members",
            rationale: "With an empty group nobody can use su, so privileged access goes through sudo.",
            remediation: "Remove all members of the group named by pam_wheel's group= in /etc/pam.d/su (default: wheel, else the GID 0 group) with `gpasswd -M '' <group>`.",
            eval: su_group_empty,
            ..BASE
        },
    ]
}
