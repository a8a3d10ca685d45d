//! Results: the record of one run (every figure, the environment, the server's exact command
//! line and configuration), the summary table printed at the end, and the results directory
//! `loadtest/results/<timestamp>-<workload>-<target>/` holding `result.json`, the plots and the
//! server's log.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::env::EnvInfo;
use crate::hist::LatSummary;
use crate::server::ServerInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Unsupported,
    Failed,
}

/// One measurement point (one offered rate, one shard count, one ramp step…).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Point {
    pub label: String,
    /// Offered load (sends, arrivals or requests per second).
    pub offered_per_s: f64,
    pub window_s: f64,
    /// What one operation is: "delivery", "echo", "session", "response".
    pub op: String,
    /// Sends scheduled in the window that went out.
    pub sent: u64,
    /// All sends of the point, warm-up and window.
    pub sent_total: u64,
    /// Operations expected in the window (sent × fan-out).
    pub expected: u64,
    /// Operations completed in the window (deliveries received, sessions established).
    pub ops: u64,
    pub ops_per_s: f64,
    /// Latency from the scheduled time to completion.
    pub latency: LatSummary,
    /// Tinode `{pub}` → `{ctrl 202}` latency from the scheduled time.
    pub ack_latency: Option<LatSummary>,
    pub acks: u64,
    pub errors: u64,
    /// expected − ops (never negative).
    pub drops: u64,
    pub dups: u64,
    pub gaps: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    /// Server CPU over the window, µs (utime + stime).
    pub server_cpu_us: Option<f64>,
    pub cpu_us_per_op: Option<f64>,
    /// Server CPU as a percentage of one core.
    pub server_cpu_pct: Option<f64>,
    pub server_rss_kib: Option<f64>,
    /// CPU of all client workers over the whole point (warm-up, window, drain) as a
    /// percentage of one core: near 100 × client cores means the client is the bottleneck.
    pub client_cpu_pct: Option<f64>,
    pub error_samples: Vec<String>,
    /// In-window operations per second, by 250 ms tick of receipt time.
    pub per_second: Vec<f64>,
    /// Workload-specific figures (W1 sessions, W6 envelopes…).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub workload: String,
    pub target: String,
    pub status: Status,
    pub message: String,
    pub started_utc: String,
    pub params: serde_json::Value,
    pub env: EnvInfo,
    pub servers: Vec<ServerInfo>,
    pub workers: usize,
    pub points: Vec<Point>,
    /// Workload-level figures (W1 bytes per session, W6 efficiency…).
    pub summary: serde_json::Value,
    #[serde(skip)]
    pub dir: Option<PathBuf>,
    #[serde(skip)]
    pub server_logs: Vec<(String, String)>,
    /// Extra files for the results directory (name, text): the soak's `series.csv`.
    #[serde(skip)]
    pub files: Vec<(String, String)>,
}

impl RunResult {
    pub fn new(workload: &str, target: &str, params: serde_json::Value, env: EnvInfo) -> Self {
        RunResult {
            workload: workload.into(),
            target: target.into(),
            status: Status::Ok,
            message: String::new(),
            started_utc: utc_stamp(std::time::SystemTime::now(), true),
            params,
            env,
            servers: Vec::new(),
            workers: 0,
            points: Vec::new(),
            summary: serde_json::Value::Null,
            dir: None,
            server_logs: Vec::new(),
            files: Vec::new(),
        }
    }

    /// The point whose figures `compare` uses: the one with the most operations per second.
    pub fn best(&self) -> Option<&Point> {
        self.points
            .iter()
            .max_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s))
    }

    pub fn exit_code(&self) -> u8 {
        match self.status {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Unsupported => 3,
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (or `YYYYMMDD-HHMMSS` for directory names), UTC.
pub fn utc_stamp(t: std::time::SystemTime, iso: bool) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    if iso {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}")
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map(|x| format!("{x:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

fn lat(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1}ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.0}µs")
    }
}

/// The summary table.
pub fn table(r: &RunResult) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{} against {}: {}{}",
        r.workload.to_uppercase(),
        r.target,
        match r.status {
            Status::Ok => "ok",
            Status::Unsupported => "UNSUPPORTED",
            Status::Failed => "FAILED",
        },
        if r.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.message)
        }
    );
    if crate::cli::TargetKind::parse(&r.target).is_some_and(|k| k.is_sol()) {
        let _ = writeln!(
            s,
            "({} is the speed of light: the harness's minimal peer moving the same frames over \
             the same sockets; coretalk's figures over these are its cost over the speed of light)",
            r.target
        );
    }
    if r.points.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "{:<18} {:>10} {:>11} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>9} {:>7} {:>9} {:>7}",
        "point",
        "offered/s",
        "ops/s",
        "p50",
        "p99",
        "p99.9",
        "max",
        "errors",
        "drops",
        "reconn",
        "cpu µs/op",
        "cpu %",
        "rss MiB",
        "cli %"
    );
    for p in &r.points {
        let _ = writeln!(
            s,
            "{:<18} {:>10.0} {:>11.0} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>9} {:>7} {:>9} {:>7}",
            p.label,
            p.offered_per_s,
            p.ops_per_s,
            lat(p.latency.p50_us),
            lat(p.latency.p99_us),
            lat(p.latency.p999_us),
            lat(p.latency.max_us),
            p.errors,
            p.drops,
            p.reconnects,
            opt(p.cpu_us_per_op, 2),
            opt(p.server_cpu_pct, 1),
            opt(p.server_rss_kib.map(|k| k / 1024.0), 1),
            opt(p.client_cpu_pct, 0),
        );
        if let Some(a) = &p.ack_latency {
            if a.count > 0 {
                let _ = writeln!(
                    s,
                    "{:<18} pub→ctrl 202: p50 {} p99 {} p99.9 {} max {} ({} acks)",
                    "",
                    lat(a.p50_us),
                    lat(a.p99_us),
                    lat(a.p999_us),
                    lat(a.max_us),
                    p.acks
                );
            }
        }
        for e in p.error_samples.iter().take(3) {
            let _ = writeln!(s, "{:<18} error: {e}", "");
        }
    }
    if !r.summary.is_null() {
        let _ = writeln!(s, "summary: {}", r.summary);
    }
    s
}

/// Writes `result.json`, the plots and server logs into a fresh results directory.
pub fn write_dir(r: &mut RunResult, base: &Path) -> Result<PathBuf> {
    let name = format!(
        "{}-{}-{}",
        utc_stamp(std::time::SystemTime::now(), false),
        r.workload,
        r.target
    );
    let mut dir = base.join(&name);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{name}-{n}"));
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("result.json"), serde_json::to_string_pretty(r)?)?;
    for (tag, log) in &r.server_logs {
        if !log.is_empty() {
            std::fs::write(dir.join(format!("server-{tag}.log")), log)?;
        }
    }
    for (name, text) in &r.files {
        std::fs::write(dir.join(name), text)?;
    }
    if let Err(e) = crate::plot::all(r, &dir) {
        eprintln!("coretalk-load: plots not written: {e:#}");
    }
    r.dir = Some(dir.clone());
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(utc_stamp(t, true), "2023-11-14T22:13:20Z");
        assert_eq!(utc_stamp(t, false), "20231114-221320");
    }
}
