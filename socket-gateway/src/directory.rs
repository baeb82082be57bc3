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
