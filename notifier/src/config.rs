//! The notifier's configuration, read from `PARLEY_*` variables and
//! validated before anything is bound; every error names its variable.

use std::path::PathBuf;
use std::time::Duration;

use service_kit::config::{ConfigError, Env};

use crate::push::SendConfig;

/// Settings for the notifier.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Where `notifier.db` and the generated VAPID key (`vapid.key`) live.
    pub data_dir: PathBuf,
    /// The VAPID private key, base64url of the raw 32-byte P-256 scalar
    /// (`PARLEY_VAPID_PRIVATE_KEY`). Unset: `<data dir>/vapid.key`,
    /// generated on first run.
    pub vapid_private_key: Option<String>,
    /// The VAPID `sub` claim, `mailto:` or `https:` (`PARLEY_VAPID_SUBJECT`,
    /// default `mailto:admin@localhost`).
    pub vapid_subject: String,
    /// Accept `http:` push endpoints (`PARLEY_PUSH_ALLOW_HTTP`, default
    /// false): only for tests with a local push double.
    pub allow_http: bool,
    /// Put a preview of the message body in the push (`PARLEY_PUSH_PREVIEW`,
    /// default true); off, the push says only who wrote where.
    pub preview: bool,
    /// Subscriptions one user may hold (`PARLEY_PUSH_MAX_SUBSCRIPTIONS`, default 10).
    pub max_subscriptions_per_user: usize,
    /// Sending: concurrency, retries, timeouts, TTL, queue length.
    pub send: SendConfig,
}

/// The defaults: the standalone server's settings.
pub const DEFAULT_SUBJECT: &str = "mailto:admin@localhost";

impl NotifierConfig {
    /// Defaults on a data directory.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            vapid_private_key: None,
            vapid_subject: DEFAULT_SUBJECT.into(),
            allow_http: false,
            preview: true,
            max_subscriptions_per_user: 10,
            send: SendConfig {
                concurrency: 64,
                concurrency_per_service: 16,
                max_attempts: 5,
                retry_base: Duration::from_millis(500),
                retry_max: Duration::from_secs(300),
                request_timeout: Duration::from_secs(10),
                ttl: Duration::from_secs(86_400),
                queue_capacity: 10_000,
            },
        }
    }

    /// Reads `PARLEY_*` settings; `data_dir` comes from the caller.
    pub fn from_env(env: &impl Env, data_dir: PathBuf) -> Result<Self, ConfigError> {
        let bounded = |key: &str, default: u64, range| env.bounded(key, default, range);
        let d = Self::with_data_dir(data_dir);
        let vapid_subject = env.string_or("PARLEY_VAPID_SUBJECT", DEFAULT_SUBJECT);
        validate_subject(&vapid_subject)
            .map_err(|reason| ConfigError::new("PARLEY_VAPID_SUBJECT", &vapid_subject, reason))?;
        let vapid_private_key = env.get("PARLEY_VAPID_PRIVATE_KEY");
        if let Some(key) = &vapid_private_key {
            crate::vapid::VapidKey::from_base64url(key).map_err(|e| {
                // The value is a secret: never echo it.
                ConfigError::new("PARLEY_VAPID_PRIVATE_KEY", "<redacted>", e.to_string())
            })?;
        }
        let usize_of = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(Self {
            vapid_private_key,
            vapid_subject,
            allow_http: env.parse_or("PARLEY_PUSH_ALLOW_HTTP", d.allow_http)?,
            preview: env.parse_or("PARLEY_PUSH_PREVIEW", d.preview)?,
            max_subscriptions_per_user: usize_of(bounded(
                "PARLEY_PUSH_MAX_SUBSCRIPTIONS",
                10,
                1..=1000,
            )?),
            send: SendConfig {
                concurrency: usize_of(bounded("PARLEY_PUSH_CONCURRENCY", 64, 1..=10_000)?),
                concurrency_per_service: usize_of(bounded(
                    "PARLEY_PUSH_CONCURRENCY_PER_SERVICE",
                    16,
                    1..=10_000,
                )?),
                max_attempts: u32::try_from(bounded("PARLEY_PUSH_MAX_ATTEMPTS", 5, 1..=20)?)
                    .unwrap_or(5),
                retry_base: Duration::from_millis(bounded(
                    "PARLEY_PUSH_RETRY_BASE_MS",
                    500,
                    1..=60_000,
                )?),
                retry_max: Duration::from_secs(bounded(
                    "PARLEY_PUSH_RETRY_MAX_SECS",
                    300,
                    1..=86_400,
                )?),
                request_timeout: Duration::from_secs(bounded(
                    "PARLEY_PUSH_TIMEOUT_SECS",
                    10,
                    1..=300,
                )?),
                ttl: Duration::from_secs(bounded("PARLEY_PUSH_TTL_SECS", 86_400, 0..=2_419_200)?),
                queue_capacity: usize_of(bounded("PARLEY_PUSH_QUEUE", 10_000, 1..=1_000_000)?),
            },
            data_dir: d.data_dir,
        })
    }
}

/// RFC 8292 §2.1: the contact is a `mailto:` or an `https:` URI.
fn validate_subject(s: &str) -> Result<(), &'static str> {
    let ok = match s.split_once(':') {
        Some(("mailto", rest)) => rest.contains('@') && !rest.contains(char::is_whitespace),
        Some(("https", rest)) => rest.starts_with("//") && rest.len() > 2,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("expected mailto:someone@example.org or an https: URL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_kit::config::MapEnv;

    #[test]
    fn defaults_and_errors_name_the_variable() {
        let c = NotifierConfig::from_env(&MapEnv::default(), "d".into()).unwrap();
        assert_eq!(c.vapid_subject, DEFAULT_SUBJECT);
        assert!(!c.allow_http);
        for (k, v) in [
            ("PARLEY_VAPID_SUBJECT", "admin@example.org"),
            ("PARLEY_VAPID_SUBJECT", "http://example.org"),
            ("PARLEY_VAPID_PRIVATE_KEY", "not-a-key"),
            ("PARLEY_PUSH_ALLOW_HTTP", "maybe"),
            ("PARLEY_PUSH_MAX_ATTEMPTS", "0"),
            ("PARLEY_PUSH_CONCURRENCY", "x"),
        ] {
            let err = NotifierConfig::from_env(&MapEnv::from_pairs([(k, v)]), "d".into())
                .unwrap_err()
                .to_string();
            assert!(err.contains(k), "{err}");
        }
        let ok = MapEnv::from_pairs([("PARLEY_VAPID_SUBJECT", "https://chat.example.org")]);
        assert!(NotifierConfig::from_env(&ok, "d".into()).is_ok());
    }
}
