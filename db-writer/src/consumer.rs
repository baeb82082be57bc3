//! The bus consumer: events in, batched idempotent writes out.
//!
//! It takes what is ready (up to `max_batch`), parses each envelope, writes
//! the whole batch in one transaction and only then acks every delivery.
//! An event that cannot be parsed is dead-lettered on its own; a failed
//! write requeues the batch (the store's unique keys make the retry safe).

use std::sync::Arc;
use std::time::{Duration, Instant};

use service_kit::bus::{Delivery, Settle, Subscription};
use shared_models::{
    Envelope, EventKind, Message, MessageId, ReceiptRead, UserRef, UserRegistered,
};

use crate::metrics::Metrics;
use crate::store::ChatStore;

/// The queue db-writer consumes.
pub const QUEUE: &str = "db-writer";

/// The routing key of a drain barrier: db-writer publishes one into its
/// own queue and waits until its consumer reaches it, which proves that
/// every event queued before it is in the store (see [`Barriers`]).
pub const BARRIER_KEY: &str = "dbwriter.barrier.requested";

/// The routing keys it binds.
pub const BINDINGS: [&str; 4] = [
    "chat.message.created",
    "chat.receipt.read",
    "auth.user.registered",
    BARRIER_KEY,
];

/// Waiters for drain barriers, by barrier id. The queue is consumed in
/// order by one db-writer, so a barrier reached means everything queued
/// before it was written.
#[derive(Default)]
pub struct Barriers(
    std::sync::Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<()>>>,
);

impl Barriers {
    /// Registers a waiter for barrier `id`.
    pub fn wait_for(&self, id: &str) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut w) = self.0.lock() {
            w.insert(id.to_owned(), tx);
        }
        rx
    }

    /// Forgets a waiter that gave up.
    pub fn cancel(&self, id: &str) {
        if let Ok(mut w) = self.0.lock() {
            w.remove(id);
        }
    }

    fn reached(&self, id: &str) {
        let waiter = self.0.lock().ok().and_then(|mut w| w.remove(id));
        if let Some(tx) = waiter {
            let _ = tx.send(());
        }
    }
}

#[derive(serde::Deserialize)]
struct Barrier {
    id: String,
}

/// Batching knobs.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most events per transaction.
    pub max_batch: usize,
    /// How long to wait for more events once one arrived. Zero writes
    /// whatever is ready at once (lowest latency; batches still form under load).
    pub linger: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch: 512,
            linger: Duration::ZERO,
        }
    }
}

enum Parsed {
    Barrier(String),
    User(UserRef),
    Message(Message),
    Receipt(ReceiptRead),
    Ignore,
}

fn parse(d: &Delivery) -> Result<Parsed, String> {
    let err = |e: serde_json::Error| e.to_string();
    if d.routing_key == BARRIER_KEY {
        let b: Barrier = serde_json::from_slice(&d.payload).map_err(err)?;
        return Ok(Parsed::Barrier(b.id));
    }
    let kind = EventKind::parse(&d.routing_key);
    Ok(match kind {
        Some(EventKind::MessageCreated) => Parsed::Message(
            Envelope::<Message>::from_slice(&d.payload)
                .map_err(err)?
                .data,
        ),
        Some(EventKind::ReceiptRead) => Parsed::Receipt(
            Envelope::<ReceiptRead>::from_slice(&d.payload)
                .map_err(err)?
                .data,
        ),
        Some(EventKind::UserRegistered) => {
            let u = Envelope::<UserRegistered>::from_slice(&d.payload)
                .map_err(err)?
                .data;
            Parsed::User(UserRef {
                id: u.id,
                username: u.username,
            })
        }
        // Bound by a wider pattern in some deployment: not ours to store.
        _ => Parsed::Ignore,
    })
}

/// Runs until the subscription ends (bus closed), settling every delivery.
pub async fn run(
    mut sub: Subscription,
    store: Arc<dyn ChatStore>,
    config: BatchConfig,
    metrics: Metrics,
    barriers: Arc<Barriers>,
) {
    let mut backoff = Duration::from_millis(50);
    while let Some(first) = sub.next().await {
        let mut batch = vec![first];
        let deadline = Instant::now() + config.linger;
        while batch.len() < config.max_batch {
            if let Some(d) = sub.try_next() {
                batch.push(d);
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, sub.next()).await {
                Ok(Some(d)) => batch.push(d),
                _ => break,
            }
        }

        let (mut users, mut messages, mut receipts) = (Vec::new(), Vec::new(), Vec::new());
        let mut reached = Vec::new();
        // Each delivery with the message id it carries, if any.
        let mut good: Vec<(Delivery, Option<MessageId>)> = Vec::with_capacity(batch.len());
        for d in batch {
            let mut id = None;
            match parse(&d) {
                Ok(Parsed::User(u)) => users.push(u),
                Ok(Parsed::Message(m)) => {
                    id = Some(m.id);
                    messages.push(m);
                }
                Ok(Parsed::Receipt(r)) => receipts.push(r),
                Ok(Parsed::Barrier(id)) => reached.push(id),
                Ok(Parsed::Ignore) => {}
                Err(e) => {
                    tracing::error!(routing_key = %d.routing_key, error = %e, "unparseable event, dead-lettering");
                    metrics.dead_lettered.inc();
                    d.settle(Settle::DeadLetter).await;
                    continue;
                }
            }
            good.push((d, id));
        }
        if good.is_empty() {
            continue;
        }
        let n = good.len();
        let started = Instant::now();
        match store.write_batch(users, messages, receipts).await {
            Ok(outcome) => {
                metrics.batch_size.observe(n as f64);
                metrics
                    .write_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.messages_written.inc_by(outcome.inserted as u64);
                metrics.duplicates.inc_by(outcome.duplicates as u64);
                metrics.conflicts.inc_by(outcome.conflicts.len() as u64);
                for (d, id) in good {
                    // A conflicting message was not stored: its publisher must
                    // hear so (the dead letter keeps it for inspection).
                    let stored = id.is_none_or(|id| !outcome.conflicts.contains(&id));
                    d.settle(if stored {
                        Settle::Ack
                    } else {
                        Settle::DeadLetter
                    })
                    .await;
                }
                // Everything before the barriers is written now.
                for id in &reached {
                    barriers.reached(id);
                }
                backoff = Duration::from_millis(50);
            }
            Err(err) => {
                tracing::error!(error = %err, events = n, "batch write failed, requeueing");
                metrics.write_failures.inc();
                for (d, _) in good {
                    d.settle(Settle::Requeue).await;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    tracing::info!("db-writer consumer drained and stopped");
}
