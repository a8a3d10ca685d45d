//! Long polling in the runtime: requests that reach a session through its home shard, whichever
//! shard accepted their HTTP connection.
//!
//! The transport hands every request with a session handle to [`ShardCtx::longpoll`], which
//! sends `Envelope::LongPoll` to the handle's shard through the one routing decision (`send`:
//! queued as work when that is this shard, the mesh otherwise) and returns an [`LpWait`] that the
//! answer fills. On the home shard the request attaches to the session for its duration: a
//! message goes to the session like a WebSocket frame, a poll takes the next queued frame, or, when
//! none is queued, a hold task waits for one (or the hold time, or a cancel from the accepting
//! shard when its client went away) and then detaches. Every answer travels back as
//! `Envelope::LongPollAnswer` through `send` again. Envelopes carry plain data only (the
//! decoded message, bytes, tickets); the `Rc`s stay in each shard's own tables.
//!
//! A long-poll session that ends with frames still queued (its eviction notice, the reply
//! before it) keeps its closed outbox for `session.detached_idle_ms`, so the next polls deliver
//! those last frames before the session is reported gone (403), as the reference writes its
//! final message.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;

use crate::ids::{SessionHandle, SessionId, UnixMillis};
use crate::routing::{LpAnswer, LpReplyTo, LpRequest};
use crate::shard::local::with;
use crate::shard::{Envelope, Outbox, ShardCtx};
use crate::stats::ShardStats;

/// A long-poll request waiting for its answer on the shard that holds its connection.
#[derive(Debug)]
pub struct LpWait {
    ticket: u64,
    answer: RefCell<Option<LpAnswer>>,
    waker: RefCell<Option<Waker>>,
}

impl LpWait {
    /// A request waiting under `ticket`, not answered yet.
    pub(super) fn new(ticket: u64) -> LpWait {
        LpWait {
            ticket,
            answer: RefCell::new(None),
            waker: RefCell::new(None),
        }
    }

    /// This request's ticket (what [`ShardCtx::longpoll_gone`] names).
    pub fn ticket(&self) -> u64 {
        self.ticket
    }

    /// Ready with the answer once it came.
    pub fn poll_answer(&self, cx: &mut Context<'_>) -> Poll<LpAnswer> {
        if let Some(a) = self.answer.borrow_mut().take() {
            return Poll::Ready(a);
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }

    pub(super) fn set(&self, answer: LpAnswer) {
        *self.answer.borrow_mut() = Some(answer);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// A poll held on the home shard: cancelled when its client went away.
#[derive(Debug, Default)]
pub(super) struct LpHold {
    cancelled: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl LpHold {
    fn cancel(&self) {
        self.cancelled.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.cancelled.get() {
            return Poll::Ready(());
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The closed outbox of an ended long-poll session, kept for its last frames.
#[derive(Debug)]
pub(super) struct LpClosing {
    secret: u64,
    outbox: Rc<Outbox>,
    until: UnixMillis,
}

/// How a hold ended.
enum Held {
    Frame(Bytes),
    /// The session ended and nothing is left to say.
    Closed,
    TimedOut,
    Cancelled,
}

impl ShardCtx {
    /// A long-poll request for the session of `handle` (on this shard or another): sends it to
    /// the session's home shard and returns where its answer will appear. The caller must have
    /// checked that the handle names an existing shard ([`ShardCtx::n_shards`]).
    pub fn longpoll(&mut self, handle: SessionHandle, req: LpRequest) -> Rc<LpWait> {
        let ticket = self.ticket();
        let wait = Rc::new(LpWait::new(ticket));
        self.lp_waits.insert(ticket, wait.clone());
        let reply = LpReplyTo {
            shard: self.id,
            ticket,
        };
        self.send(
            handle.sid.shard(),
            Envelope::LongPoll { handle, req, reply },
        );
        self.run_work();
        self.flush();
        wait
    }

    /// The client of a request still waiting (`ticket`) went away: forget it, and stop the
    /// hold on the home shard so that no frame is taken for nobody.
    pub fn longpoll_gone(&mut self, handle: SessionHandle, ticket: u64) {
        if self.lp_remote_gone(handle, ticket) {
            return;
        }
        if self.lp_waits.remove(&ticket).is_none() {
            return;
        }
        let reply = LpReplyTo {
            shard: self.id,
            ticket,
        };
        self.send(handle.sid.shard(), Envelope::LongPollCancel { reply });
        self.run_work();
        self.flush();
    }

    /// On the home shard: one request for a local session.
    pub(super) fn longpoll_request(
        &mut self,
        handle: SessionHandle,
        req: LpRequest,
        reply: LpReplyTo,
    ) {
        let Some(outbox) = self.attach_transport(handle) else {
            let answer = self.closing_answer(handle, &req);
            return self.longpoll_answer(reply, answer);
        };
        let sid = handle.sid;
        let answer = match req {
            LpRequest::Send(msg) => {
                ShardStats::inc(&self.stats.lp_in);
                self.session_input(sid, *msg);
                LpAnswer::Accepted
            }
            LpRequest::Probe => {
                let _ = outbox.push(Bytes::from_static(b"0"));
                LpAnswer::Accepted
            }
            LpRequest::Poll => match outbox.try_pop() {
                Some(frame) => {
                    ShardStats::inc(&self.stats.lp_out);
                    LpAnswer::Frame(frame)
                }
                None if outbox.is_closed() => LpAnswer::Invalid,
                None => {
                    let hold = Rc::new(LpHold::default());
                    self.lp_holds.insert(reply, hold.clone());
                    let limit = Duration::from_millis(self.cfg.longpoll.hold_ms);
                    glommio::spawn_local(hold_poll(sid, outbox, hold, limit, reply)).detach();
                    return;
                }
            },
        };
        self.detach_transport(sid);
        self.longpoll_answer(reply, answer);
    }

    /// On the home shard: a long-poll session ended; keep its outbox while frames are left.
    pub(super) fn keep_closing(&mut self, sid: SessionId, secret: u64, outbox: Rc<Outbox>) {
        if !outbox.is_empty() {
            let until = crate::shard::now().plus_ms(self.cfg.session.detached_idle_ms);
            self.lp_closing.insert(
                sid,
                LpClosing {
                    secret,
                    outbox,
                    until,
                },
            );
        }
    }

    /// Forgets ended sessions' outboxes that nobody polled in time.
    pub(super) fn expire_closing(&mut self, now: UnixMillis) {
        if !self.lp_closing.is_empty() {
            self.lp_closing.retain(|_, c| c.until > now);
        }
    }

    /// The answer for a session that is not live: a poll of an ended session with frames left
    /// gets the next one; anything else is refused.
    fn closing_answer(&mut self, handle: SessionHandle, req: &LpRequest) -> LpAnswer {
        let Some(c) = self.lp_closing.get(&handle.sid) else {
            return LpAnswer::Invalid;
        };
        if !handle.secret_matches(c.secret) || !matches!(req, LpRequest::Poll) {
            return LpAnswer::Invalid;
        }
        let next = c.outbox.try_pop();
        if c.outbox.is_empty() {
            self.lp_closing.remove(&handle.sid);
        }
        match next {
            Some(frame) => {
                ShardStats::inc(&self.stats.lp_out);
                LpAnswer::Frame(frame)
            }
            None => LpAnswer::Invalid,
        }
    }

    /// On the home shard: the client of a held poll went away.
    pub(super) fn longpoll_cancel(&mut self, reply: LpReplyTo) {
        if let Some(hold) = self.lp_holds.get(&reply) {
            hold.cancel();
        }
    }

    /// On the accepting shard: the answer to a waiting request.
    pub(super) fn longpoll_answered(&mut self, ticket: u64, answer: LpAnswer) {
        // A request forwarded by another node goes back there (`lp_remote.rs`).
        let Err(answer) = self.lp_served_answer(ticket, answer) else {
            return;
        };
        match self.lp_waits.remove(&ticket) {
            Some(wait) => wait.set(answer),
            None => {
                if let LpAnswer::Frame(_) = answer {
                    log::debug!("long poll {ticket}: answer for a client that went away dropped");
                }
            }
        }
    }

    fn longpoll_answer(&mut self, reply: LpReplyTo, answer: LpAnswer) {
        self.send(
            reply.shard,
            Envelope::LongPollAnswer {
                ticket: reply.ticket,
                answer,
            },
        );
    }

    /// On the home shard: a hold ended.
    fn hold_done(&mut self, sid: SessionId, reply: LpReplyTo, held: Held) {
        self.lp_holds.remove(&reply);
        self.detach_transport(sid);
        let answer = match held {
            Held::Frame(frame) => {
                ShardStats::inc(&self.stats.lp_out);
                LpAnswer::Frame(frame)
            }
            Held::Closed => LpAnswer::Invalid,
            Held::TimedOut => LpAnswer::Empty,
            Held::Cancelled => return,
        };
        self.longpoll_answer(reply, answer);
        self.run_work();
        self.flush();
    }
}

/// Waits on the home shard for the session's next frame, the hold time, or a cancel.
async fn hold_poll(
    sid: SessionId,
    outbox: Rc<Outbox>,
    hold: Rc<LpHold>,
    limit: Duration,
    reply: LpReplyTo,
) {
    let held = {
        let next = async {
            match outbox.pop().await {
                Some(frame) => Held::Frame(frame),
                None => Held::Closed,
            }
        };
        let cancelled = async {
            poll_fn(|cx| hold.poll_cancelled(cx)).await;
            Held::Cancelled
        };
        let timeout = async {
            glommio::timer::sleep(limit).await;
            Held::TimedOut
        };
        // The frame first: one that is already there is never lost to a timer or a cancel.
        futures_lite::future::or(next, futures_lite::future::or(cancelled, timeout)).await
    };
    with(|ctx| ctx.hold_done(sid, reply, held));
}
