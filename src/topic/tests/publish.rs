//! `{pub}`: acknowledged and fanned out only after the write, `head` filtering, failed writes, and
//! the access it needs.

use serde_json::{json, Value};

use super::sim::*;
use crate::proto::Encoding;
use crate::store::MessageQuery;
use crate::topic::*;

/// A `{data}` for a mixed audience (JSON and protobuf sessions on several shards) is encoded
/// once per encoding in use, and every session of an encoding gets the same bytes; a JSON-only
/// audience never causes a protobuf encoding.
#[test]
fn fan_out_encodes_once_per_encoding_in_use() {
    let (a1, a2, b1, b2, c1) = (sid(0, 1), sid(1, 1), sid(1, 2), sid(2, 1), sid(2, 2));
    let mut sim = group_with_alice_and_bob(3, a1, b1);
    sim.attach(a2, ALICE);
    // gRPC sessions: their requests say so, as the session layer does for `SessionKind::Grpc`.
    for (s, uid) in [(b2, BOB), (c1, CAROL)] {
        let mut r = join(s, uid, GROUP, None);
        if let TopicRequest::Join {
            hdr: ReqHead { req, .. },
            ..
        } = &mut r
        {
            req.enc = Encoding::Protobuf;
        }
        sim.encodings.insert(s, Encoding::Protobuf);
        sim.run(GROUP, r);
        assert!(sim.topic(GROUP).attached.contains_key(&s));
    }
    sim.clear();

    sim.publish(a1, ALICE, Some("p1"), r#"{"txt":"mixed"}"#);
    assert_eq!(sim.shared.len(), 1, "one shared frame");
    let frame = &sim.shared[0];
    assert_eq!(frame.encodings_done(), 2, "JSON once and protobuf once");
    let first = |s: SessionId| sim.wire[&s].last().unwrap().clone();
    let json = [a1, a2, b1].map(|s| first(s).as_ptr());
    let pb = [b2, c1].map(|s| first(s).as_ptr());
    assert!(
        json.iter().all(|p| *p == json[0]),
        "JSON recipients share one buffer"
    );
    assert!(
        pb.iter().all(|p| *p == pb[0]),
        "protobuf recipients share one buffer"
    );
    assert_ne!(json[0], pb[0]);
    // The protobuf bytes are the pbx form of the same message.
    use prost::Message as _;
    let m = crate::proto::pb::pbx::ServerMsg::decode(first(b2)).expect("pbx ServerMsg");
    match m.message {
        Some(crate::proto::pb::pbx::server_msg::Message::Data(d)) => {
            assert_eq!((d.topic.as_str(), d.seq_id), (GROUP, 1));
            assert_eq!(d.content, br#"{"txt":"mixed"}"#);
        }
        other => panic!("not a data message: {other:?}"),
    }

    // Only JSON sessions attached: no protobuf encoding is ever made.
    sim.run(GROUP, leave(b2, BOB, "l1", false));
    sim.run(GROUP, leave(c1, CAROL, "l2", false));
    sim.clear();
    sim.publish(a1, ALICE, Some("p2"), r#"{"txt":"json only"}"#);
    assert_eq!(sim.shared[0].encodings_done(), 1);
}

#[test]
fn publish_is_acknowledged_and_fanned_out_only_after_the_write() {
    let (a1, a2, b1, b2) = (sid(0, 1), sid(1, 1), sid(1, 2), sid(2, 1));
    let mut sim = group_with_alice_and_bob(3, a1, b1);
    sim.attach(a2, ALICE);
    sim.attach(b2, BOB);
    sim.clear();

    sim.now = UnixMillis(T0.0 + 250);
    sim.req(GROUP, publish(a1, ALICE, Some("p1"), r#"{"txt":"hello"}"#));
    assert!(
        sim.inbox.is_empty() && sim.delivers.is_empty(),
        "nothing before the message is stored"
    );
    assert_eq!(sim.store.last_message(GROUP).unwrap(), None);
    sim.settle();

    let f = sim.frames(a1);
    assert_eq!(f.len(), 2, "{f:?}");
    let c = ctrl(&f[0], 202, "accepted");
    assert_eq!(
        (c["id"].as_str(), c["topic"].as_str(), &c["params"]),
        (Some("p1"), Some(GROUP), &json!({"seq": 1}))
    );
    let data = json!({"data": {"topic": GROUP, "from": ALICE.usr(), "ts": "2025-01-02T03:04:05.25Z", "seq": 1, "content": {"txt": "hello"}}});
    assert_eq!(f[1], data);
    for s in [a2, b1, b2] {
        assert_eq!(sim.frames(s), vec![data.clone()], "{s:?}");
    }
    // One shared frame, one batch per destination shard.
    assert_eq!(sim.delivers.len(), 1);
    let mut batches = sim.delivers[0].1.clone();
    for (_, sids) in &mut batches {
        sids.sort();
    }
    assert_eq!(
        batches,
        vec![
            (ShardId(0), vec![a1]),
            (ShardId(1), vec![a2, b1]),
            (ShardId(2), vec![b2])
        ]
    );
    // Stored, and the sender's markers moved.
    let stored = sim
        .store
        .messages(
            GROUP,
            MessageQuery {
                exclude: Vec::new(),
                since: None,
                before: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (
            stored[0].seq,
            stored[0].from,
            stored[0].ts,
            stored[0].content.as_str()
        ),
        (1, ALICE, sim.now, r#"{"txt":"hello"}"#)
    );
    let sub = sim.stored_sub(ALICE);
    assert_eq!((sub.read, sub.recv), (1, 1));

    // Without an id: no ack. With noecho: only the publishing session is skipped.
    sim.clear();
    sim.publish(b1, BOB, None, "\"two\"");
    assert_eq!(data_seqs(&sim.frames(b1)), [2]);
    let mut r = publish(b1, BOB, Some("p3"), "\"three\"");
    if let TopicRequest::Publish { noecho, .. } = &mut r {
        *noecho = true;
    }
    sim.run(GROUP, r);
    let f = sim.frames(b1);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(ctrl(&f[0], 202, "accepted")["params"]["seq"], 3);
    for s in [a1, a2, b2] {
        assert_eq!(data_seqs(&sim.frames(s)), [2, 3], "{s:?}");
    }
    assert_eq!(
        sim.store.last_message(GROUP).unwrap().map(|l| l.seq),
        Some(3)
    );
}

#[test]
fn head_is_passed_through_without_sender() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    let cases = [
        (
            json!({"mime": "text/x-drafty", "sender": "usrForged", "reply": "grpX:3"}),
            Some(json!({"mime": "text/x-drafty", "reply": "grpX:3"})),
        ),
        (json!({"sender": "usrForged"}), None),
        (json!({}), None),
    ];
    for (head, expect) in cases {
        let mut r = publish(a1, ALICE, None, "\"x\"");
        if let TopicRequest::Publish { head: h, .. } = &mut r {
            *h = head.as_object().cloned();
        }
        sim.run(GROUP, r);
        let f = sim.frames(b1);
        assert_eq!(f[0]["data"].get("head"), expect.as_ref(), "{head}");
        let last = sim
            .store
            .messages(
                GROUP,
                MessageQuery {
                    since: None,
                    before: None,
                    limit: 1,
                    exclude: Vec::new(),
                },
            )
            .unwrap();
        assert_eq!(
            last[0]
                .head
                .as_deref()
                .map(|h| serde_json::from_str::<Value>(h).unwrap()),
            expect
        );
    }
}

#[test]
fn a_failed_publish_write_is_an_internal_error_and_delivers_nothing() {
    let (a1, b1) = (sid(0, 1), sid(1, 1));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    sim.fail_writes = true;
    sim.publish(a1, ALICE, Some("p"), "\"lost\"");
    let f = sim.frames(a1);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(ctrl(&f[0], 500, "internal error")["id"], "p");
    assert!(sim.frames(b1).is_empty());
    assert!(sim.delivers.is_empty());
}

#[test]
fn publish_needs_write_access_and_attachment() {
    let (a1, b1) = (sid(0, 1), sid(0, 2));
    let mut sim = Sim::new(1);
    sim.create_group(
        a1,
        ALICE,
        Some(json!({"desc": {"defacs": {"auth": "JRP"}}})),
    );
    sim.attach(b1, BOB);
    sim.clear();
    sim.run(GROUP, publish(b1, BOB, Some("p"), "\"x\""));
    assert_eq!(
        sim.take(b1),
        [Rec::Frame(sim_ctrl_frame(403, "permission denied", "p"))]
    );
    // Typing needs W too: dropped.
    sim.run(GROUP, note(b1, BOB, "kp", 0));
    assert!(sim.frames(a1).is_empty());
    // Not attached: 409 and the session learns it is detached.
    sim.run(GROUP, publish(sid(0, 9), CAROL, Some("q"), "\"x\""));
    assert_eq!(
        sim.take(sid(0, 9)),
        [
            Rec::Frame(sim_ctrl_frame(409, "must attach first", "q")),
            Rec::Detached(GROUP.into())
        ]
    );
    assert!(sim.in_flight.is_empty() && sim.delivers.is_empty());
}
