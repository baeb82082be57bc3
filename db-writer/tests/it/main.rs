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
