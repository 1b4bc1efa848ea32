//! What one log file's records mean for us, with no I/O: which instances to scan (the triggers
//! of [`crate::trail::triggers`] that pass the `[events]` selector), which records are our
//! principal's and must match a call of ours, and which calls by someone else touched our
//! resources. The ledger lookups it needs come in as a closure.
//!
//! # Whose record
//!
//! - **Ours**: `userIdentity` is our principal ([`Record::is_by`]) and the call came from a
//!   client, not from an AWS service acting for us. Each must match a call of ours (same event
//!   name, Region unless a global service, the ids its request names, time within the window) and
//!   carry our User-Agent mark (`app/agentless`); otherwise it is an `unrecognized-call` alert.
//! - **Service**: our principal, but `invokedBy` is set or the source is an AWS service host
//!   (`ec2.amazonaws.com` when EBS uses our KMS grants for a volume, for example): AWS acting on
//!   a call of ours. Counted, never alerted.
//! - **Foreign**: any other principal. A write (`readOnly` false) that names one of our resources
//!   (an id in the ledger, or a tag with our name prefixes) is a `foreign-call` alert. AWS
//!   services are not foreign (EC2 deleting a terminated scanner's volume is expected).

use std::collections::BTreeSet;

use crate::cloud::ids::{AccountId, Region};
use crate::cloud::tags::{JOB, NAME, RESOURCE_NAME_PREFIX, SNAPSHOT_NAME_PREFIX};
use crate::ledger::trail::{NewAlert, OurRecord, ScanRequest};
use crate::trail::record::Record;
use crate::trail::triggers::{TriggerKind, triggers};

/// The mark the SDK puts in our User-Agent (`app/<name>`, [`crate::cloud::aws::config::APP_NAME`]).
pub const USER_AGENT_MARK: &str = "app/agentless";

/// Global services: their records carry `us-east-1` (or the endpoint's Region) whatever Region
/// the client was configured with, so they match our calls in any Region.
const GLOBAL_SOURCES: [&str; 2] = ["iam.amazonaws.com", "sts.amazonaws.com"];

/// Event names of the pipeline's own reads: data events, never in a management trail.
const DATA_EVENTS: [&str; 3] = ["ReceiveMessage", "GetQueueUrl", "GetObject"];

/// Whose a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    Ours,
    Service,
    Foreign,
}

impl Whose {
    /// `ours`, `service`, `foreign` (metrics).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Whose::Ours => "ours",
            Whose::Service => "service",
            Whose::Foreign => "foreign",
        }
    }
}

/// What `[events]` asks: the coalescing delay, and the tags that pick and exclude instances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRules {
    pub delay_ms: i64,
    /// A `CreateTags` giving an instance one of these scans it (the instance must carry all of
    /// them when the scan starts).
    pub tags: std::collections::BTreeMap<String, String>,
    /// An instance shown with one of these is never scanned.
    pub exclude_tags: std::collections::BTreeMap<String, String>,
}

/// Who we are in one account.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub account: &'a AccountId,
    /// Our principal's ARN (`GetCallerIdentity`).
    pub principal: &'a str,
    /// The Regions the account is scanned in (events elsewhere scan nothing).
    pub regions: &'a [Region],
    /// `[events]`; `None`: no event scans.
    pub events: Option<&'a EventRules>,
    /// Whether to cross-check our principal's records.
    pub crosscheck: bool,
}

/// What a log file asks of us.
#[derive(Debug, Default)]
pub struct Findings {
    pub scans: Vec<ScanRequest>,
    pub ours: Vec<OurRecord>,
    pub alerts: Vec<NewAlert>,
    /// Records by whose.
    pub whose: Vec<(Whose, u64)>,
    /// Triggers by kind (before the selector).
    pub triggers: Vec<(TriggerKind, u64)>,
}

/// Whose `r` is, for `principal`.
#[must_use]
pub fn whose(r: &Record, principal: &str) -> Whose {
    let service = r.identity.invoked_by.is_some()
        || r.identity.kind.as_deref() == Some("AWSService")
        || r.source_ip.as_deref().is_some_and(|ip| ip.ends_with(".amazonaws.com"));
    match (r.is_by(principal), service) {
        (_, true) => Whose::Service,
        (true, false) => Whose::Ours,
        (false, false) => Whose::Foreign,
    }
}

fn is_our_tag(key: &str, value: &str) -> bool {
    key == JOB || (key == NAME && (value.starts_with(RESOURCE_NAME_PREFIX) || value.starts_with(SNAPSHOT_NAME_PREFIX)))
}

fn millis(r: &Record) -> i64 {
    r.event_time.as_millisecond()
}

fn alert(ctx: &Context<'_>, r: &Record, kind: &'static str, resources: Vec<String>, detail: String) -> NewAlert {
    NewAlert {
        event_id: r.event_id.clone(),
        account: ctx.account.clone(),
        kind,
        event_ms: millis(r),
        region: r.region.clone(),
        event_name: r.event_name.clone(),
        principal: r.identity.arn.clone(),
        source_ip: r.source_ip.clone(),
        user_agent: r.user_agent.clone(),
        resources,
        detail,
    }
}

/// Analyze `records`; `ours_among` answers which of the ids are our resources in a Region.
pub fn analyze<E>(
    ctx: &Context<'_>,
    records: &[Record],
    mut ours_among: impl FnMut(&str, &BTreeSet<String>) -> Result<BTreeSet<String>, E>,
) -> Result<Findings, E> {
    let mut out = Findings::default();
    let mut by_whose = [0u64; 3];
    let mut by_kind: std::collections::BTreeMap<TriggerKind, u64> = std::collections::BTreeMap::new();
    for r in records {
        let w = whose(r, ctx.principal);
        by_whose[w as usize] += 1;
        if w == Whose::Ours && ctx.crosscheck && !DATA_EVENTS.contains(&r.event_name.as_str()) {
            let marked = r.user_agent.as_deref().is_some_and(|ua| ua.contains(USER_AGENT_MARK));
            let ids: Vec<String> = r.request_ids().into_iter().collect();
            let detail = if marked {
                format!(
                    "{} by our principal from {} matches no call we sent (same name, Region, ids, within the window)",
                    r.event_name,
                    r.source_ip.as_deref().unwrap_or("an unknown address")
                )
            } else {
                format!(
                    "{} by our principal from {} with User-Agent {:?}, which lacks our mark {USER_AGENT_MARK}: not a call of ours",
                    r.event_name,
                    r.source_ip.as_deref().unwrap_or("an unknown address"),
                    r.user_agent.as_deref().unwrap_or("")
                )
            };
            let a = alert(ctx, r, "unrecognized-call", r.resource_ids().into_iter().collect(), detail);
            if marked {
                let global = GLOBAL_SOURCES.contains(&r.event_source.as_str());
                out.ours.push(OurRecord {
                    account: ctx.account.clone(),
                    region: (!global).then(|| r.region.clone()),
                    op: r.event_name.clone(),
                    event_ms: millis(r),
                    ids,
                    alert: a,
                });
            } else {
                out.alerts.push(a);
            }
        }
        if w == Whose::Foreign && r.read_only != Some(true) && r.error_code.is_none() {
            let ids = r.resource_ids();
            let mut touched: Vec<String> = ours_among(&r.region, &ids)?.into_iter().collect();
            let tagged_ours = r.tags().iter().any(|(k, v)| is_our_tag(k, v));
            if !touched.is_empty() || tagged_ours {
                if touched.is_empty() {
                    touched = ids.into_iter().collect();
                }
                let detail = format!(
                    "{} by {} from {} on our resources ({})",
                    r.event_name,
                    r.identity.arn.as_deref().unwrap_or("an unknown principal"),
                    r.source_ip.as_deref().unwrap_or("an unknown address"),
                    if tagged_ours { "carrying our tags" } else { "ids the ledger holds as ours" }
                );
                out.alerts.push(alert(ctx, r, "foreign-call", touched, detail));
            }
        }
        if w != Whose::Ours
            && let Some(selector) = ctx.events
        {
            let record_tags = r.tags();
            for t in triggers(r) {
                *by_kind.entry(t.kind).or_default() += 1;
                let Ok(region) = t.region.parse::<Region>() else { continue };
                if !ctx.regions.contains(&region) {
                    continue;
                }
                // Tags the record shows the instance with (a launch's tag specifications, the
                // tags a CreateTags sets); the selector's tags are checked on the instance itself
                // when the scan starts.
                if record_tags.iter().chain(&t.tags).any(|(k, v)| selector.exclude_tags.get(k) == Some(v)) {
                    continue;
                }
                // A CreateTags matters when it gives the instance a selector's tag; with no
                // selector tags, tags change nothing about what is scanned.
                if t.kind == TriggerKind::Tagged && !t.tags.iter().any(|(k, v)| selector.tags.get(k) == Some(v)) {
                    continue;
                }
                let event_ms = t.event_time.as_millisecond();
                out.scans.push(ScanRequest {
                    account: ctx.account.clone(),
                    region,
                    instance: t.instance,
                    event_ms,
                    due_ms: event_ms.saturating_add(selector.delay_ms),
                    reason: t.kind.as_str(),
                });
            }
        }
    }
    out.whose = [Whose::Ours, Whose::Service, Whose::Foreign].into_iter().map(|w| (w, by_whose[w as usize])).collect();
    out.triggers = by_kind.into_iter().collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    const US: &str = "arn:aws:iam::111122223333:user/agentless-scanner";

    fn record(event: &str, arn: &str, ua: &str, request: serde_json::Value, response: serde_json::Value) -> Record {
        let v = json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "111122223333"},
            "eventTime": "2026-12-07T10:00:00Z",
            "eventSource": "ec2.amazonaws.com",
            "eventName": event,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.10",
            "userAgent": ua,
            "requestParameters": request,
            "responseElements": response,
            "eventID": format!("id-{event}-{arn}"),
            "readOnly": false,
        });
        Record::from_value(&v).expect("a valid record")
    }

    fn run(records: &[Record], selector: &EventRules, ours: &[&str]) -> Findings {
        let account: AccountId = "111122223333".parse().expect("account");
        let regions = ["us-east-1".parse::<Region>().expect("region")];
        let ctx =
            Context { account: &account, principal: US, regions: &regions, events: Some(selector), crosscheck: true };
        let ours: BTreeSet<String> = ours.iter().map(|s| (*s).to_owned()).collect();
        analyze(&ctx, records, |_, ids: &BTreeSet<String>| {
            Ok::<_, std::convert::Infallible>(ids.intersection(&ours).cloned().collect())
        })
        .expect("infallible")
    }

    #[test]
    fn our_marked_calls_are_matched_unmarked_ones_alert_and_service_calls_pass() {
        let marked = record(
            "DeleteSnapshot",
            US,
            "aws-sdk-rust/1.3 os/linux lang/rust/1.95 app/agentless",
            json!({"snapshotId": "snap-0123456789abcdef0"}),
            json!(null),
        );
        let unmarked = record("DescribeInstances", US, "aws-cli/2.15.0 Python/3.11", json!({}), json!(null));
        let mut service = record("CreateGrant", US, "ec2.amazonaws.com", json!({}), json!(null));
        service.identity.invoked_by = Some("ec2.amazonaws.com".into());
        let f = run(&[marked, unmarked, service], &EventRules { delay_ms: 120_000, ..EventRules::default() }, &[]);
        assert_eq!(f.ours.len(), 1);
        assert_eq!(f.ours[0].op, "DeleteSnapshot");
        assert_eq!(f.ours[0].ids, vec!["snap-0123456789abcdef0".to_owned()]);
        assert_eq!(f.ours[0].region.as_deref(), Some("us-east-1"));
        assert_eq!(f.alerts.len(), 1);
        assert_eq!(f.alerts[0].kind, "unrecognized-call");
        assert_eq!(f.alerts[0].event_name, "DescribeInstances");
        assert!(f.alerts[0].detail.contains("aws-cli/2.15.0"), "{}", f.alerts[0].detail);
        assert_eq!(f.whose, vec![(Whose::Ours, 2), (Whose::Service, 1), (Whose::Foreign, 0)]);
        assert!(f.scans.is_empty());
    }

    #[test]
    fn another_principal_writing_on_our_resources_alerts() {
        let admin = "arn:aws:iam::111122223333:user/ops-admin";
        let share = record(
            "ModifySnapshotAttribute",
            admin,
            "aws-cli/2.15.0",
            json!({"snapshotId": "snap-0aaaaaaaaaaaaaaaa", "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}}),
            json!({"_return": true}),
        );
        let theirs = record(
            "DeleteSnapshot",
            admin,
            "aws-cli/2.15.0",
            json!({"snapshotId": "snap-0bbbbbbbbbbbbbbbb"}),
            json!(null),
        );
        let f = run(
            &[share, theirs],
            &EventRules { delay_ms: 120_000, ..EventRules::default() },
            &["snap-0aaaaaaaaaaaaaaaa"],
        );
        assert_eq!(f.alerts.len(), 1, "{:?}", f.alerts);
        let a = &f.alerts[0];
        assert_eq!((a.kind, a.event_name.as_str()), ("foreign-call", "ModifySnapshotAttribute"));
        assert_eq!(a.resources, vec!["snap-0aaaaaaaaaaaaaaaa".to_owned()]);
        assert_eq!(a.principal.as_deref(), Some(admin));
    }

    #[test]
    fn launches_scan_after_the_delay_and_the_selector_decides_tags_and_exclusions() {
        let admin = "arn:aws:iam::111122223333:user/ops-admin";
        let launch = |id: &str, tags: serde_json::Value| {
            record(
                "RunInstances",
                admin,
                "console.ec2.amazonaws.com",
                json!({"tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": tags}]}}),
                json!({"instancesSet": {"items": [{"instanceId": id}]}}),
            )
        };
        let tag = |id: &str, key: &str, value: &str| {
            record(
                "CreateTags",
                admin,
                "console.ec2.amazonaws.com",
                json!({"resourcesSet": {"items": [{"resourceId": id}]}, "tagSet": {"items": [{"key": key, "value": value}]}}),
                json!(null),
            )
        };
        let ours_launching = record(
            "RunInstances",
            US,
            "app/agentless",
            json!({}),
            json!({"instancesSet": {"items": [{"instanceId": "i-0ccccccccccccccc0"}]}}),
        );
        let selector = EventRules {
            delay_ms: 120_000,
            tags: BTreeMap::from([("scan".to_owned(), "yes".to_owned())]),
            exclude_tags: BTreeMap::from([("scan".to_owned(), "never".to_owned())]),
        };
        let f = run(
            &[
                launch("i-0aaaaaaaaaaaaaaa1", json!([{"key": "env", "value": "prod"}])),
                launch("i-0aaaaaaaaaaaaaaa2", json!([{"key": "scan", "value": "never"}])),
                tag("i-0aaaaaaaaaaaaaaa3", "scan", "yes"),
                tag("i-0aaaaaaaaaaaaaaa4", "owner", "alice"),
                ours_launching,
            ],
            &selector,
            &[],
        );
        let got: Vec<(&str, &str, i64)> =
            f.scans.iter().map(|s| (s.instance.as_str(), s.reason, s.due_ms - s.event_ms)).collect();
        assert_eq!(got, vec![("i-0aaaaaaaaaaaaaaa1", "launched", 120_000), ("i-0aaaaaaaaaaaaaaa3", "tagged", 120_000)]);
        assert_eq!(
            f.scans[0].event_ms,
            "2026-12-07T10:00:00Z".parse::<jiff::Timestamp>().expect("time").as_millisecond()
        );
        assert_eq!(f.triggers, vec![(TriggerKind::Launched, 2), (TriggerKind::Tagged, 2)]);
    }
}
