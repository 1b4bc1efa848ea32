//! Root's PATH: no empty, relative or writable entries.

use super::*;

/// `PATH=` assignments in a shell file: `(line, value)`.
pub(super) fn path_assignments(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for cmd in shell_commands(line) {
            for w in &cmd {
                if let Some(v) = w.strip_prefix("PATH=") {
                    out.push((i + 1, v.trim_matches(['"', '\'']).to_owned()));
                }
            }
        }
    }
    out
}

pub(super) fn root_path(ctx: &Ctx<'_>) -> Outcome {
    let acc = accounts::load(ctx);
    let home = acc.user("root").map_or("/root", |u| u.home.as_str()).trim_end_matches('/').to_owned();
    let home = if home.is_empty() { "/".to_owned() } else { home };
    let mut sources: Vec<(String, usize, String)> = Vec::new();
    let files = [
        format!("{home}/.bash_profile"),
        format!("{home}/.bash_login"),
        format!("{home}/.profile"),
        format!("{home}/.bashrc"),
        "/etc/environment".to_owned(),
        "/etc/profile".to_owned(),
    ];
    for f in &files {
        match ctx.read_text(f) {
            Ok(Some(t)) => sources.extend(path_assignments(&t).into_iter().map(|(n, v)| (f.clone(), n, v))),
            Ok(None) => {}
            Err(e) => return Outcome::error(e),
        }
    }
    // login(1) and su(1) set root's PATH from ENV_SUPATH.
    match logindefs::load(ctx).get("ENV_SUPATH") {
        Ok(Some(s)) => {
            sources.push((s.file.clone(), s.line, s.value.strip_prefix("PATH=").unwrap_or(&s.value).to_owned()))
        }
        Ok(None) => {}
        Err(e) => return Outcome::error(e),
    }
    if sources.is_empty() {
        return Outcome::pass(vec![Evidence::note(format!(
            "no PATH assignment in {} or ENV_SUPATH in {LOGIN_DEFS}",
            files.join(", ")
        ))]);
    }
    let mut bad = Vec::new();
    let mut notes = Vec::new();
    let mut checked = BTreeSet::new();
    for (file, line, value) in &sources {
        for entry in value.split(':') {
            let at = || Evidence::file(file.clone()).line(*line);
            if entry == "$PATH" || entry == "${PATH}" {
                continue;
            }
            let problem = if entry.is_empty() {
                Some("empty entry (means the current directory)".to_owned())
            } else if entry == "." {
                Some("`.` (the current directory)".to_owned())
            } else if entry.starts_with('$') {
                notes.push(at().found(entry.to_owned()).with_note("variable not expanded; not checked"));
                None
            } else if !entry.starts_with('/') && !entry.starts_with("~/") {
                Some(format!("relative directory {entry}"))
            } else {
                let dir = match entry.strip_prefix("~/") {
                    Some(r) => format!("{home}/{r}"),
                    None => entry.to_owned(),
                };
                if !checked.insert(dir.clone()) {
                    continue;
                }
                match ctx.stat(&dir) {
                    Err(e) => return Outcome::error(e),
                    Ok(None) => {
                        notes.push(at().found(dir).with_note("does not exist"));
                        None
                    }
                    Ok(Some(m)) if m.kind != FileKind::Dir => Some(format!("{dir} is not a directory")),
                    Ok(Some(m)) if m.mode & 0o022 != 0 => {
                        Some(format!("{dir} is group/world-writable ({})", octal(m.mode)))
                    }
                    Ok(Some(m)) if m.uid != 0 => Some(format!("{dir} is owned by {}", acc.user_label(m.uid))),
                    Ok(Some(_)) => None,
                }
            };
            if let Some(p) = problem {
                bad.push(
                    at().found(format!("PATH={value}"))
                        .with_note(p)
                        .expected("absolute root-owned directories, not group/world-writable"),
                );
            }
        }
    }
    let ok = bad.is_empty();
    let mut ev = if ok {
        sources.iter().map(|(f, n, v)| Evidence::file(f.clone()).line(*n).found(format!("PATH={v}"))).collect()
    } else {
        bad
    };
    ev.extend(notes);
    Outcome::check(ok, capped(ev))
}
