//! W0: raw WebSocket echo. `connections` connections, open-loop sends spread over them, each
//! frame echoed back; latency is scheduled send → echo received. Tinode-speaking targets are
//! driven at their raw echo path (`/echo` on the baseline; on coretalk the harness turns on
//! `ws.echo_path` at `--echo-path`); NATS and MQTT echo through a subscription to the
//! connection's own subject/topic.

use std::rc::Rc;

use anyhow::{anyhow, Result};

use super::{split, Ctx};
use crate::adapter::{personal, Proto, Session};
use crate::cli::{TargetKind, W0Args};
use crate::coord::Unsupported;
use crate::engine::{self, Sender, Slot, Stats};
use crate::msg::{Account, Cmd, Ev, Role, WorkerSpec};
use crate::net::{http_status, resolve, Sources};
use crate::server::Tuning;
use crate::worker::{emit, Cmds};

pub async fn run(ctx: &mut Ctx, a: &W0Args) -> Result<()> {
    ctx.start_server(&Tuning {
        shards: a.common.shards,
        // coretalk's echo endpoint is off unless configured.
        echo_path: (ctx.kind == TargetKind::Coretalk).then(|| a.echo_path.clone()),
        ..Default::default()
    })?;
    for &size in &a.payload {
        let k = ctx.workers_for(a.connections);
        let specs = split(a.connections, k)
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                ctx.spec(
                    i,
                    k,
                    size,
                    Role::Echo {
                        conns: n,
                        echo_path: a.echo_path.clone(),
                    },
                )
            })
            .collect();
        let mut w = ctx.spawn(specs, a.connections as u64).await?;
        for &rate in &a.rate {
            let shares: Vec<f64> = split(a.connections, k)
                .iter()
                .map(|n| rate * *n as f64 / a.connections as f64)
                .collect();
            let label = format!("{size}B @{rate:.0}/s");
            let p = ctx.measure(&mut w, &label, rate, &shares, "echo", 1).await;
            match p {
                Ok(p) => ctx.result.points.push(p),
                Err(e) => {
                    w.stop().await;
                    return Err(e);
                }
            }
        }
        w.stop().await;
    }
    Ok(())
}

pub async fn worker(spec: &WorkerSpec, cmds: &mut Cmds) -> Result<()> {
    let Role::Echo { conns, echo_path } = &spec.role else {
        return Err(anyhow!("not an echo role"));
    };
    let dst = resolve(&spec.target.addr)?;
    let src = Sources::new(&spec.src_ips, dst);
    let st = Stats::shared();
    let stop = Rc::new(std::cell::Cell::new(false));
    let mut slots = Vec::new();
    let mut senders = Vec::new();
    let mut proto = Proto::Echo;
    for i in 0..*conns {
        let login = format!("e{}x{}", spec.index, i);
        let s = if spec.target.kind.is_tinode() {
            match Session::echo(dst, src.pick(), echo_path).await {
                Ok(s) => s,
                Err(e) if http_status(&e) == Some(404) => {
                    emit(&Ev::Unsupported {
                        msg: format!(
                            "target has no raw echo endpoint (GET {echo_path} answered 404)"
                        ),
                    });
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        } else {
            let acct = Account {
                login: login.clone(),
                ..Default::default()
            };
            Session::open(&spec.target, dst, src.pick(), &acct).await?
        };
        proto = s.proto;
        let topic = personal(proto, &spec.target.run_id, &login);
        let (sink, rd) = s.split();
        let slot = Slot::new(sink);
        engine::spawn_reader(st.clone(), slot.clone(), rd, None, stop.clone());
        senders.push(Sender {
            slot: slots.len(),
            id: (spec.index * 100_000 + i) as u32,
            topic,
        });
        slots.push(slot);
        st.borrow_mut().setup_done += 1;
    }
    emit(&Ev::Ready(st.borrow().snapshot(slots.len())));
    let mut seqs = vec![0u64; senders.len()];
    loop {
        match cmds.next().await? {
            Cmd::Run(r) => {
                let s = engine::run_point(
                    &st,
                    &slots,
                    &senders,
                    &mut seqs,
                    &r,
                    spec.spin,
                    proto,
                    spec.payload,
                )
                .await;
                emit(&Ev::Done(s));
            }
            Cmd::Grow { .. } => return Err(anyhow::Error::new(Unsupported("grow".into()))),
            Cmd::Stop => {
                stop.set(true);
                return Ok(());
            }
        }
    }
}
