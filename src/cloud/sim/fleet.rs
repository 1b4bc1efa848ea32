//! The fleet file: a TOML description of the simulated world — accounts, their Regions, KMS keys
//! (and whether their key policy lets IAM policies use them, [`super::kms`]), instances with tags
//! and volumes (size, used size, encryption, key, the disk image that backs it), overrides of the
//! quotas, latencies, instance types and throttling of [`super::limits`], and the faults to
//! inject ([`super::faults`], `[faults]`). Unknown keys
//! are refused, and every error names the key it is about (`accounts[0].instances[2].volumes[0].
//! kms_key`), or the line and column for a syntax error.
//!
//! ```toml
//! seed = 7
//! max_image_mib = 1024     # refuse a compressed image that expands beyond this
//! [quotas]
//! vpcs_per_region = 5
//! vcpus_per_region = 64    # On-Demand vCPUs (VcpuLimitExceeded); unset: not enforced
//! [latencies]
//! describe_lag_ms = 2000   # eventual consistency of Describe (consistency::REALISTIC_LAG_MS)
//! [instance_types]
//! "m5.metal" = { vcpus = 96 }                           # shared attachment limit
//! "x9.large" = { vcpus = 2, dedicated_ebs_attachments = 32 }
//! [faults]
//! seed = 42
//! rates = { internal_error = 0.01 }
//! [[faults.schedule]]
//! action = "RunInstances"
//! nth = 1
//! fault = "never-boots"
//! [[accounts]]
//! id = "111122223333"
//! regions = ["us-east-1"]
//! [accounts.pipeline]          # the CloudTrail -> S3 -> SQS pipeline (super::trail)
//! region = "us-east-1"         # the single-Region trail's and the queue's Region
//! bucket = "aws-cloudtrail-logs-111122223333-agentless"
//! queue = "aliyun-sasc-log-queue"
//! delivery_delay_ms = 300000   # defaults: CloudTrail's ~5 minutes,
//! files_per_delivery = 3       # up to 3 log files per delivery,
//! visibility_timeout_ms = 30000  # SQS's 30 s visibility timeout
//! retention_ms = 345600000     # and 4 days' retention (also the bucket's);
//! duplicate_every = 0          # chaos: every n-th notification enqueued twice (0: off)
//! reorder = false              # chaos: a delivery's notifications in reverse order
//! [[accounts.keys]]
//! name = "prod-db"
//! region = "us-east-1"
//! allow_account_use = false   # the default: the key policy does not defer to IAM policies
//! allow_caller_use = false    # the default: nor does it name our principal as a key user
//! [[accounts.instances]]
//! region = "us-east-1"
//! tags = { Name = "web-1" }
//! [[accounts.instances.volumes]]
//! size_gib = 8
//! image = "../demo/demo-disk.img"   # relative to the fleet file
//! ```
//!
//! # Disk images
//!
//! A volume's `image` is read relative to the fleet file's directory. A gzip-compressed image
//! (`*.gz`, e.g. the committed `tests/data/demo/*.img.gz`) is decompressed once into a cache
//! directory, named by the compressed file's name and an FNV-1a hash of its bytes
//! (`demo-rhel-<16 hex>.img`), and the world's volume is backed by that file. The cache is
//! `<data dir>/images` for a world with a data directory ([`super::SimCloud::open`]), so the
//! saved world and its disks stay together; for an in-memory world it is
//! `$AGENTLESS_CACHE_DIR/images`, else `$XDG_CACHE_HOME/agentless/images`, else
//! `~/.cache/agentless/images` (the cache of `scripts/lib.sh`), else the temporary directory. A
//! decompressed image larger than `max_image_mib` (default [`MAX_IMAGE_MIB`]) or than its
//! volume's `size_gib` is refused, whatever the gzip header claims, and nothing of it is kept.
//!
//! Every Region also gets what a new AWS account has there: three Availability Zones, a default
//! VPC (`172.31.0.0/16`, a default subnet per zone, an attached internet gateway, which count
//! against the quotas as on AWS, docs/references.md), the AWS managed `aws/ebs` key, and two
//! public Amazon images (x86_64 and arm64) to launch from.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use super::SimError;
use super::faults::Faults;
use super::limits::{InstanceTypeSpec, Latencies, Quotas, Settings, Throttling};
use super::network::insert_vpc;
use super::state::{
    AWS_EBS_ALIAS, Account, Attachment, EniOwner, Image, Instance, InternetGateway, Key, Life, Manager,
    NetworkInterface, Prng, RegionState, ShutdownBehavior, Subnet, Volume, WORLD_VERSION, World,
};
use super::trail::{self, Event, Pipeline, PipelineConfig, Who};
use crate::cloud::ids::{
    AccountId, IdError, ImageId, InstanceId, InternetGatewayId, KmsKeyId, NetworkInterfaceId, Region, SubnetId,
    VolumeId,
};
use crate::cloud::tags::{TagError, Tags};

/// The owner id of Amazon's public images (`amazon` alias, e.g. Amazon Linux AMIs).
pub const AMAZON_OWNER: &str = "137112412989";
/// Zones per Region the sim creates (most AWS Regions have at least three).
const ZONES: [char; 3] = ['a', 'b', 'c'];
/// The default VPC's CIDR and its subnets' (VPC User Guide, "Default VPCs": 172.31.0.0/16 and a
/// /20 per zone).
const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
const DEFAULT_SUBNET_CIDRS: [&str; 3] = ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"];
/// The largest a decompressed disk image may be, in MiB (`max_image_mib`). A choice, not an AWS
/// number: the demo images are a few MiB, and 1 GiB bounds what a fleet file (or a gzip bomb in
/// one) can make the sim write to disk.
pub const MAX_IMAGE_MIB: u64 = 1024;

/// A fleet file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("the fleet has no account (add an [[accounts]] table)")]
    NoAccount,
    #[error("an id drawn for {key} is malformed: {source}")]
    Id { key: String, source: IdError },
}

/// The Regions of [`Fleet::synthetic`], in order.
pub const SYNTHETIC_REGIONS: [&str; 8] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-2",
    "eu-central-1",
    "us-east-2",
    "ap-northeast-1",
    "ca-central-1",
];

/// The splitmix64 step (deterministic sizes from a seed).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> FleetError {
    FleetError::Invalid { key: key.into(), message: message.into() }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// Seed of the id generator: the same fleet and seed give the same ids.
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub quotas: Quotas,
    #[serde(default)]
    pub latencies: Latencies,
    #[serde(default)]
    pub throttling: Throttling,
    #[serde(default)]
    pub faults: Faults,
    /// Instance types added to, or overriding, the built-in table ([`super::limits`]).
    #[serde(default)]
    pub instance_types: BTreeMap<String, InstanceTypeSpec>,
    /// The largest a decompressed `*.gz` image may be ([`MAX_IMAGE_MIB`]).
    #[serde(default = "default_max_image_mib")]
    pub max_image_mib: u64,
    #[serde(default)]
    pub accounts: Vec<FleetAccount>,
    /// The directory relative image paths are read from (the fleet file's).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_seed() -> u64 {
    1
}

fn default_max_image_mib() -> u64 {
    MAX_IMAGE_MIB
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetAccount {
    pub id: AccountId,
    /// The IAM user the orchestrator runs as.
    #[serde(default = "default_user")]
    pub user: String,
    pub regions: Vec<Region>,
    #[serde(default)]
    pub keys: Vec<FleetKey>,
    #[serde(default)]
    pub instances: Vec<FleetInstance>,
    /// The account's CloudTrail → S3 → SQS pipeline (`[accounts.pipeline]`, [`super::trail`]).
    #[serde(default)]
    pub pipeline: Option<PipelineConfig>,
}

fn default_user() -> String {
    "agentless-scanner".into()
}

/// A customer managed KMS key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetKey {
    /// How volumes refer to it (`kms_key = "<name>"`).
    pub name: String,
    pub region: Region,
    #[serde(default)]
    pub description: String,
    /// Whether the key policy lets the account's IAM policies use the key (AWS's default key
    /// policy); otherwise EC2 can use it for us only through a grant ([`super::kms`]).
    #[serde(default)]
    pub allow_account_use: bool,
    /// Whether the key policy names the account's principals as key users (AWS's console default
    /// "Allow use of the key" statement): then KMS lets EC2 use the key for us whatever the IAM
    /// policies say ([`super::kms`]).
    #[serde(default)]
    pub allow_caller_use: bool,
}

/// The state a fleet instance starts in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartState {
    #[default]
    Running,
    Stopped,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetInstance {
    pub region: Region,
    /// The zone letter (`a`, `b`, `c`); `a` by default.
    #[serde(default = "default_zone")]
    pub zone: char,
    #[serde(default = "default_type")]
    pub instance_type: String,
    #[serde(default)]
    pub state: StartState,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The first volume is the root device.
    #[serde(default)]
    pub volumes: Vec<FleetVolume>,
}

fn default_zone() -> char {
    'a'
}

fn default_type() -> String {
    "t3.micro".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetVolume {
    /// `/dev/xvda` for the first volume, then `/dev/sdf`, `/dev/sdg`... by default.
    #[serde(default)]
    pub device: Option<String>,
    pub size_gib: u32,
    /// Used space (drives the snapshot latency); the backing image's size rounded up to a GiB, or
    /// half the volume for a synthetic one (INFERENCE: a typical fill).
    #[serde(default)]
    pub used_gib: Option<u32>,
    #[serde(default = "default_volume_type")]
    pub volume_type: String,
    #[serde(default)]
    pub encrypted: bool,
    /// A key of the account's `keys` by name; an encrypted volume without one uses `aws/ebs`.
    #[serde(default)]
    pub kms_key: Option<String>,
    /// The disk image file holding the volume's bytes, relative to the fleet file.
    #[serde(default)]
    pub image: Option<PathBuf>,
    #[serde(default = "default_true")]
    pub delete_on_termination: bool,
}

fn default_volume_type() -> String {
    "gp3".into()
}

fn default_true() -> bool {
    true
}

const GIB: u64 = 1 << 30;

impl Fleet {
    /// Read and check a fleet file.
    pub fn load(path: &Path) -> Result<Fleet, FleetError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| FleetError::Read { path: path.to_owned(), source })?;
        let mut fleet = Fleet::parse(&text).map_err(|e| match e {
            FleetError::Parse { source, .. } => FleetError::Parse { path: path.to_owned(), source },
            other => other,
        })?;
        fleet.base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
        Ok(fleet)
    }

    /// Parse fleet text (relative image paths are then relative to the current directory).
    pub fn parse(text: &str) -> Result<Fleet, FleetError> {
        toml::from_str(text).map_err(|e| FleetError::Parse { path: PathBuf::from("<fleet>"), source: Box::new(e) })
    }

    /// One account in `regions`, nothing in it but what AWS gives a new account.
    #[must_use]
    pub fn empty(account: AccountId, regions: Vec<Region>) -> Fleet {
        Fleet {
            seed: default_seed(),
            max_image_mib: MAX_IMAGE_MIB,
            accounts: vec![FleetAccount {
                id: account,
                user: default_user(),
                regions,
                keys: Vec::new(),
                instances: Vec::new(),
                pipeline: None,
            }],
            ..Fleet::default()
        }
    }

    /// The benchmarks' synthetic fleet (`examples/sim_fleet_bench.rs`, `examples/fleet_bench.rs`):
    /// `instances` running t3.large instances, instance `n` in account `n % accounts` (ids
    /// 100000000000, 100000000001...) and Region `(n / accounts) % regions` of
    /// [`SYNTHETIC_REGIONS`]; 1 to 4 gp3 volumes each, a root of 8 to 32 GiB and data volumes of
    /// 20 to 500 GiB, half used (the default), no image behind them; sizes drawn from `seed`.
    ///
    /// # Errors
    ///
    /// `accounts` is 0 or `regions` is not 1 to 8.
    pub fn synthetic(instances: usize, accounts: usize, regions: usize, seed: u64) -> Result<Fleet, FleetError> {
        if accounts == 0 || regions == 0 || regions > SYNTHETIC_REGIONS.len() {
            return Err(invalid(
                "synthetic fleet",
                format!("accounts must be at least 1 and Regions 1 to {}", SYNTHETIC_REGIONS.len()),
            ));
        }
        let id = |key: &str| {
            let key = key.to_owned();
            move |source| FleetError::Id { key, source }
        };
        let regions: Vec<Region> = SYNTHETIC_REGIONS
            .iter()
            .take(regions)
            .map(|r| r.parse().map_err(id("Region")))
            .collect::<Result<_, _>>()?;
        let mut fleet_accounts = Vec::new();
        for a in 0..accounts {
            fleet_accounts.push(FleetAccount {
                id: format!("{:012}", 100_000_000_000u64 + a as u64).parse().map_err(id("account"))?,
                user: default_user(),
                regions: regions.clone(),
                keys: Vec::new(),
                instances: Vec::new(),
                pipeline: None,
            });
        }
        let volume = |size_gib: u32| FleetVolume {
            device: None,
            size_gib,
            used_gib: None,
            volume_type: "gp3".into(),
            encrypted: false,
            kms_key: None,
            image: None,
            delete_on_termination: true,
        };
        for n in 0..instances {
            let h = splitmix64(seed ^ n as u64);
            let count = 1 + (h % 4) as usize;
            let mut volumes = vec![volume(8 + (h >> 8) as u32 % 25)];
            for k in 1..count {
                volumes.push(volume(20 + (splitmix64(h + k as u64) % 481) as u32));
            }
            fleet_accounts[n % accounts].instances.push(FleetInstance {
                region: regions[(n / accounts) % regions.len()].clone(),
                zone: ['a', 'b', 'c'][(h >> 16) as usize % 3],
                instance_type: "t3.large".into(),
                state: StartState::Running,
                tags: BTreeMap::from([("Name".to_owned(), format!("web-{n}"))]),
                volumes,
            });
        }
        Ok(Fleet { seed, accounts: fleet_accounts, ..Fleet::default() })
    }

    /// The world this fleet describes, its compressed images decompressed into the default cache
    /// (module documentation).
    pub fn build(&self) -> Result<World, SimError> {
        self.build_in(None)
    }

    /// The world this fleet describes; compressed images go to `<data_dir>/images` when there is
    /// a data directory, else to the default cache (module documentation).
    pub fn build_in(&self, data_dir: Option<&Path>) -> Result<World, SimError> {
        let mut world = World {
            version: WORLD_VERSION,
            prng: Prng::new(self.seed),
            clock_ms: 0,
            accounts: BTreeMap::new(),
            settings: Settings {
                quotas: self.quotas.clone(),
                latencies: self.latencies.clone(),
                throttling: self.throttling,
                faults: self.faults.clone(),
                instance_types: self.instance_types.clone(),
                keys_allowing_account_use: Default::default(),
                keys_allowing_caller_use: Default::default(),
            },
        };
        self.faults.check().map_err(|e| invalid(e.key, e.message))?;
        for (name, t) in &self.instance_types {
            if t.vcpus == 0 || t.dedicated_ebs_attachments == Some(0) {
                return Err(
                    invalid(format!("instance_types.\"{name}\""), "vcpus and attachments must be at least 1").into()
                );
            }
        }
        let images = Images::new(data_dir, self.max_image_mib);
        if self.accounts.is_empty() {
            return Err(FleetError::NoAccount.into());
        }
        for (ai, a) in self.accounts.iter().enumerate() {
            let at = format!("accounts[{ai}]");
            if world.accounts.contains_key(&a.id) {
                return Err(invalid(format!("{at}.id"), format!("account {} is listed twice", a.id)).into());
            }
            if a.regions.is_empty() {
                return Err(invalid(format!("{at}.regions"), "at least one Region is needed").into());
            }
            let mut account = Account { user: a.user.clone(), regions: BTreeMap::new(), pipeline: None };
            for region in &a.regions {
                let r = new_region(&mut world.prng, &a.id, region)
                    .map_err(|source| FleetError::Id { key: format!("{at}.regions"), source })?;
                account.regions.insert(region.clone(), r);
            }
            world.accounts.insert(a.id.clone(), account);
            let mut setup = Setup::new(&mut world, 0);
            let mut key_ids: BTreeMap<&str, KmsKeyId> = BTreeMap::new();
            for (ki, k) in a.keys.iter().enumerate() {
                let key = format!("{at}.keys[{ki}]");
                if key_ids.contains_key(k.name.as_str()) {
                    return Err(invalid(format!("{key}.name"), format!("key \"{}\" is defined twice", k.name)).into());
                }
                let id = setup.key_in(&a.id, &k.region, &k.description, Some(&k.name), k.allow_account_use);
                let id = id.map_err(|e| match e {
                    SimError::UnknownRegion { region, .. } => SimError::Fleet(invalid(
                        format!("{key}.region"),
                        format!("{region} is not in the account's regions"),
                    )),
                    other => other,
                })?;
                setup.allow_caller_use(&id, k.allow_caller_use);
                key_ids.insert(k.name.as_str(), id);
            }
            for (ii, inst) in a.instances.iter().enumerate() {
                let key = format!("{at}.instances[{ii}]");
                setup.instance_in(&a.id, inst, &key, &key_ids, &self.base_dir, &images)?;
            }
            if let Some(p) = &a.pipeline {
                setup.pipeline(&a.id, p.clone()).map_err(|e| match e {
                    SimError::Fleet(FleetError::Invalid { key, message }) => {
                        SimError::Fleet(invalid(format!("{at}.{key}"), message))
                    }
                    other => other,
                })?;
            }
        }
        // What the build minted is not a call's creation (see `consistency`).
        world.prng.take_minted();
        Ok(world)
    }
}

/// `us-east-1` → `use1` (the prefix of AWS zone ids such as `use1-az1`).
fn zone_id_prefix(region: &Region) -> String {
    let parts: Vec<&str> = region.as_str().split('-').collect();
    let mut s = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i == 0 || i + 1 == parts.len() {
            s.push_str(p);
        } else {
            s.extend(p.chars().next());
        }
    }
    s
}

/// A Region as a new account has it.
fn new_region(prng: &mut Prng, account: &AccountId, region: &Region) -> Result<RegionState, IdError> {
    let mut r = RegionState::default();
    let prefix = zone_id_prefix(region);
    r.zones =
        ZONES.iter().enumerate().map(|(i, z)| (format!("{region}{z}"), format!("{prefix}-az{}", i + 1))).collect();
    let vpc = insert_vpc(&mut r, prng, DEFAULT_VPC_CIDR, true, Tags::new())?;
    let zones: Vec<String> = r.zones.iter().map(|(z, _)| z.clone()).collect();
    for (zone, cidr) in zones.iter().zip(DEFAULT_SUBNET_CIDRS) {
        let id: SubnetId = prng.ec2_id("subnet").parse()?;
        r.subnets.insert(
            id,
            Subnet {
                vpc: vpc.clone(),
                cidr_block: cidr.to_owned(),
                availability_zone: zone.clone(),
                map_public_ip_on_launch: true,
                tags: Tags::new(),
            },
        );
    }
    let igw: InternetGatewayId = prng.ec2_id("igw").parse()?;
    r.internet_gateways.insert(igw.clone(), InternetGateway { attached: Some(vpc.clone()), tags: Tags::new() });
    for t in r.route_tables.values_mut().filter(|t| t.vpc == vpc) {
        t.routes.push(("0.0.0.0/0".into(), igw.to_string()));
    }
    let key_id = prng.uuid();
    r.keys.insert(
        key_id.clone(),
        Key {
            arn: format!("arn:aws:kms:{region}:{account}:key/{key_id}"),
            manager: Manager::Aws,
            description: "Default key that protects my EBS volumes when no other key is defined".into(),
            alias: Some(AWS_EBS_ALIAS.into()),
            grants: Vec::new(),
        },
    );
    let owner: AccountId = AMAZON_OWNER.parse()?;
    for arch in ["x86_64", "arm64"] {
        let id: ImageId = prng.ec2_id("ami").parse()?;
        r.images.insert(
            id,
            Image {
                name: format!("al2023-ami-2023.6-sim-kernel-6.1-{arch}"),
                description: "Amazon Linux 2023 AMI (simulated)".into(),
                owner: owner.clone(),
                owner_alias: Some("amazon".into()),
                architecture: arch.into(),
                root_device_name: "/dev/xvda".into(),
                root_size_gib: 8,
                root_delete_on_termination: true,
                encrypted: false,
                kms_key_id: None,
                available_ms: 0,
                tags: Tags::new(),
            },
        );
    }
    Ok(r)
}

/// The customer's own changes to the world (no IAM, no API): used by the fleet builder and by
/// [`super::SimCloud::setup`].
#[derive(Debug)]
pub struct Setup<'a> {
    world: &'a mut World,
    now_ms: u64,
    /// [`Setup::world`] was called: anything may have changed.
    raw: bool,
}

impl<'a> Setup<'a> {
    pub(super) fn new(world: &'a mut World, now_ms: u64) -> Setup<'a> {
        Setup { world, now_ms, raw: false }
    }

    /// The world being changed.
    pub fn world(&mut self) -> &mut World {
        self.raw = true;
        self.world
    }

    /// Whether the world was handed out by [`Setup::world`]: then every Region's index must be
    /// dropped ([`super::lifecycle::invalidate`]). The other changes drop their own Region's.
    pub(super) fn raw(&self) -> bool {
        self.raw
    }

    /// A Region to change; its lifecycle index is dropped, rebuilt on next use
    /// ([`super::lifecycle`], "The index").
    fn region(&mut self, account: &AccountId, region: &Region) -> Result<&mut RegionState, SimError> {
        let r = self
            .world
            .accounts
            .get_mut(account)
            .ok_or_else(|| SimError::UnknownAccount(account.clone()))?
            .regions
            .get_mut(region)
            .ok_or_else(|| SimError::UnknownRegion { account: account.clone(), region: region.clone() })?;
        r.index = None;
        Ok(r)
    }

    /// A customer managed key in the first account; its ARN.
    pub fn key(&mut self, region: &Region, description: &str) -> Result<KmsKeyId, SimError> {
        let account = self.first_account()?;
        self.key_in(&account, region, description, None, false)
    }

    /// Let (or stop letting) the account's IAM policies use a customer managed key, as its key
    /// policy would ([`super::kms`]); without it only grants do.
    pub fn allow_account_use(&mut self, key: &KmsKeyId, allowed: bool) {
        let set = &mut self.world.settings.keys_allowing_account_use;
        if allowed {
            set.insert(key.as_str().to_owned());
        } else {
            set.remove(key.as_str());
        }
    }

    /// Name (or stop naming) the account's principals as key users of a customer managed key in
    /// its key policy ([`super::kms`]): KMS then allows them its use whatever IAM says.
    pub fn allow_caller_use(&mut self, key: &KmsKeyId, allowed: bool) {
        let set = &mut self.world.settings.keys_allowing_caller_use;
        if allowed {
            set.insert(key.as_str().to_owned());
        } else {
            set.remove(key.as_str());
        }
    }

    /// Give `account` a CloudTrail → S3 → SQS pipeline ([`super::trail`]), replacing any it had
    /// (with its bucket and queue). S3's test event is enqueued at the next delivery (the next
    /// call). The default principal of a [`super::SimCloud`] then also has the reader policy.
    pub fn pipeline(&mut self, account: &AccountId, config: PipelineConfig) -> Result<(), SimError> {
        config.check().map_err(|(key, message)| invalid(format!("pipeline.{key}"), message))?;
        let a = self.world.accounts.get_mut(account).ok_or_else(|| SimError::UnknownAccount(account.clone()))?;
        if !a.regions.contains_key(&config.region) {
            return Err(invalid("pipeline.region", format!("{} is not in the account's regions", config.region)).into());
        }
        a.pipeline = Some(Pipeline::new(config));
        Ok(())
    }

    /// [`Setup::instance`], as the customer's administrator launches it: also the `RunInstances`
    /// record of [`trail::ADMIN_USER`] (from [`trail::ADMIN_SOURCE_IP`], in the EC2 console), with
    /// the new id in `responseElements` and the instance's tags in `tagSpecificationSet`.
    pub fn launch(&mut self, spec: &FleetInstance) -> Result<InstanceId, SimError> {
        let id = self.instance(spec)?;
        let tags = Tags::from_pairs(spec.tags.iter())
            .map_err(|e: TagError| SimError::Fleet(invalid("instance.tags", e.to_string())))?;
        let zone = format!("{}{}", spec.region, spec.zone);
        let request = serde_json::json!({
            "instancesSet": { "items": [{ "minCount": 1, "maxCount": 1 }] },
            "instanceType": spec.instance_type,
            "placement": { "availabilityZone": zone },
            "tagSpecificationSet": trail::tag_specifications(&[("instance", &tags)]),
        });
        let response = serde_json::json!({
            "instancesSet": { "items": [{
                "instanceId": id.as_str(),
                "instanceType": spec.instance_type,
                "placement": { "availabilityZone": zone },
                "instanceState": { "code": 0, "name": "pending" },
                "tagSet": { "items": tags.iter().map(|t| serde_json::json!({ "key": t.key, "value": t.value })).collect::<Vec<_>>() },
            }] },
        });
        self.record(&spec.region, "RunInstances", trail::ADMIN_USER, request, response)?;
        Ok(id)
    }

    /// Put any event in the first account's trail, by its IAM user `principal_user` from the
    /// administrator's client ([`trail::ADMIN_SOURCE_IP`], [`trail::ADMIN_USER_AGENT`]): e.g. a
    /// `StartInstances`, `CreateTags`, or a `ModifySnapshotAttribute` by another principal. The
    /// event source follows the name (`ec2.amazonaws.com` unless it is a KMS, STS or IAM name).
    /// Kept only if the account's pipeline logs `region`.
    pub fn record(
        &mut self,
        region: &Region,
        event_name: &str,
        principal_user: &str,
        request_parameters: serde_json::Value,
        response_elements: serde_json::Value,
    ) -> Result<(), SimError> {
        let account = self.first_account()?;
        let who = Who {
            account: &account,
            user: principal_user,
            source_ip: trail::ADMIN_SOURCE_IP,
            user_agent: trail::ADMIN_USER_AGENT,
        };
        let read_only = ["Describe", "Get", "List"].iter().any(|p| event_name.starts_with(p));
        let event = Event {
            source: trail::source_of_name(event_name),
            name: event_name.to_owned(),
            region: region.as_str().to_owned(),
            at_ms: self.now_ms,
            request_parameters,
            response_elements,
            error: None,
            request_id: None,
            read_only,
        };
        trail::push(self.world, who, event);
        Ok(())
    }

    fn first_account(&self) -> Result<AccountId, SimError> {
        self.world.accounts.keys().next().cloned().ok_or(SimError::Fleet(FleetError::NoAccount))
    }

    fn key_in(
        &mut self,
        account: &AccountId,
        region: &Region,
        description: &str,
        alias: Option<&str>,
        allow_account_use: bool,
    ) -> Result<KmsKeyId, SimError> {
        let key_id = self.world.prng.uuid();
        let arn = format!("arn:aws:kms:{region}:{account}:key/{key_id}");
        let id: KmsKeyId = arn.parse().map_err(|source| FleetError::Id { key: "key".into(), source })?;
        let r = self.region(account, region)?;
        r.keys.insert(
            key_id,
            Key {
                arn,
                manager: Manager::Customer,
                description: description.to_owned(),
                alias: alias.map(|a| format!("alias/{a}")),
                grants: Vec::new(),
            },
        );
        self.allow_account_use(&id, allow_account_use);
        Ok(id)
    }

    /// A customer instance in the first account (tags, volumes as in a fleet file, with no key
    /// names); its id.
    pub fn instance(&mut self, spec: &FleetInstance) -> Result<InstanceId, SimError> {
        let account = self.first_account()?;
        let images = Images::new(None, MAX_IMAGE_MIB);
        self.instance_in(&account, spec, "instance", &BTreeMap::new(), Path::new("."), &images)
    }

    fn instance_in(
        &mut self,
        account: &AccountId,
        spec: &FleetInstance,
        at: &str,
        keys: &BTreeMap<&str, KmsKeyId>,
        base_dir: &Path,
        images: &Images,
    ) -> Result<InstanceId, SimError> {
        let id_err = |source| SimError::Fleet(FleetError::Id { key: at.to_owned(), source });
        if self.world.settings.instance_type(&spec.instance_type).is_none() {
            return Err(invalid(
                format!("{at}.instance_type"),
                format!("unknown instance type \"{}\" (add it to [instance_types])", spec.instance_type),
            )
            .into());
        }
        let tags = Tags::from_pairs(spec.tags.iter())
            .map_err(|e: TagError| SimError::Fleet(invalid(format!("{at}.tags"), e.to_string())))?;
        let instance_id: InstanceId = self.world.prng.ec2_id("i").parse().map_err(id_err)?;
        let eni: NetworkInterfaceId = self.world.prng.ec2_id("eni").parse().map_err(id_err)?;
        let mut volume_ids = Vec::new();
        for _ in &spec.volumes {
            let v: VolumeId = self.world.prng.ec2_id("vol").parse().map_err(id_err)?;
            volume_ids.push(v);
        }
        let zone = format!("{}{}", spec.region, spec.zone);
        let now_ms = self.now_ms;
        let region = self.region(account, &spec.region).map_err(|e| match e {
            SimError::UnknownRegion { region, .. } => {
                SimError::Fleet(invalid(format!("{at}.region"), format!("{region} is not in the account's regions")))
            }
            other => other,
        })?;
        if !region.zones.iter().any(|(z, _)| *z == zone) {
            return Err(invalid(format!("{at}.zone"), format!("no zone {zone}; the sim has zones a, b and c")).into());
        }
        let default_ebs = region.default_ebs_key().map(|(_, k)| k.arn.clone());
        let subnet = region
            .subnets
            .iter()
            .find(|(_, s)| s.availability_zone == zone && region.vpcs.get(&s.vpc).is_some_and(|v| v.is_default))
            .map(|(id, s)| (id.clone(), s.vpc.clone()));
        let sg = subnet.as_ref().and_then(|(_, vpc)| {
            region.security_groups.iter().find(|(_, g)| g.vpc == *vpc && g.is_default).map(|(id, _)| id.clone())
        });
        let mut attachments = Vec::new();
        let mut volumes = Vec::new();
        for (vi, (v, vid)) in spec.volumes.iter().zip(volume_ids).enumerate() {
            let vat = format!("{at}.volumes[{vi}]");
            let device = match &v.device {
                Some(d) => d.clone(),
                None if vi == 0 => "/dev/xvda".into(),
                None => format!("/dev/sd{}", char::from(b'f'.saturating_add(u8::try_from(vi - 1).unwrap_or(20)))),
            };
            if attachments.iter().any(|a: &Attachment| a.device_name == device) {
                return Err(invalid(format!("{vat}.device"), format!("{device} is used twice")).into());
            }
            let backing = match &v.image {
                Some(p) => {
                    let given = if p.is_absolute() { p.clone() } else { base_dir.join(p) };
                    let volume_bytes = u64::from(v.size_gib).saturating_mul(GIB);
                    Some(images.resolve(&given, volume_bytes).map_err(|m| invalid(format!("{vat}.image"), m))?)
                }
                None => None,
            };
            let image_gib = match &backing {
                Some(p) => {
                    let len = std::fs::metadata(p)
                        .map_err(|e| invalid(format!("{vat}.image"), format!("{}: {e}", p.display())))?
                        .len();
                    if len > u64::from(v.size_gib).saturating_mul(GIB) {
                        return Err(invalid(
                            format!("{vat}.image"),
                            format!("{} is larger than size_gib = {}", p.display(), v.size_gib),
                        )
                        .into());
                    }
                    Some(u32::try_from(len.div_ceil(GIB)).unwrap_or(u32::MAX).max(1))
                }
                None => None,
            };
            let used_gib = v.used_gib.or(image_gib).unwrap_or(v.size_gib / 2);
            if used_gib > v.size_gib {
                return Err(invalid(format!("{vat}.used_gib"), "larger than size_gib").into());
            }
            let kms_key_id = match (&v.kms_key, v.encrypted) {
                (Some(name), true) => Some(keys.get(name.as_str()).cloned().ok_or_else(|| {
                    invalid(format!("{vat}.kms_key"), format!("no key named \"{name}\" in the account's keys"))
                })?),
                (Some(_), false) => {
                    return Err(invalid(format!("{vat}.kms_key"), "set encrypted = true to use a key").into());
                }
                (None, true) => default_ebs.as_ref().and_then(|a| a.parse().ok()),
                (None, false) => None,
            };
            attachments.push(Attachment {
                device_name: device.clone(),
                volume_id: vid.clone(),
                delete_on_termination: v.delete_on_termination,
            });
            volumes.push((
                vid,
                Volume {
                    size_gib: v.size_gib,
                    used_gib,
                    volume_type: v.volume_type.clone(),
                    availability_zone: zone.clone(),
                    encrypted: v.encrypted,
                    kms_key_id,
                    snapshot_id: None,
                    attached: Some((instance_id.clone(), device)),
                    backing,
                    tags: Tags::new(),
                },
            ));
        }
        let mut enis = Vec::new();
        if let Some((subnet_id, vpc)) = &subnet {
            region.network_interfaces.insert(
                eni.clone(),
                NetworkInterface {
                    subnet: subnet_id.clone(),
                    vpc: vpc.clone(),
                    owner: EniOwner::Instance(instance_id.clone()),
                    security_groups: sg.iter().cloned().collect(),
                    tags: Tags::new(),
                },
            );
            enis.push(eni);
        }
        region.volumes.extend(volumes);
        region.instances.insert(
            instance_id.clone(),
            Instance {
                instance_type: spec.instance_type.clone(),
                availability_zone: zone,
                subnet: subnet.as_ref().map(|(s, _)| s.clone()),
                vpc: subnet.map(|(_, v)| v),
                security_groups: sg.into_iter().collect(),
                image: None,
                root_device_name: attachments.first().map(|a| a.device_name.clone()),
                attachments,
                network_interfaces: enis,
                life: match spec.state {
                    StartState::Running => Life::Running,
                    StartState::Stopped => Life::Stopped,
                },
                launched_ms: now_ms,
                public_ip: false,
                user_data_base64: None,
                http_tokens_required: false,
                shutdown_behavior: ShutdownBehavior::Stop,
                client_token: None,
                tags,
                fault: None,
                state_reason: None,
            },
        );
        Ok(instance_id)
    }
}

/// Where compressed images are decompressed, and how large one may become (module documentation).
#[derive(Debug, Clone)]
pub struct Images {
    dir: PathBuf,
    limit_bytes: u64,
}

/// Distinguishes the temporary files of concurrent decompressions in one process.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// FNV-1a 64-bit (Fowler, Noll, Vo; offset basis and prime of the published 64-bit variant): the
/// cache key of a compressed image, which must change with its bytes, not resist an adversary.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

impl Images {
    /// The cache of a world with `data_dir` (or of an in-memory one), refusing images that expand
    /// beyond `limit_mib`.
    #[must_use]
    pub fn new(data_dir: Option<&Path>, limit_mib: u64) -> Images {
        let dir = match data_dir {
            Some(d) => d.join("images"),
            None => default_cache_dir(),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Images { dir, limit_bytes: limit_mib.saturating_mul(1 << 20) }
    }

    /// The directory decompressed images go to.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that backs a volume whose image is `path`, decompressing a `*.gz` into the cache
    /// unless it is there already; `volume_bytes` also bounds the decompressed size.
    pub fn resolve(&self, path: &Path, volume_bytes: u64) -> Result<PathBuf, String> {
        // The canonical path (no `..`, no symbolic link): what a saved world and the hypervisor
        // read, whatever the current directory.
        let path = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let shown = path.display();
        if path.extension().is_none_or(|e| e != "gz") {
            return Ok(path);
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("image");
        let stem = name.strip_suffix(".gz").unwrap_or(name);
        let stem = stem.strip_suffix(".img").unwrap_or(stem);
        let hash = fnv1a(&path).map_err(|e| format!("{shown}: {e}"))?;
        let out = self.dir.join(format!("{stem}-{hash:016x}.img"));
        if out.is_file() {
            return Ok(out);
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let tmp = self.dir.join(format!(
            ".{stem}-{hash:016x}.{}.{}.tmp",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let cap = self.limit_bytes.min(volume_bytes);
        let result = decompress(&path, &tmp, cap).and_then(|written| {
            if written > cap {
                let why = if cap == self.limit_bytes {
                    format!("max_image_mib = {}", self.limit_bytes >> 20)
                } else {
                    format!("its volume's size_gib = {}", volume_bytes / GIB)
                };
                return Err(format!("{shown} decompresses to more than {cap} bytes, the limit of {why}; refused"));
            }
            std::fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))
        });
        if result.is_err() {
            // Best effort: a leftover temporary file is hidden and never used.
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| out)
    }
}

/// The default cache of decompressed images for an in-memory world (module documentation).
fn default_cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var("AGENTLESS_CACHE_DIR") {
        return d.join("images");
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return d.join("agentless").join("images");
    }
    if let Some(d) = var("HOME") {
        return d.join(".cache").join("agentless").join("images");
    }
    std::env::temp_dir().join("agentless").join("images")
}

/// FNV-1a of a file's bytes.
fn fnv1a(path: &Path) -> std::io::Result<u64> {
    let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut h = FNV_OFFSET;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(h);
        }
        for b in buf.iter().take(n) {
            h = (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
        }
    }
}

/// Decompress the gzip file `from` (every member) into `to`, stopping one byte past `cap`: the
/// bytes written (more than `cap` means too large).
fn decompress(from: &Path, to: &Path, cap: u64) -> Result<u64, String> {
    let input = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(input)).take(cap.saturating_add(1));
    let file = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let written = std::io::copy(&mut decoder, &mut out)
        .map_err(|e| format!("{}: not a readable gzip file: {e}", from.display()))?;
    out.flush().map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(written)
}
