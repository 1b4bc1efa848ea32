//! The BerkeleyDB hash page reader (metadata page, hash pages, overflow chains) and headers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanner_ami::fs::MemFile;
use scanner_ami::inventory::rpm::bdb;

fuzz_target!(|data: &[u8]| {
    let _ = bdb::read(&mut MemFile(data.to_vec()), "/var/lib/rpm/Packages");
});
