//! Consistency of the account databases: every account shadowed, no empty password, groups that exist, an empty shadow group, unique ids and names, only root with uid 0.

use super::*;

pub(super) fn all_shadowed(ctx: &Ctx<'_>) -> Outcome {
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

pub(super) fn no_empty_passwords(ctx: &Ctx<'_>) -> Outcome {
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

pub(super) fn passwd_gids_exist(ctx: &Ctx<'_>) -> Outcome {
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

pub(super) fn shadow_group_empty(ctx: &Ctx<'_>) -> Outcome {
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
pub(super) fn duplicates<K: Ord + std::fmt::Display>(
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

pub(super) fn unique_uids(ctx: &Ctx<'_>) -> Outcome {
    match need(ctx, &[Which::Passwd]) {
        Ok(acc) => {
            let bad = duplicates(acc.passwd.records.iter().map(|u| (u.uid, u.line)), "/etc/passwd", "uid");
            Outcome::check(bad.is_empty(), capped(bad))
        }
        Err(o) => o,
    }
}

pub(super) fn unique_gids(ctx: &Ctx<'_>) -> Outcome {
    match need(ctx, &[Which::Group]) {
        Ok(acc) => {
            let bad = duplicates(acc.group.records.iter().map(|g| (g.gid, g.line)), "/etc/group", "gid");
            Outcome::check(bad.is_empty(), capped(bad))
        }
        Err(o) => o,
    }
}

pub(super) fn unique_user_names(ctx: &Ctx<'_>) -> Outcome {
    match need(ctx, &[Which::Passwd]) {
        Ok(acc) => {
            let bad =
                duplicates(acc.passwd.records.iter().map(|u| (u.name.clone(), u.line)), "/etc/passwd", "user name");
            Outcome::check(bad.is_empty(), capped(bad))
        }
        Err(o) => o,
    }
}

pub(super) fn unique_group_names(ctx: &Ctx<'_>) -> Outcome {
    match need(ctx, &[Which::Group]) {
        Ok(acc) => {
            let bad =
                duplicates(acc.group.records.iter().map(|g| (g.name.clone(), g.line)), "/etc/group", "group name");
            Outcome::check(bad.is_empty(), capped(bad))
        }
        Err(o) => o,
    }
}

pub(super) fn only_root_uid_zero(ctx: &Ctx<'_>) -> Outcome {
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
