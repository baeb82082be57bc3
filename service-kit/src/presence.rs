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
