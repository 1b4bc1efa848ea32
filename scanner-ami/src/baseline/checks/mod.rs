//! The rule catalogue, one module per area. [`all`] lists every rule in report order.

use super::Rule;

pub mod accounts;
pub mod audit;
pub mod boot;
pub mod cron;
pub mod filesystem;
pub mod logging;
pub mod network;
pub mod pam;
pub mod services;
pub mod ssh;
pub mod sudo;

/// Every rule, grouped by area.
#[must_use]
pub fn all() -> Vec<Rule> {
    let mut v = Vec::new();
    v.extend(filesystem::rules());
    v.extend(boot::rules());
    v.extend(services::rules());
    v.extend(network::rules());
    v.extend(audit::rules());
    v.extend(logging::rules());
    v.extend(cron::rules());
    v.extend(ssh::rules());
    v.extend(sudo::rules());
    v.extend(pam::rules());
    v.extend(accounts::rules());
    v
}
