//! Leaving a topic: detaching, unsubscribing (and the evictions it causes), what cannot be left,
//! and idle topics reloading.

use serde_json::json;

use super::sim::*;
use crate::topic::*;

#[test]
fn leave_detaches_the_session() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.run(GROUP, leave(b1, BOB, "l", false));
    assert_eq!(
        sim.take(b1),
        [
            Rec::Frame(sim_ctrl_frame(200, "ok", "l")),
            Rec::Detached(GROUP.into())
        ]
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1);
    assert_eq!(
        sim.stored_sub(BOB).deleted,
        None,
        "a plain leave keeps the subscription"
    );
    // Leaving again: not joined (the session is told it is detached).
    sim.run(GROUP, leave(b1, BOB, "l2", false));
    assert_eq!(
        sim.take(b1),
        [
            Rec::Frame(sim_ctrl_frame(304, "not joined", "l2")),
            Rec::Detached(GROUP.into())
        ]
    );
    sim.run(GROUP, leave(b1, BOB, "l3", true));
    assert_eq!(
        sim.take(b1),
        [
            Rec::Frame(sim_ctrl_frame(409, "must attach first", "l3")),
            Rec::Detached(GROUP.into())
        ]
    );
    // Messages no longer reach it.
    sim.publish(a1, ALICE, None, "\"x\"");
    assert!(sim.take(b1).is_empty());
}

#[test]
fn unsubscribing_deletes_the_subscription_and_evicts_the_users_other_sessions() {
    let (a1, b1, b2, b_me) = (sid(0, 1), sid(1, 1), sid(0, 2), sid(1, 3));
    let mut sim = Sim::new(2);
    sim.add_user(BOB);
    sim.create_group(a1, ALICE, None);
    sim.attach(b1, BOB);
    sim.attach(b2, BOB);
    sim.attach_me(b_me, BOB);
    sim.clear();
    sim.now = UnixMillis(T0.0 + 1_000);

    sim.run(GROUP, leave(b1, BOB, "u", true));
    let ok = json!({"ctrl": {"id": "u", "topic": GROUP, "code": 200, "text": "ok", "ts": "2025-01-02T03:04:06Z"}});
    assert_eq!(sim.take(b1), [Rec::Frame(ok), Rec::Detached(GROUP.into())]);
    let evicted = json!({"ctrl": {"topic": GROUP, "params": {"unsub": true}, "code": 205, "text": "evicted", "ts": "2025-01-02T03:04:06Z"}});
    assert_eq!(
        sim.take(b2),
        [Rec::Frame(evicted), Rec::Detached(GROUP.into())]
    );
    assert_eq!(
        pres_of(sim.frames(a1), &["on", "off"]),
        [json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "off"}})]
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1);
    assert_eq!(sim.stored_sub(BOB).deleted, Some(sim.now));
    // The user's `me` learns the subscription is gone.
    let gone = pres_of(sim.frames(b_me), &["gone"]);
    assert_eq!(
        gone,
        [json!({"pres": {"topic": "me", "src": GROUP, "what": "gone"}})]
    );

    // A deleted subscriber is no longer notified of messages.
    sim.publish(a1, ALICE, None, "\"after\"");
    assert!(sim.take(b_me).is_empty());
    assert!(sim.take(b1).is_empty() && sim.take(b2).is_empty());
    // Re-subscribing creates it again with the old given, reported as new.
    sim.run(GROUP, join(b1, BOB, GROUP, Some("again")));
    let f = sim.frames(b1);
    assert_eq!(ctrl(&f[0], 200, "ok")["params"]["acs"]["given"], "JRWPS");
    assert_eq!(sim.stored_sub(BOB).deleted, None);
}

#[test]
fn the_owner_cannot_unsubscribe_and_me_cannot_be_left_for_good() {
    let a1 = sid(0, 1);
    let mut sim = Sim::new(1);
    sim.add_user(ALICE);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    sim.run(GROUP, leave(a1, ALICE, "u", true));
    assert_eq!(
        sim.take(a1),
        [Rec::Frame(sim_ctrl_frame(403, "permission denied", "u"))]
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1, "still attached");
    assert_eq!(sim.stored_sub(ALICE).deleted, None);

    let me = ALICE.usr();
    sim.attach_me(a1, ALICE);
    sim.clear();
    sim.run(
        &me,
        TopicRequest::Leave {
            hdr: ReqHead {
                req: rq(a1, ALICE),
                id: Some("m".into()),
                as_seen: "me".into(),
            },
            unsub: true,
        },
    );
    let f = sim.frames(a1);
    let c = ctrl(&f[0], 403, "permission denied");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("m"), Some("me"))
    );
    assert_eq!(sim.topic(&me).n_attached(), 1);
}

#[test]
fn an_empty_topic_is_idle_and_reloading_restores_its_seq() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    for i in 0..3 {
        sim.publish(b1, BOB, None, &format!("\"{i}\""));
    }
    assert!(!sim.topic(GROUP).is_idle());
    sim.run(GROUP, TopicRequest::Detach { sid: a1 });
    sim.run(GROUP, leave(b1, BOB, "l", false));
    assert!(sim.topic(GROUP).is_idle());
    assert_eq!(sim.topic(GROUP).n_attached(), 0);

    sim.topics.remove(GROUP);
    assert!(sim.load(GROUP));
    let t = sim.topic(GROUP);
    assert_eq!(t.seq, 3);
    assert_eq!(t.touched(), Some(T0));
    assert_eq!(t.members.len(), 2);
    assert!(t.members.values().all(|m| m.online == 0));
    assert!(t.is_idle());
    sim.clear();
    sim.attach(a1, ALICE);
    sim.publish(a1, ALICE, Some("p"), "\"four\"");
    let f = sim.frames(a1);
    assert_eq!(ctrl(&f[1], 202, "accepted")["params"]["seq"], 4);
    assert_eq!(data_seqs(&f), [4]);
    assert!(!sim.load("grpNoSuchGroup1"));
    assert!(!sim.load("p2pNotHostedHere"));
}
