//! redb-only: the database file. Durable and non-durable stores keep their data across a
//! reopen, and a file that is not a redb database is a backend error, not a panic.

use crate::ids::UserId;
use crate::store::conformance::fixtures::*;
use crate::store::redb::{RedbStore, FILE_NAME};
use crate::store::{Store, StoreError, WriteOp};

#[test]
fn a_durable_file_store_keeps_its_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    {
        let s = RedbStore::open(&data, true).unwrap();
        assert!(s.is_durable());
        apply_ok(
            &s,
            vec![
                WriteOp::CreateUser(user(1)),
                WriteOp::CreateAuth(auth("basic:alice", 1)),
                WriteOp::CreateTopic(topic("grpA")),
                WriteOp::PutSub(sub("grpA", 1)),
                WriteOp::AppendMessage(msg("grpA", 1)),
            ],
        );
    }
    assert!(data.join(FILE_NAME).is_file());
    let s = RedbStore::open(&data, true).unwrap();
    assert_eq!(s.user(UserId(1)).unwrap(), Some(user(1)));
    assert_eq!(
        s.auths_of_user(UserId(1)).unwrap(),
        vec![auth("basic:alice", 1)]
    );
    assert_eq!(s.topic("grpA").unwrap(), Some(topic("grpA")));
    assert_eq!(s.subs_of_user(UserId(1)).unwrap(), vec![sub("grpA", 1)]);
    assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(1));
    // Creation preconditions still see the reopened data.
    let r = s.apply(&[vec![WriteOp::CreateUser(user(1))]]);
    assert!(matches!(r[0], Err(StoreError::Conflict(_))));
}

#[test]
fn a_non_durable_store_persists_on_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RedbStore::open(dir.path(), false).unwrap();
        assert!(!s.is_durable());
        apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", 1))]);
        apply_ok(&s, vec![WriteOp::AppendMessage(msg("grpA", 2))]);
    }
    let s = RedbStore::open(dir.path(), false).unwrap();
    assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(2));
}

#[test]
fn opening_a_non_database_file_is_a_backend_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(FILE_NAME),
        b"definitely not a redb file, just junk",
    )
    .unwrap();
    assert!(matches!(
        RedbStore::open(dir.path(), true),
        Err(StoreError::Backend(_))
    ));
}
