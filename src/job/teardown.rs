//! `TearingDown`: removes everything the job created, always (after success, failure or
//! cancellation), idempotently (a resumed teardown finds what is already gone as `NotFound`), in
//! dependency order (DESIGN.md, "A scan job"): terminate scanners and wait until they are
//! terminated (their volumes go with `DeleteOnTermination`, their ENIs with them), VPC endpoints,
//! security group, subnet, detach and delete the internet gateway, VPC, snapshots, then revoke
//! the KMS grants. `DependencyViolation`, `IncorrectState` and throttling are retried with
//! jittered backoff ([`super::retry`]); every call goes through the policy guard.
//!
//! What is removed is the union of the job's document, the ledger's live rows and a sweep by the
//! `agentless:job` tag (and by `ClientToken` for scanners), so resources whose create response
//! was lost are removed too. Whatever cannot be removed is listed in the document's `leaked`
//! (the job then ends `Failed`) for the leak auditor.

use std::collections::{BTreeMap, BTreeSet};

use super::JobError;
use super::retry::{Retry, retry};
use super::runner::Job;
use crate::cloud::ops::{
    DeleteInternetGatewayInput, DeleteSecurityGroupInput, DeleteSnapshotInput, DeleteSubnetInput,
    DeleteVpcEndpointsInput, DeleteVpcInput, DescribeInput, DetachInternetGatewayInput, Filter, InstanceState,
    ListGrantsInput, RevokeGrantInput, Tagged, TerminateInstancesInput,
};
use crate::cloud::tags::{self, Role, Tags};
use crate::cloud::{
    Cloud, CloudError, ErrorKind, GrantId, InstanceId, InternetGatewayId, KmsKeyId, SecurityGroupId, SnapshotId,
    SubnetId, VpcEndpointId, VpcId,
};
use crate::ledger::{JobState, ResourceId, ResourceKind};

/// Instances terminated per call (EC2 accepts 1,000 ids; 100 keeps one call's blast radius small).
const TERMINATE_BATCH: usize = 100;

/// Polls of the scanners' state while waiting for termination (at the poll interval; AWS takes
/// seconds to a few minutes to terminate an instance).
const TERMINATE_POLLS: usize = 120;

fn gone<T>(r: Result<T, CloudError>) -> Result<(), CloudError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl<C: Cloud> Job<'_, C> {
    fn job_filter(&self) -> Filter {
        Filter::tag(tags::JOB, [self.id.as_str()])
    }

    /// Live ledger rows of `kind` for this job.
    fn live(&self, kind: ResourceKind) -> Result<Vec<ResourceId>, JobError> {
        Ok(self
            .r
            .lock()
            .live_resources(&self.id)
            .map_err(self.lerr())?
            .into_iter()
            .filter(|r| r.kind == kind)
            .filter_map(|r| r.id)
            .collect())
    }

    fn deleted(&mut self, id: &ResourceId) -> Result<(), JobError> {
        self.r.lock().record_deleted(&self.region, id).map_err(self.lerr())?;
        Ok(())
    }

    fn leak(&mut self, what: String, e: &CloudError) {
        tracing::error!(job = %self.id, resource = %what, error = %e, "could not remove; left for the leak auditor");
        self.doc.leaked.push(format!("{what}: {e}"));
    }

    /// `TearingDown`.
    pub(super) async fn teardown(&mut self) -> Result<(), JobError> {
        self.doc.leaked.clear();
        self.terminate_scanners().await?;
        self.crash_point(JobState::TearingDown);
        self.delete_network().await?;
        self.delete_snapshots().await?;
        self.revoke_grants().await?;
        // Intents whose resource never appeared, even to the sweeps above.
        let open = self.r.lock().unresolved_intents(&self.id).map_err(self.lerr())?;
        for row in open {
            self.r.lock().record_not_created(row.intent).map_err(self.lerr())?;
        }
        self.save()?;
        self.r.progress.step(&self.id, "teardown", 1, 1);
        Ok(())
    }

    async fn terminate_scanners(&mut self) -> Result<(), JobError> {
        // Their keys go with them: the collector takes no bundle from a scanner being terminated.
        for s in self.doc.scanners() {
            self.r.collector.forget_scanner(self.id.as_str(), &s.name);
        }
        let scanner_tags = self.role_tags(Role::SCANNER);
        let mut ids: BTreeMap<InstanceId, Tags> = BTreeMap::new();
        for s in self.doc.scanners() {
            if let Some(i) = &s.instance {
                ids.insert(i.clone(), scanner_tags.clone());
            }
        }
        for id in self.live(ResourceKind::Instance)? {
            if let ResourceId::Instance(i) = id {
                ids.entry(i).or_insert_with(|| scanner_tags.clone());
            }
        }
        // Sweep: by tag, and by the tokens of launches whose response never came.
        let mut sweeps = vec![vec![self.job_filter()]];
        let tokens: Vec<String> =
            self.doc.scanners().iter().filter(|s| s.instance.is_none()).map(|s| s.client_token.clone()).collect();
        if !tokens.is_empty() {
            sweeps.push(vec![Filter::new("client-token", tokens)]);
        }
        for filters in sweeps {
            let mut input = DescribeInput::filters(filters);
            loop {
                match retry(Retry::Transient, "DescribeInstances", || {
                    self.r.guard.describe_instances(&self.region, &input)
                })
                .await
                {
                    Ok(page) => {
                        for i in page.items {
                            if i.tags.get(tags::JOB) == Some(self.id.as_str())
                                && !matches!(i.state, InstanceState::Terminated)
                            {
                                ids.insert(i.id, i.tags);
                            }
                        }
                        match page.next_token {
                            Some(t) => input.next_token = Some(t),
                            None => break,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job = %self.id, error = %e, "scanner sweep failed; relying on the ledger");
                        break;
                    }
                }
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let all: Vec<(InstanceId, Tags)> = ids.into_iter().collect();
        let mut waiting: BTreeSet<InstanceId> = BTreeSet::new();
        for batch in all.chunks(TERMINATE_BATCH) {
            let input = TerminateInstancesInput {
                instances: batch.iter().map(|(i, t)| Tagged::new(i.clone(), t.clone())).collect(),
            };
            match retry(Retry::Teardown, "TerminateInstances", || {
                self.r.guard.terminate_instances(&self.region, &input)
            })
            .await
            {
                Ok(_) => waiting.extend(batch.iter().map(|(i, _)| i.clone())),
                // One unknown id fails the batch: one by one. An id unknown on its own is either
                // a scanner launched a moment ago whose id has not propagated yet (eventual
                // consistency: retried, `Retry::Fresh`) or one terminated over an hour ago and
                // purged (gone).
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    for (i, t) in batch {
                        let one = TerminateInstancesInput { instances: vec![Tagged::new(i.clone(), t.clone())] };
                        match retry(Retry::Fresh, "TerminateInstances", || {
                            self.r.guard.terminate_instances(&self.region, &one)
                        })
                        .await
                        {
                            Ok(_) => {
                                waiting.insert(i.clone());
                            }
                            Err(e) if e.kind() == ErrorKind::NotFound => {
                                self.deleted(&ResourceId::Instance(i.clone()))?;
                            }
                            Err(e) => self.leak(format!("scanner instance {i}"), &e),
                        }
                    }
                }
                Err(e) => {
                    for (i, _) in batch {
                        self.leak(format!("scanner instance {i}"), &e);
                    }
                }
            }
        }
        // Wait until terminated: the subnet and security group cannot go before.
        for _ in 0..TERMINATE_POLLS {
            if waiting.is_empty() {
                break;
            }
            let input = DescribeInput::ids(waiting.iter().cloned().collect());
            match retry(Retry::Transient, "DescribeInstances", || self.r.guard.describe_instances(&self.region, &input))
                .await
            {
                Ok(page) => {
                    let seen: BTreeMap<InstanceId, InstanceState> =
                        page.items.into_iter().map(|i| (i.id, i.state)).collect();
                    let done: Vec<InstanceId> = waiting
                        .iter()
                        .filter(|i| matches!(seen.get(*i), Some(InstanceState::Terminated) | None))
                        .cloned()
                        .collect();
                    for i in done {
                        waiting.remove(&i);
                        self.deleted(&ResourceId::Instance(i))?;
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    for i in std::mem::take(&mut waiting) {
                        self.deleted(&ResourceId::Instance(i))?;
                    }
                }
                Err(e) => tracing::warn!(job = %self.id, error = %e, "polling scanner termination"),
            }
            if !waiting.is_empty() {
                // Not interruptible: teardown finishes even when cancelled.
                tokio::time::sleep(self.r.settings.poll).await;
            }
        }
        for i in waiting {
            self.doc.leaked.push(format!("scanner instance {i}: still not terminated"));
        }
        self.save()
    }

    async fn delete_network(&mut self) -> Result<(), JobError> {
        let region = self.region.clone();
        let g = &self.r.guard;
        let jf = self.job_filter();

        // Endpoints.
        let mut endpoints: BTreeMap<VpcEndpointId, Tags> = BTreeMap::new();
        if let Some(e) = &self.doc.network.endpoint {
            endpoints.insert(e.clone(), self.role_tags(Role::VPC_ENDPOINT));
        }
        for id in self.live(ResourceKind::VpcEndpoint)? {
            if let ResourceId::VpcEndpoint(e) = id {
                endpoints.entry(e).or_insert_with(|| self.role_tags(Role::VPC_ENDPOINT));
            }
        }
        if let Ok(p) = retry(Retry::Transient, "DescribeVpcEndpoints", || async {
            g.describe_vpc_endpoints(&region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            for e in p.items.into_iter().filter(|e| e.state != "deleted") {
                endpoints.insert(e.id, e.tags);
            }
        }
        for (e, t) in endpoints {
            let input = DeleteVpcEndpointsInput { endpoints: vec![Tagged::new(e.clone(), t)] };
            match gone(retry(Retry::Teardown, "DeleteVpcEndpoints", || g.delete_vpc_endpoints(&region, &input)).await) {
                Ok(()) => self.deleted(&ResourceId::VpcEndpoint(e))?,
                Err(err) => self.leak(format!("VPC endpoint {e}"), &err),
            }
        }

        // Security groups.
        let mut groups: BTreeMap<SecurityGroupId, Tags> = BTreeMap::new();
        if let Some(s) = &self.doc.network.security_group {
            groups.insert(s.clone(), self.role_tags(Role::SECURITY_GROUP));
        }
        for id in self.live(ResourceKind::SecurityGroup)? {
            if let ResourceId::SecurityGroup(s) = id {
                groups.entry(s).or_insert_with(|| self.role_tags(Role::SECURITY_GROUP));
            }
        }
        if let Ok(p) = retry(Retry::Transient, "DescribeSecurityGroups", || async {
            g.describe_security_groups(&region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            for s in p.items {
                groups.insert(s.id, s.tags);
            }
        }
        for (s, t) in groups {
            let input = DeleteSecurityGroupInput { group: Tagged::new(s.clone(), t) };
            match gone(retry(Retry::Teardown, "DeleteSecurityGroup", || g.delete_security_group(&region, &input)).await)
            {
                Ok(()) => self.deleted(&ResourceId::SecurityGroup(s))?,
                Err(err) => self.leak(format!("security group {s}"), &err),
            }
        }

        // Subnets.
        let mut subnets: BTreeMap<SubnetId, Tags> = BTreeMap::new();
        if let Some(s) = &self.doc.network.subnet {
            subnets.insert(s.clone(), self.role_tags(Role::SUBNET));
        }
        for id in self.live(ResourceKind::Subnet)? {
            if let ResourceId::Subnet(s) = id {
                subnets.entry(s).or_insert_with(|| self.role_tags(Role::SUBNET));
            }
        }
        if let Ok(p) = retry(Retry::Transient, "DescribeSubnets", || async {
            g.describe_subnets(&region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            for s in p.items {
                subnets.insert(s.id, s.tags);
            }
        }
        for (s, t) in subnets {
            let input = DeleteSubnetInput { subnet: Tagged::new(s.clone(), t) };
            match gone(retry(Retry::Teardown, "DeleteSubnet", || g.delete_subnet(&region, &input)).await) {
                Ok(()) => self.deleted(&ResourceId::Subnet(s))?,
                Err(err) => self.leak(format!("subnet {s}"), &err),
            }
        }

        // VPCs known, for detaching gateways.
        let mut vpcs: BTreeMap<VpcId, Tags> = BTreeMap::new();
        if let Some(v) = &self.doc.network.vpc {
            vpcs.insert(v.clone(), self.role_tags(Role::VPC));
        }
        for id in self.live(ResourceKind::Vpc)? {
            if let ResourceId::Vpc(v) = id {
                vpcs.entry(v).or_insert_with(|| self.role_tags(Role::VPC));
            }
        }
        if let Ok(p) = retry(Retry::Transient, "DescribeVpcs", || async {
            g.describe_vpcs(&region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            for v in p.items {
                vpcs.insert(v.id, v.tags);
            }
        }

        // Internet gateways: detach from every VPC, then delete.
        let mut gateways: BTreeMap<InternetGatewayId, (Tags, Vec<VpcId>)> = BTreeMap::new();
        if let Some(i) = &self.doc.network.internet_gateway {
            let attached = self.doc.network.vpc.iter().cloned().collect();
            gateways.insert(i.clone(), (self.role_tags(Role::INTERNET_GATEWAY), attached));
        }
        for id in self.live(ResourceKind::InternetGateway)? {
            if let ResourceId::InternetGateway(i) = id {
                let attached = self.doc.network.vpc.iter().cloned().collect();
                gateways.entry(i).or_insert_with(|| (self.role_tags(Role::INTERNET_GATEWAY), attached));
            }
        }
        if let Ok(p) = retry(Retry::Transient, "DescribeInternetGateways", || async {
            g.describe_internet_gateways(&region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            for i in p.items {
                gateways.insert(i.id, (i.tags, i.attached_vpcs));
            }
        }
        for (i, (t, attached)) in gateways {
            let mut ok = true;
            for v in attached {
                let vt = vpcs.get(&v).cloned().unwrap_or_else(|| self.role_tags(Role::VPC));
                let input = DetachInternetGatewayInput {
                    internet_gateway: Tagged::new(i.clone(), t.clone()),
                    vpc: Tagged::new(v.clone(), vt),
                };
                let r = retry(Retry::Transient, "DetachInternetGateway", || g.detach_internet_gateway(&region, &input))
                    .await;
                match r {
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IncorrectState) => {}
                    Err(e) => {
                        ok = false;
                        self.leak(format!("internet gateway {i} (attached to {v})"), &e);
                    }
                }
            }
            if !ok {
                continue;
            }
            let input = DeleteInternetGatewayInput { internet_gateway: Tagged::new(i.clone(), t) };
            match gone(
                retry(Retry::Teardown, "DeleteInternetGateway", || g.delete_internet_gateway(&region, &input)).await,
            ) {
                Ok(()) => self.deleted(&ResourceId::InternetGateway(i))?,
                Err(err) => self.leak(format!("internet gateway {i}"), &err),
            }
        }

        // VPCs.
        for (v, t) in vpcs {
            let input = DeleteVpcInput { vpc: Tagged::new(v.clone(), t) };
            match gone(retry(Retry::Teardown, "DeleteVpc", || g.delete_vpc(&region, &input)).await) {
                Ok(()) => self.deleted(&ResourceId::Vpc(v))?,
                Err(err) => self.leak(format!("VPC {v}"), &err),
            }
        }
        self.save()
    }

    async fn delete_snapshots(&mut self) -> Result<(), JobError> {
        let mut snaps: BTreeMap<SnapshotId, Tags> = BTreeMap::new();
        for (_, v) in self.doc.volumes() {
            if let (Some(s), Some(t)) = (&v.snapshot, &v.snapshot_tags) {
                snaps.insert(s.clone(), t.clone());
            }
        }
        let ledger_rows: Vec<(SnapshotId, Tags)> = self
            .r
            .lock()
            .live_resources(&self.id)
            .map_err(self.lerr())?
            .into_iter()
            .filter_map(|r| match r.id {
                Some(ResourceId::Snapshot(s)) => Some((s, r.tags)),
                Some(_) | None => None,
            })
            .collect();
        for (s, t) in ledger_rows {
            snaps.entry(s).or_insert(t);
        }
        match self.find_snapshots(Vec::new()).await {
            Ok(found) => {
                for s in found {
                    snaps.insert(s.id, s.tags);
                }
            }
            Err(e) => tracing::warn!(job = %self.id, error = %e, "snapshot sweep failed; relying on the ledger"),
        }
        let total = snaps.len();
        for (n, (s, t)) in snaps.into_iter().enumerate() {
            let input = DeleteSnapshotInput { snapshot: Tagged::new(s.clone(), t) };
            match gone(
                retry(Retry::Teardown, "DeleteSnapshot", || self.r.guard.delete_snapshot(&self.region, &input)).await,
            ) {
                Ok(()) => self.deleted(&ResourceId::Snapshot(s))?,
                Err(err) => self.leak(format!("snapshot {s}"), &err),
            }
            self.r.progress.step(&self.id, "snapshots deleted", n + 1, total);
        }
        self.save()
    }

    async fn revoke_grants(&mut self) -> Result<(), JobError> {
        let name = tags::grant_name(&self.id);
        let mut grants: BTreeSet<(KmsKeyId, GrantId)> = BTreeSet::new();
        let mut keys: BTreeSet<KmsKeyId> = BTreeSet::new();
        for (_, v) in self.doc.volumes() {
            if v.customer_key
                && let Some(k) = &v.kms_key
            {
                keys.insert(k.clone());
                if let Some(g) = &v.grant {
                    grants.insert((k.clone(), g.clone()));
                }
            }
        }
        for id in self.live(ResourceKind::KmsGrant)? {
            if let ResourceId::KmsGrant { key, grant } = id {
                keys.insert(key.clone());
                grants.insert((key, grant));
            }
        }
        for key in keys {
            let mut input = ListGrantsInput { key: key.clone(), marker: None };
            loop {
                match retry(Retry::Transient, "ListGrants", || self.r.guard.list_grants(&self.region, &input)).await {
                    Ok(page) => {
                        for g in page.items.iter().filter(|g| g.name.as_deref() == Some(name.as_str())) {
                            grants.insert((key.clone(), g.grant_id.clone()));
                        }
                        match page.next_token {
                            Some(m) => input.marker = Some(m),
                            None => break,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job = %self.id, %key, error = %e, "grant sweep failed; relying on the ledger");
                        break;
                    }
                }
            }
        }
        for (key, grant) in grants {
            let input = RevokeGrantInput { key: key.clone(), grant_id: grant.clone(), grant_name: Some(name.clone()) };
            match gone(retry(Retry::Teardown, "RevokeGrant", || self.r.guard.revoke_grant(&self.region, &input)).await)
            {
                Ok(()) => self.deleted(&ResourceId::KmsGrant { key, grant })?,
                Err(err) => self.leak(format!("KMS grant {grant} on {key}"), &err),
            }
        }
        self.save()
    }
}
