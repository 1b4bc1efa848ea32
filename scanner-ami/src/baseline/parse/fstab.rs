//! What the image mounts at boot: `/etc/fstab` (`fstab(5)`: six whitespace-separated fields,
//! octal escapes such as `\040`, `#` comment lines, `UUID=`/`LABEL=`/`PARTUUID=` specs, bind and
//! tmpfs entries) and the systemd unit-file syntax (`[Section]`, `Key=Value`, drop-in `*.d/*.conf`
//! directories) that `.mount` units and `journald.conf`/`coredump.conf`/`timesyncd.conf` share.
//!
//! Mount options are interpreted as `mount(8)` does: the last of `nodev`/`dev` wins, `defaults`
//! means `rw,suid,dev,exec,auto,nouser,async`, `user`/`users` imply `noexec,nosuid,nodev` and
//! `owner`/`group` imply `nosuid,nodev`.

use std::rc::Rc;

use crate::baseline::Ctx;
use crate::baseline::parse::sysctl::{drop_ins, read_set};

/// The fstab file.
pub const FSTAB: &str = "/etc/fstab";

/// One fstab line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// fs_spec as written (`UUID=...`, `LABEL=...`, `/dev/sda1`, `tmpfs`), unescaped.
    pub spec: String,
    /// fs_file, unescaped, without a trailing `/` (except for `/` itself).
    pub target: String,
    pub vfstype: String,
    /// fs_mntops split on `,` (`defaults` when the field is missing).
    pub options: Vec<String>,
    pub freq: u32,
    pub passno: u32,
    pub line: usize,
}

/// A parsed fstab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fstab {
    pub entries: Vec<Entry>,
    /// `(line, why)` for lines that could not be parsed.
    pub malformed: Vec<(usize, String)>,
}

/// Decode fstab's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
#[must_use]
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\'
            && let Some(oct) = b.get(i + 1..i + 4)
            && oct.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = oct.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Normalise a mount point: no trailing `/` except for the root, no doubled `/`.
#[must_use]
pub fn normalize_target(t: &str) -> String {
    let parts: Vec<&str> = t.split('/').filter(|c| !c.is_empty()).collect();
    if t.starts_with('/') { format!("/{}", parts.join("/")) } else { parts.join("/") }
}

/// Parse fstab text.
#[must_use]
pub fn parse(text: &str) -> Fstab {
    let mut out = Fstab::default();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(spec), Some(target)) = (f.first(), f.get(1)) else {
            out.malformed.push((n, "fewer than 2 fields".to_owned()));
            continue;
        };
        let num = |k: usize| f.get(k).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        out.entries.push(Entry {
            spec: unescape(spec),
            target: normalize_target(&unescape(target)),
            vfstype: f.get(2).map_or_else(|| "auto".to_owned(), |t| (*t).to_owned()),
            options: f.get(3).unwrap_or(&"defaults").split(',').filter(|o| !o.is_empty()).map(str::to_owned).collect(),
            freq: num(4),
            passno: num(5),
            line: n,
        });
    }
    out
}

/// A mount flag whose effective state is decided by the option list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    NoDev,
    NoSuid,
    NoExec,
}

impl Flag {
    /// The option that sets the flag (`nodev`, `nosuid`, `noexec`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Flag::NoDev => "nodev",
            Flag::NoSuid => "nosuid",
            Flag::NoExec => "noexec",
        }
    }
}

/// True if `flag` is in effect after applying `options` left to right (mount(8) semantics).
#[must_use]
pub fn flag_set(options: &[String], flag: Flag) -> bool {
    let mut on = false;
    for o in options {
        let o = o.as_str();
        match (o, flag) {
            ("nodev", Flag::NoDev) | ("nosuid", Flag::NoSuid) | ("noexec", Flag::NoExec) => on = true,
            ("dev", Flag::NoDev) | ("suid", Flag::NoSuid) | ("exec", Flag::NoExec) | ("defaults", _) => on = false,
            ("user" | "users", _) | ("owner" | "group", Flag::NoDev | Flag::NoSuid) => on = true,
            _ => {}
        }
    }
    on
}

impl Entry {
    /// True if the entry is not mounted at boot (`noauto`, later `auto` cancels it).
    #[must_use]
    pub fn noauto(&self) -> bool {
        self.options.iter().rev().find(|o| *o == "noauto" || *o == "auto").is_some_and(|o| o == "noauto")
    }
    /// True for a bind mount (`bind`/`rbind` option).
    #[must_use]
    pub fn is_bind(&self) -> bool {
        self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
    /// The options joined back as written.
    #[must_use]
    pub fn options_text(&self) -> String {
        self.options.join(",")
    }
}

impl Fstab {
    /// Entries mounting `target` (normalised), in file order.
    #[must_use]
    pub fn for_target(&self, target: &str) -> Vec<&Entry> {
        let t = normalize_target(target);
        self.entries.iter().filter(|e| e.target == t).collect()
    }
}

/// The image's `/etc/fstab`, parsed once per evaluation: `Ok(None)` when absent.
pub fn load(ctx: &Ctx<'_>) -> Rc<Result<Option<Fstab>, String>> {
    ctx.memo("fstab", |ctx| ctx.read_text(FSTAB).map(|t| t.map(|t| parse(&t))))
}

/// One `Key=Value` of a systemd-style unit or configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    pub section: String,
    pub key: String,
    pub value: String,
    pub file: String,
    pub line: usize,
}

/// Parse systemd unit-file syntax: `[Section]` headers, `Key=Value` lines (whitespace around
/// both trimmed), `#`/`;` comment lines, a trailing `\` continuing a line.
#[must_use]
pub fn parse_ini(text: &str, file: &str) -> Vec<IniEntry> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending = String::new();
    let mut start = 0usize;
    for (i, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            let t = raw.trim_start();
            if t.starts_with('#') || t.starts_with(';') {
                continue;
            }
            start = i + 1;
        }
        if let Some(cont) = raw.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name.trim().clone_into(&mut section);
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push(IniEntry {
                section: section.clone(),
                key: k.trim().to_owned(),
                value: v.trim().to_owned(),
                file: file.to_owned(),
                line: start,
            });
        }
    }
    out
}

/// A systemd configuration assembled from a main file and its drop-ins.
#[derive(Debug, Clone, Default)]
pub struct IniSet {
    /// Files read, in order (later ones override earlier ones).
    pub files: Vec<String>,
    pub entries: Vec<IniEntry>,
    /// Files or directories that could not be read.
    pub errors: Vec<String>,
}

impl IniSet {
    /// The effective (last) assignment of `key` in `section`; an empty assignment resets the key
    /// to its default (`None`).
    #[must_use]
    pub fn get(&self, section: &str, key: &str) -> Option<&IniEntry> {
        self.entries.iter().rev().find(|e| e.section == section && e.key == key).filter(|e| !e.value.is_empty())
    }
}

/// Read a systemd configuration: the first existing file of `main` (highest priority first, as
/// systemd reads `/etc/systemd/X.conf`, else the vendor copy), then the `*.conf` files of
/// `dropin_dirs` with drop-in precedence.
pub fn load_ini(ctx: &Ctx<'_>, main: &[&str], dropin_dirs: &[&str]) -> IniSet {
    let mut out = IniSet::default();
    let mut files = Vec::new();
    for m in main {
        match ctx.lstat(m) {
            Ok(Some(_)) => {
                files.push((*m).to_owned());
                break;
            }
            Ok(None) => {}
            Err(e) => {
                out.errors.push(format!("{m}: {e}"));
                break;
            }
        }
    }
    let set = drop_ins(ctx, dropin_dirs, ".conf");
    out.errors.extend(set.errors);
    files.extend(set.files);
    let read = read_set(ctx, files, "configuration", |text, f| out.entries.extend(parse_ini(text, f)));
    out.files.extend(read.read);
    out.errors.extend(read.errors);
    out
}

/// The systemd unit name of a mount point (`systemd-escape --path --suffix=mount`): `/` becomes
/// `-`, and bytes other than ASCII alphanumerics, `_`, `.` and `:` are written `\xNN`.
#[must_use]
pub fn mount_unit_name(target: &str) -> String {
    let t = normalize_target(target);
    let inner = t.trim_matches('/');
    if inner.is_empty() {
        return "-.mount".to_owned();
    }
    let mut out = String::new();
    for (i, b) in inner.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b':' => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push_str(".mount");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_comments_uuid_and_escapes() {
        let f = parse(
            "# /etc/fstab\nUUID=1234-abcd / ext4 errors=remount-ro 0 1\n\n  # indented comment\nLABEL=data /srv/my\\040data xfs defaults\ntmpfs /tmp/ tmpfs nosuid,nodev,noexec,mode=1777 0 0\n/tmp /var/tmp none bind\nbroken\n",
        );
        assert_eq!(f.entries.len(), 4);
        assert_eq!(f.malformed, vec![(8, "fewer than 2 fields".to_owned())]);
        assert_eq!(f.entries[0].spec, "UUID=1234-abcd");
        assert_eq!((f.entries[0].freq, f.entries[0].passno), (0, 1));
        assert_eq!(f.entries[1].target, "/srv/my data");
        let tmp = f.for_target("/tmp");
        assert_eq!(tmp.len(), 1);
        assert_eq!(tmp[0].line, 6);
        assert!(flag_set(&tmp[0].options, Flag::NoExec));
        assert!(f.entries[3].is_bind());
    }

    #[test]
    fn option_semantics() {
        let o = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        assert!(!flag_set(&o("defaults"), Flag::NoDev));
        assert!(flag_set(&o("defaults,nodev"), Flag::NoDev));
        assert!(!flag_set(&o("nodev,defaults"), Flag::NoDev));
        assert!(!flag_set(&o("nodev,dev"), Flag::NoDev));
        assert!(flag_set(&o("users"), Flag::NoExec));
        assert!(!flag_set(&o("users,exec"), Flag::NoExec));
        assert!(flag_set(&o("owner"), Flag::NoSuid));
        assert!(!flag_set(&o("owner"), Flag::NoExec));
    }

    #[test]
    fn unit_names_and_ini() {
        assert_eq!(mount_unit_name("/tmp"), "tmp.mount");
        assert_eq!(mount_unit_name("/var/log/audit/"), "var-log-audit.mount");
        assert_eq!(mount_unit_name("/dev/shm"), "dev-shm.mount");
        assert_eq!(mount_unit_name("/srv/a-b"), "srv-a\\x2db.mount");
        assert_eq!(mount_unit_name("/"), "-.mount");
        let e = parse_ini("[Unit]\n# c\n[Mount]\nWhat=tmpfs\nOptions=mode=1777,\\\n nosuid\n", "/x.mount");
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].key.as_str(), e[1].value.as_str(), e[1].line), ("Options", "mode=1777,  nosuid", 5));
    }

    #[test]
    fn unescape_edges() {
        assert_eq!(unescape("a\\040b\\"), "a b\\");
        assert_eq!(unescape("\\777x"), "\\777x");
        assert_eq!(unescape("\\04"), "\\04");
    }
}
