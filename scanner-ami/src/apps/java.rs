//! Java archives (`.jar`, `.war`, `.ear`, `.par`) and the archives nested in them. (Interface
//! fixed; implementation in progress, issue 17.)

use super::{AppError, AppPackage};
use crate::fs::FileRead;

/// Whether a file name is a Java archive this reader opens.
#[must_use]
pub fn is_archive_name(name: &str) -> bool {
    let _ = name;
    false
}

/// The Maven packages of the archive `file` at `path` and of the archives nested in it. Damaged
/// members or nested archives are pushed to `errors` (as `outer!/member`) and the rest is read.
///
/// # Errors
///
/// The archive itself cannot be read at all (not a zip, a bound exceeded before anything was read).
pub fn read(file: &mut dyn FileRead, path: &str, errors: &mut Vec<AppError>) -> Result<Vec<AppPackage>, AppError> {
    let _ = (file, path, errors);
    Ok(Vec::new())
}
