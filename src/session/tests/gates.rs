//! The gates before a topic: authentication, attachment (which the topic's events decide), leave
//! codes, and on-behalf-of extras.

use serde_json::{json, Value};

use super::harness::*;
use crate::access::AuthLevel;
use crate::routing::{ReqHead, SessionEvent, TopicRequest};

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
    // A `recv` is routed to the topic even when not attached (delivery receipts after a
    // push); the topic decides, and never answers.
    let (topic, req) = route(h.feed(r#"{"note":{"topic":"grpAbc","what":"recv","seq":5}}"#));
    assert_eq!(topic, "grpAbc");
    assert!(matches!(req, TopicRequest::Note { what, seq: 5, .. } if what == "recv"));
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
            hdr:
                ReqHead {
                    req: r,
                    id,
                    as_seen,
                },
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
            hdr: ReqHead { id: None, .. },
            unsub: false,
            ..
        }
    ));
    assert_eq!(h.s.n_subscriptions(), 2);
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
            hdr:
                ReqHead {
                    req: r,
                    id,
                    as_seen,
                },
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
