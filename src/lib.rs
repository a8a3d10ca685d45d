//! coretalk: a thread-per-core chat server speaking the Tinode client protocol.
//!
//! Modules in reading order, lowest layer first (imports point down only; see ARCHITECTURE.md):
//! - `ids`, `access`: identifiers, access modes and auth levels (leaves).
//! - `proto`: wire types, JSON codec, ctrl outcome table, timestamps.
//! - `config`: the typed configuration tree.
//! - `stats`: per-shard counters and histograms, their Prometheus and expvar renderings.
//! - `logging`: the log pipeline (tracing, non-blocking writer) and noisy-line limits.
//! - `routing`: what sessions and topics tell each other through the runtime.
//! - `store`: persistence boundary and the embedded redb store with its group-commit writer.
//! - `auth`: API keys, tokens, password hashing off the executors.
//! - `session`, `topic`, `account`: the runtime-free protocol state machines.
//! - `shard`: the pinned executors, their tables, the cross-core mesh.
//! - `transport`: HTTP and WebSocket on the shard's sockets.
//! - `server`: wiring and lifecycle.
//! - `fuzzing` (hidden): entry points of the fuzz targets in `fuzz/`.

pub mod access;
pub mod account;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod fewmap;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod logging;
pub mod proto;
pub mod routing;
pub mod server;
pub mod session;
pub mod shard;
pub mod stats;
pub mod store;
pub mod topic;
pub mod transport;
