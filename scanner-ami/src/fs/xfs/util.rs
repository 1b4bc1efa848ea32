//! Small helpers of the XFS reader: big-endian field readers that never panic, CRC32C, and the
//! reader's internal error type.

/// Big-endian field readers over a byte slice that return `None` instead of panicking (XFS is
/// big-endian on disk; only its CRC fields are little-endian).
pub(crate) mod be {
    pub fn u16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_be_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
    }
    pub fn u32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_be_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
    }
    pub fn u64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_be_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
    }
    pub fn u8(b: &[u8], off: usize) -> Option<u8> {
        b.get(off).copied()
    }
    pub fn bytes(b: &[u8], off: usize, n: usize) -> Option<&[u8]> {
        b.get(off..off.checked_add(n)?)
    }
}

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8 tables built at compile
/// time. Same values as the `crc32c` of Linux `lib/crc32.c` with XFS's `~0` seed and final
/// inversion.
mod crc32c_tables {
    const POLY: u32 = 0x82F6_3B78;

    const fn build() -> [[u32; 256]; 8] {
        let mut t = [[0u32; 256]; 8];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
                k += 1;
            }
            t[0][i] = c;
            i += 1;
        }
        let mut i = 0;
        while i < 256 {
            let mut s = 1;
            while s < 8 {
                let prev = t[s - 1][i];
                t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
                s += 1;
            }
            i += 1;
        }
        t
    }

    pub(super) static TABLES: [[u32; 256]; 8] = build();
}

/// Continue a raw (not inverted) CRC32C over `data`.
fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    let t = &crc32c_tables::TABLES;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ t[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

/// CRC32C of `data` (standard: seed `!0`, result inverted). Used by the log replay ([`super::log`]).
#[allow(dead_code)]
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

/// Check the CRC of an XFS metadata object: CRC32C of the whole object with its 4-byte CRC field
/// (at `crc_off`, stored little-endian) taken as zero. Returns `(stored, computed)` on mismatch.
pub fn verify_cksum(obj: &[u8], crc_off: usize) -> Result<(), (u32, u32)> {
    let (Some(head), Some(field), Some(tail)) =
        (obj.get(..crc_off), obj.get(crc_off..crc_off + 4), obj.get(crc_off + 4..))
    else {
        return Err((0, 0));
    };
    let stored = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
    let mut crc = crc32c_update(!0, head);
    crc = crc32c_update(crc, &[0u8; 4]);
    crc = !crc32c_update(crc, tail);
    if crc == stored { Ok(()) } else { Err((stored, crc)) }
}

/// Why a read of one object failed, before the path it was reached by is attached.
#[derive(Debug, Clone)]
pub(crate) enum XErr {
    /// The on-disk structure is inconsistent; the reason names the object.
    Corrupt(String),
    /// The device could not be read.
    Io(String),
    /// A directory lists more than [`crate::limits::MAX_DIR_ENTRIES`] entries.
    TooManyEntries,
}

impl XErr {
    pub(crate) fn corrupt(s: impl Into<String>) -> Self {
        XErr::Corrupt(s.into())
    }
}

/// `Option` → corrupt-object error, naming what was missing.
pub(crate) trait OrCorrupt<T> {
    fn or_bad(self, what: impl FnOnce() -> String) -> Result<T, XErr>;
}

impl<T> OrCorrupt<T> for Option<T> {
    fn or_bad(self, what: impl FnOnce() -> String) -> Result<T, XErr> {
        self.ok_or_else(|| XErr::Corrupt(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The CRC catalogue's check value for CRC-32C ("123456789").
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        // Slicing-by-8 agrees with the bytewise loop for every split.
        let mut bytewise = !0u32;
        for &b in &long {
            bytewise = (bytewise >> 8) ^ crc32c_tables::TABLES[0][((bytewise ^ u32::from(b)) & 0xff) as usize];
        }
        assert_eq!(crc32c(&long), !bytewise);
    }

    #[test]
    fn cksum_field_is_zeroed() {
        let mut obj = vec![7u8; 64];
        obj[8..12].copy_from_slice(&[0; 4]);
        let c = crc32c(&obj);
        obj[8..12].copy_from_slice(&c.to_le_bytes());
        assert!(verify_cksum(&obj, 8).is_ok());
        obj[20] ^= 1;
        assert!(verify_cksum(&obj, 8).is_err());
    }
}
