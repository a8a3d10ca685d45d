//! The topic simulator `Sim` and the helpers the topic tests share: topics over an in-memory
//! store, synchronous writes, a fixed clock, and every frame each session receives recorded.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::access::DefaultAccess;
pub(super) use crate::ids::ShardId;
use crate::proto::client::{GetQuery, SetQuery};
use crate::proto::{Encoding, Frame};
use crate::routing::CreateSpec;
pub(super) use crate::store::Store;
use crate::store::{Answers, ReadQuery, RedbStore, UserState, WriteOp};
use crate::topic::*;

pub(super) const T0: UnixMillis = UnixMillis(1_735_787_045_000);
pub(super) const ALICE: UserId = UserId(0xa11c_e000_0000_0001);
pub(super) const BOB: UserId = UserId(0xb0b0_0000_0000_0002);
pub(super) const CAROL: UserId = UserId(0xca50_1000_0000_0003);
pub(super) const GROUP: &str = "grpTestGroup001";

/// Recipients of one `Deliver`, one entry per destination shard.
pub(super) type Batches = Vec<(ShardId, Vec<SessionId>)>;

/// What one session was told, in order.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Rec {
    Frame(Value),
    Attached(String),
    Detached(String),
}

/// A deterministic stand-in for the shard runtime: it owns topics by routing name, applies
/// their writes to an in-memory store when asked, routes user presence to loaded `me` topics,
/// and records what every session receives.
pub(super) struct Sim {
    pub(super) store: RedbStore,
    pub(super) now: UnixMillis,
    pub(super) limits: TopicLimits,
    pub(super) n_shards: usize,
    pub(super) topics: HashMap<String, Topic>,
    pub(super) inbox: HashMap<SessionId, Vec<Rec>>,
    /// Every `Deliver`: the parsed frame and its per-shard batches.
    pub(super) delivers: Vec<(Value, Batches)>,
    /// `Persist` outputs not yet applied: (topic, token, batch).
    pub(super) in_flight: Vec<(String, u64, WriteBatch)>,
    /// Makes every later `Persist` fail (the batch is not applied).
    pub(super) fail_writes: bool,
    /// Holds `Read`s until [`Sim::answer_reads`] (a store that answers later); by default
    /// they are answered within the step, as the embedded store does.
    pub(super) defer_reads: bool,
    /// `Read` outputs not yet answered: (topic, token, queries).
    pub(super) reads_in_flight: Vec<(String, u64, Vec<ReadQuery>)>,
    /// Every query topics asked, in order.
    pub(super) reads_asked: Vec<ReadQuery>,
    /// Sessions that speak another encoding than JSON.
    pub(super) encodings: HashMap<SessionId, Encoding>,
    /// The bytes each session was given, in its own encoding, as the runtime's outboxes hold.
    pub(super) wire: HashMap<SessionId, Vec<bytes::Bytes>>,
    /// Every `Deliver`'s frame, as the topic emitted it.
    pub(super) shared: Vec<Frame>,
}

impl Sim {
    pub(super) fn new(n_shards: usize) -> Sim {
        Sim {
            store: RedbStore::in_memory(),
            now: T0,
            limits: TopicLimits {
                max_history: 100,
                max_subscriber_count: 8,
                ..TopicLimits::default()
            },
            n_shards,
            topics: HashMap::new(),
            inbox: HashMap::new(),
            delivers: Vec::new(),
            in_flight: Vec::new(),
            fail_writes: false,
            defer_reads: false,
            reads_in_flight: Vec::new(),
            reads_asked: Vec::new(),
            encodings: HashMap::new(),
            wire: HashMap::new(),
            shared: Vec::new(),
        }
    }

    /// Gives `frame` to `sid` as the runtime would: the bytes of the session's encoding (made
    /// once per frame and encoding, shared by every recipient), plus its JSON form parsed for
    /// the tests' assertions (rendered outside the frame's cache, so it does not count).
    fn give(&mut self, sid: SessionId, frame: &Frame) -> Value {
        let enc = self.encodings.get(&sid).copied().unwrap_or_default();
        self.wire.entry(sid).or_default().push(frame.encoded(enc));
        parse(&crate::proto::encode(frame.msg()))
    }

    /// Stores a user record (needed to load its `me` topic).
    pub(super) fn add_user(&mut self, uid: UserId) {
        let rec = UserRecord {
            id: uid,
            created: T0,
            updated: T0,
            state: UserState::Ok,
            access: DefaultAccess {
                auth: AccessMode::USER_AUTH_DEFAULT,
                anon: AccessMode::NONE,
            },
            public: Some(format!(r#"{{"fn":"{}"}}"#, uid.usr())),
            trusted: None,
            tags: Vec::new(),
            last_seen: None,
            creds: Vec::new(),
        };
        self.write(vec![WriteOp::CreateUser(rec)]);
    }

    pub(super) fn write(&self, batch: WriteBatch) {
        let res = self.store.apply(&[batch]);
        assert_eq!(res, [Ok(())]);
    }

    /// Loads a stored topic into the sim; false when the store has no such topic.
    pub(super) fn load(&mut self, name: &str) -> bool {
        let Some(queries) = Topic::load_reads(name) else {
            return false;
        };
        let mut answers = Answers::default();
        answers.extend(queries.into_iter().map(|q| {
            let r = self.store.read(&q);
            (q, r)
        }));
        match Topic::from_answers(name, &answers, self.n_shards).expect("store read") {
            Some(t) => {
                self.topics.insert(name.to_owned(), t);
                true
            }
            None => false,
        }
    }

    pub(super) fn topic(&self, name: &str) -> &Topic {
        self.topics.get(name).expect("topic loaded")
    }

    /// Runs one step of topic `name` and absorbs its outputs.
    pub(super) fn step(&mut self, name: &str, f: impl FnOnce(&mut Topic, &mut TopicCx<'_>)) {
        let mut out = Vec::new();
        {
            let topic = self.topics.get_mut(name).expect("topic loaded");
            let mut cx = TopicCx::new(self.now, &self.limits, &mut out);
            f(topic, &mut cx);
        }
        for o in out {
            self.absorb(name, o);
        }
    }

    /// Feeds a request; writes it needs stay in flight until [`Sim::settle`].
    pub(super) fn req(&mut self, name: &str, req: TopicRequest) {
        self.step(name, |t, cx| t.handle(req, cx));
    }

    /// Feeds a request and completes every write it caused.
    pub(super) fn run(&mut self, name: &str, req: TopicRequest) {
        self.req(name, req);
        self.settle();
    }

    /// Applies in-flight writes, one batch at a time, and reports each completion.
    pub(super) fn settle(&mut self) {
        while !self.in_flight.is_empty() {
            for (name, token, batch) in std::mem::take(&mut self.in_flight) {
                let res = if self.fail_writes {
                    Err(StoreError::Backend("injected failure".into()))
                } else {
                    self.store.apply(&[batch]).remove(0)
                };
                self.step(&name, |t, cx| t.handle_persisted(token, res, cx));
            }
        }
    }

    pub(super) fn absorb(&mut self, origin: &str, out: TopicOut) {
        match out {
            TopicOut::ToSession { sid, ev } => {
                let recs = match ev {
                    SessionEvent::Frames(frames) => frames
                        .iter()
                        .map(|f| Rec::Frame(self.give(sid, f)))
                        .collect(),
                    SessionEvent::Attached { topic } => vec![Rec::Attached(topic)],
                    SessionEvent::Detached { topic } => vec![Rec::Detached(topic)],
                    SessionEvent::End => Vec::new(),
                };
                self.inbox.entry(sid).or_default().extend(recs);
            }
            TopicOut::Deliver { frame, to } => {
                // As the runtime before a frame crosses shards.
                frame.prepare(to.encodings);
                let batches = to.batches;
                let v = parse(&crate::proto::encode(frame.msg()));
                let mut shards = HashSet::new();
                for (shard, sids) in &batches {
                    assert!(shards.insert(*shard), "two batches for {shard:?}");
                    assert!(shard.idx() < self.n_shards);
                    assert!(!sids.is_empty(), "empty batch for {shard:?}");
                    for sid in sids {
                        assert_eq!(sid.shard(), *shard, "{sid:?} batched for the wrong shard");
                        let got = self.give(*sid, &frame);
                        self.inbox.entry(*sid).or_default().push(Rec::Frame(got));
                    }
                }
                self.shared.push(frame);
                self.delivers.push((v, batches));
            }
            TopicOut::UserPres { frame, targets } => {
                for (uid, skip) in targets {
                    let me = uid.usr();
                    if self.topics.contains_key(&me) {
                        let frame = frame.clone();
                        self.req(&me, TopicRequest::UserPres { frame, skip });
                    }
                }
            }
            TopicOut::Persist { token, batch } => {
                self.in_flight.push((origin.to_owned(), token, batch));
            }
            TopicOut::Read { token, queries } => {
                self.reads_asked.extend(queries.iter().cloned());
                self.reads_in_flight
                    .push((origin.to_owned(), token, queries));
                if !self.defer_reads {
                    self.answer_reads();
                }
            }
            TopicOut::ToTopic { topic, req } => {
                // Like the runtime: a contact event for a `me` that is not loaded is dropped.
                if self.topics.contains_key(&topic) {
                    self.req(&topic, req);
                }
            }
            TopicOut::Write { batch } => {
                if !self.fail_writes {
                    self.write(batch);
                }
            }
        }
    }

    /// Answers every read in flight from the store, oldest first.
    pub(super) fn answer_reads(&mut self) {
        while !self.reads_in_flight.is_empty() {
            let (topic, token, queries) = self.reads_in_flight.remove(0);
            let results = queries
                .into_iter()
                .map(|q| {
                    let r = self.store.read(&q);
                    (q, r)
                })
                .collect();
            self.step(&topic, |t, cx| t.handle_read(token, results, cx));
        }
    }

    /// Everything `sid` was told since the last take.
    pub(super) fn take(&mut self, sid: SessionId) -> Vec<Rec> {
        self.inbox.remove(&sid).unwrap_or_default()
    }

    /// The frames `sid` was told since the last take (events dropped).
    pub(super) fn frames(&mut self, sid: SessionId) -> Vec<Value> {
        self.take(sid)
            .into_iter()
            .filter_map(|r| match r {
                Rec::Frame(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    /// Forgets everything received so far.
    pub(super) fn clear(&mut self) {
        self.inbox.clear();
        self.delivers.clear();
        self.wire.clear();
        self.shared.clear();
    }

    /// Creates `GROUP` owned by `uid` through `sid`, with an optional `set`, and settles.
    pub(super) fn create_group(&mut self, sid: SessionId, uid: UserId, set: Option<Value>) {
        self.topics
            .insert(GROUP.to_owned(), Topic::new_group(GROUP, self.n_shards));
        let mut r = creation(sid, uid, "newG", false);
        if let TopicRequest::Join { set: s, .. } = &mut r {
            *s = set.map(set_query);
        }
        self.run(GROUP, r);
    }

    /// Joins `sid` to `GROUP`, settles, and checks that it attached.
    pub(super) fn attach(&mut self, sid: SessionId, uid: UserId) {
        self.run(GROUP, join(sid, uid, GROUP, None));
        assert!(
            self.topic(GROUP).attached.contains_key(&sid),
            "{sid:?} did not attach: {:?}",
            self.inbox.get(&sid)
        );
    }

    /// Loads `uid`'s `me` topic and attaches `sid` to it.
    pub(super) fn attach_me(&mut self, sid: SessionId, uid: UserId) {
        let me = uid.usr();
        if !self.topics.contains_key(&me) {
            assert!(self.load(&me), "user {uid} not stored");
        }
        self.run(&me, join(sid, uid, "me", None));
        assert!(self.topic(&me).attached.contains_key(&sid));
    }

    /// Publishes `content` to `GROUP` and settles.
    pub(super) fn publish(&mut self, sid: SessionId, uid: UserId, id: Option<&str>, content: &str) {
        self.run(GROUP, publish(sid, uid, id, content));
    }

    pub(super) fn stored_sub(&self, uid: UserId) -> SubRecord {
        self.store
            .sub(GROUP, uid)
            .expect("store read")
            .expect("subscription stored")
    }
}

pub(super) fn parse(frame: &[u8]) -> Value {
    serde_json::from_slice(frame).expect("frames are JSON")
}

pub(super) fn sid(shard: u16, n: u64) -> SessionId {
    SessionId::new(ShardId(shard), n)
}

pub(super) fn rq(sid: SessionId, uid: UserId) -> Requester {
    Requester {
        sid,
        uid,
        level: AuthLevel::Auth,
        enc: crate::proto::Encoding::Json,
    }
}

pub(super) fn raw_json(text: &str) -> RawJsonBox {
    serde_json::value::RawValue::from_string(text.to_owned()).expect("valid JSON")
}

pub(super) type RawJsonBox = crate::proto::client::RawJson;

pub(super) fn get_query(v: Value) -> Box<GetQuery> {
    Box::new(serde_json::from_str(&v.to_string()).expect("a get query"))
}

pub(super) fn set_query(v: Value) -> Box<SetQuery> {
    Box::new(serde_json::from_str(&v.to_string()).expect("a set query"))
}

pub(super) fn join(sid: SessionId, uid: UserId, as_seen: &str, id: Option<&str>) -> TopicRequest {
    TopicRequest::Join {
        hdr: ReqHead {
            req: rq(sid, uid),
            id: id.map(str::to_owned),
            as_seen: as_seen.to_owned(),
        },
        create: None,
        set: None,
        get: None,
        ua: "test-ua".into(),
        bkg: false,
    }
}

/// A `{sub}` addressing the topic by another name (`usr…` for P2P, `chn…` for channels).
pub(super) fn join_as(
    sid: SessionId,
    uid: UserId,
    as_seen: &str,
    id: Option<&str>,
) -> TopicRequest {
    let mut r = join(sid, uid, as_seen, id);
    if let TopicRequest::Join {
        hdr: ReqHead { as_seen: a, .. },
        ..
    } = &mut r
    {
        *a = as_seen.to_owned();
    }
    r
}

/// A `{sub new…}` (or `nch…` for a channel) creating `GROUP`.
pub(super) fn creation(sid: SessionId, uid: UserId, tmpname: &str, is_chan: bool) -> TopicRequest {
    let mut r = join(sid, uid, tmpname, Some("c"));
    if let TopicRequest::Join { create, .. } = &mut r {
        *create = Some(CreateSpec {
            tmpname: tmpname.into(),
            is_chan,
        });
    }
    r
}

pub(super) fn join_get(sid: SessionId, uid: UserId, id: &str, get: Value) -> TopicRequest {
    let mut r = join(sid, uid, GROUP, Some(id));
    if let TopicRequest::Join { get: g, .. } = &mut r {
        *g = Some(get_query(get));
    }
    r
}

pub(super) fn publish(
    sid: SessionId,
    uid: UserId,
    id: Option<&str>,
    content: &str,
) -> TopicRequest {
    TopicRequest::Publish {
        hdr: ReqHead {
            req: rq(sid, uid),
            id: id.map(str::to_owned),
            as_seen: GROUP.into(),
        },
        noecho: false,
        head: None,
        content: raw_json(content),
    }
}

pub(super) fn leave(sid: SessionId, uid: UserId, id: &str, unsub: bool) -> TopicRequest {
    TopicRequest::Leave {
        hdr: ReqHead {
            req: rq(sid, uid),
            id: Some(id.into()),
            as_seen: GROUP.into(),
        },
        unsub,
    }
}

pub(super) fn note(sid: SessionId, uid: UserId, what: &str, seq: u64) -> TopicRequest {
    TopicRequest::Note {
        hdr: ReqHead {
            req: rq(sid, uid),
            id: None,
            as_seen: GROUP.into(),
        },
        what: what.into(),
        seq,
        event: None,
        payload: None,
    }
}

pub(super) fn get(sid: SessionId, uid: UserId, id: &str, query: Value) -> TopicRequest {
    TopicRequest::Get {
        hdr: ReqHead {
            req: rq(sid, uid),
            id: Some(id.into()),
            as_seen: GROUP.into(),
        },
        query: get_query(query),
    }
}

/// Asserts a frame is a `{ctrl}` with this code and text; returns its body.
#[track_caller]
pub(super) fn ctrl(v: &Value, code: u16, text: &str) -> Value {
    let c = &v["ctrl"];
    assert_eq!(
        (c["code"].as_u64(), c["text"].as_str()),
        (Some(u64::from(code)), Some(text)),
        "{v}"
    );
    c.clone()
}

/// The `{pres}` frames among `frames` whose `what` is one of `whats`.
pub(super) fn pres_of(frames: Vec<Value>, whats: &[&str]) -> Vec<Value> {
    frames
        .into_iter()
        .filter(|f| {
            f["pres"]["what"]
                .as_str()
                .is_some_and(|w| whats.contains(&w))
        })
        .collect()
}

pub(super) fn data_seqs(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| f["data"]["seq"].as_u64())
        .collect()
}

/// A group with alice as owner on `a1` and bob attached on `b1`; inboxes cleared.
pub(super) fn group_with_alice_and_bob(n_shards: usize, a1: SessionId, b1: SessionId) -> Sim {
    let mut sim = Sim::new(n_shards);
    sim.create_group(a1, ALICE, None);
    sim.attach(b1, BOB);
    sim.clear();
    sim
}

/// The body of a ctrl frame without its timestamp, for whole-frame comparisons.
pub(super) fn sim_ctrl_frame(code: u16, text: &str, id: &str) -> Value {
    json!({"ctrl": {"id": id, "topic": GROUP, "code": code, "text": text, "ts": "2025-01-02T03:04:05Z"}})
}

pub(super) fn set_req(sid: SessionId, uid: UserId, id: &str, q: Value) -> TopicRequest {
    TopicRequest::Set {
        hdr: ReqHead {
            req: rq(sid, uid),
            id: Some(id.into()),
            as_seen: GROUP.into(),
        },
        query: set_query(q),
    }
}

pub(super) fn del_req(
    sid: SessionId,
    uid: UserId,
    id: &str,
    what: crate::routing::DelWhat,
) -> TopicRequest {
    TopicRequest::Del {
        hdr: ReqHead {
            req: rq(sid, uid),
            id: Some(id.into()),
            as_seen: GROUP.into(),
        },
        what,
    }
}

/// The first `{ctrl}` `sid` received, as (code, text).
pub(super) fn first_ctrl(sim: &mut Sim, sid: SessionId) -> (u64, String) {
    let frames = sim.frames(sid);
    let c = frames
        .iter()
        .find_map(|f| f.get("ctrl"))
        .unwrap_or_else(|| panic!("no ctrl among {frames:?}"));
    (
        c["code"].as_u64().unwrap_or(0),
        c["text"].as_str().unwrap_or("").to_owned(),
    )
}

pub(super) fn sid_user(n: u64) -> UserId {
    UserId(0x7700_0000_0000_0000 | n)
}
