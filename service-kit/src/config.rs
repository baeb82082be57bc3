//! Configuration from `PARLEY_*` environment variables.
//!
//! Services read the environment through [`Env`], so tests pass a map
//! instead of mutating the process environment. Every parse error names the
//! variable and what it expected, and is raised before any port is bound.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// Where configuration values come from.
pub trait Env {
    /// The raw value of `key`, if set and not empty.
    fn get(&self, key: &str) -> Option<String>;

    /// `key` parsed as `T`, or `default` when unset.
    fn parse_or<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
        Self: Sized,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError {
                key: key.to_owned(),
                value: raw,
                reason: e.to_string(),
            }),
        }
    }

    /// `key` as a whole number within `range`, or `default` when unset.
    fn bounded(
        &self,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError>
    where
        Self: Sized,
    {
        let v: u64 = self.parse_or(key, default)?;
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(ConfigError::new(
                key,
                &v.to_string(),
                format!("must be {}-{}", range.start(), range.end()),
            ))
        }
    }

    /// `key` as a string, or `default` when unset.
    fn string_or(&self, key: &str, default: &str) -> String
    where
        Self: Sized,
    {
        self.get(key).unwrap_or_else(|| default.to_owned())
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnv;

impl Env for SystemEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

/// A fixed map, for tests.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub HashMap<String, String>);

impl MapEnv {
    /// A map from pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned().filter(|v| !v.is_empty())
    }
}

/// A configuration value that could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration: {key}={value:?}: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub key: String,
    /// Its value.
    pub value: String,
    /// What was wrong.
    pub reason: String,
}

impl ConfigError {
    /// An error for `key` with a reason.
    pub fn new(key: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_or_reports_the_variable() {
        let env = MapEnv::from_pairs([("PARLEY_X", "abc"), ("PARLEY_Y", "7")]);
        assert_eq!(env.parse_or("PARLEY_Y", 1u32).unwrap(), 7);
        assert_eq!(env.parse_or("PARLEY_Z", 1u32).unwrap(), 1);
        let err = env.parse_or("PARLEY_X", 1u32).unwrap_err();
        assert!(err.to_string().contains("PARLEY_X"), "{err}");
    }
}
