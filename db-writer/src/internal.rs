//! Reads for the gateways (`/internal/…`), which hold no database of their
//! own. These routes trust the caller: they are served on the service's
//! own port inside the cluster, and nginx never routes `/internal/` (a
//! Kubernetes NetworkPolicy admits only the gateways).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::ApiError;
use shared_models::{ClientId, ErrorCode, Message, RoomId, UserId};

use crate::store::ChatStore;

/// A member's positions, as `/internal/rooms/{room}/members/{user}` answers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MembershipDoc {
    /// The room's newest seq.
    pub last_seq: u64,
    /// The member's read position.
    pub read_seq: u64,
}

/// Which page of messages.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// Messages with `seq < before`, newest first.
    pub before: Option<u64>,
    /// Messages with `seq > after`, oldest first (wins over `before`).
    pub after: Option<u64>,
    /// At most this many (up to [`MAX_INTERNAL_PAGE`]).
    pub limit: Option<u32>,
}

/// Largest page the gateways may ask for (a `sync` reads up to 1000).
pub const MAX_INTERNAL_PAGE: u32 = 1000;

/// What the routes need.
#[derive(Clone)]
pub struct InternalState {
    /// The chat store.
    pub store: Arc<dyn ChatStore>,
    /// Waits for db-writer's queue to drain.
    pub drain: Arc<crate::Drain>,
}

impl axum::extract::FromRef<InternalState> for Arc<dyn ChatStore> {
    fn from_ref(s: &InternalState) -> Self {
        s.store.clone()
    }
}

/// Whether to drain db-writer's queue before answering.
#[derive(Debug, Deserialize)]
pub struct SettledQuery {
    /// `true`: answer only once everything queued before the request is
    /// written (a gateway loading a room's position after Redis lost it).
    #[serde(default)]
    pub settled: bool,
}

/// How long a settled read waits for the queue to drain.
pub const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The routes.
pub fn router(state: InternalState) -> Router {
    Router::new()
        .route("/internal/rooms/{room}/members/{user}", get(membership))
        .route("/internal/users/{user}/contacts", get(contacts))
        .route("/internal/rooms/{room}/messages", get(messages))
        .route(
            "/internal/rooms/{room}/senders/{sender}/clients/{client}",
            get(by_client_id),
        )
        .with_state(state)
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "not found")
}

async fn membership(
    State(state): State<InternalState>,
    Path((room, user)): Path<(RoomId, UserId)>,
    Query(q): Query<SettledQuery>,
) -> Result<Json<MembershipDoc>, ApiError> {
    if q.settled {
        state.drain.settle(SETTLE_WAIT).await.map_err(|e| {
            tracing::warn!(error = %format!("{e:#}"), "settled read refused");
            ApiError::new(ErrorCode::Unavailable, "db-writer is not caught up")
        })?;
    }
    let m = state
        .store
        .membership(room, user)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(MembershipDoc {
        last_seq: m.last_seq,
        read_seq: m.read_seq,
    }))
}

async fn contacts(
    State(store): State<Arc<dyn ChatStore>>,
    Path(user): Path<UserId>,
) -> Result<Json<Vec<UserId>>, ApiError> {
    Ok(Json(store.contacts(user).await?))
}

async fn messages(
    State(store): State<Arc<dyn ChatStore>>,
    Path(room): Path<RoomId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Vec<Message>>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_INTERNAL_PAGE);
    let page = match q.after {
        Some(after) => store.after(room, after, limit).await?,
        None => store.history(room, q.before, limit).await?,
    };
    Ok(Json(page))
}

async fn by_client_id(
    State(store): State<Arc<dyn ChatStore>>,
    Path((room, sender, client)): Path<(RoomId, UserId, ClientId)>,
) -> Result<Json<Message>, ApiError> {
    let m = store
        .by_client_id(room, sender, client)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(m))
}
