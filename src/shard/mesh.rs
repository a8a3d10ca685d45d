//! The cross-core mesh: the closed [`Envelope`] enum (the complete list of cross-core
//! interactions) and the lock-free queues that carry it, one per ordered pair of shards plus
//! one per shard for service threads (store writer, hash pool).
//!
//! Sending never blocks: envelopes are batched per destination during a step and flushed at
//! its end with at most one wake-up per destination; a full queue spills into a local backlog
//! that is retried, and a large backlog pauses reading from client sockets. Receiving never
//! blocks either: the shard drains with `try_recv` after its waker fires.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::auth::hasher::HashOutcome;
use crate::ids::{SessionId, ShardId, UserId};
use crate::routing::{SessionEvent, TopicRequest};
use crate::store::StoreError;

/// Everything one shard can ask of another (or a service thread of a shard).
#[derive(Debug)]
pub enum Envelope {
    /// A request for a topic whose home is the receiving shard.
    Topic { topic: String, req: TopicRequest },
    /// One shared frame for many sessions of the receiving shard.
    Deliver { frame: Bytes, sids: Vec<SessionId> },
    /// An event for one session of the receiving shard.
    Session { sid: SessionId, ev: SessionEvent },
    /// A shared `{pres}` frame for the `me` topics (homed on the receiving shard) of users.
    UserPres {
        frame: Bytes,
        targets: Vec<(UserId, Vec<SessionId>)>,
    },
    /// A store write batch submitted by the receiving shard completed.
    StoreDone {
        ticket: u64,
        res: Result<(), StoreError>,
    },
    /// A password hash job submitted by the receiving shard completed.
    HashDone { ticket: u64, outcome: HashOutcome },
    /// End every session of `uid` on the receiving shard (but `except`) with
    /// `{ctrl 205 "evicted"}`: the account was suspended or deleted.
    EvictUser {
        uid: UserId,
        except: Option<SessionId>,
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

/// A `Send` handle that service threads use to post completions to one shard.
#[derive(Clone, Debug)]
pub struct ServiceSender {
    tx: Sender<Envelope>,
    bell: Arc<Doorbell>,
}

impl ServiceSender {
    /// Posts an envelope and wakes the shard. Fails (returning the envelope) only when the
    /// shard has exited.
    pub fn send(&self, env: Envelope) -> Result<(), Box<Envelope>> {
        self.tx.send(env).map_err(|e| Box::new(e.0))?;
        self.bell.ring();
        Ok(())
    }
}

/// One shard's end of the mesh.
#[derive(Debug)]
pub struct ShardLink {
    id: ShardId,
    /// To each shard (index = destination; the own slot is unused).
    to: Vec<Sender<Envelope>>,
    bells: Vec<Arc<Doorbell>>,
    /// From each shard and from services.
    from: Vec<Receiver<Envelope>>,
    services: Receiver<Envelope>,
    /// Envelopes gathered during the current step, per destination.
    outgoing: Vec<Vec<Envelope>>,
    /// Envelopes a full queue refused, per destination, retried in order.
    backlog: Vec<VecDeque<Envelope>>,
}

/// Builds the mesh for `n` shards: one link per shard and one service sender per shard.
pub fn build(n: usize, capacity: usize) -> (Vec<ShardLink>, Vec<ServiceSender>) {
    let bells: Vec<Arc<Doorbell>> = (0..n).map(|_| Arc::new(Doorbell::default())).collect();
    // queues[src][dst]
    let mut senders: Vec<Vec<Sender<Envelope>>> = Vec::with_capacity(n);
    let mut receivers: Vec<Vec<Receiver<Envelope>>> =
        (0..n).map(|_| Vec::with_capacity(n)).collect();
    for _src in 0..n {
        let mut row = Vec::with_capacity(n);
        for rx_row in receivers.iter_mut() {
            let (tx, rx) = crossbeam_channel::bounded(capacity);
            row.push(tx);
            rx_row.push(rx);
        }
        senders.push(row);
    }
    let mut links = Vec::with_capacity(n);
    let mut services = Vec::with_capacity(n);
    for (i, (to, from)) in senders.into_iter().zip(receivers).enumerate() {
        // Completions are bounded by the writer's and the hash pool's own queues.
        let (stx, srx) = crossbeam_channel::unbounded();
        services.push(ServiceSender {
            tx: stx,
            bell: bells[i].clone(),
        });
        links.push(ShardLink {
            id: ShardId(i as u16),
            to,
            bells: bells.clone(),
            from,
            services: srx,
            outgoing: (0..n).map(|_| Vec::new()).collect(),
            backlog: (0..n).map(|_| VecDeque::new()).collect(),
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

    /// Sends everything gathered, ringing each destination once. Returns how many envelopes
    /// left.
    pub fn flush(&mut self) -> usize {
        let mut sent = 0;
        for dst in 0..self.to.len() {
            if self.outgoing[dst].is_empty() && self.backlog[dst].is_empty() {
                continue;
            }
            let mut pushed = false;
            let tx = &self.to[dst];
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
            }
        }
        sent
    }

    /// Envelopes waiting in the local backlog.
    pub fn backlog_len(&self) -> usize {
        self.backlog.iter().map(VecDeque::len).sum()
    }

    /// Registers the waker and reports whether the doorbell rang since the last drain.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let bell = &self.bells[self.id.idx()];
        bell.waker.register(cx.waker());
        if bell.rung.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Takes up to `max` received envelopes (services first, then each peer in turn).
    pub fn drain(&self, max: usize, into: &mut Vec<Envelope>) {
        while into.len() < max {
            match self.services.try_recv() {
                Ok(env) => into.push(env),
                Err(_) => break,
            }
        }
        for rx in &self.from {
            while into.len() < max {
                match rx.try_recv() {
                    Ok(env) => into.push(env),
                    Err(_) => break,
                }
            }
        }
        if into.len() >= max {
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
        b.drain(100, &mut got);
        assert_eq!(got.len(), 3);
        assert!(b.poll_ready(&mut cx).is_pending());
        let _ = b.flush();
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
        b.drain(100, &mut got);
        assert_eq!(a.flush(), 2);
        b.drain(100, &mut got);
        assert_eq!(a.flush(), 1);
        b.drain(100, &mut got);
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
