//! The auth service as its own process.
//!
//! Configuration: `PARLEY_AUTH_ADDR` (default 127.0.0.1:8081),
//! `PARLEY_DATA_DIR` (default `./data`, holds the signing keys), the
//! settings of [`auth::AuthConfig`] (users on MongoDB when
//! `PARLEY_MONGODB_URI` is set), and the bus (RabbitMQ when
//! `PARLEY_AMQP_URL` is set).

use std::sync::Arc;

use anyhow::Context;
use service_kit::config::{Env, SystemEnv};
use service_kit::ops::Ops;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init(&SystemEnv)?;
    let env = SystemEnv;
    let addr = env.string_or("PARLEY_AUTH_ADDR", "127.0.0.1:8081");
    let data_dir = env.string_or("PARLEY_DATA_DIR", "./data").into();
    let config = auth::AuthConfig::from_env(&env, data_dir)?;
    let amqp = service_kit::amqp::AmqpConfig::from_env(&env)?;
    let registry = prometheus::Registry::new();
    let bus = service_kit::runtime::event_bus(amqp).await?;
    let app = auth::AuthApp::build(config, bus.clone(), &registry).await?;
    let ops = Ops::new(registry.clone())
        .check(app.ready_check())
        .check(Arc::new(service_kit::ops::BusCheck(bus.clone())));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "auth listening");
    service_kit::serve(
        listener,
        service_kit::ops::with_error_handling(app.router().merge(ops.router()), &registry),
        service_kit::shutdown::signal(),
    )
    .await?;
    bus.close().await;
    Ok(())
}
