//! Zip archives made byte by byte for the hostile-input tests: names, declared sizes and
//! compressed data exactly as given (a library writer would refuse or fix them), and deflate
//! streams of zeros of any length built without compressing that much.

use std::io::Write as _;

/// One entry: its name, compression method (0 stored, 8 deflate), data as stored in the
/// archive, and the sizes and CRC the headers declare.
pub struct RawEntry {
    pub name: String,
    pub method: u16,
    pub data: Vec<u8>,
    pub declared_size: u32,
    pub crc: u32,
}

/// A zip archive of `entries` (local headers, data, central directory, end record).
pub fn zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let name = e.name.as_bytes();
        let compressed = e.data.len() as u32;
        // Local file header (APPNOTE 4.3.7).
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes()); // version needed
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date (1980-01-01)
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(&e.declared_size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra length
        out.extend_from_slice(name);
        out.extend_from_slice(&e.data);
        // Central directory header (4.3.12).
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        central.extend_from_slice(&20u16.to_le_bytes()); // needed
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&e.method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&e.crc.to_le_bytes());
        central.extend_from_slice(&compressed.to_le_bytes());
        central.extend_from_slice(&e.declared_size.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 4]); // extra, comment lengths
        central.extend_from_slice(&[0; 4]); // disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let directory_at = out.len() as u32;
    out.extend_from_slice(&central);
    end_record(&mut out, entries.len() as u16, central.len() as u32, directory_at);
    out
}

/// The end of central directory record (4.3.16).
pub fn end_record(out: &mut Vec<u8>, entries: u16, directory_len: u32, directory_at: u32) {
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&directory_len.to_le_bytes());
    out.extend_from_slice(&directory_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
}

/// A ZIP64 end (record, locator, saturated classic record) claiming `entries` entries and an
/// empty directory: only the counts matter to the reader's first check.
pub fn zip64_claiming(entries: u64) -> Vec<u8> {
    let mut out = Vec::new();
    // ZIP64 end of central directory record (4.3.14).
    out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
    out.extend_from_slice(&44u64.to_le_bytes()); // size of the rest
    out.extend_from_slice(&45u16.to_le_bytes());
    out.extend_from_slice(&45u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // disk numbers
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // directory size
    out.extend_from_slice(&0u64.to_le_bytes()); // directory offset
    // Locator (4.3.15).
    out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // offset of the ZIP64 record
    out.extend_from_slice(&1u32.to_le_bytes());
    end_record(&mut out, u16::MAX, u32::MAX, u32::MAX);
    out
}

/// A raw deflate stream that inflates to `mib` MiB of zeros, made of one compressed MiB
/// repeated: after a sync flush each block only refers back into the window, which is zeros.
pub fn deflated_zeros(mib: usize) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let block = vec![0u8; 1 << 20];
    let mut first = Vec::with_capacity(1 << 20);
    c.compress_vec(&block, &mut first, flate2::FlushCompress::Sync).expect("compress");
    let mut repeat = Vec::with_capacity(1 << 20);
    c.compress_vec(&block, &mut repeat, flate2::FlushCompress::Sync).expect("compress");
    let mut end = Vec::with_capacity(1024);
    c.compress_vec(&[], &mut end, flate2::FlushCompress::Finish).expect("finish");
    let mut out = first;
    for _ in 1..mib {
        out.extend_from_slice(&repeat);
    }
    out.extend_from_slice(&end);
    out
}

/// Inflate a raw deflate stream, at most `limit` bytes (to check [`deflated_zeros`]).
pub fn inflate(data: &[u8], limit: u64) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data).take(limit).read_to_end(&mut out).expect("inflate");
    out
}

/// Write `bytes` to `path`.
pub fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::File::create(path).and_then(|mut f| f.write_all(bytes)).expect("write");
}
