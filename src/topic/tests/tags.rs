//! `{set tags}`: an empty (or wholly invalid) list changes nothing and answers 304, on `me`
//! and on a group, as the reference's `replySetTags`.

use serde_json::json;

use super::sim::*;
use crate::topic::*;

#[test]
fn an_empty_tag_list_is_not_modified_and_keeps_the_tags() {
    let a1 = sid(0, 1);
    let mut sim = Sim::new(2);
    sim.create_group(a1, ALICE, Some(json!({"tags": ["chess", "go"]})));
    sim.clear();
    for tags in [json!([]), json!(["", "!"])] {
        sim.run(GROUP, set_req(a1, ALICE, "t", json!({ "tags": tags })));
        assert_eq!(
            first_ctrl(&mut sim, a1),
            (304, "not modified".into()),
            "{tags}"
        );
        assert_eq!(
            sim.store.topic(GROUP).unwrap().unwrap().tags,
            ["chess", "go"]
        );
    }
    // A member who is not the owner is still refused first.
    let b1 = sid(1, 1);
    sim.attach(b1, BOB);
    sim.clear();
    sim.run(GROUP, set_req(b1, BOB, "t", json!({"tags": []})));
    assert_eq!(first_ctrl(&mut sim, b1).0, 403);

    // On `me`.
    sim.add_user(CAROL);
    let c1 = sid(1, 3);
    sim.attach_me(c1, CAROL);
    let on_me = |id: &str, tags: serde_json::Value| {
        let mut r = set_req(c1, CAROL, id, json!({ "tags": tags }));
        if let TopicRequest::Set { hdr, .. } = &mut r {
            hdr.as_seen = "me".into();
        }
        r
    };
    let me = CAROL.usr();
    sim.run(&me, on_me("a", json!(["chess"])));
    sim.clear();
    sim.run(&me, on_me("b", json!([])));
    assert_eq!(first_ctrl(&mut sim, c1), (304, "not modified".into()));
    assert_eq!(sim.store.user(CAROL).unwrap().unwrap().tags, ["chess"]);
}
