//! Installed kernels: `boot/vmlinuz-<release>` and `lib/modules/<release>`, and which one the
//! boot loader starts by default where its configuration says.
//!
//! This module owns the kernel inventory of one root: one [`AppPackage`] per distinct release
//! (ecosystem and role `Kernel`, name = version = release, `pkg:generic/linux-kernel@<release>`).
//! Offline, the running kernel cannot be known, so every installed one is reported.
//!
//! **Where kernels are found**
//! - `boot/vmlinuz-<release>` (a regular file, or a symlink to one);
//! - `lib/modules/<release>/` (a directory: the kernel's modules, even when `/boot` is a separate
//!   partition this root does not contain);
//! - `usr/lib/modules/<release>/` holding a `vmlinuz` file (Fedora, AL2023 and usrmerge
//!   distributions ship the image there and copy it to `/boot`).
//!
//! A release must start with a digit (every Linux release does; this skips Arch's
//! `extramodules-*`), and RHEL's `vmlinuz-0-rescue-<machine-id>` (a copy of some kernel under a
//! fake release) is skipped. The location is the `boot/vmlinuz-*` path when there is one, else the
//! modules directory's `vmlinuz`, else the modules directory.
//!
//! **Default boot** (property `kernel.default-boot=true` on at most one kernel): GRUB first, then
//! systemd-boot.
//! - GRUB: `set default=` of `boot/grub2/grub.cfg` or `boot/grub/grub.cfg` (the last one not
//!   naming `${next_entry}`, the one-shot entry); `${saved_entry}` takes `saved_entry=` of
//!   `boot/grub2/grubenv` or `boot/grub/grubenv`; with no `set default`, grubenv's `saved_entry`,
//!   else `0` (GRUB's own default). The value is an index, a title or an id, `>`-separated for
//!   submenus (`1>2`, `Advanced options for Ubuntu>Ubuntu, with Linux 6.5.0-1014-aws`), matched
//!   against grub.cfg's `menuentry`/`submenu` tree, the release read from the entry's
//!   `linux /boot/vmlinuz-<release>` line. With Boot Loader Specification entries
//!   (`boot/loader/entries/*.conf`, RHEL 8+, Fedora, AL2023: grub.cfg runs `blscfg`), the value is
//!   first an entry id (file name without `.conf`), then a title, then an index into the entries
//!   sorted newest first (an approximation of GRUB's `blscfg` order, which compares versions the
//!   rpm way); the release comes from the entry's `linux /vmlinuz-<release>` line, else its
//!   `version`. A value matching nothing above but naming exactly one found release as a
//!   substring (`gnulinux-6.1.0-18-amd64-advanced-<uuid>`) resolves to the longest such release.
//! - systemd-boot: `loader/loader.conf` `default` (under `boot/`, `efi/`, `boot/efi/` or the root)
//!   matched, with `*`/`?` globs, against the entry ids of the `loader/entries` beside it; several
//!   matches take the newest. `@saved` and friends live in EFI variables and mark nothing.
//!
//! Every read is bounded (the constants below); an unreadable configuration is an [`AppError`] and
//! marks nothing.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{AppEcosystem, AppError, AppPackage, AppRole, clean};
use crate::fs::{self, FileKind, FsError, RootFs};
use crate::limits::MAX_SMALL_FILE_BYTES;
use crate::purl;

/// Largest `grub.cfg` read. A generated one is 5-20 KiB for a few kernels (each kernel adds a
/// menuentry and a recovery entry of about 1 KiB; Ubuntu's with three kernels is ~12 KiB, Debian's
/// ~8 KiB); 256 KiB holds hundreds of kernels or a large hand-written file.
pub const MAX_GRUB_CFG_BYTES: u64 = 256 * 1024;

/// Largest `grubenv`, BLS entry or `loader.conf` read: grubenv is a fixed 1,024-byte block
/// (`GRUB_ENVBLK_DEFCFG`), the others a few hundred bytes.
pub const MAX_BOOT_CONF_BYTES: u64 = MAX_SMALL_FILE_BYTES;

/// Most boot entries (BLS files, grub.cfg menu entries) considered: distributions keep two to five
/// kernels installed (`installonly_limit=3` on RHEL).
pub const MAX_BOOT_ENTRIES: usize = 512;

/// Most kernels reported from one root.
pub const MAX_KERNELS: usize = 1024;

/// Longest release accepted, in bytes (`uname -r` is at most 64 bytes, `__NEW_UTS_LEN`).
pub const MAX_RELEASE_BYTES: usize = 64;

/// The property set on the kernel the boot loader starts by default.
pub const DEFAULT_BOOT_PROPERTY: &str = "kernel.default-boot";

/// Every installed kernel of the root `fs`, with the errors met on the way.
#[must_use]
pub fn collect(fs: &dyn RootFs) -> (Vec<AppPackage>, Vec<AppError>) {
    let mut errors = Vec::new();
    // release -> location
    let mut kernels: BTreeMap<String, String> = BTreeMap::new();
    for e in list(fs, "/boot", &mut errors) {
        let Some(release) = e.name.strip_prefix("vmlinuz-").and_then(release) else { continue };
        let path = fs::join("/boot", &e.name);
        if e.kind == FileKind::File || (e.kind == FileKind::Symlink && fs::is_file(fs, &path)) {
            kernels.entry(release).or_insert(path);
        }
    }
    for (dir, needs_image) in [("/lib/modules", false), ("/usr/lib/modules", true)] {
        for e in list(fs, dir, &mut errors) {
            let Some(release) = release(&e.name) else { continue };
            let mdir = fs::join(dir, &e.name);
            if e.kind != FileKind::Dir && !(e.kind == FileKind::Symlink && is_dir(fs, &mdir)) {
                continue;
            }
            let image = fs::join(&mdir, "vmlinuz");
            let has_image = fs::is_file(fs, &image);
            if needs_image && !has_image {
                continue;
            }
            kernels.entry(release).or_insert(if has_image { image } else { mdir });
        }
    }
    let releases: Vec<&str> = kernels.keys().map(String::as_str).collect();
    let default = default_release(fs, &releases, &mut errors);
    let packages = kernels
        .iter()
        .take(MAX_KERNELS)
        .map(|(release, location)| {
            let purl = purl::for_app(AppEcosystem::Kernel, release, release);
            let mut p = AppPackage::new(AppEcosystem::Kernel, release, release, purl, AppRole::Kernel, location);
            if default.as_deref() == Some(release.as_str()) {
                p.properties.push((DEFAULT_BOOT_PROPERTY.to_owned(), "true".to_owned()));
            }
            p
        })
        .collect();
    (packages, errors)
}

/// `name` as a kernel release: cleaned, starting with a digit, not a rescue image, bounded.
fn release(name: &str) -> Option<String> {
    let r = clean(name.trim());
    let ok = r.starts_with(|c: char| c.is_ascii_digit())
        && !r.starts_with("0-rescue")
        && r.len() <= MAX_RELEASE_BYTES
        && !r.contains(['/', ' ']);
    ok.then_some(r)
}

fn is_dir(fs: &dyn RootFs, path: &str) -> bool {
    matches!(fs.metadata(path), Ok(m) if m.kind == FileKind::Dir)
}

/// The entries of `dir`; a missing directory is empty, another failure an error.
fn list(fs: &dyn RootFs, dir: &str, errors: &mut Vec<AppError>) -> Vec<crate::fs::DirEntry> {
    match fs.read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.is_not_found() || matches!(e, FsError::NotADir { .. }) => Vec::new(),
        Err(e) => {
            errors.push(AppError::new(dir, e.to_string()));
            Vec::new()
        }
    }
}

/// The first of `paths` that exists, read with `limit`; read errors other than absence are kept.
fn read_first(fs: &dyn RootFs, paths: &[&str], limit: u64, errors: &mut Vec<AppError>) -> Option<String> {
    for path in paths {
        match fs::read_text(fs, path, limit) {
            Ok(text) => return Some(text),
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                errors.push(AppError::new(path, e.to_string()));
                return None;
            }
        }
    }
    None
}

/// The release of a kernel image path (`/boot/vmlinuz-6.1.0-18-amd64`, `/vmlinuz-...`).
fn image_release(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    base.strip_prefix("vmlinuz-").or_else(|| base.strip_prefix("vmlinux-")).and_then(release)
}

/// The release the boot loader starts by default, per the module documentation.
fn default_release(fs: &dyn RootFs, releases: &[&str], errors: &mut Vec<AppError>) -> Option<String> {
    let env = read_first(fs, &["/boot/grub2/grubenv", "/boot/grub/grubenv"], MAX_BOOT_CONF_BYTES, errors);
    let cfg = read_first(fs, &["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"], MAX_GRUB_CFG_BYTES, errors);
    let saved = env.as_deref().and_then(|e| env_value(e, "saved_entry"));
    let bls = bls_entries(fs, "/boot/loader/entries", errors);
    if env.is_some() || cfg.is_some() {
        let menu = cfg.as_deref().map(GrubMenu::parse).unwrap_or_default();
        let value = match menu.default.as_deref() {
            Some(d) if d.contains("saved_entry") => saved.unwrap_or_default(),
            Some(d) => d.to_owned(),
            None => saved.unwrap_or_default(),
        };
        let value = if value.is_empty() { "0".to_owned() } else { value };
        let use_bls = !bls.is_empty() && (menu.blscfg || menu.entries.is_empty());
        let found = if use_bls { resolve_bls(&bls, &value, &menu) } else { menu.resolve(&value) };
        if let Some(r) = found.or_else(|| by_substring(&value, releases)) {
            return Some(r);
        }
    }
    for esp in ["/boot", "/efi", "/boot/efi", ""] {
        let conf = format!("{esp}/loader/loader.conf");
        let Some(text) = read_first(fs, &[&conf], MAX_BOOT_CONF_BYTES, errors) else { continue };
        let Some(pattern) = conf_value(&text, "default") else { continue };
        if pattern.starts_with('@') {
            return None;
        }
        let entries =
            if esp == "/boot" { bls.clone() } else { bls_entries(fs, &format!("{esp}/loader/entries"), errors) };
        return entries
            .iter()
            .filter(|e| glob(&pattern, &e.id) || glob(&pattern, &format!("{}.conf", e.id)))
            .filter_map(BlsEntry::release)
            .max_by(|a, b| vercmp(a, b));
    }
    None
}

/// The longest of `releases` contained in `value`, if any.
fn by_substring(value: &str, releases: &[&str]) -> Option<String> {
    releases.iter().filter(|r| value.contains(**r)).max_by_key(|r| r.len()).map(|r| (*r).to_owned())
}

/// `key=value` of a grubenv block.
fn env_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_owned()))
        .filter(|v| !v.is_empty())
}

/// `key value` of a loader.conf or BLS entry (first occurrence).
fn conf_value(text: &str, key: &str) -> Option<String> {
    text.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().to_owned()).filter(|v| !v.is_empty())
    })
}

/// One Boot Loader Specification entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct BlsEntry {
    /// File name without `.conf`.
    id: String,
    title: String,
    version: String,
    linux: String,
}

impl BlsEntry {
    fn release(&self) -> Option<String> {
        image_release(&self.linux).or_else(|| release(&self.version))
    }
}

/// The BLS entries of `dir`, newest first (by version, then id).
fn bls_entries(fs: &dyn RootFs, dir: &str, errors: &mut Vec<AppError>) -> Vec<BlsEntry> {
    let mut out = Vec::new();
    for e in list(fs, dir, errors).iter().filter(|e| e.name.ends_with(".conf")).take(MAX_BOOT_ENTRIES) {
        let path = fs::join(dir, &e.name);
        let Some(text) = read_first(fs, &[&path], MAX_BOOT_CONF_BYTES, errors) else { continue };
        let get = |k: &str| conf_value(&text, k).map(|v| clean(&v)).unwrap_or_default();
        out.push(BlsEntry {
            id: clean(e.name.strip_suffix(".conf").unwrap_or(&e.name)),
            title: get("title"),
            version: get("version"),
            linux: get("linux"),
        });
    }
    out.sort_by(|a, b| {
        let (va, vb) = (a.release().unwrap_or_default(), b.release().unwrap_or_default());
        vercmp(&vb, &va).then_with(|| b.id.cmp(&a.id))
    });
    out
}

/// Resolve a GRUB default value against BLS entries (then grub.cfg's own entries, which follow
/// them in the menu).
fn resolve_bls(bls: &[BlsEntry], value: &str, menu: &GrubMenu) -> Option<String> {
    if let Some(e) = bls.iter().find(|e| e.id == value).or_else(|| bls.iter().find(|e| e.title == value)) {
        return e.release();
    }
    if let Ok(i) = value.parse::<usize>() {
        return match bls.get(i) {
            Some(e) => e.release(),
            None => menu.resolve(&i.saturating_sub(bls.len()).to_string()),
        };
    }
    menu.resolve(value)
}

/// One `menuentry` of grub.cfg.
#[derive(Debug, Clone, Default)]
struct MenuEntry {
    /// Index at each submenu level (`[1, 2]` is `1>2`).
    position: Vec<usize>,
    /// Titles along the same path.
    titles: Vec<String>,
    /// Ids (`$menuentry_id_option 'id'` or `--id id`) along the same path.
    ids: Vec<String>,
    release: Option<String>,
}

/// What of grub.cfg matters here.
#[derive(Debug, Default)]
struct GrubMenu {
    default: Option<String>,
    entries: Vec<MenuEntry>,
    /// `blscfg` is run: BLS entries come first in the menu.
    blscfg: bool,
}

/// An open `{` block of grub.cfg.
enum Block {
    Submenu { title: String, id: String },
    Entry(usize),
    Other,
}

impl GrubMenu {
    fn parse(text: &str) -> GrubMenu {
        let mut menu = GrubMenu::default();
        let mut stack: Vec<Block> = Vec::new();
        // Items seen so far at each submenu depth (index 0: the top level).
        let mut counters: Vec<usize> = vec![0];
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if line == "}" {
                if let Some(Block::Submenu { .. }) = stack.pop() {
                    counters.pop();
                }
                continue;
            }
            let words = shell_words(line);
            let Some(cmd) = words.first().map(String::as_str) else { continue };
            match cmd {
                "set" => {
                    if let Some(v) = words.get(1).and_then(|w| w.strip_prefix("default="))
                        && !v.contains("next_entry")
                    {
                        menu.default = Some(clean(v));
                    }
                }
                "blscfg" => menu.blscfg = true,
                "menuentry" | "submenu" if line.ends_with('{') && menu.entries.len() < MAX_BOOT_ENTRIES => {
                    let title = clean(words.get(1).map(String::as_str).unwrap_or_default());
                    let id = words
                        .iter()
                        .position(|w| w == "$menuentry_id_option" || w == "--id")
                        .and_then(|i| words.get(i + 1))
                        .map(|s| clean(s))
                        .unwrap_or_default();
                    let Some(count) = counters.last_mut() else { continue };
                    let index = *count;
                    *count += 1;
                    if cmd == "submenu" {
                        stack.push(Block::Submenu { title, id });
                        counters.push(0);
                        continue;
                    }
                    let (mut titles, mut ids, mut position) = (Vec::new(), Vec::new(), Vec::new());
                    let mut depth = 0;
                    for b in &stack {
                        if let Block::Submenu { title, id } = b {
                            titles.push(title.clone());
                            ids.push(id.clone());
                            position.push(counters.get(depth).map_or(0, |c| c.saturating_sub(1)));
                            depth += 1;
                        }
                    }
                    titles.push(title);
                    ids.push(id);
                    position.push(index);
                    stack.push(Block::Entry(menu.entries.len()));
                    menu.entries.push(MenuEntry { position, titles, ids, release: None });
                }
                "linux" | "linux16" | "linuxefi" => {
                    if let Some(Block::Entry(i)) = stack.last()
                        && let (Some(e), Some(path)) = (menu.entries.get_mut(*i), words.get(1))
                    {
                        e.release = e.release.take().or_else(|| image_release(path));
                    }
                }
                _ if line.ends_with('{') => stack.push(Block::Other),
                _ => {}
            }
        }
        menu
    }

    /// The release of the entry `value` names (see the module documentation).
    fn resolve(&self, value: &str) -> Option<String> {
        let parts: Vec<&str> = value.split('>').map(str::trim).collect();
        let matches = |e: &MenuEntry, exact: bool| {
            if exact && e.position.len() != parts.len() {
                return false;
            }
            let offset = e.position.len().saturating_sub(parts.len());
            parts.iter().enumerate().all(|(k, p)| {
                let k = k + offset;
                p.parse::<usize>().ok().zip(e.position.get(k)).is_some_and(|(n, pos)| n == *pos)
                    || e.titles.get(k).is_some_and(|t| t == p)
                    || e.ids.get(k).is_some_and(|i| !i.is_empty() && i == p)
            })
        };
        self.entries
            .iter()
            .find(|e| matches(e, true))
            .or_else(|| {
                // A bare title or id of an entry inside a submenu (GRUB accepts it with a warning).
                (parts.len() == 1 && parts.first().is_some_and(|p| p.parse::<usize>().is_err()))
                    .then(|| self.entries.iter().find(|e| matches(e, false)))
                    .flatten()
            })
            .and_then(|e| e.release.clone())
    }
}

/// The words of a grub.cfg line, shell-style: `'...'` literal, `"..."` with backslash escapes,
/// unquoted words split at blanks; a word ending a line with `{` loses it.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut started = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                started = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                started = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        d => cur.push(d),
                    }
                }
            }
            '\\' => {
                started = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                started = true;
                cur.push(c);
            }
        }
    }
    if started {
        words.push(cur);
    }
    if words.last().is_some_and(|w| w == "{") {
        words.pop();
    }
    words
}

/// A `*`/`?` glob match of `name` (systemd-boot's `default` patterns), iterative.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Compare two versions segment by segment, the rpm way (simplified): runs of digits compare as
/// numbers, runs of letters as strings, a number beats letters, other characters separate.
fn vercmp(a: &str, b: &str) -> Ordering {
    fn segments(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            rest = rest.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            let digit = rest.starts_with(|c: char| c.is_ascii_digit());
            let end = rest
                .find(|c: char| if digit { !c.is_ascii_digit() } else { !c.is_ascii_alphabetic() })
                .unwrap_or(rest.len());
            let (seg, tail) = rest.split_at(end);
            if !seg.is_empty() {
                out.push((digit, seg));
            }
            rest = tail;
        }
        out
    }
    let (sa, sb) = (segments(a), segments(b));
    for ((da, x), (db, y)) in sa.iter().zip(sb.iter()) {
        let ord = match (da, db) {
            (true, true) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            (false, false) => x.cmp(y),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    sa.len().cmp(&sb.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::dir::DirFs;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (rel, body) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            if rel.ends_with('/') {
                std::fs::create_dir_all(&p).expect("mkdir");
            } else {
                std::fs::write(&p, body).expect("write");
            }
        }
        dir
    }

    /// (release, location, default?) of each kernel found.
    fn kernels(dir: &tempfile::TempDir) -> Vec<(String, String, bool)> {
        let fs = DirFs::new(dir.path()).expect("root");
        let (pkgs, errors) = collect(&fs);
        assert_eq!(errors, vec![]);
        pkgs.iter()
            .map(|p| {
                assert_eq!((p.ecosystem, p.role, &p.name), (AppEcosystem::Kernel, AppRole::Kernel, &p.version));
                assert_eq!(p.purl, format!("pkg:generic/linux-kernel@{}", p.version));
                let default = p.properties.iter().any(|(k, v)| k == DEFAULT_BOOT_PROPERTY && v == "true");
                (p.name.clone(), p.location.clone(), default)
            })
            .collect()
    }

    fn k(r: &str, loc: &str, d: bool) -> (String, String, bool) {
        (r.to_owned(), loc.to_owned(), d)
    }

    #[test]
    fn grub_cfg_indices_titles_ids_and_submenus() {
        let cfg = "set default=\"0\"\nfunction f {\n  true\n}\nmenuentry 'Debian' $menuentry_id_option 'gnulinux-simple-x' {\n  linux /boot/vmlinuz-6.1.0-18-amd64 root=UUID=x ro\n}\nsubmenu 'Advanced' $menuentry_id_option 'adv' {\n  menuentry 'Debian, 6.1.0-18' --class debian {\n    linux /boot/vmlinuz-6.1.0-18-amd64\n  }\n  menuentry 'Debian, 6.1.0-17' $menuentry_id_option 'gnulinux-6.1.0-17-amd64-advanced-x' {\n    linux\t/boot/vmlinuz-6.1.0-17-amd64 ro\n  }\n}\n";
        let menu = GrubMenu::parse(cfg);
        assert_eq!(menu.default.as_deref(), Some("0"));
        let r = |v: &str| menu.resolve(v);
        assert_eq!(r("0").as_deref(), Some("6.1.0-18-amd64"));
        assert_eq!(r("1>1").as_deref(), Some("6.1.0-17-amd64"));
        assert_eq!(r("Advanced>Debian, 6.1.0-17").as_deref(), Some("6.1.0-17-amd64"));
        assert_eq!(r("adv>gnulinux-6.1.0-17-amd64-advanced-x").as_deref(), Some("6.1.0-17-amd64"));
        assert_eq!(r("Debian, 6.1.0-17").as_deref(), Some("6.1.0-17-amd64"), "bare title inside a submenu");
        assert_eq!(r("gnulinux-simple-x").as_deref(), Some("6.1.0-18-amd64"));
        assert_eq!(r("1"), None, "a submenu is no kernel");
        assert_eq!(r("7"), None);
    }

    #[test]
    fn words_and_globs_and_versions() {
        assert_eq!(shell_words(r#"menuentry 'a b' "c\"d" e\ f {"#), vec!["menuentry", "a b", "c\"d", "e f"]);
        assert!(glob("*-6.1*", "abc-6.1.2.conf") && glob("a?c", "abc") && !glob("a*d", "abc") && glob("*", ""));
        assert_eq!(vercmp("6.1.55-75.123.amzn2023", "6.1.9-1.amzn2023"), Ordering::Greater);
        assert_eq!(vercmp("5.14.0-362.el9", "5.14.0-362.el9"), Ordering::Equal);
        assert_eq!(vercmp("1.0a", "1.01"), Ordering::Less);
    }

    #[test]
    fn debian_grub_cfg_default_zero_and_modules_only_kernel() {
        let cfg = "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n   set default=\"0\"\nfi\nmenuentry 'Debian GNU/Linux' {\n\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1 ro quiet\n}\nmenuentry 'Debian GNU/Linux, 6.1.0-17' {\n\tlinux\t/boot/vmlinuz-6.1.0-17-amd64 root=UUID=1 ro quiet\n}\n";
        let t = tree(&[
            ("boot/grub/grub.cfg", cfg),
            ("boot/vmlinuz-6.1.0-18-amd64", "k"),
            ("boot/vmlinuz-6.1.0-17-amd64", "k"),
            ("lib/modules/6.1.0-18-amd64/modules.dep", ""),
            ("lib/modules/5.10.0-28-amd64/modules.dep", ""),
            ("lib/modules/extramodules-6.1/", ""),
            ("boot/vmlinuz-0-rescue-abc", "k"),
            ("boot/vmlinuz", "not a release"),
        ]);
        assert_eq!(
            kernels(&t),
            vec![
                k("5.10.0-28-amd64", "/lib/modules/5.10.0-28-amd64", false),
                k("6.1.0-17-amd64", "/boot/vmlinuz-6.1.0-17-amd64", false),
                k("6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64", true),
            ]
        );
    }

    #[test]
    fn al2023_bls_and_grubenv() {
        let entry = |r: &str| {
            format!(
                "title Amazon Linux ({r}) 2023\nversion {r}\nlinux /boot/vmlinuz-{r}\ninitrd /boot/initramfs-{r}.img\n"
            )
        };
        let (new, old) = ("6.1.55-75.123.amzn2023.x86_64", "6.1.9-1.amzn2023.x86_64");
        let (en, eo) = (entry(new), entry(old));
        let env = format!("# GRUB Environment Block\nsaved_entry=abc-{old}\nboot_success=1\n{}", "#".repeat(900));
        let t = tree(&[
            ("boot/grub2/grub.cfg", "set default=\"${saved_entry}\"\ninsmod blscfg\nblscfg\n"),
            ("boot/grub2/grubenv", &env),
            (&format!("boot/loader/entries/abc-{new}.conf"), &en),
            (&format!("boot/loader/entries/abc-{old}.conf"), &eo),
            (&format!("boot/vmlinuz-{new}"), "k"),
            (&format!("boot/vmlinuz-{old}"), "k"),
            (&format!("usr/lib/modules/{new}/vmlinuz"), "k"),
            ("usr/lib/modules/6.2.0-leftover/modules.dep", ""),
        ]);
        assert_eq!(
            kernels(&t),
            vec![k(new, &format!("/boot/vmlinuz-{new}"), false), k(old, &format!("/boot/vmlinuz-{old}"), true)]
        );
        // Index 0 with BLS: the newest entry.
        std::fs::write(t.path().join("boot/grub2/grubenv"), "saved_entry=0\n").expect("write");
        assert_eq!(kernels(&t).iter().filter(|k| k.2).map(|k| k.0.as_str()).collect::<Vec<_>>(), vec![new]);
        // A title.
        std::fs::write(t.path().join("boot/grub2/grubenv"), format!("saved_entry=Amazon Linux ({old}) 2023\n"))
            .expect("write");
        assert_eq!(kernels(&t).iter().filter(|k| k.2).map(|k| k.0.as_str()).collect::<Vec<_>>(), vec![old]);
        // A saved entry that names nothing marks nothing.
        std::fs::write(t.path().join("boot/grub2/grubenv"), "saved_entry=gone\n").expect("write");
        assert!(kernels(&t).iter().all(|k| !k.2));
    }

    #[test]
    fn usrmerge_modules_image_and_systemd_boot() {
        let t = tree(&[
            ("usr/lib/modules/6.8.4-200.fc39.x86_64/vmlinuz", "k"),
            ("usr/lib/modules/6.7.9-200.fc39.x86_64/vmlinuz", "k"),
            ("boot/loader/loader.conf", "timeout 3\ndefault *6.7*\n"),
            (
                "boot/loader/entries/m-6.8.4-200.fc39.x86_64.conf",
                "title F\nversion 6.8.4-200.fc39.x86_64\nlinux /vmlinuz-6.8.4-200.fc39.x86_64\n",
            ),
            ("boot/loader/entries/m-6.7.9-200.fc39.x86_64.conf", "title F\nversion 6.7.9-200.fc39.x86_64\n"),
        ]);
        assert_eq!(
            kernels(&t),
            vec![
                k("6.7.9-200.fc39.x86_64", "/usr/lib/modules/6.7.9-200.fc39.x86_64/vmlinuz", true),
                k("6.8.4-200.fc39.x86_64", "/usr/lib/modules/6.8.4-200.fc39.x86_64/vmlinuz", false),
            ]
        );
    }

    #[test]
    fn hostile_boot_files_are_bounded() {
        let big = "set default=0\n".repeat(30_000);
        let t = tree(&[("boot/grub/grub.cfg", &big), ("boot/vmlinuz-6.1.0-1-amd64\u{1b}[31m", "k")]);
        let fs = DirFs::new(t.path()).expect("root");
        let (pkgs, errors) = collect(&fs);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].reason.contains("exceeds"), "{errors:?}");
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].name, "6.1.0-1-amd64[31m");
        assert!(pkgs[0].properties.is_empty());
    }
}
