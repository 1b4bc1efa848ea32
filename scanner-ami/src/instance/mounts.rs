//! What the instance mounts at boot, read from its root: `/etc/fstab` and the systemd `.mount`
//! units under `/etc/systemd/system`, reduced to the filesystems worth assembling, each with its
//! source as the instance names it (`UUID=`, `LABEL=`, `PARTUUID=`, `PARTLABEL=`, the
//! `/dev/disk/by-*` links, `/dev/mapper/<vg>-<lv>`, `/dev/<vg>/<lv>`, kernel names) and its btrfs
//! subvolume.

use crate::baseline::parse::fstab::{self, normalize_target, parse_ini};
use crate::fs::{FileKind, RootFs, read_text};
use crate::limits::{MAX_SMALL_FILE_BYTES, MAX_TEXT_DB_BYTES};

/// Where systemd reads the administrator's mount units (`systemd.unit(5)`).
const UNIT_DIR: &str = "/etc/systemd/system";
/// Mount units read at most: real systems have a handful; this bounds a crafted directory.
const MAX_MOUNT_UNITS: usize = 256;

/// How a mount names its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Uuid(String),
    Label(String),
    PartUuid(String),
    PartLabel(String),
    /// An LVM logical volume: (volume group, logical volume).
    Lv(String, String),
    /// A kernel device name (`/dev/xvda1`, `/dev/nvme0n1p2`): the scanner sees the disks under
    /// other names, so these cannot be matched.
    Device(String),
}

impl Source {
    /// Parse an fstab `fs_spec` or a unit's `What=`; `None` for pseudo filesystems and network
    /// sources.
    #[must_use]
    pub fn parse(spec: &str) -> Option<Source> {
        let tag = |p: &str| spec.strip_prefix(p).map(|v| v.trim_matches('"').to_owned());
        if let Some(v) = tag("UUID=").or_else(|| tag("/dev/disk/by-uuid/")) {
            return Some(Source::Uuid(v.to_ascii_lowercase()));
        }
        if let Some(v) = tag("LABEL=").or_else(|| tag("/dev/disk/by-label/")) {
            return Some(Source::Label(fstab::unescape(&v.replace("\\x2f", "/").replace("\\x20", " "))));
        }
        if let Some(v) = tag("PARTUUID=").or_else(|| tag("/dev/disk/by-partuuid/")) {
            return Some(Source::PartUuid(v.to_ascii_lowercase()));
        }
        if let Some(v) = tag("PARTLABEL=").or_else(|| tag("/dev/disk/by-partlabel/")) {
            return Some(Source::PartLabel(v));
        }
        if let Some(name) = spec.strip_prefix("/dev/mapper/") {
            return split_mapper_name(name).map(|(vg, lv)| Source::Lv(vg, lv));
        }
        if let Some(rest) = spec.strip_prefix("/dev/") {
            let parts: Vec<&str> = rest.split('/').collect();
            if let [vg, lv] = parts.as_slice()
                && !["disk", "mapper", "md"].contains(vg)
            {
                return Some(Source::Lv((*vg).to_owned(), (*lv).to_owned()));
            }
            return Some(Source::Device(spec.to_owned()));
        }
        None
    }
}

/// Split a device-mapper name `vg-lv` (a `-` inside either name is doubled: `my--vg-my--lv`).
fn split_mapper_name(name: &str) -> Option<(String, String)> {
    let b = name.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'-' {
            if b.get(i + 1) == Some(&b'-') {
                i += 2;
                continue;
            }
            let vg = name.get(..i)?.replace("--", "-");
            let lv = name.get(i + 1..)?.replace("--", "-");
            return (!vg.is_empty() && !lv.is_empty()).then_some((vg, lv));
        }
        i += 1;
    }
    None
}

/// One filesystem the instance mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Mount point, normalised.
    pub target: String,
    /// The source as written.
    pub spec: String,
    pub source: Option<Source>,
    pub fstype: String,
    pub options: Vec<String>,
    /// Where it came from: `/etc/fstab:12` or the unit file.
    pub origin: String,
    /// Why it is not assembled, when it is not even tried (swap, pseudo and network filesystems,
    /// `noauto`, bind mounts).
    pub skip: Option<String>,
}

impl MountEntry {
    /// The btrfs subvolume this mount selects (`subvol=` path or `subvolid=`).
    #[must_use]
    pub fn subvol(&self) -> Option<SubvolOption> {
        let mut out = None;
        for o in &self.options {
            if let Some(p) = o.strip_prefix("subvol=") {
                out = Some(SubvolOption::Path(p.to_owned()));
            } else if let Some(id) = o.strip_prefix("subvolid=").and_then(|v| v.parse().ok()) {
                out = Some(SubvolOption::Id(id));
            }
        }
        out
    }
}

/// A btrfs subvolume named by a mount option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubvolOption {
    Path(String),
    Id(u64),
}

/// Filesystem types that hold no disk data of the instance (kernel pseudo filesystems, memory,
/// network): never assembled.
const NOT_ON_DISK: &[&str] = &[
    "proc",
    "sysfs",
    "devpts",
    "tmpfs",
    "ramfs",
    "devtmpfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "efivarfs",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "pstore",
    "bpf",
    "autofs",
    "binfmt_misc",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "efs",
    "nfsd",
    "rpc_pipefs",
    "overlay",
    "fuse",
    "iso9660",
    "udf",
];

fn skip_reason(target: &str, fstype: &str, options: &[String], spec: &str) -> Option<String> {
    if fstype == "swap" || target == "none" || target == "swap" {
        return Some("swap space".into());
    }
    if !target.starts_with('/') {
        return Some(format!("mount point {target:?} is not an absolute path"));
    }
    if target == "/" {
        return Some("the root itself".into());
    }
    if NOT_ON_DISK.contains(&fstype) || fstype.starts_with("fuse.") {
        return Some(format!("{fstype}: not a filesystem on the instance's disks"));
    }
    if options.iter().any(|o| o == "bind" || o == "rbind") {
        return Some("bind mount of a directory the scan already sees".into());
    }
    if options.iter().rev().find(|o| *o == "noauto" || *o == "auto").is_some_and(|o| o == "noauto") {
        return Some("noauto: not mounted at boot".into());
    }
    if Source::parse(spec).is_none() {
        return Some(format!("source {spec:?} is not a disk of the instance"));
    }
    None
}

/// Read the root's fstab and mount units. Problems reading them are returned as messages.
#[must_use]
pub fn read(fs: &dyn RootFs) -> (Vec<MountEntry>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    match read_text(fs, fstab::FSTAB, MAX_TEXT_DB_BYTES) {
        Ok(text) => {
            let parsed = fstab::parse(&text);
            for (line, why) in parsed.malformed {
                errors.push(format!("{}:{line}: {why}", fstab::FSTAB));
            }
            for e in parsed.entries {
                let skip = skip_reason(&e.target, &e.vfstype, &e.options, &e.spec);
                out.push(MountEntry {
                    source: Source::parse(&e.spec),
                    target: normalize_target(&e.target),
                    spec: e.spec,
                    fstype: e.vfstype,
                    options: e.options,
                    origin: format!("{}:{}", fstab::FSTAB, e.line),
                    skip,
                });
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => errors.push(format!("{}: {e}", fstab::FSTAB)),
    }
    match fs.read_dir(UNIT_DIR) {
        Ok(entries) => {
            let units = entries
                .into_iter()
                .filter(|e| e.name.ends_with(".mount") && matches!(e.kind, FileKind::File | FileKind::Symlink));
            for unit in units.take(MAX_MOUNT_UNITS) {
                let path = crate::fs::join(UNIT_DIR, &unit.name);
                let text = match read_text(fs, &path, MAX_SMALL_FILE_BYTES) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(format!("{path}: {e}"));
                        continue;
                    }
                };
                let ini = parse_ini(&text, &path);
                let get = |key: &str| {
                    ini.iter().rev().find(|e| e.section == "Mount" && e.key == key).map(|e| e.value.trim().to_owned())
                };
                let (Some(what), Some(target)) = (get("What"), get("Where")) else {
                    errors.push(format!("{path}: a mount unit without What= or Where="));
                    continue;
                };
                let fstype = get("Type").unwrap_or_else(|| "auto".into());
                let options: Vec<String> =
                    get("Options").map(|o| o.split(',').map(|s| s.trim().to_owned()).collect()).unwrap_or_default();
                let target = normalize_target(&target);
                // fstab wins over a unit of the same mount point (systemd-fstab-generator's units
                // live elsewhere; an administrator's unit for an fstab mount point is a conflict).
                if out.iter().any(|m: &MountEntry| m.target == target) {
                    continue;
                }
                let skip = skip_reason(&target, &fstype, &options, &what);
                out.push(MountEntry {
                    source: Source::parse(&what),
                    target,
                    spec: what,
                    fstype,
                    options,
                    origin: path,
                    skip,
                });
            }
        }
        Err(e) if e.is_not_found() || matches!(e, crate::fs::FsError::NotADir { .. }) => {}
        Err(e) => errors.push(format!("{UNIT_DIR}: {e}")),
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(Source::parse("UUID=ABCD-12"), Some(Source::Uuid("abcd-12".into())));
        assert_eq!(Source::parse("/dev/disk/by-label/root"), Some(Source::Label("root".into())));
        assert_eq!(Source::parse("PARTUUID=0A1B2C3D-02"), Some(Source::PartUuid("0a1b2c3d-02".into())));
        assert_eq!(Source::parse("/dev/mapper/vg0-var"), Some(Source::Lv("vg0".into(), "var".into())));
        assert_eq!(
            Source::parse("/dev/mapper/my--vg-log--audit"),
            Some(Source::Lv("my-vg".into(), "log-audit".into()))
        );
        assert_eq!(Source::parse("/dev/rhel/home"), Some(Source::Lv("rhel".into(), "home".into())));
        assert_eq!(Source::parse("/dev/nvme0n1p1"), Some(Source::Device("/dev/nvme0n1p1".into())));
        assert_eq!(Source::parse("tmpfs"), None);
        assert_eq!(Source::parse("server:/export"), None);
    }

    #[test]
    fn fstab_and_units() {
        let d = tempfile::tempdir().expect("tempdir");
        let w = |p: &str, body: &str| {
            let host = d.path().join(p);
            std::fs::create_dir_all(host.parent().expect("parent")).expect("mkdir");
            std::fs::write(host, body).expect("write");
        };
        w(
            "etc/fstab",
            "UUID=a / xfs defaults 0 0\n/dev/mapper/vg-var /var xfs defaults 0 0\nUUID=b /home btrfs subvol=@/home 0 0\n\
             tmpfs /tmp tmpfs defaults 0 0\n/swap none swap sw 0 0\nLABEL=x /mnt ext4 noauto 0 0\n/srv /data none bind 0 0\n",
        );
        w("etc/systemd/system/var-log.mount", "[Mount]\nWhat=/dev/vg/log\nWhere=/var/log\nType=ext4\n");
        w("etc/systemd/system/home.mount", "[Mount]\nWhat=UUID=c\nWhere=/home\n");
        let fs = crate::fs::dir::DirFs::new(d.path()).expect("root");
        let (m, errors) = read(&fs);
        assert!(errors.is_empty(), "{errors:?}");
        let active: Vec<(&str, Option<&Source>)> =
            m.iter().filter(|e| e.skip.is_none()).map(|e| (e.target.as_str(), e.source.as_ref())).collect();
        assert_eq!(
            active,
            [
                ("/var", Some(&Source::Lv("vg".into(), "var".into()))),
                ("/home", Some(&Source::Uuid("b".into()))),
                ("/var/log", Some(&Source::Lv("vg".into(), "log".into()))),
            ]
        );
        let home = m.iter().find(|e| e.target == "/home").expect("home");
        assert_eq!(home.subvol(), Some(SubvolOption::Path("@/home".into())));
        assert_eq!(m.iter().filter(|e| e.skip.is_some()).count(), 5, "/, tmpfs, swap, noauto, bind");
    }
}
