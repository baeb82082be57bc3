//! The gateway's attachment look-ups answered in-process by file-service's
//! resolver (the standalone server runs both; the distributed gateway uses
//! `socket_gateway::attachments::HttpAttachmentDirectory`).

use async_trait::async_trait;
use shared_models::{Attachment, FileId, RoomId};
use socket_gateway::attachments::{AttachmentDirectory, AttachmentError};

/// file-service's resolver behind the gateway's port.
pub struct EmbeddedAttachments(pub file_service::Resolver);

#[async_trait]
impl AttachmentDirectory for EmbeddedAttachments {
    async fn resolve(
        &self,
        room: RoomId,
        ids: &[FileId],
    ) -> Result<Vec<Attachment>, AttachmentError> {
        self.0.resolve(room, ids).await.map_err(|e| match e {
            file_service::ResolveError::Invalid(id) => AttachmentError::Invalid(id),
            file_service::ResolveError::Store(e) => AttachmentError::Unavailable(e.to_string()),
        })
    }
}
