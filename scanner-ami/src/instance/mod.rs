//! One instance's disks scanned together, as the instance itself sees them: every disk's
//! partitions are probed, LVM2 volume groups are assembled across the disks ([`crate::disk::lvm`]),
//! the filesystem that holds the OS is found, and the other filesystems it mounts at boot (its
//! fstab and mount units, [`mounts`]) are mounted into it ([`crate::fs::mounted`]), so that the
//! inventory and the baseline see `/var`, `/usr` and `/home` where the instance has them.
//!
//! The result is one [`Report`] per disk: the disk that holds the root carries the inventory; a
//! disk whose filesystems were mounted into that root says so, per partition; a disk with an OS
//! root of its own that the instance does not mount is scanned as its own root. A mount whose
//! source is not among the attached disks is reported as missing, never guessed.

pub mod mounts;

use std::sync::Arc;
use std::time::Instant;

use crate::apps;
use crate::baseline;
use crate::disk::lvm::{self, PvCandidate};
use crate::disk::probe::{self, Content, Probe};
use crate::disk::{BlockSource, Region, table};
use crate::fs::RootFs;
use crate::fs::btrfs::{BtrfsFs, Subvol};
use crate::fs::ext4::Ext4Fs;
use crate::fs::mounted::{Mount, MountedFs};
use crate::fs::xfs::XfsFs;
use crate::inventory;
use crate::os;
use crate::report::{
    Agent, LogicalVolumeInfo, MountInfo, MountStatus, PartStatus, Partition, Report, SCHEMA, Source, Stats,
};
use crate::scan::ScanOptions;

use mounts::{MountEntry, SubvolOption};

/// One disk of the instance.
#[derive(Debug)]
pub struct DiskInput {
    /// The device name used in reports (`/dev/sdf`, or the image path).
    pub name: String,
    pub source: Arc<dyn BlockSource>,
    /// What the report says was scanned.
    pub report_source: Source,
}

/// A region that may hold a filesystem: a partition (or whole disk) or a logical volume.
#[derive(Debug)]
struct Vol {
    /// `/dev/sdf partition 2`, `LV vg0/var`.
    label: String,
    /// The disk whose report lists it (an LV: the disk of its volume group's first PV).
    disk: usize,
    /// The partition index on that disk (none for an LV).
    partition: Option<u32>,
    /// `vg/lv` for a logical volume.
    lv: Option<(String, String)>,
    region: Region,
    probe: Probe,
    part_uuid: Option<String>,
    part_label: Option<String>,
}

/// Open the filesystem of `vol` (its default view; a btrfs subvolume when asked).
/// An error is the status to report and why.
fn open_fs(vol: &Vol, subvol: Option<&SubvolOption>) -> Result<Box<dyn RootFs>, (PartStatus, String)> {
    let c = vol.probe.content;
    let unreadable = |e: crate::fs::FsError| (PartStatus::Error, format!("{} filesystem unreadable: {e}", c.name()));
    match c {
        Content::Ext2 | Content::Ext3 | Content::Ext4 => {
            if subvol.is_some() {
                return Err((PartStatus::Error, format!("{}: subvol= on an {} filesystem", vol.label, c.name())));
            }
            Ext4Fs::load(vol.region.clone()).map(|fs| Box::new(fs) as Box<dyn RootFs>).map_err(unreadable)
        }
        Content::Xfs => {
            if subvol.is_some() {
                return Err((PartStatus::Error, format!("{}: subvol= on an XFS filesystem", vol.label)));
            }
            XfsFs::load(vol.region.clone()).map(|fs| Box::new(fs) as Box<dyn RootFs>).map_err(unreadable)
        }
        Content::Btrfs => {
            let sel = match subvol {
                None => Subvol::Default,
                Some(SubvolOption::Path(p)) => Subvol::Path(p.clone()),
                Some(SubvolOption::Id(id)) => Subvol::Id(*id),
            };
            let fs = BtrfsFs::load(vol.region.clone(), sel).map_err(unreadable)?;
            if fs.log_tree_pending() {
                // What we read then equals the kernel's `rescue=nologreplay` view.
                tracing::warn!(volume = %vol.label, "btrfs log tree not replayed: changes fsync'ed after the last commit are not seen");
            }
            Ok(Box::new(fs))
        }
        Content::Lvm2Pv
        | Content::Luks
        | Content::Swap
        | Content::Vfat
        | Content::Ntfs
        | Content::Squashfs
        | Content::Iso9660
        | Content::Empty
        | Content::Unknown => Err(not_read_reason(c)),
    }
}

/// True for the filesystems we read in userspace.
fn readable(c: Content) -> bool {
    matches!(c, Content::Ext2 | Content::Ext3 | Content::Ext4 | Content::Xfs | Content::Btrfs)
}

/// Why a region with this content is not read.
fn not_read_reason(c: Content) -> (PartStatus, String) {
    match c {
        Content::Lvm2Pv => (PartStatus::Error, "LVM2 physical volume that belongs to no readable volume group".into()),
        Content::Luks => (PartStatus::Unsupported, "LUKS-encrypted volume: encrypted, no key; not read".into()),
        Content::Ntfs => (PartStatus::Unsupported, "NTFS: Windows volumes are not inventoried".into()),
        Content::Squashfs | Content::Iso9660 => {
            (PartStatus::Unsupported, format!("{}: no reader; not scanned", c.name()))
        }
        Content::Vfat => (PartStatus::Skipped, "vfat (EFI/boot): holds no OS packages; not read".into()),
        Content::Swap => (PartStatus::Skipped, "swap space: no files".into()),
        Content::Empty => (PartStatus::Skipped, "no filesystem: the first 64 KiB are zero".into()),
        Content::Unknown => (PartStatus::Skipped, "no known filesystem signature".into()),
        Content::Ext2 | Content::Ext3 | Content::Ext4 | Content::Xfs | Content::Btrfs => {
            (PartStatus::Read, String::new())
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Which volume a mount's source names, among `vols`.
fn find_source(source: &mounts::Source, vols: &[Vol]) -> Result<usize, String> {
    use mounts::Source as S;
    let matches: Vec<usize> = vols
        .iter()
        .enumerate()
        .filter(|(_, v)| match source {
            S::Uuid(u) => v.probe.uuid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(u)),
            S::Label(l) => v.probe.label.as_deref() == Some(l.as_str()),
            S::PartUuid(u) => v.part_uuid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(u)),
            S::PartLabel(l) => v.part_label.as_deref() == Some(l.as_str()),
            S::Lv(vg, lv) => v.lv.as_ref().is_some_and(|(a, b)| a == vg && b == lv),
            S::Device(_) => false,
        })
        .map(|(i, _)| i)
        .collect();
    match (source, matches.as_slice()) {
        (_, [one]) => Ok(*one),
        (S::Device(d), _) => Err(format!(
            "named by the kernel device name {d}, which the scanner cannot map to an attached disk (the scanner sees the disks under its own names)"
        )),
        (_, []) => Err("not among the attached disks".into()),
        (_, many) => Err(format!("{} attached filesystems match it; none is guessed", many.len())),
    }
}

/// A root found on a disk: its volume, the assembled filesystem and what became of its mounts.
struct InstanceRoot {
    vol: usize,
    fs: Box<dyn RootFs>,
    mounts: Vec<MountInfo>,
}

/// What became of each region.
#[derive(Debug, Clone)]
struct VolState {
    status: PartStatus,
    reason: Option<String>,
    os: Option<os::OsInfo>,
}

/// Scan the disks of one instance together; one report per disk, in the order given.
#[must_use]
pub fn scan_instance(disks: Vec<DiskInput>, started: Instant, opts: ScanOptions) -> Vec<Report> {
    let mut tables = Vec::new();
    let mut partitions: Vec<Vec<Partition>> = Vec::new();
    let mut errors: Vec<Vec<String>> = Vec::new();
    let mut vols: Vec<Vol> = Vec::new();
    // (disk, index into partitions[disk]) of each volume that is a partition.
    let mut vol_part: Vec<Option<(usize, usize)>> = Vec::new();
    let mut pvs = Vec::new();
    let mut pv_part: Vec<(String, usize, usize)> = Vec::new();

    for (d, disk) in disks.iter().enumerate() {
        let (info, parts) = table::read(Arc::clone(&disk.source));
        tracing::info!(disk = %disk.name, scheme = ?info.scheme, partitions = parts.len(), "partition table read");
        tables.push(info);
        let mut outs = Vec::new();
        for part in parts {
            let mut out = Partition {
                index: part.index,
                start: part.start,
                size: part.size,
                table_type: part.table_type.clone(),
                type_name: part.type_name,
                name: part.name.clone(),
                filesystem: None,
                status: PartStatus::Error,
                reason: None,
                os: None,
            };
            let label =
                if part.index == 0 { disk.name.clone() } else { format!("{} partition {}", disk.name, part.index) };
            match part.region {
                Err(e) => out.reason = Some(e),
                Ok(region) => {
                    let probed = probe::probe(&region);
                    let content = probed.content;
                    out.filesystem = Some(probed.clone());
                    if content == Content::Lvm2Pv {
                        pv_part.push((label.clone(), d, outs.len()));
                        pvs.push(PvCandidate { device: label, region });
                        out.status = PartStatus::Read;
                    } else if readable(content) {
                        vol_part.push(Some((d, outs.len())));
                        vols.push(Vol {
                            label,
                            disk: d,
                            partition: Some(part.index),
                            lv: None,
                            region,
                            probe: probed,
                            part_uuid: part.part_uuid.clone(),
                            part_label: part.name.clone(),
                        });
                    } else {
                        let (status, reason) = not_read_reason(content);
                        out.status = status;
                        out.reason = Some(reason);
                    }
                }
            }
            outs.push(out);
        }
        partitions.push(outs);
        errors.push(Vec::new());
    }

    // LVM: volume groups over all disks of the instance.
    let mut lv_infos = Vec::new();
    let mut instance_errors = Vec::new();
    if !pvs.is_empty() {
        let report = lvm::assemble(pvs);
        instance_errors.extend(report.errors.iter().cloned());
        for vg in &report.volume_groups {
            let vg_pvs: Vec<&str> = vg.pvs.iter().filter_map(|p| p.device.as_deref()).collect();
            for (label, d, i) in &pv_part {
                if vg_pvs.contains(&label.as_str())
                    && let Some(p) = partitions.get_mut(*d).and_then(|ps| ps.get_mut(*i))
                {
                    p.status = PartStatus::Assembled;
                    p.reason = Some(format!("LVM2 physical volume of volume group {}", vg.name));
                }
            }
        }
        for (label, d, i) in &pv_part {
            if let Some(p) = partitions.get_mut(*d).and_then(|ps| ps.get_mut(*i))
                && p.status != PartStatus::Assembled
            {
                p.status = PartStatus::Error;
                p.reason = Some(format!("{label}: LVM2 physical volume that belongs to no readable volume group"));
            }
        }
        for lv in report.volumes {
            let first_disk = report
                .volume_groups
                .iter()
                .find(|vg| vg.name == lv.vg)
                .and_then(|vg| vg.pvs.iter().find_map(|p| p.device.clone()))
                .and_then(|dev| pv_part.iter().find(|(l, _, _)| *l == dev).map(|(_, d, _)| *d))
                .unwrap_or(0);
            let mut info = LogicalVolumeInfo {
                vg: lv.vg.clone(),
                name: lv.name.clone(),
                uuid: lv.uuid.clone(),
                size: lv.size,
                filesystem: None,
                status: PartStatus::Error,
                reason: None,
                os: None,
            };
            match lv.data {
                Err(reason) => {
                    info.status = PartStatus::Unsupported;
                    info.reason = Some(reason);
                }
                Ok(region) => {
                    let probed = probe::probe(&region);
                    info.filesystem = Some(probed.clone());
                    if readable(probed.content) {
                        vol_part.push(None);
                        vols.push(Vol {
                            label: format!("LV {}/{}", lv.vg, lv.name),
                            disk: first_disk,
                            partition: None,
                            lv: Some((lv.vg.clone(), lv.name.clone())),
                            region,
                            probe: probed,
                            part_uuid: None,
                            part_label: None,
                        });
                    } else {
                        let (status, reason) = not_read_reason(probed.content);
                        info.status = status;
                        info.reason = Some(reason);
                    }
                }
            }
            lv_infos.push((first_disk, info));
        }
    }

    // Open every filesystem and look for OS roots.
    let mut opened: Vec<Option<Box<dyn RootFs>>> = Vec::new();
    let mut states: Vec<VolState> = Vec::new();
    for v in &vols {
        match open_fs(v, None) {
            Ok(fs) => {
                let found = os::detect(fs.as_ref());
                states.push(VolState { status: PartStatus::Read, reason: None, os: found });
                opened.push(Some(fs));
            }
            Err((status, reason)) => {
                states.push(VolState { status, reason: Some(reason), os: None });
                opened.push(None);
            }
        }
    }

    // The instance's root: the first volume with an OS (disk order, then partition order); the
    // others with an OS that it does not mount are roots of their own.
    let mut reports_root: Vec<Option<InstanceRoot>> = (0..disks.len()).map(|_| None).collect();
    let mut assembled_into: Vec<Option<String>> = vec![None; disks.len()];
    let mut claimed = vec![false; vols.len()];
    let order: Vec<usize> = (0..vols.len()).filter(|&i| states.get(i).is_some_and(|s| s.os.is_some())).collect();
    for root in order {
        if claimed.get(root).copied().unwrap_or(true) {
            continue;
        }
        let Some(root_fs) = opened.get_mut(root).and_then(Option::take) else { continue };
        let Some(root_vol) = vols.get(root) else { continue };
        if let Some(c) = claimed.get_mut(root) {
            *c = true;
        }
        let (entries, mount_errors) = mounts::read(root_fs.as_ref());
        if let Some(e) = errors.get_mut(root_vol.disk) {
            e.extend(mount_errors);
        }
        let mut infos = Vec::new();
        let mut mounted: Vec<Mount> = Vec::new();
        for entry in entries {
            let mut info = MountInfo {
                target: entry.target.clone(),
                spec: entry.spec.clone(),
                fstype: entry.fstype.clone(),
                origin: entry.origin.clone(),
                status: MountStatus::Skipped,
                volume: None,
                reason: entry.skip.clone(),
            };
            if entry.skip.is_none() {
                assemble_one(&entry, &vols, &mut opened, &mut claimed, &mut states, &mut mounted, &mut info);
                if info.status == MountStatus::Assembled
                    && let Some(v) = info.volume.as_ref().and_then(|l| vols.iter().find(|v| &v.label == l))
                    && v.disk != root_vol.disk
                    && let Some(slot) = assembled_into.get_mut(v.disk)
                {
                    *slot = Some(root_vol.label.clone());
                }
            }
            infos.push(info);
        }
        if let Some(s) = states.get_mut(root) {
            s.status = PartStatus::Root;
        }
        let fs: Box<dyn RootFs> = if mounted.is_empty() { root_fs } else { Box::new(MountedFs::new(root_fs, mounted)) };
        if let Some(slot) = reports_root.get_mut(root_vol.disk)
            && slot.is_none()
        {
            *slot = Some(InstanceRoot { vol: root, fs, mounts: infos });
        } else if let Some(s) = states.get_mut(root) {
            // A second root on the same disk: listed, not inventoried (as before: first root wins).
            s.status = PartStatus::Read;
        }
    }

    // Write each volume's state back into its partition or LV entry.
    for (i, v) in vols.iter().enumerate() {
        let Some(state) = states.get(i) else { continue };
        match vol_part.get(i).copied().flatten() {
            Some((d, p)) => {
                if let Some(out) = partitions.get_mut(d).and_then(|ps| ps.get_mut(p)) {
                    out.status = state.status;
                    out.reason.clone_from(&state.reason);
                    out.os.clone_from(&state.os);
                }
            }
            None => {
                if let Some((_, info)) = lv_infos
                    .iter_mut()
                    .find(|(_, info)| v.lv.as_ref().is_some_and(|(vg, name)| *vg == info.vg && *name == info.name))
                {
                    info.status = state.status;
                    info.reason.clone_from(&state.reason);
                    info.os.clone_from(&state.os);
                }
            }
        }
    }

    let mut reports = Vec::new();
    for (d, disk) in disks.into_iter().enumerate() {
        let parts = partitions.get(d).cloned().unwrap_or_default();
        let mut errs = errors.get(d).cloned().unwrap_or_default();
        for p in &parts {
            if p.status == PartStatus::Error {
                errs.push(format!("partition {}: {}", p.index, p.reason.as_deref().unwrap_or("unreadable")));
            }
        }
        let lvs: Vec<LogicalVolumeInfo> =
            lv_infos.iter().filter(|(ld, _)| *ld == d).map(|(_, info)| info.clone()).collect();
        for lv in &lvs {
            if lv.status == PartStatus::Error {
                errs.push(format!("LV {}/{}: {}", lv.vg, lv.name, lv.reason.as_deref().unwrap_or("unreadable")));
            }
        }
        if d == 0 {
            errs.extend(instance_errors.iter().cloned());
        }
        let root = reports_root.get_mut(d).and_then(Option::take);
        let (root_partition, root_volume, os_info, inv, applications, baseline, mounts) = match root {
            Some(InstanceRoot { vol: vi, fs, mounts }) => {
                let v = vols.get(vi);
                let os_info = states.get(vi).and_then(|s| s.os.clone());
                let inv = inventory::collect(fs.as_ref());
                let applications = (!opts.no_apps).then(|| apps::collect(fs.as_ref()));
                let baseline = opts.baseline.then(|| baseline::evaluate(fs.as_ref(), os_info.as_ref(), &inv.packages));
                for m in &mounts {
                    if matches!(m.status, MountStatus::Missing | MountStatus::Error) {
                        errs.push(format!(
                            "{} ({}, {}): {}",
                            m.target,
                            m.spec,
                            m.origin,
                            m.reason.as_deref().unwrap_or("not assembled")
                        ));
                    }
                }
                (v.and_then(|v| v.partition), v.map(|v| v.label.clone()), os_info, inv, applications, baseline, mounts)
            }
            None => {
                if assembled_into.get(d).is_none_or(Option::is_none) {
                    errs.push("no partition holds a readable OS root (no os-release or release file found)".into());
                }
                (None, None, None, inventory::Inventory::default(), None, None, Vec::new())
            }
        };
        errs.extend(inv.errors());
        errs.extend(apps::incomplete(applications.as_ref()));
        reports.push(Report {
            schema: SCHEMA,
            agent: Agent::current(),
            scanned_at: now(),
            source: disk.report_source,
            partition_table: tables.get(d).cloned(),
            partitions: parts,
            root_partition,
            root_volume,
            assembled_into: assembled_into.get(d).cloned().flatten(),
            logical_volumes: lvs,
            mounts,
            os: os_info,
            databases: inv.databases,
            packages: inv.packages,
            applications,
            errors: errs,
            baseline,
            stats: Stats {
                bytes_read: None,
                read_calls: None,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
        });
    }
    reports
}

/// Mount one fstab entry: find its volume, open it (a btrfs subvolume gets its own view), and
/// record the outcome in `info`.
fn assemble_one(
    entry: &MountEntry,
    vols: &[Vol],
    opened: &mut [Option<Box<dyn RootFs>>],
    claimed: &mut [bool],
    states: &mut [VolState],
    mounted: &mut Vec<Mount>,
    info: &mut MountInfo,
) {
    let Some(source) = entry.source.as_ref() else {
        info.status = MountStatus::Skipped;
        return;
    };
    let vi = match find_source(source, vols) {
        Ok(i) => i,
        Err(reason) => {
            info.status = MountStatus::Missing;
            info.reason = Some(reason);
            return;
        }
    };
    let Some(vol) = vols.get(vi) else { return };
    info.volume = Some(vol.label.clone());
    let subvol = entry.subvol();
    // A btrfs subvolume, or a filesystem that is already the root or mounted elsewhere: a fresh
    // view of the same volume.
    let fs = if subvol.is_some() || claimed.get(vi).copied().unwrap_or(true) {
        open_fs(vol, subvol.as_ref())
    } else {
        opened.get_mut(vi).and_then(Option::take).ok_or_else(|| {
            let s = states.get(vi);
            (
                s.map_or(PartStatus::Error, |s| s.status),
                s.and_then(|s| s.reason.clone()).unwrap_or_else(|| "filesystem unreadable".into()),
            )
        })
    };
    match fs {
        Ok(fs) => {
            if let Some(c) = claimed.get_mut(vi) {
                *c = true;
            }
            if let Some(s) = states.get_mut(vi)
                && s.status != PartStatus::Root
            {
                s.status = PartStatus::Assembled;
                s.reason = Some(format!("mounted at {}", entry.target));
            }
            info.status = MountStatus::Assembled;
            info.reason = None;
            mounted.push(Mount { target: entry.target.clone(), fs });
        }
        Err((status, reason)) => {
            info.status = if status == PartStatus::Unsupported { MountStatus::Unsupported } else { MountStatus::Error };
            info.reason = Some(reason);
        }
    }
}
