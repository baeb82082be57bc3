//! The client events of `docs/PROTOCOL.md`, one function each.
//!
//! Each handler parses its payload into a typed request, checks the
//! caller's right to the room, and returns the ack's body or an error; the
//! dispatcher turns that into `{ok: true, …}` or `{ok: false, error}`.

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use service_kit::bus;
use shared_models::{
    ClientId, ErrorBody, ErrorCode, Message, MessageBody, MessageId, ReceiptRead, RoomId, Timestamp,
};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::{Ack, Inner, Job, SocketCtx, Typing, room_key};

/// An ack body or an error.
pub(crate) type Reply = Result<Map<String, Value>, ErrorBody>;

/// An error body.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, message)
}

fn internal(err: impl std::fmt::Display) -> ErrorBody {
    tracing::error!(error = %err, "event failed");
    error(ErrorCode::Internal, "internal error")
}

fn not_found() -> ErrorBody {
    error(ErrorCode::NotFound, "room not found")
}

fn ok(v: Value) -> Reply {
    match v {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// Sends the ack (a no-op when the client asked for none).
pub(crate) fn reply(ack: Ack, res: Reply) {
    let body = match res {
        Ok(mut m) => {
            m.insert("ok".into(), Value::Bool(true));
            Value::Object(m)
        }
        Err(e) => json!({ "ok": false, "error": e }),
    };
    ack(&body);
}

/// Counts the bytes of a value's JSON without building it.
fn json_len(v: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

fn parse<T: DeserializeOwned>(v: Value) -> Result<T, ErrorBody> {
    if !v.is_object() {
        return Err(error(
            ErrorCode::BadRequest,
            "payload must be a JSON object",
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| error(ErrorCode::BadRequest, format!("invalid payload: {e}")))
}

#[derive(Deserialize)]
struct RoomReq {
    room: RoomId,
}

#[derive(Deserialize)]
struct SendReq {
    room: RoomId,
    client_id: ClientId,
    body: String,
    /// File ids (at most `attachments::MAX_ATTACHMENTS`).
    #[serde(default)]
    attachments: Vec<shared_models::FileId>,
    /// What those ids resolved to (filled in before the seq is assigned).
    #[serde(skip)]
    resolved: Vec<shared_models::Attachment>,
}

#[derive(Deserialize)]
struct TypingReq {
    room: RoomId,
    typing: bool,
}

#[derive(Deserialize)]
struct ReceiptReq {
    room: RoomId,
    seq: u64,
}

#[derive(Deserialize)]
struct HistoryReq {
    room: RoomId,
    before: Option<u64>,
    limit: Option<u64>,
}

#[derive(Deserialize)]
struct SyncReq {
    // Ordered, so which rooms fill the per-call budget first is predictable.
    rooms: std::collections::BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct RefreshReq {
    token: String,
}

const EVENTS: [&str; 8] = [
    "room:join",
    "room:leave",
    "message:send",
    "typing",
    "receipt:read",
    "history",
    "sync",
    "auth:refresh",
];

impl<A: Adapter> Inner<A> {
    /// Handles one queued event and sends its ack.
    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        s: &SocketRef<A>,
        ctx: &Arc<SocketCtx>,
        job: Job,
    ) {
        let Job {
            event,
            data,
            ack,
            received,
        } = job;
        let expired = ctx
            .exp
            .load(std::sync::atomic::Ordering::Acquire)
            .saturating_mul(1000)
            <= crate::unix_now_ms();
        let res = if expired {
            // The expiry watcher disconnects the socket; until then, serve nothing.
            Err(error(
                ErrorCode::TokenExpired,
                "access token expired; send auth:refresh",
            ))
        } else if !EVENTS.contains(&event.as_str()) {
            Err(error(
                ErrorCode::UnknownEvent,
                format!("unknown event {event:?}"),
            ))
        } else {
            match data {
                None => Err(error(
                    ErrorCode::BadRequest,
                    "payload must be a JSON object",
                )),
                Some(v) if json_len(&v) > self.config.max_event_bytes => Err(error(
                    ErrorCode::PayloadTooLarge,
                    format!("payload over {} bytes", self.config.max_event_bytes),
                )),
                Some(v) => match event.as_str() {
                    "room:join" => self.join(s, ctx, v).await,
                    "room:leave" => self.leave(s, ctx, v),
                    "message:send" => self.send(ctx, v).await,
                    "typing" => self.typing(s, ctx, v).await,
                    "receipt:read" => self.receipt(s, ctx, v).await,
                    "history" => self.history(ctx, v).await,
                    "sync" => self.sync(ctx, v).await,
                    _ => self.refresh(ctx, v),
                },
            }
        };
        if let Err(e) = &res {
            self.metrics
                .errors
                .with_label_values(&[e.code.as_str()])
                .inc();
        }
        if event == "message:send" {
            self.metrics
                .ack_seconds
                .observe(received.elapsed().as_secs_f64());
        }
        reply(ack, res);
    }

    async fn member(
        &self,
        room: RoomId,
        ctx: &SocketCtx,
    ) -> Result<db_writer::store::Membership, ErrorBody> {
        self.directory
            .membership(room, ctx.user)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)
    }

    async fn last_seq(&self, room: RoomId, stored: u64) -> Result<u64, ErrorBody> {
        Ok(self
            .cluster
            .last_seq(room)
            .await
            .map_err(internal)?
            .unwrap_or(0)
            .max(stored))
    }

    async fn join(&self, s: &SocketRef<A>, ctx: &SocketCtx, v: Value) -> Reply {
        let req: RoomReq = parse(v)?;
        self.member(req.room, ctx).await?;
        {
            let mut rooms = ctx.rooms.lock().map_err(internal)?;
            if !rooms.contains(&req.room) && rooms.len() >= self.config.max_rooms_per_socket {
                return Err(error(
                    ErrorCode::TooManyRooms,
                    format!(
                        "a socket can join at most {} rooms",
                        self.config.max_rooms_per_socket
                    ),
                ));
            }
            rooms.insert(req.room);
        }
        s.join(room_key(req.room));
        // A removal that landed between the check and the join must not
        // leave the socket listening.
        let Some(m) = self
            .directory
            .membership(req.room, ctx.user)
            .await
            .map_err(internal)?
        else {
            s.leave(room_key(req.room));
            if let Ok(mut rooms) = ctx.rooms.lock() {
                rooms.remove(&req.room);
            }
            return Err(not_found());
        };
        let last_seq = self.last_seq(req.room, m.last_seq).await?;
        ok(json!({ "last_seq": last_seq, "read_seq": m.read_seq }))
    }

    fn leave(&self, s: &SocketRef<A>, ctx: &SocketCtx, v: Value) -> Reply {
        let req: RoomReq = parse(v)?;
        if let Ok(mut rooms) = ctx.rooms.lock() {
            rooms.remove(&req.room);
        }
        s.leave(room_key(req.room));
        ok(json!({}))
    }

    fn room_lock(&self, room: RoomId) -> Result<Arc<tokio::sync::Mutex<()>>, ErrorBody> {
        let mut locks = self.room_locks.lock().map_err(internal)?;
        Ok(locks.entry(room).or_default().clone())
    }

    fn allow_message(&self, ctx: &SocketCtx) -> Result<bool, ErrorBody> {
        let (rate, burst) = (self.config.msg_rate_per_sec, self.config.msg_burst);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().map_err(internal)?;
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| !b.is_full(rate, burst, now));
        }
        let bucket = buckets
            .entry(ctx.user)
            .or_insert_with(|| crate::limits::TokenBucket::full(burst, now));
        Ok(bucket.take(rate, burst, now))
    }

    /// The metadata of a message's attachments; `attachment_invalid` if
    /// any id is not a file of the room.
    async fn resolve_attachments(
        &self,
        room: RoomId,
        ids: &[shared_models::FileId],
    ) -> Result<Vec<shared_models::Attachment>, ErrorBody> {
        use crate::attachments::{AttachmentError, MAX_ATTACHMENTS};
        if ids.is_empty() {
            return Ok(vec![]);
        }
        if ids.len() > MAX_ATTACHMENTS {
            return Err(error(
                ErrorCode::BadRequest,
                format!("at most {MAX_ATTACHMENTS} attachments per message"),
            ));
        }
        self.attachments
            .resolve(room, ids)
            .await
            .map_err(|e| match e {
                AttachmentError::Invalid(id) => error(
                    ErrorCode::AttachmentInvalid,
                    format!("file {id} is not an upload in this room"),
                ),
                AttachmentError::Unavailable(e) => {
                    tracing::warn!(error = %e, room = %room, "attachments unavailable");
                    error(ErrorCode::Unavailable, "file service unavailable, retry")
                }
            })
    }

    async fn send(&self, ctx: &SocketCtx, v: Value) -> Reply {
        let mut req: SendReq = parse(v)?;
        let body = MessageBody::parse(std::mem::take(&mut req.body), self.config.max_body_chars)
            .map_err(|e| {
                error(
                    ErrorCode::BodyTooLong,
                    format!("{e} (1-{} characters)", self.config.max_body_chars),
                )
            })?;
        if !self
            .directory
            .is_member(req.room, ctx.user)
            .await
            .map_err(internal)?
        {
            return Err(not_found());
        }
        // Resolved before the room's lease is taken: a slow file service
        // must not hold up the room's other senders.
        req.resolved = self.resolve_attachments(req.room, &req.attachments).await?;

        // The local lock keeps this gateway's senders off the shared lease;
        // the lease serialises seq assignment across gateways.
        let lock = self.room_lock(req.room)?;
        let _guard = lock.lock().await;
        let leased = self
            .cluster
            .acquire_for_send(req.room, ctx.user, req.client_id)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, room = %req.room, "room lease unavailable");
                error(
                    ErrorCode::Unavailable,
                    "room is busy, retry with the same client_id",
                )
            })?;
        let room = req.room;
        let res = self.send_in_order(ctx, req, body, &leased).await;
        self.cluster.release(room, leased.lease).await;
        res
    }

    /// The part of `message:send` done under the room's lease.
    async fn send_in_order(
        &self,
        ctx: &SocketCtx,
        req: SendReq,
        body: MessageBody,
        leased: &crate::cluster::SendLease,
    ) -> Reply {
        // A retry returns what the first attempt stored, and broadcasts nothing.
        match &leased.recent {
            Some((message, true)) => return ok(json!({ "message": message })),
            // The first attempt's outcome was unknown: publish the very same
            // message again (db-writer ignores a second copy).
            Some((message, false)) => return self.publish_and_broadcast(message.clone()).await,
            None => {}
        }
        if leased.lease.check_store
            && let Some(message) = self
                .directory
                .by_client_id(req.room, ctx.user, req.client_id)
                .await
                .map_err(internal)?
        {
            return ok(json!({ "message": message }));
        }
        if !self.allow_message(ctx)? {
            return Err(error(
                ErrorCode::RateLimited,
                "too many messages, slow down",
            ));
        }
        let last = match leased.last_seq {
            Some(seq) => seq,
            // First message since start: the store knows where the room is.
            None => {
                // The position comes from the store: wait out publishes that
                // may still be on their way, then for the store to catch up,
                // or a seq could be handed out twice.
                tokio::time::sleep(leased.settle_after).await;
                let stored = self
                    .directory
                    .settled_membership(req.room, ctx.user)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, room = %req.room, "store not caught up");
                        error(
                            ErrorCode::Unavailable,
                            "room is not ready, retry with the same client_id",
                        )
                    })?
                    .ok_or_else(not_found)?
                    .last_seq;
                self.cluster
                    .init_seq(req.room, stored)
                    .await
                    .map_err(internal)?;
                self.cluster
                    .last_seq(req.room)
                    .await
                    .map_err(internal)?
                    .unwrap_or(stored)
            }
        };
        let message = Message {
            id: MessageId::new(),
            room: req.room,
            seq: last + 1,
            sender: ctx.user,
            body: body.into_inner(),
            ts: Timestamp::now(),
            client_id: req.client_id,
            attachments: req.resolved.clone(),
        };
        self.publish_and_broadcast(message).await
    }

    /// Publishes durably, then records, broadcasts and answers.
    async fn publish_and_broadcast(&self, message: Message) -> Reply {
        let room = message.room;
        if let Err(err) = bus::publish(self.bus.as_ref(), crate::SOURCE, message.clone()).await {
            tracing::warn!(error = %err, room = %room, "message not durable, refusing");
            if let Err(err) = self.cluster.uncertain(&message).await {
                tracing::error!(error = %err, room = %room, "cannot record uncertain message");
            }
            return Err(error(
                ErrorCode::Unavailable,
                "message could not be stored, retry with the same client_id",
            ));
        }
        if let Err(err) = self.cluster.committed(&message).await {
            tracing::error!(error = %err, room = %room, "cannot record committed message");
        }
        self.metrics.messages.inc();
        self.emit_to(vec![room_key(room)], "message:new", &message)
            .await;
        ok(json!({ "message": message }))
    }

    async fn typing(self: &Arc<Self>, s: &SocketRef<A>, ctx: &SocketCtx, v: Value) -> Reply {
        let req: TypingReq = parse(v)?;
        let joined = ctx
            .rooms
            .lock()
            .map(|r| r.contains(&req.room))
            .unwrap_or(false);
        if !joined {
            self.member(req.room, ctx).await?;
        }
        let key = (ctx.user, req.room);
        let now = Instant::now();
        let generation = {
            let mut typing = self.typing.lock().map_err(internal)?;
            if typing.len() > 100_000 {
                let throttle = self.config.typing_throttle;
                typing.retain(|_, st| {
                    st.active || st.relayed.is_some_and(|t| now.duration_since(t) < throttle)
                });
            }
            let state = typing.entry(key).or_insert_with(Typing::default);
            if req.typing {
                state.renewed = Some(now);
                // The throttle spans true/false flips: alternating cannot flood the room.
                let recent = state
                    .relayed
                    .is_some_and(|t| now.duration_since(t) < self.config.typing_throttle);
                if recent {
                    return ok(json!({ "throttled": true }));
                }
                state.active = true;
                state.relayed = Some(now);
                state.generation += 1;
                Some(state.generation)
            } else {
                if !state.active {
                    // Nothing shown to clear.
                    return ok(json!({}));
                }
                state.active = false;
                // Cancels the pending expiry.
                state.generation += 1;
                None
            }
        };
        let event = json!({ "room": req.room, "user": ctx.user, "typing": req.typing });
        let _ = s.to(room_key(req.room)).emit("typing", &event).await;
        if let Some(generation) = generation {
            tokio::spawn(typing_expiry(self.clone(), s.clone(), key, generation));
        }
        ok(json!({}))
    }

    async fn receipt(&self, s: &SocketRef<A>, ctx: &SocketCtx, v: Value) -> Reply {
        let req: ReceiptReq = parse(v)?;
        let m = self.member(req.room, ctx).await?;
        let last = self.last_seq(req.room, m.last_seq).await?;
        if req.seq > last {
            return Err(error(
                ErrorCode::InvalidSeq,
                format!("seq {} is past the room's last seq {last}", req.seq),
            ));
        }
        let read = ReceiptRead {
            room: req.room,
            user: ctx.user,
            seq: req.seq.max(m.read_seq),
        };
        if read.seq > m.read_seq {
            if let Err(err) = bus::publish(self.bus.as_ref(), crate::SOURCE, read.clone()).await {
                tracing::warn!(error = %err, "receipt not durable");
                return Err(error(
                    ErrorCode::Unavailable,
                    "receipt could not be stored, retry",
                ));
            }
            let _ = s.to(room_key(req.room)).emit("receipt", &read).await;
        }
        ok(json!({ "seq": read.seq }))
    }

    async fn history(&self, ctx: &SocketCtx, v: Value) -> Reply {
        let req: HistoryReq = parse(v)?;
        self.member(req.room, ctx).await?;
        let (before, limit) = db_writer::routes::page_bounds(req.before, req.limit);
        let messages = self
            .directory
            .history(req.room, before, limit)
            .await
            .map_err(internal)?;
        ok(json!({ "messages": messages }))
    }

    async fn sync(&self, ctx: &SocketCtx, v: Value) -> Reply {
        let req: SyncReq = parse(v)?;
        if req.rooms.len() > self.config.max_rooms_per_socket {
            return Err(error(
                ErrorCode::BadRequest,
                format!(
                    "at most {} rooms per sync",
                    self.config.max_rooms_per_socket
                ),
            ));
        }
        let mut rooms = Vec::with_capacity(req.rooms.len());
        for (raw, after) in req.rooms {
            let room: RoomId = raw
                .parse()
                .map_err(|_| error(ErrorCode::BadRequest, "rooms keys must be room ids"))?;
            self.member(room, ctx).await?;
            rooms.push((raw, room, after));
        }
        // One answer carries at most `sync_cap` messages in all, so a client
        // with many busy rooms cannot make one ack huge; `has_more` says
        // where to continue.
        let mut budget = self.config.sync_cap as usize;
        let mut messages = Map::new();
        let mut has_more = Map::new();
        for (raw, room, after) in rooms {
            let want = budget + 1;
            let mut found = match self
                .cluster
                .buffered_after(room, after, want)
                .await
                .map_err(internal)?
            {
                Some(m) => m,
                None => self
                    .directory
                    .after(room, after, u32::try_from(want).unwrap_or(u32::MAX))
                    .await
                    .map_err(internal)?,
            };
            let more = found.len() > budget;
            found.truncate(budget);
            budget -= found.len();
            has_more.insert(raw.clone(), Value::Bool(more));
            messages.insert(raw, serde_json::to_value(found).map_err(internal)?);
        }
        ok(json!({ "messages": messages, "has_more": has_more }))
    }

    fn refresh(&self, ctx: &SocketCtx, v: Value) -> Reply {
        let req: RefreshReq = parse(v)?;
        let claims = self
            .verifier
            .verify(&req.token)
            .map_err(|e| error(e.code(), "access token refused"))?;
        if claims.sub != ctx.user {
            return Err(error(ErrorCode::Forbidden, "token is for another user"));
        }
        ctx.exp
            .fetch_max(claims.exp, std::sync::atomic::Ordering::AcqRel);
        let expires_at = Timestamp::from_millis(claims.exp.saturating_mul(1000));
        ok(json!({ "expires_at": expires_at }))
    }
}

/// Sends `typing: false` once a `typing: true` goes unrenewed for the TTL.
async fn typing_expiry<A: Adapter>(
    inner: Arc<Inner<A>>,
    s: SocketRef<A>,
    key: (shared_models::UserId, RoomId),
    generation: u64,
) {
    let ttl = inner.config.typing_ttl;
    loop {
        let renewed = {
            let Ok(typing) = inner.typing.lock() else {
                return;
            };
            match typing.get(&key) {
                Some(st) if st.generation == generation => st.renewed,
                _ => return,
            }
        };
        let due = renewed.map_or_else(Instant::now, |r| r + ttl);
        if Instant::now() < due {
            tokio::time::sleep_until(due.into()).await;
            continue;
        }
        {
            let Ok(mut typing) = inner.typing.lock() else {
                return;
            };
            match typing.get_mut(&key) {
                Some(st) if st.generation == generation => st.active = false,
                _ => return,
            }
        }
        let event = json!({ "room": key.1, "user": key.0, "typing": false });
        let _ = s.to(room_key(key.1)).emit("typing", &event).await;
        return;
    }
}
