//! Which name and version of an installed package an advisory speaks about.
//!
//! - Debian and Ubuntu advisories name **source** packages, with source versions: a binary is
//!   matched under its `Source:` name and version when they differ (bookworm's `postgresql-client`
//!   `15+248+deb12u2` is built from `postgresql-common` `248+deb12u2`).
//! - Alpine advisories name the origin (`o:`) package; its version is the binary's.
//! - The RPM family (AlmaLinux, Rocky, RHEL) names binary packages, compared by their full
//!   `epoch:version-release` (an epoch of 1 outranks any version without one).
//! - Kernels: Debian's signed images (`linux-image-6.1.0-13-amd64`, source `linux-signed-amd64`
//!   `6.1.55+1`) are matched as `linux` at the binary's version (`6.1.55-1`), the version the
//!   `linux` advisories use; Ubuntu's `linux-signed[-FLAVOUR]` sources as `linux[-FLAVOUR]`;
//!   the RPM family's `kernel-core`, `kernel-modules`... as `kernel`.
//!
//! Also here: which advisories are about vulnerabilities at all (bug-fix and enhancement errata
//! are not).

use super::ecosystem::Distro;
use super::inventory::PackageDoc;

/// The name and version an advisory is looked up and compared with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchKey {
    pub name: String,
    pub version: String,
    /// The package is a kernel (several may be installed; only the running one matters).
    pub kernel: bool,
}

/// The RPM binary packages of a kernel build, matched as `kernel` (RHEL 8+ split the image into
/// `kernel-core` and modules packages; `kernel` itself is a metapackage of the same version).
const RPM_KERNEL_PACKAGES: &[&str] = &[
    "kernel",
    "kernel-core",
    "kernel-modules",
    "kernel-modules-core",
    "kernel-modules-extra",
    "kernel-debug",
    "kernel-debug-core",
    "kernel-debug-modules",
    "kernel-debug-modules-core",
    "kernel-debug-modules-extra",
    "kernel-rt",
    "kernel-rt-core",
    "kernel-rt-modules",
    "kernel-rt-modules-core",
    "kernel-rt-modules-extra",
    "kernel-uki-virt",
];

/// The lookup key of an installed OS package on `distro`.
#[must_use]
pub fn match_key(distro: Distro, pkg: &PackageDoc) -> MatchKey {
    let source = pkg.source_name.as_deref().filter(|s| !s.is_empty());
    match distro {
        Distro::Debian | Distro::Ubuntu => {
            if let Some(kernel) = deb_kernel(distro, &pkg.name, source) {
                return MatchKey { name: kernel, version: pkg.full_version(), kernel: true };
            }
            let name = source.unwrap_or(&pkg.name).to_owned();
            let version = pkg.source_version.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| pkg.full_version());
            let kernel = name == "linux" || name.starts_with("linux-");
            MatchKey { kernel: kernel && deb_is_kernel_binary(&pkg.name), name, version }
        }
        Distro::Alpine => {
            let name = source.unwrap_or(&pkg.name).to_owned();
            let kernel = name == "linux-lts" || name == "linux-virt" || name == "linux-vanilla";
            MatchKey { name, version: pkg.full_version(), kernel }
        }
        Distro::RpmFamily => {
            let kernel = RPM_KERNEL_PACKAGES.contains(&pkg.name.as_str()) && source.is_none_or(|s| s == "kernel");
            let name = if kernel { "kernel".to_owned() } else { pkg.name.clone() };
            MatchKey { name, version: pkg.full_version(), kernel }
        }
    }
}

/// A Debian or Ubuntu kernel image built from a signed-kernel source: the advisory name for it.
fn deb_kernel(distro: Distro, name: &str, source: Option<&str>) -> Option<String> {
    let signed = source.filter(|s| *s == "linux-signed" || s.starts_with("linux-signed-"));
    match (distro, signed) {
        // Debian's signed sources are per architecture (linux-signed-amd64, -arm64, -i386), all of
        // the one `linux` source.
        (Distro::Debian, Some(_)) => Some("linux".to_owned()),
        // Ubuntu's are per kernel flavour: linux-signed → linux, linux-signed-aws → linux-aws,
        // linux-signed-hwe-6.5 → linux-hwe-6.5.
        (Distro::Ubuntu, Some(s)) => Some(match s.strip_prefix("linux-signed-") {
            Some(flavour) => format!("linux-{flavour}"),
            None => "linux".to_owned(),
        }),
        // An image without a recorded source (distroless status.d): the unsigned `linux` build.
        (Distro::Debian, None) if source.is_none() && name.starts_with("linux-image-") => Some("linux".to_owned()),
        _ => None,
    }
}

/// A binary that is a kernel (image or modules), not a tool built from the kernel source
/// (`linux-libc-dev`, `bpftool`, `linux-perf`...).
fn deb_is_kernel_binary(name: &str) -> bool {
    name.starts_with("linux-image-") || name.starts_with("linux-modules-")
}

/// Identifier prefixes of errata that are not security advisories (bug-fix and enhancement
/// updates of AlmaLinux, Rocky Linux and Red Hat): they are matched by nobody.
const NON_SECURITY_PREFIXES: &[&str] = &["ALBA-", "ALEA-", "RLBA-", "RLEA-", "RHBA-", "RHEA-"];

/// Whether a record with this identifier is a vulnerability advisory.
#[must_use]
pub fn is_security_advisory(id: &str) -> bool {
    !NON_SECURITY_PREFIXES.iter().any(|p| id.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str, source: Option<(&str, &str)>) -> PackageDoc {
        let mut p = PackageDoc::new("deb", name, version, "dpkg-status", "/var/lib/dpkg/status");
        // Split as the agent does: [epoch:]upstream[-revision].
        let (epoch, rest) = match version.split_once(':') {
            Some((e, r)) => (e.parse().ok(), r),
            None => (None, version),
        };
        let (up, rev) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, Some(r.to_owned())),
            None => (rest, None),
        };
        p.epoch = epoch;
        p.version = up.to_owned();
        p.release = rev;
        let (sn, sv) = source.unwrap_or((name, version));
        p.source_name = Some(sn.to_owned());
        p.source_version = Some(sv.to_owned());
        p
    }

    fn key(distro: Distro, p: &PackageDoc) -> (String, String, bool) {
        let k = match_key(distro, p);
        (k.name, k.version, k.kernel)
    }

    #[test]
    fn debian_binary_is_matched_as_its_source_with_the_source_version() {
        let p = deb("postgresql-client", "15+248+deb12u2", Some(("postgresql-common", "248+deb12u2")));
        assert_eq!(key(Distro::Debian, &p), ("postgresql-common".into(), "248+deb12u2".into(), false));
        // Same name and version when the binary is the source.
        let p = deb("openssl", "3.0.11-1~deb12u2", None);
        assert_eq!(key(Distro::Debian, &p), ("openssl".into(), "3.0.11-1~deb12u2".into(), false));
        // An epoch in the source version is kept.
        let p = deb("libpam-modules", "1.5.2-6+deb12u1", Some(("pam", "1.5.2-6+deb12u1")));
        assert_eq!(key(Distro::Debian, &p).0, "pam");
        let p = deb("bsdutils", "1:2.38.1-5+b1", Some(("util-linux", "2.38.1-5")));
        assert_eq!(key(Distro::Debian, &p), ("util-linux".into(), "2.38.1-5".into(), false));
    }

    #[test]
    fn debian_signed_kernel_is_linux_at_the_binary_version() {
        let p = deb("linux-image-6.1.0-13-amd64", "6.1.55-1", Some(("linux-signed-amd64", "6.1.55+1")));
        assert_eq!(key(Distro::Debian, &p), ("linux".into(), "6.1.55-1".into(), true));
        // The metapackage comes from the same signed source.
        let p = deb("linux-image-amd64", "6.1.55-1", Some(("linux-signed-amd64", "6.1.55+1")));
        assert_eq!(key(Distro::Debian, &p), ("linux".into(), "6.1.55-1".into(), true));
        // Unsigned images and headers are already `linux`.
        let p = deb("linux-image-6.1.0-13-cloud-amd64-unsigned", "6.1.55-1", Some(("linux", "6.1.55-1")));
        assert_eq!(key(Distro::Debian, &p), ("linux".into(), "6.1.55-1".into(), true));
        // linux-libc-dev is from `linux` but not a kernel that runs.
        let p = deb("linux-libc-dev", "6.1.55-1", Some(("linux", "6.1.55-1")));
        assert_eq!(key(Distro::Debian, &p), ("linux".into(), "6.1.55-1".into(), false));
    }

    #[test]
    fn ubuntu_signed_kernels_keep_their_flavour() {
        let p = deb("linux-image-5.15.0-91-generic", "5.15.0-91.101", Some(("linux-signed", "5.15.0-91.101")));
        assert_eq!(key(Distro::Ubuntu, &p), ("linux".into(), "5.15.0-91.101".into(), true));
        let p = deb("linux-image-6.2.0-1017-aws", "6.2.0-1017.17~22.04.1", Some(("linux-signed-aws-6.2", "x")));
        assert_eq!(key(Distro::Ubuntu, &p), ("linux-aws-6.2".into(), "6.2.0-1017.17~22.04.1".into(), true));
        let p = deb("linux-modules-5.15.0-91-generic", "5.15.0-91.101", Some(("linux", "5.15.0-91.101")));
        assert_eq!(key(Distro::Ubuntu, &p), ("linux".into(), "5.15.0-91.101".into(), true));
    }

    #[test]
    fn alpine_uses_the_origin() {
        let mut p = PackageDoc::new("apk", "libcrypto1.0", "1.0.2h-r1", "apk-installed", "/lib/apk/db/installed");
        p.source_name = Some("openssl".into());
        assert_eq!(key(Distro::Alpine, &p), ("openssl".into(), "1.0.2h-r1".into(), false));
    }

    #[test]
    fn rpm_uses_the_binary_name_and_full_evr() {
        let mut p = PackageDoc::new("rpm", "openssl-libs", "3.0.1", "rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite");
        p.epoch = Some(1);
        p.release = Some("46.el9_0".into());
        p.source_name = Some("openssl".into());
        assert_eq!(key(Distro::RpmFamily, &p), ("openssl-libs".into(), "1:3.0.1-46.el9_0".into(), false));
        let mut k = PackageDoc::new("rpm", "kernel-core", "5.14.0", "rpm-sqlite", "/var/lib/rpm/rpmdb.sqlite");
        k.release = Some("362.8.1.el9_3".into());
        k.source_name = Some("kernel".into());
        assert_eq!(key(Distro::RpmFamily, &k), ("kernel".into(), "5.14.0-362.8.1.el9_3".into(), true));
        // Tools built from the kernel source stay themselves.
        let mut t = k.clone();
        t.name = "kernel-tools".into();
        assert_eq!(key(Distro::RpmFamily, &t).0, "kernel-tools");
    }

    #[test]
    fn errata_that_are_not_security_advisories() {
        assert!(is_security_advisory("ALSA-2023:0946"));
        assert!(is_security_advisory("DSA-5532-1"));
        assert!(is_security_advisory("CVE-2016-9587"));
        assert!(!is_security_advisory("ALBA-2026:39332"));
        assert!(!is_security_advisory("RHEA-2024:0001"));
    }
}
