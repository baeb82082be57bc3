//! The behaviour every [`BlobStore`] must show; the integration tests run
//! it against local disk and against an in-process S3 server.

// A conformance suite fails by panicking, like a test.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures_util::StreamExt;

use super::{BlobError, BlobStore, ByteRange, ByteStream};

/// Deterministic test bytes (not all the same, so offsets matter).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// `data` as a stream of `chunk`-sized pieces.
pub fn chunked(data: Vec<u8>, chunk: usize) -> ByteStream<'static> {
    let data = Bytes::from(data);
    let pieces: Vec<Result<Bytes, std::io::Error>> = (0..data.len())
        .step_by(chunk.max(1))
        .map(|i| Ok(data.slice(i..(i + chunk).min(data.len()))))
        .collect();
    Box::pin(futures_util::stream::iter(pieces))
}

/// `data` followed by a stream error, like a client whose upload broke off.
pub fn failing(data: Vec<u8>) -> ByteStream<'static> {
    Box::pin(
        chunked(data, 64 * 1024).chain(futures_util::stream::once(async {
            Err(std::io::Error::other("client went away"))
        })),
    )
}

/// Reads a stream whole.
pub async fn collect(mut body: ByteStream<'static>) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Runs every check with keys prefixed by `ns`; `big` is a size above
/// the store's multipart threshold (or any size for stores without one).
pub async fn run(store: &dyn BlobStore, ns: &str, big: usize) {
    store.health().await.unwrap();
    round_trip(store, &format!("{ns}-small"), 1000).await;
    round_trip(store, &format!("{ns}-empty"), 0).await;
    round_trip(store, &format!("{ns}-big"), big).await;
    ranges(store, &format!("{ns}-range")).await;
    failed_upload_leaves_nothing(store, &format!("{ns}-fail-small"), 10).await;
    failed_upload_leaves_nothing(store, &format!("{ns}-fail-big"), big).await;
    missing(store, &format!("{ns}-missing")).await;
}

async fn round_trip(store: &dyn BlobStore, key: &str, len: usize) {
    let data = pattern(len);
    let n = store
        .put(key, chunked(data.clone(), 100_003))
        .await
        .unwrap();
    assert_eq!(n, len as u64);
    assert!(store.exists(key).await.unwrap());
    let read = store.get(key, None).await.unwrap();
    assert_eq!(read.len, len as u64);
    let got = collect(read.body).await;
    assert!(got == data, "{key}: bytes differ ({} vs {len})", got.len());
    store.delete(key).await.unwrap();
    assert!(!store.exists(key).await.unwrap());
    store.delete(key).await.unwrap();
}

async fn ranges(store: &dyn BlobStore, key: &str) {
    let data = pattern(10_000);
    store.put(key, chunked(data.clone(), 4096)).await.unwrap();
    for (start, end) in [(0u64, 0u64), (100, 199), (9_990, 9_999), (0, 9_999)] {
        let read = store
            .get(key, Some(ByteRange { start, end }))
            .await
            .unwrap();
        assert_eq!(read.len, end - start + 1);
        let (s, e) = (start as usize, end as usize);
        assert_eq!(collect(read.body).await, data[s..=e]);
    }
    store.delete(key).await.unwrap();
}

async fn failed_upload_leaves_nothing(store: &dyn BlobStore, key: &str, len: usize) {
    let err = store.put(key, failing(pattern(len))).await.unwrap_err();
    assert!(matches!(err, BlobError::Body(_)), "{err}");
    assert!(!store.exists(key).await.unwrap(), "{key} left behind");
}

async fn missing(store: &dyn BlobStore, key: &str) {
    assert!(matches!(
        store.get(key, None).await,
        Err(BlobError::NotFound)
    ));
    assert!(!store.exists(key).await.unwrap());
}
