//! One instance's disks scanned together: the root's fstab mounts `/var` (holding the package
//! database) from a second disk, by UUID, by PARTUUID and by LABEL; a mount whose source is not
//! attached is reported missing; and the assembled tree is, entry for entry, what the kernel shows
//! when it mounts the same filesystems at the same places.

use std::path::Path;

use scanner_ami::disk::{Disk, Region};
use scanner_ami::fs::ext4::Ext4Fs;
use scanner_ami::fs::mounted::{Mount, MountedFs};
use scanner_ami::report::{MountStatus, PartStatus};
use scanner_ami::scan::{ScanOptions, scan_images};

use crate::difftree::{LoopMount, assert_same, walk_dir, walk_rootfs};
use crate::util::{Tree, blank_image, dpkg_oracle, mkfs_ext4, ours, sfdisk, ubuntu_tree};

const UUID_VAR: &str = "5e1f0c9a-7b2d-4c11-9a5e-3f1b2c4d5e6f";
const PARTUUID_HOME: &str = "9b6b3a1e-2c4d-4e5f-8a9b-0c1d2e3f4a5b";

/// Split the Ubuntu tree into a root without `/var`, a `/var` tree and a `/home` tree; the root's
/// fstab is `fstab`.
fn split_tree(fstab: &str) -> (Tree, Tree, Tree) {
    let full = ubuntu_tree();
    let root = Tree::new();
    root.os_release("ubuntu", "18.04", "Ubuntu 18.04.1 LTS").put("etc/fstab", fstab.as_bytes());
    root.symlink("etc/status", "/var/lib/dpkg/status");
    std::fs::create_dir_all(root.path().join("var")).expect("mount point /var");
    std::fs::create_dir_all(root.path().join("home")).expect("mount point /home");
    std::fs::write(root.path().join("var/hidden-under-the-mount"), b"not visible when /var is mounted").expect("w");
    let var = Tree::new();
    crate::util::sh(&format!("cp -a '{}/var/.' '{}/'", full.path().display(), var.path().display()));
    let home = Tree::new();
    home.put("alice/notes.txt", b"hello");
    (root, var, home)
}

fn packages_of(r: &scanner_ami::report::Report) -> std::collections::BTreeSet<String> {
    ours(&r.packages)
}

#[test]
fn var_on_a_second_disk_is_assembled_by_uuid_and_partuuid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fstab = format!(
        "# root\nLABEL=cloudimg-rootfs / ext4 defaults 0 1\nUUID={UUID_VAR} /var ext4 defaults 0 2\n\
         PARTUUID={PARTUUID_HOME} /home ext4 nodev 0 2\nLABEL=not-attached /data ext4 defaults 0 2\n\
         /dev/xvdh1 /srv ext4 defaults 0 2\ntmpfs /tmp tmpfs defaults 0 0\n"
    );
    let (root, var, home) = split_tree(&fstab);
    // Disk 1: a bare ext4 root. Disk 2: GPT with /var (partition 1) and /home (partition 2).
    let disk1 = blank_image(dir.path(), "root.img", 64);
    mkfs_ext4(&disk1, 0, 64 << 20, Some(root.path()), &["-L", "cloudimg-rootfs"]);
    let disk2 = blank_image(dir.path(), "data.img", 80);
    sfdisk(
        &disk2,
        &format!(
            "label: gpt\nstart=2048, size=65536, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n\
             start=67584, size=65536, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid={PARTUUID_HOME}\n"
        ),
    );
    mkfs_ext4(&disk2, 2048 * 512, 65536 * 512, Some(var.path()), &["-U", UUID_VAR]);
    mkfs_ext4(&disk2, 67584 * 512, 65536 * 512, Some(home.path()), &[]);

    let reports = scan_images(&[&disk1, &disk2], ScanOptions::default()).expect("scan");
    let [r1, r2] = reports.as_slice() else { panic!("two reports") };
    // The package database lives on the second disk; the inventory is the root's.
    let full = ubuntu_tree();
    assert_eq!(packages_of(r1), dpkg_oracle(full.path()));
    assert_eq!(r1.packages.len(), 90);
    assert_eq!(r1.root_volume.as_deref(), Some(disk1.display().to_string().as_str()));
    let status = |t: &str| r1.mounts.iter().find(|m| m.target == t).map(|m| (m.status, m.volume.clone()));
    assert_eq!(status("/var"), Some((MountStatus::Assembled, Some(format!("{} partition 1", disk2.display())))));
    assert_eq!(status("/home"), Some((MountStatus::Assembled, Some(format!("{} partition 2", disk2.display())))));
    assert_eq!(status("/data").map(|s| s.0), Some(MountStatus::Missing));
    assert_eq!(status("/srv").map(|s| s.0), Some(MountStatus::Missing));
    assert_eq!(status("/tmp").map(|s| s.0), Some(MountStatus::Skipped));
    // Missing mounts make the result incomplete, and say why.
    assert!(
        r1.errors.iter().any(|e| e.contains("/data") && e.contains("not among the attached disks")),
        "{:?}",
        r1.errors
    );
    assert!(r1.errors.iter().any(|e| e.contains("/srv") && e.contains("kernel device name")), "{:?}", r1.errors);
    // The second disk: no OS of its own, no error for that, its partitions assembled into the root.
    assert!(r2.packages.is_empty());
    assert_eq!(r2.assembled_into.as_deref(), Some(disk1.display().to_string().as_str()));
    assert!(r2.errors.is_empty(), "{:?}", r2.errors);
    assert!(r2.partitions.iter().all(|p| p.status == PartStatus::Assembled), "{:?}", r2.partitions);
}

#[test]
fn a_data_disk_alone_still_reports_no_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = Tree::new();
    data.put("pg/PG_VERSION", b"15\n");
    let img = blank_image(dir.path(), "data.img", 16);
    mkfs_ext4(&img, 0, 16 << 20, Some(data.path()), &[]);
    let reports = scan_images(&[&img], ScanOptions::default()).expect("scan");
    assert!(reports[0].errors.iter().any(|e| e.contains("no partition holds a readable OS root")));
}

fn ext4_of(img: &Path, offset: u64, size: u64) -> Ext4Fs {
    let disk = std::sync::Arc::new(Disk::open(img).expect("open"));
    Ext4Fs::load(Region::new(disk, offset, size).expect("region")).expect("ext4")
}

/// The kernel as the oracle of the assembled tree: mount the root, then `/var` and `/home` on it
/// (read-only loop mounts), walk it; our `MountedFs` of the same filesystems gives the same entries.
#[test]
fn assembled_tree_equals_the_kernels_mounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, var, home) = split_tree("");
    let disk1 = blank_image(dir.path(), "root.img", 64);
    mkfs_ext4(&disk1, 0, 64 << 20, Some(root.path()), &[]);
    let disk2 = blank_image(dir.path(), "var.img", 64);
    mkfs_ext4(&disk2, 0, 64 << 20, Some(var.path()), &[]);
    let disk3 = blank_image(dir.path(), "home.img", 16);
    mkfs_ext4(&disk3, 0, 16 << 20, Some(home.path()), &[]);

    let kroot = LoopMount::new(&disk1, "ext4", 0, "noload");
    let kvar = LoopMount::new(&disk2, "ext4", 0, "noload");
    let khome = LoopMount::new(&disk3, "ext4", 0, "noload");
    // What the kernel shows with /var and /home mounted on the root: the root's entries outside
    // the mount points, and each mounted filesystem's entries under its mount point (its own root
    // directory standing for the mount point).
    let mut kernel = walk_dir(&kroot.path());
    kernel.retain(|p, _| !["/var", "/home"].iter().any(|m| p == m || p.starts_with(&format!("{m}/"))));
    for (m, k) in [("/var", &kvar), ("/home", &khome)] {
        for (p, e) in walk_dir(&k.path()) {
            kernel.insert(if p == "/" { m.to_owned() } else { format!("{m}{p}") }, e);
        }
    }

    let fs = MountedFs::new(
        Box::new(ext4_of(&disk1, 0, 64 << 20)),
        vec![
            Mount { target: "/var".into(), fs: Box::new(ext4_of(&disk2, 0, 64 << 20)) },
            Mount { target: "/home".into(), fs: Box::new(ext4_of(&disk3, 0, 16 << 20)) },
        ],
    );
    let ours = walk_rootfs(&fs);
    assert_same(&kernel, &ours, "root + /var + /home");
    assert!(ours.contains_key("/var/lib/dpkg/status"));
    assert!(!ours.contains_key("/var/hidden-under-the-mount"));
    // A symlink on the root that points into /var resolves across the mount.
    assert_eq!(
        scanner_ami::fs::read_file(&fs, "/etc/status", 1 << 20).expect("read").len() as u64,
        std::fs::metadata(var.path().join("lib/dpkg/status")).expect("stat").len()
    );
}

/// A LUKS volume is listed as encrypted without a key, and is no error for the rest of the disk.
#[test]
fn a_luks_partition_is_listed_and_the_root_beside_it_is_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = ubuntu_tree();
    let img = blank_image(dir.path(), "luks.img", 48);
    sfdisk(
        &img,
        "label: gpt\nstart=2048, size=16384, type=CA7D7CCB-63ED-4C53-861C-1742536059CC\n\
         start=18432, size=77824, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
    );
    // A LUKS2 header as cryptsetup writes it: magic, version 2, then the label at 24.
    let mut hdr = vec![0u8; 4096];
    hdr[..6].copy_from_slice(b"LUKS\xba\xbe");
    hdr[6..8].copy_from_slice(&2u16.to_be_bytes());
    hdr[24..32].copy_from_slice(b"cryptvar");
    let h = dir.path().join("hdr");
    std::fs::write(&h, &hdr).expect("header");
    crate::util::dd_at(&h, &img, 2048 * 512);
    mkfs_ext4(&img, 18432 * 512, 77824 * 512, Some(tree.path()), &[]);
    let reports = scan_images(&[&img], ScanOptions::default()).expect("scan");
    let r = &reports[0];
    let luks = r.partitions.iter().find(|p| p.index == 1).expect("luks partition");
    assert_eq!(luks.status, PartStatus::Unsupported);
    assert!(luks.reason.as_deref().is_some_and(|s| s.contains("encrypted, no key")), "{:?}", luks.reason);
    assert_eq!(r.root_partition, Some(2));
    assert_eq!(packages_of(r), dpkg_oracle(tree.path()));
    assert!(r.errors.is_empty(), "an encrypted volume is no error for the rest: {:?}", r.errors);
}
