//! Account rules: password aging defaults in `/etc/login.defs` and `/etc/default/useradd` and
//! their application to existing accounts, system-account shells, root's group, the default
//! umask and shell timeout, the permissions of the account databases, their consistency, root's
//! PATH, and interactive users' home directories and dot files (CIS Ubuntu 22.04 5.4/6.1/6.2,
//! RHEL 9 5.6/6.1/6.2).
//!
//! Ownership is always resolved against the image's own `/etc/passwd` and `/etc/group`
//! ([`accounts::load`]).
//!
//! This file holds the account-database access the checks share and the catalogue of rules; the
//! checks live by area in `aging`, `environment`, `consistency`, `path` and `homes`, and
//! the file-permission helpers the SSH and sudo rules share too in `perm`.
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

mod aging;
mod consistency;
mod environment;
mod homes;
mod path;
mod perm;

use aging::*;
use consistency::*;
use environment::*;
use homes::*;
use path::*;
pub(crate) use perm::{Attr, FileSpec, capped, check_attr, file_attr, octal, within};
use perm::{public_spec, shadow_spec};

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
