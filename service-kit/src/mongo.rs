//! MongoDB plumbing shared by the stores that run on it in production:
//! configuration, a connection that fails fast, and the readiness check.
//!
//! The stores themselves live in the crates that own the data (db-writer's
//! chat store, auth's users, …); this module knows no collection.

use std::time::Duration;

use anyhow::Context;
use mongodb::bson::doc;

use crate::config::{ConfigError, Env};

/// Where the production stores live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoConfig {
    /// `PARLEY_MONGODB_URI`, e.g. `mongodb://mongo-0.mongo:27017/?replicaSet=rs0`.
    pub uri: String,
    /// `PARLEY_MONGODB_DATABASE` (default `parley`).
    pub database: String,
}

impl MongoConfig {
    /// `None` when `PARLEY_MONGODB_URI` is unset: the embedded store is used.
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let Some(uri) = env.get("PARLEY_MONGODB_URI").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            return Err(ConfigError::new(
                "PARLEY_MONGODB_URI",
                &uri,
                "expected a mongodb:// or mongodb+srv:// connection string",
            ));
        }
        let database = env.string_or("PARLEY_MONGODB_DATABASE", "parley");
        let valid = !database.is_empty()
            && database.len() <= 63
            && !database.contains(['/', '\\', '.', ' ', '"', '$', '\0']);
        if !valid {
            return Err(ConfigError::new(
                "PARLEY_MONGODB_DATABASE",
                &database,
                "expected a MongoDB database name (no / \\ . space \" $, at most 63 bytes)",
            ));
        }
        Ok(Some(Self { uri, database }))
    }
}

/// Connects and pings, so that a wrong URI or an unreachable server stops
/// the service at start-up with a message naming it.
pub async fn connect(cfg: &MongoConfig) -> anyhow::Result<mongodb::Database> {
    let mut options = mongodb::options::ClientOptions::parse(&cfg.uri)
        .await
        .with_context(|| format!("PARLEY_MONGODB_URI: cannot parse {}", redact(&cfg.uri)))?;
    if options.server_selection_timeout.is_none() {
        options.server_selection_timeout = Some(Duration::from_secs(10));
    }
    if options.connect_timeout.is_none() {
        options.connect_timeout = Some(Duration::from_secs(5));
    }
    let client = mongodb::Client::with_options(options).context("cannot build MongoDB client")?;
    let db = client.database(&cfg.database);
    db.run_command(doc! { "ping": 1 })
        .await
        .with_context(|| format!("MongoDB at {} is unreachable", redact(&cfg.uri)))?;
    Ok(db)
}

/// The URI without its password, for messages and logs.
pub fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &uri[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &uri[..scheme + 3], &uri[at..])
        }
        _ => uri.to_owned(),
    }
}

/// `/readyz` check: the database answers a ping.
pub struct MongoCheck(pub mongodb::Database);

#[async_trait::async_trait]
impl crate::ops::ReadyCheck for MongoCheck {
    fn name(&self) -> &str {
        "mongodb"
    }
    async fn check(&self) -> Result<(), String> {
        tokio::time::timeout(
            Duration::from_secs(2),
            self.0.run_command(doc! { "ping": 1 }),
        )
        .await
        .map_err(|_| "ping timed out".to_owned())?
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

/// Whether a driver error is a duplicate-key violation (code 11000).
pub fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errs| !errs.is_empty() && errs.iter().all(|e| e.code == 11000)),
        ErrorKind::Command(e) => e.code == 11000,
        _ => false,
    }
}

/// Reads a boolean stored as a BSON boolean or as 0/1 (wire-compatible
/// servers built on SQLite, such as the test server, answer integers).
pub fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use mongodb::bson::Bson;
    match <Bson as serde::Deserialize>::deserialize(d)? {
        Bson::Boolean(b) => Ok(b),
        Bson::Int32(n) => Ok(n != 0),
        Bson::Int64(n) => Ok(n != 0),
        other => Err(serde::de::Error::custom(format!(
            "expected a boolean, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    #[test]
    fn unset_uri_means_embedded() {
        assert_eq!(MongoConfig::from_env(&MapEnv::default()).unwrap(), None);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = MongoConfig::from_env(&MapEnv::from_pairs([("PARLEY_MONGODB_URI", "http://x")]))
            .unwrap_err();
        assert!(err.to_string().contains("PARLEY_MONGODB_URI"), "{err}");
        let err = MongoConfig::from_env(&MapEnv::from_pairs([
            ("PARLEY_MONGODB_URI", "mongodb://h"),
            ("PARLEY_MONGODB_DATABASE", "a/b"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("PARLEY_MONGODB_DATABASE"), "{err}");
    }

    #[test]
    fn redact_hides_the_password() {
        assert_eq!(
            redact("mongodb://u:secret@h:1/db"),
            "mongodb://u:***@h:1/db"
        );
        assert_eq!(redact("mongodb://h:1"), "mongodb://h:1");
    }
}
