//! The chat store on MongoDB (production).
//!
//! Collections (ids are UUID strings):
//! - `users` `{_id, username}`;
//! - `rooms` `{_id, kind, name, owner, direct_key, last_seq, created_at}`,
//!   unique sparse index on `direct_key` (one direct room per pair);
//! - `members` `{_id: "room/user", room, user, read_seq, joined_at}`,
//!   indexed by `user` and by `(room, joined_at)`;
//! - `messages` `{_id: message id, room, seq, sender, body, ts, client_id,
//!   attachments}`, unique on `(room, seq)` and on `(room, sender,
//!   client_id)`: a redelivered batch changes nothing, and a second
//!   message claiming a taken seq is refused, not stored.
//!
//! Batches are written with an unordered `insert_many`, so one duplicate
//! does not stop the rest; room positions and read positions only move
//! forward (`$max`), so replays are harmless. No transactions are needed.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::options::{IndexOptions, UpdateOptions};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use shared_models::{
    Attachment, ClientId, Message, ReceiptRead, Room, RoomId, RoomKind, RoomMember, Timestamp,
    UserId, UserRef,
};

use crate::store::{BatchOutcome, ChatStore, Membership, StoreError, to_i64, to_u64};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserDoc {
    #[serde(rename = "_id")]
    id: String,
    username: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoomDoc {
    #[serde(rename = "_id")]
    id: String,
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direct_key: Option<String>,
    #[serde(default)]
    last_seq: i64,
    created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberDoc {
    #[serde(rename = "_id")]
    id: String,
    room: String,
    user: String,
    #[serde(default)]
    read_seq: i64,
    joined_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MessageDoc {
    #[serde(rename = "_id")]
    id: String,
    room: String,
    seq: i64,
    sender: String,
    body: String,
    ts: i64,
    client_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Mongo(format!("corrupt {what}: {e}"))
}

impl From<mongodb::error::Error> for StoreError {
    fn from(e: mongodb::error::Error) -> Self {
        StoreError::Mongo(e.to_string())
    }
}

impl From<&Message> for MessageDoc {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.to_string(),
            room: m.room.to_string(),
            seq: to_i64(m.seq),
            sender: m.sender.to_string(),
            body: m.body.clone(),
            ts: m.ts.millis(),
            client_id: m.client_id.to_string(),
            attachments: m.attachments.clone(),
        }
    }
}

impl TryFrom<MessageDoc> for Message {
    type Error = StoreError;
    fn try_from(d: MessageDoc) -> Result<Self, StoreError> {
        Ok(Message {
            id: d.id.parse().map_err(|e| corrupt("message id", e))?,
            room: d.room.parse().map_err(|e| corrupt("message room", e))?,
            seq: to_u64(d.seq),
            sender: d.sender.parse().map_err(|e| corrupt("message sender", e))?,
            body: d.body,
            ts: Timestamp::from_millis(d.ts),
            client_id: d.client_id.parse().map_err(|e| corrupt("client id", e))?,
            attachments: d.attachments,
        })
    }
}

fn member_key(room: RoomId, user: UserId) -> String {
    format!("{room}/{user}")
}

fn now_ms() -> i64 {
    Timestamp::now().millis()
}

/// The MongoDB chat store.
#[derive(Clone)]
pub struct MongoChatStore {
    db: Database,
    users: Collection<UserDoc>,
    rooms: Collection<RoomDoc>,
    members: Collection<MemberDoc>,
    messages: Collection<MessageDoc>,
}

impl MongoChatStore {
    /// Opens the collections and creates the indexes (idempotent).
    pub async fn open(db: Database) -> Result<Self, StoreError> {
        let store = Self {
            users: db.collection("users"),
            rooms: db.collection("rooms"),
            members: db.collection("members"),
            messages: db.collection("messages"),
            db,
        };
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name(name.to_owned())
                        .build(),
                )
                .build()
        };
        let plain = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        store
            .messages
            .create_indexes([
                unique(doc! { "room": 1, "seq": 1 }, "room_seq"),
                unique(
                    doc! { "room": 1, "sender": 1, "client_id": 1 },
                    "room_sender_client",
                ),
            ])
            .await?;
        store
            .members
            .create_indexes([
                plain(doc! { "user": 1 }, "user"),
                plain(doc! { "room": 1, "joined_at": 1 }, "room_joined"),
            ])
            .await?;
        store
            .rooms
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "direct_key": 1 })
                    .options(
                        IndexOptions::builder()
                            .unique(true)
                            .sparse(true)
                            .name("direct_key".to_owned())
                            .build(),
                    )
                    .build(),
            )
            .await?;
        Ok(store)
    }

    async fn load_room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        let Some(doc) = self.rooms.find_one(doc! { "_id": id.to_string() }).await? else {
            return Ok(None);
        };
        let members: Vec<MemberDoc> = self
            .members
            .find(doc! { "room": id.to_string() })
            .await?
            .try_collect()
            .await?;
        let ids: Vec<String> = members.iter().map(|m| m.user.clone()).collect();
        let names: HashMap<String, String> = self
            .users
            .find(doc! { "_id": { "$in": &ids } })
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        let mut users = members
            .iter()
            .map(|m| {
                Ok(UserRef {
                    id: m.user.parse().map_err(|e| corrupt("member", e))?,
                    username: names.get(&m.user).cloned().unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(Some(Room {
            id,
            name: doc.name,
            kind: if doc.kind == "direct" {
                RoomKind::Direct
            } else {
                RoomKind::Group
            },
            owner: doc
                .owner
                .map(|o| o.parse().map_err(|e| corrupt("owner", e)))
                .transpose()?,
            members: users.iter().map(|u| u.id).collect(),
            users,
        }))
    }

    async fn must_room(&self, id: RoomId) -> Result<Room, StoreError> {
        self.load_room(id)
            .await?
            .ok_or_else(|| StoreError::Mongo(format!("room {id} vanished")))
    }

    async fn add_members(&self, room: RoomId, users: &[UserId]) -> Result<(), StoreError> {
        let base = now_ms();
        for (i, u) in users.iter().enumerate() {
            // Upsert: adding a present member changes nothing.
            self.members
                .update_one(
                    doc! { "_id": member_key(room, *u) },
                    doc! { "$setOnInsert": {
                        "room": room.to_string(),
                        "user": u.to_string(),
                        "read_seq": 0_i64,
                        "joined_at": base + i64::try_from(i).unwrap_or(0),
                    } },
                )
                .with_options(UpdateOptions::builder().upsert(true).build())
                .await?;
        }
        Ok(())
    }

    async fn page(
        &self,
        filter: Document,
        ascending: bool,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.messages
            .find(filter)
            .sort(doc! { "seq": if ascending { 1 } else { -1 } })
            .limit(i64::from(limit))
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(Message::try_from)
            .collect()
    }

    /// Splits refused inserts into redeliveries (the same id already holds
    /// the seq) and conflicts (another message does).
    async fn classify(
        &self,
        refused: Vec<&Message>,
        out: &mut BatchOutcome,
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = refused.iter().map(|m| m.id.to_string()).collect();
        let stored: HashSet<String> = self
            .messages
            .find(doc! { "_id": { "$in": &ids } })
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        for m in refused {
            if stored.contains(&m.id.to_string()) {
                out.duplicates += 1;
            } else {
                out.conflicts.push(m.id);
            }
        }
        Ok(())
    }
}

/// The indexes of the documents an unordered `insert_many` refused as
/// duplicates; any other failure is an error.
fn duplicate_indexes(err: &mongodb::error::Error) -> Option<Vec<usize>> {
    use mongodb::error::ErrorKind;
    if let ErrorKind::InsertMany(e) = err.kind.as_ref() {
        if e.write_concern_error.is_some() {
            return None;
        }
        let errs = e.write_errors.as_ref()?;
        if errs.iter().all(|w| w.code == 11000) {
            return Some(errs.iter().map(|w| w.index).collect());
        }
    }
    None
}

#[async_trait]
impl ChatStore for MongoChatStore {
    async fn write_batch(
        &self,
        users: Vec<UserRef>,
        messages: Vec<Message>,
        receipts: Vec<ReceiptRead>,
    ) -> Result<BatchOutcome, StoreError> {
        for u in &users {
            self.users
                .update_one(
                    doc! { "_id": u.id.to_string() },
                    doc! { "$set": { "username": &u.username } },
                )
                .with_options(UpdateOptions::builder().upsert(true).build())
                .await?;
        }
        let mut out = BatchOutcome::default();
        if !messages.is_empty() {
            let docs: Vec<MessageDoc> = messages.iter().map(MessageDoc::from).collect();
            let refused: Vec<usize> = match self.messages.insert_many(docs).ordered(false).await {
                Ok(_) => Vec::new(),
                Err(e) => duplicate_indexes(&e).ok_or(e)?,
            };
            out.inserted = messages.len() - refused.len();
            let refused_set: HashSet<usize> = refused.iter().copied().collect();
            self.classify(refused.iter().map(|i| &messages[*i]).collect(), &mut out)
                .await?;
            // Rooms move forward to the highest seq now stored (including
            // redeliveries, whose first attempt may have died before this).
            let mut top: HashMap<RoomId, u64> = HashMap::new();
            for (i, m) in messages.iter().enumerate() {
                if refused_set.contains(&i) && out.conflicts.contains(&m.id) {
                    continue;
                }
                let e = top.entry(m.room).or_default();
                *e = (*e).max(m.seq);
            }
            for (room, seq) in top {
                self.rooms
                    .update_one(
                        doc! { "_id": room.to_string() },
                        doc! { "$max": { "last_seq": to_i64(seq) } },
                    )
                    .await?;
            }
        }
        for r in &receipts {
            self.members
                .update_one(
                    doc! { "_id": member_key(r.room, r.user) },
                    doc! { "$max": { "read_seq": to_i64(r.seq) } },
                )
                .await?;
        }
        Ok(out)
    }

    async fn unknown_users(&self, ids: Vec<UserId>) -> Result<Vec<UserId>, StoreError> {
        let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let known: HashSet<String> = self
            .users
            .find(doc! { "_id": { "$in": &keys } })
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(|u| u.id)
            .collect();
        Ok(ids
            .into_iter()
            .filter(|id| !known.contains(&id.to_string()))
            .collect())
    }

    async fn create_group(
        &self,
        name: String,
        owner: UserId,
        members: Vec<UserId>,
    ) -> Result<Room, StoreError> {
        let id = RoomId::new();
        self.rooms
            .insert_one(RoomDoc {
                id: id.to_string(),
                kind: "group".into(),
                name: Some(name),
                owner: Some(owner.to_string()),
                direct_key: None,
                last_seq: 0,
                created_at: now_ms(),
            })
            .await?;
        let mut all = vec![owner];
        all.extend(members.into_iter().filter(|m| *m != owner));
        self.add_members(id, &all).await?;
        self.must_room(id).await
    }

    async fn direct_room(&self, a: UserId, b: UserId) -> Result<(Room, bool), StoreError> {
        let (lo, hi) = if a.to_string() <= b.to_string() {
            (a, b)
        } else {
            (b, a)
        };
        let key = format!("{lo}:{hi}");
        let id = RoomId::new();
        let created = match self
            .rooms
            .insert_one(RoomDoc {
                id: id.to_string(),
                kind: "direct".into(),
                name: None,
                owner: None,
                direct_key: Some(key.clone()),
                last_seq: 0,
                created_at: now_ms(),
            })
            .await
        {
            Ok(_) => true,
            Err(e) if service_kit::mongo::is_duplicate_key(&e) => false,
            Err(e) => return Err(e.into()),
        };
        let doc = self
            .rooms
            .find_one(doc! { "direct_key": &key })
            .await?
            .ok_or_else(|| StoreError::Mongo("direct room vanished".into()))?;
        let room: RoomId = doc.id.parse().map_err(|e| corrupt("room id", e))?;
        // Members are (re)asserted either way: a racing creator may have died
        // between the two writes.
        self.add_members(room, &[lo, hi]).await?;
        Ok((self.must_room(room).await?, created))
    }

    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        self.load_room(id).await
    }

    async fn add_member(&self, room: RoomId, user: UserId) -> Result<Room, StoreError> {
        self.add_members(room, &[user]).await?;
        self.must_room(room).await
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<Room, StoreError> {
        self.members
            .delete_one(doc! { "_id": member_key(room, user) })
            .await?;
        let is_owner = self
            .rooms
            .find_one(doc! { "_id": room.to_string(), "owner": user.to_string() })
            .await?
            .is_some();
        if is_owner {
            let heir = self
                .members
                .find_one(doc! { "room": room.to_string() })
                .sort(doc! { "joined_at": 1 })
                .await?
                .map(|m| m.user);
            self.rooms
                .update_one(
                    doc! { "_id": room.to_string() },
                    doc! { "$set": { "owner": heir } },
                )
                .await?;
        }
        self.must_room(room).await
    }

    async fn rooms_for(&self, user: UserId) -> Result<Vec<RoomMember>, StoreError> {
        let mine: Vec<MemberDoc> = self
            .members
            .find(doc! { "user": user.to_string() })
            .await?
            .try_collect()
            .await?;
        let mut out = Vec::with_capacity(mine.len());
        for m in mine {
            let id: RoomId = m.room.parse().map_err(|e| corrupt("member room", e))?;
            let Some(doc) = self.rooms.find_one(doc! { "_id": &m.room }).await? else {
                continue;
            };
            let Some(room) = self.load_room(id).await? else {
                continue;
            };
            let unread = self
                .messages
                .count_documents(doc! {
                    "room": &m.room,
                    "seq": { "$gt": m.read_seq },
                    "sender": { "$ne": user.to_string() },
                })
                .await?;
            let member = RoomMember {
                room,
                last_seq: to_u64(doc.last_seq),
                read_seq: to_u64(m.read_seq),
                unread,
            };
            out.push((member, doc.created_at));
        }
        // Busiest first, then newest: the embedded store's order.
        out.sort_by(|(a, ac), (b, bc)| b.last_seq.cmp(&a.last_seq).then(bc.cmp(ac)));
        Ok(out.into_iter().map(|(m, _)| m).collect())
    }

    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let Some(m) = self
            .members
            .find_one(doc! { "_id": member_key(room, user) })
            .await?
        else {
            return Ok(None);
        };
        let Some(r) = self
            .rooms
            .find_one(doc! { "_id": room.to_string() })
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Membership {
            last_seq: to_u64(r.last_seq),
            read_seq: to_u64(m.read_seq),
        }))
    }

    async fn contacts(&self, user: UserId) -> Result<Vec<UserId>, StoreError> {
        let rooms: Vec<String> = self
            .members
            .find(doc! { "user": user.to_string() })
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(|m| m.room)
            .collect();
        let mut others: Vec<String> = self
            .members
            .find(doc! { "room": { "$in": rooms }, "user": { "$ne": user.to_string() } })
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(|m| m.user)
            .collect();
        others.sort();
        others.dedup();
        others
            .into_iter()
            .map(|u| u.parse().map_err(|e| corrupt("member", e)))
            .collect()
    }

    async fn history(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let before = before.map_or(i64::MAX, to_i64);
        self.page(
            doc! { "room": room.to_string(), "seq": { "$lt": before } },
            false,
            limit,
        )
        .await
    }

    async fn after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.page(
            doc! { "room": room.to_string(), "seq": { "$gt": to_i64(after) } },
            true,
            limit,
        )
        .await
    }

    async fn by_client_id(
        &self,
        room: RoomId,
        sender: UserId,
        client_id: ClientId,
    ) -> Result<Option<Message>, StoreError> {
        self.messages
            .find_one(doc! {
                "room": room.to_string(),
                "sender": sender.to_string(),
                "client_id": client_id.to_string(),
            })
            .await?
            .map(Message::try_from)
            .transpose()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }
}
