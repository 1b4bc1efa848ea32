//! Deleting the leaks of one Region, through the policy guard, in dependency order (DESIGN.md "A
//! scan job", teardown): terminate the instances and wait until they are `terminated` (their
//! volumes go with them by `DeleteOnTermination`, their network interfaces with them too), delete
//! the VPC endpoints, the security groups, the subnets, detach and delete the internet gateways,
//! delete the VPCs, the snapshots, and revoke the grants.
//!
//! Every call is retried with jittered exponential backoff on throttling, `DependencyViolation`
//! and 5xx ([`super::retry`]); a `NotFound` means the resource is already gone. Each deletion is
//! recorded in the ledger ([`Ledger::record_deleted`](crate::ledger::Ledger::record_deleted); a resource the ledger never knew is fine).
//! A deletion that still fails is reported on the resource with what a person can do.

use std::collections::BTreeSet;
use std::time::Duration;

use super::AuditOptions;
use super::Class;
use super::classify::{Item, delete_command};
use super::ledger_view::Access;
use super::list::{self, Detail};
use super::retry;
use crate::cloud::ops::*;
use crate::cloud::{Cloud, CloudError, ErrorKind, Guard, InstanceId, Region, Tags, VpcId};
use crate::ledger::{ResourceId, ResourceKind};

/// Instances per `TerminateInstances` call. INFERENCE: AWS documents no limit on the ids of one
/// call; 50 keeps a request small and a failure local, and a leak rarely has more scanners.
pub const TERMINATE_BATCH: usize = 50;
/// Endpoints per `DeleteVpcEndpoints` call. Its token bucket is the tightest of the flow (4, refill
/// 0.3/s, orchestrator-anchors 4.1), so endpoints are deleted in batches; 25 is INFERENCE (no
/// documented limit).
pub const ENDPOINT_BATCH: usize = 25;
/// How long to wait for terminated instances to reach `terminated`. INFERENCE: instances shut
/// down within a few minutes (the simulated account takes 45 s, `sim::limits::INSTANCE_SHUTDOWN_MS`);
/// past 15 minutes something else is wrong, and the report says so.
pub const INSTANCE_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long to wait for deleted endpoints to disappear before the security groups and subnets
/// (their network interfaces hold both). INFERENCE: interface endpoints take a few minutes.
pub const ENDPOINT_WAIT: Duration = Duration::from_secs(10 * 60);
/// First and longest interval of those waits' polls (DescribeInstances / DescribeVpcEndpoints,
/// on the 100-token Describe bucket).
pub const POLL_MIN: Duration = Duration::from_secs(2);
pub const POLL_MAX: Duration = Duration::from_secs(15);

/// The position of a kind in the deletion order (also the report's order within a Region).
#[must_use]
pub fn order(kind: ResourceKind) -> u8 {
    match kind {
        ResourceKind::Instance => 0,
        ResourceKind::Volume => 1,
        ResourceKind::NetworkInterface => 2,
        ResourceKind::VpcEndpoint => 3,
        ResourceKind::SecurityGroup => 4,
        ResourceKind::Subnet => 5,
        ResourceKind::RouteTable => 6,
        ResourceKind::InternetGateway => 7,
        ResourceKind::Vpc => 8,
        ResourceKind::Snapshot => 9,
        ResourceKind::Image => 10,
        ResourceKind::KmsGrant => 11,
    }
}

/// Deleting in one Region: the guard, the options, and where results go.
struct Ctx<'a, 'l, C: Cloud> {
    guard: &'a Guard<C>,
    region: &'a Region,
    opts: &'a AuditOptions,
    ledger: &'a mut Access<'l>,
    warnings: &'a mut Vec<String>,
}

impl<C: Cloud> Ctx<'_, '_, C> {
    /// `item` is gone: mark it and record it in the ledger.
    fn done(&mut self, item: &mut Item) {
        item.found.deleted = true;
        item.found.error = None;
        if let Some(Err(e)) = self.ledger.record_deleted(&item.found.region, &item.found.id) {
            self.warnings.push(format!(
                "{} {} in {} was deleted, but the ledger could not record it: {e}",
                item.found.kind, item.found.id, item.found.region
            ));
        }
    }

    /// The outcome of one delete call on `item`.
    fn settle(&mut self, item: &mut Item, result: Result<(), CloudError>) {
        match result {
            Ok(()) => self.done(item),
            Err(e) if e.kind() == ErrorKind::NotFound => self.done(item),
            Err(e) => failed(item, &e),
        }
    }
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

fn tagged<Id: Clone>(id: &Id, item: &Item) -> Tagged<Id> {
    Tagged::new(id.clone(), item.found.tags.clone())
}

/// Delete the leaks of `region` among `items` (and the foreign resources with `include_foreign`).
pub async fn delete_region<C: Cloud>(
    guard: &Guard<C>,
    region: &Region,
    items: &mut [Item],
    ledger: &mut Access<'_>,
    opts: &AuditOptions,
    warnings: &mut Vec<String>,
) {
    let mut cx = Ctx { guard, region, opts, ledger, warnings };
    let include_foreign = opts.include_foreign;
    // The indices of what to delete of one kind (collected first: the loops below change items).
    let pick = |items: &[Item], kind: ResourceKind| -> Vec<usize> {
        (0..items.len())
            .filter(|&n| {
                let i = &items[n];
                &i.found.region == region
                    && i.found.kind == kind
                    && !i.found.deleted
                    && match i.found.class {
                        Class::Leaked => true,
                        Class::Foreign => include_foreign,
                        Class::Active | Class::Stuck => false,
                    }
            })
            .collect()
    };

    // 1. Instances, then wait until they are terminated.
    let instances = pick(items, ResourceKind::Instance);
    terminate(&mut cx, items, &instances).await;
    // Their volumes went with them (DeleteOnTermination), or they are stuck.
    let volumes = pick(items, ResourceKind::Volume);
    settle_volumes(&mut cx, items, &volumes).await;

    // 2. VPC endpoints, then wait until they are gone (their ENIs hold subnets and groups).
    let endpoints = pick(items, ResourceKind::VpcEndpoint);
    delete_endpoints(&mut cx, items, &endpoints).await;

    // 3. Security groups, 4. subnets.
    for n in pick(items, ResourceKind::SecurityGroup) {
        if let ResourceId::SecurityGroup(id) = &items[n].found.id {
            let input = DeleteSecurityGroupInput { group: tagged(id, &items[n]) };
            let r = retry::call(&opts.retry, || guard.delete_security_group(region, &input)).await;
            cx.settle(&mut items[n], r.map(|_| ()));
        }
    }
    for n in pick(items, ResourceKind::Subnet) {
        if let ResourceId::Subnet(id) = &items[n].found.id {
            let input = DeleteSubnetInput { subnet: tagged(id, &items[n]) };
            let r = retry::call(&opts.retry, || guard.delete_subnet(region, &input)).await;
            cx.settle(&mut items[n], r.map(|_| ()));
        }
    }

    // 5. Internet gateways: detach from each VPC, then delete.
    for n in pick(items, ResourceKind::InternetGateway) {
        let r = delete_gateway(&mut cx, items, n).await;
        cx.settle(&mut items[n], r);
    }

    // 6. VPCs.
    for n in pick(items, ResourceKind::Vpc) {
        if let ResourceId::Vpc(id) = &items[n].found.id {
            let input = DeleteVpcInput { vpc: tagged(id, &items[n]) };
            let r = retry::call(&opts.retry, || guard.delete_vpc(region, &input)).await;
            cx.settle(&mut items[n], r.map(|_| ()));
        }
    }

    // 7. Snapshots (and copies), in any state.
    for n in pick(items, ResourceKind::Snapshot) {
        if let ResourceId::Snapshot(id) = &items[n].found.id {
            let input = DeleteSnapshotInput { snapshot: tagged(id, &items[n]) };
            let r = retry::call(&opts.retry, || guard.delete_snapshot(region, &input)).await;
            cx.settle(&mut items[n], r.map(|_| ()));
        }
    }

    // 8. Grants.
    for n in pick(items, ResourceKind::KmsGrant) {
        if let ResourceId::KmsGrant { key, grant } = &items[n].found.id {
            let input =
                RevokeGrantInput { key: key.clone(), grant_id: grant.clone(), grant_name: items[n].found.name.clone() };
            let r = retry::call(&opts.retry, || guard.revoke_grant(region, &input)).await;
            cx.settle(&mut items[n], r.map(|_| ()));
        }
    }
}

/// Terminate the instances at `idx` and wait until they are `terminated`.
async fn terminate<C: Cloud>(cx: &mut Ctx<'_, '_, C>, items: &mut [Item], idx: &[usize]) {
    let (guard, region, policy) = (cx.guard, cx.region, cx.opts.retry);
    let id_of = |item: &Item| match &item.found.id {
        ResourceId::Instance(id) => Some(id.clone()),
        ResourceId::Snapshot(_)
        | ResourceId::Volume(_)
        | ResourceId::Vpc(_)
        | ResourceId::Subnet(_)
        | ResourceId::InternetGateway(_)
        | ResourceId::RouteTable(_)
        | ResourceId::SecurityGroup(_)
        | ResourceId::VpcEndpoint(_)
        | ResourceId::NetworkInterface(_)
        | ResourceId::Image(_)
        | ResourceId::KmsGrant { .. } => None,
    };
    let mut waiting: Vec<(usize, InstanceId)> = Vec::new();
    for chunk in idx.chunks(TERMINATE_BATCH) {
        let batch: Vec<(usize, InstanceId)> =
            chunk.iter().filter_map(|&n| id_of(&items[n]).map(|id| (n, id))).collect();
        let input = TerminateInstancesInput { instances: batch.iter().map(|(n, id)| tagged(id, &items[*n])).collect() };
        match retry::call(&policy, || guard.terminate_instances(region, &input)).await {
            Ok(_) => waiting.extend(batch),
            // One id of the batch is gone (AWS fails the whole call): one call each.
            Err(e) if e.kind() == ErrorKind::NotFound && batch.len() > 1 => {
                for (n, id) in batch {
                    let one = TerminateInstancesInput { instances: vec![tagged(&id, &items[n])] };
                    match retry::call(&policy, || guard.terminate_instances(region, &one)).await {
                        Ok(_) => waiting.push((n, id)),
                        Err(e) if e.kind() == ErrorKind::NotFound => cx.done(&mut items[n]),
                        Err(e) => failed(&mut items[n], &e),
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                for (n, _) in batch {
                    cx.done(&mut items[n]);
                }
            }
            Err(e) => {
                for (n, _) in batch {
                    failed(&mut items[n], &e);
                }
            }
        }
    }
    if waiting.is_empty() {
        return;
    }
    let ids: Vec<InstanceId> = waiting.iter().map(|(_, id)| id.clone()).collect();
    let deadline = tokio::time::Instant::now() + INSTANCE_WAIT;
    let mut delay = POLL_MIN;
    let mut last_error = None;
    let remaining = loop {
        match alive_instances(guard, region, &ids, &policy).await {
            Ok(alive) if alive.is_empty() => break alive,
            Ok(alive) if tokio::time::Instant::now() >= deadline => break alive,
            Ok(_) => {}
            Err(e) if tokio::time::Instant::now() >= deadline => {
                last_error = Some(e.to_string());
                break ids.iter().cloned().collect();
            }
            Err(e) => last_error = Some(e.to_string()),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
    };
    for (n, id) in waiting {
        if remaining.contains(&id) {
            let item = &mut items[n];
            item.found.error = Some(match &last_error {
                Some(e) => format!("terminated, but its state could not be read: {e}"),
                None => format!("terminated, but not yet terminated after {} minutes", INSTANCE_WAIT.as_secs() / 60),
            });
            item.found.action_needed = Some(format!(
                "check it and run agentless audit --delete again: {}",
                delete_command(region, &item.found.id, &item.detail)
            ));
        } else {
            cx.done(&mut items[n]);
        }
    }
}

/// The instances of `ids` that are not yet `terminated` (absent ones are gone).
async fn alive_instances<C: Cloud>(
    guard: &Guard<C>,
    region: &Region,
    ids: &[InstanceId],
    policy: &retry::RetryPolicy,
) -> Result<BTreeSet<InstanceId>, CloudError> {
    let mut alive = BTreeSet::new();
    for chunk in ids.chunks(list::ID_FILTER_CHUNK) {
        let filters = vec![Filter::new("instance-id", chunk.iter().map(ToString::to_string))];
        let found =
            list::pages(policy, "DescribeInstances", region, filters, |i: DescribeInput<InstanceId>| async move {
                guard.describe_instances(region, &i).await
            })
            .await?;
        alive.extend(found.into_iter().filter(|i| i.state != InstanceState::Terminated).map(|i| i.id));
    }
    Ok(alive)
}

/// After the instances: a leaked volume that is gone went with its instance; one still there
/// outlived it and cannot be deleted under the policy.
async fn settle_volumes<C: Cloud>(cx: &mut Ctx<'_, '_, C>, items: &mut [Item], idx: &[usize]) {
    let (guard, region, policy) = (cx.guard, cx.region, cx.opts.retry);
    let ids: Vec<String> = idx.iter().map(|&n| items[n].found.id.to_stored()).collect();
    let mut present = BTreeSet::new();
    for chunk in ids.chunks(list::ID_FILTER_CHUNK) {
        let filters = vec![Filter::new("volume-id", chunk.iter().cloned())];
        match list::pages(
            &policy,
            "DescribeVolumes",
            region,
            filters,
            |i: DescribeInput<crate::cloud::VolumeId>| async move { guard.describe_volumes(region, &i).await },
        )
        .await
        {
            Ok(found) => {
                present.extend(found.into_iter().filter(|v| v.state != VolumeState::Deleted).map(|v| v.id.to_string()));
            }
            Err(e) => {
                for &n in idx {
                    items[n].found.error = Some(format!("could not check whether it went with its instance: {e}"));
                }
                return;
            }
        }
    }
    for &n in idx {
        if present.contains(&items[n].found.id.to_stored()) {
            let item = &mut items[n];
            item.found.class = Class::Stuck;
            item.found.action_needed = Some(format!(
                "it did not go with its instance (no DeleteOnTermination, or the instance was not deleted) and the \
                 policy has no ec2:DeleteVolume; remove it with other credentials: {}",
                delete_command(region, &item.found.id, &item.detail)
            ));
        } else {
            cx.done(&mut items[n]);
        }
    }
}

/// Delete the endpoints at `idx` in batches, then wait (bounded) until they are gone.
async fn delete_endpoints<C: Cloud>(cx: &mut Ctx<'_, '_, C>, items: &mut [Item], idx: &[usize]) {
    let (guard, region, policy) = (cx.guard, cx.region, cx.opts.retry);
    let mut accepted = Vec::new();
    for chunk in idx.chunks(ENDPOINT_BATCH) {
        let batch: Vec<(usize, crate::cloud::VpcEndpointId)> = chunk
            .iter()
            .filter_map(|&n| match &items[n].found.id {
                ResourceId::VpcEndpoint(id) => Some((n, id.clone())),
                ResourceId::Snapshot(_)
                | ResourceId::Volume(_)
                | ResourceId::Instance(_)
                | ResourceId::Vpc(_)
                | ResourceId::Subnet(_)
                | ResourceId::InternetGateway(_)
                | ResourceId::RouteTable(_)
                | ResourceId::SecurityGroup(_)
                | ResourceId::NetworkInterface(_)
                | ResourceId::Image(_)
                | ResourceId::KmsGrant { .. } => None,
            })
            .collect();
        let input = DeleteVpcEndpointsInput { endpoints: batch.iter().map(|(n, id)| tagged(id, &items[*n])).collect() };
        match retry::call(&policy, || guard.delete_vpc_endpoints(region, &input)).await {
            Ok(out) => {
                for (n, id) in batch {
                    match out.unsuccessful.iter().find(|(u, _)| *u == id) {
                        Some((_, code)) if code.contains("NotFound") => cx.done(&mut items[n]),
                        Some((_, code)) => {
                            let e = CloudError::aws(
                                "DeleteVpcEndpoints",
                                Some(region.clone()),
                                code.clone(),
                                format!("the endpoint could not be deleted ({code})"),
                                None,
                                None,
                                vec![id.to_string()],
                            );
                            failed(&mut items[n], &e);
                        }
                        None => {
                            accepted.push(id);
                            cx.done(&mut items[n]);
                        }
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                for (n, _) in batch {
                    cx.done(&mut items[n]);
                }
            }
            Err(e) => {
                for (n, _) in batch {
                    failed(&mut items[n], &e);
                }
            }
        }
    }
    if accepted.is_empty() {
        return;
    }
    // Wait until they are no longer listed (or `deleted`); failures here only shorten the wait:
    // the security group and subnet deletes retry on DependencyViolation anyway.
    let deadline = tokio::time::Instant::now() + ENDPOINT_WAIT;
    let mut delay = POLL_MIN;
    loop {
        // By ids, not the `vpc-endpoint-id` filter (moto lacks it); a NotFound means gone.
        let input = DescribeInput::ids(accepted.clone());
        let listed = list::pages_of(&policy, "DescribeVpcEndpoints", region, input, |i| async move {
            guard.describe_vpc_endpoints(region, &i).await
        })
        .await;
        let gone = match listed {
            Ok(found) => found.iter().all(|e| e.state.eq_ignore_ascii_case("deleted")),
            Err(_) => true,
        };
        if gone || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
    }
}

/// Detach the gateway at `n` from every VPC it is attached to, then delete it.
async fn delete_gateway<C: Cloud>(cx: &mut Ctx<'_, '_, C>, items: &[Item], n: usize) -> Result<(), CloudError> {
    let (guard, region, policy) = (cx.guard, cx.region, cx.opts.retry);
    let item = &items[n];
    let ResourceId::InternetGateway(id) = &item.found.id else { return Ok(()) };
    let igw = tagged(id, item);
    let attached: Vec<VpcId> = match &item.detail {
        Detail::InternetGateway { attached_vpcs } => attached_vpcs.clone(),
        Detail::Instance { .. }
        | Detail::Volume { .. }
        | Detail::Snapshot { .. }
        | Detail::InVpc { .. }
        | Detail::Plain => Vec::new(),
    };
    for vpc in attached {
        let tags = vpc_tags(guard, region, items, &vpc, &policy).await?;
        let input = DetachInternetGatewayInput { internet_gateway: igw.clone(), vpc: Tagged::new(vpc, tags) };
        let input = &input;
        let detach = move || async move {
            match guard.detach_internet_gateway(region, input).await {
                // Already detached (EC2 `Gateway.NotAttached`): nothing to do.
                Err(e) if e.code() == Some("Gateway.NotAttached") => Ok(Empty),
                other => other,
            }
        };
        match retry::call(&policy, detach).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let input = DeleteInternetGatewayInput { internet_gateway: igw };
    retry::call(&policy, || guard.delete_internet_gateway(region, &input)).await.map(|_| ())
}

/// The tags of a VPC: from the audit's own findings, else a Describe (a VPC that is not ours has
/// none of our tags, and the guard then refuses the detach, naming it).
async fn vpc_tags<C: Cloud>(
    guard: &Guard<C>,
    region: &Region,
    items: &[Item],
    vpc: &VpcId,
    policy: &retry::RetryPolicy,
) -> Result<Tags, CloudError> {
    let wanted = ResourceId::Vpc(vpc.clone());
    if let Some(i) = items.iter().find(|i| &i.found.region == region && i.found.id == wanted) {
        return Ok(i.found.tags.clone());
    }
    let filters = vec![Filter::new("vpc-id", [vpc.to_string()])];
    let found = list::pages(policy, "DescribeVpcs", region, filters, |i: DescribeInput<VpcId>| async move {
        guard.describe_vpcs(region, &i).await
    })
    .await?;
    Ok(found.into_iter().next().map(|v| v.tags).unwrap_or_default())
}
