//! The thread-per-core runtime: one [`ShardCtx`] per pinned executor holding that shard's
//! session table, topic table and mesh link, and the step functions that connect sessions,
//! topics, the store writer and the hash pool.
//!
//! This is the only layer that knows executors, queues and the clock. Each entry point (a
//! client frame, a mesh envelope, a timer) runs one synchronous step: it queues work, runs it
//! to completion (topics on this shard handled inline, others sent as envelopes), and flushes
//! the mesh once at the end. Every envelope a shard emits goes through one routing decision
//! ([`ShardCtx`]'s `send`: this shard, another shard, later another node).
//!
//! `sessions.rs` applies session outputs, `topics.rs` topic outputs, `account.rs` the account
//! machine's; this file holds the context, the routing, completions, housekeeping and shutdown.

mod account;
mod behind;
pub mod door;
mod journal;
pub mod journal_file;
mod latency;
mod limits;
pub mod local;
mod longpoll;
mod lp_remote;
mod me_glance;
pub mod mesh;
pub mod outbox;
mod placement;
mod proxy;
mod proxy_me;
mod proxy_wire;
mod rejoin;
mod sessions;
mod stall;
mod tasks;
#[cfg(test)]
mod tests;
mod topics;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::account::{AccountRules, Accounts};
use crate::auth::apikey::ApiKeyChecker;
use crate::auth::hasher::HashPool;
use crate::auth::token::TokenIssuer;
use crate::config::Config;
use crate::ids::{SessionId, ShardId, UnixMillis, UserId};
use crate::proto::{Encoding, Frame, Outcome};
use crate::routing::{home_shard, SessionEvent, TopicRequest};
use crate::session::{Session, SessionLimits, SessionOut};
use crate::stats::{ProcessStats, Scrape, Services, ShardStats};
use crate::store::readers::ReaderPool;
use crate::store::{Store, StoreError, StoreWriter, WriteBatch};
use crate::topic::{Topic, TopicCx, TopicLimits, TopicOut};

/// Long-poll requests and answers, re-exported for the transport.
pub use crate::routing::{LpAnswer, LpRequest};
/// Session kinds, re-exported for transports (which do not import the session layer).
pub use crate::session::SessionKind;
pub use longpoll::LpWait;
pub use lp_remote::{LpBody, LpTarget};
pub use mesh::{Envelope, Local, ServiceSender, ShardLink};
pub use outbox::{CloseReason, Outbox, PushHook};
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
    /// Reader threads for a store whose reads wait on the network (PostgreSQL); `None`: the
    /// embedded store answers reads within the step.
    pub readers: Option<ReaderPool>,
    pub hasher: HashPool,
    pub tokens: TokenIssuer,
    pub api_keys: Arc<ApiKeyChecker>,
    pub stats: Arc<ShardStats>,
    pub all_stats: Arc<Vec<Arc<ShardStats>>>,
    /// Process-wide state for the monitoring endpoints (uptime, store open).
    pub process: Arc<ProcessStats>,
    pub hi_params: serde_json::Value,
    /// The running cluster node, when this server is one (`cluster.node`).
    pub cluster: Option<Arc<crate::cluster::NodeHandle>>,
}

/// A session and its outbound queue. The session outlives its transports: a long-poll
/// session exists between requests with its outbox kept, and ends when it was detached for
/// `session.detached_idle_ms`.
struct SessionSlot {
    /// Boxed, as `TopicSlot::topic`: the table's spare buckets then cost a pointer, not a
    /// session (W1, memory per idle session).
    session: Box<Session>,
    outbox: Rc<Outbox>,
    /// The wire encoding of the session's transport: what its outbox holds.
    encoding: Encoding,
    /// The random half of the client's [`SessionHandle`].
    secret: u64,
    /// Transports attached right now (several concurrent long polls may be).
    transports: u32,
    /// When it expires, while no transport is attached (also its key in `detached`), in Unix
    /// milliseconds: 8 bytes where an `Option<UnixMillis>` takes 16, in every slot of the table
    /// (W1). Read and written through [`SessionSlot::expires`] and [`SessionSlot::set_expires`].
    expires: Option<std::num::NonZeroU64>,
    /// Receipt times of requests not answered yet (`latency.rs`); none while all are.
    inflight: Option<Box<latency::Inflight>>,
}

impl SessionSlot {
    /// When it expires, while no transport is attached.
    fn expires(&self) -> Option<UnixMillis> {
        self.expires.map(|t| UnixMillis(t.get()))
    }

    /// Sets or clears the expiry. (Clock readings are after the epoch: never 0.)
    fn set_expires(&mut self, at: Option<UnixMillis>) {
        debug_assert_ne!(at, Some(UnixMillis(0)));
        self.expires = at.and_then(|t| std::num::NonZeroU64::new(t.0));
    }
}

/// A loaded topic and when it became idle.
struct TopicSlot {
    /// Boxed: a `Topic` is ~800 bytes and a hash table keeps a third of its buckets spare, so
    /// inline it cost ~1.4 KB per loaded topic (every idle user's `me`; W1).
    topic: Box<Topic>,
    idle_since: Option<UnixMillis>,
    /// The cluster moved the topic to another node: relinquished, unloaded once idle.
    moved: bool,
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
    readers: Option<ReaderPool>,
    writer: StoreWriter,
    hasher: HashPool,
    /// Logins, account creations and changes (`shard/account.rs` carries out its outputs).
    accounts: Accounts,
    api_keys: Arc<ApiKeyChecker>,
    stats: Arc<ShardStats>,
    all_stats: Arc<Vec<Arc<ShardStats>>>,
    process: Arc<ProcessStats>,
    /// `monitor.histograms`: time requests and measure outgoing messages.
    histograms: bool,
    /// Log limits of the noisy conditions (`log.noisy_per_sec`): slow consumers, malformed
    /// client messages.
    noisy_slow: crate::logging::Noisy,
    noisy_malformed: crate::logging::Noisy,
    /// Stalls of the durable syncs seen so far, and their log limit (`stall.rs`).
    stall_watch: stall::StallWatch,
    session_limits: SessionLimits,
    /// Per-address buckets, per-user session counts, background deadlines (`limits.rs`).
    limits: limits::ShardLimits,
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
    /// Long-poll requests of this shard's connections waiting for their answer, by ticket.
    lp_waits: HashMap<u64, Rc<LpWait>>,
    /// Ended long-poll sessions whose last frames wait for a poll.
    lp_closing: HashMap<SessionId, longpoll::LpClosing>,
    /// Polls held for this shard's sessions, by where their answer goes.
    lp_holds: HashMap<crate::routing::LpReplyTo, Rc<longpoll::LpHold>>,
    /// Long polls of this shard's connections forwarded to another node, by ticket: the node.
    lp_remote: HashMap<u64, String>,
    /// Long polls forwarded here by other nodes, by this shard's ticket (`lp_remote.rs`).
    lp_served: HashMap<u64, lp_remote::Served>,
    /// This shard's journal, when appends are acknowledged from it (`store.durable` and
    /// `store.journal`).
    journal: Option<journal::Journal>,
    /// This shard's topics with writes behind the acknowledgement not yet applied.
    behind: behind::Behind,
    /// The front door's books (`door.rs`).
    door: door::Door,
    /// Set once shutdown began: no new sessions.
    shutting_down: bool,
    /// The task waiting for the shard to drain (`run_tasks`).
    drained_waker: Option<std::task::Waker>,
    /// The cluster node this server runs as (`None`: standalone), and the membership view
    /// this shard places topics by (`placement.rs`).
    cluster: Option<Arc<crate::cluster::NodeHandle>>,
    view: Option<Arc<crate::cluster::View>>,
    /// Requests forwarded to other nodes that wait for their answer (`proxy.rs`).
    proxied: Vec<proxy::Pending>,
    /// Stand-ins of other nodes' protobuf sessions, with when they last made a request
    /// (`proxy.rs`): what is sent them crosses with its protobuf bytes.
    remote_pb: HashMap<SessionId, UnixMillis>,
    /// Notifications for `me` topics waiting for the end of the step (`proxy_me.rs`).
    me_out: Vec<proxy_me::MeOut>,
    /// Local sessions' attachments to topics mastered elsewhere, re-joined on failover
    /// (`rejoin.rs`).
    rejoins: rejoin::Rejoins,
    /// What each `me` topic loaded here would show a user-level `{pres}` on (`me_glance.rs`).
    me_glances: me_glance::MeGlances,
}

impl ShardCtx {
    /// Builds a shard's context.
    pub fn new(init: ShardInit) -> ShardCtx {
        let cfg = init.cfg;
        let door = door::Door::new(&cfg, init.n_shards);
        let journal = (cfg.store.embedded() && cfg.store.durable && cfg.store.journal).then(|| {
            journal::Journal::new(
                cfg.store.data_dir.join(crate::store::journal::DIR),
                cfg.store.journal_segment_kib.saturating_mul(1 << 10),
                cfg.store.journal_direct_io,
            )
        });
        ShardCtx {
            id: init.id,
            n_shards: init.n_shards,
            session_limits: SessionLimits::from_config(&cfg, init.hi_params),
            limits: limits::ShardLimits::new(&cfg),
            topic_limits: TopicLimits {
                max_history: cfg.topic.max_history,
                max_subscriber_count: cfg.topic.max_subscriber_count,
                max_tag_count: cfg.topic.max_tag_count,
                msg_delete_age_ms: cfg.topic.msg_delete_age_secs.saturating_mul(1000),
                max_results: cfg.topic.max_results,
                restricted_tags: cfg.topic.restricted_tags.clone(),
            },
            accounts: Accounts::new(AccountRules::from_config(&cfg), init.tokens),
            histograms: cfg.monitor.histograms,
            noisy_slow: crate::logging::Noisy::per_second(cfg.log.noisy_per_sec),
            noisy_malformed: crate::logging::Noisy::per_second(cfg.log.noisy_per_sec),
            stall_watch: stall::StallWatch::new(cfg.log.noisy_per_sec),
            cfg,
            link: init.link,
            service: init.service,
            store: init.store,
            writer: init.writer,
            readers: init.readers,
            hasher: init.hasher,
            api_keys: init.api_keys,
            stats: init.stats,
            all_stats: init.all_stats,
            process: init.process,
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
            lp_waits: HashMap::new(),
            lp_holds: HashMap::new(),
            lp_closing: HashMap::new(),
            lp_remote: HashMap::new(),
            lp_served: HashMap::new(),
            journal,
            behind: behind::Behind::default(),
            door,
            shutting_down: false,
            drained_waker: None,
            view: init.cluster.as_ref().and_then(|c| c.view()),
            cluster: init.cluster,
            proxied: Vec::new(),
            remote_pb: HashMap::new(),
            me_out: Vec::new(),
            rejoins: rejoin::Rejoins::default(),
            me_glances: me_glance::MeGlances::default(),
        }
    }

    /// True when the API key is valid.
    pub fn api_key_ok(&self, key: &str) -> bool {
        self.api_keys.check(key)
    }

    /// True when the mesh backlog is large, or the store thread is far behind the writes
    /// acknowledged before it applied them: transports should pause reading, so that overload
    /// becomes latency at the socket instead of refused writes.
    pub fn should_pause_reading(&self) -> bool {
        self.link.backlog_len() > self.cfg.mesh.backlog_pause
            || self.writer.behind_len() > self.cfg.store.behind_pause
    }

    /// What a scrape reads: every shard's stats, the process's, the shared services'.
    fn scrape(&self) -> Scrape<'_> {
        let w = self.writer.stats().snapshot();
        Scrape {
            shards: &self.all_stats,
            process: &self.process,
            services: Services {
                store_queued: self.writer.queued() as u64,
                store_commits: w.commits,
                store_batches: w.batches,
                store_ops: w.ops,
                store_reads_behind: w.reads,
                store_commit_age_us: self.writer.stats().commit.age().as_micros() as u64,
                store_stalls: self.writer.stats().commit.stalls(),
                hash_queued: self.hasher.queued() as u64,
            },
            cluster: self.cluster.as_ref().map(|c| c.figures()),
        }
    }

    /// `/debug/vars` JSON, summed over all shards.
    pub fn stats_json(&self) -> String {
        crate::stats::expvar::render(&self.scrape(), &crate::stats::process::usage())
    }

    /// `/metrics`: Prometheus text, one series per shard.
    pub fn metrics_text(&self) -> String {
        crate::stats::prom::render(&self.scrape(), &crate::stats::process::usage())
    }

    /// `/readyz`: the store is open (as the server last set it: the store is not touched),
    /// every shard accepts connections, and the cluster's membership is valid. `Err` names
    /// what is not ready.
    pub fn readiness(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.process.store_open.load(Relaxed) {
            return Err("store not open".into());
        }
        let down: Vec<String> = (self.all_stats.iter().enumerate())
            .filter(|(_, s)| s.accepting.load(Relaxed) != 1)
            .map(|(i, _)| i.to_string())
            .collect();
        if !down.is_empty() {
            return Err(format!("shards not accepting: {}", down.join(",")));
        }
        self.cluster_membership_ready()
    }

    /// Marks this shard as accepting connections (its listeners run).
    pub fn set_accepting(&self) {
        ShardStats::set(&self.stats.accepting, u64::from(!self.shutting_down));
    }

    /// Counts a failed accept on one of this shard's listeners.
    pub fn accept_failed(&self) {
        ShardStats::inc(&self.stats.accept_errors);
    }

    // ---- internals ----

    /// The one routing decision: every envelope this shard emits — topic requests, session
    /// events, deliveries, presence, evictions — goes through here. This shard: queued as
    /// work of the current step; another shard: the mesh. ("Another node" is decided in
    /// `route`, by placement, before an envelope is made.)
    fn send(&mut self, dst: ShardId, env: Envelope) {
        if dst.idx() >= self.n_shards {
            // A remote session's stand-in (`SessionId::remote`): over the node link.
            self.send_remote(dst, env);
        } else if dst == self.id {
            self.work.push_back(env);
        } else {
            self.link.send(dst, env);
        }
    }

    /// Sends a request to a topic's home shard; a client's request for a topic that another
    /// cluster node masters is forwarded to that node (`proxy.rs`), and so are a session's
    /// detach and foreground (which also reach a local copy, if one is still loaded).
    fn route(&mut self, topic: String, req: TopicRequest) {
        let req = match self.rejoins.busy() {
            true => match self.rejoin_park(&topic, req) {
                Some(req) => req,
                None => return,
            },
            false => req,
        };
        if req.hdr().is_some() {
            if let Err(why) = self.placement(&topic) {
                if let Some(peer) = self.master_elsewhere(&topic) {
                    return self.forward(topic, peer, req);
                }
                return self.topic_missing(&topic, req, why);
            }
        } else if let TopicRequest::Contact { .. } = &req {
            self.me_cross_request(&topic, &req);
        } else if let TopicRequest::Detach { .. } | TopicRequest::Foreground { .. } = &req {
            if let Some(peer) = self
                .placement(&topic)
                .err()
                .and(self.master_elsewhere(&topic))
            {
                if let TopicRequest::Detach { sid } = &req {
                    let (home, sid) = (home_shard(&topic, self.n_shards), *sid);
                    let req = TopicRequest::Detach { sid };
                    let topic = topic.clone();
                    self.send(home, Envelope::Topic { topic, req });
                }
                return self.forward(topic, peer, req);
            }
        }
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
            Envelope::UserSessions(m) => self.user_sessions(m),
            Envelope::LongPoll { handle, req, reply } => self.longpoll_request(handle, req, reply),
            Envelope::LongPollAnswer { ticket, answer } => self.longpoll_answered(ticket, answer),
            Envelope::LongPollCancel { reply } => self.longpoll_cancel(reply),
        }
    }

    fn ticket(&mut self) -> u64 {
        let t = self.next_ticket;
        self.next_ticket += 1;
        t
    }

    /// Whether writes that cannot fail on a precondition (a topic's appends) are acknowledged
    /// before the store thread applies them. With a non-durable store nothing survives a
    /// crash anyway and a clean shutdown applies the whole queue, so waiting for the commit
    /// would only add a thread round trip per message.
    fn ack_behind(&self) -> bool {
        self.cfg.store.embedded() && !self.cfg.store.durable
    }

    /// Where a topic's write goes: the journal (acknowledged once synced, applied behind),
    /// straight behind (a non-durable store), or to the store thread with a waiter.
    fn persist(&mut self, ticket: u64, batch: WriteBatch) -> Result<(), StoreError> {
        if crate::store::journal::journaled(&batch) {
            if let Some(j) = self.journal.as_mut() {
                j.append(ticket, &batch)?;
                let done = self.behind.submit(&batch, self.log_failure());
                if let Err(e) = self.writer.submit_behind(batch, done) {
                    // Journaled, so it is safe, but the store would lack it until a replay.
                    log::error!("shard {}: journaled write not queued: {e}", self.id.0);
                    ShardStats::inc(&self.stats.store_errors);
                }
                return Ok(());
            }
            if self.ack_behind() {
                let done = self.behind.submit(&batch, self.log_failure());
                let res = self.writer.submit_behind(batch, done);
                self.completions.push_back(Local::StoreDone { ticket, res });
                return Ok(());
            }
        }
        self.submit(ticket, batch)
    }

    /// The completion of a write nobody waits for: a failure can only be logged and counted.
    fn log_failure(&self) -> crate::store::writer::Completion {
        let stats = self.stats.clone();
        Box::new(move |res| {
            if let Err(e) = res {
                log::error!("a store write that nobody waited for failed (it may have been acknowledged): {e}");
                // On the store thread: the one counter written off the shard.
                stats
                    .store_errors_unwaited
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
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
                Local::JournalCheckpoint { below } => self.journal_checkpointed(below),
                Local::ClusterView(view) => self.cluster_view(view),
                Local::FromNode { peer, msg } => self.node_msg(peer, msg),
                Local::Shutdown => self.begin_shutdown(),
            }
        }
    }

    /// Flushes the mesh.
    pub fn flush(&mut self) {
        self.me_flush();
        let n = self.link.flush();
        if n > 0 {
            crate::stats::bump(&self.stats.mesh_out, n as u64);
        }
        ShardStats::set(&self.stats.mesh_backlog, self.link.backlog_len() as u64);
        ShardStats::set(&self.stats.mesh_rings, self.link.rings());
    }

    /// Unloads topics idle for longer than the configured delay (each says goodbye first:
    /// `off` to contacts, last-seen); refreshes gauges.
    pub fn housekeeping(&mut self) {
        self.housekeeping_at(now());
    }

    fn housekeeping_at(&mut self, now: UnixMillis) {
        self.behind.prune();
        if self.link.rewake_if_stuck() {
            crate::stats::bump(&self.stats.mesh_rewakes, 1);
            tracing::warn!(
                "the mesh doorbell rang but its task was not woken for a second: woken again \
                 (a lost wake-up in the runtime; mesh_rewakes_total counts them)"
            );
        }
        let t = std::time::Instant::now();
        let (slow, malformed) = (self.noisy_slow.flush(t), self.noisy_malformed.flush(t));
        if slow > 0 {
            tracing::info!(
                count = slow,
                "more slow consumers closed since the last line"
            );
        }
        if malformed > 0 {
            tracing::info!(
                count = malformed,
                "more malformed messages since the last line"
            );
        }
        self.watch_stalls();
        self.expire_detached(now);
        self.proxy_expire(now);
        self.lp_remote_expire();
        self.rejoin_tick(now);
        self.wake_due(now);
        self.limits.addrs.evict_full(now);
        self.expire_closing(now);
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
            self.me_glances.refresh(&name, None);
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
        ShardStats::set(&self.stats.mesh_inbox, self.link.inbox_len() as u64);
        ShardStats::set(
            &self.stats.pending_auth,
            (self.hash_waiters.len() + self.store_waiters.len()) as u64,
        );
        self.flush();
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
        ShardStats::set(&self.stats.accepting, 0);
        let frame = Frame::new(Outcome::ServerShutdown.ctrl(None, None, now()).msg());
        let sids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for sid in sids {
            if let Some(slot) = self.sessions.get(&sid) {
                let _ = slot.outbox.push(frame.encoded(slot.encoding));
            }
            self.end_session(sid, CloseReason::Shutdown);
        }
        if let Some(w) = self.drained_waker.take() {
            w.wake();
        }
    }

    /// Ready once shutdown began and no session is left; registers the waker otherwise.
    pub(crate) fn poll_drained(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.is_drained() {
            return std::task::Poll::Ready(());
        }
        self.drained_waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }

    /// True when the mesh backlog needs a quick retry.
    pub(crate) fn should_retry_soon(&self) -> bool {
        self.link.backlog_len() > 0
    }

    /// True once shutdown began and no session is left.
    pub fn is_drained(&self) -> bool {
        self.shutting_down && self.sessions.is_empty()
    }

    /// A transport cut a session whose writes stayed blocked (`session.write_stall_ms`):
    /// counted with the overflows as a slow consumer.
    pub fn note_stalled_writer(&self) {
        ShardStats::inc(&self.stats.slow_consumers);
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

impl ShardCtx {
    /// The cluster's part of readiness: a standalone server is always valid; a cluster node
    /// only while it is a member (it has a view under a live epoch).
    fn cluster_membership_ready(&self) -> Result<(), String> {
        if self.cluster.is_none() {
            return Ok(());
        }
        match &self.view {
            Some(v) if v.epoch > 0 => Ok(()),
            Some(_) => Err("cluster: this node is not a member now (fenced)".into()),
            None => Err("cluster: no membership view yet".into()),
        }
    }
}
