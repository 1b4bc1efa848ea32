//! The job's ephemeral network: VPCs (with their main route table and `default` security group),
//! subnets, internet gateways, routes, security groups, VPC endpoints; their Describes; and the
//! deletes with AWS's dependency checks, which moto lacks
//! (docs/references.md, "moto versus AWS"):
//!
//! | delete | refused with `DependencyViolation` while |
//! |---|---|
//! | subnet | a network interface is in it (an instance's, until terminated; an interface endpoint's) |
//! | security group | a network interface uses it (`CannotDelete` for a VPC's `default` group) |
//! | internet gateway | it is attached |
//! | VPC | it has, checked in this order: subnets, non-default security groups, an attached internet gateway, VPC endpoints, route tables other than the main one |
//! | detach gateway | an instance in the VPC has a public address ("mapped public address(es)") |
//!
//! Quotas (docs/references.md, "VPC quotas"): 5 VPCs per Region, the default VPC included
//! (`VpcLimitExceeded`), 5 internet gateways (`InternetGatewayLimitExceeded`).

use crate::cloud::Call;
use crate::cloud::error::CloudError;
use crate::cloud::ids::{
    IdError, InternetGatewayId, NetworkInterfaceId, RouteTableId, SecurityGroupId, SubnetId, VpcEndpointId, VpcId,
};
use crate::cloud::ops::*;
use crate::cloud::tags::Tags;

use super::Ctx;
use super::authorize::real;
use super::consistency::{remove, view};
use super::describe::{Describable, describe};
use super::state::{
    EndpointType, EniOwner, InternetGateway, NetworkInterface, Prng, RegionState, RouteTable, Rule, SecurityGroup,
    Subnet, Vpc, VpcEndpoint,
};

fn one(s: impl Into<String>) -> Option<Vec<String>> {
    Some(vec![s.into()])
}

impl Describable for Vpc {
    fn tags(&self) -> &Tags {
        &self.tags
    }
    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        match name {
            "vpc-id" => one(id),
            "cidr" | "cidr-block" => one(&self.cidr_block),
            "is-default" => one(self.is_default.to_string()),
            "state" => one("available"),
            _ => None,
        }
    }
}

impl Describable for Subnet {
    fn tags(&self) -> &Tags {
        &self.tags
    }
    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        match name {
            "subnet-id" => one(id),
            "vpc-id" => one(self.vpc.as_str()),
            "availability-zone" => one(&self.availability_zone),
            "cidr-block" => one(&self.cidr_block),
            "state" => one("available"),
            "map-public-ip-on-launch" => one(self.map_public_ip_on_launch.to_string()),
            _ => None,
        }
    }
}

impl Describable for RouteTable {
    fn tags(&self) -> &Tags {
        &self.tags
    }
    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        match name {
            "route-table-id" => one(id),
            "vpc-id" => one(self.vpc.as_str()),
            "association.main" => one(self.main.to_string()),
            "route.gateway-id" => Some(self.routes.iter().map(|(_, t)| t.clone()).collect()),
            _ => None,
        }
    }
}

impl Describable for InternetGateway {
    fn tags(&self) -> &Tags {
        &self.tags
    }
    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        match name {
            "internet-gateway-id" => one(id),
            "attachment.vpc-id" => Some(self.attached.iter().map(|v| v.to_string()).collect()),
            "attachment.state" => Some(self.attached.iter().map(|_| "available".to_owned()).collect()),
            _ => None,
        }
    }
}

impl Describable for SecurityGroup {
    fn tags(&self) -> &Tags {
        &self.tags
    }
    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        match name {
            "group-id" => one(id),
            "group-name" => one(&self.group_name),
            "vpc-id" => one(self.vpc.as_str()),
            "description" => one(&self.description),
            _ => None,
        }
    }
}

impl Describable for VpcEndpoint {
    fn tags(&self) -> &Tags {
        &self.tags
    }
    fn field(&self, id: &str, name: &str) -> Option<Vec<String>> {
        match name {
            "vpc-endpoint-id" => one(id),
            "vpc-id" => one(self.vpc.as_str()),
            "service-name" => one(&self.service_name),
            "vpc-endpoint-state" => one("available"),
            "vpc-endpoint-type" => one(match self.endpoint_type {
                EndpointType::Interface => "Interface",
                EndpointType::Gateway => "Gateway",
            }),
            _ => None,
        }
    }
}

fn parse<T: std::str::FromStr<Err = IdError>>(prng: &mut Prng, prefix: &str) -> Result<T, IdError> {
    prng.ec2_id(prefix).parse()
}

/// A VPC with its main route table (a `local` route) and its `default` security group (egress to
/// anywhere), as `CreateVpc` makes them (VPC User Guide, "Route tables" and "Default security
/// groups").
pub fn insert_vpc(
    r: &mut RegionState,
    prng: &mut Prng,
    cidr_block: &str,
    is_default: bool,
    tags: Tags,
) -> Result<VpcId, IdError> {
    let vpc: VpcId = parse(prng, "vpc")?;
    let rtb: RouteTableId = parse(prng, "rtb")?;
    let sg: SecurityGroupId = parse(prng, "sg")?;
    r.vpcs.insert(vpc.clone(), Vpc { cidr_block: cidr_block.to_owned(), is_default, tags });
    r.route_tables.insert(
        rtb,
        RouteTable {
            vpc: vpc.clone(),
            main: true,
            routes: vec![(cidr_block.to_owned(), "local".to_owned())],
            tags: Tags::new(),
        },
    );
    r.security_groups.insert(
        sg,
        SecurityGroup {
            vpc: vpc.clone(),
            group_name: "default".into(),
            description: "default VPC security group".into(),
            is_default: true,
            egress: vec![allow_all()],
            tags: Tags::new(),
        },
    );
    Ok(vpc)
}

/// The egress rule every new security group starts with.
fn allow_all() -> Rule {
    Rule { protocol: "-1".into(), from_port: 0, to_port: 65535, cidr: "0.0.0.0/0".into() }
}

/// An id error of the generator as an API error (never expected: the generator makes valid ids).
fn internal(ctx: &Ctx<'_>, e: IdError) -> CloudError {
    ctx.err("InternalError", e.to_string(), Vec::new())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub fn create_vpc(ctx: &mut Ctx<'_>, input: &CreateVpcInput) -> Result<CreateVpcOutput, CloudError> {
    ctx.authorize(Call::CreateVpc(input))?;
    let limit = ctx.world.settings.quotas.vpcs_per_region;
    if count(ctx.reg()?.vpcs.len()) >= limit {
        return Err(ctx.err(
            "VpcLimitExceeded",
            format!("The maximum number of VPCs ({limit}) has been reached."),
            Vec::new(),
        ));
    }
    let (r, prng) = ctx.reg_and_prng()?;
    let made = insert_vpc(r, prng, &input.cidr_block, false, input.tags.clone());
    let vpc_id = made.map_err(|e| internal(ctx, e))?;
    ctx.dirty = true;
    Ok(CreateVpcOutput { vpc_id })
}

/// The VPC `id` with its real tags, or `InvalidVpcID.NotFound`.
fn vpc(ctx: &mut Ctx<'_>, id: &VpcId) -> Result<Tagged<VpcId>, CloudError> {
    match ctx.reg()?.vpcs.get(id) {
        Some(v) => Ok(real(id, &v.tags)),
        None => Err(ctx.not_found("InvalidVpcID.NotFound", "vpc ID", id.as_str())),
    }
}

fn subnet(ctx: &mut Ctx<'_>, id: &SubnetId) -> Result<(Tagged<SubnetId>, Subnet), CloudError> {
    match ctx.reg()?.subnets.get(id) {
        Some(s) => Ok((real(id, &s.tags), s.clone())),
        None => Err(ctx.not_found("InvalidSubnetID.NotFound", "subnet ID", id.as_str())),
    }
}

fn group(ctx: &mut Ctx<'_>, id: &SecurityGroupId) -> Result<(Tagged<SecurityGroupId>, SecurityGroup), CloudError> {
    match ctx.reg()?.security_groups.get(id) {
        Some(g) => Ok((real(id, &g.tags), g.clone())),
        None => Err(ctx.not_found("InvalidGroup.NotFound", "security group", id.as_str())),
    }
}

fn gateway(
    ctx: &mut Ctx<'_>,
    id: &InternetGatewayId,
) -> Result<(Tagged<InternetGatewayId>, InternetGateway), CloudError> {
    match ctx.reg()?.internet_gateways.get(id) {
        Some(g) => Ok((real(id, &g.tags), g.clone())),
        None => Err(ctx.not_found("InvalidInternetGatewayID.NotFound", "internetGateway ID", id.as_str())),
    }
}

fn route_table(ctx: &mut Ctx<'_>, id: &RouteTableId) -> Result<(Tagged<RouteTableId>, RouteTable), CloudError> {
    match ctx.reg()?.route_tables.get(id) {
        Some(t) => Ok((real(id, &t.tags), t.clone())),
        None => Err(ctx.not_found("InvalidRouteTableID.NotFound", "routeTable ID", id.as_str())),
    }
}

fn dependency(ctx: &Ctx<'_>, message: String, id: &str) -> CloudError {
    ctx.err("DependencyViolation", message, vec![id.to_owned()])
}

pub fn create_subnet(ctx: &mut Ctx<'_>, input: &CreateSubnetInput) -> Result<CreateSubnetOutput, CloudError> {
    let v = vpc(ctx, &input.vpc.id)?;
    ctx.authorize(Call::CreateSubnet(&CreateSubnetInput { vpc: v, ..input.clone() }))?;
    let r = ctx.reg()?;
    if !r.zones.iter().any(|(z, _)| *z == input.availability_zone) {
        return Err(ctx.err(
            "InvalidParameterValue",
            format!("Value ({}) for parameter availabilityZone is invalid.", input.availability_zone),
            Vec::new(),
        ));
    }
    if r.subnets.values().any(|s| s.vpc == input.vpc.id && s.cidr_block == input.cidr_block) {
        return Err(ctx.err(
            "InvalidSubnet.Conflict",
            format!("The CIDR '{}' conflicts with another subnet", input.cidr_block),
            Vec::new(),
        ));
    }
    let id: SubnetId = ctx.new_id("subnet")?;
    let s = Subnet {
        vpc: input.vpc.id.clone(),
        cidr_block: input.cidr_block.clone(),
        availability_zone: input.availability_zone.clone(),
        map_public_ip_on_launch: false,
        tags: input.tags.clone(),
    };
    ctx.reg()?.subnets.insert(id.clone(), s);
    ctx.dirty = true;
    Ok(CreateSubnetOutput { subnet_id: id })
}

pub fn modify_subnet_attribute(ctx: &mut Ctx<'_>, input: &ModifySubnetAttributeInput) -> Result<Empty, CloudError> {
    let (s, _) = subnet(ctx, &input.subnet.id)?;
    ctx.authorize(Call::ModifySubnetAttribute(&ModifySubnetAttributeInput { subnet: s, ..input.clone() }))?;
    if let Some(s) = ctx.reg()?.subnets.get_mut(&input.subnet.id) {
        s.map_public_ip_on_launch = input.map_public_ip_on_launch;
    }
    ctx.dirty = true;
    Ok(Empty)
}

pub fn create_internet_gateway(
    ctx: &mut Ctx<'_>,
    input: &CreateInternetGatewayInput,
) -> Result<CreateInternetGatewayOutput, CloudError> {
    ctx.authorize(Call::CreateInternetGateway(input))?;
    let limit = ctx.world.settings.quotas.internet_gateways_per_region;
    if count(ctx.reg()?.internet_gateways.len()) >= limit {
        return Err(ctx.err(
            "InternetGatewayLimitExceeded",
            format!("The maximum number of internet gateways ({limit}) has been reached."),
            Vec::new(),
        ));
    }
    let id: InternetGatewayId = ctx.new_id("igw")?;
    ctx.reg()?.internet_gateways.insert(id.clone(), InternetGateway { attached: None, tags: input.tags.clone() });
    ctx.dirty = true;
    Ok(CreateInternetGatewayOutput { internet_gateway_id: id })
}

pub fn attach_internet_gateway(ctx: &mut Ctx<'_>, input: &AttachInternetGatewayInput) -> Result<Empty, CloudError> {
    let (g, igw) = gateway(ctx, &input.internet_gateway.id)?;
    let v = vpc(ctx, &input.vpc.id)?;
    ctx.authorize(Call::AttachInternetGateway(&AttachInternetGatewayInput { internet_gateway: g, vpc: v }))?;
    if let Some(other) = &igw.attached {
        return Err(ctx.err(
            "Resource.AlreadyAssociated",
            format!("resource {} is already attached to network {other}", input.internet_gateway.id),
            vec![input.internet_gateway.id.to_string()],
        ));
    }
    let taken = ctx.reg()?.internet_gateways.values().any(|g| g.attached.as_ref() == Some(&input.vpc.id));
    if taken {
        return Err(ctx.err(
            "Resource.AlreadyAssociated",
            format!("network {} already has an internet gateway attached", input.vpc.id),
            vec![input.vpc.id.to_string()],
        ));
    }
    if let Some(g) = ctx.reg()?.internet_gateways.get_mut(&input.internet_gateway.id) {
        g.attached = Some(input.vpc.id.clone());
    }
    ctx.dirty = true;
    Ok(Empty)
}

pub fn detach_internet_gateway(ctx: &mut Ctx<'_>, input: &DetachInternetGatewayInput) -> Result<Empty, CloudError> {
    let (g, igw) = gateway(ctx, &input.internet_gateway.id)?;
    let v = vpc(ctx, &input.vpc.id)?;
    ctx.authorize(Call::DetachInternetGateway(&DetachInternetGatewayInput { internet_gateway: g, vpc: v }))?;
    if igw.attached.as_ref() != Some(&input.vpc.id) {
        return Err(ctx.err(
            "Gateway.NotAttached",
            format!("resource {} is not attached to network {}", input.internet_gateway.id, input.vpc.id),
            vec![input.internet_gateway.id.to_string()],
        ));
    }
    let mapped = ctx.reg()?.live_instances().any(|(_, i)| i.public_ip && i.vpc.as_ref() == Some(&input.vpc.id));
    if mapped {
        return Err(dependency(
            ctx,
            format!(
                "Network {} has some mapped public address(es). Please unmap those public address(es) before \
                 detaching the gateway.",
                input.vpc.id
            ),
            input.internet_gateway.id.as_str(),
        ));
    }
    if let Some(g) = ctx.reg()?.internet_gateways.get_mut(&input.internet_gateway.id) {
        g.attached = None;
    }
    ctx.dirty = true;
    Ok(Empty)
}

pub fn describe_route_tables(
    ctx: &mut Ctx<'_>,
    input: &DescribeInput<RouteTableId>,
) -> Result<Page<RouteTableInfo>, CloudError> {
    ctx.authorize(Call::DescribeRouteTables(input))?;
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let out = describe(input, view(r, |r| &r.route_tables, now_ms, lag_ms).into_iter(), |id, t| RouteTableInfo {
        id: id.clone(),
        vpc_id: t.vpc.clone(),
        main: t.main,
        tags: t.tags.clone(),
    });
    out.map_err(|e| ctx.describe_err(e, "InvalidRouteTableID.NotFound"))
}

pub fn create_route(ctx: &mut Ctx<'_>, input: &CreateRouteInput) -> Result<Empty, CloudError> {
    let (t, table) = route_table(ctx, &input.route_table.id)?;
    let v = vpc(ctx, &table.vpc)?;
    let (_, igw) = gateway(ctx, &input.gateway)?;
    ctx.authorize(Call::CreateRoute(&CreateRouteInput { route_table: t, vpc: v, ..input.clone() }))?;
    if igw.attached.as_ref() != Some(&table.vpc) {
        return Err(ctx.err(
            "InvalidParameterValue",
            format!(
                "route table {} and network gateway {} belong to different networks",
                input.route_table.id, input.gateway
            ),
            vec![input.route_table.id.to_string(), input.gateway.to_string()],
        ));
    }
    if table.routes.iter().any(|(dest, _)| *dest == input.destination_cidr) {
        return Err(ctx.err(
            "RouteAlreadyExists",
            format!("The route identified by {} already exists.", input.destination_cidr),
            vec![input.route_table.id.to_string()],
        ));
    }
    if let Some(t) = ctx.reg()?.route_tables.get_mut(&input.route_table.id) {
        t.routes.push((input.destination_cidr.clone(), input.gateway.to_string()));
    }
    ctx.dirty = true;
    Ok(Empty)
}

pub fn create_security_group(
    ctx: &mut Ctx<'_>,
    input: &CreateSecurityGroupInput,
) -> Result<CreateSecurityGroupOutput, CloudError> {
    let v = vpc(ctx, &input.vpc.id)?;
    ctx.authorize(Call::CreateSecurityGroup(&CreateSecurityGroupInput { vpc: v, ..input.clone() }))?;
    if input.group_name.starts_with("sg-") {
        return Err(ctx.err(
            "InvalidParameterValue",
            "Group names may not be in the format sg-*.".to_owned(),
            Vec::new(),
        ));
    }
    let dup = ctx.reg()?.security_groups.values().any(|g| g.vpc == input.vpc.id && g.group_name == input.group_name);
    if dup {
        return Err(ctx.err(
            "InvalidGroup.Duplicate",
            format!("The security group '{}' already exists for VPC '{}'", input.group_name, input.vpc.id),
            Vec::new(),
        ));
    }
    let id: SecurityGroupId = ctx.new_id("sg")?;
    let g = SecurityGroup {
        vpc: input.vpc.id.clone(),
        group_name: input.group_name.clone(),
        description: input.description.clone(),
        is_default: false,
        egress: vec![allow_all()],
        tags: input.tags.clone(),
    };
    ctx.reg()?.security_groups.insert(id.clone(), g);
    ctx.dirty = true;
    Ok(CreateSecurityGroupOutput { group_id: id })
}

pub fn authorize_security_group_egress(
    ctx: &mut Ctx<'_>,
    input: &AuthorizeSecurityGroupEgressInput,
) -> Result<Empty, CloudError> {
    let (g, group) = group(ctx, &input.group.id)?;
    ctx.authorize(Call::AuthorizeSecurityGroupEgress(&AuthorizeSecurityGroupEgressInput {
        group: g,
        ..input.clone()
    }))?;
    let rules: Vec<Rule> = input
        .rules
        .iter()
        .map(|r| Rule {
            protocol: r.protocol.clone(),
            from_port: r.from_port,
            to_port: r.to_port,
            cidr: r.cidr.clone(),
        })
        .collect();
    if rules.iter().any(|r| group.egress.contains(r)) {
        return Err(ctx.err(
            "InvalidPermission.Duplicate",
            format!("the specified rule already exists in {}", input.group.id),
            vec![input.group.id.to_string()],
        ));
    }
    if let Some(g) = ctx.reg()?.security_groups.get_mut(&input.group.id) {
        g.egress.extend(rules);
    }
    ctx.dirty = true;
    Ok(Empty)
}

/// Services with gateway endpoints (VPC User Guide, "Gateway endpoints": S3 and DynamoDB).
const GATEWAY_SERVICES: [&str; 2] = ["s3", "dynamodb"];

pub fn create_vpc_endpoint(
    ctx: &mut Ctx<'_>,
    input: &CreateVpcEndpointInput,
) -> Result<CreateVpcEndpointOutput, CloudError> {
    let v = vpc(ctx, &input.vpc.id)?;
    let prefix = format!("com.amazonaws.{}.", ctx.region);
    let service = input.service_name.strip_prefix(&prefix).filter(|s| !s.is_empty() && !s.contains(' '));
    let Some(service) = service.map(str::to_owned) else {
        return Err(ctx.err(
            "InvalidServiceName",
            format!("The Vpc Endpoint Service '{}' does not exist", input.service_name),
            Vec::new(),
        ));
    };
    let kind = match &input.kind {
        EndpointKind::Interface { subnets, security_groups } => {
            let mut real_subnets = Vec::new();
            for s in subnets {
                let (t, sub) = subnet(ctx, &s.id)?;
                if sub.vpc != input.vpc.id {
                    return Err(ctx.err(
                        "InvalidParameter",
                        format!("The subnet {} does not belong to {}", s.id, input.vpc.id),
                        vec![s.id.to_string()],
                    ));
                }
                real_subnets.push(t);
            }
            let mut real_groups = Vec::new();
            for g in security_groups {
                real_groups.push(group(ctx, &g.id)?.0);
            }
            EndpointKind::Interface { subnets: real_subnets, security_groups: real_groups }
        }
        EndpointKind::Gateway { route_tables } => {
            if !GATEWAY_SERVICES.contains(&service.as_str()) {
                return Err(ctx.err(
                    "InvalidParameter",
                    format!("The service {} does not support gateway endpoints", input.service_name),
                    Vec::new(),
                ));
            }
            let mut real_tables = Vec::new();
            for t in route_tables {
                let (tagged, table) = route_table(ctx, &t.id)?;
                if table.vpc != input.vpc.id {
                    return Err(ctx.err(
                        "InvalidParameter",
                        format!("The route table {} does not belong to {}", t.id, input.vpc.id),
                        vec![t.id.to_string()],
                    ));
                }
                real_tables.push(tagged);
            }
            EndpointKind::Gateway { route_tables: real_tables }
        }
    };
    ctx.authorize(Call::CreateVpcEndpoint(&CreateVpcEndpointInput { vpc: v, kind: kind.clone(), ..input.clone() }))?;
    let id: VpcEndpointId = ctx.new_id("vpce")?;
    let mut endpoint = VpcEndpoint {
        vpc: input.vpc.id.clone(),
        service_name: input.service_name.clone(),
        endpoint_type: EndpointType::Gateway,
        subnets: Vec::new(),
        security_groups: Vec::new(),
        route_tables: Vec::new(),
        network_interfaces: Vec::new(),
        tags: input.tags.clone(),
    };
    match kind {
        EndpointKind::Interface { subnets, security_groups } => {
            endpoint.endpoint_type = EndpointType::Interface;
            endpoint.security_groups = security_groups.into_iter().map(|g| g.id).collect();
            for s in subnets {
                let eni: NetworkInterfaceId = ctx.new_id("eni")?;
                ctx.reg()?.network_interfaces.insert(
                    eni.clone(),
                    NetworkInterface {
                        subnet: s.id.clone(),
                        vpc: input.vpc.id.clone(),
                        owner: EniOwner::Endpoint(id.clone()),
                        security_groups: endpoint.security_groups.clone(),
                        tags: Tags::new(),
                    },
                );
                endpoint.network_interfaces.push(eni);
                endpoint.subnets.push(s.id);
            }
        }
        EndpointKind::Gateway { route_tables } => {
            endpoint.route_tables = route_tables.into_iter().map(|t| t.id).collect();
        }
    }
    ctx.reg()?.vpc_endpoints.insert(id.clone(), endpoint);
    ctx.dirty = true;
    Ok(CreateVpcEndpointOutput { vpc_endpoint_id: id })
}

pub fn describe_vpcs(ctx: &mut Ctx<'_>, input: &DescribeInput<VpcId>) -> Result<Page<VpcInfo>, CloudError> {
    ctx.authorize(Call::DescribeVpcs(input))?;
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let out = describe(input, view(r, |r| &r.vpcs, now_ms, lag_ms).into_iter(), |id, v| VpcInfo {
        id: id.clone(),
        state: "available".into(),
        cidr_block: v.cidr_block.clone(),
        tags: v.tags.clone(),
    });
    out.map_err(|e| ctx.describe_err(e, "InvalidVpcID.NotFound"))
}

pub fn describe_subnets(ctx: &mut Ctx<'_>, input: &DescribeInput<SubnetId>) -> Result<Page<SubnetInfo>, CloudError> {
    ctx.authorize(Call::DescribeSubnets(input))?;
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let out = describe(input, view(r, |r| &r.subnets, now_ms, lag_ms).into_iter(), |id, s| SubnetInfo {
        id: id.clone(),
        vpc_id: s.vpc.clone(),
        availability_zone: s.availability_zone.clone(),
        state: "available".into(),
        tags: s.tags.clone(),
    });
    out.map_err(|e| ctx.describe_err(e, "InvalidSubnetID.NotFound"))
}

pub fn describe_security_groups(
    ctx: &mut Ctx<'_>,
    input: &DescribeInput<SecurityGroupId>,
) -> Result<Page<SecurityGroupInfo>, CloudError> {
    ctx.authorize(Call::DescribeSecurityGroups(input))?;
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let out = describe(input, view(r, |r| &r.security_groups, now_ms, lag_ms).into_iter(), |id, g| SecurityGroupInfo {
        id: id.clone(),
        vpc_id: Some(g.vpc.clone()),
        group_name: g.group_name.clone(),
        tags: g.tags.clone(),
    });
    out.map_err(|e| ctx.describe_err(e, "InvalidGroup.NotFound"))
}

pub fn describe_internet_gateways(
    ctx: &mut Ctx<'_>,
    input: &DescribeInput<InternetGatewayId>,
) -> Result<Page<InternetGatewayInfo>, CloudError> {
    ctx.authorize(Call::DescribeInternetGateways(input))?;
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let out =
        describe(input, view(r, |r| &r.internet_gateways, now_ms, lag_ms).into_iter(), |id, g| InternetGatewayInfo {
            id: id.clone(),
            attached_vpcs: g.attached.iter().cloned().collect(),
            tags: g.tags.clone(),
        });
    out.map_err(|e| ctx.describe_err(e, "InvalidInternetGatewayID.NotFound"))
}

pub fn describe_vpc_endpoints(
    ctx: &mut Ctx<'_>,
    input: &DescribeInput<VpcEndpointId>,
) -> Result<Page<VpcEndpointInfo>, CloudError> {
    ctx.authorize(Call::DescribeVpcEndpoints(input))?;
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    let out = describe(input, view(r, |r| &r.vpc_endpoints, now_ms, lag_ms).into_iter(), |id, e| VpcEndpointInfo {
        id: id.clone(),
        vpc_id: e.vpc.clone(),
        state: "available".into(),
        service_name: e.service_name.clone(),
        tags: e.tags.clone(),
    });
    out.map_err(|e| ctx.describe_err(e, "InvalidVpcEndpointId.NotFound"))
}

pub fn delete_vpc_endpoints(
    ctx: &mut Ctx<'_>,
    input: &DeleteVpcEndpointsInput,
) -> Result<DeleteVpcEndpointsOutput, CloudError> {
    let mut found = Vec::new();
    let mut unsuccessful = Vec::new();
    for e in &input.endpoints {
        match ctx.reg()?.vpc_endpoints.get(&e.id) {
            Some(ep) => found.push(real(&e.id, &ep.tags)),
            None => unsuccessful.push((e.id.clone(), "InvalidVpcEndpointId.NotFound".to_owned())),
        }
    }
    ctx.authorize(Call::DeleteVpcEndpoints(&DeleteVpcEndpointsInput { endpoints: found.clone() }))?;
    let (now_ms, lag_ms) = ctx.lag();
    for e in found {
        let r = ctx.reg()?;
        if let Some(ep) = remove(r, |r| &mut r.vpc_endpoints, &e.id, now_ms, lag_ms) {
            for eni in ep.network_interfaces {
                remove(r, |r| &mut r.network_interfaces, &eni, now_ms, lag_ms);
            }
        }
    }
    ctx.dirty = true;
    Ok(DeleteVpcEndpointsOutput { unsuccessful })
}

pub fn delete_security_group(ctx: &mut Ctx<'_>, input: &DeleteSecurityGroupInput) -> Result<Empty, CloudError> {
    let (g, group) = group(ctx, &input.group.id)?;
    ctx.authorize(Call::DeleteSecurityGroup(&DeleteSecurityGroupInput { group: g }))?;
    if group.is_default {
        return Err(ctx.err(
            "CannotDelete",
            format!("the specified group: \"{}\" name: \"default\" cannot be deleted by a user", input.group.id),
            vec![input.group.id.to_string()],
        ));
    }
    let in_use = ctx.reg()?.network_interfaces.values().any(|e| e.security_groups.contains(&input.group.id));
    if in_use {
        return Err(dependency(
            ctx,
            format!("resource {} has a dependent object", input.group.id),
            input.group.id.as_str(),
        ));
    }
    let (now_ms, lag_ms) = ctx.lag();
    remove(ctx.reg()?, |r| &mut r.security_groups, &input.group.id, now_ms, lag_ms);
    ctx.dirty = true;
    Ok(Empty)
}

pub fn delete_subnet(ctx: &mut Ctx<'_>, input: &DeleteSubnetInput) -> Result<Empty, CloudError> {
    let (s, _) = subnet(ctx, &input.subnet.id)?;
    ctx.authorize(Call::DeleteSubnet(&DeleteSubnetInput { subnet: s }))?;
    let r = ctx.reg()?;
    let in_use = r.network_interfaces.values().any(|e| e.subnet == input.subnet.id)
        || r.live_instances().any(|(_, i)| i.subnet.as_ref() == Some(&input.subnet.id));
    if in_use {
        return Err(dependency(
            ctx,
            format!("The subnet '{}' has dependencies and cannot be deleted.", input.subnet.id),
            input.subnet.id.as_str(),
        ));
    }
    let (now_ms, lag_ms) = ctx.lag();
    remove(ctx.reg()?, |r| &mut r.subnets, &input.subnet.id, now_ms, lag_ms);
    ctx.dirty = true;
    Ok(Empty)
}

pub fn delete_internet_gateway(ctx: &mut Ctx<'_>, input: &DeleteInternetGatewayInput) -> Result<Empty, CloudError> {
    let (g, igw) = gateway(ctx, &input.internet_gateway.id)?;
    ctx.authorize(Call::DeleteInternetGateway(&DeleteInternetGatewayInput { internet_gateway: g }))?;
    if igw.attached.is_some() {
        return Err(dependency(
            ctx,
            format!("The internetGateway '{}' has dependencies and cannot be deleted.", input.internet_gateway.id),
            input.internet_gateway.id.as_str(),
        ));
    }
    let (now_ms, lag_ms) = ctx.lag();
    remove(ctx.reg()?, |r| &mut r.internet_gateways, &input.internet_gateway.id, now_ms, lag_ms);
    ctx.dirty = true;
    Ok(Empty)
}

/// What still depends on a VPC, in the order checked (see the module table).
fn vpc_dependency(r: &RegionState, id: &VpcId) -> Option<&'static str> {
    if r.subnets.values().any(|s| s.vpc == *id) {
        return Some("subnets");
    }
    if r.security_groups.values().any(|g| g.vpc == *id && !g.is_default) {
        return Some("security groups");
    }
    if r.internet_gateways.values().any(|g| g.attached.as_ref() == Some(id)) {
        return Some("an internet gateway");
    }
    if r.vpc_endpoints.values().any(|e| e.vpc == *id) {
        return Some("VPC endpoints");
    }
    if r.route_tables.values().any(|t| t.vpc == *id && !t.main) {
        return Some("route tables");
    }
    None
}

pub fn delete_vpc(ctx: &mut Ctx<'_>, input: &DeleteVpcInput) -> Result<Empty, CloudError> {
    let v = vpc(ctx, &input.vpc.id)?;
    ctx.authorize(Call::DeleteVpc(&DeleteVpcInput { vpc: v }))?;
    if let Some(what) = vpc_dependency(ctx.reg()?, &input.vpc.id) {
        return Err(dependency(
            ctx,
            format!("The vpc '{}' has dependencies and cannot be deleted ({what}).", input.vpc.id),
            input.vpc.id.as_str(),
        ));
    }
    let (now_ms, lag_ms) = ctx.lag();
    let r = ctx.reg()?;
    remove(r, |r| &mut r.vpcs, &input.vpc.id, now_ms, lag_ms);
    let tables: Vec<RouteTableId> =
        r.route_tables.iter().filter(|(_, t)| t.vpc == input.vpc.id).map(|(id, _)| id.clone()).collect();
    for t in &tables {
        remove(r, |r| &mut r.route_tables, t, now_ms, lag_ms);
    }
    let groups: Vec<SecurityGroupId> =
        r.security_groups.iter().filter(|(_, g)| g.vpc == input.vpc.id).map(|(id, _)| id.clone()).collect();
    for g in &groups {
        remove(r, |r| &mut r.security_groups, g, now_ms, lag_ms);
    }
    ctx.dirty = true;
    Ok(Empty)
}
