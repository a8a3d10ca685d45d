//! `{get}`, `{set}` and `{del}` validated in the session and routed to the topic, and topic frames
//! passed through in order.

use serde_json::json;

use super::harness::*;
use crate::ids::UnixMillis;
use crate::proto::{Frame, Outcome};
use crate::routing::{ReqHead, SessionEvent, TopicRequest};
use crate::session::*;

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
            hdr: ReqHead { id, as_seen, .. },
            query,
            ..
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
