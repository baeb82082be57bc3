//! file-service integration tests: the process shell serves its operations
//! endpoints on port 0 (the service's own API arrives with its issue).

#[tokio::test]
async fn serves_health_readiness_and_metrics() {
    let addr =
        service_kit::testing::spawn(file_service::ops_router(prometheus::Registry::new())).await;
    service_kit::testing::assert_ops_endpoints(addr).await;
}
