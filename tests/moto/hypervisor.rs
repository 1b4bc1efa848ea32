//! The customer's side and EC2's side of a scan against moto (`super::Moto`), shared by the
//! orchestrator's end-to-end test (`tests/job/moto.rs`) and the daemon's (`tests/serve/moto.rs`):
//! a "customer" fleet of three instances with six volumes, each volume standing for one of the
//! demo disk images; and a test hypervisor that watches moto for our scanner instances and "boots"
//! each one as EC2 would: it follows the scanner's real block device mappings (device → scanner
//! volume → its snapshot → the snapshot's source volume → that volume's image), serves the
//! instance's user data over an IMDSv2 on loopback, runs `scanner-agent run` on a device directory
//! of symlinks, and, when the agent is done, powers the instance off (terminated, as its shutdown
//! behaviour says). The agent uploads its signed bundle to the collector URL of its manifest.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentless::cloud::ImageId;
use agentless::cloud::tags::{RESOURCE_NAME_PREFIX, SNAPSHOT_NAME_PREFIX};
use agentless::collector::identity::TestCa;
use aws_sdk_ec2::types as ec2t;
use base64::Engine as _;
use scanner_ami::job::JobManifest;

use super::ACCOUNT;
use crate::job::scanner_agent;

/// The customer's fleet: instance Name, and (device, demo image) per volume.
pub const FLEET: &[(&str, &[(&str, &str)])] = &[
    ("moto-web-1", &[("/dev/sda1", "demo-disk.img")]),
    ("moto-db-1", &[("/dev/sda1", "demo-rhel.img.gz"), ("/dev/sdf", "demo-pgdata.img.gz")]),
    (
        "moto-app-1",
        &[("/dev/sda1", "demo-alpine.img.gz"), ("/dev/sdf", "demo-appdata.img.gz"), ("/dev/sdg", "demo-logs.img.gz")],
    ),
];

/// How often the hypervisor lists moto's instances.
pub const HYPERVISOR_TICK: Duration = Duration::from_millis(100);

/// One customer volume and the image that stands for its bytes.
#[derive(Debug, Clone)]
pub struct CustomerVolume {
    /// The instance it is attached to, and that instance's Name.
    pub instance: String,
    pub name: String,
    pub device: String,
    pub volume: String,
    pub image: PathBuf,
}

impl CustomerVolume {
    /// The packages `scanner_ami::scan::scan_image` reads from the volume's image directly: what
    /// the stored result of a scan through the scanners must count.
    pub fn expected_packages(&self) -> usize {
        scanner_ami::scan::scan_image(
            &self.image,
            scanner_ami::scan::ScanOptions { baseline: false, ..Default::default() },
        )
        .expect("scan the image directly")
        .packages
        .len()
    }
}

/// The packages of `demo-disk.img` (the web server's volume): a fixed figure, so the direct scan
/// the expectations come from is checked too.
pub const WEB_PACKAGES: usize = 90;

/// `tests/data/demo/<file>`, decompressed into `dir` when it is a `.gz`.
pub fn demo_image(file: &str, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/demo").join(file);
    let Some(stem) = file.strip_suffix(".gz") else { return src };
    let out = dir.join(stem);
    if !out.is_file() {
        let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&src).expect("open demo image"));
        let mut f = std::fs::File::create(&out).expect("create image");
        std::io::copy(&mut gz, &mut f).expect("decompress demo image");
    }
    out
}

pub fn name_tag(resource: ec2t::ResourceType, name: &str) -> ec2t::TagSpecification {
    ec2t::TagSpecification::builder()
        .resource_type(resource)
        .tags(ec2t::Tag::builder().key("Name").value(name).build())
        .build()
}

/// An Amazon x86_64 image of moto's preloaded set that our `ImageId` accepts (moto's set also
/// holds made-up ids such as `ami-ekswin`).
pub async fn amazon_image(ec2: &aws_sdk_ec2::Client) -> ImageId {
    let out = ec2.describe_images().owners("amazon").send().await.expect("raw DescribeImages");
    out.images()
        .iter()
        .filter(|i| i.architecture() == Some(&ec2t::ArchitectureValues::X8664))
        .find_map(|i| i.image_id().and_then(|id| id.parse().ok()))
        .expect("moto preloads Amazon AMIs")
}

/// The fleet, made with the raw SDK: one RunInstances per instance with a block device mapping per
/// volume (moto then creates exactly those volumes), tagged like production servers.
pub async fn create_fleet(ec2: &aws_sdk_ec2::Client, image: &ImageId, images_dir: &Path) -> Vec<CustomerVolume> {
    let mut out = Vec::new();
    for (name, volumes) in FLEET {
        let mappings = volumes
            .iter()
            .map(|(device, _)| {
                ec2t::BlockDeviceMapping::builder()
                    .device_name(*device)
                    .ebs(
                        ec2t::EbsBlockDevice::builder()
                            .volume_size(8)
                            .volume_type(ec2t::VolumeType::Gp3)
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build()
            })
            .collect();
        let run = ec2
            .run_instances()
            .image_id(image.as_str())
            .instance_type(ec2t::InstanceType::T3Small)
            .min_count(1)
            .max_count(1)
            .set_block_device_mappings(Some(mappings))
            .tag_specifications(name_tag(ec2t::ResourceType::Instance, name))
            .tag_specifications(name_tag(ec2t::ResourceType::Volume, &format!("{name}-data")))
            .send()
            .await
            .expect("customer RunInstances");
        let instance = run.instances()[0].instance_id().expect("instance id").to_owned();
        let described = ec2.describe_instances().instance_ids(&instance).send().await.expect("customer DI");
        let ri = &described.reservations()[0].instances()[0];
        for (device, file) in *volumes {
            let volume = ri
                .block_device_mappings()
                .iter()
                .find(|m| m.device_name() == Some(*device))
                .and_then(|m| m.ebs())
                .and_then(|e| e.volume_id())
                .unwrap_or_else(|| panic!("{name} has no volume at {device}: {ri:?}"))
                .to_owned();
            out.push(CustomerVolume {
                instance: instance.clone(),
                name: (*name).to_owned(),
                device: (*device).to_owned(),
                volume,
                image: demo_image(file, images_dir),
            });
        }
    }
    out
}

/// A minimal IMDSv2 for one instance (EC2 User Guide, "Use the Instance Metadata Service"): `PUT
/// /latest/api/token` (with the TTL header) returns a token, which `GET /latest/user-data`,
/// `GET /latest/meta-data/instance-id` and `GET /latest/dynamic/instance-identity/rsa2048` (the
/// identity document signed by the hypervisor's test CA, as AWS's PKCS#7) require (401 without).
struct Imds {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Imds {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Imds {
    async fn start(user_data: Vec<u8>, instance_id: String, rsa2048: String) -> Imds {
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::{get, put};
        let token = uuid::Uuid::new_v4().simple().to_string();
        let ok =
            move |h: &HeaderMap, t: &str| h.get("x-aws-ec2-metadata-token").and_then(|v| v.to_str().ok()) == Some(t);
        let (t1, t2, t3, t4) = (token.clone(), token.clone(), token.clone(), token);
        let app = axum::Router::new()
            .route(
                "/latest/api/token",
                put(move |h: HeaderMap| async move {
                    if h.get("x-aws-ec2-metadata-token-ttl-seconds").is_none() {
                        return (StatusCode::BAD_REQUEST, String::new());
                    }
                    (StatusCode::OK, t1.clone())
                }),
            )
            .route(
                "/latest/user-data",
                get(move |h: HeaderMap| async move {
                    if ok(&h, &t2) {
                        (StatusCode::OK, user_data.clone())
                    } else {
                        (StatusCode::UNAUTHORIZED, Vec::new())
                    }
                }),
            )
            .route(
                "/latest/meta-data/instance-id",
                get(move |h: HeaderMap| async move {
                    if ok(&h, &t3) {
                        (StatusCode::OK, instance_id.clone())
                    } else {
                        (StatusCode::UNAUTHORIZED, String::new())
                    }
                }),
            )
            .route(
                "/latest/dynamic/instance-identity/rsa2048",
                get(move |h: HeaderMap| async move {
                    if ok(&h, &t4) {
                        (StatusCode::OK, rsa2048.clone())
                    } else {
                        (StatusCode::UNAUTHORIZED, String::new())
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("IMDS listens");
        let url = format!("http://{}", listener.local_addr().expect("IMDS address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Imds { url, task }
    }
}

/// What the hypervisor saw of one scanner it booted.
#[derive(Debug, Clone)]
pub struct Boot {
    pub instance: String,
    pub manifest: JobManifest,
    pub imds_v2_required: bool,
    pub shutdown_behavior: String,
    /// (device name, source volume) as followed through moto.
    pub devices: Vec<(String, String)>,
    /// The agent's exit status.
    pub exit: Option<i32>,
}

#[derive(Debug, Default)]
pub struct Log {
    pub boots: Vec<Boot>,
    pub failures: Vec<String>,
}

/// Watches moto for running scanner instances and boots each once; stops when dropped.
pub struct TestHypervisor {
    task: tokio::task::JoinHandle<()>,
    pub log: Arc<Mutex<Log>>,
    /// Signs the scanners' identity documents: the collector under test must trust it.
    pub ca: Arc<TestCa>,
}

impl Drop for TestHypervisor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Host {
    ec2: aws_sdk_ec2::Client,
    /// Customer volume id → its image.
    images: HashMap<String, PathBuf>,
    work: PathBuf,
    agent: PathBuf,
    log: Arc<Mutex<Log>>,
    ca: Arc<TestCa>,
}

impl Host {
    fn fail(&self, msg: String) {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).failures.push(msg);
    }

    /// Running instances whose Name carries our prefix.
    async fn running_scanners(&self) -> Result<Vec<ec2t::Instance>, String> {
        let out = self
            .ec2
            .describe_instances()
            .filters(ec2t::Filter::builder().name("tag:Name").values(format!("{RESOURCE_NAME_PREFIX}*")).build())
            .filters(ec2t::Filter::builder().name("instance-state-name").values("running").build())
            .send()
            .await
            .map_err(|e| format!("DescribeInstances: {e:?}"))?;
        Ok(out.reservations().iter().flat_map(|r| r.instances()).cloned().collect())
    }

    async fn attribute(&self, instance: &str, name: ec2t::InstanceAttributeName) -> Result<Option<String>, String> {
        let out = self
            .ec2
            .describe_instance_attribute()
            .instance_id(instance)
            .attribute(name.clone())
            .send()
            .await
            .map_err(|e| format!("{instance}: DescribeInstanceAttribute {}: {e:?}", name.as_str()))?;
        Ok(match name {
            ec2t::InstanceAttributeName::UserData => out.user_data().and_then(|v| v.value()).map(str::to_owned),
            _ => out.instance_initiated_shutdown_behavior().and_then(|v| v.value()).map(str::to_owned),
        })
    }

    /// The source volume of the scanner volume at `device`: device → volume → snapshot → volume.
    async fn source_volume(&self, i: &ec2t::Instance, device: &str) -> Result<(String, String), String> {
        let id = i.instance_id().unwrap_or_default();
        let volume = i
            .block_device_mappings()
            .iter()
            .find(|m| m.device_name() == Some(device))
            .and_then(|m| m.ebs())
            .and_then(|e| e.volume_id())
            .ok_or_else(|| format!("{id}: nothing attached at {device}"))?;
        let v = self.ec2.describe_volumes().volume_ids(volume).send().await.map_err(|e| format!("{e:?}"))?;
        let snapshot = v
            .volumes()
            .first()
            .and_then(|v| v.snapshot_id())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{id}: its volume {volume} at {device} was not created from a snapshot"))?
            .to_owned();
        let s = self.ec2.describe_snapshots().snapshot_ids(&snapshot).send().await.map_err(|e| format!("{e:?}"))?;
        let source = s
            .snapshots()
            .first()
            .and_then(|s| s.volume_id())
            .ok_or_else(|| format!("{id}: snapshot {snapshot} names no source volume"))?
            .to_owned();
        Ok((snapshot, source))
    }

    /// Boot one scanner: its manifest, its disks, the agent, then power off.
    async fn boot(&self, i: ec2t::Instance) -> Result<(), String> {
        let id = i.instance_id().unwrap_or_default().to_owned();
        let user_data = self
            .attribute(&id, ec2t::InstanceAttributeName::UserData)
            .await?
            .ok_or_else(|| format!("{id}: no user data"))?;
        let user_data = base64::engine::general_purpose::STANDARD
            .decode(user_data.trim())
            .map_err(|e| format!("{id}: user data is not base64: {e}"))?;
        let manifest = JobManifest::parse(&user_data).map_err(|e| format!("{id}: {e}"))?;
        let shutdown_behavior = self
            .attribute(&id, ec2t::InstanceAttributeName::InstanceInitiatedShutdownBehavior)
            .await?
            .unwrap_or_default();
        let imds_v2_required =
            i.metadata_options().and_then(|m| m.http_tokens()) == Some(&ec2t::HttpTokensState::Required);

        let dev_root = self.work.join(&id);
        let dev = dev_root.join("dev");
        std::fs::create_dir_all(&dev).map_err(|e| format!("{}: {e}", dev.display()))?;
        let mut devices = Vec::new();
        for d in &manifest.devices {
            let (snapshot, source) = self.source_volume(&i, &d.device_name).await?;
            if snapshot != d.snapshot_id || source != d.volume_id {
                return Err(format!(
                    "{id}: {} holds snapshot {snapshot} of {source}; the manifest says {} of {}",
                    d.device_name, d.snapshot_id, d.volume_id
                ));
            }
            let image = self.images.get(&source).ok_or_else(|| format!("{id}: {source} is no customer volume"))?;
            let short = d.device_name.strip_prefix("/dev/").ok_or_else(|| format!("{id}: {}", d.device_name))?;
            std::os::unix::fs::symlink(image, dev.join(short)).map_err(|e| format!("{id}: symlink: {e}"))?;
            devices.push((d.device_name.clone(), source));
        }

        // The identity document: the instance, moto's account, the Region of its zone.
        let zone = i.placement().and_then(|p| p.availability_zone()).unwrap_or_default();
        let region = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
        let document = TestCa::document(&id, ACCOUNT, region);
        let rsa2048 = self.ca.sign(&document).map_err(|e| format!("{id}: signing its identity: {e}"))?;
        let imds = Imds::start(user_data, id.clone(), rsa2048).await;
        let out = tokio::process::Command::new(&self.agent)
            .arg("run")
            .arg("--imds-endpoint")
            .arg(&imds.url)
            .arg("--dev-root")
            .arg(&dev_root)
            .arg("--no-poweroff")
            .env("SCANNER_AGENT_LOG", "warn")
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("{id}: cannot run {}: {e}", self.agent.display()))?;
        let exit = out.status.code();
        if !matches!(exit, Some(0 | 1)) {
            self.fail(format!(
                "{id}: scanner-agent exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.log.lock().unwrap_or_else(PoisonError::into_inner).boots.push(Boot {
            instance: id.clone(),
            manifest,
            imds_v2_required,
            shutdown_behavior: shutdown_behavior.clone(),
            devices,
            exit,
        });
        // The agent powers off after its upload (not here: --no-poweroff); with shutdown behaviour
        // `terminate` EC2 then terminates the instance. The guest does it, so no IAM applies.
        if shutdown_behavior == "terminate" {
            self.ec2.terminate_instances().instance_ids(&id).send().await.map_err(|e| format!("{id}: {e:?}"))?;
        } else {
            self.ec2.stop_instances().instance_ids(&id).send().await.map_err(|e| format!("{id}: {e:?}"))?;
        }
        Ok(())
    }
}

impl TestHypervisor {
    /// Stop watching; what was booted and what went wrong.
    pub fn stop(self) -> (Vec<Boot>, Vec<String>) {
        self.task.abort();
        let l = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        (l.boots.clone(), l.failures.clone())
    }

    pub fn start(ec2: aws_sdk_ec2::Client, images: HashMap<String, PathBuf>, work: PathBuf) -> TestHypervisor {
        let log = Arc::new(Mutex::new(Log::default()));
        let ca = Arc::new(TestCa::generate().expect("test CA"));
        let host =
            Arc::new(Host { ec2, images, work, agent: scanner_agent(), log: Arc::clone(&log), ca: Arc::clone(&ca) });
        let task = tokio::spawn(async move {
            let mut seen: HashSet<String> = HashSet::new();
            loop {
                match host.running_scanners().await {
                    Ok(found) => {
                        for i in found {
                            let Some(id) = i.instance_id().map(str::to_owned) else { continue };
                            if !seen.insert(id) {
                                continue;
                            }
                            let h = Arc::clone(&host);
                            tokio::spawn(async move {
                                if let Err(e) = h.boot(i).await {
                                    h.fail(e);
                                }
                            });
                        }
                    }
                    Err(e) => host.fail(e),
                }
                tokio::time::sleep(HYPERVISOR_TICK).await;
            }
        });
        TestHypervisor { task, log, ca }
    }
}

/// Resources with our Name prefixes still in moto (terminated instances and deleted endpoints,
/// which moto keeps listing, do not count).
pub async fn leftovers(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let ours = ec2t::Filter::builder()
        .name("tag:Name")
        .values(format!("{RESOURCE_NAME_PREFIX}*"))
        .values(format!("{SNAPSHOT_NAME_PREFIX}*"))
        .build();
    let mut left = Vec::new();
    let out = ec2.describe_instances().filters(ours.clone()).send().await.expect("instances");
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        if i.state().and_then(|s| s.name()) != Some(&ec2t::InstanceStateName::Terminated) {
            left.push(format!("instance {:?} {:?}", i.instance_id(), i.state().and_then(|s| s.name())));
        }
    }
    let out = ec2.describe_volumes().filters(ours.clone()).send().await.expect("volumes");
    left.extend(out.volumes().iter().map(|v| format!("volume {:?}", v.volume_id())));
    // `OwnerIds=self` is ignored by moto (docs/references.md): the owner-id filter.
    let out = ec2
        .describe_snapshots()
        .filters(ours.clone())
        .filters(ec2t::Filter::builder().name("owner-id").values(ACCOUNT).build())
        .send()
        .await
        .expect("snapshots");
    left.extend(out.snapshots().iter().map(|s| format!("snapshot {:?}", s.snapshot_id())));
    let out = ec2.describe_vpcs().filters(ours.clone()).send().await.expect("vpcs");
    left.extend(out.vpcs().iter().map(|v| format!("vpc {:?}", v.vpc_id())));
    let out = ec2.describe_subnets().filters(ours.clone()).send().await.expect("subnets");
    left.extend(out.subnets().iter().map(|s| format!("subnet {:?}", s.subnet_id())));
    let out = ec2.describe_security_groups().filters(ours.clone()).send().await.expect("sgs");
    left.extend(out.security_groups().iter().map(|g| format!("sg {:?}", g.group_id())));
    let out = ec2.describe_internet_gateways().filters(ours.clone()).send().await.expect("igws");
    left.extend(out.internet_gateways().iter().map(|g| format!("igw {:?}", g.internet_gateway_id())));
    let out = ec2.describe_vpc_endpoints().filters(ours).send().await.expect("endpoints");
    for e in out.vpc_endpoints() {
        let state = e.state().map(|s| s.as_str().to_ascii_lowercase()).unwrap_or_default();
        if state != "deleted" && state != "deleting" {
            left.push(format!("vpce {:?} {:?}", e.vpc_endpoint_id(), e.state()));
        }
    }
    left
}
