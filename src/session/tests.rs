//! Unit tests of the session state machine: gates, validation, topic-name expansion and routing, driven through `Session::handle` with a fixed clock and no sockets.

use serde_json::{json, Value};

use super::dispatch::parse_version;
use super::*;
use crate::access::AuthLevel;
use crate::ids::{random_body, SessionId, ShardId, UnixMillis, UserId};
use crate::proto::decode;
use crate::routing::{p2p_topic, CreateSpec, Requester, SessionEvent, TopicRequest};

const NOW: UnixMillis = UnixMillis(1_735_787_045_123);
const ALICE: UserId = UserId(0x0102_0304_0506_0708);
const BOB: UserId = UserId(0x1111_2222_3333_4444);

/// One session, the limits it runs under, and the caller-supplied time and entropy.
struct Harness {
    s: Session,
    limits: SessionLimits,
    entropy: u64,
}

impl Harness {
    fn new(kind: SessionKind) -> Harness {
        Harness {
            s: Session::new(
                SessionId::new(ShardId(1), 7),
                kind,
                "127.0.0.1:5555".into(),
                UnixMillis(NOW.0 - 1_000),
            ),
            limits: SessionLimits {
                hi_params: json!({"ver": "0.25", "build": "redb:test", "maxMessageSize": 131072}),
                max_subscriptions: 3,
            },
            entropy: 0x0807_0605_0403_0201,
        }
    }

    /// A session after a successful `{hi}`.
    fn versioned() -> Harness {
        let mut h = Harness::new(SessionKind::WebSocket);
        let out = h.feed(r#"{"hi":{"id":"0","ver":"0.25","ua":"test-ua/1.0"}}"#);
        assert_eq!(ctrl(&out)["code"], 201);
        h
    }

    /// A versioned session authenticated as `uid` at `level`.
    fn logged_in(uid: UserId, level: AuthLevel) -> Harness {
        let mut h = Harness::versioned();
        h.s.authenticated(uid, level);
        h
    }

    /// A versioned session of alice, attached to each of `topics` (routing names).
    fn attached(topics: &[&str]) -> Harness {
        let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
        for t in topics {
            h.event(SessionEvent::Attached {
                topic: (*t).to_owned(),
            });
        }
        h
    }

    /// Decodes one client frame and hands it to the session.
    fn feed(&mut self, frame: &str) -> Vec<SessionOut> {
        let decoded = decode(frame.as_bytes()).unwrap_or_else(|e| panic!("{frame}: {e}"));
        let mut out = Vec::new();
        let mut cx = SessionCx {
            now: NOW,
            entropy: self.entropy,
            limits: &self.limits,
            out: &mut out,
        };
        self.s.handle(decoded, &mut cx);
        out
    }

    fn event(&mut self, ev: SessionEvent) -> Vec<SessionOut> {
        let mut out = Vec::new();
        self.s.handle_event(ev, &mut out);
        out
    }
}

/// The only output, which must be a frame, parsed.
fn ctrl(out: &[SessionOut]) -> Value {
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
fn assert_ctrl(out: &[SessionOut], code: u16, text: &str, id: Option<&str>, topic: Option<&str>) {
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
fn route(out: Vec<SessionOut>) -> (String, TopicRequest) {
    assert_eq!(out.len(), 1, "expected exactly one output, got {out:?}");
    match out.into_iter().next() {
        Some(SessionOut::Route { topic, req }) => (topic, req),
        other => panic!("expected a route, got {other:?}"),
    }
}

fn requester(h: &Harness) -> Requester {
    let (uid, level) = h.s.user().expect("authenticated");
    Requester {
        sid: h.s.sid,
        uid,
        level,
        enc: crate::proto::Encoding::Json,
    }
}

#[test]
fn first_hi_is_answered_with_the_server_params_and_lp_gets_200() {
    for (kind, code, text) in [
        (SessionKind::WebSocket, 201, "created"),
        (SessionKind::Grpc, 201, "created"),
        (SessionKind::LongPoll, 200, "ok"),
    ] {
        let mut h = Harness::new(kind.clone());
        let out =
            h.feed(r#"{"hi":{"id":"1","ver":"0.25","ua":"test-ua","lang":"en-GB","platf":"web"}}"#);
        let c = ctrl(&out);
        assert_eq!(
            (c["code"].as_u64(), c["text"].as_str()),
            (Some(code), Some(text)),
            "{kind:?}"
        );
        assert_eq!(c["id"], "1");
        assert!(c.get("topic").is_none());
        assert_eq!(c["params"], h.limits.hi_params);
        assert_eq!(c["ts"], "2025-01-02T03:04:05.123Z");
        assert_eq!(h.s.lifecycle(), Lifecycle::Versioned);
        assert_eq!(h.s.user_agent(), "test-ua");
        assert_eq!(h.s.last_action, NOW);
    }
}

#[test]
fn hi_version_strings_are_parsed_like_the_reference() {
    let cases: &[(&str, u16)] = &[
        ("x", 400),
        ("", 400),
        ("v", 400),
        ("0.1", 505),
        ("0.19.9", 505),
        ("0.20", 201),
        ("0.25", 201),
        ("0.25.3", 201),
        ("v0.25", 201),
        ("V0.25", 201),
        ("0.22.1-rc2", 201),
        ("1", 201),
    ];
    for (ver, code) in cases {
        let mut h = Harness::new(SessionKind::WebSocket);
        let out = h.feed(&json!({"hi": {"id": "h", "ver": ver}}).to_string());
        let c = ctrl(&out);
        assert_eq!(c["code"], *code, "version {ver:?}: {c}");
        assert_eq!(c["id"], "h");
        let expect = if *code == 201 {
            Lifecycle::Versioned
        } else {
            Lifecycle::New
        };
        assert_eq!(h.s.lifecycle(), expect, "version {ver:?}");
    }
    assert_eq!(parse_version("0.22.1-rc2"), (22 << 8) | 1);
    assert_eq!(parse_version("v0.25"), 25 << 8);
    assert_eq!(parse_version("0.25.3"), (25 << 8) | 3);
    assert_eq!(parse_version("1.2.3.4"), (1 << 16) | (2 << 8) | 3);
}

#[test]
fn a_rejected_hi_leaves_the_session_able_to_retry() {
    let mut h = Harness::new(SessionKind::WebSocket);
    assert_ctrl(
        &h.feed(r#"{"hi":{"id":"1","ver":"0.1"}}"#),
        505,
        "version not supported",
        Some("1"),
        None,
    );
    assert_ctrl(
        &h.feed(r#"{"login":{"id":"2","scheme":"basic","secret":"YTpi"}}"#),
        409,
        "command out of sequence",
        Some("2"),
        None,
    );
    assert_eq!(
        ctrl(&h.feed(r#"{"hi":{"id":"3","ver":"0.25"}}"#))["code"],
        201
    );
}

#[test]
fn a_later_hi_keeps_the_version_and_needs_authentication() {
    let mut h = Harness::versioned();
    // Unauthenticated: 401, whatever it asks.
    assert_ctrl(
        &h.feed(r#"{"hi":{"id":"1","lang":"fr"}}"#),
        401,
        "authentication required",
        Some("1"),
        None,
    );
    // A different version is out of sequence, even after login.
    h.s.authenticated(ALICE, AuthLevel::Auth);
    assert_ctrl(
        &h.feed(r#"{"hi":{"id":"2","ver":"0.24"}}"#),
        409,
        "command out of sequence",
        Some("2"),
        None,
    );
    // Same or empty version: 201 without params, or 200 for a device change.
    let c = ctrl(&h.feed(r#"{"hi":{"id":"3","ver":"0.25","lang":"fr"}}"#));
    assert_eq!((c["code"].as_u64(), c.get("params")), (Some(201), None));
    let c = ctrl(&h.feed(r#"{"hi":{"id":"4","dev":"push-token"}}"#));
    assert_eq!(
        (c["code"].as_u64(), c["text"].as_str()),
        (Some(200), Some("ok"))
    );
    assert_eq!(
        h.s.user_agent(),
        "test-ua/1.0",
        "the user agent is fixed by the first hi"
    );
}

#[test]
fn anything_but_hi_before_hi_is_out_of_sequence() {
    let cases: &[(&str, Option<&str>)] = &[
        (
            r#"{"login":{"id":"1","scheme":"basic","secret":"YTpi"}}"#,
            None,
        ),
        (
            r#"{"acc":{"id":"1","user":"new","scheme":"basic","secret":"YTpi"}}"#,
            None,
        ),
        (r#"{"sub":{"id":"1","topic":"me"}}"#, Some("me")),
        (
            r#"{"pub":{"id":"1","topic":"grpAbc","content":"x"}}"#,
            Some("grpAbc"),
        ),
        (
            r#"{"get":{"id":"1","topic":"me","what":"desc"}}"#,
            Some("me"),
        ),
        (
            r#"{"set":{"id":"1","topic":"me","desc":{"public":"x"}}}"#,
            Some("me"),
        ),
        (
            r#"{"del":{"id":"1","topic":"grpAbc","what":"msg"}}"#,
            Some("grpAbc"),
        ),
        (r#"{"leave":{"id":"1","topic":"grpAbc"}}"#, Some("grpAbc")),
    ];
    for (frame, topic) in cases {
        let mut h = Harness::new(SessionKind::WebSocket);
        // Even an authenticated-looking session: the handshake gate comes first.
        let out = h.feed(frame);
        assert_ctrl(&out, 409, "command out of sequence", Some("1"), *topic);
        assert_eq!(h.s.lifecycle(), Lifecycle::New, "{frame}");
    }
    let mut h = Harness::new(SessionKind::WebSocket);
    h.s.authenticated(ALICE, AuthLevel::Auth);
    assert!(h
        .feed(r#"{"note":{"topic":"grpAbc","what":"read","seq":3}}"#)
        .is_empty());
}

#[test]
fn topic_messages_need_authentication() {
    let cases = [
        r#"{"sub":{"id":"7","topic":"grpAbc"}}"#,
        r#"{"pub":{"id":"7","topic":"grpAbc","content":"x"}}"#,
        r#"{"get":{"id":"7","topic":"grpAbc","what":"data"}}"#,
        r#"{"leave":{"id":"7","topic":"grpAbc"}}"#,
        r#"{"set":{"id":"7","topic":"grpAbc","desc":{"public":"x"}}}"#,
        r#"{"del":{"id":"7","topic":"grpAbc","what":"msg"}}"#,
    ];
    for frame in cases {
        let mut h = Harness::versioned();
        assert_ctrl(
            &h.feed(frame),
            401,
            "authentication required",
            Some("7"),
            Some("grpAbc"),
        );
    }
    // Notes are dropped silently.
    let mut h = Harness::versioned();
    assert!(h
        .feed(r#"{"note":{"topic":"grpAbc","what":"kp"}}"#)
        .is_empty());
}

#[test]
fn messages_to_a_topic_not_attached_must_attach_first() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let cases: &[(&str, Option<&str>)] = &[
        (
            r#"{"pub":{"id":"5","topic":"grpAbc","content":"x"}}"#,
            Some("5"),
        ),
        (r#"{"note":{"topic":"grpAbc","what":"read","seq":5}}"#, None),
        (r#"{"note":{"topic":"grpAbc","what":"kp"}}"#, None),
    ];
    for (frame, id) in cases {
        let out = h.feed(frame);
        let topic = serde_json::from_str::<Value>(frame).unwrap();
        let topic = topic.as_object().unwrap().values().next().unwrap()["topic"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ctrl(&out, 409, "must attach first", *id, Some(&topic));
    }
    // Invalid notes are dropped before the attachment check.
    for frame in [
        r#"{"note":{"topic":"grpAbc","what":"read","seq":0}}"#,
        r#"{"note":{"topic":"grpAbc","what":"recv","seq":-1}}"#,
        r#"{"note":{"topic":"grpAbc","what":"kp","seq":3}}"#,
        r#"{"note":{"topic":"grpAbc","what":"data"}}"#,
        r#"{"note":{"topic":"grpAbc","what":"bogus","seq":1}}"#,
        r#"{"note":{"topic":"","what":"kp"}}"#,
    ] {
        assert!(h.feed(frame).is_empty(), "{frame}");
    }
}

#[test]
fn leave_gates_follow_the_reference_codes() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    assert_ctrl(
        &h.feed(r#"{"leave":{"id":"1","topic":"grpAbc"}}"#),
        304,
        "not joined",
        Some("1"),
        Some("grpAbc"),
    );
    assert_ctrl(
        &h.feed(r#"{"leave":{"id":"2","topic":"grpAbc","unsub":true}}"#),
        409,
        "must attach first",
        Some("2"),
        Some("grpAbc"),
    );
    // me and fnd cannot be unsubscribed, attached or not.
    assert_ctrl(
        &h.feed(r#"{"leave":{"id":"3","topic":"me","unsub":true}}"#),
        403,
        "permission denied",
        Some("3"),
        Some("me"),
    );
    h.event(SessionEvent::Attached { topic: ALICE.usr() });
    assert_ctrl(
        &h.feed(r#"{"leave":{"id":"4","topic":"me","unsub":true}}"#),
        403,
        "permission denied",
        Some("4"),
        Some("me"),
    );
    assert_ctrl(
        &h.feed(r#"{"leave":{"id":"5","topic":"fnd","unsub":true}}"#),
        403,
        "permission denied",
        Some("5"),
        Some("fnd"),
    );
    // Attached: routed to the topic, no direct reply, and still attached until the topic says.
    h.event(SessionEvent::Attached {
        topic: "grpAbc".into(),
    });
    let (topic, req) = route(h.feed(r#"{"leave":{"id":"6","topic":"grpAbc","unsub":true}}"#));
    assert_eq!(topic, "grpAbc");
    match req {
        TopicRequest::Leave {
            req: r,
            id,
            as_seen,
            unsub,
        } => {
            assert_eq!(r, requester(&h));
            assert_eq!(
                (id.as_deref(), as_seen.as_str(), unsub),
                (Some("6"), "grpAbc", true)
            );
        }
        other => panic!("not a leave: {other:?}"),
    }
    let (topic, req) = route(h.feed(r#"{"leave":{"topic":"me"}}"#));
    assert_eq!(topic, ALICE.usr());
    assert!(matches!(
        req,
        TopicRequest::Leave {
            unsub: false,
            id: None,
            ..
        }
    ));
    assert_eq!(h.s.n_subscriptions(), 2);
}

#[test]
fn sub_to_a_topic_joining_or_attached_is_already_subscribed() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let (topic, _) = route(h.feed(r#"{"sub":{"id":"1","topic":"grpAbc"}}"#));
    assert_eq!(topic, "grpAbc");
    assert_eq!(h.s.subs.get("grpAbc"), Some(&SubState::Joining));
    assert_ctrl(
        &h.feed(r#"{"sub":{"id":"2","topic":"grpAbc"}}"#),
        304,
        "already subscribed",
        Some("2"),
        Some("grpAbc"),
    );
    h.event(SessionEvent::Attached {
        topic: "grpAbc".into(),
    });
    assert_eq!(h.s.subs.get("grpAbc"), Some(&SubState::Attached));
    assert_ctrl(
        &h.feed(r#"{"sub":{"id":"3","topic":"grpAbc"}}"#),
        304,
        "already subscribed",
        Some("3"),
        Some("grpAbc"),
    );
    // `me` and its routing name are the same topic.
    route(h.feed(r#"{"sub":{"id":"4","topic":"me"}}"#));
    assert_ctrl(
        &h.feed(r#"{"sub":{"id":"5","topic":"me"}}"#),
        304,
        "already subscribed",
        Some("5"),
        Some("me"),
    );
}

#[test]
fn a_failed_join_frees_the_slot_for_another_sub() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    route(h.feed(r#"{"sub":{"id":"1","topic":"grpAbc"}}"#));
    h.event(SessionEvent::Detached {
        topic: "grpAbc".into(),
    });
    assert_eq!(h.s.n_subscriptions(), 0);
    route(h.feed(r#"{"sub":{"id":"2","topic":"grpAbc"}}"#));
}

#[test]
fn too_many_subscriptions_is_a_policy_violation() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    for t in ["grpA1", "grpA2", "grpA3"] {
        route(h.feed(&json!({"sub": {"topic": t}}).to_string()));
    }
    assert_ctrl(
        &h.feed(r#"{"sub":{"id":"4","topic":"grpA4"}}"#),
        422,
        "policy violation",
        Some("4"),
        Some("grpA4"),
    );
}

#[test]
fn sub_validates_its_set_and_get_parts() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let cases = [
        r#"{"sub":{"id":"1","topic":"grpAbc","set":{"sub":{"user":"usrAAAAAAAAAAA","mode":"JR"}}}}"#,
        r#"{"sub":{"id":"1","topic":"grpAbc","get":{"what":"nothing known"}}}"#,
        r#"{"sub":{"id":"1","topic":""}}"#,
        r#"{"sub":{"id":"1","topic":"usrNotAnId"}}"#,
    ];
    for frame in cases {
        let c = ctrl(&h.feed(frame));
        assert_eq!(
            (c["code"].as_u64(), c["text"].as_str(), c["id"].as_str()),
            (Some(400), Some("malformed"), Some("1")),
            "{frame}"
        );
    }
    assert_eq!(h.s.n_subscriptions(), 0);
}

#[test]
fn get_with_empty_or_unknown_what_is_malformed() {
    let mut h = Harness::attached(&["grpAbc"]);
    for what in ["", "   ", "bogus", "everything else"] {
        let out = h.feed(&json!({"get": {"id": "g", "topic": "grpAbc", "what": what}}).to_string());
        assert_ctrl(&out, 400, "malformed", Some("g"), Some("grpAbc"));
    }
    let (topic, req) = route(
        h.feed(r#"{"get":{"id":"g","topic":"grpAbc","what":"data bogus","data":{"limit":5}}}"#),
    );
    assert_eq!(topic, "grpAbc");
    match req {
        TopicRequest::Get {
            id, as_seen, query, ..
        } => {
            assert_eq!(
                (id.as_deref(), as_seen.as_str(), query.what.as_str()),
                (Some("g"), "grpAbc", "data bogus")
            );
            assert_eq!(query.data.and_then(|d| d.limit), Some(5));
        }
        other => panic!("not a get: {other:?}"),
    }
}

#[test]
fn extra_obo_or_authlevel_from_a_non_root_session_is_denied_without_id() {
    for extra in [json!({"obo": BOB.usr()}), json!({"authlevel": "root"})] {
        let mut h = Harness::attached(&["grpAbc"]);
        let frame = json!({"pub": {"id": "9", "topic": "grpAbc", "content": "x"}, "extra": extra});
        assert_ctrl(
            &h.feed(&frame.to_string()),
            403,
            "permission denied",
            None,
            None,
        );
    }
    // Empty values are not a request to act on behalf of anyone.
    let mut h = Harness::attached(&["grpAbc"]);
    let frame = json!({"pub": {"id": "9", "topic": "grpAbc", "content": "x"}, "extra": {"obo": "", "attachments": []}});
    route(h.feed(&frame.to_string()));
    // Root passes the gate.
    let mut h = Harness::logged_in(ALICE, AuthLevel::Root);
    h.event(SessionEvent::Attached {
        topic: "grpAbc".into(),
    });
    let frame =
        json!({"pub": {"id": "9", "topic": "grpAbc", "content": "x"}, "extra": {"obo": BOB.usr()}});
    route(h.feed(&frame.to_string()));
}

#[test]
fn login_is_validated_before_it_reaches_the_shard() {
    let mut h = Harness::versioned();
    // Standard base64, with and without padding; the scheme name is case-insensitive.
    for (secret, plain) in [
        ("YWxpY2U6c2VjcmV0", "alice:secret"),
        ("YWxpY2U6c2VjcmU=", "alice:secre"),
        ("YWxpY2U6c2VjcmU", "alice:secre"),
    ] {
        let out =
            h.feed(&json!({"login": {"id": "l", "scheme": "Basic", "secret": secret}}).to_string());
        assert_eq!(out.len(), 1);
        match &out[0] {
            SessionOut::Login { id, scheme, secret } => {
                assert_eq!((id.as_deref(), scheme.as_str()), (Some("l"), "basic"));
                assert_eq!(secret.as_slice(), plain.as_bytes());
            }
            other => panic!("not a login: {other:?}"),
        }
        // A second attempt while the first is pending waits its turn.
        assert_ctrl(
            &h.feed(r#"{"login":{"id":"m","scheme":"token","secret":"AAAA"}}"#),
            409,
            "command out of sequence",
            Some("m"),
            None,
        );
        h.s.auth_finished();
    }
    let out = h.feed(r#"{"login":{"scheme":"token","secret":"YWI"}}"#);
    assert!(matches!(&out[..], [SessionOut::Login { secret, .. }] if secret == b"ab"));
    h.s.auth_finished();
    let cases: &[(&str, u16, &str)] = &[
        (
            r#"{"login":{"id":"l","scheme":"oauth","secret":"YWI="}}"#,
            401,
            "unknown authentication scheme",
        ),
        (
            r#"{"login":{"id":"l","scheme":"basic","secret":"not base64!"}}"#,
            400,
            "malformed",
        ),
        (r#"{"login":{"id":"l","scheme":"basic"}}"#, 400, "malformed"),
        (
            r#"{"login":{"id":"l","scheme":"anonymous","secret":"YWI="}}"#,
            501,
            "not implemented",
        ),
    ];
    for (frame, code, text) in cases {
        let c = ctrl(&h.feed(frame));
        assert_eq!(
            (c["code"].as_u64(), c["text"].as_str()),
            (Some(u64::from(*code)), Some(*text)),
            "{frame}"
        );
        assert_eq!(c["id"], "l");
    }
    h.s.authenticated(ALICE, AuthLevel::Auth);
    assert_ctrl(
        &h.feed(r#"{"login":{"id":"x","scheme":"basic","secret":"YWxpY2U6c2VjcmV0"}}"#),
        409,
        "already authenticated",
        Some("x"),
        None,
    );
}

#[test]
fn an_unknown_scheme_is_reported_even_without_a_secret() {
    let mut h = Harness::versioned();
    assert_ctrl(
        &h.feed(r#"{"login":{"id":"l","scheme":"oauth"}}"#),
        401,
        "unknown authentication scheme",
        Some("l"),
        None,
    );
}

#[test]
fn acc_new_becomes_an_account_request() {
    let mut h = Harness::versioned();
    let out = h.feed(
        r#"{"acc":{"id":"a","user":"newXYZ","scheme":"basic","secret":"Ym9iOnB3ZA==","login":true,
            "tags":["t1"],"desc":{"public":{"fn":"Bob"},"private":{"x":1},"defacs":{"auth":"JRWP","anon":"N"}}}}"#,
    );
    assert_eq!(out.len(), 1);
    let SessionOut::CreateAccount(req) = &out[0] else {
        panic!("not an account request: {:?}", out[0])
    };
    assert_eq!(
        (req.id.as_deref(), req.scheme.as_str(), req.login),
        (Some("a"), "basic", true)
    );
    assert_eq!(req.secret, b"bob:pwd");
    assert_eq!(req.tags, ["t1"]);
    assert_eq!(
        req.public.as_ref().map(|r| r.get()),
        Some(r#"{"fn":"Bob"}"#)
    );
    assert_eq!(req.private.as_ref().map(|r| r.get()), Some(r#"{"x":1}"#));
    assert_eq!(
        (req.auth_defacs.as_deref(), req.anon_defacs.as_deref()),
        (Some("JRWP"), Some("N"))
    );
    // With login pending, another login waits.
    assert_ctrl(
        &h.feed(r#"{"login":{"id":"l","scheme":"basic","secret":"YTpi"}}"#),
        409,
        "command out of sequence",
        Some("l"),
        None,
    );
    h.s.authenticated(BOB, AuthLevel::Auth);
    let cases: &[(&str, u16, &str)] = &[
        (
            r#"{"acc":{"id":"a","user":"newQ","scheme":"basic","secret":"YTpi","login":true}}"#,
            409,
            "already authenticated",
        ),
        (
            r#"{"acc":{"id":"a","user":"newQ","scheme":"magic","secret":"YTpi"}}"#,
            400,
            "malformed",
        ),
        (
            r#"{"acc":{"id":"a","user":"newQ","scheme":"basic","secret":"%%%"}}"#,
            400,
            "malformed",
        ),
        (
            r#"{"acc":{"id":"a","scheme":"token","secret":"YTpi"}}"#,
            501,
            "not implemented",
        ),
    ];
    for (frame, code, text) in cases {
        let c = ctrl(&h.feed(frame));
        assert_eq!(
            (c["code"].as_u64(), c["text"].as_str()),
            (Some(u64::from(*code)), Some(*text)),
            "{frame}"
        );
    }
}

#[test]
fn sub_me_routes_a_join_to_the_users_me_topic() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let (topic, req) =
        route(h.feed(r#"{"sub":{"id":"s","topic":"me","get":{"what":"sub desc tags cred"}}}"#));
    assert_eq!(topic, ALICE.usr());
    match req {
        TopicRequest::Join {
            req: r,
            id,
            as_seen,
            create,
            set,
            get,
            ua,
        } => {
            assert_eq!(
                r,
                Requester {
                    sid: SessionId::new(ShardId(1), 7),
                    uid: ALICE,
                    level: AuthLevel::Auth,
                    enc: crate::proto::Encoding::Json,
                }
            );
            assert_eq!(
                (id.as_deref(), as_seen.as_str(), ua.as_str()),
                (Some("s"), "me", "test-ua/1.0")
            );
            assert!(create.is_none() && set.is_none());
            assert_eq!(get.map(|g| g.what).as_deref(), Some("sub desc tags cred"));
        }
        other => panic!("not a join: {other:?}"),
    }
    assert_eq!(h.s.topics().collect::<Vec<_>>(), [ALICE.usr()]);
}

#[test]
fn topic_names_expand_to_routing_names() {
    let cases: Vec<(&str, String)> = vec![
        ("me", ALICE.usr()),
        ("fnd", format!("fnd{}", ALICE.encode_body())),
        ("slf", format!("slf{}", ALICE.encode_body())),
        ("grpAbcdefghijk", "grpAbcdefghijk".into()),
        ("chnAbcdefghijk", "grpAbcdefghijk".into()),
    ];
    for (name, routing) in cases {
        let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
        let (topic, req) = route(h.feed(&json!({"sub": {"topic": name}}).to_string()));
        assert_eq!(topic, routing, "{name}");
        assert!(matches!(req, TopicRequest::Join { as_seen, create: None, .. } if as_seen == name));
    }
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let (topic, req) = route(h.feed(&json!({"sub": {"id": "p", "topic": BOB.usr()}}).to_string()));
    assert_eq!(topic, p2p_topic(ALICE, BOB));
    assert!(matches!(req, TopicRequest::Join { as_seen, .. } if as_seen == BOB.usr()));
}

#[test]
fn sub_new_creates_a_fresh_group_name_from_the_entropy() {
    for (tmp, is_chan, entropy) in [
        ("newX", false, 1u64),
        ("new", false, 0xdead_beef),
        ("nchChannel", true, 42),
    ] {
        let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
        h.entropy = entropy;
        let (topic, req) = route(
            h.feed(
                &json!({"sub": {"id": "n", "topic": tmp, "set": {"desc": {"public": "G"}}}})
                    .to_string(),
            ),
        );
        assert_eq!(topic, format!("grp{}", random_body(entropy.to_le_bytes())));
        assert_eq!(topic.len(), 14, "grp + 11 characters");
        match req {
            TopicRequest::Join {
                as_seen,
                create,
                set,
                ..
            } => {
                assert_eq!(as_seen, tmp);
                assert_eq!(
                    create,
                    Some(CreateSpec {
                        tmpname: tmp.to_owned(),
                        is_chan
                    })
                );
                assert!(set.and_then(|s| s.desc).and_then(|d| d.public).is_some());
            }
            other => panic!("not a join: {other:?}"),
        }
    }
    // Different entropy, different names; and `new…` is only special for {sub}.
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let (a, _) = route(h.feed(r#"{"sub":{"topic":"new1"}}"#));
    h.entropy += 1;
    let (b, _) = route(h.feed(r#"{"sub":{"topic":"new2"}}"#));
    assert_ne!(a, b);
    assert_ctrl(
        &h.feed(r#"{"pub":{"id":"1","topic":"newX","content":"x"}}"#),
        409,
        "must attach first",
        Some("1"),
        Some("newX"),
    );
}

#[test]
fn sub_to_own_usr_is_denied() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let out = h.feed(&json!({"sub": {"id": "1", "topic": ALICE.usr()}}).to_string());
    assert_ctrl(
        &out,
        403,
        "permission denied",
        Some("1"),
        Some(&ALICE.usr()),
    );
    assert_eq!(h.s.n_subscriptions(), 0);
}

#[test]
fn attachment_events_decide_what_pub_accepts() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let pub_frame = r#"{"pub":{"id":"p","topic":"grpAbc","noecho":true,"head":{"mime":"text/x-drafty"},"content":{"txt":"hi"}}}"#;
    assert_ctrl(
        &h.feed(pub_frame),
        409,
        "must attach first",
        Some("p"),
        Some("grpAbc"),
    );
    // Joining is not attached.
    route(h.feed(r#"{"sub":{"topic":"grpAbc"}}"#));
    assert_ctrl(
        &h.feed(pub_frame),
        409,
        "must attach first",
        Some("p"),
        Some("grpAbc"),
    );
    assert!(h
        .event(SessionEvent::Attached {
            topic: "grpAbc".into()
        })
        .is_empty());
    let (topic, req) = route(h.feed(pub_frame));
    assert_eq!(topic, "grpAbc");
    match req {
        TopicRequest::Publish {
            req: r,
            id,
            as_seen,
            noecho,
            head,
            content,
        } => {
            assert_eq!(r, requester(&h));
            assert_eq!(
                (id.as_deref(), as_seen.as_str(), noecho),
                (Some("p"), "grpAbc", true)
            );
            assert_eq!(
                head.map(Value::Object),
                Some(json!({"mime": "text/x-drafty"}))
            );
            assert_eq!(content.get(), r#"{"txt":"hi"}"#);
        }
        other => panic!("not a publish: {other:?}"),
    }
    // A pub without content is malformed.
    assert_ctrl(
        &h.feed(r#"{"pub":{"id":"q","topic":"grpAbc"}}"#),
        400,
        "malformed",
        Some("q"),
        Some("grpAbc"),
    );
    // Notes and gets are routed while attached.
    let (_, req) = route(h.feed(r#"{"note":{"topic":"grpAbc","what":"read","seq":4,"unread":9}}"#));
    assert!(matches!(req, TopicRequest::Note { what, seq: 4, .. } if what == "read"));
    let (_, req) =
        route(h.feed(r#"{"note":{"topic":"grpAbc","what":"data","payload":{"k":1},"event":"e"}}"#));
    assert!(
        matches!(req, TopicRequest::Note { payload: Some(p), event: Some(e), .. } if p.get() == r#"{"k":1}"# && e == "e")
    );
    // Detached (leave, eviction): back to 409.
    assert!(h
        .event(SessionEvent::Detached {
            topic: "grpAbc".into()
        })
        .is_empty());
    assert_ctrl(
        &h.feed(pub_frame),
        409,
        "must attach first",
        Some("p"),
        Some("grpAbc"),
    );
    assert_ctrl(
        &h.feed(r#"{"note":{"topic":"grpAbc","what":"kp"}}"#),
        409,
        "must attach first",
        None,
        Some("grpAbc"),
    );
}

#[test]
fn frames_from_topics_are_passed_through_in_order() {
    let mut h = Harness::attached(&["grpAbc"]);
    let frames = vec![
        Frame::new(Outcome::Ok.ctrl(Some("a"), None, UnixMillis(1)).msg()),
        Frame::new(Outcome::Ok.ctrl(Some("b"), None, UnixMillis(2)).msg()),
    ];
    let out = h.event(SessionEvent::Frames(frames.clone()));
    let sent: Vec<_> = out
        .into_iter()
        .map(|o| match o {
            SessionOut::Send(b) => b,
            other => panic!("{other:?}"),
        })
        .collect();
    let ptrs = |v: &[Frame]| v.iter().map(|f| f.json().as_ptr()).collect::<Vec<_>>();
    assert_eq!(
        ptrs(&sent),
        ptrs(&frames),
        "the same shared frames, in order"
    );
}

#[test]
fn set_del_and_unattached_get_are_validated_then_routed() {
    let mut h = Harness::attached(&["grpAbc"]);
    // Malformed requests are answered by the session itself.
    let cases: &[(&str, u16, Option<&str>)] = &[
        (
            r#"{"set":{"id":"1","topic":"grpAbc"}}"#,
            400,
            Some("grpAbc"),
        ),
        (
            r#"{"del":{"id":"1","topic":"grpAbc"}}"#,
            400,
            Some("grpAbc"),
        ),
        (
            r#"{"del":{"id":"1","topic":"grpAbc","what":"everything"}}"#,
            400,
            Some("grpAbc"),
        ),
        (
            r#"{"del":{"id":"1","topic":"grpAbc","what":"sub"}}"#,
            400,
            Some("grpAbc"),
        ),
        (
            r#"{"del":{"id":"1","topic":"grpAbc","what":"cred","cred":{"meth":"email","val":"a@b.c"}}}"#,
            403,
            Some("grpAbc"),
        ),
    ];
    let other_user = format!(
        r#"{{"del":{{"id":"1","topic":"me","what":"user","user":"{}"}}}}"#,
        BOB.usr()
    );
    assert_ctrl(
        &h.feed(&other_user),
        403,
        "permission denied",
        Some("1"),
        None,
    );
    for (frame, code, topic) in cases {
        let c = ctrl(&h.feed(frame));
        assert_eq!(
            (c["code"].as_u64(), c["id"].as_str(), c["topic"].as_str()),
            (Some(u64::from(*code)), Some("1"), *topic),
            "{frame}"
        );
    }
    // Valid ones go to the topic, attached or not (the topic decides what is allowed).
    for frame in [
        r#"{"set":{"id":"1","topic":"grpAbc","desc":{"public":"x"}}}"#,
        r#"{"set":{"id":"1","topic":"grpOther","desc":{"private":"x"}}}"#,
        r#"{"del":{"id":"1","topic":"grpAbc","what":"msg","delseq":[{"low":3,"hi":4}],"hard":true}}"#,
        r#"{"del":{"id":"1","topic":"grpAbc","what":"topic"}}"#,
        r#"{"get":{"id":"1","topic":"grpOther","what":"desc"}}"#,
    ] {
        let (topic, _) = route(h.feed(frame));
        assert!(topic.starts_with("grp"), "{frame}");
    }
    // Deleting one's own account is an account change.
    let out = h.feed(r#"{"del":{"id":"1","topic":"me","what":"user"}}"#);
    assert!(
        matches!(&out[..], [SessionOut::Account(c)] if c.target == ALICE),
        "{out:?}"
    );
}

#[test]
fn an_undecodable_frame_gets_400_without_id() {
    let h = Harness::versioned();
    let mut out = Vec::new();
    h.s.malformed(NOW, &mut out);
    assert_ctrl(&out, 400, "malformed", None, None);
}

#[test]
fn terminate_detaches_every_topic_and_locks_the_session() {
    let mut h = Harness::attached(&["grpAbc", &ALICE.usr()]);
    route(h.feed(r#"{"sub":{"topic":"grpJoining"}}"#));
    let mut out = Vec::new();
    h.s.terminate(&mut out);
    let mut detached: Vec<String> = out
        .into_iter()
        .map(|o| match o {
            SessionOut::Route {
                topic,
                req: TopicRequest::Detach { sid },
            } => {
                assert_eq!(sid, h.s.sid);
                topic
            }
            other => panic!("not a detach: {other:?}"),
        })
        .collect();
    detached.sort();
    let mut expect = vec!["grpAbc".to_owned(), "grpJoining".to_owned(), ALICE.usr()];
    expect.sort();
    assert_eq!(detached, expect);
    assert_eq!(h.s.lifecycle(), Lifecycle::Terminating);
    assert_eq!(h.s.n_subscriptions(), 0);
    // Later input: 503 "locked", with id and topic where the message has them.
    assert_ctrl(
        &h.feed(r#"{"pub":{"id":"1","topic":"grpAbc","content":"x"}}"#),
        503,
        "locked",
        Some("1"),
        Some("grpAbc"),
    );
    assert_ctrl(
        &h.feed(r#"{"hi":{"id":"2","ver":"0.25"}}"#),
        503,
        "locked",
        Some("2"),
        None,
    );
    assert_ctrl(
        &h.feed(r#"{"note":{"topic":"grpAbc","what":"kp"}}"#),
        503,
        "locked",
        None,
        Some("grpAbc"),
    );
    // Later output is dropped, and a late attachment is undone.
    assert!(h
        .event(SessionEvent::Frames(vec![Frame::new(
            Outcome::Ok.ctrl(None, None, UnixMillis(0)).msg(),
        )]))
        .is_empty());
    let (topic, req) = route(h.event(SessionEvent::Attached {
        topic: "grpLate".into(),
    }));
    assert_eq!(topic, "grpLate");
    assert!(matches!(req, TopicRequest::Detach { sid } if sid == h.s.sid));
    assert_eq!(h.s.n_subscriptions(), 0);
    // Terminating twice emits nothing more.
    let mut out = Vec::new();
    h.s.terminate(&mut out);
    assert!(out.is_empty());
}
