//! Python distributions: `*.dist-info/METADATA`, `*.egg-info` (file, or directory with
//! `PKG-INFO`), `EGG-INFO/PKG-INFO`. (Interface fixed; implementation in progress, issue 17.)

use super::{AppError, AppPackage};

/// Most bytes of a metadata file read: the headers come first and are a few KiB; the long
/// description after them is not needed.
pub const MAX_METADATA_PREFIX: u64 = 1024 * 1024;

/// The distribution described by the core-metadata text `bytes` (the file's first bytes, at most
/// [`MAX_METADATA_PREFIX`]) found at `location`; `None` without a name or version.
///
/// # Errors
///
/// The text is not core metadata.
pub fn parse_metadata(bytes: &[u8], location: &str) -> Result<Option<AppPackage>, AppError> {
    let _ = (bytes, location);
    Ok(None)
}
