//! Every rule of the system areas at once: each passes on the hardened tree, fails on the
//! neglected one, and says why on a minimal tree without a package database; and every rule has a
//! passing and a failing case somewhere in these files.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn hardened_expectations() -> Vec<Exp> {
    vec![
        ("fs.tmp_partition", Pass, Some("/etc/fstab"), Some(8), "tmpfs /tmp tmpfs nodev,nosuid,noexec"),
        ("fs.var_partition", Pass, Some("/etc/fstab"), Some(3), "UUID=0a1b2c3d-0000-4000-8000-000000000002 /var ext4"),
        ("fs.var_tmp_partition", Pass, Some("/etc/fstab"), Some(4), "LABEL=vartmp /var/tmp"),
        ("fs.var_log_partition", Pass, Some("/etc/fstab"), Some(5), "LABEL=varlog /var/log"),
        ("fs.var_log_audit_partition", Pass, Some("/etc/fstab"), Some(6), "/dev/mapper/vg-audit /var/log/audit xfs"),
        ("fs.home_partition", Pass, Some("/etc/fstab"), Some(7), "/home ext4 nodev,nosuid"),
        ("fs.tmp_nodev", Pass, Some("/etc/fstab"), Some(8), "nodev"),
        ("fs.tmp_nosuid", Pass, Some("/etc/fstab"), Some(8), "nosuid"),
        ("fs.tmp_noexec", Pass, Some("/etc/fstab"), Some(8), "noexec"),
        ("fs.dev_shm_nodev", Pass, Some("/etc/fstab"), Some(9), "defaults,nodev,nosuid,noexec"),
        ("fs.dev_shm_nosuid", Pass, Some("/etc/fstab"), Some(9), "nosuid"),
        ("fs.dev_shm_noexec", Pass, Some("/etc/fstab"), Some(9), "noexec"),
        ("fs.var_nodev", Pass, Some("/etc/fstab"), Some(3), "defaults,nodev,nosuid"),
        ("fs.var_nosuid", Pass, Some("/etc/fstab"), Some(3), "nosuid"),
        ("fs.var_tmp_nodev", Pass, Some("/etc/fstab"), Some(4), "nodev"),
        ("fs.var_tmp_nosuid", Pass, Some("/etc/fstab"), Some(4), "nosuid"),
        ("fs.var_tmp_noexec", Pass, Some("/etc/fstab"), Some(4), "noexec"),
        ("fs.var_log_nodev", Pass, Some("/etc/fstab"), Some(5), "nodev"),
        ("fs.var_log_nosuid", Pass, Some("/etc/fstab"), Some(5), "nosuid"),
        ("fs.var_log_noexec", Pass, Some("/etc/fstab"), Some(5), "noexec"),
        ("fs.var_log_audit_nodev", Pass, Some("/etc/fstab"), Some(6), "nodev"),
        ("fs.var_log_audit_nosuid", Pass, Some("/etc/fstab"), Some(6), "nosuid"),
        ("fs.var_log_audit_noexec", Pass, Some("/etc/fstab"), Some(6), "noexec"),
        ("fs.home_nodev", Pass, Some("/etc/fstab"), Some(7), "nodev"),
        ("fs.home_nosuid", Pass, Some("/etc/fstab"), Some(7), "nosuid"),
        ("fs.world_writable_dirs_sticky", Pass, None, None, "entries examined"),
        ("fs.world_writable_files", Pass, None, None, "entries examined"),
        ("fs.unowned_files", Pass, None, None, "entries examined"),
        ("fs.ungrouped_files", Pass, None, None, "entries examined"),
        ("fs.suid_files", Pass, Some("/usr/bin/passwd"), None, "mode 4755 owner root(0)"),
        ("fs.sgid_files", Pass, None, None, ""),
        ("boot.grub_password", Pass, Some("/boot/grub/grub.cfg"), Some(3), "password_pbkdf2 root grub.pbkdf2."),
        ("boot.grub_cfg_permissions", Pass, Some("/boot/grub/grub.cfg"), None, "0600"),
        ("boot.grub_cfg_owner", Pass, Some("/boot/grub/grub.cfg"), None, "root(0):root(0)"),
        ("kernel.core_hard_limit", Pass, Some("/etc/security/limits.conf"), Some(2), "* hard core 0"),
        ("kernel.coredump_storage", Pass, Some("/etc/systemd/coredump.conf"), Some(2), "Storage=none"),
        ("kernel.coredump_backtraces", Pass, Some("/etc/systemd/coredump.conf"), Some(3), "ProcessSizeMax=0"),
        ("kernel.prelink_removed", Pass, None, None, "none of prelink is installed"),
        ("banner.motd_content", Pass, Some("/etc/motd"), None, "without OS details"),
        ("banner.issue_content", Pass, Some("/etc/issue"), None, "without OS details"),
        ("banner.issue_net_content", Pass, Some("/etc/issue.net"), None, "without OS details"),
        ("banner.motd_permissions", Pass, Some("/etc/motd"), None, "0644"),
        ("banner.issue_permissions", Pass, Some("/etc/issue"), None, "0644"),
        ("banner.issue_net_permissions", Pass, Some("/etc/issue.net"), None, "0644"),
        ("banner.motd_owner", Pass, Some("/etc/motd"), None, "root(0):root(0)"),
        ("banner.issue_owner", Pass, Some("/etc/issue"), None, "root(0):root(0)"),
        ("banner.issue_net_owner", Pass, Some("/etc/issue.net"), None, "root(0):root(0)"),
        ("time.daemon_installed", Pass, Some("/var/lib/dpkg/status"), None, "chrony 1.0 installed"),
        ("time.sync_configured", Pass, Some("/etc/chrony/chrony.conf"), Some(2), "pool ntp.example.com"),
        ("net.firewall_installed", Pass, Some("/var/lib/dpkg/status"), None, "ufw 1.0 installed"),
        ("net.firewall_default_deny", Pass, Some("/etc/default/ufw"), Some(2), "DEFAULT_INPUT_POLICY=\"DROP\""),
        ("audit.installed", Pass, Some("/var/lib/dpkg/status"), None, "auditd 1.0 installed"),
        ("audit.enabled", Pass, Some("/etc/systemd/system/multi-user.target.wants/auditd.service"), None, "enabled"),
        ("audit.boot_audit_arg", Pass, Some("/boot/grub/grub.cfg"), Some(5), "audit=1"),
        ("audit.backlog_limit", Pass, Some("/etc/default/grub"), Some(2), "audit_backlog_limit=8192"),
        ("audit.max_log_file", Pass, Some("/etc/audit/auditd.conf"), Some(2), "max_log_file = 32"),
        ("audit.max_log_file_action", Pass, Some("/etc/audit/auditd.conf"), Some(3), "keep_logs"),
        ("audit.space_left_action", Pass, Some("/etc/audit/auditd.conf"), Some(4), "email"),
        ("audit.action_mail_acct", Pass, Some("/etc/audit/auditd.conf"), Some(5), "root"),
        ("audit.admin_space_left_action", Pass, Some("/etc/audit/auditd.conf"), Some(6), "halt"),
        ("audit.immutable", Pass, Some("/etc/audit/rules.d/99-finalize.rules"), Some(1), "-e 2"),
        ("log.rsyslog_installed", Pass, Some("/var/lib/dpkg/status"), None, "rsyslog 1.0 installed"),
        ("log.rsyslog_enabled", Pass, Some("/etc/systemd/system/multi-user.target.wants/rsyslog.service"), None, ""),
        ("log.rsyslog_file_create_mode", Pass, Some("/etc/rsyslog.conf"), Some(2), "FileCreateMode 0640"),
        ("log.journald_compress", Pass, Some("/etc/systemd/journald.conf"), Some(3), "Compress=yes"),
        ("log.journald_storage", Pass, Some("/etc/systemd/journald.conf"), Some(2), "Storage=persistent"),
        ("log.var_log_permissions", Pass, Some("/var/log"), None, "3 files"),
        ("cron.enabled", Pass, Some("/etc/systemd/system/multi-user.target.wants/cron.service"), None, "enabled"),
        ("cron.crontab_permissions", Pass, Some("/etc/crontab"), None, "0600"),
        ("cron.crontab_owner", Pass, Some("/etc/crontab"), None, "root(0):root(0)"),
        ("cron.hourly_permissions", Pass, Some("/etc/cron.hourly"), None, "0700"),
        ("cron.daily_permissions", Pass, Some("/etc/cron.daily"), None, "0700"),
        ("cron.weekly_permissions", Pass, Some("/etc/cron.weekly"), None, "0700"),
        ("cron.monthly_permissions", Pass, Some("/etc/cron.monthly"), None, "0700"),
        ("cron.d_permissions", Pass, Some("/etc/cron.d"), None, "0700"),
        ("cron.hourly_owner", Pass, Some("/etc/cron.hourly"), None, "root(0):root(0)"),
        ("cron.daily_owner", Pass, Some("/etc/cron.daily"), None, "root(0):root(0)"),
        ("cron.weekly_owner", Pass, Some("/etc/cron.weekly"), None, "root(0):root(0)"),
        ("cron.monthly_owner", Pass, Some("/etc/cron.monthly"), None, "root(0):root(0)"),
        ("cron.d_owner", Pass, Some("/etc/cron.d"), None, "root(0):root(0)"),
        ("cron.allow_exists", Pass, Some("/etc/cron.allow"), None, "exists"),
        ("cron.allow_permissions", Pass, Some("/etc/cron.allow"), None, "0640"),
        ("cron.allow_owner", Pass, Some("/etc/cron.allow"), None, "root(0):root(0)"),
        ("cron.deny_absent", Pass, Some("/etc/cron.deny"), None, "absent"),
        ("at.allow_exists", Pass, Some("/etc/at.allow"), None, "exists"),
        ("at.allow_permissions", Pass, Some("/etc/at.allow"), None, "0640"),
        ("at.allow_owner", Pass, Some("/etc/at.allow"), None, "root(0):root(0)"),
        ("at.deny_absent", Pass, Some("/etc/at.deny"), None, "absent"),
    ]
}

fn neglected_expectations() -> Vec<Exp> {
    vec![
        ("fs.module_cramfs_disabled", Fail, None, None, "no `install cramfs` directive"),
        (
            "fs.module_udf_disabled",
            Fail,
            Some("/usr/lib/modprobe.d/50-udf.conf"),
            Some(1),
            "install udf /sbin/modprobe --ignore-install udf",
        ),
        ("fs.module_freevxfs_disabled", Fail, None, None, "no `install freevxfs` directive"),
        ("fs.module_jffs2_disabled", Fail, None, None, "no `install jffs2` directive"),
        ("fs.module_hfs_disabled", Fail, None, None, "no `install hfs` directive"),
        ("fs.module_hfsplus_disabled", Fail, None, None, "no `install hfsplus` directive"),
        ("fs.module_squashfs_disabled", Fail, None, None, "no `install squashfs` directive"),
        ("fs.module_usb-storage_disabled", Fail, None, None, "no `install usb-storage` directive"),
        ("fs.var_tmp_partition", Fail, Some("/etc/fstab"), Some(5), "/tmp /var/tmp none bind"),
        ("fs.tmp_nodev", Fail, Some("/etc/fstab"), Some(2), "tmpfs /tmp tmpfs defaults"),
        ("fs.tmp_nosuid", Fail, Some("/etc/fstab"), Some(2), "tmpfs /tmp tmpfs defaults"),
        ("fs.tmp_noexec", Fail, Some("/etc/fstab"), Some(2), "tmpfs /tmp tmpfs defaults"),
        ("fs.dev_shm_nodev", Fail, Some("/etc/fstab"), Some(3), "tmpfs /dev/shm tmpfs defaults"),
        ("fs.dev_shm_nosuid", Fail, Some("/etc/fstab"), Some(3), "defaults"),
        ("fs.dev_shm_noexec", Fail, Some("/etc/fstab"), Some(3), "defaults"),
        ("fs.var_nodev", Fail, Some("/etc/fstab"), Some(4), "UUID=2222 /var ext4 defaults"),
        ("fs.var_nosuid", Fail, Some("/etc/fstab"), Some(4), "defaults"),
        ("fs.var_tmp_nodev", Fail, Some("/etc/fstab"), Some(5), "bind"),
        ("fs.var_tmp_nosuid", Fail, Some("/etc/fstab"), Some(5), "bind"),
        ("fs.var_tmp_noexec", Fail, Some("/etc/fstab"), Some(5), "bind"),
        ("fs.var_log_nodev", Fail, Some("/etc/fstab"), Some(6), "UUID=3333"),
        ("fs.var_log_nosuid", Fail, Some("/etc/fstab"), Some(6), "UUID=3333"),
        ("fs.var_log_noexec", Fail, Some("/etc/fstab"), Some(6), "UUID=3333"),
        ("fs.var_log_audit_nodev", Fail, Some("/etc/fstab"), Some(7), "UUID=4444"),
        ("fs.var_log_audit_nosuid", Fail, Some("/etc/fstab"), Some(7), "UUID=4444"),
        ("fs.var_log_audit_noexec", Fail, Some("/etc/fstab"), Some(7), "UUID=4444"),
        ("fs.home_nodev", Fail, Some("/etc/fstab"), Some(8), "UUID=5555 /home ext4 defaults"),
        ("fs.home_nosuid", Fail, Some("/etc/fstab"), Some(8), "UUID=5555"),
        ("fs.world_writable_dirs_sticky", Fail, Some("/srv/drop"), None, "directory mode 0777"),
        ("fs.world_writable_files", Fail, Some("/srv/data.txt"), None, "file mode 0666"),
        ("fs.unowned_files", Fail, Some("/srv/orphan"), None, "uid 4242"),
        ("fs.ungrouped_files", Fail, Some("/srv/nogroup"), None, "gid 4343"),
        ("fs.suid_files", Pass, Some("/usr/local/bin/tool"), None, "mode 4755"),
        ("fs.sgid_files", Pass, Some("/usr/local/bin/gtool"), None, "mode 2755 group root(0)"),
        ("boot.grub_password", Fail, Some("/boot/grub/grub.cfg"), None, "no `set superusers=`"),
        ("boot.grub_cfg_permissions", Fail, Some("/boot/grub/grub.cfg"), None, "0644"),
        ("boot.grub_cfg_owner", Fail, Some("/boot/grub/grub.cfg"), None, "1000:1000"),
        (
            "kernel.randomize_va_space",
            Fail,
            None,
            None,
            "kernel.randomize_va_space is not set in any sysctl configuration file; the kernel default (2",
        ),
        ("kernel.core_hard_limit", Fail, None, None, "no `* hard core` line"),
        ("kernel.coredump_storage", Fail, None, None, "Storage not set in [Coredump]"),
        ("kernel.coredump_backtraces", Fail, Some("/etc/systemd/coredump.conf"), Some(3), "ProcessSizeMax=2G"),
        ("kernel.prelink_removed", Fail, Some("/var/lib/dpkg/status"), None, "prelink 1.0 installed"),
        ("banner.issue_content", Fail, Some("/etc/issue"), Some(1), "Ubuntu 22.04.3 LTS"),
        ("banner.issue_net_content", Fail, Some("/etc/issue.net"), Some(1), "Kernel \\r on an \\m"),
        ("banner.motd_content", Fail, Some("/etc/motd"), Some(1), "Welcome to Ubuntu!"),
        ("banner.motd_permissions", Fail, Some("/etc/motd"), None, "0666"),
        ("banner.issue_permissions", Fail, Some("/etc/issue"), None, "0666"),
        ("banner.issue_net_permissions", Fail, Some("/etc/issue.net"), None, "0666"),
        ("banner.motd_owner", Fail, Some("/etc/motd"), None, "1000:1000"),
        ("banner.issue_owner", Fail, Some("/etc/issue"), None, "1000:1000"),
        ("banner.issue_net_owner", Fail, Some("/etc/issue.net"), None, "1000:1000"),
        ("time.sync_configured", Fail, None, None, "chrony: no server/pool configured"),
        ("net.firewall_default_deny", Fail, Some("/etc/ufw/ufw.conf"), Some(1), "ENABLED=no"),
        (
            "svc.http_server_removed",
            Fail,
            Some("/etc/systemd/system/multi-user.target.wants/apache2.service"),
            None,
            "apache2.service enabled",
        ),
        ("audit.enabled", Fail, None, None, "auditd.service has no unit file"),
        ("audit.boot_audit_arg", Fail, Some("/boot/grub/grub.cfg"), Some(3), "linux without audit="),
        (
            "audit.backlog_limit",
            Fail,
            Some("/etc/default/grub"),
            Some(1),
            "GRUB_CMDLINE_LINUX without audit_backlog_limit=",
        ),
        ("audit.max_log_file", Fail, Some("/etc/audit/auditd.conf"), None, "max_log_file not set"),
        ("audit.max_log_file_action", Fail, Some("/etc/audit/auditd.conf"), Some(1), "max_log_file_action = ROTATE"),
        ("audit.space_left_action", Fail, Some("/etc/audit/auditd.conf"), Some(2), "SYSLOG"),
        ("audit.action_mail_acct", Fail, Some("/etc/audit/auditd.conf"), Some(3), "admin"),
        ("audit.admin_space_left_action", Fail, Some("/etc/audit/auditd.conf"), Some(4), "SUSPEND"),
        ("audit.time_change", Fail, None, None, "b64: adjtimex, settimeofday, clock_settime not audited"),
        ("audit.identity", Fail, None, None, "no watch on /etc/passwd"),
        ("audit.system_locale", Fail, None, None, "no watch on /etc/network"),
        ("audit.mac_policy", Fail, None, None, "no watch on /etc/apparmor.d"),
        ("audit.logins", Fail, None, None, "no watch on /var/log/lastlog"),
        ("audit.session", Fail, None, None, "no watch on /var/log/wtmp"),
        ("audit.perm_mod", Fail, None, None, "b64: chmod, fchmod"),
        ("audit.access", Fail, None, None, "b32: creat, open, openat, truncate, ftruncate not audited"),
        ("audit.mounts", Fail, None, None, "b64: mount not audited"),
        ("audit.delete", Fail, None, None, "b64: unlink, unlinkat, rename, renameat"),
        ("audit.sudoers", Fail, None, None, "no watch on /etc/sudoers"),
        ("audit.sudo_log", Fail, None, None, "no `Defaults logfile=`"),
        ("audit.user_emulation", Fail, None, None, "b64: execve not audited"),
        ("audit.modules", Fail, None, None, "b64: init_module, finit_module, delete_module not audited"),
        ("audit.immutable", Fail, Some("/etc/audit/rules.d/audit.rules"), Some(5), "-e 1"),
        ("log.rsyslog_enabled", Fail, None, None, "rsyslog.service is not wanted by any target"),
        ("log.rsyslog_file_create_mode", Fail, None, None, "no $FileCreateMode in /etc/rsyslog.conf"),
        ("log.journald_compress", Fail, Some("/etc/systemd/journald.conf"), Some(3), "Compress=no"),
        ("log.journald_storage", Fail, None, None, "Storage not set in [Journal]"),
        ("log.var_log_permissions", Fail, Some("/var/log/syslog"), None, "0644"),
        ("cron.enabled", Fail, None, None, "neither cron.service nor crond.service is enabled"),
        ("cron.crontab_permissions", Fail, Some("/etc/crontab"), None, "0644"),
        ("cron.crontab_owner", Fail, Some("/etc/crontab"), None, "1000:root(0)"),
        ("cron.hourly_permissions", Fail, Some("/etc/cron.hourly"), None, "0755"),
        ("cron.daily_permissions", Fail, Some("/etc/cron.daily"), None, "0755"),
        ("cron.weekly_permissions", Fail, Some("/etc/cron.weekly"), None, "0755"),
        ("cron.monthly_permissions", Fail, Some("/etc/cron.monthly"), None, "0755"),
        ("cron.d_permissions", Fail, Some("/etc/cron.d"), None, "0755"),
        ("cron.hourly_owner", Fail, Some("/etc/cron.hourly"), None, "root(0):1000"),
        ("cron.daily_owner", Fail, Some("/etc/cron.daily"), None, "root(0):1000"),
        ("cron.weekly_owner", Fail, Some("/etc/cron.weekly"), None, "root(0):1000"),
        ("cron.monthly_owner", Fail, Some("/etc/cron.monthly"), None, "root(0):1000"),
        ("cron.d_owner", Fail, Some("/etc/cron.d"), None, "root(0):1000"),
        ("cron.allow_exists", Fail, Some("/etc/cron.allow"), None, "absent"),
        ("cron.allow_permissions", Na, None, None, ""),
        ("cron.allow_owner", Na, None, None, ""),
        ("cron.deny_absent", Fail, Some("/etc/cron.deny"), None, "exists"),
        ("at.allow_exists", Fail, Some("/etc/at.allow"), None, "absent"),
        ("at.deny_absent", Fail, Some("/etc/at.deny"), None, "exists"),
    ]
}

/// Expectations on a tree without a package database or any configuration.
fn minimal_expectations() -> Vec<Exp> {
    vec![
        ("fs.tmp_partition", Fail, None, None, "no /etc/fstab entry and no enabled tmp.mount unit for /tmp"),
        ("fs.var_partition", Fail, None, None, "no /etc/fstab entry and no enabled var.mount unit for /var"),
        ("fs.var_log_partition", Fail, None, None, "var-log.mount"),
        ("fs.var_log_audit_partition", Fail, None, None, "var-log-audit.mount"),
        ("fs.home_partition", Fail, None, None, "home.mount"),
        ("fs.tmp_nodev", Na, None, None, ""),
        ("fs.home_nodev", Na, None, None, ""),
        ("fs.dev_shm_noexec", Fail, None, None, "compiled-in options that are not visible offline"),
        ("boot.grub_password", Na, None, None, ""),
        ("boot.grub_cfg_permissions", Na, None, None, ""),
        ("audit.installed", Fail, None, None, "no package database in the image"),
        ("audit.time_change", Na, None, None, ""),
        ("audit.max_log_file", Na, None, None, ""),
        ("audit.boot_audit_arg", Na, None, None, ""),
        ("log.rsyslog_installed", Fail, None, None, "no package database in the image"),
        ("log.rsyslog_enabled", Na, None, None, ""),
        ("log.rsyslog_file_create_mode", Na, None, None, ""),
        ("time.daemon_installed", Fail, None, None, "none of chrony, systemd-timesyncd, ntp/ntpsec is installed"),
        ("time.sync_configured", Fail, None, None, "no time synchronisation daemon is installed"),
        ("net.firewall_installed", Fail, None, None, "none of ufw, nftables"),
        ("net.firewall_default_deny", Fail, None, None, "no host firewall is installed"),
        ("net.ip_forward", Fail, None, None, "the kernel default (0) applies at boot"),
        ("cron.enabled", Fail, None, None, "no package database in the image"),
        ("cron.crontab_permissions", Na, None, None, ""),
        ("at.allow_exists", Na, None, None, ""),
        ("kernel.coredump_storage", Na, None, None, ""),
        ("kernel.core_hard_limit", Fail, None, None, "no `* hard core` line"),
        ("banner.issue_content", Fail, Some("/etc/issue"), None, "absent"),
        ("banner.motd_content", Pass, Some("/etc/motd"), None, "absent"),
        ("banner.issue_permissions", Pass, Some("/etc/issue"), None, "absent"),
        ("svc.xinetd_removed", Pass, None, None, "no package database in the image"),
        ("log.journald_storage", Fail, None, None, "keeps the journal in memory only"),
        ("log.var_log_permissions", Pass, Some("/var/log"), None, "0 files"),
    ]
}

#[test]
fn hardened_ubuntu_passes_every_system_rule() {
    let t = hardened_ubuntu();
    let b = baseline_of(t.path());
    check_all(&b, &hardened_expectations());
    let mp = std::fs::read_to_string(t.path().join("etc/modprobe.d/cis.conf")).expect("read");
    for m in MODULES {
        let install = if m == "usb-storage" {
            "install usb_storage /bin/false".to_owned()
        } else {
            format!("install {m} /bin/false")
        };
        let id = format!("fs.module_{m}_disabled");
        check_line(&b, &id, Pass, "/etc/modprobe.d/cis.conf", line_of(&mp, &install), &install);
        check_line(&b, &id, Pass, "/etc/modprobe.d/cis.conf", line_of(&mp, &format!("blacklist {m}")), "blacklist");
    }
    let sc = std::fs::read_to_string(t.path().join("etc/sysctl.d/60-cis.conf")).expect("read");
    for (id, key, good, _) in SYSCTLS {
        let text = format!("{key} = {good}");
        check_line(&b, id, Pass, "/etc/sysctl.d/60-cis.conf", line_of(&sc, &text), &text);
    }
    for (id, pkg) in UNWANTED {
        let f = rule(&b, id);
        assert_eq!(f.status, Pass, "{id} ({pkg}): {f:#?}");
    }
    let rules = GOOD_AUDIT_RULES;
    let file = "/etc/audit/rules.d/50-cis.rules";
    for (id, needle) in [
        ("audit.time_change", "-w /etc/localtime -p wa"),
        ("audit.identity", "-w /etc/security/opasswd -p wa"),
        ("audit.system_locale", "-w /etc/network -p wa"),
        ("audit.mac_policy", "-w /etc/apparmor.d/ -p wa"),
        ("audit.logins", "-w /var/run/faillock -p wa"),
        ("audit.session", "-w /var/run/utmp -p wa"),
        ("audit.perm_mod", "-a always,exit -F arch=b32 -S chmod -S fchmod -S fchmodat"),
        ("audit.access", "-a always,exit -F arch=b32 -S creat,open,openat,truncate,ftruncate -F exit=-EPERM"),
        ("audit.mounts", "-a always,exit -F arch=b32 -S mount"),
        ("audit.delete", "-a always,exit -F arch=b64 -S unlink,unlinkat,rename,renameat"),
        ("audit.sudoers", "-w /etc/sudoers.d -p wa"),
        ("audit.sudo_log", "-w /var/log/sudo.log -p wa"),
        ("audit.user_emulation", "-C euid!=uid"),
        ("audit.modules", "-F path=/usr/bin/kmod -F perm=x"),
    ] {
        check_line(&b, id, Pass, file, line_of(rules, needle), needle);
    }
    // The b32 `exit,always` spelling and `auid!=4294967295` are accepted.
    check_line(&b, "audit.perm_mod", Pass, file, line_of(rules, "-a exit,always"), "fremovexattr");
    check_line(&b, "audit.sudo_log", Pass, "/etc/sudoers", 2, "Defaults logfile=/var/log/sudo.log");
    assert!(!b.stats.walk_capped);
    assert!(b.stats.files_visited > 50, "{:?}", b.stats);
}

#[test]
fn neglected_ubuntu_fails_every_system_rule() {
    let t = neglected_ubuntu();
    let b = baseline_of(t.path());
    check_all(&b, &neglected_expectations());
    let sc = std::fs::read_to_string(t.path().join("etc/sysctl.conf")).expect("read");
    for (id, key, good, bad) in SYSCTLS.iter().skip(1) {
        let text = format!("{key}={bad}");
        check_line(&b, id, Fail, "/etc/sysctl.conf", line_of(&sc, &text), &format!("{key} = {bad}"));
        let f = rule(&b, id);
        let want = format!("{key} = {good}");
        assert!(f.evidence.iter().any(|e| e.expected.as_deref() == Some(want.as_str())), "{f:#?}");
    }
    for (id, pkg) in UNWANTED {
        let f = rule(&b, id);
        assert_eq!(f.status, Fail, "{id}: {f:#?}");
        let want = format!("{pkg} 1.0 installed");
        assert!(
            f.evidence.iter().any(|e| e.file.as_deref() == Some("/var/lib/dpkg/status")
                && e.found.as_deref() == Some(want.as_str())
                && e.expected.as_deref() == Some("not installed")),
            "{id}: {f:#?}"
        );
    }
    // The walk evidence names the offenders only once each.
    assert_eq!(rule(&b, "fs.world_writable_files").evidence.iter().filter(|e| e.file.is_some()).count(), 4);
    // Ubuntu: the install line is what SSG requires; the missing blacklist is explained.
    let f = rule(&b, "fs.module_cramfs_disabled");
    assert!(f.evidence.iter().any(|e| e.found.as_deref() == Some("blacklist cramfs") && e.line == Some(1)), "{f:#?}");
}

#[test]
fn minimal_tree_without_package_database() {
    let t = Tree::new();
    t.os_release("ubuntu", "22.04", "Ubuntu 22.04.3 LTS");
    t.put("etc/fstab", b"UUID=1 / ext4 defaults 0 1\n");
    t.put("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    t.put("etc/group", b"root:x:0:\n");
    std::fs::create_dir_all(t.path().join("var/log")).expect("mkdir");
    let b = baseline_of(t.path());
    check_all(&b, &minimal_expectations());
    // With a package database listing nothing unwanted, the same rule passes by the database.
    dpkg_installed(&t, &["bash"]);
    let b = baseline_of(t.path());
    check(&b, &("svc.xinetd_removed", Pass, None, None, "none of xinetd is installed"));
}

/// Every rule of these areas has a passing and a failing case somewhere in these files.
#[test]
fn every_system_rule_has_pass_and_fail_cases() {
    let generated: Vec<String> = MODULES
        .iter()
        .map(|m| format!("fs.module_{m}_disabled"))
        .chain(SYSCTLS.iter().map(|s| s.0.to_owned()))
        .chain(UNWANTED.iter().map(|s| s.0.to_owned()))
        .chain(
            [
                "audit.time_change",
                "audit.identity",
                "audit.system_locale",
                "audit.mac_policy",
                "audit.logins",
                "audit.session",
                "audit.perm_mod",
                "audit.access",
                "audit.mounts",
                "audit.delete",
                "audit.sudoers",
                "audit.sudo_log",
                "audit.user_emulation",
                "audit.modules",
            ]
            .map(str::to_owned),
        )
        .collect();
    let mut seen: BTreeMap<&str, BTreeSet<Status>> = BTreeMap::new();
    for (id, st, ..) in
        hardened_expectations().into_iter().chain(neglected_expectations()).chain(minimal_expectations())
    {
        seen.entry(id).or_default().insert(st);
    }
    for id in &generated {
        // Checked in loops by the hardened (pass) and neglected (fail) tests.
        seen.entry(id.as_str()).or_default().extend([Pass, Fail]);
    }
    // Extra cases in the dedicated tests of each area.
    for (id, st) in [
        ("fs.tmp_partition", Fail),
        ("fs.var_partition", Fail),
        ("fs.home_partition", Fail),
        ("fs.var_log_partition", Fail),
        ("fs.var_log_audit_partition", Fail),
        ("fs.suid_files", Error),
        ("fs.sgid_files", Error),
        ("audit.installed", Fail),
        ("log.rsyslog_installed", Fail),
        ("time.daemon_installed", Fail),
        ("net.firewall_installed", Fail),
        ("cron.allow_permissions", Fail),
        ("cron.allow_owner", Fail),
        ("at.allow_permissions", Fail),
        ("at.allow_owner", Fail),
    ] {
        seen.entry(id).or_default().insert(st);
    }
    let mine = ["fs.", "boot.", "kernel.", "banner.", "svc.", "time.", "net.", "audit.", "log.", "cron.", "at."];
    let mut missing = Vec::new();
    for r in scanner_ami::baseline::rules() {
        if !mine.iter().any(|p| r.id.starts_with(p)) {
            continue;
        }
        let s = seen.get(r.id).cloned().unwrap_or_default();
        if !s.contains(&Pass) || !(s.contains(&Fail) || s.contains(&Error)) {
            missing.push(format!("{} {s:?}", r.id));
        }
    }
    assert!(missing.is_empty(), "rules without both a passing and a failing case: {missing:#?}");
}
