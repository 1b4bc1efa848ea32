//! Who the principal is and where it can go: `GetCallerIdentity` (no permission needed, STS API
//! Reference), `GetUser`, `DescribeRegions` (the Regions the fleet enables), Availability Zones
//! and instance type offerings (every type in every zone of the Region).

use crate::cloud::Call;
use crate::cloud::error::CloudError;
use crate::cloud::ops::*;

use super::Ctx;

pub fn describe_regions(ctx: &mut Ctx<'_>, input: &Empty) -> Result<Vec<RegionInfo>, CloudError> {
    ctx.authorize(Call::DescribeRegions(input))?;
    let account = ctx.account.clone();
    let regions = ctx.world.accounts.get(&account).map(|a| a.regions.keys().cloned().collect()).unwrap_or_default();
    let regions: Vec<_> = regions;
    Ok(regions.into_iter().map(|region| RegionInfo { region, opt_in_status: "opt-in-not-required".into() }).collect())
}

pub fn describe_availability_zones(ctx: &mut Ctx<'_>, input: &Empty) -> Result<Vec<AvailabilityZoneInfo>, CloudError> {
    ctx.authorize(Call::DescribeAvailabilityZones(input))?;
    Ok(ctx
        .reg()?
        .zones
        .iter()
        .map(|(name, zone_id)| AvailabilityZoneInfo {
            name: name.clone(),
            zone_id: zone_id.clone(),
            state: "available".into(),
        })
        .collect())
}

pub fn describe_instance_type_offerings(
    ctx: &mut Ctx<'_>,
    input: &DescribeInstanceTypeOfferingsInput,
) -> Result<Vec<InstanceTypeOffering>, CloudError> {
    ctx.authorize(Call::DescribeInstanceTypeOfferings(input))?;
    let zones: Vec<String> = ctx.reg()?.zones.iter().map(|(n, _)| n.clone()).collect();
    Ok(input
        .instance_types
        .iter()
        .flat_map(|t| {
            zones.iter().map(|z| InstanceTypeOffering { instance_type: t.clone(), availability_zone: z.clone() })
        })
        .collect())
}

/// A stable `AIDA...` user id from the account and user name.
pub(super) fn user_id(account: &str, user: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in account.bytes().chain(user.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("AIDA{h:016X}")
}

pub fn get_caller_identity(ctx: &mut Ctx<'_>, input: &Empty) -> Result<CallerIdentity, CloudError> {
    ctx.authorize(Call::GetCallerIdentity(input))?;
    let user = ctx.user();
    Ok(CallerIdentity {
        account: ctx.account.clone(),
        arn: format!("arn:aws:iam::{}:user/{user}", ctx.account),
        user_id: user_id(ctx.account.as_str(), &user),
    })
}

pub fn get_user(ctx: &mut Ctx<'_>, input: &GetUserInput) -> Result<UserInfo, CloudError> {
    ctx.authorize(Call::GetUser(input))?;
    let me = ctx.user();
    let name = input.user_name.clone().unwrap_or_else(|| me.clone());
    if name != me {
        return Err(ctx.err("NoSuchEntity", format!("The user with name {name} cannot be found."), vec![name.clone()]));
    }
    Ok(UserInfo {
        arn: format!("arn:aws:iam::{}:user/{name}", ctx.account),
        user_id: user_id(ctx.account.as_str(), &name),
        user_name: name,
    })
}
