//! Conformance: the by-user views (`subs_of_user`, `auths_of_user`) follow puts and deletes.

use super::fixtures::*;
use crate::ids::UserId;
use crate::store::{AuthRecord, Store, SubRecord, WriteOp};

/// `subs_of_user` and `auths_of_user` follow puts, replacements and deletes, for ids at both
/// ends of the range, and a login that moves to another user moves between their lists.
pub(crate) fn by_user_indexes_follow_puts_and_deletes(s: &dyn Store) {
    apply_ok(
        s,
        vec![
            WriteOp::PutSub(sub("grpA", 1)),
            WriteOp::PutSub(sub("grpB", 1)),
            WriteOp::PutSub(sub("grpA", 2)),
            WriteOp::PutSub(sub("p2pX", u64::MAX)),
            WriteOp::PutSub(sub("grpA", 0)),
        ],
    );
    let topics = |uid| -> Vec<String> {
        s.subs_of_user(UserId(uid))
            .unwrap()
            .into_iter()
            .map(|r| r.topic)
            .collect()
    };
    assert_eq!(topics(1), ["grpA", "grpB"]);
    assert_eq!(topics(2), ["grpA"]);
    assert_eq!(topics(u64::MAX), ["p2pX"]);
    assert_eq!(topics(0), ["grpA"]);
    assert!(topics(3).is_empty());
    let users: Vec<u64> = s
        .subs_of_topic("grpA")
        .unwrap()
        .iter()
        .map(|r| r.user.0)
        .collect();
    assert_eq!(users, [0, 1, 2]);

    // Replacing keeps one index entry; deleting removes both rows.
    apply_ok(
        s,
        vec![WriteOp::PutSub(SubRecord {
            read: 50,
            recv: 50,
            ..sub("grpA", 1)
        })],
    );
    assert_eq!(topics(1), ["grpA", "grpB"]);
    assert_eq!(s.subs_of_user(UserId(1)).unwrap()[0].read, 50);
    apply_ok(
        s,
        vec![
            WriteOp::DeleteSub {
                topic: "grpA".into(),
                user: UserId(1),
            },
            WriteOp::DeleteSub {
                topic: "grpNone".into(),
                user: UserId(1),
            },
        ],
    );
    assert_eq!(topics(1), ["grpB"]);
    assert_eq!(s.sub("grpA", UserId(1)).unwrap(), None);
    let users: Vec<u64> = s
        .subs_of_topic("grpA")
        .unwrap()
        .iter()
        .map(|r| r.user.0)
        .collect();
    assert_eq!(users, [0, 2]);

    // Auth index: several schemes, and a login moving to another user.
    apply_ok(
        s,
        vec![
            WriteOp::CreateAuth(auth("basic:alice", 1)),
            WriteOp::PutAuth(AuthRecord {
                scheme: "token".into(),
                ..auth("token:alice", 1)
            }),
            WriteOp::CreateAuth(auth("basic:bob", 2)),
        ],
    );
    let uniques = |uid| -> Vec<String> {
        s.auths_of_user(UserId(uid))
            .unwrap()
            .into_iter()
            .map(|a| a.unique)
            .collect()
    };
    assert_eq!(uniques(1), ["basic:alice", "token:alice"]);
    assert_eq!(uniques(2), ["basic:bob"]);
    apply_ok(s, vec![WriteOp::PutAuth(auth("basic:alice", 2))]);
    assert_eq!(uniques(1), ["token:alice"]);
    assert_eq!(uniques(2), ["basic:alice", "basic:bob"]);
}
