//! Attachments on messages: the gateway turns the file ids of a
//! `message:send` into their metadata before it assigns a seq, and refuses
//! the message if any id is missing or belongs to another room.
//!
//! The gateway never reads file-service's store itself:
//! - standalone: an in-process implementation over file-service's
//!   resolver (in the standalone crate, so the gateway carries no S3 code);
//! - distributed: [`HttpAttachmentDirectory`], file-service's internal
//!   `GET /internal/files/resolve` (never routed by the ingress);
//! - [`NoAttachments`] where no file service is deployed.

use async_trait::async_trait;
use shared_models::{Attachment, FileId, RoomId};

/// The most attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// Why attachments were refused.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// A file that does not exist or is not in the message's room.
    #[error("file {0} is not in this room")]
    Invalid(FileId),
    /// The file service could not answer.
    #[error("file service: {0}")]
    Unavailable(String),
}

/// Resolves file ids to attachments.
#[async_trait]
pub trait AttachmentDirectory: Send + Sync + 'static {
    /// The attachments `ids` name, in order and without repeats; an error
    /// for any id that is not a file of `room`.
    async fn resolve(
        &self,
        room: RoomId,
        ids: &[FileId],
    ) -> Result<Vec<Attachment>, AttachmentError>;
}

/// No file service: any attachment is invalid.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAttachments;

#[async_trait]
impl AttachmentDirectory for NoAttachments {
    async fn resolve(
        &self,
        _room: RoomId,
        ids: &[FileId],
    ) -> Result<Vec<Attachment>, AttachmentError> {
        match ids.first() {
            Some(id) => Err(AttachmentError::Invalid(*id)),
            None => Ok(vec![]),
        }
    }
}

/// file-service's internal resolve endpoint over HTTP.
pub struct HttpAttachmentDirectory {
    client: service_kit::runtime::JsonClient,
}

impl HttpAttachmentDirectory {
    /// A directory asking file-service at `base` (`PARLEY_FILE_SERVICE_URL`).
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: service_kit::runtime::JsonClient::new(base)?,
        })
    }
}

#[async_trait]
impl AttachmentDirectory for HttpAttachmentDirectory {
    async fn resolve(
        &self,
        room: RoomId,
        ids: &[FileId],
    ) -> Result<Vec<Attachment>, AttachmentError> {
        let Some(first) = ids.first() else {
            return Ok(vec![]);
        };
        let list: Vec<String> = ids.iter().map(FileId::to_string).collect();
        let path = format!("/internal/files/resolve?room={room}&ids={}", list.join(","));
        match self.client.get::<Vec<Attachment>>(&path).await {
            Ok(Some(found)) => Ok(found),
            // The service names no single culprit over HTTP; the first id
            // stands for the set.
            Ok(None) => Err(AttachmentError::Invalid(*first)),
            Err(e) => Err(AttachmentError::Unavailable(format!("{e:#}"))),
        }
    }
}
