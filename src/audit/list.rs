//! Listing one Region: every kind the auditor knows, with filtered, paginated Describe calls
//! (each page retried on throttling and 5xx), then the KMS grants on the keys our jobs used.
//!
//! Three passes per EC2 kind, merged by id:
//! 1. `tag:Name` = `SAS_Agentless*`, `alibaba-cloud-security-scan*` — ours and foreign ones;
//! 2. `tag-key` = `agentless:job` — ours whose `Name` was removed or changed;
//! 3. with a ledger, `<kind>-id` = the ledger's live ids of that kind in the Region — ours
//!    stripped of every tag.
//!
//! Instances are listed in every state but `terminated` (`shutting-down` included: its subnet is
//! not free yet); endpoints and volumes in every state but `deleted`; snapshots in every state.

use std::collections::BTreeMap;
use std::future::Future;

use super::ledger_view::LedgerState;
use crate::cloud::ops::*;
use crate::cloud::retry::{Retry, RetryPolicy, retry_with};
use crate::cloud::tags::{JOB, NAME, RESOURCE_NAME_PREFIX, SNAPSHOT_NAME_PREFIX};
use crate::cloud::{AccountId, Cloud, CloudError, ErrorKind, Guard, InstanceId, KmsKeyId, Region, Tags, VpcId};
use crate::ledger::{ResourceId, ResourceKind};

/// Page size of every Describe. EC2 takes 5 to 1000 for most paginated Describes but at most 500
/// for `DescribeVolumes` (EC2 API Reference, `MaxResults` of each action); one value for all.
pub const PAGE_SIZE: u32 = 500;
/// At most this many ids in one id filter (the teardown's constant, where its source is given).
pub use crate::teardown::ID_FILTER_CHUNK;
/// A listing that has not ended after this many pages is refused (a backend that keeps handing
/// out tokens): 1000 pages of [`PAGE_SIZE`] is far beyond any account's quotas.
pub const MAX_PAGES: usize = 1000;

/// The instance states listed (every state but `terminated`; EC2 `instance-state-name` values).
const INSTANCE_STATES: [&str; 5] = ["pending", "running", "shutting-down", "stopping", "stopped"];

/// What the auditor needs of a resource beyond its id and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// Its attached volumes (which go with it when `delete_on_termination`).
    Instance { volumes: Vec<AttachedVolume> },
    /// The instances it is attached to.
    Volume { attached_to: Vec<InstanceId> },
    /// Its KMS key (whose grants are listed).
    Snapshot { kms_key: Option<KmsKeyId> },
    /// The VPCs it is attached to (detached before it is deleted).
    InternetGateway { attached_vpcs: Vec<VpcId> },
    /// The VPC it belongs to.
    InVpc { vpc: Option<VpcId> },
    /// Nothing more.
    Plain,
}

/// One resource as listed, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub kind: ResourceKind,
    pub region: Region,
    pub id: ResourceId,
    /// Its tags (none for a grant).
    pub tags: Tags,
    /// A grant's name.
    pub grant_name: Option<String>,
    /// Its state as AWS reports it.
    pub state: Option<String>,
    pub detail: Detail,
}

/// A Region's listing, or the grants': what was found and what part of it failed.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub items: Vec<Listed>,
    pub errors: Vec<String>,
}

fn name_filter() -> Filter {
    Filter::tag(NAME, [format!("{SNAPSHOT_NAME_PREFIX}*"), format!("{RESOURCE_NAME_PREFIX}*")])
}

fn job_filter() -> Filter {
    Filter::new("tag-key", [JOB])
}

/// Every page of one Describe filtered by `filters`.
pub(crate) async fn pages<Id, T, F, Fut>(
    retry: &RetryPolicy,
    operation: &'static str,
    region: &Region,
    filters: Vec<Filter>,
    describe: F,
) -> Result<Vec<T>, CloudError>
where
    Id: Clone,
    F: FnMut(DescribeInput<Id>) -> Fut,
    Fut: Future<Output = Result<Page<T>, CloudError>>,
{
    let input = DescribeInput { filters, max_results: Some(PAGE_SIZE), ..DescribeInput::default() };
    pages_of(retry, operation, region, input, describe).await
}

/// Every page of one Describe, from `input`.
pub(crate) async fn pages_of<Id, T, F, Fut>(
    retry: &RetryPolicy,
    operation: &'static str,
    region: &Region,
    mut input: DescribeInput<Id>,
    mut describe: F,
) -> Result<Vec<T>, CloudError>
where
    Id: Clone,
    F: FnMut(DescribeInput<Id>) -> Fut,
    Fut: Future<Output = Result<Page<T>, CloudError>>,
{
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = retry_with(retry, Retry::Teardown, operation, || describe(input.clone())).await?;
        out.extend(page.items);
        match page.next_token {
            Some(t) if !t.is_empty() && input.next_token.as_ref() != Some(&t) => input.next_token = Some(t),
            Some(_) | None => return Ok(out),
        }
    }
    Err(CloudError::local(
        operation,
        Some(region.clone()),
        ErrorKind::Other,
        format!("the listing did not end after {MAX_PAGES} pages"),
        Vec::new(),
    ))
}

/// Where a listing runs.
struct At<'a> {
    retry: &'a RetryPolicy,
    region: &'a Region,
    ledger: &'a LedgerState,
}

/// One kind's Describe: its operation name, kind, and the name of its id filter — `None` where
/// moto lacks it (`vpc-endpoint-id`: `FilterNotImplementedError`), and the ids are then asked
/// for one at a time by id, a `NotFound` meaning gone.
struct Spec {
    operation: &'static str,
    kind: ResourceKind,
    id_filter: Option<&'static str>,
}

/// The three passes of one kind (see the module documentation), merged by id.
async fn passes<Id, T, F, Fut>(
    at: &At<'_>,
    spec: Spec,
    extra: &[Filter],
    mut describe: F,
    id_of: impl Fn(&T) -> String,
) -> Result<Vec<T>, CloudError>
where
    Id: Clone + std::str::FromStr,
    F: FnMut(DescribeInput<Id>) -> Fut,
    Fut: Future<Output = Result<Page<T>, CloudError>>,
{
    let Spec { operation, kind, id_filter } = spec;
    let (retry, region, ledger) = (at.retry, at.region, at.ledger);
    let with = |f: Filter| {
        let mut v = vec![f];
        v.extend_from_slice(extra);
        v
    };
    let mut runs = vec![with(name_filter()), with(job_filter())];
    let live: Vec<String> = ledger.live(region, kind).iter().map(ResourceId::to_stored).collect();
    if let Some(id_filter) = id_filter {
        runs.extend(live.chunks(ID_FILTER_CHUNK).map(|ids| with(Filter::new(id_filter, ids.iter().cloned()))));
    }
    let mut merged: BTreeMap<String, T> = BTreeMap::new();
    for filters in runs {
        for item in pages(retry, operation, region, filters, &mut describe).await? {
            merged.insert(id_of(&item), item);
        }
    }
    if id_filter.is_none() {
        for id in live.iter().filter_map(|s| s.parse::<Id>().ok()) {
            let input = DescribeInput { ids: vec![id], filters: extra.to_vec(), ..DescribeInput::default() };
            match pages_of(retry, operation, region, input, &mut describe).await {
                Ok(items) => merged.extend(items.into_iter().map(|item| (id_of(&item), item))),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(merged.into_values().collect())
}

fn instance_state(s: &InstanceState) -> String {
    match s {
        InstanceState::Pending => "pending".into(),
        InstanceState::Running => "running".into(),
        InstanceState::ShuttingDown => "shutting-down".into(),
        InstanceState::Terminated => "terminated".into(),
        InstanceState::Stopping => "stopping".into(),
        InstanceState::Stopped => "stopped".into(),
        InstanceState::Unknown(s) => s.clone(),
    }
}

fn volume_state(s: &VolumeState) -> String {
    match s {
        VolumeState::Creating => "creating".into(),
        VolumeState::Available => "available".into(),
        VolumeState::InUse => "in-use".into(),
        VolumeState::Deleting => "deleting".into(),
        VolumeState::Deleted => "deleted".into(),
        VolumeState::Error => "error".into(),
        VolumeState::Unknown(s) => s.clone(),
    }
}

/// `pending`, `completed`, `error`...
#[must_use]
pub fn snapshot_state(s: &SnapshotState) -> String {
    match s {
        SnapshotState::Pending => "pending".into(),
        SnapshotState::Completed => "completed".into(),
        SnapshotState::Error => "error".into(),
        SnapshotState::Recoverable => "recoverable".into(),
        SnapshotState::Recovering => "recovering".into(),
        SnapshotState::Unknown(s) => s.clone(),
    }
}

fn listed(
    kind: ResourceKind,
    region: &Region,
    id: ResourceId,
    tags: Tags,
    state: Option<String>,
    detail: Detail,
) -> Listed {
    Listed { kind, region: region.clone(), id, tags, grant_name: None, state, detail }
}

/// Every resource of ours (and foreign ones with our names) in `region`, grants excluded.
///
/// # Errors
///
/// The first Describe that still fails after its retries: the Region's listing is then
/// incomplete, and nothing of it may be deleted.
pub async fn list_region<C: Cloud>(
    guard: &Guard<C>,
    region: &Region,
    account: &AccountId,
    ledger: &LedgerState,
    retry: &RetryPolicy,
) -> Result<Listing, CloudError> {
    let r = region;
    let at = At { retry, region, ledger };
    let mut items = Vec::new();
    let states = [Filter::new("instance-state-name", INSTANCE_STATES)];

    let instances = passes(
        &at,
        Spec { operation: "DescribeInstances", kind: ResourceKind::Instance, id_filter: Some("instance-id") },
        &states,
        |i| async move { guard.describe_instances(r, &i).await },
        |i: &InstanceInfo| i.id.to_string(),
    )
    .await?;
    for i in instances.into_iter().filter(|i| i.state != InstanceState::Terminated) {
        let state = Some(instance_state(&i.state));
        items.push(listed(
            ResourceKind::Instance,
            r,
            ResourceId::Instance(i.id),
            i.tags,
            state,
            Detail::Instance { volumes: i.volumes },
        ));
    }

    let volumes = passes(
        &at,
        Spec { operation: "DescribeVolumes", kind: ResourceKind::Volume, id_filter: Some("volume-id") },
        &[],
        |i| async move { guard.describe_volumes(r, &i).await },
        |v: &VolumeInfo| v.id.to_string(),
    )
    .await?;
    for v in volumes.into_iter().filter(|v| v.state != VolumeState::Deleted) {
        let state = Some(volume_state(&v.state));
        let attached_to = v.attachments.into_iter().map(|(i, _)| i).collect();
        items.push(listed(
            ResourceKind::Volume,
            r,
            ResourceId::Volume(v.id),
            v.tags,
            state,
            Detail::Volume { attached_to },
        ));
    }

    let snapshots = passes(
        &at,
        Spec { operation: "DescribeSnapshots", kind: ResourceKind::Snapshot, id_filter: Some("snapshot-id") },
        &[],
        |describe| async move {
            guard.describe_snapshots(r, &DescribeSnapshotsInput { owner: account.clone(), describe }).await
        },
        |s: &SnapshotInfo| s.id.to_string(),
    )
    .await?;
    for s in snapshots {
        let state = Some(snapshot_state(&s.state));
        items.push(listed(
            ResourceKind::Snapshot,
            r,
            ResourceId::Snapshot(s.id),
            s.tags,
            state,
            Detail::Snapshot { kms_key: s.kms_key_id },
        ));
    }

    let endpoints = passes(
        &at,
        Spec { operation: "DescribeVpcEndpoints", kind: ResourceKind::VpcEndpoint, id_filter: None },
        &[],
        |i| async move { guard.describe_vpc_endpoints(r, &i).await },
        |e: &VpcEndpointInfo| e.id.to_string(),
    )
    .await?;
    for e in endpoints.into_iter().filter(|e| !e.state.eq_ignore_ascii_case("deleted")) {
        items.push(listed(
            ResourceKind::VpcEndpoint,
            r,
            ResourceId::VpcEndpoint(e.id),
            e.tags,
            Some(e.state),
            Detail::InVpc { vpc: Some(e.vpc_id) },
        ));
    }

    let groups = passes(
        &at,
        Spec { operation: "DescribeSecurityGroups", kind: ResourceKind::SecurityGroup, id_filter: Some("group-id") },
        &[],
        |i| async move { guard.describe_security_groups(r, &i).await },
        |g: &SecurityGroupInfo| g.id.to_string(),
    )
    .await?;
    for g in groups {
        items.push(listed(
            ResourceKind::SecurityGroup,
            r,
            ResourceId::SecurityGroup(g.id),
            g.tags,
            None,
            Detail::InVpc { vpc: g.vpc_id },
        ));
    }

    let subnets = passes(
        &at,
        Spec { operation: "DescribeSubnets", kind: ResourceKind::Subnet, id_filter: Some("subnet-id") },
        &[],
        |i| async move { guard.describe_subnets(r, &i).await },
        |s: &SubnetInfo| s.id.to_string(),
    )
    .await?;
    for s in subnets {
        items.push(listed(
            ResourceKind::Subnet,
            r,
            ResourceId::Subnet(s.id),
            s.tags,
            Some(s.state),
            Detail::InVpc { vpc: Some(s.vpc_id) },
        ));
    }

    let gateways = passes(
        &at,
        Spec {
            operation: "DescribeInternetGateways",
            kind: ResourceKind::InternetGateway,
            id_filter: Some("internet-gateway-id"),
        },
        &[],
        |i| async move { guard.describe_internet_gateways(r, &i).await },
        |g: &InternetGatewayInfo| g.id.to_string(),
    )
    .await?;
    for g in gateways {
        items.push(listed(
            ResourceKind::InternetGateway,
            r,
            ResourceId::InternetGateway(g.id),
            g.tags,
            None,
            Detail::InternetGateway { attached_vpcs: g.attached_vpcs },
        ));
    }

    let vpcs = passes(
        &at,
        Spec { operation: "DescribeVpcs", kind: ResourceKind::Vpc, id_filter: Some("vpc-id") },
        &[],
        |i| async move { guard.describe_vpcs(r, &i).await },
        |v: &VpcInfo| v.id.to_string(),
    )
    .await?;
    for v in vpcs {
        items.push(listed(ResourceKind::Vpc, r, ResourceId::Vpc(v.id), v.tags, Some(v.state), Detail::Plain));
    }
    Ok(Listing { items, errors: Vec::new() })
}

/// The grants named with our prefix (or known to the ledger) on the keys our jobs used in the
/// audited Regions: the ledger's grant keys and the keys of the snapshots found. AWS managed keys
/// (`aws/ebs`) are skipped: we never grant on them.
pub async fn list_grants<C: Cloud>(
    guard: &Guard<C>,
    regions: &[Region],
    found: &[Listed],
    ledger: &LedgerState,
    retry: &RetryPolicy,
) -> Listing {
    let mut out = Listing::default();
    for region in regions {
        let mut keys: BTreeMap<String, KmsKeyId> = BTreeMap::new();
        for k in ledger.grant_keys(region) {
            keys.entry(k.key_id().to_owned()).or_insert(k);
        }
        for l in found.iter().filter(|l| &l.region == region) {
            if let Detail::Snapshot { kms_key: Some(k) } = &l.detail {
                keys.entry(k.key_id().to_owned()).or_insert_with(|| k.clone());
            }
        }
        for key in keys.into_values() {
            let describe = DescribeKeyInput { key: key.clone() };
            match retry_with(retry, Retry::Teardown, "DescribeKey", || guard.describe_key(region, &describe)).await {
                Ok(info) => match info.manager {
                    KeyManager::Aws => continue,
                    KeyManager::Customer => {}
                },
                // The key is gone, and its grants with it.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                // Try ListGrants anyway: it says more about what is wrong.
                Err(_) => {}
            }
            match grants_of(guard, region, &key, retry).await {
                Ok(grants) => {
                    for g in grants {
                        let ours = g.name.as_deref().is_some_and(|n| n.starts_with(RESOURCE_NAME_PREFIX));
                        let id = ResourceId::KmsGrant { key: key.clone(), grant: g.grant_id };
                        if ours || ledger.resource(region, &id).is_some() {
                            out.items.push(Listed {
                                kind: ResourceKind::KmsGrant,
                                region: region.clone(),
                                id,
                                tags: Tags::new(),
                                grant_name: g.name,
                                state: None,
                                detail: Detail::Plain,
                            });
                        }
                    }
                }
                Err(e) => out.errors.push(format!("cannot list the grants of KMS key {key} in {region}: {e}")),
            }
        }
    }
    out
}

/// Every page of `ListGrants` of one key.
async fn grants_of<C: Cloud>(
    guard: &Guard<C>,
    region: &Region,
    key: &KmsKeyId,
    retry: &RetryPolicy,
) -> Result<Vec<GrantInfo>, CloudError> {
    let mut input = ListGrantsInput { key: key.clone(), marker: None };
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = retry_with(retry, Retry::Teardown, "ListGrants", || guard.list_grants(region, &input)).await?;
        out.extend(page.items);
        match page.next_token {
            Some(t) if !t.is_empty() && input.marker.as_ref() != Some(&t) => input.marker = Some(t),
            Some(_) | None => return Ok(out),
        }
    }
    Err(CloudError::local(
        "ListGrants",
        Some(region.clone()),
        ErrorKind::Other,
        format!("the grants of {key} did not end after {MAX_PAGES} pages"),
        vec![key.to_string()],
    ))
}
