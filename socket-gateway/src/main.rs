//! A gateway as its own process, one of many behind the ingress.
//!
//! Configuration (besides the limits of [`socket_gateway::GatewayConfig`]):
//! - `PARLEY_GATEWAY_ADDR` (default 127.0.0.1:8080);
//! - `PARLEY_REDIS_URL`, `PARLEY_REDIS_PREFIX`: the adapter and the shared
//!   cluster state (required: gateways that share nothing are not a cluster);
//! - `PARLEY_AMQP_URL`, `PARLEY_AMQP_NAMESPACE`: the event bus (required);
//! - `PARLEY_DB_WRITER_URL` (default http://127.0.0.1:8082): db-writer's
//!   internal read API;
//! - `PARLEY_FILE_SERVICE_URL` (default http://127.0.0.1:8084): resolves
//!   message attachments;
//! - `PARLEY_JWKS_URL` (e.g. http://127.0.0.1:8081/api/auth/jwks.json) or
//!   `<PARLEY_DATA_DIR>/jwks.json`: the keys tokens are checked with.

use std::sync::Arc;

use anyhow::Context;
use service_kit::bus::Durability;
use service_kit::config::{ConfigError, Env, SystemEnv};
use service_kit::ops::Ops;
use socket_gateway::directory::HttpDirectory;
use socket_gateway::redis::RedisConfig;
use socket_gateway::{Gateway, GatewayConfig, GatewayDeps};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = SystemEnv;
    service_kit::telemetry::init(&env)?;
    let addr = env.string_or("PARLEY_GATEWAY_ADDR", "127.0.0.1:8080");
    let config = GatewayConfig::from_env(&env)?;
    let redis_cfg = RedisConfig::from_env(&env)?.ok_or_else(|| {
        ConfigError::new(
            "PARLEY_REDIS_URL",
            "",
            "required for a gateway process (the standalone server runs a single gateway without it)",
        )
    })?;
    let Some(amqp) = service_kit::amqp::AmqpConfig::from_env(&env)? else {
        return Err(ConfigError::new(
            "PARLEY_AMQP_URL",
            "",
            "required for a gateway process: messages are made durable through RabbitMQ",
        )
        .into());
    };
    let data_dir: std::path::PathBuf = env.string_or("PARLEY_DATA_DIR", "./data").into();
    let db_writer = env.string_or("PARLEY_DB_WRITER_URL", "http://127.0.0.1:8082");
    let directory = Arc::new(HttpDirectory::new(&db_writer).context("PARLEY_DB_WRITER_URL")?);
    let files = env.string_or("PARLEY_FILE_SERVICE_URL", "http://127.0.0.1:8084");
    let attachments = Arc::new(
        socket_gateway::attachments::HttpAttachmentDirectory::new(&files)
            .context("PARLEY_FILE_SERVICE_URL")?,
    );

    let bus = service_kit::runtime::event_bus(Some(amqp)).await?;
    let redis = socket_gateway::redis::connect(&redis_cfg, config.replay_buffer).await?;
    let verifier = service_kit::runtime::verifier(&env, &data_dir).await?;
    let cluster = redis.cluster.clone();
    let registry = prometheus::Registry::new();
    let gateway = Gateway::build_clustered(
        config,
        GatewayDeps {
            bus: bus.clone(),
            verifier,
            directory,
            attachments,
            cluster: cluster.clone(),
            feed: Durability::Transient,
        },
        &registry,
        redis,
    )
    .await?;
    let ops = Ops::new(registry.clone())
        .check(Arc::new(service_kit::ops::BusCheck(bus.clone())))
        .check(Arc::new(socket_gateway::redis::RedisCheck(cluster.clone())));
    let router = gateway.wrap(service_kit::ops::with_error_handling(
        ops.router(),
        &registry,
    ));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, gateway = %cluster.gateway_id(), "socket-gateway listening");
    let gateway = Arc::new(gateway);
    let closing = gateway.clone();
    service_kit::serve(listener, router, async move {
        service_kit::shutdown::signal().await;
        tracing::info!("shutting down: disconnecting sockets");
        closing.close().await;
    })
    .await?;
    cluster.goodbye().await;
    bus.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}
