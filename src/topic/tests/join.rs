//! Joining and creating groups: creation replies after the write, default and requested access,
//! refusals, and joins that never attach.

use serde_json::json;

use super::sim::*;
use crate::routing::CreateSpec;
use crate::topic::*;

#[test]
fn creating_a_group_replies_only_after_the_write_in_reference_order() {
    let mut sim = Sim::new(2);
    let a1 = sid(0, 1);
    sim.topics
        .insert(GROUP.to_owned(), Topic::new_group(GROUP, 2));
    let mut r = join(a1, ALICE, "newG", Some("c1"));
    if let TopicRequest::Join {
        create, set, get, ..
    } = &mut r
    {
        *create = Some(CreateSpec {
            tmpname: "newG".into(),
            is_chan: false,
        });
        *set = Some(set_query(
            json!({"desc": {"public": {"fn": "Group"}, "private": "mine"}, "tags": ["Tag1", "tag1", "x"]}),
        ));
        *get = Some(get_query(json!({"what": "desc sub"})));
    }
    sim.now = UnixMillis(T0.0 + 5);
    sim.req(GROUP, r);
    assert!(sim.inbox.is_empty(), "nothing before the write completes");
    assert_eq!(sim.in_flight.len(), 1);
    assert!(
        !sim.topic(GROUP).is_idle(),
        "a write in flight keeps the topic"
    );
    assert_eq!(sim.store.topic(GROUP).unwrap(), None);
    sim.settle();

    let recs = sim.take(a1);
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert_eq!(recs[0], Rec::Attached(GROUP.into()));
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 200, "ok");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("c1"), Some(GROUP))
    );
    assert_eq!(c["ts"], "2025-01-02T03:04:05.005Z", "ts = creation time");
    assert_eq!(c["params"]["tmpname"], "newG");
    assert_eq!(
        c["params"]["acs"],
        json!({"want": "JRWPASDO", "given": "JRWPASDO", "mode": "JRWPASDO"})
    );
    let Rec::Frame(f) = &recs[2] else {
        panic!("{recs:?}")
    };
    let m = &f["meta"];
    assert_eq!(
        (m["id"].as_str(), m["topic"].as_str()),
        (Some("c1"), Some(GROUP))
    );
    assert_eq!(m["desc"]["defacs"], json!({"auth": "JRWPS", "anon": "N"}));
    assert_eq!(m["desc"]["acs"]["mode"], "JRWPASDO");
    assert_eq!(m["desc"]["public"], json!({"fn": "Group"}));
    assert_eq!(m["desc"]["private"], "mine");
    assert_eq!(m["desc"]["subcnt"], 1);
    assert_eq!(m["desc"]["online"], true);
    let Rec::Frame(f) = &recs[3] else {
        panic!("{recs:?}")
    };
    let subs = f["meta"]["sub"].as_array().expect("meta sub");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["user"], ALICE.usr());
    assert_eq!(subs[0]["online"], true);

    let rec = sim.store.topic(GROUP).unwrap().expect("topic stored");
    assert_eq!(
        (rec.owner, rec.tags.clone()),
        (Some(ALICE), vec!["tag1".to_owned()])
    );
    let sub = sim.stored_sub(ALICE);
    assert_eq!(
        (sub.want, sub.given),
        (AccessMode::OWNER_FULL, AccessMode::OWNER_FULL)
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1);
}

#[test]
fn the_owners_requested_mode_keeps_join_and_owner() {
    let mut sim = Sim::new(1);
    sim.create_group(
        sid(0, 1),
        ALICE,
        Some(json!({"sub": {"mode": "R"}, "desc": {"defacs": {"auth": "JR", "anon": "N"}}})),
    );
    let f = sim.frames(sid(0, 1));
    assert_eq!(
        ctrl(&f[0], 200, "ok")["params"]["acs"],
        json!({"want": "JRO", "given": "JRWPASDO", "mode": "JRO"})
    );
    assert_eq!(
        sim.store.topic(GROUP).unwrap().unwrap().access.auth,
        AccessMode(AccessMode::JOIN | AccessMode::READ)
    );
}

#[test]
fn invalid_creation_parameters_fail_on_the_tmpname() {
    for set in [
        json!({"desc": {"defacs": {"auth": "JRWPO"}}}),
        json!({"desc": {"defacs": {"auth": "XYZ"}}}),
        json!({"sub": {"mode": "Q"}}),
    ] {
        let mut sim = Sim::new(1);
        sim.create_group(sid(0, 1), ALICE, Some(set.clone()));
        let recs = sim.take(sid(0, 1));
        assert_eq!(recs.len(), 2, "{set}: {recs:?}");
        let Rec::Frame(f) = &recs[0] else {
            panic!("{recs:?}")
        };
        assert_eq!(ctrl(f, 400, "malformed")["topic"], "newG");
        assert_eq!(recs[1], Rec::Detached(GROUP.into()));
        assert!(sim.in_flight.is_empty());
        assert_eq!(sim.store.topic(GROUP).unwrap(), None);
        assert!(sim.topic(GROUP).is_idle());
    }
}

#[test]
fn a_failed_creation_write_is_reported_on_the_tmpname_and_locks_the_topic() {
    let mut sim = Sim::new(1);
    sim.fail_writes = true;
    sim.create_group(sid(0, 1), ALICE, None);
    let recs = sim.take(sid(0, 1));
    assert_eq!(recs.len(), 2, "{recs:?}");
    let Rec::Frame(f) = &recs[0] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 500, "internal error");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("c"), Some("newG"))
    );
    assert_eq!(recs[1], Rec::Detached(GROUP.into()));
    sim.fail_writes = false;
    sim.run(GROUP, join(sid(0, 2), BOB, GROUP, Some("j")));
    let recs = sim.take(sid(0, 2));
    let Rec::Frame(f) = &recs[0] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 503, "locked");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("j"), Some(GROUP))
    );
    assert_eq!(recs[1], Rec::Detached(GROUP.into()));
    assert!(sim.topic(GROUP).is_idle());
}

#[test]
fn a_second_user_joins_with_the_groups_default_access() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    sim.req(GROUP, join(b1, BOB, GROUP, Some("j1")));
    assert!(
        sim.inbox.is_empty(),
        "a new subscription is acknowledged only once stored"
    );
    sim.settle();
    let recs = sim.take(b1);
    assert_eq!(recs[0], Rec::Attached(GROUP.into()));
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 200, "ok");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str()),
        (Some("j1"), Some(GROUP))
    );
    assert_eq!(
        c["params"],
        json!({"acs": {"want": "JRWPS", "given": "JRWPS", "mode": "JRWPS"}})
    );
    assert_eq!(recs.len(), 2);
    let sub = sim.stored_sub(BOB);
    assert_eq!(
        (sub.want, sub.given, sub.deleted),
        (AccessMode::PUBLIC, AccessMode::PUBLIC, None)
    );

    // Re-joining an unchanged subscription needs no write and reports no acs.
    let b2 = sid(1, 2);
    sim.req(GROUP, join(b2, BOB, GROUP, Some("j2")));
    assert!(sim.in_flight.is_empty());
    let recs = sim.take(b2);
    let Rec::Frame(f) = &recs[1] else {
        panic!("{recs:?}")
    };
    assert!(ctrl(f, 200, "ok").get("params").is_none());
    // The same session again: already subscribed, still attached (and told so again: a
    // cluster origin may have lost the first answer).
    sim.run(GROUP, join(b2, BOB, GROUP, Some("j3")));
    assert_eq!(
        sim.take(b2),
        [
            Rec::Frame(sim_ctrl_frame(304, "already subscribed", "j3")),
            Rec::Attached(GROUP.into())
        ]
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 3);
}

#[test]
fn a_user_whose_default_access_is_none_is_refused() {
    // (group defacs, requester level): each lacks J for the requester.
    let cases = [
        (
            Some(json!({"desc": {"defacs": {"auth": "N"}}})),
            AuthLevel::Auth,
        ),
        (None, AuthLevel::Anon),
        (
            Some(json!({"desc": {"defacs": {"auth": "RWP"}}})),
            AuthLevel::Auth,
        ),
    ];
    for (set, level) in cases {
        let mut sim = Sim::new(2);
        sim.create_group(sid(0, 1), ALICE, set.clone());
        sim.clear();
        let mut r = join(sid(1, 1), BOB, GROUP, Some("j"));
        if let TopicRequest::Join {
            hdr: ReqHead { req, .. },
            ..
        } = &mut r
        {
            req.level = level;
        }
        sim.req(GROUP, r);
        assert!(
            sim.in_flight.is_empty(),
            "{set:?}: nothing is stored for a refused join"
        );
        let recs = sim.take(sid(1, 1));
        assert_eq!(recs.len(), 2, "{recs:?}");
        let Rec::Frame(f) = &recs[0] else {
            panic!("{recs:?}")
        };
        let c = ctrl(f, 403, "permission denied");
        assert_eq!(
            (c["id"].as_str(), c["topic"].as_str()),
            (Some("j"), Some(GROUP))
        );
        assert_eq!(recs[1], Rec::Detached(GROUP.into()));
        assert_eq!(sim.store.sub(GROUP, BOB).unwrap(), None);
        assert!(
            sim.take(sid(0, 1)).is_empty(),
            "no presence for a refused join"
        );
    }
}

#[test]
fn the_subscriber_limit_is_a_policy_violation() {
    let mut sim = Sim::new(1);
    sim.limits.max_subscriber_count = 2;
    sim.create_group(sid(0, 1), ALICE, None);
    sim.attach(sid(0, 2), BOB);
    sim.clear();
    sim.run(GROUP, join(sid(0, 3), CAROL, GROUP, Some("j")));
    let f = sim.frames(sid(0, 3));
    assert_eq!(ctrl(&f[0], 422, "policy violation")["id"], "j");
}

#[test]
fn a_session_detached_while_its_join_is_pending_never_attaches() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    sim.req(GROUP, join(b1, BOB, GROUP, Some("j")));
    assert_eq!(sim.in_flight.len(), 1);
    sim.req(GROUP, TopicRequest::Detach { sid: b1 });
    sim.settle();
    assert!(
        sim.take(b1).is_empty(),
        "no reply and no Attached for a session that has gone"
    );
    assert!(
        pres_of(sim.frames(a1), &["on"]).is_empty(),
        "no presence either"
    );
    assert_eq!(sim.topic(GROUP).n_attached(), 1);

    // The same for the creator of a group.
    let mut sim = Sim::new(2);
    sim.topics
        .insert(GROUP.to_owned(), Topic::new_group(GROUP, 2));
    sim.req(GROUP, creation(a1, ALICE, "newG", false));
    sim.req(GROUP, TopicRequest::Detach { sid: a1 });
    assert!(
        sim.topic(GROUP).is_idle(),
        "nothing waits for the write any more"
    );
    sim.settle();
    assert!(sim.take(a1).is_empty());
    assert!(sim.topic(GROUP).is_idle());
}

#[test]
fn a_self_ban_saves_the_subscription_without_attaching() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = Sim::new(2);
    sim.create_group(a1, ALICE, None);
    sim.clear();
    let mut r = join(b1, BOB, GROUP, Some("n"));
    if let TopicRequest::Join { set, .. } = &mut r {
        *set = Some(set_query(json!({"sub": {"mode": "N"}})));
    }
    sim.run(GROUP, r);
    let recs = sim.take(b1);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let Rec::Frame(f) = &recs[0] else {
        panic!("{recs:?}")
    };
    let c = ctrl(f, 200, "ok");
    assert_eq!(
        c["params"]["acs"],
        json!({"want": "N", "given": "JRWPS", "mode": "N"})
    );
    assert_eq!(recs[1], Rec::Detached(GROUP.into()));
    assert_eq!(sim.stored_sub(BOB).want, AccessMode::NONE);
    assert_eq!(sim.topic(GROUP).n_attached(), 1);
    assert!(
        pres_of(sim.frames(a1), &["on"]).is_empty(),
        "no presence for a session that never attached"
    );
}
