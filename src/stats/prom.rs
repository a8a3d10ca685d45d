//! `/metrics`: the Prometheus text exposition format (version 0.0.4), one series per shard
//! (`shard` label) for what a shard owns, unlabelled for what the process shares (the store
//! writer, the hash pool, memory).
//!
//! Every family is announced with `# HELP` and `# TYPE` before its samples; histograms carry
//! cumulative `_bucket{le}` series ending in `+Inf`, `_sum` and `_count`, with the reference's
//! bounds (request latency in milliseconds, message size in bytes).

use std::fmt::Write as _;

use super::process::Usage;
use super::{get, HistogramSnapshot, Scrape, ShardStats, SESSION_KINDS, TRANSPORTS};

/// The text being built.
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP coretalk_{name} {help}");
        let _ = writeln!(self.0, "# TYPE coretalk_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.0, "coretalk_{name}");
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                // Label values here are digits and fixed words: nothing to escape.
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// One family with one sample per shard.
    fn per_shard<T: std::fmt::Display>(
        &mut self,
        s: &Scrape<'_>,
        name: &str,
        kind: &str,
        help: &str,
        f: impl Fn(&ShardStats) -> T,
    ) {
        self.family(name, kind, help);
        for (i, x) in s.shards.iter().enumerate() {
            self.sample(name, &[("shard", &i.to_string())], f(x));
        }
    }

    fn histogram(&mut self, name: &str, shard: &str, h: &HistogramSnapshot) {
        let mut cum = 0;
        for (i, c) in h.counts.iter().enumerate() {
            cum += c;
            let le = match h.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".to_owned(),
            };
            self.sample(
                &format!("{name}_bucket"),
                &[("shard", shard), ("le", &le)],
                cum,
            );
        }
        self.sample(&format!("{name}_sum"), &[("shard", shard)], h.sum);
        self.sample(&format!("{name}_count"), &[("shard", shard)], h.count);
    }
}

/// Renders every metric.
pub fn render(s: &Scrape<'_>, usage: &Usage) -> String {
    let mut t = Text(String::with_capacity(16 << 10));
    let shards: Vec<String> = (0..s.shards.len()).map(|i| i.to_string()).collect();

    t.family(
        "build_info",
        "gauge",
        "The running build: coretalk version and commit, protocol version.",
    );
    // The version text holds a space and parentheses, which label values allow.
    t.sample(
        "build_info",
        &[("version", &s.process.build.replace('"', "'"))],
        1,
    );
    t.family(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    t.sample("uptime_seconds", &[], s.process.started.elapsed().as_secs());

    t.family("sessions", "gauge", "Live sessions by kind.");
    for (i, x) in s.shards.iter().enumerate() {
        for (k, kind) in SESSION_KINDS.iter().enumerate() {
            t.sample(
                "sessions",
                &[("shard", &shards[i]), ("kind", kind)],
                get(&x.sessions_by_kind[k]),
            );
        }
    }
    t.per_shard(
        s,
        "sessions_opened_total",
        "counter",
        "Sessions opened.",
        |x| get(&x.total_sessions),
    );
    t.per_shard(s, "topics", "gauge", "Topics loaded.", |x| {
        get(&x.live_topics)
    });
    t.per_shard(s, "topics_loaded_total", "counter", "Topic loads.", |x| {
        get(&x.total_topics)
    });
    t.per_shard(
        s,
        "attachments",
        "gauge",
        "Sessions attached to this shard's topics (refreshed every second).",
        |x| get(&x.attachments),
    );
    for (dir, help, pick) in [
        ("in", "Client messages received, by transport.", 0usize),
        ("out", "Messages queued to clients, by transport.", 1),
    ] {
        let name = format!("messages_{dir}_total");
        t.family(&name, "counter", help);
        for (i, x) in s.shards.iter().enumerate() {
            let m = x.messages();
            for (k, tr) in TRANSPORTS.iter().enumerate() {
                let v = if pick == 0 { m[k].0 } else { m[k].1 };
                t.sample(&name, &[("shard", &shards[i]), ("transport", tr)], v);
            }
        }
    }
    t.family(
        "ctrl_replies_total",
        "counter",
        "{ctrl} replies carrying a request id, by code class.",
    );
    for (i, x) in s.shards.iter().enumerate() {
        for (k, class) in ["2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            t.sample(
                "ctrl_replies_total",
                &[("shard", &shards[i]), ("class", class)],
                get(&x.ctrl_codes[k]),
            );
        }
    }
    t.family(
        "request_latency_milliseconds",
        "histogram",
        "Milliseconds from a request's receipt to its {ctrl} reply (the reference's RequestLatency bounds).",
    );
    for (i, x) in s.shards.iter().enumerate() {
        t.histogram(
            "request_latency_milliseconds",
            &shards[i],
            &x.request_latency.snapshot(),
        );
    }
    t.family(
        "outgoing_message_bytes",
        "histogram",
        "Bytes of each message queued to a client (the reference's OutgoingMessageSize bounds).",
    );
    for (i, x) in s.shards.iter().enumerate() {
        t.histogram(
            "outgoing_message_bytes",
            &shards[i],
            &x.outgoing_size.snapshot(),
        );
    }
    t.per_shard(
        s,
        "mesh_envelopes_total",
        "counter",
        "Envelopes sent to other shards.",
        |x| get(&x.mesh_out),
    );
    t.per_shard(
        s,
        "mesh_rings_total",
        "counter",
        "Doorbell rings on other shards (cross-core hops).",
        |x| get(&x.mesh_rings),
    );
    t.per_shard(
        s,
        "mesh_rewakes_total",
        "counter",
        "Mesh wake-ups the runtime lost, found and repeated by the doorbell watchdog (expected 0).",
        |x| get(&x.mesh_rewakes),
    );
    t.per_shard(
        s,
        "mesh_backlog",
        "gauge",
        "Envelopes held back because a peer's inbox was full.",
        |x| get(&x.mesh_backlog),
    );
    t.per_shard(
        s,
        "mesh_inbox",
        "gauge",
        "Envelopes waiting in this shard's inbox (refreshed every second).",
        |x| get(&x.mesh_inbox),
    );
    t.per_shard(
        s,
        "slow_consumers_total",
        "counter",
        "Sessions ended because their outbound queue overflowed.",
        |x| get(&x.slow_consumers),
    );
    t.per_shard(
        s,
        "rate_limited_total",
        "counter",
        "Requests refused by a rate limit or quota (429, 422).",
        |x| get(&x.limited),
    );
    t.per_shard(
        s,
        "malformed_total",
        "counter",
        "Client messages that could not be decoded.",
        |x| get(&x.malformed),
    );
    t.per_shard(
        s,
        "accept_errors_total",
        "counter",
        "Failed accepts (mostly the open-file limit).",
        |x| get(&x.accept_errors),
    );
    t.per_shard(
        s,
        "connections_refused_total",
        "counter",
        "Connections refused by the front door (per-address pending limit), answered 503.",
        |x| get(&x.conn_refused),
    );
    t.per_shard(
        s,
        "connections_shed_total",
        "counter",
        "Unauthenticated connections cut to make room (pending limit, descriptor limit).",
        |x| get(&x.conn_shed),
    );
    t.per_shard(
        s,
        "connections_pending",
        "gauge",
        "Connections still reading their request head or handshake.",
        |x| get(&x.conn_pending),
    );
    t.per_shard(
        s,
        "pending_auth",
        "gauge",
        "Logins and sign-ups waiting for the hash pool or the store.",
        |x| get(&x.pending_auth),
    );
    t.per_shard(
        s,
        "shard_accepting",
        "gauge",
        "1 while the shard accepts connections.",
        |x| get(&x.accepting),
    );
    t.per_shard(
        s,
        "store_errors_total",
        "counter",
        "Store reads and writes that failed.",
        ShardStats::store_errors,
    );
    t.per_shard(
        s,
        "journal_sync_age_seconds",
        "gauge",
        "Seconds the shard's journal write and sync in progress has lasted (0: none).",
        |x| x.journal_sync.age().as_secs_f64(),
    );
    t.per_shard(
        s,
        "journal_stalls_total",
        "counter",
        "Journal syncs that lasted store.stall_warn_ms or more (counted once seen).",
        |x| x.journal_sync.stalls(),
    );
    let v = &s.services;
    t.family(
        "store_commit_age_seconds",
        "gauge",
        "Seconds the store thread's group commit in progress has lasted (0: none).",
    );
    t.sample(
        "store_commit_age_seconds",
        &[],
        v.store_commit_age_us as f64 / 1e6,
    );
    for (name, kind, help, value) in [
        (
            "store_stalls_total",
            "counter",
            "Store group commits that lasted store.stall_warn_ms or more (counted once seen).",
            v.store_stalls,
        ),
        (
            "store_queue",
            "gauge",
            "Write batches queued for the store thread.",
            v.store_queued,
        ),
        (
            "store_commits_total",
            "counter",
            "Group commits.",
            v.store_commits,
        ),
        (
            "store_batches_total",
            "counter",
            "Write batches committed.",
            v.store_batches,
        ),
        (
            "store_ops_total",
            "counter",
            "Write operations committed.",
            v.store_ops,
        ),
        (
            "hash_queue",
            "gauge",
            "bcrypt jobs queued for the hash threads.",
            v.hash_queued,
        ),
        (
            "memory_rss_bytes",
            "gauge",
            "Resident memory of the process.",
            usage.rss,
        ),
        (
            "memory_heap_committed_bytes",
            "gauge",
            "Memory the allocator (mimalloc) holds committed.",
            usage.heap_committed,
        ),
        (
            "memory_heap_peak_bytes",
            "gauge",
            "The most memory the allocator has held committed.",
            usage.heap_peak,
        ),
        ("threads", "gauge", "Threads of the process.", usage.threads),
    ] {
        t.family(name, kind, help);
        t.sample(name, &[], value);
    }
    for (name, kind, help, samples) in super::cluster::families(s.cluster.as_ref()) {
        t.family(name, kind, help);
        for (labels, value) in samples {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            t.sample(name, &labels, value);
        }
    }
    t.0
}
