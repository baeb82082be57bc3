//! Messages, rooms, and the events that change them.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, MessageId, RoomId, Timestamp, UserId};

/// A chat message as clients, the bus and the stores see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Server-assigned id.
    pub id: MessageId,
    /// The room it was sent to.
    pub room: RoomId,
    /// Position in the room: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// Who sent it.
    pub sender: UserId,
    /// The text.
    pub body: String,
    /// When the server accepted it.
    pub ts: Timestamp,
    /// The sender's idempotency key.
    pub client_id: ClientId,
    /// Files attached to the message (absent on the wire when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::file::Attachment>,
}

/// Group room or direct conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// Named room with an owner who manages members.
    Group,
    /// Conversation between exactly two users; one per pair.
    Direct,
}

impl RoomKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Group => "group",
            RoomKind::Direct => "direct",
        }
    }
}

/// A user's id and name, for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// The user's id.
    pub id: UserId,
    /// The user's name.
    pub username: String,
}

/// A room and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// The room's id.
    pub id: RoomId,
    /// Group rooms have a name; direct rooms have none.
    pub name: Option<String>,
    /// Group or direct.
    pub kind: RoomKind,
    /// The member who manages a group room.
    pub owner: Option<UserId>,
    /// Member ids.
    pub members: Vec<UserId>,
    /// The same members, with names.
    pub users: Vec<UserRef>,
}

/// A room as one member sees it in their room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMember {
    /// The room.
    #[serde(flatten)]
    pub room: Room,
    /// The room's newest sequence number (0 when empty).
    pub last_seq: u64,
    /// The member's read position.
    pub read_seq: u64,
    /// Other members' messages after `read_seq`.
    pub unread: u64,
}

/// `chat.receipt.read`: a member has read a room up to `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRead {
    /// The room.
    pub room: RoomId,
    /// The reader.
    pub user: UserId,
    /// Read up to and including this sequence number.
    pub seq: u64,
}

/// `auth.user.registered`: a new user exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The new user's id.
    pub id: UserId,
    /// Their name.
    pub username: String,
}

/// `chat.member.added` / `chat.member.removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChanged {
    /// The room as it is after the change.
    pub room: Room,
    /// The user added or removed.
    pub user: UserId,
}
