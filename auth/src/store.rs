//! The user and refresh-token store port, and its embedded (SQLite)
//! implementation.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use service_kit::sqlite::{Db, DbError};
use shared_models::UserId;

/// A stored user.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Name as registered.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// A stored refresh token (only its hash is kept).
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    /// The token family (one per login).
    pub family: String,
    /// Owner.
    pub user: UserId,
    /// Unix seconds.
    pub expires_at: i64,
    /// Already exchanged for a new one.
    pub used: bool,
    /// Revoked (logout or theft detection).
    pub revoked: bool,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unique username violated.
    #[error("username taken")]
    UsernameTaken,
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] DbError),
    /// MongoDB failed.
    #[error("mongodb: {0}")]
    Mongo(String),
}

/// Users and refresh tokens.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Creates a user; [`StoreError::UsernameTaken`] if the name (case-insensitively) exists.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// Removes a user (compensation when registration cannot be announced).
    async fn delete_user(&self, id: UserId) -> Result<(), StoreError>;
    /// Finds by name, case-insensitively.
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Finds by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    /// Stores a refresh token's hash.
    async fn insert_refresh(&self, hash: &str, rec: &RefreshRecord) -> Result<(), StoreError>;
    /// Looks up a refresh token by hash.
    async fn refresh(&self, hash: &str) -> Result<Option<RefreshRecord>, StoreError>;
    /// Marks a token used; `false` if it already was (a concurrent reuse).
    async fn mark_used(&self, hash: &str) -> Result<bool, StoreError>;
    /// Revokes every token of a family.
    async fn revoke_family(&self, family: &str) -> Result<(), StoreError>;
    /// `Ok` when the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    user_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family);
";

/// The embedded store: one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteUserStore {
    db: Db,
}

impl SqliteUserStore {
    /// Opens or creates the database at `path`.
    pub fn open(path: &std::path::Path) -> Result<Self, DbError> {
        Ok(Self {
            db: Db::open(path, SCHEMA)?,
        })
    }
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    let id: String = row.get(0)?;
    Ok(UserRecord {
        id: id.parse().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
    })
}

#[async_trait]
impl UserStore for SqliteUserStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let u = user.clone();
        let res = self
            .db
            .write(move |c| {
                c.execute(
                    "INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, strftime('%s','now'))",
                    params![u.id.to_string(), u.username, u.username.to_ascii_lowercase(), u.password_hash],
                )
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::UsernameTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        self.db
            .write(move |c| c.execute("DELETE FROM users WHERE id = ?1", [id.to_string()]))
            .await?;
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let key = username.to_ascii_lowercase();
        Ok(self
            .db
            .read(move |c| {
                c.query_row(
                    "SELECT id, username, password_hash FROM users WHERE username_key = ?1",
                    [key],
                    user_from_row,
                )
                .optional()
            })
            .await?)
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .db
            .read(move |c| {
                c.query_row(
                    "SELECT id, username, password_hash FROM users WHERE id = ?1",
                    [id.to_string()],
                    user_from_row,
                )
                .optional()
            })
            .await?)
    }

    async fn insert_refresh(&self, hash: &str, rec: &RefreshRecord) -> Result<(), StoreError> {
        let (hash, r) = (hash.to_owned(), rec.clone());
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT INTO refresh_tokens (hash, family, user_id, expires_at, used, revoked) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![hash, r.family, r.user.to_string(), r.expires_at, r.used, r.revoked],
                )
            })
            .await?;
        Ok(())
    }

    async fn refresh(&self, hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        let hash = hash.to_owned();
        // Read through the writer so a just-rotated token is seen at once.
        Ok(self
            .db
            .write(move |c| {
                c.query_row(
                    "SELECT family, user_id, expires_at, used, revoked FROM refresh_tokens WHERE hash = ?1",
                    [hash],
                    |row| {
                        let user: String = row.get(1)?;
                        Ok(RefreshRecord {
                            family: row.get(0)?,
                            user: user.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e)))?,
                            expires_at: row.get(2)?,
                            used: row.get(3)?,
                            revoked: row.get(4)?,
                        })
                    },
                )
                .optional()
            })
            .await?)
    }

    async fn mark_used(&self, hash: &str) -> Result<bool, StoreError> {
        let hash = hash.to_owned();
        let n = self
            .db
            .write(move |c| {
                c.execute(
                    "UPDATE refresh_tokens SET used = 1 WHERE hash = ?1 AND used = 0",
                    [hash],
                )
            })
            .await?;
        Ok(n == 1)
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        let family = family.to_owned();
        self.db
            .write(move |c| {
                c.execute(
                    "UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1",
                    [family],
                )
            })
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }
}

/// The [`UserStore`] conformance suite: every implementation (SQLite,
/// MongoDB) must pass it, starting empty.
pub mod conformance {
    // A test suite reports failure by panicking, like any test.
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn user(name: &str) -> UserRecord {
        UserRecord {
            id: UserId::new(),
            username: name.into(),
            password_hash: "$argon2id$x".into(),
        }
    }

    /// Runs every check against `store`.
    pub async fn run(store: &dyn UserStore) {
        users_are_unique_case_insensitively(store).await;
        refresh_tokens_are_single_use(store).await;
        store.ping().await.unwrap();
    }

    async fn users_are_unique_case_insensitively(s: &dyn UserStore) {
        let alice = user("Alice");
        s.create_user(&alice).await.unwrap();
        assert!(matches!(
            s.create_user(&user("alice")).await,
            Err(StoreError::UsernameTaken)
        ));
        let found = s.user_by_name("ALICE").await.unwrap().unwrap();
        assert_eq!((found.id, found.username.as_str()), (alice.id, "Alice"));
        assert_eq!(
            s.user_by_id(alice.id).await.unwrap().unwrap().username,
            "Alice"
        );
        assert!(s.user_by_name("nobody").await.unwrap().is_none());
        s.delete_user(alice.id).await.unwrap();
        assert!(s.user_by_id(alice.id).await.unwrap().is_none());
    }

    async fn refresh_tokens_are_single_use(s: &dyn UserStore) {
        let owner = UserId::new();
        let rec = |family: &str| RefreshRecord {
            family: family.into(),
            user: owner,
            expires_at: 4_000_000_000,
            used: false,
            revoked: false,
        };
        s.insert_refresh("h1", &rec("f1")).await.unwrap();
        s.insert_refresh("h2", &rec("f1")).await.unwrap();
        s.insert_refresh("h3", &rec("f2")).await.unwrap();
        assert!(s.mark_used("h1").await.unwrap());
        assert!(!s.mark_used("h1").await.unwrap(), "a token is spent once");
        assert!(s.refresh("h1").await.unwrap().unwrap().used);
        s.revoke_family("f1").await.unwrap();
        assert!(s.refresh("h2").await.unwrap().unwrap().revoked);
        assert!(
            !s.refresh("h3").await.unwrap().unwrap().revoked,
            "other families untouched"
        );
        assert!(s.refresh("nope").await.unwrap().is_none());
    }
}
