//! PostgreSQL only: grouped appends. A group of append/markers batches costs a few multi-row
//! statements in one transaction however many batches it holds; a conflicting batch is skipped
//! whole, exactly as the batches would be one by one; runs and general batches keep their
//! order.

use super::{fresh_store, sql};
use crate::ids::UserId;
use crate::store::conformance::fixtures::*;
use crate::store::pg::testing::fresh_url;
use crate::store::pg::{PgOptions, PgStore};
use crate::store::{Store, StoreError, WriteBatch, WriteOp};

fn markers(topic: &str, uid: u64, read: u64, recv: u64) -> WriteOp {
    WriteOp::Markers {
        topic: topic.into(),
        user: UserId(uid),
        read,
        recv,
    }
}

fn append(topic: &str, seq: u64) -> WriteOp {
    WriteOp::AppendMessage(msg(topic, seq))
}

fn read_recv(s: &dyn Store, topic: &str, uid: u64) -> (u64, u64) {
    let sub = s.sub(topic, UserId(uid)).unwrap().unwrap();
    (sub.read, sub.recv)
}

/// Conflicts are decided batch by batch in order: with stored rows, with earlier accepted
/// batches, within a batch; a skipped batch takes no key, so a later batch may use it.
#[test]
fn a_conflicting_batch_in_a_group_of_appends_is_skipped_whole() {
    let (s, _url) = fresh_store();
    apply_ok(
        &s,
        vec![
            WriteOp::PutSub(sub("grpA", 1)),
            WriteOp::PutSub(sub("grpA", 2)),
            append("grpA", 50),
        ],
    );
    let mut group: Vec<WriteBatch> = (0..4)
        .map(|i| {
            vec![
                append("grpA", 100 + i),
                markers("grpA", 1, 100 + i, 100 + i),
            ]
        })
        .collect();
    group.extend([
        // 4: 50 is stored: skipped, and its 200 and its markers with it.
        vec![
            append("grpA", 200),
            append("grpA", 50),
            markers("grpA", 2, 999, 999),
        ],
        // 5: 200 is free again.
        vec![append("grpA", 200)],
        // 6: 200 taken by batch 5.
        vec![append("grpA", 200), markers("grpA", 2, 998, 998)],
        // 7: conflicts with itself.
        vec![append("grpA", 300), append("grpA", 300)],
        // 8: markers that raise nothing.
        vec![markers("grpA", 1, 1, 1)],
        // 9: fine.
        vec![append("grpA", 301)],
    ]);
    let before = s.statements_sent();
    let results = s.apply(&group);
    let sent = s.statements_sent() - before;
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(
        ok,
        [true, true, true, true, false, true, false, false, true, true]
    );
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(r, Err(StoreError::Conflict(m)) if m.contains("exists")),
            "{r:?}"
        );
    }
    assert_eq!(
        seqs(&s.messages("grpA", q(None, None, 100)).unwrap()),
        [301, 200, 103, 102, 101, 100, 50]
    );
    assert_eq!(read_recv(&s, "grpA", 1), (103, 103));
    assert_eq!(read_recv(&s, "grpA", 2), (5, 6));
    // BEGIN, which keys are stored, the insert, the markers update, COMMIT.
    assert_eq!(sent, 5);
}

/// 5,000 single-append batches with markers: one transaction (every row has the same xmin)
/// of a dozen statements.
#[test]
fn five_thousand_appends_commit_in_one_transaction_of_few_statements() {
    let (s, url) = fresh_store();
    apply_ok(&s, vec![WriteOp::PutSub(sub("grpA", 1))]);
    let n = 5_000;
    let group: Vec<WriteBatch> = (1..=n)
        .map(|i| vec![append("grpA", i), markers("grpA", 1, i, i)])
        .collect();
    let before = s.statements_sent();
    let results = s.apply(&group);
    let sent = s.statements_sent() - before;
    assert!(results.iter().all(Result::is_ok));
    // BEGIN, 5 key checks and 5 inserts of 1,000 rows, one markers update, COMMIT.
    assert_eq!(sent, 13);
    let row = sql(&url)
        .query_one(
            "SELECT count(*), count(DISTINCT xmin::text) FROM messages WHERE topic = 'grpA'",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (n as i64, 1));
    assert_eq!(read_recv(&s, "grpA", 1), (n, n));
    assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(n));
}

/// A smaller statement size splits the same work into more statements, conflicts included.
#[test]
fn appends_are_split_every_max_rows_per_statement() {
    let url = fresh_url();
    let opts = PgOptions {
        max_rows_per_statement: 7,
        ..PgOptions::default()
    };
    let s = PgStore::open(&url, opts).unwrap();
    apply_ok(&s, vec![append("grpA", 45)]);
    let group: Vec<WriteBatch> = (1..=50).map(|i| vec![append("grpA", i)]).collect();
    let before = s.statements_sent();
    let results = s.apply(&group);
    let sent = s.statements_sent() - before;
    let failed: Vec<usize> = (0..50).filter(|&i| results[i].is_err()).collect();
    assert_eq!(failed, [44]);
    // BEGIN, 8 key checks of 50 keys, 7 inserts of 49 rows, COMMIT.
    assert_eq!(sent, 1 + 8 + 7 + 1);
    assert_eq!(s.messages("grpA", q(None, None, 100)).unwrap().len(), 50);
}

/// Runs of append batches and general batches apply in group order: a run sees what the
/// general batches before it did, and the other way round.
#[test]
fn runs_and_general_batches_keep_their_order() {
    let (s, _url) = fresh_store();
    apply_ok(&s, vec![append("grpB", 1), WriteOp::PutSub(sub("grpB", 1))]);
    let results = s.apply(&[
        vec![append("grpB", 1)],
        vec![WriteOp::DeleteTopic {
            name: "grpB".into(),
        }],
        vec![append("grpB", 1), markers("grpB", 1, 9, 9)],
        vec![WriteOp::DeleteMessages(del("grpB", 1, None, &[(1, 2)]))],
        vec![append("grpB", 2)],
        vec![WriteOp::PutSub(sub("grpB", 1))],
        vec![markers("grpB", 1, 50, 40)],
        vec![append("grpB", 2)],
    ]);
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [false, true, true, true, true, true, true, false]);
    assert_eq!(seqs(&s.messages("grpB", q(None, None, 10)).unwrap()), [2]);
    assert_eq!(s.last_message("grpB").unwrap().map(|l| l.seq), Some(2));
    // The markers of batch 2 found no subscription (deleted with the topic); batch 6's did.
    assert_eq!(read_recv(&s, "grpB", 1), (50, 50));
}
