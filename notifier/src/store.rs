//! The [`SubscriptionStore`] port: push subscriptions, per-room mutes, and
//! the notifier's own projection of rooms and members (from
//! `chat.member.*` events), plus the embedded implementation on SQLite.

use std::collections::HashSet;
use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use service_kit::sqlite::{Db, DbError};
use shared_models::{Room, RoomId, RoomKind, UserId, UserRef};
use uuid::Uuid;

/// A stored subscription's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionId(pub Uuid);

impl std::fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A browser's push subscription, as stored (keys base64url, no padding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSubscription {
    /// Its id.
    pub id: SubscriptionId,
    /// Whose it is.
    pub user: UserId,
    /// The push service URL.
    pub endpoint: String,
    /// The browser's P-256 public key (uncompressed point).
    pub p256dh: String,
    /// The 16-byte auth secret.
    pub auth: String,
    /// Created, in milliseconds since the epoch.
    pub created_ms: i64,
}

/// What a subscription upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    /// The subscription's id (kept when the endpoint was known).
    pub id: SubscriptionId,
    /// Whether a new row was made.
    pub created: bool,
}

/// A room as the notifier knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// The room.
    pub id: RoomId,
    /// Group rooms' name.
    pub name: Option<String>,
    /// Group or direct.
    pub kind: RoomKind,
    /// Current members with their names.
    pub members: Vec<UserRef>,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The user already has the most subscriptions allowed.
    #[error("subscription limit of {0} reached")]
    LimitReached(usize),
    /// The backend failed.
    #[error("subscription store: {0}")]
    Backend(String),
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// The notifier's store.
#[async_trait]
pub trait SubscriptionStore: Send + Sync + 'static {
    /// Adds `user`'s subscription, or updates the one with the same endpoint
    /// (which then belongs to `user`: the browser is theirs now). Refuses a
    /// new endpoint beyond `limit` subscriptions per user.
    async fn upsert(
        &self,
        user: UserId,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        limit: usize,
    ) -> Result<Upserted, StoreError>;
    /// `user`'s subscriptions, oldest first.
    async fn list(&self, user: UserId) -> Result<Vec<StoredSubscription>, StoreError>;
    /// Deletes `user`'s subscription `id`; false if there is none of theirs.
    async fn delete(&self, user: UserId, id: SubscriptionId) -> Result<bool, StoreError>;
    /// Deletes a subscription the push service reported gone.
    async fn delete_expired(&self, id: SubscriptionId) -> Result<bool, StoreError>;
    /// Every subscription of these users.
    async fn for_users(&self, users: &[UserId]) -> Result<Vec<StoredSubscription>, StoreError>;
    /// Mutes (or unmutes) `room` for `user`.
    async fn set_muted(&self, user: UserId, room: RoomId, muted: bool) -> Result<(), StoreError>;
    /// The rooms `user` muted.
    async fn muted_rooms(&self, user: UserId) -> Result<Vec<RoomId>, StoreError>;
    /// The members of `room` who muted it.
    async fn muted_users(&self, room: RoomId) -> Result<HashSet<UserId>, StoreError>;
    /// Records a room as it is after a membership change (replaces members).
    async fn put_room(&self, room: &Room) -> Result<(), StoreError>;
    /// The room, if the notifier has heard of it.
    async fn room(&self, room: RoomId) -> Result<Option<RoomInfo>, StoreError>;
    /// Whether the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_user ON subscriptions(user_id);
CREATE TABLE IF NOT EXISTS mutes (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY,
    name TEXT,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS room_members (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
";

/// The embedded store: `notifier.db` (SQLite, WAL).
#[derive(Debug, Clone)]
pub struct SqliteSubscriptionStore {
    db: Db,
}

impl SqliteSubscriptionStore {
    /// Opens (creating) the database file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            db: Db::open(path, SCHEMA)?,
        })
    }
}

fn parse_uuid(s: String, col: usize) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn row_to_sub(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSubscription> {
    Ok(StoredSubscription {
        id: SubscriptionId(parse_uuid(r.get(0)?, 0)?),
        user: UserId(parse_uuid(r.get(1)?, 1)?),
        endpoint: r.get(2)?,
        p256dh: r.get(3)?,
        auth: r.get(4)?,
        created_ms: r.get(5)?,
    })
}

/// A stored room kind (`RoomKind::as_str`) back as the enum.
pub(crate) fn kind_of(s: &str) -> RoomKind {
    if s == RoomKind::Direct.as_str() {
        RoomKind::Direct
    } else {
        RoomKind::Group
    }
}

const SUB_COLS: &str = "id, user_id, endpoint, p256dh, auth, created_ms";

#[async_trait]
impl SubscriptionStore for SqliteSubscriptionStore {
    async fn upsert(
        &self,
        user: UserId,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        limit: usize,
    ) -> Result<Upserted, StoreError> {
        let (endpoint, p256dh, auth) = (endpoint.to_owned(), p256dh.to_owned(), auth.to_owned());
        let user_s = user.to_string();
        let res = self
            .db
            .write(move |c| {
                let tx = c.transaction()?;
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT id FROM subscriptions WHERE endpoint = ?1",
                        [&endpoint],
                        |r| r.get(0),
                    )
                    .ok();
                let out = match existing {
                    Some(id) => {
                        tx.execute(
                            "UPDATE subscriptions SET user_id = ?2, p256dh = ?3, auth = ?4 WHERE id = ?1",
                            rusqlite::params![id, user_s, p256dh, auth],
                        )?;
                        Some((parse_uuid(id, 0)?, false))
                    }
                    None => {
                        let count: i64 = tx.query_row(
                            "SELECT COUNT(*) FROM subscriptions WHERE user_id = ?1",
                            [&user_s],
                            |r| r.get(0),
                        )?;
                        if usize::try_from(count).unwrap_or(usize::MAX) >= limit {
                            None
                        } else {
                            let id = Uuid::now_v7();
                            tx.execute(
                                "INSERT INTO subscriptions (id, user_id, endpoint, p256dh, auth, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                rusqlite::params![
                                    id.to_string(),
                                    user_s,
                                    endpoint,
                                    p256dh,
                                    auth,
                                    shared_models::Timestamp::now().millis()
                                ],
                            )?;
                            Some((id, true))
                        }
                    }
                };
                tx.commit()?;
                Ok(out)
            })
            .await?;
        match res {
            Some((id, created)) => Ok(Upserted {
                id: SubscriptionId(id),
                created,
            }),
            None => Err(StoreError::LimitReached(limit)),
        }
    }

    async fn list(&self, user: UserId) -> Result<Vec<StoredSubscription>, StoreError> {
        let user = user.to_string();
        Ok(self
            .db
            .read(move |c| {
                let mut st = c.prepare(&format!(
                    "SELECT {SUB_COLS} FROM subscriptions WHERE user_id = ?1 ORDER BY created_ms, id"
                ))?;
                st.query_map([user], row_to_sub)?.collect()
            })
            .await?)
    }

    async fn delete(&self, user: UserId, id: SubscriptionId) -> Result<bool, StoreError> {
        let (user, id) = (user.to_string(), id.to_string());
        Ok(self
            .db
            .write(move |c| {
                c.execute(
                    "DELETE FROM subscriptions WHERE id = ?1 AND user_id = ?2",
                    [id, user],
                )
            })
            .await?
            > 0)
    }

    async fn delete_expired(&self, id: SubscriptionId) -> Result<bool, StoreError> {
        let id = id.to_string();
        Ok(self
            .db
            .write(move |c| c.execute("DELETE FROM subscriptions WHERE id = ?1", [id]))
            .await?
            > 0)
    }

    async fn for_users(&self, users: &[UserId]) -> Result<Vec<StoredSubscription>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<String> = users.iter().map(ToString::to_string).collect();
        Ok(self
            .db
            .read(move |c| {
                let mut out = Vec::new();
                let mut st = c.prepare_cached(&format!(
                    "SELECT {SUB_COLS} FROM subscriptions WHERE user_id = ?1 ORDER BY created_ms, id"
                ))?;
                for u in users {
                    for s in st.query_map([u], row_to_sub)? {
                        out.push(s?);
                    }
                }
                Ok(out)
            })
            .await?)
    }

    async fn set_muted(&self, user: UserId, room: RoomId, muted: bool) -> Result<(), StoreError> {
        let (user, room) = (user.to_string(), room.to_string());
        self.db
            .write(move |c| {
                if muted {
                    c.execute(
                        "INSERT OR IGNORE INTO mutes (user_id, room_id) VALUES (?1, ?2)",
                        [user, room],
                    )
                } else {
                    c.execute(
                        "DELETE FROM mutes WHERE user_id = ?1 AND room_id = ?2",
                        [user, room],
                    )
                }
            })
            .await?;
        Ok(())
    }

    async fn muted_rooms(&self, user: UserId) -> Result<Vec<RoomId>, StoreError> {
        let user = user.to_string();
        Ok(self
            .db
            .read(move |c| {
                let mut st =
                    c.prepare("SELECT room_id FROM mutes WHERE user_id = ?1 ORDER BY room_id")?;
                st.query_map([user], |r| Ok(RoomId(parse_uuid(r.get(0)?, 0)?)))?
                    .collect()
            })
            .await?)
    }

    async fn muted_users(&self, room: RoomId) -> Result<HashSet<UserId>, StoreError> {
        let room = room.to_string();
        Ok(self
            .db
            .read(move |c| {
                let mut st = c.prepare_cached("SELECT user_id FROM mutes WHERE room_id = ?1")?;
                st.query_map([room], |r| Ok(UserId(parse_uuid(r.get(0)?, 0)?)))?
                    .collect()
            })
            .await?)
    }

    async fn put_room(&self, room: &Room) -> Result<(), StoreError> {
        let room = room.clone();
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                let id = room.id.to_string();
                tx.execute(
                    "INSERT INTO rooms (id, name, kind) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind",
                    rusqlite::params![id, room.name, room.kind.as_str()],
                )?;
                tx.execute("DELETE FROM room_members WHERE room_id = ?1", [&id])?;
                for u in &room.users {
                    tx.execute(
                        "INSERT OR REPLACE INTO room_members (room_id, user_id, username) VALUES (?1, ?2, ?3)",
                        rusqlite::params![id, u.id.to_string(), u.username],
                    )?;
                }
                // A member the event names without a username still counts.
                for m in &room.members {
                    tx.execute(
                        "INSERT OR IGNORE INTO room_members (room_id, user_id, username) VALUES (?1, ?2, '')",
                        rusqlite::params![id, m.to_string()],
                    )?;
                }
                tx.commit()
            })
            .await?;
        Ok(())
    }

    async fn room(&self, room: RoomId) -> Result<Option<RoomInfo>, StoreError> {
        let id = room.to_string();
        Ok(self
            .db
            .read(move |c| {
                let head: Option<(Option<String>, String)> = c
                    .query_row("SELECT name, kind FROM rooms WHERE id = ?1", [&id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .ok();
                let Some((name, kind)) = head else {
                    return Ok(None);
                };
                let mut st = c.prepare_cached(
                    "SELECT user_id, username FROM room_members WHERE room_id = ?1 ORDER BY user_id",
                )?;
                let members = st
                    .query_map([&id], |r| {
                        Ok(UserRef {
                            id: UserId(parse_uuid(r.get(0)?, 0)?),
                            username: r.get(1)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(Some(RoomInfo {
                    id: room,
                    name,
                    kind: kind_of(&kind),
                    members,
                }))
            })
            .await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }
}
