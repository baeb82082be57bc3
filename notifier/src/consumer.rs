//! The bus consumer: membership events keep the notifier's room
//! projection current; each new message becomes pushes for the members
//! who are offline, have not muted the room and did not send it.
//!
//! The consumer does only local work (its store, the presence view) and
//! *queues* the pushes, then settles: in the standalone server it sits in
//! the message-send path, so it must never wait on a push service.
//!
//! Delivery is at-least-once: a redelivered message is recognised by a
//! bounded in-memory record of `(message, subscription)` pairs already
//! queued, so a redelivery soon after the first does not push twice; after
//! a restart a redelivered message may push again.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use service_kit::bus::{Settle, Subscription};
use service_kit::presence::PresenceView;
use shared_models::{Envelope, EventKind, MemberChanged, Message, MessageId, UserId};

use crate::push::{PushJob, Pusher};
use crate::store::{RoomInfo, SubscriptionId, SubscriptionStore};

/// The notifier's queue.
pub const QUEUE: &str = "notifier";

/// The routing keys it binds.
pub const BINDINGS: [&str; 2] = ["chat.message.created", "chat.member.*"];

/// The longest body preview in a push, in characters.
pub const PREVIEW_CHARS: usize = 140;

/// `(message, subscription)` pairs remembered against redelivery.
const DEDUPE_CAPACITY: usize = 100_000;

/// What a push carries (JSON; the service worker shows it).
#[derive(Debug, Clone, Serialize)]
pub struct PushPayload {
    /// Always `"message"` (room for other kinds later).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The room.
    pub room: PayloadRoom,
    /// Who wrote.
    pub sender: PayloadUser,
    /// The message's id.
    pub message_id: MessageId,
    /// Its seq in the room.
    pub seq: u64,
    /// The start of the body; absent when previews are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// A room in a push.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadRoom {
    /// Its id.
    pub id: shared_models::RoomId,
    /// Group rooms' name (direct rooms have none).
    pub name: Option<String>,
}

/// A user in a push.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadUser {
    /// Their id.
    pub id: UserId,
    /// Their name.
    pub username: String,
}

/// A push already queued: its message and subscription.
type PushKey = (MessageId, SubscriptionId);

/// Recently queued pushes, as a set and in arrival order (to forget the oldest).
type Seen = (HashSet<PushKey>, VecDeque<PushKey>);

/// The consumer's collaborators.
pub struct Context {
    /// The notifier's store.
    pub store: Arc<dyn SubscriptionStore>,
    /// Who is online.
    pub presence: Arc<dyn PresenceView>,
    /// The send queue.
    pub pusher: Arc<Pusher>,
    /// Whether pushes carry a body preview.
    pub preview: bool,
    dedupe: Mutex<Seen>,
}

impl Context {
    /// A context.
    pub fn new(
        store: Arc<dyn SubscriptionStore>,
        presence: Arc<dyn PresenceView>,
        pusher: Arc<Pusher>,
        preview: bool,
    ) -> Self {
        Self {
            store,
            presence,
            pusher,
            preview,
            dedupe: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// Whether this pair is new (and remembers it).
    fn first_time(&self, key: PushKey) -> bool {
        let Ok(mut guard) = self.dedupe.lock() else {
            return true;
        };
        let (set, order) = &mut *guard;
        if !set.insert(key) {
            return false;
        }
        order.push_back(key);
        if order.len() > DEDUPE_CAPACITY
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        true
    }
}

/// The body preview: whitespace folded, cut at [`PREVIEW_CHARS`] with an ellipsis.
pub fn preview(body: &str) -> String {
    let folded = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= PREVIEW_CHARS {
        folded
    } else {
        let mut s: String = folded.chars().take(PREVIEW_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// The JSON a push for `m` carries.
pub fn payload(room: &RoomInfo, m: &Message, with_preview: bool) -> Vec<u8> {
    let username = room
        .members
        .iter()
        .find(|u| u.id == m.sender)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let p = PushPayload {
        kind: "message",
        room: PayloadRoom {
            id: room.id,
            name: room.name.clone(),
        },
        sender: PayloadUser {
            id: m.sender,
            username,
        },
        message_id: m.id,
        seq: m.seq,
        preview: with_preview.then(|| preview(&m.body)),
    };
    serde_json::to_vec(&p).unwrap_or_default()
}

/// The `Topic` header: the room id in 32 hex digits (RFC 8030 allows 32
/// base64url characters), so a burst in one room collapses into one.
pub fn topic(room: shared_models::RoomId) -> String {
    room.0.simple().to_string()
}

/// Handles one new message: queues its pushes. Returns how many were queued.
pub async fn handle_message(ctx: &Context, m: &Message) -> Result<usize, String> {
    let Some(room) = ctx.store.room(m.room).await.map_err(|e| e.to_string())? else {
        tracing::debug!(room = %m.room, "message for a room the notifier has not heard of");
        return Ok(0);
    };
    let muted = ctx
        .store
        .muted_users(m.room)
        .await
        .map_err(|e| e.to_string())?;
    let mut offline = Vec::new();
    for u in &room.members {
        if u.id == m.sender || muted.contains(&u.id) {
            continue;
        }
        match ctx.presence.is_online(u.id).await {
            Ok(true) => {}
            Ok(false) => offline.push(u.id),
            Err(e) => {
                // Better a push too many than a message missed.
                tracing::warn!(user = %u.id, error = %e, "presence unknown, pushing");
                offline.push(u.id);
            }
        }
    }
    if offline.is_empty() {
        return Ok(0);
    }
    let subs = ctx
        .store
        .for_users(&offline)
        .await
        .map_err(|e| e.to_string())?;
    if subs.is_empty() {
        return Ok(0);
    }
    let payload: Arc<[u8]> = payload(&room, m, ctx.preview).into();
    let topic = topic(m.room);
    let mut queued = 0;
    for sub in subs {
        if !ctx.first_time((m.id, sub.id)) {
            continue;
        }
        if ctx.pusher.enqueue(PushJob {
            subscription: sub,
            message: m.id,
            payload: payload.clone(),
            topic: topic.clone(),
        }) {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Runs until the subscription ends, settling every delivery.
pub async fn run(mut sub: Subscription, ctx: Arc<Context>) {
    let mut backoff = Duration::from_millis(50);
    while let Some(d) = sub.next().await {
        // Only the bytes cross the awaits (a delivery's acker is not `Sync`).
        let (key, payload) = (d.routing_key.clone(), d.payload.clone());
        let how = handle(&ctx, &key, &payload).await;
        if how == Settle::Requeue {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        } else {
            backoff = Duration::from_millis(50);
        }
        d.settle(how).await;
    }
    tracing::info!("notifier consumer stopped");
}

async fn handle(ctx: &Context, routing_key: &str, payload: &[u8]) -> Settle {
    match EventKind::parse(routing_key) {
        Some(EventKind::MemberAdded | EventKind::MemberRemoved) => {
            let Ok(change) = Envelope::<MemberChanged>::from_slice(payload) else {
                tracing::error!(routing_key = %routing_key, "unparseable membership event, dead-lettering");
                return Settle::DeadLetter;
            };
            match ctx.store.put_room(&change.data.room).await {
                Ok(()) => Settle::Ack,
                Err(e) => {
                    // The projection must not miss a change: try again.
                    tracing::error!(error = %e, "cannot record membership, requeueing");
                    Settle::Requeue
                }
            }
        }
        Some(EventKind::MessageCreated) => {
            let Ok(env) = Envelope::<Message>::from_slice(payload) else {
                tracing::error!(routing_key = %routing_key, "unparseable message event, dead-lettering");
                return Settle::DeadLetter;
            };
            if let Err(e) = handle_message(ctx, &env.data).await {
                // Pushes are best effort; failing here would fail the
                // sender's message in the standalone server.
                tracing::error!(message = %env.data.id, error = %e, "cannot queue pushes for a message");
            }
            Settle::Ack
        }
        _ => Settle::Ack,
    }
}
