//! The account databases of the scanned image: `/etc/passwd`, `/etc/shadow`, `/etc/group` and
//! `/etc/gshadow` (colon-separated, one record per line, `passwd(5)`, `shadow(5)`, `group(5)`,
//! `gshadow(5)`). Ownership of files is always resolved against these, never the scanner's own.

use std::rc::Rc;

use crate::baseline::Ctx;
use crate::baseline::ctx::MAX_ACCOUNT_DB_BYTES;

/// A `/etc/passwd` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// The password field (`x` when shadowed).
    pub password: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    pub line: usize,
}

/// A `/etc/shadow` record (aging fields are days; empty fields are `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow {
    pub name: String,
    pub hash: String,
    pub last_change: Option<i64>,
    pub min_days: Option<i64>,
    pub max_days: Option<i64>,
    pub warn_days: Option<i64>,
    pub inactive_days: Option<i64>,
    pub expire: Option<i64>,
    pub line: usize,
}

/// A `/etc/group` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub password: String,
    pub gid: u32,
    pub members: Vec<String>,
    pub line: usize,
}

/// A `/etc/gshadow` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GShadow {
    pub name: String,
    pub password: String,
    pub admins: Vec<String>,
    pub members: Vec<String>,
    pub line: usize,
}

/// One database: its records, the lines that could not be parsed, or why it could not be read.
#[derive(Debug, Clone)]
pub struct Db<T> {
    /// False when the file does not exist.
    pub present: bool,
    pub records: Vec<T>,
    /// `(line, reason)` for every malformed line.
    pub malformed: Vec<(usize, String)>,
    /// Set when the file could not be read at all (too large, binary, I/O error).
    pub error: Option<String>,
}

/// All four databases.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub passwd: Db<User>,
    pub shadow: Db<Shadow>,
    pub group: Db<Group>,
    pub gshadow: Db<GShadow>,
}

impl Accounts {
    /// The user with this uid (the first, if duplicated).
    #[must_use]
    pub fn user_by_uid(&self, uid: u32) -> Option<&User> {
        self.passwd.records.iter().find(|u| u.uid == uid)
    }
    /// The user with this name.
    #[must_use]
    pub fn user(&self, name: &str) -> Option<&User> {
        self.passwd.records.iter().find(|u| u.name == name)
    }
    /// The group with this gid.
    #[must_use]
    pub fn group_by_gid(&self, gid: u32) -> Option<&Group> {
        self.group.records.iter().find(|g| g.gid == gid)
    }
    /// The group with this name.
    #[must_use]
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.group.records.iter().find(|g| g.name == name)
    }
    /// `name(uid)` for reports, `uid` alone when the image has no such user.
    #[must_use]
    pub fn user_label(&self, uid: u32) -> String {
        self.user_by_uid(uid).map_or_else(|| uid.to_string(), |u| format!("{}({uid})", u.name))
    }
    /// `name(gid)` for reports.
    #[must_use]
    pub fn group_label(&self, gid: u32) -> String {
        self.group_by_gid(gid).map_or_else(|| gid.to_string(), |g| format!("{}({gid})", g.name))
    }
}

fn records<T>(text: &str, fields: usize, parse: impl Fn(&[&str], usize) -> Result<T, String>) -> Db<T> {
    let mut db = Db { present: true, records: Vec::new(), malformed: Vec::new(), error: None };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        // NIS compat entries (+, -) are not local accounts.
        if line.starts_with('+') || line.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != fields {
            db.malformed.push((n, format!("{} fields, expected {fields}", f.len())));
            continue;
        }
        match parse(&f, n) {
            Ok(r) => db.records.push(r),
            Err(e) => db.malformed.push((n, e)),
        }
    }
    db
}

fn id(s: &str, what: &str) -> Result<u32, String> {
    s.parse::<u32>().map_err(|_| format!("{what} {s:?} is not a number"))
}

fn days(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

fn list(s: &str) -> Vec<String> {
    s.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect()
}

/// Parse `/etc/passwd` text.
#[must_use]
pub fn parse_passwd(text: &str) -> Db<User> {
    records(text, 7, |f, line| {
        Ok(User {
            name: f[0].to_owned(),
            password: f[1].to_owned(),
            uid: id(f[2], "uid")?,
            gid: id(f[3], "gid")?,
            gecos: f[4].to_owned(),
            home: f[5].to_owned(),
            shell: f[6].to_owned(),
            line,
        })
    })
}

/// Parse `/etc/shadow` text.
#[must_use]
pub fn parse_shadow(text: &str) -> Db<Shadow> {
    records(text, 9, |f, line| {
        Ok(Shadow {
            name: f[0].to_owned(),
            hash: f[1].to_owned(),
            last_change: days(f[2]),
            min_days: days(f[3]),
            max_days: days(f[4]),
            warn_days: days(f[5]),
            inactive_days: days(f[6]),
            expire: days(f[7]),
            line,
        })
    })
}

/// Parse `/etc/group` text.
#[must_use]
pub fn parse_group(text: &str) -> Db<Group> {
    records(text, 4, |f, line| {
        Ok(Group { name: f[0].to_owned(), password: f[1].to_owned(), gid: id(f[2], "gid")?, members: list(f[3]), line })
    })
}

/// Parse `/etc/gshadow` text.
#[must_use]
pub fn parse_gshadow(text: &str) -> Db<GShadow> {
    records(text, 4, |f, line| {
        Ok(GShadow { name: f[0].to_owned(), password: f[1].to_owned(), admins: list(f[2]), members: list(f[3]), line })
    })
}

fn load_one<T>(ctx: &Ctx<'_>, path: &str, parse: fn(&str) -> Db<T>) -> Db<T> {
    match ctx.read_text_limit(path, MAX_ACCOUNT_DB_BYTES) {
        Ok(Some(text)) => parse(&text),
        Ok(None) => Db { present: false, records: Vec::new(), malformed: Vec::new(), error: None },
        Err(e) => Db { present: true, records: Vec::new(), malformed: Vec::new(), error: Some(e) },
    }
}

/// The image's account databases, parsed once per evaluation.
pub fn load(ctx: &Ctx<'_>) -> Rc<Accounts> {
    ctx.memo("accounts", |ctx| Accounts {
        passwd: load_one(ctx, "/etc/passwd", parse_passwd),
        shadow: load_one(ctx, "/etc/shadow", parse_shadow),
        group: load_one(ctx, "/etc/group", parse_group),
        gshadow: load_one(ctx, "/etc/gshadow", parse_gshadow),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_and_group() {
        let db = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# c\nbad:line\n+nis::::::\nbob:x:1000:1000::/home/bob:/bin/sh\nx:x:notnum:0:::\n",
        );
        assert_eq!(db.records.len(), 2);
        assert_eq!(db.records[1].line, 5);
        assert_eq!(db.malformed.len(), 2);
        let g = parse_group("root:x:0:\nwheel:x:10:alice,bob\n");
        assert_eq!(g.records[1].members, ["alice", "bob"]);
        let s = parse_shadow("root:*:19000:0:99999:7:::\n");
        assert_eq!((s.records[0].max_days, s.records[0].inactive_days), (Some(99999), None));
    }
}
