//! db-writer's Prometheus metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};
use service_kit::ops::register;

/// Metrics of the consumer.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// New message rows.
    pub messages_written: IntCounter,
    /// Redelivered messages that were already stored.
    pub duplicates: IntCounter,
    /// Messages refused because another message holds their seq.
    pub conflicts: IntCounter,
    /// Events sent to the dead-letter queue.
    pub dead_lettered: IntCounter,
    /// Failed batch writes (requeued).
    pub write_failures: IntCounter,
    /// Events per batch.
    pub batch_size: Histogram,
    /// Seconds per batch write.
    pub write_seconds: Histogram,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> Self {
        let c = |n: &str, h: &str| register(registry, IntCounter::new(n, h).expect("valid metric"));
        let h = |n: &str, help: &str, buckets: Vec<f64>| {
            register(
                registry,
                Histogram::with_opts(HistogramOpts::new(n, help).buckets(buckets))
                    .expect("valid metric"),
            )
        };
        Self {
            messages_written: c("parley_db_messages_written_total", "Messages stored"),
            duplicates: c(
                "parley_db_duplicate_messages_total",
                "Redelivered messages already stored",
            ),
            conflicts: c(
                "parley_db_sequence_conflicts_total",
                "Messages refused: their seq was taken",
            ),
            dead_lettered: c(
                "parley_db_dead_lettered_total",
                "Unparseable events dead-lettered",
            ),
            write_failures: c(
                "parley_db_write_failures_total",
                "Batch writes that failed and were requeued",
            ),
            batch_size: h(
                "parley_db_batch_size",
                "Events per batch",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
            ),
            write_seconds: h(
                "parley_db_batch_write_seconds",
                "Time to write one batch",
                prometheus::exponential_buckets(0.0001, 2.0, 16).expect("valid buckets"),
            ),
        }
    }
}
