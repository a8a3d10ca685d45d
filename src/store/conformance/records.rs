//! Conformance: every record type reads back as written, and subscription markers only rise.

use super::fixtures::*;
use crate::access::AuthLevel;
use crate::ids::{UnixMillis, UserId};
use crate::store::{DelRecord, LastMessage, MessageRecord, Store, SubRecord, UserState, WriteOp};

/// Every record type, with its optional fields present and absent, reads back equal to what
/// was written; a stored tombstone is hidden from queries but is still the newest seq.
pub(crate) fn every_record_type_round_trips(s: &dyn Store) {
    let mut plain_user = user(2);
    plain_user.public = None;
    plain_user.last_seen = None;
    plain_user.tags.clear();
    plain_user.state = UserState::Ok;
    plain_user.creds.clear();
    let mut plain_auth = auth("token:x", 2);
    plain_auth.expires = None;
    plain_auth.secret.clear();
    plain_auth.level = AuthLevel::Root;
    let mut plain_topic = topic("p2pAAA");
    plain_topic.owner = None;
    plain_topic.public = None;
    plain_topic.trusted = None;
    plain_topic.is_chan = false;
    plain_topic.aux = None;
    let mut deleted_sub = sub("grpA", 2);
    deleted_sub.deleted = Some(UnixMillis(99));
    deleted_sub.private = None;
    let stone = MessageRecord {
        deleted: true,
        head: None,
        content: String::new(),
        ..msg("grpB", 9)
    };
    let soft = DelRecord {
        topic: "grpA".into(),
        del_id: 1,
        user: Some(UserId(u64::MAX)),
        ts: UnixMillis(1_700_000_000_000),
        ranges: vec![(1, 2), (4, u64::MAX)],
    };
    // A hard delete of nothing stored is recorded all the same.
    let hard = DelRecord {
        topic: "grpA".into(),
        del_id: 2,
        user: None,
        ts: UnixMillis(5),
        ranges: vec![(100, 200)],
    };
    apply_ok(
        s,
        vec![
            WriteOp::CreateUser(user(1)),
            WriteOp::PutUser(plain_user.clone()),
            WriteOp::CreateAuth(auth("basic:alice", 1)),
            WriteOp::PutAuth(plain_auth.clone()),
            WriteOp::CreateTopic(topic("grpA")),
            WriteOp::PutTopic(plain_topic.clone()),
            WriteOp::PutSub(sub("grpA", 1)),
            WriteOp::PutSub(deleted_sub.clone()),
            WriteOp::AppendMessage(msg("grpA", 1)),
            WriteOp::AppendMessage(msg("grpA", 2)),
            WriteOp::AppendMessage(stone.clone()),
            WriteOp::DeleteMessages(soft.clone()),
            WriteOp::DeleteMessages(hard.clone()),
        ],
    );
    assert_eq!(s.del_log("grpA", 0, None, 10).unwrap(), vec![soft, hard]);
    // A stored tombstone reads back as one: hidden from queries, still the newest seq.
    assert!(s.messages("grpB", q(None, None, 10)).unwrap().is_empty());
    assert_eq!(
        s.last_message("grpB").unwrap(),
        Some(LastMessage {
            seq: 9,
            ts: stone.ts
        })
    );
    assert_eq!(s.user(UserId(1)).unwrap(), Some(user(1)));
    assert_eq!(s.user(UserId(2)).unwrap(), Some(plain_user));
    assert_eq!(s.user(UserId(3)).unwrap(), None);
    assert_eq!(s.auth("basic:alice").unwrap(), Some(auth("basic:alice", 1)));
    assert_eq!(s.auth("token:x").unwrap(), Some(plain_auth.clone()));
    assert_eq!(s.auth("basic:bob").unwrap(), None);
    assert_eq!(s.auths_of_user(UserId(2)).unwrap(), vec![plain_auth]);
    assert_eq!(s.topic("grpA").unwrap(), Some(topic("grpA")));
    assert_eq!(s.topic("p2pAAA").unwrap(), Some(plain_topic));
    assert_eq!(s.topic("grpB").unwrap(), None);
    assert_eq!(s.sub("grpA", UserId(1)).unwrap(), Some(sub("grpA", 1)));
    assert_eq!(s.sub("grpA", UserId(2)).unwrap(), Some(deleted_sub.clone()));
    assert_eq!(s.sub("grpA", UserId(3)).unwrap(), None);
    assert_eq!(
        s.subs_of_topic("grpA").unwrap(),
        vec![sub("grpA", 1), deleted_sub]
    );
    let all = s.messages("grpA", q(None, None, 10)).unwrap();
    assert_eq!(all, vec![msg("grpA", 2), msg("grpA", 1)]);
    assert_eq!(
        s.last_message("grpA").unwrap(),
        Some(LastMessage {
            seq: 2,
            ts: UnixMillis(1_002)
        })
    );
}

/// `Markers` raises read and recv, never lowers them, keeps recv at least read, leaves the rest
/// of the subscription as it was, and creates nothing for a missing subscription.
pub(crate) fn markers_only_rise_and_recv_stays_at_least_read(s: &dyn Store) {
    apply_ok(s, vec![WriteOp::PutSub(sub("grpA", 1))]); // read 5, recv 6
    let markers = |read, recv| WriteOp::Markers {
        topic: "grpA".into(),
        user: UserId(1),
        read,
        recv,
    };
    let get = || {
        let m = s.sub("grpA", UserId(1)).unwrap().unwrap();
        (m.read, m.recv)
    };
    apply_ok(s, vec![markers(3, 4)]);
    assert_eq!(get(), (5, 6));
    apply_ok(s, vec![markers(0, 9)]);
    assert_eq!(get(), (5, 9));
    apply_ok(s, vec![markers(12, 0)]);
    assert_eq!(get(), (12, 12));
    apply_ok(s, vec![markers(13, 14), markers(11, 11)]);
    assert_eq!(get(), (13, 14));
    // The rest of the record is untouched.
    let rec = s.sub("grpA", UserId(1)).unwrap().unwrap();
    assert_eq!(
        rec,
        SubRecord {
            read: 13,
            recv: 14,
            ..sub("grpA", 1)
        }
    );
    // Missing subscription: no-op, no row created.
    apply_ok(
        s,
        vec![WriteOp::Markers {
            topic: "grpB".into(),
            user: UserId(1),
            read: 1,
            recv: 1,
        }],
    );
    assert_eq!(s.sub("grpB", UserId(1)).unwrap(), None);
    assert_eq!(s.subs_of_user(UserId(1)).unwrap().len(), 1);
}
