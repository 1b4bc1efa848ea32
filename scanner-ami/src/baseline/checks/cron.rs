//! Job schedulers: cron installed and enabled, `/etc/crontab` and the `/etc/cron.*` directories
//! restricted to root, and cron/at limited to the users listed in `cron.allow`/`at.allow` (CIS
//! Ubuntu 5.1, RHEL 9 5.1). Owners are resolved against the image's `/etc/passwd`/`/etc/group`.

use super::filesystem::{IfAbsent, check_mode, check_owner};
use super::services::{Presence, any_enabled, bind, cis, names_for, presence, template};
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity};
use crate::os::Family;

const ALL: &[Family] = &[];

const CRON_DEBIAN: &[&str] = &["cron", "cronie", "systemd-cron"];
const CRON_RHEL: &[&str] = &["cronie"];
const CRON_PROBES: &[&str] = &["/usr/sbin/cron", "/usr/sbin/crond", "/etc/crontab"];
const CRON_UNITS: &[&str] = &["cron.service", "crond.service"];

fn cron_present(ctx: &Ctx<'_>) -> Presence {
    presence(ctx, &names_for(ctx, CRON_DEBIAN, CRON_RHEL), CRON_PROBES)
}

fn at_present(ctx: &Ctx<'_>) -> Presence {
    presence(ctx, &["at"], &["/usr/bin/at", "/usr/sbin/atd"])
}

fn cron_enabled(ctx: &Ctx<'_>) -> Outcome {
    let mut ev = match cron_present(ctx) {
        Presence::Installed(ev) => ev,
        Presence::Absent(mut ev) => {
            for e in &mut ev {
                e.expected = Some("a cron daemon installed and enabled".to_owned());
            }
            return Outcome::fail(ev);
        }
    };
    match any_enabled(ctx, CRON_UNITS) {
        Ok((Some(_), more)) => {
            ev.extend(more);
            Outcome::pass(ev)
        }
        Ok((None, more)) => {
            ev.extend(more);
            ev.push(
                Evidence::note("neither cron.service nor crond.service is enabled").expected("cron enabled at boot"),
            );
            Outcome::fail(ev)
        }
        Err(e) => Outcome::error(e),
    }
}

/// A path whose mode and owner are checked.
#[derive(Debug)]
struct Path {
    rule: Rule,
    path: &'static str,
    max: u32,
    /// Which scheduler must be installed for the rule to apply.
    at: bool,
    /// The rule's verdict when the path does not exist.
    if_absent: IfAbsent,
}

fn applies(ctx: &Ctx<'_>, at: bool) -> Option<Outcome> {
    let p = if at { at_present(ctx) } else { cron_present(ctx) };
    match p {
        Presence::Installed(_) => None,
        Presence::Absent(_) => Some(Outcome::na(if at { "at is not installed" } else { "cron is not installed" })),
    }
}

fn path_mode(ctx: &Ctx<'_>, p: &Path) -> Outcome {
    applies(ctx, p.at).unwrap_or_else(|| check_mode(ctx, p.path, p.max, p.if_absent))
}

fn path_owner(ctx: &Ctx<'_>, p: &Path) -> Outcome {
    applies(ctx, p.at).unwrap_or_else(|| check_owner(ctx, p.path, p.if_absent))
}

const NOTHING: IfAbsent = IfAbsent::Pass("nothing to protect");
const SEE_EXISTS: IfAbsent = IfAbsent::NotApplicable("its existence is checked by the *_allow_exists rule");

macro_rules! path_items {
    ($perm:ident, $owner:ident, $path:literal, $id:literal, $ssgp:literal, $ssgo:literal, $u:expr, $r:expr,
     $max:literal,
     $maxtext:literal, $at:literal, $absent:expr, $why:literal) => {
        static $perm: Path = Path {
            rule: template(
                concat!($id, "_permissions"),
                Some($ssgp),
                cis($u, $r),
                concat!("Ensure ", $path, " is mode ", $maxtext, " or stricter"),
                Severity::Medium,
                $why,
                concat!("chmod ", $maxtext, " ", $path),
                ALL,
            ),
            path: $path,
            max: $max,
            at: $at,
            if_absent: $absent,
        };
        static $owner: Path = Path {
            rule: template(
                concat!($id, "_owner"),
                Some($ssgo),
                cis($u, $r),
                concat!("Ensure ", $path, " is owned by root:root"),
                Severity::Medium,
                concat!($why, " (SSG also checks the group: file_groupowner_*.)"),
                concat!("chown root:root ", $path),
                ALL,
            ),
            path: $path,
            max: $max,
            at: $at,
            if_absent: $absent,
        };
    };
}

path_items!(
    CRONTAB_PERM,
    CRONTAB_OWNER,
    "/etc/crontab",
    "cron.crontab",
    "file_permissions_crontab",
    "file_owner_crontab",
    Some("5.1.2"),
    Some("5.1.2"),
    0o600,
    "0600",
    false,
    NOTHING,
    "The system crontab runs commands as root; only root may read or change it."
);
path_items!(
    HOURLY_PERM,
    HOURLY_OWNER,
    "/etc/cron.hourly",
    "cron.hourly",
    "file_permissions_cron_hourly",
    "file_owner_cron_hourly",
    Some("5.1.3"),
    Some("5.1.3"),
    0o700,
    "0700",
    false,
    NOTHING,
    "Scripts in /etc/cron.hourly run as root; only root may list or add them."
);
path_items!(
    DAILY_PERM,
    DAILY_OWNER,
    "/etc/cron.daily",
    "cron.daily",
    "file_permissions_cron_daily",
    "file_owner_cron_daily",
    Some("5.1.4"),
    Some("5.1.4"),
    0o700,
    "0700",
    false,
    NOTHING,
    "Scripts in /etc/cron.daily run as root; only root may list or add them."
);
path_items!(
    WEEKLY_PERM,
    WEEKLY_OWNER,
    "/etc/cron.weekly",
    "cron.weekly",
    "file_permissions_cron_weekly",
    "file_owner_cron_weekly",
    Some("5.1.5"),
    Some("5.1.5"),
    0o700,
    "0700",
    false,
    NOTHING,
    "Scripts in /etc/cron.weekly run as root; only root may list or add them."
);
path_items!(
    MONTHLY_PERM,
    MONTHLY_OWNER,
    "/etc/cron.monthly",
    "cron.monthly",
    "file_permissions_cron_monthly",
    "file_owner_cron_monthly",
    Some("5.1.6"),
    Some("5.1.6"),
    0o700,
    "0700",
    false,
    NOTHING,
    "Scripts in /etc/cron.monthly run as root; only root may list or add them."
);
path_items!(
    CROND_PERM,
    CROND_OWNER,
    "/etc/cron.d",
    "cron.d",
    "file_permissions_cron_d",
    "file_owner_cron_d",
    Some("5.1.7"),
    Some("5.1.7"),
    0o700,
    "0700",
    false,
    NOTHING,
    "Crontabs in /etc/cron.d can run commands as any user; only root may list or add them."
);
path_items!(
    CRON_ALLOW_PERM,
    CRON_ALLOW_OWNER,
    "/etc/cron.allow",
    "cron.allow",
    "file_permissions_cron_allow",
    "file_owner_cron_allow",
    Some("5.1.8"),
    Some("5.1.8"),
    0o640,
    "0640",
    false,
    SEE_EXISTS,
    "cron.allow decides who may schedule jobs; only root may change it."
);
path_items!(
    AT_ALLOW_PERM,
    AT_ALLOW_OWNER,
    "/etc/at.allow",
    "at.allow",
    "file_permissions_at_allow",
    "file_owner_at_allow",
    Some("5.1.9"),
    Some("5.1.9"),
    0o640,
    "0640",
    true,
    SEE_EXISTS,
    "at.allow decides who may schedule jobs; only root may change it."
);

/// An allow-list that must exist, or a deny-list that must not.
#[derive(Debug)]
struct Listfile {
    rule: Rule,
    path: &'static str,
    must_exist: bool,
    at: bool,
}

fn listfile(ctx: &Ctx<'_>, l: &Listfile) -> Outcome {
    if let Some(o) = applies(ctx, l.at) {
        return o;
    }
    match ctx.lstat(l.path) {
        Err(e) => Outcome::error(format!("{}: {e}", l.path)),
        Ok(found) => {
            let exists = found.is_some();
            let ev = Evidence::file(l.path).found(if exists { "exists" } else { "absent" }).expected(if l.must_exist {
                "exists"
            } else {
                "absent"
            });
            Outcome::check(exists == l.must_exist, vec![ev])
        }
    }
}

static CRON_ALLOW: Listfile = Listfile {
    rule: template(
        "cron.allow_exists",
        None,
        cis(Some("5.1.8"), Some("5.1.8")),
        "Ensure /etc/cron.allow exists",
        Severity::Medium,
        "With cron.allow present only the users it lists may use crontab; without it every user not in cron.deny may.",
        "`touch /etc/cron.allow && chmod 0640 /etc/cron.allow && chown root:root /etc/cron.allow`, listing permitted users.",
        ALL,
    ),
    path: "/etc/cron.allow",
    must_exist: true,
    at: false,
};
static CRON_DENY: Listfile = Listfile {
    rule: template(
        "cron.deny_absent",
        Some("file_cron_deny_not_exist"),
        cis(None, Some("5.1.8")),
        "Ensure /etc/cron.deny does not exist",
        Severity::Medium,
        "A deny-list permits everyone not listed; an allow-list is the safer default.",
        "`rm /etc/cron.deny` (after creating /etc/cron.allow).",
        ALL,
    ),
    path: "/etc/cron.deny",
    must_exist: false,
    at: false,
};
static AT_ALLOW: Listfile = Listfile {
    rule: template(
        "at.allow_exists",
        None,
        cis(Some("5.1.9"), Some("5.1.9")),
        "Ensure /etc/at.allow exists",
        Severity::Medium,
        "With at.allow present only the users it lists may use at; without it every user not in at.deny may.",
        "`touch /etc/at.allow && chmod 0640 /etc/at.allow && chown root:root /etc/at.allow`, listing permitted users.",
        ALL,
    ),
    path: "/etc/at.allow",
    must_exist: true,
    at: true,
};
static AT_DENY: Listfile = Listfile {
    rule: template(
        "at.deny_absent",
        Some("file_at_deny_not_exist"),
        cis(None, Some("5.1.9")),
        "Ensure /etc/at.deny does not exist",
        Severity::Medium,
        "A deny-list permits everyone not listed; an allow-list is the safer default.",
        "`rm /etc/at.deny` (after creating /etc/at.allow).",
        ALL,
    ),
    path: "/etc/at.deny",
    must_exist: false,
    at: true,
};

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    let mut v = vec![Rule {
        eval: cron_enabled,
        ..template(
            "cron.enabled",
            Some("service_cron_enabled"),
            cis(Some("5.1.1"), Some("5.1.1")),
            "Ensure a cron daemon is installed and enabled",
            Severity::Medium,
            "Periodic maintenance (log rotation, integrity checks) depends on cron running.",
            "`apt install cron && systemctl enable cron` (Debian/Ubuntu) or `dnf install cronie && systemctl enable crond` (RHEL).",
            ALL,
        )
    }];
    v.extend(bind!(path_mode; CRONTAB_PERM, HOURLY_PERM, DAILY_PERM, WEEKLY_PERM, MONTHLY_PERM, CROND_PERM,
        CRON_ALLOW_PERM, AT_ALLOW_PERM));
    v.extend(bind!(path_owner; CRONTAB_OWNER, HOURLY_OWNER, DAILY_OWNER, WEEKLY_OWNER, MONTHLY_OWNER, CROND_OWNER,
        CRON_ALLOW_OWNER, AT_ALLOW_OWNER));
    v.extend(bind!(listfile; CRON_ALLOW, CRON_DENY, AT_ALLOW, AT_DENY));
    v
}
