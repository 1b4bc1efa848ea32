//! The rule catalogue, one module per area. [`all`] lists every rule in report order.

use super::{CisRefs, Ctx, Outcome, Rule, Severity};

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

/// CIS references: Ubuntu 22.04 as the SSG 0.1.65 `ssg-ubuntu2204-ds.xml` rule references give
/// them, RHEL 9 as ComplianceAsCode's `controls/cis_rhel9.yml` (CIS RHEL 9 v1.0.0) maps them (the
/// SSG 0.1.65 RHEL 9 datastream carries no per-rule CIS references).
#[must_use]
pub(crate) const fn cis(ubuntu2204: Option<&'static str>, rhel9: Option<&'static str>) -> CisRefs {
    CisRefs { ubuntu2204, rhel9 }
}

/// A rule's evaluation function.
pub(crate) type Eval = fn(&Ctx<'_>) -> Outcome;

/// The placeholder evaluation of a rule template in a table; [`bind!`] replaces it.
pub(crate) fn unbound(_: &Ctx<'_>) -> Outcome {
    Outcome::error("internal: rule template evaluated without its parameters")
}

/// Defaults for rule literals (`Rule { id: ..., ..BASE }`).
pub(crate) const BASE: Rule = Rule {
    id: "",
    ssg_id: None,
    cis: cis(None, None),
    title: "",
    severity: Severity::Medium,
    rationale: "",
    remediation: "",
    families: &[],
    eval: unbound,
};
