//! Standalone server tests: the whole engine on port 0 with its own data
//! directory, over real TCP: web client, operations endpoints, a full chat
//! through the HTTP API and Socket.IO, graceful shutdown, and a crash.

// Tests and their helpers fail by panicking.
#![allow(clippy::unwrap_used)]

mod helpers;
mod lifecycle;
mod surface;
