//! Which instances a run scans ([`TargetSelector`]): tags to require and to exclude, instance
//! states, explicit instance ids. A schedule's `targets` (`schedule::config`), the body of
//! `POST /v1/scans` (`api`) and the events pipeline's selector all read it; it lives on the job
//! floor, below the API and the scheduler, so that neither imports the other for it.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cloud::ids::InstanceId;

/// Which instances a run scans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSelector {
    /// Only instances carrying all these tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Instance states to scan [default: running].
    #[serde(default)]
    pub states: Vec<InstanceStateName>,
    /// Leave out instances carrying any of these tags (key = value).
    #[serde(default)]
    pub exclude_tags: BTreeMap<String, String>,
    /// Only these instances.
    #[serde(default)]
    pub instances: Vec<InstanceId>,
}

impl TargetSelector {
    /// Whether the selector is exactly what a job's own discovery does (running instances,
    /// maybe filtered by tags), so no up-front resolution is needed.
    #[must_use]
    pub fn is_plain(&self) -> bool {
        self.exclude_tags.is_empty()
            && self.instances.is_empty()
            && (self.states.is_empty() || self.states == [InstanceStateName::Running])
    }

    /// The states to scan (running when none is given).
    #[must_use]
    pub fn states(&self) -> Vec<InstanceStateName> {
        if self.states.is_empty() { vec![InstanceStateName::Running] } else { self.states.clone() }
    }
}

/// An instance state a selector may name (EC2's `instance-state-name` filter values; terminated
/// instances have nothing to scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceStateName {
    Pending,
    Running,
    Stopping,
    Stopped,
}

impl InstanceStateName {
    /// The filter value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStateName::Pending => "pending",
            InstanceStateName::Running => "running",
            InstanceStateName::Stopping => "stopping",
            InstanceStateName::Stopped => "stopped",
        }
    }
}
