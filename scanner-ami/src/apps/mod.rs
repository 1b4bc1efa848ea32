//! Application inventory: what is installed outside the OS package manager — Go and Rust
//! binaries, Python distributions, Java archives, Node, Ruby, PHP and .NET packages, and the
//! installed kernels — found by a bounded walk of a scanned root filesystem.
//!
//! This module owns the model every application reader returns ([`AppPackage`]), the per-file
//! error ([`AppError`]) and the whole result of one root ([`Applications`]). The walk and the
//! dispatch to readers live in [`collect`]; one module per format:
//!
//! - [`walk`]: the bounded, symlink-free file walker and the name classifier;
//! - [`elf`], [`golang`], [`rustaudit`], [`binary`]: executables (ELF headers read with bounds,
//!   the Go build info, the `cargo auditable` dependency list);
//! - [`zip`], [`java`]: archives (`.jar`, `.war`, `.ear`, `.par`, nested);
//! - [`python`], [`node`], [`ruby`], [`php`], [`dotnet`]: metadata files;
//! - [`kernel`]: `boot/vmlinuz-*` and `lib/modules/<version>`.
//!
//! Every reader treats the file as hostile: it reads only the bytes it needs, through a
//! [`FileRead`](crate::fs::FileRead), within the bounds each reader states as constants; a file it cannot read is an
//! [`AppError`] for that file, and the walk goes on.

pub mod binary;
pub mod collect;
pub mod dotnet;
pub mod elf;
pub mod golang;
pub mod java;
pub mod kernel;
pub mod node;
pub mod php;
pub mod python;
pub mod ruby;
pub mod rustaudit;
pub mod walk;
pub mod zip;

use serde::Serialize;

pub use collect::collect;

/// The ecosystem of an application package; its serialised name is the purl type (`kernel`
/// packages use the purl type `generic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEcosystem {
    Golang,
    Cargo,
    Pypi,
    Maven,
    Npm,
    Gem,
    Composer,
    Nuget,
    /// An installed Linux kernel (`boot/vmlinuz-<release>`, `lib/modules/<release>`).
    Kernel,
}

impl AppEcosystem {
    /// The purl type of the ecosystem.
    #[must_use]
    pub fn purl_type(self) -> &'static str {
        match self {
            AppEcosystem::Golang => "golang",
            AppEcosystem::Cargo => "cargo",
            AppEcosystem::Pypi => "pypi",
            AppEcosystem::Maven => "maven",
            AppEcosystem::Npm => "npm",
            AppEcosystem::Gem => "gem",
            AppEcosystem::Composer => "composer",
            AppEcosystem::Nuget => "nuget",
            AppEcosystem::Kernel => "generic",
        }
    }

    /// The ecosystem name OSV uses for its advisories (`None` for kernels, which OSV keys by
    /// distribution).
    #[must_use]
    pub fn osv_name(self) -> Option<&'static str> {
        match self {
            AppEcosystem::Golang => Some("Go"),
            AppEcosystem::Cargo => Some("crates.io"),
            AppEcosystem::Pypi => Some("PyPI"),
            AppEcosystem::Maven => Some("Maven"),
            AppEcosystem::Npm => Some("npm"),
            AppEcosystem::Gem => Some("RubyGems"),
            AppEcosystem::Composer => Some("Packagist"),
            AppEcosystem::Nuget => Some("NuGet"),
            AppEcosystem::Kernel => None,
        }
    }
}

/// What role a package plays where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppRole {
    /// The program itself: a Go main module, the root crate of a Rust binary, a `.war`/`.ear`'s
    /// own identity. CycloneDX type `application`.
    Application,
    /// A library: a Go dependency module, a crate, a Python distribution, a jar, an npm package...
    Library,
    /// The Go standard library a binary was built with (name `stdlib`).
    Stdlib,
    /// A Rust crate used only at build time (`kind = "build"` in the `cargo auditable` data):
    /// kept, but not linked into the binary.
    BuildDependency,
    /// An installed kernel. CycloneDX type `operating-system` is for the OS; a kernel is listed
    /// as a `library`-like component with this role.
    Kernel,
}

/// One application package found on the scanned root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppPackage {
    pub ecosystem: AppEcosystem,
    /// The package's name as its ecosystem spells it: Go module path, crate name, PyPI name
    /// normalised per PEP 503, Maven `groupId:artifactId`, npm name with its `@scope/`, Composer
    /// `vendor/name`, gem, NuGet id, kernel release (`6.1.0-18-amd64`).
    pub name: String,
    /// The version as recorded (Go keeps its `v`; empty when none is known).
    pub version: String,
    /// The package URL (purl specification).
    pub purl: String,
    pub role: AppRole,
    /// A licence expression or name, as the metadata states it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Where it was found: the binary, archive or metadata file, as an absolute path inside the
    /// scanned root; inside an archive, `outer.war!/WEB-INF/lib/inner.jar` (the member path after
    /// each `!`).
    pub location: String,
    /// The purls of its direct dependencies, where the source states them (a Rust binary's
    /// dependency graph, a Go main module's modules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Further facts worth keeping, sorted by key (Go `build` settings prefixed `go.build.`, the
    /// Go version, a kernel's `default-boot`...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<(String, String)>,
}

impl AppPackage {
    /// A package with no licence, dependencies or properties.
    #[must_use]
    pub fn new(
        ecosystem: AppEcosystem,
        name: &str,
        version: &str,
        purl: String,
        role: AppRole,
        location: &str,
    ) -> Self {
        AppPackage {
            ecosystem,
            name: clean(name),
            version: clean(version),
            purl,
            role,
            license: None,
            location: clean(location),
            depends_on: Vec::new(),
            properties: Vec::new(),
        }
    }
}

/// Most per-file errors kept in one report: a disk of 200,000 corrupt jars must not give a report
/// of 200,000 lines; the count stays exact in [`Applications::error_count`].
pub const MAX_APP_ERRORS: usize = 200;

/// Why one file (or one archive member) could not be read; the walk goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{path}: {reason}")]
pub struct AppError {
    /// The file (or `archive!/member`) inside the scanned root.
    pub path: String,
    pub reason: String,
}

impl AppError {
    /// An error for `path`, with control characters stripped from both parts.
    #[must_use]
    pub fn new(path: &str, reason: impl Into<String>) -> Self {
        AppError { path: clean(path), reason: clean(&reason.into()) }
    }
}

/// Counters of one application walk: what it looked at and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalkStats {
    /// Directories listed.
    pub dirs: u64,
    /// Directory entries seen.
    pub entries: u64,
    /// Files whose metadata was read (regular files whose name could matter).
    pub files_examined: u64,
    /// Files opened and read by a reader.
    pub files_read: u64,
    /// Bytes read from files by the readers (not counting filesystem metadata).
    pub bytes_read: u64,
    /// Packages found in metadata that an OS package installed (dpkg's file lists), left out so
    /// that the same software is not reported twice.
    pub os_owned_skipped: u64,
    /// Why the walk stopped early or skipped parts (a cap reached, a directory unreadable).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

/// The application inventory of one root filesystem.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applications {
    pub packages: Vec<AppPackage>,
    /// Files that could not be read (at most [`MAX_APP_ERRORS`]; `error_count` counts them all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<AppError>,
    /// Total per-file errors, including those not kept in `errors`.
    pub error_count: u64,
    pub stats: WalkStats,
}

/// The report errors an application walk gives: the caps it reached and the directories it could
/// not list (the walk is then incomplete). Files a reader could not read stay in
/// [`Applications::errors`]: a corrupt jar in a cache does not make the volume's scan partial.
pub fn incomplete(apps: Option<&Applications>) -> impl Iterator<Item = String> + '_ {
    apps.into_iter().flat_map(|a| a.stats.truncated.iter().map(|t| format!("applications: {t}")))
}

/// How many application packages of each ecosystem (keys as serialised: `golang`, `pypi`...).
#[must_use]
pub fn count_by_ecosystem(apps: Option<&Applications>) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for p in apps.iter().flat_map(|a| &a.packages) {
        let key =
            serde_json::to_value(p.ecosystem).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// Remove control characters (C0, DEL, C1: the ANSI escape introducers among them) from a string
/// read off a disk, so that no name, version or path can drive a terminal or forge log lines.
#[must_use]
pub fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_control_and_ansi_introducers() {
        assert_eq!(clean("evil\u{1b}[31mred\u{7}\n\u{9b}x"), "evil[31mredx");
        assert_eq!(clean("plain-1.0"), "plain-1.0");
        let p = AppPackage::new(AppEcosystem::Npm, "a\u{1b}b", "1\r", String::new(), AppRole::Library, "/x\u{0}");
        assert_eq!((p.name.as_str(), p.version.as_str(), p.location.as_str()), ("ab", "1", "/x"));
    }
}
