//! The S3 backend against a server that checks signatures: presigned URLs
//! expire, and a wrong secret gets nothing.

use std::time::{Duration, SystemTime};

use file_service::blob::{BlobStore, PresignParams, S3BlobStore, conformance};
use file_service::{BackendConfig, FileServiceApp, FileServiceDeps, FilesConfig};

use crate::helpers::{S3Server, fetch_url};

fn params(start: SystemTime, ttl: Duration) -> PresignParams {
    PresignParams {
        content_type: "image/png".into(),
        content_disposition: "inline; filename=\"a.png\"".into(),
        start,
        ttl,
    }
}

#[tokio::test]
async fn presigned_urls_work_until_they_expire() {
    let server = S3Server::start().await;
    let store = S3BlobStore::new(&server.config());
    store.ensure_bucket().await.unwrap();
    let data = conformance::pattern(50_000);
    store
        .put("k1", conformance::chunked(data.clone(), 8192))
        .await
        .unwrap();

    let fresh = store
        .presign_get("k1", &params(SystemTime::now(), Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    let res = fetch_url(&fresh, &[]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, data);
    assert_eq!(res.headers["content-type"], "image/png");
    assert_eq!(
        res.headers["content-disposition"],
        "inline; filename=\"a.png\""
    );

    // Signed two minutes ago for one minute: expired now, with no waiting.
    let past = SystemTime::now() - Duration::from_secs(120);
    let expired = store
        .presign_get("k1", &params(past, Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    let res = fetch_url(&expired, &[]).await;
    assert_eq!(res.status, 403, "{}", String::from_utf8_lossy(&res.body));
    assert!(String::from_utf8_lossy(&res.body).contains("expired"));

    // A tampered signature is refused too.
    let tampered = fresh.replace("X-Amz-Expires=60", "X-Amz-Expires=600");
    assert_ne!(tampered, fresh);
    assert_eq!(fetch_url(&tampered, &[]).await.status, 403);
}

#[tokio::test]
async fn a_wrong_secret_gets_nothing() {
    let server = S3Server::start().await;
    let good = server.config();
    let store = S3BlobStore::new(&good);
    store.ensure_bucket().await.unwrap();
    store
        .put("k", conformance::chunked(b"secret bytes".to_vec(), 4))
        .await
        .unwrap();

    let mut bad = good.clone();
    bad.secret_key = "not-the-secret".into();
    let intruder = S3BlobStore::new(&bad);
    assert!(intruder.health().await.is_err());
    assert!(intruder.get("k", None).await.is_err());
    assert!(
        intruder
            .put("k2", conformance::chunked(b"x".to_vec(), 1))
            .await
            .is_err()
    );
    let url = intruder
        .presign_get("k", &params(SystemTime::now(), Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetch_url(&url, &[]).await.status, 403);
    assert_eq!(store.keys().await.unwrap(), vec!["k".to_owned()]);

    // The service refuses to start on bad credentials, naming the bucket.
    let dir = tempfile::tempdir().unwrap();
    let mut config = FilesConfig::with_data_dir(dir.path().into());
    config.backend = BackendConfig::S3(bad);
    let deps = FileServiceDeps {
        bus: std::sync::Arc::new(service_kit::bus::InProcessBus::default()),
        verifier: crate::signer::Signer::new().verifier(),
    };
    let err = FileServiceApp::build(config, deps, &prometheus::Registry::new())
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains(&good.bucket), "{err:#}");
}
