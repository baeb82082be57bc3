//! Extractors shared by the HTTP services.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use shared_models::{ErrorCode, UserId};

use crate::error::ApiError;
use crate::token::{TokenError, Verifier};

/// A JSON body whose rejections are [`ApiError`]s with the protocol's codes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::BytesRejection(r)) if r.status().as_u16() == 413 => Err(
                ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large"),
            ),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_request(
                "expected Content-Type: application/json",
            )),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// The caller, proven by a valid `Authorization: Bearer` access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The user's id (`sub`).
    pub id: UserId,
    /// The username (`name`).
    pub username: String,
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let claims = verifier.verify_opt(token).map_err(|e| {
            let message = match e {
                TokenError::Missing => "missing bearer token",
                TokenError::Expired => "access token expired",
                TokenError::Invalid => "invalid access token",
            };
            ApiError::new(ErrorCode::Unauthorized, message)
        })?;
        Ok(Self {
            id: claims.sub,
            username: claims.name,
        })
    }
}
