//! Worker-side measurement machinery shared by the workloads: per-point statistics, the
//! connection slots (a session's sending half, swappable on reconnect), reader tasks that turn
//! deliveries into latency samples and drop/duplicate counts, the open-loop sender, the drain
//! after the last send, and progress lines for the parent.
//!
//! Workers run a current-thread tokio runtime inside a `LocalSet`, so state is `Rc<RefCell<…>>`
//! and no borrow is ever held across an `.await`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;

use crate::adapter::{publish_frame, Event, Proto, Reader, Session, Sink};
use crate::hist;
use crate::msg::{Ev, RunCmd, WorkerStats};
use crate::payload::{self, Stamp};
use crate::schedule::{now_ns, wait_until, Pace, Window};
use crate::worker::emit;

const TICK_NS: u64 = 250_000_000;
const MAX_ERROR_SAMPLES: usize = 8;

/// Counters of the current point.
pub struct Stats {
    pub window: Window,
    pub sent: u64,
    pub sent_total: u64,
    pub recv: u64,
    pub recv_total: u64,
    pub acks: u64,
    pub errors: u64,
    pub dups: u64,
    pub gaps: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    pub lat: Histogram<u64>,
    pub ack_lat: Histogram<u64>,
    pub error_samples: Vec<String>,
    pub ticks: Vec<u64>,
    /// Progress denominator while setting up.
    pub setup_done: u64,
}

pub type Shared = Rc<RefCell<Stats>>;

impl Stats {
    pub fn shared() -> Shared {
        Rc::new(RefCell::new(Stats {
            window: Window::default(),
            sent: 0,
            sent_total: 0,
            recv: 0,
            recv_total: 0,
            acks: 0,
            errors: 0,
            dups: 0,
            gaps: 0,
            disconnects: 0,
            reconnects: 0,
            lat: hist::new(),
            ack_lat: hist::new(),
            error_samples: Vec::new(),
            ticks: Vec::new(),
            setup_done: 0,
        }))
    }

    /// Starts a new point: counters to zero, new window.
    pub fn reset(&mut self, w: Window) {
        let setup = self.setup_done;
        let fresh = Stats::shared();
        *self = Rc::try_unwrap(fresh).ok().expect("fresh").into_inner();
        self.window = w;
        self.setup_done = setup;
    }

    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            let mut w = what;
            w.truncate(600);
            self.error_samples.push(w);
        }
    }

    /// Something whose clock started at `sched` completed now (a delivery, a session set-up).
    pub fn completed(&mut self, sched: u64) {
        self.recv_total += 1;
        if self.window.contains(sched) {
            let now = now_ns();
            self.recv += 1;
            hist::record(&mut self.lat, now.saturating_sub(sched));
            let t = (now.saturating_sub(self.window.from_ns) / TICK_NS) as usize;
            if t < 100_000 {
                if self.ticks.len() <= t {
                    self.ticks.resize(t + 1, 0);
                }
                self.ticks[t] += 1;
            }
        }
    }

    pub fn snapshot(&self, held: usize) -> WorkerStats {
        WorkerStats {
            sent: self.sent,
            sent_total: self.sent_total,
            recv: self.recv,
            recv_total: self.recv_total,
            acks: self.acks,
            errors: self.errors,
            dups: self.dups,
            gaps: self.gaps,
            disconnects: self.disconnects,
            reconnects: self.reconnects,
            lat: hist::to_b64(&self.lat),
            ack_lat: hist::to_b64(&self.ack_lat),
            error_samples: self.error_samples.clone(),
            ticks: self.ticks.clone(),
            held,
            extra: serde_json::Value::Null,
        }
    }
}

/// One session's sending half and its receivers' sequence tracking.
#[derive(Default)]
pub struct Slot {
    pub sink: RefCell<Option<Sink>>,
    last_seq: RefCell<HashMap<u32, u64>>,
}

impl Slot {
    pub fn new(sink: Sink) -> Rc<Slot> {
        Rc::new(Slot {
            sink: RefCell::new(Some(sink)),
            last_seq: RefCell::new(HashMap::new()),
        })
    }

    /// Sends one frame through the slot's sink; an error if the slot has none right now.
    pub async fn send(&self, m: Message) -> Result<()> {
        let sink = self.sink.borrow_mut().take();
        let Some(mut sink) = sink else {
            anyhow::bail!("no connection");
        };
        let r = sink.send(m).await;
        self.sink.borrow_mut().get_or_insert(sink);
        r
    }
}

/// Handles one reader event: latency, acks, sequence checks, errors.
pub fn on_event(st: &Shared, slot: &Slot, ev: Event<'_>, replies: &mut Vec<Message>) {
    match ev {
        Event::Delivery(p) => {
            let Some(stamp) = payload::decode(p) else {
                st.borrow_mut().error(format!(
                    "delivery without a stamp: {}",
                    String::from_utf8_lossy(&p[..p.len().min(120)])
                ));
                return;
            };
            let mut last = slot.last_seq.borrow_mut();
            let prev = last.get(&stamp.sender).copied();
            let mut s = st.borrow_mut();
            match prev {
                Some(l) if stamp.seq <= l => {
                    s.dups += 1;
                    return;
                }
                Some(l) if stamp.seq > l + 1 => s.gaps += stamp.seq - l - 1,
                _ => {}
            }
            last.insert(stamp.sender, stamp.seq);
            s.completed(stamp.sched_ns);
        }
        Event::Ack(sched) => {
            let mut s = st.borrow_mut();
            if s.window.contains(sched) {
                s.acks += 1;
                let d = now_ns().saturating_sub(sched);
                hist::record(&mut s.ack_lat, d);
            }
        }
        Event::Error(e) => st.borrow_mut().error(e),
        Event::Reply(m) => replies.push(m),
    }
}

pub type Reopen = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Session>>>>>;

/// Reads a session until it ends; with `reopen`, reconnects (up to 3 tries) and goes on.
pub fn spawn_reader(
    st: Shared,
    slot: Rc<Slot>,
    mut rd: Reader,
    reopen: Option<Reopen>,
    stop: Rc<Cell<bool>>,
) {
    tokio::task::spawn_local(async move {
        let mut replies = Vec::new();
        loop {
            let r = rd
                .next(&mut |ev| on_event(&st, &slot, ev, &mut replies))
                .await;
            for m in replies.drain(..) {
                let _ = slot.send(m).await;
            }
            match r {
                Ok(true) => continue,
                Ok(false) | Err(_) => {
                    if stop.get() {
                        return;
                    }
                    {
                        let mut s = st.borrow_mut();
                        s.disconnects += 1;
                        let why = match &r {
                            Err(e) => format!("connection lost: {e}"),
                            _ => "connection closed by the server".to_owned(),
                        };
                        s.error(why);
                    }
                    slot.sink.borrow_mut().take();
                    let Some(re) = reopen.as_ref() else {
                        return;
                    };
                    let mut ok = false;
                    for _ in 0..3 {
                        if stop.get() {
                            return;
                        }
                        match re().await {
                            Ok(sess) => {
                                let (sink, r2) = sess.split();
                                *slot.sink.borrow_mut() = Some(sink);
                                rd = r2;
                                st.borrow_mut().reconnects += 1;
                                ok = true;
                                break;
                            }
                            Err(e) => {
                                st.borrow_mut().error(format!("reconnect failed: {e:#}"));
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                    }
                    if !ok {
                        return;
                    }
                }
            }
        }
    });
}

/// A sender: which slot it writes to, its stamp id, the topic it publishes on.
#[derive(Clone, Debug)]
pub struct Sender {
    pub slot: usize,
    pub id: u32,
    pub topic: String,
}

/// Open-loop sending: send `i` is due at `pace.due(i)` and goes out from sender `i % n`,
/// stamped with that time (so latency includes any time the sender fell behind).
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    st: &Shared,
    slots: &[Rc<Slot>],
    senders: &[Sender],
    seqs: &mut [u64],
    pace: Pace,
    spin: bool,
    proto: Proto,
    size: usize,
) {
    if senders.is_empty() {
        return;
    }
    let mut i = 0u64;
    while let Some(due) = pace.due(i) {
        wait_until(due, spin).await;
        let k = (i % senders.len() as u64) as usize;
        i += 1;
        let s = &senders[k];
        let seq = seqs[k];
        seqs[k] += 1;
        let p = payload::encode(
            Stamp {
                sender: s.id,
                seq,
                sched_ns: due,
            },
            size,
        );
        let m = publish_frame(proto, &s.topic, due, p);
        match slots[s.slot].send(m).await {
            Ok(()) => {
                let mut x = st.borrow_mut();
                x.sent_total += 1;
                if x.window.contains(due) {
                    x.sent += 1;
                }
            }
            Err(e) => st.borrow_mut().error(format!("send: {e:#}")),
        }
    }
}

/// Waits after the window until deliveries stop (500 ms without a new one, or a quarter of
/// `drain_ms` if that is shorter) or `drain_ms` has passed.
pub async fn drain(st: &Shared, to_ns: u64, drain_ms: u64) {
    wait_until(to_ns, false).await;
    let deadline = to_ns + drain_ms * 1_000_000;
    let mut last = (st.borrow().recv_total, st.borrow().acks);
    let mut quiet_since = now_ns();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = now_ns();
        let cur = (st.borrow().recv_total, st.borrow().acks);
        if cur != last {
            last = cur;
            quiet_since = now;
        }
        let quiet_ns = (drain_ms * 1_000_000 / 4).min(500_000_000);
        if now >= deadline || now - quiet_since >= quiet_ns {
            return;
        }
    }
}

/// Emits progress lines every 250 ms until `stop` is set.
pub fn spawn_progress(st: Shared, phase: &'static str, total: u64, stop: Rc<Cell<bool>>) {
    tokio::task::spawn_local(async move {
        while !stop.get() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let ev = {
                let s = st.borrow();
                Ev::Progress {
                    phase: phase.into(),
                    done: s.setup_done,
                    total,
                    sent: s.sent_total,
                    recv: s.recv_total,
                    errors: s.errors,
                }
            };
            emit(&ev);
        }
    });
}

/// Runs one measurement point with open-loop senders and returns this worker's figures.
#[allow(clippy::too_many_arguments)]
pub async fn run_point(
    st: &Shared,
    slots: &[Rc<Slot>],
    senders: &[Sender],
    seqs: &mut [u64],
    cmd: &RunCmd,
    spin: bool,
    proto: Proto,
    size: usize,
) -> WorkerStats {
    st.borrow_mut().reset(Window {
        from_ns: cmd.from_ns,
        to_ns: cmd.to_ns,
    });
    let stop = Rc::new(Cell::new(false));
    spawn_progress(st.clone(), "run", 0, stop.clone());
    let pace = Pace {
        start_ns: cmd.start_ns + cmd.phase_ns,
        end_ns: cmd.to_ns,
        rate: cmd.rate,
    };
    drive(st, slots, senders, seqs, pace, spin, proto, size).await;
    drain(st, cmd.to_ns, cmd.drain_ms).await;
    stop.set(true);
    let held = slots.iter().filter(|s| s.sink.borrow().is_some()).count();
    let snap = st.borrow().snapshot(held);
    snap
}

/// The worker's command loop for the workloads measured by [`run_point`]: run each point the
/// parent asks for and report it; stop on `Stop`. `name` is the workload, for the error a
/// `Grow` (only W1 ramps) gets.
#[allow(clippy::too_many_arguments)] // The run_point inputs, passed through.
pub async fn serve_points(
    name: &str,
    cmds: &mut crate::worker::Cmds,
    st: &Shared,
    slots: &[Rc<Slot>],
    senders: &[Sender],
    spin: bool,
    proto: Proto,
    size: usize,
    stop: &Cell<bool>,
) -> anyhow::Result<()> {
    use crate::msg::{Cmd, Ev};
    let mut seqs = vec![0u64; senders.len()];
    loop {
        match cmds.next().await? {
            Cmd::Run(r) => {
                let s = run_point(st, slots, senders, &mut seqs, &r, spin, proto, size).await;
                crate::worker::emit(&Ev::Done(s));
            }
            Cmd::Grow { .. } => return Err(anyhow::anyhow!("{name} does not grow")),
            Cmd::Stop => {
                stop.set(true);
                return Ok(());
            }
        }
    }
}
