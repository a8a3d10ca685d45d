//! W2: session establishment at open-loop arrival rates. Arrival `i` is due at a fixed
//! interval; it connects, sends `{hi}`, logs in with a cached token (or, with `--login basic`,
//! with its password, which costs the server a bcrypt check) and subscribes to `me`
//! (NATS/MQTT: connect and subscribe), then closes. Latency is scheduled arrival → `{sub me}`
//! confirmed; CPU per op is server CPU per session established.

use std::cell::Cell;
use std::rc::Rc;

use anyhow::{anyhow, Result};

use super::Ctx;
use crate::adapter::Session;
use crate::cli::W2Args;
use crate::engine::{self, Stats};
use crate::msg::{Cmd, Ev, Role, WorkerSpec};
use crate::net::{resolve, Sources};
use crate::schedule::{now_ns, wait_until, Pace, Window};
use crate::server::Tuning;
use crate::worker::{emit, Cmds};

/// Arrivals in flight above which new ones are counted as errors instead of started (keeps a
/// worker under its open-file limit).
const MAX_IN_FLIGHT: usize = 12_000;

pub async fn run(ctx: &mut Ctx, a: &W2Args) -> Result<()> {
    ctx.start_server(&Tuning {
        shards: a.common.shards,
        ..Default::default()
    })?;
    let accounts = ctx.accounts(a.accounts.max(1)).await?;
    let peak = a.rate.iter().copied().fold(0.0, f64::max);
    // Sessions live ~a few ms each; one worker per ~15k arrivals/s is plenty.
    let k = ctx.workers_for(peak as usize);
    let specs = (0..k)
        .map(|i| {
            let mine: Vec<_> = accounts.iter().skip(i).step_by(k).cloned().collect();
            ctx.spec(
                i,
                k,
                0,
                Role::Arrivals {
                    accounts: if mine.is_empty() {
                        accounts.clone()
                    } else {
                        mine
                    },
                    basic: a.login == crate::cli::LoginScheme::Basic,
                },
            )
        })
        .collect();
    let mut w = ctx.spawn(specs, 0).await?;
    for &rate in &a.rate {
        let shares = vec![rate / k as f64; k];
        let p = ctx
            .measure(
                &mut w,
                &format!("{rate:.0} arrivals/s"),
                rate,
                &shares,
                "session",
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

pub async fn worker(spec: &WorkerSpec, cmds: &mut Cmds) -> Result<()> {
    let Role::Arrivals { accounts, basic } = &spec.role else {
        return Err(anyhow!("not an arrivals role"));
    };
    if accounts.is_empty() {
        return Err(anyhow!("no accounts"));
    }
    let dst = resolve(&spec.target.addr)?;
    let src = Rc::new(Sources::new(&spec.src_ips, dst));
    let st = Stats::shared();
    emit(&Ev::Ready(st.borrow().snapshot(0)));
    let mut next_acct = 0usize;
    loop {
        match cmds.next().await? {
            Cmd::Run(r) => {
                st.borrow_mut().reset(Window {
                    from_ns: r.from_ns,
                    to_ns: r.to_ns,
                });
                let stop = Rc::new(Cell::new(false));
                engine::spawn_progress(st.clone(), "run", 0, stop.clone());
                let in_flight = Rc::new(Cell::new(0usize));
                let pace = Pace {
                    start_ns: r.start_ns + r.phase_ns,
                    end_ns: r.to_ns,
                    rate: r.rate,
                };
                let mut i = 0;
                while let Some(due) = pace.due(i) {
                    i += 1;
                    wait_until(due, spec.spin).await;
                    {
                        let mut x = st.borrow_mut();
                        x.sent_total += 1;
                        if x.window.contains(due) {
                            x.sent += 1;
                        }
                        if in_flight.get() >= MAX_IN_FLIGHT {
                            x.error("arrival not started: too many set-ups in flight".into());
                            continue;
                        }
                    }
                    let acct = accounts[next_acct % accounts.len()].clone();
                    next_acct += 1;
                    let basic = *basic;
                    let (st, src, target, in_flight) = (
                        st.clone(),
                        src.clone(),
                        spec.target.clone(),
                        in_flight.clone(),
                    );
                    in_flight.set(in_flight.get() + 1);
                    tokio::task::spawn_local(async move {
                        let opened = if basic {
                            Session::open_basic(&target, dst, src.pick(), &acct).await
                        } else {
                            Session::open(&target, dst, src.pick(), &acct).await
                        };
                        match opened {
                            Ok(mut s) => {
                                st.borrow_mut().completed(due);
                                s.close().await;
                            }
                            Err(e) => st.borrow_mut().error(format!("arrival: {e:#}")),
                        }
                        in_flight.set(in_flight.get() - 1);
                    });
                }
                // Let the last arrivals finish (bounded by the set-up timeout).
                let deadline = now_ns() + r.drain_ms.max(1000) * 1_000_000 + 20_000_000_000;
                while in_flight.get() > 0 && now_ns() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                stop.set(true);
                emit(&Ev::Done(st.borrow().snapshot(0)));
            }
            Cmd::Grow { .. } => return Err(anyhow!("W2 does not grow")),
            Cmd::Stop => return Ok(()),
        }
    }
}
