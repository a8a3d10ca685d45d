//! Presence: `{pres msg}` to members' `me` sessions, and on/off following a user's first and last
//! session.

use serde_json::json;

use super::sim::*;
use crate::topic::*;

#[test]
fn pres_msg_goes_to_members_me_sessions_not_attached_to_the_topic() {
    let (a1, b_me, b_both, c_me) = (sid(0, 1), sid(1, 1), sid(1, 2), sid(0, 3));
    let mut sim = Sim::new(2);
    for u in [ALICE, BOB, CAROL] {
        sim.add_user(u);
    }
    sim.create_group(a1, ALICE, None);
    sim.attach(b_both, BOB);
    sim.attach(sid(0, 9), CAROL);
    sim.run(GROUP, TopicRequest::Detach { sid: sid(0, 9) });
    sim.attach_me(b_me, BOB);
    sim.attach_me(b_both, BOB);
    sim.attach_me(c_me, CAROL);
    sim.clear();

    sim.publish(a1, ALICE, Some("p"), "\"hi\"");
    let pres =
        json!({"pres": {"topic": "me", "src": GROUP, "what": "msg", "seq": 1, "act": ALICE.usr()}});
    // Bob's session only on `me` gets the notification; the one attached to the group gets data.
    assert_eq!(sim.frames(b_me), vec![pres.clone()]);
    let f = sim.frames(b_both);
    assert_eq!((f.len(), data_seqs(&f)), (1, vec![1]), "{f:?}");
    // Carol is a member with no session on the group.
    assert_eq!(sim.frames(c_me), [pres]);
    // Alice's `me` is not loaded: nothing for her beyond the ack and the data.
    assert_eq!(sim.frames(a1).len(), 2);

    // The publisher's own sessions elsewhere are notified too, without `act` (it is them).
    let a_me = sid(1, 4);
    sim.attach_me(a_me, ALICE);
    sim.attach_me(a1, ALICE);
    sim.clear();
    sim.publish(a1, ALICE, None, "\"mine\"");
    assert_eq!(
        sim.frames(a_me),
        [json!({"pres": {"topic": "me", "src": GROUP, "what": "msg", "seq": 2}})]
    );
    assert_eq!(
        data_seqs(&sim.frames(a1)),
        [2],
        "attached to the group: data only"
    );
    assert_eq!(sim.frames(b_me)[0]["pres"]["act"], ALICE.usr());

    // A member without P gets no notification.
    sim.clear();
    if let Some(m) = sim
        .topics
        .get_mut(GROUP)
        .and_then(|t| t.members.get_mut(&CAROL))
    {
        m.sub.want = AccessMode(AccessMode::JOIN | AccessMode::READ);
    }
    sim.publish(a1, ALICE, None, "\"again\"");
    assert!(sim.frames(c_me).is_empty());
    assert_eq!(sim.frames(b_me).len(), 1);
}

#[test]
fn presence_on_and_off_follow_the_first_and_last_session_of_a_user() {
    let (a1, b1, b2) = (sid(0, 1), sid(1, 1), sid(2, 1));
    let mut sim = Sim::new(3);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    let on = json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "on"}});
    let off = json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "off"}});

    sim.attach(b1, BOB);
    let f = sim.frames(a1);
    assert_eq!(pres_of(f.clone(), &["on", "off"]), vec![on.clone()]);
    assert!(f.iter().all(|v| v.get("pres").is_some()), "{f:?}");
    let f = sim.frames(b1);
    assert!(
        f.iter().all(|v| v.get("pres").is_none()),
        "no pres about oneself: {f:?}"
    );
    sim.attach(b2, BOB);
    assert!(
        pres_of(sim.frames(a1), &["on", "off"]).is_empty(),
        "the second session is not announced"
    );
    sim.run(GROUP, TopicRequest::Detach { sid: b1 });
    assert!(
        pres_of(sim.frames(a1), &["on", "off"]).is_empty(),
        "one session remains"
    );
    assert!(sim.take(b1).is_empty(), "a silent detach replies nothing");
    sim.run(GROUP, leave(b2, BOB, "l", false));
    assert_eq!(pres_of(sim.frames(a1), &["on", "off"]), vec![off.clone()]);
    // And back.
    sim.attach(b1, BOB);
    assert_eq!(pres_of(sim.frames(a1), &["on", "off"]), [on]);
    // Members without P are not told.
    if let Some(m) = sim
        .topics
        .get_mut(GROUP)
        .and_then(|t| t.members.get_mut(&ALICE))
    {
        m.sub.want = m.sub.want.without(AccessMode::PRES);
    }
    sim.run(GROUP, TopicRequest::Detach { sid: b1 });
    assert!(pres_of(sim.frames(a1), &["on", "off"]).is_empty());
}
