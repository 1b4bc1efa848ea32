//! LVM2 assembly on arbitrary bytes, two ways: the bytes as a raw disk (label, mda_header and
//! text parsers), and the bytes as the metadata text of an otherwise valid PV whose label and
//! checksums are forged here (the text parser, the VG interpretation and the LV read mapping).
//! Every readable LV is read at its start and its end.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use scanner_ami::disk::lvm::{self, INITIAL_CRC, PvCandidate, lvm_crc};
use scanner_ami::disk::{BlockSource, MemDisk, Region};

const MDA_AT: usize = 4096;
const MDA_SIZE: usize = 64 * 1024;
const DATA_AT: usize = MDA_AT + MDA_SIZE;
const DATA_SIZE: usize = 256 * 1024;
/// The PV UUID of the forged label; a text names it as `fuzzfu-zzfu-zzfu-zzfu-zzfu-zzfu-zzfuzz`.
const UUID: &[u8; 32] = b"fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";

fn put(d: &mut [u8], at: usize, b: &[u8]) {
    d[at..at + b.len()].copy_from_slice(b);
}

/// A PV whose one metadata area holds `text` (cut to fit).
fn forged_pv(text: &[u8]) -> Vec<u8> {
    let text = &text[..text.len().min(MDA_SIZE - 512)];
    let mut d = vec![0u8; DATA_AT + DATA_SIZE];
    // label_header in sector 1 and the pv_header after it
    let l = 512;
    put(&mut d, l, b"LABELONE");
    put(&mut d, l + 8, &1u64.to_le_bytes());
    put(&mut d, l + 20, &32u32.to_le_bytes());
    put(&mut d, l + 24, b"LVM2 001");
    put(&mut d, l + 32, UUID);
    let device_size = d.len() as u64;
    put(&mut d, l + 64, &device_size.to_le_bytes());
    put(&mut d, l + 72, &(DATA_AT as u64).to_le_bytes()); // data area, size 0: to the end
    put(&mut d, l + 104, &(MDA_AT as u64).to_le_bytes()); // after the data list's terminator
    put(&mut d, l + 112, &(MDA_SIZE as u64).to_le_bytes());
    let crc = lvm_crc(INITIAL_CRC, &d[l + 20..l + 512]);
    put(&mut d, l + 16, &crc.to_le_bytes());
    // mda_header and the text right after it
    let m = MDA_AT;
    put(&mut d, m + 4, b" LVM2 x[5A%r0N*>");
    put(&mut d, m + 20, &1u32.to_le_bytes());
    put(&mut d, m + 24, &(MDA_AT as u64).to_le_bytes());
    put(&mut d, m + 32, &(MDA_SIZE as u64).to_le_bytes());
    put(&mut d, m + 40, &512u64.to_le_bytes());
    put(&mut d, m + 48, &(text.len() as u64).to_le_bytes());
    put(&mut d, m + 56, &lvm_crc(INITIAL_CRC, text).to_le_bytes());
    put(&mut d, m + 512, text);
    let crc = lvm_crc(INITIAL_CRC, &d[m + 4..m + 512]);
    put(&mut d, m, &crc.to_le_bytes());
    for (i, b) in d[DATA_AT..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    d
}

fn candidate(name: &str, bytes: Vec<u8>) -> PvCandidate {
    PvCandidate { device: name.to_owned(), region: Region::whole(Arc::new(MemDisk(bytes))) }
}

fuzz_target!(|data: &[u8]| {
    let report = lvm::assemble(vec![candidate("raw", data.to_vec()), candidate("forged", forged_pv(data))]);
    for lv in report.volumes {
        if let Ok(region) = lv.data {
            let mut buf = vec![0u8; region.len().min(64 * 1024) as usize];
            let _ = region.read_exact_at(0, &mut buf);
            let _ = region.read_exact_at(region.len() - buf.len() as u64, &mut buf);
        }
    }
});
