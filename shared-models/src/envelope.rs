//! The bus envelope: one JSON shape for every event.
//!
//! ```json
//! {"v": 1, "event": "chat.message.created", "id": "<uuid>", "ts": "<RFC 3339>",
//!  "source": "socket-gateway", "data": { ... }}
//! ```
//!
//! `event` is `<domain>.<entity>.<verb>` and doubles as the routing key.
//! Consumers ignore unknown fields (no `deny_unknown_fields` here, on
//! purpose) and reject what they cannot parse.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chat::{Message, ReceiptRead, UserRegistered};
use crate::ids::Timestamp;

/// The envelope's version; bumped only for incompatible changes.
pub const ENVELOPE_VERSION: u32 = 1;

/// An event on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Envelope version ([`ENVELOPE_VERSION`]).
    pub v: u32,
    /// The routing key, `<domain>.<entity>.<verb>`.
    pub event: String,
    /// Unique per event (for tracing and deduplication).
    pub id: Uuid,
    /// When the event was created.
    pub ts: Timestamp,
    /// The service that published it.
    pub source: String,
    /// The payload; its type is fixed by `event`.
    pub data: T,
}

impl<T: Serialize> Envelope<T> {
    /// A new envelope for `data`.
    pub fn new(kind: EventKind, source: &str, data: T) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            event: kind.as_str().to_owned(),
            id: Uuid::now_v7(),
            ts: Timestamp::now(),
            source: source.to_owned(),
            data,
        }
    }

    /// The JSON bytes that go on the bus.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing these plain structs cannot fail: no maps with non-string keys.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Parses an envelope, refusing other versions.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let env: Self = serde_json::from_slice(bytes)?;
        if env.v != ENVELOPE_VERSION {
            return Err(serde::de::Error::custom(format!(
                "unsupported envelope version {}",
                env.v
            )));
        }
        Ok(env)
    }
}

/// The events Parley publishes, with their payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`Message`]: a message was accepted by a gateway.
    MessageCreated,
    /// [`ReceiptRead`]: a member read a room up to a seq.
    ReceiptRead,
    /// [`UserRegistered`]: auth created a user.
    UserRegistered,
    /// [`MemberChanged`]: a user joined a room.
    MemberAdded,
    /// [`MemberChanged`]: a user left or was removed from a room.
    MemberRemoved,
}

impl EventKind {
    /// Every kind, for topology declarations and tests.
    pub const ALL: [EventKind; 5] = [
        EventKind::MessageCreated,
        EventKind::ReceiptRead,
        EventKind::UserRegistered,
        EventKind::MemberAdded,
        EventKind::MemberRemoved,
    ];

    /// The routing key.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageCreated => "chat.message.created",
            EventKind::ReceiptRead => "chat.receipt.read",
            EventKind::UserRegistered => "auth.user.registered",
            EventKind::MemberAdded => "chat.member.added",
            EventKind::MemberRemoved => "chat.member.removed",
        }
    }

    /// The kind for a routing key, if Parley knows it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Payload types tied to their event kinds, so publishers cannot mix them up.
pub trait EventData: Serialize + DeserializeOwned {
    /// The kind this payload is published as.
    const KIND: EventKind;
}

impl EventData for Message {
    const KIND: EventKind = EventKind::MessageCreated;
}
impl EventData for ReceiptRead {
    const KIND: EventKind = EventKind::ReceiptRead;
}
impl EventData for UserRegistered {
    const KIND: EventKind = EventKind::UserRegistered;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{RoomId, UserId};

    #[test]
    fn envelopes_round_trip_and_ignore_unknown_fields() {
        let env = Envelope::new(
            EventKind::ReceiptRead,
            "socket-gateway",
            ReceiptRead {
                room: RoomId::new(),
                user: UserId::new(),
                seq: 7,
            },
        );
        let mut json: serde_json::Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        assert_eq!(json["event"], "chat.receipt.read");
        json["extra"] = serde_json::json!("ignored");
        json["data"]["extra"] = serde_json::json!(1);
        let bytes = serde_json::to_vec(&json).unwrap();
        let back = Envelope::<ReceiptRead>::from_slice(&bytes).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn other_versions_are_refused() {
        let bad = br#"{"v":2,"event":"x","id":"018f0000-0000-7000-8000-000000000000","ts":"2026-01-01T00:00:00Z","source":"t","data":{}}"#;
        assert!(Envelope::<serde_json::Value>::from_slice(bad).is_err());
    }

    #[test]
    fn kinds_parse_back() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("chat.nope"), None);
    }
}
