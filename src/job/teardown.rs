//! `TearingDown`: removes everything the job created, always (after success, failure or
//! cancellation), idempotently (a resumed teardown finds what is already gone as `NotFound`).
//! This module decides *what* is the job's; the one teardown engine ([`crate::teardown`], shared
//! with `agentless audit --delete`) removes it in dependency order under the one retry policy.
//!
//! What is removed is the union of the job's document, the ledger's live rows and a sweep by the
//! `agentless:job` tag (and by `ClientToken` for scanners), so resources whose create response
//! was lost are removed too. The scanners go first (a separate call to the engine, so a crash
//! between them and the rest is a resume point), then the network, snapshots and grants, swept
//! after the scanners are gone. Whatever cannot be removed is listed in the document's `leaked`
//! (the job then ends `Failed`) for the leak auditor.

use std::collections::BTreeMap;

use super::JobError;
use super::runner::Job;
use crate::cloud::ops::{DescribeInput, Filter, InstanceState, ListGrantsInput};
use crate::cloud::retry::{Retry, retry};
use crate::cloud::tags::{self, Role, Tags};
use crate::cloud::{Cloud, VpcId};
use crate::ledger::{JobState, ResourceId, ResourceKind};
use crate::teardown::{self, Outcome, Target};

impl<C: Cloud> Job<'_, C> {
    fn job_filter(&self) -> Filter {
        Filter::tag(tags::JOB, [self.id.as_str()])
    }

    /// Live ledger rows of this job, with the tags they were created with.
    fn live_rows(&self) -> Result<Vec<(ResourceId, Tags)>, JobError> {
        Ok(self
            .r
            .lock()
            .live_resources(&self.id)
            .map_err(self.lerr())?
            .into_iter()
            .filter_map(|r| r.id.map(|id| (id, r.tags)))
            .collect())
    }

    /// The tags a resource of this job of `kind` was created with (when neither the ledger nor a
    /// sweep gave them).
    fn tags_for(&self, kind: ResourceKind) -> Tags {
        match kind {
            ResourceKind::Instance | ResourceKind::Volume | ResourceKind::NetworkInterface => {
                self.role_tags(Role::SCANNER)
            }
            ResourceKind::VpcEndpoint => self.role_tags(Role::VPC_ENDPOINT),
            ResourceKind::SecurityGroup => self.role_tags(Role::SECURITY_GROUP),
            ResourceKind::Subnet => self.role_tags(Role::SUBNET),
            ResourceKind::InternetGateway => self.role_tags(Role::INTERNET_GATEWAY),
            ResourceKind::Vpc | ResourceKind::RouteTable => self.role_tags(Role::VPC),
            ResourceKind::Snapshot | ResourceKind::Image | ResourceKind::KmsGrant => Tags::new(),
        }
    }

    /// `TearingDown`.
    pub(super) async fn teardown(&mut self) -> Result<(), JobError> {
        self.doc.leaked.clear();
        // Their keys go with them: the collector takes no bundle from a scanner being terminated.
        for s in self.doc.scanners() {
            self.r.collector.forget_scanner(self.id.as_str(), &s.name);
        }
        let scanners = self.scanner_targets().await?;
        self.remove(scanners).await?;
        self.crash_point(JobState::TearingDown);
        let mut rest = self.network_targets().await?;
        rest.extend(self.snapshot_targets().await?);
        rest.extend(self.grant_targets().await?);
        self.remove(rest).await?;
        // Intents whose resource never appeared, even to the sweeps above.
        let open = self.r.lock().unresolved_intents(&self.id).map_err(self.lerr())?;
        for row in open {
            self.r.lock().record_not_created(row.intent).map_err(self.lerr())?;
        }
        self.save()?;
        self.r.progress.step(&self.id, "teardown", 1, 1);
        Ok(())
    }

    /// Hand `targets` to the engine; record what went in the ledger and what stayed in `leaked`.
    async fn remove(&mut self, targets: Vec<Target>) -> Result<(), JobError> {
        if targets.is_empty() {
            return Ok(());
        }
        let opts = teardown::Options { fresh_ids: true, poll: self.r.settings.poll, ..teardown::Options::default() };
        let snapshots = targets.iter().filter(|t| t.id.kind() == ResourceKind::Snapshot).count();
        let mut deleted_snapshots = 0;
        let (job, progress) = (&self.id, &self.r.progress);
        let results = teardown::remove(&self.r.guard, &self.region, targets, &opts, |t, _| {
            if t.id.kind() == ResourceKind::Snapshot {
                deleted_snapshots += 1;
                progress.step(job, "snapshots deleted", deleted_snapshots, snapshots);
            }
        })
        .await;
        for (t, outcome) in results {
            let what = format!("{} {}", t.id.kind(), t.id);
            match outcome {
                Outcome::Removed | Outcome::Gone => {
                    self.r.lock().record_deleted(&self.region, &t.id).map_err(self.lerr())?;
                }
                Outcome::Failed(e) | Outcome::Unchecked(e) => {
                    tracing::error!(resource = %what, error = %e, "could not remove; left for the leak auditor");
                    self.doc.leaked.push(format!("{what}: {e}"));
                }
                Outcome::NotTerminated(error) => {
                    let why = error.map_or_else(
                        || "still not terminated".to_owned(),
                        |e| format!("its state could not be read: {e}"),
                    );
                    tracing::error!(resource = %what, %why, "not terminated; left for the leak auditor");
                    self.doc.leaked.push(format!("{what}: {why}"));
                }
                Outcome::Outlived => self.doc.leaked.push(format!("{what}: outlived its instance")),
                Outcome::Untouched => self.doc.leaked.push(format!("{what}: no call of ours removes it")),
            }
        }
        self.save()
    }

    /// The scanners: the document's, the ledger's, and a sweep by tag and by the tokens of
    /// launches whose response never came.
    async fn scanner_targets(&self) -> Result<Vec<Target>, JobError> {
        let mut ids: BTreeMap<ResourceId, Tags> = BTreeMap::new();
        for s in self.doc.scanners() {
            if let Some(i) = &s.instance {
                ids.insert(ResourceId::Instance(i.clone()), self.role_tags(Role::SCANNER));
            }
        }
        for (id, _) in self.live_rows()? {
            if id.kind() == ResourceKind::Instance {
                ids.entry(id).or_insert_with(|| self.role_tags(Role::SCANNER));
            }
        }
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
                                ids.insert(ResourceId::Instance(i.id), i.tags);
                            }
                        }
                        match page.next_token {
                            Some(t) => input.next_token = Some(t),
                            None => break,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "scanner sweep failed; relying on the ledger");
                        break;
                    }
                }
            }
        }
        Ok(ids.into_iter().map(|(id, t)| Target::new(id, t)).collect())
    }

    /// Endpoints, security groups, subnets, internet gateways (with the VPCs they are attached
    /// to) and VPCs: the document's, the ledger's and a sweep by the job's tag.
    async fn network_targets(&self) -> Result<Vec<Target>, JobError> {
        let (g, region, jf) = (&self.r.guard, &self.region, self.job_filter());
        let mut found: BTreeMap<ResourceId, Tags> = BTreeMap::new();
        let n = &self.doc.network;
        let from_doc = [
            n.endpoint.clone().map(ResourceId::VpcEndpoint),
            n.security_group.clone().map(ResourceId::SecurityGroup),
            n.subnet.clone().map(ResourceId::Subnet),
            n.internet_gateway.clone().map(ResourceId::InternetGateway),
            n.vpc.clone().map(ResourceId::Vpc),
        ];
        for id in from_doc.into_iter().flatten() {
            let t = self.tags_for(id.kind());
            found.insert(id, t);
        }
        for (id, _) in self.live_rows()? {
            if matches!(
                id.kind(),
                ResourceKind::VpcEndpoint
                    | ResourceKind::SecurityGroup
                    | ResourceKind::Subnet
                    | ResourceKind::InternetGateway
                    | ResourceKind::Vpc
            ) {
                let t = self.tags_for(id.kind());
                found.entry(id).or_insert(t);
            }
        }
        let warn = |what: &str, e: &crate::cloud::CloudError| {
            tracing::warn!(error = %e, "{what} sweep failed; relying on the ledger and the document");
        };
        match retry(Retry::Transient, "DescribeVpcEndpoints", || async {
            g.describe_vpc_endpoints(region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            Ok(p) => found.extend(
                p.items.into_iter().filter(|e| e.state != "deleted").map(|e| (ResourceId::VpcEndpoint(e.id), e.tags)),
            ),
            Err(e) => warn("VPC endpoint", &e),
        }
        match retry(Retry::Transient, "DescribeSecurityGroups", || async {
            g.describe_security_groups(region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            Ok(p) => found.extend(p.items.into_iter().map(|s| (ResourceId::SecurityGroup(s.id), s.tags))),
            Err(e) => warn("security group", &e),
        }
        match retry(Retry::Transient, "DescribeSubnets", || async {
            g.describe_subnets(region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            Ok(p) => found.extend(p.items.into_iter().map(|s| (ResourceId::Subnet(s.id), s.tags))),
            Err(e) => warn("subnet", &e),
        }
        match retry(Retry::Transient, "DescribeVpcs", || async {
            g.describe_vpcs(region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            Ok(p) => found.extend(p.items.into_iter().map(|v| (ResourceId::Vpc(v.id), v.tags))),
            Err(e) => warn("VPC", &e),
        }
        // Gateways: attached to what a Describe says, else to the job's VPC.
        let mut attached: BTreeMap<ResourceId, Vec<VpcId>> = BTreeMap::new();
        match retry(Retry::Transient, "DescribeInternetGateways", || async {
            g.describe_internet_gateways(region, &DescribeInput::filters(vec![jf.clone()])).await
        })
        .await
        {
            Ok(p) => {
                for i in p.items {
                    let id = ResourceId::InternetGateway(i.id);
                    attached.insert(id.clone(), i.attached_vpcs);
                    found.insert(id, i.tags);
                }
            }
            Err(e) => warn("internet gateway", &e),
        }
        let job_vpc: Vec<VpcId> = self.doc.network.vpc.iter().cloned().collect();
        Ok(found
            .into_iter()
            .map(|(id, tags)| {
                let mut target = Target::new(id.clone(), tags);
                if id.kind() == ResourceKind::InternetGateway {
                    target.attached_vpcs = attached.remove(&id).unwrap_or_else(|| job_vpc.clone());
                }
                target
            })
            .collect())
    }

    /// Snapshots (and copies): the document's, the ledger's and a sweep by the job's tag.
    async fn snapshot_targets(&self) -> Result<Vec<Target>, JobError> {
        let mut snaps: BTreeMap<ResourceId, Tags> = BTreeMap::new();
        for (_, v) in self.doc.volumes() {
            if let (Some(s), Some(t)) = (&v.snapshot, &v.snapshot_tags) {
                snaps.insert(ResourceId::Snapshot(s.clone()), t.clone());
            }
        }
        for (id, t) in self.live_rows()? {
            if id.kind() == ResourceKind::Snapshot {
                snaps.entry(id).or_insert(t);
            }
        }
        match self.find_snapshots(Vec::new()).await {
            Ok(found) => snaps.extend(found.into_iter().map(|s| (ResourceId::Snapshot(s.id), s.tags))),
            Err(e) => tracing::warn!(error = %e, "snapshot sweep failed; relying on the ledger"),
        }
        Ok(snaps.into_iter().map(|(id, t)| Target::new(id, t)).collect())
    }

    /// The KMS grants named for this job: the document's, the ledger's, and those `ListGrants`
    /// finds by name on the keys the job used.
    async fn grant_targets(&self) -> Result<Vec<Target>, JobError> {
        let name = tags::grant_name(&self.id);
        let mut grants: BTreeMap<ResourceId, ()> = BTreeMap::new();
        let mut keys = std::collections::BTreeSet::new();
        for (_, v) in self.doc.volumes() {
            if v.customer_key
                && let Some(k) = &v.kms_key
            {
                keys.insert(k.clone());
                if let Some(g) = &v.grant {
                    grants.insert(ResourceId::KmsGrant { key: k.clone(), grant: g.clone() }, ());
                }
            }
        }
        for (id, _) in self.live_rows()? {
            if let ResourceId::KmsGrant { key, .. } = &id {
                keys.insert(key.clone());
                grants.insert(id, ());
            }
        }
        for key in keys {
            let mut input = ListGrantsInput { key: key.clone(), marker: None };
            loop {
                match retry(Retry::Transient, "ListGrants", || self.r.guard.list_grants(&self.region, &input)).await {
                    Ok(page) => {
                        for g in page.items.iter().filter(|g| g.name.as_deref() == Some(name.as_str())) {
                            grants.insert(ResourceId::KmsGrant { key: key.clone(), grant: g.grant_id.clone() }, ());
                        }
                        match page.next_token {
                            Some(m) => input.marker = Some(m),
                            None => break,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "grant sweep failed; relying on the ledger");
                        break;
                    }
                }
            }
        }
        Ok(grants
            .into_keys()
            .map(|id| Target { grant_name: Some(name.clone()), ..Target::new(id, Tags::new()) })
            .collect())
    }
}
