//! notifier: web push (VAPID, RFC 8291/8292) to room members who are offline.
//!
//! - [`routes`]: `/api/push/*`: the VAPID public key, subscriptions, mutes.
//! - [`consumer`]: the bus consumer (durable queue `notifier`): keeps a
//!   projection of rooms and members from `chat.member.*` and turns each
//!   `chat.message.created` into queued pushes.
//! - [`push`]: the send queue and workers: encryption and signing
//!   (`web-push`), the HTTP client, retries, dead letters.
//! - [`vapid`]: the application server key and the per-audience JWT cache.
//! - [`store`]: the [`store::SubscriptionStore`] port and its SQLite
//!   implementation; [`mongo`] the production one; [`conformance`] is the
//!   suite every store passes.

pub mod config;
pub mod conformance;
pub mod consumer;
pub mod metrics;
pub mod mongo;
pub mod push;
pub mod routes;
pub mod store;
pub mod vapid;

use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use service_kit::bus::{Durability, EventBus};
use service_kit::ops::ReadyCheck;
use service_kit::presence::PresenceView;
use service_kit::token::Verifier;
use tokio::task::JoinHandle;

pub use config::NotifierConfig;

use crate::push::Pusher;
use crate::store::SubscriptionStore;

/// The service's name on the bus and in logs.
pub const SOURCE: &str = "notifier";

/// The notifier's operations router: `/healthz`, `/readyz`, `/metrics`.
pub fn ops_router(registry: prometheus::Registry) -> axum::Router {
    service_kit::ops::Ops::new(registry).router()
}

/// What the notifier is given.
#[derive(Clone)]
pub struct NotifierDeps {
    /// The event bus it consumes.
    pub bus: Arc<dyn EventBus>,
    /// Access-token verification for the HTTP API.
    pub verifier: Arc<Verifier>,
    /// Who is online anywhere in the cluster.
    pub presence: Arc<dyn PresenceView>,
}

/// The composed service: store, consumer, sender, routes.
pub struct NotifierApp {
    store: Arc<dyn SubscriptionStore>,
    pusher: Arc<Pusher>,
    key: vapid::VapidKey,
    state: routes::PushState,
    tasks: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl NotifierApp {
    /// Opens the embedded store (`<data dir>/notifier.db`) and builds.
    pub async fn build(
        config: NotifierConfig,
        deps: NotifierDeps,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let path = config.data_dir.join("notifier.db");
        let store: Arc<dyn SubscriptionStore> = Arc::new(
            store::SqliteSubscriptionStore::open(&path)
                .with_context(|| format!("cannot open notifier store {}", path.display()))?,
        );
        Self::build_with_store(config, deps, store, registry).await
    }

    /// Builds on a given store: loads (or creates) the VAPID key, starts the
    /// sender, subscribes to the bus.
    pub async fn build_with_store(
        config: NotifierConfig,
        deps: NotifierDeps,
        store: Arc<dyn SubscriptionStore>,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let key = match &config.vapid_private_key {
            Some(k) => vapid::VapidKey::from_base64url(k).context("PARLEY_VAPID_PRIVATE_KEY")?,
            None => {
                std::fs::create_dir_all(&config.data_dir).with_context(|| {
                    format!("cannot create data directory {}", config.data_dir.display())
                })?;
                vapid::VapidKey::load_or_generate(&config.data_dir)?
            }
        };
        let signer = vapid::VapidSigner::new(&key, &config.vapid_subject)?;
        let (pusher, sender_task) = Pusher::start(
            signer,
            store.clone(),
            config.send.clone(),
            metrics::Metrics::new(registry),
        )
        .context("cannot build the push HTTP client")?;
        let pusher = Arc::new(pusher);
        let sub = deps
            .bus
            .subscribe(consumer::QUEUE, &consumer::BINDINGS, Durability::Durable)
            .await
            .context("cannot subscribe to the event bus")?;
        let ctx = Arc::new(consumer::Context::new(
            store.clone(),
            deps.presence,
            pusher.clone(),
            config.preview,
        ));
        let consumer_task = tokio::spawn(consumer::run(sub, ctx));
        let state = routes::PushState {
            store: store.clone(),
            verifier: deps.verifier,
            public_key: key.public_key_b64().into(),
            allow_http: config.allow_http,
            max_subscriptions: config.max_subscriptions_per_user,
        };
        Ok(Self {
            store,
            pusher,
            key,
            state,
            tasks: tokio::sync::Mutex::new(vec![consumer_task, sender_task]),
        })
    }

    /// The `/api/push/*` routes.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Readiness: the store answers.
    pub fn ready_check(&self) -> Arc<dyn ReadyCheck> {
        Arc::new(StoreCheck(self.store.clone()))
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn SubscriptionStore> {
        self.store.clone()
    }

    /// The sender (finished-push events, dead letters).
    pub fn pusher(&self) -> Arc<Pusher> {
        self.pusher.clone()
    }

    /// The VAPID key.
    pub fn vapid_key(&self) -> &vapid::VapidKey {
        &self.key
    }

    /// After the bus closed: waits for the consumer to stop. Pushes still
    /// queued are abandoned (a push is best effort and a restart must not
    /// wait on slow push services).
    pub async fn drained(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().await);
        let mut tasks = tasks.into_iter();
        if let Some(consumer) = tasks.next()
            && let Err(err) = consumer.await
        {
            tracing::error!(error = %err, "notifier consumer panicked");
        }
        for t in tasks {
            t.abort();
        }
    }
}

struct StoreCheck(Arc<dyn SubscriptionStore>);

#[async_trait]
impl ReadyCheck for StoreCheck {
    fn name(&self) -> &str {
        "subscription-store"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}
