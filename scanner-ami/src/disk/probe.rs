//! Filesystem and volume detection by on-disk magic: ext2/3/4, XFS, btrfs, LVM2 PV, LUKS, swap,
//! vfat, NTFS, squashfs and ISO 9660. Reads at most a few KiB per region.

use serde::Serialize;

use super::Region;
use super::le;

/// What a region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    #[serde(rename = "lvm2-pv")]
    Lvm2Pv,
    Luks,
    Swap,
    Vfat,
    Ntfs,
    Squashfs,
    Iso9660,
    /// The first 64 KiB are zero.
    Empty,
    Unknown,
}

impl Content {
    /// The name used in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Content::Ext2 => "ext2",
            Content::Ext3 => "ext3",
            Content::Ext4 => "ext4",
            Content::Xfs => "xfs",
            Content::Btrfs => "btrfs",
            Content::Lvm2Pv => "lvm2-pv",
            Content::Luks => "luks",
            Content::Swap => "swap",
            Content::Vfat => "vfat",
            Content::Ntfs => "ntfs",
            Content::Squashfs => "squashfs",
            Content::Iso9660 => "iso9660",
            Content::Empty => "empty",
            Content::Unknown => "unknown",
        }
    }

    /// True for the ext family, which we read in userspace.
    #[must_use]
    pub fn is_ext(self) -> bool {
        matches!(self, Content::Ext2 | Content::Ext3 | Content::Ext4)
    }
}

/// Probe result: the content type plus label and UUID where the format has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    #[serde(rename = "type")]
    pub content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

// ext2/3/4 superblock (Linux Documentation/filesystems/ext4/super.rst): at byte 1024, magic 0xEF53
// at +56; feature words at +92 (compat), +96 (incompat), +100 (ro_compat).
const EXT_SB: u64 = 1024;
const EXT_MAGIC: u16 = 0xEF53;
const EXT_COMPAT_HAS_JOURNAL: u32 = 0x4;
/// incompat: extents (0x40), 64bit (0x80), flex_bg (0x200), inline_data (0x8000), csum_seed etc.
const EXT4_INCOMPAT: u32 = 0x40 | 0x80 | 0x200 | 0x400 | 0x8000 | 0x2000;
/// ro_compat: huge_file (0x8), gdt_csum (0x10), dir_nlink (0x20), extra_isize (0x40), metadata_csum (0x400).
const EXT4_RO_COMPAT: u32 = 0x8 | 0x10 | 0x20 | 0x40 | 0x400;
/// btrfs primary superblock at 64 KiB; magic "_BHRfS_M" at +0x40.
const BTRFS_MAGIC_OFF: u64 = 0x10000 + 0x40;

fn fmt_uuid(b: &[u8]) -> Option<String> {
    if b.len() != 16 || b.iter().all(|&x| x == 0) {
        return None;
    }
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    ))
}

fn label(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(b.get(..end)?).trim().to_owned();
    if s.is_empty() { None } else { Some(s) }
}

/// Identify what `region` holds.
#[must_use]
pub fn probe(region: &Region) -> Probe {
    let unknown = |content| Probe { content, label: None, uuid: None };
    let head = region.read_prefix(0, 4096).unwrap_or_default();
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);

    if at(0, b"LUKS\xba\xbe") {
        return Probe { content: Content::Luks, label: None, uuid: le::bytes(&head, 168, 40).and_then(label) };
    }
    if at(0, b"XFSB") {
        return Probe {
            content: Content::Xfs,
            label: le::bytes(&head, 108, 12).and_then(label),
            uuid: le::bytes(&head, 32, 16).and_then(fmt_uuid),
        };
    }
    if let Some(sb) = region.read_prefix(EXT_SB, 1024).filter(|s| s.len() == 1024)
        && le::u16(&sb, 56) == Some(EXT_MAGIC)
    {
        let compat = le::u32(&sb, 92).unwrap_or(0);
        let incompat = le::u32(&sb, 96).unwrap_or(0);
        let ro = le::u32(&sb, 100).unwrap_or(0);
        let content = if incompat & EXT4_INCOMPAT != 0 || ro & EXT4_RO_COMPAT != 0 {
            Content::Ext4
        } else if compat & EXT_COMPAT_HAS_JOURNAL != 0 {
            Content::Ext3
        } else {
            Content::Ext2
        };
        return Probe {
            content,
            label: le::bytes(&sb, 120, 16).and_then(label),
            uuid: le::bytes(&sb, 104, 16).and_then(fmt_uuid),
        };
    }
    // LVM2 physical volume label: "LABELONE" in one of the first four sectors, type "LVM2 001" at +24.
    for sector in 0..4usize {
        let base = sector * 512;
        if at(base, b"LABELONE") && at(base + 24, b"LVM2 001") {
            return Probe {
                content: Content::Lvm2Pv,
                label: None,
                uuid: le::bytes(&head, base + 32, 32).map(|b| String::from_utf8_lossy(b).into_owned()),
            };
        }
    }
    if region.read_prefix(BTRFS_MAGIC_OFF, 8).is_some_and(|m| m == b"_BHRfS_M") {
        let sb = region.read_prefix(0x10000, 0x200).unwrap_or_default();
        return Probe {
            content: Content::Btrfs,
            label: le::bytes(&sb, 0x12b, 256).and_then(label),
            uuid: le::bytes(&sb, 0x20, 16).and_then(fmt_uuid),
        };
    }
    if at(4096 - 10, b"SWAPSPACE2") || at(4096 - 10, b"SWAP-SPACE") {
        return Probe {
            content: Content::Swap,
            label: le::bytes(&head, 1024 + 28, 16).and_then(label),
            uuid: le::bytes(&head, 1024 + 12, 16).and_then(fmt_uuid),
        };
    }
    if at(3, b"NTFS    ") {
        return unknown(Content::Ntfs);
    }
    if is_fat_boot_sector(&head) {
        let fat32 = at(82, b"FAT32   ");
        let lab = if fat32 { le::bytes(&head, 71, 11) } else { le::bytes(&head, 43, 11) };
        return Probe { content: Content::Vfat, label: lab.and_then(label).filter(|l| l != "NO NAME"), uuid: None };
    }
    if at(0, b"hsqs") {
        return unknown(Content::Squashfs);
    }
    if region.read_prefix(0x8001, 5).is_some_and(|m| m == b"CD001") {
        return unknown(Content::Iso9660);
    }
    let zero = region.read_prefix(0, 65536).unwrap_or_default();
    if !zero.is_empty() && zero.iter().all(|&b| b == 0) {
        return unknown(Content::Empty);
    }
    unknown(Content::Unknown)
}

/// True if `sector0` is a FAT boot sector (jump instruction, a sane bytes-per-sector, and the
/// "FAT" file-system-type string of FAT12/16 or FAT32).
#[must_use]
pub fn is_fat_boot_sector(sector0: &[u8]) -> bool {
    let jump = matches!(sector0.first(), Some(0xEB | 0xE9));
    let bps = le::u16(sector0, 11).unwrap_or(0);
    let fat_str = sector0.get(54..57) == Some(b"FAT") || sector0.get(82..87) == Some(b"FAT32");
    jump && matches!(bps, 512 | 1024 | 2048 | 4096) && fat_str
}
