//! db-writer as its own process.
//!
//! Configuration: `PARLEY_DB_WRITER_ADDR` (default 127.0.0.1:8082),
//! `PARLEY_DATA_DIR` (default `./data`), `PARLEY_MONGODB_URI` and
//! `PARLEY_MONGODB_DATABASE` (MongoDB instead of the embedded database),
//! `PARLEY_AMQP_URL` (RabbitMQ instead of an in-process bus). Tokens are
//! verified with auth's JWKS from `PARLEY_JWKS_URL`, else
//! `<data dir>/jwks.json`.

use std::sync::Arc;

use anyhow::Context;
use service_kit::config::{Env, SystemEnv};
use service_kit::ops::Ops;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init(&SystemEnv)?;
    let env = SystemEnv;
    let addr = env.string_or("PARLEY_DB_WRITER_ADDR", "127.0.0.1:8082");
    let data_dir: std::path::PathBuf = env.string_or("PARLEY_DATA_DIR", "./data").into();
    // Every setting is read before any connection is made.
    let amqp = service_kit::amqp::AmqpConfig::from_env(&env)?;
    let mongo = service_kit::mongo::MongoConfig::from_env(&env)?;
    let verifier = service_kit::runtime::verifier(&env, &data_dir).await?;
    let registry = prometheus::Registry::new();
    let bus = service_kit::runtime::event_bus(amqp).await?;
    let config = db_writer::DbWriterConfig {
        data_dir,
        batch: Default::default(),
        mongo,
    };
    let app = db_writer::DbWriterApp::build(config, bus.clone(), verifier, &registry).await?;
    let ops = Ops::new(registry.clone())
        .check(app.ready_check())
        .check(Arc::new(service_kit::ops::BusCheck(bus.clone())));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "db-writer listening");
    service_kit::serve(
        listener,
        service_kit::ops::with_error_handling(
            app.router()
                .merge(app.internal_router())
                .merge(ops.router()),
            &registry,
        ),
        service_kit::shutdown::signal(),
    )
    .await?;
    bus.close().await;
    app.drained().await;
    Ok(())
}
