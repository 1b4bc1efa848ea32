//! The boot loader (`boot.`): RHEL grub user.cfg, BLS entries and packages, and an EFI-only layout
//! where the grub rules do not apply.

use super::*;

#[test]
fn rhel_grub_user_cfg_bls_entries_and_packages() {
    let t = Tree::new();
    t.os_release("rhel", "9.2", "Red Hat Enterprise Linux 9.2 (Plow)");
    t.copy("var/lib/rpm/rpmdb.sqlite", "go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite");
    t.put("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    t.put("etc/group", b"root:x:0:\n");
    let cfg = "### BEGIN /etc/grub.d/01_users ###\nif [ -f ${prefix}/user.cfg ]; then\n  source ${prefix}/user.cfg\n  if [ -n \"${GRUB2_PASSWORD}\" ]; then\n    set superusers=\"root\"\n    export superusers\n    password_pbkdf2 root ${GRUB2_PASSWORD}\n  fi\nfi\nblscfg\n";
    t.put_mode("boot/grub2/grub.cfg", cfg, 0o600);
    t.put("boot/loader/entries/abc-5.14.0.conf", b"title Red Hat\nlinux /vmlinuz-5.14.0\noptions root=/dev/mapper/rhel-root ro audit=1 audit_backlog_limit=4096\n");
    t.put("etc/default/grub", b"GRUB_CMDLINE_LINUX=\"crashkernel=auto audit=1 audit_backlog_limit=8192\"\n");
    t.put("etc/audit/auditd.conf", b"max_log_file = 8\n");
    t.put("etc/audit/rules.d/x.rules", b"-w /etc/sysconfig/network -p wa\n");
    let b = baseline_of(t.path());
    check_all(
        &b,
        &[
            ("boot.grub_password", Fail, Some("/boot/grub2/user.cfg"), None, "absent"),
            ("boot.grub_cfg_permissions", Pass, Some("/boot/grub2/grub.cfg"), None, "0600"),
            ("audit.installed", Pass, Some("/var/lib/rpm/rpmdb.sqlite"), None, "audit "),
            ("audit.boot_audit_arg", Pass, Some("/boot/loader/entries/abc-5.14.0.conf"), Some(3), "audit=1"),
            (
                "audit.backlog_limit",
                Fail,
                Some("/boot/loader/entries/abc-5.14.0.conf"),
                Some(3),
                "audit_backlog_limit=4096",
            ),
            ("audit.max_log_file", Pass, Some("/etc/audit/auditd.conf"), Some(1), "max_log_file = 8"),
            (
                "audit.system_locale",
                Fail,
                Some("/etc/audit/rules.d/x.rules"),
                Some(1),
                "-w /etc/sysconfig/network -p wa",
            ),
            ("audit.mac_policy", Fail, None, None, "no watch on /etc/selinux"),
            ("cron.enabled", Fail, None, None, "none of cronie is installed"),
            ("svc.http_server_removed", Pass, None, None, "none of httpd, nginx is installed"),
        ],
    );
    t.put("boot/grub2/user.cfg", b"GRUB2_PASSWORD=grub.pbkdf2.sha512.10000.AABB.CCDD\n");
    let b = baseline_of(t.path());
    check(&b, &("boot.grub_password", Pass, Some("/boot/grub2/user.cfg"), Some(1), "GRUB2_PASSWORD=grub.pbkdf2."));
    check(&b, &("boot.grub_password", Pass, Some("/boot/grub2/grub.cfg"), Some(5), "set superusers=\"root\""));
}

#[test]
fn efi_only_layout_makes_grub_rules_not_applicable() {
    let t = base_ubuntu(&["bash"]);
    t.put("boot/efi/EFI/ubuntu/grub.cfg", b"search.fs_uuid 1234 root\nconfigfile $prefix/grub.cfg\n");
    let b = baseline_of(t.path());
    for id in ["boot.grub_password", "boot.grub_cfg_permissions", "boot.grub_cfg_owner"] {
        let f = rule(&b, id);
        assert_eq!(f.status, Na, "{f:#?}");
        assert!(f.reason.as_deref().is_some_and(|r| r.contains("/boot/efi/EFI/ubuntu/grub.cfg")), "{f:#?}");
    }
}
