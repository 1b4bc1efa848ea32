//! Partition-table detection: decides whether a disk carries a GPT, an MBR or no table at all
//! (a bare filesystem), and lists its partitions as bounded [`Region`]s.

use std::sync::Arc;

use serde::Serialize;

use super::{BlockSource, Region, gpt, le, mbr, probe};

/// The partitioning scheme found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Gpt,
    Mbr,
    /// No partition table: the whole disk is one filesystem (or nothing recognisable).
    None,
}

/// The partition table as reported.
#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    pub scheme: Scheme,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<gpt::HeaderCopy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_guid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One partition (or the whole disk when there is no table).
#[derive(Debug, Clone)]
pub struct Part {
    pub index: u32,
    pub start: u64,
    pub size: u64,
    /// The table's type: a GPT type GUID or an MBR type byte (`0x83`).
    pub table_type: Option<String>,
    pub type_name: Option<&'static str>,
    pub name: Option<String>,
    /// The partition's own id as `/dev/disk/by-partuuid` and fstab's `PARTUUID=` name it: the GPT
    /// entry's unique GUID, or for MBR `<disk signature>-<partition number>` (`0a1b2c3d-01`).
    pub part_uuid: Option<String>,
    /// The readable window, or why the partition cannot be read (e.g. it lies past the disk end).
    pub region: Result<Region, String>,
}

/// Read the partition table of `disk`.
#[must_use]
pub fn read(disk: Arc<dyn BlockSource>) -> (TableInfo, Vec<Part>) {
    let whole = Region::whole(Arc::clone(&disk));
    let sector0 = whole.read_prefix(0, 512).unwrap_or_default();
    let mut warnings = Vec::new();

    if gpt::has_signature(&whole) || mbr::is_protective(&sector0) {
        match gpt::read(&whole) {
            Ok(g) => {
                let parts = g
                    .entries
                    .iter()
                    .map(|e| {
                        let start = e.first_lba.saturating_mul(g.sector_size);
                        let size =
                            e.last_lba.saturating_sub(e.first_lba).saturating_add(1).saturating_mul(g.sector_size);
                        Part {
                            index: e.index,
                            start,
                            size,
                            table_type: Some(e.type_guid.clone()),
                            type_name: gpt::type_name(&e.type_guid),
                            name: (!e.name.is_empty()).then(|| e.name.clone()),
                            part_uuid: Some(e.unique_guid.to_ascii_lowercase()),
                            region: Region::new(Arc::clone(&disk), start, size).map_err(|err| err.to_string()),
                        }
                    })
                    .collect();
                let info = TableInfo {
                    scheme: Scheme::Gpt,
                    sector_size: Some(g.sector_size),
                    header: Some(g.header),
                    disk_guid: Some(g.disk_guid),
                    warnings: g.warnings,
                };
                return (info, parts);
            }
            Err(e) => warnings.push(format!("{e}; trying the other schemes")),
        }
    }
    let bare = probe::is_fat_boot_sector(&sector0) || sector0.get(3..11) == Some(b"NTFS    ");
    if !bare && mbr::looks_like_mbr(&sector0) {
        // The MBR disk signature (bytes 440..444, little-endian) names its partitions for PARTUUID=.
        let signature = le::u32(&sector0, 440).filter(|&s| s != 0);
        match mbr::read(&whole) {
            Ok(m) => {
                let parts = m
                    .entries
                    .iter()
                    .map(|e| {
                        let start = e.start_lba.saturating_mul(512);
                        let size = e.sectors.saturating_mul(512);
                        Part {
                            index: e.index,
                            start,
                            size,
                            table_type: Some(format!("0x{:02x}", e.type_byte)),
                            type_name: mbr::type_name(e.type_byte),
                            name: None,
                            part_uuid: signature.map(|sig| format!("{sig:08x}-{:02x}", e.index)),
                            region: Region::new(Arc::clone(&disk), start, size).map_err(|err| err.to_string()),
                        }
                    })
                    .collect();
                warnings.extend(m.warnings);
                return (
                    TableInfo { scheme: Scheme::Mbr, sector_size: Some(512), header: None, disk_guid: None, warnings },
                    parts,
                );
            }
            Err(e) => warnings.push(format!("MBR: {e}")),
        }
    }
    let part = Part {
        index: 0,
        start: 0,
        size: disk.len(),
        table_type: None,
        type_name: None,
        name: None,
        part_uuid: None,
        region: Ok(whole),
    };
    (TableInfo { scheme: Scheme::None, sector_size: None, header: None, disk_guid: None, warnings }, vec![part])
}
