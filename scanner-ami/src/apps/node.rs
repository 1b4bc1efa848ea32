//! Node packages: every `package.json` with a name and a version. (Interface fixed;
//! implementation in progress, issue 17.)

use super::{AppError, AppPackage};

/// Largest `package.json` read.
pub const MAX_PACKAGE_JSON_BYTES: u64 = 4 * 1024 * 1024;

/// The package described by `package.json` text at `location`; `None` without name or version.
///
/// # Errors
///
/// Not JSON, or not an object.
pub fn parse_package_json(bytes: &[u8], location: &str) -> Result<Option<AppPackage>, AppError> {
    let _ = (bytes, location);
    Ok(None)
}
