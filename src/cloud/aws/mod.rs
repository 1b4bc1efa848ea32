//! The AWS backend of the cloud seam: [`AwsCloud`] implements [`Cloud`] over aws-sdk-ec2,
//! aws-sdk-kms, aws-sdk-sts, aws-sdk-iam, and aws-sdk-sqs and aws-sdk-s3 for the CloudTrail pipeline.
//!
//! - Like every backend it is reached only through the [`Guard`](crate::cloud::Guard): each
//!   method takes the guard's [`Authorized`] token, whose Region says where the call goes. One
//!   client set per Region is built on first use from the shared SDK configuration and cached.
//! - Configuration ([`config`]): the standard credential chain or static credentials, an assumed
//!   role, the endpoint URL, the SDK's standard retry mode with configurable attempts, timeouts.
//! - Errors ([`error`]): every SDK error becomes a [`CloudError`] with the AWS code, request id,
//!   HTTP status, Region and ids. Retrying is the SDK's job (standard mode: throttling and
//!   transient errors, with backoff and a retry quota); nothing here loops around it.
//! - The operations live in [`ec2`], [`kms`], [`identity`] and [`pipeline`], one function per operation; the
//!   `Cloud` impl below only picks the Region's client.
//!
//! Wire tests: `tests/aws.rs` runs every operation through the guard against moto
//! (docs/cloud-seam.md, "moto"); the throttling test below uses a local HTTP server.

pub mod config;
mod ec2;
mod error;
mod identity;
pub mod kms;
mod pipeline;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub use config::{AssumeRole, AwsConfig, ConfigError, StaticCredentials};

use super::guard::Authorized;
use super::ids::{
    InstanceId, InternetGatewayId, Region, RouteTableId, SecurityGroupId, SubnetId, VolumeId, VpcEndpointId, VpcId,
};
use super::ops::*;
use super::{Cloud, CloudError};

/// The clients of one Region.
#[derive(Debug)]
struct Clients {
    ec2: aws_sdk_ec2::Client,
    kms: aws_sdk_kms::Client,
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
}

/// The AWS SDK backend (see the module documentation).
#[derive(Debug)]
pub struct AwsCloud {
    sdk: aws_config::SdkConfig,
    clients: Mutex<HashMap<Region, Arc<Clients>>>,
}

impl AwsCloud {
    /// Load the SDK configuration (credential chain, assumed role...) from `config`.
    pub async fn new(config: &AwsConfig) -> Result<AwsCloud, ConfigError> {
        Ok(AwsCloud::from_sdk_config(config.load().await?))
    }

    /// Over an SDK configuration built elsewhere.
    #[must_use]
    pub fn from_sdk_config(sdk: aws_config::SdkConfig) -> AwsCloud {
        AwsCloud { sdk, clients: Mutex::new(HashMap::new()) }
    }

    /// The clients for the Region the call was authorized for.
    fn clients(&self, auth: &Authorized) -> Arc<Clients> {
        let region = auth.region();
        let mut cache = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(cache.entry(region.clone()).or_insert_with(|| {
            let r = aws_config::Region::new(region.as_str().to_owned());
            Arc::new(Clients {
                ec2: aws_sdk_ec2::Client::from_conf(
                    aws_sdk_ec2::config::Builder::from(&self.sdk).region(r.clone()).build(),
                ),
                kms: aws_sdk_kms::Client::from_conf(
                    aws_sdk_kms::config::Builder::from(&self.sdk).region(r.clone()).build(),
                ),
                sts: aws_sdk_sts::Client::from_conf(
                    aws_sdk_sts::config::Builder::from(&self.sdk).region(r.clone()).build(),
                ),
                iam: aws_sdk_iam::Client::from_conf(
                    aws_sdk_iam::config::Builder::from(&self.sdk).region(r.clone()).build(),
                ),
                sqs: aws_sdk_sqs::Client::from_conf(
                    aws_sdk_sqs::config::Builder::from(&self.sdk).region(r.clone()).build(),
                ),
                // A custom endpoint (moto, a VPC endpoint URL) serves buckets by path, not by
                // virtual host (`<bucket>.<endpoint>` needs DNS we do not control).
                s3: aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&self.sdk)
                        .region(r)
                        .force_path_style(self.sdk.endpoint_url().is_some())
                        .build(),
                ),
            })
        }))
    }
}

impl Cloud for AwsCloud {
    async fn describe_regions(
        &self,
        auth: Authorized,
        _: &DescribeRegionsInput,
    ) -> Result<Vec<RegionInfo>, CloudError> {
        ec2::describe_regions(&self.clients(&auth).ec2, &auth).await
    }

    async fn describe_availability_zones(
        &self,
        auth: Authorized,
        _: &DescribeAvailabilityZonesInput,
    ) -> Result<Vec<AvailabilityZoneInfo>, CloudError> {
        ec2::describe_availability_zones(&self.clients(&auth).ec2, &auth).await
    }

    async fn describe_instance_type_offerings(
        &self,
        auth: Authorized,
        input: &DescribeInstanceTypeOfferingsInput,
    ) -> Result<Vec<InstanceTypeOffering>, CloudError> {
        ec2::describe_instance_type_offerings(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn get_caller_identity(
        &self,
        auth: Authorized,
        _: &GetCallerIdentityInput,
    ) -> Result<CallerIdentity, CloudError> {
        identity::get_caller_identity(&self.clients(&auth).sts, &auth).await
    }

    async fn get_user(&self, auth: Authorized, input: &GetUserInput) -> Result<UserInfo, CloudError> {
        identity::get_user(&self.clients(&auth).iam, &auth, input).await
    }

    async fn describe_instances(
        &self,
        auth: Authorized,
        input: &DescribeInput<InstanceId>,
    ) -> Result<Page<InstanceInfo>, CloudError> {
        ec2::describe_instances(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_volumes(
        &self,
        auth: Authorized,
        input: &DescribeInput<VolumeId>,
    ) -> Result<Page<VolumeInfo>, CloudError> {
        ec2::describe_volumes(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn create_snapshots(
        &self,
        auth: Authorized,
        input: &CreateSnapshotsInput,
    ) -> Result<CreateSnapshotsOutput, CloudError> {
        ec2::create_snapshots(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn create_snapshot(
        &self,
        auth: Authorized,
        input: &CreateSnapshotInput,
    ) -> Result<CreateSnapshotOutput, CloudError> {
        ec2::create_snapshot(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_snapshots(
        &self,
        auth: Authorized,
        input: &DescribeSnapshotsInput,
    ) -> Result<Page<SnapshotInfo>, CloudError> {
        ec2::describe_snapshots(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn copy_snapshot(
        &self,
        auth: Authorized,
        input: &CopySnapshotInput,
    ) -> Result<CopySnapshotOutput, CloudError> {
        ec2::copy_snapshot(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn modify_snapshot_attribute(
        &self,
        auth: Authorized,
        input: &ModifySnapshotAttributeInput,
    ) -> Result<Empty, CloudError> {
        ec2::modify_snapshot_attribute(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn delete_snapshot(&self, auth: Authorized, input: &DeleteSnapshotInput) -> Result<Empty, CloudError> {
        ec2::delete_snapshot(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn create_vpc(&self, auth: Authorized, input: &CreateVpcInput) -> Result<CreateVpcOutput, CloudError> {
        ec2::create_vpc(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn create_subnet(
        &self,
        auth: Authorized,
        input: &CreateSubnetInput,
    ) -> Result<CreateSubnetOutput, CloudError> {
        ec2::create_subnet(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn modify_subnet_attribute(
        &self,
        auth: Authorized,
        input: &ModifySubnetAttributeInput,
    ) -> Result<Empty, CloudError> {
        ec2::modify_subnet_attribute(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn create_internet_gateway(
        &self,
        auth: Authorized,
        input: &CreateInternetGatewayInput,
    ) -> Result<CreateInternetGatewayOutput, CloudError> {
        ec2::create_internet_gateway(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn attach_internet_gateway(
        &self,
        auth: Authorized,
        input: &AttachInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        ec2::attach_internet_gateway(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn detach_internet_gateway(
        &self,
        auth: Authorized,
        input: &DetachInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        ec2::detach_internet_gateway(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_route_tables(
        &self,
        auth: Authorized,
        input: &DescribeInput<RouteTableId>,
    ) -> Result<Page<RouteTableInfo>, CloudError> {
        ec2::describe_route_tables(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn create_route(&self, auth: Authorized, input: &CreateRouteInput) -> Result<Empty, CloudError> {
        ec2::create_route(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn create_security_group(
        &self,
        auth: Authorized,
        input: &CreateSecurityGroupInput,
    ) -> Result<CreateSecurityGroupOutput, CloudError> {
        ec2::create_security_group(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn authorize_security_group_egress(
        &self,
        auth: Authorized,
        input: &AuthorizeSecurityGroupEgressInput,
    ) -> Result<Empty, CloudError> {
        ec2::authorize_security_group_egress(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn create_vpc_endpoint(
        &self,
        auth: Authorized,
        input: &CreateVpcEndpointInput,
    ) -> Result<CreateVpcEndpointOutput, CloudError> {
        ec2::create_vpc_endpoint(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_vpcs(&self, auth: Authorized, input: &DescribeInput<VpcId>) -> Result<Page<VpcInfo>, CloudError> {
        ec2::describe_vpcs(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_subnets(
        &self,
        auth: Authorized,
        input: &DescribeInput<SubnetId>,
    ) -> Result<Page<SubnetInfo>, CloudError> {
        ec2::describe_subnets(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_security_groups(
        &self,
        auth: Authorized,
        input: &DescribeInput<SecurityGroupId>,
    ) -> Result<Page<SecurityGroupInfo>, CloudError> {
        ec2::describe_security_groups(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_internet_gateways(
        &self,
        auth: Authorized,
        input: &DescribeInput<InternetGatewayId>,
    ) -> Result<Page<InternetGatewayInfo>, CloudError> {
        ec2::describe_internet_gateways(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_vpc_endpoints(
        &self,
        auth: Authorized,
        input: &DescribeInput<VpcEndpointId>,
    ) -> Result<Page<VpcEndpointInfo>, CloudError> {
        ec2::describe_vpc_endpoints(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn run_scanner(&self, auth: Authorized, input: &RunScannerInput) -> Result<RunScannerOutput, CloudError> {
        ec2::run_scanner(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_images(
        &self,
        auth: Authorized,
        input: &DescribeImagesInput,
    ) -> Result<Page<ImageInfo>, CloudError> {
        ec2::describe_images(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn copy_image(&self, auth: Authorized, input: &CopyImageInput) -> Result<CopyImageOutput, CloudError> {
        ec2::copy_image(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn terminate_instances(
        &self,
        auth: Authorized,
        input: &TerminateInstancesInput,
    ) -> Result<Vec<InstanceStateChange>, CloudError> {
        ec2::terminate_instances(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn stop_instances(
        &self,
        auth: Authorized,
        input: &StopInstancesInput,
    ) -> Result<Vec<InstanceStateChange>, CloudError> {
        ec2::stop_instances(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn delete_vpc_endpoints(
        &self,
        auth: Authorized,
        input: &DeleteVpcEndpointsInput,
    ) -> Result<DeleteVpcEndpointsOutput, CloudError> {
        ec2::delete_vpc_endpoints(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn delete_security_group(
        &self,
        auth: Authorized,
        input: &DeleteSecurityGroupInput,
    ) -> Result<Empty, CloudError> {
        ec2::delete_security_group(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn delete_subnet(&self, auth: Authorized, input: &DeleteSubnetInput) -> Result<Empty, CloudError> {
        ec2::delete_subnet(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn delete_internet_gateway(
        &self,
        auth: Authorized,
        input: &DeleteInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        ec2::delete_internet_gateway(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn delete_vpc(&self, auth: Authorized, input: &DeleteVpcInput) -> Result<Empty, CloudError> {
        ec2::delete_vpc(&self.clients(&auth).ec2, &auth, input).await
    }

    async fn describe_key(&self, auth: Authorized, input: &DescribeKeyInput) -> Result<KeyInfo, CloudError> {
        kms::describe_key(&self.clients(&auth).kms, &auth, input).await
    }

    async fn create_grant(&self, auth: Authorized, input: &CreateGrantInput) -> Result<CreateGrantOutput, CloudError> {
        kms::create_grant(&self.clients(&auth).kms, &auth, input).await
    }

    async fn list_grants(&self, auth: Authorized, input: &ListGrantsInput) -> Result<Page<GrantInfo>, CloudError> {
        kms::list_grants(&self.clients(&auth).kms, &auth, input).await
    }

    async fn revoke_grant(&self, auth: Authorized, input: &RevokeGrantInput) -> Result<Empty, CloudError> {
        kms::revoke_grant(&self.clients(&auth).kms, &auth, input).await
    }

    async fn get_queue_url(&self, auth: Authorized, input: &GetQueueUrlInput) -> Result<QueueUrl, CloudError> {
        pipeline::get_queue_url(&self.clients(&auth).sqs, &auth, input).await
    }

    async fn receive_message(
        &self,
        auth: Authorized,
        input: &ReceiveMessageInput,
    ) -> Result<Vec<QueueMessage>, CloudError> {
        pipeline::receive_message(&self.clients(&auth).sqs, &auth, input).await
    }

    async fn get_object(&self, auth: Authorized, input: &GetObjectInput) -> Result<ObjectBody, CloudError> {
        pipeline::get_object(&self.clients(&auth).s3, &auth, input).await
    }
}

#[cfg(test)]
mod throttling_tests;
