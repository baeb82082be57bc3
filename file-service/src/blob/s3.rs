//! Blobs in an S3-compatible bucket (MinIO in production): path-style
//! addressing, a custom endpoint, static credentials.
//!
//! A body that fits in one part goes up in one `PutObject`; a larger one
//! as a multipart upload of `part_size` parts, aborted on any failure, so
//! the service holds at most one part in memory.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::{BlobError, BlobRead, BlobStore, ByteRange, ByteStream, PresignParams};
use crate::config::S3Config;

/// The production blob store.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    part_size: usize,
}

impl S3BlobStore {
    /// A client for `cfg` (no request is made).
    pub fn new(cfg: &S3Config) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .endpoint_url(cfg.endpoint.clone())
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                cfg.access_key.clone(),
                cfg.secret_key.clone(),
                None,
                None,
                "parley-config",
            ))
            .http_client(http)
            .build();
        Self {
            client: Client::from_conf(conf),
            bucket: cfg.bucket.clone(),
            part_size: cfg.part_size,
        }
    }

    /// Creates the bucket if it does not exist (tests and first start-up).
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(BlobError::backend)
    }

    /// Fills `buf` from `body` up to `part_size` bytes; `false` once the body ended.
    async fn fill(
        &self,
        body: &mut ByteStream<'_>,
        buf: &mut BytesMut,
        carry: &mut Option<Bytes>,
    ) -> Result<bool, BlobError> {
        loop {
            let chunk = match carry.take() {
                Some(c) => c,
                None => match body.next().await {
                    Some(c) => c.map_err(BlobError::Body)?,
                    None => return Ok(false),
                },
            };
            let room = self.part_size - buf.len();
            if chunk.len() > room {
                buf.extend_from_slice(&chunk[..room]);
                *carry = Some(chunk.slice(room..));
                return Ok(true);
            }
            buf.extend_from_slice(&chunk);
            if buf.len() == self.part_size {
                return Ok(true);
            }
        }
    }

    async fn multipart(
        &self,
        key: &str,
        upload_id: &str,
        body: &mut ByteStream<'_>,
        mut buf: BytesMut,
        mut carry: Option<Bytes>,
    ) -> Result<u64, BlobError> {
        let mut parts = Vec::new();
        let mut total = 0u64;
        let mut more = true;
        while !buf.is_empty() {
            let number = i32::try_from(parts.len() + 1)
                .map_err(|_| BlobError::Backend("too many parts".into()))?;
            let part = buf.split().freeze();
            total += part.len() as u64;
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(i64::try_from(part.len()).unwrap_or(i64::MAX))
                .body(S3Body::from(part))
                .send()
                .await
                .map_err(BlobError::backend)?;
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .part_number(number)
                    .build(),
            );
            if more {
                more = self.fill(body, &mut buf, &mut carry).await?;
            }
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(BlobError::backend)?;
        Ok(total)
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, mut body: ByteStream<'_>) -> Result<u64, BlobError> {
        let mut buf = BytesMut::with_capacity(self.part_size.min(1024 * 1024));
        let mut carry = None;
        let more = self.fill(&mut body, &mut buf, &mut carry).await?;
        // Peek whether anything follows a full first part: a body of exactly
        // one part still goes up in one PUT.
        if more
            && carry.is_none()
            && let Some(c) = body.next().await
        {
            carry = Some(c.map_err(BlobError::Body)?);
        }
        if carry.is_none() {
            let len = buf.len() as u64;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                .body(S3Body::from(buf.freeze()))
                .send()
                .await
                .map_err(BlobError::backend)?;
            return Ok(len);
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(BlobError::backend)?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BlobError::Backend("no upload id".into()))?
            .to_owned();
        let result = self.multipart(key, &upload_id, &mut body, buf, carry).await;
        if result.is_err() {
            // Parts uploaded so far would otherwise be kept (and billed).
            if let Err(err) = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await
            {
                tracing::warn!(error = %BlobError::backend(err), key, "cannot abort multipart upload");
            }
        }
        result
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(r) = range {
            req = req.range(format!("bytes={}-{}", r.start, r.end));
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(err) => {
                let not_found = err
                    .as_service_error()
                    .is_some_and(aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key)
                    || err
                        .raw_response()
                        .is_some_and(|r| matches!(r.status().as_u16(), 404 | 416));
                return Err(if not_found {
                    BlobError::NotFound
                } else {
                    BlobError::backend(err)
                });
            }
        };
        let len = out
            .content_length()
            .and_then(|l| u64::try_from(l).ok())
            .ok_or_else(|| BlobError::Backend("no content length".into()))?;
        let body = futures_util::stream::unfold(out.body, |mut b| async move {
            b.next()
                .await
                .map(|r| (r.map_err(std::io::Error::other), b))
        });
        Ok(BlobRead {
            body: Box::pin(body),
            len,
        })
    }

    async fn presign_get(
        &self,
        key: &str,
        params: &PresignParams,
    ) -> Result<Option<String>, BlobError> {
        let presign = PresigningConfig::builder()
            .start_time(params.start)
            .expires_in(params.ttl)
            .build()
            .map_err(BlobError::backend)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(&params.content_type)
            .response_content_disposition(&params.content_disposition)
            .presigned(presign)
            .await
            .map_err(BlobError::backend)?;
        Ok(Some(req.uri().to_owned()))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(BlobError::backend)
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 404) =>
            {
                Ok(false)
            }
            Err(err) => Err(BlobError::backend(err)),
        }
    }

    async fn health(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(BlobError::backend)
    }
}

impl S3BlobStore {
    /// The keys in the bucket (tests check that failed uploads left none;
    /// first page only, which is all a test bucket has).
    pub async fn keys(&self) -> Result<Vec<String>, BlobError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(BlobError::backend)?;
        Ok(out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect())
    }
}
