//! Kernel parameters and modules (the `kernel.` and `net.` sysctls, `fs.module_*`): sysctl
//! precedence, masking and key forms, modprobe overrides and the RHEL blacklist, a binary
//! sysctl.conf, and symlinks out of the root and loops in sysctl.d and modprobe.d.

use super::*;

#[test]
fn sysctl_precedence_masking_and_key_forms() {
    let t = base_ubuntu(&["bash"]);
    // Same file name: /etc wins over /usr/lib.
    t.put("usr/lib/sysctl.d/50-default.conf", b"net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.accept_redirects = 1\n");
    t.put("etc/sysctl.d/50-default.conf", b"# local override\nnet.ipv4.ip_forward = 0\n");
    // /run masks /usr/lib too, and files sort by name across directories: 70 after 60.
    t.put("usr/lib/sysctl.d/70-x.conf", b"net.ipv4.tcp_syncookies = 0\n");
    t.put("run/sysctl.d/70-x.conf", b"net.ipv4.tcp_syncookies = 1\n");
    t.put("etc/sysctl.d/60-a.conf", b"net/ipv4/tcp_syncookies = 0\n");
    // A /dev/null symlink masks the vendor file entirely.
    t.put("usr/lib/sysctl.d/10-aslr.conf", b"kernel.randomize_va_space = 0\n");
    t.symlink("etc/sysctl.d/10-aslr.conf", "/dev/null");
    // Slash-separated keys and `-` prefixes; globs with exclusions (systemd's 50-default.conf).
    t.put("etc/sysctl.d/80-slash.conf", b"-net/ipv4/icmp_echo_ignore_broadcasts = 1\n");
    t.put(
        "usr/lib/sysctl.d/90-glob.conf",
        b"net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 1\n-net.ipv4.conf.all.rp_filter\nnet.ipv4.conf.*.log_martians = 1\n",
    );
    // /etc/sysctl.conf is read last and wins; the 99-sysctl.conf symlink to it is not read twice.
    t.put("etc/sysctl.conf", b"net.ipv4.conf.all.secure_redirects = 1\nnet.ipv4.conf.all.accept_redirects = 0\n");
    t.put("etc/sysctl.d/99-z.conf", b"net.ipv4.conf.all.secure_redirects = 0\n");
    t.symlink("etc/sysctl.d/99-sysctl.conf", "../sysctl.conf");
    let b = baseline_of(t.path());
    check_all(
        &b,
        &[
            ("net.ip_forward", Pass, Some("/etc/sysctl.d/50-default.conf"), Some(2), "net.ipv4.ip_forward = 0"),
            ("net.tcp_syncookies", Pass, Some("/run/sysctl.d/70-x.conf"), Some(1), "net.ipv4.tcp_syncookies = 1"),
            (
                "net.tcp_syncookies",
                Pass,
                Some("/etc/sysctl.d/60-a.conf"),
                Some(1),
                "overridden by /run/sysctl.d/70-x.conf:1",
            ),
            ("kernel.randomize_va_space", Fail, None, None, "not set in any sysctl configuration file"),
            (
                "net.icmp_echo_ignore_broadcasts",
                Pass,
                Some("/etc/sysctl.d/80-slash.conf"),
                Some(1),
                "net/ipv4/icmp_echo_ignore_broadcasts = 1",
            ),
            ("net.default_rp_filter", Fail, Some("/usr/lib/sysctl.d/90-glob.conf"), Some(1), "= 2"),
            (
                "net.all_rp_filter",
                Fail,
                Some("/usr/lib/sysctl.d/90-glob.conf"),
                Some(3),
                "-net.ipv4.conf.all.rp_filter",
            ),
            (
                "net.all_log_martians",
                Pass,
                Some("/usr/lib/sysctl.d/90-glob.conf"),
                Some(4),
                "net.ipv4.conf.*.log_martians = 1",
            ),
            ("net.all_log_martians", Pass, None, None, "set by the glob"),
            ("net.all_secure_redirects", Fail, Some("/etc/sysctl.conf"), Some(1), "= 1"),
            ("net.all_accept_redirects", Pass, Some("/etc/sysctl.conf"), Some(2), "= 0"),
        ],
    );
    // The masked vendor file is reported, and sysctl.conf appears once, last.
    let f = rule(&b, "net.ip_forward");
    assert!(
        f.evidence.iter().any(|e| e.file.as_deref() == Some("/usr/lib/sysctl.d/50-default.conf")
            && e.note.as_deref().is_some_and(|n| n.contains("masked by /etc/sysctl.d/50-default.conf"))),
        "{f:#?}"
    );
    let f = rule(&b, "net.all_secure_redirects");
    assert_eq!(f.evidence.iter().filter(|e| e.file.as_deref() == Some("/etc/sysctl.conf")).count(), 1, "{f:#?}");
}

#[test]
fn modprobe_overrides_by_file_name_and_rhel_blacklist() {
    let t = base_ubuntu(&["bash"]);
    // /etc masks the same-named vendor file; /lib files apply when not masked.
    t.put("usr/lib/modprobe.d/cis.conf", b"install hfs /bin/false\nblacklist hfs\n");
    t.put("etc/modprobe.d/cis.conf", b"# emptied by the admin\n");
    t.put("lib/modprobe.d/other.conf", b"install jffs2 /bin/true\nblacklist jffs2\n");
    // The first matching install wins, even if a later one disables the module.
    t.put("etc/modprobe.d/00-first.conf", b"install udf /sbin/modprobe --ignore-install udf\n");
    t.put("etc/modprobe.d/99-last.conf", b"install udf /bin/false\nblacklist udf\n");
    // Continuation lines and the merged-/usr path of false.
    t.put("etc/modprobe.d/50-squash.conf", b"install squashfs \\\n  /usr/bin/false\n");
    let b = baseline_of(t.path());
    check_all(
        &b,
        &[
            ("fs.module_hfs_disabled", Fail, None, None, "no `install hfs` directive"),
            ("fs.module_jffs2_disabled", Pass, Some("/lib/modprobe.d/other.conf"), Some(1), "install jffs2 /bin/true"),
            (
                "fs.module_udf_disabled",
                Fail,
                Some("/etc/modprobe.d/00-first.conf"),
                Some(1),
                "install udf /sbin/modprobe",
            ),
            ("fs.module_squashfs_disabled", Pass, Some("/etc/modprobe.d/50-squash.conf"), Some(1), "/usr/bin/false"),
        ],
    );
    let f = rule(&b, "fs.module_hfs_disabled");
    assert!(!f.evidence.iter().any(|e| e.file.as_deref() == Some("/usr/lib/modprobe.d/cis.conf")), "{f:#?}");
    // On RHEL the blacklist is required too (SSG's RHEL 9 check).
    let r = Tree::new();
    r.os_release("rhel", "9.2", "Red Hat Enterprise Linux 9.2 (Plow)");
    r.put("etc/modprobe.d/cis.conf", b"install squashfs /bin/false\ninstall udf /bin/false\nblacklist udf\n");
    let b = baseline_of(r.path());
    check_all(
        &b,
        &[
            ("fs.module_squashfs_disabled", Fail, None, None, "SSG's RHEL 9 check requires both"),
            ("fs.module_udf_disabled", Pass, Some("/etc/modprobe.d/cis.conf"), Some(3), "blacklist udf"),
        ],
    );
}

#[test]
fn binary_sysctl_conf_makes_sysctl_rules_error() {
    let t = base_ubuntu(&["bash"]);
    t.put("etc/sysctl.conf", b"\x7fELF\x02\x01\x01\x00\x00\x00net.ipv4.ip_forward=0\xff\xfe\n");
    let b = baseline_of(t.path());
    for (id, ..) in SYSCTLS {
        let f = rule(&b, id);
        assert_eq!(f.status, Error, "{f:#?}");
        assert!(f.reason.as_deref().is_some_and(|r| r.contains("/etc/sysctl.conf: binary data")), "{f:#?}");
    }
}

#[test]
fn symlinks_out_of_the_root_and_loops_are_contained() {
    let outside = tempfile::tempdir().expect("tmp");
    std::fs::write(outside.path().join("evil.conf"), b"net.ipv4.ip_forward = 0\nkernel.randomize_va_space = 2\n")
        .expect("write");
    let t = base_ubuntu(&["bash"]);
    // An absolute link to a host path: resolved inside the root, where it does not exist.
    t.symlink("etc/sysctl.d/10-evil.conf", &outside.path().join("evil.conf").display().to_string());
    // A relative link climbing out of the root stays at the root.
    t.symlink("etc/sysctl.d/20-up.conf", "../../../../../../../../../../etc/hostname-missing");
    let b = baseline_of(t.path());
    check(&b, &("net.ip_forward", Fail, None, None, "not set in any sysctl configuration file"));
    check(&b, &("kernel.randomize_va_space", Fail, None, None, "not set"));
    // A symlink loop: the file cannot be read, so the sysctl rules say why instead of guessing.
    t.symlink("etc/sysctl.d/30-loop.conf", "30-loop.conf");
    t.symlink("etc/modprobe.d/a.conf", "b.conf");
    t.symlink("etc/modprobe.d/b.conf", "a.conf");
    // Loops in the walked tree are never followed.
    t.symlink("srv/root", "/");
    t.symlink("srv/self", ".");
    let start = Instant::now();
    let b = baseline_of(t.path());
    assert!(start.elapsed() < Duration::from_secs(20));
    let f = rule(&b, "net.ip_forward");
    assert_eq!(f.status, Error, "{f:#?}");
    assert!(f.reason.as_deref().is_some_and(|r| r.contains("30-loop.conf")), "{f:#?}");
    let f = rule(&b, "fs.module_cramfs_disabled");
    assert_eq!(f.status, Error, "{f:#?}");
    assert!(f.reason.as_deref().is_some_and(|r| r.contains("/etc/modprobe.d/")), "{f:#?}");
    check(&b, &("fs.world_writable_files", Pass, None, None, "entries examined"));
    assert!(b.stats.files_visited < 500, "{:?}", b.stats);
}
