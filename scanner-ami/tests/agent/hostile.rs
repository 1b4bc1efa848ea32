//! Hostile disks: each damage gives a clear error for that part, the rest of the scan goes on,
//! and nothing panics.

use std::io::{Seek, SeekFrom, Write};

use scanner_ami::disk::table::Scheme;
use scanner_ami::report::PartStatus;

use crate::util::{Tree, blank_image, gpt_efi_ext4, mkfs_ext4, scan_image, scan_root, ubuntu_tree};

fn patch(img: &std::path::Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(img).expect("open");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.write_all(bytes).expect("write");
}

#[test]
fn truncated_image_reports_partition_past_end() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), tree.path(), 512);
    let len = std::fs::metadata(&img).expect("meta").len();
    std::fs::OpenOptions::new().write(true).open(&img).expect("open").set_len(len / 2).expect("truncate");
    let r = scan_image(&img);
    // The backup GPT is gone with the tail but the primary is intact; the root lies past the end.
    assert_eq!(r.partition_table.as_ref().map(|t| t.scheme), Some(Scheme::Gpt));
    let root = r.partitions.iter().find(|p| p.index == 2).expect("root entry listed");
    assert_eq!(root.status, PartStatus::Error);
    assert!(root.reason.as_deref().is_some_and(|s| s.contains("past the end")), "{:?}", root.reason);
    assert_eq!(r.partitions.iter().find(|p| p.index == 1).map(|p| p.status), Some(PartStatus::Skipped));
    assert!(!r.is_complete());
}

#[test]
fn zeroed_superblock_is_an_unreadable_partition_not_a_crash() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), tree.path(), 512);
    patch(&img, 9 * 1024 * 1024 + 1024, &[0u8; 1024]);
    let r = scan_image(&img);
    assert_eq!(r.partitions.len(), 2);
    assert!(r.root_partition.is_none());
    assert!(r.errors.iter().any(|e| e.contains("no partition holds a readable OS root")), "{:?}", r.errors);
}

#[test]
fn corrupt_superblock_fields_give_a_partition_error() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), tree.path(), 512);
    // Keep the magic, wreck the block-size and inodes-per-group fields.
    let sb = 9 * 1024 * 1024 + 1024;
    patch(&img, sb + 24, &[0xff, 0xff, 0xff, 0x7f]);
    patch(&img, sb + 40, &[0, 0, 0, 0]);
    let r = scan_image(&img);
    let root = r.partitions.iter().find(|p| p.index == 2).expect("listed");
    assert_eq!(root.status, PartStatus::Error, "{root:?}");
    assert!(root.reason.as_deref().is_some_and(|s| s.contains("unreadable")), "{:?}", root.reason);
}

#[test]
fn both_gpt_headers_corrupt_falls_through_to_an_error_and_no_panic() {
    let tree = ubuntu_tree();
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), tree.path(), 512);
    let len = std::fs::metadata(&img).expect("meta").len();
    patch(&img, 512 + 16, &[1, 2, 3, 4]);
    patch(&img, len - 512 + 16, &[1, 2, 3, 4]);
    let r = scan_image(&img);
    let t = r.partition_table.as_ref().expect("table");
    assert!(t.warnings.iter().any(|w| w.contains("GPT")), "{:?}", t.warnings);
    assert!(r.root_partition.is_none());
    assert!(!r.is_complete());
}

#[test]
fn sparse_100_gib_file_is_scanned_quickly_without_reading_it() {
    let work = tempfile::tempdir().expect("tmp");
    let img = blank_image(work.path(), "huge.img", 100 * 1024);
    let r = scan_image(&img);
    assert_eq!(r.partitions.len(), 1);
    assert_eq!(r.partitions[0].status, PartStatus::Skipped);
    let read = r.stats.bytes_read.expect("bytes");
    assert!(read < 1024 * 1024, "read {read} bytes of a 100 GiB sparse file");
}

#[test]
fn symlink_loops_and_escapes_stay_inside_the_root() {
    let t = Tree::new();
    t.symlink("etc/os-release", "/etc/loop-a")
        .symlink("etc/loop-a", "/etc/loop-b")
        .symlink("etc/loop-b", "/etc/os-release");
    // usr/lib/os-release escapes with ../../../ and an absolute link to the host's /etc.
    t.symlink("usr/lib/os-release", "../../../../../../../../etc/os-release-host");
    t.put("etc/os-release-host", b"ID=inside\nVERSION_ID=1\n");
    t.symlink("var/lib/dpkg", "/../../../../var/lib/dpkg");
    let r = scan_root(t.path());
    // The loop is refused; the `..` escape is clamped at the scanned root, so it resolves to the
    // tree's own etc/os-release-host, never the scanner's.
    assert_eq!(r.os.as_ref().map(|o| o.id.as_str()), Some("inside"));
    // var/lib/dpkg points at itself after clamping: no database, no host packages.
    assert!(r.packages.is_empty(), "read the scanner's own dpkg database: {} packages", r.packages.len());

    let work = tempfile::tempdir().expect("tmp");
    let img = blank_image(work.path(), "links.img", 16);
    mkfs_ext4(&img, 0, 16 * 1024 * 1024, Some(t.path()), &[]);
    let r = scan_image(&img);
    assert_eq!(r.os.as_ref().map(|o| o.id.as_str()), Some("inside"));
    assert!(r.packages.is_empty());
}

#[test]
fn corrupt_bdb_page_and_garbage_dpkg_status_inside_an_image() {
    let t = Tree::new();
    t.os_release("rhel", "8", "RHEL 8");
    let mut bdb = std::fs::read(crate::util::fixtures().join("go-rpmdb/libuuid-bdb/Packages")).expect("fixture");
    // Wreck everything after the metadata page.
    let page = 4096.min(bdb.len());
    for (i, b) in bdb.iter_mut().enumerate().skip(page) {
        *b = (i as u8).wrapping_mul(31) ^ 0x5a;
    }
    t.put("var/lib/rpm/Packages", &bdb);
    let mut garbage = Vec::new();
    for i in 0..20_000u32 {
        garbage.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
    }
    t.put("var/lib/dpkg/status", &garbage);
    let work = tempfile::tempdir().expect("tmp");
    let img = blank_image(work.path(), "bad.img", 16);
    mkfs_ext4(&img, 0, 16 * 1024 * 1024, Some(t.path()), &[]);
    let r = scan_image(&img);
    assert_eq!(r.os.as_ref().map(|o| o.id.as_str()), Some("rhel"));
    assert!(r.packages.is_empty(), "{:?}", r.packages);
    let rpm = r.databases.iter().find(|d| d.path == "/var/lib/rpm/Packages").expect("bdb listed");
    assert!(rpm.error.is_some() || !rpm.skipped.is_empty(), "{rpm:?}");
    let dpkg = r.databases.iter().find(|d| d.path == "/var/lib/dpkg/status").expect("status listed");
    assert_eq!(dpkg.packages, 0);
}

#[test]
fn random_bytes_images_never_panic() {
    let work = tempfile::tempdir().expect("tmp");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..24 {
        let mut bytes = vec![0u8; 2 * 1024 * 1024];
        for b in &mut bytes {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        // Plant signatures so the parsers behind them run on garbage.
        match round % 4 {
            0 => {
                bytes[510] = 0x55;
                bytes[511] = 0xAA;
                bytes[446] = 0;
                bytes[450] = 0x83;
            }
            1 => bytes[512..520].copy_from_slice(b"EFI PART"),
            2 => {
                bytes[1024 + 56] = 0x53;
                bytes[1024 + 57] = 0xEF;
            }
            _ => {}
        }
        let img = work.path().join(format!("r{round}.img"));
        std::fs::write(&img, &bytes).expect("write");
        let _ = scan_image(&img);
    }
}
