//! The wire types every Parley service agrees on.
//!
//! This crate is a compatibility promise: the JSON shapes here are what
//! browsers, the bus and the stores see. It does no I/O (no sockets, files
//! or clocks beyond [`Timestamp::now`]), so every service and test can use it.
//!
//! - [`ids`]: validated identifiers and domain values ([`RoomId`], [`Username`], …).
//! - [`chat`]: messages, rooms and the events that change them.
//! - [`envelope`]: the bus envelope `{v, event, id, ts, source, data}`.
//! - [`error`]: the one error shape and its codes.
//! - [`file`]: attachments on messages.

pub mod chat;
pub mod envelope;
pub mod error;
pub mod file;
pub mod ids;

pub use chat::{
    MemberChanged, Message, ReceiptRead, Room, RoomKind, RoomMember, UserRef, UserRegistered,
};
pub use envelope::{Envelope, EventData, EventKind};
pub use error::{ErrorBody, ErrorCode};
pub use file::Attachment;
pub use ids::{
    ClientId, FileId, MessageBody, MessageId, RoomId, RoomName, Timestamp, UserId, Username,
};
