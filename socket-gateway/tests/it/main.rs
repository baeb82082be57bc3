//! socket-gateway integration tests: a real gateway on port 0 with the
//! embedded bus, db-writer's store and auth's keys, driven over WebSocket.

// Tests and their helpers fail by panicking.
#![allow(clippy::unwrap_used)]

mod cluster;
mod events;
mod handshake;
mod helpers;
mod limits;
