//! Boot and process hardening: the GRUB password and grub.cfg permissions (CIS Ubuntu 1.5.1-1.5.2,
//! RHEL 9 1.4.1-1.4.2), ASLR and core-dump restrictions (CIS Ubuntu 1.6.2-1.6.4, RHEL 9
//! 1.5.1-1.5.3), prelink (CIS Ubuntu 1.6.3), and the login banners `/etc/motd`, `/etc/issue`,
//! `/etc/issue.net`: content and permissions (CIS Ubuntu 1.8.1, RHEL 9 1.7).

use super::filesystem::{IfAbsent, check_mode, check_owner};
use super::network::sysctl_rule;
use super::services::{Eval, Presence, bind, cis, presence, template};
use crate::baseline::ctx::glob;
use crate::baseline::parse::fstab::load_ini;
use crate::baseline::parse::sysctl::drop_ins;
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity};
use crate::os::Family;

const ALL: &[Family] = &[];

/// Where GRUB 2 keeps its generated configuration: Debian/Ubuntu, then Red Hat (RHEL 9 also uses
/// it on EFI systems, the EFI partition's grub.cfg only redirecting to it).
const GRUB_CFGS: [&str; 2] = ["/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"];

/// The grub.cfg of the image, or why there is none.
fn grub_cfg(ctx: &Ctx<'_>) -> Result<String, Outcome> {
    for p in GRUB_CFGS {
        match ctx.lstat(p) {
            Ok(Some(_)) => return Ok(p.to_owned()),
            Ok(None) => {}
            Err(e) => return Err(Outcome::error(format!("{p}: {e}"))),
        }
    }
    let efi = glob(ctx, "/boot/efi/EFI/*/grub.cfg", 16).unwrap_or_default();
    let why = if efi.is_empty() {
        "neither /boot/grub/grub.cfg nor /boot/grub2/grub.cfg exists: the image boots without GRUB (EFI stub, \
         systemd-boot, a cloud kernel) or /boot is a separate file system not part of this root"
            .to_owned()
    } else {
        format!(
            "no /boot/grub/grub.cfg or /boot/grub2/grub.cfg; only the EFI-partition configuration {} exists (an \
             EFI-only layout, covered by SSG's grub2_uefi_* rules, not by this one)",
            efi.join(", ")
        )
    };
    Err(Outcome::na(why))
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches(|c| c == '"' || c == '\'')
}

/// Red Hat's `01_users` takes the password hash from `user.cfg` beside grub.cfg (written by
/// grub2-setpassword): `Ok(Ok(evidence of the hash))`, `Ok(Err(why there is none))`.
fn user_cfg_hash(ctx: &Ctx<'_>, cfg: &str) -> Result<Result<Evidence, Evidence>, String> {
    let dir = cfg.rsplit_once('/').map_or("", |(d, _)| d);
    let user_cfg = format!("{dir}/user.cfg");
    let Some(text) = ctx.read_text(&user_cfg)? else {
        return Ok(Err(Evidence::file(user_cfg).found("absent").with_note(
            "grub.cfg takes the password from user.cfg, which does not exist (run grub2-setpassword)".to_owned(),
        )));
    };
    let line = text
        .lines()
        .position(|l| l.trim().strip_prefix("GRUB2_PASSWORD=").is_some_and(|v| unquote(v).starts_with("grub.pbkdf2.")));
    Ok(match line {
        Some(n) => Ok(Evidence::file(user_cfg).line(n + 1).found("GRUB2_PASSWORD=grub.pbkdf2.…")),
        None => Err(Evidence::file(user_cfg).found("no GRUB2_PASSWORD=grub.pbkdf2… line")),
    })
}

fn grub_password(ctx: &Ctx<'_>) -> Outcome {
    let cfg = match grub_cfg(ctx) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let text = match ctx.read_text(&cfg) {
        Ok(Some(t)) => t,
        Ok(None) => return Outcome::error(format!("{cfg}: dangling symlink")),
        Err(e) => return Outcome::error(e),
    };
    let mut superusers = None;
    let mut hash = None;
    let mut extra = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(v) = line.strip_prefix("set superusers=") {
            let v = unquote(v);
            if !v.is_empty() {
                superusers = Some(Evidence::file(cfg.clone()).line(i + 1).found(format!("set superusers=\"{v}\"")));
            }
        }
        let mut w = line.split_whitespace();
        match (w.next(), w.next(), w.next()) {
            (Some("password_pbkdf2"), Some(user), Some(h)) if h.starts_with("grub.pbkdf2.") => {
                hash = Some(
                    Evidence::file(cfg.clone()).line(i + 1).found(format!("password_pbkdf2 {user} grub.pbkdf2.…")),
                );
            }
            (Some("password_pbkdf2"), Some(_), Some(h)) if h.contains("GRUB2_PASSWORD") => {
                match user_cfg_hash(ctx, &cfg) {
                    Ok(Ok(e)) => hash = Some(e),
                    Ok(Err(e)) => extra.push(e),
                    Err(e) => return Outcome::error(e),
                }
            }
            (Some("password"), Some(user), Some(_)) => extra.push(
                Evidence::file(cfg.clone())
                    .line(i + 1)
                    .found(format!("password {user} <clear text>"))
                    .with_note("a clear-text password; use password_pbkdf2".to_owned()),
            ),
            _ => {}
        }
    }
    let ok = superusers.is_some() && hash.is_some();
    let mut ev = vec![
        superusers.unwrap_or_else(|| {
            Evidence::file(cfg.clone()).found("no `set superusers=`").expected("set superusers=\"<user>\"")
        }),
        hash.unwrap_or_else(|| {
            Evidence::file(cfg.clone())
                .found("no password_pbkdf2 hash")
                .expected("password_pbkdf2 <user> grub.pbkdf2.sha512…")
        }),
    ];
    ev.extend(extra);
    if !ok {
        // The generator sources may hold a password that was never compiled into grub.cfg.
        if let Ok(files) = glob(ctx, "/etc/grub.d/*", 64) {
            for f in files {
                if let Ok(Some(t)) = ctx.read_text(&f)
                    && let Some(n) = t.lines().position(|l| l.contains("password_pbkdf2"))
                {
                    ev.push(Evidence::file(f).line(n + 1).found("password_pbkdf2").with_note(
                        "set in the generator scripts but not in grub.cfg: regenerate it (update-grub / grub2-mkconfig)"
                            .to_owned(),
                    ));
                }
            }
        }
    }
    Outcome::check(ok, ev)
}

fn grub_cfg_permissions(ctx: &Ctx<'_>) -> Outcome {
    match grub_cfg(ctx) {
        Ok(p) => {
            let mut o = check_mode(ctx, &p, 0o600, IfAbsent::NotApplicable("no grub.cfg"));
            if ctx.family() == Family::Debian
                && let Some(e) = o.evidence.first_mut()
            {
                e.note = Some("SSG checks 0600 or stricter; the CIS Ubuntu text recommends 0400".to_owned());
            }
            o
        }
        Err(o) => o,
    }
}

fn grub_cfg_owner(ctx: &Ctx<'_>) -> Outcome {
    match grub_cfg(ctx) {
        Ok(p) => check_owner(ctx, &p, IfAbsent::NotApplicable("no grub.cfg")),
        Err(o) => o,
    }
}

fn aslr(ctx: &Ctx<'_>) -> Outcome {
    // Kernel default 2 (full randomisation) unless built with CONFIG_COMPAT_BRK (then 1).
    sysctl_rule(ctx, "kernel.randomize_va_space", "2", "2, or 1 on kernels built with CONFIG_COMPAT_BRK")
}

fn suid_dumpable(ctx: &Ctx<'_>) -> Outcome {
    sysctl_rule(ctx, "fs.suid_dumpable", "0", "0")
}

/// pam_limits' files: limits.conf first, then limits.d/*.conf in name order.
fn core_hard_limit(ctx: &Ctx<'_>) -> Outcome {
    let set = drop_ins(ctx, &["/etc/security/limits.d"], ".conf");
    if let Some(e) = set.errors.first() {
        return Outcome::error(e.clone());
    }
    let mut files = vec!["/etc/security/limits.conf".to_owned()];
    files.extend(set.files);
    let mut last = None;
    for f in &files {
        let text = match ctx.read_text(f) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => return Outcome::error(e),
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default();
            let w: Vec<&str> = line.split_whitespace().collect();
            if let [domain, kind, item, value] = w.as_slice()
                && *domain == "*"
                && (*kind == "hard" || *kind == "-")
                && *item == "core"
            {
                last = Some((f.clone(), i + 1, line.trim().to_owned(), *value == "0"));
            }
        }
    }
    match last {
        Some((f, l, text, ok)) => {
            Outcome::check(ok, vec![Evidence::file(f).line(l).found(text).expected("* hard core 0")])
        }
        None => Outcome::fail(vec![
            Evidence::note(format!("no `* hard core` line in {}", files.join(", "))).expected("* hard core 0"),
        ]),
    }
}

/// Whether systemd-coredump is present (it replaces the kernel core pattern when installed).
fn coredump_present(ctx: &Ctx<'_>) -> bool {
    ["/usr/lib/systemd/systemd-coredump", "/lib/systemd/systemd-coredump"]
        .iter()
        .any(|p| matches!(ctx.lstat(p), Ok(Some(_))))
}

fn coredump_setting(ctx: &Ctx<'_>, key: &str, expected: &str, default: &str) -> Outcome {
    if !coredump_present(ctx) {
        return Outcome::na(
            "systemd-coredump is not installed (no /usr/lib/systemd/systemd-coredump): core dumps follow the kernel's \
             core_pattern, limits.conf and fs.suid_dumpable",
        );
    }
    let set = load_ini(
        ctx,
        &["/etc/systemd/coredump.conf", "/usr/lib/systemd/coredump.conf"],
        &["/etc/systemd/coredump.conf.d", "/run/systemd/coredump.conf.d", "/usr/lib/systemd/coredump.conf.d"],
    );
    if let Some(e) = set.errors.first() {
        return Outcome::error(e.clone());
    }
    let want = format!("{key}={expected}");
    match set.get("Coredump", key) {
        Some(e) => Outcome::check(
            e.value.eq_ignore_ascii_case(expected),
            vec![Evidence::file(e.file.clone()).line(e.line).found(format!("{key}={}", e.value)).expected(want)],
        ),
        None => Outcome::fail(vec![
            Evidence::note(format!(
                "{key} not set in [Coredump] of {}; the compiled-in default ({default}) applies",
                if set.files.is_empty() { "/etc/systemd/coredump.conf".to_owned() } else { set.files.join(", ") }
            ))
            .expected(want),
        ]),
    }
}

fn coredump_storage(ctx: &Ctx<'_>) -> Outcome {
    coredump_setting(ctx, "Storage", "none", "external")
}

fn coredump_backtraces(ctx: &Ctx<'_>) -> Outcome {
    coredump_setting(ctx, "ProcessSizeMax", "0", "1G (2G on 64-bit since systemd 250)")
}

fn prelink(ctx: &Ctx<'_>) -> Outcome {
    match presence(ctx, &["prelink"], &["/usr/sbin/prelink"]) {
        Presence::Absent(ev) => Outcome::pass(ev),
        Presence::Installed(mut ev) => {
            for e in &mut ev {
                e.expected = Some("not installed".to_owned());
            }
            Outcome::fail(ev)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Banners.

#[derive(Debug)]
struct Banner {
    rule: Rule,
    path: &'static str,
    /// True when an absent or empty file is acceptable (the motd is optional; a login banner is
    /// required).
    optional: bool,
}

fn banner_content(ctx: &Ctx<'_>, b: &Banner) -> Outcome {
    let text = match ctx.read_text(b.path) {
        Ok(Some(t)) => t,
        Ok(None) if b.optional => {
            return Outcome::pass(vec![
                Evidence::file(b.path).found("absent").with_note("no message is shown".to_owned()),
            ]);
        }
        Ok(None) => {
            return Outcome::fail(vec![
                Evidence::file(b.path).found("absent").expected("a warning banner per site policy"),
            ]);
        }
        Err(e) => return Outcome::error(e),
    };
    let os_id = ctx.os.map(|o| o.id.to_lowercase()).filter(|id| !id.is_empty());
    let mut ev = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lower = line.to_lowercase();
        let escapes: Vec<&str> = ["\\m", "\\r", "\\s", "\\v"].into_iter().filter(|e| line.contains(e)).collect();
        let names_os = os_id.as_deref().is_some_and(|id| lower.contains(id));
        if !escapes.is_empty() || names_os {
            let mut why = Vec::new();
            if !escapes.is_empty() {
                why.push(format!("getty escapes {} reveal the OS/kernel", escapes.join(" ")));
            }
            if names_os {
                why.push(format!("names the OS ({})", os_id.as_deref().unwrap_or_default()));
            }
            ev.push(
                Evidence::file(b.path)
                    .line(i + 1)
                    .found(line.trim().to_owned())
                    .expected("no \\m \\r \\s \\v escapes and no OS name")
                    .with_note(why.join("; ")),
            );
        }
    }
    if !ev.is_empty() {
        return Outcome::fail(ev);
    }
    if text.trim().is_empty() && !b.optional {
        return Outcome::fail(vec![Evidence::file(b.path).found("empty").expected("a warning banner per site policy")]);
    }
    Outcome::pass(vec![Evidence::file(b.path).found(format!("{} lines without OS details", text.lines().count()))])
}

#[derive(Debug)]
struct BannerFile {
    rule: Rule,
    path: &'static str,
}

fn banner_permissions(ctx: &Ctx<'_>, b: &BannerFile) -> Outcome {
    check_mode(ctx, b.path, 0o644, IfAbsent::Pass("nothing to protect"))
}

fn banner_owner(ctx: &Ctx<'_>, b: &BannerFile) -> Outcome {
    check_owner(ctx, b.path, IfAbsent::Pass("nothing to protect"))
}

const BANNER_WHY: &str =
    "Login banners shown before authentication should warn, not tell an attacker the OS release and kernel version.";

static MOTD: Banner = Banner {
    rule: template(
        "banner.motd_content",
        Some("banner_etc_motd"),
        cis(None, Some("1.7.1")),
        "Ensure /etc/motd does not reveal OS details",
        Severity::Medium,
        BANNER_WHY,
        "Remove `\\m`, `\\r`, `\\s`, `\\v` and the OS name from /etc/motd (or remove the file).",
        ALL,
    ),
    path: "/etc/motd",
    optional: true,
};
static ISSUE: Banner = Banner {
    rule: template(
        "banner.issue_content",
        Some("banner_etc_issue"),
        cis(None, Some("1.7.2")),
        "Ensure the local login banner /etc/issue is set and does not reveal OS details",
        Severity::Medium,
        BANNER_WHY,
        "Write the site's warning text to /etc/issue, without `\\m`, `\\r`, `\\s`, `\\v` or the OS name.",
        ALL,
    ),
    path: "/etc/issue",
    optional: false,
};
static ISSUE_NET: Banner = Banner {
    rule: template(
        "banner.issue_net_content",
        Some("banner_etc_issue_net"),
        cis(None, Some("1.7.3")),
        "Ensure the remote login banner /etc/issue.net is set and does not reveal OS details",
        Severity::Medium,
        BANNER_WHY,
        "Write the site's warning text to /etc/issue.net, without `\\m`, `\\r`, `\\s`, `\\v` or the OS name.",
        ALL,
    ),
    path: "/etc/issue.net",
    optional: false,
};

macro_rules! banner_file {
    ($perm:ident, $owner:ident, $path:literal, $id:literal, $ssgp:literal, $ssgo:literal, $u:expr, $r:expr) => {
        static $perm: BannerFile = BannerFile {
            rule: template(
                concat!("banner.", $id, "_permissions"),
                Some($ssgp),
                cis($u, $r),
                concat!("Ensure ", $path, " is mode 0644 or stricter"),
                Severity::Medium,
                "A banner writable by others lets them put arbitrary text in front of every login.",
                concat!("chmod u-x,go-wx ", $path),
                ALL,
            ),
            path: $path,
        };
        static $owner: BannerFile = BannerFile {
            rule: template(
                concat!("banner.", $id, "_owner"),
                Some($ssgo),
                cis($u, $r),
                concat!("Ensure ", $path, " is owned by root:root"),
                Severity::Medium,
                "Only root should control what is shown at login (SSG also checks the group: file_groupowner_*).",
                concat!("chown root:root ", $path),
                ALL,
            ),
            path: $path,
        };
    };
}

banner_file!(
    MOTD_PERM,
    MOTD_OWNER,
    "/etc/motd",
    "motd",
    "file_permissions_etc_motd",
    "file_owner_etc_motd",
    Some("1.8.1.4"),
    Some("1.7.4")
);
banner_file!(
    ISSUE_PERM,
    ISSUE_OWNER,
    "/etc/issue",
    "issue",
    "file_permissions_etc_issue",
    "file_owner_etc_issue",
    Some("1.8.1.5"),
    Some("1.7.5")
);
banner_file!(
    ISSUE_NET_PERM,
    ISSUE_NET_OWNER,
    "/etc/issue.net",
    "issue_net",
    "file_permissions_etc_issue_net",
    "file_owner_etc_issue_net",
    None,
    Some("1.7.6")
);

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    let simple: [(Rule, Eval); 9] = [
        (
            template(
                "boot.grub_password",
                Some("grub2_password"),
                cis(Some("1.5.1"), Some("1.4.1")),
                "Ensure a GRUB boot loader password is set",
                Severity::High,
                "Without a boot loader password anyone at the console can edit the kernel command line (e.g. init=/bin/sh) and bypass authentication.",
                "Debian/Ubuntu: `grub-mkpasswd-pbkdf2`, then add `set superusers=\"<user>\"` and `password_pbkdf2 <user> <hash>` to /etc/grub.d/40_custom and run `update-grub`. RHEL: `grub2-setpassword` (writes /boot/grub2/user.cfg).",
                ALL,
            ),
            grub_password,
        ),
        (
            template(
                "boot.grub_cfg_permissions",
                Some("file_permissions_grub2_cfg"),
                cis(Some("1.5.2"), Some("1.4.2")),
                "Ensure grub.cfg is mode 0600 or stricter",
                Severity::Medium,
                "grub.cfg reveals boot parameters and, with a password set, the superuser hash.",
                "chmod 0600 /boot/grub/grub.cfg (Debian/Ubuntu; CIS Ubuntu suggests 0400) or /boot/grub2/grub.cfg (RHEL).",
                ALL,
            ),
            grub_cfg_permissions,
        ),
        (
            template(
                "boot.grub_cfg_owner",
                Some("file_owner_grub2_cfg"),
                cis(Some("1.5.2"), Some("1.4.2")),
                "Ensure grub.cfg is owned by root:root",
                Severity::Medium,
                "Only root may change how the system boots (SSG also checks the group: file_groupowner_grub2_cfg).",
                "chown root:root /boot/grub/grub.cfg (or /boot/grub2/grub.cfg).",
                ALL,
            ),
            grub_cfg_owner,
        ),
        (
            template(
                "kernel.randomize_va_space",
                Some("sysctl_kernel_randomize_va_space"),
                cis(Some("1.6.2"), Some("1.5.3")),
                "Ensure address space layout randomisation is enabled",
                Severity::Medium,
                "ASLR makes memory-corruption exploits guess addresses. The kernel default is already 2; like SSG we require it persisted so a later change cannot silently weaken it.",
                "Set `kernel.randomize_va_space = 2` in /etc/sysctl.d/60-kernel.conf.",
                ALL,
            ),
            aslr,
        ),
        (
            template(
                "kernel.suid_dumpable",
                Some("sysctl_fs_suid_dumpable"),
                cis(Some("1.6.4"), None),
                "Ensure set-user-ID programs cannot dump core",
                Severity::Medium,
                "Core dumps of privileged programs can contain secrets (password hashes, keys).",
                "Set `fs.suid_dumpable = 0` in /etc/sysctl.d/60-kernel.conf.",
                ALL,
            ),
            suid_dumpable,
        ),
        (
            template(
                "kernel.core_hard_limit",
                Some("disable_users_coredumps"),
                cis(Some("1.6.4"), None),
                "Ensure a hard core-size limit of 0 for all users",
                Severity::Medium,
                "A hard limit of 0 stops users raising their own core-size limit to dump memory of processes they run.",
                "Add `* hard core 0` to /etc/security/limits.conf or a file in /etc/security/limits.d/.",
                ALL,
            ),
            core_hard_limit,
        ),
        (
            template(
                "kernel.coredump_storage",
                Some("coredump_disable_storage"),
                cis(None, Some("1.5.1")),
                "Ensure systemd-coredump does not store core dumps",
                Severity::Medium,
                "Stored core dumps keep process memory (possibly secrets) on disk.",
                "Set `Storage=none` under [Coredump] in /etc/systemd/coredump.conf.",
                ALL,
            ),
            coredump_storage,
        ),
        (
            template(
                "kernel.coredump_backtraces",
                Some("coredump_disable_backtraces"),
                cis(None, Some("1.5.2")),
                "Ensure systemd-coredump does not process core dumps",
                Severity::Medium,
                "Processing (backtraces) still reads the crashed process's memory; ProcessSizeMax=0 disables it.",
                "Set `ProcessSizeMax=0` under [Coredump] in /etc/systemd/coredump.conf.",
                ALL,
            ),
            coredump_backtraces,
        ),
        (
            template(
                "kernel.prelink_removed",
                Some("disable_prelink"),
                cis(Some("1.6.3"), None),
                "Ensure prelink is not installed",
                Severity::Medium,
                "prelink rewrites binaries, which defeats file-integrity checking (AIDE) and weakens ASLR.",
                "`prelink -ua`, then `apt purge prelink` / `dnf remove prelink`.",
                ALL,
            ),
            prelink,
        ),
    ];
    let mut v: Vec<Rule> = simple.into_iter().map(|(r, eval)| Rule { eval, ..r }).collect();
    v.extend(bind!(banner_content; MOTD, ISSUE, ISSUE_NET));
    v.extend(bind!(banner_permissions; MOTD_PERM, ISSUE_PERM, ISSUE_NET_PERM));
    v.extend(bind!(banner_owner; MOTD_OWNER, ISSUE_OWNER, ISSUE_NET_OWNER));
    v
}
