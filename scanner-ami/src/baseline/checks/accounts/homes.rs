//! Interactive users' home directories and dot files: they exist, are owned and private, and hold no `.netrc`, `.rhosts` or `.forward`.

use super::*;

/// Interactive users (bounded) with the evidence note naming UID_MIN; `Err` when passwd is unusable.
pub(super) fn homes(ctx: &Ctx<'_>) -> Result<(Rc<Accounts>, Vec<User>, Evidence), Outcome> {
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

pub(super) fn home_check(ctx: &Ctx<'_>, check: fn(&Accounts, &User, &Meta) -> Option<Evidence>) -> Outcome {
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

pub(super) fn home_dirs_exist(ctx: &Ctx<'_>) -> Outcome {
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

pub(super) fn home_dirs_owned(ctx: &Ctx<'_>) -> Outcome {
    home_check(ctx, |acc, u, m| {
        (m.uid != u.uid).then(|| {
            Evidence::file(u.home.clone())
                .found(format!("owner {}", acc.user_label(m.uid)))
                .expected(format!("owner {}({})", u.name, u.uid))
        })
    })
}

pub(super) fn home_dirs_permissions(ctx: &Ctx<'_>) -> Outcome {
    home_check(ctx, |_, u, m| {
        (!within(m.mode, 0o750))
            .then(|| Evidence::file(u.home.clone()).found(octal(m.mode)).expected("0750 or stricter"))
    })
}

pub(super) fn dot_files_not_writable(ctx: &Ctx<'_>) -> Outcome {
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
pub(super) fn no_home_file(ctx: &Ctx<'_>, name: &str, extra: &[&str]) -> Outcome {
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

pub(super) fn no_netrc(ctx: &Ctx<'_>) -> Outcome {
    no_home_file(ctx, ".netrc", &[])
}

pub(super) fn no_rhosts(ctx: &Ctx<'_>) -> Outcome {
    no_home_file(ctx, ".rhosts", &["/etc/hosts.equiv", "/etc/shosts.equiv"])
}

pub(super) fn no_forward(ctx: &Ctx<'_>) -> Outcome {
    no_home_file(ctx, ".forward", &[])
}
