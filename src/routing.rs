//! The vocabulary the session and topic state machines exchange through the shard runtime:
//! who is asking ([`Requester`]), what a topic is asked ([`TopicRequest`]), what a session is
//! told ([`SessionEvent`]), and where a topic lives ([`home_shard`]).
//!
//! `session` and `topic` never import each other; both speak these types and only `shard`
//! carries them between the two. Everything here is `Send`, because it crosses cores.

use bytes::Bytes;

use crate::access::AuthLevel;
use crate::ids::{SessionId, ShardId, UserId};
use crate::proto::client::{GetQuery, RawJson, SetQuery};

/// The home shard of a topic (internal routing name): FNV-1a 64 of the name, modulo the shard
/// count. Pure, so every shard computes the same answer without coordination.
pub fn home_shard(topic: &str, n_shards: usize) -> ShardId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ShardId((h % n_shards.max(1) as u64) as u16)
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
    format!(
        "p2p{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The session on whose behalf a topic request is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    pub sid: SessionId,
    pub uid: UserId,
    pub level: AuthLevel,
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
        req: Requester,
        id: Option<String>,
        as_seen: String,
        create: Option<CreateSpec>,
        set: Option<Box<SetQuery>>,
        get: Option<Box<GetQuery>>,
        ua: String,
    },
    /// `{leave}`: detach, and with `unsub` delete the subscription.
    Leave {
        req: Requester,
        id: Option<String>,
        as_seen: String,
        unsub: bool,
    },
    /// The session ended: detach silently.
    Detach { sid: SessionId },
    /// `{pub}`.
    Publish {
        req: Requester,
        id: Option<String>,
        as_seen: String,
        noecho: bool,
        head: Option<serde_json::Map<String, serde_json::Value>>,
        content: RawJson,
    },
    /// `{get}` from an attached session.
    Get {
        req: Requester,
        id: Option<String>,
        as_seen: String,
        query: Box<GetQuery>,
    },
    /// `{note}`: typing indicators and read/recv receipts.
    Note {
        req: Requester,
        as_seen: String,
        what: String,
        seq: u64,
        event: Option<String>,
        payload: Option<RawJson>,
    },
    /// A pre-serialized `{pres}` for the user whose `me` topic this is, to be shown on every
    /// session attached to `me` except `skip` (those are attached to the source topic).
    UserPres { frame: Bytes, skip: Vec<SessionId> },
}

impl TopicRequest {
    /// The requesting session, if the request came from one.
    pub fn requester(&self) -> Option<&Requester> {
        match self {
            TopicRequest::Join { req, .. }
            | TopicRequest::Leave { req, .. }
            | TopicRequest::Publish { req, .. }
            | TopicRequest::Get { req, .. }
            | TopicRequest::Note { req, .. } => Some(req),
            TopicRequest::Detach { .. } | TopicRequest::UserPres { .. } => None,
        }
    }
}

/// What a topic tells one session.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// Frames to write, in order.
    Frames(Vec<Bytes>),
    /// The session is now attached to `topic` (routing name).
    Attached { topic: String },
    /// The session is no longer attached to `topic` (leave, eviction, failed join).
    Detached { topic: String },
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
    fn p2p_name_is_symmetric() {
        let (a, b) = (UserId(5), UserId(9));
        assert_eq!(p2p_topic(a, b), p2p_topic(b, a));
        assert_eq!(p2p_topic(a, b).len(), 25);
    }
}
