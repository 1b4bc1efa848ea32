//! `Sharing`: makes each snapshot usable by the job's scanners. Scanners run in the job's own
//! account and Region, so a snapshot needs no copy and no `createVolumePermission`; a snapshot
//! under a customer managed key needs a KMS grant for our principal, constrained to the volume
//! (`aws:ebs:id` = the *source volume* id, which the snapshot of a `CreateSnapshot(s)` carries;
//! DESIGN.md "Tags"), named `alibaba-cloud-security-scan-<job>` and revoked at teardown.
//!
//! Not built: the cross-Region / cross-account path (re-encrypting `CopySnapshot`,
//! `ModifySnapshotAttribute`), which only a hub-account layout needs; jobs here are per (account,
//! Region) with scanners beside their targets.

use super::JobError;
use super::runner::Job;
use crate::cloud::Cloud;
use crate::cloud::ops::{CreateGrantInput, EbsId, GrantOperation, ListGrantsInput};
use crate::cloud::tags;
use crate::ledger::{ResourceId, ResourceKind};

/// What EBS does with the key on our behalf to create a scanner volume from the snapshot (EBS
/// User Guide, "How EBS encryption works"; policies/README.md "Gaps").
pub const GRANT_OPERATIONS: [GrantOperation; 5] = [
    GrantOperation::Decrypt,
    GrantOperation::DescribeKey,
    GrantOperation::CreateGrant,
    GrantOperation::GenerateDataKeyWithoutPlaintext,
    GrantOperation::ReEncryptFrom,
];

impl<C: Cloud> Job<'_, C> {
    /// `Sharing`.
    pub(super) async fn share(&mut self) -> Result<(), JobError> {
        let wanted: Vec<_> = self
            .doc
            .volumes()
            .filter(|(_, v)| v.in_play() && v.snapshot_ready && v.customer_key && v.grant.is_none())
            .filter_map(|(i, v)| v.kms_key.clone().map(|k| (i.clone(), v.volume.clone(), k)))
            .collect();
        let name = tags::grant_name(&self.id);
        for (instance, volume, key) in wanted {
            if self.cancelled() {
                return Ok(());
            }
            let input = CreateGrantInput {
                key: key.clone(),
                grantee_principal: self.r.caller_arn.clone(),
                operations: GRANT_OPERATIONS.to_vec(),
                ebs_id: EbsId::Volume(volume.clone()),
                name: name.clone(),
            };
            // One grant row per (key, volume): the Name tag of the row carries both.
            let mut row_tags = crate::cloud::Tags::new();
            let _ = row_tags.insert(tags::NAME, format!("{name}/{}/{volume}", key.key_id()));
            let _ = row_tags.insert(tags::JOB, self.id.as_str());
            let got = self
                .tracked(
                    ResourceKind::KmsGrant,
                    &row_tags,
                    None,
                    || async {
                        let out = self.r.guard.create_grant(&self.region, &input).await?;
                        Ok(ResourceId::KmsGrant { key: key.clone(), grant: out.grant_id })
                    },
                    || self.find_grant(&key, &name, &volume),
                )
                .await?;
            match got {
                Ok(ResourceId::KmsGrant { grant: g, .. }) => {
                    if let Some(d) = self.doc.volume_mut(&instance, &volume) {
                        d.grant = Some(g);
                    }
                }
                Ok(other) => tracing::error!(job = %self.id, id = %other, "grant create returned another kind of id"),
                Err(e) => {
                    if let Some(d) = self.doc.volume_mut(&instance, &volume) {
                        d.error = Some(format!("KMS grant on {key} failed: {e}"));
                    }
                }
            }
            self.save()?;
        }
        Ok(())
    }

    /// Our grant named `name` on `key` for `volume`, by listing the key's grants.
    async fn find_grant(
        &self,
        key: &crate::cloud::KmsKeyId,
        name: &str,
        _volume: &crate::cloud::VolumeId,
    ) -> Result<Option<ResourceId>, crate::cloud::CloudError> {
        let mut input = ListGrantsInput { key: key.clone(), marker: None };
        loop {
            let page = self.r.guard.list_grants(&self.region, &input).await?;
            if let Some(g) =
                page.items.iter().find(|g| g.name.as_deref() == Some(name) && g.grantee_principal == self.r.caller_arn)
            {
                return Ok(Some(ResourceId::KmsGrant { key: key.clone(), grant: g.grant_id.clone() }));
            }
            match page.next_token {
                Some(m) => input.marker = Some(m),
                None => return Ok(None),
            }
        }
    }
}
