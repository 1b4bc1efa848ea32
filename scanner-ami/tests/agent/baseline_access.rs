//! Baseline rules of the access-control areas (ssh, sudo, pam, accounts) on small root trees:
//! for every rule a tree that passes and one that fails, asserting the status and the key
//! evidence; plus the parsers' hard cases (sshd Include/Match/defaults, sudoers includedir, PAM
//! includes) and hostile inputs (huge and binary files, symlinks pointing out of the root).
//!
//! Trees are built as root (the test harness runs as root), so owners are set with chown.

use std::time::{Duration, Instant};

use scanner_ami::baseline::{Baseline, Finding, Status};

use crate::util::{Tree, baseline_of, dpkg_installed, finding, rule};

// ---------------------------------------------------------------------------------------------
// Helpers.

#[track_caller]
fn expect<'a>(b: &'a Baseline, id: &str, status: Status) -> &'a Finding {
    let f = rule(b, id);
    assert_eq!(f.status, status, "{id}: {f:#?}");
    f
}

/// Assert an evidence item about `file` (at `line`, if given) whose `found` contains `found`.
#[track_caller]
fn has(f: &Finding, file: &str, line: Option<usize>, found: &str) {
    assert!(
        f.evidence.iter().any(|e| e.file.as_deref() == Some(file)
            && (line.is_none() || e.line == line)
            && e.found.as_deref().is_some_and(|x| x.contains(found))),
        "{}: no evidence {file}:{line:?} containing {found:?} in {:#?}",
        f.id,
        f.evidence
    );
}

/// Assert an evidence note containing `note`.
#[track_caller]
fn noted(f: &Finding, note: &str) {
    assert!(
        f.evidence.iter().any(|e| e.note.as_deref().is_some_and(|n| n.contains(note))),
        "{}: no note containing {note:?} in {:#?}",
        f.id,
        f.evidence
    );
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
sync:x:4:65534:sync:/bin:/bin/sync\n\
alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

const GROUP: &str = "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nsudo:x:27:alice\nsugroup:x:1001:\nssh_keys:x:998:\nalice:x:1000:\nnogroup:x:65534:\n";

const SHADOW: &str = "root:*:19000:0:99999:7:::\n\
daemon:*:19000:0:99999:7:::\n\
sync:*:19000:0:99999:7:::\n\
alice:$6$salt$hash:19000:1:365:7:30::\n\
nobody:*:19000:0:99999:7:::\n";

const GSHADOW: &str =
    "root:*::\ndaemon:*::\nshadow:*::\nsudo:*::alice\nsugroup:!::\nssh_keys:!::\nalice:!::\nnogroup:*::\n";

/// An Ubuntu 22.04 tree with these dpkg packages installed.
fn ubuntu(pkgs: &[&str]) -> Tree {
    let t = Tree::new();
    t.os_release("ubuntu", "22.04", "Ubuntu 22.04.4 LTS");
    dpkg_installed(&t, pkgs);
    t
}

/// Compliant account databases (and backups), root's and alice's homes.
fn accounts(t: &Tree) {
    accounts_with(t, PASSWD, GROUP, SHADOW);
}

fn accounts_with(t: &Tree, passwd: &str, group: &str, shadow: &str) {
    for (f, body, mode, gid) in [
        ("etc/passwd", passwd, 0o644, 0),
        ("etc/passwd-", passwd, 0o644, 0),
        ("etc/group", group, 0o644, 0),
        ("etc/group-", group, 0o644, 0),
        ("etc/shadow", shadow, 0o640, 42),
        ("etc/shadow-", shadow, 0o640, 42),
        ("etc/gshadow", GSHADOW, 0o640, 42),
        ("etc/gshadow-", GSHADOW, 0o640, 42),
    ] {
        t.put(f, body.as_bytes());
        t.chmod(f, mode);
        t.chown(f, 0, gid);
    }
    t.mkdir("root", 0o700);
    t.mkdir("home/alice", 0o750);
    t.chown("home/alice", 1000, 1000);
}

// ---------------------------------------------------------------------------------------------
// SSH.

const SSHD: &str = "/etc/ssh/sshd_config";

/// Ubuntu with openssh-server, compliant accounts, and this sshd_config (0600 root:root).
fn sshd(cfg: &str) -> Tree {
    let t = ubuntu(&["openssh-server"]);
    accounts(&t);
    t.put("etc/ssh/sshd_config", cfg.as_bytes());
    t.chmod("etc/ssh/sshd_config", 0o600);
    t
}

/// `(rule, compliant line, non-compliant line)`.
const SSH_KEYWORDS: &[(&str, &str, &str)] = &[
    ("ssh.log_level", "LogLevel VERBOSE", "LogLevel QUIET"),
    ("ssh.x11_forwarding", "X11Forwarding no", "X11Forwarding yes"),
    ("ssh.max_auth_tries", "MaxAuthTries 4", "MaxAuthTries 5"),
    ("ssh.ignore_rhosts", "IgnoreRhosts yes", "IgnoreRhosts no"),
    ("ssh.hostbased_authentication", "HostbasedAuthentication no", "HostbasedAuthentication yes"),
    ("ssh.permit_root_login", "PermitRootLogin no", "PermitRootLogin prohibit-password"),
    ("ssh.permit_empty_passwords", "PermitEmptyPasswords no", "PermitEmptyPasswords yes"),
    ("ssh.permit_user_environment", "PermitUserEnvironment no", "PermitUserEnvironment yes"),
    ("ssh.ciphers", "Ciphers chacha20-poly1305@openssh.com,aes256-ctr", "Ciphers aes256-ctr,aes128-cbc"),
    ("ssh.macs", "MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256", "MACs hmac-sha2-256,hmac-sha1"),
    ("ssh.kex_algorithms", "KexAlgorithms curve25519-sha256", "KexAlgorithms diffie-hellman-group14-sha1"),
    ("ssh.client_alive_interval", "ClientAliveInterval 5m", "ClientAliveInterval 0"),
    ("ssh.client_alive_count_max", "ClientAliveCountMax 2", "ClientAliveCountMax 0"),
    ("ssh.login_grace_time", "LoginGraceTime 1m", "LoginGraceTime 2m"),
    ("ssh.banner", "Banner /etc/issue.net", "Banner none"),
    ("ssh.use_pam", "UsePAM yes", "UsePAM no"),
    ("ssh.allow_tcp_forwarding", "AllowTcpForwarding no", "AllowTcpForwarding yes"),
    ("ssh.max_startups", "MaxStartups 10:30:60", "MaxStartups 10:30:100"),
    ("ssh.max_sessions", "MaxSessions 10", "MaxSessions 11"),
    ("ssh.access_limited", "AllowGroups sshusers", "Port 22"),
];

#[test]
fn ssh_keywords_pass_and_fail() {
    for (id, good, bad) in SSH_KEYWORDS {
        let t = sshd(&format!("# header comment\n{good}\n"));
        t.put("etc/issue.net", b"Authorized use only\n");
        let f = finding(t.path(), id);
        assert_eq!(f.status, Status::Pass, "{id} with {good:?}: {f:#?}");
        has(&f, SSHD, Some(2), good);

        let t = sshd(&format!("# header comment\n{bad}\n"));
        let f = finding(t.path(), id);
        assert_eq!(f.status, Status::Fail, "{id} with {bad:?}: {f:#?}");
        if *id == "ssh.access_limited" {
            has(&f, SSHD, None, "no AllowUsers");
        } else {
            has(&f, SSHD, Some(2), bad);
        }
    }
}

#[test]
fn ssh_weak_algorithm_named() {
    let t = sshd("Ciphers +3des-cbc\nMACs -hmac-sha1\n");
    let b = baseline_of(t.path());
    let f = expect(&b, "ssh.ciphers", Status::Fail);
    noted(f, "weak: 3des-cbc");
    // Removing hmac-sha1 alone leaves the default list's 64/128-bit UMACs and hmac-sha1-etm.
    let f = expect(&b, "ssh.macs", Status::Fail);
    noted(f, "umac-64@openssh.com");
    let t = sshd("MACs -hmac-sha1*,umac-64*,umac-128*\n");
    expect(&baseline_of(t.path()), "ssh.macs", Status::Pass);
}

#[test]
fn ssh_compiled_in_defaults() {
    let t = sshd("Port 22\n");
    let b = baseline_of(t.path());
    for (id, status, value) in [
        ("ssh.permit_root_login", Status::Fail, "PermitRootLogin prohibit-password"),
        ("ssh.log_level", Status::Pass, "LogLevel INFO"),
        ("ssh.x11_forwarding", Status::Pass, "X11Forwarding no"),
        ("ssh.max_auth_tries", Status::Fail, "MaxAuthTries 6"),
        ("ssh.ignore_rhosts", Status::Pass, "IgnoreRhosts yes"),
        ("ssh.allow_tcp_forwarding", Status::Fail, "AllowTcpForwarding yes"),
        ("ssh.use_pam", Status::Fail, "UsePAM no"),
        ("ssh.banner", Status::Fail, "Banner none"),
        ("ssh.client_alive_interval", Status::Fail, "ClientAliveInterval 0"),
        ("ssh.client_alive_count_max", Status::Pass, "ClientAliveCountMax 3"),
        ("ssh.login_grace_time", Status::Fail, "LoginGraceTime 120"),
        ("ssh.max_startups", Status::Fail, "MaxStartups 10:30:100"),
        ("ssh.max_sessions", Status::Pass, "MaxSessions 10"),
    ] {
        let f = expect(&b, id, status);
        has(f, SSHD, None, value);
        noted(f, "OpenSSH default");
    }
    let f = expect(&b, "ssh.ciphers", Status::Pass);
    noted(f, "OpenSSH default");
    let f = expect(&b, "ssh.kex_algorithms", Status::Pass);
    noted(f, "OpenSSH default");
    // OpenSSH's default MAC list includes hmac-sha1 and umac-64, which CIS calls weak.
    let f = expect(&b, "ssh.macs", Status::Fail);
    noted(f, "hmac-sha1-etm@openssh.com");
}

#[test]
fn ssh_include_glob_relative_first_value_wins() {
    let t = sshd("# Ubuntu style\nInclude sshd_config.d/*.conf extra/last.conf\nPermitRootLogin yes\nMaxAuthTries 6\n");
    t.put("etc/ssh/sshd_config.d/20-b.conf", b"PermitRootLogin prohibit-password\nMaxAuthTries 3\n");
    t.put("etc/ssh/sshd_config.d/10-a.conf", b"\n# first\nPermitRootLogin no\n");
    t.put("etc/ssh/sshd_config.d/05-ignored.txt", b"PermitRootLogin yes\n");
    t.put("etc/ssh/extra/last.conf", b"X11Forwarding yes\n");
    for f in ["etc/ssh/sshd_config.d/20-b.conf", "etc/ssh/sshd_config.d/10-a.conf", "etc/ssh/extra/last.conf"] {
        t.chmod(f, 0o600);
    }
    let b = baseline_of(t.path());
    let f = expect(&b, "ssh.permit_root_login", Status::Pass);
    has(f, "/etc/ssh/sshd_config.d/10-a.conf", Some(3), "PermitRootLogin no");
    let f = expect(&b, "ssh.max_auth_tries", Status::Pass);
    has(f, "/etc/ssh/sshd_config.d/20-b.conf", Some(2), "MaxAuthTries 3");
    let f = expect(&b, "ssh.x11_forwarding", Status::Fail);
    has(f, "/etc/ssh/extra/last.conf", Some(1), "X11Forwarding yes");
    // The permission rules cover the included files too.
    let f = expect(&b, "ssh.sshd_config_permissions", Status::Pass);
    has(f, "/etc/ssh/sshd_config.d/10-a.conf", None, "0600");
    t.chmod("etc/ssh/sshd_config.d/20-b.conf", 0o644);
    let f = finding(t.path(), "ssh.sshd_config_permissions");
    assert_eq!(f.status, Status::Fail);
    has(&f, "/etc/ssh/sshd_config.d/20-b.conf", None, "0644");
}

#[test]
fn ssh_include_loop_is_error() {
    let t = sshd("Include loop.conf\nPermitRootLogin no\n");
    t.put("etc/ssh/loop.conf", b"Include /etc/ssh/sshd_config\n");
    let b = baseline_of(t.path());
    for id in ["ssh.permit_root_login", "ssh.log_level", "ssh.access_limited"] {
        let f = expect(&b, id, Status::Error);
        let reason = f.reason.clone().unwrap_or_default();
        assert!(reason.contains("Include loop") && reason.contains("loop.conf"), "{reason}");
    }
    // Self-include through a glob is a loop too.
    let t = sshd("Include /etc/ssh/sshd_*\n");
    let f = finding(t.path(), "ssh.permit_root_login");
    assert_eq!(f.status, Status::Error, "{f:#?}");
}

#[test]
fn ssh_bad_quotes_is_error() {
    let t = sshd("Banner \"/etc/issue.net\nPermitRootLogin no\n");
    let f = finding(t.path(), "ssh.permit_root_login");
    assert_eq!(f.status, Status::Error);
    assert!(f.reason.unwrap_or_default().contains("/etc/ssh/sshd_config:1"));
}

#[test]
fn ssh_match_blocks() {
    // A Match that allows root logins fails the rule even though the global value is "no".
    let t = sshd(
        "PermitRootLogin no\nX11Forwarding no\nMatch User admin\n    PermitRootLogin yes\n    X11Forwarding yes\n",
    );
    let b = baseline_of(t.path());
    let f = expect(&b, "ssh.permit_root_login", Status::Fail);
    has(f, SSHD, Some(1), "PermitRootLogin no");
    has(f, SSHD, Some(4), "PermitRootLogin yes");
    noted(f, "Match User admin");
    // Other keywords: the global value decides, the override is reported.
    let f = expect(&b, "ssh.x11_forwarding", Status::Pass);
    has(f, SSHD, Some(5), "X11Forwarding yes");
    assert!(f.reason.as_deref().unwrap_or_default().contains("Match"), "{f:#?}");

    // Settings inside a Match do not apply globally: the default decides.
    let t = sshd("Match Address 10.0.0.0/8\n  PermitRootLogin no\n");
    let f = finding(t.path(), "ssh.permit_root_login");
    assert_eq!(f.status, Status::Fail);
    noted(&f, "OpenSSH default");
    has(&f, SSHD, Some(2), "PermitRootLogin no");

    // `Match all` returns to the global context; an Include inside Match belongs to the Match.
    let t = sshd("MaxAuthTries 3\nMatch Group sftp\n  Include sftp.conf\nMatch all\nAllowTcpForwarding no\n");
    t.put("etc/ssh/sftp.conf", b"MaxAuthTries 10\n");
    let b = baseline_of(t.path());
    let f = expect(&b, "ssh.max_auth_tries", Status::Pass);
    has(f, SSHD, Some(1), "MaxAuthTries 3");
    has(f, "/etc/ssh/sftp.conf", Some(1), "MaxAuthTries 10");
    let f = expect(&b, "ssh.allow_tcp_forwarding", Status::Pass);
    has(f, SSHD, Some(5), "AllowTcpForwarding no");
}

#[test]
fn ssh_applicability() {
    // Neither package nor file: not applicable.
    let t = ubuntu(&["bash"]);
    accounts(&t);
    let b = baseline_of(t.path());
    for id in ["ssh.permit_root_login", "ssh.sshd_config_permissions", "ssh.private_host_keys"] {
        expect(&b, id, Status::NotApplicable);
    }
    // Package installed, file missing: sshd would not start; that is an error, not a pass.
    let t = ubuntu(&["openssh-server"]);
    let f = finding(t.path(), "ssh.permit_root_login");
    assert_eq!(f.status, Status::Error);
    // No package database at all: the configuration file decides.
    let t = Tree::new();
    t.os_release("ubuntu", "22.04", "Ubuntu 22.04");
    t.put("etc/ssh/sshd_config", b"PermitRootLogin no\n");
    let f = finding(t.path(), "ssh.permit_root_login");
    assert_eq!(f.status, Status::Pass);
}

#[test]
fn ssh_config_file_permissions() {
    let t = sshd("PermitRootLogin no\n");
    let b = baseline_of(t.path());
    has(expect(&b, "ssh.sshd_config_permissions", Status::Pass), SSHD, None, "0600");
    has(expect(&b, "ssh.sshd_config_owner", Status::Pass), SSHD, None, "owner root(0)");
    has(expect(&b, "ssh.sshd_config_group", Status::Pass), SSHD, None, "group root(0)");
    t.chmod("etc/ssh/sshd_config", 0o644);
    t.chown("etc/ssh/sshd_config", 1000, 1000);
    let b = baseline_of(t.path());
    has(expect(&b, "ssh.sshd_config_permissions", Status::Fail), SSHD, None, "0644");
    has(expect(&b, "ssh.sshd_config_owner", Status::Fail), SSHD, None, "owner alice(1000)");
    has(expect(&b, "ssh.sshd_config_group", Status::Fail), SSHD, None, "group alice(1000)");
}

#[test]
fn ssh_host_key_permissions() {
    let t = sshd("PermitRootLogin no\n");
    let b = baseline_of(t.path());
    expect(&b, "ssh.private_host_keys", Status::NotApplicable);
    expect(&b, "ssh.public_host_keys", Status::NotApplicable);

    for k in ["ed25519", "rsa"] {
        t.put(&format!("etc/ssh/ssh_host_{k}_key"), b"PRIVATE");
        t.chmod(&format!("etc/ssh/ssh_host_{k}_key"), 0o600);
        t.put(&format!("etc/ssh/ssh_host_{k}_key.pub"), b"ssh-ed25519 AAAA");
        t.chmod(&format!("etc/ssh/ssh_host_{k}_key.pub"), 0o644);
    }
    // RHEL's layout: 0640 group ssh_keys is accepted.
    t.chmod("etc/ssh/ssh_host_rsa_key", 0o640);
    t.chown("etc/ssh/ssh_host_rsa_key", 0, 998);
    let b = baseline_of(t.path());
    let f = expect(&b, "ssh.private_host_keys", Status::Pass);
    has(f, "/etc/ssh/ssh_host_ed25519_key", None, "0600");
    has(f, "/etc/ssh/ssh_host_rsa_key", None, "0640 root(0):ssh_keys(998)");
    has(expect(&b, "ssh.public_host_keys", Status::Pass), "/etc/ssh/ssh_host_rsa_key.pub", None, "0644");

    t.chmod("etc/ssh/ssh_host_ed25519_key", 0o644);
    t.chmod("etc/ssh/ssh_host_rsa_key.pub", 0o666);
    let b = baseline_of(t.path());
    has(expect(&b, "ssh.private_host_keys", Status::Fail), "/etc/ssh/ssh_host_ed25519_key", None, "0644");
    has(expect(&b, "ssh.public_host_keys", Status::Fail), "/etc/ssh/ssh_host_rsa_key.pub", None, "0666");
    // 0640 with a group other than ssh_keys is not accepted.
    t.chmod("etc/ssh/ssh_host_ed25519_key", 0o640);
    let f = finding(t.path(), "ssh.private_host_keys");
    assert_eq!(f.status, Status::Fail);
}

#[test]
fn ssh_huge_config_is_error_quickly() {
    let t = sshd("");
    let f = std::fs::File::create(t.path().join("etc/ssh/sshd_config")).expect("create");
    f.set_len(1 << 30).expect("sparse 1 GiB");
    let start = Instant::now();
    let b = baseline_of(t.path());
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    let f = expect(&b, "ssh.permit_root_login", Status::Error);
    let reason = f.reason.clone().unwrap_or_default();
    assert!(reason.contains("1073741824") && reason.contains("limit"), "{reason}");
}

#[test]
fn ssh_symlink_stays_inside_root() {
    // A file outside the root that a host-side resolution would reach.
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("sshd_config"), "PermitRootLogin no\n").expect("write");
    let abs = outside.path().join("sshd_config");
    let rel_inside = abs.to_str().expect("utf-8").trim_start_matches('/').to_owned();
    for target in [format!("../../../../../../../../../../{rel_inside}"), abs.display().to_string()] {
        let t = sshd("");
        std::fs::remove_file(t.path().join("etc/ssh/sshd_config")).expect("rm");
        t.symlink("etc/ssh/sshd_config", &target);
        // Inside the root the same path is a decoy that must be the one read.
        t.put(&rel_inside, b"PermitRootLogin yes\n");
        let f = finding(t.path(), "ssh.permit_root_login");
        assert_eq!(f.status, Status::Fail, "{target}: {f:#?}");
        has(&f, SSHD, Some(1), "PermitRootLogin yes");
    }
}

// ---------------------------------------------------------------------------------------------
// sudo.

fn sudo(main: &str) -> Tree {
    let t = ubuntu(&["sudo"]);
    accounts(&t);
    t.put("etc/sudoers", main.as_bytes());
    t.chmod("etc/sudoers", 0o440);
    t
}

#[test]
fn sudo_rules_pass() {
    let t = sudo(
        "# policy\nDefaults\tenv_reset\nDefaults use_pty\nDefaults logfile=\"/var/log/sudo.log\"\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
    );
    t.put("etc/sudoers.d/README", b"# files here\n");
    t.chmod("etc/sudoers.d/README", 0o440);
    let b = baseline_of(t.path());
    noted(expect(&b, "sudo.installed", Status::Pass), "package sudo is installed");
    has(expect(&b, "sudo.use_pty", Status::Pass), "/etc/sudoers", Some(3), "Defaults use_pty");
    has(expect(&b, "sudo.logfile", Status::Pass), "/etc/sudoers", Some(4), "logfile=\"/var/log/sudo.log\"");
    noted(expect(&b, "sudo.require_authentication", Status::Pass), "no NOPASSWD");
    let f = expect(&b, "sudo.sudoers_permissions", Status::Pass);
    has(f, "/etc/sudoers.d/README", None, "0440");
}

#[test]
fn sudo_rules_fail() {
    let t = sudo("Defaults env_reset\n#includedir /etc/sudoers.d\n");
    t.put("etc/sudoers.d/90-cloud", b"# cloud-init\nubuntu ALL=(ALL) NOPASSWD:ALL\nDefaults:deploy !authenticate\n");
    t.chmod("etc/sudoers.d/90-cloud", 0o644);
    let b = baseline_of(t.path());
    has(expect(&b, "sudo.use_pty", Status::Fail), "/etc/sudoers", None, "use_pty not set");
    has(expect(&b, "sudo.logfile", Status::Fail), "/etc/sudoers", None, "logfile not set");
    let f = expect(&b, "sudo.require_authentication", Status::Fail);
    has(f, "/etc/sudoers.d/90-cloud", Some(2), "NOPASSWD:ALL");
    has(f, "/etc/sudoers.d/90-cloud", Some(3), "!authenticate");
    has(expect(&b, "sudo.sudoers_permissions", Status::Fail), "/etc/sudoers.d/90-cloud", None, "0644");

    // An explicit !use_pty after use_pty wins; a scoped one fails too.
    let t = sudo("Defaults use_pty\nDefaults !use_pty\n");
    has(&finding(t.path(), "sudo.use_pty"), "/etc/sudoers", Some(2), "!use_pty");
    let t = sudo("Defaults use_pty\nDefaults:bob !use_pty\n");
    let f = finding(t.path(), "sudo.use_pty");
    assert_eq!(f.status, Status::Fail);
    has(&f, "/etc/sudoers", Some(2), "Defaults:bob !use_pty");

    // Not installed: the installed rule fails, the others do not apply.
    let t = ubuntu(&["bash"]);
    t.put("etc/sudoers", b"Defaults use_pty\n");
    let b = baseline_of(t.path());
    noted(expect(&b, "sudo.installed", Status::Fail), "not installed");
    expect(&b, "sudo.use_pty", Status::NotApplicable);
}

#[test]
fn sudo_includedir_skips_tilde_and_dot() {
    let t = sudo("#includedir /etc/sudoers.d\n");
    t.put("etc/sudoers.d/a", b"Defaults use_pty\n");
    t.put("etc/sudoers.d/foo~", b"Defaults !use_pty\nbob ALL=(ALL) NOPASSWD: ALL\n");
    t.put("etc/sudoers.d/a.b", b"Defaults !use_pty\nbob ALL=(ALL) NOPASSWD: ALL\n");
    for f in ["etc/sudoers.d/a", "etc/sudoers.d/foo~", "etc/sudoers.d/a.b"] {
        t.chmod(f, 0o440);
    }
    let b = baseline_of(t.path());
    has(expect(&b, "sudo.use_pty", Status::Pass), "/etc/sudoers.d/a", Some(1), "use_pty");
    expect(&b, "sudo.require_authentication", Status::Pass);
    let f = expect(&b, "sudo.sudoers_permissions", Status::Pass);
    assert!(
        !f.evidence.iter().any(|e| e.file.as_deref().is_some_and(|p| p.contains('~') || p.ends_with(".b"))),
        "{f:#?}"
    );
}

#[test]
fn sudo_include_loop_and_continuation() {
    let t = sudo("#include /etc/sudoers.local\n");
    t.put("etc/sudoers.local", b"@include sudoers\n");
    let f = finding(t.path(), "sudo.use_pty");
    assert_eq!(f.status, Status::Error);
    assert!(f.reason.unwrap_or_default().contains("include loop"));

    // Continuation lines join; a relative include is relative to the including file.
    let t = sudo("Defaults env_reset, \\\n   use_pty\n@include sudoers.extra\n");
    t.put("etc/sudoers.extra", b"alice ALL = (root) \\\n  NOPASSWD: /usr/bin/apt\n");
    let b = baseline_of(t.path());
    has(expect(&b, "sudo.use_pty", Status::Pass), "/etc/sudoers", Some(1), "use_pty");
    has(expect(&b, "sudo.require_authentication", Status::Fail), "/etc/sudoers.extra", Some(1), "NOPASSWD");
}

// ---------------------------------------------------------------------------------------------
// PAM.

const COMMON_PASSWORD: &str = "# Debian\n\
password\trequisite\t\t\tpam_pwquality.so retry=3\n\
password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt\n\
password\trequisite\t\t\tpam_deny.so\n\
password\trequired\t\t\tpam_pwhistory.so remember=5 use_authtok\n";

const COMMON_AUTH: &str = "auth required pam_faillock.so preauth\n\
auth [success=1 default=ignore] pam_unix.so nullok\n\
auth [default=die] pam_faillock.so authfail\n\
auth requisite pam_deny.so\n";

fn pam(common_password: &str, common_auth: &str, pwquality: &str) -> Tree {
    let t = ubuntu(&["libpam-runtime", "libpam-pwquality"]);
    accounts(&t);
    t.put("etc/pam.d/common-password", common_password.as_bytes());
    t.put("etc/pam.d/common-auth", common_auth.as_bytes());
    t.put("etc/security/pwquality.conf", pwquality.as_bytes());
    t.put("etc/security/faillock.conf", b"# deny = 3\ndeny = 4\n");
    t
}

#[test]
fn pam_rules_pass() {
    let t = pam(COMMON_PASSWORD, COMMON_AUTH, "# minlen = 8\nminlen = 14\nminclass = 4\n");
    let b = baseline_of(t.path());
    let f = expect(&b, "pam.pwquality_minlen", Status::Pass);
    has(f, "/etc/security/pwquality.conf", Some(2), "minlen = 14");
    has(f, "/etc/pam.d/common-password", Some(2), "pam_pwquality.so");
    has(expect(&b, "pam.pwquality_minclass", Status::Pass), "/etc/security/pwquality.conf", Some(3), "minclass = 4");
    has(expect(&b, "pam.faillock_deny", Status::Pass), "/etc/security/faillock.conf", Some(2), "deny = 4");
    has(expect(&b, "pam.pwhistory_remember", Status::Pass), "/etc/pam.d/common-password", Some(5), "remember=5");
    has(expect(&b, "pam.password_hashing", Status::Pass), "/etc/pam.d/common-password", Some(3), "yescrypt");

    // Credits instead of minclass; faillock's built-in default deny (3).
    let t = pam(COMMON_PASSWORD, COMMON_AUTH, "minlen=14\ndcredit=-1\nucredit=-1\nlcredit=-1\nocredit=-1\n");
    std::fs::remove_file(t.path().join("etc/security/faillock.conf")).expect("rm");
    let b = baseline_of(t.path());
    has(expect(&b, "pam.pwquality_minclass", Status::Pass), "/etc/security/pwquality.conf", Some(5), "ocredit = -1");
    noted(expect(&b, "pam.faillock_deny", Status::Pass), "pam_faillock default deny=3");
}

#[test]
fn pam_rules_fail() {
    let pw = COMMON_PASSWORD.replace("yescrypt", "md5").replace("remember=5", "remember=3");
    let auth = COMMON_AUTH.replace("preauth", "preauth deny=10");
    let t = pam(&pw, &auth, "minlen = 8\nminclass = 3\ndcredit = -1\n");
    let b = baseline_of(t.path());
    has(expect(&b, "pam.pwquality_minlen", Status::Fail), "/etc/security/pwquality.conf", Some(1), "minlen = 8");
    has(expect(&b, "pam.pwquality_minclass", Status::Fail), "/etc/security/pwquality.conf", Some(2), "minclass = 3");
    has(expect(&b, "pam.faillock_deny", Status::Fail), "/etc/pam.d/common-auth", Some(1), "deny=10");
    has(expect(&b, "pam.pwhistory_remember", Status::Fail), "/etc/pam.d/common-password", Some(5), "remember=3");
    has(expect(&b, "pam.password_hashing", Status::Fail), "/etc/pam.d/common-password", Some(3), "md5");

    // Modules missing from the stacks.
    let t = pam("password required pam_unix.so sha512\n", "auth required pam_unix.so\n", "minlen = 14\n");
    let b = baseline_of(t.path());
    for (id, module) in [
        ("pam.pwquality_minlen", "pam_pwquality"),
        ("pam.pwquality_minclass", "pam_pwquality"),
        ("pam.pwhistory_remember", "pam_pwhistory"),
        ("pam.faillock_deny", "pam_faillock"),
    ] {
        let f = expect(&b, id, Status::Fail);
        assert!(f.evidence.iter().any(|e| e.found.as_deref().is_some_and(|x| x.contains(module))), "{f:#?}");
    }
    expect(&b, "pam.password_hashing", Status::Pass);
}

#[test]
fn pam_argument_and_drop_in_precedence() {
    // A module argument overrides pwquality.conf.
    let pw = COMMON_PASSWORD.replace("retry=3", "retry=3 minlen=10");
    let t = pam(&pw, COMMON_AUTH, "minlen = 14\n");
    let f = finding(t.path(), "pam.pwquality_minlen");
    assert_eq!(f.status, Status::Fail);
    has(&f, "/etc/pam.d/common-password", Some(2), "minlen=10");

    // pwquality.conf is read after pwquality.conf.d/*.conf, so it overrides them.
    let t = pam(COMMON_PASSWORD, COMMON_AUTH, "minlen = 9\n");
    t.put("etc/security/pwquality.conf.d/50-site.conf", b"minlen = 16\n");
    let f = finding(t.path(), "pam.pwquality_minlen");
    assert_eq!(f.status, Status::Fail);
    has(&f, "/etc/security/pwquality.conf", Some(1), "minlen = 9");
    let t = pam(COMMON_PASSWORD, COMMON_AUTH, "# nothing\n");
    t.put("etc/security/pwquality.conf.d/50-site.conf", b"minlen = 16\n");
    has(
        &finding(t.path(), "pam.pwquality_minlen"),
        "/etc/security/pwquality.conf.d/50-site.conf",
        Some(1),
        "minlen = 16",
    );
}

#[test]
fn pam_include_and_substack_resolution() {
    // Debian @include.
    let t = pam("@include common-pwquality\npassword required pam_unix.so sha512\n", COMMON_AUTH, "minlen = 14\n");
    t.put("etc/pam.d/common-pwquality", b"password requisite pam_pwquality.so\n");
    has(&finding(t.path(), "pam.pwquality_minlen"), "/etc/pam.d/common-pwquality", Some(1), "pam_pwquality.so");

    // RHEL: system-auth and password-auth, with substack and include.
    let t = Tree::new();
    t.os_release("rhel", "9.4", "Red Hat Enterprise Linux 9.4");
    accounts(&t);
    t.put(
        "etc/pam.d/system-auth",
        b"auth required pam_env.so\nauth include faillock-auth\npassword substack pw-stack\n",
    );
    t.put("etc/pam.d/password-auth", b"auth include faillock-auth\npassword include pw-stack\n");
    t.put("etc/pam.d/faillock-auth", b"auth required pam_faillock.so preauth silent deny=5\n");
    t.put(
        "etc/pam.d/pw-stack",
        b"password requisite pam_pwquality.so minlen=14 minclass=4\npassword required pam_pwhistory.so use_authtok remember=24\npassword sufficient pam_unix.so sha512 shadow use_authtok\n",
    );
    let b = baseline_of(t.path());
    has(expect(&b, "pam.pwquality_minlen", Status::Pass), "/etc/pam.d/pw-stack", Some(1), "minlen=14");
    has(expect(&b, "pam.faillock_deny", Status::Pass), "/etc/pam.d/faillock-auth", Some(1), "deny=5");
    expect(&b, "pam.pwhistory_remember", Status::Pass);
    expect(&b, "pam.password_hashing", Status::Pass);

    // A loop is an error; no PAM at all is not applicable.
    t.put("etc/pam.d/pw-stack", b"password include system-auth\n");
    let f = finding(t.path(), "pam.pwquality_minlen");
    assert_eq!(f.status, Status::Error);
    assert!(f.reason.unwrap_or_default().contains("include loop"));
    let t = Tree::new();
    t.os_release("alpine", "3.20.0", "Alpine Linux v3.20");
    assert_eq!(finding(t.path(), "pam.pwquality_minlen").status, Status::NotApplicable);
}

#[test]
fn pam_su_wheel() {
    let t = pam(COMMON_PASSWORD, COMMON_AUTH, "minlen = 14\n");
    t.put("etc/pam.d/su", b"auth sufficient pam_rootok.so\n# auth required pam_wheel.so\nauth required pam_wheel.so use_uid group=sugroup\n");
    let b = baseline_of(t.path());
    has(expect(&b, "pam.su_restricted", Status::Pass), "/etc/pam.d/su", Some(3), "pam_wheel.so use_uid group=sugroup");
    has(expect(&b, "pam.su_group_empty", Status::Pass), "/etc/group", Some(5), "sugroup has no members");

    let t = pam(COMMON_PASSWORD, COMMON_AUTH, "minlen = 14\n");
    accounts_with(&t, PASSWD, &GROUP.replace("sugroup:x:1001:", "sugroup:x:1001:alice"), SHADOW);
    t.put("etc/pam.d/su", b"auth required pam_wheel.so use_uid group=sugroup\n");
    has(&finding(t.path(), "pam.su_group_empty"), "/etc/group", Some(5), "sugroup members: alice");
    assert_eq!(finding(t.path(), "pam.su_group_empty").status, Status::Fail);

    // Without group=, pam_wheel checks "wheel", else the GID 0 group (root here, which has a member).
    let t = pam(COMMON_PASSWORD, COMMON_AUTH, "minlen = 14\n");
    accounts_with(&t, PASSWD, &GROUP.replace("root:x:0:", "root:x:0:alice"), SHADOW);
    t.put("etc/pam.d/su", b"auth required pam_wheel.so use_uid\n");
    let f = finding(t.path(), "pam.su_group_empty");
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    has(&f, "/etc/group", Some(1), "root members: alice");
    // `deny` inverts pam_wheel: that does not restrict su.
    t.put("etc/pam.d/su", b"auth required pam_wheel.so use_uid deny group=sugroup\n");
    assert_eq!(finding(t.path(), "pam.su_restricted").status, Status::Fail);

    let t = pam(COMMON_PASSWORD, COMMON_AUTH, "minlen = 14\n");
    t.put("etc/pam.d/su", b"auth sufficient pam_rootok.so\n# auth required pam_wheel.so use_uid\n");
    let b = baseline_of(t.path());
    has(
        expect(&b, "pam.su_restricted", Status::Fail),
        "/etc/pam.d/su",
        None,
        "no `auth required pam_wheel.so use_uid`",
    );
    expect(&b, "pam.su_group_empty", Status::NotApplicable);
}

// ---------------------------------------------------------------------------------------------
// Accounts: login.defs and shadow aging.

const LOGIN_DEFS_GOOD: &str = "# defaults\nPASS_MAX_DAYS\t365\nPASS_MIN_DAYS\t1\nPASS_WARN_AGE\t7\nUMASK\t\t027\nENCRYPT_METHOD SHA512\nUID_MIN 1000\n";
const LOGIN_DEFS_BAD: &str =
    "# defaults\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t3\nUMASK\t\t022\nENCRYPT_METHOD MD5\n";

#[test]
fn login_defs_rules() {
    let t = ubuntu(&["login"]);
    accounts(&t);
    t.put("etc/login.defs", LOGIN_DEFS_GOOD.as_bytes());
    t.put("etc/default/useradd", b"SHELL=/bin/sh\nINACTIVE=30\n");
    let b = baseline_of(t.path());
    for (id, line, found) in [
        ("accounts.pass_max_days", 2, "PASS_MAX_DAYS 365"),
        ("accounts.pass_min_days", 3, "PASS_MIN_DAYS 1"),
        ("accounts.pass_warn_age", 4, "PASS_WARN_AGE 7"),
        ("accounts.umask_login_defs", 5, "UMASK 027"),
        ("accounts.encrypt_method", 6, "ENCRYPT_METHOD SHA512"),
    ] {
        has(expect(&b, id, Status::Pass), "/etc/login.defs", Some(line), found);
    }
    has(expect(&b, "accounts.inactive", Status::Pass), "/etc/default/useradd", Some(2), "INACTIVE 30");

    t.put("etc/login.defs", LOGIN_DEFS_BAD.as_bytes());
    t.put("etc/default/useradd", b"INACTIVE=-1\n");
    let b = baseline_of(t.path());
    for (id, line, found) in [
        ("accounts.pass_max_days", 2, "PASS_MAX_DAYS 99999"),
        ("accounts.pass_min_days", 3, "PASS_MIN_DAYS 0"),
        ("accounts.pass_warn_age", 4, "PASS_WARN_AGE 3"),
        ("accounts.umask_login_defs", 5, "UMASK 022"),
        ("accounts.encrypt_method", 6, "ENCRYPT_METHOD MD5"),
    ] {
        has(expect(&b, id, Status::Fail), "/etc/login.defs", Some(line), found);
    }
    has(expect(&b, "accounts.inactive", Status::Fail), "/etc/default/useradd", Some(1), "INACTIVE -1");

    // Absent settings fail and say which default applies.
    t.put("etc/login.defs", b"# empty\n");
    std::fs::remove_file(t.path().join("etc/default/useradd")).expect("rm");
    let b = baseline_of(t.path());
    noted(expect(&b, "accounts.pass_max_days", Status::Fail), "99999");
    noted(expect(&b, "accounts.inactive", Status::Fail), "-1");
}

#[test]
fn existing_account_aging() {
    let t = ubuntu(&["login"]);
    accounts(&t);
    let b = baseline_of(t.path());
    for id in [
        "accounts.existing_max_days",
        "accounts.existing_min_days",
        "accounts.existing_warn_age",
        "accounts.existing_inactive",
    ] {
        noted(expect(&b, id, Status::Pass), "1 accounts with a password checked");
    }
    expect(&b, "accounts.last_change_in_past", Status::Pass);

    // Only locked accounts: nothing to check.
    let t = ubuntu(&["login"]);
    accounts_with(&t, PASSWD, GROUP, &SHADOW.replace("$6$salt$hash", "!"));
    expect(&baseline_of(t.path()), "accounts.existing_max_days", Status::NotApplicable);

    let shadow = SHADOW.replace("alice:$6$salt$hash:19000:1:365:7:30::", "alice:$6$salt$hash:99999:0:99999:3:::");
    let t = ubuntu(&["login"]);
    accounts_with(&t, PASSWD, GROUP, &shadow);
    let b = baseline_of(t.path());
    for (id, found) in [
        ("accounts.existing_max_days", "alice: max days 99999"),
        ("accounts.existing_min_days", "alice: min days 0"),
        ("accounts.existing_warn_age", "alice: warn days 3"),
        ("accounts.existing_inactive", "alice: inactive days empty"),
        ("accounts.last_change_in_past", "alice: last change day 99999"),
    ] {
        has(expect(&b, id, Status::Fail), "/etc/shadow", Some(4), found);
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts: shells, root, umask, TMOUT.

#[test]
fn system_accounts_and_root_gid() {
    let t = ubuntu(&["login"]);
    accounts(&t);
    let b = baseline_of(t.path());
    noted(expect(&b, "accounts.system_accounts_nologin", Status::Pass), "UID_MIN 1000 (shadow-utils default)");
    has(expect(&b, "accounts.root_gid_zero", Status::Pass), "/etc/passwd", Some(1), "root gid 0");

    let passwd = PASSWD
        .replace("root:x:0:0:", "root:x:0:10:")
        .replace("daemon:/usr/sbin:/usr/sbin/nologin", "daemon:/usr/sbin:/bin/bash");
    let t = ubuntu(&["login"]);
    accounts_with(&t, &passwd, GROUP, SHADOW);
    t.put("etc/login.defs", b"UID_MIN 500\n");
    let b = baseline_of(t.path());
    let f = expect(&b, "accounts.system_accounts_nologin", Status::Fail);
    has(f, "/etc/passwd", Some(2), "daemon (uid 1): /bin/bash");
    noted(f, "UID_MIN 500 (/etc/login.defs:1)");
    has(expect(&b, "accounts.root_gid_zero", Status::Fail), "/etc/passwd", Some(1), "root gid 10");
}

#[test]
fn umask_and_tmout() {
    let t = ubuntu(&["bash"]);
    accounts(&t);
    t.put("etc/profile", b"# profile\nif [ \"$(id -u)\" -eq 0 ]; then PS1='# '; fi\numask 027\n");
    t.put("etc/bash.bashrc", b"# bashrc\numask u=rwx,g=rx,o=\n");
    t.put("etc/profile.d/tmout.sh", b"TMOUT=900\nreadonly TMOUT\nexport TMOUT\n");
    let b = baseline_of(t.path());
    has(expect(&b, "accounts.umask_profile", Status::Pass), "/etc/profile", Some(3), "umask 027");
    has(expect(&b, "accounts.umask_bashrc", Status::Pass), "/etc/bash.bashrc", Some(2), "umask u=rwx,g=rx,o=");
    has(expect(&b, "accounts.tmout", Status::Pass), "/etc/profile.d/tmout.sh", Some(1), "TMOUT=900");

    t.put("etc/profile.d/zz-late.sh", b"umask 022\n");
    t.put("etc/bash.bashrc", b"# bashrc\n[ -z \"$PS1\" ] && return\numask 002\n");
    t.put("etc/profile.d/tmout.sh", b"TMOUT=1800\nexport TMOUT\n");
    let b = baseline_of(t.path());
    has(expect(&b, "accounts.umask_profile", Status::Fail), "/etc/profile.d/zz-late.sh", Some(1), "umask 022");
    has(expect(&b, "accounts.umask_bashrc", Status::Fail), "/etc/bash.bashrc", Some(3), "umask 002");
    let f = expect(&b, "accounts.tmout", Status::Fail);
    has(f, "/etc/profile.d/tmout.sh", Some(1), "TMOUT=1800");
    noted(f, "not made readonly");
}

// ---------------------------------------------------------------------------------------------
// Accounts: permissions of the databases.

/// `(file, rule id prefix)`.
const DB_FILES: &[(&str, &str)] = &[
    ("etc/passwd", "accounts.etc_passwd"),
    ("etc/passwd-", "accounts.etc_passwd_backup"),
    ("etc/group", "accounts.etc_group"),
    ("etc/group-", "accounts.etc_group_backup"),
    ("etc/shadow", "accounts.etc_shadow"),
    ("etc/shadow-", "accounts.etc_shadow_backup"),
    ("etc/gshadow", "accounts.etc_gshadow"),
    ("etc/gshadow-", "accounts.etc_gshadow_backup"),
];

#[test]
fn database_file_permissions() {
    let t = ubuntu(&["passwd"]);
    accounts(&t);
    let b = baseline_of(t.path());
    for (file, prefix) in DB_FILES {
        let path = format!("/{file}");
        let mode = if file.contains("shadow") { "0640" } else { "0644" };
        let group = if file.contains("shadow") { "group shadow(42)" } else { "group root(0)" };
        has(expect(&b, &format!("{prefix}_permissions"), Status::Pass), &path, None, mode);
        has(expect(&b, &format!("{prefix}_owner"), Status::Pass), &path, None, "owner root(0)");
        has(expect(&b, &format!("{prefix}_group"), Status::Pass), &path, None, group);
    }
    for (file, prefix) in DB_FILES {
        let t = ubuntu(&["passwd"]);
        accounts(&t);
        t.chmod(file, 0o666);
        t.chown(file, 1000, 1000);
        let b = baseline_of(t.path());
        let path = format!("/{file}");
        has(expect(&b, &format!("{prefix}_permissions"), Status::Fail), &path, None, "0666");
        has(expect(&b, &format!("{prefix}_owner"), Status::Fail), &path, None, "owner alice(1000)");
        has(expect(&b, &format!("{prefix}_group"), Status::Fail), &path, None, "group alice(1000)");
    }
    // A backup that does not exist is not applicable.
    std::fs::remove_file(t.path().join("etc/passwd-")).expect("rm");
    expect(&baseline_of(t.path()), "accounts.etc_passwd_backup_permissions", Status::NotApplicable);
}

#[test]
fn shadow_permissions_on_rhel() {
    let t = Tree::new();
    t.os_release("rhel", "9.4", "Red Hat Enterprise Linux 9.4");
    accounts(&t);
    // Debian's 0640 root:shadow is not RHEL's 0000 root:root.
    let b = baseline_of(t.path());
    has(expect(&b, "accounts.etc_shadow_permissions", Status::Fail), "/etc/shadow", None, "0640");
    has(expect(&b, "accounts.etc_shadow_group", Status::Fail), "/etc/shadow", None, "group shadow(42)");
    t.chmod("etc/shadow", 0);
    t.chown("etc/shadow", 0, 0);
    let b = baseline_of(t.path());
    has(expect(&b, "accounts.etc_shadow_permissions", Status::Pass), "/etc/shadow", None, "0000");
    expect(&b, "accounts.etc_shadow_group", Status::Pass);
}

// ---------------------------------------------------------------------------------------------
// Accounts: consistency of the databases.

#[test]
fn database_consistency_pass() {
    let t = ubuntu(&["passwd"]);
    accounts(&t);
    let b = baseline_of(t.path());
    for id in [
        "accounts.all_shadowed",
        "accounts.no_empty_passwords",
        "accounts.passwd_gids_exist",
        "accounts.unique_uids",
        "accounts.unique_gids",
        "accounts.unique_user_names",
        "accounts.unique_group_names",
        "accounts.only_root_uid_zero",
    ] {
        let f = expect(&b, id, Status::Pass);
        assert!(f.evidence.is_empty(), "{id}: {f:#?}");
    }
    has(expect(&b, "accounts.shadow_group_empty", Status::Pass), "/etc/group", Some(3), "no members");
}

#[test]
fn database_consistency_fail() {
    let passwd = format!(
        "{PASSWD}toor:x:0:0::/root:/bin/sh\nbob:$1$abc$def:1001:4242::/home/bob:/bin/bash\nalice:x:1002:42::/home/alice2:/bin/bash\n"
    );
    let group = format!("{}dup:x:1000:\nshadow:x:43:\n", GROUP.replace("shadow:x:42:", "shadow:x:42:alice"));
    let shadow = format!("{SHADOW}toor::19000:0:99999:7:::\n");
    let t = ubuntu(&["passwd"]);
    accounts_with(&t, &passwd, &group, &shadow);
    let b = baseline_of(t.path());
    has(
        expect(&b, "accounts.all_shadowed", Status::Fail),
        "/etc/passwd",
        Some(7),
        "bob: password field (a hash or marker)",
    );
    has(expect(&b, "accounts.no_empty_passwords", Status::Fail), "/etc/shadow", Some(6), "toor: empty password field");
    has(expect(&b, "accounts.passwd_gids_exist", Status::Fail), "/etc/passwd", Some(7), "bob: gid 4242");
    let f = expect(&b, "accounts.shadow_group_empty", Status::Fail);
    has(f, "/etc/group", Some(3), "shadow members: alice");
    has(f, "/etc/passwd", Some(8), "alice: primary group shadow (42)");
    has(expect(&b, "accounts.unique_uids", Status::Fail), "/etc/passwd", Some(1), "uid 0 on lines 1, 6");
    has(expect(&b, "accounts.unique_gids", Status::Fail), "/etc/group", Some(7), "gid 1000 on lines 7, 9");
    has(
        expect(&b, "accounts.unique_user_names", Status::Fail),
        "/etc/passwd",
        Some(4),
        "user name alice on lines 4, 8",
    );
    has(
        expect(&b, "accounts.unique_group_names", Status::Fail),
        "/etc/group",
        Some(3),
        "group name shadow on lines 3, 10",
    );
    has(expect(&b, "accounts.only_root_uid_zero", Status::Fail), "/etc/passwd", Some(6), "toor: uid 0");
}

#[test]
fn root_path_integrity() {
    let t = ubuntu(&["bash"]);
    accounts(&t);
    for d in ["usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "opt/tools"] {
        t.mkdir(d, 0o755);
    }
    t.put("root/.profile", b"# ~/.profile\nexport PATH=\"/usr/local/sbin:/usr/local/bin:$PATH\"\n");
    t.put("etc/environment", b"PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/snap/bin\"\n");
    let f = finding(t.path(), "accounts.root_path");
    assert_eq!(f.status, Status::Pass, "{f:#?}");
    has(&f, "/etc/environment", Some(1), "/usr/sbin");
    noted(&f, "does not exist");

    t.put("root/.bashrc", b"PATH=$PATH:.:/opt/tools::\n");
    t.chmod("opt/tools", 0o777);
    let f = finding(t.path(), "accounts.root_path");
    assert_eq!(f.status, Status::Fail);
    for note in ["`.` (the current directory)", "/opt/tools is group/world-writable (0777)", "empty entry"] {
        assert!(
            f.evidence.iter().any(|e| e.file.as_deref() == Some("/root/.bashrc")
                && e.line == Some(1)
                && e.note.as_deref().is_some_and(|n| n.contains(note))),
            "{note}: {f:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts: homes and dot files.

#[test]
fn home_directories() {
    let t = ubuntu(&["bash"]);
    accounts(&t);
    t.put("home/alice/.bashrc", b"# rc\n");
    t.chmod("home/alice/.bashrc", 0o644);
    let b = baseline_of(t.path());
    for id in [
        "accounts.home_dirs_exist",
        "accounts.home_dirs_owned",
        "accounts.home_dirs_permissions",
        "accounts.dot_files_not_writable",
        "accounts.no_netrc",
        "accounts.no_forward",
        "accounts.no_rhosts",
    ] {
        noted(expect(&b, id, Status::Pass), "1 interactive users");
    }

    t.chmod("home/alice", 0o755);
    t.chown("home/alice", 0, 0);
    t.chmod("home/alice/.bashrc", 0o664);
    t.put("home/alice/.netrc", b"machine x login a password b\n");
    t.put("root/.forward", b"|/tmp/x\n");
    t.put("etc/hosts.equiv", b"+\n");
    let b = baseline_of(t.path());
    has(expect(&b, "accounts.home_dirs_permissions", Status::Fail), "/home/alice", None, "0755");
    has(expect(&b, "accounts.home_dirs_owned", Status::Fail), "/home/alice", None, "owner root(0)");
    has(expect(&b, "accounts.dot_files_not_writable", Status::Fail), "/home/alice/.bashrc", None, "0664");
    has(expect(&b, "accounts.no_netrc", Status::Fail), "/home/alice/.netrc", None, "exists");
    has(expect(&b, "accounts.no_forward", Status::Fail), "/root/.forward", None, "exists");
    has(expect(&b, "accounts.no_rhosts", Status::Fail), "/etc/hosts.equiv", None, "exists");

    std::fs::remove_dir_all(t.path().join("home/alice")).expect("rm");
    has(&finding(t.path(), "accounts.home_dirs_exist"), "/etc/passwd", Some(4), "alice: /home/alice does not exist");
    assert_eq!(finding(t.path(), "accounts.home_dirs_exist").status, Status::Fail);
}

// ---------------------------------------------------------------------------------------------
// Hostile account databases.

/// Rules that need /etc/passwd.
const PASSWD_RULES: &[&str] = &[
    "accounts.system_accounts_nologin",
    "accounts.root_gid_zero",
    "accounts.all_shadowed",
    "accounts.passwd_gids_exist",
    "accounts.shadow_group_empty",
    "accounts.unique_uids",
    "accounts.unique_user_names",
    "accounts.only_root_uid_zero",
    "accounts.home_dirs_exist",
    "accounts.home_dirs_owned",
    "accounts.home_dirs_permissions",
    "accounts.dot_files_not_writable",
    "accounts.no_netrc",
    "accounts.no_forward",
    "accounts.no_rhosts",
];

#[test]
fn binary_passwd_is_error() {
    let t = ubuntu(&["passwd"]);
    accounts(&t);
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).chain([0, 0, 0]).collect();
    t.put("etc/passwd", &garbage);
    let b = baseline_of(t.path());
    for id in PASSWD_RULES {
        let f = expect(&b, id, Status::Error);
        assert!(f.reason.as_deref().unwrap_or_default().contains("binary"), "{id}: {f:#?}");
    }
    // Printable garbage without NULs is not a passwd file either.
    t.put("etc/passwd", "lorem ipsum dolor\nsit amet\nroot:x:0:0:root:/root:/bin/bash\nconsectetur\n".as_bytes());
    let f = finding(t.path(), "accounts.unique_uids");
    assert_eq!(f.status, Status::Error);
    assert!(f.reason.unwrap_or_default().contains("3 of 4 lines"));
}

#[test]
fn huge_passwd_is_error_not_hang() {
    let t = ubuntu(&["passwd"]);
    accounts(&t);
    let mut body = String::with_capacity(45_000_000);
    for i in 0..1_000_000u32 {
        body.push_str(&format!("user{i}:x:{}:100:User number {i}:/home/user{i}:/bin/bash\n", 10_000 + i));
    }
    assert!(body.len() > 16 * 1024 * 1024);
    t.put("etc/passwd", body.as_bytes());
    let start = Instant::now();
    let b = baseline_of(t.path());
    assert!(start.elapsed() < Duration::from_secs(60), "took {:?}", start.elapsed());
    for id in PASSWD_RULES {
        let f = expect(&b, id, Status::Error);
        assert!(f.reason.as_deref().unwrap_or_default().contains("limit"), "{id}: {f:#?}");
    }
}

#[test]
fn passwd_symlink_stays_inside_root() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("passwd"), "root:x:0:0:root:/root:/bin/bash\n").expect("write");
    let abs = outside.path().join("passwd");
    let rel_inside = abs.to_str().expect("utf-8").trim_start_matches('/').to_owned();
    let t = ubuntu(&["passwd"]);
    accounts(&t);
    std::fs::remove_file(t.path().join("etc/passwd")).expect("rm");
    t.symlink("etc/passwd", &format!("../../../../../../../{rel_inside}"));
    t.put(&rel_inside, b"root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n");
    let f = finding(t.path(), "accounts.only_root_uid_zero");
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    has(&f, "/etc/passwd", Some(2), "toor: uid 0");
}
