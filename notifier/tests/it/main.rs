//! notifier integration tests: the store suite on SQLite, the push API,
//! and sending against a push-service double that decrypts and verifies
//! every push independently of the notifier's own crypto.

// Tests and their helpers fail by panicking.
#![allow(clippy::unwrap_used)]

mod api;
mod double;
mod sending;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use notifier::store::{SqliteSubscriptionStore, SubscriptionStore};
use notifier::{NotifierApp, NotifierConfig, NotifierDeps};
use service_kit::bus::{self, EventBus, InProcessBus};
use service_kit::presence::{PresenceError, PresenceView};
use shared_models::{
    ClientId, Envelope, EventKind, MemberChanged, Message, MessageId, Room, RoomId, RoomKind,
    Timestamp, UserId, UserRef,
};

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SubscriptionStore> =
        Arc::new(SqliteSubscriptionStore::open(&dir.path().join("notifier.db")).unwrap());
    notifier::conformance::run(store).await;
}

#[tokio::test]
async fn mongo_store_conforms() {
    let db = service_kit::testing::mongo_database().await;
    let store: Arc<dyn SubscriptionStore> = Arc::new(
        notifier::mongo::MongoSubscriptionStore::open(db)
            .await
            .unwrap(),
    );
    notifier::conformance::run(store).await;
}

#[tokio::test]
async fn serves_health_readiness_and_metrics() {
    let addr = service_kit::testing::spawn(notifier::ops_router(prometheus::Registry::new())).await;
    service_kit::testing::assert_ops_endpoints(addr).await;
}

/// Presence the tests set by hand.
#[derive(Default)]
struct FakePresence(Mutex<HashSet<UserId>>);

impl FakePresence {
    fn set(&self, user: UserId, online: bool) {
        let mut s = self.0.lock().unwrap();
        if online {
            s.insert(user);
        } else {
            s.remove(&user);
        }
    }
}

#[async_trait]
impl PresenceView for FakePresence {
    async fn is_online(&self, user: UserId) -> Result<bool, PresenceError> {
        Ok(self.0.lock().unwrap().contains(&user))
    }
}

pub(crate) struct Harness {
    app: NotifierApp,
    bus: Arc<InProcessBus>,
    auth: auth::AuthApp,
    addr: SocketAddr,
    presence: Arc<FakePresence>,
    registry: prometheus::Registry,
    _dir: tempfile::TempDir,
}

pub(crate) struct User {
    id: UserId,
    name: String,
    token: String,
}

/// A notifier on an in-process bus, with fast retries.
async fn harness(allow_http: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(InProcessBus::default());
    let dyn_bus: Arc<dyn EventBus> = bus.clone();
    let registry = prometheus::Registry::new();
    let auth = auth::AuthApp::build(
        auth::AuthConfig::with_data_dir(dir.path().into()),
        dyn_bus.clone(),
        &registry,
    )
    .await
    .unwrap();
    let presence = Arc::new(FakePresence::default());
    let mut config = NotifierConfig::with_data_dir(dir.path().into());
    config.allow_http = allow_http;
    config.send.max_attempts = 3;
    config.send.retry_base = Duration::from_millis(20);
    config.max_subscriptions_per_user = 4;
    let app = NotifierApp::build(
        config,
        NotifierDeps {
            bus: dyn_bus,
            verifier: auth.verifier(),
            presence: presence.clone(),
        },
        &registry,
    )
    .await
    .unwrap();
    let addr = service_kit::testing::spawn(service_kit::ops::with_error_handling(
        app.router(),
        &registry,
    ))
    .await;
    Harness {
        app,
        bus,
        auth,
        addr,
        presence,
        registry,
        _dir: dir,
    }
}

impl Harness {
    fn user(&self, name: &str) -> User {
        let id = UserId::new();
        User {
            id,
            name: name.to_owned(),
            token: self.auth.service().access_token(id, name).unwrap(),
        }
    }

    /// A group room with these members, announced as db-writer would.
    async fn room(&self, name: &str, members: &[&User]) -> RoomId {
        let id = RoomId::new();
        let mut room = Room {
            id,
            name: Some(name.to_owned()),
            kind: RoomKind::Group,
            owner: Some(members[0].id),
            members: Vec::new(),
            users: Vec::new(),
        };
        for m in members {
            room.members.push(m.id);
            room.users.push(UserRef {
                id: m.id,
                username: m.name.clone(),
            });
            let env = Envelope::new(
                EventKind::MemberAdded,
                "test",
                MemberChanged {
                    room: room.clone(),
                    user: m.id,
                },
            );
            self.bus
                .publish(EventKind::MemberAdded.as_str(), env.to_bytes())
                .await
                .unwrap();
        }
        id
    }

    /// Publishes a message; returns once the notifier has queued its pushes.
    async fn send(&self, room: RoomId, sender: &User, seq: u64, body: &str) -> Message {
        let m = Message {
            id: MessageId::new(),
            room,
            seq,
            sender: sender.id,
            body: body.to_owned(),
            ts: Timestamp::now(),
            client_id: ClientId::new(),
            attachments: Vec::new(),
        };
        bus::publish(self.bus.as_ref(), "test", m.clone())
            .await
            .unwrap();
        m
    }

    /// Registers a subscription through the API; returns its id.
    async fn subscribe(&self, who: &User, sub: &(String, String, String)) -> String {
        let res = service_kit::testing::http(
            self.addr,
            "POST",
            "/api/push/subscriptions",
            Some(&who.token),
            Some(serde_json::json!({
                "endpoint": sub.0, "keys": {"p256dh": sub.1, "auth": sub.2}
            })),
        )
        .await;
        assert_eq!(res.status, 201, "{:?}", res.json());
        res.json()["id"].as_str().unwrap().to_owned()
    }

    /// A counter's (or a histogram's `_count`) value, from the text format.
    fn metric(&self, name: &str) -> f64 {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }
}
