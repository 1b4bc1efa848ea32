//! Egress enforced on the scanner itself. The security group's egress rule is
//! not a control: AWS gives every new group an allow-all egress rule and the custom policy has no
//! `ec2:RevokeSecurityGroupEgress` (policies/README.md). So the scanner drops its own outbound
//! traffic: this module owns the nftables rule set that allows only the job's collector, IMDS,
//! the Amazon Time Sync Service, DNS when the collector is named, the link's own DHCP and IPv6
//! neighbour discovery, loopback and replies, and counts every other packet it drops.
//!
//! Split by privilege: `scanner-agent egress apply` runs as root before the scan
//! (`ExecStartPre=+` of the unit), reads the manifest, resolves the collector, renders the rule set
//! ([`render`], a pure function) and loads it with `nft -f -`, then records what it applied in a
//! state file ([`EgressState`]). The unprivileged `run` refuses to scan unless that record names
//! its own collector (`--require-egress`), and has no capability to change the rules.
//! `scanner-agent egress report` (`ExecStopPost=+`) logs the drop counter at the end.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::job::JobManifest;

/// The nftables table of the egress rules (family `inet`: IPv4 and IPv6). A table of its own,
/// beside the image's inbound table `agentless_scanner` (rootfs/etc/nftables.conf): a packet
/// leaves only if every base chain on the output hook accepts it.
pub const TABLE: &str = "agentless_egress";

/// The named counter of the packets the output chain drops.
pub const DROP_COUNTER: &str = "dropped";

/// `nft` as Debian's nftables package installs it (scanner-ami/image/packages.list).
pub const DEFAULT_NFT: &str = "/usr/sbin/nft";

/// Where `egress apply` records what it applied, for `run --require-egress` (a tmpfs: gone at the
/// next boot, as the rules are).
pub const DEFAULT_STATE_FILE: &str = "/run/agentless-scanner-egress.json";

/// The state file's mode: world-readable (it holds addresses, no secret), written by root only.
const STATE_FILE_MODE: u32 = 0o644;

/// IMDS, IPv4 and IPv6 (Nitro), port 80 (EC2 User Guide, "Access instance metadata for an EC2
/// instance": `http://169.254.169.254` and `http://[fd00:ec2::254]`).
pub const IMDS_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// See [`IMDS_V4`].
pub const IMDS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
/// See [`IMDS_V4`].
pub const IMDS_PORT: u16 = 80;

/// The Amazon Time Sync Service, NTP on UDP 123 (EC2 User Guide, "Set the time reference on your
/// EC2 instance to use the local Amazon Time Sync Service": 169.254.169.123 and fd00:ec2::123).
/// The image's timesyncd uses it (rootfs/etc/systemd/timesyncd.conf.d); the deadline and TLS
/// certificate checks need the clock.
pub const TIME_SYNC_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 123);
/// See [`TIME_SYNC_V4`].
pub const TIME_SYNC_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x123);
/// NTP's port (RFC 5905 §7.2).
pub const NTP_PORT: u16 = 123;

/// The Route 53 Resolver at its link-local address, used when the resolver configuration names no
/// other (Amazon VPC User Guide, "Amazon DNS server": 169.254.169.253 is reachable from every
/// instance besides the VPC base + 2 address DHCP hands out).
pub const ROUTE53_RESOLVER_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 253);

/// DNS over UDP and TCP (RFC 1035 §4.2).
pub const DNS_PORT: u16 = 53;

/// The resolver configurations read for the upstream DNS servers, in order: systemd-resolved's
/// list of the servers it forwards to (the image's `/etc/resolv.conf` points at its stub
/// 127.0.0.53, which is loopback), then the classic file.
pub const RESOLV_CONF_PATHS: [&str; 2] = ["/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"];

/// How much of `nft`'s error output is kept in an error.
const MAX_NFT_STDERR_CHARS: usize = 2000;

/// Why egress could not be enforced (the agent then does not scan).
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("collector URL {url:?} is not usable for the egress rules: {why}")]
    BadCollector { url: String, why: String },
    #[error("cannot resolve the collector host {host:?}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("the collector host {host:?} resolves to no address")]
    NoAddress { host: String },
    #[error("cannot run {nft}: {source}")]
    Spawn { nft: String, source: std::io::Error },
    #[error("{nft} {args} failed ({status}): {stderr}")]
    Nft { nft: String, args: String, status: String, stderr: String },
    #[error("cannot read the output of {nft} {args}: {why}")]
    NftOutput { nft: String, args: String, why: String },
    #[error("cannot write the egress state file {path}: {source}")]
    WriteState { path: String, source: std::io::Error },
    #[error("egress rules are not in place: cannot read {path}: {source}")]
    ReadState { path: String, source: std::io::Error },
    #[error("egress rules are not in place: {path} is not an egress record: {source}")]
    BadState { path: String, source: serde_json::Error },
    #[error(
        "egress rules are not in place for this job: {path} records collector {recorded:?}, the manifest names {expected:?}"
    )]
    OtherCollector { path: String, recorded: String, expected: String },
}

/// Where the collector is, from the manifest's `collector_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectorHost {
    /// An address literal: no DNS needed.
    Ip(IpAddr),
    /// A host name: resolved once, when the rules are made; DNS stays allowed.
    Name(String),
}

/// The collector's host and port (the scheme's default port when the URL has none: 80 for
/// `http`, 443 for `https`, RFC 9110 §4.2).
///
/// # Errors
///
/// The URL does not parse, has no host, or another scheme.
pub fn parse_collector(url: &str) -> Result<(CollectorHost, u16), EgressError> {
    let bad = |why: &str| EgressError::BadCollector { url: url.to_owned(), why: why.to_owned() };
    let uri: ureq::http::Uri = url.parse().map_err(|e: ureq::http::uri::InvalidUri| bad(&e.to_string()))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(bad("not an http:// or https:// URL")),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
    let port = uri.port_u16().unwrap_or(default_port);
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let host = match bare.parse::<IpAddr>() {
        Ok(ip) => CollectorHost::Ip(ip),
        Err(_) if host.starts_with('[') => return Err(bad("not an IPv6 address between brackets")),
        Err(_) => CollectorHost::Name(host.to_ascii_lowercase()),
    };
    Ok((host, port))
}

/// The upstream DNS servers of a resolv.conf text: its `nameserver` lines, loopback ones left out
/// (a local stub, reached over `lo`), in order, without repeats.
#[must_use]
pub fn resolvers_from(resolv_conf: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in resolv_conf.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // glibc accepts an IPv6 zone (`fe80::1%eth0`); nftables matches the address alone.
        let Some(ip) = words.next().and_then(|w| w.split('%').next()).and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if !ip.is_loopback() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// The upstream DNS servers of this machine ([`RESOLV_CONF_PATHS`], the first that names one),
/// else the Route 53 Resolver's link-local address.
#[must_use]
pub fn system_resolvers() -> Vec<IpAddr> {
    for path in RESOLV_CONF_PATHS {
        let servers = std::fs::read_to_string(path).map(|t| resolvers_from(&t)).unwrap_or_default();
        if !servers.is_empty() {
            return servers;
        }
    }
    vec![IpAddr::V4(ROUTE53_RESOLVER_V4)]
}

/// What the output chain allows beyond the fixed link services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressPlan {
    /// The manifest's collector URL, as given.
    pub collector_url: String,
    /// The collector's addresses and port: TCP to these only.
    pub collector: Vec<SocketAddr>,
    /// DNS servers (UDP and TCP 53): empty when the collector is an address literal.
    pub dns: Vec<IpAddr>,
}

/// The plan for `manifest`: the collector's addresses (`resolve` for a host name, the system
/// resolver in production) and, for a named collector only, the DNS servers `resolvers` gives.
///
/// # Errors
///
/// The collector URL is not usable or its name does not resolve.
pub fn plan(
    manifest: &JobManifest,
    resolve: impl Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>,
    resolvers: impl Fn() -> Vec<IpAddr>,
) -> Result<EgressPlan, EgressError> {
    let (host, port) = parse_collector(&manifest.collector_url)?;
    let (mut collector, dns) = match host {
        CollectorHost::Ip(ip) => (vec![SocketAddr::new(ip, port)], Vec::new()),
        CollectorHost::Name(name) => {
            let addrs = resolve(&name, port).map_err(|source| EgressError::Resolve { host: name.clone(), source })?;
            if addrs.is_empty() {
                return Err(EgressError::NoAddress { host: name });
            }
            (addrs, resolvers())
        }
    };
    collector.sort();
    collector.dedup();
    Ok(EgressPlan { collector_url: manifest.collector_url.clone(), collector, dns })
}

/// `ip daddr A` or `ip6 daddr A`.
fn daddr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip daddr {v4}"),
        IpAddr::V6(v6) => format!("ip6 daddr {v6}"),
    }
}

/// The nftables rule set of `plan` (for `nft -f`): it replaces the table [`TABLE`] atomically
/// (declared, deleted and made again in one transaction), leaves every other table alone, and
/// ends its output chain with a rule that counts in [`DROP_COUNTER`] and drops.
#[must_use]
pub fn render(plan: &EgressPlan) -> String {
    let mut s = String::new();
    // Collector URLs are manifest text: only what parsed as addresses goes into rules; the URL
    // itself is not written (a comment is as much nft syntax as a rule).
    let _ = writeln!(s, "# scanner-agent egress: outbound only to the job's collector and the link's services");
    let _ = writeln!(s, "table inet {TABLE}");
    let _ = writeln!(s, "delete table inet {TABLE}");
    let _ = writeln!(s, "table inet {TABLE} {{");
    let _ = writeln!(s, "\tcounter {DROP_COUNTER} {{\n\t}}");
    let _ = writeln!(s, "\tchain output {{");
    let _ = writeln!(s, "\t\ttype filter hook output priority filter; policy drop;");
    let _ = writeln!(s, "\t\toif \"lo\" accept");
    let _ = writeln!(s, "\t\tct state established,related accept");
    let _ = writeln!(s, "\t\tct state invalid counter name \"{DROP_COUNTER}\" drop");
    let _ = writeln!(s, "\t\t# IMDS");
    let _ = writeln!(s, "\t\t{} tcp dport {IMDS_PORT} accept", daddr(IpAddr::V4(IMDS_V4)));
    let _ = writeln!(s, "\t\t{} tcp dport {IMDS_PORT} accept", daddr(IpAddr::V6(IMDS_V6)));
    let _ = writeln!(s, "\t\t# Amazon Time Sync Service");
    let _ = writeln!(s, "\t\t{} udp dport {NTP_PORT} accept", daddr(IpAddr::V4(TIME_SYNC_V4)));
    let _ = writeln!(s, "\t\t{} udp dport {NTP_PORT} accept", daddr(IpAddr::V6(TIME_SYNC_V6)));
    // DHCP client to server (RFC 2131 §4.1: UDP 68 -> 67; RFC 8415 §7.2: UDP 546 -> 547) and the
    // neighbour discovery messages a host sends (RFC 4861 §4: hop limit 255, never routed).
    let _ = writeln!(s, "\t\t# DHCP lease renewal, IPv6 neighbour discovery (link-local)");
    let _ = writeln!(s, "\t\tudp sport 68 udp dport 67 accept");
    let _ = writeln!(s, "\t\tudp sport 546 udp dport 547 accept");
    let _ = writeln!(
        s,
        "\t\ticmpv6 type {{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }} ip6 hoplimit 255 accept"
    );
    let _ = writeln!(s, "\t\t# the collector");
    for a in &plan.collector {
        let _ = writeln!(s, "\t\t{} tcp dport {} accept", daddr(a.ip()), a.port());
    }
    if !plan.dns.is_empty() {
        let _ = writeln!(s, "\t\t# DNS: the collector is named");
        for ip in &plan.dns {
            let _ = writeln!(s, "\t\t{} udp dport {DNS_PORT} accept", daddr(*ip));
            let _ = writeln!(s, "\t\t{} tcp dport {DNS_PORT} accept", daddr(*ip));
        }
    }
    let _ = writeln!(s, "\t\tcounter name \"{DROP_COUNTER}\" drop");
    let _ = writeln!(s, "\t}}");
    let _ = writeln!(s, "}}");
    s
}

/// Run `nft ARGS`, with `stdin` as its input; its standard output.
fn nft(nft: &Path, args: &[&str], stdin: Option<&str>) -> Result<Vec<u8>, EgressError> {
    let name = nft.display().to_string();
    let mut child = Command::new(nft)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| EgressError::Spawn { nft: name.clone(), source })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error (nft exited early) shows in its status and stderr below.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|source| EgressError::Spawn { nft: name.clone(), source })?;
    if !out.status.success() {
        let stderr: String = String::from_utf8_lossy(&out.stderr)
            .chars()
            .take(MAX_NFT_STDERR_CHARS)
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect();
        return Err(EgressError::Nft {
            nft: name,
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: stderr.trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

/// Load `ruleset` with `nft -f -` (one transaction: all of it or nothing).
///
/// # Errors
///
/// `nft` could not be run or refused the rule set.
pub fn apply(nft_path: &Path, ruleset: &str) -> Result<(), EgressError> {
    nft(nft_path, &["-f", "-"], Some(ruleset)).map(drop)
}

/// The drop counter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub packets: u64,
    pub bytes: u64,
}

/// The [`DROP_COUNTER`] of `nft -j list counter inet agentless_egress dropped`'s JSON output
/// (libnftables-json(5): `{"nftables": [{"metainfo": ...}, {"counter": {"packets": N, "bytes":
/// N, ...}}]}`).
///
/// # Errors
///
/// The output has no such counter.
pub fn parse_counter(json: &[u8]) -> Result<Dropped, String> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let items = v.get("nftables").and_then(serde_json::Value::as_array).ok_or("no \"nftables\" array")?;
    let counter = items
        .iter()
        .filter_map(|i| i.get("counter"))
        .find(|c| c.get("name").and_then(serde_json::Value::as_str) == Some(DROP_COUNTER))
        .ok_or_else(|| format!("no counter {DROP_COUNTER:?}"))?;
    let num = |k: &str| counter.get(k).and_then(serde_json::Value::as_u64).ok_or_else(|| format!("no {k} number"));
    Ok(Dropped { packets: num("packets")?, bytes: num("bytes")? })
}

/// Read the drop counter from the kernel.
///
/// # Errors
///
/// `nft` failed (the table is not there) or printed something else.
pub fn read_dropped(nft_path: &Path) -> Result<Dropped, EgressError> {
    let args = ["-j", "list", "counter", "inet", TABLE, DROP_COUNTER];
    let out = nft(nft_path, &args, None)?;
    parse_counter(&out).map_err(|why| EgressError::NftOutput {
        nft: nft_path.display().to_string(),
        args: args.join(" "),
        why,
    })
}

/// What `egress apply` applied, for `run --require-egress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressState {
    /// The nftables table.
    pub table: String,
    /// The plan the rules were made of.
    pub plan: EgressPlan,
}

/// Settings of [`enforce`].
#[derive(Debug, Clone)]
pub struct EnforceConfig {
    /// `nft` ([`DEFAULT_NFT`]).
    pub nft: PathBuf,
    /// Where to record what was applied ([`DEFAULT_STATE_FILE`]).
    pub state_file: PathBuf,
}

/// Make the plan for `manifest` (system resolver), load its rules, record them. Nothing is
/// recorded unless the rules were loaded.
///
/// # Errors
///
/// See [`EgressError`].
pub fn enforce(manifest: &JobManifest, config: &EnforceConfig) -> Result<EgressPlan, EgressError> {
    use std::net::ToSocketAddrs as _;
    let plan = plan(manifest, |host, port| (host, port).to_socket_addrs().map(Iterator::collect), system_resolvers)?;
    // Remove a record of an earlier run first: if loading fails, no record claims rules.
    let _ = std::fs::remove_file(&config.state_file);
    apply(&config.nft, &render(&plan))?;
    let state = EgressState { table: TABLE.to_owned(), plan: plan.clone() };
    let write_err = |source| EgressError::WriteState { path: config.state_file.display().to_string(), source };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| write_err(std::io::Error::other(e)))?;
    let tmp = config.state_file.with_extension("tmp");
    std::fs::write(&tmp, json).map_err(write_err)?;
    // Readable by the unit's unprivileged dynamic user, whatever the umask (the unit's is 0077).
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(STATE_FILE_MODE)).map_err(write_err)?;
    std::fs::rename(&tmp, &config.state_file).map_err(write_err)?;
    Ok(plan)
}

/// `run --require-egress`: the record `egress apply` wrote names this manifest's collector.
///
/// # Errors
///
/// No record, not a record, or one for another collector.
pub fn check_state(path: &Path, manifest: &JobManifest) -> Result<EgressState, EgressError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| EgressError::ReadState { path: shown.clone(), source })?;
    let state: EgressState =
        serde_json::from_slice(&bytes).map_err(|source| EgressError::BadState { path: shown.clone(), source })?;
    if state.plan.collector_url != manifest.collector_url {
        return Err(EgressError::OtherCollector {
            path: shown,
            recorded: state.plan.collector_url,
            expected: manifest.collector_url.clone(),
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{HmacKey, JOB_MANIFEST_VERSION};

    fn manifest(url: &str) -> JobManifest {
        JobManifest {
            version: JOB_MANIFEST_VERSION,
            job: "j-1".into(),
            scanner: "s0".into(),
            collector_url: url.into(),
            collector_cert_sha256: None,
            hmac_key: HmacKey::from_hex(&"0b".repeat(32)).expect("key"),
            baseline: false,
            deadline_unix: 0,
            devices: vec![],
        }
    }

    fn no_dns(_: &str, _: u16) -> std::io::Result<Vec<SocketAddr>> {
        Err(std::io::Error::other("no DNS in this test"))
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn collector_host_and_port() {
        let ip = |s: &str| CollectorHost::Ip(s.parse().expect("ip"));
        assert_eq!(parse_collector("http://10.0.0.5:8443").expect("v4"), (ip("10.0.0.5"), 8443));
        assert_eq!(parse_collector("https://10.0.0.5/").expect("default"), (ip("10.0.0.5"), 443));
        assert_eq!(parse_collector("http://10.0.0.5").expect("default"), (ip("10.0.0.5"), 80));
        assert_eq!(parse_collector("http://[fd00::5]:9000").expect("v6"), (ip("fd00::5"), 9000));
        assert_eq!(
            parse_collector("https://Collector.Example.com:8443/x").expect("name"),
            (CollectorHost::Name("collector.example.com".into()), 8443)
        );
        for bad in ["ftp://10.0.0.5", "10.0.0.5:80", "http://", "http://[nothex]:80", "http://a b"] {
            assert!(matches!(parse_collector(bad), Err(EgressError::BadCollector { .. })), "{bad}");
        }
    }

    #[test]
    fn an_address_literal_needs_no_dns_and_renders_exactly() {
        let p =
            plan(&manifest("http://10.0.0.5:8443"), no_dns, || vec!["10.0.0.2".parse().expect("ip")]).expect("plan");
        assert_eq!(p.collector, [sock("10.0.0.5:8443")]);
        assert!(p.dns.is_empty(), "no DNS for an address literal");
        let expected = "\
# scanner-agent egress: outbound only to the job's collector and the link's services
table inet agentless_egress
delete table inet agentless_egress
table inet agentless_egress {
\tcounter dropped {
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy drop;
\t\toif \"lo\" accept
\t\tct state established,related accept
\t\tct state invalid counter name \"dropped\" drop
\t\t# IMDS
\t\tip daddr 169.254.169.254 tcp dport 80 accept
\t\tip6 daddr fd00:ec2::254 tcp dport 80 accept
\t\t# Amazon Time Sync Service
\t\tip daddr 169.254.169.123 udp dport 123 accept
\t\tip6 daddr fd00:ec2::123 udp dport 123 accept
\t\t# DHCP lease renewal, IPv6 neighbour discovery (link-local)
\t\tudp sport 68 udp dport 67 accept
\t\tudp sport 546 udp dport 547 accept
\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept
\t\t# the collector
\t\tip daddr 10.0.0.5 tcp dport 8443 accept
\t\tcounter name \"dropped\" drop
\t}
}
";
        assert_eq!(render(&p), expected);
        assert!(!render(&p).contains("dport 53"), "no DNS rule");
    }

    #[test]
    fn a_named_collector_pins_its_addresses_and_allows_dns_to_the_resolvers() {
        let resolve = |host: &str, port: u16| -> std::io::Result<Vec<SocketAddr>> {
            assert_eq!((host, port), ("collector.internal", 443));
            Ok(vec![sock("[fd00::7]:443"), sock("10.1.2.3:443"), sock("10.1.2.3:443")])
        };
        let resolvers = || vec!["10.1.0.2".parse().expect("ip"), "fd00:ec2::253".parse().expect("ip")];
        let p = plan(&manifest("https://collector.internal"), resolve, resolvers).expect("plan");
        assert_eq!(p.collector, [sock("10.1.2.3:443"), sock("[fd00::7]:443")], "sorted, deduplicated");
        let text = render(&p);
        let rules: Vec<&str> =
            text.lines().map(str::trim).filter(|l| l.contains("dport 443") || l.contains("dport 53")).collect();
        assert_eq!(
            rules,
            [
                "ip daddr 10.1.2.3 tcp dport 443 accept",
                "ip6 daddr fd00::7 tcp dport 443 accept",
                "ip daddr 10.1.0.2 udp dport 53 accept",
                "ip daddr 10.1.0.2 tcp dport 53 accept",
                "ip6 daddr fd00:ec2::253 udp dport 53 accept",
                "ip6 daddr fd00:ec2::253 tcp dport 53 accept",
            ]
        );
        // The drop rule is the chain's last.
        let last_rule = text.lines().rev().map(str::trim).find(|l| !l.starts_with('}')).unwrap_or("");
        assert_eq!(last_rule, "counter name \"dropped\" drop");
    }

    #[test]
    fn resolution_failures_are_errors() {
        assert!(matches!(
            plan(&manifest("https://collector.internal"), no_dns, Vec::new),
            Err(EgressError::Resolve { host, .. }) if host == "collector.internal"
        ));
        assert!(matches!(
            plan(&manifest("https://collector.internal"), |_, _| Ok(vec![]), Vec::new),
            Err(EgressError::NoAddress { .. })
        ));
    }

    #[test]
    fn resolvers_of_resolv_conf() {
        let text = "# systemd-resolved\nnameserver 10.0.0.2\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\n\
                    nameserver 10.0.0.2\nsearch ec2.internal\nnameserver not-an-ip\n";
        let want: Vec<IpAddr> = vec!["10.0.0.2".parse().expect("ip"), "fe80::1".parse().expect("ip")];
        assert_eq!(resolvers_from(text), want);
        assert!(resolvers_from("nameserver 127.0.0.53\noptions edns0\n").is_empty());
    }

    #[test]
    fn counter_from_nft_json() {
        let json = br#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"counter": {"family": "inet", "name": "dropped", "table": "agentless_egress", "handle": 1,
             "packets": 3, "bytes": 180}}]}"#;
        assert_eq!(parse_counter(json), Ok(Dropped { packets: 3, bytes: 180 }));
        assert!(parse_counter(br#"{"nftables": [{"metainfo": {}}]}"#).is_err());
        assert!(parse_counter(b"not json").is_err());
    }

    #[test]
    fn the_state_must_name_the_manifests_collector() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("egress.json");
        let m = manifest("http://10.0.0.5:8443");
        assert!(matches!(check_state(&path, &m), Err(EgressError::ReadState { .. })));
        std::fs::write(&path, b"{}").expect("write");
        assert!(matches!(check_state(&path, &m), Err(EgressError::BadState { .. })));
        let p = plan(&m, no_dns, Vec::new).expect("plan");
        let state = EgressState { table: TABLE.into(), plan: p };
        std::fs::write(&path, serde_json::to_vec(&state).expect("json")).expect("write");
        assert_eq!(check_state(&path, &m).expect("ok"), state);
        let other = manifest("http://10.0.0.6:8443");
        assert!(matches!(check_state(&path, &other), Err(EgressError::OtherCollector { .. })));
    }
}
