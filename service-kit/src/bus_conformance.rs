//! The [`EventBus`] conformance suite: what every bus implementation must
//! do. Each implementation's tests call [`run`] with a fresh bus whose
//! queue names are unique to the test.

// A test suite reports failure by panicking, like any test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::bus::{Durability, EventBus, Settle};

/// When a publish counts as durable, which differs by implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// Once every durable consumer committed it (the in-process bus, which
    /// has no storage of its own); a dead-lettered event fails the publish.
    OnConsumerAck,
    /// Once the broker confirmed it (RabbitMQ); a dead-lettered event goes
    /// to the dead-letter queue.
    OnBrokerConfirm,
}

/// Runs every check against buses made by `make` (one per check, since
/// some checks close their bus); panics on the first failure.
pub async fn run<F, Fut>(make: F, durable: Durable)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn EventBus>>,
{
    if durable == Durable::OnConsumerAck {
        publish_completes_after_the_consumer_acks(make().await).await;
        dead_lettered_events_fail_the_publish(make().await).await;
    }
    routing_follows_bindings(make().await).await;
    requeued_events_come_back(make().await).await;
    dead_lettered_events_are_not_redelivered(make().await).await;
    events_wait_in_a_durable_queue_without_consumer(make().await).await;
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

async fn dead_lettered_events_are_not_redelivered(bus: Arc<dyn EventBus>) {
    let mut sub = bus
        .subscribe("conf-poison", &["p.#"], Durability::Durable)
        .await
        .unwrap();
    let consumer = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(d) = sub.next().await {
            let body = d.payload.to_vec();
            let poison = body == b"poison";
            d.settle(if poison {
                Settle::DeadLetter
            } else {
                Settle::Ack
            })
            .await;
            seen.push(body);
            if !poison {
                return seen;
            }
        }
        seen
    });
    // The in-process bus refuses the poison publish; a broker confirms it.
    let _ = bus.publish("p.x", b"poison".to_vec()).await;
    bus.publish("p.x", b"fine".to_vec()).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), consumer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, vec![b"poison".to_vec(), b"fine".to_vec()]);
}

async fn events_wait_in_a_durable_queue_without_consumer(bus: Arc<dyn EventBus>) {
    let sub = bus
        .subscribe("conf-wait", &["w.#"], Durability::Durable)
        .await
        .unwrap();
    drop(sub);
    // Nobody consumes now: the broker keeps the event for the next consumer;
    // the in-process bus, which cannot keep it, refuses it.
    let kept = tokio::time::timeout(
        Duration::from_secs(5),
        bus.publish("w.x", b"later".to_vec()),
    )
    .await
    .unwrap()
    .is_ok();
    let mut again = bus
        .subscribe("conf-wait", &["w.#"], Durability::Durable)
        .await
        .unwrap();
    if kept {
        let d = tokio::time::timeout(Duration::from_secs(5), again.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&*d.payload, b"later");
        d.settle(Settle::Ack).await;
    }
    let consumer = tokio::spawn(async move {
        let d = again.next().await.unwrap();
        let body = d.payload.to_vec();
        d.settle(Settle::Ack).await;
        body
    });
    bus.publish("w.x", b"now".to_vec()).await.unwrap();
    assert_eq!(consumer.await.unwrap(), b"now");
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
