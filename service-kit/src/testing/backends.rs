//! The real backends the integration tests talk to, each test in its own
//! namespace: a random MongoDB database, Redis key prefix or RabbitMQ
//! exchange. Redis and RabbitMQ are the machine's servers (started by
//! `scripts/setup-test-deps`); MongoDB is the `nx-27017` wire-protocol
//! server, shared through `PARLEY_TEST_MONGODB_URI` or started here.

#[cfg(feature = "mongo")]
use std::path::{Path, PathBuf};
#[cfg(feature = "mongo")]
use std::process::Stdio;
use std::time::Duration;

/// A fresh name for a test's namespace: `<prefix>_<random hex>`.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..16])
}

/// The Redis the tests use (`PARLEY_TEST_REDIS_URL`, default local).
pub fn redis_url() -> String {
    std::env::var("PARLEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The RabbitMQ the tests use (`PARLEY_TEST_AMQP_URL`, default local guest).
pub fn amqp_url() -> String {
    std::env::var("PARLEY_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `probe` every 20 ms until it returns `Some`, or `within` passed
/// (then `None`): for conditions another process brings about.
pub async fn wait_until<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(feature = "mongo")]
/// An `nx-27017` server this test controls (for tests that stop and
/// restart the database). It dies with the test process.
pub struct MongoServer {
    port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

#[cfg(feature = "mongo")]
impl MongoServer {
    /// Starts a server keeping its databases as files under `dir`, so a
    /// restart keeps the data.
    pub async fn start(dir: &Path) -> Self {
        let mut server = Self {
            port: free_port(),
            dir: dir.to_owned(),
            child: None,
        };
        server.restart().await;
        server
    }

    /// The connection string.
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data, and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn_nx(self.port, &self.dir.display().to_string()));
        wait_for_mongo(&self.uri()).await;
    }
}

#[cfg(feature = "mongo")]
impl Drop for MongoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(feature = "mongo")]
/// Starts `nx-27017` on `port` with `data` (`memory` or a directory). A
/// watcher shell kills it when this test process exits, whatever the way.
fn spawn_nx(port: u16, data: &str) -> std::process::Child {
    let log = std::env::temp_dir().join(format!("parley-nx-{port}.log"));
    let pid = std::env::temp_dir().join(format!("parley-nx-{port}.pid"));
    let script = r#"nx-27017 --data-dir "$1" --host 127.0.0.1 -p "$2" --log-file "$3" --pid-file "$4" >/dev/null 2>&1 &
nx=$!
trap 'kill $nx 2>/dev/null; exit 0' TERM INT
while kill -0 "$5" 2>/dev/null && kill -0 $nx 2>/dev/null; do sleep 0.5; done
kill $nx 2>/dev/null"#;
    std::process::Command::new("sh")
        .args(["-c", script, "nx-watch", data])
        .arg(port.to_string())
        .arg(&log)
        .arg(&pid)
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start nx-27017 (pip install nx-27017==0.8.1; scripts/setup-test-deps does)")
}

#[cfg(feature = "mongo")]
async fn wait_for_mongo(uri: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ok = async {
            let mut opts = mongodb::options::ClientOptions::parse(uri).await.ok()?;
            opts.server_selection_timeout = Some(Duration::from_millis(500));
            let client = mongodb::Client::with_options(opts).ok()?;
            client
                .database("admin")
                .run_command(mongodb::bson::doc! { "ping": 1 })
                .await
                .ok()
        }
        .await;
        if ok.is_some() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nx-27017 at {uri} did not answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(feature = "mongo")]
/// The shared in-memory MongoDB server of this test run: the one named by
/// `PARLEY_TEST_MONGODB_URI` (scripts/test starts one), else one started
/// for this process.
pub async fn mongo_uri() -> String {
    static URI: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    URI.get_or_init(|| async {
        if let Ok(uri) = std::env::var("PARLEY_TEST_MONGODB_URI") {
            return uri;
        }
        let port = free_port();
        // Detached on purpose: it lives as long as this test process.
        std::mem::forget(spawn_nx(port, "memory"));
        let uri = format!("mongodb://127.0.0.1:{port}/");
        wait_for_mongo(&uri).await;
        uri
    })
    .await
    .clone()
}

#[cfg(feature = "mongo")]
/// A fresh, randomly named database on the shared test server.
pub async fn mongo_database() -> mongodb::Database {
    let cfg = crate::mongo::MongoConfig {
        uri: mongo_uri().await,
        database: unique_name("t"),
    };
    crate::mongo::connect(&cfg).await.unwrap()
}
