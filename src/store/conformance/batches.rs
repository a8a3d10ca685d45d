//! Conformance: batches are all or nothing, and a batch whose creation preconditions fail is
//! skipped while the other batches of the same `apply` call commit.

use super::fixtures::*;
use crate::ids::UserId;
use crate::store::{Store, StoreError, WriteOp};

/// One `apply` call: a batch whose creation precondition fails (against the stored data, an
/// earlier batch of the call, or an earlier op of itself) is skipped whole; the others commit.
pub(crate) fn a_conflicting_batch_is_skipped_and_the_others_apply(s: &dyn Store) {
    apply_ok(
        s,
        vec![
            WriteOp::CreateUser(user(1)),
            WriteOp::CreateAuth(auth("basic:alice", 1)),
            WriteOp::CreateTopic(topic("grpA")),
            WriteOp::AppendMessage(msg("grpA", 1)),
            WriteOp::PutSub(sub("grpA", 1)),
        ],
    );
    let mut other = msg("grpA", 1);
    other.content = r#"{"txt":"not the first"}"#.into();
    let results = s.apply(&[
        // 0: new user, fine.
        vec![
            WriteOp::CreateUser(user(2)),
            WriteOp::CreateAuth(auth("basic:bob", 2)),
        ],
        // 1: existing login; its user must not be created either.
        vec![
            WriteOp::CreateUser(user(3)),
            WriteOp::CreateAuth(auth("basic:alice", 3)),
        ],
        // 2: existing topic.
        vec![
            WriteOp::PutSub(sub("grpA", 4)),
            WriteOp::CreateTopic(topic("grpA")),
        ],
        // 3: existing message.
        vec![
            WriteOp::AppendMessage(msg("grpA", 2)),
            WriteOp::AppendMessage(msg("grpA", 1)),
        ],
        // 4: conflicts with batch 0 of this same call.
        vec![WriteOp::CreateAuth(auth("basic:bob", 5))],
        // 5: existing user id.
        vec![WriteOp::CreateUser(user(1))],
        // 6: conflicts within itself.
        vec![
            WriteOp::CreateTopic(topic("grpC")),
            WriteOp::CreateTopic(topic("grpC")),
        ],
        // 7: fine, and Put ops never conflict.
        vec![
            WriteOp::AppendMessage(msg("grpA", 2)),
            WriteOp::PutUser(user(1)),
            WriteOp::PutTopic(topic("grpA")),
        ],
        // 8: conflicts with batch 7.
        vec![WriteOp::AppendMessage(msg("grpA", 2))],
        // 9: an existing message, other content, with the sender's markers: none of it
        // applies (the stored message and markers stay as they were).
        vec![
            WriteOp::AppendMessage(other),
            WriteOp::Markers {
                topic: "grpA".into(),
                user: UserId(1),
                read: 9,
                recv: 9,
            },
        ],
    ]);
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(
        ok,
        [true, false, false, false, false, false, false, true, false, false]
    );
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    }
    assert!(s.user(UserId(2)).unwrap().is_some());
    assert_eq!(s.auth("basic:bob").unwrap().unwrap().user, UserId(2));
    assert_eq!(s.user(UserId(3)).unwrap(), None);
    assert_eq!(s.auth("basic:alice").unwrap().unwrap().user, UserId(1));
    assert_eq!(s.sub("grpA", UserId(4)).unwrap(), None);
    assert_eq!(s.topic("grpC").unwrap(), None);
    assert_eq!(
        s.messages("grpA", q(None, None, 10)).unwrap(),
        vec![msg("grpA", 2), msg("grpA", 1)]
    );
    let markers = s.sub("grpA", UserId(1)).unwrap().unwrap();
    assert_eq!((markers.read, markers.recv), (5, 6));
    assert!(s.auths_of_user(UserId(5)).unwrap().is_empty());
    assert!(s.apply(&[]).is_empty());
}
