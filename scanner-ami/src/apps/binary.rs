//! Executables: decide from the first bytes whether a file is an ELF binary, read its headers once
//! ([`super::elf`]) and hand them to the Go ([`super::golang`]) and Rust ([`super::rustaudit`])
//! readers.
//!
//! This module owns that dispatch. Other executable formats (PE, Mach-O, scripts) record nothing
//! we read on a Linux root and give no packages. Bytes read for an ELF file: its magic, header,
//! program and section header tables and section names (a few KiB), then only the Go build info
//! and the `.dep-v0` section when present.

use super::elf::{self, ElfFile};
use super::{AppError, AppPackage, golang, rustaudit};
use crate::fs::FileRead;

/// The packages recorded in the executable `file` at `path` (Go build info, `cargo
/// auditable` data); empty for a file that is not an executable we read or records nothing.
///
/// # Errors
///
/// The file is an executable but its headers or records are damaged or exceed a bound.
pub fn read(file: &mut dyn FileRead, path: &str) -> Result<Vec<AppPackage>, AppError> {
    if file.len() < 4 {
        return Ok(Vec::new());
    }
    let mut magic = [0u8; 4];
    file.read_exact_at(0, &mut magic).map_err(|e| AppError::new(path, format!("magic: {e}")))?;
    if !elf::is_elf_magic(&magic) {
        return Ok(Vec::new());
    }
    let Some(elf) = ElfFile::read(file, path)? else {
        return Ok(Vec::new());
    };
    let mut packages = golang::read(&elf, file, path)?;
    packages.extend(rustaudit::read(&elf, file, path)?);
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFile;

    #[test]
    fn non_elf_files_give_nothing() {
        for body in [&b""[..], b"\x7fEL", b"#!/bin/sh\n", b"MZ\x90\0PE", b"\xcf\xfa\xed\xfe"] {
            assert_eq!(read(&mut MemFile(body.to_vec()), "/bin/x"), Ok(Vec::new()));
        }
    }

    #[test]
    fn damaged_elf_is_an_error_naming_the_file() {
        let err = read(&mut MemFile(b"\x7fELF\x02\x01\x01\0".to_vec()), "/usr/bin/x").expect_err("an error");
        assert_eq!(err.path, "/usr/bin/x");
    }
}
