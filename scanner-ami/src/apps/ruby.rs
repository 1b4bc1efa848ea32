//! Ruby gems: `specifications/*.gemspec`. (Interface fixed; implementation in progress, issue 17.)

use super::{AppError, AppPackage};

/// Largest gemspec read.
pub const MAX_GEMSPEC_BYTES: u64 = 1024 * 1024;

/// The gem described by the gemspec text at `location`; `None` without name or version.
///
/// # Errors
///
/// The text cannot be read as a gemspec.
pub fn parse_gemspec(bytes: &[u8], location: &str) -> Result<Option<AppPackage>, AppError> {
    let _ = (bytes, location);
    Ok(None)
}
