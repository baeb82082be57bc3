//! file-service integration tests: the conformance suites of both ports on
//! both implementations, the HTTP API on local disk and on a real
//! S3-compatible server (s3s + s3s-fs in-process, checking signatures),
//! and the process shell's operations endpoints.

// Tests and their helpers fail by panicking.
#![allow(clippy::unwrap_used)]

mod api;
mod conformance;
mod helpers;
mod s3;
mod s3_server;
mod signer;

#[tokio::test]
async fn serves_health_readiness_and_metrics() {
    let addr =
        service_kit::testing::spawn(file_service::ops_router(prometheus::Registry::new())).await;
    service_kit::testing::assert_ops_endpoints(addr).await;
}
