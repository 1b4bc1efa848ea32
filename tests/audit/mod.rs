//! The leak auditor (`agentless::audit`). On the simulated account ([`sim`]): every kind
//! classified (active, leaked, foreign, stuck) and the leaks deleted in dependency order through
//! the guard and recorded in the ledger, the grace period and expiry, a killed scan cleaned up
//! from a reopened account; bad input ([`bad_input`]): a customer resource with our Name prefix,
//! throttling during the listing, a Region that is not enabled, a missing or damaged ledger; the
//! table and JSON ([`output`]); and against moto over HTTP ([`moto`]).
//!
//! The leaks are made the way a job makes its resources: through the guard with the bundled
//! policy, tagged in the create call, each recorded in the ledger (intent, then id). What no job
//! would do — a foreign resource, a Name tag removed — is done with `SimCloud::setup`, the
//! customer's own hand.

mod bad_input;
mod moto;
mod output;
mod sim;

use std::time::Duration;

use agentless::audit::{self, AuditOptions, AuditReport, Class, Found};
use agentless::cloud::ops::*;
use agentless::cloud::sim::SimCloud;
use agentless::cloud::sim::state::World;
use agentless::cloud::tags::{self, Role, SnapshotSource};
use agentless::cloud::{
    Cloud, GrantId, Guard, GuardRules, ImageId, InstanceId, InternetGatewayId, JobId, KmsKeyId, Region,
    SecurityGroupId, SnapshotId, SubnetId, Tags, VolumeId, VpcEndpointId, VpcId,
};
use agentless::ledger::{JobState, Ledger, ResourceId, ResourceKind};
use jiff::Timestamp;

use crate::conformance::{ScanNetwork, east, scan_network, some_image, wait_snapshots};
use crate::sim::{SimFixture, account, customer};
use crate::util::{self, named_ours, on_sim_clock, open_ledger, policies, sim_guard_with, sim_now};

/// The sim behind a guard with the bundled policy.
pub fn guard(sim: &SimCloud, include_foreign: bool) -> Guard<SimCloud> {
    sim_guard_with(sim, policies(&[]), GuardRules { include_foreign })
}

/// An in-memory ledger stamping with the sim's clock.
pub fn memory_ledger(sim: &SimCloud) -> Ledger {
    on_sim_clock(sim, Ledger::open_in_memory().expect("ledger"))
}

pub fn job_id(s: &str) -> JobId {
    s.parse().expect("job id")
}

/// Move `job` from `Planned` to `to` through allowed transitions.
pub fn drive(ledger: &mut Ledger, job: &JobId, to: JobState) {
    let mut at = ledger.job_state(job).expect("state").expect("job");
    while at != to {
        let next = at.next().unwrap_or(to);
        ledger.transition(job, next).expect("transition");
        at = next;
    }
}

/// Record a created resource of `job` (intent, then id), as a job does.
pub fn record(ledger: &mut Ledger, job: &JobId, region: &Region, id: ResourceId, tags: &Tags) {
    let intent = ledger.record_intent(job, id.kind(), region, None, tags).expect("intent");
    ledger.record_created(intent, &id).expect("created");
}

/// Audit options at the sim's now: a dry run, or with `delete`.
pub fn opts(sim: &SimCloud, delete: bool) -> AuditOptions {
    AuditOptions { delete, ..AuditOptions::new(sim_now(sim)) }
}

/// Run the audit of us-east-1.
pub async fn run(g: &Guard<SimCloud>, ledger: Option<&mut Ledger>, opts: &AuditOptions) -> AuditReport {
    audit::audit(g, ledger, None, &[east()], opts).await.expect("audit")
}

/// The report's entry for `id`.
pub fn entry<'a>(r: &'a AuditReport, id: &str) -> &'a Found {
    r.resources.iter().find(|f| f.id.to_stored() == id || f.id.to_stored().ends_with(&format!("#{id}"))).unwrap_or_else(
        || panic!("{id} not in the report: {:#?}", r.resources.iter().map(|f| f.id.to_stored()).collect::<Vec<_>>()),
    )
}

/// Assert the class of each id.
pub fn assert_classes(r: &AuditReport, want: &[(&str, Class)]) {
    for (id, class) in want {
        let f = entry(r, id);
        assert_eq!(f.class, *class, "{id}: {f:#?}");
    }
}

/// Everything one job left behind in us-east-1.
#[derive(Debug, Clone)]
pub struct Leftovers {
    pub job: JobId,
    pub instance: InstanceId,
    /// The scanner's volumes (root and data), tagged by RunInstances, gone with it.
    pub scanner_volumes: Vec<VolumeId>,
    pub snapshot: SnapshotId,
    pub vpc: VpcId,
    pub subnet: SubnetId,
    pub igw: InternetGatewayId,
    pub sg: SecurityGroupId,
    pub endpoint: VpcEndpointId,
    pub key: KmsKeyId,
    pub grant: GrantId,
}

impl Leftovers {
    /// Every id, as the report shows them (a grant by its grant id).
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.scanner_volumes.iter().map(ToString::to_string).collect();
        ids.extend([
            self.instance.to_string(),
            self.snapshot.to_string(),
            self.vpc.to_string(),
            self.subnet.to_string(),
            self.igw.to_string(),
            self.sg.to_string(),
            self.endpoint.to_string(),
            self.grant.to_string(),
        ]);
        ids
    }
}

/// The customer's side a job needs: the target instance (one volume), a customer managed key,
/// and a public image to launch the scanner from.
#[derive(Debug, Clone)]
pub struct Customer {
    pub target: InstanceId,
    pub key: KmsKeyId,
    pub image: Tagged<ImageId>,
}

/// The customer's side in the simulated account (made with `setup`).
pub async fn sim_customer(sim: &SimCloud, g: &Guard<SimCloud>) -> Customer {
    let target = sim.setup(|s| s.instance(&customer("customer-prod-db", &[8]))).expect("customer instance");
    let key = sim.setup(|s| s.key(&east(), "customer key")).expect("key");
    let image = some_image(&SimFixture { sim: sim.clone() }, g, &east()).await;
    Customer { target, key, image: Tagged::new(image.id, image.tags) }
}

/// [`leave_job_with`] on the simulated account.
pub async fn leave_job(
    sim: &SimCloud,
    g: &Guard<SimCloud>,
    ledger: Option<&mut Ledger>,
    job: &JobId,
    expires: Timestamp,
) -> Leftovers {
    let customer = sim_customer(sim, g).await;
    leave_job_with(g, ledger, job, expires, &customer).await
}

/// What a scan job killed mid-`Scanning` leaves in us-east-1: a snapshot of the customer's
/// volume, a KMS grant on the customer's key, the network (VPC, subnet, attached gateway,
/// security group, interface endpoint) and a scanner with the snapshot attached — all made
/// through the guard, tagged for `job` with `expires`, and, with a ledger, recorded in it under
/// the job (created in state `Planned`).
pub async fn leave_job_with<C: Cloud>(
    g: &Guard<C>,
    mut ledger: Option<&mut Ledger>,
    job: &JobId,
    expires: Timestamp,
    customer: &Customer,
) -> Leftovers {
    let r = east();
    let target = customer.target.clone();
    let key = customer.key.clone();
    let scope = g.policy().scope();
    let grantee = format!("arn:aws:iam::{}:user/{}", scope.account, scope.caller_user.as_deref().unwrap_or("scanner"));
    if let Some(l) = ledger.as_deref_mut() {
        l.create_job(job, &g.policy().scope().account, &r, std::slice::from_ref(&target)).expect("job");
    }
    let mut rec = |id: ResourceId, tags: &Tags| {
        if let Some(l) = ledger.as_deref_mut() {
            record(l, job, &r, id, tags);
        }
    };
    let described = g.describe_instances(&r, &DescribeInput::ids(vec![target.clone()])).await.expect("target");
    let volume = described.items[0].volumes[0].volume_id.clone();
    let snap_tags = tags::snapshot_tags(job, SnapshotSource::Volume { instance: &target, volume: &volume }, expires);
    let snapshot = g
        .create_snapshot(
            &r,
            &CreateSnapshotInput {
                volume: Tagged::new(volume.clone(), Tags::new()),
                description: "agentless".into(),
                tags: snap_tags.clone(),
            },
        )
        .await
        .expect("snapshot")
        .snapshot_id;
    rec(ResourceId::Snapshot(snapshot.clone()), &snap_tags);
    wait_snapshots(g, &r, &g.policy().scope().account, std::slice::from_ref(&snapshot)).await;

    let grant = g
        .create_grant(
            &r,
            &CreateGrantInput {
                key: key.clone(),
                grantee_principal: grantee.clone(),
                operations: vec![GrantOperation::Decrypt, GrantOperation::DescribeKey],
                ebs_id: EbsId::Volume(volume.clone()),
                name: tags::grant_name(job),
            },
        )
        .await
        .expect("grant")
        .grant_id;
    rec(ResourceId::KmsGrant { key: key.clone(), grant: grant.clone() }, &Tags::new());

    let t = |role: Role<'_>| tags::resource_tags(job, Some(role), expires);
    let net = scan_network(g, t, &format!("{job}-sg")).await;
    rec(ResourceId::Vpc(net.vpc.id.clone()), &t(Role::VPC));
    rec(ResourceId::Subnet(net.subnet.id.clone()), &t(Role::SUBNET));
    rec(ResourceId::InternetGateway(net.igw.id.clone()), &t(Role::INTERNET_GATEWAY));
    rec(ResourceId::SecurityGroup(net.sg.id.clone()), &t(Role::SECURITY_GROUP));
    rec(ResourceId::VpcEndpoint(net.endpoint.id.clone()), &t(Role::VPC_ENDPOINT));
    let instance = g
        .run_scanner(
            &r,
            &RunScannerInput {
                image: customer.image.clone(),
                root: None,
                instance_type: "m5.xlarge".into(),
                subnet: net.subnet.clone(),
                security_groups: vec![net.sg.clone()],
                volumes: vec![ScannerVolume {
                    device_name: "/dev/sdf".into(),
                    snapshot: Tagged::new(snapshot.clone(), snap_tags),
                    kms_key: None,
                }],
                user_data_base64: String::new(),
                client_token: format!("{job}-scanner-1"),
                instance_tags: t(Role::SCANNER),
                volume_tags: t(Role::SCANNER),
                network_interface_tags: t(Role::SCANNER),
            },
        )
        .await
        .expect("scanner")
        .instance_id;
    rec(ResourceId::Instance(instance.clone()), &t(Role::SCANNER));
    let described = g.describe_instances(&r, &DescribeInput::ids(vec![instance.clone()])).await.expect("scanner");
    let scanner_volumes: Vec<VolumeId> = described.items[0].volumes.iter().map(|v| v.volume_id.clone()).collect();
    let ScanNetwork { vpc, subnet, igw, sg, endpoint } = net;
    Leftovers {
        job: job.clone(),
        instance,
        scanner_volumes,
        snapshot,
        vpc: vpc.id,
        subnet: subnet.id,
        igw: igw.id,
        sg: sg.id,
        endpoint: endpoint.id,
        key,
        grant,
    }
}

/// Change a resource's tags in us-east-1 with the customer's own hand (`setup`): `edit` gets the
/// world's region.
pub fn retag(sim: &SimCloud, edit: impl FnOnce(&mut agentless::cloud::sim::state::RegionState)) {
    sim.setup(|s| {
        let w: &mut World = s.world();
        edit(w.accounts.get_mut(&account()).expect("account").regions.get_mut(&east()).expect("region"));
        Ok(())
    })
    .expect("setup");
}

/// `tags` without `key`.
pub fn without(tags: &Tags, key: &str) -> Tags {
    Tags::from_pairs(tags.iter().filter(|t| t.key != key).map(|t| (t.key.clone(), t.value.clone()))).expect("tags")
}

/// Let virtual time pass (the tests run on tokio's paused clock).
pub async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
}

/// The resources of ours still in us-east-1 of `sim` (terminated instances excluded), as the
/// conformance suite counts them.
pub fn ours_left(sim: &SimCloud) -> Vec<String> {
    util::ours_left(sim, Some(&east()), named_ours)
}

/// `kind` ids of the ledger's live rows of `job`.
pub fn live(ledger: &Ledger, job: &JobId) -> Vec<(ResourceKind, String)> {
    ledger
        .live_resources(job)
        .expect("live")
        .into_iter()
        .map(|r| (r.kind, r.id.map(|i| i.to_stored()).unwrap_or_default()))
        .collect()
}
