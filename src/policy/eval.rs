//! The decision for one request across several identity policies.
//!
//! IAM's evaluation logic for identity policies within one account ("Policy evaluation logic" in
//! the IAM User Guide), without SCPs, permission boundaries, session policies or resource policies:
//!
//! 1. a statement *applies* when its `Action`/`NotAction` matches the action, its
//!    `Resource`/`NotResource` matches the resource, and every condition holds;
//! 2. any applicable `Deny` → **explicit deny** (it overrides every Allow, in any policy);
//! 3. otherwise any applicable `Allow` → **allow**;
//! 4. otherwise → **implicit deny**.
//!
//! The decision names the deciding statement (policy name, index, Sid). For an implicit deny it
//! says why no Allow applied: no statement's action matched, or an Allow statement matched the
//! action but not the resource, or matched both but a condition failed (operator, key, policy
//! values and request values). Deny statements that did not apply are not reasons and are not
//! reported.

use std::fmt;

use super::Policy;
use super::condition::ConditionFailure;
use super::context::Request;
use super::document::{ActionSpec, Effect, ResourceSpec, Statement};
use super::matcher::{action_matches, resource_matches};

/// Where a statement is: the policy's name, the statement's index in `Statement` (0-based, also
/// when `Statement` is a single object) and its Sid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatementRef {
    pub policy: String,
    pub index: usize,
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Statement[{}]", self.policy, self.index)?;
        if let Some(sid) = &self.sid {
            write!(f, " (Sid \"{}\")", sid.escape_debug())?;
        }
        Ok(())
    }
}

/// An Allow statement that matched the action but did not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    pub statement: StatementRef,
    pub why: Miss,
}

/// Why a statement that matched the action did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Its `Resource`/`NotResource` does not cover the resource; the patterns are listed.
    Resource { patterns: Vec<String>, not_resource: bool },
    /// Resource matched; this condition (the first that failed, in document order) is false.
    Condition(ConditionFailure),
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An Allow statement applies and no Deny does; the first such Allow in policy order.
    Allow { statement: StatementRef },
    /// A Deny statement applies; the first one in policy order.
    ExplicitDeny { statement: StatementRef },
    /// No statement applies. `near_misses` are the Allow statements that matched the action, in
    /// policy order; empty means no statement matched the action at all.
    ImplicitDeny { near_misses: Vec<NearMiss> },
}

/// The kind of deny, for tests and machine-readable output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// A Deny statement applies.
    ExplicitDeny,
    /// No Allow statement matches the action.
    NoStatementForAction,
    /// Allow statements match the action, none the resource.
    ResourceNotMatched,
    /// An Allow statement matches action and resource, but a condition is false.
    ConditionFailed,
}

impl DenyReason {
    /// `explicit_deny`, `no_statement_for_action`, `resource_not_matched`, `condition_failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::ExplicitDeny => "explicit_deny",
            DenyReason::NoStatementForAction => "no_statement_for_action",
            DenyReason::ResourceNotMatched => "resource_not_matched",
            DenyReason::ConditionFailed => "condition_failed",
        }
    }
}

impl Decision {
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// `None` for an allow.
    #[must_use]
    pub fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Decision::Allow { .. } => None,
            Decision::ExplicitDeny { .. } => Some(DenyReason::ExplicitDeny),
            Decision::ImplicitDeny { near_misses } => Some(if near_misses.is_empty() {
                DenyReason::NoStatementForAction
            } else if near_misses.iter().any(|m| matches!(m.why, Miss::Condition(_))) {
                DenyReason::ConditionFailed
            } else {
                DenyReason::ResourceNotMatched
            }),
        }
    }

    /// The statement that decided: the applicable Allow or Deny, or for an implicit deny the
    /// closest miss (the first whose condition failed, else the first whose resource did not match).
    #[must_use]
    pub fn deciding_statement(&self) -> Option<&StatementRef> {
        match self {
            Decision::Allow { statement } | Decision::ExplicitDeny { statement } => Some(statement),
            Decision::ImplicitDeny { near_misses } => near_misses
                .iter()
                .find(|m| matches!(m.why, Miss::Condition(_)))
                .or_else(|| near_misses.first())
                .map(|m| &m.statement),
        }
    }

    /// The failed condition of the closest miss, if the deny is a condition failure.
    #[must_use]
    pub fn failed_condition(&self) -> Option<&ConditionFailure> {
        match self {
            Decision::ImplicitDeny { near_misses } => near_misses.iter().find_map(|m| match &m.why {
                Miss::Condition(c) => Some(c),
                Miss::Resource { .. } => None,
            }),
            _ => None,
        }
    }
}

/// One line: `allowed by P Statement[i]`, `explicitly denied by ...`, or the implicit-deny reason;
/// with `{:#}` every near miss follows on its own indented line.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow { statement } => write!(f, "allowed by {statement}"),
            Decision::ExplicitDeny { statement } => write!(f, "explicitly denied by {statement}"),
            Decision::ImplicitDeny { near_misses } if near_misses.is_empty() => {
                f.write_str("implicitly denied: no statement allows this action")
            }
            Decision::ImplicitDeny { near_misses } => {
                let shown = near_misses.iter().position(|m| matches!(m.why, Miss::Condition(_))).unwrap_or(0);
                write!(f, "implicitly denied: {}", near_misses[shown])?;
                if f.alternate() {
                    for (i, m) in near_misses.iter().enumerate() {
                        if i != shown {
                            write!(f, "\n  also: {m}")?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for NearMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            Miss::Condition(c) => {
                write!(f, "{} matches the action and resource, but its condition {c}", self.statement)
            }
            Miss::Resource { patterns, not_resource } => {
                let element = if *not_resource { "NotResource" } else { "Resource" };
                write!(f, "{} matches the action, but not the resource ({element} {patterns:?})", self.statement)
            }
        }
    }
}

/// Evaluate `request` against `policies` (all attached to the same principal).
#[must_use]
pub fn evaluate(policies: &[Policy], request: &Request) -> Decision {
    let mut first_allow: Option<StatementRef> = None;
    let mut near_misses = Vec::new();
    for policy in policies {
        for (index, s) in policy.document().statements.iter().enumerate() {
            if !action_applies(s, request.action()) {
                continue;
            }
            let at = || StatementRef { policy: policy.name().to_owned(), index, sid: s.sid.clone() };
            if !resource_applies(s, request.resource()) {
                if s.effect == Effect::Allow {
                    let (patterns, not_resource) = match &s.resource {
                        ResourceSpec::Resource(p) => (p.clone(), false),
                        ResourceSpec::NotResource(p) => (p.clone(), true),
                    };
                    near_misses.push(NearMiss { statement: at(), why: Miss::Resource { patterns, not_resource } });
                }
                continue;
            }
            if let Some(failed) = s.conditions.iter().find(|c| !c.holds(request.context())) {
                if s.effect == Effect::Allow {
                    near_misses
                        .push(NearMiss { statement: at(), why: Miss::Condition(failed.failure(request.context())) });
                }
                continue;
            }
            match s.effect {
                Effect::Deny => return Decision::ExplicitDeny { statement: at() },
                Effect::Allow => {
                    if first_allow.is_none() {
                        first_allow = Some(at());
                    }
                }
            }
        }
    }
    match first_allow {
        Some(statement) => Decision::Allow { statement },
        None => Decision::ImplicitDeny { near_misses },
    }
}

fn action_applies(s: &Statement, action: &str) -> bool {
    match &s.action {
        ActionSpec::Action(p) => p.iter().any(|p| action_matches(p, action)),
        ActionSpec::NotAction(p) => !p.iter().any(|p| action_matches(p, action)),
    }
}

fn resource_applies(s: &Statement, resource: &str) -> bool {
    match &s.resource {
        ResourceSpec::Resource(p) => p.iter().any(|p| resource_matches(p, resource)),
        ResourceSpec::NotResource(p) => !p.iter().any(|p| resource_matches(p, resource)),
    }
}
