//! The Linux audit configuration of the scanned image: `auditd.conf(5)` (`key = value` lines) and
//! the audit rules loaded at boot (`auditctl(8)` syntax): the `*.rules` files of
//! `/etc/audit/rules.d` that `augenrules` concatenates in name order, or `/etc/audit/audit.rules`
//! when that directory holds none. Watches (`-w path -p perms`), syscall rules (`-a list,action
//! -F field<op>value -S syscalls -C comparison -k key`) and controls (`-e`, `-b`, `-f`, `-D`) are
//! kept with their file and line.

use std::rc::Rc;

use crate::baseline::Ctx;
use crate::baseline::parse::sysctl::{drop_ins, read_set};

/// auditd's configuration file.
pub const AUDITD_CONF: &str = "/etc/audit/auditd.conf";
/// The rules directory `augenrules` compiles.
pub const RULES_D: &str = "/etc/audit/rules.d";
/// The compiled rules file auditd loads.
pub const AUDIT_RULES: &str = "/etc/audit/audit.rules";

/// One `auditd.conf` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key, lower case (auditd matches keywords case-insensitively).
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parse `auditd.conf`: `#` comments, `key = value` (whitespace optional around `=`).
#[must_use]
pub fn parse_auditd_conf(text: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push(Setting { key: k.trim().to_ascii_lowercase(), value: v.trim().to_owned(), line: i + 1 });
        }
    }
    out
}

/// The last setting of `key` (auditd applies settings in order).
#[must_use]
pub fn setting<'s>(settings: &'s [Setting], key: &str) -> Option<&'s Setting> {
    settings.iter().rev().find(|s| s.key == key)
}

/// A `-F field<op>value` filter (or `-C` comparison).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// `=`, `!=`, `<`, `>`, `<=`, `>=`, `&`, `&=`.
    pub op: String,
    pub value: String,
}

/// What a rule line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `-w path -p perms`: a file watch (perms default to `rwxa`).
    Watch { path: String, perms: String },
    /// `-a`/`-A list,action ...`: a syscall (or filesystem, exclude...) rule.
    Syscall {
        /// `exit`, `task`, `user`, `exclude`, `filesystem`, `io_uring`.
        list: String,
        /// `always` or `never`.
        action: String,
        syscalls: Vec<String>,
        fields: Vec<Field>,
        comparisons: Vec<Field>,
    },
    /// `-e N`, `-b N`, `-f N`, `-r N`, `--backlog_wait_time N`: the flag and its value.
    Control { flag: String, value: String },
    /// `-D` (delete all) and anything else.
    Other(String),
}

/// One rule line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    pub key: Option<String>,
    pub file: String,
    pub line: usize,
    /// The line as written (trimmed), for evidence.
    pub text: String,
}

fn split_field(s: &str) -> Option<Field> {
    // The operator starts at the first operator character; take the longest operator there.
    let i = s.find(['!', '<', '>', '=', '&'])?;
    let (name, rest) = s.split_at(i);
    let op = ["!=", "<=", ">=", "&=", "=", "<", ">", "&"].into_iter().find(|op| rest.starts_with(op))?;
    if name.is_empty() {
        return None;
    }
    let value = rest.get(op.len()..).unwrap_or_default();
    Some(Field { name: name.to_owned(), op: op.to_owned(), value: value.to_owned() })
}

/// Parse one rules line (already known not to be a comment).
#[must_use]
pub fn parse_rule(line: &str, file: &str, n: usize) -> Rule {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut key = None;
    let mut watch: Option<String> = None;
    let mut perms: Option<String> = None;
    let mut list_action: Option<(String, String)> = None;
    let mut syscalls = Vec::new();
    let mut fields = Vec::new();
    let mut comparisons = Vec::new();
    let mut control = None;
    let mut other = None;
    let mut i = 0;
    while let Some(&w) = words.get(i) {
        let arg = words.get(i + 1).copied();
        let mut used = 1;
        match w {
            "-w" => {
                watch = arg.map(str::to_owned);
                used = 2;
            }
            "-p" => {
                perms = arg.map(str::to_owned);
                used = 2;
            }
            "-k" => {
                key = arg.map(str::to_owned);
                used = 2;
            }
            "-a" | "-A" => {
                if let Some(a) = arg {
                    let (x, y) = a.split_once(',').unwrap_or((a, ""));
                    // Either order is accepted: `always,exit` or `exit,always`.
                    let pair = if matches!(x, "always" | "never") { (y, x) } else { (x, y) };
                    list_action = Some((pair.0.to_owned(), pair.1.to_owned()));
                }
                used = 2;
            }
            "-S" => {
                if let Some(a) = arg {
                    syscalls.extend(a.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
                }
                used = 2;
            }
            "-F" => {
                if let Some(f) = arg.and_then(split_field) {
                    if f.name == "key" {
                        key = Some(f.value.clone());
                    }
                    fields.push(f);
                }
                used = 2;
            }
            "-C" => {
                if let Some(f) = arg.and_then(split_field) {
                    comparisons.push(f);
                }
                used = 2;
            }
            "-e" | "-b" | "-f" | "-r" | "--backlog_wait_time" => {
                control = Some((w.to_owned(), arg.unwrap_or_default().to_owned()));
                used = 2;
            }
            other_flag => {
                if other.is_none() {
                    other = Some(other_flag.to_owned());
                }
            }
        }
        i += used;
    }
    let kind = if let Some(path) = watch {
        Kind::Watch { path, perms: perms.unwrap_or_else(|| "rwxa".to_owned()) }
    } else if let Some((list, action)) = list_action {
        Kind::Syscall { list, action, syscalls, fields, comparisons }
    } else if let Some((flag, value)) = control {
        Kind::Control { flag, value }
    } else {
        Kind::Other(other.unwrap_or_default())
    };
    Rule { kind, key, file: file.to_owned(), line: n, text: line.trim().to_owned() }
}

/// Parse a rules file: `#` comments and blank lines are skipped.
#[must_use]
pub fn parse_rules(text: &str, file: &str) -> Vec<Rule> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map(|(i, l)| parse_rule(l, file, i + 1))
        .collect()
}

impl Rule {
    /// The value of the first `-F name=...` filter.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Field> {
        match &self.kind {
            Kind::Syscall { fields, .. } => fields.iter().find(|f| f.name == name),
            _ => None,
        }
    }

    /// The architecture a syscall rule applies to: `b64`/`b32` from `-F arch=`, or `None`.
    #[must_use]
    pub fn arch(&self) -> Option<&str> {
        self.field("arch").map(|f| match f.value.as_str() {
            "b64" | "x86_64" | "aarch64" | "ppc64" | "ppc64le" | "s390x" => "b64",
            "b32" | "i386" | "i686" | "arm" | "ppc" | "s390" => "b32",
            other => other,
        })
    }

    /// True for an `always,exit` syscall rule.
    #[must_use]
    pub fn is_always_exit(&self) -> bool {
        matches!(&self.kind, Kind::Syscall { list, action, .. } if list == "exit" && action == "always")
    }

    /// The syscalls of a syscall rule.
    #[must_use]
    pub fn syscalls(&self) -> &[String] {
        match &self.kind {
            Kind::Syscall { syscalls, .. } => syscalls,
            _ => &[],
        }
    }

    /// `-C` comparisons of a syscall rule.
    #[must_use]
    pub fn comparisons(&self) -> &[Field] {
        match &self.kind {
            Kind::Syscall { comparisons, .. } => comparisons,
            _ => &[],
        }
    }
}

/// The rules loaded at boot.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Files read, in load order.
    pub files: Vec<String>,
    pub rules: Vec<Rule>,
    /// Which source was used and why (for evidence).
    pub source: String,
    /// Files or directories that could not be read.
    pub errors: Vec<String>,
}

/// Read the audit rules the image loads at boot, once per evaluation: `rules.d/*.rules` in name
/// order when there are any (`augenrules --load`, which both Debian's and Red Hat's auditd
/// units run, regenerates `audit.rules` from them), else `audit.rules`.
pub fn load_rules(ctx: &Ctx<'_>) -> Rc<Rules> {
    ctx.memo("audit_rules", |ctx| {
        let mut set = drop_ins(ctx, &[RULES_D], ".rules");
        // augenrules concatenates in `ls -1v` (version) order: 9-x.rules before 10-y.rules.
        set.files.sort_by(|a, b| version_cmp(a, b));
        let mut out = Rules { errors: set.errors, ..Rules::default() };
        let files = if set.files.is_empty() {
            out.source = format!("{AUDIT_RULES} ({RULES_D} has no *.rules files)");
            vec![AUDIT_RULES.to_owned()]
        } else {
            out.source = format!("{RULES_D}/*.rules, as augenrules compiles them");
            set.files
        };
        let read = read_set(ctx, files, "audit rules", |text, f| out.rules.extend(parse_rules(text, f)));
        out.files.extend(read.read);
        out.errors.extend(read.errors);
        out
    })
}

/// The run of ASCII digits of `s` starting at `k`, and the index after it.
fn digit_run(s: &[u8], k: usize) -> (&[u8], usize) {
    let end = k + s.get(k..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
    (s.get(k..end).unwrap_or_default(), end)
}

/// Compare like `ls -v`: runs of digits compare by numeric value, everything else bytewise.
#[must_use]
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while let (Some(&c), Some(&d)) = (x.get(i), y.get(j)) {
        if c.is_ascii_digit() && d.is_ascii_digit() {
            let ((na, ni), (nb, nj)) = (digit_run(x, i), digit_run(y, j));
            let trim = |n: &[u8]| -> usize { n.iter().take_while(|&&c| c == b'0').count() };
            let (na, nb) = (na.get(trim(na)..).unwrap_or_default(), nb.get(trim(nb)..).unwrap_or_default());
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != Ordering::Equal {
                return ord;
            }
            (i, j) = (ni, nj);
        } else {
            if c != d {
                return c.cmp(&d);
            }
            i += 1;
            j += 1;
        }
    }
    (x.len() - i.min(x.len())).cmp(&(y.len() - j.min(y.len())))
}

/// `auditd.conf`, once per evaluation: `Ok(None)` when absent.
pub fn load_conf(ctx: &Ctx<'_>) -> Rc<Result<Option<Vec<Setting>>, String>> {
    ctx.memo("auditd_conf", |ctx| ctx.read_text(AUDITD_CONF).map(|t| t.map(|t| parse_auditd_conf(&t))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditd_conf() {
        let s = parse_auditd_conf("# c\nmax_log_file = 8\nMAX_LOG_FILE_ACTION=keep_logs\nmax_log_file = 32\nbad\n");
        assert_eq!(setting(&s, "max_log_file").map(|s| (s.value.as_str(), s.line)), Some(("32", 4)));
        assert_eq!(setting(&s, "max_log_file_action").map(|s| s.value.as_str()), Some("keep_logs"));
    }

    #[test]
    fn watches_and_syscalls() {
        let r = parse_rules(
            "## c\n-D\n-b 8192\n-w /etc/passwd -p wa -k identity\n-a always,exit -F arch=b64 -S adjtimex,settimeofday -S clock_settime -k time-change\n-a exit,always -F arch=b32 -S chmod -F auid>=1000 -F auid!=unset -F key=perm_mod\n-a always,exit -F arch=b64 -C euid!=uid -F auid!=unset -S execve\n-e 2\n",
            "/etc/audit/rules.d/x.rules",
        );
        assert_eq!(r.len(), 7);
        assert_eq!(r[0].kind, Kind::Other("-D".into()));
        assert_eq!(r[1].kind, Kind::Control { flag: "-b".into(), value: "8192".into() });
        assert_eq!(r[2].kind, Kind::Watch { path: "/etc/passwd".into(), perms: "wa".into() });
        assert_eq!((r[2].key.as_deref(), r[2].line), (Some("identity"), 4));
        assert!(r[3].is_always_exit());
        assert_eq!(r[3].arch(), Some("b64"));
        assert_eq!(r[3].syscalls(), ["adjtimex", "settimeofday", "clock_settime"]);
        assert!(r[4].is_always_exit(), "exit,always is the same rule");
        assert_eq!(r[4].field("auid").map(|f| (f.op.as_str(), f.value.as_str())), Some((">=", "1000")));
        assert_eq!(r[4].key.as_deref(), Some("perm_mod"));
        assert_eq!(r[5].comparisons().first().map(|c| c.op.as_str()), Some("!="));
        assert_eq!(r[6].kind, Kind::Control { flag: "-e".into(), value: "2".into() });
    }

    #[test]
    fn version_order() {
        let mut v = vec!["/r/10-b.rules", "/r/9-a.rules", "/r/99-finalize.rules", "/r/010-c.rules", "/r/a.rules"];
        v.sort_by(|a, b| version_cmp(a, b));
        assert_eq!(v, ["/r/9-a.rules", "/r/10-b.rules", "/r/010-c.rules", "/r/99-finalize.rules", "/r/a.rules"]);
    }

    #[test]
    fn odd_lines() {
        let r = parse_rules("-w\n-a\n-F\n-S\n-F =x\n", "f");
        assert_eq!(r.len(), 5);
        assert!(matches!(r[0].kind, Kind::Other(_)));
    }
}
