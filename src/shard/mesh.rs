//! The cross-core mesh: the lock-free queues that carry [`Envelope`]s (the closed list of
//! shard-to-shard messages, defined in `routing`): one bounded inbox per shard that every
//! other shard sends into (so memory grows linearly with the shard count, not with its
//! square), plus one queue per shard for [`Local`] completions of its service threads (store
//! writer, hash pool, store reads) and the server's shutdown request.
//!
//! An inbox is allocated by the first shard that sends into it (a [`OnceLock`]); until then it
//! costs a pointer and the receiving shard has nothing to drain. A shard no other shard has
//! sent to (every shard of a one-shard server, every shard of an idle one) holds no inbox
//! slots. Once allocated an inbox stays for the life of the mesh, so the steady-state path
//! allocates nothing: a send is an atomic load of the `OnceLock` and a `try_send`.
//!
//! Sending never blocks (but for the one first send into an inbox that races another shard's
//! first send and waits for its allocation): envelopes are batched per destination during a
//! step and flushed at its end with at most one wake-up per destination; a full queue spills
//! into a local backlog that is retried, and a large backlog pauses reading from client
//! sockets. Receiving never blocks either: the shard drains with `try_recv` after its waker
//! fires.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use atomic_waker::AtomicWaker;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::auth::hasher::HashOutcome;
use crate::ids::ShardId;
pub use crate::routing::Envelope;
use crate::store::{ReadAnswer, ReadQuery, StoreError};

/// The result of one store read.
pub type ReadResult = Result<ReadAnswer, StoreError>;

/// Completions and requests from this shard's own services: never sent between shards.
#[derive(Debug)]
pub enum Local {
    /// A store write batch submitted by the receiving shard completed.
    StoreDone {
        ticket: u64,
        res: Result<(), StoreError>,
    },
    /// A password hash job submitted by the receiving shard completed.
    HashDone { ticket: u64, outcome: HashOutcome },
    /// Store reads asked by the receiving shard were answered, each query with its result.
    ReadDone {
        ticket: u64,
        results: Vec<(ReadQuery, ReadResult)>,
    },
    /// The store made everything before this shard's journal segment `below` durable: the
    /// older segments can go.
    JournalCheckpoint { below: u64 },
    /// A new cluster membership view (a cluster node only): place topics by it.
    ClusterView(std::sync::Arc<crate::cluster::View>),
    /// Proxied topic traffic from cluster node `peer` (`shard/proxy.rs`).
    FromNode {
        peer: String,
        msg: crate::cluster::wire::NodeMsg,
    },
    /// Stop: tell sessions, close connections, exit.
    Shutdown,
}

/// Wakes a shard at most once per batch of sends.
#[derive(Debug, Default)]
struct Doorbell {
    waker: AtomicWaker,
    rung: AtomicBool,
}

impl Doorbell {
    fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}

/// One shard's inbox, allocated by the first send into it. Both ends live here, shared by the
/// receiving shard and every sender, so the queue is never disconnected while the mesh lives.
#[derive(Debug)]
struct Inbox {
    capacity: usize,
    queue: OnceLock<(Sender<Envelope>, Receiver<Envelope>)>,
}

impl Inbox {
    fn new(capacity: usize) -> Self {
        Inbox {
            capacity,
            queue: OnceLock::new(),
        }
    }

    /// The sending end, allocating the queue on first use.
    fn sender(&self) -> &Sender<Envelope> {
        &self
            .queue
            .get_or_init(|| crossbeam_channel::bounded(self.capacity))
            .0
    }

    /// The receiving end, or `None` while nobody has sent here.
    fn receiver(&self) -> Option<&Receiver<Envelope>> {
        self.queue.get().map(|(_, rx)| rx)
    }
}

/// A `Send` handle that service threads use to post completions to one shard.
#[derive(Clone, Debug)]
pub struct ServiceSender {
    tx: Sender<Local>,
    bell: Arc<Doorbell>,
}

impl ServiceSender {
    /// Posts an envelope and wakes the shard. Fails (returning the envelope) only when the
    /// shard has exited.
    pub fn send(&self, env: Local) -> Result<(), Box<Local>> {
        self.tx.send(env).map_err(|e| Box::new(e.0))?;
        self.bell.ring();
        Ok(())
    }
}

/// One shard's end of the mesh.
#[derive(Debug)]
pub struct ShardLink {
    id: ShardId,
    /// Each shard's inbox (index = destination; the own one is only drained), allocated on
    /// the first send into it. A bounded multi-producer queue keeps each sender's envelopes in
    /// order, so FIFO per ordered pair of shards holds as with one queue per pair.
    inboxes: Arc<[Inbox]>,
    bells: Vec<Arc<Doorbell>>,
    services: Receiver<Local>,
    /// Envelopes gathered during the current step, per destination.
    outgoing: Vec<Vec<Envelope>>,
    /// Envelopes a full queue refused, per destination, retried in order.
    backlog: Vec<VecDeque<Envelope>>,
    /// Flushes that pushed to a destination (each rings its doorbell once, so this bounds the
    /// wake-ups this shard caused on others: the cross-core hops).
    rings: u64,
    /// Polls of the own doorbell that found it rung (the mesh task ran), for the watchdog.
    answered: Cell<u64>,
    /// The watchdog's last look: `answered` then, if the doorbell was rung at that moment.
    rung_at_last_look: Cell<Option<u64>>,
    /// The mesh task's waker, kept for the watchdog: the doorbell's own slot is emptied by the
    /// very wake-up that may have been lost.
    task: RefCell<Option<Waker>>,
}

/// Builds the mesh for `n` shards: one link per shard and one service sender per shard; each
/// shard's inbox holds `capacity` envelopes once the first envelope is sent to it.
pub fn build(n: usize, capacity: usize) -> (Vec<ShardLink>, Vec<ServiceSender>) {
    let bells: Vec<Arc<Doorbell>> = (0..n).map(|_| Arc::new(Doorbell::default())).collect();
    let inboxes: Arc<[Inbox]> = (0..n).map(|_| Inbox::new(capacity)).collect();
    let mut links = Vec::with_capacity(n);
    let mut services = Vec::with_capacity(n);
    for i in 0..n {
        // Completions are bounded by the writer's and the hash pool's own queues.
        let (stx, srx) = crossbeam_channel::unbounded();
        services.push(ServiceSender {
            tx: stx,
            bell: bells[i].clone(),
        });
        links.push(ShardLink {
            id: ShardId(i as u16),
            inboxes: inboxes.clone(),
            bells: bells.clone(),
            services: srx,
            outgoing: (0..n).map(|_| Vec::new()).collect(),
            backlog: (0..n).map(|_| VecDeque::new()).collect(),
            rings: 0,
            answered: Cell::new(0),
            rung_at_last_look: Cell::new(None),
            task: RefCell::new(None),
        });
    }
    (links, services)
}

impl ShardLink {
    /// Queues an envelope for `dst`; it leaves at the next [`ShardLink::flush`].
    pub fn send(&mut self, dst: ShardId, env: Envelope) {
        if let Some(q) = self.outgoing.get_mut(dst.idx()) {
            q.push(env);
        }
    }

    /// Doorbell rings so far (see the field).
    pub fn rings(&self) -> u64 {
        self.rings
    }

    /// Sends everything gathered, ringing each destination once. Returns how many envelopes
    /// left.
    pub fn flush(&mut self) -> usize {
        let mut sent = 0;
        for dst in 0..self.inboxes.len() {
            if self.outgoing[dst].is_empty() && self.backlog[dst].is_empty() {
                continue;
            }
            let mut pushed = false;
            let tx = self.inboxes[dst].sender();
            while let Some(env) = self.backlog[dst].pop_front() {
                match tx.try_send(env) {
                    Ok(()) => {
                        pushed = true;
                        sent += 1;
                    }
                    Err(TrySendError::Full(env)) | Err(TrySendError::Disconnected(env)) => {
                        self.backlog[dst].push_front(env);
                        break;
                    }
                }
            }
            for env in self.outgoing[dst].drain(..) {
                if !self.backlog[dst].is_empty() {
                    self.backlog[dst].push_back(env);
                    continue;
                }
                match tx.try_send(env) {
                    Ok(()) => {
                        pushed = true;
                        sent += 1;
                    }
                    Err(TrySendError::Full(env)) | Err(TrySendError::Disconnected(env)) => {
                        self.backlog[dst].push_back(env)
                    }
                }
            }
            if pushed {
                self.bells[dst].ring();
                self.rings += 1;
            }
        }
        sent
    }

    /// Envelopes other shards sent that this one has not drained yet.
    pub fn inbox_len(&self) -> usize {
        self.own_inbox().map_or(0, Receiver::len)
    }

    /// Whether this shard's inbox has been allocated (something was sent to it).
    pub fn inbox_allocated(&self) -> bool {
        self.own_inbox().is_some()
    }

    fn own_inbox(&self) -> Option<&Receiver<Envelope>> {
        self.inboxes[self.id.idx()].receiver()
    }

    /// Envelopes waiting in the local backlog.
    pub fn backlog_len(&self) -> usize {
        self.backlog.iter().map(VecDeque::len).sum()
    }

    /// Registers the waker and reports whether the doorbell rang since the last drain.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let bell = &self.bells[self.id.idx()];
        bell.waker.register(cx.waker());
        let mut task = self.task.borrow_mut();
        if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *task = Some(cx.waker().clone());
        }
        drop(task);
        if bell.rung.swap(false, Ordering::AcqRel) {
            self.answered.set(self.answered.get() + 1);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The doorbell watchdog, called from the shard's own thread about once a second: whether
    /// the doorbell has stayed rung from the previous look to this one without the mesh task
    /// answering it. That means the wake-up the ring sent was lost (a runtime fault: nothing
    /// else rings again while the bell stays rung, so the inbox would never be drained); the
    /// task is woken from here (through the waker kept by [`ShardLink::poll_ready`]) and `true`
    /// returned for the caller to count and log. A shard too busy to poll its mesh task for a
    /// whole second would be woken once more than needed, which is harmless.
    pub fn rewake_if_stuck(&self) -> bool {
        let bell = &self.bells[self.id.idx()];
        let rung = bell.rung.load(Ordering::Acquire);
        let answered = self.answered.get();
        if rung && self.rung_at_last_look.get() == Some(answered) {
            if let Some(w) = self.task.borrow().as_ref() {
                w.wake_by_ref();
            }
            self.rung_at_last_look.set(None);
            return true;
        }
        self.rung_at_last_look.set(rung.then_some(answered));
        false
    }

    /// Takes up to `max` received messages: service completions into `locals` first, then
    /// envelopes from the inbox into `into`.
    pub fn drain(&self, max: usize, locals: &mut Vec<Local>, into: &mut Vec<Envelope>) {
        while locals.len() < max {
            match self.services.try_recv() {
                Ok(l) => locals.push(l),
                Err(_) => break,
            }
        }
        if let Some(from) = self.own_inbox() {
            while into.len() < max {
                match from.try_recv() {
                    Ok(env) => into.push(env),
                    Err(_) => break,
                }
            }
        }
        if into.len() >= max || locals.len() >= max {
            // More may be waiting: make sure the next poll drains again.
            self.bells[self.id.idx()]
                .rung
                .store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use crate::routing::{SessionEvent, TopicRequest};
    use std::task::Waker;

    #[test]
    fn envelopes_stay_small() {
        // Queue slots are sized by the largest variant: keep bulky payloads boxed.
        assert!(
            std::mem::size_of::<Envelope>() <= 256,
            "{}",
            std::mem::size_of::<Envelope>()
        );
    }

    fn detach(i: u64) -> Envelope {
        Envelope::Topic {
            topic: format!("t{i}"),
            req: TopicRequest::Detach { sid: SessionId(i) },
        }
    }

    /// An inbox nobody sent into holds no slots; the first flush towards a shard allocates its
    /// inbox (and only its), and that shard drains it like any other.
    #[test]
    fn an_inbox_is_allocated_by_the_first_send_and_drained_after() {
        let (mut links, _svc) = build(3, 4);
        assert!(links.iter().all(|l| !l.inbox_allocated()));
        let mut cx = Context::from_waker(Waker::noop());
        let mut got = Vec::new();
        links[2].drain(100, &mut Vec::new(), &mut got);
        assert!(got.is_empty());
        assert_eq!(links[2].inbox_len(), 0);
        assert!(links[2].poll_ready(&mut cx).is_pending());

        // Gathered but not flushed: still nothing allocated.
        links[0].send(ShardId(2), detach(1));
        assert!(!links[2].inbox_allocated());
        assert_eq!(links[0].flush(), 1);
        assert!(links[2].inbox_allocated());
        assert!(!links[0].inbox_allocated() && !links[1].inbox_allocated());
        assert_eq!(links[2].inbox_len(), 1);

        // A second sender reuses the inbox the first allocated.
        links[1].send(ShardId(2), detach(2));
        assert_eq!(links[1].flush(), 1);
        assert_eq!(links[2].inbox_len(), 2);
        assert!(!links[1].inbox_allocated());

        assert!(links[2].poll_ready(&mut cx).is_ready());
        links[2].drain(100, &mut Vec::new(), &mut got);
        assert_eq!(got.len(), 2);
        assert_eq!(links[2].inbox_len(), 0);
    }

    /// Back-pressure is unchanged by the lazy allocation: the first flush into a fresh inbox
    /// fills it to its capacity and spills the rest into the sender's backlog, which the next
    /// flushes retry in order once the receiver drains.
    #[test]
    fn a_fresh_inbox_reports_full_at_capacity() {
        let (mut links, _svc) = build(2, 3);
        let b = links.pop().unwrap();
        let mut a = links.pop().unwrap();
        for i in 0..5 {
            a.send(ShardId(1), detach(i));
        }
        assert_eq!(a.flush(), 3);
        assert_eq!(b.inbox_len(), 3);
        assert_eq!(a.backlog_len(), 2);
        assert_eq!(a.flush(), 0, "still full");
        assert_eq!(a.backlog_len(), 2);
        let mut got = Vec::new();
        b.drain(100, &mut Vec::new(), &mut got);
        assert_eq!(a.flush(), 2);
        assert_eq!(a.backlog_len(), 0);
        b.drain(100, &mut Vec::new(), &mut got);
        let order: Vec<String> = got
            .iter()
            .map(|e| match e {
                Envelope::Topic { topic, .. } => topic.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(order, ["t0", "t1", "t2", "t3", "t4"]);
    }

    #[test]
    fn envelopes_cross_and_ring_once_per_flush() {
        let (mut links, _svc) = build(2, 4);
        let mut b = links.pop().unwrap();
        let mut a = links.pop().unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(b.poll_ready(&mut cx).is_pending());
        for i in 0..3 {
            a.send(
                ShardId(1),
                Envelope::Topic {
                    topic: format!("t{i}"),
                    req: TopicRequest::Detach { sid: SessionId(i) },
                },
            );
        }
        assert_eq!(a.flush(), 3);
        assert!(b.poll_ready(&mut cx).is_ready());
        let mut got = Vec::new();
        b.drain(100, &mut Vec::new(), &mut got);
        assert_eq!(got.len(), 3);
        assert!(b.poll_ready(&mut cx).is_pending());
        let _ = b.flush();
    }

    /// A wake-up the runtime drops leaves the doorbell rung with nobody to answer it: the
    /// watchdog sees it rung on two looks in a row with no answer between and wakes the task
    /// again; a doorbell not rung, or rung and answered between looks, is left alone.
    #[test]
    fn the_watchdog_rewakes_a_task_whose_wake_up_was_lost() {
        use std::sync::atomic::AtomicUsize;
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let wakes = |c: &Arc<Count>| c.0.load(Ordering::SeqCst);
        let (mut links, _svc) = build(2, 8);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(links[1].poll_ready(&mut cx).is_pending());
        assert!(!links[1].rewake_if_stuck() && !links[1].rewake_if_stuck());

        // A ring wakes the task once; the task never runs: the wake-up was lost.
        links[0].send(ShardId(1), detach(1));
        links[0].flush();
        assert_eq!(wakes(&count), 1);
        assert!(
            !links[1].rewake_if_stuck(),
            "first look: the task may be on its way"
        );
        assert!(
            links[1].rewake_if_stuck(),
            "second look: rung and still unanswered"
        );
        assert_eq!(wakes(&count), 2);
        assert!(
            !links[1].rewake_if_stuck(),
            "woken once, then watched afresh"
        );

        // The task runs, answers and drains.
        assert!(links[1].poll_ready(&mut cx).is_ready());
        links[1].drain(100, &mut Vec::new(), &mut Vec::new());
        // Rung, then answered between two looks: left alone.
        links[0].send(ShardId(1), detach(2));
        links[0].flush();
        assert!(!links[1].rewake_if_stuck());
        assert!(links[1].poll_ready(&mut cx).is_ready());
        links[0].send(ShardId(1), detach(3));
        links[0].flush();
        assert!(!links[1].rewake_if_stuck());
        assert_eq!(wakes(&count), 4, "two ordinary rings, no watchdog wake-up");
    }

    #[test]
    fn service_completions_arrive_on_their_own_queue() {
        let (links, svc) = build(2, 4);
        svc[1].send(Local::Shutdown).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(links[1].poll_ready(&mut cx).is_ready());
        let (mut locals, mut envs) = (Vec::new(), Vec::new());
        links[1].drain(100, &mut locals, &mut envs);
        assert!(matches!(locals.as_slice(), [Local::Shutdown]));
        assert!(envs.is_empty());
    }

    /// Every shard sends into one inbox per destination: each sender's envelopes stay in
    /// order, and the bound is shared, so a full inbox spills each sender into its backlog.
    #[test]
    fn one_inbox_per_shard_keeps_each_senders_order_under_a_shared_bound() {
        let (mut links, _svc) = build(3, 4);
        let c = links.pop().unwrap();
        let mut b = links.pop().unwrap();
        let mut a = links.pop().unwrap();
        let env = |sid: u64| Envelope::Session {
            sid: SessionId(sid),
            ev: SessionEvent::Frames(vec![]),
        };
        for i in 0..3 {
            a.send(ShardId(2), env(i));
            b.send(ShardId(2), env(100 + i));
        }
        assert_eq!(a.flush(), 3);
        assert_eq!(b.flush(), 1, "the inbox holds 4 in all");
        assert_eq!(b.backlog_len(), 2);
        let mut got = Vec::new();
        while got.len() < 6 {
            c.drain(100, &mut Vec::new(), &mut got);
            a.flush();
            b.flush();
        }
        let ids = |from: u64| -> Vec<u64> {
            got.iter()
                .filter_map(|e| match e {
                    Envelope::Session { sid, .. } if sid.0 / 100 == from => Some(sid.0),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(ids(0), vec![0, 1, 2]);
        assert_eq!(ids(1), vec![100, 101, 102]);
    }

    #[test]
    fn a_full_queue_spills_into_the_backlog_in_order() {
        let (mut links, _svc) = build(2, 2);
        let b = links.pop().unwrap();
        let mut a = links.pop().unwrap();
        for i in 0..5 {
            a.send(
                ShardId(1),
                Envelope::Session {
                    sid: SessionId(i),
                    ev: SessionEvent::Frames(vec![]),
                },
            );
        }
        assert_eq!(a.flush(), 2);
        assert_eq!(a.backlog_len(), 3);
        let mut got = Vec::new();
        b.drain(100, &mut Vec::new(), &mut got);
        assert_eq!(a.flush(), 2);
        b.drain(100, &mut Vec::new(), &mut got);
        assert_eq!(a.flush(), 1);
        b.drain(100, &mut Vec::new(), &mut got);
        let order: Vec<u64> = got
            .iter()
            .map(|e| match e {
                Envelope::Session { sid, .. } => sid.0,
                _ => u64::MAX,
            })
            .collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
    }
}
