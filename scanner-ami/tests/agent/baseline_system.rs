//! Baseline rules of the system areas (file systems, boot, services, network, audit, logging,
//! cron) on small root trees: a hardened Ubuntu tree where every rule passes, a neglected one where
//! every rule fails, a minimal one without a package database, a RHEL one; parser edge cases
//! (sysctl precedence and masking, modprobe overrides, fstab specs, audit rule forms) and hostile
//! trees (hundreds of offenders, binary and huge config files, symlink loops and escapes).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use scanner_ami::baseline::{Baseline, Finding, Status};

use crate::util::{Tree, baseline_of, dpkg_installed};

// ---------------------------------------------------------------------------------------------
// Helpers.

fn chmod(t: &Tree, rel: &str, mode: u32) {
    std::fs::set_permissions(t.path().join(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(t: &Tree, rel: &str, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(t.path().join(rel), Some(uid), Some(gid)).expect("chown (tests run as root)");
}

fn mkdir(t: &Tree, rel: &str, mode: u32) {
    std::fs::create_dir_all(t.path().join(rel)).expect("mkdir");
    chmod(t, rel, mode);
}

fn put_mode(t: &Tree, rel: &str, body: &str, mode: u32) {
    t.put(rel, body.as_bytes());
    chmod(t, rel, mode);
}

/// Enable `unit` the way `systemctl enable` does: a unit file in /lib/systemd/system and a
/// symlink in /etc/systemd/system/<target>.wants.
fn enable(t: &Tree, target: &str, unit: &str) {
    t.put(&format!("lib/systemd/system/{unit}"), b"[Unit]\nDescription=test\n");
    t.symlink(&format!("etc/systemd/system/{target}.wants/{unit}"), &format!("/lib/systemd/system/{unit}"));
}

/// 1-based line number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap_or_else(|| panic!("{needle:?} not in text"))
}

fn get<'b>(b: &'b Baseline, id: &str) -> &'b Finding {
    b.findings.iter().find(|f| f.id == id).unwrap_or_else(|| panic!("no rule {id}"))
}

/// One expectation: rule id, status, and optionally an evidence item with this file, line and a
/// `found` (or `note`) containing the text.
type Exp = (&'static str, Status, Option<&'static str>, Option<usize>, &'static str);

#[track_caller]
fn check(b: &Baseline, e: &Exp) {
    let (id, status, file, line, text) = *e;
    let f = get(b, id);
    assert_eq!(f.status, status, "{id}: {f:#?}");
    if file.is_none() && line.is_none() && text.is_empty() {
        return;
    }
    let hit = f.evidence.iter().any(|ev| {
        file.is_none_or(|x| ev.file.as_deref() == Some(x))
            && line.is_none_or(|x| ev.line == Some(x))
            && (text.is_empty()
                || ev.found.as_deref().is_some_and(|s| s.contains(text))
                || ev.note.as_deref().is_some_and(|s| s.contains(text)))
    });
    assert!(hit, "{id}: no evidence with file {file:?} line {line:?} text {text:?}: {:#?}", f.evidence);
}

fn check_all(b: &Baseline, exps: &[Exp]) {
    for e in exps {
        check(b, e);
    }
}

/// Expectations whose line numbers depend on generated files are checked with these.
#[track_caller]
fn check_line(b: &Baseline, id: &str, status: Status, file: &str, line: usize, text: &str) {
    let f = get(b, id);
    assert_eq!(f.status, status, "{id}: {f:#?}");
    assert!(
        f.evidence.iter().any(|ev| ev.file.as_deref() == Some(file)
            && ev.line == Some(line)
            && ev.found.as_deref().is_some_and(|s| s.contains(text))),
        "{id}: no evidence {file}:{line} {text:?}: {:#?}",
        f.evidence
    );
}

const MODULES: [&str; 8] = ["cramfs", "freevxfs", "jffs2", "hfs", "hfsplus", "udf", "squashfs", "usb-storage"];

/// (our id, key, good value, bad value)
const SYSCTLS: [(&str, &str, &str, &str); 25] = [
    ("kernel.randomize_va_space", "kernel.randomize_va_space", "2", "0"),
    ("kernel.suid_dumpable", "fs.suid_dumpable", "0", "2"),
    ("net.ip_forward", "net.ipv4.ip_forward", "0", "1"),
    ("net.ipv6_all_forwarding", "net.ipv6.conf.all.forwarding", "0", "1"),
    ("net.all_send_redirects", "net.ipv4.conf.all.send_redirects", "0", "1"),
    ("net.default_send_redirects", "net.ipv4.conf.default.send_redirects", "0", "1"),
    ("net.all_accept_source_route", "net.ipv4.conf.all.accept_source_route", "0", "1"),
    ("net.default_accept_source_route", "net.ipv4.conf.default.accept_source_route", "0", "1"),
    ("net.ipv6_all_accept_source_route", "net.ipv6.conf.all.accept_source_route", "0", "1"),
    ("net.ipv6_default_accept_source_route", "net.ipv6.conf.default.accept_source_route", "0", "1"),
    ("net.all_accept_redirects", "net.ipv4.conf.all.accept_redirects", "0", "1"),
    ("net.default_accept_redirects", "net.ipv4.conf.default.accept_redirects", "0", "1"),
    ("net.ipv6_all_accept_redirects", "net.ipv6.conf.all.accept_redirects", "0", "1"),
    ("net.ipv6_default_accept_redirects", "net.ipv6.conf.default.accept_redirects", "0", "1"),
    ("net.all_secure_redirects", "net.ipv4.conf.all.secure_redirects", "0", "1"),
    ("net.default_secure_redirects", "net.ipv4.conf.default.secure_redirects", "0", "1"),
    ("net.all_log_martians", "net.ipv4.conf.all.log_martians", "1", "0"),
    ("net.default_log_martians", "net.ipv4.conf.default.log_martians", "1", "0"),
    ("net.icmp_echo_ignore_broadcasts", "net.ipv4.icmp_echo_ignore_broadcasts", "1", "0"),
    ("net.icmp_ignore_bogus_error_responses", "net.ipv4.icmp_ignore_bogus_error_responses", "1", "0"),
    ("net.all_rp_filter", "net.ipv4.conf.all.rp_filter", "1", "2"),
    ("net.default_rp_filter", "net.ipv4.conf.default.rp_filter", "1", "0"),
    ("net.tcp_syncookies", "net.ipv4.tcp_syncookies", "1", "0"),
    ("net.ipv6_all_accept_ra", "net.ipv6.conf.all.accept_ra", "0", "1"),
    ("net.ipv6_default_accept_ra", "net.ipv6.conf.default.accept_ra", "0", "1"),
];

const UNWANTED: [(&str, &str); 21] = [
    ("svc.xinetd_removed", "xinetd"),
    ("svc.avahi_removed", "avahi-daemon"),
    ("svc.cups_removed", "cups"),
    ("svc.dhcp_server_removed", "isc-dhcp-server"),
    ("svc.ldap_server_removed", "slapd"),
    ("svc.nfs_server_removed", "nfs-kernel-server"),
    ("svc.dns_server_removed", "bind9"),
    ("svc.ftp_server_removed", "vsftpd"),
    ("svc.http_server_removed", "apache2"),
    ("svc.imap_server_removed", "dovecot-imapd"),
    ("svc.samba_removed", "samba"),
    ("svc.http_proxy_removed", "squid"),
    ("svc.snmp_server_removed", "snmpd"),
    ("svc.nis_removed", "nis"),
    ("svc.telnet_server_removed", "telnetd"),
    ("svc.tftp_server_removed", "tftpd-hpa"),
    ("svc.xorg_removed", "xserver-xorg-core"),
    ("svc.rsh_client_removed", "rsh-client"),
    ("svc.talk_client_removed", "talk"),
    ("svc.telnet_client_removed", "telnet"),
    ("svc.ldap_client_removed", "ldap-utils"),
];

/// Audit rules that satisfy every audit rule group (Ubuntu).
const GOOD_AUDIT_RULES: &str = "\
## CIS 4.1.3
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change
-a always,exit -F arch=b32 -S adjtimex,settimeofday,clock_settime,stime -k time-change
-w /etc/localtime -p wa -k time-change
-w /etc/group -p wa -k identity
-w /etc/passwd -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
-a always,exit -F arch=b64 -S sethostname,setdomainname -k system-locale
-a always,exit -F arch=b32 -S sethostname,setdomainname -k system-locale
-w /etc/issue -p wa -k system-locale
-w /etc/issue.net -p wa -k system-locale
-w /etc/hosts -p wa -k system-locale
-w /etc/network -p wa -k system-locale
-w /etc/apparmor/ -p wa -k MAC-policy
-w /etc/apparmor.d/ -p wa -k MAC-policy
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock -p wa -k logins
-w /var/run/utmp -p wa -k session
-w /var/log/wtmp -p wa -k logins
-w /var/log/btmp -p wa -k logins
-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b64 -S chown,fchown,fchownat,lchown -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b64 -S setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b32 -S chmod -S fchmod -S fchmodat -F auid>=1000 -F auid!=unset -k perm_mod
-a always,exit -F arch=b32 -S chown -S fchown -S fchownat -S lchown -F auid>=1000 -F auid!=-1 -k perm_mod
-a exit,always -F arch=b32 -S setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr -F auid>=1000 -F auid!=4294967295 -k perm_mod
-a always,exit -F arch=b64 -S creat,open,openat,truncate,ftruncate -F exit=-EACCES -F auid>=1000 -F auid!=unset -k access
-a always,exit -F arch=b64 -S creat,open,openat,truncate,ftruncate -F exit=-EPERM -F auid>=1000 -F auid!=unset -k access
-a always,exit -F arch=b32 -S creat,open,openat,truncate,ftruncate -F exit=-EACCES -F auid>=1000 -F auid!=unset -k access
-a always,exit -F arch=b32 -S creat,open,openat,truncate,ftruncate -F exit=-EPERM -F auid>=1000 -F auid!=unset -k access
-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=unset -k mounts
-a always,exit -F arch=b32 -S mount -F auid>=1000 -F auid!=unset -k mounts
-a always,exit -F arch=b64 -S unlink,unlinkat,rename,renameat -F auid>=1000 -F auid!=unset -k delete
-a always,exit -F arch=b32 -S unlink,unlinkat,rename,renameat -F auid>=1000 -F auid!=unset -k delete
-w /etc/sudoers -p wa -k scope
-w /etc/sudoers.d -p wa -k scope
-w /var/log/sudo.log -p wa -k sudo_log_file
-a always,exit -F arch=b64 -C euid!=uid -F auid!=unset -S execve -k user_emulation
-a always,exit -F arch=b32 -C euid!=uid -F auid!=unset -S execve -k user_emulation
-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules
-a always,exit -F path=/usr/bin/kmod -F perm=x -F auid>=1000 -F auid!=unset -k kernel_modules
";

const GOOD_FSTAB: &str = "\
# /etc/fstab: static file system information.
UUID=0a1b2c3d-0000-4000-8000-000000000001 /               ext4 errors=remount-ro 0 1
UUID=0a1b2c3d-0000-4000-8000-000000000002 /var            ext4 defaults,nodev,nosuid 0 2
LABEL=vartmp                              /var/tmp        ext4 nodev,nosuid,noexec 0 2
LABEL=varlog                              /var/log        ext4 nodev,nosuid,noexec 0 2
/dev/mapper/vg-audit                      /var/log/audit  xfs  nodev,nosuid,noexec 0 2
UUID=0a1b2c3d-0000-4000-8000-000000000003 /home           ext4 nodev,nosuid 0 2
tmpfs                                     /tmp            tmpfs nodev,nosuid,noexec,mode=1777 0 0
tmpfs                                     /dev/shm        tmpfs defaults,nodev,nosuid,noexec 0 0
";

const GOOD_GRUB: &str = "\
set default=0
set superusers=\"root\"
password_pbkdf2 root grub.pbkdf2.sha512.10000.AABBCCDD.EEFF0011
menuentry 'Ubuntu' {
\tlinux /boot/vmlinuz-5.15.0-86-generic root=UUID=0a1b ro audit=1 audit_backlog_limit=8192 quiet
}
menuentry 'Memory test (memtest86+x64.bin)' {
\tlinux16 /boot/memtest86+x64.bin
}
";

fn base_ubuntu(packages: &[&str]) -> Tree {
    let t = Tree::new();
    t.os_release("ubuntu", "22.04", "Ubuntu 22.04.3 LTS");
    dpkg_installed(&t, packages);
    t.put("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    t.put("etc/group", b"root:x:0:\n");
    mkdir(&t, "tmp", 0o1777);
    mkdir(&t, "var/tmp", 0o1777);
    t
}

/// An Ubuntu 22.04 tree configured to pass every rule of these areas.
fn hardened_ubuntu() -> Tree {
    let t = base_ubuntu(&["auditd", "rsyslog", "chrony", "ufw", "cron", "at", "sudo"]);
    let mut mp = String::from("# CIS 1.1.1\n");
    for m in MODULES {
        // usb-storage in the other spelling: kmod treats - and _ alike.
        let name = if m == "usb-storage" { "usb_storage".to_owned() } else { m.to_owned() };
        mp.push_str(&format!("install {name} /bin/false\nblacklist {m}\n"));
    }
    t.put("etc/modprobe.d/cis.conf", mp.as_bytes());
    t.put("etc/fstab", GOOD_FSTAB.as_bytes());
    put_mode(&t, "usr/bin/passwd", "ELF", 0o4755);
    put_mode(&t, "boot/grub/grub.cfg", GOOD_GRUB, 0o600);
    t.put("etc/default/grub", b"GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"audit=1 audit_backlog_limit=8192\"\n");
    let mut sc = String::from("# CIS sysctl settings\n");
    for (_, key, good, _) in SYSCTLS {
        sc.push_str(&format!("{key} = {good}\n"));
    }
    t.put("etc/sysctl.d/60-cis.conf", sc.as_bytes());
    t.put("etc/security/limits.conf", b"# /etc/security/limits.conf\n* hard core 0\n");
    t.put("usr/lib/systemd/systemd-coredump", b"ELF");
    t.put("etc/systemd/coredump.conf", b"[Coredump]\nStorage=none\nProcessSizeMax=0\n");
    let banner = "Authorized users only. All activity may be monitored and reported.\n";
    for f in ["etc/issue", "etc/issue.net", "etc/motd"] {
        put_mode(&t, f, banner, 0o644);
    }
    t.put("etc/chrony/chrony.conf", b"confdir /etc/chrony/conf.d\npool ntp.example.com iburst maxsources 4\n");
    enable(&t, "multi-user.target", "chrony.service");
    t.put("etc/ufw/ufw.conf", b"# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n");
    t.put("etc/default/ufw", b"IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\n");
    enable(&t, "multi-user.target", "ufw.service");
    enable(&t, "multi-user.target", "auditd.service");
    t.put(
        "etc/audit/auditd.conf",
        b"log_file = /var/log/audit/audit.log\nmax_log_file = 32\nmax_log_file_action = keep_logs\nspace_left_action = email\naction_mail_acct = root\nadmin_space_left_action = halt\n",
    );
    t.put("etc/audit/rules.d/50-cis.rules", GOOD_AUDIT_RULES.as_bytes());
    t.put("etc/audit/rules.d/99-finalize.rules", b"-e 2\n");
    t.put("etc/sudoers", b"Defaults use_pty\nDefaults logfile=\"/var/log/sudo.log\"\nroot ALL=(ALL:ALL) ALL\n");
    enable(&t, "multi-user.target", "rsyslog.service");
    t.put(
        "etc/rsyslog.conf",
        b"module(load=\"imuxsock\")\n$FileCreateMode 0640\n$IncludeConfig /etc/rsyslog.d/*.conf\n",
    );
    t.put("etc/rsyslog.d/50-default.conf", b"auth,authpriv.* /var/log/auth.log\n");
    t.put("etc/systemd/journald.conf", b"[Journal]\nStorage=persistent\nCompress=yes\n");
    put_mode(&t, "var/log/syslog", "log\n", 0o640);
    put_mode(&t, "var/log/wtmp", "", 0o664);
    put_mode(&t, "var/log/audit/audit.log", "", 0o600);
    enable(&t, "multi-user.target", "cron.service");
    put_mode(&t, "etc/crontab", "# m h dom mon dow user command\n", 0o600);
    for d in ["etc/cron.hourly", "etc/cron.daily", "etc/cron.weekly", "etc/cron.monthly", "etc/cron.d"] {
        mkdir(&t, d, 0o700);
    }
    put_mode(&t, "etc/cron.allow", "root\n", 0o640);
    put_mode(&t, "etc/at.allow", "root\n", 0o640);
    t
}

/// An Ubuntu 22.04 tree where every rule of these areas fails.
fn neglected_ubuntu() -> Tree {
    let mut pkgs: Vec<&str> = UNWANTED.iter().map(|(_, p)| *p).collect();
    pkgs.extend(["prelink", "auditd", "rsyslog", "chrony", "ufw", "cron", "at", "sudo"]);
    let t = base_ubuntu(&pkgs);
    t.put("etc/modprobe.d/blacklist.conf", b"blacklist cramfs\n");
    t.put("usr/lib/modprobe.d/50-udf.conf", b"install udf /sbin/modprobe --ignore-install udf\n");
    t.put(
        "etc/fstab",
        b"UUID=1111 / ext4 defaults 0 1\ntmpfs /tmp tmpfs defaults 0 0\ntmpfs /dev/shm tmpfs defaults 0 0\nUUID=2222 /var ext4 defaults 0 2\n/tmp /var/tmp none bind 0 0\nUUID=3333 /var/log ext4 defaults 0 2\nUUID=4444 /var/log/audit ext4 defaults 0 2\nUUID=5555 /home ext4 defaults 0 2\n",
    );
    put_mode(&t, "srv/data.txt", "x", 0o666);
    mkdir(&t, "srv/drop", 0o777);
    t.put("srv/orphan", b"x");
    chown(&t, "srv/orphan", 4242, 0);
    t.put("srv/nogroup", b"x");
    chown(&t, "srv/nogroup", 0, 4343);
    put_mode(&t, "usr/local/bin/tool", "ELF", 0o4755);
    put_mode(&t, "usr/local/bin/gtool", "ELF", 0o2755);
    put_mode(
        &t,
        "boot/grub/grub.cfg",
        "set default=0\nmenuentry 'Ubuntu' {\n\tlinux /boot/vmlinuz root=/dev/sda1 ro quiet\n}\n",
        0o644,
    );
    chown(&t, "boot/grub/grub.cfg", 1000, 1000);
    t.put("etc/default/grub", b"GRUB_CMDLINE_LINUX=\"\"\n");
    let mut sc = String::from("# bad values\n");
    for (id, key, _, bad) in SYSCTLS {
        if id != "kernel.randomize_va_space" {
            sc.push_str(&format!("{key}={bad}\n"));
        }
    }
    t.put("etc/sysctl.conf", sc.as_bytes());
    t.put("usr/lib/systemd/systemd-coredump", b"ELF");
    t.put("etc/systemd/coredump.conf", b"[Coredump]\n#Storage=external\nProcessSizeMax=2G\n");
    put_mode(&t, "etc/issue", "Ubuntu 22.04.3 LTS \\n \\l\n", 0o666);
    put_mode(&t, "etc/issue.net", "Kernel \\r on an \\m\n", 0o666);
    put_mode(&t, "etc/motd", "Welcome to Ubuntu!\n", 0o666);
    for f in ["etc/issue", "etc/issue.net", "etc/motd"] {
        chown(&t, f, 1000, 1000);
    }
    t.put("etc/chrony/chrony.conf", b"# no sources\nmakestep 1 3\n");
    t.put("lib/systemd/system/chrony.service", b"[Unit]\n");
    t.put("etc/ufw/ufw.conf", b"ENABLED=no\n");
    t.put("etc/default/ufw", b"DEFAULT_INPUT_POLICY=\"ACCEPT\"\n");
    enable(&t, "multi-user.target", "apache2.service");
    t.put(
        "etc/audit/auditd.conf",
        b"max_log_file_action = ROTATE\nspace_left_action = SYSLOG\naction_mail_acct = admin\nadmin_space_left_action = SUSPEND\n",
    );
    t.put(
        "etc/audit/rules.d/audit.rules",
        b"-D\n-b 8192\n-w /etc/passwd -p r\n-a always,exit -F arch=b64 -S chmod -k perm\n-e 1\n",
    );
    t.put("etc/sudoers", b"Defaults use_pty\nroot ALL=(ALL:ALL) ALL\n");
    t.put("etc/rsyslog.conf", b"module(load=\"imuxsock\")\n*.* /var/log/syslog\n");
    t.put("etc/systemd/journald.conf", b"[Journal]\n#Storage=auto\nCompress=no\n");
    put_mode(&t, "var/log/syslog", "log\n", 0o644);
    put_mode(&t, "etc/crontab", "# crontab\n", 0o644);
    chown(&t, "etc/crontab", 1000, 0);
    for d in ["etc/cron.hourly", "etc/cron.daily", "etc/cron.weekly", "etc/cron.monthly", "etc/cron.d"] {
        mkdir(&t, d, 0o755);
        chown(&t, d, 0, 1000);
    }
    t.put("etc/cron.deny", b"nobody\n");
    t.put("etc/at.deny", b"nobody\n");
    t
}

// ---------------------------------------------------------------------------------------------
// Every rule: pass on the hardened tree, fail on the neglected one.

use Status::{Error, Fail, NotApplicable as Na, Pass};

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
        let f = get(&b, id);
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
        let f = get(&b, id);
        let want = format!("{key} = {good}");
        assert!(f.evidence.iter().any(|e| e.expected.as_deref() == Some(want.as_str())), "{f:#?}");
    }
    for (id, pkg) in UNWANTED {
        let f = get(&b, id);
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
    assert_eq!(get(&b, "fs.world_writable_files").evidence.iter().filter(|e| e.file.is_some()).count(), 4);
    // Ubuntu: the install line is what SSG requires; the missing blacklist is explained.
    let f = get(&b, "fs.module_cramfs_disabled");
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

/// Every rule of these areas has a passing and a failing case somewhere in this file.
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
    // Extra cases in the dedicated tests below.
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

// ---------------------------------------------------------------------------------------------
// Dedicated cases.

#[test]
fn allow_files_with_loose_permissions_and_owners_fail() {
    let t = base_ubuntu(&["cron", "at"]);
    put_mode(&t, "etc/cron.allow", "root\n", 0o644);
    chown(&t, "etc/cron.allow", 1000, 0);
    put_mode(&t, "etc/at.allow", "root\n", 0o666);
    chown(&t, "etc/at.allow", 0, 1000);
    let b = baseline_of(t.path());
    check_all(
        &b,
        &[
            ("cron.allow_exists", Pass, Some("/etc/cron.allow"), None, "exists"),
            ("cron.allow_permissions", Fail, Some("/etc/cron.allow"), None, "0644"),
            ("cron.allow_owner", Fail, Some("/etc/cron.allow"), None, "1000:root(0)"),
            ("at.allow_permissions", Fail, Some("/etc/at.allow"), None, "0666"),
            ("at.allow_owner", Fail, Some("/etc/at.allow"), None, "root(0):1000"),
        ],
    );
}

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
    let f = get(&b, "net.ip_forward");
    assert!(
        f.evidence.iter().any(|e| e.file.as_deref() == Some("/usr/lib/sysctl.d/50-default.conf")
            && e.note.as_deref().is_some_and(|n| n.contains("masked by /etc/sysctl.d/50-default.conf"))),
        "{f:#?}"
    );
    let f = get(&b, "net.all_secure_redirects");
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
    let f = get(&b, "fs.module_hfs_disabled");
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
fn rhel_grub_user_cfg_bls_entries_and_packages() {
    let t = Tree::new();
    t.os_release("rhel", "9.2", "Red Hat Enterprise Linux 9.2 (Plow)");
    t.copy("var/lib/rpm/rpmdb.sqlite", "go-rpmdb/cbl-mariner-2.0-sqlite/rpmdb.sqlite");
    t.put("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    t.put("etc/group", b"root:x:0:\n");
    let cfg = "### BEGIN /etc/grub.d/01_users ###\nif [ -f ${prefix}/user.cfg ]; then\n  source ${prefix}/user.cfg\n  if [ -n \"${GRUB2_PASSWORD}\" ]; then\n    set superusers=\"root\"\n    export superusers\n    password_pbkdf2 root ${GRUB2_PASSWORD}\n  fi\nfi\nblscfg\n";
    put_mode(&t, "boot/grub2/grub.cfg", cfg, 0o600);
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
        let f = get(&b, id);
        assert_eq!(f.status, Na, "{f:#?}");
        assert!(f.reason.as_deref().is_some_and(|r| r.contains("/boot/efi/EFI/ubuntu/grub.cfg")), "{f:#?}");
    }
}

#[test]
fn firewalls_nftables_iptables_and_firewalld() {
    let t = base_ubuntu(&["nftables"]);
    t.put("etc/nftables.conf", b"#!/usr/sbin/nft -f\nflush ruleset\ninclude \"/etc/nftables.d/*.nft\"\n");
    t.put(
        "etc/nftables.d/filter.nft",
        b"table inet filter {\n  chain forward { type filter hook forward priority 0; policy drop; }\n  chain input {\n    type filter hook input priority 0;\n    policy drop;\n  }\n}\n",
    );
    enable(&t, "sysinit.target", "nftables.service");
    let b = baseline_of(t.path());
    check(
        &b,
        &(
            "net.firewall_default_deny",
            Pass,
            Some("/etc/nftables.d/filter.nft"),
            Some(5),
            "input chain (line 4) has policy drop",
        ),
    );
    // A drop policy on the forward chain only does not count.
    t.put("etc/nftables.d/filter.nft", b"table inet filter {\n  chain forward { type filter hook forward priority 0; policy drop; }\n  chain input { type filter hook input priority 0; policy accept; }\n}\n");
    let b = baseline_of(t.path());
    check(&b, &("net.firewall_default_deny", Fail, Some("/etc/nftables.conf"), None, "no input base chain"));

    let t = base_ubuntu(&["iptables-persistent"]);
    t.put("etc/iptables/rules.v4", b"*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\nCOMMIT\n");
    enable(&t, "multi-user.target", "netfilter-persistent.service");
    let b = baseline_of(t.path());
    check(&b, &("net.firewall_default_deny", Pass, Some("/etc/iptables/rules.v4"), Some(2), ":INPUT DROP [0:0]"));
    check(&b, &("net.firewall_installed", Pass, None, None, "iptables-persistent 1.0 installed"));

    let t = base_ubuntu(&["firewalld"]);
    t.put("etc/firewalld/firewalld.conf", b"DefaultZone=public\n");
    let b = baseline_of(t.path());
    check(&b, &("net.firewall_default_deny", Fail, None, None, "firewalld: no unit of firewalld.service is enabled"));
    enable(&t, "multi-user.target", "firewalld.service");
    let b = baseline_of(t.path());
    check(&b, &("net.firewall_default_deny", Pass, Some("/etc/firewalld/firewalld.conf"), None, "DefaultZone=public"));
}

#[test]
fn time_sync_with_timesyncd() {
    let t = base_ubuntu(&["systemd-timesyncd"]);
    t.put("etc/systemd/timesyncd.conf", b"[Time]\n#NTP=\n#FallbackNTP=ntp.ubuntu.com\n");
    enable(&t, "sysinit.target", "systemd-timesyncd.service");
    let b = baseline_of(t.path());
    check(&b, &("time.daemon_installed", Pass, None, None, "systemd-timesyncd 1.0 installed"));
    check(&b, &("time.sync_configured", Fail, None, None, "systemd-timesyncd: no server/pool configured"));
    t.put("etc/systemd/timesyncd.conf.d/50-site.conf", b"[Time]\nNTP=time.example.com\n");
    let b = baseline_of(t.path());
    check(
        &b,
        &(
            "time.sync_configured",
            Pass,
            Some("/etc/systemd/timesyncd.conf.d/50-site.conf"),
            Some(2),
            "NTP=time.example.com",
        ),
    );
}

#[test]
fn audit_rules_fall_back_to_audit_rules_file() {
    let t = base_ubuntu(&["auditd"]);
    t.put("etc/audit/audit.rules", b"-D\n-w /etc/sudoers -p wa -k scope\n-w /etc/sudoers.d/ -p rwa -k scope\n-e 2\n");
    let b = baseline_of(t.path());
    check(&b, &("audit.sudoers", Pass, Some("/etc/audit/audit.rules"), Some(3), "-w /etc/sudoers.d/ -p rwa"));
    check(&b, &("audit.sudoers", Pass, None, None, "rules read from /etc/audit/audit.rules"));
    check(&b, &("audit.immutable", Pass, Some("/etc/audit/audit.rules"), Some(4), "-e 2"));
    // Rules without the auid filters do not satisfy the perm_mod group.
    t.put("etc/audit/rules.d/50.rules", b"-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat,chown,fchown,fchownat,lchown,setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr\n");
    let b = baseline_of(t.path());
    check(&b, &("audit.perm_mod", Fail, None, None, "b64: chmod, fchmod, fchmodat, chown"));
    check(&b, &("audit.sudoers", Fail, None, None, "rules read from /etc/audit/rules.d/*.rules"));
}

// ---------------------------------------------------------------------------------------------
// Hostile trees.

#[test]
fn many_world_writable_files_are_counted_and_capped() {
    let t = base_ubuntu(&["bash"]);
    for i in 0..60 {
        put_mode(&t, &format!("srv/ww/f{i:03}"), "x", 0o666);
    }
    let b = baseline_of(t.path());
    let f = get(&b, "fs.world_writable_files");
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
        let f = get(&b, id);
        assert_eq!(f.status, Error, "{f:#?}");
        assert!(
            f.evidence.iter().any(|e| e.note.as_deref().is_some_and(|n| n.contains("deeper than 256 levels"))),
            "{f:#?}"
        );
    }
}

#[test]
fn binary_sysctl_conf_makes_sysctl_rules_error() {
    let t = base_ubuntu(&["bash"]);
    t.put("etc/sysctl.conf", b"\x7fELF\x02\x01\x01\x00\x00\x00net.ipv4.ip_forward=0\xff\xfe\n");
    let b = baseline_of(t.path());
    for (id, ..) in SYSCTLS {
        let f = get(&b, id);
        assert_eq!(f.status, Error, "{f:#?}");
        assert!(f.reason.as_deref().is_some_and(|r| r.contains("/etc/sysctl.conf: binary data")), "{f:#?}");
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
        let f = get(&b, id);
        assert_eq!(f.status, Error, "{f:#?}");
        assert!(f.reason.as_deref().is_some_and(|r| r.contains("/etc/fstab") && r.contains("limit")), "{f:#?}");
    }
    assert!(b.stats.bytes_read < 64 * 1024 * 1024, "{:?}", b.stats);
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
    let f = get(&b, "net.ip_forward");
    assert_eq!(f.status, Error, "{f:#?}");
    assert!(f.reason.as_deref().is_some_and(|r| r.contains("30-loop.conf")), "{f:#?}");
    let f = get(&b, "fs.module_cramfs_disabled");
    assert_eq!(f.status, Error, "{f:#?}");
    assert!(f.reason.as_deref().is_some_and(|r| r.contains("/etc/modprobe.d/")), "{f:#?}");
    check(&b, &("fs.world_writable_files", Pass, None, None, "entries examined"));
    assert!(b.stats.files_visited < 500, "{:?}", b.stats);
}
