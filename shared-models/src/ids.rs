//! Identifiers and validated domain values.
//!
//! Each type validates on construction (`parse`), so an invalid value cannot
//! travel far: a `Username` in hand is always a legal username.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// Why a domain value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub &'static str);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // A plain message for clients, not the UUID parser's detail.
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// A new random (time-ordered, v7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| InvalidValue(concat!("expected a ", stringify!($name), " (a UUID)")))
            }
        }
    };
}

uuid_id!(
    /// A user's id, assigned by auth at registration.
    UserId
);
uuid_id!(
    /// A room's id.
    RoomId
);
uuid_id!(
    /// A message's server-assigned id.
    MessageId
);
uuid_id!(
    /// The id a client picks for a message and reuses on retry (idempotency key).
    ClientId
);
uuid_id!(
    /// An uploaded file's id, assigned by file-service.
    FileId
);

/// A username: 3–32 characters of `a-z A-Z 0-9 _ . -`.
///
/// Comparison is exact; uniqueness is case-insensitive in the stores
/// (`Username::key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Validates a username.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let ok_len = (3..=32).contains(&s.len());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok_len && ok_chars {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue(
                "username must be 3-32 characters of letters, digits, '_', '.' or '-'",
            ))
        }
    }

    /// The form used for uniqueness: lowercase.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The username as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Username::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group room's name: 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    /// Validates and trims a room name.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let t = s.trim();
        let n = t.chars().count();
        if (1..=100).contains(&n) && !t.chars().any(char::is_control) {
            Ok(Self(t.to_owned()))
        } else {
            Err(InvalidValue(
                "room name must be 1-100 characters without control characters",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message body: non-blank, at most `max` characters (Unicode scalar values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MessageBody(String);

impl MessageBody {
    /// The protocol's upper bound on a body's length, in characters.
    pub const MAX_CHARS: usize = 4000;

    /// Validates a body against a limit (never above [`Self::MAX_CHARS`]).
    pub fn parse(s: String, max: usize) -> Result<Self, InvalidValue> {
        let max = max.min(Self::MAX_CHARS);
        if s.trim().is_empty() {
            return Err(InvalidValue("message body must not be empty"));
        }
        if s.chars().count() > max {
            return Err(InvalidValue("message body is too long"));
        }
        Ok(Self(s))
    }

    /// The body.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The body, owned.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for MessageBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MessageBody::parse(s, MessageBody::MAX_CHARS).map_err(serde::de::Error::custom)
    }
}

/// A UTC instant with millisecond precision, RFC 3339 on the wire, always
/// with three fraction digits (`2026-11-21T06:10:00.000Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub chrono::DateTime<chrono::Utc>);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

impl Timestamp {
    /// The current time, truncated to milliseconds so it round-trips exactly.
    pub fn now() -> Self {
        Self::from_millis(chrono::Utc::now().timestamp_millis())
    }

    /// From milliseconds since the Unix epoch.
    pub fn from_millis(ms: i64) -> Self {
        Self(chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default())
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_validated() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.b-c_9").is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse(&"x".repeat(33)).is_err());
        assert_eq!(Username::parse("Alice").unwrap().key(), "alice");
        assert!(serde_json::from_str::<Username>("\"../etc\"").is_err());
    }

    #[test]
    fn bodies_are_bounded() {
        assert!(MessageBody::parse("hi".into(), 10).is_ok());
        assert!(MessageBody::parse("   ".into(), 10).is_err());
        assert!(MessageBody::parse("é".repeat(10), 10).is_ok());
        assert!(MessageBody::parse("é".repeat(11), 10).is_err());
        assert!(MessageBody::parse("x".repeat(5000), usize::MAX).is_err());
    }

    #[test]
    fn room_names_are_trimmed() {
        assert_eq!(RoomName::parse("  general ").unwrap().as_str(), "general");
        assert!(RoomName::parse("").is_err());
        assert!(RoomName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn timestamps_always_carry_milliseconds() {
        let t = Timestamp::from_millis(1_800_000_000_000);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2027-01-15T08:00:00.000Z\""
        );
    }

    #[test]
    fn timestamps_round_trip_with_millis() {
        let t = Timestamp::from_millis(1_800_000_000_123);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2027-01-15T08:00:00.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn ids_parse_only_uuids() {
        assert!("not-a-uuid".parse::<RoomId>().is_err());
        let err = serde_json::from_str::<RoomId>("\"nope\"")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("expected a RoomId (a UUID)"), "{err}");
        let id = RoomId::new();
        assert_eq!(id.to_string().parse::<RoomId>().unwrap(), id);
    }
}
