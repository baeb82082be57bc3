//! file-service: chat attachments on S3 (MinIO) or local disk.
//!
//! This crate owns file metadata and objects: streamed, size-limited,
//! type-sniffed, access-checked uploads and downloads.
//!
//! - [`blob`]: the blob port ([`blob::LocalBlobStore`], [`blob::S3BlobStore`]).
//! - [`meta`]: file metadata and the membership projection ([`meta::SqliteMetaStore`]).
//! - [`membership`]: the `chat.member.*` consumer that feeds the projection.
//! - [`routes`]: the HTTP API; [`sniff`] and [`range`]: what it trusts.
//!
//! [`FileServiceApp::build`] composes the service from configuration; the
//! binary and the standalone server both use it.
//!
//! Invariant: object keys are file ids made here, never client input; a
//! file is visible only to members of its room, and to anyone else it does
//! not exist.

pub mod blob;
pub mod config;
pub mod membership;
pub mod meta;
pub mod metrics;
pub mod range;
pub mod routes;
pub mod sniff;

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use service_kit::bus::{Durability, EventBus};
use service_kit::ops::ReadyCheck;
use service_kit::token::Verifier;
use shared_models::{Attachment, FileId, RoomId};

use crate::blob::{BlobStore, LocalBlobStore, S3BlobStore};
pub use crate::config::{BackendConfig, FilesConfig, S3Config};
use crate::meta::{FileMetaStore, MetaError, MongoMetaStore, SqliteMetaStore};
use crate::routes::{FilesState, Policy};

/// The service's name on the bus and in logs.
pub const SOURCE: &str = "file-service";

/// The most attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// The file service's operations router: `/healthz`, `/readyz`, `/metrics`.
pub fn ops_router(registry: prometheus::Registry) -> axum::Router {
    service_kit::ops::Ops::new(registry).router()
}

/// What the service is given rather than builds.
#[derive(Clone)]
pub struct FileServiceDeps {
    /// The event bus (membership events).
    pub bus: Arc<dyn EventBus>,
    /// Access-token verification.
    pub verifier: Arc<Verifier>,
}

/// The composed file service.
#[derive(Clone)]
pub struct FileServiceApp {
    state: FilesState,
}

impl FileServiceApp {
    /// Opens the stores named by `config`, subscribes to membership events
    /// and builds the service. Fails fast when a backend is unusable.
    pub async fn build(
        config: FilesConfig,
        deps: FileServiceDeps,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let blobs: Arc<dyn BlobStore> = match &config.backend {
            BackendConfig::Local { dir } => Arc::new(
                LocalBlobStore::open(dir)
                    .with_context(|| format!("cannot open file directory {}", dir.display()))?,
            ),
            BackendConfig::S3(s3) => {
                let store = S3BlobStore::new(s3);
                store.ensure_bucket().await.with_context(|| {
                    format!("cannot reach bucket {} at {}", s3.bucket, s3.endpoint)
                })?;
                Arc::new(store)
            }
        };
        let meta: Arc<dyn FileMetaStore> = match &config.mongo {
            Some(cfg) => {
                let db = service_kit::mongo::connect(cfg).await?;
                Arc::new(
                    MongoMetaStore::open(db)
                        .await
                        .context("cannot prepare the MongoDB file store")?,
                )
            }
            None => {
                let db_path = config.data_dir.join("files.db");
                Arc::new(
                    SqliteMetaStore::open(&db_path)
                        .with_context(|| format!("cannot open file store {}", db_path.display()))?,
                )
            }
        };
        Self::with_stores(&config, blobs, meta, deps, registry).await
    }

    /// Builds the service on given stores (tests and other compositions).
    pub async fn with_stores(
        config: &FilesConfig,
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn FileMetaStore>,
        deps: FileServiceDeps,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let sub = deps
            .bus
            .subscribe(
                membership::QUEUE,
                &membership::BINDINGS,
                Durability::Durable,
            )
            .await
            .context("cannot subscribe to the event bus")?;
        tokio::spawn(membership::run(sub, meta.clone()));
        Ok(Self {
            state: FilesState {
                blobs,
                meta,
                verifier: deps.verifier,
                policy: Arc::new(Policy {
                    max_bytes: config.max_bytes,
                    allowed_types: config.allowed_types.clone(),
                    presign_ttl: config.presign_ttl,
                }),
                metrics: metrics::Metrics::new(registry),
            },
        })
    }

    /// The public API (`/api/files…`). It sets no body limit: uploads are
    /// limited while they stream, so merge it outside any JSON body limit.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// The internal API (`/internal/files/resolve`) for other services; never
    /// exposed by the ingress or the standalone server.
    pub fn internal_router(&self) -> axum::Router {
        routes::internal_router(self.resolver())
    }

    /// Resolves attachment ids in-process (the standalone gateway).
    pub fn resolver(&self) -> Resolver {
        Resolver {
            meta: self.state.meta.clone(),
        }
    }

    /// The metadata store.
    pub fn meta_store(&self) -> Arc<dyn FileMetaStore> {
        self.state.meta.clone()
    }

    /// The blob store.
    pub fn blob_store(&self) -> Arc<dyn BlobStore> {
        self.state.blobs.clone()
    }

    /// `/readyz` check: the metadata store and the blob backend answer.
    pub fn ready_check(&self) -> Arc<dyn ReadyCheck> {
        Arc::new(Ready(self.state.clone()))
    }
}

struct Ready(FilesState);

#[async_trait]
impl ReadyCheck for Ready {
    fn name(&self) -> &str {
        "file-service"
    }
    async fn check(&self) -> Result<(), String> {
        self.0.meta.health().await.map_err(|e| e.to_string())?;
        self.0.blobs.health().await.map_err(|e| e.to_string())
    }
}

/// Why attachments could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The file does not exist or belongs to another room.
    #[error("file {0} is not in this room")]
    Invalid(FileId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] MetaError),
}

/// Turns a message's attachment ids into their metadata.
#[derive(Clone)]
pub struct Resolver {
    meta: Arc<dyn FileMetaStore>,
}

impl Resolver {
    /// The attachments `ids` name, in order, without repeats; an error if
    /// any is missing, of another room, or there are more than
    /// [`MAX_ATTACHMENTS`].
    pub async fn resolve(
        &self,
        room: RoomId,
        ids: &[FileId],
    ) -> Result<Vec<Attachment>, ResolveError> {
        let mut out: Vec<Attachment> = Vec::with_capacity(ids.len());
        for &id in ids {
            if out.iter().any(|a| a.id == id) {
                continue;
            }
            match self.meta.get(id).await? {
                Some(m) if m.room == room => out.push(m.attachment()),
                _ => return Err(ResolveError::Invalid(id)),
            }
        }
        Ok(out)
    }
}
