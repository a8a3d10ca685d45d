//! The session state machine: one per client connection (or, in a cluster, per proxied
//! client), runtime-free. It gates and validates client messages and turns them into outputs:
//! direct replies, requests routed to topics, and authentication work for the shard.
//!
//! A session never reads the clock (time is an argument), never touches a socket and never
//! talks to a topic directly: it emits [`SessionOut::Route`] and learns about attachments from
//! [`SessionEvent`]s. Transport state (sockets, buffers, timers) lives with the transport.

mod client;
mod dispatch;

pub(crate) use dispatch::decode_secret;
pub mod limits;
#[cfg(test)]
mod tests;

use crate::access::AuthLevel;
use crate::config::Transport;
use crate::ids::{SessionId, UnixMillis, UserId};
use crate::proto::{Encoding, Frame, Outcome, ServerMsg};
use crate::routing::{SessionEvent, TopicRequest};
pub use client::ClientInfo;
use limits::{Rate, TokenBucket};

/// The account requests a session hands to the account machine (defined in `routing`, the
/// vocabulary shared by the protocol machines).
pub use crate::routing::{AccountChange, AccountRequest, AccountWhat};

/// How the client is connected. Transport-specific state is not here: it lives with the
/// transport that owns the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionKind {
    WebSocket,
    LongPoll,
    Grpc,
    /// At a topic's home node: stands in for a client session of another node.
    Proxy {
        node: Box<str>,
    },
    /// At a topic's home node: carries all traffic of one (topic, remote node) pair.
    Multiplex {
        node: Box<str>,
    },
}

impl SessionKind {
    /// The wire encoding of server messages on this kind of session.
    pub fn encoding(&self) -> Encoding {
        match self {
            SessionKind::Grpc => Encoding::Protobuf,
            // Proxy and multiplex sessions will carry frames to another node in its own form;
            // until the cluster exists they are never opened.
            SessionKind::WebSocket
            | SessionKind::LongPoll
            | SessionKind::Proxy { .. }
            | SessionKind::Multiplex { .. } => Encoding::Json,
        }
    }

    /// The client-facing transport, for the limits that differ by transport (`None` for the
    /// cluster's internal kinds).
    pub fn transport(&self) -> Option<Transport> {
        match self {
            SessionKind::WebSocket => Some(Transport::WebSocket),
            SessionKind::LongPoll => Some(Transport::LongPoll),
            SessionKind::Grpc => Some(Transport::Grpc),
            SessionKind::Proxy { .. } | SessionKind::Multiplex { .. } => None,
        }
    }
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Connected, no `{hi}` yet.
    New,
    /// `{hi}` accepted.
    Versioned,
    /// Being torn down: input is refused, output discarded.
    Terminating,
}

/// Attachment state of one topic, keyed by routing name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubState {
    /// A `{sub}` is on its way to the topic.
    Joining,
    /// The topic confirmed the attachment.
    Attached,
}

/// Limits and handshake parameters shared by every session of a server.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// `params` of the first `{hi}` reply (ver, build, maxMessageSize, ...).
    pub hi_params: serde_json::Value,
    /// Most topics one session may be attached to or joining.
    pub max_subscriptions: usize,
    /// Client messages other than notes (`limits.msg_per_sec`, `limits.msg_burst`).
    pub msg_rate: Rate,
    /// Notes have a bucket of their own at the same rate, so receipts a client sends for every
    /// message of a busy group never starve its own requests; a refused note is dropped.
    pub note_rate: Rate,
    /// Password logins and account creations (`limits.auth_per_min`, `limits.auth_burst`).
    pub auth_rate: Rate,
    /// How long a `{hi bkg:true}` session stays in the background, ms (0: never).
    pub background_delay_ms: u64,
    /// `maxMessageSize` advertised to each transport, by [`SessionKind::transport`]
    /// (`[WebSocket, LongPoll, Grpc]`); 0 keeps what `hi_params` says.
    pub max_message_size: [usize; 3],
}

impl SessionLimits {
    /// Limits with no rate limit, no background delay and the given handshake parameters.
    pub fn unlimited(hi_params: serde_json::Value, max_subscriptions: usize) -> SessionLimits {
        SessionLimits {
            hi_params,
            max_subscriptions,
            msg_rate: Rate::UNLIMITED,
            note_rate: Rate::UNLIMITED,
            auth_rate: Rate::UNLIMITED,
            background_delay_ms: 0,
            max_message_size: [0; 3],
        }
    }

    /// The session limits of a configuration.
    pub fn from_config(cfg: &crate::config::Config, hi_params: serde_json::Value) -> SessionLimits {
        let l = &cfg.limits;
        let msg_rate = Rate::per_sec(l.msg_per_sec, l.msg_burst);
        SessionLimits {
            hi_params,
            max_subscriptions: cfg.session.max_subscriptions,
            msg_rate,
            note_rate: msg_rate,
            auth_rate: Rate::per_min(l.auth_per_min, l.auth_burst),
            background_delay_ms: l.background_delay_ms,
            max_message_size: [
                cfg.max_message_size(Transport::WebSocket),
                cfg.max_message_size(Transport::LongPoll),
                cfg.max_message_size(Transport::Grpc),
            ],
        }
    }
}

/// Everything a session needs from its caller for one step.
pub struct SessionCx<'a> {
    pub now: UnixMillis,
    /// Fresh randomness from the caller (new group names), so the core stays deterministic.
    pub entropy: u64,
    pub limits: &'a SessionLimits,
    pub out: &'a mut Vec<SessionOut>,
}

/// What a session step produces.
// Drained within the same step; never queued across cores.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SessionOut {
    /// A frame for this session's client.
    Send(Frame),
    /// A request for the topic with this routing name.
    Route { topic: String, req: TopicRequest },
    /// Authenticate with `scheme` (`basic`, `token`); the shard answers with
    /// [`Session::authenticated`] or an error reply.
    Login {
        id: Option<String>,
        scheme: String,
        secret: Vec<u8>,
    },
    /// Create an account.
    CreateAccount(AccountRequest),
    /// An account change (`{acc}` on an existing account, `{del user}`).
    Account(AccountChange),
    /// End this session once what is queued has been written.
    End,
    /// Call [`Session::wake`] at this time (a background session turning foreground).
    WakeAt(UnixMillis),
}

/// A session's topics by routing name: a [`FewMap`](crate::fewmap::FewMap), since nearly every
/// session holds one to a few (an idle session's one entry is one 24-byte allocation where a
/// hash table's smallest is 116 B, W1); `Box<str>` keys, 16 bytes where a `String` takes 24.
/// Bounded by `session.max_subscriptions`.
pub(crate) type Subs = crate::fewmap::FewMap<Box<str>, SubState>;

/// The protocol state of one client session.
#[derive(Debug)]
pub struct Session {
    pub sid: SessionId,
    pub kind: SessionKind,
    pub created: UnixMillis,
    /// Time of the last client message.
    pub last_action: UnixMillis,
    pub(crate) lifecycle: Lifecycle,
    /// Client protocol version, `major<<16 | minor<<8 | patch`.
    pub(crate) ver: u32,
    /// Remote address; user agent, language and platform from `{hi}`.
    pub(crate) client: ClientInfo,
    pub(crate) background: bool,
    /// While `background`: when the session turns foreground, in Unix milliseconds (8 bytes
    /// where an `Option<UnixMillis>` takes 16: W1); see [`Session::foreground_at`].
    pub(crate) foreground_at: Option<std::num::NonZeroU64>,
    /// Rate limits (each starts [`TokenBucket::UNUSED`]: full at any rate).
    pub(crate) msg_bucket: TokenBucket,
    pub(crate) note_bucket: TokenBucket,
    pub(crate) auth_bucket: TokenBucket,
    /// Requests this session refused for a rate limit (the shard adds them to its stats).
    pub(crate) limited: u64,
    /// Set once authenticated; fixed for the session's life (there is no logout).
    pub(crate) user: Option<(UserId, AuthLevel)>,
    /// A login or account creation is in progress; further ones wait for its answer.
    pub(crate) auth_pending: bool,
    /// Topics by routing name.
    pub(crate) subs: Subs,
}

impl Session {
    /// A fresh session of `kind`.
    pub fn new(sid: SessionId, kind: SessionKind, remote: String, now: UnixMillis) -> Session {
        Session {
            sid,
            kind,
            created: now,
            last_action: now,
            lifecycle: Lifecycle::New,
            ver: 0,
            client: ClientInfo::of_remote(&remote),
            background: false,
            foreground_at: None,
            msg_bucket: TokenBucket::UNUSED,
            note_bucket: TokenBucket::UNUSED,
            auth_bucket: TokenBucket::UNUSED,
            limited: 0,
            user: None,
            auth_pending: false,
            subs: Subs::default(),
        }
    }

    /// The authenticated user and level.
    pub fn user(&self) -> Option<(UserId, AuthLevel)> {
        self.user
    }

    /// Where the session is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// The user agent from `{hi}`.
    pub fn user_agent(&self) -> &str {
        self.client.ua()
    }

    /// The language from `{hi}` (a later `{hi}` may change it).
    pub fn language(&self) -> &str {
        self.client.lang()
    }

    /// The platform from `{hi}`.
    pub fn platform(&self) -> &str {
        self.client.platform()
    }

    /// Topics (routing names) the session is attached to or joining.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.subs.keys().map(|t| &**t)
    }

    /// True while a `{hi bkg:true}` session has not turned foreground: its attachments do not
    /// count as the user being online and announce nothing.
    pub fn is_background(&self) -> bool {
        self.background
    }

    /// Requests refused by this session's rate limits so far.
    pub fn limited(&self) -> u64 {
        self.limited
    }

    /// When a background session turns foreground.
    pub fn foreground_at(&self) -> Option<UnixMillis> {
        self.foreground_at.map(|t| UnixMillis(t.get()))
    }

    /// Remote address, for logs, stats and the per-address limits.
    pub fn remote(&self) -> &str {
        self.client.remote()
    }

    /// The shard's timer for [`SessionOut::WakeAt`]: a background session whose time has come
    /// turns foreground and tells every topic it is attached to or joining, which then count
    /// it online and send the deferred `on`.
    pub fn wake(&mut self, now: UnixMillis, out: &mut Vec<SessionOut>) {
        if !self.background || self.lifecycle == Lifecycle::Terminating {
            return;
        }
        if self.foreground_at().is_some_and(|at| at > now) {
            return;
        }
        self.background = false;
        self.foreground_at = None;
        for topic in self.subs.keys() {
            out.push(SessionOut::Route {
                topic: topic.to_string(),
                req: TopicRequest::Foreground {
                    sid: self.sid,
                    ua: self.client.ua().to_owned(),
                },
            });
        }
    }

    /// Number of topics attached or joining.
    pub fn n_subscriptions(&self) -> usize {
        self.subs.len()
    }

    /// Marks the session authenticated (after a successful login or account creation).
    pub fn authenticated(&mut self, uid: UserId, level: AuthLevel) {
        self.user = Some((uid, level));
        self.auth_pending = false;
    }

    /// An authentication attempt finished without authenticating.
    pub fn auth_finished(&mut self) {
        self.auth_pending = false;
    }

    /// The reply to an undecodable frame: `{ctrl 400 "malformed"}` without id or topic.
    pub fn malformed(&self, now: UnixMillis, out: &mut Vec<SessionOut>) {
        out.push(SessionOut::Send(Frame::new(
            Outcome::Malformed.ctrl(None, None, now).msg(),
        )));
    }

    /// Applies an event from a topic.
    pub fn handle_event(&mut self, ev: SessionEvent, out: &mut Vec<SessionOut>) {
        match ev {
            SessionEvent::Frames(frames) => {
                if self.lifecycle != Lifecycle::Terminating {
                    out.extend(frames.into_iter().map(SessionOut::Send));
                }
            }
            SessionEvent::Attached { topic } => {
                if self.lifecycle == Lifecycle::Terminating {
                    // Attached after the session started ending: undo it.
                    out.push(SessionOut::Route {
                        topic,
                        req: TopicRequest::Detach { sid: self.sid },
                    });
                } else {
                    self.subs.insert(topic.into(), SubState::Attached);
                }
            }
            SessionEvent::Detached { topic } => {
                self.subs.remove(topic.as_str());
            }
            SessionEvent::End => out.push(SessionOut::End),
        }
    }

    /// Starts termination: returns a silent detach for every topic attached or joining.
    /// Later input is refused and later output dropped.
    pub fn terminate(&mut self, out: &mut Vec<SessionOut>) {
        self.lifecycle = Lifecycle::Terminating;
        for (topic, _) in self.subs.drain() {
            out.push(SessionOut::Route {
                topic: topic.into(),
                req: TopicRequest::Detach { sid: self.sid },
            });
        }
    }

    /// A reply frame for this session.
    pub(crate) fn send(&self, msg: ServerMsg, out: &mut Vec<SessionOut>) {
        out.push(SessionOut::Send(Frame::new(msg)));
    }
}
