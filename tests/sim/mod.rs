//! The simulated account (`agentless::cloud::sim`): the conformance suite of `tests/conformance.rs`
//! on it (the same scenarios moto runs, under a paused tokio clock so its snapshot and boot
//! latencies pass instantly), then what only the sim models: quotas ([`quotas`]), token buckets,
//! IAM conditions on the sim's own state, dependency order, latencies, DeleteOnTermination,
//! persistence and the fleet file ([`semantics`]), injected faults and eventual consistency
//! ([`faults`]), the demo fleet and its compressed disk images ([`demo`]), and the lifecycle index
//! across reloads of the data directory ([`index`]).

mod demo;
mod faults;
mod index;
mod quotas;
mod semantics;
mod trail;

use std::collections::BTreeMap;

use agentless::cloud::ops::{CreateSnapshotInput, RunScannerInput, ScannerVolume, Tagged};
use agentless::cloud::sim::fleet::{FleetInstance, FleetVolume, StartState};
use agentless::cloud::sim::state::{EniOwner, World};
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::tags::{self, Role, SnapshotSource, Tags};
use agentless::cloud::{
    AccountId, Guard, GuardRules, ImageId, InstanceId, KmsKeyId, Region, SnapshotId, SubnetId, VolumeId,
};
use agentless::policy::Policy;

use crate::conformance::{self, Fixture, ScannerSettings, east, expires, job, ours, some_image, west};
pub use crate::util::policies;
use crate::util::{named_ours, ours_left, sim_guard_with};

/// The sim's account (any 12 digits; not moto's, to show nothing depends on it).
pub const ACCOUNT: &str = "444455556666";
/// The IAM user of the fleet's account (the fleet file's default).
pub const USER: &str = "agentless-scanner";

/// An allow-everything identity policy: a guard configured this permissively still cannot make
/// the sim do what its own policies deny.
pub const ALLOW_ALL: &str =
    r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;

pub fn account() -> AccountId {
    ACCOUNT.parse().expect("account")
}

/// One account in us-east-1 and us-west-2, nothing in it yet.
pub fn fleet() -> Fleet {
    Fleet::empty(account(), vec![east(), west()])
}

/// `sim` behind a guard with `guard_policies`.
pub fn guard_over(sim: &SimCloud, guard_policies: Vec<Policy>) -> Guard<SimCloud> {
    sim_guard_with(sim, guard_policies, GuardRules::default())
}

/// A customer instance spec: `Name=<name>` and volumes of these sizes (the first is the root).
pub fn customer(name: &str, sizes: &[u32]) -> FleetInstance {
    FleetInstance {
        region: east(),
        zone: 'a',
        instance_type: "t3.micro".into(),
        state: StartState::Running,
        tags: BTreeMap::from([("Name".to_owned(), name.to_owned())]),
        volumes: sizes
            .iter()
            .map(|s| FleetVolume {
                device: None,
                size_gib: *s,
                used_gib: None,
                volume_type: "gp3".into(),
                encrypted: false,
                kms_key: None,
                image: None,
                delete_on_termination: true,
            })
            .collect(),
    }
}

/// The tags of a snapshot of `volume` of `instance` taken by the test job.
pub fn snap_tags(instance: &InstanceId, volume: &VolumeId) -> Tags {
    tags::snapshot_tags(&job(), SnapshotSource::Volume { instance, volume }, expires())
}

/// Snapshot `volume` of `instance` in us-east-1 through `g`, as the test job does ([`snap_tags`]).
pub async fn snapshot_ours(
    g: &Guard<SimCloud>,
    instance: &InstanceId,
    volume: &VolumeId,
    description: &str,
) -> SnapshotId {
    g.create_snapshot(
        &east(),
        &CreateSnapshotInput {
            volume: Tagged::new(volume.clone(), Tags::new()),
            description: description.into(),
            tags: snap_tags(instance, volume),
        },
    )
    .await
    .expect("snapshot")
    .snapshot_id
}

/// The volume attached `i`-th to `instance` in us-east-1 (0: its root).
pub fn volume_of(sim: &SimCloud, instance: &InstanceId, i: usize) -> VolumeId {
    sim.inspect(|w| w.accounts[&account()].regions[&east()].instances[instance].attachments[i].volume_id.clone())
}

/// The default subnet of us-east-1a.
pub fn subnet_a(sim: &SimCloud) -> SubnetId {
    sim.inspect(|w| {
        w.accounts[&account()].regions[&east()]
            .subnets
            .iter()
            .find(|(_, s)| s.availability_zone == "us-east-1a")
            .map(|(id, _)| id.clone())
    })
    .expect("default subnet")
}

/// A scanner launch as the test job makes it: an m5.xlarge from the fixture's Amazon image in
/// [`subnet_a`], with `volumes`, tagged as ours, client token `token`.
pub async fn scanner_launch(
    fx: &SimFixture,
    g: &Guard<SimCloud>,
    token: &str,
    volumes: Vec<ScannerVolume>,
) -> RunScannerInput {
    let image = some_image(fx, g, &east()).await;
    RunScannerInput {
        image: Tagged::new(image.id, image.tags),
        root: None,
        instance_type: "m5.xlarge".into(),
        subnet: Tagged::new(subnet_a(&fx.sim), ours(Role::SUBNET)),
        security_groups: Vec::new(),
        volumes,
        user_data_base64: String::new(),
        client_token: token.into(),
        instance_tags: ours(Role::SCANNER),
        volume_tags: ours(Role::SCANNER),
        network_interface_tags: ours(Role::SCANNER),
    }
}

/// The simulated account as a conformance backend.
pub struct SimFixture {
    pub sim: SimCloud,
}

impl SimFixture {
    pub fn new() -> SimFixture {
        SimFixture { sim: SimCloud::in_memory(&fleet()).expect("sim") }
    }

    fn world<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        self.sim.inspect(f)
    }
}

impl Fixture for SimFixture {
    type Backend = SimCloud;

    fn account(&self) -> AccountId {
        account()
    }

    fn caller_user(&self) -> String {
        USER.into()
    }

    async fn guard_with(&self, _region: &Region, extra: &[&str]) -> Guard<SimCloud> {
        let p = policies(extra);
        guard_over(&self.sim.with_policies(p.clone()), p)
    }

    async fn amazon_image(&self, region: &Region) -> ImageId {
        self.world(|w| {
            w.accounts[&account()].regions[region]
                .images
                .iter()
                .find(|(_, i)| i.owner_alias.as_deref() == Some("amazon") && i.architecture == "x86_64")
                .map(|(id, _)| id.clone())
                .expect("an Amazon image")
        })
    }

    async fn customer_instance(&self, _image: &ImageId) -> InstanceId {
        self.sim.setup(|s| s.instance(&customer("customer-prod-db", &[8]))).expect("customer instance")
    }

    async fn customer_key(&self, region: &Region) -> KmsKeyId {
        self.sim.setup(|s| s.key(region, "customer key")).expect("key")
    }

    async fn leftovers(&self, region: &Region) -> Vec<String> {
        ours_left(&self.sim, Some(region), named_ours)
    }

    async fn snapshot_permissions(&self, region: &Region, snapshot: &SnapshotId) -> Vec<String> {
        self.world(|w| {
            w.accounts[&account()].regions[region].snapshots[snapshot]
                .shared_with
                .iter()
                .map(|a| a.to_string())
                .collect()
        })
    }

    async fn grant_ebs_id(&self, region: &Region, key: &KmsKeyId) -> Option<String> {
        self.world(|w| w.accounts[&account()].regions[region].keys[key.key_id()].grants.first()?.ebs_id.clone())
    }

    async fn scanner_settings(&self, region: &Region, instance: &InstanceId) -> ScannerSettings {
        self.world(|w| {
            let r = &w.accounts[&account()].regions[region];
            let i = &r.instances[instance];
            let shutdown = match i.shutdown_behavior {
                agentless::cloud::sim::state::ShutdownBehavior::Stop => "stop",
                agentless::cloud::sim::state::ShutdownBehavior::Terminate => "terminate",
            };
            let enis =
                r.network_interfaces.values().filter(|e| e.owner == EniOwner::Instance(instance.clone())).count();
            ScannerSettings {
                imds_v2_required: i.http_tokens_required,
                shutdown_behavior: shutdown.into(),
                user_data: i.user_data_base64.clone(),
                network_interfaces: enis,
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn conformance_identity_and_discovery() {
    conformance::identity_and_discovery(&SimFixture::new()).await;
}

#[tokio::test(start_paused = true)]
async fn conformance_error_kinds() {
    conformance::error_kinds(&SimFixture::new()).await;
}

#[tokio::test(start_paused = true)]
async fn conformance_one_job_create_then_teardown_leaves_nothing() {
    conformance::one_job_create_then_teardown_leaves_nothing(&SimFixture::new()).await;
}

#[tokio::test(start_paused = true)]
async fn conformance_copy_image_into_another_region() {
    let fx = SimFixture::new();
    conformance::copy_image_into_another_region(&fx).await;
    // What moto drops: the copy's tags.
    let tagged = fx.world(|w| {
        w.accounts[&account()].regions[&west()]
            .images
            .values()
            .filter(|i| i.owner == account())
            .map(|i| i.tags.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].name(), Some("alibaba-cloud-security-scan-image-1"));
}
