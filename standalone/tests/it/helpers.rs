//! `spawn_app()` and a tiny HTTP client.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{Value, json};
use standalone::{Application, Settings};

pub struct TestApp {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts the standalone server on `data_dir`.
pub async fn spawn_app(data_dir: &Path) -> TestApp {
    spawn_with(Settings::for_tests(data_dir.into())).await
}

/// Starts the standalone server with `settings`.
pub async fn spawn_with(settings: Settings) -> TestApp {
    let app = Application::build(settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        stop: Some(stop),
        task,
    }
}

impl TestApp {
    /// Graceful shutdown, as on SIGTERM; waits until it completed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

pub use service_kit::testing::http;

pub struct User {
    pub id: String,
    pub token: String,
}

pub async fn register(addr: SocketAddr, name: &str) -> User {
    let res = http(
        addr,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({ "username": name, "password": "pass phrase 123" })),
    )
    .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    let v = res.json();
    User {
        id: v["user"]["id"].as_str().unwrap().into(),
        token: v["access_token"].as_str().unwrap().into(),
    }
}

pub async fn login(addr: SocketAddr, name: &str) -> User {
    let res = http(
        addr,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({ "username": name, "password": "pass phrase 123" })),
    )
    .await;
    assert_eq!(res.status, 200);
    let v = res.json();
    User {
        id: v["user"]["id"].as_str().unwrap().into(),
        token: v["access_token"].as_str().unwrap().into(),
    }
}

pub fn send(room: &str, body: &str) -> Value {
    json!({ "room": room, "client_id": uuid::Uuid::new_v4(), "body": body })
}

/// Creates a group room as `user`; returns its id.
pub async fn create_room(addr: SocketAddr, user: &User, body: Value) -> String {
    let res = http(addr, "POST", "/api/rooms", Some(&user.token), Some(body)).await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    res.json()["id"].as_str().unwrap().to_owned()
}
