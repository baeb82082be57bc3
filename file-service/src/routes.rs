//! The HTTP API: `POST /api/files?room=`, `GET /api/files/{id}`,
//! `GET /api/files/{id}/meta`, `DELETE /api/files/{id}`, and the internal
//! `GET /internal/files/resolve` (never routed by the ingress).
//!
//! Every file is visible only to members of its room; anyone else gets the
//! same 404 as for a file that does not exist.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{
    DefaultBodyLimit, FromRef, FromRequest, Multipart, Path, Query, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use service_kit::ApiError;
use service_kit::http::AuthUser;
use service_kit::token::Verifier;
use sha2::{Digest, Sha256};
use shared_models::{ErrorCode, FileId, RoomId, Timestamp};

use crate::blob::{BlobError, BlobStore, ByteStream, PresignParams};
use crate::meta::{FileMeta, FileMetaStore};
use crate::metrics::Metrics;
use crate::range::{self, RangeRequest};
use crate::sniff;
use crate::{ResolveError, Resolver};

/// How much of an over-limit or refused body is read and discarded so
/// that the client gets its 413/415 instead of a reset connection.
const DRAIN_BUDGET: u64 = 8 * 1024 * 1024;
/// How long that draining may take.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Upload limits and policies.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Largest upload in bytes.
    pub max_bytes: u64,
    /// Allowed sniffed content types.
    pub allowed_types: Vec<String>,
    /// Lifetime of presigned download URLs.
    pub presign_ttl: Duration,
}

/// What the handlers share.
#[derive(Clone)]
pub struct FilesState {
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) meta: Arc<dyn FileMetaStore>,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) metrics: Metrics,
}

impl FromRef<FilesState> for Arc<Verifier> {
    fn from_ref(s: &FilesState) -> Self {
        s.verifier.clone()
    }
}

/// The public routes, with no body limit of their own: uploads are
/// limited while they stream.
pub fn router(state: FilesState) -> Router {
    Router::new()
        .route("/api/files", post(upload))
        .route("/api/files/{id}", get(download).delete(remove))
        .route("/api/files/{id}/meta", get(meta))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// The internal routes (other services in the cluster, never the ingress).
pub fn internal_router(resolver: Resolver) -> Router {
    Router::new()
        .route("/internal/files/resolve", get(resolve))
        .with_state(resolver)
}

fn meta_error(e: crate::meta::MetaError) -> ApiError {
    ApiError::unavailable(e)
}

fn blob_error(e: BlobError) -> ApiError {
    match e {
        BlobError::NotFound => ApiError::not_found("file"),
        e => ApiError::unavailable(e),
    }
}

/// The file, if `user` may see it; otherwise the same 404 as for no file.
async fn visible_file(st: &FilesState, id: &str, user: &AuthUser) -> Result<FileMeta, ApiError> {
    let not_found = || ApiError::not_found("file");
    let id: FileId = id.parse().map_err(|_| not_found())?;
    let meta = st
        .meta
        .get(id)
        .await
        .map_err(meta_error)?
        .ok_or_else(not_found)?;
    if !st
        .meta
        .is_member(meta.room, user.id)
        .await
        .map_err(meta_error)?
    {
        return Err(not_found());
    }
    Ok(meta)
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    room: Option<String>,
}

async fn upload(
    State(st): State<FilesState>,
    user: AuthUser,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let room: RoomId = query
        .ok()
        .and_then(|Query(q)| q.room)
        .ok_or_else(|| ApiError::bad_request("missing ?room="))?
        .parse()
        .map_err(|_| ApiError::bad_request("room must be a room id"))?;
    // Uploading to a room one is not in looks like uploading to no room.
    if !st.meta.is_member(room, user.id).await.map_err(meta_error)? {
        return Err(ApiError::not_found("room"));
    }
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let result = if is_multipart {
        let mut form = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let field = loop {
            match form.next_field().await {
                Ok(Some(f)) if f.file_name().is_some() => break f,
                Ok(Some(_)) => {}
                Ok(None) => return Err(ApiError::bad_request("no file part in the form")),
                Err(e) => return Err(ApiError::bad_request(e.body_text())),
            }
        };
        let name = field.file_name().unwrap_or_default().to_owned();
        let body: ByteStream<'_> = Box::pin(field.map(|c| c.map_err(std::io::Error::other)));
        store_upload(&st, &user, room, &name, body).await
    } else {
        let name = req
            .headers()
            .get("x-filename")
            .map(|v| percent_decode(v.as_bytes()))
            .ok_or_else(|| {
                ApiError::bad_request("send multipart/form-data or a raw body with X-Filename")
            })?;
        let body: ByteStream<'_> = Box::pin(
            req.into_body()
                .into_data_stream()
                .map(|c| c.map_err(std::io::Error::other)),
        );
        store_upload(&st, &user, room, &name, body).await
    };
    st.metrics.upload(match &result {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    });
    let meta = result?;
    Ok((StatusCode::CREATED, axum::Json(meta)).into_response())
}

/// `%XX` escapes decoded (browsers can only send ASCII header values);
/// invalid UTF-8 is replaced, and sanitising comes later.
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if raw[i] == b'%'
            && i + 2 < raw.len()
            && let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2]))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'_'));
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads and discards what is left of a refused body (bounded), so the
/// client can read our answer instead of seeing its upload reset.
async fn drain(body: &mut ByteStream<'_>) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(c)) = body.next().await {
            seen += c.len() as u64;
            if seen > DRAIN_BUDGET {
                break;
            }
        }
    })
    .await;
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("file is larger than {max} bytes"),
    )
}

/// Running totals of the bytes that went to the blob store.
#[derive(Default)]
struct Tally {
    hasher: Sha256,
    total: u64,
    over: bool,
}

/// `prefix` then `rest`, hashed and counted; past `max` bytes the rest is
/// drained (bounded) and the stream fails, which makes the store abandon
/// the upload.
fn tallied<'a>(
    prefix: Bytes,
    rest: ByteStream<'a>,
    max: u64,
    tally: Arc<Mutex<Tally>>,
) -> ByteStream<'a> {
    let first = futures_util::stream::once(async move { Ok(prefix) });
    let all: ByteStream<'a> = Box::pin(first.chain(rest));
    Box::pin(futures_util::stream::unfold(
        (all, tally, false),
        move |(mut all, tally, done)| async move {
            if done {
                return None;
            }
            let chunk = match all.next().await? {
                Ok(c) => c,
                Err(e) => return Some((Err(e), (all, tally, true))),
            };
            let over = {
                let Ok(mut t) = tally.lock() else {
                    return Some((
                        Err(std::io::Error::other("tally poisoned")),
                        (all, tally, true),
                    ));
                };
                t.total += chunk.len() as u64;
                if t.total > max {
                    t.over = true;
                } else {
                    t.hasher.update(&chunk);
                }
                t.over
            };
            if over {
                drain(&mut all).await;
                return Some((
                    Err(std::io::Error::other("size limit exceeded")),
                    (all, tally, true),
                ));
            }
            Some((Ok(chunk), (all, tally, false)))
        },
    ))
}

async fn store_upload(
    st: &FilesState,
    user: &AuthUser,
    room: RoomId,
    raw_name: &str,
    mut body: ByteStream<'_>,
) -> Result<FileMeta, ApiError> {
    let max = st.policy.max_bytes;
    // The first bytes decide the type before anything is stored.
    let mut prefix = BytesMut::new();
    let mut complete = false;
    while prefix.len() < sniff::SNIFF_LEN {
        match body.next().await {
            Some(Ok(c)) => prefix.extend_from_slice(&c),
            Some(Err(_)) => return Err(ApiError::bad_request("upload interrupted")),
            None => {
                complete = true;
                break;
            }
        }
        if prefix.len() as u64 > max {
            drain(&mut body).await;
            return Err(too_large(max));
        }
    }
    let window = &prefix[..prefix.len().min(sniff::SNIFF_LEN)];
    let content_type = sniff::content_type(window, complete && window.len() == prefix.len());
    if !sniff::allowed(&content_type, &st.policy.allowed_types) {
        drain(&mut body).await;
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("files of type {content_type} are not accepted"),
        ));
    }
    let name = sniff::sanitize_filename(raw_name);
    let id = FileId::new();
    let key = id.to_string();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stream = tallied(prefix.freeze(), body, max, tally.clone());
    let stored = st.blobs.put(&key, stream).await;
    let (sha, total, over) = {
        let mut t = tally
            .lock()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("tally poisoned")))?;
        let hasher = std::mem::take(&mut t.hasher);
        (hasher.finalize(), t.total, t.over)
    };
    let size = match stored {
        Ok(n) => n,
        Err(BlobError::Body(_)) if over => return Err(too_large(max)),
        Err(BlobError::Body(_)) => return Err(ApiError::bad_request("upload interrupted")),
        Err(e) => return Err(ApiError::unavailable(e)),
    };
    debug_assert_eq!(size, total);
    let meta = FileMeta {
        id,
        name,
        size,
        content_type,
        sha256: hex(&sha),
        room,
        uploader: user.id,
        created_at: Timestamp::now(),
    };
    if let Err(e) = st.meta.insert(&meta).await {
        // No metadata, no object: the upload did not happen.
        if let Err(del) = st.blobs.delete(&key).await {
            tracing::error!(error = %del, key, "orphaned blob after a failed metadata write");
        }
        return Err(meta_error(e));
    }
    st.metrics.uploaded(size);
    tracing::info!(file = %id, room = %room, size, content_type = %meta.content_type, "file uploaded");
    Ok(meta)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

async fn download(
    State(st): State<FilesState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let meta = visible_file(&st, &id, &user).await?;
    let inline = sniff::is_safe_inline_image(&meta.content_type);
    let disposition =
        sniff::content_disposition(if inline { "inline" } else { "attachment" }, &meta.name);
    let content_type = if meta.content_type == "text/plain" {
        "text/plain; charset=utf-8".to_owned()
    } else {
        meta.content_type.clone()
    };
    let params = PresignParams {
        content_type: content_type.clone(),
        content_disposition: disposition.clone(),
        start: SystemTime::now(),
        ttl: st.policy.presign_ttl,
    };
    if let Some(url) = st
        .blobs
        .presign_get(&meta.key(), &params)
        .await
        .map_err(blob_error)?
    {
        st.metrics.download("redirect");
        let mut res = StatusCode::FOUND.into_response();
        let h = res.headers_mut();
        h.insert(header::LOCATION, header_value(&url));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(res);
    }
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, range) = match range::parse(range_header, meta.size) {
        RangeRequest::Full => (StatusCode::OK, None),
        RangeRequest::Partial(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        RangeRequest::Unsatisfiable => {
            let mut res = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{}", meta.size)),
            );
            return Ok(res);
        }
    };
    let read = st
        .blobs
        .get(&meta.key(), range)
        .await
        .map_err(|e| match e {
            // Metadata without its object: the store lost it; say so in the log.
            BlobError::NotFound => {
                ApiError::internal(anyhow::anyhow!("object {} missing", meta.id))
            }
            e => ApiError::unavailable(e),
        })?;
    st.metrics
        .download(if range.is_some() { "range" } else { "full" });
    let mut res = Response::new(Body::from_stream(read.body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(&content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(read.len));
    h.insert(header::CONTENT_DISPOSITION, header_value(&disposition));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    h.insert(header::ETAG, header_value(&format!("\"{}\"", meta.sha256)));
    if let Some(r) = range {
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{}", r.start, r.end, meta.size)),
        );
    }
    Ok(res)
}

async fn meta(
    State(st): State<FilesState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<axum::Json<FileMeta>, ApiError> {
    Ok(axum::Json(visible_file(&st, &id, &user).await?))
}

async fn remove(
    State(st): State<FilesState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let meta = visible_file(&st, &id, &user).await?;
    if meta.uploader != user.id {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the uploader may delete a file",
        ));
    }
    // Metadata first: a file without metadata is unreachable, while
    // metadata without its object would answer 500.
    st.meta.delete(meta.id).await.map_err(meta_error)?;
    if let Err(e) = st.blobs.delete(&meta.key()).await {
        tracing::error!(error = %e, file = %meta.id, "orphaned blob after delete");
    }
    tracing::info!(file = %meta.id, "file deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct ResolveQuery {
    room: String,
    #[serde(default)]
    ids: String,
}

async fn resolve(
    State(resolver): State<Resolver>,
    query: Result<Query<ResolveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let room: RoomId = q
        .room
        .parse()
        .map_err(|_| ApiError::bad_request("room must be a room id"))?;
    let ids = q
        .ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse::<FileId>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::bad_request("ids must be file ids"))?;
    match resolver.resolve(room, &ids).await {
        Ok(list) => Ok(axum::Json(list).into_response()),
        // 404 so that callers can tell "no such file here" from failures.
        Err(ResolveError::Invalid(id)) => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("file {id} is not in this room"),
        )),
        Err(ResolveError::Store(e)) => Err(meta_error(e)),
    }
}
