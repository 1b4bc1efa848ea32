//! Configuration of the AWS backend, the AWS way: the SDK's standard credential chain (environment,
//! `--profile`, SSO, web identity, instance role), Regions, `--endpoint-url` (else the SDK reads
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` itself), an optional role to assume per
//! account (`--role-arn`, external id), the SDK's standard retry mode with configurable attempts
//! and backoff, and connect/operation timeouts.
//!
//! [`AwsConfig`] is plain data the CLI fills; [`AwsConfig::load`] turns it into the SDK's shared
//! configuration, from which `AwsCloud` builds one client set per Region.

use std::fmt;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};

use crate::cloud::ids::Region;

/// The SDK's standard retry mode default: 3 attempts in all (AWS SDKs and Tools Reference Guide,
/// "Retry behavior": `max_attempts` defaults to 3 in standard mode).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The standard mode's base delay (aws-smithy-types `RetryConfig::standard()`: 1 s).
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The standard mode's cap on one delay (AWS SDKs and Tools Reference Guide, "Retry behavior":
/// `MAX_BACKOFF` 20 seconds).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(20);
/// The SDK's default connect timeout (aws-config `TimeoutConfig` default: 3.1 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);
/// Our cap on one attempt of one call, retries not included. EC2 control-plane calls answer in
/// well under a second; a minute only catches a hung connection.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Our cap on one call including its retries (20 s maximum backoff, a few attempts).
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(180);
/// The session name of an assumed role when none is configured (CloudTrail shows it).
pub const DEFAULT_SESSION_NAME: &str = "agentless-scan";
/// The application name the SDK adds to every User-Agent as `app/agentless` (the SDK allows
/// alphanumerics and `!#$%&'*+-.^_`|~`, AppName docs).
pub const APP_NAME: &str = "agentless";

/// Static credentials (tests against moto; a real deployment uses the credential chain).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A role to assume (one per scanned account) with the base credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    /// `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// The external id the role's trust policy requires (`sts:ExternalId`), if any.
    pub external_id: Option<String>,
    /// `None`: [`DEFAULT_SESSION_NAME`].
    pub session_name: Option<String>,
}

/// How to reach AWS. `Default` is the SDK's own behaviour with our timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// A named profile of `~/.aws/config` (`--profile`); `None`: `AWS_PROFILE` or `default`.
    pub profile: Option<String>,
    /// The Regions to work in (`--region`, several). The first is the Region of the base
    /// configuration (STS for an assumed role); `None` of them: the chain's Region.
    pub regions: Vec<Region>,
    /// Every service's endpoint (`--endpoint-url`); `None`: `AWS_ENDPOINT_URL` or AWS's own.
    pub endpoint_url: Option<String>,
    /// Static credentials instead of the chain (tests).
    pub credentials: Option<StaticCredentials>,
    /// Assume this role with the base credentials.
    pub assume_role: Option<AssumeRole>,
    /// Attempts per call, first included, in the SDK's standard retry mode (1 = no retry).
    pub max_attempts: u32,
    /// Base of the standard mode's exponential backoff.
    pub initial_backoff: Duration,
    /// Cap on one backoff delay.
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    /// One attempt, retries excluded.
    pub attempt_timeout: Duration,
    /// One call, retries included.
    pub operation_timeout: Duration,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            profile: None,
            regions: Vec::new(),
            endpoint_url: None,
            credentials: None,
            assume_role: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }
}

/// A configuration the SDK cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("max attempts must be at least 1 (1 = no retry), got 0")]
    ZeroAttempts,
    #[error("the SDK refused the application name \"{APP_NAME}\"")]
    AppName,
    #[error("endpoint URL \"{0}\" does not start with http:// or https://")]
    EndpointUrl(String),
}

impl AwsConfig {
    /// The standard retry mode with our attempts and backoff.
    #[must_use]
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }

    #[must_use]
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }

    /// Check what the SDK would otherwise only refuse (or panic on) at the first call.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::ZeroAttempts);
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::EndpointUrl(url.clone()));
        }
        Ok(())
    }

    /// The SDK's shared configuration: the credential chain (or static credentials), then the
    /// assumed role on top, the retry and timeout settings and the endpoint.
    pub async fn load(&self) -> Result<aws_config::SdkConfig, ConfigError> {
        self.validate()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            // Every request's User-Agent carries `app/agentless`: how our calls are told apart in
            // CloudTrail's `userAgent` (docs/trail.md, "The cross-check").
            .app_name(aws_config::AppName::new(APP_NAME).map_err(|_| ConfigError::AppName)?)
            .retry_config(self.retry_config())
            .timeout_config(self.timeout_config());
        if let Some(region) = self.regions.first() {
            loader = loader.region(aws_config::Region::new(region.as_str().to_owned()));
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(c) = &self.credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                c.session_token.clone(),
                None,
                "agentless-static",
            ));
        }
        let base = loader.load().await;
        let Some(role) = &self.assume_role else { return Ok(base) };
        let mut builder = AssumeRoleProvider::builder(role.role_arn.clone())
            .session_name(role.session_name.clone().unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned()));
        if let Some(id) = &role.external_id {
            builder = builder.external_id(id.clone());
        }
        let provider = builder.configure(&base).build().await;
        Ok(base.into_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build())
    }
}
