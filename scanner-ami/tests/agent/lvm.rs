//! LVM2 logical volumes read in userspace (`scanner_ami::disk::lvm`) against lvm2's own tools.
//!
//! Each test makes image files, attaches them to loop devices and builds PVs, a VG and LVs with
//! `lvm pvcreate/vgcreate/lvcreate` (activation off: there is no device-mapper here), in a
//! private `LVM_SYSTEM_DIR` whose filter admits only that test's loop devices (no backups, no
//! archives, no devices file), with a VG name unique to the test. `lvm pvs`/`lvs --segments`
//! give the layout (pe_start, each segment's extents, stripes and stripe size); the loop devices
//! are detached, known bytes (or an ext4 filesystem made with `mkfs.ext4 -d`) are written into the
//! images at the offsets that layout gives, and our LV streams must equal them byte for byte
//! (the filesystems must equal the kernel's loop mount of the same filesystem image).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use scanner_ami::disk::lvm::{self, LogicalVolume, LvmReport, PvCandidate};
use scanner_ami::disk::{BlockSource, Disk, Region};
use scanner_ami::fs::ext4::Ext4Fs;
use scanner_ami::fs::{RootFs, read_file};

use crate::difftree::{LoopMount, assert_same, walk_dir, walk_rootfs};
use crate::util::{Tree, blank_image, run, tree_size};

const MIB: u64 = 1024 * 1024;
/// Where `pvcreate` puts the first (and by default only) metadata area.
const MDA_AT: u64 = 4096;

/// One segment as `lvs --segments` reports it.
#[derive(Debug, Clone)]
struct SegLayout {
    start_pe: u64,
    size_pe: u64,
    stripe_size: u64,
    /// (loop device, first physical extent) per stripe.
    areas: Vec<(String, u64)>,
}

/// An LV as `lvs` reports it.
#[derive(Debug, Clone)]
struct LvLayout {
    uuid: String,
    size: u64,
    segs: Vec<SegLayout>,
}

/// The VG as lvm2's reporting commands describe it.
#[derive(Debug, Clone)]
struct Layout {
    extent: u64,
    seqno: u64,
    vg_uuid: String,
    /// loop device -> (PV UUID, pe_start in bytes).
    pvs: BTreeMap<String, (String, u64)>,
    lvs: BTreeMap<String, LvLayout>,
}

/// Image files on loop devices with a private lvm2 configuration; the loop devices are detached
/// on drop.
struct Lab {
    dir: tempfile::TempDir,
    images: Vec<PathBuf>,
    loops: Vec<String>,
    vg: String,
}

impl Lab {
    /// `disks_mib` sparse images on loop devices, and an lvm.conf that sees only those.
    fn new(test: &str, disks_mib: &[u64]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lab =
            Lab { images: Vec::new(), loops: Vec::new(), vg: format!("agl_{test}_{}", std::process::id()), dir };
        for (i, mib) in disks_mib.iter().enumerate() {
            let img = blank_image(lab.dir.path(), &format!("disk{i}.img"), *mib);
            let dev = run(Command::new("losetup").arg("-f").arg("--show").arg(&img)).trim().to_owned();
            assert!(dev.starts_with("/dev/loop"), "losetup gave {dev:?}");
            lab.images.push(img);
            lab.loops.push(dev);
        }
        let accept: String = lab.loops.iter().map(|l| format!("\"a|^{l}$|\", ")).collect();
        let conf = format!(
            "devices {{ obtain_device_list_from_udev = 0 use_devicesfile = 0 filter = [ {accept}\"r|.*|\" ] }}\n\
             global {{ activation = 0 }}\nbackup {{ backup = 0 archive = 0 }}\n"
        );
        std::fs::create_dir_all(lab.dir.path().join("etc")).expect("mkdir");
        std::fs::write(lab.dir.path().join("etc/lvm.conf"), conf).expect("lvm.conf");
        lab
    }

    /// Run `lvm ARGS` with this lab's configuration.
    fn lvm(&self, args: &[&str]) -> String {
        run(Command::new("lvm")
            .args(args)
            .env("LVM_SYSTEM_DIR", self.dir.path().join("etc"))
            .env("LVM_SUPPRESS_FD_WARNINGS", "1"))
    }

    fn dev(&self, i: usize) -> &str {
        &self.loops[i]
    }

    /// `pvcreate` on every disk and `vgcreate` over all of them (1 MiB extents).
    fn vg_over_all(&self, pvcreate_extra: &[&str]) {
        let mut pv: Vec<&str> = vec!["pvcreate", "-q"];
        pv.extend(pvcreate_extra);
        pv.extend(self.loops.iter().map(String::as_str));
        self.lvm(&pv);
        let mut vg: Vec<&str> = vec!["vgcreate", "-q", "-s", "1m", &self.vg];
        vg.extend(self.loops.iter().map(String::as_str));
        self.lvm(&vg);
    }

    /// `lvcreate -an -Zn -L SIZE -n NAME VG [EXTRA...]` (no activation, no zeroing).
    fn lvcreate(&self, name: &str, size: &str, extra: &[&str]) {
        let mut a = vec!["lvcreate", "-q", "-an", "-Zn", "-L", size, "-n", name, &self.vg];
        a.extend(extra);
        self.lvm(&a);
    }

    /// The layout from `vgs`, `pvs` and `lvs --segments` (all LVs, hidden ones too).
    fn layout(&self) -> Layout {
        let report = |args: &[&str]| -> Vec<Vec<String>> {
            let mut a = vec![args[0], "--noheadings", "--nosuffix", "--units", "b", "--separator", "|"];
            a.extend(&args[1..]);
            self.lvm(&a)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.trim().split('|').map(str::to_owned).collect())
                .collect()
        };
        let vg = report(&["vgs", "-o", "vg_extent_size,vg_seqno,vg_uuid", &self.vg]);
        let vg = vg.first().expect("vgs row");
        let pvs = report(&["pvs", "-o", "pv_name,pv_uuid,pe_start"])
            .into_iter()
            .map(|r| (r[0].clone(), (r[1].clone(), r[2].parse().expect("pe_start"))))
            .collect();
        let mut lvs: BTreeMap<String, LvLayout> = BTreeMap::new();
        let fields = "lv_name,lv_uuid,lv_size,seg_start_pe,seg_size_pe,stripe_size,seg_pe_ranges";
        for r in report(&["lvs", "-a", "--segments", "-o", fields, &self.vg]) {
            let name = r[0].trim_matches(|c| c == '[' || c == ']').to_owned();
            let areas = r[6]
                .split_whitespace()
                .map(|a| {
                    let (dev, range) = a.rsplit_once(':').expect("dev:range");
                    (dev.to_owned(), range.split('-').next().expect("first").parse().unwrap_or(u64::MAX))
                })
                .collect();
            let seg = SegLayout {
                start_pe: r[3].parse().expect("start"),
                size_pe: r[4].parse().expect("size"),
                stripe_size: r[5].parse().expect("stripe size"),
                areas,
            };
            let lv = lvs.entry(name).or_insert_with(|| LvLayout {
                uuid: r[1].clone(),
                size: r[2].parse().expect("lv size"),
                segs: Vec::new(),
            });
            lv.segs.push(seg);
        }
        for lv in lvs.values_mut() {
            lv.segs.sort_by_key(|s| s.start_pe);
        }
        Layout {
            extent: vg[0].parse().expect("extent"),
            seqno: vg[1].parse().expect("seqno"),
            vg_uuid: vg[2].clone(),
            pvs,
            lvs,
        }
    }

    /// Detach the loop devices (lvm is done; the images are then written and read as files).
    fn detach(&mut self) {
        for l in self.loops.drain(..) {
            let _ = Command::new("losetup").arg("-d").arg(&l).status();
        }
    }

    /// The image behind loop device `dev`.
    fn image_of(&self, dev: &str, loops: &[String]) -> PathBuf {
        let i = loops.iter().position(|l| l == dev).unwrap_or_else(|| panic!("{dev} is not a lab device"));
        self.images[i].clone()
    }

    /// Our assembly over the images `which` (named `disk0`, `disk1`...).
    fn assemble(&self, which: &[usize]) -> LvmReport {
        let pvs = which
            .iter()
            .map(|&i| {
                let disk = Disk::open(&self.images[i]).expect("image opens");
                PvCandidate { device: format!("disk{i}"), region: Region::whole(Arc::new(disk)) }
            })
            .collect();
        lvm::assemble(pvs)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.detach();
    }
}

/// Deterministic, position-dependent bytes (xorshift), different for each `seed`.
fn pattern(seed: u64, len: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Write `content` (the LV's bytes) into the images where `layout` says LV `lv` keeps them:
/// linear segments contiguously, striped ones chunk `c` on stripe `c % n` at row `c / n`.
fn scatter(lab: &Lab, loops: &[String], layout: &Layout, lv: &str, content: &[u8]) {
    let l = &layout.lvs[lv];
    assert_eq!(content.len() as u64, l.size, "content of {lv} must be its size");
    for seg in &l.segs {
        let seg_off = seg.start_pe * layout.extent;
        let seg_len = seg.size_pe * layout.extent;
        let n = seg.areas.len() as u64;
        let chunk = if n == 1 { seg_len } else { seg.stripe_size };
        assert!(chunk > 0 && seg_len.is_multiple_of(chunk * n), "{lv}: unexpected geometry {seg:?}");
        for c in 0..seg_len / chunk {
            let (dev, first_pe) = &seg.areas[(c % n) as usize];
            let at = layout.pvs[dev].1 + first_pe * layout.extent + (c / n) * chunk;
            let src = &content[(seg_off + c * chunk) as usize..(seg_off + (c + 1) * chunk) as usize];
            let f = OpenOptions::new().write(true).open(lab.image_of(dev, loops)).expect("image");
            f.write_all_at(src, at).expect("write");
        }
    }
}

/// Read a whole LV through our region in odd-sized pieces (so reads cross chunk and segment
/// boundaries at many offsets).
fn read_lv(lv: &LogicalVolume) -> Vec<u8> {
    let region = lv.data.as_ref().unwrap_or_else(|e| panic!("LV {} unreadable: {e}", lv.name));
    let mut out = vec![0u8; region.len() as usize];
    let mut pos = 0;
    for piece in out.chunks_mut(100_003) {
        region.read_exact_at(pos, piece).expect("LV read");
        pos += piece.len() as u64;
    }
    out
}

fn volume<'a>(r: &'a LvmReport, name: &str) -> &'a LogicalVolume {
    r.volumes.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no LV {name} in {:?}", names(r)))
}

fn names(r: &LvmReport) -> Vec<&str> {
    r.volumes.iter().map(|v| v.name.as_str()).collect()
}

fn error_of<'a>(r: &'a LvmReport, name: &str) -> &'a str {
    volume(r, name).data.as_ref().map(|_| ()).err().map_or_else(|| panic!("LV {name} is readable"), String::as_str)
}

/// Fill every LV named with a distinct pattern and check the VG facts and each LV's bytes.
fn fill_and_check(lab: &mut Lab, lvs: &[&str]) -> (Layout, LvmReport) {
    let layout = lab.layout();
    let loops = lab.loops.clone();
    lab.detach();
    let contents: Vec<Vec<u8>> = lvs
        .iter()
        .enumerate()
        .map(|(i, lv)| {
            let c = pattern(i as u64 + 1, layout.lvs[*lv].size);
            scatter(lab, &loops, &layout, lv, &c);
            c
        })
        .collect();
    let all: Vec<usize> = (0..lab.images.len()).collect();
    let r = lab.assemble(&all);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.volume_groups.len(), 1);
    let vg = &r.volume_groups[0];
    assert_eq!((&vg.name, &vg.uuid, vg.seqno, vg.extent_size), (&lab.vg, &layout.vg_uuid, layout.seqno, layout.extent));
    assert!(vg.missing_pvs.is_empty());
    for (lv, content) in lvs.iter().zip(&contents) {
        let v = volume(&r, lv);
        assert_eq!((&v.vg, &v.uuid, v.size), (&lab.vg, &layout.lvs[*lv].uuid, layout.lvs[*lv].size), "{lv}");
        assert!(read_lv(v) == *content, "LV {lv}: our bytes differ from those written at lvm2's offsets");
    }
    (layout, r)
}

#[test]
fn linear_lvs_read_back_the_bytes_written_at_lvm_offsets() {
    let mut lab = Lab::new("linear", &[24]);
    lab.vg_over_all(&[]);
    lab.lvcreate("first", "3m", &[]);
    lab.lvcreate("lin", "5m", &[]);
    let (layout, r) = fill_and_check(&mut lab, &["first", "lin"]);
    assert_eq!(layout.lvs["lin"].segs.len(), 1);
    assert_eq!(layout.lvs["lin"].segs[0].areas[0].1, 3, "lin follows first on the PV");
    let pv = &r.volume_groups[0].pvs;
    assert_eq!(pv.len(), 1);
    assert_eq!(pv[0].device.as_deref(), Some("disk0"));
    assert_eq!(pv[0].uuid, layout.pvs.values().next().expect("pv").0);
}

#[test]
fn an_lv_extended_after_another_reads_its_two_segments_in_order() {
    let mut lab = Lab::new("segments", &[24]);
    lab.vg_over_all(&[]);
    lab.lvcreate("grown", "2m", &[]);
    lab.lvcreate("between", "3m", &[]);
    lab.lvm(&["lvextend", "-q", "-L", "6m", &format!("{}/grown", lab.vg)]);
    let (layout, _) = fill_and_check(&mut lab, &["grown", "between"]);
    let segs: Vec<(u64, u64, u64)> =
        layout.lvs["grown"].segs.iter().map(|s| (s.start_pe, s.size_pe, s.areas[0].1)).collect();
    assert_eq!(segs, [(0, 2, 0), (2, 4, 5)], "lvm2 put the extension after `between`");
}

#[test]
fn a_striped_lv_across_two_disks_reads_chunk_by_chunk() {
    let mut lab = Lab::new("striped", &[16, 16]);
    lab.vg_over_all(&[]);
    lab.lvcreate("pad", "1m", &[lab.dev(1)]);
    lab.lvcreate("str", "8m", &["-i", "2", "-I", "64k"]);
    let (layout, _) = fill_and_check(&mut lab, &["pad", "str"]);
    let seg = &layout.lvs["str"].segs[0];
    assert_eq!((seg.areas.len(), seg.stripe_size), (2, 64 * 1024));
    assert_ne!(seg.areas[0].1, seg.areas[1].1, "the stripes start at different extents on their PVs");
}

/// An ext4 made from `tree` by `mkfs.ext4 -d` into a file of `size` bytes.
fn ext4_image(dir: &Path, tree: &Path, size: u64) -> PathBuf {
    let img = blank_image(dir, "fs.img", size / MIB);
    run(Command::new("mkfs.ext4").arg("-q").arg("-F").arg("-d").arg(tree).arg(&img));
    img
}

#[test]
fn ext4_on_a_striped_lv_matches_the_kernel_mount_of_the_same_filesystem() {
    let mut lab = Lab::new("ext4", &[24, 24]);
    lab.vg_over_all(&[]);
    lab.lvcreate("pad", "2m", &[lab.dev(0)]);
    lab.lvcreate("root", "16m", &["-i", "2", "-I", "64k"]);
    let layout = lab.layout();
    let loops = lab.loops.clone();
    lab.detach();

    let tree = Tree::new();
    tree.os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)")
        .put("etc/hostname", b"lvm-test\n")
        .put("var/lib/big.bin", &pattern(7, 3 * MIB + 12345))
        .symlink("etc/alias", "hostname");
    let work = tempfile::tempdir().expect("tmp");
    let fs_img = ext4_image(work.path(), tree.path(), layout.lvs["root"].size);
    let fs_bytes = std::fs::read(&fs_img).expect("fs image");
    scatter(&lab, &loops, &layout, "root", &fs_bytes);

    let r = lab.assemble(&[0, 1]);
    let lv = volume(&r, "root");
    assert!(read_lv(lv) == fs_bytes, "the LV's bytes are not the filesystem image");
    let fs = Ext4Fs::load(lv.data.clone().expect("readable")).expect("ext4 loads from the LV");
    assert_eq!(read_file(&fs, "/etc/hostname", 1024).expect("hostname"), b"lvm-test\n");
    assert_eq!(read_file(&fs, "/var/lib/big.bin", 8 * MIB).expect("big"), pattern(7, 3 * MIB + 12345));
    let kernel = LoopMount::new(&fs_img, "ext4", 0, "noload");
    assert_same(&walk_dir(&kernel.path()), &walk_rootfs(&fs as &dyn RootFs), "ext4 on a striped LV");
}

#[test]
fn a_vg_with_one_disk_absent_reads_the_lvs_on_the_disk_present() {
    let mut lab = Lab::new("absent", &[16, 16]);
    lab.vg_over_all(&[]);
    lab.lvcreate("here", "3m", &[lab.dev(0)]);
    lab.lvcreate("there", "3m", &[lab.dev(1)]);
    lab.lvcreate("both", "4m", &["-i", "2", "-I", "64k"]);
    let loops = lab.loops.clone();
    let (layout, _) = fill_and_check(&mut lab, &["here", "there", "both"]);
    let (uuid0, uuid1) = (layout.pvs[&loops[0]].0.clone(), layout.pvs[&loops[1]].0.clone());

    // Only disk 0: its own metadata copy describes the whole VG.
    let r = lab.assemble(&[0]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let vg = &r.volume_groups[0];
    assert_eq!(vg.missing_pvs, std::slice::from_ref(&uuid1));
    let devices: Vec<(&str, Option<&str>)> = vg.pvs.iter().map(|p| (p.uuid.as_str(), p.device.as_deref())).collect();
    assert_eq!(devices, [(uuid0.as_str(), Some("disk0")), (uuid1.as_str(), None)]);
    assert!(read_lv(volume(&r, "here")) == pattern(1, 3 * MIB));
    let missing = format!("PV {uuid1} (pv1) of VG {} is not among the attached disks", lab.vg);
    assert_eq!(error_of(&r, "there"), missing);
    assert_eq!(error_of(&r, "both"), missing);

    // Only disk 1: the mirror image of that.
    let r = lab.assemble(&[1]);
    assert_eq!(r.volume_groups[0].missing_pvs, std::slice::from_ref(&uuid0));
    assert!(read_lv(volume(&r, "there")) == pattern(2, 3 * MIB));
    assert_eq!(error_of(&r, "here"), format!("PV {uuid0} (pv0) of VG {} is not among the attached disks", lab.vg));
}

/// LV sections in lvm2's backup syntax: a RAID1 LV with its images and metadata sub-LVs, a thin
/// pool with its data and metadata sub-LVs and a thin LV, and a snapshot of `plain`; all on free
/// extents from `pe` on of pv0.
fn unsupported_lvs(pe: u64) -> String {
    let sub = |name: &str, id: &str, extent: u64| {
        format!(
            "{name} {{ id = \"{id}\" status = [\"READ\", \"WRITE\"] flags = [] segment_count = 1\n\
             segment1 {{ start_extent = 0 extent_count = 1 type = \"striped\" stripe_count = 1 stripes = [\"pv0\", {extent}] }} }}\n"
        )
    };
    let top = |name: &str, id: &str, extents: u64, body: &str| {
        format!(
            "{name} {{ id = \"{id}\" status = [\"READ\", \"WRITE\", \"VISIBLE\"] flags = [] segment_count = 1\n\
             segment1 {{ start_extent = 0 extent_count = {extents} {body} }} }}\n"
        )
    };
    [
        top(
            "r1",
            "r1aaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa",
            1,
            "type = \"raid1\" device_count = 2 region_size = 1024 \
             raids = [\"r1_rmeta_0\", \"r1_rimage_0\", \"r1_rmeta_1\", \"r1_rimage_1\"]",
        ),
        sub("r1_rmeta_0", "r1bbbb-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", pe),
        sub("r1_rimage_0", "r1cccc-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", pe + 1),
        sub("r1_rmeta_1", "r1dddd-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", pe + 2),
        sub("r1_rimage_1", "r1eeee-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", pe + 3),
        top(
            "tp",
            "tpaaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa",
            1,
            "type = \"thin-pool\" metadata = \"tp_tmeta\" pool = \"tp_tdata\" transaction_id = 1 \
             chunk_size = 128 discards = \"passdown\" zero_new_blocks = 1",
        ),
        sub("tp_tmeta", "tpbbbb-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", pe + 4),
        sub("tp_tdata", "tpcccc-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", pe + 5),
        sub("lvol0_pmspare", "tpdddd-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", pe + 6),
        top(
            "thin1",
            "thaaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa",
            4,
            "type = \"thin\" thin_pool = \"tp\" transaction_id = 0 device_id = 1",
        ),
        sub("snap", "snaaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa", pe + 7),
        top(
            "snapshot0",
            "snbbbb-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa",
            2,
            "type = \"snapshot\" chunk_size = 8 origin = \"plain\" cow_store = \"snap\"",
        ),
    ]
    .concat()
}

#[test]
fn thin_raid_and_snapshot_lvs_are_listed_with_reasons_and_the_rest_reads() {
    let mut lab = Lab::new("unsupported", &[24]);
    lab.vg_over_all(&[]);
    lab.lvcreate("plain", "2m", &[]);
    // lvm2 cannot create these without device-mapper, but restores them from a backup file.
    let backup = lab.dir.path().join("vg.backup");
    lab.lvm(&["vgcfgbackup", "-q", "-f", backup.to_str().expect("utf-8"), &lab.vg]);
    let text = std::fs::read_to_string(&backup).expect("backup");
    let end = text.rfind("\t}\n\n}").expect("end of logical_volumes");
    let crafted = format!("{}{}{}", &text[..end], unsupported_lvs(2), &text[end..]);
    std::fs::write(&backup, crafted).expect("write backup");
    lab.lvm(&["vgcfgrestore", "-q", "--force", "-f", backup.to_str().expect("utf-8"), &lab.vg]);
    let layout = lab.layout();
    for (lv, ty) in [("r1", "raid1"), ("tp", "thin-pool"), ("thin1", "thin"), ("snap", "linear")] {
        assert!(layout.lvs.contains_key(lv), "lvm2 did not keep {lv} ({ty})");
    }
    let (_, r) = fill_and_check(&mut lab, &["plain"]);

    assert!(error_of(&r, "r1").starts_with("raid1 LVs are not supported"), "{}", error_of(&r, "r1"));
    assert!(error_of(&r, "tp").starts_with("thin-pool LVs are not supported"));
    assert!(error_of(&r, "thin1").starts_with("thin LVs are not supported"));
    assert!(error_of(&r, "snapshot0").starts_with("snapshot LVs are not supported"));
    assert!(error_of(&r, "snap").contains("copy-on-write store of a snapshot of plain"));
    for (sub, parent) in [("r1_rimage_0", "r1"), ("r1_rmeta_1", "r1"), ("tp_tdata", "tp"), ("tp_tmeta", "tp")] {
        let e = error_of(&r, sub);
        assert!(e.starts_with(&format!("hidden sub-LV of LV {parent} ")), "{sub}: {e}");
    }
    assert!(error_of(&r, "lvol0_pmspare").starts_with("hidden sub-LV"));
    assert_eq!(volume(&r, "thin1").size, 4 * MIB);
    assert_eq!(r.volumes.len(), 13, "{:?}", names(&r));
}

/// The first raw_locn of the metadata area at [`MDA_AT`]: (area size, text offset, text size).
fn mda_locn(img: &Path) -> (u64, u64, u64) {
    let f = std::fs::File::open(img).expect("image");
    let mut h = [0u8; 64];
    f.read_exact_at(&mut h, MDA_AT).expect("mda header");
    assert_eq!(&h[4..20], b" LVM2 x[5A%r0N*>", "no mda_header at {MDA_AT}");
    let u = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
    (u(32), u(40), u(48))
}

#[test]
fn metadata_that_wraps_round_the_circular_buffer_is_read_whole() {
    let mut lab = Lab::new("wrap", &[16]);
    // A 60 KiB metadata area: each update of a VG text of several KiB moves round it quickly.
    lab.vg_over_all(&["--metadatasize", "16k", "--dataalignment", "64k"]);
    lab.lvcreate("tagged", "2m", &[]);
    let tag = "t".repeat(1000);
    let mut wrapped = false;
    for i in 0..80 {
        lab.lvm(&["lvchange", "-q", "--addtag", &format!("{i}{tag}"), &format!("{}/tagged", lab.vg)]);
        let (size, offset, len) = mda_locn(&lab.images[0]);
        assert!(size < 128 * 1024, "the metadata area is {size} bytes; --metadatasize was not honoured");
        if offset + len > size {
            wrapped = true;
            break;
        }
    }
    assert!(wrapped, "lvm2 never wrapped the metadata text");
    let (layout, _) = fill_and_check(&mut lab, &["tagged"]);
    assert!(layout.seqno > 3);
}

#[test]
fn the_newest_metadata_wins_whatever_the_disk_order() {
    let mut lab = Lab::new("seqno", &[16, 16]);
    lab.vg_over_all(&[]);
    lab.lvcreate("early", "2m", &[lab.dev(0)]);
    // disk 1 as it was then: a stale copy of its PV (same UUID, older metadata)
    let stale = lab.dir.path().join("stale1.img");
    run(Command::new("cp").arg("--sparse=always").arg(&lab.images[1]).arg(&stale));
    let old_seqno = lab.layout().seqno;
    lab.lvcreate("late", "3m", &[lab.dev(0)]);
    let (layout, _) = fill_and_check(&mut lab, &["early", "late"]);
    assert!(layout.seqno > old_seqno);
    let open = |p: &Path, name: &str| PvCandidate {
        device: name.to_owned(),
        region: Region::whole(Arc::new(Disk::open(p).expect("image"))),
    };
    for order in [[0, 1], [1, 0]] {
        let pvs = order
            .iter()
            .map(|&i| if i == 0 { open(&lab.images[0], "disk0") } else { open(&stale, "stale1") })
            .collect();
        let r = lvm::assemble(pvs);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.volume_groups.len(), 1);
        assert_eq!(r.volume_groups[0].seqno, layout.seqno, "order {order:?}");
        assert!(read_lv(volume(&r, "late")) == pattern(2, 3 * MIB), "order {order:?}");
    }
    // the stale disk alone still describes the VG as it was, without `late`
    let r = lvm::assemble(vec![open(&stale, "stale1")]);
    assert_eq!(r.volume_groups[0].seqno, old_seqno);
    assert_eq!(names(&r), ["early"]);
}

#[test]
fn a_damaged_first_metadata_copy_falls_back_to_the_second() {
    let mut lab = Lab::new("twocopies", &[16]);
    // a second metadata area at the end of the PV
    lab.vg_over_all(&["--pvmetadatacopies", "2"]);
    lab.lvcreate("kept", "2m", &[]);
    let (layout, _) = fill_and_check(&mut lab, &["kept"]);
    let (_, text_at, _) = mda_locn(&lab.images[0]);
    let r = assemble_copy(&lab, "copy", |p| flip(p, MDA_AT + text_at + 20));
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.errors[0].starts_with("copy: metadata area at byte 4096: metadata text checksum"), "{:?}", r.errors);
    assert_eq!(r.volume_groups[0].seqno, layout.seqno);
    assert!(read_lv(volume(&r, "kept")) == pattern(1, 2 * MIB));
}

/// lvm2's `calc_crc` written out bit by bit (reflected CRC-32, polynomial 0xEDB88320, initial
/// 0xf597a6cf, no inversions): independent of the table-driven one under test.
fn lvm_crc(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xf597_a6cf;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    crc
}

/// Replace the committed metadata of the area at [`MDA_AT`] of `img` by `text` (at the start of
/// the buffer, checksums recomputed), or claim `claim_size` bytes without writing them.
fn put_metadata(img: &Path, text: &[u8], claim_size: Option<u64>) {
    let f = OpenOptions::new().read(true).write(true).open(img).expect("image");
    let mut h = [0u8; 512];
    f.read_exact_at(&mut h, MDA_AT).expect("mda header");
    f.write_all_at(text, MDA_AT + 512).expect("text");
    h[40..48].copy_from_slice(&512u64.to_le_bytes());
    h[48..56].copy_from_slice(&claim_size.unwrap_or(text.len() as u64).to_le_bytes());
    h[56..60].copy_from_slice(&lvm_crc(text).to_le_bytes());
    h[60..64].copy_from_slice(&0u32.to_le_bytes());
    let sum = lvm_crc(&h[4..]);
    h[0..4].copy_from_slice(&sum.to_le_bytes());
    f.write_all_at(&h, MDA_AT).expect("mda header");
}

/// A copy of `img` with `edit` applied, assembled alone.
fn assemble_copy(lab: &Lab, name: &str, edit: impl FnOnce(&Path)) -> LvmReport {
    let copy = lab.dir.path().join(name);
    run(Command::new("cp").arg("--sparse=always").arg(&lab.images[0]).arg(&copy));
    edit(&copy);
    let disk = Disk::open(&copy).expect("copy opens");
    lvm::assemble(vec![PvCandidate { device: name.to_owned(), region: Region::whole(Arc::new(disk)) }])
}

fn flip(img: &Path, at: u64) {
    let f = OpenOptions::new().read(true).write(true).open(img).expect("image");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read");
    b[0] ^= 0x20;
    f.write_all_at(&b, at).expect("write");
}

/// No VG and no LV came out of `r`, and an error says `want`.
fn only_error(r: &LvmReport, want: &str) {
    assert!(r.volumes.is_empty() && r.volume_groups.is_empty(), "{:?}", names(r));
    assert!(r.errors.iter().any(|e| e.contains(want)), "{:?} lacks {want:?}", r.errors);
}

#[test]
fn damaged_labels_and_hostile_metadata_give_clear_errors_and_spare_the_rest() {
    let mut lab = Lab::new("hostile", &[64]);
    // A 20 MiB metadata area, room for texts past our limits.
    lab.vg_over_all(&["--metadatasize", "20m"]);
    lab.lvcreate("good", "2m", &[]);
    let (layout, _) = fill_and_check(&mut lab, &["good"]);
    let (pv_uuid, pe_start) = layout.pvs.values().next().expect("pv").clone();
    let (_, text_at, _) = mda_locn(&lab.images[0]);

    // lvm2 finds the label in sector 1; a flipped UUID byte breaks its CRC.
    only_error(&assemble_copy(&lab, "label", |p| flip(p, 512 + 40)), "label in sector 1: checksum");
    only_error(&assemble_copy(&lab, "mdah", |p| flip(p, MDA_AT + 30)), "mda_header checksum");
    only_error(&assemble_copy(&lab, "text", |p| flip(p, MDA_AT + text_at + 20)), "metadata text checksum");
    only_error(
        &assemble_copy(&lab, "huge", |p| put_metadata(p, b"x", Some(17 * MIB))),
        "exceeds the 16777216-byte limit",
    );
    let deep = format!("{}{}", "a {\n".repeat(200), "}\n".repeat(200));
    only_error(&assemble_copy(&lab, "deep", |p| put_metadata(p, deep.as_bytes(), None)), "nested deeper than 16");
    let wide = format!("v {{ id = \"x\" big = [{}] }}", "1,".repeat(600_000));
    only_error(&assemble_copy(&lab, "wide", |p| put_metadata(p, wide.as_bytes(), None)), "more than 500000 keys");
    only_error(&assemble_copy(&lab, "garbage", |p| put_metadata(p, b"v { id = \"x\" \"", None)), "unterminated string");

    // A well-formed VG text full of absurdities: only `ok` is readable.
    let seg = |name: &str, extents: &str, body: &str| {
        format!(
            "{name} {{ id = \"{name}-id\" status = [\"READ\", \"VISIBLE\"] segment_count = 1\n\
             segment1 {{ start_extent = 0 extent_count = {extents} {body} }} }}\n"
        )
    };
    let lin = |name: &str, extents: &str, pv: &str, pe: &str| {
        seg(name, extents, &format!("type = \"striped\" stripe_count = 1 stripes = [\"{pv}\", {pe}]"))
    };
    let text = format!(
        "crafted {{ id = \"crafted-vg-id\" seqno = 9 status = [\"READ\"] extent_size = 2048\n\
         physical_volumes {{ pv0 {{ id = \"{pv_uuid}\" pe_start = {} pe_count = 1000000 }}\n\
                             pv1 {{ id = \"absent-pv-uuid\" pe_start = 2048 pe_count = 40 }} }}\n\
         logical_volumes {{ {} }} }}\n",
        pe_start / 512,
        [
            lin("ok", "2", "pv0", "0"),
            lin("on_absent", "1", "pv1", "0"),
            lin("no_such_pv", "1", "pv9", "0"),
            lin("past_disk", "2", "pv0", "60"),
            lin("past_pe_count", "2", "pv0", "999999"),
            lin("absurd_pe", "1", "pv0", "9223372036854775000"),
            lin("loop_a", "1", "loop_b", "0"),
            lin("loop_b", "1", "loop_a", "0"),
            seg("wide", "256", "type = \"striped\" stripe_count = 256 stripe_size = 128 stripes = []"),
            seg("overflow", "9223372036854775807", "type = \"zero\""),
        ]
        .concat()
    );
    let r = assemble_copy(&lab, "absurd", |p| put_metadata(p, text.as_bytes(), None));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.volume_groups[0].missing_pvs, ["absent-pv-uuid"]);
    assert!(read_lv(volume(&r, "ok")) == pattern(1, 2 * MIB), "`ok` maps to the start of the PV like `good`");
    let expect = [
        ("on_absent", "PV absent-pv-uuid (pv1) of VG crafted is not among the attached disks"),
        ("no_such_pv", "stripe on \"pv9\", which is not a PV of VG crafted"),
        ("past_disk", "segment1: extents of pv0 on absurd: region"),
        ("past_pe_count", "extents 999999..1000001 of pv0 lie past its 1000000 extents"),
        ("absurd_pe", "lie past its 1000000 extents"),
        ("loop_a", "lies on LV loop_b"),
        ("loop_b", "lies on LV loop_a"),
        ("wide", "stripe_count 256 is outside 1..=128"),
        ("overflow", "size in bytes overflows"),
    ];
    for (lv, want) in expect {
        let e = error_of(&r, lv);
        assert!(e.contains(want), "{lv}: {e:?} lacks {want:?}");
    }
}

#[test]
#[ignore = "needs the debootstrap tree of scripts/setup-test-env.sh (AGENTLESS_DEBOOTSTRAP_ROOT)"]
fn debootstrap_root_on_ext4_on_a_striped_lv_matches_dpkg_query() {
    let root = std::env::var("AGENTLESS_DEBOOTSTRAP_ROOT")
        .expect("AGENTLESS_DEBOOTSTRAP_ROOT must name the debootstrap tree (scripts/setup-test-env.sh)");
    let root = Path::new(&root);
    let fs_mib = (tree_size(root) * 3 / 2) / MIB + 64;
    let disk_mib = fs_mib / 2 + 16;
    let mut lab = Lab::new("debootstrap", &[disk_mib, disk_mib]);
    lab.vg_over_all(&[]);
    lab.lvcreate("root", &format!("{}m", fs_mib & !1), &["-i", "2", "-I", "64k"]);
    let layout = lab.layout();
    let loops = lab.loops.clone();
    lab.detach();
    let work = tempfile::tempdir().expect("tmp");
    let fs_img = ext4_image(work.path(), root, layout.lvs["root"].size);
    scatter(&lab, &loops, &layout, "root", &std::fs::read(&fs_img).expect("fs image"));

    let r = lab.assemble(&[0, 1]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let fs = Ext4Fs::load(volume(&r, "root").data.clone().expect("readable")).expect("ext4 loads");
    let inv = scanner_ami::inventory::collect(&fs);
    let oracle = crate::util::dpkg_oracle(root);
    assert!(oracle.len() > 80, "debootstrap tree looks incomplete: {} packages", oracle.len());
    assert_eq!(crate::util::ours(&inv.packages), oracle);
}
