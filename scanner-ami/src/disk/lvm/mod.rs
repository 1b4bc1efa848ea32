//! LVM2 logical volumes (interface placeholder until the reader lands): every candidate physical
//! volume is listed, no volume group is assembled yet.

use serde::Serialize;

use super::Region;

/// One candidate physical volume: a partition or whole disk whose probe says lvm2-pv.
#[derive(Debug, Clone)]
pub struct PvCandidate {
    /// The device (and partition) it was found on, for reports.
    pub device: String,
    pub region: Region,
}

/// A physical volume of a volume group.
#[derive(Debug, Clone, Serialize)]
pub struct PvInfo {
    pub uuid: String,
    /// Where it was found; `None` when it is not among the attached disks.
    pub device: Option<String>,
}

/// A volume group.
#[derive(Debug, Clone, Serialize)]
pub struct VgInfo {
    pub name: String,
    pub uuid: String,
    pub seqno: u64,
    pub extent_size: u64,
    pub pvs: Vec<PvInfo>,
    pub missing_pvs: Vec<String>,
}

/// A logical volume.
#[derive(Debug, Clone)]
pub struct LogicalVolume {
    pub vg: String,
    pub name: String,
    pub uuid: String,
    pub size: u64,
    /// The LV's bytes as a region that filesystem readers read like a partition, or why not.
    pub data: Result<Region, String>,
}

/// What [`assemble`] found.
#[derive(Debug, Clone, Default)]
pub struct LvmReport {
    pub volume_groups: Vec<VgInfo>,
    pub volumes: Vec<LogicalVolume>,
    pub errors: Vec<String>,
}

/// Assemble every volume group whose physical volumes are among `pvs`.
#[must_use]
pub fn assemble(pvs: Vec<PvCandidate>) -> LvmReport {
    LvmReport {
        errors: pvs
            .iter()
            .map(|p| format!("{}: LVM2 physical volume: logical volumes are not assembled yet", p.device))
            .collect(),
        ..LvmReport::default()
    }
}
