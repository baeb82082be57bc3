//! db-writer integration tests: the store conformance suite on SQLite, the
//! consumer on the embedded bus, and the rooms API with real tokens.

// Tests and their helpers fail by panicking.
#![allow(clippy::unwrap_used)]

mod api;
mod consumer;

use std::sync::Arc;

use db_writer::store::{ChatStore, SqliteChatStore};

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ChatStore> =
        Arc::new(SqliteChatStore::open(&dir.path().join("chat.db")).unwrap());
    db_writer::conformance::run(store).await;
}

#[tokio::test]
async fn mongo_store_conforms() {
    let db = service_kit::testing::mongo_database().await;
    let store: Arc<dyn ChatStore> =
        Arc::new(db_writer::mongo::MongoChatStore::open(db).await.unwrap());
    db_writer::conformance::run(store).await;
}

#[tokio::test]
async fn sqlite_store_migrates_messages_without_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    // The messages table as releases before attachments made it.
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE messages (room TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE,
         sender TEXT NOT NULL, body TEXT NOT NULL, ts INTEGER NOT NULL, client_id TEXT NOT NULL,
         PRIMARY KEY (room, seq)) WITHOUT ROWID;",
    )
    .unwrap();
    drop(old);
    let store: Arc<dyn ChatStore> = Arc::new(SqliteChatStore::open(&path).unwrap());
    // Opening twice must not try to add the column again.
    drop(SqliteChatStore::open(&path).unwrap());
    db_writer::conformance::run(store).await;
}
