//! The gateway's Redis backends: the Socket.IO adapter that carries
//! broadcasts between gateways, and [`RedisCluster`], the shared cluster
//! state (presence, room sequence numbers, replay buffer).
//!
//! Keys (all under the configured prefix `P`):
//! - `P:room:{id}:seq`: the room's last committed seq;
//! - `P:room:{id}:lease`: the seq lease (a token with a TTL, so a killed
//!   gateway blocks a room for at most [`LEASE_TTL`]);
//! - `P:room:{id}:loaded`: set for a while after the seq was loaded from
//!   the store (retries of older messages must then be looked up there);
//! - `P:room:{id}:buf`: sorted set seq → message JSON, the newest N;
//! - `P:cid:{room}:{sender}:{client_id}`: a recent message by idempotency
//!   key, committed or pending, kept for [`CLIENT_ID_TTL`];
//! - `P:online:{user}`: hash gateway id → sockets of the user there;
//! - `P:epoch`: when this Redis was first written (Redis's clock);
//! - `P:gw:{id}`: a gateway's heartbeat (expires [`HEARTBEAT_TTL`] after
//!   the gateway stops beating); `P:gateways`: the set of gateway ids.
//!
//! A gateway killed without a goodbye stops beating: within
//! [`HEARTBEAT_TTL`] its sockets no longer count as online anywhere, and
//! the next janitor pass (every [`HEARTBEAT_EVERY`]) on a live gateway
//! announces those users offline and removes the dead gateway's counts.
//!
//! Redis pub/sub is at-most-once: a broadcast lost while Redis restarts is
//! recovered by clients through `sync`, by sequence number.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{
    ClientLike, EventInterface, HashesInterface, KeysInterface, LuaInterface, PubsubInterface,
    SetsInterface, SortedSetsInterface,
};
use fred::prelude::{Config, ReconnectPolicy};
use fred::types::RespVersion;
use service_kit::config::{ConfigError, Env};
use service_kit::presence::redis_keys;
use shared_models::{ClientId, Message, RoomId, UserId};

use crate::cluster::{ClusterError, ClusterState, Lease, SendLease};

/// The adapter type of a clustered gateway.
pub type Adapter = socketioxide_redis::FredAdapter<socketioxide::adapter::Emitter>;
/// What builds it.
pub type AdapterCtr =
    socketioxide_redis::RedisAdapterCtr<socketioxide_redis::drivers::fred::FredDriver>;

/// How long a seq lease lives if its holder dies: longer than the holder
/// can take, i.e. a publish (`service_kit::amqp::PUBLISH_TIMEOUT`), or a
/// position load after Redis lost its data ([`SETTLE_AFTER_RESTART`] plus
/// db-writer's drain wait, 15 s).
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How long a sender waits for a busy room's lease.
pub const LEASE_WAIT: Duration = Duration::from_secs(5);
/// After Redis (re)started, how long a room's position is not loaded from
/// the store: longer than any publish begun before may take
/// (`service_kit::amqp::PUBLISH_TIMEOUT`), so its message is queued.
pub const SETTLE_AFTER_RESTART: Duration = Duration::from_millis(3500);
/// How long a message's idempotency key is remembered.
pub const CLIENT_ID_TTL: Duration = Duration::from_secs(24 * 3600);
/// After a room's position was loaded from the store, retries are looked
/// up in the store for this long.
pub const LOADED_TTL: Duration = Duration::from_secs(600);
/// Heartbeat period of a gateway.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// A gateway that has not beaten for this long is dead.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `PARLEY_REDIS_URL`, e.g. `redis://redis:6379` (Redis ≥ 7).
    pub url: String,
    /// `PARLEY_REDIS_PREFIX` (default `parley`): namespace of every key
    /// and channel.
    pub prefix: String,
}

impl RedisConfig {
    /// `None` when `PARLEY_REDIS_URL` is unset (a single, standalone gateway).
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let Some(url) = env.get("PARLEY_REDIS_URL").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if Config::from_url(&url).is_err() {
            return Err(ConfigError::new(
                "PARLEY_REDIS_URL",
                &url,
                "expected a redis:// URL, e.g. redis://127.0.0.1:6379",
            ));
        }
        let prefix = env.string_or("PARLEY_REDIS_PREFIX", "parley");
        if prefix.is_empty() || prefix.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                "PARLEY_REDIS_PREFIX",
                &prefix,
                "expected a non-empty prefix without spaces",
            ));
        }
        Ok(Some(Self { url, prefix }))
    }
}

fn fred_config(url: &str) -> anyhow::Result<Config> {
    let mut config = Config::from_url(url).context("PARLEY_REDIS_URL")?;
    // fred ignores the URL's protocol parameter; the adapter needs RESP3.
    config.version = RespVersion::RESP3;
    Ok(config)
}

fn builder(url: &str) -> anyhow::Result<fred::types::Builder> {
    let mut b = fred::types::Builder::from_config(fred_config(url)?);
    b.with_performance_config(|p| {
        // A burst of broadcasts must not overflow fred's internal channel:
        // with the default (32) most of a burst was silently dropped.
        p.broadcast_channel_capacity = 1 << 16;
        // While Redis is away, commands fail (an error ack) instead of
        // holding a socket's events until it returns.
        p.default_command_timeout = Duration::from_secs(3);
    });
    b.with_connection_config(|c| {
        c.connection_timeout = Duration::from_secs(5);
        c.tcp = fred::types::config::TcpConfig {
            nodelay: Some(true),
            ..Default::default()
        };
    });
    b.set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
    Ok(b)
}

/// The connections a clustered gateway needs.
pub struct Redis {
    /// Builds the Socket.IO adapter.
    pub adapter: AdapterCtr,
    /// The shared cluster state.
    pub cluster: Arc<RedisCluster>,
}

/// Connects (failing fast when Redis is unreachable) and starts the
/// subscription keeper and the heartbeat.
pub async fn connect(cfg: &RedisConfig, replay_buffer: usize) -> anyhow::Result<Redis> {
    let unreachable = || format!("Redis at {} is unreachable", cfg.url);
    let commands = builder(&cfg.url)?.build()?;
    tokio::time::timeout(Duration::from_secs(10), commands.init())
        .await
        .map_err(|_| anyhow::anyhow!("connect timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(unreachable)?;
    let subscriber: SubscriberClient = builder(&cfg.url)?.build_subscriber_client()?;
    keep_subscriptions(&subscriber);
    let adapter = AdapterCtr::new_with_fred_config(
        subscriber,
        socketioxide_redis::RedisAdapterConfig::new()
            .with_prefix(format!("{}:sio", cfg.prefix))
            // Per-channel buffer between the driver and the adapter.
            .with_stream_buffer(1 << 16),
    )
    .await
    .with_context(unreachable)?;
    let cluster = Arc::new(RedisCluster {
        client: commands,
        prefix: cfg.prefix.clone(),
        gateway: uuid::Uuid::new_v4().simple().to_string(),
        buffer: replay_buffer,
    });
    cluster.beat().await.with_context(unreachable)?;
    Ok(Redis { adapter, cluster })
}

/// After a reconnect, Redis has forgotten this client's shard
/// subscriptions: issue them again, one by one, so broadcasts between
/// gateways resume without a restart.
fn keep_subscriptions(sub: &SubscriberClient) {
    let sub = sub.clone();
    let mut reconnects = sub.reconnect_rx();
    tokio::spawn(async move {
        while reconnects.recv().await.is_ok() {
            for channel in sub.tracked_shard_channels() {
                if let Err(err) = sub.ssubscribe(channel.to_string()).await {
                    tracing::error!(error = %err, channel = %channel, "cannot resubscribe");
                }
            }
            tracing::info!("Redis reconnected; adapter subscriptions restored");
        }
    });
}

/// Cluster state in Redis, shared by every gateway.
pub struct RedisCluster {
    client: Client,
    prefix: String,
    gateway: String,
    buffer: usize,
}

fn rerr(e: fred::error::Error) -> ClusterError {
    ClusterError(format!("redis: {e}"))
}

const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local seq = redis.call('GET', KEYS[2])
  if not seq then return {1, 1} end
  return {1, redis.call('EXISTS', KEYS[3])}
end
return {0, 0}";

// KEYS: lease, seq, loaded, cid, epoch. ARGV: token, ttl ms, settle ms.
// Returns {got, check store, seq, recent, wait ms}. A room without a seq
// may have lost it with Redis: the caller waits until publishes begun
// before Redis (re)started are over (the epoch is Redis's first write).
const ACQUIRE_FOR_SEND: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local seq = redis.call('GET', KEYS[2])
  local recent = redis.call('GET', KEYS[4]) or ''
  if not seq then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('SET', KEYS[5], now, 'NX')
    local wait = tonumber(redis.call('GET', KEYS[5])) + tonumber(ARGV[3]) - now
    if wait < 0 then wait = 0 end
    return {1, 1, '', recent, wait}
  end
  return {1, redis.call('EXISTS', KEYS[3]), seq, recent, 0}
end
return {0, 0, '', '', 0}";

// KEYS: epoch. Sets it to Redis's clock if this Redis has none.
const EPOCH: &str = r"
local t = redis.call('TIME')
redis.call('SET', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), 'NX')
return 1";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

const INIT_SEQ: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
if tonumber(ARGV[1]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return 1";

// KEYS: seq, buf, cid. ARGV: seq, message, record, buffer size, cid ttl ms, buffered (0/1)
const RECORD: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
if ARGV[6] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[1], ARGV[1])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[4]) + 1))
end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[5])
return 1";

#[derive(serde::Serialize, serde::Deserialize)]
struct Recent {
    m: Message,
    c: bool,
}

impl RedisCluster {
    fn room(&self, room: RoomId, what: &str) -> String {
        format!("{}:room:{room}:{what}", self.prefix)
    }

    fn cid(&self, room: RoomId, sender: UserId, client_id: ClientId) -> String {
        format!("{}:cid:{room}:{sender}:{client_id}", self.prefix)
    }

    fn online(&self, user: UserId) -> String {
        redis_keys::online(&self.prefix, user)
    }

    fn heartbeat_prefix(&self) -> String {
        redis_keys::heartbeat_prefix(&self.prefix)
    }

    fn epoch_key(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// This gateway's id (in presence hashes and heartbeats).
    pub fn gateway_id(&self) -> &str {
        &self.gateway
    }

    /// Renews this gateway's heartbeat; `false` if Redis had lost it (a
    /// restart without persistence, or a stall longer than its TTL).
    pub async fn beat(&self) -> Result<bool, fred::error::Error> {
        let key = format!("{}{}", self.heartbeat_prefix(), self.gateway);
        let ttl = i64::try_from(HEARTBEAT_TTL.as_millis()).unwrap_or(10_000);
        let before: Option<String> = self
            .client
            .set(key, 1, Some(fred::types::Expiration::PX(ttl)), None, true)
            .await?;
        let _: i64 = self
            .client
            .sadd(format!("{}:gateways", self.prefix), self.gateway.clone())
            .await?;
        let _: i64 = self
            .client
            .eval(EPOCH, vec![self.epoch_key()], Vec::<String>::new())
            .await?;
        Ok(before.is_some())
    }

    /// Writes this gateway's socket counts again (after Redis lost them).
    pub async fn restore_presence(
        &self,
        counts: &std::collections::HashMap<UserId, i64>,
    ) -> Result<(), fred::error::Error> {
        for (user, n) in counts {
            let _: i64 = self
                .client
                .hset(self.online(*user), (self.gateway.clone(), *n))
                .await?;
            let _: i64 = self
                .client
                .sadd(
                    format!("{}:gwusers:{}", self.prefix, self.gateway),
                    user.to_string(),
                )
                .await?;
        }
        Ok(())
    }

    /// Ends this gateway's heartbeat (graceful shutdown).
    pub async fn goodbye(&self) {
        let key = format!("{}{}", self.heartbeat_prefix(), self.gateway);
        let _: Result<i64, _> = self.client.del(key).await;
    }

    /// Gateways whose heartbeat stopped: removed from the set, and each
    /// user they counted who is now offline everywhere. Only one live
    /// gateway wins each dead one (`SREM` decides).
    pub async fn sweep(&self) -> Result<Vec<UserId>, fred::error::Error> {
        let set = format!("{}:gateways", self.prefix);
        let members: Vec<String> = self.client.smembers(&set).await?;
        let mut offline = Vec::new();
        for gw in members {
            if gw == self.gateway {
                continue;
            }
            let alive: i64 = self
                .client
                .exists(format!("{}{gw}", self.heartbeat_prefix()))
                .await?;
            if alive == 1 {
                continue;
            }
            let won: i64 = self.client.srem(&set, gw.clone()).await?;
            if won == 0 {
                continue;
            }
            let users_key = format!("{}:gwusers:{gw}", self.prefix);
            let users: Vec<String> = self.client.smembers(&users_key).await?;
            for u in users {
                let Ok(user) = u.parse::<UserId>() else {
                    continue;
                };
                let _: i64 = self.client.hdel(self.online(user), gw.clone()).await?;
                if !self.is_online(user).await.unwrap_or(true) {
                    offline.push(user);
                }
            }
            let _: i64 = self.client.del(users_key).await?;
        }
        Ok(offline)
    }

    async fn presence(&self, user: UserId, delta: i64) -> Result<i64, ClusterError> {
        if delta > 0 {
            let _: i64 = self
                .client
                .sadd(
                    format!("{}:gwusers:{}", self.prefix, self.gateway),
                    user.to_string(),
                )
                .await
                .map_err(rerr)?;
        }
        self.client
            .eval(
                redis_keys::COUNT_SCRIPT,
                vec![self.online(user)],
                vec![
                    self.gateway.clone(),
                    delta.to_string(),
                    self.heartbeat_prefix(),
                ],
            )
            .await
            .map_err(rerr)
    }

    async fn record(&self, msg: &Message, committed: bool) -> Result<(), ClusterError> {
        let json = serde_json::to_string(msg).map_err(|e| ClusterError(e.to_string()))?;
        let rec = serde_json::to_string(&Recent {
            m: msg.clone(),
            c: committed,
        })
        .map_err(|e| ClusterError(e.to_string()))?;
        let _: i64 = self
            .client
            .eval(
                RECORD,
                vec![
                    self.room(msg.room, "seq"),
                    self.room(msg.room, "buf"),
                    self.cid(msg.room, msg.sender, msg.client_id),
                ],
                vec![
                    msg.seq.to_string(),
                    json,
                    rec,
                    self.buffer.to_string(),
                    CLIENT_ID_TTL.as_millis().to_string(),
                    if committed { "1" } else { "0" }.to_owned(),
                ],
            )
            .await
            .map_err(rerr)?;
        Ok(())
    }
}

#[async_trait]
impl ClusterState for RedisCluster {
    async fn acquire(&self, room: RoomId) -> Result<Lease, ClusterError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let deadline = tokio::time::Instant::now() + LEASE_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            let (got, check): (i64, i64) = self
                .client
                .eval(
                    ACQUIRE,
                    vec![
                        self.room(room, "lease"),
                        self.room(room, "seq"),
                        self.room(room, "loaded"),
                    ],
                    vec![token.clone(), LEASE_TTL.as_millis().to_string()],
                )
                .await
                .map_err(rerr)?;
            if got == 1 {
                return Ok(Lease {
                    token,
                    check_store: check == 1,
                    guard: None,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError(format!("room {room} stayed busy")));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    async fn acquire_for_send(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<SendLease, ClusterError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let deadline = tokio::time::Instant::now() + LEASE_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            let (got, check, seq, recent, wait): (i64, i64, String, String, i64) = self
                .client
                .eval(
                    ACQUIRE_FOR_SEND,
                    vec![
                        self.room(room, "lease"),
                        self.room(room, "seq"),
                        self.room(room, "loaded"),
                        self.cid(room, sender, client_id),
                        self.epoch_key(),
                    ],
                    vec![
                        token.clone(),
                        LEASE_TTL.as_millis().to_string(),
                        SETTLE_AFTER_RESTART.as_millis().to_string(),
                    ],
                )
                .await
                .map_err(rerr)?;
            if got == 1 {
                let recent = if recent.is_empty() {
                    None
                } else {
                    let r: Recent =
                        serde_json::from_str(&recent).map_err(|e| ClusterError(e.to_string()))?;
                    Some((r.m, r.c))
                };
                return Ok(SendLease {
                    lease: Lease {
                        token,
                        check_store: check == 1,
                        guard: None,
                    },
                    last_seq: seq.parse().ok(),
                    recent,
                    settle_after: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError(format!("room {room} stayed busy")));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    async fn release(&self, room: RoomId, lease: Lease) {
        let res: Result<i64, _> = self
            .client
            .eval(RELEASE, vec![self.room(room, "lease")], vec![lease.token])
            .await;
        if let Err(err) = res {
            tracing::warn!(error = %err, room = %room, "cannot release lease; it expires by itself");
        }
    }

    async fn init_seq(&self, room: RoomId, stored: u64) -> Result<(), ClusterError> {
        let _: i64 = self
            .client
            .eval(
                INIT_SEQ,
                vec![self.room(room, "seq"), self.room(room, "loaded")],
                vec![stored.to_string(), LOADED_TTL.as_millis().to_string()],
            )
            .await
            .map_err(rerr)?;
        Ok(())
    }

    async fn uncertain(&self, msg: &Message) -> Result<(), ClusterError> {
        self.record(msg, false).await
    }

    async fn last_seq(&self, room: RoomId) -> Result<Option<u64>, ClusterError> {
        let v: Option<String> = self
            .client
            .get(self.room(room, "seq"))
            .await
            .map_err(rerr)?;
        Ok(v.and_then(|s| s.parse().ok()))
    }

    async fn committed(&self, msg: &Message) -> Result<(), ClusterError> {
        self.record(msg, true).await
    }

    async fn buffered_after(
        &self,
        room: RoomId,
        after: u64,
        limit: usize,
    ) -> Result<Option<Vec<Message>>, ClusterError> {
        let Some(last) = self.last_seq(room).await? else {
            return Ok(None);
        };
        if after >= last {
            return Ok(Some(Vec::new()));
        }
        let raw: Vec<String> = self
            .client
            .zrangebyscore(
                self.room(room, "buf"),
                format!("({after}"),
                "+inf",
                false,
                Some((0, i64::try_from(limit).unwrap_or(i64::MAX))),
            )
            .await
            .map_err(rerr)?;
        let mut out = Vec::with_capacity(raw.len());
        for (expect, r) in (after + 1..).zip(raw) {
            let m: Message = serde_json::from_str(&r).map_err(|e| ClusterError(e.to_string()))?;
            // Only a contiguous run from `after + 1` answers alone.
            if m.seq != expect {
                return Ok(None);
            }
            out.push(m);
        }
        if out.is_empty() {
            return Ok(None);
        }
        Ok(Some(out))
    }

    async fn recent(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<(Message, bool)>, ClusterError> {
        let v: Option<String> = self
            .client
            .get(self.cid(room, sender, client_id))
            .await
            .map_err(rerr)?;
        let Some(v) = v else { return Ok(None) };
        let r: Recent = serde_json::from_str(&v).map_err(|e| ClusterError(e.to_string()))?;
        Ok(Some((r.m, r.c)))
    }

    async fn connected(&self, user: UserId) -> Result<bool, ClusterError> {
        // This gateway's count just rose; online news if it is the only one.
        Ok(self.presence(user, 1).await? == 1)
    }

    async fn disconnected(&self, user: UserId) -> Result<bool, ClusterError> {
        let before = self.is_online(user).await?;
        Ok(before && self.presence(user, -1).await? == 0)
    }

    async fn is_online(&self, user: UserId) -> Result<bool, ClusterError> {
        Ok(self.presence(user, 0).await? > 0)
    }
}

/// `/readyz` check: Redis answers.
pub struct RedisCheck(pub Arc<RedisCluster>);

#[async_trait]
impl service_kit::ops::ReadyCheck for RedisCheck {
    fn name(&self) -> &str {
        "redis"
    }
    async fn check(&self) -> Result<(), String> {
        let ping: Result<String, _> =
            tokio::time::timeout(Duration::from_secs(2), self.0.client.ping(None))
                .await
                .map_err(|_| "ping timed out".to_owned())?;
        ping.map(|_| ()).map_err(|e| e.to_string())
    }
}
