//! (being written)

use crate::baseline::Rule;

/// The rules of this area.
#[must_use]
pub fn rules() -> Vec<Rule> {
    Vec::new()
}
