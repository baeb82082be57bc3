//! The event-bus port.
//!
//! Publishers hand the bus an event's routing key and JSON bytes; consumers
//! attach to a named queue bound to routing-key patterns (RabbitMQ topic
//! syntax: `*` one word, `#` zero or more) and ack each delivery after they
//! have committed its effect.
//!
//! Implementations:
//! - [`InProcessBus`] (embedded): `publish` completes only when every
//!   matching *durable* queue's consumer has acked, so a publish that
//!   returned `Ok` is committed. A queue with no consumer attached makes
//!   publishing to it fail rather than silently drop.
//! - RabbitMQ (production, a later module): durable topic exchange,
//!   publisher confirms, manual acks, dead-letter queue.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use shared_models::{Envelope, EventData};
use tokio::sync::{mpsc, oneshot};

/// Why the bus refused or lost track of a publish.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The bus (or a durable consumer) is not reachable right now; retry later.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// A durable consumer refused the event (dead-lettered).
    #[error("event rejected by consumer {0}")]
    Rejected(String),
}

/// How a consumer settled a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Committed.
    Ack,
    /// Could not be handled now; deliver again later.
    Requeue,
    /// Can never be handled: send to the dead-letter queue.
    DeadLetter,
}

/// Settles one delivery with its bus.
#[async_trait]
pub trait Acker: Send {
    /// Reports the outcome to the bus.
    async fn settle(self: Box<Self>, how: Settle);
}

/// One event handed to a consumer.
pub struct Delivery {
    /// The routing key (`event` of the envelope).
    pub routing_key: String,
    /// The envelope's JSON bytes.
    pub payload: Arc<[u8]>,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("routing_key", &self.routing_key)
            .finish()
    }
}

impl Delivery {
    /// A delivery settled through `acker`.
    pub fn new(routing_key: String, payload: Arc<[u8]>, acker: Box<dyn Acker>) -> Self {
        Self {
            routing_key,
            payload,
            acker,
        }
    }

    /// Settles the delivery.
    pub async fn settle(self, how: Settle) {
        self.acker.settle(how).await;
    }
}

/// A consumer's stream of deliveries.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Delivery>,
}

impl Subscription {
    /// Wraps a channel fed by a bus implementation.
    pub fn new(rx: mpsc::Receiver<Delivery>) -> Self {
        Self { rx }
    }

    /// The next delivery; `None` once the bus closed the queue and it is drained.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// A delivery if one is ready now (for batching).
    pub fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }
}

/// Whether a queue outlives its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Events must not be lost: publishing waits for this queue's consumer.
    Durable,
    /// Live notifications only (e.g. a gateway's membership feed).
    Transient,
}

/// The event-bus port.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event's JSON bytes under `routing_key`; returns once the
    /// event is durable (see the implementation).
    async fn publish(&self, routing_key: &str, payload: Vec<u8>) -> Result<(), BusError>;

    /// Attaches a consumer to `queue`, bound to `bindings` patterns.
    async fn subscribe(
        &self,
        queue: &str,
        bindings: &[&str],
        durability: Durability,
    ) -> Result<Subscription, BusError>;

    /// `Ok` when the bus can take publishes.
    async fn health(&self) -> Result<(), BusError>;

    /// Stops taking publishes and ends every subscription once drained.
    async fn close(&self);
}

/// Typed publishing on top of the port.
pub async fn publish<T: EventData>(
    bus: &dyn EventBus,
    source: &str,
    data: T,
) -> Result<Envelope<T>, BusError> {
    let env = Envelope::new(T::KIND, source, data);
    bus.publish(T::KIND.as_str(), env.to_bytes()).await?;
    Ok(env)
}

/// RabbitMQ topic matching: words split on `.`, `*` = one word, `#` = zero or more.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

// ---------------------------------------------------------------------------
// Embedded implementation.

struct Queue {
    name: String,
    bindings: Vec<String>,
    durability: Durability,
    tx: mpsc::Sender<Delivery>,
}

/// Dead letters the in-process bus keeps (it has no disk of its own).
const MAX_DEAD_LETTERS: usize = 1000;

/// The in-process bus of the standalone server.
pub struct InProcessBus {
    queues: RwLock<Vec<Arc<Queue>>>,
    closed: std::sync::atomic::AtomicBool,
    dead_letters: Mutex<Vec<(String, Arc<[u8]>)>>,
    capacity: usize,
    redelivery_limit: Duration,
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessBus")
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

struct OneshotAcker(oneshot::Sender<Settle>);

#[async_trait]
impl Acker for OneshotAcker {
    async fn settle(self: Box<Self>, how: Settle) {
        // The publisher may have given up (its task was cancelled): nothing to tell.
        let _ = self.0.send(how);
    }
}

impl InProcessBus {
    /// A bus whose queues buffer up to `capacity` deliveries each.
    pub fn new(capacity: usize) -> Self {
        Self {
            queues: RwLock::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            dead_letters: Mutex::new(Vec::new()),
            capacity,
            redelivery_limit: Duration::from_secs(10),
        }
    }

    /// How long a requeued event is redelivered before its publish fails.
    pub fn with_redelivery_limit(mut self, limit: Duration) -> Self {
        self.redelivery_limit = limit;
        self
    }

    /// Events consumers dead-lettered (routing key, payload), oldest first.
    pub fn dead_letters(&self) -> Vec<(String, Arc<[u8]>)> {
        self.dead_letters
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    fn matching(&self, key: &str) -> Vec<Arc<Queue>> {
        self.queues
            .read()
            .map(|qs| {
                qs.iter()
                    .filter(|q| q.bindings.iter().any(|b| topic_matches(b, key)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn deliver(&self, q: &Queue, key: &str, payload: Arc<[u8]>) -> Result<(), BusError> {
        // Requeues are retried with a growing pause, like a broker redelivery,
        // for a bounded time: then the publisher hears the event is not durable
        // (nothing was committed) and its client may retry later.
        let mut pause = Duration::from_millis(10);
        let give_up = tokio::time::Instant::now() + self.redelivery_limit;
        loop {
            let (tx, rx) = oneshot::channel();
            let delivery =
                Delivery::new(key.to_owned(), payload.clone(), Box::new(OneshotAcker(tx)));
            if q.tx.send(delivery).await.is_err() {
                return Err(BusError::Unavailable(format!(
                    "queue {} has no consumer",
                    q.name
                )));
            }
            match rx.await {
                Ok(Settle::Ack) => return Ok(()),
                Ok(Settle::DeadLetter) => {
                    if let Ok(mut d) = self.dead_letters.lock() {
                        // Kept for inspection, bounded: the oldest go first.
                        if d.len() >= MAX_DEAD_LETTERS {
                            d.remove(0);
                        }
                        d.push((key.to_owned(), payload));
                    }
                    return Err(BusError::Rejected(q.name.clone()));
                }
                Ok(Settle::Requeue) => {
                    if tokio::time::Instant::now() + pause > give_up {
                        return Err(BusError::Unavailable(format!(
                            "queue {} cannot commit events",
                            q.name
                        )));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                // The consumer dropped the delivery without settling (it stopped).
                Err(_) => {
                    return Err(BusError::Unavailable(format!(
                        "queue {} consumer stopped",
                        q.name
                    )));
                }
            }
        }
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, routing_key: &str, payload: Vec<u8>) -> Result<(), BusError> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(BusError::Unavailable("bus is shutting down".into()));
        }
        let payload: Arc<[u8]> = payload.into();
        let queues = self.matching(routing_key);
        let mut durable = Vec::new();
        for q in queues {
            match q.durability {
                Durability::Durable => durable.push(q),
                Durability::Transient => {
                    // Live notifications: delivered, never awaited, never retried.
                    let (tx, _rx) = oneshot::channel();
                    let d = Delivery::new(
                        routing_key.to_owned(),
                        payload.clone(),
                        Box::new(OneshotAcker(tx)),
                    );
                    let _ = q.tx.try_send(d);
                }
            }
        }
        let results = futures_util::future::join_all(
            durable
                .iter()
                .map(|q| self.deliver(q, routing_key, payload.clone())),
        )
        .await;
        results
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }

    async fn subscribe(
        &self,
        queue: &str,
        bindings: &[&str],
        durability: Durability,
    ) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(self.capacity);
        let q = Arc::new(Queue {
            name: queue.to_owned(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            durability,
            tx,
        });
        let mut qs = self
            .queues
            .write()
            .map_err(|_| BusError::Unavailable("bus lock poisoned".into()))?;
        // A queue has one consumer here; re-subscribing replaces it.
        qs.retain(|existing| existing.name != queue);
        qs.push(q);
        Ok(Subscription::new(rx))
    }

    async fn health(&self) -> Result<(), BusError> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            Err(BusError::Unavailable("bus is shutting down".into()))
        } else {
            Ok(())
        }
    }

    async fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        // Dropping the senders ends each subscription after its buffer drains.
        if let Ok(mut qs) = self.queues.write() {
            qs.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns() {
        assert!(topic_matches(
            "chat.message.created",
            "chat.message.created"
        ));
        assert!(topic_matches("chat.*.created", "chat.message.created"));
        assert!(topic_matches("chat.#", "chat.message.created"));
        assert!(topic_matches("#", "auth.user.registered"));
        assert!(!topic_matches("chat.*", "chat.message.created"));
        assert!(!topic_matches("auth.#", "chat.message.created"));
    }
}
