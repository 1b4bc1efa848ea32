//! `Launching`: scanners from the scanner AMI, each with up to
//! [`JobSettings::max_devices`](super::JobSettings) of the job's snapshots as gp3 data volumes
//! (`DeleteOnTermination`), IMDSv2 required, shutdown behaviour terminate, no ingress, and the job
//! manifest as user data (job, scanner name, collector URL, the job's HMAC key, device map).
//!
//! Each scanner has a deterministic `ClientToken` (`<job>-<scanner>`) written in its intent row
//! before the call, so a retried or resumed launch returns the same instance (EC2 API Reference,
//! "Ensuring idempotency"). The collector is told which devices each scanner scans *before* the
//! launch, so even a fast scanner's bundle is expected.

use base64::Engine as _;
use scanner_ami::job::{DeviceTarget, JOB_MANIFEST_VERSION, JobManifest};

use super::doc::ScannerDoc;
use super::runner::Job;
use super::{JobError, ScannerImage, ScannerImageError};
use crate::cloud::ops::{
    DescribeImagesInput, DescribeInput, Filter, InstanceState, RunScannerInput, ScannerRoot, ScannerVolume, Tagged,
};
use crate::cloud::retry::{Retry, retry};
use crate::cloud::tags::{self, Role};
use crate::cloud::{Cloud, ErrorKind, ImageId};
use crate::ledger::{ResourceId, ResourceKind, TargetStatus};

/// Data volume device names, in the order they are handed out: `/dev/sdf`-`/dev/sdz` first (the
/// range the EC2 User Guide recommends for EBS, "Device names on Linux instances"), then
/// `/dev/sdb`-`/dev/sde`, then `/dev/sdaa`... for configured limits above 25.
#[must_use]
pub fn device_name(n: usize) -> String {
    const FIRST: &[u8] = b"fghijklmnopqrstuvwxyzbcde";
    match FIRST.get(n) {
        Some(c) => format!("/dev/sd{}", char::from(*c)),
        None => {
            let k = n - FIRST.len();
            let a = char::from(b'a' + u8::try_from((k / 26) % 26).unwrap_or(0));
            let b = char::from(b'a' + u8::try_from(k % 26).unwrap_or(0));
            format!("/dev/sd{a}{b}")
        }
    }
}

impl<C: Cloud> Job<'_, C> {
    /// The device targets of a scanner, for the manifest and the collector.
    pub(super) fn device_targets(&self, s: &ScannerDoc) -> Vec<DeviceTarget> {
        s.devices
            .iter()
            .map(|(dev, instance, volume)| DeviceTarget {
                device_name: dev.clone(),
                instance_id: instance.to_string(),
                volume_id: volume.to_string(),
                snapshot_id: self
                    .doc
                    .targets()
                    .get(instance)
                    .and_then(|t| t.volumes.iter().find(|v| &v.volume == volume))
                    .and_then(|v| v.snapshot.as_ref())
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            })
            .collect()
    }

    fn ierr(&self, source: ScannerImageError) -> JobError {
        JobError::Image { job: self.id.clone(), source: Box::new(source) }
    }

    /// The scanner image and its root device name: pinned by id, or found by tag and name
    /// ([`ScannerImage`]); saved in the document so a resumed job boots the same one.
    async fn resolve_image(&mut self) -> Result<(ImageId, ScannerRoot), JobError> {
        if let (Some(i), Some(root)) = (&self.doc.image, &self.doc.image_root_device) {
            return Ok((i.clone(), ScannerRoot { device_name: root.clone(), size_gib: self.doc.image_root_size_gib }));
        }
        let region = self.region.clone();
        // A resumed job describes the image it chose before (an older document has no root device).
        let image = match (self.doc.image.clone(), self.r.settings.image.clone()) {
            (Some(id), _) | (None, ScannerImage::Id(id)) => self.describe_pinned_image(id).await?,
            (None, ScannerImage::ByRegion(pinned)) => match pinned.get(&region) {
                Some(id) => self.describe_pinned_image(id.clone()).await?,
                None => {
                    let pinned = pinned.iter().map(|(r, i)| format!("{r}={i}")).collect::<Vec<_>>().join(", ");
                    return Err(self.ierr(ScannerImageError::NotPinned { region, pinned }));
                }
            },
            (None, ScannerImage::Name(name)) => self.find_named_image(&name).await?,
            (None, ScannerImage::Version(version)) => self.find_tagged_image(&version).await?,
        };
        if image.state != "available" {
            return Err(self.ierr(ScannerImageError::Unusable {
                region,
                image: image.id,
                why: format!("its state is {}, not available", image.state),
            }));
        }
        let Some(root) = image.root_device_name.clone() else {
            return Err(self.ierr(ScannerImageError::Unusable {
                region,
                image: image.id,
                why: "DescribeImages gives it no root device name".into(),
            }));
        };
        self.doc.image = Some(image.id.clone());
        self.doc.image_root_device = Some(root.clone());
        self.doc.image_root_size_gib = image.root_size_gib;
        self.save()?;
        Ok((image.id, ScannerRoot { device_name: root, size_gib: image.root_size_gib }))
    }

    /// The image pinned by id (any owner: the user chose it).
    async fn describe_pinned_image(&self, id: ImageId) -> Result<crate::cloud::ops::ImageInfo, JobError> {
        let input = DescribeImagesInput { owners: Vec::new(), describe: DescribeInput::ids(vec![id.clone()]) };
        let page = retry(Retry::Transient, "DescribeImages", || self.r.guard.describe_images(&self.region, &input))
            .await
            .map_err(self.cerr("describing the scanner image"))?;
        page.items.into_iter().find(|i| i.id == id).ok_or_else(|| {
            self.ierr(ScannerImageError::Unusable {
                region: self.region.clone(),
                image: id,
                why: "not found (an AMI id belongs to one Region: pin one per Region)".into(),
            })
        })
    }

    /// Our image for `version`: owned by this account, tagged with it, named for it; exactly one.
    /// The self-owned image named exactly `name` ([`ScannerImage::Name`]).
    async fn find_named_image(&self, name: &str) -> Result<crate::cloud::ops::ImageInfo, JobError> {
        let input = DescribeImagesInput {
            owners: vec!["self".into()],
            describe: DescribeInput::filters(vec![Filter::new("name", [name])]),
        };
        let page = retry(Retry::Transient, "DescribeImages", || self.r.guard.describe_images(&self.region, &input))
            .await
            .map_err(self.cerr("finding the scanner image by name"))?;
        // The filter is exact on AWS (no wildcard in `name`); compared again so that a backend
        // that matched loosely cannot hand us another image.
        let mut named: Vec<_> = page.items.into_iter().filter(|i| i.name == name).collect();
        match named.len() {
            1 => Ok(named.remove(0)),
            0 => Err(self.ierr(ScannerImageError::NameNotFound {
                region: self.region.clone(),
                name: name.to_owned(),
                other: String::new(),
            })),
            count => Err(self.ierr(ScannerImageError::NameNotFound {
                region: self.region.clone(),
                name: name.to_owned(),
                other: format!(
                    " (exactly one expected, {count} match: {})",
                    named.iter().map(|i| i.id.to_string()).collect::<Vec<_>>().join(", ")
                ),
            })),
        }
    }

    async fn find_tagged_image(&self, version: &str) -> Result<crate::cloud::ops::ImageInfo, JobError> {
        let input = DescribeImagesInput {
            owners: vec!["self".into()],
            describe: DescribeInput::filters(vec![
                Filter::tag(tags::IMAGE_VERSION, [version]),
                Filter::new("state", ["available"]),
            ]),
        };
        let page = retry(Retry::Transient, "DescribeImages", || self.r.guard.describe_images(&self.region, &input))
            .await
            .map_err(self.cerr("finding the scanner image"))?;
        let (named, rejected): (Vec<_>, Vec<_>) =
            page.items.into_iter().partition(|i| tags::is_image_name(&i.name, version));
        let list = |v: &[crate::cloud::ops::ImageInfo]| {
            v.iter().map(|i| format!("{} ({})", i.id, i.name)).collect::<Vec<_>>().join(", ")
        };
        let mut named = named;
        match named.len() {
            1 => Ok(named.remove(0)),
            0 => Err(self.ierr(ScannerImageError::NotFound {
                region: self.region.clone(),
                version: version.to_owned(),
                tag: tags::IMAGE_VERSION,
                name: tags::image_name(version),
                rejected: if rejected.is_empty() {
                    String::new()
                } else {
                    format!(" (tagged, but not named so, hence not used: {})", list(&rejected))
                },
            })),
            count => Err(self.ierr(ScannerImageError::Ambiguous {
                region: self.region.clone(),
                version: version.to_owned(),
                tag: tags::IMAGE_VERSION,
                name: tags::image_name(version),
                count,
                candidates: list(&named),
            })),
        }
    }

    /// Group the volumes that are ready into scanners (once; the plan is saved). The volumes of one
    /// instance go to the same scanner, so that its agent sees them together (the root and the
    /// filesystems it mounts from the other volumes, an LVM volume group over several of them).
    fn plan_scanners(&mut self) {
        if !self.doc.scanners().is_empty() {
            return;
        }
        let ready: Vec<_> = self
            .doc
            .volumes()
            .filter(|(_, v)| v.in_play() && v.snapshot_ready && (!v.customer_key || v.grant.is_some()))
            .map(|(i, v)| (i.clone(), v.volume.clone()))
            .collect();
        let per = self.r.settings.max_devices.max(1);
        for (n, chunk) in pack_by_instance(&ready, per).into_iter().enumerate() {
            let name = format!("s{n}");
            let devices: Vec<_> =
                chunk.iter().enumerate().map(|(k, (i, v))| (device_name(k), i.clone(), v.clone())).collect();
            for (_, i, v) in &devices {
                if let Some(d) = self.doc.volume_mut(i, v) {
                    d.scanner = Some(name.clone());
                }
            }
            self.doc.push_scanner(ScannerDoc {
                client_token: format!("{}-{name}", self.id),
                name,
                devices,
                instance: None,
                launched_ms: None,
                deadline_unix: None,
                reported: false,
                error: None,
            });
        }
    }

    /// `Launching`.
    pub(super) async fn launch(&mut self) -> Result<(), JobError> {
        let (image, root_device) = self.resolve_image().await?;
        self.plan_scanners();
        self.save()?;
        let (Some(subnet), Some(sg)) = (self.doc.network.subnet.clone(), self.doc.network.security_group.clone())
        else {
            return Err(JobError::Setup {
                job: self.id.clone(),
                region: self.region.clone(),
                message: "the network is not complete (no subnet or security group)".into(),
            });
        };
        let tscanner = self.role_tags(Role::SCANNER);
        let deadline_unix = (self.now_ms() / 1000)
            .saturating_add(i64::try_from(self.r.settings.scan_timeout.as_secs()).unwrap_or(i64::MAX / 2));
        for idx in 0..self.doc.scanners().len() {
            if self.cancelled() {
                return Ok(());
            }
            let s = self.doc.scanners()[idx].clone();
            if s.instance.is_some() || s.error.is_some() {
                continue;
            }
            if !self.wait_for_scanner_budget(&s.name).await {
                return Ok(());
            }
            let deadline_unix = match s.deadline_unix {
                Some(d) => d,
                None => {
                    if let Some(sd) = self.doc.scanner_mut(idx) {
                        sd.deadline_unix = Some(deadline_unix);
                    }
                    self.save()?;
                    deadline_unix
                }
            };
            let devices = self.device_targets(&s);
            self.r.collector.register_scanner(self.id.as_str(), &s.name, devices.clone());
            let manifest = JobManifest {
                version: JOB_MANIFEST_VERSION,
                job: self.id.to_string(),
                scanner: s.name.clone(),
                collector_url: self.doc.collector_url.clone(),
                // Pinned only for TLS: the manifest refuses a pin with a plain http:// URL.
                collector_cert_sha256: if self.doc.collector_url.starts_with("https://") {
                    self.r.settings.collector_cert_sha256.clone()
                } else {
                    None
                },
                // This scanner's own key, never the job's (the collector derives the same one).
                hmac_key: self.key.for_scanner(self.id.as_str(), &s.name),
                baseline: self.doc.baseline,
                deadline_unix,
                devices,
            };
            let user_data = match manifest.check().and_then(|()| manifest.to_json()) {
                Ok(j) => base64::engine::general_purpose::STANDARD.encode(j),
                Err(e) => {
                    self.scanner_failed(idx, &format!("cannot build its job manifest: {e}"));
                    self.save()?;
                    continue;
                }
            };
            let volumes: Vec<ScannerVolume> = s
                .devices
                .iter()
                .filter_map(|(dev, i, v)| {
                    let d = self.doc.targets().get(i)?.volumes.iter().find(|x| &x.volume == v)?;
                    Some(ScannerVolume {
                        device_name: dev.clone(),
                        snapshot: Tagged::new(d.snapshot.clone()?, d.snapshot_tags.clone().unwrap_or_default()),
                        kms_key: if d.customer_key { d.kms_key.clone() } else { None },
                    })
                })
                .collect();
            let input = RunScannerInput {
                image: Tagged::new(image.clone(), crate::cloud::Tags::new()),
                root: Some(root_device.clone()),
                instance_type: self.r.settings.instance_type.clone(),
                subnet: Tagged::new(subnet.clone(), self.role_tags(Role::SUBNET)),
                security_groups: vec![Tagged::new(sg.clone(), self.role_tags(Role::SECURITY_GROUP))],
                volumes,
                user_data_base64: user_data,
                client_token: s.client_token.clone(),
                instance_tags: tscanner.clone(),
                volume_tags: tscanner.clone(),
                network_interface_tags: tscanner.clone(),
            };
            // The Name of every scanner is the same; the row is told apart by its token.
            let mut row_tags = tscanner.clone();
            let _ = row_tags
                .insert(tags::NAME, format!("{}-{}", tags::resource_name(&self.id, Some(Role::SCANNER)), s.name));
            let g = &self.r.guard;
            let region = self.region.clone();
            let got = self
                .tracked(
                    ResourceKind::Instance,
                    &row_tags,
                    Some(&s.client_token),
                    || async { Ok(ResourceId::Instance(g.run_scanner(&region, &input).await?.instance_id)) },
                    || async { Ok(None) },
                )
                .await?;
            match got {
                Ok(ResourceId::Instance(id)) => {
                    tracing::info!(scanner = %s.name, instance = %id, devices = s.devices.len(), "scanner launched");
                    let now = self.now_ms();
                    // Its identity document must name this instance, our account and the Region.
                    self.r.collector.scanner_launched(self.id.as_str(), &s.name, self.expected_identity(&id));
                    if let Some(sd) = self.doc.scanner_mut(idx) {
                        sd.instance = Some(id);
                        sd.launched_ms = Some(now);
                    }
                    for (_, i, _) in &s.devices {
                        self.set_target(i, TargetStatus::Scanning, None);
                    }
                }
                Ok(other) => tracing::error!(id = %other, "RunInstances returned another kind of id"),
                Err(e) => {
                    let quota = e.kind() == ErrorKind::QuotaExceeded;
                    self.scanner_failed(
                        idx,
                        &format!("RunInstances failed{}: {e}", if quota { " (quota)" } else { "" }),
                    );
                }
            }
            self.save()?;
            self.r.progress.step(&self.id, "scanners launched", idx + 1, self.doc.scanners().len());
        }
        Ok(())
    }

    /// Wait until the dispatcher grants the vCPUs of scanner `name` ([`super::budget`]); meanwhile
    /// tell it which of the job's launched scanners still hold theirs (a scanner powers itself off
    /// after its upload). `false`: cancelled while waiting.
    async fn wait_for_scanner_budget(&self, name: &str) -> bool {
        let Some(b) = self.r.budget.clone() else { return true };
        let (account, instance_type) = (&self.r.account, &self.r.settings.instance_type);
        while !b.take_scanner(&self.id, account, &self.region, name, instance_type) {
            let launched: Vec<(String, crate::cloud::InstanceId)> =
                self.doc.scanners().iter().filter_map(|s| s.instance.clone().map(|i| (s.name.clone(), i))).collect();
            if !launched.is_empty() {
                let input = DescribeInput::ids(launched.iter().map(|(_, i)| i.clone()).collect());
                let described = retry(Retry::Transient, "DescribeInstances", || {
                    self.r.guard.describe_instances(&self.region, &input)
                })
                .await;
                match described {
                    Ok(page) => {
                        // Not described (yet: eventual consistency) counts as alive.
                        let gone = |id: &crate::cloud::InstanceId| {
                            page.items.iter().any(|i| {
                                &i.id == id
                                    && matches!(
                                        i.state,
                                        InstanceState::ShuttingDown
                                            | InstanceState::Terminated
                                            | InstanceState::Stopped
                                    )
                            })
                        };
                        let alive: Vec<String> =
                            launched.iter().filter(|(_, id)| !gone(id)).map(|(n, _)| n.clone()).collect();
                        b.scanners_alive(&self.id, account, &self.region, &alive);
                    }
                    Err(e) => tracing::info!(error = %e, "cannot check on the scanners; waiting"),
                }
            }
            if self.sleep(self.r.settings.poll).await {
                return false;
            }
        }
        true
    }

    /// A scanner produced nothing: its volumes fail with `why`.
    /// Why a scanner that shut down early may have: when it carried volumes under customer managed
    /// keys, KMS may have refused a request EC2 made with our credentials for them, which ends the
    /// launch (`policies/README.md`, "What EC2 asks of KMS for our volumes", INFERENCE (e)); the
    /// keys, and what their key policy must allow. Empty otherwise.
    pub(super) fn customer_key_hint(&self, idx: usize) -> String {
        let Some(s) = self.doc.scanners().get(idx) else { return String::new() };
        let mut keys: Vec<String> = s
            .devices
            .iter()
            .filter_map(|(_, i, v)| self.doc.targets().get(i)?.volumes.iter().find(|d| &d.volume == v))
            .filter(|d| d.customer_key)
            .filter_map(|d| d.kms_key.as_ref().map(ToString::to_string))
            .collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return String::new();
        }
        format!(
            "; it carried volumes under customer managed key(s) {}: unless their key policy names {} as a key user, \
             KMS refuses the kms:GenerateDataKeyWithoutPlaintext EC2 sends for us (the custom policy lacks it) and \
             the launch ends (policies/README.md, \"Gaps\" 2)",
            keys.join(", "),
            self.r.caller_arn
        )
    }

    pub(super) fn scanner_failed(&mut self, idx: usize, why: &str) {
        let Some(s) = self.doc.scanner_mut(idx) else { return };
        tracing::warn!(scanner = %s.name, reason = why, "scanner failed");
        s.error = Some(why.to_owned());
        let devices = s.devices.clone();
        for (_, i, v) in devices {
            if let Some(d) = self.doc.volume_mut(&i, &v)
                && !d.scanned
            {
                d.error = Some(why.to_owned());
            }
        }
    }
}

/// Split `ready` (each volume with its instance, one instance's volumes next to each other) into
/// scanners of at most `per` devices, never splitting an instance unless it alone has more
/// volumes than a scanner holds (then its volumes fill scanners of their own).
fn pack_by_instance<I: PartialEq, V>(ready: &[(I, V)], per: usize) -> Vec<&[(I, V)]> {
    let per = per.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < ready.len() {
        // The run of volumes of the instance at `i`.
        let mut end = i + 1;
        while end < ready.len() && ready.get(end).map(|r| &r.0) == ready.get(i).map(|r| &r.0) {
            end += 1;
        }
        let run = end - i;
        if run > per {
            if i > start {
                out.extend(ready.get(start..i));
            }
            let mut k = i;
            while k < end {
                let stop = (k + per).min(end);
                out.extend(ready.get(k..stop));
                k = stop;
            }
            start = end;
        } else if end - start > per {
            out.extend(ready.get(start..i));
            start = i;
        }
        i = end;
    }
    if start < ready.len() {
        out.extend(ready.get(start..));
    }
    out
}

#[cfg(test)]
mod pack_tests {
    use super::pack_by_instance;

    fn sizes(ready: &[(&str, u32)], per: usize) -> Vec<Vec<String>> {
        pack_by_instance(ready, per).iter().map(|c| c.iter().map(|(i, v)| format!("{i}{v}")).collect()).collect()
    }

    #[test]
    fn an_instance_stays_on_one_scanner() {
        let ready = [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("b", 3), ("c", 1)];
        assert_eq!(sizes(&ready, 4), [vec!["a1", "a2"], vec!["b1", "b2", "b3", "c1"]]);
        assert_eq!(sizes(&ready, 6), [vec!["a1", "a2", "b1", "b2", "b3", "c1"]]);
        // An instance larger than a scanner fills scanners of its own.
        assert_eq!(sizes(&ready, 2), [vec!["a1", "a2"], vec!["b1", "b2"], vec!["b3"], vec!["c1"]]);
        assert_eq!(sizes(&[("a", 1), ("b", 1), ("b", 2), ("b", 3)], 2), [vec!["a1"], vec!["b1", "b2"], vec!["b3"]]);
        assert!(pack_by_instance::<&str, u32>(&[], 3).is_empty());
    }
}
