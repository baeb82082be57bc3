//! What a fresh server serves.

use serde_json::json;
use service_kit::testing::{self, TestClient, WAIT};
use standalone::Settings;

use crate::helpers::*;

#[tokio::test]
async fn serves_the_web_client_and_operations_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(dir.path()).await;
    let page = http(app.addr, "GET", "/", None, None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&page.body).contains("/vendor/socket.io.min.js"));
    for path in ["/app.js", "/style.css", "/vendor/socket.io.min.js"] {
        let res = http(app.addr, "GET", path, None, None).await;
        assert_eq!(res.status, 200, "{path}");
        assert!(!res.body.is_empty());
    }
    assert_eq!(
        http(app.addr, "GET", "/healthz", None, None).await.status,
        200
    );
    let ready = http(app.addr, "GET", "/readyz", None, None).await;
    assert_eq!(
        ready.status,
        200,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
    let metrics =
        String::from_utf8(http(app.addr, "GET", "/metrics", None, None).await.body).unwrap();
    for name in [
        "parley_gateway_connected_sockets",
        "parley_gateway_messages_total",
        "parley_gateway_ack_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    // The JWKS is public, and also written for separately run services.
    assert_eq!(
        http(app.addr, "GET", "/api/auth/jwks.json", None, None)
            .await
            .status,
        200
    );
    assert!(dir.path().join("jwks.json").exists());
    // Oversized HTTP bodies are refused.
    let big = json!({ "username": "x".repeat(100_000), "password": "y" });
    let res = http(app.addr, "POST", "/api/auth/register", None, Some(big)).await;
    assert_eq!(
        (res.status, res.json()["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn two_users_chat_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(dir.path()).await;
    two_users_chat(app.addr).await;
    app.shutdown().await;
}

/// The standalone server pointed at the production backends: RabbitMQ,
/// Redis and MongoDB (nx-27017), each in a namespace of this test's own.
#[tokio::test]
async fn runs_on_production_backends() {
    let dir = tempfile::tempdir().unwrap();
    let ns = testing::unique_name("t");
    let mut settings = Settings::for_tests(dir.path().into());
    settings.amqp = Some(service_kit::amqp::AmqpConfig::new(
        testing::amqp_url(),
        ns.clone(),
    ));
    settings.redis = Some(socket_gateway::redis::RedisConfig {
        url: testing::redis_url(),
        prefix: ns.clone(),
    });
    settings.auth.mongo = Some(service_kit::mongo::MongoConfig {
        uri: testing::mongo_uri().await,
        database: ns,
    });
    let app = spawn_with(settings).await;
    two_users_chat(app.addr).await;
    app.shutdown().await;
}

/// Alice and Bob register, share a room and chat; history and unread agree.
async fn two_users_chat(addr: std::net::SocketAddr) {
    let (a, b) = (register(addr, "alice").await, register(addr, "bob").await);
    let room = create_room(addr, &a, json!({ "name": "general", "members": [b.id] })).await;
    let ca = TestClient::connect(addr, json!({ "token": a.token }))
        .await
        .unwrap();
    let cb = TestClient::connect(addr, json!({ "token": b.token }))
        .await
        .unwrap();
    assert_eq!(
        ca.emit_ack("room:join", json!({ "room": room })).await["ok"],
        true
    );
    assert_eq!(
        cb.emit_ack("room:join", json!({ "room": room })).await["ok"],
        true
    );
    let ack = ca.emit_ack("message:send", send(&room, "hi bob")).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(
        cb.next_event("message:new", WAIT).await.unwrap(),
        ack["message"]
    );
    // On a broker the ack precedes db-writer's write: wait for it to land.
    let history = testing::wait_until(std::time::Duration::from_secs(10), || async {
        let res = http(
            addr,
            "GET",
            &format!("/api/rooms/{room}/messages"),
            Some(&b.token),
            None,
        )
        .await;
        (res.json()["messages"][0]["body"] == "hi bob").then_some(())
    })
    .await;
    assert!(history.is_some(), "the message is in the history");
    let rooms = http(addr, "GET", "/api/rooms", Some(&b.token), None)
        .await
        .json();
    assert_eq!(rooms["rooms"][0]["unread"], 1);
}

#[tokio::test]
async fn every_http_error_has_the_error_shape_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(dir.path()).await;
    let user = register(app.addr, "erin").await;
    let cases = [
        ("GET", "/no/such/route", 404, "not_found"),
        ("DELETE", "/api/auth/register", 405, "method_not_allowed"),
        ("GET", "/api/users/lookup", 400, "bad_request"),
        ("GET", "/api/rooms/not-a-room/messages", 404, "not_found"),
    ];
    for (method, path, status, code) in cases {
        let res = http(app.addr, method, path, Some(&user.token), None).await;
        assert_eq!(res.status, status, "{method} {path}");
        assert_eq!(res.json()["error"]["code"], code, "{method} {path}");
    }
    let metrics =
        String::from_utf8(http(app.addr, "GET", "/metrics", None, None).await.body).unwrap();
    assert!(
        metrics.contains(r#"parley_http_errors_total{code="not_found"} 2"#),
        "{metrics}"
    );
    app.shutdown().await;
}
