//! The blob port: where file bytes live.
//!
//! - [`LocalBlobStore`] (embedded): files under a directory, written to a
//!   temporary file and renamed into place.
//! - [`S3BlobStore`] (production): an S3-compatible bucket (MinIO), with
//!   multipart uploads for bodies above one part.
//!
//! Keys are chosen by the service (a file id), never by a client. `put`
//! takes a stream and never holds a whole body; if the stream fails (for
//! example because the size limit was crossed) nothing is left behind.

pub mod conformance;
mod local;
mod s3;

use std::pin::Pin;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

pub use local::LocalBlobStore;
pub use s3::S3BlobStore;

/// A body on its way in or out.
pub type ByteStream<'a> = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + 'a>>;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No object under that key (or the range is outside it).
    #[error("blob not found")]
    NotFound,
    /// The body stream failed; the upload was abandoned and cleaned up.
    #[error("upload body failed: {0}")]
    Body(std::io::Error),
    /// The backend failed.
    #[error("blob backend: {0}")]
    Backend(String),
}

impl BlobError {
    /// A backend error from anything displayable, with its source chain.
    pub fn backend(err: impl std::error::Error) -> Self {
        let mut msg = err.to_string();
        let mut src = err.source();
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        Self::Backend(msg)
    }
}

/// An inclusive byte range `start..=end`, already checked against the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Its length.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never empty (an empty range is unsatisfiable, not a range).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// An object (or part of one) being read.
pub struct BlobRead {
    /// The bytes.
    pub body: ByteStream<'static>,
    /// How many bytes `body` yields.
    pub len: u64,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead").field("len", &self.len).finish()
    }
}

/// What a presigned download should answer with.
#[derive(Debug, Clone)]
pub struct PresignParams {
    /// `Content-Type` of the response.
    pub content_type: String,
    /// `Content-Disposition` of the response.
    pub content_disposition: String,
    /// When the signature starts (normally now).
    pub start: SystemTime,
    /// How long it stays valid from `start`.
    pub ttl: Duration,
}

/// The blob port.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Streams `body` into `key` and returns the bytes written. If `body`
    /// yields an error, the upload is abandoned and nothing remains.
    async fn put(&self, key: &str, body: ByteStream<'_>) -> Result<u64, BlobError>;

    /// Reads `key`, or the `range` of it.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError>;

    /// A URL that downloads `key` without further credentials, if the
    /// backend has such URLs (`None` for local disk).
    async fn presign_get(
        &self,
        key: &str,
        params: &PresignParams,
    ) -> Result<Option<String>, BlobError>;

    /// Deletes `key`; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// Whether `key` exists (tests check that failed uploads left nothing).
    async fn exists(&self, key: &str) -> Result<bool, BlobError>;

    /// `Ok` when the backend answers.
    async fn health(&self) -> Result<(), BlobError>;
}
