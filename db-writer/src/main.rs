//! db-writer as its own process.
//!
//! Configuration: `PARLEY_DB_WRITER_ADDR` (default 127.0.0.1:8082),
//! `PARLEY_DATA_DIR` (default `./data`). Tokens are verified with the JWKS
//! in `<data dir>/jwks.json` (written by the standalone server or copied
//! from auth's `/api/auth/jwks.json`).

use std::sync::Arc;

use anyhow::Context;
use service_kit::bus::{EventBus, InProcessBus};
use service_kit::config::{Env, SystemEnv};
use service_kit::ops::Ops;
use service_kit::token::{Jwks, Verifier};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init(&SystemEnv)?;
    let env = SystemEnv;
    let addr = env.string_or("PARLEY_DB_WRITER_ADDR", "127.0.0.1:8082");
    let data_dir: std::path::PathBuf = env.string_or("PARLEY_DATA_DIR", "./data").into();
    let jwks_path = data_dir.join("jwks.json");
    let jwks: Jwks = serde_json::from_slice(
        &std::fs::read(&jwks_path)
            .with_context(|| format!("cannot read {}", jwks_path.display()))?,
    )
    .with_context(|| format!("{} is not a JWKS", jwks_path.display()))?;
    let verifier = Arc::new(Verifier::from_jwks(&jwks).context("invalid JWKS")?);
    let registry = prometheus::Registry::new();
    // The production bus (RabbitMQ) arrives with the distributed deployment.
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::default());
    let config = db_writer::DbWriterConfig {
        data_dir,
        batch: Default::default(),
    };
    let app = db_writer::DbWriterApp::build(config, bus.clone(), verifier, &registry).await?;
    let ops = Ops::new(registry.clone()).check(app.ready_check());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "db-writer listening");
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
