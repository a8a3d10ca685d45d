//! `fnd`: the query stored in `private` is used by sessions without one of their own, and
//! survives a reload.

use serde_json::json;

use super::sim::*;
use crate::topic::*;

fn fnd_name(uid: UserId) -> String {
    format!("fnd{}", &uid.usr()[3..])
}

fn on_fnd(mut r: TopicRequest) -> TopicRequest {
    match &mut r {
        TopicRequest::Set { hdr, .. } | TopicRequest::Get { hdr, .. } => hdr.as_seen = "fnd".into(),
        _ => {}
    }
    r
}

/// The users found in `sid`'s frames (`{meta sub}` items).
fn found(sim: &mut Sim, sid: SessionId) -> Vec<String> {
    sim.frames(sid)
        .iter()
        .filter_map(|f| f["meta"]["sub"].as_array().cloned())
        .flatten()
        .filter_map(|s| s["user"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_stored_private_query_is_used_when_the_session_has_none() {
    let mut sim = Sim::new(2);
    sim.add_user(ALICE);
    sim.add_user(BOB);
    // Bob is findable by a tag.
    let mut bob = sim.store.user(BOB).unwrap().unwrap();
    bob.tags = vec!["chess".into()];
    sim.write(vec![crate::store::WriteOp::PatchUser(
        crate::store::UserPatch::profile(&bob),
    )]);
    let fnd = fnd_name(ALICE);
    let (a1, a2, a3) = (sid(0, 1), sid(1, 2), sid(0, 3));
    assert!(sim.load(&fnd));
    for s in [a1, a2] {
        sim.run(&fnd, join(s, ALICE, "fnd", Some("j")));
    }
    sim.clear();

    // Nothing to search with yet.
    sim.run(&fnd, on_fnd(get(a1, ALICE, "g", json!({"what": "sub"}))));
    assert_eq!(first_ctrl(&mut sim, a1).0, 204);

    sim.req(
        &fnd,
        on_fnd(set_req(
            a1,
            ALICE,
            "s",
            json!({"desc": {"private": "chess"}}),
        )),
    );
    assert!(sim.frames(a1).is_empty(), "answered once stored");
    sim.settle();
    assert_eq!(first_ctrl(&mut sim, a1), (200, "ok".into()));
    let row = sim
        .store
        .sub(&fnd, ALICE)
        .unwrap()
        .expect("stored in the fnd subscription");
    assert_eq!(row.private.as_deref(), Some("\"chess\""));

    // Both sessions search with it; the desc shows it.
    for s in [a1, a2] {
        sim.run(&fnd, on_fnd(get(s, ALICE, "g", json!({"what": "sub"}))));
        assert_eq!(found(&mut sim, s), [BOB.usr()]);
    }
    sim.run(&fnd, on_fnd(get(a1, ALICE, "d", json!({"what": "desc"}))));
    assert_eq!(sim.frames(a1)[0]["meta"]["desc"]["private"], "chess");

    // A session's own query has priority.
    sim.run(
        &fnd,
        on_fnd(set_req(
            a2,
            ALICE,
            "q",
            json!({"desc": {"public": "nomatch"}}),
        )),
    );
    sim.clear();
    sim.run(&fnd, on_fnd(get(a2, ALICE, "g", json!({"what": "sub"}))));
    assert_eq!(first_ctrl(&mut sim, a2).0, 204);

    // The same value again: 304.
    sim.run(
        &fnd,
        on_fnd(set_req(
            a1,
            ALICE,
            "s2",
            json!({"desc": {"private": "chess"}}),
        )),
    );
    assert_eq!(first_ctrl(&mut sim, a1).0, 304);

    // Reloaded: the stored query is still there.
    sim.topics.remove(&fnd);
    assert!(sim.load(&fnd));
    sim.run(&fnd, join(a3, ALICE, "fnd", Some("j")));
    sim.clear();
    sim.run(&fnd, on_fnd(get(a3, ALICE, "g", json!({"what": "sub"}))));
    assert_eq!(found(&mut sim, a3), [BOB.usr()]);
}
