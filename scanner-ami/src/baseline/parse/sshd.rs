//! OpenSSH server configuration (`sshd_config(5)`) read the way `sshd` reads it, without running
//! `sshd -T` (impossible offline):
//!
//! * keywords are case-insensitive; `Keyword value`, `Keyword=value` and `Keyword = value` are the
//!   same; a `#` that starts an argument ends the line; arguments may be quoted with `"` or `'`
//!   (`\"`, `\'`, `\\` and, outside quotes, `\ ` are escapes); an unterminated quote or a keyword
//!   without an argument makes sshd reject the file, so it is an error here too;
//! * `Include` takes one or more paths with globs, relative ones resolved against `/etc/ssh`,
//!   matches read in sorted order; nesting is bounded to OpenSSH's 16 levels and an include loop
//!   is an error;
//! * for almost every keyword the **first** value wins; [`ACCUMULATING`] lists the ones whose lines
//!   add up;
//! * `Match` starts a conditional block that lasts until the next `Match` or the end of the file
//!   containing it (an included file's blocks end with that file, and an `Include` inside a
//!   `Match` block contributes to that block). Conditional settings are kept apart from global ones
//!   in [`SshdConfig::matches`]; `Match all` returns to the global context.
//!
//! Compiled-in defaults are the caller's business (see `checks::ssh`).

use std::rc::Rc;

use crate::baseline::Ctx;
use crate::baseline::ctx::{self, MAX_CONFIG_BYTES};

/// The server configuration file.
pub const MAIN: &str = "/etc/ssh/sshd_config";

/// Directory relative `Include` paths are resolved against (OpenSSH `SSHDIR`).
pub const SSHDIR: &str = "/etc/ssh";

/// Deepest `Include` nesting: OpenSSH's `SERVCONF_MAX_DEPTH` (servconf.c) is 16.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Most files read for one configuration. Real systems have a handful (Ubuntu: the main file and
/// one or two in sshd_config.d); this bounds the fan-out of crafted nested globs.
pub const MAX_FILES: usize = 256;

/// Most bytes read across all files of one configuration: four times the single-file bound, far
/// above any real configuration.
pub const MAX_TOTAL_BYTES: u64 = 4 * MAX_CONFIG_BYTES;

/// Most matches accepted from one `Include` glob.
const MAX_GLOB_MATCHES: usize = MAX_FILES;

/// Keywords (lower case) whose every occurrence counts instead of only the first (servconf.c
/// appends these to lists).
pub const ACCUMULATING: &[&str] = &[
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "hostkey",
    "hostcertificate",
    "port",
    "listenaddress",
    "acceptenv",
    "subsystem",
];

/// One configuration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The keyword in lower case.
    pub keyword: String,
    /// The keyword as written.
    pub name: String,
    /// Arguments after quote removal.
    pub args: Vec<String>,
    pub file: String,
    pub line: usize,
}

impl Directive {
    /// The arguments joined by single spaces.
    #[must_use]
    pub fn value(&self) -> String {
        self.args.join(" ")
    }

    /// The first argument.
    #[must_use]
    pub fn arg(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }

    /// `Keyword value` as written, for evidence.
    #[must_use]
    pub fn display(&self) -> String {
        format!("{} {}", self.name, self.value())
    }
}

/// A `Match` block and the settings inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchBlock {
    /// The criteria as written (`User bob`, `Address 10.0.0.0/8`).
    pub criteria: String,
    pub file: String,
    pub line: usize,
    pub directives: Vec<Directive>,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshdConfig {
    /// Unconditional settings in the order sshd reads them.
    pub global: Vec<Directive>,
    pub matches: Vec<MatchBlock>,
    /// Every file read, main file first.
    pub files: Vec<String>,
    /// `Include` patterns that matched nothing (`(file, line, pattern)`; sshd ignores them).
    pub unmatched_includes: Vec<(String, usize, String)>,
}

impl SshdConfig {
    /// The effective global setting of `keyword` (lower case): its first occurrence.
    #[must_use]
    pub fn get(&self, keyword: &str) -> Option<&Directive> {
        self.global.iter().find(|d| d.keyword == keyword)
    }

    /// Every global occurrence of `keyword`, for [`ACCUMULATING`] keywords.
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Directive> + 'a {
        self.global.iter().filter(move |d| d.keyword == keyword)
    }

    /// For each `Match` block that sets `keyword`, the block and its first setting of it (the one
    /// that overrides the global value for matching connections).
    #[must_use]
    pub fn overrides(&self, keyword: &str) -> Vec<(&MatchBlock, &Directive)> {
        self.matches.iter().filter_map(|m| m.directives.iter().find(|d| d.keyword == keyword).map(|d| (m, d))).collect()
    }
}

/// Where the parser reads files from: the scanned root in production, a map in unit tests.
pub trait Source {
    /// Text of `path`: `Ok(None)` when absent.
    fn read(&self, path: &str) -> Result<Option<String>, String>;
    /// Existing paths matching the glob `pattern`, sorted.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String>;
}

struct CtxSource<'c, 'a>(&'c Ctx<'a>);

impl Source for CtxSource<'_, '_> {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        self.0.read_text(path)
    }
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        ctx::glob(self.0, pattern, MAX_GLOB_MATCHES)
    }
}

/// The configuration of the scanned root, parsed once per evaluation: `Ok(None)` when
/// `/etc/ssh/sshd_config` does not exist, `Err(reason)` when it (or an included file) cannot be
/// read or sshd would reject it.
pub fn load(ctx: &Ctx<'_>) -> Rc<Result<Option<SshdConfig>, String>> {
    ctx.memo("sshd_config", |ctx| parse(&CtxSource(ctx), MAIN))
}

/// Parse the configuration whose main file is `main`.
pub fn parse(source: &dyn Source, main: &str) -> Result<Option<SshdConfig>, String> {
    let Some(text) = source.read(main)? else {
        return Ok(None);
    };
    let mut p = Parser { source, cfg: SshdConfig::default(), stack: Vec::new(), bytes: 0 };
    p.file(main, &text, None)?;
    Ok(Some(p.cfg))
}

struct Parser<'s> {
    source: &'s dyn Source,
    cfg: SshdConfig,
    /// The chain of files being read (for loop detection and depth).
    stack: Vec<String>,
    bytes: u64,
}

impl Parser<'_> {
    /// Read one file's lines; `ctx` is the Match block in force where the file was included.
    fn file(&mut self, path: &str, text: &str, ctx: Option<usize>) -> Result<(), String> {
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(format!(
                "{path}: Include nesting deeper than {MAX_INCLUDE_DEPTH} levels (sshd stops with \"Too many recursive configuration includes\")"
            ));
        }
        if self.cfg.files.len() >= MAX_FILES {
            return Err(format!("{path}: more than {MAX_FILES} configuration files included"));
        }
        self.bytes += text.len() as u64;
        if self.bytes > MAX_TOTAL_BYTES {
            return Err(format!("{path}: included files exceed {MAX_TOTAL_BYTES} bytes in total"));
        }
        self.cfg.files.push(path.to_owned());
        self.stack.push(path.to_owned());
        let mut current = ctx;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let Some((name, args)) = split_line(raw).map_err(|e| format!("{path}:{n}: {e}; sshd rejects this file"))?
            else {
                continue;
            };
            let keyword = name.to_ascii_lowercase();
            match keyword.as_str() {
                "include" => {
                    for pattern in &args {
                        self.include(path, n, pattern, current)?;
                    }
                }
                "match" => {
                    if args.len() == 1 && args.first().is_some_and(|a| a.eq_ignore_ascii_case("all")) {
                        current = None;
                    } else {
                        self.cfg.matches.push(MatchBlock {
                            criteria: args.join(" "),
                            file: path.to_owned(),
                            line: n,
                            directives: Vec::new(),
                        });
                        current = Some(self.cfg.matches.len() - 1);
                    }
                }
                _ => {
                    let d = Directive { keyword, name, args, file: path.to_owned(), line: n };
                    match current.and_then(|m| self.cfg.matches.get_mut(m)) {
                        Some(block) => block.directives.push(d),
                        None => self.cfg.global.push(d),
                    }
                }
            }
        }
        self.stack.pop();
        Ok(())
    }

    fn include(&mut self, from: &str, line: usize, pattern: &str, ctx: Option<usize>) -> Result<(), String> {
        let full = if pattern.starts_with('/') {
            pattern.to_owned()
        } else if let Some(rest) = pattern.strip_prefix("~/") {
            format!("/root/{rest}")
        } else {
            format!("{SSHDIR}/{pattern}")
        };
        let paths = self.source.glob(&full).map_err(|e| format!("{from}:{line}: Include {pattern}: {e}"))?;
        if paths.is_empty() {
            self.cfg.unmatched_includes.push((from.to_owned(), line, pattern.to_owned()));
        }
        for p in paths {
            if let Some(pos) = self.stack.iter().position(|s| *s == p) {
                let chain: Vec<&str> = self.stack.iter().skip(pos).map(String::as_str).chain([p.as_str()]).collect();
                return Err(format!("{from}:{line}: Include loop: {}", chain.join(" -> ")));
            }
            match self.source.read(&p) {
                Ok(Some(text)) => self.file(&p, &text, ctx)?,
                // Matched by the glob but gone (a dangling symlink): sshd's glob skips it too.
                Ok(None) => {}
                Err(e) => return Err(format!("{from}:{line}: Include {pattern}: {e}")),
            }
        }
        Ok(())
    }
}

/// Split one line into its keyword and arguments, as servconf.c does (`strdelim` for the keyword,
/// then `argv_split` with comments): `Ok(None)` for blank and comment lines.
pub fn split_line(raw: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let line = raw.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
    let line = line.trim_start_matches([' ', '\t']);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line.find([' ', '\t', '=']).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    rest = rest.trim_start_matches([' ', '\t']);
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start_matches([' ', '\t']);
    }
    if name.is_empty() {
        return Err("empty keyword".to_owned());
    }
    let args = split_args(rest)?;
    if args.is_empty() {
        return Err(format!("no argument after keyword \"{name}\""));
    }
    Ok(Some((name.to_owned(), args)))
}

/// OpenSSH's `argv_split(…, terminate_on_comment = 1)`: whitespace-separated words, `"`/`'`
/// quoting, backslash escapes of quotes, backslash and (outside quotes) space.
pub fn split_args(s: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == ' ' || c == '\t' {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.get(i) {
            match (c, quote) {
                ('\\', q) => match chars.get(i + 1) {
                    Some(&n) if n == '\'' || n == '"' || n == '\\' || (q.is_none() && n == ' ') => {
                        word.push(n);
                        i += 1;
                    }
                    _ => word.push('\\'),
                },
                (' ' | '\t', None) => break,
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => word.push(c),
            }
            i += 1;
        }
        if quote.is_some() {
            return Err("unterminated quote".to_owned());
        }
        out.push(word);
    }
    Ok(out)
}

/// OpenSSH's `convtime`: a time such as `90`, `1m30s`, `2h` in seconds; `None` when malformed or
/// out of range.
#[must_use]
pub fn convtime(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            if chars.peek().is_some() {
                continue;
            }
        }
        let mult: u64 = if c.is_ascii_digit() {
            1
        } else {
            match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return None,
            }
        };
        if digits.is_empty() {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(mult)?)?;
        digits.clear();
    }
    // OpenSSH rejects values above INT_MAX.
    (total <= i32::MAX as u64).then_some(total)
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
        fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
            let pc: Vec<&str> = pattern.split('/').collect();
            Ok(self
                .0
                .keys()
                .filter(|k| {
                    let kc: Vec<&str> = k.split('/').collect();
                    kc.len() == pc.len() && kc.iter().zip(&pc).all(|(k, p)| ctx::wildmatch(p, k))
                })
                .cloned()
                .collect())
        }
    }

    fn mem(files: &[(&str, &str)]) -> Mem {
        Mem(files.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    fn cfg(files: &[(&str, &str)]) -> SshdConfig {
        parse(&mem(files), MAIN).expect("parses").expect("present")
    }

    #[test]
    fn keyword_forms_and_comments() {
        let c = cfg(&[(
            MAIN,
            "# comment\n  permitrootlogin=no\nX11Forwarding = yes # trailing\nBanner \"/etc/my banner\"\nMaxAuthTries\t3\n\n",
        )]);
        let d = c.get("permitrootlogin").expect("set");
        assert_eq!((d.arg(), d.line, d.name.as_str()), ("no", 2, "permitrootlogin"));
        assert_eq!(c.get("x11forwarding").map(Directive::value), Some("yes".to_owned()));
        assert_eq!(c.get("banner").map(Directive::arg), Some("/etc/my banner"));
        assert_eq!(c.get("maxauthtries").map(|d| d.line), Some(5));
    }

    #[test]
    fn first_value_wins_and_accumulating() {
        let c = cfg(&[(MAIN, "PermitRootLogin no\nPermitRootLogin yes\nAllowUsers a b\nAllowUsers c\n")]);
        assert_eq!(c.get("permitrootlogin").map(|d| d.line), Some(1));
        assert_eq!(c.all("allowusers").count(), 2);
    }

    #[test]
    fn include_glob_relative_and_order() {
        let c = cfg(&[
            (MAIN, "Include sshd_config.d/*.conf\nPermitRootLogin yes\n"),
            ("/etc/ssh/sshd_config.d/20-b.conf", "PermitRootLogin prohibit-password\n"),
            ("/etc/ssh/sshd_config.d/10-a.conf", "PermitRootLogin no\n"),
            ("/etc/ssh/sshd_config.d/x.txt", "PermitRootLogin yes\n"),
        ]);
        let d = c.get("permitrootlogin").expect("set");
        assert_eq!((d.file.as_str(), d.arg()), ("/etc/ssh/sshd_config.d/10-a.conf", "no"));
        assert_eq!(c.files.len(), 3);
    }

    #[test]
    fn unmatched_include_is_ignored() {
        let c = cfg(&[(MAIN, "Include /nowhere/*.conf\nLogLevel INFO\n")]);
        assert_eq!(c.unmatched_includes.len(), 1);
        assert!(c.get("loglevel").is_some());
    }

    #[test]
    fn include_loop_and_depth() {
        let e = parse(&mem(&[(MAIN, "Include a.conf\n"), ("/etc/ssh/a.conf", "Include /etc/ssh/sshd_config\n")]), MAIN)
            .expect_err("loop");
        assert!(e.contains("Include loop"), "{e}");
        let mut m = Mem(BTreeMap::new());
        m.0.insert(MAIN.to_owned(), "Include d0.conf\n".to_owned());
        for i in 0..30 {
            m.0.insert(format!("/etc/ssh/d{i}.conf"), format!("Include d{}.conf\n", i + 1));
        }
        let e = parse(&m, MAIN).expect_err("too deep");
        assert!(e.contains("16 levels"), "{e}");
    }

    #[test]
    fn match_blocks() {
        let c = cfg(&[
            (
                MAIN,
                "Include m.conf\nPermitRootLogin no\nMatch User admin\n  PermitRootLogin yes\n  Include inner.conf\nMatch all\nX11Forwarding no\n",
            ),
            ("/etc/ssh/m.conf", "Match Address 10.0.0.0/8\nAllowTcpForwarding yes\n"),
            ("/etc/ssh/inner.conf", "MaxAuthTries 10\n"),
        ]);
        assert_eq!(c.get("permitrootlogin").map(Directive::arg), Some("no"));
        assert!(c.get("allowtcpforwarding").is_none(), "a Match in an included file ends with that file");
        assert_eq!(c.get("x11forwarding").map(Directive::arg), Some("no"), "Match all returns to global");
        assert!(c.get("maxauthtries").is_none(), "an Include inside Match belongs to the Match");
        assert_eq!(c.matches.len(), 2);
        let o = c.overrides("permitrootlogin");
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].0.criteria.as_str(), o[0].1.arg()), ("User admin", "yes"));
        assert_eq!(c.overrides("maxauthtries").len(), 1);
        assert_eq!(c.overrides("allowtcpforwarding")[0].0.criteria, "Address 10.0.0.0/8");
    }

    #[test]
    fn line_splitting() {
        assert_eq!(split_line("   # x"), Ok(None));
        assert_eq!(split_line(""), Ok(None));
        assert_eq!(
            split_line("Key=\"a b\" 'c' d\\ e\r"),
            Ok(Some(("Key".to_owned(), vec!["a b".into(), "c".into(), "d e".into()])))
        );
        assert_eq!(split_line("Key = v"), Ok(Some(("Key".to_owned(), vec!["v".into()]))));
        assert!(split_line("Key \"open").is_err());
        assert!(split_line("Key").is_err());
        assert!(split_line("Key # only a comment").is_err());
        assert_eq!(split_args("a\\\"b \"x\\\"y\""), Ok(vec!["a\"b".to_owned(), "x\"y".to_owned()]));
    }

    #[test]
    fn times() {
        assert_eq!(convtime("60"), Some(60));
        assert_eq!(convtime("1m30s"), Some(90));
        assert_eq!(convtime("2H"), Some(7200));
        assert_eq!(convtime("1w"), Some(604_800));
        assert_eq!(convtime("m"), None);
        assert_eq!(convtime("5x"), None);
        assert_eq!(convtime(""), None);
        assert_eq!(convtime("99999999999999999999"), None);
    }
}
