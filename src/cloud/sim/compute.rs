//! Instances, volumes and images: Describe, `RunInstances` of a scanner, `TerminateInstances`,
//! `StopInstances`, `CopyImage`.
//!
//! AWS semantics kept (EC2 API Reference and User Guide):
//! - `RunInstances` is idempotent on `ClientToken` (a repeat returns the first launch; one with
//!   other parameters is `IdempotentParameterMismatch`), checks its image, subnet, security groups
//!   (same VPC as the subnet) and snapshots (`completed`), counts attachments against the instance
//!   type's limit ([`super::limits::InstanceTypeSpec`]: root + data volumes + ENI for the shared
//!   Nitro limit, EBS volumes only for a dedicated one, docs/references.md), and the Region's
//!   running On-Demand vCPUs against the quota when the fleet sets one (`VcpuLimitExceeded`),
//!   creates the root volume from the image and one volume per snapshot, all tagged by the call's
//!   volume tags and `DeleteOnTermination`, the primary ENI with the call's network-interface
//!   tags, and starts `pending`. `AttachmentLimitExceeded` is the code `AttachVolume` returns past
//!   the limit (EC2 API Reference, `AttachVolume`; EC2 error codes: "You've reached the limit on
//!   the number of Amazon EBS volumes or network interfaces that can be attached to a single
//!   instance"); that `RunInstances` returns the same code for too many block device mappings is
//!   INFERENCE (AWS documents no other).
//! - A volume from a snapshot under a customer managed key needs KMS to let EC2 use the key for
//!   the caller (`policies/README.md`, "What EC2 asks of KMS for our volumes"): a key policy that
//!   names the caller, or defers to IAM policies that allow it, or a grant whose constraint (if
//!   any) names the volume being created, which none made before the launch can
//!   ([`super::kms`], INFERENCE (c)). Otherwise the call succeeds and the launch fails (INFERENCE (e)): the instance ends `terminated` with state
//!   reason `Client.InternalError` ([`KMS_LAUNCH_FAILURE_CODE`]), as AWS reports a launch whose
//!   volume key the caller cannot use, not a synchronous error.
//! - Terminate: `pending`/`running`/`stopping`/`stopped` go `shutting-down`, then `terminated`
//!   ([`super::lifecycle`] releases volumes and ENIs). Stop: only `running` (or already
//!   stopping/stopped) instances, else `IncorrectInstanceState`; an unknown id fails the whole call.

use crate::cloud::Call;
use crate::cloud::error::CloudError;
use crate::cloud::ids::{ImageId, InstanceId, KmsKeyId, NetworkInterfaceId, SnapshotId, VolumeId};
use crate::cloud::ops::*;
use crate::cloud::tags::Tags;

use super::Ctx;
use super::authorize::{OnBehalf, real};
use super::consistency::view;
use super::describe::{Describable, describe, describe_with};
use super::faults::InstanceFault;
use super::kms;
use super::limits::InstanceTypeSpec;
use super::state::{
    Attachment, EniOwner, Image, Instance, Life, Manager, NetworkInterface, ShutdownBehavior, SnapState, Volume,
};

/// The API's state for a [`Life`].
#[must_use]
pub fn instance_state(life: Life) -> InstanceState {
    match life {
        Life::Pending { .. } => InstanceState::Pending,
        Life::Running => InstanceState::Running,
        Life::Stopping { .. } => InstanceState::Stopping,
        Life::Stopped => InstanceState::Stopped,
        Life::ShuttingDown { .. } => InstanceState::ShuttingDown,
        Life::Terminated { .. } => InstanceState::Terminated,
    }
}

/// `pending`, `running`... as filters and the API spell them.
fn state_name(life: Life) -> &'static str {
    match life {
        Life::Pending { .. } => "pending",
        Life::Running => "running",
        Life::Stopping { .. } => "stopping",
        Life::Stopped => "stopped",
        Life::ShuttingDown { .. } => "shutting-down",
        Life::Terminated { .. } => "terminated",
    }
}

fn one(s: impl Into<String>) -> Option<Vec<String>> {
    Some(vec![s.into()])
}

fn opt(s: Option<&str>) -> Option<Vec<String>> {
    Some(s.map(|v| vec![v.to_owned()]).unwrap_or_default())
}

impl Describable for Instance {
    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        match name {
            "instance-id" => one(id),
            "instance-state-name" => one(state_name(self.life)),
            "instance-type" => one(&self.instance_type),
            "availability-zone" => one(&self.availability_zone),
            "vpc-id" => opt(self.vpc.as_ref().map(|v| v.as_str())),
            "subnet-id" => opt(self.subnet.as_ref().map(|v| v.as_str())),
            "image-id" => opt(self.image.as_ref().map(|v| v.as_str())),
            "client-token" => opt(self.client_token.as_deref()),
            "block-device-mapping.volume-id" => {
                Some(self.attachments.iter().map(|a| a.volume_id.to_string()).collect())
            }
            _ => None,
        }
    }
}

impl Describable for Volume {
    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        match name {
            "volume-id" => one(id),
            "status" => one(if self.attached.is_some() { "in-use" } else { "available" }),
            "size" => one(self.size_gib.to_string()),
            "availability-zone" => one(&self.availability_zone),
            "volume-type" => one(&self.volume_type),
            "encrypted" => one(self.encrypted.to_string()),
            "snapshot-id" => opt(self.snapshot_id.as_ref().map(|v| v.as_str())),
            "attachment.instance-id" => opt(self.attached.as_ref().map(|(i, _)| i.as_str())),
            "attachment.device" => opt(self.attached.as_ref().map(|(_, d)| d.as_str())),
            _ => None,
        }
    }
}

/// An image with the timeline's now, for its state.
struct ImageAt<'a>(&'a Image, u64);

impl ImageAt<'_> {
    fn state(&self) -> &'static str {
        if self.1 >= self.0.available_ms { "available" } else { "pending" }
    }
}

impl Describable for ImageAt<'_> {
    fn tags(&self) -> &Tags {
        &self.0.tags
    }

    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        let i = self.0;
        match name {
            "image-id" => one(id),
            "name" => one(&i.name),
            "state" => one(self.state()),
            "architecture" => one(&i.architecture),
            "owner-id" => one(i.owner.as_str()),
            "owner-alias" => opt(i.owner_alias.as_deref()),
            "root-device-name" => one(&i.root_device_name),
            "is-public" => one(i.owner_alias.is_some().to_string()),
            _ => None,
        }
    }
}

pub fn describe_instances(
    ctx: &mut Ctx<'_>,
    input: &DescribeInput<InstanceId>,
) -> Result<Page<InstanceInfo>, CloudError> {
    ctx.authorize(Call::DescribeInstances(input))?;
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let out = describe(input, view(r, |r| &r.instances, now_ms, lag_ms).into_iter(), |id, i| InstanceInfo {
        id: id.clone(),
        state: instance_state(i.life),
        instance_type: i.instance_type.clone(),
        availability_zone: i.availability_zone.clone(),
        root_device_name: i.root_device_name.clone(),
        volumes: i
            .attachments
            .iter()
            .map(|a| AttachedVolume {
                device_name: a.device_name.clone(),
                volume_id: a.volume_id.clone(),
                delete_on_termination: a.delete_on_termination,
            })
            .collect(),
        network_interfaces: i.network_interfaces.clone(),
        tags: i.tags.clone(),
    });
    out.map_err(|e| ctx.describe_err(e, "InvalidInstanceID.NotFound"))
}

pub fn describe_volumes(ctx: &mut Ctx<'_>, input: &DescribeInput<VolumeId>) -> Result<Page<VolumeInfo>, CloudError> {
    ctx.authorize(Call::DescribeVolumes(input))?;
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let out = describe(input, view(r, |r| &r.volumes, now_ms, lag_ms).into_iter(), |id, v| VolumeInfo {
        id: id.clone(),
        state: if v.attached.is_some() { VolumeState::InUse } else { VolumeState::Available },
        size_gib: v.size_gib,
        volume_type: v.volume_type.clone(),
        availability_zone: v.availability_zone.clone(),
        encrypted: v.encrypted,
        kms_key_id: v.kms_key_id.clone(),
        attachments: v.attached.iter().cloned().collect(),
        tags: v.tags.clone(),
    });
    out.map_err(|e| ctx.describe_err(e, "InvalidVolume.NotFound"))
}

pub fn describe_images(ctx: &mut Ctx<'_>, input: &DescribeImagesInput) -> Result<Page<ImageInfo>, CloudError> {
    ctx.authorize(Call::DescribeImages(input))?;
    let (account, now) = (ctx.account.clone(), ctx.now_ms);
    let (_, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let owned = |i: &Image| {
        input.owners.is_empty()
            || input.owners.iter().any(|o| match o.as_str() {
                "self" => i.owner == account,
                alias if i.owner_alias.as_deref() == Some(alias) => true,
                other => i.owner.as_str() == other,
            })
    };
    let images = view(r, |r| &r.images, now, lag_ms).into_iter();
    let out = describe_with(
        &input.describe,
        images,
        |i| owned(i).then_some(ImageAt(i, now)),
        |id, i| ImageInfo {
            id: id.clone(),
            name: i.0.name.clone(),
            state: i.state().to_owned(),
            owner: i.0.owner.clone(),
            root_device_name: Some(i.0.root_device_name.clone()),
            root_size_gib: i32::try_from(i.0.root_size_gib).ok(),
            tags: i.0.tags.clone(),
        },
    );
    out.map_err(|e| ctx.describe_err(e, "InvalidAMIID.NotFound"))
}

pub fn copy_image(ctx: &mut Ctx<'_>, input: &CopyImageInput) -> Result<CopyImageOutput, CloudError> {
    let source = ctx.reg_of(&input.source_region)?.images.get(&input.source.id).cloned();
    let Some(source) = source else {
        return Err(ctx.not_found("InvalidAMIID.NotFound", "image id", input.source.id.as_str()));
    };
    let checked = CopyImageInput { source: real(&input.source.id, &source.tags), ..input.clone() };
    ctx.authorize(Call::CopyImage(&checked))?;
    let account = ctx.account.clone();
    if ctx.reg()?.images.values().any(|i| i.owner == account && i.name == input.name) {
        return Err(ctx.err(
            "InvalidAMIName.Duplicate",
            format!("AMI name {} is already in use by an AMI owned by this account", input.name),
            Vec::new(),
        ));
    }
    let id: ImageId = ctx.new_id("ami")?;
    let latency = ctx.world.settings.latencies.snapshot_ms(source.root_size_gib);
    let image = Image {
        name: input.name.clone(),
        description: input.description.clone(),
        owner: account,
        owner_alias: None,
        architecture: source.architecture.clone(),
        root_device_name: source.root_device_name.clone(),
        root_size_gib: source.root_size_gib,
        // CopyImage keeps the source's block device mappings.
        root_delete_on_termination: source.root_delete_on_termination,
        encrypted: input.encrypted || source.encrypted,
        kms_key_id: input.kms_key_id.clone(),
        available_ms: ctx.now_ms.saturating_add(latency),
        tags: input.tags.clone(),
    };
    ctx.reg()?.images.insert(id.clone(), image);
    ctx.dirty = true;
    Ok(CopyImageOutput { image_id: id })
}

/// The key to put in a `ScannerVolume` for the authorization: the snapshot's key if customer
/// managed (EC2 then calls KMS with our credentials).
fn customer_key(ctx: &mut Ctx<'_>, key: Option<&KmsKeyId>) -> Result<Option<KmsKeyId>, CloudError> {
    let Some(key) = key else { return Ok(None) };
    let manager = ctx.reg()?.key(key).map(|k| k.manager);
    Ok(match manager {
        Some(Manager::Customer) => Some(key.clone()),
        Some(Manager::Aws) | None => None,
    })
}

/// A data volume of a launch whose snapshot is under a customer managed key (the new volume is
/// under the same key: the sim has no `KmsKeyId` in scanner block device mappings).
struct KeyedVolume {
    key: KmsKeyId,
}

/// Why an earlier launch with the same `ClientToken` is not this one (the parameters AWS compares
/// that the sim keeps), if it is not.
fn mismatch(
    ctx: &mut Ctx<'_>,
    earlier: &Instance,
    input: &RunScannerInput,
) -> Result<Option<&'static str>, CloudError> {
    let mut theirs: Vec<_> = earlier.security_groups.clone();
    let mut ours: Vec<_> = input.security_groups.iter().map(|g| g.id.clone()).collect();
    theirs.sort();
    ours.sort();
    let field = if earlier.image.as_ref() != Some(&input.image.id) {
        Some("ImageId")
    } else if earlier.instance_type != input.instance_type {
        Some("InstanceType")
    } else if earlier.subnet.as_ref() != Some(&input.subnet.id) {
        Some("SubnetId")
    } else if theirs != ours {
        Some("SecurityGroupIds")
    } else if earlier.user_data_base64.as_deref() != Some(input.user_data_base64.as_str()) {
        Some("UserData")
    } else if earlier.tags != input.instance_tags {
        Some("TagSpecifications")
    } else {
        None
    };
    if field.is_some() || earlier.attachments.is_empty() {
        // A terminated instance released its volumes: the mapping can no longer be compared.
        return Ok(field);
    }
    let r = ctx.reg()?;
    let mut mapped: Vec<(String, Option<SnapshotId>)> = earlier
        .attachments
        .iter()
        .filter(|a| earlier.root_device_name.as_deref() != Some(a.device_name.as_str()))
        .map(|a| (a.device_name.clone(), r.volumes.get(&a.volume_id).and_then(|v| v.snapshot_id.clone())))
        .collect();
    let mut asked: Vec<(String, Option<SnapshotId>)> =
        input.volumes.iter().map(|v| (v.device_name.clone(), Some(v.snapshot.id.clone()))).collect();
    mapped.sort();
    asked.sort();
    Ok((mapped != asked).then_some("BlockDeviceMappings"))
}

/// `RunInstances` of a scanner. Checked in this order: the `ClientToken` (a repeat with the same
/// parameters returns the first launch, different ones are `IdempotentParameterMismatch`), the
/// instance type (`InvalidParameterValue` if the sim does not know it), its attachment limit and
/// the Region's On-Demand vCPU quota, the image, subnet, security groups and snapshots, then IAM
/// on the caller's requests. The KMS requests EC2 makes for volumes from snapshots under a
/// customer managed key are settled last, by the key policy and grants ([`super::kms::on_behalf`]):
/// refused, the launch fails as on AWS — the call succeeds and the instance goes to `terminated`
/// with state reason [`KMS_LAUNCH_FAILURE_CODE`] ([`KMS_LAUNCH_FAILURE_MESSAGE`]), releasing its
/// volumes and interface.
pub fn run_scanner(ctx: &mut Ctx<'_>, input: &RunScannerInput) -> Result<RunScannerOutput, CloudError> {
    // ClientToken: a repeat returns the first launch, if it asked for the same (EC2 API Reference,
    // "Ensuring idempotency": "If you repeat the request with the same client token but change
    // another request parameter, Amazon EC2 returns an IdempotentParameterMismatch error").
    let earlier = ctx.reg()?.instance_by_client_token(&input.client_token).map(|(id, i)| (id.clone(), i.clone()));
    if let Some((id, i)) = earlier {
        if let Some(field) = mismatch(ctx, &i, input)? {
            return Err(ctx.err(
                "IdempotentParameterMismatch",
                format!(
                    "Arguments on this idempotent request are inconsistent with arguments used in previous request(s) \
                     (ClientToken {}, {field} differs from the launch of {id}).",
                    input.client_token
                ),
                vec![id.to_string()],
            ));
        }
        return Ok(RunScannerOutput { instance_id: id, network_interfaces: i.network_interfaces.clone() });
    }
    let Some(spec) = ctx.world.settings.instance_type(&input.instance_type) else {
        return Err(ctx.err(
            "InvalidParameterValue",
            format!(
                "The instance type '{}' does not exist in the simulated world (add it to [instance_types] in the fleet \
                 file).",
                input.instance_type
            ),
            Vec::new(),
        ));
    };
    // The root volume and the data volumes; one network interface.
    let volumes = u32::try_from(input.volumes.len()).unwrap_or(u32::MAX).saturating_add(1);
    if let Some(limit) = spec.exceeded(volumes, 1, ctx.world.settings.quotas.attachments_per_instance) {
        let what = if spec.dedicated_ebs_attachments.is_some() {
            format!("{volumes} EBS volumes exceed the {limit} dedicated EBS attachments")
        } else {
            format!("{volumes} EBS volumes and 1 network interface exceed the {limit} attachments")
        };
        return Err(ctx.err(
            "AttachmentLimitExceeded",
            format!("{what} of a {} instance", input.instance_type),
            Vec::new(),
        ));
    }
    if let Some(limit) = ctx.world.settings.quotas.vcpus_per_region
        && InstanceTypeSpec::standard_bucket(&input.instance_type)
    {
        // Pending and running instances hold vCPUs (INFERENCE: AWS counts "running" instances;
        // a pending one is already placed).
        let types: Vec<String> = ctx
            .reg()?
            .instances
            .values()
            .filter(|i| matches!(i.life, Life::Pending { .. } | Life::Running))
            .filter(|i| InstanceTypeSpec::standard_bucket(&i.instance_type))
            .map(|i| i.instance_type.clone())
            .collect();
        let settings = &ctx.world.settings;
        let running =
            types.iter().filter_map(|t| settings.instance_type(t)).fold(0u32, |n, t| n.saturating_add(t.vcpus));
        if running.saturating_add(spec.vcpus) > limit {
            return Err(ctx.err(
                "VcpuLimitExceeded",
                format!(
                    "You have requested more vCPU capacity than your current vCPU limit of {limit} allows for the \
                     instance bucket that the specified instance type belongs to ({running} running, {} requested).",
                    spec.vcpus
                ),
                Vec::new(),
            ));
        }
    }
    let r = ctx.reg()?;
    let image = r.images.get(&input.image.id).cloned();
    let subnet = r.subnets.get(&input.subnet.id).cloned();
    let Some(image) = image else {
        return Err(ctx.not_found("InvalidAMIID.NotFound", "image id", input.image.id.as_str()));
    };
    if ctx.now_ms < image.available_ms {
        return Err(ctx.err(
            "InvalidAMIID.Unavailable",
            format!("Image {} is not available (pending)", input.image.id),
            vec![input.image.id.to_string()],
        ));
    }
    let Some(subnet) = subnet else {
        return Err(ctx.not_found("InvalidSubnetID.NotFound", "subnet ID", input.subnet.id.as_str()));
    };
    // A mapping of the root device must name the image's (else EC2 takes it for a new, empty
    // volume with no snapshot or size, and refuses it).
    if let Some(root) = &input.root
        && let Some(size) = root.size_gib
        && u32::try_from(size).map_or(true, |s| s < image.root_size_gib)
    {
        return Err(ctx.err(
            "InvalidBlockDeviceMapping",
            format!(
                "Volume of size {size}GiB is smaller than snapshot of {} for {}, expect size >= {}GiB",
                input.image.id, root.device_name, image.root_size_gib
            ),
            vec![input.image.id.to_string()],
        ));
    }
    if let Some(root) = input.root.as_ref().map(|r| &r.device_name)
        && *root != image.root_device_name
    {
        return Err(ctx.err(
            "InvalidBlockDeviceMapping",
            format!(
                "The device {root} has no snapshot or size: the root device of {} is {}",
                input.image.id, image.root_device_name
            ),
            vec![input.image.id.to_string()],
        ));
    }
    let mut groups = Vec::new();
    for g in &input.security_groups {
        let Some(group) = ctx.reg()?.security_groups.get(&g.id).cloned() else {
            return Err(ctx.not_found("InvalidGroup.NotFound", "security group", g.id.as_str()));
        };
        if group.vpc != subnet.vpc {
            return Err(ctx.err(
                "InvalidParameter",
                format!("Security group {} and subnet {} belong to different networks.", g.id, input.subnet.id),
                vec![g.id.to_string(), input.subnet.id.to_string()],
            ));
        }
        groups.push(real(&g.id, &group.tags));
    }
    let mut snaps = Vec::new();
    let mut volumes = Vec::new();
    let mut keyed = Vec::new();
    for v in &input.volumes {
        let Some(snap) = ctx.reg()?.snapshots.get(&v.snapshot.id).cloned() else {
            return Err(ctx.not_found("InvalidSnapshot.NotFound", "snapshot", v.snapshot.id.as_str()));
        };
        if snap.state != SnapState::Completed {
            return Err(ctx.err(
                "IncorrectState",
                format!(
                    "Snapshot {} is not completed; a volume can be created from a completed snapshot only",
                    v.snapshot.id
                ),
                vec![v.snapshot.id.to_string()],
            ));
        }
        if volumes.iter().any(|x: &ScannerVolume| x.device_name == v.device_name)
            || v.device_name == image.root_device_name
        {
            return Err(ctx.err(
                "InvalidBlockDeviceMapping",
                format!("The device name {} is used more than once", v.device_name),
                Vec::new(),
            ));
        }
        let kms_key = customer_key(ctx, snap.kms_key_id.as_ref())?;
        if let Some(key) = &kms_key {
            keyed.push(KeyedVolume { key: key.clone() });
        }
        volumes.push(ScannerVolume {
            device_name: v.device_name.clone(),
            snapshot: real(&v.snapshot.id, &snap.tags),
            kms_key,
        });
        snaps.push(snap);
    }
    let checked = RunScannerInput {
        image: real(&input.image.id, &image.tags),
        subnet: real(&input.subnet.id, &subnet.tags),
        security_groups: groups,
        volumes,
        ..input.clone()
    };
    let on_behalf = ctx.authorize_caller(Call::RunInstances(&checked))?;
    let kms_refusal = kms_refusal(ctx, &keyed, &on_behalf)?;

    let instance_id: InstanceId = ctx.new_id("i")?;
    let eni: NetworkInterfaceId = ctx.new_id("eni")?;
    let root_id: VolumeId = ctx.new_id("vol")?;
    let mut attachments = vec![Attachment {
        device_name: image.root_device_name.clone(),
        volume_id: root_id.clone(),
        // A root mapping in the request overrides the image's (only `DeleteOnTermination=true`
        // is ever sent: `ScannerRoot`).
        delete_on_termination: input.root.is_some() || image.root_delete_on_termination,
    }];
    let mut new_volumes = vec![(
        root_id,
        Volume {
            size_gib: image.root_size_gib,
            used_gib: image.root_size_gib,
            volume_type: "gp3".into(),
            availability_zone: subnet.availability_zone.clone(),
            encrypted: image.encrypted,
            kms_key_id: image.kms_key_id.clone(),
            snapshot_id: None,
            attached: Some((instance_id.clone(), image.root_device_name.clone())),
            backing: None,
            tags: input.volume_tags.clone(),
        },
    )];
    for (v, snap) in input.volumes.iter().zip(&snaps) {
        let id: VolumeId = ctx.new_id("vol")?;
        attachments.push(Attachment {
            device_name: v.device_name.clone(),
            volume_id: id.clone(),
            delete_on_termination: true,
        });
        new_volumes.push((
            id,
            Volume {
                size_gib: snap.volume_size_gib,
                used_gib: snap.used_gib,
                volume_type: "gp3".into(),
                availability_zone: subnet.availability_zone.clone(),
                encrypted: snap.encrypted,
                kms_key_id: snap.kms_key_id.clone(),
                snapshot_id: Some(v.snapshot.id.clone()),
                attached: Some((instance_id.clone(), v.device_name.clone())),
                backing: snap.backing.clone(),
                tags: input.volume_tags.clone(),
            },
        ));
    }
    let fault = ctx.instance_fault();
    let boot = match fault {
        Some(InstanceFault::NeverBoots) => ctx.world.settings.faults.stuck_pending_ms,
        Some(InstanceFault::NeverReports) | None => ctx.world.settings.latencies.instance_boot_ms,
    };
    let until_ms = ctx.now_ms.saturating_add(boot);
    // A refused KMS request ends the launch: `shutting-down` for the boot time (AWS shows
    // `pending`; the lifecycle has no pending-then-terminated path but a fault's), then
    // `terminated`, which releases the volumes and the interface.
    let (life, state_reason) = match &kms_refusal {
        Some(_) => (
            Life::ShuttingDown { until_ms: ctx.now_ms.saturating_add(ctx.world.settings.latencies.instance_boot_ms) },
            Some((KMS_LAUNCH_FAILURE_CODE.to_owned(), KMS_LAUNCH_FAILURE_MESSAGE.to_owned())),
        ),
        None => (Life::Pending { until_ms }, None),
    };
    let instance = Instance {
        instance_type: input.instance_type.clone(),
        availability_zone: subnet.availability_zone.clone(),
        subnet: Some(input.subnet.id.clone()),
        vpc: Some(subnet.vpc.clone()),
        security_groups: input.security_groups.iter().map(|g| g.id.clone()).collect(),
        image: Some(input.image.id.clone()),
        root_device_name: Some(image.root_device_name.clone()),
        attachments,
        network_interfaces: vec![eni.clone()],
        life,
        launched_ms: ctx.now_ms,
        public_ip: subnet.map_public_ip_on_launch,
        user_data_base64: Some(input.user_data_base64.clone()),
        http_tokens_required: true,
        shutdown_behavior: ShutdownBehavior::Terminate,
        client_token: Some(input.client_token.clone()),
        tags: input.instance_tags.clone(),
        fault: if kms_refusal.is_some() { None } else { fault },
        state_reason,
    };
    let r = ctx.reg()?;
    r.network_interfaces.insert(
        eni.clone(),
        NetworkInterface {
            subnet: input.subnet.id.clone(),
            vpc: subnet.vpc.clone(),
            owner: EniOwner::Instance(instance_id.clone()),
            security_groups: instance.security_groups.clone(),
            tags: input.network_interface_tags.clone(),
        },
    );
    r.volumes.extend(new_volumes);
    r.instances.insert(instance_id.clone(), instance);
    ctx.dirty = true;
    if let Some(why) = kms_refusal {
        tracing::debug!(instance = %instance_id, "simulated launch fails: {why}");
    }
    Ok(RunScannerOutput { instance_id, network_interfaces: vec![eni] })
}

/// The state reason of a launch that KMS refused (EC2 API Reference, `StateReason`:
/// "Client.InternalError: A client error caused the instance to terminate during launch"; AWS
/// Knowledge Center, "Why can't my IAM user or role with full Amazon EC2 permissions start an EC2
/// instance?": `{"Code": "Client.InternalError", "Message": "Client.InternalError: Client error
/// on launch"}` when the caller cannot use the KMS key of an attached volume).
pub const KMS_LAUNCH_FAILURE_CODE: &str = "Client.InternalError";
pub const KMS_LAUNCH_FAILURE_MESSAGE: &str = "Client.InternalError: Client error on launch";

/// Why KMS refuses a request EC2 makes for one of `keyed`, if it refuses one: each on-behalf
/// request on a key, for each volume under that key (each has its own encryption context).
fn kms_refusal(ctx: &mut Ctx<'_>, keyed: &[KeyedVolume], on_behalf: &[OnBehalf]) -> Result<Option<String>, CloudError> {
    let caller = ctx.caller_arn();
    for v in keyed {
        let key = ctx.reg()?.key(&v.key).cloned();
        let Some(key) = key else {
            return Ok(Some(format!("the key {} does not exist", v.key)));
        };
        let policy = kms::KeyPolicy {
            defers_to_iam: ctx.world.settings.keys_allowing_account_use.contains(&key.arn),
            names_caller: ctx.world.settings.keys_allowing_caller_use.contains(&key.arn),
        };
        for r in on_behalf.iter().filter(|r| r.resource == key.arn) {
            if let Err(why) = kms::on_behalf(&key, policy, &caller, &r.action, r.iam_allowed) {
                return Ok(Some(why));
            }
        }
    }
    Ok(None)
}

/// The instances of a terminate/stop call, each with its real tags; unknown ids fail the call.
fn existing(ctx: &mut Ctx<'_>, ids: &[Tagged<InstanceId>]) -> Result<Vec<(Tagged<InstanceId>, Life)>, CloudError> {
    let mut out = Vec::new();
    for t in ids {
        let Some(i) = ctx.reg()?.instances.get(&t.id) else {
            return Err(ctx.not_found("InvalidInstanceID.NotFound", "instance ID", t.id.as_str()));
        };
        out.push((real(&t.id, &i.tags), i.life));
    }
    Ok(out)
}

pub fn terminate_instances(
    ctx: &mut Ctx<'_>,
    input: &TerminateInstancesInput,
) -> Result<Vec<InstanceStateChange>, CloudError> {
    let found = existing(ctx, &input.instances)?;
    let checked = TerminateInstancesInput { instances: found.iter().map(|(t, _)| t.clone()).collect() };
    ctx.authorize(Call::TerminateInstances(&checked))?;
    let until_ms = ctx.now_ms.saturating_add(ctx.world.settings.latencies.instance_shutdown_ms);
    let mut changes = Vec::new();
    for (t, life) in found {
        let next = match life {
            Life::Pending { .. } | Life::Running | Life::Stopping { .. } | Life::Stopped => {
                Life::ShuttingDown { until_ms }
            }
            Life::ShuttingDown { .. } | Life::Terminated { .. } => life,
        };
        if let Some(i) = ctx.reg()?.instances.get_mut(&t.id) {
            i.life = next;
        }
        changes.push(InstanceStateChange {
            instance_id: t.id,
            previous: instance_state(life),
            current: instance_state(next),
        });
    }
    ctx.dirty = true;
    Ok(changes)
}

pub fn stop_instances(ctx: &mut Ctx<'_>, input: &StopInstancesInput) -> Result<Vec<InstanceStateChange>, CloudError> {
    let found = existing(ctx, &input.instances)?;
    let checked = StopInstancesInput { instances: found.iter().map(|(t, _)| t.clone()).collect() };
    ctx.authorize(Call::StopInstances(&checked))?;
    let until_ms = ctx.now_ms.saturating_add(ctx.world.settings.latencies.instance_stop_ms);
    let mut next = Vec::new();
    for (t, life) in &found {
        let n = match life {
            Life::Running => Life::Stopping { until_ms },
            Life::Stopping { .. } | Life::Stopped => *life,
            Life::Pending { .. } | Life::ShuttingDown { .. } | Life::Terminated { .. } => {
                return Err(ctx.err(
                    "IncorrectInstanceState",
                    format!(
                        "The instance '{}' is not in a state from which it can be stopped ({}).",
                        t.id,
                        state_name(*life)
                    ),
                    vec![t.id.to_string()],
                ));
            }
        };
        next.push(n);
    }
    let mut changes = Vec::new();
    for ((t, life), n) in found.into_iter().zip(next) {
        if let Some(i) = ctx.reg()?.instances.get_mut(&t.id) {
            i.life = n;
        }
        changes.push(InstanceStateChange {
            instance_id: t.id,
            previous: instance_state(life),
            current: instance_state(n),
        });
    }
    ctx.dirty = true;
    Ok(changes)
}
