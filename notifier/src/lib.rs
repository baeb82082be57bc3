//! notifier: web push to room members who are offline.
//!
//! This crate owns push subscriptions and sends VAPID web push for new
//! messages. Today it holds the service's process shell (configuration and
//! the operations endpoints); subscriptions and sending are the notifier
//! issue's work and will live in this crate.

/// The service's name on the bus and in logs.
pub const SOURCE: &str = "notifier";

/// The notifier's operations router: `/healthz`, `/readyz`, `/metrics`.
pub fn ops_router(registry: prometheus::Registry) -> axum::Router {
    service_kit::ops::Ops::new(registry).router()
}
