//! The file-service process: `PARLEY_FILE_SERVICE_ADDR` (default 127.0.0.1:8084).

use anyhow::Context;
use service_kit::config::{Env, SystemEnv};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = SystemEnv;
    service_kit::telemetry::init(&env)?;
    let addr = env.string_or("PARLEY_FILE_SERVICE_ADDR", "127.0.0.1:8084");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "file-service listening");
    let router = file_service::ops_router(prometheus::Registry::new());
    service_kit::serve(listener, router, service_kit::shutdown::signal()).await?;
    Ok(())
}
