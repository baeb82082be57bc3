//! auth's Prometheus metrics.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use service_kit::ops::register;

/// Counters for the auth service.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Users registered.
    pub registrations: IntCounter,
    /// Login attempts by outcome (`ok`, `failed`, `throttled`).
    pub logins: IntCounterVec,
    /// Refresh tokens presented twice (family revoked).
    pub refresh_reuse: IntCounter,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> Self {
        let c = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        Self {
            registrations: register(
                registry,
                c("parley_auth_registrations_total", "Users registered"),
            ),
            logins: register(
                registry,
                IntCounterVec::new(
                    Opts::new("parley_auth_logins_total", "Login attempts by outcome"),
                    &["outcome"],
                )
                .expect("valid metric"),
            ),
            refresh_reuse: register(
                registry,
                c(
                    "parley_auth_refresh_reuse_total",
                    "Spent refresh tokens presented again",
                ),
            ),
        }
    }
}
