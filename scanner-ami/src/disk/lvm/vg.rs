//! The volume group as its metadata text describes it (lvm2 `lib/format_text/import_vsn1.c` and
//! the segment types' `text_import`): name, UUID, seqno, extent size, the physical volumes with
//! their first extent and extent count, and each logical volume with its segments reduced to
//! what we can read (linear and striped areas on PVs, zero segments) or the reason we cannot.
//!
//! Nothing here touches a disk: the PVs are matched to devices, and the extents to bytes, by
//! the assembly in the parent module. Every number is checked (extent counts that overflow,
//! stripes that point past a PV, segments that do not tile the LV) and a damaged LV gets a reason
//! while the others stay usable.

use std::collections::{HashMap, HashSet};

use super::config::{Section, Value};
use crate::limits::{MAX_LVM_SEGMENTS_PER_LV, MAX_LVM_STRIPES};

/// LV status strings that change nothing about reading the LV's bytes (lvm2 `flags.c`).
const HARMLESS_LV_STATUS: &[&str] = &["READ", "WRITE", "VISIBLE", "FIXED_MINOR"];
/// LV `flags` strings (lvm2 `COMPATIBLE_FLAG`s) that change nothing about reading.
const HARMLESS_LV_FLAGS: &[&str] = &["ACTIVATION_SKIP", "ERROR_WHEN_FULL", "WRITE_LOCKED"];
/// VG status strings we know (lvm2 `flags.c`); all of them leave the LVs readable.
const KNOWN_VG_STATUS: &[&str] =
    &["READ", "WRITE", "RESIZEABLE", "EXPORTED", "CLUSTERED", "SHARED", "PVMOVE", "PARTIAL"];

/// A VG-level defect: the whole text is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VgError {
    #[error("metadata text has {0} top-level sections, expected exactly one (the VG)")]
    TopLevel(usize),
    #[error("VG {vg}: {what}")]
    Field { vg: String, what: String },
}

/// One PV of the VG, as the metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvMeta {
    /// The section name (`pv0`), which segments use to refer to the PV.
    pub key: String,
    pub uuid: String,
    /// First extent, in bytes from the start of the PV.
    pub pe_start: u64,
    pub pe_count: u64,
}

/// What a segment maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegKind {
    /// `striped` (one stripe: linear): `stripe_size` bytes per chunk (0 when linear) and one area
    /// per stripe: (index into [`VgMeta::pvs`], first physical extent). Each area holds
    /// `extent_count / stripes` extents.
    Striped { stripe_size: u64, areas: Vec<(usize, u64)> },
    /// `zero`: reads as zeros.
    Zero,
}

/// One segment of an LV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegMeta {
    pub start_extent: u64,
    pub extent_count: u64,
    pub kind: SegKind,
}

/// One LV as the metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvMeta {
    pub name: String,
    pub uuid: String,
    /// Sum of the segments' extent counts times the extent size, in bytes (0 if unknown).
    pub size: u64,
    /// The segments in LV order, or why the LV cannot be read.
    pub layout: Result<Vec<SegMeta>, String>,
}

/// The VG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgMeta {
    pub name: String,
    pub uuid: String,
    pub seqno: u64,
    /// Extent size in bytes.
    pub extent_size: u64,
    pub pvs: Vec<PvMeta>,
    pub lvs: Vec<LvMeta>,
    /// Problems with single PV entries (the LVs that use them fail).
    pub warnings: Vec<String>,
}

/// Interpret the parsed text of one metadata area.
pub fn from_config(top: &Section) -> Result<VgMeta, VgError> {
    let sections: Vec<(&str, &Section)> = top.sections().collect();
    let [(name, vg)] = sections.as_slice() else { return Err(VgError::TopLevel(sections.len())) };
    let name = (*name).to_owned();
    let field = |what: String| VgError::Field { vg: name.clone(), what };
    let uuid = vg.str("id").ok_or_else(|| field("no id".into()))?.to_owned();
    let seqno = uint(vg, "seqno").map_err(&field)?;
    let extent_sectors = uint(vg, "extent_size").map_err(&field)?;
    let extent_size = sectors_to_bytes(extent_sectors)
        .filter(|&b| b > 0)
        .ok_or_else(|| field(format!("extent_size {extent_sectors} is not a usable number of sectors")))?;
    let vg_block = vg_status_problem(vg, &name);

    let pv_section = vg.section("physical_volumes").ok_or_else(|| field("no physical_volumes section".into()))?;
    let mut pvs = Vec::new();
    let mut warnings = Vec::new();
    let mut broken_pvs = HashMap::new();
    for (key, s) in pv_section.sections() {
        match pv_meta(key, s) {
            Ok(pv) => pvs.push(pv),
            Err(e) => {
                warnings.push(format!("VG {name}: PV {key}: {e}"));
                broken_pvs.insert(key.to_owned(), e);
            }
        }
    }
    let pv_index: HashMap<&str, usize> = pvs.iter().enumerate().map(|(i, p)| (p.key.as_str(), i)).collect();

    let lv_sections: Vec<(&str, &Section)> =
        vg.section("logical_volumes").map(|s| s.sections().collect()).unwrap_or_default();
    let lv_names: HashSet<&str> = lv_sections.iter().map(|(n, _)| *n).collect();
    let roles = Roles::find(&lv_sections, &lv_names);
    let ctx =
        Ctx { vg: &name, extent_size, pvs: &pvs, pv_index: &pv_index, broken_pvs: &broken_pvs, lv_names: &lv_names };
    let lvs = lv_sections
        .iter()
        .map(|(lv_name, s)| {
            let size = lv_size(s, extent_size);
            let layout = match &vg_block {
                Some(why) => Err(why.clone()),
                None => lv_layout(lv_name, s, &ctx, &roles),
            };
            LvMeta { name: (*lv_name).to_owned(), uuid: s.str("id").unwrap_or_default().to_owned(), size, layout }
        })
        .collect();
    Ok(VgMeta { name, uuid, seqno, extent_size, pvs, lvs, warnings })
}

/// A non-negative integer field.
fn uint(s: &Section, key: &str) -> Result<u64, String> {
    let v = s.int(key).ok_or_else(|| format!("no integer {key}"))?;
    u64::try_from(v).map_err(|_| format!("{key} = {v} is negative"))
}

fn sectors_to_bytes(sectors: u64) -> Option<u64> {
    sectors.checked_mul(super::SECTOR)
}

/// The string elements of an array field; `None` if a non-string is in it.
fn strings<'a>(s: &'a Section, key: &str) -> Option<Vec<&'a str>> {
    s.array(key)?
        .iter()
        .map(|v| match v {
            Value::Str(x) => Some(x.as_str()),
            _ => None,
        })
        .collect()
}

fn vg_status_problem(vg: &Section, name: &str) -> Option<String> {
    let Some(status) = strings(vg, "status") else {
        return Some(format!("VG {name} has no readable status list"));
    };
    if let Some(unknown) = status.iter().find(|s| !KNOWN_VG_STATUS.contains(s)) {
        return Some(format!("VG {name} has the unknown status flag {unknown:?}; not read"));
    }
    if !status.contains(&"READ") {
        return Some(format!("VG {name} status lacks READ"));
    }
    None
}

fn pv_meta(key: &str, s: &Section) -> Result<PvMeta, String> {
    let uuid = s.str("id").ok_or("no id")?.to_owned();
    let pe_start_sectors = uint(s, "pe_start")?;
    let pe_start =
        sectors_to_bytes(pe_start_sectors).ok_or_else(|| format!("pe_start {pe_start_sectors} overflows"))?;
    let pe_count = uint(s, "pe_count")?;
    Ok(PvMeta { key: key.to_owned(), uuid, pe_start, pe_count })
}

/// LV size: the segments' extent counts summed, times the extent size (0 when not computable).
fn lv_size(lv: &Section, extent_size: u64) -> u64 {
    let mut extents: u64 = 0;
    for (key, seg) in lv.sections() {
        if key.starts_with("segment") {
            let Ok(n) = uint(seg, "extent_count") else { return 0 };
            let Some(sum) = extents.checked_add(n) else { return 0 };
            extents = sum;
        }
    }
    extents.checked_mul(extent_size).unwrap_or(0)
}

/// How LVs use each other: which LV refers to which (a thin pool to its `_tdata`, a RAID LV to
/// its `_rimage_N`...), and the snapshot roles that make an LV's own bytes misleading.
struct Roles<'a> {
    /// LV name -> the first LV whose segments name it.
    parent: HashMap<&'a str, &'a str>,
    /// Copy-on-write stores of snapshots: LV name -> the origin's name.
    cow_of: HashMap<&'a str, &'a str>,
    /// Origins into which a snapshot is being merged.
    merging_into: HashSet<&'a str>,
}

impl<'a> Roles<'a> {
    fn find(lvs: &[(&'a str, &'a Section)], names: &HashSet<&'a str>) -> Self {
        let mut r = Roles { parent: HashMap::new(), cow_of: HashMap::new(), merging_into: HashSet::new() };
        for (lv, s) in lvs {
            for (key, seg) in s.sections() {
                if !key.starts_with("segment") {
                    continue;
                }
                for (k, node) in &seg.entries {
                    if k == "type" {
                        continue;
                    }
                    let values = match node {
                        super::config::Node::Value(v) => std::slice::from_ref(v),
                        super::config::Node::Array(a) => a.as_slice(),
                        super::config::Node::Section(_) => &[],
                    };
                    for v in values {
                        if let Value::Str(other) = v
                            && let Some(other) = names.get(other.as_str())
                            && other != lv
                        {
                            r.parent.entry(other).or_insert(lv);
                        }
                    }
                }
                if seg.str("type") == Some("snapshot") {
                    let origin = seg.str("origin").and_then(|o| names.get(o).copied());
                    if let Some(cow) = seg.str("cow_store").and_then(|c| names.get(c)) {
                        r.cow_of.insert(cow, origin.unwrap_or("?"));
                    }
                    if let Some(cow) = seg.str("merging_store").and_then(|c| names.get(c)) {
                        r.cow_of.insert(cow, origin.unwrap_or("?"));
                        if let Some(o) = origin {
                            r.merging_into.insert(o);
                        }
                    }
                }
            }
        }
        r
    }
}

struct Ctx<'a> {
    vg: &'a str,
    extent_size: u64,
    pvs: &'a [PvMeta],
    pv_index: &'a HashMap<&'a str, usize>,
    broken_pvs: &'a HashMap<String, String>,
    lv_names: &'a HashSet<&'a str>,
}

/// The segments of an LV we can read, or why not.
fn lv_layout(name: &str, lv: &Section, ctx: &Ctx<'_>, roles: &Roles<'_>) -> Result<Vec<SegMeta>, String> {
    let status = strings(lv, "status").ok_or("no readable status list")?;
    for s in &status {
        match *s {
            s if HARMLESS_LV_STATUS.contains(&s) => {}
            "PVMOVE" => return Err("a pvmove LV (data being moved between PVs); not read".into()),
            "LOCKED" => return Err("locked by an ongoing pvmove; its extents are in flux; not read".into()),
            other => return Err(format!("status flag {other:?} is not understood; not read")),
        }
    }
    // `flags` is optional (lvm2 writes `flags = []`).
    if lv.get("flags").is_some() {
        let flags = strings(lv, "flags").ok_or("flags is not a list of strings")?;
        if let Some(f) = flags.iter().find(|f| !HARMLESS_LV_FLAGS.contains(f)) {
            return Err(format!("flag {f:?} is not understood; not read"));
        }
    }
    if !status.contains(&"READ") {
        return Err("status lacks READ; not read".into());
    }

    let count = uint(lv, "segment_count")?;
    if count == 0 {
        return Err("segment_count is 0".into());
    }
    if count > MAX_LVM_SEGMENTS_PER_LV as u64 {
        return Err(format!("segment_count {count} exceeds the limit of {MAX_LVM_SEGMENTS_PER_LV}"));
    }
    let mut segs = Vec::new();
    let mut next_extent: u64 = 0;
    for i in 1..=count {
        let key = format!("segment{i}");
        let seg = lv.section(&key).ok_or_else(|| format!("{key} is missing (segment_count = {count})"))?;
        let start_extent = uint(seg, "start_extent").map_err(|e| format!("{key}: {e}"))?;
        let extent_count = uint(seg, "extent_count").map_err(|e| format!("{key}: {e}"))?;
        if extent_count == 0 {
            return Err(format!("{key}: extent_count is 0"));
        }
        if start_extent != next_extent {
            return Err(format!(
                "{key}: starts at extent {start_extent}, but the segments before end at {next_extent}"
            ));
        }
        next_extent = start_extent.checked_add(extent_count).ok_or_else(|| format!("{key}: extent range overflows"))?;
        let kind = seg_kind(&key, seg, extent_count, ctx)?;
        segs.push(SegMeta { start_extent, extent_count, kind });
    }
    next_extent.checked_mul(ctx.extent_size).ok_or("the LV's size in bytes overflows")?;
    if let Some(origin) = roles.cow_of.get(name) {
        return Err(format!(
            "snapshot LVs are not supported: this is the copy-on-write store of a snapshot of {origin}, not a filesystem"
        ));
    }
    if roles.merging_into.contains(name) {
        return Err("a snapshot is being merged into this LV (its blocks are in flux); not read".into());
    }
    if !status.contains(&"VISIBLE") {
        let of = roles.parent.get(name).map(|p| format!(" of LV {p}")).unwrap_or_default();
        return Err(format!("hidden sub-LV{of} (an internal component, not a volume); not scanned on its own"));
    }
    Ok(segs)
}

/// The reason a segment type is not read, for the types lvm2 knows.
fn unsupported(ty: &str) -> Option<String> {
    let why = match ty {
        "thin-pool" => "thin-pool LVs are not supported: a pool holds the blocks of its thin LVs, not a filesystem",
        "thin" => "thin LVs are not supported: their blocks are placed by the thin pool's metadata, which is not read",
        "mirror" => "mirror LVs are not supported: the legs are not assembled",
        "snapshot" => "snapshot LVs are not supported: a snapshot is its origin overlaid with copy-on-write chunks",
        "cache" | "cache-pool" => "cache LVs are not supported: current blocks may sit only in the cache",
        "writecache" => "writecache LVs are not supported: current blocks may sit only in the cache",
        "vdo" | "vdo-pool" => "VDO LVs are not supported: their data is deduplicated and compressed",
        "integrity" => "integrity LVs are not supported: data is interleaved with checksum metadata",
        "error" => "an error segment: lvm2 maps reads of it to I/O errors",
        t if t.starts_with("raid") => {
            return Some(format!("{t} LVs are not supported: RAID images are not assembled"));
        }
        _ => return None,
    };
    Some(why.to_owned())
}

fn seg_kind(key: &str, seg: &Section, extent_count: u64, ctx: &Ctx<'_>) -> Result<SegKind, String> {
    let full = seg.str("type").ok_or_else(|| format!("{key}: no type"))?;
    // lvm2 appends `+FLAG`s to the type for segment flags it wants old versions to refuse.
    let mut parts = full.split('+');
    let ty = parts.next().unwrap_or_default();
    if let Some(why) = unsupported(ty) {
        return Err(why);
    }
    if let Some(flag) = parts.next() {
        return Err(format!("{key}: segment flag {flag:?} (type {full:?}) is not understood; not read"));
    }
    match ty {
        // lvm2 writes linear segments as "striped" with one stripe; it also knows the name "linear".
        "striped" | "linear" => striped(key, seg, extent_count, ctx),
        "zero" => Ok(SegKind::Zero),
        other => Err(format!("{key}: segment type {other:?} is not understood; not read")),
    }
}

fn striped(key: &str, seg: &Section, extent_count: u64, ctx: &Ctx<'_>) -> Result<SegKind, String> {
    let stripes = uint(seg, "stripe_count").map_err(|e| format!("{key}: {e}"))?;
    if stripes == 0 || stripes > MAX_LVM_STRIPES as u64 {
        return Err(format!("{key}: stripe_count {stripes} is outside 1..={MAX_LVM_STRIPES}"));
    }
    let stripe_size = if stripes > 1 {
        let sectors = uint(seg, "stripe_size").map_err(|e| format!("{key}: {e}"))?;
        sectors_to_bytes(sectors)
            .filter(|&b| b > 0)
            .ok_or_else(|| format!("{key}: stripe_size {sectors} is not usable"))?
    } else {
        0
    };
    if !extent_count.is_multiple_of(stripes) {
        return Err(format!("{key}: {extent_count} extents do not divide into {stripes} stripes"));
    }
    let area_extents = extent_count / stripes;
    if stripe_size > 0 {
        let area_bytes = area_extents.checked_mul(ctx.extent_size).ok_or_else(|| format!("{key}: size overflows"))?;
        if !area_bytes.is_multiple_of(stripe_size) {
            return Err(format!(
                "{key}: stripe length {area_bytes} is not a multiple of the stripe size {stripe_size}"
            ));
        }
    }
    let list = seg.array("stripes").ok_or_else(|| format!("{key}: no stripes list"))?;
    if list.len() as u64 != stripes * 2 {
        return Err(format!(
            "{key}: stripes has {} entries, expected {} for {stripes} stripes",
            list.len(),
            stripes * 2
        ));
    }
    let mut areas = Vec::new();
    for pair in list.chunks(2) {
        let (Some(Value::Str(pv)), Some(Value::Int(pe))) = (pair.first(), pair.get(1)) else {
            return Err(format!("{key}: stripes must alternate a PV name and an extent number"));
        };
        let pe = u64::try_from(*pe).map_err(|_| format!("{key}: negative extent {pe}"))?;
        let Some(&index) = ctx.pv_index.get(pv.as_str()) else {
            if let Some(why) = ctx.broken_pvs.get(pv) {
                return Err(format!("{key}: PV {pv} of VG {} is damaged in the metadata: {why}", ctx.vg));
            }
            if ctx.lv_names.contains(pv.as_str()) {
                return Err(format!("{key}: lies on LV {pv} (stacked LVs, as during pvmove, are not supported)"));
            }
            return Err(format!("{key}: stripe on {pv:?}, which is not a PV of VG {}", ctx.vg));
        };
        let pv_meta = ctx.pvs.get(index).ok_or_else(|| format!("{key}: PV {pv} vanished"))?;
        let end = pe.checked_add(area_extents).ok_or_else(|| format!("{key}: extent range on {pv} overflows"))?;
        if end > pv_meta.pe_count {
            return Err(format!("{key}: extents {pe}..{end} of {pv} lie past its {} extents", pv_meta.pe_count));
        }
        areas.push((index, pe));
    }
    Ok(SegKind::Striped { stripe_size, areas })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::lvm::config::parse;

    const MIB: u64 = 1024 * 1024;

    fn vg_of(text: &str) -> VgMeta {
        from_config(&parse(text.as_bytes()).expect("parses")).expect("a VG")
    }

    fn layout<'a>(vg: &'a VgMeta, lv: &str) -> &'a Result<Vec<SegMeta>, String> {
        &vg.lvs.iter().find(|l| l.name == lv).unwrap_or_else(|| panic!("no LV {lv}")).layout
    }

    fn err_of(vg: &VgMeta, lv: &str) -> String {
        layout(vg, lv).clone().expect_err("an unreadable LV")
    }

    fn linear(pv: usize, pe: u64) -> SegKind {
        SegKind::Striped { stripe_size: 0, areas: vec![(pv, pe)] }
    }

    #[test]
    fn real_backup_gives_each_lv_its_layout_or_reason() {
        let vg = vg_of(include_str!("testdata/vgcfgbackup-full.vg"));
        assert_eq!((vg.name.as_str(), vg.seqno, vg.extent_size), ("vgx", 6, 4 * MIB));
        assert_eq!(vg.uuid, "XHk6JP-eI0D-r1QD-7A6u-nKpA-wGEV-N3HmPo");
        let pvs: Vec<(&str, u64, u64)> = vg.pvs.iter().map(|p| (p.key.as_str(), p.pe_start, p.pe_count)).collect();
        assert_eq!(pvs, [("pv0", MIB, 15), ("pv1", MIB, 15)]);
        assert_eq!(
            layout(&vg, "lin"),
            &Ok(vec![
                SegMeta { start_extent: 0, extent_count: 2, kind: linear(0, 0) },
                SegMeta { start_extent: 2, extent_count: 2, kind: linear(0, 4) },
            ])
        );
        assert_eq!(
            layout(&vg, "str"),
            &Ok(vec![SegMeta {
                start_extent: 0,
                extent_count: 4,
                kind: SegKind::Striped { stripe_size: 64 * 1024, areas: vec![(0, 6), (1, 0)] },
            }])
        );
        // the origin of a (non-merging) snapshot holds its current data
        assert_eq!(layout(&vg, "other"), &Ok(vec![SegMeta { start_extent: 0, extent_count: 2, kind: linear(0, 2) }]));
        let size = |n: &str| vg.lvs.iter().find(|l| l.name == n).map(|l| l.size);
        assert_eq!((size("lin"), size("str"), size("thin1")), (Some(16 * MIB), Some(16 * MIB), Some(16 * MIB)));
        assert!(err_of(&vg, "r1").starts_with("raid1 LVs are not supported"), "{}", err_of(&vg, "r1"));
        assert!(err_of(&vg, "tp").starts_with("thin-pool LVs are not supported"));
        assert!(err_of(&vg, "thin1").starts_with("thin LVs are not supported"));
        assert!(err_of(&vg, "snapshot0").starts_with("snapshot LVs are not supported"));
        assert!(err_of(&vg, "snap").contains("copy-on-write store of a snapshot of other"), "{}", err_of(&vg, "snap"));
        assert!(err_of(&vg, "r1_rimage_1").starts_with("hidden sub-LV of LV r1"), "{}", err_of(&vg, "r1_rimage_1"));
        assert!(err_of(&vg, "tp_tdata").starts_with("hidden sub-LV of LV tp"));
        assert!(err_of(&vg, "lvol0_pmspare").starts_with("hidden sub-LV (an internal"));
    }

    /// A VG of two 10-extent PVs (4 MiB extents, first extent at 1 MiB) with `lvs` as its LVs.
    fn text(lvs: &str) -> String {
        format!(
            r#"v {{ id = "vid" seqno = 2 status = ["READ", "WRITE"] extent_size = 8192
               physical_volumes {{ pv0 {{ id = "a" pe_start = 2048 pe_count = 10 }}
                                  pv1 {{ id = "b" pe_start = 2048 pe_count = 10 }} }}
               logical_volumes {{ {lvs} }} }}"#
        )
    }

    fn one_seg(name: &str, status: &str, seg: &str) -> String {
        format!(
            r#"{name} {{ id = "x" status = [{status}] flags = [] segment_count = 1
                 segment1 {{ start_extent = 0 {seg} }} }}"#
        )
    }

    fn lin(name: &str, extents: &str, stripes: &str) -> String {
        one_seg(
            name,
            r#""READ", "VISIBLE""#,
            &format!(r#"extent_count = {extents} type = "striped" stripe_count = 1 stripes = [{stripes}]"#),
        )
    }

    #[test]
    fn absurd_numbers_and_dangling_references_fail_only_their_lv() {
        let lvs = [
            lin("ok", "2", r#""pv1", 3"#),
            lin("past_pv", "4", r#""pv0", 8"#),
            r#"overflow { id = "o" status = ["READ", "VISIBLE"] segment_count = 2
                   segment1 { start_extent = 0 extent_count = 9223372036854775807 type = "zero" }
                   segment2 { start_extent = 9223372036854775807 extent_count = 9223372036854775807 type = "zero" } }"#
                .to_owned(),
            lin("neg", "-1", r#""pv0", 0"#),
            lin("huge_pe", "1", r#""pv0", 9223372036854775807"#),
            lin("no_pv", "1", r#""pv7", 0"#),
            lin("loop_a", "1", r#""loop_b", 0"#),
            lin("loop_b", "1", r#""loop_a", 0"#),
            one_seg(
                "stripes_odd",
                r#""READ", "VISIBLE""#,
                r#"extent_count = 3 type = "striped" stripe_count = 2 stripe_size = 128 stripes = ["pv0", 0, "pv1", 0]"#,
            ),
            one_seg(
                "too_many_stripes",
                r#""READ", "VISIBLE""#,
                r#"extent_count = 200 type = "striped" stripe_count = 200 stripe_size = 128 stripes = []"#,
            ),
            one_seg(
                "short_list",
                r#""READ", "VISIBLE""#,
                r#"extent_count = 2 type = "striped" stripe_count = 2 stripe_size = 128 stripes = ["pv0", 0]"#,
            ),
            one_seg(
                "no_read",
                r#""WRITE", "VISIBLE""#,
                r#"extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0]"#,
            ),
            one_seg("odd_flag", r#""READ", "VISIBLE", "FROBNICATED""#, r#"extent_count = 1 type = "zero""#),
            one_seg("pvmove0", r#""READ", "PVMOVE""#, r#"extent_count = 1 type = "mirror""#),
            one_seg("future", r#""READ", "VISIBLE""#, r#"extent_count = 1 type = "striped+RESHAPE""#),
            one_seg("alien", r#""READ", "VISIBLE""#, r#"extent_count = 1 type = "frobnicate""#),
            one_seg("z", r#""READ", "VISIBLE""#, r#"extent_count = 1 type = "zero""#),
            r#"gap { id = "g" status = ["READ", "VISIBLE"] segment_count = 2
                   segment1 { start_extent = 0 extent_count = 1 type = "zero" }
                   segment2 { start_extent = 5 extent_count = 1 type = "zero" } }"#
                .to_owned(),
            r#"many { id = "m" status = ["READ", "VISIBLE"] segment_count = 99999999 }"#.to_owned(),
        ];
        let vg = vg_of(&text(&lvs.concat()));
        assert_eq!(layout(&vg, "ok"), &Ok(vec![SegMeta { start_extent: 0, extent_count: 2, kind: linear(1, 3) }]));
        assert_eq!(layout(&vg, "z"), &Ok(vec![SegMeta { start_extent: 0, extent_count: 1, kind: SegKind::Zero }]));
        let expect = [
            ("past_pv", "extents 8..12 of pv0 lie past its 10 extents"),
            ("overflow", "size in bytes overflows"),
            ("neg", "extent_count = -1 is negative"),
            ("huge_pe", "lie past its 10 extents"),
            ("no_pv", "stripe on \"pv7\", which is not a PV of VG v"),
            ("loop_a", "lies on LV loop_b (stacked LVs"),
            ("loop_b", "lies on LV loop_a (stacked LVs"),
            ("stripes_odd", "3 extents do not divide into 2 stripes"),
            ("too_many_stripes", "stripe_count 200 is outside 1..=128"),
            ("short_list", "stripes has 2 entries, expected 4"),
            ("no_read", "status lacks READ"),
            ("odd_flag", "status flag \"FROBNICATED\" is not understood"),
            ("pvmove0", "a pvmove LV"),
            ("future", "segment flag \"RESHAPE\""),
            ("alien", "segment type \"frobnicate\" is not understood"),
            ("gap", "segment2: starts at extent 5, but the segments before end at 1"),
            ("many", "segment_count 99999999 exceeds the limit"),
        ];
        for (lv, want) in expect {
            let got = err_of(&vg, lv);
            assert!(got.contains(want), "{lv}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn vg_level_defects_are_errors() {
        let bad = |t: &str| from_config(&parse(t.as_bytes()).expect("parses")).expect_err("refused");
        assert_eq!(bad("a { } b { }"), VgError::TopLevel(2));
        assert!(matches!(bad(r#"v { seqno = 1 }"#), VgError::Field { .. }));
        let zero_extent = text("").replace("extent_size = 8192", "extent_size = 0");
        assert!(bad(&zero_extent).to_string().contains("extent_size 0"));
        let huge_extent = text("").replace("extent_size = 8192", "extent_size = 9223372036854775807");
        assert!(bad(&huge_extent).to_string().contains("not a usable number"));
        // a VG that lacks READ keeps its LVs listed, each with the reason
        let vg = vg_of(&text(&lin("l", "1", r#""pv0", 0"#)).replace(r#"["READ", "WRITE"]"#, r#"["WRITE"]"#));
        assert_eq!(err_of(&vg, "l"), "VG v status lacks READ");
        // a damaged PV entry fails the LVs on it only
        let vg = vg_of(
            &text(&[lin("on0", "1", r#""pv0", 0"#), lin("on1", "1", r#""pv1", 0"#)].concat())
                .replace("pv0 { id = \"a\" pe_start = 2048", "pv0 { id = \"a\" pe_start = -5"),
        );
        assert!(err_of(&vg, "on0").contains("PV pv0 of VG v is damaged"), "{}", err_of(&vg, "on0"));
        assert!(layout(&vg, "on1").is_ok());
        assert_eq!(vg.warnings.len(), 1);
    }
}
