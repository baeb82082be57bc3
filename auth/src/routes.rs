//! auth's HTTP routes (`/api/auth/…`, `/api/users/lookup`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use service_kit::ApiError;
use service_kit::http::{ApiJson, AuthUser};
use service_kit::token::{Jwks, Verifier};
use shared_models::UserRef;

use crate::service::{AuthService, Session};

/// Router state.
#[derive(Clone)]
pub struct AuthState {
    /// The use cases.
    pub service: Arc<AuthService>,
    /// Verifies bearer tokens.
    pub verifier: Arc<Verifier>,
}

impl FromRef<AuthState> for Arc<Verifier> {
    fn from_ref(s: &AuthState) -> Self {
        s.verifier.clone()
    }
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
struct LookupQuery {
    username: Option<String>,
}

/// The routes, to be merged into a service's router.
pub fn router(state: AuthState) -> Router {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/auth/jwks.json", get(jwks))
        .route("/api/users/lookup", get(lookup))
        .with_state(state)
}

async fn register(
    State(s): State<AuthState>,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let session = s.service.register(&c.username, &c.password).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

async fn login(
    State(s): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Json<Session>, ApiError> {
    let mut ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    if s.service.trusts_forwarded_for() {
        // The ingress appends the address it saw: the last entry is the one to trust.
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        ip = forwarded.or(ip);
    }
    Ok(Json(s.service.login(&c.username, &c.password, ip).await?))
}

async fn refresh(
    State(s): State<AuthState>,
    ApiJson(b): ApiJson<RefreshBody>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(s.service.refresh(&b.refresh_token).await?))
}

async fn logout(
    State(s): State<AuthState>,
    user: AuthUser,
    ApiJson(b): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    s.service.logout(user.id, &b.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(s): State<AuthState>, user: AuthUser) -> Result<Json<UserRef>, ApiError> {
    Ok(Json(s.service.user(user.id).await?))
}

async fn jwks(State(s): State<AuthState>) -> Json<Jwks> {
    Json(s.service.keys().jwks())
}

async fn lookup(
    State(s): State<AuthState>,
    _user: AuthUser,
    Query(q): Query<LookupQuery>,
) -> Result<Json<UserRef>, ApiError> {
    let username = q
        .username
        .ok_or_else(|| ApiError::bad_request("the username query parameter is required"))?;
    Ok(Json(s.service.lookup(&username).await?))
}
