//! Classification of what was listed: `active`, `leaked`, `foreign` or `stuck` (the rules and the
//! age estimate are in the module documentation of [`crate::audit`]), with the reason in words
//! and, for `stuck`, what a person must do — the exact AWS CLI command.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use super::ledger_view::{JobStatus, LedgerState};
use super::list::{Detail, Listed};
use super::{AuditOptions, Class, Found};
use crate::cloud::tags::{EXPIRES_AT, IMAGE_VERSION, JOB, RESOURCE_NAME_PREFIX, SNAPSHOT_NAME_PREFIX};
use crate::cloud::{JobId, Region};
use crate::ledger::{ResourceId, ResourceKind};

/// A classified resource and what deleting it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub found: Found,
    pub detail: Detail,
}

/// The `Name` prefix the policy wants on a kind before it may be deleted (`policies/README.md`,
/// "Why teardown is safe"): `SAS_Agentless` for snapshots, `alibaba-cloud-security-scan` for the
/// rest and for grant names.
#[must_use]
pub fn prefix_of(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Snapshot => SNAPSHOT_NAME_PREFIX,
        ResourceKind::Volume
        | ResourceKind::Instance
        | ResourceKind::Vpc
        | ResourceKind::Subnet
        | ResourceKind::InternetGateway
        | ResourceKind::RouteTable
        | ResourceKind::SecurityGroup
        | ResourceKind::VpcEndpoint
        | ResourceKind::NetworkInterface
        | ResourceKind::Image
        | ResourceKind::KmsGrant => RESOURCE_NAME_PREFIX,
    }
}

/// The AWS CLI command that removes `id` with credentials not bound by the custom policy.
#[must_use]
pub fn delete_command(region: &Region, id: &ResourceId, detail: &Detail) -> String {
    match id {
        ResourceId::Instance(i) => format!("aws ec2 terminate-instances --region {region} --instance-ids {i}"),
        ResourceId::Volume(v) => format!("aws ec2 delete-volume --region {region} --volume-id {v}"),
        ResourceId::Snapshot(s) => format!("aws ec2 delete-snapshot --region {region} --snapshot-id {s}"),
        ResourceId::Vpc(v) => format!("aws ec2 delete-vpc --region {region} --vpc-id {v}"),
        ResourceId::Subnet(s) => format!("aws ec2 delete-subnet --region {region} --subnet-id {s}"),
        ResourceId::InternetGateway(g) => {
            let mut cmd = String::new();
            if let Detail::InternetGateway { attached_vpcs } = detail {
                for vpc in attached_vpcs {
                    cmd.push_str(&format!(
                        "aws ec2 detach-internet-gateway --region {region} --internet-gateway-id {g} --vpc-id {vpc} && "
                    ));
                }
            }
            cmd.push_str(&format!("aws ec2 delete-internet-gateway --region {region} --internet-gateway-id {g}"));
            cmd
        }
        ResourceId::RouteTable(t) => format!("aws ec2 delete-route-table --region {region} --route-table-id {t}"),
        ResourceId::SecurityGroup(g) => format!("aws ec2 delete-security-group --region {region} --group-id {g}"),
        ResourceId::VpcEndpoint(e) => format!("aws ec2 delete-vpc-endpoints --region {region} --vpc-endpoint-ids {e}"),
        ResourceId::NetworkInterface(n) => {
            format!("aws ec2 delete-network-interface --region {region} --network-interface-id {n}")
        }
        ResourceId::Image(i) => format!("aws ec2 deregister-image --region {region} --image-id {i}"),
        ResourceId::KmsGrant { key, grant } => {
            format!("aws kms revoke-grant --region {region} --key-id {key} --grant-id {grant}")
        }
    }
}

/// `3h 12m`: a duration in words for reasons, rounded to the minute (seconds under a minute).
#[must_use]
pub fn human(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// What the classification looks at besides the resource.
struct Cx<'a> {
    ledger: &'a LedgerState,
    opts: &'a AuditOptions,
    /// The earliest `agentless:expires-at` seen on each job's resources (a grant has none of its own).
    job_expiry: HashMap<JobId, Timestamp>,
}

/// Classify everything listed. Resources that are neither named with our prefix nor tagged with
/// our job nor known to the ledger (none of the listing passes returns such a one) are dropped.
#[must_use]
pub fn classify_all(listed: Vec<Listed>, ledger: &LedgerState, opts: &AuditOptions) -> Vec<Item> {
    let mut job_expiry: HashMap<JobId, Timestamp> = HashMap::new();
    for l in &listed {
        if let (Some(job), Some(exp)) = (
            l.tags.get(JOB).and_then(|j| j.parse::<JobId>().ok()),
            l.tags.get(EXPIRES_AT).and_then(|e| e.parse::<Timestamp>().ok()),
        ) {
            let e = job_expiry.entry(job).or_insert(exp);
            *e = (*e).min(exp);
        }
    }
    let cx = Cx { ledger, opts, job_expiry };
    listed.into_iter().filter_map(|l| classify(l, &cx)).collect()
}

/// The job a grant's name names: `alibaba-cloud-security-scan-<job>`.
fn grant_job(name: Option<&str>) -> Option<JobId> {
    name?.strip_prefix(RESOURCE_NAME_PREFIX)?.strip_prefix('-')?.parse().ok()
}

fn classify(l: Listed, cx: &Cx<'_>) -> Option<Item> {
    let now = cx.opts.now;
    let prefix = prefix_of(l.kind);
    let is_grant = l.kind == ResourceKind::KmsGrant;
    let name = if is_grant { l.grant_name.clone() } else { l.tags.name().map(str::to_owned) };
    let name_ok = name.as_deref().is_some_and(|n| n.starts_with(prefix));
    let record = cx.ledger.resource(&l.region, &l.id);
    let tag_job = if is_grant { grant_job(name.as_deref()) } else { l.tags.get(JOB).and_then(|j| j.parse().ok()) };
    // The guard wants `agentless:job` on everything but grants (whose name is their only mark).
    let job_tag_missing = !is_grant && tag_job.is_none();
    let job = tag_job.or_else(|| record.map(|r| r.job.clone()));
    let raw_expiry = l.tags.get(EXPIRES_AT);
    let own_expiry = raw_expiry.and_then(|e| e.parse::<Timestamp>().ok());
    let expires_at = own_expiry.or_else(|| job.as_ref().and_then(|j| cx.job_expiry.get(j).copied()));
    let mut found = Found {
        kind: l.kind,
        region: l.region.clone(),
        id: l.id.clone(),
        name: name.clone(),
        tags: l.tags.clone(),
        job: job.clone(),
        job_state: None,
        expires_at,
        state: l.state.clone(),
        class: Class::Active,
        reason: String::new(),
        action_needed: None,
        deleted: false,
        error: None,
    };

    // The scanner image's snapshots are ours and kept on purpose (tags::image_tags).
    if let (Some(version), None) = (l.tags.get(IMAGE_VERSION), &job) {
        found.reason = format!(
            "backs the scanner image copy (agentless:image-version={version}), kept for later jobs: the policy has \
             no ec2:DeregisterImage"
        );
        return Some(Item { found, detail: l.detail });
    }

    let Some(job) = job else {
        if !name_ok {
            return None;
        }
        found.class = Class::Foreign;
        found.reason = if is_grant {
            "named with our prefix, but the rest of its name is not a job id and the ledger does not know it: not \
             created by agentless"
                .to_owned()
        } else {
            format!(
                "named with our prefix, but no {JOB} tag and unknown to the ledger: made by another tool using the same \
                 names (Alibaba Cloud Security Center) or by someone else; never deleted without --include-foreign"
            )
        };
        return Some(Item { found, detail: l.detail });
    };

    let status = cx.ledger.job_status(&job, cx.opts.job_is_alive.as_ref());
    found.job_state = match status {
        JobStatus::Alive(s) | JobStatus::Running(s) | JobStatus::Dead(s) | JobStatus::Finished(s) => Some(s),
        JobStatus::Unknown | JobStatus::NoLedger => None,
    };
    let expired = expires_at.is_some_and(|e| e <= now);
    let expiry_text = match (expires_at, own_expiry, raw_expiry) {
        (Some(e), Some(_), _) => format!("{EXPIRES_AT} {e}"),
        (Some(e), None, _) => format!("its job's {EXPIRES_AT} {e}"),
        (None, _, Some(raw)) => format!("an unreadable {EXPIRES_AT} \"{}\"", raw.chars().take(40).collect::<String>()),
        (None, _, None) => format!("no {EXPIRES_AT}"),
    };
    let (candidate, why) = match status {
        // Never delete from under a live job: it tears down what it made. Past its expiry it has
        // outlived its ttl (a Region of thousands of volumes at the pending-snapshot quota can).
        JobStatus::Alive(s) if expired => (
            false,
            format!(
                "job {job} is {s} and its process is alive, though past its {expiry_text} (a ttl shorter than the job)"
            ),
        ),
        JobStatus::Alive(s) => (false, format!("job {job} is {s} and its process is alive")),
        JobStatus::Running(s) if expired => {
            (true, format!("job {job} is still {s} in the ledger, but the resource is past its {expiry_text}"))
        }
        JobStatus::Running(s) => (false, format!("job {job} is {s} in the ledger")),
        JobStatus::Dead(s) => (true, format!("job {job} is {s} in the ledger, but its process is gone")),
        JobStatus::Finished(s) => (true, format!("job {job} is {s}")),
        JobStatus::Unknown => (true, format!("job {job} is unknown to the ledger")),
        JobStatus::NoLedger if expired => (true, format!("past its {expiry_text} (no ledger to ask)")),
        JobStatus::NoLedger if expires_at.is_none() => (true, format!("{expiry_text} and no ledger to ask")),
        JobStatus::NoLedger => (false, format!("no ledger to ask about job {job}, and not past its {expiry_text}")),
    };
    let created = cx.ledger.created_at(&l.region, &l.id, Some(&job));
    let age = match (created, expires_at) {
        (Some(c), _) => Some((now.duration_since(c), format!("created {} ago", human(now.duration_since(c))))),
        (None, Some(e)) if expired => {
            Some((now.duration_since(e), format!("expired {} ago", human(now.duration_since(e)))))
        }
        (None, _) => None,
    };
    let grace = cx.opts.grace;
    let (older, age_text) = match &age {
        Some((a, text)) => (*a >= grace, text.clone()),
        None if expires_at.is_none() => {
            (true, format!("age unknown (no ledger record, {expiry_text}): treated as older than the grace period"))
        }
        None => (false, format!("age unknown and not past its {expiry_text}")),
    };
    if candidate && older {
        found.class = Class::Leaked;
        found.reason = format!("{why}; {age_text}");
    } else if candidate {
        found.reason = format!("{why}; {age_text}: within the grace period of {}", human(grace));
    } else {
        found.reason = why;
    }

    // Deletable under the policy and the guard?
    let cmd = delete_command(&l.region, &l.id, &l.detail);
    if !name_ok {
        let shown = match &name {
            Some(n) => format!("its Name is \"{}\"", n.chars().take(80).collect::<String>()),
            None => "it has no Name tag".to_owned(),
        };
        found.reason = format!("{}; but {shown}, so the policy will not let us delete it", found.reason);
        found.class = Class::Stuck;
        found.action_needed = Some(if is_grant {
            format!("the policy revokes only grants named \"{prefix}...\", and a grant cannot be renamed: {cmd}")
        } else {
            format!(
                "the policy deletes a {} only when its Name starts with \"{prefix}\". Either tag it again — aws ec2 \
                 create-tags --region {} --resources {} --tags Key=Name,Value={prefix}-{job}{} — and run agentless \
                 audit --delete again, or remove it with other credentials: {cmd}",
                l.kind,
                l.region,
                l.id,
                if job_tag_missing { format!(" Key={JOB},Value={job}") } else { String::new() },
            )
        });
    } else if job_tag_missing && !cx.opts.include_foreign {
        found.reason = format!(
            "{}; ours per the ledger, but its {JOB} tag is gone, so the guard will not delete it",
            found.reason
        );
        found.class = Class::Stuck;
        found.action_needed = Some(format!(
            "the guard deletes only what carries {JOB}. Either tag it again — aws ec2 create-tags --region {} \
             --resources {} --tags Key={JOB},Value={job} — and run agentless audit --delete again, or run agentless \
             audit --delete --include-foreign, or remove it yourself: {cmd}",
            l.region, l.id
        ));
    } else if let (ResourceKind::Volume, Class::Leaked, Detail::Volume { attached_to }) =
        (l.kind, found.class, &l.detail)
    {
        if attached_to.is_empty() {
            found.class = Class::Stuck;
            found.action_needed = Some(format!(
                "the policy has no ec2:DeleteVolume: a scanner volume that outlived its instance must be deleted with \
                 other credentials: {cmd}"
            ));
        } else {
            let list: Vec<String> = attached_to.iter().map(ToString::to_string).collect();
            found.reason = format!("{}; goes with instance {} (DeleteOnTermination)", found.reason, list.join(", "));
        }
    }
    Some(Item { found, detail: l.detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ledger_view::LedgerView;
    use crate::cloud::Tags;
    use crate::cloud::tags::{NAME, Role, SnapshotSource, resource_tags, snapshot_tags};

    fn region() -> Region {
        "us-east-1".parse().expect("region")
    }

    fn snap(tags: Tags) -> Listed {
        Listed {
            kind: ResourceKind::Snapshot,
            region: region(),
            id: ResourceId::Snapshot("snap-0123456789abcdef0".parse().expect("id")),
            tags,
            grant_name: None,
            state: Some("error".into()),
            detail: Detail::Snapshot { kms_key: None },
        }
    }

    fn one(l: Listed, ledger: &LedgerState) -> Option<Found> {
        let opts = AuditOptions::new("2026-03-20T00:00:00Z".parse().expect("now"));
        classify_all(vec![l], ledger, &opts).pop().map(|i| i.found)
    }

    #[test]
    fn prefixes_kinds_and_marks() {
        let job: JobId = "j1".parse().expect("job");
        let old: Timestamp = "2026-03-16T12:00:00Z".parse().expect("ts");
        let empty = LedgerState::Loaded(LedgerView::default());
        let inst = "i-0123456789abcdef0".parse().expect("i");
        let vol = "vol-0123456789abcdef0".parse().expect("v");
        // Ours, job unknown to the ledger, expired days ago: leaked, in any snapshot state.
        let ours = snapshot_tags(&job, SnapshotSource::Volume { instance: &inst, volume: &vol }, old);
        let f = one(snap(ours.clone()), &empty).expect("found");
        assert_eq!(f.class, Class::Leaked, "{f:#?}");
        assert!(f.reason.contains("unknown to the ledger") && f.reason.contains("expired 3d"), "{}", f.reason);
        // The network prefix on a snapshot: the policy refuses to delete it.
        let wrong = resource_tags(&job, Some(Role::VPC), old);
        let f = one(snap(wrong), &empty).expect("found");
        assert_eq!(f.class, Class::Stuck);
        assert!(f.action_needed.as_deref().is_some_and(|a| a.contains("Value=SAS_Agentless-j1")), "{f:#?}");
        // The scanner image's snapshot: kept.
        let image = crate::cloud::tags::image_tags(Role::new("v1").expect("role"));
        assert_eq!(one(snap(image), &empty).expect("found").class, Class::Active);
        // Neither our name nor our tag: not ours, dropped.
        let theirs = Tags::new().with(NAME, "backup").expect("tag");
        assert!(one(snap(theirs), &empty).is_none());
        // A grant named with our prefix but no job id after it: foreign.
        let grant = Listed {
            kind: ResourceKind::KmsGrant,
            region: region(),
            id: ResourceId::KmsGrant {
                key: "1234abcd-12ab-34cd-56ef-1234567890ab".parse().expect("key"),
                grant: "a".repeat(64).parse().expect("grant"),
            },
            tags: Tags::new(),
            grant_name: Some("alibaba-cloud-security-scan-".into()),
            state: None,
            detail: Detail::Plain,
        };
        assert_eq!(one(grant, &empty).expect("found").class, Class::Foreign);
        // No ledger: an unexpired resource is kept, an expired one is a leak.
        let none = LedgerState::Unavailable("gone".into());
        let fresh = snapshot_tags(
            &job,
            SnapshotSource::Instance { instance: &inst },
            "2026-03-21T00:00:00Z".parse().expect("ts"),
        );
        assert_eq!(one(snap(fresh), &none).expect("found").class, Class::Active);
        assert_eq!(one(snap(ours), &none).expect("found").class, Class::Leaked);
        assert_eq!(human(SignedDuration::from_secs(90_061)), "1d 1h");
    }
}
