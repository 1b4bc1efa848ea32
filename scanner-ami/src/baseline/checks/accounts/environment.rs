//! The login environment: system accounts' shells, root's group, the default umask (login.defs, profile, bashrc) and the shell timeout.

use super::*;

/// Accounts exempt from the nologin rule: they exist to run one command (CIS, SSG).
pub(super) const SHELL_EXEMPT: &[&str] = &["root", "sync", "shutdown", "halt", "nfsnobody"];

pub(super) fn system_accounts_nologin(ctx: &Ctx<'_>) -> Outcome {
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

pub(super) fn root_gid_zero(ctx: &Ctx<'_>) -> Outcome {
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
pub(super) fn umask_ok(mask: u32) -> bool {
    mask & 0o027 == 0o027
}

pub(super) fn umask_login_defs(ctx: &Ctx<'_>) -> Outcome {
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
pub(super) fn shell_commands(line: &str) -> Vec<Vec<String>> {
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
pub(super) fn profile_files(ctx: &Ctx<'_>) -> Result<Vec<String>, String> {
    let mut v = vec!["/etc/profile".to_owned()];
    v.extend(ctx::glob(ctx, "/etc/profile.d/*.sh", MAX_PROFILE_D)?);
    Ok(v)
}

/// The interactive bash startup file of the family (`/etc/bash.bashrc` on Debian and SUSE,
/// `/etc/bashrc` on RHEL).
pub(super) const BASHRC: &[&str] = &["/etc/bash.bashrc", "/etc/bashrc"];

/// Every `umask` value set in `files`: `(file, line, value)`.
pub(super) fn umask_lines(ctx: &Ctx<'_>, files: &[String]) -> Result<Vec<(String, usize, String)>, String> {
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

pub(super) fn umask_files(ctx: &Ctx<'_>, files: Result<Vec<String>, String>) -> Outcome {
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

pub(super) fn umask_profile(ctx: &Ctx<'_>) -> Outcome {
    umask_files(ctx, profile_files(ctx))
}

pub(super) fn umask_bashrc(ctx: &Ctx<'_>) -> Outcome {
    let present: Vec<String> =
        BASHRC.iter().filter(|p| matches!(ctx.stat(p), Ok(Some(_)))).map(|p| (*p).to_owned()).collect();
    if present.is_empty() {
        return Outcome::na("neither /etc/bash.bashrc nor /etc/bashrc exists");
    }
    umask_files(ctx, Ok(present))
}

/// Longest accepted TMOUT (CIS: 900 seconds or less).
pub(super) const MAX_TMOUT: i64 = 900;

pub(super) fn tmout(ctx: &Ctx<'_>) -> Outcome {
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
