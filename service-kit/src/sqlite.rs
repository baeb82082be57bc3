//! The embedded database: SQLite in WAL mode behind async calls.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and
//! one reader connection, each behind a mutex and used from
//! `spawn_blocking`, so async tasks never block on disk. WAL with
//! `synchronous=NORMAL` survives the loss of the process (not of the
//! machine's power), which is what "acked means durable" asks of the
//! standalone server.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// A store's failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A worker thread panicked or the runtime is shutting down.
    #[error("database worker failed: {0}")]
    Worker(String),
}

/// An open database file.
#[derive(Clone)]
pub struct Db {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl Db {
    /// Opens (creating if needed) the file at `path` and applies `schema`
    /// (idempotent `CREATE … IF NOT EXISTS` statements).
    pub fn open(path: &Path, schema: &str) -> Result<Self, DbError> {
        let writer = open_conn(path)?;
        writer.execute_batch(schema)?;
        let reader = open_conn(path)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Runs `f` with the writer connection on a blocking thread.
    pub async fn write<F, R>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        Self::run(self.writer.clone(), f).await
    }

    /// Runs `f` with the reader connection on a blocking thread.
    pub async fn read<F, R>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        Self::run(self.reader.clone(), f).await
    }

    async fn run<F, R>(conn: Arc<Mutex<Connection>>, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|e| DbError::Worker(e.to_string()))?;
            f(&mut guard).map_err(DbError::from)
        })
        .await
        .map_err(|e| DbError::Worker(e.to_string()))?
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}
