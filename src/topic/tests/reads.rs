//! Reads as requests: a topic names what it needs from the store and waits for the answers
//! (a store that answers later loses nothing and keeps the order of requests); a contact list
//! costs two reads whatever its length; a credential is claimed by the write itself.

use serde_json::json;

use super::sim::*;
use crate::store::ReadQuery;
use crate::topic::*;

/// `{get me sub}` for a user with many contacts: one contact-list read and one read of the
/// P2P peers, not one read per contact.
#[test]
fn a_contact_list_is_two_reads_whatever_its_length() {
    let mut sim = Sim::new(1);
    sim.add_user(ALICE);
    let peers: Vec<UserId> = (0..12).map(|i| UserId(0x5000 + i)).collect();
    for (i, p) in peers.iter().enumerate() {
        sim.add_user(*p);
        let name = crate::routing::p2p_topic(ALICE, *p);
        assert!(sim.load(&name), "both users exist");
        let s = sid(0, 100 + i as u64);
        sim.run(&name, join_as(s, ALICE, &p.usr(), None));
        assert!(
            sim.topic(&name).attached.contains_key(&s),
            "{:?}",
            sim.take(s)
        );
    }
    let me = ALICE.usr();
    assert!(sim.load(&me));
    sim.run(&me, join(sid(0, 1), ALICE, "me", None));
    sim.clear();
    sim.reads_asked.clear();
    sim.run(&me, get(sid(0, 1), ALICE, "g", json!({"what": "sub"})));
    let f = sim.frames(sid(0, 1));
    let subs = f[0]["meta"]["sub"].as_array().expect("meta sub");
    assert_eq!(subs.len(), 12);
    assert!(
        subs.iter().all(|s| s["public"]["fn"].is_string()),
        "{subs:?}"
    );
    assert_eq!(sim.reads_asked.len(), 2, "{:?}", sim.reads_asked);
    assert!(matches!(sim.reads_asked[0], ReadQuery::Contacts(u) if u == ALICE));
    assert!(matches!(&sim.reads_asked[1], ReadQuery::Users(u) if u.len() == 12));
}

/// With a store that answers later, a `{get data}` waits for its read, and a `{pub}` sent
/// after it waits behind it: the reader gets its page, then the new message, in that order.
#[test]
fn requests_wait_behind_a_read_in_flight_and_keep_their_order() {
    let (a1, b1) = (sid(0, 1), sid(0, 2));
    let mut sim = group_with_alice_and_bob(1, a1, b1);
    sim.publish(a1, ALICE, None, "\"one\"");
    sim.clear();
    sim.defer_reads = true;
    sim.req(GROUP, get(b1, BOB, "g", json!({"what": "data"})));
    assert!(sim.frames(b1).is_empty(), "nothing before the answer");
    assert!(
        !sim.topic(GROUP).is_idle(),
        "a read in flight keeps the topic loaded"
    );
    sim.req(GROUP, publish(a1, ALICE, Some("p"), "\"two\""));
    assert!(
        sim.in_flight.is_empty(),
        "the publish waits behind the read"
    );
    sim.answer_reads();
    sim.settle();
    let f = sim.frames(b1);
    assert_eq!(data_seqs(&f), vec![1, 2], "{f:?}");
    ctrl(&f[1], 208, "delivered");
    assert_eq!(f[2]["data"]["content"], "two");
    let f = sim.frames(a1);
    ctrl(&f[0], 202, "accepted");
}

/// A join's read of messages waits for the topic's writes in flight. A store that answers reads on
/// other threads (PostgreSQL) could run it before a message in flight committed; the message
/// would then go out to the sessions attached at its commit while the joiner still waited for
/// a page without it (`tests/it/join_race.rs` shows that through the server). Held back, the
/// read runs after the commit, and the joiner gets the message once, in its page.
#[test]
fn a_joins_read_of_messages_waits_for_the_messages_in_flight() {
    let (a1, b1, b2) = (sid(0, 1), sid(0, 2), sid(0, 3));
    let mut sim = group_with_alice_and_bob(1, a1, b1);
    sim.req(GROUP, publish(a1, ALICE, Some("p"), "\"one\""));
    assert_eq!(sim.in_flight.len(), 1, "the message's write is in flight");
    sim.defer_reads = true;
    sim.reads_asked.clear();
    sim.req(GROUP, join_get(b2, BOB, "j", json!({"what": "data"})));
    assert!(
        sim.reads_in_flight.is_empty(),
        "no read of messages while one is in flight: {:?}",
        sim.reads_asked
    );
    assert!(
        sim.topic(GROUP).is_reading(),
        "later requests wait behind it"
    );
    sim.settle();
    assert_eq!(
        data_seqs(&sim.frames(b1)),
        vec![1],
        "the message goes out to the sessions attached"
    );
    assert_eq!(sim.reads_in_flight.len(), 1, "then the read is asked for");
    sim.answer_reads();
    sim.settle();
    let f = sim.frames(b2);
    assert_eq!(
        data_seqs(&f),
        vec![1],
        "the joiner gets it in its page, once: {f:?}"
    );
    assert!(!sim.topic(GROUP).is_reading());
}

/// Reads that are not a join's reads of messages do not wait for writes: `{get sub}` reads the
/// members' user records, and an attached session's `{get data}` gets the messages in flight
/// live (its page hides what is not acknowledged yet).
#[test]
fn other_reads_do_not_wait_for_messages_in_flight() {
    let (a1, b1) = (sid(0, 1), sid(0, 2));
    let mut sim = group_with_alice_and_bob(1, a1, b1);
    sim.req(GROUP, publish(a1, ALICE, Some("p"), "\"one\""));
    sim.defer_reads = true;
    sim.reads_asked.clear();
    sim.req(GROUP, get(b1, BOB, "g", json!({"what": "sub"})));
    assert!(
        matches!(sim.reads_in_flight.as_slice(), [(_, _, q)] if matches!(q.as_slice(), [ReadQuery::Users(_)])),
        "the members' user records are asked for at once: {:?}",
        sim.reads_in_flight
    );
    assert_eq!(
        sim.in_flight.len(),
        1,
        "while the message's write is still in flight"
    );
    sim.answer_reads();
    sim.reads_asked.clear();
    sim.req(GROUP, get(b1, BOB, "d", json!({"what": "data"})));
    assert!(
        sim.reads_asked
            .iter()
            .any(|q| matches!(q, ReadQuery::History { .. })),
        "an attached session's history read goes at once: {:?}",
        sim.reads_asked
    );
    sim.answer_reads();
    sim.settle();
    assert!(!sim.topic(GROUP).is_reading());
}

/// A topic loaded from reads is the same topic: members, seq and records.
#[test]
fn a_topic_is_loaded_from_one_round_of_reads() {
    let a1 = sid(0, 1);
    let mut sim = Sim::new(1);
    sim.create_group(a1, ALICE, None);
    sim.publish(a1, ALICE, None, "\"x\"");
    let queries = Topic::load_reads(GROUP).expect("a group");
    assert_eq!(queries.len(), 3, "{queries:?}");
    sim.topics.clear();
    assert!(sim.load(GROUP));
    let t = sim.topic(GROUP);
    assert_eq!(t.seq, 1);
    assert!(t.members.contains_key(&ALICE));
    assert!(Topic::load_reads("xyz").is_none());
}

/// `{set me cred}` claims the credential in its write: a second account asking for the same
/// email gets 409 from the store's precondition, and its `me` keeps its old credentials.
#[test]
fn a_credential_is_claimed_by_the_write() {
    let mut sim = Sim::new(1);
    sim.add_user(ALICE);
    sim.add_user(BOB);
    for (s, uid) in [(sid(0, 1), ALICE), (sid(0, 2), BOB)] {
        let me = uid.usr();
        assert!(sim.load(&me));
        sim.run(&me, join(s, uid, "me", None));
    }
    sim.clear();
    let cred = json!({"cred": {"meth": "email", "val": "same@example.com"}});
    sim.run(&ALICE.usr(), set_req(sid(0, 1), ALICE, "c1", cred.clone()));
    ctrl(&sim.frames(sid(0, 1))[0], 200, "ok");
    sim.run(&BOB.usr(), set_req(sid(0, 2), BOB, "c2", cred));
    ctrl(&sim.frames(sid(0, 2))[0], 409, "duplicate credential");
    let bob = sim.topic(&BOB.usr()).user.clone().expect("user");
    assert!(
        bob.creds.is_empty(),
        "the refused credential is not kept: {bob:?}"
    );
    assert_eq!(
        sim.store.cred_owner("email:same@example.com").unwrap(),
        Some(ALICE)
    );
}
