//! Options shared by the commands that talk to a cloud (`scan`, `jobs`, `audit`): which backend
//! (`--cloud sim|aws`), the simulated account's fleet file, the data directory, Regions, and AWS
//! profile and endpoint; and opening them: the backend behind the policy guard (with the bundled
//! custom policy and client-side token buckets), the ledger, and the principal's identity.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::{Args, ValueEnum};

use crate::cloud::authz::Scope;
use crate::cloud::aws::{AwsCloud, config::AwsConfig};
use crate::cloud::ops::Empty;
use crate::cloud::pacer::Pacer;
use crate::cloud::sim::{Fleet, SimCloud};
use crate::cloud::{AccountId, Cloud, Guard, GuardPolicy, GuardRules, Region};
use crate::ledger::Ledger;
use crate::policy::agentless_scan_policy;

/// The demo fleet committed in the repository (the default of `--cloud sim`).
pub const DEMO_FLEET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sim/demo-fleet.toml");

/// Which cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudKind {
    /// The simulated AWS account (no AWS account needed); its state lives in the data directory.
    Sim,
    /// AWS, with the standard credential chain (--profile, environment, SSO, instance role).
    Aws,
}

#[derive(Debug, Clone, Args)]
pub struct CloudArgs {
    /// Which cloud to use.
    #[arg(long, value_enum, default_value = "sim")]
    pub cloud: CloudKind,
    /// The simulated account's fleet file (TOML), used when the data directory has no simulated
    /// account yet [default: the bundled demo fleet].
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// Where the ledger, results and the simulated account live
    /// [default: $AGENTLESS_DATA_DIR, else $XDG_STATE_HOME/agentless, else ~/.local/state/agentless].
    #[arg(long, value_name = "DIR", env = "AGENTLESS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A Region to work in (repeat for several) [default: every enabled Region].
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<Region>,
    /// AWS named profile (--cloud aws).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Send AWS calls to this endpoint, e.g. a moto server (--cloud aws).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// Why a backend could not be opened (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Sim(#[from] crate::cloud::sim::SimError),
    #[error(transparent)]
    Fleet(#[from] crate::cloud::sim::FleetError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
    #[error(transparent)]
    Tls(#[from] crate::collector::tls::TlsError),
}

impl CloudArgs {
    /// The data directory (see `--data-dir`).
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

/// The data directory when `--data-dir` and `$AGENTLESS_DATA_DIR` are not set:
/// `$XDG_STATE_HOME/agentless`, else `~/.local/state/agentless`, else `.agentless`.
#[must_use]
pub fn default_data_dir() -> PathBuf {
    if let Some(s) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(s).join("agentless");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/agentless"),
        None => PathBuf::from(".agentless"),
    }
}

/// An opened backend behind its guard, with the principal's identity.
#[derive(Debug)]
pub struct Opened<C: Cloud> {
    pub guard: Arc<Guard<C>>,
    pub account: AccountId,
    pub caller_arn: String,
    /// The Regions to work in.
    pub regions: Vec<Region>,
}

/// The ledger of the data directory.
///
/// # Errors
///
/// The file cannot be opened or is from a newer version.
pub fn open_ledger(data_dir: &Path) -> Result<Arc<Mutex<Ledger>>, SetupError> {
    Ok(Arc::new(Mutex::new(Ledger::open(data_dir)?)))
}

/// `backend` behind a guard with the bundled custom policy and a pacer of its own.
pub(crate) fn guard_for<C: Cloud>(backend: C, scope: Scope, rules: GuardRules) -> Result<Guard<C>, SetupError> {
    guard_with_trail(backend, scope, rules, None)
}

/// [`guard_for`], plus the pipeline reader's policy (policies/agentless-trail-reader.json) for
/// `trail`'s queue and bucket: what the onboarding asks the user to attach for it.
pub(crate) fn guard_with_trail<C: Cloud>(
    backend: C,
    scope: Scope,
    rules: GuardRules,
    trail: Option<&crate::schedule::config::TrailConfig>,
) -> Result<Guard<C>, SetupError> {
    let mut policies = vec![agentless_scan_policy()?];
    if let Some(t) = trail {
        let owner = t.queue_account.as_ref().unwrap_or(&scope.account);
        let queue_arn = format!("arn:{}:sqs:{}:{owner}:{}", scope.partition, t.region, t.queue);
        policies.push(crate::policy::trail_reader_policy(&queue_arn, &t.bucket)?);
    }
    let policy = GuardPolicy::new(policies, scope, rules);
    Ok(Guard::new(backend, policy).with_pacer(Arc::new(Pacer::new())))
}

async fn regions<C: Cloud>(guard: &Guard<C>, asked: &[Region], home: &Region) -> Result<Vec<Region>, SetupError> {
    if !asked.is_empty() {
        return Ok(asked.to_vec());
    }
    let all = guard.describe_regions(home, &Empty).await?;
    Ok(all.into_iter().filter(|r| r.opt_in_status != "not-opted-in").map(|r| r.region).collect())
}

/// The simulated account of the data directory (created from the fleet file the first time).
///
/// # Errors
///
/// The fleet file or the saved state cannot be read.
pub async fn open_sim(args: &CloudArgs) -> Result<Opened<SimCloud>, SetupError> {
    open_sim_with(args, GuardRules::default()).await
}

/// [`open_sim`] with these guard rules.
///
/// # Errors
///
/// As [`open_sim`].
pub async fn open_sim_with(args: &CloudArgs, rules: GuardRules) -> Result<Opened<SimCloud>, SetupError> {
    let data_dir = args.data_dir();
    let fleet_path = args.fleet.clone().unwrap_or_else(|| PathBuf::from(DEMO_FLEET));
    let fleet = Fleet::load(&fleet_path)?;
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| SetupError::Message(format!("cannot create the data directory {}: {e}", data_dir.display())))?;
    let sim = SimCloud::open(&data_dir, &fleet)?;
    let scope = sim.scope();
    let account = sim.account().clone();
    let user = scope.caller_user.clone().unwrap_or_else(|| "agentless-scanner".into());
    let caller_arn = format!("arn:aws:iam::{account}:user/{user}");
    let home = sim.inspect(|w| w.accounts.get(&account).and_then(|a| a.regions.keys().next().cloned()));
    let home = home.ok_or_else(|| SetupError::Message(format!("simulated account {account} has no Region")))?;
    let guard = guard_for(sim, scope, rules)?;
    let regions = regions(&guard, &args.regions, &home).await?;
    Ok(Opened { guard: Arc::new(guard), account, caller_arn, regions })
}

/// AWS through the SDK.
///
/// # Errors
///
/// No credentials or Region, or `GetCallerIdentity` fails.
pub async fn open_aws(args: &CloudArgs) -> Result<Opened<AwsCloud>, SetupError> {
    open_aws_with(args, GuardRules::default()).await
}

/// [`open_aws`] with these guard rules.
///
/// # Errors
///
/// As [`open_aws`].
pub async fn open_aws_with(args: &CloudArgs, rules: GuardRules) -> Result<Opened<AwsCloud>, SetupError> {
    let config = AwsConfig {
        profile: args.profile.clone(),
        regions: args.regions.clone(),
        endpoint_url: args.endpoint_url.clone(),
        ..AwsConfig::default()
    };
    let aws = AwsCloud::new(&config).await.map_err(|e| SetupError::Message(format!("AWS configuration: {e}")))?;
    let home = match args.regions.first() {
        Some(r) => r.clone(),
        None => "us-east-1".parse().map_err(|e| SetupError::Message(format!("{e}")))?,
    };
    // GetCallerIdentity needs no permission; ask it through a guard with a provisional scope.
    let probe = guard_for(
        aws,
        Scope::new("000000000000".parse().map_err(|e| SetupError::Message(format!("{e}")))?),
        GuardRules::default(),
    )?;
    let who = probe.get_caller_identity(&home, &Empty).await?;
    let user = who.arn.rsplit_once(":user/").map(|(_, u)| u.to_owned());
    let scope = Scope { caller_user: user, ..Scope::new(who.account.clone()) };
    let aws = AwsCloud::new(&config).await.map_err(|e| SetupError::Message(format!("AWS configuration: {e}")))?;
    let guard = guard_for(aws, scope, rules)?;
    let regions = regions(&guard, &args.regions, &home).await?;
    Ok(Opened { guard: Arc::new(guard), account: who.account, caller_arn: who.arn, regions })
}
