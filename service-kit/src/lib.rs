//! What every Parley service shares, so that it is said once.
//!
//! - [`bus`]: the event-bus port and its embedded implementation; `amqp`
//!   (feature `amqp`): the RabbitMQ one.
//! - [`error`]: the HTTP error type (`{"error": {code, message}}`).
//! - [`http`]: extractors for JSON bodies and the authenticated user.
//! - [`token`]: access-token verification (every service verifies locally).
//! - [`config`]: environment reading through a trait, so tests never `set_var`.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`presence`]: read access to who is online in the cluster.
//! - `runtime` (feature `amqp`): backends chosen by configuration in `main`.
//! - [`sqlite`]: the embedded database plumbing; `mongo` (feature `mongo`):
//!   the production database's.
//! - [`shutdown`] and [`telemetry`]: signals and logs.
//! - `testing` (feature `testing`): helpers for the crates' integration tests.
//!
//! Invariant: nothing here knows about a particular service's data.

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod bus;
pub mod bus_conformance;
pub mod config;
pub mod error;
pub mod http;
#[cfg(feature = "mongo")]
pub mod mongo;
pub mod ops;
pub mod presence;
#[cfg(feature = "amqp")]
pub mod runtime;
pub mod shutdown;
pub mod sqlite;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

pub use error::ApiError;

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and lets in-flight requests finish. Accepted sockets get
/// `TCP_NODELAY` (small chat frames must not wait for Nagle).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
