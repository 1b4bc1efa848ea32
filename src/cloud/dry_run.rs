//! A backend that sends nothing: it records each call it receives and answers with canned,
//! well-formed results (fresh ids for creates, empty pages for Describes). It is what a call plan
//! is replayed against to prove that the [`Guard`](super::Guard) wrapper and `agentless policy
//! check` decide alike, and a stand-in in tests that only care about the guard.
//!
//! Its futures are always ready, so [`now`] can drive them without an async runtime.

use std::pin::pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use super::Cloud;
use super::error::{CloudError, ErrorKind};
use super::guard::Authorized;
use super::ids::{AccountId, GrantId, IdError, Region};
use super::ops::*;

/// Drive a future that never waits (the dry run's, or a guard refusal) to its output; `None` if
/// it is not ready at the first poll (a backend that does real I/O needs a runtime).
pub fn now<F: Future>(future: F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// The dry-run backend.
#[derive(Debug)]
pub struct DryRun {
    account: AccountId,
    caller_arn: String,
    next: AtomicU64,
    calls: Mutex<Vec<(&'static str, Region)>>,
}

impl DryRun {
    /// A dry run for `account`, answering `GetCallerIdentity` with `caller_arn`.
    #[must_use]
    pub fn new(account: AccountId, caller_arn: impl Into<String>) -> DryRun {
        DryRun { account, caller_arn: caller_arn.into(), next: AtomicU64::new(1), calls: Mutex::new(Vec::new()) }
    }

    /// Every call received (operation, Region), in order.
    #[must_use]
    pub fn calls(&self) -> Vec<(&'static str, Region)> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn record(&self, auth: &Authorized) {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).push((auth.operation(), auth.region().clone()));
    }

    /// A fresh id `<prefix>-<17 hex digits>`.
    fn id<T: FromStr<Err = IdError>>(&self, auth: &Authorized, prefix: &str) -> Result<T, CloudError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{n:017x}").parse().map_err(|e: IdError| {
            CloudError::local(
                auth.operation(),
                Some(auth.region().clone()),
                ErrorKind::Other,
                e.to_string(),
                Vec::new(),
            )
        })
    }

    fn empty<T>(&self, auth: &Authorized) -> Result<Page<T>, CloudError> {
        self.record(auth);
        Ok(Page::default())
    }

    fn done(&self, auth: &Authorized) -> Result<Empty, CloudError> {
        self.record(auth);
        Ok(Empty)
    }
}

impl Cloud for DryRun {
    async fn describe_regions(&self, auth: Authorized, _: &Empty) -> Result<Vec<RegionInfo>, CloudError> {
        self.record(&auth);
        Ok(vec![RegionInfo { region: auth.region().clone(), opt_in_status: "opt-in-not-required".into() }])
    }

    async fn describe_availability_zones(
        &self,
        auth: Authorized,
        _: &Empty,
    ) -> Result<Vec<AvailabilityZoneInfo>, CloudError> {
        self.record(&auth);
        Ok(vec![AvailabilityZoneInfo {
            name: format!("{}a", auth.region()),
            zone_id: "dry-az1".into(),
            state: "available".into(),
        }])
    }

    async fn describe_instance_type_offerings(
        &self,
        auth: Authorized,
        input: &DescribeInstanceTypeOfferingsInput,
    ) -> Result<Vec<InstanceTypeOffering>, CloudError> {
        self.record(&auth);
        let az = format!("{}a", auth.region());
        Ok(input
            .instance_types
            .iter()
            .map(|t| InstanceTypeOffering { instance_type: t.clone(), availability_zone: az.clone() })
            .collect())
    }

    async fn get_caller_identity(&self, auth: Authorized, _: &Empty) -> Result<CallerIdentity, CloudError> {
        self.record(&auth);
        Ok(CallerIdentity { account: self.account.clone(), arn: self.caller_arn.clone(), user_id: "AIDADRYRUN".into() })
    }

    async fn get_user(&self, auth: Authorized, input: &GetUserInput) -> Result<UserInfo, CloudError> {
        self.record(&auth);
        let name = input
            .user_name
            .clone()
            .or_else(|| self.caller_arn.rsplit_once(":user/").map(|(_, n)| n.to_owned()))
            .unwrap_or_default();
        Ok(UserInfo {
            arn: format!("arn:aws:iam::{}:user/{name}", self.account),
            user_name: name,
            user_id: "AIDADRYRUN".into(),
        })
    }

    async fn describe_instances(
        &self,
        auth: Authorized,
        _: &DescribeInput<super::InstanceId>,
    ) -> Result<Page<InstanceInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn describe_volumes(
        &self,
        auth: Authorized,
        _: &DescribeInput<super::VolumeId>,
    ) -> Result<Page<VolumeInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn create_snapshots(
        &self,
        auth: Authorized,
        input: &CreateSnapshotsInput,
    ) -> Result<CreateSnapshotsOutput, CloudError> {
        self.record(&auth);
        let mut snapshots = Vec::new();
        for v in &input.volumes {
            snapshots.push(SnapshotStarted { snapshot_id: self.id(&auth, "snap")?, volume_id: v.id.clone() });
        }
        Ok(CreateSnapshotsOutput { snapshots })
    }

    async fn create_snapshot(
        &self,
        auth: Authorized,
        _: &CreateSnapshotInput,
    ) -> Result<CreateSnapshotOutput, CloudError> {
        self.record(&auth);
        Ok(CreateSnapshotOutput { snapshot_id: self.id(&auth, "snap")? })
    }

    async fn describe_snapshots(
        &self,
        auth: Authorized,
        _: &DescribeSnapshotsInput,
    ) -> Result<Page<SnapshotInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn copy_snapshot(&self, auth: Authorized, _: &CopySnapshotInput) -> Result<CopySnapshotOutput, CloudError> {
        self.record(&auth);
        Ok(CopySnapshotOutput { snapshot_id: self.id(&auth, "snap")? })
    }

    async fn modify_snapshot_attribute(
        &self,
        auth: Authorized,
        _: &ModifySnapshotAttributeInput,
    ) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn delete_snapshot(&self, auth: Authorized, _: &DeleteSnapshotInput) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn create_vpc(&self, auth: Authorized, _: &CreateVpcInput) -> Result<CreateVpcOutput, CloudError> {
        self.record(&auth);
        Ok(CreateVpcOutput { vpc_id: self.id(&auth, "vpc")? })
    }

    async fn create_subnet(&self, auth: Authorized, _: &CreateSubnetInput) -> Result<CreateSubnetOutput, CloudError> {
        self.record(&auth);
        Ok(CreateSubnetOutput { subnet_id: self.id(&auth, "subnet")? })
    }

    async fn modify_subnet_attribute(
        &self,
        auth: Authorized,
        _: &ModifySubnetAttributeInput,
    ) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn create_internet_gateway(
        &self,
        auth: Authorized,
        _: &CreateInternetGatewayInput,
    ) -> Result<CreateInternetGatewayOutput, CloudError> {
        self.record(&auth);
        Ok(CreateInternetGatewayOutput { internet_gateway_id: self.id(&auth, "igw")? })
    }

    async fn attach_internet_gateway(
        &self,
        auth: Authorized,
        _: &AttachInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn detach_internet_gateway(
        &self,
        auth: Authorized,
        _: &DetachInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn describe_route_tables(
        &self,
        auth: Authorized,
        _: &DescribeInput<super::RouteTableId>,
    ) -> Result<Page<RouteTableInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn create_route(&self, auth: Authorized, _: &CreateRouteInput) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn create_security_group(
        &self,
        auth: Authorized,
        _: &CreateSecurityGroupInput,
    ) -> Result<CreateSecurityGroupOutput, CloudError> {
        self.record(&auth);
        Ok(CreateSecurityGroupOutput { group_id: self.id(&auth, "sg")? })
    }

    async fn authorize_security_group_egress(
        &self,
        auth: Authorized,
        _: &AuthorizeSecurityGroupEgressInput,
    ) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn create_vpc_endpoint(
        &self,
        auth: Authorized,
        _: &CreateVpcEndpointInput,
    ) -> Result<CreateVpcEndpointOutput, CloudError> {
        self.record(&auth);
        Ok(CreateVpcEndpointOutput { vpc_endpoint_id: self.id(&auth, "vpce")? })
    }

    async fn describe_vpcs(
        &self,
        auth: Authorized,
        _: &DescribeInput<super::VpcId>,
    ) -> Result<Page<VpcInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn describe_subnets(
        &self,
        auth: Authorized,
        _: &DescribeInput<super::SubnetId>,
    ) -> Result<Page<SubnetInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn describe_security_groups(
        &self,
        auth: Authorized,
        _: &DescribeInput<super::SecurityGroupId>,
    ) -> Result<Page<SecurityGroupInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn describe_internet_gateways(
        &self,
        auth: Authorized,
        _: &DescribeInput<super::InternetGatewayId>,
    ) -> Result<Page<InternetGatewayInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn describe_vpc_endpoints(
        &self,
        auth: Authorized,
        _: &DescribeInput<super::VpcEndpointId>,
    ) -> Result<Page<VpcEndpointInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn run_scanner(&self, auth: Authorized, _: &RunScannerInput) -> Result<RunScannerOutput, CloudError> {
        self.record(&auth);
        Ok(RunScannerOutput { instance_id: self.id(&auth, "i")?, network_interfaces: vec![self.id(&auth, "eni")?] })
    }

    async fn describe_images(&self, auth: Authorized, _: &DescribeImagesInput) -> Result<Page<ImageInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn copy_image(&self, auth: Authorized, _: &CopyImageInput) -> Result<CopyImageOutput, CloudError> {
        self.record(&auth);
        Ok(CopyImageOutput { image_id: self.id(&auth, "ami")? })
    }

    async fn terminate_instances(
        &self,
        auth: Authorized,
        input: &TerminateInstancesInput,
    ) -> Result<Vec<InstanceStateChange>, CloudError> {
        self.record(&auth);
        Ok(input
            .instances
            .iter()
            .map(|i| InstanceStateChange {
                instance_id: i.id.clone(),
                previous: InstanceState::Running,
                current: InstanceState::ShuttingDown,
            })
            .collect())
    }

    async fn stop_instances(
        &self,
        auth: Authorized,
        input: &StopInstancesInput,
    ) -> Result<Vec<InstanceStateChange>, CloudError> {
        self.record(&auth);
        Ok(input
            .instances
            .iter()
            .map(|i| InstanceStateChange {
                instance_id: i.id.clone(),
                previous: InstanceState::Running,
                current: InstanceState::Stopping,
            })
            .collect())
    }

    async fn delete_vpc_endpoints(
        &self,
        auth: Authorized,
        _: &DeleteVpcEndpointsInput,
    ) -> Result<DeleteVpcEndpointsOutput, CloudError> {
        self.record(&auth);
        Ok(DeleteVpcEndpointsOutput::default())
    }

    async fn delete_security_group(&self, auth: Authorized, _: &DeleteSecurityGroupInput) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn delete_subnet(&self, auth: Authorized, _: &DeleteSubnetInput) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn delete_internet_gateway(
        &self,
        auth: Authorized,
        _: &DeleteInternetGatewayInput,
    ) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn delete_vpc(&self, auth: Authorized, _: &DeleteVpcInput) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn describe_key(&self, auth: Authorized, input: &DescribeKeyInput) -> Result<KeyInfo, CloudError> {
        self.record(&auth);
        Ok(KeyInfo {
            arn: input.key.arn("aws", auth.region(), &self.account),
            key_id: input.key.clone(),
            manager: KeyManager::Customer,
            state: "Enabled".into(),
        })
    }

    async fn create_grant(&self, auth: Authorized, _: &CreateGrantInput) -> Result<CreateGrantOutput, CloudError> {
        self.record(&auth);
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let grant_id: GrantId = format!("{n:064x}").parse().map_err(|e: IdError| {
            CloudError::local(
                auth.operation(),
                Some(auth.region().clone()),
                ErrorKind::Other,
                e.to_string(),
                Vec::new(),
            )
        })?;
        Ok(CreateGrantOutput { grant_id, grant_token: "dry-run-grant-token".into() })
    }

    async fn list_grants(&self, auth: Authorized, _: &ListGrantsInput) -> Result<Page<GrantInfo>, CloudError> {
        self.empty(&auth)
    }

    async fn revoke_grant(&self, auth: Authorized, _: &RevokeGrantInput) -> Result<Empty, CloudError> {
        self.done(&auth)
    }

    async fn get_queue_url(&self, auth: Authorized, input: &GetQueueUrlInput) -> Result<QueueUrl, CloudError> {
        self.record(&auth);
        let owner = input.owner.as_ref().unwrap_or(&self.account);
        Ok(QueueUrl { url: format!("https://sqs.{}.amazonaws.com/{owner}/{}", auth.region(), input.queue_name) })
    }

    /// An empty queue: a dry run reads no events.
    async fn receive_message(
        &self,
        auth: Authorized,
        _: &ReceiveMessageInput,
    ) -> Result<Vec<QueueMessage>, CloudError> {
        self.record(&auth);
        Ok(Vec::new())
    }

    /// No object exists in a dry run.
    async fn get_object(&self, auth: Authorized, input: &GetObjectInput) -> Result<ObjectBody, CloudError> {
        self.record(&auth);
        Err(CloudError::aws(
            auth.operation(),
            Some(auth.region().clone()),
            "NoSuchKey",
            "dry run: no objects",
            Some(404),
            None,
            vec![format!("s3://{}/{}", input.bucket, input.key)],
        ))
    }
}
