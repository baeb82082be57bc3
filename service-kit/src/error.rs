//! The HTTP edge's error: a code, a message for people, and (for internal
//! failures) a source that is logged but never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared_models::{ErrorBody, ErrorCode};

/// An error an HTTP handler returns.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    source: Option<anyhow::Error>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A client error with a code and a message for people.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }

    /// An internal failure: the client sees only `internal`; the chain is logged.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            source: Some(err.into()),
            retry_after: None,
        }
    }

    /// A backend could not take the request; the client may retry.
    pub fn unavailable(err: impl Into<anyhow::Error>) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: "service temporarily unavailable, retry".into(),
            source: Some(err.into()),
            retry_after: Some(1),
        }
    }

    /// `404 not_found` with a message.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// `400 bad_request` with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// Adds a `Retry-After` header (seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The body clients see.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code, self.message.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(code = %self.code, error = ?source, "request failed");
        }
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({ "error": self.body() });
        let mut res = (status, axum::Json(body)).into_response();
        // For the error metric (see `ops::count_errors`).
        res.extensions_mut().insert(self.code);
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
