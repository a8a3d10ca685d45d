//! The `me` topic: only its user may attach, it lists the user's subscriptions, and nobody
//! publishes to it.

use serde_json::json;

use super::sim::*;
use crate::topic::*;

#[test]
fn me_topics_admit_only_their_user() {
    let mut sim = Sim::new(2);
    sim.add_user(ALICE);
    let me = ALICE.usr();
    assert!(sim.load(&me));
    assert!(!sim.load(&BOB.usr()), "no record, no topic");
    sim.run(&me, join(sid(1, 1), BOB, &me, Some("x")));
    let recs = sim.take(sid(1, 1));
    let Rec::Frame(f) = &recs[0] else {
        panic!("{recs:?}")
    };
    ctrl(f, 403, "permission denied");
    assert_eq!(recs[1], Rec::Detached(me.clone()));

    let mut r = join(sid(0, 1), ALICE, "me", Some("m"));
    if let TopicRequest::Join { get, .. } = &mut r {
        *get = Some(get_query(json!({"what": "desc sub"})));
    }
    sim.req(&me, r);
    assert!(sim.in_flight.is_empty(), "attaching to me writes nothing");
    let recs = sim.take(sid(0, 1));
    assert_eq!(recs[0], Rec::Attached(me.clone()));
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    assert!(ctrl(f, 200, "ok").get("params").is_none());
    let Rec::Frame(f) = &recs[2] else {
        panic!("{recs:?}")
    };
    assert_eq!(f["meta"]["topic"], "me");
    assert_eq!(f["meta"]["desc"]["acs"]["mode"], "JPS");
    let Rec::Frame(f) = &recs[3] else {
        panic!("{recs:?}")
    };
    assert_eq!(ctrl(f, 204, "no content")["params"], json!({"what": "sub"}));
    // Publishing to me is denied; the session stays attached.
    let mut p = publish(sid(0, 1), ALICE, Some("p"), "\"x\"");
    if let TopicRequest::Publish {
        hdr: ReqHead { as_seen, .. },
        ..
    } = &mut p
    {
        *as_seen = "me".into();
    }
    sim.run(&me, p);
    let f = sim.frames(sid(0, 1));
    ctrl(&f[0], 403, "permission denied");
    assert_eq!(sim.topic(&me).n_attached(), 1);
}

#[test]
fn the_me_topic_lists_the_users_groups() {
    let mut sim = Sim::new(1);
    sim.add_user(BOB);
    sim.create_group(sid(0, 1), ALICE, Some(json!({"desc": {"public": "G"}})));
    sim.attach(sid(0, 2), BOB);
    sim.publish(sid(0, 1), ALICE, None, "\"x\"");
    sim.clear();
    let me = BOB.usr();
    assert!(sim.load(&me));
    let mut r = join(sid(0, 3), BOB, "me", Some("m"));
    if let TopicRequest::Join { get, .. } = &mut r {
        *get = Some(get_query(json!({"what": "sub"})));
    }
    sim.run(&me, r);
    let f = sim.frames(sid(0, 3));
    let subs = f[1]["meta"]["sub"].as_array().expect("meta sub");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["topic"], GROUP);
    assert_eq!(subs[0]["seq"], 1);
    assert_eq!(subs[0]["public"], "G");
    assert_eq!(subs[0]["acs"]["mode"], "JRWPS");
}

/// Last seen is when the user's last session left `me`, not when `me` unloaded after its
/// linger (a client that leaves over long polling, or a busy server, must not move it).
#[test]
fn last_seen_is_when_the_last_session_left() {
    let mut sim = Sim::new(1);
    sim.add_user(ALICE);
    let me = ALICE.usr();
    assert!(sim.load(&me));
    sim.run(&me, join(sid(0, 1), ALICE, "me", None));
    sim.now = UnixMillis(T0.0 + 1_000);
    sim.run(&me, TopicRequest::Detach { sid: sid(0, 1) });
    sim.now = UnixMillis(T0.0 + 9_000);
    sim.step(&me, |t, cx| t.on_unload(cx));
    let user = sim.store.user(ALICE).unwrap().expect("user");
    assert_eq!(
        user.last_seen,
        Some((UnixMillis(T0.0 + 1_000), "test-ua".to_owned()))
    );
}

#[test]
fn an_idle_users_me_topic_stays_in_a_small_allocation() {
    // Every idle session holds its user's `me` topic (W1). 384 bytes is one of mimalloc's size
    // classes; the next one up is 448, so a topic a few bytes larger costs 64 more per user.
    let size = std::mem::size_of::<crate::topic::Topic>();
    assert!(size <= 384, "Topic is {size} bytes");
}
