//! Services (`net.firewall_*`, `time.`, `cron.`, `at.`): firewalls (nftables, iptables, firewalld),
//! time synchronisation with systemd-timesyncd, and cron/at allow files with loose permissions and
//! owners.

use super::*;

#[test]
fn allow_files_with_loose_permissions_and_owners_fail() {
    let t = base_ubuntu(&["cron", "at"]);
    t.put_mode("etc/cron.allow", "root\n", 0o644);
    t.chown("etc/cron.allow", 1000, 0);
    t.put_mode("etc/at.allow", "root\n", 0o666);
    t.chown("etc/at.allow", 0, 1000);
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
