//! Typed per-shard counters, gauges and histograms. Each shard owns one [`ShardStats`] and is
//! its only writer (a counter is bumped with a plain load and store, never a locked
//! read-modify-write); any shard may read all of them (relaxed atomics) to answer `/metrics`
//! (`prom.rs`, Prometheus text with a `shard` label) and `/debug/vars` (`expvar.rs`, the
//! reference's expvar keys, summed over shards).
//!
//! No string registry and no global: the server hands every shard the list of all shards'
//! stats and the process-wide [`ProcessStats`] at start-up. `process.rs` reads memory and
//! threads from the allocator and `/proc`.

pub mod cluster;
pub mod expvar;
pub mod histogram;
pub mod process;
pub mod prom;
pub mod stall;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

pub use cluster::{ClusterFigures, LinkFigures};
pub use histogram::{Histogram, HistogramSnapshot};
pub use stall::{StallNews, SyncWatch};

/// Adds to a counter that only the calling thread writes: a load and a store, which on x86 and
/// ARM are plain moves (a `fetch_add` would be a locked instruction on every message).
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Session kinds as the metrics name them (`SessionKind` lives above this layer).
pub const SESSION_KINDS: [&str; 4] = ["ws", "lp", "grpc", "other"];

/// Transports of the message counters, in the order of [`ShardStats::messages_in`].
pub const TRANSPORTS: [&str; 3] = ["ws", "lp", "grpc"];

/// Counters of one shard.
#[derive(Debug)]
pub struct ShardStats {
    /// Sessions in this shard's table now.
    pub live_sessions: AtomicU64,
    /// Live sessions by kind ([`SESSION_KINDS`]).
    pub sessions_by_kind: [AtomicU64; 4],
    /// Sessions ever opened on this shard.
    pub total_sessions: AtomicU64,
    /// Topics loaded on this shard now.
    pub live_topics: AtomicU64,
    /// Topics ever loaded on this shard (the reference's `TotalTopics`).
    pub total_topics: AtomicU64,
    /// Session attachments to this shard's topics (refreshed by housekeeping, ≤ 1 s old).
    pub attachments: AtomicU64,
    /// Logins and account creations waiting for the hash pool or the store.
    pub pending_auth: AtomicU64,
    /// Client frames received (JSON: WebSocket, long polling).
    pub frames_in: AtomicU64,
    /// Frames queued to clients (JSON).
    pub frames_out: AtomicU64,
    /// Client messages received over gRPC.
    pub grpc_in: AtomicU64,
    /// Messages queued to gRPC clients.
    pub grpc_out: AtomicU64,
    /// Client messages received by long polling (counted on the session's home shard).
    pub lp_in: AtomicU64,
    /// Messages answered to long polls (counted on the session's home shard).
    pub lp_out: AtomicU64,
    /// `{ctrl}` replies carrying an id, by class: 2xx, 3xx, 4xx, 5xx.
    pub ctrl_codes: [AtomicU64; 4],
    /// Milliseconds from a request's receipt to its `{ctrl}` reply (`monitor.histograms`).
    pub request_latency: Histogram,
    /// Bytes of each message queued to a client (`monitor.histograms`).
    pub outgoing_size: Histogram,
    /// Envelopes sent to other shards.
    pub mesh_out: AtomicU64,
    /// Doorbell rings on other shards: flushes that pushed envelopes to a destination (each
    /// wakes it at most once), i.e. cross-core hops.
    pub mesh_rings: AtomicU64,
    /// Times the doorbell watchdog found this shard's doorbell rung and unanswered for a
    /// second and woke its mesh task again: wake-ups the runtime lost (expected 0).
    pub mesh_rewakes: AtomicU64,
    /// Envelopes waiting in the local backlog because a peer queue was full.
    pub mesh_backlog: AtomicU64,
    /// Envelopes waiting in this shard's inbox (refreshed by housekeeping).
    pub mesh_inbox: AtomicU64,
    /// Sessions ended because their outbound queue overflowed.
    pub slow_consumers: AtomicU64,
    /// Store reads and writes that failed, seen by this shard.
    pub store_errors: AtomicU64,
    /// Failures of writes nobody waited for; written by the store thread (`fetch_add`: the one
    /// counter with another writer, and a rare one).
    pub store_errors_unwaited: AtomicU64,
    /// Client requests refused by a rate limit or quota (`limits.*`), answered 429 or 422.
    pub limited: AtomicU64,
    /// Client messages that could not be decoded (answered `{ctrl 400 "malformed"}`).
    pub malformed: AtomicU64,
    /// Failed `accept` calls on this shard's listeners (the file limit, mostly).
    pub accept_errors: AtomicU64,
    /// Connections refused by the front door (`frontdoor.max_pending_per_addr`).
    pub conn_refused: AtomicU64,
    /// Unauthenticated connections the front door cut to make room (`frontdoor.*`).
    pub conn_shed: AtomicU64,
    /// Connections still reading their request head or handshake.
    pub conn_pending: AtomicU64,
    /// 1 while this shard accepts connections (set once its listeners run, cleared when it
    /// begins to shut down).
    pub accepting: AtomicU64,
    /// This shard's journal syncs (`shard::journal`): the age of the one in progress, stalls.
    pub journal_sync: SyncWatch,
}

impl Default for ShardStats {
    fn default() -> Self {
        ShardStats {
            live_sessions: AtomicU64::new(0),
            sessions_by_kind: Default::default(),
            total_sessions: AtomicU64::new(0),
            live_topics: AtomicU64::new(0),
            total_topics: AtomicU64::new(0),
            attachments: AtomicU64::new(0),
            pending_auth: AtomicU64::new(0),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            grpc_in: AtomicU64::new(0),
            grpc_out: AtomicU64::new(0),
            lp_in: AtomicU64::new(0),
            lp_out: AtomicU64::new(0),
            ctrl_codes: Default::default(),
            request_latency: Histogram::latency(),
            outgoing_size: Histogram::size(),
            mesh_out: AtomicU64::new(0),
            mesh_rings: AtomicU64::new(0),
            mesh_rewakes: AtomicU64::new(0),
            mesh_backlog: AtomicU64::new(0),
            mesh_inbox: AtomicU64::new(0),
            slow_consumers: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            store_errors_unwaited: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            conn_refused: AtomicU64::new(0),
            conn_shed: AtomicU64::new(0),
            conn_pending: AtomicU64::new(0),
            accepting: AtomicU64::new(0),
            journal_sync: SyncWatch::default(),
        }
    }
}

impl ShardStats {
    /// Adds one to a counter (only the owning shard calls this).
    pub fn inc(c: &AtomicU64) {
        bump(c, 1);
    }

    /// Adds `n` to a counter (only the owning shard calls this).
    pub fn add(c: &AtomicU64, n: u64) {
        bump(c, n);
    }

    /// Sets a gauge.
    pub fn set(c: &AtomicU64, v: u64) {
        c.store(v, Relaxed);
    }

    /// Lowers a gauge by one (only the owning shard calls this).
    pub fn dec(c: &AtomicU64) {
        c.store(c.load(Relaxed).saturating_sub(1), Relaxed);
    }

    /// Counts a `{ctrl}` reply that carries an id, by its code's class.
    pub fn ctrl_code(&self, code: u16) {
        if let Some(c) = self.ctrl_codes.get((code / 100).wrapping_sub(2) as usize) {
            bump(c, 1);
        }
    }

    /// Messages in and out per transport, in the order of [`TRANSPORTS`].
    pub fn messages(&self) -> [(u64, u64); 3] {
        let l = |c: &AtomicU64| c.load(Relaxed);
        [
            (l(&self.frames_in), l(&self.frames_out)),
            (l(&self.lp_in), l(&self.lp_out)),
            (l(&self.grpc_in), l(&self.grpc_out)),
        ]
    }

    /// Store errors of this shard, waited-for and not.
    pub fn store_errors(&self) -> u64 {
        self.store_errors.load(Relaxed) + self.store_errors_unwaited.load(Relaxed)
    }
}

/// Process-wide state the monitoring endpoints read: written by the server's main thread.
#[derive(Debug)]
pub struct ProcessStats {
    /// When the server started (for `Uptime`).
    pub started: Instant,
    /// True from the moment the store is open and the shards run until shutdown begins.
    pub store_open: AtomicBool,
    /// The command line (`cmdline` in `/debug/vars`).
    pub cmdline: Vec<String>,
    /// The protocol version as the reference numbers it (`Version`: 0.25 → 2500).
    pub version: u64,
    /// `coretalk --version`'s text, for `coretalk_build_info`.
    pub build: String,
}

impl Default for ProcessStats {
    fn default() -> Self {
        ProcessStats {
            started: Instant::now(),
            store_open: AtomicBool::new(false),
            cmdline: std::env::args().collect(),
            version: 0,
            build: String::new(),
        }
    }
}

/// Figures of the services every shard shares (the store writer, the hash pool), read by the
/// shard that answers a scrape.
#[derive(Clone, Debug, Default)]
pub struct Services {
    pub store_queued: u64,
    pub store_commits: u64,
    pub store_batches: u64,
    pub store_ops: u64,
    pub store_reads_behind: u64,
    /// Age of the store thread's commit in progress, µs (0: none).
    pub store_commit_age_us: u64,
    /// Store commits that lasted at least `store.stall_warn_ms`.
    pub store_stalls: u64,
    pub hash_queued: u64,
}

/// Everything one scrape reads: all shards, the process, the services.
pub struct Scrape<'a> {
    pub shards: &'a [Arc<ShardStats>],
    pub process: &'a ProcessStats,
    pub services: Services,
    /// A cluster node's figures (`None`: standalone).
    pub cluster: Option<ClusterFigures>,
}

impl Scrape<'_> {
    /// The sum of one field over all shards.
    pub fn sum(&self, f: impl Fn(&ShardStats) -> u64) -> u64 {
        self.shards.iter().map(|s| f(s)).sum()
    }

    /// One histogram merged over all shards.
    pub fn merged(&self, f: impl Fn(&ShardStats) -> &Histogram) -> Option<HistogramSnapshot> {
        let mut it = self.shards.iter().map(|s| f(s).snapshot());
        let mut first = it.next()?;
        for s in it {
            first.merge(&s);
        }
        Some(first)
    }
}

/// Loads a counter.
pub fn get(c: &AtomicU64) -> u64 {
    c.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_codes_are_counted_by_class() {
        let s = ShardStats::default();
        for code in [200, 201, 204, 304, 400, 404, 429, 500, 503, 100, 600, 0] {
            s.ctrl_code(code);
        }
        let got: Vec<u64> = s.ctrl_codes.iter().map(get).collect();
        assert_eq!(got, [3, 1, 3, 2]);
    }

    #[test]
    fn single_writer_counters_add_and_gauges_go_down_to_zero() {
        let s = ShardStats::default();
        ShardStats::inc(&s.frames_in);
        bump(&s.frames_in, 4);
        assert_eq!(get(&s.frames_in), 5);
        ShardStats::dec(&s.live_sessions);
        assert_eq!(get(&s.live_sessions), 0);
    }
}
