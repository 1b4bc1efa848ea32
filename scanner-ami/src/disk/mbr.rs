//! Master Boot Record reader: the four primary entries and the chain of extended boot records
//! (EBRs) that holds logical partitions, with loop and count bounds.

use std::collections::HashSet;

use super::Region;
use super::le;
use crate::limits::MAX_PARTITIONS;

/// MBR sectors are always 512 bytes, whatever the disk's logical sector size.
const SECTOR: u64 = 512;
/// Offset of the first partition entry in the MBR / an EBR.
const TABLE_OFFSET: usize = 446;
/// The protective-MBR partition type that announces a GPT.
pub const TYPE_GPT_PROTECTIVE: u8 = 0xEE;

/// One MBR partition (primary or logical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrEntry {
    /// 1-4 for primary partitions, 5.. for logical ones (the Linux numbering).
    pub index: u32,
    pub type_byte: u8,
    pub bootable: bool,
    pub start_lba: u64,
    pub sectors: u64,
}

/// A parsed MBR.
#[derive(Debug, Clone, Default)]
pub struct Mbr {
    pub entries: Vec<MbrEntry>,
    pub warnings: Vec<String>,
}

/// Extended partition types (CHS, LBA, Linux).
#[must_use]
pub fn is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0F | 0x85)
}

fn raw_entries(sector: &[u8]) -> Option<[(u8, u8, u64, u64); 4]> {
    if sector.get(510..512) != Some(&[0x55, 0xAA]) {
        return None;
    }
    let mut out = [(0u8, 0u8, 0u64, 0u64); 4];
    for (i, slot) in out.iter_mut().enumerate() {
        let base = TABLE_OFFSET + i * 16;
        let status = *sector.get(base)?;
        let t = *sector.get(base + 4)?;
        let start = le::u32(sector, base + 8)?;
        let count = le::u32(sector, base + 12)?;
        *slot = (status, t, u64::from(start), u64::from(count));
    }
    Some(out)
}

/// True if sector 0 holds a plausible MBR: the boot signature, status bytes 0x00/0x80 and at
/// least one used entry.
#[must_use]
pub fn looks_like_mbr(sector0: &[u8]) -> bool {
    match raw_entries(sector0) {
        Some(e) => e.iter().all(|&(s, ..)| s == 0 || s == 0x80) && e.iter().any(|&(_, t, _, n)| t != 0 && n != 0),
        None => false,
    }
}

/// True if sector 0 is a protective MBR (a GPT disk).
#[must_use]
pub fn is_protective(sector0: &[u8]) -> bool {
    raw_entries(sector0).is_some_and(|e| e.iter().any(|&(_, t, ..)| t == TYPE_GPT_PROTECTIVE))
}

/// Read the MBR of `src` and walk its extended partition's EBR chain.
pub fn read(src: &Region) -> Result<Mbr, String> {
    let sector0 = src.read_prefix(0, 512).ok_or("cannot read sector 0")?;
    let entries = raw_entries(&sector0).ok_or("no MBR boot signature")?;
    let mut mbr = Mbr::default();
    let mut extended = None;
    for (i, &(status, t, start, count)) in entries.iter().enumerate() {
        if t == 0 || count == 0 {
            continue;
        }
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if is_extended(t) {
            if extended.is_some() {
                mbr.warnings.push(format!("entry {index}: a second extended partition is ignored"));
            } else {
                extended = Some((start, count));
            }
            continue;
        }
        mbr.entries.push(MbrEntry { index, type_byte: t, bootable: status == 0x80, start_lba: start, sectors: count });
    }
    if let Some((ext_start, ext_count)) = extended {
        walk_ebrs(src, ext_start, ext_count, &mut mbr);
    }
    Ok(mbr)
}

fn walk_ebrs(src: &Region, ext_start: u64, ext_count: u64, mbr: &mut Mbr) {
    let mut seen = HashSet::new();
    let mut ebr_lba = ext_start;
    let mut index = 5u32;
    loop {
        if !seen.insert(ebr_lba) {
            mbr.warnings.push(format!("EBR chain loops back to LBA {ebr_lba}; stopped"));
            return;
        }
        if mbr.entries.len() >= MAX_PARTITIONS {
            mbr.warnings.push(format!("more than {MAX_PARTITIONS} partitions; the rest are ignored"));
            return;
        }
        let Some(off) = ebr_lba.checked_mul(SECTOR) else { return };
        let Some(sector) = src.read_prefix(off, 512).filter(|s| s.len() == 512) else {
            mbr.warnings.push(format!("EBR at LBA {ebr_lba} lies past the end of the disk"));
            return;
        };
        let Some(e) = raw_entries(&sector) else {
            mbr.warnings
                .push(format!("EBR at LBA {ebr_lba} has no boot signature; logical partitions from here on are lost"));
            return;
        };
        let (status, t, rel, count) = e[0];
        if t != 0 && count != 0 {
            match ebr_lba.checked_add(rel) {
                Some(start) => mbr.entries.push(MbrEntry {
                    index,
                    type_byte: t,
                    bootable: status == 0x80,
                    start_lba: start,
                    sectors: count,
                }),
                None => mbr.warnings.push(format!("logical partition {index}: start overflows")),
            }
            index = index.saturating_add(1);
        }
        let (_, next_t, next_rel, _) = e[1];
        if next_t == 0 || !is_extended(next_t) {
            return;
        }
        if next_rel >= ext_count {
            mbr.warnings.push(format!("EBR link at LBA {ebr_lba} points outside the extended partition"));
            return;
        }
        match ext_start.checked_add(next_rel) {
            Some(next) => ebr_lba = next,
            None => return,
        }
    }
}

/// A human name for common MBR type bytes.
#[must_use]
pub fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        0x07 => "NTFS/exFAT",
        0x0B | 0x0C => "FAT32",
        0x0E | 0x06 | 0x04 | 0x01 => "FAT",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8E => "Linux LVM",
        0xEF => "EFI system",
        0xFD => "Linux RAID",
        0xEE => "GPT protective",
        _ => return None,
    })
}
