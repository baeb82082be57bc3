//! The rooms API: creation, membership rules, history, and 404 for strangers.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use service_kit::bus::{self, EventBus, InProcessBus};
use shared_models::{ClientId, Message, MessageId, Timestamp, UserId, UserRegistered};

struct Api {
    addr: std::net::SocketAddr,
    _app: db_writer::DbWriterApp,
    auth: auth::AuthApp,
    bus: Arc<InProcessBus>,
    _dir: tempfile::TempDir,
}

struct User {
    id: UserId,
    token: String,
}

async fn spawn_api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(InProcessBus::default());
    let registry = prometheus::Registry::new();
    let dyn_bus: Arc<dyn EventBus> = bus.clone();
    let auth = auth::AuthApp::build(
        auth::AuthConfig::with_data_dir(dir.path().into()),
        dyn_bus.clone(),
        &registry,
    )
    .await
    .unwrap();
    let app = db_writer::DbWriterApp::build(
        db_writer::DbWriterConfig {
            data_dir: dir.path().into(),
            batch: Default::default(),
            mongo: None,
        },
        dyn_bus,
        auth.verifier(),
        &registry,
    )
    .await
    .unwrap();
    let addr = service_kit::testing::spawn(app.router()).await;
    Api {
        addr,
        _app: app,
        auth,
        bus,
        _dir: dir,
    }
}

impl Api {
    async fn user(&self) -> User {
        let id = UserId::new();
        let name = format!("u{}", &id.to_string()[24..]);
        bus::publish(
            self.bus.as_ref(),
            "test",
            UserRegistered {
                id,
                username: name.clone(),
            },
        )
        .await
        .unwrap();
        User {
            id,
            token: self.auth.service().access_token(id, &name).unwrap(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        who: &User,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let res = service_kit::testing::http(self.addr, method, path, Some(&who.token), body).await;
        (StatusCode::from_u16(res.status).unwrap(), res.json())
    }
}

#[tokio::test]
async fn group_rooms_and_their_rules() {
    let api = spawn_api().await;
    let (a, b, c) = (api.user().await, api.user().await, api.user().await);
    let (st, room) = api
        .call(
            "POST",
            "/api/rooms",
            &a,
            Some(json!({ "name": " team ", "members": [b.id] })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{room}");
    assert_eq!(room["name"], "team");
    assert_eq!(room["kind"], "group");
    assert_eq!(room["owner"], json!(a.id));
    assert_eq!(room["members"].as_array().unwrap().len(), 2);
    let id = room["id"].as_str().unwrap().to_owned();

    // Strangers see nothing, whatever they try.
    for (m, p) in [
        ("GET", format!("/api/rooms/{id}")),
        ("GET", format!("/api/rooms/{id}/messages")),
    ] {
        assert_eq!(api.call(m, &p, &c, None).await.0, StatusCode::NOT_FOUND);
    }
    let (st, _) = api
        .call(
            "POST",
            &format!("/api/rooms/{id}/members"),
            &c,
            Some(json!({ "user_id": c.id })),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Members who are not the owner cannot manage others.
    let (st, body) = api
        .call(
            "POST",
            &format!("/api/rooms/{id}/members"),
            &b,
            Some(json!({ "user_id": c.id })),
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (st, _) = api
        .call(
            "DELETE",
            &format!("/api/rooms/{id}/members/{}", a.id),
            &b,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // The owner adds; a member leaves.
    let (st, r) = api
        .call(
            "POST",
            &format!("/api/rooms/{id}/members"),
            &a,
            Some(json!({ "user_id": c.id })),
        )
        .await;
    assert_eq!(
        (st, r["members"].as_array().unwrap().len()),
        (StatusCode::OK, 3)
    );
    let (st, _) = api
        .call(
            "DELETE",
            &format!("/api/rooms/{id}/members/{}", c.id),
            &c,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, list) = api.call("GET", "/api/rooms", &c, None).await;
    assert!(list["rooms"].as_array().unwrap().is_empty());

    // Validation.
    let bad = [
        json!({ "name": "" }),
        json!({ "name": "x", "members": ["not-a-uuid"] }),
        json!({ "name": "x", "members": [UserId::new()] }),
        json!({ "nothing": true }),
        json!([1, 2]),
    ];
    let codes = [
        "invalid_name",
        "bad_request",
        "unknown_user",
        "bad_request",
        "bad_request",
    ];
    for (body, code) in bad.into_iter().zip(codes) {
        let (st, b) = api.call("POST", "/api/rooms", &a, Some(body)).await;
        assert_eq!(b["error"]["code"], code, "{st} {b}");
    }
}

#[tokio::test]
async fn direct_rooms_are_one_per_pair() {
    let api = spawn_api().await;
    let (a, b) = (api.user().await, api.user().await);
    let (st, r1) = api
        .call("POST", "/api/rooms", &a, Some(json!({ "direct": b.id })))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, r2) = api
        .call("POST", "/api/rooms", &b, Some(json!({ "direct": a.id })))
        .await;
    assert_eq!(r1["id"], r2["id"]);
    assert_eq!(r1["kind"], "direct");
    let (st, _) = api
        .call("POST", "/api/rooms", &a, Some(json!({ "direct": a.id })))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = api
        .call(
            "POST",
            "/api/rooms",
            &a,
            Some(json!({ "direct": UserId::new() })),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn history_pages_newest_first_with_unread_counts() {
    let api = spawn_api().await;
    let (a, b) = (api.user().await, api.user().await);
    let (_, room) = api
        .call(
            "POST",
            "/api/rooms",
            &a,
            Some(json!({ "name": "h", "members": [b.id] })),
        )
        .await;
    let room_id: shared_models::RoomId = room["id"].as_str().unwrap().parse().unwrap();
    for seq in 1..=5 {
        let m = Message {
            id: MessageId::new(),
            room: room_id,
            seq,
            sender: a.id,
            body: format!("m{seq}"),
            ts: Timestamp::now(),
            client_id: ClientId::new(),
            attachments: vec![],
        };
        bus::publish(api.bus.as_ref(), "test", m).await.unwrap();
    }
    let path = format!("/api/rooms/{room_id}/messages?before=5&limit=2");
    let (st, page) = api.call("GET", &path, &b, None).await;
    assert_eq!(st, StatusCode::OK);
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 3]);
    let (st, _) = api
        .call(
            "GET",
            &format!("/api/rooms/{room_id}/messages?limit=abc"),
            &b,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, rooms) = api.call("GET", "/api/rooms", &b, None).await;
    let r = &rooms["rooms"][0];
    assert_eq!(
        (r["last_seq"].as_u64(), r["unread"].as_u64()),
        (Some(5), Some(5))
    );
    let (_, rooms) = api.call("GET", "/api/rooms", &a, None).await;
    assert_eq!(rooms["rooms"][0]["unread"], 0);
}
