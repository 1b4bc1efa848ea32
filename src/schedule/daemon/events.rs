//! The daemon's side of the CloudTrail pipeline (docs/trail.md): one reader per account with
//! `[accounts.trail]`, the guard's call recorder for the cross-check, and the `[events]` loop that
//! starts the due event scans as runs of the reserved `events` schedule within each account's
//! hourly budget.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::Daemon;
use crate::cloud::Cloud;
use crate::cloud::ids::{AccountId, InstanceId, Region};
use crate::job::targets::TargetSelector;
use crate::ledger::RunKind;

/// How often due event scans are looked for (our choice: well under `[events]`'s delay).
pub const EVENT_TICK: Duration = Duration::from_secs(10);
/// The same on the simulated account, whose demo delays are seconds.
pub const EVENT_TICK_SIM: Duration = Duration::from_secs(1);
/// The shortest tick (our choice: a test's or demo's delay of a second or two).
pub const EVENT_TICK_MIN: Duration = Duration::from_millis(100);
/// Event scans started per tick at most (our choice; one run per account and Region).
pub const EVENT_BATCH: usize = 1000;

impl<C: Cloud + 'static> Daemon<C> {
    /// The CloudTrail pipeline of each account that has one (`[accounts.trail]`): the guard
    /// records our calls for the cross-check, a reader follows the queue, and with `[events]` the
    /// due event scans are started.
    pub(super) fn start_pipelines(self: &Arc<Self>) {
        let mut any = false;
        for p in self.pipelines() {
            any = true;
            let stop = self.stop_tx.subscribe();
            tokio::spawn(async move { p.run(stop).await });
        }
        if any && let Some(ev) = self.config.events.clone() {
            let me = Arc::clone(self);
            tokio::spawn(async move { me.event_scan_loop(ev).await });
        }
    }

    /// The pipeline reader of each account that has one, with the cross-check's recorder set on
    /// its guard (once: a second call finds it set).
    #[must_use]
    pub fn pipelines(&self) -> Vec<crate::events::reader::Pipeline<C>> {
        let mut out = Vec::new();
        for a in &self.accounts {
            let Some(trail) = self.config.account(&a.name).and_then(|c| c.trail.clone()) else { continue };
            if self.config.trail.crosscheck {
                a.guard.set_recorder(crate::events::recorder::recorder(
                    Arc::clone(&self.ledger),
                    a.id.clone(),
                    trail.region.clone(),
                    Arc::clone(&self.now_ms),
                ));
            }
            out.push(crate::events::reader::Pipeline {
                account_name: a.name.clone(),
                account: a.id.clone(),
                principal: a.caller_arn.clone(),
                regions: a.regions.clone(),
                guard: Arc::clone(&a.guard),
                trail,
                reader: self.config.trail.clone(),
                events: self.config.events.as_ref().map(|e| crate::events::analyze::EventRules {
                    delay_ms: i64::try_from(e.delay.as_millis()).unwrap_or(i64::MAX),
                    tags: e.targets.tags.clone(),
                    exclude_tags: e.targets.exclude_tags.clone(),
                }),
                ledger: Arc::clone(&self.ledger),
                metrics: Arc::clone(&self.metrics),
                now_ms: Arc::clone(&self.now_ms),
            });
        }
        out
    }

    async fn event_scan_loop(self: Arc<Self>, ev: crate::schedule::config::EventsConfig) {
        let mut stop = self.stop_tx.subscribe();
        // Half the delay, so a scan starts at most half a delay late; within the tick bounds.
        let tick = (ev.delay / 2).clamp(EVENT_TICK_MIN, if self.sim { EVENT_TICK_SIM } else { EVENT_TICK });
        loop {
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            self.start_due_event_scans(&ev).await;
        }
    }

    /// Start the event scans that are due: one run of the `events` schedule per (account,
    /// Region) with due instances, within each account's hourly budget (the rest wait, their due
    /// time moved to when the budget frees). Returns the instances started.
    pub async fn start_due_event_scans(self: &Arc<Self>, ev: &crate::schedule::config::EventsConfig) -> usize {
        if self.stopping.load(Ordering::SeqCst) {
            return 0;
        }
        let now = (self.now_ms)();
        let due = match self.ledger().due_event_scans(now, EVENT_BATCH) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the due event scans");
                return 0;
            }
        };
        let hour = 3_600_000_i64;
        let budget = ev.budget_per_hour as usize;
        let mut groups: BTreeMap<(AccountId, Region), Vec<crate::ledger::trail::PendingScan>> = BTreeMap::new();
        {
            let mut starts = self.event_starts.lock().unwrap_or_else(PoisonError::into_inner);
            for p in due {
                let window = starts.entry(p.account.clone()).or_default();
                while window.front().is_some_and(|t| *t <= now - hour) {
                    window.pop_front();
                }
                if window.len() >= budget {
                    let free_at = window.front().map_or(now, |t| t + hour).max(now + 1);
                    if let Err(e) = self.ledger().defer_event_scan(&p.account, &p.region, &p.instance, free_at) {
                        tracing::warn!(account = %p.account, instance = %p.instance, error = %e, "cannot defer an event scan");
                    }
                    self.metrics.record_trail(crate::api::metrics::TrailCounter::EventScans, "deferred_budget", 1);
                    continue;
                }
                window.push_back(now);
                groups.entry((p.account.clone(), p.region.clone())).or_default().push(p);
            }
        }
        let mut started = 0;
        for ((account, region), scans) in groups {
            let Some(a) = self.accounts.iter().find(|a| a.id == account) else {
                let ids: Vec<InstanceId> = scans.iter().map(|p| p.instance.clone()).collect();
                if let Err(e) = self.ledger().take_event_scans(&account, &region, &ids) {
                    tracing::warn!(%account, error = %e, "cannot drop event scans of an account no longer configured");
                }
                self.metrics.record_trail(crate::api::metrics::TrailCounter::EventScans, "dropped", ids.len() as u64);
                continue;
            };
            let name = a.name.clone();
            let ids: Vec<InstanceId> = scans.iter().map(|p| p.instance.clone()).collect();
            let mut due_at = (self.clock)();
            let run = loop {
                match self.ledger().create_run(crate::events::EVENTS, RunKind::OnDemand, due_at) {
                    Ok(Some(r)) => break Some(r),
                    Ok(None) => due_at = due_at.checked_add(jiff::SignedDuration::from_millis(1)).unwrap_or(due_at),
                    Err(e) => {
                        tracing::error!(account = %name, %region, error = %e, "cannot record an event run; the scans stay pending");
                        break None;
                    }
                }
            };
            let Some(run) = run else { continue };
            self.metrics.record_run(crate::events::EVENTS, RunKind::OnDemand.as_str());
            // The instances, running, with the selector's tags and none of its exclusions now.
            let targets = TargetSelector {
                instances: ids.clone(),
                tags: ev.targets.tags.clone(),
                exclude_tags: ev.targets.exclude_tags.clone(),
                ..TargetSelector::default()
            };
            let jobs = self
                .create_jobs(
                    run,
                    crate::events::EVENTS,
                    std::slice::from_ref(&name),
                    std::slice::from_ref(&region),
                    &targets,
                )
                .await;
            // Taken after the job exists: a crash in between scans the instance twice, never zero times.
            if let Err(e) = self.ledger().take_event_scans(&account, &region, &ids) {
                tracing::warn!(account = %name, %region, error = %e, "cannot clear started event scans; they may run again");
            }
            for p in &scans {
                self.metrics.record_event_lag(((now - p.first_event_ms).max(0)) as f64 / 1000.0);
            }
            self.metrics.record_trail(crate::api::metrics::TrailCounter::EventScans, "started", ids.len() as u64);
            tracing::info!(account = %name, %region, %run, jobs = jobs.len(), instances = ids.len(),
                reasons = ?scans.iter().map(|p| p.reasons.as_str()).collect::<Vec<_>>(), "event-driven scan");
            started += ids.len();
        }
        started
    }
}
