//! service-kit integration tests: the bus conformance suite on the
//! embedded bus, and the operations endpoints.

// Tests and their helpers fail by panicking.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use service_kit::amqp::{AmqpBus, AmqpConfig};
use service_kit::bus::{Durability, EventBus, InProcessBus, Settle};
use service_kit::bus_conformance::Durable;
use service_kit::ops::{Ops, ReadyCheck};
use service_kit::testing;
use tower::ServiceExt;

#[tokio::test]
async fn in_process_bus_conforms() {
    service_kit::bus_conformance::run(
        || async { Arc::new(InProcessBus::default()) as Arc<dyn EventBus> },
        Durable::OnConsumerAck,
    )
    .await;
}

/// A RabbitMQ bus in a namespace of its own.
async fn amqp_bus() -> AmqpBus {
    let cfg = AmqpConfig::new(testing::amqp_url(), testing::unique_name("t"));
    AmqpBus::connect(cfg).await.unwrap()
}

#[tokio::test]
async fn rabbitmq_bus_conforms() {
    service_kit::bus_conformance::run(
        || async { Arc::new(amqp_bus().await) as Arc<dyn EventBus> },
        Durable::OnBrokerConfirm,
    )
    .await;
}

#[tokio::test]
async fn rabbitmq_refuses_unroutable_events() {
    let bus = amqp_bus().await;
    let err = bus
        .publish("nobody.listens", b"{}".to_vec())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no queue is bound"), "{err}");
}

#[tokio::test]
async fn rabbitmq_dead_letters_land_in_the_dead_letter_queue() {
    let bus = amqp_bus().await;
    let mut sub = bus
        .subscribe("q", &["x.#"], Durability::Durable)
        .await
        .unwrap();
    bus.publish("x.y", b"poison".to_vec()).await.unwrap();
    sub.next().await.unwrap().settle(Settle::DeadLetter).await;
    // The dead-letter queue is an ordinary queue of the namespace.
    let dead = bus.config().dead_letter();
    let ns = format!("{}.", bus.config().namespace);
    let depth = testing::wait_until(std::time::Duration::from_secs(5), || async {
        bus.queue_depth(dead.strip_prefix(&ns).unwrap())
            .await
            .filter(|n| *n == 1)
    })
    .await;
    assert_eq!(depth, Some(1));
}

#[tokio::test]
async fn unreachable_rabbitmq_fails_at_connect() {
    let port = testing::free_port();
    let cfg = AmqpConfig::new(format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), "t");
    let err = AmqpBus::connect(cfg).await.err().unwrap();
    assert!(format!("{err:#}").contains("unreachable"), "{err:#}");
}

#[tokio::test]
async fn in_process_bus_fails_publish_without_a_consumer() {
    let bus = InProcessBus::default();
    let sub = bus
        .subscribe("q", &["a.#"], service_kit::bus::Durability::Durable)
        .await
        .unwrap();
    drop(sub);
    assert!(
        bus.publish("a.b", b"{}".to_vec()).await.is_err(),
        "a durable queue without consumer must not swallow"
    );
}

struct Down;

#[async_trait::async_trait]
impl ReadyCheck for Down {
    fn name(&self) -> &str {
        "thing"
    }
    async fn check(&self) -> Result<(), String> {
        Err("unreachable".into())
    }
}

#[tokio::test]
async fn ops_endpoints_report_health_readiness_and_metrics() {
    let registry = prometheus::Registry::new();
    let counter = prometheus::IntCounter::new("parley_test_total", "test").unwrap();
    service_kit::ops::register(&registry, counter.clone()).inc();
    let ok = Ops::new(registry.clone()).router();
    let down = Ops::new(registry).check(Arc::new(Down)).router();
    let get = |r: axum::Router, path: &'static str| async move {
        let res = r
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        (
            status,
            String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
                .unwrap(),
        )
    };
    assert_eq!(get(ok.clone(), "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(ok.clone(), "/readyz").await.0, StatusCode::OK);
    let (st, body) = get(down, "/readyz").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("thing: unreachable"));
    let (st, body) = get(ok, "/metrics").await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains("parley_test_total 1"));
}

#[tokio::test]
async fn in_process_publish_fails_when_the_consumer_never_commits() {
    let bus = InProcessBus::default().with_redelivery_limit(std::time::Duration::from_millis(200));
    let mut sub = bus
        .subscribe("q", &["a.#"], service_kit::bus::Durability::Durable)
        .await
        .unwrap();
    let consumer = tokio::spawn(async move {
        let mut attempts = 0;
        while let Some(d) = sub.next().await {
            attempts += 1;
            d.settle(service_kit::bus::Settle::Requeue).await;
        }
        attempts
    });
    let res = bus.publish("a.b", b"{}".to_vec()).await;
    assert!(
        matches!(res, Err(service_kit::bus::BusError::Unavailable(_))),
        "{res:?}"
    );
    bus.close().await;
    assert!(
        consumer.await.unwrap() > 1,
        "the event was redelivered before giving up"
    );
}
