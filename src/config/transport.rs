//! The client transports' settings: `[ws]` (WebSocket framing, pings, the shard writer and
//! its batched sends) and `[longpoll]`. Documented in tuning/websocket.md and
//! tuning/longpoll.md.

use serde::Deserialize;

/// WebSocket transport.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Bytes one WebSocket read takes, into a buffer each shard shares among all its
    /// connections (idle connections hold none). 4 KiB reads a typical frame in one call.
    pub read_buffer: usize,
    /// Interval between server pings, ms. 0.9 × the pong timeout, as the reference server.
    pub ping_interval_ms: u64,
    /// Drop the connection when no pong arrived for this long, ms (reference: 55 s).
    pub pong_timeout_ms: u64,
    /// Give up on a client that does not finish its HTTP request head in this time, ms: the
    /// deadline bounds the whole head, however the bytes trickle in (slowloris), and is
    /// answered 408.
    pub handshake_timeout_ms: u64,
    /// Client pings answered per second and connection; a client sending more is closed with
    /// status 1008 ("too many pings"). Pongs are coalesced (RFC 6455 §5.5.3): a burst of pings
    /// read together gets one pong, to the last of them.
    pub max_pings_per_sec: u32,
    /// Largest accepted HTTP request head, bytes (reference: 16 KiB).
    pub max_header_bytes: usize,
    /// Path of a raw WebSocket echo endpoint (every text and binary frame written straight
    /// back: no API key, no session, no topic), the W0 benchmark's. Empty, the default, turns
    /// it off: it is a measuring instrument, not part of the Tinode protocol.
    pub echo_path: String,
    /// Frames queued for WebSocket sessions are written by one task per shard, straight to
    /// the sockets, instead of waking each session's task (`false`: the task writes them).
    pub shard_writer: bool,
    /// Sends of one round of the shard writer (at least 8 links) handed to the kernel in one
    /// system call through a small io_uring per shard, at most this many per call; 0 sends
    /// each with its own `send`.
    pub send_batch: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            read_buffer: 4096,
            ping_interval_ms: 49_500,
            pong_timeout_ms: 55_000,
            handshake_timeout_ms: 10_000,
            max_pings_per_sec: 20,
            max_header_bytes: 16 << 10,
            echo_path: String::new(),
            shard_writer: true,
            send_batch: 64,
        }
    }
}

/// Long polling (`/v0/channels/lp`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LongPollConfig {
    /// How long a poll waits for a message before answering an empty 200, ms. 49.5 s as the
    /// reference (its WebSocket ping period), under the 60 s that proxies commonly allow.
    pub hold_ms: u64,
    /// Give up on a request whose body (at most `session.max_message_size` bytes) does not
    /// arrive in this time, ms; the head has `ws.handshake_timeout_ms`.
    pub body_timeout_ms: u64,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        LongPollConfig {
            hold_ms: 49_500,
            body_timeout_ms: 10_000,
        }
    }
}
