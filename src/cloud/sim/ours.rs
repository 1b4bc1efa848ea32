//! What the orchestrator asks of the simulated account outside the API, as methods of
//! [`SimCloud`]: register our scanner image in a Region, as building it with the image recipe
//! (`scanner-ami/image`) does in a real account ([`SimCloud::install_scanner_image`]), and count the
//! resources of ours still there ([`SimCloud::our_leftovers`], what `agentless scan` and `jobs`
//! report after a run).

use super::state::{Image, Life};
use super::{FleetError, SimCloud, SimError};
use crate::cloud::ids::{ImageId, Region};
use crate::cloud::tags::{self, Role, Tags};

impl SimCloud {
    /// Register our scanner image ([`tags::image_version`]) in each of `regions` of this account
    /// that does not have it: what building it with the image recipe (`scanner-ami/image`) does in
    /// a real account. Regions the account lacks are skipped.
    ///
    /// # Errors
    ///
    /// The version is not a valid tag value, an id cannot be made, or the state cannot be saved.
    pub fn install_scanner_image(&self, regions: &[Region]) -> Result<(), SimError> {
        let version = tags::image_version();
        let Some(role) = Role::new(&version) else {
            return Err(SimError::ImageVersion(version));
        };
        let account = self.account().clone();
        let image_tags = tags::image_tags(role);
        self.setup(|s| {
            let world = s.world();
            let Some(a) = world.accounts.get_mut(&account) else { return Ok(()) };
            for region in regions {
                let Some(r) = a.regions.get_mut(region) else { continue };
                let have = r.images.values().any(|i| i.tags.get(tags::IMAGE_VERSION) == Some(version.as_str()));
                if have {
                    continue;
                }
                let id: ImageId = world
                    .prng
                    .ec2_id("ami")
                    .parse()
                    .map_err(|source| FleetError::Id { key: "scanner image".into(), source })?;
                r.images.insert(
                    id,
                    Image {
                        // As register.sh names it: `<image_name>-<UTC stamp>`.
                        name: format!("{}-00000000-000000", tags::image_name(&version)),
                        description: "agentless scanner image (simulated: the hypervisor runs scanner-agent)".into(),
                        owner: account.clone(),
                        owner_alias: None,
                        architecture: "x86_64".into(),
                        root_device_name: "/dev/xvda".into(),
                        root_size_gib: 8,
                        // As a careless or hostile AMI would be: the job's root mapping must
                        // override it, or every scanner leaves its root volume behind, and the
                        // policy has no `ec2:DeleteVolume` to remove it.
                        root_delete_on_termination: false,
                        encrypted: false,
                        kms_key_id: None,
                        available_ms: 0,
                        tags: image_tags.clone(),
                    },
                );
            }
            Ok(())
        })
    }

    /// Resources of ours still in the simulated world, every account (instances not terminated;
    /// volumes, snapshots, network resources and grants not deleted): named with our prefixes
    /// (docs/tags.md), our scanner image excepted.
    #[must_use]
    pub fn our_leftovers(&self) -> usize {
        let ours = |t: &Tags| {
            t.name()
                .is_some_and(|n| n.starts_with(tags::RESOURCE_NAME_PREFIX) || n.starts_with(tags::SNAPSHOT_NAME_PREFIX))
                && t.get(tags::IMAGE_VERSION).is_none()
        };
        self.inspect(|w| {
            let mut n = 0;
            for a in w.accounts.values() {
                for r in a.regions.values() {
                    n += r
                        .instances
                        .values()
                        .filter(|i| ours(&i.tags) && !matches!(i.life, Life::Terminated { .. }))
                        .count();
                    n += r.volumes.values().filter(|v| ours(&v.tags)).count();
                    n += r.snapshots.values().filter(|s| ours(&s.tags)).count();
                    n += r.vpcs.values().filter(|v| ours(&v.tags)).count();
                    n += r.subnets.values().filter(|v| ours(&v.tags)).count();
                    n += r.internet_gateways.values().filter(|v| ours(&v.tags)).count();
                    n += r.security_groups.values().filter(|v| ours(&v.tags)).count();
                    n += r.vpc_endpoints.values().filter(|v| ours(&v.tags)).count();
                    n += r
                        .keys
                        .values()
                        .flat_map(|k| &k.grants)
                        .filter(|g| g.name.as_deref().is_some_and(|n| n.starts_with(tags::RESOURCE_NAME_PREFIX)))
                        .count();
                }
            }
            n
        })
    }
}
