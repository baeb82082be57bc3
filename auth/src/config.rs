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
}

impl AuthConfig {
    /// Reads `PARLEY_*` settings; `data_dir` comes from the caller.
    pub fn from_env(env: &impl Env, data_dir: PathBuf) -> Result<Self, ConfigError> {
        let access: u64 = env.parse_or("PARLEY_ACCESS_TOKEN_TTL_SECS", 900)?;
        if access == 0 {
            return Err(ConfigError::new(
                "PARLEY_ACCESS_TOKEN_TTL_SECS",
                "0",
                "must be positive",
            ));
        }
        Ok(Self {
            data_dir,
            access_ttl: Duration::from_secs(access),
            refresh_ttl: Duration::from_secs(
                env.parse_or("PARLEY_REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            ),
            login_max_failures: env.parse_or("PARLEY_LOGIN_MAX_FAILURES", 5)?,
            login_window: Duration::from_secs(env.parse_or("PARLEY_LOGIN_WINDOW_SECS", 300)?),
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
        }
    }
}
