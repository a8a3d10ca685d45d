//! The session lifecycle: the `{hi}` handshake and version parsing, out-of-sequence input,
//! malformed frames, and termination.

use serde_json::json;

use super::harness::*;
use crate::access::AuthLevel;
use crate::ids::UnixMillis;
use crate::proto::{Frame, Outcome};
use crate::routing::{SessionEvent, TopicRequest};
use crate::session::dispatch::parse_version;
use crate::session::*;

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
        assert_eq!(
            (h.s.user_agent(), h.s.language(), h.s.platform()),
            ("test-ua", "en-GB", "web")
        );
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
    assert_eq!(h.s.language(), "fr", "a later hi changes the language");
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

#[test]
fn a_session_stays_in_a_small_allocation() {
    // The shard boxes every session, idle ones included (W1). 192 bytes is one of mimalloc's
    // size classes; the next one up is 224, so a session a few bytes larger costs 32 more.
    let size = std::mem::size_of::<crate::session::Session>();
    assert!(size <= 192, "Session is {size} bytes");
}
