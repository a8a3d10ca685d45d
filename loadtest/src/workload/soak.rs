//! Soak: `sessions` authenticated idle sessions (W1's set-up: connect, `{hi}`, token `{login}`,
//! `{sub me}`) spread over several worker processes, every `group_every`-th of them also a
//! member of one of `groups` group topics (equal sizes), held for `minutes` while one publisher
//! per group publishes open-loop (`rate` messages/s over all groups, `noecho`). Deliveries are
//! counted and sequence-checked per (receiver, sender) as everywhere else; a lost connection is
//! an error and is not reopened.
//!
//! The parent reads `/debug/vars` every `sample_every` seconds from the server's start to the
//! end (`series.csv`: RSS, CPU, live sessions and topics) and reports RSS at the hold's start
//! and end, the RSS slope (least squares, KiB/min) and the server CPU over the steady part (the
//! hold after `steady_after` seconds), the delivery latency and every error. Any error, lost
//! or duplicated delivery, disconnect or missing session fails the run.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use super::series::{self, Recorder};
use super::Ctx;
use crate::adapter::{Proto, Session};
use crate::cli::SoakArgs;
use crate::coord::{Want, Workers};
use crate::engine::{self, Sender, Slot, Stats};
use crate::msg::{Account, Ev, Role, WorkerSpec};
use crate::net::{resolve, Sources};
use crate::schedule::now_ns;
use crate::server::Tuning;
use crate::worker::{emit, Cmds};

/// How the sessions are laid out: members per group, and who joins what.
struct Plan {
    groups: usize,
    size: usize,
    /// Per worker: (account, group it joins).
    members: Vec<Vec<(Account, Option<String>)>>,
    /// Per worker: (account, group, sender id).
    publishers: Vec<Vec<(Account, String, u32)>>,
}

fn plan(a: &SoakArgs, accounts: &[Account], groups: &[String], k: usize) -> Plan {
    let g = groups.len();
    let every = a.group_every.max(1);
    let others = &accounts[g..];
    let size = others.len() / every / g;
    let mut members = vec![Vec::new(); k];
    for (j, acct) in others.iter().enumerate() {
        let join =
            (j % every == 0 && j / every < size * g).then(|| groups[(j / every) % g].clone());
        members[j % k].push((acct.clone(), join));
    }
    let mut publishers = vec![Vec::new(); k];
    for (p, topic) in groups.iter().enumerate() {
        publishers[p % k].push((accounts[p].clone(), topic.clone(), p as u32));
    }
    Plan {
        groups: g,
        size,
        members,
        publishers,
    }
}

pub async fn run(ctx: &mut Ctx, a: &SoakArgs) -> Result<()> {
    let g = a.groups.max(1);
    if a.sessions <= g {
        bail!("--sessions must exceed --groups (each group has a publisher of its own)");
    }
    let per_group = (a.sessions - g) / a.group_every.max(1) / g;
    ctx.start_server(&Tuning {
        shards: a.common.shards,
        max_subscribers: per_group + 1,
        ..Default::default()
    })?;
    let t_start = now_ns();
    let every = Duration::from_secs_f64(a.sample_every.max(0.5));
    let rec = Recorder::start(ctx.addr(), every);
    let r = hold(ctx, a, g, t_start).await;
    let rows = rec.stop();
    ctx.result.files.push((
        "series.csv".into(),
        series::csv(&rows, ctx.sampler.as_ref(), t_start),
    ));
    r
}

/// Everything after the server's start; `t_start` is the series' zero.
async fn hold(ctx: &mut Ctx, a: &SoakArgs, g: usize, t_start: u64) -> Result<()> {
    let accounts = ctx.accounts(a.sessions).await?;
    let mut groups = Vec::with_capacity(g);
    for owner in &accounts[..g] {
        groups.push(super::w4::make_topic(ctx, owner).await?);
    }
    let k = ctx.workers_for(a.sessions);
    let p = plan(a, &accounts, &groups, k);
    let specs: Vec<WorkerSpec> = (0..k)
        .map(|i| {
            ctx.spec(
                i,
                k,
                a.payload,
                Role::Soak {
                    members: p.members[i].clone(),
                    publishers: p.publishers[i].clone(),
                    concurrency: a.concurrency,
                },
            )
        })
        .collect();
    ctx.result.workers = k;
    let t_setup = now_ns();
    let mut w = Workers::spawn(specs, &ctx.common.client_cores).await?;
    let bar = ctx.bar("sessions", a.sessions as u64);
    let ready = w.gather(Want::Ready, &bar).await;
    bar.finish_and_clear();
    let ready = match ready {
        Ok(r) => r,
        Err(e) => {
            w.stop().await;
            return Err(e);
        }
    };
    let setup_s = (now_ns() - t_setup) as f64 / 1e9;
    let setup_errors: u64 = ready.iter().map(|s| s.errors).sum();
    let mut setup_samples: Vec<String> = ready
        .iter()
        .flat_map(|s| s.error_samples.iter().cloned())
        .collect();
    setup_samples.truncate(8);
    let held: usize = ready.iter().map(|s| s.held).sum();
    let before = series::tables(ctx.addr()).await.ok();
    // The hold: one point as long as the soak; the publishers' shares follow their groups.
    ctx.common.duration = a.minutes * 60.0;
    let shares: Vec<f64> = p
        .publishers
        .iter()
        .map(|v| a.rate * v.len() as f64 / p.groups as f64)
        .collect();
    let t_m = now_ns();
    let label = format!("{held} sessions, {} min", a.minutes);
    let point = ctx
        .measure(&mut w, &label, a.rate, &shares, "delivery", p.size as u64)
        .await;
    let after = series::tables(ctx.addr()).await.ok();
    w.stop().await;
    let mut point = point?;
    let from = t_m + 300_000_000 + (ctx.common.warmup * 1e9) as u64;
    let to = from + (ctx.common.duration * 1e9) as u64;
    let steady = from + ((a.steady_after * 1e9) as u64).min((to - from) / 2);
    let s = ctx.sampler.as_ref();
    let ten = 10_000_000_000u64.min((to - from) / 4);
    let rss_start = s.and_then(|s| s.mean_rss(from, from + ten));
    let rss_end = s.and_then(|s| s.mean_rss(to - ten, to));
    let slope = s.and_then(|s| series::rss_slope_kib_per_min(s, steady, to));
    let cpu = s.and_then(|s| series::cpu_pct(s, steady, to));
    point.extra = serde_json::json!({ "held": held, "setup_s": setup_s });
    let lat = &point.latency;
    ctx.result.summary = serde_json::json!({
        "sessions": a.sessions,
        "held_after_setup": held,
        "live_sessions_at_start": before.map(|t| t.sessions),
        "live_sessions_at_end": after.map(|t| t.sessions),
        "live_topics_at_end": after.map(|t| t.topics),
        "groups": p.groups,
        "members_per_group": p.size,
        "setup_s": setup_s,
        "setup_errors": setup_errors,
        "setup_error_samples": setup_samples,
        "hold_from_s": (from - t_start) as f64 / 1e9,
        "hold_s": (to - from) as f64 / 1e9,
        "steady_from_s": (steady - from) as f64 / 1e9,
        "rss_start_kib": rss_start,
        "rss_end_kib": rss_end,
        "rss_slope_kib_per_min": slope,
        "idle_cpu_pct": cpu,
        "published": point.sent,
        "deliveries_expected": point.expected,
        "deliveries": point.ops,
        "lost": point.drops,
        "gaps": point.gaps,
        "dups": point.dups,
        "errors": point.errors,
        "disconnects": point.disconnects,
        "latency_p50_us": lat.p50_us,
        "latency_p99_us": lat.p99_us,
        "latency_max_us": lat.max_us,
        "ack_p50_us": point.ack_latency.as_ref().map(|l| l.p50_us),
        "ack_p99_us": point.ack_latency.as_ref().map(|l| l.p99_us),
    });
    let bad = point.errors + point.drops + point.gaps + point.dups + point.disconnects;
    let missing = after.is_some_and(|t| t.sessions < a.sessions as u64);
    ctx.result.points.push(point);
    if setup_errors > 0 || bad > 0 || held < a.sessions || missing {
        bail!(
            "soak failed: {setup_errors} set-up errors, {held}/{} sessions held, {bad} errors, \
             losses, duplicates or disconnects, live sessions at the end: {:?}",
            a.sessions,
            after.map(|t| t.sessions)
        );
    }
    Ok(())
}

/// Opens one session (and joins its group, if any).
async fn open(
    t: &crate::msg::TargetSpec,
    dst: std::net::SocketAddr,
    src: &Sources,
    acct: &Account,
    join: Option<&str>,
) -> Result<Session> {
    let mut s = Session::open(t, dst, src.pick(), acct).await?;
    if let Some(g) = join {
        s.join(g).await?;
    }
    Ok(s)
}

pub async fn worker(spec: &WorkerSpec, cmds: &mut Cmds) -> Result<()> {
    let Role::Soak {
        members,
        publishers,
        concurrency,
    } = &spec.role
    else {
        return Err(anyhow!("not a soak role"));
    };
    let dst = resolve(&spec.target.addr)?;
    let src = Rc::new(Sources::new(&spec.src_ips, dst));
    let st = Stats::shared();
    let stop = Rc::new(Cell::new(false));
    let pstop = Rc::new(Cell::new(false));
    let total = members.len() + publishers.len();
    engine::spawn_progress(st.clone(), "setup", total as u64, pstop.clone());
    let slots: Rc<RefCell<Vec<Rc<Slot>>>> = Rc::default();
    let members = Rc::new(members.clone());
    let next = Rc::new(Cell::new(0usize));
    let mut tasks = Vec::new();
    for _ in 0..(*concurrency).clamp(1, members.len().max(1)) {
        let (st, stop, slots, next, src, members) = (
            st.clone(),
            stop.clone(),
            slots.clone(),
            next.clone(),
            src.clone(),
            members.clone(),
        );
        let t = spec.target.clone();
        tasks.push(tokio::task::spawn_local(async move {
            loop {
                let i = next.get();
                let Some((acct, join)) = members.get(i) else {
                    return;
                };
                next.set(i + 1);
                let r = open(&t, dst, &src, acct, join.as_deref()).await;
                let mut x = st.borrow_mut();
                x.setup_done += 1;
                match r {
                    Ok(s) => {
                        drop(x);
                        let (sink, rd) = s.split();
                        let slot = Slot::new(sink);
                        engine::spawn_reader(st.clone(), slot.clone(), rd, None, stop.clone());
                        slots.borrow_mut().push(slot);
                    }
                    Err(e) => x.error(format!("session set-up: {e:#}")),
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut proto = Proto::Tinode;
    let mut senders = Vec::new();
    for (acct, topic, id) in publishers {
        match open(&spec.target, dst, &src, acct, Some(topic)).await {
            Ok(s) => {
                proto = s.proto;
                let (sink, rd) = s.split();
                let slot = Slot::new(sink);
                engine::spawn_reader(st.clone(), slot.clone(), rd, None, stop.clone());
                let mut v = slots.borrow_mut();
                senders.push(Sender {
                    slot: v.len(),
                    id: *id,
                    topic: topic.clone(),
                });
                v.push(slot);
            }
            Err(e) => st.borrow_mut().error(format!("publisher set-up: {e:#}")),
        }
        st.borrow_mut().setup_done += 1;
    }
    pstop.set(true);
    let slots: Vec<Rc<Slot>> = slots.borrow().clone();
    let held = slots.iter().filter(|s| s.sink.borrow().is_some()).count();
    emit(&Ev::Ready(st.borrow().snapshot(held)));
    engine::serve_points(
        "soak",
        cmds,
        &st,
        &slots,
        &senders,
        spec.spin,
        proto,
        spec.payload,
        &stop,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn groups_are_equal_and_publishers_spread() {
        let a = crate::cli::Cli::try_parse_from([
            "coretalk-load",
            "soak",
            "--sessions",
            "1003",
            "--groups",
            "3",
            "--group-every",
            "10",
        ])
        .unwrap();
        let crate::cli::Command::Soak(a) = a.cmd else {
            panic!("soak")
        };
        let accounts: Vec<Account> = (0..1003)
            .map(|i| Account {
                login: format!("u{i}"),
                ..Default::default()
            })
            .collect();
        let groups: Vec<String> = (0..3).map(|i| format!("grp{i}")).collect();
        let p = plan(&a, &accounts, &groups, 2);
        assert_eq!(p.size, 33);
        for gname in &groups {
            let n = p
                .members
                .iter()
                .flatten()
                .filter(|m| m.1.as_deref() == Some(gname.as_str()))
                .count();
            assert_eq!(n, 33);
        }
        assert_eq!(p.members.iter().map(Vec::len).sum::<usize>(), 1000);
        assert_eq!(p.publishers[0].len(), 2);
        assert_eq!(p.publishers[1].len(), 1);
    }
}
