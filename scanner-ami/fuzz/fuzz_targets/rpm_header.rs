//! The rpm header-blob parser and its conversion to a package.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanner_ami::inventory::DbFormat;
use scanner_ami::inventory::rpm::header::parse_header;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = parse_header(data) {
        let _ = h.to_package(DbFormat::RpmSqlite, "/fuzz");
    }
});
