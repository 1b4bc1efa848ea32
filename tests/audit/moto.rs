//! The auditor over the wire against moto (`tests/moto`): leaked resources made directly through
//! the guard (a snapshot, a grant, a VPC with subnet, attached gateway, security group and
//! endpoint, a scanner), a foreign VPC made with the raw SDK; the audit lists them with filtered
//! Describes, deletes the leaks, and a second audit finds none.

use std::time::Duration;

use agentless::audit::{self, AuditOptions, Class, EXIT_CLEAN, EXIT_LEAKS, RetryPolicy};
use agentless::cloud::Region;
use agentless::cloud::ops::Tagged;
use aws_sdk_ec2::types as ec2t;
use jiff::{SignedDuration, Timestamp};

use agentless::ledger::{JobState, Ledger};

use super::{Customer, assert_classes, drive, entry, job_id, leave_job_with};
use crate::conformance::east;
use crate::moto::Moto;
use crate::moto::hypervisor::{amazon_image, name_tag};
use crate::util::moto_customer_instance;

/// The customer's side, made with the raw SDK: an instance from an Amazon image, a key.
async fn customer(moto: &Moto, r: &Region) -> Customer {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk(r).await);
    let image = amazon_image(&ec2).await;
    let target = moto_customer_instance(&ec2, &image).await;
    let kms = aws_sdk_kms::Client::new(&moto.sdk(r).await);
    let key = kms.create_key().description("customer key").send().await.expect("key");
    let key = key.key_metadata().expect("metadata").arn().expect("arn").parse().expect("key arn");
    Customer { target, key, image: Tagged::new(image, agentless::cloud::Tags::new()) }
}

#[tokio::test]
#[ignore = "needs moto from the venv (scripts/setup-test-env.sh)"]
async fn leaked_resources_made_directly_are_found_and_removed() {
    let moto = Moto::start().await;
    let r = east();
    let g = moto.guard_with(&r, &[]).await;
    let who = customer(&moto, &r).await;
    // A job that failed and left everything behind (recorded in a ledger, so its grant's key is
    // known); audited with --grace 0.
    let mut ledger = Ledger::open_in_memory().expect("ledger");
    let expires = Timestamp::now() + SignedDuration::from_hours(2);
    let left = leave_job_with(&g, Some(&mut ledger), &job_id("moto-leak"), expires, &who).await;
    drive(&mut ledger, &left.job, JobState::Failed);
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk(&r).await);
    let foreign = ec2
        .create_vpc()
        .cidr_block("10.60.0.0/16")
        .tag_specifications(name_tag(ec2t::ResourceType::Vpc, "alibaba-cloud-security-scan-customer"))
        .send()
        .await
        .expect("foreign vpc");
    let foreign = foreign.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();

    // Quick retries: moto answers at once, and a refused call should fail the test fast.
    let retry =
        RetryPolicy { min_delay: Duration::from_millis(10), max_delay: Duration::from_millis(100), max_times: 3 };
    let dry = AuditOptions { grace: SignedDuration::ZERO, retry, ..AuditOptions::new(Timestamp::now()) };
    let report = audit::audit(&g, Some(&mut ledger), None, std::slice::from_ref(&r), &dry).await.expect("audit");
    assert!(!report.incomplete(), "{:?} {:?}", report.regions_skipped, report.listing_errors);
    let ids = left.ids();
    let mut want: Vec<(&str, Class)> = ids.iter().map(|id| (id.as_str(), Class::Leaked)).collect();
    want.push((foreign.as_str(), Class::Foreign));
    assert_classes(&report, &want);
    assert_eq!(report.exit_code(), EXIT_LEAKS);

    let delete = AuditOptions { delete: true, ..dry.clone() };
    let report =
        audit::audit(&g, Some(&mut ledger), None, std::slice::from_ref(&r), &delete).await.expect("audit --delete");
    for (id, class) in &want {
        let f = entry(&report, id);
        assert_eq!(f.deleted, *class == Class::Leaked, "{f:#?}");
    }
    assert_eq!(report.exit_code(), EXIT_CLEAN, "{:#?}", report.resources);

    // Gone, as moto sees it; the foreign VPC stays.
    assert!(ledger.live_resources(&left.job).expect("live").is_empty(), "every deletion recorded");
    let again = audit::audit(&g, Some(&mut ledger), None, std::slice::from_ref(&r), &dry).await.expect("audit again");
    assert_eq!(again.of_class(Class::Leaked).count(), 0, "{:#?}", again.resources);
    assert_eq!(again.resources.len(), 1);
    let vpcs = ec2.describe_vpcs().vpc_ids(left.vpc.as_str()).send().await;
    assert!(vpcs.is_err() || vpcs.is_ok_and(|o| o.vpcs().is_empty()), "the leaked VPC is gone");
    let snaps = ec2.describe_snapshots().snapshot_ids(left.snapshot.as_str()).send().await;
    assert!(snaps.is_err() || snaps.is_ok_and(|o| o.snapshots().is_empty()), "the leaked snapshot is gone");
}
