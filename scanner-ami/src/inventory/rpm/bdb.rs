//! Reader of rpm's BerkeleyDB *hash* `Packages` database (RHEL/CentOS 7 and 8, Amazon Linux 2,
//! older Fedora and SUSE): walks the hash pages in page order and yields every stored value
//! (one rpm header blob per installed package), following overflow-page chains.
//!
//! Only what rpm's database uses is supported: a hash database (not btree), unencrypted and
//! without page checksums, byte order detected from the meta page magic (both orders work).
//! Pages are read on demand through [`FileRead::read_exact_at`]: memory holds one page plus the
//! value being assembled, whatever the file size. Page layouts are Berkeley DB's
//! (`dbinc/db_page.h`, `dbinc/hash.h`).
//!
//! "Database order" here is page order, then item order inside a page, which is also the order
//! of a sequential cursor over the buckets for databases without bucket overflow chains.

use std::collections::HashSet;

use super::{BlobSink, Collector};
use crate::fs::{FileRead, FsError};
use crate::inventory::{DbFormat, DbRead};
use crate::limits;

/// Hash database magic in the generic meta header (`DB_HASHMAGIC`).
pub const HASH_MAGIC: u32 = 0x0006_1561;
/// Hash meta page versions whose hash page layout we read: 8 (Berkeley DB 4.x), 9 (4.6 - 5.x,
/// what RHEL 7/8 rpm writes), 10 (6.x, same page layout plus blob items).
const HASH_VERSIONS: std::ops::RangeInclusive<u32> = 8..=10;
/// Smallest and largest page sizes Berkeley DB allows (`DB_MIN_PGSIZE`, `DB_MAX_PGSIZE`).
const MIN_PAGE_SIZE: u32 = 512;
const MAX_PAGE_SIZE: u32 = 65536;
/// Size of the generic page header (`SIZEOF_PAGE`), also where overflow data starts.
const PAGE_HEADER: usize = 26;

/// Page types (`P_*` in `db_page.h`).
const P_INVALID: u8 = 0;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
/// Highest page type defined by Berkeley DB (`P_IHEAP` = 16, `P_PAGETYPE_MAX` = 17).
const P_MAX_KNOWN: u8 = 16;

/// Hash item types, the first byte of every item (`H_*` in `db_page.h`).
const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;
const H_BLOB: u8 = 5;
/// Size of an `HOFFPAGE` item: type, 3 unused bytes, pgno u32, tlen u32.
const HOFFPAGE_SIZE: usize = 12;

/// Meta page byte offsets (`DBMETA`).
const META_MAGIC: usize = 12;
const META_VERSION: usize = 16;
const META_PAGESIZE: usize = 20;
const META_ENCRYPT_ALG: usize = 24;
const META_TYPE: usize = 25;
const META_FLAGS: usize = 26;
const META_LAST_PGNO: usize = 32;
/// `DBMETA_CHKSUM`: pages carry a checksum, which moves the item index.
const METAFLAG_CHKSUM: u8 = 0x01;

/// Page header byte offsets (`PAGE`).
const PG_PGNO: usize = 8;
const PG_NEXT: usize = 16;
const PG_ENTRIES: usize = 20;
const PG_HF_OFFSET: usize = 22;
const PG_TYPE: usize = 25;

/// Values shorter than this are not headers (the preamble alone is 8 bytes); rpm keeps a 4-byte
/// record under key 0 for its own bookkeeping.
const MIN_HEADER_VALUE: usize = 8;

/// Why a BerkeleyDB file could not be read (or only partly).
#[derive(Debug, thiserror::Error)]
pub enum BdbError {
    #[error(transparent)]
    Io(#[from] FsError),
    #[error("file of {len} bytes is too small for a BerkeleyDB meta page")]
    TooSmall { len: u64 },
    #[error("not a BerkeleyDB hash database (magic {magic:#010x})")]
    NotHash { magic: u32 },
    #[error("unsupported BerkeleyDB hash version {version}")]
    Version { version: u32 },
    #[error("invalid page size {size}")]
    PageSize { size: u32 },
    #[error("meta page has type {page_type}, expected the hash meta page type {P_HASHMETA}")]
    MetaType { page_type: u8 },
    #[error("encrypted BerkeleyDB databases are not supported")]
    Encrypted,
    #[error("BerkeleyDB databases with page checksums are not supported")]
    Checksummed,
    #[error("database is truncated: the meta page says {pages} pages, the file holds {in_file}")]
    Truncated { pages: u64, in_file: u64 },
}

/// Byte order of the database, detected from the meta page magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn u16(self, b: &[u8], off: usize) -> Option<u16> {
        let bytes: [u8; 2] = b.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Order::Little => u16::from_le_bytes(bytes),
            Order::Big => u16::from_be_bytes(bytes),
        })
    }

    fn u32(self, b: &[u8], off: usize) -> Option<u32> {
        let bytes: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Order::Little => u32::from_le_bytes(bytes),
            Order::Big => u32::from_be_bytes(bytes),
        })
    }
}

/// What the meta page says about the database.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    order: Order,
    page_size: usize,
    /// Last page number that is actually inside the file.
    last_pgno: u32,
}

impl Geometry {
    fn offset(&self, pgno: u32) -> Option<u64> {
        u64::from(pgno).checked_mul(self.page_size as u64)
    }
}

/// Read and check the meta page. Returns the geometry and, when the file is shorter than the
/// meta page says, the truncation error to report after reading what is there.
fn read_meta(file: &mut dyn FileRead) -> Result<(Geometry, Option<BdbError>), BdbError> {
    let len = file.len();
    let mut meta = [0u8; MIN_PAGE_SIZE as usize];
    if len < u64::from(MIN_PAGE_SIZE) {
        return Err(BdbError::TooSmall { len });
    }
    file.read_exact_at(0, &mut meta)?;
    let le = Order::Little.u32(&meta, META_MAGIC).unwrap_or(0);
    let order = if le == HASH_MAGIC {
        Order::Little
    } else if le.swap_bytes() == HASH_MAGIC {
        Order::Big
    } else {
        return Err(BdbError::NotHash { magic: le });
    };
    let field = |off| order.u32(&meta, off).unwrap_or(0);
    let version = field(META_VERSION);
    if !HASH_VERSIONS.contains(&version) {
        return Err(BdbError::Version { version });
    }
    let size = field(META_PAGESIZE);
    if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&size) || !size.is_power_of_two() {
        return Err(BdbError::PageSize { size });
    }
    let page_type = meta.get(META_TYPE).copied().unwrap_or(0);
    if page_type != P_HASHMETA {
        return Err(BdbError::MetaType { page_type });
    }
    if meta.get(META_ENCRYPT_ALG).copied().unwrap_or(0) != 0 {
        return Err(BdbError::Encrypted);
    }
    if meta.get(META_FLAGS).copied().unwrap_or(0) & METAFLAG_CHKSUM != 0 {
        return Err(BdbError::Checksummed);
    }
    let claimed_last = field(META_LAST_PGNO);
    let in_file = len / u64::from(size);
    let pages = u64::from(claimed_last).saturating_add(1);
    let (last_pgno, truncated) = if pages > in_file {
        let last = u32::try_from(in_file.saturating_sub(1)).unwrap_or(u32::MAX);
        (last, Some(BdbError::Truncated { pages, in_file }))
    } else {
        (claimed_last, None)
    };
    let page_size = usize::try_from(size).map_err(|_| BdbError::PageSize { size })?;
    Ok((Geometry { order, page_size, last_pgno }, truncated))
}

/// Read the value stored in the overflow chain starting at `first`, `tlen` bytes long.
fn read_overflow(
    file: &mut dyn FileRead,
    geo: &Geometry,
    page: &mut [u8],
    first: u32,
    tlen: u32,
) -> Result<Vec<u8>, String> {
    let total = usize::try_from(tlen)
        .ok()
        .filter(|&t| t <= limits::MAX_RPM_HEADER_BYTES && (t as u64) <= file.len())
        .ok_or_else(|| format!("overflow value of {tlen} bytes exceeds the limit or the file"))?;
    let mut out = Vec::with_capacity(total);
    let mut visited = HashSet::new();
    let mut pgno = first;
    while out.len() < total {
        if pgno == 0 || pgno > geo.last_pgno {
            return Err(format!(
                "overflow chain reaches page {pgno}, outside the database, after {} of {total} bytes",
                out.len()
            ));
        }
        if !visited.insert(pgno) {
            return Err(format!("overflow chain loops back to page {pgno}"));
        }
        let off = geo.offset(pgno).ok_or_else(|| format!("page {pgno} offset overflows"))?;
        file.read_exact_at(off, page).map_err(|e| e.to_string())?;
        let page_type = page.get(PG_TYPE).copied().unwrap_or(0);
        if page_type != P_OVERFLOW {
            return Err(format!("overflow chain reaches page {pgno} of type {page_type}"));
        }
        if geo.order.u32(page, PG_PGNO) != Some(pgno) {
            return Err(format!("overflow page {pgno} does not carry its own page number"));
        }
        let used = usize::from(geo.order.u16(page, PG_HF_OFFSET).unwrap_or(0));
        let avail = page.len().saturating_sub(PAGE_HEADER);
        if used == 0 || used > avail {
            return Err(format!("overflow page {pgno} claims {used} bytes of data"));
        }
        let take = used.min(total.saturating_sub(out.len()));
        let end = PAGE_HEADER.checked_add(take).ok_or("overflow page bounds overflow")?;
        let data = page.get(PAGE_HEADER..end).ok_or_else(|| format!("overflow page {pgno} too short"))?;
        out.extend_from_slice(data);
        pgno = geo.order.u32(page, PG_NEXT).unwrap_or(0);
    }
    Ok(out)
}

/// One data item of a hash page, as found.
enum Item {
    /// A value stored inline.
    Inline(std::ops::Range<usize>),
    /// A value stored in an overflow chain.
    OffPage { pgno: u32, tlen: u32 },
}

/// Find the data items of one hash page (already read into `page`). `Err` means the page is
/// corrupt and is skipped whole; per-item problems are reported through `sink`.
fn page_items(geo: &Geometry, pgno: u32, page: &[u8], sink: &mut dyn BlobSink) -> Result<Vec<(usize, Item)>, String> {
    let order = geo.order;
    if order.u32(page, PG_PGNO) != Some(pgno) {
        return Err(format!("hash page {pgno} does not carry its own page number"));
    }
    let entries = usize::from(order.u16(page, PG_ENTRIES).unwrap_or(0));
    let index_end = entries.checked_mul(2).and_then(|n| n.checked_add(PAGE_HEADER)).unwrap_or(usize::MAX);
    if index_end > page.len() {
        return Err(format!("hash page {pgno} claims {entries} entries, more than fit in a page"));
    }
    let offset_of = |i: usize| -> Option<usize> { order.u16(page, PAGE_HEADER + 2 * i).map(usize::from) };
    let mut items = Vec::new();
    let mut i = 0;
    while i < entries {
        let data = i + 1;
        if data >= entries {
            sink.skip(format!("page {pgno}: key item {i} has no data item"));
            break;
        }
        // Items are packed from the end of the page down: item `data` ends where item `i` (its
        // key) starts.
        let (Some(start), Some(end)) = (offset_of(data), offset_of(i)) else {
            return Err(format!("hash page {pgno}: item index unreadable"));
        };
        if start < index_end || start >= end || end > page.len() {
            return Err(format!("hash page {pgno}: item {data} at {start}..{end} is outside the item area"));
        }
        let item_type = page.get(start).copied().unwrap_or(0);
        match item_type {
            H_KEYDATA => items.push((data, Item::Inline(start + 1..end))),
            H_OFFPAGE => {
                if end - start < HOFFPAGE_SIZE {
                    return Err(format!("hash page {pgno}: off-page item {data} is {} bytes", end - start));
                }
                let pgno_ref = order.u32(page, start + 4).unwrap_or(0);
                let tlen = order.u32(page, start + 8).unwrap_or(0);
                items.push((data, Item::OffPage { pgno: pgno_ref, tlen }));
            }
            H_DUPLICATE | H_OFFDUP | H_BLOB => {
                sink.skip(format!("page {pgno} item {data}: unsupported item type {item_type} (duplicates/blob)"));
            }
            other => return Err(format!("hash page {pgno}: item {data} has unknown type {other}")),
        }
        i += 2;
    }
    Ok(items)
}

/// Walk every hash page of the database in `file` and hand each stored value that can be a
/// header (8 bytes or more) to `sink`, in page order. Corrupt pages and values are reported
/// through [`BlobSink::skip`] and iteration goes on; an `Err` means the database could not be
/// read at all or was cut short (values found before are already delivered).
pub fn read_blobs(file: &mut dyn FileRead, sink: &mut dyn BlobSink) -> Result<(), BdbError> {
    let (geo, truncated) = read_meta(file)?;
    let mut page = vec![0u8; geo.page_size];
    let mut chain_page = vec![0u8; geo.page_size];
    for pgno in 1..=geo.last_pgno {
        let Some(off) = geo.offset(pgno) else { break };
        let Some(head) = page.get_mut(..PAGE_HEADER) else { break };
        file.read_exact_at(off, head)?;
        let page_type = head.get(PG_TYPE).copied().unwrap_or(0);
        match page_type {
            P_HASH | P_HASH_UNSORTED => {}
            t if t <= P_MAX_KNOWN && t != P_INVALID && t != P_OVERFLOW => {
                sink.skip(format!("page {pgno}: page type {t} does not belong in a hash database"));
                continue;
            }
            t if t <= P_MAX_KNOWN => continue,
            t => {
                sink.skip(format!("page {pgno}: unknown page type {t}"));
                continue;
            }
        }
        file.read_exact_at(off, &mut page)?;
        let items = match page_items(&geo, pgno, &page, sink) {
            Ok(items) => items,
            Err(why) => {
                sink.skip(why);
                continue;
            }
        };
        for (index, item) in items {
            let record = format!("page {pgno} item {index}");
            let value = match item {
                Item::Inline(range) => {
                    let Some(v) = page.get(range) else { continue };
                    if v.len() < MIN_HEADER_VALUE {
                        continue;
                    }
                    v.to_vec()
                }
                Item::OffPage { tlen, .. } if (tlen as usize) < MIN_HEADER_VALUE => continue,
                Item::OffPage { pgno: first, tlen } => match read_overflow(file, &geo, &mut chain_page, first, tlen) {
                    Ok(v) => v,
                    Err(why) => {
                        sink.skip(format!("{record}: {why}"));
                        continue;
                    }
                },
            };
            if sink.blob(&record, &value).is_break() {
                return Ok(());
            }
        }
    }
    match truncated {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Read the packages of the BerkeleyDB `Packages` database in `file` (found at `path`).
pub fn read(file: &mut dyn FileRead, path: &str) -> DbRead {
    Collector::collect(DbFormat::RpmBdb, path, |c| read_blobs(file, c))
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use super::*;
    use crate::fs::MemFile;
    use crate::inventory::rpm::header::{parse_header, tag, tests::xorshift};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const PATH: &str = "/var/lib/rpm/Packages";
    const PAGE: usize = 4096;

    fn libuuid() -> std::io::Result<Vec<u8>> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/go-rpmdb/libuuid-bdb/Packages"))
    }

    /// Collects raw blobs and notes.
    #[derive(Debug, Default)]
    struct Blobs {
        blobs: Vec<(String, Vec<u8>)>,
        notes: Vec<String>,
    }

    impl BlobSink for Blobs {
        fn blob(&mut self, record: &str, blob: &[u8]) -> ControlFlow<()> {
            self.blobs.push((record.to_owned(), blob.to_vec()));
            ControlFlow::Continue(())
        }
        fn skip(&mut self, why: String) {
            self.notes.push(why);
        }
    }

    fn set_u32_le(b: &mut [u8], off: usize, v: u32) {
        if let Some(s) = b.get_mut(off..off + 4) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn check_libuuid(read: &DbRead) -> TestResult {
        assert_eq!(read.error, None);
        assert_eq!(read.packages.len(), 1, "{read:?}");
        let p = read.packages.first().ok_or("no package")?;
        assert_eq!(p.name, "libuuid");
        assert_eq!(p.version, "2.32.1");
        assert_eq!(p.release.as_deref(), Some("42.el8_8"));
        assert_eq!(p.epoch, None);
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
        assert_eq!(p.installed_size, Some(35104));
        assert_eq!(p.source_rpm.as_deref(), Some("util-linux-2.32.1-42.el8_8.src.rpm"));
        assert_eq!(p.source_name.as_deref(), Some("util-linux"));
        assert_eq!(p.source_version.as_deref(), Some("2.32.1-42.el8_8"));
        assert_eq!(p.license.as_deref(), Some("BSD"));
        assert_eq!(p.vendor.as_deref(), Some("Red Hat, Inc."));
        assert_eq!(p.db, DbFormat::RpmBdb);
        assert_eq!(p.db_path, PATH);
        Ok(())
    }

    #[test]
    fn libuuid_fixture() -> TestResult {
        let read = read(&mut MemFile(libuuid()?), PATH);
        check_libuuid(&read)?;
        assert!(read.skipped.is_empty(), "{:?}", read.skipped);

        let mut sink = Blobs::default();
        read_blobs(&mut MemFile(libuuid()?), &mut sink)?;
        assert_eq!(sink.blobs.len(), 1, "the 4-byte key-0 record is skipped silently");
        let (record, blob) = sink.blobs.first().ok_or("no blob")?;
        assert_eq!(record, "page 2 item 1");
        assert_eq!(blob.len(), 80880, "tlen of the off-page item");
        let h = parse_header(blob)?;
        let md5: String = h.bin(tag::SIGMD5)?.ok_or("no SIGMD5")?.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(md5, "c1e561f13d39aee443a1f00258fba000");
        assert_eq!(h.string(tag::SUMMARY)?.as_deref(), Some("Universally unique ID library"));
        Ok(())
    }

    /// Rewrite the little-endian fixture as the same database in big-endian byte order.
    fn to_big_endian(mut b: Vec<u8>) -> Vec<u8> {
        fn swap(b: &mut [u8], off: usize, n: usize) {
            if let Some(s) = b.get_mut(off..off + n) {
                s.reverse();
            }
        }
        for off in [META_MAGIC, META_VERSION, META_PAGESIZE, META_LAST_PGNO] {
            swap(&mut b, off, 4);
        }
        for pg in 1..b.len() / PAGE {
            let base = pg * PAGE;
            let ty = b.get(base + PG_TYPE).copied().unwrap_or(0);
            let entries = Order::Little.u16(&b, base + PG_ENTRIES).unwrap_or(0);
            if ty == P_HASH {
                for i in 0..usize::from(entries) {
                    let at = Order::Little.u16(&b, base + PAGE_HEADER + 2 * i).map_or(0, usize::from);
                    if b.get(base + at) == Some(&H_OFFPAGE) {
                        swap(&mut b, base + at + 4, 4);
                        swap(&mut b, base + at + 8, 4);
                    }
                    swap(&mut b, base + PAGE_HEADER + 2 * i, 2);
                }
            }
            for off in [PG_PGNO, 12, PG_NEXT] {
                swap(&mut b, base + off, 4);
            }
            swap(&mut b, base + PG_ENTRIES, 2);
            swap(&mut b, base + PG_HF_OFFSET, 2);
        }
        b
    }

    #[test]
    fn big_endian_database() -> TestResult {
        let be = to_big_endian(libuuid()?);
        assert_eq!(be.get(12..16), Some(&[0x00, 0x06, 0x15, 0x61][..]));
        check_libuuid(&read(&mut MemFile(be), PATH))
    }

    #[test]
    fn truncated_copies() -> TestResult {
        let full = libuuid()?;
        for cut in [0, 100, 511, 512, 4096, 4100, 8192, 8200, 12288, 50_000, full.len() - 4096, full.len() - 1] {
            let read = read(&mut MemFile(full.get(..cut).ok_or("cut")?.to_vec()), PATH);
            assert!(read.packages.is_empty(), "cut {cut}");
            assert!(read.error.is_some(), "cut {cut}: {read:?}");
        }
        Ok(())
    }

    #[test]
    fn corrupt_overflow_chains_are_skipped_with_a_note() -> TestResult {
        // Loop: page 5 points back to page 3.
        let mut b = libuuid()?;
        set_u32_le(&mut b, 5 * PAGE + PG_NEXT, 3);
        let r = read(&mut MemFile(b), PATH);
        assert!(r.packages.is_empty() && r.error.is_none());
        assert!(r.skipped.iter().any(|s| s.contains("loops back to page 3")), "{:?}", r.skipped);

        // Page in the middle of the chain is not an overflow page.
        let mut b = libuuid()?;
        if let Some(t) = b.get_mut(10 * PAGE + PG_TYPE) {
            *t = P_HASH_UNSORTED;
        }
        let r = read(&mut MemFile(b), PATH);
        assert!(r.packages.is_empty());
        assert!(r.skipped.iter().any(|s| s.contains("reaches page 10 of type 2")), "{:?}", r.skipped);

        // Overflow page claiming zero / too many bytes, chain leaving the file, tlen huge.
        for (off, v) in [
            (7 * PAGE + PG_HF_OFFSET, 0u32),
            (7 * PAGE + PG_HF_OFFSET, 0xffff),
            (21 * PAGE + PG_NEXT, 0),
            (8 * PAGE + PG_NEXT, 999),
            (2 * PAGE + 0xfef + 8, 0xffff_fff0),
            (2 * PAGE + 0xfef + 4, 0),
        ] {
            let mut b = libuuid()?;
            if off % PAGE == PG_HF_OFFSET {
                if let Some(s) = b.get_mut(off..off + 2) {
                    s.copy_from_slice(&u16::try_from(v)?.to_le_bytes());
                }
            } else {
                set_u32_le(&mut b, off, v);
            }
            let r = read(&mut MemFile(b), PATH);
            assert!(r.packages.is_empty(), "patch at {off}");
            assert_eq!(r.skipped.len(), 1, "patch at {off}: {:?}", r.skipped);
        }
        Ok(())
    }

    #[test]
    fn garbage_pages_and_meta() -> TestResult {
        // Unknown page type on page 1: noted, page 2 still read.
        let mut b = libuuid()?;
        if let Some(t) = b.get_mut(PAGE + PG_TYPE) {
            *t = 0x77;
        }
        let r = read(&mut MemFile(b), PATH);
        check_libuuid(&r)?;
        assert_eq!(r.skipped, vec!["page 1: unknown page type 119".to_owned()]);

        // Hash page whose item offsets point into the header / index.
        let mut b = libuuid()?;
        if let Some(s) = b.get_mut(2 * PAGE + PAGE_HEADER..2 * PAGE + PAGE_HEADER + 2) {
            s.copy_from_slice(&3u16.to_le_bytes());
        }
        let r = read(&mut MemFile(b), PATH);
        assert!(r.packages.is_empty() && r.skipped.len() == 1, "{r:?}");

        // Hash page claiming 60000 entries.
        let mut b = libuuid()?;
        if let Some(s) = b.get_mut(2 * PAGE + PG_ENTRIES..2 * PAGE + PG_ENTRIES + 2) {
            s.copy_from_slice(&60000u16.to_le_bytes());
        }
        assert!(read(&mut MemFile(b), PATH).packages.is_empty());

        // Meta page problems are errors for the whole database.
        for (off, v, want) in [
            (META_MAGIC, 0x1234u32, "not a BerkeleyDB hash"),
            (META_PAGESIZE, 3000, "page size"),
            (META_PAGESIZE, 1 << 20, "page size"),
            (META_VERSION, 2, "version"),
            (META_LAST_PGNO, 1000, "truncated"),
        ] {
            let mut b = libuuid()?;
            set_u32_le(&mut b, off, v);
            let r = read(&mut MemFile(b), PATH);
            assert!(r.error.as_deref().is_some_and(|e| e.contains(want)), "{off}: {r:?}");
        }
        let mut b = libuuid()?;
        if let Some(x) = b.get_mut(META_ENCRYPT_ALG) {
            *x = 1;
        }
        assert!(read(&mut MemFile(b), PATH).error.is_some());
        Ok(())
    }

    #[test]
    fn random_bytes_and_mutations_never_panic() -> TestResult {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        // Random files, some with a valid magic and page size.
        for n in 0..200usize {
            let len = 512 + (xorshift(&mut rng) % 20_000) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| (xorshift(&mut rng) & 0xff) as u8).collect();
            if n.is_multiple_of(2) {
                set_u32_le(&mut b, META_MAGIC, HASH_MAGIC);
                set_u32_le(&mut b, META_VERSION, 9);
                set_u32_le(&mut b, META_PAGESIZE, 512);
                if let Some(t) = b.get_mut(META_TYPE..META_TYPE + 3) {
                    t.copy_from_slice(&[P_HASHMETA, 0, 0]);
                }
                if let Some(t) = b.get_mut(META_ENCRYPT_ALG) {
                    *t = 0;
                }
            }
            let _ = read(&mut MemFile(b), PATH);
        }
        // 2,000 mutations of the fixture, half aimed at page headers and item areas.
        let good = libuuid()?;
        let pages = good.len() / PAGE;
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..(xorshift(&mut rng) % 3 + 1) {
                let pos = if xorshift(&mut rng).is_multiple_of(2) {
                    let page = (xorshift(&mut rng) % pages as u64) as usize;
                    let inpage = (xorshift(&mut rng) % 64) as usize;
                    if xorshift(&mut rng).is_multiple_of(2) {
                        page * PAGE + inpage
                    } else {
                        page * PAGE + PAGE - 1 - inpage
                    }
                } else {
                    (xorshift(&mut rng) % good.len() as u64) as usize
                };
                if let Some(x) = b.get_mut(pos) {
                    *x = (xorshift(&mut rng) & 0xff) as u8;
                }
            }
            let r = read(&mut MemFile(b), PATH);
            assert!(r.packages.len() <= 1);
        }
        Ok(())
    }
}
