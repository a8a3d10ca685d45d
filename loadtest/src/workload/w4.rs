//! W4: one group topic, `subscribers` subscribers and one publisher. The parent creates the
//! group (Tinode `{sub new…}` as the publisher's account) and hands its name to the workers;
//! subscribers join it, the publisher joins and publishes open-loop with `noecho`. One
//! operation is one delivery: throughput is deliveries per second, CPU per op is server CPU
//! per delivery. W6 reuses this flow with different shard counts.

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
    let (mut w, k) = setup(ctx, a.subscribers, a.payload).await?;
    for &rate in &a.rate {
        match point(ctx, &mut w, k, a.subscribers, rate, "").await {
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
    let t = &ctx.target;
    match t.kind {
        k if k.is_tinode() => {
            let mut s = Session::open(t, ctx.addr(), None, owner).await?;
            let g = s.create_group().await?;
            let _ = s.leave(&g).await;
            Ok(g)
        }
        crate::cli::TargetKind::Mosquitto => Ok(format!("g/{}", t.run_id)),
        _ => Ok(format!("g.{}", t.run_id)),
    }
}

/// Sets the W4 flow up on the current server: accounts, group, workers holding the
/// subscribers and the publisher. Returns the workers and their count.
pub async fn setup(ctx: &mut Ctx, subscribers: usize, payload: usize) -> Result<(Workers, usize)> {
    let accounts = ctx.accounts(subscribers + 1).await?;
    let topic = make_topic(ctx, &accounts[0]).await?;
    ctx.result.summary["topic"] = serde_json::Value::String(topic.clone());
    let k = ctx.workers_for(subscribers + 1);
    let parts = split(subscribers, k);
    let mut specs = Vec::new();
    let mut first = 1;
    for (i, n) in parts.iter().enumerate() {
        specs.push(ctx.spec(
            i,
            k,
            payload,
            Role::Fanout {
                topic: topic.clone(),
                publisher: (i == 0).then(|| accounts[0].clone()),
                subscribers: accounts[first..first + n].to_vec(),
            },
        ));
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
    let mut shares = vec![0.0; k];
    shares[0] = rate;
    let label = format!("{label_prefix}{subscribers} subs @{rate:.0}/s");
    ctx.measure(w, &label, rate, &shares, "delivery", subscribers as u64)
        .await
}

pub async fn worker(spec: &WorkerSpec, cmds: &mut Cmds) -> Result<()> {
    let Role::Fanout {
        topic,
        publisher,
        subscribers,
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
    let (tt, tp) = (t.clone(), topic.clone());
    let open = move |acct: Account, src: Rc<Sources>| {
        let t = tt.clone();
        let topic = tp.clone();
        async move {
            let mut s = Session::open(&t, dst, src.pick(), &acct).await?;
            s.join(&topic).await?;
            Ok::<_, anyhow::Error>(s)
        }
    };
    for chunk in subscribers.chunks(64) {
        let done =
            futures_util::future::join_all(chunk.iter().map(|a| open(a.clone(), src.clone())))
                .await;
        for (s, acct) in done.into_iter().zip(chunk) {
            let s = s?;
            proto = s.proto;
            let (sink, rd) = s.split();
            let slot = Slot::new(sink);
            let reopen: Reopen = {
                let (acct, src, open) = (acct.clone(), src.clone(), open.clone());
                Rc::new(move || Box::pin(open(acct.clone(), src.clone())))
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
        let mut s = Session::open(t, dst, src.pick(), p).await?;
        if s.proto.is_tinode() {
            s.join(topic).await?;
        }
        proto = s.proto;
        let (sink, rd) = s.split();
        let slot = Slot::new(sink);
        engine::spawn_reader(st.clone(), slot.clone(), rd, None, stop.clone());
        senders.push(Sender {
            slot: slots.len(),
            id: 0,
            topic: topic.clone(),
        });
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
