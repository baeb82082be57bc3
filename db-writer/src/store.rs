//! The chat store port and its embedded (SQLite) implementation.
//!
//! Writes are idempotent by construction: a message's primary key is
//! `(room, seq)`, its id is unique, and `(room, sender, client_id)` is
//! unique, so a redelivered event changes nothing.

use std::collections::HashSet;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use service_kit::sqlite::{Db, DbError};
use shared_models::{
    ClientId, Message, MessageId, ReceiptRead, Room, RoomId, RoomKind, RoomMember, Timestamp,
    UserId, UserRef,
};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] DbError),
    /// MongoDB failed.
    #[error("mongodb: {0}")]
    Mongo(String),
}

/// A member's positions in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The room's newest seq.
    pub last_seq: u64,
    /// The member's read position.
    pub read_seq: u64,
}

/// What one batch write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New message rows.
    pub inserted: usize,
    /// Messages that were already stored (redeliveries).
    pub duplicates: usize,
    /// Messages refused because another message holds their seq or client
    /// id: they were not stored and must not be acked as stored.
    pub conflicts: Vec<MessageId>,
}

/// Rooms, members, messages and receipts.
#[async_trait]
pub trait ChatStore: Send + Sync + 'static {
    /// Writes a batch of events in one transaction, idempotently.
    async fn write_batch(
        &self,
        users: Vec<UserRef>,
        messages: Vec<Message>,
        receipts: Vec<ReceiptRead>,
    ) -> Result<BatchOutcome, StoreError>;
    /// The ids among `ids` that are not known users.
    async fn unknown_users(&self, ids: Vec<UserId>) -> Result<Vec<UserId>, StoreError>;
    /// Creates a group room owned by `owner` with `members` (owner included).
    async fn create_group(
        &self,
        name: String,
        owner: UserId,
        members: Vec<UserId>,
    ) -> Result<Room, StoreError>;
    /// The direct room of a pair, created on first use; `true` if created now.
    async fn direct_room(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError>;
    /// A room by id.
    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError>;
    /// Adds a member (no-op if present); the room after.
    async fn add_member(&self, room: RoomId, user: UserId) -> Result<Room, StoreError>;
    /// Removes a member; the room after. An owner who leaves hands the room
    /// to the longest-standing remaining member.
    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<Room, StoreError>;
    /// A user's rooms with positions and unread counts.
    async fn rooms_for(&self, user: UserId) -> Result<Vec<RoomMember>, StoreError>;
    /// `Some` if `user` is a member of `room`.
    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError>;
    /// Users who share at least one room with `user` (not `user`).
    async fn contacts(&self, user: UserId) -> Result<Vec<UserId>, StoreError>;
    /// Up to `limit` messages with `seq < before`, newest first.
    async fn history(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Up to `limit` messages with `seq > after`, oldest first.
    async fn after(&self, room: RoomId, after: u64, limit: u32)
    -> Result<Vec<Message>, StoreError>;
    /// The message a sender sent with `client_id`, if stored.
    async fn by_client_id(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<Message>, StoreError>;
    /// `Ok` when the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT,
    owner TEXT,
    direct_key TEXT UNIQUE,
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    room TEXT NOT NULL,
    user_id TEXT NOT NULL,
    read_seq INTEGER NOT NULL DEFAULT 0,
    joined_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    PRIMARY KEY (room, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_user ON members(user_id);
CREATE TABLE IF NOT EXISTS messages (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    ts INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    attachments TEXT,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_client ON messages(room, sender, client_id);
";

/// The embedded store.
#[derive(Debug, Clone)]
pub struct SqliteChatStore {
    db: Db,
}

impl SqliteChatStore {
    /// Opens or creates the database at `path`.
    pub fn open(path: &std::path::Path) -> Result<Self, DbError> {
        let db = Db::open(path, SCHEMA)?;
        migrate(path)?;
        Ok(Self { db })
    }

    /// A page of a room's messages: `sql` takes the room, a seq bound and a limit.
    async fn page(
        &self,
        sql: &'static str,
        room: RoomId,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached(sql)?;
                stmt.query_map(params![room.to_string(), seq, limit], message_from_row)?
                    .collect()
            })
            .await?)
    }

    /// Runs a membership statement over `(room, user)` and returns the room after.
    async fn change_member(
        &self,
        statements: &'static [&'static str],
        room: RoomId,
        user: UserId,
    ) -> Result<Room, StoreError> {
        Ok(self
            .db
            .write(move |c| {
                let tx = c.transaction()?;
                for sql in statements {
                    tx.execute(sql, params![room.to_string(), user.to_string()])?;
                }
                let room = must_room(&tx, room)?;
                tx.commit()?;
                Ok(room)
            })
            .await?)
    }
}

fn conv<T: std::str::FromStr>(idx: usize, s: String) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A seq as the databases store it (they have no unsigned 64-bit integer).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored seq back (a negative one cannot be: read as 0).
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

const MESSAGE_COLS: &str = "id, room, seq, sender, body, ts, client_id, attachments";

/// Brings a database made by an older release up to [`SCHEMA`]: messages
/// gained an `attachments` column (JSON, NULL when none).
fn migrate(path: &std::path::Path) -> Result<(), DbError> {
    let c = Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    let has_attachments: bool = c.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'attachments'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_attachments {
        c.execute_batch("ALTER TABLE messages ADD COLUMN attachments TEXT")?;
    }
    Ok(())
}

/// Attachments as stored: JSON, or NULL when there are none.
fn attachments_to_sql(m: &Message) -> Option<String> {
    if m.attachments.is_empty() {
        None
    } else {
        serde_json::to_string(&m.attachments).ok()
    }
}

fn message_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: conv::<MessageId>(0, row.get(0)?)?,
        room: conv::<RoomId>(1, row.get(1)?)?,
        seq: to_u64(row.get(2)?),
        sender: conv::<UserId>(3, row.get(3)?)?,
        body: row.get(4)?,
        ts: Timestamp::from_millis(row.get(5)?),
        client_id: conv::<ClientId>(6, row.get(6)?)?,
        attachments: match row.get::<_, Option<String>>(7)? {
            None => vec![],
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    7,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
        },
    })
}

fn load_room(c: &Connection, id: RoomId) -> rusqlite::Result<Option<Room>> {
    let head = c
        .query_row(
            "SELECT kind, name, owner FROM rooms WHERE id = ?1",
            [id.to_string()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, name, owner)) = head else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached(
        "SELECT m.user_id, COALESCE(u.username, '') FROM members m LEFT JOIN users u ON u.id = m.user_id
         WHERE m.room = ?1 ORDER BY u.username",
    )?;
    let users = stmt
        .query_map([id.to_string()], |r| {
            Ok(UserRef {
                id: conv(0, r.get(0)?)?,
                username: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(Room {
        id,
        name,
        kind: if kind == "direct" {
            RoomKind::Direct
        } else {
            RoomKind::Group
        },
        owner: owner.map(|o| conv(2, o)).transpose()?,
        members: users.iter().map(|u| u.id).collect(),
        users,
    }))
}

fn same_message_stored(c: &Connection, m: &Message) -> rusqlite::Result<bool> {
    let id: Option<String> = c
        .query_row(
            "SELECT id FROM messages WHERE room = ?1 AND seq = ?2",
            params![m.room.to_string(), to_i64(m.seq)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(id.as_deref() == Some(m.id.to_string().as_str()))
}

fn must_room(c: &Connection, id: RoomId) -> rusqlite::Result<Room> {
    load_room(c, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

#[async_trait]
impl ChatStore for SqliteChatStore {
    async fn write_batch(
        &self,
        users: Vec<UserRef>,
        messages: Vec<Message>,
        receipts: Vec<ReceiptRead>,
    ) -> Result<BatchOutcome, StoreError> {
        Ok(self
            .db
            .write(move |c| {
                let tx = c.transaction()?;
                let mut out = BatchOutcome::default();
                {
                    let mut put_user = tx.prepare_cached(
                        "INSERT INTO users (id, username) VALUES (?1, ?2)
                         ON CONFLICT(id) DO UPDATE SET username = excluded.username",
                    )?;
                    for u in &users {
                        put_user.execute(params![u.id.to_string(), u.username])?;
                    }
                    let mut put_msg = tx.prepare_cached(
                        "INSERT OR IGNORE INTO messages (id, room, seq, sender, body, ts, client_id, attachments)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?;
                    let mut bump = tx.prepare_cached(
                        "UPDATE rooms SET last_seq = MAX(last_seq, ?2) WHERE id = ?1",
                    )?;
                    for m in &messages {
                        let n = put_msg.execute(params![
                            m.id.to_string(),
                            m.room.to_string(),
                            to_i64(m.seq),
                            m.sender.to_string(),
                            m.body,
                            m.ts.millis(),
                            m.client_id.to_string(),
                            attachments_to_sql(m)
                        ])?;
                        if n == 1 {
                            out.inserted += 1;
                            bump.execute(params![m.room.to_string(), to_i64(m.seq)])?;
                        } else if same_message_stored(&tx, m)? {
                            out.duplicates += 1;
                        } else {
                            // Two different messages claimed one seq (or one client_id):
                            // a broken sequencing invariant, never silently dropped.
                            out.conflicts.push(m.id);
                            tracing::error!(room = %m.room, seq = m.seq, id = %m.id, "sequence conflict: message not stored");
                        }
                    }
                    let mut read = tx.prepare_cached(
                        "UPDATE members SET read_seq = MAX(read_seq, ?3) WHERE room = ?1 AND user_id = ?2",
                    )?;
                    for r in &receipts {
                        read.execute(params![r.room.to_string(), r.user.to_string(), to_i64(r.seq)])?;
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .await?)
    }

    async fn unknown_users(&self, ids: Vec<UserId>) -> Result<Vec<UserId>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?;
                let mut missing = Vec::new();
                for id in ids {
                    if !stmt.exists([id.to_string()])? {
                        missing.push(id);
                    }
                }
                Ok(missing)
            })
            .await?)
    }

    async fn create_group(
        &self,
        name: String,
        owner: UserId,
        members: Vec<UserId>,
    ) -> Result<Room, StoreError> {
        Ok(self
            .db
            .write(move |c| {
                let id = RoomId::new();
                let tx = c.transaction()?;
                tx.execute(
                    "INSERT INTO rooms (id, kind, name, owner, created_at) VALUES (?1, 'group', ?2, ?3, strftime('%s','now'))",
                    params![id.to_string(), name, owner.to_string()],
                )?;
                let mut all: Vec<UserId> = vec![owner];
                all.extend(members);
                let mut seen = HashSet::new();
                for m in all.into_iter().filter(|m| seen.insert(*m)) {
                    tx.execute(
                        "INSERT OR IGNORE INTO members (room, user_id) VALUES (?1, ?2)",
                        params![id.to_string(), m.to_string()],
                    )?;
                }
                let room = must_room(&tx, id)?;
                tx.commit()?;
                Ok(room)
            })
            .await?)
    }

    async fn direct_room(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError> {
        Ok(self
            .db
            .write(move |c| {
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let key = format!("{lo}:{hi}");
                let tx = c.transaction()?;
                let id = RoomId::new();
                let created = tx.execute(
                    "INSERT OR IGNORE INTO rooms (id, kind, direct_key, created_at) VALUES (?1, 'direct', ?2, strftime('%s','now'))",
                    params![id.to_string(), key],
                )? == 1;
                let id: String = tx.query_row("SELECT id FROM rooms WHERE direct_key = ?1", [&key], |r| r.get(0))?;
                let id: RoomId = conv(0, id)?;
                if created {
                    for m in [lo, hi] {
                        tx.execute(
                            "INSERT OR IGNORE INTO members (room, user_id) VALUES (?1, ?2)",
                            params![id.to_string(), m.to_string()],
                        )?;
                    }
                }
                let room = must_room(&tx, id)?;
                tx.commit()?;
                Ok((room, created))
            })
            .await?)
    }

    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        Ok(self.db.read(move |c| load_room(c, id)).await?)
    }

    async fn add_member(&self, room: RoomId, user: UserId) -> Result<Room, StoreError> {
        const ADD: &[&str] = &["INSERT OR IGNORE INTO members (room, user_id) VALUES (?1, ?2)"];
        self.change_member(ADD, room, user).await
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<Room, StoreError> {
        const REMOVE: &[&str] = &[
            "DELETE FROM members WHERE room = ?1 AND user_id = ?2",
            // An owner who leaves hands the room to its longest-standing member.
            "UPDATE rooms SET owner = (SELECT user_id FROM members WHERE room = ?1
                                       ORDER BY joined_at, user_id LIMIT 1)
             WHERE id = ?1 AND owner = ?2",
        ];
        self.change_member(REMOVE, room, user).await
    }

    async fn rooms_for(&self, user: UserId) -> Result<Vec<RoomMember>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT r.id, r.last_seq, m.read_seq,
                        (SELECT COUNT(*) FROM messages x
                          WHERE x.room = r.id AND x.seq > m.read_seq AND x.sender != m.user_id)
                     FROM members m JOIN rooms r ON r.id = m.room
                     WHERE m.user_id = ?1 ORDER BY r.last_seq DESC, r.created_at DESC",
                )?;
                let heads = stmt
                    .query_map([user.to_string()], |r| {
                        Ok((
                            conv::<RoomId>(0, r.get(0)?)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                heads
                    .into_iter()
                    .map(|(id, last, read, unread)| {
                        Ok(RoomMember {
                            room: must_room(c, id)?,
                            last_seq: to_u64(last),
                            read_seq: to_u64(read),
                            unread: to_u64(unread),
                        })
                    })
                    .collect()
            })
            .await?)
    }

    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                c.query_row(
                    "SELECT r.last_seq, m.read_seq FROM members m JOIN rooms r ON r.id = m.room
                     WHERE m.room = ?1 AND m.user_id = ?2",
                    params![room.to_string(), user.to_string()],
                    |r| {
                        Ok(Membership {
                            last_seq: to_u64(r.get(0)?),
                            read_seq: to_u64(r.get(1)?),
                        })
                    },
                )
                .optional()
            })
            .await?)
    }

    async fn contacts(&self, user: UserId) -> Result<Vec<UserId>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT DISTINCT o.user_id FROM members m JOIN members o ON o.room = m.room
                     WHERE m.user_id = ?1 AND o.user_id != ?1",
                )?;
                stmt.query_map([user.to_string()], |r| conv::<UserId>(0, r.get(0)?))?
                    .collect()
            })
            .await?)
    }

    async fn history(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        const SQL: &str =
            "SELECT id, room, seq, sender, body, ts, client_id, attachments FROM messages
                           WHERE room = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
        self.page(SQL, room, before.map_or(i64::MAX, to_i64), limit)
            .await
    }

    async fn after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        const SQL: &str =
            "SELECT id, room, seq, sender, body, ts, client_id, attachments FROM messages
                           WHERE room = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3";
        self.page(SQL, room, to_i64(after), limit).await
    }

    async fn by_client_id(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<Message>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                c.query_row(
                    &format!("SELECT {MESSAGE_COLS} FROM messages WHERE room = ?1 AND sender = ?2 AND client_id = ?3"),
                    params![room.to_string(), sender.to_string(), client_id.to_string()],
                    message_from_row,
                )
                .optional()
            })
            .await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }
}
