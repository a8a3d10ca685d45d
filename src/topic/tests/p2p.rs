//! P2P topics: each side sees the conversation under the peer's name, and the peer is told on `me`.

use super::sim::*;
use crate::topic::*;

#[test]
fn p2p_topics_are_named_by_the_peer_and_announced_to_it() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.add_user(ALICE);
    sim.add_user(BOB);
    sim.attach_me(b1, BOB);
    sim.clear();
    let name = crate::routing::p2p_topic(ALICE, BOB);
    assert!(
        sim.load(&name),
        "a P2P topic between two users loads before it exists"
    );
    sim.req(&name, join_as(a1, ALICE, &BOB.usr(), Some("s")));
    assert!(
        !sim.inbox.contains_key(&a1),
        "acknowledged only once stored"
    );
    sim.settle();
    let recs = sim.take(a1);
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 200, "ok");
    assert_eq!(
        c["topic"],
        BOB.usr(),
        "the reply names the peer, never p2p…"
    );
    assert_eq!(c["params"]["acs"]["mode"], "JRWPA");
    // Bob learns of the conversation on `me`, named by Alice's id.
    let acs = pres_of(sim.frames(b1), &["acs"]);
    assert_eq!(acs.len(), 1, "{acs:?}");
    assert_eq!(acs[0]["pres"]["src"], ALICE.usr());
    assert_eq!(acs[0]["pres"]["dacs"]["given"], "JRWPA");
    // Bob attaches; a message reaches each side under the other's name.
    sim.run(&name, join_as(b1, BOB, &ALICE.usr(), Some("t")));
    sim.clear();
    let mut p = publish(a1, ALICE, Some("p"), r#""hi bob""#);
    if let TopicRequest::Publish {
        hdr: ReqHead { as_seen, .. },
        ..
    } = &mut p
    {
        *as_seen = BOB.usr();
    }
    sim.run(&name, p);
    let to_bob: Vec<_> = sim
        .frames(b1)
        .into_iter()
        .filter(|f| f.get("data").is_some())
        .collect();
    let to_alice: Vec<_> = sim
        .frames(a1)
        .into_iter()
        .filter(|f| f.get("data").is_some())
        .collect();
    assert_eq!(to_bob[0]["data"]["topic"], ALICE.usr());
    assert_eq!(to_alice[0]["data"]["topic"], BOB.usr());
    for v in acs
        .iter()
        .chain(&to_bob)
        .chain(&to_alice)
        .chain(std::iter::once(f))
    {
        assert!(
            !v.to_string().contains("\"p2p"),
            "internal name leaked: {v}"
        );
    }
}

#[test]
fn new_p2p_subscriptions_take_the_reference_default_access() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.add_user(ALICE);
    sim.add_user(BOB); // defacs.auth JRWPAS, as a user who gave none at sign-up
    let name = crate::routing::p2p_topic(ALICE, BOB);
    assert!(sim.load(&name));
    sim.run(&name, join_as(a1, ALICE, &BOB.usr(), Some("s")));
    let modes = |sim: &Sim, u: UserId| {
        let s = sim.store.sub(&name, u).unwrap().expect("stored");
        (s.want.to_string(), s.given.to_string())
    };
    // Alice's given is Bob's default in full; her want is what she gives Bob.
    assert_eq!(modes(&sim, ALICE), ("JRWPA".into(), "JRWPAS".into()));
    // Bob's given is Alice's default masked to the P2P mode; his want his own, masked.
    assert_eq!(modes(&sim, BOB), ("JRWPA".into(), "JRWPA".into()));

    // What the requester gives the peer (`set.desc.defacs.auth`) is also her own want.
    let mut sim = Sim::new(2);
    sim.add_user(ALICE);
    sim.add_user(BOB);
    assert!(sim.load(&name));
    let mut j = join_as(a1, ALICE, &BOB.usr(), Some("s"));
    if let TopicRequest::Join { set, .. } = &mut j {
        *set = Some(set_query(
            serde_json::json!({"desc": {"defacs": {"auth": "JRWS"}}}),
        ));
    }
    sim.run(&name, j);
    assert_eq!(modes(&sim, BOB).1, "JRWA", "masked to JRWPA, with A");
    assert_eq!(modes(&sim, ALICE), ("JRWA".into(), "JRWPAS".into()));
    // Bob joins his side: nothing changes.
    sim.run(&name, join_as(b1, BOB, &ALICE.usr(), Some("t")));
    assert_eq!(modes(&sim, BOB), ("JRWPA".into(), "JRWA".into()));
}
