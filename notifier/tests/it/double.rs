//! A push-service double that checks what a real push service checks:
//! the VAPID JWT (ES256 signature against `k`, `aud` with the port, `exp`,
//! `sub`), the required headers, and that the body decrypts (RFC 8291,
//! with this file's own code, not the notifier's `web-push`/`ece`) with the
//! subscription's private key and auth secret. It can be told to answer
//! with other statuses, per subscription.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier as _;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::Value;
use sha2::Sha256;

/// A browser's side of a subscription: the keys only it has.
pub struct Subscriber {
    pub secret: p256::SecretKey,
    pub auth: [u8; 16],
}

impl Subscriber {
    pub fn new() -> Self {
        let mut auth = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut auth);
        Self {
            secret: p256::SecretKey::random(&mut rand::rngs::OsRng),
            auth,
        }
    }
    pub fn p256dh(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<&'static str>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
        }
    }
}

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub at: Instant,
    /// The decrypted JSON, or why the request would be refused.
    pub result: Result<Value, String>,
    pub headers: HeaderMap,
    pub vapid_k: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    subscribers: HashMap<String, Subscriber>,
    script: HashMap<String, VecDeque<Answer>>,
    always: HashMap<String, Answer>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct PushDouble {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    notify: Arc<tokio::sync::Notify>,
}

impl PushDouble {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let notify = Arc::new(tokio::sync::Notify::new());
        let router = axum::Router::new()
            .route("/push/{id}", axum::routing::post(receive))
            .with_state((inner.clone(), notify.clone()));
        let addr = service_kit::testing::spawn(router).await;
        Self {
            addr,
            inner,
            notify,
        }
    }

    /// A new subscription on this double: its endpoint and the browser side.
    pub fn subscribe(&self, name: &str) -> (String, String, String) {
        let sub = Subscriber::new();
        let p256dh = URL_SAFE_NO_PAD.encode(sub.p256dh());
        let auth = URL_SAFE_NO_PAD.encode(sub.auth);
        self.inner
            .lock()
            .unwrap()
            .subscribers
            .insert(name.to_owned(), sub);
        (format!("http://{}/push/{name}", self.addr), p256dh, auth)
    }

    /// Answers `name`'s next requests with these, then 201.
    pub fn script(&self, name: &str, answers: Vec<Answer>) {
        self.inner
            .lock()
            .unwrap()
            .script
            .insert(name.to_owned(), answers.into());
    }

    /// Answers every request for `name` with this.
    pub fn always(&self, name: &str, answer: Answer) {
        self.inner
            .lock()
            .unwrap()
            .always
            .insert(name.to_owned(), answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn received_by(&self, name: &str) -> Vec<Received> {
        let path = format!("/push/{name}");
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `name` has received `n` requests.
    pub async fn wait_for(&self, name: &str, n: usize) -> Vec<Received> {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let notified = self.notify.notified();
                let got = self.received_by(name);
                if got.len() >= n {
                    return got;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name} did not receive {n} pushes"))
    }
}

type DoubleState = (Arc<Mutex<Inner>>, Arc<tokio::sync::Notify>);

async fn receive(
    State((inner, notify)): State<DoubleState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let port = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default();
    let mut g = inner.lock().unwrap();
    let checked = match g.subscribers.get(&name) {
        None => Err("unknown subscription".to_owned()),
        Some(sub) => check(sub, &headers, &body, &format!("http://{port}")),
    };
    let scripted = g.script.get_mut(&name).and_then(VecDeque::pop_front);
    let answer = scripted
        .or_else(|| g.always.get(&name).cloned())
        .unwrap_or(Answer::status(201));
    let (result, vapid_k, status) = match checked {
        Ok((json, k)) => (Ok(json), k, answer.status),
        // What a real service would answer to a bad request.
        Err(e) => (Err(e), Vec::new(), 400),
    };
    g.received.push(Received {
        path: format!("/push/{name}"),
        at: Instant::now(),
        result,
        headers: headers.clone(),
        vapid_k,
    });
    drop(g);
    notify.notify_waiters();
    let mut res = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(ra) = answer.retry_after {
        res.headers_mut().insert("retry-after", ra.parse().unwrap());
    }
    res
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("missing header {name}"))
}

/// The checks of a push service; returns the plaintext JSON and `k`.
fn check(
    sub: &Subscriber,
    h: &HeaderMap,
    body: &[u8],
    origin: &str,
) -> Result<(Value, Vec<u8>), String> {
    header(h, "ttl")?
        .parse::<u64>()
        .map_err(|_| "TTL is not a number")?;
    if header(h, "content-encoding")? != "aes128gcm" {
        return Err("Content-Encoding is not aes128gcm".into());
    }
    let urgency = header(h, "urgency")?;
    if !["very-low", "low", "normal", "high"].contains(&urgency) {
        return Err(format!("bad Urgency {urgency}"));
    }
    let topic = header(h, "topic")?;
    if topic.len() > 32
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("bad Topic {topic}"));
    }
    let k = verify_vapid(header(h, "authorization")?, origin)?;
    if body.len() > 4096 {
        return Err("body over 4096 bytes".into());
    }
    let plain = decrypt(sub, body)?;
    let json = serde_json::from_slice(&plain).map_err(|e| format!("payload is not JSON: {e}"))?;
    Ok((json, k))
}

/// `vapid t=<jwt>, k=<key>`: checks the ES256 signature against `k` and the
/// claims; returns `k`.
fn verify_vapid(auth: &str, origin: &str) -> Result<Vec<u8>, String> {
    let rest = auth
        .strip_prefix("vapid ")
        .ok_or("Authorization is not vapid")?;
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("k", v)) => k = Some(v),
            _ => {}
        }
    }
    let (t, k) = (t.ok_or("no t=")?, k.ok_or("no k=")?);
    let k = URL_SAFE_NO_PAD
        .decode(k)
        .map_err(|_| "k is not base64url")?;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&k).map_err(|_| "k is not a P-256 key")?;
    let mut parts = t.split('.');
    let (h, c, s) = (
        parts.next().ok_or("jwt")?,
        parts.next().ok_or("jwt")?,
        parts.next().ok_or("jwt")?,
    );
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| "jwt header")?)
            .map_err(|_| "jwt header json")?;
    if header["alg"] != "ES256" {
        return Err(format!("alg is {}", header["alg"]));
    }
    let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(s).map_err(|_| "sig")?)
        .map_err(|_| "signature is not r||s")?;
    key.verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "VAPID signature does not verify against k")?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|_| "claims")?)
        .map_err(|_| "claims json")?;
    if claims["aud"] != origin {
        return Err(format!("aud {} is not {origin}", claims["aud"]));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within 24 h of {now}"));
    }
    let sub = claims["sub"].as_str().ok_or("no sub")?;
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(format!("sub {sub} is not mailto: or https:"));
    }
    Ok(k)
}

/// RFC 8291 (with RFC 8188's aes128gcm framing), written from the RFCs.
pub fn decrypt(sub: &Subscriber, body: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("body shorter than the aes128gcm header".into());
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
    let idlen = body[20] as usize;
    if idlen != 65 || body.len() < 21 + idlen {
        return Err(format!(
            "keyid length {idlen}, expected the 65-byte sender key"
        ));
    }
    let as_public = &body[21..21 + idlen];
    let ciphertext = &body[21 + idlen..];
    if ciphertext.len() > rs {
        return Err("more than one record".into());
    }
    let as_key = p256::PublicKey::from_sec1_bytes(as_public).map_err(|_| "keyid is not a point")?;
    let shared = p256::ecdh::diffie_hellman(sub.secret.to_nonzero_scalar(), as_key.as_affine());
    // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" 0 ua_public as_public, 32)
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&sub.p256dh());
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&sub.auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|_| "hkdf")?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|_| "hkdf")?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| "hkdf")?;
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).map_err(|_| "cek")?;
    let mut plain = cipher
        .decrypt(&aes_gcm::Nonce::from(nonce), ciphertext)
        .map_err(|_| "body does not decrypt with the subscription's keys")?;
    // Padding: zeros after a 0x02 delimiter (the last record).
    while plain.last() == Some(&0) {
        plain.pop();
    }
    if plain.pop() != Some(2) {
        return Err("no last-record delimiter".into());
    }
    Ok(plain)
}
