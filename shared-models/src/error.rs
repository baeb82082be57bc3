//! The one error shape: `{"code": "...", "message": "..."}`.
//!
//! HTTP wraps it as `{"error": {...}}` with a status; Socket.IO acks wrap it
//! as `{"ok": false, "error": {...}}`. Codes are stable API; messages are
//! for people.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // Each variant is documented in docs/PROTOCOL.md's table.
pub enum ErrorCode {
    BadRequest,
    InvalidUsername,
    WeakPassword,
    InvalidName,
    BodyTooLong,
    InvalidSeq,
    UnknownUser,
    UnknownEvent,
    Unauthorized,
    TokenMissing,
    TokenInvalid,
    TokenExpired,
    InvalidCredentials,
    InvalidRefreshToken,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    UsernameTaken,
    PayloadTooLarge,
    RateLimited,
    TooManyRooms,
    /// A message names a file that is missing or belongs to another room.
    AttachmentInvalid,
    /// An upload's content type (sniffed from its bytes) is not allowed.
    UnsupportedMediaType,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidUsername => "invalid_username",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::BodyTooLong => "body_too_long",
            ErrorCode::InvalidSeq => "invalid_seq",
            ErrorCode::UnknownUser => "unknown_user",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenMissing => "token_missing",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidRefreshToken => "invalid_refresh_token",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::AttachmentInvalid => "attachment_invalid",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status this code travels with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::InvalidUsername
            | ErrorCode::WeakPassword
            | ErrorCode::InvalidName
            | ErrorCode::BodyTooLong
            | ErrorCode::InvalidSeq
            | ErrorCode::UnknownUser
            | ErrorCode::UnknownEvent
            | ErrorCode::TooManyRooms
            | ErrorCode::AttachmentInvalid => 400,
            ErrorCode::Unauthorized
            | ErrorCode::TokenMissing
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenExpired
            | ErrorCode::InvalidCredentials
            | ErrorCode::InvalidRefreshToken => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::UsernameTaken => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable detail (generic for internal errors).
    pub message: String,
}

impl ErrorBody {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        let all = [
            ErrorCode::BadRequest,
            ErrorCode::TokenExpired,
            ErrorCode::TooManyRooms,
        ];
        for c in all {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
