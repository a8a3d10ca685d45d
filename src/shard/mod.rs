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
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::account::{AccountRules, Accounts};
use crate::auth::apikey::ApiKeyChecker;
use crate::auth::hasher::HashPool;
use crate::auth::token::TokenIssuer;
use crate::config::Config;
use crate::ids::{SessionHandle, SessionId, ShardId, UnixMillis, UserId};
use crate::proto::{decode, DecodeError, Decoded, Encoding, Frame, Outcome};
use crate::routing::{home_shard, me_topic, SessionEvent, TopicRequest, Unreachable};
use crate::session::{Session, SessionCx, SessionLimits, SessionOut};
use crate::stats::ShardStats;
use crate::store::{Answers, ReadQuery, Store, StoreError, StoreWriter, WriteBatch};
use crate::topic::{Topic, TopicCx, TopicLimits, TopicOut};
use mesh::ReadResult;

/// Session kinds, re-exported for transports (which do not import the session layer).
pub use crate::session::SessionKind;
pub use mesh::{Envelope, Local, ServiceSender, ShardLink};
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

/// A session and its outbound queue. The session outlives its transports: a long-poll
/// session exists between requests with its outbox kept, and ends when it was detached for
/// `session.detached_idle_ms`.
struct SessionSlot {
    session: Session,
    outbox: Rc<Outbox>,
    /// The wire encoding of the session's transport: what its outbox holds.
    encoding: Encoding,
    /// The random half of the client's [`SessionHandle`].
    secret: u64,
    /// Transports attached right now (several concurrent long polls may be).
    transports: u32,
    /// When it expires, while no transport is attached (also its key in `detached`).
    expires: Option<UnixMillis>,
}

/// A loaded topic and when it became idle.
struct TopicSlot {
    topic: Topic,
    idle_since: Option<UnixMillis>,
}

/// What waits for a store read.
pub(crate) enum ReadWaiter {
    /// A topic being loaded (its requests wait in `ShardCtx::loading`).
    Load(String),
    /// A loaded topic's request or join.
    Topic { topic: String, token: u64 },
    /// The account machine (its token).
    Account(u64),
}

/// What waits for a store write.
enum StoreWaiter {
    Topic { topic: String, token: u64 },
    Account(account::AccountWaiter),
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
    /// Sessions without a transport, by expiry time.
    detached: BTreeSet<(UnixMillis, SessionId)>,
    topics: HashMap<String, TopicSlot>,
    store_waiters: HashMap<u64, StoreWaiter>,
    read_waiters: HashMap<u64, ReadWaiter>,
    /// Topics being loaded, with the requests that arrived meanwhile.
    loading: HashMap<String, Vec<TopicRequest>>,
    /// Service completions produced within the current step (the embedded store's reads).
    completions: VecDeque<Local>,
    hash_waiters: HashMap<u64, account::HashWaiter>,
    next_ticket: u64,
    /// Envelopes for this shard emitted during the current step, handled in order before it
    /// ends (so per-session order — a reply before a fan-out that followed it — is kept).
    work: VecDeque<Envelope>,
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
            detached: BTreeSet::new(),
            topics: HashMap::new(),
            store_waiters: HashMap::new(),
            read_waiters: HashMap::new(),
            loading: HashMap::new(),
            completions: VecDeque::new(),
            hash_waiters: HashMap::new(),
            next_ticket: 1,
            work: VecDeque::new(),
            session_out: Vec::new(),
            topic_out: Vec::new(),
            shutting_down: false,
        }
    }

    // ---- entry points used by transports ----

    /// Opens a session with no transport attached yet (it expires like any detached session
    /// unless one attaches); `None` while shutting down. The handle is what a client may hold:
    /// the id is random with this shard in its top bits, plus a random secret.
    pub fn open_session(&mut self, kind: SessionKind, remote: String) -> Option<SessionHandle> {
        self.open_session_at(kind, remote, now())
    }

    fn open_session_at(
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
        let session = Session::new(sid, kind, remote, now);
        let expires = now.plus_ms(self.cfg.session.detached_idle_ms);
        self.detached.insert((expires, sid));
        self.sessions.insert(
            sid,
            SessionSlot {
                encoding: session.kind.encoding(),
                session,
                outbox,
                secret,
                transports: 0,
                expires: Some(expires),
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
        if let Some(at) = slot.expires.take() {
            self.detached.remove(&(at, handle.sid));
        }
        Some(slot.outbox.clone())
    }

    /// A transport let go of a session that lives on (a long poll answered); the session
    /// expires `session.detached_idle_ms` after its last transport detached.
    pub fn detach_transport(&mut self, sid: SessionId) {
        self.detach_transport_at(sid, now());
    }

    fn detach_transport_at(&mut self, sid: SessionId, now: UnixMillis) {
        let Some(slot) = self.sessions.get_mut(&sid) else {
            return;
        };
        slot.transports = slot.transports.saturating_sub(1);
        if slot.transports == 0 && slot.expires.is_none() {
            let at = now.plus_ms(self.cfg.session.detached_idle_ms);
            slot.expires = Some(at);
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
        ShardStats::inc(&self.stats.frames_in);
        let now = now();
        let mut out = std::mem::take(&mut self.session_out);
        if let Some(slot) = self.sessions.get_mut(&sid) {
            match msg {
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
        if let Some(at) = slot.expires {
            self.detached.remove(&(at, sid));
        }
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
    fn push_frame(&mut self, sid: SessionId, frame: Frame) {
        let Some(slot) = self.sessions.get(&sid) else {
            return;
        };
        if slot.outbox.push(frame.encoded(slot.encoding)).is_err() {
            log::info!("session {sid}: outbound queue full, closing (slow consumer)");
            ShardStats::inc(&self.stats.slow_consumers);
            self.end_session(sid, CloseReason::Overflow);
        } else {
            ShardStats::inc(&self.stats.frames_out);
        }
    }

    /// The one routing decision: every envelope this shard emits — topic requests, session
    /// events, deliveries, presence, evictions — goes through here. This shard: queued as
    /// work of the current step; another shard: the mesh (a cluster adds "another node").
    fn send(&mut self, dst: ShardId, env: Envelope) {
        if dst == self.id {
            self.work.push_back(env);
        } else {
            self.link.send(dst, env);
        }
    }

    /// Sends a request to a topic's home shard.
    fn route(&mut self, topic: String, req: TopicRequest) {
        let home = home_shard(&topic, self.n_shards);
        self.send(home, Envelope::Topic { topic, req });
    }

    fn send_to_session(&mut self, sid: SessionId, ev: SessionEvent) {
        self.send(sid.shard(), Envelope::Session { sid, ev });
    }

    /// Runs queued work until none is left: completions first (the embedded store's read
    /// answers), then envelopes, in order.
    fn run_work(&mut self) {
        loop {
            if let Some(l) = self.completions.pop_front() {
                self.local(l);
            } else if let Some(env) = self.work.pop_front() {
                self.handle(env);
            } else {
                break;
            }
        }
    }

    /// Handles one envelope addressed to this shard (from the mesh or from this step).
    fn handle(&mut self, env: Envelope) {
        match env {
            Envelope::Topic { topic, req } => self.topic_request(topic, req),
            Envelope::Session { sid, ev } => self.session_event(sid, ev),
            Envelope::Deliver { frame, sids } => self.deliver_local(&frame, &sids),
            Envelope::UserPres { frame, targets } => self.user_pres_local(frame, targets),
            Envelope::EvictUser { uid, except } => self.evict_local(uid, except),
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
        if let Some(waiting) = self.loading.get_mut(&name) {
            // Loading: the request runs once the topic is in memory, in arrival order.
            waiting.push(req);
            return;
        }
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
                    ShardStats::set(&self.stats.live_topics, self.topics.len() as u64);
                }
                _ => {
                    let Some(queries) = Topic::load_reads(&name) else {
                        return self.topic_missing(&name, req, Unreachable::NotFound);
                    };
                    self.loading.insert(name.clone(), vec![req]);
                    return self.read(ReadWaiter::Load(name), queries);
                }
            }
        }
        self.with_topic(&name, |topic, cx| topic.handle(req, cx));
    }

    /// Runs one step of a loaded topic and applies what it produced.
    fn with_topic(&mut self, name: &str, f: impl FnOnce(&mut Topic, &mut TopicCx<'_>)) {
        let mut out = std::mem::take(&mut self.topic_out);
        if let Some(slot) = self.topics.get_mut(name) {
            let mut cx = TopicCx::new(now(), &self.topic_limits, &mut out);
            f(&mut slot.topic, &mut cx);
            // The linger (`topic.idle_unload_ms`) counts from the moment the topic became
            // idle, not from the next housekeeping tick.
            slot.idle_since = if slot.topic.is_idle() {
                Some(slot.idle_since.unwrap_or(cx.now))
            } else {
                None
            };
        }
        self.apply_topic_out(name, &mut out);
        self.topic_out = out;
    }

    /// Asks the store for `queries`; the answers come back as [`Local::ReadDone`]. The
    /// embedded store answers within this step (queued as a completion, so the step's order
    /// is the same as for a store that answers later).
    pub(crate) fn read(&mut self, waiter: ReadWaiter, queries: Vec<ReadQuery>) {
        let ticket = self.ticket();
        self.read_waiters.insert(ticket, waiter);
        let results = queries
            .into_iter()
            .map(|q| {
                let r = self.store.read(&q);
                (q, r)
            })
            .collect();
        self.completions
            .push_back(Local::ReadDone { ticket, results });
    }

    /// A topic's load reads came back: build it and run the requests that waited for it.
    fn topic_loaded(&mut self, name: String, results: Vec<(ReadQuery, ReadResult)>) {
        let waiting = self.loading.remove(&name).unwrap_or_default();
        let mut answers = Answers::default();
        answers.extend(results);
        match Topic::from_answers(&name, &answers, self.n_shards) {
            Ok(Some(topic)) => {
                self.topics.insert(
                    name.clone(),
                    TopicSlot {
                        topic,
                        idle_since: None,
                    },
                );
                ShardStats::set(&self.stats.live_topics, self.topics.len() as u64);
                for req in waiting {
                    self.topic_request(name.clone(), req);
                }
            }
            Ok(None) => {
                for req in waiting {
                    self.topic_missing(&name, req, Unreachable::NotFound);
                }
            }
            Err(e) => {
                log::error!("topic {name}: load failed: {e}");
                ShardStats::inc(&self.stats.store_errors);
                for req in waiting {
                    self.topic_missing(&name, req, Unreachable::Failed);
                }
            }
        }
    }

    /// A request for a topic that does not exist (or failed to load): answered from the
    /// one table of such answers, [`TopicRequest::refusal`].
    fn topic_missing(&mut self, name: &str, req: TopicRequest, why: Unreachable) {
        let (Some(hdr), Some(refusal)) = (req.hdr(), req.refusal(why)) else {
            return;
        };
        for ev in refusal.events(hdr, name, now()) {
            self.send_to_session(hdr.req.sid, ev);
        }
    }

    /// Executes what a topic step produced.
    fn apply_topic_out(&mut self, topic: &str, out: &mut Vec<TopicOut>) {
        for o in out.drain(..) {
            match o {
                TopicOut::ToSession { sid, ev } => self.send_to_session(sid, ev),
                TopicOut::Deliver { frame, to } => {
                    // Encode on this shard before the frame is shared with others, so no
                    // receiving shard ever waits for another to finish an encoding.
                    if to.batches.iter().any(|(shard, _)| *shard != self.id) {
                        frame.prepare(to.encodings);
                    }
                    for (shard, sids) in to.batches {
                        let frame = frame.clone();
                        self.send(shard, Envelope::Deliver { frame, sids });
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
                TopicOut::Read { token, queries } => {
                    let topic = topic.to_owned();
                    self.read(ReadWaiter::Topic { topic, token }, queries);
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

    fn deliver_local(&mut self, frame: &Frame, sids: &[SessionId]) {
        for sid in sids {
            self.push_frame(*sid, frame.clone());
        }
    }

    /// Routes a user-level `{pres}` to the home shard of each target's `me` topic, one
    /// envelope per shard.
    fn user_pres(&mut self, frame: Frame, targets: Vec<(UserId, Vec<SessionId>)>) {
        let mut by_home: Vec<Vec<(UserId, Vec<SessionId>)>> = vec![Vec::new(); self.n_shards];
        for (uid, skip) in targets {
            let home = home_shard(&me_topic(uid), self.n_shards);
            by_home[home.idx()].push((uid, skip));
        }
        for (i, targets) in by_home.into_iter().enumerate() {
            if !targets.is_empty() {
                let frame = frame.clone();
                self.send(ShardId(i as u16), Envelope::UserPres { frame, targets });
            }
        }
    }

    /// A user-level `{pres}` for `me` topics homed here: shown only where `me` is loaded (a
    /// user whose `me` is not loaded is offline).
    fn user_pres_local(&mut self, frame: Frame, targets: Vec<(UserId, Vec<SessionId>)>) {
        for (uid, skip) in targets {
            let me = me_topic(uid);
            if self.topics.contains_key(&me) {
                let frame = frame.clone();
                self.topic_request(me, TopicRequest::UserPres { frame, skip });
            }
        }
    }

    fn ticket(&mut self) -> u64 {
        let t = self.next_ticket;
        self.next_ticket += 1;
        t
    }

    /// Submits a write whose completion comes back as [`Local::StoreDone`].
    fn submit(&mut self, ticket: u64, batch: WriteBatch) -> Result<(), StoreError> {
        let service = self.service.clone();
        self.writer.submit(
            batch,
            Box::new(move |res| {
                let _ = service.send(Local::StoreDone { ticket, res });
            }),
        )
    }

    fn topic_persisted(&mut self, name: String, token: u64, res: Result<(), StoreError>) {
        if res.is_err() {
            ShardStats::inc(&self.stats.store_errors);
        }
        self.with_topic(&name, |topic, cx| topic.handle_persisted(token, res, cx));
    }

    /// Handles what the mesh brought: service completions first, then envelopes from other
    /// shards, each run to completion.
    pub fn handle_received(&mut self, locals: &mut Vec<Local>, envs: &mut Vec<Envelope>) {
        for l in locals.drain(..) {
            self.local(l);
            self.run_work();
        }
        for env in envs.drain(..) {
            self.handle(env);
            self.run_work();
        }
        self.flush();
    }

    /// One completion of this shard's services.
    fn local(&mut self, l: Local) {
        {
            match l {
                Local::ReadDone { ticket, results } => match self.read_waiters.remove(&ticket) {
                    Some(ReadWaiter::Load(name)) => self.topic_loaded(name, results),
                    Some(ReadWaiter::Topic { topic, token }) => {
                        if results.iter().any(|(_, r)| r.is_err()) {
                            ShardStats::inc(&self.stats.store_errors);
                        }
                        self.with_topic(&topic, |t, cx| t.handle_read(token, results, cx));
                    }
                    Some(ReadWaiter::Account(token)) => self.account_read(token, results),
                    None => {}
                },
                Local::StoreDone { ticket, res } => match self.store_waiters.remove(&ticket) {
                    Some(StoreWaiter::Topic { topic, token }) => {
                        self.topic_persisted(topic, token, res)
                    }
                    Some(StoreWaiter::Account(w)) => self.account_stored(w, res),
                    None => {}
                },
                Local::HashDone { ticket, outcome } => {
                    if let Some(w) = self.hash_waiters.remove(&ticket) {
                        self.hashed(w, outcome);
                    }
                }
                Local::Shutdown => self.begin_shutdown(),
            }
        }
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
        self.housekeeping_at(now());
    }

    fn housekeeping_at(&mut self, now: UnixMillis) {
        self.expire_detached(now);
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
            let mut cx = TopicCx::new(now, &self.topic_limits, &mut out);
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

    /// Ends the sessions that have been without a transport for `session.detached_idle_ms`.
    fn expire_detached(&mut self, now: UnixMillis) {
        while self.detached.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, sid)) = self.detached.pop_first() else {
                break;
            };
            if let Some(slot) = self.sessions.get_mut(&sid) {
                slot.expires = None;
            }
            log::debug!("session {sid}: no transport for the idle time, ending");
            self.end_session(sid, CloseReason::Ended);
        }
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
        let frame = Frame::new(Outcome::Evicted.ctrl(None, None, now()).msg());
        for sid in sids {
            if let Some(slot) = self.sessions.get(&sid) {
                let _ = slot.outbox.push(frame.encoded(slot.encoding));
            }
            self.end_session(sid, CloseReason::Ended);
        }
    }

    /// Sends an eviction of `uid` to every shard, this one included.
    pub(crate) fn evict_everywhere(&mut self, uid: UserId, except: Option<SessionId>) {
        for i in 0..self.n_shards {
            self.send(ShardId(i as u16), Envelope::EvictUser { uid, except });
        }
    }

    /// Tells every session the server is stopping and closes them.
    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        let frame = Frame::new(Outcome::ServerShutdown.ctrl(None, None, now()).msg());
        let sids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for sid in sids {
            if let Some(slot) = self.sessions.get(&sid) {
                let _ = slot.outbox.push(frame.encoded(slot.encoding));
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

    /// Drains up to `max` service completions and `max` envelopes.
    pub(crate) fn drain_mesh(&self, max: usize, locals: &mut Vec<Local>, into: &mut Vec<Envelope>) {
        self.link.drain(max, locals, into)
    }
}
