//! Typed per-shard counters and gauges. Each shard owns one [`ShardStats`] and is its only
//! writer; any shard may read all of them (relaxed atomics) to answer `/debug/vars`.
//!
//! No string registry and no global: the server hands every shard the list of all shards'
//! stats at start-up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one shard.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Sessions in this shard's table now.
    pub live_sessions: AtomicU64,
    /// Sessions ever opened on this shard.
    pub total_sessions: AtomicU64,
    /// Topics loaded on this shard now.
    pub live_topics: AtomicU64,
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
    /// Envelopes sent to other shards.
    pub mesh_out: AtomicU64,
    /// Doorbell rings on other shards: flushes that pushed envelopes to a destination (each
    /// wakes it at most once), i.e. cross-core hops.
    pub mesh_rings: AtomicU64,
    /// Envelopes waiting in the local backlog because a peer queue was full.
    pub mesh_backlog: AtomicU64,
    /// Sessions ended because their outbound queue overflowed.
    pub slow_consumers: AtomicU64,
    /// Store writes that failed.
    pub store_errors: AtomicU64,
    /// Client requests refused by a rate limit or quota (`limits.*`), answered 429 or 422.
    pub limited: AtomicU64,
}

impl ShardStats {
    /// Adds one to a counter.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    /// Sets a gauge.
    pub fn set(c: &AtomicU64, v: u64) {
        c.store(v, Relaxed);
    }

    /// Sums all shards into one JSON object with the reference server's expvar names where
    /// one exists.
    pub fn to_json(
        all: &[std::sync::Arc<ShardStats>],
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> String {
        let sum = |f: fn(&ShardStats) -> &AtomicU64| -> u64 {
            all.iter().map(|s| f(s).load(Relaxed)).sum()
        };
        let mut m = serde_json::Map::new();
        m.insert("LiveSessions".into(), sum(|s| &s.live_sessions).into());
        m.insert("TotalSessions".into(), sum(|s| &s.total_sessions).into());
        m.insert("LiveTopics".into(), sum(|s| &s.live_topics).into());
        m.insert("Attachments".into(), sum(|s| &s.attachments).into());
        m.insert("LimitedTotal".into(), sum(|s| &s.limited).into());
        m.insert("PendingAuth".into(), sum(|s| &s.pending_auth).into());
        m.insert(
            "IncomingMessagesWebsockTotal".into(),
            sum(|s| &s.frames_in).into(),
        );
        m.insert(
            "OutgoingMessagesWebsockTotal".into(),
            sum(|s| &s.frames_out).into(),
        );
        m.insert(
            "IncomingMessagesGrpcTotal".into(),
            sum(|s| &s.grpc_in).into(),
        );
        m.insert(
            "OutgoingMessagesGrpcTotal".into(),
            sum(|s| &s.grpc_out).into(),
        );
        m.insert(
            "IncomingMessagesLongpollTotal".into(),
            sum(|s| &s.lp_in).into(),
        );
        m.insert(
            "OutgoingMessagesLongpollTotal".into(),
            sum(|s| &s.lp_out).into(),
        );
        m.insert("MeshEnvelopesTotal".into(), sum(|s| &s.mesh_out).into());
        m.insert("MeshRingsTotal".into(), sum(|s| &s.mesh_rings).into());
        m.insert("MeshBacklog".into(), sum(|s| &s.mesh_backlog).into());
        m.insert(
            "SlowConsumersTotal".into(),
            sum(|s| &s.slow_consumers).into(),
        );
        m.insert("StoreErrorsTotal".into(), sum(|s| &s.store_errors).into());
        let per_shard: Vec<serde_json::Value> = all
            .iter()
            .map(|s| {
                serde_json::json!({
                    "sessions": s.live_sessions.load(Relaxed),
                    "topics": s.live_topics.load(Relaxed),
                    "attachments": s.attachments.load(Relaxed),
                })
            })
            .collect();
        m.insert("Shards".into(), per_shard.into());
        m.extend(extra);
        serde_json::Value::Object(m).to_string()
    }
}
