//! The production event bus on RabbitMQ (`lapin`).
//!
//! Topology (declared idempotently by every process at connect time):
//! - `<ns>.events`: durable topic exchange every event is published to;
//! - `<ns>.dead-letter`: fanout exchange and durable queue for events a
//!   consumer rejected for good;
//! - one durable queue per consumer, `<ns>.<queue>`, declared by that
//!   consumer with the dead-letter exchange as its `x-dead-letter-exchange`;
//!   transient queues (a gateway's live feed) are exclusive to the connection.
//!
//! Publishing is persistent (`delivery_mode` 2) and `mandatory`, on a
//! channel in confirm mode: `publish` returns `Ok` only after the broker's
//! publisher confirm, and fails when the broker refuses, returns the event
//! as unroutable (no consumer queue declared yet), or the connection is
//! down. Consumers ack manually; requeue is a `nack` with requeue, dead
//! letter a `reject` without.
//!
//! A supervisor task owns the connection and reconnects with backoff when
//! it drops; subscriptions re-attach by themselves, so a broker restart
//! needs no restart of the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::{RwLock, mpsc, watch};

use crate::bus::{Acker, BusError, Delivery, Durability, EventBus, Subscription};
use crate::config::{ConfigError, Env};

/// How long a publish waits for the broker's confirm (a healthy broker
/// confirms in milliseconds; the gateways' recovery after a Redis loss
/// waits this long, so it stays short).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the bus lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    /// `PARLEY_AMQP_URL`, e.g. `amqp://user:pass@rabbitmq:5672/%2f`.
    pub url: String,
    /// `PARLEY_AMQP_NAMESPACE` (default `parley`): prefix of every exchange
    /// and queue name, so deployments (and tests) can share a broker.
    pub namespace: String,
    /// `PARLEY_AMQP_PREFETCH` (default 512): unacked deliveries per consumer.
    pub prefetch: u16,
}

impl AmqpConfig {
    /// `None` when `PARLEY_AMQP_URL` is unset: the in-process bus is used.
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let Some(url) = env.get("PARLEY_AMQP_URL").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            return Err(ConfigError::new(
                "PARLEY_AMQP_URL",
                &url,
                "expected an amqp:// URL, e.g. amqp://guest:guest@127.0.0.1:5672/%2f",
            ));
        }
        let namespace = env.string_or("PARLEY_AMQP_NAMESPACE", "parley");
        if namespace.is_empty()
            || namespace.len() > 100
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ConfigError::new(
                "PARLEY_AMQP_NAMESPACE",
                &namespace,
                "expected 1-100 characters of a-z, 0-9, '-', '_', '.'",
            ));
        }
        let prefetch = env.parse_or("PARLEY_AMQP_PREFETCH", 512u16)?;
        if prefetch == 0 {
            return Err(ConfigError::new(
                "PARLEY_AMQP_PREFETCH",
                "0",
                "must be at least 1",
            ));
        }
        Ok(Some(Self {
            url,
            namespace,
            prefetch,
        }))
    }

    /// A config on `url` with a namespace (tests use a random one).
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: namespace.into(),
            prefetch: 512,
        }
    }

    /// The topic exchange events are published to.
    pub fn exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }

    /// The dead-letter exchange, and the queue behind it.
    pub fn dead_letter(&self) -> String {
        format!("{}.dead-letter", self.namespace)
    }

    /// The broker-side name of a consumer's queue.
    pub fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.namespace)
    }
}

/// The RabbitMQ event bus.
pub struct AmqpBus {
    shared: Arc<Shared>,
}

struct Shared {
    cfg: AmqpConfig,
    /// The live connection's publishing channel; `None` while reconnecting.
    live: RwLock<Option<Live>>,
    /// Bumped on every (re)connect, so consumers know to re-attach.
    generation: watch::Sender<u64>,
    closed: AtomicBool,
    close_signal: watch::Sender<bool>,
}

#[derive(Clone)]
struct Live {
    conn: Arc<Connection>,
    publish: Channel,
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

impl AmqpBus {
    /// Connects and declares the shared topology; fails when the broker is
    /// unreachable or refuses, so a service stops at start-up with a
    /// message. After that, connection losses are repaired in the background.
    pub async fn connect(cfg: AmqpConfig) -> anyhow::Result<Self> {
        let live = open(&cfg)
            .await
            .with_context(|| format!("RabbitMQ at {} is unreachable", redact(&cfg.url)))?;
        let (generation, _) = watch::channel(1);
        let (close_signal, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            cfg,
            live: RwLock::new(Some(live)),
            generation,
            closed: AtomicBool::new(false),
            close_signal,
        });
        tokio::spawn(supervise(shared.clone()));
        Ok(Self { shared })
    }

    /// The configuration it runs on.
    pub fn config(&self) -> &AmqpConfig {
        &self.shared.cfg
    }

    /// Number of events waiting in a consumer's queue (`None` if unknown),
    /// for operations and tests.
    pub async fn queue_depth(&self, queue: &str) -> Option<u32> {
        let live = self.shared.live.read().await.clone()?;
        let ch = live.conn.create_channel().await.ok()?;
        let q = ch
            .queue_declare(
                self.shared.cfg.queue(queue).into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()?;
        let _ = ch.close(200, "OK".into()).await;
        Some(q.message_count())
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn open(cfg: &AmqpConfig) -> anyhow::Result<Live> {
    let props = ConnectionProperties::default().with_connection_name("parley".into());
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(&cfg.url, props),
    )
    .await
    .context("connect timed out")??;
    let publish = conn.create_channel().await?;
    publish
        .exchange_declare(
            cfg.exchange().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("cannot declare the events exchange")?;
    publish
        .exchange_declare(
            cfg.dead_letter().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("cannot declare the dead-letter exchange")?;
    publish
        .queue_declare(
            cfg.dead_letter().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("cannot declare the dead-letter queue")?;
    publish
        .queue_bind(
            cfg.dead_letter().into(),
            cfg.dead_letter().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .context("broker refused publisher confirms")?;
    Ok(Live {
        conn: Arc::new(conn),
        publish,
    })
}

/// Watches the connection; on loss, reconnects with backoff and bumps the
/// generation so subscriptions re-attach.
async fn supervise(shared: Arc<Shared>) {
    let mut closing = shared.close_signal.subscribe();
    loop {
        // Wait for the current connection to fail.
        loop {
            let healthy = match &*shared.live.read().await {
                Some(live) => live.conn.status().connected() && live.publish.status().connected(),
                None => false,
            };
            if !healthy || shared.closed.load(Ordering::Acquire) {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = closing.changed() => {}
            }
        }
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        tracing::warn!("RabbitMQ connection lost; reconnecting");
        *shared.live.write().await = None;
        let mut delay = Duration::from_millis(100);
        loop {
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            match open(&shared.cfg).await {
                Ok(live) => {
                    *shared.live.write().await = Some(live);
                    shared.generation.send_modify(|g| *g += 1);
                    tracing::info!("RabbitMQ connection restored");
                    break;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "RabbitMQ still unreachable");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

struct LapinAcker(lapin::Acker);

#[async_trait]
impl Acker for LapinAcker {
    async fn settle(self: Box<Self>, how: crate::bus::Settle) {
        use crate::bus::Settle;
        // A failure here means the channel is gone: the broker redelivers
        // the event to the next consumer, which is what at-least-once means.
        let res = match how {
            Settle::Ack => self.0.ack(BasicAckOptions::default()).await,
            Settle::Requeue => {
                self.0
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await
            }
            Settle::DeadLetter => self.0.reject(BasicRejectOptions { requeue: false }).await,
        };
        if let Err(err) = res {
            tracing::debug!(error = %err, "cannot settle delivery; the broker will redeliver it");
        }
    }
}

struct ConsumerSpec {
    queue: String,
    bindings: Vec<String>,
    durability: Durability,
}

/// Attaches a consumer on the current connection and forwards deliveries
/// until the connection drops or the bus closes; then re-attaches on the
/// next connection.
async fn consume(shared: Arc<Shared>, spec: ConsumerSpec, tx: mpsc::Sender<Delivery>) {
    let mut generation = shared.generation.subscribe();
    let mut closing = shared.close_signal.subscribe();
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let live = shared.live.read().await.clone();
        if let Some(live) = live {
            match attach(&shared.cfg, &live, &spec).await {
                Ok((channel, mut consumer)) => {
                    let tag = consumer.tag();
                    loop {
                        tokio::select! {
                            next = consumer.next() => match next {
                                Some(Ok(d)) => {
                                    let delivery = Delivery::new(
                                        d.routing_key.to_string(),
                                        d.data.into(),
                                        Box::new(LapinAcker(d.acker)),
                                    );
                                    if tx.send(delivery).await.is_err() {
                                        // The subscriber is gone; unacked
                                        // deliveries return to the queue.
                                        let _ = channel.close(200, "OK".into()).await;
                                        return;
                                    }
                                }
                                Some(Err(err)) => {
                                    tracing::warn!(error = %err, queue = %spec.queue, "consumer lost");
                                    break;
                                }
                                None => break,
                            },
                            _ = closing.changed() => {
                                let _ = channel
                                    .basic_cancel(tag.clone(), Default::default())
                                    .await;
                                return;
                            }
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, queue = %spec.queue, "cannot attach consumer");
                }
            }
        }
        // Wait for a new connection (or retry after a while).
        tokio::select! {
            _ = generation.changed() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = closing.changed() => return,
        }
    }
}

async fn attach(
    cfg: &AmqpConfig,
    live: &Live,
    spec: &ConsumerSpec,
) -> lapin::Result<(Channel, lapin::Consumer)> {
    let ch = live.conn.create_channel().await?;
    ch.basic_qos(cfg.prefetch, BasicQosOptions::default())
        .await?;
    let name = cfg.queue(&spec.queue);
    let mut args = FieldTable::default();
    let options = match spec.durability {
        Durability::Durable => {
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(cfg.dead_letter().into()),
            );
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            }
        }
        // Exclusive: gone with this connection. Not auto-delete, which
        // would drop it between `subscribe`'s declaration and the consumer.
        Durability::Transient => QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
    };
    ch.queue_declare(name.clone().into(), options, args).await?;
    for b in &spec.bindings {
        ch.queue_bind(
            name.clone().into(),
            cfg.exchange().into(),
            b.clone().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    let consumer = ch
        .basic_consume(
            name.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((ch, consumer))
}

#[async_trait]
impl EventBus for AmqpBus {
    async fn publish(&self, routing_key: &str, payload: Vec<u8>) -> Result<(), BusError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(unavailable("bus closed"));
        }
        let Some(live) = self.shared.live.read().await.clone() else {
            return Err(unavailable("RabbitMQ connection is down"));
        };
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let confirm = tokio::time::timeout(PUBLISH_TIMEOUT, async {
            live.publish
                .basic_publish(
                    self.shared.cfg.exchange().into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &payload,
                    props,
                )
                .await?
                .await
        })
        .await
        .map_err(|_| unavailable("no publisher confirm in time"))?
        .map_err(unavailable)?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(unavailable(format!(
                "no queue is bound for {routing_key} (is its consumer deployed?)"
            ))),
            Confirmation::Nack(_) => Err(unavailable("broker refused the event")),
            Confirmation::NotRequested => Err(unavailable("publisher confirms are off")),
        }
    }

    async fn subscribe(
        &self,
        queue: &str,
        bindings: &[&str],
        durability: Durability,
    ) -> Result<Subscription, BusError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(unavailable("bus closed"));
        }
        let spec = ConsumerSpec {
            queue: queue.to_owned(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            durability,
        };
        // Declare now, so that events published after `subscribe` returns
        // are routed to the queue even before the consumer task runs.
        let live = self
            .shared
            .live
            .read()
            .await
            .clone()
            .ok_or_else(|| unavailable("RabbitMQ connection is down"))?;
        let (ch, consumer) = attach(&self.shared.cfg, &live, &spec)
            .await
            .map_err(unavailable)?;
        // The attach above only proved the topology; the task owns consuming.
        let _ = ch.basic_cancel(consumer.tag(), Default::default()).await;
        let _ = ch.close(200, "OK".into()).await;
        let (tx, rx) = mpsc::channel(usize::from(self.shared.cfg.prefetch).max(1));
        tokio::spawn(consume(self.shared.clone(), spec, tx));
        Ok(Subscription::new(rx))
    }

    async fn health(&self) -> Result<(), BusError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(unavailable("bus closed"));
        }
        match &*self.shared.live.read().await {
            Some(live) if live.conn.status().connected() => Ok(()),
            _ => Err(unavailable("RabbitMQ connection is down")),
        }
    }

    async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let _ = self.shared.close_signal.send(true);
    }
}
