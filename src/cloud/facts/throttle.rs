//! The EC2 API's token buckets (AWS, "Request throttling for the Amazon EC2 API", as tabulated in
//! docs/references.md, "EC2 API throttling"): each request takes a token from its action's
//! bucket, each bucket refills at a fixed rate up to its size, and a request finding its bucket
//! empty fails with `RequestLimitExceeded`. `RunInstances`, `TerminateInstances` and
//! `StopInstances` also take one token per instance from a resource bucket.
//!
//! Buckets are per (account, Region, action), sized by the action's category (INFERENCE: the AWS
//! page gives sizes per category; one bucket per action is our reading). KMS, STS and IAM calls
//! take no tokens here (their quotas are not in docs/references.md). Read by the client-side
//! [`crate::cloud::pacer::Pacer`] and by the simulated account's buckets
//! ([`crate::cloud::sim::throttle`]).

use crate::cloud::Call;

/// A bucket's size and refill per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub size: f64,
    pub per_second: f64,
}

const fn rate(size: f64, per_second: f64) -> Rate {
    Rate { size, per_second }
}

/// Non-mutating actions (`Describe*`, `List*`, `Get*`): 100, refill 20/s (docs/references.md).
pub const NON_MUTATING: Rate = rate(100.0, 20.0);
/// Unfiltered and unpaginated `DescribeInstances`, `DescribeSecurityGroups`, `DescribeSnapshots`,
/// `DescribeVolumes`...: 50, refill 10/s (docs/references.md).
pub const UNFILTERED: Rate = rate(50.0, 10.0);
/// Mutating actions not listed elsewhere (`CreateVpc`, `DeleteVpc`, `CopySnapshot`...): 50,
/// refill 5/s (docs/references.md; the membership is INFERENCE).
pub const MUTATING: Rate = rate(50.0, 5.0);
/// Resource-intensive actions (`AuthorizeSecurityGroupEgress`...): 50, refill 5/s (docs/references.md).
pub const RESOURCE_INTENSIVE: Rate = rate(50.0, 5.0);
/// `CreateSnapshot`/`CreateSnapshots`, `DeleteSnapshot`, `ModifySnapshotAttribute`: 100, refill
/// 5/s each (docs/references.md).
pub const SNAPSHOT_ACTIONS: Rate = rate(100.0, 5.0);
/// `CreateVpcEndpoint`, `DeleteVpcEndpoints`: 4, refill 0.3/s, "the tightest bucket" (docs/references.md).
pub const VPC_ENDPOINT_ACTIONS: Rate = rate(4.0, 0.3);
/// `RunInstances` requests: 5, refill 2/s (docs/references.md).
pub const RUN_INSTANCES: Rate = rate(5.0, 2.0);
/// `TerminateInstances` requests: 100, refill 5/s (docs/references.md).
pub const TERMINATE_INSTANCES: Rate = rate(100.0, 5.0);
/// `CopyImage`: 100, refill 1/s (docs/references.md).
pub const COPY_IMAGE: Rate = rate(100.0, 1.0);
/// `RunInstances` resource bucket (instances): 1,000, refill 2/s (docs/references.md).
pub const RUN_INSTANCES_RESOURCE: Rate = rate(1000.0, 2.0);
/// `TerminateInstances` and `StopInstances` resource buckets: 1,000, refill 20/s (docs/references.md).
pub const TERMINATE_STOP_RESOURCE: Rate = rate(1000.0, 20.0);

/// The tokens one call takes: (bucket name, rate, tokens).
#[must_use]
pub fn cost(call: Call<'_>) -> Vec<(&'static str, Rate, f64)> {
    let one = |name: &'static str, r: Rate| vec![(name, r, 1.0)];
    let count = |n: usize| n as f64;
    match call {
        Call::GetCallerIdentity(_)
        | Call::GetUser(_)
        | Call::DescribeKey(_)
        | Call::CreateGrant(_)
        | Call::ListGrants(_)
        | Call::RevokeGrant(_) => Vec::new(),
        // SQS standard queues have a nearly unlimited API rate and S3 serves 5,500 GET/s per
        // prefix (SQS developer guide "Quotas"; S3 user guide "Performance guidelines"): the
        // reader's one long poll at a time and a few objects per delivery never approach them.
        Call::GetQueueUrl(_) | Call::ReceiveMessage(_) | Call::GetObject(_) => Vec::new(),
        Call::DescribeRegions(_) => one("DescribeRegions", NON_MUTATING),
        Call::DescribeAvailabilityZones(_) => one("DescribeAvailabilityZones", NON_MUTATING),
        Call::DescribeInstanceTypeOfferings(_) => one("DescribeInstanceTypeOfferings", NON_MUTATING),
        Call::DescribeInstances(i) => {
            one("DescribeInstances", describe_rate(i.ids.is_empty() && i.filters.is_empty() && i.max_results.is_none()))
        }
        Call::DescribeVolumes(i) => {
            one("DescribeVolumes", describe_rate(i.ids.is_empty() && i.filters.is_empty() && i.max_results.is_none()))
        }
        Call::DescribeSecurityGroups(i) => one(
            "DescribeSecurityGroups",
            describe_rate(i.ids.is_empty() && i.filters.is_empty() && i.max_results.is_none()),
        ),
        // Always filtered by owner-id (cloud::ops::DescribeSnapshotsInput).
        Call::DescribeSnapshots(_) => one("DescribeSnapshots", NON_MUTATING),
        Call::DescribeRouteTables(_) => one("DescribeRouteTables", NON_MUTATING),
        Call::DescribeVpcs(_) => one("DescribeVpcs", NON_MUTATING),
        Call::DescribeSubnets(_) => one("DescribeSubnets", NON_MUTATING),
        Call::DescribeInternetGateways(_) => one("DescribeInternetGateways", NON_MUTATING),
        Call::DescribeVpcEndpoints(_) => one("DescribeVpcEndpoints", NON_MUTATING),
        Call::DescribeImages(_) => one("DescribeImages", NON_MUTATING),
        // One bucket for both (docs/references.md, "EC2 API throttling").
        Call::CreateSnapshots(_) | Call::CreateSnapshot(_) => one("CreateSnapshot", SNAPSHOT_ACTIONS),
        Call::DeleteSnapshot(_) => one("DeleteSnapshot", SNAPSHOT_ACTIONS),
        Call::ModifySnapshotAttribute(_) => one("ModifySnapshotAttribute", SNAPSHOT_ACTIONS),
        Call::CopySnapshot(_) => one("CopySnapshot", MUTATING),
        Call::CreateVpc(_) => one("CreateVpc", MUTATING),
        Call::CreateSubnet(_) => one("CreateSubnet", MUTATING),
        Call::ModifySubnetAttribute(_) => one("ModifySubnetAttribute", MUTATING),
        Call::CreateInternetGateway(_) => one("CreateInternetGateway", MUTATING),
        Call::AttachInternetGateway(_) => one("AttachInternetGateway", MUTATING),
        Call::DetachInternetGateway(_) => one("DetachInternetGateway", MUTATING),
        Call::CreateRoute(_) => one("CreateRoute", MUTATING),
        Call::CreateSecurityGroup(_) => one("CreateSecurityGroup", MUTATING),
        Call::AuthorizeSecurityGroupEgress(_) => one("AuthorizeSecurityGroupEgress", RESOURCE_INTENSIVE),
        Call::CreateVpcEndpoint(_) => one("CreateVpcEndpoint", VPC_ENDPOINT_ACTIONS),
        Call::DeleteVpcEndpoints(_) => one("DeleteVpcEndpoints", VPC_ENDPOINT_ACTIONS),
        Call::DeleteSecurityGroup(_) => one("DeleteSecurityGroup", MUTATING),
        Call::DeleteSubnet(_) => one("DeleteSubnet", MUTATING),
        Call::DeleteInternetGateway(_) => one("DeleteInternetGateway", MUTATING),
        Call::DeleteVpc(_) => one("DeleteVpc", MUTATING),
        Call::CopyImage(_) => one("CopyImage", COPY_IMAGE),
        Call::RunInstances(_) => {
            vec![("RunInstances", RUN_INSTANCES, 1.0), ("RunInstances/instances", RUN_INSTANCES_RESOURCE, 1.0)]
        }
        Call::TerminateInstances(i) => vec![
            ("TerminateInstances", TERMINATE_INSTANCES, 1.0),
            ("TerminateInstances/instances", TERMINATE_STOP_RESOURCE, count(i.instances.len())),
        ],
        Call::StopInstances(i) => vec![
            ("StopInstances", MUTATING, 1.0),
            ("StopInstances/instances", TERMINATE_STOP_RESOURCE, count(i.instances.len())),
        ],
    }
}

fn describe_rate(unfiltered: bool) -> Rate {
    if unfiltered { UNFILTERED } else { NON_MUTATING }
}
