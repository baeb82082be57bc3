//! Test helpers shared by the crates' integration tests (feature `testing`):
//! [`spawn`] serves a router on port 0, [`http`] is a small HTTP/1 client,
//! and [`TestClient`] is a minimal Socket.IO v4 client over a raw WebSocket.
//!
//! Speaking the Socket.IO wire protocol directly (engine.io v4 framing, Socket.IO
//! packets `40`, `42`, `43`, `44`) lets tests send exactly the malformed
//! or oversized packets a browser library never would. The official
//! `socket.io-client` is exercised by the end-to-end tests.

// Test helpers fail by panicking, like the tests that use them.
#![allow(clippy::unwrap_used)]

mod backends;
pub use backends::*;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Ws;

type Acks = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A connected test client.
pub struct TestClient {
    out: mpsc::UnboundedSender<Ws>,
    acks: Acks,
    events: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    closed: Arc<tokio::sync::Notify>,
    next_id: AtomicU64,
}

/// How long a test waits for an ack or an event by default.
pub const WAIT: Duration = Duration::from_secs(5);

impl TestClient {
    /// Connects to `http://addr/socket.io/` and sends the handshake with
    /// `auth`. `Err` carries the `connect_error` message (e.g. `token_invalid`).
    pub async fn connect(addr: std::net::SocketAddr, auth: Value) -> Result<Self, String> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("websocket: {e}"))?;
        let (mut sink, mut stream) = ws.split();
        // engine.io open packet.
        match stream.next().await {
            Some(Ok(Ws::Text(t))) if t.starts_with('0') => {}
            other => return Err(format!("expected engine.io open, got {other:?}")),
        }
        sink.send(Ws::text(format!("40{auth}")))
            .await
            .map_err(|e| e.to_string())?;
        let answer = loop {
            match tokio::time::timeout(WAIT, stream.next()).await {
                Ok(Some(Ok(Ws::Text(t)))) if t.starts_with("40") || t.starts_with("44") => {
                    break t.to_string();
                }
                Ok(Some(Ok(Ws::Text(t)))) if t.as_str() == "2" => {
                    let _ = sink.send(Ws::text("3")).await;
                }
                Ok(Some(Ok(_))) => {}
                other => return Err(format!("no connect answer: {other:?}")),
            }
        };
        if let Some(err) = answer.strip_prefix("44") {
            let v: Value = serde_json::from_str(err).unwrap_or(Value::Null);
            return Err(v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or(err)
                .to_owned());
        }

        let (out, mut out_rx) = mpsc::unbounded_channel::<Ws>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let acks: Acks = Arc::default();
        let closed = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        {
            let acks = acks.clone();
            let out = out.clone();
            let closed = closed.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = stream.next().await {
                    let Ws::Text(t) = msg else { continue };
                    let t = t.as_str();
                    if t == "2" {
                        let _ = out.send(Ws::text("3"));
                    } else if let Some(rest) = t.strip_prefix("43") {
                        let digits: String =
                            rest.chars().take_while(char::is_ascii_digit).collect();
                        let data: Value =
                            serde_json::from_str(&rest[digits.len()..]).unwrap_or(Value::Null);
                        let first = data.get(0).cloned().unwrap_or(Value::Null);
                        if let (Ok(id), Ok(mut map)) = (digits.parse::<u64>(), acks.lock())
                            && let Some(tx) = map.remove(&id)
                        {
                            let _ = tx.send(first);
                        }
                    } else if let Some(rest) = t.strip_prefix("42") {
                        let data: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
                        if let Some(name) = data.get(0).and_then(Value::as_str) {
                            let _ = ev_tx.send((
                                name.to_owned(),
                                data.get(1).cloned().unwrap_or(Value::Null),
                            ));
                        }
                    } else if t.starts_with("41") || t == "1" {
                        break;
                    }
                }
                closed.notify_waiters();
                closed.notify_one();
            });
        }
        Ok(Self {
            out,
            acks,
            events: Mutex::new(ev_rx),
            closed,
            next_id: AtomicU64::new(1),
        })
    }

    /// Emits an event and waits for its ack (`Value::Null` on timeout).
    pub async fn emit_ack(&self, event: &str, data: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut map) = self.acks.lock() {
            map.insert(id, tx);
        }
        let packet = serde_json::json!([event, data]);
        let _ = self.out.send(Ws::text(format!("42{id}{packet}")));
        tokio::time::timeout(WAIT, rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Value::Null)
    }

    /// Emits an event without asking for an ack.
    pub fn emit(&self, event: &str, data: Value) {
        let packet = serde_json::json!([event, data]);
        let _ = self.out.send(Ws::text(format!("42{packet}")));
    }

    /// Sends a raw text frame (for malformed-packet tests).
    pub fn send_raw(&self, frame: String) {
        let _ = self.out.send(Ws::text(frame));
    }

    /// The next event named `name` within `wait` (other events are skipped).
    pub async fn next_event(&self, name: &str, wait: Duration) -> Option<Value> {
        let mut rx = self.events.lock().await;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((n, v))) if n == name => return Some(v),
                Ok(Some(_)) => {}
                _ => return None,
            }
        }
    }

    /// Resolves when the server closes the connection (or after `wait`);
    /// `true` if it closed.
    pub async fn closed_within(&self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.closed.notified())
            .await
            .is_ok()
    }

    /// Disconnects cleanly.
    pub fn close(&self) {
        let _ = self.out.send(Ws::text("41"));
        let _ = self.out.send(Ws::Close(None));
    }
}

/// Serves `router` on a fresh `127.0.0.1:0` listener until the test ends.
pub async fn spawn(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crate::serve(listener, router, std::future::pending()));
    addr
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: axum::http::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The error code of a `{"error": {"code"}}` body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Sends one request over a new connection: JSON `body` if given, a bearer
/// `token` if given.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    http_raw(addr, method, path, token, body).await
}

/// Like [`http`] with any body bytes and content type (malformed-input tests).
pub async fn http_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> Response {
    use http_body_util::{BodyExt, Full};
    let client: hyper_util::client::legacy::Client<_, Full<axum::body::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let payload = match body {
        Some((content_type, bytes)) => {
            req = req.header("content-type", content_type);
            axum::body::Bytes::from(bytes)
        }
        None => axum::body::Bytes::new(),
    };
    let res = client
        .request(req.body(Full::new(payload)).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Response {
        status,
        headers,
        body,
    }
}

/// Asserts a service at `addr` answers `/healthz` and `/readyz` with 200 and
/// `/metrics` with Prometheus text.
pub async fn assert_ops_endpoints(addr: std::net::SocketAddr) {
    assert_eq!(http(addr, "GET", "/healthz", None, None).await.status, 200);
    assert_eq!(http(addr, "GET", "/readyz", None, None).await.status, 200);
    let metrics = http(addr, "GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    let content_type = metrics.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
}
