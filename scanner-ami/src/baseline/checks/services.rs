//! Services: unwanted server and client packages are not installed (CIS Ubuntu 2.1-2.3, RHEL 9
//! 2.2-2.3), with "enabled" unit symlinks as extra evidence, and time synchronisation is
//! installed, enabled and configured (CIS Ubuntu 2.2.1, RHEL 9 2.1).
//!
//! Also owns the helpers the system checks share: systemd unit state read from unit files and
//! `*.wants/` symlinks of the image ([`unit_state`]), package presence by family with a fallback
//! on well-known paths when the image has no package database ([`presence`]), CIS reference
//! construction ([`cis`]) and the [`bind!`] macro that turns rule tables into [`Rule`]s.

use std::rc::Rc;

use crate::baseline::parse::fstab::{IniSet, load_ini};
use crate::baseline::{CisRefs, Ctx, Evidence, Outcome, Rule, Severity};
use crate::fs::FileKind;
use crate::os::Family;

pub(crate) use super::{Eval, cis, unbound};

/// Turn statics holding a `rule: Rule` template and parameters into rules evaluated by
/// `$eval(ctx, &STATIC)`.
macro_rules! bind {
    ($eval:path; $($item:ident),+ $(,)?) => {
        vec![$($crate::baseline::Rule { eval: |ctx| $eval(ctx, &$item), ..$item.rule }),+]
    };
}
pub(crate) use bind;

/// A rule template: everything but the evaluation.
#[allow(clippy::too_many_arguments)]
#[must_use]
pub(crate) const fn template(
    id: &'static str,
    ssg_id: Option<&'static str>,
    cis: CisRefs,
    title: &'static str,
    severity: Severity,
    rationale: &'static str,
    remediation: &'static str,
    families: &'static [Family],
) -> Rule {
    Rule { id, ssg_id, cis, title, severity, rationale, remediation, families, eval: unbound }
}

/// Where systemd looks for units, highest priority first (systemd.unit(5) system unit paths).
pub(crate) const UNIT_DIRS: [&str; 4] =
    ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"];

/// Most `*.wants/`/`*.requires/` symlinks collected. A full server has a few hundred; the bound
/// keeps a planted tree of millions from costing more than a bounded listing.
const MAX_UNIT_LINKS: usize = 100_000;

/// How a unit is set up in the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UnitState {
    /// The unit file systemd would load (first found in [`UNIT_DIRS`]).
    pub file: Option<String>,
    /// `*.wants/`/`*.requires/` symlinks naming the unit (it is enabled if any exists).
    pub wanted_by: Vec<String>,
    /// The `/dev/null` symlink masking it.
    pub masked: Option<String>,
}

impl UnitState {
    /// Enabled and not masked.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.masked.is_none() && !self.wanted_by.is_empty()
    }
    /// Evidence describing the state of `unit`.
    #[must_use]
    pub fn evidence(&self, unit: &str) -> Evidence {
        if let Some(m) = &self.masked {
            Evidence::file(m.clone()).found(format!("{unit} masked (symlink to /dev/null)"))
        } else if let Some(w) = self.wanted_by.first() {
            Evidence::file(w.clone()).found(format!("{unit} enabled"))
        } else {
            Evidence::file(self.file.clone().unwrap_or_else(|| format!("/etc/systemd/system/{unit}")))
                .found(format!("{unit} not enabled (no *.wants/ or *.requires/ symlink)"))
        }
    }
}

/// Every `*.wants/` and `*.requires/` symlink of the persistent unit directories, once per
/// evaluation: `(link path, unit name)`.
fn unit_links(ctx: &Ctx<'_>) -> Rc<Result<Vec<(String, String)>, String>> {
    ctx.memo("systemd_links", |ctx| {
        let mut out = Vec::new();
        for base in ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"] {
            for d in ctx.list_dir(base)? {
                if !(d.name.ends_with(".wants") || d.name.ends_with(".requires")) || d.kind == FileKind::File {
                    continue;
                }
                let dir = format!("{base}/{}", d.name);
                for e in ctx.list_dir(&dir)? {
                    out.push((format!("{dir}/{}", e.name), e.name));
                    if out.len() > MAX_UNIT_LINKS {
                        return Err(format!("more than {MAX_UNIT_LINKS} unit symlinks under {base}"));
                    }
                }
            }
        }
        Ok(out)
    })
}

/// The state of `unit` (e.g. `auditd.service`) from the image's unit directories.
pub(crate) fn unit_state(ctx: &Ctx<'_>, unit: &str) -> Result<UnitState, String> {
    let mut st = UnitState::default();
    for dir in UNIT_DIRS {
        let p = format!("{dir}/{unit}");
        if let Some(m) = ctx.lstat(&p)? {
            if m.kind == FileKind::Symlink && ctx.fs.read_link(&p).is_ok_and(|t| t == "/dev/null") {
                st.masked = Some(p);
                break;
            }
            st.file = Some(p);
            break;
        }
    }
    let links = unit_links(ctx);
    let links = links.as_ref().as_ref().map_err(Clone::clone)?;
    st.wanted_by = links.iter().filter(|(_, u)| u == unit).map(|(p, _)| p.clone()).collect();
    Ok(st)
}

/// The first of `units` that is enabled, with its state; else the states of all of them.
pub(crate) fn any_enabled(ctx: &Ctx<'_>, units: &[&str]) -> Result<(Option<String>, Vec<Evidence>), String> {
    let mut ev = Vec::new();
    for u in units {
        let st = unit_state(ctx, u)?;
        if st.enabled() {
            return Ok((Some((*u).to_owned()), vec![st.evidence(u)]));
        }
        if st.file.is_some() || st.masked.is_some() {
            ev.push(st.evidence(u));
        }
    }
    Ok((None, ev))
}

/// The package names that apply to this image: the Debian or Red Hat names by family, both for
/// other families.
#[must_use]
pub(crate) fn names_for<'a>(ctx: &Ctx<'_>, debian: &'a [&'a str], rhel: &'a [&'a str]) -> Vec<&'a str> {
    match ctx.family() {
        Family::Debian => debian.to_vec(),
        Family::Rhel => rhel.to_vec(),
        _ => debian.iter().chain(rhel).copied().collect(),
    }
}

/// The installed packages matching `names` (a trailing `*` matches a prefix), with evidence.
#[must_use]
pub(crate) fn installed(ctx: &Ctx<'_>, names: &[&str]) -> Vec<Evidence> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for p in ctx.packages {
        let hit = names.iter().any(|n| match n.strip_suffix('*') {
            Some(prefix) => p.name.starts_with(prefix),
            None => p.name == *n,
        });
        // Multi-arch installs list a package once per architecture: report it once.
        if hit && !seen.contains(&p.name.as_str()) {
            seen.push(&p.name);
            out.push(Evidence::file(p.db_path.clone()).found(format!("{} {} installed", p.name, p.full_version())));
        }
    }
    out
}

/// Whether software is present: from the package database, or, when the image has none, from
/// well-known paths (`probes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presence {
    Installed(Vec<Evidence>),
    Absent(Vec<Evidence>),
}

/// Decide whether one of `names` (already chosen for the family) is installed.
#[must_use]
pub(crate) fn presence(ctx: &Ctx<'_>, names: &[&str], probes: &[&str]) -> Presence {
    if !ctx.no_inventory() {
        let ev = installed(ctx, names);
        return if ev.is_empty() {
            Presence::Absent(vec![Evidence::note(format!("none of {} is installed", names.join(", ")))])
        } else {
            Presence::Installed(ev)
        };
    }
    for p in probes {
        if matches!(ctx.lstat(p), Ok(Some(_))) {
            return Presence::Installed(vec![
                Evidence::file(*p)
                    .found("present")
                    .with_note("no package database in the image: decided by the presence of this file".to_owned()),
            ]);
        }
    }
    Presence::Absent(vec![Evidence::note(format!(
        "no package database in the image; none of {} exists",
        if probes.is_empty() { "the known paths".to_owned() } else { probes.join(", ") }
    ))])
}

/// An unwanted package: the rule template and where to look.
#[derive(Debug)]
pub(crate) struct Unwanted {
    pub rule: Rule,
    pub debian: &'static [&'static str],
    pub rhel: &'static [&'static str],
    /// Units whose enablement is reported as extra evidence.
    pub units: &'static [&'static str],
    /// Paths that reveal the software when the image has no package database.
    pub probes: &'static [&'static str],
}

/// Pass when none of the packages is installed.
pub(crate) fn unwanted(ctx: &Ctx<'_>, u: &Unwanted) -> Outcome {
    let names = names_for(ctx, u.debian, u.rhel);
    match presence(ctx, &names, u.probes) {
        Presence::Absent(ev) => Outcome::pass(ev),
        Presence::Installed(mut ev) => {
            for e in &mut ev {
                e.expected = Some("not installed".to_owned());
            }
            match any_enabled(ctx, u.units) {
                Ok((_, more)) => ev.extend(more),
                Err(e) => ev.push(Evidence::note(format!("unit state unknown: {e}"))),
            }
            Outcome::fail(ev)
        }
    }
}

const DEB: &[Family] = &[];

macro_rules! unwanted_item {
    ($name:ident, $id:literal, $ssg:literal, $u:expr, $r:expr, $sev:ident, $title:literal, $why:literal,
     debian: $deb:expr, rhel: $rh:expr, units: $units:expr, probes: $probes:expr) => {
        static $name: Unwanted = Unwanted {
            rule: template(
                $id,
                Some($ssg),
                cis($u, $r),
                $title,
                Severity::$sev,
                $why,
                concat!(
                    "Remove the package: `apt purge <package>` (Debian/Ubuntu) or `dnf remove <package>` (RHEL); ",
                    "if it must stay, `systemctl --now mask` its units."
                ),
                DEB,
            ),
            debian: $deb,
            rhel: $rh,
            units: $units,
            probes: $probes,
        };
    };
}

// Severities are SSG 0.1.65's; rules SSG leaves unrated (`unknown`: httpd, dovecot, samba,
// squid, net-snmp, rsh, cups) are `low`, the nearest of our levels (Severity has no unknown;
// the same convention as the other baseline areas).
unwanted_item!(XINETD, "svc.xinetd_removed", "package_xinetd_removed", Some("2.1.1"), None, Low,
    "Ensure xinetd is not installed",
    "xinetd starts network services on demand; a super-server with forgotten entries widens the attack surface.",
    debian: &["xinetd"], rhel: &["xinetd"], units: &["xinetd.service"],
    probes: &["/usr/sbin/xinetd", "/etc/xinetd.conf"]);
unwanted_item!(AVAHI, "svc.avahi_removed", "service_avahi-daemon_disabled", Some("2.2.3"), Some("2.2.2"), Medium,
    "Ensure the Avahi server is not installed",
    "Avahi (mDNS/DNS-SD) advertises and discovers services on the local network; servers do not need it.",
    debian: &["avahi-daemon"], rhel: &["avahi"], units: &["avahi-daemon.service", "avahi-daemon.socket"],
    probes: &["/usr/sbin/avahi-daemon"]);
unwanted_item!(CUPS, "svc.cups_removed", "service_cups_disabled", Some("2.2.4"), Some("2.2.3"), Low,
    "Ensure CUPS is not installed",
    "The CUPS print server listens on the network (IPP, 631/tcp); servers that do not print should not run it.",
    debian: &["cups", "cups-daemon"], rhel: &["cups"], units: &["cups.service", "cups.socket", "cups.path"],
    probes: &["/usr/sbin/cupsd"]);
unwanted_item!(DHCPD, "svc.dhcp_server_removed", "package_dhcp_removed", Some("2.2.5"), Some("2.2.4"), Medium,
    "Ensure a DHCP server is not installed",
    "A DHCP server hands out network configuration; an unneeded one is both an attack surface and a rogue-DHCP risk.",
    debian: &["isc-dhcp-server", "kea-dhcp4-server"], rhel: &["dhcp-server"],
    units: &["isc-dhcp-server.service", "isc-dhcp-server6.service", "dhcpd.service", "dhcpd6.service"],
    probes: &["/usr/sbin/dhcpd"]);
unwanted_item!(SLAPD, "svc.ldap_server_removed", "package_openldap-servers_removed", Some("2.2.6"), None, Low,
    "Ensure an LDAP server is not installed",
    "An LDAP directory server is only needed on directory hosts; elsewhere it is an unneeded network service.",
    debian: &["slapd"], rhel: &["openldap-servers"], units: &["slapd.service"], probes: &["/usr/sbin/slapd"]);
unwanted_item!(NFS, "svc.nfs_server_removed", "package_nfs-utils_removed", None, Some("2.2.16"), Low,
    "Ensure an NFS server is not installed",
    "The NFS server exports local file systems over the network (and needs rpcbind); most hosts do not serve NFS.",
    debian: &["nfs-kernel-server"], rhel: &["nfs-utils"], units: &["nfs-server.service", "nfs-kernel-server.service"],
    probes: &["/usr/sbin/rpc.nfsd"]);
unwanted_item!(BIND, "svc.dns_server_removed", "package_bind_removed", Some("2.2.8"), Some("2.2.5"), Low,
    "Ensure a DNS server is not installed",
    "BIND serves DNS to the network; hosts that are not name servers should not run it.",
    debian: &["bind9"], rhel: &["bind"], units: &["named.service", "bind9.service"], probes: &["/usr/sbin/named"]);
unwanted_item!(VSFTPD, "svc.ftp_server_removed", "package_vsftpd_removed", Some("2.2.9"), Some("2.2.6"), High,
    "Ensure an FTP server is not installed",
    "FTP sends credentials and data in clear text; an FTP server should not be present unless required.",
    debian: &["vsftpd"], rhel: &["vsftpd"], units: &["vsftpd.service"], probes: &["/usr/sbin/vsftpd"]);
unwanted_item!(HTTPD, "svc.http_server_removed", "package_httpd_removed", Some("2.2.10"), Some("2.2.8"), Low,
    "Ensure a web server is not installed",
    "A web server (Apache httpd, nginx) is an internet-facing service; hosts that serve no web content should not have one.",
    debian: &["apache2", "nginx", "nginx-core"], rhel: &["httpd", "nginx"],
    units: &["apache2.service", "httpd.service", "nginx.service"],
    probes: &["/usr/sbin/apache2", "/usr/sbin/httpd", "/usr/sbin/nginx"]);
unwanted_item!(DOVECOT, "svc.imap_server_removed", "package_dovecot_removed", Some("2.2.11"), Some("2.2.9"), Low,
    "Ensure an IMAP/POP3 server is not installed",
    "Dovecot serves mailboxes over IMAP/POP3; only mail servers need it.",
    debian: &["dovecot-imapd", "dovecot-pop3d", "dovecot-core"], rhel: &["dovecot", "cyrus-imapd"],
    units: &["dovecot.service"], probes: &["/usr/sbin/dovecot"]);
unwanted_item!(SAMBA, "svc.samba_removed", "package_samba_removed", Some("2.2.12"), Some("2.2.10"), Low,
    "Ensure Samba is not installed",
    "Samba exports file shares over SMB; hosts that share nothing with Windows clients should not run it.",
    debian: &["samba"], rhel: &["samba"], units: &["smbd.service", "smb.service", "nmbd.service"],
    probes: &["/usr/sbin/smbd"]);
unwanted_item!(SQUID, "svc.http_proxy_removed", "package_squid_removed", Some("2.2.13"), Some("2.2.11"), Low,
    "Ensure an HTTP proxy server is not installed",
    "Squid proxies HTTP for other hosts; an unneeded proxy can be abused to reach internal networks.",
    debian: &["squid"], rhel: &["squid"], units: &["squid.service"], probes: &["/usr/sbin/squid"]);
unwanted_item!(SNMPD, "svc.snmp_server_removed", "package_net-snmp_removed", Some("2.2.14"), Some("2.2.12"), Low,
    "Ensure an SNMP server is not installed",
    "The SNMP agent exposes system data (SNMPv1/v2c with clear-text community strings); only monitored hosts need it.",
    debian: &["snmpd"], rhel: &["net-snmp"], units: &["snmpd.service"], probes: &["/usr/sbin/snmpd"]);
unwanted_item!(NIS, "svc.nis_removed", "package_nis_removed", Some("2.2.17"), None, Low,
    "Ensure NIS is not installed",
    "NIS (YP) is a legacy directory service without authentication or encryption.",
    debian: &["nis"], rhel: &["ypserv"], units: &["ypserv.service", "nis.service", "ypbind.service"],
    probes: &["/usr/sbin/ypserv", "/usr/sbin/ypbind"]);
unwanted_item!(TELNETD, "svc.telnet_server_removed", "package_telnet-server_removed", None, Some("2.2.13"), High,
    "Ensure a telnet server is not installed",
    "telnet sends passwords and sessions in clear text.",
    debian: &["telnetd", "inetutils-telnetd", "telnetd-ssl"], rhel: &["telnet-server"],
    units: &["telnet.socket", "inetd.service"], probes: &["/usr/sbin/in.telnetd", "/usr/sbin/telnetd"]);
unwanted_item!(TFTPD, "svc.tftp_server_removed", "package_tftp-server_removed", None, Some("2.2.7"), High,
    "Ensure a TFTP server is not installed",
    "TFTP has no authentication; a TFTP server hands files to anyone who asks.",
    debian: &["tftpd-hpa", "tftpd", "atftpd"], rhel: &["tftp-server"], units: &["tftpd-hpa.service", "tftp.socket"],
    probes: &["/usr/sbin/in.tftpd"]);
unwanted_item!(XORG, "svc.xorg_removed", "package_xorg-x11-server-common_removed", Some("2.2.2"), Some("2.2.1"), Medium,
    "Ensure the X Window System server is not installed",
    "Servers do not need a graphical display server; X11 brings a large amount of code and its own attack surface.",
    debian: &["xserver-xorg*"], rhel: &["xorg-x11-server-common"], units: &["display-manager.service"],
    probes: &["/usr/bin/Xorg", "/usr/lib/xorg/Xorg"]);
unwanted_item!(RSH, "svc.rsh_client_removed", "package_rsh_removed", Some("2.3.2"), None, Low,
    "Ensure the rsh client is not installed",
    "rsh, rcp and rlogin send credentials in clear text and trust host-based authentication.",
    debian: &["rsh-client", "rsh-redone-client"], rhel: &["rsh"], units: &[], probes: &["/usr/bin/rsh"]);
unwanted_item!(TALK, "svc.talk_client_removed", "package_talk_removed", Some("2.3.3"), None, Medium,
    "Ensure the talk client is not installed",
    "talk sends messages in clear text through the talkd service.",
    debian: &["talk"], rhel: &["talk"], units: &[], probes: &["/usr/bin/talk"]);
unwanted_item!(TELNET, "svc.telnet_client_removed", "package_telnet_removed", Some("2.3.4"), Some("2.3.1"), Low,
    "Ensure the telnet client is not installed",
    "The telnet client sends credentials in clear text; ssh replaces it.",
    debian: &["telnet", "inetutils-telnet"], rhel: &["telnet"], units: &[], probes: &["/usr/bin/telnet"]);
unwanted_item!(LDAPCLI, "svc.ldap_client_removed", "package_openldap-clients_removed", Some("2.3.5"), Some("2.3.2"),
    Low,
    "Ensure the LDAP client tools are not installed",
    "The LDAP command-line clients are not needed unless the host queries a directory by hand.",
    debian: &["ldap-utils"], rhel: &["openldap-clients"], units: &[], probes: &["/usr/bin/ldapsearch"]);

/// The time synchronisation daemons CIS accepts, how to find them and their configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeDaemon {
    Chrony,
    Timesyncd,
    Ntp,
}

impl TimeDaemon {
    fn name(self) -> &'static str {
        match self {
            TimeDaemon::Chrony => "chrony",
            TimeDaemon::Timesyncd => "systemd-timesyncd",
            TimeDaemon::Ntp => "ntp",
        }
    }
    fn packages(self) -> &'static [&'static str] {
        match self {
            TimeDaemon::Chrony => &["chrony"],
            TimeDaemon::Timesyncd => &["systemd-timesyncd"],
            TimeDaemon::Ntp => &["ntp", "ntpsec"],
        }
    }
    /// Paths that reveal the daemon (timesyncd shipped inside the `systemd` package before
    /// Debian 11 / Ubuntu 20.10, so its binary is probed even with a package database).
    fn probes(self) -> &'static [&'static str] {
        match self {
            TimeDaemon::Chrony => &["/usr/sbin/chronyd", "/etc/chrony/chrony.conf", "/etc/chrony.conf"],
            TimeDaemon::Timesyncd => &["/usr/lib/systemd/systemd-timesyncd", "/lib/systemd/systemd-timesyncd"],
            TimeDaemon::Ntp => &["/usr/sbin/ntpd", "/etc/ntp.conf", "/etc/ntpsec/ntp.conf"],
        }
    }
    fn units(self) -> &'static [&'static str] {
        match self {
            TimeDaemon::Chrony => &["chrony.service", "chronyd.service"],
            TimeDaemon::Timesyncd => &["systemd-timesyncd.service"],
            TimeDaemon::Ntp => &["ntp.service", "ntpd.service", "ntpsec.service"],
        }
    }
}

const TIME_DAEMONS: [TimeDaemon; 3] = [TimeDaemon::Chrony, TimeDaemon::Timesyncd, TimeDaemon::Ntp];

fn time_daemon_present(ctx: &Ctx<'_>, d: TimeDaemon) -> Option<Vec<Evidence>> {
    match presence(ctx, d.packages(), d.probes()) {
        Presence::Installed(ev) => Some(ev),
        Presence::Absent(_) if d == TimeDaemon::Timesyncd => {
            // Present as part of the systemd package on older releases.
            d.probes()
                .iter()
                .find(|p| matches!(ctx.lstat(p), Ok(Some(_))))
                .map(|p| vec![Evidence::file(*p).found("present")])
        }
        Presence::Absent(_) => None,
    }
}

fn time_daemon_installed(ctx: &Ctx<'_>) -> Outcome {
    let mut ev = Vec::new();
    for d in TIME_DAEMONS {
        if let Some(found) = time_daemon_present(ctx, d) {
            ev.extend(found);
        }
    }
    if ev.is_empty() {
        Outcome::fail(vec![
            Evidence::note("none of chrony, systemd-timesyncd, ntp/ntpsec is installed".to_owned())
                .expected("one time synchronisation daemon installed"),
        ])
    } else {
        Outcome::pass(ev)
    }
}

/// Most files a chrony/ntp configuration may pull in through `include`/`confdir`/`sourcedir`.
const MAX_TIME_CONFIG_FILES: usize = 64;

/// `server`/`pool`/`peer` lines of a chrony or ntp configuration, following chrony's `include`,
/// `confdir` (`*.conf`) and `sourcedir` (`*.sources`) directives, bounded.
fn time_sources(ctx: &Ctx<'_>, roots: &[&str]) -> Result<(Vec<Evidence>, Vec<String>), String> {
    let mut queue: Vec<String> = roots.iter().map(|s| (*s).to_owned()).collect();
    let mut read = Vec::new();
    let mut sources = Vec::new();
    let mut i = 0;
    while let Some(f) = queue.get(i).cloned() {
        i += 1;
        if read.contains(&f) {
            continue;
        }
        if read.len() >= MAX_TIME_CONFIG_FILES {
            return Err(format!("more than {MAX_TIME_CONFIG_FILES} time configuration files"));
        }
        let Some(text) = ctx.read_text(&f)? else { continue };
        read.push(f.clone());
        for (n, line) in text.lines().enumerate() {
            let mut w = line.split_whitespace();
            match (w.next(), w.next()) {
                (Some(d @ ("server" | "pool" | "peer")), Some(host)) => {
                    sources.push(Evidence::file(f.clone()).line(n + 1).found(format!("{d} {host}")));
                }
                (Some("include"), Some(pattern)) => queue.extend(crate::baseline::ctx::glob(ctx, pattern, 64)?),
                (Some("confdir"), Some(dir)) => {
                    queue.extend(crate::baseline::ctx::glob(ctx, &format!("{dir}/*.conf"), 64)?)
                }
                (Some("sourcedir"), Some(dir)) => {
                    queue.extend(crate::baseline::ctx::glob(ctx, &format!("{dir}/*.sources"), 64)?);
                }
                _ => {}
            }
        }
    }
    Ok((sources, read))
}

fn timesyncd_config(ctx: &Ctx<'_>) -> IniSet {
    load_ini(
        ctx,
        &["/etc/systemd/timesyncd.conf", "/usr/lib/systemd/timesyncd.conf"],
        &["/etc/systemd/timesyncd.conf.d", "/run/systemd/timesyncd.conf.d", "/usr/lib/systemd/timesyncd.conf.d"],
    )
}

fn time_sync_configured(ctx: &Ctx<'_>) -> Outcome {
    let mut ev = Vec::new();
    let mut good = Vec::new();
    for d in TIME_DAEMONS {
        if time_daemon_present(ctx, d).is_none() {
            continue;
        }
        let (enabled, unit_ev) = match any_enabled(ctx, d.units()) {
            Ok(v) => v,
            Err(e) => return Outcome::error(format!("cannot read systemd unit links: {e}")),
        };
        let servers = match d {
            TimeDaemon::Chrony => time_sources(ctx, &["/etc/chrony/chrony.conf", "/etc/chrony.conf"]).map(|v| v.0),
            TimeDaemon::Ntp => time_sources(ctx, &["/etc/ntp.conf", "/etc/ntpsec/ntp.conf"]).map(|v| v.0),
            TimeDaemon::Timesyncd => {
                let set = timesyncd_config(ctx);
                if let Some(e) = set.errors.first() {
                    Err(e.clone())
                } else {
                    Ok(["NTP", "FallbackNTP"]
                        .iter()
                        .filter_map(|k| set.get("Time", k))
                        .map(|e| Evidence::file(e.file.clone()).line(e.line).found(format!("{}={}", e.key, e.value)))
                        .collect())
                }
            }
        };
        let servers = match servers {
            Ok(s) => s,
            Err(e) => return Outcome::error(format!("{}: {e}", d.name())),
        };
        let configured = !servers.is_empty();
        if enabled.is_some() && configured {
            good.push(d.name());
        }
        if configured {
            ev.extend(servers);
        } else {
            ev.push(Evidence::note(format!("{}: no server/pool configured", d.name())).expected(match d {
                TimeDaemon::Timesyncd => "NTP= or FallbackNTP= in [Time] of /etc/systemd/timesyncd.conf",
                _ => "a `server` or `pool` line",
            }));
        }
        ev.extend(unit_ev);
        if enabled.is_none() {
            ev.push(Evidence::note(format!("{}: no unit of {} is enabled", d.name(), d.units().join(", "))));
        }
    }
    if ev.is_empty() {
        return Outcome::fail(vec![Evidence::note("no time synchronisation daemon is installed".to_owned())]);
    }
    if good.len() > 1 {
        ev.push(Evidence::note(format!(
            "more than one daemon is enabled ({}); CIS wants exactly one",
            good.join(", ")
        )));
    }
    Outcome::check(!good.is_empty(), ev)
}

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    let mut v = bind!(unwanted; XINETD, AVAHI, CUPS, DHCPD, SLAPD, NFS, BIND, VSFTPD, HTTPD, DOVECOT, SAMBA, SQUID,
        SNMPD, NIS, TELNETD, TFTPD, XORG, RSH, TALK, TELNET, LDAPCLI);
    v.push(Rule {
        eval: time_daemon_installed,
        ..template(
            "time.daemon_installed",
            Some("package_chrony_installed"),
            cis(Some("2.2.1.1"), Some("2.1.1")),
            "Ensure a time synchronisation daemon is installed",
            Severity::Medium,
            "Log correlation, Kerberos and TLS all depend on an accurate clock; chrony, systemd-timesyncd or ntp keeps it.",
            "Install chrony (`apt install chrony` / `dnf install chrony`) or systemd-timesyncd.",
            DEB,
        )
    });
    v.push(Rule {
        eval: time_sync_configured,
        ..template(
            "time.sync_configured",
            Some("chronyd_specify_remote_server"),
            cis(Some("2.2.1.3"), Some("2.1.2")),
            "Ensure time synchronisation is enabled and has a time source",
            Severity::Medium,
            "An installed time daemon only helps if its unit is enabled and it knows a server to follow.",
            "chrony: add `server <host> iburst` or `pool <host> iburst` to /etc/chrony/chrony.conf (Debian) or /etc/chrony.conf (RHEL) and `systemctl enable chrony`/`chronyd`; timesyncd: set `NTP=<host>` under [Time] in /etc/systemd/timesyncd.conf and `systemctl enable systemd-timesyncd`.",
            DEB,
        )
    });
    v
}
