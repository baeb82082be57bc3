//! file-service as its own process.
//!
//! Configuration: `PARLEY_FILE_SERVICE_ADDR` (default 127.0.0.1:8084),
//! `PARLEY_DATA_DIR` (default `./data`), the `PARLEY_FILES_*` and
//! `PARLEY_S3_*` variables (see [`file_service::FilesConfig`]). Tokens are
//! verified with the JWKS in `<data dir>/jwks.json` (written by the
//! standalone server or copied from auth's `/api/auth/jwks.json`).
//!
//! The internal route `/internal/files/resolve` is served here too: the
//! ingress never routes `/internal/`.

use std::sync::Arc;

use anyhow::Context;
use service_kit::bus::{EventBus, InProcessBus};
use service_kit::config::{Env, SystemEnv};
use service_kit::ops::Ops;
use service_kit::token::{Jwks, Verifier};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = SystemEnv;
    service_kit::telemetry::init(&env)?;
    let addr = env.string_or("PARLEY_FILE_SERVICE_ADDR", "127.0.0.1:8084");
    let data_dir: std::path::PathBuf = env.string_or("PARLEY_DATA_DIR", "./data").into();
    let config = file_service::FilesConfig::from_env(&env, data_dir.clone())?;
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
    let deps = file_service::FileServiceDeps {
        bus: bus.clone(),
        verifier,
    };
    let app = file_service::FileServiceApp::build(config, deps, &registry).await?;
    let ops = Ops::new(registry.clone()).check(app.ready_check());
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
