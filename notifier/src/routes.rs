//! `/api/push/*`: the VAPID public key, the caller's subscriptions and
//! their per-room mutes.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use service_kit::ApiError;
use service_kit::http::{ApiJson, AuthUser};
use service_kit::token::Verifier;
use shared_models::{ErrorCode, RoomId};

use crate::store::{StoreError, SubscriptionId, SubscriptionStore};

/// Longest endpoint URL accepted.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// The routes' state.
#[derive(Clone)]
pub struct PushState {
    /// The store.
    pub store: Arc<dyn SubscriptionStore>,
    /// Token verification.
    pub verifier: Arc<Verifier>,
    /// The VAPID public key, base64url.
    pub public_key: Arc<str>,
    /// Whether `http:` endpoints are accepted (tests).
    pub allow_http: bool,
    /// Subscriptions per user.
    pub max_subscriptions: usize,
}

impl FromRef<PushState> for Arc<Verifier> {
    fn from_ref(s: &PushState) -> Self {
        s.verifier.clone()
    }
}

/// The routes.
pub fn router(state: PushState) -> Router {
    Router::new()
        .route("/api/push/vapid-public-key", get(public_key))
        .route(
            "/api/push/subscriptions",
            get(list_subscriptions).post(subscribe),
        )
        .route(
            "/api/push/subscriptions/{id}",
            axum::routing::delete(unsubscribe),
        )
        .route("/api/push/mutes", get(list_mutes))
        .route("/api/push/mutes/{room}", put(mute).delete(unmute))
        .with_state(state)
}

fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::LimitReached(n) => ApiError::new(
            ErrorCode::Forbidden,
            format!("at most {n} push subscriptions per user"),
        ),
        StoreError::Backend(_) => ApiError::unavailable(e),
    }
}

async fn public_key(State(s): State<PushState>) -> Json<Value> {
    Json(json!({ "key": &*s.public_key }))
}

/// The browser's `PushSubscription.toJSON()`; unknown fields
/// (`expirationTime`) are ignored.
#[derive(Debug, Deserialize)]
struct SubscriptionBody {
    endpoint: String,
    keys: KeysBody,
}

#[derive(Debug, Deserialize)]
struct KeysBody {
    p256dh: String,
    auth: String,
}

/// Decodes base64url, tolerating padding (some clients send it).
fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Checks a subscription; returns the endpoint and keys normalised
/// (base64url without padding).
pub fn validate(
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    allow_http: bool,
) -> Result<(String, String, String), &'static str> {
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err("endpoint is too long");
    }
    let url = reqwest::Url::parse(endpoint).map_err(|_| "endpoint is not a URL")?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err("endpoint must be an https URL"),
    }
    if url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err("endpoint must be a plain https URL with a host");
    }
    let key = b64(p256dh).ok_or("keys.p256dh is not base64url")?;
    if key.len() != 65 || key[0] != 4 || p256::PublicKey::from_sec1_bytes(&key).is_err() {
        return Err("keys.p256dh is not an uncompressed P-256 point");
    }
    let secret = b64(auth).ok_or("keys.auth is not base64url")?;
    if secret.len() != 16 {
        return Err("keys.auth must be 16 bytes");
    }
    Ok((
        url.to_string(),
        URL_SAFE_NO_PAD.encode(key),
        URL_SAFE_NO_PAD.encode(secret),
    ))
}

async fn subscribe(
    State(s): State<PushState>,
    user: AuthUser,
    ApiJson(body): ApiJson<SubscriptionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (endpoint, p256dh, auth) = validate(
        &body.endpoint,
        &body.keys.p256dh,
        &body.keys.auth,
        s.allow_http,
    )
    .map_err(ApiError::bad_request)?;
    let up = s
        .store
        .upsert(user.id, &endpoint, &p256dh, &auth, s.max_subscriptions)
        .await
        .map_err(store_err)?;
    let status = if up.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "id": up.id }))))
}

async fn list_subscriptions(
    State(s): State<PushState>,
    user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let subs = s.store.list(user.id).await.map_err(store_err)?;
    let subs: Vec<Value> = subs
        .into_iter()
        .map(|x| json!({ "id": x.id, "endpoint": x.endpoint, "created_ms": x.created_ms }))
        .collect();
    Ok(Json(json!({ "subscriptions": subs })))
}

async fn unsubscribe(
    State(s): State<PushState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // A malformed id is as unknown as another user's.
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::not_found("subscription"))?;
    if s.store
        .delete(user.id, SubscriptionId(id))
        .await
        .map_err(store_err)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("subscription"))
    }
}

async fn list_mutes(State(s): State<PushState>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    let rooms = s.store.muted_rooms(user.id).await.map_err(store_err)?;
    Ok(Json(json!({ "rooms": rooms })))
}

/// The room, if `user` is a member (else 404, as for a room that does not exist).
async fn member_room(s: &PushState, user: &AuthUser, room: &str) -> Result<RoomId, ApiError> {
    let id: RoomId = room.parse().map_err(|_| ApiError::not_found("room"))?;
    let info = s.store.room(id).await.map_err(store_err)?;
    match info {
        Some(r) if r.members.iter().any(|m| m.id == user.id) => Ok(id),
        _ => Err(ApiError::not_found("room")),
    }
}

async fn mute(
    State(s): State<PushState>,
    user: AuthUser,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = member_room(&s, &user, &room).await?;
    s.store
        .set_muted(user.id, id, true)
        .await
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unmute(
    State(s): State<PushState>,
    user: AuthUser,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Unmuting is allowed after leaving, so a stale mute can always be cleared.
    let id: RoomId = room.parse().map_err(|_| ApiError::not_found("room"))?;
    s.store
        .set_muted(user.id, id, false)
        .await
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}
