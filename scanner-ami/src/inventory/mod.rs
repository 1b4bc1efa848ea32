//! OS package inventory: the [`Package`] model shared by every package-database reader, and
//! [`collect`], which finds and reads every known database on a scanned root filesystem.
//!
//! One module per database format: [`dpkg`], [`rpm`], [`apk`]. A reader never stops the scan: a
//! database it cannot read becomes a [`DbResult`] with an error, and the others are still read.

pub mod apk;
pub mod dpkg;
pub mod rpm;

use serde::Serialize;

use crate::fs::RootFs;

/// The package ecosystem a package belongs to (also its purl type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Deb,
    Rpm,
    Apk,
}

/// The on-disk format a package was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbFormat {
    /// `var/lib/dpkg/status`
    DpkgStatus,
    /// distroless `var/lib/dpkg/status.d/*`
    DpkgStatusD,
    /// rpm BerkeleyDB hash `Packages`
    RpmBdb,
    /// rpm NDB `Packages.db`
    RpmNdb,
    /// rpm SQLite `rpmdb.sqlite`
    RpmSqlite,
    /// distroless `var/lib/rpmmanifest/container-manifest-2`
    RpmManifest,
    /// apk `lib/apk/db/installed`
    ApkInstalled,
}

/// One installed OS package.
///
/// Versions are kept split the way each ecosystem defines them: for dpkg `epoch:upstream-revision`
/// (`release` is the Debian revision), for rpm `epoch:version-release`, for apk the whole
/// `version-rN` string stays in `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Source package name (dpkg `Source:`, apk `o:`, rpm name parsed from the source rpm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Source package version (dpkg `Source: name (version)`, defaulting to the binary version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// rpm `SOURCERPM` as stored (`util-linux-2.32.1-42.el8_8.src.rpm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_rpm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    /// Installed size in bytes (dpkg's KiB figure is multiplied out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_size: Option<u64>,
    /// The database format and the path inside the scanned filesystem it was read from.
    pub db: DbFormat,
    pub db_path: String,
}

impl Package {
    /// The version as the ecosystem's own tools print it: dpkg `[epoch:]upstream[-revision]`,
    /// rpm `[epoch:]version-release`, apk `version`.
    #[must_use]
    pub fn full_version(&self) -> String {
        let mut v = String::new();
        if let Some(e) = self.epoch {
            v.push_str(&e.to_string());
            v.push(':');
        }
        v.push_str(&self.version);
        if let Some(r) = &self.release {
            v.push('-');
            v.push_str(r);
        }
        v
    }

    /// A new package with only the identifying fields set.
    #[must_use]
    pub fn new(ecosystem: Ecosystem, name: &str, version: &str, db: DbFormat, db_path: &str) -> Self {
        Package {
            ecosystem,
            name: name.to_owned(),
            version: version.to_owned(),
            release: None,
            epoch: None,
            arch: None,
            source_name: None,
            source_version: None,
            source_rpm: None,
            license: None,
            vendor: None,
            maintainer: None,
            installed_size: None,
            db,
            db_path: db_path.to_owned(),
        }
    }
}

/// The outcome of reading one package database.
#[derive(Debug, Clone, Serialize)]
pub struct DbResult {
    pub format: DbFormat,
    pub path: String,
    pub packages: usize,
    /// Records that were present but skipped (not installed, no version, unparsable), with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Set when the database could not be read (or only partly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one reader returns: the packages it could read, records it skipped, and an error if the
/// database was unreadable or only partly readable.
#[derive(Debug, Default)]
pub struct DbRead {
    pub packages: Vec<Package>,
    pub skipped: Vec<String>,
    pub error: Option<String>,
}

/// Most skipped-record notes kept per database (the count is still exact in the report).
pub const MAX_SKIP_NOTES: usize = 100;

impl DbRead {
    /// Record a skipped record, keeping at most [`MAX_SKIP_NOTES`] notes.
    pub fn skip(&mut self, why: String) {
        if self.skipped.len() < MAX_SKIP_NOTES {
            self.skipped.push(why);
        }
    }
}

/// The whole inventory of one root filesystem.
#[derive(Debug, Default, Serialize)]
pub struct Inventory {
    pub databases: Vec<DbResult>,
    pub packages: Vec<Package>,
}

impl Inventory {
    /// One line per database that could not be read (fully), naming its path.
    pub fn errors(&self) -> impl Iterator<Item = String> + '_ {
        self.databases.iter().filter_map(|db| db.error.as_ref().map(|e| format!("{}: {e}", db.path)))
    }
}

/// Find and read every known package database on `fs`.
pub fn collect(fs: &dyn RootFs) -> Inventory {
    let mut inv = Inventory::default();
    let mut reads: Vec<(DbFormat, String, DbRead)> = Vec::new();
    reads.extend(dpkg::read_all(fs));
    reads.extend(rpm::read_all(fs));
    reads.extend(apk::read_all(fs));
    for (format, path, read) in reads {
        inv.databases.push(DbResult {
            format,
            path,
            packages: read.packages.len(),
            skipped: read.skipped,
            error: read.error,
        });
        inv.packages.extend(read.packages);
    }
    inv
}
