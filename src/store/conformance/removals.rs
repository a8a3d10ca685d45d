//! Conformance: removing a login or a whole topic takes every row and index entry that belongs
//! to it, and nothing else.

use super::fixtures::*;
use crate::ids::{UnixMillis, UserId};
use crate::store::{Store, StoreError, WriteBatch, WriteOp};

/// `DeleteAuth` takes the login and its by-user entry; within a batch, deletions and creations
/// of one login apply in order.
pub(crate) fn delete_auth_removes_the_record_and_its_index_entry(s: &dyn Store) {
    apply_ok(
        s,
        vec![
            WriteOp::CreateAuth(auth("basic:alice", 1)),
            WriteOp::CreateAuth(auth("token:alice", 1)),
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
    apply_ok(
        s,
        vec![
            WriteOp::DeleteAuth {
                unique: "basic:alice".into(),
            },
            // Missing: no-op.
            WriteOp::DeleteAuth {
                unique: "basic:nobody".into(),
            },
        ],
    );
    assert_eq!(s.auth("basic:alice").unwrap(), None);
    assert_eq!(uniques(1), ["token:alice"]);
    assert_eq!(uniques(2), ["basic:bob"]);

    // A batch may delete a login and create it again, for another user.
    apply_ok(
        s,
        vec![
            WriteOp::DeleteAuth {
                unique: "basic:bob".into(),
            },
            WriteOp::CreateAuth(auth("basic:bob", 3)),
        ],
    );
    assert!(uniques(2).is_empty());
    assert_eq!(uniques(3), ["basic:bob"]);
    // … and the reverse order leaves nothing.
    apply_ok(
        s,
        vec![
            WriteOp::CreateAuth(auth("basic:carol", 4)),
            WriteOp::DeleteAuth {
                unique: "basic:carol".into(),
            },
        ],
    );
    assert_eq!(s.auth("basic:carol").unwrap(), None);
    assert!(uniques(4).is_empty());
    // Deleting does not lift the precondition of an earlier creation in the batch.
    let r = s.apply(&[vec![
        WriteOp::CreateAuth(auth("basic:dave", 5)),
        WriteOp::CreateAuth(auth("basic:dave", 5)),
        WriteOp::DeleteAuth {
            unique: "basic:dave".into(),
        },
    ]]);
    assert!(matches!(r[0], Err(StoreError::Conflict(_))));
}

/// `DeleteTopic` takes the record, every subscription, message, delete record and tag entry of
/// the topic, and rows left under the name without a record; a neighbour whose name extends it
/// is untouched. A batch may delete a topic and create it afresh.
pub(crate) fn delete_topic_removes_every_row_of_the_topic_and_nothing_else(s: &dyn Store) {
    let mut gone_sub = sub("grpA", 2);
    gone_sub.deleted = Some(UnixMillis(50));
    let mut setup: WriteBatch = (1..=5)
        .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
        .chain((1..=3).map(|i| WriteOp::AppendMessage(msg("grpAB", i))))
        .collect();
    setup.extend([
        WriteOp::CreateUser(tagged_user(1, &["travel"])),
        WriteOp::CreateTopic(tagged_topic("grpA", &["travel", "news"])),
        WriteOp::CreateTopic(tagged_topic("grpAB", &["news"])),
        WriteOp::PutSub(sub("grpA", 1)),
        WriteOp::PutSub(gone_sub),
        WriteOp::PutSub(sub("grpAB", 1)),
        WriteOp::DeleteMessages(del("grpA", 1, Some(1), &[(1, 2)])),
        WriteOp::DeleteMessages(del("grpA", 2, None, &[(2, 3)])),
        WriteOp::DeleteMessages(del("grpAB", 1, None, &[(1, 2)])),
        // Rows under a name that has no topic record.
        WriteOp::AppendMessage(msg("grpOrphan", 1)),
        WriteOp::PutSub(sub("grpOrphan", 3)),
    ]);
    apply_ok(s, setup);
    let usr1 = UserId(1).usr();
    assert_eq!(find(s, &["travel"], 10).len(), 2);

    apply_ok(
        s,
        vec![WriteOp::DeleteTopic {
            name: "grpA".into(),
        }],
    );
    assert_eq!(s.topic("grpA").unwrap(), None);
    assert!(s.subs_of_topic("grpA").unwrap().is_empty());
    assert_eq!(s.sub("grpA", UserId(1)).unwrap(), None);
    assert_eq!(s.subs_of_user(UserId(1)).unwrap(), vec![sub("grpAB", 1)]);
    assert!(s.subs_of_user(UserId(2)).unwrap().is_empty());
    assert!(s.messages("grpA", q(None, None, 10)).unwrap().is_empty());
    assert_eq!(s.last_message("grpA").unwrap(), None);
    assert!(s.del_log("grpA", 0, None, 10).unwrap().is_empty());
    assert_eq!(
        find(s, &["travel", "news"], 10),
        vec![
            ("grpAB".to_owned(), strings(&["news"])),
            (usr1.clone(), strings(&["travel"])),
        ]
    );
    // The neighbour whose name extends it is untouched.
    assert_eq!(
        s.topic("grpAB").unwrap(),
        Some(tagged_topic("grpAB", &["news"]))
    );
    assert_eq!(s.subs_of_topic("grpAB").unwrap(), vec![sub("grpAB", 1)]);
    assert_eq!(
        seqs(&s.messages("grpAB", q(None, None, 10)).unwrap()),
        [3, 2]
    );
    assert_eq!(s.del_log("grpAB", 0, None, 10).unwrap().len(), 1);

    // Again: a no-op. Without a topic record, the rows under the name still go.
    apply_ok(
        s,
        vec![
            WriteOp::DeleteTopic {
                name: "grpA".into(),
            },
            WriteOp::DeleteTopic {
                name: "grpOrphan".into(),
            },
        ],
    );
    assert_eq!(s.last_message("grpOrphan").unwrap(), None);
    assert!(s.subs_of_user(UserId(3)).unwrap().is_empty());

    // A batch may delete a topic and create it afresh, reusing its seqs.
    let fresh = tagged_topic("grpAB", &["fresh"]);
    apply_ok(
        s,
        vec![
            WriteOp::DeleteTopic {
                name: "grpAB".into(),
            },
            WriteOp::CreateTopic(fresh.clone()),
            WriteOp::AppendMessage(msg("grpAB", 1)),
        ],
    );
    assert_eq!(s.topic("grpAB").unwrap(), Some(fresh));
    assert_eq!(seqs(&s.messages("grpAB", q(None, None, 10)).unwrap()), [1]);
    assert!(s.subs_of_topic("grpAB").unwrap().is_empty());
    assert_eq!(
        find(s, &["news", "fresh"], 10),
        vec![("grpAB".to_owned(), strings(&["fresh"]))]
    );
    // Outside such a batch the usual preconditions hold.
    let r = s.apply(&[
        vec![WriteOp::CreateTopic(topic("grpAB"))],
        vec![
            WriteOp::DeleteTopic {
                name: "grpAB".into(),
            },
            WriteOp::AppendMessage(msg("grpAB", 1)),
            WriteOp::AppendMessage(msg("grpAB", 1)),
        ],
    ]);
    assert!(r.iter().all(|r| matches!(r, Err(StoreError::Conflict(_)))));
    assert!(s.topic("grpAB").unwrap().is_some());
}
