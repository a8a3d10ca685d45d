//! `{sub}`: duplicate and pending joins, the subscription limit, validation, and how topic names
//! expand to routing names.

use serde_json::json;

use super::harness::*;
use crate::access::AuthLevel;
use crate::ids::{random_body, SessionId, ShardId};
use crate::routing::{p2p_topic, CreateSpec, ReqHead, Requester, SessionEvent, TopicRequest};
use crate::session::*;

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
fn sub_me_routes_a_join_to_the_users_me_topic() {
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let (topic, req) =
        route(h.feed(r#"{"sub":{"id":"s","topic":"me","get":{"what":"sub desc tags cred"}}}"#));
    assert_eq!(topic, ALICE.usr());
    match req {
        TopicRequest::Join {
            hdr:
                ReqHead {
                    req: r,
                    id,
                    as_seen,
                },
            create,
            set,
            get,
            ua,
            bkg,
        } => {
            assert!(!bkg, "a foreground session");
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
        assert!(
            matches!(req, TopicRequest::Join { hdr: ReqHead { as_seen, .. }, create: None, .. } if as_seen == name)
        );
    }
    let mut h = Harness::logged_in(ALICE, AuthLevel::Auth);
    let (topic, req) = route(h.feed(&json!({"sub": {"id": "p", "topic": BOB.usr()}}).to_string()));
    assert_eq!(topic, p2p_topic(ALICE, BOB));
    assert!(
        matches!(req, TopicRequest::Join { hdr: ReqHead { as_seen, .. }, .. } if as_seen == BOB.usr())
    );
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
                hdr: ReqHead { as_seen, .. },
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
