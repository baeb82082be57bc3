//! auth's store on MongoDB (production).
//!
//! - `users` `{_id, username, username_key, password_hash, created_at}`,
//!   unique on `username_key` (the lower-cased name);
//! - `refresh_tokens` `{_id: hash, family, user, expires_at, used,
//!   revoked}`, indexed by `family`, with a TTL index on `expires_at_date`
//!   so that expired tokens are swept by the server.
//!
//! `mark_used` is a single conditional update (`used: false` → `true`),
//! so two concurrent exchanges of one token cannot both win.

use async_trait::async_trait;
use mongodb::bson::{DateTime, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use shared_models::UserId;

use crate::store::{RefreshRecord, StoreError, UserRecord, UserStore};

#[derive(Debug, Serialize, Deserialize)]
struct UserDoc {
    #[serde(rename = "_id")]
    id: String,
    username: String,
    username_key: String,
    password_hash: String,
    created_at: DateTime,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefreshDoc {
    #[serde(rename = "_id")]
    hash: String,
    family: String,
    user: String,
    expires_at: i64,
    expires_at_date: DateTime,
    #[serde(deserialize_with = "service_kit::mongo::lenient_bool")]
    used: bool,
    #[serde(deserialize_with = "service_kit::mongo::lenient_bool")]
    revoked: bool,
}

impl From<mongodb::error::Error> for StoreError {
    fn from(e: mongodb::error::Error) -> Self {
        StoreError::Mongo(e.to_string())
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Mongo(format!("corrupt document: {e}"))
}

impl TryFrom<UserDoc> for UserRecord {
    type Error = StoreError;
    fn try_from(d: UserDoc) -> Result<Self, StoreError> {
        Ok(UserRecord {
            id: d.id.parse().map_err(corrupt)?,
            username: d.username,
            password_hash: d.password_hash,
        })
    }
}

/// The MongoDB user store.
#[derive(Clone)]
pub struct MongoUserStore {
    db: Database,
    users: Collection<UserDoc>,
    tokens: Collection<RefreshDoc>,
}

impl MongoUserStore {
    /// Opens the collections and creates the indexes (idempotent).
    pub async fn open(db: Database) -> Result<Self, StoreError> {
        let store = Self {
            users: db.collection("users"),
            tokens: db.collection("refresh_tokens"),
            db,
        };
        store
            .users
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "username_key": 1 })
                    .options(
                        IndexOptions::builder()
                            .unique(true)
                            .name("username_key".to_owned())
                            .build(),
                    )
                    .build(),
            )
            .await?;
        store
            .tokens
            .create_indexes([
                IndexModel::builder()
                    .keys(doc! { "family": 1 })
                    .options(IndexOptions::builder().name("family".to_owned()).build())
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "expires_at_date": 1 })
                    .options(
                        IndexOptions::builder()
                            .name("expiry".to_owned())
                            .expire_after(std::time::Duration::ZERO)
                            .build(),
                    )
                    .build(),
            ])
            .await?;
        Ok(store)
    }
}

#[async_trait]
impl UserStore for MongoUserStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let res = self
            .users
            .insert_one(UserDoc {
                id: user.id.to_string(),
                username: user.username.clone(),
                username_key: user.username.to_ascii_lowercase(),
                password_hash: user.password_hash.clone(),
                created_at: DateTime::now(),
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if service_kit::mongo::is_duplicate_key(&e) => Err(StoreError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        self.users
            .delete_one(doc! { "_id": id.to_string() })
            .await?;
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .find_one(doc! { "username_key": username.to_ascii_lowercase() })
            .await?
            .map(UserRecord::try_from)
            .transpose()
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .find_one(doc! { "_id": id.to_string() })
            .await?
            .map(UserRecord::try_from)
            .transpose()
    }

    async fn insert_refresh(&self, hash: &str, rec: &RefreshRecord) -> Result<(), StoreError> {
        self.tokens
            .insert_one(RefreshDoc {
                hash: hash.to_owned(),
                family: rec.family.clone(),
                user: rec.user.to_string(),
                expires_at: rec.expires_at,
                expires_at_date: DateTime::from_millis(rec.expires_at.saturating_mul(1000)),
                used: rec.used,
                revoked: rec.revoked,
            })
            .await?;
        Ok(())
    }

    async fn refresh(&self, hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        let Some(d) = self.tokens.find_one(doc! { "_id": hash }).await? else {
            return Ok(None);
        };
        Ok(Some(RefreshRecord {
            family: d.family,
            user: d.user.parse().map_err(corrupt)?,
            expires_at: d.expires_at,
            used: d.used,
            revoked: d.revoked,
        }))
    }

    async fn mark_used(&self, hash: &str) -> Result<bool, StoreError> {
        let res = self
            .tokens
            .update_one(
                doc! { "_id": hash, "used": false },
                doc! { "$set": { "used": true } },
            )
            .await?;
        Ok(res.modified_count == 1)
    }

    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        self.tokens
            .update_many(
                doc! { "family": family },
                doc! { "$set": { "revoked": true } },
            )
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }
}
