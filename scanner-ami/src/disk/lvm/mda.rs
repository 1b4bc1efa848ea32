//! A metadata area (lvm2 `lib/format_text/layout.h`, `format-text.c`): its 512-byte `mda_header`
//! (checksum, magic, version, start, size and the `raw_locn` list) and the VG metadata text the
//! first `raw_locn` points to. The area after the header is a circular buffer, so the text may
//! wrap: its tail then continues right after the header.

use super::label::DiskLocn;
use super::{INITIAL_CRC, lvm_crc};
use crate::disk::{BlockSource, Region, le};
use crate::limits::MAX_LVM_METADATA_BYTES;

/// `MDA_HEADER_SIZE`: the header takes one sector; the circular text buffer follows it.
pub const MDA_HEADER_SIZE: u64 = 512;
/// `FMTT_MAGIC`.
const FMTT_MAGIC: &[u8] = b" LVM2 x[5A%r0N*>";
/// `FMTT_VERSION`.
const FMTT_VERSION: u32 = 1;
/// `RAW_LOCN_IGNORED`: the area is kept but not used (`pvchange --metadataignore`).
const RAW_LOCN_IGNORED: u32 = 0x1;
/// Offset of the `raw_locn` list in the header; each entry is 24 bytes.
const RAW_LOCNS_AT: usize = 40;

/// The committed metadata text of one area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaText {
    pub text: Vec<u8>,
    /// The text's checksum as recorded (and verified).
    pub checksum: u32,
    /// True when the text wrapped round the end of the circular buffer.
    pub wrapped: bool,
}

/// Errors reading one metadata area.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MdaError {
    #[error("cannot read the mda_header: {0}")]
    Io(String),
    #[error("mda_header checksum {stored:#010x} does not match the computed {computed:#010x}")]
    HeaderChecksum { stored: u32, computed: u32 },
    #[error("mda_header magic is wrong")]
    Magic,
    #[error("mda_header version {0} is not 1")]
    Version(u32),
    #[error("mda_header says it starts at byte {found}, but the label puts it at {expected}")]
    Start { found: u64, expected: u64 },
    #[error("metadata area of {size} bytes at {start} does not fit the device ({device} bytes) or its label entry")]
    Size { start: u64, size: u64, device: u64 },
    #[error("metadata text at offset {offset}, {size} bytes, lies outside the {area}-byte metadata area")]
    Location { offset: u64, size: u64, area: u64 },
    #[error("metadata text of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("the metadata read budget of this assembly is exhausted ({size} bytes more wanted)")]
    Budget { size: u64 },
    #[error("cannot read the metadata text: {0}")]
    TextIo(String),
    #[error("metadata text checksum {stored:#010x} does not match the computed {computed:#010x}")]
    TextChecksum { stored: u32, computed: u32 },
}

/// Read the committed metadata text of the area `area` (from the PV label) of `pv`.
///
/// `Ok(None)`: the area holds no metadata (an orphan PV) or is marked ignored. `budget` is the
/// number of text bytes this assembly may still read; it is decreased.
pub fn read(pv: &Region, area: DiskLocn, budget: &mut u64) -> Result<Option<MdaText>, MdaError> {
    let mut hdr = [0u8; MDA_HEADER_SIZE as usize];
    pv.read_exact_at(area.offset, &mut hdr).map_err(|e| MdaError::Io(e.to_string()))?;
    let stored = le::u32(&hdr, 0).unwrap_or_default();
    let computed = lvm_crc(INITIAL_CRC, hdr.get(4..).unwrap_or_default());
    if stored != computed {
        return Err(MdaError::HeaderChecksum { stored, computed });
    }
    if le::bytes(&hdr, 4, FMTT_MAGIC.len()) != Some(FMTT_MAGIC) {
        return Err(MdaError::Magic);
    }
    let version = le::u32(&hdr, 20).unwrap_or_default();
    if version != FMTT_VERSION {
        return Err(MdaError::Version(version));
    }
    let start = le::u64(&hdr, 24).unwrap_or_default();
    if start != area.offset {
        return Err(MdaError::Start { found: start, expected: area.offset });
    }
    let size = le::u64(&hdr, 32).unwrap_or_default();
    let fits_device = start.checked_add(size).is_some_and(|end| end <= pv.len());
    let fits_label = area.size == 0 || size <= area.size;
    if size <= MDA_HEADER_SIZE || !fits_device || !fits_label {
        return Err(MdaError::Size { start, size, device: pv.len() });
    }

    // The first raw_locn is the committed metadata; a second one, if any, is precommitted.
    let offset = le::u64(&hdr, RAW_LOCNS_AT).unwrap_or_default();
    let text_size = le::u64(&hdr, RAW_LOCNS_AT + 8).unwrap_or_default();
    let checksum = le::u32(&hdr, RAW_LOCNS_AT + 16).unwrap_or_default();
    let flags = le::u32(&hdr, RAW_LOCNS_AT + 20).unwrap_or_default();
    if offset == 0 || flags & RAW_LOCN_IGNORED != 0 {
        return Ok(None);
    }
    let bad_location = MdaError::Location { offset, size: text_size, area: size };
    let buffer = size - MDA_HEADER_SIZE;
    if offset < MDA_HEADER_SIZE || offset >= size || text_size == 0 || text_size > buffer {
        return Err(bad_location);
    }
    if text_size > MAX_LVM_METADATA_BYTES {
        return Err(MdaError::TooLarge { size: text_size, limit: MAX_LVM_METADATA_BYTES });
    }
    if text_size > *budget {
        return Err(MdaError::Budget { size: text_size });
    }
    // The text runs to the end of the area, then wraps to just after the header; the wrapped
    // tail must not reach back into the text's own start.
    let first = text_size.min(size - offset);
    let second = text_size - first;
    if second > 0 && MDA_HEADER_SIZE + second > offset {
        return Err(bad_location);
    }
    *budget -= text_size;
    let len = usize::try_from(text_size)
        .map_err(|_| MdaError::TooLarge { size: text_size, limit: MAX_LVM_METADATA_BYTES })?;
    let mut text = vec![0u8; len];
    let (head, tail) = text.split_at_mut(usize::try_from(first).unwrap_or(len));
    pv.read_exact_at(start + offset, head).map_err(|e| MdaError::TextIo(e.to_string()))?;
    if !tail.is_empty() {
        pv.read_exact_at(start + MDA_HEADER_SIZE, tail).map_err(|e| MdaError::TextIo(e.to_string()))?;
    }
    let computed = lvm_crc(INITIAL_CRC, &text);
    if computed != checksum {
        return Err(MdaError::TextChecksum { stored: checksum, computed });
    }
    Ok(Some(MdaText { text, checksum, wrapped: second > 0 }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::MemDisk;

    const AREA: u64 = 4096;
    const AREA_SIZE: u64 = 8192;

    /// A disk with one metadata area at 4096 of 8192 bytes holding `text` at `offset` (wrapping if
    /// it runs past the end).
    fn disk_with(text: &[u8], offset: u64) -> Region {
        let mut d = vec![0u8; (AREA + AREA_SIZE) as usize];
        let mut h = [0u8; 512];
        h[4..20].copy_from_slice(FMTT_MAGIC);
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[24..32].copy_from_slice(&AREA.to_le_bytes());
        h[32..40].copy_from_slice(&AREA_SIZE.to_le_bytes());
        h[40..48].copy_from_slice(&offset.to_le_bytes());
        h[48..56].copy_from_slice(&(text.len() as u64).to_le_bytes());
        h[56..60].copy_from_slice(&lvm_crc(INITIAL_CRC, text).to_le_bytes());
        let c = lvm_crc(INITIAL_CRC, &h[4..]);
        h[0..4].copy_from_slice(&c.to_le_bytes());
        d[AREA as usize..AREA as usize + 512].copy_from_slice(&h);
        for (i, b) in text.iter().enumerate() {
            let mut o = offset + i as u64;
            if o >= AREA_SIZE {
                o = o - AREA_SIZE + MDA_HEADER_SIZE;
            }
            d[(AREA + o) as usize] = *b;
        }
        Region::whole(Arc::new(MemDisk(d)))
    }

    fn area() -> DiskLocn {
        DiskLocn { offset: AREA, size: AREA_SIZE }
    }

    #[test]
    fn text_that_wraps_round_the_buffer_is_reassembled() {
        let text: Vec<u8> = (0..1500u32).map(|i| b'a' + (i % 26) as u8).collect();
        let pv = disk_with(&text, AREA_SIZE - 700);
        let mut budget = u64::MAX;
        let got = read(&pv, area(), &mut budget).expect("reads").expect("has text");
        assert!(got.wrapped);
        assert_eq!(got.text, text);
        assert_eq!(budget, u64::MAX - 1500);
    }

    #[test]
    fn damaged_header_and_text_are_refused() {
        let pv = disk_with(b"vg { }", 512);
        let mut raw = vec![0u8; pv.len() as usize];
        pv.read_exact_at(0, &mut raw).expect("read");
        let mut budget = u64::MAX;
        // a flipped text byte: the text checksum fails
        let mut t = raw.clone();
        t[(AREA + 512) as usize] ^= 1;
        let r = read(&Region::whole(Arc::new(MemDisk(t))), area(), &mut budget);
        assert!(matches!(r, Err(MdaError::TextChecksum { .. })), "{r:?}");
        // a flipped header byte: the header checksum fails
        let mut h = raw.clone();
        h[(AREA + 30) as usize] ^= 1;
        let r = read(&Region::whole(Arc::new(MemDisk(h))), area(), &mut budget);
        assert!(matches!(r, Err(MdaError::HeaderChecksum { .. })), "{r:?}");
        // the label puts the area elsewhere
        let r = read(&pv, DiskLocn { offset: AREA, size: 4096 }, &mut budget);
        assert!(matches!(r, Err(MdaError::Size { .. })), "{r:?}");
        // an exhausted budget
        let mut small = 3;
        assert_eq!(read(&pv, area(), &mut small), Err(MdaError::Budget { size: 6 }));
    }
}
