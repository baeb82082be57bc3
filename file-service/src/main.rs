//! file-service as its own process.
//!
//! Configuration: `PARLEY_FILE_SERVICE_ADDR` (default 127.0.0.1:8084),
//! `PARLEY_DATA_DIR` (default `./data`), the `PARLEY_FILES_*` and
//! `PARLEY_S3_*` variables (see [`file_service::FilesConfig`]),
//! `PARLEY_MONGODB_URI` (MongoDB instead of the embedded metadata
//! database) and `PARLEY_AMQP_URL` (RabbitMQ instead of an in-process bus).
//! Tokens are verified with auth's JWKS from `PARLEY_JWKS_URL`, else
//! `<data dir>/jwks.json`.
//!
//! The internal route `/internal/files/resolve` (for gateways) is served
//! here too: the ingress never routes `/internal/`.

use std::sync::Arc;

use anyhow::Context;
use service_kit::config::{Env, SystemEnv};
use service_kit::ops::Ops;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = SystemEnv;
    service_kit::telemetry::init(&env)?;
    let addr = env.string_or("PARLEY_FILE_SERVICE_ADDR", "127.0.0.1:8084");
    let data_dir: std::path::PathBuf = env.string_or("PARLEY_DATA_DIR", "./data").into();
    // Every setting is read before any connection is made.
    let config = file_service::FilesConfig::from_env(&env, data_dir.clone())?;
    let amqp = service_kit::amqp::AmqpConfig::from_env(&env)?;
    let verifier = service_kit::runtime::verifier(&env, &data_dir).await?;
    let registry = prometheus::Registry::new();
    let bus = service_kit::runtime::event_bus(amqp).await?;
    let deps = file_service::FileServiceDeps {
        bus: bus.clone(),
        verifier,
    };
    let app = file_service::FileServiceApp::build(config, deps, &registry).await?;
    let ops = Ops::new(registry.clone())
        .check(app.ready_check())
        .check(Arc::new(service_kit::ops::BusCheck(bus.clone())));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "file-service listening");
    let routes = app
        .router()
        .merge(app.internal_router())
        .merge(ops.router());
    service_kit::serve(
        listener,
        service_kit::ops::with_error_handling(routes, &registry),
        service_kit::shutdown::signal(),
    )
    .await?;
    bus.close().await;
    Ok(())
}
