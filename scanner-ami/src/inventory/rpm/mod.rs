//! rpm package databases: finds every rpm database on a scanned root ([`read_all`]) and turns
//! the header blobs each storage format yields into [`Package`]s ([`Collector`]).
//!
//! One module per concept: [`header`] parses a header blob; [`bdb`] (BerkeleyDB hash
//! `Packages`, RHEL 7/8, Amazon Linux 2), [`ndb`] (SUSE `Packages.db`) and [`sqlite`]
//! (`rpmdb.sqlite`, Fedora/RHEL 9+, CBL-Mariner) yield header blobs in database order through a
//! [`BlobSink`]; [`manifest`] reads the distroless `container-manifest-2` text listing.
//!
//! `gpg-pubkey` entries are imported signing keys that `rpm -qa` lists as if they were packages:
//! they are kept out of the inventory and noted in `skipped`.

pub mod bdb;
pub mod header;
pub mod manifest;
pub mod ndb;
pub mod sqlite;

use std::ops::ControlFlow;

use super::{DbFormat, DbRead, Package};
use crate::fs::{FileRead, RootFs, is_file};
use crate::limits;

/// The paths probed, in order, with the format stored there. `/usr/lib/sysimage/rpm` is rpm's
/// database directory since rpm 4.16 (Fedora 36+, openSUSE, SLE 15); `/var/lib/rpm` the
/// traditional one (often a symlink to the former); `/usr/share/rpm` is where rpm-ostree systems
/// (Fedora CoreOS, RHCOS) keep the sqlite database (Trivy's list, docs/references.md); `/var/lib/rpmmanifest` is the listing of
/// CBL-Mariner/Azure Linux distroless images, which ship no rpmdb.
pub const PROBES: [(DbFormat, &str); 8] = [
    (DbFormat::RpmSqlite, "/usr/lib/sysimage/rpm/rpmdb.sqlite"),
    (DbFormat::RpmNdb, "/usr/lib/sysimage/rpm/Packages.db"),
    (DbFormat::RpmBdb, "/usr/lib/sysimage/rpm/Packages"),
    (DbFormat::RpmSqlite, "/var/lib/rpm/rpmdb.sqlite"),
    (DbFormat::RpmNdb, "/var/lib/rpm/Packages.db"),
    (DbFormat::RpmBdb, "/var/lib/rpm/Packages"),
    (DbFormat::RpmSqlite, "/usr/share/rpm/rpmdb.sqlite"),
    (DbFormat::RpmManifest, "/var/lib/rpmmanifest/container-manifest-2"),
];

/// Bytes compared at the start and at the end of two databases to decide they are the same file
/// reached through two paths (a symlinked directory). 4 KiB covers the BDB meta page (with its
/// unique file id), the SQLite header page and the NDB slot page.
const FINGERPRINT_BYTES: u64 = 4096;

/// Receives what a storage-format reader finds, in database order.
pub trait BlobSink {
    /// One stored header blob; `record` says where it was found (for notes). Return
    /// [`ControlFlow::Break`] to stop reading.
    fn blob(&mut self, record: &str, blob: &[u8]) -> ControlFlow<()>;
    /// A record, page or slot that was skipped, and why.
    fn skip(&mut self, why: String);
}

/// Turns header blobs into the packages of one database, applying the inventory's rules
/// (`gpg-pubkey` skipped, at most [`limits::MAX_PACKAGES_PER_DB`] packages).
#[derive(Debug)]
pub struct Collector {
    format: DbFormat,
    path: String,
    read: DbRead,
}

impl Collector {
    /// Run a storage-format reader over a fresh collector: a reader error is recorded as the
    /// database's error, keeping the packages read before it.
    pub fn collect<E: std::fmt::Display>(
        format: DbFormat,
        path: &str,
        read: impl FnOnce(&mut Collector) -> Result<(), E>,
    ) -> DbRead {
        let mut c = Collector::new(format, path);
        if let Err(e) = read(&mut c) {
            c.fail(e.to_string());
        }
        c.finish()
    }

    /// An empty collector for the database `path` of `format`.
    #[must_use]
    pub fn new(format: DbFormat, path: &str) -> Self {
        Collector { format, path: path.to_owned(), read: DbRead::default() }
    }

    /// Add one package (already converted); `record` names where it came from.
    pub fn push(&mut self, record: &str, pkg: Package) -> ControlFlow<()> {
        if pkg.name == "gpg-pubkey" {
            let release = pkg.release.as_deref().map(|r| format!("-{r}")).unwrap_or_default();
            self.read.skip(format!(
                "{record}: gpg-pubkey-{}{release} is an imported signing key, not a package",
                pkg.version
            ));
            return ControlFlow::Continue(());
        }
        if self.read.packages.len() >= limits::MAX_PACKAGES_PER_DB {
            self.read.error = Some(format!(
                "more than {} packages; the rest of the database is not read",
                limits::MAX_PACKAGES_PER_DB
            ));
            return ControlFlow::Break(());
        }
        self.read.packages.push(pkg);
        ControlFlow::Continue(())
    }

    /// Record that reading stopped early, keeping the packages read so far.
    pub fn fail(&mut self, reason: String) {
        if self.read.error.is_none() {
            self.read.error = Some(reason);
        }
    }

    /// The packages, notes and error gathered.
    #[must_use]
    pub fn finish(self) -> DbRead {
        self.read
    }
}

impl BlobSink for Collector {
    fn blob(&mut self, record: &str, blob: &[u8]) -> ControlFlow<()> {
        let converted = header::parse_header(blob).and_then(|h| h.to_package(self.format, &self.path));
        match converted {
            Ok(pkg) => self.push(record, pkg),
            Err(e) => {
                self.read.skip(format!("{record}: unreadable rpm header: {e}"));
                ControlFlow::Continue(())
            }
        }
    }

    fn skip(&mut self, why: String) {
        self.read.skip(why);
    }
}

/// Read one opened rpm database of `format` (`path` is recorded in each package).
pub fn read_db(format: DbFormat, file: &mut dyn FileRead, path: &str) -> DbRead {
    match format {
        DbFormat::RpmBdb => bdb::read(file, path),
        DbFormat::RpmNdb => ndb::read(file, path),
        DbFormat::RpmSqlite => sqlite::read(file, path),
        DbFormat::RpmManifest => manifest::read(file, path),
        other => DbRead { error: Some(format!("{other:?} is not an rpm database format")), ..DbRead::default() },
    }
}

/// Size plus the first and last [`FINGERPRINT_BYTES`] of a file.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// The [`Fingerprint`] of `file`, or `None` if it cannot be read.
fn fingerprint(file: &mut dyn FileRead) -> Option<Fingerprint> {
    let len = file.len();
    let n = usize::try_from(len.min(FINGERPRINT_BYTES)).ok()?;
    let mut head = vec![0u8; n];
    file.read_exact_at(0, &mut head).ok()?;
    let mut tail = vec![0u8; n];
    file.read_exact_at(len.checked_sub(len.min(FINGERPRINT_BYTES))?, &mut tail).ok()?;
    Some(Fingerprint { len, head, tail })
}

/// Finds which of some paths the packages of an rpm database installed.
struct OwnerSink<'w> {
    wanted: &'w std::collections::HashSet<String>,
    owners: std::collections::HashMap<String, String>,
}

impl BlobSink for OwnerSink<'_> {
    fn blob(&mut self, _record: &str, blob: &[u8]) -> ControlFlow<()> {
        let Ok(h) = header::parse_header(blob) else { return ControlFlow::Continue(()) };
        let (Ok(Some(name)), Ok(paths)) = (h.string(header::tag::NAME), h.file_paths()) else {
            return ControlFlow::Continue(());
        };
        for p in paths {
            if self.wanted.contains(&p) {
                self.owners.insert(p, name.clone());
            }
        }
        if self.owners.len() == self.wanted.len() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
    fn skip(&mut self, _why: String) {}
}

/// Which of the `wanted` paths the packages of the root's rpm databases installed: path ->
/// package name, from each header's file list (DIRNAMES, BASENAMES, DIRINDEXES). The databases
/// are read again (the inventory keeps no file lists); a database reached twice through a
/// symlinked directory is read once. Unreadable databases give no owners (the inventory reports
/// them).
#[must_use]
pub fn owners(
    fs: &dyn RootFs,
    wanted: &std::collections::HashSet<String>,
) -> std::collections::HashMap<String, String> {
    let mut sink = OwnerSink { wanted, owners: std::collections::HashMap::new() };
    let mut seen: Vec<Fingerprint> = Vec::new();
    for (format, path) in PROBES {
        if format == DbFormat::RpmManifest || wanted.is_empty() || !is_file(fs, path) {
            continue;
        }
        let Ok(mut file) = fs.open(path) else { continue };
        if let Some(print) = fingerprint(&mut *file) {
            if seen.contains(&print) {
                continue;
            }
            seen.push(print);
        }
        let _ = match format {
            DbFormat::RpmBdb => bdb::read_blobs(&mut *file, &mut sink).map_err(|e| e.to_string()),
            DbFormat::RpmNdb => ndb::read_blobs(&mut *file, &mut sink).map_err(|e| e.to_string()),
            DbFormat::RpmSqlite => sqlite::read_blobs(&mut *file, &mut sink).map_err(|e| e.to_string()),
            _ => Ok(()),
        };
    }
    sink.owners
}

/// Read every rpm database found on `fs`, in [`PROBES`] order, one result per database file.
///
/// A path that reaches a database already read (same format, size, first and last 4 KiB: the
/// usual case is `/var/lib/rpm` symlinked to `/usr/lib/sysimage/rpm`) is not read again; the
/// first database's `skipped` notes it.
pub fn read_all(fs: &dyn RootFs) -> Vec<(DbFormat, String, DbRead)> {
    let mut out: Vec<(DbFormat, String, DbRead)> = Vec::new();
    let mut seen: Vec<(usize, Fingerprint)> = Vec::new();
    // Directories where one backend's database was read with packages: rpm uses a single backend
    // per directory (sqlite, then ndb, then bdb in PROBES order), so another backend's file there
    // is a leftover of a backend conversion (e.g. `Packages` next to RHEL 9's `rpmdb.sqlite`) and
    // reading it would list every package twice.
    let mut read_dirs: Vec<(&str, usize)> = Vec::new();
    for (format, path) in PROBES {
        if !is_file(fs, path) {
            continue;
        }
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        if format != DbFormat::RpmManifest
            && let Some(&(_, i)) = read_dirs.iter().find(|(d, _)| *d == dir)
        {
            if let Some((_, first, read)) = out.get_mut(i) {
                read.skip(format!(
                    "{path}: another rpm backend's database beside {first}; rpm uses one backend per directory, so this is a leftover and is not read"
                ));
            }
            continue;
        }
        let mut file = match fs.open(path) {
            Ok(f) => f,
            Err(e) => {
                let read = DbRead { error: Some(e.to_string()), ..DbRead::default() };
                out.push((format, path.to_owned(), read));
                continue;
            }
        };
        let print = fingerprint(&mut *file);
        if let Some(print) = &print {
            let dup = seen.iter().find(|(i, p)| p == print && out.get(*i).is_some_and(|o| o.0 == format));
            if let Some((i, _)) = dup {
                if let Some((_, first, read)) = out.get_mut(*i) {
                    read.skip(format!(
                        "{path}: same database as {first} (equal size and first/last 4 KiB), not read twice"
                    ));
                }
                continue;
            }
        }
        let mut read = read_db(format, &mut *file, path);
        if format == DbFormat::RpmSqlite
            && let Some(note) = sqlite::wal_note(fs, path)
        {
            read.skip(note);
        }
        if let Some(print) = print {
            seen.push((out.len(), print));
        }
        if read.error.is_none() && !read.packages.is_empty() {
            read_dirs.push((dir, out.len()));
        }
        out.push((format, path.to_owned(), read));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::fs::{DirEntry, FileKind, FsError, MemFile, Meta};

    /// A tiny in-memory root filesystem: regular files only, plus directory symlinks resolved by
    /// prefix replacement.
    #[derive(Debug, Default)]
    struct MapFs {
        files: HashMap<String, Vec<u8>>,
        links: Vec<(String, String)>,
    }

    impl MapFs {
        fn resolve(&self, path: &str) -> String {
            for (from, to) in &self.links {
                if let Some(rest) = path.strip_prefix(from.as_str()) {
                    return format!("{to}{rest}");
                }
            }
            path.to_owned()
        }
    }

    impl RootFs for MapFs {
        fn kind(&self) -> &'static str {
            "map"
        }
        fn metadata(&self, path: &str) -> Result<Meta, FsError> {
            let real = self.resolve(path);
            let f = self.files.get(&real).ok_or(FsError::NotFound { path: path.to_owned() })?;
            Ok(Meta { kind: FileKind::File, len: f.len() as u64, mode: 0o644, uid: 0, gid: 0 })
        }
        fn symlink_metadata(&self, path: &str) -> Result<Meta, FsError> {
            self.metadata(path)
        }
        fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
            Err(FsError::NotADir { path: path.to_owned() })
        }
        fn read_link(&self, path: &str) -> Result<String, FsError> {
            Err(FsError::NotFound { path: path.to_owned() })
        }
        fn open(&self, path: &str) -> Result<Box<dyn FileRead + '_>, FsError> {
            let real = self.resolve(path);
            let f = self.files.get(&real).ok_or(FsError::NotFound { path: path.to_owned() })?;
            Ok(Box::new(MemFile(f.clone())))
        }
    }

    fn fixture(rel: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(format!("{}/../../shared/fixtures/{rel}", env!("CARGO_MANIFEST_DIR")))
    }

    #[test]
    fn read_all_reads_each_format_and_dedupes_symlinked_dirs() -> Result<(), Box<dyn std::error::Error>> {
        let mut fs = MapFs::default();
        let sqlite = fixture("go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite")?;
        fs.files.insert("/usr/lib/sysimage/rpm/rpmdb.sqlite".into(), sqlite);
        fs.files.insert("/usr/lib/sysimage/rpm/rpmdb.sqlite-wal".into(), vec![1, 2, 3]);
        fs.links.push(("/var/lib/rpm/".into(), "/usr/lib/sysimage/rpm/".into()));
        fs.files.insert("/usr/share/rpm/rpmdb.sqlite".into(), b"not a database".to_vec());
        fs.files.insert(
            "/var/lib/rpmmanifest/container-manifest-2".into(),
            fixture("syft/redhat/rpmmanifest/container-manifest-2")?,
        );
        let all = read_all(&fs);
        let summary: Vec<(DbFormat, &str, usize, bool)> =
            all.iter().map(|(f, p, r)| (*f, p.as_str(), r.packages.len(), r.error.is_some())).collect();
        assert_eq!(
            summary,
            vec![
                (DbFormat::RpmSqlite, "/usr/lib/sysimage/rpm/rpmdb.sqlite", 129, false),
                (DbFormat::RpmSqlite, "/usr/share/rpm/rpmdb.sqlite", 0, true),
                (DbFormat::RpmManifest, "/var/lib/rpmmanifest/container-manifest-2", 5, false),
            ]
        );
        let first = &all.first().ok_or("no result")?.2;
        assert!(first.skipped.iter().any(|s| s.starts_with("/var/lib/rpm/rpmdb.sqlite: same database")));
        assert!(first.skipped.iter().any(|s| s.contains("-wal")));
        assert!(first.packages.iter().all(|p| p.db_path == "/usr/lib/sysimage/rpm/rpmdb.sqlite"));
        Ok(())
    }

    #[test]
    fn read_all_on_bdb_and_ndb_paths() -> Result<(), Box<dyn std::error::Error>> {
        let mut fs = MapFs::default();
        fs.files.insert("/var/lib/rpm/Packages".into(), fixture("go-rpmdb/libuuid-bdb/Packages")?);
        fs.files.insert("/usr/lib/sysimage/rpm/Packages.db".into(), fixture("go-rpmdb/sle15-bci-ndb/Packages.db")?);
        let all = read_all(&fs);
        let summary: Vec<(DbFormat, &str, usize)> =
            all.iter().map(|(f, p, r)| (*f, p.as_str(), r.packages.len())).collect();
        assert_eq!(
            summary,
            vec![
                (DbFormat::RpmNdb, "/usr/lib/sysimage/rpm/Packages.db", 35),
                (DbFormat::RpmBdb, "/var/lib/rpm/Packages", 1),
            ]
        );
        Ok(())
    }

    #[test]
    fn gpg_pubkey_is_skipped() -> Result<(), header::HeaderError> {
        let blob = header::tests::Builder::default()
            .string(header::tag::NAME, "gpg-pubkey")
            .string(header::tag::VERSION, "fd431d51")
            .string(header::tag::RELEASE, "4ae0493b")
            .build();
        let mut c = Collector::new(DbFormat::RpmSqlite, "/x");
        assert_eq!(c.blob("hnum 1", &blob), ControlFlow::Continue(()));
        let read = c.finish();
        assert!(read.packages.is_empty());
        assert_eq!(
            read.skipped,
            vec!["hnum 1: gpg-pubkey-fd431d51-4ae0493b is an imported signing key, not a package".to_owned()]
        );
        Ok(())
    }
}
