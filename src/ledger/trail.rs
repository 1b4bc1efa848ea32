//! What the CloudTrail pipeline leaves in the ledger (schema version 5): the log objects read
//! (each processed once, however often its notification is delivered), the instances events asked
//! to scan (coalesced per instance until due), the calls our principal sent (for the cross-check)
//! and the alerts the cross-check raised. Processing an object is one transaction: its row, its
//! event scans, its matches and its alerts land together or not at all, so a crash in between
//! re-reads the object on its next delivery and raises nothing twice.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};

use super::error::{Result, SqlContext};
use super::{Ledger, timestamp};
use crate::cloud::ids::{AccountId, InstanceId, Region};

/// One log object of the trail bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    pub bucket: String,
    pub key: String,
    /// The ETag of the notification (empty when it had none): a rewritten object is new.
    pub etag: String,
}

/// An instance an event asks to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    pub account: AccountId,
    pub region: Region,
    pub instance: InstanceId,
    /// The event's time (CloudTrail `eventTime`), ms.
    pub event_ms: i64,
    /// When it may start: the event time plus the coalescing delay (or later), ms.
    pub due_ms: i64,
    /// Why (`launched`, `started`, ...).
    pub reason: &'static str,
}

/// A pending event scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingScan {
    pub account: AccountId,
    pub region: Region,
    pub instance: InstanceId,
    /// The first event's time, ms (the lag is measured from it).
    pub first_event_ms: i64,
    pub due_ms: i64,
    /// How many events were coalesced into it.
    pub events: u64,
    /// The distinct reasons, comma-separated.
    pub reasons: String,
}

/// A CloudTrail record of our principal, to match against [`Ledger::record_our_call`]'s rows.
#[derive(Debug, Clone, PartialEq)]
pub struct OurRecord {
    pub account: AccountId,
    /// `None` for a global service's record (IAM, STS), matched in any Region.
    pub region: Option<String>,
    pub op: String,
    pub event_ms: i64,
    /// Ids its request parameters name: a matching call names them all.
    pub ids: Vec<String>,
    /// Raised when no call matches.
    pub alert: NewAlert,
}

/// An alert to raise (once per CloudTrail event id).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub event_id: String,
    pub account: AccountId,
    /// `unrecognized-call` (our principal, not our call) or `foreign-call` (another principal on
    /// our resources).
    pub kind: &'static str,
    pub event_ms: i64,
    pub region: String,
    pub event_name: String,
    pub principal: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub resources: Vec<String>,
    pub detail: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRecord {
    pub id: i64,
    pub event_id: String,
    pub account: String,
    pub kind: String,
    /// RFC 3339.
    pub raised_at: String,
    /// CloudTrail's `eventTime`, RFC 3339.
    pub event_time: String,
    pub region: String,
    pub event_name: String,
    pub principal: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub resources: Vec<String>,
    pub detail: String,
}

/// What reading one object gave, for [`Ledger::trail_processed`].
#[derive(Debug, Clone, Copy)]
pub struct ObjectRead<'a> {
    /// `read`, or `refused: <why>`.
    pub outcome: &'a str,
    pub records: u64,
    pub scans: &'a [ScanRequest],
    /// Records of our principal, matched to our calls within `window_ms`.
    pub ours: &'a [OurRecord],
    /// Alerts on our resources.
    pub alerts: &'a [NewAlert],
    pub window_ms: i64,
}

impl ObjectRead<'_> {
    /// An object recorded without reading it.
    #[must_use]
    pub fn refused(outcome: &str) -> ObjectRead<'_> {
        ObjectRead { outcome, records: 0, scans: &[], ours: &[], alerts: &[], window_ms: 0 }
    }
}

/// What processing one object changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// Event scans added (an instance not yet pending).
    pub scans_added: u64,
    /// Events folded into a scan already pending.
    pub scans_coalesced: u64,
    /// Records of our principal matched to a call of ours.
    pub matched: u64,
    /// The CloudTrail event ids of the alerts raised (ones already raised are not again).
    pub raised: Vec<String>,
}

/// How an object's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Read it.
    New,
    /// Processed on an earlier delivery: skip it.
    Done,
}

fn ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

impl Ledger {
    /// Count one delivery of `obj`'s notification; whether it still has to be read.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn trail_delivery(&mut self, account: &AccountId, obj: &ObjectKey) -> Result<Delivery> {
        let now = self.now();
        let what = || format!("trail object s3://{}/{}", obj.bucket, obj.key);
        let tx = self.write(what)?;
        tx.execute(
            "INSERT INTO trail_objects (bucket, key, etag, account, first_seen_at, deliveries) VALUES (?1, ?2, ?3, ?4, ?5, 1)
             ON CONFLICT (bucket, key, etag) DO UPDATE SET deliveries = deliveries + 1",
            params![obj.bucket, obj.key, obj.etag, account.as_str(), now],
        )
        .context(what)?;
        let processed: Option<i64> = tx
            .query_row(
                "SELECT processed_at FROM trail_objects WHERE bucket = ?1 AND key = ?2 AND etag = ?3",
                params![obj.bucket, obj.key, obj.etag],
                |r| r.get(0),
            )
            .context(what)?;
        tx.commit().context(what)?;
        Ok(if processed.is_some() { Delivery::Done } else { Delivery::New })
    }

    /// Record `obj` processed (`outcome`: `read`, or why it was refused), with its event scans,
    /// its records of our principal (matched to our calls within `window_ms`, an alert for each
    /// that matches none) and the alerts on our resources, in one transaction.
    ///
    /// # Errors
    ///
    /// SQLite fails (nothing is recorded then).
    pub fn trail_processed(&mut self, obj: &ObjectKey, read: &ObjectRead<'_>) -> Result<Processed> {
        let ObjectRead { outcome, records, scans, ours, alerts, window_ms } = *read;
        let now = self.now();
        let what = || format!("trail object s3://{}/{}: recording it processed", obj.bucket, obj.key);
        let tx = self.write(what)?;
        let mut done = Processed::default();
        for s in scans {
            let existing: Option<(i64, String)> = tx
                .query_row(
                    "SELECT due_at, reasons FROM event_scans WHERE account = ?1 AND region = ?2 AND instance_id = ?3",
                    params![s.account.as_str(), s.region.as_str(), s.instance.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .context(what)?;
            match existing {
                Some((_, reasons)) => {
                    let mut set: BTreeSet<&str> = reasons.split(',').filter(|r| !r.is_empty()).collect();
                    set.insert(s.reason);
                    let reasons = set.into_iter().collect::<Vec<_>>().join(",");
                    tx.execute(
                        "UPDATE event_scans SET events = events + 1, reasons = ?4,
                             first_event_at = MIN(first_event_at, ?5)
                         WHERE account = ?1 AND region = ?2 AND instance_id = ?3",
                        params![s.account.as_str(), s.region.as_str(), s.instance.as_str(), reasons, s.event_ms],
                    )
                    .context(what)?;
                    done.scans_coalesced += 1;
                }
                None => {
                    tx.execute(
                        "INSERT INTO event_scans (account, region, instance_id, first_event_at, due_at, events, reasons)
                         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
                        params![
                            s.account.as_str(),
                            s.region.as_str(),
                            s.instance.as_str(),
                            s.event_ms,
                            s.due_ms,
                            s.reason
                        ],
                    )
                    .context(what)?;
                    done.scans_added += 1;
                }
            }
        }
        let insert_alert = |tx: &rusqlite::Transaction<'_>, a: &NewAlert| -> Result<bool> {
            let n = tx
                .execute(
                    "INSERT INTO trail_alerts (event_id, account, kind, raised_at, event_time, region, event_name,
                         principal, source_ip, user_agent, resources, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (event_id) DO NOTHING",
                    params![
                        a.event_id,
                        a.account.as_str(),
                        a.kind,
                        now,
                        a.event_ms,
                        a.region,
                        a.event_name,
                        a.principal,
                        a.source_ip,
                        a.user_agent,
                        ids_json(&a.resources),
                        a.detail
                    ],
                )
                .context(|| format!("raising the alert for CloudTrail event {}", a.event_id))?;
            Ok(n > 0)
        };
        for r in ours {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, ids, region FROM our_calls
                     WHERE account = ?1 AND op = ?2 AND at BETWEEN ?3 AND ?4
                     ORDER BY seen, ABS(at - ?5) LIMIT 64",
                )
                .context(what)?;
            let candidates: Vec<(i64, String, String)> = stmt
                .query_map(
                    params![
                        r.account.as_str(),
                        r.op,
                        r.event_ms.saturating_sub(window_ms),
                        r.event_ms.saturating_add(window_ms),
                        r.event_ms
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .context(what)?
                .collect::<std::result::Result<_, _>>()
                .context(what)?;
            drop(stmt);
            let hit = candidates.into_iter().find(|(_, ids, region)| {
                let named: BTreeSet<String> = serde_json::from_str(ids).unwrap_or_default();
                r.region.as_ref().is_none_or(|want| want == region) && r.ids.iter().all(|i| named.contains(i))
            });
            match hit {
                Some((id, _, _)) => {
                    tx.execute("UPDATE our_calls SET seen = seen + 1 WHERE id = ?1", params![id]).context(what)?;
                    done.matched += 1;
                }
                None => {
                    if insert_alert(&tx, &r.alert)? {
                        done.raised.push(r.alert.event_id.clone());
                    }
                }
            }
        }
        for a in alerts {
            if insert_alert(&tx, a)? {
                done.raised.push(a.event_id.clone());
            }
        }
        tx.execute(
            "UPDATE trail_objects SET processed_at = ?4, outcome = ?5, records = ?6
             WHERE bucket = ?1 AND key = ?2 AND etag = ?3",
            params![obj.bucket, obj.key, obj.etag, now, outcome, i64::try_from(records).unwrap_or(i64::MAX)],
        )
        .context(what)?;
        tx.commit().context(what)?;
        Ok(done)
    }

    /// Record a call our principal is about to send (the cross-check's side of the match).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn record_our_call(
        &mut self,
        account: &AccountId,
        region: &Region,
        op: &str,
        at_ms: i64,
        ids: &[String],
    ) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO our_calls (account, region, op, at, ids) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![account.as_str(), region.as_str(), op, at_ms, ids_json(ids)]))
            .map(|_| ())
            .context(|| format!("recording our {op} call in {region}"))
    }

    /// Our calls sent before `before_ms` that no CloudTrail record matched: counted (returned) and
    /// forgotten, with every matched call of that age.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn expire_our_calls(&mut self, before_ms: i64) -> Result<u64> {
        let what = || "expiring our recorded calls".to_owned();
        let tx = self.write(what)?;
        let unseen: i64 = tx
            .query_row("SELECT COUNT(*) FROM our_calls WHERE at < ?1 AND seen = 0", params![before_ms], |r| r.get(0))
            .context(what)?;
        tx.execute("DELETE FROM our_calls WHERE at < ?1", params![before_ms]).context(what)?;
        tx.commit().context(what)?;
        Ok(u64::try_from(unseen).unwrap_or(0))
    }

    /// Event scans due at `now_ms`, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// SQLite fails or a row is corrupt.
    pub fn due_event_scans(&self, now_ms: i64, limit: usize) -> Result<Vec<PendingScan>> {
        let what = || "reading the due event scans".to_owned();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT account, region, instance_id, first_event_at, due_at, events, reasons FROM event_scans
                 WHERE due_at <= ?1 ORDER BY due_at, account, region, instance_id LIMIT ?2",
            )
            .context(what)?;
        let rows: Vec<(String, String, String, i64, i64, i64, String)> = stmt
            .query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })
            .context(what)?
            .collect::<std::result::Result<_, _>>()
            .context(what)?;
        rows.into_iter()
            .map(|(account, region, instance, first, due, events, reasons)| {
                let row = format!("{account}/{region}/{instance}");
                Ok(PendingScan {
                    account: super::parse_column("event_scans", &row, "account", &account)?,
                    region: super::parse_column("event_scans", &row, "region", &region)?,
                    instance: super::parse_column("event_scans", &row, "instance_id", &instance)?,
                    first_event_ms: first,
                    due_ms: due,
                    events: u64::try_from(events).unwrap_or(0),
                    reasons,
                })
            })
            .collect()
    }

    /// The number of event scans waiting (due or not).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn pending_event_scans(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM event_scans", [], |r| r.get(0))
            .context(|| "counting event scans".to_owned())?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Remove event scans once their job exists (or they are dropped).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn take_event_scans(&mut self, account: &AccountId, region: &Region, instances: &[InstanceId]) -> Result<()> {
        let what = || format!("{account}/{region}: taking {} event scans", instances.len());
        let tx = self.write(what)?;
        for i in instances {
            tx.execute(
                "DELETE FROM event_scans WHERE account = ?1 AND region = ?2 AND instance_id = ?3",
                params![account.as_str(), region.as_str(), i.as_str()],
            )
            .context(what)?;
        }
        tx.commit().context(what)
    }

    /// Push a pending scan's due time back (the account's event budget is spent).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn defer_event_scan(
        &mut self,
        account: &AccountId,
        region: &Region,
        instance: &InstanceId,
        due_ms: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE event_scans SET due_at = ?4 WHERE account = ?1 AND region = ?2 AND instance_id = ?3",
                params![account.as_str(), region.as_str(), instance.as_str(), due_ms],
            )
            .map(|_| ())
            .context(|| format!("{account}/{region}: deferring the event scan of {instance}"))
    }

    /// Which of `ids` are resources the ledger recorded as ours in `region` (any state: a deleted
    /// snapshot's id is still ours).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn our_resource_ids(&self, region: &str, ids: &BTreeSet<String>) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM resources WHERE region = ?1 AND resource_id = ?2 LIMIT 1")
            .context(|| "looking up our resources".to_owned())?;
        for id in ids {
            let hit: Option<i64> = stmt
                .query_row(params![region, id], |r| r.get(0))
                .optional()
                .context(|| format!("looking up resource {id}"))?;
            if hit.is_some() {
                out.insert(id.clone());
            }
        }
        Ok(out)
    }

    /// The newest alerts first, at most `limit`.
    ///
    /// # Errors
    ///
    /// SQLite fails or a row is corrupt.
    pub fn trail_alerts(&self, limit: usize) -> Result<Vec<AlertRecord>> {
        let what = || "reading the alerts".to_owned();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, event_id, account, kind, raised_at, event_time, region, event_name, principal, source_ip,
                        user_agent, resources, detail
                 FROM trail_alerts ORDER BY id DESC LIMIT ?1",
            )
            .context(what)?;
        type Row = (
            i64,
            String,
            String,
            String,
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            String,
        );
        let rows: Vec<Row> = stmt
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                ))
            })
            .context(what)?
            .collect::<std::result::Result<_, _>>()
            .context(what)?;
        rows.into_iter()
            .map(|r| {
                let row = r.0.to_string();
                Ok(AlertRecord {
                    id: r.0,
                    event_id: r.1,
                    account: r.2,
                    kind: r.3,
                    raised_at: timestamp("trail_alerts", &row, "raised_at", r.4)?.to_string(),
                    event_time: timestamp("trail_alerts", &row, "event_time", r.5)?.to_string(),
                    region: r.6,
                    event_name: r.7,
                    principal: r.8,
                    source_ip: r.9,
                    user_agent: r.10,
                    resources: serde_json::from_str(&r.11).unwrap_or_default(),
                    detail: r.12,
                })
            })
            .collect()
    }

    /// Log objects recorded: (processed, deliveries in all).
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn trail_object_counts(&self) -> Result<(u64, u64)> {
        let (p, d): (i64, i64) = self
            .conn
            .query_row("SELECT COUNT(processed_at), COALESCE(SUM(deliveries), 0) FROM trail_objects", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .context(|| "counting trail objects".to_owned())?;
        Ok((u64::try_from(p).unwrap_or(0), u64::try_from(d).unwrap_or(0)))
    }

    /// Whether `obj` was processed, and its outcome.
    ///
    /// # Errors
    ///
    /// SQLite fails.
    pub fn trail_object_outcome(&self, obj: &ObjectKey) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT outcome FROM trail_objects WHERE bucket = ?1 AND key = ?2 AND etag = ?3",
                params![obj.bucket, obj.key, obj.etag],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .context(|| format!("reading trail object s3://{}/{}", obj.bucket, obj.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        "111122223333".parse().expect("account")
    }

    fn region() -> Region {
        "us-east-1".parse().expect("region")
    }

    fn object(key: &str) -> ObjectKey {
        ObjectKey { bucket: "trail".into(), key: key.into(), etag: "e1".into() }
    }

    fn alert(event_id: &str, kind: &'static str) -> NewAlert {
        NewAlert {
            event_id: event_id.into(),
            account: account(),
            kind,
            event_ms: 1_000_000,
            region: "us-east-1".into(),
            event_name: "DescribeInstances".into(),
            principal: Some("arn:aws:iam::111122223333:user/agentless-scanner".into()),
            source_ip: Some("203.0.113.66".into()),
            user_agent: Some("aws-cli/2".into()),
            resources: vec!["i-0123456789abcdef0".into()],
            detail: "not ours".into(),
        }
    }

    fn ours(op: &str, at: i64, ids: &[&str], event_id: &str) -> OurRecord {
        OurRecord {
            account: account(),
            region: Some("us-east-1".into()),
            op: op.into(),
            event_ms: at,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            alert: alert(event_id, "unrecognized-call"),
        }
    }

    fn read<'a>(ours: &'a [OurRecord], scans: &'a [ScanRequest], alerts: &'a [NewAlert]) -> ObjectRead<'a> {
        ObjectRead { outcome: "read", records: 3, scans, ours, alerts, window_ms: 300_000 }
    }

    #[test]
    fn an_object_is_processed_once_whatever_the_deliveries() {
        let mut l = Ledger::open_in_memory().expect("ledger");
        let o = object("AWSLogs/a.json.gz");
        assert_eq!(l.trail_delivery(&account(), &o).expect("delivery"), Delivery::New);
        // A crash before processing: the next delivery reads it again.
        assert_eq!(l.trail_delivery(&account(), &o).expect("delivery"), Delivery::New);
        l.trail_processed(&o, &read(&[], &[], &[])).expect("processed");
        for _ in 0..3 {
            assert_eq!(l.trail_delivery(&account(), &o).expect("delivery"), Delivery::Done);
        }
        assert_eq!(l.trail_object_counts().expect("counts"), (1, 5));
        assert_eq!(l.trail_object_outcome(&o).expect("outcome").as_deref(), Some("read"));
        let rewritten = ObjectKey { etag: "e2".into(), ..o };
        assert_eq!(l.trail_delivery(&account(), &rewritten).expect("delivery"), Delivery::New);
    }

    #[test]
    fn our_records_match_our_calls_by_name_ids_and_time_else_alert_once() {
        let mut l = Ledger::open_in_memory().expect("ledger");
        let snap = "snap-0123456789abcdef0";
        l.record_our_call(&account(), &region(), "DeleteSnapshot", 1_000_000, &[snap.to_owned()]).expect("call");
        l.record_our_call(&account(), &region(), "DescribeInstances", 1_000_000, &[]).expect("call");
        let records = [
            ours("DeleteSnapshot", 1_060_000, &[snap], "e-match"),
            // Same name, an id the call did not name.
            ours("DeleteSnapshot", 1_000_000, &["snap-0fffffffffffffff0"], "e-other-id"),
            // Outside the window.
            ours("DescribeInstances", 1_000_000 + 301_000, &[], "e-late"),
            // Another Region.
            OurRecord { region: Some("eu-west-1".into()), ..ours("DescribeInstances", 1_000_000, &[], "e-region") },
        ];
        let done = l.trail_processed(&object("k1"), &read(&records, &[], &[])).expect("processed");
        assert_eq!(done.matched, 1);
        assert_eq!(done.raised, vec!["e-other-id".to_owned(), "e-late".to_owned(), "e-region".to_owned()]);
        // Delivered again in another object: no alert twice.
        let again = l.trail_processed(&object("k2"), &read(&records[1..2], &[], &[])).expect("processed");
        assert!(again.raised.is_empty());
        let stored = l.trail_alerts(10).expect("alerts");
        assert_eq!(stored.len(), 3);
        assert_eq!(stored[0].event_id, "e-region");
        assert_eq!(stored[2].source_ip.as_deref(), Some("203.0.113.66"));
        assert_eq!(stored[2].resources, vec!["i-0123456789abcdef0".to_owned()]);
        // The DescribeInstances call was never matched: counted unseen once its time is past.
        assert_eq!(l.expire_our_calls(1_000_001).expect("expire"), 1);
        assert_eq!(l.expire_our_calls(2_000_000).expect("expire"), 0);
    }

    #[test]
    fn event_scans_coalesce_per_instance_and_come_due() {
        let mut l = Ledger::open_in_memory().expect("ledger");
        let i: InstanceId = "i-0aaaaaaaaaaaaaaa1".parse().expect("id");
        let scan = |at: i64, reason| ScanRequest {
            account: account(),
            region: region(),
            instance: i.clone(),
            event_ms: at,
            due_ms: at + 120_000,
            reason,
        };
        let scans = [scan(1_000, "launched"), scan(2_000, "volume_attached"), scan(500, "tagged")];
        let done = l.trail_processed(&object("k"), &read(&[], &scans, &[])).expect("processed");
        assert_eq!((done.scans_added, done.scans_coalesced), (1, 2));
        assert!(l.due_event_scans(120_999, 10).expect("due").is_empty());
        let due = l.due_event_scans(121_000, 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].events, due[0].first_event_ms), (3, 500));
        assert_eq!(due[0].reasons, "launched,tagged,volume_attached");
        l.defer_event_scan(&account(), &region(), &i, 500_000).expect("defer");
        assert!(l.due_event_scans(499_999, 10).expect("due").is_empty());
        l.take_event_scans(&account(), &region(), std::slice::from_ref(&i)).expect("take");
        assert_eq!(l.pending_event_scans().expect("pending"), 0);
    }
}
