//! Adding a member (`{set sub:{user}}`): the inviter learns the new member's description.

use serde_json::json;

use super::sim::*;

#[test]
fn the_inviter_gets_the_new_members_public_after_the_ctrl() {
    let (a1, a2) = (sid(0, 1), sid(1, 2));
    let mut sim = Sim::new(2);
    sim.add_user(CAROL);
    sim.create_group(a1, ALICE, None);
    sim.attach(a2, ALICE);
    sim.clear();
    sim.run(
        GROUP,
        set_req(a1, ALICE, "i", json!({"sub": {"user": CAROL.usr()}})),
    );
    let f = sim.frames(a1);
    assert_eq!(f.len(), 2, "{f:?}");
    let c = ctrl(&f[0], 200, "ok");
    assert_eq!(c["params"]["user"], CAROL.usr());
    let meta = &f[1]["meta"];
    assert!(
        meta.get("id").is_none(),
        "no id: it would settle the request's promise"
    );
    assert_eq!(meta["topic"], GROUP);
    let sub = &meta["sub"][0];
    assert_eq!(sub["user"], CAROL.usr());
    assert_eq!(sub["public"], json!({"fn": CAROL.usr()}));
    assert_eq!(sub["acs"], c["params"]["acs"]);
    // The inviter's other session learns from `{pres acs}` (and asks for the member itself).
    let other = sim.frames(a2);
    assert!(other.iter().all(|f| f.get("meta").is_none()), "{other:?}");
    assert_eq!(pres_of(other, &["acs"]).len(), 1);

    // Changing an existing member's mode sends no description.
    sim.run(
        GROUP,
        set_req(
            a1,
            ALICE,
            "m",
            json!({"sub": {"user": CAROL.usr(), "mode": "JRW"}}),
        ),
    );
    let f = sim.frames(a1);
    assert_eq!(f.len(), 1, "{f:?}");
    ctrl(&f[0], 200, "ok");
}
