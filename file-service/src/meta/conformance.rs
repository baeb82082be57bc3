//! The behaviour every [`FileMetaStore`] must show; the integration tests
//! run it against each implementation.

// A conformance suite fails by panicking, like a test.
#![allow(clippy::unwrap_used)]

use shared_models::{FileId, RoomId, Timestamp, UserId};

use super::{FileMeta, FileMetaStore};

/// A file's metadata for tests.
pub fn sample(room: RoomId, uploader: UserId) -> FileMeta {
    FileMeta {
        id: FileId::new(),
        name: "report é.pdf".into(),
        size: 12_345_678_901,
        content_type: "application/pdf".into(),
        sha256: "ab".repeat(32),
        room,
        uploader,
        created_at: Timestamp::now(),
    }
}

/// Runs every check; panics on the first failure.
pub async fn run(store: &dyn FileMetaStore) {
    store.health().await.unwrap();
    files_round_trip(store).await;
    membership_projection(store).await;
}

async fn files_round_trip(store: &dyn FileMetaStore) {
    let meta = sample(RoomId::new(), UserId::new());
    assert_eq!(store.get(meta.id).await.unwrap(), None);
    store.insert(&meta).await.unwrap();
    let got = store.get(meta.id).await.unwrap().unwrap();
    assert_eq!(got.created_at.millis(), meta.created_at.millis());
    assert_eq!(got, meta);
    assert!(store.insert(&meta).await.is_err(), "ids are unique");
    assert!(store.delete(meta.id).await.unwrap());
    assert!(!store.delete(meta.id).await.unwrap());
    assert_eq!(store.get(meta.id).await.unwrap(), None);
}

async fn membership_projection(store: &dyn FileMetaStore) {
    let (room, other_room, a, b) = (RoomId::new(), RoomId::new(), UserId::new(), UserId::new());
    assert!(!store.is_member(room, a).await.unwrap());
    store.add_member(room, a).await.unwrap();
    store.add_member(room, a).await.unwrap();
    store.add_member(other_room, b).await.unwrap();
    assert!(store.is_member(room, a).await.unwrap());
    assert!(!store.is_member(room, b).await.unwrap());
    assert!(!store.is_member(other_room, a).await.unwrap());
    store.remove_member(room, a).await.unwrap();
    store.remove_member(room, a).await.unwrap();
    assert!(!store.is_member(room, a).await.unwrap());
    assert!(store.is_member(other_room, b).await.unwrap());
}
