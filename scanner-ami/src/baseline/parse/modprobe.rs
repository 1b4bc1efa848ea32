//! Kernel module configuration of the scanned image: the `modprobe.d(5)` files kmod reads
//! (`/etc/modprobe.d`, `/run/modprobe.d`, `/usr/local/lib/modprobe.d`, `/usr/lib/modprobe.d`,
//! `/lib/modprobe.d`, `*.conf` only) with kmod's precedence: files sorted by name across the
//! directories, a same-named file in a higher-priority directory masking the others. Only the
//! `install` and `blacklist` directives matter to the baseline; the rest are kept as `Other`.

use std::rc::Rc;

use crate::baseline::Ctx;
use crate::baseline::ctx::wildmatch;
use crate::baseline::parse::sysctl::{drop_ins, read_set};

/// kmod's configuration directories, highest priority first (libkmod `default_config_paths`:
/// SYSCONFDIR, `/run`, `/usr/local/lib`, DISTCONFDIR `/usr/lib`, then `/lib`).
pub const MODPROBE_DIRS: [&str; 5] =
    ["/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"];

/// Commands that make `modprobe <m>` succeed or fail without loading the module: the forms
/// SSG's `kernel_module_*_disabled` accepts (`/bin/true`, `/bin/false`) and their merged-/usr
/// paths.
pub const DISABLING_COMMANDS: [&str; 4] = ["/bin/true", "/bin/false", "/usr/bin/true", "/usr/bin/false"];

/// What a directive does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `install <module> <command...>`: run the command instead of loading the module.
    Install { command: String },
    /// `blacklist <module>`: ignore the module's aliases (no automatic loading by alias).
    Blacklist,
    /// Any other directive (`options`, `alias`, `softdep`, `remove`, ...).
    Other(String),
}

/// One directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub kind: Kind,
    /// The module name or pattern, with `-` normalised to `_` (kmod treats them as equal).
    pub module: String,
    pub file: String,
    pub line: usize,
}

/// The image's module configuration.
#[derive(Debug, Clone, Default)]
pub struct Modprobe {
    /// Files read, in kmod's processing order.
    pub files: Vec<String>,
    pub directives: Vec<Directive>,
    /// `(masked file, masked by)`.
    pub masked: Vec<(String, String)>,
    /// Files or directories that could not be read.
    pub errors: Vec<String>,
}

/// Normalise a module name as kmod does: `-` becomes `_`, except inside `[...]` classes.
#[must_use]
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_class = false;
    for c in name.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            _ => {}
        }
        out.push(if c == '-' && !in_class { '_' } else { c });
    }
    out
}

/// Parse one modprobe.d file. `#` starts a comment line; a trailing `\` continues a line.
pub fn parse(text: &str, file: &str, out: &mut Modprobe) {
    let mut pending = String::new();
    let mut start = 0usize;
    for (i, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            start = i + 1;
        }
        if let Some(cont) = raw.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        directive(&line, file, start, out);
    }
    if !pending.is_empty() {
        directive(&pending, file, start, out);
    }
}

fn directive(line: &str, file: &str, n: usize, out: &mut Modprobe) {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return;
    }
    let mut words = line.split_whitespace();
    let (Some(cmd), Some(module)) = (words.next(), words.next()) else { return };
    let kind = match cmd {
        "install" => Kind::Install { command: words.collect::<Vec<_>>().join(" ") },
        "blacklist" => Kind::Blacklist,
        other => Kind::Other(other.to_owned()),
    };
    out.directives.push(Directive { kind, module: normalize(module), file: file.to_owned(), line: n });
}

impl Modprobe {
    /// The `install` directive kmod uses for `module`: the first one, in processing order, whose
    /// module pattern matches (libkmod keeps only the first matching install command).
    #[must_use]
    pub fn install_for(&self, module: &str) -> Option<&Directive> {
        let m = normalize(module);
        self.directives.iter().find(|d| matches!(d.kind, Kind::Install { .. }) && wildmatch(&d.module, &m))
    }

    /// The first `blacklist` directive naming `module`.
    #[must_use]
    pub fn blacklist_for(&self, module: &str) -> Option<&Directive> {
        let m = normalize(module);
        self.directives.iter().find(|d| d.kind == Kind::Blacklist && d.module == m)
    }
}

/// True if `command` replaces loading with a no-op that loads nothing ([`DISABLING_COMMANDS`]).
#[must_use]
pub fn is_disabling(command: &str) -> bool {
    DISABLING_COMMANDS.contains(&command.trim())
}

/// Read and parse the image's module configuration once per evaluation.
pub fn load(ctx: &Ctx<'_>) -> Rc<Modprobe> {
    ctx.memo("modprobe", |ctx| {
        let set = drop_ins(ctx, &MODPROBE_DIRS, ".conf");
        let mut out = Modprobe { masked: set.masked, errors: set.errors, ..Modprobe::default() };
        let read = read_set(ctx, set.files, "modprobe configuration", |text, f| parse(text, f, &mut out));
        out.files.extend(read.read);
        out.errors.extend(read.errors);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Modprobe {
        let mut m = Modprobe::default();
        parse(text, "/etc/modprobe.d/t.conf", &mut m);
        m
    }

    #[test]
    fn install_and_blacklist() {
        let m = parsed(
            "# x\ninstall cramfs /bin/false\nblacklist cramfs\noptions snd x=1\ninstall usb-storage /bin/true\n",
        );
        let i = m.install_for("cramfs").expect("install");
        assert_eq!((i.line, &i.kind), (2, &Kind::Install { command: "/bin/false".into() }));
        assert!(m.blacklist_for("cramfs").is_some());
        // `-` and `_` are the same module name.
        assert!(m.install_for("usb_storage").is_some());
        assert!(m.install_for("usb-storage").is_some());
        assert!(m.blacklist_for("udf").is_none());
    }

    #[test]
    fn first_install_wins_and_continuations() {
        let m = parsed(
            "install hfs /sbin/modprobe \\\n  --ignore-install hfs\ninstall hfs /bin/true\ninstall h* /bin/false\n",
        );
        let i = m.install_for("hfs").expect("install");
        assert_eq!(i.line, 1);
        assert!(!is_disabling(match &i.kind {
            Kind::Install { command } => command,
            _ => "",
        }));
        assert_eq!(m.install_for("hfsplus").map(|d| d.line), Some(4), "patterns match");
        assert!(is_disabling(" /usr/bin/false "));
    }

    #[test]
    fn short_lines_are_ignored() {
        let m = parsed("install\nblacklist\n\\");
        assert!(m.directives.is_empty());
    }
}
