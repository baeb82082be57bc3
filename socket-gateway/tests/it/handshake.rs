//! The handshake and token lifetime.

use std::time::Duration;

use serde_json::json;
use service_kit::testing::TestClient;

use crate::helpers::*;

#[tokio::test]
async fn refuses_missing_invalid_forged_and_expired_tokens() {
    let gw = spawn_gateway().await;
    let user = gw.user().await;
    let err = |v| async move { TestClient::connect(gw.addr, v).await.err().unwrap() };
    assert_eq!(err(json!({})).await, "token_missing");
    assert_eq!(err(json!({ "token": "garbage" })).await, "token_invalid");
    // Signed by another deployment's key.
    let other = spawn_gateway().await;
    let foreign = other.user().await;
    assert_eq!(
        err(json!({ "token": foreign.token })).await,
        "token_invalid"
    );
    assert_eq!(
        err(json!({ "token": gw.token_expiring(&user, -5) })).await,
        "token_expired"
    );
    // A valid token still works.
    let c = gw.connect(&user).await;
    c.close();
}

#[tokio::test]
async fn expired_socket_is_disconnected_unless_refreshed() {
    let gw = spawn_gateway().await;
    let user = gw.user().await;
    // Expiry has one-second granularity: "2 s" lives between 1 and 2 s.
    let short = TestClient::connect(gw.addr, json!({ "token": gw.token_expiring(&user, 2) }))
        .await
        .unwrap();
    let refreshed = TestClient::connect(gw.addr, json!({ "token": gw.token_expiring(&user, 4) }))
        .await
        .unwrap();
    let ack = refreshed
        .emit_ack(
            "auth:refresh",
            json!({ "token": gw.token_expiring(&user, 60) }),
        )
        .await;
    ok(&ack);
    // Another user's token cannot extend this socket.
    let other = gw.user().await;
    assert_eq!(
        code(
            &refreshed
                .emit_ack("auth:refresh", json!({ "token": other.token }))
                .await
        ),
        "forbidden"
    );
    assert_eq!(
        code(
            &refreshed
                .emit_ack("auth:refresh", json!({ "token": "nope" }))
                .await
        ),
        "token_invalid"
    );

    assert!(
        short
            .next_event("auth:expired", Duration::from_secs(6))
            .await
            .is_some()
    );
    assert!(short.closed_within(Duration::from_secs(2)).await);
    // Past its first token's expiry, the refreshed socket is still served.
    assert!(!refreshed.closed_within(Duration::from_secs(3)).await);
    let room = gw.room(&[&user]).await;
    ok(&refreshed
        .emit_ack("room:join", json!({ "room": room }))
        .await);
}

#[tokio::test]
async fn presence_follows_the_first_and_last_socket() {
    let gw = spawn_gateway().await;
    let (a, b) = (gw.user().await, gw.user().await);
    gw.room(&[&a, &b]).await;
    let ca = gw.connect(&a).await;
    let cb1 = gw.connect(&b).await;
    let p = ca.next_event("presence", WAIT).await.unwrap();
    assert_eq!(p, json!({ "user": b.id, "online": true }));
    // A second tab is not news; closing one of two is not either.
    let cb2 = gw.connect(&b).await;
    cb1.close();
    assert!(
        ca.next_event("presence", Duration::from_millis(300))
            .await
            .is_none()
    );
    cb2.close();
    let p = ca.next_event("presence", WAIT).await.unwrap();
    assert_eq!(p, json!({ "user": b.id, "online": false }));
    // A new socket learns who is online already.
    let cb3 = gw.connect(&b).await;
    let p = cb3.next_event("presence", WAIT).await.unwrap();
    assert_eq!(p, json!({ "user": a.id, "online": true }));
}

use service_kit::testing::WAIT;
