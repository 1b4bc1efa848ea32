//! One teardown: removes a set of our resources in one Region, in dependency order, under one
//! retry policy ([`crate::cloud::retry`]), every call through the policy guard. The job's
//! `TearingDown` state ([`crate::job::teardown`]: its document, ledger rows and sweeps by its tag)
//! and `agentless audit --delete` ([`crate::audit::delete`]: the leaks the auditor classified) both
//! hand their resources here as [`Target`]s and get back, per resource, an [`Outcome`]: removed,
//! already gone, or why it could not be removed. Neither keeps a deletion path of its own, so a
//! new resource kind or a new AWS error is handled once, for both.
//!
//! The order ([`order`], docs/job.md "Teardown"): terminate the instances and wait until they are
//! `terminated` (their volumes go by `DeleteOnTermination`, their network interfaces with them),
//! check that their volumes went too (the policy has no `ec2:DeleteVolume`), delete the VPC
//! endpoints and wait until they are gone (their interfaces hold subnets and groups), the security
//! groups, the subnets, detach and delete the internet gateways, the VPCs (their main route table
//! goes with them), the snapshots, and revoke the KMS grants. A `NotFound` is "already gone".

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use crate::cloud::ops::{
    DeleteInternetGatewayInput, DeleteSecurityGroupInput, DeleteSnapshotInput, DeleteSubnetInput,
    DeleteVpcEndpointsInput, DeleteVpcInput, DescribeInput, DetachInternetGatewayInput, Empty, Filter, InstanceState,
    RevokeGrantInput, Tagged, TerminateInstancesInput, VolumeState,
};
use crate::cloud::retry::{Retry, RetryPolicy, retry_with};
use crate::cloud::{Cloud, CloudError, ErrorKind, Guard, InstanceId, Region, Tags, VolumeId, VpcEndpointId, VpcId};
use crate::ledger::{ResourceId, ResourceKind};

/// Instances per `TerminateInstances` call. EC2 takes up to 1,000 ids per call (EC2 API
/// Reference, `TerminateInstances`: "up to 1000 instance IDs"); 50 keeps one call's blast radius
/// small and one unknown id (which fails the whole call) cheap to isolate.
pub const TERMINATE_BATCH: usize = 50;
/// Endpoints per `DeleteVpcEndpoints` call. Its token bucket is the tightest of the flow (4,
/// refill 0.3/s: EC2 API Reference, "Request throttling"), so endpoints are deleted in batches;
/// INFERENCE: 25 (no documented limit on the ids of one call).
pub const ENDPOINT_BATCH: usize = 25;
/// At most this many ids in one id filter: EC2 refuses more than 200 filter values in one call
/// (`FilterLimitExceeded`); half leaves room for the other filters.
pub const ID_FILTER_CHUNK: usize = 100;
/// How long to wait for terminated instances to reach `terminated`. INFERENCE: instances shut
/// down within a few minutes (the simulated account takes 45 s); past 15 minutes something else
/// is wrong, and the outcome says so.
pub const INSTANCE_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long to wait for deleted endpoints to disappear before the security groups and subnets.
/// INFERENCE: interface endpoints take a few minutes to release their network interfaces.
pub const ENDPOINT_WAIT: Duration = Duration::from_secs(10 * 60);
/// Longest interval between two polls of those waits (on the 100-token Describe bucket).
pub const POLL_MAX: Duration = Duration::from_secs(15);

/// The position of a kind in the deletion order (also the auditor's report order in a Region).
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

/// One resource to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: ResourceId,
    /// Its tags as last seen (the guard decides on them).
    pub tags: Tags,
    /// Internet gateways: the VPCs it is attached to (detached first).
    pub attached_vpcs: Vec<VpcId>,
    /// KMS grants: the grant's name (`RevokeGrant` is confined by it).
    pub grant_name: Option<String>,
}

impl Target {
    #[must_use]
    pub fn new(id: ResourceId, tags: Tags) -> Target {
        Target { id, tags, attached_vpcs: Vec::new(), grant_name: None }
    }
}

/// What became of one [`Target`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The delete call succeeded (an instance: it reached `terminated`; a volume: it went with
    /// its instance).
    Removed,
    /// It was already gone (`NotFound`).
    Gone,
    /// The delete call failed for good, after the retries.
    Failed(CloudError),
    /// Termination was accepted but the instance was not `terminated` within [`INSTANCE_WAIT`]
    /// (or its state could not be read: the error).
    NotTerminated(Option<String>),
    /// A volume still there after its instance: no `DeleteOnTermination`, and the policy has no
    /// `ec2:DeleteVolume`.
    Outlived,
    /// Whether a volume went with its instance could not be checked.
    Unchecked(CloudError),
    /// No call removes this kind (network interfaces go with their instance, route tables with
    /// their VPC; images are never ours to deregister under the policy).
    Untouched,
}

impl Outcome {
    /// Removed or already gone.
    #[must_use]
    pub fn is_gone(&self) -> bool {
        matches!(self, Outcome::Removed | Outcome::Gone)
    }
}

/// How to remove.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub retry: RetryPolicy,
    /// The ids may have been created a moment ago (a job's own teardown): an instance id unknown
    /// on its own is retried while it propagates ([`Retry::Fresh`]) before it counts as gone.
    pub fresh_ids: bool,
    /// First interval of the waits' polls (doubling up to [`POLL_MAX`]).
    pub poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { retry: RetryPolicy::default(), fresh_ids: false, poll: Duration::from_secs(2) }
    }
}

/// Remove `targets` in `region` in dependency order; `on_outcome` hears each outcome as it is
/// known (for progress and the ledger). Returns every target with its outcome, in the order they
/// were settled.
pub async fn remove<C: Cloud, F>(
    guard: &Guard<C>,
    region: &Region,
    targets: Vec<Target>,
    opts: &Options,
    mut on_outcome: F,
) -> Vec<(Target, Outcome)>
where
    F: FnMut(&Target, &Outcome) + Send,
{
    let mut by_kind: BTreeMap<u8, Vec<Target>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for t in targets {
        if seen.insert(t.id.clone()) {
            by_kind.entry(order(t.id.kind())).or_default().push(t);
        }
    }
    let mut take = |kind: ResourceKind| by_kind.remove(&order(kind)).unwrap_or_default();
    let instances = take(ResourceKind::Instance);
    let volumes = take(ResourceKind::Volume);
    let endpoints = take(ResourceKind::VpcEndpoint);
    let groups = take(ResourceKind::SecurityGroup);
    let subnets = take(ResourceKind::Subnet);
    let gateways = take(ResourceKind::InternetGateway);
    let vpcs = take(ResourceKind::Vpc);
    let snapshots = take(ResourceKind::Snapshot);
    let grants = take(ResourceKind::KmsGrant);
    let rest: Vec<Target> = by_kind.into_values().flatten().collect();

    let r = Remover { guard, region, opts };
    let mut out = Vec::new();
    let mut settle = |t: Target, o: Outcome, out: &mut Vec<(Target, Outcome)>| {
        on_outcome(&t, &o);
        out.push((t, o));
    };
    for (t, o) in r.terminate(instances).await {
        settle(t, o, &mut out);
    }
    for (t, o) in r.settle_volumes(volumes).await {
        settle(t, o, &mut out);
    }
    for (t, o) in r.delete_endpoints(endpoints).await {
        settle(t, o, &mut out);
    }
    for t in groups {
        let o = match &t.id {
            ResourceId::SecurityGroup(id) => {
                let input = DeleteSecurityGroupInput { group: Tagged::new(id.clone(), t.tags.clone()) };
                r.outcome(r.call("DeleteSecurityGroup", || guard.delete_security_group(region, &input)).await)
            }
            _ => Outcome::Untouched,
        };
        settle(t, o, &mut out);
    }
    for t in subnets {
        let o = match &t.id {
            ResourceId::Subnet(id) => {
                let input = DeleteSubnetInput { subnet: Tagged::new(id.clone(), t.tags.clone()) };
                r.outcome(r.call("DeleteSubnet", || guard.delete_subnet(region, &input)).await)
            }
            _ => Outcome::Untouched,
        };
        settle(t, o, &mut out);
    }
    let vpc_tags: BTreeMap<VpcId, Tags> = vpcs
        .iter()
        .filter_map(|t| match &t.id {
            ResourceId::Vpc(v) => Some((v.clone(), t.tags.clone())),
            _ => None,
        })
        .collect();
    for t in gateways {
        let o = r.delete_gateway(&t, &vpc_tags).await;
        settle(t, o, &mut out);
    }
    for t in vpcs {
        let o = match &t.id {
            ResourceId::Vpc(id) => {
                let input = DeleteVpcInput { vpc: Tagged::new(id.clone(), t.tags.clone()) };
                r.outcome(r.call("DeleteVpc", || guard.delete_vpc(region, &input)).await)
            }
            _ => Outcome::Untouched,
        };
        settle(t, o, &mut out);
    }
    for t in snapshots {
        let o = match &t.id {
            ResourceId::Snapshot(id) => {
                let input = DeleteSnapshotInput { snapshot: Tagged::new(id.clone(), t.tags.clone()) };
                r.outcome(r.call("DeleteSnapshot", || guard.delete_snapshot(region, &input)).await)
            }
            _ => Outcome::Untouched,
        };
        settle(t, o, &mut out);
    }
    for t in grants {
        let o = match &t.id {
            ResourceId::KmsGrant { key, grant } => {
                let input =
                    RevokeGrantInput { key: key.clone(), grant_id: grant.clone(), grant_name: t.grant_name.clone() };
                r.outcome(r.call("RevokeGrant", || guard.revoke_grant(region, &input)).await)
            }
            _ => Outcome::Untouched,
        };
        settle(t, o, &mut out);
    }
    for t in rest {
        settle(t, Outcome::Untouched, &mut out);
    }
    out
}

struct Remover<'a, C: Cloud> {
    guard: &'a Guard<C>,
    region: &'a Region,
    opts: &'a Options,
}

impl<C: Cloud> Remover<'_, C> {
    /// One delete call under the teardown retry class (throttling, 5xx, `DependencyViolation`,
    /// `IncorrectState`).
    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        retry_with(&self.opts.retry, Retry::Teardown, what, f).await
    }

    fn outcome<T>(&self, r: Result<T, CloudError>) -> Outcome {
        match r {
            Ok(_) => Outcome::Removed,
            Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Gone,
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Sleep between polls, doubling up to [`POLL_MAX`].
    async fn pause(&self, delay: &mut Duration) {
        tokio::time::sleep(*delay).await;
        *delay = (*delay * 2).min(POLL_MAX.max(self.opts.poll));
    }

    /// Terminate, then wait until `terminated`.
    async fn terminate(&self, targets: Vec<Target>) -> Vec<(Target, Outcome)> {
        let (guard, region) = (self.guard, self.region);
        let mut out = Vec::new();
        let mut waiting: Vec<(Target, InstanceId)> = Vec::new();
        let mut batches: Vec<Vec<(Target, InstanceId)>> = Vec::new();
        for t in targets {
            match &t.id {
                ResourceId::Instance(id) => {
                    let id = id.clone();
                    match batches.last_mut() {
                        Some(b) if b.len() < TERMINATE_BATCH => b.push((t, id)),
                        _ => batches.push(vec![(t, id)]),
                    }
                }
                _ => out.push((t, Outcome::Untouched)),
            }
        }
        for batch in batches {
            let input = TerminateInstancesInput {
                instances: batch.iter().map(|(t, id)| Tagged::new(id.clone(), t.tags.clone())).collect(),
            };
            match self.call("TerminateInstances", || guard.terminate_instances(region, &input)).await {
                Ok(_) => waiting.extend(batch),
                // One unknown id fails the whole call: one call each. An id unknown on its own is
                // either one just launched whose id has not propagated (with `fresh_ids`: retried,
                // `Retry::Fresh`) or one terminated over an hour ago and purged (gone).
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let class = if self.opts.fresh_ids { Retry::Fresh } else { Retry::Teardown };
                    for (t, id) in batch {
                        let one = TerminateInstancesInput { instances: vec![Tagged::new(id.clone(), t.tags.clone())] };
                        match retry_with(&self.opts.retry, class, "TerminateInstances", || {
                            guard.terminate_instances(region, &one)
                        })
                        .await
                        {
                            Ok(_) => waiting.push((t, id)),
                            Err(e) if e.kind() == ErrorKind::NotFound => out.push((t, Outcome::Gone)),
                            Err(e) => out.push((t, Outcome::Failed(e))),
                        }
                    }
                }
                Err(e) => out.extend(batch.into_iter().map(|(t, _)| (t, Outcome::Failed(e.clone())))),
            }
        }
        if waiting.is_empty() {
            return out;
        }
        // Wait until terminated: the subnet and security group cannot go before.
        let ids: Vec<InstanceId> = waiting.iter().map(|(_, id)| id.clone()).collect();
        let deadline = tokio::time::Instant::now() + INSTANCE_WAIT;
        let mut delay = self.opts.poll;
        let mut last_error = None;
        let remaining = loop {
            match self.alive_instances(&ids).await {
                Ok(alive) if alive.is_empty() => break alive,
                Ok(alive) if tokio::time::Instant::now() >= deadline => break alive,
                Ok(_) => last_error = None,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    last_error = Some(e.to_string());
                    break ids.iter().cloned().collect();
                }
                Err(e) => last_error = Some(e.to_string()),
            }
            self.pause(&mut delay).await;
        };
        for (t, id) in waiting {
            let o = if remaining.contains(&id) { Outcome::NotTerminated(last_error.clone()) } else { Outcome::Removed };
            out.push((t, o));
        }
        out
    }

    /// The instances of `ids` not yet `terminated` (absent ones are gone).
    async fn alive_instances(&self, ids: &[InstanceId]) -> Result<BTreeSet<InstanceId>, CloudError> {
        let (guard, region) = (self.guard, self.region);
        let mut alive = BTreeSet::new();
        for chunk in ids.chunks(ID_FILTER_CHUNK) {
            let mut input =
                DescribeInput::filters(vec![Filter::new("instance-id", chunk.iter().map(ToString::to_string))]);
            loop {
                let page = self.call("DescribeInstances", || guard.describe_instances(region, &input)).await?;
                alive.extend(page.items.into_iter().filter(|i| i.state != InstanceState::Terminated).map(|i| i.id));
                match page.next_token {
                    Some(t) if !t.is_empty() && input.next_token.as_ref() != Some(&t) => input.next_token = Some(t),
                    Some(_) | None => break,
                }
            }
        }
        Ok(alive)
    }

    /// After the instances: a volume that is gone went with its instance; one still there outlived
    /// it and cannot be deleted under the policy.
    async fn settle_volumes(&self, targets: Vec<Target>) -> Vec<(Target, Outcome)> {
        let (guard, region) = (self.guard, self.region);
        let ids: Vec<VolumeId> = targets
            .iter()
            .filter_map(|t| match &t.id {
                ResourceId::Volume(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        let mut present = BTreeSet::new();
        for chunk in ids.chunks(ID_FILTER_CHUNK) {
            let mut input =
                DescribeInput::filters(vec![Filter::new("volume-id", chunk.iter().map(ToString::to_string))]);
            loop {
                match self.call("DescribeVolumes", || guard.describe_volumes(region, &input)).await {
                    Ok(page) => {
                        present
                            .extend(page.items.into_iter().filter(|v| v.state != VolumeState::Deleted).map(|v| v.id));
                        match page.next_token {
                            Some(t) if !t.is_empty() && input.next_token.as_ref() != Some(&t) => {
                                input.next_token = Some(t);
                            }
                            Some(_) | None => break,
                        }
                    }
                    Err(e) => return targets.into_iter().map(|t| (t, Outcome::Unchecked(e.clone()))).collect(),
                }
            }
        }
        targets
            .into_iter()
            .map(|t| {
                let o = match &t.id {
                    ResourceId::Volume(v) if present.contains(v) => Outcome::Outlived,
                    ResourceId::Volume(_) => Outcome::Removed,
                    _ => Outcome::Untouched,
                };
                (t, o)
            })
            .collect()
    }

    /// Delete endpoints in batches, then wait (bounded) until they are gone.
    async fn delete_endpoints(&self, targets: Vec<Target>) -> Vec<(Target, Outcome)> {
        let (guard, region) = (self.guard, self.region);
        let mut out = Vec::new();
        let mut accepted: Vec<VpcEndpointId> = Vec::new();
        let mut batches: Vec<Vec<(Target, VpcEndpointId)>> = Vec::new();
        for t in targets {
            match &t.id {
                ResourceId::VpcEndpoint(id) => {
                    let id = id.clone();
                    match batches.last_mut() {
                        Some(b) if b.len() < ENDPOINT_BATCH => b.push((t, id)),
                        _ => batches.push(vec![(t, id)]),
                    }
                }
                _ => out.push((t, Outcome::Untouched)),
            }
        }
        for batch in batches {
            let input = DeleteVpcEndpointsInput {
                endpoints: batch.iter().map(|(t, id)| Tagged::new(id.clone(), t.tags.clone())).collect(),
            };
            match self.call("DeleteVpcEndpoints", || guard.delete_vpc_endpoints(region, &input)).await {
                Ok(result) => {
                    for (t, id) in batch {
                        match result.unsuccessful.iter().find(|(u, _)| *u == id) {
                            Some((_, code)) if code.contains("NotFound") => out.push((t, Outcome::Gone)),
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
                                out.push((t, Outcome::Failed(e)));
                            }
                            None => {
                                accepted.push(id);
                                out.push((t, Outcome::Removed));
                            }
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    out.extend(batch.into_iter().map(|(t, _)| (t, Outcome::Gone)))
                }
                Err(e) => out.extend(batch.into_iter().map(|(t, _)| (t, Outcome::Failed(e.clone())))),
            }
        }
        if accepted.is_empty() {
            return out;
        }
        // Until they are no longer listed (or `deleted`); a failure here only shortens the wait:
        // the security group and subnet deletes retry on `DependencyViolation` anyway. By ids,
        // not the `vpc-endpoint-id` filter (moto lacks it); a `NotFound` means gone.
        let deadline = tokio::time::Instant::now() + ENDPOINT_WAIT;
        let mut delay = self.opts.poll;
        let input = DescribeInput::ids(accepted);
        loop {
            let gone = match self.call("DescribeVpcEndpoints", || guard.describe_vpc_endpoints(region, &input)).await {
                Ok(page) => page.items.iter().all(|e| e.state.eq_ignore_ascii_case("deleted")),
                Err(_) => true,
            };
            if gone || tokio::time::Instant::now() >= deadline {
                return out;
            }
            self.pause(&mut delay).await;
        }
    }

    /// Detach the gateway from every VPC it is attached to, then delete it.
    async fn delete_gateway(&self, t: &Target, vpc_tags: &BTreeMap<VpcId, Tags>) -> Outcome {
        let (guard, region) = (self.guard, self.region);
        let ResourceId::InternetGateway(id) = &t.id else { return Outcome::Untouched };
        let igw = Tagged::new(id.clone(), t.tags.clone());
        for vpc in &t.attached_vpcs {
            let tags = match vpc_tags.get(vpc) {
                Some(tags) => tags.clone(),
                None => match self.vpc_tags(vpc).await {
                    Ok(tags) => tags,
                    Err(e) => return Outcome::Failed(e),
                },
            };
            let input =
                DetachInternetGatewayInput { internet_gateway: igw.clone(), vpc: Tagged::new(vpc.clone(), tags) };
            let input = &input;
            let detach = move || async move {
                match guard.detach_internet_gateway(region, input).await {
                    // Already detached (EC2 `Gateway.NotAttached`): nothing to do.
                    Err(e) if e.code() == Some("Gateway.NotAttached") => Ok(Empty),
                    other => other,
                }
            };
            match retry_with(&self.opts.retry, Retry::Transient, "DetachInternetGateway", detach).await {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IncorrectState) => {}
                Err(e) => return Outcome::Failed(e),
            }
        }
        let input = DeleteInternetGatewayInput { internet_gateway: igw };
        self.outcome(self.call("DeleteInternetGateway", || guard.delete_internet_gateway(region, &input)).await)
    }

    /// The tags of a VPC not among the targets (a VPC that is not ours has none of our tags, and
    /// the guard then refuses the detach, naming it).
    async fn vpc_tags(&self, vpc: &VpcId) -> Result<Tags, CloudError> {
        let (guard, region) = (self.guard, self.region);
        let input = DescribeInput::filters(vec![Filter::new("vpc-id", [vpc.to_string()])]);
        let page = self.call("DescribeVpcs", || guard.describe_vpcs(region, &input)).await?;
        Ok(page.items.into_iter().next().map(|v| v.tags).unwrap_or_default())
    }
}
