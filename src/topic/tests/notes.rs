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
