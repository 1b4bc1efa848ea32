//! Linux-PAM service configuration (`pam.d(5)`): the files of `/etc/pam.d` (falling back to the
//! vendor directory `/usr/lib/pam.d`), and the *effective stack* of one management group
//! (`auth`, `account`, `password`, `session`) of a service once includes are expanded:
//!
//! * a line is `type control module-path [args...]`; `#` starts a comment anywhere; a trailing `\`
//!   continues the line; a `-` before the type marks a module that may be missing;
//! * `control` is a keyword (`required`, `requisite`, `sufficient`, `optional`, `include`,
//!   `substack`) or a bracketed `[value=action ...]` list; an argument in `[...]` may hold spaces
//!   (`\]` is a literal bracket);
//! * `include` and `substack` pull in the lines of the same type from another file; Debian's
//!   `@include file` pulls in every line of it. Nesting is bounded by Linux-PAM's 16 levels and
//!   a loop is an error.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::baseline::Ctx;

/// The service configuration directory.
pub const PAM_DIR: &str = "/etc/pam.d";
/// Where distributions with a vendor directory keep defaults (`/etc/pam.d` files take precedence).
pub const VENDOR_DIR: &str = "/usr/lib/pam.d";

/// Deepest include nesting: Linux-PAM's `PAM_SUBSTACK_MAX_LEVEL` (libpam/pam_private.h) is 16.
pub const MAX_DEPTH: usize = 16;

/// Most lines in one resolved stack: real stacks have a few dozen; bounds a crafted fan-out of
/// includes.
pub const MAX_STACK_LINES: usize = 10_000;

/// One module line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamLine {
    pub file: String,
    pub line: usize,
    /// `auth`, `account`, `password` or `session` (lower case, without the `-` prefix).
    pub kind: String,
    /// The type was written `-type`: the line is skipped when the module is missing.
    pub if_present: bool,
    /// The control as written (`required`, `[success=1 default=ignore]`).
    pub control: String,
    /// The module path as written (`pam_unix.so`, `/lib/security/pam_unix.so`) or, for
    /// `include`/`substack`, the included file.
    pub module: String,
    pub args: Vec<String>,
}

impl PamLine {
    /// The module's file name without directory (`pam_unix.so`).
    #[must_use]
    pub fn module_name(&self) -> &str {
        self.module.rsplit('/').next().unwrap_or(&self.module)
    }

    /// True for the module `name` (`pam_unix`, with or without `.so`).
    #[must_use]
    pub fn is(&self, name: &str) -> bool {
        let m = self.module_name();
        m == name || m.strip_suffix(".so") == Some(name)
    }

    /// The value of the last `key=value` argument (modules parse arguments in order, so a later
    /// one overrides an earlier one).
    #[must_use]
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args.iter().rev().find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// True if the bare argument `flag` is present.
    #[must_use]
    pub fn flag(&self, flag: &str) -> bool {
        self.args.iter().any(|a| a == flag)
    }

    /// The line as written (normalised spacing), for evidence.
    #[must_use]
    pub fn display(&self) -> String {
        let mut s = format!("{}{} {} {}", if self.if_present { "-" } else { "" }, self.kind, self.control, self.module);
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// One item of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Line(PamLine),
    /// Debian's `@include file`.
    AtInclude {
        file: String,
        line: usize,
        target: String,
    },
}

/// A parsed file: its items and the lines that could not be parsed (`(line, reason)`; Linux-PAM
/// logs and skips them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PamFile {
    pub path: String,
    pub items: Vec<Item>,
    pub malformed: Vec<(usize, String)>,
}

/// The resolved stack of one type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stack {
    /// The module lines in execution order (include/substack lines replaced by what they pull in).
    pub lines: Vec<PamLine>,
    /// Every file read, the service file first.
    pub files: Vec<String>,
}

impl Stack {
    /// Lines of module `name`.
    pub fn module<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a PamLine> + 'a {
        self.lines.iter().filter(move |l| l.is(name))
    }
}

/// Split a logical line into fields, honouring `[...]` groups.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut f = String::new();
        if c == '[' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&']') => {
                        f.push(']');
                        chars.next();
                    }
                    ']' => {
                        closed = true;
                        break;
                    }
                    c => f.push(c),
                }
            }
            if !closed {
                return Err("unterminated [".to_owned());
            }
            out.push(format!("[{f}]"));
            continue;
        }
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            f.push(c);
            chars.next();
        }
        out.push(f);
    }
    Ok(out)
}

/// Parse the text of a pam.d file.
#[must_use]
pub fn parse_file(path: &str, text: &str) -> PamFile {
    let mut file = PamFile { path: path.to_owned(), ..PamFile::default() };
    let mut acc = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if acc.is_empty() {
            start = i + 1;
        }
        let body = raw.split('#').next().unwrap_or("");
        if let Some(cont) = raw.strip_suffix('\\').filter(|_| !raw.contains('#')) {
            acc.push_str(cont);
            acc.push(' ');
            continue;
        }
        acc.push_str(body);
        let logical = std::mem::take(&mut acc);
        let logical = logical.trim();
        if logical.is_empty() {
            continue;
        }
        match parse_line(path, start, logical) {
            Ok(item) => file.items.push(item),
            Err(e) => file.malformed.push((start, e)),
        }
    }
    file
}

fn parse_line(path: &str, n: usize, logical: &str) -> Result<Item, String> {
    let f = fields(logical)?;
    let Some(first) = f.first() else {
        return Err("empty".to_owned());
    };
    if first == "@include" {
        let target = f.get(1).ok_or("@include without a file")?;
        return Ok(Item::AtInclude { file: path.to_owned(), line: n, target: target.clone() });
    }
    let (if_present, kind) = match first.strip_prefix('-') {
        Some(k) => (true, k.to_ascii_lowercase()),
        None => (false, first.to_ascii_lowercase()),
    };
    if !matches!(kind.as_str(), "auth" | "account" | "password" | "session") {
        return Err(format!("unknown type {first:?}"));
    }
    let control = f.get(1).ok_or("no control field")?.clone();
    let module = f.get(2).ok_or("no module field")?.clone();
    Ok(Item::Line(PamLine {
        file: path.to_owned(),
        line: n,
        kind,
        if_present,
        control,
        module,
        args: f.get(3..).map(<[String]>::to_vec).unwrap_or_default(),
    }))
}

/// Where files come from.
pub trait Source {
    /// The parsed file at `path`: `Ok(None)` when absent.
    fn file(&self, path: &str) -> Result<Option<Rc<PamFile>>, String>;
}

type Cache = RefCell<HashMap<String, Result<Option<Rc<PamFile>>, String>>>;

struct CtxSource<'c, 'a> {
    ctx: &'c Ctx<'a>,
    cache: Rc<Cache>,
}

impl Source for CtxSource<'_, '_> {
    fn file(&self, path: &str) -> Result<Option<Rc<PamFile>>, String> {
        if let Some(v) = self.cache.borrow().get(path) {
            return v.clone();
        }
        let v = self.ctx.read_text(path).map(|t| t.map(|t| Rc::new(parse_file(path, &t))));
        self.cache.borrow_mut().insert(path.to_owned(), v.clone());
        v
    }
}

/// The path of a service or included file name.
fn locate(source: &dyn Source, name: &str) -> Result<Option<Rc<PamFile>>, String> {
    if name.starts_with('/') {
        return source.file(name);
    }
    match source.file(&format!("{PAM_DIR}/{name}"))? {
        Some(f) => Ok(Some(f)),
        None => source.file(&format!("{VENDOR_DIR}/{name}")),
    }
}

/// The effective `kind` stack of `service` (a file name in /etc/pam.d, or an absolute path):
/// `Ok(None)` when the service file does not exist; `Err` when a file cannot be read, an included
/// file is missing (Linux-PAM then fails the whole stack), or includes nest too deep or loop.
pub fn stack_with(source: &dyn Source, service: &str, kind: &str) -> Result<Option<Stack>, String> {
    let Some(file) = locate(source, service)? else {
        return Ok(None);
    };
    let mut stack = Stack::default();
    let mut chain = Vec::new();
    expand(source, &file, kind, &mut chain, &mut stack)?;
    Ok(Some(stack))
}

/// [`stack_with`] on the scanned root (files parsed once per evaluation).
pub fn stack(ctx: &Ctx<'_>, service: &str, kind: &str) -> Result<Option<Stack>, String> {
    let cache = ctx.memo("pam_files", |_| Cache::default());
    stack_with(&CtxSource { ctx, cache }, service, kind)
}

/// The parsed file `name` of the scanned root (`/etc/pam.d/<name>`, or the vendor directory).
pub fn file(ctx: &Ctx<'_>, name: &str) -> Result<Option<Rc<PamFile>>, String> {
    let cache = ctx.memo("pam_files", |_| Cache::default());
    locate(&CtxSource { ctx, cache }, name)
}

fn expand(
    source: &dyn Source,
    file: &PamFile,
    kind: &str,
    chain: &mut Vec<String>,
    out: &mut Stack,
) -> Result<(), String> {
    if chain.contains(&file.path) {
        return Err(format!("include loop: {} -> {}", chain.join(" -> "), file.path));
    }
    if chain.len() > MAX_DEPTH {
        return Err(format!("{}: includes nested deeper than {MAX_DEPTH} levels", file.path));
    }
    chain.push(file.path.clone());
    if !out.files.contains(&file.path) {
        out.files.push(file.path.clone());
    }
    for item in &file.items {
        let (target, from, line) = match item {
            Item::AtInclude { target, file, line } => (target, file, *line),
            Item::Line(l) if l.kind == kind && matches!(l.control.as_str(), "include" | "substack") => {
                (&l.module, &l.file, l.line)
            }
            Item::Line(l) if l.kind == kind => {
                if out.lines.len() >= MAX_STACK_LINES {
                    return Err(format!("{}: more than {MAX_STACK_LINES} lines in the {kind} stack", file.path));
                }
                out.lines.push(l.clone());
                continue;
            }
            Item::Line(_) => continue,
        };
        let Some(inc) = locate(source, target)? else {
            return Err(format!("{from}:{line}: included file {target} does not exist (PAM fails the stack)"));
        };
        expand(source, &inc, kind, chain, out)?;
    }
    chain.pop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Mem(BTreeMap<String, Rc<PamFile>>);

    impl Source for Mem {
        fn file(&self, path: &str) -> Result<Option<Rc<PamFile>>, String> {
            Ok(self.0.get(path).cloned())
        }
    }

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files.iter().map(|(k, v)| ((*k).to_owned(), Rc::new(parse_file(k, v)))).collect())
    }

    #[test]
    fn line_syntax() {
        let f = parse_file(
            "/etc/pam.d/x",
            "# c\nauth [success=1 default=ignore] pam_unix.so nullok # t\n-session optional pam_systemd.so\n\
             password requisite pam_pwquality.so retry=3 \\\n  minlen=14\naccount required pam_access.so [accessfile=/etc/a b.conf]\n\
             bogus required x.so\nauth required\n@include common-auth\n",
        );
        assert_eq!(f.items.len(), 5);
        assert_eq!(f.malformed.iter().map(|m| m.0).collect::<Vec<_>>(), [7, 8]);
        let Item::Line(l) = &f.items[0] else { panic!("line") };
        assert_eq!(
            (l.control.as_str(), l.module_name(), l.args.as_slice()),
            ("[success=1 default=ignore]", "pam_unix.so", &["nullok".to_owned()][..])
        );
        let Item::Line(l) = &f.items[1] else { panic!("line") };
        assert!(l.if_present && l.kind == "session");
        let Item::Line(l) = &f.items[2] else { panic!("line") };
        assert_eq!((l.line, l.arg("minlen"), l.arg("retry")), (4, Some("14"), Some("3")));
        let Item::Line(l) = &f.items[3] else { panic!("line") };
        assert_eq!(l.args, ["[accessfile=/etc/a b.conf]"]);
        assert_eq!(f.items[4], Item::AtInclude { file: "/etc/pam.d/x".into(), line: 9, target: "common-auth".into() });
    }

    #[test]
    fn resolution() {
        let m = mem(&[
            ("/etc/pam.d/sshd", "@include common-auth\naccount required pam_nologin.so\npassword substack system-pw\n"),
            (
                "/etc/pam.d/common-auth",
                "auth required pam_faillock.so preauth\nauth include inner\naccount required pam_unix.so\n",
            ),
            ("/etc/pam.d/inner", "auth sufficient pam_unix.so\npassword required pam_deny.so\n"),
            ("/usr/lib/pam.d/system-pw", "password required pam_pwquality.so minlen=8\n"),
        ]);
        let auth = stack_with(&m, "sshd", "auth").expect("ok").expect("present");
        assert_eq!(auth.lines.iter().map(PamLine::module_name).collect::<Vec<_>>(), ["pam_faillock.so", "pam_unix.so"]);
        assert_eq!(auth.files, ["/etc/pam.d/sshd", "/etc/pam.d/common-auth", "/etc/pam.d/inner"]);
        let pw = stack_with(&m, "sshd", "password").expect("ok").expect("present");
        assert_eq!(pw.lines.len(), 1);
        assert_eq!(pw.lines[0].file, "/usr/lib/pam.d/system-pw");
        assert_eq!(pw.module("pam_pwquality").count(), 1);
        assert_eq!(stack_with(&m, "nope", "auth"), Ok(None));
    }

    #[test]
    fn loops_and_missing() {
        let m = mem(&[("/etc/pam.d/a", "@include b\n"), ("/etc/pam.d/b", "auth include a\n")]);
        assert!(stack_with(&m, "a", "auth").expect_err("loop").contains("include loop"));
        let m = mem(&[("/etc/pam.d/a", "auth include gone\n")]);
        assert!(stack_with(&m, "a", "auth").expect_err("missing").contains("does not exist"));
        let m = mem(&[("/etc/pam.d/a", "password include gone\nauth required pam_unix.so\n")]);
        assert!(stack_with(&m, "a", "auth").is_ok(), "an include of another type is not followed");
    }
}
