//! `Sharing`: makes each snapshot usable by the job's scanners. Scanners run in the job's own
//! account and Region, so a snapshot needs no copy and no `createVolumePermission`; for a
//! snapshot under a customer managed key the job grants its principal the key's use, constrained
//! to the volume (`aws:ebs:id` = the *source volume* id, which the snapshot of a
//! `CreateSnapshot(s)` carries; `policies/README.md`, "What EC2 asks of KMS for our volumes",
//! fact 5), named `alibaba-cloud-security-scan-<job>` and revoked at teardown. AWS does not
//! document that such a grant lets EC2 create the scanner volume, and by INFERENCE (c) it does
//! not: the key policy decides ("Gaps" 2). One grant per (key, volume); after a crash the grant
//! is found again by name, grantee and constraint ([`our_grant`]), never by name alone.
//!
//! Not built: the cross-Region / cross-account path (re-encrypting `CopySnapshot`,
//! `ModifySnapshotAttribute`), which only a hub-account layout needs; jobs here are per (account,
//! Region) with scanners beside their targets.

use super::JobError;
use super::runner::Job;
use crate::cloud::Cloud;
use crate::cloud::VolumeId;
use crate::cloud::ops::{CreateGrantInput, EbsId, GrantInfo, GrantOperation, ListGrantsInput};
use crate::cloud::tags;
use crate::ledger::{ResourceId, ResourceKind};

/// The operations of our grant: what `policies/README.md` ("What EC2 asks of KMS for our
/// volumes", fact 4) lists as needed to use a customer managed key for EBS, in KMS's grant
/// operation names. Whether a grant constrained to the source volume lets EC2 create a scanner
/// volume is not documented, and by INFERENCE (c) it does not ("Gaps" 2); the guard allows no
/// other operations in a grant of ours.
pub const GRANT_OPERATIONS: [GrantOperation; 5] = crate::cloud::guard::OUR_GRANT_OPERATIONS;

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
                Ok(other) => tracing::error!(id = %other, "grant create returned another kind of id"),
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

    /// Our grant named `name` on `key` for `volume`, by listing the key's grants (after a crash
    /// between `CreateGrant` and recording its id).
    async fn find_grant(
        &self,
        key: &crate::cloud::KmsKeyId,
        name: &str,
        volume: &crate::cloud::VolumeId,
    ) -> Result<Option<ResourceId>, crate::cloud::CloudError> {
        let mut input = ListGrantsInput { key: key.clone(), marker: None };
        loop {
            let page = self.r.guard.list_grants(&self.region, &input).await?;
            if let Some(g) = our_grant(&page.items, name, &self.r.caller_arn, volume) {
                return Ok(Some(ResourceId::KmsGrant { key: key.clone(), grant: g.grant_id.clone() }));
            }
            match page.next_token {
                Some(m) => input.marker = Some(m),
                None => return Ok(None),
            }
        }
    }
}

/// The grant of `grants` that is ours for `volume`: named `name` (one name per job), to
/// `grantee`, and constrained to `volume` (`aws:ebs:id`). Two volumes under one key get two
/// grants with the same name; only the constraint tells them apart.
#[must_use]
pub fn our_grant<'a>(grants: &'a [GrantInfo], name: &str, grantee: &str, volume: &VolumeId) -> Option<&'a GrantInfo> {
    grants.iter().find(|g| {
        g.name.as_deref() == Some(name)
            && g.grantee_principal == grantee
            && g.ebs_id.as_deref() == Some(volume.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str, volume: Option<&str>) -> GrantInfo {
        GrantInfo {
            grant_id: id.parse().expect("grant id"),
            name: Some("alibaba-cloud-security-scan-20260315-7k2q".into()),
            grantee_principal: "arn:aws:iam::111122223333:user/scanner".into(),
            operations: vec!["Decrypt".into()],
            ebs_id: volume.map(str::to_owned),
        }
    }

    #[test]
    fn the_grant_found_on_resume_is_the_volumes_own() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let grants = [grant(&a, Some("vol-0000000000000000a")), grant(&b, Some("vol-0000000000000000b"))];
        let name = "alibaba-cloud-security-scan-20260315-7k2q";
        let who = "arn:aws:iam::111122223333:user/scanner";
        let vol_b: VolumeId = "vol-0000000000000000b".parse().expect("volume");
        let found = our_grant(&grants, name, who, &vol_b).map(|g| g.grant_id.to_string());
        assert_eq!(found, Some(b.clone()), "volume b's grant, not the first with our name");
        let vol_c: VolumeId = "vol-0000000000000000c".parse().expect("volume");
        assert!(our_grant(&grants, name, who, &vol_c).is_none(), "no grant for a third volume");
        // An unconstrained grant with our name is not one the job made for a volume.
        let loose = [grant(&a, None)];
        let vol_a: VolumeId = "vol-0000000000000000a".parse().expect("volume");
        assert!(our_grant(&loose, name, who, &vol_a).is_none());
        assert!(our_grant(&grants, name, "arn:aws:iam::111122223333:role/other", &vol_b).is_none());
    }
}
