//! Conformance: message history ranges (newest first, bounded, exclusions skipped) and the
//! tombstones a hard delete leaves.

use super::fixtures::*;
use crate::store::{LastMessage, MessageQuery, Store, StoreError, WriteOp};

/// Ranges are newest first, bounded on both ends, and never leak into a topic whose name
/// extends or prefixes the one asked for.
pub(crate) fn message_ranges_are_newest_first_and_bounded(s: &dyn Store) {
    // Neighbouring topics, one a prefix of the other, must not leak into the range.
    apply_ok(
        s,
        (1..=20)
            .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
            .collect(),
    );
    apply_ok(
        s,
        (1..=5)
            .map(|i| WriteOp::AppendMessage(msg("grpAB", i)))
            .collect(),
    );
    apply_ok(
        s,
        (1..=5)
            .map(|i| WriteOp::AppendMessage(msg("grp", i)))
            .collect(),
    );
    apply_ok(s, vec![WriteOp::AppendMessage(msg("grpA", u64::MAX))]);

    let all = s.messages("grpA", q(None, None, 100)).unwrap();
    let mut want: Vec<u64> = (1..=20).rev().collect();
    want.insert(0, u64::MAX);
    assert_eq!(seqs(&all), want);
    assert!(all.iter().all(|m| m.topic == "grpA"));

    assert_eq!(
        seqs(&s.messages("grpA", q(None, Some(21), 3)).unwrap()),
        vec![20, 19, 18]
    );
    assert_eq!(
        seqs(&s.messages("grpA", q(Some(18), Some(21), 10)).unwrap()),
        vec![20, 19, 18]
    );
    assert_eq!(
        seqs(&s.messages("grpA", q(Some(5), Some(8), 10)).unwrap()),
        vec![7, 6, 5]
    );
    assert_eq!(
        seqs(&s.messages("grpA", q(None, Some(4), 10)).unwrap()),
        vec![3, 2, 1]
    );
    assert_eq!(
        seqs(&s.messages("grpA", q(Some(19), None, 2)).unwrap()),
        vec![u64::MAX, 20]
    );
    assert!(s
        .messages("grpA", q(Some(8), Some(8), 10))
        .unwrap()
        .is_empty());
    assert!(s
        .messages("grpA", q(Some(9), Some(3), 10))
        .unwrap()
        .is_empty());
    assert!(s.messages("grpA", q(None, None, 0)).unwrap().is_empty());
    assert!(s.messages("grpZ", q(None, None, 10)).unwrap().is_empty());
    assert!(s.messages("", q(None, None, 10)).unwrap().is_empty());
    assert_eq!(
        seqs(&s.messages("grp", q(None, None, 10)).unwrap()),
        vec![5, 4, 3, 2, 1]
    );

    assert_eq!(
        s.last_message("grpA").unwrap().map(|l| l.seq),
        Some(u64::MAX)
    );
    assert_eq!(s.last_message("grpAB").unwrap().map(|l| l.seq), Some(5));
    assert_eq!(s.last_message("gr").unwrap(), None);
    assert_eq!(s.last_message("grpZ").unwrap(), None);
}

/// Excluded ranges (the caller's soft deletions) are skipped whatever their order or overlap,
/// and do not count toward the limit.
pub(crate) fn excluded_ranges_are_skipped_and_do_not_count_toward_the_limit(s: &dyn Store) {
    apply_ok(
        s,
        (1..=30)
            .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
            .collect(),
    );
    apply_ok(
        s,
        vec![WriteOp::DeleteMessages(del("grpA", 1, None, &[(25, 26)]))],
    );
    let query = |since, before, limit, exclude: &[(u64, u64)]| {
        let q = MessageQuery {
            since,
            before,
            limit,
            exclude: exclude.to_vec(),
        };
        seqs(&s.messages("grpA", q).unwrap())
    };
    let ex = [(20, 24), (10, 12)];
    assert_eq!(query(None, None, 5, &ex), [30, 29, 28, 27, 26]);
    assert_eq!(query(None, None, 8, &ex), [30, 29, 28, 27, 26, 24, 19, 18]);
    assert_eq!(query(Some(8), Some(14), 100, &ex), [13, 12, 9, 8]);
    // Unsorted, overlapping, empty and reversed ranges: in effect [15, 20).
    let messy = [(12, 10), (16, 20), (15, 18), (5, 5)];
    assert_eq!(
        query(Some(10), Some(22), 100, &messy),
        [21, 20, 14, 13, 12, 11, 10]
    );
    // Adjacent ranges merge; an exclusion reaching below `since` ends the walk.
    assert_eq!(query(None, Some(12), 100, &[(1, 5), (5, 10)]), [11, 10]);
    assert_eq!(query(Some(5), None, 100, &[(0, 29)]), [30, 29]);
    assert_eq!(query(None, None, 3, &[(28, u64::MAX)]), [27, 26, 24]);
    assert!(query(None, None, 100, &[(0, u64::MAX)]).is_empty());
    assert!(query(None, None, 100, &[(1, 31)]).is_empty());
    assert_eq!(query(None, None, 100, &[(2, 31)]), [1]);
    // Exclusions outside the queried window change nothing.
    assert_eq!(query(Some(3), Some(6), 100, &[(6, 9), (0, 3)]), [5, 4, 3]);
}

/// A message count past any backend's hard-delete rewrite chunk (redb rewrites 512 tombstones a
/// pass), so that a delete spanning it takes several.
pub(crate) const LONG_RANGE: u64 = 3 * 512 + 7;

/// Hard deletes hide messages from every query but keep their seqs taken. What a tombstone row
/// holds is backend-specific and checked by each backend's own tests after this scenario.
pub(crate) fn hard_deletes_leave_tombstones_that_queries_skip_but_last_message_sees(s: &dyn Store) {
    apply_ok(
        s,
        (1..=10)
            .map(|i| WriteOp::AppendMessage(msg("grpA", i)))
            .chain((1..=3).map(|i| WriteOp::AppendMessage(msg("grpAB", i))))
            .collect(),
    );
    // Empty and reversed ranges, and ranges past the last message, touch nothing.
    apply_ok(
        s,
        vec![WriteOp::DeleteMessages(del(
            "grpA",
            1,
            None,
            &[(2, 4), (5, 5), (8, 7), (9, 11), (20, 30)],
        ))],
    );
    let all = s.messages("grpA", q(None, None, 100)).unwrap();
    assert_eq!(seqs(&all), [8, 7, 6, 5, 4, 1]);
    assert_eq!(all[0], msg("grpA", 8));
    // Tombstones do not count toward the limit.
    assert_eq!(
        seqs(&s.messages("grpA", q(None, None, 3)).unwrap()),
        [8, 7, 6]
    );
    assert_eq!(
        seqs(&s.messages("grpA", q(Some(2), Some(5), 10)).unwrap()),
        [4]
    );
    assert_eq!(
        s.last_message("grpA").unwrap(),
        Some(LastMessage {
            seq: 10,
            ts: msg("grpA", 10).ts
        })
    );
    assert_eq!(
        seqs(&s.messages("grpAB", q(None, None, 10)).unwrap()),
        [3, 2, 1]
    );

    // A soft delete only records its ranges.
    apply_ok(
        s,
        vec![WriteOp::DeleteMessages(del("grpA", 2, Some(1), &[(1, 9)]))],
    );
    assert_eq!(s.messages("grpA", q(None, None, 100)).unwrap(), all);

    // Deleting everything keeps every seq taken: the newest cannot be appended again.
    apply_ok(
        s,
        vec![WriteOp::DeleteMessages(del(
            "grpA",
            3,
            None,
            &[(0, u64::MAX)],
        ))],
    );
    assert!(s.messages("grpA", q(None, None, 100)).unwrap().is_empty());
    assert_eq!(s.last_message("grpA").unwrap().map(|l| l.seq), Some(10));
    let r = s.apply(&[vec![WriteOp::AppendMessage(msg("grpA", 10))]]);
    assert!(matches!(r[0], Err(StoreError::Conflict(_))));
    apply_ok(s, vec![WriteOp::AppendMessage(msg("grpA", 11))]);
    assert_eq!(seqs(&s.messages("grpA", q(None, None, 100)).unwrap()), [11]);
    assert_eq!(
        seqs(&s.messages("grpAB", q(None, None, 10)).unwrap()),
        [3, 2, 1]
    );

    // A range larger than a backend's rewrite chunk, with both ends inside it.
    let n = LONG_RANGE;
    apply_ok(
        s,
        (1..=n)
            .map(|i| WriteOp::AppendMessage(msg("grpC", i)))
            .collect(),
    );
    apply_ok(
        s,
        vec![WriteOp::DeleteMessages(del("grpC", 1, None, &[(2, n)]))],
    );
    assert_eq!(
        seqs(&s.messages("grpC", q(None, None, 100)).unwrap()),
        [n, 1]
    );
    assert_eq!(s.last_message("grpC").unwrap().map(|l| l.seq), Some(n));
}
