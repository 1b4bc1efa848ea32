//! LVM2 logical volumes, assembled read-only in userspace from the PVs found on the attached
//! disks: [`assemble`] reads each PV's label ([`label`]) and metadata areas ([`mda`]), parses the
//! VG metadata text ([`config`], [`vg`]) keeping the highest `seqno` of each VG, matches the VG's
//! PVs to devices by UUID, and gives every LV either a [`Region`] over an [`LvSource`] (linear,
//! striped and zero segments, across several PVs on several disks) or the reason it cannot be
//! read: a PV not attached, a segment type we do not assemble (thin, RAID, mirror, cache,
//! snapshot, VDO, writecache, integrity), a hidden sub-LV, a status we do not understand, or
//! damaged metadata.
//!
//! Nothing is activated and nothing is written: device-mapper is never involved.

pub mod config;
pub mod label;
pub mod mda;
pub mod source;
pub mod vg;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

pub use source::LvSource;

use crate::disk::{BlockSource, Region};
use crate::limits::{MAX_LVM_METADATA_TOTAL_BYTES, MAX_LVM_PV_CANDIDATES};

/// LVM counts PV, extent and stripe sizes in 512-byte sectors whatever the device's sector size.
pub const SECTOR: u64 = 512;

/// `INITIAL_CRC` of lvm2 `lib/misc/crc.h`: the start value of every label, mda_header and
/// metadata text checksum.
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

/// lvm2's `calc_crc`: the reflected CRC-32 (polynomial 0xEDB88320) started from `initial`, with
/// neither the usual pre- nor post-inversion. `crc32fast` inverts on the way in and out, so the
/// state is inverted around it. Public for the fuzz target, which forges valid areas.
#[must_use]
pub fn lvm_crc(initial: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!initial);
    h.update(data);
    !h.finalize()
}

/// One candidate physical volume: a partition or whole disk whose probe says lvm2-pv.
#[derive(Debug, Clone)]
pub struct PvCandidate {
    /// The device as reports name it ("/dev/sdf", "/dev/sdf p2").
    pub device: String,
    pub region: Region,
}

/// Everything LVM found on a set of disks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LvmReport {
    pub volume_groups: Vec<VgInfo>,
    pub volumes: Vec<LogicalVolume>,
    /// Damaged labels and metadata areas, PVs without a VG, conflicting copies.
    pub errors: Vec<String>,
}

/// One volume group.
#[derive(Debug, Clone, Serialize)]
pub struct VgInfo {
    pub name: String,
    pub uuid: String,
    pub seqno: u64,
    /// Bytes.
    pub extent_size: u64,
    pub pvs: Vec<PvInfo>,
    /// UUIDs of the PVs the metadata names that are not among the attached disks.
    pub missing_pvs: Vec<String>,
}

/// One PV of a VG.
#[derive(Debug, Clone, Serialize)]
pub struct PvInfo {
    pub uuid: String,
    /// The device holding it; `None` = missing.
    pub device: Option<String>,
}

/// One logical volume.
#[derive(Debug, Clone, Serialize)]
pub struct LogicalVolume {
    pub vg: String,
    pub name: String,
    pub uuid: String,
    /// Bytes.
    pub size: u64,
    /// The LV's bytes as a region that filesystem readers read like a partition, or why not.
    #[serde(rename = "error", serialize_with = "data_error", skip_serializing_if = "Result::is_ok")]
    pub data: Result<Region, String>,
}

fn data_error<S: serde::Serializer>(data: &Result<Region, String>, s: S) -> Result<S::Ok, S::Error> {
    match data {
        Ok(_) => s.serialize_none(),
        Err(e) => s.serialize_str(e),
    }
}

/// A PV with a valid label.
struct FoundPv {
    device: String,
    region: Region,
    label: label::PvLabel,
}

/// The PV UUID without its dashes: the label stores 32 bare characters, the text prints 38.
fn bare_uuid(u: &str) -> String {
    u.chars().filter(|&c| c != '-').collect()
}

/// Assemble every VG whose PVs are among `pvs` (several disks of one instance).
#[must_use]
pub fn assemble(pvs: Vec<PvCandidate>) -> LvmReport {
    let mut report = LvmReport::default();
    let found = read_labels(pvs, &mut report.errors);
    let vgs = read_metadata(&found, &mut report.errors);

    let by_uuid: HashMap<String, &FoundPv> = found.iter().map(|p| (bare_uuid(&p.label.uuid), p)).collect();
    let mut claimed = HashSet::new();
    for vg in vgs {
        report.errors.extend(vg.warnings.iter().cloned());
        // Each PV of the VG as a shared block source, or the reason it is absent.
        let pv_src: Vec<Result<Arc<dyn BlockSource>, String>> = vg
            .pvs
            .iter()
            .map(|p| {
                let bare = bare_uuid(&p.uuid);
                claimed.insert(bare.clone());
                match by_uuid.get(&bare) {
                    Some(f) => Ok(Arc::new(f.region.clone()) as Arc<dyn BlockSource>),
                    None => Err(format!("PV {} ({}) of VG {} is not among the attached disks", p.uuid, p.key, vg.name)),
                }
            })
            .collect();
        let info = VgInfo {
            name: vg.name.clone(),
            uuid: vg.uuid.clone(),
            seqno: vg.seqno,
            extent_size: vg.extent_size,
            pvs: vg
                .pvs
                .iter()
                .map(|p| PvInfo {
                    uuid: p.uuid.clone(),
                    device: by_uuid.get(&bare_uuid(&p.uuid)).map(|f| f.device.clone()),
                })
                .collect(),
            missing_pvs: vg
                .pvs
                .iter()
                .filter(|p| !by_uuid.contains_key(&bare_uuid(&p.uuid)))
                .map(|p| p.uuid.clone())
                .collect(),
        };
        for lv in &vg.lvs {
            let data = match &lv.layout {
                Err(why) => Err(why.clone()),
                Ok(segs) => lv_source(&vg, lv, segs, &pv_src, &found),
            };
            report.volumes.push(LogicalVolume {
                vg: vg.name.clone(),
                name: lv.name.clone(),
                uuid: lv.uuid.clone(),
                size: lv.size,
                data,
            });
        }
        report.volume_groups.push(info);
    }
    for f in &found {
        if !claimed.contains(&bare_uuid(&f.label.uuid)) {
            report.errors.push(format!(
                "{}: PV {} belongs to no VG found (an unused PV, or its VG's metadata is on a disk not attached)",
                f.device, f.label.uuid
            ));
        }
    }
    report
}

/// Labels of the candidates; a PV UUID seen twice (a cloned disk) keeps its first device.
fn read_labels(pvs: Vec<PvCandidate>, errors: &mut Vec<String>) -> Vec<FoundPv> {
    let total = pvs.len();
    let mut found: Vec<FoundPv> = Vec::new();
    for c in pvs.into_iter().take(MAX_LVM_PV_CANDIDATES) {
        match label::read(&c.region) {
            Ok(l) => {
                if let Some(first) = found.iter().find(|f| f.label.uuid == l.uuid) {
                    errors.push(format!(
                        "{}: PV {} is also on {}; using {} (a cloned disk?)",
                        c.device, l.uuid, first.device, first.device
                    ));
                } else {
                    found.push(FoundPv { device: c.device, region: c.region, label: l });
                }
            }
            Err(e) => errors.push(format!("{}: {e}", c.device)),
        }
    }
    if total > MAX_LVM_PV_CANDIDATES {
        errors.push(format!("{total} LVM PV candidates; only the first {MAX_LVM_PV_CANDIDATES} were read"));
    }
    found
}

/// The newest usable metadata of each VG, in the order the VGs were first met.
fn read_metadata(found: &[FoundPv], errors: &mut Vec<String>) -> Vec<vg::VgMeta> {
    let mut budget = MAX_LVM_METADATA_TOTAL_BYTES;
    let mut seen_texts = HashSet::new();
    let mut vgs: Vec<(vg::VgMeta, u32, String)> = Vec::new();
    for pv in found {
        for area in &pv.label.metadata_areas {
            let at = format!("{}: metadata area at byte {}", pv.device, area.offset);
            let text = match mda::read(&pv.region, *area, &mut budget) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    errors.push(format!("{at}: {e}"));
                    continue;
                }
            };
            // Each PV of a VG carries the same text: parse each distinct one once.
            if !seen_texts.insert((text.checksum, text.text.len())) {
                continue;
            }
            let parsed = config::parse(&text.text)
                .map_err(|e| e.to_string())
                .and_then(|tree| vg::from_config(&tree).map_err(|e| e.to_string()));
            let meta = match parsed {
                Ok(m) => m,
                Err(e) => {
                    errors.push(format!("{at}: {e}"));
                    continue;
                }
            };
            match vgs.iter_mut().find(|(v, _, _)| v.uuid == meta.uuid) {
                Some(slot) if meta.seqno > slot.0.seqno => *slot = (meta, text.checksum, at),
                Some((v, sum, from)) if meta.seqno == v.seqno && *sum != text.checksum => errors.push(format!(
                    "VG {}: {at} and {from} hold different texts with the same seqno {}; using {from}",
                    v.name, v.seqno
                )),
                Some(_) => {}
                None => vgs.push((meta, text.checksum, at)),
            }
        }
    }
    vgs.into_iter().map(|(v, _, _)| v).collect()
}

/// The LV's bytes over the PVs' regions, or the first reason a segment cannot be mapped.
fn lv_source(
    vg: &vg::VgMeta,
    lv: &vg::LvMeta,
    segs: &[vg::SegMeta],
    pv_src: &[Result<Arc<dyn BlockSource>, String>],
    found: &[FoundPv],
) -> Result<Region, String> {
    let mut out = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        let n = i + 1;
        let overflow = || format!("segment{n}: byte range overflows");
        let start = seg.start_extent.checked_mul(vg.extent_size).ok_or_else(overflow)?;
        let len = seg.extent_count.checked_mul(vg.extent_size).ok_or_else(overflow)?;
        let target = match &seg.kind {
            vg::SegKind::Zero => source::Target::Zero,
            vg::SegKind::Striped { stripe_size, areas } => {
                let area_len = len / areas.len().max(1) as u64;
                let mut regions = Vec::with_capacity(areas.len());
                for &(pv_i, pe) in areas {
                    let pv = vg.pvs.get(pv_i).ok_or_else(|| format!("segment{n}: PV index out of range"))?;
                    let src = pv_src.get(pv_i).ok_or_else(|| format!("segment{n}: PV index out of range"))?;
                    let src = src.as_ref().map_err(Clone::clone)?;
                    let off =
                        pe.checked_mul(vg.extent_size).and_then(|o| o.checked_add(pv.pe_start)).ok_or_else(overflow)?;
                    let region = Region::new(Arc::clone(src), off, area_len).map_err(|e| {
                        let dev = found
                            .iter()
                            .find(|f| bare_uuid(&f.label.uuid) == bare_uuid(&pv.uuid))
                            .map_or("?", |f| f.device.as_str());
                        format!("segment{n}: extents of {} on {dev}: {e}", pv.key)
                    })?;
                    regions.push(region);
                }
                if *stripe_size == 0 {
                    match regions.pop() {
                        Some(r) if regions.is_empty() => source::Target::Linear(r),
                        _ => return Err(format!("segment{n}: several areas without a stripe size")),
                    }
                } else {
                    source::Target::Striped { stripe_size: *stripe_size, areas: regions }
                }
            }
        };
        out.push(source::Segment { start, len, target });
    }
    let src = LvSource::new(format!("{}/{}", vg.name, lv.name), out)?;
    Ok(Region::whole(Arc::new(src)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvm_crc_is_crc32_without_the_inversions() {
        // CRC-32 of "123456789" is 0xCBF43926 with the usual !0 start and final inversion.
        assert_eq!(lvm_crc(!0, b"123456789"), !0xCBF4_3926);
        assert_eq!(lvm_crc(INITIAL_CRC, b""), INITIAL_CRC);
        assert_eq!(lvm_crc(lvm_crc(INITIAL_CRC, b"12345"), b"6789"), lvm_crc(INITIAL_CRC, b"123456789"));
    }

    #[test]
    fn an_unreadable_lv_serialises_its_reason_and_a_readable_one_none() {
        let lv = |data| LogicalVolume { vg: "v".into(), name: "l".into(), uuid: "u".into(), size: 512, data };
        let bad = serde_json::to_value(lv(Err("why".into()))).expect("json");
        assert_eq!(bad, serde_json::json!({"vg": "v", "name": "l", "uuid": "u", "size": 512, "error": "why"}));
        let region = Region::whole(Arc::new(crate::disk::MemDisk(vec![0; 512])));
        let good = serde_json::to_value(lv(Ok(region))).expect("json");
        assert_eq!(good, serde_json::json!({"vg": "v", "name": "l", "uuid": "u", "size": 512}));
        assert!(assemble(Vec::new()).volumes.is_empty());
    }
}
