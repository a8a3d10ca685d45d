//! Unit tests of the topic state machine, run through `Sim`: several topics over an in-memory store, synchronous writes and a fixed clock, with every frame each session receives recorded.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::*;
use crate::access::DefaultAccess;
use crate::ids::ShardId;
use crate::proto::client::{GetQuery, SeqRange, SetQuery};
use crate::routing::CreateSpec;
use crate::store::{MessageQuery, RedbStore, UserState, WriteOp};

const T0: UnixMillis = UnixMillis(1_735_787_045_000);
const ALICE: UserId = UserId(0xa11c_e000_0000_0001);
const BOB: UserId = UserId(0xb0b0_0000_0000_0002);
const CAROL: UserId = UserId(0xca50_1000_0000_0003);
const GROUP: &str = "grpTestGroup001";

/// Recipients of one `Deliver`, one entry per destination shard.
type Batches = Vec<(ShardId, Vec<SessionId>)>;

/// What one session was told, in order.
#[derive(Clone, Debug, PartialEq)]
enum Rec {
    Frame(Value),
    Attached(String),
    Detached(String),
}

/// A deterministic stand-in for the shard runtime: it owns topics by routing name, applies
/// their writes to an in-memory store when asked, routes user presence to loaded `me` topics,
/// and records what every session receives.
struct Sim {
    store: RedbStore,
    now: UnixMillis,
    limits: TopicLimits,
    n_shards: usize,
    topics: HashMap<String, Topic>,
    inbox: HashMap<SessionId, Vec<Rec>>,
    /// Every `Deliver`: the parsed frame and its per-shard batches.
    delivers: Vec<(Value, Batches)>,
    /// `Persist` outputs not yet applied: (topic, token, batch).
    in_flight: Vec<(String, u64, WriteBatch)>,
    /// Makes every later `Persist` fail (the batch is not applied).
    fail_writes: bool,
}

impl Sim {
    fn new(n_shards: usize) -> Sim {
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
        }
    }

    /// Stores a user record (needed to load its `me` topic).
    fn add_user(&mut self, uid: UserId) {
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

    fn write(&self, batch: WriteBatch) {
        let res = self.store.apply(&[batch]);
        assert_eq!(res, [Ok(())]);
    }

    /// Loads a stored topic into the sim; false when the store has no such topic.
    fn load(&mut self, name: &str) -> bool {
        match Topic::load(name, &self.store, self.n_shards).expect("store read") {
            Some(t) => {
                self.topics.insert(name.to_owned(), t);
                true
            }
            None => false,
        }
    }

    fn topic(&self, name: &str) -> &Topic {
        self.topics.get(name).expect("topic loaded")
    }

    /// Runs one step of topic `name` and absorbs its outputs.
    fn step(&mut self, name: &str, f: impl FnOnce(&mut Topic, &mut TopicCx<'_>)) {
        let mut out = Vec::new();
        {
            let topic = self.topics.get_mut(name).expect("topic loaded");
            let mut cx = TopicCx {
                now: self.now,
                store: &self.store,
                limits: &self.limits,
                out: &mut out,
            };
            f(topic, &mut cx);
        }
        for o in out {
            self.absorb(name, o);
        }
    }

    /// Feeds a request; writes it needs stay in flight until [`Sim::settle`].
    fn req(&mut self, name: &str, req: TopicRequest) {
        self.step(name, |t, cx| t.handle(req, cx));
    }

    /// Feeds a request and completes every write it caused.
    fn run(&mut self, name: &str, req: TopicRequest) {
        self.req(name, req);
        self.settle();
    }

    /// Applies in-flight writes, one batch at a time, and reports each completion.
    fn settle(&mut self) {
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

    fn absorb(&mut self, origin: &str, out: TopicOut) {
        match out {
            TopicOut::ToSession { sid, ev } => {
                let recs = match ev {
                    SessionEvent::Frames(frames) => frames
                        .iter()
                        .map(|f| Rec::Frame(parse(&f.json())))
                        .collect(),
                    SessionEvent::Attached { topic } => vec![Rec::Attached(topic)],
                    SessionEvent::Detached { topic } => vec![Rec::Detached(topic)],
                    SessionEvent::End => Vec::new(),
                };
                self.inbox.entry(sid).or_default().extend(recs);
            }
            TopicOut::Deliver { frame, to } => {
                let batches = to.batches;
                let v = parse(&frame.json());
                let mut shards = HashSet::new();
                for (shard, sids) in &batches {
                    assert!(shards.insert(*shard), "two batches for {shard:?}");
                    assert!(shard.idx() < self.n_shards);
                    assert!(!sids.is_empty(), "empty batch for {shard:?}");
                    for sid in sids {
                        assert_eq!(sid.shard(), *shard, "{sid:?} batched for the wrong shard");
                        self.inbox
                            .entry(*sid)
                            .or_default()
                            .push(Rec::Frame(v.clone()));
                    }
                }
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

    /// Everything `sid` was told since the last take.
    fn take(&mut self, sid: SessionId) -> Vec<Rec> {
        self.inbox.remove(&sid).unwrap_or_default()
    }

    /// The frames `sid` was told since the last take (events dropped).
    fn frames(&mut self, sid: SessionId) -> Vec<Value> {
        self.take(sid)
            .into_iter()
            .filter_map(|r| match r {
                Rec::Frame(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    /// Forgets everything received so far.
    fn clear(&mut self) {
        self.inbox.clear();
        self.delivers.clear();
    }

    /// Creates `GROUP` owned by `uid` through `sid`, with an optional `set`, and settles.
    fn create_group(&mut self, sid: SessionId, uid: UserId, set: Option<Value>) {
        self.topics
            .insert(GROUP.to_owned(), Topic::new_group(GROUP, self.n_shards));
        let mut r = creation(sid, uid, "newG", false);
        if let TopicRequest::Join { set: s, .. } = &mut r {
            *s = set.map(set_query);
        }
        self.run(GROUP, r);
    }

    /// Joins `sid` to `GROUP`, settles, and checks that it attached.
    fn attach(&mut self, sid: SessionId, uid: UserId) {
        self.run(GROUP, join(sid, uid, GROUP, None));
        assert!(
            self.topic(GROUP).attached.contains_key(&sid),
            "{sid:?} did not attach: {:?}",
            self.inbox.get(&sid)
        );
    }

    /// Loads `uid`'s `me` topic and attaches `sid` to it.
    fn attach_me(&mut self, sid: SessionId, uid: UserId) {
        let me = uid.usr();
        if !self.topics.contains_key(&me) {
            assert!(self.load(&me), "user {uid} not stored");
        }
        self.run(&me, join(sid, uid, "me", None));
        assert!(self.topic(&me).attached.contains_key(&sid));
    }

    /// Publishes `content` to `GROUP` and settles.
    fn publish(&mut self, sid: SessionId, uid: UserId, id: Option<&str>, content: &str) {
        self.run(GROUP, publish(sid, uid, id, content));
    }

    fn stored_sub(&self, uid: UserId) -> SubRecord {
        self.store
            .sub(GROUP, uid)
            .expect("store read")
            .expect("subscription stored")
    }
}

fn parse(frame: &[u8]) -> Value {
    serde_json::from_slice(frame).expect("frames are JSON")
}

fn sid(shard: u16, n: u64) -> SessionId {
    SessionId::new(ShardId(shard), n)
}

fn rq(sid: SessionId, uid: UserId) -> Requester {
    Requester {
        sid,
        uid,
        level: AuthLevel::Auth,
        enc: crate::proto::Encoding::Json,
    }
}

fn raw_json(text: &str) -> RawJsonBox {
    serde_json::value::RawValue::from_string(text.to_owned()).expect("valid JSON")
}

type RawJsonBox = crate::proto::client::RawJson;

fn get_query(v: Value) -> Box<GetQuery> {
    Box::new(serde_json::from_str(&v.to_string()).expect("a get query"))
}

fn set_query(v: Value) -> Box<SetQuery> {
    Box::new(serde_json::from_str(&v.to_string()).expect("a set query"))
}

fn join(sid: SessionId, uid: UserId, as_seen: &str, id: Option<&str>) -> TopicRequest {
    TopicRequest::Join {
        req: rq(sid, uid),
        id: id.map(str::to_owned),
        as_seen: as_seen.to_owned(),
        create: None,
        set: None,
        get: None,
        ua: "test-ua".into(),
    }
}

/// A `{sub}` addressing the topic by another name (`usr…` for P2P, `chn…` for channels).
fn join_as(sid: SessionId, uid: UserId, as_seen: &str, id: Option<&str>) -> TopicRequest {
    let mut r = join(sid, uid, as_seen, id);
    if let TopicRequest::Join { as_seen: a, .. } = &mut r {
        *a = as_seen.to_owned();
    }
    r
}

/// A `{sub new…}` (or `nch…` for a channel) creating `GROUP`.
fn creation(sid: SessionId, uid: UserId, tmpname: &str, is_chan: bool) -> TopicRequest {
    let mut r = join(sid, uid, tmpname, Some("c"));
    if let TopicRequest::Join { create, .. } = &mut r {
        *create = Some(CreateSpec {
            tmpname: tmpname.into(),
            is_chan,
        });
    }
    r
}

fn join_get(sid: SessionId, uid: UserId, id: &str, get: Value) -> TopicRequest {
    let mut r = join(sid, uid, GROUP, Some(id));
    if let TopicRequest::Join { get: g, .. } = &mut r {
        *g = Some(get_query(get));
    }
    r
}

fn publish(sid: SessionId, uid: UserId, id: Option<&str>, content: &str) -> TopicRequest {
    TopicRequest::Publish {
        req: rq(sid, uid),
        id: id.map(str::to_owned),
        as_seen: GROUP.into(),
        noecho: false,
        head: None,
        content: raw_json(content),
    }
}

fn leave(sid: SessionId, uid: UserId, id: &str, unsub: bool) -> TopicRequest {
    TopicRequest::Leave {
        req: rq(sid, uid),
        id: Some(id.into()),
        as_seen: GROUP.into(),
        unsub,
    }
}

fn note(sid: SessionId, uid: UserId, what: &str, seq: u64) -> TopicRequest {
    TopicRequest::Note {
        req: rq(sid, uid),
        as_seen: GROUP.into(),
        what: what.into(),
        seq,
        event: None,
        payload: None,
    }
}

fn get(sid: SessionId, uid: UserId, id: &str, query: Value) -> TopicRequest {
    TopicRequest::Get {
        req: rq(sid, uid),
        id: Some(id.into()),
        as_seen: GROUP.into(),
        query: get_query(query),
    }
}

/// Asserts a frame is a `{ctrl}` with this code and text; returns its body.
#[track_caller]
fn ctrl(v: &Value, code: u16, text: &str) -> Value {
    let c = &v["ctrl"];
    assert_eq!(
        (c["code"].as_u64(), c["text"].as_str()),
        (Some(u64::from(code)), Some(text)),
        "{v}"
    );
    c.clone()
}

/// The `{pres}` frames among `frames` whose `what` is one of `whats`.
fn pres_of(frames: Vec<Value>, whats: &[&str]) -> Vec<Value> {
    frames
        .into_iter()
        .filter(|f| {
            f["pres"]["what"]
                .as_str()
                .is_some_and(|w| whats.contains(&w))
        })
        .collect()
}

fn data_seqs(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| f["data"]["seq"].as_u64())
        .collect()
}

/// A group with alice as owner on `a1` and bob attached on `b1`; inboxes cleared.
fn group_with_alice_and_bob(n_shards: usize, a1: SessionId, b1: SessionId) -> Sim {
    let mut sim = Sim::new(n_shards);
    sim.create_group(a1, ALICE, None);
    sim.attach(b1, BOB);
    sim.clear();
    sim
}

#[test]
fn creating_a_group_replies_only_after_the_write_in_reference_order() {
    let mut sim = Sim::new(2);
    let a1 = sid(0, 1);
    sim.topics
        .insert(GROUP.to_owned(), Topic::new_group(GROUP, 2));
    let mut r = join(a1, ALICE, "newG", Some("c1"));
    if let TopicRequest::Join {
        create, set, get, ..
    } = &mut r
    {
        *create = Some(CreateSpec {
            tmpname: "newG".into(),
            is_chan: false,
        });
        *set = Some(set_query(
            json!({"desc": {"public": {"fn": "Group"}, "private": "mine"}, "tags": ["Tag1", "tag1", "x"]}),
        ));
        *get = Some(get_query(json!({"what": "desc sub"})));
    }
    sim.now = UnixMillis(T0.0 + 5);
    sim.req(GROUP, r);
    assert!(sim.inbox.is_empty(), "nothing before the write completes");
    assert_eq!(sim.in_flight.len(), 1);
    assert!(
        !sim.topic(GROUP).is_idle(),
        "a write in flight keeps the topic"
    );
    assert_eq!(sim.store.topic(GROUP).unwrap(), None);
    sim.settle();

    let recs = sim.take(a1);
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert_eq!(recs[0], Rec::Attached(GROUP.into()));
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 200, "ok");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("c1"), Some(GROUP))
    );
    assert_eq!(c["ts"], "2025-01-02T03:04:05.005Z", "ts = creation time");
    assert_eq!(c["params"]["tmpname"], "newG");
    assert_eq!(
        c["params"]["acs"],
        json!({"want": "JRWPASDO", "given": "JRWPASDO", "mode": "JRWPASDO"})
    );
    let Rec::Frame(f) = &recs[2] else {
        panic!("{recs:?}")
    };
    let m = &f["meta"];
    assert_eq!(
        (m["id"].as_str(), m["topic"].as_str()),
        (Some("c1"), Some(GROUP))
    );
    assert_eq!(m["desc"]["defacs"], json!({"auth": "JRWPS", "anon": "N"}));
    assert_eq!(m["desc"]["acs"]["mode"], "JRWPASDO");
    assert_eq!(m["desc"]["public"], json!({"fn": "Group"}));
    assert_eq!(m["desc"]["private"], "mine");
    assert_eq!(m["desc"]["subcnt"], 1);
    assert_eq!(m["desc"]["online"], true);
    let Rec::Frame(f) = &recs[3] else {
        panic!("{recs:?}")
    };
    let subs = f["meta"]["sub"].as_array().expect("meta sub");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["user"], ALICE.usr());
    assert_eq!(subs[0]["online"], true);

    let rec = sim.store.topic(GROUP).unwrap().expect("topic stored");
    assert_eq!(
        (rec.owner, rec.tags.clone()),
        (Some(ALICE), vec!["tag1".to_owned()])
    );
    let sub = sim.stored_sub(ALICE);
    assert_eq!(
        (sub.want, sub.given),
        (AccessMode::OWNER_FULL, AccessMode::OWNER_FULL)
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1);
}

#[test]
fn the_owners_requested_mode_keeps_join_and_owner() {
    let mut sim = Sim::new(1);
    sim.create_group(
        sid(0, 1),
        ALICE,
        Some(json!({"sub": {"mode": "R"}, "desc": {"defacs": {"auth": "JR", "anon": "N"}}})),
    );
    let f = sim.frames(sid(0, 1));
    assert_eq!(
        ctrl(&f[0], 200, "ok")["params"]["acs"],
        json!({"want": "JRO", "given": "JRWPASDO", "mode": "JRO"})
    );
    assert_eq!(
        sim.store.topic(GROUP).unwrap().unwrap().access.auth,
        AccessMode(AccessMode::JOIN | AccessMode::READ)
    );
}

#[test]
fn invalid_creation_parameters_fail_on_the_tmpname() {
    for set in [
        json!({"desc": {"defacs": {"auth": "JRWPO"}}}),
        json!({"desc": {"defacs": {"auth": "XYZ"}}}),
        json!({"sub": {"mode": "Q"}}),
    ] {
        let mut sim = Sim::new(1);
        sim.create_group(sid(0, 1), ALICE, Some(set.clone()));
        let recs = sim.take(sid(0, 1));
        assert_eq!(recs.len(), 2, "{set}: {recs:?}");
        let Rec::Frame(f) = &recs[0] else {
            panic!("{recs:?}")
        };
        assert_eq!(ctrl(f, 400, "malformed")["topic"], "newG");
        assert_eq!(recs[1], Rec::Detached(GROUP.into()));
        assert!(sim.in_flight.is_empty());
        assert_eq!(sim.store.topic(GROUP).unwrap(), None);
        assert!(sim.topic(GROUP).is_idle());
    }
}

#[test]
fn a_failed_creation_write_is_reported_on_the_tmpname_and_locks_the_topic() {
    let mut sim = Sim::new(1);
    sim.fail_writes = true;
    sim.create_group(sid(0, 1), ALICE, None);
    let recs = sim.take(sid(0, 1));
    assert_eq!(recs.len(), 2, "{recs:?}");
    let Rec::Frame(f) = &recs[0] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 500, "internal error");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("c"), Some("newG"))
    );
    assert_eq!(recs[1], Rec::Detached(GROUP.into()));
    sim.fail_writes = false;
    sim.run(GROUP, join(sid(0, 2), BOB, GROUP, Some("j")));
    let recs = sim.take(sid(0, 2));
    let Rec::Frame(f) = &recs[0] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 503, "locked");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("j"), Some(GROUP))
    );
    assert_eq!(recs[1], Rec::Detached(GROUP.into()));
    assert!(sim.topic(GROUP).is_idle());
}

#[test]
fn a_second_user_joins_with_the_groups_default_access() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    sim.req(GROUP, join(b1, BOB, GROUP, Some("j1")));
    assert!(
        sim.inbox.is_empty(),
        "a new subscription is acknowledged only once stored"
    );
    sim.settle();
    let recs = sim.take(b1);
    assert_eq!(recs[0], Rec::Attached(GROUP.into()));
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 200, "ok");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("j1"), Some(GROUP))
    );
    assert_eq!(
        c["params"],
        json!({"acs": {"want": "JRWPS", "given": "JRWPS", "mode": "JRWPS"}})
    );
    assert_eq!(recs.len(), 2);
    let sub = sim.stored_sub(BOB);
    assert_eq!(
        (sub.want, sub.given, sub.deleted),
        (AccessMode::PUBLIC, AccessMode::PUBLIC, None)
    );

    // Re-joining an unchanged subscription needs no write and reports no acs.
    let b2 = sid(1, 2);
    sim.req(GROUP, join(b2, BOB, GROUP, Some("j2")));
    assert!(sim.in_flight.is_empty());
    let recs = sim.take(b2);
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    assert!(ctrl(f, 200, "ok").get("params").is_none());
    // The same session again: already subscribed, still attached.
    sim.run(GROUP, join(b2, BOB, GROUP, Some("j3")));
    assert_eq!(
        sim.take(b2),
        [Rec::Frame(sim_ctrl_frame(304, "already subscribed", "j3"))]
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 3);
}

/// The body of a ctrl frame without its timestamp, for whole-frame comparisons.
fn sim_ctrl_frame(code: u16, text: &str, id: &str) -> Value {
    json!({"ctrl": {"id": id, "topic": GROUP, "code": code, "text": text, "ts": "2025-01-02T03:04:05Z"}})
}

#[test]
fn a_user_whose_default_access_is_none_is_refused() {
    // (group defacs, requester level): each lacks J for the requester.
    let cases = [
        (
            Some(json!({"desc": {"defacs": {"auth": "N"}}})),
            AuthLevel::Auth,
        ),
        (None, AuthLevel::Anon),
        (
            Some(json!({"desc": {"defacs": {"auth": "RWP"}}})),
            AuthLevel::Auth,
        ),
    ];
    for (set, level) in cases {
        let mut sim = Sim::new(2);
        sim.create_group(sid(0, 1), ALICE, set.clone());
        sim.clear();
        let mut r = join(sid(1, 1), BOB, GROUP, Some("j"));
        if let TopicRequest::Join { req, .. } = &mut r {
            req.level = level;
        }
        sim.req(GROUP, r);
        assert!(
            sim.in_flight.is_empty(),
            "{set:?}: nothing is stored for a refused join"
        );
        let recs = sim.take(sid(1, 1));
        assert_eq!(recs.len(), 2, "{recs:?}");
        let Rec::Frame(f) = &recs[0] else {
            panic!("{recs:?}")
        };
        let c = ctrl(f, 403, "permission denied");
        assert_eq!(
            (c["id"].as_str(), c["topic"].as_str()),
            (Some("j"), Some(GROUP))
        );
        assert_eq!(recs[1], Rec::Detached(GROUP.into()));
        assert_eq!(sim.store.sub(GROUP, BOB).unwrap(), None);
        assert!(
            sim.take(sid(0, 1)).is_empty(),
            "no presence for a refused join"
        );
    }
}

#[test]
fn the_subscriber_limit_is_a_policy_violation() {
    let mut sim = Sim::new(1);
    sim.limits.max_subscriber_count = 2;
    sim.create_group(sid(0, 1), ALICE, None);
    sim.attach(sid(0, 2), BOB);
    sim.clear();
    sim.run(GROUP, join(sid(0, 3), CAROL, GROUP, Some("j")));
    let f = sim.frames(sid(0, 3));
    assert_eq!(ctrl(&f[0], 422, "policy violation")["id"], "j");
}

#[test]
fn publish_is_acknowledged_and_fanned_out_only_after_the_write() {
    let (a1, a2, b1, b2) = (sid(0, 1), sid(1, 1), sid(1, 2), sid(2, 1));
    let mut sim = group_with_alice_and_bob(3, a1, b1);
    sim.attach(a2, ALICE);
    sim.attach(b2, BOB);
    sim.clear();

    sim.now = UnixMillis(T0.0 + 250);
    sim.req(GROUP, publish(a1, ALICE, Some("p1"), r#"{"txt":"hello"}"#));
    assert!(
        sim.inbox.is_empty() && sim.delivers.is_empty(),
        "nothing before the message is stored"
    );
    assert_eq!(sim.store.last_message(GROUP).unwrap(), None);
    sim.settle();

    let f = sim.frames(a1);
    assert_eq!(f.len(), 2, "{f:?}");
    let c = ctrl(&f[0], 202, "accepted");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str(), &c["params"]),
        (Some("p1"), Some(GROUP), &json!({"seq": 1}))
    );
    let data = json!({"data": {"topic": GROUP, "from": ALICE.usr(), "ts": "2025-01-02T03:04:05.25Z", "seq": 1, "content": {"txt": "hello"}}});
    assert_eq!(f[1], data);
    for s in [a2, b1, b2] {
        assert_eq!(sim.frames(s), vec![data.clone()], "{s:?}");
    }
    // One shared frame, one batch per destination shard.
    assert_eq!(sim.delivers.len(), 1);
    let mut batches = sim.delivers[0].1.clone();
    for (_, sids) in &mut batches {
        sids.sort();
    }
    assert_eq!(
        batches,
        vec![
            (ShardId(0), vec![a1]),
            (ShardId(1), vec![a2, b1]),
            (ShardId(2), vec![b2])
        ]
    );
    // Stored, and the sender's markers moved.
    let stored = sim
        .store
        .messages(
            GROUP,
            MessageQuery {
                exclude: Vec::new(),
                since: None,
                before: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (
            stored[0].seq,
            stored[0].from,
            stored[0].ts,
            stored[0].content.as_str()
        ),
        (1, ALICE, sim.now, r#"{"txt":"hello"}"#)
    );
    let sub = sim.stored_sub(ALICE);
    assert_eq!((sub.read, sub.recv), (1, 1));

    // Without an id: no ack. With noecho: only the publishing session is skipped.
    sim.clear();
    sim.publish(b1, BOB, None, "\"two\"");
    assert_eq!(data_seqs(&sim.frames(b1)), [2]);
    let mut r = publish(b1, BOB, Some("p3"), "\"three\"");
    if let TopicRequest::Publish { noecho, .. } = &mut r {
        *noecho = true;
    }
    sim.run(GROUP, r);
    let f = sim.frames(b1);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(ctrl(&f[0], 202, "accepted")["params"]["seq"], 3);
    for s in [a1, a2, b2] {
        assert_eq!(data_seqs(&sim.frames(s)), [2, 3], "{s:?}");
    }
    assert_eq!(
        sim.store.last_message(GROUP).unwrap().map(|l| l.seq),
        Some(3)
    );
}

#[test]
fn head_is_passed_through_without_sender() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    let cases = [
        (
            json!({"mime": "text/x-drafty", "sender": "usrForged", "reply": "grpX:3"}),
            Some(json!({"mime": "text/x-drafty", "reply": "grpX:3"})),
        ),
        (json!({"sender": "usrForged"}), None),
        (json!({}), None),
    ];
    for (head, expect) in cases {
        let mut r = publish(a1, ALICE, None, "\"x\"");
        if let TopicRequest::Publish { head: h, .. } = &mut r {
            *h = head.as_object().cloned();
        }
        sim.run(GROUP, r);
        let f = sim.frames(b1);
        assert_eq!(f[0]["data"].get("head"), expect.as_ref(), "{head}");
        let last = sim
            .store
            .messages(
                GROUP,
                MessageQuery {
                    since: None,
                    before: None,
                    limit: 1,
                    exclude: Vec::new(),
                },
            )
            .unwrap();
        assert_eq!(
            last[0]
                .head
                .as_deref()
                .map(|h| serde_json::from_str::<Value>(h).unwrap()),
            expect
        );
    }
}

#[test]
fn a_failed_publish_write_is_an_internal_error_and_delivers_nothing() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.fail_writes = true;
    sim.publish(a1, ALICE, Some("p"), "\"lost\"");
    let f = sim.frames(a1);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(ctrl(&f[0], 500, "internal error")["id"], "p");
    assert!(sim.frames(b1).is_empty());
    assert!(sim.delivers.is_empty());
}

#[test]
fn publish_needs_write_access_and_attachment() {
    let (a1, b1) = (sid(0, 1), sid(0, 2));
    let mut sim = Sim::new(1);
    sim.create_group(
        a1,
        ALICE,
        Some(json!({"desc": {"defacs": {"auth": "JRP"}}})),
    );
    sim.attach(b1, BOB);
    sim.clear();
    sim.run(GROUP, publish(b1, BOB, Some("p"), "\"x\""));
    assert_eq!(
        sim.take(b1),
        [Rec::Frame(sim_ctrl_frame(403, "permission denied", "p"))]
    );
    // Typing needs W too: dropped.
    sim.run(GROUP, note(b1, BOB, "kp", 0));
    assert!(sim.frames(a1).is_empty());
    // Not attached: 409 and the session learns it is detached.
    sim.run(GROUP, publish(sid(0, 9), CAROL, Some("q"), "\"x\""));
    assert_eq!(
        sim.take(sid(0, 9)),
        [
            Rec::Frame(sim_ctrl_frame(409, "must attach first", "q")),
            Rec::Detached(GROUP.into())
        ]
    );
    assert!(sim.in_flight.is_empty() && sim.delivers.is_empty());
}

#[test]
fn pres_msg_goes_to_members_me_sessions_not_attached_to_the_topic() {
    let (a1, b_me, b_both, c_me) = (sid(0, 1), sid(1, 1), sid(1, 2), sid(0, 3));
    let mut sim = Sim::new(2);
    for u in [ALICE, BOB, CAROL] {
        sim.add_user(u);
    }
    sim.create_group(a1, ALICE, None);
    sim.attach(b_both, BOB);
    sim.attach(sid(0, 9), CAROL);
    sim.run(GROUP, TopicRequest::Detach { sid: sid(0, 9) });
    sim.attach_me(b_me, BOB);
    sim.attach_me(b_both, BOB);
    sim.attach_me(c_me, CAROL);
    sim.clear();

    sim.publish(a1, ALICE, Some("p"), "\"hi\"");
    let pres =
        json!({"pres": {"topic": "me", "src": GROUP, "what": "msg", "seq": 1, "act": ALICE.usr()}});
    // Bob's session only on `me` gets the notification; the one attached to the group gets data.
    assert_eq!(sim.frames(b_me), vec![pres.clone()]);
    let f = sim.frames(b_both);
    assert_eq!((f.len(), data_seqs(&f)), (1, vec![1]), "{f:?}");
    // Carol is a member with no session on the group.
    assert_eq!(sim.frames(c_me), [pres]);
    // Alice's `me` is not loaded: nothing for her beyond the ack and the data.
    assert_eq!(sim.frames(a1).len(), 2);

    // The publisher's own sessions elsewhere are notified too, without `act` (it is them).
    let a_me = sid(1, 4);
    sim.attach_me(a_me, ALICE);
    sim.attach_me(a1, ALICE);
    sim.clear();
    sim.publish(a1, ALICE, None, "\"mine\"");
    assert_eq!(
        sim.frames(a_me),
        [json!({"pres": {"topic": "me", "src": GROUP, "what": "msg", "seq": 2}})]
    );
    assert_eq!(
        data_seqs(&sim.frames(a1)),
        [2],
        "attached to the group: data only"
    );
    assert_eq!(sim.frames(b_me)[0]["pres"]["act"], ALICE.usr());

    // A member without P gets no notification.
    sim.clear();
    if let Some(m) = sim
        .topics
        .get_mut(GROUP)
        .and_then(|t| t.members.get_mut(&CAROL))
    {
        m.sub.want = AccessMode(AccessMode::JOIN | AccessMode::READ);
    }
    sim.publish(a1, ALICE, None, "\"again\"");
    assert!(sim.frames(c_me).is_empty());
    assert_eq!(sim.frames(b_me).len(), 1);
}

#[test]
fn presence_on_and_off_follow_the_first_and_last_session_of_a_user() {
    let (a1, b1, b2) = (sid(0, 1), sid(1, 1), sid(2, 1));
    let mut sim = Sim::new(3);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    let on = json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "on"}});
    let off = json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "off"}});

    sim.attach(b1, BOB);
    let f = sim.frames(a1);
    assert_eq!(pres_of(f.clone(), &["on", "off"]), vec![on.clone()]);
    assert!(f.iter().all(|v| v.get("pres").is_some()), "{f:?}");
    let f = sim.frames(b1);
    assert!(
        f.iter().all(|v| v.get("pres").is_none()),
        "no pres about oneself: {f:?}"
    );
    sim.attach(b2, BOB);
    assert!(
        pres_of(sim.frames(a1), &["on", "off"]).is_empty(),
        "the second session is not announced"
    );
    sim.run(GROUP, TopicRequest::Detach { sid: b1 });
    assert!(
        pres_of(sim.frames(a1), &["on", "off"]).is_empty(),
        "one session remains"
    );
    assert!(sim.take(b1).is_empty(), "a silent detach replies nothing");
    sim.run(GROUP, leave(b2, BOB, "l", false));
    assert_eq!(pres_of(sim.frames(a1), &["on", "off"]), vec![off.clone()]);
    // And back.
    sim.attach(b1, BOB);
    assert_eq!(pres_of(sim.frames(a1), &["on", "off"]), [on]);
    // Members without P are not told.
    if let Some(m) = sim
        .topics
        .get_mut(GROUP)
        .and_then(|t| t.members.get_mut(&ALICE))
    {
        m.sub.want = m.sub.want.without(AccessMode::PRES);
    }
    sim.run(GROUP, TopicRequest::Detach { sid: b1 });
    assert!(pres_of(sim.frames(a1), &["on", "off"]).is_empty());
}

#[test]
fn get_data_pages_newest_first_within_max_history() {
    let a1 = sid(0, 1);
    let mut sim = Sim::new(1);
    sim.limits.max_history = 5;
    sim.create_group(a1, ALICE, None);
    for i in 1..=8 {
        sim.publish(a1, ALICE, None, &format!("\"m{i}\""));
    }
    sim.clear();
    let cases: Vec<(Value, Vec<u64>)> = vec![
        (json!({}), vec![8, 7, 6, 5, 4]),
        (json!({"limit": 100}), vec![8, 7, 6, 5, 4]),
        (json!({"limit": 3}), vec![8, 7, 6]),
        (json!({"since": 6}), vec![8, 7, 6]),
        (json!({"before": 3}), vec![2, 1]),
        (json!({"since": 2, "before": 5, "limit": 2}), vec![4, 3]),
        (json!({"since": 9}), vec![]),
        (json!({"before": 1}), vec![]),
    ];
    for (opts, seqs) in cases {
        sim.run(
            GROUP,
            get(a1, ALICE, "g", json!({"what": "data", "data": opts})),
        );
        let f = sim.frames(a1);
        assert_eq!(data_seqs(&f), seqs, "{opts}");
        let last = f.last().expect("a closing ctrl");
        let c = if seqs.is_empty() {
            let c = ctrl(last, 204, "no content");
            assert_eq!(c["params"], json!({"what": "data"}));
            c
        } else {
            let c = ctrl(last, 208, "delivered");
            assert_eq!(c["params"], json!({"what": "data", "count": seqs.len()}));
            c
        };
        assert_eq!(
            (c["id"].as_str(), c["topic"].as_str()),
            (Some("g"), Some(GROUP))
        );
        assert_eq!(f.len(), seqs.len() + 1);
        for d in &f[..seqs.len()] {
            let seq = d["data"]["seq"].as_u64().unwrap();
            assert_eq!(d["data"]["content"], format!("m{seq}"));
            assert_eq!(d["data"]["topic"], GROUP);
            assert!(d["data"].get("id").is_none(), "data never carries an id");
        }
    }
    sim.run(
        GROUP,
        get(
            a1,
            ALICE,
            "g",
            json!({"what": "data", "data": {"ims": "2025-01-01T00:00:00Z"}}),
        ),
    );
    assert_eq!(
        sim.take(a1),
        [Rec::Frame(sim_ctrl_frame(400, "malformed", "g"))]
    );
}

#[test]
fn sub_with_get_data_sends_the_history_after_the_ctrl() {
    let (a1, b1) = (sid(0, 1), sid(0, 2));
    let mut sim = Sim::new(1);
    sim.create_group(a1, ALICE, None);
    sim.publish(a1, ALICE, None, "\"one\"");
    sim.publish(a1, ALICE, None, "\"two\"");
    sim.run(
        GROUP,
        join_get(b1, BOB, "s", json!({"what": "desc sub data del"})),
    );
    let f = sim.frames(b1);
    let kinds: Vec<String> = f
        .iter()
        .map(|v| {
            let (k, body) = v.as_object().unwrap().iter().next().unwrap();
            match k.as_str() {
                "ctrl" => format!("ctrl{}", body["code"]),
                "meta" => format!(
                    "meta.{}",
                    body.as_object()
                        .unwrap()
                        .keys()
                        .find(|k| !["id", "topic", "ts"].contains(&k.as_str()))
                        .unwrap()
                ),
                other => other.to_owned(),
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ctrl200",
            "meta.desc",
            "meta.sub",
            "data",
            "data",
            "ctrl208",
            "ctrl204"
        ]
    );
    assert_eq!(data_seqs(&f), [2, 1]);
    assert_eq!(f[1]["meta"]["desc"]["seq"], 2);
    assert!(f[1]["meta"]["desc"].get("defacs").is_some(), "bob has S");
    assert_eq!(f[2]["meta"]["sub"].as_array().unwrap().len(), 2);
    assert_eq!(f[6]["ctrl"]["params"], json!({"what": "del"}));
    assert!(f.iter().filter(|v| v.get("data").is_none()).all(|v| v
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["id"]
        == "s"));
}

#[test]
fn typing_notes_reach_other_users_only() {
    let (a1, a2, b1) = (sid(0, 1), sid(1, 1), sid(1, 2));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.attach(a2, ALICE);
    sim.clear();
    for what in ["kp", "kpa", "kpv"] {
        sim.run(GROUP, note(a1, ALICE, what, 0));
        assert_eq!(
            sim.frames(b1),
            [json!({"info": {"topic": GROUP, "from": ALICE.usr(), "what": what}})]
        );
        assert!(
            sim.frames(a1).is_empty() && sim.frames(a2).is_empty(),
            "{what}"
        );
    }
    // Generic data notes carry their payload and event to every other session.
    let mut n = note(b1, BOB, "data", 0);
    if let TopicRequest::Note { payload, event, .. } = &mut n {
        *payload = Some(raw_json(r#"{"x":1}"#));
        *event = Some("ev".into());
    }
    sim.run(GROUP, n);
    let info = json!({"info": {"topic": GROUP, "from": BOB.usr(), "what": "data", "event": "ev", "payload": {"x": 1}}});
    assert_eq!(sim.frames(a1), vec![info.clone()]);
    assert_eq!(sim.frames(a2), [info]);
    assert!(sim.frames(b1).is_empty());
    assert!(sim.in_flight.is_empty());
}

#[test]
fn receipts_reach_other_sessions_and_markers_only_rise() {
    let (a1, b1, b2) = (sid(0, 1), sid(1, 1), sid(0, 2));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.attach(b2, BOB);
    sim.publish(a1, ALICE, None, "\"1\"");
    sim.publish(a1, ALICE, None, "\"2\"");
    sim.clear();

    sim.run(GROUP, note(b1, BOB, "read", 1));
    let info = json!({"info": {"topic": GROUP, "from": BOB.usr(), "what": "read", "seq": 1}});
    assert_eq!(sim.frames(a1), vec![info.clone()]);
    assert_eq!(
        sim.frames(b2),
        [info],
        "receipts reach the same user's other sessions"
    );
    assert!(sim.frames(b1).is_empty());
    let sub = sim.stored_sub(BOB);
    assert_eq!((sub.read, sub.recv), (1, 1));

    sim.run(GROUP, note(b1, BOB, "recv", 2));
    assert_eq!(sim.frames(a1)[0]["info"]["what"], "recv");
    assert_eq!(sim.frames(b2)[0]["info"]["seq"], 2);
    let sub = sim.stored_sub(BOB);
    assert_eq!((sub.read, sub.recv), (1, 2));

    // Dropped: zero, beyond the last seq, not above the stored marker.
    for (what, seq) in [
        ("read", 0),
        ("read", 3),
        ("read", 1),
        ("recv", 2),
        ("recv", 1),
        ("recv", 99),
    ] {
        sim.run(GROUP, note(b1, BOB, what, seq));
        assert!(
            sim.frames(a1).is_empty() && sim.frames(b2).is_empty(),
            "{what} {seq}"
        );
    }
    let sub = sim.stored_sub(BOB);
    assert_eq!((sub.read, sub.recv), (1, 2));

    sim.run(GROUP, note(b1, BOB, "read", 2));
    assert_eq!(sim.frames(a1).len(), 1);
    let sub = sim.stored_sub(BOB);
    assert_eq!((sub.read, sub.recv), (2, 2));
    // The topic's view agrees with the store.
    sim.run(GROUP, get(b1, BOB, "d", json!({"what": "desc"})));
    let f = sim.frames(b1);
    assert_eq!(
        (
            f[0]["meta"]["desc"]["read"].as_u64(),
            f[0]["meta"]["desc"]["recv"].as_u64()
        ),
        (Some(2), Some(2))
    );
}

#[test]
fn notes_from_a_session_not_attached_must_attach_first_without_id() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.run(GROUP, note(sid(0, 9), CAROL, "read", 1));
    let f = sim.frames(sid(0, 9));
    let c = ctrl(&f[0], 409, "must attach first");
    assert!(c.get("id").is_none());
    assert_eq!(c["topic"], GROUP);
}

#[test]
fn leave_detaches_the_session() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.run(GROUP, leave(b1, BOB, "l", false));
    assert_eq!(
        sim.take(b1),
        [
            Rec::Frame(sim_ctrl_frame(200, "ok", "l")),
            Rec::Detached(GROUP.into())
        ]
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1);
    assert_eq!(
        sim.stored_sub(BOB).deleted,
        None,
        "a plain leave keeps the subscription"
    );
    // Leaving again: not joined (the session is told it is detached).
    sim.run(GROUP, leave(b1, BOB, "l2", false));
    assert_eq!(
        sim.take(b1),
        [
            Rec::Frame(sim_ctrl_frame(304, "not joined", "l2")),
            Rec::Detached(GROUP.into())
        ]
    );
    sim.run(GROUP, leave(b1, BOB, "l3", true));
    assert_eq!(
        sim.take(b1),
        [
            Rec::Frame(sim_ctrl_frame(409, "must attach first", "l3")),
            Rec::Detached(GROUP.into())
        ]
    );
    // Messages no longer reach it.
    sim.publish(a1, ALICE, None, "\"x\"");
    assert!(sim.take(b1).is_empty());
}

#[test]
fn unsubscribing_deletes_the_subscription_and_evicts_the_users_other_sessions() {
    let (a1, b1, b2, b_me) = (sid(0, 1), sid(1, 1), sid(0, 2), sid(1, 3));
    let mut sim = Sim::new(2);
    sim.add_user(BOB);
    sim.create_group(a1, ALICE, None);
    sim.attach(b1, BOB);
    sim.attach(b2, BOB);
    sim.attach_me(b_me, BOB);
    sim.clear();
    sim.now = UnixMillis(T0.0 + 1_000);

    sim.run(GROUP, leave(b1, BOB, "u", true));
    let ok = json!({"ctrl": {"id": "u", "topic": GROUP, "code": 200, "text": "ok", "ts": "2025-01-02T03:04:06Z"}});
    assert_eq!(sim.take(b1), [Rec::Frame(ok), Rec::Detached(GROUP.into())]);
    let evicted = json!({"ctrl": {"topic": GROUP, "params": {"unsub": true}, "code": 205, "text": "evicted", "ts": "2025-01-02T03:04:06Z"}});
    assert_eq!(
        sim.take(b2),
        [Rec::Frame(evicted), Rec::Detached(GROUP.into())]
    );
    assert_eq!(
        pres_of(sim.frames(a1), &["on", "off"]),
        [json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "off"}})]
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1);
    assert_eq!(sim.stored_sub(BOB).deleted, Some(sim.now));
    // The user's `me` learns the subscription is gone.
    let gone = pres_of(sim.frames(b_me), &["gone"]);
    assert_eq!(
        gone,
        [json!({"pres": {"topic": "me", "src": GROUP, "what": "gone"}})]
    );

    // A deleted subscriber is no longer notified of messages.
    sim.publish(a1, ALICE, None, "\"after\"");
    assert!(sim.take(b_me).is_empty());
    assert!(sim.take(b1).is_empty() && sim.take(b2).is_empty());
    // Re-subscribing creates it again with the old given, reported as new.
    sim.run(GROUP, join(b1, BOB, GROUP, Some("again")));
    let f = sim.frames(b1);
    assert_eq!(ctrl(&f[0], 200, "ok")["params"]["acs"]["given"], "JRWPS");
    assert_eq!(sim.stored_sub(BOB).deleted, None);
}

#[test]
fn the_owner_cannot_unsubscribe_and_me_cannot_be_left_for_good() {
    let a1 = sid(0, 1);
    let mut sim = Sim::new(1);
    sim.add_user(ALICE);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    sim.run(GROUP, leave(a1, ALICE, "u", true));
    assert_eq!(
        sim.take(a1),
        [Rec::Frame(sim_ctrl_frame(403, "permission denied", "u"))]
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1, "still attached");
    assert_eq!(sim.stored_sub(ALICE).deleted, None);

    let me = ALICE.usr();
    sim.attach_me(a1, ALICE);
    sim.clear();
    sim.run(
        &me,
        TopicRequest::Leave {
            req: rq(a1, ALICE),
            id: Some("m".into()),
            as_seen: "me".into(),
            unsub: true,
        },
    );
    let f = sim.frames(a1);
    let c = ctrl(&f[0], 403, "permission denied");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("m"), Some("me"))
    );
    assert_eq!(sim.topic(&me).n_attached(), 1);
}

#[test]
fn me_topics_admit_only_their_user() {
    let mut sim = Sim::new(2);
    sim.add_user(ALICE);
    let me = ALICE.usr();
    assert!(sim.load(&me));
    assert!(!sim.load(&BOB.usr()), "no record, no topic");
    sim.run(&me, join(sid(1, 1), BOB, &me, Some("x")));
    let recs = sim.take(sid(1, 1));
    let Rec::Frame(f) = &recs[0] else {
        panic!("{recs:?}")
    };
    ctrl(f, 403, "permission denied");
    assert_eq!(recs[1], Rec::Detached(me.clone()));

    let mut r = join(sid(0, 1), ALICE, "me", Some("m"));
    if let TopicRequest::Join { get, .. } = &mut r {
        *get = Some(get_query(json!({"what": "desc sub"})));
    }
    sim.req(&me, r);
    assert!(sim.in_flight.is_empty(), "attaching to me writes nothing");
    let recs = sim.take(sid(0, 1));
    assert_eq!(recs[0], Rec::Attached(me.clone()));
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    assert!(ctrl(f, 200, "ok").get("params").is_none());
    let Rec::Frame(f) = &recs[2] else {
        panic!("{recs:?}")
    };
    assert_eq!(f["meta"]["topic"], "me");
    assert_eq!(f["meta"]["desc"]["acs"]["mode"], "JPS");
    let Rec::Frame(f) = &recs[3] else {
        panic!("{recs:?}")
    };
    assert_eq!(ctrl(f, 204, "no content")["params"], json!({"what": "sub"}));
    // Publishing to me is denied; the session stays attached.
    let mut p = publish(sid(0, 1), ALICE, Some("p"), "\"x\"");
    if let TopicRequest::Publish { as_seen, .. } = &mut p {
        *as_seen = "me".into();
    }
    sim.run(&me, p);
    let f = sim.frames(sid(0, 1));
    ctrl(&f[0], 403, "permission denied");
    assert_eq!(sim.topic(&me).n_attached(), 1);
}

#[test]
fn the_me_topic_lists_the_users_groups() {
    let mut sim = Sim::new(1);
    sim.add_user(BOB);
    sim.create_group(sid(0, 1), ALICE, Some(json!({"desc": {"public": "G"}})));
    sim.attach(sid(0, 2), BOB);
    sim.publish(sid(0, 1), ALICE, None, "\"x\"");
    sim.clear();
    let me = BOB.usr();
    assert!(sim.load(&me));
    let mut r = join(sid(0, 3), BOB, "me", Some("m"));
    if let TopicRequest::Join { get, .. } = &mut r {
        *get = Some(get_query(json!({"what": "sub"})));
    }
    sim.run(&me, r);
    let f = sim.frames(sid(0, 3));
    let subs = f[1]["meta"]["sub"].as_array().expect("meta sub");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["topic"], GROUP);
    assert_eq!(subs[0]["seq"], 1);
    assert_eq!(subs[0]["public"], "G");
    assert_eq!(subs[0]["acs"]["mode"], "JRWPS");
}

#[test]
fn a_session_detached_while_its_join_is_pending_never_attaches() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    sim.req(GROUP, join(b1, BOB, GROUP, Some("j")));
    assert_eq!(sim.in_flight.len(), 1);
    sim.req(GROUP, TopicRequest::Detach { sid: b1 });
    sim.settle();
    assert!(
        sim.take(b1).is_empty(),
        "no reply and no Attached for a session that has gone"
    );
    assert!(
        pres_of(sim.frames(a1), &["on"]).is_empty(),
        "no presence either"
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1);

    // The same for the creator of a group.
    let mut sim = Sim::new(2);
    sim.topics
        .insert(GROUP.to_owned(), Topic::new_group(GROUP, 2));
    sim.req(GROUP, creation(a1, ALICE, "newG", false));
    sim.req(GROUP, TopicRequest::Detach { sid: a1 });
    assert!(
        sim.topic(GROUP).is_idle(),
        "nothing waits for the write any more"
    );
    sim.settle();
    assert!(sim.take(a1).is_empty());
    assert!(sim.topic(GROUP).is_idle());
}

#[test]
fn an_empty_topic_is_idle_and_reloading_restores_its_seq() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    for i in 0..3 {
        sim.publish(b1, BOB, None, &format!("\"{i}\""));
    }
    assert!(!sim.topic(GROUP).is_idle());
    sim.run(GROUP, TopicRequest::Detach { sid: a1 });
    sim.run(GROUP, leave(b1, BOB, "l", false));
    assert!(sim.topic(GROUP).is_idle());
    assert_eq!(sim.topic(GROUP).n_attached(), 0);

    sim.topics.remove(GROUP);
    assert!(sim.load(GROUP));
    let t = sim.topic(GROUP);
    assert_eq!(t.seq, 3);
    assert_eq!(t.touched, Some(T0));
    assert_eq!(t.members.len(), 2);
    assert!(t.members.values().all(|m| m.online == 0));
    assert!(t.is_idle());
    sim.clear();
    sim.attach(a1, ALICE);
    sim.publish(a1, ALICE, Some("p"), "\"four\"");
    let f = sim.frames(a1);
    assert_eq!(ctrl(&f[1], 202, "accepted")["params"]["seq"], 4);
    assert_eq!(data_seqs(&f), [4]);
    assert!(!sim.load("grpNoSuchGroup1"));
    assert!(!sim.load("p2pNotHostedHere"));
}

#[test]
fn a_self_ban_saves_the_subscription_without_attaching() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    let mut r = join(b1, BOB, GROUP, Some("n"));
    if let TopicRequest::Join { set, .. } = &mut r {
        *set = Some(set_query(json!({"sub": {"mode": "N"}})));
    }
    sim.run(GROUP, r);
    let recs = sim.take(b1);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let Rec::Frame(f) = &recs[0] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 200, "ok");
    assert_eq!(
        c["params"]["acs"],
        json!({"want": "N", "given": "JRWPS", "mode": "N"})
    );
    assert_eq!(recs[1], Rec::Detached(GROUP.into()));
    assert_eq!(sim.stored_sub(BOB).want, AccessMode::NONE);
    assert_eq!(sim.topic(GROUP).n_attached(), 1);
    assert!(
        pres_of(sim.frames(a1), &["on"]).is_empty(),
        "no presence for a session that never attached"
    );
}

// ---- issue 3: access by mode, P2P views, deletion ----

fn set_req(sid: SessionId, uid: UserId, id: &str, q: Value) -> TopicRequest {
    TopicRequest::Set {
        req: rq(sid, uid),
        id: Some(id.into()),
        as_seen: GROUP.into(),
        query: set_query(q),
    }
}

fn del_req(sid: SessionId, uid: UserId, id: &str, what: crate::routing::DelWhat) -> TopicRequest {
    TopicRequest::Del {
        req: rq(sid, uid),
        id: Some(id.into()),
        as_seen: GROUP.into(),
        what,
    }
}

/// The first `{ctrl}` `sid` received, as (code, text).
fn first_ctrl(sim: &mut Sim, sid: SessionId) -> (u64, String) {
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

#[test]
fn set_and_del_check_the_mode_they_need() {
    use crate::routing::DelWhat;
    // Alice owns the group, Bob is a plain member (JRWPS), Carol an admin (JRWPAS).
    let (a1, b1, c1) = (sid(0, 1), sid(1, 1), sid(0, 2));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    for u in [ALICE, BOB, CAROL] {
        sim.add_user(u);
    }
    sim.attach(c1, CAROL);
    sim.run(
        GROUP,
        set_req(
            a1,
            ALICE,
            "g",
            json!({"sub": {"user": CAROL.usr(), "mode": "JRWPAS"}}),
        ),
    );
    assert_eq!(first_ctrl(&mut sim, a1), (200, "ok".into()));
    // Given A is not enough: Carol must also want it (mode = want & given).
    sim.run(
        GROUP,
        set_req(c1, CAROL, "w", json!({"sub": {"mode": "JRWPAS"}})),
    );
    assert_eq!(first_ctrl(&mut sim, c1), (200, "ok".into()));
    sim.publish(a1, ALICE, Some("p"), r#""one""#);
    sim.clear();

    // (who, request, expected code) — each row is one operation by one mode.
    let rows: Vec<(SessionId, UserId, TopicRequest, u64)> = vec![
        // set desc public: owner only.
        (
            b1,
            BOB,
            set_req(b1, BOB, "1", json!({"desc": {"public": {"fn": "x"}}})),
            403,
        ),
        (
            c1,
            CAROL,
            set_req(c1, CAROL, "1", json!({"desc": {"public": {"fn": "x"}}})),
            403,
        ),
        (
            a1,
            ALICE,
            set_req(a1, ALICE, "1", json!({"desc": {"public": {"fn": "x"}}})),
            200,
        ),
        // Nothing changes: 304.
        (
            a1,
            ALICE,
            set_req(a1, ALICE, "1", json!({"desc": {"public": {"fn": "x"}}})),
            304,
        ),
        // Own private: anyone subscribed.
        (
            b1,
            BOB,
            set_req(b1, BOB, "1", json!({"desc": {"private": "mine"}})),
            200,
        ),
        // defacs with O is malformed.
        (
            a1,
            ALICE,
            set_req(
                a1,
                ALICE,
                "1",
                json!({"desc": {"defacs": {"auth": "JRWPO"}}}),
            ),
            400,
        ),
        // Another member's given with an explicit mode: A or O.
        (
            b1,
            BOB,
            set_req(
                b1,
                BOB,
                "1",
                json!({"sub": {"user": CAROL.usr(), "mode": "JR"}}),
            ),
            403,
        ),
        (
            c1,
            CAROL,
            set_req(
                c1,
                CAROL,
                "1",
                json!({"sub": {"user": BOB.usr(), "mode": "JRWP"}}),
            ),
            200,
        ),
        // Granting O: the owner only.
        (
            c1,
            CAROL,
            set_req(
                c1,
                CAROL,
                "1",
                json!({"sub": {"user": BOB.usr(), "mode": "JRWPASDO"}}),
            ),
            403,
        ),
        // The owner cannot drop its own O.
        (
            a1,
            ALICE,
            set_req(a1, ALICE, "1", json!({"sub": {"mode": "JRWPASD"}})),
            403,
        ),
        // A member cannot ask for O.
        (
            b1,
            BOB,
            set_req(b1, BOB, "1", json!({"sub": {"mode": "JRWPO"}})),
            403,
        ),
        // Tags on a group: the owner only; aux needs A or O.
        (
            b1,
            BOB,
            set_req(b1, BOB, "1", json!({"tags": ["chess"]})),
            403,
        ),
        (
            a1,
            ALICE,
            set_req(a1, ALICE, "1", json!({"tags": ["chess"]})),
            200,
        ),
        (
            a1,
            ALICE,
            set_req(a1, ALICE, "1", json!({"tags": ["email:x@y.z"]})),
            403,
        ),
        (
            b1,
            BOB,
            set_req(b1, BOB, "1", json!({"aux": {"pin": 1}})),
            403,
        ),
        (
            c1,
            CAROL,
            set_req(c1, CAROL, "1", json!({"aux": {"pin": 1}})),
            200,
        ),
        // Deleting subscriptions: A or O, never the owner, never oneself.
        (
            b1,
            BOB,
            del_req(b1, BOB, "1", DelWhat::Sub { user: CAROL.usr() }),
            403,
        ),
        (
            c1,
            CAROL,
            del_req(c1, CAROL, "1", DelWhat::Sub { user: ALICE.usr() }),
            403,
        ),
        (
            c1,
            CAROL,
            del_req(c1, CAROL, "1", DelWhat::Sub { user: CAROL.usr() }),
            403,
        ),
        // Hard delete without D silently becomes a soft delete.
        (
            b1,
            BOB,
            del_req(
                b1,
                BOB,
                "1",
                DelWhat::Msg {
                    ranges: vec![SeqRange { low: 1, hi: 0 }],
                    hard: true,
                },
            ),
            200,
        ),
        // Bad ranges.
        (
            a1,
            ALICE,
            del_req(
                a1,
                ALICE,
                "1",
                DelWhat::Msg {
                    ranges: vec![SeqRange { low: 5, hi: 0 }],
                    hard: true,
                },
            ),
            400,
        ),
        (
            a1,
            ALICE,
            del_req(
                a1,
                ALICE,
                "1",
                DelWhat::Msg {
                    ranges: vec![SeqRange { low: 0, hi: 0 }],
                    hard: false,
                },
            ),
            400,
        ),
        // Unknown member: nothing to delete.
        (
            c1,
            CAROL,
            del_req(
                c1,
                CAROL,
                "1",
                DelWhat::Sub {
                    user: sid_user(77).usr(),
                },
            ),
            304,
        ),
        (
            c1,
            CAROL,
            del_req(c1, CAROL, "1", DelWhat::Sub { user: BOB.usr() }),
            200,
        ),
    ];
    for (i, (s, _u, req, code)) in rows.into_iter().enumerate() {
        sim.run(GROUP, req);
        let (got, text) = first_ctrl(&mut sim, s);
        assert_eq!(got, code, "row {i}: {text}");
        sim.clear();
    }
    // Bob was evicted by the last row: 205 with unsub, and his subscription is deleted.
    assert!(!sim.topic(GROUP).attached.contains_key(&b1));
    assert!(sim.stored_sub(BOB).deleted.is_some());
    // Soft delete hid seq 1 for Bob only, hard delete needs D: the owner deletes for all.
    sim.run(
        GROUP,
        del_req(
            a1,
            ALICE,
            "h",
            DelWhat::Msg {
                ranges: vec![SeqRange { low: 1, hi: 2 }],
                hard: true,
            },
        ),
    );
    let c = ctrl(&sim.frames(a1)[0], 200, "ok");
    assert_eq!(
        c["params"]["del"], 2,
        "every {{del msg}} takes the next delete id"
    );
}

fn sid_user(n: u64) -> UserId {
    UserId(0x7700_0000_0000_0000 | n)
}

#[test]
fn p2p_topics_are_named_by_the_peer_and_announced_to_it() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.add_user(ALICE);
    sim.add_user(BOB);
    sim.attach_me(b1, BOB);
    sim.clear();
    let name = crate::routing::p2p_topic(ALICE, BOB);
    assert!(
        sim.load(&name),
        "a P2P topic between two users loads before it exists"
    );
    sim.req(&name, join_as(a1, ALICE, &BOB.usr(), Some("s")));
    assert!(
        !sim.inbox.contains_key(&a1),
        "acknowledged only once stored"
    );
    sim.settle();
    let recs = sim.take(a1);
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 200, "ok");
    assert_eq!(
        c["topic"],
        BOB.usr(),
        "the reply names the peer, never p2p…"
    );
    assert_eq!(c["params"]["acs"]["mode"], "JRWPA");
    // Bob learns of the conversation on `me`, named by Alice's id.
    let acs = pres_of(sim.frames(b1), &["acs"]);
    assert_eq!(acs.len(), 1, "{acs:?}");
    assert_eq!(acs[0]["pres"]["src"], ALICE.usr());
    assert_eq!(acs[0]["pres"]["dacs"]["given"], "JRWPA");
    // Bob attaches; a message reaches each side under the other's name.
    sim.run(&name, join_as(b1, BOB, &ALICE.usr(), Some("t")));
    sim.clear();
    let mut p = publish(a1, ALICE, Some("p"), r#""hi bob""#);
    if let TopicRequest::Publish { as_seen, .. } = &mut p {
        *as_seen = BOB.usr();
    }
    sim.run(&name, p);
    let to_bob: Vec<_> = sim
        .frames(b1)
        .into_iter()
        .filter(|f| f.get("data").is_some())
        .collect();
    let to_alice: Vec<_> = sim
        .frames(a1)
        .into_iter()
        .filter(|f| f.get("data").is_some())
        .collect();
    assert_eq!(to_bob[0]["data"]["topic"], ALICE.usr());
    assert_eq!(to_alice[0]["data"]["topic"], BOB.usr());
    for v in acs
        .iter()
        .chain(&to_bob)
        .chain(&to_alice)
        .chain(std::iter::once(f))
    {
        assert!(
            !v.to_string().contains("\"p2p"),
            "internal name leaked: {v}"
        );
    }
}

#[test]
fn error_paths_answer_the_reference_code_and_text() {
    use crate::routing::DelWhat;
    let (a1, b1, c1) = (sid(0, 1), sid(1, 1), sid(0, 2));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    for u in [ALICE, BOB, CAROL] {
        sim.add_user(u);
    }
    sim.attach_me(c1, CAROL);
    sim.clear();
    let chn = format!("chn{}", &GROUP[3..]);

    let carol_me = CAROL.usr();
    // (topic, session, request, code, text)
    let rows: Vec<(&str, SessionId, TopicRequest, u64, &str)> = vec![
        // A group that is not a channel has no `chn…` name.
        (
            GROUP,
            sid(1, 9),
            join_as(sid(1, 9), CAROL, &chn, Some("1")),
            404,
            "not found",
        ),
        // Members of a group set nothing on topics they are not in.
        (
            GROUP,
            sid(1, 8),
            set_req(sid(1, 8), CAROL, "1", json!({"desc": {"private": "x"}})),
            409,
            "must attach first",
        ),
        // Already the value: not modified.
        (
            GROUP,
            b1,
            set_req(b1, BOB, "1", json!({"sub": {"mode": "JRWPS"}})),
            304,
            "not modified",
        ),
        // Nobody to delete.
        (
            GROUP,
            a1,
            del_req(a1, ALICE, "1", DelWhat::Sub { user: CAROL.usr() }),
            304,
            "no action",
        ),
        // Tags are not a P2P or `me` aux matter: aux is for groups and P2P only.
        (
            &carol_me,
            c1,
            TopicRequest::Set {
                req: rq(c1, CAROL),
                id: Some("1".into()),
                as_seen: "me".into(),
                query: set_query(json!({"aux": {"k": 1}})),
            },
            405,
            "operation or method not allowed",
        ),
        // Credentials are a `me` matter.
        (
            GROUP,
            a1,
            set_req(
                a1,
                ALICE,
                "1",
                json!({"cred": {"meth": "email", "val": "a@b.c"}}),
            ),
            405,
            "operation or method not allowed",
        ),
        // Unknown users cannot be invited.
        (
            GROUP,
            a1,
            set_req(
                a1,
                ALICE,
                "1",
                json!({"sub": {"user": sid_user(5).usr(), "mode": "JRWP"}}),
            ),
            404,
            "user not found",
        ),
        // The owner cannot leave its own group for good.
        (
            GROUP,
            a1,
            leave(a1, ALICE, "1", true),
            403,
            "permission denied",
        ),
        // Deleting messages outside the topic's range is malformed.
        (
            GROUP,
            a1,
            del_req(
                a1,
                ALICE,
                "1",
                DelWhat::Msg {
                    ranges: vec![SeqRange { low: 1, hi: 0 }],
                    hard: true,
                },
            ),
            400,
            "malformed",
        ),
    ];
    for (i, (topic, s, req, code, text)) in rows.into_iter().enumerate() {
        sim.run(topic, req);
        let (got, got_text) = first_ctrl(&mut sim, s);
        assert_eq!((got, got_text.as_str()), (code, text), "row {i}");
        sim.clear();
    }
    // A member addressing a channel by its reader name is told to use the group's name.
    let mut chan = Sim::new(2);
    chan.topics
        .insert(GROUP.to_owned(), Topic::new_group(GROUP, 2));
    chan.run(GROUP, creation(a1, ALICE, "nchX", true));
    chan.clear();
    let chn_name = format!("chn{}", &GROUP[3..]);
    chan.run(GROUP, join_as(sid(0, 5), ALICE, &chn_name, Some("u")));
    let f = chan.frames(sid(0, 5));
    let c = ctrl(&f[0], 303, "use other");
    assert_eq!(c["params"]["topic"], GROUP);
}
