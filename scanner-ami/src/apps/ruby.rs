//! Ruby gems: `specifications/*.gemspec`.
//!
//! This module owns the reading of one installed gemspec into an [`AppPackage`], without
//! evaluating any Ruby: installed specifications are written by RubyGems
//! (`Gem::Specification#to_ruby`) in a fixed shape, and only a few lines matter.
//!
//! - Assignments `<var>.name = "x".freeze`, `<var>.version = "1.2.3"`, `<var>.licenses = ["MIT",
//!   "Ruby"]` and `<var>.license = "MIT"`: the value's string literals (`"..."`, `'...'`,
//!   `%q{...}` and its `<([` forms), `.freeze` and any wrapper (`Gem::Version.new("1.0")`)
//!   ignored. An array may span lines until its `]`, at most [`MAX_ARRAY_LINES`] lines.
//! - The `# stub: <name> <version> <platform> <paths>` comment RubyGems puts on line two gives the
//!   name and version when an assignment lacks them.
//! - The first assignment of a field wins; several licences are joined with `, `.

use super::{AppEcosystem, AppError, AppPackage, AppRole, clean};
use crate::purl;

/// Largest gemspec read.
pub const MAX_GEMSPEC_BYTES: u64 = 1024 * 1024;

/// Longest gem name or version accepted, in bytes (RubyGems.org names stay under 100 characters;
/// a longer one is a hostile file).
pub const MAX_FIELD_BYTES: usize = 1024;

/// Most lines one `licenses = [...]` array may span (RubyGems writes it on one line).
pub const MAX_ARRAY_LINES: usize = 64;

/// Most licences kept (real gems list one to three).
const MAX_LICENSES: usize = 16;

/// The gem described by the gemspec text at `location`; `None` without name or version.
///
/// # Errors
///
/// The text cannot be read as a gemspec.
pub fn parse_gemspec(bytes: &[u8], location: &str) -> Result<Option<AppPackage>, AppError> {
    let cap = usize::try_from(MAX_GEMSPEC_BYTES).unwrap_or(usize::MAX);
    let bytes = bytes.get(..cap).unwrap_or(bytes);
    if bytes.contains(&0) {
        return Err(AppError::new(location, "binary data (a NUL byte), not a gemspec"));
    }
    let text = String::from_utf8_lossy(bytes);
    let mut stub: Option<(String, String)> = None;
    let (mut name, mut version, mut licenses): (Option<String>, Option<String>, Option<Vec<String>>) =
        (None, None, None);
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# stub:") {
            let mut words = rest.split_whitespace();
            if let (None, Some(n), Some(v)) = (&stub, words.next(), words.next()) {
                stub = Some((n.to_owned(), v.to_owned()));
            }
            continue;
        }
        let Some((attr, value)) = assignment(line) else { continue };
        match attr {
            "name" if name.is_none() => name = literals(value).into_iter().next(),
            "version" if version.is_none() => version = literals(value).into_iter().next(),
            "license" if licenses.is_none() => licenses = Some(literals(value)),
            "licenses" if licenses.is_none() => {
                let mut value = value.to_owned();
                let mut extra = 0;
                while value.contains('[') && !value.contains(']') && extra < MAX_ARRAY_LINES {
                    let Some(next) = lines.next() else { break };
                    value.push(' ');
                    value.push_str(next.trim());
                    extra += 1;
                }
                licenses = Some(literals(&value));
            }
            _ => {}
        }
    }
    let (stub_name, stub_version) = stub.unzip();
    let name = clean(name.or(stub_name).unwrap_or_default().trim());
    let version = clean(version.or(stub_version).unwrap_or_default().trim());
    if name.is_empty() || version.is_empty() {
        return Ok(None);
    }
    if name.len() > MAX_FIELD_BYTES || version.len() > MAX_FIELD_BYTES {
        return Err(AppError::new(location, format!("gem name or version longer than {MAX_FIELD_BYTES} bytes")));
    }
    let purl = purl::for_app(AppEcosystem::Gem, &name, &version);
    let mut pkg = AppPackage::new(AppEcosystem::Gem, &name, &version, purl, AppRole::Library, location);
    let licenses: Vec<String> = licenses
        .unwrap_or_default()
        .iter()
        .map(|l| clean(l.trim()))
        .filter(|l| !l.is_empty() && l.len() <= MAX_FIELD_BYTES)
        .take(MAX_LICENSES)
        .collect();
    pkg.license = (!licenses.is_empty()).then(|| licenses.join(", "));
    Ok(Some(pkg))
}

/// `<var>.<attr> = <value>` (not `==`): the attribute and the value text.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let (var, rest) = line.split_once('.')?;
    if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let (attr, rest) = rest.split_at(end);
    let value = rest.trim_start().strip_prefix('=')?;
    if value.starts_with(['=', '~']) {
        return None;
    }
    Some((attr, value))
}

/// The string literals of a Ruby expression, in order: `"..."` and `'...'` (backslash escapes
/// reduced to the escaped character), `%q`/`%Q` with `{}`, `<>`, `()`, `[]` or a repeated
/// delimiter, and the words of `%w`/`%W` arrays. Stops at a `#` comment outside a literal.
fn literals(mut s: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let Some(start) = s.find(['"', '\'', '%', '#']) else { return out };
        let mut chars = s.get(start..).unwrap_or_default().chars();
        let mut words = false;
        let close = match chars.next() {
            Some('#') => return out,
            Some(q @ ('"' | '\'')) => q,
            Some('%') => {
                let mut peek = chars.clone();
                match (peek.next(), peek.next()) {
                    (Some(k @ ('q' | 'Q' | 'w' | 'W')), Some(d)) => {
                        chars = peek;
                        words = matches!(k, 'w' | 'W');
                        match d {
                            '{' => '}',
                            '<' => '>',
                            '(' => ')',
                            '[' => ']',
                            other if !other.is_alphanumeric() && !other.is_whitespace() => other,
                            _ => {
                                s = chars.as_str();
                                continue;
                            }
                        }
                    }
                    _ => {
                        s = chars.as_str();
                        continue;
                    }
                }
            }
            _ => return out,
        };
        let mut lit = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(e) = chars.next() {
                    lit.push(e);
                }
            } else if c == close {
                closed = true;
                break;
            } else {
                lit.push(c);
            }
        }
        if !closed {
            return out;
        }
        if words {
            out.extend(lit.split_whitespace().map(str::to_owned));
        } else {
            out.push(lit);
        }
        s = chars.as_str();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<AppPackage> {
        parse_gemspec(text.as_bytes(), "/var/lib/gems/3.1.0/specifications/x.gemspec").expect("parses")
    }

    #[test]
    fn assignments() {
        let p = parse(
            "Gem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.8\"\n  s.license = \"MIT\".freeze\nend\n",
        )
        .expect("pkg");
        assert_eq!((p.name.as_str(), p.version.as_str(), p.purl.as_str()), ("rack", "2.2.8", "pkg:gem/rack@2.2.8"));
        assert_eq!((p.license.as_deref(), p.role), (Some("MIT"), AppRole::Library));
    }

    #[test]
    fn literal_forms_and_multiline_arrays() {
        let p = parse(
            "spec.name = %q{nokogiri}\nspec.version = Gem::Version.new('1.15.4') # pinned\nspec.licenses = [\n  \"MIT\".freeze,\n  'Apache-2.0' ]\n",
        )
        .expect("pkg");
        assert_eq!((p.name.as_str(), p.version.as_str()), ("nokogiri", "1.15.4"));
        assert_eq!(p.license.as_deref(), Some("MIT, Apache-2.0"));
        assert_eq!(literals(r#"["a\"b".freeze, %q<c>, %Q|d|] # "e""#), vec!["a\"b", "c", "d"]);
        assert_eq!(literals(r#""unterminated"#), Vec::<String>::new());
        assert_eq!(literals("%w[MIT Ruby]"), vec!["MIT", "Ruby"]);
    }

    #[test]
    fn stub_line_fills_in_and_comparisons_are_not_assignments() {
        let p = parse("# stub: json 2.6.3 x86_64-linux lib\nif s.name == \"other\" then end\n").expect("pkg");
        assert_eq!((p.name.as_str(), p.version.as_str(), p.license), ("json", "2.6.3", None));
        assert_eq!(parse("s.name = \"x\"\n"), None);
        assert_eq!(parse(""), None);
        assert!(parse_gemspec(b"s.name = \"a\"\0", "/g").is_err());
    }

    #[test]
    fn control_characters_are_stripped_and_fields_bounded() {
        let p = parse("s.name = \"ev\u{1b}[31mil\"\ns.version = \"1\u{7}.0\"\ns.licenses = [\"MIT\u{9b}\"]\n")
            .expect("pkg");
        assert_eq!((p.name.as_str(), p.version.as_str(), p.license.as_deref()), ("ev[31mil", "1.0", Some("MIT")));
        let long = format!("s.name = \"{}\"\ns.version = \"1\"\n", "a".repeat(MAX_FIELD_BYTES + 1));
        assert!(parse_gemspec(long.as_bytes(), "/g").is_err());
    }
}
