//! redb-only: what the tables hold after a conformance case, where the `Store` reads cannot
//! tell (tombstone rows, by-user index entries).

use redb::ReadableDatabase;

use super::raw_message;
use crate::store::conformance::fixtures::*;
use crate::store::conformance::{history, removals};
use crate::store::redb::tables::SUBS_BY_USER;
use crate::store::redb::write::TOMBSTONE_CHUNK;
use crate::store::redb::RedbStore;
use crate::store::MessageRecord;

/// A hard delete rewrites each message in its ranges as a tombstone: flagged, head and content
/// emptied, seq, time and sender kept; seqs never stored get no row.
#[test]
fn hard_deletes_rewrite_rows_as_tombstones() {
    assert!(history::LONG_RANGE > 3 * TOMBSTONE_CHUNK as u64);
    let s = RedbStore::in_memory();
    history::hard_deletes_leave_tombstones_that_queries_skip_but_last_message_sees(&s);
    for seq in [2, 3, 9, 10] {
        assert_eq!(
            raw_message(&s, "grpA", seq),
            Some(MessageRecord {
                deleted: true,
                head: None,
                content: String::new(),
                ..msg("grpA", seq)
            }),
            "seq {seq}"
        );
    }
    assert_eq!(raw_message(&s, "grpA", 20), None);
    let n = history::LONG_RANGE;
    let stones = (1..=n)
        .filter(|&i| raw_message(&s, "grpC", i).is_some_and(|m| m.deleted))
        .count() as u64;
    assert_eq!(stones, n - 2);
}

/// Deleting a topic leaves no by-user index entry naming it.
#[test]
fn delete_topic_leaves_no_by_user_entries() {
    let s = RedbStore::in_memory();
    removals::delete_topic_removes_every_row_of_the_topic_and_nothing_else(&s);
    {
        let txn = s.db.begin_read().unwrap();
        let by_user = txn.open_table(SUBS_BY_USER).unwrap();
        assert!(by_user.get((2, "grpA")).unwrap().is_none());
        assert!(by_user.get((1, "grpA")).unwrap().is_none());
    }
}
