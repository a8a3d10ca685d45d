//! The shard's sessions: opening them (random ids with this shard in their top bits, handles
//! with a secret), attaching and detaching transports, client messages from any transport,
//! frames into outboxes, topic events, expiry of sessions without a transport, evictions and
//! the end of a session.
//!
//! Sessions are runtime-free state machines (`session/`); this file applies their outputs.

use std::rc::Rc;
use std::time::Instant;

use crate::ids::{SessionHandle, SessionId, UnixMillis, UserId};
use crate::proto::{decode, DecodeError, Decoded, Encoding, Frame, Outcome, ServerMsg};
use crate::routing::{SessionEvent, TopicRequest};
use crate::session::{Session, SessionCx, SessionOut};
use crate::shard::{latency, now, CloseReason, Outbox, SessionKind, SessionSlot, ShardCtx};
use crate::stats::ShardStats;

impl ShardCtx {
    /// Opens a session with no transport attached yet (it expires like any detached session
    /// unless one attaches); `None` while shutting down. The handle is what a client may hold:
    /// the id is random with this shard in its top bits, plus a random secret.
    pub fn open_session(&mut self, kind: SessionKind, remote: String) -> Option<SessionHandle> {
        self.open_session_at(kind, remote, now())
    }

    pub(super) fn open_session_at(
        &mut self,
        kind: SessionKind,
        remote: String,
        now: UnixMillis,
    ) -> Option<SessionHandle> {
        if self.shutting_down {
            return None;
        }
        let sid = loop {
            let sid = SessionId::new(self.id, rand::random::<u64>());
            if sid.0 & 0xffff_ffff_ffff != 0 && !self.sessions.contains_key(&sid) {
                break sid;
            }
        };
        let secret = rand::random::<u64>();
        let outbox = Rc::new(Outbox::new(
            self.cfg.session.outbound_max_frames,
            self.cfg.session.outbound_max_bytes,
        ));
        ShardStats::inc(&self.stats.sessions_by_kind[kind_index(&kind)]);
        tracing::debug!(session = %sid, remote = %remote, kind = ?kind, "session opened");
        let session = Session::new(sid, kind, remote, now);
        let expires = now.plus_ms(self.cfg.session.detached_idle_ms);
        self.detached.insert((expires, sid));
        self.sessions.insert(
            sid,
            SessionSlot {
                encoding: session.kind.encoding(),
                session: Box::new(session),
                outbox,
                secret,
                transports: 0,
                expires: std::num::NonZeroU64::new(expires.0),
                inflight: None,
            },
        );
        ShardStats::inc(&self.stats.total_sessions);
        ShardStats::set(&self.stats.live_sessions, self.sessions.len() as u64);
        Some(SessionHandle { sid, secret })
    }

    /// Attaches a transport to a live session of this shard and returns the session's outbox
    /// (what the transport writes). `None` for an unknown or expired session or a wrong secret.
    pub fn attach_transport(&mut self, handle: SessionHandle) -> Option<Rc<Outbox>> {
        let slot = self.sessions.get_mut(&handle.sid)?;
        if !handle.secret_matches(slot.secret) {
            return None;
        }
        slot.transports += 1;
        if let Some(at) = slot.expires() {
            slot.set_expires(None);
            self.detached.remove(&(at, handle.sid));
        }
        Some(slot.outbox.clone())
    }

    /// A transport let go of a session that lives on (a long poll answered); the session
    /// expires `session.detached_idle_ms` after its last transport detached.
    pub fn detach_transport(&mut self, sid: SessionId) {
        self.detach_transport_at(sid, now());
    }

    pub(super) fn detach_transport_at(&mut self, sid: SessionId, now: UnixMillis) {
        let Some(slot) = self.sessions.get_mut(&sid) else {
            return;
        };
        slot.transports = slot.transports.saturating_sub(1);
        if slot.transports == 0 && slot.expires().is_none() {
            let at = now.plus_ms(self.cfg.session.detached_idle_ms);
            slot.set_expires(Some(at));
            self.detached.insert((at, sid));
        }
    }

    /// Handles one JSON client frame of session `sid` (WebSocket, long polling).
    pub fn client_frame(&mut self, sid: SessionId, frame: &[u8]) {
        self.client_msg(sid, decode(frame));
    }

    /// Handles one client message of session `sid`, decoded by its transport (any encoding);
    /// an undecodable one is answered `{ctrl 400 "malformed"}`.
    pub fn client_msg(&mut self, sid: SessionId, msg: Result<Decoded, DecodeError>) {
        self.session_input(sid, msg);
        self.run_work();
        self.flush();
    }

    /// One client message into session `sid`, within the current step.
    pub(super) fn session_input(&mut self, sid: SessionId, msg: Result<Decoded, DecodeError>) {
        let now = now();
        let mut out = std::mem::take(&mut self.session_out);
        if let Ok(decoded) = &msg {
            if self.refuse_backed_up(sid, decoded, now) {
                self.flush();
                return;
            }
        }
        if let Some(slot) = self.sessions.get_mut(&sid) {
            if self.histograms {
                if let Some(id) = msg.as_ref().ok().and_then(|d| d.msg.id()) {
                    latency::start(&mut slot.inflight, latency::id_hash(id), Instant::now());
                }
            }
            // Per transport, as the reference's counters (long polls count on their own path).
            match (&slot.session.kind, slot.encoding) {
                (SessionKind::LongPoll, _) => {}
                (_, Encoding::Json) => ShardStats::inc(&self.stats.frames_in),
                (_, Encoding::Protobuf) => ShardStats::inc(&self.stats.grpc_in),
            }
            match msg {
                Ok(decoded) => {
                    let entropy = self.entropy_for(&decoded);
                    let slot = self.sessions.get_mut(&sid).expect("looked up above");
                    let mut cx = SessionCx {
                        now,
                        entropy,
                        limits: &self.session_limits,
                        out: &mut out,
                    };
                    let limited = slot.session.limited();
                    slot.session.handle(decoded, &mut cx);
                    if slot.session.limited() != limited {
                        ShardStats::inc(&self.stats.limited);
                    }
                }
                Err(e) => {
                    ShardStats::inc(&self.stats.malformed);
                    if let Some(before) = self.noisy_malformed.hit(Instant::now()) {
                        if before > 0 {
                            tracing::info!(
                                count = before,
                                "more malformed messages since the last line"
                            );
                        }
                        tracing::info!(session = %sid, remote = %slot.session.remote(), "malformed message: {e}");
                    }
                    slot.session.malformed(now, &mut out)
                }
            }
        }
        self.apply_session_out(sid, &mut out);
        self.session_out = out;
    }

    /// The transport lost the connection (or closed it): end the session.
    pub fn close_session(&mut self, sid: SessionId) {
        self.end_session(sid, CloseReason::Ended);
        self.run_work();
        self.flush();
    }

    pub(super) fn end_session(&mut self, sid: SessionId, reason: CloseReason) {
        let Some(mut slot) = self.sessions.remove(&sid) else {
            return;
        };
        if let Some(at) = slot.expires() {
            self.detached.remove(&(at, sid));
        }
        slot.outbox.close(reason);
        ShardStats::dec(&self.stats.sessions_by_kind[kind_index(&slot.session.kind)]);
        let (uid, due) = (
            slot.session.user().map(|u| u.0),
            slot.session.foreground_at(),
        );
        self.session_gone(sid, uid, due);
        if slot.session.kind == SessionKind::LongPoll {
            self.keep_closing(sid, slot.secret, slot.outbox.clone());
        }
        let mut out = Vec::new();
        slot.session.terminate(&mut out);
        for o in out {
            if let SessionOut::Route { topic, req } = o {
                self.route(topic, req);
            }
        }
        ShardStats::set(&self.stats.live_sessions, self.sessions.len() as u64);
    }

    /// Executes what a session step produced.
    pub(super) fn apply_session_out(&mut self, sid: SessionId, out: &mut Vec<SessionOut>) {
        for o in out.drain(..) {
            match o {
                SessionOut::Send(frame) => self.push_frame(sid, frame),
                SessionOut::Route { topic, req } => self.route(topic, req),
                SessionOut::Login { id, scheme, secret } => {
                    if scheme != "basic" || self.admit_auth_from(sid, id.as_deref(), now()) {
                        self.login(sid, id, scheme, secret)
                    }
                }
                SessionOut::CreateAccount(req) => {
                    if self.admit_auth_from(sid, req.id.as_deref(), now()) {
                        self.create_account(sid, req)
                    }
                }
                SessionOut::WakeAt(at) => self.wake_at(sid, at),
                SessionOut::Account(change) => self.account_change(sid, change),
                SessionOut::End => self.end_session(sid, CloseReason::Ended),
            }
        }
    }

    /// Queues a frame on a local session; an overflow ends the session (slow consumer).
    pub(super) fn push_frame(&mut self, sid: SessionId, frame: Frame) {
        let Some(slot) = self.sessions.get_mut(&sid) else {
            return;
        };
        let bytes = frame.encoded(slot.encoding);
        let size = bytes.len() as u64;
        if slot.outbox.push(bytes).is_err() {
            if let Some(before) = self.noisy_slow.hit(Instant::now()) {
                if before > 0 {
                    tracing::info!(
                        count = before,
                        "more slow consumers closed since the last line"
                    );
                }
                tracing::info!(session = %sid, remote = %slot.session.remote(), "outbound queue full, closing (slow consumer)");
            }
            ShardStats::inc(&self.stats.slow_consumers);
            self.end_session(sid, CloseReason::Overflow);
            return;
        }
        ShardStats::inc(match slot.encoding {
            Encoding::Json => &self.stats.frames_out,
            Encoding::Protobuf => &self.stats.grpc_out,
        });
        // A reply to a request: its class, and (with histograms) how long the request took.
        if let ServerMsg::Ctrl(c) = frame.msg() {
            if let Some(id) = &c.id {
                self.stats.ctrl_code(c.code);
                if self.histograms {
                    if let Some(at) = latency::finish(&mut slot.inflight, latency::id_hash(id)) {
                        let us = at.elapsed().as_micros();
                        self.stats.request_latency.record(us as u64);
                    }
                }
            }
        }
        if self.histograms {
            self.stats.outgoing_size.record(size);
        }
    }

    pub(super) fn session_event(&mut self, sid: SessionId, ev: SessionEvent) {
        let ev = match self.rejoins.busy() {
            true => match self.rejoin_intercept(sid, ev) {
                Some(ev) => ev,
                None => return,
            },
            false => ev,
        };
        self.session_event_now(sid, ev);
    }

    /// [`Self::session_event`] past the re-join's look at it (`rejoin.rs`).
    pub(super) fn session_event_now(&mut self, sid: SessionId, ev: SessionEvent) {
        let mut out = std::mem::take(&mut self.session_out);
        match self.sessions.get_mut(&sid) {
            Some(slot) => slot.session.handle_event(ev, &mut out),
            None => {
                // The session is gone; undo an attachment that raced with its end.
                if let SessionEvent::Attached { topic } = ev {
                    self.route(topic, TopicRequest::Detach { sid });
                }
            }
        }
        self.apply_session_out(sid, &mut out);
        self.session_out = out;
    }

    /// Ends the sessions that have been without a transport for `session.detached_idle_ms`.
    pub(super) fn expire_detached(&mut self, now: UnixMillis) {
        while self.detached.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, sid)) = self.detached.pop_first() else {
                break;
            };
            if let Some(slot) = self.sessions.get_mut(&sid) {
                slot.set_expires(None);
            }
            tracing::debug!(session = %sid, "no transport for the idle time, ending");
            self.end_session(sid, CloseReason::Ended);
            // Nobody came for what it had queued: no later poll gets it either.
            self.lp_closing.remove(&sid);
        }
    }

    /// Ends every local session of `uid` (but `except`) with `{ctrl 205 "evicted"}`.
    pub(super) fn evict_local(&mut self, uid: UserId, except: Option<SessionId>) {
        let sids: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(sid, slot)| {
                Some(**sid) != except && slot.session.user().is_some_and(|(u, _)| u == uid)
            })
            .map(|(sid, _)| *sid)
            .collect();
        let frame = Frame::new(Outcome::Evicted.ctrl(None, None, now()).msg());
        for sid in sids {
            if let Some(slot) = self.sessions.get(&sid) {
                let _ = slot.outbox.push(frame.encoded(slot.encoding));
            }
            self.end_session(sid, CloseReason::Ended);
        }
    }
}

/// A session kind's index in `ShardStats::sessions_by_kind` (`stats::SESSION_KINDS`).
fn kind_index(kind: &SessionKind) -> usize {
    match kind {
        SessionKind::WebSocket => 0,
        SessionKind::LongPoll => 1,
        SessionKind::Grpc => 2,
        SessionKind::Proxy { .. } | SessionKind::Multiplex { .. } => 3,
    }
}
