//! The parent's side of a run, common to every workload: start (or attach to) the target,
//! sample it, create accounts, split work over worker processes, run one measurement point
//! and turn the workers' figures into a [`Point`]. Each `wN.rs` holds one workload: its parent
//! flow (`run`) and its worker role (`worker`).

pub mod churn;
pub mod churn_client;
pub mod series;
pub mod soak;
pub mod w0;
pub mod w1;
pub mod w2;
pub mod w3;
pub mod w4;
pub mod w5;
pub mod w6;
pub mod w7;
pub mod w7_cluster;

use std::time::Duration;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{Common, TargetKind, Transport, Workload};
use crate::coord::{unsupported, Want, Workers};
use crate::hist;
use crate::msg::{Account, Cmd, Role, RunCmd, TargetSpec, WorkerSpec, WorkerStats};
use crate::net::worker_sources;
use crate::report::{Point, RunResult, Status};
use crate::sample::Sampler;
use crate::schedule::now_ns;
use crate::server::{Server, Tuning};

/// Most connections one worker process holds (open files are capped at 20,000 per process).
pub const PER_WORKER: usize = 15_000;

pub struct Ctx {
    pub common: Common,
    pub kind: TargetKind,
    pub server: Option<Server>,
    /// W7: the cluster's other nodes (`server` is node 0); sampled together with it.
    pub nodes: Vec<Server>,
    pub sampler: Option<Sampler>,
    pub target: TargetSpec,
    pub mp: MultiProgress,
    pub result: RunResult,
}

fn run_id() -> String {
    let n = now_ns() ^ ((std::process::id() as u64) << 40);
    format!("{:06x}", (n ^ (n >> 24)) & 0xff_ffff)
}

impl Ctx {
    fn new(workload: &str, common: &Common, params: serde_json::Value) -> Ctx {
        let mp = MultiProgress::new();
        if common.smoke {
            mp.set_draw_target(ProgressDrawTarget::hidden());
        }
        Ctx {
            common: common.clone(),
            kind: common.target,
            server: None,
            nodes: Vec::new(),
            sampler: None,
            target: TargetSpec {
                kind: common.target,
                addr: String::new(),
                run_id: run_id(),
                grpc_addr: None,
            },
            mp,
            result: RunResult::new(
                workload,
                common.target.name(),
                params,
                crate::env::collect(),
            ),
        }
    }

    /// Starts (or attaches to) the target and its sampler.
    pub fn start_server(&mut self, t: &Tuning) -> Result<()> {
        self.stop_server();
        let s = match &self.common.attach {
            Some(a) => Server::attach(self.kind, a, self.common.server_pid, &self.common)?,
            None => {
                let sp = self.spinner(&format!("starting {}", self.kind.name()));
                let s = Server::start(self.kind, &self.common, t);
                sp.finish_and_clear();
                s?
            }
        };
        self.target.addr = s.addr.to_string();
        if self.common.transport == Some(Transport::Grpc) {
            let g = s
                .grpc_addr
                .ok_or_else(|| anyhow::anyhow!("{} has no gRPC listener", self.kind.name()))?;
            self.target.grpc_addr = Some(g.to_string());
        }
        self.sampler = s
            .info
            .pid
            .map(|p| Sampler::start(p, Duration::from_millis(250)));
        self.result.servers.push(s.info.clone());
        self.server = Some(s);
        Ok(())
    }

    pub fn stop_server(&mut self) {
        self.sampler = None;
        let nodes = std::mem::take(&mut self.nodes);
        for s in self.server.take().into_iter().chain(nodes) {
            let tag = format!(
                "{}{}",
                s.info.kind,
                s.info
                    .shards
                    .map(|n| format!("-{n}shards"))
                    .unwrap_or_default()
            );
            self.result.server_logs.push((tag, s.log()));
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().expect("server started").addr
    }

    pub fn spinner(&self, msg: &str) -> ProgressBar {
        let b = self.mp.add(ProgressBar::new_spinner());
        b.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("style"));
        b.set_message(msg.to_owned());
        b.enable_steady_tick(Duration::from_millis(120));
        b
    }

    pub fn bar(&self, msg: &str, len: u64) -> ProgressBar {
        let b = self.mp.add(ProgressBar::new(len));
        b.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:36}] {pos}/{len} {msg} [{elapsed}]")
                .expect("style")
                .progress_chars("=> "),
        );
        b.set_prefix(msg.to_owned());
        b.enable_steady_tick(Duration::from_millis(200));
        b
    }

    /// Tinode accounts (or synthetic ones for NATS/MQTT).
    pub async fn accounts(&self, n: usize) -> Result<Vec<Account>> {
        let bar = self.bar("accounts", n as u64);
        let r = crate::accounts::create(&self.target, self.addr(), n, 32, &bar).await;
        bar.finish_and_clear();
        r
    }

    /// Worker processes for `conns` connections.
    pub fn workers_for(&self, conns: usize) -> usize {
        self.common
            .clients
            .unwrap_or_else(|| conns.div_ceil(PER_WORKER))
            .max(1)
    }

    pub fn spec(&self, index: usize, workers: usize, payload: usize, role: Role) -> WorkerSpec {
        WorkerSpec {
            index,
            workers,
            target: self.target.clone(),
            src_ips: worker_sources(index),
            payload,
            spin: self.common.spin,
            role,
        }
    }

    /// Spawns workers and waits for their set-up.
    pub async fn spawn(&mut self, specs: Vec<WorkerSpec>, total: u64) -> Result<Workers> {
        self.result.workers = self.result.workers.max(specs.len());
        let mut w = Workers::spawn(specs, &self.common.client_cores).await?;
        let bar = self.bar("sessions", total);
        let r = w.gather(Want::Ready, &bar).await;
        bar.finish_and_clear();
        match r {
            Ok(_) => Ok(w),
            Err(e) => {
                w.stop().await;
                Err(e)
            }
        }
    }

    /// Runs one point: `rates[i]` is worker i's share of the offered load; `fanout` is the
    /// number of operations one send should produce (subscribers per message).
    pub async fn measure(
        &mut self,
        workers: &mut Workers,
        label: &str,
        offered: f64,
        rates: &[f64],
        op: &str,
        fanout: u64,
    ) -> Result<Point> {
        let warm = (self.common.warmup * 1e9) as u64;
        let dur = (self.common.duration * 1e9) as u64;
        let start = now_ns() + 300_000_000;
        let client_cpu = |pids: &[u32]| -> u64 {
            pids.iter()
                .filter_map(|p| crate::sample::read(*p).ok())
                .map(|s| s.cpu_us)
                .sum()
        };
        let pids = workers.pids();
        let (c0, t0) = (client_cpu(&pids), now_ns());
        let (from, to) = (start + warm, start + warm + dur);
        for (i, r) in rates.iter().enumerate() {
            let phase = if offered > 0.0 {
                (i as f64 * 1e9 / offered) as u64
            } else {
                0
            };
            workers
                .send(
                    i,
                    &Cmd::Run(RunCmd {
                        rate: *r,
                        start_ns: start,
                        from_ns: from,
                        to_ns: to,
                        drain_ms: (self.common.drain * 1000.0) as u64,
                        phase_ns: phase,
                    }),
                )
                .await?;
        }
        let bar = self.bar(label, (warm + dur) / 1_000_000);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:36}] {msg} [{elapsed}]")
                .expect("style")
                .progress_chars("=> "),
        );
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    bar.set_position(now_ns().saturating_sub(start) / 1_000_000);
                }
            })
        };
        let stats = workers.gather(Want::Done, &bar).await;
        ticker.abort();
        bar.finish_and_clear();
        let stats = stats?;
        // The server's CPU at the window's end is interpolated between readings: wait for one
        // after it (workers without a drain, such as http-sol's, report right at the end).
        let settle = to + 300_000_000;
        if self.sampler.is_some() && now_ns() < settle {
            tokio::time::sleep(Duration::from_nanos(settle - now_ns())).await;
        }
        let (c1, t1) = (client_cpu(&pids), now_ns());
        let mut p = self.point(label, offered, op, fanout, &stats, from, to)?;
        p.client_cpu_pct = Some((c1 - c0) as f64 / ((t1 - t0) as f64 / 1e3) * 100.0);
        if self.server.as_mut().is_some_and(|s| !s.alive()) {
            p.error_samples
                .push("the server exited during the run".into());
            p.errors += 1;
        }
        Ok(p)
    }

    /// Merges workers' figures for the window `[from, to)`.
    #[allow(clippy::too_many_arguments)]
    pub fn point(
        &self,
        label: &str,
        offered: f64,
        op: &str,
        fanout: u64,
        stats: &[WorkerStats],
        from: u64,
        to: u64,
    ) -> Result<Point> {
        let window_s = (to - from) as f64 / 1e9;
        let sum = |f: fn(&WorkerStats) -> u64| stats.iter().map(f).sum::<u64>();
        let lat = hist::merge_b64(stats.iter().map(|s| &s.lat))?;
        let ack = hist::merge_b64(stats.iter().map(|s| &s.ack_lat))?;
        let sent = sum(|s| s.sent);
        let ops = sum(|s| s.recv);
        let expected = sent * fanout;
        let mut ticks: Vec<f64> = Vec::new();
        for s in stats {
            if ticks.len() < s.ticks.len() {
                ticks.resize(s.ticks.len(), 0.0);
            }
            for (i, t) in s.ticks.iter().enumerate() {
                ticks[i] += *t as f64 * 4.0;
            }
        }
        // Ticks past the window are the drain; keep the window only.
        ticks.truncate((window_s * 4.0).ceil() as usize);
        let cpu = self.sampler.as_ref().and_then(|s| {
            let a = s.cpu_at(from)?;
            let b = s.cpu_at(to)?;
            Some(b - a)
        });
        let rss = self.sampler.as_ref().and_then(|s| s.mean_rss(from, to));
        let mut samples: Vec<String> = stats
            .iter()
            .flat_map(|s| s.error_samples.iter().cloned())
            .collect();
        samples.truncate(8);
        Ok(Point {
            label: label.to_owned(),
            offered_per_s: offered,
            window_s,
            op: op.to_owned(),
            sent,
            sent_total: sum(|s| s.sent_total),
            expected,
            ops,
            ops_per_s: ops as f64 / window_s,
            latency: hist::summary(&lat),
            ack_latency: (!ack.is_empty()).then(|| hist::summary(&ack)),
            acks: sum(|s| s.acks),
            errors: sum(|s| s.errors),
            drops: expected.saturating_sub(ops),
            dups: sum(|s| s.dups),
            gaps: sum(|s| s.gaps),
            disconnects: sum(|s| s.disconnects),
            reconnects: sum(|s| s.reconnects),
            server_cpu_us: cpu,
            cpu_us_per_op: cpu.filter(|_| ops > 0).map(|c| c / ops as f64),
            server_cpu_pct: cpu.map(|c| c / (window_s * 1e6) * 100.0),
            server_rss_kib: rss,
            client_cpu_pct: None,
            error_samples: samples,
            per_second: ticks,
            extra: sum_extra(stats.iter().map(|s| &s.extra)),
        })
    }
}

/// Sums the workers' `extra` counters key by key (objects of numbers, nested); `Null` if none
/// has any.
fn sum_extra<'a>(xs: impl Iterator<Item = &'a serde_json::Value>) -> serde_json::Value {
    fn add(acc: &mut serde_json::Value, x: &serde_json::Value) {
        match (acc, x) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    add(a.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
            (acc @ serde_json::Value::Null, x) => *acc = x.clone(),
            (acc, x) => {
                if let (Some(a), Some(b)) = (acc.as_u64(), x.as_u64()) {
                    *acc = (a + b).into();
                }
            }
        }
    }
    let mut acc = serde_json::Value::Null;
    for x in xs {
        add(&mut acc, x);
    }
    acc
}

/// Splits `total` into `k` near-equal parts.
pub fn split(total: usize, k: usize) -> Vec<usize> {
    (0..k)
        .map(|i| total / k + usize::from(i < total % k))
        .collect()
}

/// Runs a workload against `common.target` and returns its record (never an `Err`: failures
/// and unsupported targets are statuses).
pub async fn run(w: &Workload) -> RunResult {
    let common = w.common().clone();
    let params = match w {
        Workload::W0(a) => serde_json::to_value(a),
        Workload::W1(a) => serde_json::to_value(a),
        Workload::W2(a) => serde_json::to_value(a),
        Workload::W3(a) => serde_json::to_value(a),
        Workload::W4(a) => serde_json::to_value(a),
        Workload::W5(a) => serde_json::to_value(a),
        Workload::W6(a) => serde_json::to_value(a),
        Workload::W7(a) => serde_json::to_value(a),
        Workload::Soak(a) => serde_json::to_value(a),
        Workload::Churn(a) => serde_json::to_value(a),
    }
    .unwrap_or_default();
    let mut ctx = Ctx::new(w.id(), &common, params);
    let r = match (w, common.transport) {
        (Workload::W3(_) | Workload::W4(_), Some(Transport::Grpc))
            if common.target != TargetKind::Coretalk =>
        {
            Err(anyhow::Error::new(crate::coord::Unsupported(format!(
                "{} has no gRPC transport",
                common.target.name()
            ))))
        }
        (Workload::W3(_) | Workload::W4(_), Some(Transport::Grpc | Transport::Ws) | None)
        | (Workload::W5(_), _) => Ok(()),
        (_, Some(Transport::Ws) | None) => Ok(()),
        (_, Some(t)) => Err(anyhow::anyhow!(
            "--transport {t:?}: {} runs over WebSocket (gRPC: W3 and W4; long polling: W5)",
            w.id()
        )),
    };
    let r = match r {
        Err(e) => Err(e),
        Ok(()) => match w {
            Workload::W0(a) => w0::run(&mut ctx, a).await,
            Workload::W1(a) => w1::run(&mut ctx, a).await,
            Workload::W2(a) => w2::run(&mut ctx, a).await,
            Workload::W3(a) => w3::run(&mut ctx, a).await,
            Workload::W4(a) => w4::run(&mut ctx, a).await,
            Workload::W5(a) => w5::run(&mut ctx, a).await,
            Workload::W6(a) => w6::run(&mut ctx, a).await,
            Workload::W7(a) => w7::run(&mut ctx, a).await,
            Workload::Soak(a) => soak::run(&mut ctx, a).await,
            Workload::Churn(a) => churn::run(&mut ctx, a).await,
        },
    };
    ctx.stop_server();
    let mut res = ctx.result;
    if let Err(e) = r {
        match unsupported(&e) {
            Some(m) => {
                res.status = Status::Unsupported;
                res.message = m;
            }
            None => {
                res.status = Status::Failed;
                res.message = format!("{e:#}");
            }
        }
    } else if res.points.iter().any(|p| p.errors > 0) {
        res.message = "errors during the run (see error samples)".into();
    }
    res
}
