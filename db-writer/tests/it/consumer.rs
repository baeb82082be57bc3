//! The consumer: batches, idempotency, dead letters, durability.

use std::sync::Arc;

use service_kit::bus::{self, EventBus, InProcessBus};
use shared_models::{RoomId, UserId, UserRef, UserRegistered};

async fn app(dir: &std::path::Path, bus: Arc<InProcessBus>) -> db_writer::DbWriterApp {
    let keys = auth::keys::KeySet::load_or_generate(&dir.join("keys")).unwrap();
    let verifier = Arc::new(service_kit::token::Verifier::from_jwks(&keys.jwks()).unwrap());
    db_writer::DbWriterApp::build(
        db_writer::DbWriterConfig {
            data_dir: dir.into(),
            batch: Default::default(),
            mongo: None,
        },
        bus,
        verifier,
        &prometheus::Registry::new(),
    )
    .await
    .unwrap()
}

use db_writer::conformance::sample_message as message;

/// A db-writer on a fresh directory and bus, with one room owned by a user.
async fn setup() -> (
    tempfile::TempDir,
    Arc<InProcessBus>,
    db_writer::DbWriterApp,
    UserId,
    RoomId,
) {
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(InProcessBus::default());
    let app = app(dir.path(), bus.clone()).await;
    let u = UserId::new();
    let room = app
        .store()
        .create_group("r".into(), u, vec![])
        .await
        .unwrap()
        .id;
    (dir, bus, app, u, room)
}

#[tokio::test]
async fn concurrent_publishes_are_batched_and_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(InProcessBus::default());
    let app = app(dir.path(), bus.clone()).await;
    let user = UserRef {
        id: UserId::new(),
        username: "w".into(),
    };
    bus::publish(
        bus.as_ref(),
        "test",
        UserRegistered {
            id: user.id,
            username: user.username.clone(),
        },
    )
    .await
    .unwrap();
    let room = app
        .store()
        .create_group("r".into(), user.id, vec![])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for seq in 1..=200 {
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            bus::publish(bus.as_ref(), "test", message(room.id, seq, user.id)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Every publish returned: every message is stored.
    assert_eq!(
        app.store().after(room.id, 0, 1000).await.unwrap().len(),
        200
    );
    assert_eq!(
        app.store()
            .membership(room.id, user.id)
            .await
            .unwrap()
            .unwrap()
            .last_seq,
        200
    );
}

#[tokio::test]
async fn redelivery_is_harmless_and_poison_is_dead_lettered() {
    let (_dir, bus, app, u, room) = setup().await;
    let m = message(room, 1, u);
    bus::publish(bus.as_ref(), "test", m.clone()).await.unwrap();
    bus::publish(bus.as_ref(), "test", m.clone()).await.unwrap();
    assert_eq!(app.store().history(room, None, 10).await.unwrap(), vec![m]);

    let err = bus
        .publish("chat.message.created", b"{not json".to_vec())
        .await;
    assert!(err.is_err());
    let wrong_shape = br#"{"v":1,"event":"chat.message.created","id":"018f0000-0000-7000-8000-000000000000","ts":"2026-01-01T00:00:00Z","source":"t","data":{"room":1}}"#;
    assert!(
        bus.publish("chat.message.created", wrong_shape.to_vec())
            .await
            .is_err()
    );
    assert_eq!(bus.dead_letters().len(), 2);
    // The consumer is still alive after poison.
    bus::publish(bus.as_ref(), "test", message(room, 2, u))
        .await
        .unwrap();
    assert_eq!(app.store().history(room, None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn committed_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let u = UserId::new();
    let room = {
        let bus = Arc::new(InProcessBus::default());
        let app = app(dir.path(), bus.clone()).await;
        let room = app
            .store()
            .create_group("r".into(), u, vec![])
            .await
            .unwrap();
        bus::publish(bus.as_ref(), "test", message(room.id, 1, u))
            .await
            .unwrap();
        bus.close().await;
        app.drained().await;
        room
    };
    let app = app(dir.path(), Arc::new(InProcessBus::default())).await;
    assert_eq!(
        app.store().history(room.id, None, 10).await.unwrap().len(),
        1
    );
    assert_eq!(
        app.store().room(room.id).await.unwrap().unwrap().members,
        vec![u]
    );
}

#[tokio::test]
async fn a_message_clashing_with_a_stored_seq_is_refused_not_acked() {
    let (_dir, bus, app, u, room) = setup().await;
    let first = message(room, 1, u);
    bus::publish(bus.as_ref(), "test", first.clone())
        .await
        .unwrap();
    let clash = bus::publish(bus.as_ref(), "test", message(room, 1, u)).await;
    assert!(
        clash.is_err(),
        "a message that was not stored must not be confirmed"
    );
    assert_eq!(
        app.store().history(room, None, 10).await.unwrap(),
        vec![first]
    );
}
