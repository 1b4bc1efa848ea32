//! The whole scan (partition table, ext4 via ext4-view, os-release, every package database) on
//! an arbitrary in-memory disk.
#![no_main]
use std::sync::Arc;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use scanner_ami::disk::MemDisk;
use scanner_ami::report::Source;
use scanner_ami::scan::ScanOptions;

fuzz_target!(|data: &[u8]| {
    let source = Source::Image { path: "fuzz".into(), size: data.len() as u64 };
    let _ = scanner_ami::scan::scan_source(Arc::new(MemDisk(data.to_vec())), source, Instant::now(), ScanOptions { baseline: true, ..Default::default() });
});
