//! Test helpers: an in-process S3 server, a spawned file service on either
//! backend, users with real tokens, room membership through the bus, and a
//! small HTTP client that sends any headers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::signer::Signer;
use file_service::blob::S3BlobStore;
use file_service::{BackendConfig, FileServiceApp, FileServiceDeps, FilesConfig, S3Config};
use http_body_util::{BodyExt, Full};
use service_kit::bus::{EventBus, InProcessBus};
use service_kit::testing::Response;
use shared_models::{MemberChanged, Room, RoomId, RoomKind, UserId};

use crate::s3_server::{ACCESS_KEY, SECRET_KEY};

/// An S3-compatible server (s3s-fs) on a port-0 listener that checks
/// signatures, storing under its own temporary directory.
pub struct S3Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its storage root (multipart parts live here as `.upload*` files).
    pub root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server.
    pub async fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let path = root.path().to_owned();
        tokio::spawn(async move { crate::s3_server::serve(&path, listener).await });
        Self { addr, root }
    }

    /// A configuration for a fresh, randomly named bucket.
    pub fn config(&self) -> S3Config {
        S3Config {
            endpoint: format!("http://{}", self.addr),
            bucket: format!("t{}", uuid::Uuid::new_v4().simple()),
            region: "us-east-1".into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            part_size: file_service::config::MIN_PART_SIZE,
        }
    }

    /// Unfinished multipart uploads the server still keeps.
    pub fn pending_uploads(&self) -> usize {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".upload")
            })
            .count()
    }
}

/// Which blob backend a test service runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Local disk.
    Local,
    /// The in-process S3 server.
    S3,
}

/// A running file service with its users' token signer.
pub struct Service {
    pub addr: SocketAddr,
    pub app: FileServiceApp,
    pub bus: Arc<InProcessBus>,
    keys: Signer,
    pub files_dir: PathBuf,
    pub s3: Option<(S3Server, S3Config)>,
    _dir: tempfile::TempDir,
}

/// A user with a token.
pub struct User {
    pub id: UserId,
    pub token: String,
}

impl Service {
    /// A service on `kind` with `max_bytes` as its upload limit.
    pub async fn start(kind: Kind, max_bytes: u64) -> Self {
        Self::start_with(kind, |c| c.max_bytes = max_bytes).await
    }

    /// A service on `kind` with a configuration tweak.
    pub async fn start_with(kind: Kind, tweak: impl FnOnce(&mut FilesConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = Signer::new();
        let verifier = keys.verifier();
        let mut config = FilesConfig::with_data_dir(dir.path().join("data"));
        let files_dir = dir.path().join("files");
        let s3 = match kind {
            Kind::Local => {
                config.backend = BackendConfig::Local {
                    dir: files_dir.clone(),
                };
                None
            }
            Kind::S3 => {
                let server = S3Server::start().await;
                let cfg = server.config();
                config.backend = BackendConfig::S3(cfg.clone());
                Some((server, cfg))
            }
        };
        tweak(&mut config);
        let bus = Arc::new(InProcessBus::default());
        let deps = FileServiceDeps {
            bus: bus.clone() as Arc<dyn EventBus>,
            verifier,
        };
        let app = FileServiceApp::build(config, deps, &prometheus::Registry::new())
            .await
            .unwrap();
        let addr = service_kit::testing::spawn(app.router().merge(app.internal_router())).await;
        Self {
            addr,
            app,
            bus,
            keys,
            files_dir,
            s3,
            _dir: dir,
        }
    }

    /// A new user (not in any room yet).
    pub fn user(&self) -> User {
        let id = UserId::new();
        let token = self.keys.token(id, &format!("u{}", &id.to_string()[28..]));
        User { id, token }
    }

    /// Announces a membership change as db-writer would (the room listing
    /// just `user`, or nobody after a removal).
    pub async fn member(&self, room: RoomId, user: UserId, added: bool) {
        let members = if added { vec![user] } else { vec![] };
        self.announce(room, members, user, added).await;
    }

    /// Announces that `user` was added to or removed from `room`, whose
    /// members after the change are `members`.
    pub async fn announce(&self, room: RoomId, members: Vec<UserId>, user: UserId, added: bool) {
        let ev = MemberChanged {
            room: Room {
                id: room,
                name: Some("files".into()),
                kind: RoomKind::Group,
                owner: members.first().copied(),
                members,
                users: vec![],
            },
            user,
        };
        let key = if added {
            "chat.member.added"
        } else {
            "chat.member.removed"
        };
        let env =
            shared_models::Envelope::new(shared_models::EventKind::parse(key).unwrap(), "test", ev);
        // Returns once the durable file-service consumer committed it.
        self.bus.publish(key, env.to_bytes()).await.unwrap();
    }

    /// A room whose members are `users`.
    pub async fn room(&self, users: &[&User]) -> RoomId {
        let room = RoomId::new();
        for u in users {
            self.member(room, u.id, true).await;
        }
        room
    }

    /// Objects stored by the backend, and uploads it still has open.
    pub async fn leftovers(&self) -> (usize, usize) {
        match &self.s3 {
            None => {
                let objects = std::fs::read_dir(self.files_dir.join("objects"))
                    .unwrap()
                    .count();
                let tmp = std::fs::read_dir(self.files_dir.join("tmp"))
                    .unwrap()
                    .count();
                (objects, tmp)
            }
            Some((server, cfg)) => {
                let store = S3BlobStore::new(cfg);
                (store.keys().await.unwrap().len(), server.pending_uploads())
            }
        }
    }

    /// Uploads `data` as a raw body named `name`, expecting 201; the file id.
    pub async fn upload_id(&self, user: &User, room: RoomId, name: &str, data: &[u8]) -> String {
        let res = self.upload_raw(user, room, name, data.to_vec()).await;
        assert_eq!(res.status, 201, "{:?}", res.json());
        res.json()["id"].as_str().unwrap().to_owned()
    }

    /// Uploads `data` as a raw body named `name`.
    pub async fn upload_raw(
        &self,
        user: &User,
        room: RoomId,
        name: &str,
        data: Vec<u8>,
    ) -> Response {
        request(
            self.addr,
            "POST",
            &format!("/api/files?room={room}"),
            &[
                ("authorization", &format!("Bearer {}", user.token)),
                ("x-filename", name),
                ("content-type", "application/octet-stream"),
            ],
            data,
        )
        .await
    }

    /// Uploads `data` as one multipart/form-data file part.
    pub async fn upload_form(
        &self,
        user: &User,
        room: RoomId,
        name: &str,
        declared_type: &str,
        data: &[u8],
    ) -> Response {
        let boundary = "----parleyTestBoundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: {declared_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        request(
            self.addr,
            "POST",
            &format!("/api/files?room={room}"),
            &[
                ("authorization", &format!("Bearer {}", user.token)),
                (
                    "content-type",
                    &format!("multipart/form-data; boundary={boundary}"),
                ),
            ],
            body,
        )
        .await
    }

    /// `GET /api/files/{id}` (optionally with a `Range`), following a
    /// redirect to a presigned URL without credentials, as a browser would.
    pub async fn download(&self, user: &User, id: &str, range: Option<&str>) -> Response {
        let auth = format!("Bearer {}", user.token);
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(r) = range {
            headers.push(("range", r));
        }
        let res = request(
            self.addr,
            "GET",
            &format!("/api/files/{id}"),
            &headers,
            vec![],
        )
        .await;
        if res.status != 302 {
            return res;
        }
        let location = res.headers["location"].to_str().unwrap().to_owned();
        let mut headers = vec![];
        if let Some(r) = range {
            headers.push(("range", r));
        }
        fetch_url(&location, &headers).await
    }

    /// Any call with a bearer token and no body.
    pub async fn call(&self, user: &User, method: &str, path: &str) -> Response {
        request(
            self.addr,
            method,
            path,
            &[("authorization", &format!("Bearer {}", user.token))],
            vec![],
        )
        .await
    }
}

/// GETs an absolute `http://host:port/path?query` URL.
pub async fn fetch_url(url: &str, headers: &[(&str, &str)]) -> Response {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    request(host.parse().unwrap(), "GET", path, headers, vec![]).await
}

/// One request with any headers and body, over a new connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Response {
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client
        .request(req.body(Full::new(bytes::Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Response {
        status,
        headers,
        body,
    }
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A PNG signature followed by `len` pseudo-random bytes.
pub fn png(len: usize) -> Vec<u8> {
    let mut data = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    data.extend(file_service::blob::conformance::pattern(len));
    data
}
