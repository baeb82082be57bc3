//! Restarts, graceful shutdown and a crash: acked messages are never lost.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use service_kit::testing::TestClient;

use crate::helpers::*;

#[tokio::test]
async fn graceful_restart_keeps_users_rooms_messages_and_seq() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(dir.path()).await;
    let a = register(app.addr, "carol").await;
    let room = create_room(app.addr, &a, json!({ "name": "r" })).await;
    let c = TestClient::connect(app.addr, json!({ "token": a.token }))
        .await
        .unwrap();
    for i in 1..=3 {
        assert_eq!(
            c.emit_ack("message:send", send(&room, &format!("m{i}")))
                .await["ok"],
            true
        );
    }
    app.shutdown().await;
    assert!(
        c.closed_within(Duration::from_secs(2)).await,
        "shutdown disconnects sockets"
    );

    let app = spawn_app(dir.path()).await;
    // Old tokens still verify (keys persisted), and logins work.
    let a = login(app.addr, "carol").await;
    let history = http(
        app.addr,
        "GET",
        &format!("/api/rooms/{room}/messages"),
        Some(&a.token),
        None,
    )
    .await
    .json();
    assert_eq!(history["messages"].as_array().unwrap().len(), 3);
    let c = TestClient::connect(app.addr, json!({ "token": a.token }))
        .await
        .unwrap();
    let ack = c
        .emit_ack("message:send", send(&room, "after restart"))
        .await;
    assert_eq!(
        ack["message"]["seq"], 4,
        "seq continues without gap or reuse"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn acked_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .env("PARLEY_ADDR", "127.0.0.1:0")
            .env("PARLEY_DATA_DIR", dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_owned();
        let addr: std::net::SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        (child, addr)
    };
    let (mut child, addr) = start();
    let a = register(addr, "dave").await;
    let room = create_room(addr, &a, json!({ "name": "r" })).await;
    let c = TestClient::connect(addr, json!({ "token": a.token }))
        .await
        .unwrap();
    let mut acked = Vec::new();
    for i in 0..20 {
        let ack = c
            .emit_ack("message:send", send(&room, &format!("m{i}")))
            .await;
        assert_eq!(ack["ok"], true);
        acked.push(ack["message"]["id"].clone());
    }
    child.kill().unwrap(); // SIGKILL: no shutdown path runs.
    child.wait().unwrap();

    let (mut child, addr) = start();
    let history = http(
        addr,
        "GET",
        &format!("/api/rooms/{room}/messages?limit=200"),
        Some(&a.token),
        None,
    )
    .await
    .json();
    let mut ids: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    ids.reverse();
    assert_eq!(ids, acked);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn bad_configuration_fails_at_start_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .env("PARLEY_ADDR", "not an address")
        .env("PARLEY_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PARLEY_ADDR"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_parley"))
        .env("PARLEY_MSG_RATE_PER_SEC", "fast")
        .env("PARLEY_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PARLEY_MSG_RATE_PER_SEC"));
}
