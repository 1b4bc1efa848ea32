//! The EC2 operations of the AWS backend: requests built from the seam's types, responses read
//! back into them.
//!
//! - Every create carries its tags in `TagSpecifications` (never a later `CreateTags`); an empty
//!   tag set sends no specification (EC2 refuses one without tags).
//! - Describes return one page, as the trait says: the caller's `next_token`/`max_results` go
//!   through unchanged, and `MaxResults` is left out when ids are given (EC2 refuses the two
//!   together). Calls whose seam output is a whole list (`DescribeInstanceTypeOfferings`) drain
//!   the SDK paginator.
//! - `DescribeSnapshots` always carries the `owner-id` filter (moto ignores `OwnerIds=self`, and
//!   the filter means the same on AWS).

use std::str::FromStr;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    self as t, AttributeBooleanValue, BlockDeviceMapping, EbsBlockDevice, HttpTokensState,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceSpecification, IpPermission, IpRange,
    LocationType, OperationType, ResourceType, ShutdownBehavior, SnapshotAttributeName, TagSpecification, VolumeType,
    VpcEndpointType,
};

use super::error::{malformed, map};
use crate::cloud::error::CloudError;
use crate::cloud::guard::Authorized;
use crate::cloud::ids::{IdError, Region};
use crate::cloud::ops::*;
use crate::cloud::tags::Tags;

// ------------------------------------------------------------------------------------- helpers

fn sdk_tags(tags: &Tags) -> Vec<t::Tag> {
    tags.iter().map(|tag| t::Tag::builder().key(&tag.key).value(&tag.value).build()).collect()
}

/// One `TagSpecification`, or none for an empty tag set.
fn spec(kind: ResourceType, tags: &Tags) -> Option<TagSpecification> {
    (!tags.is_empty()).then(|| TagSpecification::builder().resource_type(kind).set_tags(Some(sdk_tags(tags))).build())
}

fn specs(items: impl IntoIterator<Item = Option<TagSpecification>>) -> Option<Vec<TagSpecification>> {
    let v: Vec<TagSpecification> = items.into_iter().flatten().collect();
    (!v.is_empty()).then_some(v)
}

/// Tags as AWS reports them. Keys our [`Tags`] refuses (`aws:`-prefixed system tags such as
/// `aws:cloudformation:stack-name` on a customer's instance) are left out: the seam never writes
/// them and no decision reads them.
pub(super) fn read_tags(tags: &[t::Tag]) -> Tags {
    let mut out = Tags::new();
    for tag in tags {
        if let (Some(k), Some(v)) = (tag.key(), tag.value())
            && let Err(e) = out.insert(k, v)
        {
            tracing::debug!(key = k, error = %e, "tag left out");
        }
    }
    out
}

fn sdk_filters(filters: &[Filter]) -> Option<Vec<t::Filter>> {
    (!filters.is_empty()).then(|| {
        filters.iter().map(|f| t::Filter::builder().name(&f.name).set_values(Some(f.values.clone())).build()).collect()
    })
}

fn id_strings<I: AsRef<str>>(ids: &[I]) -> Option<Vec<String>> {
    (!ids.is_empty()).then(|| ids.iter().map(|i| i.as_ref().to_owned()).collect())
}

/// `MaxResults`, unless ids are given (EC2: "cannot be used with" the id list).
fn max_results<I>(d: &DescribeInput<I>) -> Option<i32> {
    if d.ids.is_empty() { d.max_results.and_then(|n| i32::try_from(n).ok()) } else { None }
}

/// A required id of a response.
fn id<T: FromStr<Err = IdError>>(auth: &Authorized, field: &str, value: Option<&str>) -> Result<T, CloudError> {
    let v = value.ok_or_else(|| malformed(auth, format_args!("no {field}")))?;
    v.parse().map_err(|e: IdError| malformed(auth, format_args!("{field}: {e}")))
}

/// An optional id of a response: absent stays `None`, malformed is an error.
fn opt_id<T: FromStr<Err = IdError>>(
    auth: &Authorized,
    field: &str,
    value: Option<&str>,
) -> Result<Option<T>, CloudError> {
    value.map(|v| id(auth, field, Some(v))).transpose()
}

fn text(v: Option<&str>) -> String {
    v.unwrap_or_default().to_owned()
}

fn instance_state(s: Option<&t::InstanceStateName>) -> InstanceState {
    match s {
        Some(t::InstanceStateName::Pending) => InstanceState::Pending,
        Some(t::InstanceStateName::Running) => InstanceState::Running,
        Some(t::InstanceStateName::ShuttingDown) => InstanceState::ShuttingDown,
        Some(t::InstanceStateName::Terminated) => InstanceState::Terminated,
        Some(t::InstanceStateName::Stopping) => InstanceState::Stopping,
        Some(t::InstanceStateName::Stopped) => InstanceState::Stopped,
        Some(other) => InstanceState::Unknown(other.as_str().to_owned()),
        None => InstanceState::Unknown(String::new()),
    }
}

fn volume_state(s: Option<&t::VolumeState>) -> VolumeState {
    match s {
        Some(t::VolumeState::Creating) => VolumeState::Creating,
        Some(t::VolumeState::Available) => VolumeState::Available,
        Some(t::VolumeState::InUse) => VolumeState::InUse,
        Some(t::VolumeState::Deleting) => VolumeState::Deleting,
        Some(t::VolumeState::Deleted) => VolumeState::Deleted,
        Some(t::VolumeState::Error) => VolumeState::Error,
        Some(other) => VolumeState::Unknown(other.as_str().to_owned()),
        None => VolumeState::Unknown(String::new()),
    }
}

fn snapshot_state(s: Option<&t::SnapshotState>) -> SnapshotState {
    match s {
        Some(t::SnapshotState::Pending) => SnapshotState::Pending,
        Some(t::SnapshotState::Completed) => SnapshotState::Completed,
        Some(t::SnapshotState::Error) => SnapshotState::Error,
        Some(t::SnapshotState::Recoverable) => SnapshotState::Recoverable,
        Some(t::SnapshotState::Recovering) => SnapshotState::Recovering,
        Some(other) => SnapshotState::Unknown(other.as_str().to_owned()),
        None => SnapshotState::Unknown(String::new()),
    }
}

fn state_change(auth: &Authorized, c: &t::InstanceStateChange) -> Result<InstanceStateChange, CloudError> {
    Ok(InstanceStateChange {
        instance_id: id(auth, "InstanceId", c.instance_id())?,
        previous: instance_state(c.previous_state().and_then(|s| s.name())),
        current: instance_state(c.current_state().and_then(|s| s.name())),
    })
}

// ---------------------------------------------------------------------------------------- start

pub(super) async fn describe_regions(c: &Client, auth: &Authorized) -> Result<Vec<RegionInfo>, CloudError> {
    let out = c.describe_regions().send().await.map_err(|e| map(auth, Vec::new(), e))?;
    out.regions()
        .iter()
        .map(|r| {
            Ok(RegionInfo {
                region: id::<Region>(auth, "RegionName", r.region_name())?,
                opt_in_status: text(r.opt_in_status()),
            })
        })
        .collect()
}

pub(super) async fn describe_availability_zones(
    c: &Client,
    auth: &Authorized,
) -> Result<Vec<AvailabilityZoneInfo>, CloudError> {
    let out = c.describe_availability_zones().send().await.map_err(|e| map(auth, Vec::new(), e))?;
    Ok(out
        .availability_zones()
        .iter()
        .map(|z| AvailabilityZoneInfo {
            name: text(z.zone_name()),
            zone_id: text(z.zone_id()),
            state: z.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        })
        .collect())
}

pub(super) async fn describe_instance_type_offerings(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInstanceTypeOfferingsInput,
) -> Result<Vec<InstanceTypeOffering>, CloudError> {
    let mut pages = c
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZone)
        .filters(t::Filter::builder().name("instance-type").set_values(Some(input.instance_types.clone())).build())
        .into_paginator()
        .send();
    let mut all = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| map(auth, Vec::new(), e))?;
        all.extend(page.instance_type_offerings().iter().map(|o| InstanceTypeOffering {
            instance_type: o.instance_type().map(|i| i.as_str().to_owned()).unwrap_or_default(),
            availability_zone: text(o.location()),
        }));
    }
    Ok(all)
}

// ---------------------------------------------------------------------------------- discovering

pub(super) async fn describe_instances(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInput<crate::cloud::InstanceId>,
) -> Result<Page<InstanceInfo>, CloudError> {
    let out = c
        .describe_instances()
        .set_instance_ids(id_strings(&input.ids))
        .set_filters(sdk_filters(&input.filters))
        .set_next_token(input.next_token.clone())
        .set_max_results(max_results(input))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&input.ids).unwrap_or_default(), e))?;
    let mut items = Vec::new();
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        let mut volumes = Vec::new();
        for b in i.block_device_mappings() {
            if let Some(ebs) = b.ebs() {
                volumes.push(AttachedVolume {
                    device_name: text(b.device_name()),
                    volume_id: id(auth, "Ebs.VolumeId", ebs.volume_id())?,
                    delete_on_termination: ebs.delete_on_termination().unwrap_or(false),
                });
            }
        }
        items.push(InstanceInfo {
            id: id(auth, "InstanceId", i.instance_id())?,
            state: instance_state(i.state().and_then(|s| s.name())),
            instance_type: i.instance_type().map(|x| x.as_str().to_owned()).unwrap_or_default(),
            availability_zone: text(i.placement().and_then(|p| p.availability_zone())),
            root_device_name: i.root_device_name().map(str::to_owned),
            volumes,
            network_interfaces: i
                .network_interfaces()
                .iter()
                .map(|n| id(auth, "NetworkInterfaceId", n.network_interface_id()))
                .collect::<Result<_, _>>()?,
            tags: read_tags(i.tags()),
        });
    }
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

pub(super) async fn describe_volumes(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInput<crate::cloud::VolumeId>,
) -> Result<Page<VolumeInfo>, CloudError> {
    let out = c
        .describe_volumes()
        .set_volume_ids(id_strings(&input.ids))
        .set_filters(sdk_filters(&input.filters))
        .set_next_token(input.next_token.clone())
        .set_max_results(max_results(input))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&input.ids).unwrap_or_default(), e))?;
    let mut items = Vec::new();
    for v in out.volumes() {
        let mut attachments = Vec::new();
        for a in v.attachments() {
            attachments.push((id(auth, "Attachment.InstanceId", a.instance_id())?, text(a.device())));
        }
        items.push(VolumeInfo {
            id: id(auth, "VolumeId", v.volume_id())?,
            state: volume_state(v.state()),
            size_gib: v.size().and_then(|s| u32::try_from(s).ok()).unwrap_or(0),
            volume_type: v.volume_type().map(|x| x.as_str().to_owned()).unwrap_or_default(),
            availability_zone: text(v.availability_zone()),
            encrypted: v.encrypted().unwrap_or(false),
            kms_key_id: opt_id(auth, "KmsKeyId", v.kms_key_id())?,
            attachments,
            tags: read_tags(v.tags()),
        });
    }
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

// --------------------------------------------------------------------------------- snapshotting

pub(super) async fn create_snapshots(
    c: &Client,
    auth: &Authorized,
    input: &CreateSnapshotsInput,
) -> Result<CreateSnapshotsOutput, CloudError> {
    let out = c
        .create_snapshots()
        .instance_specification(
            InstanceSpecification::builder()
                .instance_id(input.instance.id.as_str())
                .exclude_boot_volume(input.exclude_boot_volume)
                .build(),
        )
        .description(&input.description)
        .set_tag_specifications(specs([spec(ResourceType::Snapshot, &input.tags)]))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.instance.id.to_string()], e))?;
    let snapshots = out
        .snapshots()
        .iter()
        .map(|s| {
            Ok(SnapshotStarted {
                snapshot_id: id(auth, "SnapshotId", s.snapshot_id())?,
                volume_id: id(auth, "VolumeId", s.volume_id())?,
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(CreateSnapshotsOutput { snapshots })
}

pub(super) async fn create_snapshot(
    c: &Client,
    auth: &Authorized,
    input: &CreateSnapshotInput,
) -> Result<CreateSnapshotOutput, CloudError> {
    let out = c
        .create_snapshot()
        .volume_id(input.volume.id.as_str())
        .description(&input.description)
        .set_tag_specifications(specs([spec(ResourceType::Snapshot, &input.tags)]))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.volume.id.to_string()], e))?;
    Ok(CreateSnapshotOutput { snapshot_id: id(auth, "SnapshotId", out.snapshot_id())? })
}

pub(super) async fn describe_snapshots(
    c: &Client,
    auth: &Authorized,
    input: &DescribeSnapshotsInput,
) -> Result<Page<SnapshotInfo>, CloudError> {
    let d = &input.describe;
    let mut filters = vec![t::Filter::builder().name("owner-id").values(input.owner.as_str()).build()];
    filters.extend(sdk_filters(&d.filters).unwrap_or_default());
    let out = c
        .describe_snapshots()
        .set_snapshot_ids(id_strings(&d.ids))
        .set_filters(Some(filters))
        .set_next_token(d.next_token.clone())
        .set_max_results(max_results(d))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&d.ids).unwrap_or_default(), e))?;
    let items = out
        .snapshots()
        .iter()
        .map(|s| {
            Ok(SnapshotInfo {
                id: id(auth, "SnapshotId", s.snapshot_id())?,
                volume_id: opt_id(auth, "VolumeId", s.volume_id())?,
                state: snapshot_state(s.state()),
                progress: text(s.progress()),
                encrypted: s.encrypted().unwrap_or(false),
                kms_key_id: opt_id(auth, "KmsKeyId", s.kms_key_id())?,
                owner: id(auth, "OwnerId", s.owner_id())?,
                tags: read_tags(s.tags()),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

/// Sent with the destination Region's client (the call's Region) and `SourceRegion`.
pub(super) async fn copy_snapshot(
    c: &Client,
    auth: &Authorized,
    input: &CopySnapshotInput,
) -> Result<CopySnapshotOutput, CloudError> {
    let out = c
        .copy_snapshot()
        .source_region(input.source_region.as_str())
        .source_snapshot_id(input.source.id.as_str())
        .encrypted(input.encrypted)
        .set_kms_key_id(input.kms_key_id.as_ref().map(|k| k.as_str().to_owned()))
        .description(&input.description)
        .set_tag_specifications(specs([spec(ResourceType::Snapshot, &input.tags)]))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.source.id.to_string()], e))?;
    Ok(CopySnapshotOutput { snapshot_id: id(auth, "SnapshotId", out.snapshot_id())? })
}

/// The `Attribute` + `OperationType` + `UserIds` form: moto ignores the structured
/// `CreateVolumePermission` form (docs/references.md, "moto versus AWS"), and AWS takes both.
pub(super) async fn modify_snapshot_attribute(
    c: &Client,
    auth: &Authorized,
    input: &ModifySnapshotAttributeInput,
) -> Result<Empty, CloudError> {
    let op = match input.change {
        PermissionChange::Add => OperationType::Add,
        PermissionChange::Remove => OperationType::Remove,
    };
    c.modify_snapshot_attribute()
        .snapshot_id(input.snapshot.id.as_str())
        .attribute(SnapshotAttributeName::CreateVolumePermission)
        .operation_type(op)
        .user_ids(input.account.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.snapshot.id.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn delete_snapshot(
    c: &Client,
    auth: &Authorized,
    input: &DeleteSnapshotInput,
) -> Result<Empty, CloudError> {
    c.delete_snapshot()
        .snapshot_id(input.snapshot.id.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.snapshot.id.to_string()], e))?;
    Ok(Empty)
}

// ----------------------------------------------------------------------------------- networking

pub(super) async fn create_vpc(
    c: &Client,
    auth: &Authorized,
    input: &CreateVpcInput,
) -> Result<CreateVpcOutput, CloudError> {
    let out = c
        .create_vpc()
        .cidr_block(&input.cidr_block)
        .set_tag_specifications(specs([spec(ResourceType::Vpc, &input.tags)]))
        .send()
        .await
        .map_err(|e| map(auth, Vec::new(), e))?;
    Ok(CreateVpcOutput { vpc_id: id(auth, "Vpc.VpcId", out.vpc().and_then(|v| v.vpc_id()))? })
}

pub(super) async fn create_subnet(
    c: &Client,
    auth: &Authorized,
    input: &CreateSubnetInput,
) -> Result<CreateSubnetOutput, CloudError> {
    let out = c
        .create_subnet()
        .vpc_id(input.vpc.id.as_str())
        .cidr_block(&input.cidr_block)
        .availability_zone(&input.availability_zone)
        .set_tag_specifications(specs([spec(ResourceType::Subnet, &input.tags)]))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.vpc.id.to_string()], e))?;
    Ok(CreateSubnetOutput { subnet_id: id(auth, "Subnet.SubnetId", out.subnet().and_then(|s| s.subnet_id()))? })
}

pub(super) async fn modify_subnet_attribute(
    c: &Client,
    auth: &Authorized,
    input: &ModifySubnetAttributeInput,
) -> Result<Empty, CloudError> {
    c.modify_subnet_attribute()
        .subnet_id(input.subnet.id.as_str())
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(input.map_public_ip_on_launch).build())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.subnet.id.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn create_internet_gateway(
    c: &Client,
    auth: &Authorized,
    input: &CreateInternetGatewayInput,
) -> Result<CreateInternetGatewayOutput, CloudError> {
    let out = c
        .create_internet_gateway()
        .set_tag_specifications(specs([spec(ResourceType::InternetGateway, &input.tags)]))
        .send()
        .await
        .map_err(|e| map(auth, Vec::new(), e))?;
    Ok(CreateInternetGatewayOutput {
        internet_gateway_id: id(
            auth,
            "InternetGateway.InternetGatewayId",
            out.internet_gateway().and_then(|g| g.internet_gateway_id()),
        )?,
    })
}

pub(super) async fn attach_internet_gateway(
    c: &Client,
    auth: &Authorized,
    input: &AttachInternetGatewayInput,
) -> Result<Empty, CloudError> {
    c.attach_internet_gateway()
        .internet_gateway_id(input.internet_gateway.id.as_str())
        .vpc_id(input.vpc.id.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.internet_gateway.id.to_string(), input.vpc.id.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn detach_internet_gateway(
    c: &Client,
    auth: &Authorized,
    input: &DetachInternetGatewayInput,
) -> Result<Empty, CloudError> {
    c.detach_internet_gateway()
        .internet_gateway_id(input.internet_gateway.id.as_str())
        .vpc_id(input.vpc.id.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.internet_gateway.id.to_string(), input.vpc.id.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn describe_route_tables(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInput<crate::cloud::RouteTableId>,
) -> Result<Page<RouteTableInfo>, CloudError> {
    let out = c
        .describe_route_tables()
        .set_route_table_ids(id_strings(&input.ids))
        .set_filters(sdk_filters(&input.filters))
        .set_next_token(input.next_token.clone())
        .set_max_results(max_results(input))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&input.ids).unwrap_or_default(), e))?;
    let items = out
        .route_tables()
        .iter()
        .map(|r| {
            Ok(RouteTableInfo {
                id: id(auth, "RouteTableId", r.route_table_id())?,
                vpc_id: id(auth, "VpcId", r.vpc_id())?,
                main: r.associations().iter().any(|a| a.main().unwrap_or(false)),
                tags: read_tags(r.tags()),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

pub(super) async fn create_route(c: &Client, auth: &Authorized, input: &CreateRouteInput) -> Result<Empty, CloudError> {
    c.create_route()
        .route_table_id(input.route_table.id.as_str())
        .destination_cidr_block(&input.destination_cidr)
        .gateway_id(input.gateway.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.route_table.id.to_string(), input.gateway.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn create_security_group(
    c: &Client,
    auth: &Authorized,
    input: &CreateSecurityGroupInput,
) -> Result<CreateSecurityGroupOutput, CloudError> {
    let out = c
        .create_security_group()
        .vpc_id(input.vpc.id.as_str())
        .group_name(&input.group_name)
        .description(&input.description)
        .set_tag_specifications(specs([spec(ResourceType::SecurityGroup, &input.tags)]))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.vpc.id.to_string()], e))?;
    Ok(CreateSecurityGroupOutput { group_id: id(auth, "GroupId", out.group_id())? })
}

pub(super) async fn authorize_security_group_egress(
    c: &Client,
    auth: &Authorized,
    input: &AuthorizeSecurityGroupEgressInput,
) -> Result<Empty, CloudError> {
    let permissions = input
        .rules
        .iter()
        .map(|r| {
            IpPermission::builder()
                .ip_protocol(&r.protocol)
                .from_port(i32::from(r.from_port))
                .to_port(i32::from(r.to_port))
                .ip_ranges(IpRange::builder().cidr_ip(&r.cidr).build())
                .build()
        })
        .collect();
    c.authorize_security_group_egress()
        .group_id(input.group.id.as_str())
        .set_ip_permissions(Some(permissions))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.group.id.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn create_vpc_endpoint(
    c: &Client,
    auth: &Authorized,
    input: &CreateVpcEndpointInput,
) -> Result<CreateVpcEndpointOutput, CloudError> {
    let mut req = c
        .create_vpc_endpoint()
        .vpc_id(input.vpc.id.as_str())
        .service_name(&input.service_name)
        .set_tag_specifications(specs([spec(ResourceType::VpcEndpoint, &input.tags)]));
    req = match &input.kind {
        EndpointKind::Interface { subnets, security_groups } => req
            .vpc_endpoint_type(VpcEndpointType::Interface)
            .set_subnet_ids(Some(subnets.iter().map(|s| s.id.to_string()).collect()))
            .set_security_group_ids(Some(security_groups.iter().map(|g| g.id.to_string()).collect())),
        EndpointKind::Gateway { route_tables } => req
            .vpc_endpoint_type(VpcEndpointType::Gateway)
            .set_route_table_ids(Some(route_tables.iter().map(|r| r.id.to_string()).collect())),
    };
    let out = req.send().await.map_err(|e| map(auth, vec![input.vpc.id.to_string()], e))?;
    Ok(CreateVpcEndpointOutput {
        vpc_endpoint_id: id(auth, "VpcEndpoint.VpcEndpointId", out.vpc_endpoint().and_then(|v| v.vpc_endpoint_id()))?,
    })
}

pub(super) async fn describe_vpcs(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInput<crate::cloud::VpcId>,
) -> Result<Page<VpcInfo>, CloudError> {
    let out = c
        .describe_vpcs()
        .set_vpc_ids(id_strings(&input.ids))
        .set_filters(sdk_filters(&input.filters))
        .set_next_token(input.next_token.clone())
        .set_max_results(max_results(input))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&input.ids).unwrap_or_default(), e))?;
    let items = out
        .vpcs()
        .iter()
        .map(|v| {
            Ok(VpcInfo {
                id: id(auth, "VpcId", v.vpc_id())?,
                state: v.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                cidr_block: text(v.cidr_block()),
                tags: read_tags(v.tags()),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

pub(super) async fn describe_subnets(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInput<crate::cloud::SubnetId>,
) -> Result<Page<SubnetInfo>, CloudError> {
    let out = c
        .describe_subnets()
        .set_subnet_ids(id_strings(&input.ids))
        .set_filters(sdk_filters(&input.filters))
        .set_next_token(input.next_token.clone())
        .set_max_results(max_results(input))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&input.ids).unwrap_or_default(), e))?;
    let items = out
        .subnets()
        .iter()
        .map(|s| {
            Ok(SubnetInfo {
                id: id(auth, "SubnetId", s.subnet_id())?,
                vpc_id: id(auth, "VpcId", s.vpc_id())?,
                availability_zone: text(s.availability_zone()),
                state: s.state().map(|x| x.as_str().to_owned()).unwrap_or_default(),
                tags: read_tags(s.tags()),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

pub(super) async fn describe_security_groups(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInput<crate::cloud::SecurityGroupId>,
) -> Result<Page<SecurityGroupInfo>, CloudError> {
    let out = c
        .describe_security_groups()
        .set_group_ids(id_strings(&input.ids))
        .set_filters(sdk_filters(&input.filters))
        .set_next_token(input.next_token.clone())
        .set_max_results(max_results(input))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&input.ids).unwrap_or_default(), e))?;
    let items = out
        .security_groups()
        .iter()
        .map(|g| {
            Ok(SecurityGroupInfo {
                id: id(auth, "GroupId", g.group_id())?,
                vpc_id: opt_id(auth, "VpcId", g.vpc_id())?,
                group_name: text(g.group_name()),
                tags: read_tags(g.tags()),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

pub(super) async fn describe_internet_gateways(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInput<crate::cloud::InternetGatewayId>,
) -> Result<Page<InternetGatewayInfo>, CloudError> {
    let out = c
        .describe_internet_gateways()
        .set_internet_gateway_ids(id_strings(&input.ids))
        .set_filters(sdk_filters(&input.filters))
        .set_next_token(input.next_token.clone())
        .set_max_results(max_results(input))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&input.ids).unwrap_or_default(), e))?;
    let items = out
        .internet_gateways()
        .iter()
        .map(|g| {
            Ok(InternetGatewayInfo {
                id: id(auth, "InternetGatewayId", g.internet_gateway_id())?,
                attached_vpcs: g
                    .attachments()
                    .iter()
                    .map(|a| id(auth, "Attachment.VpcId", a.vpc_id()))
                    .collect::<Result<_, _>>()?,
                tags: read_tags(g.tags()),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

pub(super) async fn describe_vpc_endpoints(
    c: &Client,
    auth: &Authorized,
    input: &DescribeInput<crate::cloud::VpcEndpointId>,
) -> Result<Page<VpcEndpointInfo>, CloudError> {
    let out = c
        .describe_vpc_endpoints()
        .set_vpc_endpoint_ids(id_strings(&input.ids))
        .set_filters(sdk_filters(&input.filters))
        .set_next_token(input.next_token.clone())
        .set_max_results(max_results(input))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&input.ids).unwrap_or_default(), e))?;
    let items = out
        .vpc_endpoints()
        .iter()
        .map(|v| {
            Ok(VpcEndpointInfo {
                id: id(auth, "VpcEndpointId", v.vpc_endpoint_id())?,
                vpc_id: id(auth, "VpcId", v.vpc_id())?,
                state: v.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                service_name: text(v.service_name()),
                tags: read_tags(v.tags()),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

// ------------------------------------------------------------------------------------ launching

/// One scanner with the fixed settings of docs/job.md ("The scanner launch"): the snapshots as gp3 volumes deleted on
/// termination, IMDSv2 required, shutdown terminates, the manifest as (already base64) user data,
/// the ledger's `ClientToken`, tags on the instance, its volumes and its network interface.
pub(super) async fn run_scanner(
    c: &Client,
    auth: &Authorized,
    input: &RunScannerInput,
) -> Result<RunScannerOutput, CloudError> {
    // The image's root device first: only DeleteOnTermination, the rest (snapshot, size, type)
    // from the AMI (EC2 API Reference, `BlockDeviceMapping`, `EbsBlockDevice`).
    let root = input.root.as_ref().map(|root| {
        BlockDeviceMapping::builder()
            .device_name(&root.device_name)
            .ebs(EbsBlockDevice::builder().delete_on_termination(true).set_volume_size(root.size_gib).build())
            .build()
    });
    let devices = root
        .into_iter()
        .chain(input.volumes.iter().map(|v| {
            BlockDeviceMapping::builder()
                .device_name(&v.device_name)
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(v.snapshot.id.as_str())
                        .volume_type(VolumeType::Gp3)
                        .delete_on_termination(true)
                        .build(),
                )
                .build()
        }))
        .collect();
    let out = c
        .run_instances()
        .image_id(input.image.id.as_str())
        .instance_type(t::InstanceType::from(input.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .subnet_id(input.subnet.id.as_str())
        .set_security_group_ids(Some(input.security_groups.iter().map(|g| g.id.to_string()).collect()))
        .set_block_device_mappings(Some(devices))
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .build(),
        )
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate)
        .user_data(&input.user_data_base64)
        .client_token(&input.client_token)
        .set_tag_specifications(specs([
            spec(ResourceType::Instance, &input.instance_tags),
            spec(ResourceType::Volume, &input.volume_tags),
            spec(ResourceType::NetworkInterface, &input.network_interface_tags),
        ]))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.image.id.to_string(), input.subnet.id.to_string()], e))?;
    let instance = out.instances().first().ok_or_else(|| malformed(auth, "no instance in the reservation"))?;
    Ok(RunScannerOutput {
        instance_id: id(auth, "InstanceId", instance.instance_id())?,
        network_interfaces: instance
            .network_interfaces()
            .iter()
            .map(|n| id(auth, "NetworkInterfaceId", n.network_interface_id()))
            .collect::<Result<_, _>>()?,
    })
}

pub(super) async fn describe_images(
    c: &Client,
    auth: &Authorized,
    input: &DescribeImagesInput,
) -> Result<Page<ImageInfo>, CloudError> {
    let d = &input.describe;
    let out = c
        .describe_images()
        .set_owners((!input.owners.is_empty()).then(|| input.owners.clone()))
        .set_image_ids(id_strings(&d.ids))
        .set_filters(sdk_filters(&d.filters))
        .set_next_token(d.next_token.clone())
        .set_max_results(max_results(d))
        .send()
        .await
        .map_err(|e| map(auth, id_strings(&d.ids).unwrap_or_default(), e))?;
    let items = out
        .images()
        .iter()
        .map(|i| {
            Ok(ImageInfo {
                id: id(auth, "ImageId", i.image_id())?,
                name: text(i.name()),
                state: i.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                owner: id(auth, "OwnerId", i.owner_id())?,
                root_device_name: i.root_device_name().map(str::to_owned),
                root_size_gib: i
                    .block_device_mappings()
                    .iter()
                    .find(|m| m.device_name().is_some() && m.device_name() == i.root_device_name())
                    .and_then(|m| m.ebs())
                    .and_then(|e| e.volume_size()),
                tags: read_tags(i.tags()),
            })
        })
        .collect::<Result<_, CloudError>>()?;
    Ok(Page { items, next_token: out.next_token().map(str::to_owned) })
}

pub(super) async fn copy_image(
    c: &Client,
    auth: &Authorized,
    input: &CopyImageInput,
) -> Result<CopyImageOutput, CloudError> {
    let out = c
        .copy_image()
        .source_region(input.source_region.as_str())
        .source_image_id(input.source.id.as_str())
        .name(&input.name)
        .description(&input.description)
        .encrypted(input.encrypted)
        .set_kms_key_id(input.kms_key_id.as_ref().map(|k| k.as_str().to_owned()))
        .set_tag_specifications(specs([
            spec(ResourceType::Image, &input.tags),
            spec(ResourceType::Snapshot, &input.tags),
        ]))
        .send()
        .await
        .map_err(|e| map(auth, vec![input.source.id.to_string()], e))?;
    Ok(CopyImageOutput { image_id: id(auth, "ImageId", out.image_id())? })
}

pub(super) async fn terminate_instances(
    c: &Client,
    auth: &Authorized,
    input: &TerminateInstancesInput,
) -> Result<Vec<InstanceStateChange>, CloudError> {
    let ids: Vec<String> = input.instances.iter().map(|i| i.id.to_string()).collect();
    let out =
        c.terminate_instances().set_instance_ids(Some(ids.clone())).send().await.map_err(|e| map(auth, ids, e))?;
    out.terminating_instances().iter().map(|s| state_change(auth, s)).collect()
}

pub(super) async fn stop_instances(
    c: &Client,
    auth: &Authorized,
    input: &StopInstancesInput,
) -> Result<Vec<InstanceStateChange>, CloudError> {
    let ids: Vec<String> = input.instances.iter().map(|i| i.id.to_string()).collect();
    let out = c.stop_instances().set_instance_ids(Some(ids.clone())).send().await.map_err(|e| map(auth, ids, e))?;
    out.stopping_instances().iter().map(|s| state_change(auth, s)).collect()
}

// ------------------------------------------------------------------------------------- teardown

pub(super) async fn delete_vpc_endpoints(
    c: &Client,
    auth: &Authorized,
    input: &DeleteVpcEndpointsInput,
) -> Result<DeleteVpcEndpointsOutput, CloudError> {
    let ids: Vec<String> = input.endpoints.iter().map(|e| e.id.to_string()).collect();
    let out =
        c.delete_vpc_endpoints().set_vpc_endpoint_ids(Some(ids.clone())).send().await.map_err(|e| map(auth, ids, e))?;
    let unsuccessful = out
        .unsuccessful()
        .iter()
        .map(|u| Ok((id(auth, "Unsuccessful.ResourceId", u.resource_id())?, text(u.error().and_then(|e| e.code())))))
        .collect::<Result<_, CloudError>>()?;
    Ok(DeleteVpcEndpointsOutput { unsuccessful })
}

pub(super) async fn delete_security_group(
    c: &Client,
    auth: &Authorized,
    input: &DeleteSecurityGroupInput,
) -> Result<Empty, CloudError> {
    c.delete_security_group()
        .group_id(input.group.id.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.group.id.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn delete_subnet(
    c: &Client,
    auth: &Authorized,
    input: &DeleteSubnetInput,
) -> Result<Empty, CloudError> {
    c.delete_subnet()
        .subnet_id(input.subnet.id.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.subnet.id.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn delete_internet_gateway(
    c: &Client,
    auth: &Authorized,
    input: &DeleteInternetGatewayInput,
) -> Result<Empty, CloudError> {
    c.delete_internet_gateway()
        .internet_gateway_id(input.internet_gateway.id.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.internet_gateway.id.to_string()], e))?;
    Ok(Empty)
}

pub(super) async fn delete_vpc(c: &Client, auth: &Authorized, input: &DeleteVpcInput) -> Result<Empty, CloudError> {
    c.delete_vpc()
        .vpc_id(input.vpc.id.as_str())
        .send()
        .await
        .map_err(|e| map(auth, vec![input.vpc.id.to_string()], e))?;
    Ok(Empty)
}
