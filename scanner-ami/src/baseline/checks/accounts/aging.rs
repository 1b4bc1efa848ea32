//! Password aging: the defaults in `/etc/login.defs` and `/etc/default/useradd`, their application to existing accounts, and last-change dates in the past.

use super::*;

pub(super) fn defs_setting(
    ctx: &Ctx<'_>,
    file: &str,
    key: &str,
    expected: &str,
    default: &str,
    ok: fn(i64) -> bool,
) -> Outcome {
    let defs = logindefs::load(ctx);
    let got = if file == USERADD { defs.useradd(key) } else { defs.get(key) };
    match got {
        Err(e) => Outcome::error(e),
        Ok(Some(s)) => {
            let ev = Evidence::file(&s.file).line(s.line).found(format!("{key} {}", s.value)).expected(expected);
            match s.int() {
                Some(v) => Outcome::check(ok(v), vec![ev]),
                None => Outcome::fail(vec![ev.with_note("not a number")]),
            }
        }
        Ok(None) => Outcome::fail(vec![
            Evidence::file(file)
                .found(format!("{key} not set"))
                .expected(expected)
                .with_note(format!("the default applies: {default}")),
        ]),
    }
}

pub(super) fn pass_max_days(ctx: &Ctx<'_>) -> Outcome {
    defs_setting(ctx, LOGIN_DEFS, "PASS_MAX_DAYS", "PASS_MAX_DAYS 1..=365", "99999 (never expires)", |v| {
        (1..=365).contains(&v)
    })
}

pub(super) fn pass_min_days(ctx: &Ctx<'_>) -> Outcome {
    defs_setting(ctx, LOGIN_DEFS, "PASS_MIN_DAYS", "PASS_MIN_DAYS >= 1", "0", |v| v >= 1)
}

pub(super) fn pass_warn_age(ctx: &Ctx<'_>) -> Outcome {
    defs_setting(ctx, LOGIN_DEFS, "PASS_WARN_AGE", "PASS_WARN_AGE >= 7", "no warning", |v| v >= 7)
}

pub(super) fn inactive(ctx: &Ctx<'_>) -> Outcome {
    defs_setting(ctx, USERADD, "INACTIVE", "INACTIVE 0..=30", "-1 (never locked)", |v| (0..=30).contains(&v))
}

pub(super) fn encrypt_method(ctx: &Ctx<'_>) -> Outcome {
    let expected = "ENCRYPT_METHOD SHA512 or YESCRYPT";
    match logindefs::load(ctx).get("ENCRYPT_METHOD") {
        Err(e) => Outcome::error(e),
        Ok(Some(s)) => {
            let ok = s.value.eq_ignore_ascii_case("SHA512") || s.value.eq_ignore_ascii_case("YESCRYPT");
            Outcome::check(
                ok,
                vec![
                    Evidence::file(&s.file)
                        .line(s.line)
                        .found(format!("ENCRYPT_METHOD {}", s.value))
                        .expected(expected),
                ],
            )
        }
        Ok(None) => Outcome::fail(vec![
            Evidence::file(LOGIN_DEFS)
                .found("ENCRYPT_METHOD not set")
                .expected(expected)
                .with_note("shadow-utils then falls back to MD5_CRYPT_ENAB or DES"),
        ]),
    }
}

/// Existing accounts with a password: each must satisfy `ok` on its shadow field.
pub(super) fn existing(
    ctx: &Ctx<'_>,
    field: &str,
    expected: &str,
    get: fn(&Shadow) -> Option<i64>,
    ok: fn(i64) -> bool,
) -> Outcome {
    let acc = match need(ctx, &[Which::Shadow]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let mut bad = Vec::new();
    let mut checked = 0usize;
    for s in acc.shadow.records.iter().filter(|s| has_password(s)) {
        checked += 1;
        let v = get(s);
        if !v.is_some_and(ok) {
            let shown = v.map_or_else(|| "empty".to_owned(), |v| v.to_string());
            bad.push(
                Evidence::file("/etc/shadow")
                    .line(s.line)
                    .found(format!("{}: {field} {shown}", s.name))
                    .expected(expected),
            );
        }
    }
    if checked == 0 {
        Outcome::na("no account in /etc/shadow has a password (all locked or without one)")
    } else if bad.is_empty() {
        Outcome::pass(vec![
            Evidence::file("/etc/shadow").with_note(format!("{checked} accounts with a password checked")),
        ])
    } else {
        Outcome::fail(capped(bad))
    }
}

pub(super) fn existing_max_days(ctx: &Ctx<'_>) -> Outcome {
    existing(ctx, "max days", "1..=365", |s| s.max_days, |v| (1..=365).contains(&v))
}

pub(super) fn existing_min_days(ctx: &Ctx<'_>) -> Outcome {
    existing(ctx, "min days", ">= 1", |s| s.min_days, |v| v >= 1)
}

pub(super) fn existing_warn_days(ctx: &Ctx<'_>) -> Outcome {
    existing(ctx, "warn days", ">= 7", |s| s.warn_days, |v| v >= 7)
}

pub(super) fn existing_inactive(ctx: &Ctx<'_>) -> Outcome {
    existing(ctx, "inactive days", "0..=30", |s| s.inactive_days, |v| (0..=30).contains(&v))
}

pub(super) fn last_change_in_past(ctx: &Ctx<'_>) -> Outcome {
    let acc = match need(ctx, &[Which::Shadow]) {
        Ok(a) => a,
        Err(o) => return o,
    };
    let now = today();
    let bad: Vec<Evidence> = acc
        .shadow
        .records
        .iter()
        .filter(|s| s.last_change.is_some_and(|d| d > now))
        .map(|s| {
            Evidence::file("/etc/shadow")
                .line(s.line)
                .found(format!("{}: last change day {}", s.name, s.last_change.unwrap_or_default()))
                .expected(format!("<= {now} (today)"))
        })
        .collect();
    if bad.is_empty() {
        Outcome::pass(vec![
            Evidence::file("/etc/shadow").with_note(format!("no last-change date after day {now} (today)")),
        ])
    } else {
        Outcome::fail(capped(bad))
    }
}
