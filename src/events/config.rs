//! The CloudTrail pipeline's configuration: where an account's pipeline is
//! (`[accounts.trail]`, [`TrailConfig`]) and how pipelines are read and cross-checked
//! (`[trail]`, [`TrailReaderConfig`]). Parsed as part of the daemon's configuration file
//! (`crate::schedule::config`), which re-exports both.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::cloud::ids::{AccountId, Region};

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    let parsed = crate::audit::parse_duration(&s).map_err(serde::de::Error::custom)?;
    parsed.try_into().map_err(|e| serde::de::Error::custom(format!("\"{s}\": {e}")))
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn yes() -> bool {
    true
}

/// `[accounts.trail]`: the account's CloudTrail → S3 → SQS pipeline (docs/trail.md; the
/// onboarding document's "Configure AWS audit logs" steps 1 to 4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailConfig {
    /// The Region of the trail, its bucket's notification and the queue (the onboarding puts
    /// all three in one Region).
    pub region: Region,
    /// The SQS queue's name.
    pub queue: String,
    /// The account that owns the queue [default: this account].
    #[serde(default)]
    pub queue_account: Option<AccountId>,
    /// The trail's S3 bucket: a notification naming another bucket is refused.
    pub bucket: String,
}

/// `[trail]`: how the pipelines are read and cross-checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailReaderConfig {
    /// Log objects larger than this are refused unread [default: 64 MiB].
    #[serde(default = "default_max_object")]
    pub max_object_bytes: u64,
    /// A log object's JSON may inflate to this much [default: 512 MiB].
    #[serde(default = "default_max_inflated")]
    pub max_inflated_bytes: u64,
    /// Long-poll wait of each `ReceiveMessage`, 0 to 20 seconds [default: 20].
    #[serde(default = "default_wait")]
    pub wait_seconds: u8,
    /// Messages per `ReceiveMessage`, 1 to 10 [default: 10].
    #[serde(default = "default_batch")]
    pub batch: u8,
    /// How long a received message stays hidden [default: the queue's setting].
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub visibility_timeout: Option<Duration>,
    /// Cross-check CloudTrail's records of our principal against our calls [default: true].
    #[serde(default = "yes")]
    pub crosscheck: bool,
    /// A record matches a call of ours sent this close to its `eventTime` [default: 5m].
    #[serde(default = "default_match_window", deserialize_with = "de_duration")]
    pub match_window: Duration,
    /// Calls of ours no record matched after this long are counted as unseen [default: 1h].
    #[serde(default = "default_unseen_after", deserialize_with = "de_duration")]
    pub unseen_after: Duration,
}

/// 64 MiB: CloudTrail writes a file per Region about every 5 minutes; a busy account's files are
/// a few MiB gzipped (our choice, with room).
fn default_max_object() -> u64 {
    64 << 20
}

/// 512 MiB: the decompressed cap (CloudTrail JSON compresses about 10 to 20 times; our choice).
fn default_max_inflated() -> u64 {
    512 << 20
}

/// 20 s: SQS's longest long poll (`WaitTimeSeconds`), the fewest empty receives.
fn default_wait() -> u8 {
    crate::cloud::ops::SQS_MAX_WAIT_SECONDS
}

/// 10: SQS's largest batch (`MaxNumberOfMessages`).
fn default_batch() -> u8 {
    crate::cloud::ops::SQS_MAX_MESSAGES
}

/// 5 minutes: eventTime is when AWS received the request; ours is stamped before sending, and the
/// SDK's retries and timeouts (up to 3 minutes per operation, `cloud::aws::config`) fall inside.
fn default_match_window() -> Duration {
    Duration::from_secs(300)
}

/// 1 hour: CloudTrail delivers within about 5 minutes on average (CloudTrail FAQ), so a call
/// unseen after an hour is not coming.
fn default_unseen_after() -> Duration {
    Duration::from_secs(3600)
}

impl Default for TrailReaderConfig {
    fn default() -> Self {
        TrailReaderConfig {
            max_object_bytes: default_max_object(),
            max_inflated_bytes: default_max_inflated(),
            wait_seconds: default_wait(),
            batch: default_batch(),
            visibility_timeout: None,
            crosscheck: true,
            match_window: default_match_window(),
            unseen_after: default_unseen_after(),
        }
    }
}
