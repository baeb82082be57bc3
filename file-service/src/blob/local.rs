//! Blobs on local disk: `<dir>/objects/<key>`, written through
//! `<dir>/tmp/<random>.part` and renamed, so a reader never sees half a file.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{BlobError, BlobRead, BlobStore, ByteRange, ByteStream, PresignParams};

/// Read chunk size for downloads.
const CHUNK: usize = 64 * 1024;

/// The embedded blob store.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    objects: PathBuf,
    tmp: PathBuf,
}

impl LocalBlobStore {
    /// Opens (creating) the store under `dir`; stale temporary files of an
    /// earlier run are removed.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let objects = dir.join("objects");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&objects)?;
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(Self { objects, tmp })
    }

    /// The object's path. Keys are service-made ids; anything that could
    /// leave the directory is refused rather than trusted.
    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let ok = !key.is_empty()
            && key.len() <= 128
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(self.objects.join(key))
        } else {
            Err(BlobError::Backend(format!("invalid blob key {key:?}")))
        }
    }
}

async fn write_all(file: &mut tokio::fs::File, mut body: ByteStream<'_>) -> Result<u64, BlobError> {
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(BlobError::Body)?;
        file.write_all(&chunk).await.map_err(BlobError::backend)?;
        written += chunk.len() as u64;
    }
    file.flush().await.map_err(BlobError::backend)?;
    file.sync_all().await.map_err(BlobError::backend)?;
    Ok(written)
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &str, body: ByteStream<'_>) -> Result<u64, BlobError> {
        let dest = self.path(key)?;
        let tmp = self.tmp.join(format!("{}.part", uuid::Uuid::new_v4()));
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(BlobError::backend)?;
        let result = write_all(&mut file, body).await;
        drop(file);
        let result = match result {
            Ok(n) => tokio::fs::rename(&tmp, &dest)
                .await
                .map(|()| n)
                .map_err(BlobError::backend),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let path = self.path(key)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(BlobError::backend(e)),
        };
        let size = file.metadata().await.map_err(BlobError::backend)?.len();
        let (start, len) = match range {
            Some(r) if r.end >= size => return Err(BlobError::NotFound),
            Some(r) => (r.start, r.len()),
            None => (0, size),
        };
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(BlobError::backend)?;
        let body = futures_util::stream::unfold((file, len), |(mut file, left)| async move {
            if left == 0 {
                return None;
            }
            let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            let mut buf = vec![0u8; want];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file shrank while reading",
                    )),
                    (file, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
                }
                Err(e) => Some((Err(e), (file, 0))),
            }
        });
        Ok(BlobRead {
            body: Box::pin(body),
            len,
        })
    }

    async fn presign_get(
        &self,
        _key: &str,
        _params: &PresignParams,
    ) -> Result<Option<String>, BlobError> {
        Ok(None)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::backend(e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        tokio::fs::try_exists(self.path(key)?)
            .await
            .map_err(BlobError::backend)
    }

    async fn health(&self) -> Result<(), BlobError> {
        tokio::fs::metadata(&self.objects)
            .await
            .map(|_| ())
            .map_err(BlobError::backend)
    }
}

impl LocalBlobStore {
    /// How many unfinished uploads sit in the temporary directory (tests
    /// check that a failed upload left none).
    pub fn pending_uploads(&self) -> usize {
        std::fs::read_dir(&self.tmp).map_or(0, |d| d.count())
    }
}
