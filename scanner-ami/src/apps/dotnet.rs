//! .NET packages: the `package` libraries of `*.deps.json`. (Interface fixed; implementation in
//! progress, issue 17.)

use super::{AppError, AppPackage};

/// Largest `*.deps.json` read.
pub const MAX_DEPS_JSON_BYTES: u64 = 32 * 1024 * 1024;

/// The NuGet packages listed in the `*.deps.json` text at `location`.
///
/// # Errors
///
/// Not JSON of the deps.json shape.
pub fn parse_deps_json(bytes: &[u8], location: &str) -> Result<Vec<AppPackage>, AppError> {
    let _ = (bytes, location);
    Ok(Vec::new())
}
