//! The AWS backend over the wire against moto (`tests/moto`): the conformance suite
//! (`tests/conformance.rs`) with every operation of the `Cloud` trait through the guard with the
//! bundled policy (moto ignores IAM; our guard does not), the tags of every create read back by a
//! Describe, error kinds from moto's real error responses, and one job's create-then-teardown
//! sequence that leaves nothing with our Name prefixes behind. The customer's side and the checks
//! the seam does not offer go through the raw SDK.

use agentless::cloud::aws::AwsCloud;
use agentless::cloud::tags::{RESOURCE_NAME_PREFIX, SNAPSHOT_NAME_PREFIX};
use agentless::cloud::{AccountId, Guard, ImageId, InstanceId, KmsKeyId, Region, SnapshotId};
use aws_sdk_ec2::types as ec2t;

use crate::conformance::{self, Fixture, ScannerSettings, east};
use crate::moto::{ACCOUNT, CALLER_USER, Moto};

/// moto as a conformance backend.
struct MotoFixture {
    moto: Moto,
}

impl MotoFixture {
    async fn start() -> MotoFixture {
        MotoFixture { moto: Moto::start().await }
    }

    async fn ec2(&self, region: &Region) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.moto.sdk(region).await)
    }
}

impl Fixture for MotoFixture {
    type Backend = AwsCloud;

    fn account(&self) -> AccountId {
        ACCOUNT.parse().expect("account")
    }

    fn caller_user(&self) -> String {
        CALLER_USER.into()
    }

    async fn guard_with(&self, region: &Region, extra: &[&str]) -> Guard<AwsCloud> {
        self.moto.guard_with(region, extra).await
    }

    /// The raw client picks it: moto's set also holds made-up ids such as `ami-ekswin` that our
    /// `ImageId` (like AWS) refuses, and the seam rightly refuses a page with a malformed id.
    async fn amazon_image(&self, region: &Region) -> ImageId {
        let out = self.ec2(region).await.describe_images().owners("amazon").send().await.expect("raw DescribeImages");
        out.images()
            .iter()
            .filter(|i| i.architecture() == Some(&ec2t::ArchitectureValues::X8664))
            .find_map(|i| i.image_id().and_then(|id| id.parse().ok()))
            .expect("moto preloads Amazon AMIs")
    }

    /// Created with the raw SDK (setup, not the seam), tagged like a production server.
    async fn customer_instance(&self, image: &ImageId) -> InstanceId {
        let out = self
            .ec2(&east())
            .await
            .run_instances()
            .image_id(image.as_str())
            .instance_type(ec2t::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(
                ec2t::TagSpecification::builder()
                    .resource_type(ec2t::ResourceType::Instance)
                    .tags(ec2t::Tag::builder().key("Name").value("customer-prod-db").build())
                    .build(),
            )
            .send()
            .await
            .expect("customer RunInstances");
        out.instances()[0].instance_id().expect("id").parse().expect("instance id")
    }

    async fn customer_key(&self, region: &Region) -> KmsKeyId {
        let kms = aws_sdk_kms::Client::new(&self.moto.sdk(region).await);
        let out = kms.create_key().description("customer key").send().await.expect("CreateKey");
        out.key_metadata().expect("metadata").arn().expect("arn").parse().expect("key arn")
    }

    /// By raw Describe calls (terminated instances and deleted endpoints, which AWS and moto keep
    /// listing a while, do not count).
    async fn leftovers(&self, region: &Region) -> Vec<String> {
        let ec2 = self.ec2(region).await;
        let prefixes = ec2t::Filter::builder()
            .name("tag:Name")
            .values(format!("{RESOURCE_NAME_PREFIX}*"))
            .values(format!("{SNAPSHOT_NAME_PREFIX}*"))
            .build();
        let mut left = Vec::new();
        let out = ec2.describe_instances().filters(prefixes.clone()).send().await.expect("instances");
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            if i.state().and_then(|s| s.name()) != Some(&ec2t::InstanceStateName::Terminated) {
                left.push(format!("instance {:?}", i.instance_id()));
            }
        }
        let out = ec2.describe_volumes().filters(prefixes.clone()).send().await.expect("volumes");
        left.extend(out.volumes().iter().map(|v| format!("volume {:?}", v.volume_id())));
        let out = ec2
            .describe_snapshots()
            .filters(prefixes.clone())
            .filters(ec2t::Filter::builder().name("owner-id").values(ACCOUNT).build())
            .send()
            .await
            .expect("snapshots");
        left.extend(out.snapshots().iter().map(|s| format!("snapshot {:?}", s.snapshot_id())));
        let out = ec2.describe_vpcs().filters(prefixes.clone()).send().await.expect("vpcs");
        left.extend(out.vpcs().iter().map(|v| format!("vpc {:?}", v.vpc_id())));
        let out = ec2.describe_subnets().filters(prefixes.clone()).send().await.expect("subnets");
        left.extend(out.subnets().iter().map(|s| format!("subnet {:?}", s.subnet_id())));
        let out = ec2.describe_security_groups().filters(prefixes.clone()).send().await.expect("sgs");
        left.extend(out.security_groups().iter().map(|g| format!("sg {:?}", g.group_id())));
        let out = ec2.describe_internet_gateways().filters(prefixes.clone()).send().await.expect("igws");
        left.extend(out.internet_gateways().iter().map(|g| format!("igw {:?}", g.internet_gateway_id())));
        let out = ec2.describe_vpc_endpoints().filters(prefixes).send().await.expect("endpoints");
        for e in out.vpc_endpoints() {
            // EC2 reports endpoint states in lower case (`deleted`) where the SDK's enum has
            // `Deleted`, so the value arrives as an unknown variant: compare the text.
            let state = e.state().map(|s| s.as_str().to_ascii_lowercase()).unwrap_or_default();
            if state != "deleted" && state != "deleting" {
                left.push(format!("vpce {:?} {:?}", e.vpc_endpoint_id(), e.state()));
            }
        }
        left
    }

    async fn snapshot_permissions(&self, region: &Region, snapshot: &SnapshotId) -> Vec<String> {
        let attr = self
            .ec2(region)
            .await
            .describe_snapshot_attribute()
            .snapshot_id(snapshot.as_str())
            .attribute(ec2t::SnapshotAttributeName::CreateVolumePermission)
            .send()
            .await
            .expect("DescribeSnapshotAttribute");
        attr.create_volume_permissions().iter().filter_map(|p| p.user_id()).map(str::to_owned).collect()
    }

    async fn grant_ebs_id(&self, region: &Region, key: &KmsKeyId) -> Option<String> {
        let kms = aws_sdk_kms::Client::new(&self.moto.sdk(region).await);
        let grants = kms.list_grants().key_id(key.as_str()).send().await.expect("raw ListGrants");
        let ctx = grants.grants().first()?.constraints()?.encryption_context_subset()?;
        ctx.get("aws:ebs:id").cloned()
    }

    async fn scanner_settings(&self, region: &Region, instance: &InstanceId) -> ScannerSettings {
        let raw = self.ec2(region).await;
        let described = raw.describe_instances().instance_ids(instance.as_str()).send().await.expect("raw DI");
        let ri = &described.reservations()[0].instances()[0];
        let attribute = |name| raw.describe_instance_attribute().instance_id(instance.as_str()).attribute(name).send();
        let shutdown =
            attribute(ec2t::InstanceAttributeName::InstanceInitiatedShutdownBehavior).await.expect("attribute");
        let user_data = attribute(ec2t::InstanceAttributeName::UserData).await.expect("attribute");
        ScannerSettings {
            imds_v2_required: ri.metadata_options().and_then(|m| m.http_tokens())
                == Some(&ec2t::HttpTokensState::Required),
            shutdown_behavior: shutdown
                .instance_initiated_shutdown_behavior()
                .and_then(|v| v.value())
                .unwrap_or_default()
                .to_owned(),
            user_data: user_data.user_data().and_then(|v| v.value()).map(str::to_owned),
            network_interfaces: ri.network_interfaces().len(),
        }
    }
}

#[tokio::test]
#[ignore = "needs moto from the venv (scripts/setup-test-env.sh)"]
async fn identity_and_discovery() {
    conformance::identity_and_discovery(&MotoFixture::start().await).await;
}

#[tokio::test]
#[ignore = "needs moto from the venv (scripts/setup-test-env.sh)"]
async fn error_kinds_from_moto_responses() {
    conformance::error_kinds(&MotoFixture::start().await).await;
}

/// One job: snapshot a customer's instance, share, copy cross-Region with a customer key, build the
/// network, launch a scanner from the snapshots, then tear everything down in dependency order.
#[tokio::test]
#[ignore = "needs moto from the venv (scripts/setup-test-env.sh)"]
async fn one_job_create_then_teardown_leaves_nothing() {
    conformance::one_job_create_then_teardown_leaves_nothing(&MotoFixture::start().await).await;
}

#[tokio::test]
#[ignore = "needs moto from the venv (scripts/setup-test-env.sh)"]
async fn copy_image_into_another_region() {
    conformance::copy_image_into_another_region(&MotoFixture::start().await).await;
}
