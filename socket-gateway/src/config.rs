//! The gateway's limits and timings.

use std::time::Duration;

use service_kit::config::{ConfigError, Env};
use shared_models::MessageBody;

/// Gateway settings; `Default` is the protocol's documented defaults.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Largest event payload, in bytes of JSON (`PARLEY_MAX_EVENT_BYTES`).
    pub max_event_bytes: usize,
    /// Largest transport frame; bigger ones close the connection (`PARLEY_MAX_FRAME_BYTES`).
    pub max_frame_bytes: u64,
    /// Longest message body, in characters (`PARLEY_MAX_BODY_CHARS`).
    pub max_body_chars: usize,
    /// Rooms one socket may join (`PARLEY_MAX_ROOMS_PER_SOCKET`).
    pub max_rooms_per_socket: usize,
    /// Sustained messages per second per user (`PARLEY_MSG_RATE_PER_SEC`).
    pub msg_rate_per_sec: f64,
    /// Burst of messages per user (`PARLEY_MSG_BURST`).
    pub msg_burst: f64,
    /// How long `typing: true` lasts without renewal.
    pub typing_ttl: Duration,
    /// Least time between relayed `typing: true` updates per user and room.
    pub typing_throttle: Duration,
    /// Most messages per room in one `sync` answer.
    pub sync_cap: u32,
    /// Recent messages per room kept for `sync` without reading the store.
    pub replay_buffer: usize,
    /// Events one socket may have waiting to be handled.
    pub socket_queue: usize,
    /// Packets buffered per socket before emits fail (a burst of
    /// broadcasts to a slow client).
    pub max_buffer_packets: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_event_bytes: 64 * 1024,
            max_frame_bytes: 1024 * 1024,
            max_body_chars: MessageBody::MAX_CHARS,
            max_rooms_per_socket: 200,
            msg_rate_per_sec: 10.0,
            msg_burst: 20.0,
            typing_ttl: Duration::from_secs(5),
            typing_throttle: Duration::from_secs(2),
            sync_cap: 1000,
            replay_buffer: 256,
            socket_queue: 256,
            max_buffer_packets: 4096,
        }
    }
}

impl GatewayConfig {
    /// Reads `PARLEY_*` overrides of the defaults.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let c = Self {
            max_event_bytes: env.parse_or("PARLEY_MAX_EVENT_BYTES", d.max_event_bytes)?,
            max_frame_bytes: env.parse_or("PARLEY_MAX_FRAME_BYTES", d.max_frame_bytes)?,
            max_body_chars: env.parse_or("PARLEY_MAX_BODY_CHARS", d.max_body_chars)?,
            max_rooms_per_socket: env
                .parse_or("PARLEY_MAX_ROOMS_PER_SOCKET", d.max_rooms_per_socket)?,
            msg_rate_per_sec: env.parse_or("PARLEY_MSG_RATE_PER_SEC", d.msg_rate_per_sec)?,
            msg_burst: env.parse_or("PARLEY_MSG_BURST", d.msg_burst)?,
            ..d
        };
        let fail =
            |key: &str, value: String, reason: &str| Err(ConfigError::new(key, &value, reason));
        // Written so that NaN fails too.
        if !(c.msg_rate_per_sec > 0.0 && c.msg_rate_per_sec.is_finite()) {
            return fail(
                "PARLEY_MSG_RATE_PER_SEC",
                c.msg_rate_per_sec.to_string(),
                "must be a positive number",
            );
        }
        if !(c.msg_burst >= 1.0 && c.msg_burst.is_finite()) {
            return fail(
                "PARLEY_MSG_BURST",
                c.msg_burst.to_string(),
                "must be at least 1",
            );
        }
        if c.max_body_chars == 0 || c.max_body_chars > MessageBody::MAX_CHARS {
            let reason = format!("must be 1-{}", MessageBody::MAX_CHARS);
            return fail(
                "PARLEY_MAX_BODY_CHARS",
                c.max_body_chars.to_string(),
                &reason,
            );
        }
        if c.max_rooms_per_socket == 0 {
            return fail(
                "PARLEY_MAX_ROOMS_PER_SOCKET",
                "0".into(),
                "must be at least 1",
            );
        }
        if c.max_event_bytes < 1024 || c.max_event_bytes as u64 > c.max_frame_bytes {
            return fail(
                "PARLEY_MAX_EVENT_BYTES",
                c.max_event_bytes.to_string(),
                "must be at least 1024 and at most PARLEY_MAX_FRAME_BYTES",
            );
        }
        Ok(c)
    }
}
