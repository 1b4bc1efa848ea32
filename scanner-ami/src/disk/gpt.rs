//! GUID Partition Table reader (UEFI spec 2.10 §5.3): header at LBA 1 with CRC32 checks, the
//! partition entry array with its CRC32, the backup header at the last LBA when the primary is
//! damaged, and 512- or 4096-byte logical sectors.

use super::le;
use super::{BlockSource, Region};
use crate::limits::{MAX_GPT_ARRAY_BYTES, MAX_PARTITIONS};

/// "EFI PART", the GPT header signature.
const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The smallest header the spec defines (92 bytes, revision 1.0).
const MIN_HEADER_SIZE: u32 = 92;
/// Logical sector sizes tried, in order (512e/512n disks, then 4Kn disks).
pub const SECTOR_SIZES: [u64; 2] = [512, 4096];

/// Which copy of the header was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderCopy {
    Primary,
    Backup,
}

/// One used GPT entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptEntry {
    /// 1-based index in the entry array (as `/dev/sda<N>` would number it).
    pub index: u32,
    pub type_guid: String,
    pub unique_guid: String,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub name: String,
}

/// A parsed, checksum-verified GPT.
#[derive(Debug, Clone)]
pub struct Gpt {
    pub sector_size: u64,
    pub header: HeaderCopy,
    pub disk_guid: String,
    pub entries: Vec<GptEntry>,
    /// Problems noticed while reading (e.g. a damaged primary header).
    pub warnings: Vec<String>,
}

/// Why no GPT could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("GPT: {0}")]
pub struct GptError(pub String);

/// True if a GPT header signature sits at LBA 1 for some supported sector size, or at the last
/// LBA (a disk whose primary header was wiped).
#[must_use]
pub fn has_signature(src: &Region) -> bool {
    SECTOR_SIZES.iter().any(|&ss| {
        let at = |off: u64| src.read_prefix(off, 8).is_some_and(|b| b == SIGNATURE);
        at(ss) || src.len().checked_div(ss).and_then(|n| n.checked_sub(1)).is_some_and(|last| last > 1 && at(last * ss))
    })
}

/// Read the GPT of `src`: the primary header, or the backup when the primary is damaged.
pub fn read(src: &Region) -> Result<Gpt, GptError> {
    let mut problems = Vec::new();
    for &ss in &SECTOR_SIZES {
        match read_header(src, ss, 1) {
            Ok(mut gpt) => {
                gpt.warnings.extend(problems);
                return Ok(gpt);
            }
            Err(e) => {
                if src.read_prefix(ss, 8).is_some_and(|b| b == SIGNATURE) {
                    problems.push(format!("primary header ({ss}-byte sectors) unusable: {}", e.0));
                }
            }
        }
    }
    for &ss in &SECTOR_SIZES {
        let Some(last) = (src.len() / ss).checked_sub(1) else { continue };
        if last <= 1 {
            continue;
        }
        if let Ok(mut gpt) = read_header(src, ss, last) {
            gpt.header = HeaderCopy::Backup;
            if problems.is_empty() {
                problems.push("primary header missing; using the backup header".to_owned());
            }
            gpt.warnings.extend(problems);
            return Ok(gpt);
        }
    }
    if problems.is_empty() {
        problems.push("no valid GPT header at LBA 1 or at the last LBA".to_owned());
    }
    Err(GptError(problems.join("; ")))
}

fn read_header(src: &Region, ss: u64, lba: u64) -> Result<Gpt, GptError> {
    let err = |m: String| GptError(m);
    let ss_usize = usize::try_from(ss).map_err(|_| err("sector size".into()))?;
    let off = lba.checked_mul(ss).ok_or_else(|| err("header LBA overflows".into()))?;
    let hdr = src.read_prefix(off, ss_usize).ok_or_else(|| err(format!("cannot read LBA {lba}")))?;
    if hdr.len() < ss_usize || hdr.get(..8) != Some(SIGNATURE.as_slice()) {
        return Err(err(format!("no signature at LBA {lba}")));
    }
    let field32 = |o| le::u32(&hdr, o).ok_or_else(|| err("header truncated".into()));
    let field64 = |o| le::u64(&hdr, o).ok_or_else(|| err("header truncated".into()));
    let header_size = field32(12)?;
    if header_size < MIN_HEADER_SIZE || u64::from(header_size) > ss {
        return Err(err(format!("header size {header_size} out of range")));
    }
    let stored_crc = field32(16)?;
    let mut copy = hdr.get(..header_size as usize).ok_or_else(|| err("header truncated".into()))?.to_vec();
    copy.get_mut(16..20).ok_or_else(|| err("header truncated".into()))?.fill(0);
    let crc = crc32fast::hash(&copy);
    if crc != stored_crc {
        return Err(err(format!("header CRC32 mismatch at LBA {lba} (stored {stored_crc:08x}, computed {crc:08x})")));
    }
    let my_lba = field64(24)?;
    if my_lba != lba {
        return Err(err(format!("header at LBA {lba} says it is at LBA {my_lba}")));
    }
    let first_usable = field64(40)?;
    let last_usable = field64(48)?;
    let disk_guid = guid(le::bytes(&hdr, 56, 16).ok_or_else(|| err("header truncated".into()))?);
    let entries_lba = field64(72)?;
    let num_entries = field32(80)?;
    let entry_size = field32(84)?;
    let entries_crc = field32(88)?;
    if entry_size < 128 || entry_size % 8 != 0 {
        return Err(err(format!("entry size {entry_size} invalid")));
    }
    let array_len = u64::from(num_entries) * u64::from(entry_size);
    if array_len > MAX_GPT_ARRAY_BYTES {
        return Err(err(format!("entry array of {array_len} bytes exceeds the {MAX_GPT_ARRAY_BYTES}-byte limit")));
    }
    let array_off = entries_lba.checked_mul(ss).ok_or_else(|| err("entry array LBA overflows".into()))?;
    let array_len_usize = usize::try_from(array_len).map_err(|_| err("entry array too large".into()))?;
    let mut array = vec![0u8; array_len_usize];
    src.read_exact_at(array_off, &mut array)
        .map_err(|e| err(format!("entry array at LBA {entries_lba} unreadable: {e}")))?;
    let crc = crc32fast::hash(&array);
    if crc != entries_crc {
        return Err(err(format!("entry array CRC32 mismatch (stored {entries_crc:08x}, computed {crc:08x})")));
    }
    let disk_lbas = src.len() / ss;
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (i, raw) in array.chunks_exact(entry_size as usize).enumerate() {
        let Some(type_bytes) = le::bytes(raw, 0, 16) else { continue };
        if type_bytes.iter().all(|&b| b == 0) {
            continue;
        }
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if entries.len() >= MAX_PARTITIONS {
            warnings.push(format!("more than {MAX_PARTITIONS} used entries; the rest are ignored"));
            break;
        }
        let (Some(first_lba), Some(last_lba)) = (le::u64(raw, 32), le::u64(raw, 40)) else { continue };
        let name_units: Vec<u16> = le::bytes(raw, 56, 72)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&name_units);
        if last_lba < first_lba || first_lba < first_usable || last_lba > last_usable || last_lba >= disk_lbas {
            warnings.push(format!(
                "entry {index} spans LBA {first_lba}..={last_lba}, outside the usable area {first_usable}..={last_usable} or the disk ({disk_lbas} sectors)"
            ));
        }
        entries.push(GptEntry {
            index,
            type_guid: guid(type_bytes),
            unique_guid: guid(le::bytes(raw, 16, 16).unwrap_or(&[0; 16])),
            first_lba,
            last_lba,
            name,
        });
    }
    Ok(Gpt { sector_size: ss, header: HeaderCopy::Primary, disk_guid, entries, warnings })
}

/// Format a GUID stored in the UEFI mixed-endian layout.
#[must_use]
pub fn guid(b: &[u8]) -> String {
    if b.len() < 16 {
        return String::new();
    }
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// A human name for well-known partition type GUIDs (informational; content is probed by magic).
#[must_use]
pub fn type_name(type_guid: &str) -> Option<&'static str> {
    Some(match type_guid {
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI system",
        "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "Linux root (x86-64)",
        "B921B045-1DF0-41C3-AF44-4C6F280D3FAE" => "Linux root (ARM64)",
        "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "Linux extended boot",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
        "A19D880F-05FC-4D3B-A006-743F0F84911E" => "Linux RAID",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft basic data",
        "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" => "Microsoft reserved",
        _ => return None,
    })
}
