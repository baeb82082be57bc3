//! auth's configuration.

use std::path::PathBuf;
use std::time::Duration;

use service_kit::config::{ConfigError, Env};

/// Settings for the auth service.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Where keys (`keys/`) and the embedded store (`auth.db`) live.
    pub data_dir: PathBuf,
    /// Access-token lifetime (`PARLEY_ACCESS_TOKEN_TTL_SECS`, default 900).
    pub access_ttl: Duration,
    /// Refresh-token lifetime (`PARLEY_REFRESH_TOKEN_TTL_SECS`, default 30 days).
    pub refresh_ttl: Duration,
    /// Failed logins per username and address before 429 (`PARLEY_LOGIN_MAX_FAILURES`, default 5).
    pub login_max_failures: u32,
    /// The window those failures are counted in (`PARLEY_LOGIN_WINDOW_SECS`, default 300).
    pub login_window: Duration,
    /// Take the client address from the last `X-Forwarded-For` entry, as
    /// set by the ingress (`PARLEY_TRUST_FORWARDED_FOR`, default false). Only
    /// turn on behind a proxy that sets it; otherwise clients could forge it.
    pub trust_forwarded_for: bool,
    /// Users and refresh tokens on MongoDB instead of the embedded database
    /// (`PARLEY_MONGODB_URI`).
    pub mongo: Option<service_kit::mongo::MongoConfig>,
}

impl AuthConfig {
    /// Reads `PARLEY_*` settings; `data_dir` comes from the caller.
    pub fn from_env(env: &impl Env, data_dir: PathBuf) -> Result<Self, ConfigError> {
        let bounded = |key: &str, default: u64, range| env.bounded(key, default, range);
        Ok(Self {
            mongo: service_kit::mongo::MongoConfig::from_env(env)?,
            data_dir,
            access_ttl: Duration::from_secs(bounded(
                "PARLEY_ACCESS_TOKEN_TTL_SECS",
                900,
                1..=86_400,
            )?),
            refresh_ttl: Duration::from_secs(bounded(
                "PARLEY_REFRESH_TOKEN_TTL_SECS",
                30 * 24 * 3600,
                60..=365 * 24 * 3600,
            )?),
            login_max_failures: u32::try_from(bounded("PARLEY_LOGIN_MAX_FAILURES", 5, 1..=1000)?)
                .unwrap_or(5),
            login_window: Duration::from_secs(bounded(
                "PARLEY_LOGIN_WINDOW_SECS",
                300,
                1..=86_400,
            )?),
            trust_forwarded_for: env.parse_or("PARLEY_TRUST_FORWARDED_FOR", false)?,
        })
    }

    /// Defaults with a data directory (tests).
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            login_max_failures: 5,
            login_window: Duration::from_secs(300),
            trust_forwarded_for: false,
            mongo: None,
        }
    }
}
