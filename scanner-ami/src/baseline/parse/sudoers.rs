//! The sudo policy in `/etc/sudoers` and the files it includes (`sudoers(5)`), reduced to what
//! baseline rules need: `Defaults` settings and the user/alias specification lines.
//!
//! * `@include file` / `#include file` and `@includedir dir` / `#includedir dir` are followed
//!   (paths may be double-quoted; relative paths are relative to the including file's directory,
//!   as sudo 1.9.1+ resolves them). A directory contributes its files in lexical order, skipping
//!   names that end in `~` or contain a `.`, exactly as sudo does. Nesting is bounded by sudo's own
//!   128 levels and an include loop is an error.
//! * A line ending in `\` continues on the next line.
//! * `#` starts a comment, except in `#include`/`#includedir` at the start of a line and in a
//!   numeric id such as `#1000` (sudo's lexer reads those as uids), and inside double quotes.

use std::rc::Rc;

use crate::baseline::Ctx;
use crate::fs::FileKind;

/// The main policy file.
pub const MAIN: &str = "/etc/sudoers";

/// Deepest include nesting: sudo's `MAX_SUDOERS_DEPTH` (plugins/sudoers/toke.l) is 128.
pub const MAX_INCLUDE_DEPTH: usize = 128;

/// Most files read for one policy; real systems have a few dozen at most.
pub const MAX_FILES: usize = 1024;

/// A `Defaults` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub file: String,
    pub line: usize,
    /// The binding right after `Defaults` (`:alice`, `@host`, `!/bin/ls`, `>root`); empty for a
    /// global `Defaults` line.
    pub binding: String,
    pub params: Vec<Param>,
}

/// One parameter of a `Defaults` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// `!name`.
    pub negated: bool,
    /// The value after `=`, `+=` or `-=`, quotes removed.
    pub value: Option<String>,
    /// The text as written, for evidence.
    pub raw: String,
}

/// Any other logical line: a user specification or an alias definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub file: String,
    pub line: usize,
    /// The logical line with comments removed and continuations joined.
    pub text: String,
}

/// The parsed policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sudoers {
    /// Every file read, main file first.
    pub files: Vec<String>,
    pub defaults: Vec<Defaults>,
    pub specs: Vec<Spec>,
    /// Include targets that do not exist (`(file, line, path)`; sudo skips them).
    pub missing: Vec<(String, usize, String)>,
}

/// Where the parser reads from.
pub trait Source {
    /// Text of `path`: `Ok(None)` when absent.
    fn read(&self, path: &str) -> Result<Option<String>, String>;
    /// Names of the regular files in directory `dir` (empty when it does not exist).
    fn files_in(&self, dir: &str) -> Result<Vec<String>, String>;
}

struct CtxSource<'c, 'a>(&'c Ctx<'a>);

impl Source for CtxSource<'_, '_> {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        self.0.read_text(path)
    }
    fn files_in(&self, dir: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for e in self.0.list_dir(dir)? {
            let path = crate::fs::join(dir, &e.name);
            if matches!(self.0.stat(&path), Ok(Some(m)) if m.kind == FileKind::File) {
                out.push(e.name);
            }
        }
        Ok(out)
    }
}

/// The policy of the scanned root, parsed once per evaluation: `Ok(None)` when `/etc/sudoers`
/// does not exist.
pub fn load(ctx: &Ctx<'_>) -> Rc<Result<Option<Sudoers>, String>> {
    ctx.memo("sudoers", |ctx| parse(&CtxSource(ctx), MAIN))
}

/// Parse the policy whose main file is `main`.
pub fn parse(source: &dyn Source, main: &str) -> Result<Option<Sudoers>, String> {
    let Some(text) = source.read(main)? else {
        return Ok(None);
    };
    let mut p = Parser { source, out: Sudoers::default(), stack: Vec::new() };
    p.file(main, &text)?;
    Ok(Some(p.out))
}

/// True for a file name `@includedir` reads: sudo skips names ending in `~` or containing `.`.
#[must_use]
pub fn includedir_takes(name: &str) -> bool {
    !name.ends_with('~') && !name.contains('.')
}

struct Parser<'s> {
    source: &'s dyn Source,
    out: Sudoers,
    stack: Vec<String>,
}

fn dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
        None => "/",
    }
}

impl Parser<'_> {
    fn file(&mut self, path: &str, text: &str) -> Result<(), String> {
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(format!(
                "{path}: includes nested deeper than {MAX_INCLUDE_DEPTH} levels (sudo: too many levels of includes)"
            ));
        }
        if self.out.files.len() >= MAX_FILES {
            return Err(format!("{path}: more than {MAX_FILES} sudoers files included"));
        }
        self.out.files.push(path.to_owned());
        self.stack.push(path.to_owned());
        for (line, logical) in logical_lines(text) {
            let trimmed = logical.trim_start();
            if let Some((dir, arg)) = include_directive(trimmed) {
                let target = resolve(path, &arg);
                if dir {
                    self.include_dir(path, line, &target)?;
                } else {
                    self.include_file(path, line, &target)?;
                }
                continue;
            }
            let text = strip_comment(trimmed);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if let Some(d) = parse_defaults(text) {
                self.out.defaults.push(Defaults { file: path.to_owned(), line, binding: d.0, params: d.1 });
            } else {
                self.out.specs.push(Spec { file: path.to_owned(), line, text: text.to_owned() });
            }
        }
        self.stack.pop();
        Ok(())
    }

    fn include_file(&mut self, from: &str, line: usize, target: &str) -> Result<(), String> {
        if let Some(pos) = self.stack.iter().position(|s| s == target) {
            let chain: Vec<&str> = self.stack.iter().skip(pos).map(String::as_str).chain([target]).collect();
            return Err(format!("{from}:{line}: include loop: {}", chain.join(" -> ")));
        }
        match self.source.read(target) {
            Ok(Some(text)) => self.file(target, &text),
            Ok(None) => {
                self.out.missing.push((from.to_owned(), line, target.to_owned()));
                Ok(())
            }
            Err(e) => Err(format!("{from}:{line}: {e}")),
        }
    }

    fn include_dir(&mut self, from: &str, line: usize, dir: &str) -> Result<(), String> {
        let mut names: Vec<String> = self
            .source
            .files_in(dir)
            .map_err(|e| format!("{from}:{line}: {e}"))?
            .into_iter()
            .filter(|n| includedir_takes(n))
            .collect();
        names.sort();
        for n in names {
            self.include_file(from, line, &crate::fs::join(dir, &n))?;
        }
        Ok(())
    }
}

/// Join continuation lines; yields `(first physical line number, logical line)`.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut acc = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if acc.is_empty() {
            start = i + 1;
        }
        let l = raw.trim_end_matches(['\r']);
        // A comment line ends at its newline even when it ends in a backslash.
        let comment =
            acc.is_empty() && strip_comment(l.trim_start()).is_empty() && include_directive(l.trim_start()).is_none();
        match l.strip_suffix('\\').filter(|_| !comment) {
            Some(body) => {
                acc.push_str(body);
                acc.push(' ');
            }
            None => {
                acc.push_str(l);
                out.push((start, std::mem::take(&mut acc)));
            }
        }
    }
    if !acc.is_empty() {
        out.push((start, acc));
    }
    out
}

/// `(is_dir, path)` of an include directive line.
fn include_directive(line: &str) -> Option<(bool, String)> {
    let (dir, rest) = if let Some(r) = line.strip_prefix("@includedir").or_else(|| line.strip_prefix("#includedir")) {
        (true, r)
    } else if let Some(r) = line.strip_prefix("@include").or_else(|| line.strip_prefix("#include")) {
        (false, r)
    } else {
        return None;
    };
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    let path = if let Some(q) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                c => out.push(c),
            }
        }
        out
    } else {
        let end = rest.find([' ', '\t', '#']).unwrap_or(rest.len());
        rest.get(..end).unwrap_or(rest).replace("\\ ", " ")
    };
    (!path.is_empty()).then_some((dir, path))
}

fn resolve(from: &str, target: &str) -> String {
    if target.starts_with('/') { target.to_owned() } else { crate::fs::join(dirname(from), target) }
}

/// Remove a trailing comment: a `#` outside double quotes not followed by a digit (or `-digit`).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let mut in_quote = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 1,
            b'"' => in_quote = !in_quote,
            b'#' if !in_quote => {
                let next = bytes.get(i + 1).copied();
                let after = bytes.get(i + 2).copied();
                let is_id = next.is_some_and(|c| c.is_ascii_digit())
                    || (next == Some(b'-') && after.is_some_and(|c| c.is_ascii_digit()));
                if !is_id {
                    return line.get(..i).unwrap_or(line);
                }
            }
            _ => {}
        }
        i += 1;
    }
    line
}

/// Parse a `Defaults` line into its binding and parameters.
fn parse_defaults(text: &str) -> Option<(String, Vec<Param>)> {
    let rest = text.strip_prefix("Defaults")?;
    let (binding, params) = match rest.chars().next() {
        Some('@' | ':' | '!' | '>') => {
            let end = rest.find([' ', '\t']).unwrap_or(rest.len());
            (rest.get(..end).unwrap_or("").to_owned(), rest.get(end..).unwrap_or(""))
        }
        Some(' ' | '\t') => (String::new(), rest),
        // `Defaults_x` or similar is not a Defaults line.
        _ => return None,
    };
    Some((binding, split_params(params)))
}

/// Split a comma-separated parameter list (commas inside double quotes or escaped do not split).
fn split_params(s: &str) -> Vec<Param> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                in_quote = !in_quote;
                cur.push(c);
            }
            ',' if !in_quote => items.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    items.push(cur);
    items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .map(|raw| {
            let mut body = raw.as_str();
            let mut negated = false;
            while let Some(r) = body.strip_prefix('!') {
                negated = !negated;
                body = r.trim_start();
            }
            let (name, value) = match body.find(['=', '+', '-']) {
                Some(pos) => {
                    let name = body.get(..pos).unwrap_or("").trim();
                    let v = body.get(pos..).unwrap_or("");
                    let v = v.strip_prefix("+=").or_else(|| v.strip_prefix("-=")).or_else(|| v.strip_prefix('='));
                    match v {
                        Some(v) => (name.to_owned(), Some(unquote(v.trim()))),
                        None => (body.trim().to_owned(), None),
                    }
                }
                None => (body.trim().to_owned(), None),
            };
            Param { name, negated, value, raw }
        })
        .collect()
}

fn unquote(v: &str) -> String {
    let inner = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v);
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// True if the text holds the tag `tag:` as a word (`NOPASSWD:` but not `XNOPASSWD:` or an alias
/// named `NOPASSWD_CMDS`).
#[must_use]
pub fn has_tag(text: &str, tag: &str) -> bool {
    let mut start = 0;
    while let Some(pos) = text.get(start..).and_then(|t| t.find(tag)) {
        let at = start + pos;
        let before_ok =
            text.get(..at).and_then(|b| b.chars().last()).is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let after = text.get(at + tag.len()..).unwrap_or("").trim_start();
        if before_ok && after.starts_with(':') {
            return true;
        }
        start = at + tag.len();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Mem(BTreeMap<String, String>);

    impl Source for Mem {
        fn read(&self, path: &str) -> Result<Option<String>, String> {
            Ok(self.0.get(path).cloned())
        }
        fn files_in(&self, dir: &str) -> Result<Vec<String>, String> {
            let prefix = format!("{dir}/");
            Ok(self
                .0
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|rest| !rest.contains('/'))
                .map(str::to_owned)
                .collect())
        }
    }

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn defaults_and_specs() {
        let s = parse(
            &mem(&[(
                MAIN,
                "# comment\nDefaults\tenv_reset, use_pty\nDefaults logfile=\"/var/log/sudo.log\" # c\nDefaults:bob !authenticate\n\
                 Defaults !use_pty\n%admin ALL=(ALL) ALL\n#1000 ALL = NOPASSWD: \\\n   /bin/ls\n",
            )]),
            MAIN,
        )
        .expect("parses")
        .expect("present");
        assert_eq!(s.defaults.len(), 4);
        assert_eq!(s.defaults[0].params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["env_reset", "use_pty"]);
        assert_eq!(s.defaults[1].params[0].value.as_deref(), Some("/var/log/sudo.log"));
        assert_eq!((s.defaults[2].binding.as_str(), s.defaults[2].params[0].negated), (":bob", true));
        assert!(s.defaults[3].params[0].negated);
        assert_eq!(s.specs.len(), 2);
        assert_eq!(s.specs[1].line, 7);
        assert!(s.specs[1].text.starts_with("#1000"), "a numeric id is not a comment");
        assert!(has_tag(&s.specs[1].text, "NOPASSWD"));
        assert!(s.specs[1].text.contains("/bin/ls"), "continuation joined");
    }

    #[test]
    fn includes() {
        let s = parse(
            &mem(&[
                (MAIN, "@includedir /etc/sudoers.d\n#include extra\n"),
                ("/etc/sudoers.d/a", "Defaults use_pty\n"),
                ("/etc/sudoers.d/foo~", "Defaults !use_pty\n"),
                ("/etc/sudoers.d/a.b", "Defaults !use_pty\n"),
                ("/etc/sudoers.d/README", "# nothing\n"),
                ("/etc/extra", "@include \"/etc/sp ace\"\n@include missing\n"),
                ("/etc/sp ace", "bob ALL=(ALL) ALL\n"),
            ]),
            MAIN,
        )
        .expect("parses")
        .expect("present");
        assert_eq!(s.files, ["/etc/sudoers", "/etc/sudoers.d/README", "/etc/sudoers.d/a", "/etc/extra", "/etc/sp ace"]);
        assert_eq!(s.defaults.len(), 1);
        assert_eq!(s.missing, [("/etc/extra".to_owned(), 2, "/etc/missing".to_owned())]);
        assert!(includedir_takes("90-cloud-init-users"));
        assert!(!includedir_takes("x.dpkg-old"));
        assert!(!includedir_takes("x~"));
    }

    #[test]
    fn include_loop() {
        let e =
            parse(&mem(&[(MAIN, "#include /etc/a\n"), ("/etc/a", "@include /etc/sudoers\n")]), MAIN).expect_err("loop");
        assert!(e.contains("include loop"), "{e}");
    }

    #[test]
    fn tags() {
        assert!(has_tag("u ALL=(ALL) NOPASSWD:ALL", "NOPASSWD"));
        assert!(has_tag("u ALL=(ALL) NOPASSWD : ALL", "NOPASSWD"));
        assert!(!has_tag("Cmnd_Alias NOPASSWD_CMDS = /bin/ls", "NOPASSWD"));
        assert!(!has_tag("u ALL=(ALL) PASSWD: ALL", "NOPASSWD"));
        assert!(!has_tag("u ALL=(ALL) XNOPASSWD: ALL", "NOPASSWD"));
        assert_eq!(strip_comment("a \"#x\" # c"), "a \"#x\" ");
    }

    #[test]
    fn params() {
        let p = split_params(" a, !b ,c=\"x,y\", d+=e, !!f, g-=h");
        let v: Vec<(&str, bool, Option<&str>)> =
            p.iter().map(|p| (p.name.as_str(), p.negated, p.value.as_deref())).collect();
        assert_eq!(
            v,
            [
                ("a", false, None),
                ("b", true, None),
                ("c", false, Some("x,y")),
                ("d", false, Some("e")),
                ("f", false, None),
                ("g", false, Some("h"))
            ]
        );
    }
}
