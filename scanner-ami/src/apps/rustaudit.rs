//! Rust binaries built with `cargo auditable`: the crate dependency graph it embeds as
//! zlib-compressed JSON in the ELF section `.dep-v0` (not loaded at run time, so read by file
//! offset), read from an ELF file whose headers [`super::elf`] has read.
//!
//! This module owns reading and inflating that section within bounds, parsing its JSON
//! (`{format?, packages: [{name, version, source, kind?, dependencies?, root?}]}`, the
//! `cargo-auditable` schema, docs/references.md, "Application inventory"), validating the graph (exactly one
//! root, indices in range, no cycle — checked without recursion) and turning it into packages: the
//! root crate as the application, the others as libraries, `kind = "build"` crates kept with the
//! role [`AppRole::BuildDependency`].

use serde::Deserialize;

use super::elf::ElfFile;
use super::{AppEcosystem, AppError, AppPackage, AppRole, clean};
use crate::fs::FileRead;
use crate::purl;

/// The section `cargo auditable` writes.
const SECTION: &str = ".dep-v0";

/// Most compressed bytes of `.dep-v0` read (docs/references.md, "Application inventory bounds").
pub const MAX_COMPRESSED: u64 = 8 << 20;

/// Most bytes the JSON may inflate to: 8 MiB, the bound `cargo-auditable`'s PARSING.md advises
/// (a graph of 10,000 crates is about 1 MiB).
pub const MAX_INFLATED: usize = 8 << 20;

/// The `source` of crates from the crates.io registry; any other source is kept as a property.
const CRATES_IO: &str = "crates.io";

/// The embedded document.
#[derive(Debug, Clone, Deserialize)]
pub struct VersionInfo {
    /// Schema version (absent in the first format).
    #[serde(default)]
    pub format: Option<u32>,
    pub packages: Vec<Crate>,
}

/// One crate of the graph.
#[derive(Debug, Clone, Deserialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// `crates.io`, `git`, `local`, `registry` (another registry) or `other`.
    pub source: String,
    /// `build` or `runtime` (the default).
    #[serde(default)]
    pub kind: Option<String>,
    /// Indices into `packages` of its direct dependencies.
    #[serde(default)]
    pub dependencies: Vec<u64>,
    #[serde(default)]
    pub root: bool,
}

/// The crates recorded in `elf` (read from `file` at `path`); empty when it has no `.dep-v0`.
///
/// # Errors
///
/// The section lies outside the file, exceeds a bound, does not inflate, is not the documented
/// JSON, or its graph is not a single-rooted acyclic graph with valid indices.
pub fn read(elf: &ElfFile, file: &mut dyn FileRead, path: &str) -> Result<Vec<AppPackage>, AppError> {
    let Some(section) = elf.section(SECTION) else {
        return Ok(Vec::new());
    };
    let compressed = elf.read_section(file, path, section, MAX_COMPRESSED)?;
    let json = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&compressed, MAX_INFLATED).map_err(|e| {
        let why = if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput {
            format!("inflates to more than {MAX_INFLATED} bytes")
        } else {
            format!("zlib data damaged ({:?})", e.status)
        };
        AppError::new(path, format!("cargo auditable {SECTION}: {why}"))
    })?;
    let info = parse(&json).map_err(|e| AppError::new(path, format!("cargo auditable {SECTION}: {e}")))?;
    Ok(packages(&info, path))
}

/// Parse and validate the JSON document.
///
/// # Errors
///
/// It is not the documented JSON, or its graph is invalid ([`validate`]).
pub fn parse(json: &[u8]) -> Result<VersionInfo, String> {
    let info: VersionInfo = serde_json::from_slice(json).map_err(|e| format!("JSON: {e}"))?;
    validate(&info)?;
    Ok(info)
}

/// Check the graph: exactly one root, every dependency index in range, no cycle (an iterative
/// depth-first search, so a hostile chain of any depth cannot exhaust the stack).
///
/// # Errors
///
/// Names the first rule broken.
pub fn validate(info: &VersionInfo) -> Result<(), String> {
    let n = info.packages.len();
    let roots = info.packages.iter().filter(|p| p.root).count();
    if roots != 1 {
        return Err(format!("{roots} root packages, expected exactly one"));
    }
    for (i, p) in info.packages.iter().enumerate() {
        if let Some(bad) = p.dependencies.iter().find(|d| usize::try_from(**d).map_or(true, |d| d >= n)) {
            return Err(format!("package {i} depends on index {bad}, out of range (0..{n})"));
        }
    }
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; n];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for start in 0..n {
        if state.get(start) != Some(&0) {
            continue;
        }
        stack.push((start, 0));
        if let Some(s) = state.get_mut(start) {
            *s = 1;
        }
        while let Some((node, next)) = stack.last_mut() {
            let deps = info.packages.get(*node).map(|p| p.dependencies.as_slice()).unwrap_or_default();
            match deps.get(*next).and_then(|d| usize::try_from(*d).ok()) {
                Some(child) => {
                    *next += 1;
                    match state.get(child) {
                        Some(1) => return Err(format!("dependency cycle through package {child}")),
                        Some(0) => {
                            if let Some(s) = state.get_mut(child) {
                                *s = 1;
                            }
                            stack.push((child, 0));
                        }
                        _ => {}
                    }
                }
                None => {
                    if let Some(s) = state.get_mut(*node) {
                        *s = 2;
                    }
                    stack.pop();
                }
            }
        }
    }
    Ok(())
}

/// The packages of a validated document, found at `location`: the root crate as the application,
/// `kind = "build"` crates as build dependencies, the others as libraries; `depends_on` the
/// (sorted, deduplicated) purls of each crate's direct dependencies; a source other than crates.io
/// in the property `cargo.source`.
#[must_use]
pub fn packages(info: &VersionInfo, location: &str) -> Vec<AppPackage> {
    let purls: Vec<String> =
        info.packages.iter().map(|c| purl::for_app(AppEcosystem::Cargo, &clean(&c.name), &clean(&c.version))).collect();
    info.packages
        .iter()
        .zip(&purls)
        .map(|(c, purl)| {
            let role = if c.root {
                AppRole::Application
            } else if c.kind.as_deref() == Some("build") {
                AppRole::BuildDependency
            } else {
                AppRole::Library
            };
            let mut p = AppPackage::new(AppEcosystem::Cargo, &c.name, &c.version, purl.clone(), role, location);
            let mut deps: Vec<String> = c
                .dependencies
                .iter()
                .filter_map(|d| usize::try_from(*d).ok().and_then(|d| purls.get(d)).cloned())
                .collect();
            deps.sort();
            deps.dedup();
            p.depends_on = deps;
            if c.source != CRATES_IO {
                p.properties.push(("cargo.source".to_owned(), clean(&c.source)));
            }
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::elf::tests::Builder;
    use crate::fs::MemFile;

    fn zlib(data: &[u8]) -> Vec<u8> {
        miniz_oxide::deflate::compress_to_vec_zlib(data, 9)
    }

    fn elf_with(section: Vec<u8>) -> Vec<u8> {
        let mut b = Builder::new(true, false);
        b.sections.push((SECTION.into(), 1, 0, 0, section));
        b.build()
    }

    fn read_bytes(bytes: Vec<u8>) -> Result<Vec<AppPackage>, AppError> {
        let mut f = MemFile(bytes);
        let elf = ElfFile::read(&mut f, "/bin/r").expect("valid in this test").expect("valid in this test");
        read(&elf, &mut f, "/bin/r")
    }

    const GRAPH: &str = r#"{"format":1,"packages":[
        {"name":"app","version":"0.1.0","source":"local","dependencies":[1,2,3],"root":true},
        {"name":"serde","version":"1.0.200","source":"crates.io","dependencies":[2]},
        {"name":"cc","version":"1.0.90","source":"crates.io","kind":"build"},
        {"name":"mine","version":"0.2.0","source":"git","kind":"runtime"}]}"#;

    #[test]
    fn roles_sources_and_edges() {
        let pk = read_bytes(elf_with(zlib(GRAPH.as_bytes()))).expect("valid in this test");
        let got: Vec<_> = pk.iter().map(|p| (p.name.as_str(), p.version.as_str(), p.role)).collect();
        assert_eq!(
            got,
            [
                ("app", "0.1.0", AppRole::Application),
                ("serde", "1.0.200", AppRole::Library),
                ("cc", "1.0.90", AppRole::BuildDependency),
                ("mine", "0.2.0", AppRole::Library),
            ]
        );
        assert_eq!(pk[0].depends_on, ["pkg:cargo/cc@1.0.90", "pkg:cargo/mine@0.2.0", "pkg:cargo/serde@1.0.200"]);
        assert_eq!(pk[1].depends_on, ["pkg:cargo/cc@1.0.90"]);
        assert_eq!(pk[0].properties, [("cargo.source".to_owned(), "local".to_owned())]);
        assert!(pk[1].properties.is_empty());
        assert_eq!(pk[3].properties, [("cargo.source".to_owned(), "git".to_owned())]);
    }

    #[test]
    fn no_section_is_empty() {
        assert_eq!(read_bytes(Builder::new(true, false).build()).expect("valid in this test"), []);
    }

    #[test]
    fn invalid_graphs_are_errors() {
        let e = |json: &str| parse(json.as_bytes()).expect_err("an error");
        let p = |deps: &str, root: bool| {
            format!(r#"{{"name":"a","version":"1","source":"crates.io","dependencies":{deps},"root":{root}}}"#)
        };
        assert!(e(&format!(r#"{{"packages":[{},{}]}}"#, p("[]", true), p("[]", true))).contains("2 root"));
        assert!(e(&format!(r#"{{"packages":[{}]}}"#, p("[]", false))).contains("0 root"));
        assert!(e(&format!(r#"{{"packages":[{},{}]}}"#, p("[1]", true), p("[0]", false))).contains("cycle"));
        assert!(e(&format!(r#"{{"packages":[{}]}}"#, p("[0]", true))).contains("cycle"));
        assert!(e(&format!(r#"{{"packages":[{}]}}"#, p("[7]", true))).contains("out of range"));
        assert!(e(&format!(r#"{{"packages":[{}]}}"#, p("[18446744073709551615]", true))).contains("out of range"));
        assert!(e(r#"{"packages":[{"name":"a"}]}"#).contains("JSON"));
        assert!(e("[]").contains("JSON"));
    }

    #[test]
    fn deep_chain_validates_without_recursion() {
        // 200,000 crates in one chain: a recursive search would overflow the test thread's stack.
        let n = 200_000;
        let packages = (0..n)
            .map(|i| Crate {
                name: format!("c{i}"),
                version: "1.0.0".into(),
                source: CRATES_IO.into(),
                kind: None,
                dependencies: if i + 1 < n { vec![i as u64 + 1] } else { vec![] },
                root: i == 0,
            })
            .collect();
        let mut info = VersionInfo { format: Some(1), packages };
        assert_eq!(validate(&info), Ok(()));
        info.packages[n - 1].dependencies = vec![0];
        assert!(validate(&info).expect_err("an error").contains("cycle"));
    }

    /// A zlib stream inflating to `1 + 258 × copies` zero bytes: one fixed-Huffman deflate block
    /// of a literal 0 then copies of length 258 at distance 1 (13 bits each, RFC 1951 §3.2.6).
    pub(crate) fn zero_bomb(copies: usize) -> Vec<u8> {
        let mut out = vec![0x78, 0x01];
        let (mut acc, mut nbits) = (0u32, 0u32);
        let mut put = |out: &mut Vec<u8>, value: u32, len: u32, huffman: bool| {
            for i in 0..len {
                let bit = if huffman { (value >> (len - 1 - i)) & 1 } else { (value >> i) & 1 };
                acc |= bit << nbits;
                nbits += 1;
                if nbits == 8 {
                    out.push(acc as u8);
                    (acc, nbits) = (0, 0);
                }
            }
        };
        put(&mut out, 1, 1, false); // BFINAL
        put(&mut out, 1, 2, false); // BTYPE = fixed Huffman
        put(&mut out, 0x30, 8, true); // literal 0
        for _ in 0..copies {
            put(&mut out, 0xc5, 8, true); // length code 285: 258 bytes
            put(&mut out, 0, 5, true); // distance code 0: distance 1
        }
        put(&mut out, 0, 7, true); // end of block
        put(&mut out, 0, 7, false); // pad to a byte
        // Adler-32 of n zeros: a = 1, b = n (mod 65521).
        let n = (1 + 258 * copies as u64) % 65521;
        out.extend_from_slice(&((n << 16) as u32 | 1).to_be_bytes());
        out
    }

    #[test]
    fn zlib_bomb_and_garbage_are_errors() {
        let small = zero_bomb(10);
        let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(&small).expect("valid in this test");
        assert_eq!((inflated.len(), inflated.iter().all(|b| *b == 0)), (2581, true));
        // 1 GiB of zeros in about 6.8 MB.
        let bomb = zero_bomb((1 << 30) / 258);
        assert!(bomb.len() < 8 << 20, "bomb is {} bytes", bomb.len());
        let err = read_bytes(elf_with(bomb)).expect_err("an error");
        assert!(err.reason.contains("more than"), "{err}");
        assert!(read_bytes(elf_with(b"not zlib at all".to_vec())).expect_err("an error").reason.contains("damaged"));
    }

    #[test]
    fn oversized_section_is_refused_before_reading() {
        let mut bytes = elf_with(vec![0u8; 16]);
        let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().expect("valid in this test")) as usize;
        bytes[shoff + 64 + 32..shoff + 64 + 40].copy_from_slice(&(1u64 << 63).to_le_bytes());
        assert!(read_bytes(bytes).expect_err("an error").reason.contains("bound"));
    }

    #[test]
    fn control_characters_are_stripped() {
        let json = r#"{"packages":[{"name":"ev\u001b[2Jil","version":"1\u0007.0","source":"crates.io","root":true}]}"#;
        let pk = packages(&parse(json.as_bytes()).expect("valid in this test"), "/bin/r");
        assert_eq!((pk[0].name.as_str(), pk[0].version.as_str()), ("ev[2Jil", "1.0"));
        assert_eq!(pk[0].purl, "pkg:cargo/ev%5B2Jil@1.0");
    }
}
