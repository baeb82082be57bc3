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

pub mod attachments;
pub mod cluster;
pub mod config;
pub mod directory;
mod handlers;
pub mod limits;
pub mod metrics;
pub mod redis;

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
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::sync::{Notify, mpsc};
use tracing::Instrument;

pub use config::GatewayConfig;

use crate::attachments::AttachmentDirectory;
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
    ack: Ack,
    received: Instant,
}

/// Sends an event's ack; boxed so that sockets' state is adapter-agnostic.
pub(crate) type Ack = Box<dyn FnOnce(&Value) + Send>;

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
pub(crate) struct Inner<A: Adapter> {
    pub config: GatewayConfig,
    pub io: SocketIo<A>,
    pub bus: Arc<dyn EventBus>,
    pub verifier: Arc<Verifier>,
    pub directory: Arc<dyn RoomDirectory>,
    pub attachments: Arc<dyn AttachmentDirectory>,
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
    /// Resolves the file ids a message attaches.
    pub attachments: Arc<dyn AttachmentDirectory>,
    /// Presence, sequence numbers, replay buffer.
    pub cluster: Arc<dyn ClusterState>,
    /// How the gateway's membership feed queue lives: `Durable` on the
    /// in-process bus (a removal's publisher waits until live sockets
    /// left the room), `Transient` on a broker (the queue dies with the
    /// gateway instead of piling up).
    pub feed: Durability,
}

/// What the server needs of a gateway whatever its adapter.
trait Control: Send + Sync {
    fn close(&self) -> futures_util::future::BoxFuture<'_, ()>;
    fn connected(&self) -> i64;
}

impl<A: Adapter> Control for Inner<A> {
    fn close(&self) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(self.io.close())
    }
    fn connected(&self) -> i64 {
        self.metrics.connected.get()
    }
}

type Wrap = Arc<dyn Fn(axum::Router) -> axum::Router + Send + Sync>;

/// A built gateway: mount [`Gateway::router`] (or the layer) on a server.
pub struct Gateway {
    control: Arc<dyn Control>,
    wrap: Wrap,
}

impl Gateway {
    /// Builds a gateway on the in-memory adapter (a single gateway).
    pub async fn build(
        config: GatewayConfig,
        deps: GatewayDeps,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let builder = socket_builder(&config);
        let (layer, io) = builder.build_layer();
        Ok(
            Self::build_on::<LocalAdapter>(config, deps, registry, io, layer)
                .await?
                .0,
        )
    }

    /// Builds a gateway whose broadcasts reach the sockets of every gateway
    /// through Redis, with its cluster state there too (see [`redis`]);
    /// `deps.cluster` is replaced by it. Starts the heartbeat and the
    /// janitor that announces the users of dead gateways offline.
    pub async fn build_clustered(
        config: GatewayConfig,
        mut deps: GatewayDeps,
        registry: &prometheus::Registry,
        redis: redis::Redis,
    ) -> anyhow::Result<Self> {
        let (layer, io) = socket_builder(&config)
            .with_adapter::<redis::Adapter>(redis.adapter)
            .build_layer();
        deps.cluster = redis.cluster.clone();
        let (gateway, inner) =
            Self::build_on::<redis::Adapter>(config, deps, registry, io, layer).await?;
        tokio::spawn(heartbeat(inner, redis.cluster));
        Ok(gateway)
    }

    async fn build_on<A: Adapter + socketioxide_core::adapter::DefinedAdapter>(
        config: GatewayConfig,
        deps: GatewayDeps,
        registry: &prometheus::Registry,
        io: SocketIo<A>,
        layer: socketioxide::layer::SocketIoLayer<A>,
    ) -> anyhow::Result<(Self, Arc<Inner<A>>)> {
        let feed = deps.feed;
        let inner = Arc::new(Inner {
            config,
            io: io.clone(),
            bus: deps.bus,
            verifier: deps.verifier,
            directory: deps.directory,
            attachments: deps.attachments,
            cluster: deps.cluster,
            metrics: Metrics::new(registry),
            room_locks: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            typing: Mutex::new(HashMap::new()),
        });

        let on_connect = {
            let inner = inner.clone();
            move |s: SocketRef<A>| {
                let inner = inner.clone();
                async move { inner.on_connect(s).await }
            }
        };
        let authenticate = {
            let inner = inner.clone();
            move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
                let inner = inner.clone();
                async move { inner.authenticate(&s, auth.ok()) }
            }
        };
        socketioxide_core::adapter::Spawnable::spawn(io.ns("/", on_connect.with(authenticate)));

        let sub = inner
            .bus
            .subscribe(
                &format!("socket-gateway.{}", uuid_like()),
                &["chat.member.*"],
                feed,
            )
            .await?;
        tokio::spawn(membership_feed(inner.clone(), sub));
        let gateway = Self {
            control: inner.clone(),
            wrap: Arc::new(move |router: axum::Router| router.layer(layer.clone())),
        };
        Ok((gateway, inner))
    }

    /// `router` with Socket.IO served in front of it (at `/socket.io/`).
    pub fn wrap(&self, router: axum::Router) -> axum::Router {
        (self.wrap)(router)
    }

    /// A router serving only Socket.IO; merge it with the others.
    pub fn router(&self) -> axum::Router {
        self.wrap(axum::Router::new())
    }

    /// Disconnects every socket (graceful shutdown).
    pub async fn close(&self) {
        self.control.close().await;
    }

    /// Sockets connected now.
    pub fn connected(&self) -> i64 {
        self.control.connected()
    }
}

fn socket_builder(config: &GatewayConfig) -> socketioxide::SocketIoBuilder {
    SocketIo::builder()
        .max_payload(config.max_frame_bytes)
        .max_buffer_size(config.max_buffer_packets)
        .ws_max_message_size(usize::try_from(config.max_frame_bytes).unwrap_or(usize::MAX))
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

impl<A: Adapter> Inner<A> {
    /// The handshake: a valid access token or a `connect_error` with its
    /// code. On success the socket's handlers are registered here, before
    /// the client learns it is connected, so no early event is dropped.
    fn authenticate(
        self: &Arc<Self>,
        s: &SocketRef<A>,
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
                move |Event(event): Event, TryData(data): TryData<Value>, ack: AckSender<A>| {
                    let ctx = ctx.clone();
                    async move {
                        let job = Job {
                            event,
                            data: data.ok(),
                            ack: Box::new(move |body: &Value| {
                                if let Err(err) = ack.send(body) {
                                    tracing::debug!(error = %err, "cannot send ack");
                                }
                            }),
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
            s.on_disconnect(move |s: SocketRef<A>| {
                let inner = inner.clone();
                let ctx = ctx.clone();
                async move { inner.on_disconnect(s, ctx).await }
            });
        }
        Ok(())
    }

    async fn on_connect(self: Arc<Self>, s: SocketRef<A>) {
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

    async fn on_disconnect(&self, _s: SocketRef<A>, ctx: Arc<SocketCtx>) {
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

    /// Like [`Self::emit_to`], to this gateway's sockets only: for events
    /// every gateway hears itself (the membership feed).
    pub(crate) async fn emit_local<T: serde::Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        event: &str,
        data: &T,
    ) {
        let Some(ns) = self.io.of("/") else { return };
        if let Err(err) = ns.local().to(rooms).emit(event, data).await {
            tracing::warn!(error = %err, event, "local broadcast failed");
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
async fn expiry_watch<A: Adapter>(s: SocketRef<A>, ctx: Arc<SocketCtx>) {
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

/// Keeps this gateway's heartbeat in Redis and, on every beat, announces
/// offline the users whose only sockets were on a gateway that died.
async fn heartbeat<A: Adapter>(inner: Arc<Inner<A>>, cluster: Arc<redis::RedisCluster>) {
    let mut tick = tokio::time::interval(redis::HEARTBEAT_EVERY);
    loop {
        tick.tick().await;
        match cluster.beat().await {
            Ok(true) => {}
            // Redis lost this gateway's state: count its sockets again, or
            // their users would look offline until they reconnect.
            Ok(false) => {
                let mut counts = HashMap::new();
                for s in inner
                    .io
                    .of("/")
                    .map(|ns| ns.local().sockets())
                    .unwrap_or_default()
                {
                    if let Some(ctx) = s.extensions.get::<Arc<SocketCtx>>() {
                        *counts.entry(ctx.user).or_insert(0i64) += 1;
                    }
                }
                if let Err(err) = cluster.restore_presence(&counts).await {
                    tracing::warn!(error = %err, "cannot restore presence");
                } else if !counts.is_empty() {
                    tracing::info!(
                        users = counts.len(),
                        "presence restored after Redis lost it"
                    );
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "heartbeat failed");
                continue;
            }
        }
        match cluster.sweep().await {
            Ok(users) => {
                for user in users {
                    inner.announce_presence(user, false).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "sweep of dead gateways failed"),
        }
    }
}

/// Applies membership changes announced by db-writer to live sockets.
async fn membership_feed<A: Adapter>(inner: Arc<Inner<A>>, mut sub: Subscription) {
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
                    .emit_local(vec![user_room], "room:added", &change.room)
                    .await;
            }
            Some(EventKind::MemberRemoved) => {
                let room = change.room.id;
                inner.directory.forget(room, change.user);
                let sockets = inner
                    .io
                    .of("/")
                    .map(|ns| ns.local().to(user_room.clone()).sockets());
                for s in sockets.unwrap_or_default() {
                    if let Some(ctx) = s.extensions.get::<Arc<SocketCtx>>()
                        && let Ok(mut rooms) = ctx.rooms.lock()
                    {
                        rooms.remove(&room);
                    }
                    s.leave(room_key(room));
                }
                let event = json!({ "room": room });
                inner
                    .emit_local(vec![user_room], "room:removed", &event)
                    .await;
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
