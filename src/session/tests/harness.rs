//! The session test harness: one `Session` with fixed limits, clock and entropy, fed decoded client
//! frames, and the helpers that read what it emits.

use serde_json::{json, Value};

use crate::access::AuthLevel;
use crate::ids::{SessionId, ShardId, UnixMillis, UserId};
use crate::proto::decode;
use crate::routing::{Requester, SessionEvent, TopicRequest};
use crate::session::*;

pub(super) const NOW: UnixMillis = UnixMillis(1_735_787_045_123);
pub(super) const ALICE: UserId = UserId(0x0102_0304_0506_0708);
pub(super) const BOB: UserId = UserId(0x1111_2222_3333_4444);

/// One session, the limits it runs under, and the caller-supplied time and entropy.
pub(super) struct Harness {
    pub(super) s: Session,
    pub(super) limits: SessionLimits,
    pub(super) entropy: u64,
    /// The fixed clock; tests of rates and delays move it.
    pub(super) now: UnixMillis,
}

impl Harness {
    pub(super) fn new(kind: SessionKind) -> Harness {
        Harness {
            s: Session::new(
                SessionId::new(ShardId(1), 7),
                kind,
                "127.0.0.1:5555".into(),
                UnixMillis(NOW.0 - 1_000),
            ),
            limits: SessionLimits::unlimited(
                json!({"ver": "0.25", "build": "redb:test", "maxMessageSize": 131072}),
                3,
            ),
            entropy: 0x0807_0605_0403_0201,
            now: NOW,
        }
    }

    /// A session after a successful `{hi}`.
    pub(super) fn versioned() -> Harness {
        let mut h = Harness::new(SessionKind::WebSocket);
        let out = h.feed(r#"{"hi":{"id":"0","ver":"0.25","ua":"test-ua/1.0"}}"#);
        assert_eq!(ctrl(&out)["code"], 201);
        h
    }

    /// A versioned session authenticated as `uid` at `level`.
    pub(super) fn logged_in(uid: UserId, level: AuthLevel) -> Harness {
        let mut h = Harness::versioned();
        h.s.authenticated(uid, level);
        h
    }

    /// A versioned session of alice, attached to each of `topics` (routing names).
    pub(super) fn attached(topics: &[&str]) -> Harness {
        let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
        for t in topics {
            h.event(SessionEvent::Attached {
                topic: (*t).to_owned(),
            });
        }
        h
    }

    /// Decodes one client frame and hands it to the session.
    pub(super) fn feed(&mut self, frame: &str) -> Vec<SessionOut> {
        let decoded = decode(frame.as_bytes()).unwrap_or_else(|e| panic!("{frame}: {e}"));
        let mut out = Vec::new();
        let mut cx = SessionCx {
            now: self.now,
            entropy: self.entropy,
            limits: &self.limits,
            out: &mut out,
        };
        self.s.handle(decoded, &mut cx);
        out
    }

    pub(super) fn event(&mut self, ev: SessionEvent) -> Vec<SessionOut> {
        let mut out = Vec::new();
        self.s.handle_event(ev, &mut out);
        out
    }
}

/// The only output, which must be a frame, parsed.
pub(super) fn ctrl(out: &[SessionOut]) -> Value {
    assert_eq!(out.len(), 1, "expected exactly one output, got {out:?}");
    let SessionOut::Send(bytes) = &out[0] else {
        panic!("expected a frame, got {:?}", out[0])
    };
    let v: Value = serde_json::from_slice(&bytes.json()).expect("frames are JSON");
    assert!(v["ctrl"]["ts"].is_string(), "ctrl without ts: {v}");
    v["ctrl"].clone()
}

/// Asserts a single ctrl reply with this code, text, id and topic (`None` = absent).
#[track_caller]
pub(super) fn assert_ctrl(
    out: &[SessionOut],
    code: u16,
    text: &str,
    id: Option<&str>,
    topic: Option<&str>,
) {
    let c = ctrl(out);
    assert_eq!(c["code"], code, "{c}");
    assert_eq!(c["text"], text, "{c}");
    assert_eq!(c.get("id").and_then(Value::as_str), id, "id of {c}");
    assert_eq!(
        c.get("topic").and_then(Value::as_str),
        topic,
        "topic of {c}"
    );
}

/// The only output, which must be a routed request.
pub(super) fn route(out: Vec<SessionOut>) -> (String, TopicRequest) {
    assert_eq!(out.len(), 1, "expected exactly one output, got {out:?}");
    match out.into_iter().next() {
        Some(SessionOut::Route { topic, req }) => (topic, req),
        other => panic!("expected a route, got {other:?}"),
    }
}

pub(super) fn requester(h: &Harness) -> Requester {
    let (uid, level) = h.s.user().expect("authenticated");
    Requester {
        sid: h.s.sid,
        uid,
        level,
        enc: crate::proto::Encoding::Json,
    }
}
