//! The dpkg status parser.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanner_ami::inventory::DbFormat;
use scanner_ami::inventory::dpkg::parse_status;

fuzz_target!(|data: &[u8]| {
    let _ = parse_status(&String::from_utf8_lossy(data), DbFormat::DpkgStatus, "/var/lib/dpkg/status");
});
