//! Finding the attached devices of the job manifest on the scanner.
//!
//! The manifest names each device by the block device mapping name the orchestrator gave
//! `RunInstances` (`/dev/sdf`). What the kernel calls it depends on the instance type:
//!
//! - Xen instances: the same name, or its `xvd` alias (`/dev/sdf` appears as `/dev/xvdf`).
//! - Nitro instances: an NVMe namespace (`/dev/nvme1n1`). The mapping name is only in the NVMe
//!   controller's vendor-specific identify data, which Amazon's `ebsnvme-id` reads with an admin
//!   ioctl; the udev rules of `amazon-ec2-utils` (Amazon Linux, and the scanner image) then create
//!   the `/dev/sdf` (and `/dev/xvdf`) symlinks. So on a scanner image with those rules the first
//!   two cases cover Nitro too.
//!
//! Not done here: reading the NVMe identify data ourselves (an ioctl: `unsafe`, which this crate
//! denies), and matching `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…` links: those carry
//! the *scanner's* volume id, created by `RunInstances` from our snapshot, which the job manifest
//! (fixed before launch) cannot know. A scanner image without the udev rules therefore reports
//! Nitro devices as `missing`.
//!
//! Names are resolved under a `dev_root` (`/` on a scanner) so tests can supply a fake `/dev`.
//! A candidate is canonicalised (it is usually a udev symlink) and accepted only if it is a block
//! device or, for tests and image-backed runs, a regular file.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Why a device was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Nothing exists under any of the candidate names: the volume is not attached (or not yet).
    #[error("not attached: none of {tried} exists")]
    NotFound { tried: String },
    /// Something exists but is not a disk.
    #[error("{path} is a {kind}, not a block device")]
    NotADisk { path: String, kind: &'static str },
    /// The manifest's name is not `/dev/<name>` with a plain name.
    #[error("device name {0:?} is not /dev/<name>")]
    BadName(String),
}

/// The paths tried for `device_name`, in order: the name itself, then its `sd`/`xvd` alias.
#[must_use]
pub fn candidates(dev_root: &Path, device_name: &str) -> Vec<PathBuf> {
    let Some(short) = device_name.strip_prefix("/dev/") else {
        return Vec::new();
    };
    // One path component of safe characters: no `/`, no `..`, so the candidates stay in dev/.
    if !crate::job::is_path_safe_name(short) {
        return Vec::new();
    }
    let mut names = vec![short.to_owned()];
    if let Some(rest) = short.strip_prefix("sd") {
        names.push(format!("xvd{rest}"));
    } else if let Some(rest) = short.strip_prefix("xvd") {
        names.push(format!("sd{rest}"));
    }
    names.into_iter().map(|n| dev_root.join("dev").join(n)).collect()
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// Find the device the manifest calls `device_name` (`/dev/sdf`) under `dev_root`: the canonical
/// path of the first candidate that exists.
///
/// # Errors
///
/// [`DeviceError::NotFound`] when no candidate exists (or only dangling links do),
/// [`DeviceError::NotADisk`] when the first existing one is neither a block device nor a regular
/// file, [`DeviceError::BadName`] for a name outside `/dev/`.
pub fn resolve_device(dev_root: &Path, device_name: &str) -> Result<PathBuf, DeviceError> {
    let tried = candidates(dev_root, device_name);
    if tried.is_empty() {
        return Err(DeviceError::BadName(device_name.to_owned()));
    }
    for path in &tried {
        // Follows the udev symlink; a dangling link counts as absent.
        let Ok(canonical) = std::fs::canonicalize(path) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&canonical) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_block_device() || ft.is_file() {
            tracing::info!(device = device_name, path = %canonical.display(), "device found");
            return Ok(canonical);
        }
        return Err(DeviceError::NotADisk { path: canonical.display().to_string(), kind: kind_of(ft) });
    }
    let tried = tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(DeviceError::NotFound { tried })
}
