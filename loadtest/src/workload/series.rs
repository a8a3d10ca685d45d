//! What the soak and churn modes read off the server over time: its tables from `/debug/vars`
//! (live sessions, topics, attachments, mimalloc's committed heap), a recorder that reads them
//! every few seconds during a run, the CSV time series that joins them with the sampler's RSS
//! and CPU, and the RSS slope (least squares, KiB per minute) over a window.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::net::get_json;
use crate::sample::Sampler;
use crate::schedule::now_ns;

/// The server's tables as `/debug/vars` reports them.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Tables {
    pub sessions: u64,
    pub topics: u64,
    pub attachments: u64,
    pub pending_auth: u64,
    pub mesh_backlog: u64,
    pub heap_committed: u64,
    pub rss: u64,
}

/// Reads `/debug/vars` once.
pub async fn tables(addr: SocketAddr) -> Result<Tables> {
    let v = tokio::time::timeout(Duration::from_secs(10), get_json(addr, "/debug/vars"))
        .await
        .map_err(|_| anyhow!("/debug/vars did not answer within 10 s"))??;
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64());
    Ok(Tables {
        sessions: n("LiveSessions").ok_or_else(|| anyhow!("/debug/vars has no LiveSessions"))?,
        topics: n("LiveTopics").ok_or_else(|| anyhow!("/debug/vars has no LiveTopics"))?,
        attachments: n("Attachments").unwrap_or(0),
        pending_auth: n("PendingAuth").unwrap_or(0),
        mesh_backlog: n("MeshBacklog").unwrap_or(0),
        heap_committed: n("MemoryHeapCommitted").unwrap_or(0),
        rss: n("MemoryRss").unwrap_or(0),
    })
}

/// One reading of the tables.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub t_ns: u64,
    pub tables: Tables,
}

/// Reads the tables every `every` in a background task until stopped.
pub struct Recorder {
    rows: Arc<Mutex<Vec<Row>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub fn start(addr: SocketAddr, every: Duration) -> Recorder {
        let rows: Arc<Mutex<Vec<Row>>> = Arc::default();
        let r = rows.clone();
        let task = tokio::spawn(async move {
            loop {
                let t_ns = now_ns();
                if let Ok(tables) = tables(addr).await {
                    r.lock().expect("rows").push(Row { t_ns, tables });
                }
                tokio::time::sleep(every.saturating_sub(Duration::from_nanos(now_ns() - t_ns)))
                    .await;
            }
        });
        Recorder { rows, task }
    }

    pub fn stop(self) -> Vec<Row> {
        self.task.abort();
        let rows = self.rows.lock().expect("rows").clone();
        rows
    }
}

/// The time series as CSV, one line per row: seconds since `t0`, the sampler's RSS at the
/// row and the server's CPU since the previous row (% of one core), then the tables.
pub fn csv(rows: &[Row], sampler: Option<&Sampler>, t0: u64) -> String {
    let mut out = String::from(
        "t_s,rss_kib,cpu_pct,live_sessions,live_topics,attachments,pending_auth,heap_committed_kib\n",
    );
    let mut prev: Option<(u64, f64)> = None;
    for r in rows {
        let rss = sampler
            .and_then(|s| s.mean_rss(r.t_ns.saturating_sub(500_000_000), r.t_ns + 500_000_000))
            .unwrap_or(r.tables.rss as f64 / 1024.0);
        let cpu = sampler.and_then(|s| s.cpu_at(r.t_ns));
        let pct = match (prev, cpu) {
            (Some((t, c)), Some(c1)) if r.t_ns > t => {
                format!("{:.2}", (c1 - c) / ((r.t_ns - t) as f64 / 1e3) * 100.0)
            }
            _ => String::new(),
        };
        prev = cpu.map(|c| (r.t_ns, c));
        let t = &r.tables;
        out.push_str(&format!(
            "{:.1},{rss:.0},{pct},{},{},{},{},{}\n",
            r.t_ns.saturating_sub(t0) as f64 / 1e9,
            t.sessions,
            t.topics,
            t.attachments,
            t.pending_auth,
            t.heap_committed / 1024,
        ));
    }
    out
}

/// RSS slope over `[from, to]` from the sampler's readings, KiB per minute (least squares).
pub fn rss_slope_kib_per_min(s: &Sampler, from_ns: u64, to_ns: u64) -> Option<f64> {
    let v = s.between(from_ns, to_ns);
    let xs: Vec<f64> = v.iter().map(|p| p.t_ns as f64 / 60e9).collect();
    let ys: Vec<f64> = v.iter().map(|p| p.rss_kib as f64).collect();
    super::w1::fit(&xs, &ys).map(|(b, _)| b)
}

/// Server CPU over `[from, to]` in % of one core.
pub fn cpu_pct(s: &Sampler, from_ns: u64, to_ns: u64) -> Option<f64> {
    let (a, b) = (s.cpu_at(from_ns)?, s.cpu_at(to_ns)?);
    Some((b - a) / ((to_ns - from_ns) as f64 / 1e3) * 100.0)
}

/// Waits a little over `d`, so the sampler has a reading after the window's end.
pub async fn sleep_past(d: Duration) {
    tokio::time::sleep(d + Duration::from_millis(300)).await;
}
