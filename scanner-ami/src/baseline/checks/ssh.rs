//! OpenSSH server rules (CIS Ubuntu 22.04 5.2.x, RHEL 9 5.2.x): permissions of `sshd_config`
//! (and the files it includes) and of the host keys, and the effective value of each hardening
//! keyword computed by [`sshd`] from the configuration files, with OpenSSH's compiled-in default
//! when a keyword is absent (the evidence then says "OpenSSH default").
//!
//! Applicability: the rules are `notapplicable` when the OpenSSH server package is not installed
//! *and* `/etc/ssh/sshd_config` does not exist (with no package inventory, the file alone
//! decides). `Match` blocks are reported: a block that sets the checked keyword to a
//! non-compliant value is listed in the evidence; for `PermitRootLogin` it makes the rule fail.

use super::{BASE, cis};
use crate::baseline::checks::accounts::{Attr, FileSpec, capped, check_attr, octal, within};
use crate::baseline::parse::accounts as account_db;
use crate::baseline::parse::sshd::{self, Directive, SshdConfig};
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity, ctx};
use crate::fs::{FileKind, Meta};
use crate::os::Family;

/// Packages that ship sshd, by family: Debian/RHEL/SUSE split the server into `openssh-server`;
/// Alpine has `openssh-server` (and the `openssh` meta package); Arch and Gentoo ship it in
/// `openssh`; older SUSE releases too.
fn server_packages(family: Family) -> &'static [&'static str] {
    match family {
        Family::Debian | Family::Rhel => &["openssh-server"],
        Family::Suse | Family::Alpine | Family::Arch | Family::Gentoo | Family::Other => &["openssh-server", "openssh"],
    }
}

/// Run `f` on the parsed configuration, or say why the rule cannot be evaluated.
fn with_config(ctx: &Ctx<'_>, f: impl FnOnce(&SshdConfig) -> Outcome) -> Outcome {
    let installed = ctx.any_installed(server_packages(ctx.family()));
    let loaded = sshd::load(ctx);
    match (&*loaded, installed) {
        (Err(e), _) => Outcome::error(e.clone()),
        (Ok(Some(c)), _) => f(c),
        (Ok(None), Some(p)) => Outcome::error(format!(
            "package {p} is installed but {} does not exist (sshd refuses to start without it)",
            sshd::MAIN
        )),
        (Ok(None), None) if ctx.no_inventory() => {
            Outcome::na(format!("{} does not exist (no package database to consult)", sshd::MAIN))
        }
        (Ok(None), None) => Outcome::na(format!("openssh-server is not installed and {} does not exist", sshd::MAIN)),
    }
}

// ---------------------------------------------------------------------------------------------
// Keyword checks.

/// One keyword's requirement.
struct Want {
    /// Lower-case keyword.
    keyword: &'static str,
    /// The keyword as documented, for evidence.
    name: &'static str,
    /// OpenSSH's compiled-in default.
    default: &'static str,
    expected: &'static str,
    ok: fn(&Directive) -> bool,
    /// A non-compliant value in a `Match` block fails the rule.
    strict_match: bool,
}

fn is(d: &Directive, v: &str) -> bool {
    d.args.len() == 1 && d.arg().eq_ignore_ascii_case(v)
}

fn int_arg(d: &Directive) -> Option<i64> {
    d.arg().parse().ok()
}

fn default_directive(w: &Want) -> Directive {
    Directive {
        keyword: w.keyword.to_owned(),
        name: w.name.to_owned(),
        args: w.default.split(' ').map(str::to_owned).collect(),
        file: sshd::MAIN.to_owned(),
        line: 0,
    }
}

fn keyword(ctx: &Ctx<'_>, w: &Want) -> Outcome {
    with_config(ctx, |c| {
        let (ok, mut ev) = match c.get(w.keyword) {
            Some(d) => {
                ((w.ok)(d), vec![Evidence::file(d.file.clone()).line(d.line).found(d.display()).expected(w.expected)])
            }
            None => {
                let d = default_directive(w);
                (
                    (w.ok)(&d),
                    vec![
                        Evidence::file(sshd::MAIN)
                            .found(format!("{} {}", w.name, w.default))
                            .expected(w.expected)
                            .with_note(format!("{} is not set; OpenSSH default", w.name)),
                    ],
                )
            }
        };
        let mut weakened = false;
        for (m, d) in c.overrides(w.keyword) {
            let good = (w.ok)(d);
            weakened |= !good;
            ev.push(Evidence::file(d.file.clone()).line(d.line).found(d.display()).expected(w.expected).with_note(
                format!(
                    "inside `Match {}` ({}:{}): {} for matching connections",
                    m.criteria,
                    m.file,
                    m.line,
                    if good { "compliant" } else { "overrides the global value with a non-compliant one" }
                ),
            ));
        }
        let pass = ok && !(weakened && w.strict_match);
        let mut out = Outcome::check(pass, capped(ev));
        if ok && weakened {
            out = out.because(format!(
                "the global value complies but a Match block sets a non-compliant {} for some connections",
                w.name
            ));
        }
        out
    })
}

macro_rules! keyword_rule {
    ($fn:ident, $want:expr) => {
        fn $fn(ctx: &Ctx<'_>) -> Outcome {
            keyword(ctx, &$want)
        }
    };
}

keyword_rule!(
    log_level,
    Want {
        keyword: "loglevel",
        name: "LogLevel",
        default: "INFO",
        expected: "LogLevel INFO or VERBOSE",
        ok: |d| is(d, "INFO") || is(d, "VERBOSE"),
        strict_match: false,
    }
);
keyword_rule!(
    x11_forwarding,
    Want {
        keyword: "x11forwarding",
        name: "X11Forwarding",
        default: "no",
        expected: "X11Forwarding no",
        ok: |d| is(d, "no"),
        strict_match: false,
    }
);
keyword_rule!(
    max_auth_tries,
    Want {
        keyword: "maxauthtries",
        name: "MaxAuthTries",
        default: "6",
        expected: "MaxAuthTries 4 or less",
        ok: |d| int_arg(d).is_some_and(|v| (0..=4).contains(&v)),
        strict_match: false,
    }
);
keyword_rule!(
    ignore_rhosts,
    Want {
        keyword: "ignorerhosts",
        name: "IgnoreRhosts",
        default: "yes",
        expected: "IgnoreRhosts yes",
        ok: |d| is(d, "yes"),
        strict_match: false,
    }
);
keyword_rule!(
    hostbased_authentication,
    Want {
        keyword: "hostbasedauthentication",
        name: "HostbasedAuthentication",
        default: "no",
        expected: "HostbasedAuthentication no",
        ok: |d| is(d, "no"),
        strict_match: false,
    }
);
keyword_rule!(
    permit_root_login,
    Want {
        keyword: "permitrootlogin",
        name: "PermitRootLogin",
        // OpenSSH 7.0 changed the default from yes to prohibit-password.
        default: "prohibit-password",
        expected: "PermitRootLogin no",
        ok: |d| is(d, "no"),
        strict_match: true,
    }
);
keyword_rule!(
    permit_empty_passwords,
    Want {
        keyword: "permitemptypasswords",
        name: "PermitEmptyPasswords",
        default: "no",
        expected: "PermitEmptyPasswords no",
        ok: |d| is(d, "no"),
        strict_match: false,
    }
);
keyword_rule!(
    permit_user_environment,
    Want {
        keyword: "permituserenvironment",
        name: "PermitUserEnvironment",
        default: "no",
        expected: "PermitUserEnvironment no",
        ok: |d| is(d, "no"),
        strict_match: false,
    }
);
keyword_rule!(
    allow_tcp_forwarding,
    Want {
        keyword: "allowtcpforwarding",
        name: "AllowTcpForwarding",
        default: "yes",
        expected: "AllowTcpForwarding no",
        ok: |d| is(d, "no"),
        strict_match: false,
    }
);
keyword_rule!(
    use_pam,
    Want {
        keyword: "usepam",
        name: "UsePAM",
        default: "no",
        expected: "UsePAM yes",
        ok: |d| is(d, "yes"),
        strict_match: false,
    }
);
keyword_rule!(
    client_alive_interval,
    Want {
        keyword: "clientaliveinterval",
        name: "ClientAliveInterval",
        default: "0",
        expected: "ClientAliveInterval 1..=300 seconds",
        ok: |d| sshd::convtime(d.arg()).is_some_and(|s| (1..=300).contains(&s)),
        strict_match: false,
    }
);
keyword_rule!(
    client_alive_count_max,
    Want {
        keyword: "clientalivecountmax",
        name: "ClientAliveCountMax",
        default: "3",
        expected: "ClientAliveCountMax 1..=3",
        ok: |d| int_arg(d).is_some_and(|v| (1..=3).contains(&v)),
        strict_match: false,
    }
);
keyword_rule!(
    login_grace_time,
    Want {
        keyword: "logingracetime",
        name: "LoginGraceTime",
        default: "120",
        expected: "LoginGraceTime 1..=60 seconds",
        ok: |d| sshd::convtime(d.arg()).is_some_and(|s| (1..=60).contains(&s)),
        strict_match: false,
    }
);
keyword_rule!(
    max_startups,
    Want {
        keyword: "maxstartups",
        name: "MaxStartups",
        default: "10:30:100",
        expected: "MaxStartups 10:30:60 or more restrictive",
        ok: |d| max_startups_ok(d.arg()),
        strict_match: false,
    }
);
keyword_rule!(
    max_sessions,
    Want {
        keyword: "maxsessions",
        name: "MaxSessions",
        default: "10",
        expected: "MaxSessions 10 or less",
        ok: |d| int_arg(d).is_some_and(|v| (0..=10).contains(&v)),
        strict_match: false,
    }
);

/// `start:rate:full` no looser than `10:30:60`, as CIS's audit compares each field (start ≤ 10,
/// rate ≤ 30, full ≤ 60). A single number `N` is a hard limit of N unauthenticated connections
/// (sshd sets start = full = N): compliant when N ≤ 10.
fn max_startups_ok(v: &str) -> bool {
    let parts: Vec<Option<u64>> = v.split(':').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(n)] => *n <= 10,
        [Some(start), Some(rate), Some(full)] => *start <= 10 && *rate <= 30 && *full <= 60,
        _ => false,
    }
}

fn banner(ctx: &Ctx<'_>) -> Outcome {
    let mut out = keyword(
        ctx,
        &Want {
            keyword: "banner",
            name: "Banner",
            default: "none",
            expected: "Banner <file> (not none)",
            ok: |d| !d.arg().is_empty() && !is(d, "none"),
            strict_match: false,
        },
    );
    if out.status == crate::baseline::Status::Pass
        && let Ok(Some(c)) = &*sshd::load(ctx)
        && let Some(d) = c.get("banner")
    {
        let note = match ctx.stat(d.arg()) {
            Ok(Some(m)) if m.kind == FileKind::File => format!("{} exists ({} bytes)", d.arg(), m.len),
            Ok(Some(_)) => format!("{} is not a regular file", d.arg()),
            Ok(None) => format!("{} does not exist: sshd shows no banner", d.arg()),
            Err(e) => e,
        };
        out.evidence.push(Evidence::file(d.arg()).with_note(note));
    }
    out
}

fn access_limited(ctx: &Ctx<'_>) -> Outcome {
    with_config(ctx, |c| {
        let kws = ["allowusers", "allowgroups", "denyusers", "denygroups"];
        let global: Vec<Evidence> = kws
            .iter()
            .flat_map(|k| c.all(k))
            .map(|d| Evidence::file(d.file.clone()).line(d.line).found(d.display()))
            .collect();
        let in_match: Vec<Evidence> = kws
            .iter()
            .flat_map(|k| c.overrides(k))
            .map(|(m, d)| {
                Evidence::file(d.file.clone())
                    .line(d.line)
                    .found(d.display())
                    .with_note(format!("inside `Match {}`: applies only to matching connections", m.criteria))
            })
            .collect();
        if global.is_empty() {
            let mut ev = vec![
                Evidence::file(sshd::MAIN)
                    .found("no AllowUsers, AllowGroups, DenyUsers or DenyGroups")
                    .expected("at least one of AllowUsers, AllowGroups, DenyUsers, DenyGroups"),
            ];
            ev.extend(in_match);
            Outcome::fail(capped(ev))
        } else {
            let mut ev = global;
            ev.extend(in_match);
            Outcome::pass(capped(ev))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Algorithms.

/// Ciphers CIS Ubuntu 22.04 (5.2.13 of the v1.0.0 benchmark) calls weak: CBC modes, RC4, 3DES,
/// Blowfish, CAST.
const WEAK_CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "arcfour",
    "arcfour128",
    "arcfour256",
    "blowfish-cbc",
    "cast128-cbc",
    "rijndael-cbc@lysator.liu.se",
];

/// MACs CIS Ubuntu 22.04 (5.2.14 of v1.0.0) calls weak: MD5, RIPEMD-160, SHA-1 and 64/128-bit UMAC,
/// in both encrypt-and-MAC and encrypt-then-MAC forms.
const WEAK_MACS: &[&str] = &[
    "hmac-md5",
    "hmac-md5-96",
    "hmac-ripemd160",
    "hmac-sha1",
    "hmac-sha1-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "hmac-ripemd160-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];

/// Key exchanges CIS Ubuntu 22.04 (5.2.15 of v1.0.0) calls weak: SHA-1 based Diffie-Hellman.
const WEAK_KEX: &[&str] =
    &["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"];

/// OpenSSH's compiled-in server defaults (`myproposal.h`, unchanged from OpenSSH 9.0 through
/// 9.9): what sshd offers when the keyword is absent, and what `+`, `-` and `^` lists modify.
const DEFAULT_CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];
/// See [`DEFAULT_CIPHERS`]. The default MAC list keeps hmac-sha1 and the 64-bit UMACs, which CIS
/// calls weak: an sshd_config without `MACs` fails `ssh.macs` (OpenSCAP agrees).
const DEFAULT_MACS: &[&str] = &[
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];
/// See [`DEFAULT_CIPHERS`].
const DEFAULT_KEX: &[&str] = &[
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
];

/// The algorithm list sshd ends up offering for a keyword value, as `sshd_config(5)` defines it:
/// a plain list replaces the defaults, `+list` appends to them, `^list` puts the list first, and
/// `-list` removes matching entries (wildcards allowed) from them. `None` = keyword absent.
fn effective(value: Option<&str>, defaults: &[&str]) -> Vec<String> {
    let defaults: Vec<String> = defaults.iter().map(|d| (*d).to_owned()).collect();
    let Some(value) = value else { return defaults };
    let list = |v: &str| -> Vec<String> {
        v.split(',').map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).collect()
    };
    if let Some(rest) = value.strip_prefix('-') {
        let remove = list(rest);
        return defaults.into_iter().filter(|d| !remove.iter().any(|r| ctx::wildmatch(r, d))).collect();
    }
    if let Some(rest) = value.strip_prefix('+') {
        let mut out = defaults;
        out.extend(list(rest));
        return out;
    }
    if let Some(rest) = value.strip_prefix('^') {
        let mut out = list(rest);
        out.extend(defaults);
        return out;
    }
    list(value)
}

/// The weak algorithms in an effective list; entries may be wildcards (`*cbc`), which sshd
/// expands against the algorithms it supports.
fn weak_in(list: &[String], weak: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for e in list {
        for w in weak {
            if (e.contains(['*', '?']) && ctx::wildmatch(e, w)) || e == w {
                let s = if e == w { e.clone() } else { format!("{w} (via {e})") };
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

fn algorithms(
    ctx: &Ctx<'_>,
    keyword: &'static str,
    name: &'static str,
    weak: &'static [&'static str],
    defaults: &'static [&'static str],
) -> Outcome {
    with_config(ctx, |c| {
        let directive = c.get(keyword);
        let value = directive.map(|d| d.value());
        let list = effective(value.as_deref(), defaults);
        let bad = weak_in(&list, weak);
        let mut ev = match directive {
            None => Evidence::file(sshd::MAIN)
                .found(format!("{name} not set"))
                .with_note(format!("OpenSSH default list: {}", defaults.join(","))),
            Some(d) => Evidence::file(d.file.clone()).line(d.line).found(d.display()),
        }
        .expected(format!("no weak {name}"));
        if !bad.is_empty() {
            let note = ev.note.take().map(|n| format!("{n}; ")).unwrap_or_default();
            ev = ev.with_note(format!("{note}weak: {}", bad.join(", ")));
        }
        Outcome::check(bad.is_empty(), vec![ev])
    })
}

fn ciphers(ctx: &Ctx<'_>) -> Outcome {
    algorithms(ctx, "ciphers", "Ciphers", WEAK_CIPHERS, DEFAULT_CIPHERS)
}

fn macs(ctx: &Ctx<'_>) -> Outcome {
    algorithms(ctx, "macs", "MACs", WEAK_MACS, DEFAULT_MACS)
}

fn kex(ctx: &Ctx<'_>) -> Outcome {
    algorithms(ctx, "kexalgorithms", "KexAlgorithms", WEAK_KEX, DEFAULT_KEX)
}

// ---------------------------------------------------------------------------------------------
// File permissions.

/// sshd_config and its included files: 0600 root:root (CIS 5.2.1).
const CONFIG_SPEC: FileSpec = FileSpec { max_mode: 0o600, groups: &["root"] };

fn config_files(ctx: &Ctx<'_>, attr: Attr) -> Outcome {
    let installed = ctx.any_installed(server_packages(ctx.family()));
    let loaded = sshd::load(ctx);
    let (files, note) = match &*loaded {
        Ok(Some(c)) => (c.files.clone(), None),
        Ok(None) if installed.is_some() => return Outcome::error(format!("{} does not exist", sshd::MAIN)),
        Ok(None) => return Outcome::na(format!("openssh-server is not installed and {} does not exist", sshd::MAIN)),
        Err(e) => (vec![sshd::MAIN.to_owned()], Some(format!("included files not examined: {e}"))),
    };
    let mut ok = true;
    let mut ev = Vec::new();
    for f in &files {
        let meta = match ctx.stat(f) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => return Outcome::error(e),
        };
        match check_attr(ctx, f, &meta, attr, CONFIG_SPEC) {
            Ok((good, e)) => {
                ok &= good;
                ev.push(e);
            }
            Err(e) => return Outcome::error(e),
        }
    }
    if let Some(n) = note {
        ev.push(Evidence::note(n));
    }
    Outcome::check(ok, capped(ev))
}

fn config_permissions(ctx: &Ctx<'_>) -> Outcome {
    config_files(ctx, Attr::Mode)
}

fn config_owner(ctx: &Ctx<'_>) -> Outcome {
    config_files(ctx, Attr::Owner)
}

fn config_group(ctx: &Ctx<'_>) -> Outcome {
    config_files(ctx, Attr::Group)
}

/// Host key files: `/etc/ssh/ssh_host_*_key` plus any `HostKey` path; public keys are those names
/// with `.pub`.
fn host_keys(ctx: &Ctx<'_>, c: &SshdConfig, public: bool) -> Result<Vec<(String, Meta)>, String> {
    let mut paths: Vec<String> = ctx::glob(ctx, "/etc/ssh/ssh_host_*_key", 4096)?;
    for d in c.all("hostkey") {
        let p = if d.arg().starts_with('/') { d.arg().to_owned() } else { format!("{}/{}", sshd::SSHDIR, d.arg()) };
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    let mut out = Vec::new();
    for p in paths {
        let p = if public { format!("{p}.pub") } else { p };
        if let Some(m) = ctx.stat(&p)?
            && m.kind == FileKind::File
        {
            out.push((p, m));
        }
    }
    Ok(out)
}

fn private_host_keys(ctx: &Ctx<'_>) -> Outcome {
    with_config(ctx, |c| {
        let keys = match host_keys(ctx, c, false) {
            Ok(k) => k,
            Err(e) => return Outcome::error(e),
        };
        if keys.is_empty() {
            return Outcome::na("no SSH host private keys in the image (they are generated at first boot)");
        }
        let acc = account_db::load(ctx);
        let mut ok = true;
        let mut ev = Vec::new();
        for (p, m) in keys {
            let group =
                if m.gid == 0 { Some("root".to_owned()) } else { acc.group_by_gid(m.gid).map(|g| g.name.clone()) };
            // RHEL ships keys 0640 root:ssh_keys so ssh-keysign can read them.
            let good = m.uid == 0
                && (within(m.mode, 0o600) || (within(m.mode, 0o640) && group.as_deref() == Some("ssh_keys")));
            ok &= good;
            ev.push(
                Evidence::file(p)
                    .found(format!("{} {}:{}", octal(m.mode), acc.user_label(m.uid), acc.group_label(m.gid)))
                    .expected("0600 root, or 0640 root:ssh_keys"),
            );
        }
        Outcome::check(ok, capped(ev))
    })
}

fn public_host_keys(ctx: &Ctx<'_>) -> Outcome {
    with_config(ctx, |c| {
        let keys = match host_keys(ctx, c, true) {
            Ok(k) => k,
            Err(e) => return Outcome::error(e),
        };
        if keys.is_empty() {
            return Outcome::na("no SSH host public keys in the image (they are generated at first boot)");
        }
        let acc = account_db::load(ctx);
        let mut ok = true;
        let mut ev = Vec::new();
        for (p, m) in keys {
            let good = m.uid == 0 && within(m.mode, 0o644);
            ok &= good;
            ev.push(
                Evidence::file(p)
                    .found(format!("{} {}", octal(m.mode), acc.user_label(m.uid)))
                    .expected("0644 or stricter, owner root"),
            );
        }
        Outcome::check(ok, capped(ev))
    })
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

/// The rules of this area.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            id: "ssh.sshd_config_permissions",
            ssg_id: Some("file_permissions_sshd_config"),
            cis: cis(Some("5.2.1"), Some("5.2.1")),
            title: "sshd_config and the files it includes are mode 0600 or stricter",
            rationale: "The server configuration may reveal or, if writable, weaken the authentication policy.",
            remediation: "Run `chmod 0600 /etc/ssh/sshd_config` and the same on each included file listed.",
            eval: config_permissions,
            ..BASE
        },
        Rule {
            id: "ssh.sshd_config_owner",
            ssg_id: Some("file_owner_sshd_config"),
            cis: cis(Some("5.2.1"), Some("5.2.1")),
            title: "sshd_config and the files it includes are owned by root",
            rationale: "Another owner could change the server's authentication policy.",
            remediation: "Run `chown root /etc/ssh/sshd_config` and the same on each included file listed.",
            eval: config_owner,
            ..BASE
        },
        Rule {
            id: "ssh.sshd_config_group",
            ssg_id: Some("file_groupowner_sshd_config"),
            cis: cis(Some("5.2.1"), Some("5.2.1")),
            title: "sshd_config and the files it includes are group-owned by root",
            rationale: "A non-root group owner could read or change the server configuration.",
            remediation: "Run `chgrp root /etc/ssh/sshd_config` and the same on each included file listed.",
            eval: config_group,
            ..BASE
        },
        Rule {
            id: "ssh.private_host_keys",
            ssg_id: Some("file_permissions_sshd_private_key"),
            cis: cis(Some("5.2.2"), Some("5.2.2")),
            title: "SSH host private keys are 0600 root (or 0640 root:ssh_keys)",
            rationale: "Anyone who reads a host private key can impersonate the server.",
            remediation: "Run `chown root:root /etc/ssh/ssh_host_*_key && chmod 0600 /etc/ssh/ssh_host_*_key` (RHEL: `chgrp ssh_keys` and `chmod 0640`).",
            eval: private_host_keys,
            ..BASE
        },
        Rule {
            id: "ssh.public_host_keys",
            ssg_id: Some("file_permissions_sshd_pub_key"),
            cis: cis(Some("5.2.3"), Some("5.2.3")),
            title: "SSH host public keys are 0644 or stricter and owned by root",
            rationale: "A writable public host key can be replaced, breaking or subverting host verification.",
            remediation: "Run `chown root /etc/ssh/ssh_host_*_key.pub && chmod 0644 /etc/ssh/ssh_host_*_key.pub`.",
            eval: public_host_keys,
            ..BASE
        },
        Rule {
            id: "ssh.log_level",
            ssg_id: Some("sshd_set_loglevel_info"),
            cis: cis(Some("5.2.4"), Some("5.2.5")),
            title: "sshd LogLevel is INFO or VERBOSE",
            severity: Severity::Low,
            rationale: "Lower levels do not record logins and failed attempts.",
            remediation: "Set `LogLevel VERBOSE` (or INFO) near the top of /etc/ssh/sshd_config, before any Include that sets it.",
            eval: log_level,
            ..BASE
        },
        Rule {
            id: "ssh.x11_forwarding",
            ssg_id: Some("sshd_disable_x11_forwarding"),
            cis: cis(Some("5.2.5"), Some("5.2.12")),
            title: "sshd X11Forwarding is disabled",
            rationale: "X11 forwarding exposes the client's display to the server and its other users.",
            remediation: "Set `X11Forwarding no` in /etc/ssh/sshd_config (or the first included file that sets it).",
            eval: x11_forwarding,
            ..BASE
        },
        Rule {
            id: "ssh.max_auth_tries",
            ssg_id: Some("sshd_set_max_auth_tries"),
            cis: cis(Some("5.2.6"), Some("5.2.16")),
            title: "sshd MaxAuthTries is 4 or less",
            rationale: "Fewer attempts per connection slow down password guessing.",
            remediation: "Set `MaxAuthTries 4` in /etc/ssh/sshd_config.",
            eval: max_auth_tries,
            ..BASE
        },
        Rule {
            id: "ssh.ignore_rhosts",
            ssg_id: Some("sshd_disable_rhosts"),
            cis: cis(Some("5.2.7"), Some("5.2.11")),
            title: "sshd IgnoreRhosts is enabled",
            rationale: ".rhosts trust lets other hosts' users in without a password.",
            remediation: "Set `IgnoreRhosts yes` in /etc/ssh/sshd_config.",
            eval: ignore_rhosts,
            ..BASE
        },
        Rule {
            id: "ssh.hostbased_authentication",
            ssg_id: Some("disable_host_auth"),
            cis: cis(Some("5.2.8"), Some("5.2.8")),
            title: "sshd HostbasedAuthentication is disabled",
            rationale: "Host-based trust lets users of another host in without their own credentials.",
            remediation: "Set `HostbasedAuthentication no` in /etc/ssh/sshd_config.",
            eval: hostbased_authentication,
            ..BASE
        },
        Rule {
            id: "ssh.permit_root_login",
            ssg_id: Some("sshd_disable_root_login"),
            cis: cis(Some("5.2.9"), Some("5.2.7")),
            title: "sshd PermitRootLogin is no (also in every Match block)",
            rationale: "Direct root logins leave no record of who used root and expose the most powerful account to guessing.",
            remediation: "Set `PermitRootLogin no` in /etc/ssh/sshd_config before any Include that sets it, and remove PermitRootLogin from Match blocks.",
            eval: permit_root_login,
            ..BASE
        },
        Rule {
            id: "ssh.permit_empty_passwords",
            ssg_id: Some("sshd_disable_empty_passwords"),
            cis: cis(Some("5.2.10"), Some("5.2.9")),
            title: "sshd PermitEmptyPasswords is disabled",
            severity: Severity::High,
            rationale: "Accounts with an empty password would be reachable from the network without any credential.",
            remediation: "Set `PermitEmptyPasswords no` in /etc/ssh/sshd_config.",
            eval: permit_empty_passwords,
            ..BASE
        },
        Rule {
            id: "ssh.permit_user_environment",
            ssg_id: Some("sshd_do_not_permit_user_env"),
            cis: cis(Some("5.2.11"), Some("5.2.10")),
            title: "sshd PermitUserEnvironment is disabled",
            rationale: "User-supplied environment (LD_PRELOAD, PATH) can bypass restrictions such as forced commands.",
            remediation: "Set `PermitUserEnvironment no` in /etc/ssh/sshd_config.",
            eval: permit_user_environment,
            ..BASE
        },
        Rule {
            id: "ssh.ciphers",
            ssg_id: Some("sshd_use_approved_ciphers"),
            cis: cis(Some("5.2.12"), None),
            title: "sshd offers no weak ciphers (CBC, RC4, 3DES, Blowfish, CAST)",
            rationale: "Weak ciphers allow plaintext recovery attacks on SSH sessions.",
            remediation: "Remove the weak ciphers listed from the Ciphers line (e.g. `Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr`), or delete it to use OpenSSH's defaults.",
            eval: ciphers,
            ..BASE
        },
        Rule {
            id: "ssh.macs",
            ssg_id: Some("sshd_use_approved_macs"),
            cis: cis(Some("5.2.13"), None),
            title: "sshd offers no weak MACs (MD5, SHA-1, RIPEMD-160, 64/128-bit UMAC)",
            rationale: "Weak MACs weaken the integrity protection of SSH sessions.",
            remediation: "Remove the weak MACs listed from the MACs line (e.g. `MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256`).",
            eval: macs,
            ..BASE
        },
        Rule {
            id: "ssh.kex_algorithms",
            ssg_id: Some("sshd_use_strong_kex"),
            title: "sshd offers no weak key exchange algorithms (SHA-1 Diffie-Hellman)",
            rationale: "SHA-1 based and 1024-bit Diffie-Hellman key exchanges are within reach of well-funded attackers.",
            remediation: "Remove the algorithms listed from the KexAlgorithms line (e.g. `KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,ecdh-sha2-nistp521,ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha256`).",
            eval: kex,
            ..BASE
        },
        Rule {
            id: "ssh.client_alive_interval",
            ssg_id: Some("sshd_set_idle_timeout"),
            cis: cis(Some("5.2.15"), Some("5.2.20")),
            title: "sshd ClientAliveInterval is between 1 and 300 seconds",
            rationale: "Without keep-alive probes dead or idle sessions are never reaped.",
            remediation: "Set `ClientAliveInterval 300` (or less, not 0) in /etc/ssh/sshd_config.",
            eval: client_alive_interval,
            ..BASE
        },
        Rule {
            id: "ssh.client_alive_count_max",
            ssg_id: Some("sshd_set_keepalive"),
            cis: cis(Some("5.2.15"), Some("5.2.20")),
            title: "sshd ClientAliveCountMax is between 1 and 3",
            rationale: "Limits how long an unresponsive session stays open (0 disables termination).",
            remediation: "Set `ClientAliveCountMax 3` (or 1-2) in /etc/ssh/sshd_config.",
            eval: client_alive_count_max,
            ..BASE
        },
        Rule {
            id: "ssh.login_grace_time",
            ssg_id: Some("sshd_set_login_grace_time"),
            cis: cis(None, Some("5.2.19")),
            title: "sshd LoginGraceTime is between 1 and 60 seconds",
            rationale: "A long grace time lets unauthenticated connections hold server resources.",
            remediation: "Set `LoginGraceTime 60` in /etc/ssh/sshd_config.",
            eval: login_grace_time,
            ..BASE
        },
        Rule {
            id: "ssh.banner",
            ssg_id: Some("sshd_enable_warning_banner_net"),
            cis: cis(Some("5.2.18"), Some("5.2.15")),
            title: "sshd shows a warning banner (Banner set)",
            rationale: "A legal warning before login supports prosecution and states the terms of use.",
            remediation: "Set `Banner /etc/issue.net` in /etc/ssh/sshd_config and put the warning text in that file.",
            eval: banner,
            ..BASE
        },
        Rule {
            id: "ssh.use_pam",
            ssg_id: Some("sshd_enable_pam"),
            cis: cis(Some("5.2.19"), Some("5.2.6")),
            title: "sshd UsePAM is enabled",
            rationale: "Without PAM, account lockout, password quality and session policies do not apply to SSH logins.",
            remediation: "Set `UsePAM yes` in /etc/ssh/sshd_config.",
            eval: use_pam,
            ..BASE
        },
        Rule {
            id: "ssh.allow_tcp_forwarding",
            ssg_id: Some("sshd_disable_tcp_forwarding"),
            cis: cis(Some("5.2.20"), Some("5.2.13")),
            title: "sshd AllowTcpForwarding is disabled",
            rationale: "TCP forwarding turns the server into a tunnel past network controls.",
            remediation: "Set `AllowTcpForwarding no` in /etc/ssh/sshd_config.",
            eval: allow_tcp_forwarding,
            ..BASE
        },
        Rule {
            id: "ssh.max_startups",
            ssg_id: Some("sshd_set_maxstartups"),
            cis: cis(Some("5.2.21"), Some("5.2.17")),
            title: "sshd MaxStartups is 10:30:60 or more restrictive",
            rationale: "Limits concurrent unauthenticated connections, blunting connection-flood denial of service.",
            remediation: "Set `MaxStartups 10:30:60` in /etc/ssh/sshd_config.",
            eval: max_startups,
            ..BASE
        },
        Rule {
            id: "ssh.max_sessions",
            ssg_id: Some("sshd_set_max_sessions"),
            cis: cis(Some("5.2.22"), Some("5.2.18")),
            title: "sshd MaxSessions is 10 or less",
            rationale: "Limits the sessions multiplexed over one connection.",
            remediation: "Set `MaxSessions 10` (or less) in /etc/ssh/sshd_config.",
            eval: max_sessions,
            ..BASE
        },
        Rule {
            id: "ssh.access_limited",
            ssg_id: Some("sshd_limit_user_access"),
            cis: cis(None, Some("5.2.4")),
            title: "sshd access is limited with AllowUsers, AllowGroups, DenyUsers or DenyGroups",
            // SSG rates this rule "unknown"; Low is the nearest of our levels.
            severity: Severity::Low,
            rationale: "An explicit list keeps service and unexpected accounts from logging in over SSH.",
            remediation: "Add e.g. `AllowGroups sshusers` (or AllowUsers/DenyUsers/DenyGroups) to /etc/ssh/sshd_config.",
            eval: access_limited,
            ..BASE
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startups() {
        assert!(max_startups_ok("10:30:60"));
        assert!(max_startups_ok("5:20:40"));
        assert!(!max_startups_ok("10:30:100"));
        assert!(!max_startups_ok("10:50:60"));
        assert!(max_startups_ok("8"));
        assert!(!max_startups_ok("20"));
        assert!(!max_startups_ok("x:1:2"));
    }

    #[test]
    fn weak_algorithms() {
        let weak = |v: Option<&str>, weak: &[&str], defaults: &[&str]| weak_in(&effective(v, defaults), weak);
        assert_eq!(weak(Some("aes256-ctr,aes128-cbc"), WEAK_CIPHERS, DEFAULT_CIPHERS), ["aes128-cbc"]);
        assert!(weak(Some("-aes128-cbc"), WEAK_CIPHERS, DEFAULT_CIPHERS).is_empty());
        assert_eq!(weak(Some("+3DES-CBC"), WEAK_CIPHERS, DEFAULT_CIPHERS), ["3des-cbc"]);
        assert_eq!(weak(Some("^*cbc"), WEAK_CIPHERS, DEFAULT_CIPHERS).len(), 6);
        assert!(
            weak(Some("hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com"), WEAK_MACS, DEFAULT_MACS)
                .contains(&"umac-128-etm@openssh.com".to_owned())
        );
        assert!(weak(Some("curve25519-sha256,diffie-hellman-group14-sha256"), WEAK_KEX, DEFAULT_KEX).is_empty());
        // Absent keywords: OpenSSH's default ciphers and kex are fine, its default MACs are not.
        assert!(weak(None, WEAK_CIPHERS, DEFAULT_CIPHERS).is_empty());
        assert!(weak(None, WEAK_KEX, DEFAULT_KEX).is_empty());
        let mut got = weak(None, WEAK_MACS, DEFAULT_MACS);
        got.sort();
        assert_eq!(
            got,
            [
                "hmac-sha1",
                "hmac-sha1-etm@openssh.com",
                "umac-128-etm@openssh.com",
                "umac-128@openssh.com",
                "umac-64-etm@openssh.com",
                "umac-64@openssh.com"
            ]
        );
        // Removing the weak ones from the defaults passes.
        assert!(weak(Some("-hmac-sha1*,umac-64*,umac-128*"), WEAK_MACS, DEFAULT_MACS).is_empty());
    }
}
