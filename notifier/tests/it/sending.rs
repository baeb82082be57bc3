//! Sending: who gets a push, what it carries, and what each answer of the
//! push service leads to.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use notifier::push::{Outcome, PushEvent};
use serde_json::json;
use shared_models::RoomId;

use crate::double::{Answer, PushDouble};
use crate::harness;

/// A notifier with a push double, and alice and bob in a room.
async fn alice_and_bob() -> (crate::Harness, PushDouble, crate::User, crate::User, RoomId) {
    let h = harness(true).await;
    let double = PushDouble::start().await;
    let (a, b) = (h.user("alice"), h.user("bob"));
    let room = h.room("r", &[&a, &b]).await;
    (h, double, a, b, room)
}

/// `method` on a mute path as `who`; the status.
async fn call(h: &crate::Harness, method: &str, path: &str, who: &crate::User) -> u16 {
    service_kit::testing::http(h.addr, method, path, Some(&who.token), None)
        .await
        .status
}

/// Waits for `n` finished pushes.
async fn outcomes(
    rx: &mut tokio::sync::broadcast::Receiver<PushEvent>,
    n: usize,
) -> Vec<PushEvent> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while got.len() < n {
            got.push(rx.recv().await.unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} pushes finished", got.len()));
    got
}

#[tokio::test]
async fn offline_members_get_one_verified_push_others_none() {
    let h = harness(true).await;
    let double = PushDouble::start().await;
    let (a, b, c, d) = (
        h.user("alice"),
        h.user("bob"),
        h.user("carol"),
        h.user("dave"),
    );
    let room = h.room("team", &[&a, &b, &c, &d]).await;
    for (u, name) in [(&a, "a"), (&b, "b"), (&c, "c"), (&d, "d")] {
        h.subscribe(u, &double.subscribe(name)).await;
    }
    h.presence.set(c.id, true);
    assert_eq!(
        call(&h, "PUT", &format!("/api/push/mutes/{room}"), &d).await,
        204
    );

    let mut events = h.app.pusher().events();
    let m = h.send(room, &a, 1, "  hello\n bob  ").await;
    // The publish returned after the notifier queued its pushes: exactly
    // one, for bob (alice sent it, carol is online, dave muted the room).
    assert_eq!(h.metric("parley_push_queued_total"), 1.0);
    let got = double.wait_for("b", 1).await;
    let body = got[0].result.clone().unwrap();
    assert_eq!(
        body,
        json!({
            "type": "message",
            "room": {"id": room, "name": "team"},
            "sender": {"id": a.id, "username": "alice"},
            "message_id": m.id,
            "seq": 1,
            "preview": "hello bob",
        })
    );
    let key = service_kit::testing::http(h.addr, "GET", "/api/push/vapid-public-key", None, None)
        .await
        .json();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(&got[0].vapid_k),
        key["key"].as_str().unwrap()
    );
    assert_eq!(got[0].headers["topic"], room.0.simple().to_string());
    assert_eq!(
        outcomes(&mut events, 1).await[0].outcome,
        Outcome::Delivered
    );
    assert_eq!(h.metric("parley_push_sent_total"), 1.0);
    assert_eq!(h.metric("parley_push_send_seconds_count"), 1.0);

    // The same filters let the pushes through once their reason is gone.
    h.presence.set(c.id, false);
    assert_eq!(
        call(&h, "DELETE", &format!("/api/push/mutes/{room}"), &d).await,
        204
    );
    let m2 = h.send(room, &a, 2, "again").await;
    assert_eq!(h.metric("parley_push_queued_total"), 4.0);
    outcomes(&mut events, 3).await;
    for name in ["b", "c", "d"] {
        let got = double.wait_for(name, 1).await;
        let last = got.last().unwrap().result.clone().unwrap();
        assert_eq!(last["seq"], 2);
        assert_eq!(last["preview"], "again");
    }
    assert!(double.received_by("a").is_empty(), "the sender got a push");
    assert!(double.received().iter().all(|r| r.result.is_ok()));

    // A redelivered message does not push twice.
    let before = h.metric("parley_push_queued_total");
    let env = shared_models::Envelope::new(shared_models::EventKind::MessageCreated, "test", m2);
    service_kit::bus::EventBus::publish(h.bus.as_ref(), "chat.message.created", env.to_bytes())
        .await
        .unwrap();
    service_kit::bus::EventBus::publish(h.bus.as_ref(), "chat.message.created", env.to_bytes())
        .await
        .unwrap();
    assert_eq!(h.metric("parley_push_queued_total"), before);
}

#[tokio::test]
async fn gone_subscriptions_are_deleted() {
    let (h, double, a, b, room) = alice_and_bob().await;
    h.subscribe(&b, &double.subscribe("gone404")).await;
    h.subscribe(&b, &double.subscribe("gone410")).await;
    let keep = h.subscribe(&b, &double.subscribe("fine")).await;
    double.always("gone404", Answer::status(404));
    double.always("gone410", Answer::status(410));
    let mut events = h.app.pusher().events();
    h.send(room, &a, 1, "hi").await;
    let got = outcomes(&mut events, 3).await;
    assert_eq!(
        got.iter().filter(|e| e.outcome == Outcome::Expired).count(),
        2
    );
    let left = h.app.store().list(b.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id.to_string(), keep);
    assert_eq!(h.metric("parley_push_expired_total"), 2.0);
    // Each was tried once: gone is gone.
    assert_eq!(double.received_by("gone404").len(), 1);
    assert_eq!(double.received_by("gone410").len(), 1);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let (h, double, a, b, room) = alice_and_bob().await;
    h.subscribe(&b, &double.subscribe("b")).await;
    double.script(
        "b",
        vec![Answer {
            status: 429,
            retry_after: Some("1"),
        }],
    );
    let mut events = h.app.pusher().events();
    h.send(room, &a, 1, "hi").await;
    let ev = outcomes(&mut events, 1).await.remove(0);
    assert_eq!(ev.outcome, Outcome::Delivered);
    assert_eq!(ev.attempts, 2);
    let got = double.received_by("b");
    assert_eq!(got.len(), 2);
    let waited = got[1].at - got[0].at;
    // The retry base is 20 ms: only Retry-After explains a one-second wait.
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert_eq!(h.metric("parley_push_retried_total"), 1.0);
}

#[tokio::test]
async fn server_errors_are_retried_then_dead_lettered() {
    let (h, double, a, b, room) = alice_and_bob().await;
    h.subscribe(&b, &double.subscribe("down")).await;
    h.subscribe(&b, &double.subscribe("flaky")).await;
    double.always("down", Answer::status(503));
    double.script("flaky", vec![Answer::status(500), Answer::status(502)]);
    let mut events = h.app.pusher().events();
    let m = h.send(room, &a, 1, "hi").await;
    let got = outcomes(&mut events, 2).await;
    let down = got
        .iter()
        .find(|e| e.outcome != Outcome::Delivered)
        .unwrap();
    assert_eq!(down.outcome, Outcome::GaveUp(503));
    assert_eq!(down.attempts, 3);
    let flaky = got
        .iter()
        .find(|e| e.outcome == Outcome::Delivered)
        .unwrap();
    assert_eq!(flaky.attempts, 3);
    assert_eq!(double.received_by("down").len(), 3);
    let dead = h.app.pusher().dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message, m.id);
    assert_eq!(h.metric("parley_push_dead_lettered_total"), 1.0);
    assert_eq!(h.metric("parley_push_failed_total"), 1.0);
    assert_eq!(h.metric("parley_push_retried_total"), 4.0);
    // A failing push service does not cost the subscription.
    assert_eq!(h.app.store().list(b.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn refused_requests_are_not_retried() {
    let (h, double, a, b, room) = alice_and_bob().await;
    for (name, status) in [("s400", 400), ("s401", 401), ("s403", 403), ("s413", 413)] {
        h.subscribe(&b, &double.subscribe(name)).await;
        double.always(name, Answer::status(status));
    }
    let mut events = h.app.pusher().events();
    h.send(room, &a, 1, "hi").await;
    let got = outcomes(&mut events, 4).await;
    let mut statuses: Vec<_> = got
        .iter()
        .map(|e| {
            assert_eq!(e.attempts, 1);
            match e.outcome {
                Outcome::Rejected(s) => s,
                ref o => panic!("{o:?}"),
            }
        })
        .collect();
    statuses.sort();
    assert_eq!(statuses, [400, 401, 403, 413]);
    assert_eq!(h.metric("parley_push_retried_total"), 0.0);
    assert_eq!(h.app.store().list(b.id).await.unwrap().len(), 4);
}

#[tokio::test]
async fn previews_can_be_turned_off() {
    // Built by hand: the harness keeps previews on.
    let dir = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let bus = std::sync::Arc::new(service_kit::bus::InProcessBus::default());
    let mut config = notifier::NotifierConfig::with_data_dir(dir.path().into());
    config.allow_http = true;
    config.preview = false;
    let h = harness(true).await;
    let app = notifier::NotifierApp::build(
        config,
        notifier::NotifierDeps {
            bus: bus.clone(),
            verifier: h.auth.verifier(),
            presence: h.presence.clone(),
        },
        &registry,
    )
    .await
    .unwrap();
    let double = PushDouble::start().await;
    let (a, b) = (h.user("alice"), h.user("bob"));
    let (endpoint, p256dh, auth) = double.subscribe("b");
    app.store()
        .upsert(b.id, &endpoint, &p256dh, &auth, 5)
        .await
        .unwrap();
    let room = shared_models::Room {
        id: shared_models::RoomId::new(),
        name: None,
        kind: shared_models::RoomKind::Direct,
        owner: None,
        members: vec![a.id, b.id],
        users: vec![
            shared_models::UserRef {
                id: a.id,
                username: "alice".into(),
            },
            shared_models::UserRef {
                id: b.id,
                username: "bob".into(),
            },
        ],
    };
    app.store().put_room(&room).await.unwrap();
    let m = shared_models::Message {
        id: shared_models::MessageId::new(),
        room: room.id,
        seq: 1,
        sender: a.id,
        body: "secret".into(),
        ts: shared_models::Timestamp::now(),
        client_id: shared_models::ClientId::new(),
        attachments: Vec::new(),
    };
    service_kit::bus::publish(bus.as_ref(), "test", m)
        .await
        .unwrap();
    let got = double.wait_for("b", 1).await;
    let body = got[0].result.clone().unwrap();
    assert!(body.get("preview").is_none(), "{body}");
    assert_eq!(body["room"]["name"], serde_json::Value::Null);
    assert_eq!(body["sender"]["username"], "alice");
}
