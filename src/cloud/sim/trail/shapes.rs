//! CloudTrail's shapes of our operations (the EC2 Query API as CloudTrail records it: lists are
//! `{"items":[...]}`): the `requestParameters` of each call ([`request_parameters`]) and the
//! `responseElements` of each output ([`ResponseElements`]), so every id a call names or creates
//! appears in its record.

use serde_json::{Value, json};

use crate::cloud::Call;
use crate::cloud::ops::*;
use crate::cloud::tags::Tags;

use super::{EC2, event_source, read_only};

/// `{"items": [{key: value}, ...]}`.
fn items<'a>(key: &str, values: impl IntoIterator<Item = &'a str>) -> Value {
    let list: Vec<Value> = values.into_iter().map(|v| json!({ key: v })).collect();
    json!({ "items": list })
}

/// `tagSpecificationSet` of a create: one item per resource type with tags.
#[must_use]
pub fn tag_specifications(specs: &[(&str, &Tags)]) -> Value {
    let list: Vec<Value> = specs
        .iter()
        .filter(|(_, tags)| tags.iter().next().is_some())
        .map(|(kind, tags)| {
            let tags: Vec<Value> = tags.iter().map(|t| json!({ "key": t.key, "value": t.value })).collect();
            json!({ "resourceType": kind, "tags": tags })
        })
        .collect();
    json!({ "items": list })
}

fn filters(filters: &[Filter]) -> Value {
    let list: Vec<Value> = filters
        .iter()
        .map(|f| json!({ "name": f.name, "valueSet": items("value", f.values.iter().map(String::as_str)) }))
        .collect();
    json!({ "items": list })
}

/// A Describe's parameters: `<set>.items[].<key>` and `filterSet`.
fn describe<Id: AsRefStr>(set: &str, key: &str, d: &DescribeInput<Id>) -> Value {
    let mut v = json!({ set: items(key, d.ids.iter().map(AsRefStr::str)) });
    if let Some(map) = v.as_object_mut() {
        if !d.filters.is_empty() {
            map.insert("filterSet".into(), filters(&d.filters));
        }
        if let Some(m) = d.max_results {
            map.insert("maxResults".into(), json!(m));
        }
    }
    v
}

/// The id types' `as_str`, for [`describe`].
trait AsRefStr {
    fn str(&self) -> &str;
}

macro_rules! as_ref_str {
    ($($t:ty),*) => { $( impl AsRefStr for $t { fn str(&self) -> &str { self.as_str() } } )* };
}

as_ref_str!(
    crate::cloud::InstanceId,
    crate::cloud::VolumeId,
    crate::cloud::SnapshotId,
    crate::cloud::VpcId,
    crate::cloud::SubnetId,
    crate::cloud::RouteTableId,
    crate::cloud::SecurityGroupId,
    crate::cloud::InternetGatewayId,
    crate::cloud::VpcEndpointId,
    crate::cloud::ImageId
);

fn instances_set<'a>(ids: impl IntoIterator<Item = &'a str>) -> Value {
    json!({ "instancesSet": items("instanceId", ids) })
}

/// The call's main inputs in CloudTrail's `requestParameters` shapes (EC2's query-API names:
/// `instancesSet.items[].instanceId`, `tagSpecificationSet`...; KMS's and IAM's JSON names).
#[must_use]
pub fn request_parameters(call: Call<'_>) -> Value {
    match call {
        Call::DescribeRegions(_) => json!({ "regionSet": {} }),
        Call::DescribeAvailabilityZones(_) => json!({ "availabilityZoneSet": {}, "availabilityZoneIdSet": {} }),
        Call::DescribeInstanceTypeOfferings(i) => json!({
            "DescribeInstanceTypeOfferingsRequest": {
                "LocationType": "availability-zone",
                "Filter": { "Name": "instance-type", "Value": i.instance_types },
            }
        }),
        Call::GetCallerIdentity(_) => Value::Null,
        Call::GetUser(i) => match &i.user_name {
            Some(u) => json!({ "userName": u }),
            None => Value::Null,
        },
        Call::DescribeInstances(i) => describe("instancesSet", "instanceId", i),
        Call::DescribeVolumes(i) => describe("volumeSet", "volumeId", i),
        Call::CreateSnapshots(i) => json!({
            "instanceSpecification": {
                "instanceId": i.instance.id.as_str(),
                "excludeBootVolume": i.exclude_boot_volume,
            },
            "description": i.description,
            "tagSpecificationSet": tag_specifications(&[("snapshot", &i.tags)]),
        }),
        Call::CreateSnapshot(i) => json!({
            "volumeId": i.volume.id.as_str(),
            "description": i.description,
            "tagSpecificationSet": tag_specifications(&[("snapshot", &i.tags)]),
        }),
        Call::DescribeSnapshots(i) => {
            let mut v = describe("snapshotSet", "snapshotId", &i.describe);
            if let Some(map) = v.as_object_mut() {
                map.insert("ownersSet".into(), items("owner", [i.owner.as_str()]));
            }
            v
        }
        Call::CopySnapshot(i) => json!({
            "sourceRegion": i.source_region.as_str(),
            "sourceSnapshotId": i.source.id.as_str(),
            "description": i.description,
            "encrypted": i.encrypted,
            "kmsKeyId": i.kms_key_id.as_ref().map(|k| k.as_str()),
            "tagSpecificationSet": tag_specifications(&[("snapshot", &i.tags)]),
        }),
        Call::ModifySnapshotAttribute(i) => {
            let change = match i.change {
                PermissionChange::Add => "add",
                PermissionChange::Remove => "remove",
            };
            json!({
                "snapshotId": i.snapshot.id.as_str(),
                "createVolumePermission": { change: items("userId", [i.account.as_str()]) },
                "attributeType": "CREATE_VOLUME_PERMISSION",
            })
        }
        Call::DeleteSnapshot(i) => json!({ "snapshotId": i.snapshot.id.as_str() }),
        Call::CreateVpc(i) => json!({
            "cidrBlock": i.cidr_block,
            "tagSpecificationSet": tag_specifications(&[("vpc", &i.tags)]),
        }),
        Call::CreateSubnet(i) => json!({
            "vpcId": i.vpc.id.as_str(),
            "cidrBlock": i.cidr_block,
            "availabilityZone": i.availability_zone,
            "tagSpecificationSet": tag_specifications(&[("subnet", &i.tags)]),
        }),
        Call::ModifySubnetAttribute(i) => json!({
            "subnetId": i.subnet.id.as_str(),
            "mapPublicIpOnLaunch": { "value": i.map_public_ip_on_launch },
        }),
        Call::CreateInternetGateway(i) => {
            json!({ "tagSpecificationSet": tag_specifications(&[("internet-gateway", &i.tags)]) })
        }
        Call::AttachInternetGateway(i) => {
            json!({ "internetGatewayId": i.internet_gateway.id.as_str(), "vpcId": i.vpc.id.as_str() })
        }
        Call::DetachInternetGateway(i) => {
            json!({ "internetGatewayId": i.internet_gateway.id.as_str(), "vpcId": i.vpc.id.as_str() })
        }
        Call::DescribeRouteTables(i) => describe("routeTableIdSet", "routeTableId", i),
        Call::CreateRoute(i) => json!({
            "routeTableId": i.route_table.id.as_str(),
            "destinationCidrBlock": i.destination_cidr,
            "gatewayId": i.gateway.as_str(),
        }),
        Call::CreateSecurityGroup(i) => json!({
            "groupName": i.group_name,
            "groupDescription": i.description,
            "vpcId": i.vpc.id.as_str(),
            "tagSpecificationSet": tag_specifications(&[("security-group", &i.tags)]),
        }),
        Call::AuthorizeSecurityGroupEgress(i) => {
            let rules: Vec<Value> = i
                .rules
                .iter()
                .map(|r| {
                    json!({
                        "ipProtocol": r.protocol,
                        "fromPort": r.from_port,
                        "toPort": r.to_port,
                        "ipRanges": items("cidrIp", [r.cidr.as_str()]),
                    })
                })
                .collect();
            json!({ "groupId": i.group.id.as_str(), "ipPermissions": { "items": rules } })
        }
        Call::CreateVpcEndpoint(i) => {
            let mut v = json!({
                "CreateVpcEndpointRequest": {
                    "VpcId": i.vpc.id.as_str(),
                    "ServiceName": i.service_name,
                }
            });
            if let Some(req) = v.get_mut("CreateVpcEndpointRequest").and_then(Value::as_object_mut) {
                match &i.kind {
                    EndpointKind::Interface { subnets, security_groups } => {
                        req.insert("VpcEndpointType".into(), json!("Interface"));
                        req.insert("SubnetId".into(), json!(subnets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>()));
                        let groups: Vec<&str> = security_groups.iter().map(|g| g.id.as_str()).collect();
                        req.insert("SecurityGroupId".into(), json!(groups));
                    }
                    EndpointKind::Gateway { route_tables } => {
                        req.insert("VpcEndpointType".into(), json!("Gateway"));
                        let tables: Vec<&str> = route_tables.iter().map(|t| t.id.as_str()).collect();
                        req.insert("RouteTableId".into(), json!(tables));
                    }
                }
                req.insert("TagSpecification".into(), tag_specifications(&[("vpc-endpoint", &i.tags)]));
            }
            v
        }
        Call::DescribeVpcs(i) => describe("vpcSet", "vpcId", i),
        Call::DescribeSubnets(i) => describe("subnetSet", "subnetId", i),
        Call::DescribeSecurityGroups(i) => describe("securityGroupIdSet", "groupId", i),
        Call::DescribeInternetGateways(i) => describe("internetGatewayIdSet", "internetGatewayId", i),
        Call::DescribeVpcEndpoints(i) => {
            let ids: Vec<&str> = i.ids.iter().map(|e| e.as_str()).collect();
            json!({ "DescribeVpcEndpointsRequest": { "VpcEndpointId": ids } })
        }
        Call::RunInstances(i) => {
            let mut mappings: Vec<Value> = Vec::new();
            if let Some(root) = &i.root {
                mappings.push(json!({
                    "deviceName": root.device_name,
                    "ebs": { "volumeSize": root.size_gib, "deleteOnTermination": true },
                }));
            }
            mappings.extend(i.volumes.iter().map(|v| {
                json!({
                    "deviceName": v.device_name,
                    "ebs": { "snapshotId": v.snapshot.id.as_str(), "volumeType": "gp3", "deleteOnTermination": true },
                })
            }));
            json!({
                "instancesSet": { "items": [{ "imageId": i.image.id.as_str(), "minCount": 1, "maxCount": 1 }] },
                "userData": "<sensitiveDataRemoved>",
                "instanceType": i.instance_type,
                "blockDeviceMapping": { "items": mappings },
                "monitoring": { "enabled": false },
                "disableApiTermination": false,
                "instanceInitiatedShutdownBehavior": "terminate",
                "clientToken": i.client_token,
                "networkInterfaceSet": { "items": [{
                    "deviceIndex": 0,
                    "subnetId": i.subnet.id.as_str(),
                    "groupSet": items("groupId", i.security_groups.iter().map(|g| g.id.as_str())),
                }] },
                "tagSpecificationSet": tag_specifications(&[
                    ("instance", &i.instance_tags),
                    ("volume", &i.volume_tags),
                    ("network-interface", &i.network_interface_tags),
                ]),
                "metadataOptions": { "httpTokens": "required" },
            })
        }
        Call::DescribeImages(i) => {
            let mut v = describe("imagesSet", "imageId", &i.describe);
            if let Some(map) = v.as_object_mut() {
                map.insert("ownersSet".into(), items("owner", i.owners.iter().map(String::as_str)));
            }
            v
        }
        Call::CopyImage(i) => json!({
            "sourceRegion": i.source_region.as_str(),
            "sourceImageId": i.source.id.as_str(),
            "name": i.name,
            "description": i.description,
            "encrypted": i.encrypted,
            "kmsKeyId": i.kms_key_id.as_ref().map(|k| k.as_str()),
            "tagSpecificationSet": tag_specifications(&[("image", &i.tags), ("snapshot", &i.tags)]),
        }),
        Call::TerminateInstances(i) => instances_set(i.instances.iter().map(|t| t.id.as_str())),
        Call::StopInstances(i) => {
            let mut v = instances_set(i.instances.iter().map(|t| t.id.as_str()));
            if let Some(map) = v.as_object_mut() {
                map.insert("force".into(), json!(false));
            }
            v
        }
        Call::DeleteVpcEndpoints(i) => {
            let ids: Vec<&str> = i.endpoints.iter().map(|e| e.id.as_str()).collect();
            json!({ "DeleteVpcEndpointsRequest": { "VpcEndpointId": ids } })
        }
        Call::DeleteSecurityGroup(i) => json!({ "groupId": i.group.id.as_str() }),
        Call::DeleteSubnet(i) => json!({ "subnetId": i.subnet.id.as_str() }),
        Call::DeleteInternetGateway(i) => json!({ "internetGatewayId": i.internet_gateway.id.as_str() }),
        Call::DeleteVpc(i) => json!({ "vpcId": i.vpc.id.as_str() }),
        Call::DescribeKey(i) => json!({ "keyId": i.key.as_str() }),
        Call::CreateGrant(i) => json!({
            "keyId": i.key.as_str(),
            "granteePrincipal": i.grantee_principal,
            "operations": i.operations.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
            "constraints": { "encryptionContextSubset": { "aws:ebs:id": i.ebs_id.as_str() } },
            "name": i.name,
        }),
        Call::ListGrants(i) => match &i.marker {
            Some(m) => json!({ "keyId": i.key.as_str(), "marker": m }),
            None => json!({ "keyId": i.key.as_str() }),
        },
        Call::RevokeGrant(i) => json!({ "keyId": i.key.as_str(), "grantId": i.grant_id.as_str() }),
        Call::GetQueueUrl(i) => json!({ "queueName": i.queue_name }),
        Call::ReceiveMessage(i) => json!({ "queueUrl": i.queue.url }),
        Call::GetObject(i) => json!({ "bucketName": i.bucket, "key": i.key }),
    }
}

/// What a call's output puts in `responseElements`: the ids it created (`null` for reads).
pub trait ResponseElements {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        Value::Null
    }
}

impl<T> ResponseElements for Page<T> {}
impl ResponseElements for Vec<RegionInfo> {}
impl ResponseElements for Vec<AvailabilityZoneInfo> {}
impl ResponseElements for Vec<InstanceTypeOffering> {}
impl ResponseElements for Vec<QueueMessage> {}
impl ResponseElements for QueueUrl {}
impl ResponseElements for ObjectBody {}
impl ResponseElements for KeyInfo {}

impl ResponseElements for CallerIdentity {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        json!({ "account": self.account.as_str(), "arn": self.arn, "userId": self.user_id })
    }
}

impl ResponseElements for UserInfo {}

impl ResponseElements for Empty {
    /// EC2's mutating calls without output answer `{"_return": true}`; KMS's `null`.
    fn response_elements(&self, call: Call<'_>) -> Value {
        if event_source(call) == Some(EC2) && !read_only(call.name()) {
            json!({ "_return": true })
        } else {
            Value::Null
        }
    }
}

impl ResponseElements for CreateSnapshotsOutput {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        let list: Vec<Value> = self
            .snapshots
            .iter()
            .map(|s| json!({ "snapshotId": s.snapshot_id.as_str(), "volumeId": s.volume_id.as_str() }))
            .collect();
        json!({ "snapshotSet": { "items": list } })
    }
}

impl ResponseElements for CreateSnapshotOutput {
    fn response_elements(&self, call: Call<'_>) -> Value {
        let volume = match call {
            Call::CreateSnapshot(i) => Some(i.volume.id.as_str()),
            _ => None,
        };
        json!({ "snapshotId": self.snapshot_id.as_str(), "volumeId": volume, "status": "pending" })
    }
}

impl ResponseElements for CopySnapshotOutput {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        json!({ "snapshotId": self.snapshot_id.as_str() })
    }
}

impl ResponseElements for CreateVpcOutput {
    fn response_elements(&self, call: Call<'_>) -> Value {
        let cidr = match call {
            Call::CreateVpc(i) => Some(i.cidr_block.as_str()),
            _ => None,
        };
        json!({ "vpc": { "vpcId": self.vpc_id.as_str(), "state": "pending", "cidrBlock": cidr } })
    }
}

impl ResponseElements for CreateSubnetOutput {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        json!({ "subnet": { "subnetId": self.subnet_id.as_str(), "state": "available" } })
    }
}

impl ResponseElements for CreateInternetGatewayOutput {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        json!({ "internetGateway": { "internetGatewayId": self.internet_gateway_id.as_str() } })
    }
}

impl ResponseElements for CreateSecurityGroupOutput {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        json!({ "_return": true, "groupId": self.group_id.as_str() })
    }
}

impl ResponseElements for CreateVpcEndpointOutput {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        json!({ "CreateVpcEndpointResponse": { "vpcEndpoint": { "vpcEndpointId": self.vpc_endpoint_id.as_str() } } })
    }
}

impl ResponseElements for RunScannerOutput {
    fn response_elements(&self, call: Call<'_>) -> Value {
        let (image, instance_type) = match call {
            Call::RunInstances(i) => (Some(i.image.id.as_str()), Some(i.instance_type.as_str())),
            _ => (None, None),
        };
        json!({
            "instancesSet": { "items": [{
                "instanceId": self.instance_id.as_str(),
                "imageId": image,
                "instanceType": instance_type,
                "instanceState": { "code": 0, "name": "pending" },
                "networkInterfaceSet": items("networkInterfaceId", self.network_interfaces.iter().map(|e| e.as_str())),
            }] },
        })
    }
}

impl ResponseElements for CopyImageOutput {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        json!({ "imageId": self.image_id.as_str() })
    }
}

/// EC2's instance state codes (EC2 API Reference, `InstanceState`).
fn state_json(s: &InstanceState) -> Value {
    let (code, name) = match s {
        InstanceState::Pending => (0, "pending"),
        InstanceState::Running => (16, "running"),
        InstanceState::ShuttingDown => (32, "shutting-down"),
        InstanceState::Terminated => (48, "terminated"),
        InstanceState::Stopping => (64, "stopping"),
        InstanceState::Stopped => (80, "stopped"),
        InstanceState::Unknown(n) => return json!({ "name": n }),
    };
    json!({ "code": code, "name": name })
}

impl ResponseElements for Vec<InstanceStateChange> {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        let list: Vec<Value> = self
            .iter()
            .map(|c| {
                json!({
                    "instanceId": c.instance_id.as_str(),
                    "currentState": state_json(&c.current),
                    "previousState": state_json(&c.previous),
                })
            })
            .collect();
        json!({ "instancesSet": { "items": list } })
    }
}

impl ResponseElements for DeleteVpcEndpointsOutput {
    fn response_elements(&self, _call: Call<'_>) -> Value {
        let list: Vec<Value> = self
            .unsuccessful
            .iter()
            .map(|(id, code)| json!({ "resourceId": id.as_str(), "error": { "code": code } }))
            .collect();
        json!({ "DeleteVpcEndpointsResponse": { "unsuccessful": list } })
    }
}

impl ResponseElements for CreateGrantOutput {
    fn response_elements(&self, call: Call<'_>) -> Value {
        let key = match call {
            Call::CreateGrant(i) => Some(i.key.as_str()),
            _ => None,
        };
        json!({ "grantId": self.grant_id.as_str(), "keyId": key })
    }
}
