//! Being written (issue 17).
use super::Applications;
use crate::fs::RootFs;
/// Placeholder until the walker lands.
#[must_use]
pub fn collect(_fs: &dyn RootFs) -> Applications {
    Applications::default()
}
