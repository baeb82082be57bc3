//! Transfer benchmark: a 1 GiB upload and download through the file
//! service's HTTP API (loopback) on both backends, with the service's peak
//! RSS growth during the upload. Prints figures; asserts only that the
//! bytes came back intact.
//!
//! `cargo bench -p file-service --bench transfer` (set `PARLEY_BENCH_MIB`
//! for another size). The S3 server (s3s + s3s-fs) runs in a child process
//! (this binary, re-executed with `PARLEY_BENCH_S3_ROOT` set), so the RSS
//! measured here is the service's plus the small streaming client's.
//! Temporary files live under `PARLEY_BENCH_DIR` (default: the system temp
//! directory) and are removed at the end.

// A benchmark fails by panicking, like a test.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use file_service::{BackendConfig, FileServiceApp, FileServiceDeps, FilesConfig, S3Config};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use service_kit::bus::{EventBus, InProcessBus};
use sha2::{Digest, Sha256};
use shared_models::{MemberChanged, Room, RoomId, RoomKind, UserId};

// The tests' token signer, said once.
#[path = "../tests/it/signer.rs"]
mod signer;

// The tests' S3 server, said once.
#[path = "../tests/it/s3_server.rs"]
mod s3_server;

use s3_server::{ACCESS_KEY, SECRET_KEY};

const CHUNK: usize = 256 * 1024;

fn main() {
    if let Ok(root) = std::env::var("PARLEY_BENCH_S3_ROOT") {
        return s3_server_process(&root);
    }
    // `cargo bench` passes `--bench`; test runners (`cargo test`, nextest's
    // `--list`) run bench targets too, and must not start a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mib: u64 = std::env::var("PARLEY_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let base = std::env::var("PARLEY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("file-service transfer benchmark: {mib} MiB over loopback HTTP");
    for backend in ["local", "s3"] {
        let dir = tempfile::tempdir_in(&base).unwrap();
        let figures = rt.block_on(run(backend, mib * 1024 * 1024, dir.path()));
        println!(
            "{backend:>5}: upload {:>7.1} MB/s, download {:>7.1} MB/s{}, peak RSS growth during upload {:>6.1} MiB (baseline {:.1} MiB)",
            figures.upload_mbps,
            figures.download_mbps,
            if backend == "s3" {
                " (302 to a presigned URL, bytes from the S3 server)"
            } else {
                ""
            },
            figures.rss_growth as f64 / 1048576.0,
            figures.rss_baseline as f64 / 1048576.0,
        );
    }
}

struct Figures {
    upload_mbps: f64,
    download_mbps: f64,
    rss_growth: u64,
    rss_baseline: u64,
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

async fn run(backend: &str, size: u64, dir: &std::path::Path) -> Figures {
    let mut child = None;
    let mut config = FilesConfig::with_data_dir(dir.join("data"));
    config.max_bytes = size + 1;
    config.backend = match backend {
        "local" => BackendConfig::Local {
            dir: dir.join("files"),
        },
        _ => {
            let (proc, addr) = spawn_s3_server(&dir.join("s3"));
            child = Some(proc);
            BackendConfig::S3(S3Config {
                endpoint: format!("http://{addr}"),
                bucket: "bench".into(),
                region: "us-east-1".into(),
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
                part_size: file_service::config::DEFAULT_PART_SIZE,
            })
        }
    };
    let signer = signer::Signer::new();
    let bus = Arc::new(InProcessBus::default());
    let deps = FileServiceDeps {
        bus: bus.clone() as Arc<dyn EventBus>,
        verifier: signer.verifier(),
    };
    let app = FileServiceApp::build(config, deps, &prometheus::Registry::new())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(service_kit::serve(
        listener,
        app.router(),
        std::future::pending(),
    ));

    let user = UserId::new();
    let room = RoomId::new();
    let ev = MemberChanged {
        room: Room {
            id: room,
            name: Some("bench".into()),
            kind: RoomKind::Group,
            owner: Some(user),
            members: vec![user],
            users: vec![],
        },
        user,
    };
    let env = shared_models::Envelope::new(shared_models::EventKind::MemberAdded, "bench", ev);
    bus.publish("chat.member.added", env.to_bytes())
        .await
        .unwrap();
    let token = signer.token(user, "bench");

    // Upload, sampling RSS every 5 ms.
    let baseline = rss();
    let peak = Arc::new(AtomicU64::new(baseline));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let started = Instant::now();
    let (id, sent_sha) = upload(addr, &token, room, size).await;
    let upload_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let rss_growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);

    let started = Instant::now();
    let (got, got_sha) = download(addr, &token, &id).await;
    let download_secs = started.elapsed().as_secs_f64();
    assert_eq!(got, size, "downloaded size");
    assert_eq!(got_sha, sent_sha, "downloaded bytes differ");

    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    let mb = size as f64 / 1e6;
    Figures {
        upload_mbps: mb / upload_secs,
        download_mbps: mb / download_secs,
        rss_growth,
        rss_baseline: baseline,
    }
}

fn client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::combinators::BoxBody<Bytes, std::io::Error>,
> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// Streams `size` generated bytes (a PNG signature, then a pattern) as a
/// raw upload; returns the file id and the bytes' SHA-256.
async fn upload(addr: SocketAddr, token: &str, room: RoomId, size: u64) -> (String, String) {
    let block: Bytes = {
        let mut b: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
        b[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
        Bytes::from(b)
    };
    let mut hasher = Sha256::new();
    let mut left = size;
    let mut chunks = Vec::new();
    // Hash as sent without holding the body: every chunk is the same block
    // (trimmed at the end), so the hash is computed up front.
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        hasher.update(&block[..n]);
        chunks.push(n);
        left -= n as u64;
    }
    let sha = hex(&hasher.finalize());
    let stream = futures_util::stream::iter(chunks)
        .map(move |n| Ok::<_, std::io::Error>(Frame::data(block.slice(..n))));
    let body = BodyExt::boxed(StreamBody::new(stream));
    let req = hyper::Request::post(format!("http://{addr}/api/files?room={room}"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-filename", "bench.png")
        .header("content-length", size)
        .body(body)
        .unwrap();
    let res = client().request(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["sha256"], sha.as_str());
    (v["id"].as_str().unwrap().to_owned(), sha)
}

/// Downloads a file (following one redirect), hashing as it streams.
async fn download(addr: SocketAddr, token: &str, id: &str) -> (u64, String) {
    let empty = || {
        http_body_util::Empty::<Bytes>::new()
            .map_err(|e| match e {})
            .boxed()
    };
    let req = hyper::Request::get(format!("http://{addr}/api/files/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .body(empty())
        .unwrap();
    let mut res = client().request(req).await.unwrap();
    if res.status() == 302 {
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let req = hyper::Request::get(location).body(empty()).unwrap();
        res = client().request(req).await.unwrap();
    }
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let (mut n, mut hasher) = (0u64, Sha256::new());
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            n += data.len() as u64;
            hasher.update(&data);
        }
    }
    (n, hex(&hasher.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Re-executes this binary as the S3 server and reads its address.
fn spawn_s3_server(root: &std::path::Path) -> (std::process::Child, SocketAddr) {
    std::fs::create_dir_all(root).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("PARLEY_BENCH_S3_ROOT", root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

/// The child process: s3s-fs with signature checks, until killed.
fn s3_server_process(root: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        s3_server::serve(std::path::Path::new(root), listener).await;
    });
}
