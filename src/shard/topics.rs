//! The shard's topics: loading them from the store (requests wait while a topic loads),
//! running their steps, carrying out what they emit — session events, deliveries encoded
//! before they leave the shard, presence for users' `me` topics, store reads and writes — and
//! answering requests for topics that cannot be reached.
//!
//! Topics are runtime-free state machines (`topic/`); only their home shard holds them.

use crate::ids::{SessionId, ShardId, UserId};
use crate::proto::Frame;
use crate::routing::{me_home_shard, me_topic, Envelope, TopicRequest, Unreachable};
use crate::shard::me_glance::Glance;
use crate::shard::mesh::ReadResult;
use crate::shard::{now, Local, ReadWaiter, ShardCtx, StoreWaiter, TopicSlot};
use crate::stats::ShardStats;
use crate::store::{Answers, ReadQuery, StoreError};
use crate::topic::{Topic, TopicCx, TopicOut};

impl ShardCtx {
    pub(super) fn topic_request(&mut self, name: String, req: TopicRequest) {
        if let Some(waiting) = self.loading.get_mut(&name) {
            // Loading: the request runs once the topic is in memory, in arrival order.
            waiting.push(req);
            return;
        }
        if let Err(why) = self.admit(&name, &req) {
            // A copy relinquished to another node: a request of a session of this node that
            // raced the new view goes on to the master (a forwarded one is not sent on, so
            // two nodes on different views cannot pass it back and forth).
            let own = req
                .requester()
                .is_some_and(|r| r.sid.remote_parts().is_none());
            if let Some(peer) = self.master_elsewhere(&name).filter(|_| own) {
                return self.forward(name, peer, req);
            }
            return self.topic_missing(&name, req, why);
        }
        if !self.topics.contains_key(&name) {
            match &req {
                TopicRequest::Detach { .. }
                | TopicRequest::Foreground { .. }
                | TopicRequest::UserPres { .. }
                | TopicRequest::Refresh
                | TopicRequest::Contact { .. } => return,
                TopicRequest::Join {
                    create: Some(_), ..
                } => {
                    self.topics.insert(
                        name.clone(),
                        TopicSlot {
                            topic: Box::new(Topic::new_group(&name, self.n_shards)),
                            idle_since: None,
                            moved: false,
                        },
                    );
                    ShardStats::set(&self.stats.live_topics, self.topics.len() as u64);
                    ShardStats::inc(&self.stats.total_topics);
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
    pub(super) fn with_topic(&mut self, name: &str, f: impl FnOnce(&mut Topic, &mut TopicCx<'_>)) {
        let mut out = std::mem::take(&mut self.topic_out);
        if let Some(slot) = self.topics.get_mut(name) {
            let mut cx = TopicCx::new(now(), &self.topic_limits, &mut out);
            f(&mut slot.topic, &mut cx);
            self.me_glances.refresh(name, Some(&slot.topic));
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
    /// is the same as for a store that answers later); a network store (PostgreSQL) answers
    /// from the reader pool, later.
    ///
    /// While writes acknowledged before being applied that it could see are queued
    /// (`behind.rs`), the read is queued behind them on the store thread instead, so that it
    /// sees every write submitted before it, as a read after a commit would.
    pub(crate) fn read(&mut self, waiter: ReadWaiter, queries: Vec<ReadQuery>) {
        let ticket = self.ticket();
        self.read_waiters.insert(ticket, waiter);
        if let Some(pool) = &self.readers {
            let service = self.service.clone();
            let queued = pool.read(
                queries.clone(),
                Box::new(move |results| {
                    let _ = service.send(Local::ReadDone { ticket, results });
                }),
            );
            if let Err(e) = queued {
                let results = queries.into_iter().map(|q| (q, Err(e.clone()))).collect();
                self.completions
                    .push_back(Local::ReadDone { ticket, results });
            }
            return;
        }
        let any_behind = self.writer.behind();
        let queue = queries
            .iter()
            .any(|q| self.behind.must_queue(q, any_behind));
        let queries = if queue {
            let service = self.service.clone();
            let queued = self.writer.read(
                queries.clone(),
                Box::new(move |results| {
                    let _ = service.send(Local::ReadDone { ticket, results });
                }),
            );
            match queued {
                Ok(()) => return,
                Err(e) => {
                    let results = queries.into_iter().map(|q| (q, Err(e.clone()))).collect();
                    self.completions
                        .push_back(Local::ReadDone { ticket, results });
                    return;
                }
            }
        } else {
            queries
        };
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
    pub(super) fn topic_loaded(&mut self, name: String, results: Vec<(ReadQuery, ReadResult)>) {
        let waiting = self.loading.remove(&name).unwrap_or_default();
        if let Err(why) = self.placement(&name) {
            // The cluster moved it while it loaded: never serve it here.
            for req in waiting {
                self.topic_missing(&name, req, why);
            }
            return;
        }
        let mut answers = Answers::default();
        answers.extend(results);
        match Topic::from_answers(&name, &answers, self.n_shards) {
            Ok(Some(topic)) => {
                self.me_glances.refresh(&name, Some(&topic));
                self.topics.insert(
                    name.clone(),
                    TopicSlot {
                        topic: Box::new(topic),
                        idle_since: None,
                        moved: false,
                    },
                );
                ShardStats::set(&self.stats.live_topics, self.topics.len() as u64);
                ShardStats::inc(&self.stats.total_topics);
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
                tracing::error!(topic = %name, "topic load failed: {e}");
                ShardStats::inc(&self.stats.store_errors);
                for req in waiting {
                    self.topic_missing(&name, req, Unreachable::Failed);
                }
            }
        }
    }

    /// A request for a topic that does not exist (or failed to load): answered from the
    /// one table of such answers, [`TopicRequest::refusal`].
    pub(super) fn topic_missing(&mut self, name: &str, req: TopicRequest, why: Unreachable) {
        let (Some(hdr), Some(refusal)) = (req.hdr(), req.refusal(why)) else {
            return;
        };
        for ev in refusal.events(hdr, name, now()) {
            self.send_to_session(hdr.req.sid, ev);
        }
    }

    /// Executes what a topic step produced.
    pub(super) fn apply_topic_out(&mut self, topic: &str, out: &mut Vec<TopicOut>) {
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
                    if let Err(e) = self.persist(ticket, batch) {
                        self.store_waiters.remove(&ticket);
                        self.topic_persisted(topic.to_owned(), token, Err(e));
                    }
                }
                TopicOut::Read { token, queries } => {
                    let topic = topic.to_owned();
                    self.read(ReadWaiter::Topic { topic, token }, queries);
                }
                TopicOut::Write { batch } => {
                    let res = self.writer.submit(batch, self.log_failure());
                    if let Err(e) = res {
                        log::error!("background store write refused: {e}");
                        ShardStats::inc(&self.stats.store_errors);
                    }
                }
            }
        }
    }

    pub(super) fn deliver_local(&mut self, frame: &Frame, sids: &[SessionId]) {
        if self.rejoins.busy() {
            if let Some(rest) = self.rejoin_hold(frame, sids) {
                return self.deliver_local(frame, &rest);
            }
        }
        for sid in sids {
            self.push_frame(*sid, frame.clone());
        }
    }

    /// Routes a user-level `{pres}` to the home shard of each target's `me` topic, one
    /// envelope per shard, and to the other cluster nodes (`proxy_me.rs`).
    pub(super) fn user_pres(&mut self, frame: Frame, targets: Vec<(UserId, Vec<SessionId>)>) {
        self.me_cross_pres(&frame, &targets);
        self.user_pres_here(frame, targets);
    }

    /// Routes a user-level `{pres}` to the home shard of each target's `me` topic on this
    /// node, one envelope per shard.
    pub(super) fn user_pres_here(&mut self, frame: Frame, targets: Vec<(UserId, Vec<SessionId>)>) {
        let mut by_home: Vec<Vec<(UserId, Vec<SessionId>)>> = vec![Vec::new(); self.n_shards];
        for (uid, skip) in targets {
            let home = me_home_shard(uid, self.n_shards);
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
    pub(super) fn user_pres_local(&mut self, frame: Frame, targets: Vec<(UserId, Vec<SessionId>)>) {
        for (uid, skip) in targets {
            // The common case answered from the glance table: `me` not loaded here, or a
            // conversation open on all of the member's sessions. A `me` topic is in `loading`
            // only while it is absent from `topics` (and so has no glance).
            let glance = self.me_glances.get(uid);
            if cfg!(debug_assertions) {
                // The glance table follows the topic table (every test run checks it).
                let topic = self.topics.get(&me_topic(uid)).map(|s| &*s.topic);
                assert_eq!(
                    glance,
                    topic.map(Glance::of),
                    "stale glance of {uid:?}'s me"
                );
            }
            match glance {
                None => continue,
                Some(g) if g.reaches_none(&skip) == Some(true) => continue,
                Some(_) => {}
            }
            let me = me_topic(uid);
            match self.topics.get(&me) {
                None => continue,
                // A conversation open on all of the member's sessions (the common case of a
                // message): nothing to show, no request to run.
                Some(slot)
                    if !self.loading.contains_key(&me)
                        && slot.topic.user_pres_reaches_none(&skip) =>
                {
                    continue
                }
                Some(_) => {}
            }
            let frame = frame.clone();
            self.topic_request(me, TopicRequest::UserPres { frame, skip });
        }
    }

    pub(super) fn topic_persisted(
        &mut self,
        name: String,
        token: u64,
        res: Result<(), StoreError>,
    ) {
        if res.is_err() {
            ShardStats::inc(&self.stats.store_errors);
        }
        self.with_topic(&name, |topic, cx| topic.handle_persisted(token, res, cx));
    }
}
