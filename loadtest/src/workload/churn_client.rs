//! The churn worker: client cycles started open-loop (`rate` per second, at most `concurrency`
//! in flight), each going as far as its [`Stage`] of a session's life and then dropping the
//! connection abruptly: a TCP reset (SO_LINGER 0) on every other cycle, a bare FIN (no
//! WebSocket close, no `{leave}`) on the rest. Stages take turns; accounts, groups and the hold
//! before the drop are picked at random. A cycle that fails before reaching its stage is an
//! error (the server refused or broke something it should have served).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use crate::adapter::lp::LpSession;
use crate::adapter::{tinode, Session};
use crate::engine::{self, Stats};
use crate::msg::{Account, Cmd, Ev, Role, TargetSpec, WorkerSpec};
use crate::net::{resolve, set_reset_on_close, tcp_connect, ws_connect, Sources};
use crate::schedule::{now_ns, wait_until, Pace, Window};
use crate::worker::{emit, Cmds};

/// Where in a session's life the client drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Part of the HTTP upgrade request sent (no blank line).
    MidHead,
    /// WebSocket upgraded, nothing sent.
    Upgraded,
    /// `{hi}` answered.
    Hi,
    /// Token `{login}` sent, answer not awaited.
    MidLogin,
    /// Logged in.
    LoggedIn,
    /// `{sub me}` answered.
    SubMe,
    /// A group joined.
    SubGroup,
    /// A `{pub}` into the group sent, its `{ctrl 202}` not awaited.
    MidPub,
    /// Long polling: session created, nothing else.
    LpCreated,
    /// Long polling: hi, login, `{sub me}`, group joined, a poll parked; dropped mid-poll.
    LpParked,
}

pub const WS_STAGES: [Stage; 8] = [
    Stage::MidHead,
    Stage::Upgraded,
    Stage::Hi,
    Stage::MidLogin,
    Stage::LoggedIn,
    Stage::SubMe,
    Stage::SubGroup,
    Stage::MidPub,
];

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::MidHead => "mid_head",
            Stage::Upgraded => "upgraded",
            Stage::Hi => "hi",
            Stage::MidLogin => "mid_login",
            Stage::LoggedIn => "logged_in",
            Stage::SubMe => "sub_me",
            Stage::SubGroup => "sub_group",
            Stage::MidPub => "mid_pub",
            Stage::LpCreated => "lp_created",
            Stage::LpParked => "lp_parked",
        }
    }

    /// Dropped the moment the request is out (holding would let it complete).
    fn immediate(self) -> bool {
        matches!(self, Stage::MidLogin | Stage::MidPub)
    }
}

/// The stages a run cycles through.
pub fn stages(lp: bool) -> Vec<Stage> {
    let mut v = WS_STAGES.to_vec();
    if lp {
        v.extend([Stage::LpCreated, Stage::LpParked]);
    }
    v
}

/// xorshift64*: enough randomness to pick accounts and holds.
struct Rng(Cell<u64>);

impl Rng {
    fn next(&self, below: u64) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }
}

/// What one cycle needs.
struct Cx {
    target: TargetSpec,
    dst: SocketAddr,
    src: Sources,
}

/// One cycle: go as far as `stage`, hold, drop.
async fn cycle(
    c: &Cx,
    stage: Stage,
    acct: &Account,
    group: &str,
    hold: Duration,
    reset: bool,
) -> Result<()> {
    let src = c.src.pick();
    let hold = if stage.immediate() {
        Duration::ZERO
    } else {
        hold
    };
    match stage {
        Stage::MidHead => {
            let mut s = tcp_connect(c.dst, src).await?;
            let head = format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
                tinode::ws_path(),
                c.dst
            );
            s.write_all(head.as_bytes()).await?;
            tokio::time::sleep(hold).await;
            if reset {
                set_reset_on_close(&s);
            }
            return Ok(());
        }
        Stage::Upgraded => {
            let ws = ws_connect(c.dst, src, &tinode::ws_path(), None).await?;
            tokio::time::sleep(hold).await;
            if reset {
                set_reset_on_close(ws.get_ref());
            }
            return Ok(());
        }
        Stage::LpCreated | Stage::LpParked => {
            return lp_cycle(c, stage, acct, group, hold, reset).await
        }
        _ => {}
    }
    let mut s = Session::connect(&c.target, c.dst, src, &acct.login).await?;
    if stage == Stage::MidLogin {
        let m = Message::text(tinode::login_token("churn", &acct.token));
        s.conn.send(m).await?;
    } else if stage != Stage::Hi {
        s.login(acct).await?;
        if stage != Stage::LoggedIn {
            s.join("me").await?;
        }
        if matches!(stage, Stage::SubGroup | Stage::MidPub) {
            s.join(group).await?;
        }
        if stage == Stage::MidPub {
            let m = Message::text(tinode::publish(group, now_ns(), "churn"));
            s.conn.send(m).await?;
        }
    }
    tokio::time::sleep(hold).await;
    s.abort(reset);
    Ok(())
}

async fn lp_cycle(
    c: &Cx,
    stage: Stage,
    acct: &Account,
    group: &str,
    hold: Duration,
    reset: bool,
) -> Result<()> {
    let mut lp = LpSession::create(c.dst, c.src.pick()).await?;
    if stage == Stage::LpParked {
        let want = |code: u16, what: &str, ok: bool| -> Result<()> {
            if !ok {
                bail!("long-poll {what} answered {code}");
            }
            Ok(())
        };
        let h = lp.request(tinode::hi).await?;
        want(h.code, "hi", h.code < 300)?;
        let l = lp
            .request(|id| tinode::login_token(id, &acct.token))
            .await?;
        want(l.code, "login", l.code == 200)?;
        for t in ["me", group] {
            let r = lp.request(|id| tinode::sub(id, t)).await?;
            want(r.code, "sub", r.code < 300)?;
        }
        // Park a poll and drop it while it is held (a message may answer it first).
        let _ = tokio::time::timeout(hold.max(Duration::from_millis(20)), lp.poll()).await;
    } else {
        tokio::time::sleep(hold).await;
    }
    lp.abort(reset);
    Ok(())
}

pub async fn worker(spec: &WorkerSpec, cmds: &mut Cmds) -> Result<()> {
    let Role::Churn {
        accounts,
        groups,
        concurrency,
        hold_ms,
        lp,
    } = &spec.role
    else {
        return Err(anyhow!("not a churn role"));
    };
    if accounts.is_empty() || groups.is_empty() {
        bail!("churn needs accounts and groups");
    }
    let dst = resolve(&spec.target.addr)?;
    let cx = Rc::new(Cx {
        target: spec.target.clone(),
        dst,
        src: Sources::new(&spec.src_ips, dst),
    });
    let stages = Rc::new(stages(*lp));
    let rng = Rc::new(Rng(Cell::new(
        now_ns() ^ ((spec.index as u64 + 1) << 32) | 1,
    )));
    let (accounts, groups) = (Rc::new(accounts.clone()), Rc::new(groups.clone()));
    let st = Stats::shared();
    emit(&Ev::Ready(st.borrow().snapshot(0)));
    loop {
        let r = match cmds.next().await? {
            Cmd::Run(r) => r,
            Cmd::Grow { .. } => bail!("churn does not grow"),
            Cmd::Stop => return Ok(()),
        };
        st.borrow_mut().reset(Window {
            from_ns: r.from_ns,
            to_ns: r.to_ns,
        });
        let pstop = Rc::new(Cell::new(false));
        engine::spawn_progress(st.clone(), "run", 0, pstop.clone());
        let pace = Pace {
            start_ns: r.start_ns + r.phase_ns,
            end_ns: r.to_ns,
            rate: r.rate,
        };
        let counts: Rc<RefCell<Vec<(u64, u64)>>> =
            Rc::new(RefCell::new(vec![(0, 0); stages.len()]));
        let next = Rc::new(Cell::new(0u64));
        let mut tasks = Vec::new();
        for _ in 0..(*concurrency).max(1) {
            let (cx, stages, rng, accounts, groups, st, counts, next) = (
                cx.clone(),
                stages.clone(),
                rng.clone(),
                accounts.clone(),
                groups.clone(),
                st.clone(),
                counts.clone(),
                next.clone(),
            );
            let hold_ms = *hold_ms;
            let offset = spec.index;
            tasks.push(tokio::task::spawn_local(async move {
                loop {
                    let i = next.get();
                    let Some(due) = pace.due(i) else { return };
                    next.set(i + 1);
                    wait_until(due, false).await;
                    let k = (i as usize + offset) % stages.len();
                    let stage = stages[k];
                    let acct = &accounts[rng.next(accounts.len() as u64) as usize];
                    let group = &groups[rng.next(groups.len() as u64) as usize];
                    let hold = Duration::from_millis(rng.next(hold_ms + 1));
                    let reset = (i / stages.len() as u64).is_multiple_of(2);
                    st.borrow_mut().sent += 1;
                    let res = tokio::time::timeout(
                        Duration::from_secs(40),
                        cycle(&cx, stage, acct, group, hold, reset),
                    )
                    .await
                    .unwrap_or_else(|_| Err(anyhow!("cycle timed out")));
                    let mut x = st.borrow_mut();
                    match res {
                        Ok(()) => {
                            counts.borrow_mut()[k].0 += 1;
                            x.completed(due);
                        }
                        Err(e) => {
                            counts.borrow_mut()[k].1 += 1;
                            x.error(format!("{}: {e:#}", stage.name()));
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        pstop.set(true);
        let mut snap = st.borrow().snapshot(0);
        let per: serde_json::Map<String, serde_json::Value> = stages
            .iter()
            .zip(counts.borrow().iter())
            .map(|(s, (ok, bad))| {
                (
                    s.name().to_owned(),
                    serde_json::json!({"done": ok, "failed": bad}),
                )
            })
            .collect();
        snap.extra = serde_json::Value::Object(per);
        emit(&Ev::Done(snap));
    }
}
