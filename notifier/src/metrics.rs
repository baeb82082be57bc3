//! The notifier's Prometheus metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};
use service_kit::ops::register;

/// Counters and the latency histogram, registered once per registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Pushes handed to the send queue.
    pub queued: IntCounter,
    /// Pushes a push service accepted (2xx).
    pub sent: IntCounter,
    /// Pushes that failed for good (4xx other than 404/410/429, or retries exhausted).
    pub failed: IntCounter,
    /// Subscriptions deleted because the push service said 404/410.
    pub expired: IntCounter,
    /// Attempts that were retried (429, 5xx, timeouts, connection errors).
    pub retried: IntCounter,
    /// Pushes dead-lettered after their last retry.
    pub dead_lettered: IntCounter,
    /// Pushes dropped because the send queue was full.
    pub dropped: IntCounter,
    /// Time from the first attempt to the push service's final answer.
    pub send_seconds: Histogram,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::new(name, help).expect("valid metric name"),
    )
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> Self {
        Self {
            queued: counter(
                registry,
                "parley_push_queued_total",
                "Pushes queued for sending",
            ),
            sent: counter(
                registry,
                "parley_push_sent_total",
                "Pushes accepted by a push service",
            ),
            failed: counter(
                registry,
                "parley_push_failed_total",
                "Pushes that failed for good",
            ),
            expired: counter(
                registry,
                "parley_push_expired_total",
                "Subscriptions removed after 404/410 from the push service",
            ),
            retried: counter(
                registry,
                "parley_push_retried_total",
                "Push attempts retried",
            ),
            dead_lettered: counter(
                registry,
                "parley_push_dead_lettered_total",
                "Pushes given up after the last retry",
            ),
            dropped: counter(
                registry,
                "parley_push_dropped_total",
                "Pushes dropped because the send queue was full",
            ),
            send_seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "parley_push_send_seconds",
                        "Time to a push service's final answer, retries included",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
                    ]),
                )
                .expect("valid metric"),
            ),
        }
    }
}
