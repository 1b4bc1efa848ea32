//! Disk images built in the test without mounting, scanned through the partition table and the
//! userspace ext4 reader, and checked against the native oracle run on the source tree.

use scanner_ami::disk::probe::Content;
use scanner_ami::disk::table::Scheme;
use scanner_ami::report::PartStatus;

use crate::util::{
    Tree, blank_image, dd_at, dpkg_oracle, gpt_efi_ext4, mkfs_ext4, ours, rpm_oracle, run, scan_image, sfdisk,
    ubuntu_tree,
};

fn content(r: &scanner_ami::report::Report, index: u32) -> Option<Content> {
    r.partitions.iter().find(|p| p.index == index).and_then(|p| p.filesystem.as_ref()).map(|f| f.content)
}

#[test]
fn gpt_512_efi_and_ext4_root_matches_dpkg_query() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), tree.path(), 512);
    let r = scan_image(&img);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let t = r.partition_table.as_ref().expect("table");
    assert_eq!((t.scheme, t.sector_size), (Scheme::Gpt, Some(512)));
    assert_eq!(r.partitions.len(), 2);
    assert_eq!(content(&r, 1), Some(Content::Vfat));
    assert_eq!(content(&r, 2), Some(Content::Ext4));
    assert_eq!(r.partitions[0].status, PartStatus::Skipped);
    assert_eq!(r.partitions[1].name.as_deref(), Some("root"));
    assert_eq!(r.root_partition, Some(2));
    assert_eq!(r.os.as_ref().map(|o| o.distro()), Some("ubuntu-18.04".into()));
    assert_eq!(r.packages.len(), 90);
    assert_eq!(ours(&r.packages), dpkg_oracle(tree.path()));
    let allocated = std::fs::metadata(&img).map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512).expect("meta");
    let read = r.stats.bytes_read.expect("bytes read");
    assert!(read < allocated / 4, "read {read} of {allocated} allocated bytes");
}

#[test]
fn gpt_4096_byte_sectors() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), tree.path(), 4096);
    let r = scan_image(&img);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.partition_table.as_ref().and_then(|t| t.sector_size), Some(4096));
    assert_eq!(r.root_partition, Some(2));
    assert_eq!(ours(&r.packages), dpkg_oracle(tree.path()));
}

#[test]
fn gpt_damaged_primary_header_falls_back_to_backup() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), tree.path(), 512);
    // Corrupt one byte of the primary header (its CRC no longer matches), then wipe the primary
    // entry array too: only the backup header and array at the end of the disk are intact.
    run(std::process::Command::new("dd")
        .args(["if=/dev/urandom", "bs=1", "count=4", "seek=600", "conv=notrunc", "status=none"])
        .arg(format!("of={}", img.display())));
    run(std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=512", "count=32", "seek=2", "conv=notrunc", "status=none"])
        .arg(format!("of={}", img.display())));
    let r = scan_image(&img);
    let t = r.partition_table.as_ref().expect("table");
    assert_eq!(t.scheme, Scheme::Gpt);
    assert_eq!(t.header, Some(scanner_ami::disk::gpt::HeaderCopy::Backup), "{:?}", t.warnings);
    assert!(t.warnings.iter().any(|w| w.contains("CRC32")), "{:?}", t.warnings);
    assert_eq!(r.root_partition, Some(2));
    assert_eq!(r.packages.len(), 90);
}

#[test]
fn mbr_with_logical_partitions_swap_xfs_btrfs_lvm() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = blank_image(work.path(), "mbr.img", 512);
    // 1: swap, 2: xfs, 3: extended { 5: btrfs, 6: LVM PV label, 7: ext4 root }.
    sfdisk(
        &img,
        "label: dos\nstart=2048, size=16384, type=82\nstart=18432, size=614400, type=83\nstart=632832, type=5\nstart=634880, size=262144, type=83\nstart=899072, size=16384, type=8e\nstart=917504, type=83\n",
    );
    let sw = work.path().join("swap");
    std::fs::File::create(&sw).expect("swap").set_len(8 * 1024 * 1024).expect("len");
    run(std::process::Command::new("mkswap").arg("-L").arg("swp").arg(&sw));
    dd_at(&sw, &img, 2048 * 512);
    let xfs = work.path().join("xfs");
    std::fs::File::create(&xfs).expect("xfs").set_len(300 * 1024 * 1024).expect("len");
    run(std::process::Command::new("mkfs.xfs").arg("-q").arg("-L").arg("data").arg(&xfs));
    dd_at(&xfs, &img, 18432 * 512);
    let btrfs = work.path().join("btrfs");
    std::fs::File::create(&btrfs).expect("btrfs").set_len(128 * 1024 * 1024).expect("len");
    run(std::process::Command::new("mkfs.btrfs").arg("-q").arg("-L").arg("bt").arg(&btrfs));
    dd_at(&btrfs, &img, 634_880 * 512);
    // An LVM2 PV label (sector 1: "LABELONE", type "LVM2 001"), as pvcreate writes it.
    let mut label = vec![0u8; 1024];
    label[512..520].copy_from_slice(b"LABELONE");
    label[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
    let lvm = work.path().join("lvm");
    std::fs::write(&lvm, &label).expect("lvm");
    dd_at(&lvm, &img, 899_072 * 512);
    let root_start = 917_504u64 * 512;
    let root_size = 512 * 1024 * 1024 - root_start - 1024 * 1024;
    mkfs_ext4(&img, root_start, root_size, Some(tree.path()), &[]);

    let r = scan_image(&img);
    assert_eq!(r.partition_table.as_ref().map(|t| t.scheme), Some(Scheme::Mbr));
    let idx: Vec<u32> = r.partitions.iter().map(|p| p.index).collect();
    assert_eq!(idx, [1, 2, 5, 6, 7]);
    assert_eq!(content(&r, 1), Some(Content::Swap));
    assert_eq!(content(&r, 2), Some(Content::Xfs));
    assert_eq!(content(&r, 5), Some(Content::Btrfs));
    assert_eq!(content(&r, 6), Some(Content::Lvm2Pv));
    assert_eq!(content(&r, 7), Some(Content::Ext4));
    // The XFS and btrfs filesystems are read, and hold no OS.
    for i in [2, 5] {
        let p = r.partitions.iter().find(|p| p.index == i).expect("part");
        assert_eq!(p.status, PartStatus::Read, "{p:?}");
    }
    // A PV label without metadata belongs to no volume group: an error for that partition only.
    let pv = r.partitions.iter().find(|p| p.index == 6).expect("pv");
    assert_eq!(pv.status, PartStatus::Error);
    assert!(pv.reason.as_deref().is_some_and(|s| s.contains("LVM2")), "{:?}", pv.reason);
    assert_eq!(
        r.partitions.iter().find(|p| p.index == 2).and_then(|p| p.filesystem.as_ref()).and_then(|f| f.label.clone()),
        Some("data".into())
    );
    assert_eq!(r.root_partition, Some(7));
    assert_eq!(ours(&r.packages), dpkg_oracle(tree.path()));
}

#[test]
fn bare_ext4_without_partition_table() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = blank_image(work.path(), "bare.img", 32);
    mkfs_ext4(&img, 0, 32 * 1024 * 1024, Some(tree.path()), &[]);
    let r = scan_image(&img);
    assert_eq!(r.partition_table.as_ref().map(|t| t.scheme), Some(Scheme::None));
    assert_eq!(r.root_partition, Some(0));
    assert_eq!(ours(&r.packages), dpkg_oracle(tree.path()));
}

#[test]
fn ext2_and_ext3_are_read_too() {
    for (kind, flags) in [("ext2", &["-t", "ext2"][..]), ("ext3", &["-t", "ext3"][..])] {
        let tree = ubuntu_tree();
        let work = tempfile::tempdir().expect("tmp");
        let img = blank_image(work.path(), "e.img", 32);
        mkfs_ext4(&img, 0, 32 * 1024 * 1024, Some(tree.path()), flags);
        let r = scan_image(&img);
        assert_eq!(content(&r, 0).map(|c| c.name()), Some(kind));
        assert_eq!(r.packages.len(), 90, "{kind}");
    }
}

#[test]
fn rpm_databases_inside_ext4_images_match_rpm_oracle() {
    for (os_id, rel, fixture) in [
        ("rhel", "var/lib/rpm/Packages", "go-rpmdb/libuuid-bdb/Packages"),
        ("mariner", "var/lib/rpm/rpmdb.sqlite", "go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite"),
    ] {
        let t = Tree::new();
        t.os_release(os_id, "8", os_id).copy(rel, fixture);
        let work = tempfile::tempdir().expect("tmp");
        let img = gpt_efi_ext4(work.path(), t.path(), 512);
        let r = scan_image(&img);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(ours(&r.packages), rpm_oracle(&t.path().join("var/lib/rpm")), "{fixture}");
    }
    let t = Tree::new();
    t.os_release("sles", "15.3", "SLES").copy("usr/lib/sysimage/rpm/Packages.db", "go-rpmdb/sle15-bci-ndb/Packages.db");
    t.symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm");
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), t.path(), 512);
    let r = scan_image(&img);
    assert_eq!(r.packages.len(), 35, "{:?}", r.databases);
}

#[test]
fn ext4_journal_is_replayed_in_memory_and_the_image_is_never_written() {
    let t = Tree::new();
    t.put("etc/os-release", b"ID=stale\nVERSION_ID=1\n");
    let work = tempfile::tempdir().expect("tmp");
    let img = blank_image(work.path(), "journal.img", 32);
    mkfs_ext4(&img, 0, 32 * 1024 * 1024, Some(t.path()), &[]);
    // Find the data block of /etc/os-release, then commit a journal transaction (with v3
    // checksums, as the kernel writes on metadata_csum filesystems) that rewrites that block,
    // leaving the filesystem marked needs_recovery: the block on disk still says "stale".
    let stat = run(std::process::Command::new("debugfs").arg("-R").arg("stat /etc/os-release").arg(&img));
    let block: u64 = stat
        .lines()
        .skip_while(|l| !l.starts_with("EXTENTS:"))
        .nth(1)
        .and_then(|l| l.split(':').nth(1))
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or_else(|| panic!("no extent in debugfs output:\n{stat}"));
    let mut fresh = b"ID=fresh\nVERSION_ID=2\n".to_vec();
    fresh.resize(4096, 0);
    let blk = work.path().join("blk");
    std::fs::write(&blk, &fresh).expect("block");
    let cmds = work.path().join("cmds");
    std::fs::write(&cmds, format!("jo -c\njw -b {block} {}\njc\n", blk.display())).expect("cmds");
    run(std::process::Command::new("debugfs").arg("-w").arg("-f").arg(&cmds).arg(&img));
    let on_disk = run(std::process::Command::new("debugfs").arg("-R").arg("cat /etc/os-release").arg(&img));
    assert!(on_disk.contains("ID=stale"), "the block on disk must be the old one: {on_disk}");
    let before = std::fs::read(&img).expect("read");

    let r = scan_image(&img);
    assert_eq!(r.os.as_ref().map(|o| o.id.as_str()), Some("fresh"), "{:?}", r.partitions);
    assert_eq!(std::fs::read(&img).expect("read"), before, "the scan wrote to the image");
}

#[test]
fn bare_ntfs_and_vfat_disks_are_identified_and_not_mistaken_for_an_mbr() {
    let work = tempfile::tempdir().expect("tmp");
    let ntfs = blank_image(work.path(), "ntfs.img", 8);
    run(std::process::Command::new("mkntfs").args(["-q", "-F", "-Q", "-L", "win"]).arg(&ntfs));
    let vfat = blank_image(work.path(), "vfat.img", 8);
    run(std::process::Command::new("mkfs.vfat").args(["-n", "BOOT"]).arg(&vfat));
    for (img, want, status) in
        [(&ntfs, Content::Ntfs, PartStatus::Unsupported), (&vfat, Content::Vfat, PartStatus::Skipped)]
    {
        let r = scan_image(img);
        // Both boot sectors end in 0x55AA like an MBR; they must be read as bare filesystems.
        assert_eq!(r.partition_table.as_ref().map(|t| t.scheme), Some(Scheme::None), "{want:?}");
        assert_eq!(content(&r, 0), Some(want));
        assert_eq!(r.partitions[0].status, status);
    }
}
