//! The Java archive reader (apps::java over apps::zip) on an in-memory archive.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanner_ami::apps::java;
use scanner_ami::fs::MemFile;

fuzz_target!(|data: &[u8]| {
    let mut file = MemFile(data.to_vec());
    let mut errors = Vec::new();
    let _ = java::read(&mut file, "/fuzz.war", &mut errors);
});
