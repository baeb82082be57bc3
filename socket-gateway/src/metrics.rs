//! The gateway's Prometheus metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use service_kit::ops::register;

/// Gateway metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Sockets connected now.
    pub connected: IntGauge,
    /// Messages accepted (made durable and broadcast).
    pub messages: IntCounter,
    /// Seconds from receiving `message:send` to its ack.
    pub ack_seconds: Histogram,
    /// Error acks and refused handshakes, by code.
    pub errors: IntCounterVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> Self {
        Self {
            connected: register(
                registry,
                IntGauge::new("parley_gateway_connected_sockets", "Sockets connected now")
                    .expect("valid metric"),
            ),
            messages: register(
                registry,
                IntCounter::new("parley_gateway_messages_total", "Messages accepted")
                    .expect("valid metric"),
            ),
            ack_seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "parley_gateway_ack_seconds",
                        "Time from message:send to its ack",
                    )
                    .buckets(
                        prometheus::exponential_buckets(0.0005, 2.0, 14).expect("valid buckets"),
                    ),
                )
                .expect("valid metric"),
            ),
            errors: register(
                registry,
                IntCounterVec::new(
                    Opts::new("parley_gateway_errors_total", "Errors by code"),
                    &["code"],
                )
                .expect("valid metric"),
            ),
        }
    }
}
