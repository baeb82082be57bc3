//! The [`EventBus`] conformance suite: what every bus implementation must
//! do. Each implementation's tests call [`run`] with a fresh bus whose
//! queue names are unique to the test.

// A test suite reports failure by panicking, like any test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::bus::{Durability, EventBus, Settle};

/// Runs every check against buses made by `make` (one per check, since
/// some checks close their bus); panics on the first failure.
pub async fn run<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn EventBus>>,
{
    publish_completes_after_the_consumer_acks(make().await).await;
    routing_follows_bindings(make().await).await;
    requeued_events_come_back(make().await).await;
    dead_lettered_events_fail_the_publish(make().await).await;
    close_drains_then_ends_subscriptions(make().await).await;
}

async fn publish_completes_after_the_consumer_acks(bus: Arc<dyn EventBus>) {
    let mut sub = bus
        .subscribe("conf-ack", &["t.*.created"], Durability::Durable)
        .await
        .unwrap();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish("t.msg.created", b"{\"n\":1}".to_vec()).await })
    };
    let d = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.routing_key, "t.msg.created");
    assert_eq!(&*d.payload, b"{\"n\":1}");
    // An absence check: with the delivery unsettled, the publish must not
    // complete however long we look.
    let mut publisher = publisher;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut publisher)
            .await
            .is_err(),
        "publish must wait for the consumer's ack"
    );
    d.settle(Settle::Ack).await;
    publisher.await.unwrap().unwrap();
}

async fn routing_follows_bindings(bus: Arc<dyn EventBus>) {
    let mut chat = bus
        .subscribe("conf-chat", &["chat.#"], Durability::Durable)
        .await
        .unwrap();
    let mut auth = bus
        .subscribe("conf-auth", &["auth.user.*"], Durability::Durable)
        .await
        .unwrap();
    let consumer = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..2 {
            let d = chat.next().await.unwrap();
            got.push(d.routing_key.clone());
            d.settle(Settle::Ack).await;
        }
        let d = auth.next().await.unwrap();
        got.push(d.routing_key.clone());
        d.settle(Settle::Ack).await;
        got
    });
    bus.publish("chat.message.created", b"{}".to_vec())
        .await
        .unwrap();
    bus.publish("chat.receipt.read", b"{}".to_vec())
        .await
        .unwrap();
    bus.publish("auth.user.registered", b"{}".to_vec())
        .await
        .unwrap();
    // Bound by nobody: accepted and dropped, like an unroutable message.
    bus.publish("other.thing.happened", b"{}".to_vec())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), consumer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        vec![
            "chat.message.created",
            "chat.receipt.read",
            "auth.user.registered"
        ]
    );
}

async fn requeued_events_come_back(bus: Arc<dyn EventBus>) {
    let mut sub = bus
        .subscribe("conf-requeue", &["r.#"], Durability::Durable)
        .await
        .unwrap();
    let consumer = tokio::spawn(async move {
        let d = sub.next().await.unwrap();
        d.settle(Settle::Requeue).await;
        let d = sub.next().await.unwrap();
        let body = d.payload.to_vec();
        d.settle(Settle::Ack).await;
        body
    });
    bus.publish("r.x", b"again".to_vec()).await.unwrap();
    assert_eq!(consumer.await.unwrap(), b"again");
}

async fn dead_lettered_events_fail_the_publish(bus: Arc<dyn EventBus>) {
    let mut sub = bus
        .subscribe("conf-dlq", &["d.#"], Durability::Durable)
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Some(d) = sub.next().await {
            d.settle(Settle::DeadLetter).await;
        }
    });
    assert!(bus.publish("d.x", b"poison".to_vec()).await.is_err());
}

async fn close_drains_then_ends_subscriptions(bus: Arc<dyn EventBus>) {
    let mut sub = bus
        .subscribe("conf-close", &["c.#"], Durability::Durable)
        .await
        .unwrap();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish("c.x", b"last".to_vec()).await })
    };
    let d = sub.next().await.unwrap();
    bus.close().await;
    d.settle(Settle::Ack).await;
    publisher.await.unwrap().unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .is_none()
    );
    assert!(bus.publish("c.x", b"late".to_vec()).await.is_err());
    assert!(bus.health().await.is_err());
}
