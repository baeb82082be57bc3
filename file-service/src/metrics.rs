//! The file service's Prometheus metrics.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use service_kit::ops::register;

/// Counters of uploads and downloads.
#[derive(Clone, Debug)]
pub struct Metrics {
    uploads: IntCounterVec,
    upload_bytes: IntCounter,
    downloads: IntCounterVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &Registry) -> Self {
        let vec = |n: &str, h: &str, label: &str| {
            register(
                registry,
                IntCounterVec::new(Opts::new(n, h), &[label]).expect("valid metric"),
            )
        };
        Self {
            uploads: vec(
                "parley_files_uploads_total",
                "Upload attempts by outcome (ok or an error code)",
                "outcome",
            ),
            upload_bytes: register(
                registry,
                IntCounter::new("parley_files_upload_bytes_total", "Bytes stored by uploads")
                    .expect("valid metric"),
            ),
            downloads: vec(
                "parley_files_downloads_total",
                "Downloads by kind (full, range, redirect)",
                "kind",
            ),
        }
    }

    pub(crate) fn upload(&self, outcome: &str) {
        self.uploads.with_label_values(&[outcome]).inc();
    }

    pub(crate) fn uploaded(&self, bytes: u64) {
        self.upload_bytes.inc_by(bytes);
    }

    pub(crate) fn download(&self, kind: &str) {
        self.downloads.with_label_values(&[kind]).inc();
    }
}
