//! Every `{ctrl}` outcome the server sends, as one closed enum, and the one table that maps
//! each to its code and text.
//!
//! Protocol errors and successes are values of [`Outcome`]; nothing else in the crate spells a
//! ctrl code or text. Builders here attach id, topic, params and timestamp.

use serde_json::{Map, Value};

use crate::ids::UnixMillis;
use crate::proto::server::{Ctrl, ServerMsg, Ts};

/// A `{ctrl}` outcome: code and text come from [`Outcome::code_text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Created,
    Accepted,
    NoContent,
    Evicted,
    ServerShutdown,
    Delivered,
    ValidateCredentials,
    UseOther,
    AlreadySubscribed,
    NotJoined,
    NoAction,
    NotModified,
    Malformed,
    AuthRequired,
    AuthFailed,
    UnknownAuthScheme,
    PermissionDenied,
    ApiKeyRequired,
    InvalidSession,
    NotFound,
    TopicNotFound,
    UserNotFound,
    OperationNotAllowed,
    InvalidResponse,
    AlreadyAuthenticated,
    DuplicateCredential,
    AttachFirst,
    CommandOutOfSequence,
    PolicyViolation,
    /// A rate limit refused the request (`limits.*`); the session lives on.
    TooManyRequests,
    InternalError,
    NotImplemented,
    /// The node link to the topic's master is down (or broke with the request on it).
    ClusterUnreachable,
    /// The topic's master did not answer a forwarded request within `cluster.link_timeout_ms`.
    ClusterTimeout,
    ServiceUnavailable,
    Locked,
    VersionNotSupported,
}

impl Outcome {
    /// The reference server's code and text for this outcome.
    pub fn code_text(self) -> (u16, &'static str) {
        use Outcome::*;
        match self {
            Ok => (200, "ok"),
            Created => (201, "created"),
            Accepted => (202, "accepted"),
            NoContent => (204, "no content"),
            Evicted => (205, "evicted"),
            ServerShutdown => (205, "server shutdown"),
            Delivered => (208, "delivered"),
            ValidateCredentials => (300, "validate credentials"),
            UseOther => (303, "use other"),
            AlreadySubscribed => (304, "already subscribed"),
            NotJoined => (304, "not joined"),
            NoAction => (304, "no action"),
            NotModified => (304, "not modified"),
            Malformed => (400, "malformed"),
            AuthRequired => (401, "authentication required"),
            AuthFailed => (401, "authentication failed"),
            UnknownAuthScheme => (401, "unknown authentication scheme"),
            PermissionDenied => (403, "permission denied"),
            ApiKeyRequired => (403, "valid API key required"),
            InvalidSession => (403, "invalid or expired session"),
            NotFound => (404, "not found"),
            TopicNotFound => (404, "topic not found"),
            UserNotFound => (404, "user not found"),
            OperationNotAllowed => (405, "operation or method not allowed"),
            InvalidResponse => (406, "invalid response"),
            AlreadyAuthenticated => (409, "already authenticated"),
            DuplicateCredential => (409, "duplicate credential"),
            AttachFirst => (409, "must attach first"),
            CommandOutOfSequence => (409, "command out of sequence"),
            PolicyViolation => (422, "policy violation"),
            TooManyRequests => (429, "too many requests"),
            InternalError => (500, "internal error"),
            NotImplemented => (501, "not implemented"),
            ClusterUnreachable => (502, "the topic's cluster node is unreachable"),
            ClusterTimeout => (504, "the topic's cluster node did not answer in time"),
            ServiceUnavailable => (503, "service unavailable"),
            Locked => (503, "locked"),
            VersionNotSupported => (505, "version not supported"),
        }
    }

    /// A `{ctrl}` with this outcome.
    pub fn ctrl(self, id: Option<&str>, topic: Option<&str>, now: UnixMillis) -> CtrlBuilder {
        CtrlBuilder {
            ctrl: Ctrl {
                id: id.filter(|s| !s.is_empty()).map(str::to_owned),
                topic: topic.filter(|s| !s.is_empty()).map(str::to_owned),
                params: None,
                code: self.code_text().0,
                text: self.code_text().1,
                ts: Ts(now),
            },
        }
    }
}

/// Adds params to a `{ctrl}` before it becomes a [`ServerMsg`].
#[must_use]
pub struct CtrlBuilder {
    ctrl: Ctrl,
}

impl CtrlBuilder {
    /// Adds one param. Params are rendered with sorted keys, as the reference server does.
    pub fn param(mut self, key: &str, value: impl Into<Value>) -> CtrlBuilder {
        let map = match &mut self.ctrl.params {
            Some(Value::Object(m)) => m,
            _ => {
                self.ctrl.params = Some(Value::Object(Map::new()));
                match &mut self.ctrl.params {
                    Some(Value::Object(m)) => m,
                    _ => unreachable!("just set to an object"),
                }
            }
        };
        map.insert(key.to_owned(), value.into());
        self
    }

    /// Overrides the timestamp (e.g. topic creation time in a `{sub}` reply).
    pub fn ts(mut self, ts: UnixMillis) -> CtrlBuilder {
        self.ctrl.ts = Ts(ts);
        self
    }

    /// The finished message.
    pub fn msg(self) -> ServerMsg {
        ServerMsg::Ctrl(self.ctrl)
    }
}
