//! A bounded parser of LVM2's metadata text, libdm's config grammar (`libdm/libdm-config.c`):
//! `key = value` assignments and `key { ... }` sections; values are integers, floats, strings
//! (`"..."` with `\"` and `\\` escapes, `'...'` without, or bare words) and flat arrays `[a, b]`
//! (the commas are optional); `#` starts a comment and a NUL byte ends the text.
//!
//! Hostile text is bounded by nesting depth ([`MAX_LVM_CONFIG_DEPTH`]; the recursion is one call
//! per section level and stops there) and by the number of keys and values
//! ([`MAX_LVM_CONFIG_NODES`]). Duplicate keys in one section are refused: lvm2 never writes them
//! and they would make the meaning ambiguous.

use std::collections::HashSet;

use crate::limits::{MAX_LVM_CONFIG_DEPTH, MAX_LVM_CONFIG_NODES};

/// A scalar value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Str(String),
}

/// What a key names.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Value(Value),
    Array(Vec<Value>),
    Section(Section),
}

/// A section: its entries in text order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    pub entries: Vec<(String, Node)>,
}

impl Section {
    /// The node named `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }
    /// The subsection named `key`.
    #[must_use]
    pub fn section(&self, key: &str) -> Option<&Section> {
        match self.get(key)? {
            Node::Section(s) => Some(s),
            _ => None,
        }
    }
    /// The string value of `key`.
    #[must_use]
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Node::Value(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    /// The integer value of `key`.
    #[must_use]
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Node::Value(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }
    /// The array value of `key` (a scalar counts as a one-element array, as in libdm).
    #[must_use]
    pub fn array(&self, key: &str) -> Option<&[Value]> {
        match self.get(key)? {
            Node::Array(a) => Some(a),
            Node::Value(v) => Some(std::slice::from_ref(v)),
            Node::Section(_) => None,
        }
    }
    /// The subsections, in text order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, n)| match n {
            Node::Section(s) => Some((k.as_str(), s)),
            _ => None,
        })
    }
}

/// Why a text does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("metadata text line {line}: {what}")]
    Syntax { line: usize, what: String },
    #[error("metadata text line {line}: sections nested deeper than {limit}")]
    TooDeep { line: usize, limit: usize },
    #[error("metadata text line {line}: more than {limit} keys and values")]
    TooManyNodes { line: usize, limit: usize },
    #[error("metadata text line {line}: duplicate key {key:?}")]
    Duplicate { line: usize, key: String },
}

/// Parse a whole metadata text into its top-level section.
pub fn parse(text: &[u8]) -> Result<Section, ParseError> {
    let mut p = Parser { lex: Lexer { b: text, pos: 0, line: 1 }, nodes: 0 };
    p.section_body(0, true)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Eof,
    SectionBegin,
    SectionEnd,
    ArrayBegin,
    ArrayEnd,
    Comma,
    Eq,
    /// A quoted string (key or value).
    Quoted(String),
    /// An unquoted word: an identifier in key position, a bare string in value position.
    Word(String),
    Int(i64),
    Float(f64),
}

struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
}

impl Lexer<'_> {
    fn peek_byte(&self) -> Option<u8> {
        self.b.get(self.pos).copied().filter(|&c| c != 0)
    }

    fn err(&self, what: impl Into<String>) -> ParseError {
        ParseError::Syntax { line: self.line, what: what.into() }
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek_byte() {
            if c == b'#' {
                while self.peek_byte().is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
            } else if c.is_ascii_whitespace() {
                if c == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The next token; `value` says whether a value may start here (after `=`, `[` or `,`), which
    /// decides between a number or bare string and an identifier, as in libdm.
    fn next(&mut self, value: bool) -> Result<Token, ParseError> {
        self.skip_space();
        let Some(c) = self.peek_byte() else { return Ok(Token::Eof) };
        let single = match c {
            b'{' => Some(Token::SectionBegin),
            b'}' => Some(Token::SectionEnd),
            b'[' if value => Some(Token::ArrayBegin),
            b']' => Some(Token::ArrayEnd),
            b',' => Some(Token::Comma),
            b'=' => Some(Token::Eq),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return Ok(t);
        }
        match c {
            b'"' => self.quoted(true),
            b'\'' => self.quoted(false),
            b'0'..=b'9' | b'+' | b'-' | b'.' if value => self.number(),
            _ => Ok(Token::Word(self.word(value))),
        }
    }

    fn quoted(&mut self, escapes: bool) -> Result<Token, ParseError> {
        let quote = self.peek_byte().unwrap_or(b'"');
        let line = self.line;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek_byte() else {
                return Err(ParseError::Syntax { line, what: "unterminated string".into() });
            };
            self.pos += 1;
            if c == quote {
                break;
            }
            if c == b'\n' {
                self.line += 1;
            }
            if escapes
                && c == b'\\'
                && let Some(n @ (b'"' | b'\\')) = self.peek_byte()
            {
                out.push(n);
                self.pos += 1;
                continue;
            }
            out.push(c);
        }
        Ok(Token::Quoted(String::from_utf8_lossy(&out).into_owned()))
    }

    fn number(&mut self) -> Result<Token, ParseError> {
        let start = self.pos;
        let mut float = self.peek_byte() == Some(b'.');
        self.pos += 1;
        while let Some(c) = self.peek_byte() {
            if c.is_ascii_digit() {
                self.pos += 1;
            } else if c == b'.' && !float {
                float = true;
                self.pos += 1;
            } else {
                break;
            }
        }
        let raw = self.b.get(start..self.pos).unwrap_or_default();
        let s = std::str::from_utf8(raw).map_err(|_| self.err("bad number"))?;
        if !s.bytes().any(|c| c.is_ascii_digit()) {
            return Err(self.err(format!("{s:?} is not a number")));
        }
        if float {
            return s.parse::<f64>().map(Token::Float).map_err(|_| self.err(format!("{s:?} is not a number")));
        }
        // strtoll(.., 0): a leading 0 means octal.
        let (neg, digits) = match s.as_bytes().first() {
            Some(b'-') => (true, s.get(1..).unwrap_or_default()),
            Some(b'+') => (false, s.get(1..).unwrap_or_default()),
            _ => (false, s),
        };
        let radix = if digits.len() > 1 && digits.starts_with('0') { 8 } else { 10 };
        let magnitude =
            i128::from_str_radix(digits, radix).map_err(|_| self.err(format!("{s:?} is not an integer")))?;
        let v = if neg { -magnitude } else { magnitude };
        i64::try_from(v).map(Token::Int).map_err(|_| self.err(format!("integer {s} out of range")))
    }

    /// An identifier or bare string: up to whitespace, `#`, `=`, `{`, `}` (and, for values, `,`
    /// and `]`, so a bare word in an array ends where the array does).
    fn word(&mut self, value: bool) -> String {
        let start = self.pos;
        while let Some(c) = self.peek_byte() {
            let stop = c.is_ascii_whitespace()
                || matches!(c, b'#' | b'=' | b'{' | b'}')
                || (value && matches!(c, b',' | b']'));
            if stop {
                break;
            }
            self.pos += 1;
        }
        String::from_utf8_lossy(self.b.get(start..self.pos).unwrap_or_default()).into_owned()
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    nodes: usize,
}

impl Parser<'_> {
    fn count(&mut self) -> Result<(), ParseError> {
        self.nodes += 1;
        if self.nodes > MAX_LVM_CONFIG_NODES {
            return Err(ParseError::TooManyNodes { line: self.lex.line, limit: MAX_LVM_CONFIG_NODES });
        }
        Ok(())
    }

    /// Entries up to `}` (or the end of the text at the top level). Recursion: one call per
    /// nesting level, refused past [`MAX_LVM_CONFIG_DEPTH`].
    fn section_body(&mut self, depth: usize, top: bool) -> Result<Section, ParseError> {
        if depth > MAX_LVM_CONFIG_DEPTH {
            return Err(ParseError::TooDeep { line: self.lex.line, limit: MAX_LVM_CONFIG_DEPTH });
        }
        let mut section = Section::default();
        let mut keys = HashSet::new();
        loop {
            let key = match self.lex.next(false)? {
                Token::Eof if top => return Ok(section),
                Token::Eof => return Err(self.lex.err("the text ends inside a section")),
                Token::SectionEnd if !top => return Ok(section),
                Token::Word(k) | Token::Quoted(k) => k,
                t => return Err(self.lex.err(format!("expected a key, found {}", describe(&t)))),
            };
            self.count()?;
            let line = self.lex.line;
            let node = match self.lex.next(false)? {
                Token::SectionBegin => Node::Section(self.section_body(depth + 1, false)?),
                Token::Eq => self.value()?,
                t => return Err(self.lex.err(format!("expected '=' or '{{' after {key:?}, found {}", describe(&t)))),
            };
            if !keys.insert(key.clone()) {
                return Err(ParseError::Duplicate { line, key });
            }
            section.entries.push((key, node));
        }
    }

    fn value(&mut self) -> Result<Node, ParseError> {
        match self.lex.next(true)? {
            Token::ArrayBegin => {
                let mut items = Vec::new();
                loop {
                    match self.lex.next(true)? {
                        Token::ArrayEnd => return Ok(Node::Array(items)),
                        Token::Comma if !items.is_empty() => continue,
                        t => {
                            let v = scalar(t).ok_or_else(|| self.lex.err("expected a value in an array"))?;
                            self.count()?;
                            items.push(v);
                        }
                    }
                }
            }
            t => scalar(t).map(Node::Value).ok_or_else(|| self.lex.err("expected a value after '='")),
        }
    }
}

fn scalar(t: Token) -> Option<Value> {
    match t {
        Token::Int(i) => Some(Value::Int(i)),
        Token::Float(f) => Some(Value::Float(f)),
        Token::Quoted(s) | Token::Word(s) => Some(Value::Str(s)),
        _ => None,
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Eof => "the end of the text".into(),
        Token::SectionBegin => "'{'".into(),
        Token::SectionEnd => "'}'".into(),
        Token::ArrayBegin => "'['".into(),
        Token::ArrayEnd => "']'".into(),
        Token::Comma => "','".into(),
        Token::Eq => "'='".into(),
        Token::Quoted(s) | Token::Word(s) => format!("{s:?}"),
        Token::Int(i) => i.to_string(),
        Token::Float(f) => f.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `vgcfgbackup` (lvm2 2.03.16) for a VG with linear, multi-segment, striped, RAID1,
    /// thin and snapshot LVs (the last three restored with `vgcfgrestore --force`).
    const BACKUP: &str = include_str!("testdata/vgcfgbackup-full.vg");

    #[test]
    fn real_vgcfgbackup_text_parses_with_its_values() {
        let top = parse(BACKUP.as_bytes()).expect("parses");
        assert_eq!(top.str("contents"), Some("Text Format Volume Group"));
        assert_eq!(top.int("version"), Some(1));
        let vg = top.section("vgx").expect("vg section");
        assert_eq!(vg.str("id"), Some("XHk6JP-eI0D-r1QD-7A6u-nKpA-wGEV-N3HmPo"));
        assert_eq!(vg.int("seqno"), Some(6));
        assert_eq!(vg.int("extent_size"), Some(8192));
        let status: Vec<&Value> = vg.array("status").expect("status").iter().collect();
        assert_eq!(status, [&Value::Str("RESIZEABLE".into()), &Value::Str("READ".into()), &Value::Str("WRITE".into())]);
        assert_eq!(vg.array("flags"), Some(&[][..]));
        let pv1 = vg.section("physical_volumes").and_then(|p| p.section("pv1")).expect("pv1");
        assert_eq!(pv1.str("device"), Some("/dev/loop1"));
        assert_eq!(
            (pv1.int("pe_start"), pv1.int("pe_count"), pv1.int("dev_size")),
            (Some(2048), Some(15), Some(131072))
        );
        let lvs = vg.section("logical_volumes").expect("lvs");
        let names: Vec<&str> = lvs.sections().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "lin",
                "other",
                "str",
                "r1",
                "tp",
                "thin1",
                "snap",
                "r1_rmeta_0",
                "r1_rimage_0",
                "r1_rmeta_1",
                "r1_rimage_1",
                "tp_tmeta",
                "tp_tdata",
                "lvol0_pmspare",
                "snapshot0"
            ]
        );
        let seg = lvs.section("str").and_then(|l| l.section("segment1")).expect("str segment");
        assert_eq!(seg.int("stripe_size"), Some(128));
        assert_eq!(
            seg.array("stripes"),
            Some(&[Value::Str("pv0".into()), Value::Int(6), Value::Str("pv1".into()), Value::Int(0)][..])
        );
        let lin = lvs.section("lin").expect("lin");
        assert_eq!(lin.int("segment_count"), Some(2));
        assert_eq!(lin.section("segment2").and_then(|s| s.int("start_extent")), Some(2));
    }

    #[test]
    fn the_on_disk_form_without_indentation_or_comments_and_a_trailing_nul_parses() {
        let text = b"vgx {\nid = \"a\"\nseqno = 3\nlogical_volumes {\n\nl {\nsegment1 {\nstripes = [\n\"pv0\", 0\n]\n}\n}\n}\n}\n# Generated by LVM2\ncontents = \"Text Format Volume Group\"\n\0\0garbage {";
        let top = parse(text).expect("parses");
        let seg = top
            .section("vgx")
            .and_then(|v| v.section("logical_volumes"))
            .and_then(|l| l.section("l"))
            .and_then(|l| l.section("segment1"))
            .expect("segment");
        assert_eq!(seg.array("stripes"), Some(&[Value::Str("pv0".into()), Value::Int(0)][..]));
        assert_eq!(top.entries.len(), 2);
    }

    #[test]
    fn scalars_follow_libdm() {
        let top = parse(
            br#"a = -12 b = 010 c = 1.5 d = 'a\"b' e = "q\"\\z\n" f = bare g = [1 2, "x",] h = [] i = +7 "quoted key" = 1"#,
        )
        .expect("parses");
        assert_eq!(top.int("a"), Some(-12));
        assert_eq!(top.int("b"), Some(8), "strtoll base 0: a leading 0 is octal");
        assert_eq!(top.get("c"), Some(&Node::Value(Value::Float(1.5))));
        assert_eq!(top.str("d"), Some("a\\\"b"), "no escapes in single quotes");
        assert_eq!(top.str("e"), Some("q\"\\z\\n"));
        assert_eq!(top.str("f"), Some("bare"));
        assert_eq!(top.array("g"), Some(&[Value::Int(1), Value::Int(2), Value::Str("x".into())][..]));
        assert_eq!(top.array("h"), Some(&[][..]));
        assert_eq!(top.int("i"), Some(7));
        assert_eq!(top.int("quoted key"), Some(1));
    }

    #[test]
    fn hostile_texts_get_errors_not_panics() {
        let deep = "a {".repeat(100_000);
        assert!(matches!(parse(deep.as_bytes()), Err(ParseError::TooDeep { limit: MAX_LVM_CONFIG_DEPTH, .. })));
        let wide: String = (0..=MAX_LVM_CONFIG_NODES).map(|i| format!("k{i} = {i}\n")).collect();
        assert!(matches!(parse(wide.as_bytes()), Err(ParseError::TooManyNodes { .. })));
        let array = format!("a = [{}]", "1,".repeat(MAX_LVM_CONFIG_NODES + 1));
        assert!(matches!(parse(array.as_bytes()), Err(ParseError::TooManyNodes { .. })));
        assert!(matches!(parse(b"a = 99999999999999999999"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse(b"a = \"open"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse(b"a { b = 1"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse(b"a = 1 }"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse(b"a = [[1]]"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse(b"a = ."), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse(b"a b"), Err(ParseError::Syntax { .. })));
        assert_eq!(parse(b"x {\na = 1\na = 2\n}"), Err(ParseError::Duplicate { line: 3, key: "a".into() }));
        assert_eq!(parse(b"").map(|s| s.entries.len()), Ok(0));
        assert!(parse(&[0xff, b'=', b'1']).is_ok(), "non-UTF-8 keys are kept lossily");
    }
}
