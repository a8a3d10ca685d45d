//! `/debug/vars`: one JSON object summed over shards, carrying every key the reference server
//! publishes (tinode-protocol.md §7) with the same meaning and JSON type, so that Tinode's own
//! exporter (`monitoring/exporter`) reads it, plus coretalk's own figures.
//!
//! Keys without a counterpart here say so by their value: no file endpoints (`FileUploadsTotal`
//! and `FileDownloadsTotal` stay 0), no leader (`ClusterLeader` is 0: PostgreSQL decides
//! membership); `TotalClusterNodes` and `LiveClusterNodes` count node rows and nodes up on a
//! cluster node, 0 standalone, as the exporter reports for a reference server without a
//! cluster; the cluster's own keys are in `cluster.rs`. `memstats` holds the Go names the exporter reads, filled from the
//! allocator and `/proc`; `NumGoroutines` counts the process's threads.

use serde_json::{json, Map, Value};

use super::process::Usage;
use super::{get, HistogramSnapshot, Scrape};

/// The reference's histogram object: `{count, sum, count_per_bucket, bounds}`, with one more
/// bucket than bounds.
fn histogram(h: Option<HistogramSnapshot>, bounds: &[u64]) -> Value {
    let h = h.unwrap_or(HistogramSnapshot {
        bounds: &[],
        counts: vec![0; bounds.len() + 1],
        count: 0,
        sum: 0.0,
    });
    json!({
        "count": h.count,
        "sum": h.sum,
        "count_per_bucket": h.counts,
        "bounds": bounds.iter().map(|&b| b as f64).collect::<Vec<f64>>(),
    })
}

/// Renders the object.
pub fn render(s: &Scrape<'_>, usage: &Usage) -> String {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    // The reference's keys.
    put(
        "memstats",
        json!({
            "Alloc": usage.heap_committed,
            "HeapAlloc": usage.heap_committed,
            "HeapSys": usage.heap_committed,
            "Sys": usage.rss,
        }),
    );
    put("cmdline", json!(s.process.cmdline));
    put(
        "Uptime",
        json!(s.process.started.elapsed().as_secs_f64().floor()),
    );
    put("NumGoroutines", json!(usage.threads));
    put("Version", json!(s.process.version));
    put("LiveSessions", json!(s.sum(|x| get(&x.live_sessions))));
    put("TotalSessions", json!(s.sum(|x| get(&x.total_sessions))));
    put("LiveTopics", json!(s.sum(|x| get(&x.live_topics))));
    put("TotalTopics", json!(s.sum(|x| get(&x.total_topics))));
    let names = [("Websock", 0usize), ("Longpoll", 1), ("Grpc", 2)];
    for (name, i) in names {
        put(
            &format!("IncomingMessages{name}Total"),
            json!(s.sum(|x| x.messages()[i].0)),
        );
        put(
            &format!("OutgoingMessages{name}Total"),
            json!(s.sum(|x| x.messages()[i].1)),
        );
    }
    put("FileDownloadsTotal", json!(0));
    put("FileUploadsTotal", json!(0));
    for (i, class) in ["2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
        put(
            &format!("CtrlCodesTotal{class}"),
            json!(s.sum(|x| get(&x.ctrl_codes[i]))),
        );
    }
    put("ClusterLeader", json!(0));
    put(
        "RequestLatency",
        histogram(
            s.merged(|x| &x.request_latency),
            super::histogram::LATENCY_BOUNDS_MS,
        ),
    );
    put(
        "OutgoingMessageSize",
        histogram(
            s.merged(|x| &x.outgoing_size),
            super::histogram::SIZE_BOUNDS,
        ),
    );
    // coretalk's own.
    put("Attachments", json!(s.sum(|x| get(&x.attachments))));
    put("LimitedTotal", json!(s.sum(|x| get(&x.limited))));
    put("MalformedTotal", json!(s.sum(|x| get(&x.malformed))));
    put("AcceptErrorsTotal", json!(s.sum(|x| get(&x.accept_errors))));
    put(
        "ConnectionsRefusedTotal",
        json!(s.sum(|x| get(&x.conn_refused))),
    );
    put("ConnectionsShedTotal", json!(s.sum(|x| get(&x.conn_shed))));
    put("ConnectionsPending", json!(s.sum(|x| get(&x.conn_pending))));
    put("PendingAuth", json!(s.sum(|x| get(&x.pending_auth))));
    put("MeshEnvelopesTotal", json!(s.sum(|x| get(&x.mesh_out))));
    put("MeshRingsTotal", json!(s.sum(|x| get(&x.mesh_rings))));
    put("MeshRewakesTotal", json!(s.sum(|x| get(&x.mesh_rewakes))));
    put("MeshBacklog", json!(s.sum(|x| get(&x.mesh_backlog))));
    put("MeshInbox", json!(s.sum(|x| get(&x.mesh_inbox))));
    put(
        "SlowConsumersTotal",
        json!(s.sum(|x| get(&x.slow_consumers))),
    );
    put("StoreErrorsTotal", json!(s.sum(|x| x.store_errors())));
    let v = &s.services;
    put("StoreCommitsTotal", json!(v.store_commits));
    put("StoreBatchesTotal", json!(v.store_batches));
    put("StoreOpsTotal", json!(v.store_ops));
    put("StoreReadsBehindTotal", json!(v.store_reads_behind));
    put("StoreQueued", json!(v.store_queued));
    put("StoreCommitAge", json!(v.store_commit_age_us as f64 / 1e6));
    put("StoreStallsTotal", json!(v.store_stalls));
    let journal_age = s
        .shards
        .iter()
        .map(|x| x.journal_sync.age().as_secs_f64())
        .fold(0.0, f64::max);
    put("JournalSyncAge", json!(journal_age));
    put(
        "JournalStallsTotal",
        json!(s.sum(|x| x.journal_sync.stalls())),
    );
    put("HashQueued", json!(v.hash_queued));
    put("MemoryRss", json!(usage.rss));
    put("MemoryHeapCommitted", json!(usage.heap_committed));
    let shards: Vec<Value> = s
        .shards
        .iter()
        .map(|x| {
            json!({
                "sessions": get(&x.live_sessions),
                "topics": get(&x.live_topics),
                "attachments": get(&x.attachments),
            })
        })
        .collect();
    put("Shards", Value::Array(shards));
    super::cluster::expvar(s.cluster.as_ref(), &mut m);
    Value::Object(m).to_string()
}

/// The reference's integer form of a version: `0.25` → 2500, `1.2.3` → 10203.
pub fn version_number(v: &str) -> u64 {
    let mut parts = v
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    major * 10000 + minor * 100 + patch
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_are_numbered_as_the_reference_does() {
        assert_eq!(super::version_number("0.25"), 2500);
        assert_eq!(super::version_number("0.25.1"), 2501);
        assert_eq!(super::version_number("1.2.3"), 10203);
    }
}
