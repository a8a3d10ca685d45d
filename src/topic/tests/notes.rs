//! `{note}`: typing and data notes to other sessions, read/recv receipts whose markers only rise,
//! and the attachment gate.

use serde_json::json;

use super::sim::*;
use crate::topic::*;

#[test]
fn typing_notes_reach_other_users_only() {
    let (a1, a2, b1) = (sid(0, 1), sid(1, 1), sid(1, 2));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.attach(a2, ALICE);
    sim.clear();
    for what in ["kp", "kpa", "kpv"] {
        sim.run(GROUP, note(a1, ALICE, what, 0));
        assert_eq!(
            sim.frames(b1),
            [json!({"info": {"topic": GROUP, "from": ALICE.usr(), "what": what}})]
        );
        assert!(
            sim.frames(a1).is_empty() && sim.frames(a2).is_empty(),
            "{what}"
        );
    }
    // Generic data notes carry their payload and event to every other session.
    let mut n = note(b1, BOB, "data", 0);
    if let TopicRequest::Note { payload, event, .. } = &mut n {
        *payload = Some(raw_json(r#"{"x":1}"#));
        *event = Some("ev".into());
    }
    sim.run(GROUP, n);
    let info = json!({"info": {"topic": GROUP, "from": BOB.usr(), "what": "data", "event": "ev", "payload": {"x": 1}}});
    assert_eq!(sim.frames(a1), vec![info.clone()]);
    assert_eq!(sim.frames(a2), [info]);
    assert!(sim.frames(b1).is_empty());
    assert!(sim.in_flight.is_empty());
}

#[test]
fn receipts_reach_other_sessions_and_markers_only_rise() {
    let (a1, b1, b2) = (sid(0, 1), sid(1, 1), sid(0, 2));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.attach(b2, BOB);
    sim.publish(a1, ALICE, None, "\"1\"");
    sim.publish(a1, ALICE, None, "\"2\"");
    sim.clear();

    sim.run(GROUP, note(b1, BOB, "read", 1));
    let info = json!({"info": {"topic": GROUP, "from": BOB.usr(), "what": "read", "seq": 1}});
    assert_eq!(sim.frames(a1), vec![info.clone()]);
    assert_eq!(
        sim.frames(b2),
        [info],
        "receipts reach the same user's other sessions"
    );
    assert!(sim.frames(b1).is_empty());
    let sub = sim.stored_sub(BOB);
    assert_eq!((sub.read, sub.recv), (1, 1));

    sim.run(GROUP, note(b1, BOB, "recv", 2));
    assert_eq!(sim.frames(a1)[0]["info"]["what"], "recv");
    assert_eq!(sim.frames(b2)[0]["info"]["seq"], 2);
    let sub = sim.stored_sub(BOB);
    assert_eq!((sub.read, sub.recv), (1, 2));

    // Dropped: zero, beyond the last seq, not above the stored marker.
    for (what, seq) in [
        ("read", 0),
        ("read", 3),
        ("read", 1),
        ("recv", 2),
        ("recv", 1),
        ("recv", 99),
    ] {
        sim.run(GROUP, note(b1, BOB, what, seq));
        assert!(
            sim.frames(a1).is_empty() && sim.frames(b2).is_empty(),
            "{what} {seq}"
        );
    }
    let sub = sim.stored_sub(BOB);
    assert_eq!((sub.read, sub.recv), (1, 2));

    sim.run(GROUP, note(b1, BOB, "read", 2));
    assert_eq!(sim.frames(a1).len(), 1);
    let sub = sim.stored_sub(BOB);
    assert_eq!((sub.read, sub.recv), (2, 2));
    // The topic's view agrees with the store.
    sim.run(GROUP, get(b1, BOB, "d", json!({"what": "desc"})));
    let f = sim.frames(b1);
    assert_eq!(
        (
            f[0]["meta"]["desc"]["read"].as_u64(),
            f[0]["meta"]["desc"]["recv"].as_u64()
        ),
        (Some(2), Some(2))
    );
}

#[test]
fn notes_from_a_session_not_attached_must_attach_first_without_id() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.run(GROUP, note(sid(0, 9), CAROL, "read", 1));
    let f = sim.frames(sid(0, 9));
    let c = ctrl(&f[0], 409, "must attach first");
    assert!(c.get("id").is_none());
    assert_eq!(c["topic"], GROUP);
}

/// Alice owns the group (on `a1`), Bob is a member attached on `b1` and with a session only on
/// `me` (`b_me`), Carol a member with a session only on `me` (`c_me`); Alice also has
/// `a_me`, only on `me`. Two messages published.
fn group_with_me_sessions() -> (Sim, [SessionId; 5]) {
    let (a1, b1, b_me, c_me, a_me) = (sid(0, 1), sid(1, 1), sid(1, 2), sid(0, 3), sid(1, 4));
    let mut sim = Sim::new(2);
    for u in [ALICE, BOB, CAROL] {
        sim.add_user(u);
    }
    sim.create_group(a1, ALICE, None);
    sim.attach(b1, BOB);
    sim.attach(sid(0, 9), CAROL);
    sim.run(GROUP, TopicRequest::Detach { sid: sid(0, 9) });
    sim.attach_me(b_me, BOB);
    sim.attach_me(c_me, CAROL);
    sim.attach_me(a_me, ALICE);
    sim.publish(a1, ALICE, None, "\"1\"");
    sim.publish(a1, ALICE, None, "\"2\"");
    sim.clear();
    (sim, [a1, b1, b_me, c_me, a_me])
}

#[test]
fn recv_from_a_member_not_attached_is_stored_and_told_to_attached_members() {
    let (mut sim, [a1, b1, b_me, c_me, a_me]) = group_with_me_sessions();
    // Carol's phone fetched the messages after a push and reports them delivered from a
    // session that is not attached to the group (`c_phone`).
    let c_phone = sid(1, 7);
    sim.run(GROUP, note(c_phone, CAROL, "recv", 2));
    assert_eq!(
        sim.frames(c_phone),
        Vec::<serde_json::Value>::new(),
        "no reply to a note"
    );
    let sub = sim.stored_sub(CAROL);
    assert_eq!((sub.read, sub.recv), (0, 2), "the marker is stored");
    let info = json!({"info": {"topic": GROUP, "from": CAROL.usr(), "what": "recv", "seq": 2}});
    assert_eq!(sim.frames(a1), vec![info.clone()]);
    assert_eq!(sim.frames(b1), [info]);
    // On `me`: Carol's other session gets the `{pres recv}` and the `{info}`; members not
    // attached get the `{info}` with `src`.
    let on_me = json!({"info": {"topic": "me", "src": GROUP, "from": CAROL.usr(), "what": "recv", "seq": 2}});
    assert_eq!(
        sim.frames(c_me),
        [
            json!({"pres": {"topic": "me", "src": GROUP, "what": "recv", "seq": 2}}),
            on_me.clone()
        ]
    );
    assert_eq!(sim.frames(a_me), vec![on_me.clone()]);
    // Bob's session on `me` is not attached to the group (his `b1` is, and got the `{info}`).
    assert_eq!(sim.frames(b_me), [on_me]);
    // A stale receipt is dropped as from an attached session.
    sim.run(GROUP, note(c_phone, CAROL, "recv", 1));
    assert!(sim.frames(a1).is_empty() && sim.frames(c_phone).is_empty());

    // From a user who is not a member: dropped silently, nothing stored, no reply.
    let stranger = sid(0, 8);
    sim.run(GROUP, note(stranger, UserId(0x5555), "recv", 2));
    assert!(sim.frames(stranger).is_empty());
    assert!(sim.frames(a1).is_empty());
    assert!(sim.store.sub(GROUP, UserId(0x5555)).unwrap().is_none());
}

#[test]
fn read_and_typing_reach_members_not_attached_on_me() {
    let (mut sim, [a1, b1, b_me, c_me, a_me]) = group_with_me_sessions();
    sim.run(GROUP, note(b1, BOB, "kp", 0));
    let kp = json!({"info": {"topic": "me", "src": GROUP, "from": BOB.usr(), "what": "kp"}});
    assert_eq!(sim.frames(c_me), vec![kp.clone()]);
    assert_eq!(sim.frames(a_me), [kp]);
    assert!(
        sim.frames(b_me).is_empty(),
        "typing never reaches the typist's own sessions"
    );
    assert_eq!(
        sim.frames(a1).len(),
        1,
        "attached: the topic's own {{info}}"
    );

    sim.run(GROUP, note(b1, BOB, "read", 2));
    let read =
        json!({"info": {"topic": "me", "src": GROUP, "from": BOB.usr(), "what": "read", "seq": 2}});
    assert_eq!(sim.frames(c_me), vec![read.clone()]);
    assert_eq!(sim.frames(a_me), vec![read.clone()]);
    // Bob's own session on `me` sees his receipt as `{pres read}` and `{info}`.
    assert_eq!(
        sim.frames(b_me),
        [
            json!({"pres": {"topic": "me", "src": GROUP, "what": "read", "seq": 2}}),
            read
        ]
    );

    // Members without P on the topic are not told.
    if let Some(m) = sim
        .topics
        .get_mut(GROUP)
        .and_then(|t| t.members.get_mut(&CAROL))
    {
        m.sub.want = AccessMode(AccessMode::JOIN | AccessMode::READ);
    }
    sim.run(GROUP, note(b1, BOB, "kp", 0));
    assert!(sim.frames(c_me).is_empty());
    assert_eq!(sim.frames(a_me).len(), 1);
}

#[test]
fn p2p_notes_on_me_name_the_conversation_by_the_peer() {
    let (a1, b_me) = (sid(0, 1), sid(1, 2));
    let mut sim = Sim::new(2);
    sim.add_user(ALICE);
    sim.add_user(BOB);
    let p2p = crate::routing::p2p_topic(ALICE, BOB);
    assert!(sim.load(&p2p));
    sim.run(&p2p, join_as(a1, ALICE, &BOB.usr(), Some("s")));
    sim.attach_me(b_me, BOB);
    sim.clear();
    let mut n = note(a1, ALICE, "kp", 0);
    if let TopicRequest::Note { hdr, .. } = &mut n {
        hdr.as_seen = BOB.usr();
    }
    sim.run(&p2p, n);
    assert_eq!(
        sim.frames(b_me),
        [json!({"info": {"topic": "me", "src": ALICE.usr(), "from": ALICE.usr(), "what": "kp"}})]
    );
}
