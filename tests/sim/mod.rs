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

use agentless::cloud::sim::fleet::{FleetInstance, FleetVolume, StartState};
use agentless::cloud::sim::state::{EniOwner, Life, World};
use agentless::cloud::sim::{Fleet, SimCloud};
use agentless::cloud::tags::Tags;
use agentless::cloud::{AccountId, Guard, GuardPolicy, GuardRules, ImageId, InstanceId, KmsKeyId, Region, SnapshotId};
use agentless::policy::{Policy, agentless_scan_policy};

use crate::conformance::{self, Fixture, OUR_PREFIXES, ScannerSettings, east, west};

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

/// The bundled policy and `extra` JSON policies.
pub fn policies(extra: &[&str]) -> Vec<Policy> {
    let mut p = vec![agentless_scan_policy().expect("policy")];
    p.extend(extra.iter().enumerate().map(|(i, t)| Policy::parse(format!("extra-{i}"), t).expect("extra policy")));
    p
}

/// `sim` behind a guard with `guard_policies`.
pub fn guard_over(sim: &SimCloud, guard_policies: Vec<Policy>) -> Guard<SimCloud> {
    Guard::new(sim.clone(), GuardPolicy::new(guard_policies, sim.scope(), GuardRules::default()))
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

fn ours(tags: &Tags) -> bool {
    tags.name().is_some_and(|n| OUR_PREFIXES.iter().any(|p| n.starts_with(p)))
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
        self.world(|w| {
            let r = &w.accounts[&account()].regions[region];
            let mut left = Vec::new();
            for (id, i) in &r.instances {
                if ours(&i.tags) && !matches!(i.life, Life::Terminated { .. }) {
                    left.push(format!("instance {id}"));
                }
            }
            left.extend(r.volumes.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| format!("volume {id}")));
            left.extend(r.snapshots.iter().filter(|(_, s)| ours(&s.tags)).map(|(id, _)| format!("snapshot {id}")));
            left.extend(r.vpcs.iter().filter(|(_, v)| ours(&v.tags)).map(|(id, _)| format!("vpc {id}")));
            left.extend(r.subnets.iter().filter(|(_, s)| ours(&s.tags)).map(|(id, _)| format!("subnet {id}")));
            left.extend(r.security_groups.iter().filter(|(_, g)| ours(&g.tags)).map(|(id, _)| format!("sg {id}")));
            left.extend(r.internet_gateways.iter().filter(|(_, g)| ours(&g.tags)).map(|(id, _)| format!("igw {id}")));
            left.extend(r.vpc_endpoints.iter().filter(|(_, e)| ours(&e.tags)).map(|(id, _)| format!("vpce {id}")));
            left.extend(r.network_interfaces.iter().filter(|(_, e)| ours(&e.tags)).map(|(id, _)| format!("eni {id}")));
            left
        })
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
