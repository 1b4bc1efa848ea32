//! The apk installed-database parser.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanner_ami::inventory::apk::parse_installed;

fuzz_target!(|data: &[u8]| {
    let _ = parse_installed(&String::from_utf8_lossy(data), "/lib/apk/db/installed");
});
