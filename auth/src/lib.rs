//! auth: Parley's users, passwords and tokens.
//!
//! - Passwords are hashed with Argon2id.
//! - Access tokens are short-lived EdDSA JWTs with a `kid`; the public keys
//!   are served as a JWKS so every service verifies tokens locally.
//! - Refresh tokens are opaque, stored hashed, single-use and rotated; a
//!   spent token presented again revokes its whole family.
//! - New users are announced on the bus (`auth.user.registered`).
//!
//! [`AuthApp::build`] composes the service from configuration; the binary
//! and the standalone server both use it.

pub mod config;
pub mod keys;
pub mod metrics;
pub mod mongo;
pub mod routes;
pub mod service;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use service_kit::bus::EventBus;
use service_kit::ops::ReadyCheck;
use service_kit::token::Verifier;

pub use config::AuthConfig;
pub use service::{AuthService, Session};

/// The composed auth service.
#[derive(Clone)]
pub struct AuthApp {
    service: Arc<AuthService>,
    verifier: Arc<Verifier>,
}

impl AuthApp {
    /// Opens the store and keys under `config.data_dir` and builds the service.
    pub async fn build(
        config: AuthConfig,
        bus: Arc<dyn EventBus>,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let keys = keys::KeySet::load_or_generate(&config.data_dir.join("keys"))
            .context("cannot load token signing keys")?;
        let store: Arc<dyn store::UserStore> = match &config.mongo {
            Some(cfg) => Arc::new(
                mongo::MongoUserStore::open(service_kit::mongo::connect(cfg).await?)
                    .await
                    .context("cannot prepare the MongoDB user store")?,
            ),
            None => {
                let db_path = config.data_dir.join("auth.db");
                Arc::new(
                    store::SqliteUserStore::open(&db_path)
                        .with_context(|| format!("cannot open user store {}", db_path.display()))?,
                )
            }
        };
        let verifier = Arc::new(Verifier::from_jwks(&keys.jwks()).context("invalid public keys")?);
        let service = AuthService::new(store, keys, bus, config, metrics::Metrics::new(registry))
            .await
            .map_err(|e| anyhow::anyhow!("cannot start auth: {e}"))?;
        Ok(Self {
            service: Arc::new(service),
            verifier,
        })
    }

    /// A verifier trusting this service's keys (in-process composition).
    pub fn verifier(&self) -> Arc<Verifier> {
        self.verifier.clone()
    }

    /// The service (tests mint tokens with it).
    pub fn service(&self) -> &Arc<AuthService> {
        &self.service
    }

    /// The HTTP routes.
    pub fn router(&self) -> axum::Router {
        routes::router(routes::AuthState {
            service: self.service.clone(),
            verifier: self.verifier.clone(),
        })
    }

    /// Readiness: the user store answers.
    pub fn ready_check(&self) -> Arc<dyn ReadyCheck> {
        Arc::new(StoreCheck(self.service.clone()))
    }
}

struct StoreCheck(Arc<AuthService>);

#[async_trait]
impl ReadyCheck for StoreCheck {
    fn name(&self) -> &str {
        "user-store"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.store().ping().await.map_err(|e| e.to_string())
    }
}
