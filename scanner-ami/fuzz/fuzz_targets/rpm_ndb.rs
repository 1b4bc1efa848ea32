//! The rpm NDB slot/blob reader and headers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanner_ami::fs::MemFile;
use scanner_ami::inventory::rpm::ndb;

fuzz_target!(|data: &[u8]| {
    let _ = ndb::read(&mut MemFile(data.to_vec()), "/usr/lib/sysimage/rpm/Packages.db");
});
