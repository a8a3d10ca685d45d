//! W3: 1:1 messages. `pairs` pairs of sessions, each pair sharing one topic: a p2p topic
//! (`sub usr<peer>` on both sides) or, with `--topic-kind grp`, a 2-member group (one side
//! creates it, the other joins). Both members send; the offered rate is spread round-robin
//! over all senders; latency is scheduled send → `{data}` at the peer, plus `{pub}` →
//! `{ctrl 202}` at the sender. NATS/MQTT: each side sends to the other's personal subject.

use std::cell::Cell;
use std::rc::Rc;

use anyhow::{anyhow, Context, Result};

use super::{split, Ctx};
use crate::adapter::{personal, Proto, Session};
use crate::cli::{TopicKind, W3Args};
use crate::coord::Unsupported;
use crate::engine::{self, Reopen, Sender, Slot, Stats};
use crate::msg::{Account, Ev, Role, TargetSpec, WorkerSpec};
use crate::net::{resolve, Sources};
use crate::server::Tuning;
use crate::worker::{emit, Cmds};

pub async fn run(ctx: &mut Ctx, a: &W3Args) -> Result<()> {
    ctx.start_server(&Tuning {
        shards: a.common.shards,
        ..Default::default()
    })?;
    let accounts = ctx.accounts(a.pairs * 2).await?;
    let k = ctx.workers_for(a.pairs * 2);
    let parts = split(a.pairs, k);
    let mut specs = Vec::new();
    let mut first = 0usize;
    for (i, n) in parts.iter().enumerate() {
        let pairs = (first..first + n)
            .map(|p| (accounts[2 * p].clone(), accounts[2 * p + 1].clone()))
            .collect();
        specs.push(ctx.spec(
            i,
            k,
            a.payload,
            Role::Pairs {
                pairs,
                kind: a.topic_kind,
                first_sender: (2 * first) as u32,
                side_addrs: Vec::new(),
            },
        ));
        first += n;
    }
    let mut w = ctx.spawn(specs, (a.pairs * 2) as u64).await?;
    for &rate in &a.rate {
        let shares: Vec<f64> = parts
            .iter()
            .map(|n| rate * *n as f64 / a.pairs as f64)
            .collect();
        let p = ctx
            .measure(
                &mut w,
                &format!("{rate:.0} msg/s"),
                rate,
                &shares,
                "delivery",
                1,
            )
            .await;
        match p {
            Ok(p) => ctx.result.points.push(p),
            Err(e) => {
                w.stop().await;
                return Err(e);
            }
        }
    }
    w.stop().await;
    Ok(())
}

/// The topic a session publishes to, and the one it must join, given its peer.
fn topics(proto: Proto, run_id: &str, kind: TopicKind, peer: &Account) -> (String, Option<String>) {
    match proto {
        Proto::Tinode | Proto::TinodeGrpc => match kind {
            TopicKind::P2p => (peer.user.clone(), Some(peer.user.clone())),
            TopicKind::Grp => (String::new(), None),
        },
        _ => (personal(proto, run_id, &peer.login), None),
    }
}

async fn open_side(
    t: &TargetSpec,
    dst: std::net::SocketAddr,
    src: Option<std::net::IpAddr>,
    me: &Account,
    join: Option<&str>,
) -> Result<Session> {
    let mut s = Session::open(t, dst, src, me).await?;
    if let Some(j) = join {
        s.join(j).await?;
    }
    Ok(s)
}

pub async fn worker(spec: &WorkerSpec, cmds: &mut Cmds) -> Result<()> {
    let Role::Pairs {
        pairs,
        kind,
        first_sender,
        side_addrs,
    } = &spec.role
    else {
        return Err(anyhow!("not a pairs role"));
    };
    let dst = resolve(&spec.target.addr)?;
    // Each pair's (A, B) addresses: the target's unless placed.
    let placed: Vec<(std::net::SocketAddr, std::net::SocketAddr)> = side_addrs
        .iter()
        .map(|(a, b)| Ok((resolve(a)?, resolve(b)?)))
        .collect::<Result<_>>()?;
    let dst_of = |i: usize| placed.get(i).copied().unwrap_or((dst, dst));
    let src = Rc::new(Sources::new(&spec.src_ips, dst));
    let st = Stats::shared();
    let stop = Rc::new(Cell::new(false));
    let pstop = Rc::new(Cell::new(false));
    engine::spawn_progress(st.clone(), "setup", (pairs.len() * 2) as u64, pstop.clone());
    let mut slots: Vec<Rc<Slot>> = Vec::new();
    let mut senders = Vec::new();
    let mut proto = Proto::Tinode;
    // Pairs are set up a few at a time.
    let chunk = 32;
    let t = &spec.target;
    for (ci, group) in pairs.chunks(chunk).enumerate() {
        let futs = group.iter().enumerate().map(|(pi, (a, b))| {
            let src = src.clone();
            let (dst_a, dst_b) = dst_of(ci * chunk + pi);
            async move {
                let mut sa = Session::open(t, dst_a, src.pick(), a)
                    .await
                    .context("open A")?;
                let p = sa.proto;
                let (ta, ja) = topics(p, &t.run_id, *kind, b);
                let (tb, jb) = topics(p, &t.run_id, *kind, a);
                let (ta, tb, ja, jb) = if p.is_tinode() && *kind == TopicKind::Grp {
                    let g = sa.create_group().await?;
                    (g.clone(), g.clone(), None, Some(g))
                } else {
                    (ta, tb, ja, jb)
                };
                if let Some(j) = &ja {
                    if let Err(e) = sa.join(j).await {
                        if *kind == TopicKind::P2p && format!("{e:#}").contains(" 404 ") {
                            return Err(anyhow::Error::new(Unsupported(format!(
                                "target does not support p2p topics yet ({e:#}); use --topic-kind grp"
                            ))));
                        }
                        return Err(e.context("A joins"));
                    }
                }
                let sb = open_side(t, dst_b, src.pick(), b, jb.as_deref())
                    .await
                    .context("B joins")?;
                Ok::<_, anyhow::Error>((sa, ta, ja, sb, tb, jb))
            }
        });
        let done = futures_util::future::join_all(futs).await;
        for (pi, r) in done.into_iter().enumerate() {
            let (sa, ta, ja, sb, tb, jb) = r?;
            proto = sa.proto;
            let (a, b) = &group[pi];
            let (dst_a, dst_b) = dst_of(ci * chunk + pi);
            for (s, topic, join, me, dst) in [(sa, ta, ja, a, dst_a), (sb, tb, jb, b, dst_b)] {
                let (sink, rd) = s.split();
                let slot = Slot::new(sink);
                let reopen: Reopen = {
                    let (t, me, join, src) = (t.clone(), me.clone(), join.clone(), src.clone());
                    Rc::new(move || {
                        let (t, me, join, src) = (t.clone(), me.clone(), join.clone(), src.clone());
                        Box::pin(async move {
                            open_side(&t, dst, src.pick(), &me, join.as_deref()).await
                        })
                    })
                };
                engine::spawn_reader(st.clone(), slot.clone(), rd, Some(reopen), stop.clone());
                let local = (ci * chunk + pi) * 2 + slots.len() % 2;
                senders.push(Sender {
                    slot: slots.len(),
                    id: *first_sender + local as u32,
                    topic,
                });
                slots.push(slot);
                st.borrow_mut().setup_done += 1;
            }
        }
    }
    pstop.set(true);
    emit(&Ev::Ready(st.borrow().snapshot(slots.len())));
    engine::serve_points(
        "W3",
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
