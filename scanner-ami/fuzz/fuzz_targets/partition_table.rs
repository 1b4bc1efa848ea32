//! GPT/MBR/bare detection and the content prober on arbitrary disk bytes.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use scanner_ami::disk::{MemDisk, probe, table};

fuzz_target!(|data: &[u8]| {
    let (_info, parts) = table::read(Arc::new(MemDisk(data.to_vec())));
    for p in parts {
        if let Ok(region) = p.region {
            let _ = probe::probe(&region);
        }
    }
});
