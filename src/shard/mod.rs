//! The thread-per-core runtime: one [`ShardCtx`] per pinned executor holding that shard's
//! session table, topic table and mesh link, and the step functions that connect sessions,
//! topics, the store writer and the hash pool.
//!
//! This is the only layer that knows executors, queues and the clock. Each entry point (a
//! client frame, a mesh envelope, a timer) runs one synchronous step: it queues work, runs it
//! to completion (topics on this shard handled inline, others sent as envelopes), and flushes
//! the mesh once at the end.

mod account;
pub mod local;
pub mod mesh;
pub mod outbox;
mod tasks;

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::account::{AccountRules, Accounts};
use crate::auth::apikey::ApiKeyChecker;
use crate::auth::hasher::HashPool;
use crate::auth::token::TokenIssuer;
use crate::config::Config;
use crate::ids::{SessionId, ShardId, UnixMillis, UserId};
use crate::proto::{decode, encode, Outcome};
use crate::routing::{home_shard, me_topic, SessionEvent, TopicRequest};
use crate::session::{Session, SessionCx, SessionLimits, SessionOut};
use crate::stats::ShardStats;
use crate::store::{Store, StoreError, StoreWriter, WriteBatch};
use crate::topic::{Topic, TopicCx, TopicLimits, TopicOut};

/// Session kinds, re-exported for transports (which do not import the session layer).
pub use crate::session::SessionKind;
pub use mesh::{Envelope, ServiceSender, ShardLink};
pub use outbox::{CloseReason, Outbox};
pub use tasks::{run_tasks, spawn_tasks};

/// Wall-clock now in milliseconds; the only clock read of the protocol path.
pub fn now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

/// Everything a shard is built from.
pub struct ShardInit {
    pub id: ShardId,
    pub n_shards: usize,
    pub cfg: Arc<Config>,
    pub link: ShardLink,
    /// This shard's service sender (completions come back through it).
    pub service: ServiceSender,
    pub store: Arc<dyn Store>,
    pub writer: StoreWriter,
    pub hasher: HashPool,
    pub tokens: TokenIssuer,
    pub api_keys: Arc<ApiKeyChecker>,
    pub stats: Arc<ShardStats>,
    pub all_stats: Arc<Vec<Arc<ShardStats>>>,
    pub hi_params: serde_json::Value,
}

/// A session and its outbound queue.
struct SessionSlot {
    session: Session,
    outbox: Rc<Outbox>,
}

/// A loaded topic and when it became idle.
struct TopicSlot {
    topic: Topic,
    idle_since: Option<UnixMillis>,
}

/// What waits for a store write.
enum StoreWaiter {
    Topic { topic: String, token: u64 },
    Account(account::AccountWaiter),
}

/// Work queued within one step.
enum Work {
    Topic {
        topic: String,
        req: TopicRequest,
    },
    Session {
        sid: SessionId,
        ev: SessionEvent,
    },
    /// A shared frame for local sessions, queued like everything else so that per-session
    /// order (a reply before a fan-out that followed it) is kept.
    Deliver {
        frame: Bytes,
        sids: Vec<SessionId>,
    },
}

/// One shard's state. Reached through [`local::with`].
pub struct ShardCtx {
    pub id: ShardId,
    pub n_shards: usize,
    pub cfg: Arc<Config>,
    link: ShardLink,
    service: ServiceSender,
    store: Arc<dyn Store>,
    writer: StoreWriter,
    hasher: HashPool,
    /// Logins, account creations and changes (`shard/account.rs` carries out its outputs).
    accounts: Accounts,
    api_keys: Arc<ApiKeyChecker>,
    stats: Arc<ShardStats>,
    all_stats: Arc<Vec<Arc<ShardStats>>>,
    session_limits: SessionLimits,
    topic_limits: TopicLimits,
    sessions: HashMap<SessionId, SessionSlot>,
    next_serial: u64,
    topics: HashMap<String, TopicSlot>,
    store_waiters: HashMap<u64, StoreWaiter>,
    hash_waiters: HashMap<u64, account::HashWaiter>,
    next_ticket: u64,
    work: VecDeque<Work>,
    /// Reused output buffers (no allocation per step once warm).
    session_out: Vec<SessionOut>,
    topic_out: Vec<TopicOut>,
    /// Set once shutdown began: no new sessions.
    shutting_down: bool,
}

impl ShardCtx {
    /// Builds a shard's context.
    pub fn new(init: ShardInit) -> ShardCtx {
        let cfg = init.cfg;
        ShardCtx {
            id: init.id,
            n_shards: init.n_shards,
            session_limits: SessionLimits {
                hi_params: init.hi_params,
                max_subscriptions: cfg.session.max_subscriptions,
            },
            topic_limits: TopicLimits {
                max_history: cfg.topic.max_history,
                max_subscriber_count: cfg.topic.max_subscriber_count,
                max_tag_count: cfg.topic.max_tag_count,
                msg_delete_age_ms: cfg.topic.msg_delete_age_secs.saturating_mul(1000),
                max_results: cfg.topic.max_results,
                restricted_tags: cfg.topic.restricted_tags.clone(),
            },
            accounts: Accounts::new(AccountRules::from_config(&cfg), init.tokens),
            cfg,
            link: init.link,
            service: init.service,
            store: init.store,
            writer: init.writer,
            hasher: init.hasher,
            api_keys: init.api_keys,
            stats: init.stats,
            all_stats: init.all_stats,
            sessions: HashMap::new(),
            next_serial: 1,
            topics: HashMap::new(),
            store_waiters: HashMap::new(),
            hash_waiters: HashMap::new(),
            next_ticket: 1,
            work: VecDeque::new(),
            session_out: Vec::new(),
            topic_out: Vec::new(),
            shutting_down: false,
        }
    }

    // ---- entry points used by transports ----

    /// Opens a session; `None` while shutting down.
    pub fn open_session(
        &mut self,
        kind: SessionKind,
        remote: String,
    ) -> Option<(SessionId, Rc<Outbox>)> {
        if self.shutting_down {
            return None;
        }
        let sid = SessionId::new(self.id, self.next_serial);
        self.next_serial += 1;
        let outbox = Rc::new(Outbox::new(
            self.cfg.session.outbound_max_frames,
            self.cfg.session.outbound_max_bytes,
        ));
        let session = Session::new(sid, kind, remote, now());
        self.sessions.insert(
            sid,
            SessionSlot {
                session,
                outbox: outbox.clone(),
            },
        );
        ShardStats::inc(&self.stats.total_sessions);
        ShardStats::set(&self.stats.live_sessions, self.sessions.len() as u64);
        Some((sid, outbox))
    }

    /// Handles one client frame of session `sid`.
    pub fn client_frame(&mut self, sid: SessionId, frame: &[u8]) {
        ShardStats::inc(&self.stats.frames_in);
        let now = now();
        let mut out = std::mem::take(&mut self.session_out);
        if let Some(slot) = self.sessions.get_mut(&sid) {
            match decode(frame) {
                Ok(decoded) => {
                    let mut cx = SessionCx {
                        now,
                        entropy: rand::random(),
                        limits: &self.session_limits,
                        out: &mut out,
                    };
                    slot.session.handle(decoded, &mut cx);
                }
                Err(_) => slot.session.malformed(now, &mut out),
            }
        }
        self.apply_session_out(sid, &mut out);
        self.session_out = out;
        self.run_work();
        self.flush();
    }

    /// The transport lost the connection (or closed it): end the session.
    pub fn close_session(&mut self, sid: SessionId) {
        self.end_session(sid, CloseReason::Ended);
        self.run_work();
        self.flush();
    }

    /// True when the API key is valid.
    pub fn api_key_ok(&self, key: &str) -> bool {
        self.api_keys.check(key)
    }

    /// True when the mesh backlog is large: transports should pause reading.
    pub fn should_pause_reading(&self) -> bool {
        self.link.backlog_len() > self.cfg.mesh.backlog_pause
    }

    /// `/debug/vars` JSON, summed over all shards.
    pub fn stats_json(&self) -> String {
        let mut extra = serde_json::Map::new();
        let w = self.writer.stats().snapshot();
        extra.insert("StoreCommitsTotal".into(), w.commits.into());
        extra.insert("StoreBatchesTotal".into(), w.batches.into());
        extra.insert("StoreOpsTotal".into(), w.ops.into());
        extra.insert("StoreQueued".into(), (self.writer.queued() as u64).into());
        extra.insert("HashQueued".into(), (self.hasher.queued() as u64).into());
        ShardStats::to_json(&self.all_stats, extra)
    }

    // ---- internals ----

    fn end_session(&mut self, sid: SessionId, reason: CloseReason) {
        let Some(mut slot) = self.sessions.remove(&sid) else {
            return;
        };
        slot.outbox.close(reason);
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
    fn apply_session_out(&mut self, sid: SessionId, out: &mut Vec<SessionOut>) {
        for o in out.drain(..) {
            match o {
                SessionOut::Send(frame) => self.push_frame(sid, frame),
                SessionOut::Route { topic, req } => self.route(topic, req),
                SessionOut::Login { id, scheme, secret } => self.login(sid, id, scheme, secret),
                SessionOut::CreateAccount(req) => self.create_account(sid, req),
                SessionOut::Account(change) => self.account_change(sid, change),
                SessionOut::End => self.end_session(sid, CloseReason::Ended),
            }
        }
    }

    /// Queues a frame on a local session; an overflow ends the session (slow consumer).
    fn push_frame(&mut self, sid: SessionId, frame: Bytes) {
        let Some(slot) = self.sessions.get(&sid) else {
            return;
        };
        if slot.outbox.push(frame).is_err() {
            log::info!("session {sid}: outbound queue full, closing (slow consumer)");
            ShardStats::inc(&self.stats.slow_consumers);
            self.end_session(sid, CloseReason::Overflow);
        } else {
            ShardStats::inc(&self.stats.frames_out);
        }
    }

    /// Sends a request to a topic's home shard (inline when that is this shard).
    fn route(&mut self, topic: String, req: TopicRequest) {
        let home = home_shard(&topic, self.n_shards);
        if home == self.id {
            self.work.push_back(Work::Topic { topic, req });
        } else {
            self.link.send(home, Envelope::Topic { topic, req });
        }
    }

    fn send_to_session(&mut self, sid: SessionId, ev: SessionEvent) {
        if sid.shard() == self.id {
            self.work.push_back(Work::Session { sid, ev });
        } else {
            self.link.send(sid.shard(), Envelope::Session { sid, ev });
        }
    }

    /// Runs queued work until none is left.
    fn run_work(&mut self) {
        while let Some(w) = self.work.pop_front() {
            match w {
                Work::Topic { topic, req } => self.topic_request(topic, req),
                Work::Session { sid, ev } => self.session_event(sid, ev),
                Work::Deliver { frame, sids } => self.deliver_local(&frame, &sids),
            }
        }
    }

    fn session_event(&mut self, sid: SessionId, ev: SessionEvent) {
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

    fn topic_request(&mut self, name: String, req: TopicRequest) {
        if !self.topics.contains_key(&name) {
            match &req {
                TopicRequest::Detach { .. }
                | TopicRequest::UserPres { .. }
                | TopicRequest::Refresh
                | TopicRequest::Contact { .. } => return,
                TopicRequest::Join {
                    create: Some(_), ..
                } => {
                    self.topics.insert(
                        name.clone(),
                        TopicSlot {
                            topic: Topic::new_group(&name, self.n_shards),
                            idle_since: None,
                        },
                    );
                }
                _ => match Topic::load(&name, self.store.as_ref(), self.n_shards) {
                    Ok(Some(topic)) => {
                        self.topics.insert(
                            name.clone(),
                            TopicSlot {
                                topic,
                                idle_since: None,
                            },
                        );
                    }
                    Ok(None) => return self.topic_missing(&name, req, Outcome::TopicNotFound),
                    Err(e) => {
                        log::error!("topic {name}: load failed: {e}");
                        return self.topic_missing(&name, req, Outcome::InternalError);
                    }
                },
            }
            ShardStats::set(&self.stats.live_topics, self.topics.len() as u64);
        }
        let mut out = std::mem::take(&mut self.topic_out);
        if let Some(slot) = self.topics.get_mut(&name) {
            let mut cx = TopicCx {
                now: now(),
                store: self.store.as_ref(),
                limits: &self.topic_limits,
                out: &mut out,
            };
            slot.topic.handle(req, &mut cx);
            // The linger (`topic.idle_unload_ms`) counts from the moment the topic became
            // idle, not from the next housekeeping tick.
            slot.idle_since = if slot.topic.is_idle() {
                Some(slot.idle_since.unwrap_or(cx.now))
            } else {
                None
            };
        }
        self.apply_topic_out(&name, &mut out);
        self.topic_out = out;
    }

    /// A request for a topic that does not exist (or failed to load).
    fn topic_missing(&mut self, name: &str, req: TopicRequest, outcome: Outcome) {
        let (req_of, id, as_seen) = match req {
            TopicRequest::Join {
                req, id, as_seen, ..
            } => (req, id, as_seen),
            TopicRequest::Leave {
                req, id, as_seen, ..
            }
            | TopicRequest::Publish {
                req, id, as_seen, ..
            }
            | TopicRequest::Get {
                req, id, as_seen, ..
            } => {
                let o = if outcome == Outcome::InternalError {
                    outcome
                } else {
                    Outcome::AttachFirst
                };
                let frame = encode(&o.ctrl(id.as_deref(), Some(&as_seen), now()).msg());
                self.send_to_session(req.sid, SessionEvent::Frames(vec![frame]));
                self.send_to_session(
                    req.sid,
                    SessionEvent::Detached {
                        topic: name.to_owned(),
                    },
                );
                return;
            }
            TopicRequest::Note { req, .. } => {
                self.send_to_session(
                    req.sid,
                    SessionEvent::Detached {
                        topic: name.to_owned(),
                    },
                );
                return;
            }
            TopicRequest::Set {
                req, id, as_seen, ..
            }
            | TopicRequest::Del {
                req, id, as_seen, ..
            } => {
                let o = if outcome == Outcome::InternalError {
                    outcome
                } else {
                    Outcome::TopicNotFound
                };
                let frame = encode(&o.ctrl(id.as_deref(), Some(&as_seen), now()).msg());
                self.send_to_session(req.sid, SessionEvent::Frames(vec![frame]));
                return;
            }
            TopicRequest::Detach { .. }
            | TopicRequest::UserPres { .. }
            | TopicRequest::Refresh
            | TopicRequest::Contact { .. } => return,
        };
        let frame = encode(&outcome.ctrl(id.as_deref(), Some(&as_seen), now()).msg());
        self.send_to_session(req_of.sid, SessionEvent::Frames(vec![frame]));
        self.send_to_session(
            req_of.sid,
            SessionEvent::Detached {
                topic: name.to_owned(),
            },
        );
    }

    /// Executes what a topic step produced.
    fn apply_topic_out(&mut self, topic: &str, out: &mut Vec<TopicOut>) {
        for o in out.drain(..) {
            match o {
                TopicOut::ToSession { sid, ev } => self.send_to_session(sid, ev),
                TopicOut::Deliver { frame, batches } => {
                    for (shard, sids) in batches {
                        if shard == self.id {
                            self.work.push_back(Work::Deliver {
                                frame: frame.clone(),
                                sids,
                            });
                        } else {
                            self.link.send(
                                shard,
                                Envelope::Deliver {
                                    frame: frame.clone(),
                                    sids,
                                },
                            );
                        }
                    }
                }
                TopicOut::UserPres { frame, targets } => self.user_pres(frame, targets),
                TopicOut::ToTopic { topic, req } => self.route(topic, req),
                TopicOut::Persist { token, batch } => {
                    let ticket = self.ticket();
                    self.store_waiters.insert(
                        ticket,
                        StoreWaiter::Topic {
                            topic: topic.to_owned(),
                            token,
                        },
                    );
                    if let Err(e) = self.submit(ticket, batch) {
                        self.store_waiters.remove(&ticket);
                        self.topic_persisted(topic.to_owned(), token, Err(e));
                    }
                }
                TopicOut::Write { batch } => {
                    let stats = self.stats.clone();
                    let res = self.writer.submit(
                        batch,
                        Box::new(move |res| {
                            if let Err(e) = res {
                                log::error!("background store write failed: {e}");
                                ShardStats::inc(&stats.store_errors);
                            }
                        }),
                    );
                    if let Err(e) = res {
                        log::error!("background store write refused: {e}");
                        ShardStats::inc(&self.stats.store_errors);
                    }
                }
            }
        }
    }

    fn deliver_local(&mut self, frame: &Bytes, sids: &[SessionId]) {
        for sid in sids {
            self.push_frame(*sid, frame.clone());
        }
    }

    /// Routes a user-level `{pres}` to each target's `me` topic (only where it is loaded).
    fn user_pres(&mut self, frame: Bytes, targets: Vec<(UserId, Vec<SessionId>)>) {
        let mut remote: Vec<Vec<(UserId, Vec<SessionId>)>> = vec![Vec::new(); self.n_shards];
        for (uid, skip) in targets {
            let me = me_topic(uid);
            let home = home_shard(&me, self.n_shards);
            if home == self.id {
                if self.topics.contains_key(&me) {
                    self.work.push_back(Work::Topic {
                        topic: me,
                        req: TopicRequest::UserPres {
                            frame: frame.clone(),
                            skip,
                        },
                    });
                }
            } else {
                remote[home.idx()].push((uid, skip));
            }
        }
        for (i, targets) in remote.into_iter().enumerate() {
            if !targets.is_empty() {
                self.link.send(
                    ShardId(i as u16),
                    Envelope::UserPres {
                        frame: frame.clone(),
                        targets,
                    },
                );
            }
        }
    }

    fn ticket(&mut self) -> u64 {
        let t = self.next_ticket;
        self.next_ticket += 1;
        t
    }

    /// Submits a write whose completion comes back as [`Envelope::StoreDone`].
    fn submit(&mut self, ticket: u64, batch: WriteBatch) -> Result<(), StoreError> {
        let service = self.service.clone();
        self.writer.submit(
            batch,
            Box::new(move |res| {
                let _ = service.send(Envelope::StoreDone { ticket, res });
            }),
        )
    }

    fn topic_persisted(&mut self, name: String, token: u64, res: Result<(), StoreError>) {
        if res.is_err() {
            ShardStats::inc(&self.stats.store_errors);
        }
        let mut out = std::mem::take(&mut self.topic_out);
        if let Some(slot) = self.topics.get_mut(&name) {
            let mut cx = TopicCx {
                now: now(),
                store: self.store.as_ref(),
                limits: &self.topic_limits,
                out: &mut out,
            };
            slot.topic.handle_persisted(token, res, &mut cx);
        }
        self.apply_topic_out(&name, &mut out);
        self.topic_out = out;
    }

    /// Handles envelopes received from the mesh.
    pub fn handle_envelopes(&mut self, envs: &mut Vec<Envelope>) {
        for env in envs.drain(..) {
            match env {
                Envelope::Topic { topic, req } => self.work.push_back(Work::Topic { topic, req }),
                Envelope::Deliver { frame, sids } => {
                    self.work.push_back(Work::Deliver { frame, sids })
                }
                Envelope::Session { sid, ev } => self.work.push_back(Work::Session { sid, ev }),
                Envelope::UserPres { frame, targets } => self.user_pres(frame, targets),
                Envelope::StoreDone { ticket, res } => match self.store_waiters.remove(&ticket) {
                    Some(StoreWaiter::Topic { topic, token }) => {
                        self.topic_persisted(topic, token, res)
                    }
                    Some(StoreWaiter::Account(w)) => self.account_stored(w, res),
                    None => {}
                },
                Envelope::HashDone { ticket, outcome } => {
                    if let Some(w) = self.hash_waiters.remove(&ticket) {
                        self.hashed(w, outcome);
                    }
                }
                Envelope::EvictUser { uid, except } => self.evict_local(uid, except),
                Envelope::Shutdown => self.begin_shutdown(),
            }
            self.run_work();
        }
        self.flush();
    }

    /// Flushes the mesh.
    pub fn flush(&mut self) {
        let n = self.link.flush();
        if n > 0 {
            self.stats
                .mesh_out
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        ShardStats::set(&self.stats.mesh_backlog, self.link.backlog_len() as u64);
    }

    /// Unloads topics idle for longer than the configured delay (each says goodbye first:
    /// `off` to contacts, last-seen); refreshes gauges.
    pub fn housekeeping(&mut self) {
        let now = now();
        let delay = self.cfg.topic.idle_unload_ms;
        let mut attachments = 0u64;
        let mut expired = Vec::new();
        for (name, slot) in self.topics.iter_mut() {
            attachments += slot.topic.n_attached() as u64;
            if !slot.topic.is_idle() {
                slot.idle_since = None;
                continue;
            }
            let since = *slot.idle_since.get_or_insert(now);
            if now.0.saturating_sub(since.0) >= delay {
                expired.push(name.clone());
            }
        }
        for name in expired {
            let Some(mut slot) = self.topics.remove(&name) else {
                continue;
            };
            let mut out = std::mem::take(&mut self.topic_out);
            let mut cx = TopicCx {
                now,
                store: self.store.as_ref(),
                limits: &self.topic_limits,
                out: &mut out,
            };
            slot.topic.on_unload(&mut cx);
            self.apply_topic_out(&name, &mut out);
            self.topic_out = out;
        }
        self.run_work();
        ShardStats::set(&self.stats.attachments, attachments);
        ShardStats::set(&self.stats.live_topics, self.topics.len() as u64);
        ShardStats::set(&self.stats.live_sessions, self.sessions.len() as u64);
        ShardStats::set(
            &self.stats.pending_auth,
            (self.hash_waiters.len() + self.store_waiters.len()) as u64,
        );
        self.flush();
    }

    /// Ends every local session of `uid` (but `except`) with `{ctrl 205 "evicted"}`.
    fn evict_local(&mut self, uid: UserId, except: Option<SessionId>) {
        let sids: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(sid, slot)| {
                Some(**sid) != except && slot.session.user().is_some_and(|(u, _)| u == uid)
            })
            .map(|(sid, _)| *sid)
            .collect();
        let frame = encode(&Outcome::Evicted.ctrl(None, None, now()).msg());
        for sid in sids {
            if let Some(slot) = self.sessions.get(&sid) {
                let _ = slot.outbox.push(frame.clone());
            }
            self.end_session(sid, CloseReason::Ended);
        }
    }

    /// Sends an eviction of `uid` to every shard, this one included.
    pub(crate) fn evict_everywhere(&mut self, uid: UserId, except: Option<SessionId>) {
        for i in 0..self.n_shards {
            let shard = ShardId(i as u16);
            if shard == self.id {
                self.evict_local(uid, except);
            } else {
                self.link.send(shard, Envelope::EvictUser { uid, except });
            }
        }
    }

    /// Tells every session the server is stopping and closes them.
    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        let frame = encode(&Outcome::ServerShutdown.ctrl(None, None, now()).msg());
        let sids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for sid in sids {
            if let Some(slot) = self.sessions.get(&sid) {
                let _ = slot.outbox.push(frame.clone());
            }
            self.end_session(sid, CloseReason::Shutdown);
        }
    }

    /// True when the mesh backlog needs a quick retry.
    pub(crate) fn should_retry_soon(&self) -> bool {
        self.link.backlog_len() > 0
    }

    /// True once shutdown began and no session is left.
    pub fn is_drained(&self) -> bool {
        self.shutting_down && self.sessions.is_empty()
    }

    /// True once shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Polls the mesh doorbell.
    pub(crate) fn poll_mesh(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.link.poll_ready(cx)
    }

    /// Drains up to `max` envelopes.
    pub(crate) fn drain_mesh(&self, max: usize, into: &mut Vec<Envelope>) {
        self.link.drain(max, into)
    }
}
