//! Background sessions (`{hi bkg:true}`): attached without being counted online or announced,
//! until `TopicRequest::Foreground` arrives; one that leaves first announces nothing.

use serde_json::json;

use super::sim::*;
use crate::topic::*;

fn bkg_join(sid: crate::ids::SessionId, uid: crate::ids::UserId, as_seen: &str) -> TopicRequest {
    let mut r = join(sid, uid, as_seen, None);
    if let TopicRequest::Join { bkg, .. } = &mut r {
        *bkg = true;
    }
    r
}

fn foreground(sid: crate::ids::SessionId) -> TopicRequest {
    TopicRequest::Foreground {
        sid,
        ua: "bkg-ua/1".into(),
    }
}

#[test]
fn a_background_session_is_announced_only_once_foreground() {
    let (a1, b1, b2) = (sid(0, 1), sid(1, 1), sid(1, 2));
    let mut sim = Sim::new(2);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    let on = json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "on"}});
    let off = json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "off"}});

    // Attached, answered as usual, but neither counted nor announced.
    sim.run(GROUP, bkg_join(b1, BOB, GROUP));
    assert!(sim.topic(GROUP).attached.contains_key(&b1));
    assert_eq!(sim.topic(GROUP).members[&BOB].online, 0);
    assert!(pres_of(sim.frames(a1), &["on", "off"]).is_empty());
    assert!(!sim.frames(b1).is_empty(), "the join is answered");

    // Foreground: counted and announced once; a repeated request changes nothing.
    sim.run(GROUP, foreground(b1));
    assert_eq!(sim.topic(GROUP).members[&BOB].online, 1);
    assert_eq!(
        pres_of(sim.frames(a1), &["on", "off"]),
        std::slice::from_ref(&on)
    );
    sim.run(GROUP, foreground(b1));
    assert_eq!(sim.topic(GROUP).members[&BOB].online, 1);
    assert!(sim.frames(a1).is_empty());
    sim.run(GROUP, TopicRequest::Detach { sid: b1 });
    assert_eq!(pres_of(sim.frames(a1), &["on", "off"]), [off]);

    // A background session that leaves before turning foreground announces nothing.
    sim.run(GROUP, bkg_join(b2, BOB, GROUP));
    sim.run(GROUP, leave(b2, BOB, "l", false));
    assert!(pres_of(sim.frames(a1), &["on", "off"]).is_empty());
    assert_eq!(sim.topic(GROUP).members[&BOB].online, 0);
    // Foreground for a session no longer attached is ignored.
    sim.run(GROUP, foreground(b2));
    assert!(sim.frames(a1).is_empty());

    // A foreground session of the same user is unaffected by a background one beside it.
    sim.attach(b1, BOB);
    assert_eq!(pres_of(sim.frames(a1), &["on", "off"]), [on]);
    sim.run(GROUP, bkg_join(b2, BOB, GROUP));
    sim.run(GROUP, TopicRequest::Detach { sid: b2 });
    assert!(pres_of(sim.frames(a1), &["on", "off"]).is_empty());
    assert_eq!(sim.topic(GROUP).members[&BOB].online, 1);
}

#[test]
fn a_join_waiting_for_its_write_completes_as_foreground_after_the_request() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.add_user(BOB);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    // Bob is not a member yet: his join writes a subscription; the foreground request
    // arrives while that write is pending.
    sim.req(GROUP, bkg_join(b1, BOB, GROUP));
    sim.req(GROUP, foreground(b1));
    sim.settle();
    assert!(sim.topic(GROUP).attached.contains_key(&b1));
    assert_eq!(sim.topic(GROUP).members[&BOB].online, 1);
    let on = json!({"pres": {"topic": GROUP, "src": BOB.usr(), "what": "on"}});
    assert_eq!(pres_of(sim.frames(a1), &["on", "off"]), [on]);
}

#[test]
fn me_announces_the_user_and_learns_the_user_agent_only_once_foreground() {
    let b_me = sid(1, 1);
    let mut sim = Sim::new(2);
    sim.add_user(BOB);
    let me = BOB.usr();
    assert!(sim.load(&me));
    sim.run(&me, bkg_join(b_me, BOB, "me"));
    let t = sim.topic(&me);
    assert!(t.attached.contains_key(&b_me));
    assert!(
        !t.announced,
        "a background session does not bring the user online"
    );
    assert!(t.uas.is_empty(), "nor set the user agent");
    sim.run(&me, foreground(b_me));
    let t = sim.topic(&me);
    assert!(t.announced);
    assert_eq!(t.uas, vec![(b_me, "bkg-ua/1".into())]);
}

#[test]
fn me_left_by_a_background_session_unloads_without_a_word() {
    let b_me = sid(1, 1);
    let mut sim = Sim::new(2);
    sim.add_user(BOB);
    let me = BOB.usr();
    assert!(sim.load(&me));
    sim.run(&me, bkg_join(b_me, BOB, "me"));
    sim.run(&me, TopicRequest::Detach { sid: b_me });
    let mut out = Vec::new();
    let mut cx = TopicCx::new(sim.now, &sim.limits, &mut out);
    sim.topics
        .get_mut(&me)
        .expect("me loaded")
        .on_unload(&mut cx);
    assert!(
        out.is_empty(),
        "no off to contacts, no last-seen written: {out:?}"
    );
}
