//! db-writer: the only writer of Parley's chat data.
//!
//! - [`consumer`]: takes `chat.message.created`, `chat.receipt.read` and
//!   `auth.user.registered` from the bus and writes them in batches,
//!   idempotently, acking the bus only after the write.
//! - [`routes`]: rooms, members and history over HTTP.
//! - [`store`]: the [`store::ChatStore`] port and its embedded
//!   implementation (SQLite).

pub mod conformance;
pub mod consumer;
pub mod internal;
pub mod metrics;
pub mod mongo;
pub mod routes;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use service_kit::bus::{Durability, EventBus};
use service_kit::ops::ReadyCheck;
use service_kit::token::Verifier;
use tokio::task::JoinHandle;

use crate::store::ChatStore;

/// db-writer's configuration.
#[derive(Debug, Clone)]
pub struct DbWriterConfig {
    /// Where the embedded database (`chat.db`) lives.
    pub data_dir: PathBuf,
    /// Consumer batching.
    pub batch: consumer::BatchConfig,
    /// MongoDB instead of the embedded database (`PARLEY_MONGODB_URI`).
    pub mongo: Option<service_kit::mongo::MongoConfig>,
}

/// The composed service: store, consumer task, routes.
pub struct DbWriterApp {
    store: Arc<dyn ChatStore>,
    state: routes::RoomsState,
    consumer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    barriers: Arc<consumer::Barriers>,
}

impl DbWriterApp {
    /// Opens the store, subscribes to the bus and starts consuming.
    pub async fn build(
        config: DbWriterConfig,
        bus: Arc<dyn EventBus>,
        verifier: Arc<Verifier>,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let store: Arc<dyn ChatStore> = match &config.mongo {
            Some(cfg) => {
                let db = service_kit::mongo::connect(cfg).await?;
                Arc::new(
                    mongo::MongoChatStore::open(db)
                        .await
                        .context("cannot prepare the MongoDB chat store")?,
                )
            }
            None => {
                let path = config.data_dir.join("chat.db");
                Arc::new(
                    store::SqliteChatStore::open(&path)
                        .with_context(|| format!("cannot open chat store {}", path.display()))?,
                )
            }
        };
        let sub = bus
            .subscribe(consumer::QUEUE, &consumer::BINDINGS, Durability::Durable)
            .await
            .context("cannot subscribe to the event bus")?;
        let barriers = Arc::new(consumer::Barriers::default());
        let task = tokio::spawn(consumer::run(
            sub,
            store.clone(),
            config.batch,
            metrics::Metrics::new(registry),
            barriers.clone(),
        ));
        Ok(Self {
            store: store.clone(),
            state: routes::RoomsState {
                store,
                verifier,
                bus,
            },
            consumer: tokio::sync::Mutex::new(Some(task)),
            barriers,
        })
    }

    /// The chat store (the gateway's embedded directory reads it in-process).
    pub fn store(&self) -> Arc<dyn ChatStore> {
        self.store.clone()
    }

    /// The HTTP routes.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// The gateways' read API (`/internal/…`), for the service's own port
    /// only (never behind the ingress).
    pub fn internal_router(&self) -> axum::Router {
        internal::router(internal::InternalState {
            store: self.store.clone(),
            drain: Arc::new(Drain {
                bus: self.state.bus.clone(),
                barriers: self.barriers.clone(),
            }),
        })
    }

    /// Readiness: the store answers.
    pub fn ready_check(&self) -> Arc<dyn ReadyCheck> {
        Arc::new(StoreCheck(self.store.clone()))
    }

    /// Waits for the consumer to drain after the bus was closed.
    pub async fn drained(&self) {
        let task = self.consumer.lock().await.take();
        if let Some(task) = task
            && let Err(err) = task.await
        {
            tracing::error!(error = %err, "db-writer consumer panicked");
        }
    }
}

/// Waits until db-writer has written everything queued before now: a
/// barrier event goes through the bus into db-writer's own queue, and the
/// consumer signals when it gets there.
pub struct Drain {
    bus: Arc<dyn EventBus>,
    barriers: Arc<consumer::Barriers>,
}

impl Drain {
    /// `Ok` once every event queued before the call is in the store.
    pub async fn settle(&self, within: std::time::Duration) -> anyhow::Result<()> {
        let id = uuid::Uuid::new_v4().to_string();
        let reached = self.barriers.wait_for(&id);
        let body = serde_json::to_vec(&serde_json::json!({ "id": id }))?;
        let res = async {
            self.bus
                .publish(consumer::BARRIER_KEY, body)
                .await
                .context("cannot publish a drain barrier")?;
            tokio::time::timeout(within, reached)
                .await
                .context("the queue did not drain in time")?
                .context("db-writer's consumer stopped")
        }
        .await;
        if res.is_err() {
            self.barriers.cancel(&id);
        }
        res
    }
}

struct StoreCheck(Arc<dyn ChatStore>);

#[async_trait]
impl ReadyCheck for StoreCheck {
    fn name(&self) -> &str {
        "chat-store"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}
