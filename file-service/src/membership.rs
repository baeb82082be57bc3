//! The membership projection: `chat.member.added` / `chat.member.removed`
//! events from db-writer, kept in the service's own store so that access
//! checks never call another service.
//!
//! An event names one user, and carries the room with its members after
//! the change; every listed member is recorded as well (db-writer does not
//! announce a room's creator separately). Only a `removed` event removes.
//!
//! The queue is durable: a membership change must not be missed while the
//! service is down. Each event is one small idempotent write, settled at
//! once (in the standalone server this consumer sits in the path of the
//! room operation that published it).

use std::sync::Arc;
use std::time::Duration;

use service_kit::bus::{Settle, Subscription};
use shared_models::{Envelope, EventKind, MemberChanged};

use crate::meta::{FileMetaStore, MetaError};

/// The queue the file service consumes.
pub const QUEUE: &str = "file-service";

/// The routing keys it binds.
pub const BINDINGS: [&str; 1] = ["chat.member.*"];

enum Outcome {
    Done,
    Unparseable(String),
    Failed(MetaError),
}

async fn apply(store: &dyn FileMetaStore, routing_key: &str, payload: &[u8]) -> Outcome {
    let kind = EventKind::parse(routing_key);
    let added = match kind {
        Some(EventKind::MemberAdded) => true,
        Some(EventKind::MemberRemoved) => false,
        // Bound by a wider pattern somewhere: not ours.
        _ => return Outcome::Done,
    };
    let ev = match Envelope::<MemberChanged>::from_slice(payload) {
        Ok(env) => env.data,
        Err(e) => return Outcome::Unparseable(e.to_string()),
    };
    // The event carries the room as it is after the change. Its members are
    // added too: a room's creator is not announced on its own.
    let mut res = Ok(());
    for &member in &ev.room.members {
        if member != ev.user || added {
            res = res.and(store.add_member(ev.room.id, member).await);
        }
    }
    res = res.and(if added {
        store.add_member(ev.room.id, ev.user).await
    } else {
        store.remove_member(ev.room.id, ev.user).await
    });
    match res {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e),
    }
}

/// Runs until the subscription ends, settling every delivery.
pub async fn run(mut sub: Subscription, store: Arc<dyn FileMetaStore>) {
    let mut backoff = Duration::from_millis(50);
    while let Some(d) = sub.next().await {
        let (key, payload) = (d.routing_key.clone(), d.payload.clone());
        match apply(store.as_ref(), &key, &payload).await {
            Outcome::Done => {
                backoff = Duration::from_millis(50);
                d.settle(Settle::Ack).await;
            }
            Outcome::Unparseable(e) => {
                tracing::warn!(error = %e, key = %d.routing_key, "unparseable membership event dead-lettered");
                d.settle(Settle::DeadLetter).await;
            }
            Outcome::Failed(e) => {
                tracing::error!(error = %e, "cannot record membership change; requeued");
                d.settle(Settle::Requeue).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
