//! Network: kernel network parameters persisted in the sysctl configuration (CIS Ubuntu 3.2-3.3,
//! RHEL 9 3.2-3.3; one rule per SSG `sysctl_net_*` rule) and a host firewall that is installed,
//! enabled at boot and denies inbound traffic by default (CIS Ubuntu 3.5, RHEL 9 3.4): ufw,
//! nftables, iptables-persistent/iptables-services or firewalld, from their configuration files
//! and unit symlinks.
//!
//! Also owns [`sysctl_rule`], the evaluation every sysctl-based rule uses: the value the image
//! applies at boot (see [`crate::baseline::parse::sysctl`]); the running kernel is never read.

use super::services::{Presence, any_enabled, bind, cis, names_for, presence, template};
use crate::baseline::ctx::glob;
use crate::baseline::parse::sysctl;
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity};
use crate::os::Family;

const ALL: &[Family] = &[];

fn same_value(found: &str, expected: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    match (found.trim().parse::<i64>(), expected.trim().parse::<i64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => norm(found) == norm(expected),
    }
}

/// Pass when the value the image sets for `key` at boot is `expected`. A key set in no file
/// fails: like SSG, the setting must be persisted explicitly; the kernel default is stated in the
/// evidence. Any unreadable sysctl file makes the result `error` (it could hold the key).
pub(crate) fn sysctl_rule(ctx: &Ctx<'_>, key: &str, expected: &str, kernel_default: &str) -> Outcome {
    let s = sysctl::load(ctx);
    if !s.errors.is_empty() {
        return Outcome::error(format!("sysctl configuration unreadable: {}", s.errors.join("; ")));
    }
    let want = format!("{key} = {expected}");
    let Some(eff) = s.effective(key) else {
        let mut ev = vec![
            Evidence::note(format!(
                "{key} is not set in any sysctl configuration file; the kernel default ({kernel_default}) applies at boot"
            ))
            .expected(want.clone()),
        ];
        if let Some(x) = s.all(key).last().filter(|a| a.exclusion) {
            ev.push(
                Evidence::file(x.file.clone())
                    .line(x.line)
                    .found(format!("-{}", x.key))
                    .with_note("`-key` without a value excludes the key from glob assignments".to_owned()),
            );
        }
        return Outcome::fail(ev);
    };
    let mut e = Evidence::file(eff.file.clone()).line(eff.line).found(format!("{} = {}", eff.key, eff.value));
    e.expected = Some(want.clone());
    if eff.glob {
        e.note = Some(format!("set by the glob `{}`", eff.key));
    }
    let mut ev = vec![e];
    for a in s.all(key) {
        if a != eff && !a.exclusion && !same_value(&a.value, &eff.value) {
            ev.push(
                Evidence::file(a.file.clone())
                    .line(a.line)
                    .found(format!("{} = {}", a.key, a.value))
                    .with_note(format!("overridden by {}:{}", eff.file, eff.line)),
            );
        }
    }
    for (masked, by) in s.masked.iter().filter(|(m, _)| !m.starts_with("/lib/")) {
        ev.push(Evidence::file(masked.clone()).with_note(format!("not read: masked by {by}")));
    }
    Outcome::check(same_value(&eff.value, expected), ev)
}

#[derive(Debug)]
struct Param {
    rule: Rule,
    key: &'static str,
    expected: &'static str,
    /// The kernel's built-in value (Documentation/networking/ip-sysctl.rst).
    default: &'static str,
}

fn param(ctx: &Ctx<'_>, p: &Param) -> Outcome {
    sysctl_rule(ctx, p.key, p.expected, p.default)
}

macro_rules! param_item {
    ($name:ident, $id:literal, $ssg:literal, $u:expr, $r:expr, $sev:ident, $key:literal, $value:literal,
     $default:literal,
     $title:literal, $why:literal) => {
        static $name: Param = Param {
            rule: template(
                $id,
                Some($ssg),
                cis($u, $r),
                $title,
                Severity::$sev,
                $why,
                concat!(
                    "Set `",
                    $key,
                    " = ",
                    $value,
                    "` in /etc/sysctl.d/60-cis.conf (and remove contrary settings from /etc/sysctl.conf and the other sysctl.d files); apply with `sysctl --system`."
                ),
                ALL,
            ),
            key: $key,
            expected: $value,
            default: $default,
        };
    };
}

// Kernel defaults from Documentation/networking/ip-sysctl.rst (a host, i.e. forwarding off).
// SSG leaves log_martians and icmp_ignore_bogus_error_responses unrated (`unknown`): low, the
// nearest of our levels (the convention of the other baseline areas).
param_item!(
    IP_FORWARD,
    "net.ip_forward",
    "sysctl_net_ipv4_ip_forward",
    Some("3.2.2"),
    Some("3.2.1"),
    Medium,
    "net.ipv4.ip_forward",
    "0",
    "0",
    "Ensure IPv4 forwarding is disabled",
    "A host that forwards packets acts as a router and can bridge networks it should separate."
);
param_item!(
    IPV6_FORWARDING,
    "net.ipv6_all_forwarding",
    "sysctl_net_ipv6_conf_all_forwarding",
    Some("3.2.2"),
    Some("3.2.1"),
    Medium,
    "net.ipv6.conf.all.forwarding",
    "0",
    "0",
    "Ensure IPv6 forwarding is disabled",
    "A host that forwards IPv6 packets acts as a router and can bridge networks it should separate."
);
param_item!(
    ALL_SEND_REDIRECTS,
    "net.all_send_redirects",
    "sysctl_net_ipv4_conf_all_send_redirects",
    Some("3.2.1"),
    Some("3.2.2"),
    Medium,
    "net.ipv4.conf.all.send_redirects",
    "0",
    "1",
    "Ensure ICMP redirect sending is disabled (all)",
    "Only routers send ICMP redirects; a host that sends them can be used to alter other hosts' routing."
);
param_item!(
    DEFAULT_SEND_REDIRECTS,
    "net.default_send_redirects",
    "sysctl_net_ipv4_conf_default_send_redirects",
    Some("3.2.1"),
    Some("3.2.2"),
    Medium,
    "net.ipv4.conf.default.send_redirects",
    "0",
    "1",
    "Ensure ICMP redirect sending is disabled (default)",
    "Only routers send ICMP redirects; new interfaces inherit the default."
);
param_item!(
    ALL_ACCEPT_SOURCE_ROUTE,
    "net.all_accept_source_route",
    "sysctl_net_ipv4_conf_all_accept_source_route",
    Some("3.3.1"),
    Some("3.3.1"),
    Medium,
    "net.ipv4.conf.all.accept_source_route",
    "0",
    "0 on a host, 1 on a router",
    "Ensure source-routed IPv4 packets are not accepted (all)",
    "Source routing lets a sender choose the path through this host, e.g. to reach otherwise unroutable networks."
);
param_item!(
    DEFAULT_ACCEPT_SOURCE_ROUTE,
    "net.default_accept_source_route",
    "sysctl_net_ipv4_conf_default_accept_source_route",
    Some("3.3.1"),
    Some("3.3.1"),
    Medium,
    "net.ipv4.conf.default.accept_source_route",
    "0",
    "0 on a host, 1 on a router",
    "Ensure source-routed IPv4 packets are not accepted (default)",
    "Source routing lets a sender choose the path through this host; new interfaces inherit the default."
);
param_item!(
    IPV6_ALL_ACCEPT_SOURCE_ROUTE,
    "net.ipv6_all_accept_source_route",
    "sysctl_net_ipv6_conf_all_accept_source_route",
    Some("3.3.1"),
    Some("3.3.1"),
    Medium,
    "net.ipv6.conf.all.accept_source_route",
    "0",
    "0: type 2 routing headers only",
    "Ensure source-routed IPv6 packets are not accepted (all)",
    "IPv6 routing headers let a sender choose the path through this host."
);
param_item!(
    IPV6_DEFAULT_ACCEPT_SOURCE_ROUTE,
    "net.ipv6_default_accept_source_route",
    "sysctl_net_ipv6_conf_default_accept_source_route",
    Some("3.3.1"),
    Some("3.3.1"),
    Medium,
    "net.ipv6.conf.default.accept_source_route",
    "0",
    "0: type 2 routing headers only",
    "Ensure source-routed IPv6 packets are not accepted (default)",
    "IPv6 routing headers let a sender choose the path through this host; new interfaces inherit the default."
);
param_item!(
    ALL_ACCEPT_REDIRECTS,
    "net.all_accept_redirects",
    "sysctl_net_ipv4_conf_all_accept_redirects",
    Some("3.3.2"),
    Some("3.3.2"),
    Medium,
    "net.ipv4.conf.all.accept_redirects",
    "0",
    "1 on a host",
    "Ensure ICMP redirects are not accepted (IPv4, all)",
    "Accepted ICMP redirects let an attacker on the link rewrite this host's routing table."
);
param_item!(
    DEFAULT_ACCEPT_REDIRECTS,
    "net.default_accept_redirects",
    "sysctl_net_ipv4_conf_default_accept_redirects",
    Some("3.3.2"),
    Some("3.3.2"),
    Medium,
    "net.ipv4.conf.default.accept_redirects",
    "0",
    "1 on a host",
    "Ensure ICMP redirects are not accepted (IPv4, default)",
    "Accepted ICMP redirects let an attacker on the link rewrite this host's routing table."
);
param_item!(
    IPV6_ALL_ACCEPT_REDIRECTS,
    "net.ipv6_all_accept_redirects",
    "sysctl_net_ipv6_conf_all_accept_redirects",
    Some("3.3.2"),
    Some("3.3.2"),
    Medium,
    "net.ipv6.conf.all.accept_redirects",
    "0",
    "1 when forwarding is off",
    "Ensure ICMP redirects are not accepted (IPv6, all)",
    "Accepted ICMPv6 redirects let an attacker on the link rewrite this host's routing table."
);
param_item!(
    IPV6_DEFAULT_ACCEPT_REDIRECTS,
    "net.ipv6_default_accept_redirects",
    "sysctl_net_ipv6_conf_default_accept_redirects",
    Some("3.3.2"),
    Some("3.3.2"),
    Medium,
    "net.ipv6.conf.default.accept_redirects",
    "0",
    "1 when forwarding is off",
    "Ensure ICMP redirects are not accepted (IPv6, default)",
    "Accepted ICMPv6 redirects let an attacker on the link rewrite this host's routing table."
);
param_item!(
    ALL_SECURE_REDIRECTS,
    "net.all_secure_redirects",
    "sysctl_net_ipv4_conf_all_secure_redirects",
    Some("3.3.3"),
    Some("3.3.3"),
    Medium,
    "net.ipv4.conf.all.secure_redirects",
    "0",
    "1",
    "Ensure secure ICMP redirects are not accepted (all)",
    "\"Secure\" redirects come from listed gateways, which an attacker on the link can impersonate."
);
param_item!(
    DEFAULT_SECURE_REDIRECTS,
    "net.default_secure_redirects",
    "sysctl_net_ipv4_conf_default_secure_redirects",
    Some("3.3.3"),
    Some("3.3.3"),
    Medium,
    "net.ipv4.conf.default.secure_redirects",
    "0",
    "1",
    "Ensure secure ICMP redirects are not accepted (default)",
    "\"Secure\" redirects come from listed gateways, which an attacker on the link can impersonate."
);
param_item!(
    ALL_LOG_MARTIANS,
    "net.all_log_martians",
    "sysctl_net_ipv4_conf_all_log_martians",
    Some("3.3.4"),
    Some("3.3.4"),
    Low,
    "net.ipv4.conf.all.log_martians",
    "1",
    "0",
    "Ensure suspicious packets are logged (all)",
    "Logging packets with impossible source addresses reveals spoofing attempts."
);
param_item!(
    DEFAULT_LOG_MARTIANS,
    "net.default_log_martians",
    "sysctl_net_ipv4_conf_default_log_martians",
    Some("3.3.4"),
    Some("3.3.4"),
    Low,
    "net.ipv4.conf.default.log_martians",
    "1",
    "0",
    "Ensure suspicious packets are logged (default)",
    "Logging packets with impossible source addresses reveals spoofing attempts."
);
param_item!(
    ICMP_ECHO_IGNORE_BROADCASTS,
    "net.icmp_echo_ignore_broadcasts",
    "sysctl_net_ipv4_icmp_echo_ignore_broadcasts",
    Some("3.3.5"),
    Some("3.3.5"),
    Medium,
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "1",
    "1",
    "Ensure broadcast ICMP echo requests are ignored",
    "Answering broadcast pings makes the host an amplifier in smurf attacks."
);
param_item!(
    ICMP_IGNORE_BOGUS,
    "net.icmp_ignore_bogus_error_responses",
    "sysctl_net_ipv4_icmp_ignore_bogus_error_responses",
    Some("3.3.6"),
    Some("3.3.6"),
    Low,
    "net.ipv4.icmp_ignore_bogus_error_responses",
    "1",
    "1",
    "Ensure bogus ICMP error responses are ignored",
    "Logging bogus ICMP error responses can fill the logs."
);
param_item!(
    ALL_RP_FILTER,
    "net.all_rp_filter",
    "sysctl_net_ipv4_conf_all_rp_filter",
    Some("3.3.7"),
    Some("3.3.7"),
    Medium,
    "net.ipv4.conf.all.rp_filter",
    "1",
    "0",
    "Ensure strict reverse path filtering is enabled (all)",
    "Strict reverse-path filtering drops packets whose source address would not be routed back through the interface they came in on (spoofing)."
);
param_item!(
    DEFAULT_RP_FILTER,
    "net.default_rp_filter",
    "sysctl_net_ipv4_conf_default_rp_filter",
    Some("3.3.7"),
    Some("3.3.7"),
    Medium,
    "net.ipv4.conf.default.rp_filter",
    "1",
    "0",
    "Ensure strict reverse path filtering is enabled (default)",
    "Strict reverse-path filtering drops spoofed packets; new interfaces inherit the default."
);
param_item!(
    TCP_SYNCOOKIES,
    "net.tcp_syncookies",
    "sysctl_net_ipv4_tcp_syncookies",
    Some("3.3.8"),
    Some("3.3.8"),
    Medium,
    "net.ipv4.tcp_syncookies",
    "1",
    "1",
    "Ensure TCP SYN cookies are enabled",
    "SYN cookies keep the host reachable during a SYN flood."
);
param_item!(
    IPV6_ALL_ACCEPT_RA,
    "net.ipv6_all_accept_ra",
    "sysctl_net_ipv6_conf_all_accept_ra",
    Some("3.3.9"),
    Some("3.3.9"),
    Medium,
    "net.ipv6.conf.all.accept_ra",
    "0",
    "1 when forwarding is off",
    "Ensure IPv6 router advertisements are not accepted (all)",
    "Router advertisements from any host on the link can redirect this host's IPv6 traffic."
);
param_item!(
    IPV6_DEFAULT_ACCEPT_RA,
    "net.ipv6_default_accept_ra",
    "sysctl_net_ipv6_conf_default_accept_ra",
    Some("3.3.9"),
    Some("3.3.9"),
    Medium,
    "net.ipv6.conf.default.accept_ra",
    "0",
    "1 when forwarding is off",
    "Ensure IPv6 router advertisements are not accepted (default)",
    "Router advertisements from any host on the link can redirect this host's IPv6 traffic."
);

// ---------------------------------------------------------------------------------------------
// Firewall.

/// A host firewall and how to tell it is installed.
struct Firewall {
    name: &'static str,
    debian: &'static [&'static str],
    rhel: &'static [&'static str],
    probes: &'static [&'static str],
    units: &'static [&'static str],
}

const FIREWALLS: [Firewall; 4] = [
    Firewall { name: "ufw", debian: &["ufw"], rhel: &["ufw"], probes: &["/usr/sbin/ufw"], units: &["ufw.service"] },
    Firewall {
        name: "nftables",
        debian: &["nftables"],
        rhel: &["nftables"],
        probes: &["/usr/sbin/nft"],
        units: &["nftables.service"],
    },
    Firewall {
        name: "iptables",
        debian: &["iptables-persistent", "netfilter-persistent"],
        rhel: &["iptables-services"],
        probes: &["/etc/iptables/rules.v4", "/etc/sysconfig/iptables"],
        units: &["netfilter-persistent.service", "iptables.service"],
    },
    Firewall {
        name: "firewalld",
        debian: &["firewalld"],
        rhel: &["firewalld"],
        probes: &["/usr/sbin/firewalld"],
        units: &["firewalld.service"],
    },
];

fn firewall_installed(ctx: &Ctx<'_>) -> Outcome {
    let mut found = Vec::new();
    for fw in &FIREWALLS {
        if let Presence::Installed(ev) = presence(ctx, &names_for(ctx, fw.debian, fw.rhel), fw.probes) {
            found.extend(ev);
        }
    }
    if found.is_empty() {
        return Outcome::fail(vec![
            Evidence::note("none of ufw, nftables, iptables-persistent/iptables-services, firewalld is installed")
                .expected("a host firewall package"),
        ]);
    }
    Outcome::pass(found)
}

/// The value of `KEY=value` in a shell-style file (last one wins, quotes removed).
fn shell_var(text: &str, key: &str) -> Option<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
            Some((i + 1, v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned()))
        })
        .last()
}

/// Most nftables files followed through `include`.
const MAX_NFT_FILES: usize = 32;

/// Find a base chain hooked on `input` with `policy drop` in an nftables ruleset, following
/// `include` statements (bounded, cycle-safe).
fn nft_input_drop(ctx: &Ctx<'_>, root: &str) -> Result<Option<Evidence>, String> {
    let mut queue = vec![root.to_owned()];
    let mut seen: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(f) = queue.get(i).cloned() {
        i += 1;
        if seen.contains(&f) {
            continue;
        }
        if seen.len() >= MAX_NFT_FILES {
            return Err(format!("more than {MAX_NFT_FILES} nftables files included"));
        }
        seen.push(f.clone());
        let Some(text) = ctx.read_text(&f)? else { continue };
        // Within one chain block: `type filter hook input priority 0; policy drop;`.
        let mut in_input = None;
        let mut depth = 0i32;
        let mut chain_depth = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if let Some(rest) = line.strip_prefix("include") {
                let pat = rest.trim().trim_matches('"');
                if !pat.is_empty() {
                    let pat = if pat.starts_with('/') {
                        pat.to_owned()
                    } else {
                        format!("{}/{pat}", f.rsplit_once('/').map_or("", |(d, _)| d))
                    };
                    queue.extend(glob(ctx, &pat, MAX_NFT_FILES)?);
                }
            }
            if line.starts_with("chain ") {
                chain_depth = Some(depth);
                in_input = None;
            }
            if chain_depth.is_some() && line.contains("hook input") {
                in_input = Some(n + 1);
            }
            if let Some(start) = in_input
                && line.replace(' ', "").contains("policydrop")
            {
                return Ok(Some(
                    Evidence::file(f.clone()).line(n + 1).found(format!("input chain (line {start}) has policy drop")),
                ));
            }
            depth += i32::try_from(line.matches('{').count()).unwrap_or(0);
            depth -= i32::try_from(line.matches('}').count()).unwrap_or(0);
            if chain_depth.is_some_and(|d| depth <= d) {
                chain_depth = None;
                in_input = None;
            }
        }
    }
    Ok(None)
}

fn iptables_input_drop(ctx: &Ctx<'_>, file: &str) -> Result<Option<Evidence>, String> {
    let Some(text) = ctx.read_text(file)? else { return Ok(None) };
    Ok(text.lines().enumerate().find_map(|(i, l)| {
        let mut w = l.split_whitespace();
        (w.next() == Some(":INPUT") && w.next() == Some("DROP"))
            .then(|| Evidence::file(file).line(i + 1).found(l.trim().to_owned()))
    }))
}

/// Judge one installed firewall: `(default-deny and enabled, evidence)`.
fn judge_firewall(ctx: &Ctx<'_>, fw: &Firewall) -> Result<(bool, Vec<Evidence>), String> {
    let (enabled, mut ev) = any_enabled(ctx, fw.units)?;
    let mut ok = enabled.is_some();
    if enabled.is_none() {
        ev.push(Evidence::note(format!("{}: no unit of {} is enabled", fw.name, fw.units.join(", "))));
    }
    match fw.name {
        "ufw" => {
            let conf = ctx.read_text("/etc/ufw/ufw.conf")?.unwrap_or_default();
            match shell_var(&conf, "ENABLED") {
                Some((l, v)) => {
                    ok &= v == "yes";
                    ev.push(
                        Evidence::file("/etc/ufw/ufw.conf")
                            .line(l)
                            .found(format!("ENABLED={v}"))
                            .expected("ENABLED=yes"),
                    );
                }
                None => {
                    ok = false;
                    ev.push(Evidence::file("/etc/ufw/ufw.conf").found("no ENABLED=").expected("ENABLED=yes"));
                }
            }
            let def = ctx.read_text("/etc/default/ufw")?.unwrap_or_default();
            match shell_var(&def, "DEFAULT_INPUT_POLICY") {
                Some((l, v)) => {
                    ok &= v == "DROP" || v == "REJECT";
                    ev.push(
                        Evidence::file("/etc/default/ufw")
                            .line(l)
                            .found(format!("DEFAULT_INPUT_POLICY=\"{v}\""))
                            .expected("DEFAULT_INPUT_POLICY=\"DROP\" (or REJECT)"),
                    );
                }
                None => {
                    ok = false;
                    ev.push(Evidence::file("/etc/default/ufw").found("no DEFAULT_INPUT_POLICY").expected("DROP"));
                }
            }
        }
        "nftables" => {
            let root = ["/etc/nftables.conf", "/etc/sysconfig/nftables.conf"]
                .into_iter()
                .find(|p| matches!(ctx.lstat(p), Ok(Some(_))))
                .unwrap_or("/etc/nftables.conf");
            match nft_input_drop(ctx, root)? {
                Some(e) => ev.push(e),
                None => {
                    ok = false;
                    ev.push(
                        Evidence::file(root).found("no input base chain with `policy drop`").expected("policy drop"),
                    );
                }
            }
        }
        "iptables" => {
            let files = ["/etc/iptables/rules.v4", "/etc/sysconfig/iptables"];
            let mut hit = None;
            for f in files {
                if let Some(e) = iptables_input_drop(ctx, f)? {
                    hit = Some(e);
                    break;
                }
            }
            match hit {
                Some(e) => ev.push(e),
                None => {
                    ok = false;
                    ev.push(
                        Evidence::note(format!("no `:INPUT DROP` in {}", files.join(" or "))).expected(":INPUT DROP"),
                    );
                }
            }
        }
        _ => {
            // firewalld: the default zone's target rejects unsolicited traffic unless changed.
            let conf = ctx.read_text("/etc/firewalld/firewalld.conf")?.unwrap_or_default();
            let zone = shell_var(&conf, "DefaultZone").map_or_else(|| "public".to_owned(), |(_, z)| z);
            if matches!(zone.as_str(), "trusted") {
                ok = false;
            }
            ev.push(
                Evidence::file("/etc/firewalld/firewalld.conf")
                    .found(format!("DefaultZone={zone}"))
                    .expected("a zone that does not accept everything (not `trusted`)"),
            );
        }
    }
    Ok((ok, ev))
}

fn firewall_default_deny(ctx: &Ctx<'_>) -> Outcome {
    let mut ev = Vec::new();
    let mut any = false;
    for fw in &FIREWALLS {
        if let Presence::Absent(_) = presence(ctx, &names_for(ctx, fw.debian, fw.rhel), fw.probes) {
            continue;
        }
        any = true;
        match judge_firewall(ctx, fw) {
            Ok((true, e)) => return Outcome::pass(e),
            Ok((false, e)) => ev.extend(e),
            Err(e) => return Outcome::error(format!("{}: {e}", fw.name)),
        }
    }
    if !any {
        ev.push(Evidence::note("no host firewall is installed").expected("an enabled, default-deny host firewall"));
    }
    Outcome::fail(ev)
}

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    let mut v = bind!(param; IP_FORWARD, IPV6_FORWARDING, ALL_SEND_REDIRECTS, DEFAULT_SEND_REDIRECTS,
        ALL_ACCEPT_SOURCE_ROUTE, DEFAULT_ACCEPT_SOURCE_ROUTE, IPV6_ALL_ACCEPT_SOURCE_ROUTE,
        IPV6_DEFAULT_ACCEPT_SOURCE_ROUTE, ALL_ACCEPT_REDIRECTS, DEFAULT_ACCEPT_REDIRECTS, IPV6_ALL_ACCEPT_REDIRECTS,
        IPV6_DEFAULT_ACCEPT_REDIRECTS, ALL_SECURE_REDIRECTS, DEFAULT_SECURE_REDIRECTS, ALL_LOG_MARTIANS,
        DEFAULT_LOG_MARTIANS, ICMP_ECHO_IGNORE_BROADCASTS, ICMP_IGNORE_BOGUS, ALL_RP_FILTER, DEFAULT_RP_FILTER,
        TCP_SYNCOOKIES, IPV6_ALL_ACCEPT_RA, IPV6_DEFAULT_ACCEPT_RA);
    v.push(Rule {
        eval: firewall_installed,
        ..template(
            "net.firewall_installed",
            Some("package_ufw_installed"),
            cis(Some("3.5.1.1"), Some("3.4.1.1")),
            "Ensure a host firewall is installed",
            Severity::Medium,
            "A host firewall limits which services are reachable even when one is started by mistake.",
            "Install ufw (Ubuntu), nftables, iptables-persistent, or firewalld (RHEL).",
            ALL,
        )
    });
    v.push(Rule {
        eval: firewall_default_deny,
        ..template(
            "net.firewall_default_deny",
            Some("service_ufw_enabled"),
            cis(Some("3.5.1.3"), Some("3.4.1.2")),
            "Ensure a host firewall is enabled at boot and denies inbound traffic by default",
            Severity::Medium,
            "An installed firewall protects nothing unless it starts at boot with a default-deny inbound policy.",
            "ufw: `ufw default deny incoming && ufw enable` (sets ENABLED=yes in /etc/ufw/ufw.conf and DEFAULT_INPUT_POLICY=\"DROP\" in /etc/default/ufw); nftables: a `type filter hook input` chain with `policy drop;` in /etc/nftables.conf and `systemctl enable nftables`; firewalld: `systemctl enable firewalld`.",
            ALL,
        )
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_numerically() {
        assert!(same_value(" 0", "0"));
        assert!(same_value("00", "0"));
        assert!(!same_value("2", "1"));
        assert!(same_value("4096  87380", "4096 87380"));
        assert_eq!(shell_var("ENABLED=no\n# x\nENABLED=\"yes\"\n", "ENABLED"), Some((3, "yes".to_owned())));
    }
}
