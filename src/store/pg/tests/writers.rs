//! PostgreSQL only: another writer on the same database (another server of a cluster). A row it
//! stores between a batch's precondition and its write is never overwritten: the group fails
//! with a Backend error and acknowledges nothing, and the other writer's row stays.

use std::time::Duration;

use postgres::Client;

use super::{fresh_store, sql};
use crate::ids::UserId;
use crate::store::conformance::fixtures::*;
use crate::store::pg::PgStore;
use crate::store::{Store, StoreError, WriteBatch, WriteOp};

/// Runs `group` on `s` while `other` holds an uncommitted write of the same key, committed
/// while the store waits on it; returns the store's results.
fn race(
    s: &PgStore,
    other: &mut Client,
    write: &str,
    group: Vec<WriteBatch>,
) -> Vec<Result<(), StoreError>> {
    other.batch_execute("BEGIN").unwrap();
    other.batch_execute(write).unwrap();
    std::thread::scope(|scope| {
        let store = scope.spawn(|| s.apply(&group));
        std::thread::sleep(Duration::from_millis(300));
        other.batch_execute("COMMIT").unwrap();
        store.join().unwrap()
    })
}

fn assert_raced(results: &[Result<(), StoreError>]) {
    for r in results {
        match r {
            Err(StoreError::Backend(m)) => assert!(m.contains("another writer"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_login_created_meanwhile_by_another_writer_is_not_overwritten() {
    let (s, url) = fresh_store();
    let mut other = sql(&url);
    let results = race(
        &s,
        &mut other,
        "INSERT INTO auth VALUES ('basic:alice', 9, 'basic', 'auth', '\\x00', NULL)",
        vec![
            vec![WriteOp::AppendMessage(msg("grpA", 1))],
            vec![
                WriteOp::CreateUser(user(1)),
                WriteOp::CreateAuth(auth("basic:alice", 1)),
            ],
        ],
    );
    assert_raced(&results);
    assert_eq!(s.auth("basic:alice").unwrap().unwrap().user, UserId(9));
    assert_eq!(s.user(UserId(1)).unwrap(), None);
    assert_eq!(s.last_message("grpA").unwrap(), None);
    // Asked again, the batch meets its conflict.
    let r = s.apply(&[vec![WriteOp::CreateAuth(auth("basic:alice", 1))]]);
    assert!(matches!(r[0], Err(StoreError::Conflict(_))), "{r:?}");
}

#[test]
fn a_credential_claimed_meanwhile_by_another_writer_is_not_taken() {
    let (s, url) = fresh_store();
    let mut other = sql(&url);
    let results = race(
        &s,
        &mut other,
        "INSERT INTO cred_claims VALUES ('email:a@x.org', 9)",
        vec![vec![WriteOp::ClaimCred {
            unique: "email:a@x.org".into(),
            user: UserId(1),
        }]],
    );
    assert_raced(&results);
    assert_eq!(s.cred_owner("email:a@x.org").unwrap(), Some(UserId(9)));
}

#[test]
fn a_message_appended_meanwhile_by_another_writer_is_not_acknowledged() {
    let (s, url) = fresh_store();
    let mut other = sql(&url);
    let results = race(
        &s,
        &mut other,
        "INSERT INTO messages VALUES ('grpA', 2, 5, 9, NULL, '{}', false)",
        (1..=3)
            .map(|i| vec![WriteOp::AppendMessage(msg("grpA", i))])
            .collect(),
    );
    assert_raced(&results);
    assert_eq!(seqs(&s.messages("grpA", q(None, None, 10)).unwrap()), [2]);
    assert_eq!(
        s.messages("grpA", q(None, None, 10)).unwrap()[0].from,
        UserId(9)
    );
}
