//! redb-only: databases written by older versions of this store (version-1 records, tables
//! added since) open, and get the indexes they lack built from their records.

use redb::Database;

use crate::ids::UserId;
use crate::store::conformance::fixtures::*;
use crate::store::redb::codec;
use crate::store::redb::tables::{TAGS, TOPICS, USERS};
use crate::store::redb::{RedbStore, FILE_NAME};
use crate::store::{CredRecord, Store, StoreError, UserRecord, UserState, WriteOp};

#[test]
fn an_older_database_gets_its_tag_index_built_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Tables as version 1 of this store wrote them: no tag index, version-1 records.
        let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let user_v1: &[u8] = &[1, 1, 2, 0, 0x2f, 0, 0, 0, 2, 1, b'a', 1, b'b', 0];
            let mut users = txn.open_table(USERS).unwrap();
            users.insert(4, user_v1).unwrap();
            users.insert(5, &[1u8, 0xff][..]).unwrap();
            let topic_v1: &[u8] = &[1, 1, 2, 0, 0x2f, 0x01, 0, 0, 1, 1, b'a', 0, 0];
            txn.open_table(TOPICS)
                .unwrap()
                .insert("grpX", topic_v1)
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let s = RedbStore::open(dir.path(), true).unwrap();
    let usr4 = UserId(4).usr();
    assert_eq!(
        find(&s, &["a", "b"], 10),
        vec![
            (usr4.clone(), strings(&["a", "b"])),
            ("grpX".into(), strings(&["a"])),
        ]
    );
    let u = s.user(UserId(4)).unwrap().unwrap();
    assert_eq!((u.tags, u.creds), (strings(&["a", "b"]), vec![]));
    assert_eq!(s.topic("grpX").unwrap().unwrap().aux, None);
    // Later writes keep it up to date, and reopening does not rebuild it.
    apply_ok(&s, vec![WriteOp::PutUser(tagged_user(4, &["b"]))]);
    drop(s);
    let s = RedbStore::open(dir.path(), true).unwrap();
    assert_eq!(
        find(&s, &["a", "b"], 10),
        vec![("grpX".into(), strings(&["a"])), (usr4, strings(&["b"])),]
    );
}

/// A user with the given credentials, `(method, value, confirmed)`.
fn with_creds(id: u64, state: UserState, creds: &[(&str, &str, bool)]) -> UserRecord {
    UserRecord {
        state,
        creds: creds
            .iter()
            .map(|&(method, value, done)| CredRecord {
                method: method.into(),
                value: value.into(),
                done,
            })
            .collect(),
        ..user(id)
    }
}

#[test]
fn an_older_database_gets_its_credential_claims_built_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Tables as the store wrote them before claims: a tag index, no claim table.
        let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut users = txn.open_table(USERS).unwrap();
            let mut put = |u: &UserRecord| {
                let bytes = codec::encode_user(u);
                users.insert(u.id.0, bytes.as_slice()).unwrap();
            };
            put(&with_creds(
                4,
                UserState::Ok,
                &[("email", "a@x.org", true), ("tel", "+1555", false)],
            ));
            // Confirmed by two accounts before claims existed: the lower id keeps it.
            put(&with_creds(
                2,
                UserState::Suspended,
                &[("email", "b@x.org", true), ("email", "c@x.org", true)],
            ));
            put(&with_creds(3, UserState::Ok, &[("email", "b@x.org", true)]));
            // A deleted account holds nothing.
            put(&with_creds(
                5,
                UserState::Deleted,
                &[("email", "d@x.org", true)],
            ));
            users.insert(6, &[1u8, 0xff][..]).unwrap();
            txn.open_table(TAGS).unwrap();
        }
        txn.commit().unwrap();
    }
    let s = RedbStore::open(dir.path(), true).unwrap();
    let owner = |s: &RedbStore, unique: &str| s.cred_owner(unique).unwrap().map(|u| u.0);
    assert_eq!(owner(&s, "email:a@x.org"), Some(4));
    assert_eq!(owner(&s, "tel:+1555"), None);
    assert_eq!(owner(&s, "email:b@x.org"), Some(2));
    assert_eq!(owner(&s, "email:c@x.org"), Some(2));
    assert_eq!(owner(&s, "email:d@x.org"), None);
    // The claims built act as any other: another user's claim conflicts.
    let r = s.apply(&[vec![WriteOp::ClaimCred {
        unique: "email:a@x.org".into(),
        user: UserId(3),
    }]]);
    assert!(matches!(r[0], Err(StoreError::Conflict(_))), "{r:?}");
    // Later writes are kept, and reopening does not rebuild from the records.
    apply_ok(
        &s,
        vec![WriteOp::ReleaseCred {
            unique: "email:a@x.org".into(),
            user: UserId(4),
        }],
    );
    drop(s);
    let s = RedbStore::open(dir.path(), true).unwrap();
    assert_eq!(owner(&s, "email:a@x.org"), None);
    assert_eq!(owner(&s, "email:b@x.org"), Some(2));
}
