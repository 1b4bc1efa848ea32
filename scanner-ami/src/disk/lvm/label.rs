//! The LVM2 physical-volume label (lvm2 `lib/label/label.h`, `lib/format_text/layout.h`): a
//! `label_header` ("LABELONE") in one of the first four 512-byte sectors, and the `pv_header`
//! after it: the PV UUID, the device size, the list of data areas, the list of metadata areas and
//! the optional extension (version, flags, bootloader areas).

use super::{INITIAL_CRC, SECTOR, lvm_crc};
use crate::disk::{Region, le};

/// lvm2 looks for the label in the first four sectors (`LABEL_SCAN_SECTORS`).
const LABEL_SCAN_SECTORS: u64 = 4;
const LABEL_ID: &[u8] = b"LABELONE";
const LVM2_LABEL_TYPE: &[u8] = b"LVM2 001";
/// `label_header`: id[8], sector_xl u64, crc_xl u32, offset_xl u32, type[8].
const LABEL_HEADER_SIZE: usize = 32;
/// The label CRC covers the sector from `offset_xl` (byte 20) to its end.
const LABEL_CRC_FROM: usize = 20;
/// `ID_LEN`: a PV or VG UUID is 32 characters on disk.
const ID_LEN: usize = 32;
/// One `disk_locn`: offset u64, size u64 (bytes).
const DISK_LOCN_SIZE: usize = 16;

/// A `disk_locn` of the pv_header: an area of the device in bytes (`size` 0: to the device end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLocn {
    pub offset: u64,
    pub size: u64,
}

/// A parsed PV label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvLabel {
    /// The sector (0-3) that holds the label.
    pub sector: u64,
    /// The PV UUID in lvm2's printed form (`xxxxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxxxx`).
    pub uuid: String,
    /// Device size recorded by `pvcreate`, in bytes.
    pub device_size: u64,
    pub data_areas: Vec<DiskLocn>,
    pub metadata_areas: Vec<DiskLocn>,
    /// The pv_header extension version (0 or absent on PVs made before lvm2 2.02.110).
    pub extension_version: Option<u32>,
}

/// Why no usable label was found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    #[error("no LVM2 label (LABELONE) in the first four sectors")]
    NotFound,
    #[error("LVM2 label in sector {sector}: checksum {stored:#010x} does not match the computed {computed:#010x}")]
    BadCrc { sector: u64, stored: u32, computed: u32 },
    #[error("LVM2 label in sector {sector} says it belongs in sector {claimed}")]
    WrongSector { sector: u64, claimed: u64 },
    #[error("LVM2 label in sector {sector}: type {found:?} is not \"LVM2 001\"")]
    WrongType { sector: u64, found: String },
    #[error("LVM2 label in sector {sector}: pv_header offset {offset} does not fit in the sector")]
    BadOffset { sector: u64, offset: u32 },
    #[error("LVM2 label in sector {sector}: the PV UUID is not printable ASCII")]
    BadUuid { sector: u64 },
    #[error("LVM2 label in sector {sector}: an area list runs past the end of the sector")]
    Truncated { sector: u64 },
}

/// Format a 32-character UUID the way lvm2 prints it (6-4-4-4-4-4-6).
#[must_use]
pub fn format_uuid(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 6);
    for (i, c) in raw.chars().enumerate() {
        if matches!(i, 6 | 10 | 14 | 18 | 22 | 26) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// Find and parse the label of `region`: the first valid one in sectors 0-3; if there is none,
/// the first damaged one's error (or [`LabelError::NotFound`]).
pub fn read(region: &Region) -> Result<PvLabel, LabelError> {
    let head = region.read_prefix(0, (LABEL_SCAN_SECTORS * SECTOR) as usize).unwrap_or_default();
    let mut first_err = None;
    for sector in 0..LABEL_SCAN_SECTORS {
        let base = (sector * SECTOR) as usize;
        let Some(buf) = head.get(base..base + SECTOR as usize) else { break };
        if buf.get(..LABEL_ID.len()) != Some(LABEL_ID) {
            continue;
        }
        match parse_sector(sector, buf) {
            Ok(l) => return Ok(l),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or(LabelError::NotFound))
}

/// Parse one 512-byte sector that starts with `LABELONE`.
fn parse_sector(sector: u64, buf: &[u8]) -> Result<PvLabel, LabelError> {
    let truncated = LabelError::Truncated { sector };
    let claimed = le::u64(buf, 8).ok_or(LabelError::Truncated { sector })?;
    let stored = le::u32(buf, 16).ok_or(LabelError::Truncated { sector })?;
    let computed = lvm_crc(INITIAL_CRC, buf.get(LABEL_CRC_FROM..).unwrap_or_default());
    if stored != computed {
        return Err(LabelError::BadCrc { sector, stored, computed });
    }
    if claimed != sector {
        return Err(LabelError::WrongSector { sector, claimed });
    }
    let ty = le::bytes(buf, 24, 8).ok_or(LabelError::Truncated { sector })?;
    if ty != LVM2_LABEL_TYPE {
        return Err(LabelError::WrongType { sector, found: String::from_utf8_lossy(ty).into_owned() });
    }
    let offset = le::u32(buf, 20).ok_or(LabelError::Truncated { sector })?;
    let pvh = offset as usize;
    // The pv_header needs its UUID, its device size and two list terminators at least.
    if pvh < LABEL_HEADER_SIZE || pvh.saturating_add(ID_LEN + 8 + 2 * DISK_LOCN_SIZE) > buf.len() {
        return Err(LabelError::BadOffset { sector, offset });
    }
    let uuid_raw = le::bytes(buf, pvh, ID_LEN).ok_or(LabelError::BadOffset { sector, offset })?;
    if !uuid_raw.iter().all(u8::is_ascii_graphic) {
        return Err(LabelError::BadUuid { sector });
    }
    let uuid = format_uuid(&String::from_utf8_lossy(uuid_raw));
    let device_size = le::u64(buf, pvh + ID_LEN).ok_or(LabelError::BadOffset { sector, offset })?;
    let mut pos = pvh + ID_LEN + 8;
    let data_areas = area_list(buf, &mut pos).ok_or(LabelError::Truncated { sector })?;
    let metadata_areas = area_list(buf, &mut pos).ok_or(truncated)?;
    // The extension (lvm2 >= 2.02.110) follows the second list when it fits in the sector.
    let extension_version = le::u32(buf, pos).filter(|&v| v != 0);
    Ok(PvLabel { sector, uuid, device_size, data_areas, metadata_areas, extension_version })
}

/// A `disk_locn` list ended by an entry whose offset is 0 (lvm2 stops at the first zero offset);
/// `None` if the sector ends first.
fn area_list(buf: &[u8], pos: &mut usize) -> Option<Vec<DiskLocn>> {
    let mut out = Vec::new();
    loop {
        let offset = le::u64(buf, *pos)?;
        let size = le::u64(buf, pos.checked_add(8)?)?;
        *pos = pos.checked_add(DISK_LOCN_SIZE)?;
        if offset == 0 {
            return Some(out);
        }
        out.push(DiskLocn { offset, size });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_printed_six_four_four_four_four_four_six() {
        assert_eq!(format_uuid("3stpw1CTzzqLiVjZfO1htsBgXD5PE359"), "3stpw1-CTzz-qLiV-jZfO-1hts-BgXD-5PE359");
    }
}
