//! Installed kernels: `boot/vmlinuz-<release>` and `lib/modules/<release>`, and which one the
//! boot loader starts by default where its configuration says. (Interface fixed; implementation
//! in progress, issue 17.)

use super::{AppError, AppPackage};
use crate::fs::RootFs;

/// Every installed kernel of the root `fs`, with the errors met on the way.
#[must_use]
pub fn collect(fs: &dyn RootFs) -> (Vec<AppPackage>, Vec<AppError>) {
    let _ = fs;
    (Vec::new(), Vec::new())
}
