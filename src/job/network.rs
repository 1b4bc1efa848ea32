//! `Networking`: the job's ephemeral network, every piece tagged in its create call
//! (`alibaba-cloud-security-scan-<job>-<role>`): a VPC, one subnet in an Availability Zone that
//! offers the scanner type (public IPs on launch, so scanners reach the collector and the AMI's
//! package mirrors without a NAT gateway), an internet gateway with the default route, a security
//! group with no ingress, and optionally a gateway VPC endpoint.
//!
//! Each create goes through the intent protocol ([`super::track`]); each modification is checked
//! or made idempotent (`Resource.AlreadyAssociated`, `RouteAlreadyExists`,
//! `InvalidPermission.Duplicate` after a crash mean it was done).

use super::JobError;
use super::runner::Job;
use crate::cloud::ops::Empty;
use crate::cloud::ops::{
    AttachInternetGatewayInput, AuthorizeSecurityGroupEgressInput, CreateInternetGatewayInput, CreateRouteInput,
    CreateSecurityGroupInput, CreateSubnetInput, CreateVpcEndpointInput, CreateVpcInput, DescribeInput,
    DescribeInstanceTypeOfferingsInput, EgressRule, EndpointKind, Filter, ModifySubnetAttributeInput, Tagged,
};
use crate::cloud::retry::{Retry, retry};
use crate::cloud::tags::{self, Role, Tags};
use crate::cloud::{Cloud, CloudError};
use crate::ledger::{ResourceId, ResourceKind};

/// Codes that, on a repeated modification, mean the earlier attempt went through.
const ALREADY_DONE: [&str; 3] = ["Resource.AlreadyAssociated", "RouteAlreadyExists", "InvalidPermission.Duplicate"];

fn done_already(r: Result<Empty, CloudError>) -> Result<(), CloudError> {
    match r {
        Ok(Empty) => Ok(()),
        Err(e) if e.code().is_some_and(|c| ALREADY_DONE.contains(&c)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl<C: Cloud> Job<'_, C> {
    pub(super) fn role_tags(&self, role: Role<'_>) -> Tags {
        tags::resource_tags(&self.id, Some(role), self.doc.expires_at.parse().unwrap_or(jiff::Timestamp::MAX))
    }

    fn by_name(&self, role: Role<'_>) -> Vec<Filter> {
        vec![
            Filter::tag(tags::JOB, [self.id.as_str()]),
            Filter::tag(tags::NAME, [tags::resource_name(&self.id, Some(role))]),
        ]
    }

    /// `Networking`.
    pub(super) async fn network(&mut self) -> Result<(), JobError> {
        let region = self.region.clone();
        let g = &self.r.guard;
        if self.doc.network.availability_zone.is_none() {
            let input =
                DescribeInstanceTypeOfferingsInput { instance_types: vec![self.r.settings.instance_type.clone()] };
            let offers = retry(Retry::Transient, "DescribeInstanceTypeOfferings", || {
                g.describe_instance_type_offerings(&region, &input)
            })
            .await
            .map_err(self.cerr("finding an Availability Zone for the scanners"))?;
            let mut zones: Vec<String> = offers.into_iter().map(|o| o.availability_zone).collect();
            zones.sort();
            let Some(zone) = zones.into_iter().next() else {
                return Err(JobError::Setup {
                    job: self.id.clone(),
                    region,
                    message: format!(
                        "instance type {} is not offered in any Availability Zone",
                        self.r.settings.instance_type
                    ),
                });
            };
            self.doc.network.availability_zone = Some(zone);
            self.save()?;
        }
        let zone = self.doc.network.availability_zone.clone().unwrap_or_default();

        // VPC.
        let tvpc = self.role_tags(Role::VPC);
        if self.doc.network.vpc.is_none() {
            // The VPC and internet gateway quota shared with other jobs ([`super::budget`]).
            while !self.r.budget.as_ref().is_none_or(|b| b.take_network(&self.id, &self.r.account, &region)) {
                if self.sleep(self.r.settings.poll).await {
                    return Ok(());
                }
            }
            let input = CreateVpcInput { cidr_block: self.r.settings.vpc_cidr.clone(), tags: tvpc.clone() };
            let filters = self.by_name(Role::VPC);
            let id = self
                .tracked(
                    ResourceKind::Vpc,
                    &tvpc,
                    None,
                    || async { Ok(ResourceId::Vpc(g.create_vpc(&region, &input).await?.vpc_id)) },
                    || async {
                        let page = g.describe_vpcs(&region, &DescribeInput::filters(filters.clone())).await?;
                        Ok(page.items.into_iter().next().map(|v| ResourceId::Vpc(v.id)))
                    },
                )
                .await?
                .map_err(self.cerr("creating the VPC"))?;
            if let ResourceId::Vpc(v) = id {
                self.doc.network.vpc = Some(v);
            }
            self.save()?;
        }
        let Some(vpc) = self.doc.network.vpc.clone() else { return Ok(()) };
        let vpc_t = Tagged::new(vpc.clone(), tvpc.clone());

        // Subnet.
        let tsub = self.role_tags(Role::SUBNET);
        if self.doc.network.subnet.is_none() {
            let input = CreateSubnetInput {
                vpc: vpc_t.clone(),
                cidr_block: self.r.settings.subnet_cidr.clone(),
                availability_zone: zone.clone(),
                tags: tsub.clone(),
            };
            let filters = self.by_name(Role::SUBNET);
            let id = self
                .tracked(
                    ResourceKind::Subnet,
                    &tsub,
                    None,
                    || async { Ok(ResourceId::Subnet(g.create_subnet(&region, &input).await?.subnet_id)) },
                    || async {
                        let page = g.describe_subnets(&region, &DescribeInput::filters(filters.clone())).await?;
                        Ok(page.items.into_iter().next().map(|s| ResourceId::Subnet(s.id)))
                    },
                )
                .await?
                .map_err(self.cerr("creating the subnet"))?;
            if let ResourceId::Subnet(s) = id {
                self.doc.network.subnet = Some(s);
            }
            self.save()?;
        }
        let Some(subnet) = self.doc.network.subnet.clone() else { return Ok(()) };
        if !self.doc.network.subnet_public_ips {
            let input = ModifySubnetAttributeInput { subnet: Tagged::new(subnet, tsub), map_public_ip_on_launch: true };
            retry(Retry::Fresh, "ModifySubnetAttribute", || g.modify_subnet_attribute(&region, &input))
                .await
                .map_err(self.cerr("turning on public IPs in the subnet"))?;
            self.doc.network.subnet_public_ips = true;
            self.save()?;
        }

        // Internet gateway and the default route.
        let tigw = self.role_tags(Role::INTERNET_GATEWAY);
        if self.doc.network.internet_gateway.is_none() {
            let input = CreateInternetGatewayInput { tags: tigw.clone() };
            let filters = self.by_name(Role::INTERNET_GATEWAY);
            let id = self
                .tracked(
                    ResourceKind::InternetGateway,
                    &tigw,
                    None,
                    || async {
                        Ok(ResourceId::InternetGateway(
                            g.create_internet_gateway(&region, &input).await?.internet_gateway_id,
                        ))
                    },
                    || async {
                        let page =
                            g.describe_internet_gateways(&region, &DescribeInput::filters(filters.clone())).await?;
                        Ok(page.items.into_iter().next().map(|i| ResourceId::InternetGateway(i.id)))
                    },
                )
                .await?
                .map_err(self.cerr("creating the internet gateway"))?;
            if let ResourceId::InternetGateway(i) = id {
                self.doc.network.internet_gateway = Some(i);
            }
            self.save()?;
        }
        let Some(igw) = self.doc.network.internet_gateway.clone() else { return Ok(()) };
        if !self.doc.network.gateway_attached {
            let input = AttachInternetGatewayInput {
                internet_gateway: Tagged::new(igw.clone(), tigw.clone()),
                vpc: vpc_t.clone(),
            };
            done_already(
                retry(Retry::Fresh, "AttachInternetGateway", || g.attach_internet_gateway(&region, &input)).await,
            )
            .map_err(self.cerr("attaching the internet gateway"))?;
            self.doc.network.gateway_attached = true;
            self.save()?;
        }
        if !self.doc.network.route {
            let input = DescribeInput::filters(vec![
                Filter::new("vpc-id", [vpc.as_str()]),
                Filter::new("association.main", ["true"]),
            ]);
            // A VPC just created may not list its main route table yet (eventual consistency):
            // look again a few times before giving up.
            let mut delays = backon::BackoffBuilder::build(crate::cloud::retry::backoff())
                .take(crate::cloud::retry::NOT_YET_VISIBLE_RETRIES);
            let table = loop {
                let tables = retry(Retry::Fresh, "DescribeRouteTables", || g.describe_route_tables(&region, &input))
                    .await
                    .map_err(self.cerr("finding the VPC's main route table"))?;
                if let Some(t) = tables.items.into_iter().next() {
                    break t;
                }
                let Some(d) = delays.next() else {
                    return Err(JobError::Setup {
                        job: self.id.clone(),
                        region,
                        message: format!("VPC {vpc} has no main route table (yet?)"),
                    });
                };
                if self.sleep(d).await {
                    return Ok(());
                }
            };
            let input = CreateRouteInput {
                route_table: Tagged::new(table.id.clone(), table.tags.clone()),
                vpc: vpc_t.clone(),
                destination_cidr: "0.0.0.0/0".into(),
                gateway: igw.clone(),
            };
            done_already(retry(Retry::Fresh, "CreateRoute", || g.create_route(&region, &input)).await)
                .map_err(self.cerr("adding the default route"))?;
            self.doc.network.route_table = Some(table.id);
            self.doc.network.route = true;
            self.save()?;
        }

        // Security group: no ingress; egress to HTTPS (the collector, package mirrors). The egress
        // rule is not a control: AWS's default allow-all egress rule stays (the policy has no
        // RevokeSecurityGroupEgress); the scanner enforces its egress itself (policies/README.md,
        // "Egress"; scanner-ami/src/agent/egress.rs).
        let tsg = self.role_tags(Role::SECURITY_GROUP);
        if self.doc.network.security_group.is_none() {
            let input = CreateSecurityGroupInput {
                vpc: vpc_t.clone(),
                group_name: tags::resource_name(&self.id, Some(Role::SECURITY_GROUP)),
                description: "agentless scanners: no ingress".into(),
                tags: tsg.clone(),
            };
            let filters = self.by_name(Role::SECURITY_GROUP);
            let id = self
                .tracked(
                    ResourceKind::SecurityGroup,
                    &tsg,
                    None,
                    || async {
                        Ok(ResourceId::SecurityGroup(g.create_security_group(&region, &input).await?.group_id))
                    },
                    || async {
                        let page =
                            g.describe_security_groups(&region, &DescribeInput::filters(filters.clone())).await?;
                        Ok(page.items.into_iter().next().map(|s| ResourceId::SecurityGroup(s.id)))
                    },
                )
                .await?
                .map_err(self.cerr("creating the security group"))?;
            if let ResourceId::SecurityGroup(s) = id {
                self.doc.network.security_group = Some(s);
            }
            self.save()?;
        }
        let Some(sg) = self.doc.network.security_group.clone() else { return Ok(()) };
        if !self.doc.network.egress {
            let input = AuthorizeSecurityGroupEgressInput {
                group: Tagged::new(sg, tsg),
                rules: vec![EgressRule {
                    protocol: "tcp".into(),
                    from_port: 443,
                    to_port: 443,
                    cidr: "0.0.0.0/0".into(),
                }],
            };
            done_already(
                retry(Retry::Fresh, "AuthorizeSecurityGroupEgress", || {
                    g.authorize_security_group_egress(&region, &input)
                })
                .await,
            )
            .map_err(self.cerr("allowing HTTPS egress"))?;
            self.doc.network.egress = true;
            self.save()?;
        }

        // Optional gateway endpoint.
        if let (Some(service), None, Some(table)) =
            (self.r.settings.vpc_endpoint.clone(), &self.doc.network.endpoint, self.doc.network.route_table.clone())
        {
            let tvpce = self.role_tags(Role::VPC_ENDPOINT);
            let input = CreateVpcEndpointInput {
                vpc: vpc_t,
                service_name: service,
                kind: EndpointKind::Gateway { route_tables: vec![Tagged::new(table, Tags::new())] },
                tags: tvpce.clone(),
            };
            let filters = self.by_name(Role::VPC_ENDPOINT);
            let id = self
                .tracked(
                    ResourceKind::VpcEndpoint,
                    &tvpce,
                    None,
                    || async {
                        Ok(ResourceId::VpcEndpoint(g.create_vpc_endpoint(&region, &input).await?.vpc_endpoint_id))
                    },
                    || async {
                        let page = g.describe_vpc_endpoints(&region, &DescribeInput::filters(filters.clone())).await?;
                        Ok(page.items.into_iter().next().map(|e| ResourceId::VpcEndpoint(e.id)))
                    },
                )
                .await?
                .map_err(self.cerr("creating the VPC endpoint"))?;
            if let ResourceId::VpcEndpoint(e) = id {
                self.doc.network.endpoint = Some(e);
            }
            self.save()?;
        }
        Ok(())
    }
}
