//! File systems (`fs.`): partitions from fstab and systemd mount units, fstab parsing, and the file
//! walk (world-writable, SUID/SGID, unowned files) on hostile trees: hundreds of offenders, a tree
//! deeper than the walk goes, a huge sparse fstab.

use super::*;

#[test]
fn partitions_from_systemd_mount_units() {
    let t = base_ubuntu(&["bash"]);
    // tmp.mount enabled with options in a drop-in; home.mount present but not enabled;
    // var.mount masked.
    t.put(
        "usr/lib/systemd/system/tmp.mount",
        b"[Mount]\nWhat=tmpfs\nWhere=/tmp\nType=tmpfs\nOptions=mode=1777,strictatime\n",
    );
    t.put("etc/systemd/system/tmp.mount.d/cis.conf", b"[Mount]\nOptions=mode=1777,nosuid,nodev\n");
    t.symlink("etc/systemd/system/local-fs.target.wants/tmp.mount", "/usr/lib/systemd/system/tmp.mount");
    t.put("usr/lib/systemd/system/home.mount", b"[Mount]\nWhat=/dev/sdb1\nWhere=/home\n");
    t.symlink("etc/systemd/system/var.mount", "/dev/null");
    t.put(
        "etc/fstab",
        b"UUID=1 / ext4 defaults 0 1\nUUID=2 /var ext4 defaults 0 2\nUUID=3 /var/log ext4 defaults 0 2\n",
    );
    // An administrator's unit in /etc/systemd/system overrides the fstab line for /var/log.
    t.put(
        "etc/systemd/system/var-log.mount",
        b"[Unit]\nDescription=logs\n[Mount]\nWhat=/dev/vg/log\nWhere=/var/log\nOptions=nodev,nosuid,noexec\n",
    );
    let b = baseline_of(t.path());
    check_all(
        &b,
        &[
            (
                "fs.tmp_partition",
                Pass,
                Some("/etc/systemd/system/tmp.mount.d/cis.conf"),
                Some(2),
                "tmp.mount: What=tmpfs",
            ),
            (
                "fs.tmp_nodev",
                Pass,
                Some("/etc/systemd/system/tmp.mount.d/cis.conf"),
                Some(2),
                "Options=mode=1777,nosuid,nodev",
            ),
            ("fs.tmp_nosuid", Pass, None, None, ""),
            ("fs.tmp_noexec", Fail, Some("/etc/systemd/system/tmp.mount.d/cis.conf"), Some(2), "nosuid,nodev"),
            (
                "fs.home_partition",
                Fail,
                Some("/usr/lib/systemd/system/home.mount"),
                None,
                "home.mount present but not enabled",
            ),
            ("fs.var_partition", Fail, Some("/etc/systemd/system/var.mount"), None, "var.mount masked"),
            ("fs.var_nodev", Na, None, None, ""),
            (
                "fs.var_log_partition",
                Pass,
                Some("/etc/systemd/system/var-log.mount"),
                Some(6),
                "var-log.mount: What=/dev/vg/log",
            ),
            (
                "fs.var_log_noexec",
                Pass,
                Some("/etc/systemd/system/var-log.mount"),
                Some(6),
                "Options=nodev,nosuid,noexec",
            ),
        ],
    );
}

#[test]
fn fstab_specs_comments_escapes_and_noauto() {
    let t = base_ubuntu(&["bash"]);
    t.put(
        "etc/fstab",
        b"# <file system> <mount point> <type> <options> <dump> <pass>\n\n   # indented comment\nPARTUUID=5e1f-01\t/\text4\tdefaults\t0\t1\nLABEL=home\\040disk /home ext4 noauto,nodev 0 2\nUUID=77 /var/log/ ext4 nodev,nosuid,noexec,users,exec 0 2\nUUID=78 /var/log/audit ext4 nodev,owner 0 2\n",
    );
    let b = baseline_of(t.path());
    check_all(
        &b,
        &[
            ("fs.home_partition", Fail, Some("/etc/fstab"), Some(5), "LABEL=home disk /home noauto"),
            ("fs.var_log_partition", Pass, Some("/etc/fstab"), Some(6), "UUID=77 /var/log ext4"),
            // `users` implies noexec but the later `exec` cancels it.
            ("fs.var_log_noexec", Fail, Some("/etc/fstab"), Some(6), "users,exec"),
            ("fs.var_log_nosuid", Pass, Some("/etc/fstab"), Some(6), ""),
            // `owner` implies nosuid.
            ("fs.var_log_audit_nosuid", Pass, Some("/etc/fstab"), Some(7), "nodev,owner"),
            ("fs.var_log_audit_noexec", Fail, Some("/etc/fstab"), Some(7), "nodev,owner"),
        ],
    );
}

#[test]
fn many_world_writable_files_are_counted_and_capped() {
    let t = base_ubuntu(&["bash"]);
    for i in 0..60 {
        t.put_mode(&format!("srv/ww/f{i:03}"), "x", 0o666);
    }
    let b = baseline_of(t.path());
    let f = rule(&b, "fs.world_writable_files");
    assert_eq!(f.status, Fail);
    assert_eq!(f.evidence.iter().filter(|e| e.file.is_some()).count(), 50, "{f:#?}");
    assert!(
        f.evidence
            .iter()
            .any(|e| e.note.as_deref() == Some("60 found; only the first 50 are listed (capped at 50 per rule)")),
        "{f:#?}"
    );
}

#[test]
fn deep_tree_makes_the_walk_incomplete() {
    let t = base_ubuntu(&["bash"]);
    let deep: String = std::iter::repeat_n("d", 260).collect::<Vec<_>>().join("/");
    std::fs::create_dir_all(t.path().join("srv").join(&deep)).expect("deep dirs");
    let b = baseline_of(t.path());
    for id in ["fs.suid_files", "fs.world_writable_files", "fs.unowned_files"] {
        let f = rule(&b, id);
        assert_eq!(f.status, Error, "{f:#?}");
        assert!(
            f.evidence.iter().any(|e| e.note.as_deref().is_some_and(|n| n.contains("deeper than 256 levels"))),
            "{f:#?}"
        );
    }
}

#[test]
fn huge_sparse_fstab_errors_quickly() {
    let t = base_ubuntu(&["bash"]);
    let f = std::fs::File::create(t.path().join("etc/fstab")).expect("create");
    f.set_len(1024 * 1024 * 1024).expect("sparse 1 GiB");
    let start = Instant::now();
    let b = baseline_of(t.path());
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    for id in ["fs.tmp_partition", "fs.tmp_nodev", "fs.dev_shm_noexec", "fs.home_partition"] {
        let f = rule(&b, id);
        assert_eq!(f.status, Error, "{f:#?}");
        assert!(f.reason.as_deref().is_some_and(|r| r.contains("/etc/fstab") && r.contains("limit")), "{f:#?}");
    }
    assert!(b.stats.bytes_read < 64 * 1024 * 1024, "{:?}", b.stats);
}
