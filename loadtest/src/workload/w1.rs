//! W1: idle authenticated sessions, ramped. At each step the workers open sessions (Tinode:
//! connect, `{hi}`, token `{login}`, `{sub me}`; NATS/MQTT: connect and subscribe to a
//! personal subject) until the total is reached, then the server is left alone for `settle`
//! seconds and its RSS and CPU are read. Bytes per session is the least-squares slope of RSS
//! against sessions; idle CPU is the server's CPU during the settle time at the top step.

use std::cell::Cell;
use std::rc::Rc;

use anyhow::{anyhow, Result};

use super::{split, Ctx};
use crate::adapter::Session;
use crate::cli::W1Args;
use crate::coord::Want;
use crate::engine::{self, Slot, Stats};
use crate::hist;
use crate::msg::{Cmd, Ev, Role, WorkerSpec};
use crate::net::{resolve, Sources};
use crate::schedule::{now_ns, Window};
use crate::server::Tuning;
use crate::worker::{emit, Cmds};

/// Least-squares slope and intercept of y against x.
pub fn fit(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return None;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let b = sxy / sxx;
    Some((b, my - b * mx))
}

pub async fn run(ctx: &mut Ctx, a: &W1Args) -> Result<()> {
    ctx.start_server(&Tuning {
        shards: a.common.shards,
        ..Default::default()
    })?;
    let top = a.steps.iter().copied().max().unwrap_or(0);
    let n_acc = a.accounts.unwrap_or(top).clamp(1, top.max(1));
    let accounts = ctx.accounts(n_acc).await?;
    let k = ctx.workers_for(top);
    // Worker i uses accounts i, i+k, i+2k… (cycled if there are fewer accounts than sessions).
    let specs = (0..k)
        .map(|i| {
            let mine: Vec<_> = accounts.iter().skip(i).step_by(k).cloned().collect();
            let mine = if mine.is_empty() {
                accounts.clone()
            } else {
                mine
            };
            ctx.spec(
                i,
                k,
                0,
                Role::Idle {
                    accounts: mine,
                    concurrency: a.concurrency,
                },
            )
        })
        .collect();
    let mut w = ctx.spawn(specs, 0).await?;
    let settle_ns = (a.settle * 1e9) as u64;
    // Step 0: the server with no sessions.
    let mut ramp = Vec::new();
    let t0 = now_ns();
    tokio::time::sleep(std::time::Duration::from_nanos(
        settle_ns.min(2_000_000_000),
    ))
    .await;
    if let Some(rss) = ctx.sampler.as_ref().and_then(|s| s.mean_rss(t0, now_ns())) {
        ramp.push(serde_json::json!({"sessions": 0, "rss_kib": rss}));
    }
    let mut steps = a.steps.clone();
    steps.sort_unstable();
    for &step in &steps {
        let parts = split(step, k);
        let g0 = now_ns();
        for (i, n) in parts.iter().enumerate() {
            w.send(i, &Cmd::Grow { sessions: *n }).await?;
        }
        let bar = ctx.bar(&format!("{step} sessions"), step as u64);
        let stats = w.gather(Want::Ready, &bar).await;
        bar.finish_and_clear();
        let stats = match stats {
            Ok(s) => s,
            Err(e) => {
                w.stop().await;
                return Err(e);
            }
        };
        let g1 = now_ns();
        tokio::time::sleep(std::time::Duration::from_nanos(settle_ns)).await;
        let s0 = g1 + settle_ns / 3;
        let s1 = now_ns();
        // Let the sampler take a reading after s1, so CPU at s1 can be interpolated.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut p = ctx.point(
            &format!("{step} sessions"),
            0.0,
            "session",
            1,
            &stats,
            g0,
            g1,
        )?;
        let held: usize = stats.iter().map(|s| s.held).sum();
        // The set-up figures were measured during the grow; CPU per op = CPU per new session.
        p.ops_per_s = p.ops as f64 / ((g1 - g0) as f64 / 1e9);
        p.drops = 0;
        let (idle_pct, rss) = match &ctx.sampler {
            Some(s) => (
                s.cpu_at(s1)
                    .zip(s.cpu_at(s0))
                    .map(|(b, a)| (b - a) / ((s1 - s0) as f64 / 1e3) * 100.0),
                s.mean_rss(s0, s1),
            ),
            None => (None, None),
        };
        p.server_rss_kib = rss;
        p.extra = serde_json::json!({
            "held": held,
            "idle_cpu_pct": idle_pct,
            "grow_s": (g1 - g0) as f64 / 1e9,
        });
        ramp.push(serde_json::json!({
            "sessions": held,
            "rss_kib": rss,
            "idle_cpu_pct": idle_pct,
        }));
        ctx.result.points.push(p);
    }
    w.stop().await;
    // The first sessions pay one-off costs (allocator arenas, caches): fit over the steps with
    // sessions when there are two or more, else include the empty server.
    let pts: Vec<(f64, f64)> = ramp
        .iter()
        .filter_map(|r| Some((r["sessions"].as_f64()?, r["rss_kib"].as_f64()? * 1024.0)))
        .collect();
    let loaded: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.0 > 0.0).collect();
    let use_pts = if loaded.len() >= 2 { loaded } else { pts };
    let xs: Vec<f64> = use_pts.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = use_pts.iter().map(|p| p.1).collect();
    let slope = fit(&xs, &ys);
    let idle_top = ramp.last().and_then(|r| r["idle_cpu_pct"].as_f64());
    ctx.result.summary = serde_json::json!({
        "bytes_per_session": slope.map(|s| s.0),
        "rss_intercept_kib": slope.map(|s| s.1 / 1024.0),
        "idle_cpu_pct_at_top": idle_top,
        "ramp": ramp,
    });
    Ok(())
}

pub async fn worker(spec: &WorkerSpec, cmds: &mut Cmds) -> Result<()> {
    let Role::Idle {
        accounts,
        concurrency,
    } = &spec.role
    else {
        return Err(anyhow!("not an idle role"));
    };
    if accounts.is_empty() {
        return Err(anyhow!("no accounts"));
    }
    let dst = resolve(&spec.target.addr)?;
    let src = Rc::new(Sources::new(&spec.src_ips, dst));
    let st = Stats::shared();
    let stop = Rc::new(Cell::new(false));
    let slots: Rc<std::cell::RefCell<Vec<Rc<Slot>>>> = Rc::default();
    emit(&Ev::Ready(st.borrow().snapshot(0)));
    loop {
        match cmds.next().await? {
            Cmd::Grow { sessions } => {
                st.borrow_mut().reset(Window {
                    from_ns: 0,
                    to_ns: u64::MAX,
                });
                let have = slots.borrow().len();
                let want = sessions.saturating_sub(have);
                st.borrow_mut().setup_done = 0;
                let pstop = Rc::new(Cell::new(false));
                engine::spawn_progress(st.clone(), "setup", want as u64, pstop.clone());
                let next = Rc::new(Cell::new(have));
                let mut tasks = Vec::new();
                for _ in 0..(*concurrency).clamp(1, want.max(1)) {
                    let (st, stop, slots, next, src) = (
                        st.clone(),
                        stop.clone(),
                        slots.clone(),
                        next.clone(),
                        src.clone(),
                    );
                    let target = spec.target.clone();
                    let accounts = accounts.clone();
                    tasks.push(tokio::task::spawn_local(async move {
                        loop {
                            let i = next.get();
                            if i >= sessions {
                                return;
                            }
                            next.set(i + 1);
                            let acct = &accounts[i % accounts.len()];
                            let t0 = now_ns();
                            match Session::open(&target, dst, src.pick(), acct).await {
                                Ok(s) => {
                                    let (sink, rd) = s.split();
                                    let slot = Slot::new(sink);
                                    engine::spawn_reader(
                                        st.clone(),
                                        slot.clone(),
                                        rd,
                                        None,
                                        stop.clone(),
                                    );
                                    slots.borrow_mut().push(slot);
                                    let mut x = st.borrow_mut();
                                    x.sent += 1;
                                    x.completed(t0);
                                    x.setup_done += 1;
                                }
                                Err(e) => {
                                    let mut x = st.borrow_mut();
                                    x.sent += 1;
                                    x.error(format!("session set-up: {e:#}"));
                                    x.setup_done += 1;
                                }
                            }
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
                pstop.set(true);
                let held = slots
                    .borrow()
                    .iter()
                    .filter(|s| s.sink.borrow().is_some())
                    .count();
                let mut snap = st.borrow().snapshot(held);
                if snap.lat.is_empty() {
                    snap.lat = hist::to_b64(&hist::new());
                }
                emit(&Ev::Ready(snap));
            }
            Cmd::Run(_) => return Err(anyhow!("W1 has no run points")),
            Cmd::Stop => {
                stop.set(true);
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fits_a_line() {
        let (b, a) = super::fit(&[0.0, 1.0, 2.0], &[1.0, 3.0, 5.0]).unwrap();
        assert!((b - 2.0).abs() < 1e-9 && (a - 1.0).abs() < 1e-9);
    }
}
