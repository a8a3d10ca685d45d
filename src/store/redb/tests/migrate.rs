//! redb-only: databases written by older versions of this store (version-1 records, tables
//! added since) open, and get the indexes they lack built from their records.

use redb::Database;

use crate::ids::UserId;
use crate::store::conformance::fixtures::*;
use crate::store::redb::tables::{TOPICS, USERS};
use crate::store::redb::{RedbStore, FILE_NAME};
use crate::store::{Store, WriteOp};

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
