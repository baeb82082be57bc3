//! The notifier's store on MongoDB (production).
//!
//! Collections (ids are UUID strings):
//! - `push_subscriptions` `{_id, user, endpoint, p256dh, auth, created_ms}`,
//!   unique on `endpoint` (the same browser subscription is one row),
//!   indexed by `user`;
//! - `push_mutes` `{_id: "room/user", room, user}`, indexed by `room`;
//! - `push_rooms` `{_id: room, name, kind, members: [{id, username}]}`: the
//!   projection of `chat.member.*`, replaced whole on every change.
//!
//! No transactions: an upsert is find-then-update or insert, and an insert
//! that loses a race on `endpoint` becomes the update. Two concurrent
//! inserts of *different* endpoints by one user at the limit may both pass
//! the count (the limit is a guard against abuse, not an invariant).

use std::collections::HashSet;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::doc;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use shared_models::{Room, RoomId, UserId, UserRef};
use uuid::Uuid;

use crate::store::{
    RoomInfo, StoreError, StoredSubscription, SubscriptionId, SubscriptionStore, Upserted,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SubDoc {
    #[serde(rename = "_id")]
    id: String,
    user: String,
    endpoint: String,
    p256dh: String,
    auth: String,
    created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MuteDoc {
    #[serde(rename = "_id")]
    id: String,
    room: String,
    user: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberDoc {
    id: String,
    username: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoomDoc {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    name: Option<String>,
    kind: String,
    #[serde(default)]
    members: Vec<MemberDoc>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| backend(format!("bad id {s:?} in store: {e}")))
}

impl SubDoc {
    fn into_sub(self) -> Result<StoredSubscription, StoreError> {
        Ok(StoredSubscription {
            id: SubscriptionId(uuid(&self.id)?),
            user: UserId(uuid(&self.user)?),
            endpoint: self.endpoint,
            p256dh: self.p256dh,
            auth: self.auth,
            created_ms: self.created_ms,
        })
    }
}

/// The MongoDB store.
#[derive(Debug, Clone)]
pub struct MongoSubscriptionStore {
    db: Database,
    subs: Collection<SubDoc>,
    mutes: Collection<MuteDoc>,
    rooms: Collection<RoomDoc>,
}

impl MongoSubscriptionStore {
    /// Uses `db`, creating the indexes.
    pub async fn open(db: Database) -> Result<Self, StoreError> {
        let subs = db.collection::<SubDoc>("push_subscriptions");
        let mutes = db.collection::<MuteDoc>("push_mutes");
        let rooms = db.collection::<RoomDoc>("push_rooms");
        subs.create_index(
            IndexModel::builder()
                .keys(doc! { "endpoint": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .map_err(backend)?;
        subs.create_index(
            IndexModel::builder()
                .keys(doc! { "user": 1, "created_ms": 1 })
                .build(),
        )
        .await
        .map_err(backend)?;
        mutes
            .create_index(IndexModel::builder().keys(doc! { "room": 1 }).build())
            .await
            .map_err(backend)?;
        mutes
            .create_index(IndexModel::builder().keys(doc! { "user": 1 }).build())
            .await
            .map_err(backend)?;
        Ok(Self {
            db,
            subs,
            mutes,
            rooms,
        })
    }

    async fn update_existing(
        &self,
        user: UserId,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<Option<SubscriptionId>, StoreError> {
        let found = self
            .subs
            .find_one_and_update(
                doc! { "endpoint": endpoint },
                doc! { "$set": { "user": user.to_string(), "p256dh": p256dh, "auth": auth } },
            )
            .await
            .map_err(backend)?;
        found.map(|d| Ok(SubscriptionId(uuid(&d.id)?))).transpose()
    }

    async fn collect_subs(
        &self,
        filter: mongodb::bson::Document,
    ) -> Result<Vec<StoredSubscription>, StoreError> {
        let docs: Vec<SubDoc> = self
            .subs
            .find(filter)
            .sort(doc! { "created_ms": 1, "_id": 1 })
            .await
            .map_err(backend)?
            .try_collect()
            .await
            .map_err(backend)?;
        docs.into_iter().map(SubDoc::into_sub).collect()
    }
}

#[async_trait]
impl SubscriptionStore for MongoSubscriptionStore {
    async fn upsert(
        &self,
        user: UserId,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        limit: usize,
    ) -> Result<Upserted, StoreError> {
        if let Some(id) = self.update_existing(user, endpoint, p256dh, auth).await? {
            return Ok(Upserted { id, created: false });
        }
        let count = self
            .subs
            .count_documents(doc! { "user": user.to_string() })
            .await
            .map_err(backend)?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= limit {
            return Err(StoreError::LimitReached(limit));
        }
        let id = Uuid::now_v7();
        let doc = SubDoc {
            id: id.to_string(),
            user: user.to_string(),
            endpoint: endpoint.to_owned(),
            p256dh: p256dh.to_owned(),
            auth: auth.to_owned(),
            created_ms: shared_models::Timestamp::now().millis(),
        };
        match self.subs.insert_one(doc).await {
            Ok(_) => Ok(Upserted {
                id: SubscriptionId(id),
                created: true,
            }),
            // Lost a race with the same endpoint: that row is the one to update.
            Err(e) if service_kit::mongo::is_duplicate_key(&e) => {
                match self.update_existing(user, endpoint, p256dh, auth).await? {
                    Some(id) => Ok(Upserted { id, created: false }),
                    None => Err(backend(e)),
                }
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn list(&self, user: UserId) -> Result<Vec<StoredSubscription>, StoreError> {
        self.collect_subs(doc! { "user": user.to_string() }).await
    }

    async fn delete(&self, user: UserId, id: SubscriptionId) -> Result<bool, StoreError> {
        let r = self
            .subs
            .delete_one(doc! { "_id": id.to_string(), "user": user.to_string() })
            .await
            .map_err(backend)?;
        Ok(r.deleted_count > 0)
    }

    async fn delete_expired(&self, id: SubscriptionId) -> Result<bool, StoreError> {
        let r = self
            .subs
            .delete_one(doc! { "_id": id.to_string() })
            .await
            .map_err(backend)?;
        Ok(r.deleted_count > 0)
    }

    async fn for_users(&self, users: &[UserId]) -> Result<Vec<StoredSubscription>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = users.iter().map(ToString::to_string).collect();
        self.collect_subs(doc! { "user": { "$in": ids } }).await
    }

    async fn set_muted(&self, user: UserId, room: RoomId, muted: bool) -> Result<(), StoreError> {
        let id = format!("{room}/{user}");
        if muted {
            self.mutes
                .replace_one(
                    doc! { "_id": &id },
                    MuteDoc {
                        id: id.clone(),
                        room: room.to_string(),
                        user: user.to_string(),
                    },
                )
                .upsert(true)
                .await
                .map_err(backend)?;
        } else {
            self.mutes
                .delete_one(doc! { "_id": &id })
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn muted_rooms(&self, user: UserId) -> Result<Vec<RoomId>, StoreError> {
        let docs: Vec<MuteDoc> = self
            .mutes
            .find(doc! { "user": user.to_string() })
            .sort(doc! { "room": 1 })
            .await
            .map_err(backend)?
            .try_collect()
            .await
            .map_err(backend)?;
        docs.iter().map(|d| Ok(RoomId(uuid(&d.room)?))).collect()
    }

    async fn muted_users(&self, room: RoomId) -> Result<HashSet<UserId>, StoreError> {
        let docs: Vec<MuteDoc> = self
            .mutes
            .find(doc! { "room": room.to_string() })
            .await
            .map_err(backend)?
            .try_collect()
            .await
            .map_err(backend)?;
        docs.iter().map(|d| Ok(UserId(uuid(&d.user)?))).collect()
    }

    async fn put_room(&self, room: &Room) -> Result<(), StoreError> {
        let mut members: Vec<MemberDoc> = room
            .users
            .iter()
            .map(|u| MemberDoc {
                id: u.id.to_string(),
                username: u.username.clone(),
            })
            .collect();
        // A member the event names without a username still counts.
        for m in &room.members {
            if !room.users.iter().any(|u| u.id == *m) {
                members.push(MemberDoc {
                    id: m.to_string(),
                    username: String::new(),
                });
            }
        }
        let doc = RoomDoc {
            id: room.id.to_string(),
            name: room.name.clone(),
            kind: room.kind.as_str().to_owned(),
            members,
        };
        self.rooms
            .replace_one(doc! { "_id": room.id.to_string() }, doc)
            .upsert(true)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn room(&self, room: RoomId) -> Result<Option<RoomInfo>, StoreError> {
        let Some(d) = self
            .rooms
            .find_one(doc! { "_id": room.to_string() })
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let mut members = d
            .members
            .iter()
            .map(|m| {
                Ok(UserRef {
                    id: UserId(uuid(&m.id)?),
                    username: m.username.clone(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        members.sort_by_key(|m| m.id);
        Ok(Some(RoomInfo {
            id: room,
            name: d.name,
            kind: crate::store::kind_of(&d.kind),
            members,
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(backend)
    }
}
