//! W4: one group topic, `subscribers` subscribers and one publisher. The parent creates the
//! group (Tinode `{sub new…}` as the publisher's account) and hands its name to the workers;
//! subscribers join it, the publisher joins and publishes open-loop with `noecho`. One
//! operation is one delivery: throughput is deliveries per second, CPU per op is server CPU
//! per delivery. W6 reuses this flow with different shard counts, and with its sessions placed
//! on chosen shards ([`Layout`]).
//!
//! With `--groups G` the subscribers are spread over G groups (subscriber i joins group
//! i mod G), and the publisher publishes to them in turn: each group gets rate / G messages a
//! second, and a message has subscribers / G deliveries. On a server with several shards the
//! groups' home shards spread their master work, where one hot group loads its home shard
//! first.

use std::cell::Cell;
use std::rc::Rc;

use anyhow::{anyhow, Result};

use super::{split, Ctx};
use crate::adapter::{Proto, Session};
use crate::cli::W4Args;
use crate::coord::Workers;
use crate::engine::{self, Reopen, Sender, Slot, Stats};
use crate::msg::{Account, Ev, Role, WorkerSpec};
use crate::net::{resolve, Sources};
use crate::report::Point;
use crate::server::Tuning;
use crate::worker::{emit, Cmds};

pub async fn run(ctx: &mut Ctx, a: &W4Args) -> Result<()> {
    ctx.start_server(&Tuning {
        shards: a.common.shards,
        max_subscribers: a.subscribers + 1,
        ..Default::default()
    })?;
    if ctx.result.summary.is_null() {
        ctx.result.summary = serde_json::json!({});
    }
    let groups = a.groups.max(1);
    if !a.subscribers.is_multiple_of(groups) {
        return Err(anyhow!(
            "--subscribers {} must be a multiple of --groups {groups}",
            a.subscribers
        ));
    }
    let (mut w, k) =
        setup_groups(ctx, a.subscribers, groups, a.payload, &Layout::default()).await?;
    for &rate in &a.rate {
        match point_groups(ctx, &mut w, k, a.subscribers, groups, rate, "").await {
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

/// Creates the group and returns its name (NATS/MQTT: a subject name).
pub async fn make_topic(ctx: &Ctx, owner: &Account) -> Result<String> {
    make_nth_topic(ctx, owner, 0).await
}

/// Creates group `n` of the run (NATS/MQTT: subject names distinct by `n`).
async fn make_nth_topic(ctx: &Ctx, owner: &Account, n: usize) -> Result<String> {
    let t = &ctx.target;
    let suffix = if n == 0 {
        String::new()
    } else {
        format!("-{n}")
    };
    match t.kind {
        k if k.is_tinode() => {
            let mut s = Session::open(t, ctx.addr(), None, owner).await?;
            let g = s.create_group().await?;
            let _ = s.leave(&g).await;
            Ok(g)
        }
        crate::cli::TargetKind::Mosquitto => Ok(format!("g/{}{suffix}", t.run_id)),
        _ => Ok(format!("g.{}{suffix}", t.run_id)),
    }
}

/// Where the W4 flow's group lives and its sessions connect (W6 placement). The default is
/// plain W4: any group, every session at the target's address.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// `(shard, shards)`: make groups until one is homed on `shard` of `shards` (coretalk's
    /// FNV-1a of the name; groups are named by the server).
    pub home: Option<(usize, usize)>,
    /// The HOST:PORT subscriber `i` connects to (empty: the target's address).
    pub subs: Vec<String>,
    /// The publisher's HOST:PORT (`None`: the target's address).
    pub publisher: Option<String>,
}

/// Creates the group, on the wanted home shard when `layout` asks for one.
async fn make_placed_topic(ctx: &Ctx, owner: &Account, layout: &Layout) -> Result<String> {
    let Some((shard, shards)) = layout.home else {
        return make_topic(ctx, owner).await;
    };
    // Each try lands on the wanted shard with probability 1/shards.
    for _ in 0..64 * shards.max(1) {
        let g = make_topic(ctx, owner).await?;
        if super::w6::home_shard(&g, shards) == shard {
            return Ok(g);
        }
    }
    Err(anyhow!("no group homed on shard {shard} of {shards}"))
}

/// Sets the W4 flow up on the current server: accounts, group, workers holding the
/// subscribers and the publisher. Returns the workers and their count.
pub async fn setup(
    ctx: &mut Ctx,
    subscribers: usize,
    payload: usize,
    layout: &Layout,
) -> Result<(Workers, usize)> {
    setup_groups(ctx, subscribers, 1, payload, layout).await
}

/// [`setup`] with the subscribers spread over `groups` groups (placement: one group only).
pub async fn setup_groups(
    ctx: &mut Ctx,
    subscribers: usize,
    groups: usize,
    payload: usize,
    layout: &Layout,
) -> Result<(Workers, usize)> {
    let accounts = ctx.accounts(subscribers + 1).await?;
    let mut topics = vec![make_placed_topic(ctx, &accounts[0], layout).await?];
    for n in 1..groups.max(1) {
        topics.push(make_nth_topic(ctx, &accounts[0], n).await?);
    }
    ctx.result.summary["topic"] = serde_json::Value::String(topics[0].clone());
    if topics.len() > 1 {
        ctx.result.summary["topics"] = serde_json::json!(topics);
    }
    let k = ctx.workers_for(subscribers + 1);
    let parts = split(subscribers, k);
    let mut specs = Vec::new();
    let mut first = 1;
    for (i, n) in parts.iter().enumerate() {
        specs.push(
            ctx.spec(
                i,
                k,
                payload,
                Role::Fanout {
                    topics: topics.clone(),
                    first: first - 1,
                    publisher: (i == 0).then(|| accounts[0].clone()),
                    subscribers: accounts[first..first + n].to_vec(),
                    // Subscriber j of the run is account j + 1.
                    sub_addrs: layout
                        .subs
                        .get(first - 1..first - 1 + n)
                        .map(<[String]>::to_vec)
                        .unwrap_or_default(),
                    pub_addr: layout.publisher.clone(),
                },
            ),
        );
        first += n;
    }
    let w = ctx.spawn(specs, (subscribers + 1) as u64).await?;
    Ok((w, k))
}

/// One W4 point: the publisher (worker 0) publishes at `rate`.
pub async fn point(
    ctx: &mut Ctx,
    w: &mut Workers,
    k: usize,
    subscribers: usize,
    rate: f64,
    label_prefix: &str,
) -> Result<Point> {
    point_groups(ctx, w, k, subscribers, 1, rate, label_prefix).await
}

/// [`point`] over `groups` groups: each message has `subscribers / groups` deliveries.
pub async fn point_groups(
    ctx: &mut Ctx,
    w: &mut Workers,
    k: usize,
    subscribers: usize,
    groups: usize,
    rate: f64,
    label_prefix: &str,
) -> Result<Point> {
    let mut shares = vec![0.0; k];
    shares[0] = rate;
    let groups = groups.max(1);
    let label = if groups == 1 {
        format!("{label_prefix}{subscribers} subs @{rate:.0}/s")
    } else {
        format!("{label_prefix}{subscribers} subs in {groups} groups @{rate:.0}/s")
    };
    let per_message = (subscribers / groups) as u64;
    ctx.measure(w, &label, rate, &shares, "delivery", per_message)
        .await
}

pub async fn worker(spec: &WorkerSpec, cmds: &mut Cmds) -> Result<()> {
    let Role::Fanout {
        topics,
        first,
        publisher,
        subscribers,
        sub_addrs,
        pub_addr,
    } = &spec.role
    else {
        return Err(anyhow!("not a fan-out role"));
    };
    let dst = resolve(&spec.target.addr)?;
    let src = Rc::new(Sources::new(&spec.src_ips, dst));
    let st = Stats::shared();
    let stop = Rc::new(Cell::new(false));
    let pstop = Rc::new(Cell::new(false));
    let total = subscribers.len() + usize::from(publisher.is_some());
    engine::spawn_progress(st.clone(), "setup", total as u64, pstop.clone());
    let t = &spec.target;
    let mut slots: Vec<Rc<Slot>> = Vec::new();
    let mut proto = Proto::Tinode;
    // W6 placement: each subscriber's own address (a shard's port), else the target's.
    let sub_dst = sub_addrs
        .iter()
        .map(|a| resolve(a))
        .collect::<Result<Vec<_>>>()?;
    let pub_dst = pub_addr.as_deref().map(resolve).transpose()?.unwrap_or(dst);
    if topics.is_empty() {
        return Err(anyhow!("a fan-out role without a topic"));
    }
    // Subscriber i of the run joins group i mod G.
    let topic_of = |local: usize| topics[(first + local) % topics.len()].clone();
    let tt = t.clone();
    let open = move |acct: Account, dst: std::net::SocketAddr, src: Rc<Sources>, topic: String| {
        let t = tt.clone();
        async move {
            let mut s = Session::open(&t, dst, src.pick(), &acct).await?;
            s.join(&topic).await?;
            Ok::<_, anyhow::Error>(s)
        }
    };
    for (c, chunk) in subscribers.chunks(64).enumerate() {
        let dst_of = |j: usize| sub_dst.get(c * 64 + j).copied().unwrap_or(dst);
        let done = futures_util::future::join_all(
            chunk
                .iter()
                .enumerate()
                .map(|(j, a)| open(a.clone(), dst_of(j), src.clone(), topic_of(c * 64 + j))),
        )
        .await;
        for (j, (s, acct)) in done.into_iter().zip(chunk).enumerate() {
            let s = s?;
            proto = s.proto;
            let (sink, rd) = s.split();
            let slot = Slot::new(sink);
            let reopen: Reopen = {
                let (acct, src, open, to) = (acct.clone(), src.clone(), open.clone(), dst_of(j));
                let topic = topic_of(c * 64 + j);
                Rc::new(move || Box::pin(open(acct.clone(), to, src.clone(), topic.clone())))
            };
            engine::spawn_reader(st.clone(), slot.clone(), rd, Some(reopen), stop.clone());
            slots.push(slot);
            st.borrow_mut().setup_done += 1;
        }
    }
    let mut senders = Vec::new();
    if let Some(p) = publisher {
        // The publisher is not a subscriber's stream: it joins to be allowed to publish
        // (Tinode), and reads only acks.
        let mut s = Session::open(t, pub_dst, src.pick(), p).await?;
        if s.proto.is_tinode() {
            for topic in topics {
                s.join(topic).await?;
            }
        }
        proto = s.proto;
        let (sink, rd) = s.split();
        let slot = Slot::new(sink);
        engine::spawn_reader(st.clone(), slot.clone(), rd, None, stop.clone());
        // One sender per group, taken in turn: each group gets an equal share of the rate.
        for (g, topic) in topics.iter().enumerate() {
            senders.push(Sender {
                slot: slots.len(),
                id: g as u32,
                topic: topic.clone(),
            });
        }
        slots.push(slot);
        st.borrow_mut().setup_done += 1;
    }
    pstop.set(true);
    emit(&Ev::Ready(st.borrow().snapshot(slots.len())));
    engine::serve_points(
        "W4",
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
