//! The application inventory of one root: runs the bounded walk ([`super::walk`]), reads each
//! candidate with its reader under a per-scan byte budget, drops metadata of packages the OS
//! package manager installed (dpkg's and rpm's file lists), and adds the installed kernels.
//!
//! Bytes are counted as the readers take them ([`WalkStats::bytes_read`]): on a volume restored
//! from a snapshot every first read of a block is a fetch from S3, so this is the cost of the walk.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use super::walk::{self, Candidate};
use super::{AppError, AppPackage, Applications, MAX_APP_ERRORS, WalkStats};
use super::{binary, dotnet, java, kernel, node, php, python, ruby};
use crate::fs::{self, FileKind, FileRead, FsError, RootFs};
use crate::limits::MAX_TEXT_DB_BYTES;

/// Most bytes all readers together may read in one walk. The readers' own caps keep a typical
/// root to tens of MiB (headers and sections of each ELF, the central directory and a few members
/// of each jar, metadata files); 1 GiB stops a crafted disk of thousands of large archives from
/// turning the scan into a full read of the volume.
pub const MAX_APP_BYTES_PER_SCAN: u64 = 1024 * 1024 * 1024;

/// Smallest file worth opening as an executable: an ELF32 header is 52 bytes.
const MIN_EXECUTABLE_LEN: u64 = 52;

/// Where dpkg keeps one file list per installed package (`<package>[:<arch>].list`).
const DPKG_INFO_DIR: &str = "/var/lib/dpkg/info";

/// Most bytes of dpkg file lists read to decide which found files the OS installed: a Debian
/// desktop's lists total ~30 MiB; four times that bounds a crafted database.
const MAX_DPKG_LISTS_BYTES: u64 = 128 * 1024 * 1024;

/// A [`FileRead`] that adds every byte it returns to a shared counter.
struct Counting<'a> {
    inner: Box<dyn FileRead + 'a>,
    bytes: &'a Cell<u64>,
}

impl FileRead for Counting<'_> {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        self.bytes.set(self.bytes.get().saturating_add(buf.len() as u64));
        self.inner.read_exact_at(offset, buf)
    }
}

/// Collects errors, keeping at most [`MAX_APP_ERRORS`].
struct Errors {
    kept: Vec<AppError>,
    count: u64,
}

impl Errors {
    fn push(&mut self, e: AppError) {
        self.count += 1;
        if self.kept.len() < MAX_APP_ERRORS {
            self.kept.push(e);
        }
    }
}

/// Inventory the applications of the root `fs`.
#[must_use]
pub fn collect(fs: &dyn RootFs) -> Applications {
    let started = std::time::Instant::now();
    let bytes = Cell::new(0u64);
    let mut stats = WalkStats::default();
    let mut errors = Errors { kept: Vec::new(), count: 0 };
    let mut packages: Vec<AppPackage> = Vec::new();
    let mut files_read = 0u64;
    let mut files_examined = 0u64;

    walk::walk(fs, &mut stats, |path, candidate| {
        if bytes.get() >= MAX_APP_BYTES_PER_SCAN {
            return ControlFlow::Break(());
        }
        if candidate == Candidate::MaybeExecutable {
            files_examined += 1;
            match fs.symlink_metadata(path) {
                Ok(m)
                    if m.kind == FileKind::File
                        && (m.mode & 0o111 != 0 || is_shared_library(path))
                        && m.len >= MIN_EXECUTABLE_LEN => {}
                Ok(_) => return ControlFlow::Continue(()),
                Err(e) => {
                    errors.push(AppError::new(path, e.to_string()));
                    return ControlFlow::Continue(());
                }
            }
        }
        files_read += 1;
        let file = match fs.open(path) {
            Ok(f) => f,
            Err(e) => {
                errors.push(AppError::new(path, e.to_string()));
                return ControlFlow::Continue(());
            }
        };
        let mut file = Counting { inner: file, bytes: &bytes };
        match read_candidate(&mut file, path, candidate, &mut errors) {
            Ok(found) => packages.extend(found),
            Err(e) => errors.push(e),
        }
        ControlFlow::Continue(())
    });
    if bytes.get() >= MAX_APP_BYTES_PER_SCAN {
        stats.truncated.push(format!("readers stopped after {MAX_APP_BYTES_PER_SCAN} bytes"));
    }

    let owners = os_owners(fs, &packages, &bytes, &mut errors);
    let before = packages.len();
    packages.retain(|p| !(is_metadata_package(p) && owners.contains_key(&base_location(&p.location))));
    stats.os_owned_skipped = (before - packages.len()) as u64;
    for p in &mut packages {
        if let Some(owner) = owners.get(&base_location(&p.location)) {
            p.properties.push(("os.package".to_owned(), owner.clone()));
            p.properties.sort();
        }
    }

    let (kernels, kernel_errors) = kernel::collect(fs);
    packages.extend(kernels);
    for e in kernel_errors {
        errors.push(e);
    }

    stats.files_examined = files_examined;
    stats.files_read = files_read;
    stats.bytes_read = bytes.get();
    tracing::info!(
        fs = fs.kind(),
        packages = packages.len(),
        entries = stats.entries,
        files_read = stats.files_read,
        bytes_read = stats.bytes_read,
        os_owned_skipped = stats.os_owned_skipped,
        errors = errors.count,
        capped = !stats.truncated.is_empty(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "application inventory done"
    );
    Applications { packages, errors: errors.kept, error_count: errors.count, stats }
}

/// True for a shared library's name (`x.so`, `libx.so.1.2`): read whatever its mode, since a Go
/// `c-shared` library (a Python extension built with cgo, say) carries Go build info and is often
/// installed without an execute bit (Trivy reads execute-bit files only; Syft reads these too).
fn is_shared_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".so") || name.contains(".so.")
}

/// Read one candidate file with its reader.
fn read_candidate(
    file: &mut Counting<'_>,
    path: &str,
    candidate: Candidate,
    errors: &mut Errors,
) -> Result<Vec<AppPackage>, AppError> {
    match candidate {
        Candidate::MaybeExecutable => binary::read(file, path),
        Candidate::JavaArchive => {
            let mut member_errors = Vec::new();
            let found = java::read(file, path, &mut member_errors);
            for e in member_errors {
                errors.push(e);
            }
            found
        }
        Candidate::PythonMetadata => {
            let bytes = read_prefix(file, path, python::MAX_METADATA_PREFIX)?;
            Ok(python::parse_metadata(&bytes, path)?.into_iter().collect())
        }
        Candidate::PackageJson => {
            let bytes = read_whole(file, path, node::MAX_PACKAGE_JSON_BYTES)?;
            Ok(node::parse_package_json(&bytes, path)?.into_iter().collect())
        }
        Candidate::Gemspec => {
            let bytes = read_whole(file, path, ruby::MAX_GEMSPEC_BYTES)?;
            Ok(ruby::parse_gemspec(&bytes, path)?.into_iter().collect())
        }
        Candidate::ComposerInstalled => {
            let bytes = read_whole(file, path, php::MAX_INSTALLED_JSON_BYTES)?;
            php::parse_installed_json(&bytes, path)
        }
        Candidate::DepsJson => {
            let bytes = read_whole(file, path, dotnet::MAX_DEPS_JSON_BYTES)?;
            dotnet::parse_deps_json(&bytes, path)
        }
    }
}

/// The first `limit` bytes of the file (all of it when shorter).
fn read_prefix(file: &mut dyn FileRead, path: &str, limit: u64) -> Result<Vec<u8>, AppError> {
    let n = file.len().min(limit);
    let len = usize::try_from(n).map_err(|_| AppError::new(path, "file too large to read"))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(0, &mut buf).map_err(|e| AppError::new(path, e.to_string()))?;
    Ok(buf)
}

/// The whole file, refused above `limit` bytes before anything is read.
fn read_whole(file: &mut dyn FileRead, path: &str, limit: u64) -> Result<Vec<u8>, AppError> {
    let size = file.len();
    if size > limit {
        return Err(AppError::new(path, format!("{size} bytes exceeds the {limit}-byte limit for this file")));
    }
    read_prefix(file, path, limit)
}

/// True for packages read from metadata files that an OS package ships as part of the same
/// software (a distribution's `python3-requests` carries `requests-*.dist-info`): reported once,
/// as the OS package. Executables an OS package ships are kept (their modules are not the OS
/// package's identity) and marked with the owner.
fn is_metadata_package(p: &AppPackage) -> bool {
    use super::AppEcosystem as E;
    matches!(p.ecosystem, E::Pypi | E::Maven | E::Npm | E::Gem | E::Composer | E::Nuget)
}

/// The file a location names (the outer archive for `a.war!/WEB-INF/lib/b.jar`).
fn base_location(location: &str) -> String {
    location.split('!').next().unwrap_or(location).to_owned()
}

/// Which of the found packages' files an OS package installed: location -> owning package, from
/// dpkg's file lists (`/var/lib/dpkg/info/*.list`) and the file lists in the headers of the rpm
/// databases ([`crate::inventory::rpm::owners`]).
fn os_owners(
    fs: &dyn RootFs,
    packages: &[AppPackage],
    bytes: &Cell<u64>,
    errors: &mut Errors,
) -> HashMap<String, String> {
    let wanted: HashSet<String> = packages.iter().map(|p| base_location(&p.location)).collect();
    if wanted.is_empty() {
        return HashMap::new();
    }
    let mut owners = dpkg_owners(fs, &wanted, bytes, errors);
    let rest: HashSet<String> = wanted.iter().filter(|w| !owners.contains_key(*w)).cloned().collect();
    owners.extend(crate::inventory::rpm::owners(fs, &rest));
    owners
}

/// [`os_owners`] from dpkg's file lists.
fn dpkg_owners(
    fs: &dyn RootFs,
    wanted: &HashSet<String>,
    bytes: &Cell<u64>,
    errors: &mut Errors,
) -> HashMap<String, String> {
    let mut owners = HashMap::new();
    let entries = match fs.read_dir(DPKG_INFO_DIR) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return owners,
        Err(e) => {
            errors.push(AppError::new(DPKG_INFO_DIR, e.to_string()));
            return owners;
        }
    };
    let mut total = 0u64;
    for entry in entries {
        let Some(pkg) = entry.name.strip_suffix(".list") else { continue };
        if entry.kind != FileKind::File {
            continue;
        }
        let path = walk::join(DPKG_INFO_DIR, &entry.name);
        let text = match fs::read_text(fs, &path, MAX_TEXT_DB_BYTES) {
            Ok(t) => t,
            Err(e) => {
                errors.push(AppError::new(&path, e.to_string()));
                continue;
            }
        };
        total = total.saturating_add(text.len() as u64);
        bytes.set(bytes.get().saturating_add(text.len() as u64));
        let name = pkg.split(':').next().unwrap_or(pkg);
        for line in text.lines() {
            if wanted.contains(line) {
                owners.insert(line.to_owned(), name.to_owned());
            }
        }
        if total > MAX_DPKG_LISTS_BYTES {
            errors.push(AppError::new(
                DPKG_INFO_DIR,
                format!("file lists exceed {MAX_DPKG_LISTS_BYTES} bytes; the rest not read"),
            ));
            break;
        }
    }
    owners
}
