//! socket-gateway: Parley's Socket.IO v4 server.
//!
//! Browsers connect with the official `socket.io-client`, passing an access
//! token in the handshake. The gateway checks it, then serves the events of
//! `docs/PROTOCOL.md`. Every event of a socket goes through one queue, so a
//! client's events are handled in the order it sent them.
//!
//! The gateway keeps no durable state: messages and receipts go to the
//! [event bus](service_kit::bus) (the ack waits for durability), reads go to
//! the [`directory::RoomDirectory`], and presence, sequence numbers and the
//! replay buffer live in [`cluster::ClusterState`].

pub mod cluster;
pub mod config;
pub mod directory;
mod handlers;
pub mod limits;
pub mod metrics;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use service_kit::bus::{Durability, EventBus, Subscription};
use service_kit::token::{TokenError, Verifier};
use shared_models::chat::MemberChanged;
use shared_models::{Envelope, EventKind, RoomId, UserId};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::{Notify, mpsc};
use tracing::Instrument;

pub use config::GatewayConfig;

use crate::cluster::ClusterState;
use crate::directory::RoomDirectory;
use crate::limits::TokenBucket;
use crate::metrics::Metrics;

/// The gateway's name on the bus.
pub const SOURCE: &str = "socket-gateway";

/// The Socket.IO room of a chat room.
pub(crate) fn room_key(room: RoomId) -> String {
    format!("r:{room}")
}

/// The Socket.IO room holding every socket of a user.
pub(crate) fn user_key(user: UserId) -> String {
    format!("u:{user}")
}

/// One event waiting in a socket's queue.
pub(crate) struct Job {
    event: String,
    data: Option<Value>,
    ack: AckSender,
    received: Instant,
}

/// What the gateway knows about one connected socket.
pub(crate) struct SocketCtx {
    pub user: UserId,
    pub username: String,
    /// Access-token expiry (seconds since the epoch); moved by `auth:refresh`.
    pub exp: AtomicI64,
    pub rooms: Mutex<HashSet<RoomId>>,
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    closed: Notify,
    presence: tokio::sync::Mutex<PresenceState>,
}

/// Whether a socket was counted in presence, and whether it is gone.
#[derive(Default)]
pub(crate) struct PresenceState {
    counted: bool,
    closed: bool,
}

#[derive(Default)]
pub(crate) struct Typing {
    pub active: bool,
    pub relayed: Option<Instant>,
    pub renewed: Option<Instant>,
    pub generation: u64,
}

/// Shared by every socket's handlers.
pub(crate) struct Inner {
    pub config: GatewayConfig,
    pub io: SocketIo,
    pub bus: Arc<dyn EventBus>,
    pub verifier: Arc<Verifier>,
    pub directory: Arc<dyn RoomDirectory>,
    pub cluster: Arc<dyn ClusterState>,
    pub metrics: Metrics,
    /// Serialises sequence assignment and publishing per room, so seqs are
    /// gap-free and broadcast in order.
    pub room_locks: Mutex<HashMap<RoomId, Arc<tokio::sync::Mutex<()>>>>,
    pub buckets: Mutex<HashMap<UserId, TokenBucket>>,
    pub typing: Mutex<HashMap<(UserId, RoomId), Typing>>,
}

/// The backends a gateway runs on.
pub struct GatewayDeps {
    /// Where messages and receipts are made durable.
    pub bus: Arc<dyn EventBus>,
    /// Verifies access tokens.
    pub verifier: Arc<Verifier>,
    /// Reads of chat state.
    pub directory: Arc<dyn RoomDirectory>,
    /// Presence, sequence numbers, replay buffer.
    pub cluster: Arc<dyn ClusterState>,
}

/// A built gateway: mount [`Gateway::router`] (or the layer) on a server.
pub struct Gateway {
    inner: Arc<Inner>,
    layer: SocketIoLayer,
}

impl Gateway {
    /// Builds the Socket.IO server and subscribes to membership changes.
    pub async fn build(
        config: GatewayConfig,
        deps: GatewayDeps,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let (layer, io) = SocketIo::builder()
            .max_payload(config.max_frame_bytes)
            .ws_max_message_size(usize::try_from(config.max_frame_bytes).unwrap_or(usize::MAX))
            .build_layer();
        let inner = Arc::new(Inner {
            config,
            io: io.clone(),
            bus: deps.bus,
            verifier: deps.verifier,
            directory: deps.directory,
            cluster: deps.cluster,
            metrics: Metrics::new(registry),
            room_locks: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            typing: Mutex::new(HashMap::new()),
        });

        let on_connect = {
            let inner = inner.clone();
            move |s: SocketRef| {
                let inner = inner.clone();
                async move { inner.on_connect(s).await }
            }
        };
        let authenticate = {
            let inner = inner.clone();
            move |s: SocketRef, TryData(auth): TryData<Value>| {
                let inner = inner.clone();
                async move { inner.authenticate(&s, auth.ok()) }
            }
        };
        io.ns("/", on_connect.with(authenticate));

        let sub = inner
            .bus
            .subscribe(
                &format!("socket-gateway.{}", uuid_like()),
                &["chat.member.*"],
                // Removals must reach live sockets: the publisher waits for us.
                Durability::Durable,
            )
            .await?;
        tokio::spawn(membership_feed(inner.clone(), sub));
        Ok(Self { inner, layer })
    }

    /// The Socket.IO layer (serves `/socket.io/`).
    pub fn layer(&self) -> SocketIoLayer {
        self.layer.clone()
    }

    /// A router serving only Socket.IO; merge it with the others.
    pub fn router(&self) -> axum::Router {
        axum::Router::new().layer(self.layer.clone())
    }

    /// Disconnects every socket (graceful shutdown).
    pub async fn close(&self) {
        self.inner.io.close().await;
    }

    /// Sockets connected now.
    pub fn connected(&self) -> i64 {
        self.inner.metrics.connected.get()
    }
}

fn uuid_like() -> String {
    shared_models::MessageId::new().to_string()
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Inner {
    /// The handshake: a valid access token or a `connect_error` with its
    /// code. On success the socket's handlers are registered here, before
    /// the client learns it is connected, so no early event is dropped.
    fn authenticate(
        self: &Arc<Self>,
        s: &SocketRef,
        auth: Option<Value>,
    ) -> Result<(), TokenError> {
        let token = auth
            .as_ref()
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str);
        let claims = self.verifier.verify_opt(token).inspect_err(|e| {
            self.metrics
                .errors
                .with_label_values(&[e.code().as_str()])
                .inc();
        })?;
        // Every event goes through one queue per socket: in-order handling.
        let (tx, mut rx) = mpsc::channel::<Job>(self.config.socket_queue);
        let ctx = Arc::new(SocketCtx {
            user: claims.sub,
            username: claims.name,
            exp: AtomicI64::new(claims.exp),
            rooms: Mutex::new(HashSet::new()),
            queue: Mutex::new(Some(tx)),
            closed: Notify::new(),
            presence: tokio::sync::Mutex::new(PresenceState::default()),
        });
        s.extensions.insert(ctx.clone());
        // Joined before the client hears it is connected, so no presence
        // change or room notice addressed to the user can slip past.
        s.join(user_key(ctx.user));
        self.metrics.connected.inc();
        {
            let ctx = ctx.clone();
            s.on_fallback(
                move |Event(event): Event, TryData(data): TryData<Value>, ack: AckSender| {
                    let ctx = ctx.clone();
                    async move {
                        let job = Job {
                            event,
                            data: data.ok(),
                            ack,
                            received: Instant::now(),
                        };
                        let sender = ctx.queue.lock().ok().and_then(|q| q.clone());
                        match sender {
                            Some(tx) => {
                                if let Err(mpsc::error::TrySendError::Full(job)) = tx.try_send(job)
                                {
                                    handlers::reply(
                                        job.ack,
                                        Err(handlers::error(
                                            shared_models::ErrorCode::RateLimited,
                                            "too many pending events",
                                        )),
                                    );
                                }
                            }
                            None => tracing::debug!("event after disconnect dropped"),
                        }
                    }
                },
            );
        }
        {
            let inner = self.clone();
            let s = s.clone();
            let ctx = ctx.clone();
            // Every log line of this socket's events carries who and which socket.
            let span = tracing::info_span!("socket", sid = %s.id, user = %ctx.user);
            tokio::spawn(
                async move {
                    while let Some(job) = rx.recv().await {
                        let event = tracing::debug_span!("event", name = %job.event);
                        inner.dispatch(&s, &ctx, job).instrument(event).await;
                    }
                }
                .instrument(span),
            );
        }
        {
            let inner = self.clone();
            s.on_disconnect(move |s: SocketRef| {
                let inner = inner.clone();
                let ctx = ctx.clone();
                async move { inner.on_disconnect(s, ctx).await }
            });
        }
        Ok(())
    }

    async fn on_connect(self: Arc<Self>, s: SocketRef) {
        let Some(ctx) = s.extensions.get::<Arc<SocketCtx>>() else {
            // The middleware always inserts it; without it, refuse service.
            let _ = s.disconnect();
            return;
        };
        tokio::spawn(expiry_watch(s.clone(), ctx.clone()));
        {
            // Serialised with `on_disconnect`: a socket that is already gone
            // must not be counted online.
            let mut presence = ctx.presence.lock().await;
            if !presence.closed {
                presence.counted = true;
                match self.cluster.connected(ctx.user).await {
                    Ok(true) => self.announce_presence(ctx.user, true).await,
                    Ok(false) => {}
                    Err(err) => tracing::error!(error = %err, "presence update failed"),
                }
            }
        }
        // Tell the new socket who among its contacts is online now.
        match self.directory.contacts(ctx.user).await {
            Ok(contacts) => {
                for c in contacts {
                    if self.cluster.is_online(c).await.unwrap_or(false) {
                        let _ = s.emit("presence", &json!({ "user": c, "online": true }));
                    }
                }
            }
            Err(err) => tracing::error!(error = %err, "cannot read contacts"),
        }
        tracing::debug!(sid = %s.id, user = %ctx.user, username = %ctx.username, "socket connected");
    }

    async fn on_disconnect(&self, _s: SocketRef, ctx: Arc<SocketCtx>) {
        if let Ok(mut q) = ctx.queue.lock() {
            // Ends the socket's worker once the queued events are handled.
            q.take();
        }
        ctx.closed.notify_one();
        self.metrics.connected.dec();
        let mut presence = ctx.presence.lock().await;
        presence.closed = true;
        if presence.counted {
            match self.cluster.disconnected(ctx.user).await {
                Ok(true) => self.announce_presence(ctx.user, false).await,
                Ok(false) => {}
                Err(err) => tracing::error!(error = %err, "presence update failed"),
            }
        }
    }

    /// Broadcasts to Socket.IO rooms of the default namespace. During
    /// shutdown the namespace is gone and there is no one left to tell.
    pub(crate) async fn emit_to<T: serde::Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        event: &str,
        data: &T,
    ) {
        let Some(ns) = self.io.of("/") else { return };
        if let Err(err) = ns.to(rooms).emit(event, data).await {
            tracing::warn!(error = %err, event, "broadcast failed");
        }
    }

    /// Tells everyone sharing a room with `user` that it came online or went offline.
    async fn announce_presence(&self, user: UserId, online: bool) {
        let contacts = match self.directory.contacts(user).await {
            Ok(c) => c,
            Err(err) => {
                tracing::error!(error = %err, "cannot read contacts");
                return;
            }
        };
        if contacts.is_empty() {
            return;
        }
        let rooms: Vec<String> = contacts.into_iter().map(user_key).collect();
        let event = json!({ "user": user, "online": online });
        self.emit_to(rooms, "presence", &event).await;
    }
}

/// Disconnects a socket when its access token expires without `auth:refresh`.
async fn expiry_watch(s: SocketRef, ctx: Arc<SocketCtx>) {
    loop {
        let exp_ms = ctx.exp.load(Ordering::Acquire).saturating_mul(1000);
        let now = unix_now_ms();
        if exp_ms <= now {
            if s.connected() {
                tracing::info!(sid = %s.id, user = %ctx.user, "access token expired, disconnecting");
                // Queued on the same transport before the disconnect packet,
                // so the client reads it first.
                let _ = s.emit("auth:expired", &json!({}));
                let _ = s.disconnect();
            }
            return;
        }
        let wait = std::time::Duration::from_millis(u64::try_from(exp_ms - now).unwrap_or(0));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = ctx.closed.notified() => return,
        }
    }
}

/// Applies membership changes announced by db-writer to live sockets.
async fn membership_feed(inner: Arc<Inner>, mut sub: Subscription) {
    while let Some(d) = sub.next().await {
        let kind = EventKind::parse(&d.routing_key);
        let Ok(change) = Envelope::<MemberChanged>::from_slice(&d.payload).map(|e| e.data) else {
            tracing::warn!(routing_key = %d_key(&kind), "unparseable membership event dead-lettered");
            d.settle(service_kit::bus::Settle::DeadLetter).await;
            continue;
        };
        let user_room = user_key(change.user);
        match kind {
            Some(EventKind::MemberAdded) => {
                inner
                    .emit_to(vec![user_room], "room:added", &change.room)
                    .await;
            }
            Some(EventKind::MemberRemoved) => {
                let room = change.room.id;
                let sockets = inner
                    .io
                    .of("/")
                    .map(|ns| ns.to(user_room.clone()).sockets());
                for s in sockets.unwrap_or_default() {
                    if let Some(ctx) = s.extensions.get::<Arc<SocketCtx>>()
                        && let Ok(mut rooms) = ctx.rooms.lock()
                    {
                        rooms.remove(&room);
                    }
                    s.leave(room_key(room));
                }
                let event = json!({ "room": room });
                inner.emit_to(vec![user_room], "room:removed", &event).await;
            }
            _ => {}
        }
        // Acked once applied: a removal is in force before db-writer answers.
        d.settle(service_kit::bus::Settle::Ack).await;
    }
}

fn d_key(kind: &Option<EventKind>) -> &'static str {
    kind.map_or("unknown", EventKind::as_str)
}
