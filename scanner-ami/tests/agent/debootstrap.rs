//! A real Debian bookworm root made by `debootstrap --variant=minbase` (cached by
//! scripts/setup-test-env.sh), written into a GPT + ext4 image and scanned: the package set must
//! equal `dpkg-query`'s exactly.

use scanner_ami::baseline::Status::{self, Fail, NotApplicable, Pass};

use crate::util::{dpkg_oracle, gpt_efi_ext4, ours};

#[test]
#[ignore = "needs the debootstrap tree of scripts/setup-test-env.sh (AGENTLESS_DEBOOTSTRAP_ROOT)"]
fn debian_bookworm_image_matches_dpkg_query_exactly() {
    let root = std::env::var("AGENTLESS_DEBOOTSTRAP_ROOT")
        .expect("AGENTLESS_DEBOOTSTRAP_ROOT must name the debootstrap tree (scripts/setup-test-env.sh)");
    let root = std::path::Path::new(&root);
    let work = tempfile::tempdir().expect("tmp");
    let img = gpt_efi_ext4(work.path(), root, 512);
    // The OS inventory alone (its cost is what the 1% bound is about; the application walk's is
    // measured by tests/agent/apps.rs and scripts/bench-apps.sh).
    let r = scanner_ami::scan::scan_image(&img, scanner_ami::scan::ScanOptions { no_apps: true, ..Default::default() })
        .expect("image opens");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.os.as_ref().map(|o| o.distro()), Some("debian-12".into()));
    let oracle = dpkg_oracle(root);
    assert!(oracle.len() > 80, "debootstrap tree looks incomplete: {} packages", oracle.len());
    assert_eq!(ours(&r.packages), oracle);
    let allocated = std::fs::metadata(&img).map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512).expect("meta");
    let read = r.stats.bytes_read.expect("bytes");
    assert!(read * 100 <= allocated, "read {read} bytes, more than 1% of {allocated} allocated");
}

/// Every rule's expected result on the debootstrap root (bookworm minbase + openssh-server, cron,
/// login, passwd), each group with why. Reviewed by hand against the tree; OpenSCAP's agreement
/// on the shared rules is reported by scripts/oscap-crosscheck.sh.
const DEBIAN_BASELINE: &[(&str, Status)] = &[
    // minbase ships no modprobe.d `install <m> /bin/false` lines
    ("fs.module_cramfs_disabled", Fail),
    ("fs.module_freevxfs_disabled", Fail),
    ("fs.module_jffs2_disabled", Fail),
    ("fs.module_hfs_disabled", Fail),
    ("fs.module_hfsplus_disabled", Fail),
    ("fs.module_udf_disabled", Fail),
    ("fs.module_squashfs_disabled", Fail),
    ("fs.module_usb-storage_disabled", Fail),
    // debootstrap writes no fstab entries and no .mount units
    ("fs.tmp_partition", Fail),
    // not a separate mount in the tree (no fstab, no mount units)
    ("fs.var_partition", Fail),
    ("fs.var_tmp_partition", Fail),
    ("fs.var_log_partition", Fail),
    ("fs.var_log_audit_partition", Fail),
    // debootstrap writes no fstab entries and no .mount units
    ("fs.home_partition", Fail),
    // /tmp is not a separate mount, so its options do not apply
    ("fs.tmp_nodev", NotApplicable),
    ("fs.tmp_nosuid", NotApplicable),
    ("fs.tmp_noexec", NotApplicable),
    // no fstab line for /dev/shm: systemd's built-in options are not visible offline
    ("fs.dev_shm_nodev", Fail),
    ("fs.dev_shm_nosuid", Fail),
    ("fs.dev_shm_noexec", Fail),
    // not a separate mount in the tree (no fstab, no mount units)
    ("fs.var_nodev", NotApplicable),
    ("fs.var_nosuid", NotApplicable),
    ("fs.var_tmp_nodev", NotApplicable),
    ("fs.var_tmp_nosuid", NotApplicable),
    ("fs.var_tmp_noexec", NotApplicable),
    ("fs.var_log_nodev", NotApplicable),
    ("fs.var_log_nosuid", NotApplicable),
    ("fs.var_log_noexec", NotApplicable),
    ("fs.var_log_audit_nodev", NotApplicable),
    ("fs.var_log_audit_nosuid", NotApplicable),
    ("fs.var_log_audit_noexec", NotApplicable),
    // /home is not a separate mount, so its options do not apply
    ("fs.home_nodev", NotApplicable),
    ("fs.home_nosuid", NotApplicable),
    // a fresh debootstrap tree has /tmp and /var/tmp 1777 and no world-writable files
    ("fs.world_writable_dirs_sticky", Pass),
    ("fs.world_writable_files", Pass),
    // every file belongs to an account of the image's passwd/group
    ("fs.unowned_files", Pass),
    ("fs.ungrouped_files", Pass),
    // inventory for manual review (9 setuid, 5 setgid binaries from login/passwd/openssh)
    ("fs.suid_files", Pass),
    ("fs.sgid_files", Pass),
    // minbase installs no boot loader: no grub.cfg in the tree
    ("boot.grub_password", NotApplicable),
    ("boot.grub_cfg_permissions", NotApplicable),
    ("boot.grub_cfg_owner", NotApplicable),
    // no sysctl.d file or limits line persists the setting (SSG requires it configured)
    ("kernel.randomize_va_space", Fail),
    ("kernel.suid_dumpable", Fail),
    ("kernel.core_hard_limit", Fail),
    // systemd-coredump is not installed
    ("kernel.coredump_storage", NotApplicable),
    ("kernel.coredump_backtraces", NotApplicable),
    // prelink is not installed
    ("kernel.prelink_removed", Pass),
    // Debian's motd names the OS
    ("banner.motd_content", Fail),
    // Debian's issue files name the OS (and use \l escapes in /etc/issue)
    ("banner.issue_content", Fail),
    ("banner.issue_net_content", Fail),
    // Debian ships motd/issue/issue.net 0644 root:root
    ("banner.motd_permissions", Pass),
    // Debian's issue files name the OS (and use \l escapes in /etc/issue)
    ("banner.issue_permissions", Pass),
    ("banner.issue_net_permissions", Pass),
    // Debian ships motd/issue/issue.net 0644 root:root
    ("banner.motd_owner", Pass),
    // Debian's issue files name the OS (and use \l escapes in /etc/issue)
    ("banner.issue_owner", Pass),
    ("banner.issue_net_owner", Pass),
    // minbase + openssh-server/cron/login/passwd installs none of these services
    ("svc.xinetd_removed", Pass),
    ("svc.avahi_removed", Pass),
    ("svc.cups_removed", Pass),
    ("svc.dhcp_server_removed", Pass),
    ("svc.ldap_server_removed", Pass),
    ("svc.nfs_server_removed", Pass),
    ("svc.dns_server_removed", Pass),
    ("svc.ftp_server_removed", Pass),
    ("svc.http_server_removed", Pass),
    ("svc.imap_server_removed", Pass),
    ("svc.samba_removed", Pass),
    ("svc.http_proxy_removed", Pass),
    ("svc.snmp_server_removed", Pass),
    ("svc.nis_removed", Pass),
    ("svc.telnet_server_removed", Pass),
    ("svc.tftp_server_removed", Pass),
    ("svc.xorg_removed", Pass),
    ("svc.rsh_client_removed", Pass),
    ("svc.talk_client_removed", Pass),
    ("svc.telnet_client_removed", Pass),
    ("svc.ldap_client_removed", Pass),
    // minbase installs no time synchronisation daemon
    ("time.daemon_installed", Fail),
    ("time.sync_configured", Fail),
    // no sysctl file sets it: the kernel default applies, SSG requires it persisted
    ("net.ip_forward", Fail),
    ("net.ipv6_all_forwarding", Fail),
    ("net.all_send_redirects", Fail),
    ("net.default_send_redirects", Fail),
    ("net.all_accept_source_route", Fail),
    ("net.default_accept_source_route", Fail),
    ("net.ipv6_all_accept_source_route", Fail),
    ("net.ipv6_default_accept_source_route", Fail),
    ("net.all_accept_redirects", Fail),
    ("net.default_accept_redirects", Fail),
    ("net.ipv6_all_accept_redirects", Fail),
    ("net.ipv6_default_accept_redirects", Fail),
    ("net.all_secure_redirects", Fail),
    ("net.default_secure_redirects", Fail),
    ("net.all_log_martians", Fail),
    ("net.default_log_martians", Fail),
    ("net.icmp_echo_ignore_broadcasts", Fail),
    ("net.icmp_ignore_bogus_error_responses", Fail),
    ("net.all_rp_filter", Fail),
    ("net.default_rp_filter", Fail),
    ("net.tcp_syncookies", Fail),
    ("net.ipv6_all_accept_ra", Fail),
    ("net.ipv6_default_accept_ra", Fail),
    // no firewall package in minbase
    ("net.firewall_installed", Fail),
    ("net.firewall_default_deny", Fail),
    // auditd is not part of minbase
    ("audit.installed", Fail),
    // auditd is not installed (audit.installed fails instead)
    ("audit.enabled", NotApplicable),
    // no GRUB configuration in the tree
    ("audit.boot_audit_arg", NotApplicable),
    ("audit.backlog_limit", NotApplicable),
    // auditd is not installed (audit.installed fails instead)
    ("audit.max_log_file", NotApplicable),
    ("audit.max_log_file_action", NotApplicable),
    ("audit.space_left_action", NotApplicable),
    ("audit.action_mail_acct", NotApplicable),
    ("audit.admin_space_left_action", NotApplicable),
    ("audit.time_change", NotApplicable),
    ("audit.identity", NotApplicable),
    ("audit.system_locale", NotApplicable),
    ("audit.mac_policy", NotApplicable),
    ("audit.logins", NotApplicable),
    ("audit.session", NotApplicable),
    ("audit.perm_mod", NotApplicable),
    ("audit.access", NotApplicable),
    ("audit.mounts", NotApplicable),
    ("audit.delete", NotApplicable),
    ("audit.sudoers", NotApplicable),
    ("audit.user_emulation", NotApplicable),
    ("audit.modules", NotApplicable),
    ("audit.immutable", NotApplicable),
    // sudo is not installed
    ("audit.sudo_log", NotApplicable),
    // Debian 12 logs to journald only; rsyslog is not in minbase
    ("log.rsyslog_installed", Fail),
    // rsyslog is not installed
    ("log.rsyslog_enabled", NotApplicable),
    ("log.rsyslog_file_create_mode", NotApplicable),
    // journald.conf ships every setting commented out
    ("log.journald_compress", Fail),
    ("log.journald_storage", Fail),
    // /var/log files are created 0644 by dpkg/apt
    ("log.var_log_permissions", Fail),
    // cron is installed and enabled by its unit symlink
    ("cron.enabled", Pass),
    // Debian's cron package ships /etc/crontab 0644 and cron.* dirs 0755, owned by root
    ("cron.crontab_permissions", Fail),
    ("cron.hourly_permissions", Fail),
    ("cron.daily_permissions", Fail),
    ("cron.weekly_permissions", Fail),
    ("cron.monthly_permissions", Fail),
    ("cron.d_permissions", Fail),
    // /etc/cron.allow does not exist (cron.allow_exists fails instead)
    ("cron.allow_permissions", NotApplicable),
    // at is not installed
    ("at.allow_permissions", NotApplicable),
    // Debian's cron package ships /etc/crontab 0644 and cron.* dirs 0755, owned by root
    ("cron.crontab_owner", Pass),
    ("cron.hourly_owner", Pass),
    ("cron.daily_owner", Pass),
    ("cron.weekly_owner", Pass),
    ("cron.monthly_owner", Pass),
    ("cron.d_owner", Pass),
    // /etc/cron.allow does not exist (cron.allow_exists fails instead)
    ("cron.allow_owner", NotApplicable),
    // at is not installed
    ("at.allow_owner", NotApplicable),
    // Debian ships no /etc/cron.allow
    ("cron.allow_exists", Fail),
    // no /etc/cron.deny either
    ("cron.deny_absent", Pass),
    // at is not installed
    ("at.allow_exists", NotApplicable),
    ("at.deny_absent", NotApplicable),
    // Debian ships sshd_config 0644
    ("ssh.sshd_config_permissions", Fail),
    // Debian's sshd_config: compiled-in defaults plus its explicit lines (X11Forwarding yes, UsePAM yes)
    ("ssh.sshd_config_owner", Pass),
    ("ssh.sshd_config_group", Pass),
    ("ssh.private_host_keys", Pass),
    ("ssh.public_host_keys", Pass),
    ("ssh.log_level", Pass),
    ("ssh.x11_forwarding", Fail),
    ("ssh.max_auth_tries", Fail),
    ("ssh.ignore_rhosts", Pass),
    ("ssh.hostbased_authentication", Pass),
    ("ssh.permit_root_login", Fail),
    ("ssh.permit_empty_passwords", Pass),
    ("ssh.permit_user_environment", Pass),
    ("ssh.ciphers", Pass),
    // no MACs line: OpenSSH's default list keeps hmac-sha1 and umac-64 (OpenSCAP agrees)
    ("ssh.macs", Fail),
    // Debian's sshd_config: compiled-in defaults plus its explicit lines (X11Forwarding yes, UsePAM yes)
    ("ssh.kex_algorithms", Pass),
    ("ssh.client_alive_interval", Fail),
    ("ssh.client_alive_count_max", Pass),
    ("ssh.login_grace_time", Fail),
    ("ssh.banner", Fail),
    ("ssh.use_pam", Pass),
    ("ssh.allow_tcp_forwarding", Fail),
    ("ssh.max_startups", Fail),
    ("ssh.max_sessions", Pass),
    ("ssh.access_limited", Fail),
    // sudo is not part of minbase
    ("sudo.installed", Fail),
    // sudo is not installed
    ("sudo.use_pty", NotApplicable),
    ("sudo.logfile", NotApplicable),
    ("sudo.require_authentication", NotApplicable),
    ("sudo.sudoers_permissions", NotApplicable),
    // Debian's default PAM stack has no pwquality/faillock/pwhistory/pam_wheel lines
    ("pam.pwquality_minlen", Fail),
    ("pam.pwquality_minclass", Fail),
    ("pam.faillock_deny", Fail),
    ("pam.pwhistory_remember", Fail),
    // Debian's common-password uses pam_unix yescrypt
    ("pam.password_hashing", Pass),
    // Debian's default PAM stack has no pwquality/faillock/pwhistory/pam_wheel lines
    ("pam.su_restricted", Fail),
    // su is not restricted (pam.su_restricted fails instead)
    ("pam.su_group_empty", NotApplicable),
    // Debian's login.defs keeps PASS_MAX_DAYS 99999 and PASS_MIN_DAYS 0
    ("accounts.pass_max_days", Fail),
    ("accounts.pass_min_days", Fail),
    // login.defs PASS_WARN_AGE 7
    ("accounts.pass_warn_age", Pass),
    // /etc/default/useradd sets no INACTIVE
    ("accounts.inactive", Fail),
    // login.defs ENCRYPT_METHOD SHA512
    ("accounts.encrypt_method", Pass),
    // every account is locked: no password hash to age
    ("accounts.existing_max_days", NotApplicable),
    ("accounts.existing_min_days", NotApplicable),
    ("accounts.existing_warn_age", NotApplicable),
    ("accounts.existing_inactive", NotApplicable),
    // a fresh image: consistent databases, root's PATH clean, no interactive users
    ("accounts.last_change_in_past", Pass),
    ("accounts.system_accounts_nologin", Pass),
    ("accounts.root_gid_zero", Pass),
    // login.defs UMASK 022
    ("accounts.umask_login_defs", Fail),
    // Debian sets no umask in /etc/profile or bash.bashrc
    ("accounts.umask_profile", Fail),
    ("accounts.umask_bashrc", Fail),
    // no TMOUT anywhere
    ("accounts.tmout", Fail),
    // Debian ships passwd/group 0644 root:root and shadow/gshadow 0640 root:shadow
    ("accounts.etc_passwd_permissions", Pass),
    ("accounts.etc_passwd_owner", Pass),
    ("accounts.etc_passwd_group", Pass),
    ("accounts.etc_passwd_backup_permissions", Pass),
    ("accounts.etc_passwd_backup_owner", Pass),
    ("accounts.etc_passwd_backup_group", Pass),
    ("accounts.etc_group_permissions", Pass),
    ("accounts.etc_group_owner", Pass),
    ("accounts.etc_group_group", Pass),
    ("accounts.etc_group_backup_permissions", Pass),
    ("accounts.etc_group_backup_owner", Pass),
    ("accounts.etc_group_backup_group", Pass),
    ("accounts.etc_shadow_permissions", Pass),
    ("accounts.etc_shadow_owner", Pass),
    ("accounts.etc_shadow_group", Pass),
    ("accounts.etc_shadow_backup_permissions", Pass),
    ("accounts.etc_shadow_backup_owner", Pass),
    ("accounts.etc_shadow_backup_group", Pass),
    ("accounts.etc_gshadow_permissions", Pass),
    ("accounts.etc_gshadow_owner", Pass),
    ("accounts.etc_gshadow_group", Pass),
    ("accounts.etc_gshadow_backup_permissions", Pass),
    ("accounts.etc_gshadow_backup_owner", Pass),
    ("accounts.etc_gshadow_backup_group", Pass),
    // a fresh image: consistent databases, root's PATH clean, no interactive users
    ("accounts.all_shadowed", Pass),
    ("accounts.no_empty_passwords", Pass),
    ("accounts.passwd_gids_exist", Pass),
    ("accounts.shadow_group_empty", Pass),
    ("accounts.unique_uids", Pass),
    ("accounts.unique_gids", Pass),
    ("accounts.unique_user_names", Pass),
    ("accounts.unique_group_names", Pass),
    ("accounts.only_root_uid_zero", Pass),
    ("accounts.root_path", Pass),
    ("accounts.home_dirs_exist", Pass),
    ("accounts.home_dirs_owned", Pass),
    ("accounts.home_dirs_permissions", Pass),
    ("accounts.dot_files_not_writable", Pass),
    ("accounts.no_netrc", Pass),
    ("accounts.no_forward", Pass),
    ("accounts.no_rhosts", Pass),
];

#[test]
#[ignore = "needs the debootstrap tree of scripts/setup-test-env.sh (AGENTLESS_DEBOOTSTRAP_ROOT)"]
fn debian_bookworm_baseline_matches_written_expectations() {
    let root = std::env::var("AGENTLESS_DEBOOTSTRAP_ROOT")
        .expect("AGENTLESS_DEBOOTSTRAP_ROOT must name the debootstrap tree (scripts/setup-test-env.sh)");
    let root = std::path::Path::new(&root);
    let work = tempfile::tempdir().expect("tmp");
    // Through the image (GPT + ext4 read by ext4-view), as on a scanner instance.
    let img = gpt_efi_ext4(work.path(), root, 512);
    let r =
        scanner_ami::scan::scan_image(&img, scanner_ami::scan::ScanOptions { baseline: true, ..Default::default() })
            .expect("scan");
    let b = r.baseline.expect("baseline computed");
    assert!(b.stats.files_visited > 5000 && !b.stats.walk_capped, "{:?}", b.stats);
    let got: Vec<(&str, Status)> = b.findings.iter().map(|f| (f.id, f.status)).collect();
    let mismatches: Vec<String> = DEBIAN_BASELINE
        .iter()
        .filter(|(id, want)| got.iter().find(|(g, _)| g == id).map(|(_, s)| s) != Some(want))
        .map(|(id, want)| {
            let f = b.findings.iter().find(|f| f.id == *id);
            format!("{id}: want {want:?}, got {:?} ({:?})", f.map(|f| f.status), f.map(|f| (&f.reason, &f.evidence)))
        })
        .collect();
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    assert_eq!(got.len(), DEBIAN_BASELINE.len(), "a rule was added or removed: update DEBIAN_BASELINE");
    // The same tree read as a directory gives the same results (DirFs and ext4 agree).
    let dir = crate::util::baseline_of(root);
    let via_dir: Vec<(&str, Status)> = dir.findings.iter().map(|f| (f.id, f.status)).collect();
    assert_eq!(via_dir, got);
}
