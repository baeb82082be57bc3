//! file-service: chat attachments on S3 (MinIO) or local disk.
//!
//! This crate owns file metadata and objects: streamed, size-limited,
//! access-checked uploads and downloads. Today it holds the service's process shell (configuration and
//! the operations endpoints); uploads and downloads are the file-service
//! issue's work and will live in this crate.

/// The service's name on the bus and in logs.
pub const SOURCE: &str = "file-service";

/// The file service's operations router: `/healthz`, `/readyz`, `/metrics`.
pub fn ops_router(registry: prometheus::Registry) -> axum::Router {
    service_kit::ops::Ops::new(registry).router()
}
