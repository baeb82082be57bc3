//! `spawn_gateway()`: a gateway with its own data directory on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use service_kit::bus::{BusError, Durability, EventBus, InProcessBus, Subscription};
use service_kit::testing::TestClient;
use service_kit::token::Claims;
use shared_models::{RoomId, UserId};
use socket_gateway::cluster::InProcessCluster;
use socket_gateway::directory::EmbeddedDirectory;
use socket_gateway::{Gateway, GatewayConfig, GatewayDeps};

/// A bus that can be made to fail publishes, to test error acks.
pub struct FlakyBus {
    pub inner: InProcessBus,
    pub down: AtomicBool,
}

#[async_trait]
impl EventBus for FlakyBus {
    async fn publish(&self, key: &str, payload: Vec<u8>) -> Result<(), BusError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable("test: bus down".into()));
        }
        self.inner.publish(key, payload).await
    }
    async fn subscribe(
        &self,
        q: &str,
        b: &[&str],
        d: Durability,
    ) -> Result<Subscription, BusError> {
        self.inner.subscribe(q, b, d).await
    }
    async fn health(&self) -> Result<(), BusError> {
        self.inner.health().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

pub struct TestGateway {
    pub addr: SocketAddr,
    pub auth: auth::AuthApp,
    pub store: Arc<dyn db_writer::store::ChatStore>,
    pub bus: Arc<FlakyBus>,
    _dir: tempfile::TempDir,
}

pub struct TestUser {
    pub id: UserId,
    pub token: String,
}

pub async fn spawn_gateway() -> TestGateway {
    spawn_gateway_with(GatewayConfig::default()).await
}

pub async fn spawn_gateway_with(config: GatewayConfig) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let bus = Arc::new(FlakyBus {
        inner: InProcessBus::default(),
        down: AtomicBool::new(false),
    });
    let dyn_bus: Arc<dyn EventBus> = bus.clone();
    let auth = auth::AuthApp::build(
        auth::AuthConfig::with_data_dir(dir.path().into()),
        dyn_bus.clone(),
        &registry,
    )
    .await
    .unwrap();
    let dbw = db_writer::DbWriterApp::build(
        db_writer::DbWriterConfig {
            data_dir: dir.path().into(),
            batch: Default::default(),
            mongo: None,
        },
        dyn_bus.clone(),
        auth.verifier(),
        &registry,
    )
    .await
    .unwrap();
    let store = dbw.store();
    let gateway = Gateway::build(
        config,
        GatewayDeps {
            bus: dyn_bus,
            verifier: auth.verifier(),
            directory: Arc::new(EmbeddedDirectory(store.clone())),
            attachments: Arc::new(socket_gateway::attachments::NoAttachments),
            cluster: Arc::new(InProcessCluster::new(256)),
            feed: service_kit::bus::Durability::Durable,
        },
        &registry,
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _keep = dbw;
        service_kit::serve(listener, gateway.router(), std::future::pending())
            .await
            .unwrap();
    });
    TestGateway {
        addr,
        auth,
        store,
        bus,
        _dir: dir,
    }
}

impl TestGateway {
    /// Registers a user (announced to db-writer through the bus).
    pub async fn user(&self) -> TestUser {
        let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let s = self
            .auth
            .service()
            .register(&name, "a long enough password")
            .await
            .unwrap();
        TestUser {
            id: s.user.id,
            token: s.access_token,
        }
    }

    /// A group room owned by the first user.
    pub async fn room(&self, members: &[&TestUser]) -> RoomId {
        let owner = members[0].id;
        let others = members[1..].iter().map(|u| u.id).collect();
        self.store
            .create_group("test".into(), owner, others)
            .await
            .unwrap()
            .id
    }

    pub async fn connect(&self, user: &TestUser) -> TestClient {
        TestClient::connect(self.addr, json!({ "token": user.token }))
            .await
            .unwrap()
    }

    /// A token for `user` expiring `exp_in` seconds from now (may be negative).
    pub fn token_expiring(&self, user: &TestUser, exp_in: i64) -> String {
        let now = chrono_now();
        let claims = Claims {
            sub: user.id,
            name: "x".into(),
            iss: "parley".into(),
            iat: now - 10,
            exp: now + exp_in,
            jti: "t".into(),
        };
        self.auth.service().keys().sign(&claims).unwrap()
    }
}

pub fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn send(room: RoomId, body: &str) -> Value {
    json!({ "room": room, "client_id": uuid::Uuid::new_v4(), "body": body })
}

pub fn code(ack: &Value) -> &str {
    assert_eq!(ack["ok"], false, "expected an error ack, got {ack}");
    ack["error"]["code"].as_str().unwrap()
}

pub fn ok(ack: &Value) -> &Value {
    assert_eq!(ack["ok"], true, "expected ok, got {ack}");
    ack
}
