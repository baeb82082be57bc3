//! What a service's `main` picks by configuration: the event bus, the
//! token verifier, and a small JSON client for the internal reads one
//! service makes of another. Every choice fails at start-up with a message
//! naming the variable or the unreachable backend.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::bus::{EventBus, InProcessBus};
use crate::config::Env;
use crate::token::{Jwks, Verifier};

/// RabbitMQ when configured (`AmqpConfig::from_env`, parsed before any
/// I/O), else an in-process bus.
pub async fn event_bus(amqp: Option<crate::amqp::AmqpConfig>) -> anyhow::Result<Arc<dyn EventBus>> {
    match amqp {
        Some(cfg) => {
            tracing::info!(url = %crate::amqp::redact(&cfg.url), "event bus: RabbitMQ");
            Ok(Arc::new(crate::amqp::AmqpBus::connect(cfg).await?))
        }
        None => {
            tracing::info!("event bus: in-process");
            Ok(Arc::new(InProcessBus::default()))
        }
    }
}

/// The verifier of access tokens: auth's JWKS from `PARLEY_JWKS_URL`
/// (retried for up to 30 s while auth starts), else from
/// `<data dir>/jwks.json`.
pub async fn verifier(env: &impl Env, data_dir: &std::path::Path) -> anyhow::Result<Arc<Verifier>> {
    let jwks: Jwks = match env.get("PARLEY_JWKS_URL").filter(|u| !u.is_empty()) {
        Some(url) => {
            let client = JsonClient::new(&url).context("PARLEY_JWKS_URL")?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                match client.get::<Jwks>("").await {
                    Ok(Some(jwks)) => break jwks,
                    Ok(None) => anyhow::bail!("PARLEY_JWKS_URL: {url} answered 404"),
                    Err(err) if tokio::time::Instant::now() < deadline => {
                        tracing::info!(error = %err, "waiting for auth's JWKS");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(err) => {
                        return Err(err.context(format!("PARLEY_JWKS_URL: cannot fetch {url}")));
                    }
                }
            }
        }
        None => {
            let path = data_dir.join("jwks.json");
            serde_json::from_slice(
                &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("{} is not a JWKS", path.display()))?
        }
    };
    Ok(Arc::new(
        Verifier::from_jwks(&jwks).context("invalid JWKS")?,
    ))
}

/// A keep-alive HTTP/1 client for another service's JSON endpoints.
#[derive(Clone)]
pub struct JsonClient {
    base: String,
    client: Client<HttpConnector, Full<bytes::Bytes>>,
}

impl JsonClient {
    /// A client for `base` (`http://host:port`, no trailing slash needed).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let uri: hyper::Uri = base
            .parse()
            .with_context(|| format!("{base} is not a URL"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "{base}: expected http://host:port"
        );
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    /// `GET base + path`: `Ok(None)` on 404, an error on any other failure.
    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> anyhow::Result<Option<T>> {
        let uri: hyper::Uri = format!("{}{path}", self.base).parse()?;
        let req = hyper::Request::get(uri)
            .header("accept", "application/json")
            .body(Full::default())?;
        let res = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .context("request timed out")??;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        if status == hyper::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        anyhow::ensure!(status.is_success(), "{path}: HTTP {status}");
        Ok(Some(
            serde_json::from_slice(&body).with_context(|| format!("{path}: bad JSON"))?,
        ))
    }
}
