//! The [`ChatStore`] conformance suite: behaviour every implementation
//! (embedded SQLite, MongoDB) must show. Each implementation's tests call
//! [`run`] with a fresh, empty store.

// A test suite reports failure by panicking, like any test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use shared_models::{
    ClientId, Message, MessageId, ReceiptRead, RoomId, RoomKind, Timestamp, UserId, UserRef,
};

use crate::store::ChatStore;

fn user(name: &str) -> UserRef {
    UserRef {
        id: UserId::new(),
        username: name.to_owned(),
    }
}

/// A message for tests: body `message {seq}`, fresh ids, now.
pub fn sample_message(room: RoomId, seq: u64, sender: UserId) -> Message {
    Message {
        id: MessageId::new(),
        room,
        seq,
        sender,
        body: format!("message {seq}"),
        ts: Timestamp::now(),
        client_id: ClientId::new(),
        attachments: vec![],
    }
}

/// Runs every check; panics on the first failure.
pub async fn run(store: Arc<dyn ChatStore>) {
    rooms_and_members(store.as_ref()).await;
    direct_rooms_are_one_per_pair(store.as_ref()).await;
    batches_are_idempotent(store.as_ref()).await;
    history_and_after_page_correctly(store.as_ref()).await;
    receipts_only_move_forward(store.as_ref()).await;
    attachments_round_trip(store.as_ref()).await;
}

async fn attachments_round_trip(s: &dyn ChatStore) {
    let a = user("att");
    s.write_batch(vec![a.clone()], vec![], vec![])
        .await
        .unwrap();
    let room = s.create_group("files".into(), a.id, vec![]).await.unwrap();
    let mut with = sample_message(room.id, 1, a.id);
    with.attachments = vec![shared_models::Attachment {
        id: shared_models::FileId::new(),
        name: "cat é.png".into(),
        size: 5_000_000_000,
        content_type: "image/png".into(),
        sha256: "ab".repeat(32),
    }];
    let without = sample_message(room.id, 2, a.id);
    s.write_batch(vec![], vec![with.clone(), without.clone()], vec![])
        .await
        .unwrap();
    assert_eq!(
        s.after(room.id, 0, 10).await.unwrap(),
        vec![with.clone(), without.clone()]
    );
    assert_eq!(
        s.history(room.id, None, 10).await.unwrap(),
        vec![without, with]
    );
}

async fn rooms_and_members(s: &dyn ChatStore) {
    let (a, b, c) = (user("a"), user("b"), user("c"));
    s.write_batch(vec![a.clone(), b.clone(), c.clone()], vec![], vec![])
        .await
        .unwrap();
    assert_eq!(
        s.unknown_users(vec![a.id, UserId::new()])
            .await
            .unwrap()
            .len(),
        1
    );
    let room = s
        .create_group("general".into(), a.id, vec![b.id, a.id])
        .await
        .unwrap();
    assert_eq!(room.kind, RoomKind::Group);
    assert_eq!(room.owner, Some(a.id));
    assert_eq!(room.members.len(), 2, "owner listed once");
    assert!(room.users.iter().any(|u| u.username == "b"));
    assert!(s.membership(room.id, c.id).await.unwrap().is_none());
    let room = s.add_member(room.id, c.id).await.unwrap();
    assert_eq!(room.members.len(), 3);
    assert!(s.contacts(c.id).await.unwrap().contains(&a.id));
    let room = s.remove_member(room.id, c.id).await.unwrap();
    assert_eq!(room.members.len(), 2);
    assert!(s.membership(room.id, c.id).await.unwrap().is_none());
    assert!(s.rooms_for(c.id).await.unwrap().is_empty());
    assert_eq!(s.rooms_for(b.id).await.unwrap()[0].room.id, room.id);
    assert!(s.room(RoomId::new()).await.unwrap().is_none());
    // The owner leaving hands the room on instead of orphaning it.
    let room = s.remove_member(room.id, a.id).await.unwrap();
    assert_eq!(room.owner, Some(b.id));
}

async fn direct_rooms_are_one_per_pair(s: &dyn ChatStore) {
    let (a, b) = (user("da"), user("db"));
    s.write_batch(vec![a.clone(), b.clone()], vec![], vec![])
        .await
        .unwrap();
    let (r1, created1) = s.direct_room(a.id, b.id).await.unwrap();
    let (r2, created2) = s.direct_room(b.id, a.id).await.unwrap();
    assert!(created1 && !created2);
    assert_eq!(r1.id, r2.id);
    assert_eq!(r1.kind, RoomKind::Direct);
    assert_eq!(r1.name, None);
    assert_eq!(r1.members.len(), 2);
}

async fn batches_are_idempotent(s: &dyn ChatStore) {
    let a = user("ia");
    s.write_batch(vec![a.clone()], vec![], vec![])
        .await
        .unwrap();
    let room = s.create_group("idem".into(), a.id, vec![]).await.unwrap();
    let batch: Vec<Message> = (1..=3).map(|i| sample_message(room.id, i, a.id)).collect();
    let first = s.write_batch(vec![], batch.clone(), vec![]).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (3, 0));
    let again = s.write_batch(vec![], batch.clone(), vec![]).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 3));
    assert!(again.conflicts.is_empty());
    // Another message claiming a taken seq is refused, and the first stays.
    let intruder = sample_message(room.id, 2, a.id);
    let intruder_id = intruder.id;
    let clash = s.write_batch(vec![], vec![intruder], vec![]).await.unwrap();
    assert_eq!(
        (clash.inserted, clash.conflicts.clone()),
        (0, vec![intruder_id])
    );
    assert_eq!(s.after(room.id, 1, 1).await.unwrap()[0], batch[1]);
    assert_eq!(s.history(room.id, None, 10).await.unwrap().len(), 3);
    assert_eq!(
        s.membership(room.id, a.id).await.unwrap().unwrap().last_seq,
        3
    );
    let found = s
        .by_client_id(room.id, a.id, batch[1].client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, batch[1]);
    assert!(
        s.by_client_id(room.id, UserId::new(), batch[1].client_id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn history_and_after_page_correctly(s: &dyn ChatStore) {
    let a = user("ha");
    s.write_batch(vec![a.clone()], vec![], vec![])
        .await
        .unwrap();
    let room = s.create_group("hist".into(), a.id, vec![]).await.unwrap();
    let all: Vec<Message> = (1..=10).map(|i| sample_message(room.id, i, a.id)).collect();
    s.write_batch(vec![], all.clone(), vec![]).await.unwrap();
    let seqs = |v: Vec<Message>| v.iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(s.history(room.id, None, 3).await.unwrap()),
        vec![10, 9, 8]
    );
    assert_eq!(
        seqs(s.history(room.id, Some(8), 3).await.unwrap()),
        vec![7, 6, 5]
    );
    assert_eq!(seqs(s.history(room.id, Some(2), 3).await.unwrap()), vec![1]);
    assert_eq!(
        seqs(s.after(room.id, 7, 100).await.unwrap()),
        vec![8, 9, 10]
    );
    assert_eq!(seqs(s.after(room.id, 0, 2).await.unwrap()), vec![1, 2]);
    // Messages round-trip exactly (ids, timestamps to the millisecond).
    assert_eq!(s.after(room.id, 4, 1).await.unwrap()[0], all[4]);
}

async fn receipts_only_move_forward(s: &dyn ChatStore) {
    let (a, b) = (user("ra"), user("rb"));
    s.write_batch(vec![a.clone(), b.clone()], vec![], vec![])
        .await
        .unwrap();
    let room = s
        .create_group("receipts".into(), a.id, vec![b.id])
        .await
        .unwrap();
    let msgs: Vec<Message> = (1..=4).map(|i| sample_message(room.id, i, a.id)).collect();
    s.write_batch(vec![], msgs, vec![]).await.unwrap();
    let rb = |seq| ReceiptRead {
        room: room.id,
        user: b.id,
        seq,
    };
    s.write_batch(vec![], vec![], vec![rb(3)]).await.unwrap();
    s.write_batch(vec![], vec![], vec![rb(1)]).await.unwrap();
    let mine = &s.rooms_for(b.id).await.unwrap()[0];
    assert_eq!((mine.last_seq, mine.read_seq, mine.unread), (4, 3, 1));
    // The sender's own messages are never unread for them.
    assert_eq!(s.rooms_for(a.id).await.unwrap()[0].unread, 0);
}
