//! Rate limits on a fixed clock (messages, notes, password logins and sign-ups), background
//! sessions turning foreground, and the per-transport `maxMessageSize`.

use super::harness::*;
use crate::access::AuthLevel;
use crate::ids::UnixMillis;
use crate::routing::{SessionEvent, TopicRequest};
use crate::session::limits::{Rate, TokenBucket};
use crate::session::*;

fn limited(burst: u32) -> Harness {
    let mut h = Harness::attached(&["grpA"]);
    h.limits.msg_rate = Rate::per_sec(10, burst);
    h.limits.note_rate = Rate::per_sec(10, burst);
    // The buckets fill on first use, at the rate then in force.
    (h.s.msg_bucket, h.s.note_bucket) = (TokenBucket::UNUSED, TokenBucket::UNUSED);
    h
}

fn pub_to(h: &mut Harness, id: &str) -> Vec<SessionOut> {
    h.feed(&format!(
        r#"{{"pub":{{"id":"{id}","topic":"grpA","content":"x"}}}}"#
    ))
}

fn is_route(out: &[SessionOut]) -> bool {
    matches!(out, [SessionOut::Route { .. }])
}

#[test]
fn a_flood_is_answered_429_with_its_id_and_the_bucket_refills() {
    let mut h = limited(3);
    for i in 0..3 {
        assert!(
            is_route(&pub_to(&mut h, &format!("p{i}"))),
            "within the burst"
        );
    }
    let out = pub_to(&mut h, "p3");
    assert_ctrl(&out, 429, "too many requests", Some("p3"), Some("grpA"));
    // Any message kind counts, and is refused alike.
    let out = h.feed(r#"{"get":{"id":"g","topic":"grpA","what":"desc"}}"#);
    assert_ctrl(&out, 429, "too many requests", Some("g"), Some("grpA"));
    // 10/s: one token per 100 ms.
    h.now = h.now.plus_ms(99);
    assert_ctrl(
        &pub_to(&mut h, "p4"),
        429,
        "too many requests",
        Some("p4"),
        Some("grpA"),
    );
    h.now = h.now.plus_ms(1);
    assert!(is_route(&pub_to(&mut h, "p5")));
    assert_ctrl(
        &pub_to(&mut h, "p6"),
        429,
        "too many requests",
        Some("p6"),
        Some("grpA"),
    );
    // The session is not ended by refusals: later messages go through.
    h.now = h.now.plus_ms(1_000);
    assert!(is_route(&pub_to(&mut h, "p7")));
    assert_eq!(h.s.lifecycle(), Lifecycle::Versioned);
}

#[test]
fn notes_have_their_own_bucket_and_are_dropped_silently_when_it_is_empty() {
    let mut h = limited(2);
    let note = r#"{"note":{"topic":"grpA","what":"recv","seq":1}}"#;
    assert!(is_route(&h.feed(note)));
    assert!(is_route(&h.feed(note)));
    assert!(h.feed(note).is_empty(), "a refused note is dropped");
    // The receipts did not use up the bucket of requests.
    assert!(is_route(&pub_to(&mut h, "p1")));
    assert!(is_route(&pub_to(&mut h, "p2")));
    assert_ctrl(
        &pub_to(&mut h, "p3"),
        429,
        "too many requests",
        Some("p3"),
        Some("grpA"),
    );
}

#[test]
fn password_logins_and_signups_share_a_stricter_bucket_tokens_do_not() {
    let mut h = Harness::versioned();
    h.limits.auth_rate = Rate::per_min(6, 2);
    h.s.auth_bucket = TokenBucket::UNUSED;
    let basic = r#"{"login":{"id":"l","scheme":"basic","secret":"YWxpY2U6YWxpY2UxMjM="}}"#;
    let token = r#"{"login":{"id":"t","scheme":"token","secret":"AAAA"}}"#;
    let signup =
        r#"{"acc":{"id":"a","user":"new","scheme":"basic","secret":"YWxpY2U6YWxpY2UxMjM="}}"#;
    assert!(matches!(
        h.feed(basic).as_slice(),
        [SessionOut::Login { .. }]
    ));
    h.s.auth_finished();
    assert!(matches!(
        h.feed(signup).as_slice(),
        [SessionOut::CreateAccount(_)]
    ));
    h.s.auth_finished();
    assert_ctrl(&h.feed(basic), 429, "too many requests", Some("l"), None);
    assert!(
        !h.s.auth_pending,
        "a refused attempt leaves nothing pending"
    );
    assert_ctrl(&h.feed(signup), 429, "too many requests", Some("a"), None);
    // Token logins are not guessable and cost no bcrypt: never limited here.
    for _ in 0..5 {
        assert!(matches!(
            h.feed(token).as_slice(),
            [SessionOut::Login { .. }]
        ));
        h.s.auth_finished();
    }
    // 6/min: the next attempt is allowed 10 s later.
    h.now = h.now.plus_ms(9_999);
    assert_ctrl(&h.feed(basic), 429, "too many requests", Some("l"), None);
    h.now = h.now.plus_ms(1);
    assert!(matches!(
        h.feed(basic).as_slice(),
        [SessionOut::Login { .. }]
    ));
}

#[test]
fn a_background_session_joins_as_such_and_turns_foreground_at_its_deadline() {
    let mut h = Harness::new(SessionKind::WebSocket);
    h.limits.background_delay_ms = 5_000;
    let out = h.feed(r#"{"hi":{"id":"0","ver":"0.25","ua":"bot/1","bkg":true}}"#);
    let due = h.now.plus_ms(5_000);
    assert!(
        matches!(out.as_slice(), [SessionOut::Send(_), SessionOut::WakeAt(at)] if *at == due),
        "{out:?}"
    );
    assert!(h.s.is_background());
    h.s.authenticated(ALICE, AuthLevel::Auth);
    let (_, req) = route(h.feed(r#"{"sub":{"id":"s","topic":"me"}}"#));
    assert!(matches!(req, TopicRequest::Join { bkg: true, .. }));
    h.event(SessionEvent::Attached { topic: ALICE.usr() });
    let (_, _) = route(h.feed(r#"{"sub":{"id":"s2","topic":"grpB"}}"#)); // still joining

    // Too early: nothing.
    let mut out = Vec::new();
    h.s.wake(UnixMillis(due.0 - 1), &mut out);
    assert!(out.is_empty() && h.s.is_background());
    // Due: every topic attached or joining is told, with the session's user agent.
    h.s.wake(due, &mut out);
    assert!(!h.s.is_background());
    let mut told: Vec<String> = out
        .into_iter()
        .map(|o| match o {
            SessionOut::Route {
                topic,
                req: TopicRequest::Foreground { sid, ua },
            } => {
                assert_eq!((sid, ua.as_str()), (h.s.sid, "bot/1"));
                topic
            }
            other => panic!("expected Foreground, got {other:?}"),
        })
        .collect();
    told.sort();
    assert_eq!(told, vec!["grpB".to_owned(), ALICE.usr()]);
    // Once is enough; later joins are foreground.
    let mut out = Vec::new();
    h.s.wake(due.plus_ms(1_000), &mut out);
    assert!(out.is_empty());
    let (_, req) = route(h.feed(r#"{"sub":{"id":"s3","topic":"grpC"}}"#));
    assert!(matches!(req, TopicRequest::Join { bkg: false, .. }));
}

#[test]
fn without_bkg_or_with_no_delay_a_session_is_foreground_from_the_start() {
    let mut h = Harness::new(SessionKind::WebSocket);
    h.limits.background_delay_ms = 5_000;
    let out = h.feed(r#"{"hi":{"id":"0","ver":"0.25"}}"#);
    assert!(matches!(out.as_slice(), [SessionOut::Send(_)]));
    assert!(!h.s.is_background());
    let mut h = Harness::new(SessionKind::WebSocket);
    h.limits.background_delay_ms = 0;
    let out = h.feed(r#"{"hi":{"id":"0","ver":"0.25","bkg":true}}"#);
    assert!(matches!(out.as_slice(), [SessionOut::Send(_)]));
    assert!(!h.s.is_background());
}

#[test]
fn an_ended_background_session_wakes_to_nothing() {
    let mut h = Harness::new(SessionKind::WebSocket);
    h.limits.background_delay_ms = 5_000;
    h.feed(r#"{"hi":{"id":"0","ver":"0.25","bkg":true}}"#);
    h.s.authenticated(ALICE, AuthLevel::Auth);
    h.event(SessionEvent::Attached { topic: ALICE.usr() });
    let mut out = Vec::new();
    h.s.terminate(&mut out);
    out.clear();
    h.s.wake(h.now.plus_ms(10_000), &mut out);
    assert!(out.is_empty());
}

#[test]
fn max_message_size_is_advertised_per_transport() {
    for (kind, size) in [
        (SessionKind::WebSocket, 1000),
        (SessionKind::LongPoll, 2000),
        (SessionKind::Grpc, 3000),
    ] {
        let mut h = Harness::new(kind);
        h.limits.max_message_size = [1000, 2000, 3000];
        let out = h.feed(r#"{"hi":{"id":"0","ver":"0.25"}}"#);
        assert_eq!(ctrl(&out)["params"]["maxMessageSize"], size);
    }
    // 0: what the shared parameters say.
    let mut h = Harness::new(SessionKind::WebSocket);
    let out = h.feed(r#"{"hi":{"id":"0","ver":"0.25"}}"#);
    assert_eq!(ctrl(&out)["params"]["maxMessageSize"], 131072);
}
