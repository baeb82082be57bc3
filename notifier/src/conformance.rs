//! The [`SubscriptionStore`] conformance suite: behaviour every
//! implementation (embedded SQLite, MongoDB) must show. Each
//! implementation's tests call [`run`] with a fresh, empty store.

// A test suite reports failure by panicking, like any test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use shared_models::{Room, RoomId, RoomKind, UserId, UserRef};

use crate::store::{StoreError, SubscriptionId, SubscriptionStore};

const KEY: &str =
    "BLMbF9ffKBiWQLCKvTHb6LO8Nb6dcUh6TItC455vu2kElga6PQvUmaFyCdykxY2nOSSL3yKgfbmFLRTUaGv4yV8";

/// Runs every check; panics on the first failure.
pub async fn run(store: Arc<dyn SubscriptionStore>) {
    subscriptions(store.as_ref()).await;
    mutes_and_rooms(store.as_ref()).await;
    store.ping().await.unwrap();
}

async fn subscriptions(s: &dyn SubscriptionStore) {
    let (a, b) = (UserId::new(), UserId::new());
    let first = s
        .upsert(a, "https://p.example/1", KEY, "a1", 2)
        .await
        .unwrap();
    assert!(first.created);
    // The same endpoint again updates in place.
    let again = s
        .upsert(a, "https://p.example/1", KEY, "a2", 2)
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert!(!again.created);
    let list = s.list(a).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].auth, "a2");
    assert_eq!(list[0].user, a);
    let second = s
        .upsert(a, "https://p.example/2", KEY, "a3", 2)
        .await
        .unwrap();
    // The limit counts new endpoints only.
    assert!(matches!(
        s.upsert(a, "https://p.example/3", KEY, "a4", 2).await,
        Err(StoreError::LimitReached(2))
    ));
    assert!(
        s.upsert(a, "https://p.example/2", KEY, "a5", 2)
            .await
            .is_ok()
    );
    assert_eq!(
        s.list(a)
            .await
            .unwrap()
            .iter()
            .map(|x| x.id)
            .collect::<Vec<_>>(),
        vec![first.id, second.id]
    );
    // Another user cannot delete it; its owner can.
    assert!(!s.delete(b, first.id).await.unwrap());
    assert!(
        !s.delete(a, SubscriptionId(uuid::Uuid::now_v7()))
            .await
            .unwrap()
    );
    // An endpoint re-registered by another user moves to them.
    let moved = s
        .upsert(b, "https://p.example/2", KEY, "b1", 2)
        .await
        .unwrap();
    assert_eq!(moved.id, second.id);
    assert_eq!(s.list(b).await.unwrap().len(), 1);
    assert_eq!(s.list(a).await.unwrap().len(), 1);
    let both = s.for_users(&[a, b]).await.unwrap();
    assert_eq!(both.len(), 2);
    assert!(s.for_users(&[]).await.unwrap().is_empty());
    assert!(s.delete(a, first.id).await.unwrap());
    assert!(s.list(a).await.unwrap().is_empty());
    assert!(s.delete_expired(second.id).await.unwrap());
    assert!(!s.delete_expired(second.id).await.unwrap());
    assert!(s.for_users(&[a, b]).await.unwrap().is_empty());
}

async fn mutes_and_rooms(s: &dyn SubscriptionStore) {
    let (a, b) = (UserId::new(), UserId::new());
    let room = RoomId::new();
    assert!(s.room(room).await.unwrap().is_none());
    let users = vec![
        UserRef {
            id: a,
            username: "alice".into(),
        },
        UserRef {
            id: b,
            username: "bob".into(),
        },
    ];
    let mut r = Room {
        id: room,
        name: Some("team".into()),
        kind: RoomKind::Group,
        owner: Some(a),
        members: vec![a, b],
        users: users.clone(),
    };
    s.put_room(&r).await.unwrap();
    let info = s.room(room).await.unwrap().unwrap();
    assert_eq!(info.name.as_deref(), Some("team"));
    assert_eq!(info.kind, RoomKind::Group);
    let mut names: Vec<_> = info.members.iter().map(|u| u.username.clone()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"]);
    // A later event replaces the member list.
    r.members = vec![a];
    r.users = users[..1].to_vec();
    r.name = Some("renamed".into());
    s.put_room(&r).await.unwrap();
    let info = s.room(room).await.unwrap().unwrap();
    assert_eq!(info.members.len(), 1);
    assert_eq!(info.members[0].id, a);
    assert_eq!(info.name.as_deref(), Some("renamed"));

    s.set_muted(a, room, true).await.unwrap();
    s.set_muted(a, room, true).await.unwrap();
    assert_eq!(s.muted_rooms(a).await.unwrap(), vec![room]);
    assert!(s.muted_users(room).await.unwrap().contains(&a));
    assert!(!s.muted_users(room).await.unwrap().contains(&b));
    s.set_muted(a, room, false).await.unwrap();
    assert!(s.muted_rooms(a).await.unwrap().is_empty());
    assert!(s.muted_users(room).await.unwrap().is_empty());
}
