//! The AWS backend over the wire against moto (`tests/moto`): the conformance suite
//! (`tests/conformance.rs`) with every operation of the `Cloud` trait through the guard with the
//! bundled policy (moto ignores IAM; our guard does not), the tags of every create read back by a
//! Describe, error kinds from moto's real error responses, and one job's create-then-teardown
//! sequence that leaves nothing with our Name prefixes behind. The customer's side and the checks
//! the seam does not offer go through the raw SDK.

use agentless::cloud::aws::AwsCloud;
use agentless::cloud::{AccountId, Guard, ImageId, InstanceId, KmsKeyId, Region, SnapshotId};
use aws_sdk_ec2::types as ec2t;

use crate::conformance::{self, Fixture, ScannerSettings, east};
use crate::moto::hypervisor::{amazon_image, leftovers};
use crate::moto::{ACCOUNT, CALLER_USER, Moto};
use crate::util::moto_customer_instance;

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
        amazon_image(&self.ec2(region).await).await
    }

    /// Created with the raw SDK (setup, not the seam), tagged like a production server.
    async fn customer_instance(&self, image: &ImageId) -> InstanceId {
        moto_customer_instance(&self.ec2(&east()).await, image).await
    }

    async fn customer_key(&self, region: &Region) -> KmsKeyId {
        let kms = aws_sdk_kms::Client::new(&self.moto.sdk(region).await);
        let out = kms.create_key().description("customer key").send().await.expect("CreateKey");
        out.key_metadata().expect("metadata").arn().expect("arn").parse().expect("key arn")
    }

    /// By raw Describe calls ([`leftovers`]: terminated instances and deleted endpoints, which AWS
    /// and moto keep listing a while, do not count).
    async fn leftovers(&self, region: &Region) -> Vec<String> {
        leftovers(&self.ec2(region).await).await
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
