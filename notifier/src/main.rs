//! The notifier process.
//!
//! Configuration: `PARLEY_NOTIFIER_ADDR` (default 127.0.0.1:8083),
//! `PARLEY_DATA_DIR` (default `./data`) and the `PARLEY_VAPID_*` /
//! `PARLEY_PUSH_*` settings of [`notifier::NotifierConfig`]. The store is
//! MongoDB when `PARLEY_MONGODB_URI` is set, else `<data dir>/notifier.db`;
//! the bus is RabbitMQ when `PARLEY_AMQP_URL` is set; who is online is read
//! from the gateways' Redis (`PARLEY_REDIS_URL`, `PARLEY_REDIS_PREFIX`;
//! unset, nobody counts as online and every member with a subscription
//! gets the push). Tokens are verified with auth's JWKS from
//! `PARLEY_JWKS_URL`, else `<data dir>/jwks.json`.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use service_kit::config::{Env, SystemEnv};
use service_kit::ops::Ops;
use service_kit::presence::{PresenceError, PresenceView};
use shared_models::UserId;

/// Without the gateways' Redis nobody is known to be online: everyone with
/// a subscription gets the push.
struct NobodyOnline;

#[async_trait]
impl PresenceView for NobodyOnline {
    async fn is_online(&self, _user: UserId) -> Result<bool, PresenceError> {
        Ok(false)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = SystemEnv;
    service_kit::telemetry::init(&env)?;
    let addr = env.string_or("PARLEY_NOTIFIER_ADDR", "127.0.0.1:8083");
    let data_dir: std::path::PathBuf = env.string_or("PARLEY_DATA_DIR", "./data").into();
    let config = notifier::NotifierConfig::from_env(&env, data_dir.clone())?;
    let mongo = service_kit::mongo::MongoConfig::from_env(&env)?;
    let amqp = service_kit::amqp::AmqpConfig::from_env(&env)?;
    let redis_url = env.get("PARLEY_REDIS_URL").filter(|u| !u.is_empty());
    let redis_prefix = env.string_or("PARLEY_REDIS_PREFIX", "parley");
    let bus = service_kit::runtime::event_bus(amqp).await?;
    let presence: Arc<dyn PresenceView> = match redis_url {
        Some(url) => {
            Arc::new(service_kit::presence::RedisPresence::connect(&url, &redis_prefix).await?)
        }
        None => Arc::new(NobodyOnline),
    };
    let verifier = service_kit::runtime::verifier(&env, &data_dir).await?;
    let registry = prometheus::Registry::new();
    let deps = notifier::NotifierDeps {
        bus: bus.clone(),
        verifier,
        presence,
    };
    let mut ops =
        Ops::new(registry.clone()).check(Arc::new(service_kit::ops::BusCheck(bus.clone())));
    let app = match mongo {
        Some(cfg) => {
            let db = service_kit::mongo::connect(&cfg).await?;
            ops = ops.check(Arc::new(service_kit::mongo::MongoCheck(db.clone())));
            let store = notifier::mongo::MongoSubscriptionStore::open(db)
                .await
                .context("cannot open the notifier's MongoDB store")?;
            notifier::NotifierApp::build_with_store(config, deps, Arc::new(store), &registry)
                .await?
        }
        None => notifier::NotifierApp::build(config, deps, &registry).await?,
    };
    let ops = ops.check(app.ready_check());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "notifier listening");
    service_kit::serve(
        listener,
        service_kit::ops::with_error_handling(app.router().merge(ops.router()), &registry),
        service_kit::shutdown::signal(),
    )
    .await?;
    bus.close().await;
    app.drained().await;
    Ok(())
}
