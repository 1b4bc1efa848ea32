//! Integration tests of the guest agent: fixture package databases in root trees, disk images
//! built without mounting (sfdisk, mkfs.ext4 -E offset -d, mkfs.vfat/xfs/btrfs, mkswap), native
//! oracles (dpkg-query, rpm), hostile inputs, the CLI and the CycloneDX schema; the result bundle
//! (hostile archives) and the `run` mode against a fake IMDSv2 and collector.
//!
//! Tools come from `scripts/setup-test-env.sh`; a missing tool fails the test with that hint.
//! Tests needing the Python venv or the debootstrap tree are `#[ignore]`d so a bare `cargo test`
//! works; `scripts/test.sh` runs them with `--include-ignored`.

mod util;

mod apps;
mod apps_binary;
mod apps_java;
mod apps_meta;

mod baseline_access;
mod baseline_system;

mod btrfs;
mod bundle;
mod cli;
mod debootstrap;
mod difftree;
mod egress;
mod fixtures;
mod hostile;
mod images;
mod instance;
mod lvm;
mod run_mode;
mod sbom_trivy;
mod scanner_image;
mod xfs;
mod xfs_log;
