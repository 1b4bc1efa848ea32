//! shadow-utils' account defaults: `/etc/login.defs` (`NAME value`, `login.defs(5)`) and the
//! `useradd` defaults in `/etc/default/useradd` (`NAME=value`), both read through [`super::kv`]
//! and parsed once per evaluation. Numbers are read as `getdef_num` reads them (`strtol` base 0:
//! `027` is octal), and a repeated name takes its last value as `getdef.c` does.

use std::rc::Rc;

use super::kv::{self, Entry, KvFile};
use crate::baseline::Ctx;

/// Path of the login defaults.
pub const LOGIN_DEFS: &str = "/etc/login.defs";
/// Path of the useradd defaults.
pub const USERADD: &str = "/etc/default/useradd";

/// shadow-utils' compiled-in `UID_MIN` when login.defs does not set one (`useradd(8)`).
pub const DEFAULT_UID_MIN: u32 = 1000;

/// Both files, each `Ok(None)` when absent or `Err(reason)` when unreadable.
#[derive(Debug, Clone)]
pub struct LoginDefs {
    pub login_defs: Result<Option<KvFile>, String>,
    pub useradd: Result<Option<KvFile>, String>,
}

/// A setting with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub file: String,
    pub line: usize,
    pub value: String,
}

impl Setting {
    fn of(file: &KvFile, e: &Entry) -> Self {
        Setting { file: file.path.clone(), line: e.line, value: e.value.clone() }
    }

    /// The value as a `strtol(…, 0)` integer.
    #[must_use]
    pub fn int(&self) -> Option<i64> {
        kv::c_integer(&self.value)
    }
}

fn lookup(file: &Result<Option<KvFile>, String>, key: &str) -> Result<Option<Setting>, String> {
    match file {
        Ok(Some(f)) => Ok(f.last(key).map(|e| Setting::of(f, e))),
        Ok(None) => Ok(None),
        Err(e) => Err(e.clone()),
    }
}

impl LoginDefs {
    /// A login.defs setting: `Ok(None)` when the file or the name is absent.
    pub fn get(&self, key: &str) -> Result<Option<Setting>, String> {
        lookup(&self.login_defs, key)
    }

    /// A `/etc/default/useradd` setting.
    pub fn useradd(&self, key: &str) -> Result<Option<Setting>, String> {
        lookup(&self.useradd, key)
    }

    /// The first UID of regular users (`UID_MIN`, default 1000). An unreadable login.defs or a
    /// value that is not a number gives the default too: callers that depend on it name it in
    /// their evidence.
    #[must_use]
    pub fn uid_min(&self) -> u32 {
        self.get("UID_MIN")
            .ok()
            .flatten()
            .and_then(|s| s.int())
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(DEFAULT_UID_MIN)
    }
}

/// Both files of the scanned root, parsed once per evaluation.
pub fn load(ctx: &Ctx<'_>) -> Rc<LoginDefs> {
    ctx.memo("login_defs", |ctx| LoginDefs {
        login_defs: kv::load(ctx, LOGIN_DEFS, kv::LOGIN_DEFS),
        useradd: kv::load(ctx, USERADD, kv::DEFAULT_USERADD),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(text: &str) -> LoginDefs {
        LoginDefs {
            login_defs: Ok(Some(KvFile { path: LOGIN_DEFS.into(), entries: kv::parse(text, kv::LOGIN_DEFS) })),
            useradd: Ok(None),
        }
    }

    #[test]
    fn values_and_defaults() {
        let d = defs("UID_MIN 500\nUMASK 022\nUMASK 027\nPASS_MAX_DAYS 90\n");
        assert_eq!(d.uid_min(), 500);
        let umask = d.get("UMASK").expect("readable").expect("set");
        assert_eq!((umask.line, umask.int()), (3, Some(0o27)));
        assert_eq!(d.get("PASS_MIN_DAYS"), Ok(None));
        assert_eq!(defs("UID_MIN x\n").uid_min(), DEFAULT_UID_MIN);
        let missing = LoginDefs { login_defs: Ok(None), useradd: Err("too large".into()) };
        assert_eq!(missing.uid_min(), DEFAULT_UID_MIN);
        assert!(missing.useradd("INACTIVE").is_err());
    }
}
