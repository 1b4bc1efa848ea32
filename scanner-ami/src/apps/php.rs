//! PHP Composer packages: `vendor/composer/installed.json`, v1 (a bare array) and v2
//! (`{"packages": [...]}`). (Interface fixed; implementation in progress, issue 17.)

use super::{AppError, AppPackage};

/// Largest `installed.json` read.
pub const MAX_INSTALLED_JSON_BYTES: u64 = 32 * 1024 * 1024;

/// The packages listed in the `installed.json` text at `location`.
///
/// # Errors
///
/// Not JSON of either layout.
pub fn parse_installed_json(bytes: &[u8], location: &str) -> Result<Vec<AppPackage>, AppError> {
    let _ = (bytes, location);
    Ok(Vec::new())
}
