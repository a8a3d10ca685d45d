//! W5: long polling. Tinode targets: `sessions` long-polling sessions (create, `{hi}`, token
//! `{login}`, `{sub}` the group, all by POST) each keep one poll parked; a WebSocket publisher
//! publishes open-loop into the group; one operation is one message delivered by a poll.
//! A target that answers the session-creating POST with 404 does not support long polling:
//! reported as such, exit status 3. The `http-sol` target is the plain-HTTP speed of light:
//! each connection POSTs open-loop (one request outstanding per connection) and one operation
//! is one response.

use std::cell::Cell;
use std::rc::Rc;

use anyhow::{anyhow, Result};

use super::{split, w4::make_topic, Ctx};
use crate::adapter::lp::LpSession;
use crate::adapter::{tinode, Session};
use crate::cli::{TargetKind, Transport, W5Args};
use crate::coord::Unsupported;
use crate::engine::{self, on_event, Sender, Slot, Stats};
use crate::msg::{Cmd, Ev, Role, WorkerSpec};
use crate::net::{http_status, resolve, HttpConn, Sources};
use crate::schedule::{wait_until, Pace, Window};
use crate::server::Tuning;
use crate::worker::{emit, Cmds};

pub async fn run(ctx: &mut Ctx, a: &W5Args) -> Result<()> {
    if a.common.transport == Some(Transport::Ws) {
        return Err(anyhow!("W5 is long polling: --transport lp"));
    }
    if matches!(
        ctx.kind,
        TargetKind::Nats | TargetKind::Mosquitto | TargetKind::WsSol
    ) {
        return Err(anyhow::Error::new(Unsupported(format!(
            "{} has no long-polling transport (W5 peers: http-sol)",
            ctx.kind.name()
        ))));
    }
    ctx.start_server(&Tuning {
        shards: a.common.shards,
        max_subscribers: a.sessions + 1,
        http_close: a.http_close,
        ..Default::default()
    })?;
    let sol = ctx.kind == TargetKind::HttpSol;
    let (topic, accounts) = if sol {
        (String::new(), Vec::new())
    } else {
        // Probe first, so an unsupported target is reported before accounts are made.
        // A 4xx/5xx answer, or a connection closed without any answer, means no long polling.
        if let Err(e) = LpSession::create(ctx.addr(), None).await {
            let why = match http_status(&e) {
                Some(s) => format!("POST /v0/channels/lp answered {s}"),
                None => format!("POST /v0/channels/lp got no HTTP answer: {e:#}"),
            };
            return Err(anyhow::Error::new(Unsupported(format!(
                "target does not support long polling ({why})"
            ))));
        }
        let acc = ctx.accounts(a.sessions + 1).await?;
        (make_topic(ctx, &acc[0]).await?, acc)
    };
    let k = ctx.workers_for(a.sessions * 2);
    let parts = split(a.sessions, k);
    let mut specs = Vec::new();
    let mut first = 1;
    for (i, n) in parts.iter().enumerate() {
        let sessions = if sol {
            (0..*n).map(|_| Default::default()).collect()
        } else {
            accounts[first..first + n].to_vec()
        };
        specs.push(ctx.spec(
            i,
            k,
            a.payload,
            Role::LongPoll {
                topic: topic.clone(),
                publisher: (i == 0 && !sol).then(|| accounts[0].clone()),
                sessions,
            },
        ));
        first += n;
    }
    let mut w = ctx.spawn(specs, a.sessions as u64).await?;
    for &rate in &a.rate {
        let shares: Vec<f64> = if sol {
            parts
                .iter()
                .map(|n| rate * *n as f64 / a.sessions as f64)
                .collect()
        } else {
            let mut v = vec![0.0; k];
            v[0] = rate;
            v
        };
        let (op, fanout) = if sol {
            ("response", 1)
        } else {
            ("delivery", a.sessions as u64)
        };
        let p = ctx
            .measure(&mut w, &format!("{rate:.0}/s"), rate, &shares, op, fanout)
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
    let Role::LongPoll {
        topic,
        publisher,
        sessions,
    } = &spec.role
    else {
        return Err(anyhow!("not a long-poll role"));
    };
    let dst = resolve(&spec.target.addr)?;
    let src = Rc::new(Sources::new(&spec.src_ips, dst));
    let st = Stats::shared();
    let stop = Rc::new(Cell::new(false));
    if spec.target.kind == TargetKind::HttpSol {
        return sol_worker(spec, cmds, sessions.len(), &src, dst).await;
    }
    let pstop = Rc::new(Cell::new(false));
    engine::spawn_progress(st.clone(), "setup", sessions.len() as u64, pstop.clone());
    for acct in sessions {
        let lp = match open_lp(dst, src.pick(), acct, topic).await {
            Ok(s) => s,
            Err(e) if http_status(&e).is_some() => {
                emit(&Ev::Unsupported {
                    msg: format!("target does not support long polling: {e:#}"),
                });
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let task = (
            st.clone(),
            stop.clone(),
            src.clone(),
            acct.clone(),
            topic.clone(),
        );
        tokio::task::spawn_local(async move {
            let (st, stop, src, acct, topic) = task;
            let mut lp = lp;
            let slot = Slot::default();
            let mut replies = Vec::new();
            while !stop.get() {
                let e = match lp.poll().await {
                    Ok(body) if body.is_empty() => continue,
                    Ok(body) => {
                        match tinode::parse(&body) {
                            tinode::In::Data(p) => on_event(
                                &st,
                                &slot,
                                crate::adapter::Event::Delivery(p),
                                &mut replies,
                            ),
                            tinode::In::Ctrl(c) if c.code >= 300 => st
                                .borrow_mut()
                                .error(String::from_utf8_lossy(&body).into_owned()),
                            _ => {}
                        }
                        continue;
                    }
                    Err(e) => e,
                };
                if stop.get() {
                    return;
                }
                // The session is gone (e.g. ended by the server after an overflow, 403 on the
                // next poll): counted, then opened again as a WebSocket reader reconnects.
                {
                    let mut x = st.borrow_mut();
                    x.error(format!("poll: {e:#}"));
                    x.disconnects += 1;
                }
                let mut reopened = false;
                for _ in 0..3 {
                    if stop.get() {
                        return;
                    }
                    match open_lp(dst, src.pick(), &acct, &topic).await {
                        Ok(s) => {
                            lp = s;
                            st.borrow_mut().reconnects += 1;
                            reopened = true;
                            break;
                        }
                        Err(e) => {
                            st.borrow_mut().error(format!("LP reopen failed: {e:#}"));
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                    }
                }
                if !reopened {
                    return;
                }
            }
        });
        st.borrow_mut().setup_done += 1;
    }
    let mut slots = Vec::new();
    let mut senders = Vec::new();
    let mut proto = crate::adapter::Proto::Tinode;
    if let Some(p) = publisher {
        let mut s = Session::open(&spec.target, dst, src.pick(), p).await?;
        s.join(topic).await?;
        proto = s.proto;
        let (sink, rd) = s.split();
        let slot = Slot::new(sink);
        engine::spawn_reader(st.clone(), slot.clone(), rd, None, stop.clone());
        senders.push(Sender {
            slot: 0,
            id: 0,
            topic: topic.clone(),
        });
        slots.push(slot);
    }
    pstop.set(true);
    emit(&Ev::Ready(st.borrow().snapshot(sessions.len())));
    engine::serve_points(
        "W5",
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

/// Creates a long-polling session and sets it up over it: `{hi}`, token `{login}`, `{sub}`.
async fn open_lp(
    dst: std::net::SocketAddr,
    src: Option<std::net::IpAddr>,
    acct: &crate::msg::Account,
    topic: &str,
) -> Result<LpSession> {
    let mut lp = LpSession::create(dst, src).await?;
    let c = lp.request(tinode::hi).await?;
    if c.code >= 300 {
        return Err(anyhow!("LP hi answered {} {}", c.code, c.text));
    }
    let c = lp
        .request(|id| tinode::login_token(id, &acct.token))
        .await?;
    if c.code >= 300 {
        return Err(anyhow!("LP login answered {} {}", c.code, c.text));
    }
    let c = lp.request(|id| tinode::sub(id, topic)).await?;
    if c.code >= 300 && c.code != 304 {
        return Err(anyhow!("LP sub answered {} {}", c.code, c.text));
    }
    Ok(lp)
}

/// Plain HTTP: `n` keep-alive connections, each POSTing on its own share of the schedule.
async fn sol_worker(
    spec: &WorkerSpec,
    cmds: &mut Cmds,
    n: usize,
    src: &Rc<Sources>,
    dst: std::net::SocketAddr,
) -> Result<()> {
    let st = Stats::shared();
    let mut conns = Vec::new();
    for _ in 0..n.max(1) {
        conns.push(Rc::new(tokio::sync::Mutex::new(
            HttpConn::open(dst, src.pick()).await?,
        )));
        st.borrow_mut().setup_done += 1;
    }
    emit(&Ev::Ready(st.borrow().snapshot(conns.len())));
    let body = vec![b'x'; spec.payload];
    loop {
        match cmds.next().await? {
            Cmd::Run(r) => {
                st.borrow_mut().reset(Window {
                    from_ns: r.from_ns,
                    to_ns: r.to_ns,
                });
                let stop = Rc::new(Cell::new(false));
                engine::spawn_progress(st.clone(), "run", 0, stop.clone());
                let per = r.rate / conns.len() as f64;
                let mut tasks = Vec::new();
                for (i, c) in conns.iter().enumerate() {
                    let (c, st, body) = (c.clone(), st.clone(), body.clone());
                    let pace = Pace {
                        start_ns: r.start_ns
                            + r.phase_ns
                            + (i as f64 * 1e9 / r.rate.max(1.0)) as u64,
                        end_ns: r.to_ns,
                        rate: per,
                    };
                    let spin = spec.spin;
                    tasks.push(tokio::task::spawn_local(async move {
                        let mut c = c.lock().await;
                        let mut j = 0;
                        while let Some(due) = pace.due(j) {
                            j += 1;
                            wait_until(due, spin).await;
                            {
                                let mut x = st.borrow_mut();
                                x.sent_total += 1;
                                if x.window.contains(due) {
                                    x.sent += 1;
                                }
                            }
                            match c.request("POST", "/v0/channels/lp", &body).await {
                                Ok(resp) if resp.status == 200 => st.borrow_mut().completed(due),
                                Ok(resp) => st.borrow_mut().error(format!("HTTP {}", resp.status)),
                                Err(e) => {
                                    st.borrow_mut().error(format!("request: {e:#}"));
                                    return;
                                }
                            }
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
                stop.set(true);
                emit(&Ev::Done(st.borrow().snapshot(conns.len())));
            }
            Cmd::Grow { .. } => return Err(anyhow!("W5 does not grow")),
            Cmd::Stop => return Ok(()),
        }
    }
}
