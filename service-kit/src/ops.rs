//! `/healthz`, `/readyz` and `/metrics`, the same for every service.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

/// A backend whose health decides readiness.
#[async_trait]
pub trait ReadyCheck: Send + Sync {
    /// A short name for the report (`bus`, `chat-store`, …).
    fn name(&self) -> &str;
    /// `Ok` when the backend answers.
    async fn check(&self) -> Result<(), String>;
}

/// What the operations endpoints report on.
#[derive(Clone, Default)]
pub struct Ops {
    registry: Registry,
    checks: Vec<Arc<dyn ReadyCheck>>,
}

impl Ops {
    /// Operations over a metrics registry.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            checks: Vec::new(),
        }
    }

    /// Adds a readiness check.
    pub fn check(mut self, check: Arc<dyn ReadyCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// The metrics registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(Arc::new(self))
    }
}

async fn readyz(State(ops): State<Arc<Ops>>) -> impl IntoResponse {
    let mut report = String::new();
    let mut ready = true;
    for c in &ops.checks {
        match c.check().await {
            Ok(()) => report.push_str(&format!("{}: ok\n", c.name())),
            Err(e) => {
                ready = false;
                report.push_str(&format!("{}: {e}\n", c.name()));
            }
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, report)
}

async fn metrics(State(ops): State<Arc<Ops>>) -> impl IntoResponse {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(err) = encoder.encode(&ops.registry.gather(), &mut buf) {
        tracing::error!(error = %err, "cannot encode metrics");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buf,
    )
}

/// Wraps a router so that every error response it gives is counted by
/// code in `parley_http_errors_total`, and unknown routes and methods
/// answer in the protocol's error shape.
pub fn with_error_handling(router: Router, registry: &Registry) -> Router {
    let errors = register(
        registry,
        prometheus::IntCounterVec::new(
            prometheus::Opts::new("parley_http_errors_total", "HTTP error responses by code"),
            &["code"],
        )
        .expect("valid metric"),
    );
    router
        .fallback(|| async { crate::ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            crate::ApiError::new(
                shared_models::ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let errors = errors.clone();
                async move {
                    let res = next.run(req).await;
                    if let Some(code) = res.extensions().get::<shared_models::ErrorCode>() {
                        errors.with_label_values(&[code.as_str()]).inc();
                    }
                    res
                }
            },
        ))
}

/// Registers a collector, tolerating a second registration of the same
/// metric (services composed in one process share a registry).
pub fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    if let Err(err) = registry.register(Box::new(c.clone())) {
        tracing::debug!(error = %err, "metric already registered");
    }
    c
}

/// `/readyz` check: the event bus takes publishes.
pub struct BusCheck(pub std::sync::Arc<dyn crate::bus::EventBus>);

#[async_trait::async_trait]
impl ReadyCheck for BusCheck {
    fn name(&self) -> &str {
        "event-bus"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.health().await.map_err(|e| e.to_string())
    }
}
