//! Executables: decide from the first bytes whether a file is an ELF binary, read its headers once
//! ([`super::elf`]) and hand them to the Go ([`super::golang`]) and Rust ([`super::rustaudit`])
//! readers. (Interface fixed; implementation in progress, issue 17.)

use super::{AppError, AppPackage};
use crate::fs::FileRead;

/// The application packages recorded in the executable `file` at `path` (Go build info, `cargo
/// auditable` data); empty for a file that is not an executable we read or records nothing.
///
/// # Errors
///
/// The file is an executable but its headers or records are damaged or exceed a bound.
pub fn read(file: &mut dyn FileRead, path: &str) -> Result<Vec<AppPackage>, AppError> {
    let _ = (file, path);
    Ok(Vec::new())
}
