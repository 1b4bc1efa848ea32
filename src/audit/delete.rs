//! Deleting the leaks of one Region: the auditor decides *which* resources go (its
//! classification: leaked, and foreign ones with `include_foreign`), hands them to the one
//! teardown engine ([`crate::teardown`], shared with the job's `TearingDown`), records each
//! deletion in the ledger ([`Ledger::record_deleted`](crate::ledger::Ledger::record_deleted); a
//! resource the ledger never knew is fine) and says, on a resource that could not be removed,
//! what a person can do.

use super::AuditOptions;
use super::Class;
use super::classify::{Item, delete_command};
use super::ledger_view::Access;
use super::list::Detail;
use crate::cloud::{Cloud, CloudError, ErrorKind, Guard, Region};
use crate::ledger::ResourceKind;
use crate::teardown::{self, Outcome, Target};

/// The position of a kind in the deletion order (the report's order within a Region).
#[must_use]
pub fn order(kind: ResourceKind) -> u8 {
    teardown::order(kind)
}

/// The deletion of `item` failed for good.
fn failed(item: &mut Item, e: &CloudError) {
    let cmd = delete_command(&item.found.region, &item.found.id, &item.detail);
    item.found.error = Some(e.to_string());
    let what = match e.kind() {
        ErrorKind::PolicyDenied if item.found.class == Class::Foreign => {
            "the guard refused it: build the guard with GuardRules::include_foreign (agentless audit \
             --include-foreign)"
                .to_owned()
        }
        ErrorKind::PolicyDenied | ErrorKind::AccessDenied => {
            format!("the policy or the guard refused it; remove it with other credentials: {cmd}")
        }
        ErrorKind::DependencyViolation => format!(
            "something still depends on it (see the other resources of this Region); run agentless audit \
             --delete again later, or remove it yourself: {cmd}"
        ),
        ErrorKind::Throttled
        | ErrorKind::Transient
        | ErrorKind::IncorrectState
        | ErrorKind::SnapshotRatePerVolume
        | ErrorKind::QuotaExceeded
        | ErrorKind::NotFound
        | ErrorKind::Other => {
            format!("run agentless audit --delete again later, or remove it yourself: {cmd}")
        }
    };
    item.found.action_needed = Some(what);
}

/// Delete the leaks of `region` among `items` (and the foreign resources with `include_foreign`).
#[tracing::instrument(name = "audit_delete", skip_all, fields(account = %guard.policy().scope().account, region = %region))]
pub async fn delete_region<C: Cloud>(
    guard: &Guard<C>,
    region: &Region,
    items: &mut [Item],
    ledger: &mut Access<'_>,
    opts: &AuditOptions,
    warnings: &mut Vec<String>,
) {
    let include_foreign = opts.include_foreign;
    let chosen: Vec<usize> = (0..items.len())
        .filter(|&n| {
            let i = &items[n];
            &i.found.region == region
                && !i.found.deleted
                && match i.found.class {
                    Class::Leaked => true,
                    Class::Foreign => include_foreign,
                    Class::Active | Class::Stuck => false,
                }
        })
        .collect();
    let targets: Vec<Target> = chosen
        .iter()
        .map(|&n| {
            let item = &items[n];
            let mut t = Target::new(item.found.id.clone(), item.found.tags.clone());
            match &item.detail {
                Detail::InternetGateway { attached_vpcs } => t.attached_vpcs.clone_from(attached_vpcs),
                Detail::Instance { .. }
                | Detail::Volume { .. }
                | Detail::Snapshot { .. }
                | Detail::InVpc { .. }
                | Detail::Plain => {}
            }
            if item.found.kind == ResourceKind::KmsGrant {
                t.grant_name.clone_from(&item.found.name);
            }
            t
        })
        .collect();
    let engine_opts = teardown::Options { retry: opts.retry, ..teardown::Options::default() };
    let results = teardown::remove(guard, region, targets, &engine_opts, |_, _| {}).await;
    for (t, outcome) in results {
        let Some(&n) = chosen.iter().find(|&&n| items[n].found.id == t.id) else { continue };
        let item = &mut items[n];
        match outcome {
            Outcome::Removed | Outcome::Gone => done(ledger, warnings, item),
            Outcome::Failed(e) => failed(item, &e),
            Outcome::NotTerminated(error) => {
                item.found.error = Some(match error {
                    Some(e) => format!("terminated, but its state could not be read: {e}"),
                    None => format!(
                        "terminated, but not yet terminated after {} minutes",
                        teardown::INSTANCE_WAIT.as_secs() / 60
                    ),
                });
                item.found.action_needed = Some(format!(
                    "check it and run agentless audit --delete again: {}",
                    delete_command(region, &item.found.id, &item.detail)
                ));
            }
            Outcome::Outlived => {
                item.found.class = Class::Stuck;
                item.found.action_needed = Some(format!(
                    "it did not go with its instance (no DeleteOnTermination, or the instance was not deleted) and \
                     the policy has no ec2:DeleteVolume; remove it with other credentials: {}",
                    delete_command(region, &item.found.id, &item.detail)
                ));
            }
            Outcome::Unchecked(e) => {
                item.found.error = Some(format!("could not check whether it went with its instance: {e}"));
            }
            Outcome::Untouched => {}
        }
    }
}

/// `item` is gone: mark it and record it in the ledger.
fn done(ledger: &mut Access<'_>, warnings: &mut Vec<String>, item: &mut Item) {
    item.found.deleted = true;
    item.found.error = None;
    if let Some(Err(e)) = ledger.record_deleted(&item.found.region, &item.found.id) {
        warnings.push(format!(
            "{} {} in {} was deleted, but the ledger could not record it: {e}",
            item.found.kind, item.found.id, item.found.region
        ));
    }
}
