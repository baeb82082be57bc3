//! Both ports' conformance suites against every implementation.

use file_service::blob::{LocalBlobStore, S3BlobStore, conformance};
use file_service::meta::SqliteMetaStore;

use crate::helpers::S3Server;

#[tokio::test]
async fn sqlite_meta_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMetaStore::open(&dir.path().join("files.db")).unwrap();
    file_service::meta::conformance::run(&store).await;
}

#[tokio::test]
async fn local_blob_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    conformance::run(&store, "local", 3 * 1024 * 1024 + 17).await;
    assert_eq!(store.pending_uploads(), 0, "temporary files left behind");
}

#[tokio::test]
async fn s3_blob_store_conforms() {
    let server = S3Server::start().await;
    let cfg = server.config();
    let store = S3BlobStore::new(&cfg);
    store.ensure_bucket().await.unwrap();
    // Above two parts, not a multiple of the part size: three parts.
    let big = 2 * cfg.part_size + 12_345;
    conformance::run(&store, "s3", big).await;
    assert_eq!(server.pending_uploads(), 0, "multipart uploads left open");
    assert!(store.keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn mongo_meta_store_conforms() {
    let db = service_kit::testing::mongo_database().await;
    let store = file_service::meta::MongoMetaStore::open(db).await.unwrap();
    file_service::meta::conformance::run(&store).await;
}
