//! The notifier process: `PARLEY_NOTIFIER_ADDR` (default 127.0.0.1:8083).

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init();
    let addr = std::env::var("PARLEY_NOTIFIER_ADDR").unwrap_or_else(|_| "127.0.0.1:8083".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "notifier listening");
    let router = notifier::ops_router(prometheus::Registry::new());
    service_kit::serve(listener, router, service_kit::shutdown::signal()).await?;
    Ok(())
}
