//! The metadata port: what is known about each file, and who may see it.
//!
//! Besides files, the store keeps the service's own projection of room
//! membership, fed by `chat.member.*` events (see [`crate::membership`]),
//! so that access checks never call another service.
//!
//! - [`SqliteMetaStore`] (embedded).
//! - [`MongoMetaStore`] (production, `PARLEY_MONGODB_URI`).

pub mod conformance;
mod mongo;
mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shared_models::{Attachment, FileId, RoomId, Timestamp, UserId};

pub use mongo::MongoMetaStore;
pub use sqlite::SqliteMetaStore;

/// A stored file's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The id (also the blob key).
    pub id: FileId,
    /// The sanitised name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Sniffed content type.
    pub content_type: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// The room it was uploaded to; only its members see it.
    pub room: RoomId,
    /// Who uploaded it (the only one who may delete it).
    pub uploader: UserId,
    /// When the upload completed.
    pub created_at: Timestamp,
}

impl FileMeta {
    /// The blob key: the id, never anything a client chose.
    pub fn key(&self) -> String {
        self.id.to_string()
    }

    /// The part a message carries.
    pub fn attachment(&self) -> Attachment {
        Attachment {
            id: self.id,
            name: self.name.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

/// A metadata store's failure.
#[derive(Debug, thiserror::Error)]
#[error("file metadata store: {0}")]
pub struct MetaError(pub String);

/// The metadata port.
#[async_trait]
pub trait FileMetaStore: Send + Sync + 'static {
    /// Records a completed upload (ids are unique; a duplicate is an error).
    async fn insert(&self, meta: &FileMeta) -> Result<(), MetaError>;
    /// A file by id.
    async fn get(&self, id: FileId) -> Result<Option<FileMeta>, MetaError>;
    /// Forgets a file; `true` if it existed.
    async fn delete(&self, id: FileId) -> Result<bool, MetaError>;
    /// Records that `user` is a member of `room` (idempotent).
    async fn add_member(&self, room: RoomId, user: UserId) -> Result<(), MetaError>;
    /// Records that `user` left `room` (idempotent).
    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), MetaError>;
    /// Whether `user` is a member of `room`.
    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, MetaError>;
    /// `Ok` when the store answers.
    async fn health(&self) -> Result<(), MetaError>;
}
