//! Files attached to messages.
//!
//! file-service owns the objects and their metadata; a message carries a
//! copy of each attachment's metadata so that history never needs a second
//! look-up to show it.

use serde::{Deserialize, Serialize};

pub use crate::ids::FileId;

/// A file attached to a message, as every client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file's id (`GET /api/files/{id}` downloads it). Always a
    /// string, even for binary formats such as BSON, which would otherwise
    /// get the UUID's bytes.
    #[serde(serialize_with = "id_as_string")]
    pub id: FileId,
    /// The sanitised file name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The content type sniffed from the bytes at upload.
    pub content_type: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

fn id_as_string<S: serde::Serializer>(id: &FileId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}
