//! Where results live: `<data_dir>/results/<job>/<instance>/<volume>/` holds `inventory.json`,
//! `sbom.cdx.json`, `baseline.json` (when the device was scanned) and `device.json` (the bundle's
//! entry for it: status, OS, counts, errors); `<data_dir>/results/<job>/scanners/<scanner>.json`
//! is the bundle's manifest, written last: its presence means the scanner's results are complete.
//!
//! Every file is written to a temporary name and renamed, so a crash never leaves half a result,
//! and path components come from validated ids only.

use std::io::Write;
use std::path::{Path, PathBuf};

use scanner_ami::bundle::{Bundle, DeviceEntry};
use scanner_ami::job::{DeviceTarget, is_path_safe_name};

use super::Ingested;

/// The results directory of a data directory.
#[derive(Debug, Clone)]
pub struct ResultStore {
    root: PathBuf,
}

/// One volume's stored result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVolume {
    pub entry: DeviceEntry,
    /// The directory holding its files.
    pub dir: PathBuf,
}

type StoreResult<T> = Result<T, (PathBuf, std::io::Error)>;

fn invalid(path: &Path, what: &str) -> (PathBuf, std::io::Error) {
    (path.to_path_buf(), std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned()))
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let dir = path.parent().ok_or_else(|| invalid(path, "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| (dir.to_path_buf(), e))?;
    tmp.write_all(bytes).map_err(|e| (path.to_path_buf(), e))?;
    tmp.as_file().sync_all().map_err(|e| (path.to_path_buf(), e))?;
    tmp.persist(path).map_err(|e| (path.to_path_buf(), e.error))?;
    Ok(())
}

/// The subdirectories of `dir` whose names are safe path components, sorted.
fn safe_subdirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| is_path_safe_name(n))
        .collect();
    v.sort();
    v
}

impl ResultStore {
    #[must_use]
    pub fn new(data_dir: &Path) -> ResultStore {
        ResultStore { root: data_dir.join("results") }
    }

    /// The data directory the results live in.
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        self.root.parent().unwrap_or(&self.root)
    }

    /// `<data_dir>/results`.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn job_dir(&self, job: &str) -> StoreResult<PathBuf> {
        if !is_path_safe_name(job) {
            return Err(invalid(&self.root, "job id is not a safe path component"));
        }
        Ok(self.root.join(job))
    }

    /// The directory of one volume's results.
    ///
    /// # Errors
    ///
    /// An id that is not a safe path component.
    pub fn volume_dir(&self, job: &str, instance: &str, volume: &str) -> StoreResult<PathBuf> {
        let dir = self.job_dir(job)?;
        if !is_path_safe_name(instance) || !is_path_safe_name(volume) {
            return Err(invalid(&dir, "instance or volume id is not a safe path component"));
        }
        Ok(dir.join(instance).join(volume))
    }

    fn marker(&self, job: &str, scanner: &str) -> StoreResult<PathBuf> {
        let dir = self.job_dir(job)?;
        if !is_path_safe_name(scanner) {
            return Err(invalid(&dir, "scanner name is not a safe path component"));
        }
        Ok(dir.join("scanners").join(format!("{scanner}.json")))
    }

    /// The scanner's bundle is stored.
    #[must_use]
    pub fn scanner_reported(&self, job: &str, scanner: &str) -> bool {
        self.marker(job, scanner).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Store a checked bundle for the registered `devices` (same order as its manifest).
    pub(super) fn store_bundle(
        &self,
        job: &str,
        scanner: &str,
        devices: &[DeviceTarget],
        bundle: &Bundle,
    ) -> StoreResult<Ingested> {
        let marker = self.marker(job, scanner)?;
        if marker.is_file() {
            return Ok(Ingested::Duplicate);
        }
        for (i, (device, entry)) in devices.iter().zip(&bundle.manifest.devices).enumerate() {
            let dir = self.volume_dir(job, &device.instance_id, &device.volume_id)?;
            if let Some(files) = bundle.volumes.get(&i) {
                write_atomic(&dir.join("inventory.json"), &files.inventory)?;
                write_atomic(&dir.join("sbom.cdx.json"), &files.sbom)?;
                write_atomic(&dir.join("baseline.json"), &files.baseline)?;
            }
            let entry_json = serde_json::to_vec_pretty(entry)
                .map_err(|e| (dir.clone(), std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            write_atomic(&dir.join("device.json"), &entry_json)?;
        }
        let manifest = serde_json::to_vec_pretty(&bundle.manifest)
            .map_err(|e| (marker.clone(), std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        write_atomic(&marker, &manifest)?;
        Ok(Ingested::Stored)
    }

    /// Every stored volume directory: `(job, instance, volume, dir)`, sorted. Entries whose names
    /// are not safe path components (not written by us) are left out.
    #[must_use]
    pub fn all_volumes(&self) -> Vec<(String, String, String, PathBuf)> {
        let mut out = Vec::new();
        for job in safe_subdirs(&self.root) {
            self.job_volumes_into(&job, &mut out);
        }
        out
    }

    /// The stored volume directories of one job: `(job, instance, volume, dir)`, sorted.
    #[must_use]
    pub fn job_volumes(&self, job: &str) -> Vec<(String, String, String, PathBuf)> {
        let mut out = Vec::new();
        self.job_volumes_into(job, &mut out);
        out
    }

    fn job_volumes_into(&self, job: &str, out: &mut Vec<(String, String, String, PathBuf)>) {
        let Ok(jdir) = self.job_dir(job) else { return };
        for instance in safe_subdirs(&jdir) {
            if instance == "scanners" {
                continue;
            }
            for volume in safe_subdirs(&jdir.join(&instance)) {
                let dir = jdir.join(&instance).join(&volume);
                if dir.join("device.json").is_file() {
                    out.push((job.to_owned(), instance.clone(), volume, dir));
                }
            }
        }
    }

    /// One volume's stored result, if any.
    #[must_use]
    pub fn volume(&self, job: &str, instance: &str, volume: &str) -> Option<StoredVolume> {
        let dir = self.volume_dir(job, instance, volume).ok()?;
        let bytes = std::fs::read(dir.join("device.json")).ok()?;
        let entry: DeviceEntry = serde_json::from_slice(&bytes).ok()?;
        Some(StoredVolume { entry, dir })
    }
}
