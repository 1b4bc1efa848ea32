//! sudo rules (CIS Ubuntu 22.04 1.3.x, RHEL 9 5.3.x): sudo installed, `Defaults use_pty`,
//! `Defaults logfile=`, no `NOPASSWD`/`!authenticate`, and `0440 root:root` policy files, all
//! decided from `/etc/sudoers` and everything it includes ([`sudoers`]).
//!
//! Except for the "installed" rule itself, the rules are `notapplicable` when sudo is not
//! installed (with no package inventory: when neither `/etc/sudoers` nor a sudo binary exists).

use super::cis;
use crate::baseline::checks::accounts::{Attr, FileSpec, capped, check_attr};
use crate::baseline::parse::sudoers::{self, Sudoers};
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity};

/// Packages that provide sudo (Debian's `sudo-ldap` is an alternative build).
const SUDO_PACKAGES: &[&str] = &["sudo", "sudo-ldap"];

/// Where the binary lives when there is no package database to ask.
const SUDO_BINARIES: &[&str] = &["/usr/bin/sudo", "/bin/sudo"];

/// What shows sudo is present, if it is.
fn sudo_present(ctx: &Ctx<'_>) -> Option<String> {
    if let Some(p) = ctx.any_installed(SUDO_PACKAGES) {
        return Some(format!("package {p} is installed"));
    }
    if ctx.no_inventory() {
        for p in SUDO_BINARIES.iter().chain([&sudoers::MAIN]) {
            if matches!(ctx.stat(p), Ok(Some(_))) {
                return Some(format!("{p} exists (no package database)"));
            }
        }
    }
    None
}

fn with_sudoers(ctx: &Ctx<'_>, f: impl FnOnce(&Sudoers) -> Outcome) -> Outcome {
    let Some(_) = sudo_present(ctx) else {
        return Outcome::na("sudo is not installed");
    };
    match &*sudoers::load(ctx) {
        Err(e) => Outcome::error(e.clone()),
        Ok(None) => Outcome::error(format!("sudo is installed but {} does not exist", sudoers::MAIN)),
        Ok(Some(s)) => f(s),
    }
}

fn installed(ctx: &Ctx<'_>) -> Outcome {
    match sudo_present(ctx) {
        Some(why) => Outcome::pass(vec![Evidence::note(why)]),
        None if ctx.no_inventory() => Outcome::fail(vec![
            Evidence::note(format!("no package database, and none of {} exists", SUDO_BINARIES.join(", ")))
                .expected("sudo installed"),
        ]),
        None => Outcome::fail(vec![Evidence::note("package sudo is not installed").expected("sudo installed")]),
    }
}

/// The last global `Defaults` setting of `name` (later lines override earlier ones).
fn last_global<'a>(s: &'a Sudoers, name: &str) -> Option<(&'a sudoers::Defaults, &'a sudoers::Param)> {
    s.defaults
        .iter()
        .filter(|d| d.binding.is_empty())
        .flat_map(|d| d.params.iter().map(move |p| (d, p)))
        .rfind(|(_, p)| p.name == name)
}

fn use_pty(ctx: &Ctx<'_>) -> Outcome {
    with_sudoers(ctx, |s| {
        let mut ev = Vec::new();
        let global_on = match last_global(s, "use_pty") {
            Some((d, p)) => {
                ev.push(
                    Evidence::file(d.file.clone())
                        .line(d.line)
                        .found(format!("Defaults {}", p.raw))
                        .expected("Defaults use_pty"),
                );
                !p.negated
            }
            None => {
                ev.push(Evidence::file(sudoers::MAIN).found("use_pty not set").expected("Defaults use_pty"));
                false
            }
        };
        let mut scoped_off = false;
        for d in s.defaults.iter().filter(|d| !d.binding.is_empty()) {
            for p in d.params.iter().filter(|p| p.name == "use_pty" && p.negated) {
                scoped_off = true;
                ev.push(
                    Evidence::file(d.file.clone())
                        .line(d.line)
                        .found(format!("Defaults{} {}", d.binding, p.raw))
                        .with_note("turns use_pty off for some users, hosts or commands"),
                );
            }
        }
        Outcome::check(global_on && !scoped_off, capped(ev))
    })
}

fn logfile(ctx: &Ctx<'_>) -> Outcome {
    with_sudoers(ctx, |s| match last_global(s, "logfile") {
        Some((d, p)) => {
            let ok = !p.negated && p.value.as_deref().is_some_and(|v| !v.is_empty());
            Outcome::check(
                ok,
                vec![
                    Evidence::file(d.file.clone())
                        .line(d.line)
                        .found(format!("Defaults {}", p.raw))
                        .expected("Defaults logfile=\"/var/log/sudo.log\""),
                ],
            )
        }
        None => Outcome::fail(vec![
            Evidence::file(sudoers::MAIN).found("logfile not set").expected("Defaults logfile=\"/var/log/sudo.log\""),
        ]),
    })
}

fn require_authentication(ctx: &Ctx<'_>) -> Outcome {
    with_sudoers(ctx, |s| {
        let mut bad = Vec::new();
        for spec in s.specs.iter().filter(|sp| sudoers::has_tag(&sp.text, "NOPASSWD")) {
            bad.push(
                Evidence::file(spec.file.clone()).line(spec.line).found(spec.text.clone()).expected("no NOPASSWD tag"),
            );
        }
        for d in &s.defaults {
            for p in d.params.iter().filter(|p| p.name == "authenticate" && p.negated) {
                bad.push(
                    Evidence::file(d.file.clone())
                        .line(d.line)
                        .found(format!("Defaults{} {}", d.binding, p.raw))
                        .expected("no !authenticate"),
                );
            }
        }
        if bad.is_empty() {
            Outcome::pass(vec![Evidence::note(format!("no NOPASSWD or !authenticate in {}", s.files.join(", ")))])
        } else {
            Outcome::fail(capped(bad))
        }
    })
}

/// sudo's own defaults for its policy files (`sudoers_mode` 0440, uid 0, gid 0).
const SUDOERS_SPEC: FileSpec = FileSpec { max_mode: 0o440, groups: &["root"] };

fn sudoers_permissions(ctx: &Ctx<'_>) -> Outcome {
    with_sudoers(ctx, |s| {
        let mut ok = true;
        let mut ev = Vec::new();
        for f in &s.files {
            let meta = match ctx.stat(f) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => return Outcome::error(e),
            };
            let mut found = Vec::new();
            let mut good = true;
            for attr in [Attr::Mode, Attr::Owner, Attr::Group] {
                match check_attr(ctx, f, &meta, attr, SUDOERS_SPEC) {
                    Ok((g, e)) => {
                        good &= g;
                        found.extend(e.found);
                    }
                    Err(e) => return Outcome::error(e),
                }
            }
            ok &= good;
            ev.push(
                Evidence::file(f.clone()).found(found.join(", ")).expected("0440 or stricter, owner root, group root"),
            );
        }
        Outcome::check(ok, capped(ev))
    })
}

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            id: "sudo.installed",
            ssg_id: Some("package_sudo_installed"),
            cis: cis(Some("1.3.1"), Some("5.3.1")),
            title: "sudo is installed",
            severity: Severity::Medium,
            rationale: "sudo gives administrators individual, logged privilege escalation instead of a shared root password.",
            remediation: "Install sudo (`apt-get install sudo`, `dnf install sudo`).",
            families: &[],
            eval: installed,
        },
        Rule {
            id: "sudo.use_pty",
            ssg_id: Some("sudo_add_use_pty"),
            cis: cis(Some("1.3.2"), Some("5.3.2")),
            title: "sudo runs commands in a pseudo-terminal (Defaults use_pty)",
            severity: Severity::Medium,
            rationale: "Without a pty a command run with sudo can keep running in the background after sudo exits and inject input into the user's terminal.",
            remediation: "Add `Defaults use_pty` to /etc/sudoers with `visudo` (or a file in /etc/sudoers.d) and remove any `!use_pty`.",
            families: &[],
            eval: use_pty,
        },
        Rule {
            id: "sudo.logfile",
            ssg_id: Some("sudo_custom_logfile"),
            cis: cis(Some("1.3.3"), Some("5.3.3")),
            title: "sudo logs to a dedicated file (Defaults logfile=)",
            severity: Severity::Low,
            rationale: "A dedicated log file keeps a record of sudo use that is easy to audit.",
            remediation: "Add `Defaults logfile=\"/var/log/sudo.log\"` to /etc/sudoers with `visudo`.",
            families: &[],
            eval: logfile,
        },
        Rule {
            id: "sudo.require_authentication",
            ssg_id: Some("sudo_require_authentication"),
            cis: cis(None, Some("5.3.4")),
            title: "sudo always asks for a password (no NOPASSWD, no !authenticate)",
            severity: Severity::Medium,
            rationale: "Without re-authentication anyone with access to a user's session gets root.",
            remediation: "Remove the NOPASSWD tags and `!authenticate` settings listed (edit with `visudo -f <file>`).",
            families: &[],
            eval: require_authentication,
        },
        Rule {
            id: "sudo.sudoers_permissions",
            ssg_id: None,
            cis: cis(None, None),
            title: "sudoers files are mode 0440 or stricter and owned by root:root",
            severity: Severity::Medium,
            rationale: "Anyone who can write a sudoers file can grant themselves root; readable ones disclose who may do what.",
            remediation: "Run `chown root:root <file> && chmod 0440 <file>` for each file listed.",
            families: &[],
            eval: sudoers_permissions,
        },
    ]
}
