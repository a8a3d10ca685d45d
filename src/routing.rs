//! The vocabulary the protocol state machines exchange through the shard runtime: who is
//! asking ([`Requester`]), what a topic is asked ([`TopicRequest`]), what a session is told
//! ([`SessionEvent`]), what the account machine is asked ([`AccountRequest`],
//! [`AccountChange`]), where a topic lives ([`home_shard`]), and the naming and tag rules they
//! share ([`p2p_users`], [`normalize_tags`]).
//!
//! `session`, `topic` and `account` never import each other; they speak these types and only
//! `shard` carries them between them. [`Envelope`] is the closed list of everything one shard
//! sends another (and, in a cluster, one node another): plain data — ids, strings, frames —
//! with no runtime type (no queue, callback, clock or store handle) inside, so a node link can
//! serialise it. Everything here is `Send`, because it crosses cores.

use bytes::Bytes;

use crate::access::AuthLevel;
use crate::ids::{SessionHandle, SessionId, ShardId, UnixMillis, UserId};
use crate::proto::client::{Credential, GetQuery, RawJson, SeqRange, SetQuery};
use crate::proto::{DecodeError, Decoded, Encoding, Frame, Outcome};

/// The home shard of a topic (internal routing name): FNV-1a 64 of the name, modulo the shard
/// count. Pure, so every shard computes the same answer without coordination.
pub fn home_shard(topic: &str, n_shards: usize) -> ShardId {
    home_shard_bytes(topic.as_bytes(), n_shards)
}

fn home_shard_bytes(topic: &[u8], n_shards: usize) -> ShardId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ShardId((h % n_shards.max(1) as u64) as u16)
}

/// The home shard of `uid`'s `me` topic, `home_shard(&me_topic(uid), n_shards)` without
/// building the name (a message's `{pres}` to its members asks it once per member).
pub fn me_home_shard(uid: UserId, n_shards: usize) -> ShardId {
    if n_shards <= 1 {
        return ShardId(0);
    }
    let mut name = [0u8; 14];
    name[..3].copy_from_slice(b"usr");
    uid.encode_body_into(&mut name[3..]);
    home_shard_bytes(&name, n_shards)
}

/// The routing name of a user's `me` topic.
pub fn me_topic(uid: UserId) -> String {
    uid.usr()
}

/// The internal name of the P2P topic between two users: `p2p` + base64url of the smaller id's
/// 8 little-endian bytes followed by the larger's.
pub fn p2p_topic(a: UserId, b: UserId) -> String {
    use base64::Engine as _;
    let (lo, hi) = if a.0 < b.0 { (a, b) } else { (b, a) };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&lo.0.to_le_bytes());
    bytes[8..].copy_from_slice(&hi.0.to_le_bytes());
    let mut name = String::with_capacity(3 + 22);
    name.push_str("p2p");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes, &mut name);
    name
}

/// The two users of a P2P topic name (the inverse of [`p2p_topic`]), smaller id first.
pub fn p2p_users(name: &str) -> Option<(UserId, UserId)> {
    use base64::Engine as _;
    let body = name.strip_prefix("p2p")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .ok()?;
    let lo = UserId(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?));
    let hi = UserId(u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?));
    (bytes.len() == 16 && lo.0 < hi.0).then_some((lo, hi))
}

/// True for a group's (or channel's) routing name, `grp…`.
pub fn is_group(name: &str) -> bool {
    name.starts_with("grp") && name.len() > 3
}

/// Shortest and longest tag, in characters.
pub const MIN_TAG_LEN: usize = 2;
pub const MAX_TAG_LEN: usize = 96;

/// Normalises tags as the reference does: trimmed, lowercased, 2..=96 characters, starting
/// with a letter or digit, de-duplicated, sorted, at most `max_count`. The one rule for tags,
/// used at sign-up (account), by `{set tags}` and group creation (topic).
pub fn normalize_tags(tags: Vec<String>, max_count: usize) -> Vec<String> {
    let mut out: Vec<String> = tags
        .into_iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| valid_tag(t))
        .collect();
    out.sort();
    out.dedup();
    out.truncate(max_count);
    out
}

/// True for a normalised tag of acceptable length and shape.
pub fn valid_tag(t: &str) -> bool {
    let n = t.chars().count();
    (MIN_TAG_LEN..=MAX_TAG_LEN).contains(&n)
        && t.chars().next().is_some_and(|c| c.is_alphanumeric())
        && !t.chars().any(|c| c.is_control())
}

/// The namespace of a tag (`email` for `email:a@b.c`), if it has one.
pub fn tag_namespace(tag: &str) -> Option<&str> {
    tag.split_once(':')
        .map(|(ns, _)| ns)
        .filter(|ns| !ns.is_empty())
}

/// True when `tag` lies in one of the `restricted` namespaces (`email` for `email:a@b.c`).
pub fn is_restricted_tag(tag: &str, restricted: &[String]) -> bool {
    tag_namespace(tag).is_some_and(|ns| restricted.iter().any(|r| r == ns))
}

/// The session on whose behalf a topic request is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    pub sid: SessionId,
    pub uid: UserId,
    pub level: AuthLevel,
    /// The session's wire encoding (what the topic's fan-out must produce for it).
    pub enc: Encoding,
}

/// How a `{sub}` creates a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateSpec {
    /// The client's `new…`/`nch…` name, echoed as `params.tmpname`.
    pub tmpname: String,
    /// Created from `nch…`: a channel.
    pub is_chan: bool,
}

/// A request routed to a topic's home shard. `as_seen` is the topic name as the requester
/// addresses it (`me`, `grp…`), used in every reply to that session.
#[derive(Debug)]
pub enum TopicRequest {
    /// `{sub}`: attach (creating the topic or subscription when needed).
    Join {
        hdr: ReqHead,
        create: Option<CreateSpec>,
        set: Option<Box<SetQuery>>,
        get: Option<Box<GetQuery>>,
        ua: String,
        /// The session is in the background (`{hi bkg:true}`, not yet foreground): attach
        /// without counting the user online or announcing anything.
        bkg: bool,
    },
    /// A background session turned foreground: count it online and send the `on` it deferred
    /// (its `ua` is the user agent to announce on `me`). Dropped when the topic is not loaded.
    Foreground { sid: SessionId, ua: String },
    /// `{leave}`: detach, and with `unsub` delete the subscription.
    Leave { hdr: ReqHead, unsub: bool },
    /// The session ended: detach silently.
    Detach { sid: SessionId },
    /// `{pub}`.
    Publish {
        hdr: ReqHead,
        noecho: bool,
        head: Option<serde_json::Map<String, serde_json::Value>>,
        content: RawJson,
    },
    /// `{get}` (the topic answers a limited query when the session is not attached).
    Get { hdr: ReqHead, query: Box<GetQuery> },
    /// `{note}`: typing indicators and read/recv receipts (no id: notes are not answered).
    Note {
        hdr: ReqHead,
        what: String,
        seq: u64,
        event: Option<String>,
        payload: Option<RawJson>,
    },
    /// `{set}` (the topic allows only `desc.private` and the own `sub.mode` when the session
    /// is not attached).
    Set { hdr: ReqHead, query: Box<SetQuery> },
    /// `{del}` of messages, the topic, a subscription, or (on `me`) a credential.
    Del { hdr: ReqHead, what: DelWhat },
    /// A pre-serialized `{pres}` for the user whose `me` topic this is, to be shown on every
    /// session attached to `me` except `skip` (those are attached to the source topic).
    UserPres { frame: Frame, skip: Vec<SessionId> },
    /// An account involved in this topic changed state (suspended or restored): re-check
    /// whether the topic is read-only. Dropped when the topic is not loaded.
    Refresh,
    /// Something happened to one of the contacts of the user whose `me` topic this is;
    /// `topic` is the contact's routing name (`p2p…` or `grp…`). Dropped when `me` is not
    /// loaded (the user is offline).
    Contact { topic: String, ev: ContactEvent },
}

/// What every request a client makes of a topic carries: who asks, the request id to echo,
/// and the topic's name as the client wrote it (used in every reply to that session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqHead {
    pub req: Requester,
    pub id: Option<String>,
    pub as_seen: String,
}

/// What a `{del}` deletes.
#[derive(Debug)]
pub enum DelWhat {
    /// Messages in `[low, hi)` ranges; `hard` deletes them for everyone.
    Msg { ranges: Vec<SeqRange>, hard: bool },
    /// The topic (owner) or the own subscription (others).
    Topic { hard: bool },
    /// Another user's subscription.
    Sub { user: String },
    /// A credential of the user (`me` only).
    Cred(Box<Credential>),
}

/// Presence and subscription changes between a contact topic and a user's `me`.
#[derive(Debug, Clone)]
pub enum ContactEvent {
    /// The contact came online. For P2P contacts `peer` is the other user; `reply` asks the
    /// receiving `me` to answer with its own `On` (so both sides learn of each other).
    On {
        peer: Option<UserId>,
        ua: String,
        reply: bool,
    },
    /// The contact went offline; for users, `ua` was their last user agent.
    Off { ua: String },
    /// The contact's most recent user agent changed.
    Ua { ua: String },
    /// The contact's description changed (`{pres upd}`).
    Upd,
    /// The user's subscription to the contact topic was created or changed: re-read it.
    SubChanged,
    /// Someone else started a conversation with the user: re-read the subscription, and keep
    /// the contact's presence quiet until the user's client has listed it (`{get me sub}`).
    NewContact,
    /// The user's subscription to the contact topic is gone (unsubscribed, evicted, deleted).
    SubGone,
}

impl TopicRequest {
    /// The header of a client's request; `None` for the runtime's own requests.
    pub fn hdr(&self) -> Option<&ReqHead> {
        match self {
            TopicRequest::Join { hdr, .. }
            | TopicRequest::Leave { hdr, .. }
            | TopicRequest::Publish { hdr, .. }
            | TopicRequest::Get { hdr, .. }
            | TopicRequest::Set { hdr, .. }
            | TopicRequest::Del { hdr, .. }
            | TopicRequest::Note { hdr, .. } => Some(hdr),
            TopicRequest::Detach { .. }
            | TopicRequest::Foreground { .. }
            | TopicRequest::UserPres { .. }
            | TopicRequest::Refresh
            | TopicRequest::Contact { .. } => None,
        }
    }

    /// The requesting session, if the request came from one.
    pub fn requester(&self) -> Option<&Requester> {
        self.hdr().map(|h| &h.req)
    }

    /// How a request is answered when it cannot reach its topic (no such topic, a failed
    /// load, a broken topic): the one table of those answers. `None` for the runtime's own
    /// requests, which are dropped.
    pub fn refusal(&self, why: Unreachable) -> Option<Refusal> {
        use TopicRequest::*;
        let client = |reply, detach| Some(Refusal { reply, detach });
        match (self, why) {
            (Detach { .. } | Foreground { .. } | UserPres { .. } | Refresh | Contact { .. }, _) => {
                None
            }
            (_, Unreachable::Broken) => client(Some(Outcome::Locked), true),
            // Notes are never answered; the session learns it is not attached.
            (Note { .. }, _) => client(None, true),
            (Set { .. } | Del { .. }, Unreachable::OtherNode) => {
                client(Some(Outcome::ClusterUnreachable), false)
            }
            (_, Unreachable::OtherNode) => client(Some(Outcome::ClusterUnreachable), true),
            (Set { .. } | Del { .. }, Unreachable::NotMember) => {
                client(Some(Outcome::ServiceUnavailable), false)
            }
            (_, Unreachable::NotMember) => client(Some(Outcome::ServiceUnavailable), true),
            (Set { .. } | Del { .. }, Unreachable::Failed) => {
                client(Some(Outcome::InternalError), false)
            }
            (Set { .. } | Del { .. }, Unreachable::NotFound) => {
                client(Some(Outcome::TopicNotFound), false)
            }
            (_, Unreachable::Failed) => client(Some(Outcome::InternalError), true),
            (Join { .. }, Unreachable::NotFound) => client(Some(Outcome::TopicNotFound), true),
            (Leave { .. } | Publish { .. } | Get { .. }, Unreachable::NotFound) => {
                client(Some(Outcome::AttachFirst), true)
            }
        }
    }
}

/// The answer to a request that cannot reach its topic ([`TopicRequest::refusal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The `{ctrl}` to send (with the request's id and topic name), if any.
    pub reply: Option<Outcome>,
    /// Tell the session it is not attached to the topic (it may think it is joining).
    pub detach: bool,
}

impl Refusal {
    /// The events for the requesting session: the reply, then (when asked) `Detached` from
    /// `topic` (routing name).
    pub fn events(&self, hdr: &ReqHead, topic: &str, now: UnixMillis) -> Vec<SessionEvent> {
        let mut evs = Vec::new();
        if let Some(o) = self.reply {
            let msg = o.ctrl(hdr.id.as_deref(), Some(&hdr.as_seen), now).msg();
            evs.push(SessionEvent::Frames(vec![Frame::new(msg)]));
        }
        if self.detach {
            evs.push(SessionEvent::Detached {
                topic: topic.to_owned(),
            });
        }
        evs
    }
}

/// Why a request cannot reach its topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// No such topic.
    NotFound,
    /// The topic could not be loaded (store failure).
    Failed,
    /// The topic's creation failed to persist; it waits to be unloaded.
    Broken,
    /// Another cluster node masters the topic: requests are forwarded to it
    /// (`shard/proxy.rs`); one that cannot be is refused `{ctrl 502}`.
    OtherNode,
    /// This node is not a cluster member now (fenced): it masters nothing until it re-joins.
    NotMember,
}

/// Everything one shard can ask of another (or, later, of a shard on another node).
#[derive(Debug)]
pub enum Envelope {
    /// A request for a topic whose home is the receiving shard.
    Topic { topic: String, req: TopicRequest },
    /// One shared frame for many sessions of the receiving shard.
    Deliver { frame: Frame, sids: Vec<SessionId> },
    /// An event for one session of the receiving shard.
    Session { sid: SessionId, ev: SessionEvent },
    /// A shared `{pres}` frame for the `me` topics (homed on the receiving shard) of users;
    /// each user's sessions listed are skipped (they are attached to the source topic).
    UserPres {
        frame: Frame,
        targets: Vec<(UserId, Vec<SessionId>)>,
    },
    /// End every session of `uid` on the receiving shard (but `except`) with
    /// `{ctrl 205 "evicted"}`: the account was suspended or deleted.
    EvictUser {
        uid: UserId,
        except: Option<SessionId>,
    },
    /// The count of a user's sessions, kept by the shard that is home to the user's `me`
    /// (`limits.max_sessions_per_user`).
    UserSessions(UserSessions),
    /// A long-poll request for a session whose home is the receiving shard (the handle's
    /// shard), from the shard that holds its HTTP connection; answered with `LongPollAnswer`.
    LongPoll {
        handle: SessionHandle,
        req: LpRequest,
        reply: LpReplyTo,
    },
    /// The answer to a `LongPoll`, for the request waiting under `ticket` on the receiving
    /// shard.
    LongPollAnswer { ticket: u64, answer: LpAnswer },
    /// The client behind a held poll went away: stop holding it (nothing is taken from the
    /// session's queue). Sent to the session's home shard.
    LongPollCancel { reply: LpReplyTo },
}

/// Where the answer to a long-poll request goes: the shard holding its HTTP connection and
/// that shard's ticket for the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LpReplyTo {
    pub shard: ShardId,
    pub ticket: u64,
}

/// What a long-poll request asks of its session.
#[derive(Debug)]
pub enum LpRequest {
    /// One client message, decoded by the shard that read it (an undecodable one is answered
    /// `{ctrl 400 "malformed"}` through a later poll).
    Send(Box<Result<Decoded, DecodeError>>),
    /// The network probe `1`: a later poll answers `0`.
    Probe,
    /// The next queued frame, waiting up to the hold time for one.
    Poll,
}

/// The answer to a long-poll request.
#[derive(Debug, PartialEq, Eq)]
pub enum LpAnswer {
    /// The message went to the session (HTTP 200, empty body).
    Accepted,
    /// The next frame (HTTP 200 with it as the body).
    Frame(Bytes),
    /// Nothing came within the hold time (HTTP 200, empty body).
    Empty,
    /// Unknown or expired session, or a wrong secret (HTTP 403).
    Invalid,
    /// The session lives on another cluster node whose link is down, or went down while the
    /// request waited (HTTP 502).
    Unreachable,
}

/// Claims and releases of a user's session slots, between a session's shard and the shard
/// that counts the user's sessions (home of `me_topic(uid)`), and the answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSessions {
    /// A session of `uid` authenticated: may it stay?
    Claim { uid: UserId, sid: SessionId },
    /// A session holding a slot ended.
    Release { uid: UserId, sid: SessionId },
    /// The answer to `Claim`, to the session's shard.
    Granted {
        uid: UserId,
        sid: SessionId,
        ok: bool,
    },
}

/// What a topic tells one session.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// Frames to write, in order.
    Frames(Vec<Frame>),
    /// The session is now attached to `topic` (routing name).
    Attached { topic: String },
    /// The session is no longer attached to `topic` (leave, eviction, failed join).
    Detached { topic: String },
    /// The session must end after writing what is queued (account suspended or deleted).
    End,
}

/// An account creation request (`{acc user:"new…"}`), carried out by the account machine
/// (`account`): the password hash runs off the executors and the records are written durably
/// before the reply.
#[derive(Debug)]
pub struct AccountRequest {
    pub id: Option<String>,
    pub scheme: String,
    pub secret: Vec<u8>,
    pub login: bool,
    pub tags: Vec<String>,
    /// Credentials given at sign-up: (method, value).
    pub creds: Vec<(String, String)>,
    pub public: Option<RawJson>,
    pub private: Option<RawJson>,
    pub auth_defacs: Option<String>,
    pub anon_defacs: Option<String>,
}

/// An `{acc}` update or a `{del what:"user"}`, carried out by the account machine.
#[derive(Debug)]
pub struct AccountChange {
    pub id: Option<String>,
    /// The acting user and level.
    pub actor: (UserId, AuthLevel),
    /// The target user (the actor unless root names another).
    pub target: UserId,
    pub what: AccountWhat,
}

/// What an account change does.
#[derive(Debug)]
pub enum AccountWhat {
    /// Change the basic login and/or password (`secret` = `login:password`, login optional).
    Secret { scheme: String, secret: Vec<u8> },
    /// Suspend (`susp`) or restore (`ok`) the account (root only).
    State { suspend: bool },
    /// Delete the account.
    Delete,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_shard_is_stable_and_in_range() {
        for n in 1..8 {
            let s = home_shard("grpAbCdEfGhIjK", n);
            assert!(s.idx() < n);
            assert_eq!(s, home_shard("grpAbCdEfGhIjK", n));
        }
    }

    #[test]
    fn me_home_shard_is_the_home_of_the_me_topic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..500 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let uid = UserId(x | 1);
            for n in [1, 2, 3, 7, 16, 64] {
                assert_eq!(me_home_shard(uid, n), home_shard(&me_topic(uid), n));
            }
        }
    }

    #[test]
    fn p2p_name_is_symmetric() {
        let (a, b) = (UserId(5), UserId(9));
        assert_eq!(p2p_topic(a, b), p2p_topic(b, a));
        assert_eq!(p2p_topic(a, b).len(), 25);
    }

    #[test]
    fn p2p_users_inverts_p2p_topic() {
        let (a, b) = (UserId(9), UserId(5));
        assert_eq!(p2p_users(&p2p_topic(a, b)), Some((b, a)));
        assert_eq!(p2p_users("p2pAAAA"), None);
        assert_eq!(p2p_users(&a.usr()), None);
        assert!(is_group("grpAbCdEfGhIjK") && !is_group("grp") && !is_group("p2pX"));
    }

    #[test]
    fn tags_normalise_and_restricted_namespaces() {
        let tags = vec![
            " Alice ".into(),
            "x".into(),
            "alice".into(),
            "Email:A@B.c".into(),
        ];
        assert_eq!(normalize_tags(tags, 10), vec!["alice", "email:a@b.c"]);
        let restricted = vec!["email".to_owned()];
        assert!(is_restricted_tag("email:a@b.c", &restricted));
        assert!(!is_restricted_tag("basic:alice", &restricted));
        assert!(!is_restricted_tag(":email", &restricted));
    }

    /// The one table of answers to requests that cannot reach their topic.
    #[test]
    fn refusals_follow_the_reference_per_request_kind() {
        use crate::proto::client::{GetQuery, SetQuery};
        let hdr = || ReqHead {
            req: Requester {
                sid: SessionId(1),
                uid: UserId(2),
                level: AuthLevel::Auth,
                enc: Encoding::Json,
            },
            id: Some("1".into()),
            as_seen: "grpX".into(),
        };
        let get: Box<GetQuery> = Box::new(serde_json::from_str("{}").unwrap());
        let set: Box<SetQuery> = Box::new(serde_json::from_str("{}").unwrap());
        let join = TopicRequest::Join {
            hdr: hdr(),
            create: None,
            set: None,
            get: None,
            ua: String::new(),
            bkg: false,
        };
        let leave = TopicRequest::Leave {
            hdr: hdr(),
            unsub: false,
        };
        let get = TopicRequest::Get {
            hdr: hdr(),
            query: get,
        };
        let set = TopicRequest::Set {
            hdr: hdr(),
            query: set,
        };
        let note = TopicRequest::Note {
            hdr: hdr(),
            what: "kp".into(),
            seq: 0,
            event: None,
            payload: None,
        };
        let r = |reply, detach| Some(Refusal { reply, detach });
        use Unreachable::*;
        let rows = [
            (&join, NotFound, r(Some(Outcome::TopicNotFound), true)),
            (&join, Failed, r(Some(Outcome::InternalError), true)),
            (&leave, NotFound, r(Some(Outcome::AttachFirst), true)),
            (&get, NotFound, r(Some(Outcome::AttachFirst), true)),
            (&get, Failed, r(Some(Outcome::InternalError), true)),
            (&set, NotFound, r(Some(Outcome::TopicNotFound), false)),
            (&set, Failed, r(Some(Outcome::InternalError), false)),
            (&note, NotFound, r(None, true)),
            (&note, Broken, r(Some(Outcome::Locked), true)),
            (&set, Broken, r(Some(Outcome::Locked), true)),
            (&join, OtherNode, r(Some(Outcome::ClusterUnreachable), true)),
            (&set, OtherNode, r(Some(Outcome::ClusterUnreachable), false)),
            (&note, OtherNode, r(None, true)),
            (&get, NotMember, r(Some(Outcome::ServiceUnavailable), true)),
            (&TopicRequest::Refresh, OtherNode, None),
            (&TopicRequest::Refresh, NotFound, None),
            (&TopicRequest::Detach { sid: SessionId(1) }, Broken, None),
        ];
        for (i, (req, why, want)) in rows.iter().enumerate() {
            assert_eq!(req.refusal(*why), *want, "row {i}: {why:?}");
        }
        let evs =
            r(Some(Outcome::AttachFirst), true)
                .unwrap()
                .events(&hdr(), "grpX", UnixMillis(0));
        assert_eq!(evs.len(), 2);
        assert!(matches!(&evs[1], SessionEvent::Detached { topic } if topic == "grpX"));
    }
}
