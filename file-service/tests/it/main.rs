//! file-service integration tests: the process shell serves its operations
//! endpoints on port 0 (the service's own API arrives with its issue).

// Tests fail by panicking.
#![allow(clippy::unwrap_used)]

use service_kit::testing::{http, spawn};

#[tokio::test]
async fn serves_health_readiness_and_metrics() {
    let addr = spawn(file_service::ops_router(prometheus::Registry::new())).await;
    assert_eq!(http(addr, "GET", "/healthz", None, None).await.status, 200);
    assert_eq!(http(addr, "GET", "/readyz", None, None).await.status, 200);
    let metrics = http(addr, "GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}
