//! Whether a user has a live socket anywhere in the cluster.
//!
//! The gateways write presence (they own the sockets); other services, such
//! as the notifier deciding who is offline, only read it through
//! [`PresenceView`]. The embedded implementation is the gateway's in-process
//! cluster state; the production one reads the gateways' Redis keys.

use async_trait::async_trait;
use shared_models::UserId;

/// Presence could not be read.
#[derive(Debug, thiserror::Error)]
#[error("presence: {0}")]
pub struct PresenceError(pub String);

/// Read access to cluster-wide presence.
#[async_trait]
pub trait PresenceView: Send + Sync + 'static {
    /// Whether any socket of `user` is connected to any gateway.
    async fn is_online(&self, user: UserId) -> Result<bool, PresenceError>;
}

/// Where the gateways keep presence in Redis, said once for the writers
/// (the gateways) and the readers (other services).
pub mod redis_keys {
    /// `P:online:{user}`: hash of gateway id → the user's sockets there.
    pub fn online(prefix: &str, user: shared_models::UserId) -> String {
        format!("{prefix}:online:{user}")
    }

    /// `P:gw:`: prefix of the gateways' heartbeat keys (`P:gw:{id}`).
    pub fn heartbeat_prefix(prefix: &str) -> String {
        format!("{prefix}:gw:")
    }

    /// Adds `ARGV[2]` to gateway `ARGV[1]`'s count in hash `KEYS[1]` and
    /// returns the user's sockets on gateways whose heartbeat (`ARGV[3]` +
    /// id) is alive. With a delta of 0 it only reads.
    pub const COUNT_SCRIPT: &str = r"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
local total = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if redis.call('EXISTS', ARGV[3] .. all[i]) == 1 then total = total + tonumber(all[i + 1]) end
end
return total";
}

/// Presence read from the gateways' Redis keys (production).
#[cfg(feature = "redis")]
pub struct RedisPresence {
    client: fred::clients::Client,
    prefix: String,
}

#[cfg(feature = "redis")]
impl RedisPresence {
    /// Connects to `url` (failing fast) and reads keys under `prefix`
    /// (the gateways' `PARLEY_REDIS_PREFIX`).
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        use fred::interfaces::ClientLike;
        let mut config = fred::prelude::Config::from_url(url).context("PARLEY_REDIS_URL")?;
        config.version = fred::types::RespVersion::RESP3;
        let client = fred::types::Builder::from_config(config)
            .set_policy(fred::prelude::ReconnectPolicy::new_exponential(
                0, 100, 2_000, 2,
            ))
            .build()?;
        tokio::time::timeout(std::time::Duration::from_secs(10), client.init())
            .await
            .map_err(|_| anyhow::anyhow!("connect timed out"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("Redis at {url} is unreachable"))?;
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl PresenceView for RedisPresence {
    async fn is_online(&self, user: UserId) -> Result<bool, PresenceError> {
        use fred::interfaces::LuaInterface;
        // A gateway id no gateway has: the script only reads.
        let total: i64 = self
            .client
            .eval(
                redis_keys::COUNT_SCRIPT,
                vec![redis_keys::online(&self.prefix, user)],
                vec![
                    "-".to_owned(),
                    "0".to_owned(),
                    redis_keys::heartbeat_prefix(&self.prefix),
                ],
            )
            .await
            .map_err(|e| PresenceError(e.to_string()))?;
        Ok(total > 0)
    }
}
