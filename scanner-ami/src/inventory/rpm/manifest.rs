//! Reader of `/var/lib/rpmmanifest/container-manifest-2`, the package listing CBL-Mariner/Azure
//! Linux distroless images ship instead of an rpm database.
//!
//! One package per line, ten tab-separated columns, as written by the image build with
//! `rpm -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\t%{INSTALLTIME}\t%{BUILDTIME}\t%{VENDOR}\t%{EPOCH}\t%{SIZE}\t%{ARCH}\t%{EPOCHNUM}\t%{SOURCERPM}\n'`
//! (the layout syft's parser documents; the fixture's columns agree: `(none)` in the EPOCH
//! column where EPOCHNUM is 0, and `2`/`2` for `vim`). `(none)` is rpm's text for an absent tag.
//! Blank lines are ignored; a line that does not have ten columns or whose numbers do not parse
//! is skipped with a note.

use super::Collector;
use super::header::parse_source_rpm;
use crate::fs::FileRead;
use crate::inventory::{DbFormat, DbRead, Ecosystem, Package};
use crate::limits;

/// Columns per line (see the module documentation).
const COLUMNS: usize = 10;
/// What `rpm --qf` prints for an absent tag.
const NONE: &str = "(none)";

/// A column value, `None` when rpm printed `(none)` or nothing.
fn present(s: &str) -> Option<&str> {
    let s = s.trim();
    (s != NONE && !s.is_empty()).then_some(s)
}

/// Parse one non-blank line into a package.
fn parse_line(line: &str, path: &str) -> Result<Package, String> {
    let cols: Vec<&str> = line.split('\t').collect();
    let [name, ver_rel, _installtime, _buildtime, vendor, epoch, size, arch, _epochnum, source_rpm] = cols[..] else {
        return Err(format!("{} columns, expected {COLUMNS}", cols.len()));
    };
    let name = present(name).ok_or("empty name")?;
    let ver_rel = present(ver_rel).ok_or("empty version")?;
    let (version, release) = match ver_rel.rsplit_once('-') {
        Some((v, r)) if !v.is_empty() && !r.is_empty() => (v, Some(r)),
        _ => (ver_rel, None),
    };
    let mut p = Package::new(Ecosystem::Rpm, name, version, DbFormat::RpmManifest, path);
    p.release = release.map(str::to_owned);
    p.epoch = present(epoch).map(str::parse::<u32>).transpose().map_err(|e| format!("epoch {epoch:?}: {e}"))?;
    p.installed_size = present(size).map(str::parse::<u64>).transpose().map_err(|e| format!("size {size:?}: {e}"))?;
    p.vendor = present(vendor).map(str::to_owned);
    p.arch = present(arch).map(str::to_owned);
    p.source_rpm = present(source_rpm).map(str::to_owned);
    if let Some((n, v)) = p.source_rpm.as_deref().and_then(parse_source_rpm) {
        p.source_name = Some(n);
        p.source_version = Some(v);
    }
    Ok(p)
}

/// Parse the text of a manifest found at `path`; packages come in line order.
#[must_use]
pub fn parse(text: &str, path: &str) -> DbRead {
    let mut c = Collector::new(DbFormat::RpmManifest, path);
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = format!("line {}", i.saturating_add(1));
        match parse_line(line, path) {
            Ok(p) => {
                if c.push(&record, p).is_break() {
                    break;
                }
            }
            Err(why) => super::BlobSink::skip(&mut c, format!("{record}: {why}")),
        }
    }
    c.finish()
}

/// Read the manifest in `file` (found at `path`), at most [`limits::MAX_TEXT_DB_BYTES`].
pub fn read(file: &mut dyn FileRead, path: &str) -> DbRead {
    let size = file.len();
    let fail = |error: String| DbRead { error: Some(error), ..DbRead::default() };
    if size > limits::MAX_TEXT_DB_BYTES {
        return fail(format!("{size} bytes exceeds the {}-byte limit for a text database", limits::MAX_TEXT_DB_BYTES));
    }
    let Ok(len) = usize::try_from(size) else { return fail(format!("{size} bytes does not fit in memory")) };
    let mut buf = vec![0u8; len];
    if let Err(e) = file.read_exact_at(0, &mut buf) {
        return fail(e.to_string());
    }
    parse(&String::from_utf8_lossy(&buf), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFile;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const PATH: &str = "/var/lib/rpmmanifest/container-manifest-2";
    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/syft/redhat");

    #[test]
    fn mariner_distroless_fixture() -> TestResult {
        let bytes = std::fs::read(format!("{DIR}/rpmmanifest/container-manifest-2"))?;
        let nonblank = String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()).count();
        let read = read(&mut MemFile(bytes), PATH);
        assert_eq!(read.error, None);
        assert!(read.skipped.is_empty(), "{:?}", read.skipped);
        assert_eq!(nonblank, 5);
        assert_eq!(read.packages.len(), nonblank);

        let expected: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{DIR}/expected.json"))?)?;
        let first = expected["expected"]["rpmmanifest/container-manifest-2"]["first_entries"]
            .as_array()
            .ok_or("no first_entries")?;
        assert_eq!(first.len(), 4);
        for (got, want) in read.packages.iter().zip(first) {
            assert_eq!(Some(got.name.as_str()), want["name"].as_str());
            assert_eq!(Some(got.version.as_str()), want["version"].as_str());
            assert_eq!(got.release.as_deref(), want["release"].as_str());
            assert_eq!(got.arch.as_deref(), want["arch"].as_str());
            // The purl's upstream qualifier is the source rpm.
            let purl = want["purl"].as_str().ok_or("no purl")?;
            let upstream = purl.split("upstream=").nth(1).ok_or("no upstream")?;
            assert_eq!(got.source_rpm.as_deref(), Some(upstream));
            assert_eq!(got.epoch, None);
            assert_eq!(got.vendor.as_deref(), Some("Microsoft Corporation"));
        }
        let sizes: Vec<Option<u64>> = read.packages.iter().map(|p| p.installed_size).collect();
        assert_eq!(sizes, [Some(580), Some(7596), Some(10_855_265), Some(4_365_048), Some(45000)]);
        let vim = read.packages.last().ok_or("no vim")?;
        assert_eq!(vim.name, "vim");
        assert_eq!(vim.full_version(), "2:9.0-1.cm2");
        assert_eq!(vim.source_name.as_deref(), Some("vim"));
        assert_eq!(vim.source_version.as_deref(), Some("9.0-1.cm2"));
        let openssl = read.packages.get(3).ok_or("no openssl")?;
        assert_eq!(openssl.source_name.as_deref(), Some("openssl"));
        Ok(())
    }

    #[test]
    fn bad_lines_are_skipped() {
        let text = "a\t1-1\t0\t0\tV\t(none)\t10\tx86_64\t0\ta-1-1.src.rpm\n\
                    too\tfew\tcolumns\n\
                    b\t1-1\t0\t0\tV\tnotanumber\t10\tx86_64\t0\tb-1-1.src.rpm\n\
                    c\t1-1\t0\t0\tV\t(none)\t-5\tx86_64\t0\tc-1-1.src.rpm\n\
                    \t1-1\t0\t0\tV\t(none)\t10\tx86_64\t0\t(none)\n\
                    \n\
                    gpg-pubkey\tfd431d51-4ae0493b\t0\t0\t(none)\t(none)\t0\t(none)\t0\t(none)\r\n\
                    d\t2\t0\t0\t(none)\t(none)\t(none)\t(none)\t0\t(none)";
        let r = parse(text, PATH);
        let names: Vec<&str> = r.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "d"]);
        assert_eq!(r.skipped.len(), 5, "{:?}", r.skipped);
        assert!(r.skipped.first().is_some_and(|s| s.starts_with("line 2: 3 columns")));
        assert!(r.skipped.last().is_some_and(|s| s.starts_with("line 7: gpg-pubkey-fd431d51-4ae0493b")));
        let d = r.packages.last();
        assert!(d.is_some_and(|d| d.release.is_none() && d.vendor.is_none() && d.installed_size.is_none()));
    }

    #[test]
    fn odd_input_never_panics() {
        for text in [
            "",
            "\t",
            "\t\t\t\t\t\t\t\t\t",
            "-\t-\t\t\t\t\t\t\t\t",
            "\u{fffd}\t\u{0}",
            "a\tb\tc\td\te\tf\tg\th\ti\tj\tk",
        ] {
            let r = parse(text, PATH);
            assert!(r.packages.len() <= 1);
        }
        let r = read(&mut MemFile(vec![0xff, 0xfe, b'\t', 0x80]), PATH);
        assert!(r.packages.is_empty());
    }
}
