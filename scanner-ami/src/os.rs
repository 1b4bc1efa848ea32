//! Operating-system detection from files on the scanned root: `etc/os-release`, then
//! `usr/lib/os-release`, then the older `etc/system-release`, `etc/redhat-release`,
//! `etc/debian_version` and `etc/alpine-release` (the order Trivy and Syft use, see
//! docs/references.md, "Package databases and OS detection").

use serde::Serialize;

use crate::fs::{RootFs, read_text};
use crate::limits::MAX_SMALL_FILE_BYTES;

/// The distribution family, which decides the package ecosystem and purl namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Debian,
    Rhel,
    Suse,
    Alpine,
    Arch,
    Gentoo,
    Other,
}

/// The detected OS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsInfo {
    /// os-release `ID` (lower case), e.g. `debian`, `ubuntu`, `amzn`, `rhel`.
    pub id: String,
    pub family: Family,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
    /// The file the answer came from.
    pub source: String,
}

impl OsInfo {
    /// The purl `distro=` qualifier value: `<id>-<version_id>` (or just `<id>`).
    #[must_use]
    pub fn distro(&self) -> String {
        match &self.version_id {
            Some(v) => format!("{}-{}", self.id, v),
            None => self.id.clone(),
        }
    }
}

/// Map an os-release ID (and ID_LIKE) to a family.
#[must_use]
pub fn family_of(id: &str, id_like: &[String]) -> Family {
    let one = |id: &str| match id {
        "debian" | "ubuntu" | "raspbian" | "linuxmint" | "kali" | "pop" | "elementary" | "devuan" => {
            Some(Family::Debian)
        }
        "rhel" | "centos" | "rocky" | "almalinux" | "ol" | "fedora" | "amzn" | "mariner" | "azurelinux" | "photon"
        | "scientific" | "cloudlinux" | "eurolinux" | "circle" | "anolis" | "alinux" | "openEuler" | "openeuler" => {
            Some(Family::Rhel)
        }
        "sles" | "sled" | "sle-micro" | "suse" | "opensuse" => Some(Family::Suse),
        "alpine" | "wolfi" | "chainguard" => Some(Family::Alpine),
        "arch" | "archarm" | "manjaro" => Some(Family::Arch),
        "gentoo" => Some(Family::Gentoo),
        s if s.starts_with("opensuse") => Some(Family::Suse),
        _ => None,
    };
    one(id).or_else(|| id_like.iter().find_map(|l| one(l))).unwrap_or(Family::Other)
}

/// Parse os-release text (`KEY=VALUE`, optionally single- or double-quoted, with backslash
/// escapes in double quotes) into key/value pairs.
#[must_use]
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        out.push((k.to_owned(), unquote(v.trim())));
    }
    out
}

fn unquote(v: &str) -> String {
    let bytes = v.as_bytes();
    if bytes.len() >= 2 && bytes[0] == b'\'' && bytes[bytes.len() - 1] == b'\'' {
        return v[1..v.len() - 1].to_owned();
    }
    if bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"' {
        let inner = &v[1..v.len() - 1];
        let mut s = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    s.push(n);
                }
            } else {
                s.push(c);
            }
        }
        return s;
    }
    v.to_owned()
}

fn from_os_release(text: &str, source: &str) -> Option<OsInfo> {
    let kv = parse_os_release(text);
    let get = |k: &str| kv.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let id = get("ID").map(|s| s.to_lowercase())?;
    let id_like: Vec<String> =
        get("ID_LIKE").map(|s| s.split_whitespace().map(str::to_lowercase).collect()).unwrap_or_default();
    Some(OsInfo {
        family: family_of(&id, &id_like),
        id,
        version_id: get("VERSION_ID"),
        version_codename: get("VERSION_CODENAME"),
        name: get("NAME"),
        pretty_name: get("PRETTY_NAME"),
        id_like,
        source: source.to_owned(),
    })
}

/// Parse a `<Name> release <version> (<codename>)` line (system-release, redhat-release).
fn from_release_line(text: &str, source: &str) -> Option<OsInfo> {
    let line = text.lines().next()?.trim();
    let (name, rest) = line.split_once(" release ")?;
    let version = rest.split_whitespace().next().map(str::to_owned);
    let lower = name.to_lowercase();
    let id = if lower.starts_with("amazon linux") {
        "amzn"
    } else if lower.starts_with("red hat") {
        "rhel"
    } else if lower.starts_with("centos") {
        "centos"
    } else if lower.starts_with("rocky") {
        "rocky"
    } else if lower.starts_with("almalinux") {
        "almalinux"
    } else if lower.starts_with("oracle") {
        "ol"
    } else if lower.starts_with("fedora") {
        "fedora"
    } else if lower.contains("mariner") {
        "mariner"
    } else {
        return None;
    };
    // Amazon Linux 2 says "release 2 (Karoo)": VERSION_ID "2" as its os-release would.
    Some(OsInfo {
        id: id.to_owned(),
        family: Family::Rhel,
        version_id: version,
        version_codename: None,
        name: Some(name.trim().to_owned()),
        pretty_name: Some(line.to_owned()),
        id_like: Vec::new(),
        source: source.to_owned(),
    })
}

/// Detect the OS of `fs`, or `None` if no known release file is present.
#[must_use]
pub fn detect(fs: &dyn RootFs) -> Option<OsInfo> {
    let read = |p: &str| read_text(fs, p, MAX_SMALL_FILE_BYTES).ok();
    for p in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Some(os) = read(p).and_then(|t| from_os_release(&t, p)) {
            return Some(os);
        }
    }
    for p in ["/etc/system-release", "/etc/redhat-release"] {
        if let Some(os) = read(p).and_then(|t| from_release_line(&t, p)) {
            return Some(os);
        }
    }
    if let Some(t) = read("/etc/debian_version") {
        let v = t.trim().to_owned();
        if !v.is_empty() {
            // "12.5" is a release; "bookworm/sid" names a testing/unstable tree.
            let version_id = v.split('.').next().filter(|m| m.bytes().all(|b| b.is_ascii_digit())).map(str::to_owned);
            return Some(OsInfo {
                id: "debian".into(),
                family: Family::Debian,
                version_id,
                version_codename: None,
                name: Some("Debian GNU/Linux".into()),
                pretty_name: Some(format!("Debian GNU/Linux {v}")),
                id_like: Vec::new(),
                source: "/etc/debian_version".into(),
            });
        }
    }
    if let Some(t) = read("/etc/alpine-release") {
        let v = t.trim().to_owned();
        if !v.is_empty() {
            return Some(OsInfo {
                id: "alpine".into(),
                family: Family::Alpine,
                version_id: Some(v.clone()),
                version_codename: None,
                name: Some("Alpine Linux".into()),
                pretty_name: Some(format!("Alpine Linux v{v}")),
                id_like: Vec::new(),
                source: "/etc/alpine-release".into(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_quotes_and_family() {
        let t = "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\nPRETTY_NAME='Amazon Linux 2023.5'\n# c\nBAD LINE\n";
        let os = from_os_release(t, "/etc/os-release").expect("parsed");
        assert_eq!(os.id, "amzn");
        assert_eq!(os.family, Family::Rhel);
        assert_eq!(os.version_id.as_deref(), Some("2023"));
        assert_eq!(os.pretty_name.as_deref(), Some("Amazon Linux 2023.5"));
        assert_eq!(os.distro(), "amzn-2023");
    }

    #[test]
    fn release_lines() {
        let os = from_release_line("Amazon Linux release 2 (Karoo)\n", "/etc/system-release").expect("parsed");
        assert_eq!((os.id.as_str(), os.version_id.as_deref()), ("amzn", Some("2")));
        let os =
            from_release_line("Red Hat Enterprise Linux release 8.8 (Ootpa)", "/etc/redhat-release").expect("parsed");
        assert_eq!((os.id.as_str(), os.version_id.as_deref()), ("rhel", Some("8.8")));
        assert!(from_release_line("garbage", "x").is_none());
    }

    #[test]
    fn family_via_id_like() {
        assert_eq!(family_of("pop", &[]), Family::Debian);
        assert_eq!(family_of("someos", &["rhel".into(), "fedora".into()]), Family::Rhel);
        assert_eq!(family_of("opensuse-leap", &[]), Family::Suse);
        assert_eq!(family_of("plan9", &[]), Family::Other);
    }
}
