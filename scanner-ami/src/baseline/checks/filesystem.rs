//! File systems: unused file-system and USB-storage kernel modules disabled in modprobe.d (CIS
//! Ubuntu 1.1.1, 1.1.24; RHEL 9 1.1.1, 1.1.9); separate mounts for /tmp, /var, /var/tmp,
//! /var/log, /var/log/audit and /home with nodev/nosuid/noexec, and /dev/shm options (CIS 1.1.2-
//! 1.1.21 / RHEL 9 1.1.2-1.1.8), decided from `/etc/fstab` and systemd `.mount` units; and the
//! bounded filesystem walk shared by the world-writable, unowned/ungrouped and SUID/SGID rules
//! (CIS Ubuntu 1.1.22, 6.1.10-6.1.14; RHEL 9 6.1.9-6.1.14).
//!
//! Also owns the stat helpers the system checks share ([`check_mode`], [`check_owner`]), which
//! resolve owners against the image's own `/etc/passwd` and `/etc/group`.

use std::collections::HashSet;
use std::rc::Rc;

use super::services::{Eval, bind, cis, template, unit_state};
use crate::baseline::parse::accounts;
use crate::baseline::parse::fstab::{self, Entry, Flag, flag_set, load_ini, mount_unit_name};
use crate::baseline::parse::modprobe::{self, Kind};
use crate::baseline::{Ctx, Evidence, Outcome, Rule, Severity};
use crate::fs::{FileKind, Meta, join};
use crate::os::Family;

const ALL: &[Family] = &[];

// ---------------------------------------------------------------------------------------------
// Shared stat helpers.

/// What a missing file means for a permission or ownership rule.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IfAbsent {
    Pass(&'static str),
    NotApplicable(&'static str),
}

fn absent(path: &str, a: IfAbsent) -> Outcome {
    match a {
        IfAbsent::Pass(why) => Outcome::pass(vec![Evidence::file(path).found("absent").with_note(why)]),
        IfAbsent::NotApplicable(why) => Outcome::na(format!("{path} does not exist: {why}")),
    }
}

/// Metadata of `path` following symlinks inside the root, with a note when it is a symlink.
fn stat_noting_links(ctx: &Ctx<'_>, path: &str) -> Result<Option<(Meta, Option<String>)>, String> {
    let Some(l) = ctx.lstat(path)? else { return Ok(None) };
    if l.kind != FileKind::Symlink {
        return Ok(Some((l, None)));
    }
    let target = ctx.fs.read_link(path).unwrap_or_default();
    match ctx.stat(path)? {
        Some(m) => Ok(Some((m, Some(format!("symlink to {target}; the target's metadata is checked"))))),
        None => Ok(None),
    }
}

/// Pass when `path` has no permission bits outside `max` (e.g. `0o600` accepts 0600, 0400,
/// 0000; set-id and sticky bits always fail).
pub(crate) fn check_mode(ctx: &Ctx<'_>, path: &str, max: u32, if_absent: IfAbsent) -> Outcome {
    match stat_noting_links(ctx, path) {
        Err(e) => Outcome::error(format!("{path}: {e}")),
        Ok(None) => absent(path, if_absent),
        Ok(Some((m, note))) => {
            let mut ev =
                Evidence::file(path).found(format!("{:04o}", m.mode)).expected(format!("{max:04o} or stricter"));
            ev.note = note;
            Outcome::check(m.mode & !max == 0, vec![ev])
        }
    }
}

/// Pass when `path` is owned by uid 0 and gid 0 (`root:root` in the image's databases).
pub(crate) fn check_owner(ctx: &Ctx<'_>, path: &str, if_absent: IfAbsent) -> Outcome {
    match stat_noting_links(ctx, path) {
        Err(e) => Outcome::error(format!("{path}: {e}")),
        Ok(None) => absent(path, if_absent),
        Ok(Some((m, note))) => {
            let acc = accounts::load(ctx);
            let mut ev = Evidence::file(path)
                .found(format!("{}:{}", acc.user_label(m.uid), acc.group_label(m.gid)))
                .expected("root(0):root(0)");
            ev.note = note;
            Outcome::check(m.uid == 0 && m.gid == 0, vec![ev])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel modules.

#[derive(Debug)]
struct Module {
    rule: Rule,
    name: &'static str,
}

fn module_disabled(ctx: &Ctx<'_>, m: &Module) -> Outcome {
    let conf = modprobe::load(ctx);
    if let Some(e) = conf.errors.first() {
        return Outcome::error(format!("modprobe configuration unreadable: {e}"));
    }
    let name = m.name;
    let want = format!("install {name} /bin/false (or /bin/true)");
    let mut ev = Vec::new();
    let install_ok = match conf.install_for(name) {
        Some(d) => {
            let Kind::Install { command } = &d.kind else {
                return Outcome::error("internal: not an install directive");
            };
            let ok = modprobe::is_disabling(command);
            let mut e = Evidence::file(d.file.clone()).line(d.line).found(format!("install {} {command}", d.module));
            e.expected = Some(want.clone());
            if !ok {
                e.note = Some("the first matching install directive is the one kmod runs".to_owned());
            }
            ev.push(e);
            ok
        }
        None => {
            ev.push(
                Evidence::note(format!("no `install {name}` directive in {}", modprobe::MODPROBE_DIRS.join(", ")))
                    .expected(want),
            );
            false
        }
    };
    let blacklist = conf.blacklist_for(name);
    let rhel = ctx.family() == Family::Rhel;
    match blacklist {
        Some(d) => ev.push(Evidence::file(d.file.clone()).line(d.line).found(format!("blacklist {}", d.module))),
        None => ev.push(Evidence {
            found: Some(format!("no `blacklist {name}` directive")),
            expected: Some(format!("blacklist {name}")),
            note: Some(if rhel {
                "SSG's RHEL 9 check requires both the install and the blacklist directive".to_owned()
            } else {
                "CIS also asks for a blacklist line; SSG's Ubuntu 22.04 check requires only the install directive"
                    .to_owned()
            }),
            ..Evidence::default()
        }),
    }
    let ok = install_ok && (!rhel || blacklist.is_some());
    Outcome::check(ok, ev)
}

macro_rules! module_item {
    ($name:ident, $module:literal, $u:expr, $r:expr, $sev:ident, $why:literal) => {
        static $name: Module = Module {
            rule: template(
                concat!("fs.module_", $module, "_disabled"),
                Some(concat!("kernel_module_", $module, "_disabled")),
                cis($u, $r),
                concat!("Ensure the ", $module, " kernel module is disabled"),
                Severity::$sev,
                $why,
                concat!(
                    "Create /etc/modprobe.d/",
                    $module,
                    ".conf with `install ",
                    $module,
                    " /bin/false` and `blacklist ",
                    $module,
                    "`."
                ),
                ALL,
            ),
            name: $module,
        };
    };
}

module_item!(
    CRAMFS,
    "cramfs",
    Some("1.1.1.1"),
    None,
    Low,
    "cramfs is a compressed read-only file system rarely needed on servers; an unused file-system driver is attack surface reachable by mounting crafted media."
);
module_item!(
    FREEVXFS,
    "freevxfs",
    Some("1.1.1.2"),
    None,
    Low,
    "freevxfs (Veritas VxFS) is not needed on most systems; unused file-system drivers are reachable by mounting crafted media."
);
module_item!(
    JFFS2,
    "jffs2",
    Some("1.1.1.3"),
    None,
    Low,
    "jffs2 is a flash file system for embedded devices; unused file-system drivers are reachable by mounting crafted media."
);
module_item!(
    HFS,
    "hfs",
    Some("1.1.1.4"),
    None,
    Low,
    "hfs (classic Mac OS) is not needed on servers; unused file-system drivers are reachable by mounting crafted media."
);
module_item!(
    HFSPLUS,
    "hfsplus",
    Some("1.1.1.5"),
    None,
    Low,
    "hfsplus (macOS) is not needed on servers; unused file-system drivers are reachable by mounting crafted media."
);
module_item!(
    UDF,
    "udf",
    Some("1.1.1.6"),
    Some("1.1.1.2"),
    Low,
    "udf (DVD/optical media) is rarely needed on servers (Azure images need it for provisioning media); unused drivers are attack surface."
);
module_item!(
    SQUASHFS,
    "squashfs",
    None,
    Some("1.1.1.1"),
    Low,
    "squashfs is a compressed read-only file system; disable it where unused (Ubuntu snaps need it)."
);
module_item!(
    USB_STORAGE,
    "usb-storage",
    Some("1.1.24"),
    Some("1.1.9"),
    Medium,
    "USB mass storage is a channel for data exfiltration and malware on hosts that have no use for it."
);

// ---------------------------------------------------------------------------------------------
// Mounts.

/// How a mount point is mounted at boot.
#[derive(Debug, Clone)]
enum Mounted {
    Fstab(Entry),
    Unit { unit: String, file: String, options: Vec<String>, options_at: Option<(String, usize)>, what: String },
}

/// A `.mount` unit's What= and Options=, with drop-ins (`<unit>.d/*.conf`) applied.
fn unit_mount(ctx: &Ctx<'_>, unit: &str, file: &str) -> Result<Mounted, String> {
    let dropins: Vec<String> = ["/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system"]
        .iter()
        .map(|d| format!("{d}/{unit}.d"))
        .collect();
    let dirs: Vec<&str> = dropins.iter().map(String::as_str).collect();
    let ini = load_ini(ctx, &[file], &dirs);
    if let Some(e) = ini.errors.first() {
        return Err(e.clone());
    }
    let opt = ini.get("Mount", "Options");
    Ok(Mounted::Unit {
        unit: unit.to_owned(),
        file: file.to_owned(),
        options: opt
            .map(|o| o.value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default(),
        options_at: opt.map(|o| (o.file.clone(), o.line)),
        what: ini.get("Mount", "What").map(|w| w.value.clone()).unwrap_or_default(),
    })
}

/// Find how `target` is mounted at boot, in systemd's order: a unit masked with `/dev/null`
/// hides everything; an administrator's unit in /etc/systemd/system overrides the one
/// systemd-fstab-generator makes from /etc/fstab (generated units rank below /etc); then the
/// first /etc/fstab entry (the generator ignores duplicates); then an enabled vendor unit.
/// `Ok(None)` comes with notes saying why.
fn mounted(ctx: &Ctx<'_>, target: &str) -> Result<(Option<Mounted>, Vec<Evidence>), String> {
    let mut notes = Vec::new();
    let unit = mount_unit_name(target);
    let state = unit_state(ctx, &unit)?;
    if let Some(m) = &state.masked {
        notes.push(Evidence::file(m.clone()).found(format!("{unit} masked: {target} is not mounted at boot")));
        return Ok((None, notes));
    }
    if let Some(file) = state.file.as_deref().filter(|f| f.starts_with("/etc/systemd/system/")) {
        return Ok((Some(unit_mount(ctx, &unit, file)?), notes));
    }
    let tab = fstab::load(ctx);
    match tab.as_ref() {
        Err(e) => return Err(e.clone()),
        Ok(None) => notes.push(Evidence::file(fstab::FSTAB).found("absent")),
        Ok(Some(tab)) => {
            let entries = tab.for_target(target);
            if let Some(e) = entries.iter().find(|e| !e.noauto()) {
                return Ok((Some(Mounted::Fstab((*e).clone())), notes));
            }
            for e in entries {
                notes.push(
                    Evidence::file(fstab::FSTAB)
                        .line(e.line)
                        .found(format!("{} {} noauto", e.spec, e.target))
                        .with_note("noauto: not mounted at boot".to_owned()),
                );
            }
        }
    }
    if let Some(file) = &state.file {
        if state.enabled() {
            return Ok((Some(unit_mount(ctx, &unit, file)?), notes));
        }
        notes.push(Evidence::file(file.clone()).found(format!("{unit} present but not enabled")));
    }
    notes.push(Evidence::note(format!("no /etc/fstab entry and no enabled {unit} unit for {target}")));
    Ok((None, notes))
}

fn mounted_evidence(m: &Mounted) -> Evidence {
    match m {
        Mounted::Fstab(e) => Evidence::file(fstab::FSTAB).line(e.line).found(format!(
            "{} {} {} {}",
            e.spec,
            e.target,
            e.vfstype,
            e.options_text()
        )),
        Mounted::Unit { unit, file, options, options_at, what } => {
            let mut ev = match options_at {
                Some((f, l)) => Evidence::file(f.clone()).line(*l),
                None => Evidence::file(file.clone()),
            };
            ev.found = Some(format!("{unit}: What={what} Options={}", options.join(",")));
            ev
        }
    }
}

#[derive(Debug)]
struct Partition {
    rule: Rule,
    target: &'static str,
}

fn separate_partition(ctx: &Ctx<'_>, p: &Partition) -> Outcome {
    match mounted(ctx, p.target) {
        Err(e) => Outcome::error(e),
        Ok((Some(m), _)) => {
            let ev = mounted_evidence(&m).expected(format!("a separate file system on {}", p.target));
            if let Mounted::Fstab(e) = &m
                && e.is_bind()
            {
                return Outcome::fail(vec![ev.with_note("a bind mount is not a separate file system".to_owned())]);
            }
            Outcome::pass(vec![ev])
        }
        Ok((None, mut notes)) => {
            for n in &mut notes {
                n.expected = Some(format!("a separate file system on {}", p.target));
            }
            Outcome::fail(notes)
        }
    }
}

#[derive(Debug)]
struct MountOption {
    rule: Rule,
    target: &'static str,
    flag: Flag,
}

fn mount_option(ctx: &Ctx<'_>, o: &MountOption) -> Outcome {
    let opt = o.flag.name();
    match mounted(ctx, o.target) {
        Err(e) => Outcome::error(e),
        Ok((Some(m), _)) => {
            let options = match &m {
                Mounted::Fstab(e) => &e.options,
                Mounted::Unit { options, .. } => options,
            };
            let ok = flag_set(options, o.flag);
            let mut ev = mounted_evidence(&m).expected(opt.to_owned());
            if !ok && options.iter().any(|x| x == "defaults") {
                ev.note = Some("`defaults` means rw,suid,dev,exec,auto,nouser,async".to_owned());
            }
            Outcome::check(ok, vec![ev])
        }
        Ok((None, mut notes)) if o.target == "/dev/shm" => {
            notes.push(
                Evidence::note(
                    "no /dev/shm entry in /etc/fstab: systemd mounts /dev/shm itself with compiled-in options that \
                     are not visible offline; CIS counts this as not configured"
                        .to_owned(),
                )
                .expected(format!("a /dev/shm line in /etc/fstab with {opt}")),
            );
            Outcome::fail(notes)
        }
        Ok((None, _)) => Outcome::na(format!(
            "{} is not a separate mount (see the {} partition rule); the option only applies to a separate file system",
            o.target, o.target
        )),
    }
}

macro_rules! partition_item {
    ($name:ident, $id:literal, $ssg:literal, $u:expr, $r:expr, $sev:ident, $target:literal, $why:literal) => {
        static $name: Partition = Partition {
            rule: template(
                $id,
                Some($ssg),
                cis($u, $r),
                concat!("Ensure ", $target, " is a separate file system"),
                Severity::$sev,
                $why,
                concat!(
                    "Create a separate partition, logical volume or tmpfs for ",
                    $target,
                    " and add it to /etc/fstab (or enable a systemd mount unit for it)."
                ),
                ALL,
            ),
            target: $target,
        };
    };
}

partition_item!(
    TMP_PART,
    "fs.tmp_partition",
    "partition_for_tmp",
    Some("1.1.2"),
    Some("1.1.2.1"),
    Low,
    "/tmp",
    "/tmp is world-writable: a separate file system keeps it from filling / and allows nodev/nosuid/noexec."
);
partition_item!(
    VAR_PART,
    "fs.var_partition",
    "partition_for_var",
    Some("1.1.10"),
    Some("1.1.3.1"),
    Low,
    "/var",
    "/var holds growing data (logs, spools, caches); a separate file system keeps it from filling /."
);
partition_item!(
    VAR_TMP_PART,
    "fs.var_tmp_partition",
    "partition_for_var_tmp",
    Some("1.1.11"),
    Some("1.1.4.1"),
    Medium,
    "/var/tmp",
    "/var/tmp is world-writable and survives reboots: a separate file system allows nodev/nosuid/noexec."
);
partition_item!(
    VAR_LOG_PART,
    "fs.var_log_partition",
    "partition_for_var_log",
    Some("1.1.15"),
    Some("1.1.5.1"),
    Low,
    "/var/log",
    "A separate /var/log keeps runaway logs from filling /var and / and protects log integrity."
);
partition_item!(
    VAR_LOG_AUDIT_PART,
    "fs.var_log_audit_partition",
    "partition_for_var_log_audit",
    Some("1.1.16"),
    Some("1.1.6.1"),
    Low,
    "/var/log/audit",
    "auditd's space actions only work reliably when the audit trail has a file system of its own."
);
partition_item!(
    HOME_PART,
    "fs.home_partition",
    "partition_for_home",
    Some("1.1.17"),
    Some("1.1.7.1"),
    Low,
    "/home",
    "User data on its own file system cannot fill / and can be mounted nodev/nosuid."
);

const fn flag_rationale(flag: Flag) -> &'static str {
    match flag {
        Flag::NoDev => "nodev: device files on a user-writable file system could give access to raw devices.",
        Flag::NoSuid => "nosuid: set-user-ID programs placed on a user-writable file system could escalate privileges.",
        Flag::NoExec => "noexec: programs dropped on a user-writable file system cannot be executed from it.",
    }
}

macro_rules! option_item {
    ($name:ident, $id:literal, $ssg:literal, $u:expr, $r:expr, $sev:ident, $target:literal, $flag:ident,
     $opt:literal) => {
        static $name: MountOption = MountOption {
            rule: template(
                $id,
                Some($ssg),
                cis($u, $r),
                concat!("Ensure ", $opt, " is set on ", $target),
                Severity::$sev,
                flag_rationale(Flag::$flag),
                concat!(
                    "Add `",
                    $opt,
                    "` to the options of the ",
                    $target,
                    " line in /etc/fstab (or to Options= of its systemd mount unit) and remount."
                ),
                ALL,
            ),
            target: $target,
            flag: Flag::$flag,
        };
    };
}

// SSG 0.1.65 has no /tmp, /var, /var/tmp, /var/log, /home option rules for Ubuntu 22.04 (no
// Ubuntu CIS reference); `mount_option_home_nodev` and `mount_option_var_nosuid` are unrated
// (`unknown`): low, the nearest of our levels (the convention of the other baseline areas).
option_item!(
    TMP_NODEV,
    "fs.tmp_nodev",
    "mount_option_tmp_nodev",
    None,
    Some("1.1.2.2"),
    Medium,
    "/tmp",
    NoDev,
    "nodev"
);
option_item!(
    TMP_NOSUID,
    "fs.tmp_nosuid",
    "mount_option_tmp_nosuid",
    None,
    Some("1.1.2.4"),
    Medium,
    "/tmp",
    NoSuid,
    "nosuid"
);
option_item!(
    TMP_NOEXEC,
    "fs.tmp_noexec",
    "mount_option_tmp_noexec",
    None,
    Some("1.1.2.3"),
    Medium,
    "/tmp",
    NoExec,
    "noexec"
);
option_item!(
    SHM_NODEV,
    "fs.dev_shm_nodev",
    "mount_option_dev_shm_nodev",
    Some("1.1.7"),
    Some("1.1.8.2"),
    Medium,
    "/dev/shm",
    NoDev,
    "nodev"
);
option_item!(
    SHM_NOSUID,
    "fs.dev_shm_nosuid",
    "mount_option_dev_shm_nosuid",
    Some("1.1.8"),
    Some("1.1.8.4"),
    Medium,
    "/dev/shm",
    NoSuid,
    "nosuid"
);
option_item!(
    SHM_NOEXEC,
    "fs.dev_shm_noexec",
    "mount_option_dev_shm_noexec",
    Some("1.1.9"),
    Some("1.1.8.3"),
    Medium,
    "/dev/shm",
    NoExec,
    "noexec"
);
option_item!(
    VAR_NODEV,
    "fs.var_nodev",
    "mount_option_var_nodev",
    None,
    Some("1.1.3.2"),
    Medium,
    "/var",
    NoDev,
    "nodev"
);
option_item!(
    VAR_NOSUID,
    "fs.var_nosuid",
    "mount_option_var_nosuid",
    None,
    Some("1.1.3.3"),
    Low,
    "/var",
    NoSuid,
    "nosuid"
);
option_item!(
    VAR_TMP_NODEV,
    "fs.var_tmp_nodev",
    "mount_option_var_tmp_nodev",
    None,
    Some("1.1.4.4"),
    Medium,
    "/var/tmp",
    NoDev,
    "nodev"
);
option_item!(
    VAR_TMP_NOSUID,
    "fs.var_tmp_nosuid",
    "mount_option_var_tmp_nosuid",
    None,
    Some("1.1.4.3"),
    Medium,
    "/var/tmp",
    NoSuid,
    "nosuid"
);
option_item!(
    VAR_TMP_NOEXEC,
    "fs.var_tmp_noexec",
    "mount_option_var_tmp_noexec",
    None,
    Some("1.1.4.2"),
    Medium,
    "/var/tmp",
    NoExec,
    "noexec"
);
option_item!(
    VAR_LOG_NODEV,
    "fs.var_log_nodev",
    "mount_option_var_log_nodev",
    None,
    Some("1.1.5.2"),
    Medium,
    "/var/log",
    NoDev,
    "nodev"
);
option_item!(
    VAR_LOG_NOSUID,
    "fs.var_log_nosuid",
    "mount_option_var_log_nosuid",
    None,
    Some("1.1.5.4"),
    Medium,
    "/var/log",
    NoSuid,
    "nosuid"
);
option_item!(
    VAR_LOG_NOEXEC,
    "fs.var_log_noexec",
    "mount_option_var_log_noexec",
    None,
    Some("1.1.5.3"),
    Medium,
    "/var/log",
    NoExec,
    "noexec"
);
option_item!(
    VAR_LOG_AUDIT_NODEV,
    "fs.var_log_audit_nodev",
    "mount_option_var_log_audit_nodev",
    None,
    Some("1.1.6.3"),
    Medium,
    "/var/log/audit",
    NoDev,
    "nodev"
);
option_item!(
    VAR_LOG_AUDIT_NOSUID,
    "fs.var_log_audit_nosuid",
    "mount_option_var_log_audit_nosuid",
    None,
    Some("1.1.6.4"),
    Medium,
    "/var/log/audit",
    NoSuid,
    "nosuid"
);
option_item!(
    VAR_LOG_AUDIT_NOEXEC,
    "fs.var_log_audit_noexec",
    "mount_option_var_log_audit_noexec",
    None,
    Some("1.1.6.2"),
    Medium,
    "/var/log/audit",
    NoExec,
    "noexec"
);
option_item!(
    HOME_NODEV,
    "fs.home_nodev",
    "mount_option_home_nodev",
    None,
    Some("1.1.7.2"),
    Low,
    "/home",
    NoDev,
    "nodev"
);
option_item!(
    HOME_NOSUID,
    "fs.home_nosuid",
    "mount_option_home_nosuid",
    None,
    Some("1.1.7.3"),
    Medium,
    "/home",
    NoSuid,
    "nosuid"
);

// ---------------------------------------------------------------------------------------------
// The filesystem walk.

/// Most entries the walk visits. A full server install has 100,000-500,000 files (Ubuntu 22.04
/// server: ~230,000 under /usr); 2,000,000 leaves room for data-heavy images while bounding the
/// metadata reads (each a few microseconds) to seconds. Beyond it the walk stops and says so.
pub const MAX_WALK_ENTRIES: u64 = 2_000_000;

/// Deepest directory level descended into. Real trees are under 40 deep; directory loops need
/// symlinks (never followed here) or a corrupt file system, which this bound also stops.
pub const MAX_WALK_DEPTH: usize = 256;

/// Most offending paths listed per rule; the total is always counted and reported.
pub const MAX_REPORTED: usize = 50;

/// Root-level directories not walked: virtual file systems mounted at runtime (empty in an
/// image, and never part of the scanned disk's content).
const SKIPPED_AT_ROOT: [&str; 4] = ["proc", "sys", "dev", "run"];

/// Paths found by one walk category: the first [`MAX_REPORTED`] and the total.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    pub total: u64,
    pub items: Vec<Evidence>,
}

impl Found {
    fn add(&mut self, ev: impl FnOnce() -> Evidence) {
        self.total += 1;
        if self.items.len() < MAX_REPORTED {
            self.items.push(ev());
        }
    }
}

/// What the walk found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Walk {
    pub visited: u64,
    /// Stopped at [`MAX_WALK_ENTRIES`].
    pub capped: bool,
    /// Directories not descended into because of [`MAX_WALK_DEPTH`].
    pub too_deep: u64,
    /// Directories or entries that could not be read (first few) and their count.
    pub errors: Vec<String>,
    pub error_count: u64,
    pub ww_dirs_no_sticky: Found,
    pub ww_files: Found,
    pub unowned: Found,
    pub ungrouped: Found,
    pub suid: Found,
    pub sgid: Found,
    /// Why owners could not be resolved (the image's passwd/group unusable).
    pub users_unknown: Option<String>,
    pub groups_unknown: Option<String>,
}

/// Walk the scanned root with explicit bounds (see [`walk`]).
pub(crate) fn walk_with(ctx: &Ctx<'_>, max_entries: u64, max_depth: usize) -> Walk {
    let mut w = Walk::default();
    let acc = accounts::load(ctx);
    let db_problem = |present: bool, err: &Option<String>, what: &str| match (present, err) {
        (_, Some(e)) => Some(format!("{what} unreadable: {e}")),
        (false, None) => Some(format!("{what} does not exist")),
        _ => None,
    };
    w.users_unknown = db_problem(acc.passwd.present, &acc.passwd.error, "/etc/passwd");
    w.groups_unknown = db_problem(acc.group.present, &acc.group.error, "/etc/group");
    let uids: HashSet<u32> = acc.passwd.records.iter().map(|u| u.uid).collect();
    let gids: HashSet<u32> = acc.group.records.iter().map(|g| g.gid).collect();

    let mut stack: Vec<(String, usize)> = vec![("/".to_owned(), 0)];
    'outer: while let Some((dir, depth)) = stack.pop() {
        let entries = match ctx.list_dir(&dir) {
            Ok(v) => v,
            Err(e) => {
                w.error_count += 1;
                if w.errors.len() < MAX_REPORTED {
                    w.errors.push(e);
                }
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for e in entries {
            if depth == 0 && SKIPPED_AT_ROOT.contains(&e.name.as_str()) {
                continue;
            }
            if w.visited >= max_entries {
                w.capped = true;
                break 'outer;
            }
            w.visited += 1;
            let path = join(&dir, &e.name);
            let m = match ctx.lstat(&path) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(err) => {
                    w.error_count += 1;
                    if w.errors.len() < MAX_REPORTED {
                        w.errors.push(err);
                    }
                    continue;
                }
            };
            let mode = m.mode;
            let ev = |what: String| Evidence::file(path.clone()).found(what);
            match m.kind {
                FileKind::Dir => {
                    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
                        w.ww_dirs_no_sticky.add(|| ev(format!("directory mode {mode:04o}")));
                    }
                    if depth + 1 < max_depth {
                        subdirs.push(path.clone());
                    } else {
                        w.too_deep += 1;
                    }
                }
                FileKind::File => {
                    if mode & 0o002 != 0 {
                        w.ww_files.add(|| ev(format!("file mode {mode:04o}")));
                    }
                    if mode & 0o4000 != 0 {
                        w.suid.add(|| ev(format!("mode {mode:04o} owner {}", acc.user_label(m.uid))));
                    }
                    if mode & 0o2000 != 0 {
                        w.sgid.add(|| ev(format!("mode {mode:04o} group {}", acc.group_label(m.gid))));
                    }
                }
                FileKind::Symlink | FileKind::Other => {}
            }
            if w.users_unknown.is_none() && !uids.contains(&m.uid) {
                w.unowned.add(|| ev(format!("uid {} (no such user in /etc/passwd)", m.uid)));
            }
            if w.groups_unknown.is_none() && !gids.contains(&m.gid) {
                w.ungrouped.add(|| ev(format!("gid {} (no such group in /etc/group)", m.gid)));
            }
        }
        // Depth-first, visiting names in sorted order.
        stack.extend(subdirs.into_iter().rev().map(|p| (p, depth + 1)));
    }
    ctx.count_visited(w.visited);
    if w.capped {
        ctx.mark_walk_capped();
    }
    w
}

/// The walk of the scanned root, done once per evaluation and shared by the rules: iterative,
/// never following symlinks, skipping `/proc`, `/sys`, `/dev` and `/run`, bounded by
/// [`MAX_WALK_ENTRIES`] and [`MAX_WALK_DEPTH`].
pub(crate) fn walk(ctx: &Ctx<'_>) -> Rc<Walk> {
    ctx.memo("walk", |ctx| walk_with(ctx, MAX_WALK_ENTRIES, MAX_WALK_DEPTH))
}

/// Notes on how complete the walk was.
fn walk_notes(w: &Walk, found: &Found) -> Vec<Evidence> {
    let mut notes = Vec::new();
    if found.total > found.items.len() as u64 {
        notes.push(Evidence::note(format!(
            "{} found; only the first {} are listed (capped at {MAX_REPORTED} per rule)",
            found.total,
            found.items.len()
        )));
    }
    if w.capped {
        notes.push(Evidence::note(format!(
            "walk capped: stopped after {} entries ({MAX_WALK_ENTRIES} maximum); the rest of the tree was not examined",
            w.visited
        )));
    }
    if w.too_deep > 0 {
        notes.push(Evidence::note(format!(
            "{} directories deeper than {MAX_WALK_DEPTH} levels not examined",
            w.too_deep
        )));
    }
    if w.error_count > 0 {
        notes.push(Evidence::note(format!(
            "{} entries could not be read; first: {}",
            w.error_count,
            w.errors.first().map_or("", String::as_str)
        )));
    }
    notes
}

/// Fail with the offenders; pass when there are none and the walk was complete; error when there
/// are none but part of the tree was not examined.
fn walk_outcome(w: &Walk, found: &Found, expected: &str) -> Outcome {
    let mut ev: Vec<Evidence> = found.items.iter().map(|e| e.clone().expected(expected.to_owned())).collect();
    ev.extend(walk_notes(w, found));
    if found.total > 0 {
        return Outcome::fail(ev);
    }
    if w.capped || w.too_deep > 0 || w.error_count > 0 {
        return Outcome {
            status: crate::baseline::Status::Error,
            reason: Some(format!("none found in the {} entries examined, but the walk was incomplete", w.visited)),
            evidence: ev,
        };
    }
    ev.push(Evidence::note(format!("{} entries examined", w.visited)));
    Outcome::pass(ev)
}

fn ww_dirs_sticky(ctx: &Ctx<'_>) -> Outcome {
    let w = walk(ctx);
    walk_outcome(&w, &w.ww_dirs_no_sticky, "sticky bit set on every world-writable directory")
}

fn ww_files(ctx: &Ctx<'_>) -> Outcome {
    let w = walk(ctx);
    walk_outcome(&w, &w.ww_files, "no world-writable regular files")
}

fn unowned(ctx: &Ctx<'_>) -> Outcome {
    let w = walk(ctx);
    if let Some(why) = &w.users_unknown {
        return Outcome::error(format!("cannot resolve file owners against the image's users: {why}"));
    }
    walk_outcome(&w, &w.unowned, "every file owned by a user of the image's /etc/passwd")
}

fn ungrouped(ctx: &Ctx<'_>) -> Outcome {
    let w = walk(ctx);
    if let Some(why) = &w.groups_unknown {
        return Outcome::error(format!("cannot resolve file groups against the image's groups: {why}"));
    }
    walk_outcome(&w, &w.ungrouped, "every file owned by a group of the image's /etc/group")
}

/// Set-id inventories: CIS makes these manual reviews and SSG compares against the files the
/// package manager installed. Without per-package file lists for every database we report the
/// inventory for review and pass (error when the walk was incomplete).
fn setid_inventory(w: &Walk, found: &Found, what: &str) -> Outcome {
    let mut ev = found.items.clone();
    ev.extend(walk_notes(w, found));
    if w.capped || w.too_deep > 0 || w.error_count > 0 {
        return Outcome {
            status: crate::baseline::Status::Error,
            reason: Some(format!("{what} inventory incomplete: the walk did not cover the whole tree")),
            evidence: ev,
        };
    }
    Outcome::pass(ev).because(format!(
        "inventory of {} {what} files for manual review (CIS: Manual); not compared with package file lists",
        found.total
    ))
}

fn suid_inventory(ctx: &Ctx<'_>) -> Outcome {
    let w = walk(ctx);
    setid_inventory(&w, &w.suid, "set-user-ID")
}

fn sgid_inventory(ctx: &Ctx<'_>) -> Outcome {
    let w = walk(ctx);
    setid_inventory(&w, &w.sgid, "set-group-ID")
}

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    let mut v = bind!(module_disabled; CRAMFS, FREEVXFS, JFFS2, HFS, HFSPLUS, UDF, SQUASHFS, USB_STORAGE);
    v.extend(bind!(separate_partition; TMP_PART, VAR_PART, VAR_TMP_PART, VAR_LOG_PART, VAR_LOG_AUDIT_PART, HOME_PART));
    v.extend(bind!(mount_option; TMP_NODEV, TMP_NOSUID, TMP_NOEXEC, SHM_NODEV, SHM_NOSUID, SHM_NOEXEC, VAR_NODEV,
        VAR_NOSUID, VAR_TMP_NODEV, VAR_TMP_NOSUID, VAR_TMP_NOEXEC, VAR_LOG_NODEV, VAR_LOG_NOSUID, VAR_LOG_NOEXEC,
        VAR_LOG_AUDIT_NODEV, VAR_LOG_AUDIT_NOSUID, VAR_LOG_AUDIT_NOEXEC, HOME_NODEV, HOME_NOSUID));
    let walk_rules: [(Rule, Eval); 6] = [
        (
            template(
                "fs.world_writable_dirs_sticky",
                Some("dir_perms_world_writable_sticky_bits"),
                cis(Some("1.1.22"), Some("6.1.12")),
                "Ensure the sticky bit is set on all world-writable directories",
                Severity::Medium,
                "Without the sticky bit any user can delete or rename other users' files in a world-writable directory.",
                "`chmod +t` each listed directory (`df --local -P | awk '{if (NR!=1) print $6}' | xargs -I '{}' find '{}' -xdev -type d -perm -0002 -a ! -perm -1000 2>/dev/null | xargs -r chmod a+t`).",
                ALL,
            ),
            ww_dirs_sticky,
        ),
        (
            template(
                "fs.world_writable_files",
                Some("file_permissions_unauthorized_world_writable"),
                cis(Some("6.1.10"), Some("6.1.9")),
                "Ensure no world-writable files exist",
                Severity::Medium,
                "Any user can modify a world-writable file; system files must not be.",
                "`chmod o-w` each listed file.",
                ALL,
            ),
            ww_files,
        ),
        (
            template(
                "fs.unowned_files",
                Some("no_files_unowned_by_user"),
                cis(Some("6.1.11"), Some("6.1.10")),
                "Ensure no files are owned by a uid without a user",
                Severity::Medium,
                "A file whose uid has no account is inherited by whoever is next given that uid.",
                "`chown` each listed file to an existing user (uids are resolved against the image's /etc/passwd).",
                ALL,
            ),
            unowned,
        ),
        (
            template(
                "fs.ungrouped_files",
                Some("file_permissions_ungroupowned"),
                cis(None, Some("6.1.11")),
                "Ensure no files are owned by a gid without a group",
                Severity::Medium,
                "A file whose gid has no group is inherited by whichever group is next given that gid.",
                "`chgrp` each listed file to an existing group (gids are resolved against the image's /etc/group).",
                ALL,
            ),
            ungrouped,
        ),
        (
            template(
                "fs.suid_files",
                Some("file_permissions_unauthorized_suid"),
                cis(None, Some("6.1.13")),
                "Review set-user-ID executables",
                Severity::Medium,
                "Set-user-ID programs run with their owner's privileges; unexpected ones are privilege-escalation paths.",
                "Review the list; remove the bit (`chmod u-s`) from any program that does not need it, and verify the rest against the package manager (`dpkg --verify`, `rpm -Va`).",
                ALL,
            ),
            suid_inventory,
        ),
        (
            template(
                "fs.sgid_files",
                Some("file_permissions_unauthorized_sgid"),
                cis(None, Some("6.1.14")),
                "Review set-group-ID executables",
                Severity::Medium,
                "Set-group-ID programs run with their group's privileges; unexpected ones are privilege-escalation paths.",
                "Review the list; remove the bit (`chmod g-s`) from any program that does not need it.",
                ALL,
            ),
            sgid_inventory,
        ),
    ];
    v.extend(walk_rules.into_iter().map(|(r, eval)| Rule { eval, ..r }));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::dir::DirFs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn walk_bounds_and_loops() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path();
        std::fs::create_dir_all(root.join("a/b/c/d/e")).expect("mkdir");
        for i in 0..10 {
            let f = root.join(format!("a/f{i}"));
            std::fs::write(&f, b"x").expect("write");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        }
        std::os::unix::fs::symlink("/", root.join("a/b/loop")).expect("symlink");
        std::os::unix::fs::symlink("..", root.join("a/b/up")).expect("symlink");
        let fs = DirFs::new(root).expect("root");
        let ctx = Ctx::new(&fs, None, &[]);
        let w = walk_with(&ctx, 1_000, 3);
        assert!(!w.capped);
        assert_eq!(w.ww_files.total, 10);
        assert!(w.too_deep > 0, "depth bound stops the descent");
        let w = walk_with(&ctx, 5, 256);
        assert!(w.capped);
        assert_eq!(w.visited, 5);
        assert!(ctx.stats().walk_capped);
    }
}
