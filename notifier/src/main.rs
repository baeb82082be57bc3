//! The notifier process: `PARLEY_NOTIFIER_ADDR` (default 127.0.0.1:8083).

use anyhow::Context;
use service_kit::config::{Env, SystemEnv};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = SystemEnv;
    service_kit::telemetry::init(&env)?;
    let addr = env.string_or("PARLEY_NOTIFIER_ADDR", "127.0.0.1:8083");
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "notifier listening");
    let router = notifier::ops_router(prometheus::Registry::new());
    service_kit::serve(listener, router, service_kit::shutdown::signal()).await?;
    Ok(())
}
