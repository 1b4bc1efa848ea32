//! XFS log replay (`fs::xfs::log::recover`) over arbitrary log contents.
//!
//! The input is the log itself, behind a fixed small v5 superblock (or v4 when the first byte is
//! odd): 4 KiB blocks, one AG of 1024 blocks, the log at block 16 and as long as the input (at
//! least 2 blocks, at most 64). Replayed items may address any block of the 4 MiB device.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scanner_ami::disk::MemDisk;
use scanner_ami::fs::xfs::log;

const BLOCK: usize = 4096;
const AG_BLOCKS: u32 = 1024;
const LOG_START: usize = 16;

fn superblock(v5: bool, log_blocks: u32) -> [u8; 512] {
    let mut sb = [0u8; 512];
    let mut put = |off: usize, v: &[u8]| sb[off..off + v.len()].copy_from_slice(v);
    put(0, b"XFSB");
    put(4, &(BLOCK as u32).to_be_bytes());
    put(8, &u64::from(AG_BLOCKS).to_be_bytes());
    put(48, &(LOG_START as u64).to_be_bytes());
    put(56, &128u64.to_be_bytes());
    put(84, &AG_BLOCKS.to_be_bytes());
    put(88, &1u32.to_be_bytes());
    put(96, &log_blocks.to_be_bytes());
    put(100, &(if v5 { 0xb4a5u16 } else { 0xb4a4 }).to_be_bytes());
    put(102, &512u16.to_be_bytes());
    put(104, &512u16.to_be_bytes());
    put(106, &8u16.to_be_bytes());
    put(120, &[12, 9, 9, 3, 10]);
    put(180, &4u32.to_be_bytes());
    sb
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, log_bytes)) = data.split_first() else { return };
    let log_blocks = log_bytes.len().div_ceil(BLOCK).clamp(2, 64);
    let sb = superblock(mode & 1 == 0, log_blocks as u32);
    let mut dev = vec![0u8; AG_BLOCKS as usize * BLOCK];
    dev[..512].copy_from_slice(&sb);
    let at = LOG_START * BLOCK;
    let n = log_bytes.len().min(log_blocks * BLOCK);
    dev[at..at + n].copy_from_slice(&log_bytes[..n]);
    let _ = log::recover(&MemDisk(dev), &sb);
});
