//! Vulnerability findings: the advisory database (`db`, with the hand-made archives of
//! `craft`), matching inventories against it (`matching`; `rpmdb`: an AlmaLinux 9 rpm database
//! built by rpm in the test), the CycloneDX VEX of the findings against the SBOM (`vex`).

mod craft;
mod db;
mod fleet_bench;
mod matching;
mod rpmdb;
mod vex;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A file or directory of `tests/data/vuln`.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vuln").join(rel)
}

/// The AlmaLinux OSV snapshot (`tests/data/vuln/almalinux-osv`) extracted into `tmp` (with `tar`,
/// the oracle of the archive's contents); returns the `advisories` directory.
pub fn almalinux(tmp: &Path) -> PathBuf {
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(data("almalinux-osv/advisories.tar.xz"))
        .arg("-C")
        .arg(tmp)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    tmp.join("advisories")
}
