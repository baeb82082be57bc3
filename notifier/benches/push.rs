//! Push throughput: `cargo bench -p notifier --bench push`.
//!
//! End to end: the notifier consumes N `chat.message.created` events from an
//! in-process bus (a room of one sender and R offline recipients with one
//! subscription each) and sends every push to a local HTTP receiver that
//! answers 201. In the same run, the raw cost of building one push
//! (RFC 8291 encryption + a fresh ES256 VAPID signature, and encryption
//! with the cached JWT) on one core gives the ceiling. Prints figures and
//! the ratio; it asserts nothing about speed.

// A benchmark reports by printing and fails by panicking.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use notifier::push::{Outcome, build_push};
use notifier::store::StoredSubscription;
use notifier::{NotifierApp, NotifierConfig, NotifierDeps};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use service_kit::bus::{self, EventBus, InProcessBus};
use service_kit::presence::{PresenceError, PresenceView};
use shared_models::{
    ClientId, Envelope, EventKind, MemberChanged, Message, MessageId, Room, RoomId, RoomKind,
    Timestamp, UserId, UserRef,
};

const RECIPIENTS: usize = 20;
const MESSAGES: usize = 250;
const RAW_ITERATIONS: usize = 2000;

struct NobodyOnline;

#[async_trait]
impl PresenceView for NobodyOnline {
    async fn is_online(&self, _: UserId) -> Result<bool, PresenceError> {
        Ok(false)
    }
}

fn browser_keys() -> (String, String) {
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let public = secret.public_key().to_encoded_point(false);
    let mut auth = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut auth);
    (
        URL_SAFE_NO_PAD.encode(public.as_bytes()),
        URL_SAFE_NO_PAD.encode(auth),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; test runners (`cargo test`, nextest's
    // `--list`) run bench targets too, and must not start a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let receiver = axum::Router::new().route(
        "/push/{id}",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::CREATED
            }
        }),
    );
    let addr = service_kit::testing::spawn(receiver).await;

    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(InProcessBus::default());
    let dyn_bus: Arc<dyn EventBus> = bus.clone();
    let mut config = NotifierConfig::with_data_dir(dir.path().into());
    config.allow_http = true;
    let (concurrency, per_service) = (config.send.concurrency, config.send.concurrency_per_service);
    let app = NotifierApp::build(
        config,
        NotifierDeps {
            bus: dyn_bus,
            verifier: Arc::new(
                service_kit::token::Verifier::from_jwks(&Default::default()).unwrap(),
            ),
            presence: Arc::new(NobodyOnline),
        },
        &prometheus::Registry::new(),
    )
    .await
    .unwrap();

    // The room: one sender, RECIPIENTS offline members with a subscription each.
    let sender = UserId::new();
    let mut room = Room {
        id: RoomId::new(),
        name: Some("bench".into()),
        kind: RoomKind::Group,
        owner: Some(sender),
        members: vec![sender],
        users: vec![UserRef {
            id: sender,
            username: "sender".into(),
        }],
    };
    let mut sample = None;
    for i in 0..RECIPIENTS {
        let id = UserId::new();
        room.members.push(id);
        room.users.push(UserRef {
            id,
            username: format!("user{i}"),
        });
        let (p256dh, auth) = browser_keys();
        let endpoint = format!("http://{addr}/push/{i}");
        let up = app
            .store()
            .upsert(id, &endpoint, &p256dh, &auth, 10)
            .await
            .unwrap();
        sample.get_or_insert(StoredSubscription {
            id: up.id,
            user: id,
            endpoint,
            p256dh,
            auth,
            created_ms: 0,
        });
    }
    let env = Envelope::new(
        EventKind::MemberAdded,
        "bench",
        MemberChanged {
            room: room.clone(),
            user: sender,
        },
    );
    bus.publish(EventKind::MemberAdded.as_str(), env.to_bytes())
        .await
        .unwrap();

    // End to end.
    let total = RECIPIENTS * MESSAGES;
    let mut events = app.pusher().events();
    let started = Instant::now();
    let publisher = {
        let bus = bus.clone();
        let room_id = room.id;
        tokio::spawn(async move {
            for seq in 1..=MESSAGES as u64 {
                let m = Message {
                    id: MessageId::new(),
                    room: room_id,
                    seq,
                    sender,
                    body: format!("benchmark message number {seq} with a little text in it"),
                    ts: Timestamp::now(),
                    client_id: ClientId::new(),
                    attachments: Vec::new(),
                };
                bus::publish(bus.as_ref(), "bench", m).await.unwrap();
            }
        })
    };
    let mut delivered = 0;
    let mut finished = 0;
    while finished < total {
        let ev = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("pushes stalled")
            .expect("event stream lagged; raise its capacity");
        finished += 1;
        if ev.outcome == Outcome::Delivered {
            delivered += 1;
        }
    }
    let e2e = started.elapsed();
    publisher.await.unwrap();
    assert_eq!(delivered, total, "every push should be delivered");
    assert_eq!(received.load(Ordering::Relaxed), total as u64);
    let e2e_rate = total as f64 / e2e.as_secs_f64();

    // The ceiling: building one push on one core.
    let sub = sample.unwrap();
    let payload = br#"{"type":"message","room":{"id":"00000000-0000-7000-8000-000000000000","name":"bench"},"sender":{"id":"00000000-0000-7000-8000-000000000001","username":"sender"},"message_id":"00000000-0000-7000-8000-000000000002","seq":1,"preview":"benchmark message number 1 with a little text in it"}"#;
    let signer = app.pusher();
    let measure = |cached: bool| {
        let t = Instant::now();
        for _ in 0..RAW_ITERATIONS {
            build_push(
                signer.signer(),
                &sub,
                payload,
                "bench",
                Duration::from_secs(60),
                cached,
            )
            .unwrap();
        }
        t.elapsed() / RAW_ITERATIONS as u32
    };
    let fresh = measure(false);
    let cached = measure(true);
    let ceiling_fresh = 1.0 / fresh.as_secs_f64();
    let ceiling_cached = 1.0 / cached.as_secs_f64();

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("notifier push benchmark ({cores} cores available)");
    println!(
        "  end to end: {total} pushes ({MESSAGES} messages x {RECIPIENTS} offline recipients) in {:.2} s = {e2e_rate:.0} pushes/s (concurrency {concurrency}, {per_service} per push service)",
        e2e.as_secs_f64()
    );
    println!(
        "  raw encrypt + fresh ES256 sign: {:.1} us/push = {ceiling_fresh:.0} pushes/s per core",
        fresh.as_secs_f64() * 1e6
    );
    println!(
        "  raw encrypt with the cached JWT (what the notifier does): {:.1} us/push = {ceiling_cached:.0} pushes/s per core, {:.0} on {cores} cores",
        cached.as_secs_f64() * 1e6,
        ceiling_cached * cores as f64
    );
    println!(
        "  ratio end to end / raw ceiling (cached JWT): {:.2} of one core, {:.2} of {cores} cores",
        e2e_rate / ceiling_cached,
        e2e_rate / (ceiling_cached * cores as f64)
    );
}
