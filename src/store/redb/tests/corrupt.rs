//! redb-only: rows that do not decode. Reads of them are backend errors, and writes that
//! replace or remove them succeed and leave no stale index entry behind.

use redb::{ReadableDatabase, ReadableTableMetadata};

use crate::ids::UserId;
use crate::store::conformance::fixtures::*;
use crate::store::conformance::{removals, tags};
use crate::store::redb::codec;
use crate::store::redb::tables::{
    AUTH, AUTH_BY_USER, MESSAGES, SUBS, SUBS_BY_USER, TAGS, TOPICS, USERS,
};
use crate::store::redb::RedbStore;
use crate::store::{MessageQuery, Store, StoreError, WriteOp};

#[test]
fn corrupt_rows_are_errors_and_do_not_poison_writes() {
    let s = RedbStore::in_memory();
    let txn = s.db.begin_write().unwrap();
    {
        let junk: &[u8] = &[codec::version(), 0xff];
        txn.open_table(SUBS)
            .unwrap()
            .insert(("grpA", 1), junk)
            .unwrap();
        txn.open_table(SUBS_BY_USER)
            .unwrap()
            .insert((1, "grpA"), ())
            .unwrap();
        txn.open_table(AUTH)
            .unwrap()
            .insert("basic:alice", junk)
            .unwrap();
        txn.open_table(USERS).unwrap().insert(1, &[][..]).unwrap();
        txn.open_table(MESSAGES)
            .unwrap()
            .insert(("grpA", 1), junk)
            .unwrap();
    }
    txn.commit().unwrap();
    let is_backend = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Backend(_)));
    assert!(is_backend(s.sub("grpA", UserId(1)).map(|_| ())));
    assert!(is_backend(s.subs_of_user(UserId(1)).map(|_| ())));
    assert!(is_backend(s.subs_of_topic("grpA").map(|_| ())));
    assert!(is_backend(s.auth("basic:alice").map(|_| ())));
    assert!(is_backend(s.user(UserId(1)).map(|_| ())));
    assert!(is_backend(s.last_message("grpA").map(|_| ())));
    let all = MessageQuery {
        since: None,
        before: None,
        limit: 10,
        exclude: vec![],
    };
    assert!(is_backend(s.messages("grpA", all).map(|_| ())));

    let results = s.apply(&[
        vec![WriteOp::Markers {
            topic: "grpA".into(),
            user: UserId(1),
            read: 9,
            recv: 9,
        }],
        vec![WriteOp::PutAuth(auth("basic:alice", 2))],
        vec![WriteOp::CreateUser(user(2))],
    ]);
    assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
    assert_eq!(s.auth("basic:alice").unwrap(), Some(auth("basic:alice", 2)));
    assert_eq!(s.auths_of_user(UserId(2)).unwrap().len(), 1);
    assert!(s.user(UserId(2)).unwrap().is_some());
    apply_ok(&s, vec![WriteOp::PutSub(sub("grpA", 1))]);
    assert_eq!(s.sub("grpA", UserId(1)).unwrap(), Some(sub("grpA", 1)));
}

/// After the conformance case: an unreadable auth record goes with its index entry, whoever it
/// belonged to.
#[test]
fn deleting_an_unreadable_login_drops_its_index_entry() {
    let store = RedbStore::in_memory();
    let s = &store;
    removals::delete_auth_removes_the_record_and_its_index_entry(s);
    let uniques = |uid| -> Vec<String> {
        s.auths_of_user(UserId(uid))
            .unwrap()
            .into_iter()
            .map(|a| a.unique)
            .collect()
    };
    // An unreadable record goes with its index entry, whoever it belonged to.
    let txn = s.db.begin_write().unwrap();
    {
        let junk: &[u8] = &[codec::version(), 0xff];
        txn.open_table(AUTH)
            .unwrap()
            .insert("basic:junk", junk)
            .unwrap();
        txn.open_table(AUTH_BY_USER)
            .unwrap()
            .insert((6, "basic:junk"), ())
            .unwrap();
    }
    txn.commit().unwrap();
    assert!(s.auths_of_user(UserId(6)).is_err());
    apply_ok(
        s,
        vec![WriteOp::DeleteAuth {
            unique: "basic:junk".into(),
        }],
    );
    assert_eq!(s.auth("basic:junk").unwrap(), None);
    assert!(uniques(6).is_empty());
    let txn = s.db.begin_read().unwrap();
    let index = txn.open_table(AUTH_BY_USER).unwrap();
    assert_eq!(index.get((6, "basic:junk")).unwrap().map(|_| ()), None);
    assert_eq!(index.len().unwrap(), 2);
}

/// After the conformance case: the stale tag entries of a record that cannot be read go when it
/// is replaced or deleted.
#[test]
fn replacing_unreadable_records_drops_their_stale_tags() {
    let store = RedbStore::in_memory();
    let s = &store;
    tags::the_tag_index_follows_tag_changes_of_users_and_topics(s);
    let usr = |id: u64| UserId(id).usr();
    // A record that cannot be read: its stale entries go when it is replaced.
    let txn = s.db.begin_write().unwrap();
    {
        let junk: &[u8] = &[codec::version(), 0xff];
        txn.open_table(USERS).unwrap().insert(3, junk).unwrap();
        txn.open_table(TOPICS)
            .unwrap()
            .insert("grpJ", junk)
            .unwrap();
        let mut tags = txn.open_table(TAGS).unwrap();
        tags.insert(("old", usr(3).as_str()), ()).unwrap();
        tags.insert(("old", "grpJ"), ()).unwrap();
        tags.insert(("old", usr(1).as_str()), ()).unwrap();
    }
    txn.commit().unwrap();
    apply_ok(
        s,
        vec![
            WriteOp::PutUser(tagged_user(3, &["new"])),
            WriteOp::DeleteTopic {
                name: "grpJ".into(),
            },
        ],
    );
    assert_eq!(find(s, &["old"], 10), vec![(usr(1), strings(&["old"]))]);
    assert_eq!(find(s, &["new"], 10), vec![(usr(3), strings(&["new"]))]);
}
