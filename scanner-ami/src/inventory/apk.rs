//! Alpine's apk database: `lib/apk/db/installed` (and the newer `usr/lib/apk/db/installed`).
//! Records are separated by blank lines; each line is `X:value` with a one-letter key
//! (`P` name, `V` version, `A` arch, `o` origin, `L` licence, `m` maintainer, `I` installed size).
//! A record without `P:` or `V:` is skipped with a note.

use super::{DbFormat, DbRead, Ecosystem, Package};
use crate::fs::{RootFs, read_text};
use crate::limits::{MAX_PACKAGES_PER_DB, MAX_TEXT_DB_BYTES};

/// Where apk keeps its database (older and newer location).
pub const PATHS: [&str; 2] = ["/lib/apk/db/installed", "/usr/lib/apk/db/installed"];

/// Read every apk database on `fs` (a symlinked second path that is the same file is skipped).
pub fn read_all(fs: &dyn RootFs) -> Vec<(DbFormat, String, DbRead)> {
    let mut out = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for path in PATHS {
        if !crate::fs::is_file(fs, path) {
            continue;
        }
        let read = match read_text(fs, path, MAX_TEXT_DB_BYTES) {
            Ok(text) => {
                if seen.contains(&text) {
                    continue;
                }
                let r = parse_installed(&text, path);
                seen.push(text);
                r
            }
            Err(e) => DbRead { error: Some(e.to_string()), ..DbRead::default() },
        };
        out.push((DbFormat::ApkInstalled, path.to_owned(), read));
    }
    out
}

/// Parse an apk `installed` database.
#[must_use]
pub fn parse_installed(text: &str, path: &str) -> DbRead {
    let mut read = DbRead::default();
    let mut record: Vec<(char, &str)> = Vec::new();
    let mut start_line = 1;
    let finish = |record: &mut Vec<(char, &str)>, line: usize, read: &mut DbRead| {
        if record.is_empty() {
            return;
        }
        let get = |k: char| record.iter().find(|(key, _)| *key == k).map(|(_, v)| *v).filter(|v| !v.is_empty());
        match (get('P'), get('V')) {
            (Some(name), Some(version)) if read.packages.len() < MAX_PACKAGES_PER_DB => {
                let mut p = Package::new(Ecosystem::Apk, name, version, DbFormat::ApkInstalled, path);
                p.arch = get('A').map(str::to_owned);
                p.source_name = Some(get('o').unwrap_or(name).to_owned());
                p.source_version = Some(version.to_owned());
                p.license = get('L').map(str::to_owned);
                p.maintainer = get('m').map(str::to_owned);
                p.installed_size = get('I').and_then(|s| s.parse().ok());
                read.packages.push(p);
            }
            (Some(_), Some(_)) => {
                read.error = Some(format!("more than {MAX_PACKAGES_PER_DB} packages; the rest are ignored"))
            }
            (Some(name), None) => read.skip(format!("{path}:{line}: {name}: no V: (version) line")),
            (None, _) => read.skip(format!("{path}:{line}: record without a P: (name) line")),
        }
        record.clear();
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            finish(&mut record, start_line, &mut read);
            start_line = i + 2;
            continue;
        }
        let mut chars = line.chars();
        if let (Some(k), Some(':')) = (chars.next(), chars.next()) {
            record.push((k, chars.as_str()));
        }
    }
    finish(&mut record, start_line, &mut read);
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_trivy_apk() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/trivy/apk");
        let text = std::fs::read_to_string(format!("{path}/installed")).expect("fixture");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{path}/expected.json")).expect("expected"))
                .expect("json");
        let read = parse_installed(&text, "/lib/apk/db/installed");
        let want = expected["packages"].as_array().expect("packages");
        assert_eq!(read.packages.len(), 15);
        assert_eq!(read.packages.len(), want.len());
        for (got, w) in read.packages.iter().zip(want) {
            assert_eq!(got.name, w["Name"].as_str().expect("Name"));
            assert_eq!(got.version, w["Version"].as_str().expect("Version"));
            assert_eq!(got.arch.as_deref(), w["Arch"].as_str());
            assert_eq!(got.source_name.as_deref(), w["SrcName"].as_str());
            assert_eq!(got.maintainer.as_deref(), w["Maintainer"].as_str());
        }
        assert_eq!(read.skipped.len(), 1, "{:?}", read.skipped);
        assert!(read.skipped[0].contains("invalidPackageWithoutAVersion"));
    }

    #[test]
    fn garbage_never_panics() {
        for t in ["", "P", "P:", ":\n:\n", "P:x\nV:\n\nV:1", "\u{1F600}:x\nP:é\nV:1"] {
            let _ = parse_installed(t, "/x");
        }
    }
}
