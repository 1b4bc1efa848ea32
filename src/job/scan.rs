//! `Scanning` and `Collecting`: wait for every launched scanner's bundle (the collector stores it
//! and wakes us), with a deadline per scanner; a scanner that terminates without reporting, or
//! misses its deadline, fails its targets, not the job. Then each target's outcome is recorded
//! from the stored results, and each scanned volume's inventory is matched against the data
//! directory's advisory database (`vulns.json` beside it, [`crate::vuln::assess`]): on a blocking
//! thread, with one matcher for the whole job so its caches serve every volume.

use std::collections::BTreeMap;

use scanner_ami::bundle::DeviceStatus;

use super::JobError;
use super::runner::Job;
use crate::cloud::ops::{DescribeInput, InstanceState};
use crate::cloud::retry::{Retry, retry};
use crate::cloud::{Cloud, ErrorKind, InstanceId};
use crate::ledger::TargetStatus;

/// A scanner seen terminated without a bundle gets this much longer (an upload racing its
/// shutdown) before its volumes fail: two polls at the default interval.
const TERMINATED_GRACE_MS: i64 = 10_000;

impl<C: Cloud> Job<'_, C> {
    /// Take in what the collector stored for scanner `idx`.
    fn absorb(&mut self, idx: usize) {
        let Some(s) = self.doc.scanners().get(idx).cloned() else { return };
        for (_, i, v) in &s.devices {
            let stored = self.r.collector.store().volume(self.id.as_str(), i.as_str(), v.as_str());
            let Some(d) = self.doc.volume_mut(i, v) else { continue };
            match stored.map(|st| (st.entry.status, st.entry.error)) {
                Some((DeviceStatus::Complete | DeviceStatus::Partial, _)) => d.scanned = true,
                Some((DeviceStatus::Failed | DeviceStatus::Missing, err)) => {
                    d.error =
                        Some(format!("scanner {}: {}", s.name, err.unwrap_or_else(|| "device not scanned".into())));
                }
                None => d.error = Some(format!("scanner {} reported nothing for this volume", s.name)),
            }
        }
        if let Some(sd) = self.doc.scanner_mut(idx) {
            sd.reported = true;
        }
        // Collected: the scanner's key signs nothing more.
        self.r.collector.forget_scanner(self.id.as_str(), &s.name);
    }

    /// Revoke a failed scanner's key at the collector: a late bundle is no longer taken.
    fn revoke_scanner(&self, idx: usize) {
        if let Some(s) = self.doc.scanners().get(idx) {
            self.r.collector.forget_scanner(self.id.as_str(), &s.name);
        }
    }

    /// `Scanning`.
    pub(super) async fn wait_for_bundles(&mut self) -> Result<(), JobError> {
        let timeout_ms = i64::try_from(self.r.settings.scan_timeout.as_millis()).unwrap_or(i64::MAX);
        let mut dead_since: BTreeMap<InstanceId, i64> = BTreeMap::new();
        loop {
            for idx in 0..self.doc.scanners().len() {
                let s = &self.doc.scanners()[idx];
                if !s.reported
                    && s.error.is_none()
                    && self.r.collector.store().scanner_reported(self.id.as_str(), &s.name)
                {
                    self.absorb(idx);
                }
            }
            let waiting: Vec<(usize, InstanceId, i64)> = self
                .doc
                .scanners()
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.reported && s.error.is_none())
                .filter_map(|(i, s)| s.instance.clone().map(|id| (i, id, s.launched_ms.unwrap_or(0))))
                .collect();
            let total = self.doc.scanners().len();
            self.r.progress.step(&self.id, "scanners reported", total - waiting.len(), total);
            self.save()?;
            if waiting.is_empty() || self.cancelled() {
                return Ok(());
            }
            let now = self.now_ms();
            // Scanners that are gone.
            let ids: Vec<InstanceId> = waiting.iter().map(|(_, id, _)| id.clone()).collect();
            let input = DescribeInput::ids(ids);
            let states = match retry(Retry::Transient, "DescribeInstances", || {
                self.r.guard.describe_instances(&self.region, &input)
            })
            .await
            {
                Ok(page) => page.items.into_iter().map(|i| (i.id, i.state)).collect::<BTreeMap<_, _>>(),
                // Not visible yet (eventual consistency) or already purged: decided by the deadline.
                Err(e) if e.kind() == ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(self.cerr("checking on the scanners")(e)),
            };
            for (idx, id, launched) in waiting {
                let gone = matches!(states.get(&id), Some(InstanceState::Terminated | InstanceState::ShuttingDown));
                if gone {
                    let since = *dead_since.entry(id.clone()).or_insert(now);
                    if now - since >= TERMINATED_GRACE_MS {
                        let hint = self.customer_key_hint(idx);
                        self.scanner_failed(
                            idx,
                            &format!("scanner {id} shut down without uploading its results{hint}"),
                        );
                        self.revoke_scanner(idx);
                    }
                } else if now - launched > timeout_ms {
                    self.scanner_failed(
                        idx,
                        &format!("scanner {id} did not report within {} s", self.r.settings.scan_timeout.as_secs()),
                    );
                    self.revoke_scanner(idx);
                }
            }
            let collector = self.r.collector.clone();
            let poll = self.r.settings.poll;
            tokio::select! {
                () = collector.arrived() => {}
                cancelled = self.sleep(poll) => if cancelled { return Ok(()) },
            }
        }
    }

    /// `Collecting`: each target's outcome from its volumes' results, then the vulnerability
    /// assessment of the scanned volumes.
    pub(super) async fn collect(&mut self) -> Result<(), JobError> {
        self.record_outcomes()?;
        self.assess_vulnerabilities().await;
        Ok(())
    }

    /// Match every scanned volume's inventory and write its `vulns.json`. Problems are logged:
    /// the scan's results stand without the assessment, and `agentless vulns rescan` redoes it.
    async fn assess_vulnerabilities(&self) {
        let store = self.r.collector.store();
        let dirs: Vec<std::path::PathBuf> = self
            .doc
            .targets()
            .iter()
            .flat_map(|(i, t)| t.volumes.iter().filter(|v| v.scanned).map(move |v| (i, v)))
            .filter_map(|(i, v)| store.volume_dir(self.id.as_str(), i.as_str(), v.volume.as_str()).ok())
            .collect();
        if dirs.is_empty() {
            return;
        }
        let total = dirs.len();
        let data_dir = store.data_dir().to_path_buf();
        let task = tokio::task::spawn_blocking(move || {
            crate::vuln::assess::Assessor::open(&data_dir).assess_dirs(&dirs, jiff::Timestamp::now())
        });
        match task.await {
            Ok(summary) => {
                for e in &summary.errors {
                    tracing::warn!(error = %e, "vulnerability assessment");
                }
                let (yes, no) = summary.assessed_and_not();
                tracing::info!(assessed = yes, not_assessed = no, "vulnerability assessment");
                self.r.progress.step(&self.id, "volumes matched against advisories", summary.assessed.len(), total);
            }
            Err(e) => tracing::error!(error = %e, "the vulnerability assessment task failed"),
        }
    }

    /// Each target's outcome from its volumes' results.
    fn record_outcomes(&mut self) -> Result<(), JobError> {
        let targets: Vec<InstanceId> = self.doc.targets().keys().cloned().collect();
        for instance in targets {
            let Some(t) = self.doc.targets().get(&instance) else { continue };
            if t.error.is_some() {
                continue;
            }
            let scanned = t.volumes.iter().filter(|v| v.scanned).count();
            let problems: Vec<String> = t
                .volumes
                .iter()
                .filter(|v| !v.scanned)
                .map(|v| {
                    format!(
                        "{}: {}",
                        v.volume,
                        v.error.as_deref().or(v.unscannable.as_deref()).unwrap_or("not scanned")
                    )
                })
                .collect();
            let why = problems.join("; ");
            if scanned > 0 {
                self.set_target(&instance, TargetStatus::Scanned, (!problems.is_empty()).then_some(why.as_str()));
            } else {
                self.set_target(&instance, TargetStatus::Failed, Some(&why));
                if let Some(t) = self.doc.target_mut(&instance) {
                    t.error = Some(why);
                }
            }
        }
        self.save()
    }
}
