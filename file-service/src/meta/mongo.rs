//! File metadata and the membership projection on MongoDB (production).
//!
//! Collections (ids are UUID strings):
//! - `files` `{_id: file id, room, uploader, name, size, content_type,
//!   sha256, created_at}`, indexed by `room`;
//! - `file_members` `{_id: "room/user", room, user}`: one document per
//!   membership, so adding twice or removing twice changes nothing.
//!
//! The collection names are the service's own (`files`, `file_members`),
//! apart from db-writer's `members`, even when both share a database.

use async_trait::async_trait;
use mongodb::bson::doc;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use shared_models::{FileId, RoomId, Timestamp, UserId};

use super::{FileMeta, FileMetaStore, MetaError};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileDoc {
    #[serde(rename = "_id")]
    id: String,
    room: String,
    uploader: String,
    name: String,
    size: i64,
    content_type: String,
    sha256: String,
    created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberDoc {
    #[serde(rename = "_id")]
    id: String,
    room: String,
    user: String,
}

/// The production metadata store.
#[derive(Debug, Clone)]
pub struct MongoMetaStore {
    db: Database,
    files: Collection<FileDoc>,
    members: Collection<MemberDoc>,
}

fn err(e: impl std::fmt::Display) -> MetaError {
    MetaError(e.to_string())
}

fn member_key(room: RoomId, user: UserId) -> String {
    format!("{room}/{user}")
}

impl MongoMetaStore {
    /// Uses `db`, creating the indexes if missing.
    pub async fn open(db: Database) -> Result<Self, MetaError> {
        let files = db.collection::<FileDoc>("files");
        let members = db.collection::<MemberDoc>("file_members");
        files
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "room": 1 })
                    .options(
                        IndexOptions::builder()
                            .name("files_room".to_owned())
                            .build(),
                    )
                    .build(),
            )
            .await
            .map_err(err)?;
        Ok(Self { db, files, members })
    }
}

impl TryFrom<FileDoc> for FileMeta {
    type Error = MetaError;
    fn try_from(d: FileDoc) -> Result<Self, MetaError> {
        let corrupt = |what: &str| MetaError(format!("corrupt file document {}: {what}", d.id));
        Ok(FileMeta {
            id: d.id.parse().map_err(|_| corrupt("id"))?,
            room: d.room.parse().map_err(|_| corrupt("room"))?,
            uploader: d.uploader.parse().map_err(|_| corrupt("uploader"))?,
            name: d.name,
            size: u64::try_from(d.size).map_err(|_| corrupt("size"))?,
            content_type: d.content_type,
            sha256: d.sha256,
            created_at: Timestamp::from_millis(d.created_at),
        })
    }
}

#[async_trait]
impl FileMetaStore for MongoMetaStore {
    async fn insert(&self, m: &FileMeta) -> Result<(), MetaError> {
        let d = FileDoc {
            id: m.id.to_string(),
            room: m.room.to_string(),
            uploader: m.uploader.to_string(),
            name: m.name.clone(),
            size: i64::try_from(m.size).map_err(err)?,
            content_type: m.content_type.clone(),
            sha256: m.sha256.clone(),
            created_at: m.created_at.millis(),
        };
        self.files.insert_one(d).await.map(|_| ()).map_err(err)
    }

    async fn get(&self, id: FileId) -> Result<Option<FileMeta>, MetaError> {
        match self
            .files
            .find_one(doc! { "_id": id.to_string() })
            .await
            .map_err(err)?
        {
            Some(d) => Ok(Some(d.try_into()?)),
            None => Ok(None),
        }
    }

    async fn delete(&self, id: FileId) -> Result<bool, MetaError> {
        let res = self
            .files
            .delete_one(doc! { "_id": id.to_string() })
            .await
            .map_err(err)?;
        Ok(res.deleted_count > 0)
    }

    async fn add_member(&self, room: RoomId, user: UserId) -> Result<(), MetaError> {
        let d = MemberDoc {
            id: member_key(room, user),
            room: room.to_string(),
            user: user.to_string(),
        };
        self.members
            .replace_one(doc! { "_id": &d.id }, &d)
            .upsert(true)
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), MetaError> {
        self.members
            .delete_one(doc! { "_id": member_key(room, user) })
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool, MetaError> {
        Ok(self
            .members
            .find_one(doc! { "_id": member_key(room, user) })
            .await
            .map_err(err)?
            .is_some())
    }

    async fn health(&self) -> Result<(), MetaError> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(err)
    }
}
