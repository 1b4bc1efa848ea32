//! Our parser for one bare rpm header blob, the value every rpm database stores per package (no
//! lead, no header magic): the index entries, the data store, typed getters for the tags the
//! inventory needs, and the conversion of a header into a [`Package`].
//!
//! Layout (rpm `lib/header.c`, all big-endian): `il: u32` index entry count, `dl: u32` data store
//! length, then `il` 16-byte entries `{tag: i32, type: u32, offset: i32, count: u32}`, then `dl`
//! bytes of data store. Every entry is validated when the header is parsed, the way rpm's own
//! `headerVerifyInfo`/`dataLength` do: known type, offset inside the store, integers aligned to
//! their width, fixed-size data and every NUL-terminated string inside the store. A header that
//! fails any check is rejected whole (rpm rejects it too), so getters never see bad bounds.

use crate::inventory::{DbFormat, Ecosystem, Package};
use crate::limits;

/// rpm tag numbers used here (rpm `include/rpm/rpmtag.h`).
pub mod tag {
    /// `RPMTAG_HEADERIMAGE`: first region tag (old-style header image region).
    pub const HEADERIMAGE: i32 = 61;
    /// `RPMTAG_HEADERSIGNATURES`: signature header region.
    pub const HEADERSIGNATURES: i32 = 62;
    /// `RPMTAG_HEADERIMMUTABLE`: immutable region of an installed header.
    pub const HEADERIMMUTABLE: i32 = 63;
    /// `RPMTAG_SIGMD5` (BIN, 16 bytes): MD5 of header+payload, used by tests as an identity check.
    pub const SIGMD5: i32 = 261;
    /// `RPMTAG_NAME` (STRING).
    pub const NAME: i32 = 1000;
    /// `RPMTAG_VERSION` (STRING).
    pub const VERSION: i32 = 1001;
    /// `RPMTAG_RELEASE` (STRING).
    pub const RELEASE: i32 = 1002;
    /// `RPMTAG_EPOCH` (INT32); absent when the package has no epoch.
    pub const EPOCH: i32 = 1003;
    /// `RPMTAG_SUMMARY` (I18NSTRING).
    pub const SUMMARY: i32 = 1004;
    /// `RPMTAG_SIZE` (INT32): installed size in bytes.
    pub const SIZE: i32 = 1009;
    /// `RPMTAG_VENDOR` (STRING).
    pub const VENDOR: i32 = 1011;
    /// `RPMTAG_LICENSE` (STRING).
    pub const LICENSE: i32 = 1014;
    /// `RPMTAG_ARCH` (STRING).
    pub const ARCH: i32 = 1022;
    /// `RPMTAG_SOURCERPM` (STRING): file name of the source rpm the package was built from.
    pub const SOURCERPM: i32 = 1044;
    /// `RPMTAG_LONGSIZE` (INT64): installed size, used instead of SIZE for packages over 4 GiB.
    pub const LONGSIZE: i32 = 5009;
    /// `RPMTAG_DIRINDEXES` (INT32 array): for each installed file, its directory in DIRNAMES.
    pub const DIRINDEXES: i32 = 1116;
    /// `RPMTAG_BASENAMES` (STRING_ARRAY): each installed file's name.
    pub const BASENAMES: i32 = 1117;
    /// `RPMTAG_DIRNAMES` (STRING_ARRAY): the directories of the installed files, ending in `/`.
    pub const DIRNAMES: i32 = 1118;
}

/// rpm data type numbers (rpm `include/rpm/rpmtag.h`, `rpmTagType_e`).
pub mod kind {
    /// `RPM_NULL_TYPE`.
    pub const NULL: u32 = 0;
    /// `RPM_CHAR_TYPE`.
    pub const CHAR: u32 = 1;
    /// `RPM_INT8_TYPE`.
    pub const INT8: u32 = 2;
    /// `RPM_INT16_TYPE`.
    pub const INT16: u32 = 3;
    /// `RPM_INT32_TYPE`.
    pub const INT32: u32 = 4;
    /// `RPM_INT64_TYPE`.
    pub const INT64: u32 = 5;
    /// `RPM_STRING_TYPE`.
    pub const STRING: u32 = 6;
    /// `RPM_BIN_TYPE`.
    pub const BIN: u32 = 7;
    /// `RPM_STRING_ARRAY_TYPE`.
    pub const STRING_ARRAY: u32 = 8;
    /// `RPM_I18NSTRING_TYPE`.
    pub const I18NSTRING: u32 = 9;
}

/// Bytes of the `il`/`dl` preamble (two big-endian u32).
const PREAMBLE_BYTES: usize = 8;
/// Bytes of one index entry (rpm `struct entryInfo_s`: four 32-bit fields).
const ENTRY_BYTES: usize = 16;

/// Why a header blob was rejected, or why a tag could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header blob of {len} bytes is shorter than its 8-byte preamble")]
    TooShort { len: usize },
    #[error("header claims {il} index entries, more than the {limit} rpm allows")]
    TooManyTags { il: u32, limit: usize },
    #[error("header data store of {dl} bytes exceeds the {limit}-byte limit")]
    TooLarge { dl: u32, limit: usize },
    #[error("header needs {need} bytes but the blob has only {have}")]
    Truncated { need: usize, have: usize },
    #[error("index entry {index} (tag {tag}): {what}")]
    BadEntry { index: usize, tag: i32, what: String },
    #[error("tag {tag} has data type {found}, expected {expected}")]
    WrongType { tag: i32, found: u32, expected: &'static str },
    #[error("required tag {tag} ({name}) is missing or empty")]
    Missing { tag: i32, name: &'static str },
}

/// One validated index entry: where its data lies inside the store.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Position in the blob's index (region entries included), for error messages.
    index: usize,
    tag: i32,
    kind: u32,
    count: u32,
    /// Start of the data inside the store.
    start: usize,
    /// Length in bytes of fixed-size data; 0 for strings (terminated by NULs) and NULL.
    len: usize,
}

impl Entry {
    fn is_string(&self) -> bool {
        matches!(self.kind, kind::STRING | kind::STRING_ARRAY | kind::I18NSTRING)
    }

    /// Number of NUL-terminated strings the entry holds: STRING holds exactly one whatever the
    /// count says (rpm ignores it too).
    fn string_count(&self) -> usize {
        match self.kind {
            kind::STRING => 1,
            kind::STRING_ARRAY | kind::I18NSTRING => usize::try_from(self.count).unwrap_or(usize::MAX),
            _ => 0,
        }
    }
}

/// A parsed rpm header borrowing the blob it was parsed from.
#[derive(Debug, Clone)]
pub struct RpmHeader<'a> {
    entries: Vec<Entry>,
    store: &'a [u8],
}

fn be_u32(b: &[u8], off: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

fn be_u64(b: &[u8], off: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Width in bytes and required alignment of fixed-size types; `None` for strings and NULL.
fn fixed_width(kind: u32) -> Option<usize> {
    match kind {
        kind::CHAR | kind::INT8 | kind::BIN => Some(1),
        kind::INT16 => Some(2),
        kind::INT32 => Some(4),
        kind::INT64 => Some(8),
        _ => None,
    }
}

/// Check that every string-typed entry has its strings NUL-terminated inside the store, in one
/// pass over the store whatever the number of entries: `n` strings starting at `start` are all
/// terminated exactly when the store holds at least `n` NULs from `start` on.
fn check_strings(store: &[u8], entries: &[Entry]) -> Result<(), usize> {
    let mut order: Vec<usize> = (0..entries.len()).filter(|&i| entries.get(i).is_some_and(|e| e.is_string())).collect();
    order.sort_unstable_by_key(|&i| entries.get(i).map_or(0, |e| e.start));
    let total = store.iter().filter(|&&b| b == 0).count();
    let (mut pos, mut before) = (0usize, 0usize);
    for i in order {
        let Some(e) = entries.get(i) else { continue };
        before += store.get(pos..e.start).map_or(0, |s| s.iter().filter(|&&b| b == 0).count());
        pos = e.start;
        if total - before < e.string_count() {
            return Err(i);
        }
    }
    Ok(())
}

/// Parse and fully validate one header blob.
pub fn parse_header(blob: &[u8]) -> Result<RpmHeader<'_>, HeaderError> {
    let too_short = || HeaderError::TooShort { len: blob.len() };
    let il = be_u32(blob, 0).ok_or_else(too_short)?;
    let dl = be_u32(blob, 4).ok_or_else(too_short)?;
    let il_n = usize::try_from(il)
        .ok()
        .filter(|&n| n <= limits::MAX_RPM_HEADER_TAGS)
        .ok_or(HeaderError::TooManyTags { il, limit: limits::MAX_RPM_HEADER_TAGS })?;
    let too_large = HeaderError::TooLarge { dl, limit: limits::MAX_RPM_HEADER_BYTES };
    let dl_n =
        usize::try_from(dl).ok().filter(|&n| n <= limits::MAX_RPM_HEADER_BYTES).ok_or_else(|| too_large.clone())?;
    let index_bytes = il_n.checked_mul(ENTRY_BYTES).ok_or_else(|| too_large.clone())?;
    let store_start = PREAMBLE_BYTES.checked_add(index_bytes).ok_or_else(|| too_large.clone())?;
    let total = store_start.checked_add(dl_n).ok_or_else(|| too_large.clone())?;
    if total > limits::MAX_RPM_HEADER_BYTES {
        return Err(too_large);
    }
    let store = blob.get(store_start..total).ok_or(HeaderError::Truncated { need: total, have: blob.len() })?;

    let mut entries = Vec::with_capacity(il_n);
    for index in 0..il_n {
        let base = PREAMBLE_BYTES + index * ENTRY_BYTES;
        let field = |n: usize| be_u32(blob, base + 4 * n).ok_or_else(too_short);
        // The tag and offset are signed in rpm's on-disk struct; reinterpret the bits.
        let tag = i32::from_be_bytes(field(0)?.to_be_bytes());
        let kind = field(1)?;
        let offset = i32::from_be_bytes(field(2)?.to_be_bytes());
        let count = field(3)?;
        if (tag::HEADERIMAGE..=tag::HEADERIMMUTABLE).contains(&tag) {
            // Region markers point at a region trailer; they carry no package data.
            continue;
        }
        let bad = |what: String| HeaderError::BadEntry { index, tag, what };
        if kind > kind::I18NSTRING {
            return Err(bad(format!("unknown data type {kind}")));
        }
        let start = usize::try_from(offset)
            .ok()
            .filter(|&o| o <= dl_n)
            .ok_or_else(|| bad(format!("offset {offset} outside the {dl}-byte data store")))?;
        let len = if let Some(width) = fixed_width(kind) {
            if start % width != 0 {
                return Err(bad(format!("offset {offset} not aligned to {width} bytes")));
            }
            usize::try_from(count)
                .ok()
                .and_then(|c| c.checked_mul(width))
                .filter(|&l| start.checked_add(l).is_some_and(|end| end <= dl_n))
                .ok_or_else(|| bad(format!("{count} values at offset {offset} run past the data store")))?
        } else {
            // NULL has no data; string lengths are only known by scanning, done lazily by the
            // getters once `check_strings` has proved every string is terminated.
            0
        };
        let entry = Entry { index, tag, kind, count, start, len };
        // Each string takes at least one byte: refuse counts the store cannot hold.
        if entry.string_count() > dl_n - start {
            return Err(bad(format!("{count} strings cannot fit in the data store")));
        }
        entries.push(entry);
    }
    if let Err(i) = check_strings(store, &entries) {
        let (index, tag) = entries.get(i).map_or((i, 0), |e| (e.index, e.tag));
        return Err(HeaderError::BadEntry {
            index,
            tag,
            what: "string not NUL-terminated inside the data store".to_owned(),
        });
    }
    Ok(RpmHeader { entries, store })
}

/// Split a source rpm file name into `(name, version-release)`, from the right:
/// `util-linux-2.32.1-42.el8_8.src.rpm` -> `("util-linux", "2.32.1-42.el8_8")`.
#[must_use]
pub fn parse_source_rpm(file_name: &str) -> Option<(String, String)> {
    let stem = file_name.strip_suffix(".src.rpm").or_else(|| file_name.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = stem.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name.to_owned(), format!("{version}-{release}")))
}

impl<'a> RpmHeader<'a> {
    fn entry(&self, tag: i32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    fn data(&self, e: &Entry) -> &'a [u8] {
        let store: &'a [u8] = self.store;
        e.start.checked_add(e.len).and_then(|end| store.get(e.start..end)).unwrap_or(&[])
    }

    /// Number of (non-region) index entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the header has no (non-region) index entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if the header has an entry for `tag`.
    #[must_use]
    pub fn has(&self, tag: i32) -> bool {
        self.entry(tag).is_some()
    }

    /// The strings of a STRING, STRING_ARRAY or I18NSTRING tag (lossy UTF-8).
    pub fn strings(&self, tag: i32) -> Result<Option<Vec<String>>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(None) };
        match e.kind {
            kind::STRING | kind::STRING_ARRAY | kind::I18NSTRING => {}
            found => {
                return Err(HeaderError::WrongType { tag, found, expected: "string" });
            }
        }
        // Validated at parse time: at least `string_count` NULs follow `start`, so the first
        // `string_count` pieces are exactly the entry's strings.
        let data = self.store.get(e.start..).unwrap_or(&[]);
        let out =
            data.split(|&b| b == 0).take(e.string_count()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        Ok(Some(out))
    }

    /// The first string of a STRING or I18NSTRING (or STRING_ARRAY) tag, lossy UTF-8.
    pub fn string(&self, tag: i32) -> Result<Option<String>, HeaderError> {
        Ok(self.strings(tag)?.and_then(|v| v.into_iter().next()))
    }

    /// The first value of an INT32 tag.
    pub fn u32(&self, tag: i32) -> Result<Option<u32>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(None) };
        if e.kind != kind::INT32 {
            return Err(HeaderError::WrongType { tag, found: e.kind, expected: "INT32" });
        }
        Ok(be_u32(self.data(e), 0))
    }

    /// Every value of an INT32 tag (empty when absent).
    pub fn u32s(&self, tag: i32) -> Result<Vec<u32>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(Vec::new()) };
        if e.kind != kind::INT32 {
            return Err(HeaderError::WrongType { tag, found: e.kind, expected: "INT32" });
        }
        Ok(self.data(e).chunks_exact(4).filter_map(|c| be_u32(c, 0)).collect())
    }

    /// The paths of the files the package installed (DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]);
    /// an index out of range skips that file.
    pub fn file_paths(&self) -> Result<Vec<String>, HeaderError> {
        let bases = self.strings(tag::BASENAMES)?.unwrap_or_default();
        let dirs = self.strings(tag::DIRNAMES)?.unwrap_or_default();
        let index = self.u32s(tag::DIRINDEXES)?;
        Ok(bases
            .iter()
            .zip(index)
            .filter_map(|(b, i)| dirs.get(usize::try_from(i).ok()?).map(|d| format!("{d}{b}")))
            .collect())
    }

    /// The first value of an INT64 tag (an INT32 tag is widened).
    pub fn u64(&self, tag: i32) -> Result<Option<u64>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(None) };
        match e.kind {
            kind::INT64 => Ok(be_u64(self.data(e), 0)),
            kind::INT32 => Ok(be_u32(self.data(e), 0).map(u64::from)),
            found => Err(HeaderError::WrongType { tag, found, expected: "INT64" }),
        }
    }

    /// The bytes of a BIN tag.
    pub fn bin(&self, tag: i32) -> Result<Option<&'a [u8]>, HeaderError> {
        let Some(e) = self.entry(tag) else { return Ok(None) };
        if e.kind != kind::BIN {
            return Err(HeaderError::WrongType { tag, found: e.kind, expected: "BIN" });
        }
        Ok(Some(self.data(e)))
    }

    fn required(&self, tag: i32, name: &'static str) -> Result<String, HeaderError> {
        self.string(tag)?.filter(|s| !s.is_empty()).ok_or(HeaderError::Missing { tag, name })
    }

    /// The installed package this header describes. NAME and VERSION are required; the other
    /// fields are `None` when their tag is absent (vendor and license also when empty).
    pub fn to_package(&self, db: DbFormat, db_path: &str) -> Result<Package, HeaderError> {
        let name = self.required(tag::NAME, "NAME")?;
        let version = self.required(tag::VERSION, "VERSION")?;
        let mut p = Package::new(Ecosystem::Rpm, &name, &version, db, db_path);
        p.release = self.string(tag::RELEASE)?;
        p.epoch = self.u32(tag::EPOCH)?;
        p.arch = self.string(tag::ARCH)?;
        p.source_rpm = self.string(tag::SOURCERPM)?.filter(|s| !s.is_empty());
        if let Some((n, v)) = p.source_rpm.as_deref().and_then(parse_source_rpm) {
            p.source_name = Some(n);
            p.source_version = Some(v);
        }
        p.license = self.string(tag::LICENSE)?.filter(|s| !s.is_empty());
        p.vendor = self.string(tag::VENDOR)?.filter(|s| !s.is_empty());
        p.installed_size = match self.u64(tag::LONGSIZE)? {
            Some(n) => Some(n),
            None => self.u32(tag::SIZE)?.map(u64::from),
        };
        Ok(p)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds header blobs for tests: entries are laid out in the order given, integers aligned.
    #[derive(Debug, Default)]
    pub(crate) struct Builder {
        entries: Vec<(i32, u32, u32, Vec<u8>)>,
    }

    impl Builder {
        pub(crate) fn string(mut self, tag: i32, s: &str) -> Self {
            let mut d = s.as_bytes().to_vec();
            d.push(0);
            self.entries.push((tag, kind::STRING, 1, d));
            self
        }
        pub(crate) fn int32(mut self, tag: i32, v: u32) -> Self {
            self.entries.push((tag, kind::INT32, 1, v.to_be_bytes().to_vec()));
            self
        }
        pub(crate) fn int64(mut self, tag: i32, v: u64) -> Self {
            self.entries.push((tag, kind::INT64, 1, v.to_be_bytes().to_vec()));
            self
        }
        pub(crate) fn raw(mut self, tag: i32, kind: u32, count: u32, data: &[u8]) -> Self {
            self.entries.push((tag, kind, count, data.to_vec()));
            self
        }
        pub(crate) fn build(&self) -> Vec<u8> {
            let mut store = Vec::new();
            let mut index = Vec::new();
            for (tag, kind, count, data) in &self.entries {
                let align = fixed_width(*kind).unwrap_or(1);
                while store.len() % align != 0 {
                    store.push(0);
                }
                let off = u32::try_from(store.len()).unwrap_or(u32::MAX);
                index.extend_from_slice(&tag.to_be_bytes());
                index.extend_from_slice(&kind.to_be_bytes());
                index.extend_from_slice(&off.to_be_bytes());
                index.extend_from_slice(&count.to_be_bytes());
                store.extend_from_slice(data);
            }
            let il = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
            let dl = u32::try_from(store.len()).unwrap_or(u32::MAX);
            let mut blob = il.to_be_bytes().to_vec();
            blob.extend_from_slice(&dl.to_be_bytes());
            blob.extend_from_slice(&index);
            blob.extend_from_slice(&store);
            blob
        }
    }

    /// A typical package header.
    pub(crate) fn sample() -> Builder {
        Builder::default()
            .raw(tag::HEADERIMMUTABLE, kind::BIN, 16, &[0u8; 16])
            .string(tag::NAME, "libuuid")
            .string(tag::VERSION, "2.32.1")
            .string(tag::RELEASE, "42.el8_8")
            .int32(tag::SIZE, 35104)
            .string(tag::VENDOR, "Red Hat, Inc.")
            .string(tag::LICENSE, "BSD")
            .string(tag::ARCH, "x86_64")
            .string(tag::SOURCERPM, "util-linux-2.32.1-42.el8_8.src.rpm")
    }

    #[test]
    fn parses_built_header() -> Result<(), HeaderError> {
        let blob = sample().int32(tag::EPOCH, 2).build();
        let h = parse_header(&blob)?;
        assert_eq!(h.len(), 9, "region entry is skipped");
        let p = h.to_package(DbFormat::RpmBdb, "/var/lib/rpm/Packages")?;
        assert_eq!(p.name, "libuuid");
        assert_eq!(p.full_version(), "2:2.32.1-42.el8_8");
        assert_eq!(p.installed_size, Some(35104));
        assert_eq!(p.source_name.as_deref(), Some("util-linux"));
        assert_eq!(p.source_version.as_deref(), Some("2.32.1-42.el8_8"));
        assert_eq!(p.vendor.as_deref(), Some("Red Hat, Inc."));
        Ok(())
    }

    #[test]
    fn longsize_wins_over_size_and_empty_vendor_is_none() -> Result<(), HeaderError> {
        let blob = sample().int64(tag::LONGSIZE, 5_000_000_000).string(tag::VENDOR, "").build();
        let h = parse_header(&blob)?;
        // The first VENDOR entry is the real one; build a header with only an empty vendor.
        assert_eq!(h.to_package(DbFormat::RpmBdb, "x")?.installed_size, Some(5_000_000_000));
        let blob = Builder::default().string(tag::NAME, "a").string(tag::VERSION, "1").string(tag::VENDOR, "").build();
        let p = parse_header(&blob)?.to_package(DbFormat::RpmBdb, "x")?;
        assert_eq!(p.vendor, None);
        assert_eq!(p.epoch, None);
        assert_eq!(p.release, None);
        Ok(())
    }

    #[test]
    fn source_rpm_names() {
        let s = |x: &str| parse_source_rpm(x);
        assert_eq!(
            s("util-linux-2.32.1-42.el8_8.src.rpm"),
            Some(("util-linux".to_owned(), "2.32.1-42.el8_8".to_owned()))
        );
        assert_eq!(
            s("gcc11-11.2.1+git610-1.3.9.nosrc.rpm"),
            Some(("gcc11".to_owned(), "11.2.1+git610-1.3.9".to_owned()))
        );
        assert_eq!(s("foo-1.src.rpm"), None);
        assert_eq!(s("foo-1-2.x86_64.rpm"), None);
        assert_eq!(s("-1-2.src.rpm"), None);
        assert_eq!(s(""), None);
    }

    #[test]
    fn hostile_headers_are_rejected() {
        // il = 0xffffffff
        let mut blob = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(parse_header(&blob), Err(HeaderError::TooManyTags { .. })));
        // dl huge
        blob = vec![0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(parse_header(&blob), Err(HeaderError::TooLarge { .. })));
        // too short
        assert!(matches!(parse_header(&[0, 0, 0]), Err(HeaderError::TooShort { .. })));
        // claims more than it has
        let good = sample().build();
        for cut in [8, 9, 24, good.len() / 2, good.len() - 1] {
            assert!(parse_header(good.get(..cut).unwrap_or(&[])).is_err(), "cut at {cut}");
        }
        // offset past the end of the store
        let b = Builder::default().raw(tag::NAME, kind::STRING, 1, b"x\0").build();
        let mut bad = b.clone();
        bad[16..20].copy_from_slice(&100u32.to_be_bytes());
        assert!(matches!(parse_header(&bad), Err(HeaderError::BadEntry { .. })));
        // negative offset
        bad[16..20].copy_from_slice(&(-4i32).to_be_bytes());
        assert!(matches!(parse_header(&bad), Err(HeaderError::BadEntry { .. })));
        // string without NUL
        let b = Builder::default().raw(tag::NAME, kind::STRING, 1, b"abc").build();
        assert!(matches!(parse_header(&b), Err(HeaderError::BadEntry { .. })));
        // string array whose count exceeds the store
        let b = Builder::default().raw(1118, kind::STRING_ARRAY, u32::MAX, b"a\0b\0").build();
        assert!(matches!(parse_header(&b), Err(HeaderError::BadEntry { .. })));
        // INT32 count past the end, misaligned INT32, unknown type
        let b = Builder::default().raw(tag::SIZE, kind::INT32, 2, &[0, 0, 0, 1]).build();
        assert!(matches!(parse_header(&b), Err(HeaderError::BadEntry { .. })));
        let b = Builder::default().raw(tag::SIZE, kind::INT32, u32::MAX, &[0, 0, 0, 1]).build();
        assert!(matches!(parse_header(&b), Err(HeaderError::BadEntry { .. })));
        let mut b = Builder::default().raw(tag::SIZE, kind::INT32, 1, &[0, 0, 0, 1, 0, 0, 0, 0]).build();
        b[16..20].copy_from_slice(&2u32.to_be_bytes());
        assert!(matches!(parse_header(&b), Err(HeaderError::BadEntry { .. })));
        let b = Builder::default().raw(tag::NAME, 77, 1, b"a\0").build();
        assert!(matches!(parse_header(&b), Err(HeaderError::BadEntry { .. })));
        // wrong type for a needed tag, missing NAME
        let b = Builder::default().int32(tag::NAME, 1).build();
        assert!(parse_header(&b).is_ok_and(|h| h.to_package(DbFormat::RpmBdb, "x").is_err()));
        let b = Builder::default().string(tag::VERSION, "1").build();
        assert!(parse_header(&b).is_ok_and(|h| matches!(
            h.to_package(DbFormat::RpmBdb, "x"),
            Err(HeaderError::Missing { tag: tag::NAME, .. })
        )));
    }

    #[test]
    fn many_string_entries_validate_in_linear_time() -> Result<(), HeaderError> {
        // 65,535 entries all naming the same 1 MiB of strings: validating each one by scanning
        // would take 65,535 passes over the store.
        let store: Vec<u8> = b"a\0".iter().copied().cycle().take(1 << 20).collect();
        let count = u32::try_from(store.len() / 2).unwrap_or(0);
        let il = limits::MAX_RPM_HEADER_TAGS;
        let mut blob = u32::try_from(il).unwrap_or(0).to_be_bytes().to_vec();
        blob.extend_from_slice(&u32::try_from(store.len()).unwrap_or(0).to_be_bytes());
        for _ in 0..il {
            for v in [1118u32, kind::STRING_ARRAY, 0, count] {
                blob.extend_from_slice(&v.to_be_bytes());
            }
        }
        blob.extend_from_slice(&store);
        let start = std::time::Instant::now();
        let h = parse_header(&blob)?;
        assert_eq!(h.len(), il);
        assert_eq!(h.strings(1118)?.map(|v| v.len()), Some(store.len() / 2));
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        // One string too many for the NULs present.
        let last = blob.len() - store.len() - 4;
        blob[last..last + 4].copy_from_slice(&(count + 1).to_be_bytes());
        assert!(matches!(parse_header(&blob), Err(HeaderError::BadEntry { .. })));
        Ok(())
    }

    /// xorshift64: a tiny deterministic PRNG for mutation tests.
    pub(crate) fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    #[test]
    fn mutated_headers_never_panic() {
        let good = sample().int32(tag::EPOCH, 1).int64(tag::LONGSIZE, 9).build();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..(xorshift(&mut rng) % 4 + 1) {
                let len = b.len() as u64;
                let pos = usize::try_from(xorshift(&mut rng) % len).unwrap_or(0);
                if let Some(byte) = b.get_mut(pos) {
                    *byte = u8::try_from(xorshift(&mut rng) & 0xff).unwrap_or(0);
                }
            }
            if let Ok(h) = parse_header(&b) {
                let _ = h.to_package(DbFormat::RpmSqlite, "x");
                let _ = h.strings(tag::SUMMARY);
                let _ = h.bin(tag::SIGMD5);
            }
        }
    }
}
