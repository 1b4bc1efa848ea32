//! Go build info: the modules, build settings and toolchain version the Go linker records in every
//! module-aware executable (`go version -m` shows the same), read from an ELF file whose headers
//! [`super::elf`] has read.
//!
//! This module owns finding the build info blob (the `.go.buildinfo` section, or without section
//! headers the first writable `PT_LOAD` segment, searched for the 16-byte-aligned magic in bounded
//! chunks), decoding both of its layouts (Go ≥ 1.18 inline uvarint-prefixed strings; older
//! pointer-to-string-header form), parsing the module text ([`parse_modinfo`]) and turning it into
//! packages ([`packages`]) the way Trivy's Go binary parser reports them (docs/references.md,
//! "Application inventory"): the main module as the application, each dependency module (a replaced one as its
//! replacement) as a library, and the Go toolchain as the `stdlib` package.

use std::collections::BTreeMap;

use super::elf::ElfFile;
use super::{AppEcosystem, AppError, AppPackage, AppRole, clean};
use crate::fs::FileRead;
use crate::purl;

/// The build info magic (Go `debug/buildinfo`), at the start of the 32-byte header.
const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// Size of the build info header (Go `debug/buildinfo`: magic, pointer size, flags, two pointers).
const HEADER_SIZE: u64 = 32;
/// The header's alignment in memory (Go `debug/buildinfo`, `buildInfoAlign`).
const ALIGN: u64 = 16;
/// Flags bit 0: big-endian pointers (pointer layout only).
const FLAG_BIG_ENDIAN: u8 = 1;
/// Flags bit 1: version and module text inline after the header (Go ≥ 1.18).
const FLAG_INLINE: u8 = 2;
/// Longest uvarint (Go `encoding/binary.MaxVarintLen64`).
const MAX_VARINT: u64 = 10;
/// Length of each sentinel around the module text (Go `runtime/debug` `modinfo` framing).
const SENTINEL: usize = 16;

/// Longest version or module string read (docs/references.md): the module text of a
/// binary with 1,000 dependencies is about 150 KiB.
pub const MAX_STRING: u64 = 1 << 20;
/// Bytes read per step of the magic search (Go reads 1 MiB chunks; the blob sits at the start of
/// the data, so a smaller first read costs less on lazily loaded volumes).
const SEARCH_CHUNK: u64 = 64 << 10;
/// Most bytes searched for the magic in one file (docs/references.md).
pub const MAX_SEARCH: u64 = 16 << 20;

/// The `-ldflags -X` variable packages Trivy prefers for the main module's version (its
/// `defaultPrefixes`).
const LDFLAGS_PREFIXES: [&str; 4] = ["main", "common", "version", "cmd"];

/// A module line of the build info (`mod`, `dep`, or `=>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub sum: String,
    /// The `=>` line after it: what replaced it.
    pub replace: Option<Box<Module>>,
}

/// The decoded build info of one Go executable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildInfo {
    /// As recorded: `go1.22.1`, `go1.22.1 X:loopvar`.
    pub go_version: String,
    /// The main package's import path (`path` line).
    pub path: String,
    /// The main module (`mod` line); absent for `go run`/`command-line-arguments` builds and the
    /// toolchain's own binaries.
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` lines, in order, values unquoted.
    pub settings: Vec<(String, String)>,
}

/// The Go packages recorded in `elf` (read from `file` at `path`); empty for a non-Go executable.
///
/// # Errors
///
/// The build info is damaged, points outside the file or exceeds a bound.
pub fn read(elf: &ElfFile, file: &mut dyn FileRead, path: &str) -> Result<Vec<AppPackage>, AppError> {
    Ok(match read_build_info(elf, file, path)? {
        Some(info) => packages(&info, path),
        None => Vec::new(),
    })
}

/// The build info of `elf`, `None` when it is not a Go executable.
///
/// The blob is searched in the `.go.buildinfo` section; only when the file has no section headers
/// (stripped with `sstrip` or built without them) in the first writable, non-executable `PT_LOAD`
/// segment, as Go's `debug/buildinfo` does — a binary with sections but no `.go.buildinfo` is not
/// searched, so a non-Go executable costs only its headers.
///
/// # Errors
///
/// The blob is damaged, points outside the file or exceeds a bound.
pub fn read_build_info(elf: &ElfFile, file: &mut dyn FileRead, path: &str) -> Result<Option<BuildInfo>, AppError> {
    let (start, size) = if let Some(s) = elf.section(".go.buildinfo") {
        (s.addr, s.size)
    } else if elf.sections.iter().all(|s| s.name.is_empty()) {
        match elf.first_writable_load() {
            Some(seg) => (seg.vaddr, seg.memsz),
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    let Some(addr) = search_magic(elf, file, path, start, size)? else {
        return Ok(None);
    };
    let header = elf.read_vaddr(file, path, addr, HEADER_SIZE)?;
    let (Some(&ptr_size), Some(&flags)) = (header.get(14), header.get(15)) else {
        return Err(bad(path, "header cut short by the end of its segment"));
    };
    let (version, modinfo) = if flags & FLAG_INLINE != 0 {
        let body = addr.checked_add(HEADER_SIZE).ok_or_else(|| bad(path, "address overflow"))?;
        let (version, next) = read_varint_string(elf, file, path, body)?;
        let (modinfo, _) = read_varint_string(elf, file, path, next)?;
        (version, modinfo)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(bad(path, format!("pointer size {ptr_size}")));
        }
        let big = flags & FLAG_BIG_ENDIAN != 0;
        let n = usize::from(ptr_size);
        let (Some(v), Some(m)) =
            (header.get(16..16 + n).map(|b| pointer(b, big)), header.get(16 + n..16 + 2 * n).map(|b| pointer(b, big)))
        else {
            return Err(bad(path, "header cut short by the end of its segment"));
        };
        (read_pointer_string(elf, file, path, v, n, big)?, read_pointer_string(elf, file, path, m, n, big)?)
    };
    if version.is_empty() {
        return Ok(None);
    }
    // The sentinels are binary: strip them before reading the text as UTF-8.
    let text = String::from_utf8_lossy(strip_sentinels(&modinfo));
    let mut info = parse_modinfo(&text).map_err(|e| bad(path, e))?;
    info.go_version = String::from_utf8_lossy(&version).into_owned();
    Ok(Some(info))
}

fn bad(path: &str, what: impl std::fmt::Display) -> AppError {
    AppError::new(path, format!("Go build info: {what}"))
}

/// The address of the first 16-byte-aligned magic in `[start, start + size)`, reading at most
/// [`MAX_SEARCH`] bytes; `None` when there is none or the range is not file data.
fn search_magic(
    elf: &ElfFile,
    file: &mut dyn FileRead,
    path: &str,
    start: u64,
    size: u64,
) -> Result<Option<u64>, AppError> {
    let end = start.saturating_add(size.min(MAX_SEARCH));
    let mut at = start;
    while at < end {
        let Some((_, avail)) = elf.vaddr_to_offset(at) else {
            // The blob's range is not backed by the file: not a Go executable we can read.
            return Ok(None);
        };
        let want = SEARCH_CHUNK.min(end - at).min(avail);
        let chunk = elf.read_vaddr(file, path, at, want)?;
        let mut from = 0usize;
        while let Some(i) = chunk.get(from..).and_then(|rest| find(rest, MAGIC)) {
            let pos = from + i;
            let abs = at.saturating_add(pos as u64);
            if abs.is_multiple_of(ALIGN) && end - abs >= HEADER_SIZE {
                return Ok(Some(abs));
            }
            from = pos + 1;
        }
        if at.saturating_add(want) >= end || want == avail {
            break; // the end of the range, or of the segment's file data
        }
        // Overlap the next chunk so a magic across the boundary is still found.
        at = at.saturating_add(want.saturating_sub(MAGIC.len() as u64 - 1).max(1));
    }
    Ok(None)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn pointer(bytes: &[u8], big: bool) -> u64 {
    let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
    if big { bytes.iter().fold(0, fold) } else { bytes.iter().rev().fold(0, fold) }
}

/// A uvarint-prefixed string at `addr`; returns it and the address after it.
fn read_varint_string(
    elf: &ElfFile,
    file: &mut dyn FileRead,
    path: &str,
    addr: u64,
) -> Result<(Vec<u8>, u64), AppError> {
    let head = elf.read_vaddr(file, path, addr, MAX_VARINT)?;
    let (len, used) = uvarint(&head).ok_or_else(|| bad(path, "bad string length varint"))?;
    if len > MAX_STRING {
        return Err(bad(path, format!("string of {len} bytes exceeds the {MAX_STRING}-byte bound")));
    }
    let data_addr = addr.checked_add(used).ok_or_else(|| bad(path, "address overflow"))?;
    let data = if len == 0 { Vec::new() } else { elf.read_vaddr(file, path, data_addr, len)? };
    if (data.len() as u64) < len {
        return Err(bad(path, format!("string of {len} bytes runs past its segment")));
    }
    let next = data_addr.checked_add(len).ok_or_else(|| bad(path, "address overflow"))?;
    Ok((data, next))
}

/// The string whose `{data pointer, length}` header is at `addr` (pointer layout).
fn read_pointer_string(
    elf: &ElfFile,
    file: &mut dyn FileRead,
    path: &str,
    addr: u64,
    ptr_size: usize,
    big: bool,
) -> Result<Vec<u8>, AppError> {
    let header = elf.read_vaddr(file, path, addr, 2 * ptr_size as u64)?;
    let (Some(p), Some(l)) = (header.get(..ptr_size), header.get(ptr_size..2 * ptr_size)) else {
        return Err(bad(path, "string header runs past its segment"));
    };
    let (data_addr, len) = (pointer(p, big), pointer(l, big));
    if len > MAX_STRING {
        return Err(bad(path, format!("string of {len} bytes exceeds the {MAX_STRING}-byte bound")));
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    let data = elf.read_vaddr(file, path, data_addr, len)?;
    if (data.len() as u64) < len {
        return Err(bad(path, format!("string of {len} bytes runs past its segment")));
    }
    Ok(data)
}

/// Decode a little-endian base-128 varint (Go `encoding/binary.Uvarint`): value and bytes used.
fn uvarint(buf: &[u8]) -> Option<(u64, u64)> {
    let mut x: u64 = 0;
    for (i, b) in buf.iter().enumerate().take(MAX_VARINT as usize) {
        let low = u64::from(b & 0x7f);
        if i == 9 && *b > 1 {
            return None; // overflows 64 bits
        }
        x |= low << (7 * i);
        if b & 0x80 == 0 {
            return Some((x, i as u64 + 1));
        }
    }
    None
}

/// The module text between its two 16-byte sentinels; empty when the framing is absent (as Go
/// `debug/buildinfo` does: the text is kept only when `len ≥ 33` and byte `len-17` is a newline).
fn strip_sentinels(b: &[u8]) -> &[u8] {
    if b.len() > 2 * SENTINEL && b.get(b.len() - SENTINEL - 1) == Some(&b'\n') {
        b.get(SENTINEL..b.len() - SENTINEL).unwrap_or_default()
    } else {
        &[]
    }
}

/// Parse the module text (`path`, `mod`, `dep`, `=>`, `build` lines, tab-separated), with Go's
/// `runtime/debug.ParseBuildInfo` rules: `mod`/`dep` take 2 or 3 columns, `=>` exactly 3 and
/// replaces the module on the line before; `build` keys and values may be Go-quoted; a last line
/// without a newline is ignored; unknown lines are skipped. The Go version is left empty.
///
/// # Errors
///
/// A line breaks those rules.
pub fn parse_modinfo(text: &str) -> Result<BuildInfo, String> {
    let mut info = BuildInfo::default();
    // Where the previous module line went: None, the main module, or a dependency index.
    enum Last {
        None,
        Main,
        Dep(usize),
    }
    let mut last = Last::None;
    let mut rest = text;
    let mut line_no = 0usize;
    while let Some((line, tail)) = rest.split_once('\n') {
        rest = tail;
        line_no += 1;
        let err = |what: &str| format!("module text line {line_no}: {what}");
        if let Some(p) = line.strip_prefix("path\t") {
            info.path = p.to_owned();
        } else if let Some(m) = line.strip_prefix("mod\t") {
            info.main = Some(module_line(m).map_err(|e| err(&e))?);
            last = Last::Main;
        } else if let Some(d) = line.strip_prefix("dep\t") {
            info.deps.push(module_line(d).map_err(|e| err(&e))?);
            last = Last::Dep(info.deps.len() - 1);
        } else if let Some(r) = line.strip_prefix("=>\t") {
            let cols: Vec<&str> = r.split('\t').collect();
            let [p, v, s] = cols.as_slice() else {
                return Err(err(&format!("expected 3 columns for replacement; got {}", cols.len())));
            };
            let rep = Some(Box::new(Module {
                path: (*p).to_owned(),
                version: (*v).to_owned(),
                sum: (*s).to_owned(),
                replace: None,
            }));
            let target = match last {
                Last::None => None,
                Last::Main => info.main.as_mut(),
                Last::Dep(i) => info.deps.get_mut(i),
            };
            target.ok_or_else(|| err("replacement with no module on previous line"))?.replace = rep;
            last = Last::None;
        } else if let Some(kv) = line.strip_prefix("build\t") {
            info.settings.push(build_line(kv).map_err(|e| err(&e))?);
        }
    }
    Ok(info)
}

fn module_line(cols: &str) -> Result<Module, String> {
    let cols: Vec<&str> = cols.split('\t').collect();
    match cols.as_slice() {
        [p, v] => Ok(Module { path: (*p).to_owned(), version: (*v).to_owned(), ..Module::default() }),
        [p, v, s] => {
            Ok(Module { path: (*p).to_owned(), version: (*v).to_owned(), sum: (*s).to_owned(), replace: None })
        }
        _ => Err(format!("expected 2 or 3 columns; got {}", cols.len())),
    }
}

/// A `build` line's `key=value`, either part possibly Go-quoted.
fn build_line(kv: &str) -> Result<(String, String), String> {
    let (key, raw_value) = match kv.as_bytes().first() {
        None => return Err("build line missing '='".into()),
        Some(b'=') => return Err("build line with missing key".into()),
        Some(b'"' | b'`') => {
            let end = quoted_prefix_len(kv).ok_or("invalid quoted key in build line")?;
            let (raw_key, after) = kv.split_at(end);
            let key = unquote(raw_key).ok_or("invalid quoted key in build line")?;
            let v = after.strip_prefix('=').ok_or("build line missing '=' after quoted key")?;
            (key, v)
        }
        Some(_) => {
            let (k, v) = kv.split_once('=').ok_or("build line missing '='")?;
            (k.to_owned(), v)
        }
    };
    let value = match raw_value.as_bytes().first() {
        Some(b'"' | b'`') => unquote(raw_value).ok_or("invalid quoted value in build line")?,
        _ => raw_value.to_owned(),
    };
    Ok((key, value))
}

/// Length of the Go quoted string at the start of `s` (Go `strconv.QuotedPrefix`).
fn quoted_prefix_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let q = *b.first()?;
    let mut i = 1;
    while let Some(&c) = b.get(i) {
        if c == q {
            return Some(i + 1);
        }
        if q == b'"' && c == b'\\' {
            i += 1;
        }
        if q == b'"' && c == b'\n' {
            return None;
        }
        i += 1;
    }
    None
}

/// Unquote a Go double-quoted or back-quoted string (Go `strconv.Unquote`): `None` when `s` is not
/// exactly one valid quoted string. Escapes `\a \b \f \n \r \t \v \\ \' \" \xNN \NNN \uNNNN
/// \UNNNNNNNN`; bytes that are not UTF-8 become U+FFFD.
pub fn unquote(s: &str) -> Option<String> {
    if let Some(inner) = s.strip_prefix('`') {
        let inner = inner.strip_suffix('`')?;
        if inner.contains('`') {
            return None;
        }
        return Some(inner.replace('\r', ""));
    }
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\n' => return None,
            '\\' => {
                let e = chars.next()?;
                let simple = match e {
                    'a' => Some(7u8),
                    'b' => Some(8),
                    'f' => Some(12),
                    'n' => Some(b'\n'),
                    'r' => Some(b'\r'),
                    't' => Some(b'\t'),
                    'v' => Some(11),
                    '\\' => Some(b'\\'),
                    '\'' => return None, // `\'` is not valid in a double-quoted Go string
                    '"' => Some(b'"'),
                    _ => None,
                };
                if let Some(b) = simple {
                    out.push(b);
                    continue;
                }
                let hex = |n: usize, chars: &mut std::str::Chars<'_>| -> Option<u32> {
                    let mut v = 0u32;
                    for _ in 0..n {
                        v = v.checked_mul(16)? + chars.next()?.to_digit(16)?;
                    }
                    Some(v)
                };
                match e {
                    'x' => out.push(u8::try_from(hex(2, &mut chars)?).ok()?),
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            v = v * 8 + chars.next()?.to_digit(8)?;
                        }
                        out.push(u8::try_from(v).ok()?);
                    }
                    'u' | 'U' => {
                        let ch = char::from_u32(hex(if e == 'u' { 4 } else { 8 }, &mut chars)?)?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return None,
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The stdlib version of a Go version string: `go1.22.1 X:loopvar` → `v1.22.1`; cut at the first
/// space and at `-X:` (Go ≥ 1.26 spells experiments `go1.26.0-X:nodwarf5`), `go` removed, `v`
/// added (Trivy's stdlib version).
#[must_use]
pub fn stdlib_version(go_version: &str) -> String {
    let v = go_version.strip_prefix("go").unwrap_or(go_version);
    let v = v.split(' ').next().unwrap_or_default();
    let v = v.split("-X:").next().unwrap_or_default();
    format!("v{v}")
}

/// A build setting's value.
fn setting<'a>(info: &'a BuildInfo, key: &str) -> Option<&'a str> {
    info.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The main module's version.
///
/// The rule, after Trivy's Go binary parser (its `main-version-via-ldflags.elf` fixture gives
/// `v1.0.0` from `-ldflags="-w -X main.version=v1.0.0"` although the binary also records
/// `vcs.revision`), then Syft's pseudo-version fallback:
///
/// 1. the recorded version, `(devel)` read as empty;
/// 2. when that is empty or a `v0.0.0` pseudo-version, a version from the `-ldflags` setting
///    ([`ldflags_version`]), if one is found, given its `v` when written without (Syft's form;
///    Trivy keeps it as written);
/// 3. when still empty, a pseudo-version `v0.0.0-YYYYMMDDHHMMSS-<first 12 of vcs.revision>` from
///    `vcs.time` and `vcs.revision`;
/// 4. else empty — never `(devel)`.
#[must_use]
pub fn main_version(info: &BuildInfo, main: &Module) -> String {
    let mut version = devel_empty(&main.version);
    if version.is_empty() || version.starts_with("v0.0.0") {
        let from_ldflags = setting(info, "-ldflags").map(|f| ldflags_version(&main.path, f)).unwrap_or_default();
        if !from_ldflags.is_empty() {
            // A Go module version always carries its `v` (`x/mod/semver`); projects often set
            // `-X main.version=1.18.1` without it (Syft's own binary does). Written with the `v`,
            // as Syft reports it, so the purl is the module's canonical one.
            version = if from_ldflags.starts_with('v') { from_ldflags } else { format!("v{from_ldflags}") };
        }
    }
    if version.is_empty() {
        version = vcs_pseudo_version(info).unwrap_or_default();
    }
    version
}

fn devel_empty(v: &str) -> String {
    if v == "(devel)" { String::new() } else { v.to_owned() }
}

/// `v0.0.0-<vcs.time as YYYYMMDDHHMMSS UTC>-<12 hex of vcs.revision>`, when both are recorded.
fn vcs_pseudo_version(info: &BuildInfo) -> Option<String> {
    let rev = setting(info, "vcs.revision")?;
    let time: jiff::Timestamp = setting(info, "vcs.time")?.parse().ok()?;
    if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let short = rev.get(..12).unwrap_or(rev);
    Some(format!("v0.0.0-{}-{short}", time.strftime("%Y%m%d%H%M%S")))
}

/// The main module's version from a `-ldflags` value, as Trivy chooses it.
///
/// The value is split like a shell command line; `-X name=value` (also `-X=name=value`,
/// `-Xname=value`) assignments are collected (a later assignment to the same name wins; other
/// flags are skipped, and an unknown flag without `=` swallows a following word that does not start
/// with `-`, as Go's `pflag` does). An assignment counts when its name ends with `.version` or `.ver`
/// (any case) and its value is a semantic version with or without the `v` (Go `x/mod/semver`
/// rules). Candidates fall into three classes, tried in order: names under `<module>/cmd/`; names
/// whose package (the last path element before the `.`) is `main`, `common`, `version` or `cmd`
/// (any case); any other. The first class with candidates decides: one candidate gives its value as
/// written, more than one gives empty (ambiguous). Nothing found gives empty.
#[must_use]
pub fn ldflags_version(module: &str, ldflags: &str) -> String {
    let Some(words) = shell_words(ldflags) else {
        return String::new();
    };
    let mut assigned: BTreeMap<String, String> = BTreeMap::new();
    let mut i = 0;
    while let Some(w) = words.get(i) {
        i += 1;
        if w == "--" {
            break;
        }
        let value = if w == "-X" {
            i += 1;
            match words.get(i - 1) {
                Some(v) => v.as_str(),
                None => return String::new(), // flag needs an argument: pflag fails the parse
            }
        } else if let Some(v) = w.strip_prefix("-X") {
            if w.starts_with("--") {
                continue;
            }
            v.strip_prefix('=').unwrap_or(v)
        } else {
            if w.starts_with('-') && !w.contains('=') && words.get(i).is_some_and(|n| !n.starts_with('-')) {
                i += 1; // unknown flag taking the next word as its value
            }
            continue;
        };
        let Some(pairs) = string_to_string(value) else {
            return String::new();
        };
        assigned.extend(pairs);
    }
    let mut classes: [Vec<&str>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let cmd_prefix = format!("{module}/cmd/");
    for (key, val) in &assigned {
        let key = key.trim_start_matches('\'');
        let val = val.trim_end_matches('\'');
        let lower = key.to_lowercase();
        if !(lower.ends_with(".version") || lower.ends_with(".ver"))
            || !(is_semver(val) || is_semver(&format!("v{val}")))
        {
            continue;
        }
        let last = key.rsplit_once('/').map_or(key, |(_, l)| l);
        let package = last.split('.').next().unwrap_or_default().to_lowercase();
        let class = if key.starts_with(&cmd_prefix) {
            0
        } else if LDFLAGS_PREFIXES.contains(&package.as_str()) {
            1
        } else {
            2
        };
        if let Some(c) = classes.get_mut(class) {
            c.push(val);
        }
    }
    match classes.iter().find(|c| !c.is_empty()).map(Vec::as_slice) {
        Some([one]) => (*one).to_owned(),
        _ => String::new(),
    }
}

/// pflag's string-to-string value: one `k=v` (surrounding `"` trimmed), or several separated by
/// commas (pflag reads them as one CSV record; quoting inside is not handled here).
fn string_to_string(value: &str) -> Option<Vec<(String, String)>> {
    let pairs: Vec<&str> = match value.matches('=').count() {
        0 => return None,
        1 => vec![value.trim_matches('"')],
        _ => value.split(',').collect(),
    };
    pairs.into_iter().map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))).collect()
}

/// Split a command line like a POSIX shell (single quotes literal, double quotes with backslash
/// escapes, backslash escapes outside quotes); `None` on an unterminated quote.
fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            '\n' => {}
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Go `golang.org/x/mod/semver.IsValid`: `vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`, numbers
/// without leading zeros, prerelease and build only after a full `MAJOR.MINOR.PATCH`.
#[must_use]
pub fn is_semver(v: &str) -> bool {
    fn num(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    }
    fn idents(s: &str, prerelease: bool) -> bool {
        s.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !(prerelease && id.bytes().all(|b| b.is_ascii_digit()) && id.len() > 1 && id.starts_with('0'))
        })
    }
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let (core, build) = match rest.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (rest, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|p| num(p)) {
        return false;
    }
    if (pre.is_some() || build.is_some()) && parts.len() != 3 {
        return false;
    }
    pre.is_none_or(|p| idents(p, true)) && build.is_none_or(|b| idents(b, false))
}

fn go_package(name: &str, version: &str, role: AppRole, location: &str) -> AppPackage {
    let (name, version) = (clean(name), clean(version));
    let purl = purl::for_app(AppEcosystem::Golang, &name, &version);
    AppPackage::new(AppEcosystem::Golang, &name, &version, purl, role, location)
}

/// The packages of one binary's build info, found at `location`: the `stdlib` package (the Go
/// version), each dependency module as a library (a replaced one as its replacement, with the
/// original in the property `go.replaces` as `path@version`; `(devel)` versions empty; empty paths
/// skipped as Trivy does), and, when a `mod` line names it, the main module as the application
/// with its version from [`main_version`], its properties `go.version` (as recorded) and
/// `go.build.<key>` for each build setting, and `depends_on` the sorted purls of all the others.
#[must_use]
pub fn packages(info: &BuildInfo, location: &str) -> Vec<AppPackage> {
    let mut out = vec![go_package("stdlib", &stdlib_version(&info.go_version), AppRole::Stdlib, location)];
    for dep in info.deps.iter().filter(|d| !d.path.is_empty()) {
        let m = dep.replace.as_deref().unwrap_or(dep);
        let mut p = go_package(&m.path, &devel_empty(&m.version), AppRole::Library, location);
        if dep.replace.is_some() {
            let original =
                if dep.version.is_empty() { dep.path.clone() } else { format!("{}@{}", dep.path, dep.version) };
            p.properties.push(("go.replaces".to_owned(), clean(&original)));
        }
        out.push(p);
    }
    if let Some(main) = info.main.as_ref().filter(|m| !m.path.is_empty()) {
        let mut app = go_package(&main.path, &main_version(info, main), AppRole::Application, location);
        let mut deps: Vec<String> = out.iter().map(|p| p.purl.clone()).collect();
        deps.sort();
        deps.dedup();
        app.depends_on = deps;
        let mut props: Vec<(String, String)> =
            info.settings.iter().map(|(k, v)| (clean(&format!("go.build.{k}")), clean(v))).collect();
        props.push(("go.version".to_owned(), clean(&info.go_version)));
        props.sort_by(|a, b| a.0.cmp(&b.0));
        app.properties = props;
        out.insert(0, app);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::elf::Segment;
    use crate::apps::elf::tests::Builder;
    use crate::fs::MemFile;

    const MODINFO: &str = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/sys\tv0.1.0\th1:abc=\ndep\texample.com/old\tv1.0.0\th1:x=\n=>\texample.com/new\tv1.2.0\th1:y=\ndep\texample.com/local\tv0.0.0\t\n=>\t../local\t\t\nbuild\t-ldflags=\"-s -X 'main.version=1.2.3'\"\nbuild\tCGO_ENABLED=0\nbuild\tvcs.revision=0123456789abcdef0123\nbuild\tvcs.time=2024-04-26T06:00:20Z\n";

    fn framed(text: &str) -> Vec<u8> {
        let mut v = b"0123456789abcdef".to_vec();
        v.extend_from_slice(text.as_bytes());
        // Go's closing sentinel: binary, not UTF-8 (reading it as text once shifted the framing).
        v.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        v
    }

    fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// An ELF with a `.go.buildinfo` section at 0x10000 holding `blob`, mapped by a writable
    /// PT_LOAD; `with_sections = false` drops the section header table.
    fn go_elf(blob: Vec<u8>, is_64: bool, big: bool, with_sections: bool) -> Vec<u8> {
        let mut b = Builder::new(is_64, big);
        let len = blob.len() as u64;
        b.segments.push(Segment { kind: 1, flags: 6, offset: 0, vaddr: 0x10000, filesz: len, memsz: len });
        b.sections.push((".go.buildinfo".into(), 1, 3, 0x10000, blob));
        b.segments[0].offset = b.section_offset(0);
        let mut bytes = b.build();
        if !with_sections {
            let at = if is_64 { 0x28 } else { 0x20 };
            let n = if is_64 { 8 } else { 4 };
            bytes[at..at + n].fill(0);
        }
        bytes
    }

    fn inline_blob(version: &str, modinfo: &[u8]) -> Vec<u8> {
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&[8, FLAG_INLINE]);
        blob.resize(32, 0);
        put_uvarint(&mut blob, version.len() as u64);
        blob.extend_from_slice(version.as_bytes());
        put_uvarint(&mut blob, modinfo.len() as u64);
        blob.extend_from_slice(modinfo);
        blob
    }

    /// Pointer layout: header, then two {ptr,len} string headers, then the strings.
    fn pointer_blob(version: &str, modinfo: &[u8], ptr: usize, big: bool) -> Vec<u8> {
        let base = 0x10000u64;
        let word = |out: &mut Vec<u8>, v: u64| {
            let b = if big { v.to_be_bytes() } else { v.to_le_bytes() };
            if big { out.extend_from_slice(&b[8 - ptr..]) } else { out.extend_from_slice(&b[..ptr]) }
        };
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&[ptr as u8, u8::from(big)]);
        let hdrs = 32u64;
        word(&mut blob, base + hdrs);
        word(&mut blob, base + hdrs + 2 * ptr as u64);
        blob.resize(32, 0);
        let strings = hdrs + 4 * ptr as u64;
        word(&mut blob, base + strings);
        word(&mut blob, version.len() as u64);
        word(&mut blob, base + strings + version.len() as u64);
        word(&mut blob, modinfo.len() as u64);
        blob.extend_from_slice(version.as_bytes());
        blob.extend_from_slice(modinfo);
        blob
    }

    fn read_bytes(bytes: Vec<u8>) -> Result<Option<BuildInfo>, AppError> {
        let mut f = MemFile(bytes);
        let elf = ElfFile::read(&mut f, "/bin/app").expect("valid in this test").expect("valid in this test");
        read_build_info(&elf, &mut f, "/bin/app")
    }

    #[test]
    fn both_layouts_classes_and_endiannesses() {
        let modinfo = framed(MODINFO);
        for (is_64, big) in [(true, false), (true, true), (false, false), (false, true)] {
            let ptr = if is_64 { 8 } else { 4 };
            for blob in [inline_blob("go1.21.0", &modinfo), pointer_blob("go1.21.0", &modinfo, ptr, big)] {
                for with_sections in [true, false] {
                    let info = read_bytes(go_elf(blob.clone(), is_64, big, with_sections))
                        .expect("valid in this test")
                        .expect("valid in this test");
                    assert_eq!(info.go_version, "go1.21.0");
                    assert_eq!(info.path, "example.com/app");
                    assert_eq!(info.deps.len(), 3);
                    assert_eq!(info.deps[1].replace.as_ref().expect("valid in this test").path, "example.com/new");
                    assert_eq!(info.settings[0], ("-ldflags".into(), "-s -X 'main.version=1.2.3'".into()));
                }
            }
        }
    }

    #[test]
    fn packages_apply_replacements_ldflags_and_stdlib() {
        let info = parse_modinfo(MODINFO).map(|mut i| {
            i.go_version = "go1.21.0 X:loopvar".into();
            i
        });
        let pk = packages(&info.expect("valid in this test"), "/usr/bin/app");
        let got: Vec<_> = pk.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.role)).collect();
        assert_eq!(
            got,
            [
                ("example.com/app", "v1.2.3", AppRole::Application),
                ("stdlib", "v1.21.0", AppRole::Stdlib),
                ("golang.org/x/sys", "v0.1.0", AppRole::Library),
                ("example.com/new", "v1.2.0", AppRole::Library),
                ("../local", "", AppRole::Library),
            ]
        );
        assert_eq!(pk[3].properties, [("go.replaces".to_owned(), "example.com/old@v1.0.0".to_owned())]);
        assert_eq!(pk[0].purl, "pkg:golang/example.com/app@v1.2.3");
        assert_eq!(pk[0].depends_on.len(), 4);
        assert!(pk[0].depends_on.contains(&"pkg:golang/stdlib@v1.21.0".to_owned()));
        let props: BTreeMap<_, _> = pk[0].properties.iter().cloned().collect();
        assert_eq!(props["go.version"], "go1.21.0 X:loopvar");
        assert_eq!(props["go.build.CGO_ENABLED"], "0");
        assert!(pk.iter().all(|p| p.location == "/usr/bin/app"));
    }

    #[test]
    fn main_version_rule() {
        let info = |ldflags: &str, vcs: bool| {
            let mut i = BuildInfo::default();
            i.settings.push(("-ldflags".into(), ldflags.into()));
            if vcs {
                i.settings.push(("vcs.revision".into(), "9640d75c13845419f5797e2e3ac3475f8d801d79".into()));
                i.settings.push(("vcs.time".into(), "2024-04-26T06:00:20Z".into()));
            }
            i
        };
        let m = |v: &str| Module { path: "github.com/x/y".into(), version: v.into(), ..Module::default() };
        assert_eq!(main_version(&info("-w -X main.version=v1.0.0", true), &m("(devel)")), "v1.0.0");
        assert_eq!(main_version(&info("", true), &m("(devel)")), "v0.0.0-20240426060020-9640d75c1384");
        assert_eq!(main_version(&info("", false), &m("(devel)")), "");
        assert_eq!(main_version(&info("-X main.version=v2.0.0", true), &m("v1.5.0")), "v1.5.0");
        assert_eq!(main_version(&info("-X main.version=v2.0.0", false), &m("v0.0.0-2020-abc")), "v2.0.0");
        assert_eq!(main_version(&info("-X main.version=notsemver", false), &m("(devel)")), "");
        assert_eq!(main_version(&info("-X main.version=1.18.1", false), &m("(devel)")), "v1.18.1");
    }

    #[test]
    fn ldflags_classes() {
        let v = |f: &str| ldflags_version("github.com/a/b", f);
        assert_eq!(v("-s -w -X main.version=1.18.1"), "1.18.1");
        assert_eq!(v("-X=main.Version=v1.0.0"), "v1.0.0");
        assert_eq!(v("-X \"main.version=1.0.0\""), "1.0.0");
        assert_eq!(v("-X 'github.com/a/b/cmd/tool/app.ver=v3.0.0' -X main.version=v1.0.0"), "v3.0.0");
        assert_eq!(v("-X github.com/x/internal/version.ver=0.50.0"), "0.50.0", "package version");
        assert_eq!(v("-X github.com/x/pkg/build.Version=v1.1.1"), "v1.1.1", "other class");
        assert_eq!(v("-X main.version=v1.0.0 -X common.Version=v2.0.0"), "", "two in one class");
        assert_eq!(v("-X main.version=v1.0.0 -X github.com/x/pkg/build.Version=v2.0.0"), "v1.0.0");
        assert_eq!(v("-X main.commit=abc -X main.date=2024"), "");
        assert_eq!(v("-linkmode external -X main.version=v1.0.0"), "v1.0.0");
        assert_eq!(v("-X 'main.version=v1.0.0"), "", "unterminated quote");
        assert_eq!(v("-X"), "");
    }

    #[test]
    fn semver_like_go() {
        for ok in ["v1", "v1.2", "v1.2.3", "v1.2.3-pre.1", "v1.2.3+build.5", "v0.0.0-20210121094942-22b2f8951d46"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.2.3", "v01.2.3", "v1.2-pre", "v1.2.3-01", "v1.2.3.4", "v", "v1.2.3-", "vx"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn stdlib_versions() {
        assert_eq!(stdlib_version("go1.22.1 X:loopvar"), "v1.22.1");
        assert_eq!(stdlib_version("go1.15.2"), "v1.15.2");
        assert_eq!(stdlib_version("go1.26.0-X:nodwarf5"), "v1.26.0");
        assert_eq!(stdlib_version("go1.20.12 (Red Hat 1.20.12-1.el9)"), "v1.20.12");
    }

    #[test]
    fn modinfo_and_quoting_rules() {
        assert!(parse_modinfo("=>\ta\tb\tc\n").is_err(), "replacement without a module");
        assert!(parse_modinfo("dep\ta\n").is_err(), "one column");
        assert!(parse_modinfo("dep\ta\tb\tc\td\n").is_err());
        assert!(parse_modinfo("build\t=x\n").is_err());
        assert!(parse_modinfo("build\tnoequals\n").is_err());
        let i = parse_modinfo("build\t\"we=ird\"=\"a\\tb\\x41\\u00e9\"\nbuild\tk=`raw`\ndep\tlast\tv1")
            .expect("valid in this test");
        assert_eq!(i.settings, [("we=ird".to_owned(), "a\tbAé".to_owned()), ("k".to_owned(), "raw".to_owned())]);
        assert!(i.deps.is_empty(), "a last line without newline is ignored");
        assert_eq!(unquote("\"\\101\""), Some("A".into()));
        assert_eq!(unquote("\"a\"b\""), None);
        assert_eq!(strip_sentinels(b"short"), b"");
    }

    #[test]
    fn hostile_lengths_are_errors() {
        // A varint length of 2^62.
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&[8, FLAG_INLINE]);
        blob.resize(32, 0);
        put_uvarint(&mut blob, 1 << 62);
        blob.extend_from_slice(b"go1");
        assert!(read_bytes(go_elf(blob, true, false, true)).expect_err("an error").reason.contains("bound"));
        // A varint length beyond the segment but under the bound.
        let mut blob = inline_blob("go1.22.1", b"");
        blob.truncate(33);
        blob.push(0x80);
        blob.push(0x40);
        assert!(read_bytes(go_elf(blob, true, false, true)).expect_err("an error").reason.contains("past"));
        // An unterminated varint.
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&[8, FLAG_INLINE]);
        blob.resize(32, 0);
        blob.extend_from_slice(&[0xff; 12]);
        assert!(read_bytes(go_elf(blob, true, false, true)).is_err());
        // A pointer-layout string of 2^40 bytes.
        let mut blob = pointer_blob("go1.15.2", b"", 8, false);
        blob[32 + 8..32 + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(read_bytes(go_elf(blob, true, false, true)).expect_err("an error").reason.contains("bound"));
        // A pointer into no segment.
        let mut blob = pointer_blob("go1.15.2", b"", 8, false);
        blob[16..24].copy_from_slice(&0xdead_0000u64.to_le_bytes());
        assert!(
            read_bytes(go_elf(blob, true, false, true)).expect_err("an error").reason.contains("no loaded segment")
        );
        // A bad pointer size.
        let mut blob = pointer_blob("go1.15.2", b"", 8, false);
        blob[14] = 3;
        assert!(read_bytes(go_elf(blob, true, false, true)).is_err());
        // A section claiming 2^63 bytes: the search stops at the segment's file data.
        let mut bytes = go_elf(inline_blob("go1.22.1", &framed("path\tx\n")), true, false, true);
        let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().expect("valid in this test")) as usize;
        bytes[shoff + 64 + 32..shoff + 64 + 40].copy_from_slice(&(1u64 << 63).to_le_bytes());
        assert_eq!(read_bytes(bytes).expect("valid in this test").expect("valid in this test").path, "x");
    }

    #[test]
    fn no_magic_or_unaligned_magic_is_not_go() {
        let mut blob = vec![0u8; 3];
        blob.extend_from_slice(&inline_blob("go1.22.1", b""));
        assert_eq!(
            read_bytes(go_elf(blob, true, false, true)).expect("valid in this test"),
            None,
            "magic not 16-aligned"
        );
        assert_eq!(read_bytes(go_elf(vec![0u8; 4096], true, false, false)).expect("valid in this test"), None);
        assert_eq!(
            read_bytes(go_elf(inline_blob("", b""), true, false, true)).expect("valid in this test"),
            None,
            "empty version"
        );
    }

    #[test]
    fn control_characters_are_stripped() {
        let info = parse_modinfo("mod\tevil\u{1b}[31m.com/x\tv1.0.0\t\ndep\ta\u{9b}b\tv1\u{7}\t\n")
            .expect("valid in this test");
        let pk = packages(&info, "/x");
        assert_eq!(pk[0].name, "evil[31m.com/x");
        assert_eq!((pk[2].name.as_str(), pk[2].version.as_str()), ("ab", "v1"));
        assert_eq!(pk[2].purl, "pkg:golang/ab@v1");
    }
}
