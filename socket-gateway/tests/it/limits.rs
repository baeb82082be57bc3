//! Bad input and limits: each gets an error ack and the socket carries on.

use std::time::Duration;

use serde_json::json;
use socket_gateway::GatewayConfig;

use crate::helpers::*;

#[tokio::test]
async fn malformed_payloads_get_clear_errors() {
    let gw = spawn_gateway().await;
    let a = gw.user().await;
    let room = gw.room(&[&a]).await;
    let c = gw.connect(&a).await;
    assert_eq!(
        code(&c.emit_ack("no:such:event", json!({})).await),
        "unknown_event"
    );
    assert_eq!(
        code(&c.emit_ack("message:send", json!("a string")).await),
        "bad_request"
    );
    assert_eq!(
        code(&c.emit_ack("message:send", json!({ "room": room })).await),
        "bad_request"
    );
    let wrong = json!({ "room": room, "client_id": uuid::Uuid::new_v4(), "body": 123 });
    assert_eq!(
        code(&c.emit_ack("message:send", wrong).await),
        "bad_request"
    );
    assert_eq!(
        code(&c.emit_ack("room:join", json!({ "room": [] })).await),
        "bad_request"
    );
    assert_eq!(
        code(
            &c.emit_ack("room:join", json!({ "room": "not-a-uuid" }))
                .await
        ),
        "bad_request"
    );
    assert_eq!(
        code(&c.emit_ack("message:send", send(room, "   ")).await),
        "body_too_long"
    );
    assert_eq!(
        code(
            &c.emit_ack("message:send", send(room, &"x".repeat(4001)))
                .await
        ),
        "body_too_long"
    );
    assert_eq!(
        code(
            &c.emit_ack("message:send", send(room, &"x".repeat(70_000)))
                .await
        ),
        "payload_too_large"
    );
    assert_eq!(
        code(&c.emit_ack("sync", json!({ "rooms": { "nope": 1 } })).await),
        "bad_request"
    );
    // Nothing was stored, and the socket still works.
    assert!(gw.store.history(room, None, 10).await.unwrap().is_empty());
    let ack = c
        .emit_ack("message:send", send(room, &"é".repeat(4000)))
        .await;
    assert_eq!(ok(&ack)["message"]["seq"], 1);
}

#[tokio::test]
async fn garbage_frames_do_not_take_the_server_down() {
    let gw = spawn_gateway().await;
    let a = gw.user().await;
    let room = gw.room(&[&a]).await;
    let bad = gw.connect(&a).await;
    for frame in [
        "42garbage",
        "4",
        "42[",
        "43x[]",
        "99",
        "42[\"message:send\",{\"room\":",
    ] {
        bad.send_raw(frame.to_owned());
    }
    bad.send_raw(format!(
        "42[\"message:send\",\"{}\"]",
        "x".repeat(2 * 1024 * 1024)
    ));
    let good = gw.connect(&a).await;
    assert_eq!(
        ok(&good.emit_ack("message:send", send(room, "still up")).await)["message"]["seq"],
        1
    );
}

#[tokio::test]
async fn message_rate_is_limited_per_user() {
    let config = GatewayConfig {
        msg_rate_per_sec: 0.01,
        msg_burst: 3.0,
        ..Default::default()
    };
    let gw = spawn_gateway_with(config).await;
    let a = gw.user().await;
    let room = gw.room(&[&a]).await;
    let (c1, c2) = (gw.connect(&a).await, gw.connect(&a).await);
    let first = send(room, "1");
    ok(&c1.emit_ack("message:send", first.clone()).await);
    ok(&c2.emit_ack("message:send", send(room, "2")).await);
    ok(&c1.emit_ack("message:send", send(room, "3")).await);
    // The bucket is shared by the user's sockets.
    assert_eq!(
        code(&c2.emit_ack("message:send", send(room, "4")).await),
        "rate_limited"
    );
    // A retry of an acked message is not a new message: still answered.
    assert_eq!(
        ok(&c1.emit_ack("message:send", first).await)["message"]["seq"],
        1
    );
    let seqs: Vec<u64> = gw
        .store
        .history(room, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, vec![3, 2, 1]);
}

#[tokio::test]
async fn rooms_per_socket_are_limited() {
    let config = GatewayConfig {
        max_rooms_per_socket: 1,
        ..Default::default()
    };
    let gw = spawn_gateway_with(config).await;
    let a = gw.user().await;
    let (r1, r2) = (gw.room(&[&a]).await, gw.room(&[&a]).await);
    let c = gw.connect(&a).await;
    ok(&c.emit_ack("room:join", json!({ "room": r1 })).await);
    assert_eq!(
        code(&c.emit_ack("room:join", json!({ "room": r2 })).await),
        "too_many_rooms"
    );
    ok(&c.emit_ack("room:leave", json!({ "room": r1 })).await);
    ok(&c.emit_ack("room:join", json!({ "room": r2 })).await);
    assert!(!c.closed_within(Duration::from_millis(100)).await);
}
