//! The fleet file: a TOML description of the simulated world — accounts, their Regions, KMS keys,
//! instances with tags and volumes (size, used size, encryption, key, the disk image that backs
//! it), overrides of the quotas, latencies and throttling of [`super::limits`], and the faults to
//! inject ([`super::faults`], `[faults]`). Unknown keys
//! are refused, and every error names the key it is about (`accounts[0].instances[2].volumes[0].
//! kms_key`), or the line and column for a syntax error.
//!
//! ```toml
//! seed = 7
//! [quotas]
//! vpcs_per_region = 5
//! [latencies]
//! describe_lag_ms = 2000   # eventual consistency of Describe (consistency::REALISTIC_LAG_MS)
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
//! [[accounts.keys]]
//! name = "prod-db"
//! region = "us-east-1"
//! [[accounts.instances]]
//! region = "us-east-1"
//! tags = { Name = "web-1" }
//! [[accounts.instances.volumes]]
//! size_gib = 8
//! image = "../demo/demo-disk.img"   # relative to the fleet file
//! ```
//!
//! Every Region also gets what a new AWS account has there: three Availability Zones, a default
//! VPC (`172.31.0.0/16`, a default subnet per zone, an attached internet gateway, which count
//! against the quotas as on AWS, orchestrator-anchors 4.5), the AWS managed `aws/ebs` key, and two
//! public Amazon images (x86_64 and arm64) to launch from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SimError;
use super::faults::Faults;
use super::limits::{Latencies, Quotas, Settings, Throttling};
use super::network::insert_vpc;
use super::state::{
    AWS_EBS_ALIAS, Account, Attachment, EniOwner, Image, Instance, InternetGateway, Key, Life, Manager,
    NetworkInterface, Prng, RegionState, ShutdownBehavior, Subnet, Volume, WORLD_VERSION, World,
};
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
    #[serde(default)]
    pub accounts: Vec<FleetAccount>,
    /// The directory relative image paths are read from (the fleet file's).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_seed() -> u64 {
    1
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
            accounts: vec![FleetAccount {
                id: account,
                user: default_user(),
                regions,
                keys: Vec::new(),
                instances: Vec::new(),
            }],
            ..Fleet::default()
        }
    }

    /// The world this fleet describes.
    pub fn build(&self) -> Result<World, SimError> {
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
            },
        };
        self.faults.check().map_err(|e| invalid(e.key, e.message))?;
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
            let mut account = Account { user: a.user.clone(), regions: BTreeMap::new() };
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
                let id = setup.key_in(&a.id, &k.region, &k.description, Some(&k.name)).map_err(|e| match e {
                    SimError::UnknownRegion { region, .. } => SimError::Fleet(invalid(
                        format!("{key}.region"),
                        format!("{region} is not in the account's regions"),
                    )),
                    other => other,
                })?;
                key_ids.insert(k.name.as_str(), id);
            }
            for (ii, inst) in a.instances.iter().enumerate() {
                let key = format!("{at}.instances[{ii}]");
                setup.instance_in(&a.id, inst, &key, &key_ids, &self.base_dir)?;
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
}

impl<'a> Setup<'a> {
    pub(super) fn new(world: &'a mut World, now_ms: u64) -> Setup<'a> {
        Setup { world, now_ms }
    }

    /// The world being changed.
    pub fn world(&mut self) -> &mut World {
        self.world
    }

    fn region(&mut self, account: &AccountId, region: &Region) -> Result<&mut RegionState, SimError> {
        self.world
            .accounts
            .get_mut(account)
            .ok_or_else(|| SimError::UnknownAccount(account.clone()))?
            .regions
            .get_mut(region)
            .ok_or_else(|| SimError::UnknownRegion { account: account.clone(), region: region.clone() })
    }

    /// A customer managed key in the first account; its ARN.
    pub fn key(&mut self, region: &Region, description: &str) -> Result<KmsKeyId, SimError> {
        let account = self.first_account()?;
        self.key_in(&account, region, description, None)
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
        Ok(id)
    }

    /// A customer instance in the first account (tags, volumes as in a fleet file, with no key
    /// names); its id.
    pub fn instance(&mut self, spec: &FleetInstance) -> Result<InstanceId, SimError> {
        let account = self.first_account()?;
        self.instance_in(&account, spec, "instance", &BTreeMap::new(), Path::new("."))
    }

    fn instance_in(
        &mut self,
        account: &AccountId,
        spec: &FleetInstance,
        at: &str,
        keys: &BTreeMap<&str, KmsKeyId>,
        base_dir: &Path,
    ) -> Result<InstanceId, SimError> {
        let id_err = |source| SimError::Fleet(FleetError::Id { key: at.to_owned(), source });
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
            let backing = v.image.as_ref().map(|p| if p.is_absolute() { p.clone() } else { base_dir.join(p) });
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
