//! Executables (`apps::binary::read`): ELF headers, Go build info and `cargo auditable` data from an
//! in-memory file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanner_ami::apps::binary;
use scanner_ami::fs::MemFile;

fuzz_target!(|data: &[u8]| {
    let _ = binary::read(&mut MemFile(data.to_vec()), "/usr/bin/fuzz");
});
