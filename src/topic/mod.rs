//! The topic state machine, runtime-free: one per loaded topic, owned by the topic's home
//! shard. It takes [`TopicRequest`]s and `now` and returns [`TopicOut`]s: frames for sessions,
//! per-shard fan-out batches, presence for users' `me` topics, store reads whose answers come
//! back through [`Topic::handle_read`], and store writes whose completion comes back through
//! [`Topic::handle_persisted`].
//!
//! A topic never calls the store. A request that needs stored data first names its reads
//! ([`Topic::reads_for`]); the request waits (and later requests to the topic queue behind it,
//! so they keep their order) until the answers arrive, then runs with them in
//! [`TopicCx::fetched`]. The embedded store answers within the same step; a network database
//! answers later, and nothing else changes.
//!
//! A topic never reads the clock, never spawns, never touches a socket, and never talks to a
//! session directly. Writes it needs acknowledged are emitted as [`TopicOut::Persist`] and the
//! dependent replies wait for the completion, so nothing is acknowledged before it is durable.

mod contacts;
mod deferred;
mod del;
mod fanout;
mod fnd;
mod join;
mod json;
mod leave;
mod load;
mod meta;
mod p2p;
mod publish;
mod reads;
mod set;
mod set_sub;
pub mod tags;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;

use crate::access::{AccessMode, AuthLevel};
use crate::fewmap::FewMap;
use crate::ids::{SessionId, UnixMillis, UserId};
use crate::proto::server::AccessOut;
use crate::proto::{Encoding, Frame, Outcome, ServerMsg};
use crate::routing::{ReqHead, Requester, SessionEvent, TopicRequest, Unreachable};
use crate::store::{
    Answers, ReadAnswer, ReadQuery, StoreError, SubRecord, TopicRecord, UserRecord, WriteBatch,
};

pub use fanout::{group_by_shard, Recipients};

/// What kind of topic this is, from its routing name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicKind {
    /// A user's `me` topic (`usr…`).
    Me(UserId),
    /// A user's search topic (`fnd…`): per-session queries, and the user's stored query (its
    /// `private`, in the `fnd` subscription row).
    Fnd(UserId),
    /// A group or channel (`grp…`).
    Group,
    /// A conversation between two users (`p2p…`), the smaller id first.
    P2p(UserId, UserId),
    /// The system topic `sys`: anyone may publish, only root may subscribe.
    Sys,
}

impl TopicKind {
    /// Classifies a routing name; `None` for kinds this server does not host.
    pub fn of(name: &str) -> Option<TopicKind> {
        if let Some(uid) = UserId::parse_usr(name) {
            return Some(TopicKind::Me(uid));
        }
        if let Some(body) = name.strip_prefix("fnd") {
            return UserId::decode_body(body).map(TopicKind::Fnd);
        }
        if crate::routing::is_group(name) {
            return Some(TopicKind::Group);
        }
        if name.starts_with("p2p") {
            let (lo, hi) = crate::routing::p2p_users(name)?;
            return Some(TopicKind::P2p(lo, hi));
        }
        if name == "sys" {
            return Some(TopicKind::Sys);
        }
        None
    }

    /// Kinds with stored subscribers (`members`).
    pub fn has_members(self) -> bool {
        matches!(self, TopicKind::Group | TopicKind::P2p(..) | TopicKind::Sys)
    }
}

/// Limits a topic applies.
#[derive(Clone, Debug)]
pub struct TopicLimits {
    pub max_history: usize,
    pub max_subscriber_count: usize,
    pub max_tag_count: usize,
    /// Hard deletes of messages older than this are refused (0: no limit).
    pub msg_delete_age_ms: u64,
    /// Results of a `fnd` search and of other lists.
    pub max_results: usize,
    /// Tag namespaces users cannot add or remove themselves (`email`, `tel`, `basic`).
    pub restricted_tags: Vec<String>,
}

impl Default for TopicLimits {
    fn default() -> TopicLimits {
        TopicLimits {
            max_history: 100,
            max_subscriber_count: 128,
            max_tag_count: 16,
            msg_delete_age_ms: 0,
            max_results: 1024,
            restricted_tags: vec!["basic".into(), "email".into(), "tel".into()],
        }
    }
}

/// Everything a topic needs from its caller for one step.
pub struct TopicCx<'a> {
    pub now: UnixMillis,
    /// The stored data this step asked for (empty unless the step follows a read).
    pub fetched: Answers,
    pub limits: &'a TopicLimits,
    pub out: &'a mut Vec<TopicOut>,
}

impl<'a> TopicCx<'a> {
    /// A context for one step with nothing fetched.
    pub fn new(now: UnixMillis, limits: &'a TopicLimits, out: &'a mut Vec<TopicOut>) -> Self {
        TopicCx {
            now,
            fetched: Answers::default(),
            limits,
            out,
        }
    }
}

/// What a topic step produces.
#[derive(Debug)]
pub enum TopicOut {
    /// An event for one session.
    ToSession { sid: SessionId, ev: SessionEvent },
    /// One shared frame for many sessions, already grouped by destination shard.
    Deliver { frame: Frame, to: Recipients },
    /// One shared `{pres}` frame for the `me` topics of many users; each user's sessions in
    /// the list are attached to the source topic and are skipped.
    UserPres {
        frame: Frame,
        targets: Vec<(UserId, Vec<SessionId>)>,
    },
    /// A durable write; the runtime calls [`Topic::handle_persisted`] with `token` when done.
    Persist { token: u64, batch: WriteBatch },
    /// Store reads; the runtime calls [`Topic::handle_read`] with `token` and the answers.
    Read { token: u64, queries: Vec<ReadQuery> },
    /// A write nobody waits for (read markers); failures are only logged.
    Write { batch: WriteBatch },
    /// A request for another topic (a user's `me`), routed to its home shard.
    ToTopic { topic: String, req: TopicRequest },
}

/// A subscriber of this topic and how many of its sessions are attached.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) sub: SubRecord,
    /// Attached sessions of this user.
    pub(crate) online: u32,
}

impl Member {
    pub(crate) fn mode(&self) -> AccessMode {
        self.sub.want.and(self.sub.given)
    }

    pub(crate) fn is_active(&self) -> bool {
        self.sub.deleted.is_none()
    }
}

/// A session attached to this topic.
#[derive(Clone, Debug)]
pub(crate) struct Attachment {
    pub(crate) uid: UserId,
    /// The wire encoding of the attached session (fan-out encodes each one in use once).
    pub(crate) enc: Encoding,
    /// A background session: not counted in its member's `online` (`Topic::foreground`).
    pub(crate) background: bool,
}

/// Work waiting for a durable write.
// Few per topic (one per write in flight); boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Pending {
    Join(join::PendingJoin),
    Publish(publish::PendingPublish),
    /// A reply (and notifications) to send once a `{set}`/`{del}` write is durable.
    Reply(Reply),
    /// A request waiting for the reads it named, with what was fetched so far.
    Request(TopicRequest, Answers),
    /// A durable join waiting for the reads its `get` part needs.
    CompleteJoin(join::PendingJoin, Answers),
    /// A join's read of messages held back until the writes in flight are done
    /// ([`Topic::read`]): what waits for it, and its queries.
    Deferred(Box<(Pending, Vec<ReadQuery>)>),
}

/// What a durable write of a `{set}`/`{del}` releases: frames for the requester, then
/// frames for other sessions and presence for users' `me` topics.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub(crate) sid: Option<SessionId>,
    pub(crate) id: Option<String>,
    pub(crate) as_seen: String,
    pub(crate) frames: Vec<Frame>,
    pub(crate) after: Vec<TopicOut>,
    /// What to answer instead when the write fails a uniqueness precondition (a credential
    /// another account holds), and the user record to put back in memory.
    pub(crate) on_conflict: Option<Box<(Outcome, Option<UserRecord>)>>,
}

/// The tables of a topic, keyed by server-assigned ids and names. A seeded fast hasher: its
/// per-table state is half of std's, and every idle session's `me` topic holds four (W1).
pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What only a `fnd` topic keeps.
#[derive(Debug, Default)]
pub(crate) struct FndState {
    /// Each attached session's search query.
    pub(crate) queries: Map<SessionId, String>,
    /// The user's stored `private` (the query used when a session has none), kept in the
    /// `fnd` subscription row as the reference does.
    pub(crate) private: Option<crate::store::JsonText>,
}

/// One loaded topic.
#[derive(Debug)]
pub struct Topic {
    pub(crate) name: String,
    pub(crate) kind: TopicKind,
    /// The server's shard count (the width of a `ShardId`; it packs with the flags: W1).
    pub(crate) n_shards: u16,
    /// The stored record (groups); `None` for `me` and for a group being created. Boxed: every
    /// idle session's `me` topic would otherwise carry its 168 bytes unused (W1).
    pub(crate) rec: Option<Box<TopicRecord>>,
    /// The user record (`me` topics).
    pub(crate) user: Option<UserRecord>,
    /// Last assigned message seq (may run ahead of the store while writes are in flight).
    pub(crate) seq: u64,
    /// Time of the last message, in Unix milliseconds (8 bytes where an `Option<UnixMillis>`
    /// takes 16: W1); read through [`Topic::touched`].
    touched: Option<std::num::NonZeroU64>,
    pub(crate) members: FewMap<UserId, Member>,
    pub(crate) attached: FewMap<SessionId, Attachment>,
    pub(crate) pending: FewMap<u64, Pending>,
    next_token: u64,
    /// The token of the read in flight, if any (tokens start at 1): requests that arrive
    /// meanwhile wait in `parked`.
    reading: Option<NonZeroU64>,
    /// Boxed, and only while a request waits (W1: `Topic` fits mimalloc's 448-byte class).
    // A box around the queue on purpose: 8 bytes inline where the queue takes 32.
    #[allow(clippy::box_collection)]
    parked: Option<Box<VecDeque<TopicRequest>>>,
    /// Set when a creation failed to persist: the topic only waits to be unloaded.
    pub(crate) broken: bool,
    /// `me`: the user's contacts (routing name → state).
    pub(crate) contacts: contacts::Contacts,
    /// `me`: user agents of attached sessions, most recently attached last.
    pub(crate) uas: Vec<(SessionId, Box<str>)>,
    /// `fnd`: the search state; `None` for every other kind. Boxed: every idle session's `me`
    /// topic would otherwise carry it unused (W1).
    pub(crate) fnd: Option<Box<FndState>>,
    /// Set once `on_unload` ran.
    pub(crate) unloaded: bool,
    /// `me`/group: the topic announced itself online (first attachment since loading).
    pub(crate) announced: bool,
    /// `me`: when the last attached session left and its user agent (the user's last seen,
    /// recorded when the topic unloads).
    /// Boxed: set only between the last session leaving and the unload (W1).
    pub(crate) last_left: Option<Box<(UnixMillis, Box<str>)>>,
    /// P2P/group: a participant or the owner is suspended; `{pub}` is refused.
    pub(crate) read_only: bool,
    /// `me`: the user's own want on `me` (`JPS` unless muted: without `P` the user neither
    /// shows presence to contacts nor receives theirs). Stored as a subscription row named
    /// after the `me` topic.
    pub(crate) me_want: AccessMode,
}

impl Topic {
    fn empty(name: &str, kind: TopicKind, n_shards: usize) -> Topic {
        Topic {
            name: name.to_owned(),
            kind,
            n_shards: u16::try_from(n_shards).unwrap_or(u16::MAX),
            rec: None,
            user: None,
            seq: 0,
            touched: None,
            members: FewMap::default(),
            attached: FewMap::default(),
            pending: FewMap::default(),
            next_token: 1,
            reading: None,
            parked: None,
            broken: false,
            contacts: contacts::Contacts::default(),
            uas: Vec::new(),
            fnd: matches!(kind, TopicKind::Fnd(_)).then(Box::default),
            unloaded: false,
            announced: false,
            last_left: None,
            read_only: false,
            me_want: AccessMode::SELF_ME,
        }
    }

    /// A group about to be created by a `{sub new…}`; the join fills it in.
    pub fn new_group(name: &str, n_shards: usize) -> Topic {
        Topic::empty(name, TopicKind::Group, n_shards)
    }

    /// The routing name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Time of the last message.
    pub(crate) fn touched(&self) -> Option<UnixMillis> {
        self.touched.map(|t| UnixMillis(t.get()))
    }

    /// Records a message at `at` (a clock reading: after the epoch).
    pub(crate) fn touch(&mut self, at: UnixMillis) {
        self.touched = std::num::NonZeroU64::new(at.0).or(self.touched);
    }

    /// Number of attached sessions.
    pub fn n_attached(&self) -> usize {
        self.attached.len()
    }

    /// True while a read of this topic is in flight (its requests wait).
    pub(crate) fn is_reading(&self) -> bool {
        self.reading.is_some()
    }

    /// The attached sessions.
    pub fn attached_sids(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.attached.keys().copied()
    }

    /// True when nothing keeps the topic loaded: no attached session, no read or write in
    /// flight, no request waiting.
    pub fn is_idle(&self) -> bool {
        self.attached.is_empty()
            && self.pending.is_empty()
            && self.parked.as_ref().is_none_or(|q| q.is_empty())
    }

    /// Handles one request: at once when it needs no stored data, else once its reads are
    /// answered. While a read is in flight, requests wait their turn.
    pub fn handle(&mut self, req: TopicRequest, cx: &mut TopicCx<'_>) {
        if self.reading.is_some() {
            self.parked.get_or_insert_with(Box::default).push_back(req);
            return;
        }
        self.run_request(req, Answers::default(), cx);
    }

    /// Answers to a [`TopicOut::Read`] arrived: the waiting request (or join) goes on, then
    /// the requests that queued behind it.
    pub fn handle_read(
        &mut self,
        token: u64,
        results: Vec<(ReadQuery, Result<ReadAnswer, StoreError>)>,
        cx: &mut TopicCx<'_>,
    ) {
        if self.reading.map(NonZeroU64::get) == Some(token) {
            self.reading = None;
        }
        match self.pending.remove(&token) {
            Some(Pending::Request(req, mut answers)) => {
                answers.extend(results);
                self.run_request(req, answers, cx);
            }
            Some(Pending::CompleteJoin(p, mut answers)) => {
                answers.extend(results);
                cx.fetched = answers;
                self.complete_join(p, cx);
                cx.fetched = Answers::default();
            }
            Some(other) => {
                self.pending.insert(token, other);
            }
            None => {}
        }
        while self.reading.is_none() {
            let Some(req) = self.parked.as_mut().and_then(|q| q.pop_front()) else {
                self.parked = None;
                break;
            };
            self.run_request(req, Answers::default(), cx);
        }
    }

    /// Runs a request with what was fetched for it, first asking for anything still missing.
    fn run_request(&mut self, req: TopicRequest, answers: Answers, cx: &mut TopicCx<'_>) {
        let need = self.reads_for(&req, &answers, cx.limits);
        if !need.is_empty() {
            return self.read(need, Pending::Request(req, answers), cx);
        }
        cx.fetched = answers;
        self.dispatch(req, cx);
        cx.fetched = Answers::default();
    }

    /// Handles one request whose reads are in `cx.fetched`.
    fn dispatch(&mut self, req: TopicRequest, cx: &mut TopicCx<'_>) {
        if self.broken {
            // A creation that failed to persist: every client request is refused alike.
            if let (Some(hdr), Some(mut r)) = (req.hdr(), req.refusal(Unreachable::Broken)) {
                r.detach &= !self.attached.contains_key(&hdr.req.sid);
                for ev in r.events(hdr, &self.name, cx.now) {
                    let sid = hdr.req.sid;
                    cx.out.push(TopicOut::ToSession { sid, ev });
                }
            }
            return;
        }
        match req {
            TopicRequest::Join {
                hdr: ReqHead { req, id, as_seen },
                create,
                set,
                get,
                ua,
                bkg,
            } => {
                let (set, get) = (set.map(|b| *b), get.map(|b| *b));
                self.on_join(
                    join::JoinArgs {
                        req,
                        id,
                        as_seen,
                        create,
                        set,
                        get,
                        ua,
                        bkg,
                    },
                    cx,
                )
            }
            TopicRequest::Foreground { sid, ua } => self.foreground(sid, &ua, cx),
            TopicRequest::Leave {
                hdr: ReqHead { req, id, as_seen },
                unsub,
            } => self.on_leave(req, id, as_seen, unsub, cx),
            TopicRequest::Detach { sid } => self.detach(sid, cx),
            TopicRequest::Publish {
                hdr: ReqHead { req, id, as_seen },
                noecho,
                head,
                content,
            } => self.on_publish(
                publish::PublishArgs {
                    req,
                    id,
                    as_seen,
                    noecho,
                    head,
                    content,
                },
                cx,
            ),
            TopicRequest::Get {
                hdr: ReqHead { req, id, as_seen },
                query,
            } => self.on_get(req, id, as_seen, *query, cx),
            TopicRequest::Note {
                hdr: ReqHead { req, as_seen, .. },
                what,
                seq,
                event,
                payload,
            } => self.on_note(req, as_seen, what, seq, event, payload, cx),
            TopicRequest::Set {
                hdr: ReqHead { req, id, as_seen },
                query,
            } => self.on_set(req, id, as_seen, *query, cx),
            TopicRequest::Del {
                hdr: ReqHead { req, id, as_seen },
                what,
            } => self.on_del(req, id, as_seen, what, cx),
            TopicRequest::UserPres { frame, skip } => self.on_user_pres(frame, skip, cx),
            TopicRequest::Contact { topic, ev } => self.on_contact(topic, ev, cx),
            TopicRequest::Refresh => self.check_read_only(cx),
        }
    }

    /// A durable write emitted as [`TopicOut::Persist`] finished.
    pub fn handle_persisted(
        &mut self,
        token: u64,
        res: Result<(), StoreError>,
        cx: &mut TopicCx<'_>,
    ) {
        match self.pending.remove(&token) {
            Some(Pending::Join(p)) => self.join_persisted(p, res, cx),
            Some(Pending::Publish(p)) => self.publish_persisted(p, res, cx),
            Some(Pending::Reply(r)) => self.reply_persisted(r, res, cx),
            Some(other) => {
                self.pending.insert(token, other);
            }
            None => {}
        }
        self.release_deferred_read(cx);
    }

    /// Releases a `{set}`/`{del}` reply once its write is durable (or reports the failure).
    fn reply_persisted(&mut self, r: Reply, res: Result<(), StoreError>, cx: &mut TopicCx<'_>) {
        let Some(sid) = r.sid else {
            if res.is_ok() {
                cx.out.extend(r.after);
            }
            return;
        };
        match res {
            Ok(()) => {
                if !r.frames.is_empty() {
                    self.send(sid, r.frames, cx);
                }
                cx.out.extend(r.after);
            }
            Err(StoreError::Conflict(_)) if r.on_conflict.is_some() => {
                let Some(conflict) = r.on_conflict else {
                    return;
                };
                let (outcome, before) = *conflict;
                if before.is_some() {
                    self.user = before;
                }
                let frame = Frame::new(
                    outcome
                        .ctrl(r.id.as_deref(), Some(&r.as_seen), cx.now)
                        .msg(),
                );
                self.send(sid, vec![frame], cx);
            }
            Err(e) => {
                log::error!("topic {}: change not persisted: {e}", self.name);
                let frame = Frame::new(
                    Outcome::InternalError
                        .ctrl(r.id.as_deref(), Some(&r.as_seen), cx.now)
                        .msg(),
                );
                self.send(sid, vec![frame], cx);
            }
        }
    }

    /// Queues a durable write and remembers what waits for it.
    pub(crate) fn persist(&mut self, batch: WriteBatch, pending: Pending, cx: &mut TopicCx<'_>) {
        let token = self.next_token;
        self.next_token += 1;
        self.pending.insert(token, pending);
        cx.out.push(TopicOut::Persist { token, batch });
    }

    /// Sends frames to one session.
    pub(crate) fn send(&self, sid: SessionId, frames: Vec<Frame>, cx: &mut TopicCx<'_>) {
        cx.out.push(TopicOut::ToSession {
            sid,
            ev: SessionEvent::Frames(frames),
        });
    }

    /// Replies with an error and tells the session it is not attached (when it thought it was
    /// joining or attached).
    pub(crate) fn reply_err(
        &self,
        req: &Requester,
        outcome: Outcome,
        id: Option<&str>,
        as_seen: &str,
        cx: &mut TopicCx<'_>,
    ) {
        let frame = Frame::new(outcome.ctrl(id, Some(as_seen), cx.now).msg());
        self.send(req.sid, vec![frame], cx);
        if !self.attached.contains_key(&req.sid) {
            cx.out.push(TopicOut::ToSession {
                sid: req.sid,
                ev: SessionEvent::Detached {
                    topic: self.name.clone(),
                },
            });
        }
    }

    /// A reply that does not change attachment.
    pub(crate) fn reply(&self, sid: SessionId, msg: ServerMsg, cx: &mut TopicCx<'_>) {
        self.send(sid, vec![Frame::new(msg)], cx);
    }

    /// Sends one frame to the given recipients (no-op when there are none).
    pub(crate) fn deliver(&self, frame: Frame, to: Recipients, cx: &mut TopicCx<'_>) {
        if !to.batches.is_empty() {
            cx.out.push(TopicOut::Deliver { frame, to });
        }
    }

    /// Default access for a new subscriber of `level`.
    pub(crate) fn default_given(&self, level: AuthLevel) -> AccessMode {
        let Some(rec) = &self.rec else {
            return AccessMode::NONE;
        };
        match level {
            AuthLevel::Anon => rec.access.anon,
            AuthLevel::Root => AccessMode::OWNER_FULL.without(AccessMode::OWNER),
            _ => rec.access.auth,
        }
    }

    /// Queues a reply that must wait for `batch` to be durable.
    pub(crate) fn persist_reply(&mut self, batch: WriteBatch, reply: Reply, cx: &mut TopicCx<'_>) {
        self.persist(batch, Pending::Reply(reply), cx);
    }

    /// The mode `uid` has on this topic (`me`: `JPS`; not subscribed: none).
    pub(crate) fn mode_of_user(&self, uid: UserId) -> AccessMode {
        match self.kind {
            TopicKind::Me(_) | TopicKind::Fnd(_) => AccessMode::SELF_ME,
            _ => self
                .members
                .get(&uid)
                .filter(|m| m.is_active())
                .map(|m| m.mode())
                .unwrap_or_default(),
        }
    }

    /// True for a channel reader: subscribed with the fixed reader access `JRP` to a channel.
    pub(crate) fn is_reader(&self, uid: UserId) -> bool {
        self.rec.as_ref().is_some_and(|r| r.is_chan)
            && self
                .members
                .get(&uid)
                .is_some_and(|m| m.sub.given == AccessMode::CHAN_READER)
    }

    /// The topic's name as `uid` sees it: the peer's id in P2P, `chn…` for channel readers.
    pub(crate) fn view_of(&self, uid: UserId) -> String {
        match self.kind {
            TopicKind::Me(_) => "me".into(),
            TopicKind::Fnd(_) => "fnd".into(),
            TopicKind::Sys => "sys".into(),
            TopicKind::P2p(a, b) => if uid == a { b } else { a }.usr(),
            TopicKind::Group => {
                if self.is_reader(uid) {
                    format!("chn{}", &self.name[3..])
                } else {
                    self.name.clone()
                }
            }
        }
    }

    /// The owner (groups) or `None`.
    pub(crate) fn owner(&self) -> Option<UserId> {
        self.rec.as_ref().and_then(|r| r.owner)
    }

    /// `{want, given, mode}` of a subscription.
    pub(crate) fn access_out(sub: &SubRecord) -> AccessOut {
        AccessOut {
            want: sub.want.to_string(),
            given: sub.given.to_string(),
            mode: sub.want.and(sub.given).to_string(),
        }
    }
}

/// A topic's default access from a client's `defacs` over `base`; `None` if a string is not
/// a mode or asks for `O` (ownership is never a default).
pub(crate) fn topic_defacs(
    base: crate::access::DefaultAccess,
    auth: Option<&str>,
    anon: Option<&str>,
) -> Option<crate::access::DefaultAccess> {
    base.parse_over(auth, anon)
        .filter(|d| !d.auth.has(AccessMode::OWNER) && !d.anon.has(AccessMode::OWNER))
}

/// The in-memory record of `sys` before anything about it was stored.
fn sys_record() -> TopicRecord {
    TopicRecord {
        name: "sys".into(),
        created: UnixMillis(0),
        updated: UnixMillis(0),
        owner: None,
        access: crate::access::DefaultAccess {
            auth: AccessMode(AccessMode::WRITE),
            anon: AccessMode(AccessMode::WRITE),
        },
        public: None,
        trusted: None,
        tags: Vec::new(),
        is_chan: false,
        del_id: 0,
        aux: None,
    }
}
