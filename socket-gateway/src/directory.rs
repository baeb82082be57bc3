//! The gateway's read access to durable chat state.
//!
//! The gateway never opens the chat database itself: it asks db-writer.
//! [`EmbeddedDirectory`] calls db-writer's store in-process (standalone);
//! the distributed deployment reaches db-writer's read API over HTTP.

use std::sync::Arc;

use async_trait::async_trait;
use db_writer::store::{ChatStore, Membership};
use shared_models::{ClientId, Message, RoomId, UserId};

/// A read failed.
#[derive(Debug, thiserror::Error)]
#[error("directory: {0}")]
pub struct DirectoryError(pub String);

/// What the gateway reads from the chat store.
#[async_trait]
pub trait RoomDirectory: Send + Sync + 'static {
    /// `Some` if `user` is a member of `room`.
    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, DirectoryError>;
    /// [`RoomDirectory::membership`] once every message queued for the
    /// store before the call is written (the store's position is then
    /// complete). In-process the store is always caught up.
    async fn settled_membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, DirectoryError> {
        self.membership(room, user).await
    }
    /// Whether `user` is a member of `room` (may answer from a cache that
    /// [`RoomDirectory::forget`] keeps honest).
    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, DirectoryError> {
        Ok(self.membership(room, user).await?.is_some())
    }
    /// Drops any cached membership of `user` in `room` (after a removal).
    fn forget(&self, _room: RoomId, _user: UserId) {}
    /// Users sharing a room with `user`.
    async fn contacts(&self, user: UserId) -> Result<Vec<UserId>, DirectoryError>;
    /// Messages with `seq < before`, newest first.
    async fn history(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Message>, DirectoryError>;
    /// Messages with `seq > after`, oldest first.
    async fn after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Message>, DirectoryError>;
    /// A stored message by its sender's idempotency key.
    async fn by_client_id(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<Message>, DirectoryError>;
}

/// In-process reads of db-writer's store.
#[derive(Clone)]
pub struct EmbeddedDirectory(pub Arc<dyn ChatStore>);

fn err(e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError(e.to_string())
}

#[async_trait]
impl RoomDirectory for EmbeddedDirectory {
    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, DirectoryError> {
        self.0.membership(room, user).await.map_err(err)
    }
    async fn contacts(&self, user: UserId) -> Result<Vec<UserId>, DirectoryError> {
        self.0.contacts(user).await.map_err(err)
    }
    async fn history(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Message>, DirectoryError> {
        self.0.history(room, before, limit).await.map_err(err)
    }
    async fn after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Message>, DirectoryError> {
        self.0.after(room, after, limit).await.map_err(err)
    }
    async fn by_client_id(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<Message>, DirectoryError> {
        self.0
            .by_client_id(room, sender, client_id)
            .await
            .map_err(err)
    }
}

/// db-writer's `/internal/` read API over HTTP (the distributed deployment).
///
/// Memberships are cached briefly: a `message:send` checks membership on
/// every message, and a removal reaches the gateway through the membership
/// feed, which calls [`RoomDirectory::forget`].
pub struct HttpDirectory {
    client: service_kit::runtime::JsonClient,
    members: std::sync::Mutex<std::collections::HashMap<(RoomId, UserId), std::time::Instant>>,
}

/// How long a positive membership answer is reused.
pub const MEMBERSHIP_CACHE: std::time::Duration = std::time::Duration::from_secs(30);

impl HttpDirectory {
    /// A directory reading db-writer at `base` (`PARLEY_DB_WRITER_URL`).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: service_kit::runtime::JsonClient::new(base)?,
            members: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Reads a membership (`query` may ask db-writer to drain first) and
    /// keeps the cache in step with the answer.
    async fn fetch_membership(
        &self,
        room: RoomId,
        user: UserId,
        query: &str,
    ) -> Result<Option<Membership>, DirectoryError> {
        let m: Option<db_writer::internal::MembershipDoc> = self
            .get(format!("/internal/rooms/{room}/members/{user}{query}"))
            .await?;
        if let Ok(mut cache) = self.members.lock() {
            match m {
                Some(_) => {
                    if cache.len() > 100_000 {
                        cache.retain(|_, at| at.elapsed() < MEMBERSHIP_CACHE);
                    }
                    cache.insert((room, user), std::time::Instant::now());
                }
                None => {
                    cache.remove(&(room, user));
                }
            }
        }
        Ok(m.map(|m| Membership {
            last_seq: m.last_seq,
            read_seq: m.read_seq,
        }))
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: String,
    ) -> Result<Option<T>, DirectoryError> {
        self.client
            .get(&path)
            .await
            .map_err(|e| DirectoryError(format!("{e:#}")))
    }
}

#[async_trait]
impl RoomDirectory for HttpDirectory {
    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, DirectoryError> {
        self.fetch_membership(room, user, "").await
    }
    async fn settled_membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, DirectoryError> {
        self.fetch_membership(room, user, "?settled=true").await
    }
    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, DirectoryError> {
        let fresh = self
            .members
            .lock()
            .ok()
            .and_then(|c| c.get(&(room, user)).copied())
            .is_some_and(|at| at.elapsed() < MEMBERSHIP_CACHE);
        if fresh {
            return Ok(true);
        }
        Ok(self.membership(room, user).await?.is_some())
    }
    fn forget(&self, room: RoomId, user: UserId) {
        if let Ok(mut cache) = self.members.lock() {
            cache.remove(&(room, user));
        }
    }
    async fn contacts(&self, user: UserId) -> Result<Vec<UserId>, DirectoryError> {
        Ok(self
            .get(format!("/internal/users/{user}/contacts"))
            .await?
            .unwrap_or_default())
    }
    async fn history(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Message>, DirectoryError> {
        let before = before.map(|b| format!("&before={b}")).unwrap_or_default();
        Ok(self
            .get(format!(
                "/internal/rooms/{room}/messages?limit={limit}{before}"
            ))
            .await?
            .unwrap_or_default())
    }
    async fn after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Message>, DirectoryError> {
        Ok(self
            .get(format!(
                "/internal/rooms/{room}/messages?after={after}&limit={limit}"
            ))
            .await?
            .unwrap_or_default())
    }
    async fn by_client_id(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<Message>, DirectoryError> {
        self.get(format!(
            "/internal/rooms/{room}/senders/{sender}/clients/{client_id}"
        ))
        .await
    }
}
