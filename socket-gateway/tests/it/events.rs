//! Messages, typing, receipts, history and sync.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use service_kit::testing::WAIT;

use crate::helpers::*;

#[tokio::test]
async fn message_is_acked_durable_broadcast_and_idempotent() {
    let gw = spawn_gateway().await;
    let (a, b) = (gw.user().await, gw.user().await);
    let room = gw.room(&[&a, &b]).await;
    let (ca, ca2, cb) = (
        gw.connect(&a).await,
        gw.connect(&a).await,
        gw.connect(&b).await,
    );
    for c in [&ca, &ca2, &cb] {
        let ack = c.emit_ack("room:join", json!({ "room": room })).await;
        assert_eq!(ok(&ack)["last_seq"], 0);
    }
    let req = send(room, "hello");
    let ack = ca.emit_ack("message:send", req.clone()).await;
    let msg = ok(&ack)["message"].clone();
    assert_eq!(msg["seq"], 1);
    assert_eq!(msg["body"], "hello");
    assert_eq!(msg["sender"], json!(a.id));
    assert_eq!(msg["client_id"], req["client_id"]);
    // Durable before the ack: the store has it now.
    let stored = gw.store.history(room, None, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(serde_json::to_value(&stored[0]).unwrap(), msg);
    // Everyone in the room, the sender's other tab included, gets it.
    assert_eq!(cb.next_event("message:new", WAIT).await.unwrap(), msg);
    assert_eq!(ca2.next_event("message:new", WAIT).await.unwrap(), msg);
    // A retry returns the same message and broadcasts nothing.
    let again = ca.emit_ack("message:send", req).await;
    assert_eq!(ok(&again)["message"], msg);
    assert!(
        cb.next_event("message:new", Duration::from_millis(300))
            .await
            .is_none()
    );
    let next = ca.emit_ack("message:send", send(room, "second")).await;
    assert_eq!(ok(&next)["message"]["seq"], 2);
    assert_eq!(gw.store.history(room, None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn unavailable_bus_gives_an_error_ack_and_no_gap() {
    let gw = spawn_gateway().await;
    let (a, b) = (gw.user().await, gw.user().await);
    let room = gw.room(&[&a, &b]).await;
    let (ca, cb) = (gw.connect(&a).await, gw.connect(&b).await);
    ok(&cb.emit_ack("room:join", json!({ "room": room })).await);
    gw.bus.down.store(true, Ordering::SeqCst);
    let req = send(room, "lost?");
    assert_eq!(
        code(&ca.emit_ack("message:send", req.clone()).await),
        "unavailable"
    );
    assert!(
        cb.next_event("message:new", Duration::from_millis(300))
            .await
            .is_none()
    );
    gw.bus.down.store(false, Ordering::SeqCst);
    // The retry with the same client_id succeeds and takes seq 1: no gap.
    let ack = ca.emit_ack("message:send", req).await;
    assert_eq!(ok(&ack)["message"]["seq"], 1);
}

#[tokio::test]
async fn non_members_get_not_found_and_change_nothing() {
    let gw = spawn_gateway().await;
    let (a, b, eve) = (gw.user().await, gw.user().await, gw.user().await);
    let room = gw.room(&[&a, &b]).await;
    let (cb, ce) = (gw.connect(&b).await, gw.connect(&eve).await);
    ok(&cb.emit_ack("room:join", json!({ "room": room })).await);
    assert_eq!(
        code(&ce.emit_ack("room:join", json!({ "room": room })).await),
        "not_found"
    );
    assert_eq!(
        code(&ce.emit_ack("message:send", send(room, "spam")).await),
        "not_found"
    );
    assert_eq!(
        code(&ce.emit_ack("history", json!({ "room": room })).await),
        "not_found"
    );
    assert_eq!(
        code(
            &ce.emit_ack("sync", json!({ "rooms": { room.to_string(): 0 } }))
                .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &ce.emit_ack("receipt:read", json!({ "room": room, "seq": 0 }))
                .await
        ),
        "not_found"
    );
    assert_eq!(
        code(
            &ce.emit_ack("typing", json!({ "room": room, "typing": true }))
                .await
        ),
        "not_found"
    );
    assert!(
        cb.next_event("message:new", Duration::from_millis(300))
            .await
            .is_none()
    );
    assert!(gw.store.history(room, None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn typing_is_relayed_throttled_and_expires() {
    let config = socket_gateway::GatewayConfig {
        typing_ttl: Duration::from_millis(400),
        typing_throttle: Duration::from_millis(200),
        ..Default::default()
    };
    let gw = spawn_gateway_with(config).await;
    let (a, b) = (gw.user().await, gw.user().await);
    let room = gw.room(&[&a, &b]).await;
    let (ca, cb) = (gw.connect(&a).await, gw.connect(&b).await);
    ok(&ca.emit_ack("room:join", json!({ "room": room })).await);
    ok(&cb.emit_ack("room:join", json!({ "room": room })).await);
    ok(&ca
        .emit_ack("typing", json!({ "room": room, "typing": true }))
        .await);
    let t = cb.next_event("typing", WAIT).await.unwrap();
    assert_eq!(t, json!({ "room": room, "user": a.id, "typing": true }));
    // Within the throttle window: acknowledged, not relayed.
    let again = ca
        .emit_ack("typing", json!({ "room": room, "typing": true }))
        .await;
    assert_eq!(ok(&again)["throttled"], true);
    // Unrenewed, it ends by itself.
    let t = cb
        .next_event("typing", Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(t["typing"], false);
    // The typist does not hear itself.
    assert!(
        ca.next_event("typing", Duration::from_millis(200))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn receipts_are_relayed_and_persisted_monotonically() {
    let gw = spawn_gateway().await;
    let (a, b) = (gw.user().await, gw.user().await);
    let room = gw.room(&[&a, &b]).await;
    let (ca, cb) = (gw.connect(&a).await, gw.connect(&b).await);
    ok(&ca.emit_ack("room:join", json!({ "room": room })).await);
    for i in 0..3 {
        ok(&ca
            .emit_ack("message:send", send(room, &format!("m{i}")))
            .await);
    }
    let before = gw.store.rooms_for(b.id).await.unwrap();
    assert_eq!(before[0].unread, 3);
    let ack = cb
        .emit_ack("receipt:read", json!({ "room": room, "seq": 2 }))
        .await;
    assert_eq!(ok(&ack)["seq"], 2);
    assert_eq!(
        ca.next_event("receipt", WAIT).await.unwrap(),
        json!({ "room": room, "user": b.id, "seq": 2 })
    );
    let after = gw.store.rooms_for(b.id).await.unwrap();
    assert_eq!((after[0].read_seq, after[0].unread), (2, 1));
    // Backwards is a no-op; past the end is refused.
    assert_eq!(
        ok(&cb
            .emit_ack("receipt:read", json!({ "room": room, "seq": 1 }))
            .await)["seq"],
        2
    );
    assert_eq!(
        code(
            &cb.emit_ack("receipt:read", json!({ "room": room, "seq": 9 }))
                .await
        ),
        "invalid_seq"
    );
}

#[tokio::test]
async fn sync_returns_exactly_what_was_missed_and_history_pages() {
    let gw = spawn_gateway().await;
    let (a, b) = (gw.user().await, gw.user().await);
    let room = gw.room(&[&a, &b]).await;
    let ca = gw.connect(&a).await;
    for i in 1..=7 {
        ok(&ca
            .emit_ack("message:send", send(room, &format!("m{i}")))
            .await);
    }
    let cb = gw.connect(&b).await;
    let ack = cb
        .emit_ack("sync", json!({ "rooms": { room.to_string(): 4 } }))
        .await;
    let got: Vec<u64> = ok(&ack)["messages"][room.to_string()]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![5, 6, 7]);
    assert_eq!(ack["has_more"][room.to_string()], false);
    let h = cb
        .emit_ack("history", json!({ "room": room, "before": 6, "limit": 2 }))
        .await;
    let seqs: Vec<u64> = ok(&h)["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![5, 4]);
}
