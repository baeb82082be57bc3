//! File metadata and the membership projection in SQLite.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use service_kit::sqlite::{Db, DbError};
use shared_models::{FileId, RoomId, Timestamp, UserId};

use super::{FileMeta, FileMetaStore, MetaError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    uploader TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_room ON files (room);
CREATE TABLE IF NOT EXISTS members (
    room TEXT NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (room, user)
) WITHOUT ROWID;
";

/// The embedded metadata store.
#[derive(Debug, Clone)]
pub struct SqliteMetaStore {
    db: Db,
}

impl SqliteMetaStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Ok(Self {
            db: Db::open(path, SCHEMA)?,
        })
    }
}

fn err(e: DbError) -> MetaError {
    MetaError(e.to_string())
}

fn parse<T: std::str::FromStr>(i: usize, s: String) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileMeta> {
    Ok(FileMeta {
        id: parse(0, r.get(0)?)?,
        room: parse(1, r.get(1)?)?,
        uploader: parse(2, r.get(2)?)?,
        name: r.get(3)?,
        size: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        content_type: r.get(5)?,
        sha256: r.get(6)?,
        created_at: Timestamp::from_millis(r.get(7)?),
    })
}

#[async_trait]
impl FileMetaStore for SqliteMetaStore {
    async fn insert(&self, meta: &FileMeta) -> Result<(), MetaError> {
        let m = meta.clone();
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT INTO files (id, room, uploader, name, size, content_type, sha256, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        m.id.to_string(),
                        m.room.to_string(),
                        m.uploader.to_string(),
                        m.name,
                        i64::try_from(m.size).unwrap_or(i64::MAX),
                        m.content_type,
                        m.sha256,
                        m.created_at.millis(),
                    ],
                )
            })
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn get(&self, id: FileId) -> Result<Option<FileMeta>, MetaError> {
        self.db
            .read(move |c| {
                c.query_row(
                    "SELECT id, room, uploader, name, size, content_type, sha256, created_at
                     FROM files WHERE id = ?1",
                    [id.to_string()],
                    from_row,
                )
                .optional()
            })
            .await
            .map_err(err)
    }

    async fn delete(&self, id: FileId) -> Result<bool, MetaError> {
        self.db
            .write(move |c| c.execute("DELETE FROM files WHERE id = ?1", [id.to_string()]))
            .await
            .map(|n| n > 0)
            .map_err(err)
    }

    async fn add_member(&self, room: RoomId, user: UserId) -> Result<(), MetaError> {
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO members (room, user) VALUES (?1, ?2)",
                    [room.to_string(), user.to_string()],
                )
            })
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), MetaError> {
        self.db
            .write(move |c| {
                c.execute(
                    "DELETE FROM members WHERE room = ?1 AND user = ?2",
                    [room.to_string(), user.to_string()],
                )
            })
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, MetaError> {
        self.db
            .read(move |c| {
                c.query_row(
                    "SELECT 1 FROM members WHERE room = ?1 AND user = ?2",
                    [room.to_string(), user.to_string()],
                    |_| Ok(()),
                )
                .optional()
            })
            .await
            .map(|r| r.is_some())
            .map_err(err)
    }

    async fn health(&self) -> Result<(), MetaError> {
        self.db.ping().await.map_err(err)
    }
}
